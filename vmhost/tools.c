/* tools: fs.read, fs.write, fs.list and exec, confined (tools.h,
 * docs/proxy.md). */
#include "tools.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <openssl/evp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cjson.h"
#include "clock.h"
#include "text.h"

#define TOOLS_FILE_MODE   0644
#define TOOLS_EXEC_PATH   "PATH=/usr/bin:/bin"
#define TOOLS_READ_CHUNK  65536
#define TOOLS_DRAIN_MS    200    /* output still open after the process exited */
#define TOOLS_POLL_MS     50
#define TOOLS_EXEC_DIRS   2      /* /usr/bin, /bin */
/* Room in a result for everything but the data (keys, numbers). */
#define TOOLS_RESULT_SLACK 96

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

struct tools {
	int ws_fd;                  /* the workspace, O_DIRECTORY; -1: none */
	size_t file_max;
	uint32_t exec_timeout_ms;
	size_t exec_max_output;
};

static void set_err(struct tools_error *e, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
set_err(struct tools_error *e, const char *code, const char *fmt, ...)
{
	va_list ap;

	e->code = code;
	va_start(ap, fmt);
	(void)vsnprintf(e->detail, sizeof(e->detail), fmt, ap);
	va_end(ap);
}

static const char *
errname(int e)
{
	const char *s = strerrorname_np(e);

	return s != NULL ? s : "EIO";
}

/* --- paths ---------------------------------------------------------------- */

int
tools_path_normalize(const char *in, size_t len, char *out, size_t outlen)
{
	char buf[TOOLS_PATH_MAX + 2];
	size_t i = 0, o = 0;

	if (in == NULL || len == 0 || in[0] != '/' || memchr(in, '\0', len) != NULL) {
		return -EINVAL;
	}
	if (len > TOOLS_PATH_MAX) {
		return -ENAMETOOLONG;
	}
	/* The normal form is never longer than the input, except "/". */
	if (outlen < 2 || outlen <= len) {
		return -ENOBUFS;
	}
	while (i < len) {
		size_t s, n;

		while (i < len && in[i] == '/') {
			i++;
		}
		s = i;
		while (i < len && in[i] != '/') {
			i++;
		}
		n = i - s;
		if (n == 0 || (n == 1 && in[s] == '.')) {
			continue;
		}
		if (n == 2 && in[s] == '.' && in[s + 1] == '.') {
			if (o == 0) {
				return -EXDEV;
			}
			while (o > 0 && buf[o - 1] != '/') {
				o--;
			}
			o--;   /* the '/' itself */
			continue;
		}
		if (n > NAME_MAX) {
			return -ENAMETOOLONG;
		}
		buf[o++] = '/';
		memcpy(buf + o, in + s, n);
		o += n;
	}
	if (o == 0) {
		buf[o++] = '/';
	}
	buf[o] = '\0';
	memcpy(out, buf, o + 1);
	return 0;
}

/* "/" -> ".", "/a/b" -> "a/b": what openat2 gets beneath the workspace. */
static const char *
rel_of(const char *norm)
{
	return norm[1] == '\0' ? "." : norm + 1;
}

static int
openat2_beneath(int dirfd, const char *rel, uint64_t flags, uint64_t mode)
{
	struct open_how how;
	long fd;

	memset(&how, 0, sizeof(how));
	how.flags = flags;
	how.mode = mode;
	how.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_SYMLINKS;
	do {
		fd = syscall(SYS_openat2, dirfd, rel, &how, sizeof(how));
	} while (fd < 0 && (errno == EINTR || errno == EAGAIN));
	return fd < 0 ? -errno : (int)fd;
}

/* Open a guest path beneath the workspace; errors in the protocol's terms. */
static int
ws_open(const struct tools *t, const char *norm, uint64_t flags, uint64_t mode, int *ret,
    struct tools_error *err)
{
	int fd = openat2_beneath(t->ws_fd, rel_of(norm), flags | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY,
	    mode);

	if (fd >= 0) {
		*ret = fd;
		return 0;
	}
	switch (fd) {
	case -ELOOP: {
		set_err(err, "denied", "%s: the path passes through a symbolic link", norm);
		break;
	}
	case -EXDEV: {
		set_err(err, "denied", "%s: the path leaves the workspace", norm);
		break;
	}
	default: {
		set_err(err, "tool_failed", "%s", errname(-fd));
		break;
	}
	}
	return fd;
}

/* A file with other names may be one outside the workspace (a hard link
 * made by someone on the host): neither read nor written through. */
static int
check_regular(const char *norm, int fd, struct stat *st, struct tools_error *err)
{
	if (fstat(fd, st) != 0) {
		set_err(err, "tool_failed", "%s", errname(errno));
		return -errno;
	}
	if (S_ISDIR(st->st_mode)) {
		set_err(err, "tool_failed", "EISDIR");
		return -EISDIR;
	}
	if (!S_ISREG(st->st_mode)) {
		set_err(err, "tool_failed", "%s: not a regular file", norm);
		return -EINVAL;
	}
	if (st->st_nlink > 1) {
		set_err(err, "denied", "%s: the file has %lu hard links; one may be outside the "
		    "workspace", norm, (unsigned long)st->st_nlink);
		return -EMLINK;
	}
	return 0;
}

/* --- arguments ------------------------------------------------------------ */

static int
only_keys(const json_t *args, const char *const *allowed, struct tools_error *err)
{
	const char *bad = NULL;

	if (!json_is_object(args)) {
		set_err(err, "bad_request", "args must be an object");
		return -EINVAL;
	}
	if (cjson_only_keys(args, allowed, &bad) != 0) {
		set_err(err, "bad_request", "unknown argument '%.64s'", bad != NULL ? bad : "?");
		return -EINVAL;
	}
	return 0;
}

/* A required string argument without NUL bytes. */
static int
get_string(const json_t *args, const char *key, size_t max, const char **ret, size_t *ret_len,
    struct tools_error *err)
{
	const json_t *v = json_object_get(args, key);
	const char *s;
	size_t n;

	if (v == NULL) {
		set_err(err, "bad_request", "argument '%s' is required", key);
		return -EINVAL;
	}
	if (!json_is_string(v)) {
		set_err(err, "bad_request", "argument '%s' must be a string", key);
		return -EINVAL;
	}
	s = json_string_value(v);
	n = json_string_length(v);
	if (memchr(s, '\0', n) != NULL) {
		set_err(err, "bad_request", "argument '%s' holds a NUL character", key);
		return -EINVAL;
	}
	if (n > max) {
		set_err(err, "bad_request", "argument '%s' is longer than %zu bytes", key, max);
		return -EINVAL;
	}
	*ret = s;
	*ret_len = n;
	return 0;
}

static int
get_path(const json_t *args, char *out, size_t outlen, struct tools_error *err)
{
	const char *s;
	size_t n;
	int r;

	r = get_string(args, "path", TOOLS_PATH_MAX, &s, &n, err);
	if (r != 0) {
		return r;
	}
	r = tools_path_normalize(s, n, out, outlen);
	switch (r) {
	case 0: {
		break;
	}
	case -EXDEV: {
		set_err(err, "denied", "the path leaves the workspace");
		break;
	}
	case -ENAMETOOLONG: {
		set_err(err, "bad_request", "the path or one of its names is too long");
		break;
	}
	default: {
		set_err(err, "bad_request", "the path must be absolute (the workspace is /)");
		break;
	}
	}
	return r;
}

/* A copy of args with "path" replaced by its normal form. */
static int
with_path(const json_t *args, const char *norm, json_t **ret, struct tools_error *err)
{
	json_t *c = json_deep_copy(args);

	if (c == NULL || json_object_set_new(c, "path", json_string(norm)) != 0) {
		json_decref(c);
		set_err(err, "tool_failed", "out of memory");
		return -ENOMEM;
	}
	*ret = c;
	return 0;
}

/* --- UTF-8 ---------------------------------------------------------------- */

/* Bytes the canonical JSON form spends on character c (first byte). */
static size_t
escaped_len(uint8_t c, size_t seq)
{
	if (c == '"' || c == '\\' || c == '\b' || c == '\f' || c == '\n' || c == '\r' ||
	    c == '\t') {
		return 2;
	}
	if (c < 0x20) {
		return 6;
	}
	return seq;
}

int
tools_utf8_sanitize(const uint8_t *in, size_t n, size_t budget, char **ret, size_t *ret_len,
    bool *ret_cut)
{
	static const char repl[] = "\xef\xbf\xbd";   /* U+FFFD */
	size_t i = 0, o = 0, used = 0, cap;
	bool cut = false;
	char *out;

	/* Each input byte becomes at most 3 output bytes. */
	if (__builtin_mul_overflow(n, (size_t)3, &cap) || __builtin_add_overflow(cap, 1, &cap)) {
		return -EOVERFLOW;
	}
	out = malloc(cap);
	if (out == NULL) {
		return -ENOMEM;
	}
	while (i < n) {
		uint32_t cp = 0;
		int seq = text_utf8_next(in + i, n - i, &cp);
		size_t k = seq < 0 || cp == 0 ? 0 : (size_t)seq;
		size_t cost = k == 0 ? 3 : escaped_len(in[i], k);

		if (used + cost > budget) {
			cut = true;
			break;
		}
		used += cost;
		if (k == 0) {
			memcpy(out + o, repl, 3);
			o += 3;
			i++;
		} else {
			memcpy(out + o, in + i, k);
			o += k;
			i += k;
		}
	}
	out[o] = '\0';
	*ret = out;
	*ret_len = o;
	*ret_cut = cut;
	return 0;
}

/* --- fs.read -------------------------------------------------------------- */

static int
fs_path_prepare(const json_t *args, json_t **ret, struct tools_error *err)
{
	static const char *const keys[] = { "path", NULL };
	char norm[TOOLS_PATH_MAX + 2];
	int r;

	if ((r = only_keys(args, keys, err)) != 0 || (r = get_path(args, norm, sizeof(norm), err)) != 0) {
		return r;
	}
	return with_path(args, norm, ret, err);
}

static int
read_all(int fd, uint8_t *buf, size_t cap, size_t *ret_len)
{
	size_t n = 0;

	while (n < cap) {
		ssize_t k = read(fd, buf + n, cap - n > TOOLS_READ_CHUNK ? TOOLS_READ_CHUNK : cap - n);

		if (k < 0 && errno == EINTR) {
			continue;
		}
		if (k < 0) {
			return -errno;
		}
		if (k == 0) {
			break;
		}
		n += (size_t)k;
	}
	*ret_len = n;
	return 0;
}

static int
fs_read_run(const struct tools *t, const json_t *args, const struct tools_limits *lim,
    json_t **ret, struct tools_error *err)
{
	const char *path = json_string_value(json_object_get(args, "path"));
	size_t cap = t->file_max, n = 0;
	uint8_t *buf = NULL;
	char *b64 = NULL;
	json_t *res = NULL;
	struct stat st;
	int fd = -1, r;

	(void)lim;
	if (cap > TOOLS_RESULT_MAX) {
		cap = TOOLS_RESULT_MAX;   /* more could never be sent back */
	}
	r = ws_open(t, path, O_RDONLY | O_NONBLOCK, 0, &fd, err);
	if (r != 0) {
		goto out;
	}
	if ((r = check_regular(path, fd, &st, err)) != 0) {
		goto out;
	}
	if ((uint64_t)st.st_size > cap) {
		set_err(err, "too_large", "%s is %lld bytes; at most %zu can be read", path,
		    (long long)st.st_size, cap);
		r = -EFBIG;
		goto out;
	}
	buf = malloc(cap + 1);
	if (buf == NULL) {
		set_err(err, "tool_failed", "out of memory");
		r = -ENOMEM;
		goto out;
	}
	/* One byte more than the cap tells a file that grew meanwhile. */
	r = read_all(fd, buf, cap + 1, &n);
	if (r != 0) {
		set_err(err, "tool_failed", "%s", errname(-r));
		goto out;
	}
	if (n > cap) {
		set_err(err, "too_large", "%s is larger than %zu bytes", path, cap);
		r = -EFBIG;
		goto out;
	}
	if (text_utf8_valid((const char *)buf, n)) {
		res = json_pack("{s:I, s:s%}", "size", (json_int_t)n, "text", (const char *)buf, n);
	} else {
		size_t blen = 4 * ((n + 2) / 3);

		b64 = malloc(blen + 1);
		if (b64 == NULL) {
			set_err(err, "tool_failed", "out of memory");
			r = -ENOMEM;
			goto out;
		}
		(void)EVP_EncodeBlock((unsigned char *)b64, buf, (int)n);
		res = json_pack("{s:I, s:s}", "size", (json_int_t)n, "data", b64);
	}
	if (res == NULL) {
		set_err(err, "tool_failed", "out of memory");
		r = -ENOMEM;
		goto out;
	}
	*ret = res;
	res = NULL;
	r = 0;
out:
	if (fd >= 0) {
		(void)close(fd);
	}
	if (buf != NULL) {
		explicit_bzero(buf, cap + 1);
	}
	free(buf);
	free(b64);
	json_decref(res);
	return r;
}

/* --- fs.write ------------------------------------------------------------- */

static int
fs_write_prepare(const json_t *args, json_t **ret, struct tools_error *err)
{
	static const char *const keys[] = { "path", "data", NULL };
	char norm[TOOLS_PATH_MAX + 2];
	const char *data;
	size_t n;
	int r;

	if ((r = only_keys(args, keys, err)) != 0 || (r = get_path(args, norm, sizeof(norm), err)) != 0 ||
	    (r = get_string(args, "data", SIZE_MAX, &data, &n, err)) != 0) {
		return r;
	}
	if (strcmp(norm, "/") == 0) {
		set_err(err, "bad_request", "/ is the workspace itself, not a file");
		return -EINVAL;
	}
	return with_path(args, norm, ret, err);
}

static int
write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t k = write(fd, p, n);

		if (k < 0 && errno == EINTR) {
			continue;
		}
		if (k < 0) {
			return -errno;
		}
		p += k;
		n -= (size_t)k;
	}
	return 0;
}

