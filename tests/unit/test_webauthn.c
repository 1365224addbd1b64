/* Unit tests for lib/webauthn.c: assertions and registrations built and
 * signed here with OpenSSL (ES256 and Ed25519), then altered one field at
 * a time. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cbor.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/sha.h>

#include "b64url.h"
#include "webauthn.h"

#define RP_ID   "localhost"
#define ORIGIN  "https://localhost:8443"

static const char *const origins[] = { ORIGIN, "https://approver.example", NULL };
static const struct webauthn_rp rp = { RP_ID, origins };

struct fixture {
	EVP_PKEY *es;
	EVP_PKEY *ed;
	struct webauthn_credential es_cred;
	struct webauthn_credential ed_cred;
	uint8_t challenge[32];
};

static struct fixture fx;

static void
public_key(EVP_PKEY *pkey, int alg, struct webauthn_credential *c)
{
	size_t len = sizeof(c->pk);

	memset(c, 0, sizeof(*c));
	if (alg == WEBAUTHN_ALG_ES256) {
		assert_int_equal(EVP_PKEY_get_octet_string_param(pkey, OSSL_PKEY_PARAM_PUB_KEY,
		    c->pk, sizeof(c->pk), &len), 1);
		assert_int_equal(len, 65);
	} else {
		len = 32;
		assert_int_equal(EVP_PKEY_get_raw_public_key(pkey, c->pk, &len), 1);
		assert_int_equal(len, 32);
	}
	c->pk_len = len;
	c->alg = alg;
	c->id_len = 16;
	memset(c->id, alg == WEBAUTHN_ALG_ES256 ? 0xe5 : 0xed, 16);
}

static int
setup(void **state)
{
	size_t i;

	(void)state;
	fx.es = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	fx.ed = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	if (fx.es == NULL || fx.ed == NULL) {
		return -1;
	}
	public_key(fx.es, WEBAUTHN_ALG_ES256, &fx.es_cred);
	public_key(fx.ed, WEBAUTHN_ALG_EDDSA, &fx.ed_cred);
	for (i = 0; i < 32; i++) {
		fx.challenge[i] = (uint8_t)(i * 7 + 1);
	}
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	EVP_PKEY_free(fx.es);
	EVP_PKEY_free(fx.ed);
	return 0;
}

/* clientDataJSON as a browser writes it, with optional tail members. */
static size_t
make_cdj(char *out, size_t outsz, const char *type, const uint8_t challenge[32],
    const char *origin, const char *tail)
{
	char cb[64];
	int n;

	assert_int_equal(b64url_encode(challenge, 32, cb, sizeof(cb)), 0);
	n = snprintf(out, outsz, "{\"type\":\"%s\",\"challenge\":\"%s\",\"origin\":\"%s\"%s}",
	    type, cb, origin, tail != NULL ? tail : ",\"crossOrigin\":false");
	assert_true(n > 0 && (size_t)n < outsz);
	return (size_t)n;
}

static void
make_head(uint8_t *ad, const char *rp_id, uint8_t flags, uint32_t counter)
{
	SHA256((const unsigned char *)rp_id, strlen(rp_id), ad);
	ad[32] = flags;
	ad[33] = (uint8_t)(counter >> 24);
	ad[34] = (uint8_t)(counter >> 16);
	ad[35] = (uint8_t)(counter >> 8);
	ad[36] = (uint8_t)counter;
}

static void
sign(EVP_PKEY *pkey, int alg, const uint8_t *ad, size_t ad_len, const char *cdj,
    size_t cdj_len, uint8_t *sig, size_t *sig_len)
{
	uint8_t msg[8192];
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();

	assert_non_null(ctx);
	assert_true(ad_len + 32 <= sizeof(msg));
	memcpy(msg, ad, ad_len);
	SHA256((const unsigned char *)cdj, cdj_len, msg + ad_len);
	assert_int_equal(EVP_DigestSignInit(ctx, NULL, alg == WEBAUTHN_ALG_ES256 ?
	    EVP_sha256() : NULL, NULL, pkey), 1);
	assert_int_equal(EVP_DigestSign(ctx, sig, sig_len, msg, ad_len + 32), 1);
	EVP_MD_CTX_free(ctx);
}

/* One assertion, described by what differs from a valid one. */
struct case_ {
	int alg;
	const char *type;
	const char *origin;
	const char *rp_id;
	const char *tail;
	uint8_t flags;
	uint32_t counter;
	uint32_t stored;
	int flip_sig;
	int other_challenge;
};

static void
defaults(struct case_ *c, int alg)
{
	memset(c, 0, sizeof(*c));
	c->alg = alg;
	c->type = "webauthn.get";
	c->origin = ORIGIN;
	c->rp_id = RP_ID;
	c->flags = 0x05;
	c->counter = 7;
	c->stored = 6;
}

