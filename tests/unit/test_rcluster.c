/* Unit test: the pure half of the Redis Cluster client (rcluster_slots.h).
 * CRC16 against the specification's vector, key slots against what
 * redis-server 7.0's CLUSTER KEYSLOT answers (hash tags and their edge
 * cases), CLUSTER SLOTS replies built by hand into slot tables (good,
 * Redis 7 endpoints, malformed, standalone), MOVED/ASK parsing, table
 * updates, seed lists and the refresh candidates. */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "rcluster.h"

/* ---- redisReply trees by hand (freeReplyObject frees them: hiredis 0.14
 * uses malloc/free) ---- */

static redisReply *node(int type)
{
	redisReply *r = calloc(1, sizeof(*r));
	r->type = type;
	return r;
}

static redisReply *str(int type, const char *s)
{
	redisReply *r = node(type);
	r->len = strlen(s);
	r->str = strdup(s);
	return r;
}

static redisReply *bulk(const char *s)
{
	return str(REDIS_REPLY_STRING, s);
}

static redisReply *error(const char *s)
{
	return str(REDIS_REPLY_ERROR, s);
}

static redisReply *integer(long long v)
{
	redisReply *r = node(REDIS_REPLY_INTEGER);
	r->integer = v;
	return r;
}

/* An array of n elements, given as arguments. */
static redisReply *array(size_t n, ...)
{
	va_list ap;
	redisReply *r = node(REDIS_REPLY_ARRAY);

	r->elements = n;
	r->element = calloc(n ? n : 1, sizeof(*r->element));
	va_start(ap, n);
	for (size_t i = 0; i < n; i++)
		r->element[i] = va_arg(ap, redisReply *);
	va_end(ap);
	return r;
}

/* [host, port, id, {}] as Redis 7.0 answers it; host NULL: a nil endpoint. */
static redisReply *endpoint(const char *host, long long port)
{
	return array(4, host ? bulk(host) : node(REDIS_REPLY_NIL), integer(port),
	             bulk("9a051d91068cca7a9e782e1e2d214bc3a8bd54eb"), array(0));
}

static redisReply *range(long long from, long long to, redisReply *primary)
{
	return array(4, integer(from), integer(to), primary, endpoint("10.0.0.9", 7009));
}

static const struct rcluster_addr asked = {"127.0.0.1", 7000};

static void test_crc16_and_slots(void)
{
	CHECK_INT(rcluster_crc16("123456789", 9), 0x31C3);
	CHECK_INT(rcluster_crc16("", 0), 0);
	/* what redis-server 7.0.15 answers to CLUSTER KEYSLOT <key> */
	static const struct {
		const char *key;
		int slot;
	} keys[] = {
	    {"123456789", 12739},
	    {"foo", 12182},
	    {"bar", 5061},
	    {"{user1000}.following", 3443},
	    {"{user1000}.followers", 3443},
	    {"foo{}{bar}", 8363},    /* empty first tag: the whole key */
	    {"foo{{bar}}zap", 4015}, /* tag "{bar" */
	    {"foo{bar}{zap}", 5061}, /* the first tag only: "bar" */
	    {"{}", 15257},
	    {"{", 4092},
	    {"}{", 12793},
	    {"{a", 10276},
	    {"a}", 5921},
	    {"}{a}", 15495}, /* the '}' before the '{' does not count */
	    {"", 0},
	    {"{}a", 10875},
	    {"a{b}", 3300},
	    {"chat:{p17}:stream", 10264},
	    {"{p17}", 10264},
	};
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		int slot = rcluster_key_slot(keys[i].key, strlen(keys[i].key));
		if (slot != keys[i].slot)
			fprintf(stderr, "key '%s':\n", keys[i].key);
		CHECK_INT(slot, keys[i].slot);
	}
	/* a tag makes a key's slot its tag's, whatever surrounds it */
	CHECK_INT(rcluster_key_slot("x{a}y", 5), rcluster_key_slot("a", 1));
	/* keys are bytes: a NUL inside counts */
	CHECK_INT(rcluster_key_slot("a\0b", 3), rcluster_crc16("a\0b", 3) & 16383);
	CHECK_INT(rcluster_key_slot("{\0}x", 4), rcluster_key_slot("\0", 1));
}

