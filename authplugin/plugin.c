/*
 * chat_auth: the mosquitto 2.0 (plugin API v5) side of the chat broker.
 *
 * - BASIC_AUTH: the password is a JWT; it must verify with the configured
 *   algorithm and key, name the username as sub, and the client id must
 *   follow the rule of shared/PROTOCOL.md section 3.
 *   A user holds at most sessions_per_user persistent sessions and
 *   conn_per_address connections from one address, and connects at most
 *   as often as its CONNECT budget allows (connrate.c).
 * - ACL_CHECK: the topic rules of section 4 (acl.c), answered from the
 *   connection's entry compiled at auth time (clients.c). A departed
 *   client's Will is judged here, the only place it is seen (will.c).
 * - TICK: connections whose token has expired, or has been revoked
 *   (revoked.c), are disconnected.
 * - DISCONNECT: the connection's entry is dropped; its session's is kept
 *   (sessions.c) for its offline deliveries and its Will.
 * - MESSAGE: client input, seen whole (properties included), is let
 *   through only up to the size and property limits, while it can reach
 *   the bridge (watch.c) and while the broker holds less than its bound for
 *   the bridge (backlog.c, kept below mosquitto.conf's queue limits:
 *   brokerconf.c); a refused post gets a notice from here, a refused
 *   request an rpc error with its id: for an MQTT 3.1.1 QoS 1 publish,
 *   whose PUBACK cannot say no, the message itself becomes that answer,
 *   delivered ahead of the PUBACK. What passes is stamped with its
 *   sender's role (stamp.c).
 * - CONTROL on $CONTROL/chat/v1: private-room states and changes from
 *   the bridge (rooms.c; what it does not know for sure is closed),
 *   consulted by the topic rules, and token revocations
 *   (revoked.c), consulted at CONNECT and on the tick.
 *
 * Connections are reported to the bridge for presence, on <prefix>/sys/conn:
 * "up <user> <boot>-<n> <role>" after a successful auth and "down <user>
 * <boot>-<n> <role>" when it ends. <boot> is random per broker start and
 * retained on <prefix>/sys/boot, so the bridge can forget the connections
 * of a broker that restarted.
 *
 * Everything runs on the broker's thread; nothing here does network I/O.
 * Options are plugin_opt_<key> lines using the keys of core/config.c.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include <mosquitto.h>
#include <mosquitto_broker.h>
#include <mosquitto_plugin.h>
#include <mqtt_protocol.h>

#include "acl.h"
#include "addresses.h"
#include "backlog.h"
#include "brokerconf.h"
#include "chat/config.h"
#include "chat/log.h"
#include "chat/token.h"
#include "chat/topic.h"
#include "clients.h"
#include "connrate.h"
#include "refusal.h"
#include "replay.h"
#include "revoked.h"
#include "rooms.h"
#include "sessions.h"
#include "stamp.h"
#include "watch.h"
#include "will.h"

/* The broker finds these three by name; everything else stays hidden. */
#define PLUGIN_EXPORT __attribute__((visibility("default")))

/* Deliveries an offline bridge session may queue beyond bridge_queue_max:
 * posts stop at that bound, connection reports keep flowing (and stay
 * below mosquitto.conf's max_queued_messages: backlog.h). */
#define BRIDGE_QUEUE_SLACK BACKLOG_SLACK_COUNT

/* Connection reports replayed to a bridge per tick, at most (replay.h). */
#define REPLAY_PER_TICK 1000

struct plugin {
	mosquitto_plugin_id_t *id;
	struct chat_config cfg;
	struct token_keyring keys;
	struct acl_rules rules;
	struct client_table clients;
	struct room_table rooms;
	struct connrate_table connrate; /* CONNECTs per user */
	char boot[17];
	uint64_t next_conn;
	char conn_topic[80];
	struct session_table sessions;
	struct address_table addresses; /* users' connections per address */
	struct watch watch;
	struct backlog backlog; /* what the broker holds for the watched bridge */
	struct replay replay;   /* connections still to report to it again */
	struct revoked_table revoked;
	uint64_t revoked_seen; /* the revoked generation the connections were checked against */
	enum watch_state last_state; /* logged when it changes */
	int64_t next_prune;
};

static int64_t now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec;
}

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void to_mosquitto_log(enum log_level level, const char *line)
{
	static const int map[] = {MOSQ_LOG_ERR, MOSQ_LOG_WARNING, MOSQ_LOG_NOTICE,
	                          MOSQ_LOG_DEBUG};
	mosquitto_log_printf(map[level], "chat_auth: %s", line);
}

