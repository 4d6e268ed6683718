/*
 * The MongoDB backend of the store (mongodb://host:port/db, database "chat"
 * when the URL names none), through mongo-c-driver. One mongoc_client_t
 * per handle: a handle belongs to one thread (store.h).
 *
 * Collections and their keys:
 *   messages  {conv, seq, id, from, to, ts, body[, cid][, edited | deleted]},
 *             unique {conv:1, seq:1} (the subscriber JSON split into fields
 *             so it can be queried; rebuilt with envelope_encode on the way
 *             out); edit and delete events (1.1) {conv, seq, type, ref, id,
 *             from, ts[, to][, body]}, indexed {conv:1, ref:1} so that a
 *             deletion finds its message's edits
 *   users     {_id: user id, pwhash, created}
 *   rooms     {_id: name, owner, private, created[, deleted]}
 *   members   {room, user}, unique {room:1, user:1}
 *   reads     {user, conv, seq}, unique {user:1, conv:1}; seq moves by $max
 *
 * Every write waits for w:"majority" with the journal (j:true): a put the
 * store confirmed is then on disk on most of the replica set and survives a
 * failover, which is what lets the persistence worker drop its copy.
 * Writes are retryable (retryWrites, the driver's default, set explicitly):
 * during a replica set election the driver waits for the new primary,
 * within server selection's bound, and sends the write once more; a write
 * the old primary took but did not get to a majority is rolled back there
 * and never confirmed, so the worker keeps its copy and writes it again.
 * A URL that sets retryWrites=false, or a write concern (w, journal,
 * wtimeoutMS) that this one would override, is refused: it would be
 * silently ignored otherwise.
 *
 * An unreachable server must not hang a caller, nor one that accepts the
 * connection and never answers: unless the URL sets them, server selection
 * and connecting (the handshake included) take at most half the store
 * timeout and each socket read at most all of it, after which the call
 * returns STORE_E_DOWN. Indexes are created at open, or at the first call
 * that reaches the server when it was down at open.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <mongoc/mongoc.h>

#include "chat/envelope.h"
#include "chat/log.h"
#include "store_impl.h"

#define DUPLICATE_KEY 11000
#define NOT_IMPLEMENTED 238

struct mongo_store {
	struct store base;
	mongoc_client_t *client;
	mongoc_collection_t *messages, *users, *rooms, *members, *reads;
	char dbname[128];
	bool indexed;
};

static struct mongo_store *to_mongo(struct store *s)
{
	return (struct mongo_store *)s;
}

static pthread_once_t init_once = PTHREAD_ONCE_INIT;

/* The driver's own log lines go to ours (they would print to stderr);
 * the caller gets the reason of a failure from the return value anyway. */
static void driver_log(mongoc_log_level_t level, const char *domain, const char *message,
                       void *unused)
{
	(void)unused;
	log_msg(level <= MONGOC_LOG_LEVEL_WARNING ? LOG_WARN : LOG_DEBUG, "mongoc %s: %s", domain,
	        message);
}

static void init_driver(void)
{
	mongoc_init();
	mongoc_log_set_handler(driver_log, NULL);
	atexit(mongoc_cleanup);
}

/* The store error for a driver error: a duplicate key is a conflict, the
 * rest (no server, network, write concern, server refusal) is "the store
 * did not answer, try later". Records the driver's message. */
static int fail(struct mongo_store *m, const bson_error_t *e, const char *what)
{
	int rc = STORE_E_DOWN;

	if (e->domain == MONGOC_ERROR_SERVER && e->code == DUPLICATE_KEY)
		rc = STORE_E_CONFLICT;
	return store__fail(&m->base, rc, "mongodb %s: %s", what, e->message);
}

/* Creates the unique indexes the queries and idempotent writes rely on.
 * createIndexes is a no-op for indexes that exist. */
static int ensure_indexes(struct mongo_store *m)
{
	static const struct {
		const char *coll, *name, *k1, *k2;
	} ix[] = {
		{"messages", "conv_seq", "conv", "seq"},
		{"members", "room_user", "room", "user"},
		{"reads", "user_conv", "user", "conv"},
	};
	bson_error_t e;

	if (m->indexed)
		return STORE_OK;
	for (size_t i = 0; i < sizeof(ix) / sizeof(ix[0]); i++) {
		bson_t *cmd = BCON_NEW("createIndexes", BCON_UTF8(ix[i].coll), "indexes", "[", "{",
		                       "key", "{", ix[i].k1, BCON_INT32(1), ix[i].k2,
		                       BCON_INT32(1), "}", "name", BCON_UTF8(ix[i].name),
		                       "unique", BCON_BOOL(true), "}", "]");
		bool ok = mongoc_client_write_command_with_opts(m->client, m->dbname, cmd, NULL,
		                                                NULL, &e);
		bson_destroy(cmd);
		if (!ok)
			return fail(m, &e, "createIndexes");
	}
	/* not unique: one message may have many edits */
	bson_t *cmd =
	    BCON_NEW("createIndexes", "messages", "indexes", "[", "{", "key", "{", "conv",
	             BCON_INT32(1), "ref", BCON_INT32(1), "}", "name", "conv_ref", "}", "]");
	bool ok = mongoc_client_write_command_with_opts(m->client, m->dbname, cmd, NULL, NULL, &e);
	bson_destroy(cmd);
	if (!ok)
		return fail(m, &e, "createIndexes");
	m->indexed = true;
	return STORE_OK;
}

