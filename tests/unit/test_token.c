/*
 * Unit tests: token verification. Tokens with arbitrary claims are built
 * with libjwt directly so each rule can be broken on its own.
 */
#include <stdlib.h>

#include <jwt.h>

#include "chat/token.h"
#include "check.h"

#define NOW 1800000000LL
static const char secret[] = "0123456789abcdef0123456789abcdef";

/* Signs claims (JSON) with alg and key; returns a malloc'd token. */
static char *make(const char *claims, jwt_alg_t alg, const char *key)
{
	jwt_t *jwt = NULL;
	jwt_new(&jwt);
	jwt_add_grants_json(jwt, claims);
	jwt_set_alg(jwt, alg, (const unsigned char *)key, key ? (int)strlen(key) : 0);
	char *t = jwt_encode_str(jwt);
	jwt_free(jwt);
	return t;
}

/* A valid HS256 token for "alice" with extra header fields (JSON). */
static char *make_with_header(const char *headers)
{
	jwt_t *jwt = NULL;
	jwt_new(&jwt);
	jwt_add_grants_json(jwt, "{\"sub\":\"alice\",\"exp\":1800000100}");
	jwt_add_headers_json(jwt, headers);
	jwt_set_alg(jwt, JWT_ALG_HS256, (const unsigned char *)secret, (int)strlen(secret));
	char *t = jwt_encode_str(jwt);
	jwt_free(jwt);
	return t;
}

static int verify(const struct token_keyring *kr, const char *tok, struct token_claims *c)
{
	return token_verify(kr, tok, strlen(tok), NOW, c);
}

static int check_claims(const struct token_keyring *kr, const char *claims)
{
	struct token_claims c;
	char *t = make(claims, JWT_ALG_HS256, secret);
	int rc = verify(kr, t, &c);
	free(t);
	return rc;
}

