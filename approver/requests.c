/* requests: the approver's rules over approval requests (requests.h). */
#include "requests.h"

#include <errno.h>
#include <stdarg.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "approval.h"
#include "b64url.h"
#include "cjson.h"
#include "clock.h"
#include "parse.h"
#include "text.h"
#include "token.h"
#include "uhttp.h"

#define SUBMIT_MAX        (128 * 1024)
#define DECISION_REASON_MAX 1024
#define ASSERTION_FIELD_MAX 8192

struct requests {
	const struct settings *cfg;
	requests_mint_fn mint;
	void *mint_ctx;
	pthread_mutex_t mu;
	pthread_cond_t cv;          /* on CLOCK_MONOTONIC */
	uint64_t generation;
	bool shutdown;
};

/* Recent answers to "does attestd know this launch?", so that a busy
 * request page does not ask attestd at every view. The answer is only
 * shown to people (attestd checks the launch itself when it mints), so a
 * second or two of staleness is harmless. */
struct known_launch {
	char vm[TOKEN_ID_MAX + 1];
	char launch_digest[TOKEN_HEX256_LEN + 1];
	int known;
	uint64_t at_ms;                  /* CLOCK_MONOTONIC; 0: empty slot */
};

struct requests_attestd {
	char socket_path[SETTINGS_SOCKET_MAX + 1];
	pthread_mutex_t mu;
	struct known_launch recent[REQUESTS_LAUNCH_CACHE];
	size_t next;
};

/* --- waiters -------------------------------------------------------------- */

int
requests_new(const struct settings *cfg, requests_mint_fn mint, void *mint_ctx,
    struct requests **ret)
{
	struct requests *rq;
	pthread_condattr_t ca;

	if (cfg == NULL || mint == NULL) {
		return -EINVAL;
	}
	rq = calloc(1, sizeof(*rq));
	if (rq == NULL) {
		return -ENOMEM;
	}
	rq->cfg = cfg;
	rq->mint = mint;
	rq->mint_ctx = mint_ctx;
	if (pthread_mutex_init(&rq->mu, NULL) != 0) {
		free(rq);
		return -ENOMEM;
	}
	if (pthread_condattr_init(&ca) != 0) {
		pthread_mutex_destroy(&rq->mu);
		free(rq);
		return -ENOMEM;
	}
	(void)pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	if (pthread_cond_init(&rq->cv, &ca) != 0) {
		pthread_condattr_destroy(&ca);
		pthread_mutex_destroy(&rq->mu);
		free(rq);
		return -ENOMEM;
	}
	pthread_condattr_destroy(&ca);
	*ret = rq;
	return 0;
}

void
requests_free(struct requests *rq)
{
	if (rq == NULL) {
		return;
	}
	pthread_cond_destroy(&rq->cv);
	pthread_mutex_destroy(&rq->mu);
	free(rq);
}

uint64_t
requests_generation(struct requests *rq)
{
	uint64_t g;

	pthread_mutex_lock(&rq->mu);
	g = rq->generation;
	pthread_mutex_unlock(&rq->mu);
	return g;
}

void
requests_changed(struct requests *rq)
{
	pthread_mutex_lock(&rq->mu);
	rq->generation++;
	pthread_cond_broadcast(&rq->cv);
	pthread_mutex_unlock(&rq->mu);
}

void
requests_shutdown(struct requests *rq)
{
	pthread_mutex_lock(&rq->mu);
	rq->shutdown = true;
	rq->generation++;
	pthread_cond_broadcast(&rq->cv);
	pthread_mutex_unlock(&rq->mu);
}

void
requests_wait_change(struct requests *rq, uint64_t seen_generation, uint64_t deadline_ms)
{
	struct timespec ts = { (time_t)(deadline_ms / 1000), (long)(deadline_ms % 1000) * 1000000L };

	pthread_mutex_lock(&rq->mu);
	while (!rq->shutdown && rq->generation == seen_generation) {
		if (pthread_cond_timedwait(&rq->cv, &rq->mu, &ts) == ETIMEDOUT) {
			break;
		}
	}
	pthread_mutex_unlock(&rq->mu);
}

/* --- submissions ---------------------------------------------------------- */

void
requests_submit_clear(struct requests_submit *s)
{
	if (s == NULL) {
		return;
	}
	json_decref(s->args);
	s->args = NULL;
}

/* Text a person reads: no control characters (jansson has checked UTF-8). */
static bool
text_ok(const char *s)
{
	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;

		if (c < 0x20 || c == 0x7f) {
			return false;
		}
	}
	return true;
}

static int
copy_str(const json_t *root, const char *key, char *dst, size_t dstsz, bool required,
    char *detail, size_t detailsz)
{
	const json_t *v = json_object_get(root, key);

	if (v == NULL) {
		if (required) {
			text_printf(detail, detailsz, "%s is required", key);
			return -EINVAL;
		}
		dst[0] = '\0';
		return 0;
	}
	if (!json_is_string(v) || json_string_length(v) >= dstsz ||
	    strlen(json_string_value(v)) != json_string_length(v)) {
		text_printf(detail, detailsz, "%s must be a string of at most %zu bytes", key,
		    dstsz - 1);
		return -EINVAL;
	}
	memcpy(dst, json_string_value(v), json_string_length(v) + 1);
	return 0;
}

