/*
 * The blocking half of the HTTP API, run on worker threads: Argon2id
 * hashing, the store (accounts, history), Redis (history, the bridges'
 * counters). Each thread keeps its own store handle and Redis
 * connection, opened on first use and reopened after a failure; the
 * health checks (health.c) open theirs through the same functions.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "chat/log.h"
#include "front.h"
#include "rconn.h"
#include "revocation.h"
#include "store.h"
#include "strbuf.h"

void worker_ctx_free(struct worker_ctx *w)
{
	if (w->store)
		store_close(w->store);
	if (w->redis)
		redisFree(w->redis);
	w->store = NULL;
	w->redis = NULL;
}

struct store *want_store(struct front *f, struct worker_ctx *w)
{
	char err[256];

	if (w->store == NULL && store_open(f->cfg->store_url, &w->store, err, sizeof(err)) != 0) {
		log_msg(LOG_WARN, "store %s: %s", f->cfg->store_url, err);
		w->store = NULL;
	}
	return w->store;
}

redisContext *want_redis(struct front *f, struct worker_ctx *w)
{
	if (w->redis && w->redis->err) {
		redisFree(w->redis);
		w->redis = NULL;
	}
	if (w->redis == NULL) {
		char err[256];
		int rc;
		/* connect and AUTH within 1 s, then 2 s a command */
		w->redis = rconn_connect(f->cfg, 1000, 2000, &rc, err, sizeof(err));
		if (w->redis == NULL && rc == RCONN_E_AUTH)
			log_msg(LOG_ERR, "%s", err);
	}
	return w->redis;
}

/* A reply that is NULL means the connection broke: drop it. */
redisReply *redis_cmd(struct worker_ctx *w, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	redisReply *r = redisvCommand(w->redis, fmt, ap);
	va_end(ap);
	if (r == NULL) {
		redisFree(w->redis);
		w->redis = NULL;
	}
	return r;
}

static void answer(struct job *j, int status, char *body, int reject)
{
	j->status = status;
	j->body = body;
	j->body_len = body ? strlen(body) : 0;
	j->ctype = "application/json";
	j->reject = reject;
}

/* {"error":{"code":...,"message":...}} */
static void fail(struct job *j, int status, const char *code, const char *message, int reject)
{
	cJSON *o = cJSON_CreateObject(), *e = cJSON_AddObjectToObject(o, "error");
	cJSON_AddStringToObject(e, "code", code);
	cJSON_AddStringToObject(e, "message", message);
	answer(j, status, cJSON_PrintUnformatted(o), reject);
	cJSON_Delete(o);
}

/* The iat of a new token for j's user (revocation.h): 0 with *iat set,
 * else the job is answered 503 with the seconds to wait (the user signed
 * out everywhere a moment ago: a token stamped now would be revoked at
 * once). When Redis does not answer, the token is stamped now: at worst
 * it is one that such a revocation covers, refused like any revoked one,
 * never one that outlives a revocation. */
static int token_iat(struct front *f, struct worker_ctx *w, struct job *j, int64_t now,
                     int64_t *iat)
{
	int64_t before = 0;
	int read = -1;

	/* twice: a connection that broke while idle fails at its first use */
	for (int attempt = 0; attempt < 2 && read != 0; attempt++) {
		if (want_redis(f, w) == NULL)
			break;
		read = revoke_user_before(w->redis, j->cred.user, &before);
		if (read != 0 && w->redis->err) {
			redisFree(w->redis);
			w->redis = NULL;
		}
	}
	if (read != 0) {
		log_msg(LOG_WARN, "%s: revocation state not read (Redis down): token stamped now",
		        j->cred.user);
		before = 0;
	}
	int64_t wait = revoke_next_iat(before, now, f->cfg->jwt_leeway, iat);
	if (wait > 0) {
		fail(j, 503, "unavailable",
		     "signed out everywhere a moment ago: sign in again in a few seconds", -1);
		j->retry_after = (int)wait;
		return -1;
	}
	return 0;
}

/* The user's id in chat:users, the set of ids a DM may name (one SADD,
 * idempotent; a login adds it again, so an account whose registration
 * met Redis down is reachable after its next login). */
static void user_known(struct front *f, struct worker_ctx *w, const char *user)
{
	redisReply *r = want_redis(f, w) ? redis_cmd(w, "SADD chat:users %s", user) : NULL;
	if (r == NULL || r->type != REDIS_REPLY_INTEGER)
		log_msg(LOG_WARN, "%s: not added to chat:users (Redis down or refused)", user);
	freeReplyObject(r);
}

