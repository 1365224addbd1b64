/* Unit tests for vmhost/qemu.c: the microvm command line (descriptors,
 * options, the kernel command line as one argument, a read-only rootfs,
 * QEMU's comma escaping), and the spawn/supervise machinery run against
 * /bin/sh instead of QEMU: exactly the artifact descriptors inherited, a
 * clean environment, console copying, signal forwarding, SIGKILL after
 * the grace period, readiness. */
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
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../../vmhost/qemu.h"

#define SH "/bin/sh"

static size_t
argc_of(char **argv)
{
	size_t n = 0;

	while (argv[n] != NULL) {
		n++;
	}
	return n;
}

/* Index of the element after the first occurrence of opt, or -1. */
static ssize_t
after(char **argv, const char *opt)
{
	size_t i;

	for (i = 0; argv[i] != NULL; i++) {
		if (strcmp(argv[i], opt) == 0) {
			return argv[i + 1] != NULL ? (ssize_t)i + 1 : -1;
		}
	}
	return -1;
}

static size_t
count(char **argv, const char *s)
{
	size_t i, n = 0;

	for (i = 0; argv[i] != NULL; i++) {
		n += strcmp(argv[i], s) == 0;
	}
	return n;
}

static bool
has_value(char **argv, const char *opt, const char *value)
{
	size_t i;

	for (i = 0; argv[i] != NULL && argv[i + 1] != NULL; i++) {
		if (strcmp(argv[i], opt) == 0 && strcmp(argv[i + 1], value) == 0) {
			return true;
		}
	}
	return false;
}

static struct qemu_config
base_config(void)
{
	struct qemu_config c;

	memset(&c, 0, sizeof(c));
	c.binary = QEMU_DEFAULT_BINARY;
	c.memory_mib = 512;
	c.vcpus = 2;
	c.accel = ACCEL_TCG;
	c.kernel_fd = 7;
	c.initrd_fd = 8;
	c.rootfs_fd = -1;
	c.cmdline = "console=hvc0 quiet";
	c.agent_socket = "/run/warrant/vmhost/agent-1/agent.sock";
	return c;
}

static void
test_argv_exact(void **state)
{
	static const char *const want[] = {
		QEMU_DEFAULT_BINARY,
		"-M", "microvm,x-option-roms=off,rtc=off,isa-serial=off",
		"-nodefaults", "-no-user-config", "-nographic", "-display", "none",
		"-no-reboot",
		"-sandbox", "on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny",
		"-m", "512M", "-smp", "2", "-accel", "tcg",
		"-kernel", "/proc/self/fd/7", "-initrd", "/proc/self/fd/8",
		"-append", "console=hvc0 quiet",
		"-device", "virtio-serial-device",
		"-chardev", "stdio,id=con0,signal=off",
		"-device", "virtconsole,chardev=con0",
		"-chardev", "socket,id=agent,path=/run/warrant/vmhost/agent-1/agent.sock,server=on,wait=off",
		"-device", "virtserialport,chardev=agent,name=org.warrant.agent.0",
		NULL,
	};
	struct qemu_config c = base_config();
	char **argv = NULL;
	size_t i;

	(void)state;
	assert_int_equal(qemu_argv_new(&c, &argv), 0);
	for (i = 0; want[i] != NULL; i++) {
		assert_non_null(argv[i]);
		assert_string_equal(argv[i], want[i]);
	}
	assert_null(argv[i]);
	/* No rootfs, no -cpu host under TCG, no other drive. */
	assert_int_equal(count(argv, "-drive"), 0);
	assert_int_equal(count(argv, "-cpu"), 0);
	qemu_argv_free(argv);
}

static void
test_argv_kvm_cpu_host(void **state)
{
	struct qemu_config c = base_config();
	char **argv = NULL;

	(void)state;
	c.accel = ACCEL_KVM;
	assert_int_equal(qemu_argv_new(&c, &argv), 0);
	assert_true(has_value(argv, "-accel", "kvm"));
	assert_true(has_value(argv, "-cpu", "host"));
	assert_int_equal(count(argv, "-accel"), 1);
	qemu_argv_free(argv);
}

