/*
 * The asynchronous cluster client (see rcluster.h): links to nodes,
 * routing by slot, redirects, topology refreshes. The slot table and the
 * parsing of answers are rcluster_slots.c's; the blocking client is
 * rcluster_sync.c.
 *
 * hiredis runs a link's callbacks from redisAsyncHandleRead/Write (and,
 * with a NULL reply, when the link is freed), so callbacks may open links
 * and send commands, but links are only freed from rcluster_tick and
 * rcluster_free, never while a callback runs.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "chat/log.h"
#include "rcluster.h"
#include "rconn.h"
#include "sentinel.h"

/* A refresh asked for by a redirect or a failure waits at least
 * REFRESH_MIN_S after the previous one; one that fails is retried after a
 * backoff doubling from BACKOFF_MIN_S to BACKOFF_MAX_S. A link that fails
 * is reopened on the same schedule, or after AUTH_RETRY_S when its AUTH
 * was refused (as the bridge does). */
#define REFRESH_MIN_S 0.2
#define BACKOFF_MIN_S 0.1
#define BACKOFF_MAX_S 2.0
#define AUTH_RETRY_S 10.0

struct rc_link {
	struct rcluster *rc;
	struct rcluster_addr addr;
	redisAsyncContext *ac;
	bool want_read, want_write;
	bool connected;  /* the connect succeeded: a lost answer may have run */
	bool refused;    /* AUTH refused: reopened after AUTH_RETRY_S */
	bool closing;    /* closed on purpose: not a failure */
	int npending;    /* calls awaiting an answer (ours and the caller's) */
	double progress; /* opened, answered, or first call after idle */
	double retry_at; /* not reopened before */
	double backoff;
};

/* One caller's command, kept formatted until it is answered so that a
 * redirect can send it again. */
struct rc_call {
	struct rcluster *rc;
	rcluster_cb *cb;
	void *priv;
	int redirects;
	char *cmd; /* RESP, from redisFormatCommandArgv */
	int len;
};

struct rcluster {
	const struct chat_config *cfg;
	char name[32];
	double connect_s, timeout_s, refresh_s;
	int max_redirects;
	struct rcluster_addr *seeds;
	size_t nseeds;
	bool seeds_fixed; /* from opts; else asked of rconn_address each refresh */
	struct rcluster_table *table;
	struct rc_link **links;
	size_t nlinks;
	char **preamble;
	int *preamble_len;
	size_t npreamble;
	bool freeing;
	/* refresh */
	bool ready;      /* a table was installed once */
	bool refreshing; /* a CLUSTER SLOTS (or ROLE) is in flight on refresh_link */
	struct rc_link *refresh_link;
	bool refresh_wanted;
	double refresh_not_before, refresh_due, refresh_backoff;
	size_t refresh_cursor; /* the candidate asked first next time */
	struct rcluster_stats stats;
};

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

const char *rcluster_strerror(int status)
{
	switch (status) {
	case RCLUSTER_OK:
		return "answered";
	case RCLUSTER_E_LOST:
		return "link lost before the answer: the command may have run";
	case RCLUSTER_E_DOWN:
		return "no link to the slot's node now: not sent";
	case RCLUSTER_E_REDIRECTS:
		return "too many redirects: not run";
	case RCLUSTER_E_AUTH:
		return "the node refused our credentials: not run";
	case RCLUSTER_E_NOMEM:
		return "out of memory";
	case RCLUSTER_E_ARG:
		return "bad arguments";
	}
	return "unknown status";
}

int rcluster_maybe_ran(int status)
{
	return status == RCLUSTER_OK || status == RCLUSTER_E_LOST;
}

/* ---- hiredis adapter: rcluster_pollfds polls what these flags ask for ---- */

static void ev_add_read(void *p)
{
	((struct rc_link *)p)->want_read = true;
}
static void ev_del_read(void *p)
{
	((struct rc_link *)p)->want_read = false;
}
static void ev_add_write(void *p)
{
	((struct rc_link *)p)->want_write = true;
}
static void ev_del_write(void *p)
{
	((struct rc_link *)p)->want_write = false;
}
static void ev_cleanup(void *p)
{
	struct rc_link *l = p;
	l->want_read = l->want_write = false;
}

