/*
 * The POSIX port of fw_platform.h: a TCP socket with poll() timeouts,
 * optionally TLS over it (OpenSSL, the server verified against a CA file),
 * CLOCK_MONOTONIC and a xorshift generator seeded from getrandom().
 */
#ifndef FW_POSIX_H
#define FW_POSIX_H

#include "fw_platform.h"

struct fw_net {
	int fd;        /* -1 when closed */
	void *tls_ctx; /* SSL_CTX when TLS is on (fw_posix_use_tls), else NULL */
	void *tls;     /* the SSL of the open stream */
};

#define FW_NET_INIT                                                                                \
	{                                                                                          \
		-1, NULL, NULL                                                                     \
	}

/* Makes every later fw_net_open speak TLS (1.2 or later), verifying the
 * server's certificate against cafile and its name against the host
 * opened. Returns 0, or -1 when cafile cannot be loaded (net unchanged). */
int fw_posix_use_tls(struct fw_net *net, const char *cafile);

#endif
