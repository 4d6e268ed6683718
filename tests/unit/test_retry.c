/* Unit tests: backoff and log pacing for retried paths (bridge/retry.c). */
#include "check.h"
#include "retry.h"

int main(void)
{
	struct backoff bo = {.first = 0.1, .max = 1.0};

	/* 0.1, doubling, never above the ceiling */
	CHECK(backoff_next(&bo) == 0.1);
	CHECK(backoff_next(&bo) == 0.2);
	CHECK(backoff_next(&bo) == 0.4);
	CHECK(backoff_next(&bo) == 0.8);
	CHECK(backoff_next(&bo) == 1.0);
	CHECK(backoff_next(&bo) == 1.0);
	/* a success starts it over */
	backoff_reset(&bo);
	CHECK(backoff_next(&bo) == 0.1);

	/* a persistent error in a busy loop: one line per 10 s, and the
	 * count of what was held back comes with the next one */
	struct ratelog rl = {0};
	unsigned long held = 99;
	int lines = 0;
	for (int i = 0; i < 25000; i++) /* a second of a tight loop */
		if (ratelog_ok(&rl, 100.0 + i / 25000.0, 10.0, &held))
			lines++;
	CHECK_INT(lines, 1);
	CHECK_INT(held, 0);
	CHECK(!ratelog_ok(&rl, 109.9, 10.0, &held));
	CHECK(ratelog_ok(&rl, 110.0, 10.0, &held));
	CHECK_INT(held, 25000);
	CHECK(ratelog_ok(&rl, 120.5, 10.0, &held));
	CHECK_INT(held, 0);
	return check_report();
}