#define ENSURE(m)                                                                                \
	do {                                                                                     \
		int rc_ = ensure_indexes(m);                                                     \
		if (rc_ != STORE_OK)                                                             \
			return rc_;                                                              \
	} while (0)

static void mongo_close(struct store *s)
{
	struct mongo_store *m = to_mongo(s);

	mongoc_collection_destroy(m->messages);
	mongoc_collection_destroy(m->users);
	mongoc_collection_destroy(m->rooms);
	mongoc_collection_destroy(m->members);
	mongoc_collection_destroy(m->reads);
	mongoc_client_destroy(m->client);
	free(m);
}

static int mongo_ping(struct store *s)
{
	struct mongo_store *m = to_mongo(s);
	bson_t *cmd = BCON_NEW("ping", BCON_INT32(1));
	bson_error_t e;
	bool ok = mongoc_client_command_simple(m->client, "admin", cmd, NULL, NULL, &e);

	bson_destroy(cmd);
	if (!ok)
		return fail(m, &e, "ping");
	return ensure_indexes(m);
}

/* An unordered insert_many fails as a whole when any document is a
 * duplicate, yet inserts all the others. It succeeded for us when every
 * write error is a duplicate key and the write concern was met. */
static bool only_duplicates(const bson_t *reply)
{
	bson_iter_t it, arr, doc;

	if (bson_iter_init_find(&it, reply, "writeConcernErrors") && BSON_ITER_HOLDS_ARRAY(&it) &&
	    bson_iter_recurse(&it, &arr) && bson_iter_next(&arr))
		return false;
	if (!bson_iter_init_find(&it, reply, "writeErrors") || !BSON_ITER_HOLDS_ARRAY(&it) ||
	    !bson_iter_recurse(&it, &arr))
		return false;
	int n = 0;
	while (bson_iter_next(&arr)) {
		if (!BSON_ITER_HOLDS_DOCUMENT(&arr) || !bson_iter_recurse(&arr, &doc) ||
		    !bson_iter_find(&doc, "code") || bson_iter_as_int64(&doc) != DUPLICATE_KEY)
			return false;
		n++;
	}
	return n > 0;
}

static int mongo_put(struct store *s, const struct store_msg *msgs,
                     const struct store__fields *f, size_t n)
{
	struct mongo_store *m = to_mongo(s);
	bson_t opts = BSON_INITIALIZER, reply;
	bson_error_t e;
	int rc = STORE_OK;

	(void)msgs;
	ENSURE(m);
	bson_t **docs = calloc(n, sizeof(*docs));
	if (docs == NULL)
		return STORE_E_NOMEM;
	for (size_t i = 0; i < n; i++) {
		docs[i] = BCON_NEW("conv", BCON_UTF8(f[i].conv), "seq", BCON_INT64((int64_t)f[i].seq),
		                   "id", BCON_UTF8(f[i].id), "from", BCON_UTF8(f[i].from), "ts",
		                   BCON_INT64(f[i].ts));
		if (f[i].to)
			BSON_APPEND_UTF8(docs[i], "to", f[i].to);
		if (f[i].body)
			BSON_APPEND_UTF8(docs[i], "body", f[i].body);
		if (f[i].cid)
			BSON_APPEND_UTF8(docs[i], "cid", f[i].cid);
		if (f[i].ref) {
			BSON_APPEND_UTF8(docs[i], "type", f[i].type);
			BSON_APPEND_INT64(docs[i], "ref", (int64_t)f[i].ref);
		}
	}
	BSON_APPEND_BOOL(&opts, "ordered", false);
	if (!mongoc_collection_insert_many(m->messages, (const bson_t **)docs, n, &opts, &reply,
	                                   &e) &&
	    !only_duplicates(&reply))
		rc = fail(m, &e, "insert messages");
	if (rc == STORE_E_CONFLICT) /* a duplicate beside another failure */
		rc = STORE_E_DOWN;
	bson_destroy(&reply);
	bson_destroy(&opts);
	for (size_t i = 0; i < n; i++)
		bson_destroy(docs[i]);
	free(docs);
	return rc;
}

