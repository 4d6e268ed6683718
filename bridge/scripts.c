/*
 * Lua scripts for Redis (see scripts.h). Each runs atomically, so the
 * rate check, the membership check, the seq, the stream entry and the
 * recent cache of one message can never be seen half-done.
 */
#include <stdio.h>
#include <string.h>

#include <openssl/sha.h>

#include "scripts.h"

/* TIME is read inside the script so every instance stamps messages with one
 * clock, in seq order. Keys are derived from the arguments: the bridge
 * targets one standalone Redis, not a cluster. */
const char script_post[] =
	"local conv, head, tail = ARGV[1], ARGV[2], ARGV[3]\n"
	"local rate, burst = tonumber(ARGV[4]), tonumber(ARGV[5])\n"
	"local sender, target, kind = ARGV[8], ARGV[9], ARGV[10]\n"
	"if kind == 'room' then\n"
	"  if redis.call('EXISTS', 'chat:room:' .. target) == 0 then return -2 end\n"
	"  local members = 'chat:room:' .. target .. ':members'\n"
	"  if redis.call('SISMEMBER', members, sender) == 0 then\n"
	"    if redis.call('HGET', 'chat:room:' .. target, 'private') == '1' then return -3 end\n"
	"    redis.call('SADD', members, sender)\n"
	"    redis.call('SADD', 'chat:user:' .. sender .. ':rooms', target)\n"
	"  end\n"
	"end\n"
	"local t = redis.call('TIME')\n"
	"local now = tonumber(t[1]) + tonumber(t[2]) / 1000000\n"
	"local bucket = 'chat:rate:' .. sender\n"
	"local b = redis.call('HMGET', bucket, 'tokens', 'ts')\n"
	"local tokens = tonumber(b[1]) or burst\n"
	"local last = tonumber(b[2]) or now\n"
	"tokens = math.min(burst, tokens + math.max(0, now - last) * rate)\n"
	"if tokens < 1 then\n"
	"  redis.call('HSET', bucket, 'tokens', tostring(tokens), 'ts', tostring(now))\n"
	"  redis.call('EXPIRE', bucket, 3600)\n"
	"  return -1\n"
	"end\n"
	"redis.call('HSET', bucket, 'tokens', tostring(tokens - 1), 'ts', tostring(now))\n"
	"redis.call('EXPIRE', bucket, 3600)\n"
	"redis.call('SADD', 'chat:users', sender)\n"
	"local seq = redis.call('INCR', 'chat:seq:' .. conv)\n"
	"local msg = head .. seq .. ',\"ts\":' .. string.format('%d', math.floor(now * 1000)) .. tail\n"
	"redis.call('XADD', 'chat:stream', 'MAXLEN', '~', ARGV[7], '*', 'conv', conv, 'seq', seq, 'msg', msg)\n"
	"local keep = tonumber(ARGV[6])\n"
	"if keep > 0 then\n"
	"  local recent = 'chat:recent:' .. conv\n"
	"  redis.call('RPUSH', recent, msg)\n"
	"  redis.call('LTRIM', recent, -keep, -1)\n"
	"end\n"
	"return seq\n";

const char script_typing[] =
	"local sender, room = ARGV[1], ARGV[2]\n"
	"local private = redis.call('HGET', 'chat:room:' .. room, 'private')\n"
	"if not private then return -2 end\n"
	"if private == '1' and redis.call('SISMEMBER', 'chat:room:' .. room .. ':members', sender) == 0 then\n"
	"  return -3\n"
	"end\n"
	"return 1\n";

const char script_room[] =
	"local method, caller, room, flag, user = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]\n"
	"local key = 'chat:room:' .. room\n"
	"local members = key .. ':members'\n"
	"if method == 'rooms.list' then\n"
	"  local out = {'ok'}\n"
	"  local seen = {}\n"
	"  for _, set in ipairs({'chat:rooms:public', 'chat:user:' .. caller .. ':rooms'}) do\n"
	"    for _, r in ipairs(redis.call('SMEMBERS', set)) do\n"
	"      if not seen[r] then\n"
	"        seen[r] = true\n"
	"        local h = redis.call('HMGET', 'chat:room:' .. r, 'owner', 'private')\n"
	"        if h[1] then\n"
	"          local m = redis.call('SISMEMBER', 'chat:room:' .. r .. ':members', caller)\n"
	"          table.insert(out, r .. ' ' .. h[1] .. ' ' .. h[2] .. ' ' .. m)\n"
	"        end\n"
	"      end\n"
	"    end\n"
	"  end\n"
	"  return out\n"
	"end\n"
	"if method == 'room.create' then\n"
	"  if redis.call('EXISTS', key) == 1 then return {'conflict', 'room exists'} end\n"
	"  local t = redis.call('TIME')\n"
	"  redis.call('HSET', key, 'owner', caller, 'private', flag, 'created', t[1])\n"
	"  if flag == '0' then redis.call('SADD', 'chat:rooms:public', room) end\n"
	"  redis.call('SADD', members, caller)\n"
	"  redis.call('SADD', 'chat:user:' .. caller .. ':rooms', room)\n"
	"  return {'ok', caller, flag}\n"
	"end\n"
	"local h = redis.call('HMGET', key, 'owner', 'private')\n"
	"if not h[1] then return {'not_found', 'no such room'} end\n"
	"local owner, priv = h[1], h[2]\n"
	"local is_member = redis.call('SISMEMBER', members, caller) == 1\n"
	"if method == 'room.join' then\n"
	"  if priv == '1' and not is_member then return {'forbidden', 'private room: ask the owner for an invitation'} end\n"
	"  local added = redis.call('SADD', members, caller)\n"
	"  redis.call('SADD', 'chat:user:' .. caller .. ':rooms', room)\n"
	"  return {'ok', tostring(added)}\n"
	"elseif method == 'room.leave' then\n"
	"  local removed = redis.call('SREM', members, caller)\n"
	"  redis.call('SREM', 'chat:user:' .. caller .. ':rooms', room)\n"
	"  return {'ok', tostring(removed)}\n"
	"elseif method == 'room.members' then\n"
	"  if priv == '1' and not is_member then return {'forbidden', 'not a member'} end\n"
	"  local out = {'ok'}\n"
	"  for _, m in ipairs(redis.call('SMEMBERS', members)) do table.insert(out, m) end\n"
	"  return out\n"
	"elseif method == 'room.invite' or method == 'room.remove' then\n"
	"  if caller ~= owner and flag ~= 'admin' then return {'forbidden', 'only the owner or an admin may do this'} end\n"
	"  if method == 'room.invite' then\n"
	"    local added = redis.call('SADD', members, user)\n"
	"    redis.call('SADD', 'chat:user:' .. user .. ':rooms', room)\n"
	"    return {'ok', tostring(added), priv}\n"
	"  end\n"
	"  local removed = redis.call('SREM', members, user)\n"
	"  redis.call('SREM', 'chat:user:' .. user .. ':rooms', room)\n"
	"  return {'ok', tostring(removed), priv}\n"
	"end\n"
	"return {'bad_request', 'unknown method'}\n";

static void hex_sha1(const char *text, char out[41])
{
	unsigned char d[SHA_DIGEST_LENGTH];
	SHA1((const unsigned char *)text, strlen(text), d);
	for (int i = 0; i < SHA_DIGEST_LENGTH; i++)
		snprintf(out + 2 * i, 3, "%02x", d[i]);
}

void scripts_sha(struct script_sha *out)
{
	hex_sha1(script_post, out->post);
	hex_sha1(script_typing, out->typing);
	hex_sha1(script_room, out->room);
}