/* Publishes a connection event for the bridge (QoS 1, from the broker). */
static void report(struct plugin *p, const char *what, const struct acl_client *c,
                   uint64_t conn_id)
{
	char *msg = mosquitto_malloc(128);
	if (msg == NULL)
		return;
	int n = snprintf(msg, 128, "%s %s %s-%llu %s", what, c->user, p->boot,
	                 (unsigned long long)conn_id, token_role_name(c->role));
	mosquitto_broker_publish(NULL, p->conn_topic, n, msg, 1, false, NULL);
}

static int on_basic_auth(int event, void *event_data, void *userdata)
{
	struct mosquitto_evt_basic_auth *ed = event_data;
	struct plugin *p = userdata;
	struct token_claims claims;
	struct acl_client acl;
	const char *why;
	(void)event;

	const char *client_id = mosquitto_client_id(ed->client);
	const char *user = ed->username ? ed->username : "";
	if (ed->username == NULL || !name_user_valid(user, strlen(user))) {
		why = "missing or invalid username";
		goto refuse;
	}
	if (ed->password == NULL) {
		why = token_strerror(TOKEN_E_MISSING);
		goto refuse;
	}
	int rc = token_verify(&p->keys, ed->password, strlen(ed->password), now_s(), &claims);
	if (rc != TOKEN_OK) {
		why = token_strerror(rc);
		goto refuse;
	}
	if (strcmp(claims.sub, user) != 0) {
		why = "token sub is not the username";
		goto refuse;
	}
	if (revoked_match(&p->revoked, user, claims.jti, claims.iat, now_s())) {
		why = "token revoked";
		goto refuse;
	}
	/* counted once the token proves who connects: a wrong password
	 * cannot spend another user's budget */
	if (claims.role != ROLE_SERVICE && !connrate_take(&p->connrate, user, now_ms())) {
		why = "too many connections of this user a minute (connect_burst, connect_per_min)";
		goto refuse;
	}
	if (!acl_client_id_ok(user, client_id)) {
		why = "client id must be the user id or start with '<user id>:'";
		goto refuse;
	}
	/* services (bridge, web front) share their host with their users */
	const char *addr = mosquitto_client_address(ed->client);
	bool counted = claims.role != ROLE_SERVICE && addr != NULL;
	if (counted) {
		rc = addresses_take(&p->addresses, addr, p->cfg.conn_per_address);
		if (rc != ADDRESSES_OK) {
			why = rc == ADDRESSES_E_CAP ? "too many connections from this address "
			                              "(conn_per_address)"
			                            : "out of memory";
			goto refuse;
		}
	}
	rc =
	    sessions_connect(&p->sessions, client_id, user, claims.role, claims.exp, ed->client,
	                     !mosquitto_client_clean_session(ed->client), p->cfg.sessions_per_user);
	if (rc != SESSIONS_OK) {
		why = rc == SESSIONS_E_CAP ? "too many persistent sessions (sessions_per_user): "
		                             "reuse a client id or connect with a clean session"
		                           : "out of memory";
		goto uncount;
	}
	sessions_set_token(&p->sessions, client_id, claims.jti, claims.iat);
	memset(&acl, 0, sizeof(acl));
	acl.role = claims.role;
	acl.user_len = strlen(user);
	memcpy(acl.user, user, acl.user_len + 1);
	uint64_t conn_id = ++p->next_conn;
	if (clients_put(&p->clients, ed->client, &acl, claims.exp, conn_id) != 0) {
		why = "out of memory";
		goto uncount;
	}
	clients_set_token(&p->clients, ed->client, claims.jti, claims.iat);
	report(p, "up", &acl, conn_id);
	log_msg(LOG_DEBUG, "accepted %s as %s (client id %s)", user,
	        token_role_name(claims.role), client_id ? client_id : "");
	return MOSQ_ERR_SUCCESS;

uncount:
	if (counted)
		addresses_release(&p->addresses, addr);
refuse:
	/* the username is printed escaped-free only when it is a valid id */
	log_msg(LOG_INFO, "refused %s from %s: %s",
	        ed->username && name_user_valid(user, strlen(user)) ? user : "(invalid username)",
	        mosquitto_client_address(ed->client), why);
	return MOSQ_ERR_AUTH;
}

/* The size of a PUBLISH packet as sent: fixed header, topic, packet id,
 * properties (props_bytes of them, MQTT 5 only) and payload. */
static size_t publish_size(const struct mosquitto_evt_acl_check *ed, size_t props_bytes)
{
	size_t rest = 2 + strlen(ed->topic) + (ed->qos > 0 ? 2 : 0) + ed->payloadlen;
	if (mosquitto_client_protocol_version(ed->client) == 5)
		rest += stamp_varint_len(props_bytes) + props_bytes;
	return 1 + stamp_varint_len(rest) + rest;
}

