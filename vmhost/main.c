/* vmhost: the host launcher. `vmhost launch MANIFEST` seals the manifest's
 * artifacts into memfds, has attestd measure them (launch socket), checks
 * the launch token it gets back, and boots the VMM on exactly those
 * descriptors; `vmhost list` and `vmhost stop NAME` manage what runs.
 * docs/vmhost.md describes the whole flow.
 *
 * Exit status: 0 success, 1 failure or refusal, 2 usage error; with
 * `launch --foreground`, QEMU's own exit status (128 + N if a signal N
 * ended it). Results are JSON on stdout, messages on stderr. */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "accel.h"
#include "args.h"
#include "artifact.h"
#include "audit.h"
#include "cjson.h"
#include "clock.h"
#include "envelope.h"
#include "firecracker.h"
#include "frame.h"
#include "fsutil.h"
#include "gate.h"
#include "launch.h"
#include "launchauth.h"
#include "log.h"
#include "manifest.h"
#include "parse.h"
#include "proxy.h"
#include "qemu.h"
#include "replay.h"
#include "secmem.h"
#include "token.h"
#include "tools.h"
#include "verifier.h"
#include "vm.h"

#define DEFAULT_ATTESTD_SOCKET  "/run/warrant/attestd.sock"
#define DEFAULT_LAUNCH_SOCKET   "/run/warrant/attestd-launch.sock"
#define DEFAULT_RUN_PARENT      "/run/warrant"
#define PAUSE_MAX_MS            60000
#define PAUSE_POLL_MS           100
#define READY_TIMEOUT_MS        60000
#define MAX_POSITIONAL          2
#define FC_DEFAULT_JAILER       "/usr/bin/jailer"
#define FC_DEFAULT_FIRECRACKER  "/usr/bin/firecracker"
#define FC_DEFAULT_CHROOT_BASE  "/srv/jailer"
#define FC_DEFAULT_USER         "warrant-vm"
#define PROXY_CONNECT_MS        60000   /* QEMU creates the agent socket at start */
#define PROXY_STOP_MS           2000    /* SIGTERM, then SIGKILL */
#define APPROVAL_TIMEOUT_MAX    86400
#define AUDIT_LOG_NAME          "audit.log"
#define USED_TOKENS_NAME        "used-tokens.db"
#define POLICY_ENVELOPE_NAME    "policy-envelope.json" /* the last narrowing by policy */
#define PROXY_EXIT_CUT          3
#define PROXY_RESTARTS_MAX      5       /* a proxy that keeps dying is left dead */
#define PROXY_RESTART_DELAY_MS  500

enum { EXIT_OK = 0, EXIT_FAIL = 1, EXIT_USAGE = 2 };

