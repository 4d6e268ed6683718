/*
 * Posts waiting for Redis. A post the broker handed over is journaled and
 * acknowledged (PUBACK) at once; it then goes to Redis in a batch (one
 * script call, bridge.c). While Redis cannot take it (the link is down,
 * Redis is loading its data or failing over, or it answered with an error
 * that means the script did not run), the post is held here, in arrival
 * order, and sent again once Redis is back: a failover costs the sender a
 * delay, not a refusal.
 *
 * Two bounds keep that honest:
 *   - time: a post held longer than post_hold_s is refused with a notice
 *     (unavailable, its cid), unless a call carrying it may have run
 *     (sent, and its answer lost with the link, or accepted on a primary
 *     whose replicas did not confirm it): such a post may be in, so it is
 *     never refused by a guess; it waits for Redis's answer.
 *   - memory: at most post_hold_max posts and post_hold_bytes bytes are
 *     taken and not yet answered; a post beyond that is refused at once.
 *
 * Batches are kept in the order they were made, and a post carries the
 * journal id the post script uses to skip what it already answered: so
 * they must reach Redis in that order (bridge.c sends one held batch at a
 * time). Pure, no I/O.
 */
#ifndef CHAT_HOLD_H
#define CHAT_HOLD_H

#include <stdbool.h>
#include <stddef.h>

#include "chat/names.h"

#define BATCH_MAX 128

struct post_ctx; /* bridge.c: sender, topic, cid, journal id */

struct pending_post {
	struct post_ctx *ctx;
	char conv[NAME_CONV_MAX + 1];
	char *head, *tail; /* the message JSON around its seq (inbound.h) */
	const char *kind;  /* "room" | "dm" */
	double since;      /* when the broker handed it over (monotonic s) */
	size_t cost;       /* bytes it holds, counted against post_hold_bytes */
	bool maybe_in;     /* a call carrying it may have run: never refused by time */
};

struct post_batch {
	unsigned long long order; /* made in this order: held and sent in it */
	int n;
	struct post_batch *next;
	/* the script's answer, kept until WAIT's (commit.h) */
	bool waiting;  /* a WAIT follows the script call */
	bool resent;   /* carries a post that may be in: a fence write goes before the WAIT */
	bool fence_failed;
	bool fence_settles; /* no WAIT could follow the fence: it answers */
	bool lost;     /* the link went before the script's answer */
	bool not_run;  /* Redis answered that the script ran nothing: send again */
	bool ok;       /* one status per post */
	char why[104]; /* what Redis answered, when not ok */
	long long st[BATCH_MAX];
	struct pending_post p[BATCH_MAX];
};

struct hold {
	struct post_batch *first; /* held batches, in order */
	size_t held;              /* posts in them */
	long posts, bytes;        /* posts taken and not yet answered, held or not */
};

/* Counts a post of cost bytes as taken, when max_posts and max_bytes
 * allow it (or when force: a post that may be in Redis already, which is
 * never refused). Returns whether it was counted. */
bool hold_admit(struct hold *h, long max_posts, long max_bytes, size_t cost, bool force);
/* A post counted by hold_admit has been answered. */
void hold_release(struct hold *h, size_t cost);

/* Holds batch (taking it), in order among the held ones; a batch that
 * fits into the one before it is merged into it (and freed). */
void hold_put(struct hold *h, struct post_batch *batch);
/* The first held batch, with as many of the following ones merged in as
 * fit into one call; NULL when nothing is held. The caller owns it. */
struct post_batch *hold_take(struct hold *h);
/* Takes out every held post that may be refused (not maybe_in) and that
 * arrived before cutoff, oldest first, calling refuse(p, ctx) for each
 * (which then owns what p points to); batches left empty are freed.
 * Returns how many. */
size_t hold_expire(struct hold *h, double cutoff, void (*refuse)(struct pending_post *p, void *ctx),
                   void *ctx);

/* Whether a script call Redis answered with the error err (a whole-call
 * error reply) ran nothing and may be sent again as it is: the script is
 * not loaded (NOSCRIPT), Redis is loading its data (LOADING), another
 * script is running (BUSY), the server is a replica (READONLY,
 * MASTERDOWN), too few replicas are connected (NOREPLICAS), or memory is
 * full (OOM). Redis refuses these before the script's first write. */
bool hold_retryable(const char *err);

#endif
