/*
 * The session table (see sessions.h): a chained hash of sessions by client
 * id, and a chained hash of per-user persistent-session counts.
 */
#include <stdlib.h>
#include <string.h>

#include "sessions.h"

/* Beyond this many remembered sessions, a clean session is forgotten at
 * once when it ends (its Will, if any, is then refused): a flood of
 * short connections cannot grow the table without bound. */
#define DEPARTED_MAX 65536

struct user_count {
	char user[NAME_USER_MAX + 1];
	unsigned n;
	struct user_count *next;
};

static uint64_t hash(const char *s)
{
	uint64_t h = 1469598103934665603ULL;
	while (*s) {
		h ^= (unsigned char)*s++;
		h *= 1099511628211ULL;
	}
	return h ^ (h >> 29);
}

int sessions_init(struct session_table *t)
{
	memset(t, 0, sizeof(*t));
	t->nbuckets = 1024;
	t->nusers = 1024;
	t->buckets = calloc(t->nbuckets, sizeof(*t->buckets));
	t->users = calloc(t->nusers, sizeof(*t->users));
	if (t->buckets == NULL || t->users == NULL) {
		sessions_free(t);
		return SESSIONS_E_NOMEM;
	}
	return SESSIONS_OK;
}

void sessions_free(struct session_table *t)
{
	for (size_t i = 0; t->buckets && i < t->nbuckets; i++) {
		for (struct session *s = t->buckets[i], *next; s; s = next) {
			next = s->next;
			free(s);
		}
	}
	for (size_t i = 0; t->users && i < t->nusers; i++) {
		for (struct user_count *u = t->users[i], *next; u; u = next) {
			next = u->next;
			free(u);
		}
	}
	free(t->buckets);
	free(t->users);
	memset(t, 0, sizeof(*t));
}

struct session *sessions_find(const struct session_table *t, const char *id)
{
	for (struct session *s = t->buckets[hash(id) & (t->nbuckets - 1)]; s; s = s->next)
		if (strcmp(s->id, id) == 0)
			return s;
	return NULL;
}

static struct user_count **user_slot(const struct session_table *t, const char *user)
{
	struct user_count **pp = &t->users[hash(user) & (t->nusers - 1)];
	while (*pp && strcmp((*pp)->user, user) != 0)
		pp = &(*pp)->next;
	return pp;
}

unsigned sessions_user_count(const struct session_table *t, const char *user)
{
	struct user_count **pp = user_slot(t, user);
	return *pp ? (*pp)->n : 0;
}

/* Adds delta to user's count; an entry that drops to 0 is freed. */
static int user_add(struct session_table *t, const char *user, int delta)
{
	struct user_count **pp = user_slot(t, user);
	if (*pp == NULL) {
		if (delta <= 0)
			return 0;
		struct user_count *u = calloc(1, sizeof(*u));
		if (u == NULL)
			return SESSIONS_E_NOMEM;
		strcpy(u->user, user);
		*pp = u;
	}
	struct user_count *u = *pp;
	u->n = (unsigned)((int)u->n + delta);
	if (u->n == 0) {
		*pp = u->next;
		free(u);
	}
	return 0;
}

/* Doubles the bucket array; on allocation failure keeps the old one. */
static void grow(struct session_table *t)
{
	size_t n = t->nbuckets * 2;
	struct session **nb = calloc(n, sizeof(*nb));
	if (nb == NULL)
		return;
	for (size_t i = 0; i < t->nbuckets; i++) {
		for (struct session *s = t->buckets[i], *next; s; s = next) {
			next = s->next;
			size_t k = hash(s->id) & (n - 1);
			s->next = nb[k];
			nb[k] = s;
		}
	}
	free(t->buckets);
	t->buckets = nb;
	t->nbuckets = n;
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
	size_t k = hash(id) & (t->nbuckets - 1);
	s->next = t->buckets[k];
	t->buckets[k] = s;
	if (++t->count > t->nbuckets)
		grow(t);
	return s;
}

static void drop(struct session_table *t, struct session *gone)
{
	struct session **pp = &t->buckets[hash(gone->id) & (t->nbuckets - 1)];
	while (*pp != gone)
		pp = &(*pp)->next;
	*pp = gone->next;
	if (gone->persistent && gone->role != ROLE_SERVICE)
		user_add(t, gone->user, -1);
	free(gone);
	t->count--;
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
	s->owner = owner;
	s->persistent = persistent;
	s->queued = 0;
	return SESSIONS_OK;
}

void sessions_disconnect(struct session_table *t, const char *id, const void *owner, int64_t now)
{
	struct session *s = sessions_find(t, id);
	if (s == NULL || s->owner != owner)
		return;
	s->owner = NULL;
	s->offline_since = now;
	s->queued = 0;
	if (!s->persistent && (s->exp <= now || t->count > DEPARTED_MAX))
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

size_t sessions_prune(struct session_table *t, int64_t now, long idle_max)
{
	size_t removed = 0;

	for (size_t i = 0; i < t->nbuckets; i++) {
		for (struct session *s = t->buckets[i], *next; s; s = next) {
			next = s->next;
			if (s->owner != NULL)
				continue;
			if ((!s->persistent && s->exp <= now) ||
			    (s->persistent && s->offline_since + idle_max <= now)) {
				drop(t, s);
				removed++;
			}
		}
	}
	return removed;
}
