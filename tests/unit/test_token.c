/* Unit tests for lib/token.c: encoding, the test vectors of
 * docs/token-format.md, attenuation, and the adversarial cases. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "b64url.h"
#include "cjson.h"
#include "token.h"

#define NOW 1764363600

static uint8_t key[TOKEN_KEY_LEN];
static uint8_t other_key[TOKEN_KEY_LEN];

static void
fill_claims(struct token_kid *k, struct token_claims *c)
{
	memset(k, 0, sizeof(*k));
	memset(c, 0, sizeof(*c));
	k->gen = 1;
	k->epoch = 490101;
	k->mode = TOKEN_MODE_EPOCH;
	strcpy(k->aud, "proxy");
	strcpy(c->jti, "AAECAwQFBgcICQoLDA0ODw");
	c->iat = NOW;
	c->exp = NOW + 300;
	strcpy(c->aud, "proxy");
	strcpy(c->vm, "vm-1");
	memset(c->launch, 'a', 64);
	strcpy(c->op, "fs.write");
	/* SHA-256 of {"data":"hi","path":"/notes.txt"} */
	strcpy(c->args, "10028893859e193c6b1da43c15185edd2a02f84b16e7f420ea3359fb945e9813");
	c->uses = 1;
}

static char *
mint(void)
{
	struct token_kid k;
	struct token_claims c;
	char *s = NULL;

	fill_claims(&k, &c);
	assert_int_equal(token_encode(&k, &c, key, &s), 0);
	return s;
}

static int
verify(const char *s, const uint8_t *k, const struct token_expect *e, struct token_grant *g,
    const char **why)
{
	struct token *t = NULL;
	int r;

	r = token_parse(s, strlen(s), &t);
	if (r != 0) {
		*why = "parse";
		return r;
	}
	r = token_verify_mac(t, k);
	if (r != 0)
		*why = "mac";
	else
		r = token_check(t, e, g, why);
	token_free(t);
	return r;
}

static struct token_expect
expect_default(void)
{
	struct token_expect e = { 0 };

	e.aud = "proxy";
	e.vm = "vm-1";
	e.op = "fs.write";
	e.now = NOW + 10;
	e.skew = 30;
	return e;
}

/* Build a token from raw JSON texts with a correct MAC chain, to show that
 * the parser refuses content even when the MACs are right. */
static char *
forge(const char *kid, const char *payload, const char **caveats, size_t n, const uint8_t *k)
{
	char *buf = calloc(1, 16384), seg[8192];
	uint8_t tag[32];
	size_t i, pos;

	strcpy(buf, "w1.");
	assert_int_equal(b64url_encode((const uint8_t *)kid, strlen(kid), seg, sizeof(seg)), 0);
	strcat(buf, seg);
	strcat(buf, ".");
	assert_int_equal(b64url_encode((const uint8_t *)payload, strlen(payload), seg,
	    sizeof(seg)), 0);
	strcat(buf, seg);
	assert_int_equal(token_hmac(k, 32, buf, strlen(buf), tag), 0);
	for (i = 0; i < n; i++) {
		strcat(buf, ".");
		pos = strlen(buf);
		assert_int_equal(b64url_encode((const uint8_t *)caveats[i], strlen(caveats[i]),
		    seg, sizeof(seg)), 0);
		strcat(buf, seg);
		assert_int_equal(token_hmac(tag, 32, buf + pos, strlen(seg), tag), 0);
	}
	strcat(buf, ".");
	assert_int_equal(b64url_encode(tag, 32, seg, sizeof(seg)), 0);
	strcat(buf, seg);
	return buf;
}

#define KID "{\"aud\":\"proxy\",\"epoch\":490101,\"gen\":1,\"mode\":\"epoch\"}"
#define PAYLOAD_HEAD "{\"approvers\":[],\"args\":\"10028893859e193c6b1da43c15185edd2a02f84b16e7f420ea3359fb945e9813\",\"aud\":\"proxy\",\"exp\":1764363900,\"iat\":1764363600,\"jti\":\"AAECAwQFBgcICQoLDA0ODw\",\"launch\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\",\"op\":\"fs.write\",\"request\":\"\",\"uses\":1"
#define PAYLOAD PAYLOAD_HEAD ",\"vm\":\"vm-1\"}"

/* The vectors of docs/token-format.md; key = bytes 0x00..0x1f. They were
 * computed with an independent implementation (Python's hmac module). */
#define VECTOR_KID "eyJhdWQiOiJwcm94eSIsImVwb2NoIjo0OTAxMDEsImdlbiI6MSwibW9kZSI6ImVwb2NoIn0"
#define VECTOR_PAYLOAD "eyJhcHByb3ZlcnMiOltdLCJhcmdzIjoiMTAwMjg4OTM4NTllMTkzYzZiMWRhNDNjMTUxODVlZGQyYTAyZjg0YjE2ZTdmNDIwZWEzMzU5ZmI5NDVlOTgxMyIsImF1ZCI6InByb3h5IiwiZXhwIjoxNzY0MzYzOTAwLCJpYXQiOjE3NjQzNjM2MDAsImp0aSI6IkFBRUNBd1FGQmdjSUNRb0xEQTBPRHciLCJsYXVuY2giOiJhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhIiwib3AiOiJmcy53cml0ZSIsInJlcXVlc3QiOiIiLCJ1c2VzIjoxLCJ2bSI6InZtLTEifQ"
static const char *vector_plain = "w1." VECTOR_KID "." VECTOR_PAYLOAD
    ".3UfW9q25Mg8xhchlYdLWPW8iWJ9z8Qi8zKcDeeqxqxA";
