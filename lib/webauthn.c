/* webauthn: registration and assertion checks (docs/approvals.md).
 *
 * Signatures, COSE keys and authenticator data are decoded by libfido2,
 * the attestation object by libcbor. The checks that decide (rpIdHash,
 * flags, challenge, origin, counter) are made here first, so that a
 * refusal names its reason; libfido2 repeats the rp and flag checks before
 * it verifies the signature. */
#include "webauthn.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cbor.h>
#include <fido.h>
#include <fido/eddsa.h>
#include <fido/es256.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/sha.h>

#include "b64url.h"
#include "text.h"

/* Authenticator data: rpIdHash(32) flags(1) signCount(4) [attested
 * credential data: aaguid(16) idLen(2) id COSE_Key] [extensions]. */
#define AD_HEAD_LEN     37
#define AD_FLAG_UP      0x01
#define AD_FLAG_UV      0x04
#define AD_FLAG_AT      0x40
#define AD_FLAG_ED      0x80
#define AD_AAGUID_LEN   16
#define FMT_MAX         32

/* Untrusted text quoted in a detail: printable ASCII only, bounded. */
static void
printable(const char *s, size_t len, char *out, size_t outsz)
{
	size_t i, o = 0;

	for (i = 0; i < len && o + 4 < outsz; i++) {
		unsigned char c = (unsigned char)s[i];

		out[o++] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
	}
	if (i < len && o + 3 < outsz) {
		memcpy(out + o, "...", 3);
		o += 3;
	}
	out[o] = '\0';
}

int
webauthn_fingerprint(const struct webauthn_credential *c, char ret[WEBAUTHN_FP_MAX])
{
	static const char prefix[] = "SHA256:";
	uint8_t md[SHA256_DIGEST_LENGTH];
	unsigned char enc[4 * ((SHA256_DIGEST_LENGTH + 2) / 3) + 1];
	size_t n;
	int len;

	if (c == NULL || ret == NULL) {
		return -EINVAL;
	}
	switch (c->alg) {
	case WEBAUTHN_ALG_ES256: {
		if (c->pk_len != 65 || c->pk[0] != 0x04) {
			return -EINVAL;
		}
		break;
	}
	case WEBAUTHN_ALG_EDDSA: {
		if (c->pk_len != 32) {
			return -EINVAL;
		}
		break;
	}
	default: {
		return -ENOTSUP;
	}
	}
	if (SHA256(c->pk, c->pk_len, md) == NULL) {
		return -EIO;
	}
	len = EVP_EncodeBlock(enc, md, (int)sizeof(md));
	if (len != (int)sizeof(enc) - 1) {
		return -EIO;
	}
	/* OpenSSH drops the padding: 32 bytes give 43 characters and one '='. */
	for (n = (size_t)len; n > 0 && enc[n - 1] == '='; n--) {
	}
	if (sizeof(prefix) - 1 + n + 1 > WEBAUTHN_FP_MAX) {
		return -EIO;
	}
	memcpy(ret, prefix, sizeof(prefix) - 1);
	memcpy(ret + sizeof(prefix) - 1, enc, n);
	ret[sizeof(prefix) - 1 + n] = '\0';
	return 0;
}

const char *
webauthn_alg_name(int alg)
{
	switch (alg) {
	case WEBAUTHN_ALG_ES256: {
		return "ES256";
	}
	case WEBAUTHN_ALG_EDDSA: {
		return "EdDSA";
	}
	default: {
		return NULL;
	}
	}
}

int
webauthn_alg_parse(const char *name, int *ret)
{
	if (name == NULL || ret == NULL) {
		return -EINVAL;
	}
	if (strcmp(name, "ES256") == 0) {
		*ret = WEBAUTHN_ALG_ES256;
		return 0;
	}
	if (strcmp(name, "EdDSA") == 0) {
		*ret = WEBAUTHN_ALG_EDDSA;
		return 0;
	}
	return -EINVAL;
}

