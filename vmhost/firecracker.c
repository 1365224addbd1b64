/* firecracker: config file, jailer argv and jail staging for the
 * Firecracker backend. See firecracker.h for the jail layout and
 * docs/firecracker.md for what was and was not checked. */
#include "firecracker.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/stat.h>
#include <unistd.h>

#include "artifact.h"

#define FC_COPY_CHUNK   ((size_t)1 << 30)
#define FC_COPY_BUF     ((size_t)1 << 20)
#define FC_RM_DEPTH     8       /* the jailer's tree is root/dev/net/tun deep */

static int
fail(char *err, size_t errlen, int r, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int
fail(char *err, size_t errlen, int r, const char *fmt, ...)
{
	va_list ap;

	if (err != NULL && errlen > 0) {
		va_start(ap, fmt);
		(void)vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return r;
}

static bool
is_id_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	    c == '-';
}

/* The jailer's rule for --id: 1..64 letters, digits and hyphens. */
static int
check_vm_id(const char *id, char *err, size_t errlen)
{
	size_t n;

	if (id == NULL) {
		return fail(err, errlen, -EINVAL, "firecracker: no VM id");
	}
	n = strnlen(id, FC_ID_MAX + 1);
	if (n == 0 || n > FC_ID_MAX) {
		return fail(err, errlen, -EINVAL,
		    "firecracker: VM id must be 1..%d characters for the jailer", FC_ID_MAX);
	}
	for (size_t i = 0; i < n; i++) {
		if (!is_id_char(id[i])) {
			return fail(err, errlen, -EINVAL,
			    "firecracker: VM id character %zu is not a letter, digit or '-'", i + 1);
		}
	}
	return 0;
}

/* An absolute path without "..", "." or empty components, so that what
 * it names does not depend on how it is read. */
static int
check_abs_path(const char *what, const char *p, char *err, size_t errlen)
{
	const char *c;

	if (p == NULL || p[0] != '/') {
		return fail(err, errlen, -EINVAL, "firecracker: %s must be an absolute path", what);
	}
	if (strnlen(p, PATH_MAX) >= PATH_MAX) {
		return fail(err, errlen, -ENAMETOOLONG, "firecracker: %s is too long", what);
	}
	for (c = p; *c != '\0';) {
		size_t n;

		while (*c == '/') {
			c++;
		}
		n = strcspn(c, "/");
		if ((n == 1 && c[0] == '.') || (n == 2 && c[0] == '.' && c[1] == '.')) {
			return fail(err, errlen, -EINVAL,
			    "firecracker: %s may not contain \".\" or \"..\"", what);
		}
		c += n;
	}
	return 0;
}

static const char *
base_name(const char *p)
{
	const char *s = strrchr(p, '/');

	return s == NULL ? p : s + 1;
}

static int
check_jail(const char *vm_id, const struct fc_jail *j, char *err, size_t errlen)
{
	const char *exec_name;
	int r;

	r = check_vm_id(vm_id, err, errlen);
	if (r < 0) {
		return r;
	}
	if (j == NULL) {
		return fail(err, errlen, -EINVAL, "firecracker: no jail settings");
	}
	r = check_abs_path("jailer", j->jailer, err, errlen);
	if (r < 0) {
		return r;
	}
	r = check_abs_path("exec file", j->exec_file, err, errlen);
	if (r < 0) {
		return r;
	}
	r = check_abs_path("chroot base dir", j->chroot_base, err, errlen);
	if (r < 0) {
		return r;
	}
	exec_name = base_name(j->exec_file);
	/* The jailer refuses an exec file whose name lacks "firecracker". */
	if (exec_name[0] == '\0' || strstr(exec_name, "firecracker") == NULL) {
		return fail(err, errlen, -EINVAL,
		    "firecracker: exec file name \"%s\" must contain \"firecracker\"", exec_name);
	}
	/* Firecracker's whole point under the jailer is to drop root. */
	if (j->uid == 0 || j->gid == 0 || j->uid == (uid_t)-1 || j->gid == (gid_t)-1) {
		return fail(err, errlen, -EINVAL,
		    "firecracker: jail uid and gid must be neither 0 (root) nor -1");
	}
	if (j->guest_cid < FC_GUEST_CID_MIN || j->guest_cid > FC_GUEST_CID_MAX) {
		return fail(err, errlen, -EINVAL, "firecracker: guest CID %" PRIu32
		    " is outside %u..%u", j->guest_cid, FC_GUEST_CID_MIN, FC_GUEST_CID_MAX);
	}
	return 0;
}

int
fc_jail_path(const char *vm_id, const struct fc_jail *j, const char *leaf, char *buf,
    size_t len)
{
	const char *base;
	size_t blen;
	int n;

	if (vm_id == NULL || j == NULL || j->chroot_base == NULL || j->exec_file == NULL ||
	    leaf == NULL || buf == NULL) {
		return -EINVAL;
	}
	base = j->chroot_base;
	blen = strlen(base);
	while (blen > 1 && base[blen - 1] == '/') {
		blen--;
	}
	if (blen > INT_MAX) {
		return -ENAMETOOLONG;
	}
	n = snprintf(buf, len, "%.*s/%s/%s/root%s%s", (int)blen, base, base_name(j->exec_file),
	    vm_id, leaf[0] != '\0' ? "/" : "", leaf);
	if (n < 0 || (size_t)n >= len) {
		return -ENAMETOOLONG;
	}
	return 0;
}

/* Everything the config depends on, checked once for both config and
 * staging. */
static int
check_launch(const struct manifest *m, const char *vm_id, const struct fc_jail *j,
    const struct launch_fds *fds, char *err, size_t errlen)
{
	char path[PATH_MAX];
	int r;

	r = check_jail(vm_id, j, err, errlen);
	if (r < 0) {
		return r;
	}
	/* The longest path staging creates must fit. */
	if (fc_jail_path(vm_id, j, FC_AGENT_LISTEN_NAME, path, sizeof(path)) < 0) {
		return fail(err, errlen, -ENAMETOOLONG, "firecracker: chroot base dir is too long");
	}
	if (m == NULL || fds == NULL) {
		return fail(err, errlen, -EINVAL, "firecracker: no manifest or descriptors");
	}
	if (m->vmm != MANIFEST_VMM_FIRECRACKER) {
		return fail(err, errlen, -EINVAL,
		    "firecracker: manifest \"%s\" was measured for another VMM", m->name);
	}
	if (m->workspace[0] != '\0') {
		return fail(err, errlen, -EOPNOTSUPP,
		    "firecracker: manifest \"%s\" has a workspace; Firecracker cannot share folders",
		    m->name);
	}
	if ((m->rootfs[0] != '\0') != (fds->rootfs >= 0)) {
		return fail(err, errlen, -EINVAL,
		    "firecracker: the rootfs descriptor does not match the manifest");
	}
	if (m->vcpus < 1 || m->vcpus > 32 || m->memory_mib < 1) {
		return fail(err, errlen, -EINVAL, "firecracker: vcpus or memory_mib out of range");
	}
	if (strnlen(m->cmdline, sizeof(m->cmdline)) > FC_BOOT_ARGS_MAX) {
		return fail(err, errlen, -E2BIG,
		    "firecracker: cmdline is longer than %d bytes", FC_BOOT_ARGS_MAX);
	}
	return 0;
}

static json_t *
config_json(const struct manifest *m, const struct fc_jail *j, bool has_rootfs)
{
	json_t *root = NULL, *drives = NULL, *out = NULL;

	drives = json_array();
	if (drives == NULL) {
		goto out;
	}
	/* Not the root device: Firecracker would then append "root=/dev/vda
	 * ro" to the measured command line. The guest finds it as /dev/vda. */
	if (has_rootfs && json_array_append_new(drives, json_pack("{s:s, s:s, s:b, s:b}",
	    "drive_id", "rootfs",
	    "path_on_host", "/" FC_ROOTFS_NAME,
	    "is_root_device", 0,
	    "is_read_only", 1)) != 0) {
		goto out;
	}
	root = json_pack("{s:{s:s, s:s, s:s}, s:O, s:{s:I, s:I, s:b}, s:{s:I, s:s}}",
	    "boot-source",
	        "kernel_image_path", "/" FC_KERNEL_NAME,
	        "initrd_path", "/" FC_INITRD_NAME,
	        "boot_args", m->cmdline,
	    "drives", drives,
	    "machine-config",
	        "vcpu_count", (json_int_t)m->vcpus,
	        "mem_size_mib", (json_int_t)m->memory_mib,
	        "smt", 0,
	    "vsock",
	        "guest_cid", (json_int_t)j->guest_cid,
	        "uds_path", FC_UDS_PATH);
	out = root;
out:
	json_decref(drives);
	return out;
}

int
fc_config_new(const struct manifest *m, const char *vm_id, const struct fc_jail *j,
    const struct launch_fds *fds, char **ret, char *err, size_t errlen)
{
	json_t *cfg = NULL;
	char *text = NULL;
	int r;

	if (ret == NULL) {
		return -EINVAL;
	}
	r = check_launch(m, vm_id, j, fds, err, errlen);
	if (r < 0) {
		goto out;
	}
	cfg = config_json(m, j, fds->rootfs >= 0);
	if (cfg == NULL) {
		r = fail(err, errlen, -ENOMEM, "firecracker: out of memory");
		goto out;
	}
	text = json_dumps(cfg, JSON_INDENT(2) | JSON_ENSURE_ASCII);
	if (text == NULL) {
		r = fail(err, errlen, -ENOMEM, "firecracker: out of memory");
		goto out;
	}
	*ret = text;
	text = NULL;
	r = 0;
out:
	free(text);
	json_decref(cfg);
	return r;
}

void
fc_argv_free(char **argv)
{
	if (argv == NULL) {
		return;
	}
	for (char **a = argv; *a != NULL; a++) {
		free(*a);
	}
	free(argv);
}

int
fc_jailer_argv_new(const char *vm_id, const struct fc_jail *j, char ***ret, char *err,
    size_t errlen)
{
	char uid[24], gid[24];
	const char *args[20];
	char **argv = NULL;
	size_t n = 0;
	int r;

	if (ret == NULL) {
		return -EINVAL;
	}
	r = check_jail(vm_id, j, err, errlen);
	if (r < 0) {
		return r;
	}
	(void)snprintf(uid, sizeof(uid), "%ju", (uintmax_t)j->uid);
	(void)snprintf(gid, sizeof(gid), "%ju", (uintmax_t)j->gid);
	args[n++] = j->jailer;
	args[n++] = "--id";
	args[n++] = vm_id;
	args[n++] = "--exec-file";
	args[n++] = j->exec_file;
	args[n++] = "--uid";
	args[n++] = uid;
	args[n++] = "--gid";
	args[n++] = gid;
	args[n++] = "--chroot-base-dir";
	args[n++] = j->chroot_base;
	/* A flag without a value in the jailer. */
	if (j->daemonize) {
		args[n++] = "--daemonize";
	}
	args[n++] = "--";
	args[n++] = "--no-api";
	args[n++] = "--config-file";
	args[n++] = FC_CONFIG_PATH;

	argv = calloc(n + 1, sizeof(*argv));
	if (argv == NULL) {
		return fail(err, errlen, -ENOMEM, "firecracker: out of memory");
	}
	for (size_t i = 0; i < n; i++) {
		argv[i] = strdup(args[i]);
		if (argv[i] == NULL) {
			fc_argv_free(argv);
			return fail(err, errlen, -ENOMEM, "firecracker: out of memory");
		}
	}
	*ret = argv;
	return 0;
}

/* Open (creating it if asked) a folder below dfd that we own and nobody
 * else may write: a folder another user could write would let them swap
 * the jail under us. */
static int
open_private_dir(int dfd, const char *name, bool create, int *ret_fd)
{
	struct stat st;
	int fd;

	if (create && mkdirat(dfd, name, 0755) != 0 && errno != EEXIST) {
		return -errno;
	}
	fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		return -errno;
	}
	if (fstat(fd, &st) != 0) {
		int r = -errno;

		(void)close(fd);
		return r;
	}
	if (st.st_uid != geteuid() || (st.st_mode & (S_IWGRP | S_IWOTH)) != 0) {
		(void)close(fd);
		return -EPERM;
	}
	*ret_fd = fd;
	return 0;
}

