/*
 * A test driver for the Redis Cluster client (storage/rcluster.h): runs
 * the asynchronous client in its own poll() loop, as the bridge will, and
 * the blocking one beside it, taking one command per line on stdin and
 * answering one line per command on stdout. tests/integration/
 * test_rcluster.py moves slots and fails nodes over between commands.
 *
 *   rcluster_probe --config FILE    (redis_port, redis_password_file, ...)
 *   environment: PROBE_SEEDS (host:port,...), PROBE_REFRESH_MS, PROBE_TIMEOUT_MS
 *
 * Commands (words separated by one space; no word holds a space):
 *   a KEY ARG...        the command ARG... routed by KEY, asynchronously
 *   s KEY ARG...        the same through the blocking client
 *       answer: STATUS REPLY   (STATUS ok|lost|down|redirects|auth|nomem|arg;
 *                               REPLY int:N, str:S, err:TEXT, nil, arr:N or -)
 *   many a|s N CMD PREFIX ARG...   N commands CMD PREFIX:i ARG... at once
 *       ("%i" in an ARG becomes i); answer: ok=N lost=N down=N other=N errors=N
 *   ready MS            waits until the async client knows a topology
 *   sleep MS            runs the loop for MS
 *   stats a|s           the client's counters, as name=value words
 *   quit
 */
#include <errno.h>
#include <stdbool.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "chat/config.h"
#include "chat/log.h"
#include "rcluster.h"

#define MAX_WORDS 64
#define MAX_FDS 64

struct probe {
	struct rcluster *rc;
	struct rcluster_sync *sc;
	int waiting;   /* async answers still due for the current command */
	bool single;   /* the current command is one "a": print its reply */
	int counts[8]; /* per status, negated: 0 ok, 1 lost, 2 down, ... */
	int errors;    /* ok answers that are error replies */
	char first_error[200];
};

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000.0 + ts.tv_nsec / 1e6;
}

static const char *status_word(int status)
{
	static const char *const words[] = {"ok",   "lost",  "down", "redirects",
	                                    "auth", "nomem", "arg"};
	return status <= 0 && status >= -6 ? words[-status] : "unknown";
}

static void print_reply(int status, const redisReply *r)
{
	printf("%s ", status_word(status));
	if (r == NULL)
		printf("-\n");
	else if (r->type == REDIS_REPLY_INTEGER)
		printf("int:%lld\n", r->integer);
	else if (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS)
		printf("str:%.*s\n", (int)r->len, r->str);
	else if (r->type == REDIS_REPLY_ERROR)
		printf("err:%s\n", r->str);
	else if (r->type == REDIS_REPLY_NIL)
		printf("nil\n");
	else
		printf("arr:%zu\n", r->elements);
	fflush(stdout);
}

static void count(struct probe *p, int status, const redisReply *r)
{
	p->counts[status <= 0 && status >= -6 ? -status : 7]++;
	if (status == RCLUSTER_OK && r->type == REDIS_REPLY_ERROR && p->errors++ == 0)
		snprintf(p->first_error, sizeof(p->first_error), "%s", r->str);
}

static void on_answer(struct rcluster *rc, int status, redisReply *reply, void *priv)
{
	struct probe *p = priv;

	(void)rc;
	if (p->single)
		print_reply(status, reply);
	else
		count(p, status, reply);
	p->waiting--;
}

/* One turn of the loop: poll the client's sockets (and stdin, when
 * watch_stdin) for at most ms, hand readiness back, tick. Returns whether
 * stdin is readable. */
static int turn(struct probe *p, int ms, int watch_stdin)
{
	struct pollfd fds[MAX_FDS + 1];
	int n = rcluster_pollfds(p->rc, fds, MAX_FDS);
	int t = rcluster_timeout_ms(p->rc);

	if (watch_stdin)
		fds[n++] = (struct pollfd){STDIN_FILENO, POLLIN, 0};
	if (poll(fds, (nfds_t)n, t < ms ? t : ms) < 0 && errno != EINTR) {
		perror("poll");
		exit(1);
	}
	int in = 0;
	for (int i = 0; i < n; i++) {
		if (watch_stdin && i == n - 1)
			in = fds[i].revents != 0;
		else if (fds[i].revents)
			rcluster_handle(p->rc, fds[i].fd, fds[i].revents);
	}
	rcluster_tick(p->rc);
	return in;
}

/* Runs the loop until every async answer is in (60 s at most). */
static void drain(struct probe *p)
{
	double end = now_ms() + 60000;

	while (p->waiting > 0 && now_ms() < end)
		turn(p, 50, 0);
	if (p->waiting > 0) {
		fprintf(stderr, "rcluster_probe: %d answers never came\n", p->waiting);
		exit(1);
	}
}

static int one_sync(struct probe *p, const char *key, int argc, const char **argv, int print)
{
	redisReply *r;
	int status = rcluster_sync_command_argv(p->sc, key, &r, argc, argv, NULL);

	if (print)
		print_reply(status, r);
	else
		count(p, status, r);
	freeReplyObject(r);
	return status;
}

