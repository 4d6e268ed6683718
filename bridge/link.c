/*
 * The bridge's async Redis links (see link.h).
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <hiredis/hiredis.h>

#include "chat/log.h"
#include "link.h"
#include "rconn.h"
#include "sentinel.h"

#define RETRY_S 1.0
#define AUTH_RETRY_S 10.0
#define STEP_FIRST_S 0.1
#define STEP_MAX_S 1.0
#define LOG_EVERY_S 10.0

double link_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* ---- hiredis adapter: the loop polls what these flags ask for ---- */

static void ev_add_read(void *p)
{
	((struct redis_link *)p)->want_read = true;
}

static void ev_del_read(void *p)
{
	((struct redis_link *)p)->want_read = false;
}

static void ev_add_write(void *p)
{
	((struct redis_link *)p)->want_write = true;
}

static void ev_del_write(void *p)
{
	((struct redis_link *)p)->want_write = false;
}

static void ev_cleanup(void *p)
{
	struct redis_link *l = p;
	l->want_read = l->want_write = false;
}

/* ---- the reply hook: NOSCRIPT or LOADING on a ready link ---- */

/* hiredis builds every reply through its reader's function table; an error
 * reply is a string whose task says REDIS_REPLY_ERROR. The table is
 * hiredis's own but for this one call, which notes the two answers that
 * mean "this server lost our scripts or is reading its data" and then
 * builds the reply as hiredis does. The reader's privdata is the link. */
static redisReplyObjectFunctions hooked, *plain;

static void *create_string(const redisReadTask *task, char *str, size_t len)
{
	struct redis_link *l = task->privdata;

	if (l && l->ready && task->type == REDIS_REPLY_ERROR &&
	    ((len >= 8 && memcmp(str, "NOSCRIPT", 8) == 0) ||
	     (len >= 7 && memcmp(str, "LOADING", 7) == 0)))
		l->reload = true;
	return plain->createString(task, str, len);
}

static void hook_replies(redisAsyncContext *ac, struct redis_link *l)
{
	if (plain == NULL) {
		plain = ac->c.reader->fn;
		hooked = *plain;
		hooked.createString = create_string;
	}
	ac->c.reader->fn = &hooked;
	ac->c.reader->privdata = l;
}

/* ---- connection state ---- */

/* The connection is gone (hiredis has answered its calls with NULL). */
static void link_gone(struct redis_link *l)
{
	l->ac = NULL;
	l->ready = false;
	l->want_read = l->want_write = false;
	l->pending = 0;
	l->step_at = 0;
	l->since = 0;
	l->reload = false;
	l->retry_at = link_now() + (l->refused ? AUTH_RETRY_S : RETRY_S);
	if (l->on_lost)
		l->on_lost(l->b);
}

void link_drop(struct redis_link *l)
{
	redisAsyncContext *ac = l->ac;

	if (ac == NULL)
		return;
	redisAsyncFree(ac);
	/* hiredis calls the disconnect callback only for a connection that
	 * was established; one still connecting must be forgotten here */
	if (l->ac == ac)
		link_gone(l);
}

static void link_up(struct redis_link *l)
{
	log_msg(LOG_INFO, "redis %s: connected", l->name);
	l->ready = true;
	l->since = 0;
	backoff_reset(&l->step_backoff);
	l->on_ready(l->b);
}

/* A round of getting ready failed: the next one after a backoff, on the
 * same connection. */
static void step_failed(struct redis_link *l)
{
	unsigned long held;
	double now = link_now(), wait = backoff_next(&l->step_backoff);

	l->since = 0;
	l->step_at = now + wait;
	if (ratelog_ok(&l->step_log, now, LOG_EVERY_S, &held))
		log_msg(LOG_WARN, "redis %s: not serving yet (%s): trying again every %.1f s or less%s",
		        l->name, l->why, STEP_MAX_S, held ? " (and earlier)" : "");
}

static void note_failure(struct redis_link *l, const redisReply *reply)
{
	if (l->failed)
		return;
	l->failed = true;
	snprintf(l->why, sizeof(l->why), "%.100s",
	         reply->type == REDIS_REPLY_ERROR && reply->str ? reply->str : "unexpected answer");
}

static void on_script_loaded(redisAsyncContext *ac, void *r, void *priv)
{
	struct link_step *step = priv;
	struct redis_link *l = step->l;
	redisReply *reply = r;
	(void)ac;

	if (reply == NULL)
		return; /* the connection went: link_gone starts over */
	if (reply->type != REDIS_REPLY_STRING || strcmp(reply->str, l->scripts[step->i].sha) != 0)
		note_failure(l, reply);
	if (--l->pending > 0)
		return;
	if (l->failed)
		step_failed(l);
	else
		link_up(l);
}

