/*
 * The message envelope of shared/PROTOCOL.md section 5: what a client may
 * publish (plain UTF-8 text, or {"body": "...", "cid": "..."}) and the JSON
 * object subscribers receive.
 */
#ifndef CHAT_ENVELOPE_H
#define CHAT_ENVELOPE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ENVELOPE_CID_MAX 64

enum envelope_err {
	ENVELOPE_OK = 0,
	ENVELOPE_E_EMPTY = -1,
	ENVELOPE_E_TOO_LARGE = -2,
	ENVELOPE_E_UTF8 = -3,
	ENVELOPE_E_JSON = -4,  /* starts with '{' but is not a JSON object */
	ENVELOPE_E_TYPES = -5, /* body or cid missing or of the wrong type */
	ENVELOPE_E_NOMEM = -6,
};

/* A parsed publish. body is malloc'd and NUL-terminated (free with
 * envelope_input_free); body_len excludes the NUL. */
struct chat_input {
	char *body;
	size_t body_len;
	char cid[ENVELOPE_CID_MAX + 1]; /* empty when absent */
};

/* Parses a publish payload. A payload whose first byte is '{' must be a
 * JSON object with a string "body" and an optional string "cid" (at most
 * ENVELOPE_CID_MAX bytes); anything else is the body as plain text. The
 * body must be non-empty valid UTF-8 without NUL, at most body_max bytes.
 * out is filled only on ENVELOPE_OK. */
int envelope_parse_input(const void *payload, size_t len, size_t body_max,
                         struct chat_input *out);
void envelope_input_free(struct chat_input *in);

/* One delivered message. Strings are NUL-terminated; cid may be NULL. */
struct chat_msg {
	const char *conv;
	uint64_t seq;
	const char *id;
	const char *from;
	const char *to;
	int64_t ts; /* milliseconds since the epoch */
	const char *body;
	const char *cid;
};

/* Encodes m as the subscriber JSON object. Returns a malloc'd string
 * (free()) or NULL when out of memory. */
char *envelope_encode(const struct chat_msg *m);

const char *envelope_strerror(int err);

/* Whether JSON text holds a NUL: a raw byte 0, or a "\u0000" escape inside a
 * string (cJSON would decode it and cut the string there). Escapes are read
 * pairwise, so an escaped backslash followed by "u0000" is no NUL. Any
 * JSON that a cut string could change (request params, ids) is refused
 * when this is true. */
bool envelope_json_has_nul(const char *s, size_t len);

#endif
