/*
 * The settings table (see chat/config.h). Each option names its type,
 * bounds and default once; files, environment and plugin options all go
 * through config_set so every source is validated the same way.
 */
#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chat/config.h"

/* OPT_HOST: a host name or address (a string of max bytes), never a URL */
/* OPT_HOSTPORTS: "host:port,host:port,..." (at most max bytes) */
enum opt_type { OPT_STR, OPT_LONG, OPT_ENUM, OPT_HOST, OPT_HOSTPORTS };

struct config_opt {
	const char *name;
	enum opt_type type;
	long min, max;       /* OPT_LONG bounds; OPT_STR max length */
	const char *def;     /* NULL: unset */
	const char *choices; /* OPT_ENUM: space-separated */
	size_t offset;
};

#define OFF(f) offsetof(struct chat_config, f)

static const struct config_opt opts[] = {
    {"topic_prefix", OPT_STR, 1, 64, "chat", NULL, OFF(topic_prefix)},
    {"jwt_alg", OPT_ENUM, 0, 0, "HS256", "HS256 RS256 ES256", OFF(jwt_alg)},
    {"jwt_key", OPT_STR, 16, 4096, NULL, NULL, OFF(jwt_key)},
    {"jwt_key_file", OPT_STR, 1, 4096, NULL, NULL, OFF(jwt_key_file)},
    {"jwt_signing_key_file", OPT_STR, 1, 4096, NULL, NULL, OFF(jwt_signing_key_file)},
    {"jwt_issuer", OPT_STR, 1, 256, NULL, NULL, OFF(jwt_issuer)},
    {"jwt_audience", OPT_STR, 1, 256, NULL, NULL, OFF(jwt_audience)},
    {"jwt_leeway", OPT_LONG, 0, 300, "5", NULL, OFF(jwt_leeway)},
    {"jwt_max_bytes", OPT_LONG, 256, 65535, "8192", NULL, OFF(jwt_max_bytes)},
    {"body_max", OPT_LONG, 1, 262144, "4096", NULL, OFF(body_max)},
    {"node_name", OPT_STR, 1, 32, "node1", NULL, OFF(node_name)},
    {"mqtt_host", OPT_HOST, 1, 255, "127.0.0.1", NULL, OFF(mqtt_host)},
    {"mqtt_port", OPT_LONG, 1, 65535, "1883", NULL, OFF(mqtt_port)},
    {"service_user", OPT_STR, 1, 32, "bridge", NULL, OFF(service_user)},
    {"redis_host", OPT_HOST, 1, 255, "127.0.0.1", NULL, OFF(redis_host)},
    {"redis_port", OPT_LONG, 1, 65535, "6379", NULL, OFF(redis_port)},
    {"redis_password_file", OPT_STR, 1, 4096, NULL, NULL, OFF(redis_password_file)},
    {"redis_user", OPT_STR, 1, 128, NULL, NULL, OFF(redis_user)},
    /* Redis high availability (README "Redis high availability") */
    {"redis_sentinels", OPT_HOSTPORTS, 1, 1024, NULL, NULL, OFF(redis_sentinels)},
    {"redis_master_name", OPT_STR, 1, 128, "chat", NULL, OFF(redis_master_name)},
    {"redis_sentinel_password_file", OPT_STR, 1, 4096, NULL, NULL,
     OFF(redis_sentinel_password_file)},
    {"redis_wait_replicas", OPT_LONG, -1, 16, "-1", NULL, OFF(redis_wait_replicas)},
    {"redis_wait_ms", OPT_LONG, 10, 10000, "500", NULL, OFF(redis_wait_ms)},
    {"journal_file", OPT_STR, 1, 4096, "bridge.journal", NULL, OFF(journal_file)},
    /* posts held while Redis is away (bridge/hold.h) */
    {"post_hold_s", OPT_LONG, 0, 3600, "10", NULL, OFF(post_hold_s)},
    {"post_hold_max", OPT_LONG, 1, 10000000, "50000", NULL, OFF(post_hold_max)},
    {"post_hold_bytes", OPT_LONG, 1048576, 17179869184L, "67108864", NULL, OFF(post_hold_bytes)},
    {"stream_maxlen", OPT_LONG, 1000, 100000000, "1000000", NULL, OFF(stream_maxlen)},
    {"recent_max", OPT_LONG, 0, 10000, "200", NULL, OFF(recent_max)},
    {"rate_per_s", OPT_LONG, 1, 1000000, "20", NULL, OFF(rate_per_s)},
    {"rate_burst", OPT_LONG, 1, 1000000, "40", NULL, OFF(rate_burst)},
    {"rpc_rate_per_s", OPT_LONG, 1, 1000000, "20", NULL, OFF(rpc_rate_per_s)},
    {"rpc_rate_burst", OPT_LONG, 1, 1000000, "40", NULL, OFF(rpc_rate_burst)},
    {"create_rate_per_s", OPT_LONG, 1, 1000000, "1", NULL, OFF(create_rate_per_s)},
    {"create_rate_burst", OPT_LONG, 1, 1000000, "5", NULL, OFF(create_rate_burst)},
    {"typing_rate_per_s", OPT_LONG, 1, 1000000, "3", NULL, OFF(typing_rate_per_s)},
    {"typing_rate_burst", OPT_LONG, 1, 1000000, "6", NULL, OFF(typing_rate_burst)},
    /* members of one private room: each broker holds every private room's
     * list in memory and a room this size costs ~330 KB there */
    {"private_room_members_max", OPT_LONG, 1, 1000000, "10000", NULL,
     OFF(private_room_members_max)},
    /* what one user's conversations cost (unread, rooms.list, memory):
     * joining or creating a room past user_rooms_max, or starting a DM
     * conversation past user_dms_max, is refused */
    {"user_rooms_max", OPT_LONG, 1, 1000000, "1000", NULL, OFF(user_rooms_max)},
    {"user_dms_max", OPT_LONG, 1, 1000000, "2000", NULL, OFF(user_dms_max)},
    {"store_url", OPT_STR, 1, 4096, "sqlite:run/chat.db", NULL, OFF(store_url)},
    {"store_timeout_ms", OPT_LONG, 100, 60000, "2000", NULL, OFF(store_timeout_ms)},
    {"http_host", OPT_STR, 1, 255, "127.0.0.1", NULL, OFF(http_host)},
    {"http_port", OPT_LONG, 1, 65535, "8080", NULL, OFF(http_port)},
    {"static_dir", OPT_STR, 1, 4096, "build/wsfront/app", NULL, OFF(static_dir)},
    {"web_token_ttl", OPT_LONG, 60, 2592000, "43200", NULL, OFF(web_token_ttl)},
    /* edited and deleted text out of Redis's AOF/RDB: a rewrite asked at
     * most once per this many seconds (0: never asked, bridge/wipe.h) */
    {"redis_rewrite_interval", OPT_LONG, 0, 86400, "60", NULL, OFF(redis_rewrite_interval)},
    {"revoke_user_ttl", OPT_LONG, 60, 31536000, "2592000", NULL, OFF(revoke_user_ttl)},
    {"ws_buffer_max", OPT_LONG, 16384, 67108864, "2097152", NULL, OFF(ws_buffer_max)},
    {"http_body_max", OPT_LONG, 256, 1048576, "16384", NULL, OFF(http_body_max)},
    {"auth_burst", OPT_LONG, 1, 1000000, "10", NULL, OFF(auth_burst)},
    {"auth_per_min", OPT_LONG, 1, 1000000, "10", NULL, OFF(auth_per_min)},
    /* a new account's password: at least this many bits of zxcvbn's
     * estimate (0: only the length, variety and user name rules) */
    {"password_min_bits", OPT_LONG, 0, 128, "26", NULL, OFF(password_min_bits)},
    /* sign-outs per user (its own bucket: wrong logins never block them) */
    {"logout_per_min", OPT_LONG, 1, 1000000, "60", NULL, OFF(logout_per_min)},
    {"http_workers", OPT_LONG, 1, 16, "2", NULL, OFF(http_workers)},
    {"http_max_conns", OPT_LONG, 16, 1000000, "4096", NULL, OFF(http_max_conns)},
    {"http_max_conns_per_addr", OPT_LONG, 1, 1000000, "64", NULL, OFF(http_max_conns_per_addr)},
    {"http_header_timeout", OPT_LONG, 1, 60, "5", NULL, OFF(http_header_timeout)},
    {"ws_connect_timeout", OPT_LONG, 1, 60, "5", NULL, OFF(ws_connect_timeout)},
    {"loop_stall_max", OPT_LONG, 0, 3600, "20", NULL, OFF(loop_stall_max)},
    {"ws_origins", OPT_STR, 1, 4096, NULL, NULL, OFF(ws_origins)},
    {"auth_buckets", OPT_LONG, 16, 16777216, "65536", NULL, OFF(auth_buckets)},
    {"hash_workers", OPT_LONG, 1, 16, "2", NULL, OFF(hash_workers)},
    {"hash_queue_max", OPT_LONG, 1, 100000, "32", NULL, OFF(hash_queue_max)},
    {"history_timeout_ms", OPT_LONG, 100, 60000, "3000", NULL, OFF(history_timeout_ms)},
    {"health_timeout_ms", OPT_LONG, 50, 900, "700", NULL, OFF(health_timeout_ms)},
    {"metrics_token_file", OPT_STR, 1, 4096, NULL, NULL, OFF(metrics_token_file)},
    /* TLS at the web front: HTTPS and WSS on https_host:https_port when a
     * certificate is set (README "Deploying") */
    {"tls_cert_file", OPT_STR, 1, 4096, NULL, NULL, OFF(tls_cert_file)},
    {"tls_key_file", OPT_STR, 1, 4096, NULL, NULL, OFF(tls_key_file)},
    {"https_host", OPT_HOST, 1, 255, "0.0.0.0", NULL, OFF(https_host)},
    {"https_port", OPT_LONG, 1, 65535, "8443", NULL, OFF(https_port)},
    /* the broker plugin's limits (README "Security", "Reliability") */
    {"bridge_grace", OPT_LONG, 0, 3000, "0", NULL, OFF(bridge_grace)},
    /* what the broker may hold for its bridge, connected or not, before
     * posts are refused (authplugin/backlog.h); below mosquitto.conf's
     * max_queued_messages and max_queued_bytes (checked at start) */
    {"bridge_queue_max", OPT_LONG, 100, 1000000, "8000", NULL, OFF(bridge_queue_max)},
    {"bridge_queue_bytes", OPT_LONG, 16384, 1073741824, "917504", NULL, OFF(bridge_queue_bytes)},
    {"publish_max", OPT_LONG, 1024, 1048576, "16384", NULL, OFF(publish_max)},
    {"session_queue_max", OPT_LONG, 0, 100000, "500", NULL, OFF(session_queue_max)},
    {"sessions_per_user", OPT_LONG, 0, 1000, "8", NULL, OFF(sessions_per_user)},
    {"session_idle_max", OPT_LONG, 60, 31536000, "86400", NULL, OFF(session_idle_max)},
    {"conn_per_address", OPT_LONG, 1, 1000000, "10000", NULL, OFF(conn_per_address)},
    {"publish_props_max", OPT_LONG, 2, 1024, "32", NULL, OFF(publish_props_max)},
    {"connect_burst", OPT_LONG, 1, 1000000, "30", NULL, OFF(connect_burst)},
    {"connect_per_min", OPT_LONG, 1, 1000000, "120", NULL, OFF(connect_per_min)},
    /* the bridge: presence (README "Security") */
    {"presence_offline_delay", OPT_LONG, 0, 300, "5", NULL, OFF(presence_offline_delay)},
};

