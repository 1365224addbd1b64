/* proxy: the enforcing tool proxy (proxy.h, docs/proxy.md). */
#include "proxy.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "approval.h"
#include "cjson.h"
#include "clock.h"
#include "frame.h"
#include "parse.h"
#include "text.h"
#include "token.h"

#define PROXY_READ_CHUNK   65536
#define PROXY_CONNECT_POLL 50    /* ms between connect attempts */
#define PROXY_HDR          4

/* One encoded frame waiting to be written. */
struct outbuf {
	struct outbuf *next;
	size_t len;
	size_t off;
	uint8_t data[];
};

struct job {
	struct job *next;
	uint64_t id;
	json_t *frame;
};

/* A control connection being read (docs/proxy.md, "Narrowing by policy"). */
struct ctl {
	int fd;
	struct frame_reader *rd;
	uint64_t deadline;              /* clock_mono_ms */
};

struct proxy {
	char vm_id[TOKEN_ID_MAX + 1];
	char launch_digest[TOKEN_HEX256_LEN + 1];
	struct tools *tools;
	struct audit *audit;
	struct verifier *verifier;
	struct gate *gate;
	uint32_t approval_timeout_ms;
	int64_t requested_ttl;
	unsigned in_flight_max;
	unsigned rate_per_sec;
	unsigned rate_burst;
	unsigned strikes_max;
	proxy_narrowed_fn *on_narrowed;
	void *narrowed_ctx;

	pthread_mutex_t env_mu;         /* the envelope: check+charge and meet are atomic */
	struct envelope *env;
	pthread_mutex_t audit_mu;
	atomic_bool audit_broken;       /* an append failed: refuse everything */
	pthread_mutex_t ver_mu;         /* the verifier (and its replay store) */

	/* serving: the event loop and the workers */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct job *jobs, *jobs_tail;
	uint64_t in_flight[PROXY_IN_FLIGHT_MAX];
	size_t n_in_flight;
	struct outbuf *outq, *outq_tail;
	size_t outq_bytes;
	bool stopping;
	bool served;
	int wake[2];                    /* workers -> loop: output queued */
	pthread_t workers[PROXY_IN_FLIGHT_MAX];
	size_t n_workers;

	/* the control socket: served by the event loop only */
	int ctl_listen;                 /* borrowed; -1: none */
	struct ctl ctls[PROXY_CONTROL_MAX];
	size_t n_ctls;
};

