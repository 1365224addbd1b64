/* audit: the append-only, hash-chained audit log (lib/audit.h).
 *
 * A record is one line of canonical JSON (cjson_dump) ending in "\n":
 *   {...caller's fields...,"hash":H,"prev":P,"seq":N,"time":T}
 * H = lower-case hex SHA-256 of the canonical record without "hash"; P is
 * the previous record's H (64 zeros for seq 0); T is unix seconds. A line
 * is accepted only in exactly that form, so any edit of its bytes changes
 * either its form ("malformed") or its hash.
 *
 * Writing: one write() of the whole line on an O_APPEND descriptor, then
 * fsync, under an exclusive flock that every appender takes; a short write
 * is cut off again before the lock is released, so no reader or appender
 * ever sees half a line unless a process died in the middle of it, which
 * leaves a torn tail that everyone then refuses to write after. */
#include "audit.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/sha.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cjson.h"
#include "parse.h"

#define R_HASH      "hash_mismatch"
#define R_PREV      "prev_mismatch"
#define R_SEQ       "seq_gap"
#define R_MALFORMED "malformed"
#define R_TORN      "torn_tail"
#define R_IO        "io_error"

#define HEX_LEN 64

static const char *const reserved_keys[] = { "seq", "prev", "time", "hash" };

/* Where verification stands: records accepted, and the last one's hash. */
struct chain {
	uint64_t n;
	char prev[HEX_LEN + 1];
};

struct audit {
	int fd;
	off_t end;          /* bytes of the file verified, all whole lines */
	struct chain c;
	bool failed;        /* a write or fsync failed: what is on disk is unknown */
};

static void
chain_init(struct chain *c)
{
	c->n = 0;
	memset(c->prev, '0', HEX_LEN);
	c->prev[HEX_LEN] = '\0';
}

static int
lock_fd(int fd, int op)
{
	while (flock(fd, op) < 0) {
		if (errno != EINTR) {
			return -errno;
		}
	}
	return 0;
}

/* The lower-case hex SHA-256 of o's canonical form. */
static int
hash_hex(const json_t *o, char out[HEX_LEN + 1])
{
	uint8_t h[32];
	int r;

	r = cjson_sha256(o, h);
	if (r < 0) {
		return r;
	}
	format_hex(h, sizeof(h), out);
	out[HEX_LEN] = '\0';
	return 0;
}

static bool
is_hex64(const json_t *v)
{
	const char *s = json_string_value(v);
	size_t i;

	if (s == NULL || json_string_length(v) != HEX_LEN) {
		return false;
	}
	for (i = 0; i < HEX_LEN; i++) {
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f'))) {
			return false;
		}
	}
	return true;
}

/* Check one line (without its newline) as the next record of c, and
 * advance c. -EBADMSG with *ret_reason, or -ENOMEM. */
