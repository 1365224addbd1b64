/* Unit tests for lib/verifier.c with a mocked key source (the attestd
 * boundary): MAC, audience, key window, cache, strict mode, and the replay
 * store wired in. lib/replay.c has its own tests in test_replay.c. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cjson.h"
#include "replay.h"
#include "token.h"
#include "verifier.h"

#define EPOCH       491234
#define NOT_BEFORE  1768442400
#define EPOCH_END   (NOT_BEFORE + 3600)
#define NOT_AFTER   (EPOCH_END + 3600)
#define NOW         (NOT_BEFORE + 100)
#define ARGS_JSON   "{\"data\":\"hi\",\"path\":\"/notes.txt\"}"
#define MAX_KEYS    64

struct mock_key {
	uint32_t gen;
	uint64_t epoch;
	struct verifier_key k;
};

struct mock {
	struct mock_key keys[MAX_KEYS];
	size_t n_keys;
	int key_rc;          /* forced result of get_key when not 0 */
	int mac_rc;          /* result of check_mac */
	struct verifier_window window;   /* what check_mac answers with */
	unsigned key_calls;
	unsigned mac_calls;
	char last_aud[TOKEN_ID_MAX + 1];
};

static int
mock_get_key(void *ctx, const char *aud, uint32_t gen, uint64_t epoch, struct verifier_key *ret)
{
	struct mock *m = ctx;
	size_t i;

	m->key_calls++;
	snprintf(m->last_aud, sizeof(m->last_aud), "%s", aud);
	if (m->key_rc != 0) {
		return m->key_rc;
	}
	for (i = 0; i < m->n_keys; i++) {
		if (m->keys[i].gen == gen && m->keys[i].epoch == epoch) {
			*ret = m->keys[i].k;
			return 0;
		}
	}
	return -ENOKEY;
}

static int
mock_check_mac(void *ctx, const char *token, size_t len, struct verifier_window *ret)
{
	struct mock *m = ctx;

	assert_int_equal(strlen(token), len);
	m->mac_calls++;
	if (m->mac_rc == 0) {
		*ret = m->window;
	}
	return m->mac_rc;
}

static struct verifier_key *
mock_add(struct mock *m, uint32_t gen, uint64_t epoch, uint8_t fill)
{
	struct mock_key *k;

	assert_true(m->n_keys < MAX_KEYS);
	k = &m->keys[m->n_keys++];
	k->gen = gen;
	k->epoch = epoch;
	memset(k->k.key, fill, TOKEN_KEY_LEN);
	k->k.not_before = NOT_BEFORE;
	k->k.epoch_end = EPOCH_END;
	k->k.not_after = NOT_AFTER;
	return &k->k;
}

struct fixture {
	struct mock m;
	struct verifier *v;
	json_t *args;
	char dbpath[64];
	struct replay *rp;
};

static int
setup(void **state)
{
	struct verifier_source src = { mock_get_key, mock_check_mac, NULL };
	struct fixture *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	src.ctx = &f->m;
	mock_add(&f->m, 1, EPOCH, 0x11);
	f->m.window = (struct verifier_window){ NOT_BEFORE, EPOCH_END, NOT_AFTER };
	assert_int_equal(verifier_new_with_source(&src, "proxy", &f->v), 0);
	assert_int_equal(cjson_parse(ARGS_JSON, strlen(ARGS_JSON), 1024, &f->args), 0);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;

	verifier_free(f->v);
	replay_close(f->rp);
	if (f->dbpath[0] != '\0') {
		char p[96];

		unlink(f->dbpath);
		snprintf(p, sizeof(p), "%s-wal", f->dbpath);
		unlink(p);
		snprintf(p, sizeof(p), "%s-shm", f->dbpath);
		unlink(p);
	}
	json_decref(f->args);
	free(f);
	return 0;
}

static void
open_replay(struct fixture *f)
{
	int fd;

	snprintf(f->dbpath, sizeof(f->dbpath), "/tmp/test_verifier.XXXXXX");
	fd = mkstemp(f->dbpath);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(replay_open(f->dbpath, &f->rp), 0);
	verifier_set_replay(f->v, f->rp);
}

