/* Unit tests for lib/manifest.c: the launch manifest parser, adversarial. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cjson.h"
#include "manifest.h"

struct fixture {
	char dir[256];
};

/* The members of a good manifest; tests replace or drop one at a time. */
static const char *const good_keys[] = {
	"name", "kernel", "initrd", "cmdline", "vcpus", "memory_mib", "vmm", "envelope", NULL,
};
static const char *const good_values[] = {
	"\"t1\"", "\"vmlinuz\"", "\"initrd.img\"", "\"console=ttyS0 quiet\"", "2", "256",
	"\"qemu\"", "{\"fs.read\":\"allow\",\"fs.write\":{\"level\":\"ask\",\"paths\":[\"/out/\"],"
	"\"budget\":10}}",
	NULL,
};

static void
write_file(const char *dir, const char *name, size_t size)
{
	char path[PATH_MAX];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	assert_true(fd >= 0);
	/* Sparse: a file over the size limits costs no disk. */
	assert_int_equal(ftruncate(fd, (off_t)size), 0);
	if (size > 0) {
		assert_int_equal(pwrite(fd, "x", 1, 0), 1);
	}
	close(fd);
}

static int
setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	char tmpl[PATH_MAX], path[PATH_MAX], *real;
	const char *tmp = getenv("TMPDIR");

	assert_non_null(f);
	snprintf(tmpl, sizeof(tmpl), "%s/test_manifest.XXXXXX", tmp != NULL ? tmp : "/tmp");
	assert_non_null(mkdtemp(tmpl));
	real = realpath(tmpl, NULL);
	assert_non_null(real);
	assert_true(strlen(real) < sizeof(f->dir));
	memcpy(f->dir, real, strlen(real) + 1);
	free(real);
	write_file(f->dir, "vmlinuz", 100);
	write_file(f->dir, "initrd.img", 50);
	write_file(f->dir, "rootfs.img", 10);
	write_file(f->dir, "empty", 0);
	write_file(f->dir, "big-kernel", (size_t)MANIFEST_KERNEL_MAX + 1);
	snprintf(path, sizeof(path), "%s/sub", f->dir);
	assert_int_equal(mkdir(path, 0755), 0);
	write_file(f->dir, "sub/k", 10);
	snprintf(path, sizeof(path), "%s/ws", f->dir);
	assert_int_equal(mkdir(path, 0755), 0);
	snprintf(path, sizeof(path), "%s/m", f->dir);
	assert_int_equal(mkdir(path, 0755), 0);
	snprintf(path, sizeof(path), "%s/link", f->dir);
	assert_int_equal(symlink("vmlinuz", path), 0);
	snprintf(path, sizeof(path), "%s/linkdir", f->dir);
	assert_int_equal(symlink("sub", path), 0);
	snprintf(path, sizeof(path), "%s/outside", f->dir);
	assert_int_equal(symlink("/etc", path), 0);
	snprintf(path, sizeof(path), "%s/fifo", f->dir);
	assert_int_equal(mkfifo(path, 0600), 0);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;
	char cmd[PATH_MAX + 32];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
	assert_int_equal(system(cmd), 0);
	free(f);
	return 0;
}

/* The good manifest with key's value replaced by value (raw JSON text),
 * or dropped if value is NULL; a key not in it is added. */
static char *
manifest_with(const char *key, const char *value)
{
	char *buf = malloc(MANIFEST_MAX_BYTES * 2);
	size_t off = 0, i;
	int found = 0;

	assert_non_null(buf);
	off += (size_t)snprintf(buf + off, MANIFEST_MAX_BYTES * 2 - off, "{");
	for (i = 0; good_keys[i] != NULL; i++) {
		const char *v = good_values[i];

		if (key != NULL && strcmp(key, good_keys[i]) == 0) {
			found = 1;
			v = value;
		}
		if (v == NULL) {
			continue;
		}
		off += (size_t)snprintf(buf + off, MANIFEST_MAX_BYTES * 2 - off, "%s\"%s\":%s",
		    off > 1 ? "," : "", good_keys[i], v);
	}
	if (key != NULL && !found && value != NULL) {
		off += (size_t)snprintf(buf + off, MANIFEST_MAX_BYTES * 2 - off, ",\"%s\":%s",
		    key, value);
	}
	snprintf(buf + off, MANIFEST_MAX_BYTES * 2 - off, "}");
	return buf;
}

