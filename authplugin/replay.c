/*
 * The paced replay of connection reports (see replay.h).
 */
#include <stdlib.h>
#include <string.h>

#include "replay.h"

struct fill {
	struct replay_item *items;
	size_t n;
};

static void add(const struct client_entry *e, void *ctx)
{
	struct fill *f = ctx;
	f->items[f->n++] = (struct replay_item){e->key, e->conn_id};
}

int replay_start(struct replay *r, const struct client_table *t)
{
	struct fill f = {NULL, 0};

	replay_free(r);
	if (t->count > 0 && (f.items = malloc(t->count * sizeof(*f.items))) == NULL)
		return -1;
	clients_each(t, add, &f);
	r->items = f.items;
	r->n = f.n;
	r->next = 0;
	return 0;
}

bool replay_pending(const struct replay *r)
{
	return r->next < r->n;
}

const struct client_entry *replay_next(struct replay *r, const struct client_table *t)
{
	while (r->next < r->n) {
		struct replay_item it = r->items[r->next++];
		if (r->next == r->n)
			replay_free(r); /* done: the snapshot goes at once */
		const struct client_entry *e = clients_get(t, it.key);
		if (e != NULL && e->conn_id == it.conn_id)
			return e;
	}
	return NULL;
}

void replay_free(struct replay *r)
{
	free(r->items);
	memset(r, 0, sizeof(*r));
}