static void token_answer(struct front *f, struct job *j, int status, int64_t now, int64_t iat)
{
	char *tok = NULL;

	if (token_mint_iat(&f->kr, j->cred.user, ROLE_USER, now, iat, f->cfg->web_token_ttl,
	                   &tok) != 0) {
		fail(j, 503, "unavailable", "cannot mint a token", -1);
		return;
	}
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "token", tok);
	cJSON_AddNumberToObject(o, "exp", (double)(now + f->cfg->web_token_ttl));
	cJSON_AddStringToObject(o, "user", j->cred.user);
	answer(j, status, cJSON_PrintUnformatted(o), -1);
	cJSON_Delete(o);
	free(tok);
}

static void do_register(struct front *f, struct worker_ctx *w, struct job *j)
{
	char hash[crypto_pwhash_STRBYTES];
	struct store *s;
	int64_t iat;
	const char *weak = password_check(j->cred.user, j->cred.password,
	                                  f->cfg->password_min_bits);

	if (weak) {
		fail(j, 400, "weak_password", weak, REJ_BAD_REQUEST);
		return;
	}
	if (crypto_pwhash_str(hash, j->cred.password, strlen(j->cred.password),
	                      crypto_pwhash_OPSLIMIT_INTERACTIVE,
	                      crypto_pwhash_MEMLIMIT_INTERACTIVE) != 0) {
		fail(j, 503, "unavailable", "out of memory while hashing", -1);
		return;
	}
	/* a name revoked a moment ago (by an admin) waits before the account
	 * exists, so the retry is not a conflict */
	int64_t now = time(NULL);
	if (token_iat(f, w, j, now, &iat) != 0)
		return;
	if ((s = want_store(f, w)) == NULL) {
		fail(j, 503, "unavailable", "the store is down", -1);
		return;
	}
	int rc = store_user_create(s, j->cred.user, hash, (int64_t)time(NULL) * 1000);
	if (rc == STORE_E_CONFLICT) {
		fail(j, 409, "conflict", "that username is taken", REJ_CONFLICT);
	} else if (rc != STORE_OK) {
		if (rc == STORE_E_DOWN) {
			store_close(w->store);
			w->store = NULL;
		}
		fail(j, 503, "unavailable", store_strerror(rc), -1);
	} else {
		log_msg(LOG_INFO, "registered %s", j->cred.user);
		user_known(f, w, j->cred.user);
		token_answer(f, j, 201, now, iat);
	}
}

/* Every path hashes once, so the time does not tell whether the user
 * exists: an unknown user is checked against a dummy hash. */
static void do_login(struct front *f, struct worker_ctx *w, struct job *j)
{
	char hash[crypto_pwhash_STRBYTES];
	struct store *s = want_store(f, w);
	int rc = s ? store_user_get(s, j->cred.user, hash, sizeof(hash)) : STORE_E_DOWN;
	const char *pw = j->cred.password;

	if (rc == STORE_OK) {
		if (crypto_pwhash_str_verify(hash, pw, strlen(pw)) == 0) {
			int64_t now = time(NULL), iat;
			if (token_iat(f, w, j, now, &iat) == 0) {
				user_known(f, w, j->cred.user);
				token_answer(f, j, 200, now, iat);
			}
			return;
		}
	} else {
		/* the answer is ignored: only the time it takes matters */
		volatile int ignored = crypto_pwhash_str_verify(f->dummy_hash, pw, strlen(pw));
		(void)ignored;
		if (rc != STORE_E_NOT_FOUND) {
			if (rc == STORE_E_DOWN && w->store) {
				store_close(w->store);
				w->store = NULL;
			}
			fail(j, 503, "unavailable", "the store is down", -1);
			return;
		}
	}
	fail(j, 401, "unauthorized", "wrong username or password", REJ_UNAUTHORIZED);
}

static int code_status(const char *code, int *reject)
{
	static const struct {
		const char *code;
		int status, reject;
	} map[] = {
	    {HISTORY_E_BAD_REQUEST, 400, REJ_BAD_REQUEST},
	    {HISTORY_E_FORBIDDEN, 403, REJ_FORBIDDEN},
	    {HISTORY_E_NOT_FOUND, 404, REJ_NOT_FOUND},
	};
	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
		if (strcmp(code, map[i].code) == 0) {
			*reject = map[i].reject;
			return map[i].status;
		}
	}
	*reject = -1;
	return 503;
}