static int
parse_in(const struct fixture *f, const char *subdir, const char *text, struct manifest **ret,
    char *err, size_t errlen)
{
	char base[PATH_MAX];

	snprintf(base, sizeof(base), "%s%s%s", f->dir, subdir != NULL ? "/" : "",
	    subdir != NULL ? subdir : "");
	return manifest_parse(text, strlen(text), base, ret, err, errlen);
}

/* Parsing the good manifest with key set to value must fail with code r
 * and an error naming the field (want, if given, is also in the error). */
static void
expect_bad(const struct fixture *f, const char *key, const char *value, int r,
    const char *want)
{
	struct manifest *m = NULL;
	char err[512], field[128];
	char *text = manifest_with(key, value);
	int got;

	got = parse_in(f, NULL, text, &m, err, sizeof(err));
	if (got != r || m != NULL) {
		print_error("%s=%s: got %d (%s), wanted %d\n", key, value != NULL ? value : "(none)",
		    got, err, r);
	}
	assert_int_equal(got, r);
	assert_null(m);
	assert_true(strncmp(err, "manifest: ", 10) == 0);
	snprintf(field, sizeof(field), "field \"%s\"", key);
	if (strstr(err, field) == NULL || (want != NULL && strstr(err, want) == NULL)) {
		print_error("%s=%s: error \"%s\" lacks \"%s\" / \"%s\"\n", key,
		    value != NULL ? value : "(none)", err, field, want != NULL ? want : "");
		fail();
	}
	free(text);
}

static void
test_good_manifest(void **state)
{
	struct fixture *f = *state;
	struct manifest *m = NULL;
	char err[256], want[PATH_MAX + 32];
	char *text = manifest_with(NULL, NULL), *s = NULL;
	json_t *cfg;
	size_t len;

	assert_int_equal(parse_in(f, NULL, text, &m, err, sizeof(err)), 0);
	assert_string_equal(m->name, "t1");
	snprintf(want, sizeof(want), "%s/vmlinuz", f->dir);
	assert_string_equal(m->kernel, want);
	snprintf(want, sizeof(want), "%s/initrd.img", f->dir);
	assert_string_equal(m->initrd, want);
	assert_string_equal(m->rootfs, "");
	assert_string_equal(m->workspace, "");
	assert_string_equal(m->cmdline, "console=ttyS0 quiet");
	assert_int_equal(m->vcpus, 2);
	assert_int_equal(m->memory_mib, 256);
	assert_int_equal(m->vmm, MANIFEST_VMM_QEMU);
	assert_true(json_is_object(m->envelope));

	/* The canonical config: sorted, compact, no artifact paths. */
	cfg = manifest_config(m);
	assert_non_null(cfg);
	assert_int_equal(cjson_dump(cfg, &s, &len), 0);
	assert_string_equal(s, "{\"cmdline\":\"console=ttyS0 quiet\",\"envelope\":{\"fs.read\":"
	    "\"allow\",\"fs.write\":{\"budget\":10,\"level\":\"ask\",\"paths\":[\"/out/\"]}},"
	    "\"memory_mib\":256,\"name\":\"t1\",\"vcpus\":2,\"vmm\":\"qemu\"}");
	free(s);
	json_decref(cfg);
	manifest_free(m);
	free(text);
}

