/*
 * The SQLite backend of the store (sqlite:PATH), for a single node.
 *
 * Durability: WAL journal with synchronous=FULL. store_put_messages
 * promises that what it confirmed is durable (the persistence worker then
 * drops its copy), and in WAL mode only FULL syncs the log at every commit;
 * NORMAL may lose the last commits on power loss. The fsync is paid once per
 * put batch (one transaction), so its cost is spread over the batch.
 *
 * Layout: messages is a WITHOUT ROWID table keyed (conv, seq), so a
 * conversation's messages sit together in key order and a history page is
 * one range read of the primary key, with no second lookup. The other
 * tables are keyed by what makes them unique, which is also how they are
 * written (INSERT OR IGNORE / upserts make every write idempotent).
 *
 * The page cache is 64 MiB per handle (SQLite's default is 2 MiB): the
 * upper levels of the messages tree then stay in memory at millions of
 * messages, so a history page costs about one leaf read.
 *
 * Hot statements are prepared once at open; the each_* iterations prepare
 * their own, so a callback may call back into the store.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <sqlite3.h>

#include "store_impl.h"

/* How often (in virtual machine steps) a statement checks its deadline. */
#define PROGRESS_STEPS 1000

enum stmt_id {
	ST_PUT,
	ST_AFTER,
	ST_BEFORE,
	ST_MAX,
	ST_USER_NEW,
	ST_USER_GET,
	ST_ROOM_PUT,
	ST_MEMBER_ADD,
	ST_MEMBER_DEL,
	ST_READ_SET,
	ST_BEGIN,
	ST_COMMIT,
	ST_ROLLBACK,
	ST_COUNT
};

static const char *const stmt_sql[ST_COUNT] = {
	[ST_PUT] = "INSERT OR IGNORE INTO messages(conv, seq, json) VALUES (?1, ?2, ?3)",
	[ST_AFTER] = "SELECT seq, json FROM messages WHERE conv = ?1 AND seq > ?2 "
	             "ORDER BY seq ASC LIMIT ?3",
	[ST_BEFORE] = "SELECT seq, json FROM messages WHERE conv = ?1 AND seq < ?2 "
	              "ORDER BY seq DESC LIMIT ?3",
	[ST_MAX] = "SELECT max(seq) FROM messages WHERE conv = ?1",
	[ST_USER_NEW] = "INSERT OR IGNORE INTO users(id, pwhash, created) VALUES (?1, ?2, ?3)",
	[ST_USER_GET] = "SELECT pwhash FROM users WHERE id = ?1",
	[ST_ROOM_PUT] = "INSERT OR REPLACE INTO rooms(name, owner, private, created) "
	                "VALUES (?1, ?2, ?3, ?4)",
	[ST_MEMBER_ADD] = "INSERT OR IGNORE INTO members(room, user) VALUES (?1, ?2)",
	[ST_MEMBER_DEL] = "DELETE FROM members WHERE room = ?1 AND user = ?2",
	[ST_READ_SET] = "INSERT INTO reads(user, conv, seq) VALUES (?1, ?2, ?3) "
	                "ON CONFLICT(user, conv) DO UPDATE SET seq = excluded.seq "
	                "WHERE excluded.seq > reads.seq",
	[ST_BEGIN] = "BEGIN IMMEDIATE",
	[ST_COMMIT] = "COMMIT",
	[ST_ROLLBACK] = "ROLLBACK",
};

/* user_version says which schema the file holds; 2 is this one (1 had no
 * index of the edit events by the message they refer to, and no
 * deleted_rooms). */
static const char schema_sql[] =
	"CREATE TABLE IF NOT EXISTS messages ("
	" conv TEXT NOT NULL, seq INTEGER NOT NULL, json TEXT NOT NULL,"
	" PRIMARY KEY (conv, seq)) WITHOUT ROWID;"
	"CREATE TABLE IF NOT EXISTS users ("
	" id TEXT PRIMARY KEY, pwhash TEXT NOT NULL, created INTEGER NOT NULL);"
	"CREATE TABLE IF NOT EXISTS rooms ("
	" name TEXT PRIMARY KEY, owner TEXT NOT NULL, private INTEGER NOT NULL,"
	" created INTEGER NOT NULL);"
	"CREATE TABLE IF NOT EXISTS members ("
	" room TEXT NOT NULL, user TEXT NOT NULL, PRIMARY KEY (room, user)) WITHOUT ROWID;"
	"CREATE TABLE IF NOT EXISTS reads ("
	" user TEXT NOT NULL, conv TEXT NOT NULL, seq INTEGER NOT NULL,"
	" PRIMARY KEY (user, conv)) WITHOUT ROWID;"
	"CREATE TABLE IF NOT EXISTS deleted_rooms (name TEXT PRIMARY KEY) WITHOUT ROWID;"
	"CREATE INDEX IF NOT EXISTS messages_ref ON messages(conv, json_extract(json, '$.ref'))"
	" WHERE json_extract(json, '$.ref') IS NOT NULL;"
	"PRAGMA user_version = 2;";

