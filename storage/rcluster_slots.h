/*
 * The pure half of the Redis Cluster client (rcluster.h): which slot a key
 * hashes to, the table of which primary owns each slot, and reading the
 * server's answers that change that table (CLUSTER SLOTS, -MOVED, -ASK).
 * Nothing here does I/O, so a unit test drives it with replies built by
 * hand (tests/unit/test_rcluster.c).
 *
 * Slots follow the Redis Cluster specification: CRC16-XMODEM of the key,
 * or of its hash tag (what lies between the first '{' and the next '}',
 * when that is not empty), modulo 16384. Keys that share a tag share a
 * slot, which is how a Lua script gets all its keys on one node.
 */
#ifndef CHAT_RCLUSTER_SLOTS_H
#define CHAT_RCLUSTER_SLOTS_H

#include <stddef.h>
#include <stdint.h>

#include <hiredis/hiredis.h>

#define RCLUSTER_SLOTS 16384
#define RCLUSTER_HOST_MAX 255
/* A node index the table never hands out: the slot's owner is unknown. */
#define RCLUSTER_NO_NODE 0xffff
/* More nodes than a Redis Cluster is meant to have (~1,000) is a bad reply. */
#define RCLUSTER_NODES_MAX 4096

struct rcluster_addr {
	char host[RCLUSTER_HOST_MAX + 1];
	int port;
};

/* Which primary owns each slot. standalone: the server answered that it
 * has cluster support disabled, so its one node owns every slot. */
struct rcluster_table {
	uint16_t owner[RCLUSTER_SLOTS]; /* index into nodes, or RCLUSTER_NO_NODE */
	struct rcluster_addr *nodes;    /* malloc'd; rcluster_table_clear frees */
	size_t nnodes;
	int standalone;
};

enum rcluster_redirect {
	RCLUSTER_REDIRECT_NONE = 0, /* not a redirect (or a malformed one) */
	RCLUSTER_REDIRECT_MOVED,    /* the slot lives elsewhere now: update the table */
	RCLUSTER_REDIRECT_ASK,      /* this one command goes there, after ASKING */
};

/* CRC16-XMODEM (polynomial 0x1021, initial value 0), as the Redis Cluster
 * specification defines it: "123456789" gives 0x31C3. */
uint16_t rcluster_crc16(const char *buf, size_t len);

/* The slot of key (len bytes, may hold NULs), hash tag included. */
int rcluster_key_slot(const char *key, size_t len);

/* An empty table: every slot unknown, no nodes. */
void rcluster_table_init(struct rcluster_table *t);

/* Frees the nodes and empties t again. */
void rcluster_table_clear(struct rcluster_table *t);

/* The owner of slot, or NULL when unknown (or slot out of range). */
const struct rcluster_addr *rcluster_table_owner(const struct rcluster_table *t, int slot);

/* The index of host:port among t's nodes, or -1. */
int rcluster_table_find(const struct rcluster_table *t, const char *host, int port);

/* Makes host:port the owner of slot (a -MOVED answer), adding the node.
 * Returns 0, or -1 (bad slot or address, out of memory, too many nodes)
 * with t unchanged. */
int rcluster_table_set(struct rcluster_table *t, int slot, const char *host, int port);

/* Makes *out (initialised or cleared) the one-node table of a standalone
 * server at addr. Returns 0, or -1 (bad address, no memory) with *out
 * empty. */
int rcluster_table_standalone(struct rcluster_table *out, const struct rcluster_addr *addr);

/* Builds *out from the answer of the node at asked to "CLUSTER SLOTS":
 * each range's first node is its primary; an empty or NULL endpoint means
 * asked's host (Redis 7's cluster-preferred-endpoint-type), "?" is not
 * usable and leaves the range unknown. An error "cluster support disabled"
 * (a standalone Redis) gives the one-node table of asked, standalone set.
 * Returns 0 with *out built (the caller clears it), or -1 when the reply
 * is an other error, malformed, or names no slot at all; *out is then
 * left empty. */
int rcluster_table_from_reply(struct rcluster_table *out, const redisReply *reply,
                              const struct rcluster_addr *asked);

/* Whether t and u give every slot the same owner address. */
int rcluster_table_same(const struct rcluster_table *t, const struct rcluster_table *u);

/* Where to ask for the topology: the i-th of the table's nodes (none for
 * a standalone table: its one node is asked again through the seeds),
 * then the seeds. rcluster_candidates gives how many there are. */
size_t rcluster_candidates(const struct rcluster_table *t, size_t nseeds);
const struct rcluster_addr *rcluster_candidate(const struct rcluster_table *t,
                                               const struct rcluster_addr *seeds, size_t nseeds,
                                               size_t i);

/* Reads an error reply "MOVED <slot> <host>:<port>" or "ASK ..." into
 * *slot and *to; an empty host (":6381", Redis 7 with an unknown endpoint)
 * means asked's host. Returns the kind, RCLUSTER_REDIRECT_NONE for every
 * other reply, a malformed redirect included. */
enum rcluster_redirect rcluster_redirect_parse(const redisReply *reply,
                                               const struct rcluster_addr *asked, int *slot,
                                               struct rcluster_addr *to);

/* Whether an answer says the topology is worth asking again though it is
 * no redirect: CLUSTERDOWN (the cluster lost a shard) or READONLY (a
 * standalone primary demoted by Sentinel). */
int rcluster_topology_changed(const redisReply *reply);

/* Parses "host:port[,host:port...]" (spaces around items allowed) into a
 * malloc'd array (*out, caller frees) of *n addresses. Returns 0, or -1
 * for an empty list, an empty or too long host, or a bad port. */
int rcluster_addrs_parse(const char *list, struct rcluster_addr **out, size_t *n);

#endif