int
requests_parse_submit(const char *body, size_t len, struct requests_submit *ret, char *detail,
    size_t detailsz)
{
	static const char *const keys[] = { "id", "aud", "vm", "launch_digest", "op", "args",
		"args_sha256", "reason", "requested_ttl", "expires", "owner", NULL };
	struct requests_submit s;
	json_t *root = NULL;
	const json_t *v;
	const char *bad = NULL;
	uint8_t h[32];
	char hex[TOKEN_HEX256_LEN + 1];
	int r;

	memset(&s, 0, sizeof(s));
	r = cjson_parse(body, len, SUBMIT_MAX, &root);
	if (r != 0) {
		text_printf(detail, detailsz, r == -EFBIG ? "the body is too large" :
		    "the body is not strict JSON");
		r = -EINVAL;
		goto out;
	}
	if (!json_is_object(root)) {
		text_printf(detail, detailsz, "the body must be a JSON object");
		r = -EINVAL;
		goto out;
	}
	if (cjson_only_keys(root, keys, &bad) != 0) {
		text_printf(detail, detailsz, "unknown field %.64s", bad != NULL ? bad : "?");
		r = -EINVAL;
		goto out;
	}
	if ((r = copy_str(root, "id", s.ar.request, sizeof(s.ar.request), true, detail,
	    detailsz)) != 0 ||
	    (r = copy_str(root, "aud", s.ar.aud, sizeof(s.ar.aud), true, detail, detailsz)) != 0 ||
	    (r = copy_str(root, "vm", s.ar.vm, sizeof(s.ar.vm), true, detail, detailsz)) != 0 ||
	    (r = copy_str(root, "launch_digest", s.ar.launch_digest, sizeof(s.ar.launch_digest),
	    true, detail, detailsz)) != 0 ||
	    (r = copy_str(root, "op", s.ar.op, sizeof(s.ar.op), true, detail, detailsz)) != 0 ||
	    (r = copy_str(root, "args_sha256", s.ar.args_sha256, sizeof(s.ar.args_sha256), true,
	    detail, detailsz)) != 0 ||
	    (r = copy_str(root, "reason", s.reason, sizeof(s.reason), false, detail,
	    detailsz)) != 0 ||
	    (r = copy_str(root, "owner", s.owner, sizeof(s.owner), false, detail, detailsz)) != 0) {
		goto out;
	}
	r = -EINVAL;
	if (parse_ident(s.ar.request, TOKEN_ID_MAX) != 0) {
		text_printf(detail, detailsz, "id must be an identifier ([A-Za-z0-9._:-], 1..64)");
		goto out;
	}
	if (parse_ident(s.ar.aud, TOKEN_ID_MAX) != 0) {
		text_printf(detail, detailsz, "aud must be an identifier");
		goto out;
	}
	if (parse_ident(s.ar.vm, TOKEN_ID_MAX) != 0) {
		text_printf(detail, detailsz, "vm must be an identifier");
		goto out;
	}
	if (parse_hex(s.ar.launch_digest, h, sizeof(h)) != 0) {
		text_printf(detail, detailsz, "launch_digest must be 64 lower-case hex characters");
		goto out;
	}
	if (parse_op(s.ar.op, TOKEN_OP_MAX) != 0) {
		text_printf(detail, detailsz, "op must be an operation name");
		goto out;
	}
	if (parse_hex(s.ar.args_sha256, h, sizeof(h)) != 0) {
		text_printf(detail, detailsz, "args_sha256 must be 64 lower-case hex characters");
		goto out;
	}
	if (!text_ok(s.reason)) {
		text_printf(detail, detailsz, "reason has control characters");
		goto out;
	}
	if (s.owner[0] != '\0' && parse_ident(s.owner, STORE_NAME_MAX) != 0) {
		text_printf(detail, detailsz, "owner must be an account name");
		goto out;
	}
	v = json_object_get(root, "requested_ttl");
	if (!json_is_integer(v) || json_integer_value(v) < 1 ||
	    json_integer_value(v) > APPROVAL_TTL_MAX) {
		text_printf(detail, detailsz, "requested_ttl must be an integer in 1..%d",
		    APPROVAL_TTL_MAX);
		goto out;
	}
	s.ar.ttl = (int64_t)json_integer_value(v);
	v = json_object_get(root, "expires");
	if (v != NULL) {
		if (!json_is_integer(v) || json_integer_value(v) < 1) {
			text_printf(detail, detailsz, "expires must be a positive integer (unix seconds)");
			goto out;
		}
		s.expires = (int64_t)json_integer_value(v);
	}
	v = json_object_get(root, "args");
	if (!json_is_object(v)) {
		text_printf(detail, detailsz, "args must be a JSON object");
		goto out;
	}
	if (cjson_sha256(v, h) != 0) {
		text_printf(detail, detailsz, "args has no canonical form");
		goto out;
	}
	format_hex(h, sizeof(h), hex);
	if (strcmp(hex, s.ar.args_sha256) != 0) {
		text_printf(detail, detailsz, "args_sha256 is not the SHA-256 of args' canonical form");
		goto out;
	}
	if (approval_check(&s.ar) != 0) {
		text_printf(detail, detailsz, "the request's fields are not valid");
		goto out;
	}
	s.args = json_incref((json_t *)v);
	*ret = s;
	memset(&s, 0, sizeof(s));
	r = 0;
out:
	requests_submit_clear(&s);
	json_decref(root);
	return r;
}

