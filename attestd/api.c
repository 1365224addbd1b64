#include "api.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>

#include "approval.h"
#include "approvers.h"
#include "b64url.h"
#include "cjson.h"
#include "log.h"
#include "manifest.h"
#include "parse.h"
#include "quote.h"
#include "replay.h"
#include "text.h"

struct api {
	const struct config *cfg;
	struct keyring *kr;
	struct launchlog *ll;
	struct approvers *approvers;        /* never NULL after api_new */
	struct replay *approved;            /* request ids minted with approvals; lazy */
	const char *origins[CONFIG_APPROVAL_ORIGINS_MAX + 1];
	struct webauthn_rp rp;
};

int
api_new(const struct config *cfg, struct keyring *kr, struct launchlog *ll, struct api **ret)
{
	struct api *a = calloc(1, sizeof(*a));
	size_t i;
	int r;

	if (a == NULL)
		return -ENOMEM;
	a->cfg = cfg;
	a->kr = kr;
	a->ll = ll;
	r = approvers_new(&a->approvers);
	if (r < 0) {
		free(a);
		return r;
	}
	for (i = 0; i < cfg->approvals.n_origins; i++)
		a->origins[i] = cfg->approvals.origins[i];
	a->origins[i] = NULL;
	a->rp.rp_id = cfg->approvals.rp_id;
	a->rp.origins = a->origins;
	*ret = a;
	return 0;
}

void
api_free(struct api *a)
{
	if (a == NULL)
		return;
	approvers_free(a->approvers);
	replay_close(a->approved);
	free(a);
}

int
api_load_approvers(struct api *a, char *err, size_t errsz)
{
	struct approvers *s = NULL;
	int r;

	r = approvers_load(a->cfg->state_dir, &s, err, errsz);
	if (r < 0)
		return r;
	approvers_free(a->approvers);
	a->approvers = s;
	return 0;
}

void
api_response_clear(struct api_response *r)
{
	if (r->body != NULL && r->secret)
		explicit_bzero(r->body, r->len);
	free(r->body);
	r->body = NULL;
	r->len = 0;
}

static void
respond_json(unsigned status, json_t *j, struct api_response *ret)
{
	struct api_response rs = { .status = status };

	if (j != NULL)
		rs.body = json_dumps(j, JSON_COMPACT);
	if (rs.body == NULL) {
		rs.status = 500;
	} else {
		rs.len = strlen(rs.body);
	}
	json_decref(j);
	*ret = rs;
}

void
api_error(unsigned status, const char *code, const char *detail, struct api_response *ret)
{
	/* jansson escapes the detail: it may quote what the caller sent. */
	respond_json(status, json_pack("{s:s,s:s}", "error", code, "detail",
	    detail != NULL ? detail : ""), ret);
}

/* Map a keyring error to its status code. */
static void
keyring_error(struct api *a, int r, struct api_response *ret)
{
	struct keyring_status st;
	char detail[KEYRING_ERR_MAX + 64];

	switch (r) {
	case -ENOENT: {
		api_error(404, "not_found", "no such key generation or epoch", ret);
		break;
	}
	case -EKEYEXPIRED: {
		api_error(410, "key_expired", "every token this key could have made has expired",
		    ret);
		break;
	}
	case -EAGAIN:
	case -ECOMM:
	case -EKEYREJECTED: {
		keyring_status(a->kr, 0, &st);
		text_printf(detail, sizeof(detail), "tpm %s, policy %s%s%s",
		    st.tpm == KEYRING_TPM_OK ? "ok" : "unreachable",
		    st.policy == KEYRING_POLICY_OK ? "ok" :
		    st.policy == KEYRING_POLICY_VIOLATED ? "violated" : "unknown",
		    st.last_error[0] != '\0' ? ": " : "", st.last_error);
		api_error(503, "unavailable", detail, ret);
		break;
	}
	case -EBADMSG: {
		api_error(422, "bad_mac", "the token's MAC chain does not check", ret);
		break;
	}
	case -ERANGE: {
		api_error(422, "outside_window", "the token's iat lies outside its key's epoch",
		    ret);
		break;
	}
	case -EINVAL: {
		api_error(400, "bad_request", "invalid argument", ret);
		break;
	}
	case -EPERM: {
		api_error(409, "strict_mode", "attestd runs in strict mode: no epoch key exists, "
		    "so there are no audience keys and no genuine epoch-mode tokens", ret);
		break;
	}
	default: {
		text_printf(detail, sizeof(detail), "%s", strerror(-r));
		api_error(500, "internal", detail, ret);
		break;
	}
	}
}

/* Mint request parsing. */

static const char *const mint_keys[] = {
	"aud", "vm", "launch_digest", "op", "args", "args_sha256", "ttl", "uses", "request",
	"approvals", NULL,
};

/* A string member checked by check (parse_ident or parse_op). */
static int
get_name(const json_t *obj, const char *key, bool required, size_t max,
    int (*check)(const char *, size_t), char *dst, char *detail, size_t n)
{
	const json_t *v = json_object_get(obj, key);
	const char *s;

	if (v == NULL) {
		if (!required)
			return 0;
		text_printf(detail, n, "field '%s' is required", key);
		return -EINVAL;
	}
	s = json_string_value(v);
	if (s == NULL || check(s, max) < 0) {
		text_printf(detail, n, "field '%s' must be a string of 1..%zu characters "
		    "[A-Za-z0-9._:%s-] starting with a letter or digit", key, max,
		    check == parse_op ? "/" : "");
		return -EINVAL;
	}
	memcpy(dst, s, strlen(s) + 1);
	return 0;
}