static int
run(const struct case_ *c, uint32_t *ret_count, char *detail, size_t detailsz)
{
	char cdj[1024];
	uint8_t ad[37], sig[256], ch[32];
	size_t cdj_len, sig_len = sizeof(sig);
	struct webauthn_credential cred;
	EVP_PKEY *k = c->alg == WEBAUTHN_ALG_ES256 ? fx.es : fx.ed;

	cred = c->alg == WEBAUTHN_ALG_ES256 ? fx.es_cred : fx.ed_cred;
	cred.sign_count = c->stored;
	memcpy(ch, fx.challenge, 32);
	if (c->other_challenge) {
		ch[31] ^= 1;
	}
	cdj_len = make_cdj(cdj, sizeof(cdj), c->type, ch, c->origin, c->tail);
	make_head(ad, c->rp_id, c->flags, c->counter);
	sign(k, c->alg, ad, sizeof(ad), cdj, cdj_len, sig, &sig_len);
	if (c->flip_sig) {
		sig[sig_len / 2] ^= 0x10;
	}
	detail[0] = '\0';
	return webauthn_verify_assertion(&rp, fx.challenge, &cred, (const uint8_t *)cdj,
	    cdj_len, ad, sizeof(ad), sig, sig_len, ret_count, detail, detailsz);
}

static void
expect(const struct case_ *c, int want, const char *needle)
{
	char detail[512];
	uint32_t count = 12345;
	int r = run(c, &count, detail, sizeof(detail));

	if (r != want || (needle != NULL && strstr(detail, needle) == NULL)) {
		fail_msg("alg %d: got %d '%s', want %d '%s'", c->alg, r, detail, want,
		    needle != NULL ? needle : "");
	}
	if (want == 0) {
		assert_int_equal(count, c->counter);
	} else {
		assert_int_equal(count, 12345);    /* not written on failure */
		assert_true(detail[0] != '\0');
	}
}

static const int algs[] = { WEBAUTHN_ALG_ES256, WEBAUTHN_ALG_EDDSA };

static void
test_valid(void **state)
{
	struct case_ c;
	size_t i;

	(void)state;
	for (i = 0; i < 2; i++) {
		defaults(&c, algs[i]);
		expect(&c, 0, NULL);
		c.origin = "https://approver.example";
		expect(&c, 0, NULL);
		/* Browsers may add members; crossOrigin may be absent. */
		c.tail = ",\"other_keys_can_be_added_here\":\"x\"";
		expect(&c, 0, NULL);
		c.tail = ",\"tokenBinding\":{\"status\":\"supported\"}";
		expect(&c, 0, NULL);
		defaults(&c, algs[i]);
		c.counter = 0;
		c.stored = 0;
		expect(&c, 0, NULL);
		c.flags = 0x1d;     /* BE and BS (synced passkey) do not matter */
		expect(&c, 0, NULL);
	}
}

static void
test_refusals(void **state)
{
	struct case_ c;
	size_t i;

	(void)state;
	for (i = 0; i < 2; i++) {
		defaults(&c, algs[i]);
		c.other_challenge = 1;
		expect(&c, -EPERM, "digest");
		defaults(&c, algs[i]);
		c.origin = "https://evil.example";
		expect(&c, -EPERM, "origin https://evil.example is not one of the allowed");
		c.origin = "https://localhost:8443/";
		expect(&c, -EPERM, "origin");
		c.origin = "https://LOCALHOST:8443";
		expect(&c, -EPERM, "origin");
		defaults(&c, algs[i]);
		c.rp_id = "evil.example";
		expect(&c, -EPERM, "relying party");
		defaults(&c, algs[i]);
		c.flags = 0x04;
		expect(&c, -EPERM, "UP");
		c.flags = 0x01;
		expect(&c, -EPERM, "UV");
		defaults(&c, algs[i]);
		c.flip_sig = 1;
		expect(&c, -EPERM, "signature does not verify");
		defaults(&c, algs[i]);
		c.counter = 3;
		c.stored = 5;
		expect(&c, -EPERM, "sign counter 3 is not greater than the stored 5");
		c.counter = 5;
		expect(&c, -EPERM, "sign counter 5");
		c.counter = 0;
		expect(&c, -EPERM, "sign counter 0");
		defaults(&c, algs[i]);
		c.type = "webauthn.create";
		expect(&c, -EPERM, "type");
		defaults(&c, algs[i]);
		c.tail = ",\"crossOrigin\":true";
		expect(&c, -EPERM, "crossOrigin");
		c.tail = ",\"crossOrigin\":\"false\"";
		expect(&c, -EINVAL, "crossOrigin");
		/* A token-bound assertion cannot be checked here: refused. */
		c.tail = ",\"tokenBinding\":{\"status\":\"present\",\"id\":\"AAAA\"}";
		expect(&c, -EPERM, "tokenBinding");
		c.tail = ",\"tokenBinding\":{\"status\":\"Present\"}";
		expect(&c, -EPERM, "tokenBinding");
		c.tail = ",\"tokenBinding\":\"present\"";
		expect(&c, -EINVAL, "tokenBinding");
		c.tail = ",\"tokenBinding\":{}";
		expect(&c, -EINVAL, "tokenBinding");
		/* An origin that merely starts or ends like an allowed one. */
		defaults(&c, algs[i]);
		c.origin = ORIGIN ".evil";
		expect(&c, -EPERM, "origin");
		c.origin = ORIGIN "@evil.example";
		expect(&c, -EPERM, "origin");
		c.origin = "https://localhost:844";
		expect(&c, -EPERM, "origin");
		c.origin = "http://localhost:8443";
		expect(&c, -EPERM, "origin");
		/* A counter at its end cannot wrap around to a small one. */
		c.origin = ORIGIN;
		c.stored = UINT32_MAX;
		c.counter = 0;
		expect(&c, -EPERM, "sign counter 0");
		c.counter = 1;
		expect(&c, -EPERM, "sign counter 1");
		c.tail = ",\"origin\":\"" ORIGIN "\"";
		expect(&c, -EINVAL, "duplicate");
		c.tail = ",\"type\":\"webauthn.get\"";
		expect(&c, -EINVAL, "duplicate");
		defaults(&c, algs[i]);
		c.flags = 0x45;     /* AT in an assertion */
		expect(&c, -EINVAL, "AT");
	}
}

