/*
 * Unit tests of the firmware client's bounded JSON scanner and envelope
 * parser (firmware-example/src/fw_json.c, fw_env.c): what a device gets out
 * of a message, a notice and a history reply, and that truncated, oversized
 * and malformed input is refused. Every input is copied into a heap block
 * of its exact size, so ASan catches any read past the end.
 */
#include <stdlib.h>

#include "check.h"
#include "fw_env.h"

static char *exact(const char *s, size_t n)
{
	char *b = malloc(n ? n : 1);
	memcpy(b, s, n);
	return b;
}

static int env_rc(const char *s, size_t n)
{
	struct fw_env e;
	char *b = exact(s, n);
	int rc = fw_env_parse_payload(b, n, &e);
	free(b);
	return rc;
}

static int env_str(const char *s)
{
	return env_rc(s, strlen(s));
}

static const char MSG[] =
    "{\"v\":1,\"type\":\"msg\",\"conv\":\"room:general\",\"seq\":42,\"id\":\"x1\","
    "\"from\":\"alice\",\"to\":\"general\",\"ts\":1732300000123,\"body\":\"hello\","
    "\"cid\":\"c-17\",\"extra\":{\"a\":[1,2.5e3,-0.1,true,false,null,\"s\"]}}";

static void test_message(void)
{
	struct fw_env e;
	char *b = exact(MSG, strlen(MSG));
	CHECK_INT(fw_env_parse_payload(b, strlen(MSG), &e), 0);
	CHECK_INT(e.kind, FW_ENV_MSG);
	CHECK_STR(e.conv.p, "room:general");
	CHECK_INT(e.seq, 42);
	CHECK_STR(e.from.p, "alice");
	CHECK_STR(e.body.p, "hello");
	CHECK_INT(e.body.len, 5);
	CHECK_STR(e.cid.p, "c-17");
	CHECK(e.ts == 1732300000123ull);
	free(b);
}

static void test_unescape(void)
{
	struct fw_env e;
	const char *s = "{\"type\":\"msg\",\"conv\":\"dm:a:b\",\"seq\":1,\"from\":\"a\","
	                "\"body\":\"q\\\"b\\\\s\\/n\\n\\u00e9\\u20ac\\ud83d\\ude00\\u0000z\"}";
	char *b = exact(s, strlen(s));
	CHECK_INT(fw_env_parse_payload(b, strlen(s), &e), 0);
	static const char want[] = "q\"b\\s/n\n\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\0z";
	CHECK_INT(e.body.len, sizeof(want) - 1);
	CHECK(e.body.len == sizeof(want) - 1 && memcmp(e.body.p, want, sizeof(want)) == 0);
	free(b);
}

static void test_notice_and_typing(void)
{
	struct fw_env e;
	const char *n = "{\"v\":1,\"type\":\"notice\",\"code\":\"too_large\",\"message\":\"m\","
	                "\"topic\":\"chat/in/a/room/x\"}";
	char *b = exact(n, strlen(n));
	CHECK_INT(fw_env_parse_payload(b, strlen(n), &e), 0);
	CHECK_INT(e.kind, FW_ENV_NOTICE);
	CHECK_STR(e.code.p, "too_large");
	free(b);
	const char *t = "{\"v\":1,\"type\":\"typing\",\"conv\":\"room:x\",\"from\":\"a\"}";
	b = exact(t, strlen(t));
	CHECK_INT(fw_env_parse_payload(b, strlen(t), &e), 0);
	CHECK_INT(e.kind, FW_ENV_OTHER);
	free(b);
}

