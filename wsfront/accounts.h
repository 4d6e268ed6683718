/*
 * What /api/register and /api/login accept, as plain functions: the JSON
 * body {"username","password"} and the password rule. Hashing and the
 * store are in jobs.c, on a worker thread.
 */
#ifndef WSFRONT_ACCOUNTS_H
#define WSFRONT_ACCOUNTS_H

#include <stddef.h>

#include "chat/names.h"

#define PASSWORD_MIN 8
#define PASSWORD_MAX 128

struct credentials {
	char user[NAME_USER_MAX + 1];
	char password[PASSWORD_MAX + 1];
};

/* Parses a body of len bytes. Returns 0 and fills out, or -1 with *why a
 * reason for the 400 answer (bad JSON, missing field, wrong type, invalid
 * user id, password too long or not UTF-8). Does not judge strength. */
int credentials_parse(const char *body, size_t len, struct credentials *out, const char **why);

/* The default of the setting password_min_bits: zxcvbn's "safely
 * unguessable" (about 1e8 guesses) is 26.6 bits. */
#define PASSWORD_MIN_BITS 26

/* NULL when pw may be a new account's password for user, else why not:
 * shorter than PASSWORD_MIN characters, fewer than 5 different characters,
 * containing the user name, or guessable in fewer than 2^min_bits
 * guesses by zxcvbn's estimate (common passwords, words with digits,
 * keyboard patterns, sequences, repeats, dates; min_bits 0: not asked).
 * Costs up to a few milliseconds for a long password: call it off the
 * event loop. */
const char *password_check(const char *user, const char *pw, long min_bits);

/* password_check with the default PASSWORD_MIN_BITS. */
const char *password_weak(const char *user, const char *pw);

/* Wipes the password. */
void credentials_clear(struct credentials *c);

#endif
