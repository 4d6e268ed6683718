/*
 * Requests (see rpc.h). A request is parsed and checked here, then costs a
 * token of the caller's request bucket in Redis (room.create also one of
 * its own) before anything else runs; room methods run as one Lua script
 * in Redis; the reply is built from its answer.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>
#include <hiredis/hiredis.h>
#include <mqtt_protocol.h>

#include "bridge.h"
#include "chat/envelope.h"
#include "chat/log.h"
#include "history.h"
#include "jobs.h"
#include "chat/names.h"
#include "chat/topic.h"
#include "commit.h"
#include "rconn.h"
#include "revoke.h"
#include "rpc.h"
#include "scripts.h"
#include "store.h"

struct rpc_ctx {
	struct bridge *b;
	char caller[NAME_USER_MAX + 1];
	char role[16]; /* of the token of the connection that sent it */
	char method[32];
	char room[NAME_ROOM_MAX + 1];
	char user[NAME_USER_MAX + 1];
	char reply_topic[256];
	cJSON *id; /* echoed as given */
	void *corr;
	uint16_t corr_len;
	cJSON *users; /* presence.get */
	cJSON *req;   /* the request, kept while its rate check runs */
	const cJSON *params;
	char flag[2]; /* room.create */
	/* rooms.list, room.members, unread: cursor is a room, an SSCAN
	 * cursor or a conversation */
	char query[NAME_ROOM_MAX + 1], cursor[NAME_CONV_MAX + 1], limit[8];
	cJSON *acc; /* room.members: the answer so far */
	/* a change held until replicas have it (hold_change) */
	redisReply *held;
	redisCallbackFn *again;
	void *again_priv;
	bool waited;
};

int rpc_reply_topic_ok(const char *prefix, const char *caller, const char *topic)
{
	return topic_reply_ok(prefix, caller, topic);
}

static void ctx_free(struct rpc_ctx *c)
{
	cJSON_Delete(c->id);
	cJSON_Delete(c->users);
	cJSON_Delete(c->req);
	cJSON_Delete(c->acc);
	freeReplyObject(c->held);
	free(c->corr);
	free(c);
}

/* The reply's text {"id":..,"result":result} or {"id":..,"error":{code,
 * message}} (malloc'd; NULL when out of memory); takes ownership of
 * result. */
static char *reply_json(const struct rpc_ctx *c, cJSON *result, const char *code,
                        const char *message)
{
	cJSON *o = cJSON_CreateObject();
	char *json = NULL;

	if (o == NULL) {
		cJSON_Delete(result);
		return NULL;
	}
	cJSON_AddItemToObject(o, "id", c->id ? cJSON_Duplicate(c->id, 1) : cJSON_CreateNull());
	if (code) {
		cJSON *e = cJSON_AddObjectToObject(o, "error");
		cJSON_AddStringToObject(e, "code", code);
		cJSON_AddStringToObject(e, "message", message);
		cJSON_Delete(result);
	} else {
		cJSON_AddItemToObject(o, "result", result ? result : cJSON_CreateObject());
	}
	json = cJSON_PrintUnformatted(o);
	cJSON_Delete(o);
	return json;
}

/* Publishes a reply's text to the caller (with the request's Correlation
 * Data); returns libmosquitto's code. */
static int reply_send(struct rpc_ctx *c, const char *json)
{
	mosquitto_property *props = NULL;

	if (c->corr)
		mosquitto_property_add_binary(&props, MQTT_PROP_CORRELATION_DATA, c->corr, c->corr_len);
	int rc = bridge_publish(c->b, c->reply_topic, json, strlen(json), 1, false, props);
	mosquitto_property_free_all(&props);
	return rc;
}

/* Sends the answer: the result, or the error code and message; takes
 * ownership of result. An answer is never dropped for its size: one the
 * broker cannot carry (over its packet limit) becomes a too_large error
 * with the request's id, and one that cannot be built an unavailable
 * one, so the client always learns which request failed. */
static void reply(struct rpc_ctx *c, cJSON *result, const char *code, const char *message)
{
	char *json = reply_json(c, result, code, message);
	int rc = json ? reply_send(c, json) : MOSQ_ERR_NOMEM;
	size_t len = json ? strlen(json) : 0;

	free(json);
	if (rc != MOSQ_ERR_OVERSIZE_PACKET && rc != MOSQ_ERR_NOMEM)
		return;
	char why[160];
	if (rc == MOSQ_ERR_OVERSIZE_PACKET) {
		log_msg(LOG_WARN,
		        "%s's %s: the answer (%zu bytes) is over the packet limit: refused",
		        c->caller, c->method[0] ? c->method : "request", len);
		snprintf(why, sizeof(why),
		         "the answer (%zu bytes) is larger than a packet: ask for less", len);
	}
	json = reply_json(c, NULL, rc == MOSQ_ERR_OVERSIZE_PACKET ? RPC_E_TOO_LARGE : "unavailable",
	                  rc == MOSQ_ERR_OVERSIZE_PACKET ? why : "out of memory: try again");
	if (json == NULL || reply_send(c, json) != MOSQ_ERR_SUCCESS)
		log_msg(LOG_WARN, "%s's request: not even an error could be answered", c->caller);
	free(json);
}

static void on_change_committed(struct bridge *b, bool replicated, void *priv)
{
	struct rpc_ctx *c = priv;
	(void)b;

	/* the callback answers unavailable to a NULL reply, and frees c */
	c->again(NULL, replicated ? c->held : NULL, c->again_priv);
}

/* With redis_wait_replicas > 0, holds a successful change's answer rep
 * until replicas have the change (commit_change), then calls
 * again(NULL, rep, priv) once more: with rep, or with NULL when too few
 * replicas acknowledged (which the callbacks answer unavailable, sending
 * no event). Returns 1 when held (again then owns c and priv), 0 when the
 * caller answers now: no replicas asked for, or already waited. */
static int hold_change(struct rpc_ctx *c, const redisReply *rep, redisCallbackFn *again,
                       void *priv)
{
	if (c->b->cfg->redis_wait_replicas <= 0 || c->waited)
		return 0;
	c->waited = true;
	c->again = again;
	c->again_priv = priv;
	c->held = commit_copy(rep);
	if (c->held == NULL || commit_change(c->b, on_change_committed, c) != 0) {
		freeReplyObject(c->held);
		c->held = NULL;
		again(NULL, NULL, priv);
	}
	return 1;
}

