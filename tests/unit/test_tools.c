/* Unit tests for vmhost/tools.c: the confinement of the fs tools to the
 * workspace (.., absolute and relative symbolic links, a link swapped in
 * while calls run, /proc magic links, hard links, FIFOs, sizes) and exec
 * (no shell, clean environment, workspace as cwd, descriptors closed,
 * timeout with the process group, output cap). Every case works in a
 * private temporary folder: "ws" is the workspace, "out" is outside it. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cjson.h"
#include "../../vmhost/tools.h"

#define RACE_ITERATIONS 3000

struct fx {
	char root[PATH_MAX];
	char ws[PATH_MAX];
	char out[PATH_MAX];
	struct tools *t;
};

static void
pathf(char *buf, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void
pathf(char *buf, size_t n, const char *fmt, ...)
{
	va_list ap;
	int k;

	va_start(ap, fmt);
	k = vsnprintf(buf, n, fmt, ap);
	va_end(ap);
	assert_true(k > 0 && (size_t)k < n);
}

static void
put_file(const char *path, const char *data)
{
	FILE *f = fopen(path, "we");

	assert_non_null(f);
	assert_int_equal(fwrite(data, 1, strlen(data), f), strlen(data));
	assert_int_equal(fclose(f), 0);
}

static int
setup(void **state)
{
	struct tools_config c = { NULL, 4096, 0, 0 };
	const char *tmp = getenv("TMPDIR");
	struct fx *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	pathf(f->root, sizeof(f->root), "%s/test-tools.XXXXXX", tmp != NULL ? tmp : "/tmp");
	assert_non_null(mkdtemp(f->root));
	pathf(f->ws, sizeof(f->ws), "%s/ws", f->root);
	pathf(f->out, sizeof(f->out), "%s/out", f->root);
	assert_int_equal(mkdir(f->ws, 0700), 0);
	assert_int_equal(mkdir(f->out, 0700), 0);
	c.workspace = f->ws;
	assert_int_equal(tools_new(&c, &f->t), 0);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;
	char cmd[PATH_MAX + 16];

	tools_free(f->t);
	pathf(cmd, sizeof(cmd), "rm -rf '%s'", f->root);
	assert_int_equal(system(cmd), 0);
	free(f);
	return 0;
}

/* Prepare and run one call; the error code (NULL on success). */
static const char *
call(struct fx *f, const char *tool, const char *args_json, json_t **ret_result,
    const struct tools_limits *lim)
{
	static struct tools_error err;
	const struct tool *t = tools_find(tool);
	json_t *args = NULL, *prep = NULL, *res = NULL;
	int r;

	assert_non_null(t);
	assert_int_equal(cjson_parse(args_json, strlen(args_json), 65536, &args), 0);
	memset(&err, 0, sizeof(err));
	r = tools_prepare(t, args, &prep, &err);
	json_decref(args);
	if (r != 0) {
		assert_non_null(err.code);
		return err.code;
	}
	r = tools_run(f->t, t, prep, lim, &res, &err);
	json_decref(prep);
	if (r != 0) {
		assert_non_null(err.code);
		if (getenv("TOOLS_TEST_VERBOSE") != NULL) {
			print_message("%s %s: %s: %s\n", tool, args_json, err.code, err.detail);
		}
		return err.code;
	}
	if (ret_result != NULL) {
		*ret_result = res;
	} else {
		json_decref(res);
	}
	return NULL;
}

static bool
exists(const char *dir, const char *leaf)
{
	char p[PATH_MAX];
	struct stat st;

	pathf(p, sizeof(p), "%s/%s", dir, leaf);
	return lstat(p, &st) == 0;
}

/* --- paths ---------------------------------------------------------------- */

