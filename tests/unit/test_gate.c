/* Unit tests for vmhost/gate.c: the spool sink (request file written
 * atomically and 0600, token and denial picked up, the veto, timeout,
 * cancel, files that are not what they should be) and the generic gate
 * (ids, bad ids refused, a custom sink). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cjson.h"
#include "parse.h"
#include "../../vmhost/gate.h"

#define DIGEST "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"

struct fx {
	char root[PATH_MAX];
	char spool[PATH_MAX];
	struct gate *g;
	json_t *args;
	struct gate_request rq;
};

static void pathf(char *buf, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

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

static uint64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static int
setup(void **state)
{
	const char *tmp = getenv("TMPDIR");
	struct fx *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	pathf(f->root, sizeof(f->root), "%s/test-gate.XXXXXX", tmp != NULL ? tmp : "/tmp");
	assert_non_null(mkdtemp(f->root));
	pathf(f->spool, sizeof(f->spool), "%s/spool", f->root);
	assert_int_equal(gate_spool_new(f->spool, &f->g), 0);
	f->args = json_pack("{s:s, s:s}", "path", "/notes.txt", "data", "hi");
	assert_int_equal(gate_new_id(f->rq.id), 0);
	f->rq.vm = "vm-1";
	f->rq.launch_digest = DIGEST;
	f->rq.op = "fs.write";
	f->rq.args = f->args;
	memcpy(f->rq.args_sha256, DIGEST, 65);
	f->rq.reason = "save the notes";
	f->rq.requested_ttl = 300;
	f->rq.created = 1768442400;
	f->rq.expires = 1768443000;
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;
	char cmd[PATH_MAX + 16];

	gate_free(f->g);
	json_decref(f->args);
	pathf(cmd, sizeof(cmd), "rm -rf '%s'", f->root);
	assert_int_equal(system(cmd), 0);
	free(f);
	return 0;
}

static void
drop(struct fx *f, const char *sub, const char *content)
{
	char p[PATH_MAX], tmp[PATH_MAX];
	FILE *fp;

	/* As an approver should: a temporary name, then rename. */
	pathf(tmp, sizeof(tmp), "%s/.%s.tmp", f->spool, f->rq.id);
	pathf(p, sizeof(p), "%s/%s/%s", f->spool, sub, f->rq.id);
	fp = fopen(tmp, "we");
	assert_non_null(fp);
	assert_int_equal(fputs(content, fp) >= 0, 1);
	assert_int_equal(fclose(fp), 0);
	assert_int_equal(rename(tmp, p), 0);
}

static void
test_ids(void **state)
{
	char a[GATE_ID_MAX + 1], b[GATE_ID_MAX + 1];
	uint8_t raw[GATE_ID_LEN / 2];

	(void)state;
	assert_int_equal(gate_new_id(a), 0);
	assert_int_equal(gate_new_id(b), 0);
	assert_int_equal(strlen(a), GATE_ID_LEN);
	assert_int_equal(parse_hex(a, raw, sizeof(raw)), 0);
	assert_int_equal(parse_ident(a, GATE_ID_MAX), 0);
	assert_string_not_equal(a, b);
}