/* A user's publish being judged: its sender, the write check it passed
 * (topic, payload, QoS), its properties where they are visible (NULL in
 * ACL_CHECK, for a Will, and for MQTT 3.1.1), and, when it is judged in
 * MOSQ_EVT_MESSAGE, the message itself (NULL elsewhere), which its refusal
 * may have to take over (refusal.h). */
struct post {
	const struct acl_client *c;
	const struct mosquitto_evt_acl_check *ed;
	const mosquitto_property *props;
	struct mosquitto_evt_message *msg;
	bool rewritten; /* msg now is its own refusal: let it pass unstamped */
};

/* Refusal of a user's publish (refusal.h): a notice, or a request's rpc
 * error. Where the sender will get a PUBACK that cannot say no, the message
 * itself becomes the refusal and passes: MOSQ_ERR_SUCCESS with
 * post->rewritten set, or MOSQ_ERR_NOMEM. Elsewhere (MQTT 5, QoS 0 and 2,
 * Wills) the refusal is published and the publish denied:
 * MOSQ_ERR_ACL_DENIED. Parsing for a cid or id is bounded: a payload of
 * more than 4 times the publish limit (max_packet_size lets up to 2 MiB
 * through) is refused without them. */
static int refuse_post(struct plugin *p, struct post *post, const char *code, const char *message)
{
	struct refusal r;
	bool in_place = post->msg != NULL && refusal_needs_place(post->msg);

	if (refusal_make(&r, p->cfg.topic_prefix, 4 * (size_t)p->cfg.publish_max, post->c->user,
	                 post->ed, post->props, code, message) != 0)
		return in_place ? MOSQ_ERR_NOMEM : MOSQ_ERR_ACL_DENIED;
	if (!in_place) {
		refusal_publish(&r);
		return MOSQ_ERR_ACL_DENIED;
	}
	int rc = refusal_in_place(post->msg, &r);
	post->rewritten = rc == MOSQ_ERR_SUCCESS;
	return rc;
}

/* Whether filter is the bridge's subscription to every post:
 * <prefix>/in/# or $share/<group>/<prefix>/in/#. */
/* Whether filter, shared or not, is <prefix><rest>. */
static bool is_filter(const struct plugin *p, const char *filter, const char *rest)
{
	if (strncmp(filter, "$share/", 7) == 0) {
		const char *slash = strchr(filter + 7, '/');
		if (slash == NULL)
			return false;
		filter = slash + 1;
	}
	size_t n = strlen(p->cfg.topic_prefix);
	return strncmp(filter, p->cfg.topic_prefix, n) == 0 && strcmp(filter + n, rest) == 0;
}

static bool is_in_filter(const struct plugin *p, const char *filter)
{
	return is_filter(p, filter, "/in/#");
}

/* A service subscribed to the connection reports, where marks go too. */
static void conn_subscribed(struct plugin *p, const char *id)
{
	if (p->watch.attached && id != NULL && strcmp(p->watch.id, id) == 0)
		backlog_resubscribed(&p->backlog);
	if (replay_start(&p->replay, &p->clients) != 0)
		log_msg(LOG_ERR, "out of memory: connections are not reported again to the bridge");
}

/* On the tick: a mark for the bridge when one is due, and the next
 * connection reports of a replay, as many as the backlog has room for
 * (half its bound, so posts keep theirs). What is published here is
 * routed at the broker's next loop turn, before the next tick. */
static void feed_bridge(struct plugin *p)
{
	uint64_t id = p->watch.attached ? backlog_mark_due(&p->backlog, now_ms()) : 0;
	if (id != 0) {
		char mark[BACKLOG_MARK_MAX];
		int n = backlog_mark_format(p->boot, id, mark);
		mosquitto_broker_publish_copy(NULL, p->conn_topic, n, mark, 1, false, NULL);
	}
	/* (a service listening to reports without being the bridge gets them
	 * a tick at a time, unpaced) */
	uint64_t held = p->watch.attached ? backlog_count(&p->backlog) : 0;
	uint64_t room = p->watch.attached ? p->backlog.max_count / 2 : REPLAY_PER_TICK;
	for (uint64_t sent = 0; sent < REPLAY_PER_TICK && held + sent < room; sent++) {
		const struct client_entry *e = replay_next(&p->replay, &p->clients);
		if (e == NULL)
			break;
		report(p, "up", &e->acl, e->conn_id);
	}
}