static int
fs_write_run(const struct tools *t, const json_t *args, const struct tools_limits *lim,
    json_t **ret, struct tools_error *err)
{
	const json_t *d = json_object_get(args, "data");
	const char *path = json_string_value(json_object_get(args, "path"));
	size_t n = json_string_length(d);
	json_t *res = NULL;
	struct stat st;
	int fd = -1, r;

	(void)lim;
	if (n > t->file_max) {
		set_err(err, "too_large", "%zu bytes; at most %zu may be written", n, t->file_max);
		return -EFBIG;
	}
	/* No O_TRUNC at open: the file is truncated only once it is known to
	 * be a regular file with one name. O_NONBLOCK: a FIFO cannot hold the
	 * call up. */
	r = ws_open(t, path, O_WRONLY | O_CREAT | O_NONBLOCK, TOOLS_FILE_MODE, &fd, err);
	if (r != 0) {
		goto out;
	}
	if ((r = check_regular(path, fd, &st, err)) != 0) {
		goto out;
	}
	if (ftruncate(fd, 0) != 0 || (r = write_all(fd, json_string_value(d), n)) != 0) {
		r = r != 0 ? r : -errno;
		set_err(err, "tool_failed", "%s", errname(-r));
		goto out;
	}
	if (close(fd) != 0) {
		fd = -1;
		r = -errno;
		set_err(err, "tool_failed", "%s", errname(-r));
		goto out;
	}
	fd = -1;
	res = json_pack("{s:I}", "size", (json_int_t)n);
	if (res == NULL) {
		set_err(err, "tool_failed", "out of memory");
		r = -ENOMEM;
		goto out;
	}
	*ret = res;
	r = 0;
out:
	if (fd >= 0) {
		(void)close(fd);
	}
	return r;
}

