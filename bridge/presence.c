/*
 * Presence reports and this node's connections in Redis (see presence.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bridge.h"
#include "chat/log.h"
#include "chat/names.h"
#include "presence.h"

/* also when due offline announcements are made (script_presence) */
#define BEAT_S 1.0
#define NODE_TIMEOUT_S "15"
/* connection pairs per sync call: bridge_presence takes 100 arguments */
#define SYNC_PAIRS 49
/* The broker reports every connection again right after the bridge
 * subscribes; the copy is taken as complete once those reports have
 * stopped for a moment, or after SETTLE_MAX_S whatever comes. */
#define SETTLE_S 1.0
#define SETTLE_QUIET_S 0.3
#define SETTLE_MAX_S 5.0
/* The rewrite announces who went offline or online meanwhile on
 * chat:presence, which only the nodes listening then hear (pub/sub): it
 * waits this long after the command link is back, by when every node's
 * links, retried once a second, listen again too. */
#define SYNC_DELAY_S 2.0

void bridge_presence(struct bridge *b, const char *op, const char *const *args, int nargs,
                     void (*cb)(redisAsyncContext *, void *, void *), void *priv)
{
	char delay[24];
	const char *argv[110] = {"EVALSHA", b->sha.presence, "0", op, b->cfg->node_name, delay};
	int argc = 6;

	if (!b->cmd.ready || nargs > 100)
		return;
	snprintf(delay, sizeof(delay), "%ld", b->cfg->presence_offline_delay);
	for (int i = 0; i < nargs; i++)
		argv[argc++] = args[i];
	redisAsyncCommandArgv(b->cmd.ac, cb, priv, argc, argv, NULL);
}

void presence_report(struct bridge *b, const char *topic, const char *payload, size_t len)
{
	struct presence *p = &b->presence;
	char text[160], op[8], user[NAME_USER_MAX + 1], conn[48], role[16];

	if (len >= sizeof(text))
		return;
	memcpy(text, payload, len);
	text[len] = '\0';
	p->last_report = link_now();
	if (strstr(topic, "/sys/boot") != NULL) {
		if (len == 0 || len >= sizeof(p->boot) || strchr(text, ' ') != NULL)
			return;
		memcpy(p->boot, text, len + 1);
		conns_keep_boot(&p->conns, text);
		const char *args[] = {text};
		bridge_presence(b, "boot", args, 1, NULL, NULL);
		return;
	}
	/* A mark from the plugin (authplugin/backlog.h): everything the broker
	 * sent before it has been taken (journaled, PUBACKs queued ahead of
	 * this publish). Echoed as it is, so the broker knows what it still
	 * holds for us and refuses posts before its queue limits drop any. */
	if (strncmp(text, "mark ", 5) == 0) {
		bridge_publish(b, CONTROL_TOPIC, text, len, 1, false, NULL);
		return;
	}
	if (sscanf(text, "%7s %32s %47s %15s", op, user, conn, role) != 4 ||
	    (strcmp(op, "up") != 0 && strcmp(op, "down") != 0) ||
	    !name_user_valid(user, strlen(user)))
		return;
	if (strcmp(role, "service") == 0)
		return; /* bridges and fronts are not people */
	if (strcmp(op, "up") == 0) {
		if (conns_up(&p->conns, user, conn) != 0)
			log_msg(LOG_ERR, "presence: out of memory: %s's connection not kept", user);
	} else {
		conns_down(&p->conns, user, conn);
	}
	/* while Redis is away this goes nowhere: the rewrite once it is back
	 * (presence_redis_ready) puts it right */
	const char *args[] = {user, conn, role};
	bridge_presence(b, op, args, 3, NULL, NULL);
}

void presence_redis_ready(struct bridge *b)
{
	b->presence.sync_due = true;
	b->presence.sync_after = link_now() + SYNC_DELAY_S;
}

void presence_broker_up(struct bridge *b, double now)
{
	b->presence.broker_since = now;
}

struct sync_page {
	struct bridge *b;
	const char *args[2 + 2 * SYNC_PAIRS];
	char users[SYNC_PAIRS][NAME_USER_MAX + 1];
	int pairs;
	bool first;
	size_t sent;
};

static void send_page(struct sync_page *s, bool last)
{
	s->args[0] = s->first ? "1" : "0";
	s->args[1] = last ? "1" : "0";
	bridge_presence(s->b, "sync", s->args, 2 + 2 * s->pairs, NULL, NULL);
	s->sent += (size_t)s->pairs;
	s->pairs = 0;
	s->first = false;
}

/* The tree's strings stay put while the pages are built: every call is
 * copied into hiredis's buffer before this returns. */
static void add_pair(const char *item, size_t user_len, void *ctx)
{
	struct sync_page *s = ctx;

	if (user_len > NAME_USER_MAX)
		return;
	if (s->pairs == SYNC_PAIRS)
		send_page(s, false);
	memcpy(s->users[s->pairs], item, user_len);
	s->users[s->pairs][user_len] = '\0';
	s->args[2 + 2 * s->pairs] = s->users[s->pairs];
	s->args[3 + 2 * s->pairs] = item + user_len + 1;
	s->pairs++;
}

/* Rewrites this node's connections in Redis from the copy: the boot id
 * first (forgetting an older broker's connections), then every live
 * connection, page by page, and with the last page the ones Redis lists
 * that are not live any more are forgotten (each user announced offline
 * only when that was their last connection). One ordered link, so a
 * report that arrives afterwards applies afterwards. */
static void sync(struct bridge *b)
{
	struct presence *p = &b->presence;
	struct sync_page *s = calloc(1, sizeof(*s));

	if (s == NULL)
		return; /* tried again on the next turn */
	p->sync_due = false;
	if (p->boot[0]) {
		const char *args[] = {p->boot};
		bridge_presence(b, "boot", args, 1, NULL, NULL);
	}
	s->b = b;
	s->first = true;
	conns_each(&p->conns, add_pair, s);
	send_page(s, true);
	log_msg(LOG_INFO, "presence: this node's %zu connection(s) written to redis", s->sent);
	free(s);
}

static void heartbeat(struct bridge *b)
{
	const char *args[] = {NODE_TIMEOUT_S};
	bridge_presence(b, "beat", args, 1, NULL, NULL);
}

void presence_tick(struct bridge *b, double now)
{
	struct presence *p = &b->presence;

	if (!b->cmd.ready)
		return;
	if (now >= p->next_beat) {
		heartbeat(b);
		p->next_beat = now + BEAT_S;
	}
	if (!p->sync_due || !b->mqtt_up || p->broker_since == 0 || !b->sub.ready ||
	    now < p->sync_after)
		return;
	double up = now - p->broker_since;
	if ((up >= SETTLE_S && now - p->last_report >= SETTLE_QUIET_S) || up >= SETTLE_MAX_S)
		sync(b);
}

void presence_free(struct presence *p)
{
	conns_free(&p->conns);
}
