/* Unit tests: inbound topic parsing and outbound topic names. */
#include "chat/topic.h"
#include "check.h"

#define S(x) x, sizeof(x) - 1

int main(void)
{
	struct topic_in t;
	char buf[128];

	CHECK_INT(topic_parse_in("chat", S("chat/in/alice/room/general"), &t), TOPIC_OK);
	CHECK_INT(t.kind, TOPIC_IN_ROOM);
	CHECK_STR(t.sender, "alice");
	CHECK_STR(t.target, "general");
	CHECK_INT(topic_parse_in("chat", S("chat/in/alice/dm/bob"), &t), TOPIC_OK);
	CHECK_INT(t.kind, TOPIC_IN_DM);
	CHECK_STR(t.target, "bob");
	CHECK_INT(topic_parse_in("chat", S("chat/in/alice/typing/room/general"), &t), TOPIC_OK);
	CHECK_INT(t.kind, TOPIC_IN_TYPING_ROOM);
	CHECK_INT(topic_parse_in("chat", S("chat/in/alice/typing/dm/bob"), &t), TOPIC_OK);
	CHECK_INT(t.kind, TOPIC_IN_TYPING_DM);
	CHECK_INT(topic_parse_in("chat", S("chat/in/alice/rpc"), &t), TOPIC_OK);
	CHECK_INT(t.kind, TOPIC_IN_RPC);
	CHECK_STR(t.target, "");

	CHECK_INT(topic_parse_in("chat", S("other/in/alice/rpc"), &t), TOPIC_E_PREFIX);
	CHECK_INT(topic_parse_in("chat", S("chatx/in/alice/rpc"), &t), TOPIC_E_PREFIX);
	CHECK_INT(topic_parse_in("chat", S("chat/out/alice/rpc"), &t), TOPIC_E_PREFIX);
	CHECK_INT(topic_parse_in("chat", S("chat/in/"), &t), TOPIC_E_SENDER);
	CHECK_INT(topic_parse_in("chat", S("chat/in/Alice/rpc"), &t), TOPIC_E_SENDER);
	CHECK_INT(topic_parse_in("chat", S("chat/in/alice"), &t), TOPIC_E_SENDER);

	memset(&t, 0, sizeof(t));
	CHECK_INT(topic_parse_in("chat", S("chat/in/alice/shout/x"), &t), TOPIC_E_KIND);
	CHECK_STR(t.sender, "alice"); /* so the bridge can send a notice */
	CHECK_INT(topic_parse_in("chat", S("chat/in/alice/rpc/x"), &t), TOPIC_E_KIND);
	CHECK_INT(topic_parse_in("chat", S("chat/in/alice/room/Bad"), &t), TOPIC_E_TARGET);
	CHECK_INT(topic_parse_in("chat", S("chat/in/alice/room/general/x"), &t), TOPIC_E_TARGET);
	CHECK_INT(topic_parse_in("chat", S("chat/in/alice/room/"), &t), TOPIC_E_TARGET);
	CHECK_INT(topic_parse_in("chat", S("chat/in/alice/dm/a.b"), &t), TOPIC_OK);
	CHECK_INT(topic_parse_in("chat", S("chat/in/alice/typing/x/bob"), &t), TOPIC_E_KIND);
	/* length is honoured: the topic is not a C string */
	CHECK_INT(topic_parse_in("chat", "chat/in/alice/rpcXYZ", 17, &t), TOPIC_OK);

	CHECK_INT(topic_room("chat", "general", NULL, buf, sizeof(buf)), 17);
	CHECK_STR(buf, "chat/room/general");
	CHECK_INT(topic_room("chat", "general", "typing", buf, sizeof(buf)), 24);
	CHECK_STR(buf, "chat/room/general/typing");
	CHECK_INT(topic_user("chat", "bob", "inbox", buf, sizeof(buf)), 19);
	CHECK_STR(buf, "chat/user/bob/inbox");
	CHECK_INT(topic_presence("chat", "bob", buf, sizeof(buf)), 17);
	CHECK_STR(buf, "chat/presence/bob");
	CHECK_INT(topic_room("chat", "general", NULL, buf, 10), -1);
	return check_report();
}
