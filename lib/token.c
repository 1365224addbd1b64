#include "token.h"

#include <errno.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/sha.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "b64url.h"
#include "cjson.h"
#include "parse.h"

#define TOKEN_MAX_SEGMENTS (4 + TOKEN_MAX_CAVEATS)
#define JSON_INT_MAX ((int64_t)1 << 53)   /* exactly representable everywhere */

struct token {
	struct token_kid kid;
	struct token_claims claims;
	size_t n_caveats;
	struct token_caveat *caveats;           /* n_caveats of them */
	char *raw;
	size_t raw_len;
	size_t signed_len;                      /* "w1.<kid>.<payload>" */
	size_t cav_off[TOKEN_MAX_CAVEATS];
	size_t cav_len[TOKEN_MAX_CAVEATS];
	uint8_t tag[TOKEN_TAG_LEN];
};

/* --- HMAC ---------------------------------------------------------------- */

/* One HMAC-SHA256 context with the digest already chosen and no key; each
 * call duplicates it and keys the copy, which skips the provider look-ups
 * that make a fresh context cost as much as the MAC itself. */
static EVP_MAC_CTX *hmac_template;
static pthread_once_t hmac_once = PTHREAD_ONCE_INIT;

static void
hmac_setup(void)
{
	OSSL_PARAM params[2];
	EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
	EVP_MAC_CTX *ctx = NULL;

	if (mac == NULL) {
		return;
	}
	ctx = EVP_MAC_CTX_new(mac);
	EVP_MAC_free(mac);
	if (ctx == NULL) {
		return;
	}
	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0);
	params[1] = OSSL_PARAM_construct_end();
	if (EVP_MAC_CTX_set_params(ctx, params) != 1) {
		EVP_MAC_CTX_free(ctx);
		return;
	}
	hmac_template = ctx;
}

int
token_hmac(const uint8_t *key, size_t keylen, const void *msg, size_t len, uint8_t ret[32])
{
	EVP_MAC_CTX *ctx = NULL;
	uint8_t out[32];
	size_t outlen = 0;
	int r = -EIO;

	if (pthread_once(&hmac_once, hmac_setup) != 0 || hmac_template == NULL) {
		return -EIO;
	}
	ctx = EVP_MAC_CTX_dup(hmac_template);
	if (ctx == NULL) {
		return -ENOMEM;
	}
	if (EVP_MAC_init(ctx, key, keylen, NULL) != 1 ||
	    EVP_MAC_update(ctx, msg, len) != 1 ||
	    EVP_MAC_final(ctx, out, &outlen, sizeof(out)) != 1 || outlen != sizeof(out)) {
		goto out;
	}
	memcpy(ret, out, sizeof(out));
	r = 0;
out:
	OPENSSL_cleanse(out, sizeof(out));
	EVP_MAC_CTX_free(ctx);
	return r;
}

int
token_new_jti(char ret[TOKEN_JTI_LEN + 1])
{
	uint8_t raw[16];
	size_t got = 0;

	while (got < sizeof(raw)) {
		ssize_t n = getrandom(raw + got, sizeof(raw) - got, 0);

		if (n < 0) {
			if (errno == EINTR) {
				continue;
			}
			return -errno;
		}
		got += (size_t)n;
	}
	return b64url_encode(raw, sizeof(raw), ret, TOKEN_JTI_LEN + 1);
}

/* --- JSON field helpers -------------------------------------------------- */

static int
get_int(const json_t *obj, const char *key, int64_t min, int64_t max, int64_t *ret)
{
	json_t *v = json_object_get(obj, key);
	json_int_t i;

	if (!json_is_integer(v)) {
		return -EINVAL;
	}
	i = json_integer_value(v);
	if (i < min || i > max) {
		return -EINVAL;
	}
	*ret = (int64_t)i;
	return 0;
}

enum str_kind { STR_IDENT, STR_IDENT_OR_EMPTY, STR_OP, STR_HEX256, STR_JTI, STR_ANY };

static int
check_str(const char *s, enum str_kind kind, size_t max)
{
	uint8_t buf[32];
	size_t n;

	switch (kind) {
	case STR_IDENT:
		return parse_ident(s, max);
	case STR_IDENT_OR_EMPTY:
		return s[0] == '\0' ? 0 : parse_ident(s, max);
	case STR_OP:
		return parse_op(s, max);
	case STR_HEX256:
		return parse_hex(s, buf, 32);
	case STR_JTI:
		if (strlen(s) != TOKEN_JTI_LEN) {
			return -EINVAL;
		}
		return b64url_decode(s, TOKEN_JTI_LEN, buf, sizeof(buf), &n) == 0 && n == 16 ?
		    0 : -EINVAL;
	case STR_ANY:
		n = strlen(s);
		return n >= 1 && n <= max ? 0 : -EINVAL;
	default:
		return -EINVAL;
	}
}

static int
get_str(const json_t *obj, const char *key, enum str_kind kind, char *out, size_t outsz)
{
	const char *s = json_string_value(json_object_get(obj, key));

	if (s == NULL || strlen(s) >= outsz || check_str(s, kind, outsz - 1) != 0) {
		return -EINVAL;
	}
	memcpy(out, s, strlen(s) + 1);
	return 0;
}

/* Decode one segment and parse it as canonical JSON: the bytes must be
 * exactly the canonical dump of what they parse to, so that each token has
 * one encoding and what is displayed is what was MACed. */
