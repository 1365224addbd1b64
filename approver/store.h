/* store: the approver's SQLite database (WAL, synchronous=FULL), the only
 * place its state lives (docs/approver.md, "Storage").
 *
 * One handle per thread: store_open each time a thread starts. Writers that
 * change more than one row wrap the change in store_begin/store_commit
 * (BEGIN IMMEDIATE), so a crash leaves either all of it or none; the audit
 * record of a change is written in the same transaction as the change.
 *
 * Strings in the structs below are copied in (fixed arrays) or malloc'ed
 * (char *; freed by the matching _clear). Errors: -ENOENT (no such row),
 * -EEXIST (unique key taken), -ESTALE (the row is not in the expected
 * state: someone else changed it first), -EBUSY (the database stayed
 * locked past the busy timeout), -EIO (any other SQLite error), -ENOMEM,
 * -EINVAL (bad argument). */
#ifndef WARRANT_APPROVER_STORE_H
#define WARRANT_APPROVER_STORE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "approval.h"
#include "token.h"
#include "webauthn.h"

#define STORE_NAME_MAX      64       /* user names: parse_ident */
#define STORE_CALLER_MAX    80       /* "uid:N" or "cert:<64 hex>" */
#define STORE_PWHASH_MAX    256      /* an Argon2id encoded hash */
#define STORE_BUSY_MS       5000

struct store;

int store_open(const char *path, struct store **ret);   /* creates the schema */
void store_close(struct store *s);

int store_begin(struct store *s);        /* BEGIN IMMEDIATE */
int store_commit(struct store *s);
void store_rollback(struct store *s);    /* harmless when no transaction is open */

/* --- people ------------------------------------------------------------ */

enum store_role {
	STORE_ROLE_APPROVER = 1,
	STORE_ROLE_ADMIN = 2,                /* an approver who may also manage people */
};

struct store_user {
	int64_t id;
	char name[STORE_NAME_MAX + 1];
	enum store_role role;
	bool disabled;
	char pwhash[STORE_PWHASH_MAX + 1];
	int64_t created;
};

int store_user_add(struct store *s, const char *name, enum store_role role, const char *pwhash,
    int64_t now, int64_t *ret_id);
int store_user_get(struct store *s, const char *name, struct store_user *ret);
int store_user_get_id(struct store *s, int64_t id, struct store_user *ret);
/* Disabling also ends every session of the account. */
int store_user_set_disabled(struct store *s, const char *name, bool disabled);
int store_user_list(struct store *s, int (*cb)(const struct store_user *u, void *arg), void *arg);
const char *store_role_name(enum store_role r);          /* "approver", "admin" */
int store_role_parse(const char *s, enum store_role *ret);

/* --- failed logins ----------------------------------------------------- */

/* Failures since `since`, counted for the account name (whether it exists
 * or not) and for the client address. */
int store_login_failures(struct store *s, const char *name, const char *addr, int64_t since,
    int64_t *ret_by_name, int64_t *ret_by_addr);
/* The time of the latest failure since `since` for the name and for the
 * address; 0 where there is none. */
int store_login_last_failure(struct store *s, const char *name, const char *addr, int64_t since,
    int64_t *ret_name_at, int64_t *ret_addr_at);
int store_login_failed(struct store *s, const char *name, const char *addr, int64_t now);
/* Takes back one failure store_login_failed recorded with these values
 * (an attempt that was recorded but never checked). */
int store_login_failed_undo(struct store *s, const char *name, const char *addr, int64_t at);
/* Moves that failure to new_at (the time its answer was sent). */
int store_login_failed_restamp(struct store *s, const char *name, const char *addr, int64_t at,
    int64_t new_at);
/* After a successful login: forget that account's failures from that
 * address only; failures from elsewhere (someone else guessing) still
 * count towards the account's limit. */
int store_login_succeeded(struct store *s, const char *name, const char *addr);
int store_login_purge(struct store *s, int64_t before);

