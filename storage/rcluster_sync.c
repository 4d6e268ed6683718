/*
 * The blocking cluster client (see rcluster.h), for worker threads that use
 * hiredis's redisCommandArgv today (bridge/jobs.c, bridge/persist.c): one
 * blocking context per node, opened on demand with AUTH; the topology is
 * asked again before the next command after a redirect or a failure. Every
 * wait is bounded: connect_ms per connect, timeout_ms per answer, and at
 * most max_redirects + 1 tries per command.
 */
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chat/log.h"
#include "rcluster.h"
#include "rconn.h"
#include "sentinel.h"

struct sync_link {
	struct rcluster_addr addr;
	redisContext *c;
};

struct rcluster_sync {
	const struct chat_config *cfg;
	int connect_ms, timeout_ms, max_redirects;
	struct rcluster_addr *seeds;
	size_t nseeds;
	bool seeds_fixed;
	struct rcluster_table *table;
	bool stale;    /* ask for the topology before the next command */
	size_t cursor; /* the candidate asked first */
	struct sync_link *links;
	size_t nlinks;
	struct rcluster_stats stats;
};

static struct timeval ms_tv(int ms)
{
	return (struct timeval){ms / 1000, (ms % 1000) * 1000};
}

static void drop_at(struct rcluster_sync *sc, size_t i)
{
	redisFree(sc->links[i].c);
	sc->links[i] = sc->links[--sc->nlinks];
	sc->stale = true;
}

void rcluster_sync_drop(struct rcluster_sync *sc, redisContext *c)
{
	for (size_t i = 0; i < sc->nlinks; i++)
		if (sc->links[i].c == c) {
			sc->stats.links_lost++;
			drop_at(sc, i);
			return;
		}
}

/* A context on addr, authenticated (rconn.h's AUTH, or PING), with the
 * command timeout set. Returns 0 with *out, or RCLUSTER_E_AUTH (logged:
 * a setting to fix) / RCLUSTER_E_DOWN. */
static int open_link(struct rcluster_sync *sc, const struct rcluster_addr *addr, redisContext **out)
{
	struct chat_config named = *sc->cfg; /* so a refusal names this node */
	const char *argv[3];
	char err[256];
	redisReply *r = NULL;
	int status = RCLUSTER_E_DOWN;

	named.redis_host = (char *)addr->host;
	named.redis_port = addr->port;
	redisContext *c = redisConnectWithTimeout(addr->host, addr->port, ms_tv(sc->connect_ms));
	if (c == NULL || c->err)
		goto error;
	redisSetTimeout(c, ms_tv(sc->connect_ms));
	int argc = rconn_auth_argv(sc->cfg, argv);
	if (argc == 0)
		argv[argc++] = "PING";
	r = redisCommandArgv(c, argc, argv, NULL);
	if (r == NULL)
		goto error;
	if (rconn_refused(&named, r, err, sizeof(err))) {
		log_msg(LOG_ERR, "%s", err);
		status = RCLUSTER_E_AUTH;
		goto error;
	}
	freeReplyObject(r);
	redisSetTimeout(c, ms_tv(sc->timeout_ms));
	*out = c;
	return 0;
error:
	freeReplyObject(r);
	if (c)
		redisFree(c);
	return status;
}

/* Whether an idle blocking connection was closed by the server (killed by
 * Sentinel's reconfiguration, a restart, a timeout): with no answer due,
 * anything to read is its EOF or a parting error. Checked before a command
 * is written, so that such a command is sent on a new connection instead of
 * being lost in doubt. */
static bool closed_while_idle(redisContext *c)
{
	struct pollfd pfd = {c->fd, POLLIN, 0};
	return poll(&pfd, 1, 0) != 0;
}

/* The open context on addr, opened now if need be. */
static int link_get(struct rcluster_sync *sc, const struct rcluster_addr *addr, redisContext **out)
{
	for (size_t i = 0; i < sc->nlinks; i++)
		if (sc->links[i].addr.port == addr->port &&
		    strcmp(sc->links[i].addr.host, addr->host) == 0) {
			if (closed_while_idle(sc->links[i].c)) {
				sc->stats.links_lost++;
				drop_at(sc, i);
				break;
			}
			*out = sc->links[i].c;
			return 0;
		}
	struct sync_link *links = realloc(sc->links, (sc->nlinks + 1) * sizeof(*links));
	if (links == NULL)
		return RCLUSTER_E_NOMEM;
	sc->links = links;
	int status = open_link(sc, addr, out);
	if (status != 0)
		return status;
	links[sc->nlinks++] = (struct sync_link){*addr, *out};
	return 0;
}