static int
chain_line(struct chain *c, const char *line, size_t len, const char **ret_reason)
{
	const json_t *seq, *prev, *tm, *hash;
	char want[HEX_LEN + 1], got[HEX_LEN + 1];
	json_t *j = NULL;
	char *canon = NULL;
	size_t clen = 0;
	int r;

	if (len == 0 || len > AUDIT_LINE_MAX - 1 ||
	    cjson_parse(line, len, AUDIT_LINE_MAX - 1, &j) < 0 || !json_is_object(j)) {
		*ret_reason = R_MALFORMED;
		r = -EBADMSG;
		goto out;
	}
	seq = json_object_get(j, "seq");
	prev = json_object_get(j, "prev");
	tm = json_object_get(j, "time");
	hash = json_object_get(j, "hash");
	if (!json_is_integer(seq) || json_integer_value(seq) < 0 || !is_hex64(prev) ||
	    !json_is_integer(tm) || json_integer_value(tm) < 0 || !is_hex64(hash)) {
		*ret_reason = R_MALFORMED;
		r = -EBADMSG;
		goto out;
	}
	/* Exactly the bytes audit_append writes, and nothing else. */
	r = cjson_dump(j, &canon, &clen);
	if (r == -ENOMEM) {
		goto out;
	}
	if (r < 0 || clen != len || memcmp(canon, line, len) != 0) {
		*ret_reason = R_MALFORMED;
		r = -EBADMSG;
		goto out;
	}
	memcpy(got, json_string_value(hash), HEX_LEN + 1);
	if (json_object_del(j, "hash") != 0) {
		r = -ENOMEM;
		goto out;
	}
	r = hash_hex(j, want);
	if (r < 0) {
		goto out;
	}
	if (memcmp(want, got, HEX_LEN) != 0) {
		*ret_reason = R_HASH;
		r = -EBADMSG;
		goto out;
	}
	if ((uint64_t)json_integer_value(seq) != c->n) {
		*ret_reason = R_SEQ;
		r = -EBADMSG;
		goto out;
	}
	if (memcmp(json_string_value(prev), c->prev, HEX_LEN) != 0) {
		*ret_reason = R_PREV;
		r = -EBADMSG;
		goto out;
	}
	c->n++;
	memcpy(c->prev, got, sizeof(c->prev));
	r = 0;
out:
	free(canon);
	json_decref(j);
	return r;
}

/* Verify the lines of fd from offset off to its end, continuing c (which
 * is advanced only past good lines). *ret_end: the offset after the last
 * good line. On failure *ret_reason says why; the bad line is c->n. */
static int
chain_read(struct chain *c, int fd, off_t off, off_t *ret_end, const char **ret_reason)
{
	char *buf = NULL;
	size_t have = 0;
	off_t pos = off;    /* file offset of buf[0] */
	int r;

	buf = malloc(AUDIT_LINE_MAX);
	if (buf == NULL) {
		*ret_reason = R_IO;
		r = -ENOMEM;
		goto out;
	}
	for (;;) {
		size_t start = 0;
		ssize_t n;
		char *nl;

		if (have == AUDIT_LINE_MAX) {
			/* A whole buffer without a newline: over the line cap. */
			*ret_reason = R_MALFORMED;
			r = -EBADMSG;
			goto out;
		}
		n = pread(fd, buf + have, AUDIT_LINE_MAX - have, pos + (off_t)have);
		if (n < 0) {
			if (errno == EINTR) {
				continue;
			}
			*ret_reason = R_IO;
			r = -errno;
			goto out;
		}
		if (n == 0) {
			if (have > 0) {
				*ret_reason = R_TORN;
				r = -EILSEQ;
				goto out;
			}
			break;
		}
		have += (size_t)n;
		while ((nl = memchr(buf + start, '\n', have - start)) != NULL) {
			size_t len = (size_t)(nl - (buf + start));

			r = chain_line(c, buf + start, len, ret_reason);
			if (r < 0) {
				if (r != -EBADMSG) {
					*ret_reason = R_IO;
				}
				goto out;
			}
			start += len + 1;
		}
		memmove(buf, buf + start, have - start);
		have -= start;
		pos += (off_t)start;
	}
	*ret_end = pos;
	r = 0;
out:
	free(buf);
	return r;
}

int
audit_verify_buf(const char *buf, size_t len, uint64_t *ret_records, uint64_t *ret_bad_line,
    const char **ret_reason)
{
	const char *reason = R_IO;
	struct chain c;
	size_t off = 0;
	int r;

	chain_init(&c);
	if (buf == NULL && len > 0) {
		r = -EINVAL;
		goto out;
	}
	while (off < len) {
		const char *nl = memchr(buf + off, '\n', len - off);
		size_t n = nl != NULL ? (size_t)(nl - (buf + off)) : len - off;

		/* As the file reader sees it: a line is malformed once it
		 * fills AUDIT_LINE_MAX bytes without a newline. */
		if (n >= AUDIT_LINE_MAX) {
			reason = R_MALFORMED;
			r = -EBADMSG;
			goto out;
		}
		if (nl == NULL) {
			reason = R_TORN;
			r = -EILSEQ;
			goto out;
		}
		r = chain_line(&c, buf + off, n, &reason);
		if (r < 0) {
			if (r != -EBADMSG) {
				reason = R_IO;
			}
			goto out;
		}
		off += n + 1;
	}
	r = 0;
out:
	if (r == 0) {
		if (ret_records != NULL) {
			*ret_records = c.n;
		}
		return 0;
	}
	if (ret_bad_line != NULL) {
		*ret_bad_line = c.n;
	}
	if (ret_reason != NULL) {
		*ret_reason = reason;
	}
	return r;
}

