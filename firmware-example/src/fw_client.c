/*
 * The firmware chat client's state machine (see fw_client.h). The flow of
 * one connection: open the stream, CONNECT, wait for CONNACK, SUBSCRIBE to
 * chat/user/<me>/# and chat/room/<room>, wait for SUBACK, then online:
 * join the room, fetch history for every conversation with a known last
 * seq, show live messages in seq order. Any failure closes the stream and
 * schedules the next attempt with exponential backoff and jitter.
 *
 * Ordering rule, per conversation: a message is shown only when its seq is
 * exactly last + 1 (or it is the first one ever seen). A message further
 * ahead is held back by not showing it: the client asks `history` for what
 * follows last and shows the page in order, so there is never a gap and
 * never a duplicate. One history request is in flight at a time.
 */
#include <string.h>

#include "fw_client.h"
#include "fw_mqtt.h"

/* A connection that stayed up this long resets the backoff. */
#define FW_STABLE_MS 30000u
/* When history returned less than live already showed exists, ask again
 * after this pause (the stored history may lag the live feed a little). */
#define FW_HISTORY_LAG_MS 500u

static int due(uint32_t now, uint32_t at)
{
	return (int32_t)(now - at) >= 0;
}

static void emit(struct fw_client *c, enum fw_event_type type, int code)
{
	struct fw_event ev;
	memset(&ev, 0, sizeof(ev));
	ev.type = type;
	ev.code = code;
	c->cb(c->cb_arg, &ev);
}

static void emit_conv(struct fw_client *c, enum fw_event_type type, const struct fw_conv *cv,
                      uint32_t seq, const struct fw_env *msg)
{
	struct fw_event ev;
	memset(&ev, 0, sizeof(ev));
	ev.type = type;
	ev.conv = cv ? cv->id : NULL;
	ev.seq = seq;
	ev.msg = msg;
	c->cb(c->cb_arg, &ev);
}

static int device_valid(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > 64)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (s[i] <= ' ' || s[i] > '~' || s[i] == '+' || s[i] == '#' || s[i] == '/')
			return 0;
	return 1;
}

static struct fw_conv *conv_find(struct fw_client *c, const char *id, size_t n)
{
	for (size_t i = 0; i < c->nconv; i++)
		if (strlen(c->convs[i].id) == n && memcmp(c->convs[i].id, id, n) == 0)
			return &c->convs[i];
	return NULL;
}

/* Finds or adds conv id (already validated, so it fits). When the table is
 * full the least recently used conversation other than the room gives its
 * place: a DM that was quiet longest is the cheapest to forget. */
static struct fw_conv *conv_get(struct fw_client *c, const char *id, size_t n)
{
	struct fw_conv *cv = conv_find(c, id, n);
	if (cv)
		return cv;
	if (c->nconv < c->conv_cap) {
		cv = &c->convs[c->nconv++];
	} else {
		for (size_t i = 0; i < c->nconv; i++) {
			struct fw_conv *o = &c->convs[i];
			if (!o->is_room && (!cv || (int32_t)(o->used - cv->used) < 0))
				cv = o;
		}
		if (!cv)
			return NULL;
	}
	memset(cv, 0, sizeof(*cv));
	memcpy(cv->id, id, n);
	cv->id[n] = '\0';
	cv->limit = c->cfg.history_limit;
	cv->used = fw_millis();
	return cv;
}