/* Every wait for a lock and every statement's run time count against the
 * call's one deadline (store.h): a store locked by another process, or a
 * statement that runs long, makes the call fail with STORE_E_DOWN instead
 * of waiting. SQLite's own busy timeout would restart its count at every
 * lock a call meets, and bounds no run time. */
static int busy_wait(void *arg, int tries)
{
	const struct store *s = arg;
	(void)tries;

	if (store__now() >= s->deadline)
		return 0;
	sqlite3_sleep(5);
	return 1;
}

static int past_deadline(void *arg)
{
	const struct store *s = arg;

	return s->bounded && store__now() >= s->deadline;
}

struct sqlite_store {
	struct store base;
	sqlite3 *db;
	sqlite3_stmt *st[ST_COUNT];
};

static struct sqlite_store *to_sql(struct store *s)
{
	return (struct sqlite_store *)s;
}

/* Maps a SQLite result code to a store error, recording the message.
 * Busy, interrupted (past the deadline), full and I/O trouble are "try
 * again later": STORE_E_DOWN. */
static int sql_fail(struct sqlite_store *q, int src, const char *what)
{
	int rc = STORE_E_DOWN;

	if ((src & 0xff) == SQLITE_NOMEM)
		rc = STORE_E_NOMEM;
	return store__fail(&q->base, rc, "sqlite %s: %s", what, sqlite3_errmsg(q->db));
}

/* Resets st for reuse and drops its bindings (a bound text must not
 * outlive the caller's buffer). */
static void done(sqlite3_stmt *st)
{
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
}

static void sqlite_close(struct store *s)
{
	struct sqlite_store *q = to_sql(s);

	for (int i = 0; i < ST_COUNT; i++)
		sqlite3_finalize(q->st[i]);
	sqlite3_close(q->db);
	free(q);
}

static int sqlite_ping(struct store *s)
{
	struct sqlite_store *q = to_sql(s);
	int rc = sqlite3_exec(q->db, "SELECT 1 FROM users LIMIT 1", NULL, NULL, NULL);

	return rc == SQLITE_OK ? STORE_OK : sql_fail(q, rc, "ping");
}

/* One transaction for the whole batch: one fsync, and all or nothing. */
static int sqlite_put(struct store *s, const struct store_msg *msgs,
                      const struct store__fields *f, size_t n)
{
	struct sqlite_store *q = to_sql(s);
	sqlite3_stmt *put = q->st[ST_PUT];
	int src;

	(void)f;
	if ((src = sqlite3_step(q->st[ST_BEGIN])) != SQLITE_DONE) {
		done(q->st[ST_BEGIN]);
		return sql_fail(q, src, "begin");
	}
	done(q->st[ST_BEGIN]);
	for (size_t i = 0; i < n; i++) {
		sqlite3_bind_text(put, 1, msgs[i].conv, -1, SQLITE_STATIC);
		sqlite3_bind_int64(put, 2, (sqlite3_int64)msgs[i].seq);
		sqlite3_bind_text(put, 3, msgs[i].json, -1, SQLITE_STATIC);
		src = sqlite3_step(put);
		done(put);
		if (src != SQLITE_DONE)
			goto error;
	}
	src = sqlite3_step(q->st[ST_COMMIT]);
	done(q->st[ST_COMMIT]);
	if (src == SQLITE_DONE)
		return STORE_OK;
error:;
	int rc = sql_fail(q, src, "put messages");
	if (!sqlite3_get_autocommit(q->db)) {
		sqlite3_step(q->st[ST_ROLLBACK]);
		done(q->st[ST_ROLLBACK]);
	}
	return rc;
}

