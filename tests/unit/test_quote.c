/* Unit tests for lib/quote.c: the quote document and its offline
 * verification. A software ECDSA P-256 key stands in for the TPM's
 * attestation key; the TPMS_ATTEST and TPMT_SIGNATURE are built with the
 * TSS marshalling code, so every rejection can be reached without a TPM.
 *
 * test_tpm_quote runs tpm_quote against a real TPM when $WARRANT_TEST_TCTI
 * names one (tests/integration/test_quote.sh sets it to a fresh swtpm) and
 * is skipped otherwise. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <tss2/tss2_mu.h>
#include <tss2/tss2_tpm2_types.h>

#include "b64url.h"
#include "cjson.h"
#include "eventlog.h"
#include "parse.h"
#include "quote.h"
#include "tpm.h"

#define LAUNCH_PCR 15

static const uint8_t nonce[] = { 0x6e, 0x6f, 0x6e, 0x63, 0x65, 0x2d, 0x31, 0x32 };
static const char sha_a[] =
    "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

/* Everything one test needs: a key, a log, PCR values and the parts of a
 * quote, which each test alters before signing and assembling. */
struct fixture {
	EVP_PKEY *key;
	char *pem;
	size_t pem_len;
	char *log;
	size_t log_len;
	struct tpm_pcr_sel sel;
	uint8_t values[24][32];
	TPMS_ATTEST attest;
};

static EVP_PKEY *
new_key(const char *curve)
{
	EVP_PKEY *k = EVP_EC_gen(curve);

	assert_non_null(k);
	return k;
}

static char *
pem_of(EVP_PKEY *k, size_t *ret_len)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *p, *out;
	long n;

	assert_non_null(b);
	assert_int_equal(PEM_write_bio_PUBKEY(b, k), 1);
	n = BIO_get_mem_data(b, &p);
	assert_true(n > 0);
	out = malloc((size_t)n + 1);
	assert_non_null(out);
	memcpy(out, p, (size_t)n);
	out[n] = '\0';
	*ret_len = (size_t)n;
	BIO_free(b);
	return out;
}

static void
append_line(char **buf, size_t *len, uint64_t recnum, json_t *content)
{
	char *line = NULL;
	size_t n = 0;

	assert_non_null(content);
	assert_int_equal(eventlog_format(recnum, LAUNCH_PCR, content, &line, &n, NULL), 0);
	*buf = realloc(*buf, *len + n + 2);
	assert_non_null(*buf);
	memcpy(*buf + *len, line, n);
	(*buf)[*len + n] = '\n';
	*len += n + 1;
	(*buf)[*len] = '\0';
	free(line);
	json_decref(content);
}

static void
make_log(struct fixture *f)
{
	static const char *const vms[] = { "vm-1", "vm-2" };
	uint64_t rec = 0;
	size_t i;

	f->log = NULL;
	f->log_len = 0;
	for (i = 0; i < 2; i++) {
		append_line(&f->log, &f->log_len, rec++, json_pack("{s:s,s:s,s:I,s:s}",
		    "event", "kernel", "sha256", sha_a, "size", (json_int_t)10, "vm", vms[i]));
		append_line(&f->log, &f->log_len, rec++, json_pack("{s:s,s:s,s:I,s:s}",
		    "event", "initrd", "sha256", sha_a, "size", (json_int_t)20, "vm", vms[i]));
		append_line(&f->log, &f->log_len, rec++, json_pack("{s:s,s:s,s:s}",
		    "cmdline", "console=hvc0", "event", "cmdline", "vm", vms[i]));
		append_line(&f->log, &f->log_len, rec++, json_pack("{s:{s:I},s:s,s:s}",
		    "config", "vcpus", (json_int_t)1, "event", "config", "vm", vms[i]));
	}
}

/* pcrDigest over the selected values, the way the TPM computes it. */
static void
pcr_digest(const struct tpm_pcr_sel *sel, uint8_t values[24][32], TPM2B_DIGEST *d)
{
	uint8_t buf[24 * 32];
	size_t n = 0;
	unsigned i;

	for (i = 0; i < 24; i++) {
		if ((sel->mask & (1u << i)) != 0) {
			memcpy(buf + n, values[i], 32);
			n += 32;
		}
	}
	d->size = 32;
	SHA256(buf, n, d->buffer);
}

static void
set_selection(TPMS_ATTEST *a, uint32_t mask)
{
	TPML_PCR_SELECTION *s = &a->attested.quote.pcrSelect;

	memset(s, 0, sizeof(*s));
	s->count = 1;
	s->pcrSelections[0].hash = TPM2_ALG_SHA256;
	s->pcrSelections[0].sizeofSelect = 3;
	s->pcrSelections[0].pcrSelect[0] = (uint8_t)mask;
	s->pcrSelections[0].pcrSelect[1] = (uint8_t)(mask >> 8);
	s->pcrSelections[0].pcrSelect[2] = (uint8_t)(mask >> 16);
}

