/*
 * /healthz without waiting on a hung dependency. Each dependency (broker,
 * Redis, store) has its own thread that runs one check when a request asks
 * for it; a request takes the result of a check that starts after it
 * arrived, or, after health_timeout_ms, reports the dependency down. A
 * check that hangs (a locked SQLite file, a MongoDB that accepts and never
 * answers, a stopped broker) holds only its own thread, and later
 * requests join the round that is already queued instead of piling up.
 *
 * The broker is probed with a real CONNECT as the service user (a token
 * minted with the front's own key, client id "<service>:health-<node>"),
 * then DISCONNECT: it proves the broker reads and answers, and its log
 * shows a normal session instead of a refusal on every check.
 */
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "chat/log.h"
#include "front.h"
#include "store.h"

static const char *const dep_names[DEP_COUNT] = {"broker", "redis", "store"};

struct health_check {
	pthread_t thread;
	int started;
	uint64_t want, running, done; /* generations asked, being run, finished */
	int up;
	/* the Redis check also reads the persist group's backlog */
	int group;
	long long pending, lag;
};

struct health {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int stop;
	struct health_check dep[DEP_COUNT];
	struct front *front;
};

/* The state of threads left in a hung check at shutdown. */
static struct health *left_behind;

struct health_arg {
	struct health *h;
	enum health_dep dep;
};

/* Appends an MQTT string (2-byte length, bytes). */
static size_t put_str(unsigned char *p, const char *s)
{
	size_t n = strlen(s);
	p[0] = (unsigned char)(n >> 8);
	p[1] = (unsigned char)n;
	memcpy(p + 2, s, n);
	return n + 2;
}

/* An MQTT 3.1.1 CONNECT (clean session, keepalive 10 s) into a malloc'd
 * buffer; user and password may be NULL. */
static unsigned char *connect_packet(const char *client_id, const char *user, const char *pass,
                                     size_t *len)
{
	size_t body = 10 + 2 + strlen(client_id);
	if (user)
		body += 2 + strlen(user) + 2 + strlen(pass);
	if (body > 65535)
		return NULL;
	unsigned char *pkt = malloc(body + 5), *p = pkt;
	if (pkt == NULL)
		return NULL;
	*p++ = 0x10;
	size_t rem = body;
	do {
		unsigned char b = rem & 0x7f;
		rem >>= 7;
		*p++ = rem ? (unsigned char)(b | 0x80) : b;
	} while (rem);
	static const unsigned char head[] = {0, 4, 'M', 'Q', 'T', 'T', 4, 0, 0, 10};
	memcpy(p, head, sizeof(head));
	p[7] = (unsigned char)(0x02 | (user ? 0xc0 : 0));
	p += sizeof(head);
	p += put_str(p, client_id);
	if (user) {
		p += put_str(p, user);
		p += put_str(p, pass);
	}
	*len = (size_t)(p - pkt);
	return pkt;
}

/* Up when the CONNECT gets a CONNACK (a refusal would still prove the
 * broker reads and answers, but with a token it is accepted). */
