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
	"local rate, burst = tonumber(ARGV[1]), tonumber(ARGV[2])\n"
	"local keep, cap, n = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])\n"
	/* after the posts: the conversation caps (user_dms_max, user_rooms_max) */
	"local dms_max, rooms_max = tonumber(ARGV[7 + n * 7]), tonumber(ARGV[8 + n * 7])\n"
	"local out = {}\n"
	/* the journal's progress (bridge/journal.h): per journal boot, the
	 * highest post id answered; a replayed post at or below it is -6 */
	"local jkey = 'chat:journal:' .. ARGV[6]\n"
	"local jdone, jmoved = {}, {}\n"
	"local function answered_before(jid)\n"
	"  local boot, id = string.match(jid, '^(%x+):(%d+)$')\n"
	"  if not boot then return false end\n"
	"  id = tonumber(id)\n"
	"  if jdone[boot] == nil then jdone[boot] = tonumber(redis.call('HGET', jkey, boot) or '0') end\n"
	"  if id <= jdone[boot] then return true end\n"
	"  jdone[boot], jmoved[boot] = id, true\n"
	"  return false\n"
	"end\n"
	/* after a flush, nothing is accepted until the store has given back
	 * every conversation's seq (else a seq could be issued twice) */
	"if redis.call('EXISTS', 'chat:restored') == 0 then\n"
	"  for i = 1, n do out[i] = -5 end\n"
	"  return out\n"
	"end\n"
	/* the stream holds what is not yet persisted: when it is full, refuse
	 * rather than drop an accepted message */
	"local backlog_full = redis.call('XLEN', 'chat:stream') >= cap\n"
	"local t = redis.call('TIME')\n"
	"local now = tonumber(t[1]) + tonumber(t[2]) / 1000000\n"
	"local ms = string.format('%d', math.floor(now * 1000))\n"
	"local function post(conv, head, tail, sender, target, kind)\n"
	"  if backlog_full then return -4 end\n"
	/* the token first: a post refused for its target is input too, and
	 * a flood of them must be limited like any other */
	"  local bucket = 'chat:ratelimit:' .. sender\n"
	"  local tokens, last = burst, now\n"
	"  local b = redis.call('GET', bucket)\n"
	"  if b then\n"
	"    local tk, ts = string.match(b, '^(%S+) (%S+)$')\n"
	"    tokens, last = tonumber(tk) or burst, tonumber(ts) or now\n"
	"  end\n"
	"  tokens = math.min(burst, tokens + math.max(0, now - last) * rate)\n"
	"  if tokens < 1 then\n"
	"    redis.call('SET', bucket, tostring(tokens) .. ' ' .. tostring(now), 'EX', 3600)\n"
	"    return -1\n"
	"  end\n"
	"  redis.call('SET', bucket, tostring(tokens - 1) .. ' ' .. tostring(now), 'EX', 3600)\n"
	"  if kind == 'room' then\n"
	"    local members = 'chat:room:' .. target .. ':members'\n"
	"    if redis.call('SISMEMBER', members, sender) == 0 then\n"
	"      local private = redis.call('HGET', 'chat:room:' .. target, 'private')\n"
	"      if not private then return -2 end\n"
	"      if private == '1' then return -3 end\n"
	/* posting joins: a join like room.join's, within the same cap */
	"      if redis.call('SCARD', 'chat:user:' .. sender .. ':rooms') >= rooms_max then return -12 end\n"
	"      redis.call('SADD', members, sender)\n"
	"      redis.call('SADD', 'chat:user:' .. sender .. ':rooms', target)\n"
	"      redis.call('ZADD', 'chat:user:' .. sender .. ':roomindex', 0, target)\n"
	"      redis.call('XADD', 'chat:ops', '*', 'op', 'member', 'room', target, 'user', sender, 'in', '1')\n"
	"    end\n"
	"  end\n"
	/* a DM goes only to a user who exists (chat:users: connected once,
	 * registered, or known to the store), so nobody who takes a name later
	 * reads what was sent to it before; starting a conversation counts
	 * against the sender's cap (the conversations they are in) */
	"  if kind == 'dm' then\n"
	"    if redis.call('SISMEMBER', 'chat:users', target) == 0 then return -10 end\n"
	"    if redis.call('EXISTS', 'chat:seq:' .. conv) == 0 and\n"
	"       redis.call('SCARD', 'chat:user:' .. sender .. ':dms') >= dms_max then return -11 end\n"
	"  end\n"
	"  local seq = redis.call('INCR', 'chat:seq:' .. conv)\n"
	"  if seq == 1 and kind == 'dm' then\n"
	"    local a, b2 = string.match(conv, '^dm:([^:]+):([^:]+)$')\n"
	"    redis.call('SADD', 'chat:user:' .. a .. ':dms', conv)\n"
	"    redis.call('SADD', 'chat:user:' .. b2 .. ':dms', conv)\n"
	/* the same by name, for unread's pages */
	"    redis.call('ZADD', 'chat:user:' .. a .. ':dmindex', 0, conv)\n"
	"    redis.call('ZADD', 'chat:user:' .. b2 .. ':dmindex', 0, conv)\n"
	"  end\n"
	"  local msg = head .. seq .. ',\"ts\":' .. ms .. tail\n"
	"  redis.call('XADD', 'chat:stream', '*', 'conv', conv, 'seq', seq, 'msg', msg)\n"
	/* the recent list keeps at least recent_max messages and always every
	 * message not yet persisted, so history never has a hole */
	"  local recent = 'chat:recent:' .. conv\n"
	"  if redis.call('RPUSH', recent, msg) > keep + 64 then\n"
	"    local done = tonumber(redis.call('GET', 'chat:persisted:' .. conv) or '0')\n"
	"    local need = math.max(keep, seq - done)\n"
	"    if redis.call('LLEN', recent) > need + 64 then redis.call('LTRIM', recent, -need, -1) end\n"
	"  end\n"
	"  return seq\n"
	"end\n"
	"for i = 0, n - 1 do\n"
	"  local a = 7 + i * 7\n"
	"  if answered_before(ARGV[a + 6]) then\n"
	"    out[i + 1] = -6\n"
	"  else\n"
	"    out[i + 1] = post(ARGV[a], ARGV[a + 1], ARGV[a + 2], ARGV[a + 3], ARGV[a + 4], ARGV[a + 5])\n"
	"  end\n"
	"end\n"
	"for boot in pairs(jmoved) do redis.call('HSET', jkey, boot, jdone[boot]) end\n"
	"return out\n";

