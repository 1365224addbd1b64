/* manifest: strict parsing of the launch manifest (docs/manifest.md).
 *
 * Every error is one line that names the field:
 *   manifest: field "vcpus": must be an integer in 1..32
 * Paths are resolved lexically against the manifest's folder (which
 * manifest_load resolves with realpath(3)); a relative path may not leave
 * that folder, neither with ".." nor through a symbolic link, and no
 * artifact may itself be a symbolic link. artifact_seal opens the result
 * with O_NOFOLLOW again: the checks here give an early, clear error, the
 * open is what enforces. */
#include "manifest.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cjson.h"
#include "envelope.h"
#include "fsutil.h"
#include "parse.h"
#include "token.h"

/* Nesting of the whole manifest: the envelope sits at depth 1, its entries
 * at 2 and their bounds below. The canonical config is embedded in event
 * log records and in attestd's reply a few levels deeper, and those are
 * parsed with CJSON_MAX_DEPTH: this leaves them room. */
#define MANIFEST_MAX_DEPTH     10
#define MANIFEST_ENVELOPE_MAX  256     /* operations in the envelope */
#define MANIFEST_PATH_COMPS    (PATH_MAX / 2)

static const char *const config_keys[] = {
	"name", "cmdline", "vcpus", "memory_mib", "vmm", "envelope", "workspace", NULL,
};

static const char *const manifest_keys[] = {
	"name", "kernel", "initrd", "rootfs", "cmdline", "vcpus", "memory_mib", "vmm",
	"envelope", "workspace", NULL,
};

enum path_kind {
	PATH_FILE,
	PATH_DIR,
};

