/* Unit tests: the refusal of a user's publish (authplugin/refusal.c). What
 * it says and where it goes (a post's notice with its cid, a request's rpc
 * error with its id, on its MQTT 5 Response Topic with its Correlation
 * Data); which publishes must carry it in place (MQTT 3.1.1 QoS 1 only);
 * and the ownership of a message turned into its refusal, as mosquitto
 * 2.0.11 takes the event back: the old topic freed here, the old payload
 * left for the broker, nothing leaked (the ASan build checks leaks), the
 * message unchanged when memory runs out. The broker's own calls are
 * stand-ins here; the property calls are libmosquitto's. */
#include <stdlib.h>
#include <string.h>

#include <mosquitto.h>
#include <mosquitto_broker.h>
#include <mqtt_protocol.h>

#include "check.h"
#include "refusal.h"

/* the broker's connection, as far as refusal.c asks about it */
struct mosquitto {
	int protocol;
};

static int allocs, fail_at; /* fail_at > 0: that allocation (counted in allocs) fails */

void *mosquitto_malloc(size_t size)
{
	return ++allocs == fail_at ? NULL : malloc(size);
}

char *mosquitto_strdup(const char *s)
{
	char *out = mosquitto_malloc(strlen(s) + 1);
	return out ? strcpy(out, s) : NULL;
}

void mosquitto_free(void *mem)
{
	free(mem);
}

int mosquitto_client_protocol_version(const struct mosquitto *client)
{
	return client->protocol;
}

/* what refusal_publish handed the broker */
static char *published_topic, *published_payload;
static mosquitto_property *published_props;

int mosquitto_broker_publish_copy(const char *clientid, const char *topic, int payloadlen,
                                  const void *payload, int qos, bool retain,
                                  mosquitto_property *properties)
{
	CHECK(clientid == NULL && qos == 1 && !retain);
	published_topic = strdup(topic);
	published_payload = strndup(payload, (size_t)payloadlen);
	published_props = properties; /* the broker's now */
	return MOSQ_ERR_SUCCESS;
}

static void forget_published(void)
{
	free(published_topic);
	free(published_payload);
	mosquitto_property_free_all(&published_props);
	published_topic = published_payload = NULL;
}

static struct mosquitto_evt_acl_check publish(const char *topic, const char *payload)
{
	struct mosquitto_evt_acl_check ed;
	memset(&ed, 0, sizeof(ed));
	ed.topic = topic;
	ed.payload = payload;
	ed.payloadlen = (uint32_t)strlen(payload);
	ed.qos = 1;
	return ed;
}

static void makes(const char *topic, const char *payload, const mosquitto_property *props,
                  const char *code, const char *want_topic, const char *want_json)
{
	struct refusal r;
	struct mosquitto_evt_acl_check ed = publish(topic, payload);
	CHECK_INT(refusal_make(&r, "chat", 1000, "alice", &ed, props, code, "why"), 0);
	CHECK_STR(r.topic, want_topic);
	CHECK_STR(r.json, want_json);
	refusal_publish(&r);
	CHECK_STR(published_topic, want_topic);
	CHECK_STR(published_payload, want_json);
	forget_published();
}

/* A message as mosquitto hands it to MOSQ_EVT_MESSAGE: its own copies. */
static struct mosquitto_evt_message message(struct mosquitto *client, const char *topic,
                                            const char *payload, uint8_t qos)
{
	struct mosquitto_evt_message msg;
	memset(&msg, 0, sizeof(msg));
	msg.client = client;
	msg.topic = strdup(topic);
	msg.payload = strdup(payload);
	msg.payloadlen = (uint32_t)strlen(payload);
	msg.qos = qos;
	msg.retain = true;
	mosquitto_property_add_string_pair(&msg.properties, MQTT_PROP_USER_PROPERTY, "k", "v");
	return msg;
}

