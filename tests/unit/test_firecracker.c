/* Unit tests for vmhost/firecracker.c: the config file, the jailer's argv,
 * jail paths, and staging from sealed memfds (staging cases need root and
 * are skipped without it).
 *
 * With arguments, this binary is the harness tests/integration/
 * test_firecracker.sh drives, since neither Firecracker nor the jailer can
 * run here:
 *   test_firecracker config MANIFEST VM_ID CHROOT_BASE CID
 *       seal the manifest's artifacts, print the config file
 *   test_firecracker stage MANIFEST VM_ID CHROOT_BASE UID GID CID
 *       seal, print "sealed", wait for a line on stdin (the caller changes
 *       the files on disk meanwhile), stage, print the jailer's argv
 *   test_firecracker unstage VM_ID CHROOT_BASE */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "artifact.h"
#include "../../vmhost/firecracker.h"
#include "launch.h"
#include "manifest.h"
#include "parse.h"

#define VM_ID    "3f1c9a0d5b7e24c6a8f0d2b4c6e8a0b2d4f6a8c0e2b4d6f8a0c2e4b6d8f0a2c4"
#define UID_VM   4242
#define GID_VM   4343

/* ---- helpers ---- */

static void xsnprintf(char *buf, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* snprintf that fails the test instead of truncating. */
static void
xsnprintf(char *buf, size_t len, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, len, fmt, ap);
	va_end(ap);
	assert_true(n >= 0 && (size_t)n < len);
}

static struct manifest *
test_manifest(bool rootfs)
{
	struct manifest *m = calloc(1, sizeof(*m));

	assert_non_null(m);
	strcpy(m->name, "fc-test");
	strcpy(m->kernel, "/srv/vm/vmlinux");
	strcpy(m->initrd, "/srv/vm/initrd.img");
	if (rootfs) {
		strcpy(m->rootfs, "/srv/vm/rootfs.ext4");
	}
	strcpy(m->cmdline, "console=ttyS0 quiet panic=-1 rdinit=/init");
	m->vcpus = 2;
	m->memory_mib = 512;
	m->vmm = MANIFEST_VMM_FIRECRACKER;
	m->envelope = NULL;
	return m;
}

static struct fc_jail
test_jail(void)
{
	struct fc_jail j = {
		.jailer = "/usr/bin/jailer",
		.exec_file = "/usr/bin/firecracker",
		.chroot_base = "/srv/jailer",
		.uid = UID_VM,
		.gid = GID_VM,
		.guest_cid = 3,
		.daemonize = false,
	};

	return j;
}

static json_t *
config_of(const struct manifest *m, const struct fc_jail *j, const struct launch_fds *fds)
{
	char err[256] = "", *text = NULL;
	json_error_t jerr;
	json_t *cfg;

	if (fc_config_new(m, VM_ID, j, fds, &text, err, sizeof(err)) != 0) {
		fail_msg("fc_config_new: %s", err);
	}
	assert_non_null(text);
	cfg = json_loads(text, JSON_REJECT_DUPLICATES, &jerr);
	assert_non_null(cfg);
	free(text);
	return cfg;
}

/* fc_config_new fails with want, says why, and leaves *ret alone. */
static void
config_fails(const struct manifest *m, const char *vm_id, const struct fc_jail *j,
    const struct launch_fds *fds, int want)
{
	char err[256] = "", *text = (char *)"untouched";

	assert_int_equal(fc_config_new(m, vm_id, j, fds, &text, err, sizeof(err)), want);
	assert_string_equal(text, "untouched");
	assert_true(strncmp(err, "firecracker: ", 13) == 0);
}

static const char *
str_at(const json_t *obj, const char *sec, const char *key)
{
	const char *s = json_string_value(json_object_get(json_object_get(obj, sec), key));

	assert_non_null(s);
	return s;
}

static json_int_t
int_at(const json_t *obj, const char *sec, const char *key)
{
	json_t *v = json_object_get(json_object_get(obj, sec), key);

	assert_true(json_is_integer(v));
	return json_integer_value(v);
}

/* ---- config ---- */

