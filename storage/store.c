/*
 * The store's front door (see store.h): picks the backend from the URL,
 * checks every argument once for both backends, parses message JSON into
 * fields, and holds the helpers the backends share (store_impl.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "store_impl.h"

int store__fail(struct store *s, int rc, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(s->errmsg, sizeof(s->errmsg), fmt, ap);
	va_end(ap);
	return rc;
}

double store__now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

int store_open_timeout(const char *url, int timeout_ms, struct store **out, char *err,
                       size_t errlen)
{
	int rc;

	if (out == NULL)
		return STORE_E_BAD;
	*out = NULL;
	if (err && errlen)
		err[0] = '\0';
	if (url == NULL) {
		snprintf(err, err ? errlen : 0, "no store URL");
		return STORE_E_URL;
	}
	if (timeout_ms < 1) {
		snprintf(err, err ? errlen : 0, "store timeout %d ms: must be at least 1",
		         timeout_ms);
		return STORE_E_BAD;
	}
	if (strncmp(url, "sqlite:", 7) == 0)
		rc = store__sqlite_open(url + 7, timeout_ms, out, err, errlen);
	else if (strncmp(url, "mongodb://", 10) == 0 || strncmp(url, "mongodb+srv://", 14) == 0)
		rc = store__mongo_open(url, timeout_ms, out, err, errlen);
	else {
		snprintf(
		    err, err ? errlen : 0,
		    "store URL '%.64s' names no backend (sqlite:PATH or mongodb://host:port/db)",
		    url);
		return STORE_E_URL;
	}
	if (rc == STORE_OK)
		(*out)->timeout_ms = timeout_ms;
	return rc;
}

int store_open(const char *url, struct store **out, char *err, size_t errlen)
{
	return store_open_timeout(url, STORE_TIMEOUT_DEFAULT_MS, out, err, errlen);
}

/* ---- the lazy handle: a store opened at its first call ---- */

struct lazy_store {
	struct store base;
	struct store *real; /* NULL until an open succeeded */
	char *url;
};

static void lazy_close(struct store *s)
{
	struct lazy_store *l = (struct lazy_store *)s;

	store_close(l->real);
	free(l->url);
	free(l);
}

static const struct store_ops lazy_ops = {.name = "lazy", .close = lazy_close};

int store_open_lazy(const char *url, int timeout_ms, struct store **out, char *err, size_t errlen)
{
	struct lazy_store *l;

	if (out == NULL)
		return STORE_E_BAD;
	*out = NULL;
	if (err && errlen)
		err[0] = '\0';
	if (url == NULL ||
	    !((strncmp(url, "sqlite:", 7) == 0 && url[7] != '\0') ||
	      strncmp(url, "mongodb://", 10) == 0 || strncmp(url, "mongodb+srv://", 14) == 0)) {
		snprintf(
		    err, err ? errlen : 0,
		    "store URL '%.64s' names no backend (sqlite:PATH or mongodb://host:port/db)",
		    url ? url : "");
		return STORE_E_URL;
	}
	if (timeout_ms < 1) {
		snprintf(err, err ? errlen : 0, "store timeout %d ms: must be at least 1",
		         timeout_ms);
		return STORE_E_BAD;
	}
	l = calloc(1, sizeof(*l));
	if (l == NULL || (l->url = strdup(url)) == NULL) {
		free(l);
		snprintf(err, err ? errlen : 0, "store: out of memory");
		return STORE_E_NOMEM;
	}
	l->base.ops = &lazy_ops;
	l->base.timeout_ms = timeout_ms;
	*out = &l->base;
	return STORE_OK;
}

/* The handle a call works on: s itself, or a lazy handle's store, opened
 * now if need be. NULL when that open failed (the reason is in s). */
static struct store *resolve(struct store *s)
{
	struct lazy_store *l = (struct lazy_store *)s;
	char err[sizeof(s->errmsg)];

	if (s->ops != &lazy_ops || l->real)
		return s->ops != &lazy_ops ? s : l->real;
	if (store_open_timeout(l->url, s->timeout_ms, &l->real, err, sizeof(err)) != STORE_OK) {
		snprintf(s->errmsg, sizeof(s->errmsg), "%s", err);
		return NULL;
	}
	s->errmsg[0] = '\0';
	return l->real;
}

void store_close(struct store *s)
{
	if (s)
		s->ops->close(s);
}

const char *store_strerror(int err)
{
	switch (err) {
	case STORE_OK: return "ok";
	case STORE_E_URL: return "bad store URL";
	case STORE_E_DOWN: return "the store did not answer";
	case STORE_E_CONFLICT: return "exists already";
	case STORE_E_NOT_FOUND: return "not found";
	case STORE_E_NOMEM: return "out of memory";
	case STORE_E_BAD: return "invalid argument";
	}
	return "unknown store error";
}

