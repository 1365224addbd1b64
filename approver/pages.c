#include "pages.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "b64url.h"
#include "cjson.h"
#include "text.h"

void
pages_begin(struct html *h, const char *title, const struct pages_user *u, const char *script)
{
	html_raw(h, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
	    "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>");
	html_textz(h, title);
	html_raw(h, " · Warrant approver</title>\n"
	    "<link rel=\"stylesheet\" href=\"/static/style.css\">\n");
	if (script != NULL) {
		html_raw(h, "<script src=\"/static/common.js\" defer></script>\n<script src=\"");
		html_attrz(h, script);
		html_raw(h, "\" defer></script>\n");
	}
	html_raw(h, "</head>\n<body>\n<header>\n<span class=\"brand\">Warrant approver</span>\n");
	if (u != NULL) {
		html_raw(h, "<nav aria-label=\"Main\">\n<ul>\n"
		    "<li><a href=\"/requests\">Pending requests</a></li>\n"
		    "<li><a href=\"/requests?state=all\">All requests</a></li>\n"
		    "<li><a href=\"/history\">History</a></li>\n"
		    "<li><a href=\"/audit\">Audit trail</a></li>\n"
		    "<li><a href=\"/passkeys\">Passkeys</a></li>\n"
		    "<li><form method=\"post\" action=\"/logout\">"
		    "<input type=\"hidden\" name=\"csrf\" value=\"");
		html_attrz(h, u->csrf_global);
		html_raw(h, "\"><span class=\"muted\">Signed in as ");
		html_textz(h, u->name);
		html_raw(h, " (");
		html_textz(h, u->role);
		html_raw(h, ")</span> <button type=\"submit\" id=\"logout\">Sign out</button>"
		    "</form></li>\n</ul>\n</nav>\n");
	}
	html_raw(h, "</header>\n<main id=\"main\">\n<h1>");
	html_textz(h, title);
	html_raw(h, "</h1>\n");
}

void
pages_end(struct html *h)
{
	html_raw(h, "</main>\n</body>\n</html>\n");
}

void
pages_error(struct html *h, const char *msg)
{
	html_raw(h, "<p class=\"error\" role=\"alert\">");
	html_textz(h, msg);
	html_raw(h, "</p>\n");
}

void
pages_notice(struct html *h, const char *msg)
{
	html_raw(h, "<p class=\"notice\" role=\"status\">");
	html_textz(h, msg);
	html_raw(h, "</p>\n");
}

void
pages_message(struct html *h, const char *title, const struct pages_user *u, const char *msg,
    bool is_error)
{
	pages_begin(h, title, u, NULL);
	if (is_error) {
		pages_error(h, msg);
	} else {
		pages_notice(h, msg);
	}
	html_raw(h, u != NULL ? "<p><a href=\"/requests\">Back to the requests</a></p>\n" :
	    "<p><a href=\"/login\">Sign in</a></p>\n");
	pages_end(h);
}

void
pages_login(struct html *h, const char *csrf, const char *username, const char *error)
{
	pages_begin(h, "Sign in", NULL, NULL);
	if (error != NULL) {
		pages_error(h, error);
	}
	html_raw(h, "<form method=\"post\" action=\"/login\">\n"
	    "<input type=\"hidden\" name=\"csrf\" value=\"");
	html_attrz(h, csrf);
	html_raw(h, "\">\n<label for=\"username\">Username</label>\n"
	    "<input type=\"text\" id=\"username\" name=\"username\" autocomplete=\"username\" "
	    "autocapitalize=\"none\" spellcheck=\"false\" required maxlength=\"64\" value=\"");
	html_attrz(h, username != NULL ? username : "");
	html_raw(h, "\">\n<label for=\"password\">Password</label>\n"
	    "<input type=\"password\" id=\"password\" name=\"password\" "
	    "autocomplete=\"current-password\" required maxlength=\"1024\">\n"
	    "<div><button type=\"submit\" id=\"sign-in\">Sign in</button></div>\n</form>\n");
	pages_end(h);
}

static void
state_option(struct html *h, const char *value, const char *label, const char *current)
{
	html_raw(h, "<option value=\"");
	html_attrz(h, value);
	html_raw(h, strcmp(value, current) == 0 ? "\" selected>" : "\">");
	html_textz(h, label);
	html_raw(h, "</option>\n");
}

