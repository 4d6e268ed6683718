/*
 * The POSIX port of fw_platform.h: a TCP socket with poll() timeouts,
 * CLOCK_MONOTONIC and a xorshift generator seeded from getrandom().
 */
#ifndef FW_POSIX_H
#define FW_POSIX_H

#include "fw_platform.h"

struct fw_net {
	int fd; /* -1 when closed */
};

#define FW_NET_INIT                                                                                \
	{                                                                                          \
		-1                                                                                 \
	}

#endif
