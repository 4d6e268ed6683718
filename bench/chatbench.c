/*
 * chatbench: measures a broker from outside, with many MQTT 3.1.1
 * connections driven by one epoll loop, so the client costs little next to
 * the broker it measures. scripts/bench.sh runs it against a plain
 * mosquitto and one with the chat plugin, in the same run, and prints the
 * ratios.
 *
 *   chatbench connect --port P --count N [--secret-file F] [--inflight K]
 *       opens N connections (each with its own token when F is given) and
 *       reports connects/s from the first SYN to the last CONNACK.
 *   chatbench fanout --port P --subs S --seconds T [--secret-file F]
 *       S subscribers on one room topic and one publisher (a service token)
 *       sending QoS 0 as fast as the slowest reader allows; reports
 *       delivered messages/s, and with --broker-pid the broker's CPU time
 *       per delivered message.
 *
 *   chatbench latency --port P [--port2 P2] --pubs N --rate R --subs S
 *                     --seconds T [--secret-file F]
 *       N publishers share R messages/s on a fixed schedule (R = 0: as fast
 *       as the window allows, to find saturation); publishers and the S
 *       subscribers alternate between the two ports. Each message carries its scheduled
 *       send time, so a stalled system cannot hide its queue: latency counts
 *       from when the message should have left. With F (the chat stack),
 *       publishers post to chat/in/<me>/room/bench through the bridge; without
 *       it (a plain broker), straight to chat/room/bench.
 *   chatbench history --port P --secret-file F [--count N] [--deep MAX]
 *       N history requests (limit 50) on room:bench, one at a time, timed
 *       from the request's send to its reply: the newest page (Redis's
 *       recent list), or with MAX > 0 a page before a random seq in
 *       1,000..MAX (the store). Prints p50/p99/p99.9.
 *   chatbench acl [--count N]
 *       times the plugin's per-delivery read check in-process (connection
 *       lookup + topic rules) against a table of 10,000 connections.
 *
 * The MQTT framing here is the few packets a benchmark needs, nothing more.
 * Tokens are minted before the clock starts.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>

#include "acl.h"
#include "chat/config.h"
#include "clients.h"
#include "chat/token.h"

#define RBUF 65536

enum state { ST_CONNECTING, ST_CONNACK, ST_SUBACK, ST_READY, ST_DONE };

struct conn {
	int fd;
	enum state state;
	unsigned char *out; /* pending CONNECT (+SUBSCRIBE) bytes */
	size_t out_len, out_off;
	unsigned char rbuf[RBUF];
	size_t rlen;
	uint64_t received;
	int want_suback; /* the CONNECT bytes carry a SUBSCRIBE too */
	struct lat_hist *hist; /* latency mode: record each PUBLISH's age */
};

/* Latency histogram: 10 us buckets up to 2 s, then one overflow bucket. */
#define LAT_BUCKET_US 10
#define LAT_BUCKETS 200000

struct lat_hist {
	uint64_t b[LAT_BUCKETS + 1];
	uint64_t count;
};

static uint64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* Reads the send time (ns) from a payload: plain digits, or the chat
 * envelope's "body":"<digits>". Returns 0 when there is none. */
static uint64_t payload_time(const unsigned char *p, size_t n)
{
	static const char key[] = "\"body\":\"";
	size_t i = 0;
	if (n > 0 && p[0] == '{') {
		const unsigned char *k = memmem(p, n, key, sizeof(key) - 1);
		if (k == NULL)
			return 0;
		i = (size_t)(k - p) + sizeof(key) - 1;
	}
	uint64_t v = 0;
	for (; i < n && p[i] >= '0' && p[i] <= '9'; i++)
		v = v * 10 + (uint64_t)(p[i] - '0');
	return v;
}

static void hist_add(struct lat_hist *h, uint64_t sent_ns)
{
	uint64_t now = mono_ns();
	uint64_t us = now > sent_ns ? (now - sent_ns) / 1000 : 0;
	uint64_t i = us / LAT_BUCKET_US;
	h->b[i < LAT_BUCKETS ? i : LAT_BUCKETS]++;
	h->count++;
}

