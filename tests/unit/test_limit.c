/* Unit tests: the bridge's local token buckets (bridge/limit.c). */
#include <stdlib.h>

#include "check.h"
#include "limit.h"

int main(void)
{
	struct limit_table *t = calloc(1, sizeof(*t));
	double now = 100.0;

	/* burst 3, then 2 a second */
	for (int i = 0; i < 3; i++)
		CHECK_INT(limit_take(t, "alice", 2, 3, now, 0), LIMIT_PASS);
	CHECK_INT(limit_take(t, "alice", 2, 3, now, 0), LIMIT_REFUSE);
	CHECK_INT(limit_take(t, "alice", 2, 3, now + 0.25, 0), LIMIT_REFUSE);
	CHECK_INT(limit_take(t, "alice", 2, 3, now + 0.5, 0), LIMIT_PASS);
	CHECK_INT(limit_take(t, "alice", 2, 3, now + 0.5, 0), LIMIT_REFUSE);
	/* another user has a bucket of their own */
	CHECK_INT(limit_take(t, "bob", 2, 3, now + 0.5, 0), LIMIT_PASS);
	/* a refund gives back what Redis did not spend */
	limit_refund(t, "alice", 3);
	CHECK_INT(limit_take(t, "alice", 2, 3, now + 0.5, 0), LIMIT_PASS);
	CHECK_INT(limit_take(t, "alice", 2, 3, now + 0.5, 0), LIMIT_REFUSE);
	/* never above the burst, however long idle */
	for (int i = 0; i < 3; i++)
		CHECK_INT(limit_take(t, "alice", 2, 3, now + 1000, 0), LIMIT_PASS);
	CHECK_INT(limit_take(t, "alice", 2, 3, now + 1000, 0), LIMIT_REFUSE);
	limit_refund(t, "alice", 3);
	limit_refund(t, "alice", 3);
	limit_refund(t, "alice", 3);
	limit_refund(t, "alice", 3);
	for (int i = 0; i < 3; i++)
		CHECK_INT(limit_take(t, "alice", 2, 3, now + 1000, 0), LIMIT_PASS);
	CHECK_INT(limit_take(t, "alice", 2, 3, now + 1000, 0), LIMIT_REFUSE);

	/* ask_every: one refusal a second still goes to Redis (for its notice) */
	for (int i = 0; i < 3; i++)
		CHECK_INT(limit_take(t, "carol", 1, 3, now, 1.0), LIMIT_PASS);
	CHECK_INT(limit_take(t, "carol", 1, 3, now, 1.0), LIMIT_ASK);
	CHECK_INT(limit_take(t, "carol", 1, 3, now + 0.1, 1.0), LIMIT_REFUSE);
	CHECK_INT(limit_take(t, "carol", 1, 3, now + 0.9, 1.0), LIMIT_REFUSE);
	CHECK_INT(limit_take(t, "carol", 1, 3, now + 1.0, 1.0), LIMIT_PASS);
	CHECK_INT(limit_take(t, "carol", 1, 3, now + 1.0, 1.0), LIMIT_ASK);

	/* a user pushed out by a collision comes back with a full bucket: find
	 * two ids in one slot by brute force */
	char a[16] = "u0", b[16];
	int found = 0;
	for (int i = 1; i < 100000 && !found; i++) {
		snprintf(b, sizeof(b), "u%d", i);
		struct limit_table *probe = calloc(1, sizeof(*probe));
		limit_take(probe, a, 1, 1, now, 0);
		limit_take(probe, b, 1, 1, now, 0);
		found = limit_take(probe, a, 1, 1, now, 0) == LIMIT_PASS;
		free(probe);
	}
	CHECK(found);
	limit_take(t, a, 1, 1, now, 0);
	CHECK_INT(limit_take(t, a, 1, 1, now, 0), LIMIT_REFUSE);
	limit_take(t, b, 1, 1, now, 0);
	CHECK_INT(limit_take(t, a, 1, 1, now, 0), LIMIT_PASS);
	free(t);
	return check_report();
}
