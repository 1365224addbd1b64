#include "password.h"

#include <argon2.h>
#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#define PASSWORD_SALT_LEN   16
#define PASSWORD_HASH_LEN   32
/* How long a verification waits for a slot: a burst of logins must not
 * tie up the web's worker threads either, so past this it is refused. */
#define PASSWORD_WAIT_MS    100
/* A stored hash may have been made with other costs, but never costs that
 * would let one verification take the machine. */
#define PASSWORD_M_MAX_KIB  (4 * PASSWORD_M_COST_KIB)
#define PASSWORD_T_MAX      16
#define PASSWORD_P_MAX      8

static sem_t slots;
static pthread_once_t slots_once = PTHREAD_ONCE_INIT;
static bool slots_ok;

static void
slots_init(void)
{
	slots_ok = sem_init(&slots, 0, PASSWORD_CONCURRENT) == 0;
}

static int
slot_take(void)
{
	(void)pthread_once(&slots_once, slots_init);
	if (!slots_ok) {
		return -ENOMEM;
	}
	while (sem_wait(&slots) != 0) {
		if (errno != EINTR) {
			return -errno;
		}
	}
	return 0;
}

/* As slot_take, but -EBUSY after PASSWORD_WAIT_MS without a free slot. */
static int
slot_try(void)
{
	struct timespec until;

	(void)pthread_once(&slots_once, slots_init);
	if (!slots_ok) {
		return -ENOMEM;
	}
	if (sem_trywait(&slots) == 0) {
		return 0;
	}
	if (clock_gettime(CLOCK_REALTIME, &until) != 0) {
		return -EBUSY;
	}
	until.tv_nsec += (long)PASSWORD_WAIT_MS * 1000000L;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	while (sem_timedwait(&slots, &until) != 0) {
		if (errno == EINTR) {
			continue;
		}
		return errno == ETIMEDOUT ? -EBUSY : -errno;
	}
	return 0;
}

static void
slot_give(void)
{
	(void)sem_post(&slots);
}

static int
fill_random(uint8_t *buf, size_t n)
{
	size_t off = 0;
	ssize_t k;

	while (off < n) {
		k = getrandom(buf + off, n - off, 0);
		if (k < 0) {
			if (errno == EINTR) {
				continue;
			}
			return -errno;
		}
		off += (size_t)k;
	}
	return 0;
}

static bool
length_ok(const char *pw, size_t len)
{
	return pw != NULL && len >= PASSWORD_MIN && len <= PASSWORD_MAX;
}

int
password_hash(const char *pw, size_t len, char ret[STORE_PWHASH_MAX + 1])
{
	char enc[STORE_PWHASH_MAX + 1];
	uint8_t salt[PASSWORD_SALT_LEN];
	int r, rc;

	if (!length_ok(pw, len) || ret == NULL) {
		return -EINVAL;
	}
	if (argon2_encodedlen(PASSWORD_T_COST, PASSWORD_M_COST_KIB, PASSWORD_PARALLELISM,
	    PASSWORD_SALT_LEN, PASSWORD_HASH_LEN, Argon2_id) > sizeof(enc)) {
		return -EINVAL;
	}
	r = fill_random(salt, sizeof(salt));
	if (r < 0) {
		goto out;
	}
	r = slot_take();
	if (r < 0) {
		goto out;
	}
	rc = argon2id_hash_encoded(PASSWORD_T_COST, PASSWORD_M_COST_KIB, PASSWORD_PARALLELISM,
	    pw, len, salt, sizeof(salt), PASSWORD_HASH_LEN, enc, sizeof(enc));
	slot_give();
	if (rc != ARGON2_OK) {
		r = rc == ARGON2_MEMORY_ALLOCATION_ERROR ? -ENOMEM : -EIO;
		goto out;
	}
	memcpy(ret, enc, strlen(enc) + 1);
	r = 0;
out:
	explicit_bzero(salt, sizeof(salt));
	explicit_bzero(enc, sizeof(enc));
	return r;
}

