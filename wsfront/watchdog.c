/*
 * The event loop's watchdog. libwebsockets 4.1.6 was seen once looping
 * inside one lws_service() call for ever (README, "Known issues"): the
 * front then serves nobody, holds every connection and ignores SIGTERM.
 * A timer on the loop marks it alive every second; a thread that sees no
 * mark for loop_stall_max seconds says so and ends the process, so that
 * what supervises it (the container's entrypoint, systemd) starts a fresh
 * one, and clients reconnect to it, rather than waiting on a dead one.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "chat/log.h"
#include "front.h"

#define BEAT_US (1000 * 1000)

struct watchdog {
	lws_sorted_usec_list_t sul; /* first: the timer callback's container */
	struct lws_context *ctx;
	long stall_max_s;
	_Atomic int64_t beat; /* now_us() at the last mark on the loop */
	atomic_int stop;
	pthread_t thread;
};

static void beat(lws_sorted_usec_list_t *sul)
{
	struct watchdog *w = lws_container_of(sul, struct watchdog, sul);
	atomic_store(&w->beat, now_us());
	lws_sul_schedule(w->ctx, 0, &w->sul, beat, BEAT_US);
}

static void *watch(void *arg)
{
	struct watchdog *w = arg;
	while (!atomic_load(&w->stop)) {
		sleep(1);
		int64_t quiet = now_us() - atomic_load(&w->beat);
		if (quiet > w->stall_max_s * 1000000 && !atomic_load(&w->stop)) {
			log_msg(LOG_ERR,
			        "the event loop has not run for %lld s (stuck in libwebsockets): "
			        "exiting so that a fresh front is started",
			        (long long)(quiet / 1000000));
			_exit(3);
		}
	}
	return NULL;
}

struct watchdog *watchdog_start(struct lws_context *ctx, long stall_max_s)
{
	if (stall_max_s <= 0)
		return NULL; /* off */
	struct watchdog *w = calloc(1, sizeof(*w));
	if (w == NULL)
		return NULL;
	w->ctx = ctx;
	w->stall_max_s = stall_max_s;
	atomic_store(&w->beat, now_us());
	lws_sul_schedule(ctx, 0, &w->sul, beat, BEAT_US);
	if (pthread_create(&w->thread, NULL, watch, w) != 0) {
		lws_sul_cancel(&w->sul);
		free(w);
		return NULL;
	}
	return w;
}

void watchdog_stop(struct watchdog *w)
{
	if (w == NULL)
		return;
	atomic_store(&w->stop, 1);
	pthread_join(w->thread, NULL);
	lws_sul_cancel(&w->sul);
	free(w);
}