static void
errorf(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void
errorf(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (err == NULL || errlen == 0) {
		return;
	}
	n = snprintf(err, errlen, "manifest: ");
	if (n < 0 || (size_t)n >= errlen) {
		return;
	}
	va_start(ap, fmt);
	(void)vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
	va_end(ap);
}

static int
depth_of(const json_t *j)
{
	const char *key;
	json_t *v;
	size_t i;
	int d, max = 0;

	switch (json_typeof(j)) {
	case JSON_OBJECT: {
		json_object_foreach((json_t *)j, key, v) {
			d = depth_of(v) + 1;
			if (d > max) {
				max = d;
			}
		}
		return max;
	}
	case JSON_ARRAY: {
		json_array_foreach(j, i, v) {
			d = depth_of(v) + 1;
			if (d > max) {
				max = d;
			}
		}
		return max;
	}
	default: {
		return 0;
	}
	}
}

static bool
has_real(const json_t *j)
{
	const char *key;
	json_t *v;
	size_t i;

	switch (json_typeof(j)) {
	case JSON_REAL: {
		return true;
	}
	case JSON_OBJECT: {
		json_object_foreach((json_t *)j, key, v) {
			if (has_real(v)) {
				return true;
			}
		}
		return false;
	}
	case JSON_ARRAY: {
		json_array_foreach(j, i, v) {
			if (has_real(v)) {
				return true;
			}
		}
		return false;
	}
	default: {
		return false;
	}
	}
}

/* cjson_parse refused buf: say why, naming the field where we can. Only
 * for the message; the decision was cjson_parse's. */
static void
explain_parse_error(const char *buf, size_t len, char *err, size_t errlen)
{
	json_error_t je;
	const char *key;
	json_t *j, *v;

	if (memchr(buf, '\0', len) != NULL) {
		errorf(err, errlen, "contains a NUL byte");
		return;
	}
	j = json_loadb(buf, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &je);
	if (j == NULL) {
		errorf(err, errlen, "not valid JSON: %s (line %d, column %d)", je.text, je.line,
		    je.column);
		return;
	}
	if (json_is_object(j)) {
		json_object_foreach(j, key, v) {
			if (has_real(v)) {
				errorf(err, errlen, "field \"%s\": real numbers are not allowed", key);
				json_decref(j);
				return;
			}
		}
	}
	if (has_real(j)) {
		errorf(err, errlen, "real numbers are not allowed");
	} else {
		errorf(err, errlen, "nesting deeper than %d levels", MANIFEST_MAX_DEPTH);
	}
	json_decref(j);
}

static int
get_string(const json_t *root, const char *key, bool required, const char **ret,
    char *err, size_t errlen)
{
	const json_t *v = json_object_get(root, key);

	if (v == NULL) {
		if (required) {
			errorf(err, errlen, "field \"%s\": is required", key);
			return -EINVAL;
		}
		*ret = NULL;
		return 0;
	}
	if (!json_is_string(v)) {
		errorf(err, errlen, "field \"%s\": must be a string", key);
		return -EINVAL;
	}
	/* jansson refuses \u0000 by default; this keeps it so. */
	if (strlen(json_string_value(v)) != json_string_length(v)) {
		errorf(err, errlen, "field \"%s\": contains a NUL character", key);
		return -EINVAL;
	}
	*ret = json_string_value(v);
	return 0;
}

static int
get_uint(const json_t *root, const char *key, unsigned min, unsigned max, unsigned *ret,
    char *err, size_t errlen)
{
	const json_t *v = json_object_get(root, key);

	if (v == NULL) {
		errorf(err, errlen, "field \"%s\": is required", key);
		return -EINVAL;
	}
	if (!json_is_integer(v) || json_integer_value(v) < (json_int_t)min ||
	    json_integer_value(v) > (json_int_t)max) {
		errorf(err, errlen, "field \"%s\": must be an integer in %u..%u", key, min, max);
		return json_is_integer(v) ? -ERANGE : -EINVAL;
	}
	*ret = (unsigned)json_integer_value(v);
	return 0;
}

/* Check that every directory between base (excluded) and the last
 * component of out is a real directory, not a symbolic link: a relative
 * path may not leave the manifest's folder through one. */
static int
check_components(const char *field, const char *out, size_t base_len, char *err,
    size_t errlen)
{
	char buf[PATH_MAX];
	struct stat st;
	size_t i, len = strlen(out);

	memcpy(buf, out, len + 1);
	for (i = base_len + 1; i < len; i++) {
		if (buf[i] != '/') {
			continue;
		}
		buf[i] = '\0';
		if (lstat(buf, &st) != 0) {
			int e = errno;

			errorf(err, errlen, "field \"%s\": %s: %s", field, buf, strerror(e));
			return -e;
		}
		if (S_ISLNK(st.st_mode)) {
			errorf(err, errlen, "field \"%s\": %s is a symbolic link; a relative path "
			    "may not pass through one", field, buf);
			return -ELOOP;
		}
		if (!S_ISDIR(st.st_mode)) {
			errorf(err, errlen, "field \"%s\": %s is not a directory", field, buf);
			return -ENOTDIR;
		}
		buf[i] = '/';
	}
	return 0;
}

/* Normalise p lexically ("." and empty components dropped, ".." removes
 * the previous component) and resolve it against base. A relative path
 * whose ".." would climb above base is refused; an absolute path may not
 * contain ".." at all, since without resolving symbolic links its
 * meaning is not lexical. */
static int
resolve_path(const char *base, const char *field, const char *p, char out[PATH_MAX],
    char *err, size_t errlen)
{
	size_t starts[MANIFEST_PATH_COMPS], lens[MANIFEST_PATH_COMPS];
	size_t n = 0, i = 0, len = strlen(p), olen, base_len;
	bool absolute = p[0] == '/';
	int r;

	if (len == 0) {
		errorf(err, errlen, "field \"%s\": must not be empty", field);
		return -EINVAL;
	}
	if (len >= PATH_MAX) {
		errorf(err, errlen, "field \"%s\": longer than %d bytes", field, PATH_MAX - 1);
		return -ENAMETOOLONG;
	}
	while (i < len) {
		size_t s, l;

		while (i < len && p[i] == '/') {
			i++;
		}
		s = i;
		while (i < len && p[i] != '/') {
			i++;
		}
		l = i - s;
		if (l == 0 || (l == 1 && p[s] == '.')) {
			continue;
		}
		if (l == 2 && p[s] == '.' && p[s + 1] == '.') {
			if (absolute) {
				errorf(err, errlen, "field \"%s\": an absolute path may not contain "
				    "\"..\"", field);
				return -EINVAL;
			}
			if (n == 0) {
				errorf(err, errlen, "field \"%s\": the relative path \"%s\" escapes "
				    "the manifest's folder", field, p);
				return -EPERM;
			}
			n--;
			continue;
		}
		/* len < PATH_MAX and each component takes at least two bytes. */
		starts[n] = s;
		lens[n] = l;
		n++;
	}
	if (n == 0) {
		errorf(err, errlen, "field \"%s\": \"%s\" names a folder, not a file", field, p);
		return -EISDIR;
	}
	if (absolute) {
		base_len = 0;
		olen = 0;
	} else {
		base_len = strlen(base);
		/* The base "/" becomes "" so that "/" + component is right. */
		if (base_len == 1) {
			base_len = 0;
		}
		if (base_len >= PATH_MAX) {
			errorf(err, errlen, "field \"%s\": the manifest's folder is too long", field);
			return -ENAMETOOLONG;
		}
		memcpy(out, base, base_len);
		olen = base_len;
	}
	for (i = 0; i < n; i++) {
		if (olen + 1 + lens[i] >= PATH_MAX) {
			errorf(err, errlen, "field \"%s\": the resolved path is longer than %d bytes",
			    field, PATH_MAX - 1);
			return -ENAMETOOLONG;
		}
		out[olen++] = '/';
		memcpy(out + olen, p + starts[i], lens[i]);
		olen += lens[i];
	}
	out[olen] = '\0';
	if (!absolute) {
		r = check_components(field, out, base_len, err, errlen);
		if (r < 0) {
			return r;
		}
	}
	return 0;
}

static int
check_target(const char *field, const char *path, enum path_kind kind, uint64_t max,
    char *err, size_t errlen)
{
	struct stat st;

	if (lstat(path, &st) != 0) {
		int e = errno;

		errorf(err, errlen, "field \"%s\": %s: %s", field, path, strerror(e));
		return -e;
	}
	if (S_ISLNK(st.st_mode)) {
		errorf(err, errlen, "field \"%s\": %s is a symbolic link; name the file itself",
		    field, path);
		return -ELOOP;
	}
	switch (kind) {
	case PATH_FILE: {
		if (!S_ISREG(st.st_mode)) {
			errorf(err, errlen, "field \"%s\": %s is not a regular file", field, path);
			return -EINVAL;
		}
		if ((uint64_t)st.st_size > max) {
			errorf(err, errlen, "field \"%s\": %s is %llu bytes, over the limit of %llu",
			    field, path, (unsigned long long)st.st_size, (unsigned long long)max);
			return -EFBIG;
		}
		return 0;
	}
	case PATH_DIR: {
		if (!S_ISDIR(st.st_mode)) {
			errorf(err, errlen, "field \"%s\": %s is not a directory", field, path);
			return -ENOTDIR;
		}
		return 0;
	}
	default: {
		return -EINVAL;
	}
	}
}

static int
get_path(const json_t *root, const char *base, const char *key, bool required,
    enum path_kind kind, uint64_t max, char out[PATH_MAX], char *err, size_t errlen)
{
	const char *s;
	int r;

	r = get_string(root, key, required, &s, err, errlen);
	if (r < 0) {
		return r;
	}
	if (s == NULL) {
		out[0] = '\0';
		return 0;
	}
	r = resolve_path(base, key, s, out, err, errlen);
	if (r < 0) {
		return r;
	}
	return check_target(key, out, kind, max, err, errlen);
}

static int
check_level(const json_t *v)
{
	const char *s = json_string_value(v);

	if (s == NULL) {
		return -EINVAL;
	}
	if (strcmp(s, "never") == 0 || strcmp(s, "ask") == 0 || strcmp(s, "allow") == 0) {
		return 0;
	}
	return -EINVAL;
}

/* The envelope: {tool: level | {"level": level, bound: value...}}, kept as
 * given (canonical when measured) and checked against docs/envelope.md. */
static int
check_envelope(const json_t *env, char *err, size_t errlen)
{
	struct envelope *parsed;
	char env_err[256];
	const char *op;
	json_t *v;
	int r;

	if (env == NULL) {
		errorf(err, errlen, "field \"envelope\": is required");
		return -EINVAL;
	}
	if (!json_is_object(env)) {
		errorf(err, errlen, "field \"envelope\": must be an object of operations");
		return -EINVAL;
	}
	if (json_object_size(env) > MANIFEST_ENVELOPE_MAX) {
		errorf(err, errlen, "field \"envelope\": more than %d operations",
		    MANIFEST_ENVELOPE_MAX);
		return -E2BIG;
	}
	json_object_foreach((json_t *)env, op, v) {
		if (parse_op(op, TOKEN_OP_MAX) < 0) {
			errorf(err, errlen, "field \"envelope\": operation names are 1..%d characters "
			    "[A-Za-z0-9._:/-] starting with a letter or digit", TOKEN_OP_MAX);
			return -EINVAL;
		}
		if (json_is_string(v)) {
			if (check_level(v) < 0) {
				errorf(err, errlen, "field \"envelope\": operation \"%s\": must be "
				    "\"never\", \"ask\", \"allow\" or an object with a \"level\"", op);
				return -EINVAL;
			}
			continue;
		}
		if (!json_is_object(v)) {
			errorf(err, errlen, "field \"envelope\": operation \"%s\": must be \"never\", "
			    "\"ask\", \"allow\" or an object with a \"level\"", op);
			return -EINVAL;
		}
		if (check_level(json_object_get(v, "level")) < 0) {
			errorf(err, errlen, "field \"envelope\": operation \"%s\": \"level\" must be "
			    "\"never\", \"ask\" or \"allow\"", op);
			return -EINVAL;
		}
	}
	/* The envelope's meaning (docs/envelope.md): known tools, known
	 * bounds, valid values. What the proxy will enforce is refused here,
	 * when a manifest is loaded and when attestd takes a launch's config,
	 * rather than at the first call. */
	parsed = NULL;
	r = envelope_parse(env, &parsed, env_err, sizeof(env_err));
	envelope_free(parsed);
	if (r < 0) {
		errorf(err, errlen, "field \"envelope\": %s", env_err);
		return r;
	}
	return 0;
}

static int
check_cmdline(const char *s, char *err, size_t errlen)
{
	size_t i;

	for (i = 0; s[i] != '\0'; i++) {
		if (i >= MANIFEST_CMDLINE_MAX) {
			errorf(err, errlen, "field \"cmdline\": longer than %d characters",
			    MANIFEST_CMDLINE_MAX);
			return -E2BIG;
		}
		if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7e) {
			errorf(err, errlen, "field \"cmdline\": character %zu is not printable ASCII",
			    i + 1);
			return -EINVAL;
		}
	}
	return 0;
}

