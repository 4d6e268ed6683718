/*
 * Conformance suite of the store (storage/store.h): one source, run against
 * each backend. The store URL comes from argv[1], else $CHAT_STORE_URL,
 * else a fresh SQLite file in $TMPDIR. The store must be empty at start
 * (tests/integration/test_store_conformance.py gives it a fresh FerretDB
 * database). Every failed check prints what it expected and what it got.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "chat/envelope.h"
#include "check.h"
#include "store.h"

static const char *url;

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static struct store *open_or_die(void)
{
	struct store *s = NULL;
	char err[256];
	int rc = store_open(url, &s, err, sizeof(err));

	if (rc != STORE_OK) {
		fprintf(stderr, "cannot open %s: %s (%s)\n", url, err, store_strerror(rc));
		exit(2);
	}
	return s;
}

/* The subscriber JSON of message seq in conv (cid on every third). */
static char *msg_json(const char *conv, uint64_t seq)
{
	char id[64], body[64], cid[16];

	snprintf(id, sizeof(id), "id-%s-%llu", conv, (unsigned long long)seq);
	snprintf(body, sizeof(body), "hello \"%llu\" \xc3\xa9", (unsigned long long)seq);
	snprintf(cid, sizeof(cid), "c-%llu", (unsigned long long)seq);
	struct chat_msg m = {
		.conv = conv, .seq = seq, .id = id, .from = "alice", .to = "general",
		.ts = 1732300000000 + (int64_t)seq, .body = body,
		.cid = seq % 3 == 0 ? cid : NULL,
	};
	return envelope_encode(&m);
}

/* Puts seqs [from, to] of conv in batches of batch; returns the last rc. */
static int put_range(struct store *s, const char *conv, uint64_t from, uint64_t to,
                     size_t batch)
{
	struct store_msg *m = calloc(batch, sizeof(*m));
	int rc = STORE_OK;
	size_t n = 0;

	for (uint64_t seq = from; seq <= to && rc == STORE_OK; seq++) {
		snprintf(m[n].conv, sizeof(m[n].conv), "%s", conv);
		m[n].seq = seq;
		m[n].json = msg_json(conv, seq);
		if (++n == batch || seq == to) {
			rc = store_put_messages(s, m, n);
			for (size_t i = 0; i < n; i++)
				free(m[i].json);
			n = 0;
		}
	}
	free(m);
	return rc;
}

/* Checks that p holds exactly seqs first..last of conv, ascending, with the
 * JSON that was put. */
static void check_page(const struct store_page *p, const char *conv, uint64_t first,
                       uint64_t last, int line)
{
	size_t want = last >= first ? (size_t)(last - first + 1) : 0;

	if (p->n != want) {
		check_failed++;
		fprintf(stderr, "line %d: page of %s: expected %zu messages (%llu..%llu), got %zu",
		        line, conv, want, (unsigned long long)first, (unsigned long long)last, p->n);
		if (p->n)
			fprintf(stderr, " (%llu..%llu)", (unsigned long long)p->msgs[0].seq,
			        (unsigned long long)p->msgs[p->n - 1].seq);
		fprintf(stderr, "\n");
		return;
	}
	for (size_t i = 0; i < p->n; i++) {
		char *json = msg_json(conv, first + i);
		if (p->msgs[i].seq != first + i || strcmp(p->msgs[i].conv, conv) != 0 ||
		    strcmp(p->msgs[i].json, json) != 0) {
			check_failed++;
			fprintf(stderr, "line %d: message %zu: expected %s/%llu %s, got %s/%llu %s\n",
			        line, i, conv, (unsigned long long)(first + i), json, p->msgs[i].conv,
			        (unsigned long long)p->msgs[i].seq, p->msgs[i].json);
			free(json);
			return;
		}
		free(json);
	}
	check_passed++;
}

/* Asks for one page and checks it holds first..last. */
static void expect_page(struct store *s, const char *conv, uint64_t before, uint64_t after,
                        int limit, uint64_t first, uint64_t last, int line)
{
	struct store_page p;
	int rc = store_history(s, conv, before, after, limit, &p);

	if (rc != STORE_OK) {
		check_failed++;
		fprintf(stderr, "line %d: history %s before=%llu after=%llu limit=%d: expected ok, "
		        "got %s (%s)\n", line, conv, (unsigned long long)before,
		        (unsigned long long)after, limit, store_strerror(rc), store_errmsg(s));
		return;
	}
	check_page(&p, conv, first, last, line);
	store_page_free(&p);
}
#define EXPECT_PAGE(s, conv, before, after, limit, first, last)                                  \
	expect_page(s, conv, before, after, limit, first, last, __LINE__)

