/*
 * The HTTP side of the web front, on the event loop: routing, the request
 * checks that need no I/O (method, size, JSON shape, token, rate limits),
 * static files with their content types and cache headers, and the answers
 * of jobs that a worker finished. Nothing here blocks.
 *
 * Every wait has a deadline, kept with the wsi's timer: the headers (and a
 * body) within http_header_timeout, a job within history_timeout_ms, the
 * health checks within health_timeout_ms. Each accepted connection counts
 * against the per-address and total caps from accept to close.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "chat/log.h"
#include "front.h"

struct http_sess {
	struct lws *wsi;
	struct job *job; /* at a worker */
	/* /healthz: waiting for these check generations, in f->health_waiting */
	int health_wait;
	uint64_t health_gen[DEP_COUNT];
	struct http_sess *health_next;
	enum route route;
	int64_t t0_us;
	char peer[64];
	/* the request body */
	char *body;
	size_t body_len, body_expected;
	/* the answer */
	unsigned char *hdr; /* LWS_PRE + headers */
	size_t hdr_len;
	char *resp;
	size_t resp_len, resp_off;
	int hdr_sent;
	int close_after; /* the request's body was not read: close afterwards */
	int answered;
};

#define HDR_ROOM 2048

static struct front *front_of(struct lws *wsi)
{
	return lws_context_user(lws_get_context(wsi));
}

static void health_unlink(struct front *f, struct http_sess *s)
{
	for (struct http_sess **p = &f->health_waiting; *p; p = &(*p)->health_next) {
		if (*p == s) {
			*p = s->health_next;
			break;
		}
	}
	s->health_wait = 0;
	s->health_next = NULL;
}

static void sess_reset(struct http_sess *s)
{
	if (s->health_wait)
		health_unlink(front_of(s->wsi), s);
	if (s->job)
		s->job->wsi = NULL; /* the worker's answer will be dropped */
	free(s->body);
	free(s->hdr);
	free(s->resp);
	struct lws *wsi = s->wsi;
	memset(s, 0, sizeof(*s));
	s->wsi = wsi;
}

/* The deadline for the next request's headers (a keep-alive connection
 * waits for them as a new one does). */
static void conn_await_headers(struct lws *wsi)
{
	lws_set_timer_usecs(wsi,
	                    (lws_usec_t)front_of(wsi)->cfg->http_header_timeout * LWS_US_PER_SEC);
}

/* Queues an answer: status, content type, body (taken over, malloc'd or
 * NULL) and extra header lines ("name: value\r\n"...). Returns 0, or -1 to
 * close the connection (out of memory). */
static int respond(struct lws *wsi, struct http_sess *s, int status, const char *ctype, char *body,
                   size_t len, const char *extra)
{
	unsigned char *start, *p, *end;

	s->hdr = malloc(LWS_PRE + HDR_ROOM);
	if (s->hdr == NULL) {
		free(body);
		return -1;
	}
	start = p = s->hdr + LWS_PRE;
	end = start + HDR_ROOM - 1;
	if (lws_add_http_common_headers(wsi, (unsigned int)status, ctype, len, &p, end))
		goto error;
	if (lws_add_http_header_by_name(wsi, (const unsigned char *)"x-content-type-options:",
	                                (const unsigned char *)"nosniff", 7, &p, end))
		goto error;
	if (s->close_after &&
	    lws_add_http_header_by_name(wsi, (const unsigned char *)"connection:",
	                                (const unsigned char *)"close", 5, &p, end))
		goto error;
	if (extra) {
		size_t n = strlen(extra);
		if (n > (size_t)(end - p))
			goto error;
		memcpy(p, extra, n);
		p += n;
	}
	if (lws_finalize_http_header(wsi, &p, end))
		goto error;
	s->hdr_len = (size_t)(p - start);
	s->resp = body;
	s->resp_len = body ? len : 0;
	s->resp_off = 0;
	s->answered = 1;
	lws_callback_on_writable(wsi);
	return 0;
error:
	free(body);
	return -1;
}

/* A JSON error answer: {"error":{"code":...,"message":...}}. */
static int respond_error(struct lws *wsi, struct http_sess *s, int status, const char *code,
                         const char *message, int reject, const char *extra)
{
	struct front *f = front_of(wsi);
	cJSON *o = cJSON_CreateObject(), *e = cJSON_AddObjectToObject(o, "error");

	cJSON_AddStringToObject(e, "code", code);
	cJSON_AddStringToObject(e, "message", message);
	char *body = cJSON_PrintUnformatted(o);
	cJSON_Delete(o);
	if (body == NULL)
		return -1;
	if (reject >= 0)
		f->m.rejects[reject]++;
	return respond(wsi, s, status, "application/json", body, strlen(body), extra);
}