static void room_event(struct rpc_ctx *c, const char *type, const char *user)
{
	char topic[160], *json = NULL;
	if (topic_room(c->b->cfg->topic_prefix, c->room, "events", topic, sizeof(topic)) < 0)
		return;
	if (asprintf(&json, "{\"v\":1,\"type\":\"%s\",\"room\":\"%s\",\"user\":\"%s\"}", type,
	             c->room, user) < 0)
		return;
	bridge_relay(c->b, topic, json);
	free(json);
}

/* A change to one of user's rooms, on their inbox (every device, every
 * instance): invited, removed, joined, left; by is who did it. */
static void inbox_room_event(struct rpc_ctx *c, const char *user, const char *event)
{
	char topic[160], *json = NULL;
	if (topic_user(c->b->cfg->topic_prefix, user, "inbox", topic, sizeof(topic)) <= 0)
		return;
	if (asprintf(&json, "{\"v\":1,\"type\":\"room\",\"event\":\"%s\",\"room\":\"%s\",\"by\":\"%s\"}",
	             event, c->room, c->caller) < 0)
		return;
	bridge_relay(c->b, topic, json);
	free(json);
}

/* A public room was created: <prefix>/rooms, so room lists stay current
 * without polling. */
static void rooms_event(struct rpc_ctx *c, const char *event)
{
	char topic[96], *json = NULL;
	int n = snprintf(topic, sizeof(topic), "%s/rooms", c->b->cfg->topic_prefix);
	if (n <= 0 || (size_t)n >= sizeof(topic))
		return;
	if (asprintf(&json, "{\"v\":1,\"type\":\"room\",\"event\":\"%s\",\"room\":\"%s\"}", event,
	             c->room) < 0)
		return;
	bridge_relay(c->b, topic, json);
	free(json);
}

static cJSON *room_object(const char *room, const char *owner, const char *private)
{
	cJSON *r = cJSON_CreateObject();
	cJSON_AddStringToObject(r, "room", room);
	cJSON_AddStringToObject(r, "owner", owner);
	cJSON_AddBoolToObject(r, "private", strcmp(private, "1") == 0);
	return r;
}

static int room_send(struct rpc_ctx *c);

static int by_user(const void *a, const void *b)
{
	return strcmp(cJSON_GetObjectItemCaseSensitive(*(cJSON *const *)a, "user")->valuestring,
	              cJSON_GetObjectItemCaseSensitive(*(cJSON *const *)b, "user")->valuestring);
}

/* The members gathered, by user id, each once (SSCAN may return one
 * twice when the set grows while it is walked). Takes c->acc. */
static cJSON *members_result(struct rpc_ctx *c)
{
	cJSON *all = cJSON_DetachItemFromObject(c->acc, "members");
	int n = cJSON_GetArraySize(all);
	cJSON **items = calloc((size_t)n + 1, sizeof(*items));
	cJSON *result = cJSON_CreateObject(), *out = cJSON_AddArrayToObject(result, "members");

	for (int i = 0; items && i < n; i++)
		items[i] = cJSON_DetachItemFromArray(all, 0);
	if (items)
		qsort(items, (size_t)n, sizeof(*items), by_user);
	for (int i = 0; items && i < n; i++) {
		if (i > 0 && by_user(&items[i - 1], &items[i]) == 0)
			cJSON_Delete(items[i]);
		else
			cJSON_AddItemToArray(out, items[i]);
	}
	free(items);
	cJSON_Delete(all);
	return result;
}

/* One page of room.members: gathered, then the next asked, until SSCAN's
 * cursor is back at 0. Frees c when done. */
static void members_page(struct rpc_ctx *c, const redisReply *rep)
{
	if (c->acc == NULL) {
		c->acc = cJSON_CreateObject();
		cJSON_AddArrayToObject(c->acc, "members");
	}
	cJSON *members = cJSON_GetObjectItemCaseSensitive(c->acc, "members");
	if (members == NULL || rep->elements < 2 || rep->element[1]->type != REDIS_REPLY_STRING ||
	    rep->element[1]->len >= sizeof(c->cursor)) {
		reply(c, NULL, "unavailable", "the room service did not answer: try again");
		ctx_free(c);
		return;
	}
	for (size_t i = 2; i < rep->elements; i++) {
		char user[NAME_USER_MAX + 1];
		int online;
		if (rep->element[i]->type != REDIS_REPLY_STRING ||
		    sscanf(rep->element[i]->str, "%32s %d", user, &online) != 2)
			continue;
		cJSON *m = cJSON_CreateObject();
		cJSON_AddStringToObject(m, "user", user);
		cJSON_AddBoolToObject(m, "online", online == 1);
		cJSON_AddItemToArray(members, m);
	}
	if (strcmp(rep->element[1]->str, "0") != 0) {
		memcpy(c->cursor, rep->element[1]->str, rep->element[1]->len + 1);
		if (room_send(c) != 0)
			ctx_free(c);
		return;
	}
	reply(c, members_result(c), NULL, NULL);
	ctx_free(c);
}

