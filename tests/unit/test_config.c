/* Unit tests: the settings table, files and environment. */
#include <stdlib.h>
#include <unistd.h>

#include "chat/config.h"
#include "check.h"

int main(void)
{
	struct chat_config cfg;
	char err[256], path[] = "/tmp/chat-config-XXXXXX";

	CHECK_INT(config_init(&cfg), CONFIG_OK);
	CHECK_STR(cfg.topic_prefix, "chat");
	CHECK_STR(cfg.jwt_alg, "HS256");
	CHECK_INT(cfg.jwt_leeway, 5);
	CHECK_INT(cfg.body_max, 4096);
	CHECK(cfg.jwt_issuer == NULL);

	CHECK_INT(config_set(&cfg, "jwt_alg", "RS256", err, sizeof(err)), CONFIG_OK);
	CHECK_STR(cfg.jwt_alg, "RS256");
	CHECK_INT(config_set(&cfg, "jwt_alg", "none", err, sizeof(err)), CONFIG_E_VALUE);
	CHECK(strstr(err, "jwt_alg") != NULL);
	CHECK_STR(cfg.jwt_alg, "RS256"); /* unchanged */
	CHECK_INT(config_set(&cfg, "jwt_leeway", "301", err, sizeof(err)), CONFIG_E_VALUE);
	CHECK(strstr(err, "jwt_leeway") != NULL);
	CHECK_INT(config_set(&cfg, "jwt_leeway", "12x", err, sizeof(err)), CONFIG_E_VALUE);
	CHECK_INT(cfg.jwt_leeway, 5);
	CHECK_INT(config_set(&cfg, "no_such_key", "1", err, sizeof(err)), CONFIG_E_UNKNOWN);
	CHECK(strstr(err, "no_such_key") != NULL);
	CHECK_INT(config_set(&cfg, "topic_prefix", "", err, sizeof(err)), CONFIG_E_VALUE);
	/* the conversation caps (issue 22): at least one of each */
	CHECK_INT(cfg.user_rooms_max, 1000);
	CHECK_INT(cfg.user_dms_max, 2000);
	CHECK_INT(config_set(&cfg, "user_rooms_max", "0", err, sizeof(err)), CONFIG_E_VALUE);
	CHECK(strstr(err, "user_rooms_max") != NULL);
	CHECK_INT(config_set(&cfg, "user_dms_max", "0", err, sizeof(err)), CONFIG_E_VALUE);
	CHECK_INT(config_set(&cfg, "user_dms_max", "5", err, sizeof(err)), CONFIG_OK);
	CHECK_INT(cfg.user_dms_max, 5);

	int fd = mkstemp(path);
	const char *text = "# comment\n\n  jwt_issuer   chat.example  \ntopic_prefix t1\n"
	                   "jwt_max_bytes 70000\n";
	CHECK(write(fd, text, strlen(text)) == (ssize_t)strlen(text));
	close(fd);
	CHECK_INT(config_load_file(&cfg, path, err, sizeof(err)), CONFIG_E_VALUE);
	CHECK(strstr(err, ":5: jwt_max_bytes") != NULL);
	CHECK_STR(cfg.jwt_issuer, "chat.example");
	CHECK_STR(cfg.topic_prefix, "t1");
	unlink(path);
	CHECK_INT(config_load_file(&cfg, "/nonexistent/x", err, sizeof(err)), CONFIG_E_IO);

	setenv("CHAT_JWT_AUDIENCE", "chat-clients", 1);
	setenv("CHAT_BODY_MAX", "100", 1);
	CHECK_INT(config_load_env(&cfg, err, sizeof(err)), CONFIG_OK);
	CHECK_STR(cfg.jwt_audience, "chat-clients");
	CHECK_INT(cfg.body_max, 100);
	setenv("CHAT_BODY_MAX", "-1", 1);
	CHECK_INT(config_load_env(&cfg, err, sizeof(err)), CONFIG_E_VALUE);
	CHECK(strstr(err, "body_max") != NULL);
	config_free(&cfg);
	return check_report();
}
