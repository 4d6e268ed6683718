/*
 * Private-room membership in memory (see rooms.h): a names_table of rooms,
 * each with the state in force (a sorted member_set), the deltas that
 * cannot follow it yet, and a state being gathered in pieces.
 */
#include <stdlib.h>
#include <string.h>

#include "chat/log.h"
#include "chat/names.h"
#include "members.h"
#include "names_table.h"
#include "rooms.h"

struct delta {
	uint64_t ver;
	bool add;
	char user[NAME_USER_MAX + 1];
};

struct room_entry {
	struct name_node node; /* first: the table's node is the entry */
	char name[NAME_ROOM_MAX + 1];
	bool have; /* a state is in force */
	bool private;
	uint64_t ver, epoch;       /* its version, and the table's epoch it came in */
	struct member_set members; /* sorted */
	struct delta *pending;     /* by version, no two alike */
	size_t npending;
	uint64_t floor; /* deltas up to this version were dropped (overflow) */
	/* a state arriving in pieces (begin, part..., end) */
	bool assembling, ended;
	uint64_t base, end_ver, words;
	struct member_set parts; /* unsorted, may repeat */
};

int rooms_init(struct room_table *t)
{
	t->epoch = 1;
	t->complete = false;
	t->source = NULL;
	return names_init(&t->names);
}

static void assembly_clear(struct room_entry *e)
{
	members_free(&e->parts);
	e->assembling = e->ended = false;
	e->base = e->end_ver = e->words = 0;
}

static void pending_clear(struct room_entry *e)
{
	free(e->pending);
	e->pending = NULL;
	e->npending = 0;
}

/* The room is closed (no state) until a new one arrives. */
static void forget_state(struct room_entry *e)
{
	members_free(&e->members);
	e->have = false;
}

