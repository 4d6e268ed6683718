/*
 * The plugin's copy of private-room membership, answered from memory on
 * every subscribe and delivery. The bridge keeps it current by publishing
 * lines to $CONTROL/chat/v1 (several per message, each message well below
 * the broker's packet limit):
 *
 *     sync begin                          a full resend starts
 *     room <room> <ver> private [<m>...]  a whole state in one line
 *     room <room> <ver> public            a deleted room (no members)
 *     begin <room> <base>                 a state in pieces: read from <base>,
 *     part <room> <base> <m>...           its members, in any number of lines,
 *     end <room> <base> <ver> <words>     the last piece: the state is <ver>
 *     add <room> <ver> <user>             one membership change (a delta)
 *     del <room> <ver> <user>
 *     sync end                            every private room has been sent
 *
 * Versions count a room's changes (chat:room:<room>:ver in Redis): each add
 * or del is the version after the one before it. A state in pieces was
 * read across several Redis calls, while changes went on: its pieces are
 * the members at <base> give or take the changes <base>+1..<ver>, which
 * the plugin applies on top (it has them as deltas) before it swaps the
 * state in. So deltas and states may arrive in any order: a delta that
 * does not follow the state in force waits (up to ROOMS_PENDING_MAX per
 * room) for the state it follows.
 *
 * Nothing is "unknown = open". A room's state is *current* when it was
 * installed since the last "sync begin" and no delta is missing after it;
 * the set of rooms is *complete* from "sync end" until the connection
 * that sent it (the bridge's) ends or sends "sync begin" again.
 *   deliveries (READ): a current private room to its members, a current
 *     public one to everyone, a room with no state to everyone only while
 *     the set is complete, anything else to no one;
 *   subscriptions: refused only for a non-member of a current private
 *     room. A subscription receives nothing the READ check refuses, so
 *     accepting one while the state is unsure leaks nothing, and refusing
 *     a member then would break clients that never subscribe again.
 */
#ifndef CHAT_ROOMS_H
#define CHAT_ROOMS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "acl.h"
#include "names_table.h"

/* Deltas a room keeps while they cannot be applied yet. Past this, they
 * are dropped and the room stays closed until a state read after them. */
#define ROOMS_PENDING_MAX 1024

struct room_table {
	struct names_table names; /* of struct room_entry */
	uint64_t epoch;           /* bumped by "sync begin" and by the sender leaving */
	bool complete;            /* "sync end" came, from the connection still here */
	const void *source;       /* that connection (the bridge's), or NULL */
};

int rooms_init(struct room_table *t);
void rooms_free(struct room_table *t);

/* Applies every line of a control payload (len bytes, not NUL-terminated)
 * sent by connection from. Returns the number of lines applied, or -1 when
 * a line is malformed: lines before it stay applied, nothing of it or
 * after it is. Out of memory for a room drops what it had (closed until a
 * new state arrives), never the line's meaning. */
int rooms_apply(struct room_table *t, const void *from, const char *payload, size_t len);

/* Connection from has ended: if it sent the last "sync begin", every state
 * stops being current and the set incomplete until the next sync. */
void rooms_source_gone(struct room_table *t, const void *from);

/* Whether user may subscribe to (ACL_SUBSCRIBE) or receive (ACL_READ)
 * room's topics; an acl_room_visible_fn with ctx = the table. */
bool rooms_visible(void *ctx, const char *user, size_t user_len, const char *room, size_t room_len,
                   enum acl_access access);

#endif