static int write_more(struct lws *wsi, struct http_sess *s)
{
	struct front *f = front_of(wsi);

	if (!s->hdr_sent) {
		if (lws_write(wsi, s->hdr + LWS_PRE, s->hdr_len, LWS_WRITE_HTTP_HEADERS) !=
		    (int)s->hdr_len)
			return -1;
		s->hdr_sent = 1;
		if (s->resp_len > 0) {
			lws_callback_on_writable(wsi);
			return 0;
		}
	} else if (s->resp_off < s->resp_len) {
		unsigned char buf[LWS_PRE + 16384];
		size_t n = s->resp_len - s->resp_off;
		if (n > sizeof(buf) - LWS_PRE)
			n = sizeof(buf) - LWS_PRE;
		memcpy(buf + LWS_PRE, s->resp + s->resp_off, n);
		s->resp_off += n;
		int last = s->resp_off == s->resp_len;
		if (lws_write(wsi, buf + LWS_PRE, n,
		              last ? LWS_WRITE_HTTP_FINAL : LWS_WRITE_HTTP) != (int)n)
			return -1;
		if (!last) {
			lws_callback_on_writable(wsi);
			return 0;
		}
	}
	metrics_latency(&f->m, s->route, (double)(now_us() - s->t0_us) / 1e6);
	int close_after = s->close_after;
	sess_reset(s);
	if (close_after)
		return -1;
	if (lws_http_transaction_completed(wsi))
		return -1;
	conn_await_headers(wsi);
	return 0;
}

/* ---- requests ---- */

enum method { M_GET, M_POST, M_OTHER };

static enum method method_of(struct lws *wsi)
{
	if (lws_hdr_total_length(wsi, WSI_TOKEN_GET_URI))
		return M_GET;
	if (lws_hdr_total_length(wsi, WSI_TOKEN_POST_URI))
		return M_POST;
	return M_OTHER;
}

/* Hashing jobs go to their own bounded pool: when it is full the answer
 * is 503 at once, and nothing else ever queues behind them. Other jobs
 * get a deadline (history_timeout_ms) after which they answer 503. */
static int submit(struct lws *wsi, struct http_sess *s, struct job *j)
{
	struct front *f = front_of(wsi);
	int hashing = j->kind == JOB_LOGIN || j->kind == JOB_REGISTER;

	j->wsi = wsi;
	j->route = s->route;
	j->reject = -1;
	if (pool_submit(hashing ? &f->hash_pool : &f->pool, j) != 0) {
		job_free(j);
		return respond_error(wsi, s, 503, "unavailable",
		                     "too many logins at once; try again in a moment", REJ_BUSY,
		                     "retry-after: 1\r\n");
	}
	s->job = j;
	if (hashing)
		wsi_timer_off(wsi);
	else
		lws_set_timer_usecs(wsi, (lws_usec_t)f->cfg->history_timeout_ms * 1000);
	return 0;
}

/* A job past its deadline: answer 503 now; the worker's late answer is
 * dropped (job->wsi is cleared). */
static int job_timed_out(struct lws *wsi, struct http_sess *s)
{
	s->job->wsi = NULL;
	s->job = NULL;
	return respond_error(wsi, s, 503, "unavailable",
	                     "the store or Redis did not answer in time; try again", REJ_TIMEOUT,
	                     "retry-after: 5\r\ncache-control: no-store\r\n");
}

static int health_finish(struct lws *wsi, struct http_sess *s)
{
	struct front *f = front_of(wsi);
	char *body = NULL;

	health_unlink(f, s);
	wsi_timer_off(wsi);
	int status = health_answer(f->health, s->health_gen, &body);
	if (body == NULL)
		return -1;
	return respond(wsi, s, status, "application/json", body, strlen(body),
	               "cache-control: no-store\r\n");
}

static int health_request(struct lws *wsi, struct http_sess *s)
{
	struct front *f = front_of(wsi);

	health_kick(f->health, s->health_gen);
	s->health_wait = 1;
	s->health_next = f->health_waiting;
	f->health_waiting = s;
	if (health_ready(f->health, s->health_gen))
		return health_finish(wsi, s);
	lws_set_timer_usecs(wsi, (lws_usec_t)f->cfg->health_timeout_ms * 1000);
	return 0;
}

