/* launchlog: the launch event log of the TPM's current boot
 * (docs/event-log.md), the launch PCR it is extended into, and the
 * registry of measured VMs that minting checks against.
 *
 * The log is event_log_dir/launch-<resetCount>.jsonl: a TPM reset (a
 * reboot) sets the launch PCR back to zero and starts a new file. Records
 * are appended and fsynced before they are extended, so the PCR is always
 * the replay of a prefix of the log; at start, and whenever the file or
 * the PCR changes, the log is replayed and compared with the PCR:
 *   equal                       ok
 *   equal to a prefix's replay  the missing records are extended (attestd
 *                               stopped between fsync and extend): ok
 *   anything else               inconsistent: measuring is refused until
 *                               the log and the PCR agree again
 * The registry is rebuilt from the replay, so VMs measured before a
 * restart of attestd are still known.
 *
 * Single-threaded, like the keyring it uses for every TPM command. */
#ifndef WARRANT_ATTESTD_LAUNCHLOG_H
#define WARRANT_ATTESTD_LAUNCHLOG_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "keyring.h"
#include "token.h"

#define LAUNCHLOG_DETAIL_MAX 256
#define LAUNCHLOG_VM_ID_LEN  19          /* "vm-" and 16 hex characters */

enum launchlog_state {
	LAUNCHLOG_UNVERIFIED = 0,   /* not compared with the TPM yet (unreachable) */
	LAUNCHLOG_OK,
	LAUNCHLOG_INCONSISTENT,     /* log and PCR disagree: measuring refused */
};

/* One measured artifact, in launch order (kernel, initrd, rootfs). */
struct launchlog_artifact {
	const char *kind;
	uint8_t sha256[32];
	uint64_t size;
};

struct launchlog;

/* dir is created (0750) when the log is first opened; kr must outlive the
 * launchlog. Touches nothing yet: launchlog_check does. */
int launchlog_new(const char *dir, unsigned pcr, struct keyring *kr, struct launchlog **ret);
void launchlog_free(struct launchlog *l);

/* At start and on every health check: open the log of the TPM's current
 * boot, replay it and compare it with the PCR when that has not been done,
 * when the file changed on disk, when the PCR moved, or after a TPM reset.
 * Logs each change of state once. */
void launchlog_check(struct launchlog *l);

enum launchlog_state launchlog_state(const struct launchlog *l, const char **ret_detail);
const char *launchlog_state_name(enum launchlog_state s);
unsigned launchlog_pcr(const struct launchlog *l);
size_t launchlog_vm_count(const struct launchlog *l);
uint64_t launchlog_records(const struct launchlog *l);

/* Record one launch: a fresh VM id, the records kernel, initrd, [rootfs],
 * cmdline and config appended and fsynced in one write, then extended one
 * by one; the VM is registered. On success ret_vm, ret_digest (the launch
 * digest) and *ret_events (the records as JSON objects) are written.
 * -EAGAIN when the state is not ok or an extend failed (the next check
 * finishes it), -ENOSPC when the log would pass EVENTLOG_MAX_BYTES, -EIO
 * when the write or fsync failed (the state becomes inconsistent unless
 * the file could be cut back). detail (may be NULL) says what. */
int launchlog_record(struct launchlog *l, const struct launchlog_artifact *arts, size_t n,
    const json_t *config, char ret_vm[LAUNCHLOG_VM_ID_LEN + 1], uint8_t ret_digest[32],
    json_t **ret_events, char *detail, size_t detail_len);

/* A registered VM's launch digest and canonical config (borrowed; valid
 * until the next launchlog_check or launchlog_record). -ENOENT if attestd
 * did not measure vm since the TPM's last reset. */
int launchlog_lookup(const struct launchlog *l, const char *vm, uint8_t ret_digest[32],
    const json_t **ret_config);

/* The whole current log, for quotes (free() it). -EAGAIN if no log is
 * open. */
int launchlog_text(struct launchlog *l, char **ret, size_t *ret_len);

#endif
