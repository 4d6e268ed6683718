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

/* Clocks and the leeway. A verifier accepts a token whose iat is up to
 * jwt_leeway seconds ahead of its own clock (core/token.c), so a token of
 * a node whose clock runs that much ahead may carry an iat up to now +
 * leeway. A user's revocation at time now therefore covers every token
 * with iat <= now + leeway (bridge/revoke.c): whatever clock within the
 * tolerated skew stamped a token before the revocation, it is revoked.
 * The issuers (the web front's login and register, chatctl token) then
 * never mint a token of that user with an iat the revocation covers:
 * revoke_next_iat says which iat to stamp, or how long to wait. */

/* The iat for a new token of a user whose revocation covers iat <= before
 * (0: none), at time now, for verifiers with the given leeway: now when
 * before < now; else before + 1, as soon as that is at most leeway - 1
 * ahead of now (verifiers accept it at once, with one second kept for a
 * verifier whose clock is behind the issuer's). Returns 0 with *iat set,
 * or the seconds to wait before asking again (at most 2 after a
 * revocation made with the same leeway). Pure. */
int64_t revoke_next_iat(int64_t before, int64_t now, long leeway, int64_t *iat);

/* The before of user's revocation entry, 0 when there is none: one
 * blocking GET. Returns 0, or -1 when Redis did not answer. */
int revoke_user_before(redisContext *r, const char *user, int64_t *before);

/* Whether a token (user, jti or "", iat) is revoked, asked of Redis with
 * one blocking call. Returns 1 when revoked, 0 when not, -1 when Redis did
 * not answer (the caller refuses: it cannot tell). */
int revoke_check(redisContext *r, const char *user, const char *jti, int64_t iat);

#endif