/* --- sessions: rows are keyed by SHA-256 of the cookie's secret ---------- */

struct store_session {
	int64_t user_id;
	char user[STORE_NAME_MAX + 1];
	enum store_role role;
	uint8_t csrf_key[32];                /* per session: CSRF tokens are HMACs under it */
	int64_t created;
	int64_t last_seen;
};

int store_session_create(struct store *s, const uint8_t sid_hash[32], int64_t user_id,
    const uint8_t csrf_key[32], int64_t now);
/* -ENOENT also when the account is disabled. */
int store_session_get(struct store *s, const uint8_t sid_hash[32], struct store_session *ret);
int store_session_touch(struct store *s, const uint8_t sid_hash[32], int64_t now);
int store_session_delete(struct store *s, const uint8_t sid_hash[32]);
/* Delete sessions idle since before idle_before or created before
 * created_before. */
int store_session_purge(struct store *s, int64_t idle_before, int64_t created_before);

/* --- approval requests ------------------------------------------------- */

enum store_state {
	STORE_PENDING = 0,
	STORE_MINTING,         /* quorum met, attestd asked; never left behind by a clean run */
	STORE_APPROVED,        /* minted: the token waits for its pickup */
	STORE_DENIED,
	STORE_EXPIRED,
	STORE_FAILED,          /* attestd refused to mint; state_reason says why */
	STORE_CANCELLED,       /* the proxy stopped waiting */
};

struct store_request {
	struct approval_request ar;          /* ar.request is the id */
	char caller[STORE_CALLER_MAX + 1];   /* who submitted it; only they see it */
	char owner[STORE_NAME_MAX + 1];      /* "" or the account that may not review it */
	char digest[TOKEN_HEX256_LEN + 1];   /* approval_digest_hex(&ar) */
	char *args_json;                     /* the canonical arguments */
	char *reason;                        /* the agent's reason, "" if none */
	int64_t created;
	int64_t expires;                     /* pending until then */
	int64_t decided;                     /* 0 while pending */
	enum store_state state;
	char *state_reason;                  /* denial reason or failure detail; "" */
	bool token_ready;                    /* a token is stored and not yet picked up */
	bool picked_up;
	int64_t approvals;                   /* decisions so far */
	int64_t denials;
};

void store_request_clear(struct store_request *r);
const char *store_state_name(enum store_state st);       /* "pending", ... */
int store_state_parse(const char *s, enum store_state *ret);

/* -EEXIST when the id exists (the caller compares the content). */
int store_request_insert(struct store *s, const struct store_request *r);
int store_request_get(struct store *s, const char *id, struct store_request *ret);

struct store_filter {
	int state;             /* an enum store_state, or -1 for any; -2 for "decided" (not pending) */
	const char *op;        /* NULL or exact op */
	const char *vm;        /* NULL or exact VM id */
	const char *caller;    /* NULL or exact caller */
	int64_t limit;         /* 1..1000 */
	int64_t offset;
};
/* Newest first (created, then id). */
int store_request_list(struct store *s, const struct store_filter *f,
    int (*cb)(const struct store_request *r, void *arg), void *arg);
int store_request_count(struct store *s, int state, int64_t *ret);

/* Move id from state `from` to `to` (with reason, may be NULL), setting
 * decided = now for any state but PENDING/MINTING. -ESTALE if the request
 * is not in `from`. */
int store_request_transition(struct store *s, const char *id, enum store_state from,
    enum store_state to, const char *reason, int64_t now);
/* Every pending request whose expires <= now: ids (malloc'ed array of
 * malloc'ed strings) to be expired by the caller one by one. */
int store_request_due(struct store *s, int64_t now, char ***ret_ids, size_t *ret_n);
/* MINTING -> APPROVED with the token, in one statement. */
int store_token_put(struct store *s, const char *id, const char *token, int64_t now);
/* Tokens nobody picked up before they expired (decided + ttl < now) are
 * erased, and their requests become expired: a stored token is a bearer
 * secret, kept no longer than it is good for. */
