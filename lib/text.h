/* text: bounded writes into a caller's fixed buffer, and strict UTF-8. */
#ifndef WARRANT_TEXT_H
#define WARRANT_TEXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Format into buf (n bytes, always NUL-terminated, truncated if longer).
 * Does nothing when buf is NULL or n is 0, so a caller that does not want
 * the message may pass NULL, 0. */
void text_printf(char *buf, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Copy src with its NUL into dst of n bytes; -ENAMETOOLONG, dst untouched,
 * when it does not fit. */
int text_copy(char *dst, size_t n, const char *src);

/* The code point that starts s[0..len): its length in bytes (1..4) and
 * *ret_cp, or -EILSEQ (ret_cp untouched) for a sequence that is not
 * strict UTF-8: a continuation or 0xc0/0xc1/0xf5.. lead byte, an overlong
 * form, a surrogate (U+D800..U+DFFF), past U+10FFFF, or cut short by len.
 * A NUL byte is U+0000, length 1. */
int text_utf8_next(const unsigned char *s, size_t len, uint32_t *ret_cp);

/* Whether s[0..len) is strict UTF-8 (as above) without a NUL byte. */
bool text_utf8_valid(const char *s, size_t len);

/* The length of s's longest prefix of at most max bytes that does not end
 * inside a UTF-8 sequence: where to cut a long text for display. */
size_t text_utf8_cut(const char *s, size_t max);

#endif
