/*
 * The role stamp: every message a client publishes under <prefix>/in/<me>/
 * leaves the broker with one MQTT 5 user property chat-role=<role>, the
 * role of the token of the connection that sent it, so the bridge judges
 * each request by the rights its sender holds now, never by a role once
 * seen. A chat-role a client set itself is removed first (no spoofing).
 */
#ifndef CHAT_STAMP_H
#define CHAT_STAMP_H

#include <stddef.h>

#include "clients.h"

#define STAMP_PROPERTY "chat-role"

struct stamp {
	const char *prefix; /* topic prefix */
	size_t prefix_len;
	const struct client_table *clients;
};

/* MOSQ_EVT_MESSAGE callback; userdata is a struct stamp. Returns
 * MOSQ_ERR_SUCCESS, or MOSQ_ERR_NOMEM (the broker then drops the
 * publish rather than pass it on unstamped). */
int stamp_on_message(int event, void *event_data, void *userdata);

#endif