/* Answers every /healthz whose checks have all finished (loop thread,
 * woken by a check thread). */
static void health_poll(struct front *f)
{
	struct http_sess *s = f->health_waiting, *next;
	for (; s; s = next) {
		next = s->health_next;
		if (health_ready(f->health, s->health_gen) && health_finish(s->wsi, s) != 0)
			lws_set_timeout(s->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
	}
}

static struct job *job_new(enum job_kind kind)
{
	struct job *j = calloc(1, sizeof(*j));
	if (j)
		j->kind = kind;
	return j;
}

/* A query argument as a whole number >= 0: -1 when absent, -2 when
 * present but not a number in range. */
static int64_t arg_int(struct lws *wsi, const char *name)
{
	char buf[64];
	const char *v = lws_get_urlarg_by_name(wsi, name, buf, sizeof(buf));
	if (v == NULL)
		return -1;
	if (*v == '\0' || strlen(v) > 18)
		return -2;
	for (const char *p = v; *p; p++)
		if (!isdigit((unsigned char)*p))
			return -2;
	return strtoll(v, NULL, 10);
}

/* The claims of the request's Bearer token. Returns 0, or the answer's
 * return value after a 401 (*answered set). Whether it was revoked is
 * asked of Redis by the job (revocation.h). */
static int bearer(struct lws *wsi, struct http_sess *s, struct token_claims *claims, int *answered)
{
	struct front *f = front_of(wsi);
	char auth[8200];

	*answered = 1;
	int alen = lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_AUTHORIZATION);
	if (alen <= 7 || alen >= (int)sizeof(auth) ||
	    lws_hdr_copy(wsi, auth, sizeof(auth), WSI_TOKEN_HTTP_AUTHORIZATION) != alen ||
	    strncasecmp(auth, "Bearer ", 7) != 0)
		return respond_error(wsi, s, 401, "unauthorized", "a Bearer token is required",
		                     REJ_UNAUTHORIZED, "www-authenticate: Bearer\r\n");
	int rc = token_verify(&f->kr, auth + 7, (size_t)alen - 7, time(NULL), claims);
	if (rc != TOKEN_OK)
		return respond_error(wsi, s, 401, "unauthorized", token_strerror(rc),
		                     REJ_UNAUTHORIZED,
		                     "www-authenticate: Bearer error=\"invalid_token\"\r\n");
	*answered = 0;
	return 0;
}

static void job_token(struct job *j, const struct token_claims *claims)
{
	memcpy(j->user, claims->sub, sizeof(j->user));
	memcpy(j->jti, claims->jti, sizeof(j->jti));
	j->iat = claims->iat;
	j->exp = claims->exp;
}

/* POST /api/logout: the job revokes the token's jti (204). */
static int logout_request(struct lws *wsi, struct http_sess *s)
{
	struct token_claims claims;
	int answered;

	int rc = bearer(wsi, s, &claims, &answered);
	if (answered)
		return rc;
	if (claims.jti[0] == '\0')
		return respond_error(wsi, s, 400, "bad_request",
		                     "this token has no jti: revoke it with user.revoke",
		                     REJ_BAD_REQUEST, NULL);
	/* Each costs a Redis script, so they are bounded, but in a bucket of
	 * their own, keyed by the verified token's user: only a holder of one
	 * of that user's tokens can spend it, and wrong logins for the name
	 * (the sign-in buckets) never keep anyone from signing out. */
	if (!ratelimit_take(&front_of(wsi)->rl_logout, claims.sub, now_us() / 1000)) {
		char retry[40];
		snprintf(retry, sizeof(retry), "retry-after: %ld\r\n",
		         (60 + front_of(wsi)->cfg->logout_per_min - 1) /
		             front_of(wsi)->cfg->logout_per_min);
		return respond_error(wsi, s, 429, "rate_limited",
		                     "too many sign-outs for this user; try again in a moment",
		                     REJ_RATE, retry);
	}
	struct job *j = job_new(JOB_LOGOUT);
	if (j == NULL)
		return -1;
	job_token(j, &claims);
	return submit(wsi, s, j);
}

