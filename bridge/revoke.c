/*
 * Revocations between Redis and the local broker's plugin (see revoke.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <hiredis/hiredis.h>

#include "bridge.h"
#include "chat/log.h"
#include "revoke.h"
#include "revocation.h"

/* Lines per snapshot page, and so per $CONTROL message (< 100 bytes each). */
#define PAGE 200

void revoke_forward(struct bridge *b, const char *line, size_t len)
{
	bridge_publish(b, CONTROL_TOPIC, line, len, 1, false, NULL);
}

static void page(struct bridge *b);

static void sync_failed(struct bridge *b)
{
	b->revoke.syncing = false; /* revoke_sync tries again on the next turn */
}

/* One page of ZRANGEBYSCORE ... WITHSCORES: lines and their until. The next
 * page starts at the last until, skipping the lines of that score this one
 * had: expiry removes only scores below it, so nothing is skipped, and a
 * line added meanwhile is at worst sent twice (applying is idempotent). */
static void on_page(redisAsyncContext *ac, void *r, void *priv)
{
	redisReply *reply = r;
	struct bridge *b = priv;
	size_t total = 0;
	(void)ac;

	if (reply == NULL || reply->type != REDIS_REPLY_ARRAY || reply->elements % 2 != 0) {
		if (reply && reply->type == REDIS_REPLY_ERROR)
			log_msg(LOG_WARN, "revocation snapshot: %s", reply->str);
		sync_failed(b);
		return;
	}
	/* a page sent to an earlier connection may be lost: start over */
	if (!b->mqtt_up || b->mqtt_connects != b->revoke.connects) {
		sync_failed(b);
		return;
	}
	for (size_t k = 0; k < reply->elements; k++) {
		if (reply->element[k]->type != REDIS_REPLY_STRING) {
			sync_failed(b);
			return;
		}
		if (k % 2 == 0)
			total += reply->element[k]->len + 1;
	}
	if (total > 0) {
		char *buf = malloc(total), *p = buf;
		if (buf == NULL) {
			sync_failed(b);
			return;
		}
		for (size_t k = 0; k < reply->elements; k += 2) {
			memcpy(p, reply->element[k]->str, reply->element[k]->len);
			p += reply->element[k]->len;
			*p++ = '\n';
		}
		revoke_forward(b, buf, total);
		free(buf);
	}
	b->revoke.sent += reply->elements / 2;
	if (reply->elements / 2 < PAGE) {
		b->revoke.syncing = false;
		b->revoke.done = b->revoke.connects;
		log_msg(LOG_INFO, "sent %zu token revocation(s) to the broker", b->revoke.sent);
		return;
	}
	const char *last = reply->element[reply->elements - 1]->str;
	if (strcmp(last, b->revoke.min) == 0) {
		b->revoke.skip += reply->elements / 2;
	} else {
		snprintf(b->revoke.min, sizeof(b->revoke.min), "%s", last);
		b->revoke.skip = 0;
		for (size_t k = reply->elements; k >= 2; k -= 2) {
			if (strcmp(reply->element[k - 1]->str, last) != 0)
				break;
			b->revoke.skip++;
		}
	}
	page(b);
}

static void page(struct bridge *b)
{
	char skip[24], count[8];
	snprintf(skip, sizeof(skip), "%zu", b->revoke.skip);
	snprintf(count, sizeof(count), "%d", PAGE);
	const char *argv[] = {"ZRANGEBYSCORE", REVOKE_SET, b->revoke.min, "+inf",
	                      "WITHSCORES",    "LIMIT",    skip,          count};
	if (!b->cmd.ready ||
	    redisAsyncCommandArgv(b->cmd.ac, on_page, b, 8, argv, NULL) != REDIS_OK)
		sync_failed(b);
}

void revoke_sync(struct bridge *b)
{
	bool due = b->revoke.done != b->mqtt_connects || b->revoke.stale;
	if (!due || b->revoke.syncing || !b->mqtt_up || !b->cmd.ready)
		return;
	b->revoke.syncing = true;
	b->revoke.stale = false;
	b->revoke.sent = 0;
	b->revoke.connects = b->mqtt_connects;
	/* entries whose until has passed no longer matter: the tokens expired */
	snprintf(b->revoke.min, sizeof(b->revoke.min), "(%lld", (long long)time(NULL));
	b->revoke.skip = 0;
	page(b);
}

int revoke_user(struct bridge *b, const char *user, int64_t now,
                void (*cb)(redisAsyncContext *, void *, void *), void *priv)
{
	char before[24], until[24], nowstr[24];
	/* every token a clock within the verifiers' leeway could have stamped
	 * by now (revocation.h): the issuers stamp later ones */
	snprintf(before, sizeof(before), "%lld", (long long)(now + b->cfg->jwt_leeway));
	snprintf(until, sizeof(until), "%lld", (long long)(now + b->cfg->revoke_user_ttl));
	snprintf(nowstr, sizeof(nowstr), "%lld", (long long)now);
	const char *argv[] = {"EVAL", revoke_lua, "0", "user", user, before, until, nowstr};
	if (!b->cmd.ready || redisAsyncCommandArgv(b->cmd.ac, cb, priv, 8, argv, NULL) != REDIS_OK)
		return -1;
	return 0;
}
