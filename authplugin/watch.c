/*
 * The bridge's attachment (see watch.h).
 */
#include <string.h>

#include "watch.h"

void watch_init(struct watch *w, int64_t grace_ms)
{
	memset(w, 0, sizeof(*w));
	w->grace_ms = grace_ms;
}

void watch_subscribed(struct watch *w, const char *id, int64_t now_ms)
{
	(void)now_ms;
	if (strlen(id) > SESSION_ID_MAX)
		return;
	strcpy(w->id, id);
	w->attached = true;
	w->online = true;
}

void watch_gone(struct watch *w, const char *id, bool persistent, int64_t now_ms)
{
	if (!w->attached || !w->online || strcmp(w->id, id) != 0)
		return;
	w->online = false;
	w->offline_since_ms = persistent ? now_ms : now_ms - w->grace_ms;
}

enum watch_state watch_state(const struct watch *w, int64_t now_ms)
{
	if (!w->attached)
		return WATCH_NEVER;
	if (w->online)
		return WATCH_OK;
	if (now_ms - w->offline_since_ms >= w->grace_ms)
		return WATCH_AWAY;
	return WATCH_OK;
}

const char *watch_strerror(enum watch_state s)
{
	switch (s) {
	case WATCH_OK:
		return "ok";
	case WATCH_NEVER:
		return "the message service is not connected to this broker yet: message not "
		       "accepted, try again in a moment";
	case WATCH_AWAY:
		return "the message service has been away from this broker too long: message not "
		       "accepted, try again later";
	case WATCH_QUEUE_FULL:
		return "too many messages wait for the message service: message not accepted, try "
		       "again later";
	}
	return "unavailable";
}
