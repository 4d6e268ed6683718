/*
 * The notice a publisher gets on <prefix>/user/<me>/notice when its publish
 * is refused (shared/PROTOCOL.md section 4). One format for every sender:
 * the bridge (bad input, limits) and the broker plugin (refusals it makes
 * itself, before the bridge could see the post).
 */
#ifndef CHAT_NOTICE_H
#define CHAT_NOTICE_H

#include <stddef.h>

#include "chat/envelope.h"

/* {"v":1,"type":"notice","code":...,"message":...,"topic":...[,"cid":...]};
 * cid may be NULL or empty (then left out). Returns a malloc'd string
 * (free()), or NULL when out of memory. */
char *notice_json(const char *code, const char *message, const char *topic, const char *cid);

/* The "cid" of a payload that is a JSON object with a string cid of at most
 * ENVELOPE_CID_MAX bytes, copied into out (ENVELOPE_CID_MAX + 1 bytes);
 * out is "" for anything else. Payloads longer than max_len are not parsed
 * (out is ""), so a caller on a hot path bounds its cost. */
void notice_cid(const void *payload, size_t len, size_t max_len, char *out);

/* The answer to a request (a publish on <prefix>/in/<me>/rpc) refused
 * before the bridge saw it, in the bridge's format (shared/PROTOCOL.md
 * section 6): {"id":<id>,"error":{"code":...,"message":...}}. id is the
 * request's "id" when payload (len bytes) is a JSON object whose "id" is
 * a string or a number and that holds no NUL (a cut id is no id; the
 * bridge echoes the same); else null. Payloads longer than max_len are not
 * parsed (id null), so a caller on a hot path bounds its cost. Returns a
 * malloc'd string (free()), or NULL when out of memory. */
char *notice_rpc_error(const void *payload, size_t len, size_t max_len, const char *code,
                       const char *message);

#endif
