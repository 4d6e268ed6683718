/*
 * Replica acknowledgement (redis_wait_replicas > 0; README "Redis high
 * availability"). Redis replicates asynchronously: a message the primary
 * took may be lost with it in a failover, and the new primary would hand
 * its seq out again. So, with replicas asked for:
 *   - a post batch counts as answered only once WAIT says the script's
 *     writes are on redis_wait_replicas replicas (bridge.c, send_batch);
 *     else its accepted posts stay in doubt and are sent again (the
 *     script's journal ids skip what is already in);
 *   - the feed delivers what it read only after a write of its own on the
 *     feed link (SET chat:fence:<node>), issued after the read, was
 *     acknowledged by as many replicas: every entry read is older than
 *     that write, so it is on them too. The feed thus never shows a
 *     message that a failover could take back, and the feed's cursor never
 *     points past what the new primary has.
 *   - a request that changes state (room.create/join/..., read,
 *     user.revoke, msg.edit/delete) is answered ok, and its events sent,
 *     only once its writes are on as many replicas (commit_change, and
 *     rconn_replicated on blocking links); else it is answered
 *     unavailable and sends no event.
 * With redis_wait_replicas 0 none of this runs: the feed and post paths
 * are unchanged.
 */
#ifndef CHAT_COMMIT_H
#define CHAT_COMMIT_H

#include <stdbool.h>

#include <hiredis/async.h>
#include <hiredis/hiredis.h>

struct bridge;

/* A deep copy of reply that freeReplyObject frees, or NULL. */
redisReply *commit_copy(const redisReply *reply);

/* Holds a copy of the feed's XREAD reply until the fence write is on
 * enough replicas, then calls done(b, held, committed) (held is freed
 * after done returns; NULL when the link was lost). Returns 0, or -1 when
 * nothing could be sent (done is not called). */
int commit_feed(struct bridge *b, const redisReply *reply, const char *last_id,
                void (*done)(struct bridge *b, redisReply *held, bool committed));

/* Sends WAIT on the command link after a post batch; cb gets its answer.
 * Returns REDIS_OK or REDIS_ERR. */
int commit_post_wait(struct bridge *b, redisCallbackFn *cb, void *priv);

/* For a request that changed state (rpc.c) with redis_wait_replicas > 0:
 * pipelines a fence write and WAIT on the command link, behind the
 * request's own script, then calls done(b, replicated, priv): replicated
 * false when too few replicas acknowledged within redis_wait_ms or the
 * link was lost (the change may still be on the primary; the request is
 * answered unavailable and retried by the client). Returns 0, or -1 when
 * nothing could be sent (done is not called). */
int commit_change(struct bridge *b, void (*done)(struct bridge *b, bool replicated, void *priv),
                  void *priv);

/* Whether a WAIT answer counts: at least redis_wait_replicas replicas. */
bool commit_replicated(const struct bridge *b, const redisReply *reply);

#endif
