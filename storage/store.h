/*
 * The durable store: message history, user accounts, rooms and their
 * members, read markers. One interface, two backends chosen by URL:
 *   mongodb://...   MongoDB through mongo-c-driver (production)
 *   sqlite:PATH     an embedded SQLite file (the single-node default)
 * Both behave the same; tests/unit/test_store.c runs one conformance suite
 * against each.
 *
 * Every call is synchronous and may block on the network: call it from a
 * worker thread or a process of its own, never from an event loop that
 * serves clients. A handle is used by one thread at a time; open one per
 * thread.
 *
 * Writes are idempotent so that a worker that crashed after the store
 * confirmed but before it acknowledged its input can replay it harmlessly:
 * a message is unique by (conv, seq), a room by name, a member by
 * (room, user), and a read marker only ever moves forward.
 */
#ifndef CHAT_STORE_H
#define CHAT_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "chat/names.h"

struct store; /* opaque; one per thread */

/* The highest seq a message or read marker may carry: seqs travel as JSON
 * numbers, exact only up to 2^53 - 1. */
#define STORE_SEQ_MAX ((UINT64_C(1) << 53) - 1)

/* The longest password hash store_user_create accepts (bytes, no NUL). */
#define STORE_PWHASH_MAX 511

enum store_err {
	STORE_OK = 0,
	STORE_E_URL = -1,      /* the URL names no backend, or is malformed */
	STORE_E_DOWN = -2,     /* the store did not answer: try again later */
	STORE_E_CONFLICT = -3, /* the thing exists already (user create) */
	STORE_E_NOT_FOUND = -4,
	STORE_E_NOMEM = -5,
	STORE_E_BAD = -6,      /* an argument is invalid (name, length, range) */
};

/* The bound of every store call unless the caller gives one (the
 * store_timeout_ms setting). */
#define STORE_TIMEOUT_DEFAULT_MS 2000

/* Opens the store named by url. On failure *out is NULL and err holds a
 * line saying why. A MongoDB store that is unreachable at open still
 * opens (calls return STORE_E_DOWN until it answers); a malformed URL, or
 * an SQLite file that cannot be created, does not (STORE_E_URL).
 *
 * No call waits much longer than timeout_ms (the open included) on a
 * locked, slow or unreachable store: it returns STORE_E_DOWN instead.
 * SQLite: lock waits and statement run time share one deadline per call
 * (a single fsync may add to it); the each_* iterations bound their lock
 * waits but not their length, as they walk everything. MongoDB: server
 * selection and connecting take half of it, each socket read at most all
 * of it, so a call on a server that accepts and never answers returns
 * within timeout_ms. store_open uses STORE_TIMEOUT_DEFAULT_MS. */
int store_open(const char *url, struct store **out, char *err, size_t errlen);
int store_open_timeout(const char *url, int timeout_ms, struct store **out, char *err,
                       size_t errlen);

/* A handle that opens the store only at its first call, and again at the
 * next call after a failed open (which returns STORE_E_DOWN, the reason in
 * store_errmsg). A caller that may not need the store at all (a history
 * page Redis holds) then never waits for it. Fails only for a malformed
 * URL. */
int store_open_lazy(const char *url, int timeout_ms, struct store **out, char *err, size_t errlen);
void store_close(struct store *s);
const char *store_strerror(int err);

/* A line saying why the last call on s failed (the backend's own words,
 * e.g. "No suitable servers found"), for logs; "" after success. Owned by
 * s, valid until the next call on it. */
const char *store_errmsg(const struct store *s);

/* STORE_OK when the store answers a round trip now. */
int store_ping(struct store *s);

/* ---- messages ---- */

/* One stored message: its conversation, seq and the subscriber JSON of
 * shared/PROTOCOL.md section 5 (NUL-terminated). */
struct store_msg {
	char conv[NAME_CONV_MAX + 1];
	uint64_t seq;
	char *json;
};

/* Writes n messages. A message whose (conv, seq) is stored already is
 * skipped, not an error. Returns STORE_OK only when every message is
 * durable (MongoDB: acknowledged by the majority, journaled).
 * Each json must be a subscriber JSON object whose "conv" and "seq" equal
 * the message's, with string id, from, to, body, numeric ts and optional
 * string cid, and seq 1..STORE_SEQ_MAX; otherwise STORE_E_BAD and nothing
 * of the batch is written. A MongoDB store keeps the fields and gives back
 * an equivalent object (envelope_encode's key order), SQLite the text. */
int store_put_messages(struct store *s, const struct store_msg *msgs, size_t n);

/* Edits and deletions (shared/PROTOCOL.md 1.1 section 5) are stored like
 * messages, with their own seq: {"type":"edit", id, from, ts, ref, body}
 * and {"type":"delete", id, from, ts, ref} (no body, "to" optional). The
 * message they refer to is changed by store_amend. */

