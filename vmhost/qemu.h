/* qemu: the QEMU backend. Builds the command line for the microvm machine
 * on the sealed artifact descriptors, starts QEMU with exactly those
 * descriptors and a clean environment, and supervises it: copies its
 * console, forwards a stop request, reaps it. No logging here; results
 * come back to the caller (vmhost/main.c), which says what happened. */
#ifndef WARRANT_QEMU_H
#define WARRANT_QEMU_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "accel.h"

#define QEMU_DEFAULT_BINARY  "/usr/bin/qemu-system-x86_64"
#define QEMU_AGENT_PORT      "org.warrant.agent.0"
#define QEMU_STOP_GRACE_MS   10000   /* SIGTERM, then SIGKILL after this */
#define QEMU_SUN_PATH_MAX    107     /* sizeof(sockaddr_un.sun_path) - 1 */

struct qemu_config {
	const char *binary;         /* absolute path of qemu-system-x86_64 */
	unsigned memory_mib;        /* 64..65536 */
	unsigned vcpus;             /* 1..32 */
	enum accel_kind accel;
	int kernel_fd;              /* sealed memfds, >= 3 */
	int initrd_fd;
	int rootfs_fd;              /* -1: no rootfs */
	const char *cmdline;        /* the kernel command line, one argument */
	const char *agent_socket;   /* absolute path, <= QEMU_SUN_PATH_MAX bytes */
};

/* The argument vector (NULL-terminated, argv[0] the binary). -EINVAL for
 * a config out of range, -ENAMETOOLONG for an agent socket path too long
 * for a unix socket. Free with qemu_argv_free. */
int qemu_argv_new(const struct qemu_config *c, char ***ret);
void qemu_argv_free(char **argv);

/* Start QEMU (argv from qemu_argv_new for c). In the child: its own
 * process group, SIGKILL when the caller dies (PR_SET_PDEATHSIG), signals
 * reset, stdin /dev/null, stdout console_fd, stderr stderr_fd, the
 * artifact descriptors of c inherited (close-on-exec cleared on exactly
 * them), every other descriptor closed, an environment of PATH only.
 * Returns -errno of a failed exec (so "no such QEMU" is an error here, not
 * a dead child later). The caller should have SIGCHLD, SIGINT, SIGTERM and
 * SIGHUP blocked (qemu_supervise reads them) and SIGPIPE ignored. */
int qemu_spawn(const struct qemu_config *c, char *const *argv, int console_fd, int stderr_fd,
    pid_t *ret_pid);

struct qemu_supervise {
	pid_t pid;                  /* QEMU, a child of the caller */
	int console_fd;             /* read end of QEMU's console pipe */
	int out_fd;                 /* where the console goes */
	uint32_t grace_ms;          /* SIGTERM to SIGKILL; 0: QEMU_STOP_GRACE_MS */
	/* Optional readiness report: once ready_path exists (QEMU has created
	 * the agent socket), one byte 'R' is written to ready_fd and ready_fd
	 * is closed. If QEMU exits first, ready_fd is closed without a byte. */
	const char *ready_path;
	int ready_fd;               /* -1: none */
};

struct qemu_outcome {
	int wait_status;            /* as from waitpid */
	int stop_signal;            /* SIGINT/SIGTERM/SIGHUP that asked us to stop, or 0 */
	bool killed;                /* QEMU needed SIGKILL */
	bool console_lost;          /* writing the console failed; it was discarded */
	bool ready;                 /* the readiness byte was sent */
};

/* Run until QEMU exits: copy the console to out_fd; on SIGINT, SIGTERM or
 * SIGHUP send QEMU SIGTERM, and SIGKILL after grace_ms or on a second
 * signal. Uses a signalfd for those signals and SIGCHLD (the caller keeps
 * them blocked). Returns 0 and fills *ret once QEMU has been reaped. */
int qemu_supervise(const struct qemu_supervise *s, struct qemu_outcome *ret);

/* The exit status a launcher should exit with for a wait status: QEMU's
 * own exit code, or 128 + the signal that ended it. */
int qemu_exit_code(int wait_status);

/* Escape a value for QEMU's option syntax ("," doubles). Exported for the
 * tests. -ENOSPC if it does not fit. */
int qemu_opt_escape(const char *in, char *out, size_t outlen);

#endif
