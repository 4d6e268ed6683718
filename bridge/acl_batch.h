/*
 * Control messages under a byte bound, for the private-room states the
 * bridge sends its broker's plugin (acl_sync.c, authplugin/rooms.h): lines
 * are gathered into one message until the next would take it over the
 * bound, and a member list too long for one line goes out as several
 * lines that each repeat its head ("part <room> <base>"). The broker drops
 * a packet over its limit, so nothing here ever makes one: a line that
 * cannot fit is refused, never cut. Pure: the caller says how to send.
 */
#ifndef CHAT_ACL_BATCH_H
#define CHAT_ACL_BATCH_H

#include <stddef.h>

enum acl_batch_err {
	ACL_BATCH_OK = 0,
	ACL_BATCH_E_TOO_LONG = -1, /* a line (with its newline) over the bound */
	ACL_BATCH_E_NOMEM = -2,
};

struct acl_batch {
	char *buf;
	size_t len, max;
	void (*send)(void *ctx, const char *msg, size_t len);
	void *ctx;
	size_t sent; /* messages sent so far */
};

/* A batch of messages of at most max bytes each. Returns 0 or
 * ACL_BATCH_E_NOMEM. Free with acl_batch_free (after acl_batch_flush). */
int acl_batch_init(struct acl_batch *o, size_t max,
                   void (*send)(void *ctx, const char *msg, size_t len), void *ctx);
void acl_batch_free(struct acl_batch *o);

/* Adds one line (len bytes, no newline), sending the message gathered so
 * far first when the line would not fit in it. */
int acl_batch_line(struct acl_batch *o, const char *line, size_t len);

/* Adds "<head> <word> <word>..." for the n words, as as many lines as the
 * bound needs, each with at least one word. */
int acl_batch_words(struct acl_batch *o, const char *head, size_t head_len,
                    const char *const *words, const size_t *lens, size_t n);

/* Sends what is gathered, if anything. */
void acl_batch_flush(struct acl_batch *o);

#endif
