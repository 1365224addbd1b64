/* Unit tests for lib/audit.c: the record format, appending and reopening,
 * every single-line edit, drop, swap and insertion found at the right line,
 * torn tails, truncation under an open handle, limits, and two processes
 * appending at once. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "audit.h"
#include "cjson.h"
#include "parse.h"

#define NREC 6

struct fixture {
	char dir[PATH_MAX / 2];
	char path[PATH_MAX];
};

static int
setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	const char *tmp = getenv("TMPDIR");

	assert_non_null(f);
	snprintf(f->dir, sizeof(f->dir), "%s/test_audit.XXXXXX", tmp != NULL ? tmp : "/tmp");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->path, sizeof(f->path), "%s/audit.log", f->dir);
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

static char *
slurp(const char *path, size_t *ret_len)
{
	FILE *fp = fopen(path, "rb");
	char *buf;
	long n;

	assert_non_null(fp);
	assert_int_equal(fseek(fp, 0, SEEK_END), 0);
	n = ftell(fp);
	assert_true(n >= 0);
	rewind(fp);
	buf = malloc((size_t)n + 1);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, (size_t)n, fp), (size_t)n);
	buf[n] = '\0';
	fclose(fp);
	*ret_len = (size_t)n;
	return buf;
}

static void
spit(const char *path, const char *buf, size_t len)
{
	FILE *fp = fopen(path, "wb");

	assert_non_null(fp);
	assert_int_equal(fwrite(buf, 1, len, fp), len);
	assert_int_equal(fclose(fp), 0);
}

static void
append_one(struct audit *a, const char *event, int i)
{
	json_t *rec = json_pack("{s:s,s:i,s:{s:s}}", "event", event, "i", i, "args", "path",
	    "/out/x");

	assert_non_null(rec);
	assert_int_equal(audit_append(a, rec), 0);
	json_decref(rec);
}

static void
make_log(const struct fixture *f, int n)
{
	struct audit *a = NULL;
	int i;

	assert_int_equal(audit_open(f->path, &a), 0);
	for (i = 0; i < n; i++) {
		append_one(a, "allowed", i);
	}
	audit_close(a);
}

/* Split buf into lines (newlines dropped). */
static size_t
split(char *buf, size_t len, char **lines, size_t max)
{
	size_t n = 0, off = 0;

	while (off < len && n < max) {
		char *nl = memchr(buf + off, '\n', len - off);

		assert_non_null(nl);
		*nl = '\0';
		lines[n++] = buf + off;
		off = (size_t)(nl - buf) + 1;
	}
	return n;
}

/* Join lines (each followed by a newline) into a fresh buffer. */
static char *
join(char **lines, size_t n, size_t *ret_len)
{
	size_t len = 0, i, off = 0;
	char *buf;

	for (i = 0; i < n; i++) {
		len += strlen(lines[i]) + 1;
	}
	buf = malloc(len + 1);
	assert_non_null(buf);
	for (i = 0; i < n; i++) {
		memcpy(buf + off, lines[i], strlen(lines[i]));
		off += strlen(lines[i]);
		buf[off++] = '\n';
	}
	buf[off] = '\0';
	*ret_len = len;
	return buf;
}

/* The hash as the format defines it, computed here independently. */
static void
hash_of(json_t *rec, char out[65])
{
	json_t *c = json_deep_copy(rec);
	uint8_t h[32];
	char *s = NULL;
	size_t len;

	assert_non_null(c);
	json_object_del(c, "hash");
	assert_int_equal(cjson_dump(c, &s, &len), 0);
	SHA256((const unsigned char *)s, len, h);
	format_hex(h, 32, out);
	out[64] = '\0';
	free(s);
	json_decref(c);
}

/* A line rewritten by someone who recomputes its hash: fields set from a
 * JSON object patch. */
