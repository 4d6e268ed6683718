/*
 * The bridge's I/O (see bridge.h). Decisions come from inbound.c and the Lua
 * scripts; this file moves bytes between the broker and Redis, reconnects
 * both with a delay after any loss, and never blocks on either.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include <cjson/cJSON.h>
#include <hiredis/hiredis.h>
#include <mqtt_protocol.h>

#include "acl_sync.h"
#include "bridge.h"
#include "chat/log.h"
#include "commit.h"
#include "chat/names.h"
#include "chat/topic.h"
#include "inbound.h"
#include "rconn.h"
#include "revoke.h"
#include "rpc.h"
#include "sentinel.h"
#include "store.h"

#define RETRY_S 1.0
/* The broker is retried fast after a loss: its plugin refuses posts until
 * this bridge has subscribed again, so every 100 ms counts (doubling to 1 s
 * while it stays away). */
#define MQTT_RETRY_FIRST_S 0.1
#define MQTT_RETRY_MAX_S 1.0
#define TOKEN_TTL_S (24 * 3600)
#define FEED_BATCH 1000
/* The feed's cursor is written at most this often (and at a clean stop):
 * a restart resumes from an older one and delivers again what came after,
 * which subscribers drop by (conv, seq); the store's trim keeps every entry
 * after the oldest written cursor, so an older one only keeps more. */
#define CURSOR_S 0.2

static double now_s(void)
{
	return link_now();
}

/* ---- publishing to the local broker ---- */

int bridge_publish(struct bridge *b, const char *topic, const void *payload, size_t len,
                   int qos, bool retain, const mosquitto_property *props)
{
	if (!b->mqtt_up)
		return MOSQ_ERR_NO_CONN;
	int rc = mosquitto_publish_v5(b->mosq, NULL, topic, (int)len, payload, qos, retain, props);
	if (rc != MOSQ_ERR_SUCCESS)
		log_msg(LOG_WARN, "publish %s: %s", topic, mosquitto_strerror(rc));
	return rc;
}

static void publish(struct bridge *b, const char *topic, const char *payload, size_t len,
                    int qos, bool retain)
{
	bridge_publish(b, topic, payload, len, qos, retain, NULL);
}

/* The notice codes in the order of bridge_counters.rejects. */
static const char *const reject_codes[] = {NOTICE_BAD_REQUEST, NOTICE_TOO_LARGE,
                                           NOTICE_FORBIDDEN,   NOTICE_NOT_FOUND,
                                           NOTICE_RATE_LIMITED, NOTICE_UNAVAILABLE};
#define NREJECT (sizeof(reject_codes) / sizeof(reject_codes[0]))

static void notice(struct bridge *b, const char *user, const char *code, const char *message,
                   const char *about, const char *cid)
{
	char topic[128];
	for (size_t i = 0; i < NREJECT; i++)
		if (strcmp(code, reject_codes[i]) == 0)
			b->count.rejects[i]++;
	char *json = inbound_notice(code, message, about, cid);
	if (json && topic_user(b->cfg->topic_prefix, user, "notice", topic, sizeof(topic)) > 0)
		publish(b, topic, json, strlen(json), 1, false);
	free(json);
}

/* ---- ephemeral relay through chat:eph: "<topic>\n<payload>" ---- */

void bridge_relay(struct bridge *b, const char *topic, const char *payload)
{
	if (!b->cmd.ready)
		return;
	redisAsyncCommand(b->cmd.ac, NULL, NULL, "PUBLISH chat:eph %s\n%s", topic, payload);
}

/* One pub/sub message: chat:eph "<topic>\n<payload>", chat:acl a room
 * change (acl_sync.h), chat:presence "<user>\n<json>". */
static void on_channel(redisAsyncContext *ac, void *r, void *priv)
{
	redisReply *reply = r;
	struct bridge *b = priv;
	char topic[256];
	(void)ac;

	if (reply == NULL || reply->type != REDIS_REPLY_ARRAY || reply->elements != 3 ||
	    reply->element[0]->type != REDIS_REPLY_STRING ||
	    reply->element[1]->type != REDIS_REPLY_STRING)
		return; /* a lost link */
	const char *channel = reply->element[1]->str;
	if (strcmp(reply->element[0]->str, "subscribe") == 0) {
		/* chat:acl is at-most-once: whatever changed while this link was
		 * away is lost, so once it listens again, send the plugin every
		 * room's state anew, delivering nothing meanwhile (acl_sync.h) */
		if (strcmp(channel, "chat:acl") == 0)
			acl_listening(b);
		if (strcmp(channel, "chat:revoke") == 0)
			b->revoke.stale = true;
		return;
	}
	if (reply->element[2]->type != REDIS_REPLY_STRING)
		return;
	const char *s = reply->element[2]->str;
	size_t len = reply->element[2]->len;

	if (strcmp(channel, "chat:acl") == 0) {
		acl_forward(b, s, len);
		return;
	}
	if (strcmp(channel, "chat:revoke") == 0) {
		revoke_forward(b, s, len);
		return;
	}
	const char *nl = memchr(s, '\n', len);
	if (nl == NULL || nl - s >= 200)
		return;
	size_t head = (size_t)(nl - s);
	if (strcmp(channel, "chat:presence") == 0) {
		char user[NAME_USER_MAX + 1];
		if (head > NAME_USER_MAX)
			return;
		memcpy(user, s, head);
		user[head] = '\0';
		if (topic_presence(b->cfg->topic_prefix, user, topic, sizeof(topic)) > 0)
			publish(b, topic, nl + 1, len - head - 1, 1, true);
		return;
	}
	memcpy(topic, s, head);
	topic[head] = '\0';
	publish(b, topic, nl + 1, len - head - 1, 0, false);
}

static void sub_ready(struct bridge *b)
{
	redisAsyncCommand(b->sub.ac, on_channel, b,
	                  "SUBSCRIBE chat:eph chat:acl chat:revoke chat:presence");
}

/* The counters, for the web front's /metrics (one HSET a second). */
static void write_metrics(struct bridge *b)
{
	char vals[4 + NREJECT][24], names[NREJECT][40];
	const char *argv[3 + 2 * (4 + NREJECT)];
	char key[64];
	int argc = 0;
	unsigned long long v[4] = {b->count.msgs_in, b->count.delivered, b->count.typing,
	                           b->count.requests};
	const char *fixed[4] = {"msgs_in", "delivered", "typing", "requests"};

	snprintf(key, sizeof(key), "chat:metrics:bridge:%s", b->cfg->node_name);
	argv[argc++] = "HSET";
	argv[argc++] = key;
	for (int i = 0; i < 4; i++) {
		snprintf(vals[i], sizeof(vals[i]), "%llu", v[i]);
		argv[argc++] = fixed[i];
		argv[argc++] = vals[i];
	}
	for (size_t i = 0; i < NREJECT; i++) {
		snprintf(names[i], sizeof(names[i]), "rejects:%s", reject_codes[i]);
		snprintf(vals[4 + i], sizeof(vals[4 + i]), "%llu", b->count.rejects[i]);
		argv[argc++] = names[i];
		argv[argc++] = vals[4 + i];
	}
	redisAsyncCommandArgv(b->cmd.ac, NULL, NULL, argc, argv, NULL);
}

/* ---- the feed: chat:stream in order, to the local broker ---- */

static void feed_next(struct bridge *b);

