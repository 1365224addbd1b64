/* Targets webauthn_verify_assertion and webauthn_register (lib/webauthn.c).
 *
 * Input: one selector byte (bit 0: the EdDSA credential instead of the
 * ES256 one; bit 1: a stored counter of 5 instead of 0), the lengths of
 * clientDataJSON and authenticator data (two bytes each, big-endian), then
 * those two and the signature. The whole input is also given to
 * webauthn_register as the attestation object, with a fixed valid
 * clientDataJSON so that the CBOR parsing is reached.
 *
 * Whatever the input: 0 with a result that keeps the rules (counter moved
 * forward; a credential of a supported algorithm and sane sizes), or a
 * negative code with a NUL-terminated, non-empty detail. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "b64url.h"
#include "webauthn.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Keys of a software passkey; the corpus holds assertions they signed over
 * a challenge of 32 bytes 0x01 for rp "localhost". */
#define ES256_PK "BJ1FDXQSAT66YQTgk_-AcGQCNAubqeIgnBD3VVKykpExDByaqYyW1aHaI07MjV8xIbmmu_091xI4ZJTGYTR9E2M"
#define EDDSA_PK "91tnOWKlIxotngdniFEizERHPAdgeos4RnGxiwx5n4s"
#define CDJ_CREATE "{\"type\":\"webauthn.create\",\"challenge\":" \
	"\"AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE\",\"origin\":\"https://localhost:8443\"}"

static const char *const origins[] = { "https://localhost:8443", NULL };
static const struct webauthn_rp rp = { "localhost", origins };

static void
check_result(int r, const char *detail, size_t detailsz)
{
	if (r > 0 || (r < 0 && (strnlen(detail, detailsz) == detailsz || detail[0] == '\0'))) {
		__builtin_trap();
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct webauthn_credential cred, reg;
	uint8_t challenge[32];
	char detail[256];
	size_t cdj_len, ad_len, n = 0;
	uint32_t count = 0xdeadbeef;
	const char *pk;
	int r;

	memset(challenge, 0x01, sizeof(challenge));
	if (size >= 5) {
		memset(&cred, 0, sizeof(cred));
		cred.alg = (data[0] & 1) ? WEBAUTHN_ALG_EDDSA : WEBAUTHN_ALG_ES256;
		pk = (data[0] & 1) ? EDDSA_PK : ES256_PK;
		if (b64url_decode(pk, strlen(pk), cred.pk, sizeof(cred.pk), &n) != 0) {
			__builtin_trap();
		}
		cred.pk_len = n;
		cred.id_len = 16;
		cred.sign_count = (data[0] & 2) ? 5 : 0;
		cdj_len = (size_t)data[1] << 8 | data[2];
		ad_len = (size_t)data[3] << 8 | data[4];
		if (cdj_len <= size - 5 && ad_len <= size - 5 - cdj_len) {
			const uint8_t *cdj = data + 5, *ad = cdj + cdj_len, *sig = ad + ad_len;
			size_t sig_len = size - 5 - cdj_len - ad_len;

			detail[0] = '\0';
			r = webauthn_verify_assertion(&rp, challenge, &cred, cdj, cdj_len, ad, ad_len,
			    sig, sig_len, &count, detail, sizeof(detail));
			check_result(r, detail, sizeof(detail));
			if (r == 0 && (count != 0 || cred.sign_count != 0) &&
			    count <= cred.sign_count) {
				__builtin_trap();
			}
			if (r < 0 && count != 0xdeadbeef) {
				__builtin_trap();
			}
		}
	}

	detail[0] = '\0';
	memset(&reg, 0, sizeof(reg));
	r = webauthn_register(&rp, challenge, (const uint8_t *)CDJ_CREATE, strlen(CDJ_CREATE),
	    data, size, &reg, detail, sizeof(detail));
	check_result(r, detail, sizeof(detail));
	if (r == 0 && (reg.id_len == 0 || reg.id_len > WEBAUTHN_CRED_ID_MAX ||
	    !((reg.alg == WEBAUTHN_ALG_ES256 && reg.pk_len == 65 && reg.pk[0] == 0x04) ||
	    (reg.alg == WEBAUTHN_ALG_EDDSA && reg.pk_len == 32)))) {
		__builtin_trap();
	}
	return 0;
}
