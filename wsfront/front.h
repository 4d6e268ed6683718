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

#include "accounts.h"
#include "chat/config.h"
#include "chat/token.h"
#include "history.h"
#include "metrics.h"
#include "ratelimit.h"

enum job_kind { JOB_REGISTER, JOB_LOGIN, JOB_HISTORY, JOB_HEALTH, JOB_METRICS };

/* One request handed to a worker. The loop thread owns wsi (a worker never
 * touches it); it is NULL when the requester closed before the answer. */
struct job {
	struct job *next;
	enum job_kind kind;
	struct lws *wsi;
	enum route route;
	int64_t t0_us;
	struct credentials cred;      /* register, login */
	char user[NAME_USER_MAX + 1]; /* history: the caller */
	struct history_query q;
	char *text; /* metrics: the local counters, rendered on the loop */
	/* the answer */
	int status;
	char *body; /* malloc'd */
	size_t body_len;
	const char *ctype;
	int reject; /* an enum reject_reason to count, or -1 */
};

struct pool {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct job *todo, *todo_tail, *done, *done_tail;
	int stop;
	int n;
	pthread_t *threads;
	struct front *front;
};

struct front {
	struct chat_config *cfg;
	struct token_keyring kr;
	struct lws_context *ctx;
	struct metrics m;
	struct ratelimit rl_addr, rl_user;
	struct pool pool;
	char dummy_hash[crypto_pwhash_STRBYTES]; /* for logins of unknown users */
	char *reserved_user;                     /* the service user: never registrable */
};

/* pool.c */
int pool_start(struct pool *p, struct front *f, int n);
void pool_submit(struct pool *p, struct job *j);
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

/* http.c */
extern const struct lws_protocols http_protocol;
/* Delivers a finished job to its request (loop thread). */
void http_job_done(struct front *f, struct job *j);

/* proxy.c */
extern const struct lws_protocols mqtt_protocol;
extern const struct lws_protocols broker_protocol;

int64_t now_us(void);

/* listen.c: the plain and (when configured) TLS vhosts on ctx */
int front_listen(struct lws_context *ctx, const struct lws_context_creation_info *base,
                 const struct chat_config *cfg);

#endif
