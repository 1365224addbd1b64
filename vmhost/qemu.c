#include "qemu.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"

#define QEMU_ARGV_MAX      64
#define QEMU_FD_PATH_MAX   32          /* "/proc/self/fd/" + an int */
#define QEMU_DRAIN_MS      2000        /* console read after QEMU exited */
#define QEMU_READY_POLL_MS 50
#define QEMU_COPY_BUF      65536
#define QEMU_MEM_MIN       64
#define QEMU_MEM_MAX       65536
#define QEMU_VCPUS_MAX     32

/* The machine: no firmware option ROMs, no RTC, no ISA serial port (the
 * console is a virtio console), no PCI; -nodefaults drops every default
 * device; -no-reboot turns a guest reboot into an exit; the seccomp
 * sandbox denies QEMU what it never needs here. */
#define QEMU_MACHINE  "microvm,x-option-roms=off,rtc=off,isa-serial=off"
#define QEMU_SANDBOX  "on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny"

int
qemu_opt_escape(const char *in, char *out, size_t outlen)
{
	size_t o = 0;

	for (; *in != '\0'; in++) {
		size_t need = *in == ',' ? 2 : 1;

		if (o + need >= outlen) {
			return -ENOSPC;
		}
		out[o++] = *in;
		if (*in == ',') {
			out[o++] = ',';
		}
	}
	if (o >= outlen) {
		return -ENOSPC;
	}
	out[o] = '\0';
	return 0;
}

void
qemu_argv_free(char **argv)
{
	size_t i;

	if (argv == NULL) {
		return;
	}
	for (i = 0; argv[i] != NULL; i++) {
		free(argv[i]);
	}
	free(argv);
}

/* Append a copy of s; on failure the vector stays NULL-terminated. */
static int
argv_add(char **argv, size_t *n, const char *s)
{
	char *d;

	if (*n + 1 >= QEMU_ARGV_MAX) {
		return -E2BIG;
	}
	d = strdup(s);
	if (d == NULL) {
		return -ENOMEM;
	}
	argv[(*n)++] = d;
	argv[*n] = NULL;
	return 0;
}