static void
test_config_initrd_only(void **state)
{
	struct manifest *m = test_manifest(false);
	struct fc_jail j = test_jail();
	struct launch_fds fds = { .kernel = 10, .initrd = 11, .rootfs = -1 };
	const char *key;
	json_t *cfg, *v;
	size_t n = 0;

	(void)state;
	cfg = config_of(m, &j, &fds);
	json_object_foreach(cfg, key, v) {
		assert_true(strcmp(key, "boot-source") == 0 || strcmp(key, "drives") == 0 ||
		    strcmp(key, "machine-config") == 0 || strcmp(key, "vsock") == 0);
		n++;
	}
	assert_int_equal(n, 4);     /* no network-interfaces, logger, metrics... */
	assert_string_equal(str_at(cfg, "boot-source", "kernel_image_path"), "/kernel");
	assert_string_equal(str_at(cfg, "boot-source", "initrd_path"), "/initrd");
	assert_string_equal(str_at(cfg, "boot-source", "boot_args"), m->cmdline);
	assert_int_equal(json_object_size(json_object_get(cfg, "boot-source")), 3);
	assert_true(json_is_array(json_object_get(cfg, "drives")));
	assert_int_equal(json_array_size(json_object_get(cfg, "drives")), 0);
	assert_int_equal(int_at(cfg, "machine-config", "vcpu_count"), 2);
	assert_int_equal(int_at(cfg, "machine-config", "mem_size_mib"), 512);
	assert_true(json_is_false(json_object_get(json_object_get(cfg, "machine-config"), "smt")));
	assert_int_equal(int_at(cfg, "vsock", "guest_cid"), 3);
	assert_string_equal(str_at(cfg, "vsock", "uds_path"), "/rw/agent");
	assert_int_equal(json_object_size(json_object_get(cfg, "vsock")), 2);
	json_decref(cfg);
	free(m);
}

static void
test_config_rootfs_read_only(void **state)
{
	struct manifest *m = test_manifest(true);
	struct fc_jail j = test_jail();
	struct launch_fds fds = { .kernel = 10, .initrd = 11, .rootfs = 12 };
	json_t *cfg, *drives, *d;

	(void)state;
	j.guest_cid = FC_GUEST_CID_MAX;
	cfg = config_of(m, &j, &fds);
	drives = json_object_get(cfg, "drives");
	assert_int_equal(json_array_size(drives), 1);
	d = json_array_get(drives, 0);
	assert_int_equal(json_object_size(d), 4);
	assert_string_equal(json_string_value(json_object_get(d, "drive_id")), "rootfs");
	assert_string_equal(json_string_value(json_object_get(d, "path_on_host")), "/rootfs");
	assert_true(json_is_true(json_object_get(d, "is_read_only")));
	/* Not root: Firecracker would add root=/dev/vda to the measured cmdline. */
	assert_true(json_is_false(json_object_get(d, "is_root_device")));
	assert_int_equal(int_at(cfg, "vsock", "guest_cid"), 0xfffffffe);
	json_decref(cfg);
	free(m);
}

/* Every printable ASCII character survives the trip through JSON. */
static void
test_config_cmdline_escaped(void **state)
{
	struct manifest *m = test_manifest(false);
	struct fc_jail j = test_jail();
	struct launch_fds fds = { .kernel = 10, .initrd = 11, .rootfs = -1 };
	json_t *cfg;
	size_t n = 0;

	(void)state;
	for (int c = 0x20; c <= 0x7e; c++) {
		m->cmdline[n++] = (char)c;
	}
	m->cmdline[n] = '\0';
	cfg = config_of(m, &j, &fds);
	assert_string_equal(str_at(cfg, "boot-source", "boot_args"), m->cmdline);
	json_decref(cfg);

	m->cmdline[0] = '\0';
	cfg = config_of(m, &j, &fds);
	assert_string_equal(str_at(cfg, "boot-source", "boot_args"), "");
	json_decref(cfg);
	free(m);
}

