/* Unit tests: the iat an issuer stamps after a user's revocation
 * (storage/revocation.h, revoke_next_iat), against the verifier's check
 * (core/token.c: iat <= now + leeway) and the revocation's cover
 * (iat <= before = the revoking clock's now + leeway). */
#include <stdint.h>

#include "check.h"
#include "revocation.h"

#define T 1000000 /* the moment of the revocation */
#define L 5       /* jwt_leeway */

int main(void)
{
	int64_t iat = -1;

	/* no revocation, or one in the past: now */
	CHECK_INT((int)revoke_next_iat(0, T, L, &iat), 0);
	CHECK(iat == T);
	CHECK_INT((int)revoke_next_iat(T - 1, T, L, &iat), 0);
	CHECK(iat == T);

	/* right after "sign out everywhere" (before = T + L): wait, at most
	 * 2 s; then before + 1, which the revocation does not cover and a
	 * verifier up to a second behind the issuer accepts */
	int64_t before = T + L;
	CHECK_INT((int)revoke_next_iat(before, T, L, &iat), 2);
	CHECK_INT((int)revoke_next_iat(before, T + 1, L, &iat), 1);
	for (int64_t now = T + 2; now <= before + 1; now++) {
		iat = -1;
		CHECK_INT((int)revoke_next_iat(before, now, L, &iat), 0);
		CHECK(iat == before + 1);    /* not covered */
		CHECK(iat <= (now - 1) + L); /* accepted by a clock 1 s behind */
	}
	iat = -1;
	CHECK_INT((int)revoke_next_iat(before, before + 1, L, &iat), 0);
	CHECK(iat == before + 1);

	/* a token a clock up to L ahead stamped before the revocation is
	 * covered: the revocation's before is that far ahead */
	for (int64_t ahead = 0; ahead <= L; ahead++)
		CHECK(T + ahead <= before);

	/* leeway 0 and 1: no token may be ahead; wait until now > before */
	CHECK_INT((int)revoke_next_iat(T, T, 0, &iat), 1);
	CHECK_INT((int)revoke_next_iat(T, T + 1, 0, &iat), 0);
	CHECK(iat == T + 1);
	CHECK_INT((int)revoke_next_iat(T + 1, T, 1, &iat), 2);
	CHECK_INT((int)revoke_next_iat(T + 1, T + 2, 1, &iat), 0);
	CHECK(iat == T + 2);
	return check_report();
}
