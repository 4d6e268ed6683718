/* Unit test: the Redis Sentinel settings. redis_sentinels is a list of
 * host:port that is refused, naming the key, when a part is not one;
 * redis_wait_replicas -1 becomes 1 with sentinels and 0 without; the
 * sentinel password is its file's first line; and with no sentinel
 * answering, the lookup fails with a line naming every one it asked. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "chat/config.h"
#include "check.h"
#include "rconn.h"

static int set(struct chat_config *cfg, const char *value, char *err)
{
	return config_set(cfg, "redis_sentinels", value, err, 256);
}

int main(void)
{
	char dir[] = "/tmp/chat-sentinel-XXXXXX", path[300], err[512], host[256];
	struct chat_config cfg;
	int port;

	CHECK_INT(config_init(&cfg), CONFIG_OK);
	CHECK(cfg.redis_sentinels == NULL);
	CHECK_STR(cfg.redis_master_name, "chat");
	const char *bad[] = {"",         "host", "host:", ":26379",      "h:0",      "h:65536",
	                     "h:26379,", "h:1x", "a b:1", "redis://h:1", "h:1,,h:2", "h:1, h:2"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		CHECK_INT(set(&cfg, bad[i], err), CONFIG_E_VALUE);
		CHECK(strstr(err, "redis_sentinels") != NULL);
	}
	CHECK(cfg.redis_sentinels == NULL);
	CHECK_INT(set(&cfg, "127.0.0.1:26379,sentinel-2.internal:26380", err), CONFIG_OK);
	CHECK_STR(cfg.redis_sentinels, "127.0.0.1:26379,sentinel-2.internal:26380");
	CHECK_INT(config_load_redis_password(&cfg, err, sizeof(err)), CONFIG_OK);
	CHECK_INT(cfg.redis_wait_replicas, 1);
	config_free(&cfg);

	config_init(&cfg);
	CHECK_INT(config_load_redis_password(&cfg, err, sizeof(err)), CONFIG_OK);
	CHECK_INT(cfg.redis_wait_replicas, 0);
	CHECK_INT(rconn_address(&cfg, host, &port, err, sizeof(err)), 0);
	CHECK_STR(host, "127.0.0.1");
	CHECK_INT(port, 6379);
	config_free(&cfg);

	/* the sentinel password: a file's first line, an empty one refused */
	CHECK(mkdtemp(dir) != NULL);
	snprintf(path, sizeof(path), "%s/sentinel.password", dir);
	FILE *f = fopen(path, "w");
	fputs("s-pass\n", f);
	fclose(f);
	config_init(&cfg);
	config_set(&cfg, "redis_sentinel_password_file", path, err, sizeof(err));
	CHECK_INT(config_load_redis_password(&cfg, err, sizeof(err)), CONFIG_OK);
	CHECK_STR(cfg.redis_sentinel_password, "s-pass");
	config_free(&cfg);
	f = fopen(path, "w");
	fclose(f);
	config_init(&cfg);
	config_set(&cfg, "redis_sentinel_password_file", path, err, sizeof(err));
	CHECK_INT(config_load_redis_password(&cfg, err, sizeof(err)), CONFIG_E_VALUE);
	CHECK(strstr(err, "redis_sentinel_password_file") != NULL);
	config_free(&cfg);
	unlink(path);
	rmdir(dir);

	/* nobody listens on port 1 of loopback: each sentinel is named */
	config_init(&cfg);
	CHECK_INT(set(&cfg, "127.0.0.1:1,127.0.0.2:1", err), CONFIG_OK);
	CHECK_INT(rconn_address(&cfg, host, &port, err, sizeof(err)), -1);
	CHECK(strstr(err, "sentinel 127.0.0.1:1") != NULL);
	CHECK(strstr(err, "sentinel 127.0.0.2:1") != NULL);
	config_free(&cfg);
	return check_report();
}
