/*
 * The bounded JSON scanner (see fw_json.h). Strings are checked for
 * control characters and escapes; \u escapes become UTF-8 with surrogate
 * pairs joined and lone surrogates refused. Raw bytes >= 0x80 pass through
 * unchanged: the broker has already checked that bodies are UTF-8.
 */
#include <string.h>

#include "fw_json.h"

void fw_json_init(struct fw_json *j, char *buf, size_t len)
{
	j->p = buf;
	j->end = buf + len;
}

static void ws(struct fw_json *j)
{
	while (j->p < j->end && (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r'))
		j->p++;
}

int fw_json_at_end(struct fw_json *j)
{
	ws(j);
	return j->p == j->end;
}

/* Skips whitespace and consumes c when it is next. */
static int eat(struct fw_json *j, char c)
{
	ws(j);
	if (j->p < j->end && *j->p == c) {
		j->p++;
		return 1;
	}
	return 0;
}

int fw_json_open(struct fw_json *j, char bracket)
{
	return eat(j, bracket) ? FW_OK : FW_ERR_MALFORMED;
}

int fw_json_elem(struct fw_json *j, int first)
{
	if (eat(j, ']'))
		return 0;
	if (!first && !eat(j, ','))
		return FW_ERR_MALFORMED;
	ws(j);
	return j->p < j->end ? 1 : FW_ERR_MALFORMED;
}

int fw_json_key(struct fw_json *j, int first, struct fw_str *key)
{
	if (eat(j, '}'))
		return 0;
	if (!first && !eat(j, ','))
		return FW_ERR_MALFORMED;
	int rc = fw_json_string(j, key);
	if (rc)
		return rc;
	if (!eat(j, ':'))
		return FW_ERR_MALFORMED;
	ws(j);
	return j->p < j->end ? 1 : FW_ERR_MALFORMED;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Four hex digits at s (the caller checked that they are inside). */
static long hex4(const char *s)
{
	long v = 0;
	for (int i = 0; i < 4; i++) {
		int h = hexval(s[i]);
		if (h < 0)
			return -1;
		v = v << 4 | h;
	}
	return v;
}

/* Scans a string starting at the opening quote. With out != NULL the text
 * is unescaped to where the quote was (always behind the read position)
 * and NUL-terminated; with out == NULL the buffer is left untouched. */
static int string_at(struct fw_json *j, struct fw_str *out)
{
	ws(j);
	if (j->p >= j->end || *j->p != '"')
		return FW_ERR_MALFORMED;
	char *r = j->p + 1;
	char *w = j->p;
	while (r < j->end) {
		unsigned char c = (unsigned char)*r;
		if (c == '"') {
			if (out) {
				*w = '\0';
				out->p = j->p;
				out->len = (size_t)(w - j->p);
			}
			j->p = r + 1;
			return FW_OK;
		}
		if (c < 0x20)
			return FW_ERR_MALFORMED;
		if (c != '\\') {
			if (out)
				*w++ = (char)c;
			r++;
			continue;
		}
		if (j->end - r < 2)
			return FW_ERR_MALFORMED;
		char e = r[1];
		char plain = 0;
		switch (e) {
		case '"':
		case '\\':
		case '/':
			plain = e;
			break;
		case 'b':
			plain = '\b';
			break;
		case 'f':
			plain = '\f';
			break;
		case 'n':
			plain = '\n';
			break;
		case 'r':
			plain = '\r';
			break;
		case 't':
			plain = '\t';
			break;
		case 'u':
			break;
		default:
			return FW_ERR_MALFORMED;
		}
		if (e != 'u') {
			if (out)
				*w++ = plain;
			r += 2;
			continue;
		}
		if (j->end - r < 6)
			return FW_ERR_MALFORMED;
		long cp = hex4(r + 2);
		if (cp < 0)
			return FW_ERR_MALFORMED;
		r += 6;
		if (cp >= 0xdc00 && cp <= 0xdfff)
			return FW_ERR_MALFORMED;
		if (cp >= 0xd800 && cp <= 0xdbff) {
			if (j->end - r < 6 || r[0] != '\\' || r[1] != 'u')
				return FW_ERR_MALFORMED;
			long lo = hex4(r + 2);
			if (lo < 0xdc00 || lo > 0xdfff)
				return FW_ERR_MALFORMED;
			cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
			r += 6;
		}
		/* the UTF-8 form (1-4 bytes) is never longer than the 6 or 12
		 * bytes of escape it replaces, so w stays behind r */
		if (!out)
			continue;
		if (cp < 0x80) {
			*w++ = (char)cp;
		} else if (cp < 0x800) {
			*w++ = (char)(0xc0 | cp >> 6);
			*w++ = (char)(0x80 | (cp & 0x3f));
		} else if (cp < 0x10000) {
			*w++ = (char)(0xe0 | cp >> 12);
			*w++ = (char)(0x80 | (cp >> 6 & 0x3f));
			*w++ = (char)(0x80 | (cp & 0x3f));
		} else {
			*w++ = (char)(0xf0 | cp >> 18);
			*w++ = (char)(0x80 | (cp >> 12 & 0x3f));
			*w++ = (char)(0x80 | (cp >> 6 & 0x3f));
			*w++ = (char)(0x80 | (cp & 0x3f));
		}
	}
	return FW_ERR_MALFORMED;
}

int fw_json_string(struct fw_json *j, struct fw_str *out)
{
	return string_at(j, out);
}

static int is_digit(char c)
{
	return c >= '0' && c <= '9';
}

int fw_json_uint(struct fw_json *j, uint64_t *out)
{
	uint64_t v = 0;
	ws(j);
	char *s = j->p;
	while (j->p < j->end && is_digit(*j->p)) {
		v = v * 10 + (uint64_t)(*j->p - '0');
		if (v > (1ull << 53))
			return FW_ERR_MALFORMED;
		j->p++;
	}
	if (j->p == s || (j->p - s > 1 && *s == '0'))
		return FW_ERR_MALFORMED;
	/* a fraction or exponent right after the digits is not a whole number */
	if (j->p < j->end && (*j->p == '.' || *j->p == 'e' || *j->p == 'E'))
		return FW_ERR_MALFORMED;
	*out = v;
	return FW_OK;
}

/* A JSON number per RFC 8259, any size. */
static int skip_number(struct fw_json *j)
{
	char *p = j->p;
	char *e = j->end;
	if (p < e && *p == '-')
		p++;
	if (p >= e || !is_digit(*p))
		return FW_ERR_MALFORMED;
	if (*p == '0')
		p++;
	else
		while (p < e && is_digit(*p))
			p++;
	if (p < e && *p == '.') {
		p++;
		if (p >= e || !is_digit(*p))
			return FW_ERR_MALFORMED;
		while (p < e && is_digit(*p))
			p++;
	}
	if (p < e && (*p == 'e' || *p == 'E')) {
		p++;
		if (p < e && (*p == '+' || *p == '-'))
			p++;
		if (p >= e || !is_digit(*p))
			return FW_ERR_MALFORMED;
		while (p < e && is_digit(*p))
			p++;
	}
	j->p = p;
	return FW_OK;
}

static int skip_word(struct fw_json *j, const char *word)
{
	size_t n = strlen(word);
	if ((size_t)(j->end - j->p) < n || memcmp(j->p, word, n) != 0)
		return FW_ERR_MALFORMED;
	j->p += n;
	return FW_OK;
}

static int skip_value(struct fw_json *j, int depth)
{
	int rc, more;
	ws(j);
	if (j->p >= j->end)
		return FW_ERR_MALFORMED;
	switch (*j->p) {
	case '"':
		return string_at(j, NULL);
	case '{':
	case '[':
		if (depth >= FW_JSON_MAX_DEPTH)
			return FW_ERR_MALFORMED;
		break;
	case 't':
		return skip_word(j, "true");
	case 'f':
		return skip_word(j, "false");
	case 'n':
		return skip_word(j, "null");
	default:
		return skip_number(j);
	}
	int is_obj = *j->p == '{';
	j->p++;
	for (int first = 1;; first = 0) {
		if (is_obj) {
			/* skip the key without unescaping it */
			if (eat(j, '}'))
				return FW_OK;
			if (!first && !eat(j, ','))
				return FW_ERR_MALFORMED;
			if ((rc = string_at(j, NULL)) != 0)
				return rc;
			if (!eat(j, ':'))
				return FW_ERR_MALFORMED;
		} else {
			more = fw_json_elem(j, first);
			if (more <= 0)
				return more;
		}
		if ((rc = skip_value(j, depth + 1)) != 0)
			return rc;
	}
}

int fw_json_skip(struct fw_json *j)
{
	return skip_value(j, 0);
}

int fw_json_true(struct fw_json *j)
{
	ws(j);
	if (skip_word(j, "true") == FW_OK)
		return 1;
	return skip_value(j, 0);
}

int fw_str_eq(const struct fw_str *s, const char *name)
{
	size_t n = strlen(name);
	return s->len == n && memcmp(s->p, name, n) == 0;
}
