/* Unit tests for approver/requests.c: the submission parser (adversarial),
 * the rules (quorum, veto, owner, one decision per person, final states,
 * expiry), minting once (also from two threads at a time), a deferred and
 * a failed mint, pickup once, callers kept apart, max_pending, recovery
 * from a crash while minting. A real store in a temporary folder and a
 * fake minter. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <limits.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "b64url.h"
#include "cjson.h"
#include "parse.h"
#include "../../approver/notify.h"
#include "../../approver/requests.h"

#define LAUNCH "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
#define NOW    1768442400
#define CALLER "uid:1000"

struct minter {
	pthread_mutex_t mu;
	unsigned calls;
	int result;               /* 0, -EAGAIN, -EPERM */
	unsigned delay_ms;
	size_t last_approvals;
	char last_request[TOKEN_ID_MAX + 1];
};

struct fx {
	char dir[PATH_MAX];
	char db[PATH_MAX + 32];
	struct settings *cfg;
	struct store *st;
	struct requests *rq;
	struct minter m;
	struct store_user u[4];   /* alice, bob, carol, dave (disabled later) */
};

static const char *const names[4] = { "alice", "bob", "carol", "dave" };

static int
fake_mint(void *ctx, const struct approval_request *ar, const json_t *approvals,
    char **ret_token, char *detail, size_t detailsz)
{
	struct minter *m = ctx;
	int r;

	if (m->delay_ms > 0) {
		usleep(m->delay_ms * 1000);
	}
	pthread_mutex_lock(&m->mu);
	m->calls++;
	m->last_approvals = json_array_size(approvals);
	(void)snprintf(m->last_request, sizeof(m->last_request), "%s", ar->request);
	r = m->result;
	pthread_mutex_unlock(&m->mu);
	if (r == 0) {
		*ret_token = strdup("w1.not-a-real-token");
		return 0;
	}
	(void)snprintf(detail, detailsz, "%s", r == -EAGAIN ? "quorum_not_met" : "approval_refused");
	return r;
}

static int
setup(void **state)
{
	const char *tmp = getenv("TMPDIR");
	struct fx *f = calloc(1, sizeof(*f));
	char err[256];
	size_t i;

	assert_non_null(f);
	(void)snprintf(f->dir, sizeof(f->dir), "%s/test-requests.XXXXXX", tmp != NULL ? tmp : "/tmp");
	assert_non_null(mkdtemp(f->dir));
	(void)snprintf(f->db, sizeof(f->db), "%s/approver.db", f->dir);
	assert_int_equal(settings_parse(f->dir, "{}", 2, &f->cfg, err, sizeof(err)), 0);
	f->cfg->quorum_default = 1;
	f->cfg->request_lifetime_seconds = 900;
	assert_int_equal(store_open(f->db, &f->st), 0);
	pthread_mutex_init(&f->m.mu, NULL);
	assert_int_equal(requests_new(f->cfg, fake_mint, &f->m, &f->rq), 0);
	for (i = 0; i < 4; i++) {
		struct store_credential c;
		int64_t id = 0;

		assert_int_equal(store_user_add(f->st, names[i], STORE_ROLE_APPROVER, "$argon2id$x",
		    NOW, &id), 0);
		assert_int_equal(store_user_get(f->st, names[i], &f->u[i]), 0);
		memset(&c, 0, sizeof(c));
		c.user_id = id;
		(void)snprintf(c.user, sizeof(c.user), "%s", names[i]);
		c.cred.id_len = 16;
		memset(c.cred.id, 'a' + (int)i, 16);
		c.cred.alg = WEBAUTHN_ALG_ES256;
		c.cred.pk_len = 65;
		c.cred.pk[0] = 4;
		(void)snprintf(c.label, sizeof(c.label), "key");
		c.created = NOW;
		assert_int_equal(store_credential_add(f->st, &c), 0);
	}
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;
	char cmd[PATH_MAX + 16];

	requests_free(f->rq);
	store_close(f->st);
	settings_free(f->cfg);
	(void)snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
	assert_int_equal(system(cmd), 0);
	free(f);
	return 0;
}

/* A submission body; extra (may be NULL) is merged over the defaults. */
static char *
body_for(const char *id, const char *extra_json)
{
	json_t *args = json_pack("{s:s, s:s}", "path", "/notes.txt", "data", "hi");
	json_t *b, *x;
	uint8_t h[32];
	char hex[65], *text = NULL;
	size_t len;

	assert_int_equal(cjson_sha256(args, h), 0);
	format_hex(h, sizeof(h), hex);
	b = json_pack("{s:s, s:s, s:s, s:s, s:s, s:O, s:s, s:s, s:i}", "id", id, "aud", "proxy",
	    "vm", "vm-1", "launch_digest", LAUNCH, "op", "fs.write", "args", args, "args_sha256",
	    hex, "reason", "save the notes", "requested_ttl", 300);
	if (extra_json != NULL) {
		x = json_loads(extra_json, JSON_ALLOW_NUL, NULL);
		assert_non_null(x);
		assert_int_equal(json_object_update(b, x), 0);
		json_decref(x);
	}
	assert_int_equal(cjson_dump(b, &text, &len), 0);
	json_decref(b);
	json_decref(args);
	return text;
}

static int
parse_text(const char *text, struct requests_submit *sub)
{
	char detail[256] = "";

	return requests_parse_submit(text, strlen(text), sub, detail, sizeof(detail));
}

