/*
 * MQTT 3.1.1 encoder and decoder for the firmware client (see fw_mqtt.h).
 * Pure functions over caller buffers: no I/O, no heap, no static state.
 */
#include <string.h>

#include "fw_mqtt.h"

void fw_wr_bytes(struct fw_wr *w, const void *p, size_t n)
{
	if (w->overflow || n > w->cap - w->len) {
		w->overflow = 1;
		return;
	}
	memcpy(w->buf + w->len, p, n);
	w->len += n;
}

void fw_wr_u8(struct fw_wr *w, uint8_t v)
{
	fw_wr_bytes(w, &v, 1);
}

void fw_wr_u16(struct fw_wr *w, uint16_t v)
{
	uint8_t b[2] = {(uint8_t)(v >> 8), (uint8_t)v};
	fw_wr_bytes(w, b, 2);
}

void fw_wr_cstr(struct fw_wr *w, const char *s)
{
	fw_wr_bytes(w, s, strlen(s));
}

void fw_wr_dec(struct fw_wr *w, uint32_t v)
{
	char d[10];
	size_t i = sizeof(d);
	do {
		d[--i] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	fw_wr_bytes(w, d + i, sizeof(d) - i);
}

void fw_wr_json_esc(struct fw_wr *w, const char *s, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		uint8_t c = (uint8_t)s[i];
		if (c == '"' || c == '\\') {
			uint8_t e[2] = {'\\', c};
			fw_wr_bytes(w, e, 2);
		} else if (c < 0x20) {
			uint8_t e[6] = {
			    '\\', 'u', '0', '0', (uint8_t)hex[c >> 4], (uint8_t)hex[c & 15]};
			fw_wr_bytes(w, e, 6);
		} else {
			fw_wr_u8(w, c);
		}
	}
}

void fw_mqtt_begin(struct fw_wr *w, uint8_t *buf, size_t cap)
{
	w->buf = buf;
	w->cap = cap;
	w->len = 0;
	w->overflow = cap < FW_MQTT_HEADER_MAX;
	if (!w->overflow)
		w->len = FW_MQTT_HEADER_MAX;
}

int fw_mqtt_end(struct fw_wr *w, uint8_t type_flags, const uint8_t **pkt, size_t *len)
{
	if (w->overflow)
		return FW_ERR_FULL;
	uint32_t rl = (uint32_t)(w->len - FW_MQTT_HEADER_MAX);
	if (rl > FW_MQTT_MAX_REMAINING)
		return FW_ERR_FULL;
	uint8_t enc[4];
	size_t n = 0;
	do {
		uint8_t b = rl % 128;
		rl /= 128;
		enc[n++] = rl ? (uint8_t)(b | 0x80) : b;
	} while (rl);
	size_t start = FW_MQTT_HEADER_MAX - 1 - n;
	w->buf[start] = type_flags;
	memcpy(w->buf + start + 1, enc, n);
	*pkt = w->buf + start;
	*len = w->len - start;
	return FW_OK;
}

/* A length-prefixed string (MQTT "UTF-8 encoded string"). */
static void wr_str(struct fw_wr *w, const char *s)
{
	size_t n = strlen(s);
	if (n > 0xffff) {
		w->overflow = 1;
		return;
	}
	fw_wr_u16(w, (uint16_t)n);
	fw_wr_bytes(w, s, n);
}

/* A length-prefixed string made of NULL-terminated pieces. */
static void wr_pieces(struct fw_wr *w, const char *const *pieces)
{
	size_t n = 0;
	for (size_t i = 0; pieces[i]; i++)
		n += strlen(pieces[i]);
	if (n > 0xffff) {
		w->overflow = 1;
		return;
	}
	fw_wr_u16(w, (uint16_t)n);
	for (size_t i = 0; pieces[i]; i++)
		fw_wr_cstr(w, pieces[i]);
}

int fw_mqtt_connect(uint8_t *buf, size_t cap, const char *client_id, const char *user,
                    const char *password, uint16_t keepalive_s, const uint8_t **pkt, size_t *len)
{
	static const uint8_t proto[] = {0, 4, 'M', 'Q', 'T', 'T', 4};
	struct fw_wr w;
	fw_mqtt_begin(&w, buf, cap);
	fw_wr_bytes(&w, proto, sizeof(proto));
	/* user name, password, clean session */
	fw_wr_u8(&w, 0x80 | 0x40 | 0x02);
	fw_wr_u16(&w, keepalive_s);
	wr_str(&w, client_id);
	wr_str(&w, user);
	wr_str(&w, password);
	return fw_mqtt_end(&w, FW_MQTT_CONNECT << 4, pkt, len);
}

int fw_mqtt_subscribe(uint8_t *buf, size_t cap, uint16_t pid, const char *const *const *filters,
                      size_t n, uint8_t qos, const uint8_t **pkt, size_t *len)
{
	struct fw_wr w;
	if (pid == 0 || n == 0 || qos > 1)
		return FW_ERR_INVALID;
	fw_mqtt_begin(&w, buf, cap);
	fw_wr_u16(&w, pid);
	for (size_t i = 0; i < n; i++) {
		wr_pieces(&w, filters[i]);
		fw_wr_u8(&w, qos);
	}
	/* SUBSCRIBE has the reserved flags 0010 */
	return fw_mqtt_end(&w, FW_MQTT_SUBSCRIBE << 4 | 0x02, pkt, len);
}

