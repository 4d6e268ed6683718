/*
 * What a departed client's Will may do. mosquitto publishes a Will itself,
 * after its client is gone: no MOSQ_EVT_MESSAGE runs for it (so no role
 * stamp, stamp.h), the ACL check sees no properties, and nobody is left to
 * read an answer. So a Will may only be a post of its own user (a room
 * message or a DM: "I dropped"), sent while the token its client connected
 * with is still valid and not revoked. A request (rpc), typing or any other
 * input as a Will is refused: a request would run unstamped for no one.
 * Pure: the caller passes the session, the revocations and the time.
 */
#ifndef CHAT_WILL_H
#define CHAT_WILL_H

#include <stdint.h>

#include "revoked.h"
#include "sessions.h"

enum will_verdict {
	WILL_OK = 0,
	WILL_E_NOT_A_POST = -1, /* not <prefix>/in/<user>/room/<room> or /dm/<peer> */
	WILL_E_EXPIRED = -2,    /* no session known, or its token has expired */
	WILL_E_REVOKED = -3,    /* its token was revoked after it connected */
};

/* Judges the Will of user (the departed client's session s, NULL when
 * unknown) on topic at now. Returns a will_verdict. */
int will_judge(const char *prefix, const char *user, const char *topic, const struct session *s,
               const struct revoked_table *revoked, int64_t now);

const char *will_strerror(int verdict);

#endif