/* A decimal number of at most 10 digits, no leading zero; advances *p. */
static bool
number(const char **p, uint64_t max, uint64_t *ret)
{
	const char *s = *p;
	uint64_t v = 0;
	size_t n = 0;

	if (s[0] == '0' && s[1] >= '0' && s[1] <= '9') {
		return false;
	}
	while (s[n] >= '0' && s[n] <= '9') {
		if (n >= 10) {
			return false;
		}
		v = v * 10 + (uint64_t)(s[n] - '0');
		n++;
	}
	if (n == 0 || v > max) {
		return false;
	}
	*p = s + n;
	*ret = v;
	return true;
}

/* "$argon2id$v=19$m=M,t=T,p=P$salt$hash" with costs we are willing to
 * pay; libargon2 checks the rest. */
static bool
hash_ok(const char *h)
{
	static const char prefix[] = "$argon2id$v=19$m=";
	const char *p;
	uint64_t m, t, par;

	if (h == NULL || strlen(h) > STORE_PWHASH_MAX || strncmp(h, prefix, sizeof(prefix) - 1)) {
		return false;
	}
	p = h + sizeof(prefix) - 1;
	if (!number(&p, PASSWORD_M_MAX_KIB, &m) || strncmp(p, ",t=", 3) != 0) {
		return false;
	}
	p += 3;
	if (!number(&p, PASSWORD_T_MAX, &t) || strncmp(p, ",p=", 3) != 0) {
		return false;
	}
	p += 3;
	if (!number(&p, PASSWORD_P_MAX, &par) || *p != '$' || t < 1 || par < 1 || m < 8 * par) {
		return false;
	}
	return true;
}

int
password_verify(const char *hash, const char *pw, size_t len)
{
	int r, rc;

	if (!hash_ok(hash)) {
		return -EINVAL;
	}
	if (!length_ok(pw, len)) {
		/* No hash is ever made of such a password. */
		return -EPERM;
	}
	r = slot_try();
	if (r < 0) {
		return r;
	}
	rc = argon2id_verify(hash, pw, len);
	slot_give();
	switch (rc) {
	case ARGON2_OK: {
		return 0;
	}
	case ARGON2_VERIFY_MISMATCH: {
		return -EPERM;
	}
	case ARGON2_MEMORY_ALLOCATION_ERROR: {
		return -ENOMEM;
	}
	default: {
		return -EINVAL;
	}
	}
}

static char dummy_hash[STORE_PWHASH_MAX + 1];
static pthread_once_t dummy_once = PTHREAD_ONCE_INIT;

static void
dummy_init(void)
{
	char pw[PASSWORD_MIN + 8];

	(void)fill_random((uint8_t *)pw, sizeof(pw));
	if (password_hash(pw, sizeof(pw), dummy_hash) < 0) {
		dummy_hash[0] = '\0';
	}
	explicit_bzero(pw, sizeof(pw));
}

int
password_verify_dummy(const char *pw, size_t len)
{
	int r;

	/* password_verify answers at once for such lengths: so do we. */
	if (!length_ok(pw, len)) {
		return -EPERM;
	}
	(void)pthread_once(&dummy_once, dummy_init);
	if (dummy_hash[0] == '\0') {
		return -EPERM;
	}
	r = password_verify(dummy_hash, pw, len);
	/* A random password nobody knows: a match cannot happen, and must
	 * not be reported if it did. */
	return r == 0 ? -EPERM : r;
}

int
password_test_hold(int n)
{
	int k = 0;

	(void)pthread_once(&slots_once, slots_init);
	if (!slots_ok) {
		return -ENOMEM;
	}
	while (k < n && sem_trywait(&slots) == 0) {
		k++;
	}
	return k;
}

void
password_test_release(int n)
{
	while (n-- > 0) {
		slot_give();
	}
}