/* Redis answers PING with LOADING while it reads its data: only then are
 * the scripts loaded (a SCRIPT LOAD refused with LOADING left the cache
 * without them, and every call after it answered NOSCRIPT). */
static void on_ping(redisAsyncContext *ac, void *r, void *priv)
{
	struct redis_link *l = priv;
	redisReply *reply = r;

	if (reply == NULL)
		return;
	if (reply->type != REDIS_REPLY_STATUS) {
		l->failed = false;
		note_failure(l, reply);
		step_failed(l);
		return;
	}
	if (l->nscripts == 0) {
		link_up(l);
		return;
	}
	l->failed = false;
	l->pending = l->nscripts;
	l->since = link_now();
	for (size_t i = 0; i < l->nscripts; i++) {
		l->steps[i] = (struct link_step){l, i};
		if (redisAsyncCommand(ac, on_script_loaded, &l->steps[i], "SCRIPT LOAD %s",
		                      l->scripts[i].text) != REDIS_OK) {
			l->pending = 0; /* the connection is going: link_gone follows */
			return;
		}
	}
}

static void step(struct redis_link *l, double now)
{
	l->step_at = 0;
	l->reload = false;
	l->since = now;
	if (redisAsyncCommand(l->ac, on_ping, l, "PING") != REDIS_OK)
		l->since = 0; /* the connection is going */
}

static void on_role(redisAsyncContext *ac, void *r, void *priv)
{
	struct redis_link *l = priv;

	if (r == NULL)
		return;
	if (!sentinel_is_primary(r)) {
		log_msg(LOG_WARN, "redis %s: not the primary (yet): asking the sentinels again",
		        l->name);
		redisAsyncDisconnect(ac);
		return;
	}
	step(l, link_now());
}

/* The connection is usable once Redis accepted our AUTH (or, with no
 * password, answered a PING, so a server that wants one is told at once).
 * A refusal is logged as the setting to fix and the link retries every
 * AUTH_RETRY_S, in case the password is being rotated. */
static void on_auth(redisAsyncContext *ac, void *r, void *priv)
{
	struct redis_link *l = priv;
	char err[256];

	if (r == NULL)
		return; /* the link was lost meanwhile: the disconnect callback retries */
	if (rconn_refused(l->cfg, r, err, sizeof(err))) {
		log_msg(LOG_ERR, "redis %s: %s", l->name, err);
		l->refused = true;
		redisAsyncDisconnect(ac);
		return;
	}
	l->refused = false;
	/* found through Sentinel: only a primary will do (sentinel.h) */
	if (l->cfg->redis_sentinels) {
		l->since = link_now();
		if (redisAsyncCommand(ac, on_role, l, "ROLE") != REDIS_OK)
			redisAsyncDisconnect(ac);
		return;
	}
	step(l, link_now());
}

static void on_connect(const redisAsyncContext *ac, int status)
{
	struct redis_link *l = ac->data;
	const char *argv[3];
	unsigned long held;

	if (status != REDIS_OK) {
		if (ratelog_ok(&l->conn_log, link_now(), LOG_EVERY_S, &held))
			log_msg(LOG_WARN, "redis %s: connect failed: %s%s", l->name, ac->errstr,
			        held ? " (again)" : "");
		l->ac = NULL; /* hiredis frees it */
		l->since = 0;
		l->retry_at = link_now() + RETRY_S;
		return;
	}
	l->conn_log = (struct ratelog){0};
	l->since = link_now();
	int argc = rconn_auth_argv(l->cfg, argv);
	if (argc == 0)
		argv[argc++] = "PING";
	if (redisAsyncCommandArgv((redisAsyncContext *)ac, on_auth, l, argc, argv, NULL) != REDIS_OK)
		redisAsyncDisconnect((redisAsyncContext *)ac);
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
	struct redis_link *l = ac->data;

	if (status != REDIS_OK)
		log_msg(LOG_WARN, "redis %s: connection lost: %s", l->name, ac->errstr);
	link_gone(l);
}

