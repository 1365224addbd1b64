/* Unit tests for vmhost/proxy.c: request parsing (adversarial frames),
 * decisions against an in-memory envelope (allow runs, never and bounds
 * refuse with the rule, budgets, unknown tools, path escapes), gating with
 * a mocked sink and real tokens through the real verifier with a mocked
 * key source and a real replay store (right token runs; other arguments,
 * VM, launch digest, audience, an expired or a used token are refused,
 * also after a "restart" on the same store), narrowing by drop (never a
 * widening, also while a gated call waits), the audit trail, and the
 * channel itself over a socketpair (malformed and oversized frames, the
 * cut-off, requests in flight, the rate limit). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "audit.h"
#include "approval.h"
#include "cjson.h"
#include "envelope.h"
#include "frame.h"
#include "parse.h"
#include "replay.h"
#include "token.h"
#include "verifier.h"
#include "../../vmhost/gate.h"
#include "../../vmhost/proxy.h"
#include "../../vmhost/tools.h"

#define VM_ID      "vm-7f3a"
#define DIGEST     "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
#define OTHER_DIG  "ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100"
#define KEY_FILL   0x42
#define EPOCH      7

#define ENV_DEFAULT \
	"{\"fs.read\":\"allow\"," \
	"\"fs.write\":{\"level\":\"allow\",\"paths\":[\"/out/\"],\"budget\":3}," \
	"\"exec\":{\"level\":\"allow\",\"argv\":[[\"echo\"],[\"true\"]]}}"
#define ENV_GATED \
	"{\"fs.read\":\"allow\",\"fs.write\":\"ask\"}"

enum mock_mode {
	MOCK_GOOD = 1,
	MOCK_OTHER_ARGS,
	MOCK_OTHER_VM,
	MOCK_OTHER_LAUNCH,
	MOCK_OTHER_OP,
	MOCK_OTHER_AUD,
	MOCK_EXPIRED,
	MOCK_OTHER_REQUEST,
	MOCK_NO_APPROVERS,
	MOCK_FIXED,         /* return fixed_token as it is */
	MOCK_DENY,
	MOCK_TIMEOUT,
	MOCK_BLOCK,         /* wait until cancelled */
};

struct fx;

struct mock_gate {
	struct fx *f;
	enum mock_mode mode;
	char id[GATE_ID_MAX + 1];
	char op[TOKEN_OP_MAX + 1];
	char args_sha256[65];
	char *last_token;
	char *fixed_token;
	const char *drop_during_wait;   /* a drop frame run while "the human decides" */
	json_t *drop_reply;
	atomic_int submits;
	int64_t requested_ttl;
};

struct fx {
	char root[PATH_MAX];
	char ws[PATH_MAX];
	char audit_path[PATH_MAX];
	char db_path[PATH_MAX];
	struct tools *tools;
	struct audit *audit;
	struct replay *replay;
	struct verifier *v;
	struct gate *gate;
	struct mock_gate mock;
	struct proxy *p;
	int64_t now;
	/* A channel test's server, stopped by teardown if a test failed
	 * while it ran. */
	pthread_t server;
	bool serving;
	int client;
};