static char *
forge(const char *line, const char *patch)
{
	json_t *j = NULL, *p = NULL;
	char hash[65], *s = NULL;
	size_t len;

	assert_int_equal(cjson_parse(line, strlen(line), 1 << 20, &j), 0);
	assert_int_equal(cjson_parse(patch, strlen(patch), 1 << 20, &p), 0);
	assert_int_equal(json_object_update(j, p), 0);
	hash_of(j, hash);
	json_object_set_new(j, "hash", json_string(hash));
	assert_int_equal(cjson_dump(j, &s, &len), 0);
	json_decref(j);
	json_decref(p);
	return s;
}

static void
expect_buf(const char *buf, size_t len, int want, uint64_t line, const char *reason)
{
	uint64_t recs = 999, bad = 999;
	const char *why = NULL;
	int r;

	r = audit_verify_buf(buf, len, &recs, &bad, &why);
	if (r != want || (want != 0 && (bad != line || why == NULL || strcmp(why, reason) != 0)) ||
	    (want == 0 && recs != line)) {
		print_error("r=%d (want %d) line=%llu (want %llu) reason=%s (want %s) recs=%llu\n",
		    r, want, (unsigned long long)bad, (unsigned long long)line,
		    why != NULL ? why : "-", reason != NULL ? reason : "-",
		    (unsigned long long)recs);
		fail();
	}
	if (want != 0) {
		assert_int_equal(recs, 999);   /* not written on failure */
	}
}

/* The same through a file, and audit_open's view of it. */
static void
expect_file(const struct fixture *f, const char *buf, size_t len, int want, uint64_t line,
    const char *reason)
{
	uint64_t recs = 999, bad = 999;
	const char *why = NULL;
	struct audit *a = NULL;
	int r;

	spit(f->path, buf, len);
	r = audit_verify(f->path, &recs, &bad, &why);
	assert_int_equal(r, want);
	if (want != 0) {
		assert_int_equal(bad, line);
		assert_string_equal(why, reason);
		assert_int_equal(recs, 999);
	} else {
		assert_int_equal(recs, line);
	}
	r = audit_open(f->path, &a);
	assert_int_equal(r, want);
	if (want == 0) {
		audit_close(a);
	} else {
		assert_null(a);
	}
}

/* ---- format, append, reopen ------------------------------------------- */