static int
argv_addf(char **argv, size_t *n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int
argv_addf(char **argv, size_t *n, const char *fmt, ...)
{
	char buf[PATH_MAX + 128];
	va_list ap;
	int len;

	va_start(ap, fmt);
	len = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (len < 0 || (size_t)len >= sizeof(buf)) {
		return -ENAMETOOLONG;
	}
	return argv_add(argv, n, buf);
}

static int
config_check(const struct qemu_config *c)
{
	if (c == NULL || c->binary == NULL || c->binary[0] != '/' || c->cmdline == NULL ||
	    c->agent_socket == NULL || c->agent_socket[0] != '/') {
		return -EINVAL;
	}
	if (c->memory_mib < QEMU_MEM_MIN || c->memory_mib > QEMU_MEM_MAX || c->vcpus < 1 ||
	    c->vcpus > QEMU_VCPUS_MAX) {
		return -EINVAL;
	}
	if (c->accel != ACCEL_KVM && c->accel != ACCEL_TCG) {
		return -EINVAL;
	}
	/* 0..2 become QEMU's stdin, stdout and stderr in the child. */
	if (c->kernel_fd < 3 || c->initrd_fd < 3 || (c->rootfs_fd != -1 && c->rootfs_fd < 3) ||
	    c->kernel_fd == c->initrd_fd || c->kernel_fd == c->rootfs_fd ||
	    c->initrd_fd == c->rootfs_fd) {
		return -EINVAL;
	}
	if (strlen(c->agent_socket) > QEMU_SUN_PATH_MAX) {
		return -ENAMETOOLONG;
	}
	return 0;
}

int
qemu_argv_new(const struct qemu_config *c, char ***ret)
{
	char agent[2 * PATH_MAX];
	char **argv = NULL;
	size_t n = 0;
	int r;

	r = config_check(c);
	if (r != 0) {
		return r;
	}
	r = qemu_opt_escape(c->agent_socket, agent, sizeof(agent));
	if (r != 0) {
		return -ENAMETOOLONG;
	}
	argv = calloc(QEMU_ARGV_MAX, sizeof(*argv));
	if (argv == NULL) {
		return -ENOMEM;
	}
	if ((r = argv_add(argv, &n, c->binary)) != 0 ||
	    (r = argv_add(argv, &n, "-M")) != 0 ||
	    (r = argv_add(argv, &n, QEMU_MACHINE)) != 0 ||
	    (r = argv_add(argv, &n, "-nodefaults")) != 0 ||
	    (r = argv_add(argv, &n, "-no-user-config")) != 0 ||
	    (r = argv_add(argv, &n, "-nographic")) != 0 ||
	    (r = argv_add(argv, &n, "-display")) != 0 ||
	    (r = argv_add(argv, &n, "none")) != 0 ||
	    (r = argv_add(argv, &n, "-no-reboot")) != 0 ||
	    (r = argv_add(argv, &n, "-sandbox")) != 0 ||
	    (r = argv_add(argv, &n, QEMU_SANDBOX)) != 0 ||
	    (r = argv_add(argv, &n, "-m")) != 0 ||
	    (r = argv_addf(argv, &n, "%uM", c->memory_mib)) != 0 ||
	    (r = argv_add(argv, &n, "-smp")) != 0 ||
	    (r = argv_addf(argv, &n, "%u", c->vcpus)) != 0 ||
	    (r = argv_add(argv, &n, "-accel")) != 0 ||
	    (r = argv_add(argv, &n, accel_name(c->accel))) != 0) {
		goto out;
	}
	if (c->accel == ACCEL_KVM &&
	    ((r = argv_add(argv, &n, "-cpu")) != 0 || (r = argv_add(argv, &n, "host")) != 0)) {
		goto out;
	}
	/* The kernel command line is one argument: -append takes it verbatim,
	 * without QEMU's comma syntax. */
	if ((r = argv_add(argv, &n, "-kernel")) != 0 ||
	    (r = argv_addf(argv, &n, "/proc/self/fd/%d", c->kernel_fd)) != 0 ||
	    (r = argv_add(argv, &n, "-initrd")) != 0 ||
	    (r = argv_addf(argv, &n, "/proc/self/fd/%d", c->initrd_fd)) != 0 ||
	    (r = argv_add(argv, &n, "-append")) != 0 ||
	    (r = argv_add(argv, &n, c->cmdline)) != 0) {
		goto out;
	}
	if (c->rootfs_fd >= 0 &&
	    ((r = argv_add(argv, &n, "-drive")) != 0 ||
	     (r = argv_addf(argv, &n, "file=/proc/self/fd/%d,format=raw,if=none,id=rootfs,"
	         "readonly=on", c->rootfs_fd)) != 0 ||
	     (r = argv_add(argv, &n, "-device")) != 0 ||
	     (r = argv_add(argv, &n, "virtio-blk-device,drive=rootfs")) != 0)) {
		goto out;
	}
	if ((r = argv_add(argv, &n, "-device")) != 0 ||
	    (r = argv_add(argv, &n, "virtio-serial-device")) != 0 ||
	    (r = argv_add(argv, &n, "-chardev")) != 0 ||
	    (r = argv_add(argv, &n, "stdio,id=con0,signal=off")) != 0 ||
	    (r = argv_add(argv, &n, "-device")) != 0 ||
	    (r = argv_add(argv, &n, "virtconsole,chardev=con0")) != 0 ||
	    (r = argv_add(argv, &n, "-chardev")) != 0 ||
	    (r = argv_addf(argv, &n, "socket,id=agent,path=%s,server=on,wait=off", agent)) != 0 ||
	    (r = argv_add(argv, &n, "-device")) != 0 ||
	    (r = argv_add(argv, &n, "virtserialport,chardev=agent,name=" QEMU_AGENT_PORT)) != 0) {
		goto out;
	}
	*ret = argv;
	argv = NULL;
	r = 0;
out:
	qemu_argv_free(argv);
	return r;
}

/* --- spawning ------------------------------------------------------------ */

/* Close every descriptor in [lo, hi]. Without close_range (Linux < 5.9)
 * fall back to closing one by one, up to fallback_max. */
static void
close_span(int lo, int hi, int fallback_max)
{
	int fd;

	if (lo > hi) {
		return;
	}
	if (close_range((unsigned)lo, (unsigned)hi, 0) == 0) {
		return;
	}
	for (fd = lo; fd <= hi && fd <= fallback_max; fd++) {
		(void)close(fd);
	}
}

static void
sort_fds(int *fds, size_t n)
{
	size_t i, j;

	for (i = 1; i < n; i++) {
		for (j = i; j > 0 && fds[j - 1] > fds[j]; j--) {
			int t = fds[j];

			fds[j] = fds[j - 1];
			fds[j - 1] = t;
		}
	}
}

static void __attribute__((noreturn))
child_fail(int err_fd, int e)
{
	(void)!write(err_fd, &e, sizeof(e));
	_exit(127);
}

/* After fork: only async-signal-safe calls from here to execve. */
static void __attribute__((noreturn))
spawn_child(const struct qemu_config *c, char *const *argv, int console_fd, int stderr_fd,
    int err_fd, pid_t parent)
{
	static char env_path[] = "PATH=/usr/sbin:/usr/bin:/sbin:/bin";
	char *envp[] = { env_path, NULL };
	struct sigaction dfl;
	struct rlimit rl;
	sigset_t none;
	int keep[4], all[4], n_keep = 0, n_all, top, out1, out2, nul, sig, i, prev, maxfd;

	memset(&dfl, 0, sizeof(dfl));
	dfl.sa_handler = SIG_DFL;
	for (sig = 1; sig < NSIG; sig++) {
		(void)sigaction(sig, &dfl, NULL);   /* ignored signals survive exec otherwise */
	}
	sigemptyset(&none);
	(void)sigprocmask(SIG_SETMASK, &none, NULL);
	/* Its own process group: a terminal's ^C reaches vmhost, which
	 * forwards it once, instead of both. */
	(void)setpgid(0, 0);
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) {
		child_fail(err_fd, errno);
	}
	if (getppid() != parent) {
		child_fail(err_fd, ESRCH);
	}

	keep[n_keep++] = c->kernel_fd;
	keep[n_keep++] = c->initrd_fd;
	if (c->rootfs_fd >= 0) {
		keep[n_keep++] = c->rootfs_fd;
	}
	top = err_fd > 2 ? err_fd : 2;
	for (i = 0; i < n_keep; i++) {
		top = keep[i] > top ? keep[i] : top;
	}
	top++;
	out1 = fcntl(console_fd, F_DUPFD_CLOEXEC, top);
	out2 = fcntl(stderr_fd, F_DUPFD_CLOEXEC, top);
	nul = open("/dev/null", O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (out1 < 0 || out2 < 0 || nul < 0) {
		child_fail(err_fd, errno);
	}
	nul = fcntl(nul, F_DUPFD_CLOEXEC, top);
	if (nul < 0 || dup2(nul, 0) != 0 || dup2(out1, 1) != 1 || dup2(out2, 2) != 2) {
		child_fail(err_fd, errno);
	}

	/* Close everything from 3 up except the artifacts and err_fd (which
	 * is close-on-exec and reports a failed exec). */
	memcpy(all, keep, sizeof(keep[0]) * (size_t)n_keep);
	all[n_keep] = err_fd;
	n_all = n_keep + 1;
	sort_fds(all, (size_t)n_all);
	maxfd = 65536;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
	    rl.rlim_cur < (rlim_t)INT_MAX && (int)rl.rlim_cur > maxfd) {
		maxfd = (int)rl.rlim_cur;
	}
	prev = 3;
	for (i = 0; i < n_all; i++) {
		close_span(prev, all[i] - 1, maxfd);
		prev = all[i] + 1;
	}
	close_span(prev, INT_MAX, maxfd);

	for (i = 0; i < n_keep; i++) {
		if (fcntl(keep[i], F_SETFD, 0) != 0) {
			child_fail(err_fd, errno);
		}
	}
	execve(argv[0], argv, envp);
	child_fail(err_fd, errno);
}