static int
setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	TPMS_ATTEST *a;
	unsigned i;

	assert_non_null(f);
	f->key = new_key("P-256");
	f->pem = pem_of(f->key, &f->pem_len);
	make_log(f);
	assert_int_equal(tpm_pcr_sel_parse("sha256:0,2,4,7,15", &f->sel), 0);
	for (i = 0; i < 24; i++)
		memset(f->values[i], (int)(0x10 + i), 32);
	assert_int_equal(eventlog_replay(f->log, f->log_len, LAUNCH_PCR,
	    f->values[LAUNCH_PCR], NULL, NULL, NULL, NULL), 0);

	a = &f->attest;
	a->magic = TPM2_GENERATED_VALUE;
	a->type = TPM2_ST_ATTEST_QUOTE;
	a->qualifiedSigner.size = 34;
	memset(a->qualifiedSigner.name, 0x22, 34);
	a->extraData.size = sizeof(nonce);
	memcpy(a->extraData.buffer, nonce, sizeof(nonce));
	a->clockInfo.clock = 123456;
	a->clockInfo.resetCount = 7;
	a->clockInfo.restartCount = 1;
	a->clockInfo.safe = TPM2_YES;
	a->firmwareVersion = 0x2000000000000ull;
	set_selection(a, f->sel.mask);
	pcr_digest(&f->sel, f->values, &a->attested.quote.pcrDigest);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;

	EVP_PKEY_free(f->key);
	free(f->pem);
	free(f->log);
	free(f);
	return 0;
}

static size_t
marshal_attest(const TPMS_ATTEST *a, uint8_t *buf, size_t cap)
{
	size_t off = 0;

	assert_int_equal(Tss2_MU_TPMS_ATTEST_Marshal(a, buf, cap, &off), 0);
	return off;
}

/* ECDSA-SHA256 over msg with key, as a marshalled TPMT_SIGNATURE. */
static size_t
sign(EVP_PKEY *key, const uint8_t *msg, size_t len, uint8_t *out, size_t cap)
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	unsigned char der[128];
	const unsigned char *p = der;
	size_t der_len = sizeof(der), off = 0;
	ECDSA_SIG *es;
	const BIGNUM *r, *s;
	TPMT_SIGNATURE sig;

	assert_non_null(md);
	assert_int_equal(EVP_DigestSignInit_ex(md, NULL, "SHA256", NULL, NULL, key, NULL), 1);
	assert_int_equal(EVP_DigestSign(md, der, &der_len, msg, len), 1);
	EVP_MD_CTX_free(md);
	es = d2i_ECDSA_SIG(NULL, &p, (long)der_len);
	assert_non_null(es);
	ECDSA_SIG_get0(es, &r, &s);
	memset(&sig, 0, sizeof(sig));
	sig.sigAlg = TPM2_ALG_ECDSA;
	sig.signature.ecdsa.hash = TPM2_ALG_SHA256;
	/* The TPM writes r and s at the curve's full size. */
	sig.signature.ecdsa.signatureR.size = 32;
	sig.signature.ecdsa.signatureS.size = 32;
	assert_int_equal(BN_bn2binpad(r, sig.signature.ecdsa.signatureR.buffer, 32), 32);
	assert_int_equal(BN_bn2binpad(s, sig.signature.ecdsa.signatureS.buffer, 32), 32);
	ECDSA_SIG_free(es);
	assert_int_equal(Tss2_MU_TPMT_SIGNATURE_Marshal(&sig, out, cap, &off), 0);
	return off;
}

/* The document for attestation bytes a (signed with key), f's values and
 * the log text given. */
static json_t *
document(struct fixture *f, const uint8_t *a, size_t alen, EVP_PKEY *key, const char *log,
    size_t log_len)
{
	uint8_t sig[sizeof(TPMT_SIGNATURE)];
	size_t slen = sign(key, a, alen, sig, sizeof(sig));
	json_t *doc;

	doc = quote_document(a, alen, sig, slen, &f->sel, (const uint8_t (*)[32])f->values,
	    LAUNCH_PCR, log, log_len);
	assert_non_null(doc);
	return doc;
}

static json_t *
good_document(struct fixture *f)
{
	uint8_t buf[sizeof(TPMS_ATTEST)];
	size_t n = marshal_attest(&f->attest, buf, sizeof(buf));

	return document(f, buf, n, f->key, f->log, f->log_len);
}

static const char *
verify_fails(struct fixture *f, const json_t *doc, const uint8_t *n, size_t nlen)
{
	json_t *report = (json_t *)0x1;
	const char *reason = NULL;

	assert_int_not_equal(quote_verify(doc, f->pem, f->pem_len, n, nlen, &report, &reason), 0);
	assert_ptr_equal(report, (json_t *)0x1);
	assert_non_null(reason);
	return reason;
}

static void
expect(struct fixture *f, json_t *doc, const char *why)
{
	assert_string_equal(verify_fails(f, doc, nonce, sizeof(nonce)), why);
	json_decref(doc);
}