static void
submit_as(struct fx *f, const char *caller, const char *id, const char *extra, int want,
    bool want_created)
{
	struct requests_submit sub;
	struct store_request r;
	char *text = body_for(id, extra);
	bool created = false;

	memset(&sub, 0, sizeof(sub));
	memset(&r, 0, sizeof(r));
	assert_int_equal(parse_text(text, &sub), 0);
	assert_int_equal(requests_submit(f->rq, f->st, caller, &sub, NOW, &r, &created), want);
	if (want == 0) {
		assert_int_equal(created, want_created);
		assert_string_equal(r.ar.request, id);
		assert_int_equal(strlen(r.digest), 64);
	}
	store_request_clear(&r);
	requests_submit_clear(&sub);
	free(text);
}

static json_t *
approval_for(struct fx *f, int who, int cred_of, const char *id)
{
	struct store_request r;
	uint8_t d[32], cid[16];
	char ch[64], cd[512], cdb[1024], idb[64];
	json_t *a;

	memset(&r, 0, sizeof(r));
	assert_int_equal(store_request_get(f->st, id, &r), 0);
	assert_int_equal(parse_hex(r.digest, d, sizeof(d)), 0);
	store_request_clear(&r);
	assert_int_equal(b64url_encode(d, sizeof(d), ch, sizeof(ch)), 0);
	(void)snprintf(cd, sizeof(cd),
	    "{\"type\":\"webauthn.get\",\"challenge\":\"%s\",\"origin\":\"https://localhost:8443\"}",
	    ch);
	assert_int_equal(b64url_encode((const uint8_t *)cd, strlen(cd), cdb, sizeof(cdb)), 0);
	memset(cid, 'a' + cred_of, sizeof(cid));
	assert_int_equal(b64url_encode(cid, sizeof(cid), idb, sizeof(idb)), 0);
	a = json_pack("{s:s, s:s, s:s, s:s, s:s}", "approver", names[who], "credential_id", idb,
	    "client_data_json", cdb, "authenticator_data", "AAAA", "signature", "AAAA");
	assert_non_null(a);
	return a;
}

static int
decide(struct fx *f, int who, const char *id, bool approve, int64_t now, enum store_state *st)
{
	char detail[256] = "";
	json_t *a = approve ? approval_for(f, who, who, id) : NULL;
	int r;

	r = requests_decide(f->rq, f->st, &f->u[who], id, approve, "looks fine", a, now, st,
	    detail, sizeof(detail));
	json_decref(a);
	return r;
}

static enum store_state
state_of(struct fx *f, const char *id)
{
	struct store_request r;
	enum store_state s;

	memset(&r, 0, sizeof(r));
	assert_int_equal(store_request_get(f->st, id, &r), 0);
	s = r.state;
	store_request_clear(&r);
	return s;
}

static void
test_parse_adversarial(void **state)
{
	static const char *const bad_extra[] = {
		"{\"extra\":1}",
		"{\"id\":\"\"}",
		"{\"id\":\"has space\"}",
		"{\"id\":\"-leading\"}",
		"{\"id\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"}",
		"{\"id\":5}",
		"{\"aud\":\"a b\"}",
		"{\"vm\":\"\"}",
		"{\"launch_digest\":\"00112233445566778899AABBCCDDEEFF00112233445566778899aabbccddeeff\"}",
		"{\"launch_digest\":\"0011\"}",
		"{\"op\":\"fs write\"}",
		"{\"args\":[1,2]}",
		"{\"args\":\"x\"}",
		"{\"args\":{\"path\":\"/other\",\"data\":\"hi\"}}",
		"{\"args_sha256\":\"0000000000000000000000000000000000000000000000000000000000000000\"}",
		"{\"reason\":\"two\\nlines\"}",
		"{\"reason\":\"bell\\u0007\"}",
		"{\"reason\":\"nul\\u0000byte\"}",
		"{\"reason\":7}",
		"{\"requested_ttl\":0}",
		"{\"requested_ttl\":86401}",
		"{\"requested_ttl\":\"300\"}",
		"{\"requested_ttl\":-1}",
		"{\"expires\":0}",
		"{\"expires\":\"soon\"}",
		"{\"owner\":\"bad owner\"}",
		"{\"owner\":5}",
		NULL,
	};
	struct requests_submit sub;
	char detail[256], big[1100], *text;
	size_t i;

	(void)state;
	text = body_for("req-1", NULL);
	memset(&sub, 0, sizeof(sub));
	assert_int_equal(parse_text(text, &sub), 0);
	assert_string_equal(sub.ar.request, "req-1");
	assert_int_equal(sub.ar.ttl, 300);
	assert_string_equal(sub.reason, "save the notes");
	assert_int_equal(sub.expires, 0);
	requests_submit_clear(&sub);
	free(text);
	for (i = 0; bad_extra[i] != NULL; i++) {
		text = body_for("req-1", bad_extra[i]);
		memset(&sub, 0, sizeof(sub));
		detail[0] = '\0';
		if (requests_parse_submit(text, strlen(text), &sub, detail, sizeof(detail)) !=
		    -EINVAL) {
			fail_msg("accepted: %s", bad_extra[i]);
		}
		assert_true(detail[0] != '\0');
		assert_null(sub.args);
		free(text);
	}
	/* Required fields. */
	{
		static const char *const req[] = { "id", "aud", "vm", "launch_digest", "op", "args",
			"args_sha256", "requested_ttl", NULL };

		for (i = 0; req[i] != NULL; i++) {
			json_t *j;

			text = body_for("req-1", NULL);
			j = json_loads(text, 0, NULL);
			free(text);
			assert_int_equal(json_object_del(j, req[i]), 0);
			text = json_dumps(j, JSON_COMPACT);
			json_decref(j);
			assert_int_equal(parse_text(text, &sub), -EINVAL);
			free(text);
		}
	}
	/* A reason over the cap. */
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	{
		char extra[1200];

		(void)snprintf(extra, sizeof(extra), "{\"reason\":\"%s\"}", big);
		text = body_for("req-1", extra);
		assert_int_equal(parse_text(text, &sub), -EINVAL);
		free(text);
	}
	/* Not JSON, not strict JSON, not an object. */
	assert_int_equal(requests_parse_submit("", 0, &sub, detail, sizeof(detail)), -EINVAL);
	assert_int_equal(parse_text("[]", &sub), -EINVAL);
	assert_int_equal(parse_text("{\"id\":\"a\",\"id\":\"b\"}", &sub), -EINVAL);
	assert_int_equal(parse_text("{} x", &sub), -EINVAL);
	assert_int_equal(parse_text("{\"args\":{\"x\":1.5}}", &sub), -EINVAL);
	assert_int_equal(requests_parse_submit("{\"id\":\"a\"\0}", 11, &sub, detail,
	    sizeof(detail)), -EINVAL);
	/* Owner and expires when given. */
	text = body_for("req-1", "{\"owner\":\"alice\",\"expires\":1768443000}");
	assert_int_equal(parse_text(text, &sub), 0);
	assert_string_equal(sub.owner, "alice");
	assert_int_equal(sub.expires, 1768443000);
	requests_submit_clear(&sub);
	free(text);
}

