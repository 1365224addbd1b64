/* requests: the approver's rules over approval requests, shared by the
 * proxies' API (proxyapi.c) and the web form (web.c) (docs/approver.md,
 * "Rules"). Every change is one transaction with its audit record; every
 * change wakes the proxies' long polls.
 *
 * Thread-safe: each call takes the calling thread's own store handle. */
#ifndef WARRANT_APPROVER_REQUESTS_H
#define WARRANT_APPROVER_REQUESTS_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "settings.h"
#include "store.h"

struct requests;

/* The minter: how the approver asks attestd (tests replace it). It gets
 * the request and the approvals (a JSON array of assertion objects) and
 * returns 0 with *ret_token, -EAGAIN when attestd says its own quorum is
 * not met yet (the request stays pending), or another error with a detail. */
typedef int (*requests_mint_fn)(void *ctx, const struct approval_request *ar,
    const json_t *approvals, char **ret_token, char *detail, size_t detailsz);

int requests_new(const struct settings *cfg, requests_mint_fn mint, void *mint_ctx,
    struct requests **ret);
void requests_free(struct requests *rq);

/* A proxy's submission (docs/approvals.md, the API's POST body), already
 * parsed and checked by requests_parse_submit. 0: stored (*ret_created
 * true) or the same content was stored before (false); -EEXIST: the id is
 * taken with other content; -ENOSPC: max_pending reached. */
struct requests_submit {
	struct approval_request ar;
	json_t *args;                 /* owned; its canonical SHA-256 is ar.args_sha256 */
	char reason[APPROVAL_REASON_MAX + 1];
	char owner[STORE_NAME_MAX + 1];
	int64_t expires;              /* the proxy's own deadline (0: none) */
};
/* Strict: unknown fields, wrong types, args_sha256 that is not the SHA-256
 * of args' canonical form, a reason with control characters: -EINVAL with
 * a detail naming the field. */
int requests_parse_submit(const char *body, size_t len, struct requests_submit *ret,
    char *detail, size_t detailsz);
void requests_submit_clear(struct requests_submit *s);
int requests_submit(struct requests *rq, struct store *st, const char *caller,
    const struct requests_submit *sub, int64_t now, struct store_request *ret, bool *ret_created);

/* A person's decision. approval: the assertion object (NULL for a deny;
 * required for an approve). Errors, each with a detail for the page:
 *   -ENOENT no such request; -ESTALE no longer pending (or expired);
 *   -EPERM this person may not review it (owner, disabled, not an approver);
 *   -EEXIST this person already decided; -EINVAL a bad reason or approval
 *   (empty reason, the assertion's challenge is not this request's digest,
 *   the credential is not this person's).
 * On the approval that meets the quorum, mints (synchronously) and stores
 * the token; *ret_state gets the request's state afterwards. */
int requests_decide(struct requests *rq, struct store *st, const struct store_user *who,
    const char *id, bool approve, const char *reason, const json_t *approval, int64_t now,
    enum store_state *ret_state, char *detail, size_t detailsz);

/* At start: requests left in minting by a crash become failed ("the
 * approver stopped while minting"; attestd's own record of minted request
 * ids keeps a second mint from happening). notify_start calls it. */
int requests_recover(struct requests *rq, struct store *st, int64_t now);
/* Pending requests past their deadline become expired (audited). */
int requests_expire_due(struct requests *rq, struct store *st, int64_t now);
/* The proxy gave up: pending -> cancelled. Same errors as store. */
int requests_cancel(struct requests *rq, struct store *st, const char *caller, const char *id,
    int64_t now);
/* The token, once, for its own caller (store_token_take), audited. */
int requests_pickup(struct requests *rq, struct store *st, const char *caller, const char *id,
    int64_t now, char **ret_token);

/* Long poll: block until the request's state may have changed or
 * deadline_ms (CLOCK_MONOTONIC) passes; the caller re-reads the state.
 * requests_changed wakes every waiter. */
void requests_wait_change(struct requests *rq, uint64_t seen_generation, uint64_t deadline_ms);
uint64_t requests_generation(struct requests *rq);
void requests_changed(struct requests *rq);
/* Wake every waiter for good (shutdown). */
void requests_shutdown(struct requests *rq);

/* The minter for the real attestd: POST /v1/mint on its unix socket with
 * the mint role (aud, vm, launch_digest, op, args_sha256, ttl, uses 1,
 * request, approvals). ctx: a struct requests_attestd from
 * requests_attestd_new (one uhttp handle per thread inside). */
struct requests_attestd;
int requests_attestd_new(const char *socket_path, struct requests_attestd **ret);
void requests_attestd_free(struct requests_attestd *a);
int requests_attestd_mint(void *ctx, const struct approval_request *ar, const json_t *approvals,
    char **ret_token, char *detail, size_t detailsz);
#define REQUESTS_LAUNCH_TIMEOUT_MS 1000
#define REQUESTS_LAUNCH_CACHE      64      /* recent answers kept */
#define REQUESTS_LAUNCH_CACHE_MS   2000    /* and for how long */

/* Whether attestd still knows the VM's launch: GET /v1/launches/VM
 * (docs/attestd-api.md) answers 200 {"vm","launch_digest"} or 404.
 * 1 known with this digest, 0 unknown or another digest, negative errno
 * when attestd cannot be asked or does not answer within
 * REQUESTS_LAUNCH_TIMEOUT_MS. An answer (1 or 0) is reused for
 * REQUESTS_LAUNCH_CACHE_MS: it is shown to people, and attestd checks the
 * launch itself at every mint. Thread-safe. */
int requests_attestd_knows_launch(struct requests_attestd *a, const char *vm,
    const char *launch_digest);

#endif