static int
check_rp(const struct webauthn_rp *rp, char *detail, size_t n)
{
	size_t len;

	if (rp == NULL || rp->rp_id == NULL || rp->origins == NULL) {
		text_printf(detail, n, "no relying party is configured");
		return -EINVAL;
	}
	len = strlen(rp->rp_id);
	if (len == 0 || len > WEBAUTHN_RP_ID_MAX) {
		text_printf(detail, n, "the configured rp id must have 1..%d characters",
		    WEBAUTHN_RP_ID_MAX);
		return -EINVAL;
	}
	return 0;
}

/* clientDataJSON: type, challenge, origin, crossOrigin. Other members
 * (browsers add some) are ignored. */
static int
check_client_data(const struct webauthn_rp *rp, const uint8_t challenge[32],
    const char *want_type, const uint8_t *cdj, size_t cdj_len, char *detail, size_t n)
{
	json_t *root = NULL;
	json_error_t jerr;
	const json_t *v;
	const char *s;
	char shown[WEBAUTHN_ORIGIN_MAX + 8];
	uint8_t got[48];
	size_t got_len = 0, i, len;
	int r;

	if (cdj == NULL || cdj_len == 0) {
		text_printf(detail, n, "clientDataJSON is empty");
		return -EINVAL;
	}
	if (cdj_len > WEBAUTHN_CDJ_MAX) {
		text_printf(detail, n, "clientDataJSON is larger than %d bytes", WEBAUTHN_CDJ_MAX);
		return -EINVAL;
	}
	root = json_loadb((const char *)cdj, cdj_len, JSON_REJECT_DUPLICATES, &jerr);
	if (root == NULL || !json_is_object(root)) {
		text_printf(detail, n, "clientDataJSON is not a JSON object without duplicate keys");
		r = -EINVAL;
		goto out;
	}
	v = json_object_get(root, "type");
	s = json_string_value(v);
	if (s == NULL) {
		text_printf(detail, n, "clientDataJSON has no string 'type'");
		r = -EINVAL;
		goto out;
	}
	if (json_string_length(v) != strlen(want_type) || strcmp(s, want_type) != 0) {
		printable(s, json_string_length(v), shown, sizeof(shown));
		text_printf(detail, n, "clientDataJSON's type is '%s', not '%s'", shown, want_type);
		r = -EPERM;
		goto out;
	}
	v = json_object_get(root, "challenge");
	s = json_string_value(v);
	if (s == NULL) {
		text_printf(detail, n, "clientDataJSON has no string 'challenge'");
		r = -EINVAL;
		goto out;
	}
	if (b64url_decode(s, json_string_length(v), got, sizeof(got), &got_len) < 0) {
		text_printf(detail, n, "clientDataJSON's challenge is not unpadded base64url");
		r = -EINVAL;
		goto out;
	}
	if (got_len != 32 || CRYPTO_memcmp(got, challenge, 32) != 0) {
		text_printf(detail, n, "the signed challenge is not this request's digest: the "
		    "approval was given for another request");
		r = -EPERM;
		goto out;
	}
	v = json_object_get(root, "origin");
	s = json_string_value(v);
	if (s == NULL) {
		text_printf(detail, n, "clientDataJSON has no string 'origin'");
		r = -EINVAL;
		goto out;
	}
	len = json_string_length(v);
	for (i = 0; rp->origins[i] != NULL; i++) {
		if (strlen(rp->origins[i]) == len && memcmp(rp->origins[i], s, len) == 0) {
			break;
		}
	}
	if (rp->origins[i] == NULL || len > WEBAUTHN_ORIGIN_MAX) {
		printable(s, len > WEBAUTHN_ORIGIN_MAX ? WEBAUTHN_ORIGIN_MAX : len, shown,
		    sizeof(shown));
		text_printf(detail, n, "origin %s is not one of the allowed origins", shown);
		r = -EPERM;
		goto out;
	}
	v = json_object_get(root, "crossOrigin");
	if (v != NULL) {
		if (!json_is_boolean(v)) {
			text_printf(detail, n, "clientDataJSON's crossOrigin is not a boolean");
			r = -EINVAL;
			goto out;
		}
		if (json_is_true(v)) {
			text_printf(detail, n, "the passkey was used from a page embedded in another "
			    "origin (crossOrigin is true)");
			r = -EPERM;
			goto out;
		}
	}
	/* Token binding ties the assertion to a TLS connection the verifier
	 * never sees (attestd is not the TLS end): a bound one is refused, not
	 * accepted unchecked. */
	v = json_object_get(root, "tokenBinding");
	if (v != NULL) {
		s = json_string_value(json_object_get(v, "status"));
		if (!json_is_object(v) || s == NULL) {
			text_printf(detail, n, "clientDataJSON's tokenBinding is not an object with a "
			    "string status");
			r = -EINVAL;
			goto out;
		}
		if (strcmp(s, "supported") != 0 && strcmp(s, "not-supported") != 0) {
			text_printf(detail, n, "the assertion is bound to a TLS connection (tokenBinding "
			    "status is not 'supported'): token binding cannot be checked here");
			r = -EPERM;
			goto out;
		}
	}
	r = 0;
out:
	json_decref(root);
	return r;
}