/* A token bucket "<tokens> <ts>" at key: level() is what it holds now,
 * take() stores it after spending. A key expires when its bucket would be
 * full again (a missing key is a full bucket), so idle users cost no
 * memory. */
#define BUCKET_FN \
	"local function level(key, rate, burst, now)\n" \
	"  local tokens, last = burst, now\n" \
	"  local b = redis.call('GET', key)\n" \
	"  if b then\n" \
	"    local tk, ts = string.match(b, '^(%S+) (%S+)$')\n" \
	"    tokens, last = tonumber(tk) or burst, tonumber(ts) or now\n" \
	"  end\n" \
	"  return math.min(burst, tokens + math.max(0, now - last) * rate)\n" \
	"end\n" \
	"local function take(key, tokens, rate, burst, now)\n" \
	"  local full_ms = math.ceil((burst - tokens) / rate * 1000) + 1000\n" \
	"  redis.call('SET', key, tostring(tokens) .. ' ' .. tostring(now), 'PX', full_ms)\n" \
	"end\n" \
	"local t = redis.call('TIME')\n" \
	"local now = tonumber(t[1]) + tonumber(t[2]) / 1000000\n"

/* Every signal spends a token first, valid or not, so a flood costs one
 * GET and SET each and is never relayed; at most one rate_limited notice
 * per notice_ms (the NX key). */
const char script_typing[] =
	BUCKET_FN
	"local sender, kind, target = ARGV[1], ARGV[2], ARGV[3]\n"
	"local rate, burst, notice_ms = tonumber(ARGV[4]), tonumber(ARGV[5]), ARGV[6]\n"
	"local key = 'chat:rl:typing:' .. sender\n"
	"local tokens = level(key, rate, burst, now)\n"
	"if tokens < 1 then\n"
	"  if redis.call('SET', 'chat:rl:typing-notice:' .. sender, '1', 'PX', notice_ms, 'NX') then\n"
	"    return -1\n"
	"  end\n"
	"  return -6\n"
	"end\n"
	"take(key, tokens - 1, rate, burst, now)\n"
	"if kind ~= 'room' then return 1 end\n"
	"local private = redis.call('HGET', 'chat:room:' .. target, 'private')\n"
	"if not private then return -2 end\n"
	"if private == '1' and redis.call('SISMEMBER', 'chat:room:' .. target .. ':members', sender) == 0 then\n"
	"  return -3\n"
	"end\n"
	"return 1\n";

/* All buckets of one input must have a token, else none is spent: a
 * room.create refused for its own limit does not also cost a request. */
const char script_limit[] =
	BUCKET_FN
	"local user, n = ARGV[1], tonumber(ARGV[2])\n"
	"local pending = {}\n"
	"for i = 1, n do\n"
	"  local a = 3 + (i - 1) * 3\n"
	"  local key = 'chat:rl:' .. ARGV[a] .. ':' .. user\n"
	"  local rate, burst = tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2])\n"
	"  local tokens = level(key, rate, burst, now)\n"
	"  if tokens < 1 then return i end\n"
	"  pending[i] = {key, tokens - 1, rate, burst}\n"
	"end\n"
	"for i = 1, n do\n"
	"  local p = pending[i]\n"
	"  take(p[1], p[2], p[3], p[4], now)\n"
	"end\n"
	"return 0\n";

/* A private room's changes on chat:acl for the brokers' plugins
 * (authplugin/rooms.h), each with the room's next version: a new room's
 * whole state (its owner alone), then one line per member added or
 * removed, so a change costs O(1) however large the room (never the
 * whole member list). */
#define ACL_FN \
	"local function acl_created(room, owner)\n" \
	"  local ver = redis.call('INCR', 'chat:room:' .. room .. ':ver')\n" \
	"  redis.call('PUBLISH', 'chat:acl', 'room ' .. room .. ' ' .. ver .. ' private ' .. owner)\n" \
	"end\n" \
	"local function acl_member(room, user, added)\n" \
	"  local ver = redis.call('INCR', 'chat:room:' .. room .. ':ver')\n" \
	"  redis.call('PUBLISH', 'chat:acl', (added and 'add ' or 'del ') .. room .. ' ' .. ver .. ' ' .. user)\n" \
	"end\n"

/* A membership change for the store, through chat:ops. */
#define OP_MEMBER_FN \
	"local function op_member(room, user, flag)\n" \
	"  redis.call('XADD', 'chat:ops', '*', 'op', 'member', 'room', room, 'user', user, 'in', flag)\n" \
	"end\n"

/* Membership in both of the user's indexes: the set (unread, restore) and
 * the sorted set that rooms.list pages through by name. */
