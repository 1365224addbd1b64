#include "verifier.h"

#include <errno.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "b64url.h"
#include "cjson.h"
#include "parse.h"
#include "secmem.h"
#include "uhttp.h"

#define KEYS_BYTES (VERIFIER_CACHE_MAX * TOKEN_KEY_LEN)

struct cache_entry {
	bool used;
	uint32_t gen;
	uint64_t epoch;
	int64_t not_before;
	int64_t epoch_end;
	int64_t not_after;
	uint64_t last_used;     /* LRU tick */
};

struct verifier {
	char aud[TOKEN_ID_MAX + 1];
	struct verifier_source src;
	struct uhttp *http;     /* owned when the source is attestd */
	struct replay *replay;  /* borrowed */
	uint8_t *keys;          /* secmem: slot i holds cache[i]'s key */
	struct cache_entry cache[VERIFIER_CACHE_MAX];
	uint64_t tick;
	uint64_t fetches;
	uint64_t hits;
};

/* --- attestd as the key source ------------------------------------------- */

static int
status_error(long status)
{
	switch (status) {
	case 404: {
		return -ENOKEY;
	}
	case 410: {
		return -EKEYEXPIRED;
	}
	case 403: {
		return -EACCES;
	}
	case 503: {
		return -EAGAIN;
	}
	default: {
		return -EPROTO;
	}
	}
}

/* An error reply. 409 strict_mode is attestd in strict mode: it has no
 * audience keys, and refuses epoch-mode tokens. */
static int
reply_error(long status, const json_t *rep)
{
	const char *err;

	if (status == 409) {
		err = cjson_get_str(rep, "error");
		return err != NULL && strcmp(err, "strict_mode") == 0 ? -EPERM : -EPROTO;
	}
	return status_error(status);
}

static int
get_i64(const json_t *obj, const char *key, int64_t *ret)
{
	json_t *v = json_object_get(obj, key);

	if (!json_is_integer(v)) {
		return -EPROTO;
	}
	*ret = (int64_t)json_integer_value(v);
	return 0;
}

/* jansson frees without wiping: clear the key's text in place first. */
static void
wipe_string_member(json_t *obj, const char *key)
{
	json_t *v = json_object_get(obj, key);

	if (json_is_string(v)) {
		explicit_bzero((char *)json_string_value(v), json_string_length(v));
	}
}

static int
http_get_key(void *ctx, const char *aud, uint32_t gen, uint64_t epoch, struct verifier_key *ret)
{
	struct verifier_key k;
	char path[160];
	const char *s;
	json_t *rep = NULL;
	int64_t g = 0, e = 0;
	size_t n = 0;
	long status = 0;
	int r;

	r = snprintf(path, sizeof(path), "/v1/keys/%s?gen=%lu&epoch=%llu", aud,
	    (unsigned long)gen, (unsigned long long)epoch);
	if (r < 0 || (size_t)r >= sizeof(path)) {
		return -EINVAL;
	}
	r = uhttp_request_json(ctx, "GET", path, NULL, &status, &rep);
	if (r != 0) {
		goto out;
	}
	if (status != 200) {
		r = reply_error(status, rep);
		goto out;
	}
	/* The reply must be for what was asked, and its window must make sense. */
	s = cjson_get_str(rep, "aud");
	r = -EPROTO;
	if (s == NULL || strcmp(s, aud) != 0 || get_i64(rep, "gen", &g) != 0 ||
	    get_i64(rep, "epoch", &e) != 0 || g != (int64_t)gen || e < 0 ||
	    (uint64_t)e != epoch || get_i64(rep, "not_before", &k.not_before) != 0 ||
	    get_i64(rep, "epoch_end", &k.epoch_end) != 0 ||
	    get_i64(rep, "not_after", &k.not_after) != 0 ||
	    k.not_before >= k.epoch_end || k.epoch_end > k.not_after) {
		goto out;
	}
	s = json_string_value(json_object_get(rep, "key"));
	if (s == NULL || b64url_decode(s, strlen(s), k.key, sizeof(k.key), &n) != 0 ||
	    n != TOKEN_KEY_LEN) {
		goto out;
	}
	*ret = k;
	r = 0;
out:
	if (rep != NULL) {
		wipe_string_member(rep, "key");
		json_decref(rep);
	}
	explicit_bzero(&k, sizeof(k));
	return r;
}

