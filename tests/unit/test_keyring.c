/* Unit tests for attestd/keyring.c with the TPM behind a mocked backend:
 * key derivation against an independent computation, epoch window math,
 * the serving rules for generations, slot wiping and eviction, health
 * states (policy violated, unreachable, recovery) and strict mode. The
 * real TPM is exercised by tests/integration/test_attestd.sh. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <tss2/tss2_tpm2_types.h>

#include "../../attestd/keyring.h"
#include "keystore.h"
#include "token.h"
#include "tpm.h"

#define E        3600
#define TTL      3600
#define EPOCH    491234ull
#define S        ((int64_t)EPOCH * E)     /* start of the current epoch */
#define NOW      (S + 100)

struct mock {
	bool open_fails;
	bool is_open;
	int hmac_rc;
	int pcr_rc;
	unsigned hmac_calls;
	unsigned opens;
	uint64_t cmds;
	uint8_t pcr[32];
};

static struct mock M;
static const uint8_t good_pcr[32] = { 1, 2, 3 };

static int
m_open(void *arg, const char *tcti)
{
	(void)arg;
	(void)tcti;
	M.opens++;
	if (M.open_fails)
		return -ECOMM;
	M.is_open = true;
	M.cmds = 0;
	return 0;
}

static void
m_close(void *arg)
{
	(void)arg;
	M.is_open = false;
}

/* The "root key" of generation g: 32 bytes of g. */
static void
root_key(uint32_t gen, uint8_t k[32])
{
	memset(k, (int)gen, 32);
}

static int
m_hmac(void *arg, const struct keystore *ks, const struct keystore_gen *g, const uint8_t *msg,
    size_t len, uint8_t ret[32])
{
	uint8_t k[32];

	(void)arg;
	(void)ks;
	assert_true(M.is_open);
	M.hmac_calls++;
	M.cmds++;
	if (M.hmac_rc != 0)
		return M.hmac_rc;
	root_key(g->gen, k);
	return token_hmac(k, sizeof(k), msg, len, ret);
}

static int
m_pcr(void *arg, const struct tpm_pcr_sel *sel, uint8_t ret[32])
{
	(void)arg;
	(void)sel;
	assert_true(M.is_open);
	M.cmds++;
	if (M.pcr_rc != 0)
		return M.pcr_rc;
	memcpy(ret, M.pcr, 32);
	return 0;
}

static uint64_t
m_commands(void *arg)
{
	(void)arg;
	return M.cmds;
}

static const struct keyring_backend mock_backend = {
	.open = m_open,
	.close = m_close,
	.root_hmac = m_hmac,
	.pcr_digest = m_pcr,
	.commands = m_commands,
	.arg = NULL,
};

/* gens: pairs (created, retired), generation numbers 1.. */
static struct keystore *
make_keystore(size_t n, const int64_t *created, const int64_t *retired, uint32_t first)
{
	struct keystore *ks = calloc(1, sizeof(*ks));
	size_t i;

	assert_non_null(ks);
	ks->pcrs.bank = TPM2_ALG_SHA256;
	ks->pcrs.mask = 0x95;
	assert_int_equal(tpm_policy_pcr(&ks->pcrs, good_pcr, ks->policy), 0);
	ks->n_gens = n;
	for (i = 0; i < n; i++) {
		ks->gens[i].gen = first + (uint32_t)i;
		ks->gens[i].created = created[i];
		ks->gens[i].retired = retired[i];
	}
	return ks;
}

static struct keyring *
make_keyring_prefetch(int64_t epoch_seconds, int64_t max_ttl, bool strict, int64_t prefetch)
{
	struct keyring_params p = {
		.epoch_seconds = epoch_seconds,
		.max_ttl_seconds = max_ttl,
		.strict = strict,
		.tcti = "mock",
		.prefetch_seconds = prefetch,
	};
	static const int64_t created[] = { S - 2 * 86400 }, retired[] = { 0 };
	struct keyring *kr = NULL;

	memset(&M, 0, sizeof(M));
	memcpy(M.pcr, good_pcr, 32);
	assert_int_equal(keyring_new(&p, &mock_backend, &kr), 0);
	assert_int_equal(keyring_set_keystore(kr, make_keystore(1, created, retired, 1)), 0);
	return kr;
}

static struct keyring *
make_keyring(int64_t epoch_seconds, int64_t max_ttl, bool strict)
{
	return make_keyring_prefetch(epoch_seconds, max_ttl, strict, 0);
}

