/* libFuzzer target for audit_verify and audit_verify_buf (lib/audit.c) on
 * arbitrary log contents. The input is written to a file in a private
 * folder and verified both ways: the streaming file reader and the buffer
 * verifier must give the same answer (records, or the bad line and its
 * reason). A log that verifies is then continued with audit_open and
 * audit_append (for some inputs: each append costs an fsync) and must
 * verify with one record more. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "audit.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char log_dir[PATH_MAX / 2];
static char log_path[PATH_MAX];

static void
cleanup(void)
{
	(void)unlink(log_path);
	(void)rmdir(log_dir);
}

static void
init(void)
{
	const char *tmp = getenv("TMPDIR");

	snprintf(log_dir, sizeof(log_dir), "%s/fuzz_audit.XXXXXX", tmp != NULL ? tmp : "/tmp");
	if (mkdtemp(log_dir) == NULL) {
		abort();
	}
	snprintf(log_path, sizeof(log_path), "%s/audit.log", log_dir);
	atexit(cleanup);
}

static void
write_log(const uint8_t *data, size_t size)
{
	size_t off = 0;
	int fd;

	fd = open(log_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0) {
		abort();
	}
	while (off < size) {
		ssize_t n = write(fd, data + off, size - off);

		if (n <= 0) {
			abort();
		}
		off += (size_t)n;
	}
	close(fd);
}

static bool
known_reason(const char *r)
{
	static const char *const reasons[] = {
		"hash_mismatch", "prev_mismatch", "seq_gap", "malformed", "torn_tail",
	};
	size_t i;

	for (i = 0; i < sizeof(reasons) / sizeof(reasons[0]); i++) {
		if (r != NULL && strcmp(r, reasons[i]) == 0) {
			return true;
		}
	}
	return false;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint64_t recs_b = 0, recs_f = 0, bad_b = 0, bad_f = 0, lines = 0;
	const char *why_b = NULL, *why_f = NULL;
	struct audit *a = NULL;
	int rb, rf, ro;
	size_t i;

	if (log_path[0] == '\0') {
		init();
	}
	for (i = 0; i < size; i++) {
		lines += data[i] == '\n';
	}
	rb = audit_verify_buf((const char *)data, size, &recs_b, &bad_b, &why_b);
	write_log(data, size);
	rf = audit_verify(log_path, &recs_f, &bad_f, &why_f);
	if (rb != rf) {
		abort();
	}
	if (rb == 0) {
		/* Every line a record, nothing after the last newline. */
		if (recs_b != recs_f || recs_b != lines || (size > 0 && data[size - 1] != '\n')) {
			abort();
		}
	} else {
		if ((rb != -EBADMSG && rb != -EILSEQ) || bad_b != bad_f || !known_reason(why_b) ||
		    strcmp(why_b, why_f) != 0 || bad_b > lines) {
			abort();
		}
		if ((rb == -EILSEQ) != (strcmp(why_b, "torn_tail") == 0)) {
			abort();
		}
	}

	/* audit_open agrees; a good log is continued (for one input in
	 * eight, to keep fsyncs off most runs). */
	ro = audit_open(log_path, &a);
	if (ro != rb || (ro == 0) != (a != NULL)) {
		abort();
	}
	if (ro == 0 && (size == 0 || (data[0] & 7) == 0)) {
		json_t *rec = json_pack("{s:s,s:I}", "event", "fuzz", "n", (json_int_t)size);

		if (rec == NULL || audit_append(a, rec) != 0) {
			abort();
		}
		json_decref(rec);
		if (audit_verify(log_path, &recs_f, NULL, NULL) != 0 || recs_f != recs_b + 1) {
			abort();
		}
	}
	audit_close(a);
	return 0;
}