static int
get_hex256(const json_t *obj, const char *key, char dst[TOKEN_HEX256_LEN + 1],
    char *detail, size_t n)
{
	const char *s = json_string_value(json_object_get(obj, key));
	uint8_t b[32];

	if (s == NULL || parse_hex(s, b, sizeof(b)) < 0) {
		text_printf(detail, n, "field '%s' must be 64 lower-case hex characters", key);
		return -EINVAL;
	}
	memcpy(dst, s, TOKEN_HEX256_LEN + 1);
	return 0;
}

static int
get_range(const json_t *obj, const char *key, int64_t min, int64_t max, int64_t def,
    int64_t *ret, char *detail, size_t n)
{
	const json_t *v = json_object_get(obj, key);

	if (v == NULL) {
		*ret = def;
		return 0;
	}
	if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > max) {
		text_printf(detail, n, "field '%s' must be an integer in %" PRId64 "..%" PRId64,
		    key, min, max);
		return -ERANGE;
	}
	*ret = json_integer_value(v);
	return 0;
}

/* The body's "approvals", decoded, go to *ret_approvals if it is given
 * (NULL and 0 when absent). */
static int
parse_mint(const char *body, size_t len, int64_t default_ttl, int64_t max_ttl,
    struct api_mint *ret, struct approvers_approval **ret_approvals, char *detail,
    size_t detailsz)
{
	struct approvers_approval *approvals = NULL;
	size_t n_approvals = 0;
	struct api_mint m;
	const char *bad = NULL;
	const json_t *args;
	json_t *root = NULL;
	uint8_t digest[32];
	int64_t uses = 1;
	int r;

	memset(&m, 0, sizeof(m));
	r = cjson_parse(body, len, API_BODY_MAX, &root);
	if (r < 0) {
		if (r == -EFBIG)
			text_printf(detail, detailsz, "the body is larger than %d bytes", API_BODY_MAX);
		else
			text_printf(detail, detailsz, "the body is not strict JSON (duplicate keys, "
			    "real numbers and nesting deeper than %d are refused)", CJSON_MAX_DEPTH);
		goto out;
	}
	if (!json_is_object(root)) {
		text_printf(detail, detailsz, "the body must be a JSON object");
		r = -EINVAL;
		goto out;
	}
	if (cjson_only_keys(root, mint_keys, &bad) < 0) {
		text_printf(detail, detailsz, "unknown field '%s'", bad != NULL ? bad : "?");
		r = -EINVAL;
		goto out;
	}
	if ((r = get_name(root, "aud", true, TOKEN_ID_MAX, parse_ident, m.claims.aud,
	    detail, detailsz)) < 0 ||
	    (r = get_name(root, "vm", true, TOKEN_ID_MAX, parse_ident, m.claims.vm,
	    detail, detailsz)) < 0 ||
	    (r = get_hex256(root, "launch_digest", m.claims.launch, detail, detailsz)) < 0 ||
	    (r = get_name(root, "op", true, TOKEN_OP_MAX, parse_op, m.claims.op,
	    detail, detailsz)) < 0 ||
	    (r = get_name(root, "request", false, TOKEN_ID_MAX, parse_ident, m.claims.request,
	    detail, detailsz)) < 0)
		goto out;
	args = json_object_get(root, "args");
	if ((args == NULL) == (json_object_get(root, "args_sha256") == NULL)) {
		text_printf(detail, detailsz, "exactly one of 'args' and 'args_sha256' is required");
		r = -EINVAL;
		goto out;
	}
	if (args != NULL) {
		r = cjson_sha256(args, digest);
		if (r < 0) {
			text_printf(detail, detailsz, "field 'args' has no canonical form");
			r = -EINVAL;
			goto out;
		}
		format_hex(digest, sizeof(digest), m.claims.args);
	} else if ((r = get_hex256(root, "args_sha256", m.claims.args, detail, detailsz)) < 0) {
		goto out;
	}
	if ((r = get_range(root, "ttl", 1, max_ttl, default_ttl, &m.ttl, detail, detailsz)) < 0 ||
	    (r = get_range(root, "uses", 1, API_MAX_MINT_USES, 1, &uses, detail, detailsz)) < 0)
		goto out;
	m.claims.uses = (uint32_t)uses;
	if (json_object_get(root, "approvals") != NULL) {
		r = approvers_parse_approvals(json_object_get(root, "approvals"), &approvals,
		    &n_approvals, detail, detailsz);
		if (r < 0) {
			r = r == -ENOMEM ? -ENOMEM : -EINVAL;
			goto out;
		}
		m.n_approvals = n_approvals;
	}
	*ret = m;
	if (ret_approvals != NULL) {
		*ret_approvals = approvals;
		approvals = NULL;
	}
	r = 0;
out:
	free(approvals);
	json_decref(root);
	return r;
}

int
api_parse_mint(const char *body, size_t len, int64_t default_ttl, int64_t max_ttl,
    struct api_mint *ret, char *detail, size_t detailsz)
{
	return parse_mint(body, len, default_ttl, max_ttl, ret, NULL, detail, detailsz);
}

/* Handlers. */