static int
write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len > 0) {
		ssize_t n = write(fd, p, len);

		if (n < 0) {
			if (errno == EINTR) {
				continue;
			}
			return -errno;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Copy size bytes of in from offset 0 without moving its file offset
 * (the descriptor is shared with the rest of the launch). */
static int
copy_fd(int in, int out, uint64_t size)
{
	uint8_t *buf = NULL;
	off_t off = 0;
	int r;

	while ((uint64_t)off < size) {
		uint64_t left = size - (uint64_t)off;
		ssize_t n = sendfile(out, in, &off, left > FC_COPY_CHUNK ? FC_COPY_CHUNK : (size_t)left);

		if (n < 0) {
			if (errno == EINTR) {
				continue;
			}
			if (errno == EINVAL || errno == ENOSYS) {
				break;  /* no sendfile between these: read and write */
			}
			return -errno;
		}
		if (n == 0) {
			return -EIO;    /* shorter than its sealed size: cannot be */
		}
	}
	if ((uint64_t)off == size) {
		return 0;
	}
	buf = malloc(FC_COPY_BUF);
	if (buf == NULL) {
		return -ENOMEM;
	}
	while ((uint64_t)off < size) {
		uint64_t left = size - (uint64_t)off;
		ssize_t n = pread(in, buf, left > FC_COPY_BUF ? FC_COPY_BUF : (size_t)left, off);

		if (n < 0) {
			if (errno == EINTR) {
				continue;
			}
			r = -errno;
			goto out;
		}
		if (n == 0) {
			r = -EIO;
			goto out;
		}
		r = write_all(out, buf, (size_t)n);
		if (r < 0) {
			goto out;
		}
		off += n;
	}
	r = 0;
out:
	free(buf);
	return r;
}

/* Create name in dfd (it must not exist), fill it from src (a sealed
 * memfd, if src_fd >= 0) or from data, and make it root's and 0444. */
static int
write_jail_file(int dfd, const char *name, int src_fd, uint64_t size, const char *data,
    size_t len)
{
	struct stat st;
	int fd, r;

	fd = openat(dfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0400);
	if (fd < 0) {
		return -errno;
	}
	if (fchown(fd, 0, 0) != 0) {
		r = -errno;
		goto out;
	}
	r = src_fd >= 0 ? copy_fd(src_fd, fd, size) : write_all(fd, data, len);
	if (r < 0) {
		goto out;
	}
	if (fchmod(fd, 0444) != 0 || fstat(fd, &st) != 0) {
		r = -errno;
		goto out;
	}
	if ((uint64_t)st.st_size != (src_fd >= 0 ? size : len)) {
		r = -EIO;
		goto out;
	}
	r = 0;
out:
	(void)close(fd);
	return r;
}

static int
stage_artifact(int rootfd, const char *name, int fd, uint64_t max, char *err, size_t errlen)
{
	uint64_t size;
	int r;

	/* Only sealed bytes go in: the ones attestd measured. */
	r = artifact_check_sealed(fd, max, &size);
	if (r < 0) {
		return fail(err, errlen, r, "firecracker: the %s descriptor is not a sealed artifact: %s",
		    name, strerror(-r));
	}
	r = write_jail_file(rootfd, name, fd, size, NULL, 0);
	if (r < 0) {
		return fail(err, errlen, r, "firecracker: staging %s: %s", name, strerror(-r));
	}
	return 0;
}

static int
rm_tree_at(int dfd, const char *name, dev_t dev, unsigned depth)
{
	struct dirent *e;
	struct stat st;
	DIR *d = NULL;
	int fd = -1, r;

	if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
		return -errno;
	}
	if (!S_ISDIR(st.st_mode)) {
		return unlinkat(dfd, name, 0) == 0 ? 0 : -errno;
	}
	/* Never into a mount below the jail (its files are not ours). */
	if (st.st_dev != dev) {
		return -EBUSY;
	}
	if (depth >= FC_RM_DEPTH) {
		return -ELOOP;
	}
	fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		return -errno;
	}
	d = fdopendir(fd);
	if (d == NULL) {
		r = -errno;
		(void)close(fd);
		return r;
	}
	r = 0;
	for (;;) {
		errno = 0;
		e = readdir(d);
		if (e == NULL) {
			if (errno != 0) {
				r = -errno;
			}
			break;
		}
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) {
			continue;
		}
		r = rm_tree_at(dirfd(d), e->d_name, dev, depth + 1);
		if (r < 0) {
			break;
		}
	}
	(void)closedir(d);
	if (r < 0) {
		return r;
	}
	return unlinkat(dfd, name, AT_REMOVEDIR) == 0 ? 0 : -errno;
}

