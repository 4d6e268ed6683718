/*
 * JWT verification and minting on libjwt 1.10 (see chat/token.h).
 *
 * libjwt verifies with whatever algorithm the token names, so after it has
 * checked the signature we refuse any token whose algorithm is not the one
 * configured: that closes both "alg: none" and the RS256-public-key-as-HMAC-
 * secret confusion. Claims are read from the decoded JSON with cJSON so that
 * their types are checked exactly (a string "exp" is not an expiry).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include <cjson/cJSON.h>
#include <jwt.h>

#include "chat/names.h"
#include "chat/token.h"

static const struct {
	const char *name;
	enum token_alg alg;
	jwt_alg_t jwt;
} algs[] = {
	{"HS256", TOKEN_ALG_HS256, JWT_ALG_HS256},
	{"RS256", TOKEN_ALG_RS256, JWT_ALG_RS256},
	{"ES256", TOKEN_ALG_ES256, JWT_ALG_ES256},
};

static const char *roles[] = {"user", "service", "admin"};

static jwt_alg_t jwt_alg_of(enum token_alg alg)
{
	return algs[alg].jwt;
}

static int load_key(const char *path, unsigned char **key, size_t *len,
                    const char *name, char *err, size_t errlen)
{
	if (config_read_file(path, key, len) != CONFIG_OK) {
		snprintf(err, errlen, "%s: cannot read '%s': %s", name, path, strerror(errno));
		return TOKEN_E_KEY;
	}
	return TOKEN_OK;
}

/* A secret file may end with a newline that is not part of the secret. */
static void chomp(unsigned char *key, size_t *len)
{
	while (*len > 0 && (key[*len - 1] == '\n' || key[*len - 1] == '\r'))
		key[--*len] = '\0';
}

int token_keyring_load(struct token_keyring *kr, const struct chat_config *cfg,
                       char *err, size_t errlen)
{
	struct token_keyring k;
	int rc = TOKEN_E_KEY;

	memset(&k, 0, sizeof(k));
	for (size_t i = 0; i < sizeof(algs) / sizeof(algs[0]); i++)
		if (strcmp(cfg->jwt_alg, algs[i].name) == 0)
			k.alg = algs[i].alg;
	k.leeway = cfg->jwt_leeway;
	k.max_bytes = (size_t)cfg->jwt_max_bytes;

	if (k.alg == TOKEN_ALG_HS256) {
		if (cfg->jwt_key_file) {
			if ((rc = load_key(cfg->jwt_key_file, &k.verify_key, &k.verify_len,
			                   "jwt_key_file", err, errlen)) != TOKEN_OK)
				goto error;
			chomp(k.verify_key, &k.verify_len);
		} else if (cfg->jwt_key) {
			k.verify_key = (unsigned char *)strdup(cfg->jwt_key);
			k.verify_len = strlen(cfg->jwt_key);
		}
		if (k.verify_key == NULL || k.verify_len < 16) {
			snprintf(err, errlen, "jwt_key_file: HS256 needs a secret of at least 16 bytes");
			rc = TOKEN_E_KEY;
			goto error;
		}
		k.sign_key = malloc(k.verify_len + 1);
		if (k.sign_key == NULL)
			goto nomem;
		memcpy(k.sign_key, k.verify_key, k.verify_len + 1);
		k.sign_len = k.verify_len;
	} else {
		if (cfg->jwt_key_file == NULL && cfg->jwt_signing_key_file == NULL) {
			snprintf(err, errlen, "jwt_key_file: %s needs a PEM public key file", cfg->jwt_alg);
			goto error;
		}
		if (cfg->jwt_key_file &&
		    (rc = load_key(cfg->jwt_key_file, &k.verify_key, &k.verify_len,
		                   "jwt_key_file", err, errlen)) != TOKEN_OK)
			goto error;
		if (cfg->jwt_signing_key_file &&
		    (rc = load_key(cfg->jwt_signing_key_file, &k.sign_key, &k.sign_len,
		                   "jwt_signing_key_file", err, errlen)) != TOKEN_OK)
			goto error;
	}
	if (cfg->jwt_issuer && (k.issuer = strdup(cfg->jwt_issuer)) == NULL)
		goto nomem;
	if (cfg->jwt_audience && (k.audience = strdup(cfg->jwt_audience)) == NULL)
		goto nomem;
	*kr = k;
	return TOKEN_OK;

nomem:
	snprintf(err, errlen, "out of memory");
	rc = TOKEN_E_NOMEM;
error:
	token_keyring_free(&k);
	return rc;
}

void token_keyring_free(struct token_keyring *kr)
{
	free(kr->verify_key);
	free(kr->sign_key);
	free(kr->issuer);
	free(kr->audience);
	memset(kr, 0, sizeof(*kr));
}

