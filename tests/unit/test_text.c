/* Unit tests for lib/text.c: bounded formatting and copying into a
 * caller's buffer. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include "text.h"

static void
test_printf_fits(void **state)
{
	char buf[32];

	(void)state;
	memset(buf, 'x', sizeof(buf));
	text_printf(buf, sizeof(buf), "field '%s' is %d", "ttl", 42);
	assert_string_equal(buf, "field 'ttl' is 42");
}

static void
test_printf_truncates(void **state)
{
	char buf[8];

	(void)state;
	memset(buf, 'x', sizeof(buf));
	text_printf(buf, sizeof(buf), "%s", "0123456789abcdef");
	assert_string_equal(buf, "0123456");
	text_printf(buf, 1, "%s", "anything");
	assert_int_equal(buf[0], '\0');
	/* Only the first byte was in reach. */
	assert_int_equal(buf[1], '1');
}

static void
test_printf_null_or_empty(void **state)
{
	char buf[4] = { 'a', 'b', 'c', 'd' };

	(void)state;
	text_printf(NULL, 0, "%s", "ignored");
	text_printf(NULL, 16, "%s", "ignored");
	text_printf(buf, 0, "%s", "ignored");
	assert_memory_equal(buf, "abcd", 4);
}

static void
test_copy_fits(void **state)
{
	char dst[4];

	(void)state;
	memset(dst, 'x', sizeof(dst));
	assert_int_equal(text_copy(dst, sizeof(dst), "abc"), 0);
	assert_string_equal(dst, "abc");
	assert_int_equal(text_copy(dst, sizeof(dst), ""), 0);
	assert_string_equal(dst, "");
	assert_int_equal(text_copy(dst, 1, ""), 0);
	assert_string_equal(dst, "");
}

static void
test_copy_too_long(void **state)
{
	char dst[4];

	(void)state;
	memcpy(dst, "old", 4);
	/* Four characters need five bytes with the NUL. */
	assert_int_equal(text_copy(dst, sizeof(dst), "abcd"), -ENAMETOOLONG);
	assert_string_equal(dst, "old");
	assert_int_equal(text_copy(dst, sizeof(dst), "a much longer string"), -ENAMETOOLONG);
	assert_string_equal(dst, "old");
	assert_int_equal(text_copy(dst, 0, ""), -ENAMETOOLONG);
	assert_string_equal(dst, "old");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_printf_fits),
		cmocka_unit_test(test_printf_truncates),
		cmocka_unit_test(test_printf_null_or_empty),
		cmocka_unit_test(test_copy_fits),
		cmocka_unit_test(test_copy_too_long),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