static int
decode_segment(const char *seg, size_t len, json_t **ret)
{
	uint8_t *buf = NULL;
	char *canon = NULL;
	size_t n = 0, clen = 0;
	json_t *j = NULL;
	int r = -EINVAL;

	if (len == 0 || len > TOKEN_MAX_LEN) {
		return -EINVAL;
	}
	buf = malloc(len);
	if (buf == NULL) {
		return -ENOMEM;
	}
	if (b64url_decode(seg, len, buf, len, &n) != 0) {
		goto out;
	}
	if (cjson_parse((const char *)buf, n, TOKEN_MAX_LEN, &j) != 0 || !json_is_object(j)) {
		goto out;
	}
	if (cjson_dump(j, &canon, &clen) != 0 || clen != n || memcmp(canon, buf, n) != 0) {
		goto out;
	}
	*ret = j;
	j = NULL;
	r = 0;
out:
	json_decref(j);
	free(canon);
	free(buf);
	return r;
}

static const char *const kid_keys[] = { "aud", "epoch", "gen", "mode", NULL };
static const char *const claim_keys[] = {
	"approvers", "args", "aud", "exp", "iat", "jti", "launch", "op", "request", "uses", "vm", NULL
};

static int
kid_from_json(const json_t *j, struct token_kid *k)
{
	const char *mode;
	int64_t v;

	memset(k, 0, sizeof(*k));
	if (cjson_only_keys(j, kid_keys, NULL) != 0) {
		return -EINVAL;
	}
	if (get_str(j, "aud", STR_IDENT, k->aud, sizeof(k->aud)) != 0) {
		return -EINVAL;
	}
	if (get_int(j, "gen", 1, UINT32_MAX, &v) != 0) {
		return -EINVAL;
	}
	k->gen = (uint32_t)v;
	if (get_int(j, "epoch", 0, JSON_INT_MAX, &v) != 0) {
		return -EINVAL;
	}
	k->epoch = (uint64_t)v;
	mode = cjson_get_str(j, "mode");
	if (mode == NULL) {
		return -EINVAL;
	}
	if (strcmp(mode, "epoch") == 0) {
		k->mode = TOKEN_MODE_EPOCH;
	} else if (strcmp(mode, "strict") == 0) {
		k->mode = TOKEN_MODE_STRICT;
	} else {
		return -EINVAL;
	}
	return 0;
}

static json_t *
kid_to_json(const struct token_kid *k)
{
	return json_pack("{s:s, s:I, s:I, s:s}", "aud", k->aud, "epoch", (json_int_t)k->epoch,
	    "gen", (json_int_t)k->gen, "mode", k->mode == TOKEN_MODE_STRICT ? "strict" : "epoch");
}

static int
claims_from_json(const json_t *j, struct token_claims *c)
{
	json_t *arr, *v;
	int64_t n;
	size_t i, k;

	memset(c, 0, sizeof(*c));
	if (cjson_only_keys(j, claim_keys, NULL) != 0) {
		return -EINVAL;
	}
	if (get_str(j, "jti", STR_JTI, c->jti, sizeof(c->jti)) != 0 ||
	    get_str(j, "aud", STR_IDENT, c->aud, sizeof(c->aud)) != 0 ||
	    get_str(j, "vm", STR_IDENT, c->vm, sizeof(c->vm)) != 0 ||
	    get_str(j, "launch", STR_HEX256, c->launch, sizeof(c->launch)) != 0 ||
	    get_str(j, "op", STR_OP, c->op, sizeof(c->op)) != 0 ||
	    get_str(j, "args", STR_HEX256, c->args, sizeof(c->args)) != 0 ||
	    get_str(j, "request", STR_IDENT_OR_EMPTY, c->request, sizeof(c->request)) != 0) {
		return -EINVAL;
	}
	if (get_int(j, "iat", 0, JSON_INT_MAX, &c->iat) != 0 ||
	    get_int(j, "exp", 0, JSON_INT_MAX, &c->exp) != 0 || c->exp <= c->iat) {
		return -EINVAL;
	}
	if (get_int(j, "uses", 1, TOKEN_MAX_USES, &n) != 0) {
		return -EINVAL;
	}
	c->uses = (uint32_t)n;
	arr = json_object_get(j, "approvers");
	if (!json_is_array(arr) || json_array_size(arr) > TOKEN_MAX_APPROVERS) {
		return -EINVAL;
	}
	json_array_foreach(arr, i, v) {
		const char *s = json_string_value(v);

		if (s == NULL || strlen(s) > TOKEN_ID_MAX || parse_ident(s, TOKEN_ID_MAX) != 0) {
			return -EINVAL;
		}
		for (k = 0; k < i; k++) {
			if (strcmp(c->approvers[k], s) == 0) {
				return -EINVAL;
			}
		}
		memcpy(c->approvers[i], s, strlen(s) + 1);
	}
	c->n_approvers = json_array_size(arr);
	return 0;
}

json_t *
token_claims_to_json(const struct token_claims *c)
{
	json_t *arr = json_array(), *j;
	size_t i;

	if (arr == NULL) {
		return NULL;
	}
	for (i = 0; i < c->n_approvers && i < TOKEN_MAX_APPROVERS; i++) {
		if (json_array_append_new(arr, json_string(c->approvers[i])) != 0) {
			json_decref(arr);
			return NULL;
		}
	}
	j = json_pack("{s:o, s:s, s:s, s:I, s:I, s:s, s:s, s:s, s:s, s:I, s:s}",
	    "approvers", arr, "args", c->args, "aud", c->aud, "exp", (json_int_t)c->exp,
	    "iat", (json_int_t)c->iat, "jti", c->jti, "launch", c->launch, "op", c->op,
	    "request", c->request, "uses", (json_int_t)c->uses, "vm", c->vm);
	return j;
}

