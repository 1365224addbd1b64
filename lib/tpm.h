/* tpm: every TPM command in the project goes through this module (ESAPI).
 * It holds no policy; attestd and attest-keys decide what to ask. */
#ifndef WARRANT_TPM_H
#define WARRANT_TPM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TPM_SRK_HANDLE   0x81000001u
#define TPM_NAME_MAX     68      /* sizeof(TPMU_NAME) */
#define TPM_BLOB_MAX     1024    /* a marshalled TPM2B_PUBLIC or TPM2B_PRIVATE */
#define TPM_PCR_SEL_STR_MAX 72   /* "sha256:0,1,...,23" and the NUL */

/* Error codes returned besides plain errno values:
 *   -ECOMM         the TPM could not be reached (TCTI failure): retry later
 *   -EKEYREJECTED  the PCR policy is not satisfied (PCRs changed)
 *   -ENOENT        the persistent SRK is missing
 *   -EBADMSG       a blob or name does not match what the TPM holds
 *   -EIO           any other TPM error                                   */

struct tpm;

struct tpm_pcr_sel {
	uint16_t bank;   /* TPM2_ALG_SHA256 */
	uint32_t mask;   /* bit i selects PCR i, 0..23 */
};

struct tpm_blob {
	uint8_t pub[TPM_BLOB_MAX];
	size_t pub_len;
	uint8_t priv[TPM_BLOB_MAX];
	size_t priv_len;
};

struct tpm_info {
	char manufacturer[5];     /* e.g. "IBM", "IFX", "STM" */
	char vendor[17];
	uint32_t firmware1, firmware2;
	uint32_t spec_revision;
};

int tpm_open(const char *tcti, struct tpm **ret);
void tpm_close(struct tpm *t);
uint64_t tpm_command_count(const struct tpm *t);
/* What the last failed call on t was about, for the caller's message:
 * the command and Tss2_RC_Decode's text with the code, or the check that
 * failed. "" if the last call did not describe a failure. */
const char *tpm_last_error(const struct tpm *t);

int tpm_get_info(struct tpm *t, struct tpm_info *ret);

int tpm_pcr_sel_parse(const char *s, struct tpm_pcr_sel *ret);   /* "sha256:0,2,4,7" */
int tpm_pcr_sel_format(const struct tpm_pcr_sel *sel, char *buf, size_t n);

/* SHA-256 over the selected PCR values, in index order (TPM2_PolicyPCR's
 * pcrDigest). */
int tpm_pcr_digest(struct tpm *t, const struct tpm_pcr_sel *sel, uint8_t ret[32]);
/* The policy digest of one TPM2_PolicyPCR over sel with pcr_digest,
 * computed in software from an all-zero starting digest. */
int tpm_policy_pcr(const struct tpm_pcr_sel *sel, const uint8_t pcr_digest[32],
    uint8_t ret[32]);
/* The same digest computed by the TPM: a trial session, PolicyPCR(sel)
 * over the current PCR values, PolicyGetDigest. */
int tpm_policy_pcr_trial(struct tpm *t, const struct tpm_pcr_sel *sel, uint8_t ret[32]);
int tpm_pcr_extend(struct tpm *t, unsigned index, const uint8_t digest[32]);

/* Reuse the persistent SRK at TPM_SRK_HANDLE (checking it is an ECC P-256
 * restricted decryption key) or, if create, create and persist it. */
int tpm_srk_ensure(struct tpm *t, bool create, uint8_t *ret_name, size_t *ret_name_len);

/* Provisioning: the keys are generated inside the TPM under the SRK. */
int tpm_create_root_key(struct tpm *t, const struct tpm_pcr_sel *sel,
    struct tpm_blob *ret, uint8_t ret_policy[32]);
int tpm_create_ak(struct tpm *t, struct tpm_blob *ret);
int tpm_blob_name(const struct tpm_blob *b, uint8_t *ret_name, size_t *ret_name_len);
/* The authPolicy in a blob's public area (-EBADMSG unless 32 bytes). */
int tpm_blob_auth_policy(const struct tpm_blob *b, uint8_t ret[32]);
/* The uncompressed point 04||x||y of an ECC P-256 public area (the AK). */
int tpm_blob_ecc_point(const struct tpm_blob *b, uint8_t ret[65]);

/* HMAC-SHA256 with a root key: load it under the SRK (whose name must be
 * srk_name), open a policy session salted with and bound to the SRK,
 * satisfy PolicyPCR(sel), compute the HMAC with the response encrypted,
 * flush every transient handle. msg_len <= 1024. */
int tpm_root_hmac(struct tpm *t, const uint8_t *srk_name, size_t srk_name_len,
    const struct tpm_blob *root, const struct tpm_pcr_sel *sel,
    const uint8_t *msg, size_t msg_len, uint8_t ret[32]);

/* Number of loaded transient objects and sessions (tests check for leaks). */
int tpm_count_transients(struct tpm *t, unsigned *ret_objects, unsigned *ret_sessions);

/* ---- quotes ---------------------------------------------------------- */

#define TPM_ATTEST_MAX    2304   /* sizeof(TPMS_ATTEST), a TPM2B_ATTEST's buffer */
#define TPM_SIGNATURE_MAX 1024   /* a marshalled TPMT_SIGNATURE fits */
#define TPM_NONCE_MAX     64     /* qualifyingData accepted by tpm_quote */

struct tpm_quote {
	uint8_t attest[TPM_ATTEST_MAX];   /* TPMS_ATTEST exactly as the TPM signed it */
	size_t attest_len;
	uint8_t sig[TPM_SIGNATURE_MAX];   /* the TPMT_SIGNATURE, TSS-marshalled */
	size_t sig_len;
	uint8_t pcrs[24][32];             /* pcrs[i]: PCR i's quoted value, for i in sel */
};

/* TPM2_Quote with the attestation key: load the AK blob (which must be
 * what tpm_create_ak makes) under the SRK (whose name must be srk_name),
 * quote sel with ECDSA-SHA256 and qualifyingData = nonce (at most
 * TPM_NONCE_MAX bytes), read the selected PCR values and check they are the
 * quoted ones (their SHA-256 is the quote's pcrDigest; quoting again if an
 * extend came in between), flush the AK on every path. ret is written only
 * on success; quote_document (quote.h) takes its fields as they are. */
int tpm_quote(struct tpm *t, const uint8_t *srk_name, size_t srk_name_len,
    const struct tpm_blob *ak, const struct tpm_pcr_sel *sel, const uint8_t *nonce,
    size_t nonce_len, struct tpm_quote *ret);

/* The current value of every PCR in sel, into ret[i] for each selected i
 * (other entries untouched); all values from one state of the PCRs
 * (PCR_Read returns at most 8 per call; re-read if they change meanwhile). */
int tpm_pcr_read_values(struct tpm *t, const struct tpm_pcr_sel *sel, uint8_t ret[24][32]);

/* TPM2_ReadClock's clockInfo.resetCount: changes with every TPM reset
 * (reboot), which sets the launch PCR back to zero. Unlike the copy inside
 * a quote, it is not obfuscated. */
int tpm_reset_count(struct tpm *t, uint32_t *ret);

#endif
