/*
 * chatctl: the operator's command-line tool.
 *
 *   chatctl [--config FILE] token USER [--ttl 1h] [--role user|service|admin]
 *                                   stamped after USER's latest "sign out
 *                                   everywhere" (asks Redis; may wait 2 s)
 *   chatctl user add USER           password: the first line of standard input
 *   chatctl room list               rooms in the store
 *   chatctl history CONV [--after N | --before N] [--limit N]
 *   chatctl status                  persistence backlog and lag, store, nodes
 *
 * token (role user or admin) and user add also record USER in Redis as a
 * user that exists, so direct messages to it are accepted before it first
 * connects (a warning, not a failure, when Redis cannot be reached).
 *
 * Settings come from FILE (default $CHAT_CONFIG, else run/chat.conf when it
 * exists) and then CHAT_<KEY> environment variables, as for every component.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <hiredis/hiredis.h>
#include <sodium.h>

#include "chat/config.h"
#include "chat/names.h"
#include "chat/token.h"
#include "history.h"
#include "rconn.h"
#include "revocation.h"
#include "store.h"

static void usage(FILE *f)
{
	fprintf(f, "usage: chatctl [--config FILE] token USER [--ttl DURATION] "
	           "[--role user|service|admin]\n"
	           "       chatctl [--config FILE] user add USER   (password on standard input)\n"
	           "       chatctl [--config FILE] room list\n"
	           "       chatctl [--config FILE] history CONV [--after N | --before N] "
	           "[--limit N]\n"
	           "       chatctl [--config FILE] status\n"
	           "  DURATION: a number with s, m, h or d (default 1h)\n");
}

/* Parses "90", "90s", "15m", "1h", "7d" into seconds (1 s .. 366 d). */
static int parse_duration(const char *s, int64_t *out)
{
	char *end;
	errno = 0;
	long long v = strtoll(s, &end, 10);
	int64_t mul = 1;

	if (errno || end == s || v <= 0)
		return -1;
	if (*end == 'm')
		mul = 60;
	else if (*end == 'h')
		mul = 3600;
	else if (*end == 'd')
		mul = 86400;
	else if (*end != 's' && *end != '\0')
		return -1;
	if (*end && end[1] != '\0')
		return -1;
	if (v > 366LL * 86400 / mul)
		return -1;
	*out = v * mul;
	return 0;
}

/* Records user in Redis's set of the users that exist (chat:users), so
 * direct messages to it are accepted before it ever connects: a device an
 * operator mints a token for, an account made here. Bounded (1 s to
 * connect, 1 s for the answer); when Redis cannot be reached it says so
 * on stderr and the user is recorded at its first connection instead.
 * Returns 0 when recorded. */
static int record_user(const struct chat_config *cfg, const char *user)
{
	char err[256];
	int rc;
	redisContext *r = rconn_connect(cfg, 1000, 1000, &rc, err, sizeof(err));
	redisReply *rep = r ? redisCommand(r, "SADD chat:users %s", user) : NULL;
	bool ok = rep && rep->type == REDIS_REPLY_INTEGER;
	const char *why = r == NULL ? err
	                  : rep && rep->type == REDIS_REPLY_ERROR ? rep->str
	                                                          : "no answer";

	if (!ok)
		fprintf(stderr,
		        "chatctl: warning: '%s' is not recorded as a user (%s): direct messages to "
		        "it are refused until it connects once\n",
		        user, why);
	freeReplyObject(rep);
	if (r)
		redisFree(r);
	return ok ? 0 : -1;
}

/* The iat for a new token of user (storage/revocation.h): after the
 * user's revocation when Redis has one that covers now, waiting the
 * second or two that asks for (a wait is bounded: at most three rounds).
 * When Redis cannot be asked, now, with a note: such a token may be
 * covered by a sign-out everywhere of the last few seconds (then it is
 * refused like any revoked token: mint another). */
static int64_t token_iat(const struct chat_config *cfg, const char *user)
{
	char err[256];
	int rc;
	int64_t before = 0, iat = time(NULL);
	redisContext *r = rconn_connect(cfg, 500, 1000, &rc, err, sizeof(err));

	if (r == NULL || revoke_user_before(r, user, &before) != 0) {
		fprintf(stderr,
		        "chatctl: note: revocations not checked (%s); if %s signed out everywhere "
		        "in the last few seconds, this token is refused: mint another\n",
		        r ? "Redis did not answer" : err, user);
		if (r)
			redisFree(r);
		return iat;
	}
	redisFree(r);
	for (int round = 0; round < 3; round++) {
		int64_t wait = revoke_next_iat(before, time(NULL), cfg->jwt_leeway, &iat);
		if (wait == 0)
			break;
		sleep((unsigned)wait);
	}
	return iat;
}