static void
test_optional_fields_and_paths(void **state)
{
	struct fixture *f = *state;
	struct manifest *m = NULL;
	char text[4096], err[256], want[PATH_MAX + 32], *s = NULL;
	json_t *cfg;
	size_t len;

	snprintf(text, sizeof(text), "{\"name\":\"a.b-c:1\",\"kernel\":\"./sub/../sub//k\","
	    "\"initrd\":\"%s/initrd.img\",\"rootfs\":\"rootfs.img\",\"workspace\":\"ws/\","
	    "\"cmdline\":\"\",\"vcpus\":32,\"memory_mib\":65536,\"vmm\":\"firecracker\","
	    "\"envelope\":{}}", f->dir);
	assert_int_equal(parse_in(f, NULL, text, &m, err, sizeof(err)), 0);
	snprintf(want, sizeof(want), "%s/sub/k", f->dir);
	assert_string_equal(m->kernel, want);
	snprintf(want, sizeof(want), "%s/initrd.img", f->dir);
	assert_string_equal(m->initrd, want);
	snprintf(want, sizeof(want), "%s/rootfs.img", f->dir);
	assert_string_equal(m->rootfs, want);
	snprintf(want, sizeof(want), "%s/ws", f->dir);
	assert_string_equal(m->workspace, want);
	assert_int_equal(m->vmm, MANIFEST_VMM_FIRECRACKER);
	cfg = manifest_config(m);
	assert_non_null(cfg);
	assert_int_equal(cjson_dump(cfg, &s, &len), 0);
	snprintf(want, sizeof(want), "{\"cmdline\":\"\",\"envelope\":{},\"memory_mib\":65536,"
	    "\"name\":\"a.b-c:1\",\"vcpus\":32,\"vmm\":\"firecracker\",\"workspace\":\"%s/ws\"}",
	    f->dir);
	assert_string_equal(s, want);
	free(s);
	json_decref(cfg);
	manifest_free(m);

	/* From a subfolder, ".." that stays inside... the subfolder is the
	 * limit, so "../vmlinuz" escapes it. */
	m = NULL;
	snprintf(text, sizeof(text), "{\"name\":\"x\",\"kernel\":\"../vmlinuz\",\"initrd\":"
	    "\"x\",\"cmdline\":\"\",\"vcpus\":1,\"memory_mib\":64,\"vmm\":\"qemu\","
	    "\"envelope\":{}}");
	assert_int_equal(parse_in(f, "m", text, &m, err, sizeof(err)), -EPERM);
	assert_non_null(strstr(err, "field \"kernel\""));
	assert_non_null(strstr(err, "escapes"));
	assert_null(m);
}