#define MEMBER_IDX_FN \
	"local function idx_join(user, room)\n" \
	"  redis.call('SADD', 'chat:user:' .. user .. ':rooms', room)\n" \
	"  redis.call('ZADD', 'chat:user:' .. user .. ':roomindex', 0, room)\n" \
	"end\n" \
	"local function idx_leave(user, room)\n" \
	"  redis.call('SREM', 'chat:user:' .. user .. ':rooms', room)\n" \
	"  redis.call('ZREM', 'chat:user:' .. user .. ':roomindex', room)\n" \
	"end\n"

/* Byte order of two room ids (Lua's own < follows Redis's LC_COLLATE). */
#define BEFORE_FN \
	"local function before(a, b)\n" \
	"  for i = 1, math.min(#a, #b) do\n" \
	"    local x, y = string.byte(a, i), string.byte(b, i)\n" \
	"    if x ~= y then return x < y end\n" \
	"  end\n" \
	"  return #a < #b\n" \
	"end\n"

/* rooms.list: one page of the union of the public rooms and the caller's,
 * by name, after cursor, starting with query: two ZRANGEBYLEX of at most
 * limit + 1 names merged, so a page costs O(log n + limit) whatever is
 * stored. Returns {'ok', next cursor or '', "room owner private member"...}. */
#define ROOMS_LIST_FN \
	BEFORE_FN \
	"local function rooms_list(caller, query, cursor, limit)\n" \
	"  local min, max = '[' .. query, '+'\n" \
	"  if query ~= '' then max = '(' .. query .. '\\255' end\n" \
	"  if cursor ~= '' and not before(cursor, query) then min = '(' .. cursor end\n" \
	"  local pub = redis.call('ZRANGEBYLEX', 'chat:rooms:index', min, max, 'LIMIT', 0, limit + 1)\n" \
	"  local mine = redis.call('ZRANGEBYLEX', 'chat:user:' .. caller .. ':roomindex', min, max,\n" \
	"                          'LIMIT', 0, limit + 1)\n" \
	"  local i, j, names = 1, 1, {}\n" \
	"  while #names <= limit and (i <= #pub or j <= #mine) do\n" \
	"    if j > #mine or (i <= #pub and before(pub[i], mine[j])) then\n" \
	"      names[#names + 1] = pub[i]; i = i + 1\n" \
	"    elseif i > #pub or before(mine[j], pub[i]) then\n" \
	"      names[#names + 1] = mine[j]; j = j + 1\n" \
	"    else\n" \
	"      names[#names + 1] = pub[i]; i = i + 1; j = j + 1\n" \
	"    end\n" \
	"  end\n" \
	"  local out = {'ok', #names > limit and names[limit] or ''}\n" \
	"  for k = 1, math.min(limit, #names) do\n" \
	"    local r = names[k]\n" \
	"    local h = redis.call('HMGET', 'chat:room:' .. r, 'owner', 'private')\n" \
	"    if h[1] then\n" \
	"      local m = redis.call('SISMEMBER', 'chat:room:' .. r .. ':members', caller)\n" \
	"      out[#out + 1] = r .. ' ' .. h[1] .. ' ' .. h[2] .. ' ' .. m\n" \
	"    end\n" \
	"  end\n" \
	"  return out\n" \
	"end\n"

