/* verifier: the one token verifier every component uses. It checks a
 * token's MAC chain (with an audience key fetched from attestd and cached
 * until it expires, or for a strict-mode token by asking attestd, which
 * also gives the key's window), the key's time window, the claims and
 * caveats against the action about to happen, and finally consumes a use
 * of the token's id in an optional replay store.
 *
 * A verifier is for one audience and is not thread-safe: give each thread
 * its own (each holds one keep-alive connection to attestd).
 *
 * Reasons (stable strings, for logs and API replies):
 *   malformed            the token does not parse
 *   unsupported_version  not a w1 token
 *   wrong_audience       kid or claims name another audience
 *   unknown_key          attestd knows no key for the token's (gen, epoch)
 *   key_expired          every token that key could make has expired
 *   bad_mac              the MAC chain does not verify
 *   outside_key_window   iat outside [not_before, epoch_end), or exp after
 *                        not_after: the key could not have made this token
 *   attestd_unavailable  attestd could not be asked (down, refused, 503)
 *   strict_mode          an epoch-mode token, and attestd runs in strict
 *                        mode: it has no epoch keys, so the token cannot
 *                        be genuine
 *   already_used         the token's uses are exhausted
 *   replay_unavailable   the replay store failed: nothing was consumed
 *   and token_check's: wrong_vm, wrong_launch, wrong_operation,
 *   wrong_arguments, not_yet_valid, caveat_operation, missing_arguments,
 *   caveat_argument, unknown_caveat, expired                              */
#ifndef WARRANT_VERIFIER_H
#define WARRANT_VERIFIER_H

#include <stddef.h>
#include <stdint.h>

#include "replay.h"
#include "token.h"

#define VERIFIER_CACHE_MAX 32

/* An audience key and the window of tokens it may have made (see
 * GET /v1/keys in docs/attestd-api.md). */
struct verifier_key {
	uint8_t key[TOKEN_KEY_LEN];
	int64_t not_before;
	int64_t epoch_end;
	int64_t not_after;
};

/* The window alone, for a strict-mode token (POST /v1/verify's reply). */
struct verifier_window {
	int64_t not_before;
	int64_t epoch_end;
	int64_t not_after;
};

/* Where keys and strict-mode MAC checks come from: attestd, or a mock.
 * get_key returns 0, -ENOKEY for an unknown (gen, epoch), -EKEYEXPIRED
 * once the key's not_after has passed, -EPERM when the source runs in
 * strict mode and so has no audience keys (attestd's 409 strict_mode),
 * anything else if it cannot answer (-ENOENT then means no socket, not
 * no key).
 * check_mac returns 0 and the window of the token's (gen, epoch) in *ret,
 * -EBADMSG for a bad MAC chain, or the same codes; if it is NULL,
 * strict-mode tokens are refused (attestd_unavailable). */
struct verifier_source {
	int (*get_key)(void *ctx, const char *aud, uint32_t gen, uint64_t epoch,
	    struct verifier_key *ret);
	int (*check_mac)(void *ctx, const char *token, size_t len, struct verifier_window *ret);
	void *ctx;
};

struct verifier;

/* A verifier for audience aud that asks attestd on socket_path. */
int verifier_new(const char *socket_path, const char *aud, struct verifier **ret);
/* The same with another source; src is copied, src->ctx is borrowed. */
int verifier_new_with_source(const struct verifier_source *src, const char *aud,
    struct verifier **ret);
/* Wipes every cached key. */
void verifier_free(struct verifier *v);

/* Consume a use of each accepted token's id in r (borrowed; NULL: none).
 * Without a store, single-use tokens are the caller's problem. */
void verifier_set_replay(struct verifier *v, struct replay *r);

/* Verify token (NUL-terminated) for the action described by e. e->aud
 * may be NULL (this verifier's audience) and must otherwise be it;
 * e->now 0 means the current time. On success fills *ret (may be NULL)
 * with the effective grant; on failure returns a negative errno and sets
 * *ret_reason (may be NULL) to one of the reasons above:
 *   -EINVAL malformed, -EPROTONOSUPPORT unsupported_version, -EBADMSG bad_mac, -ENOKEY unknown_key,
 *   -EKEYEXPIRED key_expired, -EALREADY already_used, -EPERM for every
 *   other refusal, and the source's or store's code when unavailable. */
int verifier_verify(struct verifier *v, const char *token, const struct token_expect *e,
    struct token_grant *ret, const char **ret_reason);

/* Keys fetched from the source and cache hits since verifier_new. */
void verifier_stats(const struct verifier *v, uint64_t *ret_fetches, uint64_t *ret_hits);

#endif
