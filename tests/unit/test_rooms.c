/* Unit tests: the plugin's private-room table and its control lines. */
#include "check.h"
#include "rooms.h"

#define S(x) x, sizeof(x) - 1

static bool sees(struct room_table *t, const char *user, const char *room)
{
	return rooms_visible(t, user, strlen(user), room, strlen(room));
}

int main(void)
{
	struct room_table t;

	CHECK_INT(rooms_init(&t), 0);
	/* unknown rooms are public */
	CHECK(sees(&t, "bob", "secret"));

	CHECK_INT(rooms_apply(&t, S("room secret 1 private carol alice")), 1);
	CHECK(sees(&t, "alice", "secret"));
	CHECK(sees(&t, "carol", "secret"));
	CHECK(!sees(&t, "bob", "secret"));
	CHECK(!sees(&t, "alic", "secret"));
	CHECK(!sees(&t, "alicex", "secret"));
	CHECK(sees(&t, "bob", "general"));

	/* a newer state replaces, an older one is ignored */
	CHECK_INT(rooms_apply(&t, S("room secret 3 private carol")), 1);
	CHECK(!sees(&t, "alice", "secret"));
	CHECK_INT(rooms_apply(&t, S("room secret 2 private alice carol bob")), 1);
	CHECK(!sees(&t, "alice", "secret"));
	CHECK(!sees(&t, "bob", "secret"));

	/* several lines; an empty private room; a public state */
	CHECK_INT(rooms_apply(&t, S("room a 1 private x\nroom b 1 private\n\nroom c 1 public\n")), 3);
	CHECK(sees(&t, "x", "a"));
	CHECK(!sees(&t, "x", "b"));
	CHECK(sees(&t, "x", "c"));

	/* malformed lines change nothing from the bad line on */
	const char *bad[] = {"room", "room secret", "room secret x private", "room Bad 9 private a",
	                     "room secret 9 hidden", "room secret 9 private Bad", "room secret 9 public x",
	                     "room secret 9 private a  b", "room secret 9 private a ", "chamber s 1 public",
	                     "room secret 99999999999999999999999 private a"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		CHECK_INT(rooms_apply(&t, bad[i], strlen(bad[i])), -1);
		CHECK(sees(&t, "carol", "secret"));
		CHECK(!sees(&t, "a", "secret"));
	}
	CHECK_INT(rooms_apply(&t, S("room d 1 private u\nroom e x")), -1);
	CHECK(sees(&t, "u", "d") && !sees(&t, "v", "d")); /* the good first line stays */

	/* many rooms and members: the table grows */
	char line[64];
	for (int i = 0; i < 2000; i++) {
		int n = snprintf(line, sizeof(line), "room r%d 1 private m%d m%d", i, i, i + 1);
		CHECK_INT(rooms_apply(&t, line, (size_t)n), 1);
	}
	CHECK(sees(&t, "m1500", "r1500") && sees(&t, "m1501", "r1500") && !sees(&t, "m1502", "r1500"));
	rooms_free(&t);
	return check_report();
}
