/*
 * fw-chat: the example device, on the host. A "sensor" that connects with
 * its device token, joins a room, posts a reading every interval, prints
 * every room message and DM it receives (in seq order, once), answers a DM
 * "read" with its current reading, and keeps going through network loss.
 *
 * On an MCU this file is what the firmware engineer rewrites: the loop,
 * the sensor and the printing. The client core (../src) and the platform
 * port are what it links against. Here the port is port/posix.
 *
 * Output, one event per line on stdout (the integration tests read it):
 *   connected | disconnected <why> | refused code=<n> | wait ms=<n>
 *   msg conv=<conv> seq=<n> from=<user> body=<text> | posted | post-lost
 *   notice code=<code> message=<text> | skipped conv=<c> seq=<n>
 *   caught-up conv=<c> seq=<n> | rpc-error code=<c> message=<text>
 *   too-big bytes=<n> | bad-input <why> | sub-refused
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fw_client.h"
#include "fw_posix.h"

struct app {
	struct fw_client client;
	const char *user;
	int answer_dm;
	char reply_to[33]; /* a peer waiting for a reading */
	unsigned long readings, posted;
	int post_pending; /* a reading waits to be (re)sent */
};

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

/* Prints text with anything unprintable as \xNN, so one event is one line. */
static void put_text(const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)p[i];
		if (ch < 0x20 || ch == 0x7f || ch == '\\')
			printf("\\x%02x", ch);
		else
			putchar(ch);
	}
}

/* A fake temperature that moves a little with each reading. */
static void reading(struct app *a, char *buf, size_t cap, size_t *len)
{
	unsigned long k = a->readings;
	int centi = 2150 + (int)((k * 37) % 200) - 100;
	*len = (size_t)snprintf(buf, cap, "temp=%d.%02d n=%lu", centi / 100, centi % 100, k);
}

static void on_event(void *arg, const struct fw_event *ev)
{
	struct app *a = arg;
	const struct fw_env *m = ev->msg;
	switch (ev->type) {
	case FW_EV_CONNECTED:
		printf("connected\n");
		break;
	case FW_EV_DISCONNECTED:
		printf("disconnected %s\n", fw_strerror(ev->code));
		break;
	case FW_EV_REFUSED:
		printf("refused code=%d%s\n", ev->code,
		       ev->code == 5 || ev->code == 4 ? " (token not accepted)" : "");
		break;
	case FW_EV_WAIT:
		printf("wait ms=%u\n", (unsigned)ev->delay_ms);
		break;
	case FW_EV_MESSAGE:
		printf("msg conv=%s seq=%u from=%s body=", ev->conv, (unsigned)ev->seq, m->from.p);
		put_text(m->body.p, m->body.len);
		putchar('\n');
		/* a DM "read" from someone else asks for the current reading */
		if (a->answer_dm && strncmp(ev->conv, "dm:", 3) == 0 &&
		    strcmp(m->from.p, a->user) != 0 && m->body.len == 4 &&
		    memcmp(m->body.p, "read", 4) == 0)
			snprintf(a->reply_to, sizeof(a->reply_to), "%s", m->from.p);
		break;
	case FW_EV_NOTICE:
		printf("notice code=%s message=", m->code.p);
		put_text(m->message.p ? m->message.p : "", m->message.len);
		putchar('\n');
		break;
	case FW_EV_POSTED:
		a->posted++;
		printf("posted\n");
		break;
	case FW_EV_POST_LOST:
		a->post_pending = 1; /* send the same reading again once back */
		printf("post-lost\n");
		break;
	case FW_EV_SUB_REFUSED:
		printf("sub-refused\n");
		break;
	case FW_EV_RPC_ERROR:
		printf("rpc-error conv=%s code=%s message=", ev->conv ? ev->conv : "-", m->code.p);
		put_text(m->message.p ? m->message.p : "", m->message.len);
		putchar('\n');
		break;
	case FW_EV_TOO_BIG:
		printf("too-big bytes=%d\n", ev->code);
		break;
	case FW_EV_SKIPPED:
		printf("skipped conv=%s seq=%u\n", ev->conv, (unsigned)ev->seq);
		break;
	case FW_EV_CAUGHT_UP:
		printf("caught-up conv=%s seq=%u\n", ev->conv, (unsigned)ev->seq);
		break;
	case FW_EV_BAD_INPUT:
		printf("bad-input %s\n", fw_strerror(ev->code));
		break;
	}
}

static void usage(void)
{
	fprintf(stderr,
	        "usage: fw-chat --user ID --token JWT [--token-file F] [--host H] [--port N]\n"
	        "       [--device NAME] [--room ROOM] [--interval-ms N] [--posts N]\n"
	        "       [--keepalive S] [--backoff-min MS] [--backoff-max MS] [--timeout MS]\n"
	        "       [--history-limit N] [--rx N] [--tx N] [--run-ms N] [--answer-dm]\n"
	        "       [--cafile CA.pem]  (MQTT over TLS, the server verified against CA)\n");
	exit(2);
}

static unsigned long num(const char *s)
{
	char *end;
	unsigned long v = strtoul(s, &end, 10);
	if (*s == '\0' || *end != '\0')
		usage();
	return v;
}

