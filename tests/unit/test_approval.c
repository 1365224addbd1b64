/* Unit tests for lib/approval.c: a fixed vector (digest computed outside
 * this code) and every field's syntax. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "approval.h"

#define ARGS   "a3f1c0de00000000000000000000000000000000000000000000000000000001"
#define LAUNCH "9b2e000000000000000000000000000000000000000000000000000000000abc"
#define REQ    "0123456789abcdef0123456789abcdef"

/* The canonical text and `printf %s TEXT | sha256sum`. */
static const char vector_text[] =
    "{\"args_sha256\":\"" ARGS "\",\"aud\":\"proxy\",\"launch_digest\":\"" LAUNCH "\","
    "\"op\":\"fs/write\",\"request\":\"" REQ "\",\"ttl\":300,\"v\":1,\"vm\":\"vm-1\"}";
static const char vector_digest[] =
    "8bb6ef387c72c9d1ad0e432a6922de7b5aa4904e1bcc05fbe55a178beb46f14a";

static void
vector(struct approval_request *r)
{
	memset(r, 0, sizeof(*r));
	strcpy(r->request, REQ);
	strcpy(r->aud, "proxy");
	strcpy(r->vm, "vm-1");
	strcpy(r->launch_digest, LAUNCH);
	strcpy(r->op, "fs/write");
	strcpy(r->args_sha256, ARGS);
	r->ttl = 300;
}

static void
test_vector(void **state)
{
	struct approval_request r;
	char *text = NULL, hex[65];
	size_t len = 0;
	uint8_t d[32];

	(void)state;
	vector(&r);
	assert_int_equal(approval_check(&r), 0);
	assert_int_equal(approval_canonical(&r, &text, &len), 0);
	assert_int_equal(len, strlen(vector_text));
	assert_string_equal(text, vector_text);
	free(text);
	assert_int_equal(approval_digest_hex(&r, hex), 0);
	assert_string_equal(hex, vector_digest);
	assert_int_equal(approval_digest(&r, d), 0);
	assert_int_equal(d[0], 0x8b);
	assert_int_equal(d[31], 0x4a);
}

/* Every field takes part in the digest. */
static void
test_every_field_counts(void **state)
{
	struct approval_request r;
	char base[65], hex[65];
	int i;

	(void)state;
	vector(&r);
	assert_int_equal(approval_digest_hex(&r, base), 0);
	for (i = 0; i < 7; i++) {
		vector(&r);
		switch (i) {
		case 0: {
			r.request[0] = '1';
			break;
		}
		case 1: {
			strcpy(r.aud, "proxy2");
			break;
		}
		case 2: {
			strcpy(r.vm, "vm-2");
			break;
		}
		case 3: {
			r.launch_digest[0] = '8';
			break;
		}
		case 4: {
			strcpy(r.op, "fs/read");
			break;
		}
		case 5: {
			r.args_sha256[63] = '2';
			break;
		}
		default: {
			r.ttl = 301;
			break;
		}
		}
		assert_int_equal(approval_digest_hex(&r, hex), 0);
		assert_string_not_equal(hex, base);
	}
}

static void
test_check_rejects(void **state)
{
	struct approval_request r;
	char *text = (char *)0x1;
	size_t len = 7;
	uint8_t d[32];
	char hex[65] = "untouched";

	(void)state;
#define BAD(stmt) do { \
		vector(&r); \
		stmt; \
		assert_int_equal(approval_check(&r), -EINVAL); \
		assert_int_equal(approval_digest(&r, d), -EINVAL); \
		assert_int_equal(approval_digest_hex(&r, hex), -EINVAL); \
		assert_int_equal(approval_canonical(&r, &text, &len), -EINVAL); \
	} while (0)
	BAD(r.request[0] = '\0');
	BAD(r.request[0] = '-');
	BAD(r.request[3] = '/');
	BAD(r.request[3] = ' ');
	BAD(memset(r.request, 'a', sizeof(r.request)));            /* no NUL */
	BAD(memset(r.aud, 'a', TOKEN_ID_MAX + 1));
	BAD(strcpy(r.aud, "pro\"xy"));
	BAD(strcpy(r.vm, ""));
	BAD(strcpy(r.vm, "vm/1"));
	BAD(strcpy(r.op, "/fs"));
	BAD(memset(r.op, 'o', sizeof(r.op)));
	BAD(r.launch_digest[5] = 'A');                             /* upper case */
	BAD(r.launch_digest[5] = 'g');
	BAD(r.launch_digest[63] = '\0');                           /* too short */
	BAD(memset(r.launch_digest, 'a', sizeof(r.launch_digest)));   /* no NUL */
	BAD(r.args_sha256[0] = 'F');
	BAD(r.args_sha256[10] = '\0');
	BAD(r.ttl = 0);
	BAD(r.ttl = -1);
	BAD(r.ttl = INT64_MIN);
	BAD(r.ttl = APPROVAL_TTL_MAX + 1);
