/* The connection caps of connlimit.h: a chained hash table by address. */
#include <stdlib.h>
#include <stdint.h>
#include <string.h>

#include <sodium.h>

#include "connlimit.h"

int connlimit_init(struct connlimit *cl, long total_max, long per_addr)
{
	memset(cl, 0, sizeof(*cl));
	cl->n = 64;
	while (cl->n < (size_t)total_max && cl->n < ((size_t)1 << 20))
		cl->n <<= 1;
	cl->b = calloc(cl->n, sizeof(*cl->b));
	cl->o = calloc(cl->n, sizeof(*cl->o));
	if (cl->b == NULL || cl->o == NULL) {
		free(cl->b);
		free(cl->o);
		return -1;
	}
	cl->total_max = total_max;
	cl->per_addr = per_addr;
	randombytes_buf(cl->key, sizeof(cl->key));
	return 0;
}

void connlimit_free(struct connlimit *cl)
{
	for (size_t i = 0; cl->b && i < cl->n; i++) {
		while (cl->b[i]) {
			struct cl_addr *next = cl->b[i]->next;
			free(cl->b[i]);
			cl->b[i] = next;
		}
	}
	for (size_t i = 0; cl->o && i < cl->n; i++) {
		while (cl->o[i]) {
			struct cl_owner *next = cl->o[i]->next;
			free(cl->o[i]);
			cl->o[i] = next;
		}
	}
	free(cl->b);
	free(cl->o);
	cl->b = NULL;
	cl->o = NULL;
}

static size_t bucket_of(const struct connlimit *cl, const char *addr)
{
	uint64_t h;
	crypto_shorthash((unsigned char *)&h, (const unsigned char *)addr, strlen(addr), cl->key);
	return (size_t)(h & (cl->n - 1));
}

int connlimit_take(struct connlimit *cl, const char *addr, struct cl_addr **out)
{
	size_t len = strlen(addr);

	*out = NULL;
	if (len > CONNLIMIT_ADDR_MAX)
		return CONNLIMIT_E_ADDR; /* not an address we can produce: refuse */
	if (cl->total >= cl->total_max)
		return CONNLIMIT_E_TOTAL;
	size_t k = bucket_of(cl, addr);
	struct cl_addr *a = cl->b[k];
	while (a && strcmp(a->addr, addr) != 0)
		a = a->next;
	if (a == NULL) {
		a = calloc(1, sizeof(*a));
		if (a == NULL)
			return CONNLIMIT_E_NOMEM;
		memcpy(a->addr, addr, len + 1);
		a->bucket = k;
		a->next = cl->b[k];
		cl->b[k] = a;
	}
	if (a->count >= cl->per_addr)
		return CONNLIMIT_E_ADDR;
	a->count++;
	cl->total++;
	*out = a;
	return CONNLIMIT_OK;
}

void connlimit_release(struct connlimit *cl, struct cl_addr *a)
{
	if (a == NULL || a->count <= 0)
		return;
	a->count--;
	cl->total--;
	if (a->count > 0)
		return;
	for (struct cl_addr **p = &cl->b[a->bucket]; *p; p = &(*p)->next) {
		if (*p == a) {
			*p = a->next;
			free(a);
			return;
		}
	}
}

static size_t owner_bucket(const struct connlimit *cl, const void *owner)
{
	uintptr_t v = (uintptr_t)owner;
	v ^= v >> 17;
	v *= 0x9e3779b97f4a7c15ull;
	return (size_t)(v >> 20) & (cl->n - 1);
}

int connlimit_bind(struct connlimit *cl, const void *owner, struct cl_addr *a)
{
	struct cl_owner *o = malloc(sizeof(*o));
	if (o == NULL)
		return -1;
	size_t k = owner_bucket(cl, owner);
	o->owner = owner;
	o->addr = a;
	o->next = cl->o[k];
	cl->o[k] = o;
	return 0;
}

void connlimit_drop(struct connlimit *cl, const void *owner)
{
	for (struct cl_owner **p = &cl->o[owner_bucket(cl, owner)]; *p; p = &(*p)->next) {
		if ((*p)->owner == owner) {
			struct cl_owner *o = *p;
			*p = o->next;
			connlimit_release(cl, o->addr);
			free(o);
			return;
		}
	}
}