static uint64_t
mono_us(void)
{
	struct timespec ts;

	(void)clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

const char *
proxy_end_name(enum proxy_end e)
{
	switch (e) {
	case PROXY_END_EOF: {
		return "the channel was closed by the other end";
	}
	case PROXY_END_CUT_MALFORMED: {
		return "cut off: too many malformed frames";
	}
	case PROXY_END_CUT_OVERSIZED: {
		return "cut off: a frame over the size limit";
	}
	case PROXY_END_CUT_AUDIT: {
		return "cut off: the audit log failed";
	}
	case PROXY_END_ERROR: {
		return "the channel failed";
	}
	default: {
		return "unknown";
	}
	}
}

/* --- requests ------------------------------------------------------------- */

uint64_t
proxy_request_id(const json_t *frame)
{
	const json_t *id = json_object_get(frame, "id");
	json_int_t v;

	if (!json_is_integer(id)) {
		return 0;
	}
	v = json_integer_value(id);
	return v >= 1 && (uint64_t)v <= PROXY_ID_MAX ? (uint64_t)v : 0;
}

int
proxy_parse_request(const json_t *frame, struct proxy_request *ret, char *detail,
    size_t detail_len)
{
	static const char *const call_keys[] = { "id", "op", "tool", "args", "reason", NULL };
	static const char *const drop_keys[] = { "id", "op", "envelope", NULL };
	static const char *const env_keys[] = { "id", "op", NULL };
	struct proxy_request rq;
	const char *op, *bad = NULL;
	const json_t *v;

	memset(&rq, 0, sizeof(rq));
	if (!json_is_object(frame)) {
		text_printf(detail, detail_len, "a request is a JSON object");
		return -EINVAL;
	}
	rq.id = proxy_request_id(frame);
	if (rq.id == 0) {
		text_printf(detail, detail_len, "\"id\" must be an integer in 1..2^53");
		return -EINVAL;
	}
	op = json_string_value(json_object_get(frame, "op"));
	if (op == NULL) {
		text_printf(detail, detail_len, "\"op\" must be \"call\", \"drop\" or \"envelope\"");
		return -EINVAL;
	}
	if (strcmp(op, "call") == 0) {
		rq.op = PROXY_OP_CALL;
		if (cjson_only_keys(frame, call_keys, &bad) != 0) {
			goto unknown;
		}
		v = json_object_get(frame, "tool");
		if (!json_is_string(v) || parse_op(json_string_value(v), TOKEN_OP_MAX) != 0) {
			text_printf(detail, detail_len, "\"tool\" must be 1..%d characters of "
			    "[A-Za-z0-9._:/-]", TOKEN_OP_MAX);
			return -EINVAL;
		}
		rq.tool = json_string_value(v);
		rq.args = json_object_get(frame, "args");
		if (!json_is_object(rq.args)) {
			text_printf(detail, detail_len, "\"args\" must be an object");
			return -EINVAL;
		}
		v = json_object_get(frame, "reason");
		rq.reason = "";
		if (v != NULL) {
			if (!json_is_string(v) || json_string_length(v) > PROXY_REASON_MAX ||
			    strlen(json_string_value(v)) != json_string_length(v)) {
				text_printf(detail, detail_len, "\"reason\" must be a string of at most %d "
				    "bytes", PROXY_REASON_MAX);
				return -EINVAL;
			}
			rq.reason = json_string_value(v);
		}
	} else if (strcmp(op, "drop") == 0) {
		rq.op = PROXY_OP_DROP;
		if (cjson_only_keys(frame, drop_keys, &bad) != 0) {
			goto unknown;
		}
		rq.envelope = json_object_get(frame, "envelope");
		if (!json_is_object(rq.envelope)) {
			text_printf(detail, detail_len, "\"envelope\" must be an object");
			return -EINVAL;
		}
	} else if (strcmp(op, "envelope") == 0) {
		rq.op = PROXY_OP_ENVELOPE;
		if (cjson_only_keys(frame, env_keys, &bad) != 0) {
			goto unknown;
		}
	} else {
		text_printf(detail, detail_len, "unknown op; \"op\" must be \"call\", \"drop\" or "
		    "\"envelope\"");
		return -EINVAL;
	}
	*ret = rq;
	return 0;
unknown:
	/* Only the printable ASCII of a key from outside is echoed. */
	{
		char k[65];
		size_t i;

		for (i = 0; bad != NULL && bad[i] != '\0' && i < sizeof(k) - 1; i++) {
			unsigned char c = (unsigned char)bad[i];

			k[i] = c >= 0x20 && c < 0x7f && c != '"' ? (char)c : '?';
		}
		k[i] = '\0';
		text_printf(detail, detail_len, "unknown field \"%s\" for op \"%s\"", k, op);
	}
	return -EINVAL;
}

/* --- replies -------------------------------------------------------------- */

/* At most PROXY_DETAIL_MAX bytes, cut at a UTF-8 character boundary. */
static json_t *
detail_string(const char *s)
{
	json_t *j;

	j = json_stringn(s, text_utf8_cut(s, PROXY_DETAIL_MAX));
	return j != NULL ? j : json_string("");
}

static json_t *
reply_error(uint64_t id, const char *code, const char *detail)
{
	return json_pack("{s:I, s:b, s:s, s:o}", "id", (json_int_t)id, "ok", 0, "error", code,
	    "detail", detail_string(detail != NULL ? detail : ""));
}

static json_t *
reply_ok(uint64_t id, json_t *result /* stolen */)
{
	if (result == NULL) {
		return NULL;
	}
	return json_pack("{s:I, s:b, s:o}", "id", (json_int_t)id, "ok", 1, "result", result);
}

/* --- audit ---------------------------------------------------------------- */

/* Append rec (stolen) with the VM's id. Any failure leaves the proxy
 * refusing everything from then on: a decision that cannot be recorded is
 * not made. */
static int
audit_rec(struct proxy *p, json_t *rec)
{
	int r;

	if (rec == NULL || json_object_set_new(rec, "vm", json_string(p->vm_id)) != 0) {
		json_decref(rec);
		atomic_store(&p->audit_broken, true);
		return -ENOMEM;
	}
	pthread_mutex_lock(&p->audit_mu);
	r = atomic_load(&p->audit_broken) ? -EIO : audit_append(p->audit, rec);
	if (r != 0) {
		atomic_store(&p->audit_broken, true);
	}
	pthread_mutex_unlock(&p->audit_mu);
	json_decref(rec);
	return r;
}

static int
sha256_hex(const json_t *j, char out[TOKEN_HEX256_LEN + 1])
{
	uint8_t h[32];
	int r = cjson_sha256(j, h);

	if (r == 0) {
		format_hex(h, sizeof(h), out);
	}
	return r;
}

/* --- calls ---------------------------------------------------------------- */

struct call {
	struct proxy *p;
	const struct proxy_request *rq;
	const struct tool *tool;
	json_t *args;                   /* normal form */
	char args_sha256[TOKEN_HEX256_LEN + 1];
};

/* The tool's limits from the envelope (exec's timeout and output cap). */
static void
envelope_tool_limits(const struct envelope *e, const struct tool *tool, struct tools_limits *lim)
{
	uint32_t timeout_ms = 0;
	size_t max_output = 0;

	memset(lim, 0, sizeof(*lim));
	if (envelope_limits(e, tool->name, &timeout_ms, &max_output) == 0) {
		lim->timeout_ms = timeout_ms;
		lim->max_output = max_output;
	}
}

/* Under the envelope lock: check again and charge one call. 0 to run, or
 * the error reply's code with the rule in *ret_rule. */
static int
check_and_charge(struct call *c, bool gated, struct tools_limits *lim, const char **ret_code,
    char *rule, size_t rule_len)
{
	struct proxy *p = c->p;
	enum envelope_level level = ENVELOPE_NEVER;
	const char *why = NULL;
	int r;

	pthread_mutex_lock(&p->env_mu);
	r = envelope_check(p->env, c->tool->name, c->args, &level, &why);
	if (r != 0 || level == ENVELOPE_NEVER) {
		text_printf(rule, rule_len, "%s", r != 0 ? "the envelope check failed" :
		    why != NULL ? why : "never");
		*ret_code = "denied";
		r = -EPERM;
		goto out;
	}
	if (level == ENVELOPE_ASK && !gated) {
		r = 1;   /* needs an approval first */
		goto out;
	}
	r = envelope_charge(p->env, c->tool->name);
	if (r != 0) {
		text_printf(rule, rule_len, "%s: the call budget is spent", c->tool->name);
		*ret_code = r == -EDQUOT ? "budget" : "denied";
		r = -EPERM;
		goto out;
	}
	envelope_tool_limits(p->env, c->tool, lim);
	text_printf(rule, rule_len, "%s: %s", c->tool->name, gated ? "ask, approved" : "allow");
	r = 0;
out:
	pthread_mutex_unlock(&p->env_mu);
	return r;
}

static json_t *
refuse(struct call *c, const char *event, const char *code, const char *rule)
{
	(void)audit_rec(c->p, json_pack("{s:s, s:s, s:s, s:s}", "event", event, "tool",
	    c->tool != NULL ? c->tool->name : c->rq->tool, "args_sha256",
	    c->args_sha256[0] != '\0' ? c->args_sha256 : "", "rule", rule));
	return reply_error(c->rq->id, code, rule);
}

/* Run the tool; audit "executed" with the result's digest; the reply. */
static json_t *
execute(struct call *c, const struct tools_limits *lim)
{
	struct tools_error terr = { "tool_failed", "" };
	char res_sha[TOKEN_HEX256_LEN + 1] = "";
	json_t *result = NULL, *reply = NULL, *rec;
	char *enc = NULL;
	size_t len = 0;
	int r;

	r = tools_run(c->p->tools, c->tool, c->args, lim, &result, &terr);
	if (r == 0) {
		(void)sha256_hex(result, res_sha);
		reply = reply_ok(c->rq->id, result);
		result = NULL;
		/* A result that does not fit in one frame is not sent. */
		if (reply == NULL || cjson_dump(reply, &enc, &len) != 0 || len > FRAME_MAX) {
			json_decref(reply);
			terr.code = "too_large";
			(void)snprintf(terr.detail, sizeof(terr.detail), "the result (%zu bytes) does "
			    "not fit in one frame of %d", len, FRAME_MAX);
			reply = NULL;
		}
		free(enc);
	}
	rec = json_pack("{s:s, s:s, s:s, s:s}", "event", "executed", "tool", c->tool->name,
	    "args_sha256", c->args_sha256, "status", reply != NULL ? "ok" : terr.code);
	if (rec != NULL && res_sha[0] != '\0') {
		(void)json_object_set_new(rec, "result_sha256", json_string(res_sha));
	}
	if (rec != NULL && reply == NULL) {
		(void)json_object_set_new(rec, "detail", detail_string(terr.detail));
	}
	(void)audit_rec(c->p, rec);
	if (reply == NULL) {
		reply = reply_error(c->rq->id, terr.code, terr.detail);
	}
	return reply;
}

/* The token's id, for the audit log; "" if it does not parse. */
static void
token_jti(const char *tok, char out[TOKEN_JTI_LEN + 1])
{
	struct token *t = NULL;

	out[0] = '\0';
	if (token_parse(tok, strlen(tok), &t) == 0) {
		memcpy(out, token_claims(t)->jti, TOKEN_JTI_LEN + 1);
		token_free(t);
	}
}

static void
wipe_free(char *s)
{
	if (s != NULL) {
		explicit_bzero(s, strlen(s));
		free(s);
	}
}

/* The approval digest of a gated call (lib/approval.h); "" if the
 * request's fields do not make one. */
static void
approval_digest_for(const struct proxy *p, const struct gate_request *gr,
    char ret[TOKEN_HEX256_LEN + 1])
{
	struct approval_request ar;

	memset(&ar, 0, sizeof(ar));
	ret[0] = '\0';
	if (snprintf(ar.request, sizeof(ar.request), "%s", gr->id) >= (int)sizeof(ar.request) ||
	    snprintf(ar.aud, sizeof(ar.aud), "%s", PROXY_AUDIENCE) >= (int)sizeof(ar.aud) ||
	    snprintf(ar.vm, sizeof(ar.vm), "%s", p->vm_id) >= (int)sizeof(ar.vm) ||
	    snprintf(ar.launch_digest, sizeof(ar.launch_digest), "%s", p->launch_digest) >=
	    (int)sizeof(ar.launch_digest) ||
	    snprintf(ar.op, sizeof(ar.op), "%s", gr->op) >= (int)sizeof(ar.op)) {
		return;
	}
	memcpy(ar.args_sha256, gr->args_sha256, sizeof(ar.args_sha256));
	ar.ttl = gr->requested_ttl;
	if (approval_digest_hex(&ar, ret) != 0) {
		ret[0] = '\0';
	}
}

/* ask: file the approval request, wait, verify the token (consuming its
 * use), check the envelope again, run. */
static int
gated(struct call *c, proxy_interim_fn *interim, void *ctx, json_t **ret)
{
	struct proxy *p = c->p;
	struct gate_request gr;
	struct token_expect ex;
	struct tools_limits lim;
	char rule[PROXY_DETAIL_MAX], jti[TOKEN_JTI_LEN + 1], digest[TOKEN_HEX256_LEN + 1];
	struct token_grant grant;
	json_t *people = NULL;
	size_t i;
	const char *code = "denied", *why = NULL;
	char *tok = NULL, *reason = NULL;
	json_t *pending = NULL;
	int r;

	if (p->gate == NULL) {
		*ret = refuse(c, "denied", "approval_denied", "ask, and this proxy has no approval "
		    "sink (vmhost launch --approval-spool)");
		return 0;
	}
	memset(&grant, 0, sizeof(grant));
	memset(&gr, 0, sizeof(gr));
	if (gate_new_id(gr.id) != 0) {
		*ret = reply_error(c->rq->id, "tool_failed", "no random request id");
		return 0;
	}
	gr.vm = p->vm_id;
	gr.launch_digest = p->launch_digest;
	gr.op = c->tool->name;
	gr.args = c->args;
	memcpy(gr.args_sha256, c->args_sha256, sizeof(gr.args_sha256));
	gr.reason = c->rq->reason;
	gr.requested_ttl = p->requested_ttl;
	gr.created = (int64_t)time(NULL);
	gr.expires = gr.created + (int64_t)(p->approval_timeout_ms / 1000);
	/* The digest people's passkeys will sign, recorded here too: a person
	 * can compare the one their approver page shows with this one, which
	 * the approver service did not compute (docs/approvals.md). */
	approval_digest_for(p, &gr, digest);
	r = audit_rec(p, json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "event", "gated", "tool",
	    c->tool->name, "args_sha256", c->args_sha256, "request", gr.id, "reason",
	    c->rq->reason, "digest", digest));
	if (r != 0) {
		*ret = reply_error(c->rq->id, "tool_failed", "the audit log is unavailable");
		return 0;
	}
	r = gate_submit(p->gate, &gr);
	if (r != 0) {
		(void)audit_rec(p, json_pack("{s:s, s:s, s:s}", "event", "approval_denied",
		    "request", gr.id, "reason", "the request could not be filed"));
		*ret = reply_error(c->rq->id, "approval_denied", "the approval request could not be "
		    "filed");
		return 0;
	}
	pending = json_pack("{s:I, s:b, s:s}", "id", (json_int_t)c->rq->id, "pending", 1,
	    "request", gr.id);
	if (interim != NULL && pending != NULL) {
		interim(ctx, pending);
	}
	json_decref(pending);

	r = gate_wait(p->gate, gr.id, p->approval_timeout_ms, &tok, &reason);
	if (r == -ECANCELED) {
		(void)audit_rec(p, json_pack("{s:s, s:s}", "event", "approval_cancelled",
		    "request", gr.id));
		gate_done(p->gate, gr.id);
		return -ECANCELED;
	}
	if (r == -EACCES) {
		(void)audit_rec(p, json_pack("{s:s, s:s, s:o}", "event", "approval_denied",
		    "request", gr.id, "reason", detail_string(reason)));
		*ret = reply_error(c->rq->id, "approval_denied", reason);
		goto out;
	}
	if (r == -ETIMEDOUT) {
		(void)snprintf(rule, sizeof(rule), "no decision within %u s",
		    p->approval_timeout_ms / 1000);
		(void)audit_rec(p, json_pack("{s:s, s:s}", "event", "approval_timeout",
		    "request", gr.id));
		*ret = reply_error(c->rq->id, "approval_timeout", rule);
		goto out;
	}
	if (r != 0) {
		(void)snprintf(rule, sizeof(rule), "the approval sink failed: %s", strerror(-r));
		(void)audit_rec(p, json_pack("{s:s, s:s, s:s}", "event", "approval_denied",
		    "request", gr.id, "reason", rule));
		*ret = reply_error(c->rq->id, "approval_denied", rule);
		goto out;
	}

	/* The token: bound to exactly this call, and used once, recorded
	 * durably by the verifier's replay store before anything runs. */
	token_jti(tok, jti);
	memset(&ex, 0, sizeof(ex));
	ex.aud = PROXY_AUDIENCE;
	ex.vm = p->vm_id;
	ex.launch = p->launch_digest;
	ex.op = c->tool->name;
	ex.args_sha256 = c->args_sha256;
	ex.args = c->args;
	/* An approval token answers this request, and only people make one. */
	ex.request = gr.id;
	ex.need_approvers = true;
	ex.now = 0;
	ex.skew = PROXY_SKEW_SECONDS;
	pthread_mutex_lock(&p->ver_mu);
	r = verifier_verify(p->verifier, tok, &ex, &grant, &why);
	pthread_mutex_unlock(&p->ver_mu);
	if (r != 0) {
		(void)audit_rec(p, json_pack("{s:s, s:s, s:s, s:s, s:s}", "event", "token_refused",
		    "request", gr.id, "jti", jti, "tool", c->tool->name, "reason",
		    why != NULL ? why : "refused"));
		*ret = reply_error(c->rq->id, "token_invalid", why != NULL ? why : "refused");
		goto out;
	}
	/* Who approved, as attestd verified it: the token names them. */
	people = json_array();
	for (i = 0; people != NULL && i < grant.n_approvers; i++) {
		(void)json_array_append_new(people, json_string(grant.approvers[i]));
	}
	r = audit_rec(p, json_pack("{s:s, s:s, s:s, s:s, s:s, s:o*}", "event", "approved",
	    "request", gr.id, "jti", jti, "tool", c->tool->name, "args_sha256", c->args_sha256,
	    "approvers", people));
	if (r != 0) {
		*ret = reply_error(c->rq->id, "tool_failed", "the audit log is unavailable");
		goto out;
	}
	/* The envelope may have narrowed while a human decided. */
	r = check_and_charge(c, true, &lim, &code, rule, sizeof(rule));
	if (r != 0) {
		*ret = refuse(c, "denied", code, rule);
		goto out;
	}
	*ret = execute(c, &lim);
out:
	wipe_free(tok);
	free(reason);
	gate_done(p->gate, gr.id);
	return 0;
}

