/*
 * Private-room membership in memory (see rooms.h): a chained hash of rooms,
 * each with its members as a sorted array searched by bisection.
 */
#include <stdlib.h>
#include <string.h>

#include "chat/names.h"
#include "rooms.h"

struct room_entry {
	char name[NAME_ROOM_MAX + 1];
	size_t name_len;
	bool private;
	uint64_t version;
	char (*members)[NAME_USER_MAX + 1]; /* sorted */
	size_t nmembers;
	struct room_entry *next;
};

static uint64_t hash(const char *s, size_t n)
{
	uint64_t h = 1469598103934665603ULL; /* FNV-1a */
	for (size_t i = 0; i < n; i++) {
		h ^= (unsigned char)s[i];
		h *= 1099511628211ULL;
	}
	return h;
}

int rooms_init(struct room_table *t)
{
	memset(t, 0, sizeof(*t));
	t->nbuckets = 256;
	t->buckets = calloc(t->nbuckets, sizeof(*t->buckets));
	return t->buckets ? 0 : -1;
}

static void entry_free(struct room_entry *e)
{
	free(e->members);
	free(e);
}

void rooms_free(struct room_table *t)
{
	for (size_t i = 0; i < t->nbuckets; i++) {
		struct room_entry *e = t->buckets[i];
		while (e) {
			struct room_entry *next = e->next;
			entry_free(e);
			e = next;
		}
	}
	free(t->buckets);
	memset(t, 0, sizeof(*t));
}

static struct room_entry *find(const struct room_table *t, const char *room, size_t n)
{
	struct room_entry *e = t->buckets[hash(room, n) & (t->nbuckets - 1)];
	for (; e; e = e->next)
		if (e->name_len == n && memcmp(e->name, room, n) == 0)
			return e;
	return NULL;
}

static void grow(struct room_table *t)
{
	size_t n = t->nbuckets * 2;
	struct room_entry **nb = calloc(n, sizeof(*nb));
	if (nb == NULL)
		return;
	for (size_t i = 0; i < t->nbuckets; i++) {
		struct room_entry *e = t->buckets[i];
		while (e) {
			struct room_entry *next = e->next;
			size_t s = hash(e->name, e->name_len) & (n - 1);
			e->next = nb[s];
			nb[s] = e;
			e = next;
		}
	}
	free(t->buckets);
	t->buckets = nb;
	t->nbuckets = n;
}

static int cmp_member(const void *a, const void *b)
{
	return strcmp(a, b);
}

/* Splits the next space-separated word off [*p, end). */
static bool word(const char **p, const char *end, const char **w, size_t *n)
{
	if (*p >= end)
		return false;
	const char *sp = memchr(*p, ' ', (size_t)(end - *p));
	*w = *p;
	*n = (size_t)((sp ? sp : end) - *p);
	*p = sp ? sp + 1 : end;
	return *n > 0;
}

/* Parses one line into a new entry; NULL when malformed or out of memory. */
static struct room_entry *parse_line(const char *p, const char *end)
{
	const char *w;
	size_t n;
	char num[24];
	struct room_entry *e = calloc(1, sizeof(*e));

	if (e == NULL)
		return NULL;
	if (end[-1] == ' ') /* a trailing space would hide an empty word */
		goto bad;
	if (!word(&p, end, &w, &n) || n != 4 || memcmp(w, "room", 4) != 0)
		goto bad;
	if (!word(&p, end, &w, &n) || !name_room_valid(w, n))
		goto bad;
	memcpy(e->name, w, n);
	e->name_len = n;
	if (!word(&p, end, &w, &n) || n > 19)
		goto bad;
	for (size_t i = 0; i < n; i++) /* the payload is not NUL-terminated */
		if (w[i] < '0' || w[i] > '9')
			goto bad;
	memcpy(num, w, n);
	num[n] = '\0';
	e->version = strtoull(num, NULL, 10);
	if (!word(&p, end, &w, &n))
		goto bad;
	if (n == 6 && memcmp(w, "public", 6) == 0) {
		return p == end ? e : (entry_free(e), NULL);
	}
	if (n != 7 || memcmp(w, "private", 7) != 0)
		goto bad;
	e->private = true;
	size_t cap = 0;
	while (word(&p, end, &w, &n)) {
		if (!name_user_valid(w, n))
			goto bad;
		if (e->nmembers == cap) {
			cap = cap ? cap * 2 : 8;
			void *nm = realloc(e->members, cap * sizeof(*e->members));
			if (nm == NULL)
				goto bad;
			e->members = nm;
		}
		memcpy(e->members[e->nmembers], w, n);
		e->members[e->nmembers++][n] = '\0';
	}
	if (p != end)
		goto bad; /* an empty word: two spaces or a trailing space */
	if (e->nmembers)
		qsort(e->members, e->nmembers, sizeof(*e->members), cmp_member);
	return e;
bad:
	entry_free(e);
	return NULL;
}

/* Puts e in place of the room's state unless that one is newer. */
static void install(struct room_table *t, struct room_entry *e)
{
	struct room_entry **pp = &t->buckets[hash(e->name, e->name_len) & (t->nbuckets - 1)];
	for (; *pp; pp = &(*pp)->next) {
		if ((*pp)->name_len == e->name_len && memcmp((*pp)->name, e->name, e->name_len) == 0) {
			if ((*pp)->version > e->version) {
				entry_free(e);
				return;
			}
			e->next = (*pp)->next;
			entry_free(*pp);
			*pp = e;
			return;
		}
	}
	e->next = NULL;
	*pp = e;
	if (++t->count > t->nbuckets)
		grow(t);
}

int rooms_apply(struct room_table *t, const char *payload, size_t len)
{
	const char *p = payload, *end = payload + len;
	int applied = 0;

	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *line_end = nl ? nl : end;
		if (line_end > p) {
			struct room_entry *e = parse_line(p, line_end);
			if (e == NULL)
				return -1;
			install(t, e);
			applied++;
		}
		p = nl ? nl + 1 : end;
	}
	return applied;
}

bool rooms_visible(void *ctx, const char *user, size_t user_len, const char *room,
                   size_t room_len)
{
	const struct room_entry *e = find(ctx, room, room_len);
	char key[NAME_USER_MAX + 1];

	if (e == NULL || !e->private)
		return true;
	if (user_len > NAME_USER_MAX || e->nmembers == 0)
		return false;
	memcpy(key, user, user_len);
	key[user_len] = '\0';
	return bsearch(key, e->members, e->nmembers, sizeof(*e->members), cmp_member) != NULL;
}