static void
fill(struct token_kid *k, struct token_claims *c)
{
	uint8_t d[32];
	json_t *a = NULL;
	size_t i;

	memset(k, 0, sizeof(*k));
	memset(c, 0, sizeof(*c));
	k->gen = 1;
	k->epoch = EPOCH;
	k->mode = TOKEN_MODE_EPOCH;
	strcpy(k->aud, "proxy");
	assert_int_equal(token_new_jti(c->jti), 0);
	c->iat = NOW - 10;
	c->exp = NOW + 300;
	strcpy(c->aud, "proxy");
	strcpy(c->vm, "vm-1");
	memset(c->launch, 'a', 64);
	strcpy(c->op, "fs.write");
	assert_int_equal(cjson_parse(ARGS_JSON, strlen(ARGS_JSON), 1024, &a), 0);
	assert_int_equal(cjson_sha256(a, d), 0);
	json_decref(a);
	for (i = 0; i < 32; i++) {
		snprintf(c->args + 2 * i, 3, "%02x", d[i]);
	}
	c->uses = 1;
}

static char *
encode(const struct token_kid *k, const struct token_claims *c, uint8_t keyfill)
{
	uint8_t key[TOKEN_KEY_LEN];
	char *s = NULL;

	memset(key, keyfill, sizeof(key));
	assert_int_equal(token_encode(k, c, key, &s), 0);
	return s;
}

static char *
mint_default(void)
{
	struct token_kid k;
	struct token_claims c;

	fill(&k, &c);
	return encode(&k, &c, 0x11);
}

static char *
attenuate(char *s, const char *caveat_json)
{
	struct token_caveat cav;
	json_t *j = NULL;
	char *out = NULL;

	assert_int_equal(cjson_parse(caveat_json, strlen(caveat_json), 1024, &j), 0);
	assert_int_equal(token_caveat_from_json(j, &cav), 0);
	json_decref(j);
	assert_int_equal(token_attenuate(s, strlen(s), &cav, &out), 0);
	free(s);
	return out;
}

static struct token_expect
expect(const struct fixture *f)
{
	struct token_expect e;

	memset(&e, 0, sizeof(e));
	e.aud = "proxy";
	e.vm = "vm-1";
	e.op = "fs.write";
	e.args = f->args;
	e.now = NOW;
	e.skew = 30;
	return e;
}

/* Verify and check the reason; returns the code. */
static int
run(struct fixture *f, const char *tok, const struct token_expect *e, const char *want_reason,
    struct token_grant *g)
{
	struct token_grant dummy = { .exp = -1 };
	const char *why = NULL;
	int r;

	r = verifier_verify(f->v, tok, e, g != NULL ? g : &dummy, &why);
	if (want_reason == NULL) {
		if (r != 0) {
			fail_msg("expected success, got %d (%s)", r, why != NULL ? why : "?");
		}
		assert_null(why);
	} else {
		assert_int_not_equal(r, 0);
		assert_non_null(why);
		assert_string_equal(why, want_reason);
		/* Out-parameters are not written on failure. */
		if (g == NULL) {
			assert_int_equal(dummy.exp, -1);
		}
	}
	return r;
}

/* --- basic verification -------------------------------------------------- */

static void
test_valid(void **state)
{
	struct fixture *f = *state;
	struct token_expect e = expect(f);
	struct token_grant g = { .exp = 0 };
	char *t = mint_default();

	run(f, t, &e, NULL, &g);
	assert_int_equal(g.exp, NOW + 300);
	assert_int_equal(g.uses, 1);
	assert_int_equal(f->m.key_calls, 1);
	assert_string_equal(f->m.last_aud, "proxy");
	/* aud may be left to the verifier's own. */
	e.aud = NULL;
	run(f, t, &e, NULL, NULL);
	free(t);
}

static void
test_malformed(void **state)
{
	struct fixture *f = *state;
	struct token_expect e = expect(f);
	char *t = mint_default(), *big;

	assert_int_equal(run(f, "", &e, "malformed", NULL), -EINVAL);
	run(f, "w1.a.b.c", &e, "malformed", NULL);
	assert_int_equal(run(f, "w2.eyJ9.eyJ9.AAAA", &e, "unsupported_version", NULL),
	    -EPROTONOSUPPORT);
	assert_int_equal(verifier_verify(f->v, NULL, &e, NULL, NULL), -EINVAL);
	big = malloc(TOKEN_MAX_LEN + 2);
	assert_non_null(big);
	memset(big, 'A', TOKEN_MAX_LEN + 1);
	big[TOKEN_MAX_LEN + 1] = '\0';
	memcpy(big, t, strlen(t));
	run(f, big, &e, "malformed", NULL);
	/* A trailing newline is not part of a token. */
	big[0] = '\0';
	snprintf(big, TOKEN_MAX_LEN, "%s\n", t);
	run(f, big, &e, "malformed", NULL);
	assert_int_equal(f->m.key_calls, 0);
	free(big);
	free(t);
}