/* ---- tests ----------------------------------------------------------- */

static void
test_accepts(void **state)
{
	struct fixture *f = *state;
	json_t *doc = good_document(f), *report = NULL, *parsed = NULL, *l;
	const char *reason = NULL;
	char *text = NULL, hex[65];
	uint8_t ld[32];
	size_t len = 0;

	assert_string_equal(cjson_get_str(doc, "pcr_selection"), "sha256:0,2,4,7,15");
	assert_int_equal(json_integer_value(json_object_get(doc, "launch_pcr")), 15);
	assert_int_equal(json_object_size(json_object_get(doc, "pcrs")), 5);
	format_hex(f->values[15], 32, hex);
	assert_string_equal(cjson_get_str(json_object_get(doc, "pcrs"), "15"), hex);
	assert_string_equal(cjson_get_str(doc, "event_log"), f->log);

	/* Through its text form, as attestctl sees it. */
	assert_int_equal(cjson_dump(doc, &text, &len), 0);
	assert_int_equal(cjson_parse(text, len, 1 << 20, &parsed), 0);
	assert_int_equal(quote_verify(parsed, f->pem, f->pem_len, nonce, sizeof(nonce),
	    &report, &reason), 0);
	assert_true(json_is_true(json_object_get(report, "valid")));
	assert_true(json_equal(json_object_get(report, "pcrs"), json_object_get(doc, "pcrs")));
	assert_int_equal(json_integer_value(json_object_get(report, "records")), 8);
	l = json_object_get(report, "launches");
	assert_int_equal(json_array_size(l), 2);
	assert_string_equal(cjson_get_str(json_array_get(l, 0), "vm"), "vm-1");
	assert_string_equal(cjson_get_str(json_array_get(l, 1), "vm"), "vm-2");
	/* Launch digest: SHA-256 over the four record digests of vm-1. */
	{
		uint8_t d[4][32];
		struct eventlog_event ev;
		const char *p = f->log;
		int i;

		for (i = 0; i < 4; i++) {
			const char *nl = strchr(p, '\n');

			assert_int_equal(eventlog_parse_line(p, (size_t)(nl - p), &ev), 0);
			memcpy(d[i], ev.digest, 32);
			json_decref(ev.content);
			p = nl + 1;
		}
		SHA256(d[0], sizeof(d), ld);
		format_hex(ld, 32, hex);
		assert_string_equal(cjson_get_str(json_array_get(l, 0), "launch_digest"), hex);
	}
	json_decref(report);
	json_decref(parsed);
	json_decref(doc);
	free(text);
}

static void
test_empty_log(void **state)
{
	struct fixture *f = *state;
	uint8_t buf[sizeof(TPMS_ATTEST)];
	json_t *doc, *report = NULL;
	size_t n;

	memset(f->values[15], 0, 32);
	pcr_digest(&f->sel, f->values, &f->attest.attested.quote.pcrDigest);
	n = marshal_attest(&f->attest, buf, sizeof(buf));
	doc = document(f, buf, n, f->key, "", 0);
	assert_int_equal(quote_verify(doc, f->pem, f->pem_len, nonce, sizeof(nonce), &report,
	    NULL), 0);
	assert_int_equal(json_array_size(json_object_get(report, "launches")), 0);
	json_decref(report);
	json_decref(doc);
}

static void
test_wrong_nonce(void **state)
{
	struct fixture *f = *state;
	json_t *doc = good_document(f);
	uint8_t other[sizeof(nonce)];

	memcpy(other, nonce, sizeof(nonce));
	other[3] ^= 1;
	assert_string_equal(verify_fails(f, doc, other, sizeof(other)), "nonce_mismatch");
	assert_string_equal(verify_fails(f, doc, nonce, sizeof(nonce) - 1), "nonce_mismatch");
	assert_string_equal(verify_fails(f, doc, nonce, 0), "bad_nonce");
	assert_string_equal(verify_fails(f, doc, NULL, 4), "bad_nonce");
	{
		uint8_t big[QUOTE_NONCE_MAX + 1];

		memset(big, 1, sizeof(big));
		assert_string_equal(verify_fails(f, doc, big, sizeof(big)), "bad_nonce");
	}
	json_decref(doc);
}