static void
test_bad_fields(void **state)
{
	struct fixture *f = *state;
	char long_name[80], long_cmd[MANIFEST_CMDLINE_MAX + 8], envbuf[16384];
	size_t i, off;

	/* name */
	expect_bad(f, "name", NULL, -EINVAL, "required");
	expect_bad(f, "name", "\"\"", -EINVAL, NULL);
	expect_bad(f, "name", "\"-x\"", -EINVAL, NULL);
	expect_bad(f, "name", "\"a b\"", -EINVAL, NULL);
	expect_bad(f, "name", "\"a/b\"", -EINVAL, NULL);
	expect_bad(f, "name", "7", -EINVAL, "string");
	expect_bad(f, "name", "null", -EINVAL, NULL);
	long_name[0] = '"';
	memset(long_name + 1, 'a', 65);
	long_name[66] = '"';
	long_name[67] = '\0';
	expect_bad(f, "name", long_name, -EINVAL, "1..64");

	/* cmdline */
	expect_bad(f, "cmdline", NULL, -EINVAL, "required");
	expect_bad(f, "cmdline", "\"a\\nb\"", -EINVAL, "printable");
	expect_bad(f, "cmdline", "\"a\\tb\"", -EINVAL, "printable");
	expect_bad(f, "cmdline", "\"caf\\u00e9\"", -EINVAL, "printable");
	expect_bad(f, "cmdline", "\"\x7f\"", -EINVAL, "printable");
	expect_bad(f, "cmdline", "[\"a\"]", -EINVAL, "string");
	long_cmd[0] = '"';
	memset(long_cmd + 1, 'c', MANIFEST_CMDLINE_MAX + 1);
	long_cmd[MANIFEST_CMDLINE_MAX + 2] = '"';
	long_cmd[MANIFEST_CMDLINE_MAX + 3] = '\0';
	expect_bad(f, "cmdline", long_cmd, -E2BIG, "longer than 2048");

	/* vcpus, memory_mib */
	expect_bad(f, "vcpus", NULL, -EINVAL, "required");
	expect_bad(f, "vcpus", "0", -ERANGE, "must be an integer in 1..32");
	expect_bad(f, "vcpus", "33", -ERANGE, "1..32");
	expect_bad(f, "vcpus", "-1", -ERANGE, "1..32");
	expect_bad(f, "vcpus", "\"2\"", -EINVAL, "1..32");
	expect_bad(f, "vcpus", "true", -EINVAL, "1..32");
	expect_bad(f, "vcpus", "2.0", -EINVAL, "real numbers");
	expect_bad(f, "vcpus", "2e0", -EINVAL, "real numbers");
	expect_bad(f, "memory_mib", "63", -ERANGE, "64..65536");
	expect_bad(f, "memory_mib", "65537", -ERANGE, "64..65536");
	expect_bad(f, "memory_mib", NULL, -EINVAL, "required");

	/* vmm */
	expect_bad(f, "vmm", NULL, -EINVAL, "required");
	expect_bad(f, "vmm", "\"kvm\"", -EINVAL, "\"qemu\" or \"firecracker\"");
	expect_bad(f, "vmm", "\"QEMU\"", -EINVAL, NULL);
	expect_bad(f, "vmm", "1", -EINVAL, NULL);

	/* envelope */
	expect_bad(f, "envelope", NULL, -EINVAL, "required");
	expect_bad(f, "envelope", "[]", -EINVAL, "object");
	expect_bad(f, "envelope", "\"allow\"", -EINVAL, "object");
	expect_bad(f, "envelope", "{\"fs.read\":\"yes\"}", -EINVAL, "fs.read");
	expect_bad(f, "envelope", "{\"fs.read\":true}", -EINVAL, "fs.read");
	expect_bad(f, "envelope", "{\"fs.read\":{}}", -EINVAL, "\"level\"");
	expect_bad(f, "envelope", "{\"fs.read\":{\"level\":\"always\"}}", -EINVAL, "\"level\"");
	expect_bad(f, "envelope", "{\"fs.read\":{\"level\":\"ask\",\"max\":1.5}}", -EINVAL,
	    "real numbers");
	expect_bad(f, "envelope", "{\"bad op\":\"allow\"}", -EINVAL, "operation names");
	expect_bad(f, "envelope", "{\"\":\"allow\"}", -EINVAL, "operation names");
	expect_bad(f, "envelope", "{\"fs.read\":{\"level\":\"ask\",\"b\":[[[[[[[[1]]]]]]]]}}",
	    -EINVAL, "nesting");
	off = (size_t)snprintf(envbuf, sizeof(envbuf), "{");
	for (i = 0; i < 257; i++) {
		off += (size_t)snprintf(envbuf + off, sizeof(envbuf) - off, "%s\"op%zu\":\"allow\"",
		    i > 0 ? "," : "", i);
	}
	snprintf(envbuf + off, sizeof(envbuf) - off, "}");
	expect_bad(f, "envelope", envbuf, -E2BIG, "more than 256");
	/* What the envelope means (lib/envelope.c) is checked at load too. */
	expect_bad(f, "envelope", "{\"fs.reed\":\"allow\"}", -EINVAL,
	    "field \"envelope\": tool \"fs.reed\": unknown tool (known: exec, fs.list, fs.read, "
	    "fs.write)");
	expect_bad(f, "envelope", "{\"net.fetch\":\"never\"}", -EINVAL, "unknown tool");
	expect_bad(f, "envelope", "{\"fs.write\":{\"level\":\"ask\",\"max_bytes\":4096}}",
	    -EINVAL, "field \"envelope\": tool \"fs.write\": unknown bound \"max_bytes\"");
	expect_bad(f, "envelope", "{\"fs.write\":{\"level\":\"ask\",\"paths\":[\"/a/../b\"]}}",
	    -EINVAL, "\"paths\"[0]");
	expect_bad(f, "envelope", "{\"exec\":\"allow\"}", -EINVAL, "\"argv\" is required");
	expect_bad(f, "envelope", "{\"exec\":{\"level\":\"allow\",\"argv\":[[\"ls\"]],"
	    "\"timeout_ms\":0}}", -ERANGE, "1..600000");
	expect_bad(f, "envelope", "{\"fs.read\":{\"level\":\"allow\",\"budget\":-1}}", -ERANGE,
	    "budget");

	/* workspace */
	expect_bad(f, "workspace", "\"vmlinuz\"", -ENOTDIR, "not a directory");
	expect_bad(f, "workspace", "\"nope\"", -ENOENT, NULL);
	expect_bad(f, "workspace", "\"linkdir\"", -ELOOP, "symbolic link");
	expect_bad(f, "workspace", "\"..\"", -EPERM, "escapes");
	expect_bad(f, "workspace", "1", -EINVAL, "string");

	/* unknown fields, wrong spelling */
	expect_bad(f, "kernel_path", "\"vmlinuz\"", -EINVAL, "unknown field");
	expect_bad(f, "Name", "\"x\"", -EINVAL, "unknown field");
}