/* Delivers one stream entry ([conv, c, seq, n, msg, json]). */
static void deliver(struct bridge *b, redisReply *fields)
{
	const char *conv = NULL, *msg = NULL;
	size_t conv_len = 0, msg_len = 0;
	struct conv_id c;
	char topic[160];
	const char *prefix = b->cfg->topic_prefix;

	for (size_t i = 0; i + 1 < fields->elements; i += 2) {
		redisReply *k = fields->element[i], *v = fields->element[i + 1];
		if (k->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING)
			continue;
		if (strcmp(k->str, "conv") == 0) {
			conv = v->str;
			conv_len = v->len;
		} else if (strcmp(k->str, "msg") == 0) {
			msg = v->str;
			msg_len = v->len;
		}
	}
	if (conv && msg == NULL && fields->elements == 4)
		return; /* a deleted room's purge mark, for the persistence worker */
	if (conv == NULL || msg == NULL || conv_parse(conv, conv_len, &c) != 0) {
		log_msg(LOG_WARN, "stream entry without a valid conv or msg: skipped");
		return;
	}
	if (c.kind == CONV_ROOM) {
		if (topic_room(prefix, c.a, NULL, topic, sizeof(topic)) > 0)
			publish(b, topic, msg, msg_len, 1, false);
		return;
	}
	if (topic_user(prefix, c.a, "inbox", topic, sizeof(topic)) > 0)
		publish(b, topic, msg, msg_len, 1, false);
	if (topic_user(prefix, c.b, "inbox", topic, sizeof(topic)) > 0)
		publish(b, topic, msg, msg_len, 1, false);
}

/* Records how far this node's feed has delivered, at most once per
 * CURSOR_S (see there); a cursor not yet written waits for the next call. */
static void cursor_write(struct bridge *b, double now)
{
	if (!b->cursor_dirty || !b->cmd.ready || now < b->next_cursor)
		return;
	if (redisAsyncCommand(b->cmd.ac, NULL, NULL, "SET chat:cursor:%s %s", b->cfg->node_name,
	                      b->stream_last) != REDIS_OK)
		return;
	b->cursor_dirty = false;
	b->next_cursor = now + CURSOR_S;
}

/* At a clean stop: the cursor as far as the broker has every delivered
 * entry (libmosquitto's queue is empty), on a short blocking connection,
 * since the loop's own links are not run again. Else the older one stays. */
static void cursor_write_final(struct bridge *b)
{
	char err[256];
	int rc;

	if (b->stream_last[0] == '\0' || b->mosq == NULL || !b->mqtt_up)
		return;
	mosquitto_loop_write(b->mosq, 1);
	if (mosquitto_want_write(b->mosq))
		return;
	redisContext *c = rconn_connect(b->cfg, 500, 500, &rc, err, sizeof(err));
	if (c == NULL) {
		log_msg(LOG_WARN, "feed cursor not written at stop: %s", err);
		return;
	}
	freeReplyObject(
	    redisCommand(c, "SET chat:cursor:%s %s", b->cfg->node_name, b->stream_last));
	redisFree(c);
}

/* A read of the feed failed (Redis loading, an error): the next one
 * after a backoff, with a log line every few seconds, never at once. */
static void feed_failed(struct bridge *b, const char *what, const redisReply *reply)
{
	unsigned long held;
	double now = now_s();

	b->feed_retry_at = now + backoff_next(&b->feed_backoff);
	if (ratelog_ok(&b->feed_log, now, 10.0, &held))
		log_msg(LOG_WARN, "%s: %s%s", what,
		        reply && reply->type == REDIS_REPLY_ERROR ? reply->str : "unexpected answer",
		        held ? " (again)" : "");
}

/* Delivers what one XREAD returned. */
static void feed_deliver(struct bridge *b, redisReply *reply)
{
	if (reply->type == REDIS_REPLY_ERROR) {
		feed_failed(b, "XREAD", reply);
	} else if (reply->type == REDIS_REPLY_ARRAY && reply->elements == 1) {
		redisReply *entries = reply->element[0]->element[1];
		for (size_t i = 0; i < entries->elements; i++) {
			redisReply *e = entries->element[i];
			if (!b->mqtt_up || !b->acl_synced)
				break; /* resume from the last delivered entry later */
			deliver(b, e->element[1]);
			b->count.delivered++;
			snprintf(b->stream_last, sizeof(b->stream_last), "%s", e->element[0]->str);
		}
		b->cursor_dirty = true;
		cursor_write(b, now_s());
		backoff_reset(&b->feed_backoff);
	}
}

/* With replicas asked for, what was read waits until it is on them too
 * (commit.h); read again from the cursor when it is not. */
static void feed_committed(struct bridge *b, redisReply *held, bool committed)
{
	b->feed_pending = false;
	if (committed && held)
		feed_deliver(b, held);
	feed_next(b);
}

static void on_feed(redisAsyncContext *ac, void *r, void *priv)
{
	redisReply *reply = r;
	struct bridge *b = priv;
	(void)ac;

	b->feed_pending = false;
	if (reply == NULL)
		return;
	if (b->cfg->redis_wait_replicas > 0 && reply->type == REDIS_REPLY_ARRAY &&
	    reply->elements == 1) {
		redisReply *entries = reply->element[0]->element[1];
		if (entries->elements > 0) {
			const char *last = entries->element[entries->elements - 1]->element[0]->str;
			if (commit_feed(b, reply, last, feed_committed) == 0)
				b->feed_pending = true;
			else
				feed_next(b); /* out of memory: nothing delivered, read again */
			return;
		}
	}
	feed_deliver(b, reply);
	feed_next(b);
}

void bridge_feed_resume(struct bridge *b)
{
	feed_next(b);
}

static void feed_next(struct bridge *b)
{
	if (!b->mqtt_up || !b->acl_synced || !b->feed.ready || b->feed_pending ||
	    b->stream_last[0] == '\0' || now_s() < b->feed_retry_at)
		return;
	b->feed_pending = true;
	redisAsyncCommand(b->feed.ac, on_feed, b, "XREAD COUNT %d BLOCK 1000 STREAMS chat:stream %s",
	                  FEED_BATCH, b->stream_last);
}

static void on_stream_tail(redisAsyncContext *ac, void *r, void *priv)
{
	redisReply *reply = r;
	struct bridge *b = priv;
	(void)ac;

	b->feed_pending = false;
	if (reply == NULL)
		return;
	if (reply->type == REDIS_REPLY_ARRAY && reply->elements == 1) {
		snprintf(b->stream_last, sizeof(b->stream_last), "%s",
		         reply->element[0]->element[0]->str);
	} else if (reply->type == REDIS_REPLY_ARRAY && reply->elements == 0) {
		snprintf(b->stream_last, sizeof(b->stream_last), "0-0");
	} else {
		/* not an empty stream: an error (loading) must not start the
		 * feed from the first entry ever */
		feed_failed(b, "feed start", reply);
		return;
	}
	log_msg(LOG_INFO, "feed starts after %s", b->stream_last);
	feed_next(b);
}

/* Resumes after the last entry this node delivered (at-least-once across
 * restarts; subscribers drop duplicates by seq), or after the newest entry
 * when this node never ran. */
static void on_cursor(redisAsyncContext *ac, void *r, void *priv)
{
	redisReply *reply = r;
	struct bridge *b = priv;

	b->feed_pending = false;
	if (reply == NULL)
		return;
	if (reply->type == REDIS_REPLY_STRING && reply->len < sizeof(b->stream_last)) {
		memcpy(b->stream_last, reply->str, reply->len + 1);
		log_msg(LOG_INFO, "feed resumes after %s", b->stream_last);
		feed_next(b);
		return;
	}
	if (reply->type != REDIS_REPLY_NIL) {
		feed_failed(b, "feed cursor", reply);
		return;
	}
	b->feed_pending = true;
	if (redisAsyncCommand(ac, on_stream_tail, b, "XREVRANGE chat:stream + - COUNT 1") !=
	    REDIS_OK)
		b->feed_pending = false;
}

/* The feed reads on when its link is ready, and after a failed read
 * once its backoff is over (called on every loop turn). */
static void feed_tick(struct bridge *b, double now)
{
	if (!b->feed.ready || b->feed_pending || now < b->feed_retry_at)
		return;
	if (b->stream_last[0]) {
		feed_next(b);
		return;
	}
	b->feed_pending = true;
	if (redisAsyncCommand(b->feed.ac, on_cursor, b, "GET chat:cursor:%s", b->cfg->node_name) !=
	    REDIS_OK)
		b->feed_pending = false;
}

