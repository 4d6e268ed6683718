/* Unit tests: the deploy settings (TLS keys, host-only addresses). A URL
 * where a host is expected is refused naming the key, and rediss:// says
 * why it cannot be honoured; the setting is left unchanged. */
#include <stdlib.h>
#include <string.h>

#include "chat/config.h"
#include "check.h"

int main(void)
{
	struct chat_config cfg;
	char err[512];

	CHECK_INT(config_init(&cfg), CONFIG_OK);
	CHECK(cfg.tls_cert_file == NULL && cfg.tls_key_file == NULL);
	CHECK_STR(cfg.https_host, "0.0.0.0");
	CHECK_INT(cfg.https_port, 8443);
	CHECK_STR(cfg.http_host, "127.0.0.1"); /* plain HTTP stays on loopback */

	CHECK_INT(config_set(&cfg, "tls_cert_file", "/etc/chat/server.crt", err, sizeof(err)),
	          CONFIG_OK);
	CHECK_STR(cfg.tls_cert_file, "/etc/chat/server.crt");
	CHECK_INT(config_set(&cfg, "https_port", "0", err, sizeof(err)), CONFIG_E_VALUE);
	CHECK(strstr(err, "https_port") != NULL);
	CHECK_INT(cfg.https_port, 8443);

	CHECK_INT(config_set(&cfg, "redis_host", "rediss://cache:6380", err, sizeof(err)),
	          CONFIG_E_VALUE);
	CHECK(strstr(err, "redis_host") != NULL && strstr(err, "hiredis") != NULL &&
	      strstr(err, "sidecar") != NULL);
	CHECK_STR(cfg.redis_host, "127.0.0.1");
	CHECK_INT(config_set(&cfg, "redis_host", "redis://cache", err, sizeof(err)),
	          CONFIG_E_VALUE);
	CHECK(strstr(err, "redis_host: 'redis://cache' is a URL") != NULL);
	CHECK_INT(config_set(&cfg, "mqtt_host", "mqtts://broker", err, sizeof(err)),
	          CONFIG_E_VALUE);
	CHECK(strstr(err, "mqtt_host") != NULL);
	CHECK_INT(config_set(&cfg, "redis_host", "cache.internal", err, sizeof(err)), CONFIG_OK);
	CHECK_STR(cfg.redis_host, "cache.internal");
	CHECK_INT(config_set(&cfg, "redis_host", "", err, sizeof(err)), CONFIG_E_VALUE);

	setenv("CHAT_TLS_KEY_FILE", "/run/secrets/tls_key", 1);
	setenv("CHAT_HTTPS_PORT", "9443", 1);
	CHECK_INT(config_load_env(&cfg, err, sizeof(err)), CONFIG_OK);
	CHECK_STR(cfg.tls_key_file, "/run/secrets/tls_key");
	CHECK_INT(cfg.https_port, 9443);
	setenv("CHAT_REDIS_HOST", "rediss://x", 1);
	CHECK_INT(config_load_env(&cfg, err, sizeof(err)), CONFIG_E_VALUE);
	CHECK_STR(cfg.redis_host, "cache.internal");
	unsetenv("CHAT_REDIS_HOST");

	config_free(&cfg);
	return check_report();
}
