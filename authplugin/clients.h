/*
 * Per-connection state of the plugin, keyed by the broker's struct mosquitto
 * pointer (not the client id: on a takeover the old connection's DISCONNECT
 * arrives after the new one's auth). Holds what each check needs, compiled
 * once at CONNECT, and the token expiry.
 */
#ifndef CHAT_CLIENTS_H
#define CHAT_CLIENTS_H

#include <stddef.h>
#include <stdint.h>

#include "acl.h"
#include "chat/token.h"

struct client_entry {
	const void *key; /* the struct mosquitto * */
	struct acl_client acl;
	int64_t exp; /* token expiry, seconds */
	uint64_t conn_id; /* this connection's number since the broker started */
	int64_t iat;      /* the token's, 0 when absent (revoked.h) */
	char jti[TOKEN_JTI_MAX + 1]; /* the token's, "" when absent */
	struct client_entry *next;
};

struct client_table {
	struct client_entry **buckets;
	size_t nbuckets; /* power of two */
	size_t count;
	int64_t next_exp; /* earliest exp of any entry; INT64_MAX when none */
};

int clients_init(struct client_table *t);
void clients_free(struct client_table *t);

/* Adds or replaces the entry for key. Returns 0, or -1 when out of memory
 * (the table is then unchanged). */
int clients_put(struct client_table *t, const void *key,
                const struct acl_client *acl, int64_t exp, uint64_t conn_id);
/* Records the token's jti and iat on key's entry (revocation checks);
 * does nothing when key has none. */
void clients_set_token(struct client_table *t, const void *key, const char *jti, int64_t iat);
const struct client_entry *clients_get(const struct client_table *t, const void *key);
void clients_remove(struct client_table *t, const void *key);

/* Calls fn for every entry; fn must not add or remove entries. */
void clients_each(const struct client_table *t, void (*fn)(const struct client_entry *e, void *ctx),
                  void *ctx);

/* Calls fn for every entry whose exp <= now, after collecting them, so fn
 * may remove entries (through the broker's DISCONNECT) while it runs.
 * Recomputes next_exp. Returns how many expired. */
size_t clients_expire(struct client_table *t, int64_t now,
                      void (*fn)(const void *key, void *ctx), void *ctx);

#endif