static void test_slots_reply(void)
{
	struct rcluster_table t;

	/* three primaries, replicas listed after each (ignored) */
	redisReply *r = array(3, range(0, 5460, endpoint("127.0.0.1", 7000)),
	                      range(5461, 10922, endpoint("127.0.0.1", 7001)),
	                      range(10923, 16383, endpoint("127.0.0.1", 7002)));
	CHECK_INT(rcluster_table_from_reply(&t, r, &asked), 0);
	CHECK_INT(t.nnodes, 3);
	CHECK_INT(t.standalone, 0);
	CHECK_INT(rcluster_table_owner(&t, 0)->port, 7000);
	CHECK_INT(rcluster_table_owner(&t, 5460)->port, 7000);
	CHECK_INT(rcluster_table_owner(&t, 5461)->port, 7001);
	CHECK_INT(rcluster_table_owner(&t, 10922)->port, 7001);
	CHECK_INT(rcluster_table_owner(&t, 10923)->port, 7002);
	CHECK_INT(rcluster_table_owner(&t, 16383)->port, 7002);
	CHECK_STR(rcluster_table_owner(&t, 16383)->host, "127.0.0.1");
	CHECK(rcluster_table_owner(&t, 16384) == NULL);
	CHECK(rcluster_table_owner(&t, -1) == NULL);
	CHECK_INT(rcluster_table_find(&t, "127.0.0.1", 7001), 1);
	CHECK_INT(rcluster_table_find(&t, "10.0.0.9", 7009), -1); /* a replica */
	/* the same answer twice is the same table; a moved slot is not */
	struct rcluster_table u;
	CHECK_INT(rcluster_table_from_reply(&u, r, &asked), 0);
	CHECK(rcluster_table_same(&t, &u));
	CHECK_INT(rcluster_table_set(&u, 42, "127.0.0.1", 7002), 0);
	CHECK(!rcluster_table_same(&t, &u));
	rcluster_table_clear(&u);
	rcluster_table_clear(&t);
	freeReplyObject(r);

	/* several ranges per node (a migrated slot), one node listed once */
	r = array(3, range(0, 99, endpoint("127.0.0.1", 7000)),
	          range(100, 100, endpoint("127.0.0.1", 7001)),
	          range(101, 16383, endpoint("127.0.0.1", 7000)));
	CHECK_INT(rcluster_table_from_reply(&t, r, &asked), 0);
	CHECK_INT(t.nnodes, 2);
	CHECK_INT(rcluster_table_owner(&t, 99)->port, 7000);
	CHECK_INT(rcluster_table_owner(&t, 100)->port, 7001);
	CHECK_INT(rcluster_table_owner(&t, 101)->port, 7000);
	rcluster_table_clear(&t);
	freeReplyObject(r);

	/* Redis 7 endpoints: nil or "" is the address asked; "?" (hostname
	 * unknown) leaves the range unknown; part of the slots uncovered */
	r = array(3, range(0, 9, endpoint(NULL, 7005)), range(10, 19, endpoint("", 7006)),
	          range(20, 29, endpoint("?", 7007)));
	CHECK_INT(rcluster_table_from_reply(&t, r, &asked), 0);
	CHECK_STR(rcluster_table_owner(&t, 0)->host, "127.0.0.1");
	CHECK_INT(rcluster_table_owner(&t, 9)->port, 7005);
	CHECK_STR(rcluster_table_owner(&t, 10)->host, "127.0.0.1");
	CHECK_INT(rcluster_table_owner(&t, 19)->port, 7006);
	CHECK(rcluster_table_owner(&t, 20) == NULL);
	CHECK(rcluster_table_owner(&t, 30) == NULL);
	rcluster_table_clear(&t);
	freeReplyObject(r);

	/* a standalone server: it owns every slot */
	r = error("ERR This instance has cluster support disabled");
	CHECK_INT(rcluster_table_from_reply(&t, r, &asked), 0);
	CHECK_INT(t.standalone, 1);
	CHECK_INT(t.nnodes, 1);
	CHECK_INT(rcluster_table_owner(&t, 0)->port, 7000);
	CHECK_INT(rcluster_table_owner(&t, 16383)->port, 7000);
	rcluster_table_clear(&t);
	freeReplyObject(r);

	/* refused: other errors, nothing, malformed ranges; the table is left
	 * empty each time */
	redisReply *bad[] = {
	    error("LOADING Redis is loading the dataset in memory"),
	    error("NOAUTH Authentication required."),
	    str(REDIS_REPLY_STATUS, "OK"),
	    array(0), /* a cluster with no slot assigned yet */
	    array(1, range(10, 9, endpoint("h", 1))),
	    array(1, range(0, 16384, endpoint("h", 1))),
	    array(1, range(-1, 5, endpoint("h", 1))),
	    array(1, range(0, 5, endpoint("h", 0))),
	    array(1, range(0, 5, endpoint("h", 65536))),
	    array(1, array(2, integer(0), integer(5))),
	    array(1, array(3, integer(0), integer(5), array(1, bulk("h")))),
	    array(1, array(3, integer(0), integer(5), array(2, bulk("h"), bulk("7000")))),
	    array(1, array(3, bulk("0"), integer(5), endpoint("h", 1))),
	    array(1, integer(3)),
	    array(2, range(0, 5, endpoint("h", 1)), integer(3)),
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		t.nnodes = 99;
		if (rcluster_table_from_reply(&t, bad[i], &asked) != -1)
			fprintf(stderr, "bad reply %zu:\n", i);
		CHECK_INT(rcluster_table_from_reply(&t, bad[i], &asked), -1);
		CHECK_INT(t.nnodes, 0);
		CHECK(rcluster_table_owner(&t, 0) == NULL);
		freeReplyObject(bad[i]);
	}
	CHECK_INT(rcluster_table_from_reply(&t, NULL, &asked), -1);
	/* a host longer than any name */
	char longhost[300];
	memset(longhost, 'h', sizeof(longhost) - 1);
	longhost[sizeof(longhost) - 1] = '\0';
	r = array(1, range(0, 5, endpoint(longhost, 1)));
	CHECK_INT(rcluster_table_from_reply(&t, r, &asked), -1);
	freeReplyObject(r);
}

