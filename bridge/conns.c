/*
 * The broker's live connections (see conns.h): a binary tree from libc.
 */
#include <search.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conns.h"

static int cmp(const void *a, const void *b)
{
	return strcmp(a, b);
}

static char *item_of(const char *user, const char *conn)
{
	size_t n = strlen(user) + 1 + strlen(conn) + 1;
	char *s = malloc(n);
	if (s)
		snprintf(s, n, "%s %s", user, conn);
	return s;
}

int conns_up(struct conns *c, const char *user, const char *conn)
{
	char *s = item_of(user, conn);
	if (s == NULL)
		return -1;
	char **found = tsearch(s, &c->root, cmp);
	if (found == NULL) {
		free(s);
		return -1;
	}
	if (*found != s)
		free(s); /* there already */
	else
		c->n++;
	return 0;
}

static void remove_item(struct conns *c, const char *item)
{
	char **found = tfind(item, &c->root, cmp);
	if (found == NULL)
		return;
	char *s = *found;
	tdelete(item, &c->root, cmp);
	free(s);
	c->n--;
}

void conns_down(struct conns *c, const char *user, const char *conn)
{
	char *s = item_of(user, conn);
	if (s == NULL)
		return;
	remove_item(c, s);
	free(s);
}

struct walk {
	void (*fn)(const char *item, size_t user_len, void *ctx);
	void *ctx;
};

static void visit(const void *node, VISIT which, void *closure)
{
	struct walk *w = closure;
	const char *item = *(char *const *)node;
	if (which == postorder || which == leaf)
		w->fn(item, strcspn(item, " "), w->ctx);
}

void conns_each(const struct conns *c, void (*fn)(const char *item, size_t user_len, void *ctx),
                void *ctx)
{
	struct walk w = {fn, ctx};
	twalk_r(c->root, visit, &w);
}

struct stale {
	const char *boot;
	size_t boot_len;
	const char **items;
	size_t n;
};

static void collect_stale(const char *item, size_t user_len, void *ctx)
{
	struct stale *s = ctx;
	const char *conn = item + user_len + 1;
	if (strncmp(conn, s->boot, s->boot_len) != 0 || conn[s->boot_len] != '-')
		s->items[s->n++] = item;
}

void conns_keep_boot(struct conns *c, const char *boot)
{
	struct stale s = {boot, strlen(boot), NULL, 0};

	if (c->n == 0)
		return;
	s.items = malloc(c->n * sizeof(*s.items));
	if (s.items == NULL) {
		conns_free(c); /* out of memory: the next reports build it again */
		return;
	}
	conns_each(c, collect_stale, &s);
	for (size_t i = 0; i < s.n; i++)
		remove_item(c, s.items[i]);
	free(s.items);
}

void conns_free(struct conns *c)
{
	tdestroy(c->root, free);
	c->root = NULL;
	c->n = 0;
}
