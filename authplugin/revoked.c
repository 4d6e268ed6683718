/*
 * Token revocations in memory (see revoked.h): a chained hash keyed by
 * kind and name.
 */
#include <stdlib.h>
#include <string.h>

#include "chat/names.h"
#include "chat/token.h"
#include "revoked.h"

enum kind { KIND_JTI, KIND_USER };

struct revoked_entry {
	enum kind kind;
	char name[TOKEN_JTI_MAX + 1]; /* a jti or a user id */
	size_t name_len;
	int64_t before, until;
	struct revoked_entry *next;
};

static uint64_t hash(enum kind k, const char *s, size_t n)
{
	uint64_t h = 1469598103934665603ULL ^ (uint64_t)k; /* FNV-1a */
	for (size_t i = 0; i < n; i++) {
		h ^= (unsigned char)s[i];
		h *= 1099511628211ULL;
	}
	return h;
}

int revoked_init(struct revoked_table *t)
{
	memset(t, 0, sizeof(*t));
	t->nbuckets = 256;
	t->buckets = calloc(t->nbuckets, sizeof(*t->buckets));
	return t->buckets ? 0 : -1;
}

void revoked_free(struct revoked_table *t)
{
	for (size_t i = 0; i < t->nbuckets; i++) {
		struct revoked_entry *e = t->buckets[i];
		while (e) {
			struct revoked_entry *next = e->next;
			free(e);
			e = next;
		}
	}
	free(t->buckets);
	memset(t, 0, sizeof(*t));
}

bool revoked_is_ours(const char *payload, size_t len)
{
	return len >= 7 && memcmp(payload, "revoke ", 7) == 0;
}

static struct revoked_entry *find(const struct revoked_table *t, enum kind k, const char *name,
                                  size_t n)
{
	struct revoked_entry *e = t->buckets[hash(k, name, n) & (t->nbuckets - 1)];
	for (; e; e = e->next)
		if (e->kind == k && e->name_len == n && memcmp(e->name, name, n) == 0)
			return e;
	return NULL;
}

static void grow(struct revoked_table *t)
{
	size_t n = t->nbuckets * 2;
	struct revoked_entry **nb = calloc(n, sizeof(*nb));
	if (nb == NULL)
		return; /* longer chains, still correct */
	for (size_t i = 0; i < t->nbuckets; i++) {
		struct revoked_entry *e = t->buckets[i];
		while (e) {
			struct revoked_entry *next = e->next;
			size_t s = hash(e->kind, e->name, e->name_len) & (n - 1);
			e->next = nb[s];
			nb[s] = e;
			e = next;
		}
	}
	free(t->buckets);
	t->buckets = nb;
	t->nbuckets = n;
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

/* A decimal number of 1 to 18 digits (the payload is not NUL-terminated). */
static bool number(const char *w, size_t n, int64_t *out)
{
	int64_t v = 0;
	if (n == 0 || n > 18)
		return false;
	for (size_t i = 0; i < n; i++) {
		if (w[i] < '0' || w[i] > '9')
			return false;
		v = v * 10 + (w[i] - '0');
	}
	*out = v;
	return true;
}

/* Parses one line into e. Returns false when malformed. */
static bool parse_line(const char *p, const char *end, struct revoked_entry *e)
{
	const char *w;
	size_t n;

	memset(e, 0, sizeof(*e));
	if (end[-1] == ' ')
		return false;
	if (!word(&p, end, &w, &n) || n != 6 || memcmp(w, "revoke", 6) != 0)
		return false;
	if (!word(&p, end, &w, &n))
		return false;
	if (n == 3 && memcmp(w, "jti", 3) == 0)
		e->kind = KIND_JTI;
	else if (n == 4 && memcmp(w, "user", 4) == 0)
		e->kind = KIND_USER;
	else
		return false;
	if (!word(&p, end, &w, &n))
		return false;
	if (e->kind == KIND_JTI ? !token_jti_valid(w, n) : !name_user_valid(w, n))
		return false;
	memcpy(e->name, w, n);
	e->name_len = n;
	if (!word(&p, end, &w, &n) || !number(w, n, &e->before))
		return false;
	if (!word(&p, end, &w, &n) || !number(w, n, &e->until))
		return false;
	return p == end;
}

/* Adds e, or widens the entry it names. Returns -1 when out of memory. */
static int install(struct revoked_table *t, const struct revoked_entry *e)
{
	struct revoked_entry *have = find(t, e->kind, e->name, e->name_len);
	if (have) {
		if (e->before > have->before || e->until > have->until)
			t->generation++;
		if (e->before > have->before)
			have->before = e->before;
		if (e->until > have->until)
			have->until = e->until;
		return 0;
	}
	struct revoked_entry *n = malloc(sizeof(*n));
	if (n == NULL)
		return -1;
	*n = *e;
	size_t s = hash(e->kind, e->name, e->name_len) & (t->nbuckets - 1);
	n->next = t->buckets[s];
	t->buckets[s] = n;
	t->generation++;
	if (++t->count > t->nbuckets)
		grow(t);
	return 0;
}

int revoked_apply(struct revoked_table *t, const char *payload, size_t len)
{
	const char *p = payload, *end = payload + len;
	int applied = 0;

	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *line_end = nl ? nl : end;
		if (line_end > p) {
			struct revoked_entry e;
			if (!parse_line(p, line_end, &e) || install(t, &e) != 0)
				return -1;
			applied++;
		}
		p = nl ? nl + 1 : end;
	}
	return applied;
}

bool revoked_match(const struct revoked_table *t, const char *user, const char *jti, int64_t iat,
                   int64_t now)
{
	const struct revoked_entry *e = find(t, KIND_USER, user, strlen(user));
	if (e && e->until > now && iat <= e->before)
		return true;
	size_t n = strlen(jti);
	if (n == 0)
		return false;
	e = find(t, KIND_JTI, jti, n);
	return e && e->until > now;
}

size_t revoked_prune(struct revoked_table *t, int64_t now)
{
	size_t removed = 0;
	for (size_t i = 0; i < t->nbuckets; i++) {
		struct revoked_entry **pp = &t->buckets[i];
		while (*pp) {
			if ((*pp)->until <= now) {
				struct revoked_entry *e = *pp;
				*pp = e->next;
				free(e);
				t->count--;
				removed++;
			} else {
				pp = &(*pp)->next;
			}
		}
	}
	return removed;
}
