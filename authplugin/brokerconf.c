/*
 * The broker's queue limits (see brokerconf.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backlog.h"
#include "brokerconf.h"
#include "chat/config.h"

static void set_long(const char *value, size_t n, long *out)
{
	char buf[24];
	char *end;

	if (n == 0 || n >= sizeof(buf))
		return;
	memcpy(buf, value, n);
	buf[n] = '\0';
	long v = strtol(buf, &end, 10);
	if (*end == '\0' && v >= 0) /* mosquitto refuses to start on anything else */
		*out = v;
}

void brokerconf_parse(const char *text, size_t len, struct broker_limits *out)
{
	static const struct {
		const char *key;
		size_t offset;
	} keys[] = {
	    {"max_queued_messages", offsetof(struct broker_limits, max_queued_messages)},
	    {"max_queued_bytes", offsetof(struct broker_limits, max_queued_bytes)},
	    {"max_inflight_messages", offsetof(struct broker_limits, max_inflight_messages)},
	    {"max_inflight_bytes", offsetof(struct broker_limits, max_inflight_bytes)},
	};
	const char *p = text, *end = text + len;

	*out = (struct broker_limits){1000, 0, 20, 0, false};
	while (p < end) {
		const char *eol = memchr(p, '\n', (size_t)(end - p));
		if (eol == NULL)
			eol = end;
		while (p < eol && (*p == ' ' || *p == '\t'))
			p++;
		const char *key = p;
		while (p < eol && *p != ' ' && *p != '\t' && *p != '\r')
			p++;
		size_t key_len = (size_t)(p - key);
		while (p < eol && (*p == ' ' || *p == '\t'))
			p++;
		const char *value = p;
		while (p < eol && *p != ' ' && *p != '\t' && *p != '\r')
			p++;
		size_t value_len = (size_t)(p - value);
		if (key_len > 0 && key[0] != '#') {
			if (key_len == 11 && memcmp(key, "include_dir", 11) == 0)
				out->include_dir = true;
			for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
				if (strlen(keys[i].key) == key_len &&
				    memcmp(key, keys[i].key, key_len) == 0)
					set_long(value, value_len,
					         (long *)((char *)out + keys[i].offset));
		}
		p = eol + 1;
	}
}

int brokerconf_read(struct broker_limits *out, char *err, size_t errlen)
{
	unsigned char *args = NULL, *conf = NULL;
	size_t args_len, conf_len;
	const char *path = NULL;
	int rc = BROKERCONF_E_UNKNOWN;

	if (config_read_file("/proc/self/cmdline", &args, &args_len) != CONFIG_OK) {
		snprintf(err, errlen, "cannot read the broker's command line");
		goto cleanup;
	}
	/* NUL-separated arguments; config_read_file added one more NUL */
	for (size_t i = 0; i < args_len; i += strlen((char *)args + i) + 1) {
		const char *a = (char *)args + i;
		size_t next = i + strlen(a) + 1;
		if ((strcmp(a, "-c") == 0 || strcmp(a, "--config-file") == 0) && next < args_len) {
			path = (char *)args + next;
			break;
		}
	}
	if (path == NULL) {
		snprintf(err, errlen, "the broker was started without -c (built-in defaults)");
		goto cleanup;
	}
	if (config_read_file(path, &conf, &conf_len) != CONFIG_OK) {
		snprintf(err, errlen, "cannot read %s", path);
		goto cleanup;
	}
	brokerconf_parse((char *)conf, conf_len, out);
	rc = BROKERCONF_OK;
cleanup:
	free(args);
	free(conf);
	return rc;
}

int brokerconf_check(const struct broker_limits *l, long bridge_queue_max, long bridge_queue_bytes,
                     long publish_max, char *err, size_t errlen, char *warn, size_t warnlen)
{
	warn[0] = '\0';
	if (bridge_queue_bytes < publish_max) {
		snprintf(err, errlen,
		         "bridge_queue_bytes: %ld is below publish_max %ld: a post of the largest "
		         "size would never be accepted",
		         bridge_queue_bytes, publish_max);
		return BROKERCONF_E_BAD;
	}
	if (l == NULL)
		return BROKERCONF_OK;
	if (l->max_queued_messages > 0 &&
	    bridge_queue_max + BACKLOG_SLACK_COUNT > l->max_queued_messages) {
		snprintf(
		    err, errlen,
		    "bridge_queue_max: %ld (plus %d for the broker's own messages) is more than "
		    "max_queued_messages %ld of mosquitto.conf: the broker would drop posts it "
		    "has acknowledged when the bridge falls behind; lower it or raise "
		    "max_queued_messages",
		    bridge_queue_max, BACKLOG_SLACK_COUNT, l->max_queued_messages);
		return BROKERCONF_E_BAD;
	}
	if (l->max_queued_bytes > 0 &&
	    bridge_queue_bytes + BACKLOG_SLACK_BYTES > l->max_queued_bytes) {
		snprintf(
		    err, errlen,
		    "bridge_queue_bytes: %ld (plus %d for the broker's own messages) is more "
		    "than max_queued_bytes %ld of mosquitto.conf: the broker would drop posts it "
		    "has acknowledged when the bridge falls behind; lower it or raise "
		    "max_queued_bytes",
		    bridge_queue_bytes, BACKLOG_SLACK_BYTES, l->max_queued_bytes);
		return BROKERCONF_E_BAD;
	}
	if (l->max_queued_bytes == 0 || l->max_inflight_bytes == 0 || l->max_queued_messages == 0)
		snprintf(warn, warnlen,
		         "mosquitto.conf sets no %s: a client that never acknowledges can make the "
		         "broker hold any amount of memory for it (README \"Security\")",
		         l->max_queued_messages == 0 ? "max_queued_messages"
		         : l->max_queued_bytes == 0  ? "max_queued_bytes"
		                                     : "max_inflight_bytes");
	else if (l->include_dir)
		snprintf(warn, warnlen,
		         "mosquitto.conf has include_dir: queue limits set there are not checked "
		         "against bridge_queue_max and bridge_queue_bytes");
	return BROKERCONF_OK;
}
