/*
 * The chat envelope as a device reads it: one JSON object per MQTT message
 * (PROTOCOL.md section 5), notices, and request replies (section 6), all
 * decoded in place with fw_json. Unknown keys are skipped, so the server
 * may add fields; a known key with the wrong type, a duplicate known key,
 * or a message without the fields a device needs is refused.
 */
#ifndef FW_ENV_H
#define FW_ENV_H

#include <stdint.h>

#include "fw_json.h"

/* "dm:" + 32 + ":" + 32, or "room:" + 64. */
#define FW_CONV_MAX 69

enum fw_env_kind {
	FW_ENV_OTHER = 0, /* typing, events: valid, nothing for a device */
	FW_ENV_MSG,
	FW_ENV_NOTICE,
	/* (1.1) an edit or delete event, or a deleted message: it takes its
	 * seq in the conversation and shows nothing */
	FW_ENV_SILENT,
};

struct fw_env {
	enum fw_env_kind kind;
	struct fw_str type, conv, id, from, to, body, cid; /* msg */
	struct fw_str code, message, topic;                /* notice */
	uint32_t seq;
	uint64_t ts;
};

/* Parses the object at the cursor. A msg must have conv (a valid
 * conversation id), seq >= 1 (32 bits), from and body; a notice code. */
int fw_env_parse(struct fw_json *j, struct fw_env *e);
/* A whole MQTT payload holding exactly one envelope. */
int fw_env_parse_payload(char *buf, size_t len, struct fw_env *e);

/* A request reply. On success with is_error 0, messages (when has_messages)
 * is a cursor on result.messages, to be walked with fw_env_next(). */
struct fw_reply {
	struct fw_str id;
	int is_error;
	struct fw_str code, message;
	int has_messages;
	struct fw_json messages;
};

int fw_reply_parse(char *buf, size_t len, struct fw_reply *r);
/* The next message of r->messages: 1 with *e filled, 0 after the last. */
int fw_env_next(struct fw_reply *r, int first, struct fw_env *e);

/* Whether s is a conversation id: room:<room> or dm:<a>:<b> with a < b. */
int fw_conv_valid(const char *s, size_t n);
/* User and room id rules (PROTOCOL.md section 1). */
int fw_user_valid(const char *s, size_t n);
int fw_room_valid(const char *s, size_t n);

#endif
