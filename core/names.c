/*
 * Validation of the identifiers in shared/PROTOCOL.md section 1, and a
 * strict UTF-8 check used for message bodies. Pure functions, no I/O.
 */
#include <string.h>

#include "chat/names.h"

static bool is_lower_alnum(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

/* First char [a-z0-9], then up to max-1 chars of [a-z0-9_-] plus '.' when
 * dot is allowed. */
static bool name_valid(const char *s, size_t len, size_t max, bool dot)
{
	if (s == NULL || len == 0 || len > max || !is_lower_alnum((unsigned char)s[0]))
		return false;
	for (size_t i = 1; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (!is_lower_alnum(c) && c != '_' && c != '-' && !(dot && c == '.'))
			return false;
	}
	return true;
}

bool name_user_valid(const char *s, size_t len)
{
	return name_valid(s, len, NAME_USER_MAX, true);
}

bool name_room_valid(const char *s, size_t len)
{
	return name_valid(s, len, NAME_ROOM_MAX, false);
}

static int cmp_ids(const char *a, size_t alen, const char *b, size_t blen)
{
	size_t n = alen < blen ? alen : blen;
	int c = memcmp(a, b, n);
	if (c != 0)
		return c;
	return alen < blen ? -1 : (alen > blen ? 1 : 0);
}

int conv_parse(const char *s, size_t len, struct conv_id *out)
{
	struct conv_id c;

	memset(&c, 0, sizeof(c));
	if (s == NULL)
		return -1;
	if (len > 5 && memcmp(s, "room:", 5) == 0) {
		if (!name_room_valid(s + 5, len - 5))
			return -1;
		c.kind = CONV_ROOM;
		memcpy(c.a, s + 5, len - 5);
	} else if (len > 3 && memcmp(s, "dm:", 3) == 0) {
		const char *a = s + 3;
		const char *colon = memchr(a, ':', len - 3);
		if (colon == NULL)
			return -1;
		size_t alen = (size_t)(colon - a);
		const char *b = colon + 1;
		size_t blen = len - 3 - alen - 1;
		if (!name_user_valid(a, alen) || !name_user_valid(b, blen))
			return -1;
		if (cmp_ids(a, alen, b, blen) >= 0)
			return -1;
		c.kind = CONV_DM;
		memcpy(c.a, a, alen);
		memcpy(c.b, b, blen);
	} else {
		return -1;
	}
	*out = c;
	return 0;
}

size_t conv_format(const struct conv_id *c, char *buf)
{
	size_t n;

	if (c->kind == CONV_ROOM) {
		n = strlen(c->a);
		memcpy(buf, "room:", 5);
		memcpy(buf + 5, c->a, n + 1);
		return 5 + n;
	}
	size_t alen = strlen(c->a), blen = strlen(c->b);
	memcpy(buf, "dm:", 3);
	memcpy(buf + 3, c->a, alen);
	buf[3 + alen] = ':';
	memcpy(buf + 4 + alen, c->b, blen + 1);
	return 4 + alen + blen;
}

int conv_dm(const char *u1, const char *u2, struct conv_id *out)
{
	size_t l1 = strlen(u1), l2 = strlen(u2);
	struct conv_id c;

	if (!name_user_valid(u1, l1) || !name_user_valid(u2, l2))
		return -1;
	int order = cmp_ids(u1, l1, u2, l2);
	if (order == 0)
		return -1;
	memset(&c, 0, sizeof(c));
	c.kind = CONV_DM;
	strcpy(c.a, order < 0 ? u1 : u2);
	strcpy(c.b, order < 0 ? u2 : u1);
	*out = c;
	return 0;
}

bool utf8_valid(const unsigned char *s, size_t len)
{
	size_t i = 0;

	while (i < len) {
		unsigned char c = s[i];
		size_t n;
		unsigned int cp;

		if (c < 0x80) {
			i++;
			continue;
		} else if (c >= 0xC2 && c <= 0xDF) {
			n = 1;
			cp = c & 0x1F;
		} else if (c >= 0xE0 && c <= 0xEF) {
			n = 2;
			cp = c & 0x0F;
		} else if (c >= 0xF0 && c <= 0xF4) {
			n = 3;
			cp = c & 0x07;
		} else {
			return false;
		}
		if (len - i <= n)
			return false;
		for (size_t k = 1; k <= n; k++) {
			if ((s[i + k] & 0xC0) != 0x80)
				return false;
			cp = (cp << 6) | (s[i + k] & 0x3F);
		}
		/* overlong forms, surrogates, beyond U+10FFFF */
		if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) ||
		    (cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF)
			return false;
		i += n + 1;
	}
	return true;
}
