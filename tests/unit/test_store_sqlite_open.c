/* Unit test: several processes opening one new SQLite store at once (the
 * bridges of a node and their threads do) all succeed, and each can write.
 * SQLite answers BUSY at the journal-mode switch without waiting; the open
 * must try again instead of failing. */
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "store.h"

#define PROCS 16
#define ROUNDS 10

static int child(const char *url, int k)
{
	struct store *s = NULL;
	char err[256], json[256];
	if (store_open(url, &s, err, sizeof(err)) != STORE_OK) {
		fprintf(stderr, "child %d: %s\n", k, err);
		return 1;
	}
	snprintf(json, sizeof(json),
	         "{\"v\":1,\"type\":\"msg\",\"conv\":\"room:open\",\"seq\":%d,\"id\":\"i%d\","
	         "\"from\":\"u\",\"to\":\"open\",\"ts\":1,\"body\":\"b\"}",
	         k + 1, k);
	struct store_msg m = {"room:open", (uint64_t)k + 1, json};
	int rc = store_put_messages(s, &m, 1);
	store_close(s);
	return rc == STORE_OK ? 0 : 2;
}

int main(void)
{
	for (int round = 0; round < ROUNDS; round++) {
		char dir[] = "/tmp/chat-open-XXXXXX", url[300];
		CHECK(mkdtemp(dir) != NULL);
		snprintf(url, sizeof(url), "sqlite:%s/chat.db", dir);
		pid_t pids[PROCS];
		int gate[2];
		CHECK_INT(pipe(gate), 0);
		for (int k = 0; k < PROCS; k++) {
			pids[k] = fork();
			if (pids[k] == 0) {
				/* all start together: when the parent closes the gate */
				char c;
				close(gate[1]);
				if (read(gate[0], &c, 1) < 0)
					_exit(3);
				_exit(child(url, k));
			}
		}
		close(gate[0]);
		close(gate[1]);
		int ok = 0;
		for (int k = 0; k < PROCS; k++) {
			int st = 0;
			waitpid(pids[k], &st, 0);
			ok += WIFEXITED(st) && WEXITSTATUS(st) == 0;
		}
		CHECK_INT(ok, PROCS);
		/* every child's message is there */
		struct store *s = NULL;
		struct store_page p = {0};
		char err[256];
		CHECK_INT(store_open(url, &s, err, sizeof(err)), STORE_OK);
		CHECK_INT(store_history(s, "room:open", 0, 0, 100, &p), STORE_OK);
		CHECK_INT(p.n, PROCS);
		store_page_free(&p);
		store_close(s);
		char cmd[400];
		snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
		CHECK_INT(system(cmd), 0);
	}
	return check_report();
}