/* --- fs.list -------------------------------------------------------------- */

struct list_entry {
	char *name;
	const char *type;
	int64_t size;
};

static int
entry_cmp(const void *a, const void *b)
{
	return strcmp(((const struct list_entry *)a)->name, ((const struct list_entry *)b)->name);
}

static int
fs_list_run(const struct tools *t, const json_t *args, const struct tools_limits *lim,
    json_t **ret, struct tools_error *err)
{
	const char *path = json_string_value(json_object_get(args, "path"));
	struct list_entry *ents = NULL;
	size_t n = 0, i, est = 16;
	json_t *arr = NULL, *res = NULL;
	struct dirent *de;
	DIR *d = NULL;
	int fd = -1, r;

	(void)lim;
	/* Not O_DIRECTORY: with it, a symbolic link would be ENOTDIR rather
	 * than refused as a link. */
	r = ws_open(t, path, O_RDONLY | O_NONBLOCK, 0, &fd, err);
	if (r != 0) {
		goto out;
	}
	{
		struct stat st;

		if (fstat(fd, &st) != 0 || !S_ISDIR(st.st_mode)) {
			r = -ENOTDIR;
			set_err(err, "tool_failed", "ENOTDIR");
			goto out;
		}
	}
	d = fdopendir(fd);
	if (d == NULL) {
		r = -errno;
		set_err(err, "tool_failed", "%s", errname(-r));
		goto out;
	}
	fd = -1;   /* owned by d */
	ents = calloc(TOOLS_LIST_MAX, sizeof(*ents));
	if (ents == NULL) {
		r = -ENOMEM;
		set_err(err, "tool_failed", "out of memory");
		goto out;
	}
	for (;;) {
		struct stat st;
		size_t nlen, clen;
		bool cut;

		errno = 0;
		de = readdir(d);
		if (de == NULL) {
			if (errno != 0) {
				r = -errno;
				set_err(err, "tool_failed", "%s", errname(-r));
				goto out;
			}
			break;
		}
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0) {
			continue;
		}
		if (n == TOOLS_LIST_MAX) {
			set_err(err, "too_large", "%s has more than %d entries", path, TOOLS_LIST_MAX);
			r = -EFBIG;
			goto out;
		}
		if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
			continue;   /* gone meanwhile */
		}
		nlen = strlen(de->d_name);
		/* A name that is not UTF-8 is shown with U+FFFD in place of the
		 * bad bytes: JSON cannot carry it as it is. */
		r = tools_utf8_sanitize((const uint8_t *)de->d_name, nlen, SIZE_MAX, &ents[n].name,
		    &clen, &cut);
		if (r != 0) {
			set_err(err, "tool_failed", "out of memory");
			goto out;
		}
		ents[n].type = S_ISREG(st.st_mode) ? "file" : S_ISDIR(st.st_mode) ? "dir" :
		    S_ISLNK(st.st_mode) ? "symlink" : "other";
		ents[n].size = (int64_t)st.st_size;
		est += 6 * clen + 64;
		n++;
	}
	if (est > TOOLS_RESULT_MAX) {
		set_err(err, "too_large", "the listing of %s would not fit in one frame", path);
		r = -EFBIG;
		goto out;
	}
	qsort(ents, n, sizeof(*ents), entry_cmp);
	arr = json_array();
	if (arr == NULL) {
		r = -ENOMEM;
		set_err(err, "tool_failed", "out of memory");
		goto out;
	}
	for (i = 0; i < n; i++) {
		if (json_array_append_new(arr, json_pack("{s:s, s:s, s:I}", "name", ents[i].name,
		    "type", ents[i].type, "size", (json_int_t)ents[i].size)) != 0) {
			r = -ENOMEM;
			set_err(err, "tool_failed", "out of memory");
			goto out;
		}
	}
	res = json_pack("{s:O}", "entries", arr);
	if (res == NULL) {
		r = -ENOMEM;
		set_err(err, "tool_failed", "out of memory");
		goto out;
	}
	*ret = res;
	r = 0;