#define NOPTS (sizeof(opts) / sizeof(opts[0]))

static const struct config_opt *find(const char *key)
{
	for (size_t i = 0; i < NOPTS; i++)
		if (strcmp(opts[i].name, key) == 0)
			return &opts[i];
	return NULL;
}

static int enum_has(const char *choices, const char *value)
{
	size_t n = strlen(value);
	const char *p = choices;
	while (*p) {
		size_t w = strcspn(p, " ");
		if (w == n && memcmp(p, value, n) == 0)
			return 1;
		p += w;
		while (*p == ' ')
			p++;
	}
	return 0;
}

/* Whether s is a list of host:port, comma-separated: hosts without
 * spaces or "://", ports 1..65535, at most 16 of them. */
static int hostports_valid(const char *s)
{
	int n = 0;

	while (*s) {
		size_t w = strcspn(s, ",");
		const char *colon = NULL;
		for (size_t i = 0; i < w; i++)
			if (s[i] == ':')
				colon = s + i;
		if (colon == NULL || colon == s || ++n > 16)
			return 0;
		for (const char *p = s; p < colon; p++)
			if (isspace((unsigned char)*p) || *p == '/')
				return 0;
		long port = 0;
		const char *p = colon + 1;
		if (p == s + w)
			return 0;
		for (; p < s + w; p++) {
			if (!isdigit((unsigned char)*p) || (port = port * 10 + (*p - '0')) > 65535)
				return 0;
		}
		if (port < 1)
			return 0;
		s += w;
		if (*s == ',' && *++s == '\0')
			return 0;
	}
	return n > 0;
}

