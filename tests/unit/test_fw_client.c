/*
 * Unit tests of the firmware client's state machine
 * (firmware-example/src/fw_client.c) over a fake platform: the broker is a
 * byte queue the test fills, time is a variable the test moves, and what
 * the client sends is captured and split into packets. Covers the
 * handshake, seq ordering (duplicates and gaps, history filling them),
 * reconnect backoff with jitter, refusal, keepalive, oversized packets,
 * malformed input, posting and buffer-full errors.
 */
#include <stdlib.h>

#include "check.h"
#include "fw_client.h"
#include "fw_mqtt.h"

/* ---- the fake platform ---- */

struct fw_net {
	int open;
};

static uint32_t now_ms = 1000;
static uint8_t inq[65536];
static size_t inq_len, inq_pos, chunk;
static int peer_closed, open_fails;
static uint8_t outq[65536];
static size_t outq_len;
static int opens;

int fw_net_open(struct fw_net *net, const char *host, uint16_t port, uint32_t timeout_ms)
{
	(void)host;
	(void)port;
	(void)timeout_ms;
	opens++;
	if (open_fails)
		return FW_NET_ERROR;
	net->open = 1;
	peer_closed = 0;
	return 0;
}

int fw_net_send(struct fw_net *net, const uint8_t *buf, size_t len, uint32_t timeout_ms)
{
	(void)timeout_ms;
	if (!net->open || peer_closed)
		return FW_NET_CLOSED;
	if (outq_len + len <= sizeof(outq)) {
		memcpy(outq + outq_len, buf, len);
		outq_len += len;
	}
	return 0;
}

int fw_net_recv(struct fw_net *net, uint8_t *buf, size_t len, uint32_t timeout_ms)
{
	if (!net->open)
		return FW_NET_CLOSED;
	if (inq_pos == inq_len) {
		if (peer_closed)
			return FW_NET_CLOSED;
		now_ms += timeout_ms;
		return FW_NET_TIMEOUT;
	}
	size_t n = inq_len - inq_pos;
	if (n > len)
		n = len;
	if (chunk && n > chunk)
		n = chunk;
	memcpy(buf, inq + inq_pos, n);
	inq_pos += n;
	return (int)n;
}

void fw_net_close(struct fw_net *net)
{
	net->open = 0;
}

uint32_t fw_millis(void)
{
	return now_ms;
}

static uint32_t rand_state = 12345;

uint32_t fw_random(void)
{
	rand_state = rand_state * 1103515245u + 12345u;
	return rand_state >> 8;
}

/* ---- what the client told the application ---- */

#define MAX_EVENTS 256
static struct {
	enum fw_event_type type;
	int code;
	uint32_t delay, seq;
	char conv[80], body[64];
} events[MAX_EVENTS];
static int nevents;

static void on_event(void *arg, const struct fw_event *ev)
{
	(void)arg;
	if (nevents == MAX_EVENTS)
		return;
	events[nevents].type = ev->type;
	events[nevents].code = ev->code;
	events[nevents].delay = ev->delay_ms;
	events[nevents].seq = ev->seq;
	snprintf(events[nevents].conv, sizeof(events[0].conv), "%s", ev->conv ? ev->conv : "");
	if (ev->type == FW_EV_MESSAGE)
		snprintf(events[nevents].body, sizeof(events[0].body), "%.*s",
		         (int)ev->msg->body.len, ev->msg->body.p);
	else if ((ev->type == FW_EV_NOTICE || ev->type == FW_EV_RPC_ERROR) && ev->msg->code.p)
		snprintf(events[nevents].body, sizeof(events[0].body), "%s", ev->msg->code.p);
	nevents++;
}

static int count(enum fw_event_type t)
{
	int n = 0;
	for (int i = 0; i < nevents; i++)
		n += events[i].type == t;
	return n;
}

static int last_of(enum fw_event_type t)
{
	for (int i = nevents - 1; i >= 0; i--)
		if (events[i].type == t)
			return i;
	return -1;
}

