/* Unit test: no store call waits longer than its bound (store.h), whatever
 * the store does.
 *   SQLite locked by another process's BEGIN EXCLUSIVE: open and history
 *   pages answer at once (WAL readers do not wait for the writer), a write
 *   answers STORE_E_DOWN within the bound, and works once the lock is gone.
 *   A lazy handle touches nothing until a call needs the store.
 *   MongoDB that accepts the connection and never answers: open and every
 *   call return within the bound, STORE_E_DOWN. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "store.h"

#define BOUND_MS 600
/* what a loaded 2-core machine may add to a bound */
#define SLACK_S 1.0

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static char *msg_json(uint64_t seq)
{
	char *j = malloc(256);
	snprintf(j, 256,
	         "{\"v\":1,\"type\":\"msg\",\"conv\":\"room:lock\",\"seq\":%llu,\"id\":\"i%llu\","
	         "\"from\":\"u\",\"to\":\"lock\",\"ts\":1,\"body\":\"b\"}",
	         (unsigned long long)seq, (unsigned long long)seq);
	return j;
}

static int put(struct store *s, uint64_t seq)
{
	char *json = msg_json(seq);
	struct store_msg m = {.conv = "room:lock", .seq = seq, .json = json};
	int rc = store_put_messages(s, &m, 1);
	free(json);
	return rc;
}

/* A child that holds BEGIN EXCLUSIVE on path for hold_s seconds; returns
 * once it holds the lock. */
static pid_t lock_in_child(const char *path, int hold_s)
{
	int ready[2];
	if (pipe(ready) != 0)
		exit(2);
	pid_t pid = fork();
	if (pid == 0) {
		sqlite3 *db = NULL;
		close(ready[0]);
		if (sqlite3_open(path, &db) != SQLITE_OK ||
		    sqlite3_exec(db, "BEGIN EXCLUSIVE; DELETE FROM messages WHERE seq = 0;", NULL,
		                 NULL, NULL) != SQLITE_OK)
			_exit(3);
		if (write(ready[1], "x", 1) != 1)
			_exit(4);
		sleep((unsigned)hold_s);
		sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
		sqlite3_close(db);
		_exit(0);
	}
	close(ready[1]);
	char c;
	CHECK_INT(read(ready[0], &c, 1), 1);
	close(ready[0]);
	return pid;
}

static void test_sqlite_locked_by_another_process(void)
{
	char dir[] = "/tmp/chat-bounds-XXXXXX", path[300], url[320], err[256];
	struct store *s = NULL, *fresh = NULL;
	struct store_page p = {0};

	CHECK(mkdtemp(dir) != NULL);
	snprintf(path, sizeof(path), "%s/chat.db", dir);
	snprintf(url, sizeof(url), "sqlite:%s", path);
	CHECK_INT(store_open_timeout(url, BOUND_MS, &s, err, sizeof(err)), STORE_OK);
	for (uint64_t seq = 1; seq <= 5; seq++)
		CHECK_INT(put(s, seq), STORE_OK);

	pid_t locker = lock_in_child(path, 4);

	/* opening a file that has its schema needs no write lock */
	double t0 = now_s();
	CHECK_INT(store_open_timeout(url, BOUND_MS, &fresh, err, sizeof(err)), STORE_OK);
	double open_s = now_s() - t0;
	CHECK(open_s < 0.3);
	if (fresh) {
		t0 = now_s();
		CHECK_INT(store_history(fresh, "room:lock", 0, 0, 10, &p), STORE_OK);
		CHECK_INT(p.n, 5);
		store_page_free(&p);
		CHECK_INT(store_ping(fresh), STORE_OK);
		CHECK(now_s() - t0 < 0.3);
	}
	/* a write waits for the lock no longer than the bound */
	t0 = now_s();
	CHECK_INT(put(s, 6), STORE_E_DOWN);
	double put_s = now_s() - t0;
	CHECK(put_s >= BOUND_MS / 1000.0 * 0.9 && put_s < BOUND_MS / 1000.0 + SLACK_S);
	CHECK(strstr(store_errmsg(s), "lock") != NULL);
	fprintf(stderr, "locked: open %.3f s, put %.3f s (bound %d ms)\n", open_s, put_s, BOUND_MS);

	int st = 0;
	waitpid(locker, &st, 0);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	CHECK_INT(put(s, 6), STORE_OK);
	CHECK_INT(store_history(s, "room:lock", 0, 0, 10, &p), STORE_OK);
	CHECK_INT(p.n, 6);
	store_page_free(&p);
	store_close(fresh);
	store_close(s);
	unlink(path);
	char side[320];
	snprintf(side, sizeof(side), "%s-wal", path);
	unlink(side);
	snprintf(side, sizeof(side), "%s-shm", path);
	unlink(side);
	rmdir(dir);
}