static void
test_submit_idempotent(void **state)
{
	struct fx *f = *state;
	struct store_request r;
	int64_t n = 0;

	submit_as(f, CALLER, "req-1", NULL, 0, true);
	submit_as(f, CALLER, "req-1", NULL, 0, false);
	submit_as(f, CALLER, "req-1", "{\"reason\":\"something else\"}", -EEXIST, false);
	submit_as(f, CALLER, "req-1", "{\"requested_ttl\":301}", -EEXIST, false);
	submit_as(f, "uid:1001", "req-1", NULL, -EEXIST, false);
	assert_int_equal(store_request_count(f->st, STORE_PENDING, &n), 0);
	assert_int_equal(n, 1);
	/* The deadline: the proxy's own when it is earlier than ours. */
	submit_as(f, CALLER, "req-2", "{\"expires\":1768442500}", 0, true);
	memset(&r, 0, sizeof(r));
	assert_int_equal(store_request_get(f->st, "req-2", &r), 0);
	assert_int_equal(r.expires, 1768442500);
	store_request_clear(&r);
	submit_as(f, CALLER, "req-3", "{\"expires\":1868442500}", 0, true);
	assert_int_equal(store_request_get(f->st, "req-3", &r), 0);
	assert_int_equal(r.expires, NOW + 900);
	assert_string_equal(r.caller, CALLER);
	store_request_clear(&r);
}

static void
test_max_pending(void **state)
{
	struct fx *f = *state;

	f->cfg->max_pending = 2;
	submit_as(f, CALLER, "req-1", NULL, 0, true);
	submit_as(f, CALLER, "req-2", NULL, 0, true);
	submit_as(f, CALLER, "req-3", NULL, -ENOSPC, false);
	/* A retry of a stored one is still answered. */
	submit_as(f, CALLER, "req-2", NULL, 0, false);
	assert_int_equal(requests_cancel(f->rq, f->st, CALLER, "req-1", NOW), 0);
	submit_as(f, CALLER, "req-3", NULL, 0, true);
}

struct counter {
	const char *event;
	int n;
};

static int
count_event(const struct store_audit *a, void *arg)
{
	struct counter *c = arg;

	if (strcmp(a->event, c->event) == 0) {
		c->n++;
	}
	return 0;
}

static int
events(struct fx *f, const char *id, const char *event)
{
	struct counter c = { event, 0 };

	assert_int_equal(store_audit_list(f->st, 0, 1000, id, count_event, &c), 0);
	return c.n;
}

static void
test_quorum_one_and_pickup(void **state)
{
	struct fx *f = *state;
	enum store_state st = STORE_PENDING;
	char *tok = NULL;

	submit_as(f, CALLER, "req-1", NULL, 0, true);
	assert_int_equal(requests_pickup(f->rq, f->st, CALLER, "req-1", NOW, &tok), -EAGAIN);
	assert_int_equal(decide(f, 0, "req-1", true, NOW + 1, &st), 0);
	assert_int_equal(st, STORE_APPROVED);
	assert_int_equal(f->m.calls, 1);
	assert_int_equal(f->m.last_approvals, 1);
	assert_string_equal(f->m.last_request, "req-1");
	/* Another caller never sees it. */
	assert_int_equal(requests_pickup(f->rq, f->st, "uid:1001", "req-1", NOW, &tok), -ENOENT);
	assert_int_equal(requests_cancel(f->rq, f->st, "uid:1001", "req-1", NOW), -ENOENT);
	assert_int_equal(requests_pickup(f->rq, f->st, CALLER, "req-1", NOW, &tok), 0);
	assert_string_equal(tok, "w1.not-a-real-token");
	free(tok);
	tok = NULL;
	assert_int_equal(requests_pickup(f->rq, f->st, CALLER, "req-1", NOW, &tok), -EALREADY);
	assert_null(tok);
	/* Final: no more decisions, no cancel. */
	assert_int_equal(decide(f, 1, "req-1", false, NOW + 2, &st), -ESTALE);
	assert_int_equal(requests_cancel(f->rq, f->st, CALLER, "req-1", NOW), -ESTALE);
	assert_int_equal(f->m.calls, 1);
	assert_int_equal(events(f, "req-1", "submit"), 1);
	assert_int_equal(events(f, "req-1", "approve"), 1);
	assert_int_equal(events(f, "req-1", "mint"), 1);
	assert_int_equal(events(f, "req-1", "pickup"), 1);
}