/* The fixed head of authenticator data: rpIdHash, UP and UV. */
static int
check_auth_head(const struct webauthn_rp *rp, const uint8_t *ad, size_t ad_len,
    uint8_t *ret_flags, uint32_t *ret_count, char *detail, size_t n)
{
	uint8_t want[32];

	if (ad == NULL || ad_len < AD_HEAD_LEN) {
		text_printf(detail, n, "the authenticator data is shorter than %d bytes", AD_HEAD_LEN);
		return -EINVAL;
	}
	if (ad_len > WEBAUTHN_AUTHDATA_MAX) {
		text_printf(detail, n, "the authenticator data is larger than %d bytes",
		    WEBAUTHN_AUTHDATA_MAX);
		return -EINVAL;
	}
	if (SHA256((const unsigned char *)rp->rp_id, strlen(rp->rp_id), want) == NULL) {
		text_printf(detail, n, "SHA-256 failed");
		return -EIO;
	}
	if (CRYPTO_memcmp(ad, want, sizeof(want)) != 0) {
		text_printf(detail, n, "the passkey is scoped to another relying party than '%s' "
		    "(rpIdHash differs)", rp->rp_id);
		return -EPERM;
	}
	if ((ad[32] & AD_FLAG_UP) == 0) {
		text_printf(detail, n, "the authenticator did not test user presence (UP flag not set)");
		return -EPERM;
	}
	if ((ad[32] & AD_FLAG_UV) == 0) {
		text_printf(detail, n, "the authenticator did not verify the user (UV flag not set): "
		    "a PIN or biometric is required");
		return -EPERM;
	}
	*ret_flags = ad[32];
	*ret_count = (uint32_t)ad[33] << 24 | (uint32_t)ad[34] << 16 | (uint32_t)ad[35] << 8 |
	    (uint32_t)ad[36];
	return 0;
}

/* libcbor allocates what a header announces before it reads the items, so
 * every CBOR input is first walked here: definite lengths only, no count
 * larger than the bytes left, bounded nesting. *ret_used gets the size of
 * the first item. */
#define CBOR_DEPTH_MAX 16