static void test_redirects(void)
{
	struct rcluster_addr to;
	int slot = -1;
	redisReply *r;

	r = error("MOVED 3999 127.0.0.1:6381");
	CHECK_INT(rcluster_redirect_parse(r, &asked, &slot, &to), RCLUSTER_REDIRECT_MOVED);
	CHECK_INT(slot, 3999);
	CHECK_STR(to.host, "127.0.0.1");
	CHECK_INT(to.port, 6381);
	freeReplyObject(r);

	r = error("ASK 16383 redis-2.internal:7002");
	CHECK_INT(rcluster_redirect_parse(r, &asked, &slot, &to), RCLUSTER_REDIRECT_ASK);
	CHECK_INT(slot, 16383);
	CHECK_STR(to.host, "redis-2.internal");
	CHECK_INT(to.port, 7002);
	freeReplyObject(r);

	/* Redis 7 with an unknown endpoint: the host asked */
	r = error("MOVED 0 :6380");
	CHECK_INT(rcluster_redirect_parse(r, &asked, &slot, &to), RCLUSTER_REDIRECT_MOVED);
	CHECK_INT(slot, 0);
	CHECK_STR(to.host, "127.0.0.1");
	CHECK_INT(to.port, 6380);
	freeReplyObject(r);

	/* IPv6: the port is after the last colon */
	r = error("MOVED 7 ::1:6380");
	CHECK_INT(rcluster_redirect_parse(r, &asked, &slot, &to), RCLUSTER_REDIRECT_MOVED);
	CHECK_STR(to.host, "::1");
	CHECK_INT(to.port, 6380);
	freeReplyObject(r);

	const char *notredirects[] = {
	    "MOVED",
	    "MOVED 1",
	    "MOVED x 1.2.3.4:5",
	    "MOVED 16384 h:1",
	    "MOVED 1 h",
	    "MOVED 1 h:0",
	    "MOVED 1 h:65536",
	    "MOVED 1 h:12a",
	    "MOVED -1 h:1",
	    "MOVED 1  h:1",
	    "ASK 1 h:",
	    "ERR unknown command",
	    "MOVEDX 1 h:1",
	    "TRYAGAIN Multiple keys request during rehashing of slot",
	    "CLUSTERDOWN The cluster is down",
	};
	for (size_t i = 0; i < sizeof(notredirects) / sizeof(notredirects[0]); i++) {
		r = error(notredirects[i]);
		slot = -5;
		if (rcluster_redirect_parse(r, &asked, &slot, &to) != RCLUSTER_REDIRECT_NONE)
			fprintf(stderr, "'%s':\n", notredirects[i]);
		CHECK_INT(rcluster_redirect_parse(r, &asked, &slot, &to), RCLUSTER_REDIRECT_NONE);
		CHECK_INT(slot, -5); /* untouched */
		freeReplyObject(r);
	}
	/* no redirect, but the topology is worth asking again */
	r = error("CLUSTERDOWN The cluster is down");
	CHECK(rcluster_topology_changed(r));
	freeReplyObject(r);
	r = error("READONLY You can't write against a read only replica.");
	CHECK(rcluster_topology_changed(r));
	freeReplyObject(r);
	r = error("ERR wrong number of arguments");
	CHECK(!rcluster_topology_changed(r));
	freeReplyObject(r);
	r = bulk("READONLY");
	CHECK(!rcluster_topology_changed(r));
	freeReplyObject(r);
	CHECK(!rcluster_topology_changed(NULL));
	/* only an error reply redirects */
	r = bulk("MOVED 1 h:1");
	CHECK_INT(rcluster_redirect_parse(r, &asked, &slot, &to), RCLUSTER_REDIRECT_NONE);
	freeReplyObject(r);
	CHECK_INT(rcluster_redirect_parse(NULL, &asked, &slot, &to), RCLUSTER_REDIRECT_NONE);
}

