/*
 * What an edit or a deletion leaves behind in the files of the store and
 * of Redis, taken out within a bound (shared/PROTOCOL.md 1.1 section 5:
 * the text is gone from storage). The persistence worker, which applies
 * every amend to the store, notes each one here and calls wipe_tick once
 * a turn; so one node at a time (the lease holder) does this.
 *
 * The copies of a message's original text, and where each goes:
 *   - the store: SQLite overwrites freed content (secure_delete), and
 *     store_scrub checkpoints the WAL into the database and truncates it
 *     (an older page image in the WAL would keep the text); at the next
 *     tick after the amend, again each tick while a reader holds it back;
 *   - chat:recent:<conv>: the amend script rewrites the entry at once;
 *   - chat:stream: the message's entry is trimmed once stored and
 *     delivered (persist.c, trim). Redis frees a stream node (up to
 *     stream-node-max-entries, default 100, entries) only when all of it
 *     is trimmed; until then the trimmed entries' bytes stay in memory,
 *     and an RDB or AOF rewrite writes the node as it is. The stream is
 *     clear of the text once it is empty, or once every entry up to a
 *     node's length after the amend is trimmed;
 *   - Redis's AOF (the commands that wrote the text) and RDB: after the
 *     stream is clear, BGREWRITEAOF (when the AOF is on) and BGSAVE
 *     (when RDB snapshots are configured), at most once per
 *     redis_rewrite_interval seconds (0: never asked; Redis's own
 *     auto-aof-rewrite settings still apply). Redis replaces the files
 *     when the rewrite ends and deletes the old ones.
 */
#ifndef CHAT_BRIDGE_WIPE_H
#define CHAT_BRIDGE_WIPE_H

#include <stdbool.h>

#include <hiredis/hiredis.h>

#include "chat/config.h"
#include "store.h"

struct wipe {
	bool store_due;      /* an amend is stored; the store's files not yet scrubbed */
	bool redis_due;      /* ... Redis's files not yet rewritten */
	long long added_at;  /* chat:stream's entries-added after the amend; -1: not read */
	long node_entries;   /* Redis's stream-node-max-entries; 0: unknown or unbounded */
	bool node_known;     /* node_entries was asked */
	double next_tick;    /* monotonic seconds */
	double next_rewrite; /* no rewrite asked before this */
	bool refused_logged; /* Redis refused a rewrite: said once */
	unsigned gen;        /* amends noted */
	/* a rewrite round under way: what it still has to ask for */
	bool round, aof_todo, rdb_todo;
	unsigned round_gen; /* gen when the round started */
};

/* An edit, a deletion or a purge was stored: its text is to go. */
void wipe_note(struct wipe *w);

/* Whether chat:stream holds no node that may keep an entry from before
 * the amend: it is empty, or every entry up to one node's length after
 * the amend's is trimmed (removed = entries-added - length). node_entries
 * 0: only an empty stream is known to be clear. Pure. */
bool wipe_stream_clear(long long length, long long removed, long long added_at, long node_entries);

/* Does what is due, at most once a second: scrubs the store, then, once
 * the stream is clear and the interval allows, asks Redis to rewrite its
 * files. Everything not done now is tried again at a later tick. */
void wipe_tick(struct wipe *w, redisContext *r, struct store *s, const struct chat_config *cfg);

#endif