static void pathf(char *buf, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void
pathf(char *buf, size_t n, const char *fmt, ...)
{
	va_list ap;
	int k;

	va_start(ap, fmt);
	k = vsnprintf(buf, n, fmt, ap);
	va_end(ap);
	assert_true(k > 0 && (size_t)k < n);
}

/* --- the key source and minting ------------------------------------------- */

static int
mock_get_key(void *ctx, const char *aud, uint32_t gen, uint64_t epoch, struct verifier_key *ret)
{
	int64_t now = (int64_t)time(NULL);

	(void)ctx;
	if (gen != 1 || epoch != EPOCH) {
		return -ENOKEY;
	}
	/* One key per audience, as attestd derives them. */
	memset(ret->key, strcmp(aud, "proxy") == 0 ? KEY_FILL : 0x11, TOKEN_KEY_LEN);
	ret->not_before = now - 1000;
	ret->epoch_end = now + 1000;
	ret->not_after = now + 5000;
	return 0;
}

/* Tokens name an approver unless a case wants one that names none. */
static bool mint_no_approvers;

static char *
mint(const char *aud, const char *vm, const char *launch, const char *op, const char *args_sha,
    int64_t iat, int64_t exp, const char *request)
{
	struct token_kid k;
	struct token_claims c;
	uint8_t key[TOKEN_KEY_LEN];
	char *s = NULL;

	memset(&k, 0, sizeof(k));
	memset(&c, 0, sizeof(c));
	k.gen = 1;
	k.epoch = EPOCH;
	k.mode = TOKEN_MODE_EPOCH;
	strcpy(k.aud, aud);
	assert_int_equal(token_new_jti(c.jti), 0);
	c.iat = iat;
	c.exp = exp;
	strcpy(c.aud, aud);
	strcpy(c.vm, vm);
	strcpy(c.launch, launch);
	strcpy(c.op, op);
	strcpy(c.args, args_sha);
	c.uses = 1;
	strcpy(c.request, request);
	if (!mint_no_approvers) {
		strcpy(c.approvers[0], "alice");
		c.n_approvers = 1;
	}
	memset(key, strcmp(aud, "proxy") == 0 ? KEY_FILL : 0x11, sizeof(key));
	assert_int_equal(token_encode(&k, &c, key, &s), 0);
	return s;
}

/* --- the mocked approval sink --------------------------------------------- */

static int
mock_submit(void *ctx, const struct gate_request *r)
{
	struct mock_gate *m = ctx;

	atomic_fetch_add(&m->submits, 1);
	if (m->mode == MOCK_BLOCK) {
		return 0;   /* on worker threads: no assertions, no shared writes */
	}
	assert_string_equal(r->vm, VM_ID);
	assert_string_equal(r->launch_digest, DIGEST);
	snprintf(m->id, sizeof(m->id), "%s", r->id);
	snprintf(m->op, sizeof(m->op), "%s", r->op);
	memcpy(m->args_sha256, r->args_sha256, sizeof(m->args_sha256));
	m->requested_ttl = r->requested_ttl;
	{
		/* The digest the request carries is that of its canonical args. */
		uint8_t h[32];
		char hex[65];

		assert_int_equal(cjson_sha256(r->args, h), 0);
		format_hex(h, sizeof(h), hex);
		assert_string_equal(hex, r->args_sha256);
	}
	return 0;
}

static int
mock_wait(void *ctx, const char *id, uint64_t deadline_ms, const atomic_bool *cancel,
    char **ret_token, char **ret_reason)
{
	struct mock_gate *m = ctx;
	int64_t now = (int64_t)time(NULL);
	char *tok = NULL;

	(void)deadline_ms;
	if (m->mode != MOCK_BLOCK) {
		assert_string_equal(id, m->id);
	}
	if (m->drop_during_wait != NULL) {
		json_t *fr = NULL;

		assert_int_equal(cjson_parse(m->drop_during_wait, strlen(m->drop_during_wait), 65536,
		    &fr), 0);
		assert_int_equal(proxy_handle(m->f->p, fr, NULL, NULL, &m->drop_reply), 0);
		json_decref(fr);
	}
	switch (m->mode) {
	case MOCK_GOOD: {
		tok = mint("proxy", VM_ID, DIGEST, m->op, m->args_sha256, now, now + 300, id);
		break;
	}
	case MOCK_OTHER_ARGS: {
		tok = mint("proxy", VM_ID, DIGEST, m->op, OTHER_DIG, now, now + 300, id);
		break;
	}
	case MOCK_OTHER_VM: {
		tok = mint("proxy", "vm-other", DIGEST, m->op, m->args_sha256, now, now + 300, id);
		break;
	}
	case MOCK_OTHER_LAUNCH: {
		tok = mint("proxy", VM_ID, OTHER_DIG, m->op, m->args_sha256, now, now + 300, id);
		break;
	}
	case MOCK_OTHER_OP: {
		tok = mint("proxy", VM_ID, DIGEST, "fs.read", m->args_sha256, now, now + 300, id);
		break;
	}
	case MOCK_OTHER_AUD: {
		tok = mint("vmhost", VM_ID, DIGEST, m->op, m->args_sha256, now, now + 300, id);
		break;
	}
	case MOCK_EXPIRED: {
		tok = mint("proxy", VM_ID, DIGEST, m->op, m->args_sha256, now - 20, now - 10, id);
		break;
	}
	case MOCK_OTHER_REQUEST: {
		tok = mint("proxy", VM_ID, DIGEST, m->op, m->args_sha256, now, now + 300,
		    "another-request");
		break;
	}
	case MOCK_NO_APPROVERS: {
		mint_no_approvers = true;
		tok = mint("proxy", VM_ID, DIGEST, m->op, m->args_sha256, now, now + 300, id);
		mint_no_approvers = false;
		break;
	}
	case MOCK_FIXED: {
		tok = strdup(m->fixed_token);
		break;
	}
	case MOCK_DENY: {
		*ret_reason = strdup("not today");
		return -EACCES;
	}
	case MOCK_TIMEOUT: {
		return -ETIMEDOUT;
	}
	case MOCK_BLOCK: {
		while (!atomic_load(cancel)) {
			struct timespec ts = { 0, 5000000 };

			nanosleep(&ts, NULL);
		}
		return -ECANCELED;
	}
	default: {
		return -EIO;
	}
	}
	assert_non_null(tok);
	free(m->last_token);
	m->last_token = strdup(tok);
	*ret_token = tok;
	return 0;
}

/* --- fixture ------------------------------------------------------------- */

static void
make_proxy(struct fx *f, const char *env_json, const struct proxy_config *extra, bool sink)
{
	static const struct gate_ops ops = { mock_submit, mock_wait, NULL, NULL };
	struct verifier_source src = { mock_get_key, NULL, NULL };
	struct proxy_config pc;
	struct envelope *e = NULL;
	char err[256];
	json_t *j = NULL;

	assert_int_equal(cjson_parse(env_json, strlen(env_json), 65536, &j), 0);
	assert_int_equal(envelope_parse(j, &e, err, sizeof(err)), 0);
	json_decref(j);
	assert_int_equal(audit_open(f->audit_path, &f->audit), 0);
	assert_int_equal(replay_open(f->db_path, &f->replay), 0);
	assert_int_equal(verifier_new_with_source(&src, "proxy", &f->v), 0);
	verifier_set_replay(f->v, f->replay);
	f->mock.f = f;
	assert_int_equal(gate_new(&ops, &f->mock, &f->gate), 0);
	if (extra != NULL) {
		pc = *extra;
	} else {
		memset(&pc, 0, sizeof(pc));
	}
	pc.vm_id = VM_ID;
	pc.launch_digest = DIGEST;
	pc.envelope = e;
	pc.tools = f->tools;
	pc.audit = f->audit;
	pc.verifier = f->v;
	pc.gate = sink ? f->gate : NULL;
	assert_int_equal(proxy_new(&pc, &f->p), 0);
}

static void
drop_proxy(struct fx *f)
{
	proxy_free(f->p);
	f->p = NULL;
	gate_free(f->gate);
	f->gate = NULL;
	verifier_free(f->v);
	f->v = NULL;
	replay_close(f->replay);
	f->replay = NULL;
	audit_close(f->audit);
	f->audit = NULL;
}

static int
setup(void **state)
{
	struct tools_config tc = { NULL, 0, 0, 0 };
	const char *tmp = getenv("TMPDIR");
	struct fx *f = calloc(1, sizeof(*f));
	char p[PATH_MAX];

	assert_non_null(f);
	pathf(f->root, sizeof(f->root), "%s/test-proxy.XXXXXX", tmp != NULL ? tmp : "/tmp");
	assert_non_null(mkdtemp(f->root));
	pathf(f->ws, sizeof(f->ws), "%s/ws", f->root);
	assert_int_equal(mkdir(f->ws, 0700), 0);
	pathf(p, sizeof(p), "%s/out", f->ws);
	assert_int_equal(mkdir(p, 0700), 0);
	pathf(f->audit_path, sizeof(f->audit_path), "%s/audit.log", f->root);
	pathf(f->db_path, sizeof(f->db_path), "%s/used-tokens.db", f->root);
	tc.workspace = f->ws;
	assert_int_equal(tools_new(&tc, &f->tools), 0);
	f->mock.mode = MOCK_GOOD;
	atomic_init(&f->mock.submits, 0);
	f->client = -1;
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;
	char cmd[PATH_MAX + 16];

	if (f->serving) {
		if (f->client >= 0) {
			(void)close(f->client);
		}
		(void)pthread_join(f->server, NULL);
	}
	drop_proxy(f);
	tools_free(f->tools);
	free(f->mock.last_token);
	free(f->mock.fixed_token);
	json_decref(f->mock.drop_reply);
	pathf(cmd, sizeof(cmd), "rm -rf '%s'", f->root);
	assert_int_equal(system(cmd), 0);
	free(f);
	return 0;
}

/* --- helpers -------------------------------------------------------------- */

struct interim {
	int n;
	char request[GATE_ID_MAX + 1];
};

static void
on_interim(void *ctx, const json_t *frame)
{
	struct interim *in = ctx;

	assert_true(json_is_true(json_object_get(frame, "pending")));
	snprintf(in->request, sizeof(in->request), "%s",
	    json_string_value(json_object_get(frame, "request")));
	in->n++;
}

static json_t *
handle(struct fx *f, const char *frame_json, struct interim *in)
{
	json_t *fr = NULL, *reply = NULL;

	assert_int_equal(cjson_parse(frame_json, strlen(frame_json), 65536, &fr), 0);
	assert_int_equal(proxy_handle(f->p, fr, in != NULL ? on_interim : NULL, in, &reply), 0);
	json_decref(fr);
	assert_non_null(reply);
	return reply;
}

/* The reply's error code, or NULL for ok; the reply is freed. */
static char last_detail[PROXY_DETAIL_MAX + 1];

static const char *
outcome(json_t *reply)
{
	static char code[64];
	const char *e = json_string_value(json_object_get(reply, "error"));

	last_detail[0] = '\0';
	if (json_is_true(json_object_get(reply, "ok"))) {
		assert_null(e);
		json_decref(reply);
		return NULL;
	}
	assert_true(json_is_false(json_object_get(reply, "ok")));
	assert_non_null(e);
	snprintf(code, sizeof(code), "%s", e);
	snprintf(last_detail, sizeof(last_detail), "%s",
	    json_string_value(json_object_get(reply, "detail")));
	if (getenv("PROXY_TEST_VERBOSE") != NULL) {
		print_message("reply: %s: %s\n", code, last_detail);
	}
	json_decref(reply);
	return code;
}

static const char *
call(struct fx *f, const char *frame_json)
{
	return outcome(handle(f, frame_json, NULL));
}

static bool
ws_exists(struct fx *f, const char *leaf)
{
	char p[PATH_MAX];
	struct stat st;

	pathf(p, sizeof(p), "%s/%s", f->ws, leaf);
	return lstat(p, &st) == 0;
}

/* The audit log's events, in order, separated by spaces. */
static void
audit_events(struct fx *f, char *out, size_t n)
{
	FILE *fp = fopen(f->audit_path, "re");
	char line[65536];

	out[0] = '\0';
	assert_non_null(fp);
	while (fgets(line, sizeof(line), fp) != NULL) {
		json_t *j = json_loads(line, 0, NULL);

		assert_non_null(j);
		assert_string_equal(json_string_value(json_object_get(j, "vm")), VM_ID);
		if (out[0] != '\0') {
			strncat(out, " ", n - strlen(out) - 1);
		}
		strncat(out, json_string_value(json_object_get(j, "event")), n - strlen(out) - 1);
		json_decref(j);
	}
	fclose(fp);
}

static uint64_t
audit_count(struct fx *f)
{
	uint64_t n = 0, bad = 0;
	const char *why = NULL;

	assert_int_equal(audit_verify(f->audit_path, &n, &bad, &why), 0);
	return n;
}

/* --- parsing -------------------------------------------------------------- */

static void
test_parse(void **state)
{
	static const struct {
		const char *frame;
		int ok;
		uint64_t id;
	} cases[] = {
		{ "{\"id\":1,\"op\":\"envelope\"}", 1, 1 },
		{ "{\"id\":9007199254740992,\"op\":\"envelope\"}", 1, 9007199254740992ULL },
		{ "{\"id\":9007199254740993,\"op\":\"envelope\"}", 0, 0 },
		{ "{\"id\":0,\"op\":\"envelope\"}", 0, 0 },
		{ "{\"id\":-1,\"op\":\"envelope\"}", 0, 0 },
		{ "{\"id\":\"1\",\"op\":\"envelope\"}", 0, 0 },
		{ "{\"op\":\"envelope\"}", 0, 0 },
		{ "{\"id\":2}", 0, 2 },
		{ "{\"id\":2,\"op\":\"exec\"}", 0, 2 },
		{ "{\"id\":2,\"op\":7}", 0, 2 },
		{ "{\"id\":3,\"op\":\"envelope\",\"x\":1}", 0, 3 },
		{ "{\"id\":4,\"op\":\"call\",\"tool\":\"fs.read\",\"args\":{}}", 1, 4 },
		{ "{\"id\":4,\"op\":\"call\",\"tool\":\"fs.read\",\"args\":{},\"reason\":\"r\"}", 1, 4 },
		{ "{\"id\":4,\"op\":\"call\",\"tool\":\"fs.read\"}", 0, 4 },
		{ "{\"id\":4,\"op\":\"call\",\"tool\":\"fs.read\",\"args\":[]}", 0, 4 },
		{ "{\"id\":4,\"op\":\"call\",\"args\":{}}", 0, 4 },
		{ "{\"id\":4,\"op\":\"call\",\"tool\":\"\",\"args\":{}}", 0, 4 },
		{ "{\"id\":4,\"op\":\"call\",\"tool\":\"a b\",\"args\":{}}", 0, 4 },
		{ "{\"id\":4,\"op\":\"call\",\"tool\":\"-x\",\"args\":{}}", 0, 4 },
		{ "{\"id\":4,\"op\":\"call\",\"tool\":1,\"args\":{}}", 0, 4 },
		{ "{\"id\":4,\"op\":\"call\",\"tool\":\"fs.read\",\"args\":{},\"reason\":1}", 0, 4 },
		{ "{\"id\":4,\"op\":\"call\",\"tool\":\"fs.read\",\"args\":{},\"envelope\":{}}", 0, 4 },
		{ "{\"id\":5,\"op\":\"drop\",\"envelope\":{}}", 1, 5 },
		{ "{\"id\":5,\"op\":\"drop\"}", 0, 5 },
		{ "{\"id\":5,\"op\":\"drop\",\"envelope\":\"never\"}", 0, 5 },
		{ "{\"id\":5,\"op\":\"drop\",\"envelope\":{},\"tool\":\"x\"}", 0, 5 },
	};
	struct proxy_request rq;
	char detail[PROXY_DETAIL_MAX];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		json_t *j = json_loads(cases[i].frame, 0, NULL);
		int r;

		assert_non_null(j);
		detail[0] = '\0';
		r = proxy_parse_request(j, &rq, detail, sizeof(detail));
		if (cases[i].ok) {
			assert_int_equal(r, 0);
			assert_int_equal(rq.id, cases[i].id);
		} else {
			assert_int_equal(r, -EINVAL);
			assert_true(detail[0] != '\0');
		}
		assert_int_equal(proxy_request_id(j), cases[i].id);
		json_decref(j);
	}
	{
		/* A reason of 1025 bytes. */
		char *big = malloc(PROXY_REASON_MAX + 2);
		json_t *j;

		memset(big, 'r', PROXY_REASON_MAX + 1);
		big[PROXY_REASON_MAX + 1] = '\0';
		j = json_pack("{s:i, s:s, s:s, s:{}, s:s}", "id", 1, "op", "call", "tool", "fs.read",
		    "args", "reason", big);
		assert_int_equal(proxy_parse_request(j, &rq, detail, sizeof(detail)), -EINVAL);
		json_decref(j);
		big[PROXY_REASON_MAX] = '\0';
		j = json_pack("{s:i, s:s, s:s, s:{}, s:s}", "id", 1, "op", "call", "tool", "fs.read",
		    "args", "reason", big);
		assert_int_equal(proxy_parse_request(j, &rq, detail, sizeof(detail)), 0);
		json_decref(j);
		free(big);
	}
	/* An unknown key is echoed as printable ASCII only. */
	{
		json_t *j = json_pack("{s:i, s:s, s:i}", "id", 1, "op", "envelope", "a\"\x01\xc3\xa9", 1);

		assert_int_equal(proxy_parse_request(j, &rq, detail, sizeof(detail)), -EINVAL);
		assert_non_null(strstr(detail, "a???"));
		json_decref(j);
	}
	assert_int_equal(proxy_parse_request(NULL, &rq, detail, sizeof(detail)), -EINVAL);
}

