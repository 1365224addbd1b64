/* Unit tests for vmhost/launchauth.c, the check that stands between
 * attestd's launch reply and booting: real tokens (lib/token.c) through
 * the real verifier (lib/verifier.c) with a mocked key source. A token for
 * another VM, another launch digest, another config, another operation or
 * audience, under another key, or expired, must be refused with its
 * reason; so must a reply whose own VM id or digest is malformed. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cjson.h"
#include "parse.h"
#include "token.h"
#include "verifier.h"
#include "../../vmhost/launchauth.h"

#define EPOCH       491234
#define NOT_BEFORE  1768442400
#define EPOCH_END   (NOT_BEFORE + 3600)
#define NOT_AFTER   (EPOCH_END + 3600)
#define NOW         (NOT_BEFORE + 100)
#define KEY_FILL    0x5a
#define VM_ID       "vm-7f3a"
#define DIGEST      "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
#define OTHER_DIG   "ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100"
#define CONFIG      "{\"cmdline\":\"console=hvc0\",\"envelope\":{},\"memory_mib\":256," \
                    "\"name\":\"guest\",\"vcpus\":1,\"vmm\":\"qemu\"}"
#define CONFIG2     "{\"cmdline\":\"console=hvc0 init=/bin/sh\",\"envelope\":{}," \
                    "\"memory_mib\":256,\"name\":\"guest\",\"vcpus\":1,\"vmm\":\"qemu\"}"

static int
mock_get_key(void *ctx, const char *aud, uint32_t gen, uint64_t epoch, struct verifier_key *ret)
{
	(void)ctx;
	if (gen != 1 || epoch != EPOCH) {
		return -ENOKEY;
	}
	/* One key per audience, as attestd derives them. */
	memset(ret->key, strcmp(aud, "vmhost") == 0 ? KEY_FILL : 0x11, TOKEN_KEY_LEN);
	ret->not_before = NOT_BEFORE;
	ret->epoch_end = EPOCH_END;
	ret->not_after = NOT_AFTER;
	return 0;
}

struct fixture {
	struct verifier *v;
	json_t *config;
	json_t *config2;
};

static int
setup(void **state)
{
	struct verifier_source src = { mock_get_key, NULL, NULL };
	struct fixture *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	assert_int_equal(verifier_new_with_source(&src, "vmhost", &f->v), 0);
	assert_int_equal(cjson_parse(CONFIG, strlen(CONFIG), 4096, &f->config), 0);
	assert_int_equal(cjson_parse(CONFIG2, strlen(CONFIG2), 4096, &f->config2), 0);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;

	verifier_free(f->v);
	json_decref(f->config);
	json_decref(f->config2);
	free(f);
	return 0;
}

/* The token attestd's launch socket would mint for VM_ID/DIGEST/CONFIG. */
static void
fill(const json_t *config, struct token_kid *k, struct token_claims *c)
{
	uint8_t d[32];

	memset(k, 0, sizeof(*k));
	memset(c, 0, sizeof(*c));
	k->gen = 1;
	k->epoch = EPOCH;
	k->mode = TOKEN_MODE_EPOCH;
	strcpy(k->aud, "vmhost");
	assert_int_equal(token_new_jti(c->jti), 0);
	c->iat = NOW - 5;
	c->exp = NOW + 300;
	strcpy(c->aud, "vmhost");
	strcpy(c->vm, VM_ID);
	strcpy(c->launch, DIGEST);
	strcpy(c->op, "vm.launch");
	assert_int_equal(cjson_sha256(config, d), 0);
	format_hex(d, sizeof(d), c->args);
	c->uses = 1;
}

static char *
encode(const struct token_kid *k, const struct token_claims *c, uint8_t keyfill)
{
	uint8_t key[TOKEN_KEY_LEN];
	char *s = NULL;

	memset(key, keyfill, sizeof(key));
	assert_int_equal(token_encode(k, c, key, &s), 0);
	return s;
}

static void
expect_refused(struct fixture *f, char *tok, const char *vm, const char *digest,
    const json_t *config, const char *want_reason)
{
	const char *reason = NULL;

	assert_int_not_equal(launchauth_check(f->v, tok, vm, digest, config, NOW, &reason), 0);
	assert_non_null(reason);
	assert_string_equal(reason, want_reason);
	free(tok);
}

static void
test_accepts_the_bound_token(void **state)
{
	struct fixture *f = *state;
	struct token_kid k;
	struct token_claims c;
	const char *reason = "untouched";
	char *tok;

	fill(f->config, &k, &c);
	tok = encode(&k, &c, KEY_FILL);
	assert_int_equal(launchauth_check(f->v, tok, VM_ID, DIGEST, f->config, NOW, &reason), 0);
	assert_string_equal(reason, "untouched");
	free(tok);
}

