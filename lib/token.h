/* token: the approval token format (docs/token-format.md).
 *
 *   w1.<kid>.<payload>[.<caveat>]*.<tag>
 *
 * Every segment after the version is unpadded base64url; kid, payload and
 * caveats are canonical JSON. t0 = HMAC-SHA256(K, "w1.<kid>.<payload>"),
 * t_i = HMAC-SHA256(t_{i-1}, "<caveat_i>") over the encoded segment, and the
 * tag is the last t. This module parses, encodes, attenuates and checks; it
 * holds no key and does no I/O. */
#ifndef WARRANT_TOKEN_H
#define WARRANT_TOKEN_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TOKEN_VERSION       "w1"
#define TOKEN_MAX_LEN       8192
#define TOKEN_MAX_CAVEATS   16
#define TOKEN_MAX_APPROVERS 16
#define TOKEN_MAX_OPS       16
#define TOKEN_KEY_LEN       32
#define TOKEN_TAG_LEN       32
#define TOKEN_ID_MAX        64  /* audiences, VM, request and approver ids */
#define TOKEN_OP_MAX        128
#define TOKEN_PREFIX_MAX    256
#define TOKEN_JTI_LEN       22  /* base64url of 16 random bytes */
#define TOKEN_HEX256_LEN    64
#define TOKEN_MAX_USES      1000000

enum token_mode {
	TOKEN_MODE_EPOCH = 0,   /* t0 under an audience key derived in software */
	TOKEN_MODE_STRICT = 1,  /* t0 computed by the TPM; verified by attestd */
};

struct token_kid {
	uint32_t gen;           /* root key generation */
	uint64_t epoch;
	enum token_mode mode;
	char aud[TOKEN_ID_MAX + 1];
};

struct token_claims {
	char jti[TOKEN_JTI_LEN + 1];
	int64_t iat;
	int64_t exp;
	char aud[TOKEN_ID_MAX + 1];
	char vm[TOKEN_ID_MAX + 1];
	char launch[TOKEN_HEX256_LEN + 1];   /* launch digest, hex */
	char op[TOKEN_OP_MAX + 1];
	char args[TOKEN_HEX256_LEN + 1];     /* SHA-256 of canonical args, hex */
	uint32_t uses;
	char request[TOKEN_ID_MAX + 1];      /* "" for automatic tokens */
	size_t n_approvers;
	char approvers[TOKEN_MAX_APPROVERS][TOKEN_ID_MAX + 1];
};

enum token_caveat_type {
	TOKEN_CAVEAT_EXP = 1,         /* {"type":"exp","exp":N} */
	TOKEN_CAVEAT_OPS,             /* {"type":"ops","ops":[...]} */
	TOKEN_CAVEAT_ARG_PREFIX,      /* {"type":"arg_prefix","arg":K,"prefix":P} */
	TOKEN_CAVEAT_USES,            /* {"type":"uses","uses":N} */
};

struct token_caveat {
	enum token_caveat_type type;
	int64_t exp;
	uint32_t uses;
	size_t n_ops;
	char ops[TOKEN_MAX_OPS][TOKEN_OP_MAX + 1];
	char arg[TOKEN_ID_MAX + 1];
	char prefix[TOKEN_PREFIX_MAX + 1];
};

struct token;  /* a parsed token; opaque */

/* Parse and validate the structure of a token. Checks no MAC. */
int token_parse(const char *s, size_t len, struct token **ret);
void token_free(struct token *t);

const struct token_kid *token_kid(const struct token *t);
const struct token_claims *token_claims(const struct token *t);
size_t token_caveat_count(const struct token *t);
const struct token_caveat *token_caveat(const struct token *t, size_t i);

/* Decode one kid or payload segment. The _json variants take the general
 * path (jansson, then a canonical re-encoding check); they accept exactly
 * the same inputs and exist so the fuzzer can hold the two to each other. */
int token_kid_decode(const char *seg, size_t len, struct token_kid *ret);
int token_claims_decode(const char *seg, size_t len, struct token_claims *ret);
int token_kid_decode_json(const char *seg, size_t len, struct token_kid *ret);
int token_claims_decode_json(const char *seg, size_t len, struct token_claims *ret);
int token_caveat_decode(const char *seg, size_t len, struct token_caveat *ret);
int token_caveat_decode_json(const char *seg, size_t len, struct token_caveat *ret);

/* Check the MAC chain given the audience key (epoch mode), or given t0
 * computed elsewhere (strict mode). -EBADMSG on mismatch. */
int token_verify_mac(const struct token *t, const uint8_t key[TOKEN_KEY_LEN]);
int token_verify_chain(const struct token *t, const uint8_t t0[TOKEN_TAG_LEN]);

/* The bytes t0 is computed over: "w1.<kid>.<payload>". */
int token_signing_input(const struct token_kid *kid, const struct token_claims *c,
    char **ret, size_t *ret_len);
/* The 32-byte message a strict-mode t0 is the TPM HMAC of. */
void token_strict_message(const char *input, size_t len, uint8_t ret[32]);
const char *token_signed_part(const struct token *t, size_t *ret_len);
/* The whole token as parsed (NUL-terminated); valid until token_free. */
const char *token_string(const struct token *t, size_t *ret_len);

/* Append the tag t0 to a signing input: a complete token without caveats. */
int token_finish(const char *input, size_t len, const uint8_t t0[TOKEN_TAG_LEN], char **ret);
/* Encode and MAC in one step (epoch mode). */
int token_encode(const struct token_kid *kid, const struct token_claims *c,
    const uint8_t key[TOKEN_KEY_LEN], char **ret);

/* Append a caveat. Needs no key: t_{n+1} = HMAC(t_n, caveat). */
int token_attenuate(const char *s, size_t len, const struct token_caveat *cav, char **ret);
int token_caveat_from_json(const json_t *j, struct token_caveat *ret);
json_t *token_caveat_to_json(const struct token_caveat *c);

/* What a verifier is about to allow. NULL fields are not checked, except
 * that arg_prefix caveats fail closed without args. */
struct token_expect {
	const char *aud;            /* required */
	const char *vm;
	const char *launch;         /* hex */
	const char *op;
	const char *args_sha256;    /* hex; computed from args if NULL */
	const json_t *args;
	const char *request;        /* NULL: not checked; else the request id it must carry */
	bool need_approvers;        /* at least one person's verified approval */
	int64_t now;
	int64_t skew;               /* allowed for iat in the future */
};

/* The effective grant after every caveat: earliest expiry, fewest uses;
 * and the people whose approval attestd verified before it minted. */
struct token_grant {
	int64_t exp;
	uint32_t uses;
	size_t n_approvers;
	char approvers[TOKEN_MAX_APPROVERS][TOKEN_ID_MAX + 1];
};

/* Check claims and caveats against what is about to happen. On failure
 * returns a negative errno and sets *ret_reason to a stable string. */
int token_check(const struct token *t, const struct token_expect *e,
    struct token_grant *ret, const char **ret_reason);

/* Decode for display: {"version","kid","claims","caveats"}. */
json_t *token_to_json(const struct token *t);
json_t *token_claims_to_json(const struct token_claims *c);

/* HMAC-SHA256; exported for the key derivations that share it. */
int token_hmac(const uint8_t *key, size_t keylen, const void *msg, size_t len,
    uint8_t ret[32]);

/* A fresh token id from getrandom(2). */
int token_new_jti(char ret[TOKEN_JTI_LEN + 1]);

#endif