static const char *vector_attenuated = "w1." VECTOR_KID "." VECTOR_PAYLOAD
    ".eyJleHAiOjE3NjQzNjM3MDAsInR5cGUiOiJleHAifQ"
    ".FAB-5uvU346Hn5PFBtLSW_kyMVDnOZBnD_TdBHfkUoA";
static const char *vector_args = "{\"data\":\"hi\",\"path\":\"/notes.txt\"}";

static void
setup_keys(void)
{
	size_t i;

	for (i = 0; i < sizeof(key); i++) {
		key[i] = (uint8_t)i;
		other_key[i] = (uint8_t)(0x80 + i);
	}
}

static void
test_roundtrip(void **state)
{
	struct token_expect e = expect_default();
	struct token_grant g;
	const char *why = NULL;
	char *s = mint();

	(void)state;
	assert_int_equal(verify(s, key, &e, &g, &why), 0);
	assert_int_equal(g.exp, NOW + 300);
	assert_int_equal(g.uses, 1);
	free(s);
}

static void
test_vector(void **state)
{
	struct token_caveat c = { .type = TOKEN_CAVEAT_EXP, .exp = 1764363700 };
	uint8_t digest[32];
	char hex[65], *s = mint(), *a = NULL;
	json_t *args = NULL;

	(void)state;
	assert_string_equal(s, vector_plain);
	assert_int_equal(token_attenuate(s, strlen(s), &c, &a), 0);
	assert_string_equal(a, vector_attenuated);
	assert_int_equal(cjson_parse(vector_args, strlen(vector_args), 1024, &args), 0);
	assert_int_equal(cjson_sha256(args, digest), 0);
	for (size_t i = 0; i < 32; i++)
		snprintf(hex + 2 * i, 3, "%02x", digest[i]);
	assert_string_equal(hex, "10028893859e193c6b1da43c15185edd2a02f84b16e7f420ea3359fb945e9813");
	json_decref(args);
	free(a);
	free(s);
}

static void
test_forge_matches_encoder(void **state)
{
	char *a = mint(), *b = forge(KID, PAYLOAD, NULL, 0, key);

	(void)state;
	assert_string_equal(a, b);
	free(a);
	free(b);
}

static void
test_every_byte_flipped(void **state)
{
	static const char repl[] = "AQgw-_.=/+ \x01";
	struct token_expect e = expect_default();
	const char *why;
	char *s = mint();
	size_t len = strlen(s), i, k;

	(void)state;
	for (i = 0; i < len; i++) {
		char orig = s[i];

		for (k = 0; k < sizeof(repl) - 1; k++) {
			if (repl[k] == orig)
				continue;
			s[i] = repl[k];
			assert_int_not_equal(verify(s, key, &e, NULL, &why), 0);
		}
		s[i] = orig;
	}
	assert_int_equal(verify(s, key, &e, NULL, &why), 0);
	free(s);
}

static void
test_truncated_and_extended(void **state)
{
	struct token_expect e = expect_default();
	const char *why;
	char *s = mint(), *t;
	size_t len = strlen(s), i;

	(void)state;
	for (i = 0; i < len; i++) {
		t = strndup(s, i);
		assert_int_not_equal(verify(t, key, &e, NULL, &why), 0);
		free(t);
	}
	t = malloc(len + 3);
	memcpy(t, s, len);
	memcpy(t + len, ".A", 3);
	assert_int_not_equal(verify(t, key, &e, NULL, &why), 0);
	free(t);
	free(s);
}

static void
test_segments_swapped_or_dropped(void **state)
{
	struct token_expect e = expect_default();
	const char *why;
	char *s = mint(), buf[TOKEN_MAX_LEN];
	char *seg[4], *save = NULL, *copy = strdup(s), *p;
	size_t n = 0;

	(void)state;
	for (p = strtok_r(copy, ".", &save); p != NULL && n < 4; p = strtok_r(NULL, ".", &save))
		seg[n++] = p;
	assert_int_equal(n, 4);
	snprintf(buf, sizeof(buf), "%s.%s.%s.%s", seg[0], seg[2], seg[1], seg[3]);
	assert_int_not_equal(verify(buf, key, &e, NULL, &why), 0);
	snprintf(buf, sizeof(buf), "%s.%s.%s", seg[0], seg[2], seg[3]);
	assert_int_not_equal(verify(buf, key, &e, NULL, &why), 0);
	snprintf(buf, sizeof(buf), "%s.%s.%s", seg[0], seg[1], seg[3]);
	assert_int_not_equal(verify(buf, key, &e, NULL, &why), 0);
	snprintf(buf, sizeof(buf), "%s.%s.%s.%s.%s", seg[0], seg[1], seg[2], seg[2], seg[3]);
	assert_int_not_equal(verify(buf, key, &e, NULL, &why), 0);
	snprintf(buf, sizeof(buf), "w2.%s.%s.%s", seg[1], seg[2], seg[3]);
	assert_int_equal(verify(buf, key, &e, NULL, &why), -EPROTONOSUPPORT);
	free(copy);
	free(s);
}

static void
test_wrong_key(void **state)
{
	struct token_expect e = expect_default();
	const char *why = NULL;
	char *s = mint();

	(void)state;
	assert_int_equal(verify(s, other_key, &e, NULL, &why), -EBADMSG);
	assert_string_equal(why, "mac");
	free(s);
}

