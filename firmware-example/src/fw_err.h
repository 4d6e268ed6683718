/*
 * Result codes shared by every module of the firmware core: 0 is success,
 * everything else is a negative enum value with a fixed meaning, so a
 * caller can switch on it and fw_strerror() can name it in a log line.
 */
#ifndef FW_ERR_H
#define FW_ERR_H

enum fw_err {
	FW_OK = 0,
	FW_ERR_FULL = -1,      /* a caller-provided buffer or table is too small */
	FW_ERR_SHORT = -2,     /* input ends before the item does: read more */
	FW_ERR_MALFORMED = -3, /* input breaks the MQTT or JSON grammar */
	FW_ERR_PROTOCOL = -4,  /* well-formed, but not allowed here */
	FW_ERR_INVALID = -5,   /* a bad argument (name, length, state) */
	FW_ERR_OFFLINE = -6,   /* needs a connection that is not there */
	FW_ERR_BUSY = -7,      /* one post is already waiting for its ack */
	FW_ERR_NET = -8,       /* the network call failed */
	FW_ERR_REFUSED = -9,   /* the broker refused the CONNECT */
	FW_ERR_TIMEOUT = -10,  /* the peer did not answer in time */
};

/* A short English name for rc (never NULL). */
const char *fw_strerror(int rc);

#endif