static int sqlite_history(struct store *s, const char *conv, uint64_t before, uint64_t after,
                          int limit, struct store_page *out)
{
	struct sqlite_store *q = to_sql(s);
	sqlite3_stmt *st = q->st[after ? ST_AFTER : ST_BEFORE];
	size_t cap = 0;
	int src, rc = STORE_OK;

	sqlite3_bind_text(st, 1, conv, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)(after ? after : before));
	sqlite3_bind_int(st, 3, limit);
	while ((src = sqlite3_step(st)) == SQLITE_ROW) {
		const unsigned char *text = sqlite3_column_text(st, 1);
		char *json = text ? strdup((const char *)text) : NULL;
		if (json == NULL) {
			rc = STORE_E_NOMEM;
			goto cleanup;
		}
		rc = store__page_push(out, &cap, conv, (uint64_t)sqlite3_column_int64(st, 0), json);
		if (rc != STORE_OK)
			goto cleanup;
	}
	if (src != SQLITE_DONE) {
		rc = sql_fail(q, src, "history");
		goto cleanup;
	}
	if (!after)
		store__page_reverse(out);
cleanup:
	done(st);
	return rc;
}

static int sqlite_max_seq(struct store *s, const char *conv, uint64_t *out)
{
	struct sqlite_store *q = to_sql(s);
	sqlite3_stmt *st = q->st[ST_MAX];
	int src;

	sqlite3_bind_text(st, 1, conv, -1, SQLITE_STATIC);
	src = sqlite3_step(st);
	if (src != SQLITE_ROW) {
		done(st);
		return sql_fail(q, src, "max seq");
	}
	*out = (uint64_t)sqlite3_column_int64(st, 0); /* NULL reads as 0 */
	done(st);
	return STORE_OK;
}

/* Runs sql (no parameters) and hands each row to row(); stops when row
 * returns non-zero and returns that. */
static int each_row(struct sqlite_store *q, const char *sql,
                    int (*row)(sqlite3_stmt *st, void *fn, void *ctx), void *fn, void *ctx)
{
	sqlite3_stmt *st = NULL;
	int src, rc = STORE_OK;

	if ((src = sqlite3_prepare_v2(q->db, sql, -1, &st, NULL)) != SQLITE_OK)
		return sql_fail(q, src, "prepare");
	while ((src = sqlite3_step(st)) == SQLITE_ROW)
		if ((rc = row(st, fn, ctx)) != 0)
			goto cleanup;
	if (src != SQLITE_DONE)
		rc = sql_fail(q, src, "iterate");
cleanup:
	sqlite3_finalize(st);
	return rc;
}

static const char *col(sqlite3_stmt *st, int i)
{
	const unsigned char *t = sqlite3_column_text(st, i);

	return t ? (const char *)t : "";
}

typedef int (*max_seq_fn)(void *ctx, const char *conv, uint64_t seq);

static int max_seq_row(sqlite3_stmt *st, void *fn, void *ctx)
{
	return ((max_seq_fn)fn)(ctx, col(st, 0), (uint64_t)sqlite3_column_int64(st, 1));
}

/* Walks the distinct conversations through the primary key (one seek per
 * conversation, not a scan of every message), and takes each one's max. */
static int sqlite_each_max_seq(struct store *s, max_seq_fn fn, void *ctx)
{
	static const char sql[] =
		"WITH RECURSIVE c(conv) AS ("
		" SELECT (SELECT min(conv) FROM messages)"
		" UNION ALL"
		" SELECT (SELECT min(conv) FROM messages WHERE conv > c.conv) FROM c"
		" WHERE c.conv IS NOT NULL)"
		"SELECT conv, (SELECT max(seq) FROM messages m WHERE m.conv = c.conv)"
		" FROM c WHERE conv IS NOT NULL";

	return each_row(to_sql(s), sql, max_seq_row, (void *)fn, ctx);
}

static int sqlite_user_create(struct store *s, const char *user, const char *pwhash,
                              int64_t created_ms)
{
	struct sqlite_store *q = to_sql(s);
	sqlite3_stmt *st = q->st[ST_USER_NEW];

	sqlite3_bind_text(st, 1, user, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, pwhash, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, created_ms);
	int src = sqlite3_step(st);
	done(st);
	if (src != SQLITE_DONE)
		return sql_fail(q, src, "user create");
	return sqlite3_changes(q->db) == 1 ? STORE_OK : STORE_E_CONFLICT;
}