/* Turns the room script's answer {status, ...} into the reply. */
static void on_room(redisAsyncContext *ac, void *r, void *priv)
{
	redisReply *rep = r;
	struct rpc_ctx *c = priv;
	(void)ac;

	if (rep == NULL || rep->type != REDIS_REPLY_ARRAY || rep->elements < 1 ||
	    rep->element[0]->type != REDIS_REPLY_STRING) {
		if (rep && rep->type == REDIS_REPLY_ERROR)
			log_msg(LOG_WARN, "room script: %s", rep->str);
		reply(c, NULL, "unavailable", "the room service did not answer: try again");
		goto done;
	}
	const char *status = rep->element[0]->str;
	if (strcmp(status, "ok") != 0) {
		reply(c, NULL, status,
		      rep->elements > 1 ? rep->element[1]->str : "refused");
		goto done;
	}
	if (strcmp(c->method, "rooms.list") != 0 && strcmp(c->method, "room.members") != 0 &&
	    hold_change(c, rep, on_room, c))
		return;
	cJSON *result = cJSON_CreateObject();
	if (strcmp(c->method, "rooms.list") == 0) {
		cJSON *rooms = cJSON_AddArrayToObject(result, "rooms");
		const redisReply *next = rep->elements > 1 ? rep->element[1] : NULL;
		for (size_t i = 2; i < rep->elements; i++) {
			char room[NAME_ROOM_MAX + 1], owner[NAME_USER_MAX + 1], priv[2];
			int member;
			if (sscanf(rep->element[i]->str, "%64s %32s %1s %d", room, owner, priv, &member) != 4)
				continue;
			cJSON *o = room_object(room, owner, priv);
			cJSON_AddBoolToObject(o, "member", member == 1);
			cJSON_AddItemToArray(rooms, o);
		}
		if (next && next->type == REDIS_REPLY_STRING && next->len > 0)
			cJSON_AddStringToObject(result, "next", next->str);
		else
			cJSON_AddNullToObject(result, "next");
	} else if (strcmp(c->method, "room.create") == 0) {
		cJSON_AddItemToObject(result, "room",
		                      room_object(c->room, rep->element[1]->str, rep->element[2]->str));
		if (strcmp(rep->element[2]->str, "0") == 0)
			rooms_event(c, "created");
	} else if (strcmp(c->method, "room.members") == 0) {
		cJSON_Delete(result);
		members_page(c, rep);
		return;
	} else if (strcmp(c->method, "room.delete") == 0) {
		/* the members hear of it from the persistence worker, a page of
		 * them at a time (script_room_gc) */
		cJSON_AddStringToObject(result, "room", c->room);
		room_event(c, "deleted", c->caller);
		if (rep->elements > 2 && strcmp(rep->element[2]->str, "0") == 0)
			rooms_event(c, "deleted");
	} else if (rep->elements > 1 && strcmp(rep->element[1]->str, "1") == 0) {
		/* membership changed: tell the room, and the member's devices */
		if (strcmp(c->method, "room.join") == 0) {
			room_event(c, "join", c->caller);
			inbox_room_event(c, c->caller, "joined");
		} else if (strcmp(c->method, "room.leave") == 0) {
			room_event(c, "leave", c->caller);
			inbox_room_event(c, c->caller, "left");
		} else if (strcmp(c->method, "room.invite") == 0) {
			room_event(c, "join", c->user);
			inbox_room_event(c, c->user, "invited");
		} else if (strcmp(c->method, "room.remove") == 0) {
			room_event(c, "leave", c->user);
			inbox_room_event(c, c->user, "removed");
		}
	}
	reply(c, result, NULL, NULL);
done:
	ctx_free(c);
}

static const char *room_methods[] = {"rooms.list",  "room.create", "room.join",    "room.leave",
                                     "room.invite", "room.remove", "room.members", "room.delete"};

static int is_room_method(const char *m)
{
	for (size_t i = 0; i < sizeof(room_methods) / sizeof(room_methods[0]); i++)
		if (strcmp(m, room_methods[i]) == 0)
			return 1;
	return 0;
}

static int count_param(struct rpc_ctx *c, const cJSON *params, const char *key, int64_t *out);

/* Reads a required id-like string param; returns NULL after replying. */
static const char *name_param(struct rpc_ctx *c, const cJSON *params, const char *key,
                              int is_room)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(params, key);
	if (!cJSON_IsString(v) ||
	    !(is_room ? name_room_valid(v->valuestring, strlen(v->valuestring))
	              : name_user_valid(v->valuestring, strlen(v->valuestring)))) {
		char msg[96];
		snprintf(msg, sizeof(msg), "params.%s must be a valid %s id", key,
		         is_room ? "room" : "user");
		reply(c, NULL, "bad_request", msg);
		return NULL;
	}
	return v->valuestring;
}

/* Checks params for a room method and runs the script. Returns 0 when the
 * script was sent (on_room then owns c), -1 after replying with an error. */
/* rooms.list {query, cursor, limit}: query "" or a room-id prefix (which
 * is itself a valid room id), cursor the "next" of the previous page (a
 * room id), limit 1-200 (50). Returns -1 after replying bad_request. */
static int list_params(struct rpc_ctx *c, const cJSON *params)
{
	const cJSON *q = cJSON_GetObjectItemCaseSensitive(params, "query");
	const cJSON *cur = cJSON_GetObjectItemCaseSensitive(params, "cursor");
	int64_t limit;

	if (q != NULL && !cJSON_IsNull(q) &&
	    (!cJSON_IsString(q) ||
	     (q->valuestring[0] && !name_room_valid(q->valuestring, strlen(q->valuestring))))) {
		reply(c, NULL, "bad_request", "params.query must be the start of a room id");
		return -1;
	}
	if (cur != NULL && !cJSON_IsNull(cur) &&
	    (!cJSON_IsString(cur) || !name_room_valid(cur->valuestring, strlen(cur->valuestring)))) {
		reply(c, NULL, "bad_request", "params.cursor must be the next of a previous page");
		return -1;
	}
	if (count_param(c, params, "limit", &limit))
		return -1;
	if (limit == -1)
		limit = 50;
	if (limit < 1 || limit > 200) {
		reply(c, NULL, "bad_request", "params.limit must be 1 to 200");
		return -1;
	}
	snprintf(c->query, sizeof(c->query), "%s", cJSON_IsString(q) ? q->valuestring : "");
	snprintf(c->cursor, sizeof(c->cursor), "%s", cJSON_IsString(cur) ? cur->valuestring : "");
	snprintf(c->limit, sizeof(c->limit), "%d", (int)limit);
	return 0;
}

static int room_call(struct rpc_ctx *c, const cJSON *params)
{
	const char *flag = "";
	if (strcmp(c->method, "rooms.list") == 0) {
		if (list_params(c, params) != 0)
			return -1;
	} else {
		const char *room = name_param(c, params, "room", 1);
		if (room == NULL)
			return -1;
		strcpy(c->room, room);
	}
	if (strcmp(c->method, "room.create") == 0) {
		const cJSON *p = cJSON_GetObjectItemCaseSensitive(params, "private");
		if (p != NULL && !cJSON_IsBool(p)) {
			reply(c, NULL, "bad_request", "params.private must be true or false");
			return -1;
		}
		flag = cJSON_IsTrue(p) ? "1" : "0";
	}
	if (strcmp(c->method, "room.invite") == 0 || strcmp(c->method, "room.remove") == 0) {
		const char *user = name_param(c, params, "user", 0);
		if (user == NULL)
			return -1;
		strcpy(c->user, user);
	}
	if (strcmp(c->method, "room.members") == 0) {
		strcpy(c->cursor, "0");
		strcpy(c->limit, "200");
	}
	snprintf(c->flag, sizeof(c->flag), "%s", flag);
	return room_send(c);
}

/* Runs the room script for c. Returns 0 when sent (on_room then owns c),
 * -1 after replying. */
