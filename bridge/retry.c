/*
 * Backoff and log pacing for retried paths (see retry.h).
 */
#include "retry.h"

double backoff_next(struct backoff *bo)
{
	double d = bo->next > 0 ? bo->next : bo->first;

	bo->next = d * 2 > bo->max ? bo->max : d * 2;
	return d;
}

void backoff_reset(struct backoff *bo)
{
	bo->next = 0;
}

bool ratelog_ok(struct ratelog *rl, double now, double every, unsigned long *held)
{
	if (now < rl->next) {
		rl->held++;
		return false;
	}
	*held = rl->held;
	rl->held = 0;
	rl->next = now + every;
	return true;
}