const char script_room[] =
	ACL_FN
	OP_MEMBER_FN
	MEMBER_IDX_FN
	ROOMS_LIST_FN
	"local method, caller, room, flag, user, role = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]\n"
	"local key = 'chat:room:' .. room\n"
	"local members = key .. ':members'\n"
	"local function online(u) return redis.call('EXISTS', 'chat:presence:' .. u) end\n"
	/* ARGV[12] user_rooms_max: the rooms a user may be in (create, join) */
	"local rooms_max = tonumber(ARGV[12])\n"
	"local cap_msg = 'you are in ' .. ARGV[12] .. ' rooms, the most one user may be in: leave one first'\n"
	"local function over_cap(u) return redis.call('SCARD', 'chat:user:' .. u .. ':rooms') >= rooms_max end\n"
	"if method == 'rooms.list' then return rooms_list(caller, ARGV[7], ARGV[8], tonumber(ARGV[9])) end\n"
	"if method == 'room.create' then\n"
	"  if redis.call('EXISTS', key) == 1 then\n"
	/* with replicas waited for (ARGV[10] '1'), a create answered
	 * unavailable may have happened: its creator's retry with the same
	 * settings is answered ok (DECISIONS.md) */
	"    local h = redis.call('HMGET', key, 'owner', 'private')\n"
	"    if ARGV[10] == '1' and h[1] == caller and h[2] == flag then return {'ok', caller, flag} end\n"
	"    return {'conflict', 'room exists'}\n"
	"  end\n"
	"  if redis.call('SISMEMBER', 'chat:rooms:deleted', room) == 1 then\n"
	"    return {'conflict', 'a deleted room: its name cannot be used again'}\n"
	"  end\n"
	"  if over_cap(caller) then return {'forbidden', cap_msg} end\n"
	"  local t = redis.call('TIME')\n"
	"  redis.call('HSET', key, 'owner', caller, 'private', flag, 'created', t[1])\n"
	"  if flag == '0' then\n"
	"    redis.call('SADD', 'chat:rooms:public', room)\n"
	"    redis.call('ZADD', 'chat:rooms:index', 0, room)\n"
	"  end\n"
	"  redis.call('SADD', members, caller)\n"
	"  idx_join(caller, room)\n"
	"  redis.call('XADD', 'chat:ops', '*', 'op', 'room', 'room', room, 'owner', caller, 'private', flag, 'created', t[1])\n"
	"  redis.call('XADD', 'chat:ops', '*', 'op', 'member', 'room', room, 'user', caller, 'in', '1')\n"
	"  if flag == '1' then\n"
	"    redis.call('SADD', 'chat:rooms:private', room)\n"
	"    acl_created(room, caller)\n"
	"  end\n"
	"  return {'ok', caller, flag}\n"
	"end\n"
	"local h = redis.call('HMGET', key, 'owner', 'private')\n"
	"if not h[1] then return {'not_found', 'no such room'} end\n"
	"local owner, priv = h[1], h[2]\n"
	"local is_member = redis.call('SISMEMBER', members, caller) == 1\n"
	"if method == 'room.join' then\n"
	"  if priv == '1' and not is_member then return {'forbidden', 'private room: ask the owner for an invitation'} end\n"
	"  if not is_member and over_cap(caller) then return {'forbidden', cap_msg} end\n"
	"  local added = redis.call('SADD', members, caller)\n"
	"  idx_join(caller, room)\n"
	"  if added == 1 then op_member(room, caller, '1') end\n"
	"  return {'ok', tostring(added)}\n"
	"elseif method == 'room.leave' then\n"
	"  local removed = redis.call('SREM', members, caller)\n"
	"  idx_leave(caller, room)\n"
	"  if removed == 1 then op_member(room, caller, '0') end\n"
	"  if priv == '1' and removed == 1 then acl_member(room, caller, false) end\n"
	"  return {'ok', tostring(removed)}\n"
	"elseif method == 'room.members' then\n"
	"  if priv == '1' and not is_member then return {'forbidden', 'not a member'} end\n"
	/* a page of SSCAN (ARGV[8] cursor, ARGV[9] count): a public room's
	 * members can be every user, so no call reads them all */
	"  local page = redis.call('SSCAN', members, ARGV[8], 'COUNT', tonumber(ARGV[9]))\n"
	"  local out = {'ok', page[1]}\n"
	"  for _, m in ipairs(page[2]) do out[#out + 1] = m .. ' ' .. online(m) end\n"
	"  return out\n"
	/* role is the one the plugin stamped on this very request, from the
	 * token of the connection that sent it: no right outlives its token */
	"elseif method == 'room.invite' or method == 'room.remove' then\n"
	"  if caller ~= owner and role ~= 'admin' then\n"
	"    return {'forbidden', 'only the owner or an admin may do this'}\n"
	"  end\n"
	"  local changed\n"
	"  if method == 'room.invite' then\n"
	/* only a user who exists (has signed in, or registered) can be
	 * invited: made-up names would grow a room at no cost, and a name
	 * taken later would inherit the invitation */
	"    if redis.call('SISMEMBER', 'chat:users', user) == 0 then\n"
	"      return {'not_found', 'no such user'}\n"
	"    end\n"
	"    if redis.call('SISMEMBER', members, user) == 1 then return {'ok', '0', priv} end\n"
	/* the invitee's own cap, as if they had joined (user_rooms_max) */
	"    if over_cap(user) then\n"
	"      return {'forbidden', user .. ' is in ' .. ARGV[12] .. ' rooms, the most one user may be in'}\n"
	"    end\n"
	"    local max = tonumber(ARGV[11])\n"
	"    if priv == '1' and max and redis.call('SCARD', members) >= max then\n"
	"      return {'conflict', 'the room is full: a private room has at most ' .. max ..\n"
	"              ' members (private_room_members_max)'}\n"
	"    end\n"
	"    changed = redis.call('SADD', members, user)\n"
	"    idx_join(user, room)\n"
	"  else\n"
	"    changed = redis.call('SREM', members, user)\n"
	"    idx_leave(user, room)\n"
	"  end\n"
	"  if changed == 1 then op_member(room, user, method == 'room.invite' and '1' or '0') end\n"
	"  if priv == '1' and changed == 1 then acl_member(room, user, method == 'room.invite') end\n"
	"  return {'ok', tostring(changed), priv}\n"
	/* room.delete (1.1): O(1) here whatever the room holds. The hash goes
	 * (posts, history, joins answer not_found), the name stays taken
	 * (chat:rooms:deleted), the member set is renamed for the persistence
	 * worker to clear a page at a time (the members' indexes, their inbox
	 * events), and a purge entry in chat:stream, after every message of
	 * the room, has the worker delete its stored messages in pages. */
	"elseif method == 'room.delete' then\n"
	"  if caller ~= owner and role ~= 'admin' then\n"
	"    return {'forbidden', 'only the owner or an admin may delete a room'}\n"
	"  end\n"
	"  redis.call('DEL', key)\n"
	"  redis.call('SADD', 'chat:rooms:deleted', room)\n"
	"  redis.call('SREM', 'chat:rooms:public', room)\n"
	"  redis.call('SREM', 'chat:rooms:private', room)\n"
	"  redis.call('ZREM', 'chat:rooms:index', room)\n"
	"  if redis.call('EXISTS', members) == 1 then\n"
	"    redis.call('RENAME', members, 'chat:gc:members:' .. room)\n"
	"    redis.call('HSET', 'chat:gc:by', room, caller)\n"
	"    redis.call('RPUSH', 'chat:gc:rooms', room)\n"
	"  end\n"
	"  local conv = 'room:' .. room\n"
	"  redis.call('UNLINK', 'chat:recent:' .. conv, 'chat:seq:' .. conv, 'chat:persisted:' .. conv,\n"
	"               'chat:events:' .. conv)\n"
	/* every broker drops the member list (a public state holds none) */
	"  if priv == '1' then\n"
	"    local ver = redis.call('INCR', key .. ':ver')\n"
	"    redis.call('PUBLISH', 'chat:acl', 'room ' .. room .. ' ' .. ver .. ' public')\n"
	"  end\n"
	"  redis.call('XADD', 'chat:ops', '*', 'op', 'room_delete', 'room', room)\n"
	"  redis.call('XADD', 'chat:stream', '*', 'conv', conv, 'purge', '1')\n"
	"  return {'ok', '1', priv}\n"
	"end\n"
	"return {'bad_request', 'unknown method'}\n";

