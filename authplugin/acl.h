/*
 * Topic rules of shared/PROTOCOL.md section 4 as plain functions, so they
 * can be tested without a broker. The plugin compiles what it needs per
 * connection at CONNECT (struct acl_client) and each check is a few string
 * compares on the topic: no allocation, no I/O.
 */
#ifndef CHAT_ACL_H
#define CHAT_ACL_H

#include <stdbool.h>
#include <stddef.h>

#include "chat/names.h"
#include "chat/token.h"

enum acl_access { ACL_READ, ACL_WRITE, ACL_SUBSCRIBE };

/* Where services send room states to the plugin (rooms.h). */
#define ACL_CONTROL_TOPIC "$CONTROL/chat/v1"

/* Whether user may subscribe to (ACL_SUBSCRIBE) or receive (ACL_READ)
 * room's topics. Rooms are public until the bridge (membership for private
 * rooms) installs a lookup; it must answer from memory. */
typedef bool (*acl_room_visible_fn)(void *ctx, const char *user, size_t user_len,
                                    const char *room, size_t room_len,
                                    enum acl_access access);

struct acl_rules {
	const char *prefix; /* "chat" */
	size_t prefix_len;
	acl_room_visible_fn room_visible; /* NULL: every room is public */
	void *room_ctx;
};

struct acl_client {
	enum token_role role;
	char user[NAME_USER_MAX + 1];
	size_t user_len;
};

/* Decides one access by client to topic (a topic for READ and WRITE, a
 * filter for SUBSCRIBE). retain is the publish's retain flag (WRITE). */
bool acl_allowed(const struct acl_rules *r, const struct acl_client *c,
                 enum acl_access access, const char *topic, bool retain);

/* The client id rule of section 3: the user id, "<user>:<suffix>" (suffix
 * 1..64 printable ASCII, no '+', '#', '/'), or an id the broker assigned
 * to an empty one ("auto-" and a 36-character UUID). */
bool acl_client_id_ok(const char *user, const char *client_id);

#endif
