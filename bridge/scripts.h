/*
 * The Lua scripts the bridge runs in Redis, each one atomic step, and their
 * SHA1 digests for EVALSHA (loaded again after every reconnect).
 *
 * Keys (all under "chat:"):
 *   seq:<conv>          last seq issued in a conversation (INCR)
 *   stream              every accepted message, in seq order per conv;
 *                       fields conv, seq, msg (the subscriber JSON)
 *                       (never trimmed past what the store confirmed)
 *   recent:<conv>       the last recent_max messages' JSON, and every
 *                       message of the conversation not yet persisted
 *   persisted:<conv>    highest seq of the conversation the store confirmed
 *   ops                 room, membership and read-marker changes for the
 *                       store (fields op=room|member|read, ...)
 *   restored            set once the store's state is loaded into Redis;
 *                       absent after a flush: posts wait for it
 *   read:<user>         hash conv -> the user's read marker
 *   user:<user>:dms     set of the user's DM conversation ids (its size
 *                       is what user_dms_max caps)
 *   user:<user>:dmindex sorted set (score 0) of the same, paged by name
 *                       (ZRANGEBYLEX) by unread
 *   dmindex:v1          set once every user's dmindex is complete
 *   ratelimit:<user>    token bucket "<tokens> <ts>" for posts
 *   rl:<kind>:<user>    token bucket of requests (rpc), room creation
 *                       (create) and typing; expires once full again
 *   rl:typing-notice:<user>  set while a typing rate notice was sent
 *   rooms:index         sorted set (score 0) of public room ids, paged
 *                       by name (ZRANGEBYLEX) by rooms.list
 *   user:<user>:roomindex  sorted set (score 0) of the user's rooms
 *   roomindex:v1        set once both indexes are complete
 *   room:<room>         hash {owner, private, created}
 *   room:<room>:members set of user ids
 *   rooms:public        set of public room ids
 *   user:<user>:rooms   set of room ids the user belongs to
 *   users               set of the user ids that exist: every one that
 *                       connected, registered (the web front), was named
 *                       by chatctl, or that the store knows (accounts,
 *                       members, DM parties, readers; rebuilt by the
 *                       restore). A DM goes only to one of them.
 *   users:v1            set once users holds what the store knows
 *   rooms:private       set of private room ids
 *   room:<room>:ver     version of a private room's member list, one more
 *                       per change (authplugin/rooms.h)
 *   presence:<user>     hash of the user's live connections
 *   leaving             sorted set: user -> when to announce them offline
 *                       (their last connection ended; still shown online)
 *   node:<node>:conns   "<user> <conn>" per live connection of a node
 *   node:<node>:boot    the boot id of the node's broker
 *   node:<node>:sync    the connections a presence rewrite listed so far
 *   nodes               sorted set: node -> last heartbeat
 *   cursor:<node>       last stream entry the node delivered
 */
#ifndef CHAT_SCRIPTS_H
#define CHAT_SCRIPTS_H

/* post: a batch of messages, each as one atomic step of the one script.
 * ARGV rate, burst, recent_max, stream_maxlen, n, node, then n times: conv,
 * head, tail, sender, target, kind ("room" | "dm"), journal id; then
 * user_dms_max and user_rooms_max. Returns one status per message: seq >
 * 0, or -1 rate limited, -2 no such room, -3 not a member, -4 the stream
 * of messages not yet persisted is full, -5 Redis lost its data and the
 * store has not given it back yet, -6 answered before, -10 a DM to a user
 * who does not exist (not in chat:users), -11 a new DM conversation while
 * the sender is in user_dms_max of them, -12 a post that would join a
 * room while the sender is in user_rooms_max. A token is spent for every
 * message but -1, -4 and -5 (a refused target is input too). The recent
 * list keeps every message not yet persisted and may run up to 64 over
 * between trims. */
extern const char script_post[];
/* typing: ARGV sender, kind ("room" | "dm"), target, rate, burst,
 * notice_ms. Spends a token of the sender's typing bucket, then returns 1
 * when the signal may be relayed, -1 rate limited (send one notice), -6
 * rate limited (a notice went out within notice_ms: stay silent), -2 no
 * such room, -3 not a member. */
extern const char script_typing[];
/* limit: ARGV user, n, then n times: kind, rate, burst. Spends one token
 * of each bucket rl:<kind>:<user> and returns 0, or returns the 1-based
 * index of the first empty bucket and spends nothing. */
extern const char script_limit[];
/* room: ARGV method, caller, room, flag, user, role, and for rooms.list
 * query, cursor, limit; then the create-retry flag (ARGV[10]),
 * private_room_members_max (ARGV[11]) and user_rooms_max (ARGV[12]), past
 * which room.create and room.join are forbidden; flag is "1"/"0" (private)
 * for room.create; role is
 * the caller's role on this request ("admin" may invite and remove in any
 * room). room.invite takes only a user in chat:users (not_found) and, in a
 * private room, only up to private_room_members_max members (conflict).
 * Changes to a private room's members publish the change, with the room's
 * new version, on chat:acl (see authplugin/rooms.h for the line format).
 * Returns {status,
 * payload...}; status "ok" or an error code; rooms.list {"ok", next
 * cursor or "", "room owner private member"...}; room.members one page
 * of SSCAN (cursor, limit as count) {"ok", next cursor or "0", "user
 * online"...}. */
extern const char script_room[];

/* index_build: no ARGV. Builds rooms:index and user:<u>:roomindex from
 * the sets once (when roomindex:v1 is absent); returns the rooms indexed. */
extern const char script_index_build[];

/* acl_snapshot: ARGV "rooms", cursor, count, small, budget: one SSCAN page
 * of private rooms, {next cursor ("0" when done), state line or "scan
 * <room>"...}; ARGV "members", room, cursor, count: one SSCAN page of a
 * room's members, {next cursor, version, private "1"/"0", member...}. */
extern const char script_acl_snapshot[];
/* presence: ARGV op, node, offline delay, ... (see scripts.c). */
extern const char script_presence[];
/* read: ARGV user, conv, seq; unread: ARGV user, cursor, limit, one page
 * per call and per request (see scripts.c). */
extern const char script_read[];
extern const char script_unread[];

/* msg.edit, msg.delete (1.1); run with EVAL from the worker thread. */
extern const char script_amend[];

/* A page of a deleted room's cleanup, run by the persistence worker. */
extern const char script_room_gc[];

struct script_sha {
	char post[41];
	char typing[41];
	char limit[41];
	char room[41];
	char acl_snapshot[41];
	char presence[41];
	char read[41];
	char unread[41];
};

/* Fills the digests. */
void scripts_sha(struct script_sha *out);

#endif