/* The rooms.list indexes from the sets, for a Redis filled by a version
 * without them: once (chat:roomindex:v1 marks it done, and the restore
 * from the store builds them itself), O(rooms + memberships) that one
 * time. */
const char script_index_build[] =
	"if redis.call('EXISTS', 'chat:roomindex:v1') == 1 then return 0 end\n"
	"local n = 0\n"
	"for _, kind in ipairs({'public', 'private'}) do\n"
	"  for _, r in ipairs(redis.call('SMEMBERS', 'chat:rooms:' .. kind)) do\n"
	"    if kind == 'public' then redis.call('ZADD', 'chat:rooms:index', 0, r) end\n"
	"    for _, u in ipairs(redis.call('SMEMBERS', 'chat:room:' .. r .. ':members')) do\n"
	"      redis.call('ZADD', 'chat:user:' .. u .. ':roomindex', 0, r)\n"
	"    end\n"
	"    n = n + 1\n"
	"  end\n"
	"end\n"
	"redis.call('SET', 'chat:roomindex:v1', '1')\n"
	"return n\n";

/* Private rooms' states for a broker whose plugin must learn them all
 * (bridge/acl_sync.c), a bounded page of work per call:
 *   rooms <cursor> <count> <small> <budget>: one SSCAN page of private
 *     rooms; a room of at most <small> members is read whole, as one
 *     "room <room> <ver> private <m>..." line, while the page's lines stay
 *     under <budget> bytes (32 bytes a member id, and a space); any other
 *     is named "scan <room>", for the members op. Returns {next cursor
 *     ("0": done), item...}.
 *   members <room> <cursor> <count>: one SSCAN page of a room's members,
 *     with the room's version at this read. Returns {next cursor, version,
 *     "1" | "0" (no longer private: deleted), member...}.
 * Versions are read, never bumped: a change made between calls is
 * published on chat:acl with its own version, and the plugin applies it on
 * top of the pieces (authplugin/rooms.h). */
const char script_acl_snapshot[] =
	"if ARGV[1] == 'rooms' then\n"
	"  local page = redis.call('SSCAN', 'chat:rooms:private', ARGV[2], 'COUNT', tonumber(ARGV[3]))\n"
	"  local small, budget, used = tonumber(ARGV[4]), tonumber(ARGV[5]), 0\n"
	"  local out = {page[1]}\n"
	"  for _, room in ipairs(page[2]) do\n"
	"    local key = 'chat:room:' .. room\n"
	"    if redis.call('HGET', key, 'private') == '1' then\n"
	"      local n = redis.call('SCARD', key .. ':members')\n"
	"      if n > small or used + 100 + 33 * n > budget then\n"
	"        out[#out + 1] = 'scan ' .. room\n"
	"      else\n"
	"        local ver = redis.call('GET', key .. ':ver') or '0'\n"
	"        local line = 'room ' .. room .. ' ' .. ver .. ' private'\n"
	"        local m = redis.call('SMEMBERS', key .. ':members')\n"
	"        if #m > 0 then line = line .. ' ' .. table.concat(m, ' ') end\n"
	"        used = used + #line\n"
	"        out[#out + 1] = line\n"
	"      end\n"
	"    end\n"
	"  end\n"
	"  return out\n"
	"end\n"
	"local key = 'chat:room:' .. ARGV[2]\n"
	"local ver = redis.call('GET', key .. ':ver') or '0'\n"
	"if redis.call('HGET', key, 'private') ~= '1' then return {'0', ver, '0'} end\n"
	"local page = redis.call('SSCAN', key .. ':members', ARGV[3], 'COUNT', tonumber(ARGV[4]))\n"
	"local out = {page[1], ver, '1'}\n"
	"for _, m in ipairs(page[2]) do out[#out + 1] = m end\n"
	"return out\n";

/* Presence from the plugins' connection reports and the bridges' heartbeats.
 * ARGV op, node, offline delay (seconds), then per op:
 *   up/down user conn role | boot bootid | beat timeout | get user...
 * chat:presence:<user> is a hash of this user's live connections
 * ("<node>/<conn>"); chat:node:<node>:conns lists them per node so a node
 * that restarted or died can be forgotten. Time is Redis's, one clock for
 * every node's heartbeat. Changes of a user's online state are published
 * on chat:presence as "<user>\n<json>", coalesced so that a user who
 * flaps costs the watchers at most two updates per delay: a user whose
 * last connection ends is announced offline only `delay` seconds later
 * (chat:leaving, a sorted set by due time, swept by every beat) unless
 * back by then, and one who comes back before that is not announced
 * online again (still shown online). With delay 0, offline is announced
 * at once. */
