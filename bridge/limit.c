/*
 * The bridge's local token buckets (see limit.h).
 */
#include <string.h>

#include "limit.h"

/* FNV-1a: spread only; a collision costs a Redis call, never a refusal. */
static uint32_t hash(const char *s)
{
	uint32_t h = 2166136261u;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	return h;
}

enum limit_verdict limit_take(struct limit_table *t, const char *user, double rate,
                              double burst, double now, double ask_every)
{
	struct limit_slot *s = &t->slots[hash(user) & (LIMIT_SLOTS - 1)];

	if (strcmp(s->user, user) != 0) {
		/* a new user, or one that pushed another out: a full bucket */
		strncpy(s->user, user, NAME_USER_MAX);
		s->user[NAME_USER_MAX] = '\0';
		s->tokens = burst;
		s->last = now;
		s->next_ask = 0;
	}
	double tokens = s->tokens + (now > s->last ? (now - s->last) * rate : 0);
	s->tokens = tokens < burst ? tokens : burst;
	s->last = now > s->last ? now : s->last;
	if (s->tokens >= 1) {
		s->tokens -= 1;
		return LIMIT_PASS;
	}
	if (ask_every > 0 && now >= s->next_ask) {
		s->next_ask = now + ask_every;
		return LIMIT_ASK;
	}
	return LIMIT_REFUSE;
}

void limit_refund(struct limit_table *t, const char *user, double burst)
{
	struct limit_slot *s = &t->slots[hash(user) & (LIMIT_SLOTS - 1)];

	if (strcmp(s->user, user) == 0)
		s->tokens = s->tokens + 1 < burst ? s->tokens + 1 : burst;
}
