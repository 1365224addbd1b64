/* webauthn: the two WebAuthn ceremonies Warrant needs, checked with
 * libfido2 (signatures, COSE keys, authenticator data) and libcbor (the
 * attestation object), never by hand (docs/approvals.md).
 *
 *  - registration (approver, when a person adds a passkey): parse the
 *    browser's clientDataJSON and attestationObject, check type, challenge,
 *    origin, rpIdHash and the UP/UV flags, and return the credential: its
 *    id, algorithm, public key and sign counter. The attestation statement
 *    is not checked (attestation "none"): the trust in a key comes from
 *    root enrolling it in attestd, not from its maker.
 *  - assertion (attestd, before it mints): check one assertion against an
 *    enrolled credential: clientDataJSON's type is "webauthn.get", its
 *    challenge is exactly the expected 32 bytes, its origin is one of the
 *    allowed ones, it is not token-bound (tokenBinding status "present"); the authenticator data's rpIdHash is SHA-256(rp_id), UP
 *    and UV are set; the signature verifies over authData || SHA-256(cdj);
 *    and the sign counter moved forward (when either side is non-zero).
 *
 * Every function fills `detail` (NUL-terminated, truncated to detailsz)
 * with a reason a person can act on, and returns a negative errno:
 *   -EINVAL     malformed input (not base64url, not CBOR, not JSON, ...)
 *   -EPERM      well-formed but refused (origin, rp, flags, challenge,
 *               signature, counter): the detail names which
 *   -ENOTSUP    an algorithm other than ES256 and EdDSA
 *   -ENOMEM, -EIO otherwise. */
#ifndef WARRANT_WEBAUTHN_H
#define WARRANT_WEBAUTHN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define WEBAUTHN_CRED_ID_MAX      1023   /* bytes of a credential id */
#define WEBAUTHN_PK_MAX           65     /* ES256: 04||x||y; EdDSA: 32 bytes */
#define WEBAUTHN_CDJ_MAX          4096   /* bytes of clientDataJSON */
#define WEBAUTHN_AUTHDATA_MAX     4096   /* bytes of authenticator data */
#define WEBAUTHN_ATTOBJ_MAX       16384  /* bytes of an attestation object */
#define WEBAUTHN_SIG_MAX          256
#define WEBAUTHN_ORIGIN_MAX       255
#define WEBAUTHN_RP_ID_MAX        253

#define WEBAUTHN_ALG_ES256        (-7)   /* COSE algorithm ids */
#define WEBAUTHN_ALG_EDDSA        (-8)

struct webauthn_credential {
	uint8_t id[WEBAUTHN_CRED_ID_MAX];
	size_t id_len;
	int alg;                              /* WEBAUTHN_ALG_* */
	uint8_t pk[WEBAUTHN_PK_MAX];          /* ES256: 65 bytes 04||x||y; EdDSA: 32 */
	size_t pk_len;
	uint32_t sign_count;
};

/* What the relying party is: its id (a host name) and the origins its
 * pages are served from ("https://host:port"). */
struct webauthn_rp {
	const char *rp_id;
	const char *const *origins;           /* NULL-terminated */
};

/* Registration. client_data_json and attestation_object are raw bytes
 * (the caller base64url-decodes the browser's fields). */
int webauthn_register(const struct webauthn_rp *rp, const uint8_t challenge[32],
    const uint8_t *client_data_json, size_t cdj_len,
    const uint8_t *attestation_object, size_t ao_len,
    struct webauthn_credential *ret, char *detail, size_t detailsz);

/* Assertion. On success *ret_sign_count gets the authenticator's new
 * counter (to be stored by the caller before the mint is answered). */
int webauthn_verify_assertion(const struct webauthn_rp *rp, const uint8_t challenge[32],
    const struct webauthn_credential *cred,
    const uint8_t *client_data_json, size_t cdj_len,
    const uint8_t *auth_data, size_t ad_len,
    const uint8_t *sig, size_t sig_len,
    uint32_t *ret_sign_count, char *detail, size_t detailsz);

/* A key's fingerprint, for people to compare out of band (root reads the
 * one `attestctl approvers add` prints, the person the one the approver's
 * Passkeys page shows): "SHA256:" and the unpadded standard base64 of
 * SHA-256 over the raw public key (ES256: the 65 bytes 04||x||y; EdDSA:
 * the 32 bytes), as OpenSSH prints key fingerprints. -EINVAL for a key
 * that does not fit its algorithm, -ENOTSUP for another algorithm; ret
 * is written only on success. */
#define WEBAUTHN_FP_MAX           51     /* "SHA256:" + 43 characters + NUL */
int webauthn_fingerprint(const struct webauthn_credential *c, char ret[WEBAUTHN_FP_MAX]);

/* "ES256" / "EdDSA" and back: -EINVAL for anything else. */
const char *webauthn_alg_name(int alg);
int webauthn_alg_parse(const char *name, int *ret);

#endif
