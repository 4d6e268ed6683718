/*
 * What the bridge makes of one publish under <prefix>/in/: a plain,
 * I/O-free decision (post a message, relay typing, run a request, or
 * reject with a notice), and the JSON it needs for it. The Redis and MQTT
 * calls that carry the decision out live in bridge.c.
 */
#ifndef CHAT_INBOUND_H
#define CHAT_INBOUND_H

#include <stddef.h>

#include "chat/envelope.h"
#include "chat/names.h"
#include "chat/topic.h"

enum inbound_action {
	INBOUND_POST,   /* a message: sequence and fan out */
	INBOUND_TYPING, /* relay, never stored */
	INBOUND_RPC,    /* a request */
	INBOUND_REJECT, /* send the sender a notice */
	INBOUND_DROP,   /* not ours to answer (no valid sender) */
};

/* Notice codes, shared/PROTOCOL.md sections 4 and 6. */
#define NOTICE_BAD_REQUEST "bad_request"
#define NOTICE_TOO_LARGE "too_large"
#define NOTICE_FORBIDDEN "forbidden"
#define NOTICE_NOT_FOUND "not_found"
#define NOTICE_RATE_LIMITED "rate_limited"
#define NOTICE_UNAVAILABLE "unavailable"

struct inbound {
	enum inbound_action action;
	struct topic_in topic;
	char conv[NAME_CONV_MAX + 1];
	const char *code;    /* INBOUND_REJECT: a NOTICE_* code */
	const char *message; /* INBOUND_REJECT: human-readable reason */
	struct chat_input input; /* INBOUND_POST: body and cid */
};

/* Classifies one publish. For INBOUND_POST the caller frees with
 * inbound_free. */
void inbound_classify(const char *prefix, const char *topic, const void *payload,
                      size_t len, size_t body_max, struct inbound *out);
void inbound_free(struct inbound *in);

/* The message JSON around the two values only Redis knows: the caller's
 * part ends right before seq ("...,\"seq\":") and resumes right after ts
 * (",\"id\":..."). Both malloc'd; NULL when out of memory. */
int inbound_message_parts(const struct inbound *in, const char *id, char **head,
                          char **tail);

/* {"v":1,"type":"notice","code":...,"message":...,"topic":...[,"cid":...]} */
char *inbound_notice(const char *code, const char *message, const char *topic,
                     const char *cid);

/* {"v":1,"type":"typing","conv":...,"from":...} */
char *inbound_typing(const struct inbound *in);

#endif
