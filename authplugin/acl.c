/*
 * Topic rules (see acl.h). Users publish only under <p>/in/<me>/, subscribe
 * to rooms, their own <p>/user/<me>/ subtree and presence, and receive only
 * those. Services (bridge, web front) publish what the server sends and
 * consume what clients publish, and nothing outside the prefix.
 */
#include <string.h>

#include "acl.h"

struct span {
	const char *p;
	size_t n;
};

/* Splits off the next topic level of s into lvl; returns false at the end. */
static bool next_level(struct span *s, struct span *lvl)
{
	if (s->p == NULL)
		return false;
	const char *slash = memchr(s->p, '/', s->n);
	lvl->p = s->p;
	if (slash == NULL) {
		lvl->n = s->n;
		s->p = NULL;
		s->n = 0;
	} else {
		lvl->n = (size_t)(slash - s->p);
		s->n -= lvl->n + 1;
		s->p = slash + 1;
	}
	return true;
}

static bool is(struct span lvl, const char *word)
{
	size_t n = strlen(word);
	return lvl.n == n && memcmp(lvl.p, word, n) == 0;
}

static bool has_wildcard(const char *s, size_t n)
{
	return memchr(s, '+', n) != NULL || memchr(s, '#', n) != NULL;
}

static bool room_ok(const struct acl_rules *r, const struct acl_client *c,
                    struct span room, enum acl_access access)
{
	if (!name_room_valid(room.p, room.n))
		return false;
	if (r->room_visible == NULL || c->role == ROLE_SERVICE)
		return true;
	return r->room_visible(r->room_ctx, c->user, c->user_len, room.p, room.n, access);
}

/* <p>/room/<room>[/typing|/events] */
static bool room_topic(const struct acl_rules *r, const struct acl_client *c,
                       struct span rest, enum acl_access access)
{
	struct span room, leaf, extra;
	if (!next_level(&rest, &room))
		return false;
	if (next_level(&rest, &leaf)) {
		if (next_level(&rest, &extra) || !(is(leaf, "typing") || is(leaf, "events")))
			return false;
	}
	return room_ok(r, c, room, access);
}

/* Users: <p>/user/<me>/<one or more levels>; as a subscription also
 * exactly <p>/user/<me>/#. No other wildcard. */
static bool own_user_topic(const struct acl_client *c, struct span rest,
                           enum acl_access access)
{
	struct span who;
	if (!next_level(&rest, &who) || who.n != c->user_len ||
	    memcmp(who.p, c->user, who.n) != 0 || rest.p == NULL || rest.n == 0)
		return false;
	if (access == ACL_SUBSCRIBE && rest.n == 1 && rest.p[0] == '#')
		return true;
	if (has_wildcard(rest.p, rest.n))
		return false;
	/* no empty levels such as "inbox//x" */
	struct span lvl;
	while (next_level(&rest, &lvl))
		if (lvl.n == 0)
			return false;
	return true;
}

/* <p>/presence/<user>, and the filter <p>/presence/+ */
static bool presence_topic(struct span rest, enum acl_access access)
{
	struct span who, extra;
	if (!next_level(&rest, &who) || next_level(&rest, &extra))
		return false;
	if (access == ACL_SUBSCRIBE && who.n == 1 && who.p[0] == '+')
		return true;
	return name_user_valid(who.p, who.n);
}

static bool user_rules(const struct acl_rules *r, const struct acl_client *c,
                       enum acl_access access, struct span rest, bool retain)
{
	struct span kind;
	if (!next_level(&rest, &kind))
		return false;

	if (access == ACL_WRITE) {
		/* <p>/in/<me>/<something>; the bridge validates the rest and
		 * answers bad input with a notice. Retained input would be
		 * replayed to the bridge on every resubscribe, so it is refused. */
		struct span who;
		if (retain || !is(kind, "in") || !next_level(&rest, &who))
			return false;
		return who.n == c->user_len && memcmp(who.p, c->user, who.n) == 0 &&
		       rest.p != NULL && rest.n > 0;
	}
	if (is(kind, "room"))
		return room_topic(r, c, rest, access);
	if (is(kind, "user"))
		return own_user_topic(c, rest, access);
	if (is(kind, "presence"))
		return presence_topic(rest, access);
	/* <p>/rooms: public rooms created and deleted, for every user */
	if (is(kind, "rooms"))
		return rest.p == NULL;
	return false;
}

/* Services: write anything under the prefix but <p>/in/ (which would loop
 * back into the bridge); subscribe to and read anything under the prefix,
 * also as a shared subscription. */
static bool service_rules(enum acl_access access, bool is_in)
{
	return access != ACL_WRITE || !is_in;
}

bool acl_allowed(const struct acl_rules *r, const struct acl_client *c,
                 enum acl_access access, const char *topic, bool retain)
{
	struct span s = {topic, strlen(topic)}, lvl;

	if (access == ACL_WRITE && c->role == ROLE_SERVICE && strcmp(topic, ACL_CONTROL_TOPIC) == 0)
		return true;

	if (access == ACL_SUBSCRIBE && c->role == ROLE_SERVICE && s.n > 7 &&
	    memcmp(topic, "$share/", 7) == 0) {
		/* $share/<group>/<filter>: judge the filter */
		const char *slash = memchr(topic + 7, '/', s.n - 7);
		if (slash == NULL || slash == topic + 7)
			return false;
		s.p = slash + 1;
		s.n = (size_t)(topic + strlen(topic) - s.p);
	}
	if (!next_level(&s, &lvl) || lvl.n != r->prefix_len ||
	    memcmp(lvl.p, r->prefix, lvl.n) != 0 || s.p == NULL)
		return false;
	if (c->role == ROLE_SERVICE) {
		struct span kind;
		bool is_in = next_level(&s, &kind) && is(kind, "in");
		return service_rules(access, is_in);
	}
	return user_rules(r, c, access, s, retain);
}

static bool suffix_ok(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > 64)
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)s[i];
		if (ch < 0x21 || ch > 0x7e || ch == '+' || ch == '#' || ch == '/')
			return false;
	}
	return true;
}

static bool broker_assigned(const char *id)
{
	if (strncmp(id, "auto-", 5) != 0 || strlen(id) != 5 + 36)
		return false;
	for (const char *p = id + 5; *p; p++) {
		bool hex = (*p >= '0' && *p <= '9') || (*p >= 'A' && *p <= 'F') ||
		           (*p >= 'a' && *p <= 'f');
		if (!hex && *p != '-')
			return false;
	}
	return true;
}

bool acl_client_id_ok(const char *user, const char *client_id)
{
	size_t n = strlen(user);

	if (client_id == NULL)
		return false;
	if (strcmp(client_id, user) == 0)
		return true;
	if (strncmp(client_id, user, n) == 0 && client_id[n] == ':')
		return suffix_ok(client_id + n + 1);
	return broker_assigned(client_id);
}