static void
test_argv_rootfs_read_only(void **state)
{
	struct qemu_config c = base_config();
	char **argv = NULL;
	ssize_t i;

	(void)state;
	c.rootfs_fd = 9;
	assert_int_equal(qemu_argv_new(&c, &argv), 0);
	i = after(argv, "-drive");
	assert_true(i > 0);
	assert_string_equal(argv[i], "file=/proc/self/fd/9,format=raw,if=none,id=rootfs,readonly=on");
	assert_true(has_value(argv, "-device", "virtio-blk-device,drive=rootfs"));
	assert_int_equal(count(argv, "-drive"), 1);
	qemu_argv_free(argv);
}

/* The kernel command line is one argv element, byte for byte: spaces,
 * commas (QEMU's option separator elsewhere), quotes, '=' and shell
 * metacharacters reach the kernel unchanged and split nothing. */
static void
test_argv_cmdline_one_element(void **state)
{
	static const char *const lines[] = {
		"",
		"console=hvc0 quiet panic=-1 rdinit=/init tsc_early_khz=2600000",
		"a,b,,c x=\"y z\" 'q' $(reboot) ; -kernel /etc/shadow",
		"-append evil",
		NULL,
	};
	size_t k, base_n;

	(void)state;
	{
		struct qemu_config c = base_config();
		char **argv = NULL;

		assert_int_equal(qemu_argv_new(&c, &argv), 0);
		base_n = argc_of(argv);
		qemu_argv_free(argv);
	}
	for (k = 0; lines[k] != NULL; k++) {
		struct qemu_config c = base_config();
		char **argv = NULL;
		ssize_t i;
		size_t n;

		c.cmdline = lines[k];
		assert_int_equal(qemu_argv_new(&c, &argv), 0);
		i = after(argv, "-append");
		assert_true(i > 0);
		assert_string_equal(argv[i], lines[k]);
		n = argc_of(argv);
		/* Same shape whatever the command line holds. */
		assert_int_equal(n, base_n);
		assert_string_equal(argv[after(argv, "-kernel")], "/proc/self/fd/7");
		qemu_argv_free(argv);
	}
}

static void
test_argv_agent_path_commas_escaped(void **state)
{
	struct qemu_config c = base_config();
	char **argv = NULL;

	(void)state;
	c.agent_socket = "/run/a,b/vm,,1/agent.sock";
	assert_int_equal(qemu_argv_new(&c, &argv), 0);
	assert_true(has_value(argv, "-chardev",
	    "socket,id=agent,path=/run/a,,b/vm,,,,1/agent.sock,server=on,wait=off"));
	qemu_argv_free(argv);
}

static void
test_argv_rejects(void **state)
{
	char longpath[QEMU_SUN_PATH_MAX + 2];
	struct qemu_config c;
	char **argv = (char **)0x1;

	(void)state;
	memset(longpath, 'a', sizeof(longpath) - 1);
	longpath[0] = '/';
	longpath[sizeof(longpath) - 1] = '\0';

	c = base_config();
	c.agent_socket = longpath;
	assert_int_equal(qemu_argv_new(&c, &argv), -ENAMETOOLONG);
	longpath[QEMU_SUN_PATH_MAX] = '\0';  /* exactly the limit is fine */
	c.agent_socket = longpath;
	assert_int_equal(qemu_argv_new(&c, &argv), 0);
	qemu_argv_free(argv);
	argv = (char **)0x1;

	c = base_config();
	c.binary = "qemu-system-x86_64";          /* not absolute: no PATH search */
	assert_int_equal(qemu_argv_new(&c, &argv), -EINVAL);
	c = base_config();
	c.agent_socket = "agent.sock";
	assert_int_equal(qemu_argv_new(&c, &argv), -EINVAL);
	c = base_config();
	c.kernel_fd = 1;                           /* would be QEMU's stdout */
	assert_int_equal(qemu_argv_new(&c, &argv), -EINVAL);
	c = base_config();
	c.initrd_fd = c.kernel_fd;
	assert_int_equal(qemu_argv_new(&c, &argv), -EINVAL);
	c = base_config();
	c.rootfs_fd = 2;
	assert_int_equal(qemu_argv_new(&c, &argv), -EINVAL);
	c = base_config();
	c.rootfs_fd = c.initrd_fd;
	assert_int_equal(qemu_argv_new(&c, &argv), -EINVAL);
	c = base_config();
	c.memory_mib = 63;
	assert_int_equal(qemu_argv_new(&c, &argv), -EINVAL);
	c = base_config();
	c.memory_mib = 65537;
	assert_int_equal(qemu_argv_new(&c, &argv), -EINVAL);
	c = base_config();
	c.vcpus = 0;
	assert_int_equal(qemu_argv_new(&c, &argv), -EINVAL);
	c = base_config();
	c.vcpus = 33;
	assert_int_equal(qemu_argv_new(&c, &argv), -EINVAL);
	c = base_config();
	c.accel = (enum accel_kind)0;
	assert_int_equal(qemu_argv_new(&c, &argv), -EINVAL);
	c = base_config();
	c.cmdline = NULL;
	assert_int_equal(qemu_argv_new(&c, &argv), -EINVAL);
	assert_int_equal(qemu_argv_new(NULL, &argv), -EINVAL);
	/* Out-parameter untouched on failure. */
	assert_ptr_equal(argv, (char **)0x1);
}