static void
test_bad_paths(void **state)
{
	struct fixture *f = *state;
	static const char *const fields[] = { "kernel", "initrd", "rootfs", NULL };
	size_t i;

	for (i = 0; fields[i] != NULL; i++) {
		const char *k = fields[i];

		expect_bad(f, k, "\"\"", -EINVAL, "empty");
		expect_bad(f, k, "\"nope\"", -ENOENT, "No such file");
		expect_bad(f, k, "\"..\"", -EPERM, "escapes");
		expect_bad(f, k, "\"../vmlinuz\"", -EPERM, "escapes");
		expect_bad(f, k, "\"sub/../../vmlinuz\"", -EPERM, "escapes");
		expect_bad(f, k, "\"./../x\"", -EPERM, "escapes");
		expect_bad(f, k, "\"/etc/../etc/passwd\"", -EINVAL, "\"..\"");
		expect_bad(f, k, "\".\"", -EISDIR, NULL);
		expect_bad(f, k, "\"sub/..\"", -EISDIR, NULL);
		expect_bad(f, k, "\"/\"", -EISDIR, NULL);
		expect_bad(f, k, "\"sub\"", -EINVAL, "not a regular file");
		expect_bad(f, k, "\"fifo\"", -EINVAL, "not a regular file");
		expect_bad(f, k, "\"link\"", -ELOOP, "symbolic link");
		expect_bad(f, k, "\"linkdir/k\"", -ELOOP, "symbolic link");
		expect_bad(f, k, "\"outside/passwd\"", -ELOOP, "symbolic link");
		expect_bad(f, k, "\"vmlinuz/x\"", -ENOTDIR, NULL);
		expect_bad(f, k, "[\"vmlinuz\"]", -EINVAL, "string");
		expect_bad(f, k, "{}", -EINVAL, "string");
	}
	expect_bad(f, "kernel", NULL, -EINVAL, "required");
	expect_bad(f, "initrd", NULL, -EINVAL, "required");
	expect_bad(f, "kernel", "\"big-kernel\"", -EFBIG, "over the limit");
}

static void
test_long_paths(void **state)
{
	struct fixture *f = *state;
	char *val = malloc(PATH_MAX + 16);

	assert_non_null(val);
	val[0] = '"';
	memset(val + 1, 'a', PATH_MAX);
	val[PATH_MAX + 1] = '"';
	val[PATH_MAX + 2] = '\0';
	expect_bad(f, "kernel", val, -ENAMETOOLONG, "longer than");
	/* Short enough alone, too long once joined to the folder. */
	memset(val + 1, 'a', PATH_MAX - 2);
	val[PATH_MAX - 1] = '"';
	val[PATH_MAX] = '\0';
	expect_bad(f, "kernel", val, -ENAMETOOLONG, NULL);
	/* Many tiny components. */
	for (size_t i = 1; i + 2 < PATH_MAX - 4; i += 2) {
		val[i] = 'a';
		val[i + 1] = '/';
	}
	expect_bad(f, "kernel", val, -ENAMETOOLONG, NULL);
	free(val);
}