static void test_open_rejects_urls_that_name_no_backend(void)
{
	const char *bad[] = {"", "redis://127.0.0.1:6379", "sqlite:", "mongodb://",
	                     "mongodb://127.0.0.1:notaport/chat", "file:/tmp/x.db",
	                     "mongodb://127.0.0.1:27017/chat?retryWrites=false",
	                     "mongodb://127.0.0.1:27017/chat?w=1",
	                     "mongodb://127.0.0.1:27017/chat?journal=false",
	                     "mongodb://127.0.0.1:27017/chat?wtimeoutMS=10"};
	struct store *s = (struct store *)&s;
	char err[256];

	CHECK_INT(store_open(NULL, &s, err, sizeof(err)), STORE_E_URL);
	CHECK(s == NULL);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		s = (struct store *)&s;
		err[0] = '\0';
		int rc = store_open(bad[i], &s, err, sizeof(err));
		if (rc != STORE_E_URL)
			fprintf(stderr, "url \"%s\":\n", bad[i]);
		CHECK_INT(rc, STORE_E_URL);
		CHECK(s == NULL);
		CHECK(err[0] != '\0');
	}
}

static void test_unwritable_sqlite_path_fails_with_the_path_in_the_error(void)
{
	struct store *s = (struct store *)&s;
	char err[256] = "";

	/* a setting to fix, not an outage: the bridge refuses to start on it */
	int rc = store_open("sqlite:/nonexistent-dir/sub/chat.db", &s, err, sizeof(err));
	CHECK_INT(rc, STORE_E_URL);
	CHECK(s == NULL);
	CHECK(strstr(err, "/nonexistent-dir/sub/chat.db") != NULL);
	if (strstr(err, "/nonexistent-dir/sub/chat.db") == NULL)
		fprintf(stderr, "  err was: %s\n", err);
}

/* A port nothing listens on: bound, then released. */
static int closed_port(void)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t alen = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0 ||
	    getsockname(fd, (struct sockaddr *)&a, &alen) != 0) {
		perror("closed_port");
		exit(2);
	}
	close(fd);
	return ntohs(a.sin_port);
}

static void test_unreachable_mongodb_opens_and_calls_say_down_within_seconds(void)
{
	char u[128], err[256] = "";
	struct store *s = NULL;

	snprintf(u, sizeof(u), "mongodb://127.0.0.1:%d/chat", closed_port());
	CHECK_INT(store_open(u, &s, err, sizeof(err)), STORE_OK);
	if (s == NULL) {
		fprintf(stderr, "  open %s: %s\n", u, err);
		return;
	}
	double t0 = now_s();
	CHECK_INT(store_ping(s), STORE_E_DOWN);
	CHECK(store_errmsg(s)[0] != '\0');
	char *json = msg_json("room:general", 1);
	struct store_msg m = {.conv = "room:general", .seq = 1, .json = json};
	CHECK_INT(store_put_messages(s, &m, 1), STORE_E_DOWN);
	free(json);
	struct store_page p;
	CHECK_INT(store_history(s, "room:general", 0, 0, 50, &p), STORE_E_DOWN);
	CHECK_INT(p.n, 0);
	char hash[64];
	CHECK_INT(store_user_get(s, "alice", hash, sizeof(hash)), STORE_E_DOWN);
	CHECK_INT(store_read_set(s, "alice", "room:general", 3), STORE_E_DOWN);
	double took = now_s() - t0;
	if (took > 5 * 3.0)
		fprintf(stderr, "  6 calls took %.1f s\n", took);
	CHECK(took < 5 * 3.0); /* each call gives up after ~2 s, not 30 */
	store_close(s);
}

static void test_empty_store_answers_empty(struct store *s)
{
	uint64_t max = 99;

	CHECK_INT(store_ping(s), STORE_OK);
	CHECK_INT(store_max_seq(s, "room:nothing", &max), STORE_OK);
	CHECK_INT(max, 0);
	EXPECT_PAGE(s, "room:nothing", 0, 0, 50, 1, 0);
	EXPECT_PAGE(s, "room:nothing", 10, 0, 50, 1, 0);
	EXPECT_PAGE(s, "room:nothing", 0, 10, 50, 1, 0);
	CHECK_INT(store_put_messages(s, NULL, 0), STORE_OK);
}

static void test_history_pages_after_before_latest_and_boundaries(struct store *s)
{
	const char *c = "room:general";

	CHECK_INT(put_range(s, c, 1, 120, 50), STORE_OK);
	EXPECT_PAGE(s, c, 0, 0, 50, 71, 120);    /* latest */
	EXPECT_PAGE(s, c, 0, 0, 200, 1, 120);    /* latest, fewer than limit */
	EXPECT_PAGE(s, c, 0, 10, 5, 11, 15);     /* after */
	EXPECT_PAGE(s, c, 0, 100, 50, 101, 120); /* after, runs out */
	EXPECT_PAGE(s, c, 0, 119, 50, 120, 120); /* after the one before last */
	EXPECT_PAGE(s, c, 0, 120, 50, 1, 0);     /* after the last: empty */
	EXPECT_PAGE(s, c, 0, 5000, 50, 1, 0);    /* after beyond: empty */
	EXPECT_PAGE(s, c, 60, 0, 10, 50, 59);    /* before */
	EXPECT_PAGE(s, c, 30, 0, 50, 1, 29);     /* before, runs out */
	EXPECT_PAGE(s, c, 2, 0, 50, 1, 1);       /* before 2: the first */
	EXPECT_PAGE(s, c, 1, 0, 50, 1, 0);       /* before the first: empty */
	EXPECT_PAGE(s, c, 121, 0, 1, 120, 120);  /* limit 1 */
	EXPECT_PAGE(s, c, UINT64_MAX, 0, 3, 118, 120); /* huge before = latest */
	EXPECT_PAGE(s, c, 0, UINT64_MAX, 3, 1, 0);     /* huge after = nothing */
	/* another conversation's messages never leak in */
	CHECK_INT(put_range(s, "room:general2", 1, 3, 10), STORE_OK);
	CHECK_INT(put_range(s, "dm:alice:bob", 1, 4, 10), STORE_OK);
	EXPECT_PAGE(s, c, 0, 0, 5, 116, 120);
	EXPECT_PAGE(s, "room:general2", 0, 0, 50, 1, 3);
	EXPECT_PAGE(s, "dm:alice:bob", 0, 2, 50, 3, 4);
}

