/* Unit tests for vmhost/vm.c: the run-state parsers with adversarial
 * input (vm.json, the pid file, /proc/PID/stat), and the run folder:
 * names held by a lock, published state read back, list trusting only
 * live processes with the recorded start time, stop of a live VM (its
 * supervisor and its QEMU) and of stale state. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../../vmhost/vm.h"

#define DIGEST "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"

static struct vm_state
sample(void)
{
	struct vm_state s;

	memset(&s, 0, sizeof(s));
	strcpy(s.name, "agent-1");
	strcpy(s.vm_id, "vm-7f3a");
	strcpy(s.launch_digest, DIGEST);
	strcpy(s.vmm, "qemu");
	strcpy(s.accel, "tcg");
	s.started = 1764363600;
	s.pid = 1234;
	s.pid_start = 987654;
	s.vmm_pid = 1240;
	s.vmm_start = 987660;
	s.foreground = false;
	return s;
}

static char *
sample_json(void)
{
	struct vm_state s = sample();
	char *out = NULL;
	size_t len = 0;

	assert_int_equal(vm_state_format(&s, &out, &len), 0);
	assert_int_equal(strlen(out), len);
	return out;
}

static int
parse_str(const char *s, struct vm_state *ret)
{
	return vm_state_parse(s, strlen(s), ret);
}

/* Replace the first occurrence of from by to in the sample's JSON and
 * parse the result. */
static int
parse_edit(const char *from, const char *to)
{
	struct vm_state s;
	char *base = sample_json(), buf[8192], *p;
	int r;

	p = strstr(base, from);
	assert_non_null(p);
	snprintf(buf, sizeof(buf), "%.*s%s%s", (int)(p - base), base, to, p + strlen(from));
	free(base);
	memset(&s, 0x5a, sizeof(s));
	r = parse_str(buf, &s);
	if (r != 0) {
		/* Out-parameter untouched on failure. */
		struct vm_state u;

		memset(&u, 0x5a, sizeof(u));
		assert_memory_equal(&s, &u, sizeof(s));
	}
	return r;
}

static void
test_state_roundtrip(void **state)
{
	struct vm_state a = sample(), b;
	char *json = sample_json();

	(void)state;
	assert_string_equal(json,
	    "{\"accel\":\"tcg\",\"foreground\":false,\"launch_digest\":\"" DIGEST "\","
	    "\"name\":\"agent-1\",\"pid\":1234,\"pid_start\":987654,\"started\":1764363600,"
	    "\"vm_id\":\"vm-7f3a\",\"vmm\":\"qemu\",\"vmm_pid\":1240,\"vmm_start\":987660}");
	assert_int_equal(parse_str(json, &b), 0);
	assert_memory_equal(&a, &b, sizeof(a));
	free(json);
}