static int
cbor_wellformed(const uint8_t *p, size_t len, size_t *ret_used)
{
	uint64_t pending[CBOR_DEPTH_MAX + 1];
	size_t off = 0, depth = 1, i, nb;
	uint64_t arg;
	uint8_t major, ai;

	pending[0] = 1;
	while (depth > 0) {
		if (pending[depth - 1] == 0) {
			depth--;
			continue;
		}
		pending[depth - 1]--;
		if (off >= len) {
			return -EINVAL;
		}
		major = p[off] >> 5;
		ai = p[off] & 31;
		off++;
		if (ai < 24) {
			nb = 0;
			arg = ai;
		} else if (ai <= 27) {
			nb = (size_t)1 << (ai - 24);
			arg = 0;
		} else {
			return -EINVAL;     /* reserved, or an indefinite length */
		}
		if (nb > len - off) {
			return -EINVAL;
		}
		for (i = 0; i < nb; i++) {
			arg = arg << 8 | p[off++];
		}
		switch (major) {
		case 0:
		case 1:
		case 7: {
			break;
		}
		case 2:
		case 3: {
			if (arg > len - off) {
				return -EINVAL;
			}
			off += (size_t)arg;
			break;
		}
		case 4:
		case 5:
		case 6: {
			if (major == 6) {
				arg = 1;
			} else if (major == 5) {
				if (arg > (len - off) / 2) {
					return -EINVAL;
				}
				arg *= 2;
			}
			if (arg > len - off || depth > CBOR_DEPTH_MAX) {
				return -EINVAL;
			}
			pending[depth++] = arg;
			break;
		}
		default: {
			return -EINVAL;
		}
		}
	}
	*ret_used = off;
	return 0;
}

/* The extensions after the credential: one CBOR map, nothing after it. */
static int
check_extensions(const uint8_t *p, size_t len)
{
	struct cbor_load_result res;
	cbor_item_t *ext;
	size_t used = 0;
	int r;

	if (cbor_wellformed(p, len, &used) < 0 || used != len) {
		return -EINVAL;
	}
	memset(&res, 0, sizeof(res));
	ext = cbor_load(p, len, &res);
	if (ext == NULL || res.error.code != CBOR_ERR_NONE) {
		r = res.error.code == CBOR_ERR_MEMERROR ? -ENOMEM : -EINVAL;
	} else {
		r = (cbor_isa_map(ext) && res.read == len) ? 0 : -EINVAL;
	}
	if (ext != NULL) {
		cbor_decref(&ext);
	}
	return r;
}

