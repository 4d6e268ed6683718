/*
 * A small, strict MQTT 3.1.1 codec for the firmware client: it encodes the
 * packets a client sends (CONNECT, SUBSCRIBE, PUBLISH, PUBACK, PINGREQ,
 * DISCONNECT) into a caller's buffer and decodes the packets a broker sends
 * (CONNACK, SUBACK, PUBLISH, PUBACK, UNSUBACK, PINGRESP) in place. No I/O,
 * no heap: fw_client.c moves the bytes.
 *
 * Encoding goes through a writer: fw_mqtt_begin() reserves room for the
 * fixed header, the caller appends the rest, fw_mqtt_end() writes the
 * header in front. Any append past the buffer's end latches an overflow
 * that fw_mqtt_end() reports as FW_ERR_FULL, so call sites need not check
 * every append.
 */
#ifndef FW_MQTT_H
#define FW_MQTT_H

#include <stddef.h>
#include <stdint.h>

#include "fw_err.h"

enum fw_mqtt_type {
	FW_MQTT_CONNECT = 1,
	FW_MQTT_CONNACK = 2,
	FW_MQTT_PUBLISH = 3,
	FW_MQTT_PUBACK = 4,
	FW_MQTT_SUBSCRIBE = 8,
	FW_MQTT_SUBACK = 9,
	FW_MQTT_UNSUBACK = 11,
	FW_MQTT_PINGREQ = 12,
	FW_MQTT_PINGRESP = 13,
	FW_MQTT_DISCONNECT = 14,
};

/* Largest remaining length MQTT can express (4 length bytes). */
#define FW_MQTT_MAX_REMAINING 268435455u
/* The fixed header is at most 5 bytes: type byte + 4 length bytes. */
#define FW_MQTT_HEADER_MAX 5

struct fw_wr {
	uint8_t *buf;
	size_t cap;
	size_t len;
	int overflow;
};

void fw_wr_bytes(struct fw_wr *w, const void *p, size_t n);
void fw_wr_u8(struct fw_wr *w, uint8_t v);
void fw_wr_u16(struct fw_wr *w, uint16_t v);
/* A NUL-terminated string, without the NUL. */
void fw_wr_cstr(struct fw_wr *w, const char *s);
/* An unsigned number in decimal. */
void fw_wr_dec(struct fw_wr *w, uint32_t v);
/* s[0..n) as the inside of a JSON string (quotes not included). */
void fw_wr_json_esc(struct fw_wr *w, const char *s, size_t n);

/* Starts a packet in buf[0..cap): the body is written after room for the
 * longest fixed header. */
void fw_mqtt_begin(struct fw_wr *w, uint8_t *buf, size_t cap);
/* Writes the fixed header (first byte type_flags) in front of the body.
 * Returns 0 with *pkt and *len the packet to send (inside buf), or
 * FW_ERR_FULL when the packet did not fit. */
int fw_mqtt_end(struct fw_wr *w, uint8_t type_flags, const uint8_t **pkt, size_t *len);

/* CONNECT, MQTT 3.1.1, clean session, with user name and password. */
int fw_mqtt_connect(uint8_t *buf, size_t cap, const char *client_id, const char *user,
                    const char *password, uint16_t keepalive_s, const uint8_t **pkt, size_t *len);
/* SUBSCRIBE to n topic filters, each given as NUL-terminated pieces that
 * are concatenated (pieces[i] ends with a NULL), all at QoS qos. */
int fw_mqtt_subscribe(uint8_t *buf, size_t cap, uint16_t pid, const char *const *const *filters,
                      size_t n, uint8_t qos, const uint8_t **pkt, size_t *len);
/* Begins a PUBLISH: topic from NUL-terminated pieces ending with NULL, then
 * the packet id when qos is 1. The caller appends the payload and ends the
 * packet with fw_mqtt_end(w, fw_mqtt_publish_flags(qos), ...). */
void fw_mqtt_publish_begin(struct fw_wr *w, uint8_t *buf, size_t cap, const char *const *topic,
                           uint8_t qos, uint16_t pid);
uint8_t fw_mqtt_publish_flags(uint8_t qos);
/* PUBACK, PINGREQ and DISCONNECT have fixed sizes: these write them into
 * out (4, 2 and 2 bytes) and return the length. */
size_t fw_mqtt_puback(uint8_t out[4], uint16_t pid);
size_t fw_mqtt_pingreq(uint8_t out[2]);
size_t fw_mqtt_disconnect(uint8_t out[2]);

/* Reads a fixed header from p[0..n). Returns 0 with the first byte, the
 * remaining length and the header's own length; FW_ERR_SHORT when more
 * bytes are needed; FW_ERR_MALFORMED for a length of more than 4 bytes or
 * one not in its shortest form (no broker sends that). */
int fw_mqtt_header(const uint8_t *p, size_t n, uint8_t *first, uint32_t *remaining,
                   size_t *header_len);

/* A decoded broker-to-client packet. Pointers point into the packet. */
struct fw_mqtt_pkt {
	uint8_t type;
	uint8_t qos, dup, retain;    /* PUBLISH */
	uint16_t pid;                /* PUBLISH (qos 1), PUBACK, SUBACK, UNSUBACK */
	uint8_t session_present, rc; /* CONNACK */
	const uint8_t *codes;        /* SUBACK return codes */
	size_t ncodes;
	const char *topic; /* PUBLISH, not NUL-terminated */
	size_t topic_len;
	uint8_t *payload; /* PUBLISH, writable (decoded in place) */
	size_t payload_len;
};

/* Decodes one complete packet pkt[0..len) (fixed header included) that a
 * broker may send a 3.1.1 client. Returns 0, FW_ERR_SHORT when len is less
 * than the header says, FW_ERR_MALFORMED for a grammar error (bad flags,
 * lengths that do not add up, QoS 3, an empty or wildcard topic, packet id
 * 0), FW_ERR_PROTOCOL for a type a broker never sends. Never reads outside
 * pkt[0..len). */
int fw_mqtt_decode(uint8_t *pkt, size_t len, struct fw_mqtt_pkt *out);

#endif