static void
test_bad_request_replies(void **state)
{
	struct fx *f = *state;
	json_t *r;

	make_proxy(f, ENV_DEFAULT, NULL, true);
	r = handle(f, "{\"id\":12,\"op\":\"call\",\"tool\":\"fs.read\",\"args\":{},\"x\":1}", NULL);
	assert_int_equal(json_integer_value(json_object_get(r, "id")), 12);
	assert_string_equal(outcome(r), "bad_request");
	r = handle(f, "{\"op\":\"call\"}", NULL);
	assert_int_equal(json_integer_value(json_object_get(r, "id")), 0);
	assert_string_equal(outcome(r), "bad_request");
	/* Bad arguments for a known tool. */
	assert_string_equal(call(f, "{\"id\":1,\"op\":\"call\",\"tool\":\"fs.read\",\"args\":"
	    "{\"path\":\"/x\",\"follow\":true}}"), "bad_request");
	assert_string_equal(call(f, "{\"id\":1,\"op\":\"call\",\"tool\":\"fs.read\",\"args\":"
	    "{\"path\":\"relative\"}}"), "bad_request");
	assert_string_equal(call(f, "{\"id\":1,\"op\":\"call\",\"tool\":\"fs.delete\",\"args\":"
	    "{\"path\":\"/x\"}}"), "unknown_tool");
}

