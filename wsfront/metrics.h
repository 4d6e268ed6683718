/*
 * The web front's own counters, kept on the event loop thread (no locks),
 * and their Prometheus text rendering. The bridge's and the persistence
 * worker's counters are read from Redis by a worker and appended by
 * metrics_render_redis (see jobs.c).
 */
#ifndef WSFRONT_METRICS_H
#define WSFRONT_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "strbuf.h"

enum reject_reason {
	REJ_SUBPROTOCOL,  /* WebSocket without subprotocol mqtt, or not at /mqtt */
	REJ_AUTH,         /* the broker refused the CONNECT (bad token) */
	REJ_SLOW,         /* a browser that did not read: cut off */
	REJ_BROKER,       /* the broker could not be reached */
	REJ_RATE,         /* login/register rate limit */
	REJ_BAD_REQUEST,  /* HTTP 400 */
	REJ_TOO_LARGE,    /* HTTP 413 */
	REJ_METHOD,       /* HTTP 405 */
	REJ_NOT_FOUND,    /* HTTP 404 */
	REJ_UNAUTHORIZED, /* HTTP 401 */
	REJ_FORBIDDEN,    /* HTTP 403 */
	REJ_CONFLICT,     /* HTTP 409 */
	REJ_CONN_LIMIT,   /* a connection over the total or per-address cap */
	REJ_TIMEOUT,      /* headers, body or MQTT CONNECT not in time; a job past its deadline */
	REJ_ORIGIN,       /* a WebSocket from a foreign Origin */
	REJ_BUSY,         /* the hashing queue was full: 503 */
	REJ_COUNT
};

enum route {
	ROUTE_STATIC,
	ROUTE_REGISTER,
	ROUTE_LOGIN,
	ROUTE_HISTORY,
	ROUTE_HEALTHZ,
	ROUTE_METRICS,
	ROUTE_LOGOUT,
	ROUTE_OTHER,
	ROUTE_COUNT
};

#define LAT_BUCKETS 12

struct metrics {
	uint64_t ws_open;  /* WebSocket connections now */
	uint64_t ws_total; /* accepted since start */
	uint64_t mqtt_in;  /* PUBLISH packets browsers sent */
	uint64_t mqtt_out; /* PUBLISH packets browsers were sent */
	uint64_t bytes_in, bytes_out;
	uint64_t rejects[REJ_COUNT];
	uint64_t http[ROUTE_COUNT];
	uint64_t lat_bucket[ROUTE_COUNT][LAT_BUCKETS]; /* not cumulative */
	double lat_sum[ROUTE_COUNT];
};

void metrics_latency(struct metrics *m, enum route r, double seconds);

/* Renders the local counters into b. */
void metrics_render(const struct metrics *m, struct strbuf *b);

/* Appends one Redis hash of bridge counters (field, value pairs) as
 * chat_bridge_* series labelled with node. Fields "rejects:<code>" become
 * chat_bridge_rejects_total{code=...}; non-numeric values are skipped. */
void metrics_render_bridge(struct strbuf *b, const char *node, const char *const *fields,
                           const char *const *values, size_t n);

/* Appends the persistence worker's hash as chat_persist_* gauges. */
void metrics_render_persist(struct strbuf *b, const char *const *fields, const char *const *values,
                            size_t n);

const char *reject_name(enum reject_reason r);
const char *route_name(enum route r);

#endif