/* The spec, computed independently of keyring.c. */
static void
expected_audience_key(uint32_t gen, uint64_t epoch, const char *aud, uint8_t ret[32])
{
	uint8_t root[32], ek[32], msg[128];
	size_t i, n;

	root_key(gen, root);
	memcpy(msg, "warrant/v1/epoch", 16);
	msg[16] = 0;
	for (i = 0; i < 8; i++)
		msg[17 + i] = (uint8_t)(epoch >> (56 - 8 * i));
	assert_int_equal(token_hmac(root, 32, msg, 25, ek), 0);
	memcpy(msg, "warrant/v1/aud", 14);
	msg[14] = 0;
	n = strlen(aud);
	memcpy(msg + 15, aud, n);
	assert_int_equal(token_hmac(ek, 32, msg, 15 + n, ret), 0);
}

static void
fill_claims(struct token_claims *c, const char *aud, int64_t now)
{
	memset(c, 0, sizeof(*c));
	assert_int_equal(token_new_jti(c->jti), 0);
	c->iat = now;
	c->exp = now + 300;
	(void)snprintf(c->aud, sizeof(c->aud), "%s", aud);
	(void)snprintf(c->vm, sizeof(c->vm), "vm-1");
	memset(c->launch, 'a', TOKEN_HEX256_LEN);
	(void)snprintf(c->op, sizeof(c->op), "fs.write");
	memset(c->args, 'b', TOKEN_HEX256_LEN);
	c->uses = 1;
}

static size_t
cached(struct keyring *kr, int64_t now)
{
	struct keyring_status st;

	keyring_status(kr, now, &st);
	return st.cached_epoch_keys;
}

static void
test_epoch_math(void **state)
{
	struct keyring *kr = make_keyring(E, TTL, false);
	struct keyring_key k;

	(void)state;
	assert_int_equal(keyring_epoch_of(kr, 0), 0);
	assert_int_equal(keyring_epoch_of(kr, E - 1), 0);
	assert_int_equal(keyring_epoch_of(kr, E), 1);
	assert_int_equal(keyring_epoch_of(kr, NOW), EPOCH);
	assert_int_equal(keyring_epoch_of(kr, -5), 0);
	keyring_check(kr, NOW);
	assert_int_equal(keyring_audience_key(kr, NOW, "proxy", 1, EPOCH, &k), 0);
	assert_int_equal(k.not_before, S);
	assert_int_equal(k.epoch_end, S + E);
	assert_int_equal(k.not_after, S + E + TTL);
	/* The last second of the window still serves; the next one is 410. */
	assert_int_equal(keyring_audience_key(kr, S + E + TTL, "proxy", 1, EPOCH, &k), 0);
	assert_int_equal(keyring_audience_key(kr, S + E + TTL + 1, "proxy", 1, EPOCH, &k),
	    -EKEYEXPIRED);
	keyring_free(kr);
}

static void
test_mint_epoch(void **state)
{
	struct keyring *kr = make_keyring(E, TTL, false);
	struct token_claims c;
	struct token *t = NULL;
	uint8_t want[32];
	struct keyring_key k;
	char *tok = NULL;
	int i;

	(void)state;
	fill_claims(&c, "proxy", NOW);
	assert_int_equal(keyring_mint(kr, NOW, &c, &tok), -EAGAIN);   /* not checked yet */
	keyring_check(kr, NOW);
	assert_true(keyring_minting(kr));
	/* The check derived the current epoch key: minting needs no TPM. */
	assert_int_equal(M.hmac_calls, 1);
	for (i = 0; i < 100; i++) {
		assert_int_equal(keyring_mint(kr, NOW, &c, &tok), 0);
		if (i < 99)
			keyring_free_token(tok);
	}
	assert_int_equal(M.hmac_calls, 1);
	assert_int_equal(token_parse(tok, strlen(tok), &t), 0);
	assert_int_equal(token_kid(t)->gen, 1);
	assert_int_equal(token_kid(t)->epoch, EPOCH);
	assert_int_equal(token_kid(t)->mode, TOKEN_MODE_EPOCH);
	assert_string_equal(token_kid(t)->aud, "proxy");
	expected_audience_key(1, EPOCH, "proxy", want);
	assert_int_equal(token_verify_mac(t, want), 0);
	assert_int_equal(keyring_verify(kr, NOW, t, NULL), 0);
	/* What GET /v1/keys serves is the same key. */
	assert_int_equal(keyring_audience_key(kr, NOW, "proxy", 1, EPOCH, &k), 0);
	assert_memory_equal(k.key, want, 32);
	expected_audience_key(1, EPOCH, "vmhost", want);
	assert_int_not_equal(token_verify_mac(t, want), 0);
	token_free(t);
	keyring_free_token(tok);
	{
		struct keyring_status st;

		keyring_status(kr, NOW, &st);
		assert_int_equal(st.tokens_minted, 100);
		assert_int_equal(st.generation, 1);
		assert_true(st.minting);
	}
	keyring_free(kr);
}

