/*
 * A set of user ids as one array of fixed-width names, for the plugin's
 * private-room member lists (rooms.c): sorted, it answers "is this user a
 * member?" by bisection with no allocation, which is what every delivery
 * asks; unsorted, it collects a list that arrives in pieces.
 */
#ifndef CHAT_MEMBERS_H
#define CHAT_MEMBERS_H

#include <stdbool.h>
#include <stddef.h>

#include "chat/names.h"

struct member_set {
	char (*v)[NAME_USER_MAX + 1];
	size_t n, cap;
};

void members_free(struct member_set *s);

/* Appends a valid user id of len bytes (not NUL-terminated), unsorted.
 * Returns 0, or -1 when out of memory (s unchanged). */
int members_append(struct member_set *s, const char *user, size_t len);

/* Sorts s and drops repeated names (a list gathered in pages may repeat). */
void members_sort(struct member_set *s);

/* On a sorted set: whether user is in it. */
bool members_has(const struct member_set *s, const char *user, size_t len);

/* On a sorted set: adds or removes user, keeping it sorted. Adding a
 * member or removing a non-member changes nothing. Returns 0, or -1 when
 * out of memory (s unchanged). */
int members_set(struct member_set *s, const char *user, size_t len, bool in);

#endif