static void
test_wrong_audience(void **state)
{
	struct fixture *f = *state;
	struct token_expect e = expect(f);
	struct token_kid k;
	struct token_claims c;
	char *t;

	/* The caller expects another audience than the verifier's. */
	t = mint_default();
	e.aud = "vmhost";
	assert_int_equal(run(f, t, &e, "wrong_audience", NULL), -EPERM);
	free(t);
	/* The token is for another audience. */
	fill(&k, &c);
	strcpy(k.aud, "vmhost");
	strcpy(c.aud, "vmhost");
	t = encode(&k, &c, 0x11);
	e = expect(f);
	run(f, t, &e, "wrong_audience", NULL);
	e.aud = "vmhost";
	run(f, t, &e, "wrong_audience", NULL);
	/* No key is ever asked for on another audience's behalf. */
	assert_int_equal(f->m.key_calls, 0);
	free(t);
}

static void
test_unknown_key(void **state)
{
	struct fixture *f = *state;
	struct token_expect e = expect(f);
	struct token_kid k;
	struct token_claims c;
	char *t;

	fill(&k, &c);
	k.epoch = EPOCH + 1;
	t = encode(&k, &c, 0x11);
	assert_int_equal(run(f, t, &e, "unknown_key", NULL), -ENOKEY);
	free(t);
	fill(&k, &c);
	k.gen = 2;
	t = encode(&k, &c, 0x11);
	run(f, t, &e, "unknown_key", NULL);
	/* Failures are not cached: the key may exist later. */
	mock_add(&f->m, 2, EPOCH, 0x11);
	run(f, t, &e, NULL, NULL);
	assert_int_equal(f->m.key_calls, 3);
	free(t);
}

static void
test_source_errors(void **state)
{
	struct fixture *f = *state;
	struct token_expect e = expect(f);
	char *t = mint_default();

	f->m.key_rc = -EKEYEXPIRED;
	assert_int_equal(run(f, t, &e, "key_expired", NULL), -EKEYEXPIRED);
	f->m.key_rc = -ECONNREFUSED;
	assert_int_equal(run(f, t, &e, "attestd_unavailable", NULL), -ECONNREFUSED);
	f->m.key_rc = -ENOKEY;
	run(f, t, &e, "unknown_key", NULL);
	/* No socket is not no key. */
	f->m.key_rc = -ENOENT;
	assert_int_equal(run(f, t, &e, "attestd_unavailable", NULL), -ENOENT);
	f->m.key_rc = -EAGAIN;
	run(f, t, &e, "attestd_unavailable", NULL);
	f->m.key_rc = 0;
	run(f, t, &e, NULL, NULL);
	free(t);
}

/* attestd in strict mode has no audience keys (409 strict_mode): it made
 * no epoch-mode token, so one that claims to be its work is refused. */
static void
test_epoch_token_under_strict_source(void **state)
{
	struct fixture *f = *state;
	struct token_expect e = expect(f);
	char *t = mint_default();

	f->m.key_rc = -EPERM;
	assert_int_equal(run(f, t, &e, "strict_mode", NULL), -EPERM);
	assert_int_equal(f->m.key_calls, 1);
	/* Not cached: asked again, and refused again. */
	run(f, t, &e, "strict_mode", NULL);
	assert_int_equal(f->m.key_calls, 2);
	assert_int_equal(f->m.mac_calls, 0);
	free(t);
}

static void
test_bad_source_window(void **state)
{
	struct fixture *f = *state;
	struct token_expect e = expect(f);
	struct verifier_key *vk;
	struct token_kid k;
	struct token_claims c;
	char *t;

	/* A source answering with a window that makes no sense is broken. */
	vk = mock_add(&f->m, 1, EPOCH + 5, 0x11);
	vk->epoch_end = vk->not_before;
	fill(&k, &c);
	k.epoch = EPOCH + 5;
	t = encode(&k, &c, 0x11);
	run(f, t, &e, "attestd_unavailable", NULL);
	free(t);
}

