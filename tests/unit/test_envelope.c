/* Unit tests: parsing client publishes and encoding delivered messages. */
#include <stdlib.h>

#include <cjson/cJSON.h>

#include "chat/envelope.h"
#include "check.h"

#define S(x) x, sizeof(x) - 1

static int parse(const char *p, size_t n, struct chat_input *in)
{
	return envelope_parse_input(p, n, 4096, in);
}

int main(void)
{
	struct chat_input in;

	CHECK_INT(parse(S("hello"), &in), ENVELOPE_OK);
	CHECK_STR(in.body, "hello");
	CHECK_INT(in.body_len, 5);
	CHECK_STR(in.cid, "");
	envelope_input_free(&in);

	CHECK_INT(parse(S("{\"body\":\"hi \\u00e9\",\"cid\":\"c-17\"}"), &in), ENVELOPE_OK);
	CHECK_STR(in.body, "hi \xc3\xa9");
	CHECK_STR(in.cid, "c-17");
	envelope_input_free(&in);

	CHECK_INT(parse(S(""), &in), ENVELOPE_E_EMPTY);
	CHECK_INT(parse(S("{\"body\":\"\"}"), &in), ENVELOPE_E_EMPTY);
	CHECK_INT(parse(S("\xff\xfe"), &in), ENVELOPE_E_UTF8);
	CHECK_INT(parse("a\0b", 3, &in), ENVELOPE_E_UTF8);
	CHECK_INT(parse(S("{\"body\":\"a\\u0000b\"}"), &in), ENVELOPE_E_UTF8);
	CHECK_INT(parse(S("{\"body\":\"\xc3\"}"), &in), ENVELOPE_E_UTF8);
	/* an escaped backslash followed by "u0000" is text, not a NUL */
	CHECK_INT(parse(S("{\"body\":\"C:\\\\u0000\"}"), &in), ENVELOPE_OK);
	CHECK_STR(in.body, "C:\\u0000");
	envelope_input_free(&in);
	CHECK_INT(parse(S("{\"body\":\"C:\\\\\\u0000\"}"), &in), ENVELOPE_E_UTF8);
	CHECK_INT(parse(S("{\"body\":\"x\",\"cid\":\"a\\u0000\"}"), &in), ENVELOPE_E_UTF8);
	CHECK(!envelope_json_has_nul(S("{\"a\":\"\\\\u0000\"}")));
	CHECK(!envelope_json_has_nul(S("{\"a\":\"\\\"u0000\"}")));
	CHECK(!envelope_json_has_nul(S("{\"a\":\"\\u0001\"}")));
	CHECK(envelope_json_has_nul(S("{\"a\":\"\\u0000\"}")));
	CHECK(envelope_json_has_nul(S("{\"room\":\"general\\u0000x\"}")));
	CHECK(envelope_json_has_nul("{\"a\":\"x\0\"}", 8));
	CHECK(!envelope_json_has_nul(S("{\"a\":\"\\u000\"}")));

	CHECK_INT(parse(S("{\"body\":5}"), &in), ENVELOPE_E_TYPES);
	CHECK_INT(parse(S("{\"body\":\"x\",\"cid\":7}"), &in), ENVELOPE_E_TYPES);
	CHECK_INT(parse(S("{\"cid\":\"x\"}"), &in), ENVELOPE_E_TYPES);
	CHECK_INT(parse(S("{\"body\":\"x\""), &in), ENVELOPE_E_JSON);
	CHECK_INT(parse(S("{not json"), &in), ENVELOPE_E_JSON);
	CHECK_INT(parse(S("[\"body\"]"), &in), ENVELOPE_OK); /* plain text */
	envelope_input_free(&in);

	char cid65[100];
	snprintf(cid65, sizeof(cid65), "{\"body\":\"x\",\"cid\":\"%065d\"}", 0);
	CHECK_INT(parse(cid65, strlen(cid65), &in), ENVELOPE_E_TYPES);

	char *big = malloc(4098);
	memset(big, 'a', 4097);
	CHECK_INT(envelope_parse_input(big, 4096, 4096, &in), ENVELOPE_OK);
	envelope_input_free(&in);
	CHECK_INT(envelope_parse_input(big, 4097, 4096, &in), ENVELOPE_E_TOO_LARGE);
	free(big);

	struct chat_msg m = {"room:general", 42, "id-1", "alice", "general",
	                     1732300000123LL, "say \"hi\"\n", "c-17"};
	char *json = envelope_encode(&m);
	CHECK(json != NULL);
	cJSON *o = cJSON_Parse(json);
	CHECK(cJSON_IsObject(o));
	CHECK_INT(cJSON_GetObjectItem(o, "v")->valueint, 1);
	CHECK_STR(cJSON_GetObjectItem(o, "type")->valuestring, "msg");
	CHECK_STR(cJSON_GetObjectItem(o, "conv")->valuestring, "room:general");
	CHECK_INT(cJSON_GetObjectItem(o, "seq")->valuedouble, 42);
	CHECK_STR(cJSON_GetObjectItem(o, "from")->valuestring, "alice");
	CHECK_STR(cJSON_GetObjectItem(o, "to")->valuestring, "general");
	CHECK(cJSON_GetObjectItem(o, "ts")->valuedouble == 1732300000123.0);
	CHECK_STR(cJSON_GetObjectItem(o, "body")->valuestring, "say \"hi\"\n");
	CHECK_STR(cJSON_GetObjectItem(o, "cid")->valuestring, "c-17");
	cJSON_Delete(o);
	free(json);

	m.cid = NULL;
	json = envelope_encode(&m);
	o = cJSON_Parse(json);
	CHECK(cJSON_GetObjectItem(o, "cid") == NULL);
	cJSON_Delete(o);
	free(json);
	return check_report();
}