static int
http_check_mac(void *ctx, const char *token, size_t len, struct verifier_window *ret)
{
	struct verifier_window w = { 0, 0, 0 };
	json_t *req = NULL, *rep = NULL;
	const char *mac;
	long status = 0;
	int r;

	req = json_pack("{s:s%}", "token", token, len);
	if (req == NULL) {
		return -ENOMEM;
	}
	r = uhttp_request_json(ctx, "POST", "/v1/verify", req, &status, &rep);
	if (r != 0) {
		goto out;
	}
	switch (status) {
	case 200: {
		mac = json_string_value(json_object_get(rep, "mac"));
		r = -EPROTO;
		if (mac != NULL && strcmp(mac, "ok") == 0 &&
		    get_i64(rep, "not_before", &w.not_before) == 0 &&
		    get_i64(rep, "epoch_end", &w.epoch_end) == 0 &&
		    get_i64(rep, "not_after", &w.not_after) == 0) {
			*ret = w;
			r = 0;
		}
		break;
	}
	case 422: {
		r = -EBADMSG;
		break;
	}
	default: {
		r = reply_error(status, rep);
		break;
	}
	}
out:
	/* The request holds a copy of the bearer token. */
	wipe_string_member(req, "token");
	json_decref(req);
	json_decref(rep);
	return r;
}

/* --- construction -------------------------------------------------------- */

int
verifier_new_with_source(const struct verifier_source *src, const char *aud,
    struct verifier **ret)
{
	struct verifier *v = NULL;
	int r;

	if (src == NULL || src->get_key == NULL || aud == NULL ||
	    strlen(aud) > TOKEN_ID_MAX || parse_ident(aud, TOKEN_ID_MAX) != 0) {
		return -EINVAL;
	}
	v = calloc(1, sizeof(*v));
	if (v == NULL) {
		return -ENOMEM;
	}
	v->keys = secmem_alloc(KEYS_BYTES);
	if (v->keys == NULL) {
		r = errno != 0 ? -errno : -ENOMEM;
		goto out;
	}
	memcpy(v->aud, aud, strlen(aud) + 1);
	v->src = *src;
	*ret = v;
	v = NULL;
	r = 0;
out:
	verifier_free(v);
	return r;
}

int
verifier_new(const char *socket_path, const char *aud, struct verifier **ret)
{
	struct verifier_source src = { http_get_key, http_check_mac, NULL };
	struct verifier *v = NULL;
	struct uhttp *h = NULL;
	int r;

	r = uhttp_new_unix(socket_path, &h);
	if (r != 0) {
		goto out;
	}
	src.ctx = h;
	r = verifier_new_with_source(&src, aud, &v);
	if (r != 0) {
		goto out;
	}
	v->http = h;
	h = NULL;
	*ret = v;
	r = 0;
out:
	uhttp_free(h);
	return r;
}

void
verifier_free(struct verifier *v)
{
	if (v == NULL) {
		return;
	}
	secmem_free(v->keys, KEYS_BYTES);   /* wipes */
	uhttp_free(v->http);
	explicit_bzero(v, sizeof(*v));
	free(v);
}

void
verifier_set_replay(struct verifier *v, struct replay *r)
{
	v->replay = r;
}

void
verifier_stats(const struct verifier *v, uint64_t *ret_fetches, uint64_t *ret_hits)
{
	if (ret_fetches != NULL) {
		*ret_fetches = v->fetches;
	}
	if (ret_hits != NULL) {
		*ret_hits = v->hits;
	}
}

/* --- key cache ----------------------------------------------------------- */