/* The latency (ms) below which a fraction q of the samples fall. */
static double hist_quantile(const struct lat_hist *h, double q)
{
	uint64_t want = (uint64_t)(q * (double)h->count), seen = 0;
	if (want >= h->count && h->count > 0)
		want = h->count - 1;
	for (size_t i = 0; i <= LAT_BUCKETS; i++) {
		seen += h->b[i];
		if (seen > want)
			return (double)((i + 1) * LAT_BUCKET_US) / 1000.0;
	}
	return 0;
}

struct opts {
	int port;
	int count;
	int inflight;
	int subs;
	double seconds;
	int payload;
	const char *secret_file;
	int broker_pid;
	int port2;
	int window; /* latency --rate 0: messages in flight per subscriber */
	int deep;   /* history: pages before a random seq up to this */
	int pubs;
	double rate;
};

static struct token_keyring keys;
static int have_keys;

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void die(const char *what)
{
	fprintf(stderr, "chatbench: %s: %s\n", what, strerror(errno));
	exit(1);
}

static size_t put_len(unsigned char *p, size_t n)
{
	size_t i = 0;
	do {
		unsigned char b = n % 128;
		n /= 128;
		p[i++] = n ? (b | 0x80) : b;
	} while (n);
	return i;
}

static size_t put_str(unsigned char *p, const char *s, size_t n)
{
	p[0] = (unsigned char)(n >> 8);
	p[1] = (unsigned char)n;
	memcpy(p + 2, s, n);
	return n + 2;
}

/* What a bridge tells its broker's plugin before it delivers to any room
 * (authplugin/rooms.h): every private room is known (none here), so a room
 * without a state is public. The plugin keeps a room without a state closed
 * until a service says so, and the benchmarks' publisher is that service. */
static const char room_sync[] = "sync begin\nsync end";
#define ROOM_SYNC_TOPIC "$CONTROL/chat/v1"

/* Builds CONNECT for user (client id = user), with a token when keys are
 * loaded, and appends SUBSCRIBE topic when sub is not NULL; a service
 * (the fan-out's publisher) also sends room_sync. malloc'd. */
static unsigned char *build_connect(const char *user, enum token_role role, const char *sub,
                                    size_t *len)
{
	char *tok = NULL;
	if (have_keys && token_mint(&keys, user, role, (int64_t)time(NULL), 3600, &tok) != 0) {
		fprintf(stderr, "chatbench: cannot mint a token\n");
		exit(1);
	}
	size_t ul = strlen(user), tl = tok ? strlen(tok) : 0;
	size_t body = 10 + 2 + ul + (tok ? 2 + ul + 2 + tl : 0);
	size_t sl = sub ? strlen(sub) : 0;
	bool sync = tok && role == ROLE_SERVICE;
	size_t rl = sizeof(room_sync) - 1, tpl = strlen(ROOM_SYNC_TOPIC);
	unsigned char *p = malloc(body + 5 + (sub ? sl + 16 : 0) + (sync ? 5 + 2 + tpl + rl : 0));
	size_t n = 0;
	p[n++] = 0x10;
	n += put_len(p + n, body);
	n += put_str(p + n, "MQTT", 4);
	p[n++] = 4;
	p[n++] = tok ? 0xC2 : 0x02; /* username, password, clean session */
	p[n++] = 0;
	p[n++] = 0; /* keepalive 0: no pings during the run */
	n += put_str(p + n, user, ul);
	if (tok) {
		n += put_str(p + n, user, ul);
		n += put_str(p + n, tok, tl);
	}
	if (sub) {
		p[n++] = 0x82;
		n += put_len(p + n, 2 + 2 + sl + 1);
		p[n++] = 0;
		p[n++] = 1;
		n += put_str(p + n, sub, sl);
		p[n++] = 0; /* QoS 0 */
	}
	if (sync) {
		p[n++] = 0x30; /* PUBLISH, QoS 0 */
		n += put_len(p + n, 2 + tpl + rl);
		n += put_str(p + n, ROOM_SYNC_TOPIC, tpl);
		memcpy(p + n, room_sync, rl);
		n += rl;
	}
	free(tok);
	*len = n;
	return p;
}