static void
test_wrong_type_and_magic(void **state)
{
	struct fixture *f = *state;
	uint8_t buf[sizeof(TPMS_ATTEST)];
	TPMS_ATTEST a;
	size_t n;

	a = f->attest;
	a.magic = 0xff544348;    /* not TPM_GENERATED_VALUE */
	n = marshal_attest(&a, buf, sizeof(buf));
	expect(f, document(f, buf, n, f->key, f->log, f->log_len), "bad_magic");

	/* A certification signed by the same key is not a quote; its body
	 * unmarshals differently, so forge the type over quote-shaped bytes. */
	a = f->attest;
	n = marshal_attest(&a, buf, sizeof(buf));
	buf[4] = (uint8_t)(TPM2_ST_ATTEST_CERTIFY >> 8);
	buf[5] = (uint8_t)(TPM2_ST_ATTEST_CERTIFY & 0xff);
	/* TPMS_CERTIFY_INFO is two TPM2B_NAMEs; our quote body is not, so this
	 * either fails to unmarshal or leaves bytes: both must be refused. */
	{
		json_t *doc = document(f, buf, n, f->key, f->log, f->log_len);
		const char *why = verify_fails(f, doc, nonce, sizeof(nonce));

		assert_true(strcmp(why, "wrong_type") == 0 || strcmp(why, "malformed") == 0);
		json_decref(doc);
	}
	/* A well-formed TPMS_ATTEST of another type. */
	memset(&a, 0, sizeof(a));
	a = f->attest;
	a.type = TPM2_ST_ATTEST_CERTIFY;
	memset(&a.attested, 0, sizeof(a.attested));
	a.attested.certify.name.size = 2;
	a.attested.certify.qualifiedName.size = 2;
	n = marshal_attest(&a, buf, sizeof(buf));
	expect(f, document(f, buf, n, f->key, f->log, f->log_len), "wrong_type");
}

static void
test_altered_pcr_value(void **state)
{
	struct fixture *f = *state;
	json_t *doc = good_document(f);
	json_t *pcrs = json_object_get(doc, "pcrs");
	char hex[65];
	uint8_t v[32];

	memcpy(v, f->values[0], 32);
	v[31] ^= 1;
	format_hex(v, 32, hex);
	assert_int_equal(json_object_set_new(pcrs, "0", json_string(hex)), 0);
	expect(f, doc, "pcr_digest_mismatch");

	/* The launch PCR's listed value altered too. */
	doc = good_document(f);
	pcrs = json_object_get(doc, "pcrs");
	memcpy(v, f->values[15], 32);
	v[0] ^= 0x80;
	format_hex(v, 32, hex);
	assert_int_equal(json_object_set_new(pcrs, "15", json_string(hex)), 0);
	expect(f, doc, "pcr_digest_mismatch");
}

/* A TPM whose launch PCR holds something the log does not explain: the
 * quote is genuine, the log is not the one that was extended. */
static void
test_log_does_not_explain_pcr(void **state)
{
	struct fixture *f = *state;

	f->values[15][0] ^= 1;
	pcr_digest(&f->sel, f->values, &f->attest.attested.quote.pcrDigest);
	expect(f, good_document(f), "event_log_mismatch");
}

static json_t *
with_log(json_t *doc, const char *log, size_t len)
{
	assert_int_equal(json_object_set_new(doc, "event_log", json_stringn(log, len)), 0);
	return doc;
}

static void
test_altered_event_log(void **state)
{
	struct fixture *f = *state;
	char *log = strdup(f->log), *p, *nl;
	size_t len = f->log_len, first;

	assert_non_null(log);
	/* One byte of a record. */
	p = strstr(log, "\"size\":10");
	p[8] = '9';
	expect(f, with_log(good_document(f), log, len), "digest_mismatch");
	p[8] = '0';
	/* A line dropped. */
	nl = strchr(log, '\n');
	first = (size_t)(nl - log) + 1;
	expect(f, with_log(good_document(f), log + first, len - first), "recnum_gap");
	/* The last line dropped, or cut short. */
	log[len - 1] = '\0';
	p = strrchr(log, '\n');
	log[len - 1] = '\n';
	expect(f, with_log(good_document(f), log, (size_t)(p - log) + 1), "incomplete_launch");
	expect(f, with_log(good_document(f), log, len - 1), "unterminated_line");
	{
		/* Two lines swapped. */
		char *swapped = malloc(len + 1);
		size_t l1 = first, l2 = (size_t)(strchr(log + first, '\n') - (log + first)) + 1;

		assert_non_null(swapped);
		memcpy(swapped, log + l1, l2);
		memcpy(swapped + l2, log, l1);
		memcpy(swapped + l1 + l2, log + l1 + l2, len - l1 - l2 + 1);
		expect(f, with_log(good_document(f), swapped, len), "recnum_gap");
		free(swapped);
	}
	/* A whole launch removed from the end: replays, but not to the PCR. */
	{
		size_t half = 0;
		int lines = 0;

		while (lines < 4) {
			if (log[half++] == '\n')
				lines++;
		}
		expect(f, with_log(good_document(f), log, half), "event_log_mismatch");
	}
	/* Empty log against a non-zero PCR. */
	expect(f, with_log(good_document(f), "", 0), "event_log_mismatch");
	free(log);
}

