/*
 * The refusal of a user's publish (refusal.h): built from the publish,
 * then published or put in place of the refused message.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mqtt_protocol.h>

#include "chat/notice.h"
#include "chat/topic.h"
#include "refusal.h"

static bool is_request(const char *prefix, const char *topic)
{
	struct topic_in t;
	return topic_parse_in(prefix, topic, strlen(topic), &t) == TOPIC_OK &&
	       t.kind == TOPIC_IN_RPC;
}

/* A request's rpc error, on <prefix>/user/<me>/rpc or on its Response Topic
 * (when valid) with its Correlation Data. Returns 0, or -1 with nothing to
 * free. */
static int request_refusal(struct refusal *r, const char *prefix, size_t parse_max,
                           const char *user, const struct mosquitto_evt_acl_check *ed,
                           const mosquitto_property *props, const char *code, const char *message)
{
	char *rt = NULL;
	void *corr = NULL;
	uint16_t corr_len = 0;

	if (topic_user(prefix, user, "rpc", r->topic, sizeof(r->topic)) <= 0)
		return -1;
	if (props && mosquitto_property_read_string(props, MQTT_PROP_RESPONSE_TOPIC, &rt, false) &&
	    topic_reply_ok(prefix, user, rt))
		snprintf(r->topic, sizeof(r->topic), "%s", rt);
	if (props && mosquitto_property_read_binary(props, MQTT_PROP_CORRELATION_DATA, &corr,
	                                            &corr_len, false))
		mosquitto_property_add_binary(&r->props, MQTT_PROP_CORRELATION_DATA, corr,
		                              corr_len);
	mosquitto_free(rt);
	mosquitto_free(corr);
	r->json = notice_rpc_error(ed->payload, ed->payloadlen, parse_max, code, message);
	if (r->json == NULL) {
		mosquitto_property_free_all(&r->props);
		return -1;
	}
	return 0;
}

int refusal_make(struct refusal *r, const char *prefix, size_t parse_max, const char *user,
                 const struct mosquitto_evt_acl_check *ed, const mosquitto_property *props,
                 const char *code, const char *message)
{
	char cid[ENVELOPE_CID_MAX + 1];

	r->json = NULL;
	r->props = NULL;
	if (is_request(prefix, ed->topic))
		return request_refusal(r, prefix, parse_max, user, ed, props, code, message);
	if (topic_user(prefix, user, "notice", r->topic, sizeof(r->topic)) <= 0)
		return -1;
	notice_cid(ed->payload, ed->payloadlen, parse_max, cid);
	r->json = notice_json(code, message, ed->topic, cid);
	return r->json != NULL ? 0 : -1;
}

/* mosquitto 2.0.11 sends the PUBACK of a message denied in MESSAGE at once
 * (handle_publish.c, process_bad_message), and what a plugin publishes
 * only at its next loop turn (loop.c, queue_plugin_msgs): a broker killed
 * in between left a 3.1.1 client holding an acknowledgement of a post that
 * was neither taken nor refused. */
bool refusal_needs_place(const struct mosquitto_evt_message *msg)
{
	return msg->qos == 1 && mosquitto_client_protocol_version(msg->client) != 5;
}

void refusal_publish(struct refusal *r)
{
	if (mosquitto_broker_publish_copy(NULL, r->topic, (int)strlen(r->json), r->json, 1, false,
	                                  r->props) != MOSQ_ERR_SUCCESS)
		mosquitto_property_free_all(&r->props);
	r->props = NULL;
	free(r->json);
	r->json = NULL;
}

/* mosquitto routes the rewritten message like any accepted publish: to the
 * subscriptions of the refusal's topic, the sender's own <prefix>/user/
 * <me>/..., which no other user may read and the bridge never subscribes
 * to (so neither the post nor its refusal reaches the bridge or counts in
 * its backlog), and only then sends the PUBACK (sub__messages_queue writes
 * a delivery to a connected subscriber with in-flight room at once; one
 * connection's packets go out in order). Ownership, as mosquitto 2.0.11
 * takes the event back (plugin.c, plugin__handle_message): it stores the
 * topic without freeing the old one, and frees the old payload itself when
 * the pointer changed; both must come from mosquitto_malloc. */
int refusal_in_place(struct mosquitto_evt_message *msg, struct refusal *r)
{
	size_t len = strlen(r->json);
	char *topic = mosquitto_strdup(r->topic);
	char *payload = mosquitto_malloc(len + 1);
	int rc = MOSQ_ERR_NOMEM;

	if (topic == NULL || payload == NULL) {
		mosquitto_free(topic);
		mosquitto_free(payload);
		goto cleanup;
	}
	memcpy(payload, r->json, len + 1);
	mosquitto_free(msg->topic);
	msg->topic = topic;
	msg->payload = payload;
	msg->payloadlen = (uint32_t)len;
	msg->retain = false;
	mosquitto_property_free_all(&msg->properties);
	rc = MOSQ_ERR_SUCCESS;
cleanup:
	mosquitto_property_free_all(&r->props); /* an MQTT 3.1.1 request has none */
	free(r->json);
	r->json = NULL;
	return rc;
}
