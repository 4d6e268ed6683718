/* Unit tests: the bridge's intake journal (bridge/journal.c): what a
 * previous process left is read back, records of earlier versions too, and
 * a post the broker sends again matches its record once. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "journal.h"

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	fputs(text, f);
	fclose(f);
}

int main(void)
{
	char dir[] = "/tmp/test_journal.XXXXXX", path[64], replay[80], err[256];
	struct journal j;

	CHECK(mkdtemp(dir) != NULL);
	snprintf(path, sizeof(path), "%s/bridge.journal", dir);
	snprintf(replay, sizeof(replay), "%s.replay", path);

	/* one record without a packet id (before it was kept), one with, one
	 * cut short by a kill */
	write_file(path, "J 00112233aabbccdd 1 9 2\nchat/in/ahi\n"
	                 "J 00112233aabbccdd 2 9 2 7\nchat/in/aho\n"
	                 "J 00112233aabbccdd 3 9 200 8\nchat/in/a{");
	CHECK_INT(journal_open(&j, path, err, sizeof(err)), 0);
	CHECK_INT(j.nreplay, 2);
	CHECK_INT(j.replay[0].mid, 0);
	CHECK_INT(j.replay[1].mid, 7);
	CHECK(strcmp(j.replay[1].payload, "ho") == 0);
	CHECK(access(replay, F_OK) == 0);

	/* the broker's second copy: same packet id, topic and payload, once */
	CHECK(!journal_redelivered(&j, 7, "chat/in/a", "hx", 2));
	CHECK(!journal_redelivered(&j, 7, "chat/in/b", "ho", 2));
	CHECK(!journal_redelivered(&j, 8, "chat/in/a", "ho", 2));
	CHECK(journal_redelivered(&j, 7, "chat/in/a", "ho", 2));
	CHECK(!journal_redelivered(&j, 7, "chat/in/a", "ho", 2));
	/* a record without a packet id never matches */
	CHECK(!journal_redelivered(&j, 0, "chat/in/a", "hi", 2));

	/* a second bridge on the same file is refused, saying why */
	struct journal other;
	CHECK_INT(journal_open(&other, path, err, sizeof(err)), -1);
	CHECK(strstr(err, "in use by another bridge") != NULL);

	/* appended records keep the packet id for the next process */
	CHECK(journal_append(&j, 42, "chat/in/c", "yo", 2) > 0);
	journal_close(&j);
	CHECK_INT(journal_open(&j, path, err, sizeof(err)), 0);
	CHECK_INT(j.nreplay, 3); /* the two not answered, then the new one */
	CHECK_INT(j.replay[2].mid, 42);
	CHECK(journal_redelivered(&j, 42, "chat/in/c", "yo", 2));

	/* once every replayed post is answered, the replay file goes */
	CHECK(!journal_replay_done(&j));
	CHECK(!journal_replay_done(&j));
	CHECK(journal_replay_done(&j));
	CHECK(access(replay, F_OK) != 0);
	journal_close(&j);
	unlink(path);
	rmdir(dir);
	return check_report();
}
