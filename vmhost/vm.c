#include "vm.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cjson.h"
#include "clock.h"
#include "fsutil.h"
#include "parse.h"

#define VM_STAT_MAX        4096
#define VM_LIST_MAX        4096
#define VM_STAT_START_TOK  20       /* field 22 is the 20th after "(comm)" */
#define VM_POLL_MS         20
#define VM_AFTER_KILL_MS   3000
#define VM_LOCK_RETRY_MS   3000

struct vm_run {
	char dir[PATH_MAX];
	int lock_fd;
};

static const char *const state_files[] = { "vm.json", "pid", "agent.sock", NULL };

int
vm_name_check(const char *name)
{
	if (name == NULL || strlen(name) > MANIFEST_NAME_MAX) {
		return -EINVAL;
	}
	return parse_ident(name, MANIFEST_NAME_MAX) == 0 ? 0 : -EINVAL;
}

/* --- parsers --------------------------------------------------------------- */

static int
get_str(const json_t *j, const char *key, char *out, size_t outlen)
{
	const json_t *v = json_object_get(j, key);
	const char *s = json_string_value(v);
	size_t len;

	if (s == NULL) {
		return -EINVAL;
	}
	len = json_string_length(v);
	if (len != strlen(s) || len >= outlen) {
		return -EINVAL;
	}
	memcpy(out, s, len + 1);
	return 0;
}

static int
get_int(const json_t *j, const char *key, int64_t min, int64_t max, int64_t *ret)
{
	const json_t *v = json_object_get(j, key);
	json_int_t i;

	if (!json_is_integer(v)) {
		return -EINVAL;
	}
	i = json_integer_value(v);
	if (i < min || i > max) {
		return -ERANGE;
	}
	*ret = (int64_t)i;
	return 0;
}

int
vm_state_parse(const char *buf, size_t len, struct vm_state *ret)
{
	static const char *const keys[] = {
		"name", "vm_id", "launch_digest", "vmm", "accel", "started", "pid",
		"pid_start", "vmm_pid", "vmm_start", "foreground", NULL,
	};
	struct vm_state s;
	uint8_t digest[32];
	const json_t *fg;
	json_t *j = NULL;
	int64_t v;
	int r;

	memset(&s, 0, sizeof(s));
	if (buf == NULL || ret == NULL) {
		return -EINVAL;
	}
	r = cjson_parse(buf, len, VM_STATE_MAX, &j);
	if (r != 0) {
		goto out;
	}
	r = -EINVAL;
	if (!json_is_object(j) || cjson_only_keys(j, keys, NULL) != 0 ||
	    json_object_size(j) != sizeof(keys) / sizeof(keys[0]) - 1) {
		goto out;
	}
	if (get_str(j, "name", s.name, sizeof(s.name)) != 0 || vm_name_check(s.name) != 0 ||
	    get_str(j, "vm_id", s.vm_id, sizeof(s.vm_id)) != 0 ||
	    parse_ident(s.vm_id, VM_ID_MAX) != 0 ||
	    get_str(j, "launch_digest", s.launch_digest, sizeof(s.launch_digest)) != 0 ||
	    parse_hex(s.launch_digest, digest, sizeof(digest)) != 0 ||
	    get_str(j, "vmm", s.vmm, sizeof(s.vmm)) != 0 ||
	    (strcmp(s.vmm, "qemu") != 0 && strcmp(s.vmm, "firecracker") != 0) ||
	    get_str(j, "accel", s.accel, sizeof(s.accel)) != 0 ||
	    (strcmp(s.accel, "kvm") != 0 && strcmp(s.accel, "tcg") != 0)) {
		goto out;
	}
	if (get_int(j, "started", 0, INT64_MAX, &s.started) != 0) {
		goto out;
	}
	if (get_int(j, "pid", 1, VM_PID_MAX, &v) != 0) {
		goto out;
	}
	s.pid = (pid_t)v;
	if (get_int(j, "pid_start", 0, INT64_MAX, &v) != 0) {
		goto out;
	}
	s.pid_start = (uint64_t)v;
	if (get_int(j, "vmm_pid", 1, VM_PID_MAX, &v) != 0) {
		goto out;
	}
	s.vmm_pid = (pid_t)v;
	if (get_int(j, "vmm_start", 0, INT64_MAX, &v) != 0) {
		goto out;
	}
	s.vmm_start = (uint64_t)v;
	fg = json_object_get(j, "foreground");
	if (!json_is_boolean(fg)) {
		goto out;
	}
	s.foreground = json_is_true(fg);
	*ret = s;
	r = 0;
out:
	json_decref(j);
	return r;
}