/* The fields a manifest and its canonical config share. */
static int
parse_fields(const json_t *root, struct manifest *m, char *err, size_t errlen)
{
	const char *s;
	int r;

	r = get_string(root, "name", true, &s, err, errlen);
	if (r < 0) {
		return r;
	}
	if (parse_ident(s, MANIFEST_NAME_MAX) < 0) {
		errorf(err, errlen, "field \"name\": must be 1..%d characters [A-Za-z0-9._:-] "
		    "starting with a letter or digit", MANIFEST_NAME_MAX);
		return -EINVAL;
	}
	memcpy(m->name, s, strlen(s) + 1);

	r = get_string(root, "cmdline", true, &s, err, errlen);
	if (r < 0) {
		return r;
	}
	r = check_cmdline(s, err, errlen);
	if (r < 0) {
		return r;
	}
	memcpy(m->cmdline, s, strlen(s) + 1);

	if ((r = get_uint(root, "vcpus", 1, 32, &m->vcpus, err, errlen)) < 0 ||
	    (r = get_uint(root, "memory_mib", 64, 65536, &m->memory_mib, err, errlen)) < 0) {
		return r;
	}

	r = get_string(root, "vmm", true, &s, err, errlen);
	if (r < 0) {
		return r;
	}
	if (strcmp(s, "qemu") == 0) {
		m->vmm = MANIFEST_VMM_QEMU;
	} else if (strcmp(s, "firecracker") == 0) {
		m->vmm = MANIFEST_VMM_FIRECRACKER;
	} else {
		errorf(err, errlen, "field \"vmm\": must be \"qemu\" or \"firecracker\"");
		return -EINVAL;
	}

	return check_envelope(json_object_get(root, "envelope"), err, errlen);
}