/* Applies an edit (body) or a deletion (body NULL) at ts to conv's
 * message ref: an edit sets its body and "edited":ts, unless it is deleted
 * or carries a later edit already; a deletion removes its body for good,
 * sets "deleted":true, and removes the body of every stored edit event of
 * it too, so its text is gone from the store. A message that is not
 * stored changes nothing (STORE_OK); applying one twice is harmless. */
int store_amend(struct store *s, const char *conv, uint64_t ref, const char *body, int64_t ts);

/* One page of history, ascending by seq. msgs[i].json is owned by the
 * page; free with store_page_free. */
struct store_page {
	size_t n;
	struct store_msg *msgs;
};
void store_page_free(struct store_page *p);

/* A page of conv's history, limit 1..1000 messages:
 *   after > 0    the first `limit` messages with seq > after
 *   before > 0   the last `limit` messages with seq < before
 *   neither      the last `limit` messages
 * (after and before both > 0 is STORE_E_BAD). An empty conversation gives
 * an empty page, not an error. */
int store_history(struct store *s, const char *conv, uint64_t before, uint64_t after,
                  int limit, struct store_page *out);

/* The highest stored seq of conv (0 when none). */
int store_max_seq(struct store *s, const char *conv, uint64_t *out);

/* Calls fn for every conversation with its highest stored seq, until fn
 * returns non-zero (which is then returned). For a cold start of Redis. */
int store_each_max_seq(struct store *s, int (*fn)(void *ctx, const char *conv, uint64_t seq),
                       void *ctx);

/* ---- users ---- */

/* Creates an account with its password hash (libsodium's crypto_pwhash_str
 * string). STORE_E_CONFLICT when the user exists. */
int store_user_create(struct store *s, const char *user, const char *pwhash,
                      int64_t created_ms);

/* Copies the user's password hash into hash (hashlen bytes with the NUL).
 * STORE_E_NOT_FOUND when there is no such user; STORE_E_BAD when hash is
 * too small for it (STORE_PWHASH_MAX + 1 always suffices). */
int store_user_get(struct store *s, const char *user, char *hash, size_t hashlen);

/* Calls fn for every account's user id until fn returns non-zero (which is
 * then returned). For a cold start of Redis (its set of known users). */
int store_each_user(struct store *s, int (*fn)(void *ctx, const char *user), void *ctx);

/* ---- rooms and members ---- */

struct store_room {
	char name[NAME_ROOM_MAX + 1];
	char owner[NAME_USER_MAX + 1];
	bool private;
	int64_t created_ms;
	bool deleted; /* (1.1) room.delete: a tombstone, so the name stays taken */
};

/* Creates or replaces the room r. */
int store_room_put(struct store *s, const struct store_room *r);

/* Calls fn for every room until fn returns non-zero. */
int store_each_room(struct store *s, int (*fn)(void *ctx, const struct store_room *r),
                    void *ctx);

/* room.delete, one page at a time: marks the room deleted (store_each_room
 * then gives it with deleted set; store_room_put does not clear it) and
 * removes up to limit (1..1000) of its members; *removed says how many.
 * Call until *removed is 0. */
int store_room_delete(struct store *s, const char *room, int limit, size_t *removed);

/* Removes up to limit (1..1000) of conv's stored messages, the oldest
 * first; *removed says how many. Call until *removed is 0. */
int store_purge(struct store *s, const char *conv, int limit, size_t *removed);

/* After store_amend or store_purge: takes what they removed out of the
 * store's files as far as the backend allows. SQLite (which overwrites
 * freed content, secure_delete) copies its WAL into the database and
 * truncates the WAL to nothing, so no older page image keeps the text;
 * STORE_E_DOWN when a reader held that back until the call's deadline
 * (call again later). MongoDB: nothing the client can do (STORE_OK); see
 * the README on what its files keep. */
int store_scrub(struct store *s);

/* Adds (member true) or removes user from room; doing it twice is fine. */
int store_member_set(struct store *s, const char *room, const char *user, bool member);

/* Calls fn for every (room, user) membership until fn returns non-zero. */
int store_each_member(struct store *s,
                      int (*fn)(void *ctx, const char *room, const char *user), void *ctx);

/* ---- read markers ---- */

/* Marks conv read by user up to seq (0..STORE_SEQ_MAX); a lower seq than
 * the stored one changes nothing. */
int store_read_set(struct store *s, const char *user, const char *conv, uint64_t seq);

/* Calls fn for every (user, conv, seq) read marker until fn returns
 * non-zero. */
int store_each_read(struct store *s,
                    int (*fn)(void *ctx, const char *user, const char *conv, uint64_t seq),
                    void *ctx);

#endif