/* Asks the candidates in turn for CLUSTER SLOTS (ROLE too, for a server
 * found through Sentinel) and installs the first usable answer. Returns 0,
 * or -1 with the table unchanged. */
static int refresh(struct rcluster_sync *sc)
{
	char err[512];
	redisContext *c;

	if (!sc->seeds_fixed) {
		if (sc->seeds == NULL && (sc->seeds = calloc(1, sizeof(*sc->seeds))) == NULL)
			return -1;
		if (rconn_address(sc->cfg, sc->seeds[0].host, &sc->seeds[0].port, err,
		                  sizeof(err)) != 0) {
			log_msg(LOG_WARN, "redis: %s", err);
			sc->stats.refresh_failures++;
			return -1;
		}
		sc->nseeds = 1;
	}
	struct rcluster_table *t = malloc(sizeof(*t));
	if (t == NULL)
		return -1;
	size_t n = rcluster_candidates(sc->table, sc->nseeds);
	for (size_t k = 0; k < n; k++) {
		size_t i = (sc->cursor + k) % n;
		/* a copy: the table it points into may be replaced */
		struct rcluster_addr a = *rcluster_candidate(sc->table, sc->seeds, sc->nseeds, i);
		if (link_get(sc, &a, &c) != 0)
			continue;
		redisReply *r = redisCommand(c, "CLUSTER SLOTS");
		if (r == NULL) {
			rcluster_sync_drop(sc, c);
			continue;
		}
		int ok = rcluster_table_from_reply(t, r, &a) == 0;
		freeReplyObject(r);
		if (ok && t->standalone && sc->cfg->redis_sentinels) {
			r = redisCommand(c, "ROLE");
			ok = sentinel_is_primary(r);
			if (r == NULL)
				rcluster_sync_drop(sc, c);
			freeReplyObject(r);
		}
		if (!ok) {
			rcluster_table_clear(t);
			continue;
		}
		rcluster_table_clear(sc->table);
		free(sc->table);
		sc->table = t;
		sc->cursor = i;
		sc->stats.refreshes++;
		/* connections to nodes that are no longer primaries go */
		for (size_t j = 0; j < sc->nlinks;) {
			const struct rcluster_addr *was = &sc->links[j].addr;
			if (rcluster_table_find(t, was->host, was->port) < 0)
				drop_at(sc, j);
			else
				j++;
		}
		sc->stale = false;
		return 0;
	}
	free(t);
	sc->cursor++;
	sc->stats.refresh_failures++;
	return -1;
}

/* Where a command for slot goes now (a copy into *a). Returns 0 or -1
 * when no node is known. */
static int owner(struct rcluster_sync *sc, int slot, struct rcluster_addr *a)
{
	const struct rcluster_addr *o = rcluster_table_owner(sc->table, slot);

	if (o == NULL && sc->table->nnodes > 0)
		o = &sc->table->nodes[0];
	if (o == NULL && sc->nseeds > 0)
		o = &sc->seeds[0];
	if (o == NULL)
		return -1;
	*a = *o;
	return 0;
}

int rcluster_sync_link(struct rcluster_sync *sc, int slot, redisContext **c)
{
	struct rcluster_addr a;

	if (slot < 0 || slot >= RCLUSTER_SLOTS)
		return RCLUSTER_E_ARG;
	if (sc->stale || sc->table->nnodes == 0)
		refresh(sc);
	if (owner(sc, slot, &a) != 0)
		return RCLUSTER_E_DOWN;
	int status = link_get(sc, &a, c);
	if (status != 0)
		sc->stale = true;
	return status;
}

/* Sends the command on c, after ASKING when asking. NULL: the link
 * failed (the command may have been written). */
static redisReply *send_on(redisContext *c, bool asking, int argc, const char **argv,
                           const size_t *argvlen)
{
	void *r = NULL;

	if (!asking)
		return redisCommandArgv(c, argc, argv, argvlen);
	if (redisAppendCommand(c, "ASKING") != REDIS_OK ||
	    redisAppendCommandArgv(c, argc, argv, argvlen) != REDIS_OK ||
	    redisGetReply(c, &r) != REDIS_OK)
		return NULL;
	freeReplyObject(r); /* +OK */
	r = NULL;
	if (redisGetReply(c, &r) != REDIS_OK)
		return NULL;
	return r;
}