static int
handle_call(struct proxy *p, const struct proxy_request *rq, proxy_interim_fn *interim,
    void *ctx, json_t **ret)
{
	struct call c;
	struct tools_error terr = { "bad_request", "" };
	struct tools_limits lim;
	char rule[PROXY_DETAIL_MAX];
	const char *code = "denied";
	json_t *reply = NULL;
	int r;

	memset(&c, 0, sizeof(c));
	c.p = p;
	c.rq = rq;
	c.tool = tools_find(rq->tool);
	if (c.tool == NULL) {
		(void)sha256_hex(rq->args, c.args_sha256);
		(void)snprintf(rule, sizeof(rule), "%s: unknown tool", rq->tool);
		reply = refuse(&c, "denied", "unknown_tool", rule);
		goto out;
	}
	r = tools_prepare(c.tool, rq->args, &c.args, &terr);
	if (r != 0) {
		/* Refused before resolution: the digest of the arguments as sent. */
		(void)sha256_hex(rq->args, c.args_sha256);
		(void)snprintf(rule, sizeof(rule), "%s: %s", c.tool->name, terr.detail);
		reply = strcmp(terr.code, "denied") == 0 ? refuse(&c, "denied", "denied", rule) :
		    reply_error(rq->id, terr.code, rule);
		goto out;
	}
	if (sha256_hex(c.args, c.args_sha256) != 0) {
		reply = reply_error(rq->id, "bad_request", "the arguments have no canonical form");
		goto out;
	}
	r = check_and_charge(&c, false, &lim, &code, rule, sizeof(rule));
	if (r < 0) {
		reply = refuse(&c, "denied", code, rule);
		goto out;
	}
	if (r == 1) {
		r = gated(&c, interim, ctx, &reply);
		if (r != 0) {
			json_decref(c.args);
			return r;
		}
		goto out;
	}
	r = audit_rec(p, json_pack("{s:s, s:s, s:s, s:s}", "event", "allowed", "tool",
	    c.tool->name, "args_sha256", c.args_sha256, "rule", rule));
	if (r != 0) {
		reply = reply_error(rq->id, "tool_failed", "the audit log is unavailable");
		goto out;
	}
	reply = execute(&c, &lim);
out:
	json_decref(c.args);
	if (reply == NULL) {
		return -ENOMEM;
	}
	*ret = reply;
	return 0;
}

