#include "api.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>

#include "b64url.h"
#include "cjson.h"
#include "log.h"
#include "manifest.h"
#include "parse.h"
#include "quote.h"

struct api {
	const struct config *cfg;
	struct keyring *kr;
	struct launchlog *ll;
};

static void
detailf(char *detail, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void
detailf(char *detail, size_t n, const char *fmt, ...)
{
	va_list ap;

	if (detail == NULL || n == 0)
		return;
	va_start(ap, fmt);
	(void)vsnprintf(detail, n, fmt, ap);
	va_end(ap);
}

int
api_new(const struct config *cfg, struct keyring *kr, struct launchlog *ll, struct api **ret)
{
	struct api *a = calloc(1, sizeof(*a));

	if (a == NULL)
		return -ENOMEM;
	a->cfg = cfg;
	a->kr = kr;
	a->ll = ll;
	*ret = a;
	return 0;
}

void
api_free(struct api *a)
{
	free(a);
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
		detailf(detail, sizeof(detail), "tpm %s, policy %s%s%s",
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
		detailf(detail, sizeof(detail), "%s", strerror(-r));
		api_error(500, "internal", detail, ret);
		break;
	}
	}
}

/* Mint request parsing. */

static const char *const mint_keys[] = {
	"aud", "vm", "launch_digest", "op", "args", "args_sha256", "ttl", "uses", "request",
	NULL,
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
		detailf(detail, n, "field '%s' is required", key);
		return -EINVAL;
	}
	s = json_string_value(v);
	if (s == NULL || check(s, max) < 0) {
		detailf(detail, n, "field '%s' must be a string of 1..%zu characters "
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
		detailf(detail, n, "field '%s' must be 64 lower-case hex characters", key);
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
		detailf(detail, n, "field '%s' must be an integer in %" PRId64 "..%" PRId64,
		    key, min, max);
		return -ERANGE;
	}
	*ret = json_integer_value(v);
	return 0;
}

int
api_parse_mint(const char *body, size_t len, int64_t default_ttl, int64_t max_ttl,
    struct api_mint *ret, char *detail, size_t detailsz)
{
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
			detailf(detail, detailsz, "the body is larger than %d bytes", API_BODY_MAX);
		else
			detailf(detail, detailsz, "the body is not strict JSON (duplicate keys, "
			    "real numbers and nesting deeper than %d are refused)", CJSON_MAX_DEPTH);
		goto out;
	}
	if (!json_is_object(root)) {
		detailf(detail, detailsz, "the body must be a JSON object");
		r = -EINVAL;
		goto out;
	}
	if (cjson_only_keys(root, mint_keys, &bad) < 0) {
		detailf(detail, detailsz, "unknown field '%s'", bad != NULL ? bad : "?");
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
		detailf(detail, detailsz, "exactly one of 'args' and 'args_sha256' is required");
		r = -EINVAL;
		goto out;
	}
	if (args != NULL) {
		r = cjson_sha256(args, digest);
		if (r < 0) {
			detailf(detail, detailsz, "field 'args' has no canonical form");
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
	*ret = m;
	r = 0;
out:
	json_decref(root);
	return r;
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
check_measured(struct api *a, const struct api_mint *m, struct api_response *ret)
{
	const json_t *config = NULL;
	uint8_t want[32], got[32];
	char detail[256];

	if (launchlog_lookup(a->ll, m->claims.vm, want, &config) < 0) {
		detailf(detail, sizeof(detail), "vm '%s' was not measured by this attestd since "
		    "the TPM's last reset", m->claims.vm);
		api_error(403, "not_measured", detail, ret);
		return -EPERM;
	}
	if (parse_hex(m->claims.launch, got, sizeof(got)) < 0 ||
	    CRYPTO_memcmp(want, got, sizeof(want)) != 0) {
		detailf(detail, sizeof(detail), "launch_digest is not vm '%s''s", m->claims.vm);
		api_error(403, "launch_mismatch", detail, ret);
		return -EPERM;
	}
	if (manifest_envelope_level(json_object_get(config, "envelope"), m->claims.op) ==
	    MANIFEST_LEVEL_NEVER) {
		detailf(detail, sizeof(detail), "operation '%s' is not in vm '%s''s envelope "
		    "(absent or \"never\")", m->claims.op, m->claims.vm);
		api_error(403, "not_in_envelope", detail, ret);
		return -EPERM;
	}
	return 0;
}

static void
handle_mint(struct api *a, const struct api_request *rq, int64_t now,
    struct api_response *ret)
{
	struct api_response rs = { .status = 200, .secret = true };
	struct api_mint m;
	char detail[256];
	char *tok = NULL;
	size_t cap;
	int r, n;

	r = api_parse_mint(rq->body, rq->body_len, a->cfg->default_ttl_seconds,
	    a->cfg->max_ttl_seconds, &m, detail, sizeof(detail));
	if (r < 0) {
		api_error(r == -EFBIG ? 413 : 400, r == -EFBIG ? "too_large" : "bad_request",
		    detail, ret);
		return;
	}
	if (check_measured(a, &m, ret) < 0)
		return;
	/* approvers stays empty: only attestd's own check of approver
	 * signatures may fill it. */
	r = token_new_jti(m.claims.jti);
	if (r < 0) {
		keyring_error(a, r, ret);
		return;
	}
	m.claims.iat = now;
	m.claims.exp = now + m.ttl;
	r = keyring_mint(a->kr, now, &m.claims, &tok);
	if (r < 0) {
		keyring_error(a, r, ret);
		return;
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
	log_info("reloaded %s: generation %" PRIu32, a->cfg->state_dir,
	    keyring_generation(a->kr));
	return 0;
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

		detailf(detail, sizeof(detail), "reading the state directory: %s", strerror(-r));
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
		detailf(detail, sizeof(detail), "field 'nonce' must be 1..%d bytes in lower-case "
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
		detailf(detail, sizeof(detail), "reading the event log: %s", strerror(-r));
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
	api_error(404, "not_found", "no such path", ret);
}