static const char usage_text[] =
"usage: vmhost COMMAND [OPTIONS] [ARGS]\n"
"\n"
"  launch [--attestd-socket P] [--launch-socket P] [--pause-before-boot FILE]\n"
"         QEMU:        [--run-dir D] [--accel auto|kvm|tcg] [--qemu PATH]\n"
"                      [--foreground] [--approval-timeout S]\n"
"                      [--approval-spool DIR | --approver ADDR\n"
"                       [--approver-ca F --approver-cert F --approver-key F]\n"
"                       [--owner NAME]]\n"
"         Firecracker: [--dry-run] [--jailer PATH] [--firecracker PATH]\n"
"                      [--chroot-base D] [--jail-uid N] [--jail-gid N]\n"
"                      [--guest-cid N]\n"
"         MANIFEST\n"
"      seal MANIFEST's artifacts, have attestd measure them, verify the\n"
"      launch token and boot exactly the measured bytes. --foreground runs\n"
"      until the guest powers off with its console on stdout; otherwise the\n"
"      VM runs in the background (console in RUNDIR/NAME/console.log).\n"
"      For vmm \"firecracker\": stage the jail (CHROOT_BASE, default\n"
"      " FC_DEFAULT_CHROOT_BASE "), write the config, print the jailer command;\n"
"      --dry-run stops there. The jail's uid and gid default to user\n"
"      " FC_DEFAULT_USER "'s. --pause-before-boot FILE is a debugging aid for\n"
"      tests: wait (at most 60 s) after measurement and verification until\n"
"      FILE exists, then boot.\n"
"      The tool proxy serves the guest agent's channel (docs/proxy.md); gated\n"
"      calls become approval requests in DIR/requests/ of --approval-spool,\n"
"      answered by a token in DIR/tokens/ or a reason in DIR/denied/, or go\n"
"      to the approver service at --approver ADDR (the path of its API\n"
"      socket, or an https:// URL with a client certificate and key; --owner\n"
"      NAME: the approver account that may not review this VM's requests),\n"
"      within --approval-timeout seconds (default 600); without either they\n"
"      are refused. Its audit log is RUNDIR/NAME/audit.log.\n"
"  list [--run-dir D]\n"
"      print the running VMs as JSON\n"
"  stop [--run-dir D] NAME\n"
"      stop the VM NAME (SIGTERM, then SIGKILL) and remove its run state\n"
"  narrow [--run-dir D] NAME ENVELOPE_JSON|-\n"
"      narrow the running VM NAME's envelope by policy to its meet with\n"
"      ENVELOPE_JSON (or the JSON on stdin for -); never widens. Prints the\n"
"      proxy's reply {\"ok\":true,\"envelope\":NEW}; exit 1 if refused\n"
"  audit verify FILE\n"
"      check a proxy audit log's hash chain: {\"valid\":true,\"records\":N}\n"
"      and exit 0, or the first bad line and exit 1\n"
"\n"
"Sockets default to $WARRANT_ATTESTD_SOCKET, else " DEFAULT_ATTESTD_SOCKET ",\n"
"and $WARRANT_LAUNCH_SOCKET, else " DEFAULT_LAUNCH_SOCKET ".\n"
"The run folder defaults to " VM_RUN_DIR_DEFAULT " (mode 0700).\n"
"Exit status: 0 success, 1 failure or refusal, 2 usage error; launch\n"
"--foreground exits with QEMU's status.\n";

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int
usage_error(const char *fmt, ...)
{
	va_list ap;

	fputs("vmhost: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs("\n(try 'vmhost --help')\n", stderr);
	return EXIT_USAGE;
}

/* --- options ------------------------------------------------------------- */

static int
parse_args(int argc, char **argv, struct args_opt *opts, struct args *ret)
{
	struct args_error e;

	if (args_parse(argc, argv, opts, MAX_POSITIONAL, ARGS_NONEMPTY | ARGS_DUP_BY_NAME, ret, &e) != 0) {
		return usage_error("%s'%.*s'%s", e.pre, e.arg_len, e.arg, e.post);
	}
	return 0;
}

static const char *
env_or(const char *opt, const char *env, const char *def)
{
	const char *e;

	if (opt != NULL) {
		return opt;
	}
	e = getenv(env);
	return e != NULL && e[0] != '\0' ? e : def;
}

static void
print_json(const json_t *j)
{
	char *s = json_dumps(j, JSON_COMPACT);

	if (s != NULL) {
		printf("%s\n", s);
		free(s);
	}
	(void)fflush(stdout);
}

/* Descriptors 0..2 must be open: otherwise the first memfd would become
 * QEMU's stdout. */
static int
ensure_std_fds(void)
{
	int fd;

	for (;;) {
		fd = open("/dev/null", O_RDWR | O_CLOEXEC | O_NOFOLLOW);
		if (fd < 0) {
			return -errno;
		}
		if (fd > 2) {
			(void)close(fd);
			return 0;
		}
		/* It landed on 0..2: keep it there, without close-on-exec. */
		if (fcntl(fd, F_SETFD, 0) != 0) {
			return -errno;
		}
	}
}

/* --- launch: measurement and verification -------------------------------- */

static const char *
launch_error(int r)
{
	switch (r) {
	case -ENOENT: {
		return "no launch socket there (is attestd running with its launch socket? "
		    "see --launch-socket)";
	}
	case -ECONNREFUSED: {
		return "connection refused (is attestd running?)";
	}
	case -EACCES: {
		return "attestd refused: this uid may not launch VMs (403)";
	}
	case -EINVAL: {
		return "attestd rejected the request (400)";
	}
	case -EFBIG: {
		return "attestd refused the request as too large (413)";
	}
	case -EAGAIN: {
		return "attestd cannot measure now: TPM unreachable or its PCR policy "
		    "violated (503)";
	}
	case -EIO: {
		return "attestd failed internally (500)";
	}
	case -EPROTO: {
		return "a malformed reply from the launch socket";
	}
	case -ETIMEDOUT: {
		return "timed out";
	}
	default: {
		return strerror(-r);
	}
	}
}

static int
seal_one(const char *path, const char *label, uint64_t max, int *ret_fd)
{
	uint64_t size = 0;
	int r;

	r = artifact_seal(path, label, max, ret_fd, &size);
	switch (r) {
	case 0: {
		return 0;
	}
	case -EFBIG: {
		log_error("cannot seal the %s: %s is larger than %llu bytes", label, path,
		    (unsigned long long)max);
		break;
	}
	case -ELOOP: {
		log_error("cannot seal the %s: %s is a symbolic link; name the file itself", label,
		    path);
		break;
	}
	case -EINVAL: {
		log_error("cannot seal the %s: %s is not a regular file", label, path);
		break;
	}
	case -ESTALE: {
		log_error("cannot seal the %s: %s changed size while it was copied", label, path);
		break;
	}
	default: {
		log_error("cannot seal the %s: %s: %s", label, path, strerror(-r));
		break;
	}
	}
	return r;
}

/* Wait until path exists, at most PAUSE_MAX_MS. */
static int
pause_until(const char *path)
{
	uint64_t deadline = clock_mono_ms() + PAUSE_MAX_MS;
	struct stat st;

	log_info("paused before boot (debugging aid): waiting up to %d s for %s",
	    PAUSE_MAX_MS / 1000, path);
	for (;;) {
		if (lstat(path, &st) == 0) {
			log_info("%s exists: booting the measured artifacts", path);
			return 0;
		}
		if (clock_mono_ms() >= deadline) {
			log_error("%s did not appear within %d s; not booting", path,
			    PAUSE_MAX_MS / 1000);
			return -ETIMEDOUT;
		}
		clock_sleep_ms(PAUSE_POLL_MS);
	}
}

struct launch_opts {
	const char *manifest;
	const char *attestd_socket;
	const char *launch_socket;
	const char *run_dir;
	const char *qemu;
	const char *pause_file;
	const char *approval_spool;     /* NULL: gated calls are refused */
	const char *approver;           /* or the approver service: a socket path or URL */
	const char *approver_ca;
	const char *approver_cert;
	const char *approver_key;
	const char *owner;              /* NULL or the account that may not review */
	uint32_t approval_timeout_ms;
	enum accel_mode accel_mode;
	bool foreground;
	bool dry_run;
};

/* What a launch has and has to release. */
struct launch_ctx {
	struct manifest *m;
	struct launch_fds fds;
	struct vm_run *run;
	char vm_id[VM_ID_MAX + 1];
	char launch_digest[65];
	enum accel_kind accel;
};

static void
launch_ctx_clear(struct launch_ctx *c, bool remove_state)
{
	if (c->fds.kernel >= 0) {
		(void)close(c->fds.kernel);
	}
	if (c->fds.initrd >= 0) {
		(void)close(c->fds.initrd);
	}
	if (c->fds.rootfs >= 0) {
		(void)close(c->fds.rootfs);
	}
	c->fds.kernel = c->fds.initrd = c->fds.rootfs = -1;
	vm_run_free(c->run, remove_state);
	c->run = NULL;
	manifest_free(c->m);
	c->m = NULL;
}

/* Measure and verify: on success the artifacts are sealed in c->fds,
 * c->vm_id and c->launch_digest are what attestd measured, and the launch
 * token bound to them has verified. */
static int
measure_and_verify(const struct launch_opts *o, struct launch_ctx *c)
{
	struct launch_result lr;
	struct verifier *v = NULL;
	json_t *config = NULL;
	const char *reason = "refused";
	char why[256];
	int r;

	memset(&lr, 0, sizeof(lr));
	if ((r = seal_one(c->m->kernel, "kernel", MANIFEST_KERNEL_MAX, &c->fds.kernel)) != 0 ||
	    (r = seal_one(c->m->initrd, "initrd", MANIFEST_INITRD_MAX, &c->fds.initrd)) != 0 ||
	    (c->m->rootfs[0] != '\0' &&
	     (r = seal_one(c->m->rootfs, "rootfs", MANIFEST_ROOTFS_MAX, &c->fds.rootfs)) != 0)) {
		goto out;
	}
	r = launch_measure_detail(o->launch_socket, c->m, &c->fds, &lr, why, sizeof(why));
	if (r != 0) {
		log_error("cannot measure %s: %s: %s%s%s", c->m->name, o->launch_socket,
		    launch_error(r), why[0] != '\0' ? ": " : "", why);
		goto out;
	}
	config = manifest_config(c->m);
	if (config == NULL) {
		r = -ENOMEM;
		log_error("cannot verify the launch token: out of memory");
		goto out;
	}
	r = verifier_new(o->attestd_socket, LAUNCHAUTH_AUDIENCE, &v);
	if (r != 0) {
		log_error("cannot verify the launch token: %s", strerror(-r));
		goto out;
	}
	r = launchauth_check(v, lr.token, lr.vm_id, lr.launch_digest, config, 0, &reason);
	if (r != 0) {
		log_error("refusing to boot %s: the launch token for vm %s, launch digest %s does "
		    "not verify: %s", c->m->name, lr.vm_id, lr.launch_digest, reason);
		r = -EPERM;
		goto out;
	}
	memcpy(c->vm_id, lr.vm_id, sizeof(c->vm_id) - 1);
	c->vm_id[sizeof(c->vm_id) - 1] = '\0';
	memcpy(c->launch_digest, lr.launch_digest, sizeof(c->launch_digest));
	log_info("measured %s: vm %s, launch digest %s; launch token verified", c->m->name,
	    c->vm_id, c->launch_digest);
	r = 0;
out:
	verifier_free(v);
	json_decref(config);
	launch_result_clear(&lr);
	return r;
}

/* --- the tool proxy ------------------------------------------------------- */

/* The approval sink the options name, or none (*ret NULL). */
static int
open_gate(const struct launch_opts *o, struct gate **ret)
{
	*ret = NULL;
	if (o->approval_spool != NULL) {
		return gate_spool_new(o->approval_spool, ret);
	}
	if (o->approver != NULL) {
		return gate_approver_new(o->approver, o->approver_ca, o->approver_cert,
		    o->approver_key, PROXY_AUDIENCE, o->owner, ret);
	}
	return 0;
}

static const char *
gate_name(const struct launch_opts *o)
{
	return o->approval_spool != NULL ? o->approval_spool : o->approver != NULL ? o->approver :
	    "";
}

/* What the proxy of c needs and can fail for a reason the operator should
 * hear before the VM boots: the envelope it enforces, the workspace, the
 * approval spool, the audit log (its chain is verified on open) and the
 * used-token store. The proxy process opens them again for itself. */
static int
proxy_preflight(const struct launch_opts *o, const struct launch_ctx *c)
{
	struct tools_config tc = { c->m->workspace, 0, 0, 0 };
	struct envelope *e = NULL;
	struct tools *t = NULL;
	struct gate *g = NULL;
	struct audit *a = NULL;
	struct replay *rp = NULL;
	char err[512], path[PATH_MAX];
	int r;

	err[0] = '\0';
	r = envelope_parse(c->m->envelope, &e, err, sizeof(err));
	if (r != 0) {
		log_error("%s: the envelope cannot be enforced: %s", c->m->name,
		    err[0] != '\0' ? err : strerror(-r));
		goto out;
	}
	r = tools_new(&tc, &t);
	if (r != 0) {
		log_error("%s: cannot open the workspace %s: %s", c->m->name, c->m->workspace,
		    strerror(-r));
		goto out;
	}
	r = open_gate(o, &g);
	if (r != 0) {
		log_error("cannot use the approval %s %s: %s",
		    o->approval_spool != NULL ? "spool" : "service", gate_name(o), strerror(-r));
		goto out;
	}
	if ((r = vm_run_path(c->run, AUDIT_LOG_NAME, path, sizeof(path))) != 0 ||
	    (r = audit_open(path, &a)) != 0) {
		if (r == -EBADMSG) {
			log_error("the audit log %s is broken ('vmhost audit verify %s' shows where); "
			    "move it away to start a new one", path, path);
		} else {
			log_error("cannot open the audit log %s: %s", path, strerror(-r));
		}
		goto out;
	}
	if ((r = vm_run_path(c->run, USED_TOKENS_NAME, path, sizeof(path))) != 0 ||
	    (r = replay_open(path, &rp)) != 0) {
		log_error("cannot open the used-token store %s: %s", path, strerror(-r));
		goto out;
	}
	/* A new launch starts from its manifest's envelope: a narrowing by
	 * policy of an earlier run of NAME does not carry over. */
	if ((r = vm_run_path(c->run, POLICY_ENVELOPE_NAME, path, sizeof(path))) != 0 ||
	    (unlink(path) != 0 && errno != ENOENT)) {
		r = r != 0 ? r : -errno;
		log_error("cannot remove %s: %s", path, strerror(-r));
		goto out;
	}
	r = 0;
out:
	replay_close(rp);
	audit_close(a);
	gate_free(g);
	tools_free(t);
	envelope_free(e);
	return r;
}

/* proxy_narrowed_fn: keep the envelope narrowed by policy in
 * RUNDIR/NAME/policy-envelope.json, so that a restarted proxy applies it
 * again. */
static int
policy_keep(void *ctx, const json_t *envelope)
{
	char *enc = NULL;
	size_t len = 0;
	int r;

	r = cjson_dump(envelope, &enc, &len);
	if (r == 0) {
		r = fs_write_file_atomic(ctx, enc, len, 0600);
	}
	free(enc);
	if (r != 0) {
		log_error("cannot keep the narrowed envelope in %s: %s", (const char *)ctx,
		    strerror(-r));
	}
	return r;
}

/* Meet *e with the envelope kept by policy_keep, if any (a proxy restarted
 * after a narrowing by policy). */
static int
policy_apply(const char *path, struct envelope **e, char *err, size_t err_len)
{
	struct envelope *pol = NULL, *met = NULL;
	json_t *j = NULL;
	char *buf = NULL;
	size_t len = 0;
	int r;

	r = fs_read_file(path, FRAME_MAX, &buf, &len);
	if (r == -ENOENT) {
		r = 0;
		goto out;
	}
	if (r == 0) {
		r = cjson_parse(buf, len, FRAME_MAX, &j);
	}
	if (r == 0) {
		r = envelope_parse(j, &pol, err, err_len);
	}
	if (r == 0) {
		r = envelope_meet(*e, pol, &met);
	}
	if (r == 0) {
		envelope_free(*e);
		*e = met;
		met = NULL;
	}
out:
	envelope_free(met);
	envelope_free(pol);
	json_decref(j);
	free(buf);
	return r;
}

/* The proxy process: build the proxy for c, connect to QEMU's end of the
 * agent port, serve it until it closes or the guest is cut off. Returns
 * the process's exit status: 0 the channel closed, PROXY_EXIT_CUT the
 * guest was cut off, EXIT_FAIL the proxy could not run. */
static int
proxy_run(const struct launch_opts *o, const struct launch_ctx *c, const char *agent)
{
	struct tools_config tc = { c->m->workspace, 0, 0, 0 };
	struct proxy_config pc;
	struct proxy_stats st;
	struct envelope *e = NULL;
	struct tools *t = NULL;
	struct gate *g = NULL;
	struct audit *a = NULL;
	struct replay *rp = NULL;
	struct verifier *v = NULL;
	struct proxy *p = NULL;
	char err[512], path[PATH_MAX], ctl_path[PATH_MAX], pol_path[PATH_MAX];
	int fd = -1, ctl = -1, rc = EXIT_FAIL, r;

	err[0] = '\0';
	ctl_path[0] = '\0';
	if ((r = envelope_parse(c->m->envelope, &e, err, sizeof(err))) != 0 ||
	    (r = tools_new(&tc, &t)) != 0 ||
	    (r = open_gate(o, &g)) != 0 ||
	    (r = vm_run_path(c->run, AUDIT_LOG_NAME, path, sizeof(path))) != 0 ||
	    (r = audit_open(path, &a)) != 0 ||
	    (r = vm_run_path(c->run, USED_TOKENS_NAME, path, sizeof(path))) != 0 ||
	    (r = replay_open(path, &rp)) != 0 ||
	    (r = verifier_new(o->attestd_socket, PROXY_AUDIENCE, &v)) != 0 ||
	    (r = vm_run_path(c->run, POLICY_ENVELOPE_NAME, pol_path, sizeof(pol_path))) != 0 ||
	    (r = policy_apply(pol_path, &e, err, sizeof(err))) != 0) {
		log_error("%s: the tool proxy cannot start: %s", c->m->name,
		    err[0] != '\0' ? err : strerror(-r));
		goto out;
	}
	verifier_set_replay(v, rp);
	/* A (re)start is part of the record: tokens consumed before it stay
	 * consumed (used-tokens.db), and the audit trail shows the gap. */
	{
		json_t *rec = json_pack("{s:s, s:s, s:s, s:I}", "event", "proxy_started", "vm",
		    c->vm_id, "launch_digest", c->launch_digest, "pid", (json_int_t)getpid());

		r = rec != NULL ? audit_append(a, rec) : -ENOMEM;
		json_decref(rec);
		if (r != 0) {
			log_error("%s: the tool proxy cannot write its audit log: %s", c->m->name,
			    strerror(-r));
			goto out;
		}
	}
	memset(&pc, 0, sizeof(pc));
	pc.vm_id = c->vm_id;
	pc.launch_digest = c->launch_digest;
	pc.envelope = e;
	pc.tools = t;
	pc.audit = a;
	pc.verifier = v;
	pc.gate = g;
	pc.approval_timeout_ms = o->approval_timeout_ms;
	pc.on_narrowed = policy_keep;
	pc.narrowed_ctx = pol_path;
	r = proxy_new(&pc, &p);
	if (r != 0) {
		log_error("%s: the tool proxy cannot start: %s", c->m->name, strerror(-r));
		goto out;
	}
	e = NULL;   /* the proxy's now */
	/* Narrowing by policy (vmhost narrow): without it the guest still has
	 * its channel, so a failure here is a warning. */
	if ((r = vm_run_path(c->run, PROXY_CONTROL_NAME, ctl_path, sizeof(ctl_path))) != 0 ||
	    (r = proxy_control_listen(ctl_path, &ctl)) != 0 ||
	    (r = proxy_set_control(p, ctl)) != 0) {
		log_warn("%s: no control socket (vmhost narrow will not reach this VM): %s",
		    c->m->name, strerror(-r));
	}
	r = proxy_connect(agent, PROXY_CONNECT_MS, &fd);
	if (r != 0) {
		log_error("%s: the tool proxy cannot connect to %s: %s", c->m->name, agent,
		    strerror(-r));
		goto out;
	}
	log_info("tool proxy for %s (vm %s, pid %d) serving %s%s%s", c->m->name, c->vm_id,
	    (int)getpid(), agent,
	    g == NULL ? "; no approval spool or approver: gated calls are refused" :
	    o->approval_spool != NULL ? "; approval spool " : "; approver ", gate_name(o));
	r = proxy_serve(p, fd, &st);
	if (r != 0) {
		log_error("%s: the tool proxy failed: %s", c->m->name, strerror(-r));
		goto out;
	}
	switch (st.end) {
	case PROXY_END_EOF: {
		log_info("%s: agent channel closed (%llu frames, %llu requests)", c->m->name,
		    (unsigned long long)st.frames, (unsigned long long)st.calls);
		rc = EXIT_OK;
		break;
	}
	case PROXY_END_CUT_MALFORMED:
	case PROXY_END_CUT_OVERSIZED:
	case PROXY_END_CUT_AUDIT: {
		log_warn("%s: %s (%llu malformed frames, %llu requests); the channel is closed, "
		    "the VM keeps running without a way out", c->m->name, proxy_end_name(st.end),
		    (unsigned long long)st.malformed, (unsigned long long)st.calls);
		rc = PROXY_EXIT_CUT;
		break;
	}
	default: {
		log_error("%s: %s: %s", c->m->name, proxy_end_name(st.end), strerror(st.error));
		break;
	}
	}
out:
	if (fd >= 0) {
		(void)close(fd);
	}
	if (ctl >= 0) {
		(void)close(ctl);
		(void)unlink(ctl_path);
	}
	proxy_free(p);
	verifier_free(v);
	replay_close(rp);
	audit_close(a);
	gate_free(g);
	tools_free(t);
	envelope_free(e);
	return rc;
}

/* The proxy's monitor: runs the proxy in a child of its own and starts it
 * again if it dies (a crash, a kill, a failed start), at most
 * PROXY_RESTARTS_MAX times; not when the channel closed or the guest was
 * cut off, which are ends, not failures. */
static int
proxy_monitor(const struct launch_opts *o, const struct launch_ctx *c, const char *agent)
{
	pid_t monitor = getpid();
	int restarts = 0;

	for (;;) {
		int st = 0;
		pid_t pid = fork();

		if (pid < 0) {
			log_error("%s: cannot start the tool proxy: %s", c->m->name, strerror(errno));
			return EXIT_FAIL;
		}
		if (pid == 0) {
			if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != monitor) {
				_exit(EXIT_FAIL);
			}
			_exit(proxy_run(o, c, agent));
		}
		while (waitpid(pid, &st, 0) < 0) {
			if (errno != EINTR) {
				return EXIT_FAIL;
			}
		}
		if (WIFEXITED(st) && (WEXITSTATUS(st) == EXIT_OK ||
		    WEXITSTATUS(st) == PROXY_EXIT_CUT)) {
			return WEXITSTATUS(st);
		}
		if (restarts == PROXY_RESTARTS_MAX) {
			log_error("%s: the tool proxy failed %d times; the guest has no channel any more",
			    c->m->name, restarts + 1);
			return EXIT_FAIL;
		}
		restarts++;
		if (WIFSIGNALED(st)) {
			log_warn("%s: the tool proxy (pid %d) died of signal %d; restarting it (%d of %d)",
			    c->m->name, (int)pid, WTERMSIG(st), restarts, PROXY_RESTARTS_MAX);
		} else {
			log_warn("%s: the tool proxy (pid %d) failed; restarting it (%d of %d)",
			    c->m->name, (int)pid, restarts, PROXY_RESTARTS_MAX);
		}
		clock_sleep_ms(PROXY_RESTART_DELAY_MS);
	}
}