/* The meet of the current envelope and want_json, by the guest ("dropped")
 * or by policy ("narrowed"): 0 and the new envelope in *ret_cur; -EINVAL
 * (detail in err) for an envelope that does not parse; -EIO when the audit
 * log cannot record it. */
static int
narrow(struct proxy *p, const json_t *want_json, const char *event, json_t **ret_cur,
    char *err, size_t err_len)
{
	struct envelope *want = NULL, *met = NULL;
	char sha[TOKEN_HEX256_LEN + 1] = "";
	json_t *cur = NULL;
	int r;

	r = envelope_parse(want_json, &want, err, err_len);
	if (r != 0) {
		r = -EINVAL;
		goto out;
	}
	pthread_mutex_lock(&p->env_mu);
	r = envelope_meet(p->env, want, &met);
	/* A meet is below both by construction; checked anyway, because the
	 * one thing this must never do is widen. */
	if (r == 0 && envelope_leq(met, p->env)) {
		envelope_free(p->env);
		p->env = met;
		met = NULL;
		cur = envelope_to_json(p->env);
	} else if (r == 0) {
		r = -EPERM;
	}
	pthread_mutex_unlock(&p->env_mu);
	if (r != 0 || cur == NULL) {
		text_printf(err, err_len, "the envelope could not be narrowed");
		r = r != 0 ? r : -ENOMEM;
		goto out;
	}
	(void)sha256_hex(cur, sha);
	r = audit_rec(p, json_pack("{s:s, s:O, s:s}", "event", event, "envelope", cur,
	    "envelope_sha256", sha));
	if (r != 0) {
		text_printf(err, err_len, "the audit log is unavailable");
		r = -EIO;
		goto out;
	}
	*ret_cur = cur;
	cur = NULL;
out:
	json_decref(cur);
	envelope_free(want);
	envelope_free(met);
	return r;
}

/* drop: the meet of the current envelope and the one asked for. */
static int
handle_drop(struct proxy *p, const struct proxy_request *rq, json_t **ret)
{
	char err[512];
	json_t *cur = NULL, *reply;
	int r;

	r = narrow(p, rq->envelope, "dropped", &cur, err, sizeof(err));
	if (r == 0) {
		reply = reply_ok(rq->id, json_pack("{s:o}", "envelope", cur));
	} else {
		reply = reply_error(rq->id, r == -EIO ? "tool_failed" : "bad_request", err);
	}
	if (reply == NULL) {
		return -ENOMEM;
	}
	*ret = reply;
	return 0;
}

static int
handle_envelope(struct proxy *p, const struct proxy_request *rq, json_t **ret)
{
	json_t *cur, *reply;

	pthread_mutex_lock(&p->env_mu);
	cur = envelope_to_json(p->env);
	pthread_mutex_unlock(&p->env_mu);
	reply = cur != NULL ? reply_ok(rq->id, json_pack("{s:o}", "envelope", cur)) : NULL;
	if (reply == NULL) {
		return -ENOMEM;
	}
	*ret = reply;
	return 0;
}

