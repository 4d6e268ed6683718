/*
 * Token revocations on the bridge's side (shared/PROTOCOL.md section 2):
 * user.revoke writes them to Redis (storage/revocation.h), and every bridge
 * passes them to its broker's plugin on $CONTROL/chat/v1: each new one as
 * it is announced on chat:revoke, and the whole live set after every
 * (re)connect to the broker and after its pub/sub link listened again (the
 * channel is at-most-once), so a revoked token never comes back.
 */
#ifndef CHAT_BRIDGE_REVOKE_H
#define CHAT_BRIDGE_REVOKE_H

#include <stddef.h>
#include <stdint.h>

#include <hiredis/async.h>

struct bridge;

/* Sends the plugin the full state when this broker connection has not had
 * it yet, or the announcements may have been missed. Call every turn. */
void revoke_sync(struct bridge *b);

/* One announcement from chat:revoke, passed to the plugin as it is. */
void revoke_forward(struct bridge *b, const char *line, size_t len);

/* Revokes every token of user issued until now by any clock within the
 * verifiers' leeway (iat <= before = now + jwt_leeway, in seconds; see
 * storage/revocation.h). cb gets the script's reply (the before stored, see
 * storage/revocation.h) or NULL. Returns 0, or -1 when Redis is not there (cb
 * is not called). */
int revoke_user(struct bridge *b, const char *user, int64_t now,
                void (*cb)(redisAsyncContext *, void *, void *), void *priv);

#endif