static void
test_quorum_two_of_three(void **state)
{
	struct fx *f = *state;
	enum store_state st = STORE_PENDING;

	f->cfg->quorum_default = 2;
	submit_as(f, CALLER, "req-1", NULL, 0, true);
	assert_int_equal(decide(f, 0, "req-1", true, NOW + 1, &st), 0);
	assert_int_equal(st, STORE_PENDING);
	assert_int_equal(f->m.calls, 0);
	/* One decision per person. */
	assert_int_equal(decide(f, 0, "req-1", true, NOW + 1, &st), -EEXIST);
	assert_int_equal(decide(f, 0, "req-1", false, NOW + 1, &st), -EEXIST);
	assert_int_equal(decide(f, 1, "req-1", true, NOW + 2, &st), 0);
	assert_int_equal(st, STORE_APPROVED);
	assert_int_equal(f->m.calls, 1);
	assert_int_equal(f->m.last_approvals, 2);
	assert_int_equal(decide(f, 2, "req-1", true, NOW + 3, &st), -ESTALE);
	assert_int_equal(f->m.calls, 1);
}

static void
test_quorum_per_op(void **state)
{
	struct fx *f = *state;
	enum store_state st = STORE_PENDING;

	f->cfg->n_quorum = 1;
	(void)snprintf(f->cfg->quorum[0].op, sizeof(f->cfg->quorum[0].op), "fs.write");
	f->cfg->quorum[0].n = 3;
	submit_as(f, CALLER, "req-1", NULL, 0, true);
	assert_int_equal(decide(f, 0, "req-1", true, NOW + 1, &st), 0);
	assert_int_equal(decide(f, 1, "req-1", true, NOW + 1, &st), 0);
	assert_int_equal(st, STORE_PENDING);
	assert_int_equal(decide(f, 2, "req-1", true, NOW + 1, &st), 0);
	assert_int_equal(st, STORE_APPROVED);
}

static void
test_deny_vetoes(void **state)
{
	struct fx *f = *state;
	enum store_state st = STORE_PENDING;
	struct store_request r;

	f->cfg->quorum_default = 2;
	submit_as(f, CALLER, "req-1", NULL, 0, true);
	assert_int_equal(decide(f, 0, "req-1", true, NOW + 1, &st), 0);
	assert_int_equal(decide(f, 1, "req-1", false, NOW + 2, &st), 0);
	assert_int_equal(st, STORE_DENIED);
	assert_int_equal(decide(f, 2, "req-1", true, NOW + 3, &st), -ESTALE);
	assert_int_equal(f->m.calls, 0);
	memset(&r, 0, sizeof(r));
	assert_int_equal(store_request_get(f->st, "req-1", &r), 0);
	assert_string_equal(r.state_reason, "looks fine");
	store_request_clear(&r);
	assert_int_equal(events(f, "req-1", "deny"), 1);
}

static void
test_owner_and_disabled(void **state)
{
	struct fx *f = *state;
	enum store_state st = STORE_PENDING;

	submit_as(f, CALLER, "req-1", "{\"owner\":\"alice\"}", 0, true);
	assert_int_equal(decide(f, 0, "req-1", true, NOW + 1, &st), -EPERM);
	assert_int_equal(decide(f, 0, "req-1", false, NOW + 1, &st), -EPERM);
	assert_int_equal(store_user_set_disabled(f->st, "dave", true), 0);
	assert_int_equal(decide(f, 3, "req-1", false, NOW + 1, &st), -EPERM);
	assert_int_equal(state_of(f, "req-1"), STORE_PENDING);
	assert_int_equal(decide(f, 1, "req-1", true, NOW + 1, &st), 0);
	assert_int_equal(st, STORE_APPROVED);
}

static void
test_bad_approvals(void **state)
{
	struct fx *f = *state;
	enum store_state st = STORE_PENDING;
	char detail[256];
	json_t *a;

	submit_as(f, CALLER, "req-1", NULL, 0, true);
	submit_as(f, CALLER, "req-2", NULL, 0, true);
	/* No reason, a blank one, control characters. */
	a = approval_for(f, 0, 0, "req-1");
	assert_int_equal(requests_decide(f->rq, f->st, &f->u[0], "req-1", true, "", a, NOW, &st,
	    detail, sizeof(detail)), -EINVAL);
	assert_int_equal(requests_decide(f->rq, f->st, &f->u[0], "req-1", true, " \t ", a, NOW, &st,
	    detail, sizeof(detail)), -EINVAL);
	assert_int_equal(requests_decide(f->rq, f->st, &f->u[0], "req-1", true, "a\x01", a, NOW,
	    &st, detail, sizeof(detail)), -EINVAL);
	/* Approve without an assertion. */
	assert_int_equal(requests_decide(f->rq, f->st, &f->u[0], "req-1", true, "ok", NULL, NOW,
	    &st, detail, sizeof(detail)), -EINVAL);
	/* Names another approver. */
	assert_int_equal(requests_decide(f->rq, f->st, &f->u[1], "req-1", true, "ok", a, NOW, &st,
	    detail, sizeof(detail)), -EINVAL);
	/* An extra key. */
	json_object_set_new(a, "extra", json_string("x"));
	assert_int_equal(requests_decide(f->rq, f->st, &f->u[0], "req-1", true, "ok", a, NOW, &st,
	    detail, sizeof(detail)), -EINVAL);
	json_decref(a);
	/* Not base64url. */
	a = approval_for(f, 0, 0, "req-1");
	json_object_set_new(a, "signature", json_string("AA=="));
	assert_int_equal(requests_decide(f->rq, f->st, &f->u[0], "req-1", true, "ok", a, NOW, &st,
	    detail, sizeof(detail)), -EINVAL);
	json_decref(a);
	/* Someone else's passkey. */
	a = approval_for(f, 0, 1, "req-1");
	assert_int_equal(requests_decide(f->rq, f->st, &f->u[0], "req-1", true, "ok", a, NOW, &st,
	    detail, sizeof(detail)), -EINVAL);
	assert_non_null(strstr(detail, "not one of yours"));
	json_decref(a);
	/* Signed another request's digest. */
	a = approval_for(f, 0, 0, "req-2");
	assert_int_equal(requests_decide(f->rq, f->st, &f->u[0], "req-1", true, "ok", a, NOW, &st,
	    detail, sizeof(detail)), -EINVAL);
	assert_non_null(strstr(detail, "another request"));
	json_decref(a);
	/* No such request. */
	assert_int_equal(decide(f, 0, "req-9", false, NOW, &st), -ENOENT);
	assert_int_equal(decide(f, 0, "bad id", false, NOW, &st), -ENOENT);
	/* None of that counted as a decision. */
	assert_int_equal(decide(f, 0, "req-1", true, NOW, &st), 0);
	assert_int_equal(st, STORE_APPROVED);
	assert_int_equal(f->m.calls, 1);
}