static void
test_normalize(void **state)
{
	static const struct {
		const char *in, *out;
		int r;
	} cases[] = {
		{ "/", "/", 0 }, { "//", "/", 0 }, { "/a", "/a", 0 }, { "/a/", "/a", 0 },
		{ "/a//b/./c/", "/a/b/c", 0 }, { "/a/../b", "/b", 0 }, { "/a/b/../..", "/", 0 },
		{ "/./.", "/", 0 }, { "/..", NULL, -EXDEV }, { "/a/../..", NULL, -EXDEV },
		{ "/a/../../etc/passwd", NULL, -EXDEV }, { "a", NULL, -EINVAL },
		{ "", NULL, -EINVAL }, { "./a", NULL, -EINVAL }, { "/...", "/...", 0 },
		{ "/..a/b..", "/..a/b..", 0 },
	};
	char out[TOOLS_PATH_MAX + 2], big[TOOLS_PATH_MAX + 8];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int r = tools_path_normalize(cases[i].in, strlen(cases[i].in), out, sizeof(out));

		assert_int_equal(r, cases[i].r);
		if (r == 0) {
			assert_string_equal(out, cases[i].out);
		}
	}
	/* A NUL inside, an over-long path, an over-long name, a small buffer. */
	assert_int_equal(tools_path_normalize("/a\0b", 4, out, sizeof(out)), -EINVAL);
	memset(big, 'a', sizeof(big));
	big[0] = '/';
	assert_int_equal(tools_path_normalize(big, TOOLS_PATH_MAX + 1, out, sizeof(out)),
	    -ENAMETOOLONG);
	assert_int_equal(tools_path_normalize(big, NAME_MAX + 2, out, sizeof(out)), -ENAMETOOLONG);
	assert_int_equal(tools_path_normalize(big, NAME_MAX + 1, out, sizeof(out)), 0);
	assert_int_equal(tools_path_normalize("/abc", 4, out, 4), -ENOBUFS);
}

static void
test_table(void **state)
{
	size_t i;

	(void)state;
	assert_int_equal(tools_count(), 4);
	for (i = 0; i < tools_count(); i++) {
		assert_ptr_equal(tools_find(tools_at(i)->name), tools_at(i));
	}
	assert_null(tools_find("fs.delete"));
	assert_null(tools_find(NULL));
	assert_null(tools_at(tools_count()));
}

static void
test_prepare_normalizes(void **state)
{
	struct tools_error err;
	json_t *args, *prep = NULL;

	(void)state;
	args = json_pack("{s:s, s:s}", "path", "/a/./b/../c.txt", "data", "x");
	assert_int_equal(tools_prepare(tools_find("fs.write"), args, &prep, &err), 0);
	assert_string_equal(json_string_value(json_object_get(prep, "path")), "/a/c.txt");
	json_decref(prep);
	json_decref(args);
}

static void
test_bad_arguments(void **state)
{
	struct fx *f = *state;

	assert_string_equal(call(f, "fs.read", "{}", NULL, NULL), "bad_request");
	assert_string_equal(call(f, "fs.read", "{\"path\":1}", NULL, NULL), "bad_request");
	assert_string_equal(call(f, "fs.read", "{\"path\":\"/x\",\"mode\":1}", NULL, NULL),
	    "bad_request");
	assert_string_equal(call(f, "fs.read", "{\"path\":\"x\"}", NULL, NULL), "bad_request");
	assert_string_equal(call(f, "fs.write", "{\"path\":\"/x\"}", NULL, NULL), "bad_request");
	assert_string_equal(call(f, "fs.write", "{\"path\":\"/x\",\"data\":[]}", NULL, NULL),
	    "bad_request");
	assert_string_equal(call(f, "fs.write", "{\"path\":\"/\",\"data\":\"\"}", NULL, NULL),
	    "bad_request");
	assert_string_equal(call(f, "exec", "{}", NULL, NULL), "bad_request");
	assert_string_equal(call(f, "exec", "{\"argv\":[]}", NULL, NULL), "bad_request");
	assert_string_equal(call(f, "exec", "{\"argv\":\"ls\"}", NULL, NULL), "bad_request");
	assert_string_equal(call(f, "exec", "{\"argv\":[\"\"]}", NULL, NULL), "bad_request");
	assert_string_equal(call(f, "exec", "{\"argv\":[\"ls\",1]}", NULL, NULL), "bad_request");
	assert_string_equal(call(f, "exec", "{\"argv\":[\"./run\"]}", NULL, NULL), "bad_request");
	assert_string_equal(call(f, "exec", "{\"argv\":[\"true\"],\"env\":{}}", NULL, NULL),
	    "bad_request");
}

/* --- fs ------------------------------------------------------------------- */

