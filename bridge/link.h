/*
 * One of the bridge's three async links to Redis (cmd, feed, sub; see
 * bridge.h), driven by the bridge's poll loop through a small hiredis
 * adapter (the loop polls what want_read/want_write ask for).
 *
 * A link is ready only when Redis really serves on it:
 *   connect -> AUTH (or PING) -> with Sentinel, ROLE says primary ->
 *   PING answers (not LOADING) -> the link's scripts are loaded, each
 *   SCRIPT LOAD answering the digest the bridge will call (cmd only).
 * A step that fails on a live connection (LOADING while Redis reads its
 * data, an error) is tried again after a backoff (0.1 s doubling to 1 s),
 * on the same connection, with one log line every few seconds; a step
 * that gets no answer within LINK_HANDSHAKE_S (a stopped server) drops the
 * connection, and a lost connection is made again after RETRY_S.
 *
 * A ready link whose Redis answers NOSCRIPT or LOADING to any call (its
 * script cache was flushed, or it restarted under us) is not ready any
 * more and goes through the steps again: every error reply of the cmd link
 * passes a hook in the hiredis reply reader, so this holds for every
 * caller (posts, requests, syncs) without each of them checking.
 */
#ifndef CHAT_LINK_H
#define CHAT_LINK_H

#include <stdbool.h>
#include <stddef.h>

#include <hiredis/async.h>

#include "chat/config.h"
#include "retry.h"

struct bridge;
struct redis_link;

#define LINK_SCRIPTS_MAX 12
/* a handshake step not answered within this is a server that does not
 * run (SIGSTOP, a hung host): the connection is dropped and made again */
#define LINK_HANDSHAKE_S 5.0

/* A script the link loads before it is ready, and its SHA1 (hex). */
struct link_script {
	const char *text;
	const char *sha;
};

struct link_step {
	struct redis_link *l;
	size_t i;
};

struct redis_link {
	const char *name;
	redisAsyncContext *ac;
	bool want_read, want_write;
	bool ready;   /* Redis serves here, not loading, with every script loaded */
	bool refused; /* Redis refused our AUTH: retry slowly */
	char host[256]; /* the server it is on (asked of Sentinel, when set) */
	int port;
	double retry_at; /* no connection: connect at this time (0: not due) */
	/* getting ready on a live connection */
	double step_at;  /* the next PING/SCRIPT LOAD round at this time (0: not due) */
	double since;    /* a handshake step is unanswered since (0: none) */
	size_t pending;  /* answers of the round still to come */
	bool failed;     /* an answer of the round was not the one wanted */
	char why[128];   /* the first such answer */
	bool reload;     /* a ready link saw NOSCRIPT or LOADING: get ready again */
	struct backoff step_backoff;
	struct ratelog step_log, conn_log;
	const struct link_script *scripts;
	size_t nscripts;
	struct link_step steps[LINK_SCRIPTS_MAX];
	void (*on_ready)(struct bridge *b); /* ready (again) */
	void (*on_lost)(struct bridge *b);  /* the connection is gone: every call answered NULL */
	struct bridge *b;
	const struct chat_config *cfg;
};

/* Sets l up (no connection yet: the first link_tick makes it). scripts
 * (nscripts <= LINK_SCRIPTS_MAX, may be 0) must outlive l. */
void link_init(struct redis_link *l, struct bridge *b, const struct chat_config *cfg,
               const char *name, const struct link_script *scripts, size_t nscripts,
               void (*on_ready)(struct bridge *b), void (*on_lost)(struct bridge *b));

/* Once per loop turn: connects when due, gives up on a handshake step that
 * is not answered, runs the next step of getting ready when due. */
void link_tick(struct redis_link *l, double now);

/* Drops l's connection at once (pending calls are answered NULL); it is
 * made again after RETRY_S. */
void link_drop(struct redis_link *l);

/* With redis_sentinels: once a second (*next_check), asks the sentinels
 * where the primary is, and drops the links that are on another server
 * (they connect again to the one named). Blocks for a bounded moment. */
void link_follow_primary(struct redis_link *const *links, int n, const struct chat_config *cfg,
                         double now, double *next_check);

double link_now(void);

#endif