int
proxy_handle(struct proxy *p, const json_t *frame, proxy_interim_fn *interim, void *ctx,
    json_t **ret)
{
	struct proxy_request rq;
	char detail[PROXY_DETAIL_MAX];
	json_t *reply = NULL;
	int r;

	r = proxy_parse_request(frame, &rq, detail, sizeof(detail));
	if (r != 0) {
		reply = reply_error(proxy_request_id(frame), "bad_request", detail);
		r = reply != NULL ? 0 : -ENOMEM;
		goto out;
	}
	if (atomic_load(&p->audit_broken)) {
		reply = reply_error(rq.id, "tool_failed", "the audit log is unavailable; this proxy "
		    "refuses everything");
		r = reply != NULL ? 0 : -ENOMEM;
		goto out;
	}
	switch (rq.op) {
	case PROXY_OP_CALL: {
		r = handle_call(p, &rq, interim, ctx, &reply);
		break;
	}
	case PROXY_OP_DROP: {
		r = handle_drop(p, &rq, &reply);
		break;
	}
	case PROXY_OP_ENVELOPE: {
		r = handle_envelope(p, &rq, &reply);
		break;
	}
	default: {
		r = -EINVAL;
		break;
	}
	}
out:
	if (r == 0) {
		*ret = reply;
	}
	return r;
}

/* --- life cycle ----------------------------------------------------------- */

int
proxy_new(const struct proxy_config *c, struct proxy **ret)
{
	struct proxy *p;

	if (c == NULL || c->vm_id == NULL || parse_ident(c->vm_id, TOKEN_ID_MAX) != 0 ||
	    c->launch_digest == NULL || strlen(c->launch_digest) != TOKEN_HEX256_LEN ||
	    c->envelope == NULL || c->tools == NULL || c->audit == NULL || c->verifier == NULL) {
		return -EINVAL;
	}
	p = calloc(1, sizeof(*p));
	if (p == NULL) {
		return -ENOMEM;
	}
	memcpy(p->vm_id, c->vm_id, strlen(c->vm_id) + 1);
	memcpy(p->launch_digest, c->launch_digest, TOKEN_HEX256_LEN + 1);
	p->env = c->envelope;
	p->tools = c->tools;
	p->audit = c->audit;
	p->verifier = c->verifier;
	p->gate = c->gate;
	p->approval_timeout_ms = c->approval_timeout_ms != 0 ? c->approval_timeout_ms :
	    GATE_TIMEOUT_DEFAULT_MS;
	p->requested_ttl = c->requested_ttl > 0 ? c->requested_ttl : PROXY_TTL_DEFAULT;
	p->in_flight_max = c->in_flight_max != 0 && c->in_flight_max < PROXY_IN_FLIGHT_MAX ?
	    c->in_flight_max : PROXY_IN_FLIGHT_MAX;
	p->rate_per_sec = c->rate_per_sec != 0 ? c->rate_per_sec : PROXY_RATE_PER_SEC;
	p->rate_burst = c->rate_burst != 0 ? c->rate_burst : PROXY_RATE_BURST;
	p->strikes_max = c->strikes_max != 0 ? c->strikes_max : PROXY_STRIKES_MAX;
	p->on_narrowed = c->on_narrowed;
	p->narrowed_ctx = c->narrowed_ctx;
	atomic_init(&p->audit_broken, false);
	pthread_mutex_init(&p->env_mu, NULL);
	pthread_mutex_init(&p->audit_mu, NULL);
	pthread_mutex_init(&p->ver_mu, NULL);
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->cv, NULL);
	p->wake[0] = p->wake[1] = -1;
	p->ctl_listen = -1;
	*ret = p;
	return 0;
}

static void
outq_clear(struct proxy *p)
{
	while (p->outq != NULL) {
		struct outbuf *o = p->outq;

		p->outq = o->next;
		free(o);
	}
	p->outq_tail = NULL;
	p->outq_bytes = 0;
}

static void
jobs_clear(struct proxy *p)
{
	while (p->jobs != NULL) {
		struct job *j = p->jobs;

		p->jobs = j->next;
		json_decref(j->frame);
		free(j);
	}
	p->jobs_tail = NULL;
}

void
proxy_free(struct proxy *p)
{
	if (p == NULL) {
		return;
	}
	outq_clear(p);
	jobs_clear(p);
	envelope_free(p->env);
	pthread_mutex_destroy(&p->env_mu);
	pthread_mutex_destroy(&p->audit_mu);
	pthread_mutex_destroy(&p->ver_mu);
	pthread_mutex_destroy(&p->mu);
	pthread_cond_destroy(&p->cv);
	free(p);
}

/* --- the channel ---------------------------------------------------------- */

static void
wake_loop(struct proxy *p)
{
	char b = 1;

	/* A full pipe is awake enough: EAGAIN is fine. */
	if (p->wake[1] >= 0 && write(p->wake[1], &b, 1) < 0) {
		return;
	}
}

/* Encode and queue one frame (called with p->mu not held). A frame that
 * cannot be encoded within FRAME_MAX becomes a too_large error. */
static void
enqueue(struct proxy *p, const json_t *frame)
{
	struct outbuf *o;
	char *enc = NULL;
	size_t len = 0;

	if (cjson_dump(frame, &enc, &len) != 0 || len > FRAME_MAX || len == 0) {
		json_t *e = reply_error(proxy_request_id(frame), "too_large",
		    "the reply does not fit in one frame");

		free(enc);
		enc = NULL;
		if (e == NULL || cjson_dump(e, &enc, &len) != 0) {
			json_decref(e);
			return;
		}
		json_decref(e);
	}
	o = malloc(sizeof(*o) + PROXY_HDR + len);
	if (o == NULL) {
		free(enc);
		return;
	}
	o->next = NULL;
	o->len = PROXY_HDR + len;
	o->off = 0;
	o->data[0] = (uint8_t)(len >> 24);
	o->data[1] = (uint8_t)(len >> 16);
	o->data[2] = (uint8_t)(len >> 8);
	o->data[3] = (uint8_t)len;
	memcpy(o->data + PROXY_HDR, enc, len);
	free(enc);
	pthread_mutex_lock(&p->mu);
	if (p->outq_tail != NULL) {
		p->outq_tail->next = o;
	} else {
		p->outq = o;
	}
	p->outq_tail = o;
	p->outq_bytes += o->len;
	pthread_mutex_unlock(&p->mu);
	wake_loop(p);
}