json_t *
vm_state_to_json(const struct vm_state *s)
{
	if (s == NULL || s->pid_start > INT64_MAX || s->vmm_start > INT64_MAX) {
		return NULL;
	}
	return json_pack("{s:s, s:s, s:s, s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:b}",
	    "name", s->name, "vm_id", s->vm_id, "launch_digest", s->launch_digest,
	    "vmm", s->vmm, "accel", s->accel, "started", (json_int_t)s->started,
	    "pid", (json_int_t)s->pid, "pid_start", (json_int_t)s->pid_start,
	    "vmm_pid", (json_int_t)s->vmm_pid, "vmm_start", (json_int_t)s->vmm_start,
	    "foreground", s->foreground ? 1 : 0);
}

int
vm_state_format(const struct vm_state *s, char **ret, size_t *ret_len)
{
	struct vm_state check;
	json_t *j = vm_state_to_json(s);
	char *out = NULL;
	size_t len = 0;
	int r;

	if (j == NULL) {
		return -EINVAL;
	}
	r = cjson_dump(j, &out, &len);
	if (r != 0) {
		goto out;
	}
	/* Never write what we would refuse to read back. */
	r = vm_state_parse(out, len, &check);
	if (r != 0) {
		goto out;
	}
	*ret = out;
	*ret_len = len;
	out = NULL;
out:
	free(out);
	json_decref(j);
	return r;
}

int
vm_pid_parse(const char *buf, size_t len, pid_t *ret)
{
	char tmp[16];
	uint64_t v;

	if (buf == NULL) {
		return -EINVAL;
	}
	if (len > 0 && buf[len - 1] == '\n') {
		len--;
	}
	if (len == 0 || len >= sizeof(tmp) || memchr(buf, '\0', len) != NULL) {
		return -EINVAL;
	}
	memcpy(tmp, buf, len);
	tmp[len] = '\0';
	if (parse_u64(tmp, 1, VM_PID_MAX, &v) != 0) {
		return -EINVAL;
	}
	*ret = (pid_t)v;
	return 0;
}

int
vm_proc_stat_parse(const char *buf, size_t len, char *ret_state, uint64_t *ret_start)
{
	char tok[24], state = '\0';
	const char *p, *end, *close = NULL;
	uint64_t start = 0;
	size_t i, n;
	int field;

	if (buf == NULL || ret_start == NULL || len == 0 || len > VM_STAT_MAX ||
	    memchr(buf, '\0', len) != NULL) {
		return -EINVAL;
	}
	end = buf + len;
	/* "PID (COMM) S ...": COMM may contain anything but NUL, ')' and
	 * spaces included, so the last ')' ends it. */
	for (i = 0; i < len && buf[i] >= '0' && buf[i] <= '9'; i++) {
	}
	if (i == 0 || i + 2 > len || buf[i] != ' ' || buf[i + 1] != '(') {
		return -EINVAL;
	}
	for (p = buf + i + 2; p < end; p++) {
		if (*p == ')') {
			close = p;
		}
	}
	if (close == NULL || end - close < 2 || close[1] != ' ') {
		return -EINVAL;
	}
	p = close + 2;
	for (field = 1; field <= VM_STAT_START_TOK; field++) {
		const char *t = p;

		while (p < end && *p != ' ' && *p != '\n') {
			p++;
		}
		n = (size_t)(p - t);
		if (n == 0 || n >= sizeof(tok)) {
			return -EINVAL;
		}
		memcpy(tok, t, n);
		tok[n] = '\0';
		if (field == 1) {
			if (n != 1) {
				return -EINVAL;
			}
			state = tok[0];
		} else if (field == VM_STAT_START_TOK) {
			if (parse_u64(tok, 0, INT64_MAX, &start) != 0) {
				return -EINVAL;
			}
			break;
		}
		if (p >= end || *p != ' ') {
			return -EINVAL;
		}
		p++;
	}
	if (ret_state != NULL) {
		*ret_state = state;
	}
	*ret_start = start;
	return 0;
}