/* --- caveats ------------------------------------------------------------- */

int
token_caveat_from_json(const json_t *j, struct token_caveat *ret)
{
	static const char *const exp_keys[] = { "exp", "type", NULL };
	static const char *const ops_keys[] = { "ops", "type", NULL };
	static const char *const prefix_keys[] = { "arg", "prefix", "type", NULL };
	static const char *const uses_keys[] = { "type", "uses", NULL };
	struct token_caveat c;
	const char *type;
	json_t *arr, *v;
	int64_t n;
	size_t i, k;

	memset(&c, 0, sizeof(c));
	type = cjson_get_str(j, "type");
	if (type == NULL) {
		return -EINVAL;
	}
	if (strcmp(type, "exp") == 0) {
		c.type = TOKEN_CAVEAT_EXP;
		if (cjson_only_keys(j, exp_keys, NULL) != 0 ||
		    get_int(j, "exp", 0, JSON_INT_MAX, &c.exp) != 0) {
			return -EINVAL;
		}
	} else if (strcmp(type, "ops") == 0) {
		c.type = TOKEN_CAVEAT_OPS;
		arr = json_object_get(j, "ops");
		if (cjson_only_keys(j, ops_keys, NULL) != 0 || !json_is_array(arr) ||
		    json_array_size(arr) == 0 || json_array_size(arr) > TOKEN_MAX_OPS) {
			return -EINVAL;
		}
		json_array_foreach(arr, i, v) {
			const char *s = json_string_value(v);

			if (s == NULL || strlen(s) > TOKEN_OP_MAX ||
			    parse_op(s, TOKEN_OP_MAX) != 0) {
				return -EINVAL;
			}
			for (k = 0; k < i; k++) {
				if (strcmp(c.ops[k], s) == 0) {
					return -EINVAL;
				}
			}
			memcpy(c.ops[i], s, strlen(s) + 1);
		}
		c.n_ops = json_array_size(arr);
	} else if (strcmp(type, "arg_prefix") == 0) {
		c.type = TOKEN_CAVEAT_ARG_PREFIX;
		if (cjson_only_keys(j, prefix_keys, NULL) != 0 ||
		    get_str(j, "arg", STR_IDENT, c.arg, sizeof(c.arg)) != 0 ||
		    get_str(j, "prefix", STR_ANY, c.prefix, sizeof(c.prefix)) != 0) {
			return -EINVAL;
		}
	} else if (strcmp(type, "uses") == 0) {
		c.type = TOKEN_CAVEAT_USES;
		if (cjson_only_keys(j, uses_keys, NULL) != 0 ||
		    get_int(j, "uses", 1, TOKEN_MAX_USES, &n) != 0) {
			return -EINVAL;
		}
		c.uses = (uint32_t)n;
	} else {
		/* A caveat we do not understand could be a restriction we would
		 * fail to enforce: refuse the whole token. */
		return -EINVAL;
	}
	*ret = c;
	return 0;
}

json_t *
token_caveat_to_json(const struct token_caveat *c)
{
	json_t *arr;
	size_t i;

	switch (c->type) {
	case TOKEN_CAVEAT_EXP:
		return json_pack("{s:s, s:I}", "type", "exp", "exp", (json_int_t)c->exp);
	case TOKEN_CAVEAT_OPS:
		arr = json_array();
		if (arr == NULL) {
			return NULL;
		}
		for (i = 0; i < c->n_ops && i < TOKEN_MAX_OPS; i++) {
			if (json_array_append_new(arr, json_string(c->ops[i])) != 0) {
				json_decref(arr);
				return NULL;
			}
		}
		return json_pack("{s:s, s:o}", "type", "ops", "ops", arr);
	case TOKEN_CAVEAT_ARG_PREFIX:
		return json_pack("{s:s, s:s, s:s}", "type", "arg_prefix", "arg", c->arg,
		    "prefix", c->prefix);
	case TOKEN_CAVEAT_USES:
		return json_pack("{s:s, s:I}", "type", "uses", "uses", (json_int_t)c->uses);
	default:
		return NULL;
	}
}

/* --- encoding ------------------------------------------------------------ */

/* Canonical JSON of j, base64url-encoded, appended to buf at *pos. */
static int
append_json_segment(json_t *j, char *buf, size_t bufsz, size_t *pos)
{
	char *s = NULL;
	size_t len = 0;
	int r;

	if (j == NULL) {
		return -EINVAL;
	}
	r = cjson_dump(j, &s, &len);
	if (r != 0) {
		return r;
	}
	if (*pos + 1 >= bufsz) {
		r = -E2BIG;
		goto out;
	}
	buf[(*pos)++] = '.';
	r = b64url_encode((const uint8_t *)s, len, buf + *pos, bufsz - *pos);
	if (r != 0) {
		r = -E2BIG;
		goto out;
	}
	*pos += strlen(buf + *pos);
out:
	free(s);
	return r;
}