void
pages_requests_begin(struct html *h, const char *title, const char *action, const char *state,
    const char *op, const char *vm, bool show_filters)
{
	(void)title;
	if (show_filters) {
		html_raw(h, "<form method=\"get\" action=\"");
		html_attrz(h, action);
		html_raw(h, "\" class=\"filters\" aria-label=\"Filters\">\n<div>"
		    "<label for=\"filter-state\">State</label>\n"
		    "<select id=\"filter-state\" name=\"state\">\n");
		state_option(h, "pending", "Pending", state);
		state_option(h, "decided", "Decided", state);
		state_option(h, "all", "All", state);
		state_option(h, "approved", "Approved", state);
		state_option(h, "denied", "Denied", state);
		state_option(h, "expired", "Expired", state);
		state_option(h, "failed", "Failed", state);
		state_option(h, "cancelled", "Cancelled", state);
		html_raw(h, "</select></div>\n<div><label for=\"filter-op\">Operation</label>\n"
		    "<input type=\"text\" id=\"filter-op\" name=\"op\" value=\"");
		html_attrz(h, op != NULL ? op : "");
		html_raw(h, "\"></div>\n<div><label for=\"filter-vm\">VM</label>\n"
		    "<input type=\"text\" id=\"filter-vm\" name=\"vm\" value=\"");
		html_attrz(h, vm != NULL ? vm : "");
		html_raw(h, "\"></div>\n<div><button type=\"submit\">Filter</button></div>\n</form>\n");
	}
	html_raw(h, "<table id=\"requests\">\n<caption class=\"muted\">Newest first</caption>\n"
	    "<thead><tr><th scope=\"col\">Request</th><th scope=\"col\">Operation</th>"
	    "<th scope=\"col\">Arguments</th>"
	    "<th scope=\"col\">VM</th><th scope=\"col\">Agent's reason</th>"
	    "<th scope=\"col\">State</th><th scope=\"col\">Submitted</th>"
	    "<th scope=\"col\">Decisions</th></tr></thead>\n<tbody>\n");
}

/* At most n bytes of s, cut on a character boundary. */
static void
text_clipped(struct html *h, const char *s, size_t n)
{
	size_t cut = text_utf8_cut(s, n);

	html_text(h, s, cut);
	if (s[cut] != '\0') {
		html_raw(h, "…");
	}
}

void
pages_requests_row(struct html *h, const struct store_request *r)
{
	html_raw(h, "<tr><th scope=\"row\"><a href=\"/requests/");
	html_attrz(h, r->ar.request);
	html_raw(h, "\">");
	html_textz(h, r->ar.request);
	html_raw(h, "</a></th><td><code>");
	html_textz(h, r->ar.op);
	html_raw(h, "</code></td><td><code class=\"args\">");
	text_clipped(h, r->args_json != NULL ? r->args_json : "", 80);
	html_raw(h, "</code></td><td><code>");
	html_textz(h, r->ar.vm);
	html_raw(h, "</code></td><td>");
	text_clipped(h, r->reason != NULL ? r->reason : "", 120);
	html_raw(h, "</td><td class=\"state\">");
	html_textz(h, store_state_name(r->state));
	html_raw(h, "</td><td>");
	html_time(h, r->created);
	html_rawf(h, "</td><td>%lld approve, %lld deny</td></tr>\n", (long long)r->approvals,
	    (long long)r->denials);
}

static void
query_link(struct html *h, const char *action, const char *state, const char *op,
    const char *vm, uint64_t page, const char *text)
{
	html_raw(h, "<a href=\"");
	html_attrz(h, action);
	html_raw(h, "?state=");
	html_attrz(h, state);
	/* op and vm are identifiers ([A-Za-z0-9._:/-]), safe in a query. */
	if (op != NULL && op[0] != '\0') {
		html_raw(h, "&amp;op=");
		html_attrz(h, op);
	}
	if (vm != NULL && vm[0] != '\0') {
		html_raw(h, "&amp;vm=");
		html_attrz(h, vm);
	}
	html_rawf(h, "&amp;page=%llu\">", (unsigned long long)page);
	html_textz(h, text);
	html_raw(h, "</a>");
}

void
pages_requests_end(struct html *h, int64_t rows, const char *action, const char *state,
    const char *op, const char *vm, uint64_t page, bool more)
{
	if (rows == 0) {
		html_raw(h, "<tr><td colspan=\"8\">No requests.</td></tr>\n");
	}
	html_raw(h, "</tbody>\n</table>\n");
	if (page > 1 || more) {
		html_raw(h, "<nav aria-label=\"Pages\"><p>");
		if (page > 1) {
			query_link(h, action, state, op, vm, page - 1, "Newer");
			html_raw(h, " ");
		}
		html_rawf(h, "Page %llu ", (unsigned long long)page);
		if (more) {
			query_link(h, action, state, op, vm, page + 1, "Older");
		}
		html_raw(h, "</p></nav>\n");
	}
}