/* Reads a numeric date claim. Returns 1 when present and integral, 0 when
 * absent, -1 when present with any other type. */
static int date_claim(const cJSON *claims, const char *name, int64_t *out)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(claims, name);
	if (v == NULL)
		return 0;
	if (!cJSON_IsNumber(v) || v->valuedouble != (double)(int64_t)v->valuedouble ||
	    v->valuedouble < 0 || v->valuedouble > 1e12)
		return -1;
	*out = (int64_t)v->valuedouble;
	return 1;
}

static int audience_ok(const cJSON *aud, const char *want)
{
	if (cJSON_IsString(aud))
		return strcmp(aud->valuestring, want) == 0;
	if (cJSON_IsArray(aud)) {
		const cJSON *item;
		cJSON_ArrayForEach(item, aud)
			if (cJSON_IsString(item) && strcmp(item->valuestring, want) == 0)
				return 1;
	}
	return 0;
}

/* Checks the claims object against the keyring at time now. */
static int check_claims(const struct token_keyring *kr, const cJSON *claims,
                        int64_t now, struct token_claims *out)
{
	struct token_claims c;
	int64_t exp = 0, nbf = 0, iat = 0;

	memset(&c, 0, sizeof(c));
	const cJSON *sub = cJSON_GetObjectItemCaseSensitive(claims, "sub");
	if (!cJSON_IsString(sub) || !name_user_valid(sub->valuestring, strlen(sub->valuestring)))
		return TOKEN_E_SUBJECT;
	strcpy(c.sub, sub->valuestring);

	if (date_claim(claims, "exp", &exp) != 1)
		return TOKEN_E_CLAIMS;
	int has_nbf = date_claim(claims, "nbf", &nbf);
	int has_iat = date_claim(claims, "iat", &iat);
	if (has_nbf < 0 || has_iat < 0)
		return TOKEN_E_CLAIMS;
	if (now >= exp)
		return TOKEN_E_EXPIRED;
	if ((has_nbf && nbf > now + kr->leeway) || (has_iat && iat > now + kr->leeway))
		return TOKEN_E_NOT_YET_VALID;

	if (kr->issuer) {
		const cJSON *iss = cJSON_GetObjectItemCaseSensitive(claims, "iss");
		if (!cJSON_IsString(iss) || strcmp(iss->valuestring, kr->issuer) != 0)
			return TOKEN_E_ISSUER;
	}
	if (kr->audience &&
	    !audience_ok(cJSON_GetObjectItemCaseSensitive(claims, "aud"), kr->audience))
		return TOKEN_E_AUDIENCE;

	const cJSON *role = cJSON_GetObjectItemCaseSensitive(claims, "role");
	c.role = ROLE_USER;
	if (role != NULL && (!cJSON_IsString(role) || token_role_parse(role->valuestring, &c.role) != 0))
		return TOKEN_E_CLAIMS;
	const cJSON *jti = cJSON_GetObjectItemCaseSensitive(claims, "jti");
	if (jti != NULL) {
		if (!cJSON_IsString(jti) ||
		    !token_jti_valid(jti->valuestring, strlen(jti->valuestring)))
			return TOKEN_E_CLAIMS;
		strcpy(c.jti, jti->valuestring);
	}
	c.exp = exp;
	c.iat = has_iat ? iat : 0;
	*out = c;
	return TOKEN_OK;
}

int token_verify(const struct token_keyring *kr, const char *token, size_t len,
                 int64_t now, struct token_claims *out)
{
	jwt_t *jwt = NULL;
	char *copy = NULL, *grants = NULL, *headers = NULL;
	cJSON *claims = NULL, *header = NULL;
	int rc;

	if (kr->verify_key == NULL)
		return TOKEN_E_KEY;
	if (token == NULL || len == 0)
		return TOKEN_E_MISSING;
	if (len > kr->max_bytes)
		return TOKEN_E_TOO_LARGE;
	if (memchr(token, '\0', len) != NULL || memchr(token, '.', len) == NULL)
		return TOKEN_E_MALFORMED;
	copy = malloc(len + 1);
	if (copy == NULL)
		return TOKEN_E_NOMEM;
	memcpy(copy, token, len);
	copy[len] = '\0';

	if (jwt_decode(&jwt, copy, kr->verify_key, (int)kr->verify_len) != 0 || jwt == NULL) {
		rc = TOKEN_E_SIGNATURE;
		goto cleanup;
	}
	if (jwt_get_alg(jwt) != jwt_alg_of(kr->alg)) {
		rc = TOKEN_E_ALG;
		goto cleanup;
	}
	/* RFC 7515 4.1.11: a token must be refused when "crit" names an
	 * extension the verifier does not understand, and we understand none,
	 * so any "crit" header refuses the token. */
	headers = jwt_get_headers_json(jwt, NULL);
	header = headers ? cJSON_Parse(headers) : NULL;
	if (!cJSON_IsObject(header)) {
		rc = TOKEN_E_MALFORMED;
		goto cleanup;
	}
	if (cJSON_GetObjectItemCaseSensitive(header, "crit") != NULL) {
		rc = TOKEN_E_CRIT;
		goto cleanup;
	}
	grants = jwt_get_grants_json(jwt, NULL);
	claims = grants ? cJSON_Parse(grants) : NULL;
	if (!cJSON_IsObject(claims)) {
		rc = TOKEN_E_MALFORMED;
		goto cleanup;
	}
	rc = check_claims(kr, claims, now, out);

cleanup:
	cJSON_Delete(claims);
	cJSON_Delete(header);
	free(grants);
	free(headers);
	jwt_free(jwt);
	free(copy);
	return rc;
}