static void
test_wrong_key(void **state)
{
	struct fixture *f = *state;
	EVP_PKEY *other = new_key("P-256"), *p384 = new_key("P-384");
	uint8_t buf[sizeof(TPMS_ATTEST)];
	json_t *doc, *report = NULL;
	const char *reason = NULL;
	char *pem;
	size_t n, pem_len;

	n = marshal_attest(&f->attest, buf, sizeof(buf));
	expect(f, document(f, buf, n, other, f->log, f->log_len), "bad_signature");

	/* A P-384 key is refused as the AK before anything else. */
	doc = good_document(f);
	pem = pem_of(p384, &pem_len);
	assert_int_equal(quote_verify(doc, pem, pem_len, nonce, sizeof(nonce), &report, &reason),
	    -EINVAL);
	assert_string_equal(reason, "bad_key");
	free(pem);
	assert_int_equal(quote_verify(doc, "junk", 4, nonce, sizeof(nonce), &report, &reason),
	    -EINVAL);
	assert_string_equal(reason, "bad_key");
	assert_int_equal(quote_verify(doc, f->pem, f->pem_len - 30, nonce, sizeof(nonce),
	    &report, &reason), -EINVAL);
	assert_string_equal(reason, "bad_key");
	assert_null(report);
	json_decref(doc);
	EVP_PKEY_free(other);
	EVP_PKEY_free(p384);
}

static void
test_truncated_attest(void **state)
{
	struct fixture *f = *state;
	uint8_t buf[sizeof(TPMS_ATTEST) + 1], sig[sizeof(TPMT_SIGNATURE)];
	size_t n = marshal_attest(&f->attest, buf, sizeof(buf)), slen, cut;
	json_t *doc;

	/* Cut after signing: the signature no longer matches. */
	slen = sign(f->key, buf, n, sig, sizeof(sig));
	doc = quote_document(buf, n - 1, sig, slen, &f->sel, (const uint8_t (*)[32])f->values,
	    LAUNCH_PCR, f->log, f->log_len);
	assert_non_null(doc);
	expect(f, doc, "bad_signature");

	/* Cut, then signed (a signer that signs anything): every cut is
	 * malformed, never read past its end. */
	for (cut = 1; cut < n; cut++)
		expect(f, document(f, buf, cut, f->key, f->log, f->log_len), "malformed");
	/* One byte too many. */
	buf[n] = 0;
	expect(f, document(f, buf, n + 1, f->key, f->log, f->log_len), "malformed");
}

static void
test_signature_forms(void **state)
{
	struct fixture *f = *state;
	uint8_t buf[sizeof(TPMS_ATTEST)], sig[sizeof(TPMT_SIGNATURE) + 1];
	size_t n = marshal_attest(&f->attest, buf, sizeof(buf)), slen, off;
	TPMT_SIGNATURE s;
	json_t *doc;

	slen = sign(f->key, buf, n, sig, sizeof(sig));
	/* A bit flipped in s. */
	sig[slen - 1] ^= 1;
	doc = quote_document(buf, n, sig, slen, &f->sel, (const uint8_t (*)[32])f->values,
	    LAUNCH_PCR, f->log, f->log_len);
	expect(f, doc, "bad_signature");
	sig[slen - 1] ^= 1;
	/* Trailing byte after the TPMT_SIGNATURE. */
	sig[slen] = 0;
	doc = quote_document(buf, n, sig, slen + 1, &f->sel, (const uint8_t (*)[32])f->values,
	    LAUNCH_PCR, f->log, f->log_len);
	expect(f, doc, "malformed");
	/* Another scheme or hash. */
	off = 0;
	assert_int_equal(Tss2_MU_TPMT_SIGNATURE_Unmarshal(sig, slen, &off, &s), 0);
	s.signature.ecdsa.hash = TPM2_ALG_SHA384;
	off = 0;
	assert_int_equal(Tss2_MU_TPMT_SIGNATURE_Marshal(&s, sig, sizeof(sig), &off), 0);
	doc = quote_document(buf, n, sig, off, &f->sel, (const uint8_t (*)[32])f->values,
	    LAUNCH_PCR, f->log, f->log_len);
	expect(f, doc, "unsupported_signature");
	s.sigAlg = TPM2_ALG_ECSCHNORR;
	s.signature.ecdsa.hash = TPM2_ALG_SHA256;
	off = 0;
	assert_int_equal(Tss2_MU_TPMT_SIGNATURE_Marshal(&s, sig, sizeof(sig), &off), 0);
	doc = quote_document(buf, n, sig, off, &f->sel, (const uint8_t (*)[32])f->values,
	    LAUNCH_PCR, f->log, f->log_len);
	expect(f, doc, "unsupported_signature");
	/* r of zero length. */
	s.sigAlg = TPM2_ALG_ECDSA;
	s.signature.ecdsa.signatureR.size = 0;
	off = 0;
	assert_int_equal(Tss2_MU_TPMT_SIGNATURE_Marshal(&s, sig, sizeof(sig), &off), 0);
	doc = quote_document(buf, n, sig, off, &f->sel, (const uint8_t (*)[32])f->values,
	    LAUNCH_PCR, f->log, f->log_len);
	expect(f, doc, "bad_signature");
}