/* The seqs shown for conv, as "1,2,3". */
static const char *shown(const char *conv)
{
	static char out[512];
	size_t k = 0;
	out[0] = '\0';
	for (int i = 0; i < nevents; i++)
		if (events[i].type == FW_EV_MESSAGE && strcmp(events[i].conv, conv) == 0)
			k += (size_t)snprintf(out + k, sizeof(out) - k, "%s%u", k ? "," : "",
			                      (unsigned)events[i].seq);
	return out;
}

/* ---- the broker side ---- */

static void feed(const void *p, size_t n)
{
	if (inq_pos == inq_len)
		inq_pos = inq_len = 0;
	memcpy(inq + inq_len, p, n);
	inq_len += n;
}

static void feed_publish(const char *topic, const char *payload)
{
	uint8_t buf[8192];
	struct fw_wr w;
	const uint8_t *pkt;
	size_t len;
	const char *t[] = {topic, NULL};
	fw_mqtt_publish_begin(&w, buf, sizeof(buf), t, 0, 0);
	fw_wr_cstr(&w, payload);
	fw_mqtt_end(&w, fw_mqtt_publish_flags(0), &pkt, &len);
	feed(pkt, len);
}

static void feed_msg(const char *topic, const char *conv, unsigned seq, const char *from)
{
	char p[512];
	snprintf(
	    p, sizeof(p),
	    "{\"v\":1,\"type\":\"msg\",\"conv\":\"%s\",\"seq\":%u,\"id\":\"i%u\",\"from\":\"%s\","
	    "\"to\":\"x\",\"ts\":1,\"body\":\"b%u\"}",
	    conv, seq, seq, from, seq);
	feed_publish(topic, p);
}

/* A history reply with the seqs first..last of conv. */
static void feed_history(const char *id, const char *conv, unsigned first, unsigned last)
{
	char p[4096];
	size_t k = (size_t)snprintf(p, sizeof(p), "{\"id\":\"%s\",\"result\":{\"messages\":[", id);
	for (unsigned s = first; s && s <= last; s++)
		k += (size_t)snprintf(p + k, sizeof(p) - k,
		                      "%s{\"v\":1,\"type\":\"msg\",\"conv\":\"%s\",\"seq\":%u,"
		                      "\"from\":\"bob\",\"body\":\"b%u\"}",
		                      s == first ? "" : ",", conv, s, s);
	snprintf(p + k, sizeof(p) - k, "]}}");
	feed_publish("chat/user/sensor1/rpc", p);
}

/* Splits what the client sent into packets; returns how many, with the
 * first bytes and a copy of each packet's text (for matching). */
static int sent(uint8_t *types, char texts[][512], int max)
{
	size_t pos = 0;
	int n = 0;
	while (pos < outq_len && n < max) {
		uint8_t first;
		uint32_t rl;
		size_t hl;
		if (fw_mqtt_header(outq + pos, outq_len - pos, &first, &rl, &hl) != 0)
			break;
		types[n] = first;
		size_t len = hl + rl < 511 ? hl + rl : 511;
		for (size_t i = 0; i < len; i++)
			texts[n][i] = outq[pos + i] >= 0x20 && outq[pos + i] < 0x7f
			                  ? (char)outq[pos + i]
			                  : '.';
		texts[n][len] = '\0';
		pos += hl + rl;
		n++;
	}
	return n;
}

/* Index of the last sent packet whose text contains needle, or -1. */
static int sent_with(const char *needle)
{
	static uint8_t types[64];
	static char texts[64][512];
	int n = sent(types, texts, 64);
	for (int i = n - 1; i >= 0; i--)
		if (strstr(texts[i], needle))
			return i;
	return -1;
}

static uint8_t last_sent_type(void)
{
	static uint8_t types[64];
	static char texts[64][512];
	int n = sent(types, texts, 64);
	return n ? types[n - 1] >> 4 : 0;
}