static void
handle_status(struct api *a, int64_t now, struct api_response *ret)
{
	struct keyring_status st;
	enum launchlog_state ls;
	const char *ldetail = NULL;
	json_t *gens, *j;
	size_t i;

	keyring_status(a->kr, now, &st);
	ls = launchlog_state(a->ll, &ldetail);
	gens = json_array();
	for (i = 0; gens != NULL && i < st.n_gens; i++)
		(void)json_array_append_new(gens, json_integer(st.gens[i]));
	j = json_pack("{s:s,s:s,s:b,s:s,s:I,s:o*,s:I,s:I,s:I,s:I,s:I,s:I,s:s,s:s,s:s,s:I,s:I,"
	    "s:I}",
	    "tpm", st.tpm == KEYRING_TPM_OK ? "ok" : "unreachable",
	    "policy", st.policy == KEYRING_POLICY_OK ? "ok" :
	    st.policy == KEYRING_POLICY_VIOLATED ? "violated" : "unknown",
	    "minting", (int)st.minting,
	    "mode", st.strict ? "strict" : "epoch",
	    "generation", (json_int_t)st.generation,
	    "generations", gens,
	    "epoch", (json_int_t)st.epoch,
	    "epoch_seconds", (json_int_t)a->cfg->epoch_seconds,
	    "max_ttl_seconds", (json_int_t)a->cfg->max_ttl_seconds,
	    "tpm_commands", (json_int_t)st.tpm_commands,
	    "tokens_minted", (json_int_t)st.tokens_minted,
	    "epoch_keys", (json_int_t)st.cached_epoch_keys,
	    "last_error", st.last_error,
	    "event_log", launchlog_state_name(ls),
	    "event_log_detail", ldetail != NULL ? ldetail : "",
	    "launch_pcr", (json_int_t)launchlog_pcr(a->ll),
	    "launch_records", (json_int_t)launchlog_records(a->ll),
	    "vms", (json_int_t)launchlog_vm_count(a->ll));
	respond_json(200, j, ret);
}

/* A token is only for a VM this attestd measured, with its launch digest,
 * for an operation its envelope does not rule out. */
static int
check_measured(struct api *a, const struct api_mint *m, enum manifest_level *ret_level,
    struct api_response *ret)
{
	enum manifest_level level;
	const json_t *config = NULL;
	uint8_t want[32], got[32];
	char detail[256];

	if (launchlog_lookup(a->ll, m->claims.vm, want, &config) < 0) {
		text_printf(detail, sizeof(detail), "vm '%s' was not measured by this attestd since "
		    "the TPM's last reset", m->claims.vm);
		api_error(403, "not_measured", detail, ret);
		return -EPERM;
	}
	if (parse_hex(m->claims.launch, got, sizeof(got)) < 0 ||
	    CRYPTO_memcmp(want, got, sizeof(want)) != 0) {
		text_printf(detail, sizeof(detail), "launch_digest is not vm '%s''s", m->claims.vm);
		api_error(403, "launch_mismatch", detail, ret);
		return -EPERM;
	}
	level = manifest_envelope_level(json_object_get(config, "envelope"), m->claims.op);
	if (level == MANIFEST_LEVEL_NEVER) {
		text_printf(detail, sizeof(detail), "operation '%s' is not in vm '%s''s envelope "
		    "(absent or \"never\")", m->claims.op, m->claims.vm);
		api_error(403, "not_in_envelope", detail, ret);
		return -EPERM;
	}
	*ret_level = level;
	return 0;
}

static int
open_approved(struct api *a)
{
	char path[CONFIG_PATH_MAX + sizeof(API_APPROVED_DB) + 1];
	int n;

	if (a->approved != NULL)
		return 0;
	n = snprintf(path, sizeof(path), "%s/" API_APPROVED_DB, a->cfg->state_dir);
	if (n < 0 || (size_t)n >= sizeof(path))
		return -ENAMETOOLONG;
	return replay_open(path, &a->approved);
}

/* The approvals of a mint request: checked and counted, never ignored.
 * On success claims.approvers holds the people and *ret the counters to
 * store; otherwise the error response is made. */
static int
check_approvals(struct api *a, struct api_mint *m, enum manifest_level level,
    const struct approvers_approval *approvals, struct approvers_result *ret,
    struct api_response *rs)
{
	const struct config_approvals *cfg = &a->cfg->approvals;
	struct approval_request req;
	char detail[APPROVERS_DETAIL_MAX + 64];
	uint32_t uses = 0;
	size_t i;
	int r;

	if (level == MANIFEST_LEVEL_ASK && m->n_approvals == 0) {
		text_printf(detail, sizeof(detail), "operation '%s' is \"ask\" in vm '%s''s envelope: "
		    "the mint request needs \"approvals\" (docs/approvals.md)", m->claims.op,
		    m->claims.vm);
		api_error(403, "approvals_required", detail, rs);
		return -EPERM;
	}
	if (m->claims.request[0] == '\0') {
		text_printf(detail, sizeof(detail), "approvals are over a request: field 'request' "
		    "is required%s", level == MANIFEST_LEVEL_ASK ? " for an \"ask\" operation" : "");
		api_error(level == MANIFEST_LEVEL_ASK ? 403 : 400, level == MANIFEST_LEVEL_ASK ?
		    "approvals_required" : "bad_request", detail, rs);
		return -EPERM;
	}
	/* People approved one call, whatever the level: a token naming them
	 * is for one use, or one signature would stand for many calls. */
	if (m->claims.uses != 1) {
		api_error(400, "bad_request", "a token minted on approvals (and any token of an "
		    "\"ask\" operation) is for one use: field 'uses' must be 1", rs);
		return -EPERM;
	}
	if (!cfg->configured) {
		api_error(403, "approvals_not_configured", "attestd's configuration has no "
		    "\"approvals\" section: it cannot check approvals", rs);
		return -EPERM;
	}
	r = open_approved(a);
	if (r == 0)
		r = replay_uses(a->approved, m->claims.request, &uses);
	if (r < 0) {
		text_printf(detail, sizeof(detail), "the store of approved requests: %s", strerror(-r));
		api_error(500, "internal", detail, rs);
		return r;
	}
	if (uses > 0) {
		text_printf(detail, sizeof(detail), "request '%s' was minted before",
		    m->claims.request);
		api_error(409, "already_minted", detail, rs);
		return -EALREADY;
	}
	memset(&req, 0, sizeof(req));
	memcpy(req.request, m->claims.request, sizeof(req.request));
	memcpy(req.aud, m->claims.aud, sizeof(req.aud));
	memcpy(req.vm, m->claims.vm, sizeof(req.vm));
	memcpy(req.launch_digest, m->claims.launch, sizeof(req.launch_digest));
	memcpy(req.op, m->claims.op, sizeof(req.op));
	memcpy(req.args_sha256, m->claims.args, sizeof(req.args_sha256));
	req.ttl = m->ttl;
	detail[0] = '\0';
	r = approvers_decide(a->approvers, &a->rp, &req, approvals, m->n_approvals,
	    config_quorum(a->cfg, m->claims.op), ret, detail, sizeof(detail));
	switch (r) {
	case 0: {
		break;
	}
	case -EACCES: {
		api_error(403, "quorum_not_met", detail, rs);
		return r;
	}
	case -EPERM:
	case -E2BIG: {
		api_error(403, "approval_refused", detail, rs);
		return r;
	}
	case -EINVAL: {
		api_error(400, "bad_request", detail, rs);
		return r;
	}
	default: {
		api_error(500, "internal", strerror(-r), rs);
		return r;
	}
	}
	for (i = 0; i < ret->n_people; i++)
		memcpy(m->claims.approvers[i], ret->people[i], sizeof(m->claims.approvers[i]));
	m->claims.n_approvers = ret->n_people;
	log_info("approvals for request %s (%s on vm %s): %zu distinct approvers verified",
	    m->claims.request, m->claims.op, m->claims.vm, ret->n_people);
	return 0;
}