/* Logs when posts start or stop being refused, and why. */
static void note_state(struct plugin *p, enum watch_state st)
{
	if (st == p->last_state)
		return;
	if (st == WATCH_OK)
		log_msg(LOG_INFO, "posts are accepted again");
	else if (st == WATCH_QUEUE_FULL)
		log_msg(LOG_WARN,
		        "posts are refused: the broker holds %llu messages (%llu bytes) for the "
		        "bridge, bridge_queue_max %ld, bridge_queue_bytes %ld%s",
		        (unsigned long long)backlog_count(&p->backlog),
		        (unsigned long long)backlog_bytes(&p->backlog), p->cfg.bridge_queue_max,
		        p->cfg.bridge_queue_bytes,
		        p->backlog.ever_echoed ? ""
		                               : "; it has never answered a mark: is the bridge "
		                                 "older than this plugin?");
	else
		log_msg(LOG_WARN, "posts are refused: %s", watch_strerror(st));
	p->last_state = st;
}

/* A user's publish that the topic rules allow, size bytes as a whole
 * packet (with its properties where they are visible): refused
 * (refuse_post) when too large, or when it could not reach the bridge now
 * (watch.h), or when the broker holds all it may for the bridge
 * (backlog.h). */
static int gate_post(struct plugin *p, struct post *post, size_t size)
{
	const struct mosquitto_evt_acl_check *ed = post->ed;

	if (size > (size_t)p->cfg.publish_max)
		return refuse_post(p, post, "too_large",
		                   "the publish is larger than the broker accepts (16 KiB)");
	enum watch_state st = watch_state(&p->watch, now_ms());
	if (st == WATCH_OK && !backlog_admits(&p->backlog, ed->payloadlen))
		st = WATCH_QUEUE_FULL;
	note_state(p, st);
	const char *why = st != WATCH_OK ? watch_strerror(st) : NULL;
	/* the bridge's offline session queues only QoS 1: a QoS 0 post would
	 * be dropped without a word */
	if (why == NULL && !p->watch.online && ed->qos == 0)
		why = "the message service is reconnecting: a QoS 0 publish would be lost, send it "
		      "again";
	if (why == NULL)
		return MOSQ_ERR_SUCCESS;
	struct topic_in t;
	if (topic_parse_in(p->cfg.topic_prefix, ed->topic, strlen(ed->topic), &t) == TOPIC_OK &&
	    (t.kind == TOPIC_IN_TYPING_ROOM || t.kind == TOPIC_IN_TYPING_DM))
		return MOSQ_ERR_ACL_DENIED; /* ephemeral anyway: no notice for it */
	return refuse_post(p, post, "unavailable", why);
}

/* A routing of a message to the watched bridge, connected or not (conn_id
 * 0: not), counted in its backlog. Never refused here: mosquitto also
 * asks when a session is resumed, for every message it holds, and drops
 * the ones refused (the first check of a new connection resets the count,
 * so those are counted once). Posts were gated at their publish (QoS 2,
 * routed only at its PUBREL, is refused there). rc is the topic rules'
 * answer. */
static int route_to_bridge(struct plugin *p, const struct mosquitto_evt_acl_check *ed,
                           enum acl_access access, int rc, uint64_t conn_id)
{
	const char *id = mosquitto_client_id(ed->client);
	uint64_t mark;

	if (rc != MOSQ_ERR_SUCCESS || access != ACL_READ || !p->watch.attached || id == NULL ||
	    strcmp(id, p->watch.id) != 0)
		return rc;
	backlog_connection(&p->backlog, conn_id);
	backlog_routed(&p->backlog, ed->payloadlen);
	if (strcmp(ed->topic, p->conn_topic) == 0 &&
	    backlog_mark_parse(ed->payload, ed->payloadlen, p->boot, &mark))
		backlog_mark_routed(&p->backlog, mark);
	return MOSQ_ERR_SUCCESS;
}

/* A check for a client that is not connected: an offline session's
 * deliveries, counted against its queue bound, or a departed client's
 * Will, allowed only as a post while the token it connected with is valid
 * (will.h). A Will's properties are not visible (counted as none). */
static int offline_check(struct plugin *p, const struct mosquitto_evt_acl_check *ed,
                         enum acl_access access)
{
	struct acl_client c;
	const char *user = mosquitto_client_username(ed->client);
	const char *id = mosquitto_client_id(ed->client);

