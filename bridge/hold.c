/*
 * Posts waiting for Redis (see hold.h).
 */
#include <stdlib.h>
#include <string.h>

#include "hold.h"

bool hold_admit(struct hold *h, long max_posts, long max_bytes, size_t cost, bool force)
{
	if (!force && (h->posts >= max_posts || h->bytes + (long)cost > max_bytes))
		return false;
	h->posts++;
	h->bytes += (long)cost;
	return true;
}

void hold_release(struct hold *h, size_t cost)
{
	if (h->posts > 0)
		h->posts--;
	h->bytes = h->bytes > (long)cost ? h->bytes - (long)cost : 0;
}

/* Moves every post of from to the end of to (the caller checked they fit). */
static void merge(struct post_batch *to, struct post_batch *from)
{
	memcpy(&to->p[to->n], from->p, (size_t)from->n * sizeof(from->p[0]));
	to->n += from->n;
	free(from);
}

void hold_put(struct hold *h, struct post_batch *batch)
{
	struct post_batch **at = &h->first, *before = NULL;

	h->held += (size_t)batch->n;
	while (*at && (*at)->order <= batch->order) {
		before = *at;
		at = &(*at)->next;
	}
	if (before && before->n + batch->n <= BATCH_MAX) {
		merge(before, batch);
		return;
	}
	batch->next = *at;
	*at = batch;
}

struct post_batch *hold_take(struct hold *h)
{
	struct post_batch *batch = h->first;

	if (batch == NULL)
		return NULL;
	h->first = batch->next;
	while (h->first && batch->n + h->first->n <= BATCH_MAX) {
		struct post_batch *next = h->first->next;
		merge(batch, h->first);
		h->first = next;
	}
	batch->next = NULL;
	h->held -= (size_t)batch->n;
	return batch;
}

size_t hold_expire(struct hold *h, double cutoff, void (*refuse)(struct pending_post *p, void *ctx),
                   void *ctx)
{
	struct post_batch **at = &h->first;
	size_t n = 0;

	/* in arrival order but for posts that may be in (sent again after a
	 * lost answer), which are skipped: the first younger one ends it */
	while (*at) {
		struct post_batch *batch = *at;
		int kept = 0;
		bool younger = false;
		for (int i = 0; i < batch->n; i++) {
			struct pending_post *p = &batch->p[i];
			if (!younger && !p->maybe_in && p->since < cutoff) {
				refuse(p, ctx);
				n++;
				continue;
			}
			if (!p->maybe_in)
				younger = true;
			batch->p[kept++] = *p;
		}
		h->held -= (size_t)(batch->n - kept);
		batch->n = kept;
		if (kept == 0) {
			*at = batch->next;
			free(batch);
			continue;
		}
		if (younger)
			break;
		at = &batch->next;
	}
	return n;
}

bool hold_retryable(const char *err)
{
	static const char *const codes[] = {"NOSCRIPT", "LOADING",    "BUSY ", "READONLY",
	                                    "MASTERDOWN", "NOREPLICAS", "OOM "};

	if (err == NULL)
		return false;
	for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++)
		if (strncmp(err, codes[i], strlen(codes[i])) == 0)
			return true;
	return false;
}
