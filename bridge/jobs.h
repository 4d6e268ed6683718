/*
 * A worker thread for the bridge's blocking work (history pages from the
 * store). The event loop hands it jobs; the worker runs each with its own
 * blocking Redis connection and store handle, then hands the job back, and
 * the event loop finishes it (publishes the reply) when it polls
 * jobs_fd(). Only the event loop thread calls the broker.
 */
#ifndef CHAT_JOBS_H
#define CHAT_JOBS_H

#include <pthread.h>
#include <stdbool.h>

#include <hiredis/hiredis.h>

#include "chat/config.h"
#include "store.h"

struct job {
	struct job *next;
	/* on the worker: redis may be NULL when not reachable; store opens
	 * at its first call (store_open_lazy), NULL only for a bad URL. When
	 * redis failed during run, run is called once more on a new
	 * connection: it must then start over, keeping nothing of the first
	 * call. */
	void (*run)(struct job *j, redisContext *redis, struct store *store);
	/* back on the event loop; frees the job */
	void (*done)(struct job *j);
};

#define JOBS_QUEUE_MAX 1000

struct jobs {
	const struct chat_config *cfg;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t wake;
	struct job *todo, *todo_tail, *finished;
	int queued;
	bool stop, started;
	int pipe[2]; /* the worker writes a byte when a job is finished */
};

/* Starts the worker. Returns 0, or -1 with a logged reason. */
int jobs_start(struct jobs *js, const struct chat_config *cfg);
/* Queues j. Returns 0, or -1 when the queue is full (j is not taken). */
int jobs_submit(struct jobs *js, struct job *j);
/* The descriptor to poll for reading. */
int jobs_fd(const struct jobs *js);
/* Calls done for every finished job; the event loop calls it when
 * jobs_fd() is readable. */
void jobs_collect(struct jobs *js);
/* Stops the worker; jobs not run yet are finished with run skipped. */
void jobs_stop(struct jobs *js);

/* A blocking, authenticated Redis connection with 2 s timeouts, or NULL
 * (a refused password is logged). */
redisContext *jobs_redis_connect(const struct chat_config *cfg);

#endif