/* Fork the proxy's monitor (which runs the proxy itself in a child): it
 * dies with its supervisor (PR_SET_PDEATHSIG), ignores the terminal's ^C
 * (the supervisor stops QEMU, then the proxy), holds no descriptor of the
 * launch, and cannot dump core (the proxy caches its audience key). A
 * crash of the proxy costs the guest its requests in flight, never the
 * supervisor or QEMU. -1 if it could not be started. */
static pid_t
proxy_start(const struct launch_opts *o, const struct launch_ctx *c, const char *agent)
{
	struct sigaction sa;
	sigset_t none;
	pid_t parent = getpid(), pid;
	int nul;

	(void)fflush(stdout);
	(void)fflush(stderr);
	pid = fork();
	if (pid < 0) {
		log_error("%s: cannot start the tool proxy: %s", c->m->name, strerror(errno));
		return -1;
	}
	if (pid > 0) {
		return pid;
	}
	log_init("vmhost-proxy", LOG_INFO);
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent) {
		_exit(EXIT_FAIL);
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_IGN;
	(void)sigaction(SIGINT, &sa, NULL);
	(void)sigaction(SIGHUP, &sa, NULL);
	sa.sa_handler = SIG_DFL;
	(void)sigaction(SIGTERM, &sa, NULL);
	(void)sigaction(SIGCHLD, &sa, NULL);
	sigemptyset(&none);
	(void)sigprocmask(SIG_SETMASK, &none, NULL);
	(void)close_range(3, ~0U, 0);
	nul = open("/dev/null", O_RDWR | O_CLOEXEC | O_NOFOLLOW);
	if (nul < 0 || dup2(nul, STDIN_FILENO) < 0 || dup2(nul, STDOUT_FILENO) < 0) {
		_exit(EXIT_FAIL);
	}
	(void)close(nul);
	if (secmem_harden_process() != 0) {
		log_warn("%s: the tool proxy could not make itself non-dumpable", c->m->name);
	}
	_exit(proxy_monitor(o, c, agent));
}

