/* artifact: make a boot artifact's bytes immutable before measurement.
 * The file is opened without following symlinks, copied in the kernel into
 * a memfd, and the memfd sealed against writes, growth and shrinking; the
 * measurement, the launch and the VMM all use that memfd, so changing the
 * file on disk afterwards changes nothing (docs/architecture.md). */
#ifndef WARRANT_ARTIFACT_H
#define WARRANT_ARTIFACT_H

#include <stdint.h>

#define ARTIFACT_SEALS_REQUIRED_DESC "F_SEAL_SEAL|F_SEAL_WRITE|F_SEAL_GROW|F_SEAL_SHRINK"

/* -EFBIG over max_size, -ELOOP for a symlink, -EINVAL if not a regular file. */
int artifact_seal(const char *path, const char *label, uint64_t max_size, int *ret_fd,
    uint64_t *ret_size);

/* Check that fd is a memfd carrying every seal artifact_seal sets; what a
 * receiver of a descriptor (attestd) checks before hashing. */
int artifact_check_sealed(int fd, uint64_t max_size, uint64_t *ret_size);

/* Streaming SHA-256 of the whole descriptor from offset 0 (pread). */
int artifact_sha256(int fd, uint8_t ret[32]);

#endif
