/* The chunked byte queue of bufq.h. */
#include <stdlib.h>
#include <string.h>

#include "bufq.h"

void bufq_init(struct bufq *q, size_t head, size_t chunk)
{
	memset(q, 0, sizeof(*q));
	q->head = head;
	q->chunk = chunk;
}

int bufq_append(struct bufq *q, const void *data, size_t len)
{
	struct bufq_chunk *c = q->last;

	if (len == 0)
		return 0;
	/* Fill the tail first, but only a chunk whose first byte has not been
	 * handed out: a chunk being written may not change under the writer. */
	if (c && c->off == 0 && c->cap - c->len >= len) {
		memcpy(c->data + q->head + c->len, data, len);
		c->len += len;
		q->bytes += len;
		return 0;
	}
	size_t cap = len > q->chunk ? len : q->chunk;
	c = malloc(sizeof(*c) + q->head + cap);
	if (c == NULL)
		return -1;
	c->next = NULL;
	c->cap = cap;
	c->off = 0;
	c->len = len;
	memcpy(c->data + q->head, data, len);
	if (q->last)
		q->last->next = c;
	else
		q->first = c;
	q->last = c;
	q->bytes += len;
	return 0;
}

unsigned char *bufq_peek(struct bufq *q, size_t *len)
{
	struct bufq_chunk *c = q->first;

	if (c == NULL) {
		*len = 0;
		return NULL;
	}
	*len = c->len - c->off;
	return c->data + q->head + c->off;
}

void bufq_consume(struct bufq *q, size_t n)
{
	while (n > 0 && q->first) {
		struct bufq_chunk *c = q->first;
		size_t avail = c->len - c->off;
		size_t k = n < avail ? n : avail;
		c->off += k;
		q->bytes -= k;
		n -= k;
		if (c->off == c->len) {
			q->first = c->next;
			if (q->first == NULL)
				q->last = NULL;
			free(c);
		}
	}
}

void bufq_free(struct bufq *q)
{
	struct bufq_chunk *c = q->first;
	while (c) {
		struct bufq_chunk *next = c->next;
		free(c);
		c = next;
	}
	q->first = q->last = NULL;
	q->bytes = 0;
}