static void
enqueue_error(struct proxy *p, uint64_t id, const char *code, const char *detail)
{
	json_t *e = reply_error(id, code, detail);

	if (e != NULL) {
		enqueue(p, e);
		json_decref(e);
	}
}

static void
interim_enqueue(void *ctx, const json_t *frame)
{
	enqueue(ctx, frame);
}

static void *
worker_main(void *arg)
{
	struct proxy *p = arg;

	for (;;) {
		struct job *j;
		json_t *reply = NULL;
		size_t i;
		int r;

		pthread_mutex_lock(&p->mu);
		while (!p->stopping && p->jobs == NULL) {
			pthread_cond_wait(&p->cv, &p->mu);
		}
		if (p->stopping) {
			pthread_mutex_unlock(&p->mu);
			break;
		}
		j = p->jobs;
		p->jobs = j->next;
		if (p->jobs == NULL) {
			p->jobs_tail = NULL;
		}
		pthread_mutex_unlock(&p->mu);

		r = proxy_handle(p, j->frame, interim_enqueue, p, &reply);
		/* The slot is free before the reply leaves: a client that sends
		 * its next request on seeing a reply never finds it taken. */
		pthread_mutex_lock(&p->mu);
		for (i = 0; i < p->n_in_flight; i++) {
			if (p->in_flight[i] == j->id) {
				p->in_flight[i] = p->in_flight[--p->n_in_flight];
				break;
			}
		}
		pthread_mutex_unlock(&p->mu);
		if (r == 0) {
			enqueue(p, reply);
			json_decref(reply);
		} else if (r != -ECANCELED) {
			enqueue_error(p, j->id, "tool_failed", "out of memory");
		}
		wake_loop(p);
		json_decref(j->frame);
		free(j);
	}
	return NULL;
}

struct loop {
	struct proxy *p;
	struct proxy_stats st;
	uint64_t strikes;
	double tokens;                  /* the rate bucket */
	uint64_t last_us;
	bool cut;
};

static void
strike(struct loop *l, enum proxy_end why)
{
	l->st.malformed++;
	l->strikes++;
	if (l->strikes >= l->p->strikes_max && !l->cut) {
		l->cut = true;
		l->st.end = why;
	}
}

static bool
rate_take(struct loop *l)
{
	uint64_t now = mono_us();

	l->tokens += (double)(now - l->last_us) * l->p->rate_per_sec / 1e6;
	if (l->tokens > l->p->rate_burst) {
		l->tokens = l->p->rate_burst;
	}
	l->last_us = now;
	if (l->tokens < 1.0) {
		return false;
	}
	l->tokens -= 1.0;
	return true;
}

/* One frame from the guest (stolen): checked, then handed to a worker. */
static void
dispatch(struct loop *l, json_t *frame)
{
	struct proxy *p = l->p;
	struct proxy_request rq;
	char detail[PROXY_DETAIL_MAX];
	struct job *j = NULL;
	size_t i;

	l->st.frames++;
	if (proxy_parse_request(frame, &rq, detail, sizeof(detail)) != 0) {
		enqueue_error(p, proxy_request_id(frame), "bad_request", detail);
		strike(l, PROXY_END_CUT_MALFORMED);
		goto out;
	}
	if (!rate_take(l)) {
		(void)snprintf(detail, sizeof(detail), "over the rate limit (%u requests per second, "
		    "bursts of %u)", p->rate_per_sec, p->rate_burst);
		enqueue_error(p, rq.id, "busy", detail);
		l->st.busy++;
		goto out;
	}
	pthread_mutex_lock(&p->mu);
	for (i = 0; i < p->n_in_flight; i++) {
		if (p->in_flight[i] == rq.id) {
			break;
		}
	}
	if (i < p->n_in_flight) {
		pthread_mutex_unlock(&p->mu);
		enqueue_error(p, rq.id, "bad_request", "a request with this id is in flight");
		strike(l, PROXY_END_CUT_MALFORMED);
		goto out;
	}
	if (p->n_in_flight >= p->in_flight_max) {
		pthread_mutex_unlock(&p->mu);
		(void)snprintf(detail, sizeof(detail), "%u requests in flight", p->in_flight_max);
		enqueue_error(p, rq.id, "busy", detail);
		l->st.busy++;
		goto out;
	}
	j = calloc(1, sizeof(*j));
	if (j == NULL) {
		pthread_mutex_unlock(&p->mu);
		enqueue_error(p, rq.id, "busy", "out of memory");
		goto out;
	}
	j->id = rq.id;
	j->frame = frame;
	frame = NULL;
	p->in_flight[p->n_in_flight++] = j->id;
	if (p->jobs_tail != NULL) {
		p->jobs_tail->next = j;
	} else {
		p->jobs = j;
	}
	p->jobs_tail = j;
	pthread_cond_signal(&p->cv);
	pthread_mutex_unlock(&p->mu);
	l->st.calls++;
out:
	json_decref(frame);
}

/* Write what the socket takes. 0, or the write error. */
static int
flush_out(struct proxy *p, int fd)
{
	int r = 0;

	pthread_mutex_lock(&p->mu);
	while (p->outq != NULL) {
		struct outbuf *o = p->outq;
		ssize_t k = send(fd, o->data + o->off, o->len - o->off, MSG_NOSIGNAL | MSG_DONTWAIT);

		if (k < 0 && errno == ENOTSOCK) {
			k = write(fd, o->data + o->off, o->len - o->off);
		}
		if (k < 0 && errno == EINTR) {
			continue;
		}
		if (k < 0) {
			r = errno == EAGAIN ? 0 : -errno;
			break;
		}
		o->off += (size_t)k;
		p->outq_bytes -= (size_t)k;
		if (o->off == o->len) {
			p->outq = o->next;
			if (p->outq == NULL) {
				p->outq_tail = NULL;
			}
			free(o);
		}
	}
	pthread_mutex_unlock(&p->mu);
	return r;
}

static int
start_workers(struct proxy *p)
{
	size_t i;
	int r;

	for (i = 0; i < p->in_flight_max; i++) {
		r = pthread_create(&p->workers[i], NULL, worker_main, p);
		if (r != 0) {
			return -r;
		}
		p->n_workers++;
	}
	return 0;
}

static void
stop_workers(struct proxy *p)
{
	size_t i;

	pthread_mutex_lock(&p->mu);
	p->stopping = true;
	pthread_cond_broadcast(&p->cv);
	pthread_mutex_unlock(&p->mu);
	if (p->gate != NULL) {
		gate_cancel(p->gate);
	}
	for (i = 0; i < p->n_workers; i++) {
		(void)pthread_join(p->workers[i], NULL);
	}
	p->n_workers = 0;
}

/* --- the control socket ---------------------------------------------------- */

bool
proxy_control_uid_ok(uid_t peer, uid_t self)
{
	return peer == self || peer == 0;
}