/* Before the token leaves: the new counters on disk, the request id in
 * approved-requests.db. Any failure withholds the token. */
/* After a failed save the file may hold the new state all the same (the
 * rename happened, the folder's fsync failed): take what is on disk, so
 * that memory never disagrees with the file, e.g. a removed credential
 * coming back at the next save. Keeps memory as it was if the file does
 * not load. */
static void
resync_approvers(struct api *a)
{
	struct approvers *disk = NULL;
	char err[256] = "";

	if (approvers_load(a->cfg->state_dir, &disk, err, sizeof(err)) < 0) {
		log_error("re-reading %s after a failed write: %s; keeping the approvers in memory",
		    APPROVERS_FILE, err);
		return;
	}
	approvers_free(a->approvers);
	a->approvers = disk;
}

static int
record_approvals(struct api *a, const struct api_mint *m, const struct approvers_result *res,
    struct api_response *rs)
{
	struct approvers *next = NULL;
	char detail[128];
	int r;

	r = approvers_dup(a->approvers, &next);
	if (r == 0)
		r = approvers_apply(next, res);
	if (r == 0)
		r = approvers_save(next, a->cfg->state_dir);
	if (r < 0) {
		log_error("storing the approvers' sign counters: %s", strerror(-r));
		text_printf(detail, sizeof(detail), "storing the sign counters: %s", strerror(-r));
		api_error(500, "internal", detail, rs);
		approvers_free(next);
		resync_approvers(a);
		return r;
	}
	approvers_free(a->approvers);
	a->approvers = next;
	r = replay_consume(a->approved, m->claims.request, 1, INT64_MAX);
	if (r == -EALREADY) {
		text_printf(detail, sizeof(detail), "request '%s' was minted before",
		    m->claims.request);
		api_error(409, "already_minted", detail, rs);
		return r;
	}
	if (r < 0) {
		log_error("recording request %s as minted: %s", m->claims.request, strerror(-r));
		text_printf(detail, sizeof(detail), "recording the request as minted: %s",
		    strerror(-r));
		api_error(500, "internal", detail, rs);
		return r;
	}
	return 0;
}

static void
handle_mint(struct api *a, const struct api_request *rq, int64_t now,
    struct api_response *ret)
{
	struct api_response rs = { .status = 200, .secret = true };
	struct approvers_approval *approvals = NULL;
	struct approvers_result *res = NULL;
	enum manifest_level level = MANIFEST_LEVEL_NEVER;
	struct api_mint m;
	char detail[256];
	char *tok = NULL;
	size_t cap;
	int r, n;

	r = parse_mint(rq->body, rq->body_len, a->cfg->default_ttl_seconds,
	    a->cfg->max_ttl_seconds, &m, &approvals, detail, sizeof(detail));
	if (r < 0) {
		api_error(r == -EFBIG ? 413 : 400, r == -EFBIG ? "too_large" : "bad_request",
		    detail, ret);
		return;
	}
	if (check_measured(a, &m, &level, ret) < 0)
		goto done;
	/* approvers stays empty unless attestd itself verified the people's
	 * signatures; given approvals are checked at any level. */
	if (level == MANIFEST_LEVEL_ASK || m.n_approvals > 0) {
		res = calloc(1, sizeof(*res));
		if (res == NULL) {
			api_error(500, "internal", "out of memory", ret);
			goto done;
		}
		if (check_approvals(a, &m, level, approvals, res, ret) < 0)
			goto done;
	}
	r = token_new_jti(m.claims.jti);
	if (r < 0) {
		keyring_error(a, r, ret);
		goto done;
	}
	m.claims.iat = now;
	m.claims.exp = now + m.ttl;
	r = keyring_mint(a->kr, now, &m.claims, &tok);
	if (r < 0) {
		keyring_error(a, r, ret);
		goto done;
	}
	if (res != NULL && record_approvals(a, &m, res, ret) < 0) {
		keyring_free_token(tok);
		goto done;
	}
	cap = strlen(tok) + 128;
	rs.body = malloc(cap);
	if (rs.body == NULL) {
		rs.status = 500;
		goto out;
	}
	n = snprintf(rs.body, cap, "{\"token\":\"%s\",\"jti\":\"%s\",\"exp\":%" PRId64
	    ",\"iat\":%" PRId64 "}", tok, m.claims.jti, m.claims.exp, m.claims.iat);
	if (n < 0 || (size_t)n >= cap) {
		free(rs.body);
		rs.body = NULL;
		rs.status = 500;
		goto out;
	}
	rs.len = (size_t)n;
out:
	keyring_free_token(tok);
	*ret = rs;
done:
	free(approvals);
	free(res);
}