static bool
same_request(const struct store_request *a, const struct store_request *b)
{
	return strcmp(a->ar.request, b->ar.request) == 0 && strcmp(a->ar.aud, b->ar.aud) == 0 &&
	    strcmp(a->ar.vm, b->ar.vm) == 0 &&
	    strcmp(a->ar.launch_digest, b->ar.launch_digest) == 0 &&
	    strcmp(a->ar.op, b->ar.op) == 0 && strcmp(a->ar.args_sha256, b->ar.args_sha256) == 0 &&
	    a->ar.ttl == b->ar.ttl && strcmp(a->caller, b->caller) == 0 &&
	    strcmp(a->owner, b->owner) == 0 &&
	    strcmp(a->args_json != NULL ? a->args_json : "", b->args_json != NULL ? b->args_json : "") == 0 &&
	    strcmp(a->reason != NULL ? a->reason : "", b->reason != NULL ? b->reason : "") == 0;
}

static int
audit(struct store *st, const char *actor, const char *event, const char *id, json_t *detail,
    int64_t now)
{
	int r;

	r = store_audit_append(st, actor, event, id, detail, now);
	json_decref(detail);
	return r;
}

int
requests_submit(struct requests *rq, struct store *st, const char *caller,
    const struct requests_submit *sub, int64_t now, struct store_request *ret, bool *ret_created)
{
	struct store_request r, old;
	size_t len = 0;
	int64_t n = 0;
	bool began = false;
	int rc;

	memset(&r, 0, sizeof(r));
	memset(&old, 0, sizeof(old));
	if (caller == NULL || strlen(caller) > STORE_CALLER_MAX || sub->args == NULL) {
		return -EINVAL;
	}
	r.ar = sub->ar;
	(void)snprintf(r.caller, sizeof(r.caller), "%s", caller);
	(void)snprintf(r.owner, sizeof(r.owner), "%s", sub->owner);
	rc = approval_digest_hex(&r.ar, r.digest);
	if (rc != 0) {
		goto out;
	}
	rc = cjson_dump(sub->args, &r.args_json, &len);
	if (rc != 0) {
		goto out;
	}
	r.reason = strdup(sub->reason);
	r.state_reason = strdup("");
	if (r.reason == NULL || r.state_reason == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	r.created = now;
	r.expires = now + rq->cfg->request_lifetime_seconds;
	if (sub->expires > 0 && sub->expires < r.expires) {
		r.expires = sub->expires;
	}
	r.state = STORE_PENDING;
	rc = store_begin(st);
	if (rc != 0) {
		goto out;
	}
	began = true;
	rc = store_request_get(st, r.ar.request, &old);
	if (rc == 0) {
		/* A proxy that retries after a lost reply gets its request back. */
		store_rollback(st);
		began = false;
		if (!same_request(&r, &old)) {
			rc = -EEXIST;
			goto out;
		}
		if (ret != NULL) {
			*ret = old;
			memset(&old, 0, sizeof(old));
		}
		*ret_created = false;
		rc = 0;
		goto out;
	}
	if (rc != -ENOENT) {
		goto out;
	}
	rc = store_request_count(st, STORE_PENDING, &n);
	if (rc != 0) {
		goto out;
	}
	if (n >= (int64_t)rq->cfg->max_pending) {
		rc = -ENOSPC;
		goto out;
	}
	rc = store_request_insert(st, &r);
	if (rc != 0) {
		goto out;
	}
	rc = audit(st, caller, "submit", r.ar.request,
	    json_pack("{s:s, s:s, s:s, s:I, s:s}", "vm", r.ar.vm, "op", r.ar.op, "digest", r.digest,
	    "expires", (json_int_t)r.expires, "owner", r.owner), now);
	if (rc != 0) {
		goto out;
	}
	rc = store_notify_add(st, r.ar.request, now);
	if (rc != 0) {
		goto out;
	}
	rc = store_commit(st);
	if (rc != 0) {
		goto out;
	}
	began = false;
	requests_changed(rq);
	if (ret != NULL) {
		*ret = r;
		memset(&r, 0, sizeof(r));
	}
	*ret_created = true;
	rc = 0;
out:
	if (began) {
		store_rollback(st);
	}
	store_request_clear(&r);
	store_request_clear(&old);
	return rc;
}

/* --- decisions ------------------------------------------------------------ */

/* Trim white space at both ends into dst; -EINVAL if empty, too long or
 * with control characters. */
static int
clean_decision_reason(const char *reason, char *dst, size_t dstsz)
{
	const char *b = reason, *e;
	size_t n;

	if (reason == NULL) {
		return -EINVAL;
	}
	while (*b == ' ' || *b == '\t' || *b == '\r' || *b == '\n') {
		b++;
	}
	e = b + strlen(b);
	while (e > b && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r' || e[-1] == '\n')) {
		e--;
	}
	n = (size_t)(e - b);
	if (n == 0 || n > DECISION_REASON_MAX || n >= dstsz) {
		return -EINVAL;
	}
	memcpy(dst, b, n);
	dst[n] = '\0';
	return text_ok(dst) ? 0 : -EINVAL;
}

static int
b64_field(const json_t *obj, const char *key, uint8_t *out, size_t outsz, size_t *ret_len)
{
	const json_t *v = json_object_get(obj, key);

	if (!json_is_string(v) || json_string_length(v) == 0 ||
	    json_string_length(v) > ASSERTION_FIELD_MAX) {
		return -EINVAL;
	}
	return b64url_decode(json_string_value(v), json_string_length(v), out, outsz, ret_len) == 0 ?
	    0 : -EINVAL;
}

/* The assertion's shape, its owner and its challenge: what attestd would
 * refuse anyway, caught here so that the person gets a clear message. */
static int
check_assertion(struct store *st, const struct store_user *who, const struct store_request *r,
    const json_t *a, char *detail, size_t detailsz)
{
	static const char *const keys[] = { "approver", "credential_id", "client_data_json",
		"authenticator_data", "signature", NULL };
	struct store_credential cred;
	uint8_t *buf = NULL, digest[32];
	char want[64];
	json_t *cd = NULL;
	const char *bad = NULL, *ch;
	size_t n = 0, i;
	int rc = -EINVAL;

	memset(&cred, 0, sizeof(cred));
	if (!json_is_object(a) || cjson_only_keys(a, keys, &bad) != 0 ||
	    json_object_size(a) != 5) {
		text_printf(detail, detailsz, "the approval must have exactly approver, credential_id, "
		    "client_data_json, authenticator_data and signature");
		goto out;
	}
	for (i = 0; keys[i] != NULL; i++) {
		if (!json_is_string(json_object_get(a, keys[i]))) {
			text_printf(detail, detailsz, "the approval's %s must be a string", keys[i]);
			goto out;
		}
	}
	if (strcmp(json_string_value(json_object_get(a, "approver")), who->name) != 0) {
		text_printf(detail, detailsz, "the approval names another approver");
		goto out;
	}
	buf = malloc(ASSERTION_FIELD_MAX);
	if (buf == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	if (b64_field(a, "authenticator_data", buf, ASSERTION_FIELD_MAX, &n) != 0 ||
	    b64_field(a, "signature", buf, ASSERTION_FIELD_MAX, &n) != 0) {
		text_printf(detail, detailsz, "the approval's authenticator_data or signature is not "
		    "base64url");
		goto out;
	}
	if (b64_field(a, "credential_id", buf, WEBAUTHN_CRED_ID_MAX, &n) != 0) {
		text_printf(detail, detailsz, "the approval's credential_id is not base64url");
		goto out;
	}
	rc = store_credential_get(st, buf, n, &cred);
	if (rc == -ENOENT || (rc == 0 && cred.user_id != who->id)) {
		text_printf(detail, detailsz, "this passkey is not one of yours");
		rc = -EINVAL;
		goto out;
	}
	if (rc != 0) {
		text_printf(detail, detailsz, "the passkey could not be looked up");
		goto out;
	}
	rc = -EINVAL;
	if (b64_field(a, "client_data_json", buf, WEBAUTHN_CDJ_MAX, &n) != 0) {
		text_printf(detail, detailsz, "the approval's client_data_json is not base64url");
		goto out;
	}
	cd = json_loadb((const char *)buf, n, JSON_REJECT_DUPLICATES, NULL);
	ch = cjson_get_str(cd, "challenge");
	if (ch == NULL) {
		text_printf(detail, detailsz, "the approval's client data has no challenge");
		goto out;
	}
	if (parse_hex(r->digest, digest, sizeof(digest)) != 0 ||
	    b64url_encode(digest, sizeof(digest), want, sizeof(want)) != 0) {
		text_printf(detail, detailsz, "the request's digest is damaged");
		rc = -EIO;
		goto out;
	}
	if (strcmp(ch, want) != 0) {
		text_printf(detail, detailsz, "the passkey signed another request's digest");
		goto out;
	}
	rc = 0;
out:
	json_decref(cd);
	free(buf);
	return rc;
}

struct collect {
	json_t *approvals;
	json_t *names;
	int64_t count;
	int err;
	char bad_user[STORE_NAME_MAX + 1];   /* an approval stored without an assertion */
};

static int
collect_approval(const struct store_decision *d, void *arg)
{
	struct collect *c = arg;
	json_t *a;

	if (!d->approve) {
		return 0;
	}
	a = d->approval_json != NULL ? json_loads(d->approval_json, JSON_REJECT_DUPLICATES, NULL) :
	    NULL;
	if (a == NULL) {
		/* requests_decide never stores one: the database was changed. */
		(void)text_copy(c->bad_user, sizeof(c->bad_user), d->user);
		c->err = -EBADMSG;
		return -EBADMSG;
	}
	if (json_array_append_new(c->approvals, a) != 0 ||
	    json_array_append_new(c->names, json_string(d->user)) != 0) {
		c->err = -EIO;
		return -EIO;
	}
	c->count++;
	return 0;
}

/* After the pending->minting transition, which happens once per request:
 * ask attestd, then record what it said. */
static int
mint_and_record(struct requests *rq, struct store *st, const struct store_request *r,
    const json_t *approvals, const json_t *names, int64_t now, enum store_state *ret_state,
    char *detail, size_t detailsz)
{
	char why[512] = "";
	char *tok = NULL;
	struct token *t = NULL;
	const char *jti = "";
	int mr, rc;

	mr = rq->mint(rq->mint_ctx, &r->ar, approvals, &tok, why, sizeof(why));
	rc = store_begin(st);
	if (rc != 0) {
		goto out;
	}
	if (mr == 0) {
		if (tok != NULL && token_parse(tok, strlen(tok), &t) == 0) {
			jti = token_claims(t)->jti;
		}
		rc = store_token_put(st, r->ar.request, tok, now);
		if (rc == 0) {
			rc = audit(st, "approver", "mint", r->ar.request,
			    json_pack("{s:s, s:O}", "jti", jti, "approvers", names), now);
		}
		*ret_state = STORE_APPROVED;
	} else if (mr == -EAGAIN) {
		rc = store_request_transition(st, r->ar.request, STORE_MINTING, STORE_PENDING, NULL,
		    now);
		if (rc == 0) {
			rc = audit(st, "approver", "mint_deferred", r->ar.request,
			    json_pack("{s:s}", "detail", why), now);
		}
		*ret_state = STORE_PENDING;
	} else {
		char msg[600];

		(void)snprintf(msg, sizeof(msg), "attestd refused to mint: %s",
		    why[0] != '\0' ? why : "no detail");
		rc = store_request_transition(st, r->ar.request, STORE_MINTING, STORE_FAILED, msg, now);
		if (rc == 0) {
			rc = audit(st, "approver", "mint_failed", r->ar.request,
			    json_pack("{s:s}", "detail", why), now);
		}
		text_printf(detail, detailsz, "%s", msg);
		*ret_state = STORE_FAILED;
	}
	if (rc == 0) {
		rc = store_commit(st);
	}
	if (rc != 0) {
		store_rollback(st);
	}
out:
	token_free(t);
	if (tok != NULL) {
		explicit_bzero(tok, strlen(tok));
		free(tok);
	}
	return rc;
}

int
requests_decide(struct requests *rq, struct store *st, const struct store_user *who,
    const char *id, bool approve, const char *reason, const json_t *approval, int64_t now,
    enum store_state *ret_state, char *detail, size_t detailsz)
{
	struct store_request r;
	struct store_user fresh;
	struct collect col = { NULL, NULL, 0, 0, "" };
	char why[DECISION_REASON_MAX + 1];
	char *approval_text = NULL;
	size_t len = 0;
	bool began = false, changed = false, do_mint = false;
	enum store_state state = STORE_PENDING;
	int rc;

	memset(&r, 0, sizeof(r));
	memset(&fresh, 0, sizeof(fresh));
	if (who == NULL || id == NULL || parse_ident(id, TOKEN_ID_MAX) != 0) {
		text_printf(detail, detailsz, "no such request");
		return -ENOENT;
	}
	if (clean_decision_reason(reason, why, sizeof(why)) != 0) {
		text_printf(detail, detailsz, "a reason is required (at most %d bytes, no control "
		    "characters)", DECISION_REASON_MAX);
		return -EINVAL;
	}
	if (approve && approval == NULL) {
		text_printf(detail, detailsz, "an approval needs a passkey assertion");
		return -EINVAL;
	}
	rc = store_begin(st);
	if (rc != 0) {
		text_printf(detail, detailsz, "the database is busy");
		goto out;
	}
	began = true;
	rc = store_request_get(st, id, &r);
	if (rc != 0) {
		text_printf(detail, detailsz, rc == -ENOENT ? "no such request" : "the database failed");
		goto out;
	}
	if (r.state != STORE_PENDING) {
		text_printf(detail, detailsz, "the request is already %s", store_state_name(r.state));
		rc = -ESTALE;
		goto out;
	}
	if (now >= r.expires) {
		rc = store_request_transition(st, id, STORE_PENDING, STORE_EXPIRED,
		    "the request expired", now);
		if (rc == 0) {
			rc = audit(st, "approver", "expire", id, NULL, now);
		}
		if (rc == 0) {
			rc = store_commit(st);
		}
		if (rc == 0) {
			began = false;
			changed = true;
			state = STORE_EXPIRED;
			rc = -ESTALE;
		}
		text_printf(detail, detailsz, "the request expired");
		goto out;
	}
	rc = store_user_get_id(st, who->id, &fresh);
	if (rc != 0 || fresh.disabled || strcmp(fresh.name, who->name) != 0) {
		text_printf(detail, detailsz, "this account may not review requests");
		rc = -EPERM;
		goto out;
	}
	if (r.owner[0] != '\0' && strcmp(r.owner, fresh.name) == 0) {
		text_printf(detail, detailsz, "you own this VM's requests");
		rc = -EPERM;
		goto out;
	}
	if (approve) {
		rc = check_assertion(st, &fresh, &r, approval, detail, detailsz);
		if (rc != 0) {
			goto out;
		}
		rc = cjson_dump(approval, &approval_text, &len);
		if (rc != 0) {
			text_printf(detail, detailsz, "the approval has no canonical form");
			rc = -EINVAL;
			goto out;
		}
	}
	rc = store_decision_add(st, id, fresh.id, approve, why, approval_text, now);
	if (rc != 0) {
		text_printf(detail, detailsz, rc == -EEXIST ? "you already decided on this request" :
		    "the database failed");
		goto out;
	}
	if (approve) {
		rc = audit(st, fresh.name, "approve", id,
		    json_pack("{s:s, s:s}", "reason", why, "credential_id",
		    json_string_value(json_object_get(approval, "credential_id"))), now);
	} else {
		rc = audit(st, fresh.name, "deny", id, json_pack("{s:s}", "reason", why), now);
	}
	if (rc != 0) {
		text_printf(detail, detailsz, "the audit record could not be written");
		goto out;
	}
	if (!approve) {
		/* One deny vetoes. */
		rc = store_request_transition(st, id, STORE_PENDING, STORE_DENIED, why, now);
		state = STORE_DENIED;
	} else {
		col.approvals = json_array();
		col.names = json_array();
		if (col.approvals == NULL || col.names == NULL) {
			rc = -ENOMEM;
			goto out;
		}
		rc = store_decision_list(st, id, collect_approval, &col);
		if (rc == 0 && col.err != 0) {
			rc = col.err;
		}
		/* Decisions are one per person, so approvals count people. */
		if (rc == 0 && col.count >= (int64_t)settings_quorum_for(rq->cfg, r.ar.op)) {
			rc = store_request_transition(st, id, STORE_PENDING, STORE_MINTING, NULL, now);
			do_mint = rc == 0;
			state = STORE_MINTING;
		}
	}
	if (rc == -EBADMSG && col.bad_user[0] != '\0') {
		text_printf(detail, detailsz, "the database failed: the approval recorded for %s "
		    "carries no passkey assertion (was the database changed?)", col.bad_user);
		goto out;
	}
	if (rc != 0) {
		text_printf(detail, detailsz, "the database failed");
		goto out;
	}
	rc = store_commit(st);
	if (rc != 0) {
		text_printf(detail, detailsz, "the database failed");
		goto out;
	}
	began = false;
	changed = true;
	if (do_mint) {
		/* Outside the transaction: attestd may take its time. */
		requests_changed(rq);
		rc = mint_and_record(rq, st, &r, col.approvals, col.names, now, &state, detail,
		    detailsz);
		if (rc != 0) {
			text_printf(detail, detailsz, "the mint's outcome could not be recorded");
		}
	}
out:
	if (began) {
		store_rollback(st);
	}
	if (changed) {
		requests_changed(rq);
	}
	if ((rc == 0 || changed) && ret_state != NULL) {
		*ret_state = state;
	}
	json_decref(col.approvals);
	json_decref(col.names);
	if (approval_text != NULL) {
		free(approval_text);
	}
	explicit_bzero(&fresh, sizeof(fresh));
	store_request_clear(&r);
	return rc;
}

/* --- the rest of a request's life ------------------------------------------ */

struct idlist {
	char **ids;
	size_t n, cap;
	int err;
};

static int
collect_id(const struct store_request *r, void *arg)
{
	struct idlist *l = arg;

	if (l->n == l->cap) {
		size_t cap = l->cap == 0 ? 16 : l->cap * 2;
		char **p = realloc(l->ids, cap * sizeof(*p));

		if (p == NULL) {
			l->err = -ENOMEM;
			return -ENOMEM;
		}
		l->ids = p;
		l->cap = cap;
	}
	l->ids[l->n] = strdup(r->ar.request);
	if (l->ids[l->n] == NULL) {
		l->err = -ENOMEM;
		return -ENOMEM;
	}
	l->n++;
	return 0;
}

static void
free_ids(char **ids, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		free(ids[i]);
	}
	free(ids);
}

/* One state change with its audit record, in one transaction. */
static int
transition_audited(struct store *st, const char *id, enum store_state from, enum store_state to,
    const char *reason, const char *actor, const char *event, int64_t now)
{
	int rc;

	rc = store_begin(st);
	if (rc != 0) {
		return rc;
	}
	rc = store_request_transition(st, id, from, to, reason, now);
	if (rc == 0) {
		rc = store_audit_append(st, actor, event, id, NULL, now);
	}
	if (rc == 0) {
		rc = store_commit(st);
	}
	if (rc != 0) {
		store_rollback(st);
	}
	return rc;
}

int
requests_recover(struct requests *rq, struct store *st, int64_t now)
{
	struct store_filter f = { STORE_MINTING, NULL, NULL, NULL, 1000, 0 };
	struct idlist l = { NULL, 0, 0, 0 };
	size_t i;
	int rc;

	rc = store_request_list(st, &f, collect_id, &l);
	if (rc == 0 && l.err != 0) {
		rc = l.err;
	}
	for (i = 0; rc == 0 && i < l.n; i++) {
		/* attestd may or may not have minted; its own record of the
		 * request id keeps a second mint from happening either way. */
		rc = transition_audited(st, l.ids[i], STORE_MINTING, STORE_FAILED,
		    "the approver stopped while minting", "approver", "mint_failed", now);
		if (rc == -ESTALE) {
			rc = 0;
		}
	}
	if (l.n > 0) {
		requests_changed(rq);
	}
	free_ids(l.ids, l.n);
	return rc;
}

int
requests_expire_due(struct requests *rq, struct store *st, int64_t now)
{
	char **ids = NULL;
	size_t n = 0, i;
	bool any = false;
	int rc;

	rc = store_request_due(st, now, &ids, &n);
	if (rc != 0) {
		return rc;
	}
	for (i = 0; i < n; i++) {
		int r = transition_audited(st, ids[i], STORE_PENDING, STORE_EXPIRED,
		    "the request expired", "approver", "expire", now);

		if (r == 0) {
			any = true;
		} else if (r != -ESTALE && rc == 0) {
			rc = r;
		}
	}
	free_ids(ids, n);
	if (any) {
		requests_changed(rq);
	}
	return rc;
}

int
requests_cancel(struct requests *rq, struct store *st, const char *caller, const char *id,
    int64_t now)
{
	struct store_request r;
	int rc;

	memset(&r, 0, sizeof(r));
	rc = store_request_get(st, id, &r);
	if (rc == 0 && strcmp(r.caller, caller) != 0) {
		rc = -ENOENT;   /* another caller's request does not exist for this one */
	}
	if (rc == 0) {
		rc = transition_audited(st, id, STORE_PENDING, STORE_CANCELLED,
		    "the proxy stopped waiting", caller, "cancel", now);
	}
	if (rc == 0) {
		requests_changed(rq);
	}
	store_request_clear(&r);
	return rc;
}

int
requests_pickup(struct requests *rq, struct store *st, const char *caller, const char *id,
    int64_t now, char **ret_token)
{
	char *tok = NULL;
	int rc;

	rc = store_begin(st);
	if (rc != 0) {
		return rc;
	}
	rc = store_token_take(st, id, caller, &tok);
	if (rc == 0) {
		rc = store_audit_append(st, caller, "pickup", id, NULL, now);
	}
	if (rc == 0) {
		rc = store_commit(st);
	}
	if (rc != 0) {
		store_rollback(st);
		if (tok != NULL) {
			explicit_bzero(tok, strlen(tok));
			free(tok);
		}
		return rc;
	}
	requests_changed(rq);
	*ret_token = tok;
	return 0;
}

/* --- attestd --------------------------------------------------------------- */

int
requests_attestd_new(const char *socket_path, struct requests_attestd **ret)
{
	struct requests_attestd *a;

	if (socket_path == NULL || strlen(socket_path) > SETTINGS_SOCKET_MAX ||
	    socket_path[0] == '\0') {
		return -EINVAL;
	}
	a = calloc(1, sizeof(*a));
	if (a == NULL) {
		return -ENOMEM;
	}
	memcpy(a->socket_path, socket_path, strlen(socket_path) + 1);
	(void)pthread_mutex_init(&a->mu, NULL);
	*ret = a;
	return 0;
}

void
requests_attestd_free(struct requests_attestd *a)
{
	if (a == NULL) {
		return;
	}
	(void)pthread_mutex_destroy(&a->mu);
	free(a);
}

/* 1 or 0 from a recent answer, -ENOENT when there is none. */
static int
launch_recalled(struct requests_attestd *a, const char *vm, const char *ld)
{
	uint64_t now = clock_mono_ms();
	int r = -ENOENT;
	size_t i;

	(void)pthread_mutex_lock(&a->mu);
	for (i = 0; i < REQUESTS_LAUNCH_CACHE; i++) {
		const struct known_launch *k = &a->recent[i];

		if (k->at_ms != 0 && now - k->at_ms < REQUESTS_LAUNCH_CACHE_MS &&
		    strcmp(k->vm, vm) == 0 && strcmp(k->launch_digest, ld) == 0) {
			r = k->known;
			break;
		}
	}
	(void)pthread_mutex_unlock(&a->mu);
	return r;
}

static void
launch_remember(struct requests_attestd *a, const char *vm, const char *ld, int known)
{
	struct known_launch *k;

	if (strlen(vm) > TOKEN_ID_MAX || strlen(ld) > TOKEN_HEX256_LEN) {
		return;
	}
	(void)pthread_mutex_lock(&a->mu);
	k = &a->recent[a->next];
	a->next = (a->next + 1) % REQUESTS_LAUNCH_CACHE;
	(void)text_copy(k->vm, sizeof(k->vm), vm);
	(void)text_copy(k->launch_digest, sizeof(k->launch_digest), ld);
	k->known = known;
	k->at_ms = clock_mono_ms();
	if (k->at_ms == 0) {
		k->at_ms = 1;
	}
	(void)pthread_mutex_unlock(&a->mu);
}

static void
reply_detail(const json_t *reply, long status, char *detail, size_t detailsz)
{
	const char *e = cjson_get_str(reply, "error"), *d = cjson_get_str(reply, "detail");

	text_printf(detail, detailsz, "HTTP %ld %.64s%s%.300s", status, e != NULL ? e : "",
	    d != NULL ? ": " : "", d != NULL ? d : "");
}

int
requests_attestd_mint(void *ctx, const struct approval_request *ar, const json_t *approvals,
    char **ret_token, char *detail, size_t detailsz)
{
	struct requests_attestd *a = ctx;
	struct uhttp *h = NULL;
	json_t *body = NULL, *reply = NULL;
	const char *tok, *e;
	long status = 0;
	char *copy;
	int rc;

	rc = uhttp_new_unix(a->socket_path, &h);
	if (rc != 0) {
		text_printf(detail, detailsz, "cannot reach attestd: %s", strerror(-rc));
		goto out;
	}
	body = json_pack("{s:s, s:s, s:s, s:s, s:s, s:I, s:i, s:s, s:O}", "aud", ar->aud,
	    "vm", ar->vm, "launch_digest", ar->launch_digest, "op", ar->op,
	    "args_sha256", ar->args_sha256, "ttl", (json_int_t)ar->ttl, "uses", 1,
	    "request", ar->request, "approvals", approvals);
	if (body == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	rc = uhttp_request_json(h, "POST", "/v1/mint", body, &status, &reply);
	if (rc != 0) {
		text_printf(detail, detailsz, "cannot reach attestd at %s: %s", a->socket_path,
		    strerror(-rc));
		goto out;
	}
	if (status == 200) {
		tok = cjson_get_str(reply, "token");
		if (tok == NULL || strlen(tok) > TOKEN_MAX_LEN) {
			text_printf(detail, detailsz, "attestd's reply has no token");
			rc = -EPROTO;
			goto out;
		}
		copy = strdup(tok);
		if (copy == NULL) {
			rc = -ENOMEM;
			goto out;
		}
		*ret_token = copy;
		rc = 0;
		goto out;
	}
	reply_detail(reply, status, detail, detailsz);
	e = cjson_get_str(reply, "error");
	rc = (status == 403 && e != NULL && strcmp(e, "quorum_not_met") == 0) ? -EAGAIN : -EPERM;
out:
	if (reply != NULL) {
		/* The token is in it. */
		json_t *t = json_object_get(reply, "token");

		if (json_is_string(t)) {
			explicit_bzero((char *)json_string_value(t), json_string_length(t));
		}
	}
	json_decref(reply);
	json_decref(body);
	uhttp_free(h);
	return rc;
}

int
requests_attestd_knows_launch(struct requests_attestd *a, const char *vm,
    const char *launch_digest)
{
	struct uhttp *h = NULL;
	json_t *reply = NULL;
	char path[32 + TOKEN_ID_MAX];
	const char *e, *v, *d;
	long status = 0;
	int rc;

	if (parse_ident(vm, TOKEN_ID_MAX) != 0) {
		return 0;
	}
	rc = launch_recalled(a, vm, launch_digest);
	if (rc >= 0) {
		return rc;
	}
	(void)snprintf(path, sizeof(path), "/v1/launches/%s", vm);
	rc = uhttp_new_unix(a->socket_path, &h);
	if (rc != 0) {
		goto out;
	}
	/* A page waits for this answer: a stuck attestd must not hold it. */
	rc = uhttp_set_timeouts(h, REQUESTS_LAUNCH_TIMEOUT_MS, REQUESTS_LAUNCH_TIMEOUT_MS);
	if (rc != 0) {
		goto out;
	}
	rc = uhttp_request_json(h, "GET", path, NULL, &status, &reply);
	if (rc != 0) {
		goto out;
	}
	e = cjson_get_str(reply, "error");
	if (status == 200) {
		v = cjson_get_str(reply, "vm");
		d = cjson_get_str(reply, "launch_digest");
		rc = v != NULL && d != NULL && strcmp(v, vm) == 0 && strcmp(d, launch_digest) == 0;
	} else if (status == 404 && e != NULL && strcmp(e, "not_found") == 0) {
		rc = -ENOTSUP;   /* an attestd without the route ("no such path") */
	} else if (status == 404) {
		rc = 0;          /* unknown_launch */
	} else if (status == 403) {
		rc = -EACCES;
	} else {
		rc = -EPROTO;
	}
	if (rc == 0 || rc == 1) {
		launch_remember(a, vm, launch_digest, rc);
	}
out:
	json_decref(reply);
	uhttp_free(h);
	return rc;
}
