/*
 * The Will rule (see will.h).
 */
#include <string.h>

#include "chat/topic.h"
#include "will.h"

int will_judge(const char *prefix, const char *user, const char *topic, const struct session *s,
               const struct revoked_table *revoked, int64_t now)
{
	struct topic_in t;

	if (topic_parse_in(prefix, topic, strlen(topic), &t) != TOPIC_OK ||
	    (t.kind != TOPIC_IN_ROOM && t.kind != TOPIC_IN_DM) || strcmp(t.sender, user) != 0)
		return WILL_E_NOT_A_POST;
	if (s == NULL || strcmp(s->user, user) != 0 || s->exp <= now)
		return WILL_E_EXPIRED;
	if (revoked_match(revoked, user, s->jti, s->iat, now))
		return WILL_E_REVOKED;
	return WILL_OK;
}

const char *will_strerror(int verdict)
{
	switch (verdict) {
	case WILL_OK:
		return "ok";
	case WILL_E_NOT_A_POST:
		return "only a post (room or dm) may be a Will: a request, typing or other input "
		       "from a client that is gone has no one to answer";
	case WILL_E_EXPIRED:
		return "its token has expired";
	case WILL_E_REVOKED:
		return "its token was revoked";
	}
	return "refused";
}
