/*
 * Requests over MQTT (shared/PROTOCOL.md section 6): parsing, dispatch to
 * the Redis scripts, and the reply on chat/user/<me>/rpc or, with MQTT 5,
 * on the request's Response Topic (only under chat/user/<me>/) with its
 * Correlation Data.
 */
#ifndef CHAT_RPC_H
#define CHAT_RPC_H

#include <stddef.h>

#include <mosquitto.h>

struct bridge;

/* The error of a request whose answer is larger than the broker's packet
 * limit (a 1.1 extension of section 6's codes, named like the notice):
 * it is refused with this, its id echoed, never dropped. */
#define RPC_E_TOO_LARGE "too_large"

/* Handles one request of caller, whose connection's token carries role
 * ("user", "admin"; the plugin stamps it on the publish, see
 * authplugin/stamp.c). */
void rpc_handle(struct bridge *b, const char *caller, const char *role, const void *payload,
                size_t len, const mosquitto_property *props);

/* Whether topic is a valid reply topic for caller: <prefix>/user/<caller>/
 * followed by one or more non-empty levels, no wildcards. */
int rpc_reply_topic_ok(const char *prefix, const char *caller, const char *topic);

#endif
