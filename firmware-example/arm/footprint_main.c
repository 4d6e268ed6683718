/*
 * The smallest complete firmware image around the client core, for the
 * Cortex-M4 footprint measure (tools/arm-footprint.sh): a platform port
 * whose network is absent, the client with the minimum buffers, and a
 * super-loop. It proves the core links with newlib-nano and no heap, and
 * its symbol sizes give the RAM the client state takes.
 */
#include "fw_client.h"

struct fw_net {
	int unused;
};

static volatile uint32_t ticks; /* a SysTick handler would advance this */

int fw_net_open(struct fw_net *net, const char *host, uint16_t port, uint32_t timeout_ms)
{
	(void)net;
	(void)host;
	(void)port;
	(void)timeout_ms;
	return FW_NET_ERROR;
}

int fw_net_send(struct fw_net *net, const uint8_t *buf, size_t len, uint32_t timeout_ms)
{
	(void)net;
	(void)buf;
	(void)len;
	(void)timeout_ms;
	return FW_NET_ERROR;
}

int fw_net_recv(struct fw_net *net, uint8_t *buf, size_t len, uint32_t timeout_ms)
{
	(void)net;
	(void)buf;
	(void)len;
	(void)timeout_ms;
	return FW_NET_ERROR;
}

void fw_net_close(struct fw_net *net)
{
	(void)net;
}

uint32_t fw_millis(void)
{
	return ticks;
}

uint32_t fw_random(void)
{
	static uint32_t s = 2463534242u;
	s ^= s << 13;
	s ^= s >> 17;
	s ^= s << 5;
	return s;
}

/* What an application allocates: named so nm can size each part. */
struct fw_client fw_footprint_client;
struct fw_conv fw_footprint_convs[2];
uint8_t fw_footprint_rx[FW_RX_MIN];
uint8_t fw_footprint_tx[FW_TX_MIN];
static struct fw_net net;
static volatile uint32_t events;

static void on_event(void *arg, const struct fw_event *ev)
{
	(void)arg;
	events += (uint32_t)ev->type;
}

int main(void)
{
	static const struct fw_client_config cfg = {.host = "broker.local",
	                                            .port = 1883,
	                                            .user = "sensor1",
	                                            .device = "board",
	                                            .token = "token",
	                                            .room = "lab"};
	if (fw_client_init(&fw_footprint_client, &cfg, &net, fw_footprint_rx,
	                   sizeof(fw_footprint_rx), fw_footprint_tx, sizeof(fw_footprint_tx),
	                   fw_footprint_convs, 2, on_event, NULL) != 0)
		return 1;
	for (;;) {
		fw_client_step(&fw_footprint_client, 10);
		if (fw_client_online(&fw_footprint_client))
			fw_client_post(&fw_footprint_client, NULL, "temp=21.5", 9);
		fw_client_set_last(&fw_footprint_client, "room:lab", 1);
		ticks++;
	}
}
