/*
 * Wiping amended text out of the store's and Redis's files (wipe.h).
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "chat/log.h"
#include "wipe.h"

static double mono_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

void wipe_note(struct wipe *w)
{
	w->gen++;
	w->store_due = true;
	w->redis_due = true;
	w->added_at = -1; /* read at the next tick: at least the amend's own entry */
}

bool wipe_stream_clear(long long length, long long removed, long long added_at, long node_entries)
{
	if (length == 0)
		return true;
	return node_entries > 0 && added_at >= 0 && removed >= added_at + node_entries;
}

/* XINFO STREAM chat:stream: length and entries-added. Returns 0, or -1. */
static int stream_counts(redisContext *r, long long *length, long long *added)
{
	redisReply *st = redisCommand(r, "XINFO STREAM chat:stream");
	int rc = -1;

	*length = *added = -1;
	for (size_t i = 0; st && st->type == REDIS_REPLY_ARRAY && i + 1 < st->elements; i += 2) {
		const redisReply *k = st->element[i], *v = st->element[i + 1];
		if (k->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_INTEGER)
			continue;
		if (strcmp(k->str, "length") == 0)
			*length = v->integer;
		else if (strcmp(k->str, "entries-added") == 0)
			*added = v->integer;
	}
	if (*length >= 0 && *added >= 0)
		rc = 0;
	freeReplyObject(st);
	return rc;
}

/* CONFIG GET name: its value as a number, or def when Redis does not say
 * (CONFIG may be renamed or forbidden to this user). */
static long config_number(redisContext *r, const char *name, long def)
{
	redisReply *c = redisCommand(r, "CONFIG GET %s", name);
	long v = def;
	if (c && c->type == REDIS_REPLY_ARRAY && c->elements == 2 &&
	    c->element[1]->type == REDIS_REPLY_STRING)
		v = strtol(c->element[1]->str, NULL, 10);
	freeReplyObject(c);
	return v;
}

/* Whether RDB snapshots are configured (CONFIG GET save not empty); when
 * Redis does not say, assumed so: a snapshot written once more costs a
 * fork, one left with the text would keep it. */
static bool rdb_configured(redisContext *r)
{
	redisReply *c = redisCommand(r, "CONFIG GET save");
	bool on = true;
	if (c && c->type == REDIS_REPLY_ARRAY && c->elements == 2 &&
	    c->element[1]->type == REDIS_REPLY_STRING)
		on = c->element[1]->len > 0;
	freeReplyObject(c);
	return on;
}

/* Whether INFO persistence says the AOF is on. */
static bool aof_enabled(redisContext *r)
{
	redisReply *i = redisCommand(r, "INFO persistence");
	bool on = i && i->type == REDIS_REPLY_STRING && strstr(i->str, "aof_enabled:1") != NULL;
	freeReplyObject(i);
	return on;
}

/* Sends a rewrite command. Returns 1 when Redis took it (started or
 * scheduled), 0 when one is running already (ask again later), -1 when
 * refused for good (logged once). */
static int ask(struct wipe *w, redisContext *r, const char *cmd)
{
	redisReply *a = redisCommand(r, cmd);
	int rc = 1;

	if (a == NULL) {
		rc = 0;
	} else if (a->type == REDIS_REPLY_ERROR) {
		if (strstr(a->str, "in progress") || strstr(a->str, "child process")) {
			rc = 0;
		} else {
			rc = -1;
			if (!w->refused_logged)
				log_msg(LOG_WARN,
				        "persist: Redis refused %s (%s): edited and deleted text "
				        "stays in "
				        "its files until Redis rewrites them itself",
				        cmd, a->str);
			w->refused_logged = true;
		}
	}
	freeReplyObject(a);
	return rc;
}

void wipe_tick(struct wipe *w, redisContext *r, struct store *s, const struct chat_config *cfg)
{
	double now = mono_s();
	long long length, added;

	if ((!w->store_due && !w->redis_due) || now < w->next_tick)
		return;
	w->next_tick = now + 1.0;
	if (w->store_due && s && store_scrub(s) == STORE_OK)
		w->store_due = false;
	if (!w->redis_due || r == NULL || r->err)
		return;
	if (cfg->redis_rewrite_interval == 0) {
		w->redis_due = false;
		return;
	}
	if (!w->round) {
		/* the count is taken at the first tick after the amend, whatever
		 * the interval: a later one would only make the wait longer */
		if (stream_counts(r, &length, &added) != 0)
			return;
		if (w->added_at < 0)
			w->added_at = added;
		if (now < w->next_rewrite)
			return;
		if (!w->node_known) {
			w->node_entries = config_number(r, "stream-node-max-entries", 100);
			w->node_known = true;
		}
		if (!wipe_stream_clear(length, added - length, w->added_at, w->node_entries))
			return;
		w->round = true;
		w->round_gen = w->gen;
		w->aof_todo = aof_enabled(r);
		w->rdb_todo = rdb_configured(r);
	}
	/* one running already may have forked before the amend: ask again
	 * when it is done (0) */
	if (w->aof_todo) {
		if (ask(w, r, "BGREWRITEAOF") == 0)
			return;
		w->aof_todo = false;
	}
	if (w->rdb_todo) {
		if (ask(w, r, "BGSAVE SCHEDULE") == 0)
			return;
		w->rdb_todo = false;
	}
	w->round = false;
	w->redis_due = w->gen != w->round_gen; /* an amend noted meanwhile: another round */
	w->next_rewrite = now + (double)cfg->redis_rewrite_interval;
	log_msg(LOG_INFO, "persist: asked Redis to rewrite its files (edited or deleted text)");
}
