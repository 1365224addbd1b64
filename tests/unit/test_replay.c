/* Unit tests for lib/replay.c: the durable store of consumed token ids. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "replay.h"

struct fixture {
	char dir[64];
	char path[96];
	struct replay *r;
};

static int
setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	snprintf(f->dir, sizeof(f->dir), "/tmp/test_replay.XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->path, sizeof(f->path), "%s/used.db", f->dir);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;
	char cmd[128];

	replay_close(f->r);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
	assert_int_equal(system(cmd), 0);
	free(f);
	return 0;
}

static void
test_open_creates_private_wal_store(void **state)
{
	struct fixture *f = *state;
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	struct stat sb;

	assert_int_equal(replay_open(f->path, &f->r), 0);
	assert_int_equal(stat(f->path, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0600);
	/* WAL is recorded in the file itself: another connection sees it. */
	assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &st, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	assert_string_equal((const char *)sqlite3_column_text(st, 0), "wal");
	sqlite3_finalize(st);
	sqlite3_close(db);
}

static void
test_open_refuses_symlink_and_garbage(void **state)
{
	struct fixture *f = *state;
	struct replay *r = NULL;
	char link[128], junk[128];
	int fd;

	snprintf(link, sizeof(link), "%s/link.db", f->dir);
	assert_int_equal(symlink(f->path, link), 0);
	assert_int_equal(replay_open(link, &r), -ELOOP);
	assert_null(r);
	/* A file that is not a database. */
	snprintf(junk, sizeof(junk), "%s/junk.db", f->dir);
	fd = open(junk, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "this is not a database, not at all, no\n", 39), 39);
	close(fd);
	assert_int_not_equal(replay_open(junk, &r), 0);
	assert_null(r);
	/* A directory. */
	assert_int_not_equal(replay_open(f->dir, &r), 0);
	assert_int_equal(replay_open("", &r), -EINVAL);
	assert_int_equal(replay_open("/nonexistent/dir/used.db", &r), -ENOENT);
}

static void
test_consume_counts(void **state)
{
	struct fixture *f = *state;
	uint32_t n = 99;

	assert_int_equal(replay_open(f->path, &f->r), 0);
	assert_int_equal(replay_uses(f->r, "AAAA", &n), 0);
	assert_int_equal(n, 0);
	assert_int_equal(replay_consume(f->r, "AAAA", 1, 1000), 0);
	assert_int_equal(replay_consume(f->r, "AAAA", 1, 1000), -EALREADY);
	assert_int_equal(replay_uses(f->r, "AAAA", &n), 0);
	assert_int_equal(n, 1);
	/* three uses */
	assert_int_equal(replay_consume(f->r, "BBBB", 3, 1000), 0);
	assert_int_equal(replay_consume(f->r, "BBBB", 3, 1000), 0);
	assert_int_equal(replay_consume(f->r, "BBBB", 3, 1000), 0);
	assert_int_equal(replay_consume(f->r, "BBBB", 3, 1000), -EALREADY);
	assert_int_equal(replay_uses(f->r, "BBBB", &n), 0);
	assert_int_equal(n, 3);
	/* A narrower copy of the same id sees the uses already made. */
	assert_int_equal(replay_consume(f->r, "CCCC", 5, 1000), 0);
	assert_int_equal(replay_consume(f->r, "CCCC", 5, 1000), 0);
	assert_int_equal(replay_consume(f->r, "CCCC", 2, 1000), -EALREADY);
	assert_int_equal(replay_consume(f->r, "CCCC", 5, 1000), 0);
}

static void
test_consume_rejects(void **state)
{
	struct fixture *f = *state;
	char longid[REPLAY_ID_MAX + 2];
	uint32_t n;

	assert_int_equal(replay_open(f->path, &f->r), 0);
	memset(longid, 'x', sizeof(longid) - 1);
	longid[sizeof(longid) - 1] = '\0';
	assert_int_equal(replay_consume(f->r, "AAAA", 0, 1000), -EINVAL);
	assert_int_equal(replay_consume(f->r, "", 1, 1000), -EINVAL);
	assert_int_equal(replay_consume(f->r, NULL, 1, 1000), -EINVAL);
	assert_int_equal(replay_consume(f->r, "a b", 1, 1000), -EINVAL);
	assert_int_equal(replay_consume(f->r, "a\n", 1, 1000), -EINVAL);
	assert_int_equal(replay_consume(f->r, longid, 1, 1000), -EINVAL);
	longid[REPLAY_ID_MAX] = '\0';
	assert_int_equal(replay_consume(f->r, longid, 1, 1000), 0);
	assert_int_equal(replay_uses(f->r, "a b", &n), -EINVAL);
}