static void test_history_limit_bounds_and_bad_arguments(struct store *s)
{
	const char *c = "room:big";
	struct store_page p = {.n = 7};

	CHECK_INT(put_range(s, c, 1, 1100, 500), STORE_OK);
	EXPECT_PAGE(s, c, 0, 0, 1000, 101, 1100);
	EXPECT_PAGE(s, c, 0, 0, 1, 1100, 1100);
	CHECK_INT(store_history(s, c, 0, 0, 0, &p), STORE_E_BAD);
	CHECK_INT(p.n, 0);
	CHECK(p.msgs == NULL);
	CHECK_INT(store_history(s, c, 0, 0, 1001, &p), STORE_E_BAD);
	CHECK_INT(store_history(s, c, 0, 0, -1, &p), STORE_E_BAD);
	CHECK_INT(store_history(s, c, 5, 3, 10, &p), STORE_E_BAD);
	CHECK_INT(store_history(s, "general", 0, 0, 10, &p), STORE_E_BAD);
	CHECK_INT(store_history(s, "dm:bob:alice", 0, 0, 10, &p), STORE_E_BAD);
	CHECK_INT(store_history(s, NULL, 0, 0, 10, &p), STORE_E_BAD);
	CHECK_INT(store_history(s, c, 0, 0, 10, NULL), STORE_E_BAD);
	CHECK_INT(store_history(NULL, c, 0, 0, 10, &p), STORE_E_BAD);
	store_page_free(&p);
	store_page_free(NULL);
}

static void test_reput_is_idempotent_and_fills_gaps(struct store *s)
{
	const char *c = "room:replay";
	uint64_t max = 0;

	CHECK_INT(put_range(s, c, 1, 10, 10), STORE_OK);
	CHECK_INT(put_range(s, c, 1, 10, 10), STORE_OK);  /* the same batch again */
	CHECK_INT(put_range(s, c, 5, 20, 16), STORE_OK);  /* overlapping: 11..20 new */
	CHECK_INT(put_range(s, c, 20, 20, 1), STORE_OK);  /* one duplicate alone */
	EXPECT_PAGE(s, c, 0, 0, 100, 1, 20);
	CHECK_INT(store_max_seq(s, c, &max), STORE_OK);
	CHECK_INT(max, 20);

	/* a re-put keeps the first JSON: what was confirmed never changes */
	char *json = msg_json(c, 3);
	struct store_msg m = {.conv = "room:replay", .seq = 3};
	char other[512];
	snprintf(other, sizeof(other), "%s", json);
	char *b = strstr(other, "\"body\":\"");
	CHECK(b != NULL);
	if (b)
		b[8] = 'X';
	m.json = other;
	CHECK_INT(store_put_messages(s, &m, 1), STORE_OK);
	struct store_page p;
	CHECK_INT(store_history(s, c, 4, 0, 1, &p), STORE_OK);
	CHECK_INT(p.n, 1);
	if (p.n == 1)
		CHECK_STR(p.msgs[0].json, json);
	store_page_free(&p);
	free(json);
}