out:
	if (ents != NULL) {
		for (i = 0; i < n; i++) {
			free(ents[i].name);
		}
		free(ents);
	}
	json_decref(arr);
	if (d != NULL) {
		(void)closedir(d);
	}
	if (fd >= 0) {
		(void)close(fd);
	}
	return r;
}

/* --- exec ----------------------------------------------------------------- */

static int
exec_prepare(const json_t *args, json_t **ret, struct tools_error *err)
{
	static const char *const keys[] = { "argv", NULL };
	const json_t *argv, *v;
	size_t i;
	int r;

	if ((r = only_keys(args, keys, err)) != 0) {
		return r;
	}
	argv = json_object_get(args, "argv");
	if (argv == NULL) {
		set_err(err, "bad_request", "argument 'argv' is required");
		return -EINVAL;
	}
	if (!json_is_array(argv) || json_array_size(argv) < 1 ||
	    json_array_size(argv) > TOOLS_ARGV_MAX) {
		set_err(err, "bad_request", "argv must be an array of 1..%d strings", TOOLS_ARGV_MAX);
		return -EINVAL;
	}
	json_array_foreach(argv, i, v) {
		const char *s = json_string_value(v);
		size_t n = json_string_length(v);

		if (!json_is_string(v) || n > TOOLS_ARG_MAX || memchr(s, '\0', n) != NULL ||
		    (i == 0 && n == 0)) {
			set_err(err, "bad_request", "argv[%zu] must be a string of %s..%d bytes without "
			    "NUL", i, i == 0 ? "1" : "0", TOOLS_ARG_MAX);
			return -EINVAL;
		}
	}
	if (strchr(json_string_value(json_array_get(argv, 0)), '/') != NULL &&
	    json_string_value(json_array_get(argv, 0))[0] != '/') {
		set_err(err, "bad_request", "argv[0] must be a command name or an absolute path");
		return -EINVAL;
	}
	*ret = json_deep_copy(args);
	if (*ret == NULL) {
		set_err(err, "tool_failed", "out of memory");
		return -ENOMEM;
	}
	return 0;
}