int token_jti_valid(const char *s, size_t n)
{
	if (n == 0 || n > TOKEN_JTI_MAX)
		return 0;
	for (size_t i = 0; i < n; i++) {
		char ch = s[i];
		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		      (ch >= '0' && ch <= '9') || ch == '_' || ch == '-'))
			return 0;
	}
	return 1;
}

int token_mint(const struct token_keyring *kr, const char *sub,
               enum token_role role, int64_t now, int64_t ttl, char **out)
{
	return token_mint_iat(kr, sub, role, now, now, ttl, out);
}

int token_mint_iat(const struct token_keyring *kr, const char *sub, enum token_role role,
                   int64_t now, int64_t iat, int64_t ttl, char **out)
{
	jwt_t *jwt = NULL;
	int rc = TOKEN_E_NOMEM;
	unsigned char rnd[16];
	char jti[2 * sizeof(rnd) + 1];

	if (!name_user_valid(sub, strlen(sub)))
		return TOKEN_E_SUBJECT;
	if (kr->sign_key == NULL)
		return TOKEN_E_KEY;
	if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
		return TOKEN_E_NOMEM;
	for (size_t i = 0; i < sizeof(rnd); i++)
		snprintf(jti + 2 * i, 3, "%02x", rnd[i]);
	if (jwt_new(&jwt) != 0)
		return TOKEN_E_NOMEM;
	if (jwt_add_grant(jwt, "sub", sub) || jwt_add_grant(jwt, "jti", jti) ||
	    jwt_add_grant_int(jwt, "iat", (long)iat) ||
	    jwt_add_grant_int(jwt, "exp", (long)(now + ttl)) ||
	    (role != ROLE_USER && jwt_add_grant(jwt, "role", token_role_name(role))) ||
	    (kr->issuer && jwt_add_grant(jwt, "iss", kr->issuer)) ||
	    (kr->audience && jwt_add_grant(jwt, "aud", kr->audience)))
		goto cleanup;
	if (jwt_set_alg(jwt, jwt_alg_of(kr->alg), kr->sign_key, (int)kr->sign_len) != 0) {
		rc = TOKEN_E_KEY;
		goto cleanup;
	}
	*out = jwt_encode_str(jwt);
	rc = *out ? TOKEN_OK : TOKEN_E_KEY;
cleanup:
	jwt_free(jwt);
	return rc;
}

int token_role_parse(const char *s, enum token_role *out)
{
	for (size_t i = 0; i < sizeof(roles) / sizeof(roles[0]); i++) {
		if (strcmp(s, roles[i]) == 0) {
			*out = (enum token_role)i;
			return 0;
		}
	}
	return -1;
}

const char *token_role_name(enum token_role role)
{
	return roles[role];
}

const char *token_strerror(int err)
{
	switch (err) {
	case TOKEN_OK: return "ok";
	case TOKEN_E_MISSING: return "no token";
	case TOKEN_E_TOO_LARGE: return "token too large";
	case TOKEN_E_MALFORMED: return "malformed token";
	case TOKEN_E_SIGNATURE: return "bad signature or undecodable token";
	case TOKEN_E_ALG: return "algorithm not accepted";
	case TOKEN_E_EXPIRED: return "token expired";
	case TOKEN_E_NOT_YET_VALID: return "token not yet valid";
	case TOKEN_E_ISSUER: return "wrong issuer";
	case TOKEN_E_AUDIENCE: return "wrong audience";
	case TOKEN_E_SUBJECT: return "missing or invalid sub";
	case TOKEN_E_CLAIMS:
		return "missing or invalid exp, nbf, iat, jti or role";
	case TOKEN_E_KEY: return "key unusable";
	case TOKEN_E_NOMEM: return "out of memory";
	case TOKEN_E_CRIT: return "token header names a critical extension we do not support";
	}
	return "unknown error";
}
