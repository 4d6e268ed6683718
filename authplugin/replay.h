/*
 * The connections to report again to a bridge that subscribed to the
 * connection reports: reports made while no bridge listened were lost
 * (clients back before it after a broker restart). A node may hold tens of
 * thousands; published at once they would fill the bridge's queue past the
 * broker's limits and be dropped, so the caller sends them a few at a time
 * as the bridge's backlog (backlog.h) leaves room. The list is a snapshot
 * of (connection, number) pairs: a connection that ended, or whose client
 * reconnected, before its turn is skipped, since its "down" went out.
 */
#ifndef CHAT_REPLAY_H
#define CHAT_REPLAY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "clients.h"

struct replay_item {
	const void *key;
	uint64_t conn_id;
};

struct replay {
	struct replay_item *items; /* malloc'd */
	size_t n, next;
};

/* Snapshots every connection of t, replacing a replay under way. Returns
 * 0, or -1 when out of memory (then nothing is pending). */
int replay_start(struct replay *r, const struct client_table *t);
bool replay_pending(const struct replay *r);
/* The next connection still connected as it was at the snapshot, or NULL
 * when none is left. */
const struct client_entry *replay_next(struct replay *r, const struct client_table *t);
void replay_free(struct replay *r);

#endif