static void
ttl_text(struct html *h, int64_t ttl)
{
	html_rawf(h, "%lld seconds", (long long)ttl);
	if (ttl >= 3600) {
		html_rawf(h, " (%lld h %lld min)", (long long)(ttl / 3600),
		    (long long)(ttl % 3600 / 60));
	} else if (ttl >= 60) {
		html_rawf(h, " (%lld min %lld s)", (long long)(ttl / 60), (long long)(ttl % 60));
	}
}

static void
dt(struct html *h, const char *term)
{
	html_raw(h, "<dt>");
	html_textz(h, term);
	html_raw(h, "</dt><dd>");
}

void
pages_request_head(struct html *h, const struct store_request *r, const char *canonical,
    int attestd_knows)
{
	html_raw(h, "<dl>\n");
	dt(h, "State");
	html_raw(h, "<strong id=\"state\">");
	html_textz(h, store_state_name(r->state));
	html_raw(h, "</strong>");
	if (r->state_reason != NULL && r->state_reason[0] != '\0') {
		html_raw(h, ": <span id=\"state-reason\">");
		html_textz(h, r->state_reason);
		html_raw(h, "</span>");
	}
	html_raw(h, "</dd>\n");
	dt(h, "Request");
	html_raw(h, "<code>");
	html_textz(h, r->ar.request);
	html_raw(h, "</code></dd>\n");
	dt(h, "VM");
	html_raw(h, "<code id=\"vm\">");
	html_textz(h, r->ar.vm);
	html_raw(h, "</code></dd>\n");
	dt(h, "Launch digest");
	html_raw(h, "<code>");
	html_textz(h, r->ar.launch_digest);
	html_raw(h, "</code><br><span id=\"launch-known\">");
	if (attestd_knows > 0) {
		html_raw(h, "known");
	} else if (attestd_knows == 0) {
		html_raw(h, "unknown: attestd no longer knows this launch");
	} else {
		html_raw(h, "could not ask attestd");
	}
	html_raw(h, "</span></dd>\n");
	dt(h, "Operation");
	html_raw(h, "<code id=\"op\">");
	html_textz(h, r->ar.op);
	html_raw(h, "</code></dd>\n");
	dt(h, "Arguments");
	html_raw(h, "<pre id=\"args\">");
	html_textz(h, r->args_json != NULL ? r->args_json : "");
	html_raw(h, "</pre>SHA-256 <code>");
	html_textz(h, r->ar.args_sha256);
	html_raw(h, "</code></dd>\n");
	dt(h, "Agent's reason");
	html_raw(h, "<pre id=\"agent-reason\">");
	html_textz(h, r->reason != NULL ? r->reason : "");
	html_raw(h, "</pre></dd>\n");
	dt(h, "Requested lifetime");
	ttl_text(h, r->ar.ttl);
	html_raw(h, "</dd>\n");
	dt(h, "Audience");
	html_raw(h, "<code>");
	html_textz(h, r->ar.aud);
	html_raw(h, "</code></dd>\n");
	dt(h, "Submitted by");
	html_textz(h, r->caller);
	if (r->owner[0] != '\0') {
		html_raw(h, " for ");
		html_textz(h, r->owner);
	}
	html_raw(h, "</dd>\n");
	dt(h, "Submitted");
	html_time(h, r->created);
	html_raw(h, "</dd>\n");
	dt(h, r->state == STORE_PENDING ? "Expires" : "Decided");
	html_time(h, r->state == STORE_PENDING ? r->expires : r->decided);
	html_raw(h, "</dd>\n</dl>\n<h2>Canonical request</h2>\n<p>This is the text your passkey "
	    "signs, through its SHA-256 digest. Compare the digest with what your "
	    "authenticator shows, if it shows one.</p>\n<pre id=\"canonical\">");
	html_textz(h, canonical != NULL ? canonical : "");
	html_raw(h, "</pre>\n<p>Digest (SHA-256): <code id=\"digest\" class=\"digest\">");
	html_textz(h, r->digest);
	html_raw(h, "</code></p>\n");
}

void
pages_decisions_begin(struct html *h)
{
	html_raw(h, "<h2>Decisions so far</h2>\n<table id=\"decisions\">\n<thead><tr>"
	    "<th scope=\"col\">Who</th><th scope=\"col\">Decision</th>"
	    "<th scope=\"col\">Reason</th><th scope=\"col\">When</th></tr></thead>\n<tbody>\n");
}

