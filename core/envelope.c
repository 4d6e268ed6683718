/*
 * Parsing of client publishes and encoding of delivered messages (see
 * chat/envelope.h). JSON goes through cJSON; UTF-8 is checked here because
 * cJSON does not validate it.
 */
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "chat/envelope.h"
#include "chat/names.h"

/* cJSON turns "\u0000" into a NUL that would silently cut the string, so
 * payloads with one are refused before parsing. The scan follows JSON's
 * escapes pair by pair: in "C:\\u0000" the backslash is itself escaped
 * and the "u0000" after it is plain text, not a NUL. */
bool envelope_json_has_nul(const char *s, size_t len)
{
	bool in_string = false;

	for (size_t i = 0; i < len; i++) {
		if (s[i] == '\0')
			return true;
		if (!in_string) {
			in_string = s[i] == '"';
			continue;
		}
		if (s[i] == '"') {
			in_string = false;
		} else if (s[i] == '\\' && i + 1 < len) {
			if (s[i + 1] == 'u' && i + 5 < len && memcmp(s + i + 2, "0000", 4) == 0)
				return true;
			i++; /* the escaped character is never the start of another escape */
		}
	}
	return false;
}

static int check_body(const char *body, size_t len, size_t body_max)
{
	if (len == 0)
		return ENVELOPE_E_EMPTY;
	if (len > body_max)
		return ENVELOPE_E_TOO_LARGE;
	if (memchr(body, '\0', len) != NULL || !utf8_valid((const unsigned char *)body, len))
		return ENVELOPE_E_UTF8;
	return ENVELOPE_OK;
}

static int parse_json(const char *p, size_t len, size_t body_max, struct chat_input *in)
{
	int rc;

	if (!utf8_valid((const unsigned char *)p, len) || memchr(p, '\0', len))
		return ENVELOPE_E_UTF8;
	if (envelope_json_has_nul(p, len))
		return ENVELOPE_E_UTF8;
	cJSON *root = cJSON_ParseWithLength(p, len);
	if (!cJSON_IsObject(root)) {
		rc = ENVELOPE_E_JSON;
		goto cleanup;
	}
	const cJSON *body = cJSON_GetObjectItemCaseSensitive(root, "body");
	const cJSON *cid = cJSON_GetObjectItemCaseSensitive(root, "cid");
	if (!cJSON_IsString(body) || (cid != NULL && !cJSON_IsString(cid)) ||
	    (cid != NULL && strlen(cid->valuestring) > ENVELOPE_CID_MAX)) {
		rc = ENVELOPE_E_TYPES;
		goto cleanup;
	}
	size_t blen = strlen(body->valuestring);
	if ((rc = check_body(body->valuestring, blen, body_max)) != ENVELOPE_OK)
		goto cleanup;
	in->body = strdup(body->valuestring);
	if (in->body == NULL) {
		rc = ENVELOPE_E_NOMEM;
		goto cleanup;
	}
	in->body_len = blen;
	if (cid)
		strcpy(in->cid, cid->valuestring);
cleanup:
	cJSON_Delete(root);
	return rc;
}

int envelope_parse_input(const void *payload, size_t len, size_t body_max,
                         struct chat_input *out)
{
	const char *p = payload;
	struct chat_input in;
	int rc;

	memset(&in, 0, sizeof(in));
	if (len > 0 && p[0] == '{') {
		rc = parse_json(p, len, body_max, &in);
	} else {
		rc = check_body(p, len, body_max);
		if (rc == ENVELOPE_OK) {
			in.body = malloc(len + 1);
			if (in.body == NULL)
				return ENVELOPE_E_NOMEM;
			memcpy(in.body, p, len);
			in.body[len] = '\0';
			in.body_len = len;
		}
	}
	if (rc == ENVELOPE_OK)
		*out = in;
	return rc;
}

void envelope_input_free(struct chat_input *in)
{
	free(in->body);
	in->body = NULL;
}

char *envelope_encode(const struct chat_msg *m)
{
	cJSON *o = cJSON_CreateObject();
	char *out = NULL;

	if (o == NULL)
		return NULL;
	if (!cJSON_AddNumberToObject(o, "v", 1) || !cJSON_AddStringToObject(o, "type", "msg") ||
	    !cJSON_AddStringToObject(o, "conv", m->conv) ||
	    !cJSON_AddNumberToObject(o, "seq", (double)m->seq) ||
	    !cJSON_AddStringToObject(o, "id", m->id) ||
	    !cJSON_AddStringToObject(o, "from", m->from) ||
	    !cJSON_AddStringToObject(o, "to", m->to) ||
	    !cJSON_AddNumberToObject(o, "ts", (double)m->ts) ||
	    !cJSON_AddStringToObject(o, "body", m->body) ||
	    (m->cid && m->cid[0] && !cJSON_AddStringToObject(o, "cid", m->cid)))
		goto cleanup;
	out = cJSON_PrintUnformatted(o);
cleanup:
	cJSON_Delete(o);
	return out;
}

const char *envelope_strerror(int err)
{
	switch (err) {
	case ENVELOPE_OK: return "ok";
	case ENVELOPE_E_EMPTY: return "empty body";
	case ENVELOPE_E_TOO_LARGE: return "body too large";
	case ENVELOPE_E_UTF8: return "body is not valid UTF-8 text";
	case ENVELOPE_E_JSON: return "payload starts with '{' but is not a JSON object";
	case ENVELOPE_E_TYPES: return "body must be a string, cid an optional string of at most 64 bytes";
	case ENVELOPE_E_NOMEM: return "out of memory";
	}
	return "unknown error";
}
