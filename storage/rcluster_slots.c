/*
 * Slots, the slot table and redirects (see rcluster_slots.h).
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "rcluster_slots.h"

/* Bit by bit rather than with the usual 256-entry table: keys are tens of
 * bytes, so this costs well under a microsecond per command, and there is
 * no table to get wrong. */
uint16_t rcluster_crc16(const char *buf, size_t len)
{
	uint16_t crc = 0;

	for (size_t i = 0; i < len; i++) {
		crc ^= (uint16_t)((uint8_t)buf[i] << 8);
		for (int bit = 0; bit < 8; bit++) {
			bool top = crc & 0x8000;
			crc = (uint16_t)(crc << 1);
			if (top)
				crc ^= 0x1021;
		}
	}
	return crc;
}

int rcluster_key_slot(const char *key, size_t len)
{
	const char *open = memchr(key, '{', len);

	if (open) {
		size_t from = (size_t)(open - key) + 1;
		const char *close = memchr(key + from, '}', len - from);
		/* "{}" is no tag: the whole key is hashed */
		if (close && close > key + from) {
			key += from;
			len = (size_t)(close - key);
		}
	}
	return rcluster_crc16(key, len) & (RCLUSTER_SLOTS - 1);
}

void rcluster_table_init(struct rcluster_table *t)
{
	for (int i = 0; i < RCLUSTER_SLOTS; i++)
		t->owner[i] = RCLUSTER_NO_NODE;
	t->nodes = NULL;
	t->nnodes = 0;
	t->standalone = 0;
}

void rcluster_table_clear(struct rcluster_table *t)
{
	free(t->nodes);
	rcluster_table_init(t);
}

const struct rcluster_addr *rcluster_table_owner(const struct rcluster_table *t, int slot)
{
	if (slot < 0 || slot >= RCLUSTER_SLOTS || t->owner[slot] == RCLUSTER_NO_NODE)
		return NULL;
	return &t->nodes[t->owner[slot]];
}

int rcluster_table_find(const struct rcluster_table *t, const char *host, int port)
{
	for (size_t i = 0; i < t->nnodes; i++)
		if (t->nodes[i].port == port && strcmp(t->nodes[i].host, host) == 0)
			return (int)i;
	return -1;
}

/* The index of host:port, added when new. Returns -1 for a bad address,
 * too many nodes or no memory, with t unchanged. */
static int node_index(struct rcluster_table *t, const char *host, size_t hostlen, int port)
{
	char name[RCLUSTER_HOST_MAX + 1];

	if (hostlen == 0 || hostlen > RCLUSTER_HOST_MAX || memchr(host, '\0', hostlen) ||
	    port < 1 || port > 65535)
		return -1;
	memcpy(name, host, hostlen);
	name[hostlen] = '\0';
	int i = rcluster_table_find(t, name, port);
	if (i >= 0)
		return i;
	if (t->nnodes >= RCLUSTER_NODES_MAX)
		return -1;
	struct rcluster_addr *nodes = realloc(t->nodes, (t->nnodes + 1) * sizeof(*nodes));
	if (nodes == NULL)
		return -1;
	t->nodes = nodes;
	memcpy(nodes[t->nnodes].host, name, hostlen + 1);
	nodes[t->nnodes].port = port;
	return (int)t->nnodes++;
}

int rcluster_table_set(struct rcluster_table *t, int slot, const char *host, int port)
{
	if (slot < 0 || slot >= RCLUSTER_SLOTS)
		return -1;
	int i = node_index(t, host, strlen(host), port);
	if (i < 0)
		return -1;
	t->owner[slot] = (uint16_t)i;
	return 0;
}

static int is_int(const redisReply *r, long long lo, long long hi)
{
	return r->type == REDIS_REPLY_INTEGER && r->integer >= lo && r->integer <= hi;
}

/* One range of CLUSTER SLOTS: [start, end, [host, port, id, ...], replicas...].
 * Returns 0 (the range set, or left unknown for a "?" endpoint) or -1. */