static void test_put_rejects_bad_messages_and_writes_nothing_of_the_batch(struct store *s)
{
	const char *c = "room:strict";
	char *good = msg_json(c, 1);
	char *seq2 = msg_json(c, 2);
	char *other_conv = msg_json("room:elsewhere", 2);
	const char *bad_json[] = {
		"not json",
		"[1,2]",
		"{\"conv\":\"room:strict\",\"seq\":2}", /* no id, from, to, ts, body */
		"{\"v\":1,\"conv\":\"room:strict\",\"seq\":2.5,\"id\":\"i\",\"from\":\"a\","
		"\"to\":\"b\",\"ts\":1,\"body\":\"x\"}",
		"{\"v\":1,\"conv\":\"room:strict\",\"seq\":2,\"id\":\"i\",\"from\":\"a\","
		"\"to\":\"b\",\"ts\":1,\"body\":7}",
		"{\"v\":1,\"conv\":\"room:strict\",\"seq\":2,\"id\":\"i\",\"from\":\"a\","
		"\"to\":\"b\",\"ts\":1,\"body\":\"x\",\"cid\":5}",
		"{\"v\":1,\"conv\":\"room:strict\",\"seq\":2,\"id\":\"i\",\"from\":\"a\","
		"\"to\":\"b\",\"ts\":1,\"body\":\"bad \xff\xfe utf-8\"}",
		other_conv, /* JSON conv differs from the message's */
		good,       /* JSON seq 1, message seq 2 */
	};
	uint64_t max = 0;

	for (size_t i = 0; i < sizeof(bad_json) / sizeof(bad_json[0]); i++) {
		struct store_msg batch[2] = {{.seq = 1, .json = good}, {.seq = 2}};
		snprintf(batch[0].conv, sizeof(batch[0].conv), "%s", c);
		snprintf(batch[1].conv, sizeof(batch[1].conv), "%s", c);
		batch[1].json = (char *)bad_json[i];
		int rc = store_put_messages(s, batch, 2);
		if (rc != STORE_E_BAD)
			fprintf(stderr, "bad message %zu: %s\n", i, bad_json[i]);
		CHECK_INT(rc, STORE_E_BAD);
	}
	struct store_msg m = {.seq = 0, .json = good};
	snprintf(m.conv, sizeof(m.conv), "%s", c);
	CHECK_INT(store_put_messages(s, &m, 1), STORE_E_BAD); /* seq 0 */
	m.seq = STORE_SEQ_MAX + 1;
	CHECK_INT(store_put_messages(s, &m, 1), STORE_E_BAD);
	m.seq = 1;
	m.json = NULL;
	CHECK_INT(store_put_messages(s, &m, 1), STORE_E_BAD);
	snprintf(m.conv, sizeof(m.conv), "room:Strict");
	m.json = good;
	CHECK_INT(store_put_messages(s, &m, 1), STORE_E_BAD); /* invalid conv id */
	CHECK_INT(store_put_messages(s, NULL, 1), STORE_E_BAD);
	CHECK_INT(store_put_messages(NULL, &m, 1), STORE_E_BAD);
	/* nothing of those batches was written, though their first was valid */
	CHECK_INT(store_max_seq(s, c, &max), STORE_OK);
	CHECK_INT(max, 0);
	/* and the valid ones go in */
	struct store_msg ok[2] = {{.seq = 1, .json = good}, {.seq = 2, .json = seq2}};
	snprintf(ok[0].conv, sizeof(ok[0].conv), "%s", c);
	snprintf(ok[1].conv, sizeof(ok[1].conv), "%s", c);
	CHECK_INT(store_put_messages(s, ok, 2), STORE_OK);
	EXPECT_PAGE(s, c, 0, 0, 50, 1, 2);
	free(good);
	free(seq2);
	free(other_conv);
}

struct seen {
	int n;
	char text[4096];
	int stop_after; /* return 7 after this many calls (0 = never) */
};

static int seen_max(void *ctx, const char *conv, uint64_t seq)
{
	struct seen *v = ctx;
	char line[128];

	snprintf(line, sizeof(line), "%s=%llu;", conv, (unsigned long long)seq);
	strncat(v->text, line, sizeof(v->text) - strlen(v->text) - 1);
	return ++v->n == v->stop_after ? 7 : 0;
}

/* Sorted "a;b;" lines, so backends may iterate in any order. */
static void sort_lines(char *text)
{
	char *parts[256];
	int n = 0;
	char copy[4096];

	snprintf(copy, sizeof(copy), "%s", text);
	for (char *save = NULL, *t = strtok_r(copy, ";", &save); t && n < 256;
	     t = strtok_r(NULL, ";", &save))
		parts[n++] = t;
	for (int i = 1; i < n; i++)
		for (int j = i; j > 0 && strcmp(parts[j - 1], parts[j]) > 0; j--) {
			char *x = parts[j];
			parts[j] = parts[j - 1];
			parts[j - 1] = x;
		}
	text[0] = '\0';
	for (int i = 0; i < n; i++) {
		strcat(text, parts[i]);
		strcat(text, ";");
	}
}

static void test_max_seq_and_each_max_seq_cover_every_conversation(struct store *s)
{
	struct seen v = {0};
	uint64_t max = 0;

	CHECK_INT(store_max_seq(s, "room:general", &max), STORE_OK);
	CHECK_INT(max, 120);
	CHECK_INT(store_max_seq(s, "dm:alice:bob", &max), STORE_OK);
	CHECK_INT(max, 4);
	CHECK_INT(store_max_seq(s, "bad conv", &max), STORE_E_BAD);
	CHECK_INT(store_max_seq(s, "room:x", NULL), STORE_E_BAD);
	CHECK_INT(store_each_max_seq(s, seen_max, &v), STORE_OK);
	sort_lines(v.text);
	CHECK_STR(v.text, "dm:alice:bob=4;room:big=1100;room:general2=3;room:general=120;"
	                  "room:replay=20;room:strict=2;");
	struct seen stop = {.stop_after = 2};
	CHECK_INT(store_each_max_seq(s, seen_max, &stop), 7);
	CHECK_INT(stop.n, 2);
	CHECK_INT(store_each_max_seq(s, NULL, NULL), STORE_E_BAD);
}

