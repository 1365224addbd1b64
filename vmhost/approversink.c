/* approversink: the gate sink that talks to the approver service's API for
 * proxies (gate.h; docs/approvals.md, "The proxies' API"). Each operation
 * opens its own connection, so waiting calls on many threads never share
 * a handle. */
#include "gate.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cjson.h"
#include "clock.h"
#include "parse.h"
#include "text.h"
#include "token.h"
#include "uhttp.h"

#define APPROVER_PATH_MAX      4096
/* The longest long poll asked for; short enough that a cancel (vmhost
 * stopping) is seen within this many seconds. */
#define APPROVER_WAIT_S        5
/* When the approver cannot be reached (it restarts), ask again after. */
#define APPROVER_RETRY_MS      1000

struct apsink {
	char *address;          /* a unix socket path or an https URL */
	bool is_unix;
	char *ca_file;
	char *cert_file;
	char *key_file;
	char aud[TOKEN_ID_MAX + 1];
	char owner[TOKEN_ID_MAX + 1];
};

static int
connect_sink(const struct apsink *s, long total_ms, struct uhttp **ret)
{
	struct uhttp *h = NULL;
	int r;

	r = s->is_unix ? uhttp_new_unix(s->address, &h) : uhttp_new_url(s->address, &h);
	if (r != 0) {
		return r;
	}
	r = uhttp_set_timeouts(h, UHTTP_CONNECT_TIMEOUT_MS, total_ms);
	if (r == 0 && !s->is_unix && s->ca_file != NULL) {
		r = uhttp_set_cafile(h, s->ca_file);
	}
	if (r == 0 && !s->is_unix && s->cert_file != NULL) {
		r = uhttp_set_client_cert(h, s->cert_file, s->key_file);
	}
	if (r != 0) {
		uhttp_free(h);
		return r;
	}
	*ret = h;
	return 0;
}

/* The approver shows the reason to people: no control characters. */
static char *
printable_reason(const char *in)
{
	char *s = strdup(in != NULL ? in : "");
	size_t i;

	if (s == NULL) {
		return NULL;
	}
	s[text_utf8_cut(s, GATE_REASON_MAX)] = '\0';
	for (i = 0; s[i] != '\0'; i++) {
		if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] == 0x7f) {
			s[i] = ' ';
		}
	}
	return s;
}

static int
ap_submit(void *ctx, const struct gate_request *r)
{
	struct apsink *s = ctx;
	struct uhttp *h = NULL;
	json_t *body = NULL, *reply = NULL;
	char *reason = NULL;
	long status = 0;
	int rc;

	reason = printable_reason(r->reason);
	if (reason == NULL) {
		return -ENOMEM;
	}
	body = json_pack("{s:s, s:s, s:s, s:s, s:s, s:O, s:s, s:s, s:I, s:I}", "id", r->id,
	    "aud", s->aud, "vm", r->vm, "launch_digest", r->launch_digest, "op", r->op,
	    "args", r->args, "args_sha256", r->args_sha256, "reason", reason,
	    "requested_ttl", (json_int_t)r->requested_ttl, "expires", (json_int_t)r->expires);
	if (body == NULL || (s->owner[0] != '\0' &&
	    json_object_set_new(body, "owner", json_string(s->owner)) != 0)) {
		rc = -ENOMEM;
		goto out;
	}
	rc = connect_sink(s, UHTTP_TIMEOUT_MS, &h);
	if (rc != 0) {
		goto out;
	}
	rc = uhttp_request_json(h, "POST", "/api/v1/requests", body, &status, &reply);
	if (rc != 0) {
		goto out;
	}
	switch (status) {
	case 200:
	case 201: {
		rc = 0;
		break;
	}
	case 400: {
		rc = -EINVAL;
		break;
	}
	case 409: {
		rc = -EEXIST;
		break;
	}
	case 429:
	case 503: {
		rc = -EBUSY;
		break;
	}
	case 401:
	case 403: {
		rc = -EACCES;
		break;
	}
	default: {
		rc = -EPROTO;
		break;
	}
	}
out:
	json_decref(reply);
	json_decref(body);
	uhttp_free(h);
	free(reason);
	return rc;
}

