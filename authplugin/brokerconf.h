/*
 * The broker's own queue limits, read from the mosquitto.conf it was
 * started with, so the plugin can refuse to start with bounds that cannot
 * work: mosquitto drops what a client's queue cannot hold without a word,
 * and the bridge is a client like any other, so the plugin must stop posts
 * (backlog.h) before the bridge's share reaches max_queued_messages or
 * max_queued_bytes. mosquitto gives a plugin no way to ask for them; the
 * file named by -c on the broker's command line is the next best source.
 * Parsing is a pure function; brokerconf_read does the I/O.
 */
#ifndef CHAT_BROKERCONF_H
#define CHAT_BROKERCONF_H

#include <stdbool.h>
#include <stddef.h>

struct broker_limits {
	/* mosquitto 2.0.11's defaults when a key is absent; 0 = no limit */
	long max_queued_messages;   /* 1000 */
	long max_queued_bytes;      /* 0 */
	long max_inflight_messages; /* 20 */
	long max_inflight_bytes;    /* 0 */
	bool include_dir;           /* more settings elsewhere, not read */
};

enum brokerconf_err {
	BROKERCONF_OK = 0,
	BROKERCONF_E_UNKNOWN = -1, /* no config file on the command line, or unreadable */
	BROKERCONF_E_BAD = -2,     /* a combination that cannot work */
};

/* The limits set by text (len bytes of mosquitto.conf lines); the last
 * line of a key wins, as in mosquitto. */
void brokerconf_parse(const char *text, size_t len, struct broker_limits *out);

/* Reads the file given to this process as -c / --config-file. Returns
 * BROKERCONF_OK, or BROKERCONF_E_UNKNOWN with a reason in err. */
int brokerconf_read(struct broker_limits *out, char *err, size_t errlen);

/* Checks the plugin's bounds for the bridge's backlog (posts refused from
 * bridge_queue_max messages or bridge_queue_bytes payload bytes on, the
 * broker's own messages up to the slack above) against the broker's
 * limits, and against a post of publish_max bytes. BROKERCONF_E_BAD with a
 * line naming the key in err when they cannot work; BROKERCONF_OK else,
 * with warn set (or "") when a limit the broker should have is missing. */
int brokerconf_check(const struct broker_limits *l, long bridge_queue_max, long bridge_queue_bytes,
                     long publish_max, char *err, size_t errlen, char *warn, size_t warnlen);

#endif