static void test_refusals(void)
{
	static const struct {
		const char *what, *json;
		int rc;
	} cases[] = {
	    {"empty", "", FW_ERR_MALFORMED},
	    {"array", "[]", FW_ERR_MALFORMED},
	    {"no type", "{\"seq\":1}", FW_ERR_MALFORMED},
	    {"msg without seq",
	     "{\"type\":\"msg\",\"conv\":\"room:x\",\"from\":\"a\",\"body\":\"b\"}",
	     FW_ERR_MALFORMED},
	    {"seq 0",
	     "{\"type\":\"msg\",\"conv\":\"room:x\",\"seq\":0,\"from\":\"a\",\"body\":\"b\"}",
	     FW_ERR_MALFORMED},
	    {"seq over 32 bits",
	     "{\"type\":\"msg\",\"conv\":\"room:x\",\"seq\":4294967296,\"from\":\"a\",\"body\":"
	     "\"b\"}",
	     FW_ERR_MALFORMED},
	    {"seq huge", "{\"type\":\"msg\",\"seq\":99999999999999999999999}", FW_ERR_MALFORMED},
	    {"seq negative", "{\"type\":\"msg\",\"seq\":-1}", FW_ERR_MALFORMED},
	    {"seq fraction", "{\"type\":\"msg\",\"seq\":1.5}", FW_ERR_MALFORMED},
	    {"seq exponent", "{\"type\":\"msg\",\"seq\":1e3}", FW_ERR_MALFORMED},
	    {"seq leading zero", "{\"type\":\"msg\",\"seq\":01}", FW_ERR_MALFORMED},
	    {"seq string", "{\"type\":\"msg\",\"seq\":\"1\"}", FW_ERR_MALFORMED},
	    {"body number", "{\"type\":\"msg\",\"body\":5}", FW_ERR_MALFORMED},
	    {"msg without body, not deleted",
	     "{\"type\":\"msg\",\"conv\":\"room:x\",\"seq\":1,\"from\":\"a\"}", FW_ERR_MALFORMED},
	    {"edit without seq", "{\"type\":\"edit\",\"conv\":\"room:x\",\"ref\":1}",
	     FW_ERR_MALFORMED},
	    {"duplicate key", "{\"type\":\"msg\",\"type\":\"msg\"}", FW_ERR_MALFORMED},
	    {"dm in wrong order",
	     "{\"type\":\"msg\",\"conv\":\"dm:b:a\",\"seq\":1,\"from\":\"a\",\"body\":\"b\"}",
	     FW_ERR_MALFORMED},
	    {"dm with itself",
	     "{\"type\":\"msg\",\"conv\":\"dm:a:a\",\"seq\":1,\"from\":\"a\",\"body\":\"b\"}",
	     FW_ERR_MALFORMED},
	    {"bad room",
	     "{\"type\":\"msg\",\"conv\":\"room:Bad\",\"seq\":1,\"from\":\"a\",\"body\":\"b\"}",
	     FW_ERR_MALFORMED},
	    {"bad from",
	     "{\"type\":\"msg\",\"conv\":\"room:x\",\"seq\":1,\"from\":\"A\",\"body\":\"b\"}",
	     FW_ERR_MALFORMED},
	    {"version 2", "{\"v\":2,\"type\":\"msg\"}", FW_ERR_PROTOCOL},
	    {"trailing garbage", "{\"type\":\"x\"} x", FW_ERR_MALFORMED},
	    {"two objects", "{\"type\":\"x\"}{}", FW_ERR_MALFORMED},
	    {"unterminated string", "{\"type\":\"ms", FW_ERR_MALFORMED},
	    {"control char", "{\"type\":\"m\x01g\"}", FW_ERR_MALFORMED},
	    {"bad escape", "{\"type\":\"\\q\"}", FW_ERR_MALFORMED},
	    {"short unicode escape", "{\"type\":\"\\u12\"}", FW_ERR_MALFORMED},
	    {"bad hex", "{\"type\":\"\\u12g4\"}", FW_ERR_MALFORMED},
	    {"lone low surrogate", "{\"type\":\"\\udc00\"}", FW_ERR_MALFORMED},
	    {"lone high surrogate", "{\"type\":\"\\ud800x\"}", FW_ERR_MALFORMED},
	    {"high + non-low", "{\"type\":\"\\ud800\\u0041\"}", FW_ERR_MALFORMED},
	    {"missing colon", "{\"type\" \"x\"}", FW_ERR_MALFORMED},
	    {"missing comma", "{\"type\":\"x\" \"a\":1}", FW_ERR_MALFORMED},
	    {"trailing comma", "{\"type\":\"x\",}", FW_ERR_MALFORMED},
	    {"bad literal", "{\"type\":\"x\",\"a\":tru}", FW_ERR_MALFORMED},
	    {"bad number", "{\"type\":\"x\",\"a\":-}", FW_ERR_MALFORMED},
	    {"bad fraction", "{\"type\":\"x\",\"a\":1.}", FW_ERR_MALFORMED},
	    {"bad exponent", "{\"type\":\"x\",\"a\":1e+}", FW_ERR_MALFORMED},
	    {"unclosed array", "{\"type\":\"x\",\"a\":[1,2}", FW_ERR_MALFORMED},
	    {"mismatched close", "{\"type\":\"x\",\"a\":[1}]}", FW_ERR_MALFORMED},
	    {"deep nesting", "{\"type\":\"x\",\"a\":[[[[[[[[[[1]]]]]]]]]]}", FW_ERR_MALFORMED},
	    {"nesting at the limit", "{\"type\":\"x\",\"a\":[[[[[[[[1]]]]]]]]}", 0},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int rc = env_str(cases[i].json);
		if (rc != cases[i].rc)
			fprintf(stderr, "case \"%s\": expected %d, got %d\n", cases[i].what,
			        cases[i].rc, rc);
		CHECK_INT(rc, cases[i].rc);
	}
	/* every truncation of a valid message is refused */
	int refused = 0;
	for (size_t n = 0; n < strlen(MSG); n++)
		refused += env_rc(MSG, n) != 0;
	CHECK_INT(refused, strlen(MSG));
}

