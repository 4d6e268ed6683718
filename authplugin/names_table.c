/*
 * The plugin's name-keyed tables (see names_table.h).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "names_table.h"

static uint64_t hash(const char *s, size_t n)
{
	uint64_t h = 1469598103934665603ULL; /* FNV-1a */
	for (size_t i = 0; i < n; i++) {
		h ^= (unsigned char)s[i];
		h *= 1099511628211ULL;
	}
	return h;
}

int names_init(struct names_table *t)
{
	memset(t, 0, sizeof(*t));
	t->nbuckets = 256;
	t->buckets = calloc(t->nbuckets, sizeof(*t->buckets));
	if (t->buckets == NULL) {
		t->nbuckets = 0; /* names_free stays safe */
		return -1;
	}
	return 0;
}

void names_free(struct names_table *t, void (*free_node)(struct name_node *))
{
	for (size_t i = 0; i < t->nbuckets && free_node; i++) {
		struct name_node *e = t->buckets[i];
		while (e) {
			struct name_node *next = e->next;
			free_node(e);
			e = next;
		}
	}
	free(t->buckets);
	memset(t, 0, sizeof(*t));
}

struct name_node **names_link(struct names_table *t, const char *key, size_t n)
{
	struct name_node **pp = &t->buckets[hash(key, n) & (t->nbuckets - 1)];
	for (; *pp; pp = &(*pp)->next)
		if ((*pp)->key_len == n && memcmp((*pp)->key, key, n) == 0)
			break;
	return pp;
}

struct name_node *names_find(const struct names_table *t, const char *key, size_t n)
{
	return *names_link((struct names_table *)t, key, n);
}

/* Doubles the bucket array; on allocation failure keeps the old one
 * (longer chains, still correct). */
static void grow(struct names_table *t)
{
	size_t n = t->nbuckets * 2;
	struct name_node **nb = calloc(n, sizeof(*nb));
	if (nb == NULL)
		return;
	for (size_t i = 0; i < t->nbuckets; i++) {
		struct name_node *e = t->buckets[i];
		while (e) {
			struct name_node *next = e->next;
			size_t s = hash(e->key, e->key_len) & (n - 1);
			e->next = nb[s];
			nb[s] = e;
			e = next;
		}
	}
	free(t->buckets);
	t->buckets = nb;
	t->nbuckets = n;
}

void names_insert(struct names_table *t, struct name_node *node)
{
	size_t s = hash(node->key, node->key_len) & (t->nbuckets - 1);
	node->next = t->buckets[s];
	t->buckets[s] = node;
	if (++t->count > t->nbuckets)
		grow(t);
}

void names_unlink(struct names_table *t, struct name_node *node)
{
	struct name_node **pp = &t->buckets[hash(node->key, node->key_len) & (t->nbuckets - 1)];
	while (*pp != node)
		pp = &(*pp)->next;
	*pp = node->next;
	t->count--;
}

size_t names_remove_if(struct names_table *t, bool (*gone)(const struct name_node *, void *),
                       void (*drop)(struct name_node *, void *), void *ctx)
{
	size_t removed = 0;
	for (size_t i = 0; i < t->nbuckets; i++) {
		struct name_node **pp = &t->buckets[i];
		while (*pp) {
			struct name_node *e = *pp;
			if (gone(e, ctx)) {
				*pp = e->next;
				drop(e, ctx);
				t->count--;
				removed++;
			} else {
				pp = &e->next;
			}
		}
	}
	return removed;
}

bool ctl_word(const char **p, const char *end, const char **w, size_t *n)
{
	if (*p >= end)
		return false;
	const char *sp = memchr(*p, ' ', (size_t)(end - *p));
	*w = *p;
	*n = (size_t)((sp ? sp : end) - *p);
	*p = sp ? sp + 1 : end;
	return *n > 0;
}

int ctl_lines(const char *payload, size_t len, bool (*line)(const char *, const char *, void *),
              void *ctx)
{
	const char *p = payload, *end = payload + len;
	int applied = 0;

	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *line_end = nl ? nl : end;
		if (line_end > p) {
			if (!line(p, line_end, ctx))
				return -1;
			applied++;
		}
		p = nl ? nl + 1 : end;
	}
	return applied;
}
