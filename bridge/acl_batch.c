/*
 * Bounded control messages (see acl_batch.h).
 */
#include <stdlib.h>
#include <string.h>

#include "acl_batch.h"

int acl_batch_init(struct acl_batch *o, size_t max,
                   void (*send)(void *ctx, const char *msg, size_t len), void *ctx)
{
	memset(o, 0, sizeof(*o));
	o->buf = malloc(max);
	if (o->buf == NULL)
		return ACL_BATCH_E_NOMEM;
	o->max = max;
	o->send = send;
	o->ctx = ctx;
	return ACL_BATCH_OK;
}

void acl_batch_free(struct acl_batch *o)
{
	free(o->buf);
	o->buf = NULL;
	o->len = 0;
}

void acl_batch_flush(struct acl_batch *o)
{
	if (o->len == 0)
		return;
	o->send(o->ctx, o->buf, o->len);
	o->sent++;
	o->len = 0;
}

int acl_batch_line(struct acl_batch *o, const char *line, size_t len)
{
	if (len + 1 > o->max)
		return ACL_BATCH_E_TOO_LONG;
	if (o->len + len + 1 > o->max)
		acl_batch_flush(o);
	memcpy(o->buf + o->len, line, len);
	o->len += len;
	o->buf[o->len++] = '\n';
	return ACL_BATCH_OK;
}

int acl_batch_words(struct acl_batch *o, const char *head, size_t head_len,
                    const char *const *words, const size_t *lens, size_t n)
{
	size_t i = 0;

	while (i < n) {
		/* as many words as one line of at most max - 1 bytes holds */
		size_t len = head_len, j = i;
		while (j < n && len + 1 + lens[j] + 1 <= o->max)
			len += 1 + lens[j++];
		if (j == i)
			return ACL_BATCH_E_TOO_LONG;
		char *line = malloc(len);
		if (line == NULL)
			return ACL_BATCH_E_NOMEM;
		memcpy(line, head, head_len);
		size_t at = head_len;
		for (size_t k = i; k < j; k++) {
			line[at++] = ' ';
			memcpy(line + at, words[k], lens[k]);
			at += lens[k];
		}
		int rc = acl_batch_line(o, line, len);
		free(line);
		if (rc != ACL_BATCH_OK)
			return rc;
		i = j;
	}
	return ACL_BATCH_OK;
}
