/*
 * A bounded, allocation-free JSON scanner for the chat envelope
 * (PROTOCOL.md section 5) and request replies (section 6). It walks a
 * writable buffer once: strings it is asked for are unescaped in place and
 * NUL-terminated there (an unescaped string is never longer than its
 * quoted form), everything else is validated and skipped. Nesting is
 * limited to FW_JSON_MAX_DEPTH, so stack use is bounded.
 *
 * Every function returns 0 or a negative fw_err code and never reads
 * outside [p, end).
 */
#ifndef FW_JSON_H
#define FW_JSON_H

#include <stddef.h>
#include <stdint.h>

#include "fw_err.h"

#define FW_JSON_MAX_DEPTH 8

/* A cursor over buf[0..len). */
struct fw_json {
	char *p;
	char *end;
};

/* A decoded string: NUL-terminated in place, len excludes the NUL (the
 * text itself may hold a NUL from \u0000, so trust len). */
struct fw_str {
	const char *p;
	size_t len;
};

void fw_json_init(struct fw_json *j, char *buf, size_t len);
/* 0 when only whitespace is left. */
int fw_json_at_end(struct fw_json *j);
/* Consumes '{' or '['. */
int fw_json_open(struct fw_json *j, char bracket);
/* Within an object opened by fw_json_open: returns 1 with *key set and the
 * cursor on the value, 0 at the closing '}' (consumed), or an error. first
 * is 1 for the first call after the '{'. */
int fw_json_key(struct fw_json *j, int first, struct fw_str *key);
/* Within an array: 1 with the cursor on the next element, 0 at ']'. */
int fw_json_elem(struct fw_json *j, int first);
/* A string value, unescaped in place. */
int fw_json_string(struct fw_json *j, struct fw_str *out);
/* A whole non-negative number that fits in 53 bits (what JSON peers agree
 * on); fractions, exponents and signs are refused. */
int fw_json_uint(struct fw_json *j, uint64_t *out);
/* A boolean or any other value, consumed: 1 when it was `true`. */
int fw_json_true(struct fw_json *j);
/* Validates and skips any value, without changing the buffer. */
int fw_json_skip(struct fw_json *j);
/* Whether key equals the NUL-terminated name. */
int fw_str_eq(const struct fw_str *s, const char *name);

#endif