static void
test_serving_rules(void **state)
{
	struct keyring *kr = make_keyring(E, TTL, false);
	struct keyring_key k;

	(void)state;
	keyring_check(kr, NOW);
	assert_int_equal(keyring_audience_key(kr, NOW, "proxy", 1, EPOCH + 1, &k), -ENOENT);
	assert_int_equal(keyring_audience_key(kr, NOW, "proxy", 9, EPOCH, &k), -ENOENT);
	assert_int_equal(keyring_audience_key(kr, NOW, "proxy", 1, EPOCH - 1, &k), 0);
	assert_int_equal(keyring_audience_key(kr, NOW, "proxy", 1, EPOCH - 2, &k), -EKEYEXPIRED);
	/* Long before the generation was created. */
	assert_int_equal(keyring_audience_key(kr, NOW, "proxy", 1, 5, &k), -ENOENT);
	assert_int_equal(keyring_audience_key(kr, NOW, "proxy", 1, UINT64_MAX, &k), -ENOENT);
	assert_int_equal(keyring_audience_key(kr, NOW, "bad/aud", 1, EPOCH, &k), -EINVAL);
	keyring_free(kr);
}

static void
test_generations(void **state)
{
	struct keyring *kr = make_keyring(E, TTL, false);
	static const int64_t created[] = { S - 2 * 86400, S + 50 }, retired[] = { S + 50, 0 };
	struct keyring_key k;
	struct token_claims c;
	struct token *t = NULL;
	char *tok = NULL;

	(void)state;
	keyring_check(kr, NOW);
	assert_int_equal(keyring_set_keystore(kr, make_keystore(2, created, retired, 1)), 0);
	assert_false(keyring_minting(kr));   /* the new keystore's policy is unchecked */
	keyring_check(kr, S + 60);
	assert_int_equal(keyring_generation(kr), 2);
	fill_claims(&c, "proxy", S + 60);
	assert_int_equal(keyring_mint(kr, S + 60, &c, &tok), 0);
	assert_int_equal(token_parse(tok, strlen(tok), &t), 0);
	assert_int_equal(token_kid(t)->gen, 2);
	token_free(t);
	keyring_free_token(tok);
	/* Generation 1 retired during this epoch: it began before, so served. */
	assert_int_equal(keyring_audience_key(kr, S + 60, "proxy", 1, EPOCH, &k), 0);
	assert_int_equal(keyring_audience_key(kr, S + 60, "proxy", 2, EPOCH, &k), 0);
	/* Generation 2 did not exist during the previous epoch. */
	assert_int_equal(keyring_audience_key(kr, S + 60, "proxy", 2, EPOCH - 1, &k), -ENOENT);
	/* The next epoch began after generation 1 was retired. */
	assert_int_equal(keyring_audience_key(kr, S + E + 10, "proxy", 1, EPOCH + 1, &k), -ENOENT);
	assert_int_equal(keyring_audience_key(kr, S + E + 10, "proxy", 2, EPOCH + 1, &k), 0);
	assert_int_equal(keyring_audience_key(kr, S + E + 10, "proxy", 1, EPOCH, &k), 0);

	/* A generation that leaves the state directory is no longer served. */
	assert_int_equal(keyring_set_keystore(kr, make_keystore(1, created + 1, retired + 1, 2)), 0);
	keyring_check(kr, S + E + 10);
	assert_int_equal(keyring_audience_key(kr, S + E + 10, "proxy", 1, EPOCH, &k), -ENOENT);
	keyring_free(kr);
}

static void
test_slot_wiping(void **state)
{
	struct keyring *kr = make_keyring(E, TTL, false);
	struct keyring_key k;

	(void)state;
	keyring_check(kr, NOW);
	assert_int_equal(cached(kr, NOW), 1);
	assert_int_equal(keyring_audience_key(kr, NOW, "proxy", 1, EPOCH - 1, &k), 0);
	assert_int_equal(cached(kr, NOW), 2);
	/* EPOCH - 1 is usable until S + TTL; at S + TTL + 1 it is wiped. At
	 * S + TTL = S + E the check also derived EPOCH + 1 ahead. */
	keyring_check(kr, S + TTL);
	assert_int_equal(cached(kr, S + TTL), 3);
	keyring_check(kr, S + TTL + 1);
	/* EPOCH and EPOCH + 1 remain. */
	assert_int_equal(cached(kr, S + TTL + 1), 2);
	assert_int_equal(keyring_audience_key(kr, S + TTL + 1, "proxy", 1, EPOCH - 1, &k),
	    -EKEYEXPIRED);
	keyring_check(kr, S + 10 * E);
	assert_int_equal(cached(kr, S + 10 * E), 1);
	keyring_free(kr);
}