static void
test_spool_layout_and_request(void **state)
{
	struct fx *f = *state;
	char p[PATH_MAX], *buf;
	struct stat st;
	json_t *j;
	FILE *fp;
	long n;
	static const char *const subs[] = { "requests", "tokens", "denied" };
	size_t i;

	for (i = 0; i < 3; i++) {
		pathf(p, sizeof(p), "%s/%s", f->spool, subs[i]);
		assert_int_equal(lstat(p, &st), 0);
		assert_true(S_ISDIR(st.st_mode));
		assert_int_equal(st.st_mode & 0777, 0700);
	}
	assert_int_equal(gate_submit(f->g, &f->rq), 0);
	pathf(p, sizeof(p), "%s/requests/%s.json", f->spool, f->rq.id);
	assert_int_equal(lstat(p, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	fp = fopen(p, "re");
	assert_non_null(fp);
	assert_int_equal(fseek(fp, 0, SEEK_END), 0);
	n = ftell(fp);
	rewind(fp);
	buf = calloc(1, (size_t)n + 1);
	assert_int_equal(fread(buf, 1, (size_t)n, fp), (size_t)n);
	fclose(fp);
	assert_int_equal(buf[n - 1], '\n');
	assert_int_equal(cjson_parse(buf, (size_t)n - 1, 65536, &j), 0);
	{
		/* Canonical, so an approver can hash exactly what it shows. */
		char *enc = NULL;
		size_t len = 0;

		assert_int_equal(cjson_dump(j, &enc, &len), 0);
		assert_int_equal(len, (size_t)n - 1);
		assert_memory_equal(enc, buf, len);
		free(enc);
	}
	assert_string_equal(json_string_value(json_object_get(j, "id")), f->rq.id);
	assert_string_equal(json_string_value(json_object_get(j, "vm")), "vm-1");
	assert_string_equal(json_string_value(json_object_get(j, "launch_digest")), DIGEST);
	assert_string_equal(json_string_value(json_object_get(j, "op")), "fs.write");
	assert_true(json_equal(json_object_get(j, "args"), f->args));
	assert_string_equal(json_string_value(json_object_get(j, "args_sha256")), DIGEST);
	assert_string_equal(json_string_value(json_object_get(j, "reason")), "save the notes");
	assert_int_equal(json_integer_value(json_object_get(j, "requested_ttl")), 300);
	assert_int_equal(json_integer_value(json_object_get(j, "expires")), 1768443000);
	assert_int_equal(json_object_size(j), 10);
	json_decref(j);
	free(buf);
	/* No temporary file is left. */
	pathf(p, sizeof(p), "%s/requests/.%s.tmp", f->spool, f->rq.id);
	assert_int_not_equal(lstat(p, &st), 0);
	gate_done(f->g, f->rq.id);
	pathf(p, sizeof(p), "%s/requests/%s.json", f->spool, f->rq.id);
	assert_int_not_equal(lstat(p, &st), 0);
}

static void
test_token(void **state)
{
	struct fx *f = *state;
	char *tok = NULL, *why = NULL, p[PATH_MAX];
	struct stat st;

	assert_int_equal(gate_submit(f->g, &f->rq), 0);
	drop(f, "tokens", "w1.abc.def.ghi\n");
	assert_int_equal(gate_wait(f->g, f->rq.id, 5000, &tok, &why), 0);
	assert_string_equal(tok, "w1.abc.def.ghi");
	assert_null(why);
	free(tok);
	gate_done(f->g, f->rq.id);
	pathf(p, sizeof(p), "%s/tokens/%s", f->spool, f->rq.id);
	assert_int_not_equal(lstat(p, &st), 0);
}

static void
test_denied_and_veto(void **state)
{
	struct fx *f = *state;
	char *tok = NULL, *why = NULL;

	assert_int_equal(gate_submit(f->g, &f->rq), 0);
	drop(f, "tokens", "w1.abc.def.ghi");
	drop(f, "denied", "not \x01today\n");
	assert_int_equal(gate_wait(f->g, f->rq.id, 5000, &tok, &why), -EACCES);
	assert_null(tok);
	assert_string_equal(why, "not ?today");
	free(why);
	gate_done(f->g, f->rq.id);
	/* An empty denial still denies. */
	drop(f, "denied", "");
	why = NULL;
	assert_int_equal(gate_wait(f->g, f->rq.id, 5000, &tok, &why), -EACCES);
	assert_string_equal(why, "denied");
	free(why);
}

static void
test_timeout_and_cancel(void **state)
{
	struct fx *f = *state;
	char *tok = NULL, *why = NULL;
	uint64_t t0;

	assert_int_equal(gate_submit(f->g, &f->rq), 0);
	t0 = now_ms();
	assert_int_equal(gate_wait(f->g, f->rq.id, 300, &tok, &why), -ETIMEDOUT);
	assert_true(now_ms() - t0 >= 300 && now_ms() - t0 < 2000);
	gate_cancel(f->g);
	t0 = now_ms();
	assert_int_equal(gate_wait(f->g, f->rq.id, 5000, &tok, &why), -ECANCELED);
	assert_true(now_ms() - t0 < 1000);
}

struct slow {
	struct fx *f;
};

/* Writes half a token, waits, writes the rest: a writer that does not
 * rename into place. */
static void *
slow_writer(void *arg)
{
	struct slow *s = arg;
	char p[PATH_MAX];
	struct timespec ts = { 0, 150 * 1000000L };
	int fd;

	pathf(p, sizeof(p), "%s/tokens/%s", s->f->spool, s->f->rq.id);
	fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "w1.first", 8), 8);
	nanosleep(&ts, NULL);
	assert_int_equal(write(fd, ".second", 7), 7);
	(void)close(fd);
	return NULL;
}

