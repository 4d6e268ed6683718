/*
 * Token buckets keyed by a short string (a client address, a user name),
 * for login and registration attempts. A bucket holds `burst` attempts and
 * refills `per_min` a minute. The table is bounded: when it is full, a
 * bucket that has refilled completely (it carries no information) is
 * reused, and failing that the oldest one. Pure: the caller passes the
 * time, so the unit test needs no clock.
 */
#ifndef WSFRONT_RATELIMIT_H
#define WSFRONT_RATELIMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RATELIMIT_KEY_MAX 64

struct rl_bucket {
	char key[RATELIMIT_KEY_MAX + 1];
	double tokens;
	int64_t at_ms; /* last update */
	bool used;
};

struct ratelimit {
	struct rl_bucket *b;
	size_t n;
	double burst, per_ms;
};

/* n buckets (at least 16). Returns 0 or -1 when out of memory. */
int ratelimit_init(struct ratelimit *rl, size_t n, long burst, long per_min);
void ratelimit_free(struct ratelimit *rl);

/* Takes one attempt for key at now_ms: true when allowed. */
bool ratelimit_take(struct ratelimit *rl, const char *key, int64_t now_ms);

#endif
