/* Unit tests for approver/html.c: whatever an agent or a person wrote is
 * rendered as inert text. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "../../approver/html.h"

static char *
render(const char *s, size_t len, int attr)
{
	struct html h;
	char *out = NULL;
	size_t n = 0;

	html_init(&h, 0);
	if (attr) {
		html_attr(&h, s, len);
	} else {
		html_text(&h, s, len);
	}
	assert_int_equal(html_take(&h, &out, &n), 0);
	assert_int_equal(strlen(out), n);
	return out;
}

/* No byte that could open markup, a string or an entity survives. */
static void
assert_inert(const char *out)
{
	assert_null(strchr(out, '<'));
	assert_null(strchr(out, '>'));
	assert_null(strchr(out, '"'));
	assert_null(strchr(out, '\''));
	for (const char *p = out; *p != '\0'; p++) {
		if (*p == '&') {
			assert_true(strncmp(p, "&amp;", 5) == 0 || strncmp(p, "&lt;", 4) == 0 ||
			    strncmp(p, "&gt;", 4) == 0 || strncmp(p, "&quot;", 6) == 0 ||
			    strncmp(p, "&#39;", 5) == 0);
		}
	}
}

static void
test_script(void **state)
{
	static const char in[] = "<script>alert(\"x\")</script> & 'y' javascript:alert(1)";
	char *out;

	(void)state;
	out = render(in, strlen(in), 0);
	assert_string_equal(out, "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; "
	    "&#39;y&#39; javascript:alert(1)");
	assert_inert(out);
	free(out);
	out = render(in, strlen(in), 1);
	assert_inert(out);
	free(out);
}

static void
test_controls_and_bad_utf8(void **state)
{
	/* NUL, an overlong '<' (C0 BC), an overlong '/' (E0 80 AF), a lone
	 * continuation byte, a surrogate, a truncated sequence at the end. */
	static const char in[] = "a\0b\xc0\xbc" "c\xe0\x80\xaf" "d\x80" "e\xed\xa0\x80" "f\x1b[31m\xc3";
	char *out;

	(void)state;
	out = render(in, sizeof(in) - 1, 0);
	assert_inert(out);
	assert_null(memchr(out, 0x1b, strlen(out)));
	assert_non_null(strstr(out, "a\xef\xbf\xbd" "b"));
	assert_non_null(strstr(out, "f\xef\xbf\xbd[31m"));
	/* Every byte left is valid UTF-8 with no control but none. */
	for (const unsigned char *p = (const unsigned char *)out; *p != '\0'; p++) {
		assert_true(*p >= 0x20 || *p == '\n' || *p == '\t');
		assert_true(*p != 0xc0 && *p != 0xe0 && *p != 0xed);
	}
	free(out);
}

static void
test_newlines_and_bidi(void **state)
{
	/* U+202E RIGHT-TO-LEFT OVERRIDE would make "exe.txt" read backwards. */
	static const char in[] = "line1\nline2\tx \xe2\x80\xae" "txt.exe \xc3\xa9";
	char *out;

	(void)state;
	out = render(in, strlen(in), 0);
	assert_string_equal(out, "line1\nline2\tx \xef\xbf\xbdtxt.exe \xc3\xa9");
	free(out);
	out = render(in, strlen(in), 1);
	assert_null(strchr(out, '\n'));
	assert_null(strchr(out, '\t'));
	free(out);
}

static void
test_cap_and_sticky_error(void **state)
{
	struct html h;
	char *out = (char *)0x1;
	size_t n = 0;
	int i;

	(void)state;
	html_init(&h, 64);
	for (i = 0; i < 100; i++) {
		html_raw(&h, "0123456789");
	}
	assert_int_equal(html_take(&h, &out, &n), -EFBIG);
	assert_ptr_equal(out, (char *)0x1);

	html_init(&h, 0);
	html_rawf(&h, "%d-%s", 42, "x");
	html_time(&h, 0);
	html_raw(&h, " ");
	html_hex(&h, (const uint8_t *)"\x01\xab", 2);
	assert_int_equal(html_take(&h, &out, &n), 0);
	assert_string_equal(out, "42-x1970-01-01 00:00:00 UTC 01ab");
	free(out);

	/* An empty page is an empty string, not NULL. */
	html_init(&h, 0);
	assert_int_equal(html_take(&h, &out, &n), 0);
	assert_string_equal(out, "");
	free(out);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_script),
		cmocka_unit_test(test_controls_and_bad_utf8),
		cmocka_unit_test(test_newlines_and_bidi),
		cmocka_unit_test(test_cap_and_sticky_error),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