static const char *str_field(const bson_t *doc, const char *key)
{
	bson_iter_t it;

	if (bson_iter_init_find(&it, doc, key) && BSON_ITER_HOLDS_UTF8(&it))
		return bson_iter_utf8(&it, NULL);
	return NULL;
}

static int64_t int_field(const bson_t *doc, const char *key)
{
	bson_iter_t it;

	if (bson_iter_init_find(&it, doc, key) && BSON_ITER_HOLDS_NUMBER(&it))
		return bson_iter_as_int64(&it);
	return 0;
}

/* An event, or a message edited or deleted: the subscriber JSON with the
 * 1.1 fields, in the order the bridge sends them (malloc'd). */
static char *doc_json_1_1(const bson_t *doc, const char *conv, const char *type)
{
	static const char *const strs[] = {"id", "from", "to"};
	cJSON *o = cJSON_CreateObject();
	const char *s;
	bson_iter_t it;

	cJSON_AddNumberToObject(o, "v", 1);
	cJSON_AddStringToObject(o, "type", type ? type : "msg");
	cJSON_AddStringToObject(o, "conv", conv);
	cJSON_AddNumberToObject(o, "seq", (double)int_field(doc, "seq"));
	for (size_t i = 0; i < sizeof(strs) / sizeof(strs[0]); i++)
		if ((s = str_field(doc, strs[i])) != NULL)
			cJSON_AddStringToObject(o, strs[i], s);
	cJSON_AddNumberToObject(o, "ts", (double)int_field(doc, "ts"));
	if (type)
		cJSON_AddNumberToObject(o, "ref", (double)int_field(doc, "ref"));
	if ((s = str_field(doc, "body")) != NULL)
		cJSON_AddStringToObject(o, "body", s);
	if ((s = str_field(doc, "cid")) != NULL)
		cJSON_AddStringToObject(o, "cid", s);
	if (bson_iter_init_find(&it, doc, "edited"))
		cJSON_AddNumberToObject(o, "edited", (double)int_field(doc, "edited"));
	if (bson_iter_init_find(&it, doc, "deleted"))
		cJSON_AddBoolToObject(o, "deleted", true);
	char *json = cJSON_PrintUnformatted(o);
	cJSON_Delete(o);
	return json;
}

/* The subscriber JSON of one stored message document (malloc'd). */
static char *doc_json(const bson_t *doc, const char *conv)
{
	const char *s;
	bson_iter_t it;

	if ((s = str_field(doc, "type")) != NULL || bson_iter_init_find(&it, doc, "edited") ||
	    bson_iter_init_find(&it, doc, "deleted"))
		return doc_json_1_1(doc, conv, s);
	struct chat_msg msg = {
		.conv = conv,
		.seq = (uint64_t)int_field(doc, "seq"),
		.id = (s = str_field(doc, "id")) ? s : "",
		.from = (s = str_field(doc, "from")) ? s : "",
		.to = (s = str_field(doc, "to")) ? s : "",
		.ts = int_field(doc, "ts"),
		.body = (s = str_field(doc, "body")) ? s : "",
		.cid = str_field(doc, "cid"),
	};
	return envelope_encode(&msg);
}

static int mongo_history(struct store *s, const char *conv, uint64_t before, uint64_t after,
                         int limit, struct store_page *out)
{
	struct mongo_store *m = to_mongo(s);
	const bson_t *doc;
	bson_error_t e;
	size_t cap = 0;
	int rc = STORE_OK;

	ENSURE(m);
	bson_t *filter = after ? BCON_NEW("conv", BCON_UTF8(conv), "seq", "{", "$gt",
	                                  BCON_INT64((int64_t)after), "}")
	                       : BCON_NEW("conv", BCON_UTF8(conv), "seq", "{", "$lt",
	                                  BCON_INT64((int64_t)before), "}");
	bson_t *opts = BCON_NEW("sort", "{", "seq", BCON_INT32(after ? 1 : -1), "}", "limit",
	                        BCON_INT64(limit), "projection", "{", "_id", BCON_INT32(0), "}");
	mongoc_cursor_t *cur = mongoc_collection_find_with_opts(m->messages, filter, opts, NULL);
	while (mongoc_cursor_next(cur, &doc)) {
		char *json = doc_json(doc, conv);
		if (json == NULL) {
			rc = STORE_E_NOMEM;
			goto cleanup;
		}
		rc = store__page_push(out, &cap, conv, (uint64_t)int_field(doc, "seq"), json);
		if (rc != STORE_OK)
			goto cleanup;
	}
	if (mongoc_cursor_error(cur, &e)) {
		rc = fail(m, &e, "history");
		goto cleanup;
	}
	if (!after)
		store__page_reverse(out);
cleanup:
	mongoc_cursor_destroy(cur);
	bson_destroy(opts);
	bson_destroy(filter);
	return rc;
}