int
qemu_spawn(const struct qemu_config *c, char *const *argv, int console_fd, int stderr_fd,
    pid_t *ret_pid)
{
	int p[2] = { -1, -1 }, e = 0, r;
	pid_t pid, parent = getpid();
	ssize_t n;

	r = config_check(c);
	if (r != 0) {
		return r;
	}
	if (argv == NULL || argv[0] == NULL || console_fd < 0 || stderr_fd < 0) {
		return -EINVAL;
	}
	if (pipe2(p, O_CLOEXEC) != 0) {
		return -errno;
	}
	/* The child's copies: make sure they do not sit on 0..2. */
	if (p[1] < 3) {
		int moved = fcntl(p[1], F_DUPFD_CLOEXEC, 3);

		if (moved < 0) {
			r = -errno;
			goto out;
		}
		(void)close(p[1]);
		p[1] = moved;
	}
	pid = fork();
	if (pid < 0) {
		r = -errno;
		goto out;
	}
	if (pid == 0) {
		(void)close(p[0]);
		spawn_child(c, argv, console_fd, stderr_fd, p[1], parent);
	}
	(void)close(p[1]);
	p[1] = -1;
	do {
		n = read(p[0], &e, sizeof(e));
	} while (n < 0 && errno == EINTR);
	if (n == 0) {
		*ret_pid = pid;   /* exec succeeded: the pipe closed with it */
		r = 0;
		goto out;
	}
	r = n == (ssize_t)sizeof(e) && e > 0 ? -e : -EIO;
	while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {
	}
out:
	if (p[0] >= 0) {
		(void)close(p[0]);
	}
	if (p[1] >= 0) {
		(void)close(p[1]);
	}
	return r;
}

/* --- supervision --------------------------------------------------------- */

