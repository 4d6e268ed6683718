/* Unit tests: the answer a request refused before the bridge gets
 * (notice_rpc_error: the request's id echoed like the bridge echoes it)
 * and the Response Topics it may go to (topic_reply_ok). */
#include <stdlib.h>
#include <string.h>

#include "chat/notice.h"
#include "chat/topic.h"
#include "check.h"

#define S(x) x, sizeof(x) - 1

static void answer(const char *payload, size_t len, size_t max, const char *want)
{
	char *got = notice_rpc_error(payload, len, max, "unavailable", "try again");
	CHECK_STR(got, want);
	free(got);
}

int main(void)
{
	answer(S("{\"id\":\"req-7\",\"method\":\"rooms.list\"}"), 1000,
	       "{\"id\":\"req-7\",\"error\":{\"code\":\"unavailable\",\"message\":\"try again\"}}");
	answer(S("{\"id\":42,\"method\":\"x\"}"), 1000,
	       "{\"id\":42,\"error\":{\"code\":\"unavailable\",\"message\":\"try again\"}}");
	const char *null_id =
	    "{\"id\":null,\"error\":{\"code\":\"unavailable\",\"message\":\"try again\"}}";
	answer(S("not json"), 1000, null_id);
	answer(S("{\"id\":{\"a\":1}}"), 1000, null_id);       /* not a string or number */
	answer(S("{\"method\":\"x\"}"), 1000, null_id);       /* none */
	answer(S("[\"id\"]"), 1000, null_id);                 /* not an object */
	answer(S("{\"id\":\"cut\\u0000x\"}"), 1000, null_id); /* a cut id is no id */
	answer(S("{\"id\":\"long\",\"pad\":\"xxxxxxxx\"}"), 10, null_id); /* not parsed */
	answer("", 0, 1000, null_id);
	/* quoting is cJSON's */
	answer(
	    S("{\"id\":\"a\\\"b\"}"), 1000,
	    "{\"id\":\"a\\\"b\",\"error\":{\"code\":\"unavailable\",\"message\":\"try again\"}}");

	CHECK(topic_reply_ok("chat", "eve", "chat/user/eve/replies/7"));
	CHECK(topic_reply_ok("chat", "eve", "chat/user/eve/rpc"));
	CHECK(!topic_reply_ok("chat", "eve", "chat/user/eve/"));
	CHECK(!topic_reply_ok("chat", "eve", "chat/user/bob/rpc"));
	CHECK(!topic_reply_ok("chat", "eve", "chat/user/eve/+"));
	CHECK(!topic_reply_ok("chat", "eve", "chat/user/eve/a//b"));
	CHECK(!topic_reply_ok("chat", "eve", "chat/room/general"));
	CHECK(!topic_reply_ok("chat", "eve", "chat/user/evelyn/rpc"));
	return check_report();
}