const char script_presence[] =
	"local op, node, delay = ARGV[1], ARGV[2], tonumber(ARGV[3]) or 0\n"
	"local t = redis.call('TIME')\n"
	"local now = tonumber(t[1]) + tonumber(t[2]) / 1000000\n"
	"local function announce(user, online)\n"
	"  local json = '{\"user\":\"' .. user .. '\",\"online\":' .. tostring(online) ..\n"
	"               ',\"ts\":' .. string.format('%d', now * 1000) .. '}'\n"
	"  redis.call('PUBLISH', 'chat:presence', user .. '\\n' .. json)\n"
	"end\n"
	/* the user's first connection: announced unless still shown online */
	"local function back(user)\n"
	"  if redis.call('ZREM', 'chat:leaving', user) == 0 then announce(user, true) end\n"
	"end\n"
	/* the user's last connection ended */
	"local function gone(user)\n"
	"  if delay > 0 then redis.call('ZADD', 'chat:leaving', now + delay, user)\n"
	"  else announce(user, false) end\n"
	"end\n"
	/* forgets node n's connections, but those of boot `keep` (reported
	 * by a restarted broker before its boot id was seen here) */
	"local function forget(n, keep)\n"
	"  local key = 'chat:node:' .. n .. ':conns'\n"
	"  for _, item in ipairs(redis.call('SMEMBERS', key)) do\n"
	"    local user, conn = string.match(item, '^(%S+) (%S+)$')\n"
	"    if not keep or not user or string.sub(conn, 1, #keep + 1) ~= keep .. '-' then\n"
	"      if user then\n"
	"        redis.call('HDEL', 'chat:presence:' .. user, n .. '/' .. conn)\n"
	"        if redis.call('HLEN', 'chat:presence:' .. user) == 0 then gone(user) end\n"
	"      end\n"
	"      redis.call('SREM', key, item)\n"
	"    end\n"
	"  end\n"
	"end\n"
	"if op == 'up' or op == 'down' then\n"
	"  local user, conn, role = ARGV[4], ARGV[5], ARGV[6]\n"
	"  local key = 'chat:presence:' .. user\n"
	"  if op == 'up' then\n"
	"    redis.call('SADD', 'chat:users', user)\n"
	"    redis.call('SADD', 'chat:node:' .. node .. ':conns', user .. ' ' .. conn)\n"
	"    if redis.call('HSET', key, node .. '/' .. conn, now) == 1 and redis.call('HLEN', key) == 1 then\n"
	"      back(user)\n"
	"    end\n"
	"  else\n"
	"    redis.call('SREM', 'chat:node:' .. node .. ':conns', user .. ' ' .. conn)\n"
	"    if redis.call('HDEL', key, node .. '/' .. conn) == 1 and redis.call('HLEN', key) == 0 then\n"
	"      gone(user)\n"
	"    end\n"
	"  end\n"
	"  return 1\n"
	"elseif op == 'boot' then\n"
	"  local key = 'chat:node:' .. node .. ':boot'\n"
	"  if redis.call('GET', key) ~= ARGV[4] then\n"
	"    forget(node, ARGV[4])\n"
	"    redis.call('SET', key, ARGV[4])\n"
	"  end\n"
	"  return 1\n"
	/* the node's live connections, a page at a time (bridge/presence.c):
	 * ARGV[4] '1' on the first page, ARGV[5] '1' on the last, then user,
	 * conn pairs. Each is up as with 'up'; the last page forgets the
	 * node's connections no page listed (lost while Redis was away) */
	"elseif op == 'sync' then\n"
	"  local key, seen = 'chat:node:' .. node .. ':conns', 'chat:node:' .. node .. ':sync'\n"
	"  if ARGV[4] == '1' then redis.call('DEL', seen) end\n"
	"  for i = 6, #ARGV - 1, 2 do\n"
	"    local user, conn = ARGV[i], ARGV[i + 1]\n"
	"    local pkey = 'chat:presence:' .. user\n"
	"    redis.call('SADD', seen, user .. ' ' .. conn)\n"
	"    redis.call('SADD', 'chat:users', user)\n"
	"    redis.call('SADD', key, user .. ' ' .. conn)\n"
	"    if redis.call('HSET', pkey, node .. '/' .. conn, now) == 1 and redis.call('HLEN', pkey) == 1 then\n"
	"      back(user)\n"
	"    end\n"
	"  end\n"
	"  if ARGV[5] == '1' then\n"
	"    for _, item in ipairs(redis.call('SDIFF', key, seen)) do\n"
	"      local user, conn = string.match(item, '^(%S+) (%S+)$')\n"
	"      if user then\n"
	"        redis.call('HDEL', 'chat:presence:' .. user, node .. '/' .. conn)\n"
	"        if redis.call('HLEN', 'chat:presence:' .. user) == 0 then gone(user) end\n"
	"      end\n"
	"      redis.call('SREM', key, item)\n"
	"    end\n"
	"    redis.call('DEL', seen)\n"
	"  end\n"
	"  return 1\n"
	"elseif op == 'beat' then\n"
	"  redis.call('ZADD', 'chat:nodes', now, node)\n"
	"  local dead = redis.call('ZRANGEBYSCORE', 'chat:nodes', '-inf', now - tonumber(ARGV[4]))\n"
	"  for _, n in ipairs(dead) do\n"
	"    forget(n)\n"
	"    redis.call('ZREM', 'chat:nodes', n)\n"
	"  end\n"
	/* due offline announcements, a page per beat (every bridge beats) */
	"  for _, user in ipairs(redis.call('ZRANGEBYSCORE', 'chat:leaving', '-inf', now, 'LIMIT', 0, 1000)) do\n"
	"    redis.call('ZREM', 'chat:leaving', user)\n"
	"    if redis.call('EXISTS', 'chat:presence:' .. user) == 0 then announce(user, false) end\n"
	"  end\n"
	"  return #dead\n"
	"elseif op == 'get' then\n"
	"  local out = {}\n"
	"  for i = 4, #ARGV do out[#out + 1] = redis.call('EXISTS', 'chat:presence:' .. ARGV[i]) end\n"
	"  return out\n"
	"end\n"
	"return redis.error_reply('unknown presence op')\n";

