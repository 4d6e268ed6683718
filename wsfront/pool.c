/*
 * The worker threads: a queue in, a queue out. A finished job wakes the
 * event loop with lws_cancel_service, whose callback (http.c) takes the
 * done queue. The front runs two pools, so Argon2id (seconds of CPU under
 * a burst of logins) never delays history; the hashing one has a bounded
 * queue and refuses at once when it is full.
 */
#include <stdlib.h>

#include "chat/log.h"
#include "front.h"
#include "store.h"

void job_free(struct job *j)
{
	if (j == NULL)
		return;
	credentials_clear(&j->cred);
	free(j->text);
	free(j->body);
	free(j);
}

static void *worker_main(void *arg)
{
	struct pool *p = arg;
	struct worker_ctx w = {0};

	pthread_mutex_lock(&p->lock);
	for (;;) {
		while (!p->stop && p->todo == NULL)
			pthread_cond_wait(&p->cond, &p->lock);
		if (p->stop)
			break;
		struct job *j = p->todo;
		p->queued--;
		p->todo = j->next;
		if (p->todo == NULL)
			p->todo_tail = NULL;
		j->next = NULL;
		pthread_mutex_unlock(&p->lock);

		job_run(p->front, &w, j);

		pthread_mutex_lock(&p->lock);
		if (p->done_tail)
			p->done_tail->next = j;
		else
			p->done = j;
		p->done_tail = j;
		pthread_mutex_unlock(&p->lock);
		lws_cancel_service(p->front->ctx);
		pthread_mutex_lock(&p->lock);
	}
	pthread_mutex_unlock(&p->lock);
	worker_ctx_free(&w);
	return NULL;
}

int pool_start(struct pool *p, struct front *f, int n, long max)
{
	p->front = f;
	p->todo = p->todo_tail = p->done = p->done_tail = NULL;
	p->queued = 0;
	p->max = max;
	p->stop = 0;
	p->n = 0;
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->cond, NULL);
	p->threads = calloc((size_t)n, sizeof(*p->threads));
	if (p->threads == NULL)
		return -1;
	for (int i = 0; i < n; i++) {
		if (pthread_create(&p->threads[i], NULL, worker_main, p) != 0) {
			log_msg(LOG_ERR, "cannot start worker thread %d", i);
			pool_stop(p);
			return -1;
		}
		p->n++;
	}
	return 0;
}

int pool_submit(struct pool *p, struct job *j)
{
	j->next = NULL;
	pthread_mutex_lock(&p->lock);
	if (p->max > 0 && p->queued >= p->max) {
		pthread_mutex_unlock(&p->lock);
		return -1;
	}
	p->queued++;
	if (p->todo_tail)
		p->todo_tail->next = j;
	else
		p->todo = j;
	p->todo_tail = j;
	pthread_cond_signal(&p->cond);
	pthread_mutex_unlock(&p->lock);
	return 0;
}

struct job *pool_take_done(struct pool *p)
{
	pthread_mutex_lock(&p->lock);
	struct job *list = p->done;
	p->done = p->done_tail = NULL;
	pthread_mutex_unlock(&p->lock);
	return list;
}

/* Stops the threads after their current job; frees what is queued. */
void pool_stop(struct pool *p)
{
	pthread_mutex_lock(&p->lock);
	p->stop = 1;
	pthread_cond_broadcast(&p->cond);
	pthread_mutex_unlock(&p->lock);
	for (int i = 0; i < p->n; i++)
		pthread_join(p->threads[i], NULL);
	free(p->threads);
	p->threads = NULL;
	p->n = 0;
	for (struct job *lists[2] = {p->todo, p->done}, **l = lists; l < lists + 2; l++) {
		while (*l) {
			struct job *next = (*l)->next;
			job_free(*l);
			*l = next;
		}
	}
	p->todo = p->todo_tail = p->done = p->done_tail = NULL;
	pthread_mutex_destroy(&p->lock);
	pthread_cond_destroy(&p->cond);
}