static void feed_ready(struct bridge *b)
{
	backoff_reset(&b->feed_backoff);
	b->feed_retry_at = 0;
	feed_tick(b, now_s());
}

/* The link is gone: hiredis answered what was out with NULL. */
static void feed_lost(struct bridge *b)
{
	b->feed_pending = false;
}

/* The command link is ready: Redis serves and every script is loaded
 * (link.h), after a (re)connect or after Redis lost our scripts. */
static void cmd_ready(struct bridge *b)
{
	/* roles come with each request now (authplugin/stamp.c); the set of
	 * users once seen as admin is a right that outlived its token */
	redisAsyncCommand(b->cmd.ac, NULL, NULL, "DEL chat:admins");
	/* a Redis written by a version without the rooms.list indexes */
	redisAsyncCommand(b->cmd.ac, NULL, NULL, "EVAL %s 0", script_index_build);
	presence_redis_ready(b);
	acl_sync(b);
}

/* The command link is gone: hiredis answered every call of it (NULL)
 * before this, so none is in flight, whatever the callbacks counted (a
 * batch waits for that count to reach 0 with the replica
 * acknowledgement). */
static void cmd_lost(struct bridge *b)
{
	b->posts_inflight = 0;
}

/* ---- inbound ---- */

struct post_ctx {
	struct bridge *b;
	char sender[NAME_USER_MAX + 1];
	char topic[192];
	char cid[ENVELOPE_CID_MAX + 1];
	char room[NAME_ROOM_MAX + 1];
	char dest[160];  /* typing: where it is relayed */
	bool local_spent; /* typing: this node's bucket gave a token for it */
	char jid[40];     /* post: "<journal boot>:<id>" (journal.h) */
	bool replayed;    /* post: from a previous process's journal */
	char payload[]; /* typing: the relay payload */
};

static struct post_ctx *post_ctx_new(struct bridge *b, const struct inbound *in,
                                     const char *topic, const char *payload)
{
	size_t n = payload ? strlen(payload) + 1 : 1;
	struct post_ctx *ctx = calloc(1, sizeof(*ctx) + n);
	if (ctx == NULL)
		return NULL;
	ctx->b = b;
	strcpy(ctx->sender, in->topic.sender);
	snprintf(ctx->topic, sizeof(ctx->topic), "%s", topic);
	strcpy(ctx->cid, in->input.cid);
	strcpy(ctx->room, in->topic.target);
	if (payload)
		memcpy(ctx->payload, payload, n);
	return ctx;
}

/* Maps a script's negative status to a notice. */
static void script_refusal(struct post_ctx *ctx, long long status)
{
	switch (status) {
	case -1:
		notice(ctx->b, ctx->sender, NOTICE_RATE_LIMITED, "too many messages: slow down",
		       ctx->topic, ctx->cid);
		break;
	case -2:
		notice(ctx->b, ctx->sender, NOTICE_NOT_FOUND, "no such room", ctx->topic, ctx->cid);
		break;
	case -3:
		notice(ctx->b, ctx->sender, NOTICE_FORBIDDEN, "not a member of this private room",
		       ctx->topic, ctx->cid);
		break;
	case -4:
		notice(ctx->b, ctx->sender, NOTICE_UNAVAILABLE,
		       "the history store is far behind: message not accepted, try again later",
		       ctx->topic, ctx->cid);
		break;
	case -5:
		notice(ctx->b, ctx->sender, NOTICE_UNAVAILABLE,
		       "the message service is restoring its state: try again in a moment", ctx->topic,
		       ctx->cid);
		break;
	case -6:
		break; /* a replayed post Redis had answered already */
	case -10:
		notice(ctx->b, ctx->sender, NOTICE_NOT_FOUND, "no such user", ctx->topic, ctx->cid);
		break;
	case -11:
		notice(ctx->b, ctx->sender, NOTICE_FORBIDDEN,
		       "you are in as many direct conversations as one user may start: "
		       "write in one you have",
		       ctx->topic, ctx->cid);
		break;
	case -12:
		notice(ctx->b, ctx->sender, NOTICE_FORBIDDEN,
		       "you are in as many rooms as one user may be in: leave one first",
		       ctx->topic, ctx->cid);
		break;
	default:
		notice(ctx->b, ctx->sender, NOTICE_UNAVAILABLE, "unexpected answer", ctx->topic,
		       ctx->cid);
	}
}

/* Messages go to Redis in one script call per batch: a batch is sent at the
 * end of a loop turn when no post script call is in flight, so under load
 * posts gather while Redis answers the previous call (dividing its per-call
 * cost, round trip and fsync by the batch size), and when idle a batch is a
 * single message sent in the same turn. A batch waits for the previous call
 * at most GATHER_S, or until it is full.
 *
 * While Redis cannot take them (the link is not ready, it answered that
 * the script ran nothing, a call of the link hangs), batches are held
 * (hold.h) and sent again once it can, the first held one at a time: a
 * later batch Redis took before an earlier one it refused would make the
 * script skip the earlier one's journal ids. */
#define GATHER_S 0.001
/* A post call unanswered this long (plus redis_wait_ms) is on a server
 * that does not run: what comes after it is held, and refused past
 * post_hold_s, instead of queued behind it. */
#define STALL_S 2.0
/* Redis answered a call unrun: the first retry after this, doubling. */
#define POST_RETRY_FIRST_S 0.05
#define POST_RETRY_MAX_S 1.0
/* held posts are checked against post_hold_s this often */
#define EXPIRE_EVERY_S 0.1
/* the order of replayed batches: before any new one */
#define ORDER_REPLAY 0

static void send_batch(struct bridge *b, struct post_batch *batch);

static void batch_free(struct post_batch *batch)
{
	for (int i = 0; i < batch->n; i++) {
		free(batch->p[i].head);
		free(batch->p[i].tail);
		free(batch->p[i].ctx);
	}
	free(batch);
}

/* A journaled post has been answered (accepted, or refused with a
 * notice): the journal may forget it. After the last replayed one, the
 * earlier processes' progress marks in Redis go too. */
static void intake_done(struct bridge *b, const struct post_ctx *ctx)
{
	if (!ctx->replayed) {
		journal_done(&b->journal);
		return;
	}
	if (!journal_replay_done(&b->journal))
		return;
	log_msg(LOG_INFO, "journal: the %zu post(s) a previous bridge left are answered",
	        b->journal.nreplay);
	for (size_t i = 0; i < b->journal.nreplay && b->cmd.ready; i++)
		redisAsyncCommand(b->cmd.ac, NULL, NULL, "HDEL chat:journal:%s %s",
		                  b->cfg->node_name, b->journal.replay[i].boot);
}

/* A post taken from the broker is answered: the hold's bounds and the
 * journal let go of it. */
static void post_answered(struct bridge *b, const struct pending_post *p)
{
	hold_release(&b->hold, p->cost);
	intake_done(b, p->ctx);
}

/* Keeps the script's answer in the batch (it is answered from there). */
static void batch_record(struct post_batch *batch, const redisReply *reply, bool sent)
{
	batch->lost = sent && reply == NULL;
	batch->not_run = reply && reply->type == REDIS_REPLY_ERROR && hold_retryable(reply->str);
	batch->ok =
	    reply && reply->type == REDIS_REPLY_ARRAY && reply->elements == (size_t)batch->n;
	if (reply && reply->type == REDIS_REPLY_ERROR && !batch->not_run)
		log_msg(LOG_WARN, "post script: %s", reply->str);
	if (reply && reply->type == REDIS_REPLY_ERROR)
		snprintf(batch->why, sizeof(batch->why), "%.100s", reply->str);
	int restoring = 0;
	for (int i = 0; i < batch->n; i++) {
		batch->st[i] = batch->ok && reply->element[i]->type == REDIS_REPLY_INTEGER
		                   ? reply->element[i]->integer
		                   : 0;
		restoring += batch->st[i] == -5;
	}
	/* Redis lost its data and the store has not given it back yet: the
	 * script answers -5 for all and runs nothing */
	if (batch->ok && batch->n > 0 && restoring == batch->n) {
		batch->ok = false;
		batch->not_run = true;
		snprintf(batch->why, sizeof(batch->why), "redis is restoring its state from the store");
	}
}

