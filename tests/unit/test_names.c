/* Unit tests: user, room and conversation ids; UTF-8 validation. */
#include "chat/names.h"
#include "check.h"

#define S(x) x, sizeof(x) - 1

int main(void)
{
	struct conv_id c;
	char buf[NAME_CONV_MAX + 1];

	CHECK(name_user_valid(S("alice")));
	CHECK(name_user_valid(S("a.b_c-9")));
	CHECK(name_user_valid(S("0")));
	CHECK(name_user_valid(S("abcdefghijklmnopqrstuvwxyz012345"))); /* 32 */
	CHECK(!name_user_valid(S("abcdefghijklmnopqrstuvwxyz0123456"))); /* 33 */
	CHECK(!name_user_valid(S("")));
	CHECK(!name_user_valid(S("Alice")));
	CHECK(!name_user_valid(S("_alice")));
	CHECK(!name_user_valid(S(".alice")));
	CHECK(!name_user_valid(S("al/ice")));
	CHECK(!name_user_valid(S("al+ce")));
	CHECK(!name_user_valid(S("al#ce")));
	CHECK(!name_user_valid(S("al:ce")));
	CHECK(!name_user_valid("al\0ce", 5));
	CHECK(!name_user_valid(NULL, 0));

	CHECK(name_room_valid(S("general")));
	CHECK(name_room_valid(S("r_1-x")));
	CHECK(!name_room_valid(S("a.b")));
	CHECK(!name_room_valid(S("-x")));
	char room64[65], room65[66];
	memset(room64, 'r', 64);
	memset(room65, 'r', 65);
	CHECK(name_room_valid(room64, 64));
	CHECK(!name_room_valid(room65, 65));

	CHECK_INT(conv_parse(S("room:general"), &c), 0);
	CHECK_INT(c.kind, CONV_ROOM);
	CHECK_STR(c.a, "general");
	CHECK_INT(conv_parse(S("dm:alice:bob"), &c), 0);
	CHECK_INT(c.kind, CONV_DM);
	CHECK_STR(c.a, "alice");
	CHECK_STR(c.b, "bob");
	CHECK_INT(conv_parse(S("dm:bob:alice"), &c), -1);   /* not ordered */
	CHECK_INT(conv_parse(S("dm:bob:bob"), &c), -1);     /* same user */
	CHECK_INT(conv_parse(S("dm:ab:abc"), &c), 0);       /* prefix orders first */
	CHECK_INT(conv_parse(S("dm:abc:ab"), &c), -1);
	CHECK_INT(conv_parse(S("dm:alice"), &c), -1);
	CHECK_INT(conv_parse(S("dm:alice:"), &c), -1);
	CHECK_INT(conv_parse(S("dm:a:b:c"), &c), -1);
	CHECK_INT(conv_parse(S("room:"), &c), -1);
	CHECK_INT(conv_parse(S("room:Gen"), &c), -1);
	CHECK_INT(conv_parse(S("chan:general"), &c), -1);
	CHECK_INT(conv_parse(S(""), &c), -1);

	CHECK_INT(conv_dm("zed", "amy", &c), 0);
	CHECK_INT(conv_format(&c, buf), 10);
	CHECK_STR(buf, "dm:amy:zed");
	CHECK_INT(conv_dm("amy", "amy", &c), -1);
	CHECK_INT(conv_dm("amy", "Bad", &c), -1);
	CHECK_INT(conv_parse(S("room:lobby"), &c), 0);
	conv_format(&c, buf);
	CHECK_STR(buf, "room:lobby");

	/* the longest ids fit NAME_CONV_MAX: a 64-byte room, two 32-byte users */
	char longest[NAME_CONV_MAX + 1];
	char room[NAME_ROOM_MAX + 1], u1[NAME_USER_MAX + 1], u2[NAME_USER_MAX + 1];
	memset(room, 'r', NAME_ROOM_MAX);
	room[NAME_ROOM_MAX] = '\0';
	memset(u1, 'a', NAME_USER_MAX);
	u1[NAME_USER_MAX] = '\0';
	memset(u2, 'b', NAME_USER_MAX);
	u2[NAME_USER_MAX] = '\0';
	snprintf(longest, sizeof(longest), "room:%s", room);
	CHECK_INT(conv_parse(longest, strlen(longest), &c), 0);
	CHECK_INT(conv_format(&c, buf), NAME_CONV_MAX);
	CHECK_STR(buf, longest);
	CHECK_INT(conv_dm(u2, u1, &c), 0);
	CHECK_INT(conv_format(&c, buf), 3 + 2 * NAME_USER_MAX + 1);

	CHECK(utf8_valid((const unsigned char *)S("hello")));
	CHECK(utf8_valid((const unsigned char *)S("h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80")));
	CHECK(!utf8_valid((const unsigned char *)S("\xc3")));             /* truncated */
	CHECK(!utf8_valid((const unsigned char *)S("\xc0\xaf")));         /* overlong */
	CHECK(!utf8_valid((const unsigned char *)S("\xe0\x80\xaf")));     /* overlong */
	CHECK(!utf8_valid((const unsigned char *)S("\xed\xa0\x80")));     /* surrogate */
	CHECK(!utf8_valid((const unsigned char *)S("\xf4\x90\x80\x80"))); /* > U+10FFFF */
	CHECK(!utf8_valid((const unsigned char *)S("\xff")));
	CHECK(!utf8_valid((const unsigned char *)S("a\x80")));
	CHECK(utf8_valid((const unsigned char *)"", 0));
	return check_report();
}