static void
test_selection_mismatch(void **state)
{
	struct fixture *f = *state;
	uint8_t buf[sizeof(TPMS_ATTEST)];
	TPMS_ATTEST a = f->attest;
	size_t n;

	/* The TPM quoted 0,2,4,15; the document claims 0,2,4,7,15. */
	set_selection(&a, f->sel.mask & ~(1u << 7));
	n = marshal_attest(&a, buf, sizeof(buf));
	expect(f, document(f, buf, n, f->key, f->log, f->log_len), "pcr_selection_mismatch");

	/* Another bank. */
	a = f->attest;
	a.attested.quote.pcrSelect.pcrSelections[0].hash = TPM2_ALG_SHA1;
	n = marshal_attest(&a, buf, sizeof(buf));
	expect(f, document(f, buf, n, f->key, f->log, f->log_len), "pcr_selection_mismatch");

	/* Two banks. */
	a = f->attest;
	a.attested.quote.pcrSelect.count = 2;
	a.attested.quote.pcrSelect.pcrSelections[1] = a.attested.quote.pcrSelect.pcrSelections[0];
	a.attested.quote.pcrSelect.pcrSelections[1].hash = TPM2_ALG_SHA1;
	n = marshal_attest(&a, buf, sizeof(buf));
	expect(f, document(f, buf, n, f->key, f->log, f->log_len), "pcr_selection_mismatch");

	/* A digest of another length. */
	a = f->attest;
	a.attested.quote.pcrDigest.size = 20;
	n = marshal_attest(&a, buf, sizeof(buf));
	expect(f, document(f, buf, n, f->key, f->log, f->log_len), "pcr_digest_mismatch");
}

static void
test_malformed_documents(void **state)
{
	struct fixture *f = *state;
	static const char *const drop[] = {
		"attest", "signature", "pcr_selection", "pcrs", "launch_pcr", "event_log",
	};
	json_t *doc;
	size_t i;

	for (i = 0; i < sizeof(drop) / sizeof(drop[0]); i++) {
		doc = good_document(f);
		assert_int_equal(json_object_del(doc, drop[i]), 0);
		expect(f, doc, "malformed");
	}
	doc = good_document(f);
	json_object_set_new(doc, "nonce", json_string("00"));
	expect(f, doc, "malformed");
	doc = good_document(f);
	json_object_set_new(doc, "attest", json_string("AAA="));
	expect(f, doc, "malformed");
	doc = good_document(f);
	json_object_set_new(doc, "signature", json_integer(1));
	expect(f, doc, "malformed");
	doc = good_document(f);
	json_object_set_new(doc, "attest", json_string(""));
	expect(f, doc, "malformed");
	doc = good_document(f);
	json_object_set_new(doc, "launch_pcr", json_integer(16));
	expect(f, doc, "malformed");
	doc = good_document(f);
	json_object_set_new(doc, "launch_pcr", json_string("15"));
	expect(f, doc, "malformed");
	doc = good_document(f);
	json_object_set_new(doc, "pcr_selection", json_string("sha256:0,2,4,7,15,16"));
	expect(f, doc, "malformed");
	doc = good_document(f);
	json_object_set_new(doc, "pcr_selection", json_string("sha1:0,2,4,7,15"));
	expect(f, doc, "malformed");
	doc = good_document(f);
	json_object_del(json_object_get(doc, "pcrs"), "7");
	expect(f, doc, "malformed");
	doc = good_document(f);
	json_object_set_new(json_object_get(doc, "pcrs"), "8", json_string(
	    "0000000000000000000000000000000000000000000000000000000000000000"));
	expect(f, doc, "malformed");
	doc = good_document(f);
	json_object_set_new(json_object_get(doc, "pcrs"), "07", json_object_get(
	    json_object_get(doc, "pcrs"), "7"));
	json_incref(json_object_get(json_object_get(doc, "pcrs"), "07"));
	json_object_del(json_object_get(doc, "pcrs"), "7");
	expect(f, doc, "malformed");
	doc = good_document(f);
	json_object_set_new(json_object_get(doc, "pcrs"), "0", json_string("00"));
	expect(f, doc, "malformed");
	doc = good_document(f);
	json_object_set_new(doc, "event_log", json_null());
	expect(f, doc, "malformed");
	doc = json_array();
	expect(f, doc, "malformed");
	assert_string_equal(verify_fails(f, NULL, nonce, sizeof(nonce)), "malformed");
}

static void
test_document_refuses(void **state)
{
	struct fixture *f = *state;
	const uint8_t (*v)[32] = (const uint8_t (*)[32])f->values;
	struct tpm_pcr_sel none = { TPM2_ALG_SHA256, 0 }, sha1 = { TPM2_ALG_SHA1, 1 };
	uint8_t a[8] = { 0 };

	assert_null(quote_document(a, sizeof(a), a, sizeof(a), &f->sel, v, 16, "", 0));
	assert_null(quote_document(a, sizeof(a), a, sizeof(a), &f->sel, v, 24, "", 0));
	assert_null(quote_document(a, 0, a, sizeof(a), &f->sel, v, 15, "", 0));
	assert_null(quote_document(a, sizeof(a), a, 0, &f->sel, v, 15, "", 0));
	assert_null(quote_document(a, sizeof(a), a, sizeof(a), &none, v, 0, "", 0));
	assert_null(quote_document(a, sizeof(a), a, sizeof(a), &sha1, v, 0, "", 0));
	assert_null(quote_document(a, sizeof(a), a, sizeof(a), &f->sel, v, 15, "\xff\n", 2));
	assert_null(quote_document(a, sizeof(a), a, sizeof(a), &f->sel, v, 15, NULL, 3));
}