#undef BAD
	assert_string_equal(hex, "untouched");
	assert_ptr_equal(text, (char *)0x1);
	assert_int_equal(len, 7);
	assert_int_equal(approval_check(NULL), -EINVAL);

	/* The edges that are accepted. */
	vector(&r);
	r.ttl = 1;
	assert_int_equal(approval_check(&r), 0);
	r.ttl = APPROVAL_TTL_MAX;
	assert_int_equal(approval_check(&r), 0);
	memset(r.request, 'r', TOKEN_ID_MAX);
	r.request[TOKEN_ID_MAX] = '\0';
	memset(r.op, 'o', TOKEN_OP_MAX);
	r.op[TOKEN_OP_MAX] = '\0';
	assert_int_equal(approval_check(&r), 0);
}

static int
from_text(const char *text, int allow_extra, struct approval_request *r)
{
	json_error_t e;
	/* NULs get through here so that approval_from_json's own check is tested. */
	json_t *j = json_loads(text, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &e);
	int rc;

	assert_non_null(j);
	rc = approval_from_json(j, allow_extra, r);
	json_decref(j);
	return rc;
}

static void
test_from_json(void **state)
{
	struct approval_request r, want;
	char buf[2048];
	size_t i;
	static const char *bad[] = {
		/* missing fields */
		"{\"aud\":\"proxy\",\"launch_digest\":\"" LAUNCH "\",\"op\":\"fs/write\","
		"\"request\":\"" REQ "\",\"ttl\":300,\"vm\":\"vm-1\"}",
		"{\"args_sha256\":\"" ARGS "\",\"aud\":\"proxy\",\"launch_digest\":\"" LAUNCH "\","
		"\"op\":\"fs/write\",\"ttl\":300,\"vm\":\"vm-1\"}",
		"{\"args_sha256\":\"" ARGS "\",\"aud\":\"proxy\",\"launch_digest\":\"" LAUNCH "\","
		"\"op\":\"fs/write\",\"request\":\"" REQ "\",\"vm\":\"vm-1\"}",
		/* v other than 1, or not an integer */
		"{\"args_sha256\":\"" ARGS "\",\"aud\":\"proxy\",\"launch_digest\":\"" LAUNCH "\","
		"\"op\":\"fs/write\",\"request\":\"" REQ "\",\"ttl\":300,\"v\":2,\"vm\":\"vm-1\"}",
		"{\"args_sha256\":\"" ARGS "\",\"aud\":\"proxy\",\"launch_digest\":\"" LAUNCH "\","
		"\"op\":\"fs/write\",\"request\":\"" REQ "\",\"ttl\":300,\"v\":\"1\",\"vm\":\"vm-1\"}",
		/* ttl of the wrong type or range */
		"{\"args_sha256\":\"" ARGS "\",\"aud\":\"proxy\",\"launch_digest\":\"" LAUNCH "\","
		"\"op\":\"fs/write\",\"request\":\"" REQ "\",\"ttl\":\"300\",\"vm\":\"vm-1\"}",
		"{\"args_sha256\":\"" ARGS "\",\"aud\":\"proxy\",\"launch_digest\":\"" LAUNCH "\","
		"\"op\":\"fs/write\",\"request\":\"" REQ "\",\"ttl\":300.0,\"vm\":\"vm-1\"}",
		"{\"args_sha256\":\"" ARGS "\",\"aud\":\"proxy\",\"launch_digest\":\"" LAUNCH "\","
		"\"op\":\"fs/write\",\"request\":\"" REQ "\",\"ttl\":0,\"vm\":\"vm-1\"}",
		"{\"args_sha256\":\"" ARGS "\",\"aud\":\"proxy\",\"launch_digest\":\"" LAUNCH "\","
		"\"op\":\"fs/write\",\"request\":\"" REQ "\",\"ttl\":-5,\"vm\":\"vm-1\"}",
		"{\"args_sha256\":\"" ARGS "\",\"aud\":\"proxy\",\"launch_digest\":\"" LAUNCH "\","
		"\"op\":\"fs/write\",\"request\":\"" REQ "\",\"ttl\":86401,\"vm\":\"vm-1\"}",
		/* a field of the wrong type or syntax */
		"{\"args_sha256\":\"" ARGS "\",\"aud\":7,\"launch_digest\":\"" LAUNCH "\","
		"\"op\":\"fs/write\",\"request\":\"" REQ "\",\"ttl\":300,\"vm\":\"vm-1\"}",
		"{\"args_sha256\":\"" ARGS "\",\"aud\":\"proxy\",\"launch_digest\":\"9B2E\","
		"\"op\":\"fs/write\",\"request\":\"" REQ "\",\"ttl\":300,\"vm\":\"vm-1\"}",
		"{\"args_sha256\":\"A3F1C0DE00000000000000000000000000000000000000000000000000000001\","
		"\"aud\":\"proxy\",\"launch_digest\":\"" LAUNCH "\","
		"\"op\":\"fs/write\",\"request\":\"" REQ "\",\"ttl\":300,\"vm\":\"vm-1\"}",
		"{\"args_sha256\":\"" ARGS "\",\"aud\":\"proxy\",\"launch_digest\":\"" LAUNCH "\","
		"\"op\":\"fs/write\",\"request\":\"a\\u0000b\",\"ttl\":300,\"vm\":\"vm-1\"}",
		"{\"args_sha256\":\"" ARGS "\",\"aud\":\"proxy\",\"launch_digest\":\"" LAUNCH "\","
		"\"op\":\"fs/write\",\"request\":\"" REQ "\",\"ttl\":300,\"vm\":null}",
		NULL,
	};

	(void)state;
	vector(&want);
	memset(&r, 0, sizeof(r));
	assert_int_equal(from_text(vector_text, 0, &r), 0);
	assert_memory_equal(&r, &want, sizeof(r));
	/* Without v. */
	assert_int_equal(from_text("{\"args_sha256\":\"" ARGS "\",\"aud\":\"proxy\","
	    "\"launch_digest\":\"" LAUNCH "\",\"op\":\"fs/write\",\"request\":\"" REQ "\","
	    "\"ttl\":300,\"vm\":\"vm-1\"}", 0, &r), 0);
	assert_memory_equal(&r, &want, sizeof(r));

	/* An extra member: refused unless allowed. */
	snprintf(buf, sizeof(buf), "%.*s,\"reason\":\"why\"}", (int)strlen(vector_text) - 1,
	    vector_text);
	memset(&r, 0x33, sizeof(r));
	assert_int_equal(from_text(buf, 0, &r), -EINVAL);
	assert_int_equal(r.ttl, 0x3333333333333333LL);   /* untouched */
	assert_int_equal(from_text(buf, 1, &r), 0);
	assert_memory_equal(&r, &want, sizeof(r));

	for (i = 0; bad[i] != NULL; i++) {
		memset(&r, 0x33, sizeof(r));
		if (from_text(bad[i], 1, &r) != -EINVAL) {
			fail_msg("accepted: %s", bad[i]);
		}
		assert_int_equal(r.ttl, 0x3333333333333333LL);
	}
	/* Too long identifiers and op. */
	memset(buf, 0, sizeof(buf));
	snprintf(buf, sizeof(buf), "{\"args_sha256\":\"" ARGS "\",\"aud\":\"proxy\","
	    "\"launch_digest\":\"" LAUNCH "\",\"op\":\"fs/write\",\"request\":\"%0*d\","
	    "\"ttl\":300,\"vm\":\"vm-1\"}", TOKEN_ID_MAX + 1, 0);
	assert_int_equal(from_text(buf, 0, &r), -EINVAL);
	snprintf(buf, sizeof(buf), "{\"args_sha256\":\"" ARGS "\",\"aud\":\"proxy\","
	    "\"launch_digest\":\"" LAUNCH "\",\"op\":\"%0*d\",\"request\":\"" REQ "\","
	    "\"ttl\":300,\"vm\":\"vm-1\"}", TOKEN_OP_MAX + 1, 0);
	assert_int_equal(from_text(buf, 0, &r), -EINVAL);
	snprintf(buf, sizeof(buf), "{\"args_sha256\":\"" ARGS "\",\"aud\":\"proxy\","
	    "\"launch_digest\":\"" LAUNCH "\",\"op\":\"%0*d\",\"request\":\"" REQ "\","
	    "\"ttl\":300,\"vm\":\"vm-1\"}", TOKEN_OP_MAX, 0);
	assert_int_equal(from_text(buf, 0, &r), 0);
	/* Not an object. */
	assert_int_equal(from_text("[1]", 1, &r), -EINVAL);
	assert_int_equal(approval_from_json(NULL, 1, &r), -EINVAL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_vector),
		cmocka_unit_test(test_every_field_counts),
		cmocka_unit_test(test_check_rejects),
		cmocka_unit_test(test_from_json),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
