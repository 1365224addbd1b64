/* gate-client: one gated call's approval, asked of the approver service
 * through vmhost's approver sink (gate.h), as a tool proxy asks it. The
 * integration tests drive it against a real approver.
 *
 *   gate-client --approver ADDR [--ca FILE --cert FILE --key FILE]
 *       --vm V --launch-digest HEX --op OP --args JSON [--reason R]
 *       [--ttl N] [--timeout S] [--aud A] [--owner NAME] [--id-file F]
 *
 * Prints "approved TOKEN" (exit 0), "denied REASON" (exit 3), "timeout"
 * (exit 4); an error goes to standard error (exit 1; a usage error 2).
 * --id-file gets the request's id as soon as it is submitted, so that a
 * test can decide it while this waits.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "args.h"
#include "cjson.h"
#include "parse.h"

#include "../../vmhost/gate.h"

#define EXIT_APPROVED  0
#define EXIT_ERROR     1
#define EXIT_USAGE     2
#define EXIT_DENIED    3
#define EXIT_TIMEOUT   4

#define ARGS_JSON_MAX      (64 * 1024)
#define TTL_DEFAULT        300
#define TIMEOUT_DEFAULT_S  60
#define TIMEOUT_MAX_S      86400

static void
usage(void)
{
	fprintf(stderr,
	    "usage: gate-client --approver ADDR [--ca FILE --cert FILE --key FILE]\n"
	    "           --vm V --launch-digest HEX --op OP --args JSON [--reason R]\n"
	    "           [--ttl N] [--timeout S] [--aud A] [--owner NAME] [--id-file F]\n");
}

/* The id, written whole or not at all (a reader polls for the file). */
static int
write_id_file(const char *path, const char *id)
{
	char tmp[4096];
	size_t len = strlen(id);
	int fd, n, rc = 0;

	n = snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	if (n < 0 || (size_t)n >= sizeof(tmp)) {
		return -ENAMETOOLONG;
	}
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
	if (fd < 0) {
		return -errno;
	}
	if (write(fd, id, len) != (ssize_t)len || write(fd, "\n", 1) != 1) {
		rc = -EIO;
	}
	if (close(fd) != 0 && rc == 0) {
		rc = -errno;
	}
	if (rc == 0 && rename(tmp, path) != 0) {
		rc = -errno;
	}
	if (rc != 0) {
		(void)unlink(tmp);
	}
	return rc;
}

