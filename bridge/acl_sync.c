/*
 * Private-room states for the local broker's plugin (see acl_sync.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <hiredis/hiredis.h>

#include "acl_batch.h"
#include "acl_sync.h"
#include "bridge.h"
#include "chat/log.h"
#include "chat/names.h"

/* Per rooms call: an SSCAN COUNT of private rooms, the most members a room
 * read whole may have, and the bytes of whole states (under the message
 * bound, so one call is one message). Per members call: an SSCAN COUNT
 * (~33 KB of ids). Each call is a bounded page of Redis work. */
#define ROOMS_COUNT "100"
#define SMALL_MAX "1000"
#define ROOMS_BUDGET "131072"
#define MEMBERS_COUNT "1000"
/* After a failed call the sync starts over, this much later. */
#define RETRY_S 1.0

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Sends one control message. One the broker connection did not take
 * leaves the plugin behind (a gap, or a new room it never heard of):
 * deliveries wait and every state is sent again. */
static void send_control(void *ctx, const char *msg, size_t len)
{
	struct bridge *b = ctx;
	if (!b->mqtt_up)
		return; /* the reconnect syncs */
	int rc = mosquitto_publish_v5(b->mosq, NULL, CONTROL_TOPIC, (int)len, msg, 1, false, NULL);
	if (rc != MOSQ_ERR_SUCCESS) {
		log_msg(LOG_WARN, "room state not sent to the broker (%s): sending them all again",
		        mosquitto_strerror(rc));
		b->acl_stale = true;
		b->acl_synced = false;
	}
}

static void control_line(struct bridge *b, const char *line)
{
	send_control(b, line, strlen(line));
}

void acl_sync_free(struct bridge *b)
{
	free(b->acl.queue);
	b->acl.queue = NULL;
	b->acl.nqueue = b->acl.qcap = b->acl.qnext = 0;
}

/* Ends the sync under way: its replies still to come are dropped. */
static void sync_stop(struct bridge *b)
{
	b->acl.syncing = false;
	b->acl.barrier = false;
	b->acl.gen++;
	acl_sync_free(b);
}

static void sync_failed(struct bridge *b)
{
	sync_stop(b);
	b->acl.retry_at = now_s() + RETRY_S;
}

/* ---- one Redis call at a time, tagged with the sync it belongs to ---- */

struct call {
	struct bridge *b;
	unsigned long gen;
};

static int call(struct bridge *b, redisCallbackFn *fn, int argc, const char **argv)
{
	struct call *c = malloc(sizeof(*c));
	if (c == NULL)
		return -1;
	*c = (struct call){b, b->acl.gen};
	if (!b->cmd.ready ||
	    redisAsyncCommandArgv(b->cmd.ac, fn, c, argc, argv, NULL) != REDIS_OK) {
		free(c);
		return -1;
	}
	return 0;
}

/* The bridge, when reply (at least min strings) belongs to the sync under
 * way and the broker connection it is for; else NULL, the sync stopped if
 * it was this one. Frees priv. */
static struct bridge *sync_reply(void *priv, redisReply *reply, size_t min)
{
	struct call *c = priv;
	struct bridge *b = c->b;
	bool ours = c->gen == b->acl.gen && b->acl.syncing;
	free(c);
	if (!ours)
		return NULL;
	/* pages sent to an earlier connection may be lost: start over */
	if (!b->mqtt_up || b->mqtt_connects != b->acl.connects) {
		sync_stop(b);
		return NULL;
	}
	bool ok = reply != NULL && reply->type == REDIS_REPLY_ARRAY && reply->elements >= min;
	for (size_t k = 0; ok && k < reply->elements; k++)
		ok = reply->element[k]->type == REDIS_REPLY_STRING;
	if (ok && reply->element[0]->len < sizeof(b->acl.cursor))
		return b;
	if (reply && reply->type == REDIS_REPLY_ERROR) {
		log_msg(LOG_WARN, "room snapshot: %s", reply->str);
		/* a Redis that lost its scripts (restarted, flushed) */
		if (strncmp(reply->str, "NOSCRIPT", 8) == 0 && b->cmd.ready)
			redisAsyncCommand(b->cmd.ac, NULL, NULL, "SCRIPT LOAD %s",
			                  script_acl_snapshot);
	}
	sync_failed(b);
	return NULL;
}

static void rooms_page(struct bridge *b);
static void next_room(struct bridge *b);

static int queue_room(struct bridge *b, const char *room, size_t len)
{
	struct acl_sync_state *s = &b->acl;
	if (!name_room_valid(room, len))
		return 0; /* never from the script; nothing to send */
	if (s->nqueue == s->qcap) {
		size_t cap = s->qcap ? s->qcap * 2 : 16;
		void *q = realloc(s->queue, cap * sizeof(*s->queue));
		if (q == NULL)
			return -1;
		s->queue = q;
		s->qcap = cap;
	}
	memcpy(s->queue[s->nqueue], room, len);
	s->queue[s->nqueue++][len] = '\0';
	return 0;
}

