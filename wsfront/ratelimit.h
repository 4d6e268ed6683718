/*
 * Token buckets keyed by a short string (a client address, a user name),
 * for login and registration attempts. A bucket holds `burst` attempts and
 * refills `per_min` a minute. The table is bounded and keyed with a
 * random SipHash key: when a key's run of slots is full, a bucket that
 * has refilled completely (it carries no information) is reused, and
 * failing that the new key is refused (fail closed) — a live bucket is
 * never evicted, so nobody can reset a limit by flooding other names.
 * Pure apart from the key: the caller passes the time, so the unit test
 * needs no clock.
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
	unsigned char key[16]; /* crypto_shorthash key, random per start */
};

/* n buckets (at least 16). Returns 0 or -1 when out of memory. */
int ratelimit_init(struct ratelimit *rl, size_t n, long burst, long per_min);
void ratelimit_free(struct ratelimit *rl);

/* Takes one attempt for key at now_ms: true when allowed; false when the
 * key's bucket is empty or the table has no room for a new key. */
bool ratelimit_take(struct ratelimit *rl, const char *key, int64_t now_ms);

#endif