static void
evict(struct verifier *v, size_t i)
{
	explicit_bzero(v->keys + i * TOKEN_KEY_LEN, TOKEN_KEY_LEN);
	memset(&v->cache[i], 0, sizeof(v->cache[i]));
}

/* A free slot; expired keys go first, then the least recently used. */
static size_t
pick_slot(struct verifier *v, int64_t now)
{
	size_t i, lru = 0;

	for (i = 0; i < VERIFIER_CACHE_MAX; i++) {
		if (v->cache[i].used && now >= v->cache[i].not_after) {
			evict(v, i);
		}
	}
	for (i = 0; i < VERIFIER_CACHE_MAX; i++) {
		if (!v->cache[i].used) {
			return i;
		}
		if (v->cache[i].last_used < v->cache[lru].last_used) {
			lru = i;
		}
	}
	evict(v, lru);
	return lru;
}

/* The cache slot holding the key for kid, fetching it if needed. */
static int
key_get(struct verifier *v, const struct token_kid *kid, int64_t now, size_t *ret)
{
	struct verifier_key k;
	size_t i;
	int r;

	for (i = 0; i < VERIFIER_CACHE_MAX; i++) {
		struct cache_entry *c = &v->cache[i];

		if (!c->used || c->gen != kid->gen || c->epoch != kid->epoch) {
			continue;
		}
		if (now >= c->not_after) {
			/* Past its life: forget it and ask again, so that the
			 * source says whether it is gone (410). */
			evict(v, i);
			break;
		}
		c->last_used = ++v->tick;
		v->hits++;
		*ret = i;
		return 0;
	}
	v->fetches++;
	r = v->src.get_key(v->src.ctx, v->aud, kid->gen, kid->epoch, &k);
	if (r != 0) {
		goto out;
	}
	if (k.not_before >= k.epoch_end || k.epoch_end > k.not_after) {
		r = -EPROTO;
		goto out;
	}
	if (now >= k.not_after) {
		r = -EKEYEXPIRED;
		goto out;
	}
	i = pick_slot(v, now);
	memcpy(v->keys + i * TOKEN_KEY_LEN, k.key, TOKEN_KEY_LEN);
	v->cache[i] = (struct cache_entry){
		.used = true,
		.gen = kid->gen,
		.epoch = kid->epoch,
		.not_before = k.not_before,
		.epoch_end = k.epoch_end,
		.not_after = k.not_after,
		.last_used = ++v->tick,
	};
	*ret = i;
	r = 0;
out:
	explicit_bzero(&k, sizeof(k));
	return r;
}

/* --- verification -------------------------------------------------------- */

/* The window attestd gave with a strict token's verdict: sane, of the
 * token's own epoch (epoch_end - not_before is the epoch length, and
 * not_before its multiple), and not over, like a fetched key's. */
static int
strict_window_ok(const struct verifier_window *w, uint64_t epoch, int64_t now)
{
	int64_t start;

	if (w->not_before < 0 || w->not_before >= w->epoch_end || w->epoch_end > w->not_after ||
	    epoch > INT64_MAX ||
	    __builtin_mul_overflow((int64_t)epoch, w->epoch_end - w->not_before, &start) ||
	    start != w->not_before) {
		return -EPROTO;
	}
	if (now >= w->not_after) {
		return -EKEYEXPIRED;
	}
	return 0;
}

static int
refuse(const char **ret_reason, const char *why, int code)
{
	if (ret_reason != NULL) {
		*ret_reason = why;
	}
	return code;
}

static int
refuse_source(const char **ret_reason, int r)
{
	switch (r) {
	case -ENOKEY: {
		return refuse(ret_reason, "unknown_key", -ENOKEY);
	}
	case -EKEYEXPIRED: {
		return refuse(ret_reason, "key_expired", -EKEYEXPIRED);
	}
	case -EBADMSG: {
		return refuse(ret_reason, "bad_mac", -EBADMSG);
	}
	case -EPERM: {
		return refuse(ret_reason, "strict_mode", -EPERM);
	}
	default: {
		return refuse(ret_reason, "attestd_unavailable", r < 0 ? r : -EIO);
	}
	}
}

