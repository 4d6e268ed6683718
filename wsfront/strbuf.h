/* A growable NUL-terminated string for building response bodies. */
#ifndef WSFRONT_STRBUF_H
#define WSFRONT_STRBUF_H

#include <stddef.h>

struct strbuf {
	char *s;
	size_t len, cap;
	int oom; /* an append failed: the content is incomplete */
};

void strbuf_init(struct strbuf *b);
void strbuf_printf(struct strbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void strbuf_add(struct strbuf *b, const char *s, size_t n);
/* Hands the string to the caller (free()), or NULL after an out-of-memory;
 * the buffer is empty afterwards. */
char *strbuf_take(struct strbuf *b, size_t *len);
void strbuf_free(struct strbuf *b);

#endif