struct capture {
	int fd;
	uint8_t *buf;
	size_t len;
	size_t cap;
	bool cut;
};

/* Read what is there; keep at most cap bytes, drain the rest so the child
 * never blocks on a full pipe. 1 at the end of the stream. */
static int
capture_read(struct capture *c)
{
	uint8_t junk[4096];

	for (;;) {
		uint8_t *dst = c->len < c->cap ? c->buf + c->len : junk;
		size_t room = c->len < c->cap ? c->cap - c->len : sizeof(junk);
		ssize_t k = read(c->fd, dst, room);

		if (k < 0 && errno == EINTR) {
			continue;
		}
		if (k < 0 && errno == EAGAIN) {
			return 0;
		}
		if (k <= 0) {
			return 1;
		}
		if (dst == junk) {
			c->cut = true;
		} else {
			c->len += (size_t)k;
		}
	}
}

/* In the child, between fork and execve: async-signal-safe calls only. */
static void __attribute__((noreturn))
exec_child(int ws_fd, int null_fd, int out_fd, int err_fd, int report_fd, char *const *paths,
    size_t n_paths, char *const *argv, char *const *envp)
{
	struct rlimit no_core = { 0, 0 };
	struct sigaction sa;
	sigset_t none;
	int sig, e = ENOENT;
	size_t i;

	(void)setpgid(0, 0);
	(void)prctl(PR_SET_PDEATHSIG, SIGKILL);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_DFL;
	for (sig = 1; sig < NSIG; sig++) {
		(void)sigaction(sig, &sa, NULL);
	}
	sigemptyset(&none);
	(void)sigprocmask(SIG_SETMASK, &none, NULL);
	if (dup2(null_fd, STDIN_FILENO) < 0 || dup2(out_fd, STDOUT_FILENO) < 0 ||
	    dup2(err_fd, STDERR_FILENO) < 0) {
		e = errno;
		goto fail;
	}
	if ((ws_fd >= 0 ? fchdir(ws_fd) : chdir("/")) != 0) {
		e = errno;
		goto fail;
	}
	/* Every descriptor from 3 up closes at execve (the report pipe too,
	 * which is how the parent learns that execve succeeded). */
	if (syscall(SYS_close_range, 3U, ~0U, CLOSE_RANGE_CLOEXEC) != 0) {
		e = errno;
		goto fail;
	}
	(void)setrlimit(RLIMIT_CORE, &no_core);
	for (i = 0; i < n_paths; i++) {
		execve(paths[i], argv, envp);
		if (errno != ENOENT || e == ENOENT) {
			e = errno;
		}
	}
fail:
	while (write(report_fd, &e, sizeof(e)) < 0 && errno == EINTR) {
	}
	_exit(127);
}

