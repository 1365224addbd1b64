/* attestctl: the command-line client of attestd, and an offline token tool.
 *
 * Exit status: 0 success (a valid token for verify), 1 failure (refused,
 * unreachable, bad input), 2 usage error. Results are JSON on stdout;
 * messages for humans go to stderr. */
#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "args.h"
#include "artifact.h"
#include "b64url.h"
#include "cjson.h"
#include "eventlog.h"
#include "fsutil.h"
#include "launch.h"
#include "manifest.h"
#include "parse.h"
#include "quote.h"
#include "replay.h"
#include "token.h"
#include "uhttp.h"
#include "verifier.h"
#include "webauthn.h"

#define DEFAULT_SOCKET  "/run/warrant/attestd.sock"
#define ARGS_MAX        (64 * 1024)     /* attestd's request body cap */
#define CAVEAT_MAX      4096
#define VERIFY_SKEW     30              /* seconds an iat may be ahead */
#define MAX_POSITIONAL  4
#define AK_PEM_MAX      16384
/* A quote document: the event log (at most EVENTLOG_MAX_BYTES, escaped in
 * a JSON string) and the TPM's structures. */
#define QUOTE_DOC_MAX   (2 * EVENTLOG_MAX_BYTES + 1024 * 1024)

enum { EXIT_OK = 0, EXIT_FAIL = 1, EXIT_USAGE = 2 };

