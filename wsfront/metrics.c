/* Prometheus text rendering of the counters of metrics.h. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "metrics.h"

static const double bounds[LAT_BUCKETS] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                           0.05,   0.1,   0.25,   0.5,   1.0,  2.5};

static const char *const reject_names[REJ_COUNT] = {
    "subprotocol", "auth",    "slow_consumer", "broker_down",  "rate_limited", "bad_request",
    "too_large",   "method",  "not_found",     "unauthorized", "forbidden",    "conflict",
    "conn_limit",  "timeout", "origin",        "busy"};
static const char *const route_names[ROUTE_COUNT] = {"static",  "register", "login",  "history",
                                                     "healthz", "metrics",  "logout", "other"};

const char *reject_name(enum reject_reason r)
{
	return (unsigned)r < REJ_COUNT ? reject_names[r] : "unknown";
}

const char *route_name(enum route r)
{
	return (unsigned)r < ROUTE_COUNT ? route_names[r] : "unknown";
}

void metrics_latency(struct metrics *m, enum route r, double seconds)
{
	m->http[r]++;
	m->lat_sum[r] += seconds;
	for (int i = 0; i < LAT_BUCKETS; i++) {
		if (seconds <= bounds[i]) {
			m->lat_bucket[r][i]++;
			return;
		}
	}
}

void metrics_render(const struct metrics *m, struct strbuf *b)
{
	strbuf_printf(b,
	              "# HELP wsfront_ws_connections WebSocket (MQTT) connections open now.\n"
	              "# TYPE wsfront_ws_connections gauge\nwsfront_ws_connections %llu\n",
	              (unsigned long long)m->ws_open);
	strbuf_printf(b,
	              "# HELP wsfront_ws_connections_total WebSocket connections accepted.\n"
	              "# TYPE wsfront_ws_connections_total counter\n"
	              "wsfront_ws_connections_total %llu\n",
	              (unsigned long long)m->ws_total);
	strbuf_printf(b,
	              "# HELP wsfront_mqtt_messages_in_total PUBLISH packets from browsers.\n"
	              "# TYPE wsfront_mqtt_messages_in_total counter\n"
	              "wsfront_mqtt_messages_in_total %llu\n",
	              (unsigned long long)m->mqtt_in);
	strbuf_printf(b,
	              "# HELP wsfront_mqtt_messages_out_total PUBLISH packets to browsers.\n"
	              "# TYPE wsfront_mqtt_messages_out_total counter\n"
	              "wsfront_mqtt_messages_out_total %llu\n",
	              (unsigned long long)m->mqtt_out);
	strbuf_printf(b,
	              "# HELP wsfront_bytes_total MQTT bytes carried over WebSocket.\n"
	              "# TYPE wsfront_bytes_total counter\n"
	              "wsfront_bytes_total{direction=\"in\"} %llu\n"
	              "wsfront_bytes_total{direction=\"out\"} %llu\n",
	              (unsigned long long)m->bytes_in, (unsigned long long)m->bytes_out);
	strbuf_printf(b, "# HELP wsfront_rejects_total Refused or cut-off requests and "
	                 "connections, by reason.\n# TYPE wsfront_rejects_total counter\n");
	for (int r = 0; r < REJ_COUNT; r++)
		strbuf_printf(b, "wsfront_rejects_total{reason=\"%s\"} %llu\n", reject_names[r],
		              (unsigned long long)m->rejects[r]);
	strbuf_printf(b, "# HELP wsfront_http_request_duration_seconds HTTP request latency "
	                 "by route.\n# TYPE wsfront_http_request_duration_seconds histogram\n");
	for (int r = 0; r < ROUTE_COUNT; r++) {
		uint64_t cum = 0;
		for (int i = 0; i < LAT_BUCKETS; i++) {
			cum += m->lat_bucket[r][i];
			strbuf_printf(b,
			              "wsfront_http_request_duration_seconds_bucket{route=\"%s\","
			              "le=\"%g\"} %llu\n",
			              route_names[r], bounds[i], (unsigned long long)cum);
		}
		strbuf_printf(
		    b,
		    "wsfront_http_request_duration_seconds_bucket{route=\"%s\",le=\"+Inf\"}"
		    " %llu\n"
		    "wsfront_http_request_duration_seconds_sum{route=\"%s\"} %.6f\n"
		    "wsfront_http_request_duration_seconds_count{route=\"%s\"} %llu\n",
		    route_names[r], (unsigned long long)m->http[r], route_names[r], m->lat_sum[r],
		    route_names[r], (unsigned long long)m->http[r]);
	}
}

/* A metric name from a Redis field: [a-z0-9_] only, others become '_'. */
static void metric_name(char *out, size_t size, const char *field)
{
	size_t i = 0;
	for (; field[i] && i + 1 < size; i++) {
		unsigned char c = (unsigned char)field[i];
		out[i] = (char)(isalnum(c) ? tolower(c) : '_');
	}
	out[i] = '\0';
}

static int numeric(const char *v, double *out)
{
	char *end;
	if (v == NULL || *v == '\0')
		return 0;
	*out = strtod(v, &end);
	return *end == '\0';
}

/* A label value: no quotes, backslashes or newlines reach the output. */
static void label_value(char *out, size_t size, const char *v)
{
	size_t i = 0;
	for (; v[i] && i + 1 < size; i++)
		out[i] = (v[i] == '"' || v[i] == '\\' || v[i] == '\n') ? '_' : v[i];
	out[i] = '\0';
}

void metrics_render_bridge(struct strbuf *b, const char *node, const char *const *fields,
                           const char *const *values, size_t n)
{
	char name[96], lnode[64], code[64];
	double v;

	label_value(lnode, sizeof(lnode), node);
	for (size_t i = 0; i < n; i++) {
		if (!numeric(values[i], &v))
			continue;
		if (strncmp(fields[i], "rejects:", 8) == 0) {
			label_value(code, sizeof(code), fields[i] + 8);
			strbuf_printf(b,
			              "chat_bridge_rejects_total{node=\"%s\",code=\"%s\"} %.17g\n",
			              lnode, code, v);
			continue;
		}
		metric_name(name, sizeof(name), fields[i]);
		strbuf_printf(b, "chat_bridge_%s{node=\"%s\"} %.17g\n", name, lnode, v);
	}
}

void metrics_render_persist(struct strbuf *b, const char *const *fields, const char *const *values,
                            size_t n)
{
	char name[96];
	double v;

	for (size_t i = 0; i < n; i++) {
		if (!numeric(values[i], &v))
			continue;
		metric_name(name, sizeof(name), fields[i]);
		strbuf_printf(b, "chat_persist_%s %.17g\n", name, v);
	}
}
