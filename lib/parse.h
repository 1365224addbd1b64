/* parse: strict conversions of untrusted text. */
#ifndef WARRANT_PARSE_H
#define WARRANT_PARSE_H

#include <stddef.h>
#include <stdint.h>

/* Decimal, no sign, no spaces, no leading zeros (but "0"), value in
 * [min, max]. -EINVAL or -ERANGE; *ret written only on success. */
int parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *ret);

/* Lower-case hex of exactly n bytes (2n characters). */
int parse_hex(const char *s, uint8_t *out, size_t n);
void format_hex(const uint8_t *in, size_t n, char *out /* 2n + 1 */);

/* An identifier: 1..max characters of [A-Za-z0-9._:-], starting with an
 * alphanumeric. Used for audiences, VM ids, request and approver ids. */
int parse_ident(const char *s, size_t max);

/* An operation name: like an identifier, '/' also allowed. */
int parse_op(const char *s, size_t max);

#endif
