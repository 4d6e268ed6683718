/*
 * wsbench: the web front's benchmark client. Many MQTT connections on one
 * libwebsockets event loop, over plain TCP (method RAW) or over WebSocket
 * (subprotocol mqtt), so the same client measures direct TCP, chat-wsfront
 * and mosquitto's own websockets listener.
 *
 *   wsbench --config FILE --port P [--ws PATH] fanout SUBS SECONDS SIZE
 *     one publisher (a service token, to chat/room/wsbench) and SUBS
 *     subscribers (user tokens), QoS 0; the publisher keeps at most
 *     $WSBENCH_WINDOW (256) messages not yet delivered to everyone. Prints
 *     delivered msgs/s.
 *   wsbench --config FILE --port P --ws PATH idle N PID
 *     opens N connected, subscribed WebSocket sessions and prints how much
 *     the resident memory of process PID grew, per connection.
 *
 * Output is one JSON line. The MQTT packets are built here (CONNECT,
 * SUBSCRIBE, PUBLISH of MQTT 3.1.1); the WebSocket framing is libwebsockets'.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <libwebsockets.h>

#include "bufq.h"
#include "chat/config.h"
#include "chat/token.h"
#include "mqttscan.h"

struct conn {
	struct lws *wsi;
	struct bufq out;
	struct mqttscan in;
	int publisher;
	int up, subscribed, failed;
	uint64_t delivered;
};

static struct {
	struct lws_context *ctx;
	struct token_keyring kr;
	const char *port_path; /* NULL: TCP */
	int port;
	struct conn *conns;
	int n;
	int subscribed, failed, connected;
	uint64_t published, delivered;
	size_t size;
	int started;
	int window;
	lws_sorted_usec_list_t tick;
} B;

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static size_t put_len(unsigned char *p, size_t n)
{
	size_t k = 0;
	do {
		unsigned char b = n % 128;
		n /= 128;
		p[k++] = b | (n ? 0x80 : 0);
	} while (n);
	return k;
}

static size_t put_str(unsigned char *p, const char *s)
{
	size_t n = strlen(s);
	p[0] = (unsigned char)(n >> 8);
	p[1] = (unsigned char)n;
	memcpy(p + 2, s, n);
	return n + 2;
}

static int queue_connect(struct conn *c, const char *user, const char *token)
{
	unsigned char body[9000], pkt[9100];
	size_t k = 0;
	k += put_str(body + k, "MQTT");
	body[k++] = 4;
	body[k++] = 0xC2; /* user, password, clean session */
	body[k++] = 0;
	body[k++] = 60;
	k += put_str(body + k, user);
	k += put_str(body + k, user);
	k += put_str(body + k, token);
	size_t h = 0;
	pkt[h++] = 0x10;
	h += put_len(pkt + h, k);
	memcpy(pkt + h, body, k);
	return bufq_append(&c->out, pkt, h + k);
}

static int queue_subscribe(struct conn *c, const char *topic)
{
	unsigned char body[300], pkt[310];
	size_t k = 0;
	body[k++] = 0;
	body[k++] = 1;
	k += put_str(body + k, topic);
	body[k++] = 0;
	size_t h = 0;
	pkt[h++] = 0x82;
	h += put_len(pkt + h, k);
	memcpy(pkt + h, body, k);
	return bufq_append(&c->out, pkt, h + k);
}

/* What a bridge tells its broker's plugin before it delivers to any room
 * (authplugin/rooms.h): every private room is known (none here), so a
 * room without a state is public. The plugin keeps such a room closed
 * until a service says so, and the publisher is the one service here. */
static int queue_room_sync(struct conn *c)
{
	static const char topic[] = "$CONTROL/chat/v1", sync[] = "sync begin\nsync end";
	unsigned char pkt[64];
	size_t k = 0, body = 2 + strlen(topic) + strlen(sync);
	pkt[k++] = 0x30;
	k += put_len(pkt + k, body);
	k += put_str(pkt + k, topic);
	memcpy(pkt + k, sync, strlen(sync));
	k += strlen(sync);
	return bufq_append(&c->out, pkt, k);
}

/* Up to `count` QoS 0 publishes of B.size bytes into c's queue. */
static void queue_publishes(struct conn *c, int count)
{
	static unsigned char pkt[70000];
	static size_t len;
	if (len == 0) {
		unsigned char body[66000];
		size_t k = put_str(body, "chat/room/wsbench");
		memset(body + k, 'x', B.size);
		k += B.size;
		len = 0;
		pkt[len++] = 0x30;
		len += put_len(pkt + len, k);
		memcpy(pkt + len, body, k);
		len += k;
	}
	for (int i = 0; i < count; i++)
		bufq_append(&c->out, pkt, len);
	B.published += (uint64_t)count;
}

