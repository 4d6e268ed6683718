/* The bounded token-bucket table of ratelimit.h (open addressing). */
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "ratelimit.h"

int ratelimit_init(struct ratelimit *rl, size_t n, long burst, long per_min)
{
	if (n < 16)
		n = 16;
	rl->b = calloc(n, sizeof(*rl->b));
	if (rl->b == NULL)
		return -1;
	rl->n = n;
	rl->burst = (double)burst;
	rl->per_ms = (double)per_min / 60000.0;
	/* a fresh key each start: nobody outside can tell which names share
	 * a run of slots */
	randombytes_buf(rl->key, sizeof(rl->key));
	return 0;
}

void ratelimit_free(struct ratelimit *rl)
{
	free(rl->b);
	rl->b = NULL;
	rl->n = 0;
}

static uint64_t hash(const struct ratelimit *rl, const char *s)
{
	uint64_t h;
	crypto_shorthash((unsigned char *)&h, (const unsigned char *)s, strlen(s), rl->key);
	return h;
}

static void refill(struct ratelimit *rl, struct rl_bucket *b, int64_t now_ms)
{
	if (now_ms > b->at_ms) {
		b->tokens += (double)(now_ms - b->at_ms) * rl->per_ms;
		if (b->tokens > rl->burst)
			b->tokens = rl->burst;
		b->at_ms = now_ms;
	}
}

/* Probes a short run of slots: the key's own, else a free one, else one
 * that has refilled completely (it carries no information). A bucket
 * that still counts attempts is never reused: when the run holds only
 * those, the new key is refused, so flooding names cannot reset anyone's
 * limit. */
#define PROBES 8

bool ratelimit_take(struct ratelimit *rl, const char *key, int64_t now_ms)
{
	char k[RATELIMIT_KEY_MAX + 1];
	struct rl_bucket *free_slot = NULL, *full = NULL;

	strncpy(k, key, RATELIMIT_KEY_MAX);
	k[RATELIMIT_KEY_MAX] = '\0';
	size_t start = (size_t)(hash(rl, k) % rl->n);
	for (size_t i = 0; i < PROBES; i++) {
		struct rl_bucket *b = &rl->b[(start + i) % rl->n];
		if (!b->used) {
			if (free_slot == NULL)
				free_slot = b;
			continue;
		}
		if (strcmp(b->key, k) == 0) {
			refill(rl, b, now_ms);
			if (b->tokens < 1.0)
				return false;
			b->tokens -= 1.0;
			return true;
		}
		if (full == NULL &&
		    b->tokens + (double)(now_ms - b->at_ms) * rl->per_ms >= rl->burst)
			full = b;
	}
	struct rl_bucket *v = free_slot ? free_slot : full;
	if (v == NULL)
		return false;
	memcpy(v->key, k, sizeof(k));
	v->used = true;
	v->tokens = rl->burst - 1.0;
	v->at_ms = now_ms;
	return true;
}