static int room_send(struct rpc_ctx *c)
{
	char members_max[24], rooms_max[24];
	snprintf(members_max, sizeof(members_max), "%ld", c->b->cfg->private_room_members_max);
	snprintf(rooms_max, sizeof(rooms_max), "%ld", c->b->cfg->user_rooms_max);
	const char *argv[] = {"EVALSHA", c->b->sha.room, "0",     c->method, c->caller, c->room,
	                      c->flag,   c->user,        c->role, c->query,  c->cursor, c->limit,
	                      c->b->cfg->redis_wait_replicas > 0 ? "1" : "0", members_max,
	                      rooms_max};
	if (!c->b->cmd.ready ||
	    redisAsyncCommandArgv(c->b->cmd.ac, on_room, c, 15, argv, NULL) != REDIS_OK) {
		reply(c, NULL, "unavailable", "the room service is reconnecting: try again");
		return -1;
	}
	return 0;
}

#define PRESENCE_MAX_USERS 100

static void on_presence(redisAsyncContext *ac, void *r, void *priv)
{
	redisReply *rep = r;
	struct rpc_ctx *c = priv;
	(void)ac;

	if (rep == NULL || rep->type != REDIS_REPLY_ARRAY || c->users == NULL ||
	    (size_t)cJSON_GetArraySize(c->users) != rep->elements) {
		reply(c, NULL, "unavailable", "presence did not answer: try again");
		ctx_free(c);
		return;
	}
	cJSON *result = cJSON_CreateObject();
	cJSON *users = cJSON_AddArrayToObject(result, "users");
	for (size_t i = 0; i < rep->elements; i++) {
		cJSON *u = cJSON_CreateObject();
		cJSON_AddStringToObject(u, "user", cJSON_GetArrayItem(c->users, (int)i)->valuestring);
		cJSON_AddBoolToObject(u, "online", rep->element[i]->integer == 1);
		cJSON_AddItemToArray(users, u);
	}
	reply(c, result, NULL, NULL);
	ctx_free(c);
}

/* presence.get {users: [id, ...]} (1..100 valid ids). Returns 0 when the
 * script was sent (on_presence owns c), -1 after replying. */
static int presence_get(struct rpc_ctx *c, const cJSON *params)
{
	const cJSON *users = cJSON_GetObjectItemCaseSensitive(params, "users");
	const char *args[PRESENCE_MAX_USERS];
	int n = cJSON_GetArraySize(users);

	if (!cJSON_IsArray(users) || n < 1 || n > PRESENCE_MAX_USERS) {
		reply(c, NULL, "bad_request", "params.users must be a list of 1 to 100 user ids");
		return -1;
	}
	for (int i = 0; i < n; i++) {
		const cJSON *u = cJSON_GetArrayItem(users, i);
		if (!cJSON_IsString(u) || !name_user_valid(u->valuestring, strlen(u->valuestring))) {
			reply(c, NULL, "bad_request", "params.users must hold valid user ids");
			return -1;
		}
		args[i] = u->valuestring;
	}
	c->users = cJSON_Duplicate(users, 1);
	if (c->users == NULL || !c->b->cmd.ready) {
		reply(c, NULL, "unavailable", "presence is reconnecting: try again");
		return -1;
	}
	for (int i = 0; i < n; i++)
		args[i] = cJSON_GetArrayItem(c->users, i)->valuestring;
	bridge_presence(c->b, "get", args, n, on_presence, c);
	return 0;
}

/* Reads an optional whole-number param >= 0 into *out (-1 when absent).
 * Returns -1 after replying when it is of the wrong type. */
static int count_param(struct rpc_ctx *c, const cJSON *params, const char *key, int64_t *out)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(params, key);
	*out = -1;
	if (v == NULL || cJSON_IsNull(v))
		return 0;
	if (!cJSON_IsNumber(v) || v->valuedouble < 0 || v->valuedouble > 9007199254740991.0 ||
	    v->valuedouble != (double)(int64_t)v->valuedouble) {
		char msg[96];
		snprintf(msg, sizeof(msg), "params.%s must be a whole number >= 0", key);
		reply(c, NULL, "bad_request", msg);
		return -1;
	}
	*out = (int64_t)v->valuedouble;
	return 0;
}

/* ---- history: on the worker thread ---- */

struct history_job {
	struct job job;
	struct rpc_ctx *c;
	struct history_query q;
	char *json;
	const char *code, *msg;
};

static void history_run(struct job *j, redisContext *redis, struct store *store)
{
	struct history_job *h = (struct history_job *)j;
	if (redis == NULL) {
		h->code = HISTORY_E_UNAVAILABLE;
		h->msg = "the message service is not answering: try again";
		return;
	}
	h->code = history_allowed(redis, h->c->caller, h->q.conv, &h->msg);
	if (h->code == NULL)
		h->code = history_page(redis, store, &h->q, &h->json, &h->msg);
}

static void history_done(struct job *j)
{
	struct history_job *h = (struct history_job *)j;
	if (h->code)
		reply(h->c, NULL, h->code, h->msg ? h->msg : "not available");
	else
		reply(h->c, cJSON_CreateRaw(h->json), NULL, NULL);
	free(h->json);
	ctx_free(h->c);
	free(h);
}

/* history {conv, before | after, limit}. Returns 0 when the job was
 * queued (it then owns c), -1 after replying. */
static int history(struct rpc_ctx *c, const cJSON *params)
{
	const cJSON *conv = cJSON_GetObjectItemCaseSensitive(params, "conv");
	int64_t before, after, limit;
	const char *code, *msg = NULL;

	if (!cJSON_IsString(conv)) {
		reply(c, NULL, "bad_request", "params.conv must be a conversation id");
		return -1;
	}
	if (count_param(c, params, "before", &before) || count_param(c, params, "after", &after) ||
	    count_param(c, params, "limit", &limit))
		return -1;
	struct history_job *h = calloc(1, sizeof(*h));
	if (h == NULL) {
		reply(c, NULL, "unavailable", "out of memory");
		return -1;
	}
	code = history_query_init(&h->q, conv->valuestring, before, after, limit, &msg);
	if (code) {
		reply(c, NULL, code, msg);
		free(h);
		return -1;
	}
	h->c = c;
	h->job.run = history_run;
	h->job.done = history_done;
	if (jobs_submit(&c->b->jobs, &h->job) != 0) {
		reply(c, NULL, "unavailable", "too many requests in progress: try again");
		free(h);
		return -1;
	}
	return 0;
}

/* ---- read markers ---- */

struct read_ctx {
	struct rpc_ctx *c;
	char conv[NAME_CONV_MAX + 1];
};