static void
test_expiry(void **state)
{
	struct fx *f = *state;
	enum store_state st = STORE_PENDING;

	submit_as(f, CALLER, "req-1", NULL, 0, true);
	submit_as(f, CALLER, "req-2", NULL, 0, true);
	assert_int_equal(decide(f, 0, "req-1", true, NOW + 900, &st), -ESTALE);
	assert_int_equal(st, STORE_EXPIRED);
	assert_int_equal(state_of(f, "req-1"), STORE_EXPIRED);
	assert_int_equal(f->m.calls, 0);
	assert_int_equal(requests_expire_due(f->rq, f->st, NOW + 899), 0);
	assert_int_equal(state_of(f, "req-2"), STORE_PENDING);
	assert_int_equal(requests_expire_due(f->rq, f->st, NOW + 900), 0);
	assert_int_equal(state_of(f, "req-2"), STORE_EXPIRED);
	assert_int_equal(events(f, "req-2", "expire"), 1);
	assert_int_equal(decide(f, 0, "req-2", false, NOW + 1, &st), -ESTALE);
}

static void
test_mint_deferred_and_failed(void **state)
{
	struct fx *f = *state;
	enum store_state st = STORE_PENDING;
	struct store_request r;

	submit_as(f, CALLER, "req-1", NULL, 0, true);
	f->m.result = -EAGAIN;
	assert_int_equal(decide(f, 0, "req-1", true, NOW + 1, &st), 0);
	assert_int_equal(st, STORE_PENDING);
	assert_int_equal(state_of(f, "req-1"), STORE_PENDING);
	assert_int_equal(events(f, "req-1", "mint_deferred"), 1);
	f->m.result = 0;
	assert_int_equal(decide(f, 1, "req-1", true, NOW + 2, &st), 0);
	assert_int_equal(st, STORE_APPROVED);
	assert_int_equal(f->m.calls, 2);
	assert_int_equal(f->m.last_approvals, 2);

	submit_as(f, CALLER, "req-2", NULL, 0, true);
	f->m.result = -EPERM;
	assert_int_equal(decide(f, 0, "req-2", true, NOW + 1, &st), 0);
	assert_int_equal(st, STORE_FAILED);
	memset(&r, 0, sizeof(r));
	assert_int_equal(store_request_get(f->st, "req-2", &r), 0);
	assert_int_equal(r.state, STORE_FAILED);
	assert_non_null(strstr(r.state_reason, "approval_refused"));
	store_request_clear(&r);
	assert_int_equal(events(f, "req-2", "mint_failed"), 1);
	assert_int_equal(decide(f, 1, "req-2", true, NOW + 2, &st), -ESTALE);
}

struct racer {
	struct fx *f;
	int who;
	struct store *st;        /* opened before the threads start */
	json_t *approval;
	int rc;
};

/* No cmocka asserts here: they may only fail on the main thread. */
static void *
race(void *arg)
{
	struct racer *x = arg;
	enum store_state s = STORE_PENDING;
	char detail[256];

	x->rc = requests_decide(x->f->rq, x->st, &x->f->u[x->who], "req-1", true, "go",
	    x->approval, NOW + 1, &s, detail, sizeof(detail));
	return NULL;
}

static void
test_mint_once_concurrently(void **state)
{
	struct fx *f = *state;
	struct racer a = { f, 0, NULL, NULL, 1 }, b = { f, 1, NULL, NULL, 1 };
	pthread_t ta, tb;

	submit_as(f, CALLER, "req-1", NULL, 0, true);
	a.approval = approval_for(f, 0, 0, "req-1");
	b.approval = approval_for(f, 1, 1, "req-1");
	assert_int_equal(store_open(f->db, &a.st), 0);
	assert_int_equal(store_open(f->db, &b.st), 0);
	f->m.delay_ms = 300;
	assert_int_equal(pthread_create(&ta, NULL, race, &a), 0);
	assert_int_equal(pthread_create(&tb, NULL, race, &b), 0);
	pthread_join(ta, NULL);
	pthread_join(tb, NULL);
	store_close(a.st);
	store_close(b.st);
	json_decref(a.approval);
	json_decref(b.approval);
	/* One of them met the quorum and minted; the other came too late. */
	if (!((a.rc == 0 && b.rc == -ESTALE) || (a.rc == -ESTALE && b.rc == 0))) {
		fail_msg("decisions returned %d and %d", a.rc, b.rc);
	}
	assert_int_equal(f->m.calls, 1);
	assert_int_equal(state_of(f, "req-1"), STORE_APPROVED);
	assert_int_equal(events(f, "req-1", "mint"), 1);
}