int fw_client_init(struct fw_client *c, const struct fw_client_config *cfg, struct fw_net *net,
                   uint8_t *rx, size_t rx_cap, uint8_t *tx, size_t tx_cap, struct fw_conv *convs,
                   size_t conv_cap, fw_event_cb cb, void *cb_arg)
{
	struct fw_client tmp;
	if (!cfg || !cfg->host || !cfg->user || !cfg->token || !cb || !rx || !tx || !convs)
		return FW_ERR_INVALID;
	if (!fw_user_valid(cfg->user, strlen(cfg->user)) ||
	    (cfg->device && !device_valid(cfg->device)) ||
	    (cfg->room && !fw_room_valid(cfg->room, strlen(cfg->room))))
		return FW_ERR_INVALID;
	if (rx_cap < FW_RX_MIN || tx_cap < FW_TX_MIN || conv_cap < 1u + (cfg->room != NULL))
		return FW_ERR_FULL;
	memset(&tmp, 0, sizeof(tmp));
	tmp.cfg = *cfg;
	if (!tmp.cfg.keepalive_s)
		tmp.cfg.keepalive_s = 60;
	if (!tmp.cfg.backoff_min_ms)
		tmp.cfg.backoff_min_ms = 1000;
	if (!tmp.cfg.backoff_max_ms)
		tmp.cfg.backoff_max_ms = 60000;
	if (tmp.cfg.backoff_max_ms < tmp.cfg.backoff_min_ms)
		tmp.cfg.backoff_max_ms = tmp.cfg.backoff_min_ms;
	if (!tmp.cfg.timeout_ms)
		tmp.cfg.timeout_ms = 10000;
	if (!tmp.cfg.history_limit)
		tmp.cfg.history_limit = 10;
	if (tmp.cfg.history_limit > 200)
		tmp.cfg.history_limit = 200;
	tmp.net = net;
	tmp.cb = cb;
	tmp.cb_arg = cb_arg;
	tmp.rx = rx;
	tmp.rx_cap = rx_cap;
	tmp.tx = tx;
	tmp.tx_cap = tx_cap;
	tmp.convs = convs;
	tmp.conv_cap = conv_cap;
	tmp.state = FW_ST_OFFLINE;
	tmp.at = fw_millis();
	tmp.next_pid = (uint16_t)(fw_random() | 1);
	tmp.next_req = 1;
	*c = tmp;
	if (cfg->room) {
		char id[FW_CONV_MAX + 1] = "room:";
		size_t n = strlen(cfg->room);
		memcpy(id + 5, cfg->room, n);
		conv_get(c, id, 5 + n)->is_room = 1;
	}
	return FW_OK;
}

static uint16_t new_pid(struct fw_client *c)
{
	if (++c->next_pid == 0)
		c->next_pid = 1;
	return c->next_pid;
}

/* The delay before attempt number c->attempt: min * 2^attempt capped at
 * max, then "equal jitter": half fixed, half random, so a fleet that lost
 * the broker at once does not come back at once. */
static uint32_t backoff(struct fw_client *c)
{
	uint32_t d = c->cfg.backoff_min_ms;
	for (uint32_t i = 0; i < c->attempt && d < c->cfg.backoff_max_ms; i++)
		d = d > c->cfg.backoff_max_ms / 2 ? c->cfg.backoff_max_ms : d * 2;
	if (d > c->cfg.backoff_max_ms)
		d = c->cfg.backoff_max_ms;
	if (c->attempt < 32)
		c->attempt++;
	return d / 2 + fw_random() % (d / 2 + 1);
}

/* Closes the stream and forgets what was in flight on it: OFFLINE, empty
 * receive buffer, no ping or history request outstanding; a post not yet
 * acknowledged is reported lost. */
static void go_offline(struct fw_client *c)
{
	fw_net_close(c->net);
	c->state = FW_ST_OFFLINE;
	c->rx_fill = 0;
	c->rx_skip = 0;
	c->ping_out = 0;
	for (size_t i = 0; i < c->nconv; i++)
		c->convs[i].req = 0;
	if (c->post_out) {
		c->post_out = 0;
		emit(c, FW_EV_POST_LOST, 0);
	}
}

/* Closes the stream, tells the application why, and schedules the next
 * attempt. Leaves the client OFFLINE with nothing in flight. Returns why. */
static int drop(struct fw_client *c, int why)
{
	uint32_t now = fw_millis();
	if (c->state == FW_ST_ONLINE && now - c->online_since >= FW_STABLE_MS)
		c->attempt = 0;
	go_offline(c);
	if (why != FW_ERR_REFUSED)
		emit(c, FW_EV_DISCONNECTED, why);
	uint32_t delay = backoff(c);
	c->at = now + delay;
	struct fw_event ev;
	memset(&ev, 0, sizeof(ev));
	ev.type = FW_EV_WAIT;
	ev.delay_ms = delay;
	c->cb(c->cb_arg, &ev);
	return why;
}

