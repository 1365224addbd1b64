/* Unit tests for lib/text.c: bounded formatting and copying into a
 * caller's buffer, and the strict UTF-8 decoder. */
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

/* Decode all of s as one sequence: its length and code point, or -EILSEQ. */
static int
next1(const char *s, size_t len, uint32_t *cp)
{
	*cp = 0xdeadbeef;
	return text_utf8_next((const unsigned char *)s, len, cp);
}

static void
test_utf8_next_valid(void **state)
{
	static const struct {
		const char *s;
		size_t len;
		uint32_t cp;
	} ok[] = {
		{ "\x00", 1, 0 },
		{ "A", 1, 'A' },
		{ "\x7f", 1, 0x7f },
		{ "\xc2\x80", 2, 0x80 },          /* smallest 2-byte */
		{ "\xdf\xbf", 2, 0x7ff },
		{ "\xe0\xa0\x80", 3, 0x800 },     /* smallest 3-byte */
		{ "\xed\x9f\xbf", 3, 0xd7ff },    /* just below the surrogates */
		{ "\xee\x80\x80", 3, 0xe000 },    /* just above them */
		{ "\xef\xbf\xbd", 3, 0xfffd },
		{ "\xef\xbf\xbf", 3, 0xffff },
		{ "\xf0\x90\x80\x80", 4, 0x10000 }, /* smallest 4-byte */
		{ "\xf0\x9f\x98\x80", 4, 0x1f600 },
		{ "\xf4\x8f\xbf\xbf", 4, 0x10ffff }, /* the last code point */
	};
	size_t i;
	uint32_t cp;

	(void)state;
	for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		assert_int_equal(next1(ok[i].s, ok[i].len, &cp), (int)ok[i].len);
		assert_int_equal(cp, ok[i].cp);
	}
	/* Only the first sequence is read; what follows does not matter. */
	assert_int_equal(next1("\xc3\xa9\xff", 3, &cp), 2);
	assert_int_equal(cp, 0xe9);
	assert_int_equal(next1("a\x80", 2, &cp), 1);
	assert_int_equal(cp, 'a');
}

static void
test_utf8_next_invalid(void **state)
{
	static const struct {
		const char *s;
		size_t len;
	} bad[] = {
		{ "", 0 },                          /* nothing at all */
		{ "\x80", 1 },                      /* lone continuation bytes */
		{ "\xbf", 1 },
		{ "\x80\x80", 2 },
		{ "\xc0\x80", 2 },                  /* overlong 2-byte NUL */
		{ "\xc0\xaf", 2 },                  /* overlong '/' */
		{ "\xc1\xbf", 2 },                  /* overlong U+7F */
		{ "\xe0\x80\x80", 3 },              /* overlong 3-byte NUL */
		{ "\xe0\x80\xaf", 3 },              /* overlong '/' */
		{ "\xe0\x9f\xbf", 3 },              /* overlong U+7FF */
		{ "\xf0\x80\x80\x80", 4 },          /* overlong 4-byte NUL */
		{ "\xf0\x80\x80\xaf", 4 },          /* overlong '/' */
		{ "\xf0\x8f\xbf\xbf", 4 },          /* overlong U+FFFF */
		{ "\xed\xa0\x80", 3 },              /* U+D800 */
		{ "\xed\xad\xbf", 3 },              /* U+DB7F */
		{ "\xed\xb0\x80", 3 },              /* U+DC00 */
		{ "\xed\xbf\xbf", 3 },              /* U+DFFF */
		{ "\xed\xa0\xbd\xed\xb8\x80", 6 },  /* a CESU-8 surrogate pair */
		{ "\xf4\x90\x80\x80", 4 },          /* U+110000 */
		{ "\xf4\xbf\xbf\xbf", 4 },
		{ "\xf5\x80\x80\x80", 4 },          /* lead bytes past 0xf4 */
		{ "\xf7\xbf\xbf\xbf", 4 },
		{ "\xf8\x88\x80\x80\x80", 5 },      /* old 5- and 6-byte forms */
		{ "\xfc\x84\x80\x80\x80\x80", 6 },
		{ "\xfe", 1 },
		{ "\xff", 1 },
		{ "\xc3", 1 },                      /* cut short at the end */
		{ "\xe2\x82", 2 },
		{ "\xe2", 1 },
		{ "\xf0\x9f\x98", 3 },
		{ "\xf0\x9f", 2 },
		{ "\xf0", 1 },
		{ "\xc3\x28", 2 },                  /* continuation missing */
		{ "\xc3\xc3", 2 },
		{ "\xe2\x28\xa1", 3 },
		{ "\xe2\x82\x28", 3 },
		{ "\xf0\x28\x8c\xbc", 4 },
		{ "\xf0\x90\x28\xbc", 4 },
		{ "\xf0\x90\x8c\x28", 4 },
		{ "\xf0\x90\x8c\x00", 4 },
	};
	size_t i;
	uint32_t cp;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(next1(bad[i].s, bad[i].len, &cp), -EILSEQ);
		assert_int_equal(cp, 0xdeadbeef);
	}
	/* The length bounds the read even when the bytes would go on. */
	assert_int_equal(next1("\xe2\x82\xac", 2, &cp), -EILSEQ);
	assert_int_equal(next1("\xe2\x82\xac", 3, &cp), 3);
	assert_int_equal(cp, 0x20ac);
}