	if (user == NULL || id == NULL || !name_user_valid(user, strlen(user)) ||
	    access == ACL_SUBSCRIBE)
		return MOSQ_ERR_ACL_DENIED;
	const struct session *s = sessions_find(&p->sessions, id);
	memset(&c, 0, sizeof(c));
	c.role = s ? s->role : ROLE_USER;
	c.user_len = strlen(user);
	memcpy(c.user, user, c.user_len + 1);
	if (!acl_allowed(&p->rules, &c, access, ed->topic, ed->retain))
		return MOSQ_ERR_ACL_DENIED;
	if (access == ACL_WRITE) {
		int verdict =
		    will_judge(p->cfg.topic_prefix, user, ed->topic, s, &p->revoked, now_s());
		if (verdict != WILL_OK) {
			log_msg(LOG_INFO, "Will of %s refused: %s", user, will_strerror(verdict));
			return MOSQ_ERR_ACL_DENIED;
		}
		/* no PUBACK for a Will: its refusal is published (refuse_post) */
		struct post post = {.c = &c, .ed = ed, .props = NULL, .msg = NULL};
		return gate_post(p, &post, publish_size(ed, 0));
	}
	return sessions_offline_read(&p->sessions, id, user, ed->qos, p->cfg.session_queue_max,
	                             p->cfg.bridge_queue_max + BRIDGE_QUEUE_SLACK, now_s())
	           ? MOSQ_ERR_SUCCESS
	           : MOSQ_ERR_ACL_DENIED;
}

static int on_acl_check(int event, void *event_data, void *userdata)
{
	struct mosquitto_evt_acl_check *ed = event_data;
	struct plugin *p = userdata;
	enum acl_access access;
	(void)event;

	switch (ed->access) {
	case MOSQ_ACL_READ: access = ACL_READ; break;
	case MOSQ_ACL_WRITE: access = ACL_WRITE; break;
	case MOSQ_ACL_SUBSCRIBE: access = ACL_SUBSCRIBE; break;
	default: return MOSQ_ERR_SUCCESS; /* unsubscribing needs no rule */
	}
	const struct client_entry *e = clients_get(&p->clients, ed->client);
	if (e == NULL)
		return route_to_bridge(p, ed, access, offline_check(p, ed, access), 0);
	if (!acl_allowed(&p->rules, &e->acl, access, ed->topic, ed->retain))
		return MOSQ_ERR_ACL_DENIED;
	if (e->acl.role == ROLE_SERVICE) {
		/* the broker handles a SUBSCRIBE whole: once this check passes,
		 * the subscription exists before any other publish is routed */
		if (access == ACL_SUBSCRIBE && is_in_filter(p, ed->topic))
			watch_subscribed(&p->watch, mosquitto_client_id(ed->client), now_ms());
		/* Reports made while no bridge listened (clients back before it
		 * after a broker restart) were lost: report every connection
		 * again to the bridge that now listens (a few per tick: replay.h).
		 * An "up" it already has changes nothing. */
		if (access == ACL_SUBSCRIBE && is_filter(p, ed->topic, "/sys/conn"))
			conn_subscribed(p, mosquitto_client_id(ed->client));
		return route_to_bridge(p, ed, access, MOSQ_ERR_SUCCESS, e->conn_id);
	}
	/* QoS 2 is routed at its PUBREL, whenever the client sends it: the
	 * room gate_post finds now for it at the bridge may be gone by then.
	 * Refused here, with a PUBREC 0x87 for MQTT 5; an MQTT 3.1.1 PUBREC
	 * cannot say no, and the notice is published: its PUBCOMP comes after
	 * the notice, its PUBREC before (docs/DECISIONS.md, "Where the refusal
	 * stays a queued notice") */
	if (access == ACL_WRITE && ed->qos == 2) {
		struct post post = {.c = &e->acl, .ed = ed, .props = NULL, .msg = NULL};
		return refuse_post(p, &post, "bad_request",
		                   "QoS 2 is not supported: publish with QoS 1");
	}
	/* a user's publish is gated in on_message, where its properties are
	 * visible: mosquitto runs it right after this check passes */
	return MOSQ_ERR_SUCCESS;
}

/* A connected client's publish under <prefix>/in/, after the topic rules
 * passed: its properties are measured (one walk, stopping past
 * publish_props_max), the whole packet is held to publish_max, the post
 * must be able to reach the bridge (gate_post), and what passes is
 * stamped with its sender's role (stamp.h). A refused QoS 1 publish of an
 * MQTT 3.1.1 client becomes its own notice (or rpc error) and passes, so
 * mosquitto delivers the refusal before its PUBACK (refusal.h);
 * any other refusal returns MOSQ_ERR_ACL_DENIED: mosquitto drops the
 * message (PUBACK 0x87 for MQTT 5) and the sender hears why from here. */