static int
reason_copy(const char *prefix, const char *why, char **ret)
{
	char buf[GATE_REASON_MAX + 64];
	char *s;

	if (why != NULL && why[0] != '\0') {
		(void)snprintf(buf, sizeof(buf), "%s: %s", prefix, why);
	} else {
		(void)snprintf(buf, sizeof(buf), "%s", prefix);
	}
	s = printable_reason(buf);
	if (s == NULL) {
		return -ENOMEM;
	}
	*ret = s;
	return -EACCES;
}

/* The approved request's token, picked up once. */
static int
pickup(struct uhttp *h, const char *id, char **ret_token, char **ret_reason)
{
	char path[64 + GATE_ID_MAX];
	json_t *reply = NULL;
	const char *tok;
	long status = 0;
	char *copy;
	int rc;

	(void)snprintf(path, sizeof(path), "/api/v1/requests/%s/token", id);
	rc = uhttp_request_json(h, "POST", path, NULL, &status, &reply);
	if (rc != 0) {
		goto out;
	}
	if (status == 410) {
		rc = reason_copy("the token was picked up before", NULL, ret_reason);
		goto out;
	}
	tok = cjson_get_str(reply, "token");
	if (status != 200 || tok == NULL || strlen(tok) > TOKEN_MAX_LEN) {
		rc = -EPROTO;
		goto out;
	}
	copy = strdup(tok);
	if (copy == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	*ret_token = copy;
	rc = 0;
out:
	if (reply != NULL) {
		json_t *t = json_object_get(reply, "token");

		if (json_is_string(t)) {
			explicit_bzero((char *)json_string_value(t), json_string_length(t));
		}
	}
	json_decref(reply);
	return rc;
}

static bool
transient(int rc)
{
	return rc == -ENOENT || rc == -ECONNREFUSED || rc == -ECONNRESET || rc == -ETIMEDOUT ||
	    rc == -EHOSTUNREACH;
}

static int
ap_wait(void *ctx, const char *id, uint64_t deadline_ms, const atomic_bool *cancel,
    char **ret_token, char **ret_reason)
{
	struct apsink *s = ctx;
	struct uhttp *h = NULL;
	json_t *reply = NULL;
	char path[64 + GATE_ID_MAX];
	int rc;

	rc = connect_sink(s, (APPROVER_WAIT_S + 10) * 1000L, &h);
	if (rc != 0) {
		return rc;
	}
	for (;;) {
		const char *state, *why;
		uint64_t now = clock_mono_ms(), left_s;
		long status = 0;

		json_decref(reply);
		reply = NULL;
		if (atomic_load(cancel)) {
			rc = -ECANCELED;
			goto out;
		}
		if (now >= deadline_ms) {
			rc = -ETIMEDOUT;
			goto out;
		}
		left_s = (deadline_ms - now) / 1000;
		if (left_s > APPROVER_WAIT_S) {
			left_s = APPROVER_WAIT_S;
		}
		(void)snprintf(path, sizeof(path), "/api/v1/requests/%s?wait=%u", id,
		    (unsigned)left_s);
		rc = uhttp_request_json(h, "GET", path, NULL, &status, &reply);
		if (rc != 0 && transient(rc)) {
			/* The approver restarts: the request is in its database. */
			now = clock_mono_ms();
			clock_sleep_ms(deadline_ms > now && deadline_ms - now < APPROVER_RETRY_MS ?
			    deadline_ms - now : APPROVER_RETRY_MS);
			continue;
		}
		if (rc != 0) {
			goto out;
		}
		if (status == 404) {
			rc = reason_copy("the approver does not know this request", NULL, ret_reason);
			goto out;
		}
		state = cjson_get_str(reply, "state");
		why = cjson_get_str(reply, "reason");
		if (status != 200 || state == NULL) {
			rc = -EPROTO;
			goto out;
		}
		if (strcmp(state, "pending") == 0) {
			if (left_s == 0) {
				/* Under a second left: the next turn times out. */
				clock_sleep_ms(deadline_ms > clock_mono_ms() ?
				    deadline_ms - clock_mono_ms() : 0);
			}
			continue;
		}
		if (strcmp(state, "approved") == 0) {
			rc = pickup(h, id, ret_token, ret_reason);
		} else if (strcmp(state, "denied") == 0) {
			rc = reason_copy("denied", why, ret_reason);
		} else if (strcmp(state, "expired") == 0) {
			rc = reason_copy("the approval request expired", NULL, ret_reason);
		} else if (strcmp(state, "failed") == 0) {
			rc = reason_copy("the approval failed", why, ret_reason);
		} else if (strcmp(state, "cancelled") == 0) {
			rc = reason_copy("the approval request was cancelled", NULL, ret_reason);
		} else {
			rc = -EPROTO;
		}
		goto out;
	}
out:
	json_decref(reply);
	uhttp_free(h);
	return rc;
}

/* The call is over: a request still pending (the proxy timed out or
 * stops) is withdrawn; one that is final stays as it is. */
static void
ap_done(void *ctx, const char *id)
{
	struct apsink *s = ctx;
	struct uhttp *h = NULL;
	json_t *reply = NULL;
	char path[64 + GATE_ID_MAX];
	long status = 0;

	if (connect_sink(s, UHTTP_TIMEOUT_MS, &h) != 0) {
		return;
	}
	(void)snprintf(path, sizeof(path), "/api/v1/requests/%s", id);
	(void)uhttp_request_json(h, "DELETE", path, NULL, &status, &reply);
	json_decref(reply);
	uhttp_free(h);
}

static void
ap_free(void *ctx)
{
	struct apsink *s = ctx;

	if (s == NULL) {
		return;
	}
	free(s->address);
	free(s->ca_file);
	free(s->cert_file);
	free(s->key_file);
	free(s);
}

static bool
readable_file(const char *path)
{
	struct stat st;

	return path != NULL && stat(path, &st) == 0 && S_ISREG(st.st_mode) &&
	    access(path, R_OK) == 0;
}

static int
dup_opt(const char *in, char **ret)
{
	*ret = NULL;
	if (in == NULL) {
		return 0;
	}
	*ret = strdup(in);
	return *ret == NULL ? -ENOMEM : 0;
}

int
gate_approver_new(const char *address, const char *ca_file, const char *cert_file,
    const char *key_file, const char *aud, const char *owner, struct gate **ret)
{
	static const struct gate_ops ops = { ap_submit, ap_wait, ap_done, ap_free };
	struct apsink *s = NULL;
	int r;

	if (address == NULL || aud == NULL || parse_ident(aud, TOKEN_ID_MAX) != 0 ||
	    (owner != NULL && owner[0] != '\0' && parse_ident(owner, TOKEN_ID_MAX) != 0) ||
	    strlen(address) > APPROVER_PATH_MAX) {
		return -EINVAL;
	}
	s = calloc(1, sizeof(*s));
	if (s == NULL) {
		return -ENOMEM;
	}
	if (address[0] == '/') {
		/* A unix socket: the peer uid is the caller; no TLS files. */
		if (ca_file != NULL || cert_file != NULL || key_file != NULL) {
			r = -EINVAL;
			goto out;
		}
		s->is_unix = true;
	} else if (strncmp(address, "https://", 8) == 0 && address[8] != '\0') {
		if (cert_file == NULL || key_file == NULL || !readable_file(cert_file) ||
		    !readable_file(key_file) || (ca_file != NULL && !readable_file(ca_file))) {
			r = -ENOENT;
			goto out;
		}
	} else {
		r = -EINVAL;
		goto out;
	}
	if ((r = dup_opt(address, &s->address)) != 0 || (r = dup_opt(ca_file, &s->ca_file)) != 0 ||
	    (r = dup_opt(cert_file, &s->cert_file)) != 0 ||
	    (r = dup_opt(key_file, &s->key_file)) != 0) {
		goto out;
	}
	(void)snprintf(s->aud, sizeof(s->aud), "%s", aud);
	(void)snprintf(s->owner, sizeof(s->owner), "%s", owner != NULL ? owner : "");
	r = gate_new(&ops, s, ret);
	if (r == 0) {
		s = NULL;
	}
out:
	ap_free(s);
	return r;
}
