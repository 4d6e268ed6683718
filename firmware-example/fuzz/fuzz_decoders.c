/*
 * libFuzzer target for everything the firmware client parses from the
 * network: the MQTT fixed header and packet decoder, and the JSON
 * envelope, notice and reply scanners (with the history list walk). The
 * input is decoded as a packet; a PUBLISH payload then goes through the
 * envelope and reply parsers, and so does the raw input. Each parse works
 * on a heap copy of exactly the input's size, so ASan flags any read or
 * write outside it; returned pointers are checked to stay inside too.
 *
 * Build and run: tools/fuzz.sh (from `make test`, 60 s by default).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fw_env.h"
#include "fw_mqtt.h"

#define INSIDE(ptr, len, base, n)                                                                  \
	((const char *)(ptr) >= (const char *)(base) &&                                            \
	 (const char *)(ptr) + (len) <= (const char *)(base) + (n))

static void must(int cond)
{
	if (!cond)
		abort();
}

static void check_str(const struct fw_str *s, const char *base, size_t n)
{
	if (!s->p)
		return;
	/* the text and its NUL both lie inside the buffer */
	must(INSIDE(s->p, s->len + 1, base, n));
	must(s->p[s->len] == '\0');
}

static void check_env(const struct fw_env *e, const char *b, size_t n)
{
	const struct fw_str *all[] = {&e->type, &e->conv, &e->id,   &e->from,    &e->to,
	                              &e->body, &e->cid,  &e->code, &e->message, &e->topic};
	for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
		check_str(all[i], b, n);
	if (e->kind == FW_ENV_MSG) {
		must(e->seq >= 1);
		must(fw_conv_valid(e->conv.p, e->conv.len));
	}
}

static void json(const uint8_t *data, size_t n)
{
	char *b = malloc(n ? n : 1);
	struct fw_env e;
	struct fw_reply r;
	memcpy(b, data, n);
	if (fw_env_parse_payload(b, n, &e) == 0)
		check_env(&e, b, n);
	memcpy(b, data, n);
	if (fw_reply_parse(b, n, &r) == 0) {
		check_str(&r.id, b, n);
		check_str(&r.code, b, n);
		int more, k = 0;
		for (int first = 1; (more = fw_env_next(&r, first, &e)) == 1; first = 0, k++)
			check_env(&e, b, n);
		must(more <= 0);
	}
	free(b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *pkt = malloc(size ? size : 1);
	struct fw_mqtt_pkt p;
	uint8_t first;
	uint32_t rl;
	size_t hl;
	memcpy(pkt, data, size);
	if (fw_mqtt_header(pkt, size, &first, &rl, &hl) == 0)
		must(hl >= 2 && hl <= 5 && hl <= size);
	if (fw_mqtt_decode(pkt, size, &p) == 0) {
		must(hl + rl == size);
		if (p.type == FW_MQTT_PUBLISH) {
			must(INSIDE(p.topic, p.topic_len, pkt, size));
			must(INSIDE(p.payload, p.payload_len, pkt, size));
			json(p.payload, p.payload_len);
		} else if (p.type == FW_MQTT_SUBACK) {
			must(INSIDE(p.codes, p.ncodes, pkt, size));
		}
	}
	free(pkt);
	json(data, size);
	return 0;
}