/* ---- fixtures ---- */

static struct fw_client client;
static struct fw_net net;
static uint8_t rx[1024], tx[512];
static struct fw_conv convs[3];

static void reset(void)
{
	inq_len = inq_pos = chunk = 0;
	outq_len = 0;
	peer_closed = open_fails = 0;
	nevents = 0;
	opens = 0;
	net.open = 0;
}

static struct fw_client_config config(void)
{
	struct fw_client_config cfg = {.host = "h",
	                               .port = 1,
	                               .user = "sensor1",
	                               .device = "board",
	                               .token = "TOKEN",
	                               .room = "lab",
	                               .keepalive_s = 10,
	                               .backoff_min_ms = 1000,
	                               .backoff_max_ms = 8000,
	                               .timeout_ms = 3000,
	                               .history_limit = 4};
	return cfg;
}

static void start(size_t rx_cap)
{
	struct fw_client_config cfg = config();
	reset();
	CHECK_INT(fw_client_init(&client, &cfg, &net, rx, rx_cap, tx, sizeof(tx), convs, 3,
	                         on_event, NULL),
	          0);
}

/* Steps until the queue is drained (and a little more). */
static void run(int steps)
{
	for (int i = 0; i < steps; i++)
		fw_client_step(&client, 10);
}

static void handshake(void)
{
	static const uint8_t connack[] = {0x20, 2, 0, 0};
	run(1);
	CHECK_INT(last_sent_type(), FW_MQTT_CONNECT);
	feed(connack, sizeof(connack));
	run(8);
	CHECK_INT(last_sent_type(), FW_MQTT_SUBSCRIBE);
	uint8_t suback[] = {0x90, 4, (uint8_t)(client.sub_pid >> 8), (uint8_t)client.sub_pid, 0, 0};
	feed(suback, sizeof(suback));
	run(8);
	CHECK(fw_client_online(&client));
}

/* ---- tests ---- */

static void test_init_checks(void)
{
	struct fw_client_config cfg = config();
	CHECK_INT(fw_client_init(&client, &cfg, &net, rx, sizeof(rx), tx, sizeof(tx), convs, 3,
	                         on_event, NULL),
	          0);
	cfg.user = "Bad";
	CHECK_INT(fw_client_init(&client, &cfg, &net, rx, sizeof(rx), tx, sizeof(tx), convs, 3,
	                         on_event, NULL),
	          FW_ERR_INVALID);
	cfg = config();
	cfg.room = "no.dots";
	CHECK_INT(fw_client_init(&client, &cfg, &net, rx, sizeof(rx), tx, sizeof(tx), convs, 3,
	                         on_event, NULL),
	          FW_ERR_INVALID);
	cfg = config();
	cfg.device = "a/b";
	CHECK_INT(fw_client_init(&client, &cfg, &net, rx, sizeof(rx), tx, sizeof(tx), convs, 3,
	                         on_event, NULL),
	          FW_ERR_INVALID);
	cfg = config();
	CHECK_INT(fw_client_init(&client, &cfg, &net, rx, FW_RX_MIN - 1, tx, sizeof(tx), convs, 3,
	                         on_event, NULL),
	          FW_ERR_FULL);
	CHECK_INT(fw_client_init(&client, &cfg, &net, rx, sizeof(rx), tx, sizeof(tx), convs, 1,
	                         on_event, NULL),
	          FW_ERR_FULL);
}

static void test_handshake(void)
{
	start(sizeof(rx));
	handshake();
	CHECK(sent_with("MQTT") == 0);
	CHECK(sent_with("sensor1:board") == 0);
	CHECK(sent_with("TOKEN") == 0);
	CHECK(sent_with("chat/user/sensor1/#") == 1);
	CHECK(sent_with("chat/room/lab") == 1);
	CHECK(sent_with("\"method\":\"room.join\",\"params\":{\"room\":\"lab\"}") == 2);
	CHECK(sent_with("chat/in/sensor1/rpc") == 2);
	CHECK_INT(count(FW_EV_CONNECTED), 1);
}