static void
test_other_audience_kid(void **state)
{
	struct token_expect e = expect_default();
	struct token_kid k;
	struct token_claims c;
	const char *why = NULL;
	char *s = NULL;

	(void)state;
	fill_claims(&k, &c);
	strcpy(k.aud, "vmhost");
	strcpy(c.aud, "vmhost");
	assert_int_equal(token_encode(&k, &c, other_key, &s), 0);
	assert_int_equal(verify(s, other_key, &e, NULL, &why), -EPERM);
	assert_string_equal(why, "wrong_audience");
	free(s);
	/* kid and payload must name the same audience */
	strcpy(c.aud, "proxy");
	assert_int_equal(token_encode(&k, &c, key, &s), -EINVAL);
}

static void
test_other_generation_kid(void **state)
{
	const char *why = NULL;
	struct token_expect e = expect_default();
	char *s = forge("{\"aud\":\"proxy\",\"epoch\":490101,\"gen\":2,\"mode\":\"epoch\"}",
	    PAYLOAD, NULL, 0, key);
	char *good = mint();
	char *a = strchr(s, '.'), *b = strchr(good, '.');
	struct token *t = NULL;

	(void)state;
	/* A generation-2 kid spliced onto a generation-1 token breaks the MAC. */
	assert_int_equal(token_parse(s, strlen(s), &t), 0);
	assert_int_equal(token_kid(t)->gen, 2);
	token_free(t);
	memcpy(b + 1, a + 1, (size_t)(strchr(a + 1, '.') - a - 1));
	assert_int_not_equal(verify(good, key, &e, NULL, &why), 0);
	free(s);
	free(good);
}

static void
test_time(void **state)
{
	struct token_expect e = expect_default();
	const char *why = NULL;
	char *s = mint();

	(void)state;
	e.now = NOW + 300;
	assert_int_equal(verify(s, key, &e, NULL, &why), -EPERM);
	assert_string_equal(why, "expired");
	e.now = NOW + 299;
	assert_int_equal(verify(s, key, &e, NULL, &why), 0);
	e.now = NOW - 31;
	assert_int_equal(verify(s, key, &e, NULL, &why), -EPERM);
	assert_string_equal(why, "not_yet_valid");
	e.now = NOW - 30;
	assert_int_equal(verify(s, key, &e, NULL, &why), 0);
	free(s);
}

/* An approval token answers one request, and people made it. */
static void
test_request_and_approvers(void **state)
{
	struct token_expect e = expect_default();
	struct token_grant g;
	struct token_kid k;
	struct token_claims c;
	const char *why = NULL;
	char *s = mint(), *t = NULL;

	(void)state;
	e.request = "req-1";
	assert_int_equal(verify(s, key, &e, NULL, &why), -EPERM);
	assert_string_equal(why, "wrong_request");
	e = expect_default();
	e.need_approvers = true;
	assert_int_equal(verify(s, key, &e, NULL, &why), -EPERM);
	assert_string_equal(why, "no_approvers");

	fill_claims(&k, &c);
	snprintf(c.request, sizeof(c.request), "%s", "req-1");
	snprintf(c.approvers[0], sizeof(c.approvers[0]), "%s", "alice");
	c.n_approvers = 1;
	assert_int_equal(token_encode(&k, &c, key, &t), 0);
	e.request = "req-1";
	assert_int_equal(verify(t, key, &e, &g, &why), 0);
	assert_int_equal(g.n_approvers, 1);
	assert_string_equal(g.approvers[0], "alice");
	e.request = "req-2";
	assert_int_equal(verify(t, key, &e, NULL, &why), -EPERM);
	assert_string_equal(why, "wrong_request");
	free(s);
	free(t);
}

static void
test_bindings(void **state)
{
	struct token_expect e = expect_default();
	const char *why = NULL;
	char *s = mint();
	json_t *args = json_pack("{s:s, s:s}", "path", "/notes.txt", "data", "hi");
	json_t *other = json_pack("{s:s, s:s}", "path", "/notes.txt", "data", "ho");
	char launch[65];

	(void)state;
	e.vm = "vm-2";
	assert_int_equal(verify(s, key, &e, NULL, &why), -EPERM);
	assert_string_equal(why, "wrong_vm");
	e = expect_default();
	e.op = "fs.read";
	assert_int_equal(verify(s, key, &e, NULL, &why), -EPERM);
	assert_string_equal(why, "wrong_operation");
	e = expect_default();
	memset(launch, 'b', 64);
	launch[64] = '\0';
	e.launch = launch;
	assert_int_equal(verify(s, key, &e, NULL, &why), -EPERM);
	assert_string_equal(why, "wrong_launch");
	memset(launch, 'a', 64);
	assert_int_equal(verify(s, key, &e, NULL, &why), 0);
	e = expect_default();
	e.args = args;
	assert_int_equal(verify(s, key, &e, NULL, &why), 0);
	e.args = other;
	assert_int_equal(verify(s, key, &e, NULL, &why), -EPERM);
	assert_string_equal(why, "wrong_arguments");
	e = expect_default();
	e.args_sha256 = "0000000000000000000000000000000000000000000000000000000000000000";
	assert_int_equal(verify(s, key, &e, NULL, &why), -EPERM);
	e = expect_default();
	e.aud = "vmhost";
	assert_int_equal(verify(s, key, &e, NULL, &why), -EPERM);
	assert_string_equal(why, "wrong_audience");
	json_decref(args);
	json_decref(other);
	free(s);
}

static char *
attenuate(const char *s, const char *caveat_json)
{
	struct token_caveat c;
	json_t *j = json_loads(caveat_json, 0, NULL);
	char *out = NULL;

	assert_non_null(j);
	assert_int_equal(token_caveat_from_json(j, &c), 0);
	json_decref(j);
	assert_int_equal(token_attenuate(s, strlen(s), &c, &out), 0);
	return out;
}