static void
close_fd(int *fd)
{
	if (*fd >= 0) {
		(void)close(*fd);
		*fd = -1;
	}
}

/* Reap pid; until then the group id cannot be reused, so the group can be
 * killed safely first (background children it left). */
static int
reap_group(pid_t pid, int *ret_status)
{
	siginfo_t si;
	int st = 0;

	memset(&si, 0, sizeof(si));
	while (waitid(P_PID, (id_t)pid, &si, WEXITED | WNOWAIT) != 0 && errno == EINTR) {
	}
	(void)kill(-pid, SIGKILL);
	while (waitpid(pid, &st, 0) < 0) {
		if (errno != EINTR) {
			return -errno;
		}
	}
	*ret_status = st;
	return 0;
}

static bool
exited(pid_t pid)
{
	siginfo_t si;

	memset(&si, 0, sizeof(si));
	if (waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) != 0) {
		return errno == ECHILD;
	}
	return si.si_pid == pid;
}

static int
exec_run(const struct tools *t, const json_t *args, const struct tools_limits *lim,
    json_t **ret, struct tools_error *err)
{
	static char env_path[] = TOOLS_EXEC_PATH;
	char *envp[] = { env_path, NULL };
	const json_t *jargv = json_object_get(args, "argv");
	size_t argc = json_array_size(jargv), i, n_paths = 0, budget;
	char *argv[TOOLS_ARGV_MAX + 1];
	char *paths[TOOLS_EXEC_DIRS] = { NULL, NULL };
	const char *arg0 = json_string_value(json_array_get(jargv, 0));
	struct capture out = { -1, NULL, 0, 0, false }, errc = { -1, NULL, 0, 0, false };
	int op[2] = { -1, -1 }, ep[2] = { -1, -1 }, rp[2] = { -1, -1 }, null_fd = -1;
	int r, status = 0, child_errno = 0;
	uint32_t timeout = t->exec_timeout_ms;
	uint64_t deadline, drain_until = 0;
	bool timed_out = false, out_open = true, err_open = true, gone = false;
	char *so = NULL, *se = NULL;
	size_t so_len = 0, se_len = 0;
	bool so_cut = false, se_cut = false;
	json_t *res = NULL;
	pid_t pid = -1;
	ssize_t k;

	if (lim != NULL && lim->timeout_ms != 0 && lim->timeout_ms < timeout) {
		timeout = lim->timeout_ms;
	}
	out.cap = errc.cap = t->exec_max_output;
	if (lim != NULL && lim->max_output != 0 && lim->max_output < out.cap) {
		out.cap = errc.cap = lim->max_output;
	}
	/* Everything the child needs is prepared here: after fork it may
	 * only make async-signal-safe calls. */
	for (i = 0; i < argc; i++) {
		argv[i] = (char *)json_string_value(json_array_get(jargv, i));
	}
	argv[argc] = NULL;
	if (arg0[0] == '/') {
		paths[n_paths++] = strdup(arg0);
	} else {
		if (asprintf(&paths[n_paths], "/usr/bin/%s", arg0) < 0) {
			paths[n_paths] = NULL;
		}
		n_paths++;
		if (asprintf(&paths[n_paths], "/bin/%s", arg0) < 0) {
			paths[n_paths] = NULL;
		}
		n_paths++;
	}
	out.buf = malloc(out.cap + 1);
	errc.buf = malloc(errc.cap + 1);
	if (out.buf == NULL || errc.buf == NULL || paths[0] == NULL ||
	    (n_paths > 1 && paths[1] == NULL)) {
		set_err(err, "tool_failed", "out of memory");
		r = -ENOMEM;
		goto out;
	}
	null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (null_fd < 0 || pipe2(op, O_CLOEXEC | O_NONBLOCK) != 0 ||
	    pipe2(ep, O_CLOEXEC | O_NONBLOCK) != 0 || pipe2(rp, O_CLOEXEC) != 0) {
		r = -errno;
		set_err(err, "tool_failed", "%s", errname(-r));
		goto out;
	}
	/* The child's ends block as usual. */
	if (fcntl(op[1], F_SETFL, 0) != 0 || fcntl(ep[1], F_SETFL, 0) != 0) {
		r = -errno;
		set_err(err, "tool_failed", "%s", errname(-r));
		goto out;
	}
	deadline = clock_mono_ms() + timeout;
	pid = fork();
	if (pid < 0) {
		r = -errno;
		set_err(err, "tool_failed", "fork: %s", errname(-r));
		goto out;
	}
	if (pid == 0) {
		exec_child(t->ws_fd, null_fd, op[1], ep[1], rp[1], paths, n_paths, argv, envp);
	}
	(void)setpgid(pid, pid);   /* the child does it too; whoever is first */
	close_fd(&op[1]);
	close_fd(&ep[1]);
	close_fd(&rp[1]);
	/* Closed by a successful execve, or a report of why not. */
	do {
		k = read(rp[0], &child_errno, sizeof(child_errno));
	} while (k < 0 && errno == EINTR);
	if (k == (ssize_t)sizeof(child_errno)) {
		(void)reap_group(pid, &status);
		pid = -1;
		set_err(err, "tool_failed", "cannot run %.128s: %s", arg0, errname(child_errno));
		r = -child_errno;
		goto out;
	}
	out.fd = op[0];
	errc.fd = ep[0];
	for (;;) {
		struct pollfd pfd[2];
		uint64_t now = clock_mono_ms(), until;
		nfds_t np = 0;
		int pr;

		if (!gone && exited(pid)) {
			gone = true;
			drain_until = now + TOOLS_DRAIN_MS;
		}
		if (!gone && !timed_out && now >= deadline) {
			(void)kill(-pid, SIGKILL);
			timed_out = true;
			drain_until = now + TOOLS_DRAIN_MS;
		}
		if (gone && !out_open && !err_open) {
			break;
		}
		/* Output kept open by a process that left the group: stop. */
		if ((gone || timed_out) && now >= drain_until) {
			break;
		}
		until = gone || timed_out ? drain_until : deadline;
		if (out_open) {
			pfd[np].fd = out.fd;
			pfd[np].events = POLLIN;
			pfd[np++].revents = 0;
		}
		if (err_open) {
			pfd[np].fd = errc.fd;
			pfd[np].events = POLLIN;
			pfd[np++].revents = 0;
		}
		/* Both streams closed: the poll only waits for the exit. */
		pr = poll(pfd, np, (int)(until - now < TOOLS_POLL_MS ? until - now : TOOLS_POLL_MS));
		if (pr < 0 && errno != EINTR) {
			break;
		}
		if (out_open && capture_read(&out) == 1) {
			out_open = false;
		}
		if (err_open && capture_read(&errc) == 1) {
			err_open = false;
		}
	}
	if (!gone) {
		(void)kill(-pid, SIGKILL);
	}
	r = reap_group(pid, &status);
	pid = -1;
	if (r != 0) {
		set_err(err, "tool_failed", "waitpid: %s", errname(-r));
		goto out;
	}
	if (timed_out) {
		set_err(err, "tool_failed", "timed out after %u ms; killed", timeout);
		r = -ETIMEDOUT;
		goto out;
	}
	/* What fits in a reply frame, split between the two streams. */
	budget = (TOOLS_RESULT_MAX - TOOLS_RESULT_SLACK) / 2;
	if ((r = tools_utf8_sanitize(out.buf, out.len, budget, &so, &so_len, &so_cut)) != 0 ||
	    (r = tools_utf8_sanitize(errc.buf, errc.len, budget, &se, &se_len, &se_cut)) != 0) {
		set_err(err, "tool_failed", "out of memory");
		goto out;
	}
	res = json_pack("{s:i, s:s%, s:s%, s:b}", "status",
	    WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status),
	    "stdout", so, so_len, "stderr", se, se_len, "truncated",
	    out.cut || errc.cut || so_cut || se_cut);
	if (res == NULL) {
		set_err(err, "tool_failed", "out of memory");
		r = -ENOMEM;
		goto out;
	}
	*ret = res;
	r = 0;
