/*
 * History pages (see history.h). Redis's recent list of a conversation
 * holds its newest messages, contiguous in seq, and always every message
 * the store has not confirmed yet; everything older than the list's first
 * seq is in the store. A page is therefore the store's part below the list
 * and the list's part, joined; only the entries a page needs leave
 * Redis.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "history.h"

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

/* One step in Redis: the conversation's last seq, the first seq of its
 * recent list (which is contiguous and ends at the last seq), and the part
 * of the list the page wants: the newest `limit` entries at or below the
 * page's top, or with after >= 0 the oldest `limit` above after. Returns
 * {last, first, seq of the first entry returned, entries...}. */
static const char page_lua[] =
	"local last = tonumber(redis.call('GET', 'chat:seq:' .. ARGV[1]) or '0')\n"
	"local key = 'chat:recent:' .. ARGV[1]\n"
	"local first = last - redis.call('LLEN', key) + 1\n"
	"local after, before, limit = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])\n"
	"local lo, hi = 1, last\n"
	"if after >= 0 then lo = after + 1 end\n"
	"if before > 0 and before - 1 < hi then hi = before - 1 end\n"
	"local a, b = math.max(lo, first), hi\n"
	"if a > b then return {last, first, 0} end\n"
	"if after >= 0 then b = math.min(b, a + limit - 1) else a = math.max(a, b - limit + 1) end\n"
	"local out = redis.call('LRANGE', key, a - first, b - first)\n"
	"table.insert(out, 1, a)\n"
	"table.insert(out, 1, first)\n"
	"table.insert(out, 1, last)\n"
	"return out\n";

void history_fit(const struct history_part *msgs, size_t n, bool oldest, size_t budget,
                 size_t *first, size_t *count)
{
	size_t used = 0, k = 0;

	/* each message after the first costs its comma too */
	while (k < n) {
		const struct history_part *m = &msgs[oldest ? k : n - 1 - k];
		size_t cost = m->len + (k > 0);
		if (k > 0 && used + cost > budget)
			break;
		used += cost;
		k++;
	}
	*count = k;
	*first = oldest ? 0 : n - k;
}

const char *history_page(redisContext *redis, struct store *store,
                         const struct history_query *q, char **json, const char **msg)
{
	struct out o = {0};
	struct store_page sp = {0};
	struct history_part *part = NULL;
	const char *code = NULL;
	size_t limit = (size_t)q->limit, nlist, nstore = 0;
	char after[24], before[24], lim[24];

	*json = NULL;
	snprintf(after, sizeof(after), "%lld", q->has_after ? (long long)q->after : -1LL);
	snprintf(before, sizeof(before), "%llu", (unsigned long long)q->before);
	snprintf(lim, sizeof(lim), "%d", q->limit);
	const char *argv[] = {"EVAL", page_lua, "0", q->conv, after, before, lim};
	redisReply *r = redisCommandArgv(redis, 7, argv, NULL);
	if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements < 3 ||
	    r->element[0]->type != REDIS_REPLY_INTEGER || r->element[1]->type != REDIS_REPLY_INTEGER) {
		freeReplyObject(r);
		*msg = "the message service is not answering: try again";
		return HISTORY_E_UNAVAILABLE;
	}
	uint64_t last = (uint64_t)r->element[0]->integer;
	uint64_t list_lo = (uint64_t)r->element[1]->integer;
	nlist = r->elements - 3;

	/* the seqs asked for: [lo, hi]; below list_lo they are in the store */
	uint64_t lo = q->has_after ? q->after + 1 : 1;
	uint64_t hi = q->before > 0 && q->before - 1 < last ? q->before - 1 : last;
	bool in_store = lo <= hi && lo < list_lo;

	if (in_store && q->has_after) {
		/* seqs are gapless from 1, so the first `limit` above `after` are
		 * those below after + limit + 1: the store's "after" cannot say
		 * "after 0" (0 means absent there) */
		if (store == NULL || store_history(store, q->conv, q->after + (uint64_t)q->limit + 1,
		                                   0, q->limit, &sp) != STORE_OK)
			goto unavailable;
	} else if (in_store && nlist < limit) {
		uint64_t below = list_lo < hi + 1 ? list_lo : hi + 1;
		if (store == NULL ||
		    store_history(store, q->conv, below, 0, (int)(limit - nlist), &sp) != STORE_OK)
			goto unavailable;
	}
	for (size_t i = 0; i < sp.n; i++)
		if (sp.msgs[i].seq >= lo && sp.msgs[i].seq <= hi && sp.msgs[i].seq < list_lo)
			nstore++;
	if (q->has_after && nlist > limit - nstore)
		nlist = limit - nstore; /* the oldest first: the list part comes after */

	/* the page's messages in seq order: the store's part, then the list's */
	size_t n = 0, first, count;
	part = calloc(nstore + nlist + 1, sizeof(*part));
	if (part == NULL) {
		code = HISTORY_E_UNAVAILABLE;
		*msg = "out of memory";
		goto done;
	}
	for (size_t i = 0; i < sp.n; i++)
		if (sp.msgs[i].seq >= lo && sp.msgs[i].seq <= hi && sp.msgs[i].seq < list_lo)
			part[n++] = (struct history_part){sp.msgs[i].json, strlen(sp.msgs[i].json)};
	for (size_t i = 0; i < nlist; i++)
		part[n++] = (struct history_part){r->element[3 + i]->str, r->element[3 + i]->len};
	history_fit(part, n, q->has_after, HISTORY_PAGE_BYTES, &first, &count);

	out_add(&o, "{\"messages\":[", 13);
	for (size_t i = first; i < first + count; i++)
		out_msg(&o, part[i].json, part[i].len);
	out_add(&o, "]", 1);
	if (count < n)
		out_add(&o, ",\"size_limited\":true", 20);
	out_add(&o, "}", 1);
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
	free(part);
	free(o.buf);
	store_page_free(&sp);
	freeReplyObject(r);
	return code;
}