/* Validates value for o and stores it into cfg; cfg is untouched on error. */
static int apply(struct chat_config *cfg, const struct config_opt *o, const char *value, char *err,
                 size_t errlen)
{
	char *field = (char *)cfg + o->offset;

	if (o->type == OPT_LONG) {
		char *end;
		errno = 0;
		long v = strtol(value, &end, 10);
		if (errno || end == value || *end != '\0' || v < o->min || v > o->max) {
			snprintf(err, errlen, "%s: '%s' is not a whole number in %ld..%ld", o->name,
			         value, o->min, o->max);
			return CONFIG_E_VALUE;
		}
		*(long *)field = v;
		return CONFIG_OK;
	}
	size_t n = strlen(value);
	if (o->type == OPT_HOST && strstr(value, "://") != NULL) {
		/* hiredis 0.14 has no TLS: say so rather than fail to resolve */
		if (strncmp(value, "rediss://", 9) == 0)
			snprintf(err, errlen,
			         "%s: rediss:// (Redis over TLS) is not supported by this build "
			         "(hiredis 0.14 has no TLS); reach Redis through a TLS sidecar on "
			         "loopback, see README \"Deploying\"",
			         o->name);
		else
			snprintf(err, errlen,
			         "%s: '%s' is a URL; give the host name or address alone", o->name,
			         value);
		return CONFIG_E_VALUE;
	}
	if (o->type == OPT_ENUM && !enum_has(o->choices, value)) {
		snprintf(err, errlen, "%s: '%s' is not one of %s", o->name, value, o->choices);
		return CONFIG_E_VALUE;
	}
	if (o->type == OPT_HOSTPORTS && !hostports_valid(value)) {
		snprintf(err, errlen,
		         "%s: '%.200s' is not a list of host:port separated by commas (at most 16)",
		         o->name, value);
		return CONFIG_E_VALUE;
	}
	if ((o->type == OPT_STR || o->type == OPT_HOST || o->type == OPT_HOSTPORTS) &&
	    (n < (size_t)o->min || n > (size_t)o->max)) {
		snprintf(err, errlen, "%s: length %zu is outside %ld..%ld", o->name, n, o->min,
		         o->max);
		return CONFIG_E_VALUE;
	}
	char *copy = strdup(value);
	if (copy == NULL) {
		snprintf(err, errlen, "%s: out of memory", o->name);
		return CONFIG_E_NOMEM;
	}
	free(*(char **)field);
	*(char **)field = copy;
	return CONFIG_OK;
}

