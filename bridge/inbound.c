/*
 * Inbound classification and JSON building (see inbound.h). No I/O.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "chat/notice.h"
#include "inbound.h"

static void reject(struct inbound *in, const char *code, const char *message)
{
	in->action = INBOUND_REJECT;
	in->code = code;
	in->message = message;
}

/* The conversation of a room or DM topic; rejects a DM to oneself. */
static int set_conv(struct inbound *in)
{
	struct conv_id c;
	bool room = in->topic.kind == TOPIC_IN_ROOM || in->topic.kind == TOPIC_IN_TYPING_ROOM;

	if (room) {
		memset(&c, 0, sizeof(c));
		c.kind = CONV_ROOM;
		strcpy(c.a, in->topic.target);
	} else if (conv_dm(in->topic.sender, in->topic.target, &c) != 0) {
		reject(in, NOTICE_BAD_REQUEST, "a direct message needs another user");
		return -1;
	}
	conv_format(&c, in->conv);
	return 0;
}

static const char *envelope_code(int rc)
{
	return rc == ENVELOPE_E_TOO_LARGE ? NOTICE_TOO_LARGE : NOTICE_BAD_REQUEST;
}

void inbound_classify(const char *prefix, const char *topic, const void *payload,
                      size_t len, size_t body_max, struct inbound *out)
{
	struct inbound in;

	memset(&in, 0, sizeof(in));
	int rc = topic_parse_in(prefix, topic, strlen(topic), &in.topic);
	if (rc == TOPIC_E_PREFIX || rc == TOPIC_E_SENDER) {
		in.action = INBOUND_DROP;
	} else if (rc == TOPIC_E_KIND) {
		reject(&in, NOTICE_BAD_REQUEST, "unknown topic: use room/<room>, dm/<user>, "
		                                "typing/room/<room>, typing/dm/<user> or rpc");
	} else if (rc == TOPIC_E_TARGET) {
		reject(&in, NOTICE_BAD_REQUEST, "invalid room or user id");
	} else if (in.topic.kind == TOPIC_IN_RPC) {
		in.action = INBOUND_RPC;
	} else if (set_conv(&in) != 0) {
		/* rejected */
	} else if (in.topic.kind == TOPIC_IN_TYPING_ROOM || in.topic.kind == TOPIC_IN_TYPING_DM) {
		in.action = INBOUND_TYPING;
	} else {
		rc = envelope_parse_input(payload, len, body_max, &in.input);
		if (rc == ENVELOPE_OK)
			in.action = INBOUND_POST;
		else
			reject(&in, envelope_code(rc), envelope_strerror(rc));
	}
	*out = in;
}

void inbound_free(struct inbound *in)
{
	envelope_input_free(&in->input);
}

/* cJSON's quoting of one string, without building a document around it. */
static char *quote(const char *s)
{
	cJSON *str = cJSON_CreateString(s);
	char *out = str ? cJSON_PrintUnformatted(str) : NULL;
	cJSON_Delete(str);
	return out;
}

int inbound_message_parts(const struct inbound *in, const char *id, char **head,
                          char **tail)
{
	char *body = quote(in->input.body);
	char *cid = in->input.cid[0] ? quote(in->input.cid) : NULL;
	int rc = -1;

	*head = *tail = NULL;
	if (body == NULL || (in->input.cid[0] && cid == NULL))
		goto cleanup;
	/* ids are validated names: no quoting needed */
	if (asprintf(head, "{\"v\":1,\"type\":\"msg\",\"conv\":\"%s\",\"seq\":", in->conv) < 0) {
		*head = NULL;
		goto cleanup;
	}
	if (asprintf(tail, ",\"id\":\"%s\",\"from\":\"%s\",\"to\":\"%s\",\"body\":%s%s%s}", id,
	             in->topic.sender, in->topic.target, body, cid ? ",\"cid\":" : "",
	             cid ? cid : "") < 0) {
		*tail = NULL;
		free(*head);
		*head = NULL;
		goto cleanup;
	}
	rc = 0;
cleanup:
	free(body);
	free(cid);
	return rc;
}

char *inbound_notice(const char *code, const char *message, const char *topic,
                     const char *cid)
{
	return notice_json(code, message, topic, cid);
}

char *inbound_typing(const struct inbound *in)
{
	char *out = NULL;
	if (asprintf(&out, "{\"v\":1,\"type\":\"typing\",\"conv\":\"%s\",\"from\":\"%s\"}", in->conv,
	             in->topic.sender) < 0)
		return NULL;
	return out;
}