/* Raw inputs: sizes, truncation, the stored credential. */
static void
test_inputs(void **state)
{
	char cdj[8192], detail[256];
	uint8_t ad[64], sig[512];
	size_t cdj_len, sig_len = 256, n;
	struct webauthn_credential cred = fx.es_cred;
	uint32_t count = 99;
	static const char *bad_cdj[] = {
		"", "null", "[]", "{", "{\"type\":\"webauthn.get\"}", "\"x\"",
		"{\"type\":1,\"challenge\":\"AA\",\"origin\":\"x\"}",
		NULL,
	};

	(void)state;
	cred.sign_count = 0;
	cdj_len = make_cdj(cdj, sizeof(cdj), "webauthn.get", fx.challenge, ORIGIN, NULL);
	make_head(ad, RP_ID, 0x05, 1);
	sign(fx.es, WEBAUTHN_ALG_ES256, ad, 37, cdj, cdj_len, sig, &sig_len);
	assert_int_equal(webauthn_verify_assertion(&rp, fx.challenge, &cred,
	    (const uint8_t *)cdj, cdj_len, ad, 37, sig, sig_len, &count, detail,
	    sizeof(detail)), 0);
	assert_int_equal(count, 1);
	count = 99;

	/* Truncated and padded authenticator data. */
	for (n = 0; n < 37; n++) {
		assert_int_equal(webauthn_verify_assertion(&rp, fx.challenge, &cred,
		    (const uint8_t *)cdj, cdj_len, ad, n, sig, sig_len, &count, detail,
		    sizeof(detail)), -EINVAL);
	}
	memset(ad + 37, 0, sizeof(ad) - 37);
	assert_int_equal(webauthn_verify_assertion(&rp, fx.challenge, &cred,
	    (const uint8_t *)cdj, cdj_len, ad, 38, sig, sig_len, &count, detail,
	    sizeof(detail)), -EINVAL);
	/* A truncated signature, an empty one, an oversized one. */
	assert_int_equal(webauthn_verify_assertion(&rp, fx.challenge, &cred,
	    (const uint8_t *)cdj, cdj_len, ad, 37, sig, sig_len - 1, &count, detail,
	    sizeof(detail)), -EPERM);
	assert_int_equal(webauthn_verify_assertion(&rp, fx.challenge, &cred,
	    (const uint8_t *)cdj, cdj_len, ad, 37, sig, 0, &count, detail,
	    sizeof(detail)), -EINVAL);
	assert_int_equal(webauthn_verify_assertion(&rp, fx.challenge, &cred,
	    (const uint8_t *)cdj, cdj_len, ad, 37, sig, WEBAUTHN_SIG_MAX + 1, &count, detail,
	    sizeof(detail)), -EINVAL);
	/* A truncated clientDataJSON is no longer JSON. */
	assert_int_equal(webauthn_verify_assertion(&rp, fx.challenge, &cred,
	    (const uint8_t *)cdj, cdj_len - 1, ad, 37, sig, sig_len, &count, detail,
	    sizeof(detail)), -EINVAL);
	for (n = 0; bad_cdj[n] != NULL; n++) {
		assert_int_equal(webauthn_verify_assertion(&rp, fx.challenge, &cred,
		    (const uint8_t *)bad_cdj[n], strlen(bad_cdj[n]), ad, 37, sig, sig_len, &count,
		    detail, sizeof(detail)), -EINVAL);
	}
	/* An oversized clientDataJSON, refused before it is parsed. */
	memset(cdj, ' ', sizeof(cdj));
	cdj_len = make_cdj(cdj, sizeof(cdj), "webauthn.get", fx.challenge, ORIGIN, NULL);
	cdj[cdj_len] = ' ';
	assert_int_equal(webauthn_verify_assertion(&rp, fx.challenge, &cred,
	    (const uint8_t *)cdj, WEBAUTHN_CDJ_MAX + 1, ad, 37, sig, sig_len, &count, detail,
	    sizeof(detail)), -EINVAL);
	assert_non_null(strstr(detail, "larger"));
	/* A challenge that is not base64url, or padded, or of another length. */
	cdj_len = (size_t)snprintf(cdj, sizeof(cdj), "{\"type\":\"webauthn.get\",\"challenge\":"
	    "\"AQgPFh0kKzI5QEdOVVxjanF4f4aNlJuiqbC3vsXM09rh6O8=\",\"origin\":\"" ORIGIN "\"}");
	assert_int_equal(webauthn_verify_assertion(&rp, fx.challenge, &cred,
	    (const uint8_t *)cdj, cdj_len, ad, 37, sig, sig_len, &count, detail,
	    sizeof(detail)), -EINVAL);
	cdj_len = (size_t)snprintf(cdj, sizeof(cdj), "{\"type\":\"webauthn.get\",\"challenge\":"
	    "\"AQgPFh0kKzI5QEdOVVxjanF4f4aNlJuiqbC3vsXM09rh6A\",\"origin\":\"" ORIGIN "\"}");
	assert_int_equal(webauthn_verify_assertion(&rp, fx.challenge, &cred,
	    (const uint8_t *)cdj, cdj_len, ad, 37, sig, sig_len, &count, detail,
	    sizeof(detail)), -EPERM);
	/* A stored key of the wrong shape or algorithm. */
	cdj_len = make_cdj(cdj, sizeof(cdj), "webauthn.get", fx.challenge, ORIGIN, NULL);
	cred.pk_len = 64;
	assert_int_equal(webauthn_verify_assertion(&rp, fx.challenge, &cred,
	    (const uint8_t *)cdj, cdj_len, ad, 37, sig, sig_len, &count, detail,
	    sizeof(detail)), -EINVAL);
	cred = fx.es_cred;
	cred.pk[64] ^= 1;   /* off the curve */
	assert_int_equal(webauthn_verify_assertion(&rp, fx.challenge, &cred,
	    (const uint8_t *)cdj, cdj_len, ad, 37, sig, sig_len, &count, detail,
	    sizeof(detail)), -EINVAL);
	cred = fx.es_cred;
	cred.alg = -257;
	assert_int_equal(webauthn_verify_assertion(&rp, fx.challenge, &cred,
	    (const uint8_t *)cdj, cdj_len, ad, 37, sig, sig_len, &count, detail,
	    sizeof(detail)), -ENOTSUP);
	/* The other algorithm's key. */
	cred = fx.ed_cred;
	assert_int_equal(webauthn_verify_assertion(&rp, fx.challenge, &cred,
	    (const uint8_t *)cdj, cdj_len, ad, 37, sig, sig_len, &count, detail,
	    sizeof(detail)), -EPERM);
	assert_int_equal(count, 99);
}