static void
test_opt_escape(void **state)
{
	char buf[8];

	(void)state;
	assert_int_equal(qemu_opt_escape("a,b", buf, sizeof(buf)), 0);
	assert_string_equal(buf, "a,,b");
	assert_int_equal(qemu_opt_escape("", buf, sizeof(buf)), 0);
	assert_string_equal(buf, "");
	assert_int_equal(qemu_opt_escape(",,,", buf, 7), 0);
	assert_string_equal(buf, ",,,,,,");
	assert_int_equal(qemu_opt_escape(",,,,", buf, sizeof(buf)), -ENOSPC);
	assert_int_equal(qemu_opt_escape("abcdefgh", buf, sizeof(buf)), -ENOSPC);
	assert_int_equal(qemu_opt_escape("abcdefg", buf, sizeof(buf)), 0);
}

static void
test_exit_code(void **state)
{
	(void)state;
	assert_int_equal(qemu_exit_code(0), 0);
	assert_int_equal(qemu_exit_code(3 << 8), 3);
	assert_int_equal(qemu_exit_code(SIGKILL), 128 + SIGKILL);
	assert_int_equal(qemu_exit_code(SIGTERM), 128 + SIGTERM);
}

/* --- spawn and supervise, with /bin/sh standing in for QEMU -------------- */

struct run {
	int out;            /* memfd collecting the "console" */
	struct qemu_outcome oc;
};

static int
memfd_with(const char *data)
{
	int fd = memfd_create("test", MFD_CLOEXEC);

	assert_true(fd >= 3);
	assert_int_equal(write(fd, data, strlen(data)), (ssize_t)strlen(data));
	return fd;
}

static char *
read_all(int fd)
{
	static char buf[8192];
	ssize_t n;

	n = pread(fd, buf, sizeof(buf) - 1, 0);
	assert_true(n >= 0);
	buf[n] = '\0';
	return buf;
}

static void
block_sigs(void)
{
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	assert_int_equal(sigprocmask(SIG_BLOCK, &set, NULL), 0);
}

/* Run script under sh as if it were QEMU for config c; supervise it. */
static void
run_sh(struct qemu_config *c, const char *script, uint32_t grace_ms, const char *ready_path,
    int ready_fd, int raise_sig, struct run *ret)
{
	char *argv[] = { (char *)SH, (char *)"-c", (char *)script, NULL };
	struct qemu_supervise s;
	int p[2];
	pid_t pid = -1;

	c->binary = SH;
	ret->out = memfd_create("console", MFD_CLOEXEC);
	assert_true(ret->out >= 0);
	block_sigs();
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	assert_int_equal(qemu_spawn(c, argv, p[1], STDERR_FILENO, &pid), 0);
	close(p[1]);
	if (raise_sig != 0) {
		usleep(300 * 1000);   /* let the shell set its traps first */
		assert_int_equal(kill(getpid(), raise_sig), 0);   /* stays pending: blocked */
	}
	memset(&s, 0, sizeof(s));
	s.pid = pid;
	s.console_fd = p[0];
	s.out_fd = ret->out;
	s.grace_ms = grace_ms;
	s.ready_path = ready_path;
	s.ready_fd = ready_fd;
	assert_int_equal(qemu_supervise(&s, &ret->oc), 0);
	close(p[0]);
}

