/*
 * A Redis client that routes each command to the primary owning its slot,
 * for one code path over a single Redis, a Sentinel-watched primary and a
 * Redis Cluster (hiredis 0.14 has no cluster support; docs in
 * /work/notes/cluster.md until DECISIONS.md says why no library).
 *
 * The topology comes from CLUSTER SLOTS (rcluster_slots.h). A server that
 * answers "cluster support disabled" is a standalone Redis: one node owning
 * every slot, so callers never ask which kind they talk to. A -MOVED answer
 * updates the slot, resends the command and asks for a refresh; -ASK sends
 * ASKING and the command to the named node once; a lost link answers its
 * pending calls and asks for a refresh. Refreshes also run periodically,
 * at most one at a time, with a backoff while they fail: never a busy
 * loop. Every link authenticates as storage/rconn.h says.
 *
 * Two clients share that: struct rcluster, asynchronous, for an event loop
 * the caller owns (one hiredis async link per node, created on demand; the
 * caller polls what rcluster_pollfds gives and hands readiness back, as the
 * bridge does with its links), and struct rcluster_sync, blocking, for
 * worker threads (one hiredis context per node, bounded by timeouts).
 *
 * Addresses: opts.seeds ("host:port,...") when set; else redis_host /
 * redis_port, or the primary the sentinels name (rconn_address), asked
 * again at every refresh. A cluster needs only one reachable seed.
 *
 * Neither client is thread-safe: one per thread or loop.
 */
#ifndef CHAT_RCLUSTER_H
#define CHAT_RCLUSTER_H

#include <poll.h>
#include <stddef.h>

#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include "chat/config.h"
#include "rcluster_slots.h"

/* How a command ended. RCLUSTER_OK: reply is the server's answer (an error
 * reply too: a script error, TRYAGAIN, CLUSTERDOWN). RCLUSTER_E_LOST: it
 * was sent and the link failed before the answer, so it may have run
 * (the caller's "in doubt"). Every other code: it certainly did not run. */
enum rcluster_status {
	RCLUSTER_OK = 0,
	RCLUSTER_E_LOST = -1,      /* sent, answer lost: may have run */
	RCLUSTER_E_DOWN = -2,      /* not sent: no usable link to the slot's node now */
	RCLUSTER_E_REDIRECTS = -3, /* not run: redirected more than max_redirects times */
	RCLUSTER_E_AUTH = -4,      /* not run: the node refused our credentials */
	RCLUSTER_E_NOMEM = -5,
	RCLUSTER_E_ARG = -6, /* no command, no key, or a slot out of range */
};

const char *rcluster_strerror(int status);

/* Whether a command that ended with status may have run on a server. */
int rcluster_maybe_ran(int status);

struct rcluster_opts {
	const char *name;  /* in log lines ("cmd", "feed"); NULL: "redis" */
	const char *seeds; /* "host:port,..."; NULL: cfg's address (single, Sentinel) */
	int connect_ms;    /* a connect (and AUTH) is given up after this; 0: 2000 */
	/* async: a link whose oldest call has waited this long without an
	 * answer is dropped (longer than any BLOCK the caller sends);
	 * blocking: each command's timeout. 0: 5000 */
	int timeout_ms;
	int refresh_ms;    /* periodic topology refresh (async); 0: 5000 */
	int max_redirects; /* MOVED/ASK followed per command; 0: 5 */
};

/* Counters, for tests and metrics. */
struct rcluster_stats {
	unsigned long moved, ask;       /* redirects followed */
	unsigned long refreshes;        /* topologies installed */
	unsigned long refresh_failures; /* refreshes that got no usable answer */
	unsigned long links_lost;       /* links dropped by a failure or timeout */
	unsigned long timeouts;         /* of those, by the timeout */
	size_t nodes;                   /* primaries in the table */
	size_t links;                   /* links open now */
	int standalone;                 /* the server is not a cluster */
};

/* ---- asynchronous client ---- */

struct rcluster;

/* Called once per command accepted by rcluster_command_*: status as
 * above; reply (RCLUSTER_OK, or the error that ended it, else NULL)
 * belongs to hiredis and is freed after the callback returns. */
typedef void rcluster_cb(struct rcluster *rc, int status, redisReply *reply, void *priv);

