/*
 * One table of settings for every component. A setting has a name, a type,
 * bounds and a default; it can come from a "key value" file, from a
 * CHAT_<KEY> environment variable, or (in the broker plugin) from
 * plugin_opt_<key>. A bad value is refused with a message naming the key.
 */
#ifndef CHAT_CONFIG_H
#define CHAT_CONFIG_H

#include <stddef.h>

struct chat_config {
	char *topic_prefix;         /* "chat" */
	char *jwt_alg;              /* HS256 | RS256 | ES256 */
	char *jwt_key;              /* inline HS256 secret (prefer jwt_key_file) */
	char *jwt_key_file;         /* HS256 secret, or PEM public key */
	char *jwt_signing_key_file; /* PEM private key, for minting RS256/ES256 */
	char *jwt_issuer;           /* checked when set */
	char *jwt_audience;         /* checked when set */
	long jwt_leeway;            /* seconds of clock skew allowed on nbf/iat */
	long jwt_max_bytes;         /* longer tokens are refused unparsed */
	long body_max;              /* bytes of message body */
	/* the bridge */
	char *node_name;        /* this instance, in Redis keys and logs */
	char *mqtt_host;        /* the local broker */
	long mqtt_port;
	char *service_user;     /* the bridge's user id (role service) */
	char *redis_host;
	long redis_port;
	char *redis_password_file; /* Redis AUTH: the password is its first line */
	char *redis_user;       /* Redis ACL user (AUTH user pass); unset: AUTH pass */
	/* Redis Sentinel (storage/sentinel.h): when set, the primary's address
	 * is asked of these instead of redis_host:redis_port */
	char *redis_sentinels;  /* "host:port,host:port,..." */
	char *redis_master_name; /* the name the sentinels monitor the primary by */
	char *redis_sentinel_password_file; /* Sentinel AUTH: its first line */
	long redis_wait_replicas; /* replicas a post must reach before it counts; -1: auto */
	long redis_wait_ms;     /* the longest one WAIT for them blocks */
	char *journal_file;     /* the bridge's intake journal (bridge/journal.h) */
	long post_hold_s;       /* seconds a post waits for Redis before it is refused */
	long post_hold_max;     /* posts taken and not yet answered by Redis, at most */
	long post_hold_bytes;   /* bytes those posts hold, at most */
	long stream_maxlen;     /* entries kept in the message stream */
	long recent_max;        /* messages kept per conversation in Redis */
	long rate_per_s;        /* per-user messages per second */
	long rate_burst;        /* per-user burst */
	long rpc_rate_per_s;    /* per-user requests per second, all methods */
	long rpc_rate_burst;
	long create_rate_per_s; /* per-user room.create per second (also a request) */
	long create_rate_burst;
	long typing_rate_per_s; /* per-user typing signals per second, rooms and DMs */
	long typing_rate_burst;
	long private_room_members_max; /* room.invite refuses beyond it (conflict) */
	/* conversations one user can hold (issue 22): rooms they are in, DM
	 * conversations they are in when starting one more */
	long user_rooms_max;
	long user_dms_max;
	/* the durable store (storage/store.h URL) */
	char *store_url;        /* sqlite:PATH or mongodb://... */
	long store_timeout_ms;  /* the longest a store call waits (locks, network) */
	/* the web front */
	char *http_host;        /* address wsfront listens on */
	long http_port;
	char *static_dir;       /* the web app's files */
	long web_token_ttl;     /* seconds a token from /api/login lasts */
	long redis_rewrite_interval; /* seconds between Redis rewrites after amends (0: none) */
	long revoke_user_ttl;   /* seconds a user.revoke is kept: the longest token lifetime */
	long ws_buffer_max;     /* bytes queued towards one browser before it is cut off */
	long http_body_max;     /* bytes of an HTTP request body */
	long auth_burst;        /* login/register attempts per address and per name */
	long auth_per_min;      /* refill of those attempts per minute */
	long password_min_bits; /* zxcvbn bits a new account's password needs */
	long logout_per_min;    /* sign-outs per user a minute (their own bucket) */
	long http_workers;      /* threads for history and metrics (store, Redis) */
	long http_max_conns;          /* connections open at once, all addresses */
	long http_max_conns_per_addr; /* connections open at once from one address */
	long http_header_timeout;     /* seconds to send a request's headers */
	long ws_connect_timeout;      /* seconds from WebSocket open to MQTT CONNECT */
	long loop_stall_max; /* seconds the web front's loop may not run before it exits (0: never) */
	char *ws_origins;             /* space-separated Origins /mqtt accepts besides its own */
	long auth_buckets;            /* login limiter buckets (per name, per address) */
	long hash_workers;            /* threads for Argon2id (register, login) */
	long hash_queue_max;          /* logins/registrations waiting for those threads */
	long history_timeout_ms;      /* /api/history answers 503 after this */
	long health_timeout_ms;       /* a check slower than this reports its dependency down */
	char *metrics_token_file;     /* Bearer token for /metrics; unset: loopback only */
	/* derived, not a setting: redis_password_file's password, read by
	 * config_load_redis_password (NULL: no AUTH) */
	char *redis_password;
	char *redis_sentinel_password; /* derived: redis_sentinel_password_file's */
	char *tls_cert_file;    /* PEM certificate (chain) for HTTPS/WSS; unset: no TLS */
	char *tls_key_file;     /* its PEM private key */
	char *https_host;       /* address the TLS listener binds (0.0.0.0: all) */
	long https_port;
	/* the broker plugin's limits */
	long bridge_grace;      /* seconds posts still queue for an absent bridge */
	long bridge_queue_max;  /* messages held for the bridge before posts are refused */
	long bridge_queue_bytes; /* payload bytes held for the bridge before posts are refused */
	long publish_max;       /* bytes of a user's whole PUBLISH packet */
	long session_queue_max; /* messages queued for one offline user session */
	long sessions_per_user; /* persistent sessions (client ids) per user */
	long session_idle_max;  /* seconds an offline session is remembered */
	long conn_per_address;  /* authenticated connections from one address */
	long publish_props_max; /* MQTT 5 properties on one publish of a user */
	long connect_burst;     /* CONNECTs of one user at once, per broker */
	long connect_per_min;   /* and their refill a minute */
	/* the bridge: seconds a user's last connection may be gone before
	 * the user is announced offline (0: at once) */
	long presence_offline_delay;
};