static void
test_bad_documents(void **state)
{
	struct fixture *f = *state;
	static const struct { const char *text; const char *want; } cases[] = {
		{ "", "not valid JSON" },
		{ "[]", "must be a JSON object" },
		{ "\"x\"", "must be a JSON object" },
		{ "{\"name\":\"a\",\"name\":\"b\"}", "duplicate" },
		{ "{\"name\":\"a\"} {}", "not valid JSON" },
		{ "{\"name\":\"a\",}", "not valid JSON" },
		{ "{\"vcpus\":1.5}", "field \"vcpus\": real numbers" },
		{ "{\"name\":\"\xff\"}", "not valid JSON" },
		{ "{\"kernel\":\"a\\u0000b\"}", "not valid JSON" },
		{ "{\"vcpus\":99999999999999999999}", "too big integer" },
		{ "[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]", "nesting" },
	};
	struct manifest *m = NULL;
	char err[512];
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int r = parse_in(f, NULL, cases[i].text, &m, err, sizeof(err));

		assert_true(r < 0);
		assert_null(m);
		if (strstr(err, cases[i].want) == NULL) {
			print_error("case %zu: \"%s\" lacks \"%s\"\n", i, err, cases[i].want);
			fail();
		}
	}
	/* A NUL byte inside the buffer. */
	assert_int_equal(manifest_parse("{\"name\":\0}", 10, f->dir, &m, err, sizeof(err)),
	    -EINVAL);
	assert_non_null(strstr(err, "NUL"));
	/* A relative folder is refused. */
	assert_int_equal(manifest_parse("{}", 2, "rel", &m, err, sizeof(err)), -EINVAL);
	assert_null(m);
}

static void
test_huge_input(void **state)
{
	struct fixture *f = *state;
	struct manifest *m = NULL;
	char err[256];
	char *text = malloc(MANIFEST_MAX_BYTES + 2);
	char *pad;

	assert_non_null(text);
	memset(text, ' ', MANIFEST_MAX_BYTES + 1);
	memcpy(text, "{}", 2);
	text[MANIFEST_MAX_BYTES + 1] = '\0';
	assert_int_equal(manifest_parse(text, MANIFEST_MAX_BYTES + 1, f->dir, &m, err,
	    sizeof(err)), -EFBIG);
	assert_non_null(strstr(err, "65536"));
	/* Exactly at the cap: parsed (and refused for what it says). */
	assert_int_equal(manifest_parse(text, MANIFEST_MAX_BYTES, f->dir, &m, err, sizeof(err)),
	    -EINVAL);
	assert_non_null(strstr(err, "required"));
	free(text);

	/* A good manifest padded with whitespace up to the cap still parses. */
	text = manifest_with(NULL, NULL);
	pad = calloc(1, MANIFEST_MAX_BYTES + 1);
	assert_non_null(pad);
	memset(pad, ' ', MANIFEST_MAX_BYTES);
	memcpy(pad, text, strlen(text));
	assert_int_equal(manifest_parse(pad, MANIFEST_MAX_BYTES, f->dir, &m, err, sizeof(err)), 0);
	manifest_free(m);
	free(pad);
	free(text);
}

