/*
 * storebench: the durable store under load (storage/store.h). Inserts
 * messages in batches, as the persistence worker does (realistic ~150-byte
 * subscriber JSON, conversations interleaved), then asks for history pages
 * of 50 before a random seq of a random conversation, and prints insert
 * throughput and page latency percentiles. scripts/bench-store.sh runs it
 * against SQLite and FerretDB.
 *
 *   storebench URL [--messages N] [--convs N] [--batch N] [--queries N]
 *                  [--insert-seconds S] [--query-seconds S] [--seed N]
 *
 * The store should be empty. With a time budget the run stops early and
 * says how far it got; the figures are then for that size.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "chat/envelope.h"
#include "store.h"

struct opts {
	const char *url;
	long messages, convs, batch, queries;
	double insert_s, query_s;
	unsigned long seed;
};

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* xorshift64*: reproducible without libc's shared rand() state. */
static uint64_t rnd(uint64_t *x)
{
	*x ^= *x >> 12;
	*x ^= *x << 25;
	*x ^= *x >> 27;
	return *x * UINT64_C(2685821657736338717);
}

static void conv_name(long c, char *buf, size_t len)
{
	if (c % 4 == 3) /* a quarter are DMs */
		snprintf(buf, len, "dm:user%04ld:user%04ld", c / 4, c / 4 + 5000);
	else
		snprintf(buf, len, "room:room-%04ld", c);
}

/* A body of 20..60 bytes of words, so the whole JSON is ~150-200 bytes. */
static void body_text(uint64_t *r, char *buf, size_t len)
{
	static const char *words[] = {"hello", "see", "you", "at", "the", "meeting", "ok",
	                              "thanks", "lunch", "today", "build", "is", "green",
	                              "deploy", "after", "review", "\xc3\xa7" "a", "va"};
	size_t want = 20 + rnd(r) % 41, n = 0;

	buf[0] = '\0';
	while (n < want && n + 12 < len) {
		const char *w = words[rnd(r) % (sizeof(words) / sizeof(words[0]))];
		n += (size_t)snprintf(buf + n, len - n, "%s%s", n ? " " : "", w);
	}
}

static int usage(void)
{
	fprintf(stderr, "usage: storebench URL [--messages N] [--convs N] [--batch N] "
	                "[--queries N] [--insert-seconds S] [--query-seconds S] [--seed N]\n");
	return 2;
}

static int parse_args(int argc, char **argv, struct opts *o)
{
	*o = (struct opts){.messages = 1000000, .convs = 1000, .batch = 500, .queries = 10000,
	                   .insert_s = 0, .query_s = 0, .seed = 42};
	if (argc < 2)
		return -1;
	o->url = argv[1];
	for (int i = 2; i + 1 < argc; i += 2) {
		char *end;
		double v = strtod(argv[i + 1], &end);
		if (*end || v < 0)
			return -1;
		if (strcmp(argv[i], "--messages") == 0)
			o->messages = (long)v;
		else if (strcmp(argv[i], "--convs") == 0)
			o->convs = (long)v;
		else if (strcmp(argv[i], "--batch") == 0)
			o->batch = (long)v;
		else if (strcmp(argv[i], "--queries") == 0)
			o->queries = (long)v;
		else if (strcmp(argv[i], "--insert-seconds") == 0)
			o->insert_s = v;
		else if (strcmp(argv[i], "--query-seconds") == 0)
			o->query_s = v;
		else if (strcmp(argv[i], "--seed") == 0)
			o->seed = (unsigned long)v;
		else
			return -1;
	}
	if (argc % 2 != 0 || o->messages < 1 || o->convs < 1 || o->batch < 1 || o->queries < 1)
		return -1;
	return 0;
}

/* Inserts messages i = 0.. in order: conv i % convs, seq i / convs + 1.
 * Returns how many were stored (whole batches), or -1 on a store error. */