/* --- decisions ------------------------------------------------------------ */

static void
test_allow_executes(void **state)
{
	struct fx *f = *state;
	char ev[1024];
	json_t *r;

	make_proxy(f, ENV_DEFAULT, NULL, true);
	assert_null(call(f, "{\"id\":1,\"op\":\"call\",\"tool\":\"fs.write\",\"args\":"
	    "{\"path\":\"/out/notes.txt\",\"data\":\"hello\"}}"));
	assert_true(ws_exists(f, "out/notes.txt"));
	r = handle(f, "{\"id\":2,\"op\":\"call\",\"tool\":\"fs.read\",\"args\":"
	    "{\"path\":\"/out/../out/notes.txt\"},\"reason\":\"check\"}", NULL);
	assert_int_equal(json_integer_value(json_object_get(r, "id")), 2);
	assert_string_equal(json_string_value(json_object_get(json_object_get(r, "result"), "text")),
	    "hello");
	assert_null(outcome(r));
	r = handle(f, "{\"id\":3,\"op\":\"call\",\"tool\":\"exec\",\"args\":"
	    "{\"argv\":[\"echo\",\"hi\"]}}", NULL);
	assert_string_equal(json_string_value(json_object_get(json_object_get(r, "result"),
	    "stdout")), "hi\n");
	assert_null(outcome(r));
	audit_events(f, ev, sizeof(ev));
	assert_string_equal(ev, "allowed executed allowed executed allowed executed");
	assert_int_equal(audit_count(f), 6);
	/* The allowed record carries the rule and the digest of the normal
	 * form of the arguments. */
	{
		FILE *fp = fopen(f->audit_path, "re");
		char line[4096], want[65];
		uint8_t h[32];
		json_t *j, *args = json_pack("{s:s}", "path", "/out/notes.txt");

		assert_non_null(fgets(line, sizeof(line), fp));
		assert_non_null(fgets(line, sizeof(line), fp));
		assert_non_null(fgets(line, sizeof(line), fp));
		fclose(fp);
		j = json_loads(line, 0, NULL);
		assert_string_equal(json_string_value(json_object_get(j, "event")), "allowed");
		assert_string_equal(json_string_value(json_object_get(j, "tool")), "fs.read");
		assert_string_equal(json_string_value(json_object_get(j, "rule")), "fs.read: allow");
		assert_int_equal(cjson_sha256(args, h), 0);
		format_hex(h, sizeof(h), want);
		assert_string_equal(json_string_value(json_object_get(j, "args_sha256")), want);
		json_decref(j);
		json_decref(args);
	}
}

static void
test_refusals(void **state)
{
	struct fx *f = *state;
	char ev[2048];

	make_proxy(f, ENV_DEFAULT, NULL, true);
	/* Not in the envelope: never. */
	assert_string_equal(call(f, "{\"id\":1,\"op\":\"call\",\"tool\":\"fs.list\",\"args\":"
	    "{\"path\":\"/\"}}"), "denied");
	assert_non_null(strstr(last_detail, "fs.list"));
	/* Outside the path bound. */
	assert_string_equal(call(f, "{\"id\":2,\"op\":\"call\",\"tool\":\"fs.write\",\"args\":"
	    "{\"path\":\"/x.txt\",\"data\":\"x\"}}"), "denied");
	assert_non_null(strstr(last_detail, "/out/"));
	assert_false(ws_exists(f, "x.txt"));
	/* ".." out of the bound, and out of the workspace. */
	assert_string_equal(call(f, "{\"id\":3,\"op\":\"call\",\"tool\":\"fs.write\",\"args\":"
	    "{\"path\":\"/out/../x.txt\",\"data\":\"x\"}}"), "denied");
	assert_string_equal(call(f, "{\"id\":4,\"op\":\"call\",\"tool\":\"fs.read\",\"args\":"
	    "{\"path\":\"/../../etc/passwd\"}}"), "denied");
	assert_non_null(strstr(last_detail, "leaves the workspace"));
	/* A link inside the workspace is refused at the open. */
	{
		char p[PATH_MAX];

		pathf(p, sizeof(p), "%s/out/etc", f->ws);
		assert_int_equal(symlink("/etc", p), 0);
	}
	assert_string_equal(call(f, "{\"id\":5,\"op\":\"call\",\"tool\":\"fs.read\",\"args\":"
	    "{\"path\":\"/out/etc/passwd\"}}"), "denied");
	assert_non_null(strstr(last_detail, "symbolic link"));
	/* An argv the allowlist does not have. */
	assert_string_equal(call(f, "{\"id\":6,\"op\":\"call\",\"tool\":\"exec\",\"args\":"
	    "{\"argv\":[\"sh\",\"-c\",\"echo pwned\"]}}"), "denied");
	assert_string_equal(call(f, "{\"id\":6,\"op\":\"call\",\"tool\":\"exec\",\"args\":"
	    "{\"argv\":[\"/bin/echo\"]}}"), "denied");
	/* The budget of three writes (one spent below on a refused path? no:
	 * refusals cost nothing). */
	assert_null(call(f, "{\"id\":7,\"op\":\"call\",\"tool\":\"fs.write\",\"args\":"
	    "{\"path\":\"/out/a\",\"data\":\"1\"}}"));
	assert_null(call(f, "{\"id\":8,\"op\":\"call\",\"tool\":\"fs.write\",\"args\":"
	    "{\"path\":\"/out/b\",\"data\":\"2\"}}"));
	assert_null(call(f, "{\"id\":9,\"op\":\"call\",\"tool\":\"fs.write\",\"args\":"
	    "{\"path\":\"/out/c\",\"data\":\"3\"}}"));
	assert_string_equal(call(f, "{\"id\":10,\"op\":\"call\",\"tool\":\"fs.write\",\"args\":"
	    "{\"path\":\"/out/d\",\"data\":\"4\"}}"), "budget");
	assert_false(ws_exists(f, "out/d"));
	audit_events(f, ev, sizeof(ev));
	/* The link refusal comes from the tool, after the envelope allowed
	 * the call: allowed, then executed with status "denied". */
	assert_string_equal(ev, "denied denied denied denied allowed executed denied denied "
	    "allowed executed allowed executed allowed executed denied");
	assert_int_equal(audit_count(f), 15);
}

static void
test_no_workspace(void **state)
{
	struct fx *f = *state;
	struct tools_config tc = { NULL, 0, 0, 0 };

	tools_free(f->tools);
	assert_int_equal(tools_new(&tc, &f->tools), 0);
	make_proxy(f, ENV_DEFAULT, NULL, true);
	assert_string_equal(call(f, "{\"id\":1,\"op\":\"call\",\"tool\":\"fs.read\",\"args\":"
	    "{\"path\":\"/x\"}}"), "denied");
	assert_non_null(strstr(last_detail, "no workspace"));
}

/* --- gating --------------------------------------------------------------- */

#define GATED_WRITE(id, path) \
	"{\"id\":" #id ",\"op\":\"call\",\"tool\":\"fs.write\",\"args\":{\"path\":\"" path \
	"\",\"data\":\"approved\"},\"reason\":\"save it\"}"