static void
test_config_rejects_manifest(void **state)
{
	struct manifest *m = test_manifest(false);
	struct fc_jail j = test_jail();
	struct launch_fds fds = { .kernel = 10, .initrd = 11, .rootfs = -1 };

	(void)state;
	m->vmm = MANIFEST_VMM_QEMU;         /* measured for QEMU */
	config_fails(m, VM_ID, &j, &fds, -EINVAL);
	m->vmm = MANIFEST_VMM_FIRECRACKER;

	strcpy(m->workspace, "/srv/vm/work");
	config_fails(m, VM_ID, &j, &fds, -EOPNOTSUPP);
	m->workspace[0] = '\0';

	fds.rootfs = 12;                    /* a rootfs the manifest lacks */
	config_fails(m, VM_ID, &j, &fds, -EINVAL);
	fds.rootfs = -1;
	strcpy(m->rootfs, "/srv/vm/rootfs.ext4");   /* and the reverse */
	config_fails(m, VM_ID, &j, &fds, -EINVAL);
	m->rootfs[0] = '\0';

	memset(m->cmdline, 'a', FC_BOOT_ARGS_MAX + 1);
	m->cmdline[FC_BOOT_ARGS_MAX + 1] = '\0';
	config_fails(m, VM_ID, &j, &fds, -E2BIG);
	m->cmdline[FC_BOOT_ARGS_MAX] = '\0';    /* exactly the limit is fine */
	json_decref(config_of(m, &j, &fds));

	m->vcpus = 33;
	config_fails(m, VM_ID, &j, &fds, -EINVAL);
	m->vcpus = 0;
	config_fails(m, VM_ID, &j, &fds, -EINVAL);
	m->vcpus = 1;
	m->memory_mib = 0;
	config_fails(m, VM_ID, &j, &fds, -EINVAL);
	free(m);
}

static void
test_config_rejects_jail(void **state)
{
	struct manifest *m = test_manifest(false);
	struct launch_fds fds = { .kernel = 10, .initrd = 11, .rootfs = -1 };
	static char longbase[4096] = "/";
	char id65[66];
	struct fc_jail j;
	static const char *const bad_ids[] = {
		"", "a_b", "a/b", "..", "a.b", "a b", "é", NULL,
	};

	(void)state;
	for (size_t i = 0; bad_ids[i] != NULL; i++) {
		j = test_jail();
		config_fails(m, bad_ids[i], &j, &fds, -EINVAL);
	}
	j = test_jail();
	config_fails(m, NULL, &j, &fds, -EINVAL);
	config_fails(m, VM_ID, NULL, &fds, -EINVAL);
	memset(longbase + 1, 'b', 199);
	memset(id65, 'a', 65);
	id65[65] = '\0';
	config_fails(m, id65, &j, &fds, -EINVAL);
	/* VM_ID, which the other cases use, is 64: the jailer's limit. */
	assert_int_equal(strlen(VM_ID), FC_ID_MAX);

	j = test_jail();
	j.uid = 0;
	config_fails(m, VM_ID, &j, &fds, -EINVAL);
	j = test_jail();
	j.gid = 0;
	config_fails(m, VM_ID, &j, &fds, -EINVAL);
	j = test_jail();
	j.uid = (uid_t)-1;
	config_fails(m, VM_ID, &j, &fds, -EINVAL);
	j = test_jail();
	j.guest_cid = 2;                    /* the host's CID */
	config_fails(m, VM_ID, &j, &fds, -EINVAL);
	j.guest_cid = 0xffffffffu;          /* VMADDR_CID_ANY */
	config_fails(m, VM_ID, &j, &fds, -EINVAL);

	j = test_jail();
	j.chroot_base = "srv/jailer";
	config_fails(m, VM_ID, &j, &fds, -EINVAL);
	j.chroot_base = "/srv/../etc";
	config_fails(m, VM_ID, &j, &fds, -EINVAL);
	j.chroot_base = "/srv/./jailer";
	config_fails(m, VM_ID, &j, &fds, -EINVAL);
	j.chroot_base = NULL;
	config_fails(m, VM_ID, &j, &fds, -EINVAL);
	j = test_jail();
	j.exec_file = "/usr/bin/qemu";      /* the jailer insists on the name */
	config_fails(m, VM_ID, &j, &fds, -EINVAL);
	j.exec_file = "/usr/bin/firecracker/";
	config_fails(m, VM_ID, &j, &fds, -EINVAL);
	j.exec_file = "firecracker";
	config_fails(m, VM_ID, &j, &fds, -EINVAL);
	j = test_jail();
	j.jailer = "jailer";
	config_fails(m, VM_ID, &j, &fds, -EINVAL);

	/* A base that leaves no room below PATH_MAX for the jail's files. */
	j = test_jail();
	j.chroot_base = longbase;
	json_decref(config_of(m, &j, &fds));   /* 200 bytes: fine */
	memset(longbase + 1, 'b', 4050);
	longbase[4051] = '\0';
	config_fails(m, VM_ID, &j, &fds, -ENAMETOOLONG);
	free(m);
}