static void
test_refuses_other_vm(void **state)
{
	struct fixture *f = *state;
	struct token_kid k;
	struct token_claims c;

	fill(f->config, &k, &c);
	strcpy(c.vm, "vm-other");
	expect_refused(f, encode(&k, &c, KEY_FILL), VM_ID, DIGEST, f->config, "wrong_vm");
	/* And the reply naming another VM than its token. */
	fill(f->config, &k, &c);
	expect_refused(f, encode(&k, &c, KEY_FILL), "vm-other", DIGEST, f->config, "wrong_vm");
}

static void
test_refuses_other_digest(void **state)
{
	struct fixture *f = *state;
	struct token_kid k;
	struct token_claims c;

	fill(f->config, &k, &c);
	strcpy(c.launch, OTHER_DIG);
	expect_refused(f, encode(&k, &c, KEY_FILL), VM_ID, DIGEST, f->config, "wrong_launch");
	fill(f->config, &k, &c);
	expect_refused(f, encode(&k, &c, KEY_FILL), VM_ID, OTHER_DIG, f->config, "wrong_launch");
}

static void
test_refuses_other_config(void **state)
{
	struct fixture *f = *state;
	struct token_kid k;
	struct token_claims c;

	fill(f->config, &k, &c);
	expect_refused(f, encode(&k, &c, KEY_FILL), VM_ID, DIGEST, f->config2, "wrong_arguments");
}

static void
test_refuses_other_operation(void **state)
{
	struct fixture *f = *state;
	struct token_kid k;
	struct token_claims c;

	fill(f->config, &k, &c);
	strcpy(c.op, "fs.write");
	expect_refused(f, encode(&k, &c, KEY_FILL), VM_ID, DIGEST, f->config, "wrong_operation");
}

/* A proxy token, properly made with the proxy's key, is not a launch. */
static void
test_refuses_other_audience(void **state)
{
	struct fixture *f = *state;
	struct token_kid k;
	struct token_claims c;

	fill(f->config, &k, &c);
	strcpy(k.aud, "proxy");
	strcpy(c.aud, "proxy");
	expect_refused(f, encode(&k, &c, 0x11), VM_ID, DIGEST, f->config, "wrong_audience");
}

/* Made by someone without the vmhost key (say, a fake launch socket). */
static void
test_refuses_foreign_key(void **state)
{
	struct fixture *f = *state;
	struct token_kid k;
	struct token_claims c;

	fill(f->config, &k, &c);
	expect_refused(f, encode(&k, &c, 0x77), VM_ID, DIGEST, f->config, "bad_mac");
}

static void
test_refuses_expired_and_future(void **state)
{
	struct fixture *f = *state;
	struct token_kid k;
	struct token_claims c;

	fill(f->config, &k, &c);
	c.iat = NOW - 50;
	c.exp = NOW - 1;
	expect_refused(f, encode(&k, &c, KEY_FILL), VM_ID, DIGEST, f->config, "expired");
	fill(f->config, &k, &c);
	c.iat = NOW + LAUNCHAUTH_SKEW + 60;
	c.exp = c.iat + 300;
	expect_refused(f, encode(&k, &c, KEY_FILL), VM_ID, DIGEST, f->config, "not_yet_valid");
}

static void
test_refuses_malformed(void **state)
{
	struct fixture *f = *state;
	struct token_kid k;
	struct token_claims c;
	const char *reason = NULL;
	char *tok;

	fill(f->config, &k, &c);
	tok = encode(&k, &c, KEY_FILL);
	/* A reply without a VM id or digest must not turn into "unchecked". */
	assert_int_equal(launchauth_check(f->v, tok, NULL, DIGEST, f->config, NOW, &reason),
	    -EINVAL);
	assert_string_equal(reason, "bad_launch_reply");
	reason = NULL;
	assert_int_equal(launchauth_check(f->v, tok, VM_ID, "ABC", f->config, NOW, &reason),
	    -EINVAL);
	assert_string_equal(reason, "bad_launch_reply");
	assert_int_equal(launchauth_check(f->v, tok, "vm/../x", DIGEST, f->config, NOW, &reason),
	    -EINVAL);
	assert_int_equal(launchauth_check(f->v, tok, VM_ID, DIGEST, NULL, NOW, &reason), -EINVAL);
	assert_int_equal(launchauth_check(NULL, tok, VM_ID, DIGEST, f->config, NOW, &reason),
	    -EINVAL);
	/* The digest in upper case is another string, not the same digest. */
	expect_refused(f, tok, VM_ID,
	    "00112233445566778899AABBCCDDEEFF00112233445566778899AABBCCDDEEFF", f->config,
	    "bad_launch_reply");
	reason = NULL;
	assert_int_not_equal(launchauth_check(f->v, "w1.garbage", VM_ID, DIGEST, f->config, NOW,
	    &reason), 0);
	assert_string_equal(reason, "malformed");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_accepts_the_bound_token, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refuses_other_vm, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refuses_other_digest, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refuses_other_config, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refuses_other_operation, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refuses_other_audience, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refuses_foreign_key, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refuses_expired_and_future, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refuses_malformed, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