/* Tells each post's sender what became of it, from the recorded answer. */
static void batch_answer(struct bridge *b, struct post_batch *batch)
{
	for (int i = 0; i < batch->n; i++) {
		struct pending_post *p = &batch->p[i];
		struct post_ctx *ctx = p->ctx;
		long long st = batch->st[i];
		/* "answered before" for a post no call could have run: a later
		 * batch went in before this one came back unrun (two calls in
		 * flight while Redis changed its mind), so its journal id was
		 * passed. It is not in: say so, never drop it. */
		bool skipped = batch->ok && st == -6 && !p->maybe_in;
		if (!batch->ok || st == -1 || st == -4 || st == -5 || skipped)
			/* Redis spent no token on it: neither may this node's copy */
			limit_refund(&b->post_local, ctx->sender, (double)b->cfg->rate_burst);
		if (skipped)
			log_msg(LOG_ERR, "post %s: skipped by redis though never run: refused with a "
			        "notice", ctx->jid);
		if (!batch->ok || skipped) {
			notice(b, ctx->sender, NOTICE_UNAVAILABLE, "message not accepted: try again",
			       ctx->topic, ctx->cid);
		} else if (st < 0) {
			script_refusal(ctx, st);
		} else {
			b->count.msgs_in++;
		}
		/* accepted: delivery, to the sender's devices too, comes from the feed */
		post_answered(b, p);
	}
	batch_free(batch);
}

/* Redis answered that the script ran nothing (loading, scripts lost, a
 * replica now, too few replicas, another script running): the batch is
 * held and sent again after a backoff, a few calls a second at most. */
static void batch_unrun(struct bridge *b, struct post_batch *batch)
{
	unsigned long held;
	double now = now_s(), wait = backoff_next(&b->post_backoff);

	b->post_retry_at = now + wait;
	if (ratelog_ok(&b->post_log, now, 10.0, &held))
		log_msg(LOG_WARN, "post script: %s: %d post(s) held, sent again in %.2f s%s",
		        batch->why, batch->n, wait, held ? " (and earlier ones)" : "");
	hold_put(&b->hold, batch);
}

/* Answers a batch whose script answer is in (replicated: WAIT said its
 * writes are on enough replicas, or none were asked for). Posts the script
 * accepted without that are in doubt: a failover may take them back, so
 * they are sent again until they are either on a replica or taken anew by
 * a new primary; what it refused is answered now (a refusal stands
 * whatever happens to the primary). The link went while the script was
 * out: Redis may or may not have run it. Sent again once Redis is back,
 * the script skips what it had answered (journal ids), so each post is
 * taken once and nobody is told "refused" about a message that is in. */
static void batch_settle(struct bridge *b, struct post_batch *batch, bool replicated)
{
	if (batch->lost) {
		for (int i = 0; i < batch->n; i++)
			batch->p[i].maybe_in = true;
		hold_put(&b->hold, batch);
		return;
	}
	if (batch->not_run) {
		batch_unrun(b, batch);
		return;
	}
	if (batch->ok)
		backoff_reset(&b->post_backoff);
	if (!replicated && batch->ok) {
		struct post_batch *doubt = calloc(1, sizeof(*doubt));
		if (doubt == NULL) {
			for (int i = 0; i < batch->n; i++)
				batch->p[i].maybe_in = true;
			hold_put(&b->hold, batch);
			return;
		}
		doubt->order = batch->order;
		int kept = 0;
		for (int i = 0; i < batch->n; i++) {
			/* sent again, "answered before" (-6) is "in, on this
			 * server": still waiting for a replica like the first time */
			if (batch->st[i] > 0 || (batch->p[i].maybe_in && batch->st[i] == -6)) {
				batch->p[i].maybe_in = true;
				doubt->p[doubt->n++] = batch->p[i];
			} else {
				batch->p[kept] = batch->p[i];
				batch->st[kept++] = batch->st[i];
			}
		}
		batch->n = kept;
		if (doubt->n > 0)
			hold_put(&b->hold, doubt);
		else
			free(doubt);
	}
	batch_answer(b, batch);
}

/* One post call fewer in flight: Redis answered (or the link went). */
static void post_call_done(struct bridge *b)
{
	if (b->posts_inflight > 0)
		b->posts_inflight--;
	b->posts_progress = now_s();
}

static void on_post_batch(redisAsyncContext *ac, void *r, void *priv)
{
	struct post_batch *batch = priv;
	struct bridge *b = batch->p[0].ctx->b;
	redisReply *reply = r;

	/* hiredis answers every sent call, with NULL when the link is lost
	 * (a call never sent does not come here: send_batch keeps it) */
	batch_record(batch, reply, ac != NULL);
	if (sentinel_readonly(reply) && b->cmd.ac) {
		log_msg(LOG_WARN, "redis cmd: the server is a replica now: asking again");
		redisAsyncDisconnect(b->cmd.ac);
	}
	if (batch->waiting)
		return; /* on_post_wait answers it */
	if (ac)
		post_call_done(b);
	batch_settle(b, batch, true);
}

/* A batch sent again may find its posts in (-6) and write nothing, on a
 * new connection whose WAIT would then cover nothing: the fence write
 * after the script makes WAIT cover whatever the script saw. */
static void on_post_fence(redisAsyncContext *ac, void *r, void *priv)
{
	redisReply *reply = r;
	struct post_batch *batch = priv;
	(void)ac;

	batch->fence_failed = reply == NULL || reply->type != REDIS_REPLY_STATUS;
	if (!batch->fence_settles)
		return;
	struct bridge *b = batch->p[0].ctx->b;
	post_call_done(b);
	batch_settle(b, batch, false);
}

/* WAIT's answer after a batch's script call (commit.h). A WAIT lost with
 * the link leaves what the script accepted in doubt, and what it refused
 * answered (a refusal stands). */
static void on_post_wait(redisAsyncContext *ac, void *r, void *priv)
{
	struct post_batch *batch = priv;
	struct bridge *b = batch->p[0].ctx->b;
	redisReply *reply = r;
	(void)ac;

	post_call_done(b);
	bool replicated = !batch->fence_failed && commit_replicated(b, reply);
	if (!replicated && reply && batch->ok)
		log_msg(LOG_WARN,
		        "post: %lld of %ld replica(s) acknowledged within %ld ms: in doubt",
		        reply->type == REDIS_REPLY_INTEGER ? reply->integer : -1LL,
		        b->cfg->redis_wait_replicas, b->cfg->redis_wait_ms);
	batch_settle(b, batch, replicated);
}

/* Whether a post call may go now: Redis serves, the broker is there for
 * the notices of what is refused, no call hangs, no unrun answer is being
 * waited out, and a previous process's posts went first. */
static bool posts_may_send(struct bridge *b, double now)
{
	bool stalled = b->posts_inflight > 0 &&
	               now - b->posts_progress > STALL_S + (double)b->cfg->redis_wait_ms / 1000;
	return b->cmd.ready && b->mqtt_up && !stalled && now >= b->post_retry_at &&
	       (b->journal.replay_started || b->journal.nreplay == 0);
}

/* Sends the waiting messages, if any, as one script call; held behind
 * what is held already, or when Redis cannot take them now. */
static void flush_posts(struct bridge *b)
{
	struct post_batch *batch = b->batch;

	if (batch == NULL)
		return;
	b->batch = NULL;
	if (b->hold.first || !posts_may_send(b, now_s())) {
		hold_put(&b->hold, batch);
		return;
	}
	send_batch(b, batch);
}

/* Sends the first held batch (with the following ones merged in) once
 * Redis can take it and no post call is in flight. */
