/*
 * Token revocations in memory (see revoked.h): a names_table keyed by
 * kind and name.
 */
#include <stdlib.h>
#include <string.h>

#include "chat/names.h"
#include "chat/token.h"
#include "names_table.h"
#include "revoked.h"

enum kind { KIND_JTI = 'j', KIND_USER = 'u' };

struct revoked_entry {
	struct name_node node; /* first: the table's node is the entry */
	char key[1 + TOKEN_JTI_MAX]; /* the kind, then a jti or a user id */
	int64_t before, until;
};

int revoked_init(struct revoked_table *t)
{
	t->generation = 0;
	return names_init(&t->names);
}

static void node_free(struct name_node *n)
{
	free(n);
}

void revoked_free(struct revoked_table *t)
{
	names_free(&t->names, node_free);
	t->generation = 0;
}

bool revoked_is_ours(const char *payload, size_t len)
{
	return len >= 7 && memcmp(payload, "revoke ", 7) == 0;
}

/* Sets e's key to kind and name (n <= TOKEN_JTI_MAX). */
static void set_key(struct revoked_entry *e, enum kind k, const char *name, size_t n)
{
	e->key[0] = (char)k;
	memcpy(e->key + 1, name, n);
	e->node.key = e->key;
	e->node.key_len = n + 1;
}

static struct revoked_entry *find(const struct revoked_table *t, enum kind k, const char *name,
                                  size_t n)
{
	struct revoked_entry probe;
	if (n > TOKEN_JTI_MAX)
		return NULL;
	set_key(&probe, k, name, n);
	return (struct revoked_entry *)names_find(&t->names, probe.key, probe.node.key_len);
}

/* A decimal number of 1 to 18 digits (the payload is not NUL-terminated). */
static bool number(const char *w, size_t n, int64_t *out)
{
	int64_t v = 0;
	if (n == 0 || n > 18)
		return false;
	for (size_t i = 0; i < n; i++) {
		if (w[i] < '0' || w[i] > '9')
			return false;
		v = v * 10 + (w[i] - '0');
	}
	*out = v;
	return true;
}

/* Parses one line into e. Returns false when malformed. */
static bool parse_line(const char *p, const char *end, struct revoked_entry *e)
{
	const char *w;
	size_t n;

	memset(e, 0, sizeof(*e));
	if (end[-1] == ' ')
		return false;
	if (!ctl_word(&p, end, &w, &n) || n != 6 || memcmp(w, "revoke", 6) != 0)
		return false;
	if (!ctl_word(&p, end, &w, &n))
		return false;
	enum kind k;
	if (n == 3 && memcmp(w, "jti", 3) == 0)
		k = KIND_JTI;
	else if (n == 4 && memcmp(w, "user", 4) == 0)
		k = KIND_USER;
	else
		return false;
	if (!ctl_word(&p, end, &w, &n))
		return false;
	if (k == KIND_JTI ? !token_jti_valid(w, n) : !name_user_valid(w, n))
		return false;
	set_key(e, k, w, n);
	if (!ctl_word(&p, end, &w, &n) || !number(w, n, &e->before))
		return false;
	if (!ctl_word(&p, end, &w, &n) || !number(w, n, &e->until))
		return false;
	return p == end;
}

/* Adds e, or widens the entry it names. Returns -1 when out of memory. */
static int install(struct revoked_table *t, const struct revoked_entry *e)
{
	struct revoked_entry *have =
	        (struct revoked_entry *)names_find(&t->names, e->key, e->node.key_len);
	if (have) {
		if (e->before > have->before || e->until > have->until)
			t->generation++;
		if (e->before > have->before)
			have->before = e->before;
		if (e->until > have->until)
			have->until = e->until;
		return 0;
	}
	struct revoked_entry *n = malloc(sizeof(*n));
	if (n == NULL)
		return -1;
	*n = *e;
	n->node.key = n->key; /* the copy's own key */
	names_insert(&t->names, &n->node);
	t->generation++;
	return 0;
}

static bool apply_line(const char *p, const char *end, void *t)
{
	struct revoked_entry e;
	return parse_line(p, end, &e) && install(t, &e) == 0;
}

int revoked_apply(struct revoked_table *t, const char *payload, size_t len)
{
	return ctl_lines(payload, len, apply_line, t);
}

bool revoked_match(const struct revoked_table *t, const char *user, const char *jti, int64_t iat,
                   int64_t now)
{
	const struct revoked_entry *e = find(t, KIND_USER, user, strlen(user));
	if (e && e->until > now && iat <= e->before)
		return true;
	size_t n = strlen(jti);
	if (n == 0)
		return false;
	e = find(t, KIND_JTI, jti, n);
	return e && e->until > now;
}

static void drop(struct name_node *n, void *ctx)
{
	(void)ctx;
	free(n);
}

static bool expired(const struct name_node *n, void *now)
{
	return ((const struct revoked_entry *)n)->until <= *(int64_t *)now;
}

size_t revoked_prune(struct revoked_table *t, int64_t now)
{
	return names_remove_if(&t->names, expired, drop, &now);
}