static int sqlite_user_get(struct store *s, const char *user, char *hash, size_t hashlen)
{
	struct sqlite_store *q = to_sql(s);
	sqlite3_stmt *st = q->st[ST_USER_GET];
	int rc = STORE_OK;

	sqlite3_bind_text(st, 1, user, -1, SQLITE_STATIC);
	int src = sqlite3_step(st);
	if (src == SQLITE_DONE) {
		rc = STORE_E_NOT_FOUND;
	} else if (src != SQLITE_ROW) {
		rc = sql_fail(q, src, "user get");
	} else {
		const char *h = col(st, 0);
		size_t len = strlen(h);
		if (len + 1 > hashlen)
			rc = store__fail(s, STORE_E_BAD, "hash buffer of %zu bytes too small", hashlen);
		else
			memcpy(hash, h, len + 1);
	}
	done(st);
	return rc;
}

static int sqlite_room_put(struct store *s, const struct store_room *r)
{
	struct sqlite_store *q = to_sql(s);
	sqlite3_stmt *st = q->st[ST_ROOM_PUT];

	sqlite3_bind_text(st, 1, r->name, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, r->owner, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 3, r->private ? 1 : 0);
	sqlite3_bind_int64(st, 4, r->created_ms);
	int src = sqlite3_step(st);
	done(st);
	return src == SQLITE_DONE ? STORE_OK : sql_fail(q, src, "room put");
}

typedef int (*room_fn)(void *ctx, const struct store_room *r);

static int room_row(sqlite3_stmt *st, void *fn, void *ctx)
{
	struct store_room r;

	memset(&r, 0, sizeof(r));
	snprintf(r.name, sizeof(r.name), "%s", col(st, 0));
	snprintf(r.owner, sizeof(r.owner), "%s", col(st, 1));
	r.private = sqlite3_column_int(st, 2) != 0;
	r.created_ms = sqlite3_column_int64(st, 3);
	r.deleted = sqlite3_column_int(st, 4) != 0;
	return ((room_fn)fn)(ctx, &r);
}

static int sqlite_each_room(struct store *s, room_fn fn, void *ctx)
{
	return each_row(to_sql(s),
	                "SELECT r.name, r.owner, r.private, r.created, d.name IS NOT NULL "
	                "FROM rooms r LEFT JOIN deleted_rooms d ON d.name = r.name ORDER BY r.name",
	                room_row, (void *)fn, ctx);
}

static int sqlite_member_set(struct store *s, const char *room, const char *user, bool member)
{
	struct sqlite_store *q = to_sql(s);
	sqlite3_stmt *st = q->st[member ? ST_MEMBER_ADD : ST_MEMBER_DEL];

	sqlite3_bind_text(st, 1, room, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, user, -1, SQLITE_STATIC);
	int src = sqlite3_step(st);
	done(st);
	return src == SQLITE_DONE ? STORE_OK : sql_fail(q, src, "member set");
}

typedef int (*user_fn)(void *ctx, const char *user);

static int user_row(sqlite3_stmt *st, void *fn, void *ctx)
{
	return ((user_fn)fn)(ctx, col(st, 0));
}

static int sqlite_each_user(struct store *s, user_fn fn, void *ctx)
{
	return each_row(to_sql(s), "SELECT id FROM users ORDER BY id", user_row, (void *)fn, ctx);
}

typedef int (*member_fn)(void *ctx, const char *room, const char *user);

static int member_row(sqlite3_stmt *st, void *fn, void *ctx)
{
	return ((member_fn)fn)(ctx, col(st, 0), col(st, 1));
}

static int sqlite_each_member(struct store *s, member_fn fn, void *ctx)
{
	return each_row(to_sql(s), "SELECT room, user FROM members ORDER BY room, user",
	                member_row, (void *)fn, ctx);
}

static int sqlite_read_set(struct store *s, const char *user, const char *conv, uint64_t seq)
{
	struct sqlite_store *q = to_sql(s);
	sqlite3_stmt *st = q->st[ST_READ_SET];

	sqlite3_bind_text(st, 1, user, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, conv, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, (sqlite3_int64)seq);
	int src = sqlite3_step(st);
	done(st);
	return src == SQLITE_DONE ? STORE_OK : sql_fail(q, src, "read set");
}