int
audit_verify(const char *path, uint64_t *ret_records, uint64_t *ret_bad_line,
    const char **ret_reason)
{
	const char *reason = R_IO;
	struct chain c;
	struct stat st;
	off_t end;
	int fd = -1, r;

	chain_init(&c);
	if (path == NULL) {
		r = -EINVAL;
		goto out;
	}
	/* O_NONBLOCK: a FIFO put in the log's place must not hang us. */
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY);
	if (fd < 0) {
		r = -errno;
		goto out;
	}
	if (fstat(fd, &st) < 0) {
		r = -errno;
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		r = -EINVAL;
		goto out;
	}
	/* Appenders hold the lock exclusively while a line is half written. */
	r = lock_fd(fd, LOCK_SH);
	if (r < 0) {
		goto out;
	}
	r = chain_read(&c, fd, 0, &end, &reason);
out:
	if (fd >= 0) {
		close(fd);
	}
	if (r == 0) {
		if (ret_records != NULL) {
			*ret_records = c.n;
		}
		return 0;
	}
	if (ret_bad_line != NULL) {
		*ret_bad_line = c.n;
	}
	if (ret_reason != NULL) {
		*ret_reason = reason;
	}
	return r;
}

/* Make a new file's name durable: fsync the folder that holds it. */
static int
sync_parent(const char *path)
{
	char dir[PATH_MAX];
	const char *slash = strrchr(path, '/');
	size_t len;
	int fd, r = 0;

	if (slash == NULL) {
		memcpy(dir, ".", 2);
	} else {
		len = slash == path ? 1 : (size_t)(slash - path);
		if (len >= sizeof(dir)) {
			return -ENAMETOOLONG;
		}
		memcpy(dir, path, len);
		dir[len] = '\0';
	}
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		return -errno;
	}
	if (fsync(fd) < 0) {
		r = -errno;
	}
	close(fd);
	return r;
}

void
audit_close(struct audit *a)
{
	if (a == NULL) {
		return;
	}
	if (a->fd >= 0) {
		close(a->fd);
	}
	free(a);
}

int
audit_open(const char *path, struct audit **ret)
{
	struct audit *a = NULL;
	const char *reason = NULL;
	bool created = false;
	struct stat st;
	int r;

	if (path == NULL || ret == NULL) {
		return -EINVAL;
	}
	a = calloc(1, sizeof(*a));
	if (a == NULL) {
		return -ENOMEM;
	}
	a->fd = -1;
	chain_init(&a->c);
	a->fd = open(path, O_RDWR | O_APPEND | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW |
	    O_NOCTTY, 0600);
	if (a->fd >= 0) {
		created = true;
	} else if (errno == EEXIST) {
		a->fd = open(path, O_RDWR | O_APPEND | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK |
		    O_NOCTTY);
	}
	if (a->fd < 0) {
		r = -errno;
		goto out;
	}
	if (fstat(a->fd, &st) < 0) {
		r = -errno;
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		r = -EINVAL;
		goto out;
	}
	if (created) {
		r = sync_parent(path);
		if (r < 0) {
			goto out;
		}
	}
	r = lock_fd(a->fd, LOCK_EX);
	if (r < 0) {
		goto out;
	}
	r = chain_read(&a->c, a->fd, 0, &a->end, &reason);
	(void)lock_fd(a->fd, LOCK_UN);
	if (r < 0) {
		goto out;
	}
	*ret = a;
	a = NULL;
	r = 0;
out:
	audit_close(a);
	return r;
}