static void on_read(redisAsyncContext *ac, void *r, void *priv)
{
	redisReply *rep = r;
	struct read_ctx *rc = priv;
	struct rpc_ctx *c = rc->c;
	char topic[160], *json = NULL;
	(void)ac;

	if (rep == NULL || rep->type != REDIS_REPLY_INTEGER) {
		reply(c, NULL, "unavailable", "read markers did not answer: try again");
	} else if (rep->integer == -2) {
		reply(c, NULL, "not_found", "no such conversation, or no message in it yet");
	} else if (rep->integer == -3) {
		reply(c, NULL, "forbidden", "private room: members only");
	} else if (hold_change(c, rep, on_read, rc)) {
		return;
	} else {
		cJSON *result = cJSON_CreateObject();
		cJSON_AddStringToObject(result, "conv", rc->conv);
		cJSON_AddNumberToObject(result, "seq", (double)rep->integer);
		reply(c, result, NULL, NULL);
		/* the user's other devices update their unread counts */
		if (topic_user(c->b->cfg->topic_prefix, c->caller, "inbox", topic, sizeof(topic)) > 0 &&
		    asprintf(&json, "{\"v\":1,\"type\":\"read\",\"conv\":\"%s\",\"seq\":%lld}", rc->conv,
		             rep->integer) > 0) {
			bridge_relay(c->b, topic, json);
			free(json);
		}
	}
	ctx_free(c);
	free(rc);
}

/* read {conv, seq}. Returns 0 when sent (on_read owns c), -1 after
 * replying. */
static int read_marker(struct rpc_ctx *c, const cJSON *params)
{
	const cJSON *conv = cJSON_GetObjectItemCaseSensitive(params, "conv");
	struct conv_id id;
	int64_t seq;
	char seqs[24];

	if (!cJSON_IsString(conv) || conv_parse(conv->valuestring, strlen(conv->valuestring), &id)) {
		reply(c, NULL, "bad_request", "params.conv must be a conversation id");
		return -1;
	}
	if (count_param(c, params, "seq", &seq))
		return -1;
	if (seq < 1) {
		reply(c, NULL, "bad_request", "params.seq must be a seq >= 1");
		return -1;
	}
	if (id.kind == CONV_DM && strcmp(id.a, c->caller) != 0 && strcmp(id.b, c->caller) != 0) {
		reply(c, NULL, "forbidden", "not your conversation");
		return -1;
	}
	struct read_ctx *rc = calloc(1, sizeof(*rc));
	if (rc == NULL || !c->b->cmd.ready) {
		free(rc);
		reply(c, NULL, "unavailable", "read markers are reconnecting: try again");
		return -1;
	}
	rc->c = c;
	conv_format(&id, rc->conv);
	snprintf(seqs, sizeof(seqs), "%lld", (long long)seq);
	const char *argv[] = {"EVALSHA", c->b->sha.read, "0", c->caller, rc->conv, seqs};
	if (redisAsyncCommandArgv(c->b->cmd.ac, on_read, rc, 6, argv, NULL) != REDIS_OK) {
		free(rc);
		reply(c, NULL, "unavailable", "read markers are reconnecting: try again");
		return -1;
	}
	return 0;
}

/* the sscanf width below */
_Static_assert(NAME_CONV_MAX == 69, "on_unread reads a conv with %69s");

/* unread's page (1.1 extension, PROTOCOL.md section 6): the largest is
 * the default, so a client that ignores "next" (1.1 had none) still sees
 * every conversation of a user with up to 200 of them. */
#define UNREAD_LIMIT_MAX 200
#define UNREAD_LIMIT_DEFAULT UNREAD_LIMIT_MAX

static void on_unread(redisAsyncContext *ac, void *r, void *priv)
{
	redisReply *rep = r;
	struct rpc_ctx *c = priv;
	(void)ac;

	if (rep == NULL || rep->type != REDIS_REPLY_ARRAY || rep->elements < 1 ||
	    rep->element[0]->type != REDIS_REPLY_STRING) {
		if (rep && rep->type == REDIS_REPLY_ERROR)
			log_msg(LOG_WARN, "unread script: %s", rep->str);
		reply(c, NULL, "unavailable", "read markers did not answer: try again");
		ctx_free(c);
		return;
	}
	cJSON *result = cJSON_CreateObject();
	cJSON *list = cJSON_AddArrayToObject(result, "conversations");
	for (size_t i = 1; i < rep->elements; i++) {
		char conv[NAME_CONV_MAX + 1];
		long long last, read, events = 0;
		if (rep->element[i]->type != REDIS_REPLY_STRING ||
		    sscanf(rep->element[i]->str, "%69s %lld %lld %lld", conv, &last, &read, &events) < 3)
			continue;
		/* edits and deletions take seqs but are not unread messages */
		long long unread = last - read - events;
		cJSON *o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "conv", conv);
		cJSON_AddNumberToObject(o, "unread", (double)(unread > 0 ? unread : 0));
		cJSON_AddNumberToObject(o, "last_seq", (double)last);
		cJSON_AddNumberToObject(o, "read_seq", (double)read);
		cJSON_AddItemToArray(list, o);
	}
	if (rep->element[0]->len > 0)
		cJSON_AddStringToObject(result, "next", rep->element[0]->str);
	else
		cJSON_AddNullToObject(result, "next");
	reply(c, result, NULL, NULL);
	ctx_free(c);
}

/* unread {cursor, limit}: one page of my conversations, the rooms by name
 * then the DMs, after cursor (the "next" of the previous page, a
 * conversation id), limit 1-200 (200): one script call, whatever the
 * number of conversations. Returns 0 when sent (on_unread owns c), -1
 * after replying. */
static int unread(struct rpc_ctx *c, const cJSON *params)
{
	const cJSON *cur = cJSON_GetObjectItemCaseSensitive(params, "cursor");
	struct conv_id id;
	int64_t limit;

	if (cur != NULL && !cJSON_IsNull(cur) &&
	    (!cJSON_IsString(cur) || conv_parse(cur->valuestring, strlen(cur->valuestring), &id))) {
		reply(c, NULL, "bad_request", "params.cursor must be the next of a previous page");
		return -1;
	}
	if (count_param(c, params, "limit", &limit))
		return -1;
	if (limit == -1)
		limit = UNREAD_LIMIT_DEFAULT;
	if (limit < 1 || limit > UNREAD_LIMIT_MAX) {
		reply(c, NULL, "bad_request", "params.limit must be 1 to 200");
		return -1;
	}
	snprintf(c->cursor, sizeof(c->cursor), "%s", cJSON_IsString(cur) ? cur->valuestring : "");
	snprintf(c->limit, sizeof(c->limit), "%d", (int)limit);
	const char *argv[] = {"EVALSHA", c->b->sha.unread, "0", c->caller, c->cursor, c->limit};
	if (!c->b->cmd.ready ||
	    redisAsyncCommandArgv(c->b->cmd.ac, on_unread, c, 6, argv, NULL) != REDIS_OK) {
		reply(c, NULL, "unavailable", "read markers are reconnecting: try again");
		return -1;
	}
	return 0;
}