static int
query_u64(const struct api_request *rq, const char *key, uint64_t min, uint64_t max,
    bool *present, uint64_t *ret)
{
	uint64_t v = 0;
	size_t i;
	bool seen = false;

	for (i = 0; i < rq->n_query; i++) {
		if (strcmp(rq->query[i].key, key) != 0)
			continue;
		if (seen || parse_u64(rq->query[i].value, min, max, &v) < 0)
			return -EINVAL;
		seen = true;
	}
	/* Absent: *ret keeps the caller's default. */
	if (seen)
		*ret = v;
	*present = seen;
	return 0;
}

static void
handle_keys(struct api *a, const struct api_request *rq, const char *aud, int64_t now,
    struct api_response *ret)
{
	struct api_response rs = { .status = 200, .secret = true };
	struct keyring_key k;
	char key64[64];
	uint64_t gen = keyring_generation(a->kr), epoch = keyring_epoch_of(a->kr, now);
	bool have;
	size_t i, cap = 0;
	int r, n;

	if (parse_ident(aud, TOKEN_ID_MAX) < 0) {
		api_error(400, "bad_request", "the audience is not a valid identifier", ret);
		return;
	}
	for (i = 0; i < rq->n_query; i++) {
		if (strcmp(rq->query[i].key, "gen") != 0 && strcmp(rq->query[i].key, "epoch") != 0) {
			api_error(400, "bad_request", "only the parameters 'gen' and 'epoch' "
			    "are known", ret);
			return;
		}
	}
	if (query_u64(rq, "gen", 1, UINT32_MAX, &have, &gen) < 0) {
		api_error(400, "bad_request", "parameter 'gen' must be given once, "
		    "as a decimal integer in 1..4294967295", ret);
		return;
	}
	if (query_u64(rq, "epoch", 0, INT64_MAX, &have, &epoch) < 0) {
		api_error(400, "bad_request", "parameter 'epoch' must be given once, "
		    "as a decimal integer", ret);
		return;
	}
	r = keyring_audience_key(a->kr, now, aud, (uint32_t)gen, epoch, &k);
	if (r < 0) {
		keyring_error(a, r, ret);
		return;
	}
	r = b64url_encode(k.key, sizeof(k.key), key64, sizeof(key64));
	if (r < 0)
		goto out;
	cap = 256 + strlen(aud);
	rs.body = malloc(cap);
	if (rs.body == NULL) {
		r = -ENOMEM;
		goto out;
	}
	/* aud passed parse_ident: nothing in it needs escaping. */
	n = snprintf(rs.body, cap, "{\"aud\":\"%s\",\"gen\":%" PRIu32 ",\"epoch\":%" PRIu64
	    ",\"key\":\"%s\",\"not_before\":%" PRId64 ",\"epoch_end\":%" PRId64
	    ",\"not_after\":%" PRId64 "}", aud, k.gen, k.epoch, key64, k.not_before,
	    k.epoch_end, k.not_after);
	if (n < 0 || (size_t)n >= cap) {
		r = -ENOBUFS;
		goto out;
	}
	rs.len = (size_t)n;
	*ret = rs;
	rs.body = NULL;
	r = 0;
out:
	explicit_bzero(&k, sizeof(k));
	explicit_bzero(key64, sizeof(key64));
	if (rs.body != NULL) {
		explicit_bzero(rs.body, cap);
		free(rs.body);
	}
	if (r < 0)
		api_error(500, "internal", strerror(-r), ret);
}

static void
handle_verify(struct api *a, const struct api_request *rq, const struct config_grant *g,
    int64_t now, struct api_response *ret)
{
	static const char *const keys[] = { "token", NULL };
	struct keyring_window w;
	struct token *t = NULL;
	json_t *root = NULL;
	const char *s;
	int r;

	if (cjson_parse(rq->body, rq->body_len, API_BODY_MAX, &root) < 0 ||
	    cjson_only_keys(root, keys, NULL) < 0) {
		api_error(400, "bad_request", "the body must be {\"token\":\"...\"}", ret);
		goto out;
	}
	s = json_string_value(json_object_get(root, "token"));
	if (s == NULL || json_string_length(json_object_get(root, "token")) > TOKEN_MAX_LEN ||
	    token_parse(s, json_string_length(json_object_get(root, "token")), &t) < 0) {
		api_error(400, "bad_request", "field 'token' is not a token", ret);
		goto out;
	}
	if (!config_allows(g, CONFIG_ROLE_VERIFY, token_kid(t)->aud)) {
		api_error(403, "forbidden", "role verify:<aud> needed for this token's audience",
		    ret);
		goto out;
	}
	r = keyring_verify(a->kr, now, t, &w);
	if (r < 0) {
		keyring_error(a, r, ret);
		goto out;
	}
	/* The window is what GET /v1/keys would say for the token's kid: a
	 * verifier of a strict token gets it here, as there is no key to ask
	 * for. */
	respond_json(200, json_pack("{s:s,s:I,s:I,s:I}", "mac", "ok",
	    "not_before", (json_int_t)w.not_before, "epoch_end", (json_int_t)w.epoch_end,
	    "not_after", (json_int_t)w.not_after), ret);
out:
	token_free(t);
	json_decref(root);
}