/* After QEMU: SIGTERM, PROXY_STOP_MS, SIGKILL, reap. */
static void
proxy_stop(pid_t pid, const char *name)
{
	uint64_t deadline = clock_mono_ms() + PROXY_STOP_MS;
	int st = 0;
	pid_t w;

	(void)kill(pid, SIGTERM);
	for (;;) {
		w = waitpid(pid, &st, WNOHANG);
		if (w == pid || (w < 0 && errno != EINTR)) {
			break;
		}
		if (clock_mono_ms() >= deadline) {
			(void)kill(pid, SIGKILL);
			while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
			}
			w = pid;
			break;
		}
		clock_sleep_ms(20);
	}
	if (w == pid && WIFEXITED(st) && WEXITSTATUS(st) == EXIT_FAIL) {
		log_warn("%s: the tool proxy had failed (see above); the guest had no channel", name);
	} else if (w == pid && WIFSIGNALED(st) && WTERMSIG(st) != SIGTERM &&
	    WTERMSIG(st) != SIGKILL) {
		log_error("%s: the tool proxy died of signal %d; the guest had no channel from then "
		    "on", name, WTERMSIG(st));
	}
}

/* --- launch: QEMU -------------------------------------------------------- */

static int
block_signals(void)
{
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	return sigprocmask(SIG_BLOCK, &set, NULL) == 0 ? 0 : -errno;
}

static void
fill_state(const struct launch_ctx *c, pid_t qemu_pid, bool foreground, struct vm_state *s)
{
	memset(s, 0, sizeof(*s));
	(void)snprintf(s->name, sizeof(s->name), "%s", c->m->name);
	(void)snprintf(s->vm_id, sizeof(s->vm_id), "%s", c->vm_id);
	(void)snprintf(s->launch_digest, sizeof(s->launch_digest), "%s", c->launch_digest);
	(void)snprintf(s->vmm, sizeof(s->vmm), "qemu");
	(void)snprintf(s->accel, sizeof(s->accel), "%s", accel_name(c->accel));
	s->started = (int64_t)time(NULL);
	s->pid = getpid();
	(void)vm_proc_start(s->pid, &s->pid_start);
	s->vmm_pid = qemu_pid;
	/* QEMU may have died already: then 0, and list will not show it. */
	(void)vm_proc_start(qemu_pid, &s->vmm_start);
	s->foreground = foreground;
}

static void
log_outcome(const char *name, const struct qemu_outcome *oc)
{
	int st = oc->wait_status;

	if (oc->stop_signal != 0) {
		log_info("stopped %s on signal %d%s; QEMU exit status %d", name, oc->stop_signal,
		    oc->killed ? " (QEMU needed SIGKILL)" : "", qemu_exit_code(st));
	} else if (WIFEXITED(st) && WEXITSTATUS(st) == 0) {
		log_info("%s: the guest powered off; QEMU exited with status 0", name);
	} else if (WIFEXITED(st)) {
		log_error("%s: QEMU failed with status %d (its messages are on standard error "
		    "or in vmhost.log)", name, WEXITSTATUS(st));
	} else if (WIFSIGNALED(st)) {
		log_info("%s: QEMU was killed by signal %d", name, WTERMSIG(st));
	}
	if (oc->console_lost) {
		log_warn("%s: the console could not be written; the rest of it was discarded", name);
	}
}

/* Start QEMU on c's descriptors, publish the run state and supervise it
 * until it exits. console_out: where the console goes. ready_fd: see
 * qemu_supervise. Returns the exit code for vmhost. */
static int
run_qemu(const struct launch_opts *o, struct launch_ctx *c, int console_out, bool foreground,
    int ready_fd)
{
	struct qemu_config qc;
	struct qemu_supervise sv;
	struct qemu_outcome oc;
	struct vm_state st;
	char agent[PATH_MAX];
	char **argv = NULL;
	int pipefd[2] = { -1, -1 }, rc = EXIT_FAIL, r;
	pid_t pid = -1, proxy_pid = -1;

	r = vm_run_path(c->run, "agent.sock", agent, sizeof(agent));
	if (r != 0 || strlen(agent) > QEMU_SUN_PATH_MAX) {
		log_error("the agent socket path %s/%s/agent.sock is too long for a unix socket "
		    "(%d bytes at most); choose a shorter --run-dir", o->run_dir, c->m->name,
		    QEMU_SUN_PATH_MAX);
		goto out;
	}
	memset(&qc, 0, sizeof(qc));
	qc.binary = o->qemu;
	qc.memory_mib = c->m->memory_mib;
	qc.vcpus = c->m->vcpus;
	qc.accel = c->accel;
	qc.kernel_fd = c->fds.kernel;
	qc.initrd_fd = c->fds.initrd;
	qc.rootfs_fd = c->fds.rootfs;
	qc.cmdline = c->m->cmdline;
	qc.agent_socket = agent;
	r = qemu_argv_new(&qc, &argv);
	if (r != 0) {
		log_error("cannot build QEMU's command line: %s", strerror(-r));
		goto out;
	}
	if ((r = block_signals()) != 0 || pipe2(pipefd, O_CLOEXEC) != 0) {
		log_error("cannot prepare to run QEMU: %s", strerror(r != 0 ? -r : errno));
		goto out;
	}
	r = qemu_spawn(&qc, argv, pipefd[1], STDERR_FILENO, &pid);
	if (r != 0) {
		log_error("cannot run %s: %s", o->qemu, strerror(-r));
		goto out;
	}
	(void)close(pipefd[1]);
	pipefd[1] = -1;
	fill_state(c, pid, foreground, &st);
	r = vm_run_publish(c->run, &st);
	if (r != 0) {
		/* Without run state nobody could list or stop it: do not run. */
		log_error("cannot write the run state of %s: %s; stopping QEMU", c->m->name,
		    strerror(-r));
		(void)kill(pid, SIGKILL);
		while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {
		}
		goto out;
	}
	log_info("booting %s under QEMU (pid %d, accel %s)", c->m->name, (int)pid,
	    accel_name(c->accel));
	/* Without its proxy the guest has no way out at all: it still boots. */
	proxy_pid = proxy_start(o, c, agent);
	memset(&sv, 0, sizeof(sv));
	sv.pid = pid;
	sv.console_fd = pipefd[0];
	sv.out_fd = console_out;
	sv.grace_ms = QEMU_STOP_GRACE_MS;
	sv.ready_path = ready_fd >= 0 ? agent : NULL;
	sv.ready_fd = ready_fd;
	ready_fd = -1;   /* qemu_supervise closes it */
	r = qemu_supervise(&sv, &oc);
	if (r != 0) {
		log_error("supervising QEMU failed: %s; killing it", strerror(-r));
		(void)kill(pid, SIGKILL);
		while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {
		}
		goto out;
	}
	log_outcome(c->m->name, &oc);
	rc = qemu_exit_code(oc.wait_status);
out:
	if (proxy_pid > 0) {
		proxy_stop(proxy_pid, c->m->name);
	}
	if (ready_fd >= 0) {
		(void)close(ready_fd);
	}
	if (pipefd[0] >= 0) {
		(void)close(pipefd[0]);
	}
	if (pipefd[1] >= 0) {
		(void)close(pipefd[1]);
	}
	qemu_argv_free(argv);
	return rc;
}