static void
test_slot_eviction(void **state)
{
	struct keyring *kr = make_keyring(60, 86400, false);
	int64_t now = S + 100;
	uint64_t e = keyring_epoch_of(kr, now), i;
	struct keyring_key k;
	unsigned calls;

	(void)state;
	keyring_check(kr, now);
	for (i = 1; i <= KEYRING_SLOTS + 6; i++)
		assert_int_equal(keyring_audience_key(kr, now, "proxy", 1, e - i, &k), 0);
	assert_int_equal(cached(kr, now), KEYRING_SLOTS);
	/* The oldest were evicted and come back from the TPM. */
	calls = M.hmac_calls;
	assert_int_equal(keyring_audience_key(kr, now, "proxy", 1, e - 1, &k), 0);
	assert_int_equal(M.hmac_calls, calls + 1);
	calls = M.hmac_calls;
	assert_int_equal(keyring_audience_key(kr, now, "proxy", 1, e - KEYRING_SLOTS - 6, &k), 0);
	assert_int_equal(M.hmac_calls, calls);
	keyring_free(kr);
}

static void
test_policy_violation(void **state)
{
	struct keyring *kr = make_keyring(E, TTL, false);
	struct keyring_status st;
	struct token_claims c;
	struct keyring_key k;
	char *tok = NULL;
	unsigned calls;

	(void)state;
	keyring_check(kr, NOW);
	assert_true(keyring_minting(kr));
	M.pcr[0] ^= 1;
	keyring_check(kr, NOW + 1);
	keyring_status(kr, NOW + 1, &st);
	assert_int_equal(st.tpm, KEYRING_TPM_OK);
	assert_int_equal(st.policy, KEYRING_POLICY_VIOLATED);
	assert_false(st.minting);
	fill_claims(&c, "proxy", NOW + 1);
	assert_int_equal(keyring_mint(kr, NOW + 1, &c, &tok), -EAGAIN);
	/* Keys already derived are still served; new ones are not tried. */
	assert_int_equal(keyring_audience_key(kr, NOW + 1, "proxy", 1, EPOCH, &k), 0);
	calls = M.hmac_calls;
	assert_int_equal(keyring_audience_key(kr, NOW + 1, "proxy", 1, EPOCH - 1, &k), -EAGAIN);
	assert_int_equal(M.hmac_calls, calls);
	memcpy(M.pcr, good_pcr, 32);
	keyring_check(kr, NOW + 2);
	assert_true(keyring_minting(kr));
	/* The TPM itself refusing the policy also stops minting. */
	M.hmac_rc = -EKEYREJECTED;
	assert_int_equal(keyring_audience_key(kr, NOW + 2, "proxy", 1, EPOCH - 1, &k),
	    -EKEYREJECTED);
	assert_false(keyring_minting(kr));
	keyring_status(kr, NOW + 2, &st);
	assert_int_equal(st.policy, KEYRING_POLICY_VIOLATED);
	keyring_free(kr);
}

static void
test_unreachable(void **state)
{
	struct keyring *kr = make_keyring(E, TTL, false);
	struct keyring_status st;
	struct token_claims c;
	struct keyring_key k;
	char *tok = NULL;

	(void)state;
	M.open_fails = true;
	keyring_check(kr, NOW);
	keyring_status(kr, NOW, &st);
	assert_int_equal(st.tpm, KEYRING_TPM_UNREACHABLE);
	assert_int_equal(st.policy, KEYRING_POLICY_UNKNOWN);
	assert_false(st.minting);
	assert_true(strlen(st.last_error) > 0);
	assert_int_equal(keyring_audience_key(kr, NOW, "proxy", 1, EPOCH, &k), -EAGAIN);
	/* Recovers by itself on the next check. */
	M.open_fails = false;
	keyring_check(kr, NOW + 1);
	assert_true(keyring_minting(kr));
	/* A TCTI failure in the middle of a derivation closes the context. */
	M.hmac_rc = -ECOMM;
	assert_int_equal(keyring_audience_key(kr, NOW + 1, "proxy", 1, EPOCH - 1, &k), -ECOMM);
	assert_false(M.is_open);
	keyring_status(kr, NOW + 1, &st);
	assert_int_equal(st.tpm, KEYRING_TPM_UNREACHABLE);
	fill_claims(&c, "proxy", NOW + 1);
	assert_int_equal(keyring_mint(kr, NOW + 1, &c, &tok), -EAGAIN);
	/* ...but the cached key keeps being served for verification. */
	assert_int_equal(keyring_audience_key(kr, NOW + 1, "proxy", 1, EPOCH, &k), 0);
	M.hmac_rc = 0;
	M.pcr_rc = -ECOMM;
	keyring_check(kr, NOW + 2);   /* reopens, then loses it again */
	assert_false(M.is_open);
	assert_false(keyring_minting(kr));
	M.pcr_rc = 0;
	keyring_check(kr, NOW + 3);
	assert_true(keyring_minting(kr));
	assert_int_equal(keyring_mint(kr, NOW + 3, &c, &tok), 0);
	keyring_free_token(tok);
	/* Commands of closed contexts still count. */
	keyring_status(kr, NOW + 3, &st);
	assert_true(st.tpm_commands >= 5);
	keyring_free(kr);
}

