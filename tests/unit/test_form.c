/* Unit tests for approver/form.c: the form body and Cookie parsers, with
 * adversarial input. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "../../approver/form.h"

static int
parse(const char *s, struct form **ret)
{
	return form_parse(s, strlen(s), ret);
}

static void
test_basic(void **state)
{
	struct form *f = NULL;
	size_t n = 0;

	(void)state;
	assert_int_equal(parse("reason=not+now%21&csrf=abc_-&empty=", &f), 0);
	assert_int_equal(form_count(f), 3);
	assert_string_equal(form_get(f, "reason", &n), "not now!");
	assert_int_equal(n, 8);
	assert_string_equal(form_get(f, "csrf", NULL), "abc_-");
	assert_string_equal(form_get(f, "empty", &n), "");
	assert_int_equal(n, 0);
	assert_null(form_get(f, "missing", NULL));
	assert_null(form_get(f, "reaso", NULL));
	form_free(f);

	assert_int_equal(parse("", &f), 0);
	assert_int_equal(form_count(f), 0);
	form_free(f);

	/* UTF-8 and CRLF from a textarea are kept. */
	assert_int_equal(parse("reason=%C3%A9t%C3%A9%0D%0Aok%2B%25", &f), 0);
	assert_string_equal(form_get(f, "reason", NULL), "\xc3\xa9t\xc3\xa9\r\nok+%");
	form_free(f);
}

static void
test_rejects(void **state)
{
	static const char *bad[] = {
		"a", "=x", "a=1&", "&a=1", "a=1&&b=2", "a=1&a=2", "a=1&b=2&a=3",
		"A=1", "a-b=1", "a1=1", "a%62=1", "a+b=1", "a=%", "a=%4", "a=%zz", "a=%4g",
		"a=%00", "a=x%00y", "a=%C0%AF", "a=%E0%80%AF", "a=%ED%A0%80", "a=%F4%90%80%80",
		"a=%FF", "a=%80", "a=%C3", "a=%E2%82", "a=b=c", "a=b c", "a=b\nc", "a=\x01",
		"a=\xc3\xa9", "a=1;b=2&c", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa=1", NULL
	};
	struct form *f = (struct form *)0x1;
	size_t i;

	(void)state;
	for (i = 0; bad[i] != NULL; i++) {
		int r = parse(bad[i], &f);

		if (r != -EINVAL) {
			fail_msg("accepted or wrong error %d: %s", r, bad[i]);
		}
		assert_ptr_equal(f, (struct form *)0x1);   /* not written on failure */
	}
	/* A NUL inside the body (not percent-encoded). */
	assert_int_equal(form_parse("a=x\0y", 5, &f), -EINVAL);
	/* A name of exactly 32 characters is fine. */
	assert_int_equal(parse("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa=1", &f), 0);
	form_free(f);
}

static void
test_limits(void **state)
{
	struct form *f = NULL;
	char *big;
	size_t i, n;

	(void)state;
	/* 32 fields pass, 33 do not. */
	big = malloc(FORM_BODY_MAX + 16);
	assert_non_null(big);
	big[0] = '\0';
	for (i = 0; i < 33; i++) {
		char one[16];
		size_t k = i, p = 0;

		one[p++] = i == 0 ? 'x' : '&';
		if (i == 0) {
			p = 0;
		}
		do {
			one[p++] = (char)('a' + k % 26);
			k /= 26;
		} while (k > 0);
		one[p++] = '_';
		one[p++] = '=';
		one[p++] = '1';
		one[p] = '\0';
		strcat(big, one);
		if (i == 31) {
			assert_int_equal(parse(big, &f), 0);
			assert_int_equal(form_count(f), 32);
			form_free(f);
		}
	}
	assert_int_equal(parse(big, &f), -E2BIG);

	/* A value of 16 KiB decoded passes; one more byte does not. */
	memcpy(big, "v=", 2);
	memset(big + 2, 'x', FORM_VALUE_MAX);
	big[2 + FORM_VALUE_MAX] = '\0';
	assert_int_equal(parse(big, &f), 0);
	assert_non_null(form_get(f, "v", &n));
	assert_int_equal(n, FORM_VALUE_MAX);
	form_free(f);
	big[2 + FORM_VALUE_MAX] = 'x';
	big[3 + FORM_VALUE_MAX] = '\0';
	assert_int_equal(parse(big, &f), -EFBIG);
	/* The same with percent-encoding: the cap is on the decoded value. */
	for (i = 0; i + 3 <= (FORM_VALUE_MAX + 1) * 3; i += 3) {
		if (2 + i + 3 > FORM_BODY_MAX) {
			break;
		}
		memcpy(big + 2 + i, "%41", 3);
	}
	big[2 + i] = '\0';
	assert_int_equal(parse(big, &f), -EFBIG);
	/* The body cap. */
	memset(big, 'a', FORM_BODY_MAX + 1);
	assert_int_equal(form_parse(big, FORM_BODY_MAX + 1, &f), -EFBIG);
	free(big);
}