/* ---- links ---- */

static void want_refresh(struct rcluster *rc)
{
	rc->refresh_wanted = true;
}

/* The link has no context any more (lost, failed to connect, timed out,
 * closed): a failure is retried after the link's backoff and makes the
 * topology worth asking again. */
static void link_down(struct rc_link *l)
{
	struct rcluster *rc = l->rc;
	double now = now_s();

	l->ac = NULL;
	l->want_read = l->want_write = false;
	l->connected = false;
	if (l->closing)
		return;
	rc->stats.links_lost++;
	if (l->refused) {
		l->retry_at = now + AUTH_RETRY_S;
	} else {
		l->backoff = l->backoff > 0 ? l->backoff * 2 : BACKOFF_MIN_S;
		if (l->backoff > BACKOFF_MAX_S)
			l->backoff = BACKOFF_MAX_S;
		l->retry_at = now + l->backoff;
	}
	want_refresh(rc);
}

static void link_sent(struct rc_link *l)
{
	if (l->npending++ == 0)
		l->progress = now_s();
}

static void link_answered(struct rc_link *l)
{
	if (l->npending > 0)
		l->npending--;
	l->progress = now_s();
}

/* Redis's refusal line names cfg's address: give it this node's. */
static int link_refused(struct rc_link *l, const redisReply *r, char *err, size_t errlen)
{
	struct chat_config named = *l->rc->cfg;

	named.redis_host = l->addr.host;
	named.redis_port = l->addr.port;
	return rconn_refused(&named, r, err, errlen);
}

static void on_auth(redisAsyncContext *ac, void *r, void *priv)
{
	struct rc_link *l = priv;
	char err[256];

	if (r == NULL)
		return; /* lost meanwhile: its disconnect says so */
	if (link_refused(l, r, err, sizeof(err))) {
		log_msg(LOG_ERR, "%s: %s", l->rc->name, err);
		l->refused = true;
		/* the calls pipelined behind AUTH are answered NOAUTH first */
		redisAsyncDisconnect(ac);
		return;
	}
	l->refused = false;
	l->backoff = 0;
}

static void on_preamble(redisAsyncContext *ac, void *r, void *priv)
{
	struct rc_link *l = priv;
	const redisReply *reply = r;

	(void)ac;
	if (reply && reply->type == REDIS_REPLY_ERROR)
		log_msg(LOG_WARN, "%s %s:%d: preamble: %.120s", l->rc->name, l->addr.host,
		        l->addr.port, reply->str);
}

static void on_connect(const redisAsyncContext *ac, int status)
{
	struct rc_link *l = ac->data;

	if (status == REDIS_OK) {
		l->connected = true;
		l->progress = now_s();
		return;
	}
	log_msg(LOG_WARN, "%s %s:%d: connect failed: %s", l->rc->name, l->addr.host, l->addr.port,
	        ac->errstr);
	/* hiredis frees the context after this, answering its calls (NULL) */
	link_down(l);
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
	struct rc_link *l = ac->data;

	if (status != REDIS_OK && !l->closing)
		log_msg(LOG_WARN, "%s %s:%d: connection lost: %s", l->rc->name, l->addr.host,
		        l->addr.port, ac->errstr);
	link_down(l);
}

/* Starts connecting l, with AUTH (or PING, so a server that wants a
 * password says so at once) and the preamble queued first: hiredis sends
 * them once the socket connects, before any command queued after them.
 * Returns 0, or -1 while the link waits for its retry time or cannot be
 * created. */