static int history_request(struct lws *wsi, struct http_sess *s)
{
	char conv[256];
	struct token_claims claims;
	const char *msg = NULL;
	int answered;

	int rc = bearer(wsi, s, &claims, &answered);
	if (answered)
		return rc;

	/* a longer value is refused below, never cut to a shorter valid id */
	const char *c = lws_get_urlarg_by_name(wsi, "conv=", conv, sizeof(conv));
	if (c && strlen(c) > NAME_CONV_MAX)
		return respond_error(wsi, s, 400, "bad_request", "conv is too long",
		                     REJ_BAD_REQUEST, NULL);
	int64_t before = arg_int(wsi, "before="), after = arg_int(wsi, "after="),
	        limit = arg_int(wsi, "limit=");
	if (before == -2 || after == -2 || limit == -2)
		return respond_error(wsi, s, 400, "bad_request",
		                     "before, after and limit must be whole numbers",
		                     REJ_BAD_REQUEST, NULL);
	struct job *j = job_new(JOB_HISTORY);
	if (j == NULL)
		return -1;
	const char *code = history_query_init(&j->q, c ? c : "", before, after, limit, &msg);
	if (code != NULL) {
		job_free(j);
		return respond_error(wsi, s, 400, "bad_request", msg ? msg : code, REJ_BAD_REQUEST,
		                     NULL);
	}
	job_token(j, &claims);
	return submit(wsi, s, j);
}

int metrics_token_load(struct front *f)
{
	unsigned char *buf = NULL;
	size_t len = 0;

	if (f->cfg->metrics_token_file == NULL)
		return 0;
	if (config_read_file(f->cfg->metrics_token_file, &buf, &len) != 0) {
		log_msg(LOG_ERR, "metrics_token_file: cannot read %s", f->cfg->metrics_token_file);
		return -1;
	}
	while (len && (buf[len - 1] == '\n' || buf[len - 1] == '\r' || buf[len - 1] == ' '))
		buf[--len] = '\0';
	for (size_t i = 0; i < len; i++) {
		if (buf[i] < 0x21 || buf[i] > 0x7e)
			len = 0; /* refused below: a token is one printable word */
	}
	if (len < 16) {
		log_msg(LOG_ERR,
		        "metrics_token_file: %s must hold one printable token of at least "
		        "16 characters",
		        f->cfg->metrics_token_file);
		free(buf);
		return -1;
	}
	f->metrics_token = (char *)buf;
	return 0;
}

static int peer_loopback(const char *peer)
{
	return strncmp(peer, "127.", 4) == 0 || strcmp(peer, "::1") == 0 ||
	       strncmp(peer, "::ffff:127.", 11) == 0;
}

/* /metrics: with metrics_token_file, the Bearer token; without, loopback
 * clients only. Returns 1 when allowed, else 0 with the refusal queued in
 * *rc. */
static int metrics_allowed(struct lws *wsi, struct http_sess *s, int *rc)
{
	struct front *f = front_of(wsi);
	char auth[512];

	if (f->metrics_token == NULL) {
		if (peer_loopback(s->peer))
			return 1;
		*rc = respond_error(wsi, s, 403, "forbidden",
		                    "/metrics is served to loopback clients only (set "
		                    "metrics_token_file to allow others)",
		                    REJ_FORBIDDEN, NULL);
		return 0;
	}
	int alen = lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_AUTHORIZATION);
	size_t want = strlen(f->metrics_token);
	if (alen > 7 && alen < (int)sizeof(auth) &&
	    lws_hdr_copy(wsi, auth, sizeof(auth), WSI_TOKEN_HTTP_AUTHORIZATION) == alen &&
	    strncasecmp(auth, "Bearer ", 7) == 0 && (size_t)alen - 7 == want &&
	    sodium_memcmp(auth + 7, f->metrics_token, want) == 0)
		return 1;
	*rc = respond_error(wsi, s, 401, "unauthorized", "/metrics needs its Bearer token",
	                    REJ_UNAUTHORIZED, "www-authenticate: Bearer\r\n");
	return 0;
}

static int metrics_request(struct lws *wsi, struct http_sess *s)
{
	struct front *f = front_of(wsi);
	struct strbuf b;
	int rc = 0;

	if (!metrics_allowed(wsi, s, &rc))
		return rc;
	struct job *j = job_new(JOB_METRICS);
	if (j == NULL)
		return -1;
	strbuf_init(&b);
	metrics_render(&f->m, &b);
	j->text = strbuf_take(&b, NULL);
	if (j->text == NULL) {
		job_free(j);
		return -1;
	}
	return submit(wsi, s, j);
}

/* ---- static files ---- */

/* The kinds of file the web app is made of, and only those: anything else
 * in the folder (a stamp, a build file, a file an operator left there) is
 * not an app file and is answered 404, as a missing one is. */