static void test_order_dedup_and_gap(void)
{
	start(sizeof(rx));
	handshake();
	feed_msg("chat/room/lab", "room:lab", 5, "bob");
	feed_msg("chat/room/lab", "room:lab", 6, "bob");
	feed_msg("chat/room/lab", "room:lab", 6, "bob"); /* at-least-once duplicate */
	feed_msg("chat/room/lab", "room:lab", 9, "bob"); /* 7 and 8 lost */
	run(4);
	CHECK_STR(shown("room:lab"), "5,6");
	int h = sent_with("\"method\":\"history\",\"params\":{\"conv\":\"room:lab\",\"after\":6,"
	                  "\"limit\":4}");
	CHECK(h >= 0);
	uint32_t req = convs[0].req;
	CHECK(req != 0);
	/* 10 arrives live while the request is out: held back too */
	feed_msg("chat/room/lab", "room:lab", 10, "bob");
	char id[16];
	snprintf(id, sizeof(id), "h%u", (unsigned)req);
	feed_history(id, "room:lab", 7, 10);
	run(4);
	/* a full page (4 = limit): the client asks for the next one */
	CHECK_STR(shown("room:lab"), "5,6,7,8,9,10");
	CHECK(sent_with("\"after\":10,") >= 0);
	snprintf(id, sizeof(id), "h%u", (unsigned)convs[0].req);
	feed_history(id, "room:lab", 0, 0);
	run(2);
	CHECK_INT(count(FW_EV_CAUGHT_UP), 1);
	feed_msg("chat/room/lab", "room:lab", 10, "bob");
	feed_msg("chat/room/lab", "room:lab", 11, "bob");
	run(2);
	CHECK_STR(shown("room:lab"), "5,6,7,8,9,10,11");
	/* a DM, the same rules in its own conversation */
	feed_msg("chat/user/sensor1/inbox", "dm:bob:sensor1", 1, "bob");
	feed_msg("chat/user/sensor1/inbox", "dm:bob:sensor1", 2, "bob");
	run(2);
	CHECK_STR(shown("dm:bob:sensor1"), "1,2");
	/* a reply to a request nobody waits for is ignored */
	feed_history("h999", "room:lab", 12, 13);
	run(2);
	CHECK_STR(shown("room:lab"), "5,6,7,8,9,10,11");
}

/* A broker may deliver before it sends the SUBACK (MQTT 3.1.1, 3.8.4). */
static void test_publish_before_suback(void)
{
	static const uint8_t connack[] = {0x20, 2, 0, 0};
	start(sizeof(rx));
	run(1);
	feed(connack, sizeof(connack));
	run(2);
	feed_msg("chat/room/lab", "room:lab", 1, "bob");
	uint8_t suback[] = {0x90, 4, (uint8_t)(client.sub_pid >> 8), (uint8_t)client.sub_pid, 0, 0};
	feed(suback, sizeof(suback));
	run(4);
	CHECK(fw_client_online(&client));
	CHECK_STR(shown("room:lab"), "1");
	CHECK_INT(count(FW_EV_DISCONNECTED), 0);
}

static void test_byte_at_a_time(void)
{
	start(sizeof(rx));
	chunk = 1;
	handshake();
	feed_msg("chat/room/lab", "room:lab", 1, "bob");
	feed_msg("chat/room/lab", "room:lab", 2, "bob");
	run(600);
	CHECK_STR(shown("room:lab"), "1,2");
}