static void
test_write_read_list(void **state)
{
	struct fx *f = *state;
	json_t *res = NULL, *e;
	char p[PATH_MAX];
	struct stat st;

	assert_null(call(f, "fs.write", "{\"path\":\"/notes.txt\",\"data\":\"hello\\n\"}", &res,
	    NULL));
	assert_int_equal(json_integer_value(json_object_get(res, "size")), 6);
	json_decref(res);
	pathf(p, sizeof(p), "%s/notes.txt", f->ws);
	assert_int_equal(stat(p, &st), 0);
	assert_int_equal(st.st_size, 6);
	{
		mode_t mask = umask(0);

		(void)umask(mask);
		assert_int_equal(st.st_mode & 0777, 0644 & ~mask);
	}

	assert_null(call(f, "fs.read", "{\"path\":\"/notes.txt\"}", &res, NULL));
	assert_string_equal(json_string_value(json_object_get(res, "text")), "hello\n");
	assert_int_equal(json_integer_value(json_object_get(res, "size")), 6);
	assert_null(json_object_get(res, "data"));
	json_decref(res);

	/* Truncates. */
	assert_null(call(f, "fs.write", "{\"path\":\"/notes.txt\",\"data\":\"hi\"}", NULL, NULL));
	assert_null(call(f, "fs.read", "{\"path\":\"/./sub/../notes.txt\"}", &res, NULL));
	assert_string_equal(json_string_value(json_object_get(res, "text")), "hi");
	json_decref(res);

	/* Binary: base64 with padding. */
	pathf(p, sizeof(p), "%s/bin", f->ws);
	{
		FILE *fp = fopen(p, "we");

		assert_non_null(fp);
		assert_int_equal(fwrite("\x00\xff\x01", 1, 3, fp), 3);
		assert_int_equal(fclose(fp), 0);
	}
	assert_null(call(f, "fs.read", "{\"path\":\"/bin\"}", &res, NULL));
	assert_string_equal(json_string_value(json_object_get(res, "data")), "AP8B");
	assert_null(json_object_get(res, "text"));
	json_decref(res);

	pathf(p, sizeof(p), "%s/dir", f->ws);
	assert_int_equal(mkdir(p, 0700), 0);
	assert_null(call(f, "fs.list", "{\"path\":\"/\"}", &res, NULL));
	e = json_object_get(res, "entries");
	assert_int_equal(json_array_size(e), 3);
	assert_string_equal(json_string_value(json_object_get(json_array_get(e, 0), "name")), "bin");
	assert_string_equal(json_string_value(json_object_get(json_array_get(e, 1), "name")), "dir");
	assert_string_equal(json_string_value(json_object_get(json_array_get(e, 1), "type")), "dir");
	assert_string_equal(json_string_value(json_object_get(json_array_get(e, 2), "type")), "file");
	assert_int_equal(json_integer_value(json_object_get(json_array_get(e, 2), "size")), 2);
	json_decref(res);

	assert_string_equal(call(f, "fs.read", "{\"path\":\"/missing\"}", NULL, NULL), "tool_failed");
	assert_string_equal(call(f, "fs.read", "{\"path\":\"/dir\"}", NULL, NULL), "tool_failed");
	assert_string_equal(call(f, "fs.list", "{\"path\":\"/bin\"}", NULL, NULL), "tool_failed");
	assert_string_equal(call(f, "fs.write", "{\"path\":\"/nodir/x\",\"data\":\"\"}", NULL, NULL),
	    "tool_failed");
}

static void
test_dotdot_escape(void **state)
{
	struct fx *f = *state;

	assert_string_equal(call(f, "fs.write", "{\"path\":\"/../out/x\",\"data\":\"pwned\"}", NULL,
	    NULL), "denied");
	assert_string_equal(call(f, "fs.write", "{\"path\":\"/a/../../out/x\",\"data\":\"p\"}", NULL,
	    NULL), "denied");
	assert_string_equal(call(f, "fs.read", "{\"path\":\"/../../../../etc/passwd\"}", NULL, NULL),
	    "denied");
	assert_string_equal(call(f, "fs.list", "{\"path\":\"/..\"}", NULL, NULL), "denied");
	assert_false(exists(f->out, "x"));
}