out:
	if (pid > 0) {
		(void)kill(-pid, SIGKILL);
		(void)reap_group(pid, &status);
	}
	close_fd(&op[0]);
	close_fd(&op[1]);
	close_fd(&ep[0]);
	close_fd(&ep[1]);
	close_fd(&rp[0]);
	close_fd(&rp[1]);
	close_fd(&null_fd);
	for (i = 0; i < TOOLS_EXEC_DIRS; i++) {
		free(paths[i]);
	}
	free(out.buf);
	free(errc.buf);
	free(so);
	free(se);
	return r;
}

/* --- the table ------------------------------------------------------------ */

static const struct tool tool_table[] = {
	{ "fs.read", true, fs_path_prepare, fs_read_run },
	{ "fs.write", true, fs_write_prepare, fs_write_run },
	{ "fs.list", true, fs_path_prepare, fs_list_run },
	{ "exec", false, exec_prepare, exec_run },
};

const struct tool *
tools_find(const char *name)
{
	size_t i;

	if (name == NULL) {
		return NULL;
	}
	for (i = 0; i < sizeof(tool_table) / sizeof(tool_table[0]); i++) {
		if (strcmp(tool_table[i].name, name) == 0) {
			return &tool_table[i];
		}
	}
	return NULL;
}

size_t
tools_count(void)
{
	return sizeof(tool_table) / sizeof(tool_table[0]);
}

