/* Unit tests of the web front's pure parts: the byte queue, the MQTT stream
 * follower, the rate limiter, the account rules and the metrics text. */
#include <stdlib.h>
#include <string.h>

#include "accounts.h"
#include "bufq.h"
#include "check.h"
#include "metrics.h"
#include "mqttscan.h"
#include "ratelimit.h"
#include "connlimit.h"
#include "strbuf.h"

#define S(x) x, sizeof(x) - 1

static void test_bufq(void)
{
	struct bufq q;
	size_t n;
	unsigned char big[40000];

	bufq_init(&q, 16, 8);
	CHECK(bufq_peek(&q, &n) == NULL);
	CHECK_INT(n, 0);
	CHECK_INT(bufq_append(&q, "abc", 3), 0);
	CHECK_INT(bufq_append(&q, "def", 3), 0); /* coalesced into one chunk */
	unsigned char *p = bufq_peek(&q, &n);
	CHECK_INT(n, 6);
	CHECK(memcmp(p, "abcdef", 6) == 0);
	CHECK(q.first == q.last);
	CHECK_INT(bufq_append(&q, "ghijk", 5), 0); /* does not fit: new chunk */
	CHECK(q.first != q.last);
	CHECK_INT(q.bytes, 11);
	bufq_consume(&q, 4);
	p = bufq_peek(&q, &n);
	CHECK_INT(n, 2);
	CHECK(memcmp(p, "ef", 2) == 0);
	/* a partly sent chunk is never appended to */
	CHECK_INT(bufq_append(&q, "l", 1), 0);
	bufq_consume(&q, 2);
	p = bufq_peek(&q, &n);
	CHECK_INT(n, 6);
	CHECK(memcmp(p, "ghijkl", 6) == 0);
	bufq_consume(&q, 100);
	CHECK_INT(q.bytes, 0);
	CHECK(bufq_peek(&q, &n) == NULL);
	/* larger than a chunk: one chunk of its size */
	memset(big, 'x', sizeof(big));
	CHECK_INT(bufq_append(&q, big, sizeof(big)), 0);
	p = bufq_peek(&q, &n);
	CHECK_INT(n, sizeof(big));
	bufq_free(&q);
	CHECK_INT(q.bytes, 0);
}

static void test_mqttscan(void)
{
	struct mqttscan s;
	/* CONNACK refused (5), PUBLISH with a 2-byte length (200 bytes body), PINGRESP */
	unsigned char stream[3 + 4 + 200 + 2];
	size_t k = 0;
	stream[k++] = 0x20, stream[k++] = 2, stream[k++] = 0, stream[k++] = 5;
	stream[k++] = 0x30, stream[k++] = 0xc8, stream[k++] = 0x01;
	memset(stream + k, 'p', 200);
	k += 200;
	stream[k++] = 0xd0, stream[k++] = 0;

	mqttscan_init(&s);
	CHECK_INT(mqttscan_feed(&s, stream, k), 3);
	CHECK_INT(s.connack_code, 5);
	CHECK_INT(s.packets[MQTT_PUBLISH], 1);
	CHECK_INT(s.packets[13], 1);

	/* the same bytes one at a time */
	mqttscan_init(&s);
	size_t done = 0;
	for (size_t i = 0; i < k; i++)
		done += mqttscan_feed(&s, stream + i, 1);
	CHECK_INT(done, 3);
	CHECK_INT(s.connack_code, 5);
	CHECK_INT(s.packets[MQTT_PUBLISH], 1);

	/* an accepted CONNACK */
	mqttscan_init(&s);
	CHECK_INT(mqttscan_feed(&s, (const unsigned char *)"\x20\x02\x00\x00", 4), 1);
	CHECK_INT(s.connack_code, 0);

	/* a length field of five bytes is malformed and stops the scan */
	mqttscan_init(&s);
	mqttscan_feed(&s, (const unsigned char *)"\x30\xff\xff\xff\xff\x01", 6);
	CHECK(s.malformed);
}

