#include "quote.h"

#include <errno.h>
#include <limits.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <tss2/tss2_mu.h>
#include <tss2/tss2_tpm2_types.h>

#include "b64url.h"
#include "cjson.h"
#include "eventlog.h"
#include "parse.h"

#define PCR_COUNT     24
#define ATTEST_MAX    sizeof(TPMS_ATTEST)       /* TPM2B_ATTEST's buffer */
#define SIG_MAX       sizeof(TPMT_SIGNATURE)    /* more than any marshalled one */
#define AK_PEM_MAX    16384
#define P256_BYTES    32

/* Every rejection names itself with one of these; an event log that does
 * not replay gives eventlog_replay's own reason (docs/event-log.md). */
#define R_MALFORMED   "malformed"
#define R_BAD_NONCE   "bad_nonce"
#define R_BAD_KEY     "bad_key"
#define R_SIG_ALG     "unsupported_signature"
#define R_BAD_SIG     "bad_signature"
#define R_MAGIC       "bad_magic"
#define R_TYPE        "wrong_type"
#define R_NONCE       "nonce_mismatch"
#define R_SELECTION   "pcr_selection_mismatch"
#define R_PCR_DIGEST  "pcr_digest_mismatch"
#define R_LOG         "event_log_mismatch"
#define R_NOMEM       "out_of_memory"

static const char *const doc_keys[] = {
	"attest", "event_log", "launch_pcr", "pcr_selection", "pcrs", "signature", NULL,
};

static bool
sel_ok(const struct tpm_pcr_sel *sel)
{
	return sel != NULL && sel->bank == TPM2_ALG_SHA256 && sel->mask != 0 &&
	    (sel->mask >> PCR_COUNT) == 0;
}

static json_t *
b64_string(const uint8_t *p, size_t n)
{
	size_t cap = b64url_encoded_len(n) + 1;
	json_t *j = NULL;
	char *s;

	s = malloc(cap);
	if (s == NULL) {
		return NULL;
	}
	if (b64url_encode(p, n, s, cap) == 0) {
		j = json_string(s);
	}
	free(s);
	return j;
}

static json_t *
hex_string(const uint8_t *p, size_t n)
{
	char hex[2 * 64 + 1];

	if (n > 64) {
		return NULL;
	}
	format_hex(p, n, hex);
	return json_string(hex);
}

json_t *
quote_document(const uint8_t *attest, size_t attest_len, const uint8_t *sig,
    size_t sig_len, const struct tpm_pcr_sel *sel, const uint8_t values[24][32],
    unsigned launch_pcr, const char *event_log, size_t event_log_len)
{
	json_t *doc = NULL, *pcrs = NULL, *ret = NULL;
	char sel_str[TPM_PCR_SEL_STR_MAX], key[4];
	unsigned i;

	if (attest == NULL || attest_len == 0 || attest_len > ATTEST_MAX || sig == NULL ||
	    sig_len == 0 || sig_len > SIG_MAX || !sel_ok(sel) || values == NULL ||
	    launch_pcr >= PCR_COUNT || (sel->mask & (1u << launch_pcr)) == 0 ||
	    (event_log == NULL && event_log_len != 0) || event_log_len > EVENTLOG_MAX_BYTES) {
		goto out;
	}
	if (tpm_pcr_sel_format(sel, sel_str, sizeof(sel_str)) != 0) {
		goto out;
	}
	pcrs = json_object();
	if (pcrs == NULL) {
		goto out;
	}
	for (i = 0; i < PCR_COUNT; i++) {
		if ((sel->mask & (1u << i)) == 0) {
			continue;
		}
		(void)snprintf(key, sizeof(key), "%u", i);
		if (json_object_set_new(pcrs, key, hex_string(values[i], 32)) != 0) {
			goto out;
		}
	}
	/* json_stringn refuses bytes that are not UTF-8: a log attestd wrote
	 * is canonical JSON lines, so that never happens for a good one. */
	doc = json_pack("{s:o,s:o,s:s,s:O,s:I,s:o}",
	    "attest", b64_string(attest, attest_len),
	    "signature", b64_string(sig, sig_len),
	    "pcr_selection", sel_str,
	    "pcrs", pcrs,
	    "launch_pcr", (json_int_t)launch_pcr,
	    "event_log", json_stringn(event_log != NULL ? event_log : "", event_log_len));
	if (doc == NULL) {
		goto out;
	}
	ret = doc;
	doc = NULL;
out:
	json_decref(pcrs);
	json_decref(doc);
	return ret;
}