static void test_reconnect_backoff_and_catch_up(void)
{
	start(sizeof(rx));
	handshake();
	feed_msg("chat/room/lab", "room:lab", 1, "bob");
	run(2);
	peer_closed = 1;
	run(1);
	CHECK_INT(count(FW_EV_DISCONNECTED), 1);
	int w = last_of(FW_EV_WAIT);
	CHECK(w >= 0 && events[w].delay >= 500 && events[w].delay <= 1000);
	/* the network stays down: each attempt waits about twice as long */
	open_fails = 1;
	uint32_t base = 1000;
	for (int k = 0; k < 5; k++) {
		int before = opens;
		now_ms += fw_client_idle_ms(&client) - 1;
		run(1);
		CHECK_INT(opens, before); /* not yet */
		now_ms += 1;
		run(1);
		CHECK_INT(opens, before + 1);
		base = base * 2 > 8000 ? 8000 : base * 2;
		w = last_of(FW_EV_WAIT);
		if (events[w].delay < base / 2 || events[w].delay > base)
			fprintf(stderr, "attempt %d: wait %u, expected %u..%u\n", k,
			        (unsigned)events[w].delay, (unsigned)base / 2, (unsigned)base);
		CHECK(events[w].delay >= base / 2 && events[w].delay <= base);
	}
	/* back: the client asks for what came after seq 1 */
	open_fails = 0;
	outq_len = 0;
	now_ms += fw_client_idle_ms(&client);
	handshake();
	run(1);
	CHECK(sent_with("\"conv\":\"room:lab\",\"after\":1,") >= 0);
	char id[16];
	snprintf(id, sizeof(id), "h%u", (unsigned)convs[0].req);
	feed_history(id, "room:lab", 2, 3);
	run(2);
	CHECK_STR(shown("room:lab"), "1,2,3");
	CHECK_INT(count(FW_EV_CAUGHT_UP), 1);
}

static void test_refused(void)
{
	static const uint8_t refused[] = {0x20, 2, 0, 5};
	start(sizeof(rx));
	for (int k = 0; k < 4; k++) {
		now_ms += fw_client_idle_ms(&client);
		run(1);
		feed(refused, sizeof(refused));
		run(1);
	}
	CHECK_INT(count(FW_EV_REFUSED), 4);
	CHECK_INT(count(FW_EV_CONNECTED), 0);
	CHECK_INT(count(FW_EV_DISCONNECTED), 0);
	CHECK_INT(events[last_of(FW_EV_REFUSED)].code, 5);
	int w = last_of(FW_EV_WAIT);
	CHECK(events[w].delay >= 4000 && events[w].delay <= 8000);
	CHECK_INT(opens, 4);
}

static void test_keepalive(void)
{
	static const uint8_t pingresp[] = {0xd0, 0};
	start(sizeof(rx));
	handshake();
	outq_len = 0;
	now_ms += 5000; /* half the keepalive */
	run(1);
	CHECK_INT(last_sent_type(), FW_MQTT_PINGREQ);
	feed(pingresp, sizeof(pingresp));
	run(1);
	CHECK_INT(client.ping_out, 0);
	now_ms += 5000;
	run(1);
	CHECK_INT(client.ping_out, 1);
	/* no answer within the timeout: the link is dead */
	now_ms += 3000;
	run(1);
	CHECK_INT(count(FW_EV_DISCONNECTED), 1);
	CHECK_INT(events[last_of(FW_EV_DISCONNECTED)].code, FW_ERR_TIMEOUT);
}