void fw_mqtt_publish_begin(struct fw_wr *w, uint8_t *buf, size_t cap, const char *const *topic,
                           uint8_t qos, uint16_t pid)
{
	fw_mqtt_begin(w, buf, cap);
	wr_pieces(w, topic);
	if (qos)
		fw_wr_u16(w, pid);
}

uint8_t fw_mqtt_publish_flags(uint8_t qos)
{
	return (uint8_t)(FW_MQTT_PUBLISH << 4 | (qos & 3) << 1);
}

size_t fw_mqtt_puback(uint8_t out[4], uint16_t pid)
{
	out[0] = FW_MQTT_PUBACK << 4;
	out[1] = 2;
	out[2] = (uint8_t)(pid >> 8);
	out[3] = (uint8_t)pid;
	return 4;
}

size_t fw_mqtt_pingreq(uint8_t out[2])
{
	out[0] = FW_MQTT_PINGREQ << 4;
	out[1] = 0;
	return 2;
}

size_t fw_mqtt_disconnect(uint8_t out[2])
{
	out[0] = FW_MQTT_DISCONNECT << 4;
	out[1] = 0;
	return 2;
}

int fw_mqtt_header(const uint8_t *p, size_t n, uint8_t *first, uint32_t *remaining,
                   size_t *header_len)
{
	uint32_t value = 0;
	if (n < 2)
		return FW_ERR_SHORT;
	for (size_t i = 1; i <= 4; i++) {
		if (i >= n)
			return FW_ERR_SHORT;
		uint8_t b = p[i];
		value |= (uint32_t)(b & 0x7f) << (7 * (i - 1));
		if (!(b & 0x80)) {
			/* a trailing zero byte means a longer form than needed */
			if (b == 0 && i > 1)
				return FW_ERR_MALFORMED;
			*first = p[0];
			*remaining = value;
			*header_len = i + 1;
			return FW_OK;
		}
	}
	return FW_ERR_MALFORMED;
}

static uint16_t get_u16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

/* PUBLISH body: topic, packet id for QoS 1 and 2, payload. */
static int decode_publish(uint8_t *b, size_t n, struct fw_mqtt_pkt *out)
{
	if (out->qos == 3 || (out->qos == 0 && out->dup))
		return FW_ERR_MALFORMED;
	if (n < 2)
		return FW_ERR_MALFORMED;
	size_t tl = get_u16(b);
	size_t at = 2 + tl;
	if (tl == 0 || tl > n - 2)
		return FW_ERR_MALFORMED;
	for (size_t i = 0; i < tl; i++) {
		uint8_t c = b[2 + i];
		if (c == 0 || c == '+' || c == '#')
			return FW_ERR_MALFORMED;
	}
	out->topic = (const char *)b + 2;
	out->topic_len = tl;
	if (out->qos) {
		if (n - at < 2)
			return FW_ERR_MALFORMED;
		out->pid = get_u16(b + at);
		if (out->pid == 0)
			return FW_ERR_MALFORMED;
		at += 2;
	}
	out->payload = b + at;
	out->payload_len = n - at;
	return FW_OK;
}

int fw_mqtt_decode(uint8_t *pkt, size_t len, struct fw_mqtt_pkt *out)
{
	uint8_t first;
	uint32_t rl;
	size_t hl;
	int rc = fw_mqtt_header(pkt, len, &first, &rl, &hl);
	if (rc)
		return rc;
	if (len - hl < rl)
		return FW_ERR_SHORT;
	if (len - hl > rl)
		return FW_ERR_MALFORMED;
	memset(out, 0, sizeof(*out));
	out->type = first >> 4;
	uint8_t flags = first & 0x0f;
	uint8_t *b = pkt + hl;

	switch (out->type) {
	case FW_MQTT_PUBLISH:
		out->dup = flags >> 3 & 1;
		out->qos = flags >> 1 & 3;
		out->retain = flags & 1;
		return decode_publish(b, rl, out);
	case FW_MQTT_CONNACK:
		if (flags || rl != 2 || (b[0] & 0xfe))
			return FW_ERR_MALFORMED;
		out->session_present = b[0];
		out->rc = b[1];
		/* a refusal must not claim a session */
		if (out->rc && out->session_present)
			return FW_ERR_MALFORMED;
		return FW_OK;
	case FW_MQTT_PUBACK:
	case FW_MQTT_UNSUBACK:
		if (flags || rl != 2)
			return FW_ERR_MALFORMED;
		out->pid = get_u16(b);
		return out->pid ? FW_OK : FW_ERR_MALFORMED;
	case FW_MQTT_SUBACK:
		if (flags || rl < 3)
			return FW_ERR_MALFORMED;
		out->pid = get_u16(b);
		out->codes = b + 2;
		out->ncodes = rl - 2;
		for (size_t i = 0; i < out->ncodes; i++)
			if (out->codes[i] > 2 && out->codes[i] != 0x80)
				return FW_ERR_MALFORMED;
		return out->pid ? FW_OK : FW_ERR_MALFORMED;
	case FW_MQTT_PINGRESP:
		return flags || rl ? FW_ERR_MALFORMED : FW_OK;
	default:
		/* CONNECT, SUBSCRIBE, PINGREQ, QoS 2 flow, reserved types: a
		 * broker never sends them to a 3.1.1 client at QoS <= 1 */
		return out->type == 0 || out->type == 15 ? FW_ERR_MALFORMED : FW_ERR_PROTOCOL;
	}
}
