/* manifest: the launch manifest (docs/manifest.md), parsed strictly.
 * Paths are resolved against the manifest's folder; artifacts are opened
 * later, by artifact_seal, never by path again after measurement. */
#ifndef WARRANT_MANIFEST_H
#define WARRANT_MANIFEST_H

#include <jansson.h>
#include <limits.h>
#include <stdint.h>

#define MANIFEST_MAX_BYTES    (64 * 1024)
#define MANIFEST_NAME_MAX     64
#define MANIFEST_CMDLINE_MAX  2048
#define MANIFEST_KERNEL_MAX   ((uint64_t)256 << 20)
#define MANIFEST_INITRD_MAX   ((uint64_t)1 << 30)
#define MANIFEST_ROOTFS_MAX   ((uint64_t)16 << 30)

enum manifest_vmm {
	MANIFEST_VMM_QEMU = 1,
	MANIFEST_VMM_FIRECRACKER,
};

struct manifest {
	char name[MANIFEST_NAME_MAX + 1];
	char kernel[PATH_MAX];          /* absolute, resolved */
	char initrd[PATH_MAX];
	char rootfs[PATH_MAX];          /* "" when absent */
	char workspace[PATH_MAX];       /* "" when absent */
	char cmdline[MANIFEST_CMDLINE_MAX + 1];
	unsigned vcpus;                 /* 1..32 */
	unsigned memory_mib;            /* 64..65536 */
	enum manifest_vmm vmm;
	json_t *envelope;               /* object; owned */
};

/* Parse the manifest at path. On failure returns a negative errno and
 * writes a one-line reason naming the field into err. */
int manifest_load(const char *path, struct manifest **ret, char *err, size_t errlen);
int manifest_parse(const char *buf, size_t len, const char *base_dir, struct manifest **ret,
    char *err, size_t errlen);
void manifest_free(struct manifest *m);

/* The canonical configuration that is measured with the artifacts: every
 * field but the artifact paths (their bytes are measured instead). */
json_t *manifest_config(const struct manifest *m);

/* Check a config as manifest_config makes it, received from elsewhere
 * (attestd's launch socket): the same rules as the manifest's fields, a
 * workspace that is an absolute normalised path, nothing else. Touches no
 * file. On failure a negative errno and a line naming the field in err. */
int manifest_check_config(const json_t *config, char *err, size_t errlen);

enum manifest_level {
	MANIFEST_LEVEL_NEVER = 0,
	MANIFEST_LEVEL_ASK,
	MANIFEST_LEVEL_ALLOW,
};

/* What a checked envelope grants op: NEVER when op is absent. */
enum manifest_level manifest_envelope_level(const json_t *envelope, const char *op);

#endif