static void
test_symlinks(void **state)
{
	struct fx *f = *state;
	char p[PATH_MAX], target[PATH_MAX];

	pathf(target, sizeof(target), "%s/secret", f->out);
	put_file(target, "secret\n");
	/* An absolute link to a folder outside, and to a file outside. */
	pathf(p, sizeof(p), "%s/abs", f->ws);
	assert_int_equal(symlink(f->out, p), 0);
	pathf(p, sizeof(p), "%s/absfile", f->ws);
	assert_int_equal(symlink(target, p), 0);
	/* A relative link climbing out. */
	pathf(p, sizeof(p), "%s/rel", f->ws);
	assert_int_equal(symlink("../out", p), 0);
	/* A relative link that stays inside is refused too: no links at all. */
	pathf(p, sizeof(p), "%s/inner", f->ws);
	assert_int_equal(mkdir(p, 0700), 0);
	pathf(p, sizeof(p), "%s/inlink", f->ws);
	assert_int_equal(symlink("inner", p), 0);
	/* A dangling link whose target would be created outside. */
	pathf(p, sizeof(p), "%s/dangling", f->ws);
	pathf(target, sizeof(target), "%s/created", f->out);
	assert_int_equal(symlink(target, p), 0);

	assert_string_equal(call(f, "fs.read", "{\"path\":\"/abs/secret\"}", NULL, NULL), "denied");
	assert_string_equal(call(f, "fs.read", "{\"path\":\"/absfile\"}", NULL, NULL), "denied");
	assert_string_equal(call(f, "fs.read", "{\"path\":\"/rel/secret\"}", NULL, NULL), "denied");
	assert_string_equal(call(f, "fs.list", "{\"path\":\"/rel\"}", NULL, NULL), "denied");
	assert_string_equal(call(f, "fs.list", "{\"path\":\"/inlink\"}", NULL, NULL), "denied");
	assert_string_equal(call(f, "fs.write", "{\"path\":\"/abs/new\",\"data\":\"x\"}", NULL, NULL),
	    "denied");
	assert_string_equal(call(f, "fs.write", "{\"path\":\"/absfile\",\"data\":\"x\"}", NULL, NULL),
	    "denied");
	assert_string_equal(call(f, "fs.write", "{\"path\":\"/dangling\",\"data\":\"x\"}", NULL,
	    NULL), "denied");
	assert_string_equal(call(f, "fs.write", "{\"path\":\"/rel/new\",\"data\":\"x\"}", NULL, NULL),
	    "denied");
	assert_false(exists(f->out, "new"));
	assert_false(exists(f->out, "created"));
	{
		char buf[16] = "";
		FILE *fp;

		pathf(target, sizeof(target), "%s/secret", f->out);
		fp = fopen(target, "re");
		assert_non_null(fp);
		assert_non_null(fgets(buf, sizeof(buf), fp));
		fclose(fp);
		assert_string_equal(buf, "secret\n");
	}
	/* fs.list shows a link as a link, without following it. */
	{
		json_t *res = NULL, *e;
		size_t i;

		assert_null(call(f, "fs.list", "{\"path\":\"/\"}", &res, NULL));
		json_array_foreach(json_object_get(res, "entries"), i, e) {
			const char *n = json_string_value(json_object_get(e, "name"));

			if (strcmp(n, "inner") != 0) {
				assert_string_equal(json_string_value(json_object_get(e, "type")), "symlink");
			}
		}
		json_decref(res);
	}
}