/* ---- argv ---- */

static void
assert_argv(char **argv, const char *const *want)
{
	size_t i;

	for (i = 0; want[i] != NULL; i++) {
		assert_non_null(argv[i]);
		assert_string_equal(argv[i], want[i]);
	}
	assert_null(argv[i]);
}

static void
test_jailer_argv(void **state)
{
	struct fc_jail j = test_jail();
	char err[256], **argv = NULL;
	static const char *const want[] = {
		"/usr/bin/jailer", "--id", VM_ID, "--exec-file", "/usr/bin/firecracker",
		"--uid", "4242", "--gid", "4343", "--chroot-base-dir", "/srv/jailer",
		"--", "--no-api", "--config-file", "/config.json", NULL,
	};
	static const char *const want_daemon[] = {
		"/usr/bin/jailer", "--id", VM_ID, "--exec-file", "/usr/bin/firecracker",
		"--uid", "4242", "--gid", "4343", "--chroot-base-dir", "/srv/jailer",
		"--daemonize", "--", "--no-api", "--config-file", "/config.json", NULL,
	};

	(void)state;
	assert_int_equal(fc_jailer_argv_new(VM_ID, &j, &argv, err, sizeof(err)), 0);
	assert_argv(argv, want);
	fc_argv_free(argv);

	j.daemonize = true;
	assert_int_equal(fc_jailer_argv_new(VM_ID, &j, &argv, err, sizeof(err)), 0);
	assert_argv(argv, want_daemon);
	fc_argv_free(argv);

	j.uid = 4000000000u;
	j.daemonize = false;
	assert_int_equal(fc_jailer_argv_new(VM_ID, &j, &argv, err, sizeof(err)), 0);
	assert_string_equal(argv[6], "4000000000");
	fc_argv_free(argv);
	fc_argv_free(NULL);
}

static void
test_jailer_argv_rejects(void **state)
{
	struct fc_jail j = test_jail();
	char err[256], **argv = (char **)&err;

	(void)state;
	assert_int_equal(fc_jailer_argv_new("bad id", &j, &argv, err, sizeof(err)), -EINVAL);
	j.uid = 0;
	assert_int_equal(fc_jailer_argv_new(VM_ID, &j, &argv, err, sizeof(err)), -EINVAL);
	j = test_jail();
	j.exec_file = "/opt/fc/bin/vmm";
	assert_int_equal(fc_jailer_argv_new(VM_ID, &j, &argv, err, sizeof(err)), -EINVAL);
	assert_true(argv == (char **)&err);     /* untouched on failure */
	assert_int_equal(fc_jailer_argv_new(VM_ID, &j, NULL, err, sizeof(err)), -EINVAL);
}

/* ---- paths ---- */