static int cmd_token(const struct chat_config *cfg, int argc, char **argv)
{
	struct token_keyring kr;
	enum token_role role = ROLE_USER;
	int64_t ttl = 3600;
	const char *user = NULL;
	char err[256], *tok = NULL;

	for (int i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--ttl") == 0 && i + 1 < argc) {
			if (parse_duration(argv[++i], &ttl) != 0) {
				fprintf(stderr, "chatctl: --ttl: '%s' is not a duration like 30m, 1h, 7d\n", argv[i]);
				return 2;
			}
		} else if (strcmp(argv[i], "--role") == 0 && i + 1 < argc) {
			if (token_role_parse(argv[++i], &role) != 0) {
				fprintf(stderr, "chatctl: --role: '%s' is not user, service or admin\n", argv[i]);
				return 2;
			}
		} else if (argv[i][0] != '-' && user == NULL) {
			user = argv[i];
		} else {
			usage(stderr);
			return 2;
		}
	}
	if (user == NULL) {
		usage(stderr);
		return 2;
	}
	if (token_keyring_load(&kr, cfg, err, sizeof(err)) != TOKEN_OK) {
		fprintf(stderr, "chatctl: %s\n", err);
		return 1;
	}
	int64_t iat = name_user_valid(user, strlen(user)) ? token_iat(cfg, user) : time(NULL);
	int rc = token_mint_iat(&kr, user, role, (int64_t)time(NULL), iat, ttl, &tok);
	token_keyring_free(&kr);
	if (rc != TOKEN_OK) {
		fprintf(stderr, "chatctl: cannot mint a token for '%s': %s\n", user,
		        rc == TOKEN_E_SUBJECT ? "not a valid user id" : token_strerror(rc));
		return 1;
	}
	printf("%s\n", tok);
	fflush(stdout);
	free(tok);
	/* a user's device can be written to before it first connects; a
	 * service identity is nobody to write to */
	if (role != ROLE_SERVICE)
		record_user(cfg, user);
	return 0;
}

static int open_store(const struct chat_config *cfg, struct store **st)
{
	char err[256];
	if (store_open_timeout(cfg->store_url, (int)cfg->store_timeout_ms, st, err, sizeof(err)) !=
	    STORE_OK) {
		fprintf(stderr, "chatctl: store: %s\n", err);
		return 1;
	}
	return 0;
}

static redisContext *open_redis(const struct chat_config *cfg)
{
	char err[256];
	int rc;
	redisContext *r = rconn_connect(cfg, 2000, 2000, &rc, err, sizeof(err));

	if (r == NULL)
		fprintf(stderr, "chatctl: %s\n", err);
	return r;
}

/* user add USER: the password is the first line of standard input, at
 * least 8 bytes; the hash is Argon2id as the web front makes it. */
static int cmd_user_add(const struct chat_config *cfg, int argc, char **argv)
{
	char pw[1024], hash[crypto_pwhash_STRBYTES];
	struct store *st = NULL;

	if (argc != 2 || strcmp(argv[0], "add") != 0) {
		usage(stderr);
		return 2;
	}
	if (!name_user_valid(argv[1], strlen(argv[1]))) {
		fprintf(stderr, "chatctl: '%s' is not a valid user id\n", argv[1]);
		return 2;
	}
	if (fgets(pw, sizeof(pw), stdin) == NULL) {
		fprintf(stderr, "chatctl: give the password on standard input\n");
		return 2;
	}
	pw[strcspn(pw, "\r\n")] = '\0';
	if (strlen(pw) < 8) {
		fprintf(stderr, "chatctl: the password must have at least 8 characters\n");
		return 2;
	}
	if (sodium_init() < 0 ||
	    crypto_pwhash_str(hash, pw, strlen(pw), crypto_pwhash_OPSLIMIT_INTERACTIVE,
	                      crypto_pwhash_MEMLIMIT_INTERACTIVE) != 0) {
		fprintf(stderr, "chatctl: cannot hash the password (out of memory)\n");
		return 1;
	}
	sodium_memzero(pw, sizeof(pw));
	if (open_store(cfg, &st) != 0)
		return 1;
	int rc = store_user_create(st, argv[1], hash, (int64_t)time(NULL) * 1000);
	store_close(st);
	if (rc == STORE_E_CONFLICT) {
		fprintf(stderr, "chatctl: user '%s' exists already\n", argv[1]);
		return 1;
	}
	if (rc != STORE_OK) {
		fprintf(stderr, "chatctl: store: %s\n", store_strerror(rc));
		return 1;
	}
	printf("user %s added\n", argv[1]);
	fflush(stdout);
	record_user(cfg, argv[1]);
	return 0;
}

static int print_room(void *ctx, const struct store_room *r)
{
	(void)ctx;
	printf("%-24s %-8s owner %s\n", r->name, r->private ? "private" : "public", r->owner);
	return 0;
}

static int cmd_room(const struct chat_config *cfg, int argc, char **argv)
{
	struct store *st = NULL;
	if (argc != 1 || strcmp(argv[0], "list") != 0) {
		usage(stderr);
		return 2;
	}
	if (open_store(cfg, &st) != 0)
		return 1;
	int rc = store_each_room(st, print_room, NULL);
	store_close(st);
	if (rc != STORE_OK) {
		fprintf(stderr, "chatctl: store: %s\n", store_strerror(rc));
		return 1;
	}
	return 0;
}

/* history CONV: a page as the MQTT request gives it (Redis and the store
 * joined), one message a line. */
