/* Unit tests: what a departed client's Will may do (will.h), judged by the
 * token its session connected with (sessions.h), and the per-user CONNECT
 * budget (connrate.h). */
#include <string.h>

#include "check.h"
#include "connrate.h"
#include "revoked.h"
#include "sessions.h"
#include "will.h"

#define S(x) x, sizeof(x) - 1

static void wills(void)
{
	struct session_table t;
	struct revoked_table r;
	int conn;

	CHECK_INT(sessions_init(&t), SESSIONS_OK);
	CHECK_INT(revoked_init(&r), 0);
	CHECK_INT(sessions_connect(&t, "eve:w", "eve", ROLE_USER, 1000, &conn, true, 8),
	          SESSIONS_OK);
	sessions_set_token(&t, "eve:w", "jti-1", 100);
	sessions_set_token(&t, "nobody:x", "jti-9", 1); /* no such session: nothing */
	CHECK(sessions_find(&t, "nobody:x") == NULL);
	sessions_disconnect(&t, "eve:w", &conn, 200);
	const struct session *s = sessions_find(&t, "eve:w");
	CHECK(s != NULL);
	CHECK_STR(s->jti, "jti-1");
	CHECK_INT(s->iat, 100);

	/* posts only: a room message or a DM of its own user */
	CHECK_INT(will_judge("chat", "eve", "chat/in/eve/room/general", s, &r, 300), WILL_OK);
	CHECK_INT(will_judge("chat", "eve", "chat/in/eve/dm/bob", s, &r, 300), WILL_OK);
	CHECK_INT(will_judge("chat", "eve", "chat/in/eve/rpc", s, &r, 300), WILL_E_NOT_A_POST);
	CHECK_INT(will_judge("chat", "eve", "chat/in/eve/typing/room/general", s, &r, 300),
	          WILL_E_NOT_A_POST);
	CHECK_INT(will_judge("chat", "eve", "chat/in/eve/typing/dm/bob", s, &r, 300),
	          WILL_E_NOT_A_POST);
	CHECK_INT(will_judge("chat", "eve", "chat/in/eve/other", s, &r, 300), WILL_E_NOT_A_POST);
	CHECK_INT(will_judge("chat", "eve", "chat/in/eve/room/Bad!", s, &r, 300),
	          WILL_E_NOT_A_POST);
	CHECK_INT(will_judge("chat", "eve", "chat/in/bob/room/general", s, &r, 300),
	          WILL_E_NOT_A_POST);
	CHECK_INT(will_judge("chat", "eve", "chat/presence/eve", s, &r, 300), WILL_E_NOT_A_POST);
	CHECK_INT(will_judge("chat", "eve", "chat/in/eve/rpc", NULL, &r, 300), WILL_E_NOT_A_POST);

	/* while its token is valid */
	CHECK_INT(will_judge("chat", "eve", "chat/in/eve/room/general", s, &r, 1000),
	          WILL_E_EXPIRED);
	CHECK_INT(will_judge("chat", "eve", "chat/in/eve/room/general", NULL, &r, 300),
	          WILL_E_EXPIRED);
	CHECK_INT(will_judge("chat", "bob", "chat/in/bob/room/general", s, &r, 300),
	          WILL_E_EXPIRED); /* another user's session is no token of bob's */

	/* and not revoked: by its jti, or every token of eve up to its iat */
	CHECK_INT(revoked_apply(&r, S("revoke jti jti-2 0 5000")), 1);
	CHECK_INT(will_judge("chat", "eve", "chat/in/eve/room/general", s, &r, 300), WILL_OK);
	CHECK_INT(revoked_apply(&r, S("revoke jti jti-1 0 5000")), 1);
	CHECK_INT(will_judge("chat", "eve", "chat/in/eve/room/general", s, &r, 300),
	          WILL_E_REVOKED);
	revoked_free(&r);
	CHECK_INT(revoked_init(&r), 0);
	CHECK_INT(revoked_apply(&r, S("revoke user eve 99 5000")), 1);
	CHECK_INT(will_judge("chat", "eve", "chat/in/eve/room/general", s, &r, 300), WILL_OK);
	CHECK_INT(revoked_apply(&r, S("revoke user eve 100 5000")), 1);
	CHECK_INT(will_judge("chat", "eve", "chat/in/eve/dm/bob", s, &r, 300), WILL_E_REVOKED);

	/* a reconnect with another token forgets the old one's jti */
	CHECK_INT(sessions_connect(&t, "eve:w", "eve", ROLE_USER, 2000, &conn, true, 8),
	          SESSIONS_OK);
	CHECK_STR(sessions_find(&t, "eve:w")->jti, "");
	CHECK_INT(sessions_find(&t, "eve:w")->iat, 0);
	CHECK(strlen(will_strerror(WILL_E_NOT_A_POST)) > 0);
	revoked_free(&r);
	sessions_free(&t);
}

static void connect_budget(void)
{
	struct connrate_table t;

	/* a burst of 3, then one a second (60 a minute) */
	CHECK_INT(connrate_init(&t, 3, 60), 0);
	CHECK(connrate_take(&t, "eve", 1000));
	CHECK(connrate_take(&t, "eve", 1000));
	CHECK(connrate_take(&t, "eve", 1000));
	CHECK(!connrate_take(&t, "eve", 1000));
	CHECK(!connrate_take(&t, "eve", 1999));
	CHECK(connrate_take(&t, "bob", 1999)); /* one user's budget is not another's */
	CHECK(connrate_take(&t, "eve", 2000));
	CHECK(!connrate_take(&t, "eve", 2000));
	/* a refused attempt spends nothing */
	CHECK(connrate_take(&t, "eve", 3000));
	/* idle buckets are forgotten once full again, live ones kept */
	CHECK_INT(connrate_count(&t), 2);
	CHECK_INT(connrate_prune(&t, 2998), 0);
	CHECK_INT(connrate_prune(&t, 2999), 1); /* bob: 2 left at 1999, full 1 s later */
	CHECK_INT(connrate_count(&t), 1);
	CHECK_INT(connrate_prune(&t, 5999), 0);
	CHECK_INT(connrate_prune(&t, 6000), 1); /* eve: empty at 3000, full 3 s later */
	CHECK_INT(connrate_count(&t), 0);
	/* a forgotten user starts full */
	CHECK(connrate_take(&t, "eve", 6000));
	CHECK(connrate_take(&t, "eve", 6000));
	CHECK(connrate_take(&t, "eve", 6000));
	CHECK(!connrate_take(&t, "eve", 6000));
	/* no name longer than a user id */
	CHECK(!connrate_take(&t, "a-name-far-longer-than-any-user-id-can-be", 6000));
	/* a clock that steps back refills nothing */
	CHECK(!connrate_take(&t, "eve", 5000));
	connrate_free(&t);
}

int main(void)
{
	wills();
	connect_budget();
	return check_report();
}
