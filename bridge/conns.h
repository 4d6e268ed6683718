/*
 * The bridge's copy of its broker's live connections, as the plugin
 * reports them on <prefix>/sys/conn ("up|down <user> <conn> <role>", conn
 * = "<boot>-<n>") and <prefix>/sys/boot. The bridge sees every report,
 * Redis or not; Redis's presence of this node (chat:node:<node>:conns) is
 * rewritten from this copy whenever the command link is ready again
 * (presence.c), so connections that came or went while Redis was away,
 * failing over, or reloading its scripts are right again. Pure, no I/O.
 */
#ifndef CHAT_CONNS_H
#define CHAT_CONNS_H

#include <stddef.h>

struct conns {
	void *root; /* tsearch(3) tree of "<user> <conn>" strings */
	size_t n;
};

/* Adds a live connection. Returns 0, or -1 when out of memory. */
int conns_up(struct conns *c, const char *user, const char *conn);
/* Removes one (nothing when it is not there). */
void conns_down(struct conns *c, const char *user, const char *conn);
/* The broker started with boot id boot: the connections of its earlier
 * boots are gone. */
void conns_keep_boot(struct conns *c, const char *boot);
/* Calls fn for each, in byte order of "<user> <conn>" (item is that
 * string, user_len the length of its user part). */
void conns_each(const struct conns *c, void (*fn)(const char *item, size_t user_len, void *ctx),
                void *ctx);
void conns_free(struct conns *c);

#endif
