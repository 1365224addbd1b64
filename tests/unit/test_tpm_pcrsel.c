/* Unit tests of lib/tpm.c's software parts: tpm_pcr_sel_parse,
 * tpm_pcr_sel_format and tpm_policy_pcr (no TPM needed). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <openssl/sha.h>
#include <string.h>

#include "parse.h"
#include "tpm.h"

#define SHA256_ALG 0x000b

/* pcrDigest of four all-zero PCRs: SHA-256 of 128 zero bytes. */
static const uint8_t zero_pcrs_digest[32] = {
	0x38, 0x72, 0x3a, 0x2e, 0x5e, 0x8a, 0x17, 0xaa, 0x79, 0x50, 0xdc, 0x00,
	0x82, 0x09, 0x94, 0x4e, 0x89, 0x8f, 0x69, 0xa7, 0xbd, 0x10, 0xa2, 0x3c,
	0x83, 0x9d, 0x34, 0x1e, 0x93, 0x5f, 0xd5, 0xca,
};

static void
expect_sel(const char *s, uint32_t mask)
{
	struct tpm_pcr_sel sel = { 0, 0 };

	assert_int_equal(tpm_pcr_sel_parse(s, &sel), 0);
	assert_int_equal(sel.bank, SHA256_ALG);
	assert_int_equal(sel.mask, mask);
}

static void
test_parse_valid(void **state)
{
	(void)state;
	expect_sel("sha256:0,2,4,7", 0x95);
	expect_sel("sha256:0", 0x1);
	expect_sel("sha256:23", 1u << 23);
	expect_sel("sha256:7,0", 0x81);          /* any order, same selection */
	expect_sel("sha256:10,9", 0x600);
	expect_sel("sha256:0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23",
	    0xffffff);
}

static void
test_parse_invalid(void **state)
{
	static const char *const bad[] = {
		"", "sha256", "sha256:", "sha256:,", "sha256:0,", ",0", "sha256:,0",
		"sha256:0,,2", "sha256:24", "sha256:99", "sha256:100", "sha256:00",
		"sha256:07", "sha256:0,0", "sha256:7,4,7", "sha1:0", "sha384:0",
		"SHA256:0", "sha256: 0", "sha256:0 ", " sha256:0", "sha256:-1",
		"sha256:+1", "sha256:1a", "sha256:0x1", "sha256:0;2", "sha256:0,2,4,7\n",
		"sha2560:1", "sha256::0", "sha256:0:1", "sha256:4294967296",
		"sha256:0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,0",
		"sha256:1\xff",
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct tpm_pcr_sel sel = { 0x1234, 0xdeadbeef };

		if (tpm_pcr_sel_parse(bad[i], &sel) != -EINVAL)
			fail_msg("accepted \"%s\"", bad[i]);
		/* out-parameter untouched on failure */
		assert_int_equal(sel.bank, 0x1234);
		assert_int_equal(sel.mask, 0xdeadbeef);
	}
	assert_int_equal(tpm_pcr_sel_parse(NULL, &(struct tpm_pcr_sel){ 0, 0 }), -EINVAL);
}

