/* Unit test: the Redis AUTH settings. redis_password_file's first line is
 * the password; an unreadable or empty file, a NUL or control character
 * in the password, or redis_user without a password file are refused with
 * a line naming the key, leaving no password set. */
#include <stdlib.h>
#include <unistd.h>

#include "chat/config.h"
#include "check.h"

static void write_file(const char *path, const char *text, size_t len)
{
	FILE *f = fopen(path, "wb");
	fwrite(text, 1, len, f);
	fclose(f);
}

static int load(const char *file, const char *user, struct chat_config *cfg, char *err)
{
	config_init(cfg);
	if (file)
		config_set(cfg, "redis_password_file", file, err, 256);
	if (user)
		config_set(cfg, "redis_user", user, err, 256);
	return config_load_redis_password(cfg, err, 256);
}

int main(void)
{
	char dir[] = "/tmp/chat-rauth-XXXXXX", path[300], err[256];
	struct chat_config cfg;

	CHECK(mkdtemp(dir) != NULL);
	snprintf(path, sizeof(path), "%s/redis.password", dir);

	CHECK_INT(load(NULL, NULL, &cfg, err), CONFIG_OK);
	CHECK(cfg.redis_password == NULL);
	config_free(&cfg);

	write_file(path, "s3cret-pass\nignored\n", 20);
	CHECK_INT(load(path, "chat", &cfg, err), CONFIG_OK);
	CHECK_STR(cfg.redis_password, "s3cret-pass");
	CHECK_STR(cfg.redis_user, "chat");
	config_free(&cfg);
	CHECK(cfg.redis_password == NULL);

	write_file(path, "crlf\r\n", 6);
	CHECK_INT(load(path, NULL, &cfg, err), CONFIG_OK);
	CHECK_STR(cfg.redis_password, "crlf");
	config_free(&cfg);

	const struct {
		const char *text;
		size_t len;
	} bad[] = {{"", 0}, {"\n", 1}, {"ab\0cd\n", 6}, {"tab\there\n", 9}};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		write_file(path, bad[i].text, bad[i].len);
		CHECK_INT(load(path, NULL, &cfg, err), CONFIG_E_VALUE);
		CHECK(strstr(err, "redis_password_file") != NULL);
		CHECK(cfg.redis_password == NULL);
		config_free(&cfg);
	}

	char missing[320];
	snprintf(missing, sizeof(missing), "%s/none", dir);
	CHECK(load(missing, NULL, &cfg, err) != CONFIG_OK);
	CHECK(strstr(err, "redis_password_file") != NULL && strstr(err, missing) != NULL);
	config_free(&cfg);

	CHECK_INT(load(NULL, "chat", &cfg, err), CONFIG_E_VALUE);
	CHECK(strstr(err, "redis_user") != NULL);
	config_free(&cfg);

	unlink(path);
	rmdir(dir);
	return check_report();
}