#define CONFIG_REDIS_PASSWORD_MAX 512

enum config_err {
	CONFIG_OK = 0,
	CONFIG_E_UNKNOWN = -1,
	CONFIG_E_VALUE = -2,
	CONFIG_E_IO = -3,
	CONFIG_E_NOMEM = -4,
};

/* Fills every field with its default. Free with config_free. */
int config_init(struct chat_config *cfg);
void config_free(struct chat_config *cfg);

/* Sets one key. On failure cfg is unchanged and err holds a line naming the
 * key. */
int config_set(struct chat_config *cfg, const char *key, const char *value,
               char *err, size_t errlen);

/* Reads "key value" lines ('#' starts a comment). Stops at the first bad
 * line, naming file, line and key in err. */
int config_load_file(struct chat_config *cfg, const char *path, char *err,
                     size_t errlen);

/* Applies CHAT_<KEY> environment variables (e.g. CHAT_JWT_ALG). */
int config_load_env(struct chat_config *cfg, char *err, size_t errlen);

/* For a daemon's main: the settings from "--config FILE" in argv (else
 * $CHAT_CONFIG, else none), then CHAT_<KEY> variables. Initialises cfg.
 * Returns 0, or the exit status after a line on stderr: 2 for a usage
 * error, 1 for a bad setting (cfg is then freed). */
int config_from_args(struct chat_config *cfg, int argc, char **argv, const char *prog);

/* Reads redis_password_file (when set) into cfg->redis_password, and
 * redis_sentinel_password_file into cfg->redis_sentinel_password. A file
 * that cannot be read or holds no password, or redis_user without a
 * password file, is refused with a line naming the key. It also settles
 * redis_wait_replicas -1 (1 with redis_sentinels, else 0).
 * config_from_args calls it. */
int config_load_redis_password(struct chat_config *cfg, char *err, size_t errlen);

/* Reads a whole file into a NUL-terminated malloc'd buffer (free()). */
int config_read_file(const char *path, unsigned char **out, size_t *len);

#endif