static void
test_gated_runs_with_token(void **state)
{
	struct fx *f = *state;
	struct interim in = { 0, "" };
	char ev[1024];
	json_t *r;

	make_proxy(f, ENV_GATED, NULL, true);
	f->mock.mode = MOCK_GOOD;
	r = handle(f, GATED_WRITE(1, "/g1"), &in);
	assert_null(outcome(r));
	assert_int_equal(in.n, 1);
	assert_string_equal(in.request, f->mock.id);
	assert_string_equal(f->mock.op, "fs.write");
	assert_true(ws_exists(f, "g1"));
	audit_events(f, ev, sizeof(ev));
	assert_string_equal(ev, "gated approved executed");
	{
		/* The approved record names the token's id. */
		FILE *fp = fopen(f->audit_path, "re");
		char line[4096];
		json_t *j;
		struct token *t = NULL;
		struct approval_request ar;
		char digest[TOKEN_HEX256_LEN + 1];

		/* The gated record carries the digest people sign. */
		memset(&ar, 0, sizeof(ar));
		strcpy(ar.request, f->mock.id);
		strcpy(ar.aud, "proxy");
		strcpy(ar.vm, VM_ID);
		strcpy(ar.launch_digest, DIGEST);
		strcpy(ar.op, "fs.write");
		strcpy(ar.args_sha256, f->mock.args_sha256);
		ar.ttl = f->mock.requested_ttl;
		assert_int_equal(approval_digest_hex(&ar, digest), 0);
		assert_non_null(fgets(line, sizeof(line), fp));
		j = json_loads(line, 0, NULL);
		assert_string_equal(json_string_value(json_object_get(j, "event")), "gated");
		assert_string_equal(json_string_value(json_object_get(j, "digest")), digest);
		json_decref(j);
		assert_non_null(fgets(line, sizeof(line), fp));
		fclose(fp);
		j = json_loads(line, 0, NULL);
		assert_int_equal(token_parse(f->mock.last_token, strlen(f->mock.last_token), &t), 0);
		assert_string_equal(json_string_value(json_object_get(j, "jti")), token_claims(t)->jti);
		assert_string_equal(json_string_value(json_object_get(j, "request")), f->mock.id);
		/* ... and the people the token names. */
		assert_int_equal(json_array_size(json_object_get(j, "approvers")), 1);
		assert_string_equal(json_string_value(json_array_get(json_object_get(j, "approvers"),
		    0)), "alice");
		token_free(t);
		json_decref(j);
	}
}

static void
expect_token_refused(struct fx *f, enum mock_mode mode, const char *path_json, const char *leaf,
    const char *reason)
{
	char frame[512];

	f->mock.mode = mode;
	pathf(frame, sizeof(frame), "{\"id\":2,\"op\":\"call\",\"tool\":\"fs.write\",\"args\":"
	    "{\"path\":\"%s\",\"data\":\"approved\"}}", path_json);
	assert_string_equal(call(f, frame), "token_invalid");
	assert_string_equal(last_detail, reason);
	assert_false(ws_exists(f, leaf));
}

static void
test_gated_refused_tokens(void **state)
{
	struct fx *f = *state;
	char ev[2048];

	make_proxy(f, ENV_GATED, NULL, true);
	expect_token_refused(f, MOCK_OTHER_ARGS, "/r1", "r1", "wrong_arguments");
	expect_token_refused(f, MOCK_OTHER_VM, "/r2", "r2", "wrong_vm");
	expect_token_refused(f, MOCK_OTHER_LAUNCH, "/r3", "r3", "wrong_launch");
	expect_token_refused(f, MOCK_OTHER_OP, "/r4", "r4", "wrong_operation");
	expect_token_refused(f, MOCK_OTHER_AUD, "/r5", "r5", "wrong_audience");
	expect_token_refused(f, MOCK_EXPIRED, "/r6", "r6", "expired");
	expect_token_refused(f, MOCK_OTHER_REQUEST, "/r7", "r7", "wrong_request");
	expect_token_refused(f, MOCK_NO_APPROVERS, "/r8", "r8", "no_approvers");
	/* Used once: the same token for the same call a second time. The call
	 * is a new request, so the token answers another one. */
	f->mock.mode = MOCK_GOOD;
	assert_null(call(f, GATED_WRITE(3, "/once")));
	f->mock.fixed_token = strdup(f->mock.last_token);
	assert_int_equal(unlink(strcat(strcpy(ev, f->ws), "/once")), 0);
	expect_token_refused(f, MOCK_FIXED, "/once", "once", "wrong_request");
	audit_events(f, ev, sizeof(ev));
	assert_non_null(strstr(ev, "gated token_refused gated token_refused"));
	/* A restart: a new proxy, verifier and store on the same file. */
	drop_proxy(f);
	make_proxy(f, ENV_GATED, NULL, true);
	expect_token_refused(f, MOCK_FIXED, "/once", "once", "wrong_request");
	assert_true(audit_count(f) > 0);
}

static void
test_gated_deny_timeout_nosink(void **state)
{
	struct fx *f = *state;
	char ev[1024];

	make_proxy(f, ENV_GATED, NULL, true);
	f->mock.mode = MOCK_DENY;
	assert_string_equal(call(f, GATED_WRITE(1, "/d1")), "approval_denied");
	assert_string_equal(last_detail, "not today");
	f->mock.mode = MOCK_TIMEOUT;
	assert_string_equal(call(f, GATED_WRITE(2, "/d2")), "approval_timeout");
	assert_false(ws_exists(f, "d1"));
	assert_false(ws_exists(f, "d2"));
	audit_events(f, ev, sizeof(ev));
	assert_string_equal(ev, "gated approval_denied gated approval_timeout");
	drop_proxy(f);
	make_proxy(f, ENV_GATED, NULL, false);
	assert_string_equal(call(f, GATED_WRITE(3, "/d3")), "approval_denied");
	assert_non_null(strstr(last_detail, "approval"));
}

static void
test_narrowed_while_waiting(void **state)
{
	struct fx *f = *state;

	make_proxy(f, ENV_GATED, NULL, true);
	f->mock.mode = MOCK_GOOD;
	f->mock.drop_during_wait = "{\"id\":99,\"op\":\"drop\",\"envelope\":{\"fs.read\":\"allow\"}}";
	/* The token is good, but by the time it came fs.write was dropped. */
	assert_string_equal(call(f, GATED_WRITE(1, "/late")), "denied");
	assert_false(ws_exists(f, "late"));
	assert_null(outcome(f->mock.drop_reply));
	f->mock.drop_reply = NULL;
}

/* --- drop and envelope ---------------------------------------------------- */

static json_t *
current_envelope(struct fx *f)
{
	json_t *r = handle(f, "{\"id\":50,\"op\":\"envelope\"}", NULL);
	json_t *e = json_incref(json_object_get(json_object_get(r, "result"), "envelope"));

	assert_non_null(e);
	json_decref(r);
	return e;
}