static void test_ratelimit(void)
{
	struct ratelimit rl;

	CHECK_INT(ratelimit_init(&rl, 16, 3, 60), 0); /* 3 at once, 1 a second */
	CHECK(ratelimit_take(&rl, "1.2.3.4", 0));
	CHECK(ratelimit_take(&rl, "1.2.3.4", 0));
	CHECK(ratelimit_take(&rl, "1.2.3.4", 0));
	CHECK(!ratelimit_take(&rl, "1.2.3.4", 10));
	CHECK(ratelimit_take(&rl, "5.6.7.8", 10));   /* others are not affected */
	CHECK(ratelimit_take(&rl, "1.2.3.4", 1010)); /* refilled one */
	CHECK(!ratelimit_take(&rl, "1.2.3.4", 1020));
	/* flooding other names never resets a live bucket (finding 7): the
	 * table fills, new names are refused, the spent one stays spent */
	char key[32];
	int refused = 0;
	CHECK(!ratelimit_take(&rl, "1.2.3.4", 1030));
	for (int i = 0; i < 1000; i++) {
		snprintf(key, sizeof(key), "k%d", i);
		refused += !ratelimit_take(&rl, key, 1040);
	}
	CHECK(refused >= 1000 - 16);
	CHECK(!ratelimit_take(&rl, "1.2.3.4", 1050));
	/* once buckets have refilled completely they are reused */
	CHECK(ratelimit_take(&rl, "late", 60000));
	CHECK(ratelimit_take(&rl, "1.2.3.4", 60000));
	/* a very long key is cut, not overflowed */
	char longkey[300];
	memset(longkey, 'a', sizeof(longkey) - 1);
	longkey[sizeof(longkey) - 1] = '\0';
	CHECK(ratelimit_take(&rl, longkey, 120000));
	ratelimit_free(&rl);
}

static void test_connlimit(void)
{
	struct connlimit cl;
	struct cl_addr *a[8], *x;

	CHECK_INT(connlimit_init(&cl, 5, 2), 0); /* 5 in all, 2 per address */
	CHECK_INT(connlimit_take(&cl, "127.0.0.2", &a[0]), CONNLIMIT_OK);
	CHECK_INT(connlimit_take(&cl, "127.0.0.2", &a[1]), CONNLIMIT_OK);
	CHECK_INT(connlimit_take(&cl, "127.0.0.2", &x), CONNLIMIT_E_ADDR);
	CHECK(x == NULL);
	CHECK_INT(connlimit_take(&cl, "127.0.0.1", &a[2]), CONNLIMIT_OK); /* others unaffected */
	CHECK_INT(connlimit_take(&cl, "127.0.0.3", &a[3]), CONNLIMIT_OK);
	CHECK_INT(connlimit_take(&cl, "127.0.0.3", &a[4]), CONNLIMIT_OK);
	CHECK_INT(connlimit_take(&cl, "127.0.0.4", &x), CONNLIMIT_E_TOTAL);
	connlimit_release(&cl, a[0]); /* a closed connection frees its place */
	CHECK_INT(connlimit_take(&cl, "127.0.0.2", &a[0]), CONNLIMIT_OK);
	for (int i = 0; i < 5; i++)
		connlimit_release(&cl, a[i]);
	CHECK(cl.total == 0);
	CHECK_INT(connlimit_take(&cl, "127.0.0.4", &a[0]), CONNLIMIT_OK);
	connlimit_release(&cl, a[0]);
	/* counts tied to their owner are released by owner, once */
	int owner1, owner2;
	CHECK_INT(connlimit_take(&cl, "127.0.0.5", &a[0]), CONNLIMIT_OK);
	CHECK_INT(connlimit_take(&cl, "127.0.0.5", &a[1]), CONNLIMIT_OK);
	CHECK_INT(connlimit_bind(&cl, &owner1, a[0]), 0);
	CHECK_INT(connlimit_bind(&cl, &owner2, a[1]), 0);
	CHECK_INT(connlimit_take(&cl, "127.0.0.5", &x), CONNLIMIT_E_ADDR);
	connlimit_drop(&cl, &owner1);
	connlimit_drop(&cl, &owner1); /* a second drop changes nothing */
	CHECK(cl.total == 1);
	connlimit_drop(&cl, &owner2);
	CHECK(cl.total == 0);
	connlimit_free(&cl);
}