static const struct {
	const char *ext, *type;
} mime[] = {
    {".html", "text/html; charset=utf-8"},
    {".js", "text/javascript; charset=utf-8"},
    {".mjs", "text/javascript; charset=utf-8"},
    {".css", "text/css; charset=utf-8"},
    {".webmanifest", "application/manifest+json"},
    {".svg", "image/svg+xml"},
    {".png", "image/png"},
    {".ico", "image/x-icon"},
    {".woff2", "font/woff2"},
};

/* The content type of an app file, or NULL when path is not one. */
static const char *mime_of(const char *path)
{
	const char *dot = strrchr(path, '.');
	if (dot && strchr(dot, '/') == NULL)
		for (size_t i = 0; i < sizeof(mime) / sizeof(mime[0]); i++)
			if (strcasecmp(dot, mime[i].ext) == 0)
				return mime[i].type;
	return NULL;
}

/* A safe path below the static folder: letters, digits, "._-/", no "..",
 * no hidden files or folders, no empty segment. */
static int path_safe(const char *uri)
{
	if (uri[0] != '/' || strlen(uri) > 200)
		return 0;
	for (const char *p = uri; *p; p++) {
		if (!isalnum((unsigned char)*p) && !strchr("._-/", *p))
			return 0;
		if (*p == '/' && (p[1] == '.' || p[1] == '/'))
			return 0;
	}
	return 1;
}

static int static_request(struct lws *wsi, struct http_sess *s, const char *uri)
{
	struct front *f = front_of(wsi);
	char path[4400], etag[64], inm[128], extra[512];
	struct stat st;

	if (strcmp(uri, "/") == 0)
		uri = "/index.html";
	const char *type = mime_of(uri);
	if (!path_safe(uri) || type == NULL)
		return respond_error(wsi, s, 404, "not_found", "no such file", REJ_NOT_FOUND, NULL);
	snprintf(path, sizeof(path), "%s%s", f->cfg->static_dir, uri);
	if (stat(path, &st) != 0 || !S_ISREG(st.st_mode))
		return respond_error(wsi, s, 404, "not_found", "no such file", REJ_NOT_FOUND, NULL);

	int html = strncmp(type, "text/html", 9) == 0;
	snprintf(etag, sizeof(etag), "\"%llx-%llx\"", (unsigned long long)st.st_size,
	         (unsigned long long)st.st_mtim.tv_sec * 1000000000ull +
	             (unsigned long long)st.st_mtim.tv_nsec);
	/* HTML revalidates every time, so a new deployment shows at once; the
	 * rest is cached for an hour and revalidated by ETag after that. */
	/* MQTT.js keeps its keepalive timer in a blob: Worker, hence
	 * worker-src */
	snprintf(extra, sizeof(extra),
	         "etag: %s\r\ncache-control: %s\r\nx-content-type-options: nosniff\r\n%s", etag,
	         html ? "no-cache" : "public, max-age=3600",
	         html ? "content-security-policy: default-src 'self'; connect-src 'self' ws: wss:;"
	                " img-src 'self' data:; worker-src 'self' blob:; frame-ancestors 'none'\r\n"
	              : "");
	int n = lws_hdr_copy(wsi, inm, sizeof(inm), WSI_TOKEN_HTTP_IF_NONE_MATCH);
	if (n > 0 && strcmp(inm, etag) == 0)
		return respond(wsi, s, 304, type, NULL, 0, extra);

	s->answered = 1;
	metrics_latency(&f->m, ROUTE_STATIC, (double)(now_us() - s->t0_us) / 1e6);
	n = lws_serve_http_file(wsi, path, type, extra, (int)strlen(extra));
	if (n < 0 || (n > 0 && lws_http_transaction_completed(wsi)))
		return -1;
	return 0;
}

/* ---- routing ---- */

