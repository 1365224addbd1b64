/* text: bounded writes into a caller's fixed buffer. */
#ifndef WARRANT_TEXT_H
#define WARRANT_TEXT_H

#include <stddef.h>

/* Format into buf (n bytes, always NUL-terminated, truncated if longer).
 * Does nothing when buf is NULL or n is 0, so a caller that does not want
 * the message may pass NULL, 0. */
void text_printf(char *buf, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Copy src with its NUL into dst of n bytes; -ENAMETOOLONG, dst untouched,
 * when it does not fit. */
int text_copy(char *dst, size_t n, const char *src);

#endif