const struct tool *
tools_at(size_t i)
{
	return i < tools_count() ? &tool_table[i] : NULL;
}

int
tools_prepare(const struct tool *tool, const json_t *args, json_t **ret, struct tools_error *err)
{
	json_t *p = NULL;
	int r;

	if (tool == NULL || !json_is_object(args)) {
		set_err(err, "bad_request", "args must be an object");
		return -EINVAL;
	}
	r = tool->prepare(args, &p, err);
	if (r != 0) {
		return r;
	}
	*ret = p;
	return 0;
}

int
tools_run(const struct tools *t, const struct tool *tool, const json_t *args,
    const struct tools_limits *lim, json_t **ret, struct tools_error *err)
{
	json_t *res = NULL;
	int r;

	if (tool->needs_workspace && t->ws_fd < 0) {
		set_err(err, "denied", "%s: no workspace (the manifest names none)", tool->name);
		return -EPERM;
	}
	r = tool->run(t, args, lim, &res, err);
	if (r != 0) {
		return r;
	}
	*ret = res;
	return 0;
}

int
tools_new(const struct tools_config *c, struct tools **ret)
{
	struct tools *t;
	struct stat st;

	t = calloc(1, sizeof(*t));
	if (t == NULL) {
		return -ENOMEM;
	}
	t->ws_fd = -1;
	t->file_max = c->file_max != 0 ? c->file_max : TOOLS_FILE_MAX_DEFAULT;
	t->exec_timeout_ms = c->exec_timeout_ms != 0 ? c->exec_timeout_ms : TOOLS_EXEC_TIMEOUT_MS;
	if (t->exec_timeout_ms > TOOLS_EXEC_TIMEOUT_MAX_MS) {
		t->exec_timeout_ms = TOOLS_EXEC_TIMEOUT_MAX_MS;
	}
	t->exec_max_output = c->exec_max_output != 0 ? c->exec_max_output : TOOLS_OUTPUT_DEFAULT;
	if (t->exec_max_output > TOOLS_OUTPUT_MAX) {
		t->exec_max_output = TOOLS_OUTPUT_MAX;
	}
	if (c->workspace != NULL && c->workspace[0] != '\0') {
		int r;

		t->ws_fd = open(c->workspace, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
		if (t->ws_fd < 0) {
			r = -errno;
			free(t);
			return r;
		}
		if (fstat(t->ws_fd, &st) != 0 || !S_ISDIR(st.st_mode)) {
			(void)close(t->ws_fd);
			free(t);
			return -ENOTDIR;
		}
	}
	*ret = t;
	return 0;
}

void
tools_free(struct tools *t)
{
	if (t == NULL) {
		return;
	}
	if (t->ws_fd >= 0) {
		(void)close(t->ws_fd);
	}
	free(t);
}

bool
tools_has_workspace(const struct tools *t)
{
	return t != NULL && t->ws_fd >= 0;
}