/* A client for cfg (read for AUTH and the default address; it must outlive
 * the client) with opts (NULL: defaults). Does no I/O: the first
 * rcluster_tick asks for the topology. Returns NULL with err (a line naming
 * the bad setting) for bad seeds or no memory. Free with rcluster_free. */
struct rcluster *rcluster_new(const struct chat_config *cfg, const struct rcluster_opts *opts,
                              char *err, size_t errlen);

/* Closes every link: pending calls get RCLUSTER_E_LOST (or _DOWN for
 * links never connected), from inside this call. Not from a callback. */
void rcluster_free(struct rcluster *rc);

/* A command every new link sends after AUTH and before anything else
 * (SCRIPT LOAD, so EVALSHA finds its scripts on a node that just became
 * primary). Answers are not reported; errors are logged. Applies to links
 * opened from now on. Returns 0 or RCLUSTER_E_NOMEM / _ARG. */
int rcluster_preamble(struct rcluster *rc, int argc, const char **argv, const size_t *argvlen);

/* Sends argv (argvlen NULL: C strings) to the primary of key's slot (the
 * routing key need not be in argv: EVALSHA sha n key...). Returns 0, and
 * cb(priv) is then called exactly once, later, never from inside this
 * call; or a negative status (nothing was sent, cb is never called). cb
 * may be NULL. */
int rcluster_command_argv(struct rcluster *rc, const char *key, rcluster_cb *cb, void *priv,
                          int argc, const char **argv, const size_t *argvlen);

/* The same, routed by slot (0..16383), for a caller that computed it. */
int rcluster_command_slot(struct rcluster *rc, int slot, rcluster_cb *cb, void *priv, int argc,
                          const char **argv, const size_t *argvlen);

/* Whether a topology is known (commands can be routed). */
int rcluster_ready(const struct rcluster *rc);

/* The sockets to poll: fills up to max entries (fd, events; revents 0)
 * and returns how many. At most one per node. */
int rcluster_pollfds(struct rcluster *rc, struct pollfd *fds, int max);

/* After poll: hands one socket's revents to its link (callbacks run
 * from here). Unknown fds are ignored. */
void rcluster_handle(struct rcluster *rc, int fd, short revents);

/* Timers: timeouts, reconnects, topology refreshes, closing links to nodes
 * no longer primaries. Call every loop turn, at least every
 * rcluster_timeout_ms. */
void rcluster_tick(struct rcluster *rc);

/* Milliseconds until rcluster_tick has something to do (0..1000). */
int rcluster_timeout_ms(const struct rcluster *rc);

void rcluster_get_stats(const struct rcluster *rc, struct rcluster_stats *out);

/* ---- blocking client, for worker threads ---- */

struct rcluster_sync;

/* As rcluster_new (no I/O until the first command). */
struct rcluster_sync *rcluster_sync_new(const struct chat_config *cfg,
                                        const struct rcluster_opts *opts, char *err, size_t errlen);

void rcluster_sync_free(struct rcluster_sync *sc);

/* Sends argv to the primary of key's slot, following MOVED/ASK, waiting at
 * most connect_ms per connect and timeout_ms per answer. Returns
 * RCLUSTER_OK with *reply (the caller frees it with freeReplyObject), or a
 * negative status with *reply NULL. */
int rcluster_sync_command_argv(struct rcluster_sync *sc, const char *key, redisReply **reply,
                               int argc, const char **argv, const size_t *argvlen);

/* The same, routed by slot. */
int rcluster_sync_command_slot(struct rcluster_sync *sc, int slot, redisReply **reply, int argc,
                               const char **argv, const size_t *argvlen);

/* The connection to slot's primary, for a sequence that must stay on one
 * link (writes then WAIT, rconn_replicated). Returns RCLUSTER_OK with *c
 * or a negative status. *c is sc's: valid until the next call on sc; do
 * not free it, call rcluster_sync_drop(sc, *c) when it fails. */
int rcluster_sync_link(struct rcluster_sync *sc, int slot, redisContext **c);

/* Forgets a connection that failed (after rcluster_sync_link) and asks
 * for a refresh before the next command. */
void rcluster_sync_drop(struct rcluster_sync *sc, redisContext *c);

void rcluster_sync_get_stats(const struct rcluster_sync *sc, struct rcluster_stats *out);

#endif
