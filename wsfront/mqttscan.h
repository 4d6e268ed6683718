/*
 * Follows an MQTT byte stream without buffering it, to count packets by
 * type for the metrics (PUBLISH in and out) and to see the CONNACK code
 * (a refused token is a reject "auth"). Pure: fed whatever bytes the socket
 * gave, in any split.
 */
#ifndef WSFRONT_MQTTSCAN_H
#define WSFRONT_MQTTSCAN_H

#include <stddef.h>
#include <stdint.h>

struct mqttscan {
	int state;          /* 0 header byte, 1 length, 2 body */
	uint8_t type;       /* packet type of the current packet (1..15) */
	uint32_t remaining; /* body bytes still to skip */
	uint32_t length;    /* body length of the current packet */
	int shift;
	uint32_t pos;     /* body bytes seen of the current packet */
	int connack_code; /* -1 until a CONNACK was seen */
	int malformed;    /* a length field longer than 4 bytes */
	uint64_t packets[16];
};

void mqttscan_init(struct mqttscan *s);

/* Feeds len bytes; returns how many complete packets ended in them. */
size_t mqttscan_feed(struct mqttscan *s, const unsigned char *p, size_t len);

#define MQTT_CONNECT 1
#define MQTT_CONNACK 2
#define MQTT_PUBLISH 3

#endif