/* ---- verification ---------------------------------------------------- */

/* A quote document's fields, decoded and checked for form only. */
struct qdoc {
	uint8_t attest[ATTEST_MAX];
	size_t attest_len;
	uint8_t sig[SIG_MAX];
	size_t sig_len;
	struct tpm_pcr_sel sel;
	uint8_t values[PCR_COUNT][32];
	unsigned launch_pcr;
	const char *log;      /* borrowed from the document */
	size_t log_len;
};

static int
decode_b64(const json_t *j, uint8_t *out, size_t cap, size_t *ret_len)
{
	const char *s = json_string_value(j);

	if (s == NULL) {
		return -EINVAL;
	}
	return b64url_decode(s, json_string_length(j), out, cap, ret_len);
}

static int
decode_doc(const json_t *doc, struct qdoc *q)
{
	const json_t *pcrs, *lp, *log;
	const char *key;
	json_t *v;
	unsigned i, n = 0;

	if (!json_is_object(doc) || cjson_only_keys(doc, doc_keys, NULL) != 0) {
		return -EINVAL;
	}
	if (decode_b64(json_object_get(doc, "attest"), q->attest, sizeof(q->attest),
	    &q->attest_len) != 0 || q->attest_len == 0) {
		return -EINVAL;
	}
	if (decode_b64(json_object_get(doc, "signature"), q->sig, sizeof(q->sig),
	    &q->sig_len) != 0 || q->sig_len == 0) {
		return -EINVAL;
	}
	if (tpm_pcr_sel_parse(cjson_get_str(doc, "pcr_selection"), &q->sel) != 0) {
		return -EINVAL;
	}
	lp = json_object_get(doc, "launch_pcr");
	if (!json_is_integer(lp) || json_integer_value(lp) < 0 ||
	    json_integer_value(lp) >= PCR_COUNT ||
	    (q->sel.mask & (1u << json_integer_value(lp))) == 0) {
		return -EINVAL;
	}
	q->launch_pcr = (unsigned)json_integer_value(lp);
	log = json_object_get(doc, "event_log");
	if (!json_is_string(log)) {
		return -EINVAL;
	}
	q->log = json_string_value(log);
	q->log_len = json_string_length(log);

	/* pcrs names exactly the selected PCRs, in their canonical decimal. */
	pcrs = json_object_get(doc, "pcrs");
	if (!json_is_object(pcrs)) {
		return -EINVAL;
	}
	json_object_foreach((json_t *)pcrs, key, v) {
		uint64_t idx;

		if (parse_u64(key, 0, PCR_COUNT - 1, &idx) != 0 ||
		    (q->sel.mask & (1u << idx)) == 0 ||
		    parse_hex(json_string_value(v), q->values[idx], 32) != 0) {
			return -EINVAL;
		}
		n++;
	}
	for (i = 0; i < PCR_COUNT; i++) {
		if ((q->sel.mask & (1u << i)) != 0) {
			n--;
		}
	}
	return n == 0 ? 0 : -EINVAL;
}

/* The AK: an EC P-256 public key in PEM (SubjectPublicKeyInfo). */
static int
load_ak(const char *pem, size_t len, EVP_PKEY **ret)
{
	BIO *bio = NULL;
	EVP_PKEY *pkey = NULL;
	char group[32];
	size_t glen = 0;
	int r = -EINVAL;

	if (pem == NULL || len == 0 || len > AK_PEM_MAX) {
		goto out;
	}
	bio = BIO_new_mem_buf(pem, (int)len);
	if (bio == NULL) {
		r = -ENOMEM;
		goto out;
	}
	pkey = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
	if (pkey == NULL || !EVP_PKEY_is_a(pkey, "EC") ||
	    EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_GROUP_NAME, group,
	    sizeof(group), &glen) != 1 || strcmp(group, "prime256v1") != 0) {
		goto out;
	}
	*ret = pkey;
	pkey = NULL;
	r = 0;
out:
	EVP_PKEY_free(pkey);
	BIO_free(bio);
	return r;
}

/* The TPM's ECDSA signature (r, s as big-endian integers) in the DER form
 * OpenSSL verifies. */