int config_init(struct chat_config *cfg)
{
	char err[160];

	memset(cfg, 0, sizeof(*cfg));
	for (size_t i = 0; i < NOPTS; i++) {
		if (opts[i].def && apply(cfg, &opts[i], opts[i].def, err, sizeof(err)) != 0) {
			config_free(cfg);
			return CONFIG_E_NOMEM;
		}
	}
	return CONFIG_OK;
}

void config_free(struct chat_config *cfg)
{
	for (size_t i = 0; i < NOPTS; i++) {
		if (opts[i].type != OPT_LONG) {
			char **field = (char **)((char *)cfg + opts[i].offset);
			free(*field);
			*field = NULL;
		}
	}
	if (cfg->redis_password)
		explicit_bzero(cfg->redis_password, strlen(cfg->redis_password));
	free(cfg->redis_password);
	cfg->redis_password = NULL;
	if (cfg->redis_sentinel_password)
		explicit_bzero(cfg->redis_sentinel_password, strlen(cfg->redis_sentinel_password));
	free(cfg->redis_sentinel_password);
	cfg->redis_sentinel_password = NULL;
}

int config_set(struct chat_config *cfg, const char *key, const char *value, char *err,
               size_t errlen)
{
	const struct config_opt *o = find(key);
	if (o == NULL) {
		snprintf(err, errlen, "%s: unknown setting", key);
		return CONFIG_E_UNKNOWN;
	}
	return apply(cfg, o, value, err, errlen);
}

