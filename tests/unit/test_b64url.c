/* Unit tests for lib/b64url.c: RFC 4648 vectors and strictness. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include "b64url.h"

static void
test_rfc4648_vectors(void **state)
{
	/* RFC 4648 section 10, without padding. */
	static const char *in[] = { "", "f", "fo", "foo", "foob", "fooba", "foobar" };
	static const char *out[] = { "", "Zg", "Zm8", "Zm9v", "Zm9vYg", "Zm9vYmE", "Zm9vYmFy" };
	char enc[16];
	uint8_t dec[16];
	size_t i, n;

	(void)state;
	for (i = 0; i < 7; i++) {
		assert_int_equal(b64url_encode((const uint8_t *)in[i], strlen(in[i]), enc,
		    sizeof(enc)), 0);
		assert_string_equal(enc, out[i]);
		assert_int_equal(b64url_encoded_len(strlen(in[i])), strlen(out[i]));
		assert_int_equal(b64url_decode(out[i], strlen(out[i]), dec, sizeof(dec), &n), 0);
		assert_int_equal(n, strlen(in[i]));
		assert_memory_equal(dec, in[i], n);
	}
}

static void
test_url_alphabet(void **state)
{
	static const uint8_t raw[] = { 0xfb, 0xff, 0xbf };
	uint8_t dec[4];
	char enc[8];
	size_t n;

	(void)state;
	assert_int_equal(b64url_encode(raw, 3, enc, sizeof(enc)), 0);
	assert_string_equal(enc, "-_-_");
	assert_int_equal(b64url_decode("-_-_", 4, dec, sizeof(dec), &n), 0);
	assert_memory_equal(dec, raw, 3);
	assert_int_equal(b64url_decode("+/+/", 4, dec, sizeof(dec), &n), -EINVAL);
}

static void
test_rejects(void **state)
{
	static const char *bad[] = { "Zg==", "Zg=", "Z", "Zm9vY", "Zh", "Zm9", "Zm-=", "Zm 9",
		"Zm\n9v", "Zm9v\0", NULL };
	uint8_t dec[16];
	size_t n = 99, i;

	(void)state;
	/* "Zh" and "Zm9" differ from "Zg"/"Zm8" only in bits that must be zero. */
	for (i = 0; bad[i] != NULL; i++) {
		size_t len = strlen(bad[i]) + (strcmp(bad[i], "Zm9v") == 0 ? 1 : 0);

		assert_int_equal(b64url_decode(bad[i], len, dec, sizeof(dec), &n), -EINVAL);
		assert_int_equal(n, 99);
	}
}

static void
test_buffers(void **state)
{
	uint8_t dec[2];
	char enc[4];
	size_t n;

	(void)state;
	assert_int_equal(b64url_encode((const uint8_t *)"foo", 3, enc, sizeof(enc)), -ENOBUFS);
	assert_int_equal(b64url_decode("Zm9v", 4, dec, sizeof(dec), &n), -ENOBUFS);
}

static void
test_all_bytes_roundtrip(void **state)
{
	uint8_t raw[256], dec[256];
	char enc[400];
	size_t len, n;

	(void)state;
	for (len = 0; len < sizeof(raw); len++)
		raw[len] = (uint8_t)(len * 37 + 11);
	for (len = 0; len <= sizeof(raw); len++) {
		assert_int_equal(b64url_encode(raw, len, enc, sizeof(enc)), 0);
		assert_int_equal(b64url_decode(enc, strlen(enc), dec, sizeof(dec), &n), 0);
		assert_int_equal(n, len);
		assert_memory_equal(dec, raw, len);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rfc4648_vectors),
		cmocka_unit_test(test_url_alphabet),
		cmocka_unit_test(test_rejects),
		cmocka_unit_test(test_buffers),
		cmocka_unit_test(test_all_bytes_roundtrip),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