static int add_range(struct rcluster_table *t, const redisReply *r,
                     const struct rcluster_addr *asked)
{
	if (r->type != REDIS_REPLY_ARRAY || r->elements < 3)
		return -1;
	const redisReply *node = r->element[2];
	if (!is_int(r->element[0], 0, RCLUSTER_SLOTS - 1) ||
	    !is_int(r->element[1], r->element[0]->integer, RCLUSTER_SLOTS - 1) ||
	    node->type != REDIS_REPLY_ARRAY || node->elements < 2 ||
	    !is_int(node->element[1], 1, 65535))
		return -1;
	const redisReply *h = node->element[0];
	const char *host;
	size_t hostlen;
	if (h->type == REDIS_REPLY_NIL || (h->type == REDIS_REPLY_STRING && h->len == 0)) {
		host = asked->host; /* "the address you asked" */
		hostlen = strlen(host);
	} else if (h->type == REDIS_REPLY_STRING) {
		if (h->len == 1 && h->str[0] == '?')
			return 0; /* the node's hostname is unknown: no way to reach it */
		host = h->str;
		hostlen = h->len;
	} else {
		return -1;
	}
	int i = node_index(t, host, hostlen, (int)node->element[1]->integer);
	if (i < 0)
		return -1;
	for (long long s = r->element[0]->integer; s <= r->element[1]->integer; s++)
		t->owner[s] = (uint16_t)i;
	return 0;
}

int rcluster_table_standalone(struct rcluster_table *out, const struct rcluster_addr *addr)
{
	rcluster_table_init(out);
	int i = node_index(out, addr->host, strlen(addr->host), addr->port);
	if (i < 0)
		return -1;
	for (int s = 0; s < RCLUSTER_SLOTS; s++)
		out->owner[s] = (uint16_t)i;
	out->standalone = 1;
	return 0;
}

int rcluster_table_from_reply(struct rcluster_table *out, const redisReply *reply,
                              const struct rcluster_addr *asked)
{
	rcluster_table_init(out);
	if (reply == NULL)
		return -1;
	if (reply->type == REDIS_REPLY_ERROR) {
		if (reply->str == NULL || strstr(reply->str, "cluster support disabled") == NULL)
			return -1;
		return rcluster_table_standalone(out, asked);
	}
	if (reply->type != REDIS_REPLY_ARRAY)
		return -1;
	for (size_t i = 0; i < reply->elements; i++)
		if (add_range(out, reply->element[i], asked) != 0)
			goto error;
	for (int s = 0; s < RCLUSTER_SLOTS; s++)
		if (out->owner[s] != RCLUSTER_NO_NODE)
			return 0;
error:
	rcluster_table_clear(out);
	return -1;
}

int rcluster_table_same(const struct rcluster_table *t, const struct rcluster_table *u)
{
	if (t->standalone != u->standalone)
		return 0;
	for (int s = 0; s < RCLUSTER_SLOTS; s++) {
		const struct rcluster_addr *a = rcluster_table_owner(t, s);
		const struct rcluster_addr *b = rcluster_table_owner(u, s);
		if (a == NULL || b == NULL) {
			if (a != b)
				return 0;
		} else if (a->port != b->port || strcmp(a->host, b->host) != 0) {
			return 0;
		}
	}
	return 1;
}

size_t rcluster_candidates(const struct rcluster_table *t, size_t nseeds)
{
	return (t->standalone ? 0 : t->nnodes) + nseeds;
}

const struct rcluster_addr *rcluster_candidate(const struct rcluster_table *t,
                                               const struct rcluster_addr *seeds, size_t nseeds,
                                               size_t i)
{
	size_t ntable = t->standalone ? 0 : t->nnodes;

	if (i < ntable)
		return &t->nodes[i];
	return i - ntable < nseeds ? &seeds[i - ntable] : NULL;
}

