/*
 * The plugin's copy of private-room membership, answered from memory on
 * every subscribe and delivery. The bridge keeps it current by publishing
 * room states to $CONTROL/chat/v1, one line per room:
 *
 *     room <room> <version> public
 *     room <room> <version> private [<member> ...]
 *
 * A state replaces the room's previous one unless its version is older, so
 * states may arrive in any order. A room the plugin has no state for is
 * treated as public: a private room is only ever created through the bridge,
 * which sends its state before it delivers any of its messages.
 */
#ifndef CHAT_ROOMS_H
#define CHAT_ROOMS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "names_table.h"

struct room_table {
	struct names_table names; /* of struct room_entry */
};

int rooms_init(struct room_table *t);
void rooms_free(struct room_table *t);

/* Applies every line of a control payload (len bytes, not NUL-terminated).
 * Returns the number of lines applied, or -1 when a line is malformed:
 * lines before it stay applied, nothing of it or after it is. */
int rooms_apply(struct room_table *t, const char *payload, size_t len);

/* Whether user may see room; an acl_room_visible_fn with ctx = the table. */
bool rooms_visible(void *ctx, const char *user, size_t user_len, const char *room,
                   size_t room_len);

#endif