static void
test_drop_narrows_never_widens(void **state)
{
	struct fx *f = *state;
	json_t *e, *r, *want;
	char ev[1024];

	make_proxy(f, ENV_GATED, NULL, true);
	e = current_envelope(f);
	want = json_loads(ENV_GATED, 0, NULL);
	assert_true(json_equal(e, want));
	json_decref(e);
	json_decref(want);

	/* Asking for more: allow where it is ask, and a tool it lacks. */
	r = handle(f, "{\"id\":1,\"op\":\"drop\",\"envelope\":{\"fs.read\":\"allow\","
	    "\"fs.write\":\"allow\",\"fs.list\":\"allow\",\"exec\":{\"level\":\"allow\","
	    "\"argv\":[[\"sh\"]]}}}", NULL);
	want = json_loads(ENV_GATED, 0, NULL);
	assert_true(json_equal(json_object_get(json_object_get(r, "result"), "envelope"), want));
	assert_null(outcome(r));
	e = current_envelope(f);
	assert_true(json_equal(e, want));
	json_decref(e);
	json_decref(want);
	assert_string_equal(call(f, "{\"id\":2,\"op\":\"call\",\"tool\":\"fs.list\",\"args\":"
	    "{\"path\":\"/\"}}"), "denied");
	assert_string_equal(call(f, "{\"id\":3,\"op\":\"call\",\"tool\":\"exec\",\"args\":"
	    "{\"argv\":[\"sh\"]}}"), "denied");

	/* Narrowing: fs.read to a prefix, fs.write dropped. */
	assert_null(call(f, "{\"id\":4,\"op\":\"drop\",\"envelope\":{\"fs.read\":{\"level\":"
	    "\"allow\",\"paths\":[\"/out/\"]}}}"));
	assert_string_equal(call(f, "{\"id\":5,\"op\":\"call\",\"tool\":\"fs.read\",\"args\":"
	    "{\"path\":\"/secret\"}}"), "denied");
	assert_int_equal(atomic_load(&f->mock.submits), 0);
	assert_string_equal(call(f, GATED_WRITE(6, "/w")), "denied");
	assert_int_equal(atomic_load(&f->mock.submits), 0);
	/* And back up is impossible. */
	assert_null(call(f, "{\"id\":7,\"op\":\"drop\",\"envelope\":{\"fs.read\":\"allow\","
	    "\"fs.write\":\"allow\"}}"));
	e = current_envelope(f);
	want = json_loads("{\"fs.read\":{\"level\":\"allow\",\"paths\":[\"/out/\"]}}", 0, NULL);
	assert_true(json_equal(e, want));
	json_decref(e);
	json_decref(want);
	/* A bad envelope is a bad request and changes nothing. */
	assert_string_equal(call(f, "{\"id\":8,\"op\":\"drop\",\"envelope\":{\"fs.read\":\"maybe\"}}"),
	    "bad_request");
	audit_events(f, ev, sizeof(ev));
	assert_string_equal(ev, "dropped denied denied dropped denied denied dropped");
}

static void
test_drop_budget(void **state)
{
	struct fx *f = *state;

	make_proxy(f, ENV_DEFAULT, NULL, true);
	assert_null(call(f, "{\"id\":1,\"op\":\"drop\",\"envelope\":" ENV_DEFAULT "}"));
	assert_null(call(f, "{\"id\":2,\"op\":\"call\",\"tool\":\"fs.write\",\"args\":"
	    "{\"path\":\"/out/a\",\"data\":\"1\"}}"));
	/* Budget 1 asked; the meet keeps the smaller. */
	assert_null(call(f, "{\"id\":3,\"op\":\"drop\",\"envelope\":{\"fs.write\":{\"level\":"
	    "\"allow\",\"budget\":1}}}"));
	assert_null(call(f, "{\"id\":4,\"op\":\"call\",\"tool\":\"fs.write\",\"args\":"
	    "{\"path\":\"/out/b\",\"data\":\"2\"}}"));
	assert_string_equal(call(f, "{\"id\":5,\"op\":\"call\",\"tool\":\"fs.write\",\"args\":"
	    "{\"path\":\"/out/c\",\"data\":\"3\"}}"), "budget");
}

/* --- the channel ---------------------------------------------------------- */

struct server {
	struct proxy *p;
	int fd;
	struct proxy_stats st;
	int r;
};

static void *
serve_main(void *arg)
{
	struct server *s = arg;

	s->r = proxy_serve(s->p, s->fd, &s->st);
	(void)close(s->fd);
	return NULL;
}

static void
start_server(struct fx *f, struct server *s, int *client)
{
	int sv[2];

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	memset(s, 0, sizeof(*s));
	s->p = f->p;
	s->fd = sv[0];
	*client = sv[1];
	f->client = sv[1];
	assert_int_equal(pthread_create(&f->server, NULL, serve_main, s), 0);
	f->serving = true;
}

/* Close the client's end (if still open) and wait for the server. */
static void
stop_server(struct fx *f, bool close_client)
{
	if (close_client) {
		(void)close(f->client);
	}
	f->client = -1;
	f->serving = false;
	assert_int_equal(pthread_join(f->server, NULL), 0);
}

static void
send_json(int fd, const char *s)
{
	json_t *j = json_loads(s, 0, NULL);

	assert_non_null(j);
	assert_int_equal(frame_write(fd, j), 0);
	json_decref(j);
}

static void
send_raw(int fd, const void *buf, size_t n)
{
	assert_int_equal(write(fd, buf, n), (ssize_t)n);
}

static json_t *
recv_frame(int fd)
{
	json_t *j = NULL;

	assert_int_equal(frame_read(fd, FRAME_MAX, &j), 0);
	return j;
}

static void
test_channel_roundtrip(void **state)
{
	struct fx *f = *state;
	struct server s;
	int c;
	json_t *r;

	make_proxy(f, ENV_DEFAULT, NULL, true);
	start_server(f, &s, &c);
	send_json(c, "{\"id\":11,\"op\":\"call\",\"tool\":\"fs.write\",\"args\":"
	    "{\"path\":\"/out/ch\",\"data\":\"via channel\"}}");
	r = recv_frame(c);
	assert_int_equal(json_integer_value(json_object_get(r, "id")), 11);
	assert_null(outcome(r));
	send_json(c, "{\"id\":12,\"op\":\"envelope\"}");
	r = recv_frame(c);
	assert_int_equal(json_integer_value(json_object_get(r, "id")), 12);
	assert_null(outcome(r));
	stop_server(f, true);
	assert_int_equal(s.r, 0);
	assert_int_equal(s.st.end, PROXY_END_EOF);
	assert_int_equal(s.st.frames, 2);
	assert_true(ws_exists(f, "out/ch"));
}

static void
test_channel_malformed_cut_off(void **state)
{
	struct fx *f = *state;
	struct server s;
	int c, i;
	char b;

	make_proxy(f, ENV_DEFAULT, NULL, true);
	start_server(f, &s, &c);
	for (i = 0; i < PROXY_STRIKES_MAX; i++) {
		/* Alternate: bytes that are not JSON, and a request without an id. */
		if (i % 2 == 0) {
			send_raw(c, "\0\0\0\5{{{{{", 9);
		} else {
			send_json(c, "{\"op\":\"envelope\"}");
		}
	}
	for (i = 0; i < PROXY_STRIKES_MAX; i++) {
		json_t *r = recv_frame(c);

		assert_int_equal(json_integer_value(json_object_get(r, "id")), 0);
		assert_string_equal(outcome(r), "bad_request");
	}
	/* Then the channel is closed. */
	assert_int_equal(read(c, &b, 1), 0);
	stop_server(f, true);
	assert_int_equal(s.st.end, PROXY_END_CUT_MALFORMED);
	assert_int_equal(s.st.malformed, PROXY_STRIKES_MAX);
}