static void
test_strict(void **state)
{
	struct keyring *kr = make_keyring(E, TTL, true);
	struct token_claims c;
	struct keyring_window w;
	struct token *t = NULL, *bad = NULL;
	uint8_t root[32], msg[18 + 32], t0[32];
	const char *input;
	char *tok = NULL, *forged = NULL;
	size_t len = 0;
	unsigned calls;

	(void)state;
	keyring_check(kr, NOW);
	assert_int_equal(M.hmac_calls, 0);   /* strict mode derives no epoch key */
	fill_claims(&c, "proxy", NOW);
	calls = M.hmac_calls;
	assert_int_equal(keyring_mint(kr, NOW, &c, &tok), 0);
	assert_int_equal(M.hmac_calls, calls + 1);   /* every token's t0 is a TPM HMAC */
	assert_int_equal(token_parse(tok, strlen(tok), &t), 0);
	assert_int_equal(token_kid(t)->mode, TOKEN_MODE_STRICT);
	/* t0 = HMAC_root("warrant/v1/strict" 0x00 token_strict_message(input)) */
	input = token_signed_part(t, &len);
	memcpy(msg, "warrant/v1/strict", 17);
	msg[17] = 0;
	token_strict_message(input, len, msg + 18);
	root_key(1, root);
	assert_int_equal(token_hmac(root, 32, msg, sizeof(msg), t0), 0);
	assert_int_equal(token_verify_chain(t, t0), 0);
	assert_int_equal(keyring_verify(kr, NOW, t, NULL), 0);
	/* The window comes with the verdict: what GET /v1/keys would say. */
	memset(&w, 0x5a, sizeof(w));
	assert_int_equal(keyring_verify(kr, NOW, t, &w), 0);
	assert_int_equal(w.gen, 1);
	assert_int_equal(w.epoch, EPOCH);
	assert_int_equal(w.not_before, S);
	assert_int_equal(w.epoch_end, S + E);
	assert_int_equal(w.not_after, S + E + TTL);
	/* The same input with another t0 is refused. */
	t0[0] ^= 1;
	assert_int_equal(token_finish(input, len, t0, &forged), 0);
	assert_int_equal(token_parse(forged, strlen(forged), &bad), 0);
	memset(&w, 0x5a, sizeof(w));
	assert_int_equal(keyring_verify(kr, NOW, bad, &w), -EBADMSG);
	assert_int_equal(w.gen, 0x5a5a5a5a);   /* not written on failure */
	/* Without the TPM, strict tokens can neither be made nor checked. */
	M.open_fails = true;
	M.hmac_rc = -ECOMM;
	assert_int_equal(keyring_verify(kr, NOW, t, NULL), -ECOMM);
	assert_int_equal(keyring_verify(kr, NOW, t, NULL), -EAGAIN);
	token_free(t);
	token_free(bad);
	free(forged);
	keyring_free_token(tok);
	keyring_free(kr);
}

/* Strict mode derives no epoch key at all, so it has no audience key to
 * serve and can have made no epoch-mode token: a verifier holding an
 * audience key from elsewhere must not be able to pass one off. */