static void
test_append_verify(void **state)
{
	struct fixture *f = *state;
	char *buf, *lines[16], prev[65], hash[65];
	uint64_t recs = 0, bad = 0;
	const char *why = NULL;
	struct audit *a = NULL;
	struct stat st;
	size_t len, n, i;
	time_t now = time(NULL);

	/* An empty log, then records. */
	assert_int_equal(audit_open(f->path, &a), 0);
	assert_int_equal(stat(f->path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(audit_verify(f->path, &recs, &bad, &why), 0);
	assert_int_equal(recs, 0);
	for (i = 0; i < 3; i++) {
		append_one(a, "allowed", (int)i);
	}
	audit_close(a);
	assert_int_equal(audit_verify(f->path, &recs, &bad, &why), 0);
	assert_int_equal(recs, 3);

	/* Reopening continues the chain. */
	a = NULL;
	assert_int_equal(audit_open(f->path, &a), 0);
	for (i = 3; i < 5; i++) {
		append_one(a, "denied", (int)i);
	}
	audit_close(a);
	assert_int_equal(audit_verify(f->path, &recs, NULL, NULL), 0);
	assert_int_equal(recs, 5);

	/* Each line: canonical, fields sorted, seq from 0, prev chained,
	 * hash as defined, time now. */
	buf = slurp(f->path, &len);
	assert_int_equal(buf[len - 1], '\n');
	n = split(buf, len, lines, 16);
	assert_int_equal(n, 5);
	memset(prev, '0', 64);
	prev[64] = '\0';
	for (i = 0; i < n; i++) {
		json_t *j = NULL;
		char *canon = NULL;
		size_t clen;

		assert_int_equal(cjson_parse(lines[i], strlen(lines[i]), 1 << 20, &j), 0);
		assert_int_equal(cjson_dump(j, &canon, &clen), 0);
		assert_string_equal(canon, lines[i]);
		free(canon);
		assert_int_equal(json_integer_value(json_object_get(j, "seq")), (json_int_t)i);
		assert_int_equal(json_integer_value(json_object_get(j, "i")), (json_int_t)i);
		assert_string_equal(json_string_value(json_object_get(j, "event")),
		    i < 3 ? "allowed" : "denied");
		assert_string_equal(json_string_value(json_object_get(j, "prev")), prev);
		assert_true(json_integer_value(json_object_get(j, "time")) >= (json_int_t)now - 5);
		assert_true(json_integer_value(json_object_get(j, "time")) <= (json_int_t)now + 60);
		hash_of(j, hash);
		assert_string_equal(json_string_value(json_object_get(j, "hash")), hash);
		memcpy(prev, hash, sizeof(prev));
		json_decref(j);
	}
	assert_non_null(strstr(lines[0], "{\"args\":{\"path\":\"/out/x\"},\"event\":\"allowed\","
	    "\"hash\":\""));
	assert_non_null(strstr(lines[0], "\"i\":0,\"prev\":\"0000000000000000000000000000000000"
	    "000000000000000000000000000000\",\"seq\":0,\"time\":"));
	free(buf);
}

/* ---- every single-line change is found, at its line ------------------- */

static void
test_tamper(void **state)
{
	struct fixture *f = *state;
	char *orig, *buf, *lines[NREC + 2], *mod[NREC + 2], *forged;
	size_t len, n, i, k, mlen;

	make_log(f, NREC);
	orig = slurp(f->path, &len);
	buf = malloc(len + 1);
	assert_non_null(buf);
	memcpy(buf, orig, len + 1);
	n = split(buf, len, lines, NREC + 2);
	assert_int_equal(n, NREC);
	expect_buf(orig, len, 0, NREC, NULL);

	/* Every byte of every line changed (newlines aside): the line itself
	 * is "malformed" or its "hash_mismatch"es. */
	for (i = 0; i < len; i++) {
		char *m = malloc(len);
		uint64_t bad = 0, line = 0;
		const char *why = NULL;

		assert_non_null(m);
		if (orig[i] == '\n') {
			free(m);
			continue;
		}
		for (k = 0; k < i; k++) {
			line += orig[k] == '\n';
		}
		memcpy(m, orig, len);
		m[i] = orig[i] == '1' ? '2' : orig[i] == '"' ? '\'' : '1';
		assert_int_equal(audit_verify_buf(m, len, NULL, &bad, &why), -EBADMSG);
		assert_int_equal(bad, line);
		assert_true(strcmp(why, "malformed") == 0 || strcmp(why, "hash_mismatch") == 0);
		/* Upper-case hex is another spelling: refused too. */
		if (orig[i] >= 'a' && orig[i] <= 'f') {
			m[i] = (char)(orig[i] - 'a' + 'A');
			assert_int_equal(audit_verify_buf(m, len, NULL, &bad, &why), -EBADMSG);
			assert_int_equal(bad, line);
		}
		free(m);
	}

	for (i = 0; i < NREC; i++) {
		char *b2;

		/* Edited with the hash recomputed: the next line's prev. */
		forged = forge(lines[i], "{\"event\":\"denied\"}");
		memcpy(mod, lines, sizeof(lines));
		mod[i] = forged;
		b2 = join(mod, n, &mlen);
		if (i + 1 < NREC) {
			expect_buf(b2, mlen, -EBADMSG, i + 1, "prev_mismatch");
		} else {
			/* The last line has no successor: only an anchor kept
			 * elsewhere (the last hash) tells. */
			expect_buf(b2, mlen, 0, NREC, NULL);
		}
		free(b2);
		free(forged);

		/* Its seq changed, hash recomputed. */
		forged = forge(lines[i], i == 0 ? "{\"seq\":1}" : "{\"seq\":0}");
		mod[i] = forged;
		b2 = join(mod, n, &mlen);
		expect_buf(b2, mlen, -EBADMSG, i, "seq_gap");
		free(b2);
		free(forged);

		/* Its prev changed, hash recomputed. */
		forged = forge(lines[i], "{\"prev\":\"1111111111111111111111111111111111111111111111"
		    "111111111111111111\"}");
		mod[i] = forged;
		b2 = join(mod, n, &mlen);
		expect_buf(b2, mlen, -EBADMSG, i, "prev_mismatch");
		free(b2);
		free(forged);

		/* Dropped: the next line's seq; the last one only by count. */
		for (k = 0; k + 1 < n; k++) {
			mod[k] = lines[k < i ? k : k + 1];
		}
		b2 = join(mod, n - 1, &mlen);
		if (i + 1 < NREC) {
			expect_buf(b2, mlen, -EBADMSG, i, "seq_gap");
		} else {
			expect_buf(b2, mlen, 0, NREC - 1, NULL);
		}
		free(b2);

		/* Swapped with the next. */
		if (i + 1 < NREC) {
			memcpy(mod, lines, sizeof(lines));
			mod[i] = lines[i + 1];
			mod[i + 1] = lines[i];
			b2 = join(mod, n, &mlen);
			expect_buf(b2, mlen, -EBADMSG, i, "seq_gap");
			free(b2);
		}

		/* Inserted after line i: a replay of it, a forged successor with
		 * the right seq, prev and hash, garbage, an empty line. */
		{
			char hash[65], patch[256];
			const char *ins[4];
			json_t *j = NULL;
			size_t v;

			assert_int_equal(cjson_parse(lines[i], strlen(lines[i]), 1 << 20, &j), 0);
			memcpy(hash, json_string_value(json_object_get(j, "hash")), 65);
			json_decref(j);
			snprintf(patch, sizeof(patch), "{\"seq\":%zu,\"prev\":\"%s\",\"event\":\"x\"}",
			    i + 1, hash);
			forged = forge(lines[i], patch);
			ins[0] = lines[i];
			ins[1] = forged;
			ins[2] = "{\"not\":\"a record\"}";
			ins[3] = "";
			for (v = 0; v < 4; v++) {
				for (k = 0; k <= i; k++) {
					mod[k] = lines[k];
				}
				mod[i + 1] = (char *)ins[v];
				for (k = i + 1; k < n; k++) {
					mod[k + 1] = lines[k];
				}
				b2 = join(mod, n + 1, &mlen);
				if (v == 0) {
					expect_buf(b2, mlen, -EBADMSG, i + 1, "seq_gap");
				} else if (v == 1 && i + 1 < NREC) {
					/* The forged line fits; the original after it does not. */
					expect_buf(b2, mlen, -EBADMSG, i + 2, "seq_gap");
				} else if (v == 1) {
					expect_buf(b2, mlen, 0, NREC + 1, NULL);   /* an append */
				} else {
					expect_buf(b2, mlen, -EBADMSG, i + 1, "malformed");
				}
				if (i == 2) {
					/* The file reader and audit_open agree. */
					if (v == 0) {
						expect_file(f, b2, mlen, -EBADMSG, i + 1, "seq_gap");
					} else if (v == 1) {
						expect_file(f, b2, mlen, -EBADMSG, i + 2, "seq_gap");
					} else {
						expect_file(f, b2, mlen, -EBADMSG, i + 1, "malformed");
					}
				}
				free(b2);
			}
			free(forged);
		}
	}

	/* Whitespace, a CRLF, a missing final record's newline. */
	{
		char *b2 = malloc(len + 2);

		assert_non_null(b2);
		memcpy(b2, orig, len);
		b2[len] = '\n';
		expect_buf(b2, len + 1, -EBADMSG, NREC, "malformed");
		memcpy(b2 + strlen(lines[0]) + 1, "\r\n", 2);
		memcpy(b2, orig, strlen(lines[0]));
		b2[strlen(lines[0])] = ' ';
		expect_buf(b2, len, -EBADMSG, 0, "malformed");
		expect_buf(orig, len - 1, -EILSEQ, NREC - 1, "torn_tail");
		free(b2);
	}
	free(buf);
	free(orig);
}

/* ---- torn tails, truncation, limits ----------------------------------- */

static void
test_torn_tail(void **state)
{
	struct fixture *f = *state;
	struct audit *a = NULL, *b = NULL;
	uint64_t recs = 0, bad = 0;
	const char *why = NULL;
	char *before, *after;
	size_t blen, alen;
	int fd;

	make_log(f, 3);
	assert_int_equal(audit_open(f->path, &a), 0);
	/* A writer dies in the middle of its line. */
	fd = open(f->path, O_WRONLY | O_APPEND | O_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "{\"event\":\"al", 12), 12);
	close(fd);

	assert_int_equal(audit_verify(f->path, &recs, &bad, &why), -EILSEQ);
	assert_int_equal(bad, 3);
	assert_string_equal(why, "torn_tail");
	assert_int_equal(audit_open(f->path, &b), -EILSEQ);
	assert_null(b);
	/* The open handle sees it too, and writes nothing after it. */
	before = slurp(f->path, &blen);
	{
		json_t *rec = json_pack("{s:s}", "event", "allowed");

		assert_int_equal(audit_append(a, rec), -EILSEQ);
		json_decref(rec);
	}
	after = slurp(f->path, &alen);
	assert_int_equal(alen, blen);
	assert_memory_equal(before, after, blen);
	free(before);
	free(after);
	audit_close(a);

	/* Lines cut off under an open handle: refused, not papered over. */
	a = NULL;
	assert_int_equal(unlink(f->path), 0);
	make_log(f, 3);
	assert_int_equal(audit_open(f->path, &a), 0);
	before = slurp(f->path, &blen);
	assert_int_equal(truncate(f->path, (off_t)(strchr(before, '\n') - before + 1)), 0);
	{
		json_t *rec = json_pack("{s:s}", "event", "allowed");

		assert_int_equal(audit_append(a, rec), -EBADMSG);
		json_decref(rec);
	}
	free(before);
	audit_close(a);
	assert_int_equal(audit_verify(f->path, &recs, NULL, NULL), 0);
	assert_int_equal(recs, 1);
}

static void
test_limits(void **state)
{
	struct fixture *f = *state;
	struct audit *a = NULL;
	uint64_t recs = 0, bad = 9;
	const char *why = NULL;
	size_t base, len;
	char *big, *buf;
	json_t *rec;
	int fd;

	assert_int_equal(audit_open(f->path, &a), 0);
	/* Reserved keys, non-objects, reals, NUL in a string. */
	rec = json_pack("{s:i}", "seq", 5);
	assert_int_equal(audit_append(a, rec), -EINVAL);
	json_decref(rec);
	rec = json_pack("{s:s}", "hash", "x");
	assert_int_equal(audit_append(a, rec), -EINVAL);
	json_decref(rec);
	rec = json_pack("{s:i}", "time", 1);
	assert_int_equal(audit_append(a, rec), -EINVAL);
	json_decref(rec);
	rec = json_pack("{s:s}", "prev", "x");
	assert_int_equal(audit_append(a, rec), -EINVAL);
	json_decref(rec);
	rec = json_pack("[i]", 1);
	assert_int_equal(audit_append(a, rec), -EINVAL);
	json_decref(rec);
	assert_int_equal(audit_append(a, NULL), -EINVAL);
	assert_int_equal(audit_append(NULL, NULL), -EINVAL);
	rec = json_pack("{s:f}", "x", 1.5);
	assert_int_equal(audit_append(a, rec), -EINVAL);
	json_decref(rec);
	rec = json_pack("{s:o}", "x", json_stringn("a\0b", 3));
	assert_int_equal(audit_append(a, rec), -EINVAL);
	json_decref(rec);
	audit_close(a);
	assert_int_equal(audit_verify(f->path, &recs, NULL, NULL), 0);
	assert_int_equal(recs, 0);

	/* The line cap, to the byte: measure a record's overhead on a fresh
	 * log (seq 0, a ten-digit time), then fill to AUDIT_LINE_MAX. */
	a = NULL;
	assert_int_equal(audit_open(f->path, &a), 0);
	rec = json_pack("{s:s}", "x", "");
	assert_int_equal(audit_append(a, rec), 0);
	json_decref(rec);
	audit_close(a);
	buf = slurp(f->path, &base);
	free(buf);
	base -= 1;   /* the newline */
	big = malloc(AUDIT_LINE_MAX + 2);
	assert_non_null(big);
	memset(big, 'A', AUDIT_LINE_MAX + 1);
	big[AUDIT_LINE_MAX - 1 - base] = '\0';
	assert_int_equal(unlink(f->path), 0);
	a = NULL;
	assert_int_equal(audit_open(f->path, &a), 0);
	rec = json_pack("{s:s}", "x", big);
	assert_int_equal(audit_append(a, rec), 0);
	json_decref(rec);
	audit_close(a);
	buf = slurp(f->path, &len);
	assert_int_equal(len, AUDIT_LINE_MAX);
	free(buf);
	assert_int_equal(audit_verify(f->path, &recs, NULL, NULL), 0);
	assert_int_equal(recs, 1);
	assert_int_equal(unlink(f->path), 0);
	a = NULL;
	assert_int_equal(audit_open(f->path, &a), 0);
	big[AUDIT_LINE_MAX - 1 - base] = 'A';
	big[AUDIT_LINE_MAX - base] = '\0';
	rec = json_pack("{s:s}", "x", big);
	assert_int_equal(audit_append(a, rec), -E2BIG);
	json_decref(rec);
	audit_close(a);
	buf = slurp(f->path, &len);
	assert_int_equal(len, 0);
	free(buf);

	/* A line over the cap in the file: malformed, read in bounded memory. */
	memset(big, 'x', AUDIT_LINE_MAX + 1);
	big[AUDIT_LINE_MAX + 1] = '\n';
	spit(f->path, big, AUDIT_LINE_MAX + 2);
	assert_int_equal(audit_verify(f->path, &recs, &bad, &why), -EBADMSG);
	assert_int_equal(bad, 0);
	assert_string_equal(why, "malformed");
	expect_buf(big, AUDIT_LINE_MAX + 2, -EBADMSG, 0, "malformed");
	expect_buf(big, AUDIT_LINE_MAX, -EBADMSG, 0, "malformed");
	expect_buf(big, AUDIT_LINE_MAX - 1, -EILSEQ, 0, "torn_tail");
	free(big);

	/* Not a log: a symbolic link, a FIFO, a folder, nothing. */
	assert_int_equal(unlink(f->path), 0);
	assert_int_equal(symlink("/etc/passwd", f->path), 0);
	a = NULL;
	assert_int_equal(audit_open(f->path, &a), -ELOOP);
	assert_null(a);
	assert_int_equal(audit_verify(f->path, &recs, &bad, &why), -ELOOP);
	assert_string_equal(why, "io_error");
	assert_int_equal(unlink(f->path), 0);
	assert_int_equal(mkfifo(f->path, 0600), 0);
	assert_int_equal(audit_open(f->path, &a), -EINVAL);
	assert_int_equal(audit_verify(f->path, &recs, &bad, &why), -EINVAL);
	assert_int_equal(unlink(f->path), 0);
	assert_int_equal(audit_verify(f->path, &recs, &bad, &why), -ENOENT);
	assert_int_equal(audit_verify(f->dir, &recs, &bad, &why), -EINVAL);
	assert_int_equal(audit_open(f->dir, &a), -EISDIR);
	assert_int_equal(audit_open(NULL, &a), -EINVAL);
	assert_int_equal(audit_verify_buf(NULL, 0, &recs, NULL, NULL), 0);
	assert_int_equal(recs, 0);
	audit_close(NULL);

	/* A log that is broken is not continued. */
	fd = open(f->path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "{}\n", 3), 3);
	close(fd);
	assert_int_equal(audit_open(f->path, &a), -EBADMSG);
	assert_null(a);
}