static int link_open(struct rc_link *l)
{
	struct rcluster *rc = l->rc;
	const char *argv[3];
	double now = now_s();

	if (rc->freeing || now < l->retry_at)
		return -1;
	redisAsyncContext *ac = redisAsyncConnect(l->addr.host, l->addr.port);
	if (ac == NULL || ac->err) {
		log_msg(LOG_WARN, "%s %s:%d: %s", rc->name, l->addr.host, l->addr.port,
		        ac ? ac->errstr : "out of memory");
		if (ac)
			redisAsyncFree(ac);
		link_down(l);
		return -1;
	}
	ac->data = l;
	ac->ev.data = l;
	ac->ev.addRead = ev_add_read;
	ac->ev.delRead = ev_del_read;
	ac->ev.addWrite = ev_add_write;
	ac->ev.delWrite = ev_del_write;
	ac->ev.cleanup = ev_cleanup;
	redisAsyncSetConnectCallback(ac, on_connect);
	redisAsyncSetDisconnectCallback(ac, on_disconnect);
	l->ac = ac;
	l->connected = false;
	l->closing = false;
	l->progress = now;
	l->want_write = true; /* connecting: wait until the socket is writable */
	int argc = rconn_auth_argv(rc->cfg, argv);
	if (argc == 0)
		argv[argc++] = "PING";
	redisAsyncCommandArgv(ac, on_auth, l, argc, argv, NULL);
	for (size_t i = 0; i < rc->npreamble; i++)
		redisAsyncFormattedCommand(ac, on_preamble, l, rc->preamble[i],
		                           (size_t)rc->preamble_len[i]);
	return 0;
}

/* The link to addr, made (not opened) when there is none. NULL: no memory. */
static struct rc_link *link_get(struct rcluster *rc, const struct rcluster_addr *addr)
{
	for (size_t i = 0; i < rc->nlinks; i++)
		if (rc->links[i]->addr.port == addr->port &&
		    strcmp(rc->links[i]->addr.host, addr->host) == 0)
			return rc->links[i];
	struct rc_link **links = realloc(rc->links, (rc->nlinks + 1) * sizeof(*links));
	if (links == NULL)
		return NULL;
	rc->links = links;
	struct rc_link *l = calloc(1, sizeof(*l));
	if (l == NULL)
		return NULL;
	l->rc = rc;
	l->addr = *addr;
	links[rc->nlinks++] = l;
	return l;
}

/* Closes l's context, if any (its pending calls are answered, lost). */
static void link_close(struct rc_link *l)
{
	redisAsyncContext *ac = l->ac;

	if (ac == NULL)
		return;
	redisAsyncFree(ac);
	/* a link that never connected gets no disconnect callback */
	if (l->ac == ac)
		link_down(l);
}

/* ---- commands ---- */

static void on_reply(redisAsyncContext *ac, void *r, void *priv);

static void call_free(struct rc_call *call)
{
	if (call) {
		redisFreeCommand(call->cmd);
		free(call);
	}
}

static void call_finish(struct rc_call *call, int status, redisReply *reply)
{
	if (call->cb)
		call->cb(call->rc, status, reply, call->priv);
	call_free(call);
}

/* Queues call on l (opening it), after ASKING when asking. Returns 0 or
 * RCLUSTER_E_DOWN. */
static int call_send(struct rcluster *rc, struct rc_call *call, struct rc_link *l, bool asking)
{
	if (l == NULL || rc->freeing)
		return RCLUSTER_E_DOWN;
	if (l->ac == NULL && link_open(l) != 0)
		return RCLUSTER_E_DOWN;
	if (asking && redisAsyncCommand(l->ac, NULL, NULL, "ASKING") != REDIS_OK)
		return RCLUSTER_E_DOWN;
	if (redisAsyncFormattedCommand(l->ac, on_reply, call, call->cmd, (size_t)call->len) !=
	    REDIS_OK)
		return RCLUSTER_E_DOWN;
	link_sent(l);
	return 0;
}

