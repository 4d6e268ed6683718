/*
 * What the plugin remembers per MQTT session, keyed by client id (a session
 * outlives its connection; a resumed session is a new struct mosquitto).
 * It answers the checks that concern a client that is not connected:
 *   - an offline session's deliveries (MOSQ_ACL_READ): counted, and refused
 *     beyond a bound, so one user's abandoned sessions cannot hold the
 *     broker's memory (the client catches up from history by seq);
 *   - a departed client's Will (MOSQ_ACL_WRITE): judged by the token it
 *     connected with, its expiry and whether it was revoked since (will.h);
 * and the cap on persistent sessions per user at CONNECT.
 * Plain memory, no I/O: the READ path is a hash lookup.
 */
#ifndef CHAT_SESSIONS_H
#define CHAT_SESSIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "chat/names.h"
#include "chat/token.h"
#include "names_table.h"

/* our client ids: "<user>:<64 chars>" at most, or "auto-<uuid>" */
#define SESSION_ID_MAX 100

struct session {
	struct name_node node; /* first: the table's node is the session */
	char id[SESSION_ID_MAX + 1];
	char user[NAME_USER_MAX + 1];
	enum token_role role;
	int64_t exp;       /* expiry of the token of its last connection */
	int64_t iat;       /* that token's, 0 when absent (revoked.h) */
	char jti[TOKEN_JTI_MAX + 1]; /* that token's, "" when absent */
	const void *owner; /* the live struct mosquitto; NULL while offline */
	bool persistent;   /* asked to keep its session (clean session off) */
	int64_t offline_since;
	uint32_t queued; /* deliveries queued since it went offline */
};

struct session_table {
	struct names_table sessions; /* of struct session, by client id */
	struct names_table users;    /* persistent sessions per user */
};

enum sessions_err {
	SESSIONS_OK = 0,
	SESSIONS_E_NOMEM = -1,
	SESSIONS_E_CAP = -2, /* the user already has max_per_user sessions */
};

int sessions_init(struct session_table *t);
void sessions_free(struct session_table *t);

struct session *sessions_find(const struct session_table *t, const char *id);

/* A connection of client id authenticated. A persistent session with an id
 * the user has no session under yet counts toward max_per_user (services
 * are not counted); beyond it SESSIONS_E_CAP and nothing changes.
 * Returns SESSIONS_OK, SESSIONS_E_CAP or SESSIONS_E_NOMEM. */
int sessions_connect(struct session_table *t, const char *id, const char *user,
                     enum token_role role, int64_t exp, const void *owner, bool persistent,
                     long max_per_user);

/* Records the jti and iat of the token the session's last connection
 * used (for its Will); does nothing when id has no session. Call after
 * sessions_connect. */
void sessions_set_token(struct session_table *t, const char *id, const char *jti, int64_t iat);

/* The connection owner of id ended at now. A later connection that took
 * the session over keeps it (its owner differs). */
void sessions_disconnect(struct session_table *t, const char *id, const void *owner, int64_t now);

/* One delivery of QoS qos to the offline session id of user. Counts it;
 * returns false once limit (service_limit for a service's session, such as
 * the bridge's) deliveries were queued since it went offline
 * (QoS 0 is never queued for an offline session: always true, uncounted).
 * A session never seen (the broker kept it across a plugin reload) is
 * added as a user's. */
bool sessions_offline_read(struct session_table *t, const char *id, const char *user, int qos,
                           long limit, long service_limit, int64_t now);

/* Forgets departed sessions that can matter no more: a clean one once its
 * token expired (a Will is refused then anyway), a persistent one idle_max
 * seconds after it went offline (the broker's persistent_client_expiration
 * has ended it). Returns how many were removed. */
size_t sessions_prune(struct session_table *t, int64_t now, long idle_max);

/* Persistent sessions the user holds. */
unsigned sessions_user_count(const struct session_table *t, const char *user);

#endif