int
webauthn_verify_assertion(const struct webauthn_rp *rp, const uint8_t challenge[32],
    const struct webauthn_credential *cred,
    const uint8_t *client_data_json, size_t cdj_len,
    const uint8_t *auth_data, size_t ad_len,
    const uint8_t *sig, size_t sig_len,
    uint32_t *ret_sign_count, char *detail, size_t detailsz)
{
	fido_assert_t *as = NULL;
	es256_pk_t *es = NULL;
	eddsa_pk_t *ed = NULL;
	const void *pk = NULL;
	uint32_t count = 0;
	uint8_t flags = 0;
	int r, fr, type;

	if (ret_sign_count == NULL || challenge == NULL || cred == NULL) {
		text_printf(detail, detailsz, "missing argument");
		return -EINVAL;
	}
	if ((r = check_rp(rp, detail, detailsz)) < 0) {
		return r;
	}
	if (sig == NULL || sig_len == 0 || sig_len > WEBAUTHN_SIG_MAX) {
		text_printf(detail, detailsz, "the signature must have 1..%d bytes", WEBAUTHN_SIG_MAX);
		return -EINVAL;
	}
	if ((r = check_client_data(rp, challenge, "webauthn.get", client_data_json, cdj_len,
	    detail, detailsz)) < 0 ||
	    (r = check_auth_head(rp, auth_data, ad_len, &flags, &count, detail, detailsz)) < 0) {
		return r;
	}
	if ((flags & AD_FLAG_AT) != 0) {
		text_printf(detail, detailsz, "the authenticator data of an assertion carries a "
		    "credential (AT flag set)");
		return -EINVAL;
	}
	if ((flags & AD_FLAG_ED) == 0 ? ad_len != AD_HEAD_LEN :
	    check_extensions(auth_data + AD_HEAD_LEN, ad_len - AD_HEAD_LEN) < 0) {
		text_printf(detail, detailsz, "the authenticator data has malformed or trailing "
		    "bytes after its %d-byte head", AD_HEAD_LEN);
		return -EINVAL;
	}

	switch (cred->alg) {
	case WEBAUTHN_ALG_ES256: {
		type = COSE_ES256;
		if (cred->pk_len != 65 || cred->pk[0] != 0x04) {
			text_printf(detail, detailsz, "the stored ES256 key is not 65 bytes 04||x||y");
			r = -EINVAL;
			goto out;
		}
		if ((es = es256_pk_new()) == NULL) {
			text_printf(detail, detailsz, "out of memory");
			r = -ENOMEM;
			goto out;
		}
		if (es256_pk_from_ptr(es, cred->pk, cred->pk_len) != FIDO_OK) {
			text_printf(detail, detailsz, "the stored ES256 key is not a P-256 point");
			r = -EINVAL;
			goto out;
		}
		pk = es;
		break;
	}
	case WEBAUTHN_ALG_EDDSA: {
		type = COSE_EDDSA;
		if (cred->pk_len != 32) {
			text_printf(detail, detailsz, "the stored EdDSA key is not 32 bytes");
			r = -EINVAL;
			goto out;
		}
		if ((ed = eddsa_pk_new()) == NULL) {
			text_printf(detail, detailsz, "out of memory");
			r = -ENOMEM;
			goto out;
		}
		if (eddsa_pk_from_ptr(ed, cred->pk, cred->pk_len) != FIDO_OK) {
			text_printf(detail, detailsz, "the stored EdDSA key is not an Ed25519 key");
			r = -EINVAL;
			goto out;
		}
		pk = ed;
		break;
	}
	default: {
		text_printf(detail, detailsz, "COSE algorithm %d is not supported (ES256 and EdDSA "
		    "are)", cred->alg);
		r = -ENOTSUP;
		goto out;
	}
	}

	if ((as = fido_assert_new()) == NULL) {
		text_printf(detail, detailsz, "out of memory");
		r = -ENOMEM;
		goto out;
	}
	if ((fr = fido_assert_set_count(as, 1)) != FIDO_OK ||
	    (fr = fido_assert_set_rp(as, rp->rp_id)) != FIDO_OK ||
	    (fr = fido_assert_set_clientdata(as, client_data_json, cdj_len)) != FIDO_OK ||
	    (fr = fido_assert_set_up(as, FIDO_OPT_TRUE)) != FIDO_OK ||
	    (fr = fido_assert_set_uv(as, FIDO_OPT_TRUE)) != FIDO_OK) {
		text_printf(detail, detailsz, "the assertion could not be set up: %s", fido_strerr(fr));
		r = fr == FIDO_ERR_INTERNAL ? -ENOMEM : -EINVAL;
		goto out;
	}
	if ((fr = fido_assert_set_authdata_raw(as, 0, auth_data, ad_len)) != FIDO_OK) {
		text_printf(detail, detailsz, "the authenticator data does not decode (%s)",
		    fido_strerr(fr));
		r = -EINVAL;
		goto out;
	}
	if ((fr = fido_assert_set_sig(as, 0, sig, sig_len)) != FIDO_OK) {
		text_printf(detail, detailsz, "the signature could not be set: %s", fido_strerr(fr));
		r = -EINVAL;
		goto out;
	}
	fr = fido_assert_verify(as, 0, type, pk);
	if (fr != FIDO_OK) {
		if (fr == FIDO_ERR_INVALID_SIG) {
			text_printf(detail, detailsz, "the signature does not verify with the "
			    "enrolled %s key", webauthn_alg_name(cred->alg));
			r = -EPERM;
		} else {
			text_printf(detail, detailsz, "the assertion does not verify: %s",
			    fido_strerr(fr));
			r = fr == FIDO_ERR_UNSUPPORTED_ALGORITHM ? -ENOTSUP : -EINVAL;
		}
		goto out;
	}
	if (fido_assert_sigcount(as, 0) != count || fido_assert_flags(as, 0) != flags) {
		text_printf(detail, detailsz, "the authenticator data decodes inconsistently");
		r = -EINVAL;
		goto out;
	}
	if ((count != 0 || cred->sign_count != 0) && count <= cred->sign_count) {
		text_printf(detail, detailsz, "sign counter %" PRIu32 " is not greater than the "
		    "stored %" PRIu32 ": a cloned authenticator, or an assertion used twice?",
		    count, cred->sign_count);
		r = -EPERM;
		goto out;
	}
	*ret_sign_count = count;
	r = 0;
out:
	fido_assert_free(&as);
	es256_pk_free(&es);
	eddsa_pk_free(&ed);
	return r;
}

