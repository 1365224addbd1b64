/* libFuzzer target for quote_verify (lib/quote.c) on arbitrary JSON with a
 * fixed attestation key and nonce. A document whose "signature" is the
 * string "SIGN" gets a valid signature over its decoded "attest" made with
 * the fixed key first, so the fuzzer also reaches everything behind the
 * signature check (TPMS_ATTEST parsing, PCR digest, event-log replay). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <tss2/tss2_mu.h>

#include "b64url.h"
#include "cjson.h"
#include "quote.h"

/* Made for this target only (openssl genpkey -algorithm EC
 * -pkeyopt ec_paramgen_curve:P-256); it guards nothing. */
static const char priv_pem[] =
    "-----BEGIN PRIVATE KEY-----\n"
    "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgUi+Cff3ypxNn6/E+\n"
    "ts1bAm8UwuDgKzCYJbY/Utt54NqhRANCAATT4UH7zP7o1IzSUqx4Jo4V3sBlUx0M\n"
    "IGHQfD5I3JuBdhxamwxRyzal2iBMiJiNrc4acW4nbXB2YcQm2cNgbTzS\n"
    "-----END PRIVATE KEY-----\n";
static const char pub_pem[] =
    "-----BEGIN PUBLIC KEY-----\n"
    "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE0+FB+8z+6NSM0lKseCaOFd7AZVMd\n"
    "DCBh0Hw+SNybgXYcWpsMUcs2pdogTIiYja3OGnFuJ21wdmHEJtnDYG080g==\n"
    "-----END PUBLIC KEY-----\n";
static const uint8_t nonce[] = "nonce-12";   /* 8 bytes, without the NUL */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static EVP_PKEY *
private_key(void)
{
	static EVP_PKEY *k;
	BIO *b;

	if (k != NULL)
		return k;
	b = BIO_new_mem_buf(priv_pem, (int)sizeof(priv_pem) - 1);
	if (b == NULL)
		abort();
	k = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL);
	BIO_free(b);
	if (k == NULL)
		abort();
	return k;
}

/* Replace the "SIGN" placeholder by a TPMT_SIGNATURE over attest. */
static void
resign(json_t *doc)
{
	static uint8_t attest[4096], sig[1024];
	static char b64[2048];
	unsigned char der[128];
	const unsigned char *p = der;
	const char *s = json_string_value(json_object_get(doc, "attest"));
	size_t alen = 0, der_len = sizeof(der), off = 0;
	EVP_MD_CTX *md;
	ECDSA_SIG *es;
	const BIGNUM *r, *ss;
	TPMT_SIGNATURE t;

	if (s == NULL || b64url_decode(s, strlen(s), attest, sizeof(attest), &alen) != 0)
		return;
	md = EVP_MD_CTX_new();
	if (md == NULL || EVP_DigestSignInit_ex(md, NULL, "SHA256", NULL, NULL, private_key(),
	    NULL) != 1 || EVP_DigestSign(md, der, &der_len, attest, alen) != 1)
		abort();
	EVP_MD_CTX_free(md);
	es = d2i_ECDSA_SIG(NULL, &p, (long)der_len);
	if (es == NULL)
		abort();
	ECDSA_SIG_get0(es, &r, &ss);
	memset(&t, 0, sizeof(t));
	t.sigAlg = TPM2_ALG_ECDSA;
	t.signature.ecdsa.hash = TPM2_ALG_SHA256;
	t.signature.ecdsa.signatureR.size = 32;
	t.signature.ecdsa.signatureS.size = 32;
	if (BN_bn2binpad(r, t.signature.ecdsa.signatureR.buffer, 32) != 32 ||
	    BN_bn2binpad(ss, t.signature.ecdsa.signatureS.buffer, 32) != 32)
		abort();
	ECDSA_SIG_free(es);
	if (Tss2_MU_TPMT_SIGNATURE_Marshal(&t, sig, sizeof(sig), &off) != 0 ||
	    b64url_encode(sig, off, b64, sizeof(b64)) != 0)
		abort();
	if (json_object_set_new(doc, "signature", json_string(b64)) != 0)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_t *doc = NULL, *report = (json_t *)0x1;
	const char *reason = NULL, *s;
	int r;

	if (cjson_parse((const char *)data, size, 1 << 20, &doc) != 0)
		return 0;
	s = json_string_value(json_object_get(doc, "signature"));
	if (s != NULL && strcmp(s, "SIGN") == 0)
		resign(doc);
	r = quote_verify(doc, pub_pem, sizeof(pub_pem) - 1, nonce, sizeof(nonce) - 1, &report,
	    &reason);
	if (r == 0) {
		if (!json_is_true(json_object_get(report, "valid")) ||
		    !json_is_array(json_object_get(report, "launches")))
			abort();
		json_decref(report);
	} else if (reason == NULL || report != (json_t *)0x1) {
		abort();
	}
	json_decref(doc);
	return 0;
}
