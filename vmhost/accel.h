/* accel: choose QEMU's accelerator. /dev/kvm existing is not enough: on
 * nested hosts KVM opens, creates VMs and then never runs a guest. So the
 * probe runs a real, tiny guest (real mode, a few instructions, an OUT and a
 * HLT) in a child process with a deadline, and only a guest that reports
 * the right value and halts in time makes us use KVM. The probe never
 * waits longer than its deadline plus a short reap. */
#ifndef WARRANT_ACCEL_H
#define WARRANT_ACCEL_H

#include <stdint.h>

#define ACCEL_KVM_DEVICE       "/dev/kvm"
#define ACCEL_PROBE_TIMEOUT_MS 2000

enum accel_kind {
	ACCEL_TCG = 1,
	ACCEL_KVM,
};

enum accel_mode {
	ACCEL_MODE_AUTO = 0,
	ACCEL_MODE_KVM,
	ACCEL_MODE_TCG,
};

/* What the probe saw. Every value but ACCEL_PROBE_OK means "do not use
 * KVM"; they exist so the log line can say why. */
enum accel_probe_status {
	ACCEL_PROBE_OK = 0,          /* the test guest ran and halted */
	ACCEL_PROBE_NOT_RUN,         /* no probe was made (forced mode) */
	ACCEL_PROBE_NO_DEVICE,       /* no /dev/kvm */
	ACCEL_PROBE_NO_ACCESS,       /* /dev/kvm not openable (permissions) */
	ACCEL_PROBE_BAD_API,         /* KVM_GET_API_VERSION is not 12 */
	ACCEL_PROBE_NO_VM,           /* KVM_CREATE_VM failed */
	ACCEL_PROBE_SETUP_FAILED,    /* memory, vCPU or register setup failed */
	ACCEL_PROBE_RUN_FAILED,      /* KVM_RUN returned an error */
	ACCEL_PROBE_WRONG_EXIT,      /* the guest exited for another reason, or
	                              * reported a wrong value */
	ACCEL_PROBE_TIMEOUT,         /* the guest did not halt before the deadline */
	ACCEL_PROBE_ERROR,           /* the probe itself could not run (fork, pipe) */
};

struct accel_probe {
	enum accel_probe_status status;
	int err;                     /* errno of the failing step, or 0 */
	uint32_t elapsed_ms;         /* how long the probe took */
};

/* "auto", "kvm" or "tcg". -EINVAL otherwise. */
int accel_parse_mode(const char *s, enum accel_mode *ret);
const char *accel_name(enum accel_kind k);
const char *accel_probe_describe(enum accel_probe_status s);

/* Run the probe on device (ACCEL_KVM_DEVICE normally) with a deadline of
 * timeout_ms (1..60000). Always fills *ret and returns 0, except -EINVAL
 * for bad arguments: a failed probe is a result, not an error. */
int accel_probe_kvm(const char *device, uint32_t timeout_ms, struct accel_probe *ret);

/* The decision: a forced mode wins; auto uses KVM only after a successful
 * probe. *ret_why is a static phrase for the log line. */
int accel_decide(enum accel_mode mode, const struct accel_probe *probe, enum accel_kind *ret,
    const char **ret_why);

#endif