static int mongo_max_seq(struct store *s, const char *conv, uint64_t *out)
{
	struct mongo_store *m = to_mongo(s);
	const bson_t *doc;
	bson_error_t e;
	int rc = STORE_OK;

	ENSURE(m);
	bson_t *filter = BCON_NEW("conv", BCON_UTF8(conv));
	bson_t *opts = BCON_NEW("sort", "{", "seq", BCON_INT32(-1), "}", "limit", BCON_INT64(1),
	                        "projection", "{", "_id", BCON_INT32(0), "seq", BCON_INT32(1),
	                        "}");
	mongoc_cursor_t *cur = mongoc_collection_find_with_opts(m->messages, filter, opts, NULL);
	uint64_t max = 0;
	if (mongoc_cursor_next(cur, &doc))
		max = (uint64_t)int_field(doc, "seq");
	if (mongoc_cursor_error(cur, &e))
		rc = fail(m, &e, "max seq");
	else
		*out = max;
	mongoc_cursor_destroy(cur);
	bson_destroy(opts);
	bson_destroy(filter);
	return rc;
}

typedef int (*max_seq_fn)(void *ctx, const char *conv, uint64_t seq);

/* Without $group's accumulators (FerretDB 1.x has none of $max, $first):
 * every (conv, seq) in key order, reporting each conv's last seq. */
static int each_max_seq_by_scan(struct mongo_store *m, max_seq_fn fn, void *ctx)
{
	char conv[NAME_CONV_MAX + 1] = "";
	uint64_t max = 0;
	const bson_t *doc;
	bson_error_t e;
	int rc = STORE_OK;

	bson_t *filter = bson_new();
	bson_t *opts = BCON_NEW("sort", "{", "conv", BCON_INT32(1), "seq", BCON_INT32(1), "}",
	                        "projection", "{", "_id", BCON_INT32(0), "conv", BCON_INT32(1),
	                        "seq", BCON_INT32(1), "}");
	mongoc_cursor_t *cur = mongoc_collection_find_with_opts(m->messages, filter, opts, NULL);
	while (mongoc_cursor_next(cur, &doc)) {
		const char *c = str_field(doc, "conv");
		if (c == NULL)
			continue;
		if (conv[0] && strcmp(c, conv) != 0 && (rc = fn(ctx, conv, max)) != 0)
			goto cleanup;
		snprintf(conv, sizeof(conv), "%s", c);
		max = (uint64_t)int_field(doc, "seq");
	}
	if (mongoc_cursor_error(cur, &e))
		rc = fail(m, &e, "each max seq");
	else if (conv[0])
		rc = fn(ctx, conv, max);
cleanup:
	mongoc_cursor_destroy(cur);
	bson_destroy(opts);
	bson_destroy(filter);
	return rc;
}

/* MongoDB answers this from the {conv, seq} index, one step per
 * conversation ($sort + $group $first becomes a DISTINCT_SCAN). */
static int mongo_each_max_seq(struct store *s, max_seq_fn fn, void *ctx)
{
	struct mongo_store *m = to_mongo(s);
	const bson_t *doc;
	bson_error_t e;
	int rc = STORE_OK;

	ENSURE(m);
	bson_t *pipeline = BCON_NEW("pipeline", "[", "{", "$sort", "{", "conv", BCON_INT32(1),
	                            "seq", BCON_INT32(-1), "}", "}", "{", "$group", "{", "_id",
	                            BCON_UTF8("$conv"), "seq", "{", "$first", BCON_UTF8("$seq"),
	                            "}", "}", "}", "]");
	mongoc_cursor_t *cur =
		mongoc_collection_aggregate(m->messages, MONGOC_QUERY_NONE, pipeline, NULL, NULL);
	while (mongoc_cursor_next(cur, &doc)) {
		const char *c = str_field(doc, "_id");
		if (c && (rc = fn(ctx, c, (uint64_t)int_field(doc, "seq"))) != 0)
			goto cleanup;
	}
	if (mongoc_cursor_error(cur, &e)) {
		if (e.domain == MONGOC_ERROR_SERVER && e.code == NOT_IMPLEMENTED)
			rc = each_max_seq_by_scan(m, fn, ctx);
		else
			rc = fail(m, &e, "each max seq");
	}
cleanup:
	mongoc_cursor_destroy(cur);
	bson_destroy(pipeline);
	return rc;
}