static void
test_channel_oversized(void **state)
{
	struct fx *f = *state;
	struct server s;
	json_t *r;
	int c;
	char b;

	make_proxy(f, ENV_DEFAULT, NULL, true);
	start_server(f, &s, &c);
	send_json(c, "{\"id\":1,\"op\":\"envelope\"}");
	r = recv_frame(c);
	assert_null(outcome(r));
	send_raw(c, "\0\1\0\1", 4);   /* 65537 bytes announced */
	r = recv_frame(c);
	assert_int_equal(json_integer_value(json_object_get(r, "id")), 0);
	assert_string_equal(outcome(r), "too_large");
	assert_int_equal(read(c, &b, 1), 0);
	stop_server(f, true);
	assert_int_equal(s.st.end, PROXY_END_CUT_OVERSIZED);
}

static void
test_channel_in_flight_and_duplicates(void **state)
{
	struct fx *f = *state;
	struct server s;
	int c, i, pending = 0;
	char frame[256];
	json_t *r;

	make_proxy(f, ENV_GATED, NULL, true);
	f->mock.mode = MOCK_BLOCK;
	start_server(f, &s, &c);
	for (i = 1; i <= PROXY_IN_FLIGHT_MAX; i++) {
		pathf(frame, sizeof(frame), "{\"id\":%d,\"op\":\"call\",\"tool\":\"fs.write\","
		    "\"args\":{\"path\":\"/p%d\",\"data\":\"x\"}}", i, i);
		send_json(c, frame);
	}
	/* Eight pending frames, one per gated call. */
	while (pending < PROXY_IN_FLIGHT_MAX) {
		r = recv_frame(c);
		assert_true(json_is_true(json_object_get(r, "pending")));
		json_decref(r);
		pending++;
	}
	/* The ninth is busy; an id in flight again is a bad request. */
	send_json(c, "{\"id\":100,\"op\":\"envelope\"}");
	r = recv_frame(c);
	assert_int_equal(json_integer_value(json_object_get(r, "id")), 100);
	assert_string_equal(outcome(r), "busy");
	send_json(c, "{\"id\":3,\"op\":\"envelope\"}");
	r = recv_frame(c);
	assert_int_equal(json_integer_value(json_object_get(r, "id")), 3);
	assert_string_equal(outcome(r), "bad_request");
	/* Closing the channel cancels the waits: serve returns. */
	stop_server(f, true);
	assert_int_equal(s.st.end, PROXY_END_EOF);
	assert_int_equal(s.st.busy, 1);
}

static void
test_channel_rate_limit(void **state)
{
	struct fx *f = *state;
	struct proxy_config pc;
	struct server s;
	int c, i, busy = 0, ok = 0;

	memset(&pc, 0, sizeof(pc));
	pc.rate_per_sec = 2;
	pc.rate_burst = 5;
	make_proxy(f, ENV_DEFAULT, &pc, true);
	start_server(f, &s, &c);
	for (i = 1; i <= 20; i++) {
		char frame[64];
		json_t *r;

		pathf(frame, sizeof(frame), "{\"id\":%d,\"op\":\"envelope\"}", i);
		send_json(c, frame);
		r = recv_frame(c);   /* one at a time: never more than one in flight */
		if (outcome(r) == NULL) {
			ok++;
		} else {
			busy++;
		}
	}
	stop_server(f, true);
	print_message("rate 2/s, burst 5: %d served, %d busy\n", ok, busy);
	assert_true(ok >= 5 && ok <= 8);
	assert_int_equal(ok + busy, 20);
}

/* --- the control socket: narrowing by policy ------------------------------ */

static json_t *
control(struct fx *f, const char *req_json)
{
	json_t *req = json_loads(req_json, JSON_DECODE_ANY, NULL), *reply = NULL;

	assert_non_null(req);
	assert_int_equal(proxy_control_handle(f->p, req, &reply), 0);
	json_decref(req);
	assert_non_null(reply);
	return reply;
}

static void
test_control_narrow_meet(void **state)
{
	struct fx *f = *state;
	json_t *r, *before, *after, *want;
	char ev[1024];

	make_proxy(f, ENV_DEFAULT, NULL, true);
	/* fs.read to a prefix; fs.write and fs.list asked wider than the VM
	 * has; exec not named (becomes never). */
	r = control(f, "{\"op\":\"narrow\",\"envelope\":{\"fs.read\":{\"level\":\"allow\","
	    "\"paths\":[\"/out/\"]},\"fs.write\":\"allow\",\"fs.list\":\"allow\"}}");
	before = current_envelope(f);
	assert_true(json_equal(json_object_get(r, "envelope"), before));
	assert_null(outcome(r));
	want = json_loads("{\"level\":\"allow\",\"paths\":[\"/out/\"]}", 0, NULL);
	assert_true(json_equal(json_object_get(before, "fs.read"), want));
	json_decref(want);
	assert_string_equal(call(f, "{\"id\":1,\"op\":\"call\",\"tool\":\"fs.read\",\"args\":"
	    "{\"path\":\"/secret\"}}"), "denied");
	assert_string_equal(call(f, "{\"id\":2,\"op\":\"call\",\"tool\":\"fs.list\",\"args\":"
	    "{\"path\":\"/\"}}"), "denied");
	assert_string_equal(call(f, "{\"id\":3,\"op\":\"call\",\"tool\":\"exec\",\"args\":"
	    "{\"argv\":[\"true\"]}}"), "denied");
	/* fs.write kept its bounds: /out/ only. */
	assert_null(call(f, "{\"id\":4,\"op\":\"call\",\"tool\":\"fs.write\",\"args\":"
	    "{\"path\":\"/out/a\",\"data\":\"1\"}}"));
	assert_string_equal(call(f, "{\"id\":5,\"op\":\"call\",\"tool\":\"fs.write\",\"args\":"
	    "{\"path\":\"/b\",\"data\":\"1\"}}"), "denied");

	/* Asking for everything back changes nothing (but the budget spent). */
	json_decref(before);
	before = current_envelope(f);
	r = control(f, "{\"op\":\"narrow\",\"envelope\":{\"fs.read\":\"allow\",\"fs.write\":"
	    "\"allow\",\"fs.list\":\"allow\",\"exec\":{\"level\":\"allow\",\"argv\":[[\"sh\"]]}}}");
	assert_null(outcome(r));
	after = current_envelope(f);
	assert_true(json_equal(before, after));
	json_decref(before);
	json_decref(after);
	assert_string_equal(call(f, "{\"id\":6,\"op\":\"call\",\"tool\":\"exec\",\"args\":"
	    "{\"argv\":[\"sh\"]}}"), "denied");
	audit_events(f, ev, sizeof(ev));
	assert_string_equal(ev, "narrowed denied denied denied allowed executed denied narrowed "
	    "denied");
}