static int open_conn(int ep, int port, struct conn *c)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	if (c->fd < 0)
		die("socket");
	int one = 1;
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(c->fd, (struct sockaddr *)&a, sizeof(a)) != 0 && errno != EINPROGRESS)
		die("connect");
	c->state = ST_CONNECTING;
	struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.ptr = c};
	if (epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev) != 0)
		die("epoll_ctl");
	return 0;
}

static void flush_out(int ep, struct conn *c)
{
	while (c->out_off < c->out_len) {
		ssize_t w = write(c->fd, c->out + c->out_off, c->out_len - c->out_off);
		if (w < 0) {
			if (errno == EAGAIN || errno == ENOTCONN)
				return;
			die("write");
		}
		c->out_off += (size_t)w;
	}
	struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
	epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
	if (c->state == ST_CONNECTING)
		c->state = ST_CONNACK;
}

/* Reads and frames packets; counts PUBLISH, notes CONNACK and SUBACK.
 * Returns -1 when the connection was refused or closed. */
static int read_packets(struct conn *c, int *refused)
{
	for (;;) {
		ssize_t r = read(c->fd, c->rbuf + c->rlen, RBUF - c->rlen);
		if (r == 0)
			return -1;
		if (r < 0)
			return errno == EAGAIN ? 0 : -1;
		c->rlen += (size_t)r;
		size_t off = 0;
		while (c->rlen - off >= 2) {
			size_t len = 0, mul = 1, i = 1;
			int complete = 0;
			while (off + i < c->rlen && i <= 4) {
				unsigned char b = c->rbuf[off + i++];
				len += (b & 127) * mul;
				mul *= 128;
				if (!(b & 128)) {
					complete = 1;
					break;
				}
			}
			if (!complete || c->rlen - off < i + len)
				break;
			unsigned char type = c->rbuf[off] >> 4;
			if (type == 3) {
				c->received++;
				if (c->hist) {
					size_t body = off + i;
					size_t tl = ((size_t)c->rbuf[body] << 8) | c->rbuf[body + 1];
					size_t pay = body + 2 + tl + ((c->rbuf[off] & 0x06) ? 2 : 0);
					uint64_t t = payload_time(c->rbuf + pay, off + i + len - pay);
					if (t)
						hist_add(c->hist, t);
				}
			} else if (type == 2) {
				if (c->rbuf[off + i + 1] != 0) {
					*refused = 1;
					return -1;
				}
				c->state = c->want_suback ? ST_SUBACK : ST_READY;
			} else if (type == 9) {
				if (c->rbuf[off + i + 2] >= 0x80) {
					*refused = 1;
					return -1;
				}
				c->state = ST_READY;
			}
			off += i + len;
		}
		memmove(c->rbuf, c->rbuf + off, c->rlen - off);
		c->rlen -= off;
	}
}

static void raise_nofile(void)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

static int run_connect(const struct opts *o)
{
	struct conn *cs = calloc((size_t)o->count, sizeof(*cs));
	char user[32];
	int ep = epoll_create1(0), refused = 0, done = 0, started = 0, active = 0;

	for (int i = 0; i < o->count; i++) {
		snprintf(user, sizeof(user), "u%d", i);
		cs[i].out = build_connect(user, ROLE_USER, NULL, &cs[i].out_len);
	}
	double t0 = now_s();
	struct epoll_event evs[256];
	while (done < o->count) {
		while (active < o->inflight && started < o->count) {
			open_conn(ep, o->port, &cs[started++]);
			active++;
		}
		int n = epoll_wait(ep, evs, 256, 5000);
		if (n == 0) {
			fprintf(stderr, "chatbench: stalled with %d of %d connected\n", done, o->count);
			return 1;
		}
		for (int k = 0; k < n; k++) {
			struct conn *c = evs[k].data.ptr;
			if (evs[k].events & EPOLLOUT)
				flush_out(ep, c);
			if (evs[k].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
				int bad = 0;
				if (read_packets(c, &bad) < 0 || c->state == ST_READY) {
					refused += bad || c->state != ST_READY;
					epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
					c->state = ST_DONE;
					done++;
					active--;
				}
			}
		}
	}
	double dt = now_s() - t0;
	printf("connects=%d refused=%d seconds=%.3f connects_per_s=%.0f\n", o->count, refused, dt,
	       o->count / dt);
	for (int i = 0; i < o->count; i++) {
		close(cs[i].fd);
		free(cs[i].out);
	}
	free(cs);
	close(ep);
	return refused ? 1 : 0;
}