static void
test_attenuation(void **state)
{
	struct token_expect e = expect_default();
	struct token_grant g;
	const char *why = NULL;
	char *s = mint(), *a, *b, *c, *d;
	json_t *args = json_pack("{s:s, s:s}", "path", "/notes.txt", "data", "hi");

	(void)state;
	a = attenuate(s, "{\"type\":\"exp\",\"exp\":1764363700}");
	assert_int_equal(verify(a, key, &e, &g, &why), 0);
	assert_int_equal(g.exp, 1764363700);
	e.now = 1764363700;
	assert_int_equal(verify(a, key, &e, &g, &why), -EPERM);
	assert_string_equal(why, "expired");
	e = expect_default();

	/* A later expiry in a caveat never extends the token. */
	b = attenuate(s, "{\"type\":\"exp\",\"exp\":1764399999}");
	assert_int_equal(verify(b, key, &e, &g, &why), 0);
	assert_int_equal(g.exp, NOW + 300);
	free(b);

	b = attenuate(a, "{\"type\":\"uses\",\"uses\":1}");
	c = attenuate(b, "{\"type\":\"ops\",\"ops\":[\"fs.read\",\"fs.write\"]}");
	assert_int_equal(verify(c, key, &e, &g, &why), 0);
	d = attenuate(c, "{\"type\":\"ops\",\"ops\":[\"fs.read\"]}");
	assert_int_equal(verify(d, key, &e, &g, &why), -EPERM);
	assert_string_equal(why, "caveat_operation");
	free(d);

	d = attenuate(c, "{\"type\":\"arg_prefix\",\"arg\":\"path\",\"prefix\":\"/notes\"}");
	assert_int_equal(verify(d, key, &e, &g, &why), -EPERM);
	assert_string_equal(why, "missing_arguments");
	e.args = args;
	assert_int_equal(verify(d, key, &e, &g, &why), 0);
	free(d);
	d = attenuate(c, "{\"type\":\"arg_prefix\",\"arg\":\"path\",\"prefix\":\"/etc/\"}");
	assert_int_equal(verify(d, key, &e, &g, &why), -EPERM);
	assert_string_equal(why, "caveat_argument");
	free(d);
	e = expect_default();

	/* Dropping or reordering caveats breaks the chain. */
	{
		char *last = strrchr(c, '.'), *prev, buf[TOKEN_MAX_LEN];

		*last = '\0';
		prev = strrchr(c, '.');
		*last = '.';
		/* c without its last caveat but with its tag */
		snprintf(buf, sizeof(buf), "%.*s%s", (int)(prev - c), c, last);
		assert_int_equal(verify(buf, key, &e, NULL, &why), -EBADMSG);
		/* b's caveats in c's order swapped */
		{
			char *segs[8], *copy = strdup(c), *save = NULL, *p;
			size_t n = 0;

			for (p = strtok_r(copy, ".", &save); p != NULL && n < 8;
			    p = strtok_r(NULL, ".", &save))
				segs[n++] = p;
			assert_int_equal(n, 7);
			snprintf(buf, sizeof(buf), "%s.%s.%s.%s.%s.%s.%s", segs[0], segs[1], segs[2],
			    segs[4], segs[3], segs[5], segs[6]);
			assert_int_equal(verify(buf, key, &e, NULL, &why), -EBADMSG);
			snprintf(buf, sizeof(buf), "%s.%s.%s.%s", segs[0], segs[1], segs[2], segs[6]);
			assert_int_equal(verify(buf, key, &e, NULL, &why), -EBADMSG);
			free(copy);
		}
	}
	json_decref(args);
	free(a);
	free(b);
	free(c);
	free(s);
}

static void
test_uses_caveat(void **state)
{
	struct token_expect e = expect_default();
	struct token_kid k;
	struct token_claims cl;
	struct token_grant g;
	const char *why;
	char *s = NULL, *a;

	(void)state;
	fill_claims(&k, &cl);
	cl.uses = 5;
	assert_int_equal(token_encode(&k, &cl, key, &s), 0);
	a = attenuate(s, "{\"type\":\"uses\",\"uses\":2}");
	assert_int_equal(verify(a, key, &e, &g, &why), 0);
	assert_int_equal(g.uses, 2);
	free(a);
	a = attenuate(s, "{\"type\":\"uses\",\"uses\":9}");
	assert_int_equal(verify(a, key, &e, &g, &why), 0);
	assert_int_equal(g.uses, 5);
	free(a);
	free(s);
}

static void
test_caveat_json_rejects(void **state)
{
	static const char *bad[] = {
		"{\"type\":\"widen\",\"exp\":1}",
		"{\"type\":\"exp\"}",
		"{\"type\":\"exp\",\"exp\":-1}",
		"{\"type\":\"exp\",\"exp\":\"1\"}",
		"{\"type\":\"exp\",\"exp\":1,\"extra\":1}",
		"{\"type\":\"ops\",\"ops\":[]}",
		"{\"type\":\"ops\",\"ops\":[\"a\",\"a\"]}",
		"{\"type\":\"ops\",\"ops\":[\"bad op\"]}",
		"{\"type\":\"ops\",\"ops\":\"fs.read\"}",
		"{\"type\":\"uses\",\"uses\":0}",
		"{\"type\":\"arg_prefix\",\"arg\":\"path\",\"prefix\":\"\"}",
		"{\"type\":\"arg_prefix\",\"arg\":\"../x\",\"prefix\":\"/a\"}",
		"{\"exp\":1}",
		"[]",
		NULL,
	};
	struct token_caveat c;
	size_t i;

	(void)state;
	for (i = 0; bad[i] != NULL; i++) {
		json_t *j = json_loads(bad[i], JSON_DECODE_ANY, NULL);

		assert_non_null(j);
		assert_int_equal(token_caveat_from_json(j, &c), -EINVAL);
		json_decref(j);
	}
}