static void
test_control_malformed(void **state)
{
	static const char *const bad[] = {
		"[]",
		"\"narrow\"",
		"{}",
		"{\"op\":\"widen\",\"envelope\":{}}",
		"{\"op\":\"drop\",\"envelope\":{}}",
		"{\"op\":\"narrow\"}",
		"{\"op\":\"narrow\",\"envelope\":[]}",
		"{\"op\":\"narrow\",\"envelope\":{},\"id\":1}",
		"{\"op\":\"narrow\",\"envelope\":{\"fs.read\":\"maybe\"}}",
		"{\"op\":\"narrow\",\"envelope\":{\"fs.read\":{\"level\":\"allow\",\"paths\":[\"rel\"]}}}",
		"{\"op\":1,\"envelope\":{}}",
		NULL,
	};
	struct fx *f = *state;
	json_t *before, *after;
	size_t i;

	make_proxy(f, ENV_DEFAULT, NULL, true);
	before = current_envelope(f);
	for (i = 0; bad[i] != NULL; i++) {
		assert_string_equal(outcome(control(f, bad[i])), "bad_request");
	}
	after = current_envelope(f);
	assert_true(json_equal(before, after));
	json_decref(before);
	json_decref(after);
	assert_int_equal(audit_count(f), 0);
}

static void
test_control_uid(void **state)
{
	(void)state;
	assert_true(proxy_control_uid_ok(1000, 1000));
	assert_true(proxy_control_uid_ok(0, 1000));
	assert_true(proxy_control_uid_ok(0, 0));
	assert_false(proxy_control_uid_ok(1001, 1000));
	assert_false(proxy_control_uid_ok(1000, 0));
}

struct kept {
	int fail;                       /* what on_narrowed returns */
	int calls;
	json_t *last;
};

static int
keep_narrowed(void *ctx, const json_t *envelope)
{
	struct kept *k = ctx;

	k->calls++;
	json_decref(k->last);
	k->last = json_deep_copy(envelope);
	return k->fail;
}

static void
test_control_on_narrowed(void **state)
{
	struct fx *f = *state;
	struct proxy_config pc;
	struct kept k = { 0, 0, NULL };
	json_t *r, *cur;

	memset(&pc, 0, sizeof(pc));
	pc.on_narrowed = keep_narrowed;
	pc.narrowed_ctx = &k;
	make_proxy(f, ENV_DEFAULT, &pc, true);
	assert_null(outcome(control(f, "{\"op\":\"narrow\",\"envelope\":{\"fs.read\":\"allow\","
	    "\"fs.write\":\"allow\"}}")));
	assert_int_equal(k.calls, 1);
	cur = current_envelope(f);
	assert_true(json_equal(k.last, cur));
	json_decref(cur);
	/* The guest's drop is not a policy: not kept. */
	assert_null(call(f, "{\"id\":1,\"op\":\"drop\",\"envelope\":{\"fs.read\":\"allow\"}}"));
	assert_int_equal(k.calls, 1);
	/* Keeping fails: refused as not_kept, yet narrowed all the same. */
	k.fail = -EIO;
	r = control(f, "{\"op\":\"narrow\",\"envelope\":{}}");
	cur = current_envelope(f);
	assert_true(json_equal(json_object_get(r, "envelope"), cur));
	assert_int_equal(json_object_size(cur), 0);
	json_decref(cur);
	assert_string_equal(outcome(r), "not_kept");
	assert_int_equal(k.calls, 2);
	assert_string_equal(call(f, "{\"id\":2,\"op\":\"call\",\"tool\":\"fs.read\",\"args\":"
	    "{\"path\":\"/x\"}}"), "denied");
	json_decref(k.last);
}

static json_t *
control_socket(const char *path, const char *req_json)
{
	json_t *reply = NULL;
	int fd = -1;

	assert_int_equal(proxy_connect(path, 2000, &fd), 0);
	if (req_json != NULL) {
		send_json(fd, req_json);
	}
	assert_int_equal(frame_read(fd, FRAME_MAX, &reply), 0);
	(void)close(fd);
	return reply;
}

static void
test_control_socket(void **state)
{
	struct fx *f = *state;
	struct server s;
	char path[PATH_MAX];
	struct stat st;
	uint8_t junk[8] = { 0, 0, 0, 4, '{', '{', '{', '{' };
	json_t *r;
	int c, lfd = -1, fd = -1;

	make_proxy(f, ENV_DEFAULT, NULL, true);
	pathf(path, sizeof(path), "%s/control.sock", f->root);
	assert_int_equal(proxy_control_listen(path, &lfd), 0);
	assert_int_equal(lstat(path, &st), 0);
	assert_true(S_ISSOCK(st.st_mode));
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(proxy_set_control(f->p, lfd), 0);
	start_server(f, &s, &c);

	r = control_socket(path, "{\"op\":\"narrow\",\"envelope\":{\"fs.read\":\"allow\"}}");
	assert_true(json_is_object(json_object_get(r, "envelope")));
	assert_null(outcome(r));
	/* The guest's channel sees the new envelope. */
	send_json(c, "{\"id\":1,\"op\":\"call\",\"tool\":\"fs.write\",\"args\":"
	    "{\"path\":\"/out/x\",\"data\":\"1\"}}");
	assert_string_equal(outcome(recv_frame(c)), "denied");
	assert_string_equal(outcome(control_socket(path, "{\"op\":\"narrow\"}")), "bad_request");
	/* Not JSON: refused, the loop goes on. */
	assert_int_equal(proxy_connect(path, 2000, &fd), 0);
	send_raw(fd, junk, sizeof(junk));
	assert_string_equal(outcome(recv_frame(fd)), "bad_request");
	(void)close(fd);
	/* A frame over the cap. */
	junk[0] = 0x7f;
	assert_int_equal(proxy_connect(path, 2000, &fd), 0);
	send_raw(fd, junk, 4);
	assert_string_equal(outcome(recv_frame(fd)), "too_large");
	(void)close(fd);
	/* Silence: answered "timeout" within PROXY_CONTROL_MS, while the
	 * guest's channel is still served. */
	assert_int_equal(proxy_connect(path, 2000, &fd), 0);
	send_json(c, "{\"id\":2,\"op\":\"envelope\"}");
	assert_null(outcome(recv_frame(c)));
	assert_string_equal(outcome(recv_frame(fd)), "timeout");
	(void)close(fd);
	stop_server(f, true);
	assert_int_equal(s.r, 0);
	(void)close(lfd);
	(void)unlink(path);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse),
		cmocka_unit_test_setup_teardown(test_bad_request_replies, setup, teardown),
		cmocka_unit_test_setup_teardown(test_allow_executes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refusals, setup, teardown),
		cmocka_unit_test_setup_teardown(test_no_workspace, setup, teardown),
		cmocka_unit_test_setup_teardown(test_gated_runs_with_token, setup, teardown),
		cmocka_unit_test_setup_teardown(test_gated_refused_tokens, setup, teardown),
		cmocka_unit_test_setup_teardown(test_gated_deny_timeout_nosink, setup, teardown),
		cmocka_unit_test_setup_teardown(test_narrowed_while_waiting, setup, teardown),
		cmocka_unit_test_setup_teardown(test_drop_narrows_never_widens, setup, teardown),
		cmocka_unit_test_setup_teardown(test_drop_budget, setup, teardown),
		cmocka_unit_test_setup_teardown(test_channel_roundtrip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_channel_malformed_cut_off, setup, teardown),
		cmocka_unit_test_setup_teardown(test_channel_oversized, setup, teardown),
		cmocka_unit_test_setup_teardown(test_channel_in_flight_and_duplicates, setup, teardown),
		cmocka_unit_test_setup_teardown(test_channel_rate_limit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_control_narrow_meet, setup, teardown),
		cmocka_unit_test_setup_teardown(test_control_malformed, setup, teardown),
		cmocka_unit_test(test_control_uid),
		cmocka_unit_test_setup_teardown(test_control_on_narrowed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_control_socket, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