static void on_reply(redisAsyncContext *ac, void *r, void *priv)
{
	struct rc_call *call = priv;
	struct rc_link *l = ac->data;
	struct rcluster *rc = call->rc;
	redisReply *reply = r;
	struct rcluster_addr to;
	int slot;

	link_answered(l);
	if (reply == NULL) {
		/* what a link that never connected had queued was never sent */
		call_finish(call, l->connected ? RCLUSTER_E_LOST : RCLUSTER_E_DOWN, NULL);
		return;
	}
	enum rcluster_redirect kind = rcluster_redirect_parse(reply, &l->addr, &slot, &to);
	if (kind != RCLUSTER_REDIRECT_NONE) {
		if (call->redirects >= rc->max_redirects) {
			call_finish(call, RCLUSTER_E_REDIRECTS, reply);
			return;
		}
		call->redirects++;
		if (kind == RCLUSTER_REDIRECT_MOVED) {
			rc->stats.moved++;
			/* this slot at once; the others it took with it at the refresh */
			rcluster_table_set(rc->table, slot, to.host, to.port);
			want_refresh(rc);
		} else {
			rc->stats.ask++;
		}
		int status = call_send(rc, call, link_get(rc, &to), kind == RCLUSTER_REDIRECT_ASK);
		if (status != 0) {
			want_refresh(rc);
			call_finish(call, status, NULL);
		}
		return;
	}
	if (reply->type == REDIS_REPLY_ERROR && strncmp(reply->str, "NOAUTH", 6) == 0) {
		call_finish(call, RCLUSTER_E_AUTH, reply);
		return;
	}
	if (rcluster_topology_changed(reply))
		want_refresh(rc);
	call_finish(call, RCLUSTER_OK, reply);
}

/* The link for slot: its owner's; for a slot no one is known to own, any
 * node (it redirects), or the first seed before any topology. */
static struct rc_link *route(struct rcluster *rc, int slot)
{
	const struct rcluster_addr *a = rcluster_table_owner(rc->table, slot);

	if (a == NULL && rc->table->nnodes > 0)
		a = &rc->table->nodes[0];
	if (a == NULL && rc->nseeds > 0)
		a = &rc->seeds[0];
	return a ? link_get(rc, a) : NULL;
}

int rcluster_command_slot(struct rcluster *rc, int slot, rcluster_cb *cb, void *priv, int argc,
                          const char **argv, const size_t *argvlen)
{
	if (slot < 0 || slot >= RCLUSTER_SLOTS || argc < 1)
		return RCLUSTER_E_ARG;
	if (rc->freeing)
		return RCLUSTER_E_DOWN;
	struct rc_call *call = calloc(1, sizeof(*call));
	if (call == NULL)
		return RCLUSTER_E_NOMEM;
	*call = (struct rc_call){.rc = rc, .cb = cb, .priv = priv};
	call->len = redisFormatCommandArgv(&call->cmd, argc, argv, argvlen);
	if (call->len < 0) {
		free(call);
		return RCLUSTER_E_NOMEM;
	}
	int status = call_send(rc, call, route(rc, slot), false);
	if (status != 0) {
		want_refresh(rc);
		call_free(call);
	}
	return status;
}

int rcluster_command_argv(struct rcluster *rc, const char *key, rcluster_cb *cb, void *priv,
                          int argc, const char **argv, const size_t *argvlen)
{
	if (key == NULL)
		return RCLUSTER_E_ARG;
	return rcluster_command_slot(rc, rcluster_key_slot(key, strlen(key)), cb, priv, argc, argv,
	                             argvlen);
}

int rcluster_preamble(struct rcluster *rc, int argc, const char **argv, const size_t *argvlen)
{
	char *cmd;

	if (argc < 1)
		return RCLUSTER_E_ARG;
	int len = redisFormatCommandArgv(&cmd, argc, argv, argvlen);
	if (len < 0)
		return RCLUSTER_E_NOMEM;
	char **p = realloc(rc->preamble, (rc->npreamble + 1) * sizeof(*p));
	if (p)
		rc->preamble = p;
	int *pl = p ? realloc(rc->preamble_len, (rc->npreamble + 1) * sizeof(*pl)) : NULL;
	if (pl == NULL) {
		redisFreeCommand(cmd);
		return RCLUSTER_E_NOMEM;
	}
	rc->preamble_len = pl;
	rc->preamble[rc->npreamble] = cmd;
	rc->preamble_len[rc->npreamble++] = len;
	return 0;
}

/* ---- topology ---- */

