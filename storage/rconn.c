/*
 * Redis connection set-up (see rconn.h).
 */
#include <stdio.h>
#include <string.h>

#include "rconn.h"
#include "sentinel.h"

int rconn_address(const struct chat_config *cfg, char *host, int *port, char *err, size_t errlen)
{
	if (cfg->redis_sentinels)
		return sentinel_primary(cfg, host, port, err, errlen);
	snprintf(host, SENTINEL_HOST_MAX + 1, "%s", cfg->redis_host);
	*port = (int)cfg->redis_port;
	return 0;
}

int rconn_auth_argv(const struct chat_config *cfg, const char **argv)
{
	int argc = 0;

	if (cfg->redis_password == NULL)
		return 0;
	argv[argc++] = "AUTH";
	if (cfg->redis_user)
		argv[argc++] = cfg->redis_user;
	argv[argc++] = cfg->redis_password;
	return argc;
}

/* Redis words its refusals: "NOAUTH Authentication required.", "WRONGPASS
 * invalid username-password pair or user is disabled.", and "ERR AUTH
 * <password> called without any password configured ..." (our password
 * against a server that has none). */
int rconn_refused(const struct chat_config *cfg, const redisReply *reply, char *err, size_t errlen)
{
	const char *why;

	if (reply == NULL || reply->type != REDIS_REPLY_ERROR || reply->str == NULL)
		return 0;
	if (strncmp(reply->str, "NOAUTH", 6) == 0)
		why = "Redis requires a password: set redis_password_file";
	else if (strncmp(reply->str, "WRONGPASS", 9) == 0)
		why = "Redis refused the password of redis_password_file (or redis_user)";
	else if (strstr(reply->str, "without any password configured") != NULL)
		why = "Redis has no password, yet redis_password_file is set";
	else
		return 0;
	snprintf(err, errlen, "redis %s:%ld: %s (%.80s)", cfg->redis_host, cfg->redis_port, why,
	         reply->str);
	return 1;
}

redisContext *rconn_connect(const struct chat_config *cfg, int connect_ms, int cmd_ms, int *rc,
                            char *err, size_t errlen)
{
	/* a WAIT for replicas blocks up to redis_wait_ms: a command timeout
	 * shorter than that would drop the link and answer early */
	if (cfg->redis_wait_replicas > 0 && cmd_ms < cfg->redis_wait_ms + 1000)
		cmd_ms = (int)cfg->redis_wait_ms + 1000;
	struct timeval ctv = {connect_ms / 1000, (connect_ms % 1000) * 1000};
	struct timeval tv = {cmd_ms / 1000, (cmd_ms % 1000) * 1000};
	const char *argv[3];
	char host[SENTINEL_HOST_MAX + 1];
	int port;
	redisContext *c = NULL;
	redisReply *r = NULL;

	*rc = RCONN_E_CONNECT;
	int found = rconn_address(cfg, host, &port, err, errlen);
	if (found != 0) {
		if (found == -2)
			*rc = RCONN_E_AUTH;
		goto error;
	}
	c = redisConnectWithTimeout(host, port, ctv);
	if (c == NULL || c->err) {
		snprintf(err, errlen, "redis %s:%d: %s", host, port,
		         c ? c->errstr : "out of memory");
		goto error;
	}
	/* the AUTH round trip is part of connecting: it gets the connect bound */
	redisSetTimeout(c, ctv);
	int argc = rconn_auth_argv(cfg, argv);
	/* without a password, PING tells a server that wants one at once,
	 * rather than at the first real command */
	if (argc == 0) {
		argv[0] = "PING";
		argc = 1;
	}
	r = redisCommandArgv(c, argc, argv, NULL);
	if (r == NULL) {
		snprintf(err, errlen, "redis %s:%d: %s", host, port,
		         c->errstr[0] ? c->errstr : "no answer");
		goto error;
	}
	if (rconn_refused(cfg, r, err, errlen)) {
		*rc = RCONN_E_AUTH;
		goto error;
	}
	if (r->type == REDIS_REPLY_ERROR && strncmp(r->str, "LOADING", 7) != 0) {
		snprintf(err, errlen, "redis %s:%d: %s: %.80s", host, port, argv[0], r->str);
		goto error;
	}
	freeReplyObject(r);
	/* a sentinel that has not seen the failover yet names the old
	 * primary, which may be back as a replica: only a primary will do */
	r = cfg->redis_sentinels ? redisCommand(c, "ROLE") : NULL;
	if (cfg->redis_sentinels && !sentinel_is_primary(r)) {
		snprintf(err, errlen, "redis %s:%d: not the primary (yet): asking again later",
		         host, port);
		goto error;
	}
	freeReplyObject(r);
	redisSetTimeout(c, tv);
	*rc = RCONN_OK;
	return c;
error:
	freeReplyObject(r);
	if (c)
		redisFree(c);
	return NULL;
}

int rconn_check_at_start(const struct chat_config *cfg, const char *prog)
{
	char err[256];
	int rc;
	redisContext *c = rconn_connect(cfg, 2000, 2000, &rc, err, sizeof(err));

	if (c)
		redisFree(c);
	if (rc != RCONN_E_AUTH)
		return 0;
	fprintf(stderr, "%s: %s\n", prog, err);
	return 1;
}

int rconn_replicated(redisContext *c, const char *node, long replicas, long ms)
{
	redisReply *r = redisCommand(c, "SET chat:fence:%s:changes 1", node);

	if (r == NULL)
		return -1;
	freeReplyObject(r); /* refused (READONLY, NOREPLICAS): the WAIT says too few */
	r = redisCommand(c, "WAIT %ld %ld", replicas, ms);
	if (r == NULL)
		return -1;
	int ok = r->type == REDIS_REPLY_INTEGER && r->integer >= replicas;
	freeReplyObject(r);
	return ok;
}