static void entry_free(struct room_entry *e)
{
	members_free(&e->members);
	members_free(&e->parts);
	free(e->pending);
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

static struct room_entry *find(const struct room_table *t, const char *room, size_t n)
{
	return (struct room_entry *)names_find(&t->names, room, n);
}

/* The room's entry, made empty when there is none; NULL when out of memory. */
static struct room_entry *get(struct room_table *t, const char *room, size_t n)
{
	struct room_entry *e = find(t, room, n);
	if (e != NULL)
		return e;
	e = calloc(1, sizeof(*e));
	if (e == NULL)
		return NULL;
	memcpy(e->name, room, n);
	e->node.key = e->name;
	e->node.key_len = n;
	names_insert(&t->names, &e->node);
	return e;
}

/* Whether the state in force is this epoch's: deltas may follow it. */
static bool in_epoch(const struct room_table *t, const struct room_entry *e)
{
	return e->have && e->epoch == t->epoch;
}

static bool current(const struct room_table *t, const struct room_entry *e)
{
	return in_epoch(t, e) && e->npending == 0;
}

/* Applies the pending deltas that follow the state in force, one version
 * after the other, and drops those it already includes. An assembly
 * whose base the state has reached is no longer needed. */
static void chain(struct room_table *t, struct room_entry *e)
{
	size_t k = 0;

	if (!in_epoch(t, e))
		return;
	while (k < e->npending && e->pending[k].ver <= e->ver)
		k++;
	while (k < e->npending && e->pending[k].ver == e->ver + 1) {
		const struct delta *d = &e->pending[k];
		if (e->private && members_set(&e->members, d->user, strlen(d->user), d->add) != 0) {
			log_msg(LOG_WARN, "room %s: out of memory: closed until its next state",
			        e->name);
			forget_state(e);
			break;
		}
		e->ver++;
		k++;
	}
	if (k > 0) {
		memmove(e->pending, e->pending + k, (e->npending - k) * sizeof(*e->pending));
		e->npending -= k;
	}
	if (e->assembling && in_epoch(t, e) && e->base <= e->ver)
		assembly_clear(e);
}

/* Puts a whole state in force (taking m) unless the one in force is this
 * epoch's and as new. One in force from an earlier epoch gives way to any
 * version: it may be of another history (a Redis that failed over, or was
 * restored and counts again from 0). A state older than dropped deltas
 * could never be brought current. */
static void install(struct room_table *t, struct room_entry *e, bool private, uint64_t ver,
                    struct member_set *m)
{
	if ((in_epoch(t, e) && ver <= e->ver) || ver < e->floor) {
		members_free(m);
		return;
	}
	members_free(&e->members);
	e->members = *m;
	memset(m, 0, sizeof(*m));
	e->have = true;
	e->private = private;
	e->ver = ver;
	e->epoch = t->epoch;
	chain(t, e);
}

/* Swaps in the assembled state once its end has come and every delta
 * base+1..end_ver is here: the pieces, then those deltas in order. */
static void try_complete(struct room_table *t, struct room_entry *e)
{
	size_t i = 0, first;

	if (!e->assembling || !e->ended)
		return;
	while (i < e->npending && e->pending[i].ver <= e->base)
		i++;
	first = i;
	for (uint64_t want = e->base + 1; want <= e->end_ver; want++, i++)
		if (i >= e->npending || e->pending[i].ver != want)
			return; /* on its way: the same channel brings it */
	members_sort(&e->parts);
	for (size_t k = first; k < i; k++) {
		const struct delta *d = &e->pending[k];
		if (members_set(&e->parts, d->user, strlen(d->user), d->add) != 0) {
			log_msg(LOG_WARN, "room %s: out of memory: state dropped", e->name);
			assembly_clear(e);
			return;
		}
	}
	struct member_set m = e->parts;
	uint64_t ver = e->end_ver;
	memset(&e->parts, 0, sizeof(e->parts));
	assembly_clear(e);
	install(t, e, true, ver, &m);
}

/* Too many deltas wait: drop them all. No state older than the newest
 * of them can be brought current any more. */
static void overflow(struct room_entry *e, uint64_t ver)
{
	uint64_t top = e->npending ? e->pending[e->npending - 1].ver : 0;
	e->floor = top > ver ? top : ver;
	pending_clear(e);
	if (e->have && e->ver < e->floor)
		forget_state(e);
	if (e->assembling && e->base < e->floor)
		assembly_clear(e);
	log_msg(LOG_WARN,
	        "room %s: more than %d membership changes wait for its state: closed until a "
	        "state of version %llu or later",
	        e->name, ROOMS_PENDING_MAX, (unsigned long long)e->floor);
}

/* Keeps a delta, in version order, once. */
static void delta(struct room_table *t, struct room_entry *e, uint64_t ver, bool add,
                  const char *user, size_t len)
{
	if (ver <= e->floor || (in_epoch(t, e) && ver <= e->ver))
		return;
	size_t i = e->npending;
	while (i > 0 && e->pending[i - 1].ver > ver)
		i--;
	if (i > 0 && e->pending[i - 1].ver == ver)
		return;
	if (e->npending == ROOMS_PENDING_MAX) {
		overflow(e, ver);
		return;
	}
	struct delta *p = realloc(e->pending, (e->npending + 1) * sizeof(*p));
	if (p == NULL) {
		overflow(e, ver); /* as good as lost */
		return;
	}
	e->pending = p;
	memmove(p + i + 1, p + i, (e->npending - i) * sizeof(*p));
	p[i].ver = ver;
	p[i].add = add;
	memcpy(p[i].user, user, len);
	p[i].user[len] = '\0';
	e->npending++;
	chain(t, e);
	try_complete(t, e);
}

/* A new epoch: no state is current, nothing pending or half-gathered is
 * kept (a sync that follows sends everything read after this point). */
static void new_epoch(struct room_table *t)
{
	t->epoch++;
	t->complete = false;
	for (size_t i = 0; i < t->names.nbuckets; i++)
		for (struct name_node *n = t->names.buckets[i]; n; n = n->next) {
			struct room_entry *e = (struct room_entry *)n;
			pending_clear(e);
			assembly_clear(e);
			e->floor = 0;
		}
}

/* After "sync end": a room the sync did not send is gone (deleted while
 * its announcement was missed); a room still gathering stays. */
static bool stale(const struct name_node *n, void *ctx)
{
	const struct room_entry *e = (const struct room_entry *)n;
	return !in_epoch(ctx, e) && !e->assembling;
}

static void drop(struct name_node *n, void *ctx)
{
	(void)ctx;
	entry_free((struct room_entry *)n);
}

void rooms_source_gone(struct room_table *t, const void *from)
{
	if (t->source == NULL || t->source != from)
		return;
	t->source = NULL;
	new_epoch(t);
}

/* ---- parsing: every line is checked whole before it changes anything ---- */

struct line_ctx {
	struct room_table *t;
	const void *from;
};

static bool word_is(const char *w, size_t n, const char *s)
{
	return n == strlen(s) && memcmp(w, s, n) == 0;
}

/* A version: 1 to 19 digits (below 2^64). */
static bool number(const char **p, const char *end, uint64_t *out)
{
	const char *w;
	size_t n;
	if (!ctl_word(p, end, &w, &n) || n > 19)
		return false;
	uint64_t v = 0;
	for (size_t i = 0; i < n; i++) {
		if (w[i] < '0' || w[i] > '9')
			return false;
		v = v * 10 + (uint64_t)(w[i] - '0');
	}
	*out = v;
	return true;
}

/* The rest of the line as user ids into s (unsorted). */
static bool users(const char **p, const char *end, struct member_set *s)
{
	const char *w;
	size_t n;
	while (ctl_word(p, end, &w, &n))
		if (!name_user_valid(w, n) || members_append(s, w, n) != 0)
			return false;
	return *p == end; /* else an empty word: two spaces */
}

static bool sync_line(struct line_ctx *c, const char *p, const char *end)
{
	const char *w;
	size_t n;
	if (!ctl_word(&p, end, &w, &n) || p != end)
		return false;
	if (word_is(w, n, "begin")) {
		c->t->source = c->from;
		new_epoch(c->t);
		return true;
	}
	if (!word_is(w, n, "end"))
		return false;
	/* an end from a connection that did not begin this sync proves nothing */
	if (c->t->source == c->from) {
		c->t->complete = true;
		names_remove_if(&c->t->names, stale, drop, c->t);
	}
	return true;
}

static bool apply_line(const char *p, const char *end, void *ctx)
{
	struct line_ctx *c = ctx;
	struct room_table *t = c->t;
	struct member_set m = {0};
	const char *w, *room;
	size_t n, room_len;
	uint64_t v1, v2, words;

	if (end[-1] == ' ') /* a trailing space would hide an empty word */
		return false;
	if (!ctl_word(&p, end, &w, &n))
		return false;
	if (word_is(w, n, "sync"))
		return sync_line(c, p, end);
	if (!ctl_word(&p, end, &room, &room_len) || !name_room_valid(room, room_len))
		return false;
	if (!number(&p, end, &v1))
		goto bad;

	if (word_is(w, n, "room")) {
		const char *kind;
		size_t kn;
		if (!ctl_word(&p, end, &kind, &kn))
			goto bad;
		bool private = word_is(kind, kn, "private");
		if (!private && !(word_is(kind, kn, "public") && p == end))
			goto bad;
		if (private && !users(&p, end, &m))
			goto bad;
		struct room_entry *e = get(t, room, room_len);
		if (e == NULL)
			goto nomem;
		members_sort(&m);
		install(t, e, private, v1, &m);
		return true;
	}
	if (word_is(w, n, "add") || word_is(w, n, "del")) {
		const char *u;
		size_t un;
		if (!ctl_word(&p, end, &u, &un) || p != end || !name_user_valid(u, un) || v1 == 0)
			return false;
		struct room_entry *e = get(t, room, room_len);
		if (e == NULL)
			goto nomem;
		delta(t, e, v1, w[0] == 'a', u, un);
		return true;
	}
	if (word_is(w, n, "begin")) {
		if (p != end)
			return false;
		struct room_entry *e = get(t, room, room_len);
		if (e == NULL)
			goto nomem;
		if (v1 < e->floor || (in_epoch(t, e) && v1 <= e->ver))
			return true; /* the state in force is as new */
		assembly_clear(e);
		e->assembling = true;
		e->base = v1;
		return true;
	}
	if (word_is(w, n, "part")) {
		if (!users(&p, end, &m) || m.n == 0)
			goto bad;
		struct room_entry *e = find(t, room, room_len);
		/* a piece of another (older) assembly than the one under way is ignored */
		if (e && e->assembling && !e->ended && e->base == v1) {
			for (size_t i = 0; i < m.n; i++)
				if (members_append(&e->parts, m.v[i], strlen(m.v[i])) != 0) {
					log_msg(LOG_WARN, "room %s: out of memory: state dropped",
					        e->name);
					assembly_clear(e);
					break;
				}
			if (e->assembling)
				e->words += m.n;
		}
		members_free(&m);
		return true;
	}
	if (word_is(w, n, "end")) {
		if (!number(&p, end, &v2) || !number(&p, end, &words) || p != end || v2 < v1)
			return false;
		struct room_entry *e = find(t, room, room_len);
		if (e && e->assembling && !e->ended && e->base == v1) {
			if (e->words != words) {
				log_msg(LOG_WARN,
				        "room %s: %llu members sent, %llu received: state dropped",
				        e->name, (unsigned long long)words,
				        (unsigned long long)e->words);
				assembly_clear(e);
				return true;
			}
			e->ended = true;
			e->end_ver = v2;
			try_complete(t, e);
		}
		return true;
	}
bad:
	members_free(&m);
	return false;
nomem:
	/* the room's line is lost: no room without a state is open any more */
	members_free(&m);
	t->complete = false;
	log_msg(LOG_WARN, "out of memory: a room state was lost: rooms without one are closed "
	                  "until the next sync");
	return true;
}

int rooms_apply(struct room_table *t, const void *from, const char *payload, size_t len)
{
	struct line_ctx c = {t, from};
	return ctl_lines(payload, len, apply_line, &c);
}

bool rooms_visible(void *ctx, const char *user, size_t user_len, const char *room, size_t room_len,
                   enum acl_access access)
{
	const struct room_table *t = ctx;
	const struct room_entry *e = find(t, room, room_len);

	if (e == NULL) /* a public room, or a private one not sent yet */
		return access != ACL_READ || t->complete;
	if (!current(t, e))
		return access != ACL_READ;
	if (!e->private)
		return true;
	return members_has(&e->members, user, user_len);
}