static void
test_parser_refuses_with_valid_mac(void **state)
{
	static const char *payloads[] = {
		/* not canonical: a space */
		"{\"approvers\": [],\"args\":\"10028893859e193c6b1da43c15185edd2a02f84b16e7f420ea3359fb945e9813\",\"aud\":\"proxy\",\"exp\":1764363900,\"iat\":1764363600,\"jti\":\"AAECAwQFBgcICQoLDA0ODw\",\"launch\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\",\"op\":\"fs.write\",\"request\":\"\",\"uses\":1,\"vm\":\"vm-1\"}",
		/* keys out of order */
		PAYLOAD_HEAD ",\"vm\":\"vm-1\",\"approvers\":[]}",
		/* duplicate key */
		PAYLOAD_HEAD ",\"vm\":\"vm-1\",\"vm\":\"vm-2\"}",
		/* unknown claim */
		PAYLOAD_HEAD ",\"vm\":\"vm-1\",\"zz\":1}",
		/* missing claim */
		PAYLOAD_HEAD "}",
		/* bad identifier */
		PAYLOAD_HEAD ",\"vm\":\"vm 1\"}",
		/* a real number */
		PAYLOAD_HEAD ",\"vm\":\"vm-1\",\"zz\":1.5}",
		/* not an object */
		"[]",
		NULL,
	};
	static const char *caveats_bad[] = { "{\"type\":\"unknown\"}" };
	static const char *caveats_noncanon[] = { "{\"exp\":1764363700,\"type\":\"exp\"} " };
	struct token_expect e = expect_default();
	const char *why;
	size_t i;
	char *s;

	(void)state;
	for (i = 0; payloads[i] != NULL; i++) {
		s = forge(KID, payloads[i], NULL, 0, key);
		assert_int_equal(verify(s, key, &e, NULL, &why), -EINVAL);
		free(s);
	}
	s = forge("{\"aud\":\"proxy\",\"epoch\":490101,\"gen\":1,\"mode\":\"hmac\"}", PAYLOAD, NULL,
	    0, key);
	assert_int_equal(verify(s, key, &e, NULL, &why), -EINVAL);
	free(s);
	s = forge(KID, PAYLOAD, caveats_bad, 1, key);
	assert_int_equal(verify(s, key, &e, NULL, &why), -EINVAL);
	free(s);
	s = forge(KID, PAYLOAD, caveats_noncanon, 1, key);
	assert_int_equal(verify(s, key, &e, NULL, &why), -EINVAL);
	free(s);
}

static void
test_limits(void **state)
{
	struct token_expect e = expect_default();
	const char *why;
	char *s = mint(), *a, *next;
	size_t i;

	(void)state;
	a = strdup(s);
	for (i = 0; i < TOKEN_MAX_CAVEATS; i++) {
		next = attenuate(a, "{\"type\":\"uses\",\"uses\":1}");
		free(a);
		a = next;
	}
	assert_int_equal(verify(a, key, &e, NULL, &why), 0);
	{
		struct token_caveat c = { .type = TOKEN_CAVEAT_USES, .uses = 1 };

		assert_int_equal(token_attenuate(a, strlen(a), &c, &next), -E2BIG);
	}
	free(a);
	{
		char *big = malloc(TOKEN_MAX_LEN + 2);

		memset(big, 'A', TOKEN_MAX_LEN + 1);
		big[TOKEN_MAX_LEN + 1] = '\0';
		assert_int_equal(verify(big, key, &e, NULL, &why), -EINVAL);
		free(big);
	}
	assert_int_equal(verify("", key, &e, NULL, &why), -EINVAL);
	assert_int_equal(verify("....", key, &e, NULL, &why), -EINVAL);
	assert_int_equal(verify("w1...", key, &e, NULL, &why), -EINVAL);
	free(s);
}

static void
test_strict_mode_not_verifiable_with_key(void **state)
{
	struct token_kid k;
	struct token_claims c;
	struct token *t = NULL;
	uint8_t t0[32], msg[32];
	char *input = NULL, *s = NULL;
	size_t len = 0;

	(void)state;
	fill_claims(&k, &c);
	k.mode = TOKEN_MODE_STRICT;
	assert_int_equal(token_signing_input(&k, &c, &input, &len), 0);
	token_strict_message(input, len, msg);
	/* Stand-in for the TPM's HMAC: only the chain logic is under test. */
	assert_int_equal(token_hmac(other_key, 32, msg, 32, t0), 0);
	assert_int_equal(token_finish(input, len, t0, &s), 0);
	assert_int_equal(token_parse(s, strlen(s), &t), 0);
	assert_int_equal(token_kid(t)->mode, TOKEN_MODE_STRICT);
	assert_int_equal(token_verify_mac(t, key), -EBADMSG);
	assert_int_equal(token_verify_chain(t, t0), 0);
	t0[0] ^= 1;
	assert_int_equal(token_verify_chain(t, t0), -EBADMSG);
	token_free(t);
	free(input);
	free(s);
}

/* Segment texts for the scanner: b64url-encode and decode with both the
 * canonical scanner and the jansson path; both must give want (0 or not)
 * and, on success, the same value; on failure the out-parameter stays as
 * it was. */
static char *
seg_of(const char *json)
{
	static char seg[8192];

	assert_int_equal(b64url_encode((const uint8_t *)json, strlen(json), seg, sizeof(seg)), 0);
	return seg;
}

