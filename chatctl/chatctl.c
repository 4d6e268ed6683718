/*
 * chatctl: the operator's command-line tool.
 *
 *   chatctl [--config FILE] token USER [--ttl 1h] [--role user|service|admin]
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

#include "chat/config.h"
#include "chat/token.h"

static void usage(FILE *f)
{
	fprintf(f, "usage: chatctl [--config FILE] token USER [--ttl DURATION] "
	           "[--role user|service|admin]\n"
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
	int rc = token_mint(&kr, user, role, (int64_t)time(NULL), ttl, &tok);
	token_keyring_free(&kr);
	if (rc != TOKEN_OK) {
		fprintf(stderr, "chatctl: cannot mint a token for '%s': %s\n", user,
		        rc == TOKEN_E_SUBJECT ? "not a valid user id" : token_strerror(rc));
		return 1;
	}
	printf("%s\n", tok);
	free(tok);
	return 0;
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
	    config_load_env(&cfg, err, sizeof(err)) != CONFIG_OK) {
		fprintf(stderr, "chatctl: %s\n", err);
		config_free(&cfg);
		return 1;
	}
	if (strcmp(argv[i], "token") == 0) {
		rc = cmd_token(&cfg, argc - i - 1, argv + i + 1);
	} else {
		fprintf(stderr, "chatctl: unknown command '%s'\n", argv[i]);
		usage(stderr);
		rc = 2;
	}
	config_free(&cfg);
	return rc;
}