static void
test_state_adversarial(void **state)
{
	struct vm_state s;
	char big[VM_STATE_MAX + 64];

	(void)state;
	/* Names that would escape the run folder or are not names at all. */
	assert_int_equal(parse_edit("\"agent-1\"", "\"../etc\""), -EINVAL);
	assert_int_equal(parse_edit("\"agent-1\"", "\"a/b\""), -EINVAL);
	assert_int_equal(parse_edit("\"agent-1\"", "\".\""), -EINVAL);
	assert_int_equal(parse_edit("\"agent-1\"", "\"\""), -EINVAL);
	assert_int_equal(parse_edit("\"agent-1\"", "\"agent\\u00001\""), -EINVAL);
	assert_int_equal(parse_edit("\"agent-1\"",
	    "\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\""), -EINVAL);
	assert_int_equal(parse_edit("\"agent-1\"", "1"), -EINVAL);
	assert_int_equal(parse_edit("\"vm-7f3a\"", "\"vm 7f3a\""), -EINVAL);
	/* Digests: upper case, short, long, not hex. */
	assert_int_equal(parse_edit("00112233445566778899aabbccddeeff0011", "00112233445566778899AABBCCDDEEFF0011"), -EINVAL);
	assert_int_equal(parse_edit(DIGEST, "0011"), -EINVAL);
	assert_int_equal(parse_edit(DIGEST, DIGEST "00"), -EINVAL);
	assert_int_equal(parse_edit("0011223344", "zz11223344"), -EINVAL);
	/* Enumerations. */
	assert_int_equal(parse_edit("\"qemu\"", "\"bash\""), -EINVAL);
	assert_int_equal(parse_edit("\"tcg\"", "\"hvf\""), -EINVAL);
	/* Pids: zero, negative, past PID_MAX_LIMIT, real, string, huge. */
	assert_int_not_equal(parse_edit("\"pid\":1234", "\"pid\":0"), 0);
	assert_int_not_equal(parse_edit("\"pid\":1234", "\"pid\":-1"), 0);
	assert_int_not_equal(parse_edit("\"pid\":1234", "\"pid\":4194305"), 0);
	assert_int_not_equal(parse_edit("\"pid\":1234", "\"pid\":1234.0"), 0);
	assert_int_not_equal(parse_edit("\"pid\":1234", "\"pid\":\"1234\""), 0);
	assert_int_not_equal(parse_edit("\"pid\":1234", "\"pid\":99999999999999999999999"), 0);
	assert_int_not_equal(parse_edit("\"vmm_pid\":1240", "\"vmm_pid\":0"), 0);
	assert_int_not_equal(parse_edit("\"pid_start\":987654", "\"pid_start\":-5"), 0);
	assert_int_not_equal(parse_edit("\"started\":1764363600", "\"started\":-1"), 0);
	assert_int_not_equal(parse_edit("\"foreground\":false", "\"foreground\":0"), 0);
	assert_int_not_equal(parse_edit("\"foreground\":false", "\"foreground\":\"false\""), 0);
	/* Structure: unknown, duplicate and missing keys; trailing data. */
	assert_int_not_equal(parse_edit("\"accel\"", "\"extra\":1,\"accel\""), 0);
	assert_int_not_equal(parse_edit("\"accel\":\"tcg\"", "\"accel\":\"tcg\",\"accel\":\"kvm\""), 0);
	assert_int_not_equal(parse_edit("\"accel\":\"tcg\",", ""), 0);
	assert_int_not_equal(parse_edit("\"vmm_start\":987660}", "\"vmm_start\":987660}x"), 0);
	assert_int_not_equal(parse_edit("\"vmm_start\":987660}", "\"vmm_start\":987660}{}"), 0);
	/* Not an object, empty, NUL inside, deep nesting, over the cap. */
	assert_int_not_equal(parse_str("[]", &s), 0);
	assert_int_not_equal(parse_str("\"x\"", &s), 0);
	assert_int_not_equal(parse_str("", &s), 0);
	assert_int_not_equal(vm_state_parse("{\0}", 3, &s), 0);
	assert_int_not_equal(parse_str("[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]", &s), 0);
	memset(big, ' ', sizeof(big));
	big[sizeof(big) - 1] = '\0';
	memcpy(big, "{}", 2);
	assert_int_not_equal(vm_state_parse(big, sizeof(big) - 1, &s), 0);
	assert_int_equal(vm_state_parse(NULL, 0, &s), -EINVAL);
}

static void
test_state_format_refuses_bad(void **state)
{
	struct vm_state s = sample();
	char *out = (char *)0x1;
	size_t len = 7;

	(void)state;
	strcpy(s.name, "../x");
	assert_int_not_equal(vm_state_format(&s, &out, &len), 0);
	s = sample();
	s.pid = 0;
	assert_int_not_equal(vm_state_format(&s, &out, &len), 0);
	assert_ptr_equal(out, (char *)0x1);
	assert_int_equal(len, 7);
}

static void
test_pid_parse(void **state)
{
	static const char *const bad[] = {
		"", "\n", "0", "-1", "+1", "0123", " 123", "123 ", "123\n\n", "12a", "0x10",
		"4194305", "99999999999999999999", "1\n2", NULL,
	};
	pid_t p = 77;
	size_t i;

	(void)state;
	assert_int_equal(vm_pid_parse("123", 3, &p), 0);
	assert_int_equal(p, 123);
	assert_int_equal(vm_pid_parse("4194304\n", 8, &p), 0);
	assert_int_equal(p, 4194304);
	p = 77;
	for (i = 0; bad[i] != NULL; i++) {
		assert_int_equal(vm_pid_parse(bad[i], strlen(bad[i]), &p), -EINVAL);
	}
	assert_int_equal(vm_pid_parse("12\0003", 4, &p), -EINVAL);
	assert_int_equal(vm_pid_parse(NULL, 0, &p), -EINVAL);
	assert_int_equal(p, 77);
}

#define STAT_TAIL " 1 2 3 4 -1 4194560 100 0 0 0 5 6 0 0 20 0 1 0 %s 1000 50 18446744073709551615\n"

static int
stat_parse(const char *comm, const char *start, char *st, uint64_t *ret)
{
	char buf[1024];

	snprintf(buf, sizeof(buf), "4321 (%s) S" STAT_TAIL, comm, start);
	return vm_proc_stat_parse(buf, strlen(buf), st, ret);
}