static int broker_up(struct front *f)
{
	static const unsigned char disconnect_pkt[] = {0xe0, 0};
	struct addrinfo hints = {0}, *ai = NULL;
	char port[16], client_id[128];
	unsigned char buf[4], *pkt = NULL;
	char *token = NULL;
	size_t pkt_len = 0;
	int fd = -1, up = 0;

	snprintf(client_id, sizeof(client_id), "%s:health-%s", f->cfg->service_user,
	         f->cfg->node_name);
	if (token_mint(&f->kr, f->cfg->service_user, ROLE_SERVICE, time(NULL), 60, &token) != 0)
		token = NULL; /* no signing key: an anonymous CONNECT, refused but answered */
	pkt = connect_packet(client_id, token ? f->cfg->service_user : NULL, token, &pkt_len);
	if (pkt == NULL)
		goto cleanup;
	hints.ai_socktype = SOCK_STREAM;
	snprintf(port, sizeof(port), "%ld", f->cfg->mqtt_port);
	if (getaddrinfo(f->cfg->mqtt_host, port, &hints, &ai) != 0) {
		ai = NULL;
		goto cleanup;
	}
	fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		goto cleanup;
	struct timeval tv = {1, 0};
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0)
		goto cleanup;
	if (send(fd, pkt, pkt_len, MSG_NOSIGNAL) != (ssize_t)pkt_len)
		goto cleanup;
	size_t got = 0;
	while (got < sizeof(buf)) {
		ssize_t n = recv(fd, buf + got, sizeof(buf) - got, 0);
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	up = got == sizeof(buf) && buf[0] == 0x20;
	if (up && buf[3] == 0)
		send(fd, disconnect_pkt, sizeof(disconnect_pkt), MSG_NOSIGNAL);
cleanup:
	if (fd >= 0)
		close(fd);
	if (ai)
		freeaddrinfo(ai);
	free(pkt);
	free(token);
	return up;
}

static int redis_up(struct front *f, struct worker_ctx *w, struct health_check *c)
{
	int up = 0;

	c->group = 0;
	if (want_redis(f, w)) {
		redisReply *rep = redis_cmd(w, "PING");
		up = rep && rep->type == REDIS_REPLY_STATUS && strcmp(rep->str, "PONG") == 0;
		freeReplyObject(rep);
		if (up && w->redis)
			c->group = persist_backlog(w, &c->pending, &c->lag);
	}
	return up;
}

static int store_up(struct front *f, struct worker_ctx *w)
{
	struct store *s = want_store(f, w);
	int up = s && store_ping(s) == STORE_OK;
	if (s && !up) {
		store_close(w->store);
		w->store = NULL;
	}
	return up;
}

static void *check_main(void *arg)
{
	struct health_arg a = *(struct health_arg *)arg;
	struct health *h = a.h;
	struct health_check *c = &h->dep[a.dep];
	struct worker_ctx w = {0};

	free(arg);
	pthread_mutex_lock(&h->lock);
	for (;;) {
		while (!h->stop && c->done >= c->want)
			pthread_cond_wait(&h->cond, &h->lock);
		if (h->stop)
			break;
		uint64_t gen = c->running = c->want;
		pthread_mutex_unlock(&h->lock);

		struct health_check r = {0};
		int up = a.dep == DEP_BROKER  ? broker_up(h->front)
		         : a.dep == DEP_REDIS ? redis_up(h->front, &w, &r)
		                              : store_up(h->front, &w);

		pthread_mutex_lock(&h->lock);
		c->up = up;
		c->group = r.group;
		c->pending = r.pending;
		c->lag = r.lag;
		c->done = gen;
		/* under the lock: once stop is set the loop may be gone */
		if (!h->stop)
			lws_cancel_service(h->front->ctx);
	}
	pthread_mutex_unlock(&h->lock);
	worker_ctx_free(&w);
	return NULL;
}

struct health *health_start(struct front *f)
{
	struct health *h = calloc(1, sizeof(*h));

	if (h == NULL) {
		log_msg(LOG_ERR, "out of memory");
		return NULL;
	}
	h->front = f;
	pthread_mutex_init(&h->lock, NULL);
	pthread_cond_init(&h->cond, NULL);
	for (int i = 0; i < DEP_COUNT; i++) {
		struct health_arg *a = malloc(sizeof(*a));
		if (a) {
			a->h = h;
			a->dep = (enum health_dep)i;
		}
		if (a == NULL || pthread_create(&h->dep[i].thread, NULL, check_main, a) != 0) {
			free(a);
			log_msg(LOG_ERR, "cannot start the %s health thread", dep_names[i]);
			health_stop(h);
			return NULL;
		}
		h->dep[i].started = 1;
	}
	return h;
}