static void on_revoke(redisAsyncContext *ac, void *r, void *priv)
{
	redisReply *rep = r;
	struct rpc_ctx *c = priv;
	(void)ac;

	if (rep == NULL || rep->type != REDIS_REPLY_INTEGER || rep->integer <= 0) {
		reply(c, NULL, "unavailable", "the revocation was not stored: try again");
	} else if (hold_change(c, rep, on_revoke, c)) {
		return;
	} else {
		cJSON *result = cJSON_CreateObject();
		cJSON_AddNumberToObject(result, "revoked_at", (double)rep->integer);
		reply(c, result, NULL, NULL);
		log_msg(LOG_INFO, "%s revoked every token of %s", c->caller, c->user);
	}
	ctx_free(c);
}

/* user.revoke {user}: oneself (sign out everywhere) or, for an admin,
 * anyone. Returns 0 when sent (on_revoke owns c), -1 after replying. */
static int user_revoke(struct rpc_ctx *c, const cJSON *params)
{
	const char *user = name_param(c, params, "user", 0);
	if (user == NULL)
		return -1;
	if (strcmp(user, c->caller) != 0 && strcmp(c->role, "admin") != 0) {
		reply(c, NULL, "forbidden", "only an admin may revoke another user's tokens");
		return -1;
	}
	snprintf(c->user, sizeof(c->user), "%s", user);
	if (revoke_user(c->b, c->user, (int64_t)time(NULL), on_revoke, c) != 0) {
		reply(c, NULL, "unavailable", "Redis is not there: try again");
		return -1;
	}
	return 0;
}

/* ---- edits and deletions (1.1): msg.edit, msg.delete ---- */

struct amend_job {
	struct job job;
	struct rpc_ctx *c;
	char conv[NAME_CONV_MAX + 1];
	char ref[24], kind[8], keep[24];
	char *head, *tail;
	char *event; /* the answer: the event's JSON */
	char code[16], msg[128];
};

/* Runs the amend script once; from is the message's sender from the store
 * or "". Returns 1 when the script asks for the store's sender. */
static int amend_script(struct amend_job *a, redisContext *redis, const char *from)
{
	const char *argv[] = {"EVAL",       script_amend, "0",     a->conv, a->ref,  a->kind,
	                      a->c->caller, a->c->role,   a->head, a->tail, a->keep, from};
	redisReply *r = redisCommandArgv(redis, 12, argv, NULL);
	int store = 0;

	if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements < 1 ||
	    r->element[0]->type != REDIS_REPLY_STRING) {
		if (r && r->type == REDIS_REPLY_ERROR)
			log_msg(LOG_WARN, "amend script: %s", r->str);
		snprintf(a->code, sizeof(a->code), "unavailable");
		snprintf(a->msg, sizeof(a->msg), "the message service did not answer: try again");
	} else if (strcmp(r->element[0]->str, "store") == 0) {
		store = 1;
	} else if (strcmp(r->element[0]->str, "ok") == 0 && r->elements > 1) {
		a->event = strdup(r->element[1]->str);
		if (a->event == NULL)
			snprintf(a->code, sizeof(a->code), "unavailable");
	} else {
		snprintf(a->code, sizeof(a->code), "%s", r->element[0]->str);
		snprintf(a->msg, sizeof(a->msg), "%s",
		         r->elements > 1 && r->element[1]->type == REDIS_REPLY_STRING
		             ? r->element[1]->str
		             : "refused");
	}
	freeReplyObject(r);
	return store;
}

/* The sender of a message older than Redis's recent list, from the store:
 * into from; returns -1 after setting the error. */
static int amend_store_from(struct amend_job *a, struct store *store, char *from, size_t len)
{
	struct store_page sp = {0};
	uint64_t ref = strtoull(a->ref, NULL, 10);
	int rc = -1;

	if (store == NULL || store_history(store, a->conv, ref + 1, 0, 1, &sp) != STORE_OK) {
		snprintf(a->code, sizeof(a->code), "unavailable");
		snprintf(a->msg, sizeof(a->msg), "the history store is not answering: try again");
		return -1;
	}
	cJSON *o = sp.n == 1 && sp.msgs[0].seq == ref ? cJSON_Parse(sp.msgs[0].json) : NULL;
	const cJSON *type = cJSON_GetObjectItemCaseSensitive(o, "type");
	const cJSON *sender = cJSON_GetObjectItemCaseSensitive(o, "from");
	if (o == NULL || cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "deleted"))) {
		snprintf(a->code, sizeof(a->code), "not_found");
		snprintf(a->msg, sizeof(a->msg), o ? "the message was deleted" : "no such message");
	} else if (type && !(cJSON_IsString(type) && strcmp(type->valuestring, "msg") == 0)) {
		snprintf(a->code, sizeof(a->code), "bad_request");
		snprintf(a->msg, sizeof(a->msg), "seq is an edit or a deletion, not a message");
	} else if (!cJSON_IsString(sender) || sender->valuestring[0] == '\0') {
		snprintf(a->code, sizeof(a->code), "unavailable");
		snprintf(a->msg, sizeof(a->msg), "unreadable message");
	} else {
		snprintf(from, len, "%s", sender->valuestring);
		rc = 0;
	}
	cJSON_Delete(o);
	store_page_free(&sp);
	return rc;
}

static void amend_run(struct job *j, redisContext *redis, struct store *store)
{
	struct amend_job *a = (struct amend_job *)j;
	char from[NAME_USER_MAX + 1];

	a->code[0] = '\0';
	free(a->event);
	a->event = NULL;
	if (redis == NULL) {
		snprintf(a->code, sizeof(a->code), "unavailable");
		snprintf(a->msg, sizeof(a->msg), "the message service is not answering: try again");
		return;
	}
	/* the script checks the room and membership itself (the DM's parties
	 * were checked before) */
	if (amend_script(a, redis, "") == 1 &&
	    amend_store_from(a, store, from, sizeof(from)) == 0 &&
	    amend_script(a, redis, from) == 1) {
		snprintf(a->code, sizeof(a->code), "unavailable");
		snprintf(a->msg, sizeof(a->msg), "the message service did not answer: try again");
	}
	/* the edit is answered, and its event sent, only once replicas have it */
	const struct chat_config *cfg = a->c->b->cfg;
	if (a->event && cfg->redis_wait_replicas > 0 &&
	    rconn_replicated(redis, cfg->node_name, cfg->redis_wait_replicas, cfg->redis_wait_ms) !=
	        1) {
		free(a->event);
		a->event = NULL;
		snprintf(a->code, sizeof(a->code), "unavailable");
		snprintf(a->msg, sizeof(a->msg), "no replica confirmed the change in time: try again");
	}
}