int rcluster_sync_command_slot(struct rcluster_sync *sc, int slot, redisReply **reply, int argc,
                               const char **argv, const size_t *argvlen)
{
	struct rcluster_addr a, to;
	bool asking = false;
	redisContext *c;
	int s;

	*reply = NULL;
	if (slot < 0 || slot >= RCLUSTER_SLOTS || argc < 1)
		return RCLUSTER_E_ARG;
	for (int tries = 0; tries <= sc->max_redirects; tries++) {
		if (!asking) {
			if (sc->stale || sc->table->nnodes == 0)
				refresh(sc);
			if (owner(sc, slot, &a) != 0)
				return RCLUSTER_E_DOWN;
		}
		int status = link_get(sc, &a, &c);
		if (status == RCLUSTER_E_AUTH || status == RCLUSTER_E_NOMEM)
			return status;
		if (status != 0) {
			/* a primary that is gone: try again only if the cluster
			 * already names another one for the slot */
			struct rcluster_addr was = a;
			if (asking || refresh(sc) != 0 || owner(sc, slot, &a) != 0 ||
			    (a.port == was.port && strcmp(a.host, was.host) == 0)) {
				sc->stale = true;
				return RCLUSTER_E_DOWN;
			}
			continue;
		}
		redisReply *r = send_on(c, asking, argc, argv, argvlen);
		if (r == NULL) {
			rcluster_sync_drop(sc, c);
			return RCLUSTER_E_LOST;
		}
		enum rcluster_redirect kind = rcluster_redirect_parse(r, &a, &s, &to);
		if (kind == RCLUSTER_REDIRECT_MOVED) {
			sc->stats.moved++;
			rcluster_table_set(sc->table, s, to.host, to.port);
			sc->stale = true;
			asking = false;
		} else if (kind == RCLUSTER_REDIRECT_ASK) {
			sc->stats.ask++;
			a = to;
			asking = true;
		} else if (r->type == REDIS_REPLY_ERROR && strncmp(r->str, "NOAUTH", 6) == 0) {
			freeReplyObject(r);
			rcluster_sync_drop(sc, c);
			return RCLUSTER_E_AUTH;
		} else {
			if (rcluster_topology_changed(r))
				sc->stale = true;
			*reply = r;
			return RCLUSTER_OK;
		}
		freeReplyObject(r);
	}
	return RCLUSTER_E_REDIRECTS;
}

int rcluster_sync_command_argv(struct rcluster_sync *sc, const char *key, redisReply **reply,
                               int argc, const char **argv, const size_t *argvlen)
{
	if (key == NULL) {
		*reply = NULL;
		return RCLUSTER_E_ARG;
	}
	return rcluster_sync_command_slot(sc, rcluster_key_slot(key, strlen(key)), reply, argc,
	                                  argv, argvlen);
}

void rcluster_sync_get_stats(const struct rcluster_sync *sc, struct rcluster_stats *out)
{
	*out = sc->stats;
	out->nodes = sc->table->nnodes;
	out->standalone = sc->table->standalone;
	out->links = sc->nlinks;
}

struct rcluster_sync *rcluster_sync_new(const struct chat_config *cfg,
                                        const struct rcluster_opts *opts, char *err, size_t errlen)
{
	struct rcluster_opts o = opts ? *opts : (struct rcluster_opts){0};
	struct rcluster_sync *sc = calloc(1, sizeof(*sc));

	if (sc == NULL || (sc->table = malloc(sizeof(*sc->table))) == NULL) {
		free(sc);
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	rcluster_table_init(sc->table);
	sc->cfg = cfg;
	sc->connect_ms = o.connect_ms > 0 ? o.connect_ms : 2000;
	sc->timeout_ms = o.timeout_ms > 0 ? o.timeout_ms : 5000;
	/* a WAIT for replicas blocks up to redis_wait_ms (as rconn_connect) */
	if (cfg->redis_wait_replicas > 0 && sc->timeout_ms < cfg->redis_wait_ms + 1000)
		sc->timeout_ms = (int)cfg->redis_wait_ms + 1000;
	sc->max_redirects = o.max_redirects > 0 ? o.max_redirects : 5;
	if (o.seeds) {
		if (rcluster_addrs_parse(o.seeds, &sc->seeds, &sc->nseeds) != 0) {
			snprintf(err, errlen,
			         "redis cluster seeds '%.200s': want host:port[,host:port...]",
			         o.seeds);
			rcluster_sync_free(sc);
			return NULL;
		}
		sc->seeds_fixed = true;
	}
	return sc;
}

void rcluster_sync_free(struct rcluster_sync *sc)
{
	if (sc == NULL)
		return;
	for (size_t i = 0; i < sc->nlinks; i++)
		redisFree(sc->links[i].c);
	free(sc->links);
	free(sc->seeds);
	rcluster_table_clear(sc->table);
	free(sc->table);
	free(sc);
}
