/* keyring: attestd's keys and the only caller of lib/tpm.h in attestd.
 *
 * The root key of each generation stays in the TPM. Per epoch e the TPM
 * derives K_{g,e} = HMAC(root_g, "warrant/v1/epoch" 0x00 be64(e)); the
 * keyring caches it in a fixed table of slots in locked, non-dumpable
 * memory and wipes a slot once no token made under it can still be valid
 * (now > epoch_end + max_ttl). Audience keys K_{g,e,aud} =
 * HMAC(K_{g,e}, "warrant/v1/aud" 0x00 aud) are derived on demand and wiped
 * after use. In strict mode every token's t0 is a TPM HMAC over
 * "warrant/v1/strict" 0x00 token_strict_message(input), and no epoch key
 * is ever derived: there are no audience keys to serve, and an epoch-mode
 * token cannot be genuine (anyone holding an audience key could have made
 * it), so both are refused with -EPERM.
 *
 * It also watches the TPM: reachable or not, and whether the PCRs still
 * satisfy the root key's policy. Minting needs both as of the last check.
 * Single-threaded: callers serialise. */
#ifndef WARRANT_ATTESTD_KEYRING_H
#define WARRANT_ATTESTD_KEYRING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "keystore.h"
#include "token.h"
#include "tpm.h"

#define KEYRING_SLOTS 64
#define KEYRING_ERR_MAX 256

/* Error codes besides those of lib/tpm.h:
 *   -ENOENT       no such generation or epoch (future, before the
 *                 generation existed, or after it was replaced)
 *   -EKEYEXPIRED  every token that key could have made has expired
 *   -EAGAIN       a TPM command is needed and the TPM is unreachable, the
 *                 policy is violated or unknown, or nothing is provisioned
 *   -EBADMSG      a token's MAC does not match
 *   -ERANGE       a token's iat lies outside its key's epoch
 *   -EPERM        strict mode: no epoch key exists (audience keys,
 *                 epoch-mode tokens)                                     */

/* The TPM as the keyring sees it. The default (NULL backend) is lib/tpm.h;
 * unit tests put a mock here. Each returns 0 or a negative errno, -ECOMM
 * when the TPM cannot be reached. */
struct keyring_backend {
	int (*open)(void *arg, const char *tcti);
	void (*close)(void *arg);
	int (*root_hmac)(void *arg, const struct keystore *ks, const struct keystore_gen *g,
	    const uint8_t *msg, size_t len, uint8_t ret[32]);
	int (*pcr_digest)(void *arg, const struct tpm_pcr_sel *sel, uint8_t ret[32]);
	uint64_t (*commands)(void *arg);   /* since open */
	const char *(*last_error)(void *arg);  /* may be NULL: what failed last */
	/* For the launch PCR, the event log's name and quotes; a mock may
	 * leave them NULL (-EOPNOTSUPP). */
	int (*pcr_read)(void *arg, const struct tpm_pcr_sel *sel, uint8_t ret[24][32]);
	int (*pcr_extend)(void *arg, unsigned index, const uint8_t digest[32]);
	int (*reset_count)(void *arg, uint32_t *ret);
	int (*quote)(void *arg, const struct keystore *ks, const struct tpm_pcr_sel *sel,
	    const uint8_t *nonce, size_t nonce_len, struct tpm_quote *ret);
	void *arg;
};

struct keyring_params {
	int64_t epoch_seconds;
	int64_t max_ttl_seconds;
	bool strict;
	const char *tcti;
	/* Epoch mode: keyring_check derives the next epoch's key once the
	 * boundary is at most this many seconds away, so that the first mint
	 * of an epoch sends no TPM command. 0: never ahead of time. At most
	 * half an epoch is used. The key is neither served nor used before
	 * its epoch begins. */
	int64_t prefetch_seconds;
};

enum keyring_tpm_state {
	KEYRING_TPM_OK = 0,
	KEYRING_TPM_UNREACHABLE,
};

enum keyring_policy_state {
	KEYRING_POLICY_UNKNOWN = 0,
	KEYRING_POLICY_OK,
	KEYRING_POLICY_VIOLATED,
};

struct keyring_status {
	enum keyring_tpm_state tpm;
	enum keyring_policy_state policy;
	bool minting;
	bool strict;
	uint32_t generation;                  /* 0 if nothing is loaded */
	size_t n_gens;
	uint32_t gens[KEYSTORE_MAX_GENS];
	uint64_t epoch;
	uint64_t tpm_commands;
	uint64_t tokens_minted;
	size_t cached_epoch_keys;             /* always 0 in strict mode */
	char last_error[KEYRING_ERR_MAX];
};

