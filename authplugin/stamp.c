/*
 * The role stamp (see stamp.h). mosquitto 2.0 lets a MOSQ_EVT_MESSAGE
 * callback replace the message's property list (plugin__handle_message
 * stores event_data.properties back), but has no call to remove one
 * property: a list holding a client's own chat-role is therefore copied
 * without it, and the original freed. The usual list (none) only gets the
 * stamp appended.
 */
#include <stdbool.h>
#include <string.h>

#include <mosquitto.h>
#include <mosquitto_broker.h>
#include <mosquitto_plugin.h>
#include <mqtt_protocol.h>

#include "chat/token.h"
#include "stamp.h"

static bool is_stamp(const mosquitto_property *p)
{
	char *name = NULL, *value = NULL;
	bool yes = false;

	if (mosquitto_property_identifier(p) != MQTT_PROP_USER_PROPERTY)
		return false;
	if (mosquitto_property_read_string_pair(p, MQTT_PROP_USER_PROPERTY, &name, &value, false)) {
		yes = strcmp(name, STAMP_PROPERTY) == 0;
		mosquitto_free(name);
		mosquitto_free(value);
	}
	return yes;
}

/* Appends a copy of property p (of any type) to *out. Returns 0 or -1. */
static int copy_one(const mosquitto_property *p, mosquitto_property **out)
{
	int id = mosquitto_property_identifier(p), real_id, type;
	const char *name = mosquitto_property_identifier_to_string(id);
	char *s = NULL, *v = NULL;
	void *bin = NULL;
	uint16_t binlen = 0, i16;
	uint32_t i32;
	uint8_t byte;
	int rc = MOSQ_ERR_INVAL;

	if (name == NULL || mosquitto_string_to_property_info(name, &real_id, &type) != MOSQ_ERR_SUCCESS)
		return -1;
	switch (type) {
	case MQTT_PROP_TYPE_BYTE:
		if (mosquitto_property_read_byte(p, id, &byte, false))
			rc = mosquitto_property_add_byte(out, id, byte);
		break;
	case MQTT_PROP_TYPE_INT16:
		if (mosquitto_property_read_int16(p, id, &i16, false))
			rc = mosquitto_property_add_int16(out, id, i16);
		break;
	case MQTT_PROP_TYPE_INT32:
		if (mosquitto_property_read_int32(p, id, &i32, false))
			rc = mosquitto_property_add_int32(out, id, i32);
		break;
	case MQTT_PROP_TYPE_VARINT:
		if (mosquitto_property_read_varint(p, id, &i32, false))
			rc = mosquitto_property_add_varint(out, id, i32);
		break;
	case MQTT_PROP_TYPE_BINARY:
		if (mosquitto_property_read_binary(p, id, &bin, &binlen, false))
			rc = mosquitto_property_add_binary(out, id, bin, binlen);
		break;
	case MQTT_PROP_TYPE_STRING:
		if (mosquitto_property_read_string(p, id, &s, false))
			rc = mosquitto_property_add_string(out, id, s);
		break;
	case MQTT_PROP_TYPE_STRING_PAIR:
		if (mosquitto_property_read_string_pair(p, id, &s, &v, false))
			rc = mosquitto_property_add_string_pair(out, id, s, v);
		break;
	}
	mosquitto_free(s);
	mosquitto_free(v);
	mosquitto_free(bin);
	return rc == MOSQ_ERR_SUCCESS ? 0 : -1;
}

/* Replaces *props by a copy without any chat-role property. Returns 0, or
 * -1 with *props unchanged. */
static int strip(mosquitto_property **props)
{
	mosquitto_property *out = NULL;

	for (const mosquitto_property *p = *props; p; p = mosquitto_property_next(p)) {
		if (!is_stamp(p) && copy_one(p, &out) != 0) {
			mosquitto_property_free_all(&out);
			return -1;
		}
	}
	mosquitto_property_free_all(props);
	*props = out;
	return 0;
}

int stamp_on_message(int event, void *event_data, void *userdata)
{
	struct mosquitto_evt_message *ed = event_data;
	const struct stamp *st = userdata;
	bool spoofed = false;
	(void)event;

	/* only client input (<prefix>/in/...) is read by the bridge */
	if (ed->topic == NULL || strncmp(ed->topic, st->prefix, st->prefix_len) != 0 ||
	    strncmp(ed->topic + st->prefix_len, "/in/", 4) != 0)
		return MOSQ_ERR_SUCCESS;
	const struct client_entry *e = clients_get(st->clients, ed->client);
	const char *role = token_role_name(e ? e->acl.role : ROLE_USER);

	for (const mosquitto_property *p = ed->properties; p && !spoofed;
	     p = mosquitto_property_next(p))
		spoofed = is_stamp(p);
	if (spoofed && strip(&ed->properties) != 0)
		return MOSQ_ERR_NOMEM;
	if (mosquitto_property_add_string_pair(&ed->properties, MQTT_PROP_USER_PROPERTY,
	                                       STAMP_PROPERTY, role) != MOSQ_ERR_SUCCESS)
		return MOSQ_ERR_NOMEM;
	return MOSQ_ERR_SUCCESS;
}