static void
test_strict_no_epoch_keys(void **state)
{
	struct keyring *kr = make_keyring_prefetch(E, TTL, true, 6);
	struct token_kid kid = { .gen = 1, .epoch = EPOCH, .mode = TOKEN_MODE_EPOCH };
	struct keyring_status st;
	struct keyring_window w;
	struct keyring_key k;
	struct token_claims c;
	struct token *t = NULL;
	uint8_t key[32];
	char *tok = NULL;

	(void)state;
	keyring_check(kr, NOW);
	assert_true(keyring_minting(kr));
	/* Not even ahead of the next epoch. */
	keyring_check(kr, S + E - 1);
	keyring_check(kr, S + E + 1);
	assert_int_equal(M.hmac_calls, 0);
	keyring_status(kr, S + E + 1, &st);
	assert_true(st.strict);
	assert_int_equal(st.cached_epoch_keys, 0);
	/* No audience key, for any (gen, epoch), without a TPM command. */
	memset(&k, 0x5a, sizeof(k));
	assert_int_equal(keyring_audience_key(kr, NOW, "proxy", 1, EPOCH, &k), -EPERM);
	assert_int_equal(keyring_audience_key(kr, NOW, "proxy", 1, EPOCH - 1, &k), -EPERM);
	assert_int_equal(keyring_audience_key(kr, NOW, "proxy", 9, EPOCH + 5, &k), -EPERM);
	assert_int_equal(k.gen, 0x5a5a5a5a);
	assert_int_equal(M.hmac_calls, 0);
	/* A correctly made epoch-mode token is refused before any check. */
	memcpy(kid.aud, "proxy", 6);
	expected_audience_key(1, EPOCH, "proxy", key);
	fill_claims(&c, "proxy", NOW);
	assert_int_equal(token_encode(&kid, &c, key, &tok), 0);
	assert_int_equal(token_parse(tok, strlen(tok), &t), 0);
	assert_int_equal(keyring_verify(kr, NOW, t, &w), -EPERM);
	token_free(t);
	free(tok);
	/* ...even one of an epoch it would not serve. */
	kid.epoch = EPOCH + 3;
	assert_int_equal(token_encode(&kid, &c, key, &tok), 0);
	assert_int_equal(token_parse(tok, strlen(tok), &t), 0);
	assert_int_equal(keyring_verify(kr, NOW, t, &w), -EPERM);
	assert_int_equal(M.hmac_calls, 0);
	assert_int_equal(cached(kr, NOW), 0);
	token_free(t);
	free(tok);
	/* Minting still works: strict tokens only. */
	assert_int_equal(keyring_mint(kr, NOW, &c, &tok), 0);
	assert_int_equal(token_parse(tok, strlen(tok), &t), 0);
	assert_int_equal(token_kid(t)->mode, TOKEN_MODE_STRICT);
	assert_int_equal(keyring_verify(kr, NOW, t, &w), 0);
	assert_int_equal(cached(kr, NOW), 0);
	token_free(t);
	keyring_free_token(tok);
	keyring_free(kr);
}

static void
test_verify_window(void **state)
{
	struct keyring *kr = make_keyring(E, TTL, false);
	struct token_kid kid = { .gen = 1, .epoch = EPOCH, .mode = TOKEN_MODE_EPOCH };
	struct token_claims c;
	struct token *t = NULL;
	uint8_t key[32];
	char *tok = NULL;

	(void)state;
	keyring_check(kr, NOW);
	memcpy(kid.aud, "proxy", 6);
	expected_audience_key(1, EPOCH, "proxy", key);
	/* A correctly MACed token whose iat lies before its epoch. */
	fill_claims(&c, "proxy", S - 10);
	assert_int_equal(token_encode(&kid, &c, key, &tok), 0);
	assert_int_equal(token_parse(tok, strlen(tok), &t), 0);
	assert_int_equal(keyring_verify(kr, NOW, t, NULL), -ERANGE);
	token_free(t);
	free(tok);
	/* In the window but under another key. */
	fill_claims(&c, "proxy", S + 10);
	key[0] ^= 1;
	assert_int_equal(token_encode(&kid, &c, key, &tok), 0);
	assert_int_equal(token_parse(tok, strlen(tok), &t), 0);
	assert_int_equal(keyring_verify(kr, NOW, t, NULL), -EBADMSG);
	token_free(t);
	free(tok);
	/* Of an unknown generation. */
	kid.gen = 7;
	assert_int_equal(token_encode(&kid, &c, key, &tok), 0);
	assert_int_equal(token_parse(tok, strlen(tok), &t), 0);
	assert_int_equal(keyring_verify(kr, NOW, t, NULL), -ENOENT);
	token_free(t);
	free(tok);
	keyring_free(kr);
}

/* The next epoch's key is derived by the check shortly before the
 * boundary, is neither served nor used before its epoch, and the first
 * mint after the boundary sends no TPM command. */