static int start_request(struct lws *wsi, struct http_sess *s, const char *uri)
{
	struct front *f = front_of(wsi);
	enum method m = method_of(wsi);
	int is_post_route = strcmp(uri, "/api/register") == 0 || strcmp(uri, "/api/login") == 0;

	/* the headers are in; what follows has its own deadline (a body: the
	 * same as the headers) */
	lws_set_timer_usecs(wsi, (lws_usec_t)f->cfg->http_header_timeout * LWS_US_PER_SEC);
	s->wsi = wsi;
	s->t0_us = now_us();
	lws_get_peer_simple(wsi, s->peer, sizeof(s->peer));
	/* a body we will not read: answer, then close */
	if (m != M_POST || !is_post_route)
		s->close_after =
		    lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_CONTENT_LENGTH) > 0 && m != M_GET;

	if (is_post_route) {
		s->route = uri[5] == 'r' ? ROUTE_REGISTER : ROUTE_LOGIN;
		if (m != M_POST)
			return respond_error(wsi, s, 405, "method_not_allowed", "use POST",
			                     REJ_METHOD, "allow: POST\r\n");
		char cl[24];
		if (lws_hdr_copy(wsi, cl, sizeof(cl), WSI_TOKEN_HTTP_CONTENT_LENGTH) <= 0) {
			s->close_after = 1;
			return respond_error(wsi, s, 411, "bad_request",
			                     "Content-Length is required", REJ_BAD_REQUEST, NULL);
		}
		char *end;
		errno = 0;
		unsigned long long len = strtoull(cl, &end, 10);
		if (errno || *end || end == cl || len > (unsigned long long)f->cfg->http_body_max) {
			s->close_after = 1;
			return respond_error(wsi, s, 413, "too_large", "the body is too large",
			                     REJ_TOO_LARGE, NULL);
		}
		if (len == 0)
			return respond_error(wsi, s, 400, "bad_request", "the body is empty",
			                     REJ_BAD_REQUEST, NULL);
		if (!ratelimit_take(&f->rl_addr, s->peer, now_us() / 1000)) {
			s->close_after = 1;
			return respond_error(wsi, s, 429, "rate_limited",
			                     "too many attempts; wait a minute", REJ_RATE,
			                     "retry-after: 60\r\n");
		}
		s->body_expected = (size_t)len;
		s->body = malloc(s->body_expected + 1);
		return s->body ? 0 : -1;
	}
	if (strncmp(uri, "/api/", 5) == 0 || strcmp(uri, "/healthz") == 0 ||
	    strcmp(uri, "/metrics") == 0 || strcmp(uri, "/mqtt") == 0) {
		s->route = strcmp(uri, "/api/history") == 0 ? ROUTE_HISTORY
		           : strcmp(uri, "/healthz") == 0   ? ROUTE_HEALTHZ
		           : strcmp(uri, "/metrics") == 0   ? ROUTE_METRICS
		                                            : ROUTE_OTHER;
		if (strcmp(uri, "/api/logout") == 0) {
			s->route = ROUTE_LOGOUT;
			if (m != M_POST)
				return respond_error(wsi, s, 405, "method_not_allowed", "use POST",
				                     REJ_METHOD, "allow: POST\r\n");
			return logout_request(wsi, s);
		}
		if (s->route == ROUTE_OTHER && strcmp(uri, "/mqtt") != 0)
			return respond_error(wsi, s, 404, "not_found", "no such endpoint",
			                     REJ_NOT_FOUND, NULL);
		if (m != M_GET)
			return respond_error(wsi, s, 405, "method_not_allowed", "use GET",
			                     REJ_METHOD, "allow: GET\r\n");
		switch (s->route) {
		case ROUTE_HISTORY:
			return history_request(wsi, s);
		case ROUTE_HEALTHZ:
			return health_request(wsi, s);
		case ROUTE_METRICS:
			return metrics_request(wsi, s);
		default:
			return respond_error(wsi, s, 426, "upgrade_required",
			                     "/mqtt is a WebSocket (subprotocol mqtt)",
			                     REJ_SUBPROTOCOL, "upgrade: websocket\r\n");
		}
	}
	s->route = ROUTE_STATIC;
	if (m != M_GET)
		return respond_error(wsi, s, 405, "method_not_allowed", "use GET", REJ_METHOD,
		                     "allow: GET\r\n");
	return static_request(wsi, s, uri);
}

static int body_complete(struct lws *wsi, struct http_sess *s)
{
	struct front *f = front_of(wsi);
	const char *why = NULL;
	struct job *j;

	if (s->body_len != s->body_expected)
		return respond_error(wsi, s, 400, "bad_request", "the body is incomplete",
		                     REJ_BAD_REQUEST, NULL);
	j = job_new(s->route == ROUTE_REGISTER ? JOB_REGISTER : JOB_LOGIN);
	if (j == NULL)
		return -1;
	int bad = credentials_parse(s->body, s->body_len, &j->cred, &why);
	sodium_memzero(s->body, s->body_len);
	if (bad) {
		job_free(j);
		return respond_error(wsi, s, 400, "bad_request", why, REJ_BAD_REQUEST, NULL);
	}
	if (!ratelimit_take(&f->rl_user, j->cred.user, now_us() / 1000)) {
		job_free(j);
		return respond_error(wsi, s, 429, "rate_limited",
		                     "too many attempts for this user; wait a minute", REJ_RATE,
		                     "retry-after: 60\r\n");
	}
	/* the password's strength is judged by the worker (zxcvbn takes up to
	 * milliseconds, not for the loop) */
	if (j->kind == JOB_REGISTER && strcmp(j->cred.user, f->reserved_user) == 0) {
		job_free(j);
		return respond_error(wsi, s, 409, "conflict", "that username is taken",
		                     REJ_CONFLICT, NULL);
	}
	return submit(wsi, s, j);
}

