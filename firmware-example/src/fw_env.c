/*
 * Envelope, notice and reply parsing for the firmware client (see
 * fw_env.h), plus the id rules it needs to check what it is given.
 */
#include <stddef.h>
#include <string.h>

#include "fw_env.h"

static int id_char(char c, int allow_dot)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-' ||
	       (allow_dot && c == '.');
}

static int id_valid(const char *s, size_t n, size_t max, int allow_dot)
{
	if (n == 0 || n > max)
		return 0;
	if (!((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= '0' && s[0] <= '9')))
		return 0;
	for (size_t i = 1; i < n; i++)
		if (!id_char(s[i], allow_dot))
			return 0;
	return 1;
}

int fw_user_valid(const char *s, size_t n)
{
	return id_valid(s, n, 32, 1);
}

int fw_room_valid(const char *s, size_t n)
{
	return id_valid(s, n, 64, 0);
}

int fw_conv_valid(const char *s, size_t n)
{
	if (n > 5 && memcmp(s, "room:", 5) == 0)
		return fw_room_valid(s + 5, n - 5);
	if (n < 3 || memcmp(s, "dm:", 3) != 0)
		return 0;
	const char *a = s + 3;
	const char *colon = memchr(a, ':', n - 3);
	if (colon == NULL)
		return 0;
	size_t na = (size_t)(colon - a);
	const char *b = colon + 1;
	size_t nb = n - 3 - na - 1;
	if (!fw_user_valid(a, na) || !fw_user_valid(b, nb))
		return 0;
	/* a < b in byte order */
	size_t m = na < nb ? na : nb;
	int c = memcmp(a, b, m);
	return c < 0 || (c == 0 && na < nb);
}

enum {
	F_TYPE = 1 << 0,
	F_CONV = 1 << 1,
	F_SEQ = 1 << 2,
	F_ID = 1 << 3,
	F_FROM = 1 << 4,
	F_TO = 1 << 5,
	F_TS = 1 << 6,
	F_BODY = 1 << 7,
	F_CID = 1 << 8,
	F_CODE = 1 << 9,
	F_MESSAGE = 1 << 10,
	F_TOPIC = 1 << 11,
	F_V = 1 << 12,
	F_DELETED = 1 << 13, /* its value is skipped: only its presence counts */
};

static const struct {
	const char *name;
	unsigned flag;
	size_t off; /* offset of the fw_str in struct fw_env, 0 for numbers */
} fields[] = {
    {"type", F_TYPE, offsetof(struct fw_env, type)},
    {"conv", F_CONV, offsetof(struct fw_env, conv)},
    {"id", F_ID, offsetof(struct fw_env, id)},
    {"from", F_FROM, offsetof(struct fw_env, from)},
    {"to", F_TO, offsetof(struct fw_env, to)},
    {"body", F_BODY, offsetof(struct fw_env, body)},
    {"cid", F_CID, offsetof(struct fw_env, cid)},
    {"code", F_CODE, offsetof(struct fw_env, code)},
    {"message", F_MESSAGE, offsetof(struct fw_env, message)},
    {"topic", F_TOPIC, offsetof(struct fw_env, topic)},
    {"seq", F_SEQ, 0},
    {"ts", F_TS, 0},
    {"v", F_V, 0},
};