const char *store_errmsg(const struct store *s)
{
	if (s && s->ops == &lazy_ops && ((const struct lazy_store *)s)->real)
		return ((const struct lazy_store *)s)->real->errmsg;
	return s ? s->errmsg : "no store";
}

static bool user_ok(const char *u)
{
	return u && name_user_valid(u, strnlen(u, NAME_USER_MAX + 1));
}

static bool room_ok(const char *r)
{
	return r && name_room_valid(r, strnlen(r, NAME_ROOM_MAX + 1));
}

static bool conv_ok(const char *c)
{
	struct conv_id id;

	return c && conv_parse(c, strnlen(c, NAME_CONV_MAX + 1), &id) == 0;
}

/* Every public entry point starts here: a NULL handle is a bad argument;
 * a lazy handle becomes its store (STORE_E_DOWN when it cannot be opened);
 * a call starts with no error recorded and its deadline set (bounded:
 * also its run time, not only its waits). */
#define ENTER_BOUNDED(s, bound)                                                                    \
	do {                                                                                       \
		if ((s) == NULL)                                                                   \
			return STORE_E_BAD;                                                        \
		struct store *real_ = resolve(s);                                                  \
		if (real_ == NULL)                                                                 \
			return STORE_E_DOWN;                                                       \
		(s) = real_;                                                                       \
		(s)->errmsg[0] = '\0';                                                             \
		(s)->bounded = (bound);                                                            \
		(s)->deadline = store__now() + (s)->timeout_ms / 1000.0;                           \
	} while (0)
#define ENTER(s) ENTER_BOUNDED(s, true)

int store_ping(struct store *s)
{
	ENTER(s);
	return s->ops->ping(s);
}

/* A string member as valid UTF-8 (cJSON does not check; BSON requires
 * it), else NULL. */
static const char *json_str(const cJSON *o, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

	if (!cJSON_IsString(v) ||
	    !utf8_valid((const unsigned char *)v->valuestring, strlen(v->valuestring)))
		return NULL;
	return v->valuestring;
}

/* A JSON number that is a whole number in [lo, hi]; hi <= 2^53. */
static bool json_int(const cJSON *o, const char *key, double lo, double hi, double *out)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

	if (!cJSON_IsNumber(v) || v->valuedouble < lo || v->valuedouble > hi ||
	    v->valuedouble != (double)(int64_t)v->valuedouble)
		return false;
	*out = v->valuedouble;
	return true;
}

/* Parses msg's JSON into f (pointing into *tree, which the caller frees
 * with cJSON_Delete). Returns STORE_E_BAD with a reason in s. */
static int parse_msg(struct store *s, const struct store_msg *m, size_t i, cJSON **tree,
                     struct store__fields *f)
{
	double seq, ts;

	*tree = NULL;
	if (!conv_ok(m->conv) || m->seq < 1 || m->seq > STORE_SEQ_MAX || m->json == NULL)
		return store__fail(s, STORE_E_BAD, "message %zu: bad conv, seq or no JSON", i);
	*tree = cJSON_Parse(m->json);
	if (!cJSON_IsObject(*tree))
		return store__fail(s, STORE_E_BAD, "message %zu: not a JSON object", i);
	f->conv = json_str(*tree, "conv");
	f->id = json_str(*tree, "id");
	f->from = json_str(*tree, "from");
	f->to = json_str(*tree, "to");
	f->body = json_str(*tree, "body");
	f->cid = json_str(*tree, "cid");
	f->type = json_str(*tree, "type");
	if (f->conv == NULL || strcmp(f->conv, m->conv) != 0 ||
	    !json_int(*tree, "seq", 1, (double)STORE_SEQ_MAX, &seq) || (uint64_t)seq != m->seq)
		return store__fail(s, STORE_E_BAD, "message %zu: JSON conv/seq differ from %s/%llu",
		                   i, m->conv, (unsigned long long)m->seq);
	if (f->type == NULL)
		f->type = "msg";
	if (strcmp(f->type, "edit") == 0 || strcmp(f->type, "delete") == 0) {
		/* an event: its message comes before it; a delete has no body */
		double ref;
		bool del = f->type[0] == 'd';
		if (!json_int(*tree, "ref", 1, (double)m->seq - 1, &ref) || f->id == NULL ||
		    f->from == NULL ||
		    (del ? cJSON_GetObjectItemCaseSensitive(*tree, "body") != NULL
		         : f->body == NULL) ||
		    !json_int(*tree, "ts", -(double)STORE_SEQ_MAX, (double)STORE_SEQ_MAX, &ts) ||
		    (cJSON_GetObjectItemCaseSensitive(*tree, "to") && f->to == NULL))
			return store__fail(
			    s, STORE_E_BAD,
			    "message %zu: an %s event needs strings id, from%s, a whole "
			    "number ts and a ref below its seq",
			    i, f->type, del ? " and no body" : ", body");
		f->ref = (uint64_t)ref;
		f->seq = m->seq;
		f->ts = (int64_t)ts;
		return STORE_OK;
	}
	if (strcmp(f->type, "msg") != 0)
		return store__fail(s, STORE_E_BAD, "message %zu: unknown type", i);
	if (f->id == NULL || f->from == NULL || f->to == NULL || f->body == NULL ||
	    !json_int(*tree, "ts", -(double)STORE_SEQ_MAX, (double)STORE_SEQ_MAX, &ts) ||
	    (cJSON_GetObjectItemCaseSensitive(*tree, "cid") && f->cid == NULL))
		return store__fail(s, STORE_E_BAD,
		                   "message %zu: JSON needs strings id, from, to, body, a whole "
		                   "number ts and an optional string cid",
		                   i);
	f->seq = m->seq;
	f->ts = (int64_t)ts;
	return STORE_OK;
}