static int mongo_user_create(struct store *s, const char *user, const char *pwhash,
                             int64_t created_ms)
{
	struct mongo_store *m = to_mongo(s);
	bson_error_t e;

	ENSURE(m);
	bson_t *doc = BCON_NEW("_id", BCON_UTF8(user), "pwhash", BCON_UTF8(pwhash), "created",
	                       BCON_INT64(created_ms));
	bool ok = mongoc_collection_insert_one(m->users, doc, NULL, NULL, &e);
	bson_destroy(doc);
	return ok ? STORE_OK : fail(m, &e, "user create");
}

static int mongo_user_get(struct store *s, const char *user, char *hash, size_t hashlen)
{
	struct mongo_store *m = to_mongo(s);
	const bson_t *doc;
	bson_error_t e;
	int rc = STORE_E_NOT_FOUND;

	ENSURE(m);
	bson_t *filter = BCON_NEW("_id", BCON_UTF8(user));
	bson_t *opts = BCON_NEW("limit", BCON_INT64(1));
	mongoc_cursor_t *cur = mongoc_collection_find_with_opts(m->users, filter, opts, NULL);
	if (mongoc_cursor_next(cur, &doc)) {
		const char *h = str_field(doc, "pwhash");
		size_t len = h ? strlen(h) : 0;
		if (len + 1 > hashlen) {
			rc = store__fail(s, STORE_E_BAD, "hash buffer of %zu bytes too small", hashlen);
		} else {
			memcpy(hash, h ? h : "", len + 1);
			rc = STORE_OK;
		}
	}
	if (mongoc_cursor_error(cur, &e))
		rc = fail(m, &e, "user get");
	mongoc_cursor_destroy(cur);
	bson_destroy(opts);
	bson_destroy(filter);
	return rc;
}

static int mongo_room_put(struct store *s, const struct store_room *r)
{
	struct mongo_store *m = to_mongo(s);
	bson_error_t e;

	ENSURE(m);
	bson_t *filter = BCON_NEW("_id", BCON_UTF8(r->name));
	/* $set, not a replacement: a deleted room's tombstone stays */
	bson_t *doc = BCON_NEW("$set", "{", "owner", BCON_UTF8(r->owner), "private",
	                       BCON_BOOL(r->private), "created", BCON_INT64(r->created_ms), "}");
	bson_t *opts = BCON_NEW("upsert", BCON_BOOL(true));
	bool ok = mongoc_collection_update_one(m->rooms, filter, doc, opts, NULL, &e);
	bson_destroy(opts);
	bson_destroy(doc);
	bson_destroy(filter);
	return ok ? STORE_OK : fail(m, &e, "room put");
}

/* Runs a find over all of coll (ordered by sort) and hands each document
 * to row(); stops when row returns non-zero and returns that. */
static int each_doc(struct mongo_store *m, mongoc_collection_t *coll, bson_t *opts,
                    int (*row)(const bson_t *doc, void *fn, void *ctx), void *fn, void *ctx)
{
	const bson_t *doc;
	bson_error_t e;
	int rc = STORE_OK;

	ENSURE(m);
	bson_t *filter = bson_new();
	mongoc_cursor_t *cur = mongoc_collection_find_with_opts(coll, filter, opts, NULL);
	while (mongoc_cursor_next(cur, &doc))
		if ((rc = row(doc, fn, ctx)) != 0)
			goto cleanup;
	if (mongoc_cursor_error(cur, &e))
		rc = fail(m, &e, "iterate");
cleanup:
	mongoc_cursor_destroy(cur);
	bson_destroy(filter);
	return rc;
}

typedef int (*room_fn)(void *ctx, const struct store_room *r);

static int room_doc(const bson_t *doc, void *fn, void *ctx)
{
	struct store_room r;
	bson_iter_t it;
	const char *s;

	memset(&r, 0, sizeof(r));
	snprintf(r.name, sizeof(r.name), "%s", (s = str_field(doc, "_id")) ? s : "");
	snprintf(r.owner, sizeof(r.owner), "%s", (s = str_field(doc, "owner")) ? s : "");
	r.private = bson_iter_init_find(&it, doc, "private") && bson_iter_as_bool(&it);
	r.created_ms = int_field(doc, "created");
	r.deleted = bson_iter_init_find(&it, doc, "deleted") && bson_iter_as_bool(&it);
	return ((room_fn)fn)(ctx, &r);
}

static int mongo_each_room(struct store *s, room_fn fn, void *ctx)
{
	bson_t *opts = BCON_NEW("sort", "{", "_id", BCON_INT32(1), "}");
	int rc = each_doc(to_mongo(s), to_mongo(s)->rooms, opts, room_doc, (void *)fn, ctx);

	bson_destroy(opts);
	return rc;
}

