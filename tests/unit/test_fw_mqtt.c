/*
 * Unit tests of the firmware client's MQTT 3.1.1 codec
 * (firmware-example/src/fw_mqtt.c): exact bytes of what it encodes, the
 * buffer-full error at every too-small size, and the decoder refusing
 * truncated, oversized and malformed packets. Inputs sit in heap blocks of
 * their exact size, so under ASan any read past the end fails the test.
 */
#include <stdlib.h>

#include "check.h"
#include "fw_mqtt.h"

static uint8_t *exact(const void *p, size_t n)
{
	uint8_t *b = malloc(n ? n : 1);
	memcpy(b, p, n);
	return b;
}

static int decode_exact(const void *p, size_t n, struct fw_mqtt_pkt *out)
{
	uint8_t *b = exact(p, n);
	int rc = fw_mqtt_decode(b, n, out);
	free(b);
	return rc;
}

static void test_connect_bytes(void)
{
	uint8_t buf[128];
	const uint8_t *pkt;
	size_t len;
	static const uint8_t want[] = {0x10, 27,  0,   4,   'M', 'Q', 'T', 'T', 4,   0xc2,
	                               0,    30,  0,   5,   'a', 'l', 'i', ':', 'x', 0,
	                               3,    'a', 'l', 'i', 0,   3,   't', 'o', 'k'};
	CHECK_INT(fw_mqtt_connect(buf, sizeof(buf), "ali:x", "ali", "tok", 30, &pkt, &len), 0);
	CHECK_INT(len, sizeof(want));
	CHECK(len == sizeof(want) && memcmp(pkt, want, len) == 0);
	/* every smaller buffer: buffer full, and nothing written past it */
	for (size_t cap = 0; cap < sizeof(want) + FW_MQTT_HEADER_MAX - 2; cap++) {
		uint8_t *small = malloc(cap ? cap : 1);
		int rc = fw_mqtt_connect(small, cap, "ali:x", "ali", "tok", 30, &pkt, &len);
		if (rc != FW_ERR_FULL)
			fprintf(stderr, "cap %zu: rc %d\n", cap, rc);
		CHECK_INT(rc, FW_ERR_FULL);
		free(small);
	}
}

static void test_subscribe_publish_bytes(void)
{
	uint8_t buf[128];
	const uint8_t *pkt;
	size_t len;
	const char *f1[] = {"chat/user/", "ali", "/#", NULL};
	const char *f2[] = {"chat/room/", "lab", NULL};
	const char *const *filters[] = {f1, f2};
	static const uint8_t sub[] = {0x82, 36,  0x12, 0x34, 0,   15,  'c', 'h', 'a', 't',
	                              '/',  'u', 's',  'e',  'r', '/', 'a', 'l', 'i', '/',
	                              '#',  0,   0,    13,   'c', 'h', 'a', 't', '/', 'r',
	                              'o',  'o', 'm',  '/',  'l', 'a', 'b', 0};
	CHECK_INT(fw_mqtt_subscribe(buf, sizeof(buf), 0x1234, filters, 2, 0, &pkt, &len), 0);
	CHECK(len == sizeof(sub) && memcmp(pkt, sub, len) == 0);
	CHECK_INT(fw_mqtt_subscribe(buf, sizeof(buf), 0, filters, 2, 0, &pkt, &len),
	          FW_ERR_INVALID);

	struct fw_wr w;
	const char *topic[] = {"a/", "b", NULL};
	fw_mqtt_publish_begin(&w, buf, sizeof(buf), topic, 1, 7);
	fw_wr_cstr(&w, "hi");
	CHECK_INT(fw_mqtt_end(&w, fw_mqtt_publish_flags(1), &pkt, &len), 0);
	static const uint8_t pub[] = {0x32, 9, 0, 3, 'a', '/', 'b', 0, 7, 'h', 'i'};
	CHECK(len == sizeof(pub) && memcmp(pkt, pub, len) == 0);

	/* what the client sends decodes back to the same thing */
	struct fw_mqtt_pkt p;
	uint8_t copy[sizeof(pub)];
	memcpy(copy, pub, sizeof(pub));
	CHECK_INT(fw_mqtt_decode(copy, sizeof(copy), &p), 0);
	CHECK_INT(p.qos, 1);
	CHECK_INT(p.pid, 7);
	CHECK(p.topic_len == 3 && memcmp(p.topic, "a/b", 3) == 0);
	CHECK(p.payload_len == 2 && memcmp(p.payload, "hi", 2) == 0);

	uint8_t small[4];
	CHECK_INT(fw_mqtt_puback(small, 0x0102), 4);
	CHECK(small[0] == 0x40 && small[1] == 2 && small[2] == 1 && small[3] == 2);
	CHECK_INT(fw_mqtt_pingreq(small), 2);
	CHECK(small[0] == 0xc0 && small[1] == 0);
	CHECK_INT(fw_mqtt_disconnect(small), 2);
	CHECK(small[0] == 0xe0 && small[1] == 0);
}