static long insert(struct store *s, const struct opts *o)
{
	struct store_msg *batch = calloc((size_t)o->batch, sizeof(*batch));
	uint64_t r = o->seed * 2 + 1;
	double t0 = now_s(), last = t0;
	long done = 0;
	size_t bytes = 0;

	if (batch == NULL)
		return -1;
	while (done < o->messages) {
		long n = o->batch < o->messages - done ? o->batch : o->messages - done;
		for (long k = 0; k < n; k++) {
			long i = done + k;
			char conv[NAME_CONV_MAX + 1], id[32], body[128], to[NAME_ROOM_MAX + 1];
			conv_name(i % o->convs, conv, sizeof(conv));
			snprintf(id, sizeof(id), "%016" PRIx64, rnd(&r));
			snprintf(to, sizeof(to), "%s", conv[0] == 'r' ? conv + 5 : "user0000");
			body_text(&r, body, sizeof(body));
			struct chat_msg m = {.conv = conv, .seq = (uint64_t)(i / o->convs + 1),
			                     .id = id, .from = "user0001", .to = to,
			                     .ts = 1732300000000 + i, .body = body,
			                     .cid = i % 5 == 0 ? "c-1234" : NULL};
			snprintf(batch[k].conv, sizeof(batch[k].conv), "%s", conv);
			batch[k].seq = m.seq;
			batch[k].json = envelope_encode(&m);
			bytes += batch[k].json ? strlen(batch[k].json) : 0;
		}
		int rc = store_put_messages(s, batch, (size_t)n);
		for (long k = 0; k < n; k++)
			free(batch[k].json);
		if (rc != STORE_OK) {
			fprintf(stderr, "put at message %ld: %s (%s)\n", done, store_strerror(rc),
			        store_errmsg(s));
			free(batch);
			return -1;
		}
		done += n;
		double t = now_s();
		if (t - last >= 10) {
			printf("  %ld stored, %.0f msgs/s so far\n", done, done / (t - t0));
			fflush(stdout);
			last = t;
		}
		if (o->insert_s > 0 && t - t0 > o->insert_s && done < o->messages) {
			printf("insert time budget of %.0f s reached at %ld messages\n",
			        o->insert_s, done);
			break;
		}
	}
	double dt = now_s() - t0;
	printf("insert: %ld messages in %.1f s = %.0f msgs/s (batches of %ld, %ld conversations,"
	       " mean JSON %zu bytes)\n",
	       done, dt, done / dt, o->batch, o->convs, done ? bytes / (size_t)done : 0);
	free(batch);
	return done;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double pct(const double *v, long n, double p)
{
	long i = (long)(p / 100.0 * (double)n);

	return v[i < n ? i : n - 1];
}

/* Pages of 50 before a random seq of a random conversation among the
 * stored ones; checks each page has the size it must have. */
static int query(struct store *s, const struct opts *o, long stored)
{
	double *lat = calloc((size_t)o->queries, sizeof(*lat));
	uint64_t r = o->seed * 3 + 7;
	long convs = stored < o->convs ? stored : o->convs, n = 0;
	double t0 = now_s();
	int rc = 0;

	if (lat == NULL)
		return -1;
	for (; n < o->queries; n++) {
		long c = (long)(rnd(&r) % (uint64_t)convs);
		/* conv c holds seqs 1..top */
		uint64_t top = (uint64_t)(stored / o->convs + (c < stored % o->convs ? 1 : 0));
		uint64_t before = 2 + rnd(&r) % top; /* 2..top+1: never empty */
		char conv[NAME_CONV_MAX + 1];
		struct store_page p;
		conv_name(c, conv, sizeof(conv));
		double t = now_s();
		int qrc = store_history(s, conv, before, 0, 50, &p);
		lat[n] = now_s() - t;
		size_t want = before - 1 < 50 ? (size_t)(before - 1) : 50;
		if (qrc != STORE_OK || p.n != want || p.msgs[p.n - 1].seq != before - 1) {
			fprintf(stderr, "page %s before %" PRIu64 ": %s, %zu messages (want %zu)\n",
			        conv, before, store_strerror(qrc), p.n, want);
			rc = -1;
		}
		store_page_free(&p);
		if (rc)
			break;
		if (o->query_s > 0 && now_s() - t0 > o->query_s) {
			n++;
			printf("query time budget of %.0f s reached at %ld pages\n",
			        o->query_s, n);
			break;
		}
	}
	if (n > 0 && rc == 0) {
		double sum = 0;
		for (long i = 0; i < n; i++)
			sum += lat[i];
		qsort(lat, (size_t)n, sizeof(*lat), cmp_double);
		printf("history page of 50 at %ld stored: %ld pages, p50 %.3f ms, p99 %.3f ms, "
		       "p99.9 %.3f ms, max %.3f ms, mean %.3f ms\n",
		       stored, n, pct(lat, n, 50) * 1e3, pct(lat, n, 99) * 1e3,
		       pct(lat, n, 99.9) * 1e3, lat[n - 1] * 1e3, sum / (double)n * 1e3);
	}
	free(lat);
	return rc;
}

int main(int argc, char **argv)
{
	struct store *s = NULL;
	struct opts o;
	char err[256];

	if (parse_args(argc, argv, &o) != 0)
		return usage();
	int rc = store_open(o.url, &s, err, sizeof(err));
	if (rc != STORE_OK) {
		fprintf(stderr, "storebench: %s\n", err);
		return 1;
	}
	if ((rc = store_ping(s)) != STORE_OK) {
		fprintf(stderr, "storebench: %s: %s\n", store_strerror(rc), store_errmsg(s));
		store_close(s);
		return 1;
	}
	printf("store %s\n", o.url);
	long stored = insert(s, &o);
	rc = stored > 0 ? query(s, &o, stored) : -1;
	store_close(s);
	return rc == 0 ? 0 : 1;
}