int
token_signing_input(const struct token_kid *kid, const struct token_claims *c,
    char **ret, size_t *ret_len)
{
	struct token_claims check;
	struct token_kid kcheck;
	json_t *jk = NULL, *jc = NULL;
	char *buf = NULL;
	size_t pos;
	int r = -EINVAL;

	jk = kid_to_json(kid);
	jc = token_claims_to_json(c);
	if (jk == NULL || jc == NULL) {
		goto out;
	}
	/* Refuse to sign anything the parser would refuse to accept. */
	if (kid_from_json(jk, &kcheck) != 0 || claims_from_json(jc, &check) != 0 ||
	    strcmp(kid->aud, c->aud) != 0) {
		goto out;
	}
	buf = malloc(TOKEN_MAX_LEN + 1);
	if (buf == NULL) {
		r = -ENOMEM;
		goto out;
	}
	memcpy(buf, TOKEN_VERSION, sizeof(TOKEN_VERSION));
	pos = strlen(TOKEN_VERSION);
	if ((r = append_json_segment(jk, buf, TOKEN_MAX_LEN + 1, &pos)) != 0 ||
	    (r = append_json_segment(jc, buf, TOKEN_MAX_LEN + 1, &pos)) != 0) {
		goto out;
	}
	*ret = buf;
	*ret_len = pos;
	buf = NULL;
	r = 0;
out:
	free(buf);
	json_decref(jk);
	json_decref(jc);
	return r;
}

void
token_strict_message(const char *input, size_t len, uint8_t ret[32])
{
	SHA256((const unsigned char *)input, len, ret);
}

int
token_finish(const char *input, size_t len, const uint8_t t0[TOKEN_TAG_LEN], char **ret)
{
	size_t need = len + 1 + b64url_encoded_len(TOKEN_TAG_LEN);
	char *s;

	if (need > TOKEN_MAX_LEN) {
		return -E2BIG;
	}
	s = malloc(need + 1);
	if (s == NULL) {
		return -ENOMEM;
	}
	memcpy(s, input, len);
	s[len] = '.';
	if (b64url_encode(t0, TOKEN_TAG_LEN, s + len + 1, need + 1 - len - 1) != 0) {
		free(s);
		return -E2BIG;
	}
	*ret = s;
	return 0;
}

int
token_encode(const struct token_kid *kid, const struct token_claims *c,
    const uint8_t key[TOKEN_KEY_LEN], char **ret)
{
	uint8_t t0[TOKEN_TAG_LEN];
	char *input = NULL;
	size_t len = 0;
	int r;

	r = token_signing_input(kid, c, &input, &len);
	if (r != 0) {
		return r;
	}
	r = token_hmac(key, TOKEN_KEY_LEN, input, len, t0);
	if (r == 0) {
		r = token_finish(input, len, t0, ret);
	}
	explicit_bzero(t0, sizeof(t0));
	free(input);
	return r;
}


/* --- the canonical scanner ------------------------------------------------ */

/* kid and payload hold only integers and strings drawn from restricted
 * alphabets (identifiers, hex, base64url) that canonical JSON never
 * escapes, with keys in a fixed sorted order. So their canonical form is a
 * fixed template, and a scanner that accepts exactly that template accepts
 * exactly the canonical encodings, without building a JSON tree: this is
 * most of the cost of verifying a token. fuzz_token checks that it agrees
 * with the jansson-based parser on every input. */

struct scan {
	const char *p;
	const char *end;
};

static int
scan_lit(struct scan *sc, const char *lit)
{
	size_t n = strlen(lit);

	if ((size_t)(sc->end - sc->p) < n || memcmp(sc->p, lit, n) != 0) {
		return -EINVAL;
	}
	sc->p += n;
	return 0;
}

/* A string's body up to the closing quote; no escapes, no control or
 * non-ASCII bytes (none of the alphabets allowed here has them). */
static int
scan_str(struct scan *sc, enum str_kind kind, char *out, size_t outsz)
{
	const char *q = sc->p;
	size_t n;

	while (q < sc->end && *q != '"') {
		if (*q == '\\' || (unsigned char)*q < 0x20 || (unsigned char)*q > 0x7e) {
			return -EINVAL;
		}
		q++;
	}
	n = (size_t)(q - sc->p);
	if (q == sc->end || n >= outsz) {
		return -EINVAL;
	}
	memcpy(out, sc->p, n);
	out[n] = '\0';
	if (check_str(out, kind, outsz - 1) != 0) {
		return -EINVAL;
	}
	sc->p = q + 1;
	return 0;
}

static int
scan_uint(struct scan *sc, uint64_t max, uint64_t *ret)
{
	uint64_t v = 0;
	const char *start = sc->p;

	while (sc->p < sc->end && *sc->p >= '0' && *sc->p <= '9') {
		v = v * 10 + (uint64_t)(*sc->p - '0');
		if (v > max) {
			return -EINVAL;
		}
		sc->p++;
	}
	if (sc->p == start || (*start == '0' && sc->p - start > 1)) {
		return -EINVAL;
	}
	*ret = v;
	return 0;
}