static void
test_load(void **state)
{
	struct fixture *f = *state;
	struct manifest *m = NULL;
	char path[PATH_MAX + 32], link[PATH_MAX + 32], want[PATH_MAX + 32], err[512], cwd[PATH_MAX];
	char *text = manifest_with("kernel", "\"../vmlinuz\"");
	FILE *fp;

	/* In the subfolder m, "../vmlinuz" escapes. */
	snprintf(path, sizeof(path), "%s/m/manifest.json", f->dir);
	fp = fopen(path, "w");
	assert_non_null(fp);
	fputs(text, fp);
	fclose(fp);
	free(text);
	assert_int_equal(manifest_load(path, &m, err, sizeof(err)), -EPERM);
	assert_non_null(strstr(err, "field \"kernel\""));

	/* In the top folder, relative to it, via a relative manifest path. */
	text = manifest_with(NULL, NULL);
	snprintf(path, sizeof(path), "%s/manifest.json", f->dir);
	fp = fopen(path, "w");
	assert_non_null(fp);
	fputs(text, fp);
	fclose(fp);
	free(text);
	assert_non_null(getcwd(cwd, sizeof(cwd)));
	assert_int_equal(chdir(f->dir), 0);
	assert_int_equal(manifest_load("manifest.json", &m, err, sizeof(err)), 0);
	assert_int_equal(chdir(cwd), 0);
	snprintf(want, sizeof(want), "%s/vmlinuz", f->dir);
	assert_string_equal(m->kernel, want);
	manifest_free(m);
	m = NULL;

	/* A symlinked manifest, a missing one, a folder. */
	snprintf(link, sizeof(link), "%s/m/link.json", f->dir);
	assert_int_equal(symlink(path, link), 0);
	assert_int_equal(manifest_load(link, &m, err, sizeof(err)), -ELOOP);
	assert_non_null(strstr(err, "symbolic link"));
	snprintf(path, sizeof(path), "%s/none.json", f->dir);
	assert_int_equal(manifest_load(path, &m, err, sizeof(err)), -ENOENT);
	assert_int_equal(manifest_load(f->dir, &m, err, sizeof(err)), -EINVAL);
	assert_null(m);

	/* Over the size cap on disk. */
	write_file(f->dir, "huge.json", MANIFEST_MAX_BYTES + 1);
	snprintf(path, sizeof(path), "%s/huge.json", f->dir);
	assert_int_equal(manifest_load(path, &m, err, sizeof(err)), -EFBIG);
	assert_null(m);
}

static void
test_check_config(void **state)
{
	struct fixture *f = *state;
	static const struct { const char *text; int ok; const char *want; } cases[] = {
		{ "{\"cmdline\":\"\",\"envelope\":{},\"memory_mib\":64,\"name\":\"a\",\"vcpus\":1,"
		  "\"vmm\":\"qemu\"}", 1, NULL },
		{ "{\"cmdline\":\"x\",\"envelope\":{\"fs.read\":{\"level\":\"ask\","
		  "\"paths\":[\"/in/\"]}},\"memory_mib\":64,\"name\":\"a\",\"vcpus\":1,"
		  "\"vmm\":\"firecracker\",\"workspace\":\"/srv/w\"}", 1, NULL },
		/* attestd checks a launch's envelope as strictly as a manifest's */
		{ "{\"cmdline\":\"x\",\"envelope\":{\"a\":{\"level\":\"ask\",\"b\":[1]}},"
		  "\"memory_mib\":64,\"name\":\"a\",\"vcpus\":1,\"vmm\":\"firecracker\","
		  "\"workspace\":\"/srv/w\"}", 0, "unknown tool" },
		{ "{\"cmdline\":\"x\",\"envelope\":{\"exec\":\"allow\"},"
		  "\"memory_mib\":64,\"name\":\"a\",\"vcpus\":1,\"vmm\":\"qemu\"}", 0,
		  "field \"envelope\"" },
		{ "{\"cmdline\":\"\",\"envelope\":{},\"memory_mib\":64,\"name\":\"a\",\"vcpus\":1,"
		  "\"vmm\":\"qemu\",\"kernel\":\"/k\"}", 0, "field \"kernel\": unknown field" },
		{ "{\"cmdline\":\"\",\"envelope\":{},\"memory_mib\":64,\"name\":\"a\",\"vcpus\":0,"
		  "\"vmm\":\"qemu\"}", 0, "field \"vcpus\"" },
		{ "{\"envelope\":{},\"memory_mib\":64,\"name\":\"a\",\"vcpus\":1,\"vmm\":\"qemu\"}",
		  0, "field \"cmdline\"" },
		{ "{\"cmdline\":\"\",\"envelope\":{\"op\":\"yes\"},\"memory_mib\":64,\"name\":\"a\","
		  "\"vcpus\":1,\"vmm\":\"qemu\"}", 0, "field \"envelope\"" },
		{ "{\"cmdline\":\"\",\"envelope\":{},\"memory_mib\":64,\"name\":\"a\",\"vcpus\":1,"
		  "\"vmm\":\"qemu\",\"workspace\":\"rel\"}", 0, "field \"workspace\"" },
		{ "{\"cmdline\":\"\",\"envelope\":{},\"memory_mib\":64,\"name\":\"a\",\"vcpus\":1,"
		  "\"vmm\":\"qemu\",\"workspace\":\"/a/../b\"}", 0, "field \"workspace\"" },
		{ "{\"cmdline\":\"\",\"envelope\":{},\"memory_mib\":64,\"name\":\"a\",\"vcpus\":1,"
		  "\"vmm\":\"qemu\",\"workspace\":\"/a//b\"}", 0, "field \"workspace\"" },
		{ "{\"cmdline\":\"\",\"envelope\":{},\"memory_mib\":64,\"name\":\"a\",\"vcpus\":1,"
		  "\"vmm\":\"qemu\",\"workspace\":\"/a/.\"}", 0, "field \"workspace\"" },
		{ "{\"cmdline\":\"\",\"envelope\":{},\"memory_mib\":64,\"name\":\"a\",\"vcpus\":1,"
		  "\"vmm\":\"qemu\",\"workspace\":\"/\"}", 0, "field \"workspace\"" },
		{ "[]", 0, "object" },
	};
	struct manifest *m = NULL;
	char err[512], *text = manifest_with(NULL, NULL);
	json_t *cfg, *j;
	size_t i;

	/* What manifest_config makes passes. */
	assert_int_equal(parse_in(f, NULL, text, &m, err, sizeof(err)), 0);
	cfg = manifest_config(m);
	assert_non_null(cfg);
	assert_int_equal(manifest_check_config(cfg, err, sizeof(err)), 0);
	json_decref(cfg);
	manifest_free(m);
	free(text);
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int r;

		assert_int_equal(cjson_parse(cases[i].text, strlen(cases[i].text), 65536, &j), 0);
		r = manifest_check_config(j, err, sizeof(err));
		json_decref(j);
		if ((r == 0) != cases[i].ok || (cases[i].want != NULL && strstr(err, cases[i].want) == NULL)) {
			print_error("case %zu: r=%d err=\"%s\"\n", i, r, err);
			fail();
		}
	}
	assert_true(manifest_check_config(NULL, err, sizeof(err)) < 0);
}

