/* Unit tests: the bridge's copy of its broker's connections
 * (bridge/conns.c), from which presence is rewritten. */
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "conns.h"

static char listed[512];

static void list(const char *item, size_t user_len, void *ctx)
{
	(void)ctx;
	char user[64];
	snprintf(user, sizeof(user), "%.*s", (int)user_len, item);
	strcat(listed, user);
	strcat(listed, "=");
	strcat(listed, item + user_len + 1);
	strcat(listed, ";");
}

static const char *all(struct conns *c)
{
	listed[0] = '\0';
	conns_each(c, list, NULL);
	return listed;
}

int main(void)
{
	struct conns c = {0};

	CHECK_STR(all(&c), "");
	CHECK_INT(conns_up(&c, "zoe", "aa-1"), 0);
	CHECK_INT(conns_up(&c, "bob", "aa-2"), 0);
	CHECK_INT(conns_up(&c, "zoe", "aa-3"), 0);
	CHECK_INT(conns_up(&c, "zoe", "aa-1"), 0); /* reported again: once */
	CHECK_INT(c.n, 3);
	CHECK_STR(all(&c), "bob=aa-2;zoe=aa-1;zoe=aa-3;");
	conns_down(&c, "zoe", "aa-1");
	conns_down(&c, "nobody", "aa-9"); /* not there: nothing */
	CHECK_INT(c.n, 2);
	CHECK_STR(all(&c), "bob=aa-2;zoe=aa-3;");

	/* the broker restarted (boot bb): aa's connections are gone, but for
	 * those reported again under bb before its boot id arrived */
	CHECK_INT(conns_up(&c, "ann", "bb-1"), 0);
	CHECK_INT(conns_up(&c, "bob", "bbx-1"), 0); /* another boot sharing a prefix */
	conns_keep_boot(&c, "bb");
	CHECK_STR(all(&c), "ann=bb-1;");
	CHECK_INT(c.n, 1);
	conns_free(&c);
	CHECK_INT(c.n, 0);
	CHECK_STR(all(&c), "");
	return check_report();
}