static int on_message(int event, void *event_data, void *userdata)
{
	struct mosquitto_evt_message *ed = event_data;
	struct plugin *p = userdata;
	size_t bytes;
	char why[96];
	int rc;
	(void)event;

	size_t n = strlen(p->cfg.topic_prefix);
	if (ed->topic == NULL || strncmp(ed->topic, p->cfg.topic_prefix, n) != 0 ||
	    strncmp(ed->topic + n, "/in/", 4) != 0)
		return MOSQ_ERR_SUCCESS;
	const struct client_entry *e = clients_get(&p->clients, ed->client);
	if (e == NULL)
		return MOSQ_ERR_ACL_DENIED; /* being cut: no unknown sender passes */
	if (e->acl.role == ROLE_SERVICE)
		return MOSQ_ERR_ACL_DENIED; /* never allowed by the topic rules anyway */
	/* the write check this message passed, seen with its properties */
	struct mosquitto_evt_acl_check chk = {
	    .client = ed->client,
	    .topic = ed->topic,
	    .payload = ed->payload,
	    .payloadlen = ed->payloadlen,
	    .qos = ed->qos,
	    .retain = ed->retain,
	    .access = MOSQ_ACL_WRITE,
	};
	struct post post = {.c = &e->acl, .ed = &chk, .props = ed->properties, .msg = ed};
	if (stamp_measure(ed->properties, (size_t)p->cfg.publish_props_max, &bytes) != 0) {
		snprintf(why, sizeof(why), "a publish may carry at most %ld MQTT 5 properties",
		         p->cfg.publish_props_max);
		return refuse_post(p, &post, "too_large", why);
	}
	rc = gate_post(p, &post, publish_size(&chk, bytes));
	if (rc != MOSQ_ERR_SUCCESS || post.rewritten)
		return rc;
	/* without the stamp the bridge would take it for a plain user's: drop
	 * it rather than pass it on unstamped */
	return stamp_apply(&ed->properties, token_role_name(e->acl.role)) == 0 ? MOSQ_ERR_SUCCESS
	                                                                       : MOSQ_ERR_NOMEM;
}

/* Drops the entry of a connection that ended or is being cut. */
static void forget_connection(struct plugin *p, const struct mosquitto *client)
{
	const struct client_entry *e = clients_get(&p->clients, client);
	if (e == NULL)
		return;
	report(p, "down", &e->acl, e->conn_id);
	const char *addr = mosquitto_client_address(client);
	if (e->acl.role != ROLE_SERVICE && addr != NULL)
		addresses_release(&p->addresses, addr);
	clients_remove(&p->clients, client);
}

static void kick(struct plugin *p, const void *key, const char *why)
{
	const char *id = mosquitto_client_id((struct mosquitto *)key);

	forget_connection(p, key);
	if (id == NULL)
		return;
	char *copy = strdup(id);
	if (copy == NULL)
		return;
	log_msg(LOG_INFO, "disconnecting %s: %s", copy, why);
	mosquitto_kick_client_by_clientid(copy, false);
	free(copy);
}

static void kick_expired(const void *key, void *ctx)
{
	kick(ctx, key, "token expired");
}

/* Connections to cut, collected first: kicking removes table entries. */
struct revoked_scan {
	const struct revoked_table *revoked;
	int64_t now;
	const void **keys;
	size_t n, cap;
	bool short_of_memory;
};

static void collect_revoked(const struct client_entry *e, void *ctx)
{
	struct revoked_scan *sc = ctx;
	if (!revoked_match(sc->revoked, e->acl.user, e->jti, e->iat, sc->now))
		return;
	if (sc->n == sc->cap) {
		size_t ncap = sc->cap ? sc->cap * 2 : 16;
		const void **nk = realloc(sc->keys, ncap * sizeof(*nk));
		if (nk == NULL) {
			sc->short_of_memory = true;
			return;
		}
		sc->keys = nk;
		sc->cap = ncap;
	}
	sc->keys[sc->n++] = e->key;
}

/* Cuts every connection whose token a revocation received since the last
 * scan covers. A full scan per change: revocations are rare, connections
 * many, and a change must reach every connection within the second. */
static void kick_revoked(struct plugin *p, int64_t now)
{
	struct revoked_scan sc = {&p->revoked, now, NULL, 0, 0, false};

	clients_each(&p->clients, collect_revoked, &sc);
	for (size_t i = 0; i < sc.n; i++)
		kick(p, sc.keys[i], "token revoked");
	free(sc.keys);
	if (!sc.short_of_memory) /* else scanned again on the next tick */
		p->revoked_seen = p->revoked.generation;
}