static void amend_done(struct job *j)
{
	struct amend_job *a = (struct amend_job *)j;
	if (a->event)
		reply(a->c, cJSON_CreateRaw(a->event), NULL, NULL);
	else
		reply(a->c, NULL, a->code[0] ? a->code : "unavailable",
		      a->msg[0] ? a->msg : "not available");
	ctx_free(a->c);
	free(a->head);
	free(a->tail);
	free(a->event);
	free(a);
}

/* msg.edit {conv, seq, body} and msg.delete {conv, seq}: checked here, then
 * script_amend on the worker thread (a message older than Redis's recent
 * list needs a store read to learn its sender). Returns 0 when the job was
 * queued (it owns c), -1 after replying. */
static int amend(struct rpc_ctx *c, const cJSON *params)
{
	const cJSON *conv = cJSON_GetObjectItemCaseSensitive(params, "conv");
	const cJSON *body = cJSON_GetObjectItemCaseSensitive(params, "body");
	bool edit = strcmp(c->method, "msg.edit") == 0;
	struct conv_id id;
	int64_t seq;
	char *esc = NULL, mid[64];

	if (!cJSON_IsString(conv) ||
	    conv_parse(conv->valuestring, strlen(conv->valuestring), &id)) {
		reply(c, NULL, "bad_request", "params.conv must be a conversation id");
		return -1;
	}
	if (count_param(c, params, "seq", &seq))
		return -1;
	if (seq < 1) {
		reply(c, NULL, "bad_request", "params.seq must be the seq of a message (>= 1)");
		return -1;
	}
	if (edit &&
	    (!cJSON_IsString(body) || body->valuestring[0] == '\0' ||
	     strlen(body->valuestring) > (size_t)c->b->cfg->body_max ||
	     !utf8_valid((const unsigned char *)body->valuestring, strlen(body->valuestring)))) {
		reply(c, NULL, "bad_request",
		      "params.body must be non-empty UTF-8 within the body limit");
		return -1;
	}
	if (id.kind == CONV_DM && strcmp(id.a, c->caller) != 0 && strcmp(id.b, c->caller) != 0) {
		reply(c, NULL, "forbidden", "not your conversation");
		return -1;
	}
	struct amend_job *a = calloc(1, sizeof(*a));
	if (a == NULL) {
		reply(c, NULL, "unavailable", "out of memory");
		return -1;
	}
	conv_format(&id, a->conv);
	snprintf(a->ref, sizeof(a->ref), "%lld", (long long)seq);
	snprintf(a->kind, sizeof(a->kind), "%s", edit ? "edit" : "delete");
	snprintf(a->keep, sizeof(a->keep), "%ld", c->b->cfg->recent_max);
	snprintf(mid, sizeof(mid), "%s%llx", c->b->id_prefix, ++c->b->id_counter);
	if (edit) {
		cJSON *s = cJSON_CreateString(body->valuestring);
		esc = s ? cJSON_PrintUnformatted(s) : NULL;
		cJSON_Delete(s);
	}
	if ((edit && esc == NULL) ||
	    asprintf(&a->head, "{\"v\":1,\"type\":\"%s\",\"conv\":\"%s\",\"seq\":", a->kind,
	             a->conv) < 0 ||
	    asprintf(&a->tail, ",\"id\":\"%s\",\"from\":\"%s\",\"ref\":%s%s%s}", mid, c->caller,
	             a->ref, edit ? ",\"body\":" : "", edit ? esc : "") < 0) {
		free(esc);
		free(a->head);
		free(a);
		reply(c, NULL, "unavailable", "out of memory");
		return -1;
	}
	free(esc);
	a->c = c;
	a->job.run = amend_run;
	a->job.done = amend_done;
	if (jobs_submit(&c->b->jobs, &a->job) != 0) {
		free(a->head);
		free(a->tail);
		free(a);
		reply(c, NULL, "unavailable", "too many requests in progress: try again");
		return -1;
	}
	return 0;
}

/* Runs the method of a request that passed its rate check; frees c when
 * nothing was sent. */
static void dispatch(struct rpc_ctx *c)
{
	int sent = -1;

	if (is_room_method(c->method))
		sent = room_call(c, c->params) == 0;
	else if (strcmp(c->method, "history") == 0)
		sent = history(c, c->params) == 0;
	else if (strcmp(c->method, "read") == 0)
		sent = read_marker(c, c->params) == 0;
	else if (strcmp(c->method, "unread") == 0)
		sent = unread(c, c->params) == 0;
	else if (strcmp(c->method, "presence.get") == 0)
		sent = presence_get(c, c->params) == 0;
	else if (strcmp(c->method, "user.revoke") == 0)
		sent = user_revoke(c, c->params) == 0;
	else if (strcmp(c->method, "msg.edit") == 0 || strcmp(c->method, "msg.delete") == 0)
		sent = amend(c, c->params) == 0;
	if (sent < 0)
		reply(c, NULL, "bad_request", "unknown method");
	if (sent <= 0)
		ctx_free(c);
}

