/* password: Argon2id hashes of people's passwords (libargon2), in the
 * encoded form "$argon2id$v=19$m=...,t=...,p=...$salt$hash". */
#ifndef WARRANT_APPROVER_PASSWORD_H
#define WARRANT_APPROVER_PASSWORD_H

#include <stddef.h>

#include "store.h"

#define PASSWORD_MIN          12        /* bytes */
#define PASSWORD_MAX          1024
#define PASSWORD_T_COST       3
#define PASSWORD_M_COST_KIB   65536
#define PASSWORD_PARALLELISM  1
/* Argon2id runs at most this many at once: each takes PASSWORD_M_COST_KIB
 * of memory, and a burst of logins must not add up to an out-of-memory
 * kill. */
#define PASSWORD_CONCURRENT   2

/* -EINVAL for a password outside PASSWORD_MIN..PASSWORD_MAX bytes. */
int password_hash(const char *pw, size_t len, char ret[STORE_PWHASH_MAX + 1]);
/* 0 on a match, -EPERM on a mismatch, -EINVAL for a malformed hash,
 * -EBUSY when every Argon2id slot stayed taken for a short while (a burst
 * of logins): nothing was checked, try again later. */
int password_verify(const char *hash, const char *pw, size_t len);
/* The same work as a verification, for an account that does not exist, so
 * that timing does not tell which names exist: -EPERM, or -EBUSY as
 * password_verify (or another negative errno). Never 0. */
int password_verify_dummy(const char *pw, size_t len);

/* For tests: take up to n Argon2id slots without waiting (returns how many
 * were taken), and give n back. */
int password_test_hold(int n);
void password_test_release(int n);

#endif