static void test_users_create_conflict_get_and_not_found(struct store *s)
{
	const char *h = "$argon2id$v=19$m=65536,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo";
	char got[STORE_PWHASH_MAX + 1];
	char small[8];

	CHECK_INT(store_user_create(s, "alice", h, 1732300000000), STORE_OK);
	CHECK_INT(store_user_create(s, "alice", "$argon2id$other", 1), STORE_E_CONFLICT);
	CHECK_INT(store_user_get(s, "alice", got, sizeof(got)), STORE_OK);
	CHECK_STR(got, h); /* the conflict did not overwrite */
	CHECK_INT(store_user_get(s, "bob", got, sizeof(got)), STORE_E_NOT_FOUND);
	CHECK_INT(store_user_get(s, "alice", small, sizeof(small)), STORE_E_BAD);
	CHECK_INT(store_user_create(s, "Alice", h, 1), STORE_E_BAD);
	CHECK_INT(store_user_create(s, "bob", "", 1), STORE_E_BAD);
	CHECK_INT(store_user_create(s, "bob", NULL, 1), STORE_E_BAD);
	CHECK_INT(store_user_get(s, "bob", got, sizeof(got)), STORE_E_NOT_FOUND);
	CHECK_INT(store_user_get(s, "a/b", got, sizeof(got)), STORE_E_BAD);
	CHECK_INT(store_user_get(s, "alice", NULL, 10), STORE_E_BAD);
}

static int seen_user(void *ctx, const char *user)
{
	struct seen *v = ctx;

	strncat(v->text, user, sizeof(v->text) - strlen(v->text) - 1);
	strncat(v->text, ";", sizeof(v->text) - strlen(v->text) - 1);
	return ++v->n == v->stop_after ? 7 : 0;
}

/* Every account, once (Redis's set of known users is rebuilt from it). */
static void test_each_user_gives_every_account(struct store *s)
{
	const char *h = "$argon2id$v=19$m=65536,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo";
	struct seen v = {0};

	CHECK_INT(store_user_create(s, "zed.9", h, 1), STORE_OK);
	CHECK_INT(store_each_user(s, seen_user, &v), STORE_OK);
	sort_lines(v.text);
	CHECK_STR(v.text, "alice;zed.9;"); /* alice from the test before */
	struct seen stop = {.stop_after = 1};
	CHECK_INT(store_each_user(s, seen_user, &stop), 7);
	CHECK_INT(stop.n, 1);
	CHECK_INT(store_each_user(s, NULL, NULL), STORE_E_BAD);
}

static int seen_room(void *ctx, const struct store_room *r)
{
	struct seen *v = ctx;
	char line[256];

	snprintf(line, sizeof(line), "%s,%s,%d,%lld;", r->name, r->owner, r->private ? 1 : 0,
	         (long long)r->created_ms);
	strncat(v->text, line, sizeof(v->text) - strlen(v->text) - 1);
	return ++v->n == v->stop_after ? 7 : 0;
}

static void test_rooms_put_replace_and_each(struct store *s)
{
	struct store_room r = {.name = "general", .owner = "alice", .created_ms = 1000};
	struct seen v = {0};

	CHECK_INT(store_room_put(s, &r), STORE_OK);
	r = (struct store_room){.name = "secret", .owner = "bob", .private = true, .created_ms = 2};
	CHECK_INT(store_room_put(s, &r), STORE_OK);
	CHECK_INT(store_room_put(s, &r), STORE_OK); /* twice */
	r = (struct store_room){.name = "general", .owner = "carol", .private = true,
	                        .created_ms = 1001};
	CHECK_INT(store_room_put(s, &r), STORE_OK); /* replaces */
	CHECK_INT(store_each_room(s, seen_room, &v), STORE_OK);
	sort_lines(v.text);
	CHECK_STR(v.text, "general,carol,1,1001;secret,bob,1,2;");
	struct seen stop = {.stop_after = 1};
	CHECK_INT(store_each_room(s, seen_room, &stop), 7);
	CHECK_INT(stop.n, 1);
	r = (struct store_room){.name = "Bad Room", .owner = "alice"};
	CHECK_INT(store_room_put(s, &r), STORE_E_BAD);
	r = (struct store_room){.name = "ok", .owner = ""};
	CHECK_INT(store_room_put(s, &r), STORE_E_BAD);
	CHECK_INT(store_room_put(s, NULL), STORE_E_BAD);
	CHECK_INT(store_each_room(s, NULL, NULL), STORE_E_BAD);
}

static int seen_member(void *ctx, const char *room, const char *user)
{
	struct seen *v = ctx;
	char line[128];

	snprintf(line, sizeof(line), "%s,%s;", room, user);
	strncat(v->text, line, sizeof(v->text) - strlen(v->text) - 1);
	return ++v->n == v->stop_after ? 7 : 0;
}

