/*
 * Asking Redis Sentinel for the primary (see sentinel.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sentinel.h"

/* Whether a sentinel's reply refuses our credentials (or their absence). */
static int auth_refused(const redisReply *r)
{
	return r && r->type == REDIS_REPLY_ERROR &&
	       (strncmp(r->str, "NOAUTH", 6) == 0 || strncmp(r->str, "WRONGPASS", 9) == 0 ||
	        strstr(r->str, "without any password configured") != NULL);
}

/* One sentinel: its answer for the master name, into host/port. Returns
 * 0, -1, or -2 when it refused the credentials. */
static int ask_one(const struct chat_config *cfg, const char *shost, int sport, char *host,
                   int *port, char *why, size_t whylen)
{
	struct timeval tv = {SENTINEL_ASK_MS / 1000, (SENTINEL_ASK_MS % 1000) * 1000};
	redisContext *c = redisConnectWithTimeout(shost, sport, tv);
	redisReply *r = NULL;
	int rc = -1;

	if (c == NULL || c->err) {
		snprintf(why, whylen, "%s", c ? c->errstr : "out of memory");
		goto done;
	}
	redisSetTimeout(c, tv);
	if (cfg->redis_sentinel_password) {
		r = redisCommand(c, "AUTH %s", cfg->redis_sentinel_password);
		if (r == NULL || r->type == REDIS_REPLY_ERROR) {
			snprintf(why, whylen, "AUTH: %.80s (redis_sentinel_password_file)",
			         r ? r->str : c->errstr);
			rc = auth_refused(r) ? -2 : -1;
			goto done;
		}
		freeReplyObject(r);
	}
	r = redisCommand(c, "SENTINEL get-master-addr-by-name %s", cfg->redis_master_name);
	if (r == NULL) {
		snprintf(why, whylen, "%s", c->errstr[0] ? c->errstr : "no answer");
		goto done;
	}
	if (r->type == REDIS_REPLY_ERROR) {
		snprintf(why, whylen, "%.80s%s", r->str,
		         auth_refused(r) ? " (redis_sentinel_password_file)" : "");
		rc = auth_refused(r) ? -2 : -1;
		goto done;
	}
	if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
	    r->element[0]->type != REDIS_REPLY_STRING ||
	    r->element[1]->type != REDIS_REPLY_STRING || r->element[0]->len > SENTINEL_HOST_MAX) {
		snprintf(why, whylen, "does not know the master name '%s' (redis_master_name)",
		         cfg->redis_master_name);
		goto done;
	}
	char *end;
	long p = strtol(r->element[1]->str, &end, 10);
	if (*end != '\0' || p < 1 || p > 65535) {
		snprintf(why, whylen, "answered a bad port '%.20s'", r->element[1]->str);
		goto done;
	}
	memcpy(host, r->element[0]->str, r->element[0]->len + 1);
	*port = (int)p;
	rc = 0;
done:
	freeReplyObject(r);
	if (c)
		redisFree(c);
	return rc;
}

int sentinel_primary(const struct chat_config *cfg, char *host, int *port, char *err, size_t errlen)
{
	char shost[SENTINEL_HOST_MAX + 1], why[160];
	const char *s = cfg->redis_sentinels;
	size_t used = 0;
	int refused = 0;

	err[0] = '\0';
	/* the list was checked at start (config.c): host:port,host:port */
	while (s && *s) {
		size_t w = strcspn(s, ",");
		const char *colon = s + w;
		while (colon > s && *colon != ':')
			colon--;
		size_t hl = (size_t)(colon - s);
		if (hl > SENTINEL_HOST_MAX)
			hl = SENTINEL_HOST_MAX;
		memcpy(shost, s, hl);
		shost[hl] = '\0';
		int sport = atoi(colon + 1);
		int rc = ask_one(cfg, shost, sport, host, port, why, sizeof(why));
		if (rc == 0)
			return 0;
		refused = refused || rc == -2;
		if (used < errlen) {
			int n = snprintf(err + used, errlen - used, "%ssentinel %s:%d: %s",
			                 used ? "; " : "", shost, sport, why);
			used += n > 0 ? (size_t)n : 0;
		}
		s += w;
		if (*s == ',')
			s++;
	}
	if (err[0] == '\0')
		snprintf(err, errlen, "redis_sentinels: none set");
	return refused ? -2 : -1;
}

int sentinel_is_primary(const redisReply *reply)
{
	return reply && reply->type == REDIS_REPLY_ARRAY && reply->elements >= 1 &&
	       reply->element[0]->type == REDIS_REPLY_STRING &&
	       strcmp(reply->element[0]->str, "master") == 0;
}

int sentinel_readonly(const redisReply *reply)
{
	return reply && reply->type == REDIS_REPLY_ERROR && reply->str &&
	       strncmp(reply->str, "READONLY", 8) == 0;
}