static void
test_recover_and_cancel(void **state)
{
	struct fx *f = *state;
	struct store_request r;

	submit_as(f, CALLER, "req-1", NULL, 0, true);
	submit_as(f, CALLER, "req-2", NULL, 0, true);
	assert_int_equal(store_request_transition(f->st, "req-1", STORE_PENDING, STORE_MINTING,
	    NULL, NOW), 0);
	assert_int_equal(requests_recover(f->rq, f->st, NOW + 5), 0);
	memset(&r, 0, sizeof(r));
	assert_int_equal(store_request_get(f->st, "req-1", &r), 0);
	assert_int_equal(r.state, STORE_FAILED);
	assert_non_null(strstr(r.state_reason, "stopped while minting"));
	store_request_clear(&r);
	assert_int_equal(state_of(f, "req-2"), STORE_PENDING);
	assert_int_equal(requests_cancel(f->rq, f->st, CALLER, "req-2", NOW), 0);
	assert_int_equal(state_of(f, "req-2"), STORE_CANCELLED);
	assert_int_equal(requests_cancel(f->rq, f->st, CALLER, "req-2", NOW), -ESTALE);
	assert_int_equal(requests_cancel(f->rq, f->st, CALLER, "req-9", NOW), -ENOENT);
	assert_int_equal(events(f, "req-2", "cancel"), 1);
}

struct waiter {
	struct requests *rq;
	uint64_t gen;
	uint64_t waited_ms;
};

static uint64_t
mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void *
wait_thread(void *arg)
{
	struct waiter *w = arg;
	uint64_t t0 = mono_ms();

	requests_wait_change(w->rq, w->gen, t0 + 10000);
	w->waited_ms = mono_ms() - t0;
	return NULL;
}

static void
test_wait_change(void **state)
{
	struct fx *f = *state;
	struct waiter w = { f->rq, 0, 0 };
	uint64_t t0;
	pthread_t t;

	/* A deadline passes. */
	t0 = mono_ms();
	requests_wait_change(f->rq, requests_generation(f->rq), t0 + 200);
	assert_true(mono_ms() - t0 >= 150);
	/* A seen generation that is already old returns at once. */
	t0 = mono_ms();
	requests_wait_change(f->rq, requests_generation(f->rq) + 5, t0 + 5000);
	assert_true(mono_ms() - t0 < 1000);
	/* A submission wakes a waiter. */
	w.gen = requests_generation(f->rq);
	assert_int_equal(pthread_create(&t, NULL, wait_thread, &w), 0);
	usleep(100 * 1000);
	submit_as(f, CALLER, "req-1", NULL, 0, true);
	pthread_join(t, NULL);
	assert_true(w.waited_ms < 5000);
}

/* --- the attestd client, against a fake attestd ----------------------------- */

struct fake_attestd {
	unsigned status;
	const char *reply;
	char last_body[4096];
	char last_path[128];
};

static enum MHD_Result
attestd_handler(void *cls, struct MHD_Connection *mc, const char *url, const char *method,
    const char *version, const char *data, size_t *size, void **req)
{
	struct fake_attestd *fa = cls;
	struct MHD_Response *r;
	enum MHD_Result ret;
	static int marker;

	(void)version;
	(void)method;
	if (*req == NULL) {
		*req = &marker;
		fa->last_body[0] = '\0';
		return MHD_YES;
	}
	if (*size > 0) {
		size_t n = strlen(fa->last_body);

		if (n + *size < sizeof(fa->last_body)) {
			memcpy(fa->last_body + n, data, *size);
			fa->last_body[n + *size] = '\0';
		}
		*size = 0;
		return MHD_YES;
	}
	(void)snprintf(fa->last_path, sizeof(fa->last_path), "%s", url);
	r = MHD_create_response_from_buffer(strlen(fa->reply), (void *)fa->reply,
	    MHD_RESPMEM_MUST_COPY);
	ret = MHD_queue_response(mc, fa->status, r);
	MHD_destroy_response(r);
	return ret;
}