static void test_members_add_remove_twice_and_each(struct store *s)
{
	struct seen v = {0};

	CHECK_INT(store_member_set(s, "secret", "bob", true), STORE_OK);
	CHECK_INT(store_member_set(s, "secret", "alice", true), STORE_OK);
	CHECK_INT(store_member_set(s, "secret", "alice", true), STORE_OK); /* twice */
	CHECK_INT(store_member_set(s, "general", "alice", true), STORE_OK);
	CHECK_INT(store_member_set(s, "secret", "bob", false), STORE_OK);
	CHECK_INT(store_member_set(s, "secret", "bob", false), STORE_OK);    /* twice */
	CHECK_INT(store_member_set(s, "secret", "nobody", false), STORE_OK); /* never was */
	CHECK_INT(store_each_member(s, seen_member, &v), STORE_OK);
	sort_lines(v.text);
	CHECK_STR(v.text, "general,alice;secret,alice;");
	struct seen stop = {.stop_after = 1};
	CHECK_INT(store_each_member(s, seen_member, &stop), 7);
	CHECK_INT(stop.n, 1);
	CHECK_INT(store_member_set(s, "secret", "Bob", true), STORE_E_BAD);
	CHECK_INT(store_member_set(s, "room:secret", "bob", true), STORE_E_BAD);
	CHECK_INT(store_member_set(s, NULL, "bob", true), STORE_E_BAD);
	CHECK_INT(store_each_member(s, NULL, NULL), STORE_E_BAD);
}

static int seen_read(void *ctx, const char *user, const char *conv, uint64_t seq)
{
	struct seen *v = ctx;
	char line[160];

	snprintf(line, sizeof(line), "%s,%s,%llu;", user, conv, (unsigned long long)seq);
	strncat(v->text, line, sizeof(v->text) - strlen(v->text) - 1);
	return ++v->n == v->stop_after ? 7 : 0;
}

static void test_read_markers_only_move_forward(struct store *s)
{
	struct seen v = {0};

	CHECK_INT(store_read_set(s, "alice", "room:general", 10), STORE_OK);
	CHECK_INT(store_read_set(s, "alice", "room:general", 5), STORE_OK);  /* back: ignored */
	CHECK_INT(store_read_set(s, "alice", "room:general", 10), STORE_OK); /* same */
	CHECK_INT(store_read_set(s, "alice", "dm:alice:bob", 3), STORE_OK);
	CHECK_INT(store_read_set(s, "alice", "dm:alice:bob", 4), STORE_OK);  /* forward */
	CHECK_INT(store_read_set(s, "bob", "dm:alice:bob", 0), STORE_OK);
	CHECK_INT(store_read_set(s, "bob", "dm:alice:bob", STORE_SEQ_MAX), STORE_OK);
	CHECK_INT(store_each_read(s, seen_read, &v), STORE_OK);
	sort_lines(v.text);
	CHECK_STR(v.text, "alice,dm:alice:bob,4;alice,room:general,10;"
	                  "bob,dm:alice:bob,9007199254740991;");
	struct seen stop = {.stop_after = 2};
	CHECK_INT(store_each_read(s, seen_read, &stop), 7);
	CHECK_INT(stop.n, 2);
	CHECK_INT(store_read_set(s, "alice", "room:general", STORE_SEQ_MAX + 1), STORE_E_BAD);
	CHECK_INT(store_read_set(s, "alice", "general", 1), STORE_E_BAD);
	CHECK_INT(store_read_set(s, "", "room:general", 1), STORE_E_BAD);
	CHECK_INT(store_each_read(s, NULL, NULL), STORE_E_BAD);
}

/* The longest ids of PROTOCOL.md section 1 go through whole: a 64-byte room
 * (conv of 69 bytes), a DM of two 32-byte users, a 32-byte owner. */
static int count_room(void *ctx, const struct store_room *r)
{
	struct seen *v = ctx;

	if (strlen(r->name) == NAME_ROOM_MAX && strlen(r->owner) == NAME_USER_MAX)
		v->n++;
	return 0;
}

static void test_longest_ids_are_stored_whole(struct store *s)
{
	char room[NAME_ROOM_MAX + 1], user[NAME_USER_MAX + 1], user2[NAME_USER_MAX + 1];
	char rconv[NAME_CONV_MAX + 1], dconv[NAME_CONV_MAX + 1];
	uint64_t max = 0;

	memset(room, 'r', NAME_ROOM_MAX);
	room[NAME_ROOM_MAX] = '\0';
	memset(user, 'u', NAME_USER_MAX);
	user[NAME_USER_MAX] = '\0';
	memcpy(user2, user, sizeof(user2));
	user2[NAME_USER_MAX - 1] = 'v';
	snprintf(rconv, sizeof(rconv), "room:%s", room);
	snprintf(dconv, sizeof(dconv), "dm:%s:%s", user, user2);
	CHECK_INT(strlen(rconv), NAME_CONV_MAX);
	CHECK_INT(put_range(s, rconv, 1, 3, 3), STORE_OK);
	CHECK_INT(put_range(s, dconv, 1, 2, 3), STORE_OK);
	EXPECT_PAGE(s, rconv, 0, 0, 50, 1, 3);
	EXPECT_PAGE(s, dconv, 3, 0, 50, 1, 2);
	CHECK_INT(store_max_seq(s, rconv, &max), STORE_OK);
	CHECK_INT(max, 3);
	struct store_room r = {.created_ms = 5};
	memcpy(r.name, room, sizeof(room));
	memcpy(r.owner, user, sizeof(user));
	CHECK_INT(store_room_put(s, &r), STORE_OK);
	struct seen v = {0};
	CHECK_INT(store_each_room(s, count_room, &v), STORE_OK);
	CHECK_INT(v.n, 1);
	CHECK_INT(store_member_set(s, room, user, true), STORE_OK);
	CHECK_INT(store_member_set(s, room, user, false), STORE_OK);
	CHECK_INT(store_read_set(s, user, rconv, 2), STORE_OK);
	CHECK_INT(store_read_set(s, user, rconv, 1), STORE_OK);
}

