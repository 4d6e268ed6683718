/*
 * Identifiers of shared/PROTOCOL.md section 1: user ids, room ids and
 * conversation ids. Anything that does not match is rejected, never
 * mangled. Inputs carry lengths: MQTT topics and payloads are not C strings.
 */
#ifndef CHAT_NAMES_H
#define CHAT_NAMES_H

#include <stdbool.h>
#include <stddef.h>

#define NAME_USER_MAX 32
#define NAME_ROOM_MAX 64
/* the longer of "room:" + 64 (69) and "dm:" + 32 + ":" + 32 (68) */
#define NAME_CONV_MAX (5 + NAME_ROOM_MAX)

enum conv_kind { CONV_ROOM, CONV_DM };

struct conv_id {
	enum conv_kind kind;
	char a[NAME_ROOM_MAX + 1]; /* room id, or the smaller user id */
	char b[NAME_USER_MAX + 1]; /* the larger user id (DM only) */
};

bool name_user_valid(const char *s, size_t len);
bool name_room_valid(const char *s, size_t len);

/* Parses "room:<room>" or "dm:<a>:<b>" (a < b, a != b). Returns 0 or -1. */
int conv_parse(const char *s, size_t len, struct conv_id *out);

/* Writes the canonical id of c into buf (NAME_CONV_MAX + 1 bytes).
 * Returns its length. */
size_t conv_format(const struct conv_id *c, char *buf);

/* The DM conversation between two different valid users, ordered. */
int conv_dm(const char *u1, const char *u2, struct conv_id *out);

/* True when s[0..len) is well-formed UTF-8 (no overlongs, no surrogates,
 * nothing above U+10FFFF). */
bool utf8_valid(const unsigned char *s, size_t len);

#endif
