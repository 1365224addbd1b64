/* html: building a page in a bounded buffer. Text that did not come from
 * this program goes through html_text or html_attr, which escape
 * & < > " ' and replace what a person could be fooled by: invalid UTF-8,
 * control characters and the bidirectional overrides that can make an
 * argument read differently from what it is (U+FFFD is shown instead).
 *
 * Errors are sticky: after the first one (-ENOMEM, or -EFBIG past the cap)
 * every call does nothing and html_take reports it, so page code need not
 * check each call. */
#ifndef WARRANT_APPROVER_HTML_H
#define WARRANT_APPROVER_HTML_H

#include <stddef.h>
#include <stdint.h>

#define HTML_MAX   (2 * 1024 * 1024)   /* a page is never larger */

struct html {
	char *buf;
	size_t len;
	size_t cap;
	size_t max;
	int err;
};

void html_init(struct html *h, size_t max);
void html_free(struct html *h);
/* The text (NUL-terminated, malloc'ed) and its length, or the first error. */
int html_take(struct html *h, char **ret, size_t *ret_len);

/* Trusted text: literals of this program only. */
void html_raw(struct html *h, const char *s);
void html_rawf(struct html *h, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Untrusted text for element content; keeps newlines and tabs. */
void html_text(struct html *h, const char *s, size_t len);
void html_textz(struct html *h, const char *s);
/* Untrusted text for a quoted attribute value (always written between
 * double quotes by the caller); no control character survives. */
void html_attr(struct html *h, const char *s, size_t len);
void html_attrz(struct html *h, const char *s);
/* A UTC time as "2026-11-28 23:30:00 UTC". */
void html_time(struct html *h, int64_t t);
/* Lower-case hex of n bytes. */
void html_hex(struct html *h, const uint8_t *b, size_t n);

#endif
