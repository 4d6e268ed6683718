/* What the broker holds for its bridge (backlog.h), the broker's own limits
 * it is checked against (brokerconf.h), and the paced report replay
 * (replay.h): the decisions, without a broker. */
#include <string.h>

#include "backlog.h"
#include "brokerconf.h"
#include "check.h"
#include "replay.h"

static void admission(void)
{
	struct backlog b;

	backlog_init(&b, 3, 1000);
	CHECK(backlog_admits(&b, 1000));
	CHECK(!backlog_admits(&b, 1001));
	backlog_routed(&b, 400);
	backlog_routed(&b, 400);
	CHECK(backlog_admits(&b, 200));
	CHECK(!backlog_admits(&b, 201));
	backlog_routed(&b, 10);
	CHECK_INT(backlog_count(&b), 3);
	CHECK_INT(backlog_bytes(&b), 810);
	CHECK(!backlog_admits(&b, 1));
}

/* A new connection of the bridge starts the count again (mosquitto checks
 * what a resumed session holds as it begins); its offline session (0)
 * goes on with the last one's. */
static void connections(void)
{
	struct backlog b;

	backlog_init(&b, 100, 100000);
	backlog_connection(&b, 7);
	backlog_routed(&b, 10);
	backlog_connection(&b, 0);
	backlog_routed(&b, 10);
	backlog_connection(&b, 7);
	backlog_routed(&b, 10);
	CHECK_INT(backlog_count(&b), 3);
	uint64_t m = backlog_mark_due(&b, 1000);
	backlog_connection(&b, 9); /* the session resumed: its 3 checked again */
	for (int i = 0; i < 3; i++)
		backlog_routed(&b, 10);
	CHECK_INT(backlog_count(&b), 3);
	CHECK_INT(backlog_bytes(&b), 30);
	CHECK_INT(b.nmarks, 0);
	backlog_mark_taken(&b, m); /* an echo from before: changes nothing */
	CHECK_INT(backlog_count(&b), 3);
	CHECK(backlog_mark_due(&b, 1001) > m);
}

static void marks(void)
{
	struct backlog b;
	char text[BACKLOG_MARK_MAX];
	uint64_t id;

	backlog_init(&b, 100, 100000);
	/* one mark at once, then one each MARK_EVERY_MS while answered */
	uint64_t m1 = backlog_mark_due(&b, 5000);
	CHECK(m1 != 0);
	CHECK_INT(backlog_mark_due(&b, 5001), 0);
	backlog_routed(&b, 100); /* a post before the mark */
	backlog_routed(&b, 20);  /* the mark */
	backlog_mark_routed(&b, m1);
	backlog_routed(&b, 300); /* a post after it */
	CHECK_INT(backlog_count(&b), 3);
	backlog_mark_taken(&b, m1);
	CHECK_INT(backlog_count(&b), 1);
	CHECK_INT(backlog_bytes(&b), 300);
	CHECK_INT(backlog_mark_due(&b, 5050), 0);
	uint64_t m2 = backlog_mark_due(&b, 5100);
	CHECK(m2 > m1);
	/* unanswered: another after MARK_RETRY_MS, at most BACKLOG_MARKS out */
	CHECK_INT(backlog_mark_due(&b, 5100 + BACKLOG_MARK_RETRY_MS - 1), 0);
	int64_t t = 5100;
	size_t out = 1;
	for (int i = 0; i < 20; i++) {
		t += BACKLOG_MARK_RETRY_MS;
		if (backlog_mark_due(&b, t) != 0)
			out++;
	}
	CHECK_INT(out, BACKLOG_MARKS);
	/* an echo of a later mark takes what was routed before the older ones
	 * too (their echoes lost); one never routed changes nothing */
	backlog_mark_routed(&b, m2);
	backlog_routed(&b, 50);
	backlog_mark_taken(&b, m2 + 1); /* sent, never routed: no position */
	CHECK_INT(backlog_count(&b), 1);
	CHECK_INT(b.nmarks, BACKLOG_MARKS - 2);
	/* a new subscription: marks out may be gone, a fresh one is due now */
	backlog_resubscribed(&b);
	CHECK(backlog_mark_due(&b, t + 1) != 0);

	/* the text: "mark <boot> <id>", of this boot only */
	int n = backlog_mark_format("00112233aabbccdd", 42, text);
	CHECK_STR(text, "mark 00112233aabbccdd 42");
	CHECK(backlog_mark_parse(text, (size_t)n, "00112233aabbccdd", &id));
	CHECK_INT(id, 42);
	CHECK(!backlog_mark_parse(text, (size_t)n, "00112233aabbccde", &id));
	CHECK(!backlog_mark_parse("mark 00112233aabbccdd 0", 23, "00112233aabbccdd", &id));
	CHECK(!backlog_mark_parse("mark 00112233aabbccdd 4x", 24, "00112233aabbccdd", &id));
	CHECK(!backlog_mark_parse("mark 00112233aabbccdd ", 22, "00112233aabbccdd", &id));
	CHECK(!backlog_mark_parse("mark 00112233aabbccdd 99999999999999999999", 42,
	                          "00112233aabbccdd", &id));
	CHECK(!backlog_mark_parse("up alice 1-1 user", 17, "00112233aabbccdd", &id));
}