static void
test_bad_mac(void **state)
{
	struct fixture *f = *state;
	struct token_expect e = expect(f);
	struct token_kid k;
	struct token_claims c;
	char *t, *last;

	fill(&k, &c);
	t = encode(&k, &c, 0x22);
	assert_int_equal(run(f, t, &e, "bad_mac", NULL), -EBADMSG);
	free(t);
	/* Flip a character of the tag. */
	t = mint_default();
	last = t + strlen(t) - 4;
	*last = *last == 'A' ? 'B' : 'A';
	run(f, t, &e, "bad_mac", NULL);
	free(t);
	/* Drop the only caveat and keep its tag: w1.kid.payload.C.tag becomes
	 * w1.kid.payload.tag, whose tag is not t0. */
	t = attenuate(mint_default(), "{\"type\":\"uses\",\"uses\":1}");
	{
		char buf[TOKEN_MAX_LEN + 1], *tag, *cav;

		tag = strrchr(t, '.');
		*tag++ = '\0';
		cav = strrchr(t, '.');
		*cav = '\0';
		snprintf(buf, sizeof(buf), "%s.%s", t, tag);
		run(f, buf, &e, "bad_mac", NULL);
	}
	free(t);
}

static void
test_caveat_swap(void **state)
{
	struct fixture *f = *state;
	struct token_expect e = expect(f);
	char *t, *a, *b, *tagp, *c1, *c2;
	char buf[TOKEN_MAX_LEN + 1];

	t = attenuate(mint_default(), "{\"type\":\"exp\",\"exp\":1768442700}");
	t = attenuate(t, "{\"type\":\"uses\",\"uses\":1}");
	run(f, t, &e, NULL, NULL);
	/* w1.kid.payload.C1.C2.tag -> w1.kid.payload.C2.C1.tag */
	tagp = strrchr(t, '.');
	*tagp++ = '\0';
	c2 = strrchr(t, '.');
	*c2++ = '\0';
	c1 = strrchr(t, '.');
	*c1++ = '\0';
	a = c1;
	b = c2;
	snprintf(buf, sizeof(buf), "%s.%s.%s.%s", t, b, a, tagp);
	run(f, buf, &e, "bad_mac", NULL);
	free(t);
}

/* --- key window ---------------------------------------------------------- */

static void
test_key_window(void **state)
{
	struct fixture *f = *state;
	struct token_expect e = expect(f);
	struct token_kid k;
	struct token_claims c;
	char *t;

	/* iat before the epoch began */
	fill(&k, &c);
	c.iat = NOT_BEFORE - 1;
	t = encode(&k, &c, 0x11);
	assert_int_equal(run(f, t, &e, "outside_key_window", NULL), -EPERM);
	free(t);
	/* iat at the epoch's end belongs to the next epoch */
	fill(&k, &c);
	c.iat = EPOCH_END;
	c.exp = EPOCH_END + 60;
	t = encode(&k, &c, 0x11);
	e.now = EPOCH_END;
	run(f, t, &e, "outside_key_window", NULL);
	free(t);
	/* the last second of the epoch is inside */
	fill(&k, &c);
	c.iat = EPOCH_END - 1;
	c.exp = EPOCH_END + 60;
	t = encode(&k, &c, 0x11);
	run(f, t, &e, NULL, NULL);
	free(t);
	/* exp after not_after: more than max_ttl */
	fill(&k, &c);
	c.exp = NOT_AFTER + 1;
	t = encode(&k, &c, 0x11);
	e = expect(f);
	run(f, t, &e, "outside_key_window", NULL);
	free(t);
	/* exp exactly at not_after is allowed */
	fill(&k, &c);
	c.exp = NOT_AFTER;
	t = encode(&k, &c, 0x11);
	run(f, t, &e, NULL, NULL);
	free(t);
	assert_int_equal(f->m.key_calls, 1);
}

/* --- token_check pass-through -------------------------------------------- */

static void
test_binding(void **state)
{
	struct fixture *f = *state;
	struct token_expect e;
	json_t *other = NULL;
	char *t = mint_default();

	e = expect(f);
	e.vm = "vm-2";
	run(f, t, &e, "wrong_vm", NULL);
	e = expect(f);
	e.op = "fs.read";
	run(f, t, &e, "wrong_operation", NULL);
	e = expect(f);
	e.launch = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
	run(f, t, &e, "wrong_launch", NULL);
	e = expect(f);
	assert_int_equal(cjson_parse("{\"path\":\"/etc/passwd\"}", 22, 1024, &other), 0);
	e.args = other;
	run(f, t, &e, "wrong_arguments", NULL);
	json_decref(other);
	e = expect(f);
	e.now = NOW + 300;
	run(f, t, &e, "expired", NULL);
	e = expect(f);
	e.now = NOW - 10 - 31;
	run(f, t, &e, "not_yet_valid", NULL);
	free(t);
}

