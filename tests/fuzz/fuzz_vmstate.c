/* Targets vm_state_parse (vmhost/vm.c): a VM's vm.json, read back by
 * `vmhost list` and `vmhost stop`. The same input also goes to the two
 * other run-state parsers, vm_pid_parse (the pid file) and
 * vm_proc_stat_parse (a /proc/PID/stat line). Checked on every input:
 * - vm_state_parse: an accepted state has valid fields, formats again with
 *   vm_state_format to exactly the canonical dump of the input (nothing
 *   dropped or altered) and reads back to the same state; a refused one
 *   leaves the out-parameter untouched;
 * - vm_pid_parse and vm_proc_stat_parse agree with deliberately naive
 *   references written from the formats, both on what they accept and on
 *   the values they return, and leave their out-parameters alone on
 *   failure. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "cjson.h"
#include "vm.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define SENTINEL 0x5a

static bool
untouched(const void *p, size_t n)
{
	const unsigned char *b = p;
	size_t i;

	for (i = 0; i < n; i++) {
		if (b[i] != SENTINEL) {
			return false;
		}
	}
	return true;
}

static bool
state_equal(const struct vm_state *a, const struct vm_state *b)
{
	return strcmp(a->name, b->name) == 0 && strcmp(a->vm_id, b->vm_id) == 0 &&
	    strcmp(a->launch_digest, b->launch_digest) == 0 &&
	    strcmp(a->vmm, b->vmm) == 0 && strcmp(a->accel, b->accel) == 0 &&
	    a->started == b->started && a->pid == b->pid && a->pid_start == b->pid_start &&
	    a->vmm_pid == b->vmm_pid && a->vmm_start == b->vmm_start &&
	    a->foreground == b->foreground;
}

static bool
state_valid(const struct vm_state *s)
{
	size_t i;

	if (vm_name_check(s->name) != 0 || s->vm_id[0] == '\0' ||
	    strlen(s->launch_digest) != 64 ||
	    (strcmp(s->vmm, "qemu") != 0 && strcmp(s->vmm, "firecracker") != 0) ||
	    (strcmp(s->accel, "kvm") != 0 && strcmp(s->accel, "tcg") != 0) ||
	    s->started < 0 || s->pid < 1 || s->pid > VM_PID_MAX ||
	    s->vmm_pid < 1 || s->vmm_pid > VM_PID_MAX ||
	    s->pid_start > INT64_MAX || s->vmm_start > INT64_MAX) {
		return false;
	}
	for (i = 0; i < 64; i++) {
		char c = s->launch_digest[i];

		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
			return false;
		}
	}
	return true;
}

static void
check_state(const char *buf, size_t len)
{
	struct vm_state s, again;
	json_t *j = NULL;
	char *out = NULL, *canon = NULL;
	size_t out_len = 0, canon_len = 0;

	memset(&s, SENTINEL, sizeof(s));
	if (vm_state_parse(buf, len, &s) != 0) {
		if (!untouched(&s, sizeof(s))) {
			abort();        /* out-parameter written on failure */
		}
		return;
	}
	if (!state_valid(&s)) {
		abort();
	}
	/* What was accepted is what vmhost would have written for it. */
	if (vm_state_format(&s, &out, &out_len) != 0 || strlen(out) != out_len ||
	    out_len > VM_STATE_MAX) {
		abort();
	}
	if (cjson_parse(buf, len, VM_STATE_MAX, &j) != 0 ||
	    cjson_dump(j, &canon, &canon_len) != 0) {
		abort();
	}
	if (canon_len != out_len || memcmp(canon, out, out_len) != 0) {
		abort();
	}
	memset(&again, SENTINEL, sizeof(again));
	if (vm_state_parse(out, out_len, &again) != 0 || !state_equal(&s, &again)) {
		abort();
	}
	json_decref(j);
	free(canon);
	free(out);
}