/* "host:port" of len bytes (the port after the last ':', so an IPv6
 * address keeps its colons); an empty host means dflt's. */
static int parse_addr(const char *s, size_t len, const char *dflt, struct rcluster_addr *out)
{
	const char *colon = NULL;

	for (size_t i = 0; i < len; i++)
		if (s[i] == ':')
			colon = s + i;
	if (colon == NULL)
		return -1;
	size_t hostlen = (size_t)(colon - s);
	const char *p = colon + 1, *end = s + len;
	long port = 0;
	if (p == end || end - p > 5)
		return -1;
	for (; p < end; p++) {
		if (*p < '0' || *p > '9')
			return -1;
		port = port * 10 + (*p - '0');
	}
	if (port < 1 || port > 65535)
		return -1;
	if (hostlen == 0) {
		if (dflt == NULL)
			return -1;
		s = dflt;
		hostlen = strlen(dflt);
	}
	if (hostlen > RCLUSTER_HOST_MAX || memchr(s, '\0', hostlen) || memchr(s, ' ', hostlen))
		return -1;
	memcpy(out->host, s, hostlen);
	out->host[hostlen] = '\0';
	out->port = (int)port;
	return 0;
}

enum rcluster_redirect rcluster_redirect_parse(const redisReply *reply,
                                               const struct rcluster_addr *asked, int *slot,
                                               struct rcluster_addr *to)
{
	enum rcluster_redirect kind;
	const char *p;

	if (reply == NULL || reply->type != REDIS_REPLY_ERROR || reply->str == NULL)
		return RCLUSTER_REDIRECT_NONE;
	if (strncmp(reply->str, "MOVED ", 6) == 0) {
		kind = RCLUSTER_REDIRECT_MOVED;
		p = reply->str + 6;
	} else if (strncmp(reply->str, "ASK ", 4) == 0) {
		kind = RCLUSTER_REDIRECT_ASK;
		p = reply->str + 4;
	} else {
		return RCLUSTER_REDIRECT_NONE;
	}
	long s = 0;
	const char *digits = p;
	while (*p >= '0' && *p <= '9' && p - digits < 6)
		s = s * 10 + (*p++ - '0');
	if (p == digits || *p != ' ' || s >= RCLUSTER_SLOTS)
		return RCLUSTER_REDIRECT_NONE;
	p++;
	if (parse_addr(p, strlen(p), asked ? asked->host : NULL, to) != 0)
		return RCLUSTER_REDIRECT_NONE;
	*slot = (int)s;
	return kind;
}

int rcluster_topology_changed(const redisReply *reply)
{
	return reply && reply->type == REDIS_REPLY_ERROR && reply->str &&
	       (strncmp(reply->str, "CLUSTERDOWN", 11) == 0 ||
	        strncmp(reply->str, "READONLY", 8) == 0);
}

int rcluster_addrs_parse(const char *list, struct rcluster_addr **out, size_t *n)
{
	struct rcluster_addr *addrs = NULL;
	size_t count = 0;
	const char *p = list;

	*out = NULL;
	*n = 0;
	if (list == NULL)
		return -1;
	for (;;) {
		const char *end = strchr(p, ',');
		if (end == NULL)
			end = p + strlen(p);
		while (p < end && *p == ' ')
			p++;
		const char *last = end;
		while (last > p && last[-1] == ' ')
			last--;
		struct rcluster_addr a;
		if (count >= RCLUSTER_NODES_MAX || parse_addr(p, (size_t)(last - p), NULL, &a) != 0)
			goto error;
		struct rcluster_addr *grown = realloc(addrs, (count + 1) * sizeof(*grown));
		if (grown == NULL)
			goto error;
		addrs = grown;
		addrs[count++] = a;
		if (*end == '\0')
			break;
		p = end + 1;
	}
	*out = addrs;
	*n = count;
	return 0;
error:
	free(addrs);
	return -1;
}