static void idle(void)
{
	struct backlog b;

	backlog_init(&b, 100, 100000);
	uint64_t m = backlog_mark_due(&b, 1000); /* one at the start, to learn */
	CHECK(m != 0);
	backlog_routed(&b, 20);
	backlog_mark_routed(&b, m);
	backlog_mark_taken(&b, m);
	/* then none while the broker holds nothing for the bridge */
	CHECK_INT(backlog_mark_due(&b, 1000000), 0);
	backlog_routed(&b, 5);
	CHECK(backlog_mark_due(&b, 1000001) != 0);
}

static void broker_limits(void)
{
	struct broker_limits l;
	char err[512], warn[256];
	const char *conf = "# max_queued_messages 5\n"
	                   "  max_queued_messages 100000\n"
	                   "max_queued_bytes 1048576\r\n"
	                   "max_inflight_bytes\t262144\n"
	                   "max_queued_messages 10000\n"
	                   "listener 1883\n";

	brokerconf_parse(conf, strlen(conf), &l);
	CHECK_INT(l.max_queued_messages, 10000); /* the last line wins */
	CHECK_INT(l.max_queued_bytes, 1048576);
	CHECK_INT(l.max_inflight_bytes, 262144);
	CHECK_INT(l.max_inflight_messages, 20); /* mosquitto's default */
	CHECK(!l.include_dir);
	CHECK_INT(brokerconf_check(&l, 9000, 917504, 16384, err, sizeof(err), warn, sizeof(warn)),
	          BROKERCONF_OK);
	CHECK_STR(warn, "");
	/* the bound plus the reports' slack must fit the broker's queue */
	CHECK_INT(brokerconf_check(&l, 9001, 917504, 16384, err, sizeof(err), warn, sizeof(warn)),
	          BROKERCONF_E_BAD);
	CHECK(strncmp(err, "bridge_queue_max: 9001", 22) == 0);
	CHECK_INT(brokerconf_check(&l, 8000, 917505, 16384, err, sizeof(err), warn, sizeof(warn)),
	          BROKERCONF_E_BAD);
	CHECK(strncmp(err, "bridge_queue_bytes: 917505", 26) == 0);
	/* a post of the largest size must fit, whatever the broker says */
	CHECK_INT(brokerconf_check(NULL, 8000, 16383, 16384, err, sizeof(err), warn, sizeof(warn)),
	          BROKERCONF_E_BAD);
	CHECK(strstr(err, "below publish_max") != NULL);
	CHECK_INT(brokerconf_check(NULL, 8000, 16384, 16384, err, sizeof(err), warn, sizeof(warn)),
	          BROKERCONF_OK);
	/* no limit at all is not wrong for the bridge, but worth a warning */
	brokerconf_parse("include_dir /etc/x\n", 19, &l);
	CHECK(l.include_dir);
	CHECK_INT(l.max_queued_messages, 1000);
	CHECK_INT(brokerconf_check(&l, 0, 16384, 16384, err, sizeof(err), warn, sizeof(warn)),
	          BROKERCONF_OK);
	CHECK(strstr(warn, "max_queued_bytes") != NULL);
	const char *tight = "max_queued_messages 0\nmax_queued_bytes 9\nmax_inflight_bytes 9";
	brokerconf_parse(tight, strlen(tight), &l);
	CHECK_INT(l.max_inflight_bytes, 9); /* no newline at the end */
	CHECK_INT(brokerconf_check(&l, 100000, 16384, 16384, err, sizeof(err), warn, sizeof(warn)),
	          BROKERCONF_E_BAD);
	CHECK(strstr(err, "max_queued_bytes 9") != NULL);
}

static void replay(void)
{
	struct client_table t;
	struct replay r = {0};
	struct acl_client a = {.role = ROLE_USER, .user = "alice", .user_len = 5};
	int keys[3];

	CHECK_INT(clients_init(&t), 0);
	CHECK_INT(replay_start(&r, &t), 0);
	CHECK(!replay_pending(&r));
	for (int i = 0; i < 3; i++)
		CHECK_INT(clients_put(&t, &keys[i], &a, 1000, (uint64_t)i + 1), 0);
	CHECK_INT(replay_start(&r, &t), 0);
	CHECK(replay_pending(&r));
	/* one ends before its turn, one is replaced by a new connection */
	clients_remove(&t, &keys[0]);
	CHECK_INT(clients_put(&t, &keys[1], &a, 1000, 7), 0);
	const struct client_entry *e, *got = NULL;
	int n = 0;
	while ((e = replay_next(&r, &t)) != NULL) {
		got = e;
		n++;
	}
	CHECK_INT(n, 1);
	CHECK(got != NULL && got->key == &keys[2] && got->conn_id == 3);
	CHECK(!replay_pending(&r));
	replay_free(&r);
	clients_free(&t);
}

int main(void)
{
	admission();
	connections();
	marks();
	idle();
	broker_limits();
	replay();
	return check_report();
}