typedef int (*read_fn)(void *ctx, const char *user, const char *conv, uint64_t seq);

static int read_row(sqlite3_stmt *st, void *fn, void *ctx)
{
	return ((read_fn)fn)(ctx, col(st, 0), col(st, 1), (uint64_t)sqlite3_column_int64(st, 2));
}

static int sqlite_each_read(struct store *s, read_fn fn, void *ctx)
{
	return each_row(to_sql(s), "SELECT user, conv, seq FROM reads ORDER BY user, conv",
	                read_row, (void *)fn, ctx);
}

/* The message's JSON with an edit (body) or a deletion applied; NULL when
 * nothing changes (deleted already, or a later edit is in). */
static char *amended_json(const char *json, const char *body, int64_t ts)
{
	cJSON *o = cJSON_Parse(json);
	char *out = NULL;
	const cJSON *edited = cJSON_GetObjectItemCaseSensitive(o, "edited");

	if (!cJSON_IsObject(o) || cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "deleted")))
		goto cleanup;
	if (body) {
		if (cJSON_IsNumber(edited) && edited->valuedouble > (double)ts)
			goto cleanup;
		cJSON_DeleteItemFromObjectCaseSensitive(o, "body");
		cJSON_DeleteItemFromObjectCaseSensitive(o, "edited");
		cJSON_AddStringToObject(o, "body", body);
		cJSON_AddNumberToObject(o, "edited", (double)ts);
	} else {
		cJSON_DeleteItemFromObjectCaseSensitive(o, "body");
		cJSON_DeleteItemFromObjectCaseSensitive(o, "edited");
		cJSON_AddBoolToObject(o, "deleted", true);
	}
	out = cJSON_PrintUnformatted(o);
cleanup:
	cJSON_Delete(o);
	return out;
}

/* One transaction: the message rewritten, and for a deletion the bodies
 * of its edit events removed (found by the messages_ref index, so the
 * cost is the message's edits, not the conversation's length). */
static int sqlite_amend(struct store *s, const char *conv, uint64_t ref, const char *body,
                        int64_t ts)
{
	struct sqlite_store *q = to_sql(s);
	sqlite3_stmt *get = NULL, *put = NULL, *strip = NULL;
	char *json = NULL;
	int src;

	if ((src = sqlite3_step(q->st[ST_BEGIN])) != SQLITE_DONE) {
		done(q->st[ST_BEGIN]);
		return sql_fail(q, src, "begin");
	}
	done(q->st[ST_BEGIN]);
	if ((src =
	         sqlite3_prepare_v2(q->db, "SELECT json FROM messages WHERE conv = ?1 AND seq = ?2",
	                            -1, &get, NULL)) != SQLITE_OK)
		goto error;
	sqlite3_bind_text(get, 1, conv, -1, SQLITE_STATIC);
	sqlite3_bind_int64(get, 2, (sqlite3_int64)ref);
	src = sqlite3_step(get);
	if (src == SQLITE_ROW) {
		json = amended_json((const char *)sqlite3_column_text(get, 0), body, ts);
		src = SQLITE_DONE;
	}
	if (src != SQLITE_DONE)
		goto error;
	if (json) {
		if ((src = sqlite3_prepare_v2(
		         q->db, "UPDATE messages SET json = ?3 WHERE conv = ?1 AND seq = ?2", -1,
		         &put, NULL)) != SQLITE_OK)
			goto error;
		sqlite3_bind_text(put, 1, conv, -1, SQLITE_STATIC);
		sqlite3_bind_int64(put, 2, (sqlite3_int64)ref);
		sqlite3_bind_text(put, 3, json, -1, SQLITE_STATIC);
		if ((src = sqlite3_step(put)) != SQLITE_DONE)
			goto error;
	}
	if (body == NULL) {
		if ((src = sqlite3_prepare_v2(
		         q->db,
		         "UPDATE messages SET json = json_remove(json, '$.body') "
		         "WHERE conv = ?1 AND json_extract(json, '$.ref') = ?2 "
		         "AND seq > ?2",
		         -1, &strip, NULL)) != SQLITE_OK)
			goto error;
		sqlite3_bind_text(strip, 1, conv, -1, SQLITE_STATIC);
		sqlite3_bind_int64(strip, 2, (sqlite3_int64)ref);
		if ((src = sqlite3_step(strip)) != SQLITE_DONE)
			goto error;
	}
	src = sqlite3_step(q->st[ST_COMMIT]);
	done(q->st[ST_COMMIT]);
	if (src != SQLITE_DONE)
		goto error;
	sqlite3_finalize(get);
	sqlite3_finalize(put);
	sqlite3_finalize(strip);
	free(json);
	return STORE_OK;
error:;
	int rc = sql_fail(q, src, "amend");
	sqlite3_finalize(get);
	sqlite3_finalize(put);
	sqlite3_finalize(strip);
	free(json);
	if (!sqlite3_get_autocommit(q->db)) {
		sqlite3_step(q->st[ST_ROLLBACK]);
		done(q->st[ST_ROLLBACK]);
	}
	return rc;
}