static void test_a_fresh_handle_sees_what_another_wrote(void)
{
	struct store *s = open_or_die();
	uint64_t max = 0;
	char hash[STORE_PWHASH_MAX + 1];

	CHECK_INT(store_max_seq(s, "room:general", &max), STORE_OK);
	CHECK_INT(max, 120);
	CHECK_INT(store_user_get(s, "alice", hash, sizeof(hash)), STORE_OK);
	EXPECT_PAGE(s, "room:general", 0, 0, 3, 118, 120);
	store_close(s);
	store_close(NULL);
}

struct seen_rooms {
	int doomed_deleted, others_deleted, doomed_members;
};

static int see_deleted(void *ctx, const struct store_room *r)
{
	struct seen_rooms *sn = ctx;
	if (strcmp(r->name, "doomed") == 0)
		sn->doomed_deleted += r->deleted;
	else
		sn->others_deleted += r->deleted;
	return 0;
}

static int see_doomed_member(void *ctx, const char *room, const char *user)
{
	struct seen_rooms *sn = ctx;
	(void)user;
	sn->doomed_members += strcmp(room, "doomed") == 0;
	return 0;
}

/* The JSON of stored seq of conv, parsed (NULL when not stored). */
static cJSON *stored(struct store *s, const char *conv, uint64_t seq)
{
	struct store_page p;
	cJSON *o = NULL;

	if (store_history(s, conv, seq + 1, 0, 1, &p) == STORE_OK && p.n == 1 &&
	    p.msgs[0].seq == seq)
		o = cJSON_Parse(p.msgs[0].json);
	store_page_free(&p);
	return o;
}

static int put_json(struct store *s, const char *conv, uint64_t seq, const char *json)
{
	struct store_msg m = {.seq = seq, .json = (char *)json};
	snprintf(m.conv, sizeof(m.conv), "%s", conv);
	return store_put_messages(s, &m, 1);
}

static const char *body_of(const cJSON *o)
{
	const cJSON *b = cJSON_GetObjectItemCaseSensitive(o, "body");
	return cJSON_IsString(b) ? b->valuestring : NULL;
}

/* 1.1: events are stored with their seq; store_amend changes the message;
 * a deletion leaves no text of it, its edits' included. */
static void test_edits_and_deletions_leave_no_text(struct store *s)
{
	const char *c = "room:edits";
	cJSON *o;

	CHECK_INT(put_range(s, c, 1, 1, 1), STORE_OK);
	CHECK_INT(put_json(s, c, 2,
	                   "{\"v\":1,\"type\":\"edit\",\"conv\":\"room:edits\",\"seq\":2,\"id\":\"e2\","
	                   "\"from\":\"alice\",\"ts\":50,\"ref\":1,\"body\":\"second words\"}"),
	          STORE_OK);
	CHECK_INT(store_amend(s, c, 1, "second words", 50), STORE_OK);
	CHECK_INT(store_amend(s, c, 1, "older words", 40), STORE_OK); /* replayed: ignored */
	o = stored(s, c, 1);
	CHECK_STR(body_of(o) ? body_of(o) : "(none)", "second words");
	CHECK(cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(o, "edited")) == 50);
	cJSON_Delete(o);
	o = stored(s, c, 2);
	CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, "type")), "edit");
	CHECK(cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(o, "ref")) == 1);
	cJSON_Delete(o);

	CHECK_INT(put_json(s, c, 3,
	                   "{\"v\":1,\"type\":\"delete\",\"conv\":\"room:edits\",\"seq\":3,\"id\":\"d3\","
	                   "\"from\":\"alice\",\"ts\":60,\"ref\":1}"),
	          STORE_OK);
	CHECK_INT(store_amend(s, c, 1, NULL, 60), STORE_OK);
	CHECK_INT(store_amend(s, c, 1, "revived", 70), STORE_OK); /* no edit after a deletion */
	CHECK_INT(store_amend(s, c, 99, NULL, 70), STORE_OK);     /* not stored: nothing */
	for (uint64_t seq = 1; seq <= 3; seq++) {
		o = stored(s, c, seq);
		CHECK(o != NULL);
		CHECK(body_of(o) == NULL);
		cJSON_Delete(o);
	}
	o = stored(s, c, 1);
	CHECK(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "deleted")));
	CHECK(cJSON_GetObjectItemCaseSensitive(o, "edited") == NULL);
	cJSON_Delete(o);

	/* malformed events are refused */
	CHECK_INT(put_json(s, c, 4,
	                   "{\"v\":1,\"type\":\"delete\",\"conv\":\"room:edits\",\"seq\":4,\"id\":\"d\","
	                   "\"from\":\"alice\",\"ts\":60,\"ref\":1,\"body\":\"x\"}"),
	          STORE_E_BAD);
	CHECK_INT(put_json(s, c, 4,
	                   "{\"v\":1,\"type\":\"edit\",\"conv\":\"room:edits\",\"seq\":4,\"id\":\"d\","
	                   "\"from\":\"alice\",\"ts\":60,\"ref\":4,\"body\":\"x\"}"),
	          STORE_E_BAD);
	CHECK_INT(put_json(s, c, 4,
	                   "{\"v\":1,\"type\":\"shout\",\"conv\":\"room:edits\",\"seq\":4,\"id\":\"d\","
	                   "\"from\":\"alice\",\"to\":\"edits\",\"ts\":60,\"body\":\"x\"}"),
	          STORE_E_BAD);
	CHECK_INT(store_amend(s, "room:Bad", 1, NULL, 1), STORE_E_BAD);
}

