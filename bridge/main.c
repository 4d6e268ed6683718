/*
 * chat-bridge: the daemon beside each broker. Reads settings (--config FILE,
 * else $CHAT_CONFIG, then CHAT_<KEY> variables), then runs the bridge loop
 * until SIGINT or SIGTERM.
 */
#include <signal.h>
#include <stdio.h>

#include "bridge.h"
#include "chat/log.h"

static struct bridge the_bridge;

static void on_signal(int sig)
{
	(void)sig;
	the_bridge.stop = 1;
}

int main(int argc, char **argv)
{
	struct chat_config cfg;
	int rc = config_from_args(&cfg, argc, argv, "chat-bridge");

	if (rc != 0)
		return rc;
	signal(SIGPIPE, SIG_IGN);
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	if (bridge_init(&the_bridge, &cfg) != 0) {
		config_free(&cfg);
		return 1;
	}
	if (cfg.redis_sentinels)
		log_msg(LOG_INFO,
		        "bridge %s starting (broker %s:%ld, redis: primary '%s' of sentinels %s)",
		        cfg.node_name, cfg.mqtt_host, cfg.mqtt_port, cfg.redis_master_name,
		        cfg.redis_sentinels);
	else
		log_msg(LOG_INFO, "bridge %s starting (broker %s:%ld, redis %s:%ld)", cfg.node_name,
		        cfg.mqtt_host, cfg.mqtt_port, cfg.redis_host, cfg.redis_port);
	bridge_run(&the_bridge);
	bridge_free(&the_bridge);
	config_free(&cfg);
	log_msg(LOG_INFO, "bridge stopped");
	return 0;
}