static void refresh_failed(struct rcluster *rc, const char *why)
{
	double now = now_s();

	rc->refreshing = false;
	rc->refresh_link = NULL;
	rc->refresh_cursor++; /* another node next time */
	rc->refresh_wanted = true;
	rc->refresh_backoff = rc->refresh_backoff > 0 ? rc->refresh_backoff * 2 : BACKOFF_MIN_S;
	if (rc->refresh_backoff > BACKOFF_MAX_S)
		rc->refresh_backoff = BACKOFF_MAX_S;
	rc->refresh_not_before = now + rc->refresh_backoff;
	rc->stats.refresh_failures++;
	if (!rc->freeing)
		log_msg(LOG_WARN, "%s: topology: %s (again in %.1f s)", rc->name, why,
		        rc->refresh_backoff);
}

/* Takes t (malloc'd) as the table. */
static void install(struct rcluster *rc, struct rcluster_table *t)
{
	double now = now_s();

	if (!rc->ready || !rcluster_table_same(rc->table, t))
		log_msg(LOG_INFO, "%s: topology: %s, %zu primar%s", rc->name,
		        t->standalone ? "standalone" : "cluster", t->nnodes,
		        t->nnodes == 1 ? "y" : "ies");
	rcluster_table_clear(rc->table);
	free(rc->table);
	rc->table = t;
	rc->ready = true;
	rc->refreshing = false;
	rc->refresh_link = NULL;
	rc->refresh_wanted = false;
	rc->refresh_backoff = 0;
	rc->refresh_not_before = now + REFRESH_MIN_S;
	rc->refresh_due = now + rc->refresh_s;
	rc->stats.refreshes++;
	if (!t->standalone)
		return;
	/* Sentinel names another primary: links to the old one go at once, as
	 * the bridge's sentinel_check does. It may be alive and hold their
	 * answers (paused writes, WAITs that time out), so what was in flight
	 * is in doubt now rather than later. (A cluster's former primary
	 * answers MOVED instead: its calls drain and are resent.) */
	for (size_t i = 0; i < rc->nlinks; i++) {
		struct rc_link *l = rc->links[i];
		if (l->ac == NULL || rcluster_table_find(t, l->addr.host, l->addr.port) >= 0)
			continue;
		log_msg(LOG_WARN, "%s %s:%d: not the primary any more: moving to %s:%d", rc->name,
		        l->addr.host, l->addr.port, t->nodes[0].host, t->nodes[0].port);
		l->closing = true;
		link_close(l);
	}
}

/* A standalone server found through Sentinel counts only as a primary (a
 * sentinel may not have seen the failover yet: sentinel.h). */
static void on_role(redisAsyncContext *ac, void *r, void *priv)
{
	struct rcluster *rc = priv;
	struct rc_link *l = ac->data;

	link_answered(l);
	if (!sentinel_is_primary(r)) {
		refresh_failed(rc, r ? "the sentinels' primary is not one (yet)" : "link lost");
		return;
	}
	struct rcluster_table *t = malloc(sizeof(*t));
	if (t == NULL || rcluster_table_standalone(t, &l->addr) != 0) {
		free(t);
		refresh_failed(rc, "out of memory");
		return;
	}
	install(rc, t);
}

static void on_slots(redisAsyncContext *ac, void *r, void *priv)
{
	struct rcluster *rc = priv;
	struct rc_link *l = ac->data;
	const redisReply *reply = r;
	char why[512];

	link_answered(l);
	struct rcluster_table *t = malloc(sizeof(*t));
	if (t == NULL) {
		refresh_failed(rc, "out of memory");
		return;
	}
	if (rcluster_table_from_reply(t, reply, &l->addr) != 0) {
		free(t);
		snprintf(why, sizeof(why), "%s:%d: %.120s", l->addr.host, l->addr.port,
		         reply == NULL                      ? "link lost"
		         : reply->type == REDIS_REPLY_ERROR ? reply->str
		                                            : "CLUSTER SLOTS names no slot");
		refresh_failed(rc, why);
		return;
	}
	if (t->standalone && rc->cfg->redis_sentinels) {
		rcluster_table_clear(t);
		free(t);
		if (redisAsyncCommand(ac, on_role, rc, "ROLE") != REDIS_OK) {
			refresh_failed(rc, "link lost");
			return;
		}
		link_sent(l);
		return;
	}
	install(rc, t);
}