/* Extensions (ED flag): one CBOR map after the head, nothing else. */
static void
test_extensions(void **state)
{
	char cdj[512], detail[256];
	uint8_t ad[64], sig[256];
	size_t cdj_len, sig_len, i;
	uint32_t count = 0;
	static const struct {
		uint8_t bytes[12];
		size_t len;
		int want;
	} ext[] = {
		{ { 0xa0 }, 1, 0 },
		{ { 0 }, 0, -EINVAL },
		{ { 0xa0, 0x00 }, 2, -EINVAL },
		{ { 0x80 }, 1, -EINVAL },
		{ { 0xbf, 0xff }, 2, -EINVAL },
		{ { 0xbb, 0, 0, 0, 1, 0, 0, 0, 0 }, 9, -EINVAL },
		{ { 0xa1, 0x63, 'x', 'y' }, 4, -EINVAL },
	};

	(void)state;
	cdj_len = make_cdj(cdj, sizeof(cdj), "webauthn.get", fx.challenge, ORIGIN, NULL);
	for (i = 0; i < sizeof(ext) / sizeof(ext[0]); i++) {
		make_head(ad, RP_ID, 0x85, 1);
		memcpy(ad + 37, ext[i].bytes, ext[i].len);
		sig_len = sizeof(sig);
		sign(fx.es, WEBAUTHN_ALG_ES256, ad, 37 + ext[i].len, cdj, cdj_len, sig, &sig_len);
		assert_int_equal(webauthn_verify_assertion(&rp, fx.challenge, &fx.es_cred,
		    (const uint8_t *)cdj, cdj_len, ad, 37 + ext[i].len, sig, sig_len, &count, detail,
		    sizeof(detail)), ext[i].want);
	}
}

static void
test_alg_names(void **state)
{
	int a = 0;

	(void)state;
	assert_string_equal(webauthn_alg_name(WEBAUTHN_ALG_ES256), "ES256");
	assert_string_equal(webauthn_alg_name(WEBAUTHN_ALG_EDDSA), "EdDSA");
	assert_null(webauthn_alg_name(-257));
	assert_int_equal(webauthn_alg_parse("ES256", &a), 0);
	assert_int_equal(a, WEBAUTHN_ALG_ES256);
	assert_int_equal(webauthn_alg_parse("EdDSA", &a), 0);
	assert_int_equal(a, WEBAUTHN_ALG_EDDSA);
	assert_int_equal(webauthn_alg_parse("es256", &a), -EINVAL);
	assert_int_equal(webauthn_alg_parse("RS256", &a), -EINVAL);
	assert_int_equal(webauthn_alg_parse("", &a), -EINVAL);
}