static void
check_claims_text(const char *json, int want_ok)
{
	struct token_claims a, b;
	char *seg = seg_of(json);
	int ra, rb;

	memset(&a, 0xa5, sizeof(a));
	memset(&b, 0xa5, sizeof(b));
	ra = token_claims_decode(seg, strlen(seg), &a);
	rb = token_claims_decode_json(seg, strlen(seg), &b);
	if ((ra == 0) != want_ok || (rb == 0) != want_ok)
		fail_msg("claims %s: scanner %d, json %d, wanted %s", json, ra, rb,
		    want_ok ? "ok" : "refusal");
	if (want_ok) {
		assert_memory_equal(&a, &b, sizeof(a));
	} else {
		struct token_claims pristine;

		memset(&pristine, 0xa5, sizeof(pristine));
		assert_memory_equal(&a, &pristine, sizeof(a));
		assert_memory_equal(&b, &pristine, sizeof(b));
	}
}

static void
check_kid_text(const char *json, int want_ok)
{
	struct token_kid a, b;
	char *seg = seg_of(json);
	int ra, rb;

	memset(&a, 0xa5, sizeof(a));
	memset(&b, 0xa5, sizeof(b));
	ra = token_kid_decode(seg, strlen(seg), &a);
	rb = token_kid_decode_json(seg, strlen(seg), &b);
	if ((ra == 0) != want_ok || (rb == 0) != want_ok)
		fail_msg("kid %s: scanner %d, json %d, wanted %s", json, ra, rb,
		    want_ok ? "ok" : "refusal");
	if (want_ok) {
		assert_memory_equal(&a, &b, sizeof(a));
	} else {
		struct token_kid pristine;

		memset(&pristine, 0xa5, sizeof(pristine));
		assert_memory_equal(&a, &pristine, sizeof(a));
		assert_memory_equal(&b, &pristine, sizeof(b));
	}
}

#define P_ARGS "\"args\":\"10028893859e193c6b1da43c15185edd2a02f84b16e7f420ea3359fb945e9813\""
#define P_JTI "\"jti\":\"AAECAwQFBgcICQoLDA0ODw\""
#define P_LAUNCH "\"launch\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\""
/* A payload with the given approvers, exp, iat, op, request, uses and vm. */
#define PL(appr, exp, iat, op, req, uses, vm) \
	"{\"approvers\":[" appr "]," P_ARGS ",\"aud\":\"proxy\",\"exp\":" exp ",\"iat\":" iat "," \
	P_JTI "," P_LAUNCH ",\"op\":\"" op "\",\"request\":\"" req "\",\"uses\":" uses \
	",\"vm\":\"" vm "\"}"
#define ID64 "a123456789b123456789c123456789d123456789e123456789f123456789g123"
#define OP128 ID64 "/" "123456789b123456789c123456789d123456789e123456789f123456789g123"