static void
test_envelope_level(void **state)
{
	const char *text = "{\"a\":\"allow\",\"b\":\"ask\",\"c\":\"never\","
	    "\"d\":{\"level\":\"allow\",\"max\":1},\"e\":{\"level\":\"never\"}}";
	json_t *env;

	(void)state;
	assert_int_equal(cjson_parse(text, strlen(text), 4096, &env), 0);
	assert_int_equal(manifest_envelope_level(env, "a"), MANIFEST_LEVEL_ALLOW);
	assert_int_equal(manifest_envelope_level(env, "b"), MANIFEST_LEVEL_ASK);
	assert_int_equal(manifest_envelope_level(env, "c"), MANIFEST_LEVEL_NEVER);
	assert_int_equal(manifest_envelope_level(env, "d"), MANIFEST_LEVEL_ALLOW);
	assert_int_equal(manifest_envelope_level(env, "e"), MANIFEST_LEVEL_NEVER);
	assert_int_equal(manifest_envelope_level(env, "absent"), MANIFEST_LEVEL_NEVER);
	assert_int_equal(manifest_envelope_level(NULL, "a"), MANIFEST_LEVEL_NEVER);
	json_decref(env);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_good_manifest, setup, teardown),
		cmocka_unit_test_setup_teardown(test_optional_fields_and_paths, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_fields, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_paths, setup, teardown),
		cmocka_unit_test_setup_teardown(test_long_paths, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_documents, setup, teardown),
		cmocka_unit_test_setup_teardown(test_huge_input, setup, teardown),
		cmocka_unit_test_setup_teardown(test_load, setup, teardown),
		cmocka_unit_test_setup_teardown(test_check_config, setup, teardown),
		cmocka_unit_test(test_envelope_level),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