/* Registration. */

static cbor_item_t *
cose_key(const struct webauthn_credential *c, int alg_override)
{
	cbor_item_t *m = cbor_new_definite_map(c->alg == WEBAUTHN_ALG_ES256 ? 5 : 4);
	int alg = alg_override != 0 ? alg_override : c->alg;

	assert_non_null(m);
	assert_true(cbor_map_add(m, (struct cbor_pair){ cbor_move(cbor_build_uint8(1)),
	    cbor_move(cbor_build_uint8(c->alg == WEBAUTHN_ALG_ES256 ? 2 : 1)) }));
	assert_true(cbor_map_add(m, (struct cbor_pair){ cbor_move(cbor_build_uint8(3)),
	    cbor_move(alg < 0 ? cbor_build_negint16((uint16_t)(-1 - alg)) :
	    cbor_build_uint16((uint16_t)alg)) }));
	assert_true(cbor_map_add(m, (struct cbor_pair){ cbor_move(cbor_build_negint8(0)),
	    cbor_move(cbor_build_uint8(c->alg == WEBAUTHN_ALG_ES256 ? 1 : 6)) }));
	if (c->alg == WEBAUTHN_ALG_ES256) {
		assert_true(cbor_map_add(m, (struct cbor_pair){ cbor_move(cbor_build_negint8(1)),
		    cbor_move(cbor_build_bytestring(c->pk + 1, 32)) }));
		assert_true(cbor_map_add(m, (struct cbor_pair){ cbor_move(cbor_build_negint8(2)),
		    cbor_move(cbor_build_bytestring(c->pk + 33, 32)) }));
	} else {
		assert_true(cbor_map_add(m, (struct cbor_pair){ cbor_move(cbor_build_negint8(1)),
		    cbor_move(cbor_build_bytestring(c->pk, 32)) }));
	}
	return m;
}

struct reg {
	const char *rp_id;
	uint8_t flags;
	uint32_t counter;
	int alg_override;
	const char *fmt;
	int no_authdata;
	int extra_member;
	size_t trailing;
};

static size_t
make_authdata(const struct webauthn_credential *c, const struct reg *g, uint8_t *ad,
    size_t adsz)
{
	cbor_item_t *key = cose_key(c, g->alg_override);
	unsigned char *kb = NULL;
	size_t kb_size = 0, kb_len, off;

	kb_len = cbor_serialize_alloc(key, &kb, &kb_size);
	assert_true(kb_len > 0);
	cbor_decref(&key);
	make_head(ad, g->rp_id, g->flags, g->counter);
	off = 37;
	memset(ad + off, 0xaa, 16);    /* aaguid */
	off += 16;
	ad[off++] = 0;
	ad[off++] = (uint8_t)c->id_len;
	memcpy(ad + off, c->id, c->id_len);
	off += c->id_len;
	assert_true(off + kb_len + g->trailing <= adsz);
	memcpy(ad + off, kb, kb_len);
	off += kb_len;
	memset(ad + off, 0, g->trailing);
	off += g->trailing;
	free(kb);
	return off;
}

static size_t
make_attobj(const uint8_t *ad, size_t ad_len, const struct reg *g, uint8_t *out,
    size_t outsz)
{
	cbor_item_t *m = cbor_new_definite_map(4);
	unsigned char *b = NULL;
	size_t b_size = 0, len;

	assert_non_null(m);
	assert_true(cbor_map_add(m, (struct cbor_pair){ cbor_move(cbor_build_string("fmt")),
	    cbor_move(cbor_build_string(g->fmt != NULL ? g->fmt : "none")) }));
	assert_true(cbor_map_add(m, (struct cbor_pair){ cbor_move(cbor_build_string("attStmt")),
	    cbor_move(cbor_new_definite_map(0)) }));
	if (!g->no_authdata) {
		assert_true(cbor_map_add(m, (struct cbor_pair){
		    cbor_move(cbor_build_string("authData")),
		    cbor_move(cbor_build_bytestring(ad, ad_len)) }));
	}
	if (g->extra_member) {
		assert_true(cbor_map_add(m, (struct cbor_pair){ cbor_move(cbor_build_string("x")),
		    cbor_move(cbor_build_uint8(1)) }));
	}
	len = cbor_serialize_alloc(m, &b, &b_size);
	assert_true(len > 0 && len <= outsz);
	memcpy(out, b, len);
	free(b);
	cbor_decref(&m);
	return len;
}

static void
reg_defaults(struct reg *g)
{
	memset(g, 0, sizeof(*g));
	g->rp_id = RP_ID;
	g->flags = 0x45;
	g->counter = 0;
}

static int
register_one(const struct webauthn_credential *c, const struct reg *g, const char *type,
    struct webauthn_credential *out, char *detail, size_t detailsz)
{
	char cdj[512];
	uint8_t ad[1024], ao[2048];
	size_t cdj_len, ad_len, ao_len;

