/*
 * The one header a port implements: a byte stream with timeouts, a
 * monotonic millisecond clock and a source of randomness. Everything else
 * in the firmware core is portable C99 with no heap and no libc beyond
 * memcpy/memcmp/memset. port/posix/fw_posix.c is the host port; on an MCU
 * these sit on top of lwIP sockets, an AT-command modem or a TLS session.
 *
 * All functions are called from the one thread that drives the client.
 */
#ifndef FW_PLATFORM_H
#define FW_PLATFORM_H

#include <stddef.h>
#include <stdint.h>

/* Results of the network calls (negative; 0 and positive are successes). */
enum fw_net_result {
	FW_NET_TIMEOUT = 0, /* recv: nothing arrived in time (not an error) */
	FW_NET_CLOSED = -1, /* the peer closed the stream */
	FW_NET_ERROR = -2,  /* any other failure: reset, no route, DNS, TLS */
};

/* The port's connection state, defined by the port (a socket descriptor,
 * a modem channel). The client only carries a pointer to it. */
struct fw_net;

/* Opens a stream to host:port, waiting at most timeout_ms. Returns 0, or
 * FW_NET_ERROR with the stream closed. */
int fw_net_open(struct fw_net *net, const char *host, uint16_t port, uint32_t timeout_ms);

/* Sends all len bytes, waiting at most timeout_ms in total. Returns 0 when
 * everything was handed to the stack, FW_NET_CLOSED or FW_NET_ERROR
 * otherwise (a partial send is an error: the stream is then unusable). */
int fw_net_send(struct fw_net *net, const uint8_t *buf, size_t len, uint32_t timeout_ms);

/* Receives up to len bytes, waiting at most timeout_ms for the first one.
 * Returns the count (> 0), FW_NET_TIMEOUT (0) when nothing came,
 * FW_NET_CLOSED or FW_NET_ERROR. */
int fw_net_recv(struct fw_net *net, uint8_t *buf, size_t len, uint32_t timeout_ms);

/* Closes the stream; harmless on a closed one. */
void fw_net_close(struct fw_net *net);

/* Milliseconds from a monotonic clock; wraps after 49 days, and the core
 * only ever subtracts two readings, so the wrap is harmless. */
uint32_t fw_millis(void);

/* 32 random bits for the reconnect jitter and request ids. Need not be
 * cryptographic, but two devices must not share a sequence (seed from a
 * hardware RNG, the unique device id or ADC noise). */
uint32_t fw_random(void);

#endif