static void test_too_big_and_bad_input(void)
{
	char big[2000];
	start(FW_RX_MIN);
	handshake();
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	feed_publish("chat/room/lab", big);
	feed_msg("chat/room/lab", "room:lab", 1, "bob");
	feed_publish("chat/room/lab", "{\"type\":\"msg\",\"seq\":");
	feed_publish("chat/user/sensor1/notice",
	             "{\"v\":1,\"type\":\"notice\",\"code\":\"too_large\",\"message\":\"m\"}");
	feed_msg("chat/room/lab", "room:lab", 2, "bob");
	run(20);
	CHECK_INT(count(FW_EV_TOO_BIG), 1);
	CHECK_INT(count(FW_EV_BAD_INPUT), 1);
	CHECK_INT(count(FW_EV_NOTICE), 1);
	CHECK_STR(shown("room:lab"), "1,2");
	CHECK(fw_client_online(&client));

	/* a history page too big for rx: half the page, then give up one */
	feed_msg("chat/room/lab", "room:lab", 4, "bob");
	run(3);
	CHECK(sent_with("\"after\":2,\"limit\":4") >= 0);
	char reply[700];
	snprintf(reply, sizeof(reply), "{\"id\":\"h%u\",\"result\":{\"messages\":[%s]}}",
	         (unsigned)convs[0].req, big + 1400);
	feed_publish("chat/user/sensor1/rpc", reply);
	run(3);
	CHECK(sent_with("\"after\":2,\"limit\":2") >= 0);
	for (int k = 0; k < 2; k++) {
		snprintf(reply, sizeof(reply), "{\"id\":\"h%u\",\"result\":{\"messages\":[%s]}}",
		         (unsigned)convs[0].req, big + 1400);
		feed_publish("chat/user/sensor1/rpc", reply);
		run(3);
	}
	CHECK_INT(count(FW_EV_SKIPPED), 1);
	CHECK_INT(events[last_of(FW_EV_SKIPPED)].seq, 3);
	CHECK(sent_with("\"after\":3,") >= 0);

	/* a broken packet ends the connection, then the client reconnects */
	static const uint8_t broken[] = {0x30, 2, 0, 0};
	feed(broken, sizeof(broken));
	run(2);
	CHECK_INT(events[last_of(FW_EV_DISCONNECTED)].code, FW_ERR_MALFORMED);
	CHECK(!fw_client_online(&client));
}

static void test_post(void)
{
	start(sizeof(rx));
	CHECK_INT(fw_client_post(&client, NULL, "x", 1), FW_ERR_OFFLINE);
	handshake();
	CHECK_INT(fw_client_post(&client, NULL, "temp=21.5", 9), 0);
	CHECK(sent_with("chat/in/sensor1/room/lab") >= 0);
	CHECK_INT(last_sent_type(), FW_MQTT_PUBLISH);
	CHECK_INT(fw_client_post(&client, NULL, "again", 5), FW_ERR_BUSY);
	uint8_t puback[] = {0x40, 2, (uint8_t)(client.post_pid >> 8), (uint8_t)client.post_pid};
	feed(puback, sizeof(puback));
	run(1);
	CHECK_INT(count(FW_EV_POSTED), 1);
	CHECK_INT(fw_client_post(&client, "bob", "{\"a\":\"\x01\"}", 9), 0);
	CHECK(sent_with("chat/in/sensor1/dm/bob") >= 0);
	CHECK(sent_with("{\"body\":\"{\\\"a\\\":\\\"\\u0001\\\"}\"}") >= 0);
	/* lost before its ack: the application hears about it */
	peer_closed = 1;
	run(1);
	CHECK_INT(count(FW_EV_POST_LOST), 1);
	now_ms += fw_client_idle_ms(&client);
	handshake();
	CHECK_INT(fw_client_post(&client, "Not-A-User", "x", 1), FW_ERR_INVALID);
	CHECK_INT(fw_client_post(&client, NULL, "", 0), FW_ERR_INVALID);
	static char huge[600];
	memset(huge, 'a', sizeof(huge));
	CHECK_INT(fw_client_post(&client, NULL, huge, sizeof(huge)), FW_ERR_FULL);
	CHECK(fw_client_online(&client));
}

