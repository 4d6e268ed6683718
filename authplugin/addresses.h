/*
 * Authenticated connections per client address, so that one host cannot
 * take every connection the broker has (issue 10.6). Connections that never
 * complete CONNECT are not seen by a plugin; mosquitto.conf's
 * max_connections bounds those.
 */
#ifndef CHAT_ADDRESSES_H
#define CHAT_ADDRESSES_H

#include <stddef.h>

struct address_count;

struct address_table {
	struct address_count **buckets;
	size_t nbuckets; /* power of two, fixed */
};

enum addresses_err {
	ADDRESSES_OK = 0,
	ADDRESSES_E_NOMEM = -1,
	ADDRESSES_E_CAP = -2, /* the address already holds max connections */
};

int addresses_init(struct address_table *t);
void addresses_free(struct address_table *t);

/* Counts one more connection from addr, unless it holds max already.
 * Returns ADDRESSES_OK, ADDRESSES_E_CAP or ADDRESSES_E_NOMEM. */
int addresses_take(struct address_table *t, const char *addr, long max);
/* One connection from addr ended (a count that reaches 0 is freed). */
void addresses_release(struct address_table *t, const char *addr);
/* Connections from addr now. */
unsigned long addresses_count(const struct address_table *t, const char *addr);

#endif