static void posts_drain(struct bridge *b, double now)
{
	if (b->hold.first == NULL || b->posts_inflight > 0 || !posts_may_send(b, now))
		return;
	struct post_batch *batch = hold_take(&b->hold);
	size_t again = 0;
	for (int i = 0; i < batch->n; i++)
		again += batch->p[i].maybe_in;
	if (again)
		log_msg(LOG_INFO, "sent again %zu post(s) whose answer was lost with redis", again);
	send_batch(b, batch);
}

/* A held post past post_hold_s: refused with a notice (hold_expire). */
static void refuse_held(struct pending_post *p, void *priv)
{
	struct bridge *b = priv;
	struct post_ctx *ctx = p->ctx;
	char why[128];

	snprintf(why, sizeof(why),
	         "the message service did not come back within %ld s: message not accepted, "
	         "try again",
	         b->cfg->post_hold_s);
	limit_refund(&b->post_local, ctx->sender, (double)b->cfg->rate_burst);
	notice(b, ctx->sender, NOTICE_UNAVAILABLE, why, ctx->topic, ctx->cid);
	post_answered(b, p);
	free(p->head);
	free(p->tail);
	free(ctx);
}

/* Refuses what waited for Redis longer than post_hold_s (while the broker
 * is there to carry the notices; else it stays journaled and held). */
static void posts_expire(struct bridge *b, double now)
{
	if (now < b->next_expire || !b->mqtt_up || b->hold.first == NULL)
		return;
	b->next_expire = now + EXPIRE_EVERY_S;
	size_t n = hold_expire(&b->hold, now - (double)b->cfg->post_hold_s, refuse_held, b);
	if (n)
		log_msg(LOG_WARN, "%zu post(s) waited for redis longer than post_hold_s (%ld s): "
		        "refused with a notice; %zu still held",
		        n, b->cfg->post_hold_s, b->hold.held);
}

static void send_batch(struct bridge *b, struct post_batch *batch)
{
	char rate[24], burst[24], keep[24], maxlen[24], count[8], dms_max[24], rooms_max[24];
	const char *argv[9 + 7 * BATCH_MAX + 2];

	batch->next = NULL;
	snprintf(rate, sizeof(rate), "%ld", b->cfg->rate_per_s);
	snprintf(burst, sizeof(burst), "%ld", b->cfg->rate_burst);
	snprintf(keep, sizeof(keep), "%ld", b->cfg->recent_max);
	snprintf(maxlen, sizeof(maxlen), "%ld", b->cfg->stream_maxlen);
	snprintf(count, sizeof(count), "%d", batch->n);
	int argc = 0;
	const char *fixed[] = {"EVALSHA", b->sha.post,      "0", rate, burst, keep, maxlen,
	                       count,     b->cfg->node_name};
	for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
		argv[argc++] = fixed[i];
	batch->resent = false;
	for (int i = 0; i < batch->n; i++) {
		struct pending_post *p = &batch->p[i];
		argv[argc++] = p->conv;
		argv[argc++] = p->head;
		argv[argc++] = p->tail;
		argv[argc++] = p->ctx->sender;
		argv[argc++] = p->ctx->room;
		argv[argc++] = p->kind;
		argv[argc++] = p->ctx->jid;
		batch->resent = batch->resent || p->maybe_in;
	}
	/* the conversation caps, after the posts (scripts.h) */
	snprintf(dms_max, sizeof(dms_max), "%ld", b->cfg->user_dms_max);
	snprintf(rooms_max, sizeof(rooms_max), "%ld", b->cfg->user_rooms_max);
	argv[argc++] = dms_max;
	argv[argc++] = rooms_max;
	/* hiredis copies the arguments into its output buffer right away; the
	 * batch stays until its answer, in case it must be sent again */
	batch->waiting = batch->lost = batch->not_run = batch->ok = false;
	batch->why[0] = '\0';
	int rc = b->cmd.ready
	             ? redisAsyncCommandArgv(b->cmd.ac, on_post_batch, batch, argc, argv, NULL)
	             : REDIS_ERR;
	if (rc != REDIS_OK) {
		/* never sent, so safe to send later: a refusal now would be
		 * lost too when the broker link is going with Redis's */
		hold_put(&b->hold, batch);
		return;
	}
	if (b->posts_inflight++ == 0)
		b->posts_progress = now_s();
	/* pipelined right behind the script: answered once on replicas */
	batch->fence_failed = batch->fence_settles = false;
	if (b->cfg->redis_wait_replicas > 0) {
		bool fenced = batch->resent &&
		              redisAsyncCommand(b->cmd.ac, on_post_fence, batch,
		                                "SET chat:fence:%s:posts 1", b->cfg->node_name) == REDIS_OK;
		batch->fence_failed = batch->resent && !fenced;
		batch->waiting = commit_post_wait(b, on_post_wait, batch) == REDIS_OK;
		if (!batch->waiting && fenced)
			batch->waiting = batch->fence_settles = true;
	}
}

/* End of a loop turn: the waiting batch goes when Redis has answered the
 * previous call, or when it has waited GATHER_S. With the replica
 * acknowledgement it waits for the answer however long that takes (a
 * full batch still goes at once): Redis serves one client's commands in
 * order and a WAIT holds the next ones back until the replica has acked,
 * so a batch sent early gains nothing and adds a WAIT of its own; sent
 * every GATHER_S, small batches each paid a replica round trip and the
 * posts fell behind at 1,000/s. While posts are held (or Redis cannot
 * take them) it joins them at once, where post_hold_s counts. */
static void flush_posts_due(struct bridge *b, double now)
{
	if (b->batch == NULL)
		return;
	if (b->hold.first || !posts_may_send(b, now) || b->posts_inflight == 0 ||
	    (b->cfg->redis_wait_replicas == 0 && now - b->batch_since >= GATHER_S))
		flush_posts(b);
}

/* Batches one post for the script call. jboot/jid name its journal record;
 * a post answered here at once (refused) is done with the journal too. A
 * replayed post (from a previous process's journal) may be in Redis
 * already: it is never refused here, only Redis answers it. */
static void post(struct bridge *b, struct inbound *in, const char *topic, const char *jboot,
                 uint64_t jid, bool replayed)
{
	struct post_ctx done = {.replayed = replayed};
	char id[64];
	char *head = NULL, *tail = NULL;
	double now = now_s();

	/* what this node's copy of the sender's bucket refuses, the shared one
	 * in the post script would too: answered without a Redis step */
	if (!replayed && limit_take(&b->post_local, in->topic.sender, (double)b->cfg->rate_per_s,
	                            (double)b->cfg->rate_burst, now, 0) != LIMIT_PASS) {
		notice(b, in->topic.sender, NOTICE_RATE_LIMITED, "too many messages: slow down", topic,
		       in->input.cid);
		intake_done(b, &done);
		return;
	}
	snprintf(id, sizeof(id), "%s%llx", b->id_prefix, ++b->id_counter);
	if (inbound_message_parts(in, id, &head, &tail) != 0) {
		limit_refund(&b->post_local, in->topic.sender, (double)b->cfg->rate_burst);
		notice(b, in->topic.sender, NOTICE_UNAVAILABLE, "out of memory", topic, in->input.cid);
		intake_done(b, &done);
		return;
	}
	size_t cost = sizeof(struct pending_post) + sizeof(struct post_ctx) + strlen(head) +
	              strlen(tail);
	if (!hold_admit(&b->hold, b->cfg->post_hold_max, b->cfg->post_hold_bytes, cost, replayed)) {
		free(head);
		free(tail);
		limit_refund(&b->post_local, in->topic.sender, (double)b->cfg->rate_burst);
		notice(b, in->topic.sender, NOTICE_UNAVAILABLE,
		       "too many messages wait for the message service: not accepted, try again",
		       topic, in->input.cid);
		intake_done(b, &done);
		return;
	}
	struct post_ctx *ctx = post_ctx_new(b, in, topic, NULL);
	if (b->batch == NULL) {
		b->batch = calloc(1, sizeof(*b->batch));
		if (b->batch)
			b->batch->order = replayed ? ORDER_REPLAY : ++b->batch_order;
		b->batch_since = now;
	}
	if (ctx == NULL || b->batch == NULL) {
		free(ctx);
		free(head);
		free(tail);
		hold_release(&b->hold, cost);
		limit_refund(&b->post_local, in->topic.sender, (double)b->cfg->rate_burst);
		notice(b, in->topic.sender, NOTICE_UNAVAILABLE, "out of memory", topic, in->input.cid);
		intake_done(b, &done);
		return;
	}
	snprintf(ctx->jid, sizeof(ctx->jid), "%s:%llu", jboot, (unsigned long long)jid);
	ctx->replayed = replayed;
	struct pending_post *p = &b->batch->p[b->batch->n++];
	p->ctx = ctx;
	strcpy(p->conv, in->conv);
	p->head = head;
	p->tail = tail;
	p->kind = in->topic.kind == TOPIC_IN_ROOM ? "room" : "dm";
	p->since = now;
	p->cost = cost;
	p->maybe_in = replayed;
	if (b->batch->n == BATCH_MAX)
		flush_posts(b);
}