static char *trim(char *s)
{
	while (isspace((unsigned char)*s))
		s++;
	size_t n = strlen(s);
	while (n > 0 && isspace((unsigned char)s[n - 1]))
		s[--n] = '\0';
	return s;
}

int config_load_file(struct chat_config *cfg, const char *path, char *err, size_t errlen)
{
	char line[4352], msg[256];
	int lineno = 0, rc = CONFIG_OK;
	FILE *f = fopen(path, "r");

	if (f == NULL) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return CONFIG_E_IO;
	}
	while (fgets(line, sizeof(line), f)) {
		lineno++;
		char *s = trim(line);
		if (*s == '\0' || *s == '#')
			continue;
		size_t k = strcspn(s, " \t");
		char *value = s[k] ? trim(s + k + 1) : s + k;
		s[k] = '\0';
		rc = config_set(cfg, s, value, msg, sizeof(msg));
		if (rc != CONFIG_OK) {
			snprintf(err, errlen, "%s:%d: %s", path, lineno, msg);
			break;
		}
	}
	fclose(f);
	return rc;
}

int config_from_args(struct chat_config *cfg, int argc, char **argv, const char *prog)
{
	const char *path = getenv("CHAT_CONFIG");
	char err[512];

	if (argc == 3 && strcmp(argv[1], "--config") == 0) {
		path = argv[2];
	} else if (argc != 1) {
		fprintf(stderr, "usage: %s [--config FILE]\n", prog);
		return 2;
	}
	if (config_init(cfg) != CONFIG_OK) {
		fprintf(stderr, "%s: out of memory\n", prog);
		return 1;
	}
	if ((path && config_load_file(cfg, path, err, sizeof(err)) != CONFIG_OK) ||
	    config_load_env(cfg, err, sizeof(err)) != CONFIG_OK ||
	    config_load_redis_password(cfg, err, sizeof(err)) != CONFIG_OK) {
		fprintf(stderr, "%s: %s\n", prog, err);
		config_free(cfg);
		return 1;
	}
	return 0;
}