static void do_history(struct front *f, struct worker_ctx *w, struct job *j)
{
	redisContext *r = want_redis(f, w);
	const char *msg = NULL, *code;
	char *json = NULL;
	int reject;

	if (r == NULL) {
		fail(j, 503, "unavailable", "Redis is down", -1);
		return;
	}
	int revoked = revoke_check(r, j->user, j->jti, j->iat);
	if (revoked != 0) {
		if (revoked < 0) {
			redisFree(w->redis);
			w->redis = NULL;
			fail(j, 503, "unavailable", "Redis is down", -1);
		} else {
			fail(j, 401, "unauthorized", "token revoked", REJ_UNAUTHORIZED);
		}
		return;
	}
	code = history_allowed(r, j->user, j->q.conv, &msg);
	/* Redis first, with the store only if it is already open: a page
	 * Redis holds never waits for a store that is slow to open (locked,
	 * hung); only a page that needs the store opens it */
	if (code == NULL) {
		struct store *held = w->store;
		code = history_page(r, held, &j->q, &json, &msg);
		if (code != NULL && held == NULL && !r->err &&
		    strcmp(code, HISTORY_E_UNAVAILABLE) == 0 && want_store(f, w) != NULL)
			code = history_page(r, w->store, &j->q, &json, &msg);
	}
	if (r->err) {
		redisFree(w->redis);
		w->redis = NULL;
	}
	if (code != NULL) {
		int status = code_status(code, &reject);
		fail(j, status, code, msg ? msg : code, reject);
		return;
	}
	answer(j, 200, json, -1);
}

/* Revokes the caller's token by its jti until it expires (revocation.h):
 * 204 and no body. */
static void do_logout(struct front *f, struct worker_ctx *w, struct job *j)
{
	char exp[24], now[24];
	redisReply *r = NULL;

	snprintf(exp, sizeof(exp), "%lld", (long long)j->exp);
	snprintf(now, sizeof(now), "%lld", (long long)time(NULL));
	const char *argv[] = {"EVAL", revoke_lua, "0", "jti", j->jti, "0", exp, now};
	/* a connection that broke while idle (Redis restarted) fails only at
	 * its next command: that one is tried once more on a new connection,
	 * so a sign-out is not refused for a Redis that is back */
	for (int attempt = 0; attempt < 2 && r == NULL; attempt++) {
		if (want_redis(f, w) == NULL) {
			fail(j, 503, "unavailable", "Redis is down", -1);
			return;
		}
		r = redisCommandArgv(w->redis, 8, argv, NULL);
		if (r == NULL) {
			redisFree(w->redis);
			w->redis = NULL;
		}
	}
	if (r == NULL || r->type != REDIS_REPLY_INTEGER) {
		fail(j, 503, "unavailable", "the revocation was not stored: try again", -1);
	} else if (f->cfg->redis_wait_replicas > 0 &&
	           rconn_replicated(w->redis, f->cfg->node_name, f->cfg->redis_wait_replicas,
	                            f->cfg->redis_wait_ms) != 1) {
		/* a failover could take the revocation back: not signed out yet */
		if (w->redis->err) {
			redisFree(w->redis);
			w->redis = NULL;
		}
		fail(j, 503, "unavailable", "no replica confirmed the sign-out in time: try again", -1);
	} else {
		log_msg(LOG_INFO, "%s signed out (token %s revoked)", j->user, j->jti);
		j->status = 204;
		j->reject = -1;
	}
	freeReplyObject(r);
}

/* XINFO GROUPS chat:stream: the persist group's pending and lag. Returns 1
 * when the group exists (*pending, *lag filled; *lag -1 when unknown). */
int persist_backlog(struct worker_ctx *w, long long *pending, long long *lag)
{
	redisReply *r = redis_cmd(w, "XINFO GROUPS chat:stream");
	int found = 0;

	if (r == NULL)
		return 0;
	if (r->type == REDIS_REPLY_ARRAY) {
		for (size_t i = 0; i < r->elements && !found; i++) {
			redisReply *g = r->element[i];
			long long p = -1, l = -1;
			int is_persist = 0;
			if (g->type != REDIS_REPLY_ARRAY)
				continue;
			for (size_t k = 0; k + 1 < g->elements; k += 2) {
				redisReply *key = g->element[k], *v = g->element[k + 1];
				if (key->type != REDIS_REPLY_STRING &&
				    key->type != REDIS_REPLY_STATUS)
					continue;
				if (strcmp(key->str, "name") == 0 && v->type == REDIS_REPLY_STRING)
					is_persist = strcmp(v->str, "persist") == 0;
				else if (strcmp(key->str, "pending") == 0 &&
				         v->type == REDIS_REPLY_INTEGER)
					p = v->integer;
				else if (strcmp(key->str, "lag") == 0 &&
				         v->type == REDIS_REPLY_INTEGER)
					l = v->integer;
			}
			if (is_persist) {
				*pending = p;
				*lag = l;
				found = 1;
			}
		}
	}
	freeReplyObject(r);
	return found;
}