static void
test_attestd_client(void **state)
{
	struct fx *f = *state;
	struct fake_attestd fa = { 200, "", "", "" };
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct requests_attestd *a = NULL, *gone = NULL;
	struct approval_request ar;
	struct MHD_Daemon *d;
	char path[PATH_MAX + 32], missing[PATH_MAX + 32], detail[256], *tok = NULL;
	json_t *approvals = json_pack("[{s:s}]", "approver", "alice"), *sent;
	int fd;

	(void)snprintf(path, sizeof(path), "%s/attestd.sock", f->dir);
	(void)snprintf(missing, sizeof(missing), "%s/none.sock", f->dir);
	assert_true(strlen(path) < sizeof(sa.sun_path));
	memcpy(sa.sun_path, path, strlen(path) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(fd, 8), 0);
	d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD, 0, NULL, NULL, attestd_handler, &fa,
	    MHD_OPTION_LISTEN_SOCKET, fd, MHD_OPTION_END);
	assert_non_null(d);
	assert_int_equal(requests_attestd_new(path, &a), 0);
	memset(&ar, 0, sizeof(ar));
	(void)snprintf(ar.request, sizeof(ar.request), "req-1");
	(void)snprintf(ar.aud, sizeof(ar.aud), "proxy");
	(void)snprintf(ar.vm, sizeof(ar.vm), "vm-1");
	(void)snprintf(ar.launch_digest, sizeof(ar.launch_digest), "%s", LAUNCH);
	(void)snprintf(ar.op, sizeof(ar.op), "fs.write");
	(void)snprintf(ar.args_sha256, sizeof(ar.args_sha256), "%s", LAUNCH);
	ar.ttl = 300;

	fa.reply = "{\"token\":\"w1.minted\",\"jti\":\"x\",\"exp\":1,\"iat\":1}";
	assert_int_equal(requests_attestd_mint(a, &ar, approvals, &tok, detail, sizeof(detail)), 0);
	assert_string_equal(tok, "w1.minted");
	free(tok);
	tok = NULL;
	assert_string_equal(fa.last_path, "/v1/mint");
	sent = json_loads(fa.last_body, 0, NULL);
	assert_non_null(sent);
	assert_string_equal(cjson_get_str(sent, "request"), "req-1");
	assert_string_equal(cjson_get_str(sent, "args_sha256"), LAUNCH);
	assert_int_equal(json_integer_value(json_object_get(sent, "uses")), 1);
	assert_int_equal(json_integer_value(json_object_get(sent, "ttl")), 300);
	assert_int_equal(json_array_size(json_object_get(sent, "approvals")), 1);
	assert_null(json_object_get(sent, "args"));
	json_decref(sent);

	fa.status = 403;
	fa.reply = "{\"error\":\"quorum_not_met\",\"detail\":\"1 of 2\"}";
	assert_int_equal(requests_attestd_mint(a, &ar, approvals, &tok, detail, sizeof(detail)),
	    -EAGAIN);
	fa.reply = "{\"error\":\"approval_refused\",\"detail\":\"bad signature\"}";
	assert_int_equal(requests_attestd_mint(a, &ar, approvals, &tok, detail, sizeof(detail)),
	    -EPERM);
	assert_non_null(strstr(detail, "approval_refused"));
	assert_non_null(strstr(detail, "bad signature"));
	fa.status = 200;
	fa.reply = "{\"jti\":\"x\"}";
	assert_int_equal(requests_attestd_mint(a, &ar, approvals, &tok, detail, sizeof(detail)),
	    -EPROTO);
	fa.reply = "not json";
	assert_true(requests_attestd_mint(a, &ar, approvals, &tok, detail, sizeof(detail)) < 0);
	assert_null(tok);

	fa.reply = "{\"vm\":\"vm-1\",\"launch_digest\":\"" LAUNCH "\"}";
	assert_int_equal(requests_attestd_knows_launch(a, "vm-1", LAUNCH), 1);
	assert_string_equal(fa.last_path, "/v1/launches/vm-1");
	assert_int_equal(requests_attestd_knows_launch(a, "vm-1",
	    "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff"), 0);
	/* A recent answer is reused: attestd is not asked again at once. */
	fa.status = 404;
	fa.reply = "{\"error\":\"unknown_launch\",\"detail\":\"\"}";
	fa.last_path[0] = '\0';
	assert_int_equal(requests_attestd_knows_launch(a, "vm-1", LAUNCH), 1);
	assert_string_equal(fa.last_path, "");
	requests_attestd_free(a);
	a = NULL;
	assert_int_equal(requests_attestd_new(path, &a), 0);
	assert_int_equal(requests_attestd_knows_launch(a, "vm-1", LAUNCH), 0);
	assert_string_equal(fa.last_path, "/v1/launches/vm-1");
	fa.reply = "{\"error\":\"not_found\",\"detail\":\"no such path\"}";
	assert_int_equal(requests_attestd_knows_launch(a, "vm-2", LAUNCH), -ENOTSUP);
	/* An error is not remembered. */
	assert_int_equal(requests_attestd_knows_launch(a, "vm-2", LAUNCH), -ENOTSUP);
	assert_int_equal(requests_attestd_knows_launch(a, "bad vm", LAUNCH), 0);

	assert_int_equal(requests_attestd_new(missing, &gone), 0);
	assert_true(requests_attestd_mint(gone, &ar, approvals, &tok, detail, sizeof(detail)) < 0);
	assert_non_null(strstr(detail, "cannot reach attestd"));
	assert_true(requests_attestd_knows_launch(gone, "vm-1", LAUNCH) < 0);
	assert_int_equal(requests_attestd_new("", &gone), -EINVAL);
	requests_attestd_free(gone);
	requests_attestd_free(a);
	json_decref(approvals);
	MHD_stop_daemon(d);
}

/* --- notify: the background thread ----------------------------------------- */

static bool
wait_for_file(const char *path, int seconds)
{
	int i;

	for (i = 0; i < seconds * 10; i++) {
		if (access(path, F_OK) == 0) {
			usleep(200 * 1000);   /* let the writer finish */
			return true;
		}
		usleep(100 * 1000);
	}
	return false;
}