/* read: ARGV user, conv, seq. Moves the user's marker forward, never past
 * the conversation's last seq; returns the marker now in force, -2 when
 * the room does not exist or the conversation has no messages, -3 for a
 * private room the user is not in. A moved marker goes to the store. */
const char script_read[] =
	"local user, conv, seq = ARGV[1], ARGV[2], tonumber(ARGV[3])\n"
	"local room = string.match(conv, '^room:(.+)$')\n"
	"if room then\n"
	"  local p = redis.call('HGET', 'chat:room:' .. room, 'private')\n"
	"  if not p then return -2 end\n"
	"  if p == '1' and redis.call('SISMEMBER', 'chat:room:' .. room .. ':members', user) == 0 then\n"
	"    return -3\n"
	"  end\n"
	"end\n"
	"local last = tonumber(redis.call('GET', 'chat:seq:' .. conv) or '0')\n"
	"if last == 0 then return -2 end\n"
	"if seq > last then seq = last end\n"
	"local key = 'chat:read:' .. user\n"
	"local cur = tonumber(redis.call('HGET', key, conv) or '0')\n"
	"if seq <= cur then return cur end\n"
	"redis.call('HSET', key, conv, seq)\n"
	"redis.call('XADD', 'chat:ops', '*', 'op', 'read', 'user', user, 'conv', conv, 'seq', seq)\n"
	"return seq\n";

/* unread: ARGV user, cursor, limit. One page of the user's conversations
 * by id, after cursor ("" or the last conversation of the previous page):
 * the rooms by name (ZRANGEBYLEX of roomindex), then the DMs (of
 * dmindex), at most limit + 1 ids read, so a page costs O(log n + limit)
 * however many conversations the user has. Returns {next cursor ("" on
 * the last page), "conv last read events"...} for those of the page with
 * messages: unread is last - read less the edits and deletions (events)
 * after read. */
const char script_unread[] =
	"local user, cursor, limit = ARGV[1], ARGV[2], tonumber(ARGV[3])\n"
	"local reads = 'chat:read:' .. user\n"
	"local convs = {}\n"
	"local function take(key, prefix, min)\n"
	"  local ids = redis.call('ZRANGEBYLEX', key, min, '+', 'LIMIT', 0, limit + 1 - #convs)\n"
	"  for _, id in ipairs(ids) do convs[#convs + 1] = prefix .. id end\n"
	"end\n"
	"local dm_min = '-'\n"
	"if string.sub(cursor, 1, 3) == 'dm:' then\n"
	"  dm_min = '(' .. cursor\n"
	"else\n"
	"  local after = string.match(cursor, '^room:(.+)$')\n"
	"  take('chat:user:' .. user .. ':roomindex', 'room:', after and '(' .. after or '-')\n"
	"end\n"
	"if #convs <= limit then take('chat:user:' .. user .. ':dmindex', '', dm_min) end\n"
	"local out = {''}\n"
	"if #convs > limit then\n"
	"  out[1] = convs[limit]\n"
	"  convs[limit + 1] = nil\n"
	"end\n"
	"for _, c in ipairs(convs) do\n"
	"  local last = redis.call('GET', 'chat:seq:' .. c)\n"
	"  if last then\n"
	"    local read = redis.call('HGET', reads, c) or '0'\n"
	"    local events = redis.call('ZCOUNT', 'chat:events:' .. c, '(' .. read, last)\n"
	"    out[#out + 1] = c .. ' ' .. last .. ' ' .. read .. ' ' .. events\n"
	"  end\n"
	"end\n"
	"return out\n";

/* One page of a deleted room's cleanup, for the persistence worker: ARGV
 * prefix, count. Takes up to count members of the first room in
 * chat:gc:rooms, drops the room from their indexes and tells each on their
 * inbox; the room leaves the list when its set is empty. Returns how many
 * members were taken (0: nothing to do). */
const char script_room_gc[] =
	"local room = redis.call('LINDEX', 'chat:gc:rooms', 0)\n"
	"if not room then return 0 end\n"
	"local set = 'chat:gc:members:' .. room\n"
	"local by = redis.call('HGET', 'chat:gc:by', room) or ''\n"
	"local users = redis.call('SPOP', set, tonumber(ARGV[2]))\n"
	"for _, u in ipairs(users) do\n"
	"  redis.call('SREM', 'chat:user:' .. u .. ':rooms', room)\n"
	"  redis.call('ZREM', 'chat:user:' .. u .. ':roomindex', room)\n"
	"  redis.call('PUBLISH', 'chat:eph', ARGV[1] .. '/user/' .. u .. '/inbox\\n' ..\n"
	"    '{\"v\":1,\"type\":\"room\",\"event\":\"deleted\",\"room\":\"' .. room .. '\",\"by\":\"' .. by .. '\"}')\n"
	"end\n"
	"if redis.call('EXISTS', set) == 0 then\n"
	"  redis.call('LPOP', 'chat:gc:rooms')\n"
	"  redis.call('HDEL', 'chat:gc:by', room)\n"
	"end\n"
	"return math.max(#users, 1)\n";

/* msg.edit and msg.delete (1.1): ARGV conv, ref, kind ("edit" |
 * "delete"), caller, role, head, tail, keep, from (the message's sender
 * as the store has it, "" when not looked up). The event gets the
 * conversation's next seq and goes where messages go (the stream, the
 * recent list); the recent list's copy of the message is changed with
 * it, so history from Redis shows the latest body, or none. A message
 * older than the recent list answers {'store'} until the caller gives its
 * sender from the store. chat:gone:<conv>:<ref> marks a deletion the store
 * has not applied yet (the persistence worker removes it).
 * Returns {'ok', event} or {code, message}. */