static void
test_jail_path(void **state)
{
	struct fc_jail j = test_jail();
	char buf[PATH_MAX], small[16];

	(void)state;
	assert_int_equal(fc_jail_path(VM_ID, &j, "", buf, sizeof(buf)), 0);
	assert_string_equal(buf, "/srv/jailer/firecracker/" VM_ID "/root");
	assert_int_equal(fc_jail_path(VM_ID, &j, FC_AGENT_LISTEN_NAME, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "/srv/jailer/firecracker/" VM_ID "/root/rw/agent_52");
	j.chroot_base = "/srv/jailer//";
	j.exec_file = "/opt/fc/firecracker-v1.12.0-x86_64";
	assert_int_equal(fc_jail_path(VM_ID, &j, "kernel", buf, sizeof(buf)), 0);
	assert_string_equal(buf, "/srv/jailer/firecracker-v1.12.0-x86_64/" VM_ID "/root/kernel");
	assert_int_equal(fc_jail_path(VM_ID, &j, "", small, sizeof(small)), -ENAMETOOLONG);
	assert_int_equal(fc_jail_path(VM_ID, &j, NULL, buf, sizeof(buf)), -EINVAL);
}

static void
test_agent_names_agree(void **state)
{
	char want[64];

	(void)state;
	xsnprintf(want, sizeof(want), "%s_%d", FC_AGENT_NAME, FC_AGENT_VSOCK_PORT);
	assert_string_equal(FC_AGENT_LISTEN_NAME, want);
	assert_string_equal(FC_UDS_PATH, "/" FC_AGENT_NAME);
	assert_true(strncmp(FC_AGENT_NAME, FC_RW_DIR "/", strlen(FC_RW_DIR) + 1) == 0);
}

/* ---- staging (root only) ---- */

struct stage_fixture {
	char dir[PATH_MAX];
	char base[PATH_MAX];
	char src[3][PATH_MAX];
	struct manifest *m;
	struct fc_jail j;
	struct launch_fds fds;
};

static const char *const stage_names[3] = { "kernel", "initrd", "rootfs" };
static const char *const stage_data[3] = {
	"KERNEL bytes as measured\n", "INITRD bytes as measured\n", "ROOTFS bytes as measured\n",
};

static void
write_text(const char *path, const char *text)
{
	FILE *f = fopen(path, "we");

	assert_non_null(f);
	assert_int_equal(fputs(text, f) >= 0, 1);
	assert_int_equal(fclose(f), 0);
}

static int
stage_setup(void **state)
{
	struct stage_fixture *f;
	const char *tmp = getenv("TMPDIR");
	uint64_t size;

	if (geteuid() != 0) {
		return 0;
	}
	f = calloc(1, sizeof(*f));
	assert_non_null(f);
	xsnprintf(f->dir, sizeof(f->dir), "%s/fc-unit.XXXXXX", tmp != NULL ? tmp : "/tmp");
	assert_non_null(mkdtemp(f->dir));
	/* Longer than sockaddr_un's 107 bytes once the jail's names are added,
	 * as real chroot bases with 64-character VM ids are. */
	xsnprintf(f->base, sizeof(f->base), "%s/jail-base-with-a-long-name", f->dir);
	f->m = test_manifest(true);
	f->j = test_jail();
	f->j.chroot_base = f->base;
	f->fds.kernel = f->fds.initrd = f->fds.rootfs = -1;
	for (int i = 0; i < 3; i++) {
		int *fd = i == 0 ? &f->fds.kernel : i == 1 ? &f->fds.initrd : &f->fds.rootfs;

		xsnprintf(f->src[i], sizeof(f->src[i]), "%s/%s", f->dir, stage_names[i]);
		write_text(f->src[i], stage_data[i]);
		assert_int_equal(artifact_seal(f->src[i], stage_names[i], MANIFEST_ROOTFS_MAX, fd,
		    &size), 0);
		/* Changed on disk after sealing: staging must not see this. */
		write_text(f->src[i], "TAMPERED after measurement, longer than before\n");
	}
	*state = f;
	return 0;
}

static int
stage_teardown(void **state)
{
	struct stage_fixture *f = *state;
	char cmd[PATH_MAX + 16];

	if (f == NULL) {
		return 0;
	}
	close(f->fds.kernel);
	close(f->fds.initrd);
	close(f->fds.rootfs);
	free(f->m);
	/* Our own mkdtemp folder, nothing else. */
	xsnprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
	assert_int_equal(system(cmd), 0);
	free(f);
	return 0;
}

static char *
slurp(const char *path, size_t *ret_len)
{
	FILE *fp = fopen(path, "re");
	char *buf = calloc(1, 4096);
	size_t n;

	assert_non_null(fp);
	assert_non_null(buf);
	n = fread(buf, 1, 4095, fp);
	fclose(fp);
	*ret_len = n;
	return buf;
}

static void
assert_mode(const char *path, mode_t type, mode_t mode, uid_t uid, gid_t gid)
{
	struct stat st;

	assert_int_equal(lstat(path, &st), 0);
	assert_int_equal(st.st_mode & S_IFMT, type);
	assert_int_equal(st.st_mode & 07777, mode);
	assert_int_equal(st.st_uid, uid);
	assert_int_equal(st.st_gid, gid);
}

static void
test_stage_copies_sealed_bytes(void **state)
{
	struct stage_fixture *f = *state;
	char err[256] = "", path[PATH_MAX], *cfg = NULL, *text;
	size_t len;

	if (f == NULL) {
		skip();
	}
	assert_int_equal(fc_stage(f->m, VM_ID, &f->j, &f->fds, err, sizeof(err)), 0);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(fc_jail_path(VM_ID, &f->j, stage_names[i], path, sizeof(path)), 0);
		text = slurp(path, &len);
		assert_int_equal(len, strlen(stage_data[i]));
		assert_memory_equal(text, stage_data[i], len);
		free(text);
		assert_mode(path, S_IFREG, 0444, 0, 0);
	}
	assert_int_equal(fc_jail_path(VM_ID, &f->j, FC_CONFIG_NAME, path, sizeof(path)), 0);
	assert_mode(path, S_IFREG, 0444, 0, 0);
	assert_int_equal(fc_config_new(f->m, VM_ID, &f->j, &f->fds, &cfg, err, sizeof(err)), 0);
	text = slurp(path, &len);
	assert_int_equal(len, strlen(cfg));
	assert_memory_equal(text, cfg, len);
	free(text);
	free(cfg);
	assert_int_equal(fc_jail_path(VM_ID, &f->j, "", path, sizeof(path)), 0);
	assert_mode(path, S_IFDIR, 0755, 0, 0);
	assert_int_equal(fc_jail_path(VM_ID, &f->j, FC_RW_DIR, path, sizeof(path)), 0);
	assert_mode(path, S_IFDIR, 0700, UID_VM, GID_VM);

	/* A jail is never reused, and the refusal leaves the first intact. */
	assert_int_equal(fc_stage(f->m, VM_ID, &f->j, &f->fds, err, sizeof(err)), -EEXIST);
	assert_int_equal(fc_jail_path(VM_ID, &f->j, FC_CONFIG_NAME, path, sizeof(path)), 0);
	assert_int_equal(access(path, F_OK), 0);

	assert_int_equal(fc_unstage(VM_ID, &f->j), 0);
	assert_int_equal(fc_jail_path(VM_ID, &f->j, "", path, sizeof(path)), 0);
	assert_int_equal(access(path, F_OK), -1);
	assert_int_equal(fc_unstage(VM_ID, &f->j), -ENOENT);
}