void http_job_done(struct front *f, struct job *j)
{
	struct lws *wsi = j->wsi;

	if (wsi == NULL) {
		job_free(j);
		return;
	}
	struct http_sess *s = lws_wsi_user(wsi);
	s->job = NULL;
	wsi_timer_off(wsi);
	if (j->reject >= 0 && j->reject < REJ_COUNT)
		f->m.rejects[j->reject]++;
	char *body = j->body;
	j->body = NULL;
	char extra[96] = "cache-control: no-store\r\n";
	if (j->retry_after > 0)
		snprintf(extra + strlen(extra), sizeof(extra) - strlen(extra),
		         "retry-after: %d\r\n", j->retry_after);
	if (respond(wsi, s, j->status ? j->status : 503, j->ctype ? j->ctype : "application/json",
	            body, j->body_len, extra) != 0)
		lws_set_timeout(wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
	job_free(j);
}

/* A browser's Origin is accepted when it names this front's own Host
 * (http or https) or is listed in ws_origins; a client that sends no
 * Origin (not a browser) is accepted too. So another site's page cannot
 * open /mqtt with its visitor's browser. */
static int origin_ok(struct lws *wsi)
{
	struct front *f = front_of(wsi);
	char origin[512], host[300];

	int olen = lws_hdr_total_length(wsi, WSI_TOKEN_ORIGIN);
	if (olen <= 0)
		return 1;
	if (olen >= (int)sizeof(origin) ||
	    lws_hdr_copy(wsi, origin, sizeof(origin), WSI_TOKEN_ORIGIN) != olen)
		return 0;
	const char *rest = strncasecmp(origin, "http://", 7) == 0    ? origin + 7
	                   : strncasecmp(origin, "https://", 8) == 0 ? origin + 8
	                                                             : NULL;
	int hlen = lws_hdr_copy(wsi, host, sizeof(host), WSI_TOKEN_HOST);
	if (rest && hlen > 0 && strcasecmp(rest, host) == 0)
		return 1;
	const char *list = f->cfg->ws_origins;
	while (list && *list) {
		size_t n = strcspn(list, " ,");
		if (n == (size_t)olen && strncasecmp(list, origin, n) == 0)
			return 1;
		list += n;
		list += strspn(list, " ,");
	}
	return 0;
}

/* The only upgrade served: GET /mqtt naming the subprotocol "mqtt" (alone
 * or in a list). */
static int upgrade_ok(struct lws *wsi)
{
	char uri[16], proto[256];

	if (lws_hdr_copy(wsi, uri, sizeof(uri), WSI_TOKEN_GET_URI) <= 0 ||
	    strcmp(uri, "/mqtt") != 0)
		return 0;
	if (lws_hdr_copy(wsi, proto, sizeof(proto), WSI_TOKEN_PROTOCOL) <= 0)
		return 0;
	for (char *save = NULL, *t = strtok_r(proto, ", ", &save); t;
	     t = strtok_r(NULL, ", ", &save))
		if (strcmp(t, "mqtt") == 0)
			return 1;
	return 0;
}

/* ---- connections: caps and the header deadline ---- */

/* A new TCP connection (the wsi is the listener's): counted against the
 * caps, or refused before anything is read. */
static int conn_accept(struct front *f, const struct lws_filter_network_conn_args *a)
{
	char addr[INET6_ADDRSTRLEN] = "";

	if (f->accepted) { /* counted for a wsi that was never created */
		connlimit_release(&f->conns, f->accepted);
		f->accepted = NULL;
	}
	if (a->cli_addr.ss_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *)&a->cli_addr)->sin_addr, addr,
		          sizeof(addr));
	else if (a->cli_addr.ss_family == AF_INET6)
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)&a->cli_addr)->sin6_addr, addr,
		          sizeof(addr));
	int rc = connlimit_take(&f->conns, addr, &f->accepted);
	if (rc == CONNLIMIT_OK)
		return 0;
	f->m.rejects[REJ_CONN_LIMIT]++;
	return 1;
}

