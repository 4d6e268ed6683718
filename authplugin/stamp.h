/*
 * The role stamp: every message a client publishes under <prefix>/in/<me>/
 * leaves the broker with exactly one MQTT 5 user property chat-role=<role>,
 * the role of the token of the connection that sent it, so the bridge
 * judges each request by the rights its sender holds now, never by a role
 * once seen. A chat-role a client set itself is removed first (no
 * spoofing). Wills never pass here (mosquitto runs no MESSAGE callback for
 * them): the plugin refuses every Will that is not a post (will.h).
 *
 * Properties cost the broker memory and work per copy, so they are
 * measured first, in one walk that stops past a bound; the stamp then
 * copies and appends in time linear in their number. The list is
 * mosquitto's; only its public calls are used.
 */
#ifndef CHAT_STAMP_H
#define CHAT_STAMP_H

#include <stddef.h>

#include <mosquitto.h>

#define STAMP_PROPERTY "chat-role"

/* Counts props and their encoded size (each property's identifier and
 * value, without the block's length prefix), walking at most max_count + 1
 * of them. Returns 0 with *bytes set, or -1 when there are more than
 * max_count (*bytes is then what the walk saw). */
int stamp_measure(const mosquitto_property *props, size_t max_count, size_t *bytes);

/* Leaves exactly one chat-role=role in *props, after the others (whose
 * order is kept): a list holding a client's own chat-role is copied
 * without it. Returns 0, or -1 when out of memory with *props unchanged. */
int stamp_apply(mosquitto_property **props, const char *role);

/* The number of bytes of an MQTT variable byte integer holding n. */
size_t stamp_varint_len(size_t n);

#endif
