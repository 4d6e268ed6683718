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
 * (malloc'd, free()). store may be NULL (Redis only: fine while the recent
 * messages cover the page). Returns NULL with *json set, or an error code
 * with *msg. */
const char *history_page(redisContext *redis, struct store *store,
                         const struct history_query *q, char **json, const char **msg);

#endif
