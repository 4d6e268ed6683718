/*
 * Private-room states between Redis and the local broker's plugin
 * (authplugin/rooms.h, over $CONTROL/chat/v1):
 *   - every change the room script publishes on chat:acl (a new room's
 *     state, one member added or removed) is passed on as it comes;
 *   - a full sync sends every private room's state: after each (re)connect
 *     to the broker, after the chat:acl subscription was away (the channel
 *     is at-most-once) and when Redis was restored from the store. It runs
 *     "sync begin", then one bounded Redis call at a time: pages of rooms
 *     (small rooms whole), then each large room a page of members at a
 *     time ("begin", "part"..., "end"), then, once a barrier published on
 *     chat:acl after the last read has come back (every change the pieces
 *     need is then passed on), "sync end". Each call's lines go out in
 *     messages of at most ACL_SYNC_MSG_MAX bytes.
 * Nothing is delivered (the feed waits: acl_synced) from the moment the
 * broker connection or the subscription is lost until a sync has ended:
 * the plugin never has to guess a state.
 */
#ifndef CHAT_BRIDGE_ACL_SYNC_H
#define CHAT_BRIDGE_ACL_SYNC_H

#include <stddef.h>

struct bridge;

/* The most bytes in one $CONTROL message: an eighth of the broker's 2 MiB
 * packet limit, so none is ever dropped, and the plugin parses one in about
 * a millisecond on the broker's thread. */
#define ACL_SYNC_MSG_MAX (256 * 1024)

/* Starts a sync when one is due and can run. Call every loop turn and
 * when the broker or Redis comes back. */
void acl_sync(struct bridge *b);

/* The sub link's SUBSCRIBE to chat:acl was confirmed: what was published
 * while it was away is lost, so every state is sent again. */
void acl_listening(struct bridge *b);

/* One chat:acl message: a change, passed to the plugin; "resync" (Redis
 * was restored from the store); or a sync's barrier (never passed on). */
void acl_forward(struct bridge *b, const char *msg, size_t len);

/* Frees what a sync under way holds (at shutdown). */
void acl_sync_free(struct bridge *b);

#endif