static int
open_log(const struct vm_run *run, const char *leaf, int *ret)
{
	char path[PATH_MAX];
	int fd, r;

	r = vm_run_path(run, leaf, path, sizeof(path));
	if (r != 0) {
		return r;
	}
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0) {
		return -errno;
	}
	*ret = fd;
	return 0;
}

/* The daemon side of a background launch: detached, logging into
 * RUNDIR/NAME/vmhost.log, the console into console.log. Never returns. */
static void __attribute__((noreturn))
supervisor_main(const struct launch_opts *o, struct launch_ctx *c, int ready_fd)
{
	int logfd = -1, confd = -1, nul, rc = EXIT_FAIL;

	if (open_log(c->run, "vmhost.log", &logfd) != 0 ||
	    open_log(c->run, "console.log", &confd) != 0) {
		goto out;
	}
	nul = open("/dev/null", O_RDWR | O_CLOEXEC | O_NOFOLLOW);
	if (nul < 0 || dup2(nul, STDIN_FILENO) < 0 || dup2(nul, STDOUT_FILENO) < 0 ||
	    dup2(logfd, STDERR_FILENO) < 0) {
		goto out;
	}
	if (nul > STDERR_FILENO) {
		(void)close(nul);
	}
	(void)close(logfd);
	logfd = -1;
	if (chdir("/") != 0) {
		goto out;
	}
	log_info("supervising %s (vm %s)", c->m->name, c->vm_id);
	rc = run_qemu(o, c, confd, false, ready_fd);
	ready_fd = -1;
out:
	if (ready_fd >= 0) {
		(void)close(ready_fd);
	}
	if (confd >= 0) {
		(void)close(confd);
	}
	if (logfd >= 0) {
		(void)close(logfd);
	}
	launch_ctx_clear(c, true);
	_exit(rc);
}

/* Fork the supervisor away (double fork, new session) and wait until it
 * reports QEMU up (its agent socket exists) or gone. */
static int
launch_background(const struct launch_opts *o, struct launch_ctx *c)
{
	char dir_path[PATH_MAX];
	struct vm_state st;
	json_t *j = NULL;
	int p[2] = { -1, -1 }, rc = EXIT_FAIL, status;
	pid_t pid;
	char byte = 0;

	(void)fflush(stdout);
	(void)fflush(stderr);
	if (pipe2(p, O_CLOEXEC) != 0) {
		log_error("cannot start the supervisor: %s", strerror(errno));
		return EXIT_FAIL;
	}
	pid = fork();
	if (pid < 0) {
		log_error("cannot start the supervisor: %s", strerror(errno));
		goto out;
	}
	if (pid == 0) {
		(void)close(p[0]);
		if (setsid() < 0) {
			_exit(EXIT_FAIL);
		}
		pid = fork();
		if (pid != 0) {
			_exit(pid < 0 ? EXIT_FAIL : EXIT_OK);
		}
		supervisor_main(o, c, p[1]);
	}
	(void)close(p[1]);
	p[1] = -1;
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
	}
	{
		struct pollfd pfd = { p[0], POLLIN, 0 };
		uint64_t deadline = clock_mono_ms() + READY_TIMEOUT_MS;

		for (;;) {
			uint64_t now = clock_mono_ms();
			int pr;

			if (now >= deadline) {
				break;
			}
			pr = poll(&pfd, 1, (int)(deadline - now));
			if (pr < 0 && errno == EINTR) {
				continue;
			}
			if (pr > 0 && read(p[0], &byte, 1) < 0 && errno == EINTR) {
				continue;
			}
			break;
		}
	}
	(void)snprintf(dir_path, sizeof(dir_path), "%s/%s", o->run_dir, c->m->name);
	if (byte != 'R') {
		log_error("%s did not start; see %s/vmhost.log and %s/console.log", c->m->name,
		    dir_path, dir_path);
		goto out;
	}
	if (vm_state_read(o->run_dir, c->m->name, &st) != 0 || (j = vm_state_to_json(&st)) == NULL) {
		log_error("%s started, but its run state cannot be read back", c->m->name);
		goto out;
	}
	(void)json_object_set_new(j, "console", json_sprintf("%s/console.log", dir_path));
	(void)json_object_set_new(j, "agent_socket", json_sprintf("%s/agent.sock", dir_path));
	print_json(j);
	rc = EXIT_OK;
out:
	json_decref(j);
	if (p[0] >= 0) {
		(void)close(p[0]);
	}
	if (p[1] >= 0) {
		(void)close(p[1]);
	}
	return rc;
}

/* --- launch: Firecracker -------------------------------------------------- */

struct fc_opts {
	const char *jailer;
	const char *firecracker;
	const char *chroot_base;
	const char *uid;
	const char *gid;
	const char *cid;
};

/* The guest's vsock CID: unique per host, so derived from the VM id
 * (attestd makes those unique) unless given. */
static int
derive_cid(const char *vm_id, uint32_t *ret)
{
	static const char label[] = "warrant/v1/vsock-cid";
	uint8_t h[32];
	uint32_t v;
	int r;

	r = token_hmac((const uint8_t *)label, sizeof(label) - 1, vm_id, strlen(vm_id), h);
	if (r != 0) {
		return r;
	}
	v = (uint32_t)h[0] << 24 | (uint32_t)h[1] << 16 | (uint32_t)h[2] << 8 | h[3];
	*ret = FC_GUEST_CID_MIN + v % (FC_GUEST_CID_MAX - FC_GUEST_CID_MIN + 1);
	return 0;
}

static int
fc_jail_setup(const struct fc_opts *f, const char *vm_id, struct fc_jail *j)
{
	struct passwd *pw = NULL;
	uint64_t v;

	memset(j, 0, sizeof(*j));
	j->jailer = f->jailer != NULL ? f->jailer : FC_DEFAULT_JAILER;
	j->exec_file = f->firecracker != NULL ? f->firecracker : FC_DEFAULT_FIRECRACKER;
	j->chroot_base = f->chroot_base != NULL ? f->chroot_base : FC_DEFAULT_CHROOT_BASE;
	j->daemonize = false;
	if (f->uid == NULL || f->gid == NULL) {
		pw = getpwnam(FC_DEFAULT_USER);
		if (pw == NULL) {
			log_error("no user %s for the jail: create one, or give --jail-uid and "
			    "--jail-gid", FC_DEFAULT_USER);
			return -ENOENT;
		}
	}
	if (f->uid != NULL) {
		if (parse_u64(f->uid, 1, UINT32_MAX - 1, &v) != 0) {
			log_error("--jail-uid '%s': expected a uid other than 0", f->uid);
			return -EINVAL;
		}
		j->uid = (uid_t)v;
	} else {
		j->uid = pw->pw_uid;
	}
	if (f->gid != NULL) {
		if (parse_u64(f->gid, 1, UINT32_MAX - 1, &v) != 0) {
			log_error("--jail-gid '%s': expected a gid other than 0", f->gid);
			return -EINVAL;
		}
		j->gid = (gid_t)v;
	} else {
		j->gid = pw->pw_gid;
	}
	if (f->cid != NULL) {
		if (parse_u64(f->cid, FC_GUEST_CID_MIN, FC_GUEST_CID_MAX, &v) != 0) {
			log_error("--guest-cid '%s': expected an integer in %u..%u", f->cid,
			    FC_GUEST_CID_MIN, FC_GUEST_CID_MAX);
			return -EINVAL;
		}
		j->guest_cid = (uint32_t)v;
	} else if (derive_cid(vm_id, &j->guest_cid) != 0) {
		return -EIO;
	}
	return 0;
}

