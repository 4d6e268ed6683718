/*
 * The `history` request (shared/PROTOCOL.md section 6), shared by the
 * bridge (MQTT requests) and the web front (GET /api/history): who may read
 * a conversation, and one page of it, merged from Redis (the recent
 * messages of each conversation, which always include every message not
 * yet persisted) and the durable store (everything older).
 *
 * Synchronous: it uses a blocking hiredis context and the store, so call it
 * from a worker thread, never from an event loop.
 */
#ifndef CHAT_HISTORY_H
#define CHAT_HISTORY_H

#include <stdbool.h>
#include <stdint.h>

#include <hiredis/hiredis.h>

#include "store.h"

#define HISTORY_LIMIT_MAX 200
#define HISTORY_LIMIT_DEFAULT 50

/* The most bytes of message JSON one page holds (issue 22): half the
 * broker's 2 MiB packet limit, so a page and its reply around it always
 * fit one packet (and the web front's 2 MiB WebSocket buffer). A page
 * that would hold more has fewer than `limit` messages and says
 * "size_limited": 200 messages of 4 KiB of control characters (each
 * escaped to 6 bytes) are ~4.9 MB of JSON. */
#define HISTORY_PAGE_BYTES (1024 * 1024)

/* What the caller asks for: the newest `limit` messages (before 0: of all,
 * else of those below `before`), or with has_after the oldest `limit`
 * messages above `after` (after 0: from the first). */
struct history_query {
	char conv[NAME_CONV_MAX + 1];
	uint64_t before, after;
	bool has_after;
	int limit;
};

/* Error codes, as the contract names them. */
#define HISTORY_E_BAD_REQUEST "bad_request"
#define HISTORY_E_FORBIDDEN "forbidden"
#define HISTORY_E_NOT_FOUND "not_found"
#define HISTORY_E_UNAVAILABLE "unavailable"

/* Checks and fills q from request values, a negative number meaning
 * absent: conv must be a valid conversation id; at most one of before
 * (>= 1) and after (>= 0); limit 1..200 (absent: the default 50). Returns
 * NULL, or an error code with *msg a human-readable reason. */
const char *history_query_init(struct history_query *q, const char *conv, int64_t before,
                               int64_t after, int64_t limit, const char **msg);

/* Whether caller may read q->conv: a DM only its two users, a public room
 * anyone, a private room its members (asked of Redis). Returns NULL when
 * allowed, else an error code (forbidden, not_found for a room that does
 * not exist, unavailable when Redis does not answer) with *msg. */
const char *history_allowed(redisContext *redis, const char *caller, const char *conv,
                            const char **msg);

/* One page, ascending by seq, as the JSON text {"messages":[...]}
 * (malloc'd, free()). The messages' JSON takes at most HISTORY_PAGE_BYTES
 * (one message always, whatever its size, so paging moves on): a page
 * that cannot hold `limit` messages keeps those nearest its anchor (the
 * oldest above `after`; else the newest below `before`, or of all) and
 * says so with "size_limited":true, so paging on by seq from its edge
 * (before = its first seq, after = its last) reaches every message.
 * store may be NULL (Redis only: fine while the recent messages cover
 * the page). Returns NULL with *json set, or an error code with *msg. */
const char *history_page(redisContext *redis, struct store *store,
                         const struct history_query *q, char **json, const char **msg);

/* One message's JSON text, not NUL-terminated. */
struct history_part {
	const char *json;
	size_t len;
};

/* Which of msgs[0..n) (ascending by seq) a page of at most budget bytes
 * holds, commas between them counted: the first ones when oldest (an
 * `after` page), else the last ones; at least one when n > 0. Sets
 * *first and *count. Pure: no I/O. */
void history_fit(const struct history_part *msgs, size_t n, bool oldest, size_t budget,
                 size_t *first, size_t *count);

#endif
