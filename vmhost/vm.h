/* vm: the run state of launched VMs, for `vmhost list` and `vmhost stop`.
 *
 *   RUNDIR/                 0700, owned by vmhost's uid
 *     NAME/                 0700, one per VM name
 *       lock                flock(2)ed by the supervising vmhost for its life
 *       vm.json             the state below (written first)
 *       pid                 the supervising vmhost's pid (written second)
 *       agent.sock          QEMU's end of the agent port
 *       console.log         the guest console (background launches)
 *       vmhost.log          the supervisor's log and QEMU's stderr
 *
 * A name is running while its lock is held. list and stop trust a pid only
 * if the process is alive, has the recorded start time and runs as our
 * uid, so a recycled pid is never signalled. Everything read back is
 * parsed strictly: these files are ours, but a parser that trusts its
 * input is a bug waiting for a disk error. */
#ifndef WARRANT_VM_H
#define WARRANT_VM_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "manifest.h"

#define VM_RUN_DIR_DEFAULT  "/run/warrant/vmhost"
#define VM_STATE_MAX        4096
#define VM_PID_MAX          4194304     /* the kernel's PID_MAX_LIMIT */
#define VM_ID_MAX           64
#define VM_STOP_WAIT_MS     15000       /* longer than QEMU's stop grace */

struct vm_state {
	char name[MANIFEST_NAME_MAX + 1];
	char vm_id[VM_ID_MAX + 1];
	char launch_digest[65];
	char vmm[16];                   /* "qemu" */
	char accel[8];                  /* "kvm" or "tcg" */
	int64_t started;                /* unix seconds */
	pid_t pid;                      /* the supervising vmhost */
	uint64_t pid_start;             /* its start time, /proc/PID/stat field 22 */
	pid_t vmm_pid;                  /* QEMU */
	uint64_t vmm_start;
	bool foreground;
};

struct vm_run;   /* a held name: its folder and lock */

/* 1..MANIFEST_NAME_MAX of [A-Za-z0-9._:-] starting with a letter or digit:
 * never '/', never "." or "..". */
int vm_name_check(const char *name);

/* Strict parsers (adversarial input): vm.json, the pid file, and the
 * kernel's /proc/PID/stat line (comm may hold spaces and parentheses). */
int vm_state_parse(const char *buf, size_t len, struct vm_state *ret);
int vm_state_format(const struct vm_state *s, char **ret, size_t *ret_len);
json_t *vm_state_to_json(const struct vm_state *s);
int vm_pid_parse(const char *buf, size_t len, pid_t *ret);
int vm_proc_stat_parse(const char *buf, size_t len, char *ret_state, uint64_t *ret_start);

/* The start time of pid, from /proc. -ESRCH if it does not exist or is a
 * zombie. */
int vm_proc_start(pid_t pid, uint64_t *ret_start);
/* True if pid is alive (not a zombie), started at start and runs as our
 * uid. */
bool vm_pid_is(pid_t pid, uint64_t start);

/* Create rundir (0700) if needed, and refuse one that is a symlink, not
 * ours, or writable by group or others (-EPERM). */
int vm_rundir_prepare(const char *rundir);

/* Take NAME: create RUNDIR/NAME (0700) and lock it. -EBUSY if another
 * vmhost holds it (the VM is running). Stale files of a dead launch
 * (pid, vm.json, agent.sock) are removed. */
int vm_run_acquire(const char *rundir, const char *name, struct vm_run **ret);
/* RUNDIR/NAME/leaf into buf. */
int vm_run_path(const struct vm_run *r, const char *leaf, char *buf, size_t len);
/* Write vm.json, then pid. */
int vm_run_publish(struct vm_run *r, const struct vm_state *s);
/* Drop the name. remove_state: delete lock, pid, vm.json and agent.sock
 * (logs stay for inspection) and the folder if it is then empty. Without
 * it, only this process's reference is closed (the parent of a daemon). */
void vm_run_free(struct vm_run *r, bool remove_state);

/* Read and cross-check RUNDIR/NAME/vm.json and pid (does not check that
 * the pid is alive). */
int vm_state_read(const char *rundir, const char *name, struct vm_state *ret);

/* A JSON array of running VMs (state plus paths), sorted by name; stale
 * and unreadable entries are left out. A missing rundir is an empty list. */
int vm_list(const char *rundir, json_t **ret);

/* Stop NAME: SIGTERM to its supervisor (which stops QEMU), wait up to
 * wait_ms, then SIGKILL; make sure QEMU is gone; remove the run state.
 * *ret_forced: SIGKILL was needed. -ENOENT if there is no such VM,
 * -ESRCH if it was not running (its stale state is removed), -EBUSY if it
 * is still being launched (held, but no state written yet). */
int vm_stop(const char *rundir, const char *name, uint32_t wait_ms, bool *ret_forced);

#endif
