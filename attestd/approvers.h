/* approvers: the people attestd accepts approvals from, their passkey
 * credentials and sign counters (STATE_DIR/approvers.json), and the
 * decision over a mint request's approvals (docs/approvals.md).
 *
 * Trust in a credential comes only from root enrolling it here (the admin
 * role); the approver service merely carries assertions. The decision
 * recomputes the request's digest, checks every assertion against the
 * enrolled credential of the person it names, and counts distinct people
 * against attestd's own quorum. A single failing assertion refuses the
 * whole mint: nothing is skipped.
 *
 * The store file:
 *   {"v":1,"approvers":[{"name":N,"credentials":[{"credential_id":B64URL,
 *     "alg":"ES256"|"EdDSA","public_key":B64URL,"sign_count":C,"added":T}]}]}
 * A person with no credential left is removed. */
#ifndef WARRANT_ATTESTD_APPROVERS_H
#define WARRANT_ATTESTD_APPROVERS_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "approval.h"
#include "token.h"
#include "webauthn.h"

#define APPROVERS_FILE           "approvers.json"
#define APPROVERS_MAX_PEOPLE     256
#define APPROVERS_MAX_CREDS      16      /* per person */
#define APPROVERS_MAX_APPROVALS  16      /* items of a mint request's "approvals" */
#define APPROVERS_ENROL_MAX      8192    /* bytes of one enrolment record */
#define APPROVERS_FILE_MAX       (8 * 1024 * 1024)
#define APPROVERS_DETAIL_MAX     256

struct approvers;   /* the store; opaque */

/* One enrolment record, parsed. */
struct approvers_enrolment {
	char approver[TOKEN_ID_MAX + 1];
	struct webauthn_credential cred;
};

/* One item of a mint request's "approvals", decoded. */
struct approvers_approval {
	char approver[TOKEN_ID_MAX + 1];
	uint8_t cred_id[WEBAUTHN_CRED_ID_MAX];
	size_t cred_id_len;
	uint8_t cdj[WEBAUTHN_CDJ_MAX];
	size_t cdj_len;
	uint8_t auth_data[WEBAUTHN_AUTHDATA_MAX];
	size_t auth_data_len;
	uint8_t sig[WEBAUTHN_SIG_MAX];
	size_t sig_len;
};

/* A credential's counter after a successful decision. */
struct approvers_counter {
	uint8_t cred_id[WEBAUTHN_CRED_ID_MAX];
	size_t cred_id_len;
	uint32_t sign_count;
};

/* What a successful decision found: the distinct people, sorted bytewise
 * (the token's "approvers" claim), and each used credential's new
 * counter (each credential once). */
struct approvers_result {
	size_t n_people;
	char people[TOKEN_MAX_APPROVERS][TOKEN_ID_MAX + 1];
	size_t n_counters;
	struct approvers_counter counters[APPROVERS_MAX_APPROVALS];
};

int approvers_new(struct approvers **ret);
void approvers_free(struct approvers *s);
/* A deep copy, for changes that must reach the disk before they count. */
int approvers_dup(const struct approvers *s, struct approvers **ret);

size_t approvers_people(const struct approvers *s);
size_t approvers_credentials(const struct approvers *s);

/* Parse a store file's text strictly. -EINVAL (or -EFBIG, -E2BIG) with a
 * message in err naming the field. */
int approvers_parse(const char *buf, size_t len, struct approvers **ret, char *err,
    size_t errsz);
/* The store file's text (canonical JSON, malloc'd). */
int approvers_dump(const struct approvers *s, char **ret, size_t *ret_len);

/* STATE_DIR/approvers.json: a missing file is an empty store; anything
 * else that does not parse is an error (err says why). */
int approvers_load(const char *state_dir, struct approvers **ret, char *err, size_t errsz);
/* Write it atomically and durably (0600: temporary file, fsync, rename,
 * fsync of the folder). */
int approvers_save(const struct approvers *s, const char *state_dir);

/* Parse an enrolment record:
 *   {"v":1,"approver":N,"credential_id":B64URL,"alg":"ES256"|"EdDSA",
 *    "public_key":B64URL,"rp_id":R,"sign_count":C}
 * strictly; rp_id must equal the configured one (NULL: none configured,
 * always refused). -EINVAL, -EFBIG or -ENOTSUP with a detail naming the
 * field. */
int approvers_parse_enrolment(const char *buf, size_t len, const char *rp_id,
    struct approvers_enrolment *ret, char *detail, size_t detailsz);

/* Add a credential for a person (created if new). -EEXIST if any person
 * holds that credential id already; -ENOTUNIQ if the name is new but
 * differs only in case from an enrolled person's; -E2BIG past the caps.
 * now is the credential's "added" time. */
int approvers_add(struct approvers *s, const struct approvers_enrolment *e, int64_t now);
/* Remove a person (cred_id NULL) or one of their credentials: -ENOENT if
 * absent. A person left without credentials is removed. */
int approvers_remove(struct approvers *s, const char *name, const uint8_t *cred_id,
    size_t cred_id_len);
/* Find a credential: its owner's name and the credential, valid until the
 * store changes. -ENOENT if no person holds it. */
int approvers_lookup(const struct approvers *s, const uint8_t *cred_id, size_t cred_id_len,
    const char **ret_name, const struct webauthn_credential **ret_cred);
/* Apply a decision's counters (in memory; approvers_save makes it last). */
int approvers_apply(struct approvers *s, const struct approvers_result *res);

/* For GET /v1/approvers: {"approvers":[{"name","credentials":[{"id","alg",
 * "sign_count","added","fingerprint"}]}]}. NULL when out of memory (or a
 * stored key has no fingerprint, which loading rules out). */
json_t *approvers_to_json(const struct approvers *s);

/* Decode a mint request's "approvals" value: an array of 1..
 * APPROVERS_MAX_APPROVALS objects with exactly the members approver,
 * credential_id, client_data_json, authenticator_data and signature.
 * *ret is calloc'd (*ret_n items). -EINVAL or -E2BIG with a detail naming
 * the item and field. */
int approvers_parse_approvals(const json_t *arr, struct approvers_approval **ret,
    size_t *ret_n, char *detail, size_t detailsz);

/* The decision. Every approval must be by an enrolled credential of the
 * person it names and verify (webauthn_verify_assertion, challenge =
 * approval_digest(req)); then the distinct people must number at least
 * quorum. Returns 0 and *ret, or:
 *   -EINVAL  req is not a valid approval request (no request id, ...)
 *   -EPERM   an approval is refused: detail names its index, person, why
 *   -EACCES  the quorum is not met: detail "N of Q distinct approvers"
 *   -E2BIG   more distinct people than a token can name
 * The store is not changed. */
int approvers_decide(const struct approvers *s, const struct webauthn_rp *rp,
    const struct approval_request *req, const struct approvers_approval *approvals,
    size_t n, unsigned quorum, struct approvers_result *ret, char *detail, size_t detailsz);

#endif