static double broker_cpu_s(int pid)
{
	char path[64], buf[1024];
	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	FILE *f = fopen(path, "r");
	if (f == NULL)
		return -1;
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	char *p = strrchr(buf, ')');
	unsigned long ut = 0, st = 0;
	/* fields after ")": state ppid ... utime is the 12th, stime the 13th */
	if (p == NULL || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut,
	                        &st) != 2)
		return -1;
	return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

/* Drives the set-up of n fresh connections (CONNECT, and SUBSCRIBE where
 * asked) until all are ready. Returns 0, or -1 with a line on stderr when
 * one is refused or closed, or 10 s pass. */
static int wait_ready(int ep, int n)
{
	struct epoll_event evs[256];
	int ready = 0;
	double deadline = now_s() + 10;
	while (ready < n) {
		int k = epoll_wait(ep, evs, 256, 200);
		for (int j = 0; j < k; j++) {
			struct conn *c = evs[j].data.ptr;
			if (evs[j].events & EPOLLOUT)
				flush_out(ep, c);
			if (evs[j].events & EPOLLIN) {
				int bad = 0;
				enum state before = c->state;
				if (read_packets(c, &bad) < 0) {
					fprintf(stderr, "chatbench: connection %s during set-up\n",
					        bad ? "refused" : "closed");
					return -1;
				}
				if (c->state == ST_READY && before != ST_READY)
					ready++;
			}
		}
		if (now_s() > deadline) {
			fprintf(stderr, "chatbench: only %d of %d clients ready\n", ready, n);
			return -1;
		}
	}
	return 0;
}

/* Reads what the k ready connections received and adds their PUBLISH
 * count to *total. Returns -1 (with a line) when one closed. */
static int read_deliveries(const struct epoll_event *evs, int k, uint64_t *total)
{
	int refused = 0;
	for (int j = 0; j < k; j++) {
		struct conn *c = evs[j].data.ptr;
		uint64_t before = c->received;
		if (read_packets(c, &refused) < 0) {
			fprintf(stderr, "chatbench: a connection closed during the run\n");
			return -1;
		}
		*total += c->received - before;
	}
	return 0;
}

