/*
 * The persistence worker (see persist.h). Blocking hiredis and the store,
 * on a thread of its own: nothing here touches the broker.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>
#include <hiredis/hiredis.h>

#include "chat/log.h"
#include "chat/names.h"
#include "jobs.h"
#include "persist.h"
#include "retry.h"
#include "scripts.h"
#include "store.h"
#include "wipe.h"

#define GROUP "persist"
#define BACKOFF_MAX_S 5.0
/* Rows a store call deletes for a deleted room, and members a cleanup
 * step of one takes in Redis: each call is one bounded step. */
#define PURGE_PAGE 500
#define GC_PAGE "200"
#define GC_STEPS 20

/* Takes or renews the lease; 1 when this node holds it. */
static const char lease_lua[] =
	"if redis.call('SET', 'chat:persist:lease', ARGV[1], 'NX', 'PX', ARGV[2]) then return 1 end\n"
	"if redis.call('GET', 'chat:persist:lease') == ARGV[1] then\n"
	"  redis.call('PEXPIRE', 'chat:persist:lease', ARGV[2])\n"
	"  return 1\n"
	"end\n"
	"return 0\n";

/* ARGV pairs key, value: each key is raised to value, never lowered. */
static const char raise_lua[] =
	"for i = 1, #ARGV, 2 do\n"
	"  local cur = tonumber(redis.call('GET', ARGV[i]) or '0')\n"
	"  if tonumber(ARGV[i + 1]) > cur then redis.call('SET', ARGV[i], ARGV[i + 1]) end\n"
	"end\n"
	"return 1\n";

