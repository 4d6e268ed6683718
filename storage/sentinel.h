/*
 * Finding the Redis primary through Sentinel (hiredis 0.14 has no Sentinel
 * support of its own). With redis_sentinels set, every (re)connect of every
 * component asks the sentinels in turn "SENTINEL get-master-addr-by-name
 * <redis_master_name>" and takes the first answer; each sentinel gets a
 * short, bounded connect and reply time, so a dead one costs little. The
 * caller then checks with ROLE that the address it reached is a primary
 * (a sentinel may not have seen a failover yet), and drops a link whose
 * server answers a write with READONLY (a demoted primary): the next
 * connect asks again. That is how a failover is followed: no link stays on
 * a server that is not the primary.
 */
#ifndef CHAT_SENTINEL_H
#define CHAT_SENTINEL_H

#include <stddef.h>

#include <hiredis/hiredis.h>

#include "chat/config.h"

#define SENTINEL_HOST_MAX 255
/* each sentinel asked gets this long to connect, and again to answer */
#define SENTINEL_ASK_MS 300

/* The primary's address as the first answering sentinel gives it. Returns
 * 0 with host (SENTINEL_HOST_MAX + 1 bytes) and *port, or with err (a line
 * naming what every sentinel said) -2 when one refused the credentials of
 * redis_sentinel_password_file (a setting to fix), else -1. */
int sentinel_primary(const struct chat_config *cfg, char *host, int *port, char *err,
                     size_t errlen);

/* Whether reply to ROLE says the server is a primary. */
int sentinel_is_primary(const redisReply *reply);

/* Whether reply is Redis refusing a write because the server is a replica
 * (READONLY): the link is on a demoted primary and must go. */
int sentinel_readonly(const redisReply *reply);

#endif