const char script_amend[] =
	"local conv, ref, kind, caller, role = ARGV[1], tonumber(ARGV[2]), ARGV[3], ARGV[4], ARGV[5]\n"
	"local head, tail, keep, sfrom = ARGV[6], ARGV[7], tonumber(ARGV[8]), ARGV[9]\n"
	"local room = string.match(conv, '^room:(.+)$')\n"
	"local owner\n"
	"if room then\n"
	"  local h = redis.call('HMGET', 'chat:room:' .. room, 'owner', 'private')\n"
	"  if not h[1] then return {'not_found', 'no such room'} end\n"
	/* an admin deletes in any room, a member of it or not */
	"  if h[2] == '1' and not (kind == 'delete' and role == 'admin') and\n"
	"     redis.call('SISMEMBER', 'chat:room:' .. room .. ':members', caller) == 0 then\n"
	"    return {'forbidden', 'private room: members only'}\n"
	"  end\n"
	"  owner = h[1]\n"
	"end\n"
	"if redis.call('EXISTS', 'chat:restored') == 0 then return {'unavailable', 'restoring: try again'} end\n"
	"local last = tonumber(redis.call('GET', 'chat:seq:' .. conv) or '0')\n"
	"if ref > last then return {'not_found', 'no such message'} end\n"
	"if redis.call('EXISTS', 'chat:gone:' .. conv .. ':' .. ref) == 1 then\n"
	"  return {'not_found', 'the message was deleted'}\n"
	"end\n"
	"local recent = 'chat:recent:' .. conv\n"
	"local first = last - redis.call('LLEN', recent) + 1\n"
	"local orig, from\n"
	"if ref >= first then\n"
	"  local ok, o = pcall(cjson.decode, redis.call('LINDEX', recent, ref - first))\n"
	"  if not ok or type(o) ~= 'table' then return {'unavailable', 'unreadable message'} end\n"
	"  if o.type ~= nil and o.type ~= 'msg' then return {'bad_request', 'seq is an edit or a deletion, not a message'} end\n"
	"  if o.deleted then return {'not_found', 'the message was deleted'} end\n"
	"  orig, from = o, o.from\n"
	"elseif sfrom == '' then\n"
	"  return {'store'}\n"
	"else\n"
	"  from = sfrom\n"
	"end\n"
	"if from ~= caller then\n"
	"  if kind == 'edit' then return {'forbidden', 'only its sender may edit a message'} end\n"
	"  if not room then return {'forbidden', 'only its sender may delete a direct message'} end\n"
	"  if caller ~= owner and role ~= 'admin' then\n"
	"    return {'forbidden', 'only its sender, the room owner or an admin may delete it'}\n"
	"  end\n"
	"end\n"
	"local t = redis.call('TIME')\n"
	"local ms = string.format('%d', math.floor((tonumber(t[1]) + tonumber(t[2]) / 1000000) * 1000))\n"
	"local seq = redis.call('INCR', 'chat:seq:' .. conv)\n"
	"local msg = head .. seq .. ',\"ts\":' .. ms .. tail\n"
	"redis.call('XADD', 'chat:stream', '*', 'conv', conv, 'seq', seq, 'msg', msg)\n"
	/* the seqs that are not messages, so unread counts skip them (the last
	 * 1,000: a read marker older than that counts a few edits too) */
	"redis.call('ZADD', 'chat:events:' .. conv, seq, seq)\n"
	"redis.call('ZREMRANGEBYRANK', 'chat:events:' .. conv, 0, -1001)\n"
	"if orig then\n"
	"  if kind == 'edit' then\n"
	"    orig.body, orig.edited = cjson.decode(msg).body, tonumber(ms)\n"
	"  else\n"
	"    orig.body, orig.edited, orig.deleted = nil, nil, true\n"
	"  end\n"
	"  redis.call('LSET', recent, ref - first, cjson.encode(orig))\n"
	"end\n"
	/* the bodies of the message's edits in the list go too: those within
	 * the 1,000 entries after it, so a deletion costs a page however
	 * long the list has grown while the store was down (the store strips
	 * every edit of it, by its ref index) */
	"if kind == 'delete' then\n"
	"  redis.call('SET', 'chat:gone:' .. conv .. ':' .. ref, '1')\n"
	"  local from_i = math.max(0, ref - first + 1)\n"
	"  local items = redis.call('LRANGE', recent, from_i, from_i + 999)\n"
	"  local needle = '\"ref\":' .. ref .. '[^%d]'\n"
	"  for i, e in ipairs(items) do\n"
	"    if string.find(e, needle) and string.find(e, '\"type\":\"edit\"', 1, true) then\n"
	"      local ok, o = pcall(cjson.decode, e)\n"
	"      if ok and type(o) == 'table' and o.type == 'edit' and o.ref == ref then\n"
	"        o.body = nil\n"
	"        redis.call('LSET', recent, from_i + i - 1, cjson.encode(o))\n"
	"      end\n"
	"    end\n"
	"  end\n"
	"end\n"
	"if redis.call('RPUSH', recent, msg) > keep + 64 then\n"
	"  local done = tonumber(redis.call('GET', 'chat:persisted:' .. conv) or '0')\n"
	"  local need = math.max(keep, seq - done)\n"
	"  if redis.call('LLEN', recent) > need + 64 then redis.call('LTRIM', recent, -need, -1) end\n"
	"end\n"
	"return {'ok', msg}\n";

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
	hex_sha1(script_limit, out->limit);
	hex_sha1(script_room, out->room);
	hex_sha1(script_acl_snapshot, out->acl_snapshot);
	hex_sha1(script_presence, out->presence);
	hex_sha1(script_read, out->read);
	hex_sha1(script_unread, out->unread);
}
