/*
 * History pages (see history.h). Redis's recent list of a conversation
 * holds its newest messages, contiguous in seq, and always every message
 * the store has not confirmed yet; everything older than the list's first
 * seq is in the store. A page is therefore the store's part below the list
 * and the list's part, joined.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "history.h"

/* The seq of one recent-list entry: the bridge's JSON has "seq":N. */
static uint64_t json_seq(const char *s, size_t len)
{
	static const char key[] = "\"seq\":";
	const char *p = memmem(s, len, key, sizeof(key) - 1);
	if (p == NULL)
		return 0;
	return strtoull(p + sizeof(key) - 1, NULL, 10);
}

const char *history_query_init(struct history_query *q, const char *conv, int64_t before,
                               int64_t after, int64_t limit, const char **msg)
{
	struct conv_id c;

	memset(q, 0, sizeof(*q));
	if (conv == NULL || conv_parse(conv, strlen(conv), &c) != 0) {
		*msg = "conv must be room:<room> or dm:<a>:<b> with a < b";
		return HISTORY_E_BAD_REQUEST;
	}
	if (before == 0 || (before > 0 && after >= 0)) {
		*msg = "give at most one of before (a seq >= 1) and after (a seq >= 0)";
		return HISTORY_E_BAD_REQUEST;
	}
	if (limit < 0)
		limit = HISTORY_LIMIT_DEFAULT;
	if (limit < 1 || limit > HISTORY_LIMIT_MAX) {
		*msg = "limit must be 1..200";
		return HISTORY_E_BAD_REQUEST;
	}
	conv_format(&c, q->conv);
	q->before = before > 0 ? (uint64_t)before : 0;
	q->has_after = after >= 0;
	q->after = q->has_after ? (uint64_t)after : 0;
	q->limit = (int)limit;
	return NULL;
}

const char *history_allowed(redisContext *redis, const char *caller, const char *conv,
                            const char **msg)
{
	struct conv_id c;
	const char *code = NULL;

	if (conv_parse(conv, strlen(conv), &c) != 0) {
		*msg = "bad conversation id";
		return HISTORY_E_BAD_REQUEST;
	}
	if (c.kind == CONV_DM) {
		if (strcmp(caller, c.a) != 0 && strcmp(caller, c.b) != 0) {
			*msg = "not your conversation";
			return HISTORY_E_FORBIDDEN;
		}
		return NULL;
	}
	redisReply *r = redisCommand(redis, "EVAL %s 0 %s %s",
	                             "local p = redis.call('HGET', 'chat:room:' .. ARGV[1], 'private')\n"
	                             "if not p then return -1 end\n"
	                             "if p == '0' then return 1 end\n"
	                             "return redis.call('SISMEMBER', 'chat:room:' .. ARGV[1] .. "
	                             "':members', ARGV[2])",
	                             c.a, caller);
	if (r == NULL || r->type != REDIS_REPLY_INTEGER) {
		*msg = "the message service is not answering: try again";
		code = HISTORY_E_UNAVAILABLE;
	} else if (r->integer < 0) {
		*msg = "no such room";
		code = HISTORY_E_NOT_FOUND;
	} else if (r->integer == 0) {
		*msg = "private room: members only";
		code = HISTORY_E_FORBIDDEN;
	}
	freeReplyObject(r);
	return code;
}

/* A growing {"messages":[...]} text. */
struct out {
	char *buf;
	size_t len, cap;
	int n;
	bool failed;
};

static void out_add(struct out *o, const char *s, size_t len)
{
	if (o->failed)
		return;
	if (o->len + len + 3 > o->cap) {
		size_t cap = (o->cap ? o->cap * 2 : 4096) + len;
		char *nb = realloc(o->buf, cap);
		if (nb == NULL) {
			o->failed = true;
			return;
		}
		o->buf = nb;
		o->cap = cap;
	}
	memcpy(o->buf + o->len, s, len);
	o->len += len;
	o->buf[o->len] = '\0';
}

static void out_msg(struct out *o, const char *json, size_t len)
{
	if (o->n++ > 0)
		out_add(o, ",", 1);
	out_add(o, json, len);
}

