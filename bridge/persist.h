/*
 * The persistence worker: a thread of every bridge, of which one at a time
 * (the holder of a lease in Redis) works. It
 *   - drains chat:stream (messages) and chat:ops (rooms, members, read
 *     markers) with the consumer group "persist": batch, write to the
 *     store, acknowledge only after the store confirmed; while the store is
 *     down it retries with backoff and the streams keep the backlog;
 *   - on taking the lease, first claims what the previous holder read but
 *     did not acknowledge (it may have crashed mid-batch);
 *   - records per conversation the highest seq the store confirmed
 *     (chat:persisted:<conv>, which bounds the trimming of recent lists)
 *     and trims the stream of what is stored and delivered by every live
 *     node;
 *   - after Redis lost its data (chat:restored absent), loads rooms,
 *     members, read markers and each conversation's seq back from the
 *     store before any message is accepted again, with the indexes
 *     (rooms.list's, unread's DM index) and the set of the users that
 *     exist (chat:users: accounts, members, DM parties, readers);
 *   - completes once, for a Redis filled by an older version, chat:users
 *     from the store and every user's DM index from their DM set, a few
 *     SCAN pages a turn (chat:users:v1, chat:dmindex:v1 mark it done);
 *   - keeps its figures in the hash chat:metrics:persist (backlog, lag_ms,
 *     persisted, store_up) for `chatctl status` and the web front.
 * The store is written only here and on the web front's account calls.
 */
#ifndef CHAT_PERSIST_H
#define CHAT_PERSIST_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "chat/config.h"

#define PERSIST_BATCH 2000
#define PERSIST_LEASE_MS 10000
#define PERSIST_GATHER_S 0.05 /* a trickle is written at most 20 times a second */

struct persist {
	const struct chat_config *cfg;
	pthread_t thread;
	atomic_int stop;
	bool started;
};

/* Starts the thread. Returns 0, or -1 with a logged reason. */
int persist_start(struct persist *p, const struct chat_config *cfg);
void persist_stop(struct persist *p);

#endif