static void
test_utf8(void **state)
{
	(void)state;
	assert_true(form_utf8_valid("", 0));
	assert_true(form_utf8_valid("\xf0\x9f\x98\x80", 4));
	assert_true(form_utf8_valid("\xf4\x8f\xbf\xbf", 4));
	assert_false(form_utf8_valid("\xf4\x90\x80\x80", 4));
	assert_false(form_utf8_valid("\xf0\x8f\xbf\xbf", 4));   /* overlong */
	assert_false(form_utf8_valid("\xc1\xbf", 2));
	assert_false(form_utf8_valid("\xed\xbf\xbf", 3));       /* surrogate */
	assert_false(form_utf8_valid("a\0b", 3));
}

static void
test_cookie(void **state)
{
	char v[64];

	(void)state;
	assert_int_equal(form_cookie("__Host-session=abc", "__Host-session", v, sizeof(v)), 0);
	assert_string_equal(v, "abc");
	assert_int_equal(form_cookie("x=1; __Host-session=a-b_c; y=\"q\"", "__Host-session", v,
	    sizeof(v)), 0);
	assert_string_equal(v, "a-b_c");
	assert_int_equal(form_cookie("x=1;__Host-session=zz ", "__Host-session", v, sizeof(v)), 0);
	assert_string_equal(v, "zz");
	/* Near names are other cookies. */
	assert_int_equal(form_cookie("__Host-sessionx=1; _Host-session=2; session=3",
	    "__Host-session", v, sizeof(v)), -ENOENT);
	assert_int_equal(form_cookie("__host-session=1", "__Host-session", v, sizeof(v)), -ENOENT);
	assert_int_equal(form_cookie("", "__Host-session", v, sizeof(v)), -ENOENT);
	/* Two of ours: trust neither. */
	assert_int_equal(form_cookie("__Host-session=a; __Host-session=b", "__Host-session", v,
	    sizeof(v)), -EEXIST);
	assert_int_equal(form_cookie("__Host-session=a; __Host-session=a", "__Host-session", v,
	    sizeof(v)), -EEXIST);
	/* Bad octets in ours. */
	assert_int_equal(form_cookie("__Host-session=a\"b", "__Host-session", v, sizeof(v)),
	    -EINVAL);
	assert_int_equal(form_cookie("__Host-session=a b", "__Host-session", v, sizeof(v)),
	    -EINVAL);
	assert_int_equal(form_cookie("__Host-session=a,b", "__Host-session", v, sizeof(v)),
	    -EINVAL);
	assert_int_equal(form_cookie("__Host-session=\x80", "__Host-session", v, sizeof(v)),
	    -EINVAL);
	/* Too long for the buffer. */
	assert_int_equal(form_cookie("__Host-session=0123456789", "__Host-session", v, 5),
	    -ENOBUFS);
	assert_int_equal(form_cookie("__Host-session=", "__Host-session", v, sizeof(v)), 0);
	assert_string_equal(v, "");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_basic),
		cmocka_unit_test(test_rejects),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_utf8),
		cmocka_unit_test(test_cookie),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