/* A thread stuck in a hung check is not waited for: the process is
 * ending, and joining it could take as long as the dependency hangs. It
 * keeps h, which is then not freed (it only touches h and its own
 * connections when the check returns, and sees stop). */
void health_stop(struct health *h)
{
	if (h == NULL)
		return;
	pthread_mutex_lock(&h->lock);
	h->stop = 1;
	pthread_cond_broadcast(&h->cond);
	int idle[DEP_COUNT];
	for (int i = 0; i < DEP_COUNT; i++)
		idle[i] = h->dep[i].done >= h->dep[i].want;
	pthread_mutex_unlock(&h->lock);
	int left = 0;
	for (int i = 0; i < DEP_COUNT; i++) {
		if (!h->dep[i].started)
			continue;
		if (idle[i]) {
			pthread_join(h->dep[i].thread, NULL);
		} else {
			pthread_detach(h->dep[i].thread);
			left = 1;
		}
	}
	if (left) {
		left_behind = h; /* still in use: reachable, not a leak */
		return;
	}
	pthread_mutex_destroy(&h->lock);
	pthread_cond_destroy(&h->cond);
	free(h);
}

void health_kick(struct health *h, uint64_t gen[DEP_COUNT])
{
	pthread_mutex_lock(&h->lock);
	for (int i = 0; i < DEP_COUNT; i++) {
		struct health_check *c = &h->dep[i];
		/* a round not yet started is joined; else one more is asked */
		if (c->want == c->running)
			c->want++;
		gen[i] = c->want;
	}
	pthread_cond_broadcast(&h->cond);
	pthread_mutex_unlock(&h->lock);
}

int health_ready(struct health *h, const uint64_t gen[DEP_COUNT])
{
	int ready = 1;
	pthread_mutex_lock(&h->lock);
	for (int i = 0; i < DEP_COUNT; i++)
		ready &= h->dep[i].done >= gen[i];
	pthread_mutex_unlock(&h->lock);
	return ready;
}

int health_answer(struct health *h, const uint64_t gen[DEP_COUNT], char **body)
{
	int up[DEP_COUNT], group;
	long long pending, lag;

	pthread_mutex_lock(&h->lock);
	for (int i = 0; i < DEP_COUNT; i++)
		up[i] = h->dep[i].done >= gen[i] && h->dep[i].up;
	group = up[DEP_REDIS] && h->dep[DEP_REDIS].group;
	pending = h->dep[DEP_REDIS].pending;
	lag = h->dep[DEP_REDIS].lag;
	pthread_mutex_unlock(&h->lock);

	int ok = up[DEP_BROKER] && up[DEP_REDIS] && up[DEP_STORE];
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "status", ok ? "ok" : "down");
	cJSON_AddStringToObject(o, "node", h->front->cfg->node_name);
	for (int i = 0; i < DEP_COUNT; i++)
		cJSON_AddStringToObject(o, dep_names[i], up[i] ? "up" : "down");
	cJSON *p = cJSON_AddObjectToObject(o, "persistence");
	if (group) {
		cJSON_AddNumberToObject(p, "pending", (double)pending);
		if (lag >= 0) {
			cJSON_AddNumberToObject(p, "lag", (double)lag);
			cJSON_AddNumberToObject(p, "backlog", (double)(pending + lag));
		} else {
			cJSON_AddNullToObject(p, "lag");
			cJSON_AddNumberToObject(p, "backlog", (double)pending);
		}
	} else {
		cJSON_AddNullToObject(p, "backlog");
		cJSON_AddStringToObject(p, "note",
		                        up[DEP_REDIS] ? "no persist group on chat:stream yet"
		                                      : "Redis is down");
	}
	cJSON *down = cJSON_AddArrayToObject(o, "down");
	for (int i = 0; i < DEP_COUNT; i++)
		if (!up[i])
			cJSON_AddItemToArray(down, cJSON_CreateString(dep_names[i]));
	*body = cJSON_PrintUnformatted(o);
	cJSON_Delete(o);
	return ok ? 200 : 503;
}