static int send_all(struct fw_client *c, const uint8_t *p, size_t n)
{
	int rc = fw_net_send(c->net, p, n, c->cfg.timeout_ms);
	if (rc < 0)
		return drop(c, FW_ERR_NET);
	c->last_tx = fw_millis();
	return FW_OK;
}

/* Sends what fw_mqtt_end() made of w, or reports FW_ERR_FULL. */
static int send_wr(struct fw_client *c, struct fw_wr *w, uint8_t first)
{
	const uint8_t *pkt;
	size_t len;
	int rc = fw_mqtt_end(w, first, &pkt, &len);
	return rc ? rc : send_all(c, pkt, len);
}

static void connect_now(struct fw_client *c)
{
	const uint8_t *pkt;
	size_t len;
	char cid[32 + 1 + 64 + 1];
	size_t un = strlen(c->cfg.user);
	memcpy(cid, c->cfg.user, un + 1);
	if (c->cfg.device) {
		cid[un] = ':';
		memcpy(cid + un + 1, c->cfg.device, strlen(c->cfg.device) + 1);
	}
	int rc = fw_mqtt_connect(c->tx, c->tx_cap, cid, c->cfg.user, c->cfg.token,
	                         c->cfg.keepalive_s, &pkt, &len);
	if (rc) {
		/* a token longer than tx: retrying will not help, but backing
		 * off keeps the report rate low while someone fixes it */
		c->state = FW_ST_CONNACK;
		drop(c, rc);
		return;
	}
	if (fw_net_open(c->net, c->cfg.host, c->cfg.port, c->cfg.timeout_ms) < 0) {
		c->state = FW_ST_CONNACK;
		drop(c, FW_ERR_NET);
		return;
	}
	c->state = FW_ST_CONNACK;
	c->at = fw_millis() + c->cfg.timeout_ms;
	send_all(c, pkt, len);
}

/* A request {"id":"<kind><n>","method":...,"params":{...}} on
 * chat/in/<me>/rpc at QoS 0 (a lost request is noticed by its timeout). */
static int send_request(struct fw_client *c, char kind, uint32_t id, const struct fw_conv *cv)
{
	struct fw_wr w;
	const char *topic[] = {"chat/in/", c->cfg.user, "/rpc", NULL};
	fw_mqtt_publish_begin(&w, c->tx, c->tx_cap, topic, 0, 0);
	fw_wr_cstr(&w, "{\"id\":\"");
	fw_wr_u8(&w, (uint8_t)kind);
	fw_wr_dec(&w, id);
	if (cv) {
		fw_wr_cstr(&w, "\",\"method\":\"history\",\"params\":{\"conv\":\"");
		fw_wr_cstr(&w, cv->id);
		fw_wr_cstr(&w, "\",\"after\":");
		fw_wr_dec(&w, cv->last);
		fw_wr_cstr(&w, ",\"limit\":");
		fw_wr_dec(&w, cv->limit);
		fw_wr_cstr(&w, "}}");
	} else {
		fw_wr_cstr(&w, "\",\"method\":\"room.join\",\"params\":{\"room\":\"");
		fw_wr_cstr(&w, c->cfg.room);
		fw_wr_cstr(&w, "\"}}");
	}
	return send_wr(c, &w, fw_mqtt_publish_flags(0));
}

static int subscribe(struct fw_client *c)
{
	const uint8_t *pkt;
	size_t len;
	const char *inbox[] = {"chat/user/", c->cfg.user, "/#", NULL};
	const char *room[] = {"chat/room/", c->cfg.room, NULL};
	const char *const *filters[] = {inbox, room};
	c->sub_pid = new_pid(c);
	int rc = fw_mqtt_subscribe(c->tx, c->tx_cap, c->sub_pid, filters, c->cfg.room ? 2 : 1, 0,
	                           &pkt, &len);
	if (rc)
		return drop(c, rc);
	c->state = FW_ST_SUBACK;
	c->at = fw_millis() + c->cfg.timeout_ms;
	return send_all(c, pkt, len);
}

