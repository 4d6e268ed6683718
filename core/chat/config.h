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
	/* the durable store (storage/store.h URL) */
	char *store_url;        /* sqlite:PATH or mongodb://... */
	/* the web front */
	char *http_host;        /* address wsfront listens on */
	long http_port;
	char *static_dir;       /* the web app's files */
	long web_token_ttl;     /* seconds a token from /api/login lasts */
	long ws_buffer_max;     /* bytes queued towards one browser before it is cut off */
	long http_body_max;     /* bytes of an HTTP request body */
	long auth_burst;        /* login/register attempts per address and per name */
	long auth_per_min;      /* refill of those attempts per minute */
	long http_workers;      /* threads for hashing, store and Redis calls */
};

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

/* Reads a whole file into a NUL-terminated malloc'd buffer (free()). */
int config_read_file(const char *path, unsigned char **out, size_t *len);

#endif