int
main(int argc, char **argv)
{
	enum { O_APPROVER, O_CA, O_CERT, O_KEY, O_VM, O_LD, O_OP, O_ARGS, O_REASON, O_TTL,
		O_TIMEOUT, O_AUD, O_OWNER, O_ID_FILE };
	struct args_opt opts[] = {
		ARGS_OPT("approver"), ARGS_OPT("ca"), ARGS_OPT("cert"), ARGS_OPT("key"),
		ARGS_OPT("vm"), ARGS_OPT("launch-digest"), ARGS_OPT("op"), ARGS_OPT("args"),
		ARGS_OPT("reason"), ARGS_OPT("ttl"), ARGS_OPT("timeout"), ARGS_OPT("aud"),
		ARGS_OPT("owner"), ARGS_OPT("id-file"), ARGS_END,
	};
	struct gate_request req;
	struct args a;
	struct args_error e;
	struct gate *g = NULL;
	json_t *args_json = NULL;
	char *token = NULL, *reason = NULL;
	uint8_t ld[32], sha[32];
	uint64_t ttl = TTL_DEFAULT, timeout_s = TIMEOUT_DEFAULT_S;
	bool submitted = false;
	int rc, ex = EXIT_ERROR;

	memset(&req, 0, sizeof(req));
	if (args_parse(argc - 1, argv + 1, opts, 0, ARGS_DUP_BY_NAME, &a, &e) != 0) {
		fprintf(stderr, "gate-client: %s'%.*s'%s\n", e.pre, e.arg_len, e.arg, e.post);
		usage();
		return EXIT_USAGE;
	}
	if (a.help) {
		usage();
		return 0;
	}
	if (!opts[O_APPROVER].set || !opts[O_VM].set || !opts[O_LD].set || !opts[O_OP].set ||
	    !opts[O_ARGS].set) {
		fprintf(stderr, "gate-client: --approver, --vm, --launch-digest, --op and --args "
		    "are required\n");
		usage();
		return EXIT_USAGE;
	}
	if (parse_ident(opts[O_VM].value, GATE_ID_MAX) != 0 ||
	    parse_hex(opts[O_LD].value, ld, sizeof(ld)) != 0 ||
	    parse_op(opts[O_OP].value, 256) != 0 ||
	    (opts[O_TTL].set && parse_u64(opts[O_TTL].value, 1, 86400, &ttl) != 0) ||
	    (opts[O_TIMEOUT].set &&
	    parse_u64(opts[O_TIMEOUT].value, 0, TIMEOUT_MAX_S, &timeout_s) != 0)) {
		fprintf(stderr, "gate-client: a bad --vm, --launch-digest, --op, --ttl or "
		    "--timeout\n");
		return EXIT_USAGE;
	}
	rc = cjson_parse(opts[O_ARGS].value, strlen(opts[O_ARGS].value), ARGS_JSON_MAX,
	    &args_json);
	if (rc != 0 || !json_is_object(args_json)) {
		fprintf(stderr, "gate-client: --args is not a JSON object\n");
		json_decref(args_json);
		return EXIT_USAGE;
	}
	rc = cjson_sha256(args_json, sha);
	if (rc != 0) {
		fprintf(stderr, "gate-client: --args: %s\n", strerror(-rc));
		ex = EXIT_USAGE;
		goto out;
	}
	format_hex(sha, sizeof(sha), req.args_sha256);
	rc = gate_new_id(req.id);
	if (rc != 0) {
		fprintf(stderr, "gate-client: a request id: %s\n", strerror(-rc));
		goto out;
	}
	req.vm = opts[O_VM].value;
	req.launch_digest = opts[O_LD].value;
	req.op = opts[O_OP].value;
	req.args = args_json;
	req.reason = opts[O_REASON].set ? opts[O_REASON].value : "";
	req.requested_ttl = (int64_t)ttl;
	req.created = (int64_t)time(NULL);
	req.expires = req.created + (int64_t)timeout_s;

	rc = gate_approver_new(opts[O_APPROVER].value, opts[O_CA].value, opts[O_CERT].value,
	    opts[O_KEY].value, opts[O_AUD].set ? opts[O_AUD].value : "proxy",
	    opts[O_OWNER].value, &g);
	if (rc != 0) {
		fprintf(stderr, "gate-client: the approver sink: %s\n", strerror(-rc));
		ex = rc == -EINVAL ? EXIT_USAGE : EXIT_ERROR;
		goto out;
	}
	rc = gate_submit(g, &req);
	if (rc != 0) {
		fprintf(stderr, "gate-client: submit %s: %s\n", req.id, strerror(-rc));
		goto out;
	}
	submitted = true;
	if (opts[O_ID_FILE].set) {
		rc = write_id_file(opts[O_ID_FILE].value, req.id);
		if (rc != 0) {
			fprintf(stderr, "gate-client: %s: %s\n", opts[O_ID_FILE].value, strerror(-rc));
			goto out;
		}
	}
	rc = gate_wait(g, req.id, timeout_s * 1000, &token, &reason);
	switch (rc) {
	case 0: {
		printf("approved %s\n", token);
		ex = EXIT_APPROVED;
		break;
	}
	case -EACCES: {
		printf("denied %s\n", reason != NULL ? reason : "");
		ex = EXIT_DENIED;
		break;
	}
	case -ETIMEDOUT: {
		printf("timeout\n");
		ex = EXIT_TIMEOUT;
		break;
	}
	default: {
		fprintf(stderr, "gate-client: wait %s: %s\n", req.id, strerror(-rc));
		ex = EXIT_ERROR;
		break;
	}
	}
out:
	if (submitted) {
		gate_done(g, req.id);
	}
	gate_free(g);
	if (token != NULL) {
		explicit_bzero(token, strlen(token));
		free(token);
	}
	free(reason);
	json_decref(args_json);
	if (fflush(stdout) != 0 && ex == EXIT_APPROVED) {
		ex = EXIT_ERROR;
	}
	return ex;
}