/* Shows m when it is the next of its conversation. Returns 1 when shown. */
static int show_if_next(struct fw_client *c, struct fw_conv *cv, const struct fw_env *m)
{
	if (cv->known && m->seq <= cv->last)
		return 0;
	if (cv->known && m->seq != cv->last + 1)
		return 0;
	cv->known = 1;
	cv->last = m->seq;
	if (cv->seen < m->seq)
		cv->seen = m->seq;
	cv->used = fw_millis();
	if (m->kind == FW_ENV_MSG)
		emit_conv(c, FW_EV_MESSAGE, cv, m->seq, m);
	return 1;
}

/* A message from the live feed: shown when next, else remembered as seen
 * and fetched through history. */
static void on_live(struct fw_client *c, const struct fw_env *m)
{
	struct fw_conv *cv = conv_get(c, m->conv.p, m->conv.len);
	if (!cv)
		return;
	if (show_if_next(c, cv, m) || m->seq <= cv->last)
		return;
	if (cv->seen < m->seq)
		cv->seen = m->seq;
	if (!cv->want && !cv->req) {
		cv->want = 1;
		cv->due = fw_millis();
	}
}

/* A history page for cv: shows it in order; a seq the page jumps over is
 * not in the history at all, so it is reported as skipped rather than
 * waited for. Then decides whether another page is needed. */
static void on_history(struct fw_client *c, struct fw_conv *cv, struct fw_reply *r)
{
	struct fw_env m;
	uint32_t n = 0, before = cv->last;
	int more;
	uint32_t now = fw_millis();
	cv->req = 0;
	for (int first = 1; (more = fw_env_next(r, first, &m)) == 1; first = 0) {
		n++;
		if ((m.kind != FW_ENV_MSG && m.kind != FW_ENV_SILENT) ||
		    strlen(cv->id) != m.conv.len || memcmp(cv->id, m.conv.p, m.conv.len) != 0 ||
		    m.seq <= cv->last)
			continue;
		if (m.seq != cv->last + 1) {
			emit_conv(c, FW_EV_SKIPPED, cv, cv->last + 1, NULL);
			cv->last = m.seq - 1;
		}
		show_if_next(c, cv, &m);
	}
	if (more < 0) {
		/* the part before the error was shown; fetch the rest again */
		emit(c, FW_EV_BAD_INPUT, more);
		cv->want = 1;
		cv->due = now + c->cfg.timeout_ms;
		return;
	}
	if (n >= cv->limit) {
		/* a full page: there may be more; a full page of nothing new
		 * means the server ignored `after`, so do not spin on it */
		cv->want = 1;
		cv->due = cv->last != before ? now : now + c->cfg.timeout_ms;
	} else if (cv->seen > cv->last) {
		cv->want = 1;
		cv->due = now + FW_HISTORY_LAG_MS;
	} else {
		cv->want = 0;
		cv->limit = c->cfg.history_limit;
		emit_conv(c, FW_EV_CAUGHT_UP, cv, cv->last, NULL);
	}
}

static void on_reply(struct fw_client *c, char *p, size_t n)
{
	struct fw_reply r;
	uint32_t id = 0;
	int rc = fw_reply_parse(p, n, &r);
	if (rc) {
		emit(c, FW_EV_BAD_INPUT, rc);
		return;
	}
	if (r.id.len < 2 || r.id.len > 10 || (r.id.p[0] != 'h' && r.id.p[0] != 'j'))
		return;
	for (size_t i = 1; i < r.id.len; i++) {
		if (r.id.p[i] < '0' || r.id.p[i] > '9')
			return;
		id = id * 10 + (uint32_t)(r.id.p[i] - '0');
	}
	struct fw_conv *cv = NULL;
	if (r.id.p[0] == 'h') {
		for (size_t i = 0; i < c->nconv && !cv; i++)
			if (c->convs[i].req == id)
				cv = &c->convs[i];
		if (!cv)
			return; /* an answer nobody waits for any more */
	}
	if (r.is_error) {
		struct fw_env e;
		memset(&e, 0, sizeof(e));
		e.code = r.code;
		e.message = r.message;
		emit_conv(c, FW_EV_RPC_ERROR, cv, 0, &e);
		if (cv) {
			cv->req = 0;
			cv->want = 1;
			cv->due = fw_millis() + c->cfg.timeout_ms;
		}
		return;
	}
	if (cv)
		on_history(c, cv, &r);
}

