/*
 * The bridge's backlog (see backlog.h).
 */
#include <stdio.h>
#include <string.h>

#include "backlog.h"

void backlog_init(struct backlog *b, uint64_t max_count, uint64_t max_bytes)
{
	memset(b, 0, sizeof(*b));
	b->max_count = max_count;
	b->max_bytes = max_bytes;
}

void backlog_connection(struct backlog *b, uint64_t conn_id)
{
	if (conn_id == 0 || conn_id == b->conn_id)
		return;
	/* ids keep growing: an echo of a mark sent before matches nothing */
	uint64_t next_id = b->next_id;
	bool echoed = b->ever_echoed;
	backlog_init(b, b->max_count, b->max_bytes);
	b->next_id = next_id;
	b->ever_echoed = echoed;
	b->conn_id = conn_id;
}

void backlog_resubscribed(struct backlog *b)
{
	b->nmarks = 0;
	b->last_sent_ms = 0;
}

uint64_t backlog_count(const struct backlog *b)
{
	return b->routed - b->taken;
}

uint64_t backlog_bytes(const struct backlog *b)
{
	return b->routed_bytes - b->taken_bytes;
}

bool backlog_admits(const struct backlog *b, size_t bytes)
{
	return backlog_count(b) + 1 <= b->max_count && backlog_bytes(b) + bytes <= b->max_bytes;
}

void backlog_routed(struct backlog *b, size_t bytes)
{
	b->routed++;
	b->routed_bytes += bytes;
}

uint64_t backlog_mark_due(struct backlog *b, int64_t now_ms)
{
	if (b->nmarks == BACKLOG_MARKS)
		return 0;
	/* nothing held, nothing out: nothing to learn (an idle broker sends none) */
	if (b->nmarks == 0 && b->last_sent_ms != 0 && backlog_count(b) == 0)
		return 0;
	if (b->last_sent_ms != 0 && now_ms - b->last_sent_ms < BACKLOG_MARK_EVERY_MS)
		return 0;
	if (b->nmarks > 0 && now_ms - b->marks[b->nmarks - 1].sent_ms < BACKLOG_MARK_RETRY_MS)
		return 0;
	struct backlog_mark *m = &b->marks[b->nmarks++];
	memset(m, 0, sizeof(*m));
	m->id = ++b->next_id;
	m->sent_ms = now_ms;
	b->last_sent_ms = now_ms != 0 ? now_ms : 1;
	return m->id;
}

void backlog_mark_routed(struct backlog *b, uint64_t id)
{
	for (size_t i = 0; i < b->nmarks; i++) {
		struct backlog_mark *m = &b->marks[i];
		if (m->id == id && !m->placed) {
			m->placed = true;
			m->routed = b->routed;
			m->routed_bytes = b->routed_bytes;
		}
	}
}

void backlog_mark_taken(struct backlog *b, uint64_t id)
{
	size_t keep = 0;

	b->ever_echoed = true;
	for (size_t i = 0; i < b->nmarks; i++) {
		const struct backlog_mark *m = &b->marks[i];
		if (m->id > id) {
			b->marks[keep++] = *m;
			continue;
		}
		/* marks reach the bridge in the order they were routed: those
		 * before the echoed one were taken too (their echo may be lost) */
		if (m->placed && m->routed > b->taken) {
			b->taken = m->routed;
			b->taken_bytes = m->routed_bytes;
		}
	}
	b->nmarks = keep;
}

int backlog_mark_format(const char *boot, uint64_t id, char *out)
{
	return snprintf(out, BACKLOG_MARK_MAX, "mark %s %llu", boot, (unsigned long long)id);
}

bool backlog_mark_parse(const void *payload, size_t len, const char *boot, uint64_t *id)
{
	const char *s = payload;
	size_t boot_len = strlen(boot);

	if (len >= BACKLOG_MARK_MAX || len < 5 + boot_len + 2 || memcmp(s, "mark ", 5) != 0 ||
	    memcmp(s + 5, boot, boot_len) != 0 || s[5 + boot_len] != ' ')
		return false;
	uint64_t v = 0;
	for (size_t i = 5 + boot_len + 1; i < len; i++) {
		if (s[i] < '0' || s[i] > '9' || v > (UINT64_MAX - 9) / 10)
			return false;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	if (v == 0)
		return false;
	*id = v;
	return true;
}
