/* bench_verify: the full in-process verifier_verify (parse, cached key,
 * MAC chain, key window, claims and caveats) against what a user would
 * otherwise write: one-shot OpenSSL HMAC() over the same token's signed
 * bytes, compared with its tag. Same process, same run, alternating rounds,
 * best round of each. Prints; never fails on timing.
 *
 *   bench_verify [SECONDS_PER_ROUND]   (default 0.5, 3 rounds each) */
#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "b64url.h"
#include "cjson.h"
#include "token.h"
#include "verifier.h"

#define NOW        1768442500
#define ROUNDS     3
#define TARGET     3.0

static uint8_t the_key[TOKEN_KEY_LEN];
static volatile int sink;

static int
mock_key(void *ctx, const char *aud, uint32_t gen, uint64_t epoch, struct verifier_key *ret)
{
	(void)ctx;
	(void)aud;
	(void)gen;
	(void)epoch;
	memcpy(ret->key, the_key, sizeof(the_key));
	ret->not_before = NOW - 3600;
	ret->epoch_end = NOW + 3600;
	ret->not_after = NOW + 7200;
	return 0;
}

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

struct ctx {
	struct verifier *v;
	struct token_expect e;
	const char *token;
	const char *signed_part;
	size_t signed_len;
	uint8_t tag[TOKEN_TAG_LEN];
};

static int
one_verify(struct ctx *c)
{
	struct token_grant g;
	const char *why = NULL;

	return verifier_verify(c->v, c->token, &c->e, &g, &why);
}

static int
one_hmac(struct ctx *c)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;

	if (HMAC(EVP_sha256(), the_key, sizeof(the_key), (const unsigned char *)c->signed_part,
	    c->signed_len, md, &mdlen) == NULL || mdlen != 32) {
		return -EIO;
	}
	return CRYPTO_memcmp(md, c->tag, 32) == 0 ? 0 : -EBADMSG;
}

/* ns per operation over about `seconds`. */
static double
measure(int (*fn)(struct ctx *), struct ctx *c, double seconds)
{
	double t0 = now_s(), t;
	unsigned long n = 0, batch = 256, i;

	do {
		for (i = 0; i < batch; i++) {
			if (fn(c) != 0) {
				fprintf(stderr, "bench_verify: an operation failed\n");
				exit(1);
			}
		}
		n += batch;
		t = now_s() - t0;
	} while (t < seconds);
	sink += (int)n;
	return t * 1e9 / (double)n;
}

static char *
make_token(size_t n_caveats)
{
	struct token_kid k;
	struct token_claims cl;
	struct token_caveat cav;
	json_t *args = NULL;
	uint8_t d[32];
	char *s = NULL, *t2 = NULL;
	size_t i;

	memset(&k, 0, sizeof(k));
	memset(&cl, 0, sizeof(cl));
	k.gen = 1;
	k.epoch = NOW / 3600;
	k.mode = TOKEN_MODE_EPOCH;
	strcpy(k.aud, "proxy");
	if (token_new_jti(cl.jti) != 0) {
		return NULL;
	}
	cl.iat = NOW - 10;
	cl.exp = NOW + 300;
	strcpy(cl.aud, "proxy");
	strcpy(cl.vm, "vm-7f3a");
	memset(cl.launch, 'a', 64);
	strcpy(cl.op, "fs.write");
	args = json_pack("{s:s, s:s}", "path", "/notes.txt", "data", "hi");
	if (args == NULL || cjson_sha256(args, d) != 0) {
		return NULL;
	}
	json_decref(args);
	for (i = 0; i < 32; i++) {
		snprintf(cl.args + 2 * i, 3, "%02x", d[i]);
	}
	cl.uses = 1;
	strcpy(cl.request, "req-12");
	if (token_encode(&k, &cl, the_key, &s) != 0) {
		return NULL;
	}
	for (i = 0; i < n_caveats; i++) {
		memset(&cav, 0, sizeof(cav));
		if (i % 2 == 0) {
			cav.type = TOKEN_CAVEAT_EXP;
			cav.exp = NOW + 200 - (int64_t)i;
		} else {
			cav.type = TOKEN_CAVEAT_OPS;
			cav.n_ops = 1;
			strcpy(cav.ops[0], "fs.write");
		}
		if (token_attenuate(s, strlen(s), &cav, &t2) != 0) {
			return NULL;
		}
		free(s);
		s = t2;
	}
	return s;
}