static void many(struct probe *p, char **w, int nw)
{
	char keys[64], args[MAX_WORDS][64];
	const char *argv[MAX_WORDS];
	int async = strcmp(w[1], "a") == 0, n = atoi(w[2]);

	memset(p->counts, 0, sizeof(p->counts));
	p->errors = 0;
	p->first_error[0] = '\0';
	p->single = false;
	for (int i = 0; i < n; i++) {
		snprintf(keys, sizeof(keys), "%s:%d", w[4], i);
		argv[0] = w[3];
		argv[1] = keys;
		for (int k = 5; k < nw; k++) {
			const char *at = strstr(w[k], "%i");
			if (at)
				snprintf(args[k], sizeof(args[k]), "%.*s%d%s", (int)(at - w[k]),
				         w[k], i, at + 2);
			else
				snprintf(args[k], sizeof(args[k]), "%s", w[k]);
			argv[k - 3] = args[k];
		}
		if (!async) {
			one_sync(p, keys, nw - 3, argv, 0);
			continue;
		}
		int status = rcluster_command_argv(p->rc, keys, on_answer, p, nw - 3, argv, NULL);
		if (status != 0)
			count(p, status, NULL);
		else
			p->waiting++;
	}
	drain(p);
	printf("ok=%d lost=%d down=%d other=%d errors=%d%s%s\n", p->counts[0], p->counts[1],
	       p->counts[2],
	       p->counts[3] + p->counts[4] + p->counts[5] + p->counts[6] + p->counts[7], p->errors,
	       p->errors ? " first_error=" : "", p->first_error);
	fflush(stdout);
}

static void stats(struct probe *p, const char *which)
{
	struct rcluster_stats s;

	if (strcmp(which, "s") == 0)
		rcluster_sync_get_stats(p->sc, &s);
	else
		rcluster_get_stats(p->rc, &s);
	printf("moved=%lu ask=%lu refreshes=%lu refresh_failures=%lu links_lost=%lu timeouts=%lu "
	       "nodes=%zu links=%zu standalone=%d\n",
	       s.moved, s.ask, s.refreshes, s.refresh_failures, s.links_lost, s.timeouts, s.nodes,
	       s.links, s.standalone);
	fflush(stdout);
}

/* Runs one command line; returns 0 at "quit". */
static int run_line(struct probe *p, char *line)
{
	char *w[MAX_WORDS];
	int nw = 0;

	for (char *t = strtok(line, " "); t && nw < MAX_WORDS; t = strtok(NULL, " "))
		w[nw++] = t;
	if (nw == 0)
		return 1;
	if (strcmp(w[0], "quit") == 0)
		return 0;
	if ((strcmp(w[0], "a") == 0 || strcmp(w[0], "s") == 0) && nw >= 3) {
		if (w[0][0] == 's') {
			one_sync(p, w[1], nw - 2, (const char **)w + 2, 1);
			return 1;
		}
		p->single = true;
		int status = rcluster_command_argv(p->rc, w[1], on_answer, p, nw - 2,
		                                   (const char **)w + 2, NULL);
		if (status != 0) {
			print_reply(status, NULL);
			return 1;
		}
		p->waiting = 1;
		drain(p);
	} else if (strcmp(w[0], "many") == 0 && nw >= 5) {
		many(p, w, nw);
	} else if (strcmp(w[0], "ready") == 0 && nw == 2) {
		double end = now_ms() + atoi(w[1]);
		while (!rcluster_ready(p->rc) && now_ms() < end)
			turn(p, 50, 0);
		printf("%s\n", rcluster_ready(p->rc) ? "ready" : "timeout");
		fflush(stdout);
	} else if (strcmp(w[0], "sleep") == 0 && nw == 2) {
		double end = now_ms() + atoi(w[1]);
		while (now_ms() < end)
			turn(p, (int)(end - now_ms()) + 1, 0);
		printf("slept\n");
		fflush(stdout);
	} else if (strcmp(w[0], "stats") == 0 && nw == 2) {
		stats(p, w[1]);
	} else {
		printf("usage: bad command '%s'\n", w[0]);
		fflush(stdout);
	}
	return 1;
}

int main(int argc, char **argv)
{
	struct chat_config cfg;
	struct probe p = {0};
	char err[512], buf[8192];
	size_t have = 0;
	int rc = config_from_args(&cfg, argc, argv, "rcluster_probe");

	if (rc != 0)
		return rc;
	struct rcluster_opts opts = {
	    .name = "probe",
	    .seeds = getenv("PROBE_SEEDS"),
	    .refresh_ms = getenv("PROBE_REFRESH_MS") ? atoi(getenv("PROBE_REFRESH_MS")) : 0,
	    .timeout_ms = getenv("PROBE_TIMEOUT_MS") ? atoi(getenv("PROBE_TIMEOUT_MS")) : 0,
	};
	p.rc = rcluster_new(&cfg, &opts, err, sizeof(err));
	p.sc = p.rc ? rcluster_sync_new(&cfg, &opts, err, sizeof(err)) : NULL;
	if (p.sc == NULL) {
		fprintf(stderr, "rcluster_probe: %s\n", err);
		rcluster_free(p.rc);
		config_free(&cfg);
		return 1;
	}
	log_set_level(LOG_INFO);
	int going = 1;
	while (going) {
		char *nl;
		while (going && (nl = memchr(buf, '\n', have)) != NULL) {
			*nl = '\0';
			going = run_line(&p, buf);
			have -= (size_t)(nl + 1 - buf);
			memmove(buf, nl + 1, have);
		}
		if (!going || !turn(&p, 1000, 1))
			continue;
		ssize_t got = read(STDIN_FILENO, buf + have, sizeof(buf) - 1 - have);
		if (got <= 0)
			break; /* stdin closed: the test is done */
		have += (size_t)got;
	}
	rcluster_sync_free(p.sc);
	rcluster_free(p.rc);
	config_free(&cfg);
	return 0;
}
