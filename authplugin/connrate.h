/*
 * A CONNECT budget per user, per broker: a token bucket that holds burst
 * connects and refills per_min a minute. A connect/disconnect loop costs
 * the broker an authentication and costs every presence watcher an
 * update; the budget bounds it, and its defaults (README "Security") are
 * far above a reconnect storm after a broker restart or a flaky phone.
 * Only authenticated connects are counted (a stranger cannot spend a
 * user's budget with a wrong password), services never. A bucket that
 * would be full again carries no information and is pruned, so memory
 * follows the users who connected lately, not all users. Pure memory, no
 * I/O; the caller passes the time.
 */
#ifndef CHAT_CONNRATE_H
#define CHAT_CONNRATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "names_table.h"

struct connrate_table {
	struct names_table users; /* of struct connrate_bucket */
	double burst;             /* connects */
	double per_ms;            /* refill per millisecond */
};

/* Returns 0, or -1 when out of memory. */
int connrate_init(struct connrate_table *t, long burst, long per_min);
void connrate_free(struct connrate_table *t);

/* Spends one connect of user at now_ms (monotonic). Returns true when it
 * is allowed; false when the user's bucket is empty, or when there is no
 * memory for a new bucket (refused: the connection would need memory too). */
bool connrate_take(struct connrate_table *t, const char *user, int64_t now_ms);

/* Forgets buckets that are full again at now_ms. Returns how many. */
size_t connrate_prune(struct connrate_table *t, int64_t now_ms);

/* Buckets held (for tests). */
size_t connrate_count(const struct connrate_table *t);

#endif