/* Runs sql with text ?1 and int ?2; *changed gets the rows it changed. */
static int run_page(struct sqlite_store *q, const char *sql, const char *key, int n,
                    size_t *changed, const char *what)
{
	sqlite3_stmt *st = NULL;
	int src = sqlite3_prepare_v2(q->db, sql, -1, &st, NULL);

	if (src == SQLITE_OK) {
		sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
		if (n)
			sqlite3_bind_int(st, 2, n);
		src = sqlite3_step(st);
	}
	sqlite3_finalize(st);
	if (src != SQLITE_DONE)
		return sql_fail(q, src, what);
	if (changed)
		*changed = (size_t)sqlite3_changes(q->db);
	return STORE_OK;
}

static int sqlite_room_delete(struct store *s, const char *room, int limit, size_t *removed)
{
	struct sqlite_store *q = to_sql(s);
	int rc = run_page(q, "INSERT OR IGNORE INTO deleted_rooms(name) VALUES (?1)", room, 0, NULL,
	                  "room delete");

	if (rc == STORE_OK)
		rc = run_page(q,
		              "DELETE FROM members WHERE room = ?1 AND user IN "
		              "(SELECT user FROM members WHERE room = ?1 LIMIT ?2)",
		              room, limit, removed, "room delete");
	return rc;
}

static int sqlite_purge(struct store *s, const char *conv, int limit, size_t *removed)
{
	return run_page(to_sql(s),
	                "DELETE FROM messages WHERE conv = ?1 AND seq IN "
	                "(SELECT seq FROM messages WHERE conv = ?1 ORDER BY seq LIMIT ?2)",
	                conv, limit, removed, "purge");
}

/* The WAL copied into the database and truncated to nothing: the pages
 * an amend or a purge rewrote (their freed bytes zeroed, secure_delete)
 * replace the older images, in the database and gone from the WAL. Waits
 * for readers and writers through the busy handler, so within the call's
 * deadline; SQLITE_BUSY when one still held it back then. */
static int sqlite_scrub(struct store *s)
{
	struct sqlite_store *q = to_sql(s);
	int src = sqlite3_wal_checkpoint_v2(q->db, NULL, SQLITE_CHECKPOINT_TRUNCATE, NULL, NULL);

	return src == SQLITE_OK ? STORE_OK : sql_fail(q, src, "checkpoint");
}

static const struct store_ops sqlite_ops = {
	.name = "sqlite",
	.close = sqlite_close,
	.ping = sqlite_ping,
	.put_messages = sqlite_put,
	.history = sqlite_history,
	.max_seq = sqlite_max_seq,
	.each_max_seq = sqlite_each_max_seq,
	.user_create = sqlite_user_create,
	.user_get = sqlite_user_get,
	.each_user = sqlite_each_user,
	.room_put = sqlite_room_put,
	.each_room = sqlite_each_room,
	.member_set = sqlite_member_set,
	.each_member = sqlite_each_member,
	.amend = sqlite_amend,
	.room_delete = sqlite_room_delete,
	.purge = sqlite_purge,
	.scrub = sqlite_scrub,
	.read_set = sqlite_read_set,
	.each_read = sqlite_each_read,
};

/* Opens (creating) the file, sets the journal, creates the schema and
 * prepares the statements. Any failure closes everything again. */
/* WAL, durability and cache settings, and the schema. Returns an SQLite
 * result code. */