int
manifest_parse(const char *buf, size_t len, const char *base_dir, struct manifest **ret,
    char *err, size_t errlen)
{
	struct manifest *m = NULL;
	const char *bad = NULL;
	json_t *root = NULL;
	int r;

	if (err != NULL && errlen > 0) {
		err[0] = '\0';
	}
	if (base_dir == NULL || base_dir[0] != '/') {
		errorf(err, errlen, "the manifest's folder must be an absolute path");
		r = -EINVAL;
		goto out;
	}
	if (len > MANIFEST_MAX_BYTES) {
		errorf(err, errlen, "larger than %d bytes", MANIFEST_MAX_BYTES);
		r = -EFBIG;
		goto out;
	}
	r = cjson_parse(buf, len, MANIFEST_MAX_BYTES, &root);
	if (r < 0) {
		explain_parse_error(buf, len, err, errlen);
		goto out;
	}
	if (!json_is_object(root)) {
		errorf(err, errlen, "must be a JSON object");
		r = -EINVAL;
		goto out;
	}
	if (cjson_only_keys(root, manifest_keys, &bad) < 0) {
		errorf(err, errlen, "field \"%s\": unknown field", bad != NULL ? bad : "?");
		r = -EINVAL;
		goto out;
	}
	if (depth_of(root) > MANIFEST_MAX_DEPTH) {
		errorf(err, errlen, "field \"envelope\": nesting deeper than %d levels",
		    MANIFEST_MAX_DEPTH);
		r = -EINVAL;
		goto out;
	}
	m = calloc(1, sizeof(*m));
	if (m == NULL) {
		errorf(err, errlen, "out of memory");
		r = -ENOMEM;
		goto out;
	}
	r = parse_fields(root, m, err, errlen);
	if (r < 0) {
		goto out;
	}
	/* Paths last: they touch the file system. */
	if ((r = get_path(root, base_dir, "kernel", true, PATH_FILE, MANIFEST_KERNEL_MAX,
	    m->kernel, err, errlen)) < 0 ||
	    (r = get_path(root, base_dir, "initrd", true, PATH_FILE, MANIFEST_INITRD_MAX,
	    m->initrd, err, errlen)) < 0 ||
	    (r = get_path(root, base_dir, "rootfs", false, PATH_FILE, MANIFEST_ROOTFS_MAX,
	    m->rootfs, err, errlen)) < 0 ||
	    (r = get_path(root, base_dir, "workspace", false, PATH_DIR, 0, m->workspace,
	    err, errlen)) < 0) {
		goto out;
	}

	if (m->workspace[0] != '\0') {
		json_t *w = json_string(m->workspace);

		if (w == NULL) {
			errorf(err, errlen, "field \"workspace\": the resolved path is not UTF-8");
			r = -EINVAL;
			goto out;
		}
		json_decref(w);
	}
	m->envelope = json_deep_copy(json_object_get(root, "envelope"));
	if (m->envelope == NULL) {
		errorf(err, errlen, "out of memory");
		r = -ENOMEM;
		goto out;
	}
	*ret = m;
	m = NULL;
	r = 0;
out:
	manifest_free(m);
	json_decref(root);
	return r;
}