void
pages_decision_row(struct html *h, const struct store_decision *d)
{
	html_raw(h, "<tr><th scope=\"row\">");
	html_textz(h, d->user);
	html_raw(h, d->approve ? "</th><td>approved" : "</th><td>denied");
	html_raw(h, "</td><td>");
	html_textz(h, d->reason != NULL ? d->reason : "");
	html_raw(h, "</td><td>");
	html_time(h, d->at);
	html_raw(h, "</td></tr>\n");
}

void
pages_decisions_end(struct html *h, int64_t rows)
{
	if (rows == 0) {
		html_raw(h, "<tr><td colspan=\"4\">Nobody has decided yet.</td></tr>\n");
	}
	html_raw(h, "</tbody>\n</table>\n");
}

void
pages_decide_form(struct html *h, const struct store_request *r, const char *csrf,
    const char *rp_id, const char *cred_ids)
{
	static const char *const hidden[] = { "credential_id", "client_data_json",
		"authenticator_data", "signature" };
	size_t i;

	html_raw(h, "<h2>Your decision</h2>\n<p id=\"js-error\" role=\"alert\" "
	    "hidden></p>\n<form method=\"post\" id=\"decide\" action=\"/requests/");
	html_attrz(h, r->ar.request);
	html_raw(h, "/approve\" data-challenge=\"");
	html_attrz(h, r->digest);
	html_raw(h, "\" data-rp-id=\"");
	html_attrz(h, rp_id);
	html_raw(h, "\" data-credentials=\"");
	html_attrz(h, cred_ids);
	html_raw(h, "\">\n<input type=\"hidden\" name=\"csrf\" value=\"");
	html_attrz(h, csrf);
	html_raw(h, "\">\n");
	for (i = 0; i < sizeof(hidden) / sizeof(hidden[0]); i++) {
		html_rawf(h, "<input type=\"hidden\" name=\"%s\" value=\"\">\n", hidden[i]);
	}
	html_raw(h, "<label for=\"reason\">Reason</label>\n"
	    "<textarea id=\"reason\" name=\"reason\" aria-required=\"true\" maxlength=\"1024\" "
	    "aria-describedby=\"reason-help\"></textarea>\n"
	    "<p id=\"reason-help\" class=\"muted\">Required for both. Approve asks your passkey "
	    "to sign the digest above; Deny needs no passkey and vetoes the request.</p>\n"
	    "<button type=\"submit\" id=\"approve\">Approve</button>\n"
	    "<button type=\"submit\" id=\"deny\" formaction=\"/requests/");
	html_attrz(h, r->ar.request);
	html_raw(h, "/deny\">Deny</button>\n</form>\n");
}

void
pages_audit_begin(struct html *h)
{
	html_raw(h, "<table id=\"audit\">\n<caption class=\"muted\">Newest first</caption>\n"
	    "<thead><tr><th scope=\"col\">#</th><th scope=\"col\">When</th>"
	    "<th scope=\"col\">Who</th><th scope=\"col\">Event</th><th scope=\"col\">Request</th>"
	    "<th scope=\"col\">Detail</th></tr></thead>\n<tbody>\n");
}

void
pages_audit_row(struct html *h, const struct store_audit *a)
{
	html_rawf(h, "<tr><th scope=\"row\">%lld</th><td>", (long long)a->seq);
	html_time(h, a->at);
	html_raw(h, "</td><td>");
	html_textz(h, a->actor);
	html_raw(h, "</td><td>");
	html_textz(h, a->event);
	html_raw(h, "</td><td>");
	if (a->request[0] != '\0') {
		html_raw(h, "<a href=\"/requests/");
		html_attrz(h, a->request);
		html_raw(h, "\">");
		html_textz(h, a->request);
		html_raw(h, "</a>");
	}
	html_raw(h, "</td><td><code>");
	html_textz(h, a->detail != NULL ? a->detail : "");
	html_raw(h, "</code></td></tr>\n");
}

void
pages_audit_end(struct html *h, int64_t rows, int64_t next_before)
{
	if (rows == 0) {
		html_raw(h, "<tr><td colspan=\"6\">No records.</td></tr>\n");
	}
	html_raw(h, "</tbody>\n</table>\n");
	if (next_before > 0) {
		html_rawf(h, "<nav aria-label=\"Pages\"><p><a href=\"/audit?before=%lld\">Older"
		    "</a></p></nav>\n", (long long)next_before);
	}
}

