/*
 * The bridge's intake journal: every post, as it arrives from the broker,
 * appended to a local file before anything else is done with it.
 *
 * libmosquitto acknowledges a QoS 1 message to the broker before it hands
 * it to the bridge, so a bridge killed between that and its script call to
 * Redis would lose a post the broker had acknowledged to its client. The
 * journal closes that window down to the append itself: a post is written
 * (write(2), no fsync: it survives the process, which is what a kill -9
 * takes) before it is batched, and a restarted bridge replays what the
 * previous one did not finish. The post script records, per journal boot,
 * the highest id it has answered (chat:journal:<node>), so a replayed post
 * that Redis had already answered is skipped, never posted twice.
 *
 * The file is emptied whenever nothing written to it is outstanding.
 *
 * The PUBACK goes out only after the append (bridge.c, bridge_init), so a
 * kill between the two leaves a post both in the journal and in the
 * broker's session, which sends it again with the same packet id: the
 * record keeps that id so the second copy is recognised and not posted.
 */
#ifndef CHAT_BRIDGE_JOURNAL_H
#define CHAT_BRIDGE_JOURNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct journal_record {
	char boot[17];
	uint64_t id;
	int mid; /* the broker's packet id for it (0: not known) */
	bool redelivered; /* the broker sent it again: taken as this record */
	char *topic;
	char *payload;
	size_t payload_len;
};

struct journal {
	int fd;
	int lock_fd; /* holds the flock that keeps a second bridge off the file */
	char boot[17]; /* this process's journal boot id (hex) */
	uint64_t next_id;
	uint64_t outstanding;          /* appended, not yet answered */
	struct journal_record *replay; /* what a previous process left */
	size_t nreplay;
	size_t replay_left; /* replayed, not yet answered */
	bool replay_started;
	char *path;
	char *replay_path;
};

/* Opens (creating) the journal at path. Records a previous process left
 * in it (and in path.replay, from a replay that was itself cut short) are
 * moved to path.replay and loaded for journal_replay. Returns 0, or -1
 * with a reason in err. */
int journal_open(struct journal *j, const char *path, char *err, size_t errlen);
void journal_close(struct journal *j);

/* Appends one post the broker sent with packet id mid; returns its id
 * (> 0), or 0 when it could not be written (the post must then be
 * refused). */
uint64_t journal_append(struct journal *j, int mid, const char *topic, const void *payload,
                        size_t len);
/* A post the broker sends again after a restart, because the previous
 * process was killed after journaling it but before its PUBACK went out:
 * true when it is the replay record with this packet id, topic and payload
 * (which is then marked, so it matches once), and the replay posts it. */
bool journal_redelivered(struct journal *j, int mid, const char *topic, const void *payload,
                         size_t len);
/* One appended post of this process has been answered. */
void journal_done(struct journal *j);
/* One replayed post has been answered; true when it was the last. */
bool journal_replay_done(struct journal *j);

#endif