int
vm_proc_start(pid_t pid, uint64_t *ret_start)
{
	char path[64], *buf = NULL, st = '\0';
	size_t len = 0;
	uint64_t start = 0;
	int r;

	if (pid <= 0) {
		return -EINVAL;
	}
	(void)snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	r = fs_read_file(path, VM_STAT_MAX, &buf, &len);
	if (r != 0) {
		r = r == -ENOENT ? -ESRCH : r;
		goto out;
	}
	r = vm_proc_stat_parse(buf, len, &st, &start);
	if (r != 0) {
		goto out;
	}
	if (st == 'Z' || st == 'X') {
		r = -ESRCH;
		goto out;
	}
	*ret_start = start;
out:
	free(buf);
	return r;
}

bool
vm_pid_is(pid_t pid, uint64_t start)
{
	char path[32];
	struct stat st;
	uint64_t now = 0;

	if (pid <= 0 || vm_proc_start(pid, &now) != 0 || now != start) {
		return false;
	}
	(void)snprintf(path, sizeof(path), "/proc/%d", (int)pid);
	return stat(path, &st) == 0 && st.st_uid == geteuid();
}

/* --- the run folder ------------------------------------------------------ */

static int
dir_is_private(const char *path)
{
	struct stat st;

	if (lstat(path, &st) != 0) {
		return -errno;
	}
	if (!S_ISDIR(st.st_mode)) {
		return -ENOTDIR;
	}
	if (st.st_uid != geteuid() || (st.st_mode & 022) != 0) {
		return -EPERM;
	}
	return 0;
}

int
vm_rundir_prepare(const char *rundir)
{
	int r;

	if (rundir == NULL || rundir[0] != '/') {
		return -EINVAL;
	}
	r = fs_ensure_dir(rundir, 0700);
	if (r != 0) {
		return r;
	}
	return dir_is_private(rundir);
}