static int
ecdsa_der(const TPMS_SIGNATURE_ECC *e, uint8_t **ret, size_t *ret_len)
{
	ECDSA_SIG *sig = NULL;
	BIGNUM *br = NULL, *bs = NULL;
	unsigned char *der = NULL;
	int n, r = -EINVAL;

	if (e->signatureR.size == 0 || e->signatureR.size > P256_BYTES ||
	    e->signatureS.size == 0 || e->signatureS.size > P256_BYTES) {
		goto out;
	}
	sig = ECDSA_SIG_new();
	br = BN_bin2bn(e->signatureR.buffer, e->signatureR.size, NULL);
	bs = BN_bin2bn(e->signatureS.buffer, e->signatureS.size, NULL);
	if (sig == NULL || br == NULL || bs == NULL || ECDSA_SIG_set0(sig, br, bs) != 1) {
		r = -ENOMEM;
		goto out;
	}
	br = NULL;   /* owned by sig now */
	bs = NULL;
	n = i2d_ECDSA_SIG(sig, &der);
	if (n <= 0) {
		r = -ENOMEM;
		goto out;
	}
	*ret = der;
	*ret_len = (size_t)n;
	der = NULL;
	r = 0;
out:
	OPENSSL_free(der);
	BN_free(br);
	BN_free(bs);
	ECDSA_SIG_free(sig);
	return r;
}

/* Check the signature over the attestation bytes exactly as received,
 * before anything in them is believed. */
static int
check_signature(const struct qdoc *q, EVP_PKEY *ak, const char **ret_reason)
{
	TPMT_SIGNATURE sig;
	EVP_MD_CTX *md = NULL;
	uint8_t *der = NULL;
	size_t der_len = 0, off = 0;
	int r, v;

	memset(&sig, 0, sizeof(sig));
	if (Tss2_MU_TPMT_SIGNATURE_Unmarshal(q->sig, q->sig_len, &off, &sig) != 0 ||
	    off != q->sig_len) {
		*ret_reason = R_MALFORMED;
		r = -EINVAL;
		goto out;
	}
	if (sig.sigAlg != TPM2_ALG_ECDSA || sig.signature.ecdsa.hash != TPM2_ALG_SHA256) {
		*ret_reason = R_SIG_ALG;
		r = -EINVAL;
		goto out;
	}
	r = ecdsa_der(&sig.signature.ecdsa, &der, &der_len);
	if (r != 0) {
		*ret_reason = r == -ENOMEM ? R_NOMEM : R_BAD_SIG;
		goto out;
	}
	md = EVP_MD_CTX_new();
	if (md == NULL || EVP_DigestVerifyInit_ex(md, NULL, "SHA256", NULL, NULL, ak,
	    NULL) != 1) {
		*ret_reason = R_NOMEM;
		r = -ENOMEM;
		goto out;
	}
	v = EVP_DigestVerify(md, der, der_len, q->attest, q->attest_len);
	if (v != 1) {
		*ret_reason = R_BAD_SIG;
		r = -EBADMSG;
		goto out;
	}
	r = 0;
out:
	EVP_MD_CTX_free(md);
	OPENSSL_free(der);
	return r;
}

static uint32_t
tpml_mask(const TPML_PCR_SELECTION *l, bool *ret_ok)
{
	const TPMS_PCR_SELECTION *s = &l->pcrSelections[0];
	uint32_t mask = 0;
	unsigned i;

	*ret_ok = false;
	if (l->count != 1 || s->hash != TPM2_ALG_SHA256 || s->sizeofSelect > 4) {
		return 0;
	}
	for (i = 0; i < s->sizeofSelect; i++) {
		mask |= (uint32_t)s->pcrSelect[i] << (8 * i);
	}
	*ret_ok = (mask >> PCR_COUNT) == 0;
	return mask;
}