int store_put_messages(struct store *s, const struct store_msg *msgs, size_t n)
{
	struct store__fields *f = NULL;
	cJSON **trees = NULL;
	int rc = STORE_OK;

	ENTER(s);
	if (n == 0)
		return STORE_OK;
	if (msgs == NULL)
		return STORE_E_BAD;
	f = calloc(n, sizeof(*f));
	trees = calloc(n, sizeof(*trees));
	if (f == NULL || trees == NULL) {
		rc = STORE_E_NOMEM;
		goto cleanup;
	}
	for (size_t i = 0; i < n; i++)
		if ((rc = parse_msg(s, &msgs[i], i, &trees[i], &f[i])) != STORE_OK)
			goto cleanup;
	rc = s->ops->put_messages(s, msgs, f, n);
cleanup:
	if (trees)
		for (size_t i = 0; i < n; i++)
			cJSON_Delete(trees[i]);
	free(trees);
	free(f);
	return rc;
}

void store_page_free(struct store_page *p)
{
	if (p == NULL)
		return;
	for (size_t i = 0; i < p->n; i++)
		free(p->msgs[i].json);
	free(p->msgs);
	p->msgs = NULL;
	p->n = 0;
}

int store__page_push(struct store_page *p, size_t *cap, const char *conv, uint64_t seq,
                     char *json)
{
	if (p->n == *cap) {
		size_t ncap = *cap ? *cap * 2 : 64;
		struct store_msg *m = realloc(p->msgs, ncap * sizeof(*m));
		if (m == NULL) {
			free(json);
			return STORE_E_NOMEM;
		}
		p->msgs = m;
		*cap = ncap;
	}
	struct store_msg *m = &p->msgs[p->n++];
	snprintf(m->conv, sizeof(m->conv), "%s", conv);
	m->seq = seq;
	m->json = json;
	return STORE_OK;
}

void store__page_reverse(struct store_page *p)
{
	for (size_t i = 0, j = p->n; i + 1 < j; i++, j--) {
		struct store_msg t = p->msgs[i];
		p->msgs[i] = p->msgs[j - 1];
		p->msgs[j - 1] = t;
	}
}

int store_history(struct store *s, const char *conv, uint64_t before, uint64_t after,
                  int limit, struct store_page *out)
{
	ENTER(s);
	if (out == NULL)
		return STORE_E_BAD;
	out->n = 0;
	out->msgs = NULL;
	if (!conv_ok(conv) || limit < 1 || limit > 1000 || (before > 0 && after > 0))
		return store__fail(s, STORE_E_BAD, "history: bad conv, limit or before+after");
	/* Nothing is stored above STORE_SEQ_MAX, so larger bounds say the same
	 * as it and fit every backend's integers. */
	if (before > STORE_SEQ_MAX + 1 || before == 0)
		before = after ? 0 : STORE_SEQ_MAX + 1;
	if (after > STORE_SEQ_MAX)
		after = STORE_SEQ_MAX;
	int rc = s->ops->history(s, conv, before, after, limit, out);
	if (rc != STORE_OK)
		store_page_free(out);
	return rc;
}