static void pump_publisher(void)
{
	struct conn *p = &B.conns[0];
	int subs = B.n - 1;
	if (!B.started || !p->up)
		return;
	/* in flight: published but not yet delivered to every subscriber */
	uint64_t target = B.delivered / (uint64_t)subs + (uint64_t)B.window;
	if (B.published < target && p->out.bytes < 65536) {
		queue_publishes(p, (int)(target - B.published));
		lws_callback_on_writable(p->wsi);
	}
}

static void on_rx(struct conn *c, const unsigned char *in, size_t len)
{
	uint64_t pubs = c->in.packets[3], subacks = c->in.packets[9];
	int had_connack = c->in.connack_code >= 0;
	mqttscan_feed(&c->in, in, len);
	if (!had_connack && c->in.connack_code >= 0) {
		if (c->in.connack_code != 0) {
			c->failed = 1;
			B.failed++;
		} else {
			B.connected++;
		}
	}
	if (c->in.packets[9] > subacks && !c->subscribed) {
		c->subscribed = 1;
		B.subscribed++;
	}
	uint64_t got = c->in.packets[3] - pubs;
	c->delivered += got;
	B.delivered += got;
	if (got)
		pump_publisher();
}

static int on_writable(struct conn *c, int ws)
{
	size_t n;
	unsigned char *p = bufq_peek(&c->out, &n);
	if (p == NULL)
		return 0;
	if (lws_write(c->wsi, p, n, ws ? LWS_WRITE_BINARY : LWS_WRITE_RAW) < (int)n)
		return -1;
	bufq_consume(&c->out, n);
	if (c->out.bytes)
		lws_callback_on_writable(c->wsi);
	if (c->publisher)
		pump_publisher();
	return 0;
}

static int callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                    size_t len)
{
	struct conn *c = lws_get_opaque_user_data(wsi);
	int ws = B.port_path != NULL;
	(void)user;

	switch (reason) {
	case LWS_CALLBACK_CLIENT_ESTABLISHED:
	case LWS_CALLBACK_RAW_CONNECTED:
		if (c == NULL)
			return -1;
		c->up = 1;
		lws_callback_on_writable(wsi);
		return 0;
	case LWS_CALLBACK_CLIENT_RECEIVE:
	case LWS_CALLBACK_RAW_RX:
		if (c)
			on_rx(c, in, len);
		return 0;
	case LWS_CALLBACK_CLIENT_WRITEABLE:
	case LWS_CALLBACK_RAW_WRITEABLE:
		return c ? on_writable(c, ws) : 0;
	case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
	case LWS_CALLBACK_CLIENT_CLOSED:
	case LWS_CALLBACK_RAW_CLOSE:
		if (c && !c->failed) {
			c->failed = 1;
			B.failed++;
		}
		if (c)
			c->wsi = NULL;
		lws_set_opaque_user_data(wsi, NULL);
		return 0;
	default:
		break;
	}
	return 0;
}

static const struct lws_protocols protocols[] = {{"mqtt", callback, 0, 65536, 0, NULL, 0},
                                                 {"bench-raw", callback, 0, 0, 0, NULL, 0},
                                                 {NULL, NULL, 0, 0, 0, NULL, 0}};

static int open_conn(struct conn *c, int i)
{
	char user[40], *token = NULL;
	struct lws_client_connect_info info;

	bufq_init(&c->out, LWS_PRE, 16384);
	mqttscan_init(&c->in);
	c->publisher = i == 0 && B.n > 1 && B.size > 0;
	snprintf(user, sizeof(user), c->publisher ? "wsbench-pub" : "wsb%d", i);
	if (token_mint(&B.kr, user, c->publisher ? ROLE_SERVICE : ROLE_USER, time(NULL), 3600,
	               &token) != 0)
		return -1;
	queue_connect(c, user, token);
	free(token);
	if (!c->publisher)
		queue_subscribe(c, "chat/room/wsbench");
	else
		queue_room_sync(c);
	memset(&info, 0, sizeof(info));
	info.context = B.ctx;
	info.address = "127.0.0.1";
	info.host = info.address;
	info.origin = info.address;
	info.port = B.port;
	info.opaque_user_data = c;
	info.pwsi = &c->wsi;
	if (B.port_path) {
		info.path = B.port_path;
		info.protocol = "mqtt";
		info.local_protocol_name = "mqtt";
	} else {
		info.method = "RAW";
		info.local_protocol_name = "bench-raw";
	}
	return lws_client_connect_via_info(&info) ? 0 : -1;
}

static long rss_kib(int pid)
{
	char path[64], line[256];
	long kib = -1;
	snprintf(path, sizeof(path), "/proc/%d/status", pid);
	FILE *f = fopen(path, "r");
	if (f == NULL)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmRSS: %ld", &kib) == 1)
			break;
	fclose(f);
	return kib;
}

/* Services the loop until cond() or the deadline; returns 0 when cond held. */
static int run_until(int (*cond)(void), double seconds)
{
	double end = now_s() + seconds;
	while (!cond()) {
		if (now_s() > end || B.failed)
			return -1;
		lws_service(B.ctx, 0);
	}
	return 0;
}