static void test_remaining_length(void)
{
	static const struct {
		uint32_t n;
		size_t bytes;
	} cases[] = {{0, 1},     {127, 1},     {128, 2},    {16383, 2},
	             {16384, 3}, {2097151, 3}, {2097152, 4}};
	static uint8_t buf[2097152 + 16];
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct fw_wr w;
		const uint8_t *pkt;
		size_t len;
		fw_mqtt_begin(&w, buf, sizeof(buf));
		w.len += cases[i].n;
		CHECK_INT(fw_mqtt_end(&w, 0x30, &pkt, &len), 0);
		CHECK_INT(len, 1 + cases[i].bytes + cases[i].n);
		uint8_t first;
		uint32_t rl;
		size_t hl;
		CHECK_INT(fw_mqtt_header(pkt, len, &first, &rl, &hl), 0);
		CHECK_INT(rl, cases[i].n);
		CHECK_INT(hl, 1 + cases[i].bytes);
	}
	uint8_t first;
	uint32_t rl;
	size_t hl;
	static const uint8_t five[] = {0x30, 0xff, 0xff, 0xff, 0xff, 0x01};
	CHECK_INT(fw_mqtt_header(five, sizeof(five), &first, &rl, &hl), FW_ERR_MALFORMED);
	static const uint8_t max[] = {0x30, 0xff, 0xff, 0xff, 0x7f};
	CHECK_INT(fw_mqtt_header(max, sizeof(max), &first, &rl, &hl), 0);
	CHECK_INT(rl, FW_MQTT_MAX_REMAINING);
	static const uint8_t longer[] = {0x30, 0x80, 0x00};
	CHECK_INT(fw_mqtt_header(longer, sizeof(longer), &first, &rl, &hl), FW_ERR_MALFORMED);
	for (size_t n = 0; n < sizeof(max); n++) {
		uint8_t *b = exact(max, n);
		CHECK_INT(fw_mqtt_header(b, n, &first, &rl, &hl), FW_ERR_SHORT);
		free(b);
	}
}