/* Asks the next candidate that can be reached for CLUSTER SLOTS. */
static void refresh_start(struct rcluster *rc)
{
	char err[512];

	if (!rc->seeds_fixed) {
		/* single or Sentinel: where the server is now (Sentinel: asked
		 * anew, blocking at most SENTINEL_ASK_MS per sentinel, as the
		 * bridge's reconnects do) */
		if (rc->seeds == NULL && (rc->seeds = calloc(1, sizeof(*rc->seeds))) == NULL) {
			refresh_failed(rc, "out of memory");
			return;
		}
		if (rconn_address(rc->cfg, rc->seeds[0].host, &rc->seeds[0].port, err,
		                  sizeof(err)) != 0) {
			refresh_failed(rc, err);
			return;
		}
		rc->nseeds = 1;
	}
	size_t n = rcluster_candidates(rc->table, rc->nseeds);
	for (size_t k = 0; k < n; k++) {
		size_t i = (rc->refresh_cursor + k) % n;
		struct rc_link *l =
		    link_get(rc, rcluster_candidate(rc->table, rc->seeds, rc->nseeds, i));
		if (l == NULL || (l->ac == NULL && link_open(l) != 0))
			continue;
		if (redisAsyncCommand(l->ac, on_slots, rc, "CLUSTER SLOTS") != REDIS_OK)
			continue;
		link_sent(l);
		rc->refreshing = true;
		rc->refresh_link = l;
		rc->refresh_cursor = i;
		return;
	}
	refresh_failed(rc, "no node to ask can be reached");
}

/* ---- the caller's loop ---- */

int rcluster_ready(const struct rcluster *rc)
{
	return rc->ready;
}

int rcluster_pollfds(struct rcluster *rc, struct pollfd *fds, int max)
{
	int n = 0;

	for (size_t i = 0; i < rc->nlinks && n < max; i++) {
		struct rc_link *l = rc->links[i];
		if (l->ac == NULL || (!l->want_read && !l->want_write))
			continue;
		fds[n].fd = l->ac->c.fd;
		fds[n].events =
		    (short)((l->want_read ? POLLIN : 0) | (l->want_write ? POLLOUT : 0));
		fds[n++].revents = 0;
	}
	return n;
}

void rcluster_handle(struct rcluster *rc, int fd, short revents)
{
	struct rc_link *l = NULL;

	for (size_t i = 0; i < rc->nlinks && l == NULL; i++)
		if (rc->links[i]->ac && rc->links[i]->ac->c.fd == fd)
			l = rc->links[i];
	if (l == NULL || revents == 0)
		return;
	/* a callback may free the context (links themselves stay) */
	redisAsyncContext *ac = l->ac;
	if (revents & (POLLIN | POLLHUP | POLLERR))
		redisAsyncHandleRead(ac);
	if (l->ac == ac && (revents & POLLOUT))
		redisAsyncHandleWrite(ac);
}

/* Whether l may be closed and forgotten: no call on it, and its node is
 * not in the table (no longer a primary) nor being asked for one. */
static bool link_unused(const struct rcluster *rc, const struct rc_link *l)
{
	return l->npending == 0 && l != rc->refresh_link &&
	       rcluster_table_find(rc->table, l->addr.host, l->addr.port) < 0;
}