static void
test_caveats_narrow(void **state)
{
	struct fixture *f = *state;
	struct token_expect e = expect(f);
	struct token_grant g;
	struct token_kid k;
	struct token_claims c;
	char *t;

	fill(&k, &c);
	c.uses = 5;
	t = encode(&k, &c, 0x11);
	t = attenuate(t, "{\"type\":\"exp\",\"exp\":1768442600}");
	t = attenuate(t, "{\"type\":\"uses\",\"uses\":2}");
	t = attenuate(t, "{\"type\":\"arg_prefix\",\"arg\":\"path\",\"prefix\":\"/notes\"}");
	run(f, t, &e, NULL, &g);
	assert_int_equal(g.exp, 1768442600);
	assert_int_equal(g.uses, 2);
	t = attenuate(t, "{\"type\":\"ops\",\"ops\":[\"fs.read\"]}");
	run(f, t, &e, "caveat_operation", NULL);
	free(t);
	t = attenuate(mint_default(), "{\"type\":\"arg_prefix\",\"arg\":\"path\",\"prefix\":\"/tmp/\"}");
	run(f, t, &e, "caveat_argument", NULL);
	e.args = NULL;
	run(f, t, &e, "missing_arguments", NULL);
	free(t);
}

/* --- cache --------------------------------------------------------------- */

static void
test_cache_hit(void **state)
{
	struct fixture *f = *state;
	struct token_expect e = expect(f);
	uint64_t fetches = 0, hits = 0;
	struct token_kid k;
	struct token_claims c;
	char *t;
	int i;

	for (i = 0; i < 10; i++) {
		t = mint_default();
		run(f, t, &e, NULL, NULL);
		free(t);
	}
	assert_int_equal(f->m.key_calls, 1);
	verifier_stats(f->v, &fetches, &hits);
	assert_int_equal(fetches, 1);
	assert_int_equal(hits, 9);
	/* Another epoch is another key. */
	mock_add(&f->m, 1, EPOCH + 1, 0x33);
	fill(&k, &c);
	k.epoch = EPOCH + 1;
	t = encode(&k, &c, 0x33);
	run(f, t, &e, NULL, NULL);
	run(f, t, &e, NULL, NULL);
	free(t);
	assert_int_equal(f->m.key_calls, 2);
	/* A bad MAC does not evict a good key. */
	fill(&k, &c);
	t = encode(&k, &c, 0x44);
	run(f, t, &e, "bad_mac", NULL);
	free(t);
	t = mint_default();
	run(f, t, &e, NULL, NULL);
	free(t);
	assert_int_equal(f->m.key_calls, 2);
}

static void
test_cache_expired_refetched(void **state)
{
	struct fixture *f = *state;
	struct token_expect e = expect(f);
	struct token_kid k;
	struct token_claims c;
	char *t = mint_default();

	run(f, t, &e, NULL, NULL);
	assert_int_equal(f->m.key_calls, 1);
	/* Past not_after the cached key is not used; the source is asked and
	 * says it is gone. */
	e.now = NOT_AFTER;
	f->m.key_rc = -EKEYEXPIRED;
	run(f, t, &e, "key_expired", NULL);
	assert_int_equal(f->m.key_calls, 2);
	/* A source handing out an already-expired key is not believed. */
	f->m.key_rc = 0;
	run(f, t, &e, "key_expired", NULL);
	assert_int_equal(f->m.key_calls, 3);
	free(t);
	/* Back in time (a test clock): the key was evicted, so it is fetched. */
	e = expect(f);
	fill(&k, &c);
	t = encode(&k, &c, 0x11);
	run(f, t, &e, NULL, NULL);
	assert_int_equal(f->m.key_calls, 4);
	free(t);
}

static void
test_cache_bounded_lru(void **state)
{
	struct fixture *f = *state;
	struct token_expect e = expect(f);
	struct token_kid k;
	struct token_claims c;
	char *t;
	unsigned i;

	/* Fill the cache with epochs EPOCH .. EPOCH+MAX-1, then one more. */
	for (i = 1; i <= VERIFIER_CACHE_MAX; i++) {
		mock_add(&f->m, 1, EPOCH + i, (uint8_t)i);
	}
	for (i = 0; i <= VERIFIER_CACHE_MAX; i++) {
		fill(&k, &c);
		k.epoch = EPOCH + i;
		t = encode(&k, &c, i == 0 ? 0x11 : (uint8_t)i);
		run(f, t, &e, NULL, NULL);
		free(t);
	}
	assert_int_equal(f->m.key_calls, VERIFIER_CACHE_MAX + 1);
	/* The least recently used (EPOCH) was evicted: fetched again. */
	t = mint_default();
	run(f, t, &e, NULL, NULL);
	free(t);
	assert_int_equal(f->m.key_calls, VERIFIER_CACHE_MAX + 2);
	/* ...which evicted EPOCH+1, now the least recently used; EPOCH+2 stays. */
	fill(&k, &c);
	k.epoch = EPOCH + 2;
	t = encode(&k, &c, 2);
	run(f, t, &e, NULL, NULL);
	free(t);
	assert_int_equal(f->m.key_calls, VERIFIER_CACHE_MAX + 2);
}