/* ---- two processes ----------------------------------------------------- */

#define PER_CHILD 150

static void
child(const char *path, int go, const char *who)
{
	struct audit *a = NULL;
	char c;
	int i;

	if (audit_open(path, &a) != 0) {
		_exit(10);
	}
	/* Both have the log open (and its length) before either appends. */
	if (read(go, &c, 1) != 1) {
		_exit(11);
	}
	for (i = 0; i < PER_CHILD; i++) {
		json_t *rec = json_pack("{s:s,s:i}", "who", who, "i", i);

		if (rec == NULL || audit_append(a, rec) != 0) {
			_exit(12);
		}
		json_decref(rec);
	}
	audit_close(a);
	_exit(0);
}

static void
test_two_processes(void **state)
{
	struct fixture *f = *state;
	int go[2], status, i, seen[2] = { 0, 0 }, next[2] = { 0, 0 };
	char *buf, **lines;
	uint64_t recs = 0;
	pid_t pids[2];
	size_t len, n, k;

	make_log(f, 2);
	assert_int_equal(pipe(go), 0);
	for (i = 0; i < 2; i++) {
		pids[i] = fork();
		assert_true(pids[i] >= 0);
		if (pids[i] == 0) {
			close(go[1]);
			child(f->path, go[0], i == 0 ? "a" : "b");
		}
	}
	close(go[0]);
	usleep(100 * 1000);
	assert_int_equal(write(go[1], "xx", 2), 2);
	close(go[1]);
	for (i = 0; i < 2; i++) {
		assert_int_equal(waitpid(pids[i], &status, 0), pids[i]);
		assert_true(WIFEXITED(status));
		assert_int_equal(WEXITSTATUS(status), 0);
	}
	assert_int_equal(audit_verify(f->path, &recs, NULL, NULL), 0);
	assert_int_equal(recs, 2 + 2 * PER_CHILD);

	/* Every record of each writer, in its order. */
	buf = slurp(f->path, &len);
	lines = calloc(2 * PER_CHILD + 8, sizeof(lines[0]));
	assert_non_null(lines);
	n = split(buf, len, lines, 2 * PER_CHILD + 8);
	assert_int_equal(n, 2 + 2 * PER_CHILD);
	for (k = 2; k < n; k++) {
		json_t *j = NULL;
		int w;

		assert_int_equal(cjson_parse(lines[k], strlen(lines[k]), 1 << 20, &j), 0);
		w = strcmp(json_string_value(json_object_get(j, "who")), "a") == 0 ? 0 : 1;
		assert_int_equal(json_integer_value(json_object_get(j, "i")), next[w]);
		next[w]++;
		seen[w]++;
		json_decref(j);
	}
	assert_int_equal(seen[0], PER_CHILD);
	assert_int_equal(seen[1], PER_CHILD);
	free(lines);
	free(buf);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_append_verify, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tamper, setup, teardown),
		cmocka_unit_test_setup_teardown(test_torn_tail, setup, teardown),
		cmocka_unit_test_setup_teardown(test_limits, setup, teardown),
		cmocka_unit_test_setup_teardown(test_two_processes, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