static int run_fanout(const struct opts *o)
{
	int n = o->subs + 1, ep = epoll_create1(0);
	struct conn *cs = calloc((size_t)n, sizeof(*cs));
	struct conn *pub = &cs[o->subs];
	char user[32];
	const char *topic = "chat/room/bench";

	for (int i = 0; i < o->subs; i++) {
		snprintf(user, sizeof(user), "s%d", i);
		cs[i].out = build_connect(user, ROLE_USER, topic, &cs[i].out_len);
		cs[i].want_suback = 1;
	}
	pub->out = build_connect("bench-pub", ROLE_SERVICE, NULL, &pub->out_len);
	for (int i = 0; i < n; i++)
		open_conn(ep, o->port, &cs[i]);

	/* one pre-encoded batch of PUBLISH packets */
	enum { BATCH = 32 };
	size_t tl = strlen(topic), plen = 2 + tl + (size_t)o->payload;
	unsigned char pkt[512], *batch = malloc(BATCH * 512);
	size_t pk = 0;
	pkt[pk++] = 0x30;
	pk += put_len(pkt + pk, plen);
	pk += put_str(pkt + pk, topic, tl);
	memset(pkt + pk, 'x', (size_t)o->payload);
	pk += (size_t)o->payload;
	for (int i = 0; i < BATCH; i++)
		memcpy(batch + (size_t)i * pk, pkt, pk);

	if (wait_ready(ep, n) != 0)
		return 1;
	struct epoll_event evs[256];
	struct epoll_event ev = {.events = EPOLLIN, .data.ptr = pub};
	epoll_ctl(ep, EPOLL_CTL_MOD, pub->fd, &ev);

	/* Keep at most `window` messages per subscriber in flight, so that
	 * what is measured is delivery, not the broker's queue limits. */
	const uint64_t window = 200;
	uint64_t published = 0, total = 0, base_total = 0, base_pub = 0;
	double t_start = now_s(), warm_end = t_start + 1.0, t_end = warm_end + o->seconds;
	double cpu0 = 0, t0 = 0;
	int measuring = 0;
	while (now_s() < t_end) {
		if (!measuring && now_s() >= warm_end) {
			measuring = 1;
			base_total = total;
			base_pub = published;
			t0 = now_s();
			if (o->broker_pid)
				cpu0 = broker_cpu_s(o->broker_pid);
		}
		if (published * (uint64_t)o->subs - total < window * (uint64_t)o->subs) {
			ssize_t w = write(pub->fd, batch, BATCH * pk);
			if (w < 0 && errno != EAGAIN)
				die("publish");
			if (w > 0) {
				/* a partial write leaves a packet cut: finish it blocking */
				size_t rest = (size_t)w % pk;
				if (rest) {
					int fl = fcntl(pub->fd, F_GETFL);
					fcntl(pub->fd, F_SETFL, fl & ~O_NONBLOCK);
					if (write(pub->fd, pkt + rest, pk - rest) != (ssize_t)(pk - rest))
						die("publish");
					fcntl(pub->fd, F_SETFL, fl);
					w += (ssize_t)(pk - rest);
				}
				published += (uint64_t)w / pk;
			}
		}
		int k = epoll_wait(ep, evs, 256, 1);
		if (read_deliveries(evs, k, &total) != 0)
			return 1;
	}
	double dt = now_s() - t0;
	double cpu = o->broker_pid ? broker_cpu_s(o->broker_pid) - cpu0 : 0;
	uint64_t delivered = total - base_total;
	printf("subs=%d published=%llu delivered=%llu seconds=%.2f delivered_per_s=%.0f",
	       o->subs, (unsigned long long)(published - base_pub),
	       (unsigned long long)delivered, dt, delivered / dt);
	if (o->broker_pid)
		printf(" broker_cpu_s=%.3f broker_ns_per_delivery=%.1f", cpu,
		       delivered ? cpu * 1e9 / (double)delivered : 0.0);
	printf("\n");
	for (int i = 0; i < n; i++) {
		close(cs[i].fd);
		free(cs[i].out);
	}
	free(cs);
	free(batch);
	close(ep);
	return 0;
}

/* Appends one QoS 0 PUBLISH of topic with the send time as its payload. */
static size_t put_publish(unsigned char *p, const char *topic, uint64_t t_ns)
{
	char body[24];
	size_t tl = strlen(topic);
	int bl = snprintf(body, sizeof(body), "%llu", (unsigned long long)t_ns);
	size_t n = 0;
	p[n++] = 0x30;
	n += put_len(p + n, 2 + tl + (size_t)bl);
	n += put_str(p + n, topic, tl);
	memcpy(p + n, body, (size_t)bl);
	return n + (size_t)bl;
}

