/*
 * A bridge's own copy of its users' token buckets, in front of the shared
 * ones in Redis (scripts.c). Each node spends a user's tokens here too, at
 * the same rate and burst: the Redis bucket counts what every node spent,
 * so when this one is empty the shared one is too, and the input can be
 * refused without asking Redis. A flood then costs Redis about one call
 * per token, not one per message. When Redis refuses what passed here,
 * the token comes back (limit_refund), so this bucket never holds less
 * than the shared one and never refuses what Redis would allow. The table
 * is direct-mapped and loses a bucket to a colliding user (it then starts
 * full): that only falls back to the Redis check. Pure, no I/O.
 */
#ifndef CHAT_LIMIT_H
#define CHAT_LIMIT_H

#include <stdbool.h>
#include <stdint.h>

#include "chat/names.h"

#define LIMIT_SLOTS 4096 /* power of two */

struct limit_slot {
	char user[NAME_USER_MAX + 1]; /* empty: free */
	double tokens, last;          /* the bucket, at time last (seconds) */
	double next_ask;              /* refused: when Redis may be asked again */
};

struct limit_table {
	struct limit_slot slots[LIMIT_SLOTS];
};

enum limit_verdict {
	LIMIT_PASS,   /* a local token was spent: ask Redis */
	LIMIT_ASK,    /* refused here, but let Redis see this one (at most once per
	               * ask_every seconds: Redis sends the rate notice) */
	LIMIT_REFUSE, /* refused here, without asking Redis */
};

/* Spends one token of user's bucket at time now (seconds, monotonic).
 * ask_every <= 0 never answers LIMIT_ASK. */
enum limit_verdict limit_take(struct limit_table *t, const char *user, double rate,
                              double burst, double now, double ask_every);

/* Gives back the token a LIMIT_PASS spent, when Redis refused the input
 * after all (nothing was spent there). */
void limit_refund(struct limit_table *t, const char *user, double burst);

#endif