static void
test_prefetch(void **state)
{
	struct keyring *kr = make_keyring_prefetch(E, TTL, false, 6);
	static const int64_t created[] = { S - 2 * 86400, S + E - 3 },
	    retired[] = { S + E - 3, 0 };
	struct keyring_key k;
	struct token_claims c;
	struct token *t = NULL;
	uint8_t want[32];
	char *tok = NULL;

	(void)state;
	keyring_check(kr, S + E - 7);
	assert_int_equal(M.hmac_calls, 1);
	assert_int_equal(cached(kr, S + E - 7), 1);
	keyring_check(kr, S + E - 6);
	assert_int_equal(M.hmac_calls, 2);
	assert_int_equal(cached(kr, S + E - 6), 2);
	keyring_check(kr, S + E - 1);
	assert_int_equal(M.hmac_calls, 2);
	/* Derived, but its epoch has not begun: not served. */
	assert_int_equal(keyring_audience_key(kr, S + E - 1, "proxy", 1, EPOCH + 1, &k), -ENOENT);
	/* Past the boundary the TPM fails, and minting needs none of it. */
	M.hmac_rc = -EIO;
	fill_claims(&c, "proxy", S + E);
	assert_int_equal(keyring_mint(kr, S + E, &c, &tok), 0);
	assert_int_equal(M.hmac_calls, 2);
	assert_int_equal(token_parse(tok, strlen(tok), &t), 0);
	assert_int_equal(token_kid(t)->epoch, EPOCH + 1);
	expected_audience_key(1, EPOCH + 1, "proxy", want);
	assert_int_equal(token_verify_mac(t, want), 0);
	token_free(t);
	keyring_free_token(tok);
	M.hmac_rc = 0;

	/* A rotation before the boundary: the old generation's key for the
	 * next epoch can never be served and is wiped at the next check. */
	keyring_free(kr);
	kr = make_keyring_prefetch(E, TTL, false, 6);
	keyring_check(kr, S + E - 5);
	assert_int_equal(cached(kr, S + E - 5), 2);
	assert_int_equal(keyring_set_keystore(kr, make_keystore(2, created, retired, 1)), 0);
	keyring_check(kr, S + E - 2);
	/* (1, EPOCH) stays for verification; (2, EPOCH) and (2, EPOCH + 1). */
	assert_int_equal(cached(kr, S + E - 2), 3);
	assert_int_equal(keyring_audience_key(kr, S + E - 2, "proxy", 1, EPOCH, &k), 0);
	keyring_free(kr);

	/* Without prefetch_seconds nothing is derived ahead of its epoch. */
	kr = make_keyring(E, TTL, false);
	keyring_check(kr, S + E - 1);
	assert_int_equal(M.hmac_calls, 1);
	keyring_free(kr);
}

/* When the loop must run the check besides the health interval. */
static void
test_deadline(void **state)
{
	struct keyring *kr = make_keyring(E, TTL, false);
	struct keyring_key k;

	(void)state;
	assert_int_equal(keyring_next_deadline(kr, NOW), INT64_MAX);
	keyring_check(kr, NOW);
	/* The second after not_after, when wipe_expired takes the slot. */
	assert_int_equal(keyring_next_deadline(kr, NOW), S + E + TTL + 1);
	assert_int_equal(keyring_audience_key(kr, NOW, "proxy", 1, EPOCH - 1, &k), 0);
	assert_int_equal(keyring_next_deadline(kr, NOW), S + TTL + 1);
	keyring_check(kr, S + TTL + 1);
	/* EPOCH - 1 is gone; EPOCH and (S + TTL + 1 lies in it) EPOCH + 1. */
	assert_int_equal(cached(kr, S + TTL + 1), 2);
	assert_int_equal(keyring_audience_key(kr, S + TTL + 1, "proxy", 1, EPOCH - 1, &k),
	    -EKEYEXPIRED);
	assert_int_equal(keyring_next_deadline(kr, S + TTL + 1), S + E + TTL + 1);
	keyring_free(kr);

	kr = make_keyring_prefetch(E, TTL, false, 6);
	keyring_check(kr, NOW);
	assert_int_equal(keyring_next_deadline(kr, NOW), S + E - 6);
	/* Inside the window, failing checks retry on the health interval:
	 * a deadline in the past would spin the loop. */
	M.open_fails = true;
	M.hmac_rc = -ECOMM;
	keyring_check(kr, S + E - 6);
	assert_false(keyring_minting(kr));
	assert_true(keyring_next_deadline(kr, S + E - 6) > S + E - 6);
	assert_int_equal(keyring_next_deadline(kr, S + E - 6), S + E + TTL + 1);
	keyring_free(kr);

	/* At most half an epoch ahead. */
	kr = make_keyring_prefetch(E, TTL, false, 10 * E);
	keyring_check(kr, S + 1);
	assert_int_equal(keyring_next_deadline(kr, S + 1), S + E / 2);
	keyring_free(kr);

	/* Strict mode derives no epoch key: nothing is due. */
	kr = make_keyring_prefetch(E, TTL, true, 6);
	keyring_check(kr, NOW);
	assert_int_equal(keyring_next_deadline(kr, NOW), INT64_MAX);
	keyring_free(kr);
}