static int
scan_kid(const char *buf, size_t len, struct token_kid *k)
{
	struct scan sc = { buf, buf + len };
	char mode[8];
	uint64_t v;

	memset(k, 0, sizeof(*k));
	if (scan_lit(&sc, "{\"aud\":\"") != 0 || scan_str(&sc, STR_IDENT, k->aud, sizeof(k->aud)) != 0 ||
	    scan_lit(&sc, ",\"epoch\":") != 0 || scan_uint(&sc, (uint64_t)JSON_INT_MAX, &v) != 0) {
		return -EINVAL;
	}
	k->epoch = v;
	if (scan_lit(&sc, ",\"gen\":") != 0 || scan_uint(&sc, UINT32_MAX, &v) != 0 || v == 0) {
		return -EINVAL;
	}
	k->gen = (uint32_t)v;
	if (scan_lit(&sc, ",\"mode\":\"") != 0 || scan_str(&sc, STR_IDENT, mode, sizeof(mode)) != 0 ||
	    scan_lit(&sc, "}") != 0 || sc.p != sc.end) {
		return -EINVAL;
	}
	if (strcmp(mode, "epoch") == 0) {
		k->mode = TOKEN_MODE_EPOCH;
	} else if (strcmp(mode, "strict") == 0) {
		k->mode = TOKEN_MODE_STRICT;
	} else {
		return -EINVAL;
	}
	return 0;
}

static int
scan_claims(const char *buf, size_t len, struct token_claims *c)
{
	struct scan sc = { buf, buf + len };
	uint64_t v;
	size_t i;

	memset(c, 0, sizeof(*c));
	if (scan_lit(&sc, "{\"approvers\":[") != 0) {
		return -EINVAL;
	}
	if (scan_lit(&sc, "]") != 0) {
		do {
			if (c->n_approvers == TOKEN_MAX_APPROVERS || scan_lit(&sc, "\"") != 0 ||
			    scan_str(&sc, STR_IDENT, c->approvers[c->n_approvers],
			    sizeof(c->approvers[0])) != 0) {
				return -EINVAL;
			}
			for (i = 0; i < c->n_approvers; i++) {
				if (strcmp(c->approvers[i], c->approvers[c->n_approvers]) == 0) {
					return -EINVAL;
				}
			}
			c->n_approvers++;
		} while (scan_lit(&sc, ",") == 0);
		if (scan_lit(&sc, "]") != 0) {
			return -EINVAL;
		}
	}
	if (scan_lit(&sc, ",\"args\":\"") != 0 || scan_str(&sc, STR_HEX256, c->args, sizeof(c->args)) != 0 ||
	    scan_lit(&sc, ",\"aud\":\"") != 0 || scan_str(&sc, STR_IDENT, c->aud, sizeof(c->aud)) != 0 ||
	    scan_lit(&sc, ",\"exp\":") != 0 || scan_uint(&sc, (uint64_t)JSON_INT_MAX, &v) != 0) {
		return -EINVAL;
	}
	c->exp = (int64_t)v;
	if (scan_lit(&sc, ",\"iat\":") != 0 || scan_uint(&sc, (uint64_t)JSON_INT_MAX, &v) != 0) {
		return -EINVAL;
	}
	c->iat = (int64_t)v;
	if (scan_lit(&sc, ",\"jti\":\"") != 0 || scan_str(&sc, STR_JTI, c->jti, sizeof(c->jti)) != 0 ||
	    scan_lit(&sc, ",\"launch\":\"") != 0 ||
	    scan_str(&sc, STR_HEX256, c->launch, sizeof(c->launch)) != 0 ||
	    scan_lit(&sc, ",\"op\":\"") != 0 || scan_str(&sc, STR_OP, c->op, sizeof(c->op)) != 0 ||
	    scan_lit(&sc, ",\"request\":\"") != 0 ||
	    scan_str(&sc, STR_IDENT_OR_EMPTY, c->request, sizeof(c->request)) != 0 ||
	    scan_lit(&sc, ",\"uses\":") != 0 || scan_uint(&sc, TOKEN_MAX_USES, &v) != 0 || v == 0) {
		return -EINVAL;
	}
	c->uses = (uint32_t)v;
	if (scan_lit(&sc, ",\"vm\":\"") != 0 || scan_str(&sc, STR_IDENT, c->vm, sizeof(c->vm)) != 0 ||
	    scan_lit(&sc, "}") != 0 || sc.p != sc.end || c->exp <= c->iat) {
		return -EINVAL;
	}
	return 0;
}

/* Decode one base64url segment into buf (TOKEN_MAX_LEN bytes). */
static int
decode_raw(const char *seg, size_t len, uint8_t *buf, size_t *ret_len)
{
	if (len == 0 || len > TOKEN_MAX_LEN) {
		return -EINVAL;
	}
	return b64url_decode(seg, len, buf, TOKEN_MAX_LEN, ret_len);
}

/* The decoders below fill a local copy and hand it over only on success:
 * a caller never sees a half-parsed kid, claims or caveat. */
int
token_kid_decode(const char *seg, size_t len, struct token_kid *ret)
{
	uint8_t buf[TOKEN_MAX_LEN];
	struct token_kid k;
	size_t n = 0;
	int r;

	if (decode_raw(seg, len, buf, &n) != 0) {
		return -EINVAL;
	}
	r = scan_kid((const char *)buf, n, &k);
	if (r == 0) {
		*ret = k;
	}
	return r;
}

int
token_claims_decode(const char *seg, size_t len, struct token_claims *ret)
{
	uint8_t buf[TOKEN_MAX_LEN];
	struct token_claims c;
	size_t n = 0;
	int r;

	if (decode_raw(seg, len, buf, &n) != 0) {
		return -EINVAL;
	}
	r = scan_claims((const char *)buf, n, &c);
	if (r == 0) {
		*ret = c;
	}
	explicit_bzero(buf, n);
	explicit_bzero(&c, sizeof(c));
	return r;
}