/* ---- against a TPM --------------------------------------------------- */

/* Write bytes to dir/name, for tests/integration/test_quote.sh. */
static void
dump_file(const char *dir, const char *name, const void *p, size_t n)
{
	char path[4096];
	FILE *fp;

	assert_true((size_t)snprintf(path, sizeof(path), "%s/%s", dir, name) < sizeof(path));
	fp = fopen(path, "wbx");
	assert_non_null(fp);
	assert_int_equal(fwrite(p, 1, n, fp), n);
	assert_int_equal(fclose(fp), 0);
}

static char *
ak_pem(const struct tpm_blob *ak, size_t *ret_len)
{
	uint8_t point[65];
	char group[] = "prime256v1", *pem;
	OSSL_PARAM params[3];
	EVP_PKEY_CTX *ctx;
	EVP_PKEY *pkey = NULL;

	assert_int_equal(tpm_blob_ecc_point(ak, point), 0);
	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, group, 0);
	params[1] = OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, point,
	    sizeof(point));
	params[2] = OSSL_PARAM_construct_end();
	ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
	assert_non_null(ctx);
	assert_int_equal(EVP_PKEY_fromdata_init(ctx), 1);
	assert_int_equal(EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params), 1);
	pem = pem_of(pkey, ret_len);
	EVP_PKEY_free(pkey);
	EVP_PKEY_CTX_free(ctx);
	return pem;
}

static void
assert_no_transients(struct tpm *t)
{
	unsigned objects = 9, sessions = 9;

	assert_int_equal(tpm_count_transients(t, &objects, &sessions), 0);
	assert_int_equal(objects, 0);
	assert_int_equal(sessions, 0);
}

/* tpm_quote, tpm_pcr_read_values and tpm_reset_count on the TPM named by
 * $WARRANT_TEST_TCTI (skipped without it): make the SRK if the TPM has none
 * and a fresh AK, extend the fixture's event log into PCR 15 (which must
 * still be zero: a fresh TPM), quote, and check the document with
 * quote_verify. If $WARRANT_TEST_QUOTE_OUT names a folder, leave the raw
 * parts there for tpm2_checkquote and attestctl verify-quote. */