/* The sync is done: the plugin has every private room, deliveries go on;
 * unless a message of it was not sent (acl_stale): then it starts over. */
static void finish(struct bridge *b)
{
	control_line(b, "sync end");
	if (b->acl_stale) {
		sync_failed(b);
		return;
	}
	sync_stop(b);
	b->acl_synced = true;
	log_msg(LOG_INFO, "sent %zu private room state(s) to the broker", b->acl.sent);
	bridge_feed_resume(b);
}

/* One page of rooms: whole states passed on, large rooms queued. */
static void on_rooms(redisAsyncContext *ac, void *r, void *priv)
{
	redisReply *reply = r;
	struct bridge *b = sync_reply(priv, reply, 1);
	struct acl_batch out;
	(void)ac;

	if (b == NULL)
		return;
	if (acl_batch_init(&out, ACL_SYNC_MSG_MAX, send_control, b) != ACL_BATCH_OK) {
		sync_failed(b);
		return;
	}
	for (size_t k = 1; k < reply->elements; k++) {
		const redisReply *item = reply->element[k];
		int rc;
		if (item->len > 5 && memcmp(item->str, "scan ", 5) == 0) {
			rc = queue_room(b, item->str + 5, item->len - 5);
		} else if ((rc = acl_batch_line(&out, item->str, item->len)) == ACL_BATCH_OK) {
			b->acl.sent++;
		} else if (rc == ACL_BATCH_E_TOO_LONG) {
			/* "room <room> ...": never this long from the script, but
			 * then it goes in pieces rather than be dropped */
			const char *room = item->str + 5, *sp = memchr(room, ' ', item->len - 5);
			rc = sp ? queue_room(b, room, (size_t)(sp - room)) : 0;
		}
		if (rc != 0) {
			acl_batch_free(&out);
			sync_failed(b);
			return;
		}
	}
	acl_batch_flush(&out);
	acl_batch_free(&out);
	if (strcmp(reply->element[0]->str, "0") != 0) {
		memcpy(b->acl.cursor, reply->element[0]->str, reply->element[0]->len + 1);
		rooms_page(b);
		return;
	}
	next_room(b);
}

static void rooms_page(struct bridge *b)
{
	const char *argv[] = {"EVALSHA",     b->sha.acl_snapshot, "0",       "rooms",
	                      b->acl.cursor, ROOMS_COUNT,         SMALL_MAX, ROOMS_BUDGET};
	if (call(b, on_rooms, 8, argv) != 0)
		sync_failed(b);
}

/* One page of a large room's members: "begin" before the first, "part"
 * lines, and "end" with the version at the last read. */
static void on_members(redisAsyncContext *ac, void *r, void *priv)
{
	redisReply *reply = r;
	struct bridge *b = sync_reply(priv, reply, 3);
	struct acl_batch out;
	char line[160];
	(void)ac;

	if (b == NULL)
		return;
	struct acl_sync_state *s = &b->acl;
	const char *room = s->queue[s->qnext], *ver = reply->element[1]->str;
	bool done = strcmp(reply->element[0]->str, "0") == 0;
	if (reply->element[1]->len >= sizeof(s->base)) {
		sync_failed(b);
		return;
	}
	if (strcmp(reply->element[2]->str, "1") != 0) {
		/* deleted meanwhile: its public state came on chat:acl, and
		 * drops what the plugin gathered of it */
		s->qnext++;
		next_room(b);
		return;
	}
	if (acl_batch_init(&out, ACL_SYNC_MSG_MAX, send_control, b) != ACL_BATCH_OK) {
		sync_failed(b);
		return;
	}
	int rc = ACL_BATCH_OK;
	if (!s->begun) {
		memcpy(s->base, ver, reply->element[1]->len + 1);
		s->begun = true;
		snprintf(line, sizeof(line), "begin %s %s", room, s->base);
		rc = acl_batch_line(&out, line, strlen(line));
	}
	size_t n = reply->elements - 3;
	if (rc == ACL_BATCH_OK && n > 0) {
		const char **words = malloc(n * sizeof(*words));
		size_t *lens = malloc(n * sizeof(*lens));
		if (words && lens) {
			for (size_t k = 0; k < n; k++) {
				words[k] = reply->element[3 + k]->str;
				lens[k] = reply->element[3 + k]->len;
			}
			int hn = snprintf(line, sizeof(line), "part %s %s", room, s->base);
			rc = acl_batch_words(&out, line, (size_t)hn, words, lens, n);
			s->words += n;
		} else {
			rc = ACL_BATCH_E_NOMEM;
		}
		free(words);
		free(lens);
	}
	if (rc == ACL_BATCH_OK && done) {
		snprintf(line, sizeof(line), "end %s %s %s %llu", room, s->base, ver, s->words);
		rc = acl_batch_line(&out, line, strlen(line));
	}
	if (rc != ACL_BATCH_OK) {
		acl_batch_free(&out);
		sync_failed(b);
		return;
	}
	acl_batch_flush(&out);
	acl_batch_free(&out);
	if (!done) {
		memcpy(s->mcursor, reply->element[0]->str, reply->element[0]->len + 1);
		const char *argv[] = {"EVALSHA", b->sha.acl_snapshot, "0",          "members",
		                      room,      s->mcursor,          MEMBERS_COUNT};
		if (call(b, on_members, 7, argv) != 0)
			sync_failed(b);
		return;
	}
	s->sent++;
	s->qnext++;
	next_room(b);
}