int
manifest_load(const char *path, struct manifest **ret, char *err, size_t errlen)
{
	char dir[PATH_MAX], base[PATH_MAX];
	char *buf = NULL, *slash;
	size_t len = 0, plen;
	int r;

	if (err != NULL && errlen > 0) {
		err[0] = '\0';
	}
	plen = strlen(path);
	if (plen == 0 || plen >= sizeof(dir)) {
		errorf(err, errlen, "%s: bad path", path);
		r = -EINVAL;
		goto out;
	}
	r = fs_read_file(path, MANIFEST_MAX_BYTES, &buf, &len);
	if (r < 0) {
		errorf(err, errlen, "%s: %s", path, r == -EFBIG ? "larger than 65536 bytes" :
		    r == -ELOOP ? "is a symbolic link" : r == -EINVAL ? "not a regular file" :
		    strerror(-r));
		goto out;
	}
	memcpy(dir, path, plen + 1);
	slash = strrchr(dir, '/');
	if (slash == NULL) {
		memcpy(dir, ".", 2);
	} else if (slash == dir) {
		dir[1] = '\0';
	} else {
		*slash = '\0';
	}
	if (realpath(dir, base) == NULL) {
		r = -errno;
		errorf(err, errlen, "%s: resolving its folder: %s", path, strerror(-r));
		goto out;
	}
	r = manifest_parse(buf, len, base, ret, err, errlen);
out:
	free(buf);
	return r;
}