int main(void)
{
	struct mosquitto v311 = {4}, v31 = {3}, v5 = {5};

	/* a post: its notice, with its cid when it has one */
	makes("chat/in/alice/room/lobby", "{\"body\":\"hi\",\"cid\":\"c-1\"}", NULL, "unavailable",
	      "chat/user/alice/notice",
	      "{\"v\":1,\"type\":\"notice\",\"code\":\"unavailable\",\"message\":\"why\","
	      "\"topic\":\"chat/in/alice/room/lobby\",\"cid\":\"c-1\"}");
	makes("chat/in/alice/dm/bob", "plain text", NULL, "too_large", "chat/user/alice/notice",
	      "{\"v\":1,\"type\":\"notice\",\"code\":\"too_large\",\"message\":\"why\","
	      "\"topic\":\"chat/in/alice/dm/bob\"}");
	/* a request: its rpc error with its id, the same code */
	makes("chat/in/alice/rpc", "{\"id\":\"r-1\",\"method\":\"unread\"}", NULL, "too_large",
	      "chat/user/alice/rpc",
	      "{\"id\":\"r-1\",\"error\":{\"code\":\"too_large\",\"message\":\"why\"}}");

	/* MQTT 5: on a valid Response Topic, with the Correlation Data */
	mosquitto_property *props = NULL;
	mosquitto_property_add_string(&props, MQTT_PROP_RESPONSE_TOPIC, "chat/user/alice/r/9");
	mosquitto_property_add_binary(&props, MQTT_PROP_CORRELATION_DATA, "c9", 2);
	struct refusal r;
	struct mosquitto_evt_acl_check ed = publish("chat/in/alice/rpc", "{\"id\":9}");
	CHECK_INT(refusal_make(&r, "chat", 1000, "alice", &ed, props, "unavailable", "why"), 0);
	CHECK_STR(r.topic, "chat/user/alice/r/9");
	refusal_publish(&r);
	void *corr = NULL;
	uint16_t corr_len = 0;
	CHECK(mosquitto_property_read_binary(published_props, MQTT_PROP_CORRELATION_DATA, &corr,
	                                     &corr_len, false) != NULL);
	CHECK(corr_len == 2 && memcmp(corr, "c9", 2) == 0);
	free(corr);
	forget_published();
	mosquitto_property_free_all(&props);
	/* another user's topic is no Response Topic: the default one */
	mosquitto_property_add_string(&props, MQTT_PROP_RESPONSE_TOPIC, "chat/user/bob/r");
	CHECK_INT(refusal_make(&r, "chat", 1000, "alice", &ed, props, "unavailable", "why"), 0);
	CHECK_STR(r.topic, "chat/user/alice/rpc");
	refusal_publish(&r);
	forget_published();
	mosquitto_property_free_all(&props);

	/* in place: only where a PUBACK follows that cannot say no */
	struct mosquitto_evt_message msg = message(&v311, "chat/in/alice/room/lobby", "x", 1);
	CHECK(refusal_needs_place(&msg));
	msg.client = &v31;
	CHECK(refusal_needs_place(&msg));
	msg.client = &v5;
	CHECK(!refusal_needs_place(&msg)); /* PUBACK 0x87 */
	msg.client = &v311;
	msg.qos = 0;
	CHECK(!refusal_needs_place(&msg)); /* no PUBACK */
	msg.qos = 1;

	/* the message becomes its refusal: the old topic is freed here, the
	 * old payload stays for the broker, which frees it as the pointer
	 * changed (plugin__handle_message) */
	ed = publish(msg.topic, msg.payload);
	CHECK_INT(refusal_make(&r, "chat", 1000, "alice", &ed, NULL, "unavailable", "why"), 0);
	void *old_payload = msg.payload;
	CHECK_INT(refusal_in_place(&msg, &r), MOSQ_ERR_SUCCESS);
	CHECK_STR(msg.topic, "chat/user/alice/notice");
	CHECK(msg.payload != old_payload);
	CHECK_INT(msg.payloadlen, strlen(msg.payload));
	CHECK(strstr(msg.payload, "\"code\":\"unavailable\"") != NULL);
	CHECK(!msg.retain);
	CHECK(msg.properties == NULL);
	CHECK(r.json == NULL);
	free(old_payload);
	free(msg.topic);
	free(msg.payload);

	/* out of memory at either copy (the topic's, the payload's): the
	 * message as it was, the refusal freed */
	for (int at = 1; at <= 2; at++) {
		msg = message(&v311, "chat/in/alice/room/lobby", "x", 1);
		ed = publish(msg.topic, msg.payload);
		CHECK_INT(refusal_make(&r, "chat", 1000, "alice", &ed, NULL, "unavailable", "why"),
		          0);
		char *topic = msg.topic;
		void *payload = msg.payload;
		allocs = 0;
		fail_at = at;
		CHECK_INT(refusal_in_place(&msg, &r), MOSQ_ERR_NOMEM);
		fail_at = 0;
		CHECK(msg.topic == topic && msg.payload == payload && msg.retain);
		CHECK(msg.properties != NULL);
		CHECK(r.json == NULL);
		free(msg.topic);
		free(msg.payload);
		mosquitto_property_free_all(&msg.properties);
	}
	return check_report();
}