static int sqlite_setup(sqlite3 *db)
{
	/* journal_mode answers with a row, so it is checked on its own. */
	sqlite3_stmt *wal = NULL;
	int src = sqlite3_prepare_v2(db, "PRAGMA journal_mode = WAL", -1, &wal, NULL);
	if (src == SQLITE_OK && (src = sqlite3_step(wal)) == SQLITE_ROW) {
		const unsigned char *mode = sqlite3_column_text(wal, 0);
		/* ":memory:" has no WAL; it says "memory", which is fine */
		src = mode && (strcmp((const char *)mode, "wal") == 0 ||
		               strcmp((const char *)mode, "memory") == 0)
		              ? SQLITE_OK
		              : SQLITE_CANTOPEN;
	}
	sqlite3_finalize(wal);
	if (src != SQLITE_OK)
		return src;
	/* secure_delete: freed content (an edited message's old body, a
	 * deleted one's, a purged room's messages) is overwritten with zeros
	 * in the pages, not left in free space (store_scrub) */
	src = sqlite3_exec(db,
	                   "PRAGMA synchronous = FULL; PRAGMA cache_size = -65536;"
	                   " PRAGMA secure_delete = ON;",
	                   NULL, NULL, NULL);
	if (src != SQLITE_OK)
		return src;
	/* A file that has the schema already needs no write: opening it must
	 * not wait for a writer that holds the lock (WAL lets it read). */
	sqlite3_stmt *ver = NULL;
	int version = 0;
	src = sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &ver, NULL);
	if (src == SQLITE_OK && (src = sqlite3_step(ver)) == SQLITE_ROW) {
		version = sqlite3_column_int(ver, 0);
		src = SQLITE_OK;
	}
	sqlite3_finalize(ver);
	if (src != SQLITE_OK || version == 2)
		return src;
	return sqlite3_exec(db, schema_sql, NULL, NULL, NULL);
}

int store__sqlite_open(const char *path, int timeout_ms, struct store **out, char *err,
                       size_t errlen)
{
	struct sqlite_store *q;
	int src;

	if (path[0] == '\0') {
		snprintf(err, err ? errlen : 0, "sqlite: URL has no path (sqlite:PATH)");
		return STORE_E_URL;
	}
	q = calloc(1, sizeof(*q));
	if (q == NULL) {
		snprintf(err, err ? errlen : 0, "sqlite:%s: out of memory", path);
		return STORE_E_NOMEM;
	}
	q->base.ops = &sqlite_ops;
	q->base.timeout_ms = timeout_ms;
	q->base.bounded = true;
	q->base.deadline = store__now() + timeout_ms / 1000.0;
	src = sqlite3_open_v2(
	    path, &q->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
	if (src != SQLITE_OK)
		goto error;
	sqlite3_extended_result_codes(q->db, 1);
	sqlite3_busy_handler(q->db, busy_wait, &q->base);
	sqlite3_progress_handler(q->db, PROGRESS_STEPS, past_deadline, &q->base);
	/* Several processes opening a new file at once (the bridges of a
	 * node, their threads) contend for the journal-mode switch and the
	 * schema, where SQLite answers BUSY without calling the busy handler
	 * (waiting could deadlock): try again until the open's deadline. */
	for (;;) {
		src = sqlite_setup(q->db);
		if ((src & 0xff) != SQLITE_BUSY && (src & 0xff) != SQLITE_LOCKED)
			break;
		if (store__now() >= q->base.deadline)
			break;
		sqlite3_sleep(10);
	}
	if (src != SQLITE_OK)
		goto error;
	for (int i = 0; i < ST_COUNT; i++)
		if ((src = sqlite3_prepare_v3(q->db, stmt_sql[i], -1, SQLITE_PREPARE_PERSISTENT,
		                              &q->st[i], NULL)) != SQLITE_OK)
			goto error;
	*out = &q->base;
	return STORE_OK;
error:
	snprintf(err, err ? errlen : 0, "sqlite:%s: %s", path,
	         q->db ? sqlite3_errmsg(q->db) : sqlite3_errstr(src));
	sqlite_close(&q->base);
	if ((src & 0xff) == SQLITE_NOMEM)
		return STORE_E_NOMEM;
	/* a file that cannot be opened at all (no folder, no permission, not a
	 * database) is a setting to fix, not an outage to wait out */
	if ((src & 0xff) == SQLITE_CANTOPEN || (src & 0xff) == SQLITE_PERM ||
	    (src & 0xff) == SQLITE_NOTADB)
		return STORE_E_URL;
	return STORE_E_DOWN;
}