static int run_latency(const struct opts *o)
{
	int n = o->subs + o->pubs, ep = epoll_create1(0);
	struct conn *cs = calloc((size_t)n, sizeof(*cs));
	struct lat_hist *hist = calloc(1, sizeof(*hist));
	char user[32], (*topics)[64] = calloc((size_t)o->pubs, 64);
	const char *room = "chat/room/bench";

	for (int i = 0; i < o->subs; i++) {
		snprintf(user, sizeof(user), "r%d", i);
		cs[i].out = build_connect(user, ROLE_USER, room, &cs[i].out_len);
		cs[i].want_suback = 1;
		cs[i].hist = hist;
		open_conn(ep, (i % 2 && o->port2) ? o->port2 : o->port, &cs[i]);
	}
	for (int i = 0; i < o->pubs; i++) {
		struct conn *c = &cs[o->subs + i];
		snprintf(user, sizeof(user), "p%d", i);
		c->out = build_connect(user, ROLE_USER, NULL, &c->out_len);
		open_conn(ep, (i % 2 && o->port2) ? o->port2 : o->port, c);
		if (have_keys)
			snprintf(topics[i], 64, "chat/in/p%d/room/bench", i);
		else
			snprintf(topics[i], 64, "%s", room);
	}
	if (wait_ready(ep, n) != 0)
		return 1;
	struct epoll_event evs[256];
	if (have_keys) {
		/* the chat stack needs the room; "conflict" on a second run is fine */
		unsigned char pkt[256];
		const char *req = "{\"id\":\"b\",\"method\":\"room.create\",\"params\":{\"room\":\"bench\"}}";
		size_t rl = strlen(req), tl = strlen("chat/in/p0/rpc"), k = 0;
		pkt[k++] = 0x30;
		k += put_len(pkt + k, 2 + tl + rl);
		k += put_str(pkt + k, "chat/in/p0/rpc", tl);
		memcpy(pkt + k, req, rl);
		if (write(cs[o->subs].fd, pkt, k + rl) < 0)
			die("write");
		usleep(500000);
	}
	for (int i = o->subs; i < n; i++) {
		struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &cs[i]};
		epoll_ctl(ep, EPOLL_CTL_MOD, cs[i].fd, &ev);
		/* publishers block when the broker pushes back */
		fcntl(cs[i].fd, F_SETFL, fcntl(cs[i].fd, F_GETFL) & ~O_NONBLOCK);
	}

	/* fixed schedule, or with rate 0 at most `window` in flight */
	unsigned char *buf = malloc(65536);
	uint64_t sent = 0, total = 0, base_total = 0, base_sent = 0;
	const uint64_t window = (uint64_t)o->window;
	uint64_t t0 = mono_ns(), warm = t0 + 1000000000ULL;
	uint64_t end = warm + (uint64_t)(o->seconds * 1e9);
	int measuring = 0;
	double step_ns = o->rate > 0 ? 1e9 / o->rate : 0;
	while (mono_ns() < end) {
		uint64_t now = mono_ns();
		if (!measuring && now >= warm) {
			measuring = 1;
			memset(hist, 0, sizeof(*hist));
			base_total = total;
			base_sent = sent;
		}
		/* publish what is due, spread over the publishers */
		for (int burst = 0; burst < 64; burst++) {
			uint64_t due;
			if (step_ns > 0) {
				due = t0 + (uint64_t)((double)sent * step_ns);
				if (due > now)
					break;
			} else {
				if (sent * (uint64_t)o->subs - total >= window * (uint64_t)o->subs)
					break;
				due = now;
			}
			int p = (int)(sent % (uint64_t)o->pubs);
			size_t len = put_publish(buf, topics[p], due);
			if (write(cs[o->subs + p].fd, buf, len) != (ssize_t)len)
				die("publish");
			sent++;
		}
		int k = epoll_wait(ep, evs, 256, 0);
		if (k == 0 && step_ns > 0) {
			uint64_t next = t0 + (uint64_t)((double)sent * step_ns);
			uint64_t gap = next > mono_ns() ? next - mono_ns() : 0;
			k = epoll_wait(ep, evs, 256, gap > 1000000 ? 1 : 0);
		} else if (k == 0) {
			/* the window is full: wait for deliveries instead of spinning,
			 * so the client does not take a core from the system measured */
			k = epoll_wait(ep, evs, 256, 1);
		}
		if (read_deliveries(evs, k, &total) != 0)
			return 1;
	}
	double dt = (double)(mono_ns() - warm) / 1e9;
	uint64_t delivered = total - base_total, published = sent - base_sent;
	printf("pubs=%d subs=%d rate=%.0f published=%llu delivered=%llu expected=%llu seconds=%.2f "
	       "delivered_per_s=%.0f p50_ms=%.3f p99_ms=%.3f p999_ms=%.3f max_ms=%.3f\n",
	       o->pubs, o->subs, o->rate, (unsigned long long)published,
	       (unsigned long long)delivered, (unsigned long long)(published * (uint64_t)o->subs),
	       dt, (double)delivered / dt, hist_quantile(hist, 0.5), hist_quantile(hist, 0.99),
	       hist_quantile(hist, 0.999), hist_quantile(hist, 1.0));
	for (int i = 0; i < n; i++) {
		close(cs[i].fd);
		free(cs[i].out);
	}
	free(cs);
	free(hist);
	free(buf);
	free(topics);
	close(ep);
	return 0;
}

