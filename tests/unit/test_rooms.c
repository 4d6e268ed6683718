/* Unit tests: the plugin's private-room table and its control lines
 * (authplugin/rooms.h): whole states, deltas in any order, states in
 * pieces, syncs, and what is open while the table is unsure. */
#include <stdio.h>
#include <stdlib.h>

#include "check.h"
#include "rooms.h"

#define S(x) x, sizeof(x) - 1

static int bridge_conn, other_conn; /* two connections' identities */

static int apply(struct room_table *t, const char *s)
{
	return rooms_apply(t, &bridge_conn, s, strlen(s));
}

static bool reads(struct room_table *t, const char *user, const char *room)
{
	return rooms_visible(t, user, strlen(user), room, strlen(room), ACL_READ);
}

static bool subs(struct room_table *t, const char *user, const char *room)
{
	return rooms_visible(t, user, strlen(user), room, strlen(room), ACL_SUBSCRIBE);
}

static void synced(struct room_table *t)
{
	CHECK_INT(apply(t, "sync begin"), 1);
	CHECK_INT(apply(t, "sync end"), 1);
}

static void whole_states(void)
{
	struct room_table t;
	CHECK_INT(rooms_init(&t), 0);
	synced(&t);
	/* with the set complete, a room without a state is public */
	CHECK(reads(&t, "bob", "secret") && subs(&t, "bob", "secret"));

	CHECK_INT(apply(&t, "room secret 1 private carol alice"), 1);
	CHECK(reads(&t, "alice", "secret") && subs(&t, "alice", "secret"));
	CHECK(reads(&t, "carol", "secret"));
	CHECK(!reads(&t, "bob", "secret") && !subs(&t, "bob", "secret"));
	CHECK(!reads(&t, "alic", "secret"));
	CHECK(!reads(&t, "alicex", "secret"));
	CHECK(reads(&t, "bob", "general"));

	/* a newer state replaces, an older one is ignored */
	CHECK_INT(apply(&t, "room secret 3 private carol"), 1);
	CHECK(!reads(&t, "alice", "secret"));
	CHECK_INT(apply(&t, "room secret 2 private alice carol bob"), 1);
	CHECK(!reads(&t, "alice", "secret"));
	CHECK(!reads(&t, "bob", "secret"));

	/* several lines; an empty private room; a public state */
	CHECK_INT(apply(&t, "room a 1 private x\nroom b 1 private\n\nroom c 1 public\n"), 3);
	CHECK(reads(&t, "x", "a"));
	CHECK(!reads(&t, "x", "b"));
	CHECK(reads(&t, "x", "c"));

	/* malformed lines change nothing from the bad line on */
	const char *bad[] = {"room",
	                     "room secret",
	                     "room secret x private",
	                     "room Bad 9 private a",
	                     "room secret 9 hidden",
	                     "room secret 9 private Bad",
	                     "room secret 9 public x",
	                     "room secret 9 private a  b",
	                     "room secret 9 private a ",
	                     "chamber s 1 public",
	                     "room secret 99999999999999999999999 private a",
	                     "add secret 9",
	                     "add secret 9 a b",
	                     "add secret x a",
	                     "del secret 9 Bad",
	                     "add secret 0 a",
	                     "begin secret",
	                     "begin secret 9 x",
	                     "part secret 9",
	                     "part secret 9 Bad",
	                     "end secret 9 10",
	                     "end secret 9 8 1",
	                     "end secret 9 10 x",
	                     "sync",
	                     "sync later",
	                     "sync begin now",
	                     "add  secret 9 a",
	                     " "};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		CHECK_INT(apply(&t, bad[i]), -1);
		CHECK(reads(&t, "carol", "secret"));
		CHECK(!reads(&t, "a", "secret"));
	}
	CHECK_INT(apply(&t, "room d 1 private u\nroom e x"), -1);
	CHECK(reads(&t, "u", "d") && !reads(&t, "v", "d")); /* the good first line stays */

	/* many rooms and members: the table grows */
	char line[64];
	for (int i = 0; i < 2000; i++) {
		int n = snprintf(line, sizeof(line), "room r%d 1 private m%d m%d", i, i, i + 1);
		CHECK_INT(rooms_apply(&t, &bridge_conn, line, (size_t)n), 1);
	}
	CHECK(reads(&t, "m1500", "r1500") && reads(&t, "m1501", "r1500") &&
	      !reads(&t, "m1502", "r1500"));
	rooms_free(&t);
}