static int mongo_member_set(struct store *s, const char *room, const char *user, bool member)
{
	struct mongo_store *m = to_mongo(s);
	bson_error_t e;
	bool ok;

	ENSURE(m);
	bson_t *filter = BCON_NEW("room", BCON_UTF8(room), "user", BCON_UTF8(user));
	if (member) {
		bson_t *update = BCON_NEW("$set", "{", "room", BCON_UTF8(room), "user",
		                          BCON_UTF8(user), "}");
		bson_t *opts = BCON_NEW("upsert", BCON_BOOL(true));
		ok = mongoc_collection_update_one(m->members, filter, update, opts, NULL, &e);
		/* two concurrent upserts: one inserts, the other hits the index */
		if (!ok && e.domain == MONGOC_ERROR_SERVER && e.code == DUPLICATE_KEY)
			ok = true;
		bson_destroy(opts);
		bson_destroy(update);
	} else {
		ok = mongoc_collection_delete_one(m->members, filter, NULL, NULL, &e);
	}
	bson_destroy(filter);
	return ok ? STORE_OK : fail(m, &e, "member set");
}

typedef int (*member_fn)(void *ctx, const char *room, const char *user);

typedef int (*user_fn)(void *ctx, const char *user);

static int user_doc(const bson_t *doc, void *fn, void *ctx)
{
	const char *user = str_field(doc, "_id");

	return ((user_fn)fn)(ctx, user ? user : "");
}

static int mongo_each_user(struct store *s, user_fn fn, void *ctx)
{
	bson_t *opts = BCON_NEW("projection", "{", "_id", BCON_INT32(1), "}");
	int rc = each_doc(to_mongo(s), to_mongo(s)->users, opts, user_doc, (void *)fn, ctx);

	bson_destroy(opts);
	return rc;
}

static int member_doc(const bson_t *doc, void *fn, void *ctx)
{
	const char *room = str_field(doc, "room"), *user = str_field(doc, "user");

	return ((member_fn)fn)(ctx, room ? room : "", user ? user : "");
}

static int mongo_each_member(struct store *s, member_fn fn, void *ctx)
{
	bson_t *opts = BCON_NEW("projection", "{", "_id", BCON_INT32(0), "}");
	int rc = each_doc(to_mongo(s), to_mongo(s)->members, opts, member_doc, (void *)fn, ctx);

	bson_destroy(opts);
	return rc;
}

/* An edit: $set body and edited, unless deleted or edited later. A
 * deletion: the body and any edit gone from the message ($unset), then
 * from every edit event of it (the conv_ref index). */
static int mongo_amend(struct store *s, const char *conv, uint64_t ref, const char *body,
                       int64_t ts)
{
	struct mongo_store *m = to_mongo(s);
	bson_error_t e;
	bool ok;

	ENSURE(m);
	if (body) {
		bson_t *filter =
		    BCON_NEW("conv", BCON_UTF8(conv), "seq", BCON_INT64((int64_t)ref), "deleted",
		             "{", "$exists", BCON_BOOL(false), "}", "$or", "[", "{", "edited", "{",
		             "$exists", BCON_BOOL(false), "}", "}", "{", "edited", "{", "$lte",
		             BCON_INT64(ts), "}", "}", "]");
		bson_t *update =
		    BCON_NEW("$set", "{", "body", BCON_UTF8(body), "edited", BCON_INT64(ts), "}");
		ok = mongoc_collection_update_one(m->messages, filter, update, NULL, NULL, &e);
		bson_destroy(update);
		bson_destroy(filter);
		return ok ? STORE_OK : fail(m, &e, "amend");
	}
	bson_t *filter = BCON_NEW("conv", BCON_UTF8(conv), "seq", BCON_INT64((int64_t)ref));
	bson_t *update = BCON_NEW("$set", "{", "deleted", BCON_BOOL(true), "}", "$unset", "{",
	                          "body", BCON_UTF8(""), "edited", BCON_UTF8(""), "}");
	ok = mongoc_collection_update_one(m->messages, filter, update, NULL, NULL, &e);
	bson_destroy(update);
	bson_destroy(filter);
	if (ok) {
		filter = BCON_NEW("conv", BCON_UTF8(conv), "ref", BCON_INT64((int64_t)ref));
		update = BCON_NEW("$unset", "{", "body", BCON_UTF8(""), "}");
		ok = mongoc_collection_update_many(m->messages, filter, update, NULL, NULL, &e);
		bson_destroy(update);
		bson_destroy(filter);
	}
	return ok ? STORE_OK : fail(m, &e, "amend");
}

/* Deletes up to limit documents of coll matching filter (taken): a find of
 * their _ids, then one delete of those, so a page costs limit documents
 * whatever the collection holds. */
