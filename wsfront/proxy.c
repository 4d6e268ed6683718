/*
 * /mqtt: a WebSocket (subprotocol "mqtt") joined to a TCP connection to
 * the local broker, both on the one libwebsockets event loop. The bytes go
 * through unchanged — the broker and its auth plugin see the browser's own
 * CONNECT, so the same tokens and topic rules apply as on TCP.
 *
 * Bytes go out at once when nothing is queued before them; otherwise they
 * wait in a queue and leave when the socket is writable again.
 *
 * Back-pressure: towards the broker, reading from the browser pauses while
 * ws_buffer_max / 4 bytes wait; towards the browser, a connection whose
 * queue passes ws_buffer_max (the browser does not read) is cut off, so no
 * browser can make the front hold more than that. Closing either side
 * flushes what the other still has to send, then closes it.
 *
 * A WebSocket must send its MQTT CONNECT within ws_connect_timeout of
 * opening (PROTOCOL.md: a few seconds); one that does not is closed, so
 * idle sockets hold no descriptors. The connection caps are http.c's.
 */
#include <stdlib.h>
#include <string.h>

#include "chat/log.h"
#include "bufq.h"
#include "front.h"
#include "mqttscan.h"

#define CHUNK 16384

struct link {
	struct lws *ws, *tcp;
	struct bufq to_ws, to_tcp;
	struct mqttscan scan_in, scan_out;
	unsigned tcp_up : 1;    /* connected to the broker */
	unsigned tcp_gone : 1;  /* the broker side closed or never connected */
	unsigned ws_gone : 1;   /* the browser side closed */
	unsigned ws_paused : 1; /* not reading from the browser */
	unsigned cut : 1;       /* cut off for not reading */
	unsigned connected : 1; /* the browser's CONNECT has arrived */
	uint16_t close_status;  /* for the browser, when the broker side ends */
};

struct ws_sess {
	struct link *link;
};

static struct front *front_of(struct lws *wsi)
{
	return lws_context_user(lws_get_context(wsi));
}

static void link_maybe_free(struct link *l)
{
	if (l->ws == NULL && l->tcp == NULL) {
		bufq_free(&l->to_ws);
		bufq_free(&l->to_tcp);
		free(l);
	}
}

static void kill_async(struct lws *wsi)
{
	lws_set_timeout(wsi, PENDING_TIMEOUT_KILLED_BY_PARENT, LWS_TO_KILL_ASYNC);
}

/* The broker side ended (closed, refused, unreachable): flush what the
 * browser still has to get, then close it. */
static void tcp_ended(struct link *l)
{
	l->tcp = NULL;
	l->tcp_gone = 1;
	bufq_free(&l->to_tcp);
	if (l->ws)
		lws_callback_on_writable(l->ws);
}

static int connect_broker(struct front *f, struct lws *ws, struct link *l)
{
	struct lws_client_connect_info i;

	memset(&i, 0, sizeof(i));
	i.context = f->ctx;
	i.address = f->cfg->mqtt_host;
	i.port = (int)f->cfg->mqtt_port;
	i.host = i.address;
	i.origin = i.address;
	i.method = "RAW";
	i.protocol = broker_protocol.name;
	i.local_protocol_name = broker_protocol.name;
	i.vhost = lws_get_vhost(ws);
	i.opaque_user_data = l;
	i.pwsi = &l->tcp;
	if (lws_client_connect_via_info(&i) == NULL) {
		l->tcp = NULL;
		return -1;
	}
	return 0;
}

/* Writes len bytes to wsi at once when nothing waits before them in q and
 * libwebsockets holds no partial write for it: one send instead of a round
 * through the poll loop for every MQTT packet. Returns 1 when written (a
 * short send is kept by libwebsockets, which then asks for POLLOUT itself),
 * 0 when the caller must queue, -1 on a write error. */
static int write_now(struct lws *wsi, const void *in, size_t len, enum lws_write_protocol proto,
                     const struct bufq *q)
{
	static unsigned char buf[LWS_PRE + 65536];

	if (q->bytes || len > sizeof(buf) - LWS_PRE || lws_partial_buffered(wsi))
		return 0;
	memcpy(buf + LWS_PRE, in, len);
	return lws_write(wsi, buf + LWS_PRE, len, proto) < (int)len ? -1 : 1;
}

