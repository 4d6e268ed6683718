/*
 * A chained hash table keyed by short byte strings, for the plugin's
 * copies of control state (rooms.c, revoked.c). Entries embed a
 * struct name_node whose key points into the entry itself; the table
 * never allocates or frees entries, only its bucket array. Plus the two
 * parsing steps every control line shares.
 */
#ifndef CHAT_NAMES_TABLE_H
#define CHAT_NAMES_TABLE_H

#include <stdbool.h>
#include <stddef.h>

struct name_node {
	struct name_node *next;
	const char *key; /* not NUL-terminated */
	size_t key_len;
};

struct names_table {
	struct name_node **buckets;
	size_t nbuckets; /* power of two */
	size_t count;
};

int names_init(struct names_table *t);

/* Calls free_node on every node (if given), then frees the buckets. */
void names_free(struct names_table *t, void (*free_node)(struct name_node *));

struct name_node *names_find(const struct names_table *t, const char *key, size_t n);

/* The link that holds the node of key, or the empty link at its chain's
 * end: *names_link(...) == NULL when absent. Valid until the next insert. */
struct name_node **names_link(struct names_table *t, const char *key, size_t n);

/* Adds node (its key must not be in the table yet). */
void names_insert(struct names_table *t, struct name_node *node);

/* Takes node (which is in the table) out of it. */
void names_unlink(struct names_table *t, struct name_node *node);

/* Unlinks, then passes to drop(node, ctx), every node for which
 * gone(node, ctx) holds. Returns how many. */
size_t names_remove_if(struct names_table *t, bool (*gone)(const struct name_node *, void *),
                       void (*drop)(struct name_node *, void *), void *ctx);

/* Splits the next space-separated word off [*p, end); false when none is
 * left or it is empty (two spaces). */
bool ctl_word(const char **p, const char *end, const char **w, size_t *n);

/* Calls line(start, end, ctx) for each non-empty line of payload (len
 * bytes, not NUL-terminated). Returns how many, or -1 as soon as line
 * returns false: lines before it stay applied. */
int ctl_lines(const char *payload, size_t len, bool (*line)(const char *, const char *, void *),
              void *ctx);

#endif
