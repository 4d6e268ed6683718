/*
 * The revocation script and the web front's check (see revocation.h).
 */
#include <stdlib.h>
#include <string.h>

#include "revocation.h"

/* Atomic so that the key, the set and the announcement never disagree:
 * the previous line of the same entry leaves the set as the new one goes
 * in, so one user signing out everywhere again and again holds one line. */
const char revoke_lua[] =
    "local kind, name, before = ARGV[1], ARGV[2], tonumber(ARGV[3])\n"
    "local untl, now = tonumber(ARGV[4]), tonumber(ARGV[5])\n"
    "redis.call('ZREMRANGEBYSCORE', 'chat:revoked', '-inf', now)\n"
    "if untl <= now then return 0 end\n"
    "local key = 'chat:revoked:' .. kind .. ':' .. name\n"
    "local old = redis.call('GET', key)\n"
    "if old then\n"
    "  redis.call('ZREM', 'chat:revoked', 'revoke ' .. kind .. ' ' .. name .. ' ' .. old)\n"
    "  local ob, ou = string.match(old, '^(%d+) (%d+)$')\n"
    "  if ob and tonumber(ob) > before then before = tonumber(ob) end\n"
    "  if ou and tonumber(ou) > untl then untl = tonumber(ou) end\n"
    "end\n"
    "local value = string.format('%d %d', before, untl)\n"
    "local line = 'revoke ' .. kind .. ' ' .. name .. ' ' .. value\n"
    "redis.call('SET', key, value, 'EX', untl - now)\n"
    "redis.call('ZADD', 'chat:revoked', untl, line)\n"
    "redis.call('PUBLISH', 'chat:revoke', line)\n"
    "return before\n";

int64_t revoke_next_iat(int64_t before, int64_t now, long leeway, int64_t *iat)
{
	if (before < now) {
		*iat = now;
		return 0;
	}
	int64_t ahead = leeway > 1 ? leeway - 1 : 0;
	if (before + 1 > now + ahead)
		return before + 1 - (now + ahead);
	*iat = before + 1;
	return 0;
}

int revoke_user_before(redisContext *r, const char *user, int64_t *before)
{
	redisReply *rep = redisCommand(r, "GET chat:revoked:user:%s", user);
	int rc = -1;

	if (rep && rep->type == REDIS_REPLY_NIL) {
		*before = 0;
		rc = 0;
	} else if (rep && rep->type == REDIS_REPLY_STRING) {
		*before = strtoll(rep->str, NULL, 10);
		rc = 0;
	}
	freeReplyObject(rep);
	return rc;
}

int revoke_check(redisContext *r, const char *user, const char *jti, int64_t iat)
{
	int rc = -1;
	redisReply *rep;

	if (jti[0] != '\0')
		rep = redisCommand(r, "MGET chat:revoked:user:%s chat:revoked:jti:%s", user, jti);
	else
		rep = redisCommand(r, "MGET chat:revoked:user:%s", user);
	if (rep == NULL || rep->type != REDIS_REPLY_ARRAY || rep->elements < 1)
		goto cleanup;
	rc = 0;
	if (rep->element[0]->type == REDIS_REPLY_STRING &&
	    iat <= strtoll(rep->element[0]->str, NULL, 10))
		rc = 1;
	if (rep->elements > 1 && rep->element[1]->type == REDIS_REPLY_STRING)
		rc = 1;
cleanup:
	freeReplyObject(rep);
	return rc;
}
