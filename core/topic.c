/*
 * Topic parsing and formatting (see chat/topic.h). Pure string work on
 * length-carrying input.
 */
#include <stdio.h>
#include <string.h>

#include "chat/topic.h"

/* Matches "word/" at *p (within end) and advances past it. */
static int eat(const char **p, const char *end, const char *word)
{
	size_t n = strlen(word);
	if ((size_t)(end - *p) < n + 1 || memcmp(*p, word, n) != 0 || (*p)[n] != '/')
		return 0;
	*p += n + 1;
	return 1;
}

static int exact(const char *p, const char *end, const char *word)
{
	size_t n = strlen(word);
	return (size_t)(end - p) == n && memcmp(p, word, n) == 0;
}

/* Copies the room or user id [p, end) into dst when valid. */
static int target(const char *p, const char *end, int is_room, char *dst)
{
	size_t n = (size_t)(end - p);
	int ok = is_room ? name_room_valid(p, n) : name_user_valid(p, n);
	if (!ok)
		return TOPIC_E_TARGET;
	memcpy(dst, p, n);
	dst[n] = '\0';
	return TOPIC_OK;
}

int topic_parse_in(const char *prefix, const char *topic, size_t len,
                   struct topic_in *out)
{
	const char *p = topic, *end = topic + len;
	struct topic_in t;

	memset(&t, 0, sizeof(t));
	if (!eat(&p, end, prefix) || !eat(&p, end, "in"))
		return TOPIC_E_PREFIX;
	const char *slash = memchr(p, '/', (size_t)(end - p));
	if (slash == NULL || !name_user_valid(p, (size_t)(slash - p)))
		return TOPIC_E_SENDER;
	memcpy(out->sender, p, (size_t)(slash - p));
	out->sender[slash - p] = '\0';
	memcpy(t.sender, out->sender, sizeof(t.sender));
	p = slash + 1;

	int rc;
	if (exact(p, end, "rpc")) {
		t.kind = TOPIC_IN_RPC;
		rc = TOPIC_OK;
	} else if (eat(&p, end, "room")) {
		t.kind = TOPIC_IN_ROOM;
		rc = target(p, end, 1, t.target);
	} else if (eat(&p, end, "dm")) {
		t.kind = TOPIC_IN_DM;
		rc = target(p, end, 0, t.target);
	} else if (eat(&p, end, "typing")) {
		if (eat(&p, end, "room")) {
			t.kind = TOPIC_IN_TYPING_ROOM;
			rc = target(p, end, 1, t.target);
		} else if (eat(&p, end, "dm")) {
			t.kind = TOPIC_IN_TYPING_DM;
			rc = target(p, end, 0, t.target);
		} else {
			rc = TOPIC_E_KIND;
		}
	} else {
		rc = TOPIC_E_KIND;
	}
	if (rc == TOPIC_OK)
		*out = t;
	return rc;
}

static int fmt(size_t size, int n)
{
	return (n < 0 || (size_t)n >= size) ? -1 : n;
}

int topic_room(const char *prefix, const char *room, const char *leaf,
               char *buf, size_t size)
{
	if (leaf)
		return fmt(size, snprintf(buf, size, "%s/room/%s/%s", prefix, room, leaf));
	return fmt(size, snprintf(buf, size, "%s/room/%s", prefix, room));
}

int topic_user(const char *prefix, const char *user, const char *leaf,
               char *buf, size_t size)
{
	return fmt(size, snprintf(buf, size, "%s/user/%s/%s", prefix, user, leaf));
}

int topic_presence(const char *prefix, const char *user, char *buf, size_t size)
{
	return fmt(size, snprintf(buf, size, "%s/presence/%s", prefix, user));
}

int topic_reply_ok(const char *prefix, const char *caller, const char *topic)
{
	char base[128];
	int n = snprintf(base, sizeof(base), "%s/user/%s/", prefix, caller);
	size_t len = strlen(topic);

	if (n <= 0 || (size_t)n >= sizeof(base) || len <= (size_t)n || len > 200 ||
	    strncmp(topic, base, (size_t)n) != 0)
		return 0;
	if (strpbrk(topic, "+#") != NULL || strstr(topic + n - 1, "//") != NULL ||
	    topic[len - 1] == '/')
		return 0;
	return 1;
}

const char *topic_strerror(int err)
{
	switch (err) {
	case TOPIC_OK: return "ok";
	case TOPIC_E_PREFIX: return "not an inbound topic";
	case TOPIC_E_SENDER: return "invalid sender id";
	case TOPIC_E_KIND: return "unknown topic kind";
	case TOPIC_E_TARGET: return "invalid room or user id";
	}
	return "unknown error";
}
