/*
 * Whether this broker's bridge can take posts: the answer to "would a post
 * the broker acknowledges now reach the bridge?". With `persistence false`
 * the bridge's session and its shared subscription to <prefix>/in/# die
 * with the broker; until the bridge is back and subscribed, a post would be
 * acknowledged to nobody. So:
 *   - attached: a service subscribed to the in-filter since this broker
 *     started (its SUBSCRIBE passes the ACL check);
 *   - while it is connected, posts are accepted;
 *   - once it disconnects, its session queues posts for grace ms, then
 *     posts are refused until it subscribes again.
 * How much the broker may hold for it, connected or not, is backlog.h's.
 * Pure state, the caller passes the time.
 */
#ifndef CHAT_WATCH_H
#define CHAT_WATCH_H

#include <stdbool.h>
#include <stdint.h>

#include "sessions.h"

enum watch_state {
	WATCH_OK = 0,
	WATCH_NEVER,      /* no bridge subscribed since the broker started */
	WATCH_AWAY,       /* the bridge left longer than the grace period ago */
	WATCH_QUEUE_FULL, /* the broker holds all it may for the bridge (backlog.h):
	                     decided by the caller */
};

struct watch {
	bool attached;
	bool online;
	char id[SESSION_ID_MAX + 1]; /* the bridge's client id */
	int64_t offline_since_ms;
	int64_t grace_ms;
};

void watch_init(struct watch *w, int64_t grace_ms);
/* A service client id subscribed to the in-filter at now_ms. */
void watch_subscribed(struct watch *w, const char *id, int64_t now_ms);
/* Client id's connection ended at now_ms (ignored unless it is the bridge).
 * A client without a persistent session queues nothing once gone: posts
 * are refused at once, with no grace. */
void watch_gone(struct watch *w, const char *id, bool persistent, int64_t now_ms);
/* Whether a post now would reach the bridge (never WATCH_QUEUE_FULL). */
enum watch_state watch_state(const struct watch *w, int64_t now_ms);
/* A notice text for a state other than WATCH_OK. */
const char *watch_strerror(enum watch_state s);

#endif
