/* Unit tests for approver/password.c: Argon2id password hashes. Only a
 * few calls pay the real cost; the rest use cheap hashes made here. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <argon2.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../../approver/password.h"

static const char good[] = "correct horse battery staple";

/* A cheap hash with the same encoding: m=64 KiB, t=1. */
static void
cheap_hash(const char *pw, char out[STORE_PWHASH_MAX + 1])
{
	static const uint8_t salt[16] = "0123456789abcdef";

	assert_int_equal(argon2id_hash_encoded(1, 64, 1, pw, strlen(pw), salt, sizeof(salt), 32,
	    out, STORE_PWHASH_MAX + 1), ARGON2_OK);
}

static void
test_round_trip(void **state)
{
	char h1[STORE_PWHASH_MAX + 1], h2[STORE_PWHASH_MAX + 1];
	char want[64];

	(void)state;
	assert_int_equal(password_hash(good, strlen(good), h1), 0);
	snprintf(want, sizeof(want), "$argon2id$v=19$m=%d,t=%d,p=%d$", PASSWORD_M_COST_KIB,
	    PASSWORD_T_COST, PASSWORD_PARALLELISM);
	assert_memory_equal(h1, want, strlen(want));
	assert_int_equal(password_verify(h1, good, strlen(good)), 0);
	assert_int_equal(password_verify(h1, "correct horse battery stapl", strlen(good) - 1),
	    -EPERM);
	/* A fresh salt each time. */
	assert_int_equal(password_hash(good, strlen(good), h2), 0);
	assert_string_not_equal(h1, h2);
	/* The length is the given one, not up to a NUL. */
	assert_int_equal(password_verify(h1, good, strlen(good) - 1), -EPERM);
}

static void
test_cheap_hashes_verify(void **state)
{
	char h[STORE_PWHASH_MAX + 1];

	(void)state;
	cheap_hash(good, h);
	assert_int_equal(password_verify(h, good, strlen(good)), 0);
	assert_int_equal(password_verify(h, "Correct horse battery staple", strlen(good)), -EPERM);
	assert_int_equal(password_verify(h, "correct horse battery staple!", strlen(good) + 1),
	    -EPERM);
	/* Out of range lengths never match. */
	assert_int_equal(password_verify(h, "short", 5), -EPERM);
	assert_int_equal(password_verify(h, NULL, 20), -EPERM);
}

static void
test_length_limits(void **state)
{
	char h[STORE_PWHASH_MAX + 1];
	char *big = malloc(PASSWORD_MAX + 2);

	(void)state;
	assert_non_null(big);
	memset(big, 'x', PASSWORD_MAX + 1);
	big[PASSWORD_MAX + 1] = '\0';
	assert_int_equal(password_hash("", 0, h), -EINVAL);
	assert_int_equal(password_hash("elevenchars", 11, h), -EINVAL);
	assert_int_equal(password_hash(big, PASSWORD_MAX + 1, h), -EINVAL);
	assert_int_equal(password_hash(NULL, 20, h), -EINVAL);
	assert_int_equal(password_hash(good, strlen(good), NULL), -EINVAL);
	free(big);
}

static void
test_malformed_hashes(void **state)
{
	static const char *const bad[] = {
		"",
		"x",
		"$argon2i$v=19$m=64,t=1,p=1$MDEyMzQ1Njc4OWFiY2RlZg$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
		"$argon2id$v=16$m=64,t=1,p=1$MDEyMzQ1Njc4OWFiY2RlZg$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
		"$argon2id$v=19$m=64,t=1,p=1$!!!$AAAA",
		"$argon2id$v=19$m=64,t=1,p=1$MDEyMzQ1Njc4OWFiY2RlZg$",
		"$argon2id$v=19$m=64,t=1,p=1",
		"$argon2id$v=19$m=064,t=1,p=1$MDEyMzQ1Njc4OWFiY2RlZg$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
		"$argon2id$v=19$m=,t=1,p=1$MDEyMzQ1Njc4OWFiY2RlZg$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
		/* Costs that would take the machine. */
		"$argon2id$v=19$m=4194304,t=1,p=1$MDEyMzQ1Njc4OWFiY2RlZg$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
		"$argon2id$v=19$m=64,t=1000,p=1$MDEyMzQ1Njc4OWFiY2RlZg$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
		"$argon2id$v=19$m=64,t=1,p=255$MDEyMzQ1Njc4OWFiY2RlZg$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
		"$argon2id$v=19$m=64,t=0,p=1$MDEyMzQ1Njc4OWFiY2RlZg$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
		"$argon2id$v=19$m=99999999999,t=1,p=1$MDEyMzQ1Njc4OWFiY2RlZg$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (password_verify(bad[i], good, strlen(good)) != -EINVAL) {
			fail_msg("accepted hash %zu: %s", i, bad[i]);
		}
	}
	assert_int_equal(password_verify(NULL, good, strlen(good)), -EINVAL);
}