static void
test_stage_refuses_unsealed(void **state)
{
	struct stage_fixture *f = *state;
	struct launch_fds fds;
	char err[256] = "", path[PATH_MAX];
	int plain;

	if (f == NULL) {
		skip();
	}
	/* A plain file descriptor: its bytes could change after measurement. */
	plain = open(f->src[1], O_RDONLY | O_CLOEXEC);
	assert_true(plain >= 0);
	fds = f->fds;
	fds.initrd = plain;
	assert_int_equal(fc_stage(f->m, VM_ID, &f->j, &fds, err, sizeof(err)), -EPERM);
	assert_non_null(strstr(err, "not a sealed artifact"));
	close(plain);
	/* Nothing left behind: the kernel copied before the failure is gone. */
	assert_int_equal(fc_jail_path(VM_ID, &f->j, "", path, sizeof(path)), 0);
	*strrchr(path, '/') = '\0';
	assert_int_equal(access(path, F_OK), -1);
}

static void
test_stage_refuses_hostile_base(void **state)
{
	struct stage_fixture *f = *state;
	char err[256] = "", path[PATH_MAX + 32], elsewhere[PATH_MAX + 32];

	if (f == NULL) {
		skip();
	}
	/* CHROOT_BASE/firecracker as a symlink to somewhere else. */
	assert_int_equal(mkdir(f->base, 0755), 0);
	xsnprintf(elsewhere, sizeof(elsewhere), "%s/elsewhere", f->dir);
	assert_int_equal(mkdir(elsewhere, 0755), 0);
	xsnprintf(path, sizeof(path), "%s/firecracker", f->base);
	assert_int_equal(symlink(elsewhere, path), 0);
	assert_true(fc_stage(f->m, VM_ID, &f->j, &f->fds, err, sizeof(err)) < 0);
	xsnprintf(path, sizeof(path), "%s/%s", elsewhere, VM_ID);
	assert_int_equal(access(path, F_OK), -1);
	xsnprintf(path, sizeof(path), "%s/firecracker", f->base);
	assert_int_equal(unlink(path), 0);

	/* A base others may write. */
	assert_int_equal(chmod(f->base, 0777), 0);
	assert_int_equal(fc_stage(f->m, VM_ID, &f->j, &f->fds, err, sizeof(err)), -EPERM);
	assert_int_equal(chmod(f->base, 0755), 0);

	/* And with a sane base, staging works. */
	assert_int_equal(fc_stage(f->m, VM_ID, &f->j, &f->fds, err, sizeof(err)), 0);
	assert_int_equal(fc_unstage(VM_ID, &f->j), 0);
}