int
verifier_verify(struct verifier *v, const char *token, const struct token_expect *e,
    struct token_grant *ret, const char **ret_reason)
{
	const struct token_claims *c;
	const struct token_kid *kid;
	const struct cache_entry *ce;
	struct verifier_window w = { 0, 0, 0 };
	struct token_expect ex;
	struct token_grant g;
	struct token *t = NULL;
	const char *why = NULL;
	size_t len, slot = 0;
	int r;

	if (token == NULL || e == NULL) {
		return refuse(ret_reason, "malformed", -EINVAL);
	}
	len = strnlen(token, TOKEN_MAX_LEN + 1);
	r = len > TOKEN_MAX_LEN ? -EINVAL : token_parse(token, len, &t);
	if (r == -EPROTONOSUPPORT) {
		r = refuse(ret_reason, "unsupported_version", -EPROTONOSUPPORT);
		goto out;
	}
	if (r != 0) {
		r = refuse(ret_reason, "malformed", -EINVAL);
		goto out;
	}
	kid = token_kid(t);
	c = token_claims(t);
	ex = *e;
	if (ex.aud == NULL) {
		ex.aud = v->aud;
	}
	if (ex.now == 0) {
		ex.now = (int64_t)time(NULL);
	}
	/* Only this verifier's audience: its keys are for nothing else. */
	if (strcmp(ex.aud, v->aud) != 0 || strcmp(kid->aud, ex.aud) != 0) {
		r = refuse(ret_reason, "wrong_audience", -EPERM);
		goto out;
	}

	/* The MAC and the key's window come first: without them nothing in
	 * the token means anything yet. */
	switch (kid->mode) {
	case TOKEN_MODE_EPOCH: {
		r = key_get(v, kid, ex.now, &slot);
		if (r != 0) {
			break;
		}
		ce = &v->cache[slot];
		w = (struct verifier_window){ ce->not_before, ce->epoch_end, ce->not_after };
		r = token_verify_mac(t, v->keys + slot * TOKEN_KEY_LEN);
		break;
	}
	case TOKEN_MODE_STRICT: {
		/* attestd checks the very bytes parsed here (the library's own
		 * copy), not the caller's buffer, which could change meanwhile.
		 * No audience key exists for these: the window comes with the
		 * verdict, and nothing is cached. */
		size_t raw_len = 0;
		const char *raw = token_string(t, &raw_len);

		r = v->src.check_mac != NULL ? v->src.check_mac(v->src.ctx, raw, raw_len, &w) :
		    -ENOTSUP;
		if (r == 0) {
			r = strict_window_ok(&w, kid->epoch, ex.now);
		}
		break;
	}
	default: {
		r = -EBADMSG;
		break;
	}
	}
	if (r != 0) {
		r = refuse_source(ret_reason, r);
		goto out;
	}

	if (c->iat < w.not_before || c->iat >= w.epoch_end || c->exp > w.not_after) {
		r = refuse(ret_reason, "outside_key_window", -EPERM);
		goto out;
	}
	r = token_check(t, &ex, &g, &why);
	if (r != 0) {
		r = refuse(ret_reason, why != NULL ? why : "malformed", r < 0 ? r : -EPERM);
		goto out;
	}

	/* Last, once everything else holds: a refused token uses nothing up.
	 * The row lives until the claims' exp, which bounds every attenuated
	 * copy of this id; the grant's exp could be earlier, and pruning at it
	 * would hand the remaining copies their uses back. */
	if (v->replay != NULL) {
		r = replay_consume(v->replay, c->jti, g.uses, c->exp);
		if (r == -EALREADY) {
			r = refuse(ret_reason, "already_used", -EALREADY);
			goto out;
		}
		if (r != 0) {
			r = refuse(ret_reason, "replay_unavailable", r);
			goto out;
		}
	}
	if (ret != NULL) {
		*ret = g;
	}
	r = 0;
out:
	token_free(t);
	return r;
}