int
proxy_control_listen(const char *path, int *ret_fd)
{
	struct sockaddr_un sa;
	size_t n = strlen(path);
	mode_t old;
	int fd = -1, r;

	if (n >= sizeof(sa.sun_path)) {
		return -ENAMETOOLONG;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	memcpy(sa.sun_path, path, n + 1);
	/* A socket left by a proxy that died: ours to replace (the run folder
	 * is 0700 and vmhost's). */
	if (unlink(path) != 0 && errno != ENOENT) {
		return -errno;
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		return -errno;
	}
	/* Created 0600 from the start: no window with a wider mode. The proxy
	 * is single-threaded here, so the process-wide umask is safe to move. */
	old = umask(0177);
	r = bind(fd, (const struct sockaddr *)&sa, sizeof(sa)) != 0 ? -errno : 0;
	(void)umask(old);
	if (r == 0 && listen(fd, PROXY_CONTROL_MAX) != 0) {
		r = -errno;
	}
	if (r != 0) {
		(void)close(fd);
		return r;
	}
	*ret_fd = fd;
	return 0;
}

int
proxy_set_control(struct proxy *p, int listen_fd)
{
	if (p == NULL || listen_fd < 0 || p->served) {
		return -EINVAL;
	}
	p->ctl_listen = listen_fd;
	return 0;
}

static json_t *
ctl_error(const char *code, const char *detail)
{
	return json_pack("{s:b, s:s, s:o}", "ok", 0, "error", code, "detail",
	    detail_string(detail));
}

int
proxy_control_handle(struct proxy *p, const json_t *req, json_t **ret)
{
	static const char *const keys[] = { "op", "envelope", NULL };
	const char *op, *bad = NULL;
	const json_t *want;
	char err[512];
	json_t *cur = NULL, *reply = NULL;
	int r;

	op = json_string_value(json_object_get(req, "op"));
	want = json_object_get(req, "envelope");
	if (!json_is_object(req) || op == NULL || strcmp(op, "narrow") != 0 ||
	    cjson_only_keys(req, keys, &bad) != 0 || !json_is_object(want)) {
		reply = ctl_error("bad_request", "expected {\"op\":\"narrow\",\"envelope\":{...}}");
		goto out;
	}
	if (atomic_load(&p->audit_broken)) {
		reply = ctl_error("tool_failed", "the audit log is unavailable; this proxy refuses "
		    "everything");
		goto out;
	}
	r = narrow(p, want, "narrowed", &cur, err, sizeof(err));
	if (r == 0 && p->on_narrowed != NULL &&
	    (r = p->on_narrowed(p->narrowed_ctx, cur)) != 0) {
		/* Narrowed all the same: failing here must not leave it wider. */
		text_printf(err, sizeof(err), "narrowed, but not kept for a restart of the proxy: %s",
		    strerror(-r));
		reply = json_pack("{s:b, s:s, s:s, s:o}", "ok", 0, "error", "not_kept", "detail",
		    err, "envelope", cur);
	} else if (r == 0) {
		reply = json_pack("{s:b, s:o}", "ok", 1, "envelope", cur);
	} else {
		reply = ctl_error(r == -EIO ? "tool_failed" : "bad_request", err);
	}
out:
	if (reply == NULL) {
		return -ENOMEM;
	}
	*ret = reply;
	return 0;
}

/* Send the reply within PROXY_CONTROL_MS at most, then close. */
static void
ctl_finish(struct ctl *c, json_t *reply /* stolen */)
{
	struct timeval tv = { PROXY_CONTROL_MS / 1000, (PROXY_CONTROL_MS % 1000) * 1000 };
	int fl;

	if (reply != NULL) {
		fl = fcntl(c->fd, F_GETFL);
		if (fl >= 0 && fcntl(c->fd, F_SETFL, fl & ~O_NONBLOCK) == 0 &&
		    setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) == 0) {
			(void)frame_write(c->fd, reply);
		}
		json_decref(reply);
	}
	(void)close(c->fd);
	frame_reader_free(c->rd);
	c->fd = -1;
	c->rd = NULL;
}

static void
ctl_remove(struct proxy *p, size_t i, json_t *reply)
{
	ctl_finish(&p->ctls[i], reply);
	p->ctls[i] = p->ctls[--p->n_ctls];
}

/* A connection on the listening socket: only vmhost's uid or root. */
static void
ctl_accept(struct proxy *p)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);
	struct ctl c;

	c.fd = accept4(p->ctl_listen, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (c.fd < 0) {
		return;
	}
	c.rd = NULL;
	c.deadline = clock_mono_ms() + PROXY_CONTROL_MS;
	if (getsockopt(c.fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0 ||
	    len != sizeof(cred) || !proxy_control_uid_ok(cred.uid, geteuid())) {
		ctl_finish(&c, ctl_error("forbidden", "only vmhost's user or root may narrow"));
		return;
	}
	c.rd = frame_reader_new(FRAME_MAX);
	if (c.rd == NULL || p->n_ctls >= PROXY_CONTROL_MAX) {
		ctl_finish(&c, ctl_error("busy", "too many control connections"));
		return;
	}
	p->ctls[p->n_ctls++] = c;
}

/* Readable: one request, one reply, closed. */
static void
ctl_read(struct proxy *p, size_t i)
{
	struct ctl *c = &p->ctls[i];
	uint8_t buf[4096];
	json_t *req = NULL, *reply = NULL;
	ssize_t n;
	int k;

	n = read(c->fd, buf, sizeof(buf));
	if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
		return;
	}
	if (n <= 0) {
		ctl_remove(p, i, NULL);
		return;
	}
	if (frame_reader_feed(c->rd, buf, (size_t)n) != 0) {
		ctl_remove(p, i, ctl_error("too_large", "a frame over the size limit"));
		return;
	}
	k = frame_reader_next(c->rd, &req);
	if (k == 0) {
		return;
	}
	if (k < 0) {
		ctl_remove(p, i, ctl_error("bad_request", "malformed frame: not one strict JSON "
		    "object"));
		return;
	}
	if (proxy_control_handle(p, req, &reply) != 0) {
		reply = ctl_error("tool_failed", "out of memory");
	}
	json_decref(req);
	ctl_remove(p, i, reply);
}

static void
ctl_close_all(struct proxy *p)
{
	while (p->n_ctls > 0) {
		ctl_remove(p, p->n_ctls - 1, NULL);
	}
}