static void
test_cache_evicts_expired_first(void **state)
{
	struct fixture *f = *state;
	struct token_expect e = expect(f);
	struct verifier_key *vk;
	struct token_kid k;
	struct token_claims c;
	char *t;
	unsigned i;

	/* EPOCH+1 .. EPOCH+MAX-1 long-lived; EPOCH (the fixture's key) is
	 * made short-lived and used last, so it is the most recently used. */
	f->m.keys[0].k.epoch_end = NOW + 200;
	f->m.keys[0].k.not_after = NOW + 300;
	for (i = 1; i <= VERIFIER_CACHE_MAX; i++) {
		vk = mock_add(&f->m, 1, EPOCH + i, (uint8_t)i);
		vk->not_after = NOT_AFTER + 100000;
	}
	for (i = 1; i < VERIFIER_CACHE_MAX; i++) {
		fill(&k, &c);
		k.epoch = EPOCH + i;
		t = encode(&k, &c, (uint8_t)i);
		run(f, t, &e, NULL, NULL);
		free(t);
	}
	t = mint_default();
	run(f, t, &e, NULL, NULL);
	free(t);
	assert_int_equal(f->m.key_calls, VERIFIER_CACHE_MAX);
	/* Later, EPOCH's key has expired: a new key takes its slot, not the
	 * least recently used one (EPOCH+1). */
	e.now = NOW + 400;
	fill(&k, &c);
	k.epoch = EPOCH + VERIFIER_CACHE_MAX;
	c.iat = NOW + 390;
	c.exp = NOW + 700;
	t = encode(&k, &c, (uint8_t)VERIFIER_CACHE_MAX);
	run(f, t, &e, NULL, NULL);
	free(t);
	assert_int_equal(f->m.key_calls, VERIFIER_CACHE_MAX + 1);
	fill(&k, &c);
	k.epoch = EPOCH + 1;
	c.iat = NOW + 390;
	c.exp = NOW + 700;
	t = encode(&k, &c, 1);
	run(f, t, &e, NULL, NULL);
	free(t);
	assert_int_equal(f->m.key_calls, VERIFIER_CACHE_MAX + 1);
}

/* --- strict mode --------------------------------------------------------- */