/* What the signed attestation says, against the nonce and the document. */
static int
check_attest(const struct qdoc *q, const uint8_t *nonce, size_t nonce_len,
    const char **ret_reason)
{
	TPMS_ATTEST a;
	EVP_MD_CTX *md = NULL;
	uint8_t digest[32];
	unsigned i, len = 0;
	size_t off = 0;
	bool sel_valid;
	int r = -EBADMSG;

	memset(&a, 0, sizeof(a));
	if (Tss2_MU_TPMS_ATTEST_Unmarshal(q->attest, q->attest_len, &off, &a) != 0 ||
	    off != q->attest_len) {
		*ret_reason = R_MALFORMED;
		r = -EINVAL;
		goto out;
	}
	if (a.magic != TPM2_GENERATED_VALUE) {
		*ret_reason = R_MAGIC;
		goto out;
	}
	if (a.type != TPM2_ST_ATTEST_QUOTE) {
		*ret_reason = R_TYPE;
		goto out;
	}
	if (a.extraData.size != nonce_len ||
	    CRYPTO_memcmp(a.extraData.buffer, nonce, nonce_len) != 0) {
		*ret_reason = R_NONCE;
		goto out;
	}
	if (tpml_mask(&a.attested.quote.pcrSelect, &sel_valid) != q->sel.mask || !sel_valid) {
		*ret_reason = R_SELECTION;
		goto out;
	}
	/* pcrDigest: SHA-256 over the selected values in index order. */
	md = EVP_MD_CTX_new();
	if (md == NULL || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1) {
		*ret_reason = R_NOMEM;
		r = -ENOMEM;
		goto out;
	}
	for (i = 0; i < PCR_COUNT; i++) {
		if ((q->sel.mask & (1u << i)) != 0 && EVP_DigestUpdate(md, q->values[i], 32) != 1) {
			*ret_reason = R_NOMEM;
			r = -ENOMEM;
			goto out;
		}
	}
	if (EVP_DigestFinal_ex(md, digest, &len) != 1 || len != 32) {
		*ret_reason = R_NOMEM;
		r = -ENOMEM;
		goto out;
	}
	if (a.attested.quote.pcrDigest.size != 32 ||
	    memcmp(a.attested.quote.pcrDigest.buffer, digest, 32) != 0) {
		*ret_reason = R_PCR_DIGEST;
		goto out;
	}
	r = 0;
out:
	EVP_MD_CTX_free(md);
	return r;
}

static int
add_launch(void *ctx, const char *vm_id, const uint8_t launch_digest[32],
    const json_t *config)
{
	json_t *launches = ctx, *l;

	(void)config;
	l = json_pack("{s:s,s:o}", "vm", vm_id, "launch_digest", hex_string(launch_digest, 32));
	if (l == NULL || json_array_append_new(launches, l) != 0) {
		return -ENOMEM;
	}
	return 0;
}

int
quote_verify(const json_t *doc, const char *ak_pem, size_t ak_pem_len,
    const uint8_t *nonce, size_t nonce_len, json_t **ret_report, const char **ret_reason)
{
	struct qdoc *q = NULL;
	EVP_PKEY *ak = NULL;
	json_t *launches = NULL, *report = NULL;
	const char *reason = R_MALFORMED;
	uint8_t replayed[32];
	uint64_t records = 0;
	int r;

	if (ret_report == NULL) {
		r = -EINVAL;
		goto out;
	}
	if (nonce == NULL || nonce_len == 0 || nonce_len > QUOTE_NONCE_MAX) {
		reason = R_BAD_NONCE;
		r = -EINVAL;
		goto out;
	}
	r = load_ak(ak_pem, ak_pem_len, &ak);
	if (r != 0) {
		reason = r == -ENOMEM ? R_NOMEM : R_BAD_KEY;
		goto out;
	}
	q = calloc(1, sizeof(*q));
	if (q == NULL) {
		reason = R_NOMEM;
		r = -ENOMEM;
		goto out;
	}
	r = decode_doc(doc, q);
	if (r != 0) {
		reason = R_MALFORMED;
		goto out;
	}
	r = check_signature(q, ak, &reason);
	if (r != 0) {
		goto out;
	}
	r = check_attest(q, nonce, nonce_len, &reason);
	if (r != 0) {
		goto out;
	}

	launches = json_array();
	if (launches == NULL) {
		reason = R_NOMEM;
		r = -ENOMEM;
		goto out;
	}
	r = eventlog_replay(q->log, q->log_len, q->launch_pcr, replayed, &records, add_launch,
	    launches, &reason);
	if (r != 0) {
		goto out;
	}
	if (memcmp(replayed, q->values[q->launch_pcr], 32) != 0) {
		reason = R_LOG;
		r = -EBADMSG;
		goto out;
	}
	report = json_pack("{s:b,s:O,s:I,s:I,s:O}", "valid", 1,
	    "pcrs", json_object_get(doc, "pcrs"), "launch_pcr", (json_int_t)q->launch_pcr,
	    "records", (json_int_t)records, "launches", launches);
	if (report == NULL) {
		reason = R_NOMEM;
		r = -ENOMEM;
		goto out;
	}
	*ret_report = report;
	report = NULL;
	r = 0;
out:
	if (r != 0) {
		/* Leave nothing of ours in OpenSSL's thread error queue. */
		ERR_clear_error();
		if (ret_reason != NULL) {
			*ret_reason = reason;
		}
	}
	json_decref(report);
	json_decref(launches);
	EVP_PKEY_free(ak);
	free(q);
	return r;
}