/* The accepted connection's wsi: it carries its count until destroyed
 * (kept by wsi in the connlimit table: an opaque pointer set here is gone
 * again by WSI_DESTROY in libwebsockets 4.1), and its headers must arrive
 * within http_header_timeout. */
static int conn_created(struct lws *wsi)
{
	struct front *f = front_of(wsi);
	struct cl_addr *a = f->accepted;

	if (a == NULL)
		return 0; /* not one we accepted (a client connection) */
	f->accepted = NULL;
	if (connlimit_bind(&f->conns, wsi, a) != 0) {
		connlimit_release(&f->conns, a);
		return -1;
	}
	lws_set_timer_usecs(wsi, (lws_usec_t)f->cfg->http_header_timeout * LWS_US_PER_SEC);
	return 0;
}

static int callback_http(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                         size_t len)
{
	struct http_sess *s = user;
	struct front *f;

	switch (reason) {
	case LWS_CALLBACK_HTTP:
		sess_reset(s);
		return start_request(wsi, s, in ? (const char *)in : "/");

	case LWS_CALLBACK_HTTP_BODY:
		if (s->body == NULL || s->answered)
			return 0;
		if (len > s->body_expected - s->body_len) {
			s->close_after = 1;
			return respond_error(wsi, s, 413, "too_large", "the body is too large",
			                     REJ_TOO_LARGE, NULL);
		}
		memcpy(s->body + s->body_len, in, len);
		s->body_len += len;
		return 0;

	case LWS_CALLBACK_HTTP_BODY_COMPLETION:
		if (s->answered || s->body == NULL)
			return 0;
		return body_complete(wsi, s);

	case LWS_CALLBACK_HTTP_WRITEABLE:
		if (s->hdr == NULL)
			return 0;
		return write_more(wsi, s);

	case LWS_CALLBACK_HTTP_FILE_COMPLETION:
		sess_reset(s);
		if (lws_http_transaction_completed(wsi))
			return -1;
		conn_await_headers(wsi);
		return 0;

	case LWS_CALLBACK_TIMER:
		f = front_of(wsi);
		if (s && s->health_wait)
			return health_finish(wsi, s);
		if (s && s->job)
			return job_timed_out(wsi, s);
		if (s && s->answered)
			return 0; /* the answer is on its way */
		/* headers or a body not in time: a slow client holds nothing */
		f->m.rejects[REJ_TIMEOUT]++;
		return -1;

	case LWS_CALLBACK_FILTER_NETWORK_CONNECTION:
		return conn_accept(front_of(wsi), user);

	case LWS_CALLBACK_WSI_CREATE:
		return conn_created(wsi);

	case LWS_CALLBACK_WSI_DESTROY:
		connlimit_drop(&front_of(wsi)->conns, wsi);
		return 0;

	case LWS_CALLBACK_CLOSED_HTTP:
	case LWS_CALLBACK_HTTP_DROP_PROTOCOL:
		if (s)
			sess_reset(s);
		return 0;

	case LWS_CALLBACK_HTTP_CONFIRM_UPGRADE:
		/* a WebSocket upgrade that is not "mqtt" at /mqtt: libwebsockets
		 * would refuse an unknown subprotocol by itself, but uncounted */
		if (!upgrade_ok(wsi)) {
			front_of(wsi)->m.rejects[REJ_SUBPROTOCOL]++;
			return 1;
		}
		if (!origin_ok(wsi)) {
			front_of(wsi)->m.rejects[REJ_ORIGIN]++;
			lws_return_http_status(wsi, HTTP_STATUS_FORBIDDEN,
			                       "this Origin may not open /mqtt");
			return 1;
		}
		return 0;

	case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION:
		/* a WebSocket upgrade that named no subprotocol we speak */
		f = front_of(wsi);
		f->m.rejects[REJ_SUBPROTOCOL]++;
		return 1;

	case LWS_CALLBACK_EVENT_WAIT_CANCELLED: {
		f = front_of(wsi);
		for (int k = 0; k < 2; k++) {
			struct job *j = pool_take_done(k ? &f->hash_pool : &f->pool);
			while (j) {
				struct job *next = j->next;
				http_job_done(f, j);
				j = next;
			}
		}
		health_poll(f);
		return 0;
	}
	default:
		break;
	}
	return lws_callback_http_dummy(wsi, reason, user, in, len);
}

const struct lws_protocols http_protocol = {
    "http", callback_http, sizeof(struct http_sess), 0, 0, NULL, 0};