int
token_kid_decode_json(const char *seg, size_t len, struct token_kid *ret)
{
	struct token_kid k;
	json_t *j = NULL;
	int r;

	r = decode_segment(seg, len, &j);
	if (r == 0) {
		r = kid_from_json(j, &k);
	}
	if (r == 0) {
		*ret = k;
	}
	json_decref(j);
	return r;
}

int
token_claims_decode_json(const char *seg, size_t len, struct token_claims *ret)
{
	struct token_claims c;
	json_t *j = NULL;
	int r;

	r = decode_segment(seg, len, &j);
	if (r == 0) {
		r = claims_from_json(j, &c);
	}
	if (r == 0) {
		*ret = c;
	}
	explicit_bzero(&c, sizeof(c));
	json_decref(j);
	return r;
}


/* Caveats: the scanner accepts the canonical form of caveats whose strings
 * need no escaping; anything else (-EAGAIN) goes to the general path, which
 * decides. Every caveat the scanner accepts, the general path accepts with
 * the same value (fuzz_token_scan). */
static int
scan_caveat(const char *buf, size_t len, struct token_caveat *c)
{
	struct scan sc = { buf, buf + len };
	uint64_t v;
	size_t i;

	memset(c, 0, sizeof(*c));
	if (scan_lit(&sc, "{\"exp\":") == 0) {
		c->type = TOKEN_CAVEAT_EXP;
		if (scan_uint(&sc, (uint64_t)JSON_INT_MAX, &v) != 0 ||
		    scan_lit(&sc, ",\"type\":\"exp\"}") != 0) {
			return -EAGAIN;
		}
		c->exp = (int64_t)v;
	} else if (scan_lit(&sc, "{\"type\":\"uses\",\"uses\":") == 0) {
		c->type = TOKEN_CAVEAT_USES;
		if (scan_uint(&sc, TOKEN_MAX_USES, &v) != 0 || v == 0 || scan_lit(&sc, "}") != 0) {
			return -EAGAIN;
		}
		c->uses = (uint32_t)v;
	} else if (scan_lit(&sc, "{\"ops\":[") == 0) {
		c->type = TOKEN_CAVEAT_OPS;
		do {
			if (c->n_ops == TOKEN_MAX_OPS || scan_lit(&sc, "\"") != 0 ||
			    scan_str(&sc, STR_OP, c->ops[c->n_ops], sizeof(c->ops[0])) != 0) {
				return -EAGAIN;
			}
			for (i = 0; i < c->n_ops; i++) {
				if (strcmp(c->ops[i], c->ops[c->n_ops]) == 0) {
					return -EAGAIN;
				}
			}
			c->n_ops++;
		} while (scan_lit(&sc, ",") == 0);
		if (scan_lit(&sc, "],\"type\":\"ops\"}") != 0) {
			return -EAGAIN;
		}
	} else if (scan_lit(&sc, "{\"arg\":\"") == 0) {
		c->type = TOKEN_CAVEAT_ARG_PREFIX;
		if (scan_str(&sc, STR_IDENT, c->arg, sizeof(c->arg)) != 0 ||
		    scan_lit(&sc, ",\"prefix\":\"") != 0 ||
		    scan_str(&sc, STR_ANY, c->prefix, sizeof(c->prefix)) != 0 ||
		    scan_lit(&sc, ",\"type\":\"arg_prefix\"}") != 0) {
			return -EAGAIN;
		}
	} else {
		return -EAGAIN;
	}
	return sc.p == sc.end ? 0 : -EAGAIN;
}

int
token_caveat_decode(const char *seg, size_t len, struct token_caveat *ret)
{
	uint8_t buf[TOKEN_MAX_LEN];
	struct token_caveat c;
	size_t n = 0;
	int r;

	if (decode_raw(seg, len, buf, &n) != 0) {
		return -EINVAL;
	}
	r = scan_caveat((const char *)buf, n, &c);
	if (r == 0) {
		*ret = c;
		return 0;
	}
	if (r != -EAGAIN) {
		return r;
	}
	return token_caveat_decode_json(seg, len, ret);
}

int
token_caveat_decode_json(const char *seg, size_t len, struct token_caveat *ret)
{
	json_t *j = NULL;
	int r;

	r = decode_segment(seg, len, &j);
	if (r == 0) {
		r = token_caveat_from_json(j, ret);
	}
	json_decref(j);
	return r;
}

/* --- parsing ------------------------------------------------------------- */