int
api_reload(struct api *a, int64_t now)
{
	char err[256] = "";
	int r;

	r = keyring_load(a->kr, a->cfg->state_dir, err, sizeof(err));
	if (r < 0) {
		log_error("reloading %s: %s; keeping the keys loaded before", a->cfg->state_dir,
		    err[0] != '\0' ? err : strerror(-r));
		return r;
	}
	/* The new keystore's policy is unknown until checked: check now. */
	keyring_check(a->kr, now);
	err[0] = '\0';
	r = api_load_approvers(a, err, sizeof(err));
	if (r < 0) {
		log_error("reloading the approvers: %s; keeping the ones loaded before",
		    err[0] != '\0' ? err : strerror(-r));
		return r;
	}
	log_info("reloaded %s: generation %" PRIu32 ", %zu approvers", a->cfg->state_dir,
	    keyring_generation(a->kr), approvers_people(a->approvers));
	return 0;
}

/* Admin: the enrolled approvers (docs/attestd-api.md). */

static void
handle_approvers_list(struct api *a, struct api_response *ret)
{
	const struct config_approvals *cfg = &a->cfg->approvals;
	json_t *j, *origins = NULL, *ops = NULL;
	size_t i;

	j = approvers_to_json(a->approvers);
	if (j == NULL) {
		api_error(500, "internal", "out of memory", ret);
		return;
	}
	origins = json_array();
	ops = json_object();
	for (i = 0; origins != NULL && i < cfg->n_origins; i++)
		(void)json_array_append_new(origins, json_string(cfg->origins[i]));
	for (i = 0; ops != NULL && i < cfg->n_ops; i++)
		(void)json_object_set_new(ops, cfg->ops[i].op, json_integer(cfg->ops[i].n));
	if (json_object_set_new(j, "configured", json_boolean(cfg->configured)) != 0 ||
	    json_object_set_new(j, "rp_id", cfg->configured ? json_string(cfg->rp_id) :
	    json_null()) != 0 ||
	    json_object_set_new(j, "origins", origins) != 0 ||
	    json_object_set_new(j, "quorum", json_pack("{s:I,s:o*}", "default",
	    (json_int_t)(cfg->configured ? cfg->quorum_default : 0), "ops", ops)) != 0) {
		origins = ops = NULL;
		json_decref(j);
		api_error(500, "internal", "out of memory", ret);
		return;
	}
	respond_json(200, j, ret);
}

/* Make a change durable before it counts: a copy is changed and saved,
 * then replaces the store. */
static int
commit_approvers(struct api *a, struct approvers *next, struct api_response *ret)
{
	char detail[128];
	int r;

	r = approvers_save(next, a->cfg->state_dir);
	if (r < 0) {
		text_printf(detail, sizeof(detail), "writing %s: %s", APPROVERS_FILE, strerror(-r));
		api_error(500, "internal", detail, ret);
		approvers_free(next);
		resync_approvers(a);
		return r;
	}
	approvers_free(a->approvers);
	a->approvers = next;
	return 0;
}

static void
handle_approvers_add(struct api *a, const struct api_request *rq, int64_t now,
    struct api_response *ret)
{
	struct approvers_enrolment *e = NULL;
	struct approvers *next = NULL;
	char detail[APPROVERS_DETAIL_MAX], id[1400];
	int r;

	if (!a->cfg->approvals.configured) {
		api_error(403, "approvals_not_configured", "attestd's configuration has no "
		    "\"approvals\" section (rp_id, origins): enrolment records cannot be checked",
		    ret);
		return;
	}
	e = calloc(1, sizeof(*e));
	if (e == NULL) {
		api_error(500, "internal", "out of memory", ret);
		return;
	}
	r = approvers_parse_enrolment(rq->body, rq->body_len, a->cfg->approvals.rp_id, e,
	    detail, sizeof(detail));
	if (r < 0) {
		api_error(r == -EFBIG ? 413 : 400, r == -EFBIG ? "too_large" : "bad_request",
		    detail, ret);
		goto out;
	}
	r = approvers_dup(a->approvers, &next);
	if (r == 0)
		r = approvers_add(next, e, now);
	if (r == -EEXIST) {
		api_error(409, "credential_exists", "this credential id is enrolled already "
		    "(to this or another person)", ret);
		goto out;
	}
	if (r == -ENOTUNIQ) {
		api_error(409, "name_conflict", "an enrolled person's name differs from this one "
		    "only in case: enrol the credential under that name, or pick another", ret);
		goto out;
	}
	if (r == -E2BIG) {
		text_printf(detail, sizeof(detail), "at most %d people and %d credentials each",
		    APPROVERS_MAX_PEOPLE, APPROVERS_MAX_CREDS);
		api_error(409, "too_many", detail, ret);
		goto out;
	}
	if (r < 0) {
		api_error(500, "internal", strerror(-r), ret);
		goto out;
	}
	r = commit_approvers(a, next, ret);
	next = NULL;
	if (r < 0)
		goto out;
	if (b64url_encode(e->cred.id, e->cred.id_len, id, sizeof(id)) < 0)
		id[0] = '\0';
	log_info("enrolled a %s credential for approver %s (uid %u)",
	    webauthn_alg_name(e->cred.alg), e->approver, (unsigned)rq->uid);
	respond_json(201, json_pack("{s:s,s:s,s:s}", "approver", e->approver,
	    "credential_id", id, "alg", webauthn_alg_name(e->cred.alg)), ret);
out:
	approvers_free(next);
	free(e);
}

/* DELETE /v1/approvers/NAME[/CREDENTIAL_ID] */
static void
handle_approvers_remove(struct api *a, const struct api_request *rq, const char *rest,
    struct api_response *ret)
{
	struct approvers *next = NULL;
	char name[TOKEN_ID_MAX + 1];
	uint8_t id[WEBAUTHN_CRED_ID_MAX];
	const char *slash = strchr(rest, '/');
	size_t nlen = slash != NULL ? (size_t)(slash - rest) : strlen(rest), idlen = 0;
	bool one = slash != NULL;
	int r;