void
manifest_free(struct manifest *m)
{
	if (m == NULL) {
		return;
	}
	json_decref(m->envelope);
	free(m);
}

json_t *
manifest_config(const struct manifest *m)
{
	json_t *j, *env;

	env = json_deep_copy(m->envelope);
	if (env == NULL) {
		return NULL;
	}
	j = json_pack("{s:s,s:s,s:I,s:I,s:s,s:o}", "name", m->name, "cmdline", m->cmdline,
	    "vcpus", (json_int_t)m->vcpus, "memory_mib", (json_int_t)m->memory_mib,
	    "vmm", m->vmm == MANIFEST_VMM_FIRECRACKER ? "firecracker" : "qemu",
	    "envelope", env);
	if (j == NULL) {
		return NULL;   /* "o" took env, also on failure */
	}
	if (m->workspace[0] != '\0' &&
	    json_object_set_new(j, "workspace", json_string(m->workspace)) != 0) {
		json_decref(j);
		return NULL;
	}
	return j;
}

/* A workspace in a config: what resolve_path makes of one, an absolute path
 * without empty, "." or ".." components. */
static int
check_config_workspace(const json_t *v, char *err, size_t errlen)
{
	const char *s = json_string_value(v), *p;
	size_t len;

	if (s == NULL || strlen(s) != json_string_length(v)) {
		errorf(err, errlen, "field \"workspace\": must be a string");
		return -EINVAL;
	}
	len = strlen(s);
	if (len < 2 || len >= PATH_MAX || s[0] != '/' || s[len - 1] == '/') {
		errorf(err, errlen, "field \"workspace\": must be an absolute, normalised path");
		return -EINVAL;
	}
	for (p = s; *p != '\0'; p++) {
		if (p[0] != '/') {
			continue;
		}
		if (p[1] == '/' || (p[1] == '.' && (p[2] == '/' || p[2] == '\0')) ||
		    (p[1] == '.' && p[2] == '.' && (p[3] == '/' || p[3] == '\0'))) {
			errorf(err, errlen, "field \"workspace\": must be an absolute, normalised "
			    "path");
			return -EINVAL;
		}
	}
	return 0;
}

int
manifest_check_config(const json_t *config, char *err, size_t errlen)
{
	struct manifest *m = NULL;
	const char *bad = NULL;
	const json_t *ws;
	int r;

	if (err != NULL && errlen > 0) {
		err[0] = '\0';
	}
	if (!json_is_object(config)) {
		errorf(err, errlen, "the config must be a JSON object");
		return -EINVAL;
	}
	if (cjson_only_keys(config, config_keys, &bad) < 0) {
		errorf(err, errlen, "field \"%s\": unknown field", bad != NULL ? bad : "?");
		return -EINVAL;
	}
	if (depth_of(config) > MANIFEST_MAX_DEPTH || has_real(config)) {
		errorf(err, errlen, "field \"envelope\": nesting deeper than %d levels or a real "
		    "number", MANIFEST_MAX_DEPTH);
		return -EINVAL;
	}
	m = calloc(1, sizeof(*m));
	if (m == NULL) {
		errorf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	r = parse_fields(config, m, err, errlen);
	if (r < 0) {
		goto out;
	}
	ws = json_object_get(config, "workspace");
	if (ws != NULL) {
		r = check_config_workspace(ws, err, errlen);
		if (r < 0) {
			goto out;
		}
	}
	r = 0;
out:
	free(m);
	return r;
}

enum manifest_level
manifest_envelope_level(const json_t *envelope, const char *op)
{
	const json_t *v = json_object_get(envelope, op);
	const char *s;

	if (json_is_object(v)) {
		v = json_object_get(v, "level");
	}
	s = json_string_value(v);
	if (s == NULL) {
		return MANIFEST_LEVEL_NEVER;
	}
	if (strcmp(s, "allow") == 0) {
		return MANIFEST_LEVEL_ALLOW;
	}
	if (strcmp(s, "ask") == 0) {
		return MANIFEST_LEVEL_ASK;
	}
	return MANIFEST_LEVEL_NEVER;
}