	cdj_len = make_cdj(cdj, sizeof(cdj), type, fx.challenge, ORIGIN, NULL);
	ad_len = make_authdata(c, g, ad, sizeof(ad));
	ao_len = make_attobj(ad, ad_len, g, ao, sizeof(ao));
	detail[0] = '\0';
	return webauthn_register(&rp, fx.challenge, (const uint8_t *)cdj, cdj_len, ao, ao_len,
	    out, detail, detailsz);
}

static void
test_register(void **state)
{
	const struct webauthn_credential *creds[] = { &fx.es_cred, &fx.ed_cred };
	struct webauthn_credential out;
	struct reg g;
	char detail[256];
	size_t i;

	(void)state;
	for (i = 0; i < 2; i++) {
		reg_defaults(&g);
		g.counter = 4;
		memset(&out, 0, sizeof(out));
		assert_int_equal(register_one(creds[i], &g, "webauthn.create", &out, detail,
		    sizeof(detail)), 0);
		assert_int_equal(out.alg, creds[i]->alg);
		assert_int_equal(out.id_len, creds[i]->id_len);
		assert_memory_equal(out.id, creds[i]->id, out.id_len);
		assert_int_equal(out.pk_len, creds[i]->pk_len);
		assert_memory_equal(out.pk, creds[i]->pk, out.pk_len);
		assert_int_equal(out.sign_count, 4);

		memset(&out, 0x5a, sizeof(out));
		reg_defaults(&g);
		g.rp_id = "evil.example";
		assert_int_equal(register_one(creds[i], &g, "webauthn.create", &out, detail,
		    sizeof(detail)), -EPERM);
		assert_non_null(strstr(detail, "relying party"));
		assert_int_equal(out.id_len, 0x5a5a5a5a5a5a5a5aULL);   /* untouched */
		reg_defaults(&g);
		g.flags = 0x05;
		assert_int_equal(register_one(creds[i], &g, "webauthn.create", &out, detail,
		    sizeof(detail)), -EINVAL);
		assert_non_null(strstr(detail, "AT flag"));
		g.flags = 0x44;
		assert_int_equal(register_one(creds[i], &g, "webauthn.create", &out, detail,
		    sizeof(detail)), -EPERM);
		g.flags = 0x41;
		assert_int_equal(register_one(creds[i], &g, "webauthn.create", &out, detail,
		    sizeof(detail)), -EPERM);
		reg_defaults(&g);
		assert_int_equal(register_one(creds[i], &g, "webauthn.get", &out, detail,
		    sizeof(detail)), -EPERM);
		g.trailing = 1;
		assert_int_equal(register_one(creds[i], &g, "webauthn.create", &out, detail,
		    sizeof(detail)), -EINVAL);
		reg_defaults(&g);
		g.alg_override = -257;
		assert_int_equal(register_one(creds[i], &g, "webauthn.create", &out, detail,
		    sizeof(detail)), -ENOTSUP);
		g.alg_override = creds[i]->alg == WEBAUTHN_ALG_ES256 ? WEBAUTHN_ALG_EDDSA :
		    WEBAUTHN_ALG_ES256;   /* the key's shape does not match its alg */
		assert_int_equal(register_one(creds[i], &g, "webauthn.create", &out, detail,
		    sizeof(detail)), -EINVAL);
		reg_defaults(&g);
		g.no_authdata = 1;
		assert_int_equal(register_one(creds[i], &g, "webauthn.create", &out, detail,
		    sizeof(detail)), -EINVAL);
		reg_defaults(&g);
		g.extra_member = 1;
		assert_int_equal(register_one(creds[i], &g, "webauthn.create", &out, detail,
		    sizeof(detail)), -EINVAL);
		reg_defaults(&g);
		g.fmt = "packed";   /* the statement is not checked */
		assert_int_equal(register_one(creds[i], &g, "webauthn.create", &out, detail,
		    sizeof(detail)), 0);
	}
}

