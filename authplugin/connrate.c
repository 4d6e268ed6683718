/*
 * The per-user CONNECT budget (see connrate.h).
 */
#include <stdlib.h>
#include <string.h>

#include "chat/names.h"
#include "connrate.h"

struct connrate_bucket {
	struct name_node node; /* first: the table's node is the bucket */
	char user[NAME_USER_MAX + 1];
	double tokens; /* at time at_ms */
	int64_t at_ms;
};

int connrate_init(struct connrate_table *t, long burst, long per_min)
{
	t->burst = (double)burst;
	t->per_ms = (double)per_min / 60000.0;
	return names_init(&t->users);
}

static void node_free(struct name_node *n)
{
	free(n);
}

void connrate_free(struct connrate_table *t)
{
	names_free(&t->users, node_free);
}

/* The bucket's tokens at now_ms (never above burst). */
static double level(const struct connrate_table *t, const struct connrate_bucket *b, int64_t now_ms)
{
	double elapsed = now_ms > b->at_ms ? (double)(now_ms - b->at_ms) : 0.0;
	double v = b->tokens + elapsed * t->per_ms;
	return v < t->burst ? v : t->burst;
}

bool connrate_take(struct connrate_table *t, const char *user, int64_t now_ms)
{
	size_t n = strlen(user);
	if (n > NAME_USER_MAX)
		return false;
	struct connrate_bucket *b = (struct connrate_bucket *)names_find(&t->users, user, n);

	if (b == NULL) {
		b = calloc(1, sizeof(*b));
		if (b == NULL)
			return false;
		memcpy(b->user, user, n + 1);
		b->node.key = b->user;
		b->node.key_len = n;
		b->tokens = t->burst;
		b->at_ms = now_ms;
		names_insert(&t->users, &b->node);
	}
	double v = level(t, b, now_ms);
	if (v < 1.0)
		return false;
	b->tokens = v - 1.0;
	b->at_ms = now_ms;
	return true;
}

struct prune {
	const struct connrate_table *t;
	int64_t now_ms;
};

static bool full(const struct name_node *n, void *ctx)
{
	const struct prune *p = ctx;
	return level(p->t, (const struct connrate_bucket *)n, p->now_ms) >= p->t->burst;
}

static void drop(struct name_node *n, void *ctx)
{
	(void)ctx;
	free(n);
}

size_t connrate_prune(struct connrate_table *t, int64_t now_ms)
{
	struct prune p = {t, now_ms};
	return names_remove_if(&t->users, full, drop, &p);
}

size_t connrate_count(const struct connrate_table *t)
{
	return t->users.count;
}
