/*
 * The bridge's worker thread (see jobs.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "chat/log.h"
#include "jobs.h"
#include "rconn.h"

/* A refused password is a setting to fix: said at most every 10 s by
 * each thread that retries, not at every attempt. */
redisContext *jobs_redis_connect(const struct chat_config *cfg)
{
	static _Thread_local time_t said;
	char err[256];
	int rc;
	redisContext *c = rconn_connect(cfg, 2000, 2000, &rc, err, sizeof(err));

	if (c == NULL && rc == RCONN_E_AUTH && time(NULL) >= said + 10) {
		said = time(NULL);
		log_msg(LOG_ERR, "%s", err);
	}
	return c;
}

/* Drops a connection that failed, then connects if there is none; NULL
 * when Redis does not answer. */
static redisContext *fresh_redis(const struct jobs *js, redisContext *redis)
{
	if (redis && redis->err) {
		redisFree(redis);
		redis = NULL;
	}
	return redis ? redis : jobs_redis_connect(js->cfg);
}

static void *worker(void *arg)
{
	struct jobs *js = arg;
	redisContext *redis = NULL;
	struct store *store = NULL;
	char err[256];

	/* Opened at the first job that needs the store, so a page Redis holds
	 * never waits for a store that is locked or down. */
	if (store_open_lazy(js->cfg->store_url, (int)js->cfg->store_timeout_ms, &store, err,
	                    sizeof(err)) != STORE_OK)
		log_msg(LOG_WARN, "jobs: store: %s", err);
	for (;;) {
		pthread_mutex_lock(&js->lock);
		while (js->todo == NULL && !js->stop)
			pthread_cond_wait(&js->wake, &js->lock);
		struct job *j = js->todo;
		if (j) {
			js->todo = j->next;
			if (js->todo == NULL)
				js->todo_tail = NULL;
		}
		bool stop = js->stop;
		pthread_mutex_unlock(&js->lock);
		if (j == NULL && stop)
			break;
		if (j == NULL)
			continue;

		if (!stop) {
			redis = fresh_redis(js, redis);
			j->run(j, redis, store);
			/* An idle connection learns only now that Redis restarted
			 * (or dropped it): connect again and run the job once more,
			 * so the user sees no error for it. */
			if (redis && redis->err) {
				log_msg(LOG_INFO,
				        "jobs: redis connection lost (%s): retrying on a new one",
				        redis->errstr);
				redis = fresh_redis(js, redis);
				if (redis)
					j->run(j, redis, store);
			}
		}
		pthread_mutex_lock(&js->lock);
		j->next = js->finished;
		js->finished = j;
		js->queued--;
		pthread_mutex_unlock(&js->lock);
		char one = 1;
		while (write(js->pipe[1], &one, 1) < 0 && errno == EINTR)
			;
	}
	if (redis)
		redisFree(redis);
	store_close(store);
	return NULL;
}

int jobs_start(struct jobs *js, const struct chat_config *cfg)
{
	memset(js, 0, sizeof(*js));
	js->cfg = cfg;
	if (pipe2(js->pipe, O_NONBLOCK | O_CLOEXEC) != 0) {
		log_msg(LOG_ERR, "jobs: pipe: %s", strerror(errno));
		return -1;
	}
	pthread_mutex_init(&js->lock, NULL);
	pthread_cond_init(&js->wake, NULL);
	if (pthread_create(&js->thread, NULL, worker, js) != 0) {
		log_msg(LOG_ERR, "jobs: cannot start the worker thread");
		close(js->pipe[0]);
		close(js->pipe[1]);
		return -1;
	}
	js->started = true;
	return 0;
}

int jobs_submit(struct jobs *js, struct job *j)
{
	int rc = 0;

	j->next = NULL;
	pthread_mutex_lock(&js->lock);
	if (js->queued >= JOBS_QUEUE_MAX || js->stop) {
		rc = -1;
	} else {
		if (js->todo_tail)
			js->todo_tail->next = j;
		else
			js->todo = j;
		js->todo_tail = j;
		js->queued++;
		pthread_cond_signal(&js->wake);
	}
	pthread_mutex_unlock(&js->lock);
	return rc;
}

int jobs_fd(const struct jobs *js)
{
	return js->pipe[0];
}

void jobs_collect(struct jobs *js)
{
	char buf[256];
	while (read(js->pipe[0], buf, sizeof(buf)) > 0)
		;
	pthread_mutex_lock(&js->lock);
	struct job *list = js->finished;
	js->finished = NULL;
	pthread_mutex_unlock(&js->lock);
	/* finished is newest first: reverse, so replies leave in request order */
	struct job *ordered = NULL;
	while (list) {
		struct job *next = list->next;
		list->next = ordered;
		ordered = list;
		list = next;
	}
	while (ordered) {
		struct job *next = ordered->next;
		ordered->done(ordered);
		ordered = next;
	}
}

void jobs_stop(struct jobs *js)
{
	if (!js->started)
		return;
	pthread_mutex_lock(&js->lock);
	js->stop = true;
	pthread_cond_signal(&js->wake);
	pthread_mutex_unlock(&js->lock);
	pthread_join(js->thread, NULL);
	jobs_collect(js);
	close(js->pipe[0]);
	close(js->pipe[1]);
	pthread_mutex_destroy(&js->lock);
	pthread_cond_destroy(&js->wake);
	js->started = false;
}