/* Registration. */

static int
cbor_text_eq(const cbor_item_t *item, const char *s)
{
	size_t len = strlen(s);

	return cbor_isa_string(item) && cbor_string_is_definite(item) &&
	    cbor_string_length(item) == len && memcmp(cbor_string_handle(item), s, len) == 0;
}

/* The attestation object {"fmt": text, "attStmt": map, "authData": bytes};
 * *ret_ad points into root. The statement itself is not checked. */
static int
parse_attestation_object(const uint8_t *ao, size_t ao_len, cbor_item_t **ret_root,
    const uint8_t **ret_ad, size_t *ret_ad_len, char *detail, size_t n)
{
	struct cbor_load_result res;
	cbor_item_t *root = NULL;
	const cbor_item_t *fmt = NULL, *stmt = NULL, *ad = NULL;
	struct cbor_pair *pairs;
	size_t i, used = 0;
	int r;

	if (ao == NULL || ao_len == 0 || ao_len > WEBAUTHN_ATTOBJ_MAX) {
		text_printf(detail, n, "the attestation object must have 1..%d bytes",
		    WEBAUTHN_ATTOBJ_MAX);
		return -EINVAL;
	}
	if (cbor_wellformed(ao, ao_len, &used) < 0 || used != ao_len) {
		text_printf(detail, n, "the attestation object is not one well-formed CBOR item "
		    "with definite lengths");
		return -EINVAL;
	}
	memset(&res, 0, sizeof(res));
	root = cbor_load(ao, ao_len, &res);
	if (root == NULL || res.error.code != CBOR_ERR_NONE) {
		text_printf(detail, n, "the attestation object is not CBOR");
		r = res.error.code == CBOR_ERR_MEMERROR ? -ENOMEM : -EINVAL;
		goto out;
	}
	if (res.read != ao_len) {
		text_printf(detail, n, "the attestation object has trailing bytes");
		r = -EINVAL;
		goto out;
	}
	if (!cbor_isa_map(root) || !cbor_map_is_definite(root)) {
		text_printf(detail, n, "the attestation object is not a CBOR map");
		r = -EINVAL;
		goto out;
	}
	pairs = cbor_map_handle(root);
	for (i = 0; i < cbor_map_size(root); i++) {
		const cbor_item_t **slot;

		if (cbor_text_eq(pairs[i].key, "fmt")) {
			slot = &fmt;
		} else if (cbor_text_eq(pairs[i].key, "attStmt")) {
			slot = &stmt;
		} else if (cbor_text_eq(pairs[i].key, "authData")) {
			slot = &ad;
		} else {
			text_printf(detail, n, "the attestation object has a member other than fmt, "
			    "attStmt and authData");
			r = -EINVAL;
			goto out;
		}
		if (*slot != NULL) {
			text_printf(detail, n, "the attestation object has a duplicate member");
			r = -EINVAL;
			goto out;
		}
		*slot = pairs[i].value;
	}
	if (fmt == NULL || !cbor_isa_string(fmt) || !cbor_string_is_definite(fmt) ||
	    cbor_string_length(fmt) == 0 || cbor_string_length(fmt) > FMT_MAX) {
		text_printf(detail, n, "the attestation object's fmt is missing or not a short text");
		r = -EINVAL;
		goto out;
	}
	if (stmt == NULL || !cbor_isa_map(stmt)) {
		text_printf(detail, n, "the attestation object's attStmt is missing or not a map");
		r = -EINVAL;
		goto out;
	}
	if (ad == NULL || !cbor_isa_bytestring(ad) || !cbor_bytestring_is_definite(ad)) {
		text_printf(detail, n, "the attestation object's authData is missing or not a "
		    "byte string");
		r = -EINVAL;
		goto out;
	}
	*ret_ad = cbor_bytestring_handle(ad);
	*ret_ad_len = cbor_bytestring_length(ad);
	*ret_root = root;
	root = NULL;
	r = 0;
out:
	if (root != NULL) {
		cbor_decref(&root);
	}
	return r;
}