/* Wakes the loop every 50 ms, so deadlines pass even when nothing moves. */
static void on_tick(lws_sorted_usec_list_t *sul)
{
	lws_sul_schedule(B.ctx, 0, sul, on_tick, 50 * LWS_US_PER_MS);
}

static int all_subscribed(void)
{
	return B.subscribed >= B.n - (B.size > 0 ? 1 : 0) && B.connected >= B.n;
}

static int never(void)
{
	return 0;
}

int main(int argc, char **argv)
{
	struct chat_config cfg;
	struct lws_context_creation_info info;
	char err[256];
	const char *conf = NULL;
	int a = 1;

	for (; a + 1 < argc && strncmp(argv[a], "--", 2) == 0; a += 2) {
		if (strcmp(argv[a], "--config") == 0)
			conf = argv[a + 1];
		else if (strcmp(argv[a], "--port") == 0)
			B.port = atoi(argv[a + 1]);
		else if (strcmp(argv[a], "--ws") == 0)
			B.port_path = argv[a + 1];
	}
	int fanout = a + 4 == argc && strcmp(argv[a], "fanout") == 0;
	int idle = a + 3 == argc && strcmp(argv[a], "idle") == 0;
	if (!conf || !B.port || (!fanout && !idle)) {
		fprintf(stderr, "usage: wsbench --config FILE --port P [--ws PATH] "
		                "(fanout SUBS SECONDS SIZE | idle N PID)\n");
		return 2;
	}
	if (config_init(&cfg) || config_load_file(&cfg, conf, err, sizeof(err)) ||
	    token_keyring_load(&B.kr, &cfg, err, sizeof(err))) {
		fprintf(stderr, "wsbench: %s\n", err);
		return 1;
	}
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	lws_set_log_level(LLL_ERR, NULL);
	memset(&info, 0, sizeof(info));
	info.port = CONTEXT_PORT_NO_LISTEN;
	info.protocols = protocols;
	info.pt_serv_buf_size = 65536;
	info.timeout_secs = 30;
	B.ctx = lws_create_context(&info);
	if (B.ctx == NULL)
		return 1;
	B.window = getenv("WSBENCH_WINDOW") ? atoi(getenv("WSBENCH_WINDOW")) : 256;
	on_tick(&B.tick);

	int subs = atoi(argv[a + 1]);
	B.n = fanout ? subs + 1 : subs;
	B.size = fanout ? (size_t)atoi(argv[a + 3]) : 0;
	B.conns = calloc((size_t)B.n, sizeof(*B.conns));
	long rss0 = idle ? rss_kib(atoi(argv[a + 2])) : 0;
	for (int i = 0; i < B.n; i++) {
		if (open_conn(&B.conns[i], i) != 0) {
			fprintf(stderr, "wsbench: cannot open connection %d\n", i);
			return 1;
		}
		/* a gentle ramp: the broker listens with a backlog of 100 */
		if (i % 50 == 49)
			run_until(never, 0.02);
	}
	if (run_until(all_subscribed, 60) != 0) {
		fprintf(stderr, "wsbench: %d of %d connected, %d subscribed, %d failed\n",
		        B.connected, B.n, B.subscribed, B.failed);
		return 1;
	}
	if (idle) {
		run_until(never, 1.0); /* let the front settle */
		long rss1 = rss_kib(atoi(argv[a + 2]));
		printf("{\"mode\":\"idle\",\"connections\":%d,\"rss_before_kib\":%ld,"
		       "\"rss_after_kib\":%ld,\"bytes_per_connection\":%.0f}\n",
		       B.n, rss0, rss1, (double)(rss1 - rss0) * 1024.0 / B.n);
		goto cleanup;
	}
	double seconds = atof(argv[a + 2]);
	B.started = 1;
	pump_publisher();
	run_until(never, 1.0); /* warm-up */
	uint64_t d0 = B.delivered;
	double t0 = now_s();
	run_until(never, seconds);
	double dt = now_s() - t0;
	uint64_t d1 = B.delivered;
	if (B.failed) {
		fprintf(stderr, "wsbench: %d connection(s) failed during the run\n", B.failed);
		return 1;
	}
	printf("{\"mode\":\"fanout\",\"transport\":\"%s\",\"subscribers\":%d,\"size\":%zu,"
	       "\"seconds\":%.2f,\"delivered\":%llu,\"delivered_per_s\":%.0f}\n",
	       B.port_path ? "ws" : "tcp", subs, B.size, dt, (unsigned long long)(d1 - d0),
	       (double)(d1 - d0) / dt);
cleanup:
	lws_context_destroy(B.ctx);
	for (int i = 0; i < B.n; i++)
		bufq_free(&B.conns[i].out);
	free(B.conns);
	token_keyring_free(&B.kr);
	config_free(&cfg);
	return 0;
}