static int run_history(const struct opts *o)
{
	static const char topic[] = "chat/in/hbench/rpc";
	struct conn c = {0};
	struct lat_hist *hist = calloc(1, sizeof(*hist));
	unsigned char pkt[512];
	char req[256];
	int ep = epoll_create1(0), refused = 0;

	if (!have_keys || hist == NULL) {
		fprintf(stderr, "chatbench: history needs --secret-file\n");
		return 2;
	}
	c.out = build_connect("hbench", ROLE_USER, "chat/user/hbench/rpc", &c.out_len);
	c.want_suback = 1;
	open_conn(ep, o->port, &c);
	if (wait_ready(ep, 1) != 0)
		return 1;
	srandom(42);
	for (int i = 0; i < o->count; i++) {
		int rl;
		if (o->deep > 1000)
			rl = snprintf(req, sizeof(req),
			              "{\"id\":\"h%d\",\"method\":\"history\",\"params\":{\"conv\":"
			              "\"room:bench\",\"limit\":50,\"before\":%ld}}",
			              i, 1000 + random() % (o->deep - 1000));
		else
			rl = snprintf(req, sizeof(req),
			              "{\"id\":\"h%d\",\"method\":\"history\",\"params\":{\"conv\":"
			              "\"room:bench\",\"limit\":50}}",
			              i);
		size_t tl = sizeof(topic) - 1, k = 0;
		pkt[k++] = 0x30;
		k += put_len(pkt + k, 2 + tl + (size_t)rl);
		k += put_str(pkt + k, topic, tl);
		memcpy(pkt + k, req, (size_t)rl);
		uint64_t before = c.received, t0 = mono_ns();
		if (write(c.fd, pkt, k + (size_t)rl) != (ssize_t)(k + (size_t)rl))
			die("write");
		while (c.received == before) {
			struct epoll_event ev;
			if (epoll_wait(ep, &ev, 1, 5000) <= 0 || read_packets(&c, &refused) < 0) {
				fprintf(stderr, "chatbench: no reply to history request %d\n", i);
				return 1;
			}
		}
		hist_add(hist, t0);
	}
	printf("history requests=%d deep=%d p50_ms=%.3f p99_ms=%.3f p999_ms=%.3f max_ms=%.3f\n",
	       o->count, o->deep, hist_quantile(hist, 0.5), hist_quantile(hist, 0.99),
	       hist_quantile(hist, 0.999), hist_quantile(hist, 1.0));
	close(c.fd);
	free(c.out);
	free(hist);
	close(ep);
	return 0;
}

/* The read check as the plugin runs it for every subscriber of every
 * message: find the connection, then apply the topic rules. */