/* The check says "minting" only if it could derive the current epoch key:
 * otherwise every mint would fail while the status claimed all is well. */
static void
test_check_needs_the_key(void **state)
{
	struct keyring *kr = make_keyring(E, TTL, false);
	struct keyring_status st;

	(void)state;
	M.hmac_rc = -EIO;
	keyring_check(kr, NOW);
	keyring_status(kr, NOW, &st);
	assert_false(st.minting);
	assert_int_equal(st.tpm, KEYRING_TPM_OK);
	assert_int_equal(st.policy, KEYRING_POLICY_UNKNOWN);
	assert_non_null(strstr(st.last_error, "current epoch key"));
	/* The TPM refusing its policy although the PCRs match: violated, and
	 * it stays so check after check (no ok/violated flapping). */
	M.hmac_rc = -EKEYREJECTED;
	keyring_check(kr, NOW + 1);
	keyring_status(kr, NOW + 1, &st);
	assert_int_equal(st.policy, KEYRING_POLICY_VIOLATED);
	assert_false(st.minting);
	keyring_check(kr, NOW + 2);
	keyring_status(kr, NOW + 2, &st);
	assert_int_equal(st.policy, KEYRING_POLICY_VIOLATED);
	/* Recovers by itself. */
	M.hmac_rc = 0;
	keyring_check(kr, NOW + 3);
	assert_true(keyring_minting(kr));
	keyring_free(kr);
}

/* A key attestd could not get is not the token's fault. */
static void
test_verify_key_error(void **state)
{
	struct keyring *kr = make_keyring(E, TTL, false);
	struct token_kid kid = { .gen = 1, .epoch = EPOCH - 1, .mode = TOKEN_MODE_EPOCH };
	struct token_claims c;
	struct token *t = NULL;
	uint8_t key[32];
	char *tok = NULL;

	(void)state;
	keyring_check(kr, NOW);
	memcpy(kid.aud, "proxy", 6);
	expected_audience_key(1, EPOCH - 1, "proxy", key);
	fill_claims(&c, "proxy", S - 10);
	assert_int_equal(token_encode(&kid, &c, key, &tok), 0);
	assert_int_equal(token_parse(tok, strlen(tok), &t), 0);
	M.hmac_rc = -EIO;
	assert_int_equal(keyring_verify(kr, NOW, t, NULL), -EIO);
	M.hmac_rc = 0;
	assert_int_equal(keyring_verify(kr, NOW, t, NULL), 0);
	token_free(t);
	free(tok);
	keyring_free(kr);
}

/* A state directory provisioned again may give generation 1 another root
 * key: its cached epoch keys must go. */
static void
test_reprovisioned(void **state)
{
	struct keyring *kr = make_keyring(E, TTL, false);
	static const int64_t created[] = { S - 2 * 86400 }, retired[] = { 0 };
	struct keystore *ks;

	(void)state;
	keyring_check(kr, NOW);
	assert_int_equal(cached(kr, NOW), 1);
	/* The same key again: kept. */
	assert_int_equal(keyring_set_keystore(kr, make_keystore(1, created, retired, 1)), 0);
	assert_int_equal(cached(kr, NOW), 1);
	ks = make_keystore(1, created, retired, 1);
	ks->gens[0].name_len = 2;
	ks->gens[0].name[0] = 0x00;
	ks->gens[0].name[1] = 0x0b;
	assert_int_equal(keyring_set_keystore(kr, ks), 0);
	assert_int_equal(cached(kr, NOW), 0);
	keyring_check(kr, NOW);
	assert_int_equal(M.hmac_calls, 2);
	keyring_free(kr);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_epoch_math),
		cmocka_unit_test(test_mint_epoch),
		cmocka_unit_test(test_serving_rules),
		cmocka_unit_test(test_generations),
		cmocka_unit_test(test_slot_wiping),
		cmocka_unit_test(test_slot_eviction),
		cmocka_unit_test(test_policy_violation),
		cmocka_unit_test(test_unreachable),
		cmocka_unit_test(test_strict),
		cmocka_unit_test(test_strict_no_epoch_keys),
		cmocka_unit_test(test_verify_window),
		cmocka_unit_test(test_prefetch),
		cmocka_unit_test(test_deadline),
		cmocka_unit_test(test_check_needs_the_key),
		cmocka_unit_test(test_verify_key_error),
		cmocka_unit_test(test_reprovisioned),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