int fw_env_parse(struct fw_json *j, struct fw_env *e)
{
	struct fw_env tmp;
	struct fw_str key;
	unsigned seen = 0;
	uint64_t num;
	int rc = fw_json_open(j, '{');
	memset(&tmp, 0, sizeof(tmp));
	for (int first = 1; rc == 0; first = 0) {
		int more = fw_json_key(j, first, &key);
		if (more < 0)
			return more;
		if (more == 0)
			break;
		size_t i;
		for (i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
			if (fw_str_eq(&key, fields[i].name))
				break;
		if (i == sizeof(fields) / sizeof(fields[0])) {
			if (fw_str_eq(&key, "deleted"))
				seen |= F_DELETED;
			rc = fw_json_skip(j);
			continue;
		}
		if (seen & fields[i].flag)
			return FW_ERR_MALFORMED;
		seen |= fields[i].flag;
		if (fields[i].off) {
			rc = fw_json_string(j, (struct fw_str *)((char *)&tmp + fields[i].off));
			continue;
		}
		rc = fw_json_uint(j, &num);
		if (rc)
			return rc;
		if (fields[i].flag == F_SEQ) {
			if (num == 0 || num > 0xffffffffu)
				return FW_ERR_MALFORMED;
			tmp.seq = (uint32_t)num;
		} else if (fields[i].flag == F_TS) {
			tmp.ts = num;
		} else if (num != 1) {
			/* an envelope version this client does not know */
			return FW_ERR_PROTOCOL;
		}
	}
	if (rc)
		return rc;
	if (!(seen & F_TYPE))
		return FW_ERR_MALFORMED;
	if (fw_str_eq(&tmp.type, "msg")) {
		/* a deleted message (1.1) has no body */
		int gone = (seen & (F_DELETED | F_BODY)) == F_DELETED;
		unsigned need = F_CONV | F_SEQ | F_FROM | (gone ? 0 : F_BODY);
		if ((seen & need) != need || !fw_conv_valid(tmp.conv.p, tmp.conv.len) ||
		    !fw_user_valid(tmp.from.p, tmp.from.len))
			return FW_ERR_MALFORMED;
		tmp.kind = gone ? FW_ENV_SILENT : FW_ENV_MSG;
	} else if (fw_str_eq(&tmp.type, "edit") || fw_str_eq(&tmp.type, "delete")) {
		unsigned need = F_CONV | F_SEQ;
		if ((seen & need) != need || !fw_conv_valid(tmp.conv.p, tmp.conv.len))
			return FW_ERR_MALFORMED;
		tmp.kind = FW_ENV_SILENT;
	} else if (fw_str_eq(&tmp.type, "notice")) {
		if (!(seen & F_CODE))
			return FW_ERR_MALFORMED;
		tmp.kind = FW_ENV_NOTICE;
	} else {
		tmp.kind = FW_ENV_OTHER;
	}
	*e = tmp;
	return FW_OK;
}

int fw_env_parse_payload(char *buf, size_t len, struct fw_env *e)
{
	struct fw_json j;
	fw_json_init(&j, buf, len);
	int rc = fw_env_parse(&j, e);
	if (rc == 0 && !fw_json_at_end(&j))
		rc = FW_ERR_MALFORMED;
	return rc;
}

/* result: {"messages": [...], ...}; other results (room.join) are skipped. */
static int parse_result(struct fw_json *j, struct fw_reply *r)
{
	struct fw_str key;
	int rc = fw_json_open(j, '{');
	for (int first = 1; rc == 0; first = 0) {
		int more = fw_json_key(j, first, &key);
		if (more <= 0)
			return more;
		if (fw_str_eq(&key, "messages")) {
			/* fw_json_key left the cursor on the value */
			if (r->has_messages || *j->p != '[')
				return FW_ERR_MALFORMED;
			r->has_messages = 1;
			r->messages = *j;
		}
		/* validated now, walked later: skipping leaves the bytes as they are */
		rc = fw_json_skip(j);
	}
	return rc;
}

/* error: {"code": "...", "message": "..."} */
static int parse_error(struct fw_json *j, struct fw_reply *r)
{
	struct fw_str key;
	int rc = fw_json_open(j, '{');
	for (int first = 1; rc == 0; first = 0) {
		int more = fw_json_key(j, first, &key);
		if (more <= 0)
			return more;
		if (fw_str_eq(&key, "code") && !r->code.p)
			rc = fw_json_string(j, &r->code);
		else if (fw_str_eq(&key, "message") && !r->message.p)
			rc = fw_json_string(j, &r->message);
		else
			rc = fw_json_skip(j);
	}
	return rc;
}

int fw_reply_parse(char *buf, size_t len, struct fw_reply *r)
{
	struct fw_json j;
	struct fw_str key;
	struct fw_reply tmp;
	int have_result = 0;
	memset(&tmp, 0, sizeof(tmp));
	fw_json_init(&j, buf, len);
	int rc = fw_json_open(&j, '{');
	for (int first = 1; rc == 0; first = 0) {
		int more = fw_json_key(&j, first, &key);
		if (more < 0)
			return more;
		if (more == 0)
			break;
		if (fw_str_eq(&key, "id")) {
			rc = tmp.id.p ? FW_ERR_MALFORMED : fw_json_string(&j, &tmp.id);
		} else if (fw_str_eq(&key, "result")) {
			rc =
			    have_result || tmp.is_error ? FW_ERR_MALFORMED : parse_result(&j, &tmp);
			have_result = 1;
		} else if (fw_str_eq(&key, "error")) {
			rc = have_result || tmp.is_error ? FW_ERR_MALFORMED : parse_error(&j, &tmp);
			tmp.is_error = 1;
		} else {
			rc = fw_json_skip(&j);
		}
	}
	if (rc)
		return rc;
	if (!fw_json_at_end(&j) || !tmp.id.p || !(have_result || tmp.is_error))
		return FW_ERR_MALFORMED;
	if (tmp.is_error && !tmp.code.p)
		return FW_ERR_MALFORMED;
	*r = tmp;
	return FW_OK;
}

int fw_env_next(struct fw_reply *r, int first, struct fw_env *e)
{
	if (!r->has_messages)
		return 0;
	if (first) {
		int rc = fw_json_open(&r->messages, '[');
		if (rc)
			return rc;
	}
	int more = fw_json_elem(&r->messages, first);
	if (more <= 0)
		return more;
	int rc = fw_env_parse(&r->messages, e);
	return rc ? rc : 1;
}