static void
test_utf8_valid(void **state)
{
	(void)state;
	assert_true(text_utf8_valid("", 0));
	assert_true(text_utf8_valid(NULL, 0));
	assert_true(text_utf8_valid("plain ascii", 11));
	assert_true(text_utf8_valid("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", 14));
	assert_true(text_utf8_valid("\xf4\x8f\xbf\xbf", 4));
	/* Only len bytes count. */
	assert_true(text_utf8_valid("ab\xff", 2));
	assert_false(text_utf8_valid("ab\xff", 3));
	/* NUL is refused anywhere. */
	assert_false(text_utf8_valid("a\0b", 3));
	assert_false(text_utf8_valid("\0", 1));
	/* One bad sequence anywhere refuses the whole text. */
	assert_false(text_utf8_valid("ok \xc0\xaf", 5));
	assert_false(text_utf8_valid("\xed\xa0\x80 ok", 6));
	assert_false(text_utf8_valid("ok \xf4\x90\x80\x80", 7));
	assert_false(text_utf8_valid("ok \xf5\x80\x80\x80", 7));
	assert_false(text_utf8_valid("ok \x80", 4));
	assert_false(text_utf8_valid("caf\xc3", 4));
	assert_false(text_utf8_valid("\xe2\x82\xac\xe2\x82", 5));
	assert_false(text_utf8_valid("\xf0\x9f\x98\x80\xf0\x9f\x98", 7));
}

/* Cutting a long text for display never ends inside a character. */
static void
test_utf8_cut(void **state)
{
	(void)state;
	assert_int_equal(text_utf8_cut("", 0), 0);
	assert_int_equal(text_utf8_cut("abc", 10), 3);
	assert_int_equal(text_utf8_cut("abc", 3), 3);
	assert_int_equal(text_utf8_cut("abcd", 3), 3);
	/* "aé" is 61 c3 a9: a cut at 2 would split é. */
	assert_int_equal(text_utf8_cut("a\xc3\xa9z", 2), 1);
	assert_int_equal(text_utf8_cut("a\xc3\xa9z", 3), 3);
	/* A 4-byte character: every cut inside it backs off to before it. */
	assert_int_equal(text_utf8_cut("\xf0\x9f\x98\x80!", 1), 0);
	assert_int_equal(text_utf8_cut("\xf0\x9f\x98\x80!", 3), 0);
	assert_int_equal(text_utf8_cut("\xf0\x9f\x98\x80!", 4), 4);
	assert_int_equal(text_utf8_cut("abc", 0), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_utf8_cut),
		cmocka_unit_test(test_printf_fits),
		cmocka_unit_test(test_printf_truncates),
		cmocka_unit_test(test_printf_null_or_empty),
		cmocka_unit_test(test_copy_fits),
		cmocka_unit_test(test_copy_too_long),
		cmocka_unit_test(test_utf8_next_valid),
		cmocka_unit_test(test_utf8_next_invalid),
		cmocka_unit_test(test_utf8_valid),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
