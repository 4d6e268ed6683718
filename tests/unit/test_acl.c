/* Unit tests: the topic rules and the client id rule of the plugin. */
#include "acl.h"
#include "check.h"
#include "clients.h"

static struct acl_rules rules = {"chat", 4, NULL, NULL};

static bool may(const struct acl_client *c, enum acl_access a, const char *topic)
{
	return acl_allowed(&rules, c, a, topic, false);
}

static bool private_secret(void *ctx, const char *user, size_t ulen, const char *room,
                           size_t rlen, enum acl_access access)
{
	(void)ctx;
	(void)access;
	if (rlen == 6 && memcmp(room, "secret", 6) == 0)
		return ulen == 5 && memcmp(user, "alice", 5) == 0;
	return true;
}

static int expired_calls;
static void on_expired(const void *key, void *ctx)
{
	clients_remove(ctx, key);
	expired_calls++;
}

int main(void)
{
	struct acl_client alice = {ROLE_USER, "alice", 5};
	struct acl_client admin = {ROLE_ADMIN, "root", 4};
	struct acl_client svc = {ROLE_SERVICE, "bridge", 6};

	/* users publish only under their own chat/in/<me>/ */
	CHECK(may(&alice, ACL_WRITE, "chat/in/alice/room/general"));
	CHECK(may(&alice, ACL_WRITE, "chat/in/alice/dm/bob"));
	CHECK(may(&alice, ACL_WRITE, "chat/in/alice/rpc"));
	CHECK(may(&alice, ACL_WRITE, "chat/in/alice/anything")); /* bridge answers with a notice */
	CHECK(!may(&alice, ACL_WRITE, "chat/in/bob/room/general"));
	CHECK(!may(&alice, ACL_WRITE, "chat/in/alicex/room/general"));
	CHECK(!may(&alice, ACL_WRITE, "chat/in/alice"));
	CHECK(!may(&alice, ACL_WRITE, "chat/in/alice/"));
	CHECK(!may(&alice, ACL_WRITE, "chat/room/general"));
	CHECK(!may(&alice, ACL_WRITE, "chat/presence/alice"));
	CHECK(!may(&alice, ACL_WRITE, "chat/user/alice/inbox"));
	CHECK(!may(&alice, ACL_WRITE, "other/in/alice/rpc"));
	CHECK(!acl_allowed(&rules, &alice, ACL_WRITE, "chat/in/alice/rpc", true)); /* retained */
	CHECK(!may(&admin, ACL_WRITE, "chat/in/alice/rpc"));

	/* subscriptions */
	CHECK(may(&alice, ACL_SUBSCRIBE, "chat/room/general"));
	CHECK(may(&alice, ACL_SUBSCRIBE, "chat/room/general/typing"));
	CHECK(may(&alice, ACL_SUBSCRIBE, "chat/room/general/events"));
	CHECK(!may(&alice, ACL_SUBSCRIBE, "chat/room/general/other"));
	CHECK(!may(&alice, ACL_SUBSCRIBE, "chat/room/general/typing/x"));
	CHECK(!may(&alice, ACL_SUBSCRIBE, "chat/room/+"));
	CHECK(!may(&alice, ACL_SUBSCRIBE, "chat/room/#"));
	CHECK(!may(&alice, ACL_SUBSCRIBE, "chat/room/general/+"));
	CHECK(!may(&alice, ACL_SUBSCRIBE, "chat/room/Bad"));
	CHECK(may(&alice, ACL_SUBSCRIBE, "chat/rooms"));
	CHECK(may(&alice, ACL_READ, "chat/rooms"));
	CHECK(!may(&alice, ACL_WRITE, "chat/rooms"));
	CHECK(!may(&alice, ACL_SUBSCRIBE, "chat/rooms/x"));
	CHECK(!may(&alice, ACL_SUBSCRIBE, "chat/rooms/#"));
	CHECK(!may(&alice, ACL_SUBSCRIBE, "chat/rooms/"));
	CHECK(may(&alice, ACL_SUBSCRIBE, "chat/user/alice/inbox"));
	CHECK(may(&alice, ACL_SUBSCRIBE, "chat/user/alice/rpc"));
	CHECK(may(&alice, ACL_SUBSCRIBE, "chat/user/alice/notice"));
	CHECK(may(&alice, ACL_SUBSCRIBE, "chat/user/alice/#"));
	CHECK(may(&alice, ACL_SUBSCRIBE, "chat/user/alice/replies/42"));
	CHECK(!may(&alice, ACL_SUBSCRIBE, "chat/user/alice/+"));
	CHECK(!may(&alice, ACL_SUBSCRIBE, "chat/user/alice/inbox/#"));
	CHECK(!may(&alice, ACL_SUBSCRIBE, "chat/user/alice"));
	CHECK(!may(&alice, ACL_SUBSCRIBE, "chat/user/alice/"));
	CHECK(!may(&alice, ACL_SUBSCRIBE, "chat/user/alice//x"));
	CHECK(!may(&alice, ACL_SUBSCRIBE, "chat/user/bob/inbox"));
	CHECK(!may(&alice, ACL_SUBSCRIBE, "chat/user/+/inbox"));
	CHECK(!may(&alice, ACL_SUBSCRIBE, "chat/user/#"));
	CHECK(may(&alice, ACL_SUBSCRIBE, "chat/presence/+"));
	CHECK(may(&alice, ACL_SUBSCRIBE, "chat/presence/bob"));
	CHECK(!may(&alice, ACL_SUBSCRIBE, "chat/presence/#"));
	CHECK(!may(&alice, ACL_SUBSCRIBE, "chat/presence/bob/x"));
	CHECK(!may(&alice, ACL_SUBSCRIBE, "#"));
	CHECK(!may(&alice, ACL_SUBSCRIBE, "chat/#"));
	CHECK(!may(&alice, ACL_SUBSCRIBE, "chat/+/general"));
	CHECK(!may(&alice, ACL_SUBSCRIBE, "chat/in/#"));
	CHECK(!may(&alice, ACL_SUBSCRIBE, "chat/in/alice/rpc"));
	CHECK(!may(&alice, ACL_SUBSCRIBE, "$SYS/#"));
	CHECK(!may(&alice, ACL_SUBSCRIBE, "$share/g/chat/room/general"));
	CHECK(!may(&alice, ACL_SUBSCRIBE, "chat"));
	CHECK(!may(&alice, ACL_SUBSCRIBE, ""));

	/* deliveries */
	CHECK(may(&alice, ACL_READ, "chat/room/general"));
	CHECK(may(&alice, ACL_READ, "chat/user/alice/inbox"));
	CHECK(may(&alice, ACL_READ, "chat/presence/bob"));
	CHECK(!may(&alice, ACL_READ, "chat/user/bob/inbox"));
	CHECK(!may(&alice, ACL_READ, "chat/in/bob/dm/alice"));
	CHECK(!may(&alice, ACL_READ, "$SYS/broker/uptime"));

	/* private rooms through the membership lookup */
	rules.room_visible = private_secret;
	struct acl_client bob = {ROLE_USER, "bob", 3};
	CHECK(may(&alice, ACL_SUBSCRIBE, "chat/room/secret"));
	CHECK(may(&alice, ACL_READ, "chat/room/secret/typing"));
	CHECK(!may(&bob, ACL_SUBSCRIBE, "chat/room/secret"));
	CHECK(!may(&bob, ACL_READ, "chat/room/secret"));
	CHECK(!may(&bob, ACL_READ, "chat/room/secret/events"));
	CHECK(may(&bob, ACL_READ, "chat/room/general"));
	CHECK(may(&svc, ACL_READ, "chat/room/secret"));
	rules.room_visible = NULL;

	/* services */
	CHECK(may(&svc, ACL_SUBSCRIBE, "$share/bridge/chat/in/#"));
	CHECK(may(&svc, ACL_SUBSCRIBE, "chat/in/#"));
	CHECK(!may(&svc, ACL_SUBSCRIBE, "$share//chat/in/#"));
	CHECK(!may(&svc, ACL_SUBSCRIBE, "$share/bridge/#"));
	CHECK(!may(&svc, ACL_SUBSCRIBE, "#"));
	CHECK(!may(&svc, ACL_SUBSCRIBE, "$SYS/#"));
	CHECK(may(&svc, ACL_WRITE, "chat/room/general"));
	CHECK(may(&svc, ACL_WRITE, "chat/user/bob/inbox"));
	CHECK(may(&svc, ACL_WRITE, "chat/presence/bob"));
	CHECK(!may(&svc, ACL_WRITE, "chat/in/bob/room/general"));
	CHECK(!may(&svc, ACL_WRITE, "other/topic"));
	CHECK(may(&svc, ACL_READ, "chat/in/bob/room/general"));

	/* client ids */
	CHECK(acl_client_id_ok("alice", "alice"));
	CHECK(acl_client_id_ok("alice", "alice:phone"));
	CHECK(acl_client_id_ok("alice", "auto-0123ABCD-4567-89ab-cdef-0123456789ab"));
	CHECK(!acl_client_id_ok("alice", "bob"));
	CHECK(!acl_client_id_ok("alice", "alicex"));
	CHECK(!acl_client_id_ok("alice", "alice:"));
	CHECK(!acl_client_id_ok("alice", "alice:a/b"));
	CHECK(!acl_client_id_ok("alice", "alice:a+b"));
	CHECK(!acl_client_id_ok("alice", "alice:a#b"));
	CHECK(!acl_client_id_ok("alice", "alice:a b"));
	CHECK(!acl_client_id_ok("alice", "bob:alice"));
	CHECK(!acl_client_id_ok("alice", "auto-bob"));
	CHECK(!acl_client_id_ok("alice", NULL));

	/* connection table: by pointer, replace, remove, expiry */
	struct client_table t;
	int keys[3000];
	CHECK_INT(clients_init(&t), 0);
	for (int i = 0; i < 3000; i++)
		CHECK_INT(clients_put(&t, &keys[i], &alice, 1000 + i, (uint64_t)i), 0);
	CHECK_INT(t.count, 3000);
	CHECK_INT(t.next_exp, 1000);
	CHECK(clients_get(&t, &keys[2999]) != NULL);
	CHECK_INT(clients_get(&t, &keys[2999])->exp, 3999);
	CHECK_INT(clients_put(&t, &keys[5], &bob, 5000, 5), 0);
	CHECK_INT(t.count, 3000);
	CHECK_STR(clients_get(&t, &keys[5])->acl.user, "bob");
	clients_remove(&t, &keys[7]);
	CHECK(clients_get(&t, &keys[7]) == NULL);
	CHECK_INT(t.count, 2999);
	CHECK_INT(clients_expire(&t, 1009, on_expired, &t), 8); /* 0..9 less 5 and 7 */
	CHECK_INT(expired_calls, 8);
	CHECK_INT(t.count, 2991);
	CHECK_INT(t.next_exp, 1010);
	CHECK(clients_get(&t, &keys[5]) != NULL);
	clients_free(&t);
	return check_report();
}