/* A big unknown value (more than a device's buffer would ever hold) is
 * skipped without recursion trouble or reading out of bounds. */
static void test_oversized(void)
{
	size_t n = 200000;
	char *b = malloc(n);
	size_t k = (size_t)snprintf(b, n, "{\"type\":\"x\",\"pad\":\"");
	memset(b + k, 'a', n - k - 2);
	b[n - 2] = '"';
	b[n - 1] = '}';
	struct fw_env e;
	CHECK_INT(fw_env_parse_payload(b, n, &e), 0);
	b[n - 1] = ' '; /* now the object never closes */
	CHECK_INT(fw_env_parse_payload(b, n, &e), FW_ERR_MALFORMED);
	free(b);
	/* a long run of opening brackets stops at the depth limit */
	n = 100000;
	b = malloc(n);
	k = (size_t)snprintf(b, n, "{\"type\":\"x\",\"a\":");
	memset(b + k, '[', n - k);
	CHECK_INT(fw_env_parse_payload(b, n, &e), FW_ERR_MALFORMED);
	free(b);
}

static const char REPLY[] =
    "{\"id\":\"h7\",\"result\":{\"messages\":["
    "{\"v\":1,\"type\":\"msg\",\"conv\":\"room:lab\",\"seq\":3,\"from\":\"bob\",\"body\":\"m3\"},"
    "{\"v\":1,\"type\":\"msg\",\"conv\":\"room:lab\",\"seq\":4,\"from\":\"bob\",\"body\":\"m\\n4\"}"
    "],\"more\":false}}";

static void test_reply(void)
{
	struct fw_reply r;
	struct fw_env e;
	char *b = exact(REPLY, strlen(REPLY));
	CHECK_INT(fw_reply_parse(b, strlen(REPLY), &r), 0);
	CHECK_STR(r.id.p, "h7");
	CHECK_INT(r.is_error, 0);
	CHECK_INT(r.has_messages, 1);
	CHECK_INT(fw_env_next(&r, 1, &e), 1);
	CHECK_INT(e.seq, 3);
	CHECK_STR(e.body.p, "m3");
	CHECK_INT(fw_env_next(&r, 0, &e), 1);
	CHECK_INT(e.seq, 4);
	CHECK_STR(e.body.p, "m\n4");
	CHECK_INT(fw_env_next(&r, 0, &e), 0);
	free(b);

	const char *err = "{\"error\":{\"code\":\"forbidden\",\"message\":\"no\"},\"id\":\"h8\"}";
	b = exact(err, strlen(err));
	CHECK_INT(fw_reply_parse(b, strlen(err), &r), 0);
	CHECK_INT(r.is_error, 1);
	CHECK_STR(r.code.p, "forbidden");
	CHECK_STR(r.id.p, "h8");
	free(b);

	static const char *bad[] = {
	    "{\"result\":{}}", /* no id */
	    "{\"id\":\"h1\"}", /* neither result nor error */
	    "{\"id\":\"h1\",\"result\":{},\"error\":{\"code\":\"x\"}}", /* both */
	    "{\"id\":\"h1\",\"error\":{\"message\":\"x\"}}",            /* error without code */
	    "{\"id\":\"h1\",\"result\":{\"messages\":{}}}",             /* messages not a list */
	    "{\"id\":7,\"result\":{}}",                                 /* id not a string */
	    "{\"id\":\"h1\",\"id\":\"h2\",\"result\":{}}",              /* two ids */
	    "{\"id\":\"h1\",\"result\":{\"messages\":[1,2]}",           /* unclosed */
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		b = exact(bad[i], strlen(bad[i]));
		int rc = fw_reply_parse(b, strlen(bad[i]), &r);
		if (rc == 0)
			fprintf(stderr, "accepted: %s\n", bad[i]);
		CHECK(rc < 0);
		free(b);
	}
	/* a broken message inside a well-formed list is refused when reached */
	const char *inner =
	    "{\"id\":\"h1\",\"result\":{\"messages\":[{\"type\":\"msg\",\"seq\":0}]}}";
	b = exact(inner, strlen(inner));
	CHECK_INT(fw_reply_parse(b, strlen(inner), &r), 0);
	CHECK(fw_env_next(&r, 1, &e) < 0);
	free(b);

	int refused = 0;
	for (size_t n = 0; n < strlen(REPLY); n++) {
		b = exact(REPLY, n);
		refused += fw_reply_parse(b, n, &r) != 0;
		free(b);
	}
	CHECK_INT(refused, strlen(REPLY));
}