/* The barrier published: a reply from Redis says how many heard it. */
static void on_barrier(redisAsyncContext *ac, void *r, void *priv)
{
	redisReply *reply = r;
	struct call *c = priv;
	struct bridge *b = c->b;
	bool ours = c->gen == b->acl.gen && b->acl.syncing;
	(void)ac;

	free(c);
	if (ours && (reply == NULL || reply->type != REDIS_REPLY_INTEGER || reply->integer < 1))
		sync_failed(b); /* not even our own sub link heard it */
}

/* Every page is sent. The last pieces of a large room need the changes
 * made while they were read, which come on the sub link, maybe behind
 * the pages: a barrier published on chat:acl after the last read comes
 * back after all of them, and only then does the sync end, so "sync end"
 * means every state is whole. */
static void barrier(struct bridge *b)
{
	char msg[96]; /* node_name is at most 32 bytes */
	snprintf(msg, sizeof(msg), "barrier %lu %s", b->acl.gen, b->cfg->node_name);
	const char *argv[] = {"PUBLISH", "chat:acl", msg};
	b->acl.barrier = true;
	if (call(b, on_barrier, 3, argv) != 0)
		sync_failed(b);
}

static void next_room(struct bridge *b)
{
	struct acl_sync_state *s = &b->acl;
	if (s->qnext == s->nqueue) {
		barrier(b);
		return;
	}
	strcpy(s->mcursor, "0");
	s->begun = false;
	s->words = 0;
	const char *argv[] = {"EVALSHA",          b->sha.acl_snapshot, "0",          "members",
	                      s->queue[s->qnext], s->mcursor,          MEMBERS_COUNT};
	if (call(b, on_members, 7, argv) != 0)
		sync_failed(b);
}

void acl_sync(struct bridge *b)
{
	struct acl_sync_state *s = &b->acl;

	if (!b->sub.ready)
		s->listening = false;
	if (!s->listening && b->acl_synced) {
		log_msg(LOG_WARN, "room changes are not heard (chat:acl): deliveries wait for the "
		                  "subscription and a new sync");
		b->acl_synced = false;
		b->acl_stale = true;
	}
	/* a sync for a connection or subscription that is gone starts over */
	if (s->syncing && (!s->listening || s->connects != b->mqtt_connects))
		sync_stop(b);
	bool due = !b->acl_synced || b->acl_stale;
	if (!due || s->syncing || !b->mqtt_up || !b->cmd.ready || !s->listening ||
	    now_s() < s->retry_at)
		return;
	/* the states go to the plugin after everything before this point,
	 * and every change published from now on reaches it too */
	sync_stop(b);
	s->syncing = true;
	s->connects = b->mqtt_connects;
	s->sent = 0;
	strcpy(s->cursor, "0");
	b->acl_stale = false;
	b->acl_synced = false;
	control_line(b, "sync begin");
	rooms_page(b);
}

void acl_listening(struct bridge *b)
{
	b->acl.listening = true;
	b->acl_stale = true;
	b->acl_synced = false; /* nothing delivered until the sync has ended */
	if (b->acl.syncing)
		sync_stop(b);
	b->acl.retry_at = 0;
	acl_sync(b);
}

void acl_forward(struct bridge *b, const char *msg, size_t len)
{
	if (len > 8 && memcmp(msg, "barrier ", 8) == 0) {
		/* a sync's, this bridge's or another's: never for the plugin */
		char mine[96];
		int n =
		    snprintf(mine, sizeof(mine), "barrier %lu %s", b->acl.gen, b->cfg->node_name);
		if (b->acl.syncing && b->acl.barrier && (size_t)n == len &&
		    memcmp(mine, msg, len) == 0 && b->mqtt_up &&
		    b->acl.connects == b->mqtt_connects)
			finish(b);
		return;
	}
	if (len == 6 && memcmp(msg, "resync", 6) == 0) {
		/* Redis was restored from the store: versions began again */
		log_msg(LOG_INFO,
		        "private rooms restored in redis: sending them to the broker again");
		b->acl_stale = true;
		b->acl_synced = false;
		if (b->acl.syncing)
			sync_stop(b);
		acl_sync(b);
		return;
	}
	send_control(b, msg, len);
}