static void test_decode_refusals(void)
{
	struct fw_mqtt_pkt p;
	static const struct {
		const char *what;
		uint8_t bytes[12];
		size_t n;
		int rc;
	} cases[] = {
	    {"connack ok", {0x20, 2, 0, 0}, 4, 0},
	    {"connack refused 5", {0x20, 2, 0, 5}, 4, 0},
	    {"connack flags", {0x21, 2, 0, 0}, 4, FW_ERR_MALFORMED},
	    {"connack long", {0x20, 3, 0, 0, 0}, 5, FW_ERR_MALFORMED},
	    {"connack reserved bits", {0x20, 2, 2, 0}, 4, FW_ERR_MALFORMED},
	    {"connack refused with session", {0x20, 2, 1, 5}, 4, FW_ERR_MALFORMED},
	    {"puback", {0x40, 2, 0, 9}, 4, 0},
	    {"puback pid 0", {0x40, 2, 0, 0}, 4, FW_ERR_MALFORMED},
	    {"puback short", {0x40, 1, 0}, 3, FW_ERR_MALFORMED},
	    {"suback", {0x90, 4, 0, 1, 0, 0x80}, 6, 0},
	    {"suback bad code", {0x90, 3, 0, 1, 3}, 5, FW_ERR_MALFORMED},
	    {"suback no codes", {0x90, 2, 0, 1}, 4, FW_ERR_MALFORMED},
	    {"pingresp", {0xd0, 0}, 2, 0},
	    {"pingresp with body", {0xd0, 1, 0}, 3, FW_ERR_MALFORMED},
	    {"publish qos0", {0x30, 4, 0, 1, 't', 'x'}, 6, 0},
	    {"publish empty payload", {0x30, 3, 0, 1, 't'}, 5, 0},
	    {"publish topic past end", {0x30, 4, 0, 9, 't', 'x'}, 6, FW_ERR_MALFORMED},
	    {"publish empty topic", {0x30, 2, 0, 0}, 4, FW_ERR_MALFORMED},
	    {"publish no topic length", {0x30, 1, 0}, 3, FW_ERR_MALFORMED},
	    {"publish wildcard topic", {0x30, 4, 0, 1, '#', 'x'}, 6, FW_ERR_MALFORMED},
	    {"publish nul in topic", {0x30, 4, 0, 1, 0, 'x'}, 6, FW_ERR_MALFORMED},
	    {"publish qos3", {0x36, 4, 0, 1, 't', 'x'}, 6, FW_ERR_MALFORMED},
	    {"publish dup at qos0", {0x38, 4, 0, 1, 't', 'x'}, 6, FW_ERR_MALFORMED},
	    {"publish qos1 pid 0", {0x32, 5, 0, 1, 't', 0, 0}, 7, FW_ERR_MALFORMED},
	    {"publish qos1 no pid", {0x32, 4, 0, 1, 't', 0}, 6, FW_ERR_MALFORMED},
	    {"declared longer than data", {0x30, 9, 0, 1, 't'}, 5, FW_ERR_SHORT},
	    {"data longer than declared", {0xd0, 0, 0}, 3, FW_ERR_MALFORMED},
	    {"connect from a broker", {0x10, 0}, 2, FW_ERR_PROTOCOL},
	    {"pingreq from a broker", {0xc0, 0}, 2, FW_ERR_PROTOCOL},
	    {"reserved type 0", {0x00, 0}, 2, FW_ERR_MALFORMED},
	    {"reserved type 15", {0xf0, 0}, 2, FW_ERR_MALFORMED},
	    {"empty", {0}, 0, FW_ERR_SHORT},
	    {"one byte", {0x30}, 1, FW_ERR_SHORT},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int rc = decode_exact(cases[i].bytes, cases[i].n, &p);
		if (rc != cases[i].rc)
			fprintf(stderr, "case \"%s\": expected %d, got %d\n", cases[i].what,
			        cases[i].rc, rc);
		CHECK_INT(rc, cases[i].rc);
	}
	static const uint8_t sub[] = {0x90, 4, 0, 1, 0, 0x80};
	CHECK_INT(decode_exact(sub, sizeof(sub), &p), 0);
	CHECK_INT(p.ncodes, 2);
}

/* Every proper prefix of a valid packet is refused, never decoded. */
static void test_truncation_sweep(void)
{
	static const uint8_t pub[] = {0x32, 18,  0,   10,  'c', 'h', 'a', 't', '/', 'r',
	                              'o',  'o', 'm', '/', 0,   5,   '{', '}', ' ', ' '};
	struct fw_mqtt_pkt p;
	CHECK_INT(decode_exact(pub, sizeof(pub), &p), 0);
	CHECK_INT(p.pid, 5);
	CHECK_INT(p.payload_len, 4);
	int refused = 0;
	for (size_t n = 0; n < sizeof(pub); n++)
		refused += decode_exact(pub, n, &p) != 0;
	CHECK_INT(refused, sizeof(pub));
}

int main(void)
{
	test_connect_bytes();
	test_subscribe_publish_bytes();
	test_remaining_length();
	test_decode_refusals();
	test_truncation_sweep();
	return check_report();
}