static void
test_notify_thread(void **state)
{
	struct fx *f = *state;
	struct settings *cfg = NULL;
	struct requests *rq = NULL;
	struct notify *n = NULL;
	struct store_request r;
	char text[10 * PATH_MAX], err[256], out[PATH_MAX + 32], env[PATH_MAX + 32], fds[PATH_MAX + 32];
	char line[512];
	json_t *j;
	FILE *fp;
	int64_t now = (int64_t)time(NULL);
	int count = 0;

	(void)snprintf(out, sizeof(out), "%s/summary.json", f->dir);
	(void)snprintf(env, sizeof(env), "%s/env.txt", f->dir);
	(void)snprintf(fds, sizeof(fds), "%s/fds.txt", f->dir);
	/* The command fails the first time (retried after 5 s), then records
	 * its input, its environment and its open descriptors. */
	(void)snprintf(text, sizeof(text),
	    "{\"public_url\":\"https://approver.example:8443\","
	    "\"notify\":{\"command\":[\"/bin/sh\",\"-c\","
	    "\"if [ -e %s/once ]; then cat >%s.tmp; /usr/bin/env >%s; ls /proc/self/fd >%s; "
	    "mv %s.tmp %s; else : >%s/once; exit 3; fi\"],\"webhook\":\"\"}}",
	    f->dir, out, env, fds, out, out, f->dir);
	assert_int_equal(settings_parse(f->dir, text, strlen(text), &cfg, err, sizeof(err)), 0);
	assert_int_equal(requests_new(cfg, fake_mint, &f->m, &rq), 0);
	/* A request left minting by a crash; one that expires in a moment;
	 * one to notify about. */
	{
		struct requests_submit sub;
		char *b = body_for("req-crash", NULL);
		bool created;

		memset(&sub, 0, sizeof(sub));
		assert_int_equal(parse_text(b, &sub), 0);
		assert_int_equal(requests_submit(rq, f->st, CALLER, &sub, now, NULL, &created), 0);
		requests_submit_clear(&sub);
		free(b);
		assert_int_equal(store_request_transition(f->st, "req-crash", STORE_PENDING,
		    STORE_MINTING, NULL, now), 0);
		b = body_for("req-short", "{\"expires\":1}");
		memset(&sub, 0, sizeof(sub));
		assert_int_equal(parse_text(b, &sub), 0);
		sub.expires = now + 1;
		assert_int_equal(requests_submit(rq, f->st, CALLER, &sub, now, NULL, &created), 0);
		requests_submit_clear(&sub);
		free(b);
		b = body_for("req-n", "{\"reason\":\"please\"}");
		memset(&sub, 0, sizeof(sub));
		assert_int_equal(parse_text(b, &sub), 0);
		assert_int_equal(requests_submit(rq, f->st, CALLER, &sub, now, NULL, &created), 0);
		requests_submit_clear(&sub);
		free(b);
	}
	/* req-short is due before the thread's first turn: expired, never
	 * told about. req-n's first attempt fails and is retried 5 s later. */
	sleep(2);
	assert_int_equal(notify_start(cfg, rq, &n), 0);
	assert_true(wait_for_file(out, 20));
	notify_stop(n);

	j = json_load_file(out, 0, NULL);
	assert_non_null(j);
	assert_string_equal(cjson_get_str(j, "id"), "req-n");
	assert_string_equal(cjson_get_str(j, "url"), "https://approver.example:8443/requests/req-n");
	assert_string_equal(cjson_get_str(j, "reason"), "please");
	assert_string_equal(cjson_get_str(j, "op"), "fs.write");
	assert_int_equal(strlen(cjson_get_str(j, "digest")), 64);
	assert_int_equal(json_object_size(j), 8);
	json_decref(j);
	/* A clean environment: PATH (and what sh itself sets), nothing else. */
	fp = fopen(env, "re");
	assert_non_null(fp);
	while (fgets(line, sizeof(line), fp) != NULL) {
		if (strncmp(line, "PATH=", 5) == 0) {
			assert_string_equal(line, "PATH=/usr/bin:/bin\n");
			count++;
		} else if (strncmp(line, "PWD=", 4) != 0 && strncmp(line, "SHLVL=", 6) != 0 &&
		    strncmp(line, "_=", 2) != 0 && strncmp(line, "OLDPWD=", 7) != 0) {
			fail_msg("unexpected environment: %s", line);
		}
	}
	fclose(fp);
	assert_int_equal(count, 1);
	/* Descriptors 0, 1, 2 and the one ls reads the folder with. */
	fp = fopen(fds, "re");
	assert_non_null(fp);
	count = 0;
	while (fgets(line, sizeof(line), fp) != NULL) {
		count++;
	}
	fclose(fp);
	assert_true(count <= 4);
	/* Recovered and expired by the thread. */
	memset(&r, 0, sizeof(r));
	assert_int_equal(store_request_get(f->st, "req-crash", &r), 0);
	assert_int_equal(r.state, STORE_FAILED);
	store_request_clear(&r);
	assert_int_equal(store_request_get(f->st, "req-short", &r), 0);
	assert_int_equal(r.state, STORE_EXPIRED);
	store_request_clear(&r);
	assert_int_equal(store_request_get(f->st, "req-n", &r), 0);
	assert_int_equal(r.state, STORE_PENDING);
	store_request_clear(&r);
	requests_free(rq);
	settings_free(cfg);
}

static void
test_notify_summary(void **state)
{
	struct fx *f = *state;
	struct store_request r;
	json_t *j;

	submit_as(f, CALLER, "req-1", NULL, 0, true);
	memset(&r, 0, sizeof(r));
	assert_int_equal(store_request_get(f->st, "req-1", &r), 0);
	(void)snprintf(f->cfg->public_url, sizeof(f->cfg->public_url), "https://a.example/");
	j = notify_summary(f->cfg, &r);
	assert_non_null(j);
	assert_string_equal(cjson_get_str(j, "url"), "https://a.example/requests/req-1");
	assert_string_equal(cjson_get_str(j, "digest"), r.digest);
	assert_int_equal(json_integer_value(json_object_get(j, "expires")), r.expires);
	json_decref(j);
	store_request_clear(&r);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_adversarial),
		cmocka_unit_test_setup_teardown(test_submit_idempotent, setup, teardown),
		cmocka_unit_test_setup_teardown(test_max_pending, setup, teardown),
		cmocka_unit_test_setup_teardown(test_quorum_one_and_pickup, setup, teardown),
		cmocka_unit_test_setup_teardown(test_quorum_two_of_three, setup, teardown),
		cmocka_unit_test_setup_teardown(test_quorum_per_op, setup, teardown),
		cmocka_unit_test_setup_teardown(test_deny_vetoes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_owner_and_disabled, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_approvals, setup, teardown),
		cmocka_unit_test_setup_teardown(test_expiry, setup, teardown),
		cmocka_unit_test_setup_teardown(test_mint_deferred_and_failed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_mint_once_concurrently, setup, teardown),
		cmocka_unit_test_setup_teardown(test_recover_and_cancel, setup, teardown),
		cmocka_unit_test_setup_teardown(test_wait_change, setup, teardown),
		cmocka_unit_test_setup_teardown(test_attestd_client, setup, teardown),
		cmocka_unit_test_setup_teardown(test_notify_summary, setup, teardown),
		cmocka_unit_test_setup_teardown(test_notify_thread, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