	if (nlen == 0 || nlen > TOKEN_ID_MAX) {
		api_error(400, "bad_request", "the path must be /v1/approvers/NAME or "
		    "/v1/approvers/NAME/CREDENTIAL_ID", ret);
		return;
	}
	memcpy(name, rest, nlen);
	name[nlen] = '\0';
	if (parse_ident(name, TOKEN_ID_MAX) < 0) {
		api_error(400, "bad_request", "the approver's name is not a valid name", ret);
		return;
	}
	if (one && (slash[1] == '\0' || strchr(slash + 1, '/') != NULL ||
	    b64url_decode(slash + 1, strlen(slash + 1), id, sizeof(id), &idlen) < 0 ||
	    idlen == 0)) {
		api_error(400, "bad_request", "the credential id must be unpadded base64url", ret);
		return;
	}
	r = approvers_dup(a->approvers, &next);
	if (r == 0)
		r = approvers_remove(next, name, one ? id : NULL, idlen);
	if (r == -ENOENT) {
		api_error(404, "not_found", one ? "no such credential for this approver" :
		    "no such approver", ret);
		goto out;
	}
	if (r < 0) {
		api_error(500, "internal", strerror(-r), ret);
		goto out;
	}
	r = commit_approvers(a, next, ret);
	next = NULL;
	if (r < 0)
		goto out;
	log_info("removed %sapprover %s (uid %u)", one ? "a credential of " : "", name,
	    (unsigned)rq->uid);
	respond_json(200, json_pack("{s:s,s:b}", "removed", name, "credential", (int)one), ret);
out:
	approvers_free(next);
}

static void
handle_reload(struct api *a, const struct api_request *rq, int64_t now,
    struct api_response *ret)
{
	static const char *const none[] = { NULL };
	struct keyring_status st;
	json_t *root = NULL, *gens;
	size_t i;
	int r;

	if (rq->body_len != 0 && (cjson_parse(rq->body, rq->body_len, API_BODY_MAX, &root) < 0 ||
	    cjson_only_keys(root, none, NULL) < 0)) {
		json_decref(root);
		api_error(400, "bad_request", "the body must be empty or {}", ret);
		return;
	}
	json_decref(root);
	r = api_reload(a, now);
	if (r < 0) {
		char detail[128];

		text_printf(detail, sizeof(detail), "reading the state directory: %s", strerror(-r));
		api_error(500, "internal", detail, ret);
		return;
	}
	keyring_status(a->kr, now, &st);
	gens = json_array();
	for (i = 0; gens != NULL && i < st.n_gens; i++)
		(void)json_array_append_new(gens, json_integer(st.gens[i]));
	respond_json(200, json_pack("{s:I,s:o*}", "generation", (json_int_t)st.generation,
	    "generations", gens), ret);
}

/* POST /v1/quote: a TPM quote over the root key's policy PCRs and the
 * launch PCR, with the event log, for any caller holding a role. */
static void
handle_quote(struct api *a, const struct api_request *rq, struct api_response *ret)
{
	static const char *const keys[] = { "nonce", NULL };
	struct tpm_pcr_sel sel;
	struct tpm_quote *q = NULL;
	uint8_t nonce[QUOTE_NONCE_MAX];
	const char *hex;
	char *text = NULL, detail[256];
	size_t hlen, len = 0;
	json_t *root = NULL, *doc;
	int r;

	if (cjson_parse(rq->body, rq->body_len, API_BODY_MAX, &root) < 0 ||
	    cjson_only_keys(root, keys, NULL) < 0 ||
	    (hex = cjson_get_str(root, "nonce")) == NULL) {
		api_error(400, "bad_request", "the body must be {\"nonce\":HEX}", ret);
		goto out;
	}
	hlen = strlen(hex);
	if (hlen == 0 || hlen % 2 != 0 || hlen > 2 * QUOTE_NONCE_MAX ||
	    parse_hex(hex, nonce, hlen / 2) < 0) {
		text_printf(detail, sizeof(detail), "field 'nonce' must be 1..%d bytes in lower-case "
		    "hex", QUOTE_NONCE_MAX);
		api_error(400, "bad_request", detail, ret);
		goto out;
	}
	if (keyring_policy_pcrs(a->kr, &sel) < 0) {
		api_error(503, "unavailable", "no keystore loaded", ret);
		goto out;
	}
	sel.mask |= 1u << launchlog_pcr(a->ll);
	q = malloc(sizeof(*q));
	if (q == NULL) {
		api_error(500, "internal", "out of memory", ret);
		goto out;
	}
	r = keyring_quote(a->kr, &sel, nonce, hlen / 2, q);
	if (r == -ENOENT) {
		api_error(500, "internal", "the keystore holds no attestation key", ret);
		goto out;
	}
	if (r < 0) {
		keyring_error(a, r == -EOPNOTSUPP || r == -ENOENT ? -EIO : r == -ECOMM ? -EAGAIN : r,
		    ret);
		goto out;
	}
	r = launchlog_text(a->ll, &text, &len);
	if (r == -EAGAIN) {
		len = 0;   /* no log opened yet: the launch PCR should be zero */
	} else if (r < 0) {
		text_printf(detail, sizeof(detail), "reading the event log: %s", strerror(-r));
		api_error(500, "internal", detail, ret);
		goto out;
	}
	doc = quote_document(q->attest, q->attest_len, q->sig, q->sig_len, &sel,
	    (const uint8_t (*)[32])q->pcrs, launchlog_pcr(a->ll), text != NULL ? text : "", len);
	if (doc == NULL) {
		api_error(500, "internal", "assembling the quote document", ret);
		goto out;
	}
	respond_json(200, doc, ret);
out:
	free(text);
	free(q);
	json_decref(root);
}

static bool
is_method(const struct api_request *rq, const char *m)
{
	return strcmp(rq->method, m) == 0;
}

