/* Unit tests: posts held while Redis cannot take them (bridge/hold.c):
 * the memory bound, order across batches put back out of order, merging
 * into full calls, the time bound that spares posts that may be in, and
 * which Redis errors mean the script ran nothing. */
#include <stdlib.h>

#include "check.h"
#include "hold.h"

/* A batch of n posts arrived at times since0, since0 + 1, ... */
static struct post_batch *batch(unsigned long long order, int n, double since0)
{
	struct post_batch *b = calloc(1, sizeof(*b));
	b->order = order;
	for (int i = 0; i < n; i++) {
		b->p[i].since = since0 + i;
		b->p[i].cost = 100;
		b->n++;
	}
	return b;
}

static int refused;
static double refused_since[16];

static void refuse(struct pending_post *p, void *ctx)
{
	(void)ctx;
	if (refused < 16)
		refused_since[refused] = p->since;
	refused++;
}

static void drain(struct hold *h)
{
	struct post_batch *b;
	while ((b = hold_take(h)) != NULL)
		free(b);
}

int main(void)
{
	struct hold h = {0};

	/* the memory bound: posts and bytes taken and not answered */
	CHECK(hold_admit(&h, 2, 1000, 400, false));
	CHECK(hold_admit(&h, 2, 1000, 400, false));
	CHECK(!hold_admit(&h, 2, 1000, 10, false)); /* a third post */
	hold_release(&h, 400);
	CHECK(!hold_admit(&h, 2, 1000, 700, false)); /* 1100 bytes */
	CHECK(hold_admit(&h, 2, 1000, 600, false));
	CHECK(hold_admit(&h, 2, 1000, 5000, true)); /* may be in: never refused */
	CHECK_INT(h.posts, 3);
	hold_release(&h, 400);
	hold_release(&h, 600);
	hold_release(&h, 5000);
	CHECK_INT(h.posts, 0);
	CHECK_INT(h.bytes, 0);

	/* batches put back out of order are taken in the order they were
	 * made, merged into one call while they fit */
	hold_put(&h, batch(3, 100, 30));
	hold_put(&h, batch(1, 10, 10));
	hold_put(&h, batch(2, 20, 20)); /* merged into 1: 30 posts */
	CHECK_INT(h.held, 130);
	struct post_batch *b = hold_take(&h);
	CHECK_INT(b->order, 1);
	CHECK_INT(b->n, 30); /* 1 and 2; 3 does not fit beside them */
	CHECK(b->p[0].since == 10 && b->p[10].since == 20);
	free(b);
	b = hold_take(&h);
	CHECK_INT(b->order, 3);
	CHECK_INT(b->n, 100);
	free(b);
	CHECK(hold_take(&h) == NULL);
	CHECK_INT(h.held, 0);

	/* replayed batches (order 0) go before anything new, in turn */
	hold_put(&h, batch(5, 100, 0));
	hold_put(&h, batch(0, 100, 0));
	hold_put(&h, batch(0, 100, 1000));
	b = hold_take(&h);
	CHECK_INT(b->order, 0);
	CHECK(b->p[0].since == 0);
	free(b);
	b = hold_take(&h);
	CHECK(b->order == 0 && b->p[0].since == 1000);
	free(b);
	drain(&h);

	/* the time bound: refused oldest first up to the cutoff, sparing
	 * posts that may be in, a batch left empty freed */
	struct post_batch *old = batch(1, 4, 0); /* since 0, 1, 2, 3 */
	old->p[1].maybe_in = true;
	hold_put(&h, old);
	hold_put(&h, batch(200, 126, 50)); /* does not fit beside it: its own batch */
	refused = 0;
	size_t n = hold_expire(&h, 2.5, refuse, NULL);
	CHECK_INT(n, 2); /* since 0 and 2; 1 may be in; 3 is younger */
	CHECK(refused_since[0] == 0 && refused_since[1] == 2);
	CHECK_INT(h.held, 2 + 126);
	n = hold_expire(&h, 1000, refuse, NULL);
	CHECK_INT(n, 1 + 126);
	CHECK_INT(h.held, 1); /* the one that may be in */
	b = hold_take(&h);
	CHECK(b && b->n == 1 && b->p[0].maybe_in);
	free(b);
	CHECK(hold_take(&h) == NULL);

	/* a batch emptied by the bound is gone */
	hold_put(&h, batch(1, 2, 0));
	CHECK_INT(hold_expire(&h, 10, refuse, NULL), 2);
	CHECK(h.first == NULL);

	/* errors that mean "nothing ran": hold and send again */
	CHECK(hold_retryable("NOSCRIPT No matching script. Please use EVAL."));
	CHECK(hold_retryable("LOADING Redis is loading the dataset in memory"));
	CHECK(hold_retryable("READONLY You can't write against a read only replica. script: x"));
	CHECK(hold_retryable("NOREPLICAS Not enough good replicas to write. script: x"));
	CHECK(hold_retryable("BUSY Redis is busy running a script."));
	CHECK(hold_retryable("MASTERDOWN Link with MASTER is down"));
	CHECK(hold_retryable("OOM command not allowed when used memory > 'maxmemory'."));
	/* anything else may have run part of the script: not sent again */
	CHECK(!hold_retryable("ERR user_script:1: attempt to compare nil"));
	CHECK(!hold_retryable("BUSYKEY Target key name already exists."));
	CHECK(!hold_retryable("WRONGTYPE Operation against a key"));
	CHECK(!hold_retryable(NULL));
	return check_report();
}