static void
test_scanner_edges(void **state)
{
	static const struct {
		const char *json;
		int ok;
	} claims[] = {
		{ PL("", "1764363900", "1764363600", "fs.write", "", "1", "vm-1"), 1 },
		/* integers: leading zeros, signs, reals, the 2^53 bound */
		{ PL("", "01764363900", "1764363600", "fs.write", "", "1", "vm-1"), 0 },
		{ PL("", "1764363900", "0", "fs.write", "", "1", "vm-1"), 1 },
		{ PL("", "1764363900", "00", "fs.write", "", "1", "vm-1"), 0 },
		{ PL("", "1764363900", "-0", "fs.write", "", "1", "vm-1"), 0 },
		{ PL("", "1764363900", "-1", "fs.write", "", "1", "vm-1"), 0 },
		{ PL("", "1764363900", "+1", "fs.write", "", "1", "vm-1"), 0 },
		{ PL("", "1764363900.0", "1764363600", "fs.write", "", "1", "vm-1"), 0 },
		{ PL("", "1764363900e0", "1764363600", "fs.write", "", "1", "vm-1"), 0 },
		{ PL("", "9007199254740992", "1764363600", "fs.write", "", "1", "vm-1"), 1 },
		{ PL("", "9007199254740993", "1764363600", "fs.write", "", "1", "vm-1"), 0 },
		{ PL("", "99999999999999999999", "1764363600", "fs.write", "", "1", "vm-1"), 0 },
		/* exp must be after iat */
		{ PL("", "1764363600", "1764363600", "fs.write", "", "1", "vm-1"), 0 },
		{ PL("", "1", "0", "fs.write", "", "1", "vm-1"), 1 },
		/* uses in 1..1000000 */
		{ PL("", "1764363900", "1764363600", "fs.write", "", "0", "vm-1"), 0 },
		{ PL("", "1764363900", "1764363600", "fs.write", "", "1000000", "vm-1"), 1 },
		{ PL("", "1764363900", "1764363600", "fs.write", "", "1000001", "vm-1"), 0 },
		{ PL("", "1764363900", "1764363600", "fs.write", "", "01", "vm-1"), 0 },
		/* approvers: distinct identifiers, at most 16 */
		{ PL("\"alice\"", "1764363900", "1764363600", "fs.write", "", "1", "vm-1"), 1 },
		{ PL("\"alice\",\"bob\"", "1764363900", "1764363600", "fs.write", "", "1", "vm-1"), 1 },
		{ PL("\"alice\",\"alice\"", "1764363900", "1764363600", "fs.write", "", "1", "vm-1"), 0 },
		{ PL("\"\"", "1764363900", "1764363600", "fs.write", "", "1", "vm-1"), 0 },
		{ PL("\"alice\",", "1764363900", "1764363600", "fs.write", "", "1", "vm-1"), 0 },
		{ PL("1", "1764363900", "1764363600", "fs.write", "", "1", "vm-1"), 0 },
		{ PL("\"a\",\"b\",\"c\",\"d\",\"e\",\"f\",\"g\",\"h\",\"i\",\"j\",\"k\",\"l\",\"m\",\"n\",\"o\",\"p\"",
		    "1764363900", "1764363600", "fs.write", "", "1", "vm-1"), 1 },
		{ PL("\"a\",\"b\",\"c\",\"d\",\"e\",\"f\",\"g\",\"h\",\"i\",\"j\",\"k\",\"l\",\"m\",\"n\",\"o\",\"p\",\"q\"",
		    "1764363900", "1764363600", "fs.write", "", "1", "vm-1"), 0 },
		/* identifiers and operations at and past their maximum length */
		{ PL("", "1764363900", "1764363600", "fs.write", "", "1", ID64), 1 },
		{ PL("", "1764363900", "1764363600", "fs.write", "", "1", ID64 "4"), 0 },
		{ PL("\"" ID64 "\"", "1764363900", "1764363600", "fs.write", ID64, "1", "vm-1"), 1 },
		{ PL("\"" ID64 "4\"", "1764363900", "1764363600", "fs.write", "", "1", "vm-1"), 0 },
		{ PL("", "1764363900", "1764363600", "fs.write", ID64 "4", "1", "vm-1"), 0 },
		{ PL("", "1764363900", "1764363600", OP128, "", "1", "vm-1"), 1 },
		{ PL("", "1764363900", "1764363600", OP128 "3", "", "1", "vm-1"), 0 },
		{ PL("", "1764363900", "1764363600", "/fs", "", "1", "vm-1"), 0 },
		{ PL("", "1764363900", "1764363600", "fs.write", "", "1", "-vm"), 0 },
		{ PL("", "1764363900", "1764363600", "fs.write", "", "1", ""), 0 },
		/* an escape that decodes to an allowed character is not canonical */
		{ PL("", "1764363900", "1764363600", "fs.write", "", "1", "\\u0076m-1"), 0 },
		{ PL("", "1764363900", "1764363600", "fs.write", "", "1", "vm\\/1"), 0 },
		/* upper-case hex; a jti with non-zero unused bits */
		{ "{\"approvers\":[]," P_ARGS ",\"aud\":\"proxy\",\"exp\":2,\"iat\":1," P_JTI
		  ",\"launch\":\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\","
		  "\"op\":\"x\",\"request\":\"\",\"uses\":1,\"vm\":\"v\"}", 0 },
		{ "{\"approvers\":[]," P_ARGS ",\"aud\":\"proxy\",\"exp\":2,\"iat\":1,"
		  "\"jti\":\"AAECAwQFBgcICQoLDA0ODx\"," P_LAUNCH
		  ",\"op\":\"x\",\"request\":\"\",\"uses\":1,\"vm\":\"v\"}", 0 },
		/* trailing bytes */
		{ PL("", "1764363900", "1764363600", "fs.write", "", "1", "vm-1") " ", 0 },
		{ NULL, 0 },
	};
	static const struct {
		const char *json;
		int ok;
	} kids[] = {
		{ "{\"aud\":\"proxy\",\"epoch\":0,\"gen\":1,\"mode\":\"epoch\"}", 1 },
		{ "{\"aud\":\"proxy\",\"epoch\":00,\"gen\":1,\"mode\":\"epoch\"}", 0 },
		{ "{\"aud\":\"proxy\",\"epoch\":9007199254740992,\"gen\":1,\"mode\":\"strict\"}", 1 },
		{ "{\"aud\":\"proxy\",\"epoch\":9007199254740993,\"gen\":1,\"mode\":\"epoch\"}", 0 },
		{ "{\"aud\":\"proxy\",\"epoch\":1,\"gen\":0,\"mode\":\"epoch\"}", 0 },
		{ "{\"aud\":\"proxy\",\"epoch\":1,\"gen\":4294967295,\"mode\":\"epoch\"}", 1 },
		{ "{\"aud\":\"proxy\",\"epoch\":1,\"gen\":4294967296,\"mode\":\"epoch\"}", 0 },
		{ "{\"aud\":\"proxy\",\"epoch\":1,\"gen\":1,\"mode\":\"Epoch\"}", 0 },
		{ "{\"aud\":\"proxy\",\"epoch\":1,\"gen\":1,\"mode\":\"strict2\"}", 0 },
		{ "{\"aud\":\"" ID64 "\",\"epoch\":1,\"gen\":1,\"mode\":\"epoch\"}", 1 },
		{ "{\"aud\":\"" ID64 "4\",\"epoch\":1,\"gen\":1,\"mode\":\"epoch\"}", 0 },
		{ "{\"aud\":\"proxy\",\"epoch\":1,\"gen\":1}", 0 },
		{ "{\"aud\":\"proxy\",\"epoch\":1,\"gen\":1,\"mode\":\"epoch\",\"x\":1}", 0 },
		{ NULL, 0 },
	};
	size_t i;

	(void)state;
	for (i = 0; claims[i].json != NULL; i++)
		check_claims_text(claims[i].json, claims[i].ok);
	for (i = 0; kids[i].json != NULL; i++)
		check_kid_text(kids[i].json, kids[i].ok);
}

static void
test_caveat_decode_failure_leaves_out(void **state)
{
	struct token_caveat c, pristine;
	/* The scanner fills in part of an ops caveat before it meets the
	 * duplicate; the general path then refuses it too. */
	char *seg = seg_of("{\"ops\":[\"fs.read\",\"fs.read\"],\"type\":\"ops\"}");

	(void)state;
	memset(&c, 0xa5, sizeof(c));
	memset(&pristine, 0xa5, sizeof(pristine));
	assert_int_not_equal(token_caveat_decode(seg, strlen(seg), &c), 0);
	assert_memory_equal(&c, &pristine, sizeof(c));
	seg = seg_of("{\"exp\":01,\"type\":\"exp\"}");
	assert_int_not_equal(token_caveat_decode(seg, strlen(seg), &c), 0);
	assert_memory_equal(&c, &pristine, sizeof(c));
}

