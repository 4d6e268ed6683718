/*
 * Token revocation state in Redis (shared/PROTOCOL.md section 2), written
 * by the bridge (user.revoke) and the web front (POST /api/logout), read by
 * the bridges, which pass it to their broker's plugin, and by the web
 * front's HTTP API:
 *
 *   chat:revoked:jti:<jti>   "0 <until>"          until = the token's exp
 *   chat:revoked:user:<user> "<before> <until>"   every token with iat <= before
 *   chat:revoked             sorted set of lines, score = until
 *   chat:revoke              pub/sub channel, one line per new entry
 *
 * A line is "revoke <jti|user> <name> <before> <until>" (the plugin's
 * format, authplugin/revoked.h). Each key expires at its until, and the set
 * drops lines whose until has passed on every write, so the state holds
 * only entries whose tokens can still be valid. Redis persists it (AOF).
 */
#ifndef CHAT_REVOCATION_H
#define CHAT_REVOCATION_H

#include <stdint.h>

#include <hiredis/hiredis.h>

/* The Lua script, run with EVAL and no keys; ARGV kind ("jti" or "user"),
 * name, before, until, now (seconds). It never moves a user's before back
 * (two nodes' clocks may differ). Returns the before it stored, or 0 when
 * until has passed already (nothing to keep). */
extern const char revoke_lua[];

/* The sorted set that holds every live line, for a full snapshot. */
#define REVOKE_SET "chat:revoked"
#define REVOKE_CHANNEL "chat:revoke"

/* Whether a token (user, jti or "", iat) is revoked, asked of Redis with
 * one blocking call. Returns 1 when revoked, 0 when not, -1 when Redis did
 * not answer (the caller refuses: it cannot tell). */
int revoke_check(redisContext *r, const char *user, const char *jti, int64_t iat);

#endif
