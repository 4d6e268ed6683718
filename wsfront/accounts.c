/* Request parsing and the password rule of accounts.h. */
#include <string.h>

#include <cjson/cJSON.h>
#include <sodium.h>
#include <zxcvbn.h>

#include "accounts.h"

int credentials_parse(const char *body, size_t len, struct credentials *out, const char **why)
{
	cJSON *root = cJSON_ParseWithLength(body, len);
	const cJSON *u, *p = NULL;
	int rc = -1;

	if (root == NULL || !cJSON_IsObject(root)) {
		*why = "the body must be a JSON object";
		goto cleanup;
	}
	u = cJSON_GetObjectItemCaseSensitive(root, "username");
	p = cJSON_GetObjectItemCaseSensitive(root, "password");
	if (u == NULL || p == NULL) {
		*why = "username and password are required";
		goto cleanup;
	}
	if (!cJSON_IsString(u) || !cJSON_IsString(p)) {
		*why = "username and password must be strings";
		goto cleanup;
	}
	size_t ulen = strlen(u->valuestring), plen = strlen(p->valuestring);
	if (!name_user_valid(u->valuestring, ulen)) {
		*why = "username must be 1-32 of a-z 0-9 _ . - starting with a letter or digit";
		goto cleanup;
	}
	if (plen > PASSWORD_MAX) {
		*why = "password is longer than 128 bytes";
		goto cleanup;
	}
	if (!utf8_valid((const unsigned char *)p->valuestring, plen)) {
		*why = "password is not valid UTF-8";
		goto cleanup;
	}
	memcpy(out->user, u->valuestring, ulen + 1);
	memcpy(out->password, p->valuestring, plen + 1);
	rc = 0;
cleanup:
	if (p && cJSON_IsString(p))
		sodium_memzero(p->valuestring, strlen(p->valuestring));
	cJSON_Delete(root);
	return rc;
}

/* Counts characters, not bytes: a UTF-8 continuation byte starts none. */
static size_t utf8_chars(const char *s)
{
	size_t n = 0;
	for (; *s; s++)
		n += ((unsigned char)*s & 0xc0) != 0x80;
	return n;
}

const char *password_check(const char *user, const char *pw, long min_bits)
{
	if (utf8_chars(pw) < PASSWORD_MIN)
		return "password must have at least 8 characters";
	int seen[256] = {0}, distinct = 0;
	for (const unsigned char *s = (const unsigned char *)pw; *s; s++)
		if (!seen[*s]++)
			distinct++;
	if (distinct < 5)
		return "password must have at least 5 different characters";
	if (strcasestr(pw, user) != NULL)
		return "password must not contain the username";
	/* zxcvbn's estimate, in bits of guesses: its frequency lists (common
	 * passwords, words, names), keyboard patterns, sequences, repeats,
	 * dates and l33t, with the user name as one more word to avoid */
	const char *mine[] = {user, "chat", NULL};
	if (min_bits > 0 && ZxcvbnMatch(pw, mine, NULL) < (double)min_bits)
		return "password is too easy to guess: one of the most common passwords, or a "
		       "word with digits, a keyboard pattern or a sequence; a few unrelated "
		       "words make a strong one";
	return NULL;
}

const char *password_weak(const char *user, const char *pw)
{
	return password_check(user, pw, PASSWORD_MIN_BITS);
}

void credentials_clear(struct credentials *c)
{
	sodium_memzero(c, sizeof(*c));
}