int store_max_seq(struct store *s, const char *conv, uint64_t *out)
{
	ENTER(s);
	if (!conv_ok(conv) || out == NULL)
		return STORE_E_BAD;
	return s->ops->max_seq(s, conv, out);
}

int store_each_max_seq(struct store *s, int (*fn)(void *ctx, const char *conv, uint64_t seq),
                       void *ctx)
{
	ENTER_BOUNDED(s, false);
	if (fn == NULL)
		return STORE_E_BAD;
	return s->ops->each_max_seq(s, fn, ctx);
}

int store_user_create(struct store *s, const char *user, const char *pwhash,
                      int64_t created_ms)
{
	ENTER(s);
	if (!user_ok(user) || pwhash == NULL || pwhash[0] == '\0' ||
	    strnlen(pwhash, STORE_PWHASH_MAX + 1) > STORE_PWHASH_MAX)
		return store__fail(s, STORE_E_BAD, "user create: bad user id or password hash");
	return s->ops->user_create(s, user, pwhash, created_ms);
}

int store_user_get(struct store *s, const char *user, char *hash, size_t hashlen)
{
	ENTER(s);
	if (!user_ok(user) || hash == NULL || hashlen == 0)
		return STORE_E_BAD;
	return s->ops->user_get(s, user, hash, hashlen);
}

int store_each_user(struct store *s, int (*fn)(void *ctx, const char *user), void *ctx)
{
	ENTER_BOUNDED(s, false);
	if (fn == NULL)
		return STORE_E_BAD;
	return s->ops->each_user(s, fn, ctx);
}

int store_room_put(struct store *s, const struct store_room *r)
{
	ENTER(s);
	if (r == NULL || !room_ok(r->name) || !user_ok(r->owner))
		return store__fail(s, STORE_E_BAD, "room put: bad room name or owner");
	return s->ops->room_put(s, r);
}

int store_each_room(struct store *s, int (*fn)(void *ctx, const struct store_room *r),
                    void *ctx)
{
	ENTER_BOUNDED(s, false);
	if (fn == NULL)
		return STORE_E_BAD;
	return s->ops->each_room(s, fn, ctx);
}

int store_member_set(struct store *s, const char *room, const char *user, bool member)
{
	ENTER(s);
	if (!room_ok(room) || !user_ok(user))
		return store__fail(s, STORE_E_BAD, "member: bad room or user id");
	return s->ops->member_set(s, room, user, member);
}

int store_each_member(struct store *s,
                      int (*fn)(void *ctx, const char *room, const char *user), void *ctx)
{
	ENTER_BOUNDED(s, false);
	if (fn == NULL)
		return STORE_E_BAD;
	return s->ops->each_member(s, fn, ctx);
}

int store_room_delete(struct store *s, const char *room, int limit, size_t *removed)
{
	ENTER(s);
	if (!room_ok(room) || limit < 1 || limit > 1000 || removed == NULL)
		return store__fail(s, STORE_E_BAD, "room delete: bad room or limit");
	*removed = 0;
	return s->ops->room_delete(s, room, limit, removed);
}

int store_purge(struct store *s, const char *conv, int limit, size_t *removed)
{
	ENTER(s);
	if (!conv_ok(conv) || limit < 1 || limit > 1000 || removed == NULL)
		return store__fail(s, STORE_E_BAD, "purge: bad conv or limit");
	*removed = 0;
	return s->ops->purge(s, conv, limit, removed);
}

int store_amend(struct store *s, const char *conv, uint64_t ref, const char *body, int64_t ts)
{
	ENTER(s);
	if (!conv_ok(conv) || ref < 1 || ref > STORE_SEQ_MAX ||
	    (body && !utf8_valid((const unsigned char *)body, strlen(body))))
		return store__fail(s, STORE_E_BAD, "amend: bad conv, seq or body");
	return s->ops->amend(s, conv, ref, body, ts);
}

int store_scrub(struct store *s)
{
	ENTER(s);
	return s->ops->scrub ? s->ops->scrub(s) : STORE_OK;
}

int store_read_set(struct store *s, const char *user, const char *conv, uint64_t seq)
{
	ENTER(s);
	if (!user_ok(user) || !conv_ok(conv) || seq > STORE_SEQ_MAX)
		return store__fail(s, STORE_E_BAD, "read: bad user, conv or seq");
	return s->ops->read_set(s, user, conv, seq);
}

int store_each_read(struct store *s,
                    int (*fn)(void *ctx, const char *user, const char *conv, uint64_t seq),
                    void *ctx)
{
	ENTER_BOUNDED(s, false);
	if (fn == NULL)
		return STORE_E_BAD;
	return s->ops->each_read(s, fn, ctx);
}
