#include "text.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

void
text_printf(char *buf, size_t n, const char *fmt, ...)
{
	va_list ap;

	if (buf == NULL || n == 0) {
		return;
	}
	va_start(ap, fmt);
	/* A truncated message still names the field first. */
	(void)vsnprintf(buf, n, fmt, ap);
	va_end(ap);
}

int
text_copy(char *dst, size_t n, const char *src)
{
	size_t len = strlen(src);

	if (len >= n) {
		return -ENAMETOOLONG;
	}
	memcpy(dst, src, len + 1);
	return 0;
}

int
text_utf8_next(const unsigned char *s, size_t len, uint32_t *ret_cp)
{
	uint32_t cp;
	size_t n, k;

	if (len == 0) {
		return -EILSEQ;
	}
	if (s[0] < 0x80) {
		*ret_cp = s[0];
		return 1;
	}
	/* 0xc0/0xc1 could only start an overlong form, 0xf5.. only a code
	 * point past U+10FFFF. */
	if (s[0] >= 0xc2 && s[0] <= 0xdf) {
		n = 2;
		cp = s[0] & 0x1f;
	} else if (s[0] >= 0xe0 && s[0] <= 0xef) {
		n = 3;
		cp = s[0] & 0x0f;
	} else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		n = 4;
		cp = s[0] & 0x07;
	} else {
		return -EILSEQ;
	}
	if (len < n) {
		return -EILSEQ;
	}
	for (k = 1; k < n; k++) {
		if ((s[k] & 0xc0) != 0x80) {
			return -EILSEQ;
		}
		cp = (cp << 6) | (s[k] & 0x3f);
	}
	if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
	    (cp >= 0xd800 && cp <= 0xdfff)) {
		return -EILSEQ;
	}
	*ret_cp = cp;
	return (int)n;
}

bool
text_utf8_valid(const char *str, size_t len)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t i = 0;

	while (i < len) {
		uint32_t cp = 0;
		int n = text_utf8_next(s + i, len - i, &cp);

		if (n < 0 || cp == 0) {
			return false;
		}
		i += (size_t)n;
	}
	return true;
}

size_t
text_utf8_cut(const char *s, size_t max)
{
	size_t n = strlen(s);

	if (n <= max) {
		return n;
	}
	n = max;
	while (n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80) {
		n--;
	}
	return n;
}