static void
test_kid_payload_audience_differ(void **state)
{
	struct token_expect e = expect_default();
	const char *why;
	char *s;

	(void)state;
	/* A valid MAC over a kid for "proxy" and claims for "vmhost": the
	 * audiences must agree before anything else is looked at. */
	s = forge(KID, "{\"approvers\":[]," P_ARGS ",\"aud\":\"vmhost\",\"exp\":1764363900,"
	    "\"iat\":1764363600," P_JTI "," P_LAUNCH ",\"op\":\"fs.write\",\"request\":\"\","
	    "\"uses\":1,\"vm\":\"vm-1\"}", NULL, 0, key);
	assert_int_equal(verify(s, key, &e, NULL, &why), -EINVAL);
	free(s);
}

static void
test_skew_saturates(void **state)
{
	struct token_expect e = expect_default();
	const char *why = NULL;
	char *s = mint();

	(void)state;
	/* now + skew past INT64_MAX must not wrap into "issued in the
	 * future"; the token is refused because it has expired. */
	e.now = INT64_MAX - 5;
	e.skew = 30;
	assert_int_equal(verify(s, key, &e, NULL, &why), -EPERM);
	assert_string_equal(why, "expired");
	/* and a negative skew below INT64_MIN does not wrap into a huge one */
	e.now = -10;
	e.skew = INT64_MIN;
	assert_int_equal(verify(s, key, &e, NULL, &why), -EPERM);
	assert_string_equal(why, "not_yet_valid");
	free(s);
}

static void
test_arg_prefix_bytes(void **state)
{
	struct token_expect e = expect_default();
	const char *why = NULL;
	char *s = mint(), *a;
	json_t *args = json_pack("{s:s, s:s}", "path", "/notes.txt", "data", "hi");

	(void)state;
	e.args = args;
	/* A folder prefix ending in '/' does not match a sibling name. */
	a = attenuate(s, "{\"type\":\"arg_prefix\",\"arg\":\"path\",\"prefix\":\"/notes.txt/\"}");
	assert_int_equal(verify(a, key, &e, NULL, &why), -EPERM);
	assert_string_equal(why, "caveat_argument");
	free(a);
	/* The whole value may be the prefix. */
	a = attenuate(s, "{\"type\":\"arg_prefix\",\"arg\":\"path\",\"prefix\":\"/notes.txt\"}");
	assert_int_equal(verify(a, key, &e, NULL, &why), 0);
	free(a);
	/* A member that is not a string, or absent, fails closed. */
	a = attenuate(s, "{\"type\":\"arg_prefix\",\"arg\":\"mode\",\"prefix\":\"r\"}");
	assert_int_equal(verify(a, key, &e, NULL, &why), -EPERM);
	assert_string_equal(why, "caveat_argument");
	free(a);
	json_decref(args);
	free(s);
}

static void
test_inspect_json(void **state)
{
	struct token *t = NULL;
	char *s = mint(), *a = attenuate(s, "{\"type\":\"uses\",\"uses\":1}");
	json_t *j;

	(void)state;
	assert_int_equal(token_parse(a, strlen(a), &t), 0);
	j = token_to_json(t);
	assert_non_null(j);
	assert_string_equal(json_string_value(json_object_get(j, "version")), "w1");
	assert_string_equal(json_string_value(json_object_get(json_object_get(j, "claims"),
	    "vm")), "vm-1");
	assert_int_equal(json_array_size(json_object_get(j, "caveats")), 1);
	json_decref(j);
	token_free(t);
	free(a);
	free(s);
}

static void
test_jti_random(void **state)
{
	char a[TOKEN_JTI_LEN + 1], b[TOKEN_JTI_LEN + 1];

	(void)state;
	assert_int_equal(token_new_jti(a), 0);
	assert_int_equal(token_new_jti(b), 0);
	assert_int_equal(strlen(a), TOKEN_JTI_LEN);
	assert_string_not_equal(a, b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_roundtrip),
		cmocka_unit_test(test_vector),
		cmocka_unit_test(test_forge_matches_encoder),
		cmocka_unit_test(test_every_byte_flipped),
		cmocka_unit_test(test_truncated_and_extended),
		cmocka_unit_test(test_segments_swapped_or_dropped),
		cmocka_unit_test(test_wrong_key),
		cmocka_unit_test(test_other_audience_kid),
		cmocka_unit_test(test_other_generation_kid),
		cmocka_unit_test(test_time),
		cmocka_unit_test(test_bindings),
		cmocka_unit_test(test_request_and_approvers),
		cmocka_unit_test(test_attenuation),
		cmocka_unit_test(test_uses_caveat),
		cmocka_unit_test(test_caveat_json_rejects),
		cmocka_unit_test(test_parser_refuses_with_valid_mac),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_strict_mode_not_verifiable_with_key),
		cmocka_unit_test(test_scanner_edges),
		cmocka_unit_test(test_caveat_decode_failure_leaves_out),
		cmocka_unit_test(test_kid_payload_audience_differ),
		cmocka_unit_test(test_skew_saturates),
		cmocka_unit_test(test_arg_prefix_bytes),
		cmocka_unit_test(test_inspect_json),
		cmocka_unit_test(test_jti_random),
	};

	setup_keys();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
