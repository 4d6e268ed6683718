/*
 * Inside the store: what store.c (URL dispatch, argument checks, the
 * message JSON parser) shares with the backends (store_sqlite.c,
 * store_mongo.c). Not for callers of the store; they use store.h.
 *
 * store.c checks every argument before a backend sees it, so the backends
 * may assume valid names, seq ranges, limits and message JSON.
 */
#ifndef CHAT_STORE_IMPL_H
#define CHAT_STORE_IMPL_H

#include <stdarg.h>

#include "store.h"

/* The fields of one subscriber JSON message (shared/PROTOCOL.md section 5),
 * pointing into the parsed text; cid is NULL when absent. */
struct store__fields {
	const char *conv;
	uint64_t seq;
	const char *id;
	const char *from;
	const char *to;
	int64_t ts;
	const char *body; /* NULL for a delete event */
	const char *cid;
	const char *type; /* "msg", "edit" or "delete" (1.1) */
	uint64_t ref;     /* an event's message seq; 0 for a message */
};

struct store_ops {
	const char *name;
	void (*close)(struct store *s);
	int (*ping)(struct store *s);
	/* f[i] are the parsed fields of msgs[i]; n >= 1 */
	int (*put_messages)(struct store *s, const struct store_msg *msgs,
	                    const struct store__fields *f, size_t n);
	/* before/after already resolved: exactly one mode, bounds <= INT64_MAX */
	int (*history)(struct store *s, const char *conv, uint64_t before, uint64_t after,
	               int limit, struct store_page *out);
	int (*max_seq)(struct store *s, const char *conv, uint64_t *out);
	int (*each_max_seq)(struct store *s,
	                    int (*fn)(void *ctx, const char *conv, uint64_t seq), void *ctx);
	int (*user_create)(struct store *s, const char *user, const char *pwhash,
	                   int64_t created_ms);
	int (*user_get)(struct store *s, const char *user, char *hash, size_t hashlen);
	int (*each_user)(struct store *s, int (*fn)(void *ctx, const char *user), void *ctx);
	int (*room_put)(struct store *s, const struct store_room *r);
	int (*each_room)(struct store *s, int (*fn)(void *ctx, const struct store_room *r),
	                 void *ctx);
	int (*member_set)(struct store *s, const char *room, const char *user, bool member);
	int (*each_member)(struct store *s,
	                   int (*fn)(void *ctx, const char *room, const char *user), void *ctx);
	int (*room_delete)(struct store *s, const char *room, int limit, size_t *removed);
	int (*purge)(struct store *s, const char *conv, int limit, size_t *removed);
	int (*scrub)(struct store *s); /* NULL: nothing to do */
	/* body NULL: a deletion */
	int (*amend)(struct store *s, const char *conv, uint64_t ref, const char *body,
	             int64_t ts);
	int (*read_set)(struct store *s, const char *user, const char *conv, uint64_t seq);
	int (*each_read)(struct store *s,
	                 int (*fn)(void *ctx, const char *user, const char *conv, uint64_t seq),
	                 void *ctx);
};

/* The head of every backend's handle (each embeds it first). store.c
 * sets deadline (CLOCK_MONOTONIC seconds) at the start of every call, and
 * bounded to false for the each_* walks, which may take longer. */
struct store {
	const struct store_ops *ops;
	char errmsg[256];
	int timeout_ms;
	double deadline;
	bool bounded;
};

/* CLOCK_MONOTONIC in seconds. */
double store__now(void);

/* Backend constructors: rest is the URL (sqlite: the part after "sqlite:").
 * On failure *out is NULL and err says why. */
int store__sqlite_open(const char *path, int timeout_ms, struct store **out, char *err,
                       size_t errlen);
int store__mongo_open(const char *url, int timeout_ms, struct store **out, char *err,
                      size_t errlen);

/* Records why the last call failed (store_errmsg); returns rc. */
int store__fail(struct store *s, int rc, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Appends one message to a page being built, copying conv and taking
 * ownership of json (malloc'd; freed here on failure). STORE_E_NOMEM on
 * failure, the page unchanged apart from json being freed. */
int store__page_push(struct store_page *p, size_t *cap, const char *conv, uint64_t seq,
                     char *json);

/* Reverses a page built in descending seq order. */
void store__page_reverse(struct store_page *p);

#endif