static void test_accounts(void)
{
	struct credentials c;
	const char *why = NULL;

	CHECK_INT(
	    credentials_parse(S("{\"username\":\"alice\",\"password\":\"secret pass\"}"), &c, &why),
	    0);
	CHECK_STR(c.user, "alice");
	CHECK_STR(c.password, "secret pass");
	CHECK_INT(credentials_parse(S("not json"), &c, &why), -1);
	CHECK_INT(credentials_parse(S("[1,2]"), &c, &why), -1);
	CHECK_INT(credentials_parse(S("{\"username\":\"alice\"}"), &c, &why), -1);
	CHECK_STR(why, "username and password are required");
	CHECK_INT(credentials_parse(S("{\"username\":5,\"password\":\"x\"}"), &c, &why), -1);
	CHECK_STR(why, "username and password must be strings");
	CHECK_INT(credentials_parse(S("{\"username\":\"Alice\",\"password\":\"x\"}"), &c, &why),
	          -1);
	CHECK_INT(
	    credentials_parse(S("{\"username\":\"alice\",\"password\":\"\\u0000abc\"}"), &c, &why),
	    0); /* cJSON stops at the NUL: an empty password */
	char big[400];
	snprintf(big, sizeof(big), "{\"username\":\"a\",\"password\":\"%0200d\"}", 1);
	CHECK_INT(credentials_parse(big, strlen(big), &c, &why), -1);
	credentials_clear(&c);
	CHECK_STR(c.password, "");

	CHECK(password_weak("alice", "short") != NULL);
	CHECK(password_weak("alice", "aaaaaaaaaaaa") != NULL);
	CHECK(password_weak("alice", "xxALICE123yy") != NULL);
	CHECK(password_weak("alice", "password123") != NULL);
	CHECK(password_weak("alice", "blue-kettle-42") == NULL);
	CHECK(password_weak("alice", "ééééçàüö") == NULL); /* 8 characters, 16 bytes */
	CHECK(password_weak("alice", "éééé") != NULL);     /* 8 bytes, 4 characters */
}

static void test_metrics(void)
{
	struct metrics m;
	struct strbuf b;

	memset(&m, 0, sizeof(m));
	m.ws_open = 3;
	m.rejects[REJ_AUTH] = 2;
	metrics_latency(&m, ROUTE_LOGIN, 0.2);
	strbuf_init(&b);
	metrics_render(&m, &b);
	const char *f[] = {"msgs_in", "rejects:not_member", "junk"};
	const char *v[] = {"12", "4", "abc"};
	metrics_render_bridge(&b, "node\"1", f, v, 3);
	const char *pf[] = {"backlog", "lag_ms"};
	const char *pv[] = {"7", "120"};
	metrics_render_persist(&b, pf, pv, 2);
	char *text = strbuf_take(&b, NULL);
	CHECK(text != NULL);
	CHECK(strstr(text, "wsfront_ws_connections 3\n") != NULL);
	CHECK(strstr(text, "wsfront_rejects_total{reason=\"auth\"} 2\n") != NULL);
	CHECK(strstr(
	    text, "wsfront_http_request_duration_seconds_bucket{route=\"login\",le=\"0.1\"} 0\n"));
	CHECK(strstr(
	    text, "wsfront_http_request_duration_seconds_bucket{route=\"login\",le=\"0.25\"} 1\n"));
	CHECK(strstr(text, "wsfront_http_request_duration_seconds_count{route=\"login\"} 1\n"));
	CHECK(strstr(text, "chat_bridge_msgs_in{node=\"node_1\"} 12\n") != NULL);
	CHECK(strstr(text, "chat_bridge_rejects_total{node=\"node_1\",code=\"not_member\"} 4\n"));
	CHECK(strstr(text, "junk") == NULL);
	CHECK(strstr(text, "chat_persist_backlog 7\n") != NULL);
	CHECK(strstr(text, "chat_persist_lag_ms 120\n") != NULL);
	free(text);
}

int main(void)
{
	test_bufq();
	test_mqttscan();
	test_ratelimit();
	test_connlimit();
	test_accounts();
	test_metrics();
	return check_report();
}