/* Write all of buf; false if the destination is gone. */
static bool
write_all(int fd, const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, buf, len);

		if (n < 0) {
			if (errno == EINTR) {
				continue;
			}
			if (errno == EAGAIN) {
				struct pollfd pfd = { fd, POLLOUT, 0 };

				if (poll(&pfd, 1, 1000) > 0) {
					continue;
				}
			}
			return false;
		}
		buf += n;
		len -= (size_t)n;
	}
	return true;
}

int
qemu_exit_code(int wait_status)
{
	if (WIFEXITED(wait_status)) {
		return WEXITSTATUS(wait_status);
	}
	if (WIFSIGNALED(wait_status)) {
		return 128 + WTERMSIG(wait_status);
	}
	return 1;
}

int
qemu_supervise(const struct qemu_supervise *s, struct qemu_outcome *ret)
{
	struct qemu_outcome o = { 0, 0, false, false, false };
	char *buf = NULL;
	sigset_t set;
	uint64_t kill_at = 0, drain_until = 0;
	bool reaped = false, console_open;
	int sfd = -1, ready_fd, r, fl;

	if (s == NULL || ret == NULL || s->pid <= 0 || s->console_fd < 0 || s->out_fd < 0 ||
	    (s->ready_fd >= 0 && s->ready_path == NULL)) {
		return -EINVAL;
	}
	ready_fd = s->ready_fd;
	console_open = true;
	buf = malloc(QEMU_COPY_BUF);
	if (buf == NULL) {
		r = -ENOMEM;
		goto out;
	}
	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	sfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	if (sfd < 0) {
		r = -errno;
		goto out;
	}
	fl = fcntl(s->console_fd, F_GETFL);
	if (fl < 0 || fcntl(s->console_fd, F_SETFL, fl | O_NONBLOCK) != 0) {
		r = -errno;
		goto out;
	}

	for (;;) {
		struct pollfd pfd[2];
		uint64_t now = clock_mono_ms();
		int timeout = -1, np = 1, pr;

		if (!reaped) {
			pid_t w = waitpid(s->pid, &o.wait_status, WNOHANG);

			if (w == s->pid) {
				reaped = true;
				drain_until = now + QEMU_DRAIN_MS;
			} else if (w < 0 && errno != EINTR) {
				r = -errno;
				goto out;
			}
		}
		if (ready_fd >= 0) {
			if (access(s->ready_path, F_OK) == 0 && !reaped) {
				o.ready = write_all(ready_fd, "R", 1);
				(void)close(ready_fd);
				ready_fd = -1;
			} else if (reaped) {
				(void)close(ready_fd);
				ready_fd = -1;
			} else {
				timeout = QEMU_READY_POLL_MS;
			}
		}
		if (!reaped && kill_at != 0 && now >= kill_at) {
			(void)kill(s->pid, SIGKILL);
			o.killed = true;
			kill_at = 0;
		}
		if (reaped && (!console_open || now >= drain_until)) {
			break;
		}
		if (kill_at != 0) {
			int left = (int)(kill_at - now);

			timeout = timeout < 0 || left < timeout ? left : timeout;
		}
		if (reaped) {
			int left = (int)(drain_until - now);

			timeout = timeout < 0 || left < timeout ? left : timeout;
		}

		pfd[0].fd = sfd;
		pfd[0].events = POLLIN;
		pfd[0].revents = 0;
		if (console_open) {
			pfd[1].fd = s->console_fd;
			pfd[1].events = POLLIN;
			pfd[1].revents = 0;
			np = 2;
		}
		pr = poll(pfd, (nfds_t)np, timeout);
		if (pr < 0) {
			if (errno == EINTR) {
				continue;
			}
			r = -errno;
			goto out;
		}
		if (np == 2 && pfd[1].revents != 0) {
			ssize_t n = read(s->console_fd, buf, QEMU_COPY_BUF);

			if (n > 0) {
				if (!o.console_lost && !write_all(s->out_fd, buf, (size_t)n)) {
					o.console_lost = true;   /* keep draining so QEMU never blocks */
				}
			} else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
				console_open = false;
			}
		}
		if (pfd[0].revents != 0) {
			struct signalfd_siginfo si;

			while (read(sfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
				int sig = (int)si.ssi_signo;

				if (sig == SIGCHLD || reaped) {
					continue;
				}
				if (o.stop_signal == 0) {
					o.stop_signal = sig;
					(void)kill(s->pid, SIGTERM);
					kill_at = clock_mono_ms() +
					    (s->grace_ms != 0 ? s->grace_ms : QEMU_STOP_GRACE_MS);
				} else {
					(void)kill(s->pid, SIGKILL);
					o.killed = true;
					kill_at = 0;
				}
			}
		}
	}
	*ret = o;
	r = 0;
out:
	if (ready_fd >= 0) {
		(void)close(ready_fd);
	}
	if (sfd >= 0) {
		(void)close(sfd);
	}
	free(buf);
	return r;
}