/* An audience key and the window of tokens it may check. */
struct keyring_key {
	uint8_t key[TOKEN_KEY_LEN];
	uint32_t gen;
	uint64_t epoch;
	int64_t not_before;    /* epoch start */
	int64_t epoch_end;
	int64_t not_after;     /* epoch_end + max_ttl */
};

/* The window of tokens a (gen, epoch) key may have made, without the key:
 * what POST /v1/verify tells a verifier of a strict-mode token. */
struct keyring_window {
	uint32_t gen;
	uint64_t epoch;
	int64_t not_before;
	int64_t epoch_end;
	int64_t not_after;
};

struct keyring;

/* be may be NULL (the real TPM); it is copied. Opens no TPM yet. */
int keyring_new(const struct keyring_params *p, const struct keyring_backend *be,
    struct keyring **ret);
/* Wipes every key. */
void keyring_free(struct keyring *kr);

/* Replace the keystore (taking ownership on success) or re-read it from
 * state_dir. Slots of generations that disappeared are wiped; the policy
 * state becomes unknown until the next keyring_check. */
int keyring_set_keystore(struct keyring *kr, struct keystore *ks);
int keyring_load(struct keyring *kr, const char *state_dir, char *err, size_t errsz);

/* The health check: reconnect if needed, compare the PCRs with the policy,
 * wipe expired slots, and (epoch mode) derive the current epoch key, and
 * near the end of an epoch the next one, ahead of the first mint that
 * needs it. Minting is declared possible only if all of that worked. Logs
 * state transitions once. */
void keyring_check(struct keyring *kr, int64_t now);

/* The unix time at which keyring_check must run even if the health
 * interval has not passed: the second after the earliest cached key's
 * not_after (so that it is wiped on time), or the start of the window in
 * which the next epoch's key is derived. Always later than now;
 * INT64_MAX if nothing is due. */
int64_t keyring_next_deadline(const struct keyring *kr, int64_t now);
bool keyring_minting(const struct keyring *kr);

/* Mint: fills c->iat and c->aud is the audience; the kid is the current
 * generation, epoch of now, and the keyring's mode. *ret is the token
 * (free it with keyring_free_token). */
int keyring_mint(struct keyring *kr, int64_t now, const struct token_claims *c, char **ret);
void keyring_free_token(char *token);

/* The audience key of (gen, epoch) under the serving rules. The caller
 * wipes ret->key. -EPERM in strict mode. */
int keyring_audience_key(struct keyring *kr, int64_t now, const char *aud, uint32_t gen,
    uint64_t epoch, struct keyring_key *ret);

/* Check a token's MAC chain and that its iat lies in its key's epoch; on
 * success *ret (may be NULL) is the window of the token's kid under the
 * serving rules, as keyring_audience_key would give it. In strict mode an
 * epoch-mode token is refused (-EPERM) before anything else. */
int keyring_verify(struct keyring *kr, int64_t now, const struct token *t,
    struct keyring_window *ret);

void keyring_status(const struct keyring *kr, int64_t now, struct keyring_status *ret);
uint32_t keyring_generation(const struct keyring *kr);

/* The launch PCR and quotes (attestd/launchlog.c, POST /v1/quote): plain
 * TPM commands, no key needed. -EAGAIN while the TPM is unreachable (the
 * health check reconnects); a TCTI failure marks it unreachable. */
int keyring_pcr_read(struct keyring *kr, const struct tpm_pcr_sel *sel, uint8_t ret[24][32]);
int keyring_pcr_extend(struct keyring *kr, unsigned index, const uint8_t digest[32]);
int keyring_reset_count(struct keyring *kr, uint32_t *ret);
/* A quote with the attestation key over sel; -ENOENT without a keystore
 * or an AK in it. */
int keyring_quote(struct keyring *kr, const struct tpm_pcr_sel *sel, const uint8_t *nonce,
    size_t nonce_len, struct tpm_quote *ret);
/* The root key's policy PCRs; -ENOENT before a keystore is loaded. */
int keyring_policy_pcrs(const struct keyring *kr, struct tpm_pcr_sel *ret);

/* Epoch arithmetic, exported for tests. */
uint64_t keyring_epoch_of(const struct keyring *kr, int64_t now);

#endif