static int
join(char *buf, size_t len, const char *a, const char *b)
{
	int n = snprintf(buf, len, "%s/%s", a, b);

	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

static void
remove_state_files(const char *dir)
{
	char path[PATH_MAX];
	size_t i;

	for (i = 0; state_files[i] != NULL; i++) {
		if (join(path, sizeof(path), dir, state_files[i]) == 0) {
			(void)unlink(path);
		}
	}
}

/* Lock RUNDIR/NAME/lock; create the folder first if create. */
static int
run_acquire(const char *rundir, const char *name, bool create, struct vm_run **ret)
{
	struct vm_run *r = NULL;
	char lock[PATH_MAX];
	int rc, tries;

	if (rundir == NULL || vm_name_check(name) != 0) {
		return -EINVAL;
	}
	r = calloc(1, sizeof(*r));
	if (r == NULL) {
		return -ENOMEM;
	}
	r->lock_fd = -1;
	if ((rc = join(r->dir, sizeof(r->dir), rundir, name)) != 0 ||
	    (rc = join(lock, sizeof(lock), r->dir, "lock")) != 0) {
		goto out;
	}
	if (create) {
		rc = fs_ensure_dir(r->dir, 0700);
		if (rc != 0) {
			goto out;
		}
	}
	rc = dir_is_private(r->dir);
	if (rc != 0) {
		goto out;
	}
	/* The lock file is removed by whoever releases a name, so after
	 * locking make sure the path still names the file we locked. */
	for (tries = 0; tries < 8; tries++) {
		struct stat a, b;

		r->lock_fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
		if (r->lock_fd < 0) {
			rc = -errno;
			goto out;
		}
		if (flock(r->lock_fd, LOCK_EX | LOCK_NB) != 0) {
			rc = errno == EWOULDBLOCK ? -EBUSY : -errno;
			goto out;
		}
		if (fstat(r->lock_fd, &a) == 0 && lstat(lock, &b) == 0 && a.st_dev == b.st_dev &&
		    a.st_ino == b.st_ino) {
			break;
		}
		(void)close(r->lock_fd);
		r->lock_fd = -1;
	}
	if (r->lock_fd < 0) {
		rc = -EAGAIN;
		goto out;
	}
	remove_state_files(r->dir);
	*ret = r;
	r = NULL;
	rc = 0;
out:
	if (r != NULL) {
		if (r->lock_fd >= 0) {
			(void)close(r->lock_fd);
		}
		free(r);
	}
	return rc;
}

int
vm_run_acquire(const char *rundir, const char *name, struct vm_run **ret)
{
	return run_acquire(rundir, name, true, ret);
}

int
vm_run_path(const struct vm_run *r, const char *leaf, char *buf, size_t len)
{
	if (r == NULL || leaf == NULL || strchr(leaf, '/') != NULL) {
		return -EINVAL;
	}
	return join(buf, len, r->dir, leaf);
}

int
vm_run_publish(struct vm_run *r, const struct vm_state *s)
{
	char path[PATH_MAX], pid[24];
	char *json = NULL;
	size_t len = 0;
	int rc, n;

	if (r == NULL || s == NULL) {
		return -EINVAL;
	}
	rc = vm_state_format(s, &json, &len);
	if (rc != 0) {
		goto out;
	}
	if ((rc = join(path, sizeof(path), r->dir, "vm.json")) != 0 ||
	    (rc = fs_write_file_atomic(path, json, len, 0600)) != 0) {
		goto out;
	}
	n = snprintf(pid, sizeof(pid), "%d\n", (int)s->pid);
	if (n < 0 || (size_t)n >= sizeof(pid)) {
		rc = -EINVAL;
		goto out;
	}
	if ((rc = join(path, sizeof(path), r->dir, "pid")) != 0 ||
	    (rc = fs_write_file_atomic(path, pid, (size_t)n, 0600)) != 0) {
		goto out;
	}
	rc = 0;
out:
	free(json);
	return rc;
}

void
vm_run_free(struct vm_run *r, bool remove_state)
{
	char lock[PATH_MAX];

	if (r == NULL) {
		return;
	}
	if (remove_state && r->lock_fd >= 0) {
		remove_state_files(r->dir);
		if (join(lock, sizeof(lock), r->dir, "lock") == 0) {
			(void)unlink(lock);
		}
		(void)rmdir(r->dir);    /* fails while logs are there: fine */
	}
	if (r->lock_fd >= 0) {
		(void)close(r->lock_fd);
	}
	free(r);
}

/* --- list and stop ------------------------------------------------------- */

int
vm_state_read(const char *rundir, const char *name, struct vm_state *ret)
{
	char dir[PATH_MAX], path[PATH_MAX], *buf = NULL;
	struct vm_state s;
	size_t len = 0;
	pid_t pid = 0;
	int r;

	if (rundir == NULL || vm_name_check(name) != 0 || ret == NULL) {
		return -EINVAL;
	}
	if ((r = join(dir, sizeof(dir), rundir, name)) != 0 ||
	    (r = join(path, sizeof(path), dir, "vm.json")) != 0) {
		return r;
	}
	r = fs_read_file(path, VM_STATE_MAX, &buf, &len);
	if (r != 0) {
		goto out;
	}
	r = vm_state_parse(buf, len, &s);
	if (r != 0) {
		goto out;
	}
	free(buf);
	buf = NULL;
	if ((r = join(path, sizeof(path), dir, "pid")) != 0 ||
	    (r = fs_read_file(path, 32, &buf, &len)) != 0 ||
	    (r = vm_pid_parse(buf, len, &pid)) != 0) {
		goto out;
	}
	if (pid != s.pid || strcmp(s.name, name) != 0) {
		r = -EINVAL;
		goto out;
	}
	*ret = s;
out:
	free(buf);
	return r;
}

static int
cmp_name(const void *a, const void *b)
{
	const json_t *const *x = a, *const *y = b;

	return strcmp(json_string_value(json_object_get(*x, "name")),
	    json_string_value(json_object_get(*y, "name")));
}

int
vm_list(const char *rundir, json_t **ret)
{
	json_t *items[VM_LIST_MAX];
	json_t *arr = NULL;
	struct dirent *de;
	DIR *d = NULL;
	size_t n = 0, i;
	int fd, r;

	if (rundir == NULL) {
		return -EINVAL;
	}
	fd = open(rundir, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0) {
		if (errno == ENOENT) {
			arr = json_array();
			if (arr == NULL) {
				return -ENOMEM;
			}
			*ret = arr;
			return 0;
		}
		return -errno;
	}
	d = fdopendir(fd);
	if (d == NULL) {
		r = -errno;
		(void)close(fd);
		return r;
	}
	while ((de = readdir(d)) != NULL && n < VM_LIST_MAX) {
		struct vm_state s;
		char dir[PATH_MAX], path[PATH_MAX];
		json_t *o;

		if (vm_name_check(de->d_name) != 0 || vm_state_read(rundir, de->d_name, &s) != 0 ||
		    !vm_pid_is(s.pid, s.pid_start)) {
			continue;
		}
		o = vm_state_to_json(&s);
		if (o == NULL) {
			r = -ENOMEM;
			goto out;
		}
		items[n++] = o;
		if (join(dir, sizeof(dir), rundir, de->d_name) != 0) {
			continue;
		}
		if (join(path, sizeof(path), dir, "agent.sock") == 0) {
			(void)json_object_set_new(o, "agent_socket", json_string(path));
		}
		if (!s.foreground && join(path, sizeof(path), dir, "console.log") == 0) {
			(void)json_object_set_new(o, "console", json_string(path));
		}
	}
	qsort(items, n, sizeof(items[0]), cmp_name);
	arr = json_array();
	if (arr == NULL) {
		r = -ENOMEM;
		goto out;
	}
	for (i = 0; i < n; i++) {
		if (json_array_append_new(arr, items[i]) != 0) {
			items[i] = NULL;
			r = -ENOMEM;
			goto out;
		}
		items[i] = NULL;
	}
	*ret = arr;
	arr = NULL;
	r = 0;
out:
	for (i = 0; i < n; i++) {
		json_decref(items[i]);
	}
	json_decref(arr);
	(void)closedir(d);
	return r;
}

/* Wait until pid (with that start time) is gone; true if it is. */
static bool
wait_gone(pid_t pid, uint64_t start, uint32_t ms)
{
	uint64_t deadline = clock_mono_ms() + ms;

	while (vm_pid_is(pid, start)) {
		if (clock_mono_ms() >= deadline) {
			return false;
		}
		clock_sleep_ms(VM_POLL_MS);
	}
	return true;
}

/* Take the name's lock (waiting a little for a supervisor that is still
 * cleaning up) and remove what it left. The folder may be gone already. */
static int
clean_after(const char *rundir, const char *name)
{
	uint64_t deadline = clock_mono_ms() + VM_LOCK_RETRY_MS;
	struct vm_run *r = NULL;
	int rc;

	for (;;) {
		rc = run_acquire(rundir, name, false, &r);
		if (rc != -EBUSY || clock_mono_ms() >= deadline) {
			break;
		}
		clock_sleep_ms(VM_POLL_MS);
	}
	if (rc == -ENOENT) {
		return 0;
	}
	if (rc != 0) {
		return rc;
	}
	vm_run_free(r, true);
	return 0;
}

int
vm_stop(const char *rundir, const char *name, uint32_t wait_ms, bool *ret_forced)
{
	char dir[PATH_MAX];
	struct vm_state s;
	struct stat st;
	bool forced = false;
	int r;

	if (rundir == NULL || vm_name_check(name) != 0) {
		return -EINVAL;
	}
	if ((r = join(dir, sizeof(dir), rundir, name)) != 0) {
		return r;
	}
	if (lstat(dir, &st) != 0) {
		return errno == ENOENT ? -ENOENT : -errno;
	}
	r = vm_state_read(rundir, name, &s);
	if (r != 0 || !vm_pid_is(s.pid, s.pid_start)) {
		struct vm_run *run = NULL;

		/* Nothing trustworthy to signal. Held: a launch is still
		 * measuring; free: a dead launch's leftovers. */
		r = run_acquire(rundir, name, false, &run);
		if (r == -EBUSY) {
			return -EBUSY;
		}
		if (r != 0) {
			return r;
		}
		vm_run_free(run, true);
		return -ESRCH;
	}
	if (kill(s.pid, SIGTERM) != 0 && errno != ESRCH) {
		return -errno;
	}
	if (!wait_gone(s.pid, s.pid_start, wait_ms)) {
		(void)kill(s.pid, SIGKILL);
		forced = true;
		(void)wait_gone(s.pid, s.pid_start, VM_AFTER_KILL_MS);
	}
	/* QEMU dies with its supervisor (PR_SET_PDEATHSIG); make sure. */
	if (vm_pid_is(s.vmm_pid, s.vmm_start)) {
		(void)kill(s.vmm_pid, SIGKILL);
		forced = true;
		if (!wait_gone(s.vmm_pid, s.vmm_start, VM_AFTER_KILL_MS)) {
			return -ETIMEDOUT;
		}
	}
	if (vm_pid_is(s.pid, s.pid_start)) {
		return -ETIMEDOUT;
	}
	r = clean_after(rundir, name);
	if (r != 0) {
		return r;
	}
	if (ret_forced != NULL) {
		*ret_forced = forced;
	}
	return 0;
}
