/*
 * Replica acknowledgement for posts and the feed (see commit.h).
 */
#include <stdlib.h>
#include <string.h>

#include "bridge.h"
#include "chat/log.h"
#include "commit.h"
#include "sentinel.h"

redisReply *commit_copy(const redisReply *reply)
{
	redisReply *c = calloc(1, sizeof(*c));

	if (c == NULL)
		return NULL;
	c->type = reply->type;
	c->integer = reply->integer;
	if (reply->str) {
		c->str = malloc(reply->len + 1);
		if (c->str == NULL)
			goto error;
		memcpy(c->str, reply->str, reply->len);
		c->str[reply->len] = '\0';
		c->len = reply->len;
	}
	if (reply->type == REDIS_REPLY_ARRAY && reply->elements > 0) {
		c->element = calloc(reply->elements, sizeof(*c->element));
		if (c->element == NULL)
			goto error;
		c->elements = reply->elements;
		for (size_t i = 0; i < reply->elements; i++)
			if ((c->element[i] = commit_copy(reply->element[i])) == NULL)
				goto error;
	}
	return c;
error:
	freeReplyObject(c);
	return NULL;
}

bool commit_replicated(const struct bridge *b, const redisReply *reply)
{
	return reply && reply->type == REDIS_REPLY_INTEGER &&
	       reply->integer >= b->cfg->redis_wait_replicas;
}

struct feed_hold {
	struct bridge *b;
	redisReply *held;
	bool fence_ok;
	bool paused; /* the fence failed: the bounded pause is out */
	void (*done)(struct bridge *b, redisReply *held, bool committed);
};

static void hold_finish(struct feed_hold *h, bool committed)
{
	h->done(h->b, h->held, committed);
	freeReplyObject(h->held);
	free(h);
}

static void on_fence(redisAsyncContext *ac, void *r, void *priv)
{
	redisReply *reply = r;
	struct feed_hold *h = priv;

	h->fence_ok = reply && reply->type == REDIS_REPLY_STATUS;
	if (reply && reply->type == REDIS_REPLY_ERROR) {
		log_msg(LOG_WARN, "feed: fence write: %s", reply->str);
		if (sentinel_readonly(reply))
			redisAsyncDisconnect(ac); /* a demoted primary: ask the sentinels again */
	}
}

static void on_fence_wait(redisAsyncContext *ac, void *r, void *priv)
{
	redisReply *reply = r;
	struct feed_hold *h = priv;
	struct bridge *b = h->b;

	if (reply == NULL) {
		hold_finish(h, false); /* link lost: read again from the cursor later */
		return;
	}
	if (h->paused || (h->fence_ok && commit_replicated(b, reply))) {
		hold_finish(h, !h->paused && h->fence_ok);
		return;
	}
	if (h->fence_ok) {
		log_msg(LOG_WARN, "feed: %lld of %ld replica(s) acknowledged: delivery waits",
		        reply->type == REDIS_REPLY_INTEGER ? reply->integer : -1LL,
		        b->cfg->redis_wait_replicas);
		hold_finish(h, false); /* WAIT took its time already: read again */
		return;
	}
	/* The fence was refused (NOREPLICAS: too few replicas): a WAIT for
	 * more replicas than can exist returns after its timeout, a bounded
	 * pause on this link before the feed reads again. */
	h->paused = true;
	if (redisAsyncCommand(ac, on_fence_wait, h, "WAIT 1000000 %ld", b->cfg->redis_wait_ms) !=
	    REDIS_OK)
		hold_finish(h, false);
}

int commit_feed(struct bridge *b, const redisReply *reply, const char *last_id,
                void (*done)(struct bridge *b, redisReply *held, bool committed))
{
	struct feed_hold *h = calloc(1, sizeof(*h));

	if (h == NULL || (h->held = commit_copy(reply)) == NULL) {
		free(h);
		return -1;
	}
	h->b = b;
	h->done = done;
	/* pipelined: the SET runs after the XREAD, the WAIT after the SET */
	if (redisAsyncCommand(b->feed.ac, on_fence, h, "SET chat:fence:%s %s", b->cfg->node_name,
	                      last_id) != REDIS_OK) {
		freeReplyObject(h->held);
		free(h);
		return -1;
	}
	if (redisAsyncCommand(b->feed.ac, on_fence_wait, h, "WAIT %ld %ld",
	                      b->cfg->redis_wait_replicas, b->cfg->redis_wait_ms) != REDIS_OK) {
		/* the link is going: on_fence gets NULL; finish here */
		hold_finish(h, false);
	}
	return 0;
}

int commit_post_wait(struct bridge *b, redisCallbackFn *cb, void *priv)
{
	return redisAsyncCommand(b->cmd.ac, cb, priv, "WAIT %ld %ld", b->cfg->redis_wait_replicas,
	                         b->cfg->redis_wait_ms);
}

struct change_wait {
	struct bridge *b;
	void (*done)(struct bridge *b, bool replicated, void *priv);
	void *priv;
};

/* The fence's answer needs no state: a refused fence (READONLY,
 * NOREPLICAS) means too few replicas, which the WAIT after it reports. */
static void on_change_fence(redisAsyncContext *ac, void *r, void *priv)
{
	redisReply *reply = r;
	(void)priv;

	if (reply && reply->type == REDIS_REPLY_ERROR) {
		log_msg(LOG_WARN, "request: fence write: %s", reply->str);
		if (sentinel_readonly(reply))
			redisAsyncDisconnect(ac); /* a demoted primary: ask the sentinels again */
	}
}

static void on_change_wait(redisAsyncContext *ac, void *r, void *priv)
{
	struct change_wait *w = priv;
	bool ok = commit_replicated(w->b, r);
	(void)ac;

	if (r && !ok)
		log_msg(LOG_WARN, "request: too few replicas acknowledged a change: answered unavailable");
	w->done(w->b, ok, w->priv);
	free(w);
}

int commit_change(struct bridge *b, void (*done)(struct bridge *b, bool replicated, void *priv),
                  void *priv)
{
	struct change_wait *w = calloc(1, sizeof(*w));

	if (w == NULL || !b->cmd.ready) {
		free(w);
		return -1;
	}
	w->b = b;
	w->done = done;
	w->priv = priv;
	/* pipelined after the request's script on the same link: WAIT covers
	 * it, and the fence makes sure this link wrote something WAIT can
	 * count even when the script changed nothing (a repeated join) */
	if (redisAsyncCommand(b->cmd.ac, on_change_fence, NULL, "SET chat:fence:%s:changes 1",
	                      b->cfg->node_name) != REDIS_OK) {
		free(w);
		return -1;
	}
	if (redisAsyncCommand(b->cmd.ac, on_change_wait, w, "WAIT %ld %ld",
	                      b->cfg->redis_wait_replicas, b->cfg->redis_wait_ms) != REDIS_OK) {
		free(w);
		return -1;
	}
	return 0;
}