static int on_tick(int event, void *event_data, void *userdata)
{
	struct plugin *p = userdata;
	(void)event;
	(void)event_data;

	int64_t now = now_s();
	if (now >= p->clients.next_exp)
		clients_expire(&p->clients, now, kick_expired, p);
	if (p->revoked.generation != p->revoked_seen)
		kick_revoked(p, now);
	feed_bridge(p);
	if (now >= p->next_prune) {
		sessions_prune(&p->sessions, now, p->cfg.session_idle_max);
		connrate_prune(&p->connrate, now_ms());
		revoked_prune(&p->revoked, now);
		p->next_prune = now + 10;
	}
	return MOSQ_ERR_SUCCESS;
}

static int on_disconnect(int event, void *event_data, void *userdata)
{
	struct mosquitto_evt_disconnect *ed = event_data;
	struct plugin *p = userdata;
	(void)event;

	forget_connection(p, ed->client);
	/* the bridge's connection: room changes from now on are not heard */
	rooms_source_gone(&p->rooms, ed->client);
	const char *id = mosquitto_client_id(ed->client);
	const struct session *s = id ? sessions_find(&p->sessions, id) : NULL;
	if (s && s->owner == ed->client) {
		/* not when a newer connection took the session over */
		watch_gone(&p->watch, id, s->persistent, now_ms());
		sessions_disconnect(&p->sessions, id, ed->client, now_s());
	}
	return MOSQ_ERR_SUCCESS;
}

/* Room states, revocations and backlog marks echoed (backlog.h), from a
 * service; anyone else's publish here is refused. */
static int on_control(int event, void *event_data, void *userdata)
{
	struct mosquitto_evt_control *ed = event_data;
	struct plugin *p = userdata;
	(void)event;

	const struct client_entry *e = clients_get(&p->clients, ed->client);
	if (e == NULL || e->acl.role != ROLE_SERVICE)
		return MOSQ_ERR_ACL_DENIED;
	uint64_t mark;
	if (backlog_mark_parse(ed->payload, ed->payloadlen, p->boot, &mark)) {
		backlog_mark_taken(&p->backlog, mark); /* the bridge echoed it: backlog.h */
		return MOSQ_ERR_SUCCESS;
	}
	if (revoked_is_ours(ed->payload, ed->payloadlen)) {
		if (revoked_apply(&p->revoked, ed->payload, ed->payloadlen) < 0) {
			log_msg(LOG_WARN,
			        "malformed revocation from %s: ignored from the bad line on",
			        e->acl.user);
			return MOSQ_ERR_INVAL;
		}
		return MOSQ_ERR_SUCCESS;
	}
	if (rooms_apply(&p->rooms, ed->client, ed->payload, ed->payloadlen) < 0) {
		log_msg(LOG_WARN, "malformed room state from %s: ignored from the bad line on",
		        e->acl.user);
		return MOSQ_ERR_INVAL;
	}
	return MOSQ_ERR_SUCCESS;
}

/* The bridge's bounds against the broker's own queue limits (brokerconf.h):
 * a combination that would make mosquitto drop acknowledged posts refuses
 * the start with a line naming the key. Returns 0 or -1. */
static int check_broker_limits(const struct chat_config *cfg)
{
	struct broker_limits limits;
	char err[512], warn[256];

	bool known = brokerconf_read(&limits, err, sizeof(err)) == BROKERCONF_OK;
	if (!known)
		log_msg(LOG_WARN,
		        "%s: bridge_queue_max and bridge_queue_bytes are not checked "
		        "against mosquitto.conf's queue limits",
		        err);
	if (brokerconf_check(known ? &limits : NULL, cfg->bridge_queue_max, cfg->bridge_queue_bytes,
	                     cfg->publish_max, err, sizeof(err), warn,
	                     sizeof(warn)) != BROKERCONF_OK) {
		log_msg(LOG_ERR, "plugin_opt_%s", err);
		return -1;
	}
	if (warn[0] != '\0')
		log_msg(LOG_WARN, "%s", warn);
	return 0;
}

PLUGIN_EXPORT int mosquitto_plugin_version(int supported_version_count, const int *supported_versions)
{
	for (int i = 0; i < supported_version_count; i++)
		if (supported_versions[i] == 5)
			return 5;
	return -1;
}

static void plugin_free(struct plugin *p)
{
	if (p == NULL)
		return;
	clients_free(&p->clients);
	rooms_free(&p->rooms);
	connrate_free(&p->connrate);
	revoked_free(&p->revoked);
	replay_free(&p->replay);
	sessions_free(&p->sessions);
	addresses_free(&p->addresses);
	token_keyring_free(&p->keys);
	config_free(&p->cfg);
	free(p);
}

PLUGIN_EXPORT int mosquitto_plugin_init(mosquitto_plugin_id_t *identifier, void **userdata,
                          struct mosquitto_opt *options, int option_count)
{
	char err[256];
	struct plugin *p = calloc(1, sizeof(*p));