static void count_in(struct front *f, struct link *l, const void *in, size_t len)
{
	uint64_t before = l->scan_in.packets[MQTT_PUBLISH];
	mqttscan_feed(&l->scan_in, in, len);
	f->m.mqtt_in += l->scan_in.packets[MQTT_PUBLISH] - before;
	f->m.bytes_in += len;
}

static int callback_mqtt(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                         size_t len)
{
	struct ws_sess *s = user;
	struct front *f = front_of(wsi);
	struct link *l = s ? s->link : NULL;
	char uri[16];

	switch (reason) {
	case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION:
		if (lws_hdr_copy(wsi, uri, sizeof(uri), WSI_TOKEN_GET_URI) <= 0 ||
		    strcmp(uri, "/mqtt") != 0) {
			f->m.rejects[REJ_SUBPROTOCOL]++;
			return 1;
		}
		return 0;

	case LWS_CALLBACK_ESTABLISHED:
		l = calloc(1, sizeof(*l));
		if (l == NULL)
			return -1;
		bufq_init(&l->to_ws, LWS_PRE, CHUNK);
		bufq_init(&l->to_tcp, LWS_PRE, CHUNK);
		mqttscan_init(&l->scan_in);
		mqttscan_init(&l->scan_out);
		l->ws = wsi;
		s->link = l;
		lws_set_timer_usecs(wsi, (lws_usec_t)f->cfg->ws_connect_timeout * LWS_US_PER_SEC);
		f->m.ws_open++;
		f->m.ws_total++;
		if (connect_broker(f, wsi, l) != 0 && !l->tcp_gone) {
			f->m.rejects[REJ_BROKER]++;
			l->tcp_gone = 1;
			l->close_status = LWS_CLOSE_STATUS_UNEXPECTED_CONDITION;
			lws_callback_on_writable(wsi);
		}
		return 0;

	case LWS_CALLBACK_RECEIVE:
		if (l == NULL || l->tcp_gone)
			return 0;
		count_in(f, l, in, len);
		if (!l->connected && l->scan_in.packets[MQTT_CONNECT] > 0) {
			l->connected = 1;
			wsi_timer_off(wsi);
		}
		if (l->tcp_up && l->tcp) {
			int w = write_now(l->tcp, in, len, LWS_WRITE_RAW, &l->to_tcp);
			if (w < 0)
				return -1;
			if (w > 0)
				return 0;
		}
		if (bufq_append(&l->to_tcp, in, len) != 0)
			return -1;
		if (l->tcp_up)
			lws_callback_on_writable(l->tcp);
		if (!l->ws_paused && l->to_tcp.bytes > (size_t)f->cfg->ws_buffer_max / 4) {
			l->ws_paused = 1;
			lws_rx_flow_control(wsi, 0);
		}
		return 0;

	case LWS_CALLBACK_SERVER_WRITEABLE: {
		if (l == NULL)
			return -1;
		size_t n;
		unsigned char *p = bufq_peek(&l->to_ws, &n);
		if (p) {
			if (lws_write(wsi, p, n, LWS_WRITE_BINARY) < (int)n)
				return -1;
			f->m.bytes_out += n;
			bufq_consume(&l->to_ws, n);
			if (l->to_ws.bytes)
				lws_callback_on_writable(wsi);
			else if (l->tcp_gone)
				lws_callback_on_writable(wsi);
			return 0;
		}
		if (l->tcp_gone) {
			/* the broker ended the session: a normal close, unless it could
			 * not be reached at all */
			uint16_t st = l->close_status ? l->close_status : LWS_CLOSE_STATUS_NORMAL;
			lws_close_reason(wsi, st, NULL, 0);
			return -1;
		}
		return 0;
	}

	case LWS_CALLBACK_TIMER:
		if (l == NULL || l->connected)
			return 0;
		f->m.rejects[REJ_TIMEOUT]++;
		lws_close_reason(wsi, LWS_CLOSE_STATUS_POLICY_VIOLATION,
		                 (unsigned char *)"no MQTT CONNECT in time", 23);
		return -1;

	case LWS_CALLBACK_CLOSED:
		if (l == NULL)
			return 0;
		f->m.ws_open--;
		l->ws = NULL;
		l->ws_gone = 1;
		s->link = NULL;
		bufq_free(&l->to_ws);
		if (l->tcp) {
			/* flush what the browser sent last (its DISCONNECT), then close */
			if (l->to_tcp.bytes == 0 || !l->tcp_up)
				kill_async(l->tcp);
			else
				lws_callback_on_writable(l->tcp);
		}
		link_maybe_free(l);
		return 0;

	default:
		break;
	}
	return 0;
}

