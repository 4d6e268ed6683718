/* Unit tests: the plugin's revocation table and its control lines. */
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "revoked.h"

#define S(x) x, sizeof(x) - 1

int main(void)
{
	struct revoked_table t;

	CHECK_INT(revoked_init(&t), 0);
	CHECK(!revoked_match(&t, "alice", "j1", 100, 50));
	CHECK(revoked_is_ours(S("revoke jti a 0 1")));
	CHECK(!revoked_is_ours(S("room a 1 public")));

	/* one token by its jti, until its exp */
	CHECK_INT(revoked_apply(&t, S("revoke jti j1 0 1000")), 1);
	uint64_t g = t.generation;
	CHECK(revoked_match(&t, "alice", "j1", 100, 50));
	CHECK(!revoked_match(&t, "alice", "j2", 100, 50));
	CHECK(!revoked_match(&t, "alice", "", 100, 50));
	CHECK(!revoked_match(&t, "alice", "j1", 100, 1000)); /* expired with the token */

	/* every token of a user issued up to before; none without iat escapes */
	CHECK_INT(revoked_apply(&t, S("revoke user bob 500 5000\n\nrevoke jti j3 0 900\n")), 2);
	CHECK(t.generation > g);
	CHECK(revoked_match(&t, "bob", "", 500, 600));
	CHECK(revoked_match(&t, "bob", "", 0, 600));
	CHECK(!revoked_match(&t, "bob", "", 501, 600));
	CHECK(!revoked_match(&t, "bobby", "", 0, 600));

	/* the same line again changes nothing; an older one does not move back */
	g = t.generation;
	CHECK_INT(revoked_apply(&t, S("revoke user bob 500 5000")), 1);
	CHECK_INT(revoked_apply(&t, S("revoke user bob 400 4000")), 1);
	CHECK(t.generation == g);
	CHECK(revoked_match(&t, "bob", "", 450, 600));
	CHECK_INT(revoked_apply(&t, S("revoke user bob 700 6000")), 1);
	CHECK(t.generation > g);
	CHECK(revoked_match(&t, "bob", "", 650, 600));

	/* malformed lines: refused from the bad one on */
	const char *bad[] = {"revoke",
	                     "revoke jti",
	                     "revoke jti a 0",
	                     "revoke jti a 0 x",
	                     "revoke jti a b 0 1",
	                     "revoke user Bob 1 2",
	                     "revoke user bob 1 2 ",
	                     "revoke who bob 1 2",
	                     "revoke jti a.b 0 1",
	                     "revoke  jti a 0 1",
	                     "revoke jti a 0 1234567890123456789"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		CHECK_INT(revoked_apply(&t, bad[i], strlen(bad[i])), -1);
	CHECK_INT(revoked_apply(
	              &t, S("revoke jti ok1 0 100\nrevoke jti bad.1 0 100\nrevoke jti ok2 0 100")),
	          -1);
	CHECK(revoked_match(&t, "x", "ok1", 0, 50));
	CHECK(!revoked_match(&t, "x", "ok2", 0, 50));

	/* many entries (the table grows), then the expired ones are pruned */
	char line[64];
	for (int i = 0; i < 2000; i++) {
		int n =
		    snprintf(line, sizeof(line), "revoke jti k%d 0 %d", i, i < 1000 ? 10 : 100000);
		CHECK_INT(revoked_apply(&t, line, (size_t)n), 1);
	}
	CHECK(revoked_match(&t, "x", "k1500", 0, 20));
	size_t before = t.names.count;
	CHECK(revoked_prune(&t, 20) >= 1000);
	CHECK(t.names.count <= before - 1000);
	CHECK(!revoked_match(&t, "x", "k5", 0, 5)); /* pruned */
	CHECK(revoked_match(&t, "x", "k1999", 0, 20));
	CHECK(revoked_match(&t, "bob", "", 0, 600));

	revoked_free(&t);
	return check_report();
}