/* At most one typing rate notice per this many ms per user. */
#define TYPING_NOTICE_MS "5000"

static void on_typing(redisAsyncContext *ac, void *r, void *priv)
{
	redisReply *reply = r;
	struct post_ctx *ctx = priv;
	(void)ac;

	if (reply && reply->type == REDIS_REPLY_INTEGER && ctx->local_spent &&
	    (reply->integer == -1 || reply->integer == -6))
		limit_refund(&ctx->b->typing_local, ctx->sender, (double)ctx->b->cfg->typing_rate_burst);
	if (reply && reply->type == REDIS_REPLY_INTEGER && reply->integer == 1) {
		bridge_relay(ctx->b, ctx->dest, ctx->payload);
	} else if (reply && reply->type == REDIS_REPLY_INTEGER && reply->integer == -1) {
		notice(ctx->b, ctx->sender, NOTICE_RATE_LIMITED,
		       "too many typing signals: dropped, slow down", ctx->topic, NULL);
	} else if (reply && reply->type == REDIS_REPLY_INTEGER && reply->integer != -6) {
		script_refusal(ctx, reply->integer);
	}
	free(ctx);
}

/* Typing, rooms and DMs alike, goes through the typing script: it spends
 * a token of the sender's typing bucket (shared by every instance) and
 * checks the room, and only then is the signal relayed. What this node's
 * copy of the bucket refuses is dropped here, but for one a second that
 * still goes to Redis, which sends the (rare) rate notice. */
static void typing(struct bridge *b, struct inbound *in, const char *topic)
{
	enum limit_verdict v =
	    limit_take(&b->typing_local, in->topic.sender, (double)b->cfg->typing_rate_per_s,
	               (double)b->cfg->typing_rate_burst, now_s(), 1.0);
	if (v == LIMIT_REFUSE)
		return;
	char *json = inbound_typing(in);
	char rate[24], burst[24];
	bool dm = in->topic.kind == TOPIC_IN_TYPING_DM;
	struct post_ctx *ctx = json ? post_ctx_new(b, in, topic, json) : NULL;
	int n;

	free(json);
	if (ctx == NULL)
		return;
	ctx->local_spent = v == LIMIT_PASS;
	if (dm)
		n = topic_user(b->cfg->topic_prefix, in->topic.target, "inbox", ctx->dest,
		               sizeof(ctx->dest));
	else
		n = topic_room(b->cfg->topic_prefix, in->topic.target, "typing", ctx->dest,
		               sizeof(ctx->dest));
	snprintf(rate, sizeof(rate), "%ld", b->cfg->typing_rate_per_s);
	snprintf(burst, sizeof(burst), "%ld", b->cfg->typing_rate_burst);
	const char *argv[] = {"EVALSHA", b->sha.typing, "0",  in->topic.sender, dm ? "dm" : "room",
	                      in->topic.target, rate,   burst, TYPING_NOTICE_MS};
	if (n <= 0 ||
	    redisAsyncCommandArgv(b->cmd.ac, on_typing, ctx, 9, argv, NULL) != REDIS_OK)
		free(ctx);
}

/* The role of a request's sender: the one chat-role the plugin stamped on
 * it (authplugin/stamp.c), that of the token of the connection that sent
 * it. The plugin leaves exactly one on every request it lets through (and
 * refuses requests as Wills, which it cannot stamp): none, or several,
 * is not its work and counts as a plain user. */
static const char *publish_role(const mosquitto_property *props)
{
	const mosquitto_property *p = props;
	char *name = NULL, *value = NULL;
	bool admin = false, skip = false;
	int stamps = 0;

	while ((p = mosquitto_property_read_string_pair(p, MQTT_PROP_USER_PROPERTY, &name, &value,
	                                                 skip)) != NULL) {
		skip = true;
		if (strcmp(name, "chat-role") == 0) {
			stamps++;
			admin = strcmp(value, "admin") == 0;
		}
		free(name);
		free(value);
		name = value = NULL;
	}
	return stamps == 1 && admin ? "admin" : "user";
}

static void on_message(struct mosquitto *mosq, void *obj, const struct mosquitto_message *msg,
                       const mosquitto_property *props)
{
	struct bridge *b = obj;
	struct inbound in;
	(void)mosq;

	if (strncmp(msg->topic, b->cfg->topic_prefix, strlen(b->cfg->topic_prefix)) == 0 &&
	    strncmp(msg->topic + strlen(b->cfg->topic_prefix), "/sys/", 5) == 0) {
		presence_report(b, msg->topic, msg->payload, (size_t)msg->payloadlen);
		return;
	}
	inbound_classify(b->cfg->topic_prefix, msg->topic, msg->payload, (size_t)msg->payloadlen,
	                 (size_t)b->cfg->body_max, &in);
	/* Without Redis: posts are held (flush_posts), requests are answered
	 * unavailable by rpc_handle at once, typing is dropped (ephemeral). */
	if (in.action == INBOUND_TYPING && !b->cmd.ready)
		in.action = INBOUND_DROP;
	switch (in.action) {
	case INBOUND_DROP:
		break;
	case INBOUND_REJECT:
		notice(b, in.topic.sender, in.code, in.message, msg->topic, in.input.cid);
		break;
	case INBOUND_POST: {
		/* the broker's session sends first what the previous process had
		 * journaled but not acknowledged: the replay posts those */
		if (b->redelivery_check) {
			if (journal_redelivered(&b->journal, msg->mid, msg->topic, msg->payload,
			                        (size_t)msg->payloadlen)) {
				b->redelivered++;
				break;
			}
			b->redelivery_check = false;
			if (b->redelivered)
				log_msg(LOG_INFO, "journal: %lu post(s) the broker sent again are "
				        "the replay's", b->redelivered);
		}
		/* into the journal before libmosquitto's PUBACK goes out */
		uint64_t jid = journal_append(&b->journal, msg->mid, msg->topic, msg->payload,
		                              (size_t)msg->payloadlen);
		if (jid == 0) {
			log_msg(LOG_ERR, "journal: cannot write (%s): posts are refused",
			        strerror(errno));
			notice(b, in.topic.sender, NOTICE_UNAVAILABLE,
			       "message not accepted: try again", msg->topic, in.input.cid);
			break;
		}
		post(b, &in, msg->topic, b->journal.boot, jid, false);
		break;
	}
	case INBOUND_TYPING:
		b->count.typing++;
		typing(b, &in, msg->topic);
		break;
	case INBOUND_RPC:
		b->count.requests++;
		rpc_handle(b, in.topic.sender, publish_role(props), msg->payload,
		           (size_t)msg->payloadlen, props);
		break;
	}
	inbound_free(&in);
}

/* ---- the broker connection ---- */