static int
run_case(size_t n_caveats, double seconds, double *ret_ratio)
{
	struct verifier_source src = { mock_key, NULL, NULL };
	struct ctx c;
	struct token *t = NULL;
	double best_v = 1e18, best_h = 1e18, v, h;
	const char *tagp;
	size_t taglen = 0;
	char *tok;
	int round;

	memset(&c, 0, sizeof(c));
	tok = make_token(n_caveats);
	if (tok == NULL || verifier_new_with_source(&src, "proxy", &c.v) != 0 ||
	    token_parse(tok, strlen(tok), &t) != 0) {
		fprintf(stderr, "bench_verify: setup failed\n");
		return 1;
	}
	c.token = tok;
	c.e.aud = "proxy";
	c.e.vm = "vm-7f3a";
	c.e.op = "fs.write";
	c.e.args_sha256 = token_claims(t)->args;
	c.e.now = NOW;
	c.e.skew = 30;
	/* The user's version: HMAC over what the tag covers when there are no
	 * caveats (one HMAC either way: the baseline does not chain). */
	c.signed_part = token_signed_part(t, &c.signed_len);
	tagp = strrchr(tok, '.') + 1;
	if (b64url_decode(tagp, strlen(tagp), c.tag, sizeof(c.tag), &taglen) != 0) {
		return 1;
	}
	if (n_caveats > 0) {
		/* Compare against t0 so the baseline's check succeeds. */
		unsigned int l = 0;

		HMAC(EVP_sha256(), the_key, sizeof(the_key), (const unsigned char *)c.signed_part,
		    c.signed_len, c.tag, &l);
	}
	/* warm up: key fetch into the cache, OpenSSL fetches */
	(void)measure(one_verify, &c, 0.05);
	(void)measure(one_hmac, &c, 0.05);
	for (round = 0; round < ROUNDS; round++) {
		v = measure(one_verify, &c, seconds);
		h = measure(one_hmac, &c, seconds);
		best_v = v < best_v ? v : best_v;
		best_h = h < best_h ? h : best_h;
	}
	printf("token: %zu bytes, %zu caveats\n", strlen(tok), n_caveats);
	printf("  verifier_verify (cached key, all checks):  %8.0f ns/op\n", best_v);
	printf("  HMAC() one-shot over the signed bytes:     %8.0f ns/op\n", best_h);
	printf("  ratio: %.2fx (target <= %.0fx)\n", best_v / best_h, TARGET);
	printf("RESULT verify caveats=%zu verify_ns=%.0f hmac_ns=%.0f ratio=%.2f\n",
	    n_caveats, best_v, best_h, best_v / best_h);
	*ret_ratio = best_v / best_h;
	token_free(t);
	verifier_free(c.v);
	free(tok);
	return 0;
}

int
main(int argc, char **argv)
{
	double seconds = 0.5, ratio = 0;
	char *end = NULL;

	if (argc > 1) {
		seconds = strtod(argv[1], &end);
		if (end == argv[1] || *end != '\0' || seconds <= 0 || seconds > 60) {
			fprintf(stderr, "usage: bench_verify [SECONDS_PER_ROUND]\n");
			return 2;
		}
	}
	memset(the_key, 0x42, sizeof(the_key));
	if (run_case(0, seconds, &ratio) != 0 || run_case(2, seconds, &ratio) != 0) {
		return 1;
	}
	return 0;
}