static void
test_durable_across_reopen(void **state)
{
	struct fixture *f = *state;
	uint32_t n = 0;

	assert_int_equal(replay_open(f->path, &f->r), 0);
	assert_int_equal(replay_consume(f->r, "AAAA", 2, 1000), 0);
	replay_close(f->r);
	f->r = NULL;
	assert_int_equal(replay_open(f->path, &f->r), 0);
	assert_int_equal(replay_uses(f->r, "AAAA", &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(replay_consume(f->r, "AAAA", 2, 1000), 0);
	assert_int_equal(replay_consume(f->r, "AAAA", 2, 1000), -EALREADY);
}

static void
test_prune(void **state)
{
	struct fixture *f = *state;
	uint64_t removed = 99;
	uint32_t n = 0;

	assert_int_equal(replay_open(f->path, &f->r), 0);
	assert_int_equal(replay_consume(f->r, "AAAA", 1, 100), 0);
	assert_int_equal(replay_consume(f->r, "BBBB", 1, 200), 0);
	assert_int_equal(replay_consume(f->r, "CCCC", 2, 100), 0);
	/* A later exp for the same id keeps it longer, never shorter. */
	assert_int_equal(replay_consume(f->r, "CCCC", 2, 300), 0);
	assert_int_equal(replay_prune(f->r, 100, &removed), 0);
	assert_int_equal(removed, 0);
	assert_int_equal(replay_prune(f->r, 101, &removed), 0);
	assert_int_equal(removed, 1);
	assert_int_equal(replay_uses(f->r, "AAAA", &n), 0);
	assert_int_equal(n, 0);
	assert_int_equal(replay_uses(f->r, "CCCC", &n), 0);
	assert_int_equal(n, 2);
	assert_int_equal(replay_prune(f->r, 1000, NULL), 0);
	assert_int_equal(replay_uses(f->r, "BBBB", &n), 0);
	assert_int_equal(n, 0);
}

/* An earlier exp presented later never shortens the row's life. */
static void
test_prune_keeps_latest_exp(void **state)
{
	struct fixture *f = *state;
	uint64_t removed = 99;
	uint32_t n = 0;

	assert_int_equal(replay_open(f->path, &f->r), 0);
	assert_int_equal(replay_consume(f->r, "DDDD", 3, 300), 0);
	assert_int_equal(replay_consume(f->r, "DDDD", 3, 100), 0);
	assert_int_equal(replay_prune(f->r, 101, &removed), 0);
	assert_int_equal(removed, 0);
	assert_int_equal(replay_uses(f->r, "DDDD", &n), 0);
	assert_int_equal(n, 2);
	assert_int_equal(replay_consume(f->r, "DDDD", 3, 100), 0);
	assert_int_equal(replay_consume(f->r, "DDDD", 3, 100), -EALREADY);
}

/* Several processes race for one single-use id: exactly one wins. */
static void
test_concurrent_processes(void **state)
{
	struct fixture *f = *state;
	enum { N = 8 };
	pid_t pids[N];
	int i, wins = 0, status;

	assert_int_equal(replay_open(f->path, &f->r), 0);
	replay_close(f->r);
	f->r = NULL;
	for (i = 0; i < N; i++) {
		pids[i] = fork();
		assert_true(pids[i] >= 0);
		if (pids[i] == 0) {
			struct replay *r = NULL;
			int rc;

			if (replay_open(f->path, &r) != 0) {
				_exit(3);
			}
			rc = replay_consume(r, "RACE", 1, 1000);
			replay_close(r);
			_exit(rc == 0 ? 0 : rc == -EALREADY ? 1 : 2);
		}
	}
	for (i = 0; i < N; i++) {
		assert_int_equal(waitpid(pids[i], &status, 0), pids[i]);
		assert_true(WIFEXITED(status));
		assert_true(WEXITSTATUS(status) <= 1);
		if (WEXITSTATUS(status) == 0) {
			wins++;
		}
	}
	assert_int_equal(wins, 1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_open_creates_private_wal_store, setup, teardown),
		cmocka_unit_test_setup_teardown(test_open_refuses_symlink_and_garbage, setup, teardown),
		cmocka_unit_test_setup_teardown(test_consume_counts, setup, teardown),
		cmocka_unit_test_setup_teardown(test_consume_rejects, setup, teardown),
		cmocka_unit_test_setup_teardown(test_durable_across_reopen, setup, teardown),
		cmocka_unit_test_setup_teardown(test_prune, setup, teardown),
		cmocka_unit_test_setup_teardown(test_prune_keeps_latest_exp, setup, teardown),
		cmocka_unit_test_setup_teardown(test_concurrent_processes, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