/* When to try the broker again after a loss or a failed attempt. */
static void mqtt_retry_later(struct bridge *b)
{
	if (b->mqtt_backoff < MQTT_RETRY_FIRST_S)
		b->mqtt_backoff = MQTT_RETRY_FIRST_S;
	b->mqtt_retry_at = now_s() + b->mqtt_backoff;
	b->mqtt_backoff *= 2;
	if (b->mqtt_backoff > MQTT_RETRY_MAX_S)
		b->mqtt_backoff = MQTT_RETRY_MAX_S;
}

static void on_connect(struct mosquitto *mosq, void *obj, int rc, int flags,
                       const mosquitto_property *props)
{
	struct bridge *b = obj;
	char filter[128];
	(void)props;

	if (rc != 0) {
		log_msg(LOG_ERR, "broker refused the bridge: %s", mosquitto_reason_string(rc));
		return;
	}
	/* the session the previous process had (flags: session present) sends
	 * again what it had not acknowledged: some may be in the journal */
	b->redelivery_check = b->mqtt_connects == 0 && (flags & 1) && b->journal.nreplay > 0;
	log_msg(LOG_INFO, "connected to the broker at %s:%ld", b->cfg->mqtt_host, b->cfg->mqtt_port);
	b->mqtt_up = true;
	b->mqtt_backoff = 0;
	b->acl_synced = false;
	b->mqtt_connects++;
	presence_broker_up(b, now_s());
	snprintf(filter, sizeof(filter), "$share/bridge/%s/in/#", b->cfg->topic_prefix);
	mosquitto_subscribe_v5(mosq, NULL, filter, 1, 0, NULL);
	snprintf(filter, sizeof(filter), "$share/bridge/%s/sys/conn", b->cfg->topic_prefix);
	mosquitto_subscribe_v5(mosq, NULL, filter, 1, 0, NULL);
	snprintf(filter, sizeof(filter), "%s/sys/boot", b->cfg->topic_prefix);
	mosquitto_subscribe_v5(mosq, NULL, filter, 1, 0, NULL);
	acl_sync(b);
}

static void on_disconnect(struct mosquitto *mosq, void *obj, int rc,
                          const mosquitto_property *props)
{
	struct bridge *b = obj;
	(void)mosq;
	(void)props;
	if (b->mqtt_up)
		log_msg(LOG_WARN, "broker connection lost (%s)", mosquitto_strerror(rc));
	b->mqtt_up = false;
	b->acl_synced = false;
	b->presence.broker_since = 0;
	if (b->mqtt_retry_at == 0)
		mqtt_retry_later(b);
}

/* Connects (or reconnects) with a fresh service token. */
static void mqtt_connect(struct bridge *b)
{
	char *token = NULL;
	int64_t now = (int64_t)time(NULL);
	mosquitto_property *props = NULL;

	b->mqtt_retry_at = 0;
	if (token_mint(&b->keys, b->cfg->service_user, ROLE_SERVICE, now, TOKEN_TTL_S, &token) != 0) {
		log_msg(LOG_ERR, "cannot mint the bridge's service token (jwt_signing_key_file?)");
		b->mqtt_retry_at = now_s() + 10;
		return;
	}
	b->token_exp = now + TOKEN_TTL_S;
	mosquitto_username_pw_set(b->mosq, b->cfg->service_user, token);
	free(token);
	/* keep the session (and its queued input) for an hour across restarts */
	mosquitto_property_add_int32(&props, MQTT_PROP_SESSION_EXPIRY_INTERVAL, 3600);
	int rc = mosquitto_connect_bind_v5(b->mosq, b->cfg->mqtt_host, (int)b->cfg->mqtt_port, 30,
	                                   NULL, props);
	mosquitto_property_free_all(&props);
	if (rc != MOSQ_ERR_SUCCESS) {
		log_msg(LOG_WARN, "broker %s:%ld: %s", b->cfg->mqtt_host, b->cfg->mqtt_port,
		        mosquitto_strerror(rc));
		mqtt_retry_later(b);
	}
}

int bridge_init(struct bridge *b, const struct chat_config *cfg)
{
	char err[256], client_id[80];
	unsigned char rnd[6];

	memset(b, 0, sizeof(*b));
	b->cfg = cfg;
	if (token_keyring_load(&b->keys, cfg, err, sizeof(err)) != TOKEN_OK) {
		log_msg(LOG_ERR, "%s", err);
		return -1;
	}
	/* a store that cannot be opened (no backend, an SQLite file in a
	 * missing folder) is a setting error: refuse to start. An unreachable
	 * MongoDB opens and is waited for by the persistence worker. */
	struct store *st = NULL;
	int src =
	    store_open_timeout(cfg->store_url, (int)cfg->store_timeout_ms, &st, err, sizeof(err));
	if (src == STORE_E_DOWN) {
		/* locked or slow now: the workers wait for it, bounded */
		log_msg(LOG_WARN, "store_url: %s: starting without it", err);
	} else if (src != STORE_OK) {
		log_msg(LOG_ERR, "store_url: %s", err);
		return -1;
	}
	store_close(st);
	/* credentials Redis refuses are a setting error too (after the store
	 * check, so each refusal names its own setting) */
	if (rconn_check_at_start(cfg, "chat-bridge") != 0)
		return -1;
	scripts_sha(&b->sha);
	if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
		memset(rnd, 0, sizeof(rnd));
	snprintf(b->id_prefix, sizeof(b->id_prefix), "%02x%02x%02x%02x%02x%02x-", rnd[0], rnd[1],
	         rnd[2], rnd[3], rnd[4], rnd[5]);

	mosquitto_lib_init();
	snprintf(client_id, sizeof(client_id), "%s:%s", cfg->service_user, cfg->node_name);
	b->mosq = mosquitto_new(client_id, false, b);
	if (b->mosq == NULL) {
		log_msg(LOG_ERR, "mosquitto_new: %s", strerror(errno));
		return -1;
	}
	mosquitto_int_option(b->mosq, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V5);
	/* every message is small and latency-bound: no Nagle delay */
	mosquitto_int_option(b->mosq, MOSQ_OPT_TCP_NODELAY, 1);
	/* Left to itself libmosquitto writes a QoS 1 PUBACK to the broker
	 * before it calls on_message, so a bridge killed in between lost a
	 * post the broker had already forgotten (it took a loaded machine or
	 * ASan to see: the PUBACK wakes the broker, which may take the CPU
	 * from us right there). Marked "threaded", it only queues its packets
	 * and mqtt_io writes them after on_message has journaled the post. */
	mosquitto_threaded_set(b->mosq, true);
	mosquitto_connect_v5_callback_set(b->mosq, on_connect);
	mosquitto_disconnect_v5_callback_set(b->mosq, on_disconnect);
	mosquitto_message_v5_callback_set(b->mosq, on_message);

	/* every script a call of the cmd link names by its digest (EVALSHA) */
	const struct link_script scripts[] = {
	    {script_post, b->sha.post},   {script_typing, b->sha.typing},
	    {script_limit, b->sha.limit}, {script_room, b->sha.room},
	    {script_acl_snapshot, b->sha.acl_snapshot}, {script_presence, b->sha.presence},
	    {script_read, b->sha.read},   {script_unread, b->sha.unread}};
	_Static_assert(sizeof(scripts) == sizeof(b->scripts), "b->scripts holds every script");
	memcpy(b->scripts, scripts, sizeof(scripts));
	link_init(&b->cmd, b, cfg, "cmd", b->scripts, sizeof(scripts) / sizeof(scripts[0]),
	          cmd_ready, cmd_lost);
	link_init(&b->feed, b, cfg, "feed", NULL, 0, feed_ready, feed_lost);
	link_init(&b->sub, b, cfg, "sub", NULL, 0, sub_ready, NULL);
	b->post_backoff = (struct backoff){.first = POST_RETRY_FIRST_S, .max = POST_RETRY_MAX_S};
	b->feed_backoff = (struct backoff){.first = 0.1, .max = 2.0};
	b->revoke_backoff = (struct backoff){.first = 0.2, .max = 5.0};
	b->mqtt_retry_at = 0.001;
	if (journal_open(&b->journal, cfg->journal_file, err, sizeof(err)) != 0) {
		log_msg(LOG_ERR, "%s", err);
		return -1;
	}
	if (b->journal.nreplay)
		log_msg(LOG_WARN,
		        "journal: %zu post(s) a previous bridge took in may be unanswered: "
		        "replayed once connected",
		        b->journal.nreplay);
	if (jobs_start(&b->jobs, cfg) != 0)
		return -1;
	if (persist_start(&b->persist, cfg) != 0) {
		jobs_stop(&b->jobs);
		return -1;
	}
	return 0;
}

