/*
 * The role stamp (see stamp.h). mosquitto 2.0 lets a MOSQ_EVT_MESSAGE
 * callback replace the message's property list (plugin__handle_message
 * stores event_data.properties back), but has no call to remove one
 * property: a list holding a client's own chat-role is therefore copied
 * without it, and the original freed. The usual list (none) only gets the
 * stamp appended.
 *
 * mosquitto_property_add_*() appends by walking from the list head it is
 * given; handing it the last node (the head of the list's tail) makes each
 * append one step, so a copy costs time linear in the list, not quadratic.
 */
#include <stdbool.h>
#include <string.h>

#include <mosquitto.h>
#include <mosquitto_broker.h> /* mosquitto_free: the broker allocates what it reads */
#include <mqtt_protocol.h>

#include "stamp.h"

size_t stamp_varint_len(size_t n)
{
	return n < 128 ? 1 : n < 16384 ? 2 : n < 2097152 ? 3 : 4;
}

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

/* The value type of property p (MQTT_PROP_TYPE_*), or -1. */
static int type_of(const mosquitto_property *p)
{
	int id = mosquitto_property_identifier(p), real_id, type;
	const char *name = mosquitto_property_identifier_to_string(id);

	if (name == NULL ||
	    mosquitto_string_to_property_info(name, &real_id, &type) != MOSQ_ERR_SUCCESS)
		return -1;
	return type;
}

/* The encoded size of property p: identifier and value. 0 when unknown. */
static size_t size_of(const mosquitto_property *p)
{
	int id = mosquitto_property_identifier(p);
	char *s = NULL, *v = NULL;
	void *bin = NULL;
	uint16_t binlen = 0;
	uint32_t i32 = 0;
	size_t n = 0;

	switch (type_of(p)) {
	case MQTT_PROP_TYPE_BYTE:
		n = 1;
		break;
	case MQTT_PROP_TYPE_INT16:
		n = 2;
		break;
	case MQTT_PROP_TYPE_INT32:
		n = 4;
		break;
	case MQTT_PROP_TYPE_VARINT:
		if (mosquitto_property_read_varint(p, id, &i32, false))
			n = stamp_varint_len(i32);
		break;
	case MQTT_PROP_TYPE_BINARY:
		if (mosquitto_property_read_binary(p, id, &bin, &binlen, false))
			n = 2 + (size_t)binlen;
		break;
	case MQTT_PROP_TYPE_STRING:
		if (mosquitto_property_read_string(p, id, &s, false))
			n = 2 + strlen(s);
		break;
	case MQTT_PROP_TYPE_STRING_PAIR:
		if (mosquitto_property_read_string_pair(p, id, &s, &v, false))
			n = 2 + strlen(s) + 2 + strlen(v);
		break;
	}
	mosquitto_free(s);
	mosquitto_free(v);
	mosquitto_free(bin);
	return n ? stamp_varint_len((size_t)id) + n : 0;
}

int stamp_measure(const mosquitto_property *props, size_t max_count, size_t *bytes)
{
	size_t count = 0;

	*bytes = 0;
	for (const mosquitto_property *p = props; p; p = mosquitto_property_next(p)) {
		if (++count > max_count)
			return -1;
		*bytes += size_of(p);
	}
	return 0;
}

/* Appends a copy of property p (of any type) after *last, the last node of
 * the list *head (NULL: the list is empty), and moves *last to it.
 * Returns 0 or -1. */
static int copy_one(const mosquitto_property *p, mosquitto_property **head,
                    mosquitto_property **last)
{
	int id = mosquitto_property_identifier(p);
	mosquitto_property *tail = *last;
	mosquitto_property **to = tail ? &tail : head; /* one step: tail has no next */
	char *s = NULL, *v = NULL;
	void *bin = NULL;
	uint16_t binlen = 0, i16;
	uint32_t i32;
	uint8_t byte;
	int rc = MOSQ_ERR_INVAL;

	switch (type_of(p)) {
	case MQTT_PROP_TYPE_BYTE:
		if (mosquitto_property_read_byte(p, id, &byte, false))
			rc = mosquitto_property_add_byte(to, id, byte);
		break;
	case MQTT_PROP_TYPE_INT16:
		if (mosquitto_property_read_int16(p, id, &i16, false))
			rc = mosquitto_property_add_int16(to, id, i16);
		break;
	case MQTT_PROP_TYPE_INT32:
		if (mosquitto_property_read_int32(p, id, &i32, false))
			rc = mosquitto_property_add_int32(to, id, i32);
		break;
	case MQTT_PROP_TYPE_VARINT:
		if (mosquitto_property_read_varint(p, id, &i32, false))
			rc = mosquitto_property_add_varint(to, id, i32);
		break;
	case MQTT_PROP_TYPE_BINARY:
		if (mosquitto_property_read_binary(p, id, &bin, &binlen, false))
			rc = mosquitto_property_add_binary(to, id, bin, binlen);
		break;
	case MQTT_PROP_TYPE_STRING:
		if (mosquitto_property_read_string(p, id, &s, false))
			rc = mosquitto_property_add_string(to, id, s);
		break;
	case MQTT_PROP_TYPE_STRING_PAIR:
		if (mosquitto_property_read_string_pair(p, id, &s, &v, false))
			rc = mosquitto_property_add_string_pair(to, id, s, v);
		break;
	}
	mosquitto_free(s);
	mosquitto_free(v);
	mosquitto_free(bin);
	if (rc != MOSQ_ERR_SUCCESS)
		return -1;
	*last = tail ? (mosquitto_property *)mosquitto_property_next(tail) : *head;
	return 0;
}

int stamp_apply(mosquitto_property **props, const char *role)
{
	mosquitto_property *out = NULL, *last = NULL;
	bool spoofed = false;

	for (const mosquitto_property *p = *props; p; p = mosquitto_property_next(p)) {
		if (is_stamp(p))
			spoofed = true;
		last = (mosquitto_property *)p;
	}
	if (spoofed) {
		last = NULL;
		for (const mosquitto_property *p = *props; p; p = mosquitto_property_next(p)) {
			if (!is_stamp(p) && copy_one(p, &out, &last) != 0)
				goto error;
		}
	} else {
		out = *props;
	}
	mosquitto_property *tail = last;
	if (mosquitto_property_add_string_pair(tail ? &tail : &out, MQTT_PROP_USER_PROPERTY,
	                                       STAMP_PROPERTY, role) != MOSQ_ERR_SUCCESS)
		goto error;
	if (spoofed)
		mosquitto_property_free_all(props);
	*props = out;
	return 0;

error:
	if (spoofed)
		mosquitto_property_free_all(&out);
	return -1;
}