static void
test_strict(void **state)
{
	struct fixture *f = *state;
	struct token_expect e = expect(f);
	struct verifier_source src = { mock_get_key, NULL, NULL };
	struct verifier *v2 = NULL;
	struct token_kid k;
	struct token_claims c;
	const char *why = NULL;
	char *t;

	/* The MAC of a strict token is attestd's to check, and no key is
	 * fetched for it: there is none (the bytes it was encoded with here
	 * are irrelevant). */
	fill(&k, &c);
	k.mode = TOKEN_MODE_STRICT;
	t = encode(&k, &c, 0x99);
	run(f, t, &e, NULL, NULL);
	assert_int_equal(f->m.mac_calls, 1);
	assert_int_equal(f->m.key_calls, 0);
	/* Nothing cached: every strict token is attestd's to check. */
	run(f, t, &e, NULL, NULL);
	assert_int_equal(f->m.mac_calls, 2);
	assert_int_equal(f->m.key_calls, 0);
	f->m.mac_rc = -EBADMSG;
	run(f, t, &e, "bad_mac", NULL);
	f->m.mac_rc = -ECONNREFUSED;
	run(f, t, &e, "attestd_unavailable", NULL);
	f->m.mac_rc = -EKEYEXPIRED;
	run(f, t, &e, "key_expired", NULL);
	f->m.mac_rc = -ENOKEY;
	run(f, t, &e, "unknown_key", NULL);
	f->m.mac_rc = 0;
	/* The window comes from attestd's verdict and must be the token's own
	 * epoch's: one shifted by an epoch, or inverted, is a broken source. */
	f->m.window = (struct verifier_window){ EPOCH_END, EPOCH_END + 3600, NOT_AFTER + 3600 };
	run(f, t, &e, "attestd_unavailable", NULL);
	f->m.window = (struct verifier_window){ NOT_BEFORE, NOT_BEFORE, NOT_AFTER };
	run(f, t, &e, "attestd_unavailable", NULL);
	f->m.window = (struct verifier_window){ NOT_BEFORE, EPOCH_END, EPOCH_END - 1 };
	run(f, t, &e, "attestd_unavailable", NULL);
	/* ...and past its not_after by the verifier's clock, the key is over. */
	f->m.window = (struct verifier_window){ NOT_BEFORE, EPOCH_END, NOT_AFTER };
	e.now = NOT_AFTER;
	run(f, t, &e, "key_expired", NULL);
	e = expect(f);
	run(f, t, &e, NULL, NULL);
	free(t);
	/* The window applies to strict tokens too, and it is checked after
	 * the MAC. */
	fill(&k, &c);
	k.mode = TOKEN_MODE_STRICT;
	c.iat = NOT_BEFORE - 5;
	t = encode(&k, &c, 0x99);
	run(f, t, &e, "outside_key_window", NULL);
	free(t);
	fill(&k, &c);
	k.mode = TOKEN_MODE_STRICT;
	c.exp = NOT_AFTER + 1;
	t = encode(&k, &c, 0x99);
	run(f, t, &e, "outside_key_window", NULL);
	free(t);
	/* Without a MAC checker strict tokens are refused. */
	src.ctx = &f->m;
	assert_int_equal(verifier_new_with_source(&src, "proxy", &v2), 0);
	fill(&k, &c);
	k.mode = TOKEN_MODE_STRICT;
	t = encode(&k, &c, 0x11);
	assert_int_not_equal(verifier_verify(v2, t, &e, NULL, &why), 0);
	assert_string_equal(why, "attestd_unavailable");
	verifier_free(v2);
	free(t);
	/* An epoch token is never sent to attestd. */
	f->m.mac_calls = 0;
	t = mint_default();
	run(f, t, &e, NULL, NULL);
	assert_int_equal(f->m.mac_calls, 0);
	free(t);
}

static void
test_new_rejects(void **state)
{
	struct verifier_source src = { mock_get_key, NULL, NULL };
	struct verifier *v = NULL;

	(void)state;
	assert_int_equal(verifier_new_with_source(&src, "", &v), -EINVAL);
	assert_int_equal(verifier_new_with_source(&src, "a b", &v), -EINVAL);
	assert_int_equal(verifier_new_with_source(NULL, "proxy", &v), -EINVAL);
	src.get_key = NULL;
	assert_int_equal(verifier_new_with_source(&src, "proxy", &v), -EINVAL);
	assert_null(v);
	assert_int_equal(verifier_new("/nonexistent/attestd.sock", "proxy", &v), 0);
	verifier_free(v);
}

/* --- replay store wired in ----------------------------------------------- */

static void
test_replay_single_use(void **state)
{
	struct fixture *f = *state;
	struct token_expect e = expect(f);
	char *t = mint_default();

	open_replay(f);
	run(f, t, &e, NULL, NULL);
	assert_int_equal(run(f, t, &e, "already_used", NULL), -EALREADY);
	free(t);
	/* Another token is another id. */
	t = mint_default();
	run(f, t, &e, NULL, NULL);
	free(t);
}

static void
test_replay_refused_token_uses_nothing(void **state)
{
	struct fixture *f = *state;
	struct token_expect e = expect(f);
	struct token_claims c;
	struct token *p = NULL;
	uint32_t uses = 99;
	char *t = mint_default();

	open_replay(f);
	e.op = "fs.read";
	run(f, t, &e, "wrong_operation", NULL);
	assert_int_equal(token_parse(t, strlen(t), &p), 0);
	c = *token_claims(p);
	token_free(p);
	assert_int_equal(replay_uses(f->rp, c.jti, &uses), 0);
	assert_int_equal(uses, 0);
	e = expect(f);
	run(f, t, &e, NULL, NULL);
	assert_int_equal(replay_uses(f->rp, c.jti, &uses), 0);
	assert_int_equal(uses, 1);
	free(t);
}

static void
test_replay_uses3(void **state)
{
	struct fixture *f = *state;
	struct token_expect e = expect(f);
	struct token_kid k;
	struct token_claims c;
	char *t;

	open_replay(f);
	fill(&k, &c);
	c.uses = 3;
	t = encode(&k, &c, 0x11);
	run(f, t, &e, NULL, NULL);
	run(f, t, &e, NULL, NULL);
	run(f, t, &e, NULL, NULL);
	run(f, t, &e, "already_used", NULL);
	free(t);
}