static void
test_tpm_quote(void **state)
{
	const char *tcti = getenv("WARRANT_TEST_TCTI"), *out = getenv("WARRANT_TEST_QUOTE_OUT");
	struct fixture *f = *state;
	struct tpm *t = NULL;
	struct tpm_blob ak, bad;
	struct tpm_quote *q;
	struct tpm_pcr_sel all;
	uint8_t srk_name[TPM_NAME_MAX], vals[24][32], zero[32], big[TPM_NONCE_MAX + 1];
	size_t srk_name_len = 0, pem_len = 0, off;
	uint32_t resets = 0, resets2 = 1;
	json_t *doc, *report = NULL;
	const char *reason = NULL, *p;
	char *pem, *text = NULL;
	size_t text_len = 0;
	unsigned k;

	if (tcti == NULL || tcti[0] == '\0') {
		skip();
		return;
	}
	q = calloc(1, sizeof(*q));
	assert_non_null(q);
	assert_int_equal(tpm_open(tcti, &t), 0);
	assert_int_equal(tpm_srk_ensure(t, true, srk_name, &srk_name_len), 0);
	assert_int_equal(tpm_create_ak(t, &ak), 0);
	pem = ak_pem(&ak, &pem_len);

	assert_int_equal(tpm_reset_count(t, &resets), 0);
	assert_int_equal(tpm_reset_count(t, &resets2), 0);
	assert_int_equal(resets, resets2);

	/* All 24 PCRs: more than the 8 one TPM2_PCR_Read returns. */
	assert_int_equal(tpm_pcr_sel_parse("sha256:0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,"
	    "17,18,19,20,21,22,23", &all), 0);
	memset(vals, 0xee, sizeof(vals));
	assert_int_equal(tpm_pcr_read_values(t, &all, vals), 0);
	memset(zero, 0, sizeof(zero));
	assert_memory_equal(vals[15], zero, 32);      /* a fresh TPM */

	/* The fixture's log, extended as attestd would. */
	for (p = f->log; *p != '\0';) {
		const char *nl = strchr(p, '\n');
		struct eventlog_event ev;

		assert_int_equal(eventlog_parse_line(p, (size_t)(nl - p), &ev), 0);
		assert_int_equal(tpm_pcr_extend(t, LAUNCH_PCR, ev.digest), 0);
		json_decref(ev.content);
		p = nl + 1;
	}
	assert_int_equal(tpm_pcr_read_values(t, &f->sel, vals), 0);
	assert_memory_equal(vals[15], f->values[15], 32);

	assert_int_equal(tpm_quote(t, srk_name, srk_name_len, &ak, &f->sel, nonce, sizeof(nonce),
	    q), 0);
	assert_no_transients(t);
	for (k = 0; k < 24; k++) {
		if ((f->sel.mask & (1u << k)) != 0)
			assert_memory_equal(q->pcrs[k], vals[k], 32);
	}
	doc = quote_document(q->attest, q->attest_len, q->sig, q->sig_len, &f->sel,
	    (const uint8_t (*)[32])q->pcrs, LAUNCH_PCR, f->log, f->log_len);
	assert_non_null(doc);
	assert_int_equal(quote_verify(doc, pem, pem_len, nonce, sizeof(nonce), &report, &reason),
	    0);
	assert_int_equal(json_array_size(json_object_get(report, "launches")), 2);
	json_decref(report);
	assert_string_equal(verify_fails(f, doc, (const uint8_t *)"other", 5), "bad_signature");
	{
		/* Against its own key, the other nonce is refused as such. */
		json_t *rep = (json_t *)0x1;

		assert_int_equal(quote_verify(doc, pem, pem_len, (const uint8_t *)"other", 5, &rep,
		    &reason), -EBADMSG);
		assert_string_equal(reason, "nonce_mismatch");
	}

	if (out != NULL && out[0] != '\0') {
		uint8_t flat[24 * 32];

		dump_file(out, "attest.bin", q->attest, q->attest_len);
		dump_file(out, "sig.bin", q->sig, q->sig_len);
		for (k = 0, off = 0; k < 24; k++) {
			if ((f->sel.mask & (1u << k)) != 0) {
				memcpy(flat + off, q->pcrs[k], 32);
				off += 32;
			}
		}
		dump_file(out, "pcrs.bin", flat, off);
		dump_file(out, "ak.pem", pem, pem_len);
		dump_file(out, "nonce.bin", nonce, sizeof(nonce));
		assert_int_equal(cjson_dump(doc, &text, &text_len), 0);
		dump_file(out, "quote.json", text, text_len);
		free(text);
	}
	json_decref(doc);

	/* Refusals, none of which may leave a handle loaded. */
	assert_int_equal(tpm_quote(t, srk_name, srk_name_len, &ak, &f->sel, big, sizeof(big), q),
	    -EINVAL);
	srk_name[srk_name_len - 1] ^= 1;
	assert_int_equal(tpm_quote(t, srk_name, srk_name_len, &ak, &f->sel, nonce, sizeof(nonce),
	    q), -EBADMSG);
	srk_name[srk_name_len - 1] ^= 1;
	assert_no_transients(t);
	/* A blob whose public area is not an AK (sign attribute cleared, so
	 * the name and the TPM's check would differ too). */
	bad = ak;
	/* TPM2B_PUBLIC: size(2) type(2) nameAlg(2) objectAttributes(4, big
	 * endian); TPMA_OBJECT_SIGN_ENCRYPT is bit 18, in byte 7. */
	assert_true(bad.pub_len > 10);
	bad.pub[7] ^= 0x04;
	assert_int_equal(tpm_quote(t, srk_name, srk_name_len, &bad, &f->sel, nonce,
	    sizeof(nonce), q), -EBADMSG);
	/* A private part that the SRK did not wrap. */
	bad = ak;
	bad.priv[bad.priv_len - 1] ^= 1;
	assert_int_equal(tpm_quote(t, srk_name, srk_name_len, &bad, &f->sel, nonce,
	    sizeof(nonce), q), -EBADMSG);
	assert_no_transients(t);

	free(pem);
	free(q);
	tpm_close(t);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_accepts, setup, teardown),
		cmocka_unit_test_setup_teardown(test_empty_log, setup, teardown),
		cmocka_unit_test_setup_teardown(test_wrong_nonce, setup, teardown),
		cmocka_unit_test_setup_teardown(test_wrong_type_and_magic, setup, teardown),
		cmocka_unit_test_setup_teardown(test_altered_pcr_value, setup, teardown),
		cmocka_unit_test_setup_teardown(test_log_does_not_explain_pcr, setup, teardown),
		cmocka_unit_test_setup_teardown(test_altered_event_log, setup, teardown),
		cmocka_unit_test_setup_teardown(test_wrong_key, setup, teardown),
		cmocka_unit_test_setup_teardown(test_truncated_attest, setup, teardown),
		cmocka_unit_test_setup_teardown(test_signature_forms, setup, teardown),
		cmocka_unit_test_setup_teardown(test_selection_mismatch, setup, teardown),
		cmocka_unit_test_setup_teardown(test_malformed_documents, setup, teardown),
		cmocka_unit_test_setup_teardown(test_document_refuses, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tpm_quote, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