static void test_lazy_handle_opens_at_first_call(void)
{
	char dir[] = "/tmp/chat-lazy-XXXXXX", path[300], url[320], err[256];
	struct store *s = NULL;
	struct stat sb;

	CHECK(mkdtemp(dir) != NULL);
	snprintf(path, sizeof(path), "%s/chat.db", dir);
	snprintf(url, sizeof(url), "sqlite:%s", path);
	CHECK_INT(store_open_lazy("nosuch:x", BOUND_MS, &s, err, sizeof(err)), STORE_E_URL);
	CHECK(s == NULL);
	CHECK_INT(store_open_lazy(url, BOUND_MS, &s, err, sizeof(err)), STORE_OK);
	CHECK(stat(path, &sb) != 0); /* nothing opened yet */
	CHECK_INT(put(s, 1), STORE_OK);
	CHECK(stat(path, &sb) == 0);
	uint64_t max = 0;
	CHECK_INT(store_max_seq(s, "room:lock", &max), STORE_OK);
	CHECK_INT(max, 1);
	store_close(s);

	/* a failed open is an outage of that call, tried again at the next */
	char missing[340];
	snprintf(missing, sizeof(missing), "sqlite:%s/later/chat.db", dir);
	CHECK_INT(store_open_lazy(missing, BOUND_MS, &s, err, sizeof(err)), STORE_OK);
	CHECK_INT(store_ping(s), STORE_E_DOWN);
	CHECK(strstr(store_errmsg(s), "later/chat.db") != NULL);
	snprintf(missing, sizeof(missing), "%s/later", dir);
	CHECK_INT(mkdir(missing, 0700), 0);
	CHECK_INT(store_ping(s), STORE_OK);
	store_close(s);
	char f[400];
	const char *names[] = {"chat.db", "chat.db-wal", "chat.db-shm"};
	for (int i = 0; i < 3; i++) {
		snprintf(f, sizeof(f), "%s/later/%s", dir, names[i]);
		unlink(f);
		snprintf(f, sizeof(f), "%s/%s", dir, names[i]);
		unlink(f);
	}
	rmdir(missing);
	rmdir(dir);
}

/* A "MongoDB" that accepts every connection and never says a word. */
struct mute {
	int fd;
	int conns[64];
	int n;
};

static void *mute_serve(void *arg)
{
	struct mute *m = arg;
	for (;;) {
		int c = accept(m->fd, NULL, NULL);
		if (c < 0)
			return NULL;
		if (m->n < 64)
			m->conns[m->n++] = c;
	}
}

static void test_mongodb_that_never_answers(void)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t alen = sizeof(a);
	struct mute m = {0};
	pthread_t th;
	char url[128], err[256] = "";
	struct store *s = NULL;
	struct store_page p = {0};

	m.fd = socket(AF_INET, SOCK_STREAM, 0);
	CHECK(m.fd >= 0 && bind(m.fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
	      getsockname(m.fd, (struct sockaddr *)&a, &alen) == 0 && listen(m.fd, 64) == 0);
	CHECK_INT(pthread_create(&th, NULL, mute_serve, &m), 0);
	snprintf(url, sizeof(url), "mongodb://127.0.0.1:%d/chat", ntohs(a.sin_port));

	double bound = BOUND_MS / 1000.0 + SLACK_S, t0 = now_s();
	CHECK_INT(store_open_timeout(url, BOUND_MS, &s, err, sizeof(err)), STORE_OK);
	double open_s = now_s() - t0;
	CHECK(open_s < bound);
	if (s == NULL)
		return;
	t0 = now_s();
	CHECK_INT(store_ping(s), STORE_E_DOWN);
	double ping_s = now_s() - t0;
	CHECK(ping_s < bound);
	t0 = now_s();
	CHECK_INT(store_history(s, "room:lock", 0, 0, 10, &p), STORE_E_DOWN);
	double hist_s = now_s() - t0;
	CHECK(hist_s < bound);
	t0 = now_s();
	CHECK_INT(put(s, 1), STORE_E_DOWN);
	double put_s = now_s() - t0;
	CHECK(put_s < bound);
	fprintf(stderr,
	        "mute mongodb: open %.3f s, ping %.3f s, history %.3f s, put %.3f s "
	        "(bound %d ms)\n",
	        open_s, ping_s, hist_s, put_s, BOUND_MS);
	CHECK(m.n >= 1); /* it did connect: the bound is on the answer, not the connect */
	store_close(s);
	shutdown(m.fd, SHUT_RDWR);
	close(m.fd);
	pthread_join(th, NULL);
	for (int i = 0; i < m.n; i++)
		close(m.conns[i]);
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	test_sqlite_locked_by_another_process();
	test_lazy_handle_opens_at_first_call();
	test_mongodb_that_never_answers();
	return check_report();
}