int store_token_purge(struct store *s, int64_t now, int64_t *ret_n);
/* The token, once: marks picked_up and erases the stored token.
 * -ENOENT no such request for this caller; -EAGAIN not approved;
 * -EALREADY picked up before. *ret_token: malloc'ed, wipe before free. */
int store_token_take(struct store *s, const char *id, const char *caller, char **ret_token);

/* --- decisions: one per person per request, final ----------------------- */

struct store_decision {
	int64_t user_id;
	char user[STORE_NAME_MAX + 1];
	bool approve;
	char *reason;
	char *approval_json;                 /* the passkey assertion object; NULL for a denial */
	int64_t at;
};

void store_decision_clear(struct store_decision *d);
/* -EEXIST when this person already decided on this request. */
int store_decision_add(struct store *s, const char *id, int64_t user_id, bool approve,
    const char *reason, const char *approval_json, int64_t now);
/* In the order they were made. */
int store_decision_list(struct store *s, const char *id,
    int (*cb)(const struct store_decision *d, void *arg), void *arg);

/* --- passkeys ---------------------------------------------------------- */

struct store_credential {
	int64_t user_id;
	char user[STORE_NAME_MAX + 1];
	struct webauthn_credential cred;
	char label[STORE_NAME_MAX + 1];
	int64_t created;
};

/* -EEXIST when the credential id is taken (by anyone). */
int store_credential_add(struct store *s, const struct store_credential *c);
int store_credential_list(struct store *s, int64_t user_id,     /* -1: everyone's */
    int (*cb)(const struct store_credential *c, void *arg), void *arg);
int store_credential_get(struct store *s, const uint8_t *id, size_t id_len,
    struct store_credential *ret);

/* Short-lived WebAuthn registration challenges, one per session. */
int store_challenge_put(struct store *s, const uint8_t sid_hash[32], const uint8_t challenge[32],
    int64_t expires);
/* Returns and deletes it; -ENOENT when absent or expired. */
int store_challenge_take(struct store *s, const uint8_t sid_hash[32], int64_t now,
    uint8_t ret[32]);

/* --- notifications: a queue that survives restarts ---------------------- */

int store_notify_add(struct store *s, const char *id, int64_t now);
/* The oldest due entry: -ENOENT when none is due. */
int store_notify_next(struct store *s, int64_t now, char ret_id[TOKEN_ID_MAX + 1],
    int64_t *ret_attempts);
int store_notify_done(struct store *s, const char *id);
int store_notify_retry(struct store *s, const char *id, int64_t next_at);

/* --- audit: append-only, hash-chained (docs/approver.md, "Audit") ------- */

struct store_audit {
	int64_t seq;
	int64_t at;
	char actor[STORE_CALLER_MAX + 1];    /* a user name, "uid:N", "cert:...", or "approver" */
	char event[32];
	char request[TOKEN_ID_MAX + 1];      /* "" when none */
	char *detail;                        /* a JSON object's canonical text */
	char hash[TOKEN_HEX256_LEN + 1];
};

void store_audit_clear(struct store_audit *a);
/* hash = SHA-256(prev_hash_hex || canonical JSON of
 * {"actor","at","detail","event","request","seq"}); the first record's
 * prev_hash is 64 '0's. detail may be NULL ({}). */
int store_audit_append(struct store *s, const char *actor, const char *event,
    const char *request, const json_t *detail, int64_t now);
/* Newest first, seq < before (0: from the newest). */
int store_audit_list(struct store *s, int64_t before, int64_t limit, const char *request,
    int (*cb)(const struct store_audit *a, void *arg), void *arg);
/* Recompute the chain: 0 and the count, or -EBADMSG with the first bad seq
 * and a detail. */
int store_audit_verify(struct store *s, int64_t *ret_records, int64_t *ret_bad_seq,
    char *detail, size_t detailsz);

#endif