static void
test_replay_attenuated_copies_share_uses(void **state)
{
	struct fixture *f = *state;
	struct token_expect e = expect(f);
	struct token_grant g;
	struct token_kid k;
	struct token_claims c;
	uint64_t removed = 0;
	char *orig, *narrow;

	open_replay(f);
	fill(&k, &c);
	c.uses = 3;
	orig = encode(&k, &c, 0x11);
	narrow = strdup(orig);
	narrow = attenuate(narrow, "{\"type\":\"uses\",\"uses\":1}");
	narrow = attenuate(narrow, "{\"type\":\"exp\",\"exp\":1768442560}");
	run(f, narrow, &e, NULL, &g);
	assert_int_equal(g.uses, 1);
	assert_int_equal(g.exp, 1768442560);
	run(f, narrow, &e, "already_used", NULL);
	/* After the narrow copy's exp, pruning must not forget the id: the
	 * original is still valid and has only two uses left. */
	e.now = 1768442560 + 1;
	assert_int_equal(replay_prune(f->rp, e.now, &removed), 0);
	assert_int_equal(removed, 0);
	run(f, orig, &e, NULL, NULL);
	run(f, orig, &e, NULL, NULL);
	run(f, orig, &e, "already_used", NULL);
	free(orig);
	free(narrow);
}

static void
test_replay_durable(void **state)
{
	struct fixture *f = *state;
	struct token_expect e = expect(f);
	char *t = mint_default();

	open_replay(f);
	run(f, t, &e, NULL, NULL);
	/* A new process: another store handle and another verifier. */
	replay_close(f->rp);
	f->rp = NULL;
	verifier_set_replay(f->v, NULL);
	assert_int_equal(replay_open(f->dbpath, &f->rp), 0);
	verifier_set_replay(f->v, f->rp);
	run(f, t, &e, "already_used", NULL);
	free(t);
}

static void
test_replay_prune_after_exp(void **state)
{
	struct fixture *f = *state;
	struct token_expect e = expect(f);
	uint64_t removed = 99;
	char *t = mint_default();

	open_replay(f);
	run(f, t, &e, NULL, NULL);
	assert_int_equal(replay_prune(f->rp, NOW + 299, &removed), 0);
	assert_int_equal(removed, 0);
	assert_int_equal(replay_prune(f->rp, NOW + 301, &removed), 0);
	assert_int_equal(removed, 1);
	/* Once pruned, the token is expired anyway. */
	e.now = NOW + 301;
	run(f, t, &e, "expired", NULL);
	free(t);
}

static void
test_replay_store_failure_refuses(void **state)
{
	struct fixture *f = *state;
	struct token_expect e = expect(f);
	sqlite3 *db = NULL;
	char *t = mint_default();

	open_replay(f);
	/* Break the store underneath (another writer drops the table): a use
	 * that cannot be recorded must not be allowed. */
	assert_int_equal(sqlite3_open(f->dbpath, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "DROP TABLE used", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	assert_int_not_equal(run(f, t, &e, "replay_unavailable", NULL), 0);
	free(t);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_valid, setup, teardown),
		cmocka_unit_test_setup_teardown(test_malformed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_wrong_audience, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unknown_key, setup, teardown),
		cmocka_unit_test_setup_teardown(test_source_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_epoch_token_under_strict_source, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_source_window, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_mac, setup, teardown),
		cmocka_unit_test_setup_teardown(test_caveat_swap, setup, teardown),
		cmocka_unit_test_setup_teardown(test_key_window, setup, teardown),
		cmocka_unit_test_setup_teardown(test_binding, setup, teardown),
		cmocka_unit_test_setup_teardown(test_caveats_narrow, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cache_hit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cache_expired_refetched, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cache_bounded_lru, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cache_evicts_expired_first, setup, teardown),
		cmocka_unit_test_setup_teardown(test_strict, setup, teardown),
		cmocka_unit_test(test_new_rejects),
		cmocka_unit_test_setup_teardown(test_replay_single_use, setup, teardown),
		cmocka_unit_test_setup_teardown(test_replay_refused_token_uses_nothing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_replay_uses3, setup, teardown),
		cmocka_unit_test_setup_teardown(test_replay_attenuated_copies_share_uses, setup, teardown),
		cmocka_unit_test_setup_teardown(test_replay_durable, setup, teardown),
		cmocka_unit_test_setup_teardown(test_replay_prune_after_exp, setup, teardown),
		cmocka_unit_test_setup_teardown(test_replay_store_failure_refuses, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