/* Open CHROOT_BASE/<exec name>, creating the two levels if asked. */
static int
open_exec_dir(const struct fc_jail *j, bool create, int *ret_fd)
{
	int basefd = -1, r;

	r = open_private_dir(AT_FDCWD, j->chroot_base, create, &basefd);
	if (r < 0) {
		return r;
	}
	r = open_private_dir(basefd, base_name(j->exec_file), create, ret_fd);
	(void)close(basefd);
	return r;
}

int
fc_stage(const struct manifest *m, const char *vm_id, const struct fc_jail *j,
    const struct launch_fds *fds, char *err, size_t errlen)
{
	char *cfg = NULL;
	int execfd = -1, idfd = -1, rootfd = -1, r;
	bool created = false;

	r = fc_config_new(m, vm_id, j, fds, &cfg, err, errlen);
	if (r < 0) {
		goto out;
	}
	r = open_exec_dir(j, true, &execfd);
	if (r < 0) {
		r = fail(err, errlen, r, "firecracker: %s/%s: %s (must be a folder of ours that "
		    "only we may write)", j->chroot_base, base_name(j->exec_file), strerror(-r));
		goto out;
	}
	/* Exclusive: a jail left by another VM is never reused. */
	if (mkdirat(execfd, vm_id, 0755) != 0) {
		r = -errno;
		r = fail(err, errlen, r, "firecracker: jail %s: %s", vm_id, strerror(-r));
		goto out;
	}
	created = true;
	idfd = openat(execfd, vm_id, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (idfd < 0 || mkdirat(idfd, "root", 0755) != 0) {
		r = fail(err, errlen, -errno, "firecracker: jail %s: %s", vm_id, strerror(errno));
		goto out;
	}
	rootfd = openat(idfd, "root", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (rootfd < 0) {
		r = fail(err, errlen, -errno, "firecracker: jail %s: %s", vm_id, strerror(errno));
		goto out;
	}
	/* The mode mkdirat gave went through our umask. */
	if (fchown(idfd, 0, 0) != 0 || fchmod(idfd, 0755) != 0 || fchown(rootfd, 0, 0) != 0 ||
	    fchmod(rootfd, 0755) != 0) {
		r = fail(err, errlen, -errno, "firecracker: jail %s: making it root's: %s", vm_id,
		    strerror(errno));
		goto out;
	}
	r = stage_artifact(rootfd, FC_KERNEL_NAME, fds->kernel, MANIFEST_KERNEL_MAX, err, errlen);
	if (r < 0) {
		goto out;
	}
	r = stage_artifact(rootfd, FC_INITRD_NAME, fds->initrd, MANIFEST_INITRD_MAX, err, errlen);
	if (r < 0) {
		goto out;
	}
	if (fds->rootfs >= 0) {
		r = stage_artifact(rootfd, FC_ROOTFS_NAME, fds->rootfs, MANIFEST_ROOTFS_MAX, err,
		    errlen);
		if (r < 0) {
			goto out;
		}
	}
	r = write_jail_file(rootfd, FC_CONFIG_NAME, -1, 0, cfg, strlen(cfg));
	if (r < 0) {
		r = fail(err, errlen, r, "firecracker: writing %s: %s", FC_CONFIG_NAME, strerror(-r));
		goto out;
	}
	if (mkdirat(rootfd, FC_RW_DIR, 0700) != 0 ||
	    fchownat(rootfd, FC_RW_DIR, j->uid, j->gid, AT_SYMLINK_NOFOLLOW) != 0 ||
	    fchmodat(rootfd, FC_RW_DIR, 0700, 0) != 0) {
		r = fail(err, errlen, -errno, "firecracker: creating %s for uid %ju: %s", FC_RW_DIR,
		    (uintmax_t)j->uid, strerror(errno));
		goto out;
	}
	r = 0;
out:
	if (rootfd >= 0) {
		(void)close(rootfd);
	}
	if (idfd >= 0) {
		(void)close(idfd);
	}
	if (r < 0 && created) {
		struct stat st;

		if (fstat(execfd, &st) == 0) {
			(void)rm_tree_at(execfd, vm_id, st.st_dev, 0);
		}
	}
	if (execfd >= 0) {
		(void)close(execfd);
	}
	free(cfg);
	return r;
}

int
fc_unstage(const char *vm_id, const struct fc_jail *j)
{
	struct stat st;
	int execfd = -1, r;

	r = check_jail(vm_id, j, NULL, 0);
	if (r < 0) {
		return r;
	}
	r = open_exec_dir(j, false, &execfd);
	if (r < 0) {
		return r;
	}
	if (fstat(execfd, &st) != 0) {
		r = -errno;
	} else {
		r = rm_tree_at(execfd, vm_id, st.st_dev, 0);
	}
	(void)close(execfd);
	return r;
}

int
fc_agent_listen(const char *vm_id, const struct fc_jail *j, int *ret_fd)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	/* The name inside rw/: skip "rw/". */
	const char *leaf = &FC_AGENT_LISTEN_NAME[sizeof(FC_RW_DIR)];
	char rw[PATH_MAX];
	int dfd = -1, sfd = -1, r, n;
	bool bound = false;

	if (ret_fd == NULL) {
		return -EINVAL;
	}
	r = check_jail(vm_id, j, NULL, 0);
	if (r < 0) {
		return r;
	}
	r = fc_jail_path(vm_id, j, FC_RW_DIR, rw, sizeof(rw));
	if (r < 0) {
		return r;
	}
	dfd = open(rw, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (dfd < 0) {
		return -errno;
	}
	/* The jail's path can be longer than sun_path; this one never is. */
	n = snprintf(sa.sun_path, sizeof(sa.sun_path), "/proc/self/fd/%d/%s", dfd, leaf);
	if (n < 0 || (size_t)n >= sizeof(sa.sun_path)) {
		r = -ENAMETOOLONG;
		goto out;
	}
	sfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (sfd < 0) {
		r = -errno;
		goto out;
	}
	if (bind(sfd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		r = -errno;
		goto out;
	}
	bound = true;
	/* Firecracker, as the jail's uid, connects to it. */
	if (fchownat(dfd, leaf, j->uid, j->gid, AT_SYMLINK_NOFOLLOW) != 0 ||
	    fchmodat(dfd, leaf, 0600, 0) != 0 || listen(sfd, 16) != 0) {
		r = -errno;
		goto out;
	}
	*ret_fd = sfd;
	sfd = -1;
	r = 0;
out:
	if (sfd >= 0) {
		if (bound) {
			(void)unlinkat(dfd, leaf, 0);
		}
		(void)close(sfd);
	}
	(void)close(dfd);
	return r;
}