/* One argument as a POSIX shell would need it. */
static json_t *
shell_quote(char *const *argv)
{
	static const char safe[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	    "0123456789_./:=@%+,-";
	json_t *line = json_string("");
	size_t i;

	for (i = 0; line != NULL && argv[i] != NULL; i++) {
		const char *a = argv[i];
		char *q = NULL;
		size_t k, n = 0;

		if (a[0] != '\0' && strspn(a, safe) == strlen(a)) {
			q = strdup(a);
		} else if ((q = malloc(4 * strlen(a) + 3)) != NULL) {
			q[n++] = '\'';
			for (k = 0; a[k] != '\0'; k++) {
				if (a[k] == '\'') {
					memcpy(q + n, "'\\''", 4);
					n += 4;
				} else {
					q[n++] = a[k];
				}
			}
			q[n++] = '\'';
			q[n] = '\0';
		}
		if (q == NULL) {
			json_decref(line);
			return NULL;
		}
		{
			json_t *next = json_sprintf("%s%s%s", json_string_value(line),
			    i == 0 ? "" : " ", q);

			json_decref(line);
			line = next;
		}
		free(q);
	}
	return line;
}

/* Run the jailer in the foreground with a clean environment and only
 * standard descriptors, and wait for it. Never run here: Firecracker is
 * not installable on the machines this was written on (docs/vmhost.md). */
static int
run_jailer(char *const *argv)
{
	static char env_path[] = "PATH=/usr/sbin:/usr/bin:/sbin:/bin";
	char *envp[] = { env_path, NULL };
	int status = 0;
	pid_t pid;

	pid = fork();
	if (pid < 0) {
		return -errno;
	}
	if (pid == 0) {
		(void)close_range(3, ~0U, 0);
		execve(argv[0], argv, envp);
		_exit(127);
	}
	while (waitpid(pid, &status, 0) < 0) {
		if (errno != EINTR) {
			return -errno;
		}
	}
	return qemu_exit_code(status);
}

static int
launch_firecracker(const struct launch_opts *o, const struct fc_opts *f, struct launch_ctx *c)
{
	struct fc_jail j;
	char err[512], root[PATH_MAX], cfg[PATH_MAX];
	char **argv = NULL;
	json_t *out = NULL, *jargv = NULL, *line = NULL;
	bool installed;
	int rc = EXIT_FAIL, r, i, listen_fd = -1;

	if (measure_and_verify(o, c) != 0) {
		goto out;
	}
	if (o->pause_file != NULL && pause_until(o->pause_file) != 0) {
		goto out;
	}
	if (fc_jail_setup(f, c->vm_id, &j) != 0) {
		goto out;
	}
	r = fs_ensure_dir(j.chroot_base, 0755);
	if (r != 0) {
		log_error("cannot create the chroot base %s: %s", j.chroot_base, strerror(-r));
		goto out;
	}
	err[0] = '\0';
	if ((r = fc_stage(c->m, c->vm_id, &j, &c->fds, err, sizeof(err))) != 0 ||
	    (r = fc_jailer_argv_new(c->vm_id, &j, &argv, err, sizeof(err))) != 0) {
		log_error("%s", err[0] != '\0' ? err : strerror(-r));
		goto out;
	}
	if (fc_jail_path(c->vm_id, &j, "", root, sizeof(root)) != 0 ||
	    fc_jail_path(c->vm_id, &j, FC_CONFIG_NAME, cfg, sizeof(cfg)) != 0) {
		log_error("the jail path of %s is too long", c->vm_id);
		goto out;
	}
	jargv = json_array();
	line = shell_quote(argv);
	if (jargv == NULL || line == NULL) {
		log_error("out of memory");
		goto out;
	}
	for (i = 0; argv[i] != NULL; i++) {
		(void)json_array_append_new(jargv, json_string(argv[i]));
	}
	out = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:I, s:O, s:O}", "name", c->m->name,
	    "vm_id", c->vm_id, "launch_digest", c->launch_digest, "vmm", "firecracker",
	    "jail", root, "config", cfg, "guest_cid", (json_int_t)j.guest_cid,
	    "jailer_argv", jargv, "command", line);
	if (out == NULL) {
		log_error("out of memory");
		goto out;
	}
	print_json(out);
	log_info("staged the jail of %s in %s; jailer command: %s", c->m->name, root,
	    json_string_value(line));
	if (o->dry_run) {
		log_info("--dry-run: not starting the jailer; the staged jail stays for inspection");
		rc = EXIT_OK;
		goto out;
	}
	installed = access(j.jailer, X_OK) == 0 && access(j.exec_file, X_OK) == 0;
	if (!installed) {
		log_error("firecracker is not installed (%s or %s is missing); the jail and its "
		    "config are staged in %s and the command is printed above", j.jailer,
		    j.exec_file, root);
		goto out;
	}
	/* The guest agent's vsock connections land here; the proxy (next
	 * issue) accepts them. */
	r = fc_agent_listen(c->vm_id, &j, &listen_fd);
	if (r != 0) {
		log_error("cannot listen for the agent in %s: %s", root, strerror(-r));
		goto out;
	}
	log_info("starting the jailer for %s (untested: see docs/vmhost.md)", c->m->name);
	rc = run_jailer(argv);
	if (rc < 0) {
		log_error("cannot run %s: %s", j.jailer, strerror(-rc));
		rc = EXIT_FAIL;
	}
	(void)fc_unstage(c->vm_id, &j);
out:
	if (listen_fd >= 0) {
		(void)close(listen_fd);
	}
	json_decref(out);
	json_decref(jargv);
	json_decref(line);
	fc_argv_free(argv);
	return rc;
}

/* --- commands ------------------------------------------------------------ */

static int
prepare_run_dir(const char *run_dir)
{
	int r;

	if (strcmp(run_dir, VM_RUN_DIR_DEFAULT) == 0) {
		r = fs_ensure_dir(DEFAULT_RUN_PARENT, 0755);
		if (r != 0) {
			log_error("cannot create %s: %s", DEFAULT_RUN_PARENT, strerror(-r));
			return r;
		}
	}
	r = vm_rundir_prepare(run_dir);
	if (r == -EPERM) {
		log_error("%s must be a folder owned by uid %d and not writable by group or "
		    "others", run_dir, (int)geteuid());
	} else if (r != 0) {
		log_error("cannot use the run folder %s: %s", run_dir, strerror(-r));
	}
	return r;
}