static int delete_page(struct mongo_store *m, mongoc_collection_t *coll, bson_t *filter, int limit,
                       size_t *removed, const char *what)
{
	bson_t *opts =
	    BCON_NEW("limit", BCON_INT64(limit), "projection", "{", "_id", BCON_INT32(1), "}");
	bson_t ids = BSON_INITIALIZER, reply;
	const bson_t *doc;
	bson_error_t e;
	bson_iter_t it;
	int rc = STORE_OK, n = 0;
	char key[16];

	mongoc_cursor_t *cur = mongoc_collection_find_with_opts(coll, filter, opts, NULL);
	while (mongoc_cursor_next(cur, &doc))
		if (bson_iter_init_find(&it, doc, "_id")) {
			snprintf(key, sizeof(key), "%d", n++);
			bson_append_value(&ids, key, -1, bson_iter_value(&it));
		}
	if (mongoc_cursor_error(cur, &e))
		rc = fail(m, &e, what);
	mongoc_cursor_destroy(cur);
	if (rc == STORE_OK && n > 0) {
		bson_t *del = BCON_NEW("_id", "{", "$in", BCON_ARRAY(&ids), "}");
		if (!mongoc_collection_delete_many(coll, del, NULL, &reply, &e))
			rc = fail(m, &e, what);
		else if (bson_iter_init_find(&it, &reply, "deletedCount"))
			*removed = (size_t)bson_iter_as_int64(&it);
		else
			*removed = (size_t)n;
		bson_destroy(&reply);
		bson_destroy(del);
	}
	bson_destroy(&ids);
	bson_destroy(opts);
	bson_destroy(filter);
	return rc;
}

static int mongo_room_delete(struct store *s, const char *room, int limit, size_t *removed)
{
	struct mongo_store *m = to_mongo(s);
	bson_error_t e;

	ENSURE(m);
	bson_t *filter = BCON_NEW("_id", BCON_UTF8(room));
	bson_t *update = BCON_NEW("$set", "{", "deleted", BCON_BOOL(true), "}");
	bson_t *opts = BCON_NEW("upsert", BCON_BOOL(true));
	bool ok = mongoc_collection_update_one(m->rooms, filter, update, opts, NULL, &e);
	bson_destroy(opts);
	bson_destroy(update);
	bson_destroy(filter);
	if (!ok)
		return fail(m, &e, "room delete");
	return delete_page(m, m->members, BCON_NEW("room", BCON_UTF8(room)), limit, removed,
	                   "room delete");
}

static int mongo_purge(struct store *s, const char *conv, int limit, size_t *removed)
{
	struct mongo_store *m = to_mongo(s);

	ENSURE(m);
	return delete_page(m, m->messages, BCON_NEW("conv", BCON_UTF8(conv)), limit, removed,
	                   "purge");
}

static int mongo_read_set(struct store *s, const char *user, const char *conv, uint64_t seq)
{
	struct mongo_store *m = to_mongo(s);
	bson_error_t e;
	bool ok;

	ENSURE(m);
	bson_t *filter = BCON_NEW("user", BCON_UTF8(user), "conv", BCON_UTF8(conv));
	bson_t *update = BCON_NEW("$max", "{", "seq", BCON_INT64((int64_t)seq), "}");
	bson_t *opts = BCON_NEW("upsert", BCON_BOOL(true));
	ok = mongoc_collection_update_one(m->reads, filter, update, opts, NULL, &e);
	/* a concurrent upsert won the insert: now the $max applies to it */
	if (!ok && e.domain == MONGOC_ERROR_SERVER && e.code == DUPLICATE_KEY)
		ok = mongoc_collection_update_one(m->reads, filter, update, opts, NULL, &e);
	bson_destroy(opts);
	bson_destroy(update);
	bson_destroy(filter);
	return ok ? STORE_OK : fail(m, &e, "read set");
}

typedef int (*read_fn)(void *ctx, const char *user, const char *conv, uint64_t seq);

static int read_doc(const bson_t *doc, void *fn, void *ctx)
{
	const char *user = str_field(doc, "user"), *conv = str_field(doc, "conv");

	return ((read_fn)fn)(ctx, user ? user : "", conv ? conv : "",
	                     (uint64_t)int_field(doc, "seq"));
}

static int mongo_each_read(struct store *s, read_fn fn, void *ctx)
{
	bson_t *opts = BCON_NEW("projection", "{", "_id", BCON_INT32(0), "}");
	int rc = each_doc(to_mongo(s), to_mongo(s)->reads, opts, read_doc, (void *)fn, ctx);

	bson_destroy(opts);
	return rc;
}

static const struct store_ops mongo_ops = {
	.name = "mongodb",
	.close = mongo_close,
	.ping = mongo_ping,
	.put_messages = mongo_put,
	.history = mongo_history,
	.max_seq = mongo_max_seq,
	.each_max_seq = mongo_each_max_seq,
	.user_create = mongo_user_create,
	.user_get = mongo_user_get,
	.each_user = mongo_each_user,
	.room_put = mongo_room_put,
	.each_room = mongo_each_room,
	.member_set = mongo_member_set,
	.each_member = mongo_each_member,
	.amend = mongo_amend,
	.room_delete = mongo_room_delete,
	.purge = mongo_purge,
	.read_set = mongo_read_set,
	.each_read = mongo_each_read,
};