int main(int argc, char **argv)
{
	static struct app a;
	struct fw_client_config cfg = {.host = "127.0.0.1", .port = 1883};
	unsigned long interval_ms = 0, posts = 0, run_ms = 0;
	size_t rx_cap = 2048, tx_cap = 512;
	static char token[8192];
	const char *cafile = NULL;

	for (int i = 1; i < argc; i++) {
		const char *k = argv[i];
		if (strcmp(k, "--answer-dm") == 0) {
			a.answer_dm = 1;
			continue;
		}
		if (i + 1 >= argc)
			usage();
		const char *v = argv[++i];
		if (strcmp(k, "--host") == 0)
			cfg.host = v;
		else if (strcmp(k, "--port") == 0)
			cfg.port = (uint16_t)num(v);
		else if (strcmp(k, "--user") == 0)
			cfg.user = v;
		else if (strcmp(k, "--device") == 0)
			cfg.device = v;
		else if (strcmp(k, "--token") == 0)
			cfg.token = v;
		else if (strcmp(k, "--token-file") == 0) {
			FILE *f = fopen(v, "r");
			size_t n = f ? fread(token, 1, sizeof(token) - 1, f) : 0;
			if (f)
				fclose(f);
			while (n && (token[n - 1] == '\n' || token[n - 1] == '\r'))
				n--;
			token[n] = '\0';
			cfg.token = token;
		} else if (strcmp(k, "--room") == 0)
			cfg.room = v;
		else if (strcmp(k, "--interval-ms") == 0)
			interval_ms = num(v);
		else if (strcmp(k, "--posts") == 0)
			posts = num(v);
		else if (strcmp(k, "--keepalive") == 0)
			cfg.keepalive_s = (uint16_t)num(v);
		else if (strcmp(k, "--backoff-min") == 0)
			cfg.backoff_min_ms = (uint32_t)num(v);
		else if (strcmp(k, "--backoff-max") == 0)
			cfg.backoff_max_ms = (uint32_t)num(v);
		else if (strcmp(k, "--timeout") == 0)
			cfg.timeout_ms = (uint32_t)num(v);
		else if (strcmp(k, "--history-limit") == 0)
			cfg.history_limit = (uint8_t)num(v);
		else if (strcmp(k, "--rx") == 0)
			rx_cap = num(v);
		else if (strcmp(k, "--tx") == 0)
			tx_cap = num(v);
		else if (strcmp(k, "--run-ms") == 0)
			run_ms = num(v);
		else if (strcmp(k, "--cafile") == 0)
			cafile = v;
		else
			usage();
	}
	if (!cfg.user || !cfg.token)
		usage();
	if (rx_cap > 65536 || tx_cap > 65536) {
		fprintf(stderr, "fw-chat: --rx and --tx are at most 65536\n");
		return 2;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);

	/* On an MCU these are static arrays sized at build time. */
	static uint8_t rx[65536], tx[65536];
	static struct fw_conv convs[4];
	static struct fw_net net = FW_NET_INIT;
	a.user = cfg.user;
	if (cafile && fw_posix_use_tls(&net, cafile) != 0) {
		fprintf(stderr, "fw-chat: --cafile %s: not a readable PEM CA file\n", cafile);
		return 2;
	}
	int rc =
	    fw_client_init(&a.client, &cfg, &net, rx, rx_cap, tx, tx_cap, convs, 4, on_event, &a);
	if (rc) {
		fprintf(stderr, "fw-chat: bad settings: %s\n", fw_strerror(rc));
		return 2;
	}

	uint32_t start = fw_millis(), next_reading = start + (uint32_t)interval_ms;
	char text[64];
	size_t len = 0;
	while (!stop && (!run_ms || fw_millis() - start < run_ms)) {
		uint32_t idle = fw_client_idle_ms(&a.client);
		if (idle) {
			struct timespec ts = {0, (long)(idle < 50 ? idle : 50) * 1000000L};
			nanosleep(&ts, NULL);
		}
		fw_client_step(&a.client, 50);
		if (!fw_client_online(&a.client))
			continue;
		uint32_t now = fw_millis();
		if (interval_ms && (!posts || a.readings < posts) && !a.post_pending &&
		    (int32_t)(now - next_reading) >= 0) {
			a.readings++;
			a.post_pending = 1;
			next_reading = now + (uint32_t)interval_ms;
		}
		if (a.post_pending) {
			if (!len)
				reading(&a, text, sizeof(text), &len);
			rc = fw_client_post(&a.client, NULL, text, len);
			if (rc == 0) {
				a.post_pending = 0;
				len = 0;
			} else if (rc != FW_ERR_BUSY && rc != FW_ERR_OFFLINE) {
				printf("post-error %s\n", fw_strerror(rc));
				a.post_pending = 0;
				len = 0;
			}
		} else if (a.reply_to[0]) {
			char answer[64];
			size_t n;
			reading(&a, answer, sizeof(answer), &n);
			rc = fw_client_post(&a.client, a.reply_to, answer, n);
			if (rc != FW_ERR_BUSY && rc != FW_ERR_OFFLINE)
				a.reply_to[0] = '\0';
		}
	}
	fw_client_close(&a.client);
	printf("stopped posted=%lu\n", a.posted);
	return 0;
}