static void mqtt_io(struct bridge *b, short revents)
{
	int rc = MOSQ_ERR_SUCCESS;
	if (revents & (POLLIN | POLLHUP | POLLERR))
		rc = mosquitto_loop_read(b->mosq, 1);
	/* the PUBACKs of what was just read and journaled (see bridge_init) */
	if (rc == MOSQ_ERR_SUCCESS && ((revents & POLLOUT) || mosquitto_want_write(b->mosq)))
		rc = mosquitto_loop_write(b->mosq, 1);
	if (rc != MOSQ_ERR_SUCCESS && b->mqtt_retry_at == 0) {
		b->mqtt_up = false;
		b->acl_synced = false;
		b->presence.broker_since = 0;
		mqtt_retry_later(b);
	}
}

/* Writes what libmosquitto has queued (it only queues: see bridge_init),
 * so that notices and deliveries made in a Redis callback leave in the
 * same loop turn, not one poll later. */
static void mqtt_flush(struct bridge *b)
{
	if (b->mqtt_up && b->mqtt_retry_at == 0 && mosquitto_want_write(b->mosq))
		mqtt_io(b, POLLOUT);
}

/* Posts a previous process took from the broker and may not have
 * answered go through the post path again, once Redis and the broker (for
 * the notices) are there; the post script skips those Redis answered. */
static void journal_replay(struct bridge *b)
{
	struct journal *j = &b->journal;

	/* posts that came meanwhile wait behind the replay (older first) */
	flush_posts(b);
	j->replay_started = true;
	for (size_t i = 0; i < j->nreplay; i++) {
		struct journal_record *r = &j->replay[i];
		struct post_ctx done = {.replayed = true};
		struct inbound in;
		inbound_classify(b->cfg->topic_prefix, r->topic, r->payload, r->payload_len,
		                 (size_t)b->cfg->body_max, &in);
		if (in.action == INBOUND_POST)
			post(b, &in, r->topic, r->boot, r->id, true);
		else
			intake_done(b, &done);
		inbound_free(&in);
	}
	flush_posts(b);
}

/* The private-room and revocation syncs start again after a failure (a
 * page Redis refused, a link lost mid-sync) from here: at most once per
 * backoff step, which a complete sync resets, never on every loop turn
 * (the private-room sync paces its own retries: acl_sync.c). */
static void syncs_retry(struct bridge *b, double now)
{
	acl_sync(b);
	if (b->revoke.done == b->mqtt_connects && !b->revoke.stale)
		backoff_reset(&b->revoke_backoff);
	else if (!b->revoke.syncing && now >= b->revoke_retry_at) {
		revoke_sync(b);
		if (b->revoke.syncing)
			b->revoke_retry_at = now + backoff_next(&b->revoke_backoff);
	}
}

void bridge_run(struct bridge *b)
{
	struct redis_link *links[] = {&b->cmd, &b->feed, &b->sub};

	while (!b->stop) {
		struct pollfd fds[5];
		struct redis_link *owner[5];
		int n = 0;
		double now = now_s();

		/* the broker session is held whether Redis is there or not:
		 * posts wait in the hold, not in the broker (bridge.h) */
		if (b->mqtt_retry_at > 0 && now >= b->mqtt_retry_at)
			mqtt_connect(b);
		presence_tick(b, now);
		link_follow_primary(links, 3, b->cfg, now, &b->next_sentinel_check);
		if (b->cmd.ready && now >= b->next_metrics) {
			write_metrics(b);
			b->next_metrics = now + 1.0;
		}
		syncs_retry(b, now);
		if (!b->journal.replay_started && b->journal.nreplay && b->cmd.ready &&
		    b->mqtt_up && b->acl_synced)
			journal_replay(b);
		posts_expire(b, now);
		posts_drain(b, now);
		if (b->mqtt_up && (int64_t)time(NULL) > b->token_exp - 600)
			mosquitto_disconnect(b->mosq); /* reconnect with a fresh token */
		for (int i = 0; i < 3; i++)
			link_tick(links[i], now);
		feed_tick(b, now);

		int sock = mosquitto_socket(b->mosq);
		if (sock >= 0 && b->mqtt_retry_at == 0) {
			fds[n] = (struct pollfd){sock, POLLIN, 0};
			if (mosquitto_want_write(b->mosq))
				fds[n].events |= POLLOUT;
			owner[n++] = NULL;
		}
		for (int i = 0; i < 3; i++) {
			struct redis_link *l = links[i];
			if (l->ac == NULL || (!l->want_read && !l->want_write))
				continue;
			fds[n] = (struct pollfd){l->ac->c.fd, 0, 0};
			fds[n].events = (short)((l->want_read ? POLLIN : 0) | (l->want_write ? POLLOUT : 0));
			owner[n++] = l;
		}
		/* last: the worker's finished jobs */
		fds[n] = (struct pollfd){jobs_fd(&b->jobs), POLLIN, 0};
		owner[n++] = NULL;
		/* a waiting batch is sent within GATHER_S even if nothing wakes
		 * us, a held one soon after Redis lets it */
		int ready = poll(fds, (nfds_t)n, b->batch ? 1 : b->hold.first ? 10 : 50);
		if (ready < 0 && errno != EINTR) {
			log_msg(LOG_ERR, "poll: %s", strerror(errno));
			break;
		}
		for (int i = 0; i < n && ready > 0; i++) {
			if (fds[i].revents == 0)
				continue;
			if (i == n - 1) {
				jobs_collect(&b->jobs);
				continue;
			}
			if (owner[i] == NULL) {
				mqtt_io(b, fds[i].revents);
				continue;
			}
			/* a callback may free the context: look it up again */
			if (owner[i]->ac && (fds[i].revents & (POLLIN | POLLHUP | POLLERR))) {
				redisAsyncHandleRead(owner[i]->ac);
				mqtt_flush(b);
			}
			if (owner[i]->ac && (fds[i].revents & POLLOUT))
				redisAsyncHandleWrite(owner[i]->ac);
		}
		now = now_s();
		flush_posts_due(b, now);
		cursor_write(b, now);
		if (b->mqtt_retry_at == 0 && mosquitto_loop_misc(b->mosq) != MOSQ_ERR_SUCCESS &&
		    b->mqtt_retry_at == 0) {
			b->mqtt_up = false;
			b->presence.broker_since = 0;
			b->mqtt_retry_at = now_s() + RETRY_S;
		}
	}
}

void bridge_free(struct bridge *b)
{
	flush_posts(b);
	cursor_write_final(b);
	persist_stop(&b->persist);
	jobs_stop(&b->jobs);
	struct redis_link *links[] = {&b->cmd, &b->feed, &b->sub};
	for (int i = 0; i < 3; i++)
		link_drop(links[i]);
	acl_sync_free(b);
	/* still held or in doubt: the journal keeps them for the next start */
	struct post_batch *held;
	while ((held = hold_take(&b->hold)) != NULL)
		batch_free(held);
	presence_free(&b->presence);
	if (b->mosq) {
		mosquitto_disconnect(b->mosq);
		mosquitto_destroy(b->mosq);
	}
	mosquitto_lib_cleanup();
	token_keyring_free(&b->keys);
	journal_close(&b->journal);
}