int
token_parse(const char *s, size_t len, struct token **ret)
{
	size_t start[TOKEN_MAX_SEGMENTS], seglen[TOKEN_MAX_SEGMENTS];
	size_t nseg = 0, i, pos = 0, taglen = 0;
	struct token *t = NULL;
	int r = -EINVAL;

	if (s == NULL || len == 0 || len > TOKEN_MAX_LEN || memchr(s, '\0', len) != NULL) {
		return -EINVAL;
	}
	for (i = 0; i <= len; i++) {
		if (i == len || s[i] == '.') {
			if (nseg == TOKEN_MAX_SEGMENTS || i == pos) {
				return -EINVAL;
			}
			start[nseg] = pos;
			seglen[nseg] = i - pos;
			nseg++;
			pos = i + 1;
		}
	}
	if (nseg < 4) {
		return -EINVAL;
	}
	if (seglen[0] != strlen(TOKEN_VERSION) || memcmp(s, TOKEN_VERSION, seglen[0]) != 0) {
		return -EPROTONOSUPPORT;
	}

	t = calloc(1, sizeof(*t));
	if (t == NULL) {
		return -ENOMEM;
	}
	t->raw = malloc(len + 1);
	if (t->raw == NULL) {
		r = -ENOMEM;
		goto out;
	}
	memcpy(t->raw, s, len);
	t->raw[len] = '\0';
	t->raw_len = len;

	if (token_kid_decode(s + start[1], seglen[1], &t->kid) != 0 ||
	    token_claims_decode(s + start[2], seglen[2], &t->claims) != 0) {
		goto out;
	}
	if (strcmp(t->kid.aud, t->claims.aud) != 0) {
		goto out;
	}
	t->signed_len = start[2] + seglen[2];

	t->n_caveats = nseg - 4;
	if (t->n_caveats > 0) {
		t->caveats = calloc(t->n_caveats, sizeof(*t->caveats));
		if (t->caveats == NULL) {
			r = -ENOMEM;
			goto out;
		}
	}
	for (i = 0; i < t->n_caveats; i++) {
		size_t k = 3 + i;

		if (token_caveat_decode(s + start[k], seglen[k], &t->caveats[i]) != 0) {
			goto out;
		}
		t->cav_off[i] = start[k];
		t->cav_len[i] = seglen[k];
	}
	if (b64url_decode(s + start[nseg - 1], seglen[nseg - 1], t->tag, sizeof(t->tag),
	    &taglen) != 0 || taglen != TOKEN_TAG_LEN) {
		goto out;
	}
	*ret = t;
	t = NULL;
	r = 0;
out:
	token_free(t);
	return r;
}

void
token_free(struct token *t)
{
	if (t == NULL) {
		return;
	}
	if (t->raw != NULL) {
		explicit_bzero(t->raw, t->raw_len);
		free(t->raw);
	}
	free(t->caveats);
	explicit_bzero(t, sizeof(*t));
	free(t);
}

const struct token_kid *
token_kid(const struct token *t)
{
	return &t->kid;
}

const struct token_claims *
token_claims(const struct token *t)
{
	return &t->claims;
}

size_t
token_caveat_count(const struct token *t)
{
	return t->n_caveats;
}

const struct token_caveat *
token_caveat(const struct token *t, size_t i)
{
	return i < t->n_caveats ? &t->caveats[i] : NULL;
}

const char *
token_signed_part(const struct token *t, size_t *ret_len)
{
	*ret_len = t->signed_len;
	return t->raw;
}

const char *
token_string(const struct token *t, size_t *ret_len)
{
	*ret_len = t->raw_len;
	return t->raw;
}

/* --- MAC chain ----------------------------------------------------------- */

int
token_verify_chain(const struct token *t, const uint8_t t0[TOKEN_TAG_LEN])
{
	uint8_t cur[TOKEN_TAG_LEN];
	size_t i;
	int r = 0;

	memcpy(cur, t0, sizeof(cur));
	for (i = 0; i < t->n_caveats && r == 0; i++) {
		r = token_hmac(cur, sizeof(cur), t->raw + t->cav_off[i], t->cav_len[i], cur);
	}
	if (r == 0 && CRYPTO_memcmp(cur, t->tag, sizeof(cur)) != 0) {
		r = -EBADMSG;
	}
	explicit_bzero(cur, sizeof(cur));
	return r;
}

int
token_verify_mac(const struct token *t, const uint8_t key[TOKEN_KEY_LEN])
{
	uint8_t t0[TOKEN_TAG_LEN];
	int r;

	if (t->kid.mode != TOKEN_MODE_EPOCH) {
		return -EBADMSG;
	}
	r = token_hmac(key, TOKEN_KEY_LEN, t->raw, t->signed_len, t0);
	if (r == 0) {
		r = token_verify_chain(t, t0);
	}
	explicit_bzero(t0, sizeof(t0));
	return r;
}

int
token_attenuate(const char *s, size_t len, const struct token_caveat *cav, char **ret)
{
	struct token *t = NULL;
	struct token_caveat check;
	uint8_t tag[TOKEN_TAG_LEN];
	char *out = NULL;
	json_t *j = NULL;
	size_t pos, seg;
	int r;

	r = token_parse(s, len, &t);
	if (r != 0) {
		return r;
	}
	j = token_caveat_to_json(cav);
	if (j == NULL || token_caveat_from_json(j, &check) != 0) {
		r = -EINVAL;
		goto out;
	}
	if (t->n_caveats >= TOKEN_MAX_CAVEATS) {
		r = -E2BIG;
		goto out;
	}
	out = malloc(TOKEN_MAX_LEN + 1);
	if (out == NULL) {
		r = -ENOMEM;
		goto out;
	}
	/* Everything but the old tag stays; the new caveat and tag follow. */
	pos = (size_t)(strrchr(t->raw, '.') - t->raw);
	memcpy(out, t->raw, pos);
	seg = pos + 1;
	if ((r = append_json_segment(j, out, TOKEN_MAX_LEN + 1, &pos)) != 0) {
		goto out;
	}
	if ((r = token_hmac(t->tag, sizeof(t->tag), out + seg, pos - seg, tag)) != 0) {
		goto out;
	}
	if (pos + 1 + b64url_encoded_len(TOKEN_TAG_LEN) > TOKEN_MAX_LEN) {
		r = -E2BIG;
		goto out;
	}
	out[pos++] = '.';
	if ((r = b64url_encode(tag, sizeof(tag), out + pos, TOKEN_MAX_LEN + 1 - pos)) != 0) {
		goto out;
	}
	*ret = out;
	out = NULL;
out:
	explicit_bzero(tag, sizeof(tag));
	free(out);
	json_decref(j);
	token_free(t);
	return r;
}