/* The pid file: canonical decimal 1..VM_PID_MAX, one optional '\n'. */
static bool
ref_pid(const char *b, size_t len, pid_t *ret)
{
	uint64_t v = 0;
	size_t i;

	if (len > 0 && b[len - 1] == '\n') {
		len--;
	}
	if (len == 0 || len > 7 || (b[0] == '0' && len > 1)) {
		return false;
	}
	for (i = 0; i < len; i++) {
		if (b[i] < '0' || b[i] > '9') {
			return false;
		}
		v = v * 10 + (uint64_t)(b[i] - '0');
	}
	if (v < 1 || v > VM_PID_MAX) {
		return false;
	}
	*ret = (pid_t)v;
	return true;
}

static void
check_pid(const char *buf, size_t len)
{
	pid_t got, want = 0;
	int r;

	memset(&got, SENTINEL, sizeof(got));
	r = vm_pid_parse(buf, len, &got);
	if ((r == 0) != ref_pid(buf, len, &want)) {
		abort();
	}
	if (r == 0 ? got != want : !untouched(&got, sizeof(got))) {
		abort();
	}
}

/* A /proc/PID/stat line: "PID (COMM) S f4 f5 ... f22 ...", COMM ending at
 * the last ')'; fields separated by single spaces; field 3 (the state)
 * one character, fields 4..21 at most 23 characters, field 22 (the start
 * time) canonical decimal up to INT64_MAX and ended by ' ', '\n' or the
 * end of the line. Works on a NUL-terminated copy with the string
 * functions, unlike the parser. */
static bool
ref_stat(const char *buf, size_t len, char *ret_state, uint64_t *ret_start)
{
	char *s, *p, *q;
	char state = '\0';
	uint64_t v = 0;
	size_t n, i;
	int field;
	bool ok = false;

	if (len == 0 || len > 4096 || memchr(buf, '\0', len) != NULL) {
		return false;
	}
	s = malloc(len + 1);
	if (s == NULL) {
		abort();
	}
	memcpy(s, buf, len);
	s[len] = '\0';
	n = strspn(s, "0123456789");
	if (n == 0 || strncmp(s + n, " (", 2) != 0) {
		goto out;
	}
	p = strrchr(s, ')');    /* digits, ' ' and '(' hold none: it is COMM's end */
	if (p == NULL || p[1] != ' ') {
		goto out;
	}
	p += 2;
	for (field = 3; field < 22; field++) {
		q = strchr(p, ' ');
		if (q == NULL || q == p || (size_t)(q - p) > 23 ||
		    memchr(p, '\n', (size_t)(q - p)) != NULL) {
			goto out;
		}
		if (field == 3) {
			if (q - p != 1) {
				goto out;
			}
			state = p[0];
		}
		p = q + 1;
	}
	n = strcspn(p, " \n");
	if (n == 0 || n > 23 || (p[0] == '0' && n > 1)) {
		goto out;
	}
	for (i = 0; i < n; i++) {
		if (p[i] < '0' || p[i] > '9' || v > (uint64_t)(INT64_MAX - (p[i] - '0')) / 10) {
			goto out;
		}
		v = v * 10 + (uint64_t)(p[i] - '0');
	}
	*ret_state = state;
	*ret_start = v;
	ok = true;
out:
	free(s);
	return ok;
}

static void
check_stat(const char *buf, size_t len)
{
	char st, want_st = '\0';
	uint64_t start, want_start = 0;
	int r;

	memset(&st, SENTINEL, sizeof(st));
	memset(&start, SENTINEL, sizeof(start));
	r = vm_proc_stat_parse(buf, len, &st, &start);
	if ((r == 0) != ref_stat(buf, len, &want_st, &want_start)) {
		abort();
	}
	if (r == 0) {
		if (st != want_st || start != want_start) {
			abort();
		}
	} else if (!untouched(&st, sizeof(st)) || !untouched(&start, sizeof(start))) {
		abort();
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *buf = (const char *)data;

	check_state(buf, size);
	check_pid(buf, size);
	check_stat(buf, size);
	return 0;
}
