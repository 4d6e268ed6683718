/*
 * The web front's shared state and the glue between its parts: the event
 * loop (main.c, http.c, proxy.c) and the worker threads (pool.c, jobs.c)
 * that do everything that blocks or burns CPU — Argon2id, the store,
 * Redis — so the loop only ever moves bytes.
 */
#ifndef WSFRONT_FRONT_H
#define WSFRONT_FRONT_H

#include <pthread.h>
#include <stdint.h>

#include <libwebsockets.h>
#include <sodium.h>

#include <hiredis/hiredis.h>

#include "accounts.h"
#include "chat/config.h"
#include "connlimit.h"
#include "chat/token.h"
#include "history.h"
#include "metrics.h"
#include "ratelimit.h"

enum job_kind { JOB_REGISTER, JOB_LOGIN, JOB_HISTORY, JOB_METRICS, JOB_LOGOUT };

/* One request handed to a worker. The loop thread owns wsi (a worker never
 * touches it); it is NULL when the requester closed before the answer. */
struct job {
	struct job *next;
	enum job_kind kind;
	struct lws *wsi;
	enum route route;
	int64_t t0_us;
	struct credentials cred;      /* register, login */
	char user[NAME_USER_MAX + 1]; /* history, logout: the caller */
	char jti[TOKEN_JTI_MAX + 1];  /* history, logout: the caller's token */
	int64_t iat, exp;
	struct history_query q;
	char *text; /* metrics: the local counters, rendered on the loop */
	/* the answer */
	int status;
	char *body; /* malloc'd */
	size_t body_len;
	const char *ctype;
	int reject;      /* an enum reject_reason to count, or -1 */
	int retry_after; /* > 0: a Retry-After header, in seconds */
};

struct pool {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct job *todo, *todo_tail, *done, *done_tail;
	long queued, max; /* jobs waiting; max 0: unbounded */
	int stop;
	int n;
	pthread_t *threads;
	struct front *front;
};

/* /healthz: one thread per dependency runs its check when asked, so a
 * dependency that hangs holds only its own thread; the answer is given on
 * the loop from whatever finished within health_timeout_ms (health.c). */
enum health_dep { DEP_BROKER, DEP_REDIS, DEP_STORE, DEP_COUNT };

struct health; /* health.c */

struct front {
	struct chat_config *cfg;
	struct token_keyring kr;
	struct lws_context *ctx;
	struct metrics m;
	struct ratelimit rl_addr, rl_user; /* login, register */
	struct ratelimit rl_logout;        /* sign-outs, per user of a verified token */
	struct connlimit conns;
	struct cl_addr *accepted; /* counted by the network filter, for the next wsi */
	struct pool pool;         /* history, metrics */
	struct pool hash_pool;    /* register, login: Argon2id, bounded */
	struct health *health;
	struct http_sess *health_waiting;        /* /healthz requests waiting for checks */
	char *metrics_token;                     /* NULL: /metrics for loopback clients only */
	char dummy_hash[crypto_pwhash_STRBYTES]; /* for logins of unknown users */
	char *reserved_user;                     /* the service user: never registrable */
};

/* pool.c */
/* n threads; at most max jobs waiting (0: no bound). */
int pool_start(struct pool *p, struct front *f, int n, long max);
/* Returns 0, or -1 when the queue is full (the job is not taken). */
int pool_submit(struct pool *p, struct job *j);
/* Takes every finished job, oldest first, as a list through ->next. */
struct job *pool_take_done(struct pool *p);
void pool_stop(struct pool *p);
void job_free(struct job *j);

/* jobs.c: per-thread connections and the work itself */
struct worker_ctx {
	struct store *store;
	redisContext *redis;
};
void job_run(struct front *f, struct worker_ctx *w, struct job *j);
void worker_ctx_free(struct worker_ctx *w);
/* The one place the front connects to Redis and the store (opened on
 * first use, reopened after a failure; NULL when down). */
redisContext *want_redis(struct front *f, struct worker_ctx *w);
redisReply *redis_cmd(struct worker_ctx *w, const char *fmt, ...);
struct store *want_store(struct front *f, struct worker_ctx *w);
int persist_backlog(struct worker_ctx *w, long long *pending, long long *lag);

/* health.c */
/* Starts the check threads: the checker, or NULL after a log line. */
struct health *health_start(struct front *f);
/* Stops them; a thread stuck in a hung check is left behind with the
 * state it uses (the process is ending). */
void health_stop(struct health *h);
/* Asks every check to run (again); gen receives the generation whose
 * result answers this request. */
void health_kick(struct health *h, uint64_t gen[DEP_COUNT]);
/* 1 when the check of every gen has finished. */
int health_ready(struct health *h, const uint64_t gen[DEP_COUNT]);
/* The answer: a dependency is up when its check of gen finished and
 * passed; still running means down. *body is malloc'd JSON. */
int health_answer(struct health *h, const uint64_t gen[DEP_COUNT], char **body);

/* http.c */
struct http_sess;
extern const struct lws_protocols http_protocol;
/* Reads metrics_token_file when set: 0, or -1 after a log line. */
int metrics_token_load(struct front *f);
/* Delivers a finished job to its request (loop thread). */
void http_job_done(struct front *f, struct job *j);

/* proxy.c */
extern const struct lws_protocols mqtt_protocol;
extern const struct lws_protocols broker_protocol;

int64_t now_us(void);

/* Stops a wsi's timer. libwebsockets 4.1 fires a timer set to
 * LWS_SET_TIMER_USEC_CANCEL at once instead of removing it, so it is
 * pushed out of reach instead (it goes with the wsi). */
static inline void wsi_timer_off(struct lws *wsi)
{
	lws_set_timer_usecs(wsi, (lws_usec_t)86400 * LWS_US_PER_SEC);
}

/* watchdog.c: ends the process when the event loop has not run for
 * stall_max_s seconds (0: off); NULL when off or it could not start */
struct watchdog;
struct watchdog *watchdog_start(struct lws_context *ctx, long stall_max_s);
void watchdog_stop(struct watchdog *w);

/* listen.c: the plain and (when configured) TLS vhosts on ctx */
int front_listen(struct lws_context *ctx, const struct lws_context_creation_info *base,
                 const struct chat_config *cfg);

#endif