static int callback_broker(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                           size_t len)
{
	struct front *f = front_of(wsi);
	struct link *l = lws_get_opaque_user_data(wsi);
	(void)user;

	switch (reason) {
	case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
		if (l == NULL || l->tcp_gone)
			return 0;
		log_msg(LOG_WARN, "broker %s:%ld: %s", f->cfg->mqtt_host, f->cfg->mqtt_port,
		        in ? (const char *)in : "cannot connect");
		f->m.rejects[REJ_BROKER]++;
		lws_set_opaque_user_data(wsi, NULL);
		l->close_status = LWS_CLOSE_STATUS_UNEXPECTED_CONDITION;
		tcp_ended(l);
		link_maybe_free(l);
		return 0;

	case LWS_CALLBACK_RAW_CONNECTED:
		if (l == NULL)
			return -1;
		l->tcp_up = 1;
		if (l->ws_gone && l->to_tcp.bytes == 0)
			return -1;
		if (l->to_tcp.bytes)
			lws_callback_on_writable(wsi);
		return 0;

	case LWS_CALLBACK_RAW_RX: {
		if (l == NULL || l->ws_gone)
			return 0;
		uint64_t pubs = l->scan_out.packets[MQTT_PUBLISH];
		int had_connack = l->scan_out.connack_code >= 0;
		mqttscan_feed(&l->scan_out, in, len);
		f->m.mqtt_out += l->scan_out.packets[MQTT_PUBLISH] - pubs;
		if (!had_connack && l->scan_out.connack_code > 0)
			f->m.rejects[REJ_AUTH]++;
		if (l->to_ws.bytes + len > (size_t)f->cfg->ws_buffer_max) {
			/* the browser does not read: cut it off, not the others */
			f->m.rejects[REJ_SLOW]++;
			l->cut = 1;
			log_msg(LOG_WARN,
			        "cutting off a WebSocket client that does not read "
			        "(%zu bytes queued)",
			        l->to_ws.bytes);
			bufq_free(&l->to_ws);
			kill_async(l->ws);
			return -1;
		}
		int w = write_now(l->ws, in, len, LWS_WRITE_BINARY, &l->to_ws);
		if (w < 0) {
			kill_async(l->ws);
			return -1;
		}
		if (w > 0) {
			f->m.bytes_out += len;
			return 0;
		}
		if (bufq_append(&l->to_ws, in, len) != 0)
			return -1;
		lws_callback_on_writable(l->ws);
		return 0;
	}

	case LWS_CALLBACK_RAW_WRITEABLE: {
		if (l == NULL)
			return -1;
		size_t n;
		unsigned char *p = bufq_peek(&l->to_tcp, &n);
		if (p) {
			if (lws_write(wsi, p, n, LWS_WRITE_RAW) < (int)n)
				return -1;
			bufq_consume(&l->to_tcp, n);
		}
		if (l->to_tcp.bytes) {
			lws_callback_on_writable(wsi);
		} else if (l->ws_gone) {
			return -1;
		}
		if (l->ws_paused && l->ws && l->to_tcp.bytes <= (size_t)f->cfg->ws_buffer_max / 8) {
			l->ws_paused = 0;
			lws_rx_flow_control(l->ws, 1);
		}
		return 0;
	}

	case LWS_CALLBACK_RAW_CLOSE:
		if (l == NULL)
			return 0;
		lws_set_opaque_user_data(wsi, NULL);
		tcp_ended(l);
		link_maybe_free(l);
		return 0;

	default:
		break;
	}
	return 0;
}

const struct lws_protocols mqtt_protocol = {
    "mqtt", callback_mqtt, sizeof(struct ws_sess), 4096, 0, NULL, 0};
const struct lws_protocols broker_protocol = {"wsfront-broker", callback_broker, 0, 0, 0, NULL, 0};