static void test_table_updates(void)
{
	struct rcluster_table t;
	struct rcluster_addr a = {"10.0.0.1", 7000};

	rcluster_table_init(&t);
	CHECK(rcluster_table_owner(&t, 5) == NULL);
	CHECK_INT(rcluster_candidates(&t, 0), 0);
	CHECK_INT(rcluster_table_set(&t, 5, "10.0.0.1", 7000), 0);
	CHECK_INT(rcluster_table_set(&t, 6, "10.0.0.1", 7000), 0);
	CHECK_INT(t.nnodes, 1); /* one node, however many slots */
	CHECK_INT(rcluster_table_set(&t, 5, "10.0.0.2", 7000), 0);
	CHECK_INT(t.nnodes, 2);
	CHECK_STR(rcluster_table_owner(&t, 5)->host, "10.0.0.2");
	CHECK_STR(rcluster_table_owner(&t, 6)->host, "10.0.0.1");
	/* refused, and nothing changes */
	CHECK_INT(rcluster_table_set(&t, 16384, "10.0.0.3", 1), -1);
	CHECK_INT(rcluster_table_set(&t, -1, "10.0.0.3", 1), -1);
	CHECK_INT(rcluster_table_set(&t, 7, "10.0.0.3", 0), -1);
	CHECK_INT(rcluster_table_set(&t, 7, "", 7000), -1);
	CHECK_INT(t.nnodes, 2);
	CHECK(rcluster_table_owner(&t, 7) == NULL);
	/* candidates: the table's nodes, then the seeds */
	struct rcluster_addr seeds[2] = {{"s1", 1}, {"s2", 2}};
	CHECK_INT(rcluster_candidates(&t, 2), 4);
	CHECK_STR(rcluster_candidate(&t, seeds, 2, 0)->host, "10.0.0.1");
	CHECK_STR(rcluster_candidate(&t, seeds, 2, 1)->host, "10.0.0.2");
	CHECK_STR(rcluster_candidate(&t, seeds, 2, 3)->host, "s2");
	CHECK(rcluster_candidate(&t, seeds, 2, 4) == NULL);
	rcluster_table_clear(&t);
	CHECK_INT(t.nnodes, 0);
	CHECK(rcluster_table_owner(&t, 5) == NULL);

	/* standalone: every slot one node; its candidates are the seeds only
	 * (Sentinel may name another primary) */
	CHECK_INT(rcluster_table_standalone(&t, &a), 0);
	CHECK_INT(t.standalone, 1);
	CHECK_INT(rcluster_table_owner(&t, 12345)->port, 7000);
	CHECK_INT(rcluster_candidates(&t, 1), 1);
	CHECK_STR(rcluster_candidate(&t, seeds, 1, 0)->host, "s1");
	rcluster_table_clear(&t);
}

