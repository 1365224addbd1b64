/* approval: the canonical approval request and its digest
 * (docs/approvals.md). */
#include "approval.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/sha.h>

#include "cjson.h"
#include "parse.h"

/* A fixed-size field is only looked at when its NUL is inside it. */
static bool
terminated(const char *s, size_t size)
{
	return memchr(s, '\0', size) != NULL;
}

static int
check_hex256(const char *s, size_t size)
{
	uint8_t b[32];

	if (!terminated(s, size) || parse_hex(s, b, sizeof(b)) < 0) {
		return -EINVAL;
	}
	return 0;
}

int
approval_check(const struct approval_request *r)
{
	if (r == NULL) {
		return -EINVAL;
	}
	if (!terminated(r->request, sizeof(r->request)) || parse_ident(r->request, TOKEN_ID_MAX) < 0 ||
	    !terminated(r->aud, sizeof(r->aud)) || parse_ident(r->aud, TOKEN_ID_MAX) < 0 ||
	    !terminated(r->vm, sizeof(r->vm)) || parse_ident(r->vm, TOKEN_ID_MAX) < 0 ||
	    !terminated(r->op, sizeof(r->op)) || parse_op(r->op, TOKEN_OP_MAX) < 0) {
		return -EINVAL;
	}
	if (check_hex256(r->launch_digest, sizeof(r->launch_digest)) < 0 ||
	    check_hex256(r->args_sha256, sizeof(r->args_sha256)) < 0) {
		return -EINVAL;
	}
	if (r->ttl < 1 || r->ttl > APPROVAL_TTL_MAX) {
		return -EINVAL;
	}
	return 0;
}

static int
to_json(const struct approval_request *r, json_t **ret)
{
	json_t *j;

	j = json_pack("{s:s,s:s,s:s,s:s,s:s,s:I,s:i,s:s}",
	    "args_sha256", r->args_sha256,
	    "aud", r->aud,
	    "launch_digest", r->launch_digest,
	    "op", r->op,
	    "request", r->request,
	    "ttl", (json_int_t)r->ttl,
	    "v", APPROVAL_VERSION,
	    "vm", r->vm);
	if (j == NULL) {
		return -ENOMEM;
	}
	*ret = j;
	return 0;
}

int
approval_canonical(const struct approval_request *r, char **ret, size_t *ret_len)
{
	json_t *j = NULL;
	char *text = NULL;
	size_t len = 0;
	int rc;

	if (ret == NULL || ret_len == NULL) {
		return -EINVAL;
	}
	rc = approval_check(r);
	if (rc < 0) {
		goto out;
	}
	rc = to_json(r, &j);
	if (rc < 0) {
		goto out;
	}
	rc = cjson_dump(j, &text, &len);
	if (rc < 0) {
		goto out;
	}
	*ret = text;
	*ret_len = len;
	text = NULL;
	rc = 0;
out:
	free(text);
	json_decref(j);
	return rc;
}

int
approval_digest(const struct approval_request *r, uint8_t ret[32])
{
	char *text = NULL;
	size_t len = 0;
	int rc;

	if (ret == NULL) {
		return -EINVAL;
	}
	rc = approval_canonical(r, &text, &len);
	if (rc < 0) {
		return rc;
	}
	if (SHA256((const unsigned char *)text, len, ret) == NULL) {
		rc = -EIO;
	}
	free(text);
	return rc;
}

int
approval_digest_hex(const struct approval_request *r, char ret[TOKEN_HEX256_LEN + 1])
{
	uint8_t d[32];
	int rc;

	if (ret == NULL) {
		return -EINVAL;
	}
	rc = approval_digest(r, d);
	if (rc < 0) {
		return rc;
	}
	format_hex(d, sizeof(d), ret);
	return 0;
}

/* Copy a string member of at most size - 1 bytes; -EINVAL if absent, not a
 * string, too long or holding a NUL. approval_check judges the syntax. */
static int
get_str(const json_t *obj, const char *key, char *dst, size_t size)
{
	const json_t *v = json_object_get(obj, key);
	const char *s = json_string_value(v);
	size_t len;

	if (s == NULL) {
		return -EINVAL;
	}
	len = json_string_length(v);
	if (len >= size || strlen(s) != len) {
		return -EINVAL;
	}
	memcpy(dst, s, len + 1);
	return 0;
}

static const char *const canonical_keys[] = {
	"args_sha256", "aud", "launch_digest", "op", "request", "ttl", "v", "vm", NULL,
};

int
approval_from_json(const json_t *obj, int allow_extra, struct approval_request *ret)
{
	struct approval_request r;
	const json_t *v;
	int rc;

	if (ret == NULL || !json_is_object(obj)) {
		return -EINVAL;
	}
	if (!allow_extra && cjson_only_keys(obj, canonical_keys, NULL) < 0) {
		return -EINVAL;
	}
	memset(&r, 0, sizeof(r));
	if ((rc = get_str(obj, "request", r.request, sizeof(r.request))) < 0 ||
	    (rc = get_str(obj, "aud", r.aud, sizeof(r.aud))) < 0 ||
	    (rc = get_str(obj, "vm", r.vm, sizeof(r.vm))) < 0 ||
	    (rc = get_str(obj, "launch_digest", r.launch_digest, sizeof(r.launch_digest))) < 0 ||
	    (rc = get_str(obj, "op", r.op, sizeof(r.op))) < 0 ||
	    (rc = get_str(obj, "args_sha256", r.args_sha256, sizeof(r.args_sha256))) < 0) {
		return rc;
	}
	v = json_object_get(obj, "ttl");
	if (!json_is_integer(v)) {
		return -EINVAL;
	}
	r.ttl = json_integer_value(v);
	v = json_object_get(obj, "v");
	if (v != NULL && (!json_is_integer(v) || json_integer_value(v) != APPROVAL_VERSION)) {
		return -EINVAL;
	}
	rc = approval_check(&r);
	if (rc < 0) {
		return rc;
	}
	*ret = r;
	return 0;
}