static void deltas(void)
{
	struct room_table t;
	CHECK_INT(rooms_init(&t), 0);
	synced(&t);
	CHECK_INT(apply(&t, "room den 5 private owner"), 1);
	CHECK_INT(apply(&t, "add den 6 ann\nadd den 7 bob\ndel den 8 owner"), 3);
	CHECK(reads(&t, "ann", "den") && reads(&t, "bob", "den") && !reads(&t, "owner", "den"));
	/* an old delta, or one seen twice, changes nothing */
	CHECK_INT(apply(&t, "add den 8 owner\ndel den 6 ann\nadd den 7 bob"), 3);
	CHECK(reads(&t, "ann", "den") && !reads(&t, "owner", "den"));

	/* a gap: the room is closed to every reader until the missing change
	 * comes; subscriptions are still answered (READ guards each delivery) */
	CHECK_INT(apply(&t, "del den 10 bob"), 1);
	CHECK(!reads(&t, "ann", "den") && !reads(&t, "bob", "den") && !reads(&t, "eve", "den"));
	CHECK(subs(&t, "eve", "den") && subs(&t, "ann", "den"));
	CHECK_INT(apply(&t, "add den 9 cat"), 1);
	CHECK(reads(&t, "ann", "den") && reads(&t, "cat", "den") && !reads(&t, "bob", "den"));
	CHECK(!subs(&t, "eve", "den"));

	/* deltas that arrive before the state they follow (another channel):
	 * the room is closed until the state comes, then they apply */
	CHECK_INT(apply(&t, "add late 3 zed\ndel late 4 amy"), 2);
	CHECK(!reads(&t, "zed", "late") && !reads(&t, "amy", "late") && !reads(&t, "x", "late"));
	CHECK_INT(apply(&t, "room late 2 private amy ben"), 1);
	CHECK(reads(&t, "zed", "late") && reads(&t, "ben", "late") && !reads(&t, "amy", "late"));
	/* a state older than the deltas applied since is ignored */
	CHECK_INT(apply(&t, "room late 3 private amy ben zed"), 1);
	CHECK(!reads(&t, "amy", "late"));

	/* a deleted room's public state ends its member list */
	CHECK_INT(apply(&t, "room late 5 public"), 1);
	CHECK(reads(&t, "anyone", "late"));
	rooms_free(&t);
}

static void pieces(void)
{
	struct room_table t;
	CHECK_INT(rooms_init(&t), 0);
	CHECK_INT(apply(&t, "sync begin"), 1);
	/* an assembly: nothing is in force until its end */
	CHECK_INT(apply(&t, "begin big 10\npart big 10 a b c\npart big 10 d e"), 3);
	CHECK(!reads(&t, "a", "big") && subs(&t, "a", "big"));
	/* changes made while the pieces were read: c left before its piece
	 * was read (or after: either way the delta decides), f was added */
	CHECK_INT(apply(&t, "del big 11 c\nadd big 12 f"), 2);
	CHECK_INT(apply(&t, "part big 10 c f"), 1);
	CHECK(!reads(&t, "a", "big"));
	CHECK_INT(apply(&t, "end big 10 12 7"), 1);
	CHECK(reads(&t, "a", "big") && reads(&t, "e", "big") && reads(&t, "f", "big"));
	CHECK(!reads(&t, "c", "big") && !reads(&t, "z", "big"));
	/* later changes chain on */
	CHECK_INT(apply(&t, "del big 13 a"), 1);
	CHECK(!reads(&t, "a", "big"));

	/* an end whose deltas have not all come: closed until they have */
	CHECK_INT(apply(&t, "begin vast 4\npart vast 4 p q\nend vast 4 6 2"), 3);
	CHECK(!reads(&t, "p", "vast"));
	CHECK_INT(apply(&t, "del vast 6 p"), 1);
	CHECK(!reads(&t, "p", "vast") && !reads(&t, "q", "vast"));
	CHECK_INT(apply(&t, "add vast 5 r"), 1);
	CHECK(!reads(&t, "p", "vast") && reads(&t, "q", "vast") && reads(&t, "r", "vast"));

	/* a piece lost on the way (the count differs): the state is dropped */
	CHECK_INT(apply(&t, "begin gap 1\npart gap 1 a b\nend gap 1 1 3"), 3);
	CHECK(!reads(&t, "a", "gap"));
	/* a piece of an older assembly is ignored; a new begin restarts */
	CHECK_INT(apply(&t, "begin gap 2\npart gap 1 x\npart gap 2 a\nend gap 2 2 1"), 4);
	CHECK(reads(&t, "a", "gap") && !reads(&t, "x", "gap"));
	/* a begin no newer than the state in force is ignored */
	CHECK_INT(apply(&t, "begin gap 2\npart gap 2 x\nend gap 2 2 1"), 3);
	CHECK(!reads(&t, "x", "gap") && reads(&t, "a", "gap"));

	/* a room of 70,000 members of 32 characters (2.3 MB as one line) in
	 * pieces of 1,000 */
	char *buf = malloc(64 * 1024);
	CHECK(buf != NULL);
	CHECK_INT(apply(&t, "begin huge 1"), 1);
	for (int k = 0; k < 70; k++) {
		int n = snprintf(buf, 64, "part huge 1");
		for (int i = 0; i < 1000; i++)
			n += snprintf(buf + n, 40, " m%031d", k * 1000 + i);
		CHECK_INT(rooms_apply(&t, &bridge_conn, buf, (size_t)n), 1);
	}
	CHECK_INT(apply(&t, "end huge 1 1 70000"), 1);
	CHECK(reads(&t, "m0000000000000000000000000000000", "huge"));
	CHECK(reads(&t, "m0000000000000000000000000069999", "huge"));
	CHECK(!reads(&t, "m0000000000000000000000000070000", "huge"));
	CHECK_INT(apply(&t, "del huge 2 m0000000000000000000000000069999"), 1);
	CHECK(!reads(&t, "m0000000000000000000000000069999", "huge"));
	free(buf);
	rooms_free(&t);
}

