/*
 * Setting up a connection to Redis, the same way for every component (the
 * bridge's event-loop links and worker threads, the web front's workers,
 * chatctl): the address (asked of Sentinel when redis_sentinels is set)
 * and, when redis_password_file is set, AUTH with its password (and
 * redis_user, for a Redis ACL user). Every reconnect goes through here, so
 * it authenticates, and finds a primary that moved, too.
 */
#ifndef CHAT_RCONN_H
#define CHAT_RCONN_H

#include <stddef.h>

#include <hiredis/hiredis.h>

#include "chat/config.h"

enum rconn_err {
	RCONN_OK = 0,
	RCONN_E_CONNECT = -1, /* no answer: down, or the address is wrong; try again later */
	RCONN_E_AUTH = -2,    /* Redis refused the credentials: a setting to fix */
};

/* A blocking connection: connect_ms to connect and authenticate, then
 * cmd_ms for each command (at least redis_wait_ms + 1 s while replicas
 * are waited for, so that a WAIT is answered). Returns the context, or
 * NULL with *rc and err (a line naming the address and what to fix). */
redisContext *rconn_connect(const struct chat_config *cfg, int connect_ms, int cmd_ms, int *rc,
                            char *err, size_t errlen);

/* Where Redis is now: redis_host:redis_port, or with redis_sentinels the
 * primary the sentinels name (storage/sentinel.h). host needs 256 bytes.
 * Returns 0, or with err -2 (a sentinel refused the credentials) or -1. */
int rconn_address(const struct chat_config *cfg, char *host, int *port, char *err,
                  size_t errlen);

/* The AUTH command for cfg as argv (pointing into cfg): its argc, 0 when
 * no password is set. argv needs room for 3. */
int rconn_auth_argv(const struct chat_config *cfg, const char **argv);

/* Whether reply to AUTH (or to a first command) says the credentials are
 * refused; then err gets a line saying what to fix. */
int rconn_refused(const struct chat_config *cfg, const redisReply *reply, char *err, size_t errlen);

/* For a daemon's start: one connection attempt, so that credentials Redis
 * refuses stop the daemon with a line on stderr (prog: why) instead of a
 * daemon that runs and never works. Returns 0 when Redis accepted them or
 * did not answer (it may come up later; the daemon retries), else 1. */
int rconn_check_at_start(const struct chat_config *cfg, const char *prog);

/* For a blocking link that just changed state (a worker job): a fence
 * write (chat:fence:<node>:changes, so WAIT has a write of this link to
 * count) then WAIT replicas ms. Returns 1 when replicas acknowledged
 * everything this link wrote, 0 when too few did in time (the change may
 * still be on the primary: answer unavailable), -1 when the link failed
 * (c->err set; reconnect). The context's command timeout must exceed ms. */
int rconn_replicated(redisContext *c, const char *node, long replicas, long ms);

#endif