static void
test_spawn_fds_and_env(void **state)
{
	struct qemu_config c = base_config();
	char want[128], script[640];
	struct run r;
	int k, i, stray, stray_cloexec;

	(void)state;
	k = memfd_with("KERNEL");
	i = memfd_with("INITRD");
	/* A descriptor without close-on-exec must still not reach QEMU. */
	stray = dup2(STDERR_FILENO, 100);          /* dup2: no close-on-exec */
	stray_cloexec = fcntl(STDERR_FILENO, F_DUPFD_CLOEXEC, 101);
	assert_true(stray >= 3 && stray_cloexec >= 3);
	c.kernel_fd = k;
	c.initrd_fd = i;
	setenv("WARRANT_SECRET_TEST", "leak", 1);
	/* The shell lists its own descriptors (by testing each of the first
	 * 128, so that no directory is open while it looks), its environment,
	 * and reads the artifacts through /proc/self/fd like QEMU does. */
	snprintf(script, sizeof(script),
	    "l=fds:; f=0; while [ $f -lt 128 ]; do [ -e /proc/$$/fd/$f ] && l=\"$l $f\"; "
	    "f=$((f+1)); done; echo \"$l\" && echo env: $(cat /proc/$$/environ | tr '\\0' ' ') "
	    "&& echo k: $(cat /proc/self/fd/%d) i: $(cat /proc/self/fd/%d) && "
	    "echo stdin: $(readlink /proc/$$/fd/0)", k, i);
	snprintf(want, sizeof(want), "fds: 0 1 2 %d %d\n", k < i ? k : i, k < i ? i : k);
	run_sh(&c, script, 0, NULL, -1, 0, &r);
	unsetenv("WARRANT_SECRET_TEST");
	assert_true(WIFEXITED(r.oc.wait_status));
	assert_int_equal(WEXITSTATUS(r.oc.wait_status), 0);
	assert_non_null(strstr(read_all(r.out), want));
	assert_non_null(strstr(read_all(r.out), "env: PATH=/usr/sbin:/usr/bin:/sbin:/bin\n"));
	assert_null(strstr(read_all(r.out), "WARRANT_SECRET_TEST"));
	assert_non_null(strstr(read_all(r.out), "k: KERNEL i: INITRD\n"));
	assert_non_null(strstr(read_all(r.out), "stdin: /dev/null\n"));
	assert_false(r.oc.killed);
	assert_int_equal(r.oc.stop_signal, 0);
	/* The parent's descriptors keep close-on-exec. */
	assert_int_equal(fcntl(k, F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
	close(k);
	close(i);
	close(stray);
	close(stray_cloexec);
	close(r.out);
}

static void
test_spawn_rootfs_inherited(void **state)
{
	struct qemu_config c = base_config();
	char script[256];
	struct run r;

	(void)state;
	c.kernel_fd = memfd_with("K");
	c.initrd_fd = memfd_with("I");
	c.rootfs_fd = memfd_with("ROOTFS");
	snprintf(script, sizeof(script), "cat /proc/self/fd/%d", c.rootfs_fd);
	run_sh(&c, script, 0, NULL, -1, 0, &r);
	assert_string_equal(read_all(r.out), "ROOTFS");
	close(c.kernel_fd);
	close(c.initrd_fd);
	close(c.rootfs_fd);
	close(r.out);
}

static void
test_spawn_missing_binary(void **state)
{
	struct qemu_config c = base_config();
	char *argv[] = { (char *)"/nonexistent/qemu-system-x86_64", NULL };
	pid_t pid = 4242;

	(void)state;
	c.kernel_fd = memfd_with("K");
	c.initrd_fd = memfd_with("I");
	c.binary = argv[0];
	assert_int_equal(qemu_spawn(&c, argv, STDOUT_FILENO, STDERR_FILENO, &pid), -ENOENT);
	assert_int_equal(pid, 4242);
	close(c.kernel_fd);
	close(c.initrd_fd);
}

static void
test_supervise_exit_status_and_console(void **state)
{
	struct qemu_config c = base_config();
	char line[64];
	off_t want = 17;   /* "WARRANT-GUEST-UP\n" */
	struct run r;
	int i;

	(void)state;
	for (i = 0; i < 3000; i++) {
		want += snprintf(line, sizeof(line), "line-%d-xxxxxxxxxxxxxxxxxxxxxxxxxx\n", i);
	}
	c.kernel_fd = memfd_with("K");
	c.initrd_fd = memfd_with("I");
	/* More than a pipe's buffer, so copying must keep up with the child. */
	run_sh(&c, "i=0; while [ $i -lt 3000 ]; do echo line-$i-xxxxxxxxxxxxxxxxxxxxxxxxxx; "
	    "i=$((i+1)); done; echo WARRANT-GUEST-UP; exit 3", 0, NULL, -1, 0, &r);
	assert_true(WIFEXITED(r.oc.wait_status));
	assert_int_equal(qemu_exit_code(r.oc.wait_status), 3);
	assert_int_equal(lseek(r.out, 0, SEEK_END), want);
	close(c.kernel_fd);
	close(c.initrd_fd);
	close(r.out);
}

static void
test_supervise_forwards_sigterm(void **state)
{
	struct qemu_config c = base_config();
	struct run r;

	(void)state;
	c.kernel_fd = memfd_with("K");
	c.initrd_fd = memfd_with("I");
	run_sh(&c, "trap 'echo got-term; exit 7' TERM; echo up; while :; do sleep 0.05; done",
	    5000, NULL, -1, SIGINT, &r);
	assert_int_equal(r.oc.stop_signal, SIGINT);
	assert_false(r.oc.killed);
	assert_int_equal(qemu_exit_code(r.oc.wait_status), 7);
	assert_non_null(strstr(read_all(r.out), "got-term"));
	close(c.kernel_fd);
	close(c.initrd_fd);
	close(r.out);
}

static void
test_supervise_kills_after_grace(void **state)
{
	struct qemu_config c = base_config();
	struct run r;

	(void)state;
	c.kernel_fd = memfd_with("K");
	c.initrd_fd = memfd_with("I");
	run_sh(&c, "trap '' TERM; while :; do sleep 0.05; done", 300, NULL, -1, SIGTERM, &r);
	assert_int_equal(r.oc.stop_signal, SIGTERM);
	assert_true(r.oc.killed);
	assert_true(WIFSIGNALED(r.oc.wait_status));
	assert_int_equal(WTERMSIG(r.oc.wait_status), SIGKILL);
	close(c.kernel_fd);
	close(c.initrd_fd);
	close(r.out);
}

static void
test_supervise_ready(void **state)
{
	struct qemu_config c = base_config();
	char dir[] = "/tmp/test_qemu_argv.XXXXXX", path[64], script[160], byte = 0;
	int p[2];
	struct run r;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/agent.sock", dir);
	c.kernel_fd = memfd_with("K");
	c.initrd_fd = memfd_with("I");
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	snprintf(script, sizeof(script), "sleep 0.2; : > %s; sleep 0.2; exit 0", path);
	run_sh(&c, script, 0, path, p[1], 0, &r);
	assert_true(r.oc.ready);
	assert_int_equal(read(p[0], &byte, 1), 1);
	assert_int_equal(byte, 'R');
	assert_int_equal(read(p[0], &byte, 1), 0);   /* closed by the supervisor */
	close(p[0]);

	/* Exits before it is ready: the pipe closes without a byte. */
	unlink(path);
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	run_sh(&c, "exit 1", 0, path, p[1], 0, &r);
	assert_false(r.oc.ready);
	assert_int_equal(read(p[0], &byte, 1), 0);
	close(p[0]);
	rmdir(dir);
	close(c.kernel_fd);
	close(c.initrd_fd);
	close(r.out);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_argv_exact),
		cmocka_unit_test(test_argv_kvm_cpu_host),
		cmocka_unit_test(test_argv_rootfs_read_only),
		cmocka_unit_test(test_argv_cmdline_one_element),
		cmocka_unit_test(test_argv_agent_path_commas_escaped),
		cmocka_unit_test(test_argv_rejects),
		cmocka_unit_test(test_opt_escape),
		cmocka_unit_test(test_exit_code),
		cmocka_unit_test(test_spawn_fds_and_env),
		cmocka_unit_test(test_spawn_rootfs_inherited),
		cmocka_unit_test(test_spawn_missing_binary),
		cmocka_unit_test(test_supervise_exit_status_and_console),
		cmocka_unit_test(test_supervise_forwards_sigterm),
		cmocka_unit_test(test_supervise_kills_after_grace),
		cmocka_unit_test(test_supervise_ready),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
