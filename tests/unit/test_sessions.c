/* Unit tests: the plugin's session table, per-address counts and the
 * bridge watch (the decisions behind refusing posts and offline queues). */
#include "addresses.h"
#include "check.h"
#include "sessions.h"
#include "watch.h"

static void sessions(void)
{
	struct session_table t;
	int a, b, c;

	CHECK_INT(sessions_init(&t), SESSIONS_OK);
	/* persistent sessions count per user, up to the cap */
	CHECK_INT(sessions_connect(&t, "eve:1", "eve", ROLE_USER, 100, &a, true, 2), SESSIONS_OK);
	CHECK_INT(sessions_connect(&t, "eve:2", "eve", ROLE_USER, 100, &b, true, 2), SESSIONS_OK);
	CHECK_INT(sessions_connect(&t, "eve:3", "eve", ROLE_USER, 100, &c, true, 2),
	          SESSIONS_E_CAP);
	CHECK(sessions_find(&t, "eve:3") == NULL);
	CHECK_INT(sessions_user_count(&t, "eve"), 2);
	/* a known id reconnects; a clean connection frees its slot */
	CHECK_INT(sessions_connect(&t, "eve:1", "eve", ROLE_USER, 100, &c, true, 2), SESSIONS_OK);
	CHECK_INT(sessions_connect(&t, "eve:2", "eve", ROLE_USER, 100, &b, false, 2), SESSIONS_OK);
	CHECK_INT(sessions_user_count(&t, "eve"), 1);
	/* clean sessions never count, services neither */
	CHECK_INT(sessions_connect(&t, "eve", "eve", ROLE_USER, 100, &a, false, 1), SESSIONS_OK);
	CHECK_INT(sessions_connect(&t, "bridge:n1", "bridge", ROLE_SERVICE, 100, &a, true, 0),
	          SESSIONS_OK);

	/* the old connection of a taken-over session leaves it online */
	sessions_disconnect(&t, "eve:1", &a, 10);
	CHECK(sessions_find(&t, "eve:1")->owner == &c);
	sessions_disconnect(&t, "eve:1", &c, 10);
	CHECK(sessions_find(&t, "eve:1")->owner == NULL);

	/* offline deliveries: QoS 0 free, QoS 1 up to the limit */
	CHECK(sessions_offline_read(&t, "eve:1", "eve", 0, 2, 5, 10));
	CHECK(sessions_offline_read(&t, "eve:1", "eve", 1, 2, 5, 10));
	CHECK(sessions_offline_read(&t, "eve:1", "eve", 1, 2, 5, 10));
	CHECK(!sessions_offline_read(&t, "eve:1", "eve", 1, 2, 5, 10));
	/* a service's session has its own bound */
	sessions_disconnect(&t, "bridge:n1", &a, 10);
	for (int i = 0; i < 5; i++)
		CHECK(sessions_offline_read(&t, "bridge:n1", "bridge", 1, 2, 5, 10));
	CHECK(!sessions_offline_read(&t, "bridge:n1", "bridge", 1, 2, 5, 10));
	/* a resumed session starts a new count */
	CHECK_INT(sessions_connect(&t, "eve:1", "eve", ROLE_USER, 100, &a, true, 2), SESSIONS_OK);
	sessions_disconnect(&t, "eve:1", &a, 20);
	CHECK(sessions_offline_read(&t, "eve:1", "eve", 1, 2, 5, 20));

	/* a departed clean session is kept for its Will until its token expires */
	sessions_disconnect(&t, "eve:2", &b, 20);
	CHECK(sessions_find(&t, "eve:2") != NULL);
	CHECK_INT(sessions_prune(&t, 100, 1000), 1);
	CHECK(sessions_find(&t, "eve:2") == NULL);
	/* a persistent one until it was idle too long */
	CHECK(sessions_find(&t, "eve:1") != NULL);
	CHECK_INT(sessions_prune(&t, 1020, 1000), 2);
	CHECK(sessions_find(&t, "eve:1") == NULL);
	CHECK_INT(sessions_user_count(&t, "eve"), 0);
	sessions_free(&t);
}

static void watch(void)
{
	struct watch w;

	watch_init(&w, 30000);
	CHECK_INT(watch_state(&w, 0), WATCH_NEVER);
	watch_subscribed(&w, "bridge:n1", 10);
	CHECK_INT(watch_state(&w, 20), WATCH_OK);
	/* someone else leaving changes nothing */
	watch_gone(&w, "alice", true, 30);
	CHECK_INT(watch_state(&w, 40), WATCH_OK);
	watch_gone(&w, "bridge:n1", true, 1000);
	CHECK_INT(watch_state(&w, 2000), WATCH_OK);
	CHECK_INT(watch_state(&w, 31000), WATCH_AWAY);
	watch_subscribed(&w, "bridge:n1", 40000);
	CHECK_INT(watch_state(&w, 40001), WATCH_OK);
	/* a subscriber without a session queues nothing: no grace */
	watch_gone(&w, "bridge:n1", false, 50000);
	CHECK_INT(watch_state(&w, 50000), WATCH_AWAY);
	CHECK(strstr(watch_strerror(WATCH_NEVER), "not connected") != NULL);
}

static void addresses(void)
{
	struct address_table t;

	CHECK_INT(addresses_init(&t), ADDRESSES_OK);
	CHECK_INT(addresses_take(&t, "127.0.0.1", 2), ADDRESSES_OK);
	CHECK_INT(addresses_take(&t, "127.0.0.1", 2), ADDRESSES_OK);
	CHECK_INT(addresses_take(&t, "127.0.0.1", 2), ADDRESSES_E_CAP);
	CHECK_INT(addresses_take(&t, "::1", 2), ADDRESSES_OK);
	addresses_release(&t, "127.0.0.1");
	CHECK_INT(addresses_count(&t, "127.0.0.1"), 1);
	CHECK_INT(addresses_take(&t, "127.0.0.1", 2), ADDRESSES_OK);
	addresses_release(&t, "::1");
	CHECK_INT(addresses_count(&t, "::1"), 0);
	addresses_free(&t);
}

int main(void)
{
	sessions();
	watch();
	addresses();
	return check_report();
}
