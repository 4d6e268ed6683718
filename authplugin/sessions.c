/*
 * The session table (see sessions.h): a names_table of sessions by client
 * id, and one of per-user persistent-session counts.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sessions.h"

/* Beyond this many remembered sessions, a clean session is forgotten at
 * once when it ends (its Will, if any, is then refused): a flood of
 * short connections cannot grow the table without bound. */
#define DEPARTED_MAX 65536

struct user_count {
	struct name_node node; /* first */
	char user[NAME_USER_MAX + 1];
	unsigned n;
};

static void node_free(struct name_node *n)
{
	free(n);
}

int sessions_init(struct session_table *t)
{
	if (names_init(&t->sessions) != 0 || names_init(&t->users) != 0) {
		names_free(&t->sessions, NULL);
		return SESSIONS_E_NOMEM;
	}
	return SESSIONS_OK;
}

void sessions_free(struct session_table *t)
{
	names_free(&t->sessions, node_free);
	names_free(&t->users, node_free);
}

struct session *sessions_find(const struct session_table *t, const char *id)
{
	return (struct session *)names_find(&t->sessions, id, strlen(id));
}

unsigned sessions_user_count(const struct session_table *t, const char *user)
{
	const struct user_count *u =
	        (const struct user_count *)names_find(&t->users, user, strlen(user));
	return u ? u->n : 0;
}

/* Adds delta to user's count; an entry that drops to 0 is freed. */
static int user_add(struct session_table *t, const char *user, int delta)
{
	struct user_count *u = (struct user_count *)names_find(&t->users, user, strlen(user));
	if (u == NULL) {
		if (delta <= 0)
			return 0;
		u = calloc(1, sizeof(*u));
		if (u == NULL)
			return SESSIONS_E_NOMEM;
		strcpy(u->user, user);
		u->node.key = u->user;
		u->node.key_len = strlen(user);
		names_insert(&t->users, &u->node);
	}
	u->n = (unsigned)((int)u->n + delta);
	if (u->n == 0) {
		names_unlink(&t->users, &u->node);
		free(u);
	}
	return 0;
}

static struct session *add(struct session_table *t, const char *id, const char *user)
{
	if (strlen(id) > SESSION_ID_MAX || strlen(user) > NAME_USER_MAX)
		return NULL;
	struct session *s = calloc(1, sizeof(*s));
	if (s == NULL)
		return NULL;
	strcpy(s->id, id);
	strcpy(s->user, user);
	s->node.key = s->id;
	s->node.key_len = strlen(id);
	names_insert(&t->sessions, &s->node);
	return s;
}

/* Frees a session already out of the table; ctx is the table. */
static void forget(struct name_node *n, void *ctx)
{
	struct session *gone = (struct session *)n;
	if (gone->persistent && gone->role != ROLE_SERVICE)
		user_add(ctx, gone->user, -1);
	free(gone);
}

static void drop(struct session_table *t, struct session *gone)
{
	names_unlink(&t->sessions, &gone->node);
	forget(&gone->node, t);
}

int sessions_connect(struct session_table *t, const char *id, const char *user,
                     enum token_role role, int64_t exp, const void *owner, bool persistent,
                     long max_per_user)
{
	struct session *s = sessions_find(t, id);
	bool counted = s && s->persistent && s->role != ROLE_SERVICE;
	bool counts = persistent && role != ROLE_SERVICE;

	/* the id is the user's (section 3), but a session that another user
	 * id held (an "auto-" id) is not this user's to count */
	if (s && strcmp(s->user, user) != 0) {
		drop(t, s);
		s = NULL;
		counted = false;
	}
	if (counts && !counted && sessions_user_count(t, user) >= (unsigned long)max_per_user)
		return SESSIONS_E_CAP;
	if (s == NULL && (s = add(t, id, user)) == NULL)
		return SESSIONS_E_NOMEM;
	if (counts != counted && user_add(t, user, counts ? 1 : -1) != 0) {
		if (s->owner == NULL && !s->persistent)
			drop(t, s);
		return SESSIONS_E_NOMEM;
	}
	s->role = role;
	s->exp = exp;
	s->iat = 0;
	s->jti[0] = '\0';
	s->owner = owner;
	s->persistent = persistent;
	s->queued = 0;
	return SESSIONS_OK;
}

void sessions_set_token(struct session_table *t, const char *id, const char *jti, int64_t iat)
{
	struct session *s = sessions_find(t, id);
	if (s == NULL)
		return;
	snprintf(s->jti, sizeof(s->jti), "%s", jti ? jti : "");
	s->iat = iat;
}

void sessions_disconnect(struct session_table *t, const char *id, const void *owner, int64_t now)
{
	struct session *s = sessions_find(t, id);
	if (s == NULL || s->owner != owner)
		return;
	s->owner = NULL;
	s->offline_since = now;
	s->queued = 0;
	if (!s->persistent && (s->exp <= now || t->sessions.count > DEPARTED_MAX))
		drop(t, s);
}

bool sessions_offline_read(struct session_table *t, const char *id, const char *user, int qos,
                           long limit, long service_limit, int64_t now)
{
	if (qos == 0)
		return true;
	struct session *s = sessions_find(t, id);
	if (s == NULL) {
		s = add(t, id, user);
		if (s == NULL)
			return false;
		s->role = ROLE_USER;
		s->persistent = true;
		s->offline_since = now;
		if (user_add(t, user, 1) != 0)
			s->persistent = false;
	}
	if (s->role == ROLE_SERVICE)
		limit = service_limit;
	if (s->queued >= (unsigned long)limit)
		return false;
	s->queued++;
	return true;
}

struct prune {
	int64_t now;
	long idle_max;
	struct session_table *t;
};

static bool departed(const struct name_node *n, void *ctx)
{
	const struct session *s = (const struct session *)n;
	const struct prune *p = ctx;
	return s->owner == NULL && ((!s->persistent && s->exp <= p->now) ||
	                            (s->persistent && s->offline_since + p->idle_max <= p->now));
}

static void forget_pruned(struct name_node *n, void *ctx)
{
	forget(n, ((struct prune *)ctx)->t);
}

size_t sessions_prune(struct session_table *t, int64_t now, long idle_max)
{
	struct prune p = {now, idle_max, t};
	return names_remove_if(&t->sessions, departed, forget_pruned, &p);
}
