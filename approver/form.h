/* form: strict parsers for what browsers send the web form: an
 * application/x-www-form-urlencoded body and the Cookie header.
 *
 * The body parser is bounded on every axis an outsider controls: the body
 * (FORM_BODY_MAX), the number of fields, the names (only [a-z_], which is
 * all the pages use, so no name needs decoding) and each decoded value.
 * '+' is a space; a '%' must be followed by two hex digits; a name seen
 * twice, an empty pair, a NUL or invalid UTF-8 anywhere refuses the whole
 * body, so that no two parts of the code can read different values. */
#ifndef WARRANT_APPROVER_FORM_H
#define WARRANT_APPROVER_FORM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define FORM_BODY_MAX     (64 * 1024)
#define FORM_FIELDS_MAX   32
#define FORM_NAME_MAX     32
#define FORM_VALUE_MAX    (16 * 1024)
#define FORM_COOKIE_MAX   4096       /* bytes of a Cookie header we look at */

struct form;

/* 0 and *ret; -EFBIG (body or a value too long), -E2BIG (too many
 * fields), -EINVAL (malformed), -ENOMEM. An empty body has no fields. */
int form_parse(const char *body, size_t len, struct form **ret);
/* Wipes the values (a password is one) and frees. NULL is fine. */
void form_free(struct form *f);
/* The decoded value (NUL-terminated; *ret_len without the NUL, may be
 * NULL) or NULL when the field is absent. */
const char *form_get(const struct form *f, const char *name, size_t *ret_len);
size_t form_count(const struct form *f);

/* A strict UTF-8 check (no overlong forms, no surrogates, nothing past
 * U+10FFFF, no NUL). */
bool form_utf8_valid(const char *s, size_t len);

/* Find the cookie `name` in a Cookie header ("a=1; b=2"). 0 and the value
 * copied into out; -ENOENT absent; -EEXIST the name appears twice (a
 * sibling domain may plant a second one: trust neither); -ENOBUFS the value
 * does not fit; -EINVAL the header or the value is malformed. */
int form_cookie(const char *header, const char *name, char *out, size_t outsz);

#endif