static void
method_not_allowed(const char *allow, struct api_response *ret)
{
	api_error(405, "method_not_allowed", strcmp(allow, "GET") == 0 ?
	    "this path takes GET" : "this path takes POST", ret);
	ret->allow = allow;
}

/* GET /v1/launches/VM: whether attestd measured this VM since the TPM's
 * last reset, and its launch digest, so that an approver can tell people
 * whether a request's launch is still one attestd would mint for. */
static void
handle_launch(struct api *a, const char *vm, struct api_response *ret)
{
	uint8_t digest[32];
	char hex[TOKEN_HEX256_LEN + 1];

	if (parse_ident(vm, TOKEN_ID_MAX) < 0) {
		api_error(400, "bad_request", "the VM id is not a valid identifier", ret);
		return;
	}
	if (launchlog_lookup(a->ll, vm, digest, NULL) < 0) {
		api_error(404, "unknown_launch", "attestd has not measured this VM since the "
		    "TPM's last reset", ret);
		return;
	}
	format_hex(digest, sizeof(digest), hex);
	respond_json(200, json_pack("{s:s,s:s}", "vm", vm, "launch_digest", hex), ret);
}

void
api_handle(struct api *a, const struct api_request *rq, int64_t now,
    struct api_response *ret)
{
	const struct config_grant *g;
	const char *p = rq->path;

	g = rq->peer_known ? config_grant_for(a->cfg, rq->uid) : NULL;
	if (g == NULL) {
		api_error(403, "forbidden", "this uid holds no role", ret);
		return;
	}
	if (rq->query_overflow) {
		api_error(400, "bad_request", "too many query parameters", ret);
		return;
	}
	if (strncmp(p, "/v1/keys/", 9) == 0 && p[9] != '\0') {
		if (!is_method(rq, "GET")) {
			method_not_allowed("GET", ret);
		} else if (!config_allows(g, CONFIG_ROLE_VERIFY, p + 9)) {
			api_error(403, "forbidden", "role verify:<aud> needed", ret);
		} else if (rq->body_len != 0) {
			api_error(400, "bad_request", "a GET request has no body", ret);
		} else {
			handle_keys(a, rq, p + 9, now, ret);
		}
		return;
	}
	if (strncmp(p, "/v1/launches/", 13) == 0 && p[13] != '\0') {
		if (!is_method(rq, "GET")) {
			method_not_allowed("GET", ret);
		} else if (!config_allows(g, CONFIG_ROLE_MINT, NULL) &&
		    !config_allows(g, CONFIG_ROLE_ADMIN, NULL)) {
			api_error(403, "forbidden", "role mint or admin needed", ret);
		} else if (rq->body_len != 0 || rq->n_query != 0) {
			api_error(400, "bad_request", "GET /v1/launches/VM takes no body or "
			    "parameters", ret);
		} else {
			handle_launch(a, p + 13, ret);
		}
		return;
	}
	if (strcmp(p, "/v1/status") == 0) {
		if (!is_method(rq, "GET")) {
			method_not_allowed("GET", ret);
		} else if (rq->body_len != 0 || rq->n_query != 0) {
			api_error(400, "bad_request", "GET /v1/status takes no body or parameters",
			    ret);
		} else {
			handle_status(a, now, ret);
		}
		return;
	}
	if (strcmp(p, "/v1/quote") == 0) {
		if (!is_method(rq, "POST")) {
			method_not_allowed("POST", ret);
		} else if (rq->n_query != 0) {
			api_error(400, "bad_request", "this path takes no query parameters", ret);
		} else {
			handle_quote(a, rq, ret);
		}
		return;
	}
	if (strcmp(p, "/v1/mint") == 0 || strcmp(p, "/v1/verify") == 0 ||
	    strcmp(p, "/v1/admin/reload") == 0) {
		bool mint = p[4] == 'm', verify = p[4] == 'v';

		if (!is_method(rq, "POST")) {
			method_not_allowed("POST", ret);
		} else if (mint && !config_allows(g, CONFIG_ROLE_MINT, NULL)) {
			api_error(403, "forbidden", "role mint needed", ret);
		} else if (!mint && !verify && !config_allows(g, CONFIG_ROLE_ADMIN, NULL)) {
			api_error(403, "forbidden", "role admin needed", ret);
		} else if (rq->n_query != 0) {
			api_error(400, "bad_request", "this path takes no query parameters", ret);
		} else if (mint) {
			handle_mint(a, rq, now, ret);
		} else if (verify) {
			handle_verify(a, rq, g, now, ret);
		} else {
			handle_reload(a, rq, now, ret);
		}
		return;
	}
	if (strcmp(p, "/v1/approvers") == 0 || strncmp(p, "/v1/approvers/", 14) == 0) {
		bool item = p[13] == '/';

		if (!item && !is_method(rq, "GET") && !is_method(rq, "POST")) {
			api_error(405, "method_not_allowed", "this path takes GET and POST", ret);
			ret->allow = "GET, POST";
		} else if (item && !is_method(rq, "DELETE")) {
			api_error(405, "method_not_allowed", "this path takes DELETE", ret);
			ret->allow = "DELETE";
		} else if (!config_allows(g, CONFIG_ROLE_ADMIN, NULL)) {
			api_error(403, "forbidden", "role admin needed", ret);
		} else if (rq->n_query != 0) {
			api_error(400, "bad_request", "this path takes no query parameters", ret);
		} else if (item) {
			handle_approvers_remove(a, rq, p + 14, ret);
		} else if (is_method(rq, "GET")) {
			if (rq->body_len != 0) {
				api_error(400, "bad_request", "a GET request has no body", ret);
			} else {
				handle_approvers_list(a, ret);
			}
		} else {
			handle_approvers_add(a, rq, now, ret);
		}
		return;
	}
	api_error(404, "not_found", "no such path", ret);
}