static void
test_agent_listen(void **state)
{
	struct stage_fixture *f = *state;
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char err[256] = "", path[PATH_MAX];
	int lfd = -1, cfd, afd, dfd;

	if (f == NULL) {
		skip();
	}
	assert_int_equal(fc_agent_listen(VM_ID, &f->j, &lfd), -ENOENT);    /* not staged */
	assert_int_equal(fc_stage(f->m, VM_ID, &f->j, &f->fds, err, sizeof(err)), 0);
	assert_int_equal(fc_jail_path(VM_ID, &f->j, FC_AGENT_LISTEN_NAME, path, sizeof(path)), 0);
	assert_true(strlen(path) > sizeof(sa.sun_path) - 1);
	assert_int_equal(fc_agent_listen(VM_ID, &f->j, &lfd), 0);
	assert_true(fcntl(lfd, F_GETFD) & FD_CLOEXEC);
	assert_mode(path, S_IFSOCK, 0600, UID_VM, GID_VM);
	/* Bound once: a second listener is refused. */
	assert_int_equal(fc_agent_listen(VM_ID, &f->j, &dfd), -EADDRINUSE);

	/* What Firecracker would do: connect to it. */
	*strrchr(path, '/') = '\0';
	dfd = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
	assert_true(dfd >= 0);
	xsnprintf(sa.sun_path, sizeof(sa.sun_path), "/proc/self/fd/%d/agent_%d", dfd,
	    FC_AGENT_VSOCK_PORT);
	cfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(cfd >= 0);
	assert_int_equal(connect(cfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	afd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	assert_true(afd >= 0);
	close(afd);
	close(cfd);
	close(dfd);
	close(lfd);
	assert_int_equal(fc_unstage(VM_ID, &f->j), 0);
}

/* ---- harness mode for tests/integration/test_firecracker.sh ---- */

static int
harness_fail(const char *what, int r, const char *err)
{
	fprintf(stderr, "test_firecracker: %s: %s\n", what, err != NULL && err[0] != '\0' ?
	    err : strerror(-r));
	return 1;
}

static int
harness_seal(const struct manifest *m, struct launch_fds *fds)
{
	uint64_t size;
	int r;

	fds->kernel = fds->initrd = fds->rootfs = -1;
	r = artifact_seal(m->kernel, "kernel", MANIFEST_KERNEL_MAX, &fds->kernel, &size);
	if (r == 0) {
		r = artifact_seal(m->initrd, "initrd", MANIFEST_INITRD_MAX, &fds->initrd, &size);
	}
	if (r == 0 && m->rootfs[0] != '\0') {
		r = artifact_seal(m->rootfs, "rootfs", MANIFEST_ROOTFS_MAX, &fds->rootfs, &size);
	}
	return r;
}

static int
harness(int argc, char **argv)
{
	struct fc_jail j = test_jail();
	struct launch_fds fds = { -1, -1, -1 };
	struct manifest *m = NULL;
	char err[512] = "", *cfg = NULL, **jargv = NULL, line[16];
	uint64_t v;
	int r, rc = 1;

	if (strcmp(argv[1], "unstage") == 0 && argc == 4) {
		j.chroot_base = argv[3];
		r = fc_unstage(argv[2], &j);
		return r < 0 ? harness_fail("unstage", r, NULL) : 0;
	}
	if (!((strcmp(argv[1], "config") == 0 && argc == 6) ||
	    (strcmp(argv[1], "stage") == 0 && argc == 8))) {
		fprintf(stderr, "usage: test_firecracker [config MANIFEST VM_ID CHROOT_BASE CID | "
		    "stage MANIFEST VM_ID CHROOT_BASE UID GID CID | unstage VM_ID CHROOT_BASE]\n");
		return 2;
	}
	r = manifest_load(argv[2], &m, err, sizeof(err));
	if (r < 0) {
		return harness_fail("manifest", r, err);
	}
	j.chroot_base = argv[4];
	if (parse_u64(argv[argc - 1], 0, UINT32_MAX, &v) < 0) {
		rc = harness_fail("cid", -EINVAL, NULL);
		goto out;
	}
	j.guest_cid = (uint32_t)v;
	if (argc == 8) {
		if (parse_u64(argv[5], 0, UINT32_MAX, &v) < 0) {
			rc = harness_fail("uid", -EINVAL, NULL);
			goto out;
		}
		j.uid = (uid_t)v;
		if (parse_u64(argv[6], 0, UINT32_MAX, &v) < 0) {
			rc = harness_fail("gid", -EINVAL, NULL);
			goto out;
		}
		j.gid = (gid_t)v;
	}
	r = harness_seal(m, &fds);
	if (r < 0) {
		rc = harness_fail("seal", r, NULL);
		goto out;
	}
	if (strcmp(argv[1], "config") == 0) {
		r = fc_config_new(m, argv[3], &j, &fds, &cfg, err, sizeof(err));
		if (r < 0) {
			rc = harness_fail("config", r, err);
			goto out;
		}
		printf("%s\n", cfg);
		rc = 0;
		goto out;
	}
	printf("sealed\n");
	(void)fflush(stdout);
	if (fgets(line, sizeof(line), stdin) == NULL) {
		rc = harness_fail("stage", -EPIPE, "no go-ahead on stdin");
		goto out;
	}
	r = fc_stage(m, argv[3], &j, &fds, err, sizeof(err));
	if (r < 0) {
		rc = harness_fail("stage", r, err);
		goto out;
	}
	r = fc_jailer_argv_new(argv[3], &j, &jargv, err, sizeof(err));
	if (r < 0) {
		rc = harness_fail("argv", r, err);
		goto out;
	}
	for (char **a = jargv; *a != NULL; a++) {
		printf("argv %s\n", *a);
	}
	rc = 0;
out:
	fc_argv_free(jargv);
	free(cfg);
	if (fds.kernel >= 0) {
		close(fds.kernel);
	}
	if (fds.initrd >= 0) {
		close(fds.initrd);
	}
	if (fds.rootfs >= 0) {
		close(fds.rootfs);
	}
	manifest_free(m);
	return rc;
}

int
main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_config_initrd_only),
		cmocka_unit_test(test_config_rootfs_read_only),
		cmocka_unit_test(test_config_cmdline_escaped),
		cmocka_unit_test(test_config_rejects_manifest),
		cmocka_unit_test(test_config_rejects_jail),
		cmocka_unit_test(test_jailer_argv),
		cmocka_unit_test(test_jailer_argv_rejects),
		cmocka_unit_test(test_jail_path),
		cmocka_unit_test(test_agent_names_agree),
		cmocka_unit_test_setup_teardown(test_stage_copies_sealed_bytes, stage_setup,
		    stage_teardown),
		cmocka_unit_test_setup_teardown(test_stage_refuses_unsealed, stage_setup,
		    stage_teardown),
		cmocka_unit_test_setup_teardown(test_stage_refuses_hostile_base, stage_setup,
		    stage_teardown),
		cmocka_unit_test_setup_teardown(test_agent_listen, stage_setup, stage_teardown),
	};

	if (argc > 1) {
		return harness(argc, argv);
	}
	return cmocka_run_group_tests(tests, NULL, NULL);
}