static void default_timeout(mongoc_uri_t *uri, const char *key, int32_t ms)
{
	if (!mongoc_uri_has_option(uri, key))
		mongoc_uri_set_option_as_int32(uri, key, ms);
}

/* Parses the URL and makes the client; no network traffic is needed to
 * succeed, so an unreachable server still opens. Indexes are attempted
 * once here, quietly. */
int store__mongo_open(const char *url, int timeout_ms, struct store **out, char *err,
                      size_t errlen)
{
	mongoc_write_concern_t *wc = NULL;
	mongoc_uri_t *uri = NULL;
	struct mongo_store *m = NULL;
	bson_error_t e;
	int rc = STORE_E_NOMEM;

	pthread_once(&init_once, init_driver);
	uri = mongoc_uri_new_with_error(url, &e);
	if (uri == NULL) {
		snprintf(err, err ? errlen : 0, "bad MongoDB URL: %s", e.message);
		return STORE_E_URL;
	}
	const char *db = mongoc_uri_get_database(uri);
	if (db == NULL || db[0] == '\0')
		db = "chat";
	if (strlen(db) >= sizeof(m->dbname) || strpbrk(db, "/\\. \"$") != NULL) {
		snprintf(err, err ? errlen : 0, "bad MongoDB database name in the URL");
		rc = STORE_E_URL;
		goto error;
	}
	if (!mongoc_uri_get_option_as_bool(uri, MONGOC_URI_RETRYWRITES, true)) {
		snprintf(err, err ? errlen : 0,
		         "bad MongoDB URL: retryWrites=false is not supported (writes must be retryable)");
		rc = STORE_E_URL;
		goto error;
	}
	if (mongoc_uri_has_option(uri, MONGOC_URI_W) ||
	    mongoc_uri_has_option(uri, MONGOC_URI_JOURNAL) ||
	    mongoc_uri_has_option(uri, MONGOC_URI_WTIMEOUTMS)) {
		snprintf(err, err ? errlen : 0,
		         "bad MongoDB URL: w, journal and wtimeoutMS are set by the store "
		         "(w: majority, j: true, store_timeout_ms)");
		rc = STORE_E_URL;
		goto error;
	}
	mongoc_uri_set_option_as_bool(uri, MONGOC_URI_RETRYWRITES, true);
	int32_t half = timeout_ms / 2 > 0 ? timeout_ms / 2 : 1;
	default_timeout(uri, MONGOC_URI_SERVERSELECTIONTIMEOUTMS, half);
	default_timeout(uri, MONGOC_URI_CONNECTTIMEOUTMS, half);
	default_timeout(uri, MONGOC_URI_SOCKETTIMEOUTMS, timeout_ms);
	m = calloc(1, sizeof(*m));
	if (m == NULL)
		goto error;
	m->base.ops = &mongo_ops;
	m->base.timeout_ms = timeout_ms;
	snprintf(m->dbname, sizeof(m->dbname), "%s", db);
	m->client = mongoc_client_new_from_uri_with_error(uri, &e);
	if (m->client == NULL) {
		snprintf(err, err ? errlen : 0, "MongoDB client: %s", e.message);
		rc = STORE_E_URL;
		goto error;
	}
	mongoc_client_set_error_api(m->client, MONGOC_ERROR_API_VERSION_2);
	mongoc_client_set_appname(m->client, "chatstore");
	wc = mongoc_write_concern_new();
	/* the majority's answer in time, or an error we can retry */
	mongoc_write_concern_set_wmajority(wc, timeout_ms);
	mongoc_write_concern_set_journal(wc, true);
	mongoc_client_set_write_concern(m->client, wc);
	m->messages = mongoc_client_get_collection(m->client, db, "messages");
	m->users = mongoc_client_get_collection(m->client, db, "users");
	m->rooms = mongoc_client_get_collection(m->client, db, "rooms");
	m->members = mongoc_client_get_collection(m->client, db, "members");
	m->reads = mongoc_client_get_collection(m->client, db, "reads");
	ensure_indexes(m);
	m->base.errmsg[0] = '\0';
	mongoc_write_concern_destroy(wc);
	mongoc_uri_destroy(uri);
	*out = &m->base;
	return STORE_OK;
error:
	if (rc == STORE_E_NOMEM)
		snprintf(err, err ? errlen : 0, "MongoDB store: out of memory");
	if (m)
		mongo_close(&m->base);
	mongoc_write_concern_destroy(wc);
	mongoc_uri_destroy(uri);
	return rc;
}