static const char usage_text[] =
"usage: attestctl [--socket PATH] COMMAND [ARGS]\n"
"\n"
"  status\n"
"      print attestd's status (JSON)\n"
"  mint --aud A --vm ID --launch-digest HEX --op OP\n"
"       (--args-file F | --args-sha256 HEX) [--ttl S] [--uses N] [--request ID]\n"
"       [--approvals FILE]\n"
"      ask attestd for a token; prints {\"token\",\"jti\",\"exp\",\"iat\"}; FILE is\n"
"      a JSON array of approvals (docs/approvals.md), needed for \"ask\" operations\n"
"  approvers add [--yes] FILE|-\n"
"      enrol a passkey credential from its enrolment record (admin role); prints\n"
"      the person, credential id, algorithm and key fingerprint first and asks\n"
"      before enrolling; --yes enrols without asking (needed when standard input\n"
"      is not a terminal)\n"
"  approvers list [--json]\n"
"      the enrolled people, their credentials, key fingerprints and counters, and\n"
"      the quorum policy\n"
"  approvers remove NAME [--credential ID]\n"
"      remove a person, or one of their credentials\n"
"  verify --aud A [--vm ID] [--launch-digest HEX] [--op OP]\n"
"         [--args-file F | --args-sha256 HEX] [--consume-db PATH] TOKEN\n"
"      verify TOKEN ('-' reads it from stdin) for the given action; exit 0\n"
"      and {\"valid\":true,...} if it may proceed, exit 1 and\n"
"      {\"valid\":false,\"reason\":R} if not; --consume-db records the use\n"
"  measure [--launch-socket PATH] MANIFEST\n"
"      seal the manifest's artifacts, have attestd measure them over its launch\n"
"      socket and print its reply {\"status\",\"vm\",\"launch_digest\",\"token\",\"events\"}\n"
"  quote [--socket PATH] --nonce HEX\n"
"      a TPM quote over the policy PCRs and the launch PCR, with the event log\n"
"  verify-quote --ak AK.pem --nonce HEX QUOTE.json\n"
"      check a quote offline: exit 0 and the report with each VM's launch\n"
"      digest if everything matches, exit 1 and {\"valid\":false,\"reason\":R}\n"
"  token inspect TOKEN\n"
"      decode TOKEN without verifying it\n"
"  token attenuate TOKEN CAVEAT_JSON\n"
"      append a caveat (no key needed), e.g. '{\"type\":\"exp\",\"exp\":N}',\n"
"      '{\"type\":\"ops\",\"ops\":[\"fs.read\"]}', '{\"type\":\"uses\",\"uses\":1}',\n"
"      '{\"type\":\"arg_prefix\",\"arg\":\"path\",\"prefix\":\"/tmp/\"}'\n"
"\n"
"The socket defaults to $WARRANT_ATTESTD_SOCKET, else " DEFAULT_SOCKET "; the launch\n"
"socket to $WARRANT_LAUNCH_SOCKET, else attestd-launch.sock beside the socket.\n"
"Exit status: 0 success, 1 failure or refused token, 2 usage error.\n";

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int
usage_error(const char *fmt, ...)
{
	va_list ap;

	fputs("attestctl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs("\n(try 'attestctl --help')\n", stderr);
	return EXIT_USAGE;
}

static int
fail_msg(const char *what, const char *detail)
{
	fprintf(stderr, "attestctl: %s: %s\n", what, detail);
	return EXIT_FAIL;
}

/* --- options ------------------------------------------------------------- */

static int
parse_args(int argc, char **argv, struct args_opt *opts, struct args *ret)
{
	struct args_error e;

	if (args_parse(argc, argv, opts, MAX_POSITIONAL, 0, ret, &e) != 0) {
		return usage_error("%s'%.*s'%s", e.pre, e.arg_len, e.arg, e.post);
	}
	return 0;
}

/* --- input helpers ------------------------------------------------------- */

static int
check_ident(const char *opt, const char *s)
{
	if (s != NULL && (strlen(s) > TOKEN_ID_MAX || parse_ident(s, TOKEN_ID_MAX) != 0)) {
		fprintf(stderr, "attestctl: %s '%s': expected 1..%d characters of "
		    "[A-Za-z0-9._:-] starting with a letter or digit\n", opt, s, TOKEN_ID_MAX);
		return EXIT_USAGE;
	}
	return 0;
}

static int
check_op(const char *s)
{
	if (s != NULL && (strlen(s) > TOKEN_OP_MAX || parse_op(s, TOKEN_OP_MAX) != 0)) {
		fprintf(stderr, "attestctl: --op '%s': expected 1..%d characters of "
		    "[A-Za-z0-9._:/-] starting with a letter or digit\n", s, TOKEN_OP_MAX);
		return EXIT_USAGE;
	}
	return 0;
}

static int
check_hex256(const char *opt, const char *s)
{
	uint8_t buf[32];

	if (s != NULL && parse_hex(s, buf, sizeof(buf)) != 0) {
		fprintf(stderr, "attestctl: %s: expected 64 lower-case hex digits\n", opt);
		return EXIT_USAGE;
	}
	return 0;
}

/* Read and strictly parse a JSON arguments file. */
static int
read_args_file(const char *path, json_t **ret)
{
	char *buf = NULL;
	size_t len = 0;
	json_t *j = NULL;
	int r;

	r = fs_read_file(path, ARGS_MAX, &buf, &len);
	if (r != 0) {
		switch (r) {
		case -EFBIG: {
			fprintf(stderr, "attestctl: %s: larger than %d bytes\n", path, ARGS_MAX);
			break;
		}
		case -ELOOP: {
			fprintf(stderr, "attestctl: %s: is a symbolic link; give the real path\n", path);
			break;
		}
		case -EINVAL: {
			fprintf(stderr, "attestctl: %s: not a regular file\n", path);
			break;
		}
		default: {
			fprintf(stderr, "attestctl: %s: %s\n", path, strerror(-r));
			break;
		}
		}
		goto out;
	}
	r = cjson_parse(buf, len, ARGS_MAX, &j);
	if (r != 0) {
		fprintf(stderr, "attestctl: %s: not valid JSON (duplicate keys, real numbers "
		    "and nesting deeper than %d are refused)\n", path, CJSON_MAX_DEPTH);
		goto out;
	}
	*ret = j;
	r = 0;
out:
	free(buf);
	return r;
}

/* TOKEN as given, or from stdin for "-" (one line; the newline dropped).
 * The result is always malloc'd. */
static int
read_token(const char *arg, char **ret)
{
	/* Room for a maximal token, "\r\n", and one byte more to tell that the
	 * input is longer than that. */
	enum { BUF_MAX = TOKEN_MAX_LEN + 3 };
	char *buf = NULL;
	size_t len = 0;
	int r;

	if (strcmp(arg, "-") != 0) {
		buf = strdup(arg);
		if (buf == NULL) {
			return -ENOMEM;
		}
		*ret = buf;
		return 0;
	}
	buf = malloc(BUF_MAX + 1);
	if (buf == NULL) {
		return -ENOMEM;
	}
	len = fread(buf, 1, BUF_MAX, stdin);
	if (ferror(stdin)) {
		r = -EIO;
		goto out;
	}
	if (len == BUF_MAX) {
		r = -E2BIG;
		goto out;
	}
	if (len > 0 && buf[len - 1] == '\n') {
		len--;
	}
	if (len > 0 && buf[len - 1] == '\r') {
		len--;
	}
	if (len > TOKEN_MAX_LEN) {
		r = -E2BIG;
		goto out;
	}
	/* A NUL would silently cut the token short: refuse it instead. */
	if (memchr(buf, '\0', len) != NULL) {
		r = -EINVAL;
		goto out;
	}
	buf[len] = '\0';
	*ret = buf;
	buf = NULL;
	r = 0;
out:
	if (buf != NULL) {
		explicit_bzero(buf, BUF_MAX + 1);
		free(buf);
	}
	return r;
}

static void
free_token(char *s)
{
	if (s != NULL) {
		explicit_bzero(s, strlen(s));
		free(s);
	}
}

static void
print_json(const json_t *j)
{
	char *s = json_dumps(j, JSON_COMPACT);

	if (s != NULL) {
		printf("%s\n", s);
		/* It may hold a bearer token (mint's reply). */
		explicit_bzero(s, strlen(s));
		free(s);
	}
}

static const char *
conn_error(int r)
{
	switch (r) {
	case -ENOENT: {
		return "no socket there (is attestd running? see --socket)";
	}
	case -ECONNREFUSED: {
		return "connection refused (is attestd running?)";
	}
	case -EACCES: {
		return "permission denied on the socket";
	}
	case -ETIMEDOUT: {
		return "timed out";
	}
	case -EPROTO: {
		return "bad reply from attestd";
	}
	default: {
		return strerror(-r);
	}
	}
}

static const char *
socket_path(const char *opt)
{
	const char *env;

	if (opt != NULL) {
		return opt;
	}
	env = getenv("WARRANT_ATTESTD_SOCKET");
	return env != NULL && env[0] != '\0' ? env : DEFAULT_SOCKET;
}

/* Non-2xx: attestd's error object on stdout, one line for humans on stderr. */
static int
report_http_error(const char *what, long status, const json_t *rep)
{
	const char *code = cjson_get_str(rep, "error"), *detail = cjson_get_str(rep, "detail");

	print_json(rep);
	fprintf(stderr, "attestctl: %s: attestd answered %ld %s%s%s\n", what, status,
	    code != NULL ? code : "(no error code)", detail != NULL ? ": " : "",
	    detail != NULL ? detail : "");
	return EXIT_FAIL;
}

/* --- commands ------------------------------------------------------------ */

static int
cmd_status(const char *sock, int argc, char **argv)
{
	struct args_opt opts[] = { ARGS_END };
	struct uhttp *h = NULL;
	struct args a;
	json_t *rep = NULL;
	long status = 0;
	int r, rc;

	rc = parse_args(argc, argv, opts, &a);
	if (rc != 0) {
		return rc;
	}
	if (a.help) {
		fputs(usage_text, stdout);
		return EXIT_OK;
	}
	if (a.n_pos != 0) {
		return usage_error("status: unexpected argument '%s'", a.pos[0]);
	}
	r = uhttp_new_unix(sock, &h);
	if (r == 0) {
		r = uhttp_request_json(h, "GET", "/v1/status", NULL, &status, &rep);
	}
	if (r != 0) {
		fprintf(stderr, "attestctl: status: %s: %s\n", sock, conn_error(r));
		rc = EXIT_FAIL;
		goto out;
	}
	if (status != 200) {
		rc = report_http_error("status", status, rep);
		goto out;
	}
	print_json(rep);
	rc = EXIT_OK;
out:
	json_decref(rep);
	uhttp_free(h);
	return rc;
}

static int
cmd_mint(const char *sock, int argc, char **argv)
{
	enum { O_AUD, O_VM, O_LAUNCH, O_OP, O_ARGS, O_ARGS_SHA, O_TTL, O_USES, O_REQ, O_APPR };
	struct args_opt opts[] = {
		ARGS_OPT("aud"), ARGS_OPT("vm"), ARGS_OPT("launch-digest"), ARGS_OPT("op"),
		ARGS_OPT("args-file"), ARGS_OPT("args-sha256"), ARGS_OPT("ttl"),
		ARGS_OPT("uses"), ARGS_OPT("request"), ARGS_OPT("approvals"), ARGS_END,
	};
	struct uhttp *h = NULL;
	struct args a;
	json_t *req = NULL, *rep = NULL, *args = NULL, *approvals = NULL;
	uint64_t ttl = 0, uses = 0;
	long status = 0;
	int r, rc;

	rc = parse_args(argc, argv, opts, &a);
	if (rc != 0) {
		return rc;
	}
	if (a.help) {
		fputs(usage_text, stdout);
		return EXIT_OK;
	}
	if (a.n_pos != 0) {
		return usage_error("mint: unexpected argument '%s'", a.pos[0]);
	}
	if (opts[O_AUD].value == NULL || opts[O_VM].value == NULL ||
	    opts[O_LAUNCH].value == NULL || opts[O_OP].value == NULL) {
		return usage_error("mint: --aud, --vm, --launch-digest and --op are required");
	}
	if ((opts[O_ARGS].value == NULL) == (opts[O_ARGS_SHA].value == NULL)) {
		return usage_error("mint: give exactly one of --args-file and --args-sha256");
	}
	if ((rc = check_ident("--aud", opts[O_AUD].value)) != 0 ||
	    (rc = check_ident("--vm", opts[O_VM].value)) != 0 ||
	    (rc = check_ident("--request", opts[O_REQ].value)) != 0 ||
	    (rc = check_hex256("--launch-digest", opts[O_LAUNCH].value)) != 0 ||
	    (rc = check_hex256("--args-sha256", opts[O_ARGS_SHA].value)) != 0 ||
	    (rc = check_op(opts[O_OP].value)) != 0) {
		return rc;
	}
	/* attestd has the last word on ranges (max_ttl_seconds); these only
	 * catch what cannot be a number of seconds or uses at all. */
	if (opts[O_TTL].value != NULL && parse_u64(opts[O_TTL].value, 1, INT32_MAX, &ttl) != 0) {
		return usage_error("mint: --ttl '%s': expected whole seconds, at least 1",
		    opts[O_TTL].value);
	}
	if (opts[O_USES].value != NULL && parse_u64(opts[O_USES].value, 1, 1000, &uses) != 0) {
		return usage_error("mint: --uses '%s': expected an integer in 1..1000",
		    opts[O_USES].value);
	}
	if (opts[O_ARGS].value != NULL && read_args_file(opts[O_ARGS].value, &args) != 0) {
		return EXIT_FAIL;
	}
	if (opts[O_APPR].value != NULL) {
		if (read_args_file(opts[O_APPR].value, &approvals) != 0) {
			rc = EXIT_FAIL;
			goto out;
		}
		/* attestd checks each item; only the shape is caught here. */
		if (!json_is_array(approvals)) {
			rc = fail_msg("mint", "--approvals: expected a JSON array of approvals");
			goto out;
		}
	}

	req = json_pack("{s:s, s:s, s:s, s:s}", "aud", opts[O_AUD].value,
	    "vm", opts[O_VM].value, "launch_digest", opts[O_LAUNCH].value,
	    "op", opts[O_OP].value);
	if (req == NULL ||
	    (args != NULL && json_object_set(req, "args", args) != 0) ||
	    (opts[O_ARGS_SHA].value != NULL &&
	     json_object_set_new(req, "args_sha256", json_string(opts[O_ARGS_SHA].value)) != 0) ||
	    (ttl != 0 && json_object_set_new(req, "ttl", json_integer((json_int_t)ttl)) != 0) ||
	    (uses != 0 && json_object_set_new(req, "uses", json_integer((json_int_t)uses)) != 0) ||
	    (opts[O_REQ].value != NULL &&
	     json_object_set_new(req, "request", json_string(opts[O_REQ].value)) != 0) ||
	    (approvals != NULL && json_object_set(req, "approvals", approvals) != 0)) {
		rc = fail_msg("mint", "out of memory");
		goto out;
	}
	r = uhttp_new_unix(sock, &h);
	if (r == 0) {
		r = uhttp_request_json(h, "POST", "/v1/mint", req, &status, &rep);
	}
	if (r != 0) {
		fprintf(stderr, "attestctl: mint: %s: %s\n", sock, conn_error(r));
		rc = EXIT_FAIL;
		goto out;
	}
	if (status < 200 || status > 299) {
		rc = report_http_error("mint", status, rep);
		goto out;
	}
	print_json(rep);
	rc = EXIT_OK;
out:
	if (rep != NULL) {
		/* The reply holds a bearer token. */
		json_t *tok = json_object_get(rep, "token");

		if (json_is_string(tok)) {
			explicit_bzero((char *)json_string_value(tok), json_string_length(tok));
		}
	}
	json_decref(rep);
	json_decref(req);
	json_decref(args);
	json_decref(approvals);
	uhttp_free(h);
	return rc;
}

/* --- approvers ------------------------------------------------------------ */

#define ENROLMENT_MAX 8192

/* An enrolment record from FILE or, for "-", standard input. */
static int
read_record(const char *path, char **ret, size_t *ret_len)
{
	char *buf = NULL;
	size_t len = 0;

	if (strcmp(path, "-") != 0) {
		return fs_read_file(path, ENROLMENT_MAX, ret, ret_len);
	}
	buf = malloc(ENROLMENT_MAX + 2);
	if (buf == NULL) {
		return -ENOMEM;
	}
	len = fread(buf, 1, ENROLMENT_MAX + 1, stdin);
	if (ferror(stdin)) {
		free(buf);
		return -EIO;
	}
	if (len > ENROLMENT_MAX) {
		free(buf);
		return -EFBIG;
	}
	buf[len] = '\0';
	*ret = buf;
	*ret_len = len;
	return 0;
}

static int
approvers_request(const char *sock, const char *what, const char *method, const char *path,
    const char *body, size_t body_len, long *ret_status, json_t **ret)
{
	struct uhttp *h = NULL;
	char *text = NULL;
	size_t len = 0;
	int r;

	r = uhttp_new_unix(sock, &h);
	if (r == 0) {
		r = uhttp_request(h, method, path, body, body_len, ret_status, &text, &len);
	}
	if (r == 0 && cjson_parse(text, len, UHTTP_MAX_BODY, ret) != 0) {
		r = -EPROTO;
	}
	if (r != 0) {
		fprintf(stderr, "attestctl: %s: %s: %s\n", what, sock, conn_error(r));
	}
	free(text);
	uhttp_free(h);
	return r;
}

/* What root is about to enrol, read from the record itself: the approver
 * service that produced it may be compromised, so the fingerprint shown
 * is computed here, from the very bytes attestd is sent, for root to
 * compare with the one the person reads off their own Passkeys page.
 * attestd checks the record fully; this takes only what is shown. */
struct enrol_summary {
	char approver[TOKEN_ID_MAX + 1];
	char cred_id[4 * ((WEBAUTHN_CRED_ID_MAX + 2) / 3) + 1];
	struct webauthn_credential cred;
	char fp[WEBAUTHN_FP_MAX];
};

static int
summarize_record(const char *buf, size_t len, struct enrol_summary *ret, const char **ret_bad)
{
	struct enrol_summary e;
	json_t *root = NULL;
	const json_t *v;
	const char *bad = "the record is not a strict JSON object", *str;
	int r = -EINVAL;

	memset(&e, 0, sizeof(e));
	if (cjson_parse(buf, len, ENROLMENT_MAX, &root) != 0 || !json_is_object(root)) {
		goto out;
	}
	bad = "field 'approver'";
	v = json_object_get(root, "approver");
	str = json_string_value(v);
	if (str == NULL || strlen(str) != json_string_length(v) || strlen(str) > TOKEN_ID_MAX ||
	    parse_ident(str, TOKEN_ID_MAX) != 0) {
		goto out;
	}
	memcpy(e.approver, str, strlen(str) + 1);
	bad = "field 'credential_id'";
	str = cjson_get_str(root, "credential_id");
	if (str == NULL || b64url_decode(str, strlen(str), e.cred.id, sizeof(e.cred.id),
	    &e.cred.id_len) != 0 || e.cred.id_len == 0 ||
	    b64url_encode(e.cred.id, e.cred.id_len, e.cred_id, sizeof(e.cred_id)) < 0) {
		goto out;
	}
	bad = "field 'alg'";
	if (webauthn_alg_parse(cjson_get_str(root, "alg"), &e.cred.alg) != 0) {
		goto out;
	}
	bad = "field 'public_key'";
	str = cjson_get_str(root, "public_key");
	if (str == NULL || b64url_decode(str, strlen(str), e.cred.pk, sizeof(e.cred.pk),
	    &e.cred.pk_len) != 0 || webauthn_fingerprint(&e.cred, e.fp) != 0) {
		goto out;
	}
	*ret = e;
	r = 0;
out:
	if (r != 0 && ret_bad != NULL) {
		*ret_bad = bad;
	}
	json_decref(root);
	return r;
}

/* Ask on the terminal; only "y" or "yes" enrols. */
static bool
confirm_enrol(const char *name)
{
	char line[64];
	size_t n;

	fprintf(stderr, "Enrol this key for %s? [y/N] ", name);
	fflush(stderr);
	/* FILE "-" read the record from this terminal up to end-of-file. */
	clearerr(stdin);
	if (fgets(line, sizeof(line), stdin) == NULL) {
		fputc('\n', stderr);
		return false;
	}
	n = strcspn(line, "\r\n");
	line[n] = '\0';
	return strcmp(line, "y") == 0 || strcmp(line, "Y") == 0 || strcmp(line, "yes") == 0 ||
	    strcmp(line, "YES") == 0 || strcmp(line, "Yes") == 0;
}

static void
print_approvers_table(const json_t *rep)
{
	const json_t *people = json_object_get(rep, "approvers"), *p, *c, *ops, *q;
	const char *op;
	size_t i, j;

	if (!json_is_true(json_object_get(rep, "configured"))) {
		printf("approvals: not configured (attestd's configuration has no \"approvals\")\n");
	} else {
		printf("relying party: %s\n", cjson_get_str(rep, "rp_id") != NULL ?
		    cjson_get_str(rep, "rp_id") : "?");
		printf("quorum: default %lld",
		    (long long)json_integer_value(json_object_get(json_object_get(rep, "quorum"),
		    "default")));
		ops = json_object_get(json_object_get(rep, "quorum"), "ops");
		json_object_foreach((json_t *)ops, op, q) {
			printf(", %s %lld", op, (long long)json_integer_value(q));
		}
		printf("\n");
	}
	printf("%-20s %-6s %10s %12s  %-50s  %s\n", "APPROVER", "ALG", "COUNTER", "ADDED",
	    "FINGERPRINT", "CREDENTIAL");
	json_array_foreach(people, i, p) {
		json_array_foreach(json_object_get(p, "credentials"), j, c) {
			const char *fp = cjson_get_str(c, "fingerprint");

			printf("%-20s %-6s %10lld %12lld  %-50s  %s\n", cjson_get_str(p, "name"),
			    cjson_get_str(c, "alg"),
			    (long long)json_integer_value(json_object_get(c, "sign_count")),
			    (long long)json_integer_value(json_object_get(c, "added")),
			    fp != NULL ? fp : "?", cjson_get_str(c, "id"));
		}
	}
	if (json_array_size(people) == 0) {
		printf("(no approvers enrolled)\n");
	}
}

static int
cmd_approvers(const char *sock, int argc, char **argv)
{
	enum { O_JSON, O_CRED, O_YES };
	struct args_opt opts[] = { ARGS_FLAG("json"), ARGS_OPT("credential"), ARGS_FLAG("yes"),
	    ARGS_END };
	struct enrol_summary *sum = NULL;
	const char *bad = NULL;
	struct args a;
	json_t *rep = NULL;
	char *body = NULL, path[2048];
	size_t len = 0;
	long status = 0;
	int r, rc, n;

	rc = parse_args(argc, argv, opts, &a);
	if (rc != 0) {
		return rc;
	}
	if (a.help) {
		fputs(usage_text, stdout);
		return EXIT_OK;
	}
	if (a.n_pos == 0) {
		return usage_error("approvers: expected 'add', 'list' or 'remove'");
	}
	if (strcmp(a.pos[0], "add") == 0) {
		if (a.n_pos != 2 || opts[O_JSON].set || opts[O_CRED].value != NULL) {
			return usage_error("approvers add: expected exactly one FILE (or '-')");
		}
		if (!opts[O_YES].set && !isatty(STDIN_FILENO)) {
			/* Nobody to ask: a script must say that it has compared. */
			return usage_error("approvers add: standard input is not a terminal, so there "
			    "is no one to confirm the enrolment: compare the key's fingerprint with "
			    "the person first, then give --yes");
		}
		r = read_record(a.pos[1], &body, &len);
		if (r != 0) {
			fprintf(stderr, "attestctl: approvers add: %s: %s\n", a.pos[1],
			    r == -EFBIG ? "larger than 8192 bytes" : r == -ELOOP ?
			    "is a symbolic link" : strerror(-r));
			return EXIT_FAIL;
		}
		sum = calloc(1, sizeof(*sum));
		if (sum == NULL) {
			rc = fail_msg("approvers add", strerror(ENOMEM));
			goto out;
		}
		if (summarize_record(body, len, sum, &bad) != 0) {
			fprintf(stderr, "attestctl: approvers add: %s is not an enrolment record: %s\n",
			    strcmp(a.pos[1], "-") == 0 ? "standard input" : a.pos[1], bad);
			rc = EXIT_FAIL;
			goto out;
		}
		fprintf(stderr, "About to enrol:\n"
		    "  person:         %s\n"
		    "  credential id:  %s\n"
		    "  algorithm:      %s\n"
		    "  fingerprint:    %s\n"
		    "Ask %s to read you the fingerprint their Passkeys page shows, in person or\n"
		    "by phone, not through the approver; enrol only if the two are the same.\n",
		    sum->approver, sum->cred_id, webauthn_alg_name(sum->cred.alg), sum->fp,
		    sum->approver);
		if (!opts[O_YES].set && !confirm_enrol(sum->approver)) {
			fprintf(stderr, "attestctl: approvers add: not enrolled\n");
			rc = EXIT_FAIL;
			goto out;
		}
		if (approvers_request(sock, "approvers add", "POST", "/v1/approvers", body, len,
		    &status, &rep) != 0) {
			rc = EXIT_FAIL;
			goto out;
		}
		if (status != 201) {
			rc = report_http_error("approvers add", status, rep);
			goto out;
		}
		print_json(rep);
		rc = EXIT_OK;
	} else if (strcmp(a.pos[0], "list") == 0) {
		if (a.n_pos != 1 || opts[O_CRED].value != NULL || opts[O_YES].set) {
			return usage_error("approvers list: takes only --json");
		}
		if (approvers_request(sock, "approvers list", "GET", "/v1/approvers", NULL, 0,
		    &status, &rep) != 0) {
			rc = EXIT_FAIL;
			goto out;
		}
		if (status != 200) {
			rc = report_http_error("approvers list", status, rep);
			goto out;
		}
		if (opts[O_JSON].set) {
			print_json(rep);
		} else {
			print_approvers_table(rep);
		}
		rc = EXIT_OK;
	} else if (strcmp(a.pos[0], "remove") == 0) {
		const char *cred = opts[O_CRED].value;
		uint8_t id[1024];
		size_t idlen = 0;

		if (a.n_pos != 2 || opts[O_JSON].set || opts[O_YES].set) {
			return usage_error("approvers remove: expected NAME [--credential ID]");
		}
		if ((rc = check_ident("approvers remove: NAME", a.pos[1])) != 0) {
			return rc;
		}
		if (cred != NULL && (b64url_decode(cred, strlen(cred), id, sizeof(id), &idlen) != 0 ||
		    idlen == 0)) {
			return usage_error("approvers remove: --credential: expected the credential id "
			    "in unpadded base64url");
		}
		n = snprintf(path, sizeof(path), "/v1/approvers/%s%s%s", a.pos[1],
		    cred != NULL ? "/" : "", cred != NULL ? cred : "");
		if (n < 0 || (size_t)n >= sizeof(path)) {
			return usage_error("approvers remove: --credential is too long");
		}
		if (approvers_request(sock, "approvers remove", "DELETE", path, NULL, 0, &status,
		    &rep) != 0) {
			rc = EXIT_FAIL;
			goto out;
		}
		if (status != 200) {
			rc = report_http_error("approvers remove", status, rep);
			goto out;
		}
		print_json(rep);
		rc = EXIT_OK;
	} else {
		return usage_error("approvers: unknown subcommand '%s'", a.pos[0]);
	}
out:
	json_decref(rep);
	free(body);
	free(sum);
	return rc;
}

/* The valid answer: what the token says and what it grants. */
static json_t *
valid_json(const char *token, const struct token_grant *g)
{
	struct token *t = NULL;
	json_t *cavs = NULL, *j = NULL;
	size_t i;

	if (token_parse(token, strlen(token), &t) != 0) {
		return NULL;
	}
	cavs = json_array();
	for (i = 0; cavs != NULL && i < token_caveat_count(t); i++) {
		if (json_array_append_new(cavs, token_caveat_to_json(token_caveat(t, i))) != 0) {
			json_decref(cavs);
			cavs = NULL;
		}
	}
	if (cavs != NULL) {
		j = json_pack("{s:b, s:o, s:o, s:{s:I, s:I}}", "valid", 1,
		    "claims", token_claims_to_json(token_claims(t)), "caveats", cavs,
		    "grant", "exp", (json_int_t)g->exp, "uses", (json_int_t)g->uses);
	}
	token_free(t);
	return j;
}

static int
cmd_verify(const char *sock, int argc, char **argv)
{
	enum { O_AUD, O_VM, O_LAUNCH, O_OP, O_ARGS, O_ARGS_SHA, O_DB };
	struct args_opt opts[] = {
		ARGS_OPT("aud"), ARGS_OPT("vm"), ARGS_OPT("launch-digest"), ARGS_OPT("op"),
		ARGS_OPT("args-file"), ARGS_OPT("args-sha256"), ARGS_OPT("consume-db"),
		ARGS_END,
	};
	struct token_expect e;
	struct token_grant g;
	struct verifier *v = NULL;
	struct replay *rp = NULL;
	struct args a;
	const char *reason = NULL;
	json_t *args = NULL, *out_j = NULL;
	char *token = NULL;
	int r, rc;

	rc = parse_args(argc, argv, opts, &a);
	if (rc != 0) {
		return rc;
	}
	if (a.help) {
		fputs(usage_text, stdout);
		return EXIT_OK;
	}
	if (a.n_pos != 1) {
		return usage_error("verify: expected exactly one TOKEN (or '-')");
	}
	if (opts[O_AUD].value == NULL) {
		return usage_error("verify: --aud is required");
	}
	if (opts[O_ARGS].value != NULL && opts[O_ARGS_SHA].value != NULL) {
		return usage_error("verify: give at most one of --args-file and --args-sha256");
	}
	if ((rc = check_ident("--aud", opts[O_AUD].value)) != 0 ||
	    (rc = check_ident("--vm", opts[O_VM].value)) != 0 ||
	    (rc = check_hex256("--launch-digest", opts[O_LAUNCH].value)) != 0 ||
	    (rc = check_hex256("--args-sha256", opts[O_ARGS_SHA].value)) != 0 ||
	    (rc = check_op(opts[O_OP].value)) != 0) {
		return rc;
	}
	if (opts[O_ARGS].value != NULL && read_args_file(opts[O_ARGS].value, &args) != 0) {
		return EXIT_FAIL;
	}
	r = read_token(a.pos[0], &token);
	if (r != 0) {
		rc = fail_msg("verify", r == -E2BIG ? "token on stdin is too long" :
		    "cannot read the token");
		goto out;
	}
	r = verifier_new(sock, opts[O_AUD].value, &v);
	if (r != 0) {
		fprintf(stderr, "attestctl: verify: %s\n", strerror(-r));
		rc = EXIT_FAIL;
		goto out;
	}
	if (opts[O_DB].value != NULL) {
		r = replay_open(opts[O_DB].value, &rp);
		if (r != 0) {
			fprintf(stderr, "attestctl: verify: --consume-db %s: %s\n",
			    opts[O_DB].value, strerror(-r));
			rc = EXIT_FAIL;
			goto out;
		}
		verifier_set_replay(v, rp);
	}
	memset(&e, 0, sizeof(e));
	e.aud = opts[O_AUD].value;
	e.vm = opts[O_VM].value;
	e.launch = opts[O_LAUNCH].value;
	e.op = opts[O_OP].value;
	e.args_sha256 = opts[O_ARGS_SHA].value;
	e.args = args;
	e.skew = VERIFY_SKEW;
	r = verifier_verify(v, token, &e, &g, &reason);
	if (r != 0) {
		out_j = json_pack("{s:b, s:s}", "valid", 0, "reason",
		    reason != NULL ? reason : "malformed");
		if (out_j != NULL) {
			print_json(out_j);
		}
		if (reason != NULL && (strcmp(reason, "attestd_unavailable") == 0 ||
		    strcmp(reason, "replay_unavailable") == 0)) {
			fprintf(stderr, "attestctl: verify: %s: %s\n", reason,
			    strcmp(reason, "attestd_unavailable") == 0 ? conn_error(r) : strerror(-r));
		}
		rc = EXIT_FAIL;
		goto out;
	}
	out_j = valid_json(token, &g);
	if (out_j == NULL) {
		rc = fail_msg("verify", "out of memory");
		goto out;
	}
	print_json(out_j);
	rc = EXIT_OK;
out:
	json_decref(out_j);
	json_decref(args);
	free_token(token);
	verifier_free(v);
	replay_close(rp);
	return rc;
}

/* The launch socket: the option, $WARRANT_LAUNCH_SOCKET, or the file
 * attestd puts beside its HTTP socket by default. */
static int
launch_socket_path(const char *opt, const char *sock, char *buf, size_t n)
{
	const char *env = getenv("WARRANT_LAUNCH_SOCKET"), *slash;
	int len;

	if (opt != NULL) {
		len = snprintf(buf, n, "%s", opt);
	} else if (env != NULL && env[0] != '\0') {
		len = snprintf(buf, n, "%s", env);
	} else if ((slash = strrchr(sock, '/')) != NULL) {
		len = snprintf(buf, n, "%.*s/attestd-launch.sock", (int)(slash - sock), sock);
	} else {
		len = snprintf(buf, n, "%s", LAUNCH_DEFAULT_SOCKET);
	}
	return len < 0 || (size_t)len >= n ? -ENAMETOOLONG : 0;
}

static const char *
seal_error(int r)
{
	switch (r) {
	case -ELOOP: {
		return "is a symbolic link; name the file itself";
	}
	case -EINVAL: {
		return "not a regular file";
	}
	case -EFBIG: {
		return "over the size limit";
	}
	case -ESTALE: {
		return "changed size while it was copied";
	}
	default: {
		return strerror(-r);
	}
	}
}

static void
wipe_reply_token(json_t *rep)
{
	json_t *tok = json_object_get(rep, "token");

	if (json_is_string(tok)) {
		explicit_bzero((char *)json_string_value(tok), json_string_length(tok));
	}
}

static int
cmd_measure(const char *sock, int argc, char **argv)
{
	enum { O_LSOCK };
	struct args_opt opts[] = { ARGS_OPT("launch-socket"), ARGS_END };
	struct launch_fds fds = { -1, -1, -1 };
	struct manifest *m = NULL;
	struct args a;
	json_t *rep = NULL;
	char lsock[256], err[512];
	const char *kinds[3] = { "kernel", "initrd", "rootfs" };
	int *slots[3] = { &fds.kernel, &fds.initrd, &fds.rootfs };
	uint64_t max[3] = { MANIFEST_KERNEL_MAX, MANIFEST_INITRD_MAX, MANIFEST_ROOTFS_MAX };
	json_int_t status;
	size_t i;
	int r, rc;

	rc = parse_args(argc, argv, opts, &a);
	if (rc != 0) {
		return rc;
	}
	if (a.help) {
		fputs(usage_text, stdout);
		return EXIT_OK;
	}
	if (a.n_pos != 1) {
		return usage_error("measure: give exactly one MANIFEST");
	}
	if (launch_socket_path(opts[O_LSOCK].value, sock, lsock, sizeof(lsock)) < 0) {
		return usage_error("measure: the launch socket's path is too long");
	}
	r = manifest_load(a.pos[0], &m, err, sizeof(err));
	if (r != 0) {
		fprintf(stderr, "attestctl: measure: %s\n", err);
		rc = EXIT_FAIL;
		goto out;
	}
	for (i = 0; i < 3; i++) {
		const char *path = i == 0 ? m->kernel : i == 1 ? m->initrd : m->rootfs;

		if (path[0] == '\0') {
			continue;
		}
		r = artifact_seal(path, kinds[i], max[i], slots[i], NULL);
		if (r != 0) {
			fprintf(stderr, "attestctl: measure: %s %s: %s\n", kinds[i], path,
			    seal_error(r));
			rc = EXIT_FAIL;
			goto out;
		}
	}
	r = launch_request(lsock, m, &fds, &rep);
	if (r != 0) {
		fprintf(stderr, "attestctl: measure: %s: %s\n", lsock, r == -ENOENT ?
		    "no launch socket there (is attestd running? see --launch-socket)" :
		    r == -EFBIG ? "the request is over 65536 bytes" : conn_error(r));
		rc = EXIT_FAIL;
		goto out;
	}
	print_json(rep);
	status = json_integer_value(json_object_get(rep, "status"));
	if (status != 200) {
		const char *code = cjson_get_str(rep, "error"), *detail = cjson_get_str(rep, "detail");

		fprintf(stderr, "attestctl: measure: attestd answered %lld %s%s%s\n",
		    (long long)status, code != NULL ? code : "(no error code)",
		    detail != NULL ? ": " : "", detail != NULL ? detail : "");
		rc = EXIT_FAIL;
		goto out;
	}
	rc = EXIT_OK;
out:
	wipe_reply_token(rep);
	json_decref(rep);
	for (i = 0; i < 3; i++) {
		if (*slots[i] >= 0) {
			(void)close(*slots[i]);
		}
	}
	manifest_free(m);
	return rc;
}

/* 1..QUOTE_NONCE_MAX bytes of lower-case hex. */
static int
parse_nonce(const char *s, uint8_t out[QUOTE_NONCE_MAX], size_t *ret_len)
{
	size_t len = s != NULL ? strlen(s) : 0;

	if (len == 0 || len % 2 != 0 || len > 2 * QUOTE_NONCE_MAX || parse_hex(s, out, len / 2) != 0) {
		return usage_error("--nonce: expected 1..%d bytes as lower-case hex", QUOTE_NONCE_MAX);
	}
	*ret_len = len / 2;
	return 0;
}

static int
cmd_quote(const char *sock, int argc, char **argv)
{
	enum { O_NONCE, O_SOCK };
	struct args_opt opts[] = { ARGS_OPT("nonce"), ARGS_OPT("socket"), ARGS_END };
	uint8_t nonce[QUOTE_NONCE_MAX];
	struct uhttp *h = NULL;
	struct args a;
	json_t *req = NULL, *rep = NULL;
	size_t nlen = 0;
	long status = 0;
	int r, rc;

	rc = parse_args(argc, argv, opts, &a);
	if (rc != 0) {
		return rc;
	}
	if (a.help) {
		fputs(usage_text, stdout);
		return EXIT_OK;
	}
	if (a.n_pos != 0) {
		return usage_error("quote: unexpected argument '%s'", a.pos[0]);
	}
	if (opts[O_NONCE].value == NULL) {
		return usage_error("quote: --nonce is required");
	}
	rc = parse_nonce(opts[O_NONCE].value, nonce, &nlen);
	if (rc != 0) {
		return rc;
	}
	if (opts[O_SOCK].value != NULL) {
		sock = opts[O_SOCK].value;
	}
	req = json_pack("{s:s}", "nonce", opts[O_NONCE].value);
	if (req == NULL) {
		return fail_msg("quote", "out of memory");
	}
	r = uhttp_new_unix(sock, &h);
	/* The reply carries the whole event log (up to EVENTLOG_MAX_BYTES,
	 * longer once escaped in a JSON string): far over uhttp's default. */
	if (r == 0) {
		r = uhttp_set_max_reply(h, QUOTE_DOC_MAX);
	}
	if (r == 0) {
		r = uhttp_request_json(h, "POST", "/v1/quote", req, &status, &rep);
	}
	if (r != 0) {
		if (r == -EPROTO) {
			fprintf(stderr, "attestctl: quote: %s: %s (or a quote document over %zu MiB)\n",
			    sock, conn_error(r), (size_t)QUOTE_DOC_MAX >> 20);
		} else {
			fprintf(stderr, "attestctl: quote: %s: %s\n", sock, conn_error(r));
		}
		rc = EXIT_FAIL;
		goto out;
	}
	if (status != 200) {
		rc = report_http_error("quote", status, rep);
		goto out;
	}
	print_json(rep);
	rc = EXIT_OK;
out:
	json_decref(rep);
	json_decref(req);
	uhttp_free(h);
	return rc;
}

/* Read a public input (the AK's PEM, a quote document) of at most cap
 * bytes. Besides regular files (opened with O_NOFOLLOW, like every other
 * file) it takes what a shell's process substitution names, /dev/fd/N:
 * that descriptor is read as it is, pipe or file, since opening the
 * symlink would be refused. */
static int
read_input(const char *path, size_t cap, char **ret, size_t *ret_len)
{
	uint64_t n;
	char *buf = NULL;
	size_t len = 0;
	int fd, r;

	if (strncmp(path, "/dev/fd/", 8) != 0 || parse_u64(path + 8, 0, INT32_MAX, &n) != 0) {
		return fs_read_file(path, cap, ret, ret_len);
	}
	fd = (int)n;
	buf = malloc(cap + 1);
	if (buf == NULL) {
		return -ENOMEM;
	}
	for (;;) {
		ssize_t k = read(fd, buf + len, cap + 1 - len);

		if (k < 0) {
			if (errno == EINTR) {
				continue;
			}
			r = -errno;
			goto out;
		}
		if (k == 0) {
			break;
		}
		len += (size_t)k;
		if (len > cap) {
			r = -EFBIG;
			goto out;
		}
	}
	buf[len] = '\0';
	*ret = buf;
	*ret_len = len;
	buf = NULL;
	r = 0;
out:
	free(buf);
	return r;
}

static int
cmd_verify_quote(int argc, char **argv)
{
	enum { O_AK, O_NONCE };
	struct args_opt opts[] = { ARGS_OPT("ak"), ARGS_OPT("nonce"), ARGS_END };
	uint8_t nonce[QUOTE_NONCE_MAX];
	const char *reason = NULL;
	char *pem = NULL, *text = NULL;
	size_t pem_len = 0, text_len = 0, nlen = 0;
	json_t *doc = NULL, *report = NULL;
	struct args a;
	int r, rc;

	rc = parse_args(argc, argv, opts, &a);
	if (rc != 0) {
		return rc;
	}
	if (a.help) {
		fputs(usage_text, stdout);
		return EXIT_OK;
	}
	if (a.n_pos != 1) {
		return usage_error("verify-quote: give exactly one QUOTE.json");
	}
	if (opts[O_AK].value == NULL || opts[O_NONCE].value == NULL) {
		return usage_error("verify-quote: --ak and --nonce are required");
	}
	rc = parse_nonce(opts[O_NONCE].value, nonce, &nlen);
	if (rc != 0) {
		return rc;
	}
	r = read_input(opts[O_AK].value, AK_PEM_MAX, &pem, &pem_len);
	if (r != 0) {
		fprintf(stderr, "attestctl: verify-quote: %s: %s\n", opts[O_AK].value,
		    r == -ELOOP ? "is a symbolic link" : strerror(-r));
		rc = EXIT_FAIL;
		goto out;
	}
	r = read_input(a.pos[0], QUOTE_DOC_MAX, &text, &text_len);
	if (r == 0) {
		r = cjson_parse(text, text_len, QUOTE_DOC_MAX, &doc);
	}
	if (r != 0) {
		fprintf(stderr, "attestctl: verify-quote: %s: %s\n", a.pos[0],
		    r == -EINVAL ? "not a strict JSON document" : strerror(-r));
		rc = EXIT_FAIL;
		goto out;
	}
	r = quote_verify(doc, pem, pem_len, nonce, nlen, &report, &reason);
	if (r != 0) {
		json_t *j = json_pack("{s:b,s:s}", "valid", 0, "reason",
		    reason != NULL ? reason : strerror(-r));

		if (j != NULL) {
			print_json(j);
		}
		json_decref(j);
		fprintf(stderr, "attestctl: verify-quote: the quote does not verify: %s\n",
		    reason != NULL ? reason : strerror(-r));
		rc = EXIT_FAIL;
		goto out;
	}
	print_json(report);
	rc = EXIT_OK;
out:
	json_decref(report);
	json_decref(doc);
	free(text);
	free(pem);
	return rc;
}

static int
cmd_token(int argc, char **argv)
{
	struct args_opt opts[] = { ARGS_END };
	struct token_caveat cav;
	struct token *t = NULL;
	struct args a;
	json_t *j = NULL;
	char *token = NULL, *out = NULL;
	int r, rc;

	rc = parse_args(argc, argv, opts, &a);
	if (rc != 0) {
		return rc;
	}
	if (a.help) {
		fputs(usage_text, stdout);
		return EXIT_OK;
	}
	if (a.n_pos == 0) {
		return usage_error("token: expected 'inspect' or 'attenuate'");
	}
	if (strcmp(a.pos[0], "inspect") == 0) {
		if (a.n_pos != 2) {
			return usage_error("token inspect: expected exactly one TOKEN");
		}
	} else if (strcmp(a.pos[0], "attenuate") == 0) {
		if (a.n_pos != 3) {
			return usage_error("token attenuate: expected TOKEN and CAVEAT_JSON");
		}
	} else {
		return usage_error("token: unknown subcommand '%s'", a.pos[0]);
	}
	r = read_token(a.pos[1], &token);
	if (r != 0) {
		rc = fail_msg("token", r == -E2BIG ? "token on stdin is too long" :
		    "cannot read the token");
		goto out;
	}
	r = token_parse(token, strlen(token), &t);
	if (r != 0) {
		rc = fail_msg("token", r == -EPROTONOSUPPORT ?
		    "unsupported token version (expected " TOKEN_VERSION ")" :
		    "not a well-formed token");
		goto out;
	}
	if (strcmp(a.pos[0], "inspect") == 0) {
		j = token_to_json(t);
		if (j == NULL) {
			rc = fail_msg("token inspect", "out of memory");
			goto out;
		}
		print_json(j);
		rc = EXIT_OK;
		goto out;
	}

	if (cjson_parse(a.pos[2], strlen(a.pos[2]), CAVEAT_MAX, &j) != 0 ||
	    token_caveat_from_json(j, &cav) != 0) {
		rc = fail_msg("token attenuate", "CAVEAT_JSON is not a caveat; expected one of "
		    "{\"type\":\"exp\",\"exp\":N}, {\"type\":\"ops\",\"ops\":[OP,...]}, "
		    "{\"type\":\"uses\",\"uses\":N}, "
		    "{\"type\":\"arg_prefix\",\"arg\":NAME,\"prefix\":STRING}");
		goto out;
	}
	r = token_attenuate(token, strlen(token), &cav, &out);
	if (r != 0) {
		rc = fail_msg("token attenuate", r == -E2BIG ?
		    "the token would have too many caveats or be too long" : strerror(-r));
		goto out;
	}
	printf("%s\n", out);
	rc = EXIT_OK;
out:
	json_decref(j);
	token_free(t);
	free_token(token);
	free_token(out);
	return rc;
}

int
main(int argc, char **argv)
{
	const char *sock = NULL, *cmd;
	int i = 1;

	while (i < argc && strncmp(argv[i], "-", 1) == 0) {
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			fputs(usage_text, stdout);
			return EXIT_OK;
		}
		if (strcmp(argv[i], "--socket") == 0 || strncmp(argv[i], "--socket=", 9) == 0) {
			const char *val = argv[i][8] == '=' ? argv[i] + 9 : NULL;

			if (val == NULL) {
				if (i + 1 >= argc) {
					return usage_error("option '%s' needs a value", argv[i]);
				}
				val = argv[++i];
			}
			if (sock != NULL) {
				return usage_error("option '%s' given twice", "--socket");
			}
			if (val[0] == '\0') {
				return usage_error("--socket: empty path");
			}
			sock = val;
			i++;
			continue;
		}
		return usage_error("unknown option '%s'", argv[i]);
	}
	if (i >= argc) {
		return usage_error("no command given");
	}
	cmd = argv[i++];
	if (strcmp(cmd, "status") == 0) {
		return cmd_status(socket_path(sock), argc - i, argv + i);
	}
	if (strcmp(cmd, "mint") == 0) {
		return cmd_mint(socket_path(sock), argc - i, argv + i);
	}
	if (strcmp(cmd, "verify") == 0) {
		return cmd_verify(socket_path(sock), argc - i, argv + i);
	}
	if (strcmp(cmd, "approvers") == 0) {
		return cmd_approvers(socket_path(sock), argc - i, argv + i);
	}
	if (strcmp(cmd, "token") == 0) {
		return cmd_token(argc - i, argv + i);
	}
	if (strcmp(cmd, "measure") == 0) {
		return cmd_measure(socket_path(sock), argc - i, argv + i);
	}
	if (strcmp(cmd, "quote") == 0) {
		return cmd_quote(socket_path(sock), argc - i, argv + i);
	}
	if (strcmp(cmd, "verify-quote") == 0) {
		return cmd_verify_quote(argc - i, argv + i);
	}
	if (strcmp(cmd, "help") == 0) {
		fputs(usage_text, stdout);
		return EXIT_OK;
	}
	return usage_error("unknown command '%s'", cmd);
}
