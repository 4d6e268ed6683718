/* Unit tests: the bridge's bounded control messages (bridge/acl_batch.h):
 * no message over the bound, nothing cut, a long member list split into
 * lines that each repeat their head. */
#include <stdio.h>
#include <stdlib.h>

#include "acl_batch.h"
#include "check.h"

struct sink {
	char all[1 << 16]; /* every message, one after the other */
	size_t len, n, largest;
};

static void keep(void *ctx, const char *msg, size_t len)
{
	struct sink *s = ctx;
	if (s->len + len <= sizeof(s->all)) {
		memcpy(s->all + s->len, msg, len);
		s->len += len;
	}
	s->n++;
	if (len > s->largest)
		s->largest = len;
}

static void lines(void)
{
	static struct sink s;
	struct acl_batch o;
	CHECK_INT(acl_batch_init(&o, 32, keep, &s), ACL_BATCH_OK);
	CHECK_INT(acl_batch_line(&o, "room a 1 private x", 18), ACL_BATCH_OK);
	CHECK_INT(s.n, 0); /* gathered, not sent yet */
	CHECK_INT(acl_batch_line(&o, "room b 1 private y", 18), ACL_BATCH_OK);
	CHECK_INT(s.n, 1); /* the second would not fit with the first */
	/* a line of exactly max - 1 bytes fits alone; one of max does not */
	char big[40];
	memset(big, 'z', sizeof(big));
	CHECK_INT(acl_batch_line(&o, big, 31), ACL_BATCH_OK);
	CHECK_INT(acl_batch_line(&o, big, 32), ACL_BATCH_E_TOO_LONG);
	acl_batch_flush(&o);
	acl_batch_flush(&o); /* nothing gathered: nothing sent */
	CHECK_INT(s.n, 3);
	CHECK(s.largest <= 32);
	CHECK_INT(s.len, 19 + 19 + 32);
	CHECK(memcmp(s.all, "room a 1 private x\nroom b 1 private y\n", 38) == 0);
	acl_batch_free(&o);
}

static void words(void)
{
	static struct sink s;
	struct acl_batch o;
	const char *w[300];
	size_t lens[300];
	char names[300][8];
	for (int i = 0; i < 300; i++) {
		lens[i] = (size_t)snprintf(names[i], sizeof(names[i]), "u%d", i);
		w[i] = names[i];
	}
	CHECK_INT(acl_batch_init(&o, 100, keep, &s), ACL_BATCH_OK);
	CHECK_INT(acl_batch_words(&o, "part big 7", 10, w, lens, 300), ACL_BATCH_OK);
	acl_batch_flush(&o);
	CHECK(s.n > 10);
	CHECK(s.largest <= 100);
	/* every word once, in order, each line starting with the head */
	s.all[s.len] = '\0';
	int next = 0;
	for (char *line = strtok(s.all, "\n"); line; line = strtok(NULL, "\n")) {
		CHECK(strncmp(line, "part big 7 ", 11) == 0);
		char *save = NULL;
		for (char *word = strtok_r(line + 11, " ", &save); word;
		     word = strtok_r(NULL, " ", &save)) {
			char want[16];
			snprintf(want, sizeof(want), "u%d", next++);
			CHECK_STR(word, want);
		}
	}
	CHECK_INT(next, 300);
	/* a word that cannot fit beside the head is refused, not cut */
	const char *huge[] = {"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	                      "aaaaaaaaaaaaaaaaaaaaaaa"};
	size_t hl[] = {strlen(huge[0])};
	CHECK_INT(acl_batch_words(&o, "part big 7", 10, huge, hl, 1), ACL_BATCH_E_TOO_LONG);
	acl_batch_free(&o);
}

int main(void)
{
	lines();
	words();
	return check_report();
}