/* The entries of the recent list with seq in [lo, hi]: the newest `max`
 * of them when newest, else the oldest; as list indexes [*first, +*count). */
static void pick_recent(const redisReply *list, uint64_t lo, uint64_t hi, size_t max,
                        bool newest, size_t *first, size_t *count)
{
	size_t n = list->elements, a = n, b = 0;

	for (size_t i = 0; i < n; i++) {
		uint64_t s = json_seq(list->element[i]->str, list->element[i]->len);
		if (s >= lo && s <= hi) {
			if (a == n)
				a = i;
			b = i + 1;
		}
	}
	*first = *count = 0;
	if (a == n || max == 0)
		return;
	size_t k = b - a;
	if (k > max) {
		if (newest)
			a = b - max;
		k = max;
	}
	*first = a;
	*count = k;
}

const char *history_page(redisContext *redis, struct store *store,
                         const struct history_query *q, char **json, const char **msg)
{
	struct out o = {0};
	struct store_page sp = {0};
	const char *code = NULL;
	size_t limit = (size_t)q->limit, first = 0, nlist = 0, nstore = 0;

	*json = NULL;
	redisReply *r = redisCommand(redis, "EVAL %s 0 %s",
	                             "return {redis.call('GET', 'chat:seq:' .. ARGV[1]) or '0', "
	                             "redis.call('LRANGE', 'chat:recent:' .. ARGV[1], 0, -1)}",
	                             q->conv);
	if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
	    r->element[0]->type != REDIS_REPLY_STRING || r->element[1]->type != REDIS_REPLY_ARRAY) {
		freeReplyObject(r);
		*msg = "the message service is not answering: try again";
		return HISTORY_E_UNAVAILABLE;
	}
	uint64_t last = strtoull(r->element[0]->str, NULL, 10);
	const redisReply *list = r->element[1];
	uint64_t list_lo = last + 1;
	if (list->elements > 0)
		list_lo = json_seq(list->element[0]->str, list->element[0]->len);

	/* the seqs asked for: [lo, hi] */
	bool newest = !q->has_after;
	uint64_t lo = newest ? 1 : q->after + 1;
	uint64_t hi = q->before > 0 && q->before - 1 < last ? q->before - 1 : last;
	bool in_store = lo <= hi && lo < list_lo;

	if (newest) {
		pick_recent(list, lo, hi, limit, true, &first, &nlist);
		if (in_store && nlist < limit) {
			uint64_t below = list_lo < hi + 1 ? list_lo : hi + 1;
			if (store == NULL || store_history(store, q->conv, below, 0,
			                                   (int)(limit - nlist), &sp) != STORE_OK)
				goto unavailable;
		}
	} else {
		if (in_store && (store == NULL || store_history(store, q->conv, 0, lo - 1,
		                                                (int)limit, &sp) != STORE_OK))
			goto unavailable;
		for (size_t i = 0; i < sp.n; i++)
			if (sp.msgs[i].seq < list_lo && sp.msgs[i].seq <= hi)
				nstore++;
		pick_recent(list, lo, hi, limit - nstore, false, &first, &nlist);
	}

	out_add(&o, "{\"messages\":[", 13);
	for (size_t i = 0; i < sp.n; i++)
		if (sp.msgs[i].seq >= lo && sp.msgs[i].seq <= hi && sp.msgs[i].seq < list_lo)
			out_msg(&o, sp.msgs[i].json, strlen(sp.msgs[i].json));
	for (size_t i = first; i < first + nlist; i++)
		out_msg(&o, list->element[i]->str, list->element[i]->len);
	out_add(&o, "]}", 2);
	if (o.failed) {
		code = HISTORY_E_UNAVAILABLE;
		*msg = "out of memory";
		goto done;
	}
	*json = o.buf;
	o.buf = NULL;
	goto done;
unavailable:
	code = HISTORY_E_UNAVAILABLE;
	*msg = "the history store is not answering: try again";
done:
	free(o.buf);
	store_page_free(&sp);
	freeReplyObject(r);
	return code;
}