void rcluster_tick(struct rcluster *rc)
{
	double now = now_s();

	/* a link that does not answer is dropped: its calls are answered
	 * lost, and the topology asked again (index, not pointer: the
	 * callbacks this runs may add links) */
	for (size_t i = 0; i < rc->nlinks; i++) {
		struct rc_link *l = rc->links[i];
		double limit = l->connected ? rc->timeout_s : rc->connect_s;
		if (l->ac == NULL || (l->connected && l->npending == 0) ||
		    now - l->progress <= limit)
			continue;
		log_msg(LOG_WARN, "%s %s:%d: no answer for %.1f s: dropping the link", rc->name,
		        l->addr.host, l->addr.port, now - l->progress);
		rc->stats.timeouts++;
		link_close(l);
	}
	if (now >= rc->refresh_due)
		rc->refresh_wanted = true;
	if (rc->refresh_wanted && !rc->refreshing && now >= rc->refresh_not_before)
		refresh_start(rc);
	for (size_t i = 0; i < rc->nlinks;) {
		struct rc_link *l = rc->links[i];
		if (!rc->ready || !link_unused(rc, l)) {
			i++;
			continue;
		}
		l->closing = true;
		link_close(l);
		free(l);
		rc->links[i] = rc->links[--rc->nlinks];
	}
}

int rcluster_timeout_ms(const struct rcluster *rc)
{
	double now = now_s(), at = now + 1.0;

	/* while a refresh is in flight its answer, not a timer, moves on */
	if (!rc->refreshing) {
		double due = rc->refresh_wanted ? rc->refresh_not_before : rc->refresh_due;
		if (due < at)
			at = due;
	}
	for (size_t i = 0; i < rc->nlinks; i++) {
		const struct rc_link *l = rc->links[i];
		if (l->ac && (!l->connected || l->npending > 0)) {
			double t = l->progress + (l->connected ? rc->timeout_s : rc->connect_s);
			if (t < at)
				at = t;
		}
	}
	double ms = (at - now) * 1000 + 1;
	return ms < 0 ? 0 : ms > 1000 ? 1000 : (int)ms;
}

void rcluster_get_stats(const struct rcluster *rc, struct rcluster_stats *out)
{
	*out = rc->stats;
	out->nodes = rc->table->nnodes;
	out->standalone = rc->table->standalone;
	out->links = 0;
	for (size_t i = 0; i < rc->nlinks; i++)
		out->links += rc->links[i]->ac != NULL;
}

/* ---- life ---- */

struct rcluster *rcluster_new(const struct chat_config *cfg, const struct rcluster_opts *opts,
                              char *err, size_t errlen)
{
	struct rcluster_opts o = opts ? *opts : (struct rcluster_opts){0};
	struct rcluster *rc = calloc(1, sizeof(*rc));

	if (rc == NULL || (rc->table = malloc(sizeof(*rc->table))) == NULL)
		goto nomem;
	rcluster_table_init(rc->table);
	rc->cfg = cfg;
	snprintf(rc->name, sizeof(rc->name), "%s", o.name ? o.name : "redis");
	rc->connect_s = (o.connect_ms > 0 ? o.connect_ms : 2000) / 1000.0;
	rc->timeout_s = (o.timeout_ms > 0 ? o.timeout_ms : 5000) / 1000.0;
	rc->refresh_s = (o.refresh_ms > 0 ? o.refresh_ms : 5000) / 1000.0;
	rc->max_redirects = o.max_redirects > 0 ? o.max_redirects : 5;
	if (o.seeds) {
		if (rcluster_addrs_parse(o.seeds, &rc->seeds, &rc->nseeds) != 0) {
			snprintf(err, errlen,
			         "redis cluster seeds '%.200s': want host:port[,host:port...]",
			         o.seeds);
			rcluster_free(rc);
			return NULL;
		}
		rc->seeds_fixed = true;
	}
	return rc;
nomem:
	free(rc);
	snprintf(err, errlen, "out of memory");
	return NULL;
}

void rcluster_free(struct rcluster *rc)
{
	if (rc == NULL)
		return;
	rc->freeing = true;
	for (size_t i = 0; i < rc->nlinks; i++) {
		rc->links[i]->closing = true;
		link_close(rc->links[i]);
	}
	for (size_t i = 0; i < rc->nlinks; i++)
		free(rc->links[i]);
	free(rc->links);
	for (size_t i = 0; i < rc->npreamble; i++)
		redisFreeCommand(rc->preamble[i]);
	free(rc->preamble);
	free(rc->preamble_len);
	free(rc->seeds);
	if (rc->table)
		rcluster_table_clear(rc->table);
	free(rc->table);
	free(rc);
}