static void test_seeds(void)
{
	struct rcluster_addr *a;
	size_t n;

	CHECK_INT(rcluster_addrs_parse("127.0.0.1:7000", &a, &n), 0);
	CHECK_INT(n, 1);
	CHECK_STR(a[0].host, "127.0.0.1");
	CHECK_INT(a[0].port, 7000);
	free(a);
	CHECK_INT(rcluster_addrs_parse(" a:1 , redis-2.internal:65535,::1:6379", &a, &n), 0);
	CHECK_INT(n, 3);
	CHECK_STR(a[0].host, "a");
	CHECK_INT(a[1].port, 65535);
	CHECK_STR(a[2].host, "::1");
	free(a);
	const char *bad[] = {"",     "a",    "a:",       ":1",   "a:0", "a:65536",
	                     "a:1,", ",a:1", "a:1,,b:2", "a:1x", "a:-1"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		a = (struct rcluster_addr *)1;
		if (rcluster_addrs_parse(bad[i], &a, &n) != -1)
			fprintf(stderr, "seeds '%s':\n", bad[i]);
		CHECK_INT(rcluster_addrs_parse(bad[i], &a, &n), -1);
		CHECK(a == NULL);
		CHECK_INT(n, 0);
	}
	CHECK_INT(rcluster_addrs_parse(NULL, &a, &n), -1);
}

static void test_status(void)
{
	CHECK(rcluster_maybe_ran(RCLUSTER_OK));
	CHECK(rcluster_maybe_ran(RCLUSTER_E_LOST));
	CHECK(!rcluster_maybe_ran(RCLUSTER_E_DOWN));
	CHECK(!rcluster_maybe_ran(RCLUSTER_E_REDIRECTS));
	CHECK(!rcluster_maybe_ran(RCLUSTER_E_AUTH));
	CHECK(strstr(rcluster_strerror(RCLUSTER_E_LOST), "may have run") != NULL);
	CHECK(strstr(rcluster_strerror(RCLUSTER_E_DOWN), "not sent") != NULL);
}

int main(void)
{
	test_crc16_and_slots();
	test_slots_reply();
	test_redirects();
	test_table_updates();
	test_seeds();
	test_status();
	return check_report();
}
