#include "html.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "text.h"

static const char replacement[] = "\xef\xbf\xbd";   /* U+FFFD */

void
html_init(struct html *h, size_t max)
{
	memset(h, 0, sizeof(*h));
	h->max = max == 0 || max > HTML_MAX ? HTML_MAX : max;
}

void
html_free(struct html *h)
{
	free(h->buf);
	h->buf = NULL;
	h->len = 0;
	h->cap = 0;
}

int
html_take(struct html *h, char **ret, size_t *ret_len)
{
	int r = h->err;

	if (r == 0 && h->buf == NULL) {
		html_raw(h, "");
		r = h->err;
		if (r == 0 && h->buf == NULL) {
			h->buf = malloc(1);
			if (h->buf == NULL) {
				r = -ENOMEM;
			} else {
				h->buf[0] = '\0';
			}
		}
	}
	if (r < 0) {
		html_free(h);
		return r;
	}
	*ret = h->buf;
	*ret_len = h->len;
	h->buf = NULL;
	h->len = 0;
	h->cap = 0;
	return 0;
}

static void
put(struct html *h, const char *s, size_t n)
{
	size_t need;

	if (h->err != 0) {
		return;
	}
	if (__builtin_add_overflow(h->len, n + 1, &need) || need > h->max) {
		h->err = -EFBIG;
		return;
	}
	if (need > h->cap) {
		size_t cap = h->cap == 0 ? 4096 : h->cap;
		char *p;

		while (cap < need) {
			cap *= 2;
		}
		if (cap > h->max) {
			cap = h->max;
		}
		p = realloc(h->buf, cap);
		if (p == NULL) {
			h->err = -ENOMEM;
			return;
		}
		h->buf = p;
		h->cap = cap;
	}
	memcpy(h->buf + h->len, s, n);
	h->len += n;
	h->buf[h->len] = '\0';
}

void
html_raw(struct html *h, const char *s)
{
	put(h, s, strlen(s));
}

void
html_rawf(struct html *h, const char *fmt, ...)
{
	char small[512];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(small, sizeof(small), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(small)) {
		if (h->err == 0) {
			h->err = -EFBIG;   /* only short trusted fragments go through here */
		}
		return;
	}
	put(h, small, (size_t)n);
}

/* Code points shown as U+FFFD: controls (C0, DEL, C1) and the
 * bidirectional embeddings, overrides and isolates. */
static bool
hidden(uint32_t cp, bool keep_newlines)
{
	if (keep_newlines && (cp == '\n' || cp == '\t')) {
		return false;
	}
	return cp < 0x20 || (cp >= 0x7f && cp <= 0x9f) || (cp >= 0x202a && cp <= 0x202e) ||
	    (cp >= 0x2066 && cp <= 0x2069) || cp == 0x200e || cp == 0x200f || cp == 0x061c ||
	    cp == 0x2028 || cp == 0x2029;
}

static void
escape(struct html *h, const char *str, size_t len, bool keep_newlines)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t i = 0, run = 0;

	if (str == NULL) {
		return;
	}
	while (i < len) {
		const char *rep = NULL;
		uint32_t cp = 0;
		int k = text_utf8_next(s + i, len - i, &cp);
		size_t n = k < 0 ? 1 : (size_t)k;

		if (k < 0) {
			rep = replacement;
		} else if (hidden(cp, keep_newlines)) {
			rep = replacement;
		} else {
			switch (cp) {
			case '&': {
				rep = "&amp;";
				break;
			}
			case '<': {
				rep = "&lt;";
				break;
			}
			case '>': {
				rep = "&gt;";
				break;
			}
			case '"': {
				rep = "&quot;";
				break;
			}
			case '\'': {
				rep = "&#39;";
				break;
			}
			default: {
				break;
			}
			}
		}
		if (rep == NULL) {
			run += n;
			i += n;
			continue;
		}
		put(h, (const char *)s + i - run, run);
		run = 0;
		put(h, rep, strlen(rep));
		i += n;
	}
	put(h, (const char *)s + i - run, run);
}

void
html_text(struct html *h, const char *s, size_t len)
{
	escape(h, s, len, true);
}

void
html_textz(struct html *h, const char *s)
{
	if (s != NULL) {
		escape(h, s, strlen(s), true);
	}
}

void
html_attr(struct html *h, const char *s, size_t len)
{
	escape(h, s, len, false);
}

void
html_attrz(struct html *h, const char *s)
{
	if (s != NULL) {
		escape(h, s, strlen(s), false);
	}
}

void
html_time(struct html *h, int64_t t)
{
	struct tm tm;
	time_t tt = (time_t)t;
	char b[64];

	if (gmtime_r(&tt, &tm) == NULL || strftime(b, sizeof(b), "%Y-%m-%d %H:%M:%S UTC", &tm) == 0) {
		html_raw(h, "?");
		return;
	}
	html_raw(h, b);
}

void
html_hex(struct html *h, const uint8_t *b, size_t n)
{
	static const char digits[] = "0123456789abcdef";
	size_t i;

	for (i = 0; i < n; i++) {
		char x[2] = { digits[b[i] >> 4], digits[b[i] & 15] };

		put(h, x, 2);
	}
}