void
pages_passkeys_begin(struct html *h, const char *csrf)
{
	html_raw(h, "<p>A passkey signs each approval. After you add one, give its enrolment "
	    "record to root on the attestd host, who runs <code>attestctl approvers add "
	    "FILE</code> with it; until then attestd refuses its signatures.</p>\n"
	    "<p>Then read your passkey's fingerprint (<code>SHA256:</code>&hellip;) to root "
	    "yourself, in person or by phone: root compares it with the one "
	    "<code>attestctl approvers add</code> prints before enrolling, so that a record "
	    "changed on its way cannot enrol someone else's key under your name.</p>\n"
	    "<p id=\"js-error\" role=\"alert\" hidden></p>\n"
	    "<form method=\"post\" action=\"/passkeys\" id=\"passkey-form\">\n"
	    "<input type=\"hidden\" name=\"csrf\" value=\"");
	html_attrz(h, csrf);
	html_raw(h, "\">\n<input type=\"hidden\" name=\"client_data_json\" value=\"\">\n"
	    "<input type=\"hidden\" name=\"attestation_object\" value=\"\">\n"
	    "<label for=\"passkey-label\">Passkey name (optional)</label>\n"
	    "<input type=\"text\" id=\"passkey-label\" name=\"label\" maxlength=\"64\" "
	    "pattern=\"[A-Za-z0-9][A-Za-z0-9._:\\-]*\">\n"
	    "<div><button type=\"button\" id=\"add-passkey\">Add a passkey</button></div>\n"
	    "<noscript><p class=\"error\" role=\"alert\">Adding a passkey needs JavaScript: "
	    "the browser's WebAuthn interface is only reachable from a script.</p></noscript>\n"
	    "</form>\n<h2>Your passkeys</h2>\n<table id=\"passkeys\">\n<thead><tr>"
	    "<th scope=\"col\">Name</th><th scope=\"col\">Algorithm</th>"
	    "<th scope=\"col\">Fingerprint</th><th scope=\"col\">Added</th><th scope=\"col\">Enrolment record</th></tr></thead>\n"
	    "<tbody>\n");
}

/* The fingerprint of the key in an enrolment record, computed from the
 * record itself so that it is that of the text root is given. */
static int
record_fingerprint(const char *record, char ret[WEBAUTHN_FP_MAX])
{
	struct webauthn_credential c;
	json_t *j = NULL;
	const char *pk;
	int r = -EINVAL;

	memset(&c, 0, sizeof(c));
	if (cjson_parse(record, strlen(record), 8192, &j) != 0) {
		goto out;
	}
	pk = cjson_get_str(j, "public_key");
	if (webauthn_alg_parse(cjson_get_str(j, "alg"), &c.alg) != 0 || pk == NULL ||
	    b64url_decode(pk, strlen(pk), c.pk, sizeof(c.pk), &c.pk_len) != 0) {
		goto out;
	}
	r = webauthn_fingerprint(&c, ret);
out:
	json_decref(j);
	return r;
}

void
pages_passkey_row(struct html *h, const struct store_credential *c, const char *record)
{
	const char *alg = webauthn_alg_name(c->cred.alg);
	char fp[WEBAUTHN_FP_MAX];

	html_raw(h, "<tr><th scope=\"row\">");
	html_textz(h, c->label[0] != '\0' ? c->label : "passkey");
	html_raw(h, "</th><td>");
	html_textz(h, alg != NULL ? alg : "?");
	html_raw(h, "</td><td><code class=\"fingerprint\">");
	html_textz(h, webauthn_fingerprint(&c->cred, fp) == 0 ? fp : "?");
	html_raw(h, "</code></td><td>");
	html_time(h, c->created);
	html_raw(h, "</td><td><pre class=\"record\">");
	html_textz(h, record);
	html_raw(h, "</pre></td></tr>\n");
}

void
pages_passkeys_end(struct html *h, int64_t rows, const char *newest_record)
{
	if (rows == 0) {
		html_raw(h, "<tr><td colspan=\"5\">No passkey yet.</td></tr>\n");
	}
	html_raw(h, "</tbody>\n</table>\n");
	if (newest_record != NULL) {
		char fp[WEBAUTHN_FP_MAX];

		html_raw(h, "<h2>Enrolment record of your newest passkey</h2>\n"
		    "<p>Save it as a file and give it to root, who runs:</p>\n"
		    "<pre>attestctl approvers add FILE</pre>\n<pre id=\"enrolment\">");
		html_textz(h, newest_record);
		html_raw(h, "</pre>\n<p>Its key's fingerprint:</p>\n<pre id=\"fingerprint\">");
		html_textz(h, record_fingerprint(newest_record, fp) == 0 ? fp : "?");
		html_raw(h, "</pre>\n<p>Read this fingerprint to root yourself, in person or by "
		    "phone, not by the same way the record travels. <code>attestctl approvers "
		    "add</code> prints the fingerprint of the key it is about to enrol; root enrols "
		    "only if it is the same as the one you read.</p>\n");
	}
}
