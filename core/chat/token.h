/*
 * Tokens are JWTs (shared/PROTOCOL.md section 2). A keyring holds the one
 * algorithm the deployment accepts and its keys; verification refuses any
 * other algorithm, "none" included, whatever the token's header says.
 */
#ifndef CHAT_TOKEN_H
#define CHAT_TOKEN_H

#include <stddef.h>
#include <stdint.h>

#include "chat/config.h"

enum token_alg { TOKEN_ALG_HS256, TOKEN_ALG_RS256, TOKEN_ALG_ES256 };
enum token_role { ROLE_USER = 0, ROLE_SERVICE, ROLE_ADMIN };

enum token_err {
	TOKEN_OK = 0,
	TOKEN_E_MISSING = -1,
	TOKEN_E_TOO_LARGE = -2,
	TOKEN_E_MALFORMED = -3,
	TOKEN_E_SIGNATURE = -4,
	TOKEN_E_ALG = -5,
	TOKEN_E_EXPIRED = -6,
	TOKEN_E_NOT_YET_VALID = -7,
	TOKEN_E_ISSUER = -8,
	TOKEN_E_AUDIENCE = -9,
	TOKEN_E_SUBJECT = -10,
	TOKEN_E_CLAIMS = -11,
	TOKEN_E_KEY = -12,
	TOKEN_E_NOMEM = -13,
	TOKEN_E_CRIT = -14, /* a "crit" header: no extension is understood */
};

struct token_keyring {
	enum token_alg alg;
	unsigned char *verify_key; /* secret or PEM public key */
	size_t verify_len;
	unsigned char *sign_key; /* secret or PEM private key; may be NULL */
	size_t sign_len;
	char *issuer;   /* NULL: not checked */
	char *audience; /* NULL: not checked */
	long leeway;
	size_t max_bytes;
};

/* A jti is at most this long and only [A-Za-z0-9_-]: it travels in the
 * space-separated revocation lines (authplugin/revoked.h). */
#define TOKEN_JTI_MAX 64

struct token_claims {
	char sub[33]; /* a valid user id */
	enum token_role role;
	int64_t exp;
	int64_t iat;                 /* 0 when absent (counts as issued at 0) */
	char jti[TOKEN_JTI_MAX + 1]; /* "" when absent */
};

/* Whether s (n bytes) is a jti this project accepts. */
int token_jti_valid(const char *s, size_t n);

/* Builds a keyring from the settings. On failure err says which key is
 * wrong and kr holds nothing to free. */
int token_keyring_load(struct token_keyring *kr, const struct chat_config *cfg,
                       char *err, size_t errlen);
void token_keyring_free(struct token_keyring *kr);

/* Verifies token (len bytes, not NUL-terminated) at time now (seconds).
 * Only the keyring's algorithm is accepted; sub must be a valid user id;
 * exp is required and strict; nbf and iat allow the keyring's leeway.
 * Fills out only on TOKEN_OK. */
int token_verify(const struct token_keyring *kr, const char *token, size_t len,
                 int64_t now, struct token_claims *out);

/* Mints a token for sub valid for ttl seconds from now, with iat = now and
 * a random jti (so it can be revoked alone). *out is malloc'd
 * (free()). Needs the signing key for RS256/ES256. */
int token_mint(const struct token_keyring *kr, const char *sub,
               enum token_role role, int64_t now, int64_t ttl, char **out);

/* token_mint with an iat other than now (exp is still now + ttl): an
 * issuer stamps a token later than a revocation that covers now
 * (storage/revocation.h, revoke_next_iat). */
int token_mint_iat(const struct token_keyring *kr, const char *sub, enum token_role role,
                   int64_t now, int64_t iat, int64_t ttl, char **out);

int token_role_parse(const char *s, enum token_role *out);
const char *token_role_name(enum token_role role);
const char *token_strerror(int err);

#endif