/* Whether topic[0..n) is the concatenation of the NULL-ended pieces. */
static int topic_is(const char *topic, size_t n, const char *const *pieces)
{
	for (size_t i = 0; pieces[i]; i++) {
		size_t k = strlen(pieces[i]);
		if (k > n || memcmp(topic, pieces[i], k) != 0)
			return 0;
		topic += k;
		n -= k;
	}
	return n == 0;
}

static void on_publish(struct fw_client *c, struct fw_mqtt_pkt *p)
{
	const char *u = c->cfg.user;
	const char *room[] = {"chat/room/", c->cfg.room, NULL};
	const char *inbox[] = {"chat/user/", u, "/inbox", NULL};
	const char *rpc[] = {"chat/user/", u, "/rpc", NULL};
	const char *notice[] = {"chat/user/", u, "/notice", NULL};
	char *body = (char *)p->payload;
	struct fw_env e;
	int rc;

	if (topic_is(p->topic, p->topic_len, rpc)) {
		on_reply(c, body, p->payload_len);
		return;
	}
	int is_room = c->cfg.room && topic_is(p->topic, p->topic_len, room);
	int is_inbox = topic_is(p->topic, p->topic_len, inbox);
	int is_notice = topic_is(p->topic, p->topic_len, notice);
	if (!is_room && !is_inbox && !is_notice)
		return; /* presence, typing, a future topic: not for this device */
	rc = fw_env_parse_payload(body, p->payload_len, &e);
	if (rc) {
		emit(c, FW_EV_BAD_INPUT, rc);
		return;
	}
	if (is_notice && e.kind == FW_ENV_NOTICE)
		emit_conv(c, FW_EV_NOTICE, NULL, 0, &e);
	else if (!is_notice && (e.kind == FW_ENV_MSG || e.kind == FW_ENV_SILENT))
		on_live(c, &e);
}

/* Handles one complete packet. Returns 0 or the error that must end the
 * connection (the caller drops it). */
static int on_packet(struct fw_client *c, uint8_t *pkt, size_t len)
{
	struct fw_mqtt_pkt p;
	int rc = fw_mqtt_decode(pkt, len, &p);
	if (rc)
		return rc == FW_ERR_SHORT ? FW_ERR_MALFORMED : rc;
	if (c->state == FW_ST_CONNACK) {
		if (p.type != FW_MQTT_CONNACK)
			return FW_ERR_PROTOCOL;
		if (p.rc) {
			emit(c, FW_EV_REFUSED, p.rc);
			return FW_ERR_REFUSED;
		}
		return subscribe(c);
	}
	switch (p.type) {
	case FW_MQTT_SUBACK:
		if (c->state != FW_ST_SUBACK || p.pid != c->sub_pid ||
		    p.ncodes != (c->cfg.room ? 2u : 1u))
			return FW_ERR_PROTOCOL;
		/* without its inbox the device cannot work: like a refusal */
		if (p.codes[0] == 0x80) {
			emit(c, FW_EV_REFUSED, 0x80);
			return FW_ERR_REFUSED;
		}
		c->room_ok = c->cfg.room && p.codes[1] != 0x80;
		if (c->cfg.room && !c->room_ok)
			emit(c, FW_EV_SUB_REFUSED, p.codes[1]);
		c->state = FW_ST_ONLINE;
		c->online_since = fw_millis();
		for (size_t i = 0; i < c->nconv; i++) {
			c->convs[i].want = c->convs[i].known;
			c->convs[i].due = c->online_since;
			c->convs[i].limit = c->cfg.history_limit;
		}
		emit(c, FW_EV_CONNECTED, 0);
		if (c->state == FW_ST_ONLINE && c->room_ok)
			return send_request(c, 'j', c->next_req++, NULL);
		return FW_OK;
	case FW_MQTT_PUBLISH:
		/* MQTT 3.1.1 (3.8.4) lets a broker deliver before the SUBACK */
		if (c->state != FW_ST_ONLINE && c->state != FW_ST_SUBACK)
			return FW_ERR_PROTOCOL;
		if (p.qos == 2)
			return FW_ERR_PROTOCOL; /* we subscribe at QoS 0 */
		if (p.qos == 1) {
			uint8_t ack[4];
			rc = send_all(c, ack, fw_mqtt_puback(ack, p.pid));
			if (rc)
				return rc;
		}
		on_publish(c, &p);
		return FW_OK;
	case FW_MQTT_PUBACK:
		if (c->post_out && p.pid == c->post_pid) {
			c->post_out = 0;
			emit(c, FW_EV_POSTED, 0);
		}
		return FW_OK;
	case FW_MQTT_PINGRESP:
		c->ping_out = 0;
		return FW_OK;
	case FW_MQTT_UNSUBACK:
		return FW_OK;
	default:
		return FW_ERR_PROTOCOL;
	}
}

