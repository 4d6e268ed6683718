/*
 * The topic scheme of shared/PROTOCOL.md section 4, under a configurable
 * prefix (default "chat"). Parsing of what clients publish under
 * <prefix>/in/<me>/..., and the names of the topics the server publishes.
 */
#ifndef CHAT_TOPIC_H
#define CHAT_TOPIC_H

#include <stddef.h>

#include "chat/names.h"

#define TOPIC_PREFIX_MAX 64

enum topic_in_kind {
	TOPIC_IN_ROOM,        /* <p>/in/<me>/room/<room> */
	TOPIC_IN_DM,          /* <p>/in/<me>/dm/<peer> */
	TOPIC_IN_TYPING_ROOM, /* <p>/in/<me>/typing/room/<room> */
	TOPIC_IN_TYPING_DM,   /* <p>/in/<me>/typing/dm/<peer> */
	TOPIC_IN_RPC,         /* <p>/in/<me>/rpc */
};

enum topic_err {
	TOPIC_OK = 0,
	TOPIC_E_PREFIX = -1, /* not under <prefix>/in/ */
	TOPIC_E_SENDER = -2, /* sender is not a valid user id */
	TOPIC_E_KIND = -3,   /* unknown kind after the sender */
	TOPIC_E_TARGET = -4, /* room or peer id invalid */
};

struct topic_in {
	enum topic_in_kind kind;
	char sender[NAME_USER_MAX + 1];
	char target[NAME_ROOM_MAX + 1]; /* room or peer; empty for rpc */
};

/* Parses an inbound topic of len bytes. Fills out only on TOPIC_OK; on
 * TOPIC_E_KIND or TOPIC_E_TARGET out->sender is still set so the caller can
 * send the sender a notice. */
int topic_parse_in(const char *prefix, const char *topic, size_t len,
                   struct topic_in *out);

/* Writes "<prefix>/room/<room>" plus "/<leaf>" when leaf is not NULL.
 * Returns the length, or -1 when buf (size bytes) is too small. */
int topic_room(const char *prefix, const char *room, const char *leaf,
               char *buf, size_t size);
/* "<prefix>/user/<user>/<leaf>" (leaf: inbox, rpc, notice). */
int topic_user(const char *prefix, const char *user, const char *leaf,
               char *buf, size_t size);
/* "<prefix>/presence/<user>" */
int topic_presence(const char *prefix, const char *user, char *buf, size_t size);

/* Whether topic is a valid MQTT 5 Response Topic for caller's requests:
 * <prefix>/user/<caller>/ followed by one or more non-empty levels, no
 * wildcards, at most 200 bytes. */
int topic_reply_ok(const char *prefix, const char *caller, const char *topic);

const char *topic_strerror(int err);

#endif
