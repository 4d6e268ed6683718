/*
 * A chained hash table of connections (see clients.h). Lookups happen on
 * every delivery, so they are one hash and, nearly always, one compare.
 */
#include <stdlib.h>
#include <string.h>

#include "clients.h"

static size_t slot(const struct client_table *t, const void *key)
{
	uint64_t h = (uint64_t)(uintptr_t)key;
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	return (size_t)h & (t->nbuckets - 1);
}

int clients_init(struct client_table *t)
{
	memset(t, 0, sizeof(*t));
	t->nbuckets = 1024;
	t->buckets = calloc(t->nbuckets, sizeof(*t->buckets));
	t->next_exp = INT64_MAX;
	return t->buckets ? 0 : -1;
}

void clients_free(struct client_table *t)
{
	for (size_t i = 0; i < t->nbuckets; i++) {
		struct client_entry *e = t->buckets[i];
		while (e) {
			struct client_entry *next = e->next;
			free(e);
			e = next;
		}
	}
	free(t->buckets);
	memset(t, 0, sizeof(*t));
}

/* Doubles the bucket array; on allocation failure keeps the old one. */
static void grow(struct client_table *t)
{
	size_t old_n = t->nbuckets;
	struct client_entry **old = t->buckets;
	struct client_entry **nb = calloc(old_n * 2, sizeof(*nb));

	if (nb == NULL)
		return;
	t->buckets = nb;
	t->nbuckets = old_n * 2;
	for (size_t i = 0; i < old_n; i++) {
		struct client_entry *e = old[i];
		while (e) {
			struct client_entry *next = e->next;
			size_t s = slot(t, e->key);
			e->next = nb[s];
			nb[s] = e;
			e = next;
		}
	}
	free(old);
}

int clients_put(struct client_table *t, const void *key,
                const struct acl_client *acl, int64_t exp, uint64_t conn_id)
{
	struct client_entry *e = (struct client_entry *)clients_get(t, key);

	if (e == NULL) {
		e = calloc(1, sizeof(*e));
		if (e == NULL)
			return -1;
		e->key = key;
		size_t s = slot(t, key);
		e->next = t->buckets[s];
		t->buckets[s] = e;
		if (++t->count > t->nbuckets)
			grow(t);
	}
	e->acl = *acl;
	e->exp = exp;
	e->conn_id = conn_id;
	if (exp < t->next_exp)
		t->next_exp = exp;
	return 0;
}

void clients_set_token(struct client_table *t, const void *key, const char *jti, int64_t iat)
{
	struct client_entry *e = (struct client_entry *)clients_get(t, key);
	if (e == NULL || strlen(jti) > TOKEN_JTI_MAX)
		return;
	strcpy(e->jti, jti);
	e->iat = iat;
}

const struct client_entry *clients_get(const struct client_table *t, const void *key)
{
	for (struct client_entry *e = t->buckets[slot(t, key)]; e; e = e->next)
		if (e->key == key)
			return e;
	return NULL;
}

void clients_remove(struct client_table *t, const void *key)
{
	struct client_entry **pp = &t->buckets[slot(t, key)];
	while (*pp) {
		if ((*pp)->key == key) {
			struct client_entry *e = *pp;
			*pp = e->next;
			free(e);
			t->count--;
			return;
		}
		pp = &(*pp)->next;
	}
}

void clients_each(const struct client_table *t, void (*fn)(const struct client_entry *e, void *ctx),
                  void *ctx)
{
	for (size_t i = 0; i < t->nbuckets; i++)
		for (const struct client_entry *e = t->buckets[i]; e; e = e->next)
			fn(e, ctx);
}

size_t clients_expire(struct client_table *t, int64_t now,
                      void (*fn)(const void *key, void *ctx), void *ctx)
{
	const void **expired = NULL;
	size_t n = 0, cap = 0;
	int64_t next = INT64_MAX;

	for (size_t i = 0; i < t->nbuckets; i++) {
		for (struct client_entry *e = t->buckets[i]; e; e = e->next) {
			if (e->exp > now) {
				if (e->exp < next)
					next = e->exp;
				continue;
			}
			if (n == cap) {
				size_t ncap = cap ? cap * 2 : 64;
				const void **ne = realloc(expired, ncap * sizeof(*ne));
				if (ne == NULL) {
					/* try the rest on the next tick */
					next = now;
					goto run;
				}
				expired = ne;
				cap = ncap;
			}
			expired[n++] = e->key;
		}
	}
run:
	t->next_exp = next;
	for (size_t i = 0; i < n; i++)
		fn(expired[i], ctx);
	free(expired);
	return n;
}
