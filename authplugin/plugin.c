/*
 * chat_auth: the mosquitto 2.0 (plugin API v5) side of the chat broker.
 *
 * - BASIC_AUTH: the password is a JWT; it must verify with the configured
 *   algorithm and key, name the username as sub, and the client id must
 *   follow the rule of shared/PROTOCOL.md section 3.
 * - ACL_CHECK: the topic rules of section 4 (acl.c), answered from the
 *   connection's entry compiled at auth time (clients.c).
 * - TICK: connections whose token has expired are disconnected.
 * - DISCONNECT: the connection's entry is dropped.
 * - CONTROL on $CONTROL/chat/v1: private-room states from the bridge
 *   (rooms.c), consulted by the topic rules.
 * - MESSAGE: client input is stamped with its sender's role (stamp.c).
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

#include "acl.h"
#include "chat/config.h"
#include "chat/log.h"
#include "chat/token.h"
#include "clients.h"
#include "rooms.h"
#include "stamp.h"

/* The broker finds these three by name; everything else stays hidden. */
#define PLUGIN_EXPORT __attribute__((visibility("default")))

struct plugin {
	mosquitto_plugin_id_t *id;
	struct chat_config cfg;
	struct token_keyring keys;
	struct acl_rules rules;
	struct client_table clients;
	struct room_table rooms;
	struct stamp stamp;
	char boot[17];
	uint64_t next_conn;
	char conn_topic[80];
	/* user ids that authenticated as services since the broker started:
	 * their offline sessions (a restarting bridge's) keep queueing */
	char (*services)[NAME_USER_MAX + 1];
	size_t nservices;
};

static bool is_service_user(const struct plugin *p, const char *user)
{
	for (size_t i = 0; i < p->nservices; i++)
		if (strcmp(p->services[i], user) == 0)
			return true;
	return false;
}

/* Remembers a service user id; a handful per broker, so a plain list. */
static void remember_service(struct plugin *p, const char *user)
{
	if (is_service_user(p, user) || p->nservices >= 64)
		return;
	void *n = realloc(p->services, (p->nservices + 1) * sizeof(*p->services));
	if (n == NULL)
		return;
	p->services = n;
	strcpy(p->services[p->nservices++], user);
}

static int64_t now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec;
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
	if (!acl_client_id_ok(user, client_id)) {
		why = "client id must be the user id or start with '<user id>:'";
		goto refuse;
	}
	memset(&acl, 0, sizeof(acl));
	acl.role = claims.role;
	acl.user_len = strlen(user);
	memcpy(acl.user, user, acl.user_len + 1);
	uint64_t conn_id = ++p->next_conn;
	if (clients_put(&p->clients, ed->client, &acl, claims.exp, conn_id) != 0) {
		why = "out of memory";
		goto refuse;
	}
	report(p, "up", &acl, conn_id);
	if (acl.role == ROLE_SERVICE)
		remember_service(p, user);
	log_msg(LOG_DEBUG, "accepted %s as %s (client id %s)", user,
	        token_role_name(claims.role), client_id ? client_id : "");
	return MOSQ_ERR_SUCCESS;

refuse:
	/* the username is printed escaped-free only when it is a valid id */
	log_msg(LOG_INFO, "refused %s from %s: %s",
	        ed->username && name_user_valid(user, strlen(user)) ? user : "(invalid username)",
	        mosquitto_client_address(ed->client), why);
	return MOSQ_ERR_AUTH;
}