/* 1.1 room.delete: the store lets go a page at a time and keeps the name. */
static void test_purge_and_room_delete_go_in_pages(struct store *s)
{
	const char *c = "room:doomed";
	struct store_room r = {.name = "doomed", .owner = "alice", .created_ms = 1000};
	size_t removed = 0, total = 0;
	struct store_page p;
	char user[16];

	CHECK_INT(put_range(s, c, 1, 25, 25), STORE_OK);
	CHECK_INT(store_purge(s, c, 10, &removed), STORE_OK);
	CHECK_INT(removed, 10);
	EXPECT_PAGE(s, c, 0, 0, 100, 11, 25);
	do {
		CHECK_INT(store_purge(s, c, 10, &removed), STORE_OK);
		total += removed;
	} while (removed > 0 && total < 100);
	CHECK_INT(total, 15);
	CHECK_INT(store_history(s, c, 0, 0, 100, &p), STORE_OK);
	CHECK_INT(p.n, 0);
	store_page_free(&p);
	CHECK_INT(store_purge(s, c, 0, &removed), STORE_E_BAD);

	CHECK_INT(store_room_put(s, &r), STORE_OK);
	for (int i = 0; i < 25; i++) {
		snprintf(user, sizeof(user), "u%02d", i);
		CHECK_INT(store_member_set(s, "doomed", user, true), STORE_OK);
	}
	total = 0;
	do {
		CHECK_INT(store_room_delete(s, "doomed", 10, &removed), STORE_OK);
		CHECK(removed <= 10);
		total += removed;
	} while (removed > 0 && total < 100);
	CHECK_INT(total, 25);
	CHECK_INT(store_room_put(s, &r), STORE_OK); /* a late replay keeps the tombstone */
	struct seen_rooms sn = {0};
	CHECK_INT(store_each_room(s, see_deleted, &sn), STORE_OK);
	CHECK_INT(sn.doomed_deleted, 1);
	CHECK_INT(sn.others_deleted, 0);
	CHECK_INT(store_each_member(s, see_doomed_member, &sn), STORE_OK);
	CHECK_INT(sn.doomed_members, 0);
}

int main(int argc, char **argv)
{
	char tmp[256] = "";

	url = argc > 1 ? argv[1] : getenv("CHAT_STORE_URL");
	if (url == NULL || url[0] == '\0') {
		const char *dir = getenv("TMPDIR");
		snprintf(tmp, sizeof(tmp), "%s/test_store_XXXXXX", dir && dir[0] ? dir : "/tmp");
		int fd = mkstemp(tmp);
		if (fd < 0) {
			perror("mkstemp");
			return 2;
		}
		close(fd);
		static char u[300];
		snprintf(u, sizeof(u), "sqlite:%s", tmp);
		url = u;
	}
	printf("store conformance against %s\n", url);

	test_open_rejects_urls_that_name_no_backend();
	test_unwritable_sqlite_path_fails_with_the_path_in_the_error();
	test_unreachable_mongodb_opens_and_calls_say_down_within_seconds();

	struct store *s = open_or_die();
	test_empty_store_answers_empty(s);
	test_history_pages_after_before_latest_and_boundaries(s);
	test_history_limit_bounds_and_bad_arguments(s);
	test_reput_is_idempotent_and_fills_gaps(s);
	test_put_rejects_bad_messages_and_writes_nothing_of_the_batch(s);
	test_max_seq_and_each_max_seq_cover_every_conversation(s);
	test_users_create_conflict_get_and_not_found(s);
	test_each_user_gives_every_account(s);
	test_rooms_put_replace_and_each(s);
	test_members_add_remove_twice_and_each(s);
	test_read_markers_only_move_forward(s);
	test_longest_ids_are_stored_whole(s);
	test_edits_and_deletions_leave_no_text(s);
	test_purge_and_room_delete_go_in_pages(s);
	store_close(s);
	test_a_fresh_handle_sees_what_another_wrote();

	if (tmp[0]) {
		char side[300];
		unlink(tmp);
		snprintf(side, sizeof(side), "%s-wal", tmp);
		unlink(side);
		snprintf(side, sizeof(side), "%s-shm", tmp);
		unlink(side);
	}
	return check_report();
}