static void test_set_last_and_eviction(void)
{
	start(sizeof(rx));
	CHECK_INT(fw_client_set_last(&client, "dm:a:sensor1", 7), 0);
	CHECK_INT(fw_client_set_last(&client, "dm:x", 7), FW_ERR_INVALID);
	handshake();
	run(1);
	CHECK(sent_with("\"conv\":\"dm:a:sensor1\",\"after\":7,") >= 0);
	/* a third and fourth DM: the quietest DM gives its place, never the room */
	now_ms += 10;
	feed_msg("chat/user/sensor1/inbox", "dm:b:sensor1", 1, "b");
	run(2);
	now_ms += 10;
	feed_msg("chat/user/sensor1/inbox", "dm:c:sensor1", 1, "c");
	run(2);
	CHECK_STR(convs[0].id, "room:lab");
	CHECK_INT(client.nconv, 3);
	CHECK_STR(shown("dm:c:sensor1"), "1");
}

/* 1.1: edits and deletions take a seq of the conversation, and history
 * keeps a deleted message's place without its body. None is shown, none
 * is taken for a gap, none stops the client. */
static void test_edits_and_deletions(void)
{
	start(sizeof(rx));
	handshake();
	feed_msg("chat/room/lab", "room:lab", 1, "bob");
	feed_publish("chat/room/lab",
	             "{\"v\":1,\"type\":\"edit\",\"conv\":\"room:lab\",\"seq\":2,"
	             "\"id\":\"e2\",\"from\":\"bob\",\"ts\":2,\"ref\":1,\"body\":\"B\"}");
	feed_publish("chat/room/lab",
	             "{\"v\":1,\"type\":\"delete\",\"conv\":\"room:lab\",\"seq\":3,"
	             "\"id\":\"d3\",\"from\":\"bob\",\"ts\":3,\"ref\":1}");
	feed_msg("chat/room/lab", "room:lab", 4, "bob");
	run(4);
	CHECK_STR(shown("room:lab"), "1,4");
	CHECK_INT(count(FW_EV_BAD_INPUT), 0);
	CHECK(sent_with("\"method\":\"history\"") < 0); /* no gap seen */
	/* a gap fetched from history: a deleted message, then an edit */
	feed_msg("chat/room/lab", "room:lab", 8, "bob");
	run(2);
	CHECK(convs[0].req != 0);
	char id[16], p[1024];
	snprintf(id, sizeof(id), "h%u", (unsigned)convs[0].req);
	snprintf(p, sizeof(p),
	         "{\"id\":\"%s\",\"result\":{\"messages\":["
	         "{\"v\":1,\"type\":\"msg\",\"conv\":\"room:lab\",\"seq\":5,\"from\":\"bob\","
	         "\"deleted\":true},"
	         "{\"v\":1,\"type\":\"msg\",\"conv\":\"room:lab\",\"seq\":6,\"from\":\"bob\","
	         "\"body\":\"b6\",\"edited\":7},"
	         "{\"v\":1,\"type\":\"edit\",\"conv\":\"room:lab\",\"seq\":7,\"from\":\"bob\","
	         "\"ref\":6,\"body\":\"b6\"},"
	         "{\"v\":1,\"type\":\"msg\",\"conv\":\"room:lab\",\"seq\":8,\"from\":\"bob\","
	         "\"body\":\"b8\"}]}}",
	         id);
	feed_publish("chat/user/sensor1/rpc", p);
	run(4);
	CHECK_STR(shown("room:lab"), "1,4,6,8");
	CHECK_INT(count(FW_EV_SKIPPED), 0);
	CHECK_INT(count(FW_EV_BAD_INPUT), 0);
	/* a full page (limit 4): the next one is empty */
	CHECK(sent_with("\"after\":8,") >= 0);
	snprintf(id, sizeof(id), "h%u", (unsigned)convs[0].req);
	feed_history(id, "room:lab", 0, 0);
	run(2);
	CHECK_INT(count(FW_EV_CAUGHT_UP), 1);
}

int main(void)
{
	test_init_checks();
	test_handshake();
	test_order_dedup_and_gap();
	test_publish_before_suback();
	test_byte_at_a_time();
	test_reconnect_backoff_and_catch_up();
	test_refused();
	test_keepalive();
	test_too_big_and_bad_input();
	test_post();
	test_set_last_and_eviction();
	test_edits_and_deletions();
	return check_report();
}