static void
test_register_malformed(void **state)
{
	char cdj[512], detail[256];
	uint8_t ad[1024], ao[2048];
	size_t cdj_len, ad_len, ao_len, n;
	struct webauthn_credential out;
	struct reg g;
	static const uint8_t junk[][12] = {
		{ 0xa0 },                          /* {} */
		{ 0x80 },                          /* [] */
		{ 0xbf, 0xff },                    /* indefinite {} */
		{ 0xa1, 0x63, 'f', 'm', 't' },     /* truncated */
		{ 0xff },
		{ 0xbb, 0, 0, 0, 1, 0, 0, 0, 0 }, /* a map of 2^32 pairs, announced */
		{ 0x9a, 0x7f, 0xff, 0xff, 0xff },  /* an array of 2^31 items, announced */
		{ 0x5a, 0x7f, 0xff, 0xff, 0xff },  /* a long byte string, announced */
		{ 0xa1, 0x00, 0x1c },              /* a reserved additional value */
	};
	static const size_t junk_len[] = { 1, 1, 2, 5, 1, 9, 5, 5, 3 };
	uint8_t deep[64];

	(void)state;
	reg_defaults(&g);
	cdj_len = make_cdj(cdj, sizeof(cdj), "webauthn.create", fx.challenge, ORIGIN, NULL);
	ad_len = make_authdata(&fx.es_cred, &g, ad, sizeof(ad));
	ao_len = make_attobj(ad, ad_len, &g, ao, sizeof(ao));
	assert_int_equal(webauthn_register(&rp, fx.challenge, (const uint8_t *)cdj, cdj_len, ao,
	    ao_len, &out, detail, sizeof(detail)), 0);
	/* Every truncation of the attestation object is refused. */
	for (n = 0; n < ao_len; n++) {
		assert_int_equal(webauthn_register(&rp, fx.challenge, (const uint8_t *)cdj, cdj_len,
		    ao, n, &out, detail, sizeof(detail)), -EINVAL);
	}
	/* Trailing bytes after it too. */
	ao[ao_len] = 0;
	assert_int_equal(webauthn_register(&rp, fx.challenge, (const uint8_t *)cdj, cdj_len, ao,
	    ao_len + 1, &out, detail, sizeof(detail)), -EINVAL);
	for (n = 0; n < sizeof(junk_len) / sizeof(junk_len[0]); n++) {
		assert_int_equal(webauthn_register(&rp, fx.challenge, (const uint8_t *)cdj,
		    cdj_len, junk[n], junk_len[n], &out, detail, sizeof(detail)), -EINVAL);
	}
	/* Nesting deeper than any attestation object needs. */
	memset(deep, 0x81, sizeof(deep));
	deep[sizeof(deep) - 1] = 0;
	assert_int_equal(webauthn_register(&rp, fx.challenge, (const uint8_t *)cdj, cdj_len,
	    deep, sizeof(deep), &out, detail, sizeof(detail)), -EINVAL);
	/* Every truncation of the authenticator data inside a well-formed object. */
	for (n = 0; n < ad_len; n++) {
		ao_len = make_attobj(ad, n, &g, ao, sizeof(ao));
		assert_int_equal(webauthn_register(&rp, fx.challenge, (const uint8_t *)cdj,
		    cdj_len, ao, ao_len, &out, detail, sizeof(detail)), -EINVAL);
	}
	/* A challenge for another ceremony. */
	ao_len = make_attobj(ad, ad_len, &g, ao, sizeof(ao));
	fx.challenge[0] ^= 1;
	assert_int_equal(webauthn_register(&rp, fx.challenge, (const uint8_t *)cdj, cdj_len, ao,
	    ao_len, &out, detail, sizeof(detail)), -EPERM);
	fx.challenge[0] ^= 1;
	assert_int_equal(webauthn_register(&rp, fx.challenge, (const uint8_t *)cdj, cdj_len, ao,
	    WEBAUTHN_ATTOBJ_MAX + 1, &out, detail, sizeof(detail)), -EINVAL);
}

/* A credential that comes back from registration verifies assertions. */
static void
test_register_then_assert(void **state)
{
	struct webauthn_credential out;
	struct reg g;
	char detail[256], cdj[512];
	uint8_t ad[37], sig[256];
	size_t cdj_len, sig_len = sizeof(sig), i;
	uint32_t count = 0;

	(void)state;
	for (i = 0; i < 2; i++) {
		EVP_PKEY *k = i == 0 ? fx.es : fx.ed;
		const struct webauthn_credential *c = i == 0 ? &fx.es_cred : &fx.ed_cred;

		reg_defaults(&g);
		assert_int_equal(register_one(c, &g, "webauthn.create", &out, detail,
		    sizeof(detail)), 0);
		cdj_len = make_cdj(cdj, sizeof(cdj), "webauthn.get", fx.challenge, ORIGIN, NULL);
		make_head(ad, RP_ID, 0x05, 1);
		sig_len = sizeof(sig);
		sign(k, c->alg, ad, sizeof(ad), cdj, cdj_len, sig, &sig_len);
		assert_int_equal(webauthn_verify_assertion(&rp, fx.challenge, &out,
		    (const uint8_t *)cdj, cdj_len, ad, sizeof(ad), sig, sig_len, &count, detail,
		    sizeof(detail)), 0);
		assert_int_equal(count, 1);
	}
}

/* Fixed keys, fingerprints computed apart from this code (Python's
 * hashlib and base64, checked with `openssl dgst -sha256 -binary |
 * openssl base64`): the P-256 base point as 04||x||y, and the Ed25519
 * public key of RFC 8032's first test vector. */