	log_set_sink(to_mosquitto_log);
	log_set_level(LOG_DEBUG);
	if (p == NULL || config_init(&p->cfg) != CONFIG_OK)
		goto nomem;
	for (int i = 0; i < option_count; i++) {
		if (config_set(&p->cfg, options[i].key, options[i].value, err, sizeof(err)) != 0) {
			log_msg(LOG_ERR, "plugin_opt_%s", err);
			goto error;
		}
	}
	if (token_keyring_load(&p->keys, &p->cfg, err, sizeof(err)) != TOKEN_OK) {
		log_msg(LOG_ERR, "plugin_opt_%s", err);
		goto error;
	}
	if (clients_init(&p->clients) != 0 || rooms_init(&p->rooms) != 0 ||
	    connrate_init(&p->connrate, p->cfg.connect_burst, p->cfg.connect_per_min) != 0 ||
	    revoked_init(&p->revoked) != 0 || sessions_init(&p->sessions) != SESSIONS_OK ||
	    addresses_init(&p->addresses) != ADDRESSES_OK)
		goto nomem;
	if (check_broker_limits(&p->cfg) != 0)
		goto error;
	watch_init(&p->watch, p->cfg.bridge_grace * 1000);
	backlog_init(&p->backlog, (uint64_t)p->cfg.bridge_queue_max,
	             (uint64_t)p->cfg.bridge_queue_bytes);
	p->last_state = WATCH_NEVER;
	unsigned char rnd[8];
	if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
		goto nomem;
	for (int i = 0; i < 8; i++)
		snprintf(p->boot + 2 * i, 3, "%02x", rnd[i]);
	snprintf(p->conn_topic, sizeof(p->conn_topic), "%s/sys/conn", p->cfg.topic_prefix);
	p->id = identifier;
	p->rules.prefix = p->cfg.topic_prefix;
	p->rules.prefix_len = strlen(p->cfg.topic_prefix);
	p->rules.room_visible = rooms_visible;
	p->rules.room_ctx = &p->rooms;

	if (mosquitto_callback_register(identifier, MOSQ_EVT_BASIC_AUTH, on_basic_auth, NULL, p) ||
	    mosquitto_callback_register(identifier, MOSQ_EVT_ACL_CHECK, on_acl_check, NULL, p) ||
	    mosquitto_callback_register(identifier, MOSQ_EVT_TICK, on_tick, NULL, p) ||
	    mosquitto_callback_register(identifier, MOSQ_EVT_DISCONNECT, on_disconnect, NULL, p) ||
	    mosquitto_callback_register(identifier, MOSQ_EVT_CONTROL, on_control, ACL_CONTROL_TOPIC,
	                                p) ||
	    mosquitto_callback_register(identifier, MOSQ_EVT_MESSAGE, on_message, NULL, p)) {
		log_msg(LOG_ERR, "cannot register callbacks");
		goto error;
	}
	*userdata = p;
	char boot_topic[80];
	snprintf(boot_topic, sizeof(boot_topic), "%s/sys/boot", p->cfg.topic_prefix);
	mosquitto_broker_publish_copy(NULL, boot_topic, (int)strlen(p->boot), p->boot, 1, true, NULL);
	log_msg(LOG_INFO, "ready: %s tokens, topic prefix '%s', boot %s", p->cfg.jwt_alg,
	        p->cfg.topic_prefix, p->boot);
	return MOSQ_ERR_SUCCESS;

nomem:
	log_msg(LOG_ERR, "out of memory");
error:
	plugin_free(p);
	return MOSQ_ERR_UNKNOWN;
}

PLUGIN_EXPORT int mosquitto_plugin_cleanup(void *userdata, struct mosquitto_opt *options, int option_count)
{
	struct plugin *p = userdata;
	(void)options;
	(void)option_count;

	if (p) {
		mosquitto_callback_unregister(p->id, MOSQ_EVT_BASIC_AUTH, on_basic_auth, NULL);
		mosquitto_callback_unregister(p->id, MOSQ_EVT_ACL_CHECK, on_acl_check, NULL);
		mosquitto_callback_unregister(p->id, MOSQ_EVT_TICK, on_tick, NULL);
		mosquitto_callback_unregister(p->id, MOSQ_EVT_DISCONNECT, on_disconnect, NULL);
		mosquitto_callback_unregister(p->id, MOSQ_EVT_CONTROL, on_control, ACL_CONTROL_TOPIC);
		mosquitto_callback_unregister(p->id, MOSQ_EVT_MESSAGE, on_message, NULL);
	}
	plugin_free(p);
	return MOSQ_ERR_SUCCESS;
}