/* The COSE key's algorithm (label 3) and the number of bytes it takes. */
static int
cose_alg(const uint8_t *p, size_t len, int *ret_alg, size_t *ret_used)
{
	struct cbor_load_result res;
	cbor_item_t *key = NULL;
	struct cbor_pair *pairs;
	int alg = 0, found = 0;
	size_t i;
	int r;

	if (cbor_wellformed(p, len, &len) < 0) {
		return -EINVAL;
	}
	memset(&res, 0, sizeof(res));
	key = cbor_load(p, len, &res);
	if (key == NULL || res.error.code != CBOR_ERR_NONE) {
		r = res.error.code == CBOR_ERR_MEMERROR ? -ENOMEM : -EINVAL;
		goto out;
	}
	if (!cbor_isa_map(key) || !cbor_map_is_definite(key)) {
		r = -EINVAL;
		goto out;
	}
	pairs = cbor_map_handle(key);
	for (i = 0; i < cbor_map_size(key); i++) {
		const cbor_item_t *k = pairs[i].key, *v = pairs[i].value;

		if (!cbor_isa_uint(k) || cbor_get_int(k) != 3) {
			continue;
		}
		if (found++ > 0) {
			r = -EINVAL;
			goto out;
		}
		if (cbor_isa_negint(v) && cbor_get_int(v) < 65536) {
			alg = -1 - (int)cbor_get_int(v);
		} else if (cbor_isa_uint(v) && cbor_get_int(v) < 65536) {
			alg = (int)cbor_get_int(v);
		} else {
			r = -EINVAL;
			goto out;
		}
	}
	if (!found) {
		r = -EINVAL;
		goto out;
	}
	*ret_alg = alg;
	*ret_used = res.read;
	r = 0;
out:
	if (key != NULL) {
		cbor_decref(&key);
	}
	return r;
}

int
webauthn_register(const struct webauthn_rp *rp, const uint8_t challenge[32],
    const uint8_t *client_data_json, size_t cdj_len,
    const uint8_t *attestation_object, size_t ao_len,
    struct webauthn_credential *ret, char *detail, size_t detailsz)
{
	struct webauthn_credential c;
	cbor_item_t *root = NULL;
	fido_cred_t *fc = NULL;
	es256_pk_t *es = NULL;
	const uint8_t *ad = NULL, *id;
	size_t ad_len = 0, id_len, off, used = 0;
	uint32_t count = 0;
	uint8_t flags = 0;
	int r, fr, alg = 0;