int config_load_env(struct chat_config *cfg, char *err, size_t errlen)
{
	char var[80];

	for (size_t i = 0; i < NOPTS; i++) {
		size_t n = (size_t)snprintf(var, sizeof(var), "CHAT_%s", opts[i].name);
		for (size_t k = 5; k < n; k++)
			var[k] = (char)toupper((unsigned char)var[k]);
		const char *v = getenv(var);
		if (v == NULL)
			continue;
		int rc = apply(cfg, &opts[i], v, err, errlen);
		if (rc != CONFIG_OK)
			return rc;
	}
	return CONFIG_OK;
}

int config_read_file(const char *path, unsigned char **out, size_t *len)
{
	FILE *f = fopen(path, "rb");
	unsigned char *buf = NULL;
	size_t cap = 0, n = 0;

	if (f == NULL)
		return CONFIG_E_IO;
	for (;;) {
		if (n + 4096 + 1 > cap) {
			cap = cap ? cap * 2 : 8192;
			unsigned char *nb = realloc(buf, cap);
			if (nb == NULL) {
				free(buf);
				fclose(f);
				return CONFIG_E_NOMEM;
			}
			buf = nb;
		}
		size_t got = fread(buf + n, 1, 4096, f);
		n += got;
		if (got < 4096)
			break;
	}
	int bad = ferror(f);
	fclose(f);
	if (bad || n > 1024 * 1024) {
		free(buf);
		return CONFIG_E_IO;
	}
	buf[n] = '\0';
	*out = buf;
	*len = n;
	return CONFIG_OK;
}

/* A password is its file's first line; a file that cannot be read, or
 * whose first line is empty or holds a control character, is refused so a
 * daemon never starts with credentials it did not mean. */
static int read_password(const char *key, const char *path, char **out, char *err, size_t errlen)
{
	unsigned char *text = NULL;
	size_t len = 0;
	int rc;

	errno = 0;
	if ((rc = config_read_file(path, &text, &len)) != CONFIG_OK) {
		snprintf(err, errlen, "%s: cannot read '%s': %s", key, path,
		         rc == CONFIG_E_NOMEM ? "out of memory"
		         : errno              ? strerror(errno)
		                              : "too large or unreadable");
		return rc;
	}
	size_t n = strcspn((char *)text, "\r\n");
	bool bad = n == 0 || n > CONFIG_REDIS_PASSWORD_MAX;
	for (size_t i = 0; i < n && !bad; i++)
		bad = text[i] < 0x20 || text[i] == 0x7f;
	if (bad || (text[n] == '\0' && n != len)) { /* a NUL inside would cut it */
		snprintf(err, errlen, "%s: '%s' must start with a line of 1..%d printable bytes",
		         key, path, CONFIG_REDIS_PASSWORD_MAX);
		explicit_bzero(text, len);
		free(text);
		return CONFIG_E_VALUE;
	}
	text[n] = '\0';
	free(*out);
	*out = (char *)text;
	return CONFIG_OK;
}

int config_load_redis_password(struct chat_config *cfg, char *err, size_t errlen)
{
	int rc;

	if (cfg->redis_wait_replicas < 0)
		cfg->redis_wait_replicas = cfg->redis_sentinels ? 1 : 0;
	if (cfg->redis_sentinel_password_file &&
	    (rc = read_password("redis_sentinel_password_file", cfg->redis_sentinel_password_file,
	                        &cfg->redis_sentinel_password, err, errlen)) != CONFIG_OK)
		return rc;
	if (cfg->redis_password_file == NULL) {
		if (cfg->redis_user == NULL)
			return CONFIG_OK;
		snprintf(err, errlen,
		         "redis_user: needs redis_password_file (the user's password)");
		return CONFIG_E_VALUE;
	}
	return read_password("redis_password_file", cfg->redis_password_file, &cfg->redis_password,
	                     err, errlen);
}