static void syncs(void)
{
	struct room_table t;
	CHECK_INT(rooms_init(&t), 0);
	/* a broker that just started: no room is known, none is open to reads
	 * (a private one may not have been sent yet); subscriptions are */
	CHECK(!reads(&t, "bob", "general") && subs(&t, "bob", "general"));
	CHECK_INT(apply(&t, "sync begin\nroom keep 4 private ann\nroom old 2 private ann"), 3);
	CHECK(reads(&t, "ann", "keep") && !reads(&t, "bob", "keep") && !subs(&t, "bob", "keep"));
	CHECK(!reads(&t, "bob", "general"));
	/* the end from another connection proves nothing */
	CHECK_INT(rooms_apply(&t, &other_conn, S("sync end")), 1);
	CHECK(!reads(&t, "bob", "general"));
	CHECK_INT(apply(&t, "sync end"), 1);
	CHECK(reads(&t, "bob", "general"));

	/* a resync: states already here are unsure until sent again, and one
	 * sent again wins even with a lower version (another Redis history) */
	CHECK_INT(apply(&t, "sync begin"), 1);
	CHECK(!reads(&t, "ann", "keep") && subs(&t, "bob", "keep") && !reads(&t, "bob", "general"));
	/* a delta of the new history waits for the new state */
	CHECK_INT(apply(&t, "add keep 2 cid"), 1);
	CHECK_INT(apply(&t, "room keep 1 private bob"), 1);
	CHECK(reads(&t, "bob", "keep") && reads(&t, "cid", "keep") && !reads(&t, "ann", "keep"));
	/* "old" was not sent again (deleted meanwhile): forgotten at the end */
	CHECK(!reads(&t, "eve", "old"));
	CHECK_INT(apply(&t, "sync end"), 1);
	CHECK(reads(&t, "eve", "old") && reads(&t, "bob", "keep") && !reads(&t, "eve", "keep"));

	/* the bridge's connection ends: nothing is current, unknown rooms close */
	rooms_source_gone(&t, &other_conn);
	CHECK(reads(&t, "bob", "keep"));
	rooms_source_gone(&t, &bridge_conn);
	CHECK(!reads(&t, "bob", "keep") && !reads(&t, "eve", "general"));
	CHECK(subs(&t, "eve", "keep"));
	/* an end without a begin from this connection is not enough */
	CHECK_INT(apply(&t, "sync end"), 1);
	CHECK(!reads(&t, "eve", "general"));
	synced(&t);
	CHECK(reads(&t, "eve", "general"));
	rooms_free(&t);
}

static void overflow(void)
{
	struct room_table t;
	char line[96];
	CHECK_INT(rooms_init(&t), 0);
	synced(&t);
	CHECK_INT(apply(&t, "room busy 1 private ann"), 1);
	/* more changes wait behind a gap than are kept: dropped, closed */
	for (int v = 3; v < 3 + ROOMS_PENDING_MAX + 5; v++) {
		int n = snprintf(line, sizeof(line), "add busy %d u%d", v, v);
		CHECK_INT(rooms_apply(&t, &bridge_conn, line, (size_t)n), 1);
	}
	CHECK_INT(apply(&t, "add busy 2 bob"), 1);
	CHECK(!reads(&t, "ann", "busy") && !reads(&t, "bob", "busy"));
	/* a state older than what was dropped cannot help */
	CHECK_INT(apply(&t, "room busy 100 private ann"), 1);
	CHECK(!reads(&t, "ann", "busy"));
	/* a state read after it can */
	snprintf(line, sizeof(line), "room busy %d private ann", 3 + ROOMS_PENDING_MAX + 5);
	CHECK_INT(apply(&t, line), 1);
	CHECK(reads(&t, "ann", "busy") && !reads(&t, "u5", "busy"));
	rooms_free(&t);
}

int main(void)
{
	whole_states();
	deltas();
	pieces();
	syncs();
	overflow();
	return check_report();
}
