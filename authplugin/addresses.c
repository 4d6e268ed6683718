/*
 * Per-address connection counts (see addresses.h): a chained hash whose
 * entries exist only while an address has connections.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "addresses.h"

/* an IPv6 address with a zone fits; longer strings are counted as one */
#define ADDR_MAX 63

struct address_count {
	char addr[ADDR_MAX + 1];
	unsigned long n;
	struct address_count *next;
};

static struct address_count **slot(const struct address_table *t, const char *addr)
{
	uint64_t h = 1469598103934665603ULL;
	for (const char *s = addr; *s && s - addr < ADDR_MAX; s++) {
		h ^= (unsigned char)*s;
		h *= 1099511628211ULL;
	}
	struct address_count **pp = &t->buckets[h & (t->nbuckets - 1)];
	while (*pp && strncmp((*pp)->addr, addr, ADDR_MAX) != 0)
		pp = &(*pp)->next;
	return pp;
}

int addresses_init(struct address_table *t)
{
	t->nbuckets = 4096;
	t->buckets = calloc(t->nbuckets, sizeof(*t->buckets));
	return t->buckets ? ADDRESSES_OK : ADDRESSES_E_NOMEM;
}

void addresses_free(struct address_table *t)
{
	for (size_t i = 0; t->buckets && i < t->nbuckets; i++) {
		for (struct address_count *a = t->buckets[i], *next; a; a = next) {
			next = a->next;
			free(a);
		}
	}
	free(t->buckets);
	t->buckets = NULL;
}

int addresses_take(struct address_table *t, const char *addr, long max)
{
	struct address_count **pp = slot(t, addr);
	if (*pp == NULL) {
		struct address_count *a = calloc(1, sizeof(*a));
		if (a == NULL)
			return ADDRESSES_E_NOMEM;
		strncpy(a->addr, addr, ADDR_MAX);
		*pp = a;
	}
	if ((*pp)->n >= (unsigned long)max)
		return ADDRESSES_E_CAP;
	(*pp)->n++;
	return ADDRESSES_OK;
}

void addresses_release(struct address_table *t, const char *addr)
{
	struct address_count **pp = slot(t, addr);
	struct address_count *a = *pp;
	if (a == NULL)
		return;
	if (a->n > 0)
		a->n--;
	if (a->n == 0) {
		*pp = a->next;
		free(a);
	}
}

unsigned long addresses_count(const struct address_table *t, const char *addr)
{
	struct address_count **pp = slot(t, addr);
	return *pp ? (*pp)->n : 0;
}
