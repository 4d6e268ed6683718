/*
 * Pacing for the bridge's paths that try again after a failure (a Redis
 * link that is not serving yet, a script call Redis refused, a sync page
 * that failed): a backoff that starts small and doubles up to a ceiling,
 * so a persistent error costs a few calls a second instead of one per
 * loop turn; and a log limiter, so the same persistent error is one line
 * every few seconds with a count of what it held back. Pure, no I/O: the
 * caller passes the time.
 */
#ifndef CHAT_RETRY_H
#define CHAT_RETRY_H

#include <stdbool.h>

struct backoff {
	double first, max; /* seconds: the first delay, and the ceiling */
	double next;       /* the delay the next failure gets; 0: first */
};

/* The delay before trying again after one more failure: first, then
 * doubling up to max. */
double backoff_next(struct backoff *bo);
/* A success: the next failure waits only first again. */
void backoff_reset(struct backoff *bo);

struct ratelog {
	double next;            /* no line before this time */
	unsigned long held;     /* lines held back since the last one */
};

/* Whether a line may be logged at now, at most one per every seconds.
 * True: log it, and *held says how many were held back before it (the
 * count starts again). False: the caller stays silent. */
bool ratelog_ok(struct ratelog *rl, double now, double every, unsigned long *held);

#endif