static void
test_proc_magic_links(void **state)
{
	struct fx *f = *state;
	char p[PATH_MAX], t[64];
	int fd;

	/* Links into /proc, whose targets are "magic": /proc/self/root is
	 * the root of the file system, /proc/self/fd/N an open descriptor. */
	pathf(p, sizeof(p), "%s/root", f->ws);
	assert_int_equal(symlink("/proc/self/root", p), 0);
	fd = open(f->out, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_true(fd >= 0);
	pathf(t, sizeof(t), "/proc/self/fd/%d", fd);
	pathf(p, sizeof(p), "%s/fd", f->ws);
	assert_int_equal(symlink(t, p), 0);
	pathf(p, sizeof(p), "%s/cwd", f->ws);
	assert_int_equal(symlink("/proc/self/cwd", p), 0);

	assert_string_equal(call(f, "fs.read", "{\"path\":\"/root/etc/passwd\"}", NULL, NULL),
	    "denied");
	assert_string_equal(call(f, "fs.list", "{\"path\":\"/root\"}", NULL, NULL), "denied");
	assert_string_equal(call(f, "fs.write", "{\"path\":\"/fd/magic\",\"data\":\"x\"}", NULL,
	    NULL), "denied");
	assert_string_equal(call(f, "fs.list", "{\"path\":\"/cwd\"}", NULL, NULL), "denied");
	assert_false(exists(f->out, "magic"));
	(void)close(fd);
}

static void
test_hard_link_and_fifo(void **state)
{
	struct fx *f = *state;
	char p[PATH_MAX], t[PATH_MAX];
	struct timespec a, b;

	pathf(t, sizeof(t), "%s/shadow", f->out);
	put_file(t, "outside\n");
	pathf(p, sizeof(p), "%s/hard", f->ws);
	assert_int_equal(link(t, p), 0);
	assert_string_equal(call(f, "fs.read", "{\"path\":\"/hard\"}", NULL, NULL), "denied");
	assert_string_equal(call(f, "fs.write", "{\"path\":\"/hard\",\"data\":\"x\"}", NULL, NULL),
	    "denied");
	{
		struct stat st;

		assert_int_equal(stat(t, &st), 0);
		assert_int_equal(st.st_size, 8);   /* not truncated */
	}
	/* A FIFO holds neither a read nor a write up. */
	pathf(p, sizeof(p), "%s/fifo", f->ws);
	assert_int_equal(mkfifo(p, 0600), 0);
	clock_gettime(CLOCK_MONOTONIC, &a);
	assert_string_equal(call(f, "fs.read", "{\"path\":\"/fifo\"}", NULL, NULL), "tool_failed");
	assert_string_equal(call(f, "fs.write", "{\"path\":\"/fifo\",\"data\":\"x\"}", NULL, NULL),
	    "tool_failed");
	clock_gettime(CLOCK_MONOTONIC, &b);
	assert_true(b.tv_sec - a.tv_sec < 2);
}

static void
test_sizes(void **state)
{
	struct fx *f = *state;
	char *args, p[PATH_MAX], *big;
	size_t n = 5000;   /* over the fixture's file_max of 4096 */

	big = malloc(n + 1);
	assert_non_null(big);
	memset(big, 'a', n);
	big[n] = '\0';
	assert_true(asprintf(&args, "{\"path\":\"/big\",\"data\":\"%s\"}", big) > 0);
	assert_string_equal(call(f, "fs.write", args, NULL, NULL), "too_large");
	assert_false(exists(f->ws, "big"));
	free(args);
	pathf(p, sizeof(p), "%s/big", f->ws);
	put_file(p, big);
	assert_string_equal(call(f, "fs.read", "{\"path\":\"/big\"}", NULL, NULL), "too_large");
	big[4096] = '\0';
	put_file(p, big);
	assert_null(call(f, "fs.read", "{\"path\":\"/big\"}", NULL, NULL));
	free(big);
}

static void
test_no_workspace(void **state)
{
	struct tools_config c = { NULL, 0, 0, 0 };
	struct tools_error err;
	struct tools *t = NULL;
	json_t *args, *prep = NULL, *res = NULL;

	(void)state;
	assert_int_equal(tools_new(&c, &t), 0);
	assert_false(tools_has_workspace(t));
	args = json_pack("{s:s}", "path", "/");
	assert_int_equal(tools_prepare(tools_find("fs.list"), args, &prep, &err), 0);
	assert_int_equal(tools_run(t, tools_find("fs.list"), prep, NULL, &res, &err), -EPERM);
	assert_string_equal(err.code, "denied");
	assert_non_null(strstr(err.detail, "no workspace"));
	json_decref(prep);
	json_decref(args);
	tools_free(t);
	c.workspace = "/nonexistent/warrant-ws";
	assert_int_equal(tools_new(&c, &t), -ENOENT);
	c.workspace = "/etc/passwd";
	assert_int_equal(tools_new(&c, &t), -ENOTDIR);
}

/* A thread swaps "d" between a real folder and a link to the outside
 * (renameat2 RENAME_EXCHANGE: atomic) while calls write through it. */
struct race {
	struct fx *f;
	atomic_bool stop;
	unsigned swaps;
};

static void *
swapper(void *arg)
{
	struct race *r = arg;
	int dfd = open(r->f->ws, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	assert_true(dfd >= 0);
	while (!atomic_load(&r->stop)) {
		if (renameat2(dfd, "d", dfd, "link", RENAME_EXCHANGE) == 0) {
			r->swaps++;
		}
	}
	(void)close(dfd);
	return NULL;
}

static void
test_symlink_race(void **state)
{
	struct fx *f = *state;
	struct race r;
	pthread_t th;
	char p[PATH_MAX];
	unsigned ok = 0, denied = 0, other = 0, i;

	pathf(p, sizeof(p), "%s/d", f->ws);
	assert_int_equal(mkdir(p, 0700), 0);
	pathf(p, sizeof(p), "%s/link", f->ws);
	assert_int_equal(symlink(f->out, p), 0);
	memset(&r, 0, sizeof(r));
	r.f = f;
	atomic_init(&r.stop, false);
	assert_int_equal(pthread_create(&th, NULL, swapper, &r), 0);
	for (i = 0; i < RACE_ITERATIONS; i++) {
		const char *code = call(f, i % 2 == 0 ? "fs.write" : "fs.read",
		    i % 2 == 0 ? "{\"path\":\"/d/victim\",\"data\":\"x\"}" : "{\"path\":\"/d/victim\"}",
		    NULL, NULL);

		if (code == NULL) {
			ok++;
		} else if (strcmp(code, "denied") == 0) {
			denied++;
		} else {
			other++;   /* ENOENT: "d" was the link's name for a moment */
		}
	}
	atomic_store(&r.stop, true);
	assert_int_equal(pthread_join(th, NULL), 0);
	print_message("race: %u swaps, %u written or read, %u refused as links, %u other\n",
	    r.swaps, ok, denied, other);
	assert_true(r.swaps > 0);
	assert_true(ok > 0 || denied > 0);
	assert_false(exists(f->out, "victim"));
}

/* --- exec ----------------------------------------------------------------- */

static void
test_exec_basic(void **state)
{
	struct fx *f = *state;
	json_t *res = NULL;

	assert_null(call(f, "exec", "{\"argv\":[\"echo\",\"hello\",\"$HOME;id\"]}", &res, NULL));
	assert_int_equal(json_integer_value(json_object_get(res, "status")), 0);
	/* No shell: the metacharacters are bytes of an argument. */
	assert_string_equal(json_string_value(json_object_get(res, "stdout")), "hello $HOME;id\n");
	assert_string_equal(json_string_value(json_object_get(res, "stderr")), "");
	assert_false(json_is_true(json_object_get(res, "truncated")));
	json_decref(res);

	assert_null(call(f, "exec", "{\"argv\":[\"/usr/bin/env\"]}", &res, NULL));
	assert_string_equal(json_string_value(json_object_get(res, "stdout")),
	    "PATH=/usr/bin:/bin\n");
	json_decref(res);

	assert_null(call(f, "exec", "{\"argv\":[\"pwd\"]}", &res, NULL));
	{
		char want[PATH_MAX + 2], real[PATH_MAX];

		assert_non_null(realpath(f->ws, real));
		pathf(want, sizeof(want), "%s\n", real);
		assert_string_equal(json_string_value(json_object_get(res, "stdout")), want);
	}
	json_decref(res);

	/* stdin is /dev/null: cat ends at once. */
	assert_null(call(f, "exec", "{\"argv\":[\"cat\"]}", &res, NULL));
	assert_string_equal(json_string_value(json_object_get(res, "stdout")), "");
	json_decref(res);

	/* Only 0, 1 and 2 are open in the child. */
	assert_null(call(f, "exec", "{\"argv\":[\"sh\",\"-c\",\"ls /proc/$$/fd\"]}", &res, NULL));
	assert_string_equal(json_string_value(json_object_get(res, "stdout")), "0\n1\n2\n");
	json_decref(res);

	assert_null(call(f, "exec", "{\"argv\":[\"sh\",\"-c\",\"echo err >&2; exit 3\"]}", &res,
	    NULL));
	assert_int_equal(json_integer_value(json_object_get(res, "status")), 3);
	assert_string_equal(json_string_value(json_object_get(res, "stderr")), "err\n");
	json_decref(res);

	assert_null(call(f, "exec", "{\"argv\":[\"sh\",\"-c\",\"kill -TERM $$\"]}", &res, NULL));
	assert_int_equal(json_integer_value(json_object_get(res, "status")), 128 + 15);
	json_decref(res);

	assert_string_equal(call(f, "exec", "{\"argv\":[\"no-such-command-warrant\"]}", NULL, NULL),
	    "tool_failed");
	assert_string_equal(call(f, "exec", "{\"argv\":[\"/nonexistent/x\"]}", NULL, NULL),
	    "tool_failed");
}

static void
test_exec_timeout(void **state)
{
	struct fx *f = *state;
	struct tools_limits lim = { 300, 0 };
	struct timespec a, b;
	double took;

	clock_gettime(CLOCK_MONOTONIC, &a);
	/* A background child in the same group holds the output open: the
	 * whole group is killed at the timeout. */
	assert_string_equal(call(f, "exec", "{\"argv\":[\"sh\",\"-c\",\"sleep 30 & sleep 30\"]}",
	    NULL, &lim), "tool_failed");
	clock_gettime(CLOCK_MONOTONIC, &b);
	took = (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9;
	print_message("timeout 300 ms: returned after %.3f s\n", took);
	assert_true(took >= 0.29 && took < 2.0);
	/* A process that closes its output but keeps running is still
	 * killed at the timeout. */
	clock_gettime(CLOCK_MONOTONIC, &a);
	assert_string_equal(call(f, "exec",
	    "{\"argv\":[\"sh\",\"-c\",\"exec >/dev/null 2>&1; sleep 30\"]}", NULL, &lim),
	    "tool_failed");
	clock_gettime(CLOCK_MONOTONIC, &b);
	took = (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9;
	assert_true(took < 2.0);
}

static void
test_exec_output_cap(void **state)
{
	struct fx *f = *state;
	struct tools_limits lim = { 0, 1000 };
	json_t *res = NULL;
	const char *out;

	assert_null(call(f, "exec", "{\"argv\":[\"head\",\"-c\",\"200000\",\"/dev/zero\"]}", &res,
	    &lim));
	assert_true(json_is_true(json_object_get(res, "truncated")));
	out = json_string_value(json_object_get(res, "stdout"));
	/* 1000 NUL bytes, each shown as U+FFFD (3 bytes). */
	assert_int_equal(strlen(out), 3000);
	assert_memory_equal(out, "\xef\xbf\xbd", 3);
	json_decref(res);
	/* Without a limit from the envelope: still within one frame. */
	assert_null(call(f, "exec", "{\"argv\":[\"head\",\"-c\",\"200000\",\"/dev/zero\"]}", &res,
	    NULL));
	assert_true(json_is_true(json_object_get(res, "truncated")));
	{
		char *enc = NULL;
		size_t len = 0;

		assert_int_equal(cjson_dump(res, &enc, &len), 0);
		assert_true(len <= TOOLS_RESULT_MAX);
		free(enc);
	}
	json_decref(res);
	/* Output under the cap is whole. */
	assert_null(call(f, "exec", "{\"argv\":[\"printf\",\"%s\",\"caf\\u00e9\"]}", &res, &lim));
	assert_false(json_is_true(json_object_get(res, "truncated")));
	assert_string_equal(json_string_value(json_object_get(res, "stdout")), "caf\xc3\xa9");
	json_decref(res);
}

static void
test_utf8_sanitize(void **state)
{
	char *out = NULL;
	size_t len = 0;
	bool cut = true;

	(void)state;
	assert_int_equal(tools_utf8_sanitize((const uint8_t *)"ok\xc3\xa9", 4, 100, &out, &len,
	    &cut), 0);
	assert_string_equal(out, "ok\xc3\xa9");
	assert_false(cut);
	free(out);
	/* Invalid: a lone continuation, an overlong form, a surrogate, NUL. */
	assert_int_equal(tools_utf8_sanitize((const uint8_t *)"\x80\xc0\xaf\xed\xa0\x80\x00", 7, 100,
	    &out, &len, &cut), 0);
	assert_int_equal(len, 3 * 7);
	free(out);
	/* The budget counts escaped bytes: a control character is 6. */
	assert_int_equal(tools_utf8_sanitize((const uint8_t *)"\x01\x01\x01", 3, 12, &out, &len,
	    &cut), 0);
	assert_int_equal(len, 2);
	assert_true(cut);
	free(out);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_normalize),
		cmocka_unit_test(test_table),
		cmocka_unit_test(test_prepare_normalizes),
		cmocka_unit_test(test_utf8_sanitize),
		cmocka_unit_test(test_no_workspace),
		cmocka_unit_test_setup_teardown(test_bad_arguments, setup, teardown),
		cmocka_unit_test_setup_teardown(test_write_read_list, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dotdot_escape, setup, teardown),
		cmocka_unit_test_setup_teardown(test_symlinks, setup, teardown),
		cmocka_unit_test_setup_teardown(test_proc_magic_links, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hard_link_and_fifo, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sizes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_symlink_race, setup, teardown),
		cmocka_unit_test_setup_teardown(test_exec_basic, setup, teardown),
		cmocka_unit_test_setup_teardown(test_exec_timeout, setup, teardown),
		cmocka_unit_test_setup_teardown(test_exec_output_cap, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