static void
test_settle(void **state)
{
	struct fx *f = *state;
	struct slow s = { f };
	char *tok = NULL, *why = NULL;
	pthread_t th;

	assert_int_equal(gate_submit(f->g, &f->rq), 0);
	assert_int_equal(pthread_create(&th, NULL, slow_writer, &s), 0);
	assert_int_equal(gate_wait(f->g, f->rq.id, 5000, &tok, &why), 0);
	assert_int_equal(pthread_join(th, NULL), 0);
	assert_string_equal(tok, "w1.first.second");
	free(tok);
}

static void
test_bad_files(void **state)
{
	struct fx *f = *state;
	char *tok = NULL, *why = NULL, p[PATH_MAX], *big;

	/* A symbolic link is not followed. */
	pathf(p, sizeof(p), "%s/tokens/%s", f->spool, f->rq.id);
	assert_int_equal(symlink("/etc/passwd", p), 0);
	assert_int_equal(gate_wait(f->g, f->rq.id, 1000, &tok, &why), -ELOOP);
	assert_int_equal(unlink(p), 0);
	/* Over the token size limit. */
	big = malloc(9000);
	assert_non_null(big);
	memset(big, 'A', 8999);
	big[8999] = '\0';
	drop(f, "tokens", big);
	assert_int_equal(gate_wait(f->g, f->rq.id, 1000, &tok, &why), -EFBIG);
	free(big);
	gate_done(f->g, f->rq.id);
	/* A folder in place of a token. */
	assert_int_equal(mkdir(p, 0700), 0);
	assert_int_equal(gate_wait(f->g, f->rq.id, 1000, &tok, &why), -EINVAL);
	assert_int_equal(rmdir(p), 0);
	/* Ids that are not identifiers never reach the file system. */
	assert_int_equal(gate_wait(f->g, "../x", 100, &tok, &why), -EINVAL);
	assert_int_equal(gate_wait(f->g, "", 100, &tok, &why), -EINVAL);
	memcpy(f->rq.id, "../../etc/x", 12);
	assert_int_equal(gate_submit(f->g, &f->rq), -EINVAL);
}

static void
test_spool_refuses_link(void **state)
{
	struct fx *f = *state;
	struct gate *g = NULL;
	char p[PATH_MAX];

	pathf(p, sizeof(p), "%s/link", f->root);
	assert_int_equal(symlink(f->spool, p), 0);
	assert_int_not_equal(gate_spool_new(p, &g), 0);
	assert_null(g);
}

/* A custom sink through the same interface. */
struct mock {
	int submits;
	int done;
	bool freed;
};

static int
mock_submit(void *ctx, const struct gate_request *r)
{
	(void)r;
	((struct mock *)ctx)->submits++;
	return 0;
}

static int
mock_wait(void *ctx, const char *id, uint64_t deadline_ms, const atomic_bool *cancel,
    char **ret_token, char **ret_reason)
{
	(void)ctx;
	(void)deadline_ms;
	(void)cancel;
	(void)ret_reason;
	*ret_token = strdup(id);
	return 0;
}

static void
mock_done(void *ctx, const char *id)
{
	(void)id;
	((struct mock *)ctx)->done++;
}

static void
mock_free(void *ctx)
{
	((struct mock *)ctx)->freed = true;
}

static void
test_custom_sink(void **state)
{
	static const struct gate_ops ops = { mock_submit, mock_wait, mock_done, mock_free };
	struct fx *f = *state;
	struct mock m = { 0, 0, false };
	struct gate *g = NULL;
	char *tok = NULL, *why = NULL;

	assert_int_equal(gate_new(&ops, &m, &g), 0);
	assert_int_equal(gate_submit(g, &f->rq), 0);
	assert_int_equal(gate_wait(g, f->rq.id, 10, &tok, &why), 0);
	assert_string_equal(tok, f->rq.id);
	free(tok);
	gate_done(g, f->rq.id);
	gate_free(g);
	assert_int_equal(m.submits, 1);
	assert_int_equal(m.done, 1);
	assert_true(m.freed);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ids),
		cmocka_unit_test_setup_teardown(test_spool_layout_and_request, setup, teardown),
		cmocka_unit_test_setup_teardown(test_token, setup, teardown),
		cmocka_unit_test_setup_teardown(test_denied_and_veto, setup, teardown),
		cmocka_unit_test_setup_teardown(test_timeout_and_cancel, setup, teardown),
		cmocka_unit_test_setup_teardown(test_settle, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_files, setup, teardown),
		cmocka_unit_test_setup_teardown(test_spool_refuses_link, setup, teardown),
		cmocka_unit_test_setup_teardown(test_custom_sink, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