static void link_connect(struct redis_link *l, double now)
{
	char host[SENTINEL_HOST_MAX + 1], err[512];
	unsigned long held;
	int port;

	l->retry_at = 0;
	/* with redis_sentinels this asks them, blocking for a bounded moment
	 * (SENTINEL_ASK_MS per sentinel that does not answer) */
	int found = rconn_address(l->cfg, host, &port, err, sizeof(err));
	if (found != 0) {
		if (found == -2 || ratelog_ok(&l->conn_log, now, LOG_EVERY_S, &held))
			log_msg(found == -2 ? LOG_ERR : LOG_WARN, "redis %s: %s", l->name, err);
		l->retry_at = now + (found == -2 ? AUTH_RETRY_S : RETRY_S);
		return;
	}
	redisAsyncContext *ac = redisAsyncConnect(host, port);
	snprintf(l->host, sizeof(l->host), "%s", host);
	l->port = port;

	if (ac == NULL || ac->err) {
		log_msg(LOG_WARN, "redis %s: %s", l->name, ac ? ac->errstr : "out of memory");
		if (ac)
			redisAsyncFree(ac);
		l->retry_at = now + RETRY_S;
		return;
	}
	ac->data = l;
	ac->ev.data = l;
	ac->ev.addRead = ev_add_read;
	ac->ev.delRead = ev_del_read;
	ac->ev.addWrite = ev_add_write;
	ac->ev.delWrite = ev_del_write;
	ac->ev.cleanup = ev_cleanup;
	if (l->nscripts > 0)
		hook_replies(ac, l);
	redisAsyncSetConnectCallback(ac, on_connect);
	redisAsyncSetDisconnectCallback(ac, on_disconnect);
	l->ac = ac;
	l->since = now;
	/* connecting: wait until the socket is writable */
	l->want_write = true;
}

void link_init(struct redis_link *l, struct bridge *b, const struct chat_config *cfg,
               const char *name, const struct link_script *scripts, size_t nscripts,
               void (*on_ready)(struct bridge *b), void (*on_lost)(struct bridge *b))
{
	memset(l, 0, sizeof(*l));
	l->name = name;
	l->b = b;
	l->cfg = cfg;
	l->scripts = scripts;
	l->nscripts = nscripts < LINK_SCRIPTS_MAX ? nscripts : LINK_SCRIPTS_MAX;
	l->on_ready = on_ready;
	l->on_lost = on_lost;
	l->step_backoff = (struct backoff){.first = STEP_FIRST_S, .max = STEP_MAX_S};
	l->retry_at = 0.001; /* connect on the first turn */
}

void link_tick(struct redis_link *l, double now)
{
	if (l->ac == NULL) {
		if (l->retry_at > 0 && now >= l->retry_at)
			link_connect(l, now);
		return;
	}
	if (!l->ready && l->since > 0 && now - l->since > LINK_HANDSHAKE_S) {
		log_msg(LOG_WARN, "redis %s: %s:%d does not answer: connecting again", l->name, l->host,
		        l->port);
		link_drop(l);
		return;
	}
	if (l->ready && l->reload) {
		log_msg(LOG_WARN, "redis %s: the server lost our scripts or is loading its data: "
		        "getting ready again", l->name);
		l->ready = false;
		step(l, now);
		return;
	}
	if (!l->ready && l->step_at > 0 && now >= l->step_at)
		step(l, now);
}

/* A failover Sentinel makes while the old primary lives (SENTINEL
 * FAILOVER, a partition) or while it is stopped leaves the links on it: a
 * live one answers as a primary until Sentinel reaches it to demote it,
 * and meanwhile takes posts no replica will keep; a stopped one answers
 * nothing. So once a second the sentinels are asked (bounded as at a
 * connect; no answer changes nothing), and links on another server than
 * the one they name are dropped, to connect again to the new one. */
void link_follow_primary(struct redis_link *const *links, int n, const struct chat_config *cfg,
                         double now, double *next_check)
{
	char host[SENTINEL_HOST_MAX + 1], err[512];
	bool any = false;
	int port;

	for (int i = 0; i < n; i++)
		any = any || links[i]->ac != NULL;
	if (cfg->redis_sentinels == NULL || now < *next_check || !any)
		return;
	*next_check = now + 1.0;
	if (rconn_address(cfg, host, &port, err, sizeof(err)) != 0)
		return;
	for (int i = 0; i < n; i++) {
		struct redis_link *l = links[i];
		if (l->ac && (l->port != port || strcmp(l->host, host) != 0)) {
			log_msg(LOG_WARN, "redis %s: the sentinels name %s:%d as primary now: moving",
			        l->name, host, port);
			/* at once, not after the pending replies: the old primary may
			 * hold them (paused writes, WAITs that time out); what was
			 * in flight is in doubt and goes to the new one */
			link_drop(l);
		}
	}
}