int
proxy_serve(struct proxy *p, int fd, struct proxy_stats *ret)
{
	struct frame_reader *rd = NULL;
	struct loop l;
	uint8_t *buf = NULL;
	uint64_t cut_deadline = 0;
	int r, fl;

	memset(&l, 0, sizeof(l));
	l.p = p;
	l.tokens = p->rate_burst;
	l.last_us = mono_us();
	if (p->served) {
		return -EALREADY;
	}
	p->served = true;
	fl = fcntl(fd, F_GETFL);
	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) != 0 ||
	    pipe2(p->wake, O_CLOEXEC | O_NONBLOCK) != 0) {
		return -errno;
	}
	rd = frame_reader_new(FRAME_MAX);
	buf = malloc(PROXY_READ_CHUNK);
	if (rd == NULL || buf == NULL) {
		r = -ENOMEM;
		goto out;
	}
	r = start_workers(p);
	if (r != 0) {
		goto out;
	}
	for (;;) {
		struct pollfd pfd[3 + PROXY_CONTROL_MAX];
		bool want_out, reading;
		int timeout = -1, pr;
		nfds_t npfd = 2;
		size_t i;

		pthread_mutex_lock(&p->mu);
		want_out = p->outq != NULL;
		reading = !l.cut && p->outq_bytes < PROXY_OUTQ_MAX;
		pthread_mutex_unlock(&p->mu);
		if (l.cut) {
			uint64_t now = clock_mono_ms();

			if (cut_deadline == 0) {
				cut_deadline = now + PROXY_FLUSH_MS;
			}
			if (!want_out || now >= cut_deadline) {
				break;
			}
			timeout = (int)(cut_deadline - now);
		}
		pfd[0].fd = fd;
		pfd[0].events = (short)((reading ? POLLIN : 0) | (want_out ? POLLOUT : 0));
		pfd[0].revents = 0;
		pfd[1].fd = p->wake[0];
		pfd[1].events = POLLIN;
		pfd[1].revents = 0;
		/* The control connections, then the listener while there is room;
		 * the nearest control deadline bounds the wait. */
		for (i = 0; i < p->n_ctls; i++) {
			uint64_t now = clock_mono_ms();
			int left = p->ctls[i].deadline > now ? (int)(p->ctls[i].deadline - now) : 0;

			pfd[npfd].fd = p->ctls[i].fd;
			pfd[npfd].events = POLLIN;
			pfd[npfd].revents = 0;
			npfd++;
			if (timeout < 0 || left < timeout) {
				timeout = left;
			}
		}
		if (p->ctl_listen >= 0 && p->n_ctls < PROXY_CONTROL_MAX) {
			pfd[npfd].fd = p->ctl_listen;
			pfd[npfd].events = POLLIN;
			pfd[npfd].revents = 0;
			npfd++;
		}
		pr = poll(pfd, npfd, timeout);
		if (pr < 0 && errno == EINTR) {
			continue;
		}
		if (pr < 0) {
			l.st.end = PROXY_END_ERROR;
			l.st.error = errno;
			break;
		}
		if (pfd[1].revents != 0) {
			while (read(p->wake[0], buf, 64) > 0) {
			}
		}
		/* Control connections: served here, on the loop, one short request
		 * each; backwards, since ctl_remove moves the last one into i. */
		{
			size_t n_polled = p->n_ctls;
			uint64_t now = clock_mono_ms();

			for (i = n_polled; i-- > 0;) {
				if (pfd[2 + i].revents != 0) {
					ctl_read(p, i);
				} else if (now >= p->ctls[i].deadline) {
					ctl_remove(p, i, ctl_error("timeout", "no complete request in time"));
				}
			}
			if (npfd > 2 + n_polled && pfd[2 + n_polled].revents != 0) {
				ctl_accept(p);
			}
		}
		if ((pfd[0].revents & (POLLERR | POLLNVAL)) != 0) {
			l.st.end = PROXY_END_ERROR;
			l.st.error = EIO;
			break;
		}
		if ((pfd[0].revents & (POLLIN | POLLHUP)) != 0 && reading) {
			ssize_t n = read(fd, buf, PROXY_READ_CHUNK);
			json_t *j;
			int fr, k;

			if (n == 0) {
				l.st.end = PROXY_END_EOF;
				break;
			}
			if (n < 0 && errno != EAGAIN && errno != EINTR) {
				l.st.end = PROXY_END_ERROR;
				l.st.error = errno;
				break;
			}
			if (n > 0) {
				fr = frame_reader_feed(rd, buf, (size_t)n);
				while (!l.cut && (k = frame_reader_next(rd, &j)) != 0) {
					if (k < 0) {
						enqueue_error(p, 0, "bad_request", "malformed frame: not one "
						    "strict JSON object");
						strike(&l, PROXY_END_CUT_MALFORMED);
						continue;
					}
					dispatch(&l, j);
				}
				if (fr == -EMSGSIZE && !l.cut) {
					char d[96];

					(void)snprintf(d, sizeof(d), "a frame announced more than %d bytes; "
					    "the channel is closed", FRAME_MAX);
					enqueue_error(p, 0, "too_large", d);
					l.st.malformed++;
					l.cut = true;
					l.st.end = PROXY_END_CUT_OVERSIZED;
				}
			}
		}
		if (atomic_load(&p->audit_broken) && !l.cut) {
			l.cut = true;
			l.st.end = PROXY_END_CUT_AUDIT;
		}
		r = flush_out(p, fd);
		if (r != 0) {
			l.st.end = PROXY_END_ERROR;
			l.st.error = -r;
			break;
		}
	}
	r = 0;
out:
	ctl_close_all(p);
	stop_workers(p);
	outq_clear(p);
	jobs_clear(p);
	frame_reader_free(rd);
	free(buf);
	if (p->wake[0] >= 0) {
		(void)close(p->wake[0]);
		(void)close(p->wake[1]);
		p->wake[0] = p->wake[1] = -1;
	}
	if (r == 0 && ret != NULL) {
		*ret = l.st;
	}
	return r;
}

int
proxy_connect(const char *path, uint32_t timeout_ms, int *ret_fd)
{
	struct sockaddr_un sa;
	uint64_t deadline = clock_mono_ms() + timeout_ms;
	size_t n = strlen(path);

	if (n >= sizeof(sa.sun_path)) {
		return -ENAMETOOLONG;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	memcpy(sa.sun_path, path, n + 1);
	for (;;) {
		struct timespec ts = { 0, PROXY_CONNECT_POLL * 1000000L };
		int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0), e;

		if (fd < 0) {
			return -errno;
		}
		if (connect(fd, (const struct sockaddr *)&sa, sizeof(sa)) == 0) {
			*ret_fd = fd;
			return 0;
		}
		e = errno;
		(void)close(fd);
		if (e != ENOENT && e != ECONNREFUSED && e != EAGAIN && e != EINTR) {
			return -e;
		}
		if (clock_mono_ms() >= deadline) {
			return -ETIMEDOUT;
		}
		while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
		}
	}
}