static void
test_format(void **state)
{
	struct tpm_pcr_sel sel = { SHA256_ALG, 0x95 };
	char buf[TPM_PCR_SEL_STR_MAX], small[14];

	(void)state;
	assert_int_equal(tpm_pcr_sel_format(&sel, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "sha256:0,2,4,7");

	sel.mask = 0xffffff;
	assert_int_equal(tpm_pcr_sel_format(&sel, buf, sizeof(buf)), 0);
	assert_string_equal(buf,
	    "sha256:0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23");
	assert_true(strlen(buf) + 1 <= TPM_PCR_SEL_STR_MAX);

	/* exactly fitting, one byte short (buffer left alone) */
	sel.mask = 0x95;
	assert_int_equal(tpm_pcr_sel_format(&sel, buf, 15), 0);
	memset(small, 'x', sizeof(small));
	assert_int_equal(tpm_pcr_sel_format(&sel, small, sizeof(small)), -ENOBUFS);
	assert_int_equal(small[0], 'x');

	/* invalid selections */
	sel.mask = 0;
	assert_int_equal(tpm_pcr_sel_format(&sel, buf, sizeof(buf)), -EINVAL);
	sel.mask = 1u << 24;
	assert_int_equal(tpm_pcr_sel_format(&sel, buf, sizeof(buf)), -EINVAL);
	sel.mask = 1;
	sel.bank = 0x0004;   /* sha1 */
	assert_int_equal(tpm_pcr_sel_format(&sel, buf, sizeof(buf)), -EINVAL);
	assert_int_equal(tpm_pcr_sel_format(NULL, buf, sizeof(buf)), -EINVAL);
}

/* format then parse gives back the selection, for every single PCR and a
 * spread of multi-PCR masks (a cheap LCG, not all 2^24). */
static void
test_roundtrip(void **state)
{
	uint32_t x = 12345, i;

	(void)state;
	for (i = 0; i < 24 + 50000; i++) {
		struct tpm_pcr_sel in = { SHA256_ALG, 0 }, out = { 0, 0 };
		char buf[TPM_PCR_SEL_STR_MAX];

		if (i < 24) {
			in.mask = 1u << i;
		} else {
			x = x * 1103515245u + 12345u;
			in.mask = (x >> 4) & 0xffffff;
			if (in.mask == 0)
				continue;
		}
		assert_int_equal(tpm_pcr_sel_format(&in, buf, sizeof(buf)), 0);
		assert_int_equal(tpm_pcr_sel_parse(buf, &out), 0);
		assert_int_equal(out.mask, in.mask);
		assert_int_equal(out.bank, SHA256_ALG);
	}
}

static void
expect_policy(const char *sel_str, const uint8_t pcr_digest[32], const char *want_hex)
{
	struct tpm_pcr_sel sel;
	uint8_t got[32], want[32];

	assert_int_equal(parse_hex(want_hex, want, 32), 0);
	assert_int_equal(tpm_pcr_sel_parse(sel_str, &sel), 0);
	assert_int_equal(tpm_policy_pcr(&sel, pcr_digest, got), 0);
	assert_memory_equal(got, want, 32);
}

/* Known answers. The first is what `tpm2_createpolicy --policy-pcr -l
 * sha256:0,2,4,7` printed on a fresh swtpm (PCRs 0, 2, 4, 7 all zero, so
 * pcrDigest = SHA-256 of 128 zero bytes); all three were also computed
 * independently with Python's hashlib as
 * SHA-256(0^32 || 0000017f || 00000001 000b 03 <3 select bytes> || pcrDigest). */
static void
test_policy_known(void **state)
{
	uint8_t counting[32];
	int i;

	(void)state;
	for (i = 0; i < 32; i++)
		counting[i] = (uint8_t)i;
	expect_policy("sha256:0,2,4,7", zero_pcrs_digest,
	    "4f04c837291ac05d8c8fceb5d03ac530d3189c1dd24dc744f2145cf71eaa9cf6");
	expect_policy("sha256:8,23", counting,
	    "0d51a1bf4c4e24bc630b161d694ce5aeb32187b1f7b8717a3d716d5de7f318cc");
	expect_policy("sha256:0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23",
	    counting, "6802a9505a619ed59deb861e5c6e8f48135397f3be1212bab654f1d433ed9991");
}

static void
test_policy_invalid(void **state)
{
	struct tpm_pcr_sel sel = { SHA256_ALG, 0 };
	uint8_t d[32] = { 0 }, out[32];

	(void)state;
	memset(out, 0x5a, sizeof(out));
	assert_int_equal(tpm_policy_pcr(&sel, d, out), -EINVAL);
	sel.mask = 1u << 24;
	assert_int_equal(tpm_policy_pcr(&sel, d, out), -EINVAL);
	sel.mask = 1;
	assert_int_equal(tpm_policy_pcr(&sel, NULL, out), -EINVAL);
	assert_int_equal(tpm_policy_pcr(NULL, d, out), -EINVAL);
	assert_int_equal(out[0], 0x5a);
}

/* The zero_pcrs_digest constant is what it claims to be. */
static void
test_zero_pcrs_digest(void **state)
{
	static const uint8_t zeros[128];
	uint8_t md[32];

	(void)state;
	SHA256(zeros, sizeof(zeros), md);
	assert_memory_equal(md, zero_pcrs_digest, 32);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_valid),
		cmocka_unit_test(test_parse_invalid),
		cmocka_unit_test(test_format),
		cmocka_unit_test(test_roundtrip),
		cmocka_unit_test(test_policy_known),
		cmocka_unit_test(test_policy_invalid),
		cmocka_unit_test(test_zero_pcrs_digest),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
