/*
 * Notices (see chat/notice.h), built with cJSON so every string is quoted
 * the same way wherever the notice comes from.
 */
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "chat/notice.h"

char *notice_json(const char *code, const char *message, const char *topic, const char *cid)
{
	cJSON *o = cJSON_CreateObject();
	char *out = NULL;

	if (o && cJSON_AddNumberToObject(o, "v", 1) &&
	    cJSON_AddStringToObject(o, "type", "notice") &&
	    cJSON_AddStringToObject(o, "code", code) &&
	    cJSON_AddStringToObject(o, "message", message) &&
	    cJSON_AddStringToObject(o, "topic", topic) &&
	    (cid == NULL || cid[0] == '\0' || cJSON_AddStringToObject(o, "cid", cid)))
		out = cJSON_PrintUnformatted(o);
	cJSON_Delete(o);
	return out;
}

void notice_cid(const void *payload, size_t len, size_t max_len, char *out)
{
	const char *p = payload;

	out[0] = '\0';
	if (len == 0 || len > max_len || p[0] != '{')
		return;
	cJSON *root = cJSON_ParseWithLength(p, len);
	const cJSON *cid = cJSON_GetObjectItemCaseSensitive(root, "cid");
	/* a cid cut by an escaped NUL would not be the client's cid */
	if (cJSON_IsString(cid) && strlen(cid->valuestring) <= ENVELOPE_CID_MAX &&
	    memmem(p, len, "\\u0000", 6) == NULL)
		strcpy(out, cid->valuestring);
	cJSON_Delete(root);
}

char *notice_rpc_error(const void *payload, size_t len, size_t max_len, const char *code,
                       const char *message)
{
	const char *p = payload;
	cJSON *root = NULL, *o = cJSON_CreateObject(), *e = NULL, *id = NULL;
	char *out = NULL;

	if (len > 0 && len <= max_len && p[0] == '{' && !envelope_json_has_nul(p, len))
		root = cJSON_ParseWithLength(p, len);
	const cJSON *given = cJSON_GetObjectItemCaseSensitive(root, "id");
	if (cJSON_IsString(given) || cJSON_IsNumber(given))
		id = cJSON_Duplicate(given, 0);
	else
		id = cJSON_CreateNull();
	if (o && id && cJSON_AddItemToObject(o, "id", id)) {
		id = NULL; /* o owns it */
		e = cJSON_AddObjectToObject(o, "error");
	}
	if (e && cJSON_AddStringToObject(e, "code", code) &&
	    cJSON_AddStringToObject(e, "message", message))
		out = cJSON_PrintUnformatted(o);
	cJSON_Delete(id);
	cJSON_Delete(o);
	cJSON_Delete(root);
	return out;
}
