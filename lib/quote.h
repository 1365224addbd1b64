/* quote: the quote document attestd returns and its offline verification
 * (docs/event-log.md, "Quotes"): the TPM's TPMS_ATTEST bytes and TPMT_SIGNATURE
 * exactly as the TPM produced them (so tpm2_checkquote can check them too),
 * the PCR values, and the event log. */
#ifndef WARRANT_QUOTE_H
#define WARRANT_QUOTE_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "tpm.h"

#define QUOTE_NONCE_MAX 64

/* Assemble the quote document. values[i] is PCR i's value for each i in sel. */
json_t *quote_document(const uint8_t *attest, size_t attest_len, const uint8_t *sig,
    size_t sig_len, const struct tpm_pcr_sel *sel, const uint8_t values[24][32],
    unsigned launch_pcr, const char *event_log, size_t event_log_len);

/* Verify a quote document offline with the AK's public key (PEM): the
 * signature over the attestation, its magic and type, the nonce, the PCR
 * selection and digest against the listed values, and the event log replayed
 * into the launch PCR. On success *ret_report is
 * {"valid":true,"pcrs":{...},"launches":[{"vm","launch_digest"}...]};
 * on failure a negative errno and *ret_reason. */
int quote_verify(const json_t *doc, const char *ak_pem, size_t ak_pem_len,
    const uint8_t *nonce, size_t nonce_len, json_t **ret_report, const char **ret_reason);

#endif