static int run_acl(const struct opts *o)
{
	struct client_table t;
	struct acl_rules rules = {"chat", 4, NULL, NULL};
	enum { CONNS = 10000 };
	static char conns[CONNS];
	const char *topics[] = {"chat/room/general", "chat/user/u7/inbox", "chat/presence/u9",
	                        "chat/user/other/inbox"};
	uint64_t allowed = 0;

	if (clients_init(&t) != 0)
		return 1;
	for (int i = 0; i < CONNS; i++) {
		struct acl_client c = {ROLE_USER, "", 0};
		c.user_len = (size_t)snprintf(c.user, sizeof(c.user), "u%d", i);
		clients_put(&t, &conns[i], &c, INT64_MAX, (uint64_t)i);
	}
	double t0 = now_s();
	for (int i = 0; i < o->count; i++) {
		const struct client_entry *e = clients_get(&t, &conns[(size_t)i * 7919 % CONNS]);
		allowed += acl_allowed(&rules, &e->acl, ACL_READ, topics[i & 3], false);
	}
	double dt = now_s() - t0;
	printf("acl_checks=%d allowed=%llu ns_per_check=%.1f\n", o->count,
	       (unsigned long long)allowed, dt * 1e9 / o->count);
	clients_free(&t);
	return allowed ? 0 : 1;
}

static void usage(void)
{
	fprintf(stderr,
	        "usage: chatbench connect --port P --count N [--inflight K] [--secret-file F]\n"
	        "       chatbench fanout --port P [--subs S] [--seconds T] [--payload B]\n"
	        "                        [--secret-file F] [--broker-pid PID]\n"
	        "       chatbench latency --port P [--port2 P2] [--pubs N] [--rate R] [--subs S]\n"
	        "                         [--seconds T] [--secret-file F] [--window W]\n"
	        "       chatbench history --port P --secret-file F [--count N] [--deep MAX]\n"
	        "       chatbench acl [--count N]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	struct opts o = {.port = 1883, .count = 5000, .inflight = 128, .subs = 100,
	                 .seconds = 5, .payload = 64, .pubs = 10,
	                 .window = 2000};
	if (argc < 2)
		usage();
	for (int i = 2; i < argc; i++) {
		if (i + 1 >= argc)
			usage();
		const char *k = argv[i], *v = argv[++i];
		if (!strcmp(k, "--port")) o.port = atoi(v);
		else if (!strcmp(k, "--count")) o.count = atoi(v);
		else if (!strcmp(k, "--inflight")) o.inflight = atoi(v);
		else if (!strcmp(k, "--subs")) o.subs = atoi(v);
		else if (!strcmp(k, "--seconds")) o.seconds = atof(v);
		else if (!strcmp(k, "--payload")) o.payload = atoi(v);
		else if (!strcmp(k, "--secret-file")) o.secret_file = v;
		else if (!strcmp(k, "--broker-pid")) o.broker_pid = atoi(v);
		else if (!strcmp(k, "--port2")) o.port2 = atoi(v);
		else if (!strcmp(k, "--pubs")) o.pubs = atoi(v);
		else if (!strcmp(k, "--rate")) o.rate = atof(v);
		else if (!strcmp(k, "--window")) o.window = atoi(v);
		else if (!strcmp(k, "--deep")) o.deep = atoi(v);
		else usage();
	}
	if (o.count < 1 || o.inflight < 1 || o.subs < 1 || o.seconds <= 0 || o.payload < 0 ||
	    o.payload > 400 || o.pubs < 1 || o.pubs > 1000 || o.rate < 0 || o.window < 1)
		usage();
	raise_nofile();
	if (o.secret_file) {
		struct chat_config cfg;
		char err[256];
		config_init(&cfg);
		if (config_set(&cfg, "jwt_key_file", o.secret_file, err, sizeof(err)) != 0 ||
		    token_keyring_load(&keys, &cfg, err, sizeof(err)) != 0) {
			fprintf(stderr, "chatbench: %s\n", err);
			return 1;
		}
		config_free(&cfg);
		have_keys = 1;
	}
	if (!strcmp(argv[1], "connect"))
		return run_connect(&o);
	if (!strcmp(argv[1], "fanout"))
		return run_fanout(&o);
	if (!strcmp(argv[1], "acl"))
		return run_acl(&o);
	if (!strcmp(argv[1], "latency"))
		return run_latency(&o);
	if (!strcmp(argv[1], "history"))
		return run_history(&o);
	usage();
	return 2;
}
