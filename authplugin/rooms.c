/*
 * Private-room membership in memory (see rooms.h): a names_table of rooms,
 * each with its members as a sorted array searched by bisection.
 */
#include <stdlib.h>
#include <string.h>

#include "chat/names.h"
#include "names_table.h"
#include "rooms.h"

struct room_entry {
	struct name_node node; /* first: the table's node is the entry */
	char name[NAME_ROOM_MAX + 1];
	bool private;
	uint64_t version;
	char (*members)[NAME_USER_MAX + 1]; /* sorted */
	size_t nmembers;
};

int rooms_init(struct room_table *t)
{
	return names_init(&t->names);
}

static void entry_free(struct room_entry *e)
{
	free(e->members);
	free(e);
}

static void node_free(struct name_node *n)
{
	entry_free((struct room_entry *)n);
}

void rooms_free(struct room_table *t)
{
	names_free(&t->names, node_free);
}

static int cmp_member(const void *a, const void *b)
{
	return strcmp(a, b);
}

/* Parses one line into a new entry; NULL when malformed or out of memory. */
static struct room_entry *parse_line(const char *p, const char *end)
{
	const char *w;
	size_t n;
	char num[24];
	struct room_entry *e = calloc(1, sizeof(*e));

	if (e == NULL)
		return NULL;
	if (end[-1] == ' ') /* a trailing space would hide an empty word */
		goto bad;
	if (!ctl_word(&p, end, &w, &n) || n != 4 || memcmp(w, "room", 4) != 0)
		goto bad;
	if (!ctl_word(&p, end, &w, &n) || !name_room_valid(w, n))
		goto bad;
	memcpy(e->name, w, n);
	e->node.key = e->name;
	e->node.key_len = n;
	if (!ctl_word(&p, end, &w, &n) || n > 19)
		goto bad;
	for (size_t i = 0; i < n; i++) /* the payload is not NUL-terminated */
		if (w[i] < '0' || w[i] > '9')
			goto bad;
	memcpy(num, w, n);
	num[n] = '\0';
	e->version = strtoull(num, NULL, 10);
	if (!ctl_word(&p, end, &w, &n))
		goto bad;
	if (n == 6 && memcmp(w, "public", 6) == 0) {
		return p == end ? e : (entry_free(e), NULL);
	}
	if (n != 7 || memcmp(w, "private", 7) != 0)
		goto bad;
	e->private = true;
	size_t cap = 0;
	while (ctl_word(&p, end, &w, &n)) {
		if (!name_user_valid(w, n))
			goto bad;
		if (e->nmembers == cap) {
			cap = cap ? cap * 2 : 8;
			void *nm = realloc(e->members, cap * sizeof(*e->members));
			if (nm == NULL)
				goto bad;
			e->members = nm;
		}
		memcpy(e->members[e->nmembers], w, n);
		e->members[e->nmembers++][n] = '\0';
	}
	if (p != end)
		goto bad; /* an empty word: two spaces or a trailing space */
	if (e->nmembers)
		qsort(e->members, e->nmembers, sizeof(*e->members), cmp_member);
	return e;
bad:
	entry_free(e);
	return NULL;
}

/* Puts e in place of the room's state unless that one is newer. */
static void install(struct room_table *t, struct room_entry *e)
{
	struct name_node **link = names_link(&t->names, e->node.key, e->node.key_len);
	struct room_entry *have = (struct room_entry *)*link;

	if (have == NULL) {
		names_insert(&t->names, &e->node);
	} else if (have->version > e->version) {
		entry_free(e);
	} else {
		e->node.next = have->node.next;
		*link = &e->node;
		entry_free(have);
	}
}

static bool apply_line(const char *p, const char *end, void *t)
{
	struct room_entry *e = parse_line(p, end);
	if (e == NULL)
		return false;
	install(t, e);
	return true;
}

int rooms_apply(struct room_table *t, const char *payload, size_t len)
{
	return ctl_lines(payload, len, apply_line, t);
}

bool rooms_visible(void *ctx, const char *user, size_t user_len, const char *room,
                   size_t room_len)
{
	const struct room_table *t = ctx;
	const struct room_entry *e = (const struct room_entry *)names_find(&t->names, room, room_len);
	char key[NAME_USER_MAX + 1];

	if (e == NULL || !e->private)
		return true;
	if (user_len > NAME_USER_MAX || e->nmembers == 0)
		return false;
	memcpy(key, user, user_len);
	key[user_len] = '\0';
	return bsearch(key, e->members, e->nmembers, sizeof(*e->members), cmp_member) != NULL;
}
