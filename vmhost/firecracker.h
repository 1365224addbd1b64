/* firecracker: the Firecracker backend (docs/firecracker.md). Builds the
 * file Firecracker reads with `--no-api --config-file`, the jailer's
 * argument vector, and stages the jail: the measured bytes, copied from
 * the sealed memfds into root-owned read-only files inside the chroot.
 * Firecracker cannot take descriptors, so the copy is the one place the
 * measured bytes become files again; only root can change them there.
 *
 * Jail layout (CHROOT_BASE/<exec file name>/<VM id>/root, as the jailer
 * derives it; the VM id is the jailer's --id):
 *
 *   root/          0755 root:root
 *     kernel       0444 root:root   copied from the sealed kernel memfd
 *     initrd       0444 root:root   copied from the sealed initrd memfd
 *     rootfs       0444 root:root   only when the manifest has one
 *     config.json  0444 root:root   fc_config_new's output
 *     rw/          0700 uid:gid     the only folder Firecracker may write:
 *       agent      the vsock socket Firecracker creates (FC_UDS_PATH)
 *       agent_52   where the host listens for the guest's connections
 *                  to vsock port FC_AGENT_VSOCK_PORT
 *
 * Firecracker was not run on the machines this was written on (it is not
 * installable there): every config is validated against Firecracker's API
 * schema instead (tests/firecracker/validate.py). No logging here; errors
 * come back as a negative errno and a one-line reason in err. */
#ifndef WARRANT_FIRECRACKER_H
#define WARRANT_FIRECRACKER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "launch.h"
#include "manifest.h"

#define FC_ID_MAX             64          /* the jailer's --id limit */
/* Firecracker's x86_64 command line holds 2048 bytes and it appends a
 * virtio_mmio.device= entry per device to ours: keep room for them. */
#define FC_BOOT_ARGS_MAX      1792
#define FC_GUEST_CID_MIN      3           /* 0..2 are reserved */
#define FC_GUEST_CID_MAX      0xfffffffeU /* 0xffffffff is VMADDR_CID_ANY */

/* Names inside the jail's root, and the same paths as Firecracker sees
 * them after chroot (what the config file and its argv say). */
#define FC_KERNEL_NAME        "kernel"
#define FC_INITRD_NAME        "initrd"
#define FC_ROOTFS_NAME        "rootfs"
#define FC_CONFIG_NAME        "config.json"
#define FC_RW_DIR             "rw"
#define FC_AGENT_NAME         "rw/agent"
#define FC_CONFIG_PATH        "/" FC_CONFIG_NAME
#define FC_UDS_PATH           "/" FC_AGENT_NAME
#define FC_AGENT_VSOCK_PORT   52
#define FC_AGENT_LISTEN_NAME  "rw/agent_52"  /* FC_AGENT_NAME "_" port */

struct fc_jail {
	const char *jailer;        /* absolute path of the jailer (argv[0]) */
	const char *exec_file;     /* absolute path of firecracker; its file
	                            * name must contain "firecracker" */
	const char *chroot_base;   /* absolute, without ".." components */
	uid_t uid;                 /* Firecracker runs as these: never 0 */
	gid_t gid;
	uint32_t guest_cid;        /* the guest's vsock CID, unique on the host */
	bool daemonize;            /* pass --daemonize to the jailer */
};

/* Firecracker's config file (JSON, NUL-terminated, free()) for manifest m
 * booting as VM vm_id in jail j: boot-source, drives (the rootfs
 * read-only, when fds->rootfs >= 0), machine-config, vsock; no network.
 * m->vmm must be firecracker (the VMM is part of what was measured), the
 * rootfs descriptor must match the manifest, and a workspace is refused:
 * Firecracker has no shared folders. -EINVAL, -ENAMETOOLONG, -E2BIG or
 * -EOPNOTSUPP with a reason in err. */
int fc_config_new(const struct manifest *m, const char *vm_id, const struct fc_jail *j,
    const struct launch_fds *fds, char **ret, char *err, size_t errlen);

/* The jailer's argument vector, NULL-terminated:
 *   JAILER --id VM_ID --exec-file EXEC --uid U --gid G
 *          --chroot-base-dir BASE [--daemonize]
 *          -- --no-api --config-file /config.json
 * Free with fc_argv_free. */
int fc_jailer_argv_new(const char *vm_id, const struct fc_jail *j, char ***ret, char *err,
    size_t errlen);
void fc_argv_free(char **argv);

/* Host path of leaf inside the jail's root (leaf "" for the root itself).
 * -ENAMETOOLONG if it does not fit len. */
int fc_jail_path(const char *vm_id, const struct fc_jail *j, const char *leaf, char *buf,
    size_t len);

/* Stage the jail for VM vm_id: create CHROOT_BASE/<exec name>/<vm_id>/root
 * (the VM id folder must not exist yet: -EEXIST), copy each artifact from
 * its sealed memfd in fds (artifact_check_sealed first; never from a
 * path) into the layout above, write the config file. Needs root: the
 * files are chowned to root and rw/ to the jail's uid and gid. On failure
 * nothing of the VM id folder is left behind. */
int fc_stage(const struct manifest *m, const char *vm_id, const struct fc_jail *j,
    const struct launch_fds *fds, char *err, size_t errlen);

/* After fc_stage, before the jailer: create, listen on and return (in
 * *ret_fd, close-on-exec) the socket where Firecracker delivers the
 * guest's connections to vsock port FC_AGENT_VSOCK_PORT, rw/agent_52 in the
 * jail, owned by the jail's uid and gid (0600) so Firecracker may connect.
 * It is bound through an O_PATH descriptor of rw/, so a jail path longer
 * than sockaddr_un's 107 bytes is fine. */
int fc_agent_listen(const char *vm_id, const struct fc_jail *j, int *ret_fd);

/* Remove CHROOT_BASE/<exec name>/<vm_id> and everything below it, after
 * the VM has stopped. Never follows a symbolic link and never descends
 * into another file system (-EBUSY). -ENOENT if there is no such jail. */
int fc_unstage(const char *vm_id, const struct fc_jail *j);

#endif
