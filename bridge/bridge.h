/*
 * The bridge daemon's state and its one event loop. It drives libmosquitto
 * (the local broker, as a service user) and three hiredis async links to
 * Redis with poll(), on one thread:
 *   cmd   scripts (post, typing, rooms) and small writes
 *   feed  XREAD of chat:stream: every accepted message, in order, delivered
 *         to the local broker (so subscribers on every instance see the same
 *         seq order)
 *   sub   SUBSCRIBE chat:eph (typing, room events: never stored), chat:acl
 *         (private-room changes, passed to the plugin through $CONTROL:
 *         acl_sync.c),
 *         chat:revoke (token revocations, the same way; revoke.c) and
 *         chat:presence (online changes, published retained)
 *
 * The broker session (persistent, shared subscription on chat/in/#) is held
 * whether Redis is there or not: while Redis is away (down, loading its
 * data, failing over) posts are journaled, acknowledged and held in
 * arrival order (hold.h), and sent once it is back; requests are answered
 * unavailable at once and typing is dropped. Presence is rewritten from
 * the bridge's copy of the broker's connections once Redis is back
 * (presence.h).
 *
 * Before delivering anything after a (re)connect to the broker, or after
 * its chat:acl subscription was away, the bridge sends the plugin every
 * private room's state (acl_sync.c), so the broker never delivers a private
 * room's message to a non-member it does not know about yet.
 */
#ifndef CHAT_BRIDGE_H
#define CHAT_BRIDGE_H

#include <stdbool.h>

#include <hiredis/async.h>
#include <mosquitto.h>

#include "chat/config.h"
#include "chat/names.h"
#include "chat/token.h"
#include "hold.h"
#include "jobs.h"
#include "journal.h"
#include "limit.h"
#include "link.h"
#include "persist.h"
#include "presence.h"
#include "retry.h"
#include "scripts.h"

/* Where the bridge tells its broker's plugin room states, revocations and
 * backlog marks (authplugin/plugin.c on_control). */
#define CONTROL_TOPIC "$CONTROL/chat/v1"

struct bridge;

struct bridge {
	const struct chat_config *cfg;
	struct token_keyring keys;
	struct mosquitto *mosq;
	bool mqtt_up;
	double mqtt_retry_at;
	double mqtt_backoff; /* next retry delay after a loss; 0 while connected */
	int64_t token_exp;
	struct redis_link cmd, feed, sub;
	struct script_sha sha;
	struct link_script scripts[8]; /* what the cmd link loads (link.h) */
	char stream_last[64]; /* id of the last stream entry delivered */
	bool feed_pending;
	double feed_retry_at;  /* a feed read failed: the next not before this */
	struct backoff feed_backoff;
	struct ratelog feed_log;
	bool cursor_dirty;    /* stream_last is newer than chat:cursor:<node> */
	double next_cursor;   /* the cursor is written at most once per CURSOR_S */
	bool acl_synced;      /* the broker has every private room's state: deliver */
	bool acl_stale;       /* chat:acl was not listened to for a while */
	unsigned long mqtt_connects;
	struct acl_sync_state { /* acl_sync.c */
		bool syncing;
		bool barrier;           /* every page is sent: waiting for the barrier */
		bool listening;         /* chat:acl is subscribed on the sub link */
		unsigned long gen;      /* the running sync's: replies of older ones are dropped */
		unsigned long connects; /* the broker connection it is for */
		double retry_at;        /* after a failed sync */
		size_t sent;            /* private room states sent in this sync */
		char cursor[24];        /* of chat:rooms:private */
		/* rooms to send a page of members at a time, after the rooms pass */
		char (*queue)[NAME_ROOM_MAX + 1];
		size_t nqueue, qcap, qnext;
		char mcursor[24];          /* of queue[qnext]'s members */
		bool begun;                /* its "begin" line is sent */
		char base[24];             /* its version at the first page */
		unsigned long long words;  /* its members sent so far */
	} acl;
	struct revoke_sync_state {                 /* revoke.c */
		bool syncing;
		bool stale;             /* chat:revoke was not listened to for a while */
		unsigned long connects; /* the connection the running sync is for */
		unsigned long done;     /* the connection that has the full state */
		size_t sent;
		char min[24]; /* the next page's lowest score */
		size_t skip;  /* lines of score min the previous pages had */
	} revoke;
	double revoke_retry_at; /* a revocation sync failed: the next not before this */
	struct backoff revoke_backoff;
	struct presence presence; /* connection reports, heartbeat, rewrite */
	struct post_batch *batch; /* messages waiting for one script call */
	struct hold hold;         /* posts Redis could not take yet (hold.h) */
	unsigned long long batch_order; /* batches made so far (their order) */
	double batch_since;       /* when the first of them arrived */
	int posts_inflight;       /* post script calls Redis has not answered */
	double posts_progress;    /* a post call was sent or answered (stall check) */
	double post_retry_at;     /* Redis refused a call unrun: held until then */
	struct backoff post_backoff;
	struct ratelog post_log;
	double next_expire;       /* the next check for posts held too long */
	struct jobs jobs;         /* history pages, off the loop */
	struct persist persist;   /* the store writer (one node's at a time) */
	struct journal journal;   /* posts taken from the broker, until answered */
	bool redelivery_check;    /* posts may be the journal's again (on_connect) */
	unsigned long redelivered; /* posts recognised as the journal's */
	/* this node's copies of the post, request and typing buckets (limit.h) */
	struct limit_table post_local, rpc_local, typing_local;
	/* counters, written to chat:metrics:bridge:<node> every second */
	struct bridge_counters {
		unsigned long long msgs_in, delivered, typing, requests;
		unsigned long long rejects[8]; /* by NOTICE_* code, see bridge.c */
	} count;
	double next_metrics;
	double next_sentinel_check; /* with redis_sentinels: is the primary still ours? */
	char id_prefix[24];
	unsigned long long id_counter;
	volatile int stop;
};

/* Publishes to the local broker (dropped with a log line while it is
 * down; props may be NULL). Returns libmosquitto's code: MOSQ_ERR_SUCCESS,
 * or e.g. MOSQ_ERR_OVERSIZE_PACKET for more than the broker's packet
 * limit (its CONNACK's Maximum Packet Size), which a caller answering a
 * request turns into an error reply (rpc.c). */
int bridge_publish(struct bridge *b, const char *topic, const void *payload, size_t len,
                   int qos, bool retain, const mosquitto_property *props);
/* Runs the presence script (see scripts.h); args after op, node and the
 * offline delay (presence_offline_delay). Nothing when the command link
 * is not ready (presence.c). */
void bridge_presence(struct bridge *b, const char *op, const char *const *args, int nargs,
                     void (*cb)(redisAsyncContext *, void *, void *), void *priv);
/* Sends payload to topic on every instance, through Redis (not stored). */
void bridge_relay(struct bridge *b, const char *topic, const char *payload);
/* Reads the stream again, once deliveries may go on (acl_sync.c). */
void bridge_feed_resume(struct bridge *b);

/* Sets up (no network yet). Returns 0, or -1 with a logged reason. */
int bridge_init(struct bridge *b, const struct chat_config *cfg);
/* Runs until b->stop is set. */
void bridge_run(struct bridge *b);
void bridge_free(struct bridge *b);

#endif