/* --- semantic checks ----------------------------------------------------- */

static int
fail(const char **ret_reason, const char *why, int code)
{
	if (ret_reason != NULL) {
		*ret_reason = why;
	}
	return code;
}

int
token_check(const struct token *t, const struct token_expect *e,
    struct token_grant *ret, const char **ret_reason)
{
	const struct token_claims *c = &t->claims;
	char hex[TOKEN_HEX256_LEN + 1];
	uint8_t digest[32];
	int64_t exp = c->exp, latest;
	uint32_t uses = c->uses;
	size_t i, k;

	if (e->aud == NULL || strcmp(e->aud, c->aud) != 0 || strcmp(e->aud, t->kid.aud) != 0) {
		return fail(ret_reason, "wrong_audience", -EPERM);
	}
	if (e->vm != NULL && strcmp(e->vm, c->vm) != 0) {
		return fail(ret_reason, "wrong_vm", -EPERM);
	}
	if (e->launch != NULL && strcmp(e->launch, c->launch) != 0) {
		return fail(ret_reason, "wrong_launch", -EPERM);
	}
	if (e->op != NULL && strcmp(e->op, c->op) != 0) {
		return fail(ret_reason, "wrong_operation", -EPERM);
	}
	if (e->request != NULL && strcmp(e->request, c->request) != 0) {
		return fail(ret_reason, "wrong_request", -EPERM);
	}
	if (e->need_approvers && c->n_approvers == 0) {
		return fail(ret_reason, "no_approvers", -EPERM);
	}
	if (e->args_sha256 != NULL && strcmp(e->args_sha256, c->args) != 0) {
		return fail(ret_reason, "wrong_arguments", -EPERM);
	}
	if (e->args != NULL) {
		if (cjson_sha256(e->args, digest) != 0) {
			return fail(ret_reason, "wrong_arguments", -EPERM);
		}
		format_hex(digest, sizeof(digest), hex);
		if (strcmp(hex, c->args) != 0) {
			return fail(ret_reason, "wrong_arguments", -EPERM);
		}
	}
	/* now + skew saturates rather than wrapping: a caller's absurd skew
	 * must not turn "issued in the future" into "issued long ago". */
	if (__builtin_add_overflow(e->now, e->skew, &latest)) {
		latest = e->skew > 0 ? INT64_MAX : INT64_MIN;
	}
	if (c->iat > latest) {
		return fail(ret_reason, "not_yet_valid", -EPERM);
	}

	for (i = 0; i < t->n_caveats; i++) {
		const struct token_caveat *cav = &t->caveats[i];
		const json_t *jv;
		const char *v;
		size_t plen;
		int found = 0;

		switch (cav->type) {
		case TOKEN_CAVEAT_EXP:
			if (cav->exp < exp) {
				exp = cav->exp;
			}
			break;
		case TOKEN_CAVEAT_OPS:
			for (k = 0; k < cav->n_ops; k++) {
				if (strcmp(cav->ops[k], c->op) == 0) {
					found = 1;
				}
			}
			if (!found) {
				return fail(ret_reason, "caveat_operation", -EPERM);
			}
			break;
		case TOKEN_CAVEAT_ARG_PREFIX:
			if (e->args == NULL) {
				return fail(ret_reason, "missing_arguments", -EPERM);
			}
			/* Bytes, over the string's whole length (jansson strings may
			 * hold NULs). Only an object's own string member counts. */
			jv = json_is_object(e->args) ? json_object_get(e->args, cav->arg) : NULL;
			v = json_string_value(jv);
			plen = strlen(cav->prefix);
			if (v == NULL || json_string_length(jv) < plen || memcmp(v, cav->prefix, plen) != 0) {
				return fail(ret_reason, "caveat_argument", -EPERM);
			}
			break;
		case TOKEN_CAVEAT_USES:
			if (cav->uses < uses) {
				uses = cav->uses;
			}
			break;
		default:
			return fail(ret_reason, "unknown_caveat", -EPERM);
		}
	}
	if (e->now >= exp) {
		return fail(ret_reason, "expired", -EPERM);
	}
	if (ret != NULL) {
		ret->exp = exp;
		ret->uses = uses;
		ret->n_approvers = c->n_approvers;
		memcpy(ret->approvers, c->approvers, sizeof(ret->approvers));
	}
	return 0;
}

json_t *
token_to_json(const struct token *t)
{
	char tag[64];
	json_t *cavs = json_array(), *j;
	size_t i;

	if (cavs == NULL) {
		return NULL;
	}
	for (i = 0; i < t->n_caveats; i++) {
		if (json_array_append_new(cavs, token_caveat_to_json(&t->caveats[i])) != 0) {
			json_decref(cavs);
			return NULL;
		}
	}
	if (b64url_encode(t->tag, sizeof(t->tag), tag, sizeof(tag)) != 0) {
		json_decref(cavs);
		return NULL;
	}
	j = json_pack("{s:s, s:o, s:o, s:o, s:s}", "version", TOKEN_VERSION,
	    "kid", kid_to_json(&t->kid), "claims", token_claims_to_json(&t->claims),
	    "caveats", cavs, "tag", tag);
	return j;
}