static int cmd_history(const struct chat_config *cfg, int argc, char **argv)
{
	long long before = -1, after = -1, limit = -1;
	struct history_query q;
	const char *code, *msg = NULL;
	char *json = NULL;

	if (argc < 1 || argc % 2 != 1) {
		usage(stderr);
		return 2;
	}
	for (int i = 1; i + 1 < argc; i += 2) {
		char *end;
		long long v = strtoll(argv[i + 1], &end, 10);
		if (*end || end == argv[i + 1]) {
			fprintf(stderr, "chatctl: %s takes a number\n", argv[i]);
			return 2;
		}
		if (strcmp(argv[i], "--after") == 0)
			after = v;
		else if (strcmp(argv[i], "--before") == 0)
			before = v;
		else if (strcmp(argv[i], "--limit") == 0)
			limit = v;
		else {
			usage(stderr);
			return 2;
		}
	}
	if ((code = history_query_init(&q, argv[0], before, after, limit, &msg)) != NULL) {
		fprintf(stderr, "chatctl: %s: %s\n", code, msg);
		return 2;
	}
	struct store *st = NULL;
	redisContext *r = open_redis(cfg);
	if (r == NULL || open_store(cfg, &st) != 0) {
		if (r)
			redisFree(r);
		return 1;
	}
	code = history_page(r, st, &q, &json, &msg);
	redisFree(r);
	store_close(st);
	if (code) {
		fprintf(stderr, "chatctl: %s: %s\n", code, msg);
		return 1;
	}
	printf("%s\n", json);
	free(json);
	return 0;
}

/* status: what the persistence worker reports, the streams, live nodes and
 * whether the store answers from here. */
static int cmd_status(const struct chat_config *cfg)
{
	struct store *st = NULL;
	redisContext *r = open_redis(cfg);
	if (r == NULL)
		return 1;
	int rc = 0;
	redisReply *m = redisCommand(r, "HGETALL chat:metrics:persist");
	redisReply *x = redisCommand(r, "XLEN chat:stream");
	redisReply *n = redisCommand(r, "ZRANGE chat:nodes 0 -1");
	if (m && m->type == REDIS_REPLY_ARRAY && m->elements > 0) {
		printf("persistence:");
		for (size_t i = 0; i + 1 < m->elements; i += 2)
			printf(" %s=%s", m->element[i]->str, m->element[i + 1]->str);
		printf("\n");
	} else {
		printf("persistence: no report yet (is a bridge running?)\n");
		rc = 1;
	}
	if (x && x->type == REDIS_REPLY_INTEGER)
		printf("stream: %lld entries kept\n", x->integer);
	printf("nodes:");
	for (size_t i = 0; n && n->type == REDIS_REPLY_ARRAY && i < n->elements; i++)
		printf(" %s", n->element[i]->str);
	printf("\n");
	freeReplyObject(m);
	freeReplyObject(x);
	freeReplyObject(n);
	redisFree(r);
	if (open_store(cfg, &st) != 0)
		return 1;
	int up = store_ping(st);
	store_close(st);
	printf("store: %s (%s)\n", up == STORE_OK ? "up" : "DOWN", cfg->store_url);
	return up == STORE_OK ? rc : 1;
}

int main(int argc, char **argv)
{
	struct chat_config cfg;
	const char *path = getenv("CHAT_CONFIG");
	char err[512];
	int i = 1, rc;

	if (argc > 2 && strcmp(argv[1], "--config") == 0) {
		path = argv[2];
		i = 3;
	}
	if (i >= argc || strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
		usage(i >= argc ? stderr : stdout);
		return i >= argc ? 2 : 0;
	}
	if (config_init(&cfg) != CONFIG_OK) {
		fprintf(stderr, "chatctl: out of memory\n");
		return 1;
	}
	if (path == NULL && access("run/chat.conf", R_OK) == 0)
		path = "run/chat.conf";
	if ((path && config_load_file(&cfg, path, err, sizeof(err)) != CONFIG_OK) ||
	    config_load_env(&cfg, err, sizeof(err)) != CONFIG_OK ||
	    config_load_redis_password(&cfg, err, sizeof(err)) != CONFIG_OK) {
		fprintf(stderr, "chatctl: %s\n", err);
		config_free(&cfg);
		return 1;
	}
	if (strcmp(argv[i], "token") == 0) {
		rc = cmd_token(&cfg, argc - i - 1, argv + i + 1);
	} else if (strcmp(argv[i], "user") == 0) {
		rc = cmd_user_add(&cfg, argc - i - 1, argv + i + 1);
	} else if (strcmp(argv[i], "room") == 0) {
		rc = cmd_room(&cfg, argc - i - 1, argv + i + 1);
	} else if (strcmp(argv[i], "history") == 0) {
		rc = cmd_history(&cfg, argc - i - 1, argv + i + 1);
	} else if (strcmp(argv[i], "status") == 0 && argc == i + 1) {
		rc = cmd_status(&cfg);
	} else {
		fprintf(stderr, "chatctl: unknown command '%s'\n", argv[i]);
		usage(stderr);
		rc = 2;
	}
	config_free(&cfg);
	return rc;
}
