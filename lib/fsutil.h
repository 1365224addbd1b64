/* fsutil: careful file I/O. Every open is O_CLOEXEC and O_NOFOLLOW. */
#ifndef WARRANT_FSUTIL_H
#define WARRANT_FSUTIL_H

#include <stddef.h>
#include <sys/types.h>

/* Read a regular file of at most cap bytes. The buffer is NUL-terminated
 * (not counted in *ret_len) and must be freed by the caller.
 * -EFBIG past cap, -ELOOP for a symlink, -EINVAL if not a regular file. */
int fs_read_file(const char *path, size_t cap, char **ret, size_t *ret_len);

/* Replace path atomically and durably: write a temporary file in the same
 * folder with the given mode, fsync it, rename it over path, fsync the
 * folder. A crash leaves either the old or the new file, never a mix. */
int fs_write_file_atomic(const char *path, const void *data, size_t len, mode_t mode);

/* Create path if it does not exist, reject it unless it is a real
 * directory (not a symlink). */
int fs_ensure_dir(const char *path, mode_t mode);

#endif