int main(void)
{
	struct chat_config cfg;
	struct token_keyring kr;
	struct token_claims c;
	char err[256], *tok;

	config_init(&cfg);
	config_set(&cfg, "jwt_key", secret, err, sizeof(err));
	CHECK_INT(token_keyring_load(&kr, &cfg, err, sizeof(err)), TOKEN_OK);

	/* round trip through token_mint */
	CHECK_INT(token_mint(&kr, "alice", ROLE_USER, NOW, 3600, &tok), TOKEN_OK);
	CHECK_INT(verify(&kr, tok, &c), TOKEN_OK);
	CHECK_STR(c.sub, "alice");
	CHECK_INT(c.role, ROLE_USER);
	CHECK_INT(c.exp, NOW + 3600);
	/* every minted token can be revoked alone: a random jti, and iat */
	CHECK_INT(c.iat, NOW);
	CHECK_INT((long)strlen(c.jti), 32);
	char first_jti[TOKEN_JTI_MAX + 1];
	strcpy(first_jti, c.jti);
	CHECK_INT(token_verify(&kr, tok, strlen(tok), NOW + 3600, &c), TOKEN_E_EXPIRED);
	free(tok);
	CHECK_INT(token_mint(&kr, "alice", ROLE_USER, NOW, 3600, &tok), TOKEN_OK);
	CHECK_INT(verify(&kr, tok, &c), TOKEN_OK);
	CHECK(strcmp(c.jti, first_jti) != 0);
	/* a jti is refused, never cut, when it could not travel in a
	 * revocation line; a token without one has jti "" and iat 0 */
	CHECK_INT(check_claims(&kr, "{\"sub\":\"a\",\"exp\":2000000000,\"jti\":\"a b\"}"),
	          TOKEN_E_CLAIMS);
	CHECK_INT(check_claims(&kr, "{\"sub\":\"a\",\"exp\":2000000000,\"jti\":7}"),
	          TOKEN_E_CLAIMS);
	CHECK_INT(check_claims(&kr, "{\"sub\":\"a\",\"exp\":2000000000,\"jti\":\"\"}"),
	          TOKEN_E_CLAIMS);
	free(tok);
	tok = make("{\"sub\":\"a\",\"exp\":2000000000}", JWT_ALG_HS256, secret);
	CHECK_INT(verify(&kr, tok, &c), TOKEN_OK);
	CHECK_STR(c.jti, "");
	CHECK_INT(c.iat, 0);
	/* a "crit" header names extensions we must understand: we know none */
	free(tok);
	tok = make_with_header("{\"crit\":[\"exp-ext\"],\"exp-ext\":1}");
	CHECK(tok != NULL);
	CHECK_INT(verify(&kr, tok, &c), TOKEN_E_CRIT);
	free(tok);
	tok = make_with_header("{\"crit\":[]}");
	CHECK_INT(verify(&kr, tok, &c), TOKEN_E_CRIT);
	free(tok);
	tok = make_with_header("{\"kid\":\"k1\"}");
	CHECK_INT(verify(&kr, tok, &c), TOKEN_OK);
	free(tok);
	CHECK_INT(token_mint(&kr, "alice", ROLE_USER, NOW, 3600, &tok), TOKEN_OK);
	/* truncated and tampered */
	CHECK_INT(token_verify(&kr, tok, strlen(tok) - 3, NOW, &c), TOKEN_E_SIGNATURE);
	tok[strlen(tok) - 2] ^= 1;
	CHECK_INT(verify(&kr, tok, &c), TOKEN_E_SIGNATURE);
	free(tok);
	CHECK_INT(token_mint(&kr, "bob", ROLE_SERVICE, NOW, 60, &tok), TOKEN_OK);
	CHECK_INT(verify(&kr, tok, &c), TOKEN_OK);
	CHECK_INT(c.role, ROLE_SERVICE);
	free(tok);
	CHECK_INT(token_mint(&kr, "Not Valid", ROLE_USER, NOW, 60, &tok), TOKEN_E_SUBJECT);

	/* claims */
	CHECK_INT(check_claims(&kr, "{\"sub\":\"al\",\"exp\":1800000100}"), TOKEN_OK);
	CHECK_INT(check_claims(&kr, "{\"sub\":\"al\"}"), TOKEN_E_CLAIMS);
	CHECK_INT(check_claims(&kr, "{\"sub\":\"al\",\"exp\":\"1800000100\"}"), TOKEN_E_CLAIMS);
	CHECK_INT(check_claims(&kr, "{\"sub\":\"al\",\"exp\":1800000100.5}"), TOKEN_E_CLAIMS);
	CHECK_INT(check_claims(&kr, "{\"exp\":1800000100}"), TOKEN_E_SUBJECT);
	CHECK_INT(check_claims(&kr, "{\"sub\":\"Al!\",\"exp\":1800000100}"), TOKEN_E_SUBJECT);
	CHECK_INT(check_claims(&kr, "{\"sub\":7,\"exp\":1800000100}"), TOKEN_E_SUBJECT);
	CHECK_INT(check_claims(&kr, "{\"sub\":\"al\",\"exp\":1799999999}"), TOKEN_E_EXPIRED);
	CHECK_INT(check_claims(&kr, "{\"sub\":\"al\",\"exp\":1800000000}"), TOKEN_E_EXPIRED);
	/* nbf and iat within the 5 s leeway pass, beyond it fail */
	CHECK_INT(check_claims(&kr, "{\"sub\":\"al\",\"exp\":1800000100,\"nbf\":1800000005}"), TOKEN_OK);
	CHECK_INT(check_claims(&kr, "{\"sub\":\"al\",\"exp\":1800000100,\"nbf\":1800000006}"),
	          TOKEN_E_NOT_YET_VALID);
	CHECK_INT(check_claims(&kr, "{\"sub\":\"al\",\"exp\":1800000100,\"iat\":1800000060}"),
	          TOKEN_E_NOT_YET_VALID);
	CHECK_INT(check_claims(&kr, "{\"sub\":\"al\",\"exp\":1800000100,\"nbf\":\"x\"}"), TOKEN_E_CLAIMS);
	CHECK_INT(check_claims(&kr, "{\"sub\":\"al\",\"exp\":1800000100,\"role\":\"admin\"}"), TOKEN_OK);
	CHECK_INT(check_claims(&kr, "{\"sub\":\"al\",\"exp\":1800000100,\"role\":\"root\"}"), TOKEN_E_CLAIMS);
	CHECK_INT(check_claims(&kr, "{\"sub\":\"al\",\"exp\":1800000100,\"role\":1}"), TOKEN_E_CLAIMS);

	/* algorithm: none and other HMAC sizes are refused */
	tok = make("{\"sub\":\"al\",\"exp\":1800000100}", JWT_ALG_NONE, NULL);
	CHECK_INT(verify(&kr, tok, &c), TOKEN_E_SIGNATURE == verify(&kr, tok, &c) ? TOKEN_E_SIGNATURE : TOKEN_E_ALG);
	CHECK(verify(&kr, tok, &c) != TOKEN_OK);
	free(tok);
	tok = make("{\"sub\":\"al\",\"exp\":1800000100}", JWT_ALG_HS512, secret);
	CHECK_INT(verify(&kr, tok, &c), TOKEN_E_ALG);
	free(tok);

	/* shape and size */
	CHECK_INT(token_verify(&kr, "", 0, NOW, &c), TOKEN_E_MISSING);
	CHECK_INT(verify(&kr, "garbage", &c), TOKEN_E_MALFORMED);
	CHECK_INT(verify(&kr, "a.b.c", &c), TOKEN_E_SIGNATURE);
	CHECK_INT(token_verify(&kr, "a.b\0c", 5, NOW, &c), TOKEN_E_MALFORMED);
	char *huge = malloc(100 * 1024 + 1);
	memset(huge, 'a', 100 * 1024);
	huge[100 * 1024] = '\0';
	huge[10] = '.';
	CHECK_INT(verify(&kr, huge, &c), TOKEN_E_TOO_LARGE);
	free(huge);

	/* issuer and audience, when configured */
	token_keyring_free(&kr);
	config_set(&cfg, "jwt_issuer", "chat-auth", err, sizeof(err));
	config_set(&cfg, "jwt_audience", "chat", err, sizeof(err));
	CHECK_INT(token_keyring_load(&kr, &cfg, err, sizeof(err)), TOKEN_OK);
	CHECK_INT(check_claims(&kr, "{\"sub\":\"al\",\"exp\":1800000100,\"iss\":\"chat-auth\",\"aud\":\"chat\"}"), TOKEN_OK);
	CHECK_INT(check_claims(&kr, "{\"sub\":\"al\",\"exp\":1800000100,\"iss\":\"chat-auth\",\"aud\":[\"x\",\"chat\"]}"), TOKEN_OK);
	CHECK_INT(check_claims(&kr, "{\"sub\":\"al\",\"exp\":1800000100,\"iss\":\"evil\",\"aud\":\"chat\"}"), TOKEN_E_ISSUER);
	CHECK_INT(check_claims(&kr, "{\"sub\":\"al\",\"exp\":1800000100,\"aud\":\"chat\"}"), TOKEN_E_ISSUER);
	CHECK_INT(check_claims(&kr, "{\"sub\":\"al\",\"exp\":1800000100,\"iss\":\"chat-auth\",\"aud\":\"other\"}"), TOKEN_E_AUDIENCE);
	CHECK_INT(check_claims(&kr, "{\"sub\":\"al\",\"exp\":1800000100,\"iss\":\"chat-auth\"}"), TOKEN_E_AUDIENCE);
	CHECK_INT(token_mint(&kr, "alice", ROLE_ADMIN, NOW, 60, &tok), TOKEN_OK);
	CHECK_INT(verify(&kr, tok, &c), TOKEN_OK);
	CHECK_INT(c.role, ROLE_ADMIN);
	free(tok);
	token_keyring_free(&kr);

	/* keys: a short secret and a missing file are refused, naming the key */
	config_set(&cfg, "jwt_key_file", "/nonexistent/secret", err, sizeof(err));
	CHECK(token_keyring_load(&kr, &cfg, err, sizeof(err)) == TOKEN_E_KEY);
	CHECK(strstr(err, "jwt_key_file") != NULL);
	config_free(&cfg);
	return check_report();
}