static void
test_fingerprint(void **state)
{
	static const uint8_t p256_g[65] = {
		0x04,
		0x6b, 0x17, 0xd1, 0xf2, 0xe1, 0x2c, 0x42, 0x47, 0xf8, 0xbc, 0xe6, 0xe5, 0x63, 0xa4,
		0x40, 0xf2, 0x77, 0x03, 0x7d, 0x81, 0x2d, 0xeb, 0x33, 0xa0, 0xf4, 0xa1, 0x39, 0x45,
		0xd8, 0x98, 0xc2, 0x96,
		0x4f, 0xe3, 0x42, 0xe2, 0xfe, 0x1a, 0x7f, 0x9b, 0x8e, 0xe7, 0xeb, 0x4a, 0x7c, 0x0f,
		0x9e, 0x16, 0x2b, 0xce, 0x33, 0x57, 0x6b, 0x31, 0x5e, 0xce, 0xcb, 0xb6, 0x40, 0x68,
		0x37, 0xbf, 0x51, 0xf5,
	};
	static const uint8_t ed_rfc8032[32] = {
		0xd7, 0x5a, 0x98, 0x01, 0x82, 0xb1, 0x0a, 0xb7, 0xd5, 0x4b, 0xfe, 0xd3, 0xc9, 0x64,
		0x07, 0x3a, 0x0e, 0xe1, 0x72, 0xf3, 0xda, 0xa6, 0x23, 0x25, 0xaf, 0x02, 0x1a, 0x68,
		0xf7, 0x07, 0x51, 0x1a,
	};
	struct webauthn_credential c;
	char fp[WEBAUTHN_FP_MAX];

	(void)state;
	memset(&c, 0, sizeof(c));
	c.alg = WEBAUTHN_ALG_ES256;
	memcpy(c.pk, p256_g, sizeof(p256_g));
	c.pk_len = sizeof(p256_g);
	assert_int_equal(webauthn_fingerprint(&c, fp), 0);
	assert_string_equal(fp, "SHA256:aYvqY9xEo0RmP/FCmuoQhC3ye2uZHvJYZrLGwCzcxb4");
	assert_int_equal(strlen(fp), WEBAUTHN_FP_MAX - 1);

	/* The credential id and counter are not part of it. */
	c.id[0] = 1;
	c.id_len = 1;
	c.sign_count = 7;
	assert_int_equal(webauthn_fingerprint(&c, fp), 0);
	assert_string_equal(fp, "SHA256:aYvqY9xEo0RmP/FCmuoQhC3ye2uZHvJYZrLGwCzcxb4");

	memset(&c, 0, sizeof(c));
	c.alg = WEBAUTHN_ALG_EDDSA;
	memcpy(c.pk, ed_rfc8032, sizeof(ed_rfc8032));
	c.pk_len = sizeof(ed_rfc8032);
	assert_int_equal(webauthn_fingerprint(&c, fp), 0);
	assert_string_equal(fp, "SHA256:If4x36FUomFia/hUBG/SJxt77UtqvkWqWId+9H+XIbk");

	/* A key that does not fit its algorithm, or another algorithm: the
	 * output is left alone. */
	strcpy(fp, "untouched");
	c.pk_len = 31;
	assert_int_equal(webauthn_fingerprint(&c, fp), -EINVAL);
	c.pk_len = 65;
	assert_int_equal(webauthn_fingerprint(&c, fp), -EINVAL);
	c.alg = WEBAUTHN_ALG_ES256;
	c.pk_len = 32;
	assert_int_equal(webauthn_fingerprint(&c, fp), -EINVAL);
	memcpy(c.pk, p256_g, sizeof(p256_g));
	c.pk[0] = 0x02;       /* compressed points are not what WebAuthn hands over */
	c.pk_len = 65;
	assert_int_equal(webauthn_fingerprint(&c, fp), -EINVAL);
	c.pk_len = 33;
	assert_int_equal(webauthn_fingerprint(&c, fp), -EINVAL);
	c.pk[0] = 0x04;
	c.pk_len = 0;
	assert_int_equal(webauthn_fingerprint(&c, fp), -EINVAL);
	c.alg = -257;         /* RS256 */
	c.pk_len = 65;
	assert_int_equal(webauthn_fingerprint(&c, fp), -ENOTSUP);
	c.alg = 0;
	assert_int_equal(webauthn_fingerprint(&c, fp), -ENOTSUP);
	assert_int_equal(webauthn_fingerprint(NULL, fp), -EINVAL);
	assert_int_equal(webauthn_fingerprint(&c, NULL), -EINVAL);
	assert_string_equal(fp, "untouched");

	/* The fixture's generated keys: a fingerprint each, and they differ. */
	{
		char a[WEBAUTHN_FP_MAX], b[WEBAUTHN_FP_MAX];

		assert_int_equal(webauthn_fingerprint(&fx.es_cred, a), 0);
		assert_int_equal(webauthn_fingerprint(&fx.ed_cred, b), 0);
		assert_int_equal(strncmp(a, "SHA256:", 7), 0);
		assert_string_not_equal(a, b);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_valid),
		cmocka_unit_test(test_refusals),
		cmocka_unit_test(test_inputs),
		cmocka_unit_test(test_extensions),
		cmocka_unit_test(test_alg_names),
		cmocka_unit_test(test_register),
		cmocka_unit_test(test_register_malformed),
		cmocka_unit_test(test_register_then_assert),
		cmocka_unit_test(test_fingerprint),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
