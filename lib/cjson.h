/* cjson: strict parsing and the canonical JSON form that tokens and
 * argument digests are computed over (docs/token-format.md). */
#ifndef WARRANT_CJSON_H
#define WARRANT_CJSON_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#define CJSON_MAX_DEPTH 16

/* Parse exactly len bytes (no NUL needed) of at most cap bytes. Rejects
 * duplicate keys, trailing data, NUL bytes, nesting deeper than
 * CJSON_MAX_DEPTH and real numbers (they have no canonical form here).
 * -EFBIG past cap, -EINVAL otherwise; *ret only on success. */
int cjson_parse(const char *buf, size_t len, size_t cap, json_t **ret);

/* Canonical form: compact, keys sorted bytewise, UTF-8 kept as is,
 * integers only. Rejects reals and too-deep nesting with -EINVAL.
 * The result is NUL-terminated and freed with free(). */
int cjson_dump(const json_t *j, char **ret, size_t *ret_len);

/* SHA-256 of the canonical form. */
int cjson_sha256(const json_t *j, uint8_t ret[32]);

/* Look up a member that must be a string / an integer; NULL or -ENOENT if
 * absent or of another type. */
const char *cjson_get_str(const json_t *obj, const char *key);

/* Check that obj is an object whose keys are all in the NULL-terminated
 * list allowed. -EINVAL names nothing; *ret_bad (if given) gets the key. */
int cjson_only_keys(const json_t *obj, const char *const *allowed, const char **ret_bad);

#endif
