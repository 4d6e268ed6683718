/*
 * history_fit (storage/history.h): which messages a history page of at
 * most HISTORY_PAGE_BYTES holds, the ones nearest its anchor, so paging
 * by seq from the page's edge reaches every message (issue 22, finding 8).
 */
#include <stdlib.h>

#include "check.h"
#include "history.h"

static struct history_part msg(size_t len)
{
	return (struct history_part){"x", len};
}

static void test_everything_fits(void)
{
	struct history_part m[3] = {msg(10), msg(10), msg(10)};
	size_t first = 99, count = 99;

	history_fit(m, 3, false, 32, &first, &count); /* 10 + 11 + 11 */
	CHECK_INT(first, 0);
	CHECK_INT(count, 3);
	history_fit(m, 3, true, 32, &first, &count);
	CHECK_INT(first, 0);
	CHECK_INT(count, 3);
	history_fit(m, 0, false, 32, &first, &count);
	CHECK_INT(count, 0);
}

static void test_the_ones_nearest_the_anchor_are_kept(void)
{
	struct history_part m[5] = {msg(10), msg(10), msg(10), msg(10), msg(20)};
	size_t first, count;

	/* before / latest: the newest; the comma counts */
	history_fit(m, 5, false, 31, &first, &count); /* 20 + 11 = 31 */
	CHECK_INT(first, 3);
	CHECK_INT(count, 2);
	history_fit(m, 5, false, 30, &first, &count);
	CHECK_INT(first, 4);
	CHECK_INT(count, 1);
	/* after: the oldest */
	history_fit(m, 5, true, 31, &first, &count); /* 10 + 11 = 21, + 11 = 32 */
	CHECK_INT(first, 0);
	CHECK_INT(count, 2);
}

static void test_one_message_always_so_paging_moves_on(void)
{
	struct history_part m[2] = {msg(5000), msg(10)};
	size_t first, count;

	history_fit(m, 2, true, 100, &first, &count);
	CHECK_INT(first, 0);
	CHECK_INT(count, 1);
	struct history_part big[2] = {msg(10), msg(5000)};
	history_fit(big, 2, false, 100, &first, &count);
	CHECK_INT(first, 1);
	CHECK_INT(count, 1);
}

static void test_200_control_character_messages_take_several_pages(void)
{
	/* 4,096 control characters escape to 24,576 bytes, plus the envelope */
	struct history_part *m = calloc(200, sizeof(*m));
	size_t first, count, seen = 0;

	for (int i = 0; i < 200; i++)
		m[i] = msg(24576 + 150);
	for (size_t n = 200; n > 0; n = first) {
		history_fit(m, n, false, HISTORY_PAGE_BYTES, &first, &count);
		CHECK(count > 0 && count < 50);
		CHECK_INT(first + count, n);
		seen += count;
	}
	CHECK_INT(seen, 200);
	free(m);
}

int main(void)
{
	test_everything_fits();
	test_the_ones_nearest_the_anchor_are_kept();
	test_one_message_always_so_paging_moves_on();
	test_200_control_character_messages_take_several_pages();
	return check_report();
}
