/*
 * Presence, as far as one bridge is concerned: the plugin's connection
 * reports go to the presence script (scripts.h), a heartbeat keeps this
 * node listed as alive, and this node's connections in Redis are
 * rewritten from the bridge's own copy (conns.h) each time the command
 * link is ready again: reports that came while Redis was away, failing
 * over or reloading its scripts are not lost, and a new primary that
 * lacks the last writes of the old one learns them.
 */
#ifndef CHAT_PRESENCE_H
#define CHAT_PRESENCE_H

#include <stdbool.h>
#include <stddef.h>

#include "conns.h"

struct bridge;

struct presence {
	struct conns conns; /* the broker's live connections, from its reports */
	char boot[40];      /* the broker's boot id ("" until reported) */
	bool sync_due;      /* Redis may not hold this node's connections: rewrite them */
	double sync_after;  /* not before this: every node's sub link listens again */
	double broker_since; /* the broker session began (0: not connected) */
	double last_report;  /* the latest report arrived */
	double next_beat;
};

/* "up|down <user> <conn> <role>" on <prefix>/sys/conn, or the broker's
 * boot id on <prefix>/sys/boot. */
void presence_report(struct bridge *b, const char *topic, const char *payload, size_t len);
/* The command link is ready (again): rewrite this node's connections once
 * the broker has reported them. */
void presence_redis_ready(struct bridge *b);
/* The broker session began (its plugin reports every connection again). */
void presence_broker_up(struct bridge *b, double now);
/* Once per loop turn: the heartbeat, and the rewrite when due. */
void presence_tick(struct bridge *b, double now);
void presence_free(struct presence *p);

#endif