static bool
is_file(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* --approver's syntax and files; the approver itself is not contacted
 * before the first gated call. */
static int
check_approver_opts(const struct launch_opts *o)
{
	const char *files[3] = { o->approver_ca, o->approver_cert, o->approver_key };
	size_t i;

	if (o->approver == NULL) {
		if (o->approver_ca != NULL || o->approver_cert != NULL || o->approver_key != NULL ||
		    o->owner != NULL) {
			return usage_error("launch: --approver-ca, --approver-cert, --approver-key and "
			    "--owner go with --approver");
		}
		return EXIT_OK;
	}
	if (o->approval_spool != NULL) {
		return usage_error("launch: give --approval-spool or --approver, not both");
	}
	if (o->owner != NULL && parse_ident(o->owner, TOKEN_ID_MAX) != 0) {
		return usage_error("launch: --owner '%s' is not an account name", o->owner);
	}
	if (o->approver[0] == '/') {
		if (o->approver_ca != NULL || o->approver_cert != NULL || o->approver_key != NULL) {
			return usage_error("launch: --approver-ca, --approver-cert and --approver-key "
			    "are for an https approver, not a socket");
		}
		if (strlen(o->approver) >= sizeof(((struct sockaddr_un *)0)->sun_path)) {
			return usage_error("launch: --approver: the socket path is too long");
		}
		return EXIT_OK;
	}
	if (strncmp(o->approver, "https://", 8) != 0 || o->approver[8] == '\0') {
		return usage_error("launch: --approver '%s': expected the absolute path of the "
		    "approver's API socket or an https:// URL", o->approver);
	}
	if (o->approver_cert == NULL || o->approver_key == NULL) {
		return usage_error("launch: an https --approver needs --approver-cert and "
		    "--approver-key");
	}
	for (i = 0; i < 3; i++) {
		if (files[i] != NULL && !is_file(files[i])) {
			return usage_error("launch: %s is not a file", files[i]);
		}
	}
	return EXIT_OK;
}

static int
cmd_launch(int argc, char **argv)
{
	enum {
		O_ASOCK, O_LSOCK, O_RUNDIR, O_ACCEL, O_QEMU, O_PAUSE, O_FG, O_DRY,
		O_JAILER, O_FC, O_CHROOT, O_UID, O_GID, O_CID, O_SPOOL, O_ATIMEOUT,
		O_APPROVER, O_ACA, O_ACERT, O_AKEY, O_OWNER,
	};
	struct args_opt opts[] = {
		ARGS_OPT("attestd-socket"), ARGS_OPT("launch-socket"),
		ARGS_OPT("run-dir"), ARGS_OPT("accel"),
		ARGS_OPT("qemu"), ARGS_OPT("pause-before-boot"),
		ARGS_FLAG("foreground"), ARGS_FLAG("dry-run"),
		ARGS_OPT("jailer"), ARGS_OPT("firecracker"),
		ARGS_OPT("chroot-base"), ARGS_OPT("jail-uid"),
		ARGS_OPT("jail-gid"), ARGS_OPT("guest-cid"),
		ARGS_OPT("approval-spool"), ARGS_OPT("approval-timeout"),
		ARGS_OPT("approver"), ARGS_OPT("approver-ca"),
		ARGS_OPT("approver-cert"), ARGS_OPT("approver-key"),
		ARGS_OPT("owner"),
		ARGS_END,
	};
	struct fc_opts fo;
	struct launch_ctx c;
	struct launch_opts o;
	struct accel_probe probe = { ACCEL_PROBE_NOT_RUN, 0, 0 };
	struct args a;
	const char *why = "";
	char err[512];
	int rc, r;

	memset(&c, 0, sizeof(c));
	c.fds.kernel = c.fds.initrd = c.fds.rootfs = -1;
	rc = parse_args(argc, argv, opts, &a);
	if (rc != 0) {
		return rc;
	}
	if (a.help) {
		fputs(usage_text, stdout);
		return EXIT_OK;
	}
	if (a.n_pos != 1) {
		return usage_error("launch: give exactly one MANIFEST");
	}
	memset(&o, 0, sizeof(o));
	o.manifest = a.pos[0];
	o.attestd_socket = env_or(opts[O_ASOCK].value, "WARRANT_ATTESTD_SOCKET",
	    DEFAULT_ATTESTD_SOCKET);
	o.launch_socket = env_or(opts[O_LSOCK].value, "WARRANT_LAUNCH_SOCKET",
	    DEFAULT_LAUNCH_SOCKET);
	o.run_dir = opts[O_RUNDIR].value != NULL ? opts[O_RUNDIR].value : VM_RUN_DIR_DEFAULT;
	o.qemu = opts[O_QEMU].value != NULL ? opts[O_QEMU].value : QEMU_DEFAULT_BINARY;
	o.pause_file = opts[O_PAUSE].value;
	o.foreground = opts[O_FG].set;
	o.dry_run = opts[O_DRY].set;
	o.approval_spool = opts[O_SPOOL].value;
	o.approval_timeout_ms = GATE_TIMEOUT_DEFAULT_MS;
	if (opts[O_ATIMEOUT].value != NULL) {
		uint64_t secs;

		if (parse_u64(opts[O_ATIMEOUT].value, 1, APPROVAL_TIMEOUT_MAX, &secs) != 0) {
			return usage_error("launch: --approval-timeout '%s': expected whole seconds in "
			    "1..%d", opts[O_ATIMEOUT].value, APPROVAL_TIMEOUT_MAX);
		}
		o.approval_timeout_ms = (uint32_t)(secs * 1000);
	}
	if (o.approval_spool != NULL && o.approval_spool[0] != '/') {
		return usage_error("launch: --approval-spool must be an absolute path");
	}
	o.approver = opts[O_APPROVER].value;
	o.approver_ca = opts[O_ACA].value;
	o.approver_cert = opts[O_ACERT].value;
	o.approver_key = opts[O_AKEY].value;
	o.owner = opts[O_OWNER].value;
	rc = check_approver_opts(&o);
	if (rc != EXIT_OK) {
		return rc;
	}
	if (opts[O_ACCEL].value != NULL && accel_parse_mode(opts[O_ACCEL].value, &o.accel_mode) != 0) {
		return usage_error("launch: --accel '%s': expected auto, kvm or tcg",
		    opts[O_ACCEL].value);
	}
	if (o.run_dir[0] != '/' || o.qemu[0] != '/') {
		return usage_error("launch: --run-dir and --qemu must be absolute paths");
	}
	fo.jailer = opts[O_JAILER].value;
	fo.firecracker = opts[O_FC].value;
	fo.chroot_base = opts[O_CHROOT].value;
	fo.uid = opts[O_UID].value;
	fo.gid = opts[O_GID].value;
	fo.cid = opts[O_CID].value;
	if ((fo.jailer != NULL && fo.jailer[0] != '/') ||
	    (fo.firecracker != NULL && fo.firecracker[0] != '/') ||
	    (fo.chroot_base != NULL && fo.chroot_base[0] != '/')) {
		return usage_error("launch: --jailer, --firecracker and --chroot-base must be "
		    "absolute paths");
	}

	r = manifest_load(o.manifest, &c.m, err, sizeof(err));
	if (r != 0) {
		log_error("%s", err);
		return EXIT_FAIL;
	}
	if (c.m->vmm == MANIFEST_VMM_FIRECRACKER) {
		if (opts[O_ACCEL].set || opts[O_QEMU].set || opts[O_FG].set || opts[O_RUNDIR].set ||
		    opts[O_SPOOL].set || opts[O_ATIMEOUT].set || opts[O_APPROVER].set ||
		    opts[O_OWNER].set) {
			rc = usage_error("launch: --accel, --qemu, --foreground, --run-dir, "
			    "--approval-spool, --approver, --owner and --approval-timeout are for vmm "
			    "\"qemu\"; %s is for \"firecracker\"", o.manifest);
			goto out;
		}
		rc = launch_firecracker(&o, &fo, &c);
		goto out;
	}
	if (o.dry_run || opts[O_JAILER].set || opts[O_FC].set || opts[O_CHROOT].set ||
	    opts[O_UID].set || opts[O_GID].set || opts[O_CID].set) {
		rc = usage_error("launch: --dry-run, --jailer, --firecracker, --chroot-base, "
		    "--jail-uid, --jail-gid and --guest-cid are for vmm \"firecracker\"; %s is for "
		    "\"qemu\"", o.manifest);
		goto out;
	}

	if (o.accel_mode == ACCEL_MODE_AUTO) {
		(void)accel_probe_kvm(ACCEL_KVM_DEVICE, ACCEL_PROBE_TIMEOUT_MS, &probe);
	}
	if (accel_decide(o.accel_mode, &probe, &c.accel, &why) != 0) {
		rc = EXIT_FAIL;
		goto out;
	}
	if (o.accel_mode == ACCEL_MODE_AUTO) {
		log_info("accelerator: %s, because %s (KVM probe: %u ms, deadline %d ms)",
		    accel_name(c.accel), why, probe.elapsed_ms, ACCEL_PROBE_TIMEOUT_MS);
	} else {
		log_info("accelerator: %s, %s", accel_name(c.accel), why);
	}

	rc = EXIT_FAIL;
	if (prepare_run_dir(o.run_dir) != 0) {
		goto out;
	}
	r = vm_run_acquire(o.run_dir, c.m->name, &c.run);
	if (r == -EBUSY) {
		log_error("a VM named %s is already running (see 'vmhost list'); not launching",
		    c.m->name);
		goto out;
	}
	if (r != 0) {
		log_error("cannot take the name %s in %s: %s", c.m->name, o.run_dir, strerror(-r));
		goto out;
	}
	if (proxy_preflight(&o, &c) != 0) {
		goto out;
	}
	if (measure_and_verify(&o, &c) != 0) {
		goto out;
	}
	if (o.pause_file != NULL && pause_until(o.pause_file) != 0) {
		goto out;
	}
	if (o.foreground) {
		rc = run_qemu(&o, &c, STDOUT_FILENO, true, -1);
	} else {
		rc = launch_background(&o, &c);
		/* The supervisor holds the name now: keep its state. */
		launch_ctx_clear(&c, false);
	}
out:
	launch_ctx_clear(&c, true);
	return rc;
}

static int
cmd_list(int argc, char **argv)
{
	struct args_opt opts[] = { ARGS_OPT("run-dir"), ARGS_END };
	struct args a;
	json_t *list = NULL;
	const char *run_dir;
	int rc, r;

	rc = parse_args(argc, argv, opts, &a);
	if (rc != 0) {
		return rc;
	}
	if (a.help) {
		fputs(usage_text, stdout);
		return EXIT_OK;
	}
	if (a.n_pos != 0) {
		return usage_error("list: unexpected argument '%s'", a.pos[0]);
	}
	run_dir = opts[0].value != NULL ? opts[0].value : VM_RUN_DIR_DEFAULT;
	r = vm_list(run_dir, &list);
	if (r != 0) {
		log_error("cannot list %s: %s", run_dir, strerror(-r));
		return EXIT_FAIL;
	}
	print_json(list);
	json_decref(list);
	return EXIT_OK;
}

static int
cmd_stop(int argc, char **argv)
{
	struct args_opt opts[] = { ARGS_OPT("run-dir"), ARGS_END };
	struct args a;
	const char *run_dir, *name;
	bool forced = false;
	json_t *j;
	int rc, r;

	rc = parse_args(argc, argv, opts, &a);
	if (rc != 0) {
		return rc;
	}
	if (a.help) {
		fputs(usage_text, stdout);
		return EXIT_OK;
	}
	if (a.n_pos != 1) {
		return usage_error("stop: give exactly one NAME");
	}
	name = a.pos[0];
	if (vm_name_check(name) != 0) {
		return usage_error("stop: '%s' is not a VM name (1..%d of [A-Za-z0-9._:-], starting "
		    "with a letter or digit)", name, MANIFEST_NAME_MAX);
	}
	run_dir = opts[0].value != NULL ? opts[0].value : VM_RUN_DIR_DEFAULT;
	r = vm_stop(run_dir, name, VM_STOP_WAIT_MS, &forced);
	switch (r) {
	case 0: {
		break;
	}
	case -ENOENT: {
		log_error("no VM named %s in %s", name, run_dir);
		return EXIT_FAIL;
	}
	case -ESRCH: {
		log_error("%s was not running; removed its stale run state", name);
		return EXIT_FAIL;
	}
	case -EBUSY: {
		log_error("%s is still being launched; try again", name);
		return EXIT_FAIL;
	}
	default: {
		log_error("cannot stop %s: %s", name, strerror(-r));
		return EXIT_FAIL;
	}
	}
	j = json_pack("{s:s, s:b, s:b}", "name", name, "stopped", 1, "forced", forced ? 1 : 0);
	if (j != NULL) {
		print_json(j);
		json_decref(j);
	}
	return EXIT_OK;
}

/* The JSON of arg, or of stdin for "-": at most FRAME_MAX bytes, one
 * strict object. */
static int
narrow_read(const char *arg, json_t **ret)
{
	char *buf = NULL;
	size_t len = 0;
	json_t *j = NULL;
	int r;

	if (strcmp(arg, "-") != 0) {
		r = cjson_parse(arg, strlen(arg), FRAME_MAX, &j);
		goto out;
	}
	buf = malloc(FRAME_MAX + 1);
	if (buf == NULL) {
		r = -ENOMEM;
		goto out;
	}
	for (;;) {
		ssize_t n = read(STDIN_FILENO, buf + len, FRAME_MAX + 1 - len);

		if (n < 0 && errno == EINTR) {
			continue;
		}
		if (n < 0) {
			r = -errno;
			goto out;
		}
		if (n == 0) {
			break;
		}
		len += (size_t)n;
		if (len > FRAME_MAX) {
			r = -EMSGSIZE;
			goto out;
		}
	}
	r = cjson_parse(buf, len, FRAME_MAX, &j);
out:
	free(buf);
	if (r == 0 && !json_is_object(j)) {
		r = -EINVAL;
	}
	if (r == 0) {
		*ret = j;
		j = NULL;
	}
	json_decref(j);
	return r;
}

static int
cmd_narrow(int argc, char **argv)
{
	struct args_opt opts[] = { ARGS_OPT("run-dir"), ARGS_END };
	struct timeval tv = { 10, 0 };
	char path[PATH_MAX];
	const char *run_dir, *name;
	json_t *env = NULL, *req = NULL, *reply = NULL;
	struct args a;
	int fd = -1, rc, r, n;

	rc = parse_args(argc, argv, opts, &a);
	if (rc != 0) {
		return rc;
	}
	if (a.help) {
		fputs(usage_text, stdout);
		return EXIT_OK;
	}
	if (a.n_pos != 2) {
		return usage_error("narrow: give NAME and ENVELOPE_JSON (or - for stdin)");
	}
	name = a.pos[0];
	if (vm_name_check(name) != 0) {
		return usage_error("narrow: '%s' is not a VM name (1..%d of [A-Za-z0-9._:-], "
		    "starting with a letter or digit)", name, MANIFEST_NAME_MAX);
	}
	r = narrow_read(a.pos[1], &env);
	if (r != 0) {
		return usage_error("narrow: the envelope is not one JSON object of at most %d bytes",
		    FRAME_MAX);
	}
	rc = EXIT_USAGE;
	run_dir = opts[0].value != NULL ? opts[0].value : VM_RUN_DIR_DEFAULT;
	n = snprintf(path, sizeof(path), "%s/%s/%s", run_dir, name, PROXY_CONTROL_NAME);
	if (n < 0 || (size_t)n >= sizeof(path)) {
		log_error("narrow: the run folder's path is too long");
		goto out;
	}
	req = json_pack("{s:s, s:O}", "op", "narrow", "envelope", env);
	if (req == NULL) {
		log_error("out of memory");
		goto out;
	}
	r = proxy_connect(path, 1000, &fd);
	if (r != 0) {
		log_error("narrow: cannot reach the tool proxy of %s at %s: %s", name, path,
		    strerror(-r));
		goto out;
	}
	if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) != 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) != 0) {
		log_error("narrow: %s", strerror(errno));
		goto out;
	}
	r = frame_write(fd, req);
	if (r == 0) {
		r = frame_read(fd, FRAME_MAX, &reply);
	}
	if (r != 0 || !json_is_object(reply)) {
		log_error("narrow: no reply from the tool proxy of %s: %s", name,
		    strerror(r != 0 ? -r : EPROTO));
		goto out;
	}
	print_json(reply);
	rc = json_is_true(json_object_get(reply, "ok")) ? EXIT_OK : EXIT_FAIL;
