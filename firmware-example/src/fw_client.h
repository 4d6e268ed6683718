/*
 * The firmware chat client: one connection to the broker, driven by the
 * application's loop through fw_client_step(). It connects with a device
 * token (PROTOCOL.md section 3), subscribes to its inbox and one room,
 * joins the room, posts plain text, answers keepalive, reconnects with
 * exponential backoff and jitter, and after any reconnect or gap fetches
 * the missed messages with `history`, so the application sees every
 * message of a tracked conversation once and in seq order.
 *
 * No heap: the application hands in every buffer (struct fw_client itself,
 * the receive and send buffers, the conversation table) and keeps them
 * alive as long as the client. Everything the client tells the application
 * goes through one callback (struct fw_event); strings in an event point
 * into the receive buffer and are valid only during the callback.
 */
#ifndef FW_CLIENT_H
#define FW_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include "fw_env.h"
#include "fw_err.h"
#include "fw_platform.h"

/* Smallest buffers the client accepts (see the README's memory budget). */
#define FW_RX_MIN 256
#define FW_TX_MIN 256

struct fw_client_config {
	const char *host;
	uint16_t port;
	const char *user;        /* user id = MQTT user name = the token's sub */
	const char *device;      /* client id suffix (<user>:<device>); NULL: the user id */
	const char *token;       /* the JWT; the client keeps the pointer */
	const char *room;        /* the room to join and follow; NULL for none */
	uint16_t keepalive_s;    /* 0: 60 */
	uint32_t backoff_min_ms; /* first reconnect delay; 0: 1000 */
	uint32_t backoff_max_ms; /* ceiling of the delay; 0: 60000 */
	uint32_t timeout_ms;     /* connect, CONNACK, SUBACK, reply; 0: 10000 */
	uint8_t history_limit;   /* messages per history page; 0: 10 */
};

/* One followed conversation; the application provides the table. */
struct fw_conv {
	char id[FW_CONV_MAX + 1];
	uint32_t last;   /* highest seq shown, valid when known */
	uint32_t seen;   /* highest seq seen live (may be ahead of last) */
	uint32_t req;    /* id of the history request in flight, 0: none */
	uint32_t due;    /* millis when the next history request may go */
	uint32_t used;   /* millis of the last activity (for eviction) */
	uint8_t known;   /* last is meaningful */
	uint8_t want;    /* a history request is needed (from due on) */
	uint8_t limit;   /* current page size */
	uint8_t is_room; /* the configured room: never evicted */
};

enum fw_event_type {
	FW_EV_CONNECTED,    /* CONNACK accepted and subscriptions granted */
	FW_EV_DISCONNECTED, /* code: why (an fw_err) */
	FW_EV_REFUSED,      /* CONNACK refused: code is the MQTT return code */
	FW_EV_WAIT,         /* next connect attempt in delay_ms */
	FW_EV_MESSAGE,      /* msg: a new message, in seq order */
	FW_EV_NOTICE,       /* msg: a rejection of one of my publishes */
	FW_EV_POSTED,       /* the broker acknowledged the post */
	FW_EV_POST_LOST,    /* the connection dropped before the ack */
	FW_EV_SUB_REFUSED,  /* the room subscription was refused */
	FW_EV_RPC_ERROR,    /* msg.code/message: a request failed; retried */
	FW_EV_TOO_BIG,      /* code: bytes of a packet that did not fit rx */
	FW_EV_SKIPPED,      /* conv, seq: a message that cannot be shown */
	FW_EV_CAUGHT_UP,    /* conv: history has filled every gap */
	FW_EV_BAD_INPUT,    /* code: a payload that did not parse, dropped */
};

struct fw_event {
	enum fw_event_type type;
	int code;
	uint32_t delay_ms;
	uint32_t seq;
	const char *conv;
	const struct fw_env *msg;
};

typedef void (*fw_event_cb)(void *arg, const struct fw_event *ev);

enum fw_state {
	FW_ST_OFFLINE,
	FW_ST_CONNACK,
	FW_ST_SUBACK,
	FW_ST_ONLINE,
};

struct fw_client {
	struct fw_client_config cfg;
	struct fw_net *net;
	fw_event_cb cb;
	void *cb_arg;
	uint8_t *rx, *tx;
	size_t rx_cap, tx_cap, rx_fill;
	uint32_t rx_skip; /* bytes still to drop of a packet too big for rx */
	struct fw_conv *convs;
	size_t nconv, conv_cap;
	enum fw_state state;
	uint32_t attempt; /* reconnects since the last stable connection */
	uint32_t at;      /* millis of the state's deadline or next attempt */
	uint32_t online_since, last_tx, ping_at;
	uint32_t next_req;
	uint16_t next_pid, sub_pid, post_pid;
	uint8_t ping_out, post_out, room_ok;
};

/* Sets the client up; nothing is sent until fw_client_step(). Checks the
 * names (user, device, room) and the buffer sizes. Returns 0, or
 * FW_ERR_INVALID with *c unusable. */
int fw_client_init(struct fw_client *c, const struct fw_client_config *cfg, struct fw_net *net,
                   uint8_t *rx, size_t rx_cap, uint8_t *tx, size_t tx_cap, struct fw_conv *convs,
                   size_t conv_cap, fw_event_cb cb, void *cb_arg);

/* Does what is due: a connect attempt when the backoff has passed, reading
 * and handling what arrived (waiting up to wait_ms), keepalive, history
 * requests. Returns 0, or the error that just dropped the connection (the
 * client reconnects by itself). */
int fw_client_step(struct fw_client *c, uint32_t wait_ms);

/* Milliseconds until fw_client_step() has something to do while offline
 * (0 when online: then step itself waits on the socket). */
uint32_t fw_client_idle_ms(const struct fw_client *c);

int fw_client_online(const struct fw_client *c);

/* Posts body to the room (peer NULL) or as a DM to peer, at QoS 1. One post
 * at a time: FW_ERR_BUSY until FW_EV_POSTED or FW_EV_POST_LOST. Returns 0,
 * FW_ERR_OFFLINE, FW_ERR_BUSY, FW_ERR_INVALID (empty body, bad peer),
 * FW_ERR_FULL (does not fit tx) or FW_ERR_NET (connection dropped). */
int fw_client_post(struct fw_client *c, const char *peer, const char *body, size_t len);

/* Declares the last seq already seen of conv (e.g. kept in flash over a
 * reboot), so the next connect fetches what came after it. */
int fw_client_set_last(struct fw_client *c, const char *conv, uint32_t seq);

/* Closes the connection politely (DISCONNECT); the client stays offline
 * until the next step after the backoff. */
void fw_client_close(struct fw_client *c);

#endif
