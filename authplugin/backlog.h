/*
 * What this broker holds for its bridge, in messages and payload bytes:
 * everything routed to the bridge's session (connected or not) that the
 * bridge has not taken yet. mosquitto 2.0.11 keeps one set of queue limits
 * for every client (max_queued_messages, max_queued_bytes), the bridge
 * included, and drops what does not fit without a word; so posts must be
 * refused with a notice before the bridge's share reaches those limits.
 *
 * The plugin sees every routing (the READ check) but never an
 * acknowledgement. It learns what the bridge took from marks: it publishes
 * "mark <boot> <id>" on <prefix>/sys/conn, notes at the mark's routing how
 * much had been routed to the bridge up to it, and when the bridge echoes
 * the mark on $CONTROL everything routed before it has been taken (a
 * client's messages are delivered in order). So
 *     backlog = routed - routed up to the last echoed mark,
 * an upper bound that is exact again at every echo: a lost echo, a message
 * mosquitto dropped, a session the broker discarded never leave an error
 * behind, unlike counts the bridge would report. A stalled bridge echoes
 * nothing and the backlog only grows until posts are refused.
 *
 * One mark is out at a time while the bridge answers and the broker holds
 * anything for it (none while idle); one more after each
 * MARK_RETRY_MS without an answer, at most BACKLOG_MARKS: a stalled
 * bridge's queue holds a handful of marks, not one per tick.
 * Pure state; the caller passes the time and does the publishing.
 */
#ifndef CHAT_BACKLOG_H
#define CHAT_BACKLOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BACKLOG_MARKS 8
#define BACKLOG_MARK_EVERY_MS 100
#define BACKLOG_MARK_RETRY_MS 1000
/* Room kept above the post bounds for what the broker itself sends the
 * bridge (connection reports, marks), which is never refused: posts stop
 * at the bound, and mosquitto.conf's max_queued_messages and
 * max_queued_bytes must hold bound + slack (brokerconf.h checks it at
 * start). */
#define BACKLOG_SLACK_COUNT 1000
#define BACKLOG_SLACK_BYTES 131072
/* A mark line: "mark <16 hex boot> <id>" */
#define BACKLOG_MARK_MAX 48

struct backlog_mark {
	uint64_t id;
	int64_t sent_ms;
	bool placed;                   /* its routing to the bridge was seen */
	uint64_t routed, routed_bytes; /* totals up to and including it */
};

struct backlog {
	uint64_t max_count, max_bytes;            /* the post bounds */
	uint64_t routed, routed_bytes;            /* to the bridge, since it attached */
	uint64_t taken, taken_bytes;              /* of those, taken for sure */
	struct backlog_mark marks[BACKLOG_MARKS]; /* out, oldest first */
	size_t nmarks;
	uint64_t next_id;
	int64_t last_sent_ms;
	bool ever_echoed; /* this bridge has answered a mark */
	uint64_t conn_id; /* the bridge's connection counted for (0: none yet) */
};

void backlog_init(struct backlog *b, uint64_t max_count, uint64_t max_bytes);
/* A routing to the bridge's connection conn_id (0: to its offline
 * session, the last connection's). The first one to a new connection
 * starts the count again: mosquitto checks every message a resumed
 * session holds as that connection begins, before it can route anything
 * new to it, so those are counted anew (and a fresh session holds none). */
void backlog_connection(struct backlog *b, uint64_t conn_id);
/* The bridge subscribed again: marks out may have died with a session the
 * broker discarded, so a fresh one is due at once. */
void backlog_resubscribed(struct backlog *b);

uint64_t backlog_count(const struct backlog *b);
uint64_t backlog_bytes(const struct backlog *b);
/* Whether a post of payload bytes may be routed to the bridge now. */
bool backlog_admits(const struct backlog *b, size_t bytes);
/* A message of payload bytes was routed to the bridge. */
void backlog_routed(struct backlog *b, size_t bytes);

/* The id of a mark to publish now (0: none is due); it counts as sent. */
uint64_t backlog_mark_due(struct backlog *b, int64_t now_ms);
/* The mark id was routed to the bridge (after backlog_routed for it). */
void backlog_mark_routed(struct backlog *b, uint64_t id);
/* The bridge echoed mark id: what was routed up to it, and up to every
 * older mark still out, is taken; those marks are retired. */
void backlog_mark_taken(struct backlog *b, uint64_t id);

/* "mark <boot> <id>" into out (BACKLOG_MARK_MAX bytes); returns its length. */
int backlog_mark_format(const char *boot, uint64_t id, char *out);
/* Whether payload (len bytes, not a C string) is a mark of boot; *id set. */
bool backlog_mark_parse(const void *payload, size_t len, const char *boot, uint64_t *id);

#endif