/* A packet longer than rx: drop its bytes as they come. When it is a
 * request reply (the topic is at the front, so it is readable) and a
 * history page is in flight, that page was too big: ask for half as many,
 * and at one message give that message up, loudly. */
static void too_big(struct fw_client *c, size_t header_len, uint32_t total)
{
	const char *rpc[] = {"chat/user/", c->cfg.user, "/rpc", NULL};
	emit(c, FW_EV_TOO_BIG, (int)(total > 0x7fffffff ? 0x7fffffff : total));
	c->rx_skip = total - (uint32_t)c->rx_fill;
	const uint8_t *b = c->rx + header_len;
	int is_reply = 0;
	if ((c->rx[0] >> 4) == FW_MQTT_PUBLISH && header_len + 2 <= c->rx_fill) {
		size_t tl = (size_t)(b[0] << 8 | b[1]);
		is_reply =
		    header_len + 2 + tl <= c->rx_fill && topic_is((const char *)b + 2, tl, rpc);
	}
	c->rx_fill = 0;
	for (size_t i = 0; is_reply && i < c->nconv; i++) {
		struct fw_conv *cv = &c->convs[i];
		if (!cv->req)
			continue;
		cv->req = 0;
		cv->want = 1;
		cv->due = fw_millis();
		if (cv->limit > 1) {
			cv->limit /= 2;
		} else {
			cv->last++;
			emit_conv(c, FW_EV_SKIPPED, cv, cv->last, NULL);
		}
	}
}

/* Handles every complete packet in rx. Returns 0 or the error that
 * dropped the connection. */
static int drain(struct fw_client *c)
{
	while (c->rx_fill > 0 && c->state != FW_ST_OFFLINE) {
		uint8_t first;
		uint32_t rl;
		size_t hl;
		int rc = fw_mqtt_header(c->rx, c->rx_fill, &first, &rl, &hl);
		if (rc == FW_ERR_SHORT)
			return FW_OK;
		if (rc)
			return drop(c, rc);
		uint32_t total = rl + (uint32_t)hl;
		if (total > c->rx_cap) {
			too_big(c, hl, total);
			return FW_OK;
		}
		if (c->rx_fill < total)
			return FW_OK;
		rc = on_packet(c, c->rx, total);
		if (c->state == FW_ST_OFFLINE)
			return rc; /* dropped inside (a send failed, or the app closed) */
		if (rc)
			return drop(c, rc);
		c->rx_fill -= total;
		memmove(c->rx, c->rx + total, c->rx_fill);
	}
	return FW_OK;
}

/* Timers of a connected client: handshake deadlines, keepalive, history. */
static int timers(struct fw_client *c, uint32_t now)
{
	if (c->state != FW_ST_ONLINE)
		return due(now, c->at) ? drop(c, FW_ERR_TIMEOUT) : FW_OK;
	if (c->ping_out && now - c->ping_at >= c->cfg.timeout_ms)
		return drop(c, FW_ERR_TIMEOUT);
	if (!c->ping_out && now - c->last_tx >= (uint32_t)c->cfg.keepalive_s * 500u) {
		uint8_t ping[2];
		c->ping_out = 1;
		c->ping_at = now;
		int rc = send_all(c, ping, fw_mqtt_pingreq(ping));
		if (rc)
			return rc;
	}
	struct fw_conv *next = NULL;
	for (size_t i = 0; i < c->nconv; i++) {
		struct fw_conv *cv = &c->convs[i];
		if (cv->req) {
			if (!due(now, cv->due))
				return FW_OK; /* one request at a time */
			cv->req = 0;          /* no answer: ask again */
			cv->want = 1;
		}
		if (cv->want && cv->known && due(now, cv->due) && !next)
			next = cv;
	}
	if (!next)
		return FW_OK;
	next->want = 0;
	next->req = c->next_req++;
	next->due = now + c->cfg.timeout_ms;
	return send_request(c, 'h', next->req, next);
}