static int on_acl_check(int event, void *event_data, void *userdata)
{
	struct mosquitto_evt_acl_check *ed = event_data;
	struct plugin *p = userdata;
	struct acl_client fallback;
	const struct acl_client *c;
	enum acl_access access;
	(void)event;

	switch (ed->access) {
	case MOSQ_ACL_READ: access = ACL_READ; break;
	case MOSQ_ACL_WRITE: access = ACL_WRITE; break;
	case MOSQ_ACL_SUBSCRIBE: access = ACL_SUBSCRIBE; break;
	default: return MOSQ_ERR_SUCCESS; /* unsubscribing needs no rule */
	}
	const struct client_entry *e = clients_get(&p->clients, ed->client);
	if (e != NULL) {
		c = &e->acl;
	} else {
		/* An offline persistent session still receives (queues) messages:
		 * judge it by the user id it authenticated with, as a service if
		 * that id authenticated as one, else as a plain user. */
		const char *user = mosquitto_client_username(ed->client);
		if (user == NULL || !name_user_valid(user, strlen(user)))
			return MOSQ_ERR_ACL_DENIED;
		memset(&fallback, 0, sizeof(fallback));
		fallback.role = is_service_user(p, user) ? ROLE_SERVICE : ROLE_USER;
		fallback.user_len = strlen(user);
		memcpy(fallback.user, user, fallback.user_len + 1);
		c = &fallback;
	}
	return acl_allowed(&p->rules, c, access, ed->topic, ed->retain)
	           ? MOSQ_ERR_SUCCESS
	           : MOSQ_ERR_ACL_DENIED;
}

static void kick_expired(const void *key, void *ctx)
{
	struct plugin *p = ctx;
	const char *id = mosquitto_client_id((struct mosquitto *)key);
	const struct client_entry *e = clients_get(&p->clients, key);

	if (e != NULL)
		report(p, "down", &e->acl, e->conn_id);
	clients_remove(&p->clients, key);
	if (id == NULL)
		return;
	char *copy = strdup(id);
	if (copy == NULL)
		return;
	log_msg(LOG_INFO, "disconnecting %s: token expired", copy);
	mosquitto_kick_client_by_clientid(copy, false);
	free(copy);
}

static int on_tick(int event, void *event_data, void *userdata)
{
	struct plugin *p = userdata;
	(void)event;
	(void)event_data;

	int64_t now = now_s();
	if (now >= p->clients.next_exp)
		clients_expire(&p->clients, now, kick_expired, p);
	return MOSQ_ERR_SUCCESS;
}

static int on_disconnect(int event, void *event_data, void *userdata)
{
	struct mosquitto_evt_disconnect *ed = event_data;
	struct plugin *p = userdata;
	(void)event;

	const struct client_entry *e = clients_get(&p->clients, ed->client);
	if (e != NULL) {
		report(p, "down", &e->acl, e->conn_id);
		clients_remove(&p->clients, ed->client);
	}
	return MOSQ_ERR_SUCCESS;
}

/* Room states from a service; anyone else's publish here is refused. */
static int on_control(int event, void *event_data, void *userdata)
{
	struct mosquitto_evt_control *ed = event_data;
	struct plugin *p = userdata;
	(void)event;

	const struct client_entry *e = clients_get(&p->clients, ed->client);
	if (e == NULL || e->acl.role != ROLE_SERVICE)
		return MOSQ_ERR_ACL_DENIED;
	if (rooms_apply(&p->rooms, ed->payload, ed->payloadlen) < 0) {
		log_msg(LOG_WARN, "malformed room state from %s: ignored from the bad line on",
		        e->acl.user);
		return MOSQ_ERR_INVAL;
	}
	return MOSQ_ERR_SUCCESS;
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
	free(p->services);
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
	if (clients_init(&p->clients) != 0 || rooms_init(&p->rooms) != 0)
		goto nomem;
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
	p->stamp = (struct stamp){p->cfg.topic_prefix, strlen(p->cfg.topic_prefix), &p->clients};

	if (mosquitto_callback_register(identifier, MOSQ_EVT_BASIC_AUTH, on_basic_auth, NULL, p) ||
	    mosquitto_callback_register(identifier, MOSQ_EVT_ACL_CHECK, on_acl_check, NULL, p) ||
	    mosquitto_callback_register(identifier, MOSQ_EVT_TICK, on_tick, NULL, p) ||
	    mosquitto_callback_register(identifier, MOSQ_EVT_DISCONNECT, on_disconnect, NULL, p) ||
	    mosquitto_callback_register(identifier, MOSQ_EVT_CONTROL, on_control, ACL_CONTROL_TOPIC,
	                                p) ||
	    mosquitto_callback_register(identifier, MOSQ_EVT_MESSAGE, stamp_on_message, NULL,
	                                &p->stamp)) {
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
		mosquitto_callback_unregister(p->id, MOSQ_EVT_MESSAGE, stamp_on_message, NULL);
	}
	plugin_free(p);
	return MOSQ_ERR_SUCCESS;
}