/* Fields and values of an HGETALL reply (a flat array). */
static void hash_render(redisReply *r, const char *node, struct strbuf *b)
{
	size_t n = r->elements / 2;
	const char **fields = calloc(n + 1, sizeof(*fields));
	const char **values = calloc(n + 1, sizeof(*values));
	size_t k = 0;

	if (fields && values) {
		for (size_t i = 0; i + 1 < r->elements; i += 2) {
			if (r->element[i]->type != REDIS_REPLY_STRING ||
			    r->element[i + 1]->type != REDIS_REPLY_STRING)
				continue;
			fields[k] = r->element[i]->str;
			values[k++] = r->element[i + 1]->str;
		}
		if (node)
			metrics_render_bridge(b, node, fields, values, k);
		else
			metrics_render_persist(b, fields, values, k);
	}
	free(fields);
	free(values);
}

static void do_metrics(struct front *f, struct worker_ctx *w, struct job *j)
{
	struct strbuf b;
	long long pending = -1, lag = -1;

	strbuf_init(&b);
	strbuf_add(&b, j->text, strlen(j->text));
	int redis = 0;
	if (want_redis(f, w)) {
		redisReply *pong = redis_cmd(w, "PING");
		redis = pong && pong->type == REDIS_REPLY_STATUS;
		freeReplyObject(pong);
	}
	strbuf_printf(&b,
	              "# HELP wsfront_redis_up Whether Redis answered this scrape.\n"
	              "# TYPE wsfront_redis_up gauge\nwsfront_redis_up %d\n",
	              redis);
	if (redis) {
		/* The bridges' counters: each front names its node in a small set
		 * (never KEYS or a SCAN over a keyspace users can grow); at most
		 * 64 nodes are read per scrape. */
		freeReplyObject(redis_cmd(w, "SADD chat:metrics:nodes %s", f->cfg->node_name));
		redisReply *nodes =
		    w->redis ? redis_cmd(w, "SRANDMEMBER chat:metrics:nodes 64") : NULL;
		if (nodes && nodes->type == REDIS_REPLY_ARRAY) {
			strbuf_printf(&b,
			              "# HELP chat_bridge_msgs_in_total and the other chat_bridge_*"
			              " series: each bridge's counters (Redis hash "
			              "chat:metrics:bridge:<node>).\n");
			for (size_t i = 0; i < nodes->elements && w->redis; i++) {
				if (nodes->element[i]->type != REDIS_REPLY_STRING)
					continue;
				const char *node = nodes->element[i]->str;
				redisReply *h =
				    redis_cmd(w, "HGETALL chat:metrics:bridge:%s", node);
				if (h && h->type == REDIS_REPLY_ARRAY && h->elements > 0)
					hash_render(h, node, &b);
				freeReplyObject(h);
			}
		}
		freeReplyObject(nodes);
		redisReply *h = w->redis ? redis_cmd(w, "HGETALL chat:metrics:persist") : NULL;
		if (h && (h->type == REDIS_REPLY_ARRAY))
			hash_render(h, NULL, &b);
		freeReplyObject(h);
		if (w->redis && persist_backlog(w, &pending, &lag)) {
			strbuf_printf(&b,
			              "# HELP chat_persist_stream_pending Stream entries delivered "
			              "to the persist group, not yet acknowledged.\n"
			              "# TYPE chat_persist_stream_pending gauge\n"
			              "chat_persist_stream_pending %lld\n",
			              pending);
			if (lag >= 0)
				strbuf_printf(
				    &b,
				    "# HELP chat_persist_stream_lag Stream entries not yet "
				    "read by the persist group.\n"
				    "# TYPE chat_persist_stream_lag gauge\n"
				    "chat_persist_stream_lag %lld\n",
				    lag);
		}
	}
	size_t len;
	char *text = strbuf_take(&b, &len);
	if (text == NULL) {
		fail(j, 503, "unavailable", "out of memory", -1);
		return;
	}
	j->status = 200;
	j->body = text;
	j->body_len = len;
	j->ctype = "text/plain; version=0.0.4; charset=utf-8";
	j->reject = -1;
}

void job_run(struct front *f, struct worker_ctx *w, struct job *j)
{
	switch (j->kind) {
	case JOB_REGISTER:
		do_register(f, w, j);
		break;
	case JOB_LOGIN:
		do_login(f, w, j);
		break;
	case JOB_HISTORY:
		do_history(f, w, j);
		break;
	case JOB_METRICS:
		do_metrics(f, w, j);
		break;
	case JOB_LOGOUT:
		do_logout(f, w, j);
		break;
	}
	credentials_clear(&j->cred);
	if (j->body == NULL && j->status != 0 && j->kind != JOB_METRICS && j->status != 204)
		j->status = 503; /* cJSON ran out of memory */
}