static void test_names(void)
{
	CHECK(fw_conv_valid("room:a", 6));
	CHECK(!fw_conv_valid("room:", 5));
	CHECK(fw_conv_valid("dm:a:b", 6));
	CHECK(fw_conv_valid("dm:ab:abc", 9));
	CHECK(!fw_conv_valid("dm:abc:ab", 9));
	CHECK(!fw_conv_valid("dm:a", 4));
	CHECK(!fw_conv_valid("dm::b", 5));
	CHECK(!fw_conv_valid("chan:x", 6));
	CHECK(fw_user_valid("a.b-c_d", 7));
	CHECK(!fw_user_valid(".a", 2));
	CHECK(!fw_room_valid("a.b", 3));
	CHECK(fw_user_valid("abcdefghijabcdefghijabcdefghijab", 32));
	CHECK(!fw_user_valid("abcdefghijabcdefghijabcdefghijabc", 33));
}

/* 1.1 envelopes: edit and delete events, a deleted message in history. */
static void test_edit_delete(void)
{
	struct fw_env e;
	static const struct {
		const char *json;
		int rc, kind, deleted;
	} cases[] = {
	    {"{\"type\":\"edit\",\"conv\":\"room:x\",\"seq\":3,\"ref\":1,\"body\":\"b\"}", 0,
	     FW_ENV_EDIT, 0},
	    {"{\"type\":\"delete\",\"conv\":\"dm:a:b\",\"seq\":4,\"ref\":2}", 0, FW_ENV_EDIT, 0},
	    {"{\"type\":\"msg\",\"conv\":\"room:x\",\"seq\":1,\"from\":\"a\",\"deleted\":true}", 0,
	     FW_ENV_MSG, 1},
	    {"{\"type\":\"msg\",\"conv\":\"room:x\",\"seq\":1,\"from\":\"a\",\"body\":\"b\","
	     "\"edited\":9}",
	     0, FW_ENV_MSG, 0},
	    /* only a true "deleted" excuses the body */
	    {"{\"type\":\"msg\",\"conv\":\"room:x\",\"seq\":1,\"from\":\"a\",\"deleted\":false}",
	     FW_ERR_MALFORMED, 0, 0},
	    {"{\"type\":\"msg\",\"conv\":\"room:x\",\"seq\":1,\"from\":\"a\",\"deleted\":\"true\"}",
	     FW_ERR_MALFORMED, 0, 0},
	    {"{\"type\":\"msg\",\"conv\":\"room:x\",\"seq\":1,\"from\":\"a\",\"deleted\":true,"
	     "\"deleted\":true}",
	     FW_ERR_MALFORMED, 0, 0},
	    {"{\"type\":\"msg\",\"conv\":\"room:x\",\"seq\":1,\"from\":\"a\",\"deleted\":tru}",
	     FW_ERR_MALFORMED, 0, 0},
	    {"{\"type\":\"edit\",\"seq\":3}", FW_ERR_MALFORMED, 0, 0},
	    {"{\"type\":\"delete\",\"conv\":\"room:x\"}", FW_ERR_MALFORMED, 0, 0},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *b = exact(cases[i].json, strlen(cases[i].json));
		int rc = fw_env_parse_payload(b, strlen(cases[i].json), &e);
		CHECK_INT(rc, cases[i].rc);
		if (rc == 0) {
			CHECK_INT(e.kind, cases[i].kind);
			CHECK_INT(e.deleted, cases[i].deleted);
		}
		free(b);
	}
}

int main(void)
{
	test_message();
	test_unescape();
	test_notice_and_typing();
	test_refusals();
	test_oversized();
	test_reply();
	test_names();
	test_edit_delete();
	return check_report();
}