	if (ret == NULL || challenge == NULL) {
		text_printf(detail, detailsz, "missing argument");
		return -EINVAL;
	}
	if ((r = check_rp(rp, detail, detailsz)) < 0) {
		return r;
	}
	memset(&c, 0, sizeof(c));
	if ((r = check_client_data(rp, challenge, "webauthn.create", client_data_json, cdj_len,
	    detail, detailsz)) < 0) {
		goto out;
	}
	if ((r = parse_attestation_object(attestation_object, ao_len, &root, &ad, &ad_len,
	    detail, detailsz)) < 0 ||
	    (r = check_auth_head(rp, ad, ad_len, &flags, &count, detail, detailsz)) < 0) {
		goto out;
	}
	if ((flags & AD_FLAG_AT) == 0) {
		text_printf(detail, detailsz, "the authenticator data carries no credential (AT flag "
		    "not set)");
		r = -EINVAL;
		goto out;
	}
	off = AD_HEAD_LEN + AD_AAGUID_LEN;
	if (ad_len < off + 2) {
		text_printf(detail, detailsz, "the attested credential data is truncated");
		r = -EINVAL;
		goto out;
	}
	id_len = (size_t)ad[off] << 8 | ad[off + 1];
	off += 2;
	if (id_len == 0 || id_len > WEBAUTHN_CRED_ID_MAX) {
		text_printf(detail, detailsz, "the credential id must have 1..%d bytes",
		    WEBAUTHN_CRED_ID_MAX);
		r = -EINVAL;
		goto out;
	}
	if (ad_len - off <= id_len) {
		text_printf(detail, detailsz, "the attested credential data is truncated");
		r = -EINVAL;
		goto out;
	}
	id = ad + off;
	off += id_len;
	if ((r = cose_alg(ad + off, ad_len - off, &alg, &used)) < 0) {
		text_printf(detail, detailsz, "the credential's public key is not a COSE key");
		goto out;
	}
	off += used;
	if ((flags & AD_FLAG_ED) == 0 ? off != ad_len :
	    check_extensions(ad + off, ad_len - off) < 0) {
		text_printf(detail, detailsz, "the authenticator data has malformed or trailing "
		    "bytes after the public key");
		r = -EINVAL;
		goto out;
	}
	if (alg != WEBAUTHN_ALG_ES256 && alg != WEBAUTHN_ALG_EDDSA) {
		text_printf(detail, detailsz, "COSE algorithm %d is not supported (ES256 and EdDSA "
		    "are)", alg);
		r = -ENOTSUP;
		goto out;
	}

	/* libfido2 decodes the COSE key for the type it is told to expect. */
	if ((fc = fido_cred_new()) == NULL) {
		text_printf(detail, detailsz, "out of memory");
		r = -ENOMEM;
		goto out;
	}
	if ((fr = fido_cred_set_type(fc, alg)) != FIDO_OK ||
	    (fr = fido_cred_set_authdata_raw(fc, ad, ad_len)) != FIDO_OK) {
		text_printf(detail, detailsz, "the credential does not decode (%s)", fido_strerr(fr));
		r = fr == FIDO_ERR_INTERNAL ? -ENOMEM : -EINVAL;
		goto out;
	}
	if (fido_cred_id_len(fc) != id_len || fido_cred_id_ptr(fc) == NULL ||
	    memcmp(fido_cred_id_ptr(fc), id, id_len) != 0 ||
	    fido_cred_sigcount(fc) != count || fido_cred_flags(fc) != flags ||
	    fido_cred_type(fc) != alg || fido_cred_pubkey_ptr(fc) == NULL) {
		text_printf(detail, detailsz, "the authenticator data decodes inconsistently");
		r = -EINVAL;
		goto out;
	}
	memcpy(c.id, id, id_len);
	c.id_len = id_len;
	c.alg = alg;
	c.sign_count = count;
	if (alg == WEBAUTHN_ALG_ES256) {
		if (fido_cred_pubkey_len(fc) != 64) {
			text_printf(detail, detailsz, "the ES256 public key is not 64 bytes x||y");
			r = -EINVAL;
			goto out;
		}
		c.pk[0] = 0x04;
		memcpy(c.pk + 1, fido_cred_pubkey_ptr(fc), 64);
		c.pk_len = 65;
		/* A point off the curve would only fail later, at every assertion. */
		if ((es = es256_pk_new()) == NULL) {
			text_printf(detail, detailsz, "out of memory");
			r = -ENOMEM;
			goto out;
		}
		if (es256_pk_from_ptr(es, c.pk, c.pk_len) != FIDO_OK) {
			text_printf(detail, detailsz, "the ES256 public key is not a P-256 point");
			r = -EINVAL;
			goto out;
		}
	} else {
		if (fido_cred_pubkey_len(fc) != 32) {
			text_printf(detail, detailsz, "the EdDSA public key is not 32 bytes");
			r = -EINVAL;
			goto out;
		}
		memcpy(c.pk, fido_cred_pubkey_ptr(fc), 32);
		c.pk_len = 32;
	}
	*ret = c;
	r = 0;
out:
	fido_cred_free(&fc);
	es256_pk_free(&es);
	if (root != NULL) {
		cbor_decref(&root);
	}
	return r;
}