struct worker {
	struct persist *p;
	redisContext *redis;
	struct store *store;
	bool leader, claiming, groups_ok;
	char claim_cursor[2][64];
	char dm_cursor[32]; /* backfill: where the DM index's SCAN is */
	unsigned long long persisted;
	double next_report;
	struct wipe wipe; /* amended text still in the store's or Redis's files */
	struct ratelog errors; /* Redis refusing calls (loading): a line per 10 s */
};

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void nap(struct persist *p, double s)
{
	for (double end = now_s() + s; !atomic_load(&p->stop) && now_s() < end;) {
		struct timespec ts = {0, 50 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
}

static bool redis_ok(struct worker *w)
{
	if (w->redis && w->redis->err) {
		redisFree(w->redis);
		w->redis = NULL;
	}
	if (w->redis == NULL) {
		w->redis = jobs_redis_connect(w->p->cfg);
		w->leader = false;
		w->groups_ok = false;
	}
	return w->redis != NULL;
}

/* Runs a command and returns its reply, or NULL (logged) on an error. */
static redisReply *call_argv(struct worker *w, int argc, const char **argv)
{
	redisReply *r = redisCommandArgv(w->redis, argc, argv, NULL);
	unsigned long held;
	if (r && r->type == REDIS_REPLY_ERROR) {
		if (ratelog_ok(&w->errors, now_s(), 10.0, &held))
			log_msg(LOG_WARN, "persist: %s: %s%s", argv[0], r->str,
			        held ? " (and earlier errors)" : "");
		freeReplyObject(r);
		return NULL;
	}
	return r;
}

static bool take_lease(struct worker *w)
{
	char ms[16];
	snprintf(ms, sizeof(ms), "%d", PERSIST_LEASE_MS);
	const char *argv[] = {"EVAL", lease_lua, "0", w->p->cfg->node_name, ms};
	redisReply *r = call_argv(w, 5, argv);
	bool held = r && r->type == REDIS_REPLY_INTEGER && r->integer == 1;
	freeReplyObject(r);
	if (held && !w->leader) {
		log_msg(LOG_INFO, "persist: this node now writes the store");
		/* what the previous holder read and did not acknowledge first */
		w->claiming = true;
		strcpy(w->claim_cursor[0], "0-0");
		strcpy(w->claim_cursor[1], "0-0");
	}
	w->leader = held;
	return held;
}

/* ---- restore after Redis lost its data ---- */

struct restore {
	redisContext *redis;
	int pending;
};

static void append(struct restore *r, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	if (redisvAppendCommand(r->redis, fmt, ap) == REDIS_OK)
		r->pending++;
	va_end(ap);
}

static int restore_room(void *ctx, const struct store_room *room)
{
	struct restore *r = ctx;
	if (room->deleted) { /* its name stays taken */
		append(r, "SADD chat:rooms:deleted %s", room->name);
		return 0;
	}
	append(r, "HSET chat:room:%s owner %s private %s created %" PRId64, room->name, room->owner,
	       room->private ? "1" : "0", room->created_ms / 1000);
	append(r, "SADD chat:rooms:%s %s", room->private ? "private" : "public", room->name);
	if (!room->private) /* rooms.list pages through this index */
		append(r, "ZADD chat:rooms:index 0 %s", room->name);
	return 0;
}

/* ---- the users that exist, and the DM index, from what the store knows ---- */

/* chat:users is whom a DM may go to (scripts.c, script_post): every user
 * that connected (the presence script), registered (the web front) or was
 * named by chatctl, and every user the store knows of: accounts, room
 * members, both parties of a DM, readers. These add the store's. */
static int known_user(void *ctx, const char *user)
{
	append(ctx, "SADD chat:users %s", user);
	return 0;
}

static int known_member(void *ctx, const char *room, const char *user)
{
	(void)room;
	return known_user(ctx, user);
}

static int known_parties(void *ctx, const char *conv, uint64_t seq)
{
	struct conv_id c;
	(void)seq;
	if (conv_parse(conv, strlen(conv), &c) == 0 && c.kind == CONV_DM) {
		known_user(ctx, c.a);
		known_user(ctx, c.b);
	}
	return 0;
}

static int known_reader(void *ctx, const char *user, const char *conv, uint64_t seq)
{
	(void)conv;
	(void)seq;
	return known_user(ctx, user);
}

static bool drain(struct restore *r);

/* Adds every user the store knows to chat:users, pipelined. Returns
 * STORE_OK, a store error, or STORE_E_DOWN when the Redis link failed. */
static int known_users(redisContext *redis, struct store *store)
{
	struct restore r = {redis, 0};
	int rc;

	if ((rc = store_each_user(store, known_user, &r)) != STORE_OK || !drain(&r) ||
	    (rc = store_each_member(store, known_member, &r)) != STORE_OK || !drain(&r) ||
	    (rc = store_each_max_seq(store, known_parties, &r)) != STORE_OK || !drain(&r) ||
	    (rc = store_each_read(store, known_reader, &r)) != STORE_OK || !drain(&r)) {
		drain(&r);
		return rc != STORE_OK ? rc : STORE_E_DOWN;
	}
	return STORE_OK;
}

/* The DM index is built from the users' DM sets: one SCAN page of keys a
 * step, DMINDEX_STEPS steps a worker turn. */
#define DMINDEX_SCAN_COUNT "1000"
#define DMINDEX_STEPS 20

/* One SCAN page of chat:user:*:dms sets, each copied into its user's
 * dmindex. Returns 1 when there is more, 0 when the walk is done, -1 on a
 * Redis error. cursor is where the walk is ("0" to start). */
static int dmindex_step(redisContext *redis, char *cursor, size_t len)
{
	redisReply *page = redisCommand(redis, "SCAN %s MATCH chat:user:*:dms COUNT %s", cursor,
	                                DMINDEX_SCAN_COUNT);
	int rc = -1;

	if (page == NULL || page->type != REDIS_REPLY_ARRAY || page->elements != 2 ||
	    page->element[0]->type != REDIS_REPLY_STRING ||
	    page->element[1]->type != REDIS_REPLY_ARRAY)
		goto cleanup;
	/* one script per key: SMEMBERS and ZADD together, however large */
	static const char copy_lua[] =
		"local ids = redis.call('SMEMBERS', KEYS[1])\n"
		"local idx = string.gsub(KEYS[1], ':dms$', ':dmindex')\n"
		"for i = 1, #ids, 1000 do\n"
		"  local args = {}\n"
		"  for k = i, math.min(i + 999, #ids) do args[#args + 1] = 0; args[#args + 1] = ids[k] end\n"
		"  redis.call('ZADD', idx, unpack(args))\n"
		"end\n"
		"return #ids\n";
	for (size_t i = 0; i < page->element[1]->elements; i++) {
		const redisReply *key = page->element[1]->element[i];
		if (key->type != REDIS_REPLY_STRING)
			continue;
		const char *argv[] = {"EVAL", copy_lua, "1", key->str};
		redisReply *r = redisCommandArgv(redis, 4, argv, NULL);
		bool ok = r && r->type == REDIS_REPLY_INTEGER;
		freeReplyObject(r);
		if (!ok)
			goto cleanup;
	}
	snprintf(cursor, len, "%s", page->element[0]->str);
	rc = strcmp(cursor, "0") != 0;
cleanup:
	freeReplyObject(page);
	return rc;
}

/* Completes, once, what a Redis filled by an older version lacks: every
 * user the store knows in chat:users (chat:users:v1 marks it done), and
 * every user's DM index (chat:dmindex:v1), a few SCAN pages a turn so the
 * drain is never held up for long. A restored Redis has both already. */
static void backfill(struct worker *w)
{
	redisReply *r = redisCommand(w->redis, "MGET chat:users:v1 chat:dmindex:v1");
	bool users = false, dms = false;

	if (r && r->type == REDIS_REPLY_ARRAY && r->elements == 2) {
		users = r->element[0]->type == REDIS_REPLY_STRING;
		dms = r->element[1]->type == REDIS_REPLY_STRING;
	}
	freeReplyObject(r);
	if (r == NULL)
		return;
	if (!users) {
		int rc = known_users(w->redis, w->store);
		if (rc == STORE_OK) {
			freeReplyObject(redisCommand(w->redis, "SET chat:users:v1 1"));
			log_msg(LOG_INFO, "persist: every user the store knows is in chat:users");
		} else {
			log_msg(LOG_WARN, "persist: known users not loaded (%s): trying again",
			        store_strerror(rc));
		}
	}
	for (int i = 0; !dms && i < DMINDEX_STEPS && !atomic_load(&w->p->stop); i++) {
		int more = dmindex_step(w->redis, w->dm_cursor, sizeof(w->dm_cursor));
		if (more < 0) {
			strcpy(w->dm_cursor, "0"); /* from the start again: ZADD is idempotent */
			return;
		}
		if (more == 0) {
			freeReplyObject(redisCommand(w->redis, "SET chat:dmindex:v1 1"));
			log_msg(LOG_INFO, "persist: every user's DM index is built");
			dms = true;
		}
	}
}

static int restore_member(void *ctx, const char *room, const char *user)
{
	struct restore *r = ctx;
	append(r, "SADD chat:room:%s:members %s", room, user);
	append(r, "SADD chat:user:%s:rooms %s", user, room);
	append(r, "ZADD chat:user:%s:roomindex 0 %s", user, room);
	return 0;
}

static int restore_seq(void *ctx, const char *conv, uint64_t seq)
{
	struct restore *r = ctx;
	struct conv_id c;
	char s[24];
	snprintf(s, sizeof(s), "%" PRIu64, seq);
	const char *argv[] = {"EVAL", raise_lua, "0", NULL, s, NULL, s};
	char k1[NAME_CONV_MAX + 16], k2[NAME_CONV_MAX + 24];
	snprintf(k1, sizeof(k1), "chat:seq:%s", conv);
	snprintf(k2, sizeof(k2), "chat:persisted:%s", conv);
	argv[3] = k1;
	argv[5] = k2;
	if (redisAppendCommandArgv(r->redis, 7, argv, NULL) == REDIS_OK)
		r->pending++;
	if (conv_parse(conv, strlen(conv), &c) == 0 && c.kind == CONV_DM) {
		append(r, "SADD chat:user:%s:dms %s", c.a, conv);
		append(r, "SADD chat:user:%s:dms %s", c.b, conv);
		append(r, "ZADD chat:user:%s:dmindex 0 %s", c.a, conv);
		append(r, "ZADD chat:user:%s:dmindex 0 %s", c.b, conv);
	}
	return 0;
}

static int restore_read(void *ctx, const char *user, const char *conv, uint64_t seq)
{
	struct restore *r = ctx;
	append(r, "HSET chat:read:%s %s %" PRIu64, user, conv, seq);
	return 0;
}

/* Reads every pipelined reply; false when the link failed. */
static bool drain(struct restore *r)
{
	bool ok = true;
	for (; r->pending > 0; r->pending--) {
		void *reply = NULL;
		if (redisGetReply(r->redis, &reply) != REDIS_OK) {
			ok = false;
			break;
		}
		freeReplyObject(reply);
	}
	return ok;
}

static void restore(struct worker *w)
{
	struct restore r = {w->redis, 0};
	int rc;

	log_msg(LOG_WARN, "persist: Redis has no chat state: loading it from the store");
	if ((rc = store_each_room(w->store, restore_room, &r)) != STORE_OK ||
	    !drain(&r) || (rc = store_each_member(w->store, restore_member, &r)) != STORE_OK ||
	    !drain(&r) || (rc = store_each_max_seq(w->store, restore_seq, &r)) != STORE_OK ||
	    !drain(&r) || (rc = store_each_read(w->store, restore_read, &r)) != STORE_OK ||
	    !drain(&r) || (rc = known_users(w->redis, w->store)) != STORE_OK) {
		drain(&r);
		log_msg(LOG_WARN, "persist: restore failed (%s): trying again",
		        rc != STORE_OK ? store_strerror(rc) : "redis");
		return;
	}
	w->groups_ok = false; /* the flush took the consumer groups too */
	/* every bridge sends its broker every private room again, a page at a
	 * time (bridge/acl_sync.c): the versions began again with the data */
	freeReplyObject(redisCommand(w->redis, "PUBLISH chat:acl resync"));
	/* the restore built the rooms.list and unread indexes too (restore_room,
	 * _member, _seq), and the set of the users that exist (known_users) */
	freeReplyObject(redisCommand(w->redis, "MSET chat:roomindex:v1 1 chat:dmindex:v1 1 "
	                                       "chat:users:v1 1"));
	redisReply *done = redisCommand(w->redis, "SET chat:restored %lld", (long long)time(NULL));
	if (done)
		log_msg(LOG_INFO, "persist: Redis restored from the store");
	freeReplyObject(done);
}

/* ---- draining the streams ---- */

static const char *field(const redisReply *fields, const char *name, size_t *len)
{
	for (size_t i = 0; fields && i + 1 < fields->elements; i += 2) {
		const redisReply *k = fields->element[i], *v = fields->element[i + 1];
		if (k->type == REDIS_REPLY_STRING && v->type == REDIS_REPLY_STRING &&
		    strcmp(k->str, name) == 0) {
			if (len)
				*len = v->len;
			return v->str;
		}
	}
	return NULL;
}

static void report(struct worker *w, bool store_up);

/* After the store answered STORE_E_DOWN: waits *wait (doubling it up to
 * BACKOFF_MAX_S) and says whether to try again: not when stopping or when
 * this node lost the lease (the next holder takes the batch over). */
static bool keep_trying(struct worker *w, double *wait)
{
	if (atomic_load(&w->p->stop))
		return false;
	report(w, false);
	nap(w->p, *wait);
	*wait = *wait * 2 > BACKOFF_MAX_S ? BACKOFF_MAX_S : *wait * 2;
	return redis_ok(w) && take_lease(w) && !atomic_load(&w->p->stop);
}

static void ack(struct worker *w, const char *stream, const redisReply *entries)
{
	size_t n = entries->elements;
	const char **argv = malloc((n + 3) * sizeof(*argv));
	int argc = 0;
	if (argv == NULL)
		return;
	argv[argc++] = "XACK";
	argv[argc++] = stream;
	argv[argc++] = GROUP;
	for (size_t i = 0; i < n; i++) {
		const redisReply *e = entries->element[i];
		if (e->type == REDIS_REPLY_ARRAY && e->elements == 2)
			argv[argc++] = e->element[0]->str;
	}
	if (argc > 3)
		freeReplyObject(call_argv(w, argc, argv));
	free(argv);
}

/* The edits and deletions of a stored batch applied to their messages, in
 * stream order (so the latest edit wins); a deletion's mark in Redis goes
 * once the store holds it. False when the store went down. */
static bool amend_messages(struct worker *w, const struct store_msg *msgs, size_t k)
{
	for (size_t i = 0; i < k; i++) {
		bool del = strncmp(msgs[i].json, "{\"v\":1,\"type\":\"delete\"", 22) == 0;
		if (!del && strncmp(msgs[i].json, "{\"v\":1,\"type\":\"edit\"", 20) != 0)
			continue;
		cJSON *o = cJSON_Parse(msgs[i].json);
		const cJSON *ref = cJSON_GetObjectItemCaseSensitive(o, "ref");
		const cJSON *ts = cJSON_GetObjectItemCaseSensitive(o, "ts");
		const cJSON *body = cJSON_GetObjectItemCaseSensitive(o, "body");
		int rc = STORE_E_BAD;
		double wait = 0.1;
		if (cJSON_IsNumber(ref) && cJSON_IsNumber(ts) && (del || cJSON_IsString(body)))
			while ((rc = store_amend(w->store, msgs[i].conv, (uint64_t)ref->valuedouble,
			                         del ? NULL : body->valuestring,
			                         (int64_t)ts->valuedouble)) == STORE_E_DOWN &&
			       keep_trying(w, &wait))
				;
		if (rc == STORE_OK)
			wipe_note(&w->wipe);
		if (rc == STORE_OK && del)
			freeReplyObject(redisCommand(w->redis, "DEL chat:gone:%s:%lld",
			                             msgs[i].conv, (long long)ref->valuedouble));
		cJSON_Delete(o);
		if (rc == STORE_E_DOWN)
			return false;
		if (rc != STORE_OK)
			log_msg(LOG_WARN, "persist: %s seq %" PRIu64 ": edit not applied: %s",
			        msgs[i].conv, msgs[i].seq, store_strerror(rc));
	}
	return true;
}

/* Removes every stored message of conv (a deleted room), a page per store
 * call. False when the store went down. */
static bool purge_conv(struct worker *w, const char *conv)
{
	size_t removed;
	do {
		int rc;
		double wait = 0.1;
		while ((rc = store_purge(w->store, conv, PURGE_PAGE, &removed)) == STORE_E_DOWN &&
		       keep_trying(w, &wait))
			;
		if (rc == STORE_E_DOWN)
			return false;
		if (rc != STORE_OK) {
			log_msg(LOG_WARN, "persist: %s not purged: %s", conv, store_strerror(rc));
			return true;
		}
		if (removed > 0)
			wipe_note(&w->wipe);
	} while (removed > 0 && !atomic_load(&w->p->stop));
	return removed == 0;
}

/* Writes one batch of messages; true when every one is stored (or is not
 * a message and was skipped). */
static bool store_messages(struct worker *w, const redisReply *entries)
{
	size_t n = entries->elements;
	struct store_msg *msgs = calloc(n ? n : 1, sizeof(*msgs));
	struct store_msg *purge = calloc(n ? n : 1, sizeof(*purge)); /* convs only */
	size_t k = 0, npurge = 0;
	bool ok = true;

	if (msgs == NULL || purge == NULL) {
		free(msgs);
		free(purge);
		return false;
	}
	for (size_t i = 0; i < n; i++) {
		const redisReply *e = entries->element[i];
		if (e->type != REDIS_REPLY_ARRAY || e->elements != 2)
			continue; /* deleted meanwhile */
		size_t clen = 0;
		const char *conv = field(e->element[1], "conv", &clen);
		const char *seq = field(e->element[1], "seq", NULL);
		const char *msg = field(e->element[1], "msg", NULL);
		if (conv && clen <= NAME_CONV_MAX && field(e->element[1], "purge", NULL)) {
			memcpy(purge[npurge++].conv, conv, clen + 1);
			continue;
		}
		if (conv == NULL || seq == NULL || msg == NULL || clen > NAME_CONV_MAX) {
			log_msg(LOG_WARN, "persist: stream entry %s is not a message: skipped",
			        e->element[0]->str);
			continue;
		}
		memcpy(msgs[k].conv, conv, clen + 1);
		msgs[k].seq = strtoull(seq, NULL, 10);
		msgs[k].json = (char *)msg;
		k++;
	}
	if (k > 0) {
		int rc;
		double wait = 0.1;
		while ((rc = store_put_messages(w->store, msgs, k)) == STORE_E_DOWN &&
		       keep_trying(w, &wait))
			;
		if (rc != STORE_OK && rc != STORE_E_DOWN) {
			/* one bad message must not hold back the others */
			log_msg(LOG_WARN, "persist: batch refused (%s): storing one by one",
			        store_strerror(rc));
			for (size_t i = 0; i < k; i++)
				if (store_put_messages(w->store, &msgs[i], 1) != STORE_OK)
					log_msg(LOG_ERR, "persist: %s seq %" PRIu64 " cannot be stored",
					        msgs[i].conv, msgs[i].seq);
			rc = STORE_OK;
		}
		ok = rc == STORE_OK && amend_messages(w, msgs, k);
	}
	if (ok && k > 0) {
		/* the highest stored seq per conversation, raised, in one call: the
		 * batch is in stream order, so a conversation's last entry has it */
		const char **argv = calloc(3 + 2 * k, sizeof(*argv));
		char (*keys)[NAME_CONV_MAX + 24] = calloc(k, sizeof(*keys));
		char (*vals)[24] = calloc(k, sizeof(*vals));
		if (argv && keys && vals) {
			int argc = 0;
			size_t nconv = 0;
			argv[argc++] = "EVAL";
			argv[argc++] = raise_lua;
			argv[argc++] = "0";
			for (size_t i = k; i-- > 0;) {
				char key[NAME_CONV_MAX + 24];
				snprintf(key, sizeof(key), "chat:persisted:%s", msgs[i].conv);
				bool seen = false;
				for (size_t c = 0; c < nconv && !seen; c++)
					seen = strcmp(keys[c], key) == 0;
				if (seen)
					continue;
				memcpy(keys[nconv], key, sizeof(key));
				snprintf(vals[nconv], sizeof(vals[nconv]), "%" PRIu64, msgs[i].seq);
				argv[argc++] = keys[nconv];
				argv[argc++] = vals[nconv];
				nconv++;
			}
			freeReplyObject(call_argv(w, argc, argv));
		}
		free(argv);
		free(keys);
		free(vals);
		w->persisted += k;
	}
	/* deleted rooms' messages, after every message of theirs was written */
	for (size_t i = 0; ok && i < npurge; i++)
		ok = purge_conv(w, purge[i].conv);
	free(msgs);
	free(purge);
	return ok;
}

/* Applies one batch of room, member and read-marker changes. */
static bool store_ops(struct worker *w, const redisReply *entries)
{
	for (size_t i = 0; i < entries->elements; i++) {
		const redisReply *e = entries->element[i];
		if (e->type != REDIS_REPLY_ARRAY || e->elements != 2)
			continue;
		const redisReply *f = e->element[1];
		const char *op = field(f, "op", NULL);
		const char *room = field(f, "room", NULL), *user = field(f, "user", NULL);
		const char *conv = field(f, "conv", NULL), *seq = field(f, "seq", NULL);
		int rc = STORE_E_BAD;
		double wait = 0.1;
		if (op && strcmp(op, "room") == 0 && room) {
			struct store_room r = {0};
			const char *owner = field(f, "owner", NULL), *priv = field(f, "private", NULL);
			const char *created = field(f, "created", NULL);
			snprintf(r.name, sizeof(r.name), "%s", room);
			snprintf(r.owner, sizeof(r.owner), "%s", owner ? owner : "");
			r.private = priv && strcmp(priv, "1") == 0;
			r.created_ms = created ? strtoll(created, NULL, 10) * 1000 : 0;
			while ((rc = store_room_put(w->store, &r)) == STORE_E_DOWN && keep_trying(w, &wait))
				;
		} else if (op && strcmp(op, "member") == 0 && room && user) {
			const char *in = field(f, "in", NULL);
			bool member = in && strcmp(in, "1") == 0;
			while ((rc = store_member_set(w->store, room, user, member)) == STORE_E_DOWN &&
			       keep_trying(w, &wait))
				;
		} else if (op && strcmp(op, "room_delete") == 0 && room) {
			/* the tombstone, then the members a page per call */
			size_t removed;
			do {
				wait = 0.1;
				while ((rc = store_room_delete(w->store, room, PURGE_PAGE,
				                               &removed)) == STORE_E_DOWN &&
				       keep_trying(w, &wait))
					;
			} while (rc == STORE_OK && removed > 0 && !atomic_load(&w->p->stop));
			if (rc == STORE_OK && removed > 0)
				return false; /* stopping: the next holder goes on */
		} else if (op && strcmp(op, "read") == 0 && user && conv && seq) {
			uint64_t upto = strtoull(seq, NULL, 10);
			while ((rc = store_read_set(w->store, user, conv, upto)) == STORE_E_DOWN &&
			       keep_trying(w, &wait))
				;
		}
		if (rc == STORE_E_DOWN)
			return false;
		if (rc != STORE_OK)
			log_msg(LOG_WARN, "persist: op %s skipped: %s", e->element[0]->str,
			        store_strerror(rc));
	}
	return true;
}

/* Whether this link's writes so far are on redis_wait_replicas replicas. */
static bool replicated(struct worker *w)
{
	redisReply *r = redisCommand(w->redis, "WAIT %ld %ld", w->p->cfg->redis_wait_replicas,
	                             w->p->cfg->redis_wait_ms);
	bool ok =
	    r && r->type == REDIS_REPLY_INTEGER && r->integer >= w->p->cfg->redis_wait_replicas;
	if (!ok)
		log_msg(LOG_WARN, "persist: entries not yet on %ld replica(s): not stored yet",
		        w->p->cfg->redis_wait_replicas);
	freeReplyObject(r);
	return ok;
}

/* One read of [messages, ops] entries: claimed ones while claiming, else
 * new ones (waiting up to 1 s). Processes and acknowledges them. */
static void drain_once(struct worker *w)
{
	static const char *const streams[2] = {"chat:stream", "chat:ops"};
	redisReply *got[2] = {NULL, NULL};
	const redisReply *entries[2] = {NULL, NULL};
	char count[16];
	snprintf(count, sizeof(count), "%d", PERSIST_BATCH);

	if (w->claiming) {
		bool more = false;
		for (int s = 0; s < 2; s++) {
			if (strcmp(w->claim_cursor[s], "done") == 0)
				continue;
			const char *argv[] = {"XAUTOCLAIM", streams[s], GROUP, w->p->cfg->node_name,
			                      "0", w->claim_cursor[s], "COUNT", count};
			got[s] = call_argv(w, 8, argv);
			if (got[s] == NULL || got[s]->type != REDIS_REPLY_ARRAY || got[s]->elements < 2) {
				freeReplyObject(got[0]);
				freeReplyObject(got[1]);
				w->groups_ok = false; /* NOGROUP after a flush, or a lost link */
				nap(w->p, 0.2);
				return;
			}
			const char *next = got[s]->element[0]->str;
			if (next == NULL || strcmp(next, "0-0") == 0)
				strcpy(w->claim_cursor[s], "done");
			else
				snprintf(w->claim_cursor[s], sizeof(w->claim_cursor[s]), "%s", next);
			more = more || strcmp(w->claim_cursor[s], "done") != 0;
			entries[s] = got[s]->element[1];
		}
		if (!more) {
			w->claiming = false;
			log_msg(LOG_INFO, "persist: claimed what was left unacknowledged");
		}
	} else {
		const char *argv[] = {"XREADGROUP", "GROUP", GROUP, w->p->cfg->node_name, "COUNT",
		                      count, "BLOCK", "1000", "STREAMS", streams[0], streams[1],
		                      ">", ">"};
		got[0] = call_argv(w, 13, argv);
		if (got[0] == NULL) {
			/* NOGROUP after a flush, or a lost link: set up again */
			w->groups_ok = false;
			nap(w->p, 0.2);
		} else if (got[0]->type == REDIS_REPLY_ARRAY) {
			for (size_t i = 0; i < got[0]->elements; i++) {
				const redisReply *st = got[0]->element[i];
				if (st->type != REDIS_REPLY_ARRAY || st->elements != 2)
					continue;
				int s = strcmp(st->element[0]->str, streams[0]) == 0 ? 0 : 1;
				entries[s] = st->element[1];
			}
		}
	}
	/* With replicas asked for (commit.h), the store only takes what is on
	 * them: XREADGROUP/XAUTOCLAIM are writes of this link, so a WAIT
	 * after them covers every entry they returned. Else the entries stay
	 * pending and are claimed again. */
	if (w->p->cfg->redis_wait_replicas > 0 &&
	    ((entries[0] && entries[0]->elements > 0) ||
	     (entries[1] && entries[1]->elements > 0)) &&
	    !replicated(w)) {
		freeReplyObject(got[0]);
		freeReplyObject(got[1]);
		w->claiming = true;
		strcpy(w->claim_cursor[0], "0-0");
		strcpy(w->claim_cursor[1], "0-0");
		nap(w->p, 0.2);
		return;
	}
	/* ops first: a room exists in the store before messages need it */
	if (entries[1] && entries[1]->elements > 0 && store_ops(w, entries[1]))
		ack(w, streams[1], entries[1]);
	size_t n = entries[0] ? entries[0]->elements : 0;
	if (n > 0 && store_messages(w, entries[0]))
		ack(w, streams[0], entries[0]);
	freeReplyObject(got[0]);
	freeReplyObject(got[1]);
	/* A small batch means the worker keeps up: let the next one gather
	 * for a moment, so a trickle of messages is not one store commit
	 * (an fsync, beside Redis's own) each. History does not wait for it. */
	if (n > 0 && n < PERSIST_BATCH / 4)
		nap(w->p, PERSIST_GATHER_S);
}

static void ensure_groups(struct worker *w)
{
	static const char *const streams[2] = {"chat:stream", "chat:ops"};
	bool ok = true;

	for (int s = 0; s < 2; s++) {
		redisReply *r = redisCommand(w->redis, "XGROUP CREATE %s %s 0 MKSTREAM", streams[s],
		                             GROUP);
		if (r == NULL || (r->type == REDIS_REPLY_ERROR && strstr(r->str, "BUSYGROUP") == NULL))
			ok = false;
		freeReplyObject(r);
	}
	w->groups_ok = ok;
}

/* ---- trimming and figures ---- */

static int id_cmp(const char *a, const char *b)
{
	unsigned long long am = 0, as = 0, bm = 0, bs = 0;
	sscanf(a, "%llu-%llu", &am, &as);
	sscanf(b, "%llu-%llu", &bm, &bs);
	if (am != bm)
		return am < bm ? -1 : 1;
	return as < bs ? -1 : as > bs;
}

/* The id after id ("ms-seq" to "ms-seq+1"): the least one above it. */
static void id_next(char *id, size_t len)
{
	unsigned long long ms = 0, seq = 0;
	if (sscanf(id, "%llu-%llu", &ms, &seq) == 2 && seq < ~0ULL)
		snprintf(id, len, "%llu-%llu", ms, seq + 1);
}

/* The oldest entry of stream the group still needs: its first pending
 * entry (*held true), else its last read one (*held false: the group has
 * acknowledged it). *backlog gets how many entries it has not
 * acknowledged: read and pending, plus added and not read yet. Returns
 * false when the group is unknown. */
static bool group_floor(struct worker *w, const char *stream, char *floor, size_t len,
                        long long *backlog, bool *held)
{
	bool ok = false;
	redisReply *p = redisCommand(w->redis, "XPENDING %s %s", stream, GROUP);
	redisReply *g = redisCommand(w->redis, "XINFO GROUPS %s", stream);
	redisReply *st = redisCommand(w->redis, "XINFO STREAM %s", stream);
	long long added = -1, read = -1, lag = -1;
	const char *last = NULL;

	for (size_t i = 0; st && st->type == REDIS_REPLY_ARRAY && i + 1 < st->elements; i += 2)
		if (strcmp(st->element[i]->str, "entries-added") == 0 &&
		    st->element[i + 1]->type == REDIS_REPLY_INTEGER)
			added = st->element[i + 1]->integer;
	for (size_t i = 0; g && g->type == REDIS_REPLY_ARRAY && i < g->elements; i++) {
		const redisReply *grp = g->element[i];
		const char *name = NULL;
		for (size_t k = 0; k + 1 < grp->elements; k += 2) {
			const redisReply *key = grp->element[k], *v = grp->element[k + 1];
			bool num = v->type == REDIS_REPLY_INTEGER;
			if (strcmp(key->str, "name") == 0)
				name = v->str;
			else if (strcmp(key->str, "last-delivered-id") == 0)
				last = v->str;
			else if (strcmp(key->str, "entries-read") == 0)
				read = num ? v->integer : -1;
			else if (strcmp(key->str, "lag") == 0)
				lag = num ? v->integer : -1;
		}
		if (name && strcmp(name, GROUP) == 0)
			break;
		last = NULL;
	}
	if (p && p->type == REDIS_REPLY_ARRAY && p->elements >= 2 && last) {
		long long pending = p->element[0]->integer;
		bool first = pending > 0 && p->element[1]->type == REDIS_REPLY_STRING;
		snprintf(floor, len, "%s", first ? p->element[1]->str : last);
		if (held)
			*held = first;
		if (added >= 0 && read >= 0)
			lag = added - read;
		*backlog = pending + (lag > 0 ? lag : 0);
		ok = true;
	}
	freeReplyObject(p);
	freeReplyObject(g);
	freeReplyObject(st);
	return ok;
}

/* The age (ms) of the oldest message not yet stored: the group's first
 * pending entry, else the first entry after floor (its last read one);
 * 0 when there is none. A stream id starts with its time in ms. */
static long long oldest_age_ms(struct worker *w, const char *floor)
{
	char oldest[64] = "";
	redisReply *p = redisCommand(w->redis, "XPENDING chat:stream %s", GROUP);

	if (p && p->type == REDIS_REPLY_ARRAY && p->elements >= 2 &&
	    p->element[0]->type == REDIS_REPLY_INTEGER && p->element[0]->integer > 0 &&
	    p->element[1]->type == REDIS_REPLY_STRING)
		snprintf(oldest, sizeof(oldest), "%s", p->element[1]->str);
	freeReplyObject(p);
	if (oldest[0] == '\0') {
		redisReply *r = redisCommand(w->redis, "XRANGE chat:stream (%s + COUNT 1", floor);
		if (r && r->type == REDIS_REPLY_ARRAY && r->elements == 1)
			snprintf(oldest, sizeof(oldest), "%s", r->element[0]->element[0]->str);
		freeReplyObject(r);
	}
	if (oldest[0] == '\0')
		return 0;
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	long long now_ms = (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
	long long id_ms = strtoll(oldest, NULL, 10);
	return now_ms > id_ms ? now_ms - id_ms : 0;
}

/* Trims what every reader is done with: below the group's first pending
 * entry, and up to and including the last entry the group acknowledged
 * and every live node's feed delivered (it reads after its cursor). The
 * done ones go too, not only those before them, so a stream everyone has
 * read is emptied: Redis frees a stream node (up to 100 entries) only
 * when all of it is trimmed, and until then the trimmed entries' bytes,
 * a deleted message's original text among them, stay in memory and in
 * every RDB or AOF rewrite (wipe.h). */
static void trim(struct worker *w, long long *backlog, long long *lag_ms)
{
	char keep[64], minid[64], ops_keep[64];
	long long ops_backlog = 0;
	bool held = true;

	*backlog = -1;
	*lag_ms = -1;
	if (!group_floor(w, "chat:stream", keep, sizeof(keep), backlog, &held))
		return;
	snprintf(minid, sizeof(minid), "%s", keep);
	if (!held)
		id_next(minid, sizeof(minid));
	/* live nodes' feeds still deliver from their cursors */
	redisReply *nodes = redisCommand(w->redis, "ZRANGE chat:nodes 0 -1");
	for (size_t i = 0; nodes && nodes->type == REDIS_REPLY_ARRAY && i < nodes->elements; i++) {
		redisReply *c = redisCommand(w->redis, "GET chat:cursor:%s", nodes->element[i]->str);
		if (c && c->type == REDIS_REPLY_STRING && c->len < sizeof(minid)) {
			char after[64];
			snprintf(after, sizeof(after), "%s", c->str);
			id_next(after, sizeof(after));
			if (id_cmp(c->str, keep) < 0)
				snprintf(keep, sizeof(keep), "%s", c->str);
			if (id_cmp(after, minid) < 0)
				snprintf(minid, sizeof(minid), "%s", after);
		}
		freeReplyObject(c);
	}
	freeReplyObject(nodes);
	freeReplyObject(redisCommand(w->redis, "XTRIM chat:stream MINID %s", minid));
	if (group_floor(w, "chat:ops", ops_keep, sizeof(ops_keep), &ops_backlog, NULL))
		freeReplyObject(redisCommand(w->redis, "XTRIM chat:ops MINID %s", ops_keep));

	*lag_ms = *backlog > 0 ? oldest_age_ms(w, keep) : 0;
}

static void report(struct worker *w, bool store_up)
{
	long long backlog = -1, lag_ms = -1;
	double now = now_s();

	if (now < w->next_report || !redis_ok(w))
		return;
	w->next_report = now + 1.0;
	if (store_up) {
		trim(w, &backlog, &lag_ms);
	} else {
		char floor[64];
		if (group_floor(w, "chat:stream", floor, sizeof(floor), &backlog, NULL))
			lag_ms = backlog > 0 ? oldest_age_ms(w, floor) : 0;
	}
	redisReply *r = redisCommand(w->redis,
	                             "HSET chat:metrics:persist backlog %lld lag_ms %lld persisted %llu "
	                             "store_up %d writer %s",
	                             backlog, lag_ms, w->persisted, store_up ? 1 : 0,
	                             w->p->cfg->node_name);
	freeReplyObject(r);
	if (!store_up) {
		/* backlog and lag stay -1 when Redis did not say (the group is
		 * being set up again): then say so, not a number */
		char age[48] = "an unknown time", count[24] = "some";
		if (lag_ms >= 0)
			snprintf(age, sizeof(age), "%lld ms", lag_ms);
		if (backlog >= 0)
			snprintf(count, sizeof(count), "%lld", backlog);
		log_msg(LOG_INFO, "persist: store DOWN (%s); %s message(s) wait, the oldest for %s",
		        w->store ? store_errmsg(w->store) : "not open", count, age);
	} else if (backlog > 10000)
		log_msg(LOG_INFO, "persist: backlog %lld, lag %lld ms", backlog, lag_ms);
}

/* Deleted rooms' members: up to GC_STEPS bounded script calls per turn
 * (script_room_gc), so the drain is never held up for long. */
static void gc_rooms(struct worker *w)
{
	for (int i = 0; i < GC_STEPS && !atomic_load(&w->p->stop); i++) {
		const char *argv[] = {"EVAL", script_room_gc, "0", w->p->cfg->topic_prefix,
		                      GC_PAGE};
		redisReply *r = call_argv(w, 5, argv);
		bool more = r && r->type == REDIS_REPLY_INTEGER && r->integer > 0;
		freeReplyObject(r);
		if (!more)
			return;
	}
}

static void *run(void *arg)
{
	struct worker w = {.p = arg, .dm_cursor = "0"};
	char err[256];

	while (!atomic_load(&w.p->stop)) {
		if (!redis_ok(&w)) {
			nap(w.p, 1.0);
			continue;
		}
		if (w.store == NULL &&
		    store_open_timeout(w.p->cfg->store_url, (int)w.p->cfg->store_timeout_ms,
		                       &w.store, err, sizeof(err)) != 0) {
			log_msg(LOG_ERR, "persist: store: %s", err);
			nap(w.p, 2.0);
			continue;
		}
		if (!take_lease(&w)) {
			nap(w.p, 1.0);
			continue;
		}
		redisReply *r = redisCommand(w.redis, "EXISTS chat:restored");
		bool known = r && r->type == REDIS_REPLY_INTEGER;
		bool restored = known && r->integer == 1;
		freeReplyObject(r);
		if (!known) {
			/* no answer, or an error (LOADING): not "Redis lost its
			 * data", which would load the store into it again */
			nap(w.p, 1.0);
			continue;
		}
		if (!restored) {
			restore(&w);
			w.claiming = true;
			continue;
		}
		if (!w.groups_ok) {
			ensure_groups(&w);
			if (!w.groups_ok) {
				nap(w.p, 1.0);
				continue;
			}
		}
		drain_once(&w);
		gc_rooms(&w);
		backfill(&w);
		report(&w, true);
		wipe_tick(&w.wipe, w.redis, w.store, w.p->cfg);
	}
	if (w.redis)
		redisFree(w.redis);
	store_close(w.store);
	return NULL;
}

int persist_start(struct persist *p, const struct chat_config *cfg)
{
	memset(p, 0, sizeof(*p));
	p->cfg = cfg;
	atomic_init(&p->stop, 0);
	if (pthread_create(&p->thread, NULL, run, p) != 0) {
		log_msg(LOG_ERR, "persist: cannot start the thread");
		return -1;
	}
	p->started = true;
	return 0;
}

void persist_stop(struct persist *p)
{
	if (!p->started)
		return;
	atomic_store(&p->stop, 1);
	pthread_join(p->thread, NULL);
	p->started = false;
}
