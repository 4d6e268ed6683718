/*
 * The refusal of a user's publish, as its sender hears it: a notice on
 * <prefix>/user/<me>/notice in the bridge's format (chat/notice.h), or for
 * a request the rpc error the bridge would give (bridge/rpc.c), with the
 * request's id, on <prefix>/user/<me>/rpc or on the request's MQTT 5
 * Response Topic with its Correlation Data.
 *
 * It reaches the sender one of two ways. Published (refusal_publish):
 * mosquitto queues what a plugin publishes and routes it at the start of
 * its next loop turn, after the PUBACK of the refused publish went out. Or
 * in place of the refused message (refusal_in_place), for an MQTT 3.1.1
 * QoS 1 publish, whose PUBACK cannot say no: the message itself becomes
 * the refusal and passes, and mosquitto routes it to the sender's
 * subscriptions before it sends the PUBACK, so no broker crash can leave
 * the client with the PUBACK and without the refusal (docs/DECISIONS.md,
 * "A refused MQTT 3.1.1 post carries its own refusal").
 */
#ifndef CHAT_REFUSAL_H
#define CHAT_REFUSAL_H

#include <stdbool.h>
#include <stddef.h>

#include <mosquitto.h>
#include <mosquitto_broker.h>

struct refusal {
	char topic[256];
	char *json;                /* malloc'd: free() */
	mosquitto_property *props; /* an MQTT 5 request's Correlation Data, or NULL */
};

/* Builds the refusal of ed (a user's publish under <prefix>/in/<user>/, with
 * its properties props, NULL where they are not visible), for the notice
 * code and message. A request gets its rpc error with the same code instead
 * (too_large is an rpc error code too: the bridge answers an answer over
 * the packet limit with it). Payloads of more than
 * parse_max bytes are not parsed for their cid or id. Returns 0, or -1 (out
 * of memory) with nothing to free. */
int refusal_make(struct refusal *r, const char *prefix, size_t parse_max, const char *user,
                 const struct mosquitto_evt_acl_check *ed, const mosquitto_property *props,
                 const char *code, const char *message);

/* Whether the refusal of msg must travel in msg itself: a QoS 1 publish of
 * an MQTT 3.1.1 (or 3.1) client. MQTT 5's PUBACK says no itself (0x87),
 * QoS 0 has no PUBACK (and its published notice, QoS 1, also reaches an
 * offline session, which a QoS 0 one would not). */
bool refusal_needs_place(const struct mosquitto_evt_message *msg);

/* Publishes r (QoS 1, from the broker); consumes r. */
void refusal_publish(struct refusal *r);

/* Turns msg into r, consuming r: its topic and payload become r's, its
 * properties and retain flag go. Returns MOSQ_ERR_SUCCESS, or
 * MOSQ_ERR_NOMEM with msg unchanged (the caller returns it: mosquitto then
 * closes the connection without a PUBACK, nothing acknowledged). */
int refusal_in_place(struct mosquitto_evt_message *msg, struct refusal *r);

#endif