struct worker {
	const char *hash;
	int r;
};

static void *
verify_thread(void *arg)
{
	struct worker *w = arg;

	/* A verification that found no free slot within its short wait says
	 * so; it is asked again, as a person would. */
	do {
		w->r = password_verify(w->hash, good, strlen(good));
	} while (w->r == -EBUSY);
	return NULL;
}

static void
test_concurrent_verifies(void **state)
{
	char h[STORE_PWHASH_MAX + 1];
	struct worker w[8];
	pthread_t t[8];
	size_t i;

	(void)state;
	cheap_hash(good, h);
	for (i = 0; i < 8; i++) {
		w[i].hash = h;
		w[i].r = 1;
		assert_int_equal(pthread_create(&t[i], NULL, verify_thread, &w[i]), 0);
	}
	for (i = 0; i < 8; i++) {
		assert_int_equal(pthread_join(t[i], NULL), 0);
		assert_int_equal(w[i].r, 0);
	}
}

static void
test_dummy(void **state)
{
	(void)state;
	/* Does the work and never says yes; must not crash on odd input. */
	assert_int_equal(password_verify_dummy(good, strlen(good)), -EPERM);
	assert_int_equal(password_verify_dummy("x", 1), -EPERM);
	assert_int_equal(password_verify_dummy(NULL, 0), -EPERM);
}

static int64_t
now_ms(void)
{
	struct timespec ts;

	assert_int_equal(clock_gettime(CLOCK_MONOTONIC, &ts), 0);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* With every Argon2id slot taken, a verification is refused (-EBUSY) after
 * a short wait instead of holding its thread until one is free. */
static void
test_busy(void **state)
{
	char h[STORE_PWHASH_MAX + 1];
	int64_t t0, ms;

	(void)state;
	cheap_hash(good, h);
	/* The dummy hash is made on first use, with a slot: before the hold. */
	assert_int_equal(password_verify_dummy(good, strlen(good)), -EPERM);
	assert_int_equal(password_test_hold(100), PASSWORD_CONCURRENT);
	/* Nothing left to take. */
	assert_int_equal(password_test_hold(1), 0);
	t0 = now_ms();
	assert_int_equal(password_verify(h, good, strlen(good)), -EBUSY);
	assert_int_equal(password_verify(h, "wrong wrong wrong", 17), -EBUSY);
	assert_int_equal(password_verify_dummy(good, strlen(good)), -EBUSY);
	ms = now_ms() - t0;
	/* Three short waits, each at most 200 ms. */
	assert_true(ms < 3 * 200 + 100);
	/* What needs no Argon2id is answered as before. */
	assert_int_equal(password_verify(h, "short", 5), -EPERM);
	assert_int_equal(password_verify("$argon2id$v=19$m=", good, strlen(good)), -EINVAL);
	assert_int_equal(password_verify_dummy("short", 5), -EPERM);
	/* One slot free again: verifications run. */
	password_test_release(1);
	assert_int_equal(password_verify(h, good, strlen(good)), 0);
	assert_int_equal(password_verify(h, "wrong wrong wrong", 17), -EPERM);
	assert_int_equal(password_verify_dummy(good, strlen(good)), -EPERM);
	/* And a slot a verification took is given back. */
	assert_int_equal(password_test_hold(100), 1);
	assert_int_equal(password_verify(h, good, strlen(good)), -EBUSY);
	password_test_release(PASSWORD_CONCURRENT);
	assert_int_equal(password_verify(h, good, strlen(good)), 0);
	assert_int_equal(password_test_hold(100), PASSWORD_CONCURRENT);
	password_test_release(PASSWORD_CONCURRENT);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_cheap_hashes_verify),
		cmocka_unit_test(test_length_limits),
		cmocka_unit_test(test_malformed_hashes),
		cmocka_unit_test(test_concurrent_verifies),
		cmocka_unit_test(test_dummy),
		cmocka_unit_test(test_busy),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