static void on_limit(redisAsyncContext *ac, void *r, void *priv)
{
	redisReply *rep = r;
	struct rpc_ctx *c = priv;
	(void)ac;

	if (rep == NULL || rep->type != REDIS_REPLY_INTEGER) {
		if (rep && rep->type == REDIS_REPLY_ERROR)
			log_msg(LOG_WARN, "limit script: %s", rep->str);
		reply(c, NULL, "unavailable", "the request service did not answer: try again");
	} else if (rep->integer == 1 || rep->integer == 2) {
		/* Redis spent nothing: neither may this node's copy */
		limit_refund(&c->b->rpc_local, c->caller, (double)c->b->cfg->rpc_rate_burst);
		reply(c, NULL, "rate_limited",
		      rep->integer == 1 ? "too many requests: slow down"
		                        : "too many rooms created: slow down");
	} else {
		dispatch(c);
		return;
	}
	ctx_free(c);
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Spends the request's tokens (rpc, and create for room.create) in Redis,
 * then on_limit runs it; a request this node's own copy of the bucket
 * already refuses is answered without asking Redis. Returns -1 after
 * replying. */
static int rate_check(struct rpc_ctx *c)
{
	const struct chat_config *cfg = c->b->cfg;
	char v[4][24];

	if (limit_take(&c->b->rpc_local, c->caller, (double)cfg->rpc_rate_per_s,
	               (double)cfg->rpc_rate_burst, now_s(), 0) != LIMIT_PASS) {
		reply(c, NULL, "rate_limited", "too many requests: slow down");
		return -1;
	}
	snprintf(v[0], sizeof(v[0]), "%ld", cfg->rpc_rate_per_s);
	snprintf(v[1], sizeof(v[1]), "%ld", cfg->rpc_rate_burst);
	snprintf(v[2], sizeof(v[2]), "%ld", cfg->create_rate_per_s);
	snprintf(v[3], sizeof(v[3]), "%ld", cfg->create_rate_burst);
	int create = strcmp(c->method, "room.create") == 0;
	const char *argv[] = {"EVALSHA", c->b->sha.limit, "0",  c->caller, create ? "2" : "1",
	                      "rpc",     v[0],            v[1], "create",  v[2],
	                      v[3]};
	if (!c->b->cmd.ready || redisAsyncCommandArgv(c->b->cmd.ac, on_limit, c, create ? 11 : 8,
	                                              argv, NULL) != REDIS_OK) {
		reply(c, NULL, "unavailable", "the request service is reconnecting: try again");
		return -1;
	}
	return 0;
}

/* A copy of the JSON text s with every NUL, raw or escaped (\u0000), made
 * the character `to` (1 or 2) instead: raw bytes become that byte, escapes
 * \u000<to>. The scan follows escapes pair by pair like
 * envelope_json_has_nul. malloc'd; NULL when out of memory. */
static char *nul_to(const char *s, size_t len, char to)
{
	char *out = malloc(len + 1);
	bool in_string = false;

	if (out == NULL)
		return NULL;
	memcpy(out, s, len);
	out[len] = '\0';
	for (size_t i = 0; i < len; i++)
		if (out[i] == '\0')
			out[i] = to;
	for (size_t i = 0; i < len; i++) {
		if (!in_string) {
			in_string = out[i] == '"';
		} else if (out[i] == '"') {
			in_string = false;
		} else if (out[i] == '\\' && i + 1 < len) {
			if (out[i + 1] == 'u' && i + 5 < len && memcmp(out + i + 2, "0000", 4) == 0)
				out[i + 5] = (char)('0' + to);
			i++;
		}
	}
	return out;
}

/* The id of a request that holds a NUL, when the id is intact: the text
 * is read twice, its NULs made U+0001 the first time and U+0002 the
 * second; an id (string or number) that reads the same both times held
 * no NUL, so echoing it names exactly the request the client sent. NULL
 * when it did, or the request has no readable id (the reply then says
 * "id": null). The caller frees it with cJSON_Delete. */
static cJSON *intact_id(const void *payload, size_t len)
{
	char *one = nul_to(payload, len, 1), *two = nul_to(payload, len, 2);
	cJSON *a = one ? cJSON_ParseWithLength(one, len) : NULL;
	cJSON *b = two ? cJSON_ParseWithLength(two, len) : NULL;
	const cJSON *ia = cJSON_GetObjectItemCaseSensitive(a, "id");
	const cJSON *ib = cJSON_GetObjectItemCaseSensitive(b, "id");
	cJSON *out = NULL;

	if ((cJSON_IsString(ia) || cJSON_IsNumber(ia)) && cJSON_Compare(ia, ib, true))
		out = cJSON_Duplicate(ia, 1);
	cJSON_Delete(a);
	cJSON_Delete(b);
	free(one);
	free(two);
	return out;
}

void rpc_handle(struct bridge *b, const char *caller, const char *role, const void *payload,
                size_t len, const mosquitto_property *props)
{
	struct rpc_ctx *c = calloc(1, sizeof(*c));
	char *rt = NULL;
	const char *prefix = b->cfg->topic_prefix;

	if (c == NULL)
		return;
	c->b = b;
	strcpy(c->caller, caller);
	snprintf(c->role, sizeof(c->role), "%s", role);
	topic_user(prefix, caller, "rpc", c->reply_topic, sizeof(c->reply_topic));
	if (props) {
		mosquitto_property_read_binary(props, MQTT_PROP_CORRELATION_DATA, &c->corr,
		                               &c->corr_len, false);
		mosquitto_property_read_string(props, MQTT_PROP_RESPONSE_TOPIC, &rt, false);
	}
	/* cJSON would cut a string at an escaped NUL ("room:general\u0000x"
	 * would be served as room:general): refuse the request whole, echoing
	 * its id only when the id itself holds no NUL (intact_id) */
	bool nul = envelope_json_has_nul(payload, len);
	c->req = nul ? NULL : cJSON_ParseWithLength(payload, len);
	const cJSON *id = cJSON_GetObjectItemCaseSensitive(c->req, "id");
	if (cJSON_IsString(id) || cJSON_IsNumber(id))
		c->id = cJSON_Duplicate(id, 1);
	else if (nul)
		c->id = intact_id(payload, len);
	if (rt && !rpc_reply_topic_ok(prefix, caller, rt)) {
		reply(c, NULL, "forbidden", "the response topic must be under your own user topic");
		goto fail;
	}
	if (rt)
		snprintf(c->reply_topic, sizeof(c->reply_topic), "%s", rt);
	if (nul) {
		reply(c, NULL, "bad_request", "a request must not contain NUL (\\u0000)");
		goto fail;
	}

	const cJSON *method = cJSON_GetObjectItemCaseSensitive(c->req, "method");
	c->params = cJSON_GetObjectItemCaseSensitive(c->req, "params");
	if (!cJSON_IsObject(c->req) || c->id == NULL || !cJSON_IsString(method) ||
	    (c->params != NULL && !cJSON_IsObject(c->params))) {
		reply(c, NULL, "bad_request",
		      "a request is {\"id\": string, \"method\": string, \"params\": object}");
		goto fail;
	}
	snprintf(c->method, sizeof(c->method), "%s", method->valuestring);
	if (rate_check(c) != 0)
		goto fail;
	free(rt);
	return;
fail:
	free(rt);
	ctx_free(c);
}