out:
	if (fd >= 0) {
		(void)close(fd);
	}
	json_decref(reply);
	json_decref(req);
	json_decref(env);
	return rc;
}

static int
cmd_audit(int argc, char **argv)
{
	struct args_opt opts[] = { ARGS_END };
	uint64_t records = 0, bad = 0;
	const char *reason = NULL;
	struct args a;
	json_t *j;
	int rc, r;

	if (argc < 1 || strcmp(argv[0], "verify") != 0) {
		return usage_error("audit: the only subcommand is 'verify FILE'");
	}
	rc = parse_args(argc - 1, argv + 1, opts, &a);
	if (rc != 0) {
		return rc;
	}
	if (a.help) {
		fputs(usage_text, stdout);
		return EXIT_OK;
	}
	if (a.n_pos != 1) {
		return usage_error("audit verify: give exactly one FILE");
	}
	r = audit_verify(a.pos[0], &records, &bad, &reason);
	if (r == 0) {
		j = json_pack("{s:b, s:I}", "valid", 1, "records", (json_int_t)records);
		rc = EXIT_OK;
	} else if (r == -ENOENT || r == -EACCES || r == -ELOOP || r == -EISDIR) {
		log_error("cannot read %s: %s", a.pos[0], strerror(-r));
		return EXIT_FAIL;
	} else {
		/* line: 1-based, as an editor shows it. */
		j = json_pack("{s:b, s:I, s:s}", "valid", 0, "line", (json_int_t)(bad + 1), "reason",
		    reason != NULL ? reason : strerror(-r));
		rc = EXIT_FAIL;
	}
	if (j == NULL) {
		log_error("out of memory");
		return EXIT_FAIL;
	}
	print_json(j);
	json_decref(j);
	return rc;
}

int
main(int argc, char **argv)
{
	const char *cmd;

	log_init("vmhost", LOG_INFO);
	if (ensure_std_fds() != 0) {
		return EXIT_FAIL;
	}
	/* A closed stdout must be an error to handle, not a silent death. */
	(void)signal(SIGPIPE, SIG_IGN);
	if (argc < 2) {
		return usage_error("missing command");
	}
	cmd = argv[1];
	if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
		fputs(usage_text, stdout);
		return EXIT_OK;
	}
	if (strcmp(cmd, "launch") == 0) {
		return cmd_launch(argc - 2, argv + 2);
	}
	if (strcmp(cmd, "list") == 0) {
		return cmd_list(argc - 2, argv + 2);
	}
	if (strcmp(cmd, "stop") == 0) {
		return cmd_stop(argc - 2, argv + 2);
	}
	if (strcmp(cmd, "narrow") == 0) {
		return cmd_narrow(argc - 2, argv + 2);
	}
	if (strcmp(cmd, "audit") == 0) {
		return cmd_audit(argc - 2, argv + 2);
	}
	return usage_error("unknown command '%s'", cmd);
}