static void
test_proc_stat_parse(void **state)
{
	char buf[1024], st = 0;
	uint64_t start = 1;
	size_t len = 0;
	int fd;
	ssize_t n;

	(void)state;
	assert_int_equal(stat_parse("vmhost", "123456", &st, &start), 0);
	assert_int_equal(start, 123456);
	assert_int_equal(st, 'S');
	/* A comm that tries to shift the fields: spaces and parentheses. */
	assert_int_equal(stat_parse("x) R 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 (y",
	    "777", &st, &start), 0);
	assert_int_equal(start, 777);
	assert_int_equal(stat_parse(") ) )", "778", &st, &start), 0);
	assert_int_equal(start, 778);
	assert_int_equal(stat_parse("", "779", &st, &start), 0);
	assert_int_equal(start, 779);
	/* Broken start times and lines. */
	start = 1;
	assert_int_equal(stat_parse("vmhost", "-5", &st, &start), -EINVAL);
	assert_int_equal(stat_parse("vmhost", "12x", &st, &start), -EINVAL);
	assert_int_equal(stat_parse("vmhost", "99999999999999999999999", &st, &start), -EINVAL);
	assert_int_equal(stat_parse("vmhost", "", &st, &start), -EINVAL);
	assert_int_equal(start, 1);
	assert_int_equal(vm_proc_stat_parse("4321 (vmhost) S 1 2 3", 21, &st, &start), -EINVAL);
	assert_int_equal(vm_proc_stat_parse("4321 vmhost S 1 2 3", 19, &st, &start), -EINVAL);
	assert_int_equal(vm_proc_stat_parse("(vmhost) S 1", 12, &st, &start), -EINVAL);
	assert_int_equal(vm_proc_stat_parse("4321 (vmhost", 12, &st, &start), -EINVAL);
	assert_int_equal(vm_proc_stat_parse("4321 (vmhost)", 13, &st, &start), -EINVAL);
	assert_int_equal(vm_proc_stat_parse("4321 (a\0b) S", 12, &st, &start), -EINVAL);
	snprintf(buf, sizeof(buf), "4321 (vmhost) SS" STAT_TAIL, "5");
	assert_int_equal(vm_proc_stat_parse(buf, strlen(buf), &st, &start), -EINVAL);
	snprintf(buf, sizeof(buf), "4321 (vmhost)  S" STAT_TAIL, "5");
	assert_int_equal(vm_proc_stat_parse(buf, strlen(buf), &st, &start), -EINVAL);
	assert_int_equal(vm_proc_stat_parse("", 0, &st, &start), -EINVAL);
	assert_int_equal(start, 1);

	/* The kernel's own line for this process. */
	fd = open("/proc/self/stat", O_RDONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	n = read(fd, buf, sizeof(buf));
	assert_true(n > 0);
	len = (size_t)n;
	close(fd);
	assert_int_equal(vm_proc_stat_parse(buf, len, &st, &start), 0);
	assert_int_equal(st, 'R');
	assert_int_equal(vm_proc_start(getpid(), &start), 0);
	assert_true(vm_pid_is(getpid(), start));
	assert_false(vm_pid_is(getpid(), start + 1));
	assert_false(vm_pid_is(0, 0));
	assert_false(vm_pid_is(VM_PID_MAX, 0));
}

static void
test_name_check(void **state)
{
	(void)state;
	assert_int_equal(vm_name_check("agent-1"), 0);
	assert_int_equal(vm_name_check("a.b:c_d-e"), 0);
	assert_int_equal(vm_name_check(".."), -EINVAL);
	assert_int_equal(vm_name_check("."), -EINVAL);
	assert_int_equal(vm_name_check("a/b"), -EINVAL);
	assert_int_equal(vm_name_check("-a"), -EINVAL);
	assert_int_equal(vm_name_check(""), -EINVAL);
	assert_int_equal(vm_name_check(NULL), -EINVAL);
	assert_int_equal(vm_name_check("a b"), -EINVAL);
}

/* --- the run folder ------------------------------------------------------ */

struct dirs {
	char root[64];
	char run[96];
};

static int
setup_dir(void **state)
{
	struct dirs *d = calloc(1, sizeof(*d));

	assert_non_null(d);
	snprintf(d->root, sizeof(d->root), "/tmp/test_vm.XXXXXX");
	assert_non_null(mkdtemp(d->root));
	snprintf(d->run, sizeof(d->run), "%s/run", d->root);
	assert_int_equal(vm_rundir_prepare(d->run), 0);
	*state = d;
	return 0;
}

static int
teardown_dir(void **state)
{
	struct dirs *d = *state;
	char cmd[160];

	snprintf(cmd, sizeof(cmd), "rm -rf -- '%s'", d->root);
	assert_int_equal(system(cmd), 0);
	free(d);
	return 0;
}

static void
test_rundir_prepare(void **state)
{
	struct dirs *d = *state;
	char p[160];

	snprintf(p, sizeof(p), "%s/open", d->root);
	assert_int_equal(mkdir(p, 0777), 0);
	assert_int_equal(chmod(p, 0777), 0);
	assert_int_equal(vm_rundir_prepare(p), -EPERM);
	assert_int_equal(chmod(p, 0755), 0);
	assert_int_equal(vm_rundir_prepare(p), 0);
	snprintf(p, sizeof(p), "%s/link", d->root);
	assert_int_equal(symlink(d->run, p), 0);
	assert_int_equal(vm_rundir_prepare(p), -ENOTDIR);
	assert_int_equal(vm_rundir_prepare("relative"), -EINVAL);
}

static void
test_acquire_is_exclusive(void **state)
{
	struct dirs *d = *state;
	struct vm_run *a = NULL, *b = NULL;
	char path[PATH_MAX];
	struct stat st;

	assert_int_equal(vm_run_acquire(d->run, "agent-1", &a), 0);
	assert_int_equal(vm_run_acquire(d->run, "agent-1", &b), -EBUSY);
	assert_null(b);
	assert_int_equal(vm_run_acquire(d->run, "agent-2", &b), 0);
	vm_run_free(b, true);
	assert_int_equal(vm_run_acquire(d->run, "../x", &b), -EINVAL);
	assert_int_equal(vm_run_path(a, "agent.sock", path, sizeof(path)), 0);
	assert_true(strstr(path, "/run/agent-1/agent.sock") != NULL);
	assert_int_equal(vm_run_path(a, "../x", path, sizeof(path)), -EINVAL);
	assert_int_equal(lstat(path, &st), -1);
	vm_run_free(a, true);
	/* Released and removed: the folder is gone, the name free again. */
	snprintf(path, sizeof(path), "%s/agent-1", d->run);
	assert_int_equal(lstat(path, &st), -1);
	assert_int_equal(vm_run_acquire(d->run, "agent-1", &a), 0);
	vm_run_free(a, true);
}

static void
test_publish_list_and_stale(void **state)
{
	struct dirs *d = *state;
	struct vm_run *a = NULL;
	struct vm_state s = sample(), back;
	json_t *list = NULL;
	char path[PATH_MAX];
	FILE *f;

	assert_int_equal(vm_run_acquire(d->run, "agent-1", &a), 0);
	s.pid = getpid();
	assert_int_equal(vm_proc_start(s.pid, &s.pid_start), 0);
	assert_int_equal(vm_run_publish(a, &s), 0);
	assert_int_equal(vm_state_read(d->run, "agent-1", &back), 0);
	assert_memory_equal(&s, &back, sizeof(s));
	assert_int_equal(vm_list(d->run, &list), 0);
	assert_int_equal(json_array_size(list), 1);
	assert_string_equal(json_string_value(json_object_get(json_array_get(list, 0), "name")),
	    "agent-1");
	assert_non_null(json_object_get(json_array_get(list, 0), "console"));
	json_decref(list);

	/* A recycled pid (same pid, other start time) is not ours. */
	s.pid_start += 1;
	assert_int_equal(vm_run_publish(a, &s), 0);
	assert_int_equal(vm_list(d->run, &list), 0);
	assert_int_equal(json_array_size(list), 0);
	json_decref(list);

	/* A pid file that disagrees with vm.json: not listed. */
	s.pid_start -= 1;
	assert_int_equal(vm_run_publish(a, &s), 0);
	snprintf(path, sizeof(path), "%s/agent-1/pid", d->run);
	f = fopen(path, "w");
	assert_non_null(f);
	fprintf(f, "1\n");
	fclose(f);
	assert_int_not_equal(vm_state_read(d->run, "agent-1", &back), 0);
	assert_int_equal(vm_list(d->run, &list), 0);
	assert_int_equal(json_array_size(list), 0);
	json_decref(list);

	/* Garbage in vm.json: not listed, and list does not fail. */
	snprintf(path, sizeof(path), "%s/agent-1/vm.json", d->run);
	f = fopen(path, "w");
	assert_non_null(f);
	fprintf(f, "{\"name\":\"agent-1\",");
	fclose(f);
	assert_int_equal(vm_list(d->run, &list), 0);
	assert_int_equal(json_array_size(list), 0);
	json_decref(list);

	/* stop of a held name without usable state: still launching. */
	assert_int_equal(vm_stop(d->run, "agent-1", 100, NULL), -EBUSY);
	vm_run_free(a, false);
	/* Now nobody holds it: stale, cleaned up. */
	assert_int_equal(vm_stop(d->run, "agent-1", 100, NULL), -ESRCH);
	assert_int_equal(vm_state_read(d->run, "agent-1", &back), -ENOENT);
	assert_int_equal(vm_stop(d->run, "nothing", 100, NULL), -ENOENT);
	assert_int_equal(vm_stop(d->run, "../etc", 100, NULL), -EINVAL);

	/* A missing run folder lists as empty. */
	snprintf(path, sizeof(path), "%s/none", d->root);
	assert_int_equal(vm_list(path, &list), 0);
	assert_int_equal(json_array_size(list), 0);
	json_decref(list);
}

static pid_t
spawn_sleeper(bool ignore_term)
{
	pid_t pid = fork();

	assert_true(pid >= 0);
	if (pid == 0) {
		if (ignore_term) {
			signal(SIGTERM, SIG_IGN);
		}
		for (;;) {
			pause();
		}
	}
	return pid;
}

/* A "supervisor" holding the lock that does not pass SIGTERM on, and a
 * "QEMU" that ignores SIGTERM: stop gets rid of both, then of the state. */
static void
test_stop_live(void **state)
{
	struct dirs *d = *state;
	struct vm_run *a = NULL;
	struct vm_state s = sample(), back;
	bool forced = false;
	pid_t sup, vmm;
	char path[PATH_MAX];
	struct stat st;
	int status;

	assert_int_equal(vm_run_acquire(d->run, "agent-1", &a), 0);
	vmm = spawn_sleeper(true);
	sup = spawn_sleeper(false);      /* inherits the lock */
	vm_run_free(a, false);           /* our reference only */
	usleep(50 * 1000);
	s.pid = sup;
	s.vmm_pid = vmm;
	assert_int_equal(vm_proc_start(sup, &s.pid_start), 0);
	assert_int_equal(vm_proc_start(vmm, &s.vmm_start), 0);
	/* Publish as the supervisor would: through a fresh handle would need
	 * the lock, so write the files the same way vm_run_publish does. */
	{
		struct vm_run *w = NULL;

		assert_int_equal(vm_run_acquire(d->run, "agent-1", &w), -EBUSY);
	}
	snprintf(path, sizeof(path), "%s/agent-1/vm.json", d->run);
	{
		char *json = NULL;
		size_t len = 0;
		FILE *f;

		assert_int_equal(vm_state_format(&s, &json, &len), 0);
		f = fopen(path, "w");
		assert_non_null(f);
		fwrite(json, 1, len, f);
		fclose(f);
		free(json);
		snprintf(path, sizeof(path), "%s/agent-1/pid", d->run);
		f = fopen(path, "w");
		assert_non_null(f);
		fprintf(f, "%d\n", (int)sup);
		fclose(f);
	}
	assert_int_equal(vm_state_read(d->run, "agent-1", &back), 0);
	assert_int_equal(vm_stop(d->run, "agent-1", 2000, &forced), 0);
	/* The supervisor died of SIGTERM; QEMU ignored it and got SIGKILL. */
	assert_true(forced);
	assert_int_equal(waitpid(sup, &status, 0), sup);
	assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGTERM);
	assert_int_equal(waitpid(vmm, &status, 0), vmm);
	assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
	snprintf(path, sizeof(path), "%s/agent-1", d->run);
	assert_int_equal(lstat(path, &st), -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_state_roundtrip),
		cmocka_unit_test(test_state_adversarial),
		cmocka_unit_test(test_state_format_refuses_bad),
		cmocka_unit_test(test_pid_parse),
		cmocka_unit_test(test_proc_stat_parse),
		cmocka_unit_test(test_name_check),
		cmocka_unit_test_setup_teardown(test_rundir_prepare, setup_dir, teardown_dir),
		cmocka_unit_test_setup_teardown(test_acquire_is_exclusive, setup_dir, teardown_dir),
		cmocka_unit_test_setup_teardown(test_publish_list_and_stale, setup_dir, teardown_dir),
		cmocka_unit_test_setup_teardown(test_stop_live, setup_dir, teardown_dir),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
