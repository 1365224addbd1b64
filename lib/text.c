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
