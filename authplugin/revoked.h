/*
 * The plugin's copy of token revocations (shared/PROTOCOL.md section 2),
 * answered from memory at CONNECT and on the tick that cuts revoked
 * connections. The bridge keeps it current on $CONTROL/chat/v1, one line
 * per entry (the lines of storage/revocation.h):
 *
 *     revoke jti <jti> 0 <until>           the token with that jti
 *     revoke user <user> <before> <until>  every token of user with iat <= before
 *
 * until is when the entry stops mattering (the token's exp, or before plus
 * the longest token lifetime); entries past it are pruned. Applying a line
 * twice, or an older one after a newer, changes nothing: before and until
 * only grow. Pure state, no I/O; the caller passes the time.
 */
#ifndef CHAT_REVOKED_H
#define CHAT_REVOKED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "names_table.h"

struct revoked_table {
	struct names_table names; /* of struct revoked_entry */
	uint64_t generation; /* grows whenever an entry is added or widened */
};

int revoked_init(struct revoked_table *t);
void revoked_free(struct revoked_table *t);

/* Whether payload (len bytes, not NUL-terminated) is revocation lines
 * (starts with "revoke "), not room states. */
bool revoked_is_ours(const char *payload, size_t len);

/* Applies every line of payload. Returns the number of lines applied, or
 * -1 at the first malformed line (or out of memory): lines before it stay
 * applied, nothing of it or after it is. */
int revoked_apply(struct revoked_table *t, const char *payload, size_t len);

/* Whether a token of user with jti ("" for none) and iat is revoked at now. */
bool revoked_match(const struct revoked_table *t, const char *user, const char *jti, int64_t iat,
                   int64_t now);

/* Drops entries whose until <= now. Returns how many. */
size_t revoked_prune(struct revoked_table *t, int64_t now);

#endif
