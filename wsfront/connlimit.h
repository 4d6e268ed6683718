/*
 * Caps on the connections open at once: in all, and from one address, so
 * that one client (slow headers, idle sockets, WebSockets that never send
 * CONNECT) cannot take every descriptor or header buffer of the front.
 * The table holds only addresses with a connection open, so it never
 * holds more entries than the total cap. Pure: no sockets, no clock.
 */
#ifndef WSFRONT_CONNLIMIT_H
#define WSFRONT_CONNLIMIT_H

#include <stddef.h>

#define CONNLIMIT_ADDR_MAX 64

struct cl_addr {
	struct cl_addr *next;
	long count;
	size_t bucket;
	char addr[CONNLIMIT_ADDR_MAX + 1];
};

/* Which connection (an opaque owner, the wsi) holds which count. */
struct cl_owner {
	struct cl_owner *next;
	const void *owner;
	struct cl_addr *addr;
};

struct connlimit {
	struct cl_owner **o;
	struct cl_addr **b;
	size_t n;
	long total, total_max, per_addr;
	unsigned char key[16]; /* keyed hash: addresses cannot be aimed at one chain */
};

enum connlimit_result {
	CONNLIMIT_OK = 0,
	CONNLIMIT_E_TOTAL = -1,
	CONNLIMIT_E_ADDR = -2,
	CONNLIMIT_E_NOMEM = -3
};

/* Returns 0 or -1 when out of memory. */
int connlimit_init(struct connlimit *cl, long total_max, long per_addr);
void connlimit_free(struct connlimit *cl);

/* Counts one more connection from addr; *out is the entry to release
 * when it closes. Returns CONNLIMIT_OK or why it is refused. */
int connlimit_take(struct connlimit *cl, const char *addr, struct cl_addr **out);
void connlimit_release(struct connlimit *cl, struct cl_addr *a);

/* Ties a taken count to its owner (0, or -1 when out of memory); drop
 * releases the owner's count, if it has one. */
int connlimit_bind(struct connlimit *cl, const void *owner, struct cl_addr *a);
void connlimit_drop(struct connlimit *cl, const void *owner);

#endif
