/*
 * chat-wsfront: the web front of one node. Reads settings (--config FILE,
 * else $CHAT_CONFIG, then CHAT_<KEY> variables), then serves the web app,
 * the HTTP API and MQTT over WebSocket on http_host:http_port until SIGINT
 * or SIGTERM (and HTTPS/WSS when TLS is configured, listen.c). Only wiring
 * here: the behaviour is in http.c, proxy.c and jobs.c.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "chat/log.h"
#include "front.h"
#include "rconn.h"

static volatile sig_atomic_t stopping;
static struct lws_context *the_ctx;

static void on_signal(int sig)
{
	(void)sig;
	stopping = 1;
	if (the_ctx)
		lws_cancel_service(the_ctx);
}

int64_t now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void lws_to_log(int level, const char *line)
{
	size_t n = strlen(line);
	while (n && line[n - 1] == '\n')
		n--;
	log_msg(level == LLL_ERR ? LOG_ERR : LOG_WARN, "lws: %.*s", (int)n, line);
}

/* Each WebSocket holds two descriptors (browser, broker): allow many. */
static void raise_fd_limit(void)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max > 1048576 ? 1048576 : rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

static int front_init(struct front *f, struct chat_config *cfg)
{
	char err[512], pw[32];

	memset(f, 0, sizeof(*f));
	f->cfg = cfg;
	if (sodium_init() < 0) {
		log_msg(LOG_ERR, "libsodium cannot start");
		return -1;
	}
	if (token_keyring_load(&f->kr, cfg, err, sizeof(err)) != TOKEN_OK) {
		log_msg(LOG_ERR, "%s", err);
		return -1;
	}
	/* the hash an unknown user's login is checked against, with the same
	 * cost as a real one */
	randombytes_buf(pw, sizeof(pw));
	if (crypto_pwhash_str(f->dummy_hash, pw, sizeof(pw), crypto_pwhash_OPSLIMIT_INTERACTIVE,
	                      crypto_pwhash_MEMLIMIT_INTERACTIVE) != 0 ||
	    ratelimit_init(&f->rl_addr, (size_t)cfg->auth_buckets, cfg->auth_burst,
	                   cfg->auth_per_min) != 0 ||
	    ratelimit_init(&f->rl_user, (size_t)cfg->auth_buckets, cfg->auth_burst,
	                   cfg->auth_per_min) != 0 ||
	    ratelimit_init(&f->rl_logout, (size_t)cfg->auth_buckets, cfg->logout_per_min,
	                   cfg->logout_per_min) != 0 ||
	    connlimit_init(&f->conns, cfg->http_max_conns, cfg->http_max_conns_per_addr) != 0) {
		log_msg(LOG_ERR, "out of memory");
		return -1;
	}
	f->reserved_user = cfg->service_user;
	return metrics_token_load(f);
}

static void front_free(struct front *f)
{
	ratelimit_free(&f->rl_addr);
	ratelimit_free(&f->rl_user);
	ratelimit_free(&f->rl_logout);
	connlimit_free(&f->conns);
	if (f->metrics_token)
		sodium_memzero(f->metrics_token, strlen(f->metrics_token));
	free(f->metrics_token);
	token_keyring_free(&f->kr);
}

int main(int argc, char **argv)
{
	struct lws_protocols table[4];
	struct lws_context_creation_info info;
	struct chat_config cfg;
	struct front f;
	int rc = config_from_args(&cfg, argc, argv, "chat-wsfront");

	if (rc != 0)
		return rc;
	if (rconn_check_at_start(&cfg, "chat-wsfront") != 0) {
		config_free(&cfg);
		return 1;
	}
	rc = 1;
	signal(SIGPIPE, SIG_IGN);
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	raise_fd_limit();
	if (front_init(&f, &cfg) != 0)
		goto cleanup_front;

	table[0] = http_protocol;
	table[1] = mqtt_protocol;
	table[2] = broker_protocol;
	memset(&table[3], 0, sizeof(table[3]));
	lws_set_log_level(LLL_ERR | LLL_WARN, lws_to_log);
	memset(&info, 0, sizeof(info));
	info.port = (int)cfg.http_port;
	info.iface = cfg.http_host;
	info.protocols = table;
	info.user = &f;
	info.vhost_name = "wsfront";
	info.options = LWS_SERVER_OPTION_DISABLE_IPV6 | LWS_SERVER_OPTION_EXPLICIT_VHOSTS |
	               LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
	info.pt_serv_buf_size = 32768;
	info.max_http_header_data = 12288; /* a Bearer token can be 8 KiB */
	/* more header buffers than one address may hold connections, so one
	 * client cannot take them all (http.c times out slow headers) */
	info.max_http_header_pool = (unsigned short)(cfg.http_max_conns_per_addr * 4 < 256 ? 256
	                                             : cfg.http_max_conns_per_addr * 4 > 4096
	                                                 ? 4096
	                                                 : cfg.http_max_conns_per_addr * 4);
	info.timeout_secs = 20;
	f.ctx = lws_create_context(&info);
	if (f.ctx == NULL) {
		log_msg(LOG_ERR, "cannot start libwebsockets");
		goto cleanup_front;
	}
	the_ctx = f.ctx;
	if (front_listen(f.ctx, &info, &cfg) != 0)
		goto cleanup_ctx;
	if (pool_start(&f.pool, &f, (int)cfg.http_workers, 0) != 0)
		goto cleanup_ctx;
	if (pool_start(&f.hash_pool, &f, (int)cfg.hash_workers, cfg.hash_queue_max) != 0)
		goto cleanup_pool;
	if ((f.health = health_start(&f)) == NULL)
		goto cleanup_health;
	log_msg(LOG_INFO,
	        "wsfront %s listening on http://%s:%ld/ (broker %s:%ld, redis %s:%ld, "
	        "store %s)",
	        cfg.node_name, cfg.http_host, cfg.http_port, cfg.mqtt_host, cfg.mqtt_port,
	        cfg.redis_host, cfg.redis_port, cfg.store_url);
	struct watchdog *dog = watchdog_start(f.ctx, cfg.loop_stall_max);
	while (!stopping)
		if (lws_service(f.ctx, 0) < 0)
			break;
	watchdog_stop(dog);
	rc = 0;
cleanup_health:
	health_stop(f.health);
	pool_stop(&f.hash_pool);
cleanup_pool:
	pool_stop(&f.pool);
cleanup_ctx:
	the_ctx = NULL;
	lws_context_destroy(f.ctx);
cleanup_front:
	front_free(&f);
	config_free(&cfg);
	log_msg(LOG_INFO, "wsfront stopped");
	return rc;
}