int fw_client_step(struct fw_client *c, uint32_t wait_ms)
{
	uint32_t now = fw_millis();
	if (c->state == FW_ST_OFFLINE) {
		if (due(now, c->at))
			connect_now(c);
		return FW_OK;
	}
	uint8_t *dst = c->rx + c->rx_fill;
	size_t room = c->rx_cap - c->rx_fill;
	if (c->rx_skip) {
		dst = c->rx;
		room = c->rx_skip < c->rx_cap ? c->rx_skip : c->rx_cap;
	}
	int n = fw_net_recv(c->net, dst, room, wait_ms);
	if (n < 0)
		return drop(c, FW_ERR_NET);
	if (c->rx_skip) {
		c->rx_skip -= (uint32_t)n;
	} else if (n > 0) {
		c->rx_fill += (size_t)n;
		int rc = drain(c);
		if (rc)
			return rc;
	}
	if (c->state == FW_ST_OFFLINE)
		return FW_OK;
	return timers(c, fw_millis());
}

uint32_t fw_client_idle_ms(const struct fw_client *c)
{
	if (c->state != FW_ST_OFFLINE)
		return 0;
	uint32_t now = fw_millis();
	return due(now, c->at) ? 0 : c->at - now;
}

int fw_client_online(const struct fw_client *c)
{
	return c->state == FW_ST_ONLINE;
}

int fw_client_post(struct fw_client *c, const char *peer, const char *body, size_t len)
{
	struct fw_wr w;
	if (c->state != FW_ST_ONLINE)
		return FW_ERR_OFFLINE;
	if (c->post_out)
		return FW_ERR_BUSY;
	if (len == 0 || (peer && !fw_user_valid(peer, strlen(peer))) || (!peer && !c->cfg.room))
		return FW_ERR_INVALID;
	const char *room[] = {"chat/in/", c->cfg.user, "/room/", c->cfg.room, NULL};
	const char *dm[] = {"chat/in/", c->cfg.user, "/dm/", peer, NULL};
	uint16_t pid = new_pid(c);
	fw_mqtt_publish_begin(&w, c->tx, c->tx_cap, peer ? dm : room, 1, pid);
	if (body[0] == '{') {
		/* plain text that looks like JSON would be read as JSON */
		fw_wr_cstr(&w, "{\"body\":\"");
		fw_wr_json_esc(&w, body, len);
		fw_wr_cstr(&w, "\"}");
	} else {
		fw_wr_bytes(&w, body, len);
	}
	int rc = send_wr(c, &w, fw_mqtt_publish_flags(1));
	if (rc == FW_OK) {
		c->post_out = 1;
		c->post_pid = pid;
	}
	return rc;
}

int fw_client_set_last(struct fw_client *c, const char *conv, uint32_t seq)
{
	size_t n = strlen(conv);
	if (!fw_conv_valid(conv, n) || seq == 0)
		return FW_ERR_INVALID;
	struct fw_conv *cv = conv_get(c, conv, n);
	if (!cv)
		return FW_ERR_FULL;
	cv->known = 1;
	cv->last = seq;
	if (cv->seen < seq)
		cv->seen = seq;
	cv->want = 1;
	cv->due = fw_millis();
	return FW_OK;
}

void fw_client_close(struct fw_client *c)
{
	if (c->state == FW_ST_OFFLINE)
		return;
	uint8_t bye[2];
	fw_net_send(c->net, bye, fw_mqtt_disconnect(bye), c->cfg.timeout_ms);
	go_offline(c);
	c->at = fw_millis() + c->cfg.backoff_min_ms;
}
