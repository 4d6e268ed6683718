/*
 * Member sets (see members.h).
 */
#include <stdlib.h>
#include <string.h>

#include "members.h"

void members_free(struct member_set *s)
{
	free(s->v);
	memset(s, 0, sizeof(*s));
}

static int grow(struct member_set *s)
{
	if (s->n < s->cap)
		return 0;
	size_t cap = s->cap ? s->cap * 2 : 8;
	void *v = realloc(s->v, cap * sizeof(*s->v));
	if (v == NULL)
		return -1;
	s->v = v;
	s->cap = cap;
	return 0;
}

int members_append(struct member_set *s, const char *user, size_t len)
{
	if (len > NAME_USER_MAX || grow(s) != 0)
		return -1;
	memcpy(s->v[s->n], user, len);
	s->v[s->n++][len] = '\0';
	return 0;
}

static int cmp(const void *a, const void *b)
{
	return strcmp(a, b);
}

void members_sort(struct member_set *s)
{
	if (s->n < 2)
		return;
	qsort(s->v, s->n, sizeof(*s->v), cmp);
	size_t k = 1;
	for (size_t i = 1; i < s->n; i++)
		if (strcmp(s->v[i], s->v[k - 1]) != 0) {
			if (k != i)
				memcpy(s->v[k], s->v[i], sizeof(*s->v));
			k++;
		}
	s->n = k;
}

/* The index of the first name not below key (s->n when none). */
static size_t lower_bound(const struct member_set *s, const char *key)
{
	size_t lo = 0, hi = s->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (strcmp(s->v[mid], key) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

bool members_has(const struct member_set *s, const char *user, size_t len)
{
	char key[NAME_USER_MAX + 1];
	if (len > NAME_USER_MAX || s->n == 0)
		return false;
	memcpy(key, user, len);
	key[len] = '\0';
	size_t i = lower_bound(s, key);
	return i < s->n && strcmp(s->v[i], key) == 0;
}

int members_set(struct member_set *s, const char *user, size_t len, bool in)
{
	char key[NAME_USER_MAX + 1];
	if (len > NAME_USER_MAX)
		return -1;
	memcpy(key, user, len);
	key[len] = '\0';
	size_t i = lower_bound(s, key);
	bool there = i < s->n && strcmp(s->v[i], key) == 0;
	if (there == in)
		return 0;
	if (!in) {
		memmove(s->v[i], s->v[i + 1], (s->n - i - 1) * sizeof(*s->v));
		s->n--;
		return 0;
	}
	if (grow(s) != 0)
		return -1;
	memmove(s->v[i + 1], s->v[i], (s->n - i) * sizeof(*s->v));
	memcpy(s->v[i], key, sizeof(key));
	s->n++;
	return 0;
}
