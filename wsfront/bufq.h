/*
 * A byte queue of heap chunks, one per direction of a proxied connection.
 * Appends coalesce into the tail chunk so that many small reads from one
 * side go out as few large writes on the other. Every chunk keeps `head`
 * bytes free in front of its data (libwebsockets needs LWS_PRE there).
 * Pure: no I/O, so the unit test drives it directly.
 */
#ifndef WSFRONT_BUFQ_H
#define WSFRONT_BUFQ_H

#include <stddef.h>

struct bufq_chunk {
	struct bufq_chunk *next;
	size_t cap; /* bytes of data[] after the head room */
	size_t off; /* first unsent byte */
	size_t len; /* bytes of data stored */
	unsigned char data[];
};

struct bufq {
	struct bufq_chunk *first, *last;
	size_t bytes; /* unsent bytes in the queue */
	size_t head;  /* head room in front of each chunk's data */
	size_t chunk; /* data bytes of a new chunk (more if one append is larger) */
};

void bufq_init(struct bufq *q, size_t head, size_t chunk);

/* Appends len bytes. Returns 0, or -1 when out of memory (q unchanged). */
int bufq_append(struct bufq *q, const void *data, size_t len);

/* The first unsent bytes: *len of them at the returned pointer, with q->head
 * writable bytes in front of it. NULL when the queue is empty. */
unsigned char *bufq_peek(struct bufq *q, size_t *len);

/* Marks n of the peeked bytes sent; frees chunks that are done. */
void bufq_consume(struct bufq *q, size_t n);

void bufq_free(struct bufq *q);

#endif