/* Under the lock: take in what other appenders wrote since we last looked,
 * verifying it as the continuation of our chain. */
static int
catch_up(struct audit *a)
{
	const char *reason = NULL;
	struct chain c = a->c;
	struct stat st;
	off_t end;
	int r;

	if (fstat(a->fd, &st) < 0) {
		return -errno;
	}
	if (st.st_size < a->end) {
		return -EBADMSG;    /* cut short under us: records were lost */
	}
	if (st.st_size == a->end) {
		return 0;
	}
	r = chain_read(&c, a->fd, a->end, &end, &reason);
	if (r < 0) {
		return r;
	}
	a->c = c;
	a->end = end;
	return 0;
}

static bool
has_reserved(const json_t *rec)
{
	size_t i;

	for (i = 0; i < sizeof(reserved_keys) / sizeof(reserved_keys[0]); i++) {
		if (json_object_get(rec, reserved_keys[i]) != NULL) {
			return true;
		}
	}
	return false;
}

int
audit_append(struct audit *a, const json_t *rec)
{
	char hash[HEX_LEN + 1], *line = NULL;
	const char *reason = NULL;
	json_t *o = NULL;
	struct chain next;
	bool locked = false;
	size_t len = 0;
	time_t now;
	ssize_t n;
	int r;

	if (a == NULL || !json_is_object(rec) || has_reserved(rec)) {
		return -EINVAL;
	}
	if (a->failed) {
		return -EIO;
	}
	o = json_copy((json_t *)rec);   /* shallow: rec's values are only read */
	if (o == NULL) {
		return -ENOMEM;
	}
	r = lock_fd(a->fd, LOCK_EX);
	if (r < 0) {
		goto out;
	}
	locked = true;
	r = catch_up(a);
	if (r < 0) {
		goto out;
	}
	now = time(NULL);
	if (json_object_set_new(o, "seq", json_integer((json_int_t)a->c.n)) != 0 ||
	    json_object_set_new(o, "prev", json_string(a->c.prev)) != 0 ||
	    json_object_set_new(o, "time", json_integer(now > 0 ? (json_int_t)now : 0)) != 0) {
		r = -ENOMEM;
		goto out;
	}
	r = hash_hex(o, hash);
	if (r < 0) {
		goto out;
	}
	if (json_object_set_new(o, "hash", json_string(hash)) != 0) {
		r = -ENOMEM;
		goto out;
	}
	r = cjson_dump(o, &line, &len);
	if (r < 0) {
		goto out;
	}
	if (len > AUDIT_LINE_MAX - 1) {
		r = -E2BIG;
		goto out;
	}
	/* Write only what audit_verify will accept (this also refuses a
	 * string with a NUL, which would not parse back). */
	next = a->c;
	r = chain_line(&next, line, len, &reason);
	if (r < 0) {
		r = r == -EBADMSG ? -EINVAL : r;
		goto out;
	}
	line[len] = '\n';   /* over cjson_dump's NUL: one write of the whole line */
	do {
		n = write(a->fd, line, len + 1);
	} while (n < 0 && errno == EINTR);
	if (n != (ssize_t)(len + 1)) {
		r = n < 0 ? -errno : -EIO;
		/* Take a partial line back before anyone can see it. */
		if (n > 0 && (ftruncate(a->fd, a->end) < 0 || fsync(a->fd) < 0)) {
			a->failed = true;
		}
		goto out;
	}
	if (fsync(a->fd) < 0) {
		r = -errno;
		a->failed = true;
		goto out;
	}
	a->c = next;
	a->end += (off_t)(len + 1);
	r = 0;
out:
	if (locked) {
		(void)lock_fd(a->fd, LOCK_UN);
	}
	free(line);
	json_decref(o);
	return r;
}
