/* Unit tests for approver/store.c: the approver's SQLite database, on a
 * real file in a temporary folder. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../../approver/store.h"

struct fixture {
	char dir[64];
	char path[96];
	struct store *s;
};

static int
setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	snprintf(f->dir, sizeof(f->dir), "/tmp/test_store.XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->path, sizeof(f->path), "%s/approver.db", f->dir);
	assert_int_equal(store_open(f->path, &f->s), 0);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;
	char cmd[128];

	store_close(f->s);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
	assert_int_equal(system(cmd), 0);
	free(f);
	return 0;
}

static void
raw_exec(const char *path, const char *sql)
{
	sqlite3 *db = NULL;

	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
}

static void
fill_request(struct store_request *r, const char *id, const char *caller, const char *op,
    int64_t created)
{
	memset(r, 0, sizeof(*r));
	snprintf(r->ar.request, sizeof(r->ar.request), "%s", id);
	snprintf(r->ar.aud, sizeof(r->ar.aud), "proxy");
	snprintf(r->ar.vm, sizeof(r->ar.vm), "vm1");
	memset(r->ar.launch_digest, 'a', TOKEN_HEX256_LEN);
	snprintf(r->ar.op, sizeof(r->ar.op), "%s", op);
	memset(r->ar.args_sha256, 'b', TOKEN_HEX256_LEN);
	r->ar.ttl = 60;
	snprintf(r->caller, sizeof(r->caller), "%s", caller);
	memset(r->digest, 'c', TOKEN_HEX256_LEN);
	r->args_json = (char *)"{\"x\":1}";
	r->reason = (char *)"because";
	r->created = created;
	r->expires = created + 900;
	r->state = STORE_PENDING;
}

static void
insert_request(struct store *s, const char *id, const char *caller, const char *op,
    int64_t created)
{
	struct store_request r;

	fill_request(&r, id, caller, op, created);
	assert_int_equal(store_request_insert(s, &r), 0);
}

static void
test_open_modes_and_pragmas(void **state)
{
	struct fixture *f = *state;
	struct store *s2 = NULL;
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	struct stat sb;
	char link[128];

	assert_int_equal(stat(f->path, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0600);
	assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &st, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	assert_string_equal((const char *)sqlite3_column_text(st, 0), "wal");
	sqlite3_finalize(st);
	assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	assert_int_equal(sqlite3_column_int(st, 0), 1);
	sqlite3_finalize(st);
	sqlite3_close(db);
	/* A second handle on the same file (another thread) opens the same schema. */
	assert_int_equal(store_open(f->path, &s2), 0);
	store_close(s2);
	s2 = NULL;
	snprintf(link, sizeof(link), "%s/link.db", f->dir);
	assert_int_equal(symlink(f->path, link), 0);
	assert_int_equal(store_open(link, &s2), -ELOOP);
	assert_null(s2);
	assert_int_equal(store_open("", &s2), -EINVAL);
	/* A store (and its WAL) left with a looser mode is brought back to
	 * 0600 before anything is read from it. */
	assert_int_equal(chmod(f->path, 0644), 0);
	{
		char wal[160];
		int fd;

		snprintf(wal, sizeof(wal), "%s-wal", f->path);
		fd = open(wal, O_RDWR | O_CREAT, 0600);
		assert_true(fd >= 0);
		close(fd);
		assert_int_equal(chmod(wal, 0666), 0);
		assert_int_equal(store_open(f->path, &s2), 0);
		assert_int_equal(stat(f->path, &sb), 0);
		assert_int_equal(sb.st_mode & 07777, 0600);
		assert_int_equal(stat(wal, &sb), 0);
		assert_int_equal(sb.st_mode & 07777, 0600);
		store_close(s2);
		s2 = NULL;
	}
	/* A newer schema is not ours. */
	raw_exec(f->path, "PRAGMA user_version = 7");
	assert_int_equal(store_open(f->path, &s2), -EIO);
	assert_null(s2);
}

static int
count_user(const struct store_user *u, void *arg)
{
	(void)u;
	(*(int *)arg)++;
	return 0;
}

static void
test_users(void **state)
{
	struct fixture *f = *state;
	struct store_user u;
	struct store_session ss;
	enum store_role role;
	uint8_t sid[32], csrf[32];
	int64_t id = 0, id2 = 0;
	int n = 0;

	assert_int_equal(store_user_add(f->s, "alice", STORE_ROLE_ADMIN, "$argon2id$x", 10, &id), 0);
	assert_true(id > 0);
	assert_int_equal(store_user_add(f->s, "alice", STORE_ROLE_APPROVER, "$argon2id$y", 11, NULL),
	    -EEXIST);
	assert_int_equal(store_user_add(f->s, "bob", STORE_ROLE_APPROVER, "$argon2id$y", 11, &id2), 0);
	assert_int_equal(store_user_add(f->s, "bad name", STORE_ROLE_APPROVER, "h", 1, NULL), -EINVAL);
	assert_int_equal(store_user_add(f->s, "", STORE_ROLE_APPROVER, "h", 1, NULL), -EINVAL);
	assert_int_equal(store_user_add(f->s, "carol", (enum store_role)9, "h", 1, NULL), -EINVAL);
	assert_int_equal(store_user_add(f->s, "carol", STORE_ROLE_APPROVER, "", 1, NULL), -EINVAL);
	assert_int_equal(store_user_get(f->s, "alice", &u), 0);
	assert_int_equal(u.id, id);
	assert_string_equal(u.name, "alice");
	assert_int_equal(u.role, STORE_ROLE_ADMIN);
	assert_false(u.disabled);
	assert_string_equal(u.pwhash, "$argon2id$x");
	assert_int_equal(u.created, 10);
	assert_int_equal(store_user_get_id(f->s, id2, &u), 0);
	assert_string_equal(u.name, "bob");
	assert_int_equal(store_user_get(f->s, "nobody", &u), -ENOENT);
	assert_int_equal(store_user_get_id(f->s, 999, &u), -ENOENT);
	assert_int_equal(store_user_list(f->s, count_user, &n), 0);
	assert_int_equal(n, 2);
	assert_string_equal(store_role_name(STORE_ROLE_APPROVER), "approver");
	assert_int_equal(store_role_parse("admin", &role), 0);
	assert_int_equal(role, STORE_ROLE_ADMIN);
	assert_int_equal(store_role_parse("root", &role), -EINVAL);
	assert_int_equal(store_role_parse("Admin", &role), -EINVAL);

	/* Sessions, and disabling ends them. */
	memset(sid, 1, sizeof(sid));
	memset(csrf, 2, sizeof(csrf));
	assert_int_equal(store_session_create(f->s, sid, id2, csrf, 100), 0);
	assert_int_equal(store_session_create(f->s, sid, id2, csrf, 100), -EEXIST);
	assert_int_equal(store_session_get(f->s, sid, &ss), 0);
	assert_int_equal(ss.user_id, id2);
	assert_string_equal(ss.user, "bob");
	assert_int_equal(ss.role, STORE_ROLE_APPROVER);
	assert_memory_equal(ss.csrf_key, csrf, 32);
	assert_int_equal(ss.created, 100);
	assert_int_equal(store_session_touch(f->s, sid, 150), 0);
	assert_int_equal(store_session_get(f->s, sid, &ss), 0);
	assert_int_equal(ss.last_seen, 150);
	assert_int_equal(store_user_set_disabled(f->s, "bob", true), 0);
	assert_int_equal(store_session_get(f->s, sid, &ss), -ENOENT);
	assert_int_equal(store_user_get(f->s, "bob", &u), 0);
	assert_true(u.disabled);
	assert_int_equal(store_user_set_disabled(f->s, "bob", false), 0);
	/* The session is gone, not just hidden. */
	assert_int_equal(store_session_get(f->s, sid, &ss), -ENOENT);
	assert_int_equal(store_user_set_disabled(f->s, "nobody", true), -ENOENT);
	/* A session for a user that does not exist. */
	assert_int_equal(store_session_create(f->s, sid, 999, csrf, 100), -ENOENT);
}

static void
test_sessions_purge_delete(void **state)
{
	struct fixture *f = *state;
	struct store_session ss;
	uint8_t a[32], b[32], c[32], k[32];
	int64_t id = 0;

	assert_int_equal(store_user_add(f->s, "alice", STORE_ROLE_APPROVER, "h", 1, &id), 0);
	memset(a, 0xa, 32);
	memset(b, 0xb, 32);
	memset(c, 0xc, 32);
	memset(k, 0, 32);
	assert_int_equal(store_session_create(f->s, a, id, k, 100), 0);   /* idle */
	assert_int_equal(store_session_create(f->s, b, id, k, 10), 0);    /* too old */
	assert_int_equal(store_session_touch(f->s, b, 1000), 0);
	assert_int_equal(store_session_create(f->s, c, id, k, 900), 0);
	assert_int_equal(store_session_purge(f->s, 500, 50), 0);
	assert_int_equal(store_session_get(f->s, a, &ss), -ENOENT);
	assert_int_equal(store_session_get(f->s, b, &ss), -ENOENT);
	assert_int_equal(store_session_get(f->s, c, &ss), 0);
	assert_int_equal(store_session_delete(f->s, c), 0);
	assert_int_equal(store_session_delete(f->s, c), -ENOENT);
	assert_int_equal(store_session_touch(f->s, c, 1), -ENOENT);
}

/* A sign-in that could not be checked (no free Argon2id slot) takes back
 * the failure recorded before the check: one row, and only that one. */
static void
test_login_failed_undo(void **state)
{
	struct fixture *f = *state;
	int64_t by_name = -1, by_addr = -1;

	assert_int_equal(store_login_failed(f->s, "alice", "10.0.0.1", 100), 0);
	assert_int_equal(store_login_failed(f->s, "alice", "10.0.0.1", 100), 0);
	assert_int_equal(store_login_failed(f->s, "alice", "10.0.0.2", 100), 0);
	assert_int_equal(store_login_failed_undo(f->s, "alice", "10.0.0.1", 100), 0);
	assert_int_equal(store_login_failures(f->s, "alice", "10.0.0.1", 0, &by_name, &by_addr), 0);
	assert_int_equal(by_name, 2);
	assert_int_equal(by_addr, 1);
	/* No matching row: nothing changes. */
	assert_int_equal(store_login_failed_undo(f->s, "alice", "10.0.0.1", 99), 0);
	assert_int_equal(store_login_failed_undo(f->s, "bob", "10.0.0.2", 100), 0);
	assert_int_equal(store_login_failures(f->s, "alice", "10.0.0.2", 0, &by_name, &by_addr), 0);
	assert_int_equal(by_name, 2);
	assert_int_equal(by_addr, 1);
	/* Restamped: the same one row, now at the later time. */
	assert_int_equal(store_login_failed_restamp(f->s, "alice", "10.0.0.2", 100, 130), 0);
	assert_int_equal(store_login_failures(f->s, "alice", "10.0.0.2", 0, &by_name, &by_addr), 0);
	assert_int_equal(by_name, 2);
	assert_int_equal(by_addr, 1);
	assert_int_equal(store_login_failures(f->s, "alice", "10.0.0.2", 120, &by_name, &by_addr),
	    0);
	assert_int_equal(by_name, 1);
	assert_int_equal(by_addr, 1);
	assert_int_equal(store_login_failed_restamp(f->s, "alice", NULL, 100, 130), -EINVAL);
}

static void
test_login_failures(void **state)
{
	struct fixture *f = *state;
	int64_t by_name = -1, by_addr = -1, name_at = -1, addr_at = -1;

	assert_int_equal(store_login_failed(f->s, "alice", "10.0.0.1", 100), 0);
	assert_int_equal(store_login_failed(f->s, "alice", "10.0.0.2", 200), 0);
	assert_int_equal(store_login_failed(f->s, "ghost", "10.0.0.1", 300), 0);
	assert_int_equal(store_login_failed(f->s, "bob", "10.0.0.1", 50), 0);
	assert_int_equal(store_login_failures(f->s, "alice", "10.0.0.1", 0, &by_name, &by_addr), 0);
	assert_int_equal(by_name, 2);
	assert_int_equal(by_addr, 3);
	assert_int_equal(store_login_failures(f->s, "alice", "10.0.0.1", 150, &by_name, &by_addr), 0);
	assert_int_equal(by_name, 1);
	assert_int_equal(by_addr, 1);
	assert_int_equal(store_login_failures(f->s, "nobody", "10.9.9.9", 0, &by_name, &by_addr), 0);
	assert_int_equal(by_name, 0);
	assert_int_equal(by_addr, 0);
	/* The latest failure, per name and per address, within the window. */
	assert_int_equal(store_login_last_failure(f->s, "alice", "10.0.0.1", 0, &name_at, &addr_at),
	    0);
	assert_int_equal(name_at, 200);
	assert_int_equal(addr_at, 300);
	assert_int_equal(store_login_last_failure(f->s, "bob", "10.0.0.2", 0, &name_at, &addr_at),
	    0);
	assert_int_equal(name_at, 50);
	assert_int_equal(addr_at, 200);
	assert_int_equal(store_login_last_failure(f->s, "bob", "10.0.0.2", 60, &name_at, &addr_at),
	    0);
	assert_int_equal(name_at, 0);
	assert_int_equal(addr_at, 200);
	assert_int_equal(store_login_last_failure(f->s, "nobody", "10.9.9.9", 0, &name_at,
	    &addr_at), 0);
	assert_int_equal(name_at, 0);
	assert_int_equal(addr_at, 0);
	assert_int_equal(store_login_last_failure(f->s, NULL, "10.9.9.9", 0, &name_at, &addr_at),
	    -EINVAL);
	/* A success forgets the failures from its own address only. */
	assert_int_equal(store_login_succeeded(f->s, "alice", "10.0.0.1"), 0);
	assert_int_equal(store_login_failures(f->s, "alice", "10.0.0.1", 0, &by_name, &by_addr), 0);
	assert_int_equal(by_name, 1);
	assert_int_equal(by_addr, 2);
	assert_int_equal(store_login_succeeded(f->s, "alice", NULL), -EINVAL);
	assert_int_equal(store_login_succeeded(f->s, "alice", "10.0.0.2"), 0);
	assert_int_equal(store_login_failures(f->s, "alice", "10.0.0.1", 0, &by_name, &by_addr), 0);
	assert_int_equal(by_name, 0);
	assert_int_equal(by_addr, 2);
	assert_int_equal(store_login_purge(f->s, 100), 0);
	assert_int_equal(store_login_failures(f->s, "bob", "10.0.0.1", 0, &by_name, &by_addr), 0);
	assert_int_equal(by_name, 0);
	assert_int_equal(by_addr, 1);
}

struct collect {
	int n;
	char ids[16][TOKEN_ID_MAX + 1];
};

static int
collect_request(const struct store_request *r, void *arg)
{
	struct collect *c = arg;

	if (c->n < 16) {
		snprintf(c->ids[c->n], sizeof(c->ids[0]), "%s", r->ar.request);
	}
	c->n++;
	return 0;
}

static int
stop_request(const struct store_request *r, void *arg)
{
	(void)r;
	(void)arg;
	return 42;
}

static void
test_requests(void **state)
{
	struct fixture *f = *state;
	struct store_request r, g;
	struct store_filter flt;
	struct collect c;
	char **ids = NULL;
	size_t n = 0, i;
	int64_t count = -1;

	insert_request(f->s, "r1", "uid:1", "exec", 100);
	insert_request(f->s, "r2", "uid:1", "read", 200);
	insert_request(f->s, "r3", "uid:2", "exec", 300);
	insert_request(f->s, "r4", "uid:2", "exec", 300);
	fill_request(&r, "r1", "uid:1", "exec", 100);
	assert_int_equal(store_request_insert(f->s, &r), -EEXIST);
	fill_request(&r, "bad id", "uid:1", "exec", 100);
	assert_int_equal(store_request_insert(f->s, &r), -EINVAL);
	fill_request(&r, "r9", "uid:1", "exec", 100);
	r.args_json = NULL;
	assert_int_equal(store_request_insert(f->s, &r), -EINVAL);

	assert_int_equal(store_request_get(f->s, "r2", &g), 0);
	assert_string_equal(g.ar.request, "r2");
	assert_string_equal(g.ar.aud, "proxy");
	assert_string_equal(g.ar.op, "read");
	assert_int_equal(g.ar.ttl, 60);
	assert_string_equal(g.caller, "uid:1");
	assert_string_equal(g.owner, "");
	assert_string_equal(g.args_json, "{\"x\":1}");
	assert_string_equal(g.reason, "because");
	assert_string_equal(g.state_reason, "");
	assert_int_equal(g.state, STORE_PENDING);
	assert_int_equal(g.created, 200);
	assert_int_equal(g.expires, 1100);
	assert_false(g.token_ready);
	assert_int_equal(g.approvals, 0);
	store_request_clear(&g);
	assert_int_equal(store_request_get(f->s, "nope", &g), -ENOENT);

	/* Newest first, then by id, with LIMIT/OFFSET. */
	memset(&flt, 0, sizeof(flt));
	flt.state = STORE_PENDING;
	flt.limit = 10;
	memset(&c, 0, sizeof(c));
	assert_int_equal(store_request_list(f->s, &flt, collect_request, &c), 0);
	assert_int_equal(c.n, 4);
	assert_string_equal(c.ids[0], "r4");
	assert_string_equal(c.ids[1], "r3");
	assert_string_equal(c.ids[2], "r2");
	assert_string_equal(c.ids[3], "r1");
	flt.limit = 2;
	flt.offset = 1;
	memset(&c, 0, sizeof(c));
	assert_int_equal(store_request_list(f->s, &flt, collect_request, &c), 0);
	assert_int_equal(c.n, 2);
	assert_string_equal(c.ids[0], "r3");
	assert_string_equal(c.ids[1], "r2");
	/* Filters. */
	flt.limit = 10;
	flt.offset = 0;
	flt.op = "exec";
	flt.caller = "uid:2";
	memset(&c, 0, sizeof(c));
	assert_int_equal(store_request_list(f->s, &flt, collect_request, &c), 0);
	assert_int_equal(c.n, 2);
	flt.vm = "vm2";
	memset(&c, 0, sizeof(c));
	assert_int_equal(store_request_list(f->s, &flt, collect_request, &c), 0);
	assert_int_equal(c.n, 0);
	flt.vm = NULL;
	flt.op = NULL;
	flt.caller = NULL;
	/* Bad filters. */
	flt.limit = 0;
	assert_int_equal(store_request_list(f->s, &flt, collect_request, &c), -EINVAL);
	flt.limit = 1001;
	assert_int_equal(store_request_list(f->s, &flt, collect_request, &c), -EINVAL);
	flt.limit = 10;
	flt.offset = -1;
	assert_int_equal(store_request_list(f->s, &flt, collect_request, &c), -EINVAL);
	flt.offset = 0;
	flt.state = -3;
	assert_int_equal(store_request_list(f->s, &flt, collect_request, &c), -EINVAL);
	flt.state = 7;
	assert_int_equal(store_request_list(f->s, &flt, collect_request, &c), -EINVAL);
	/* A callback's non-zero answer stops the walk and is returned. */
	flt.state = -1;
	assert_int_equal(store_request_list(f->s, &flt, stop_request, NULL), 42);

	/* Transitions. */
	assert_int_equal(store_request_transition(f->s, "r1", STORE_PENDING, STORE_DENIED, "no",
	    500), 0);
	assert_int_equal(store_request_transition(f->s, "r1", STORE_PENDING, STORE_DENIED, "no",
	    501), -ESTALE);
	assert_int_equal(store_request_transition(f->s, "nope", STORE_PENDING, STORE_DENIED, NULL,
	    501), -ENOENT);
	assert_int_equal(store_request_transition(f->s, "r2", STORE_PENDING, STORE_MINTING, NULL,
	    600), 0);
	assert_int_equal(store_request_get(f->s, "r1", &g), 0);
	assert_int_equal(g.state, STORE_DENIED);
	assert_string_equal(g.state_reason, "no");
	assert_int_equal(g.decided, 500);
	store_request_clear(&g);
	assert_int_equal(store_request_get(f->s, "r2", &g), 0);
	assert_int_equal(g.state, STORE_MINTING);
	assert_int_equal(g.decided, 0);
	store_request_clear(&g);

	assert_int_equal(store_request_count(f->s, STORE_PENDING, &count), 0);
	assert_int_equal(count, 2);
	assert_int_equal(store_request_count(f->s, -2, &count), 0);
	assert_int_equal(count, 2);
	assert_int_equal(store_request_count(f->s, -1, &count), 0);
	assert_int_equal(count, 4);
	flt.state = -2;
	memset(&c, 0, sizeof(c));
	assert_int_equal(store_request_list(f->s, &flt, collect_request, &c), 0);
	assert_int_equal(c.n, 2);
	assert_string_equal(c.ids[0], "r2");
	assert_string_equal(c.ids[1], "r1");

	/* Due: pending past their deadline only (r3, r4 expire at 1200). */
	assert_int_equal(store_request_due(f->s, 1199, &ids, &n), 0);
	assert_int_equal(n, 0);
	free(ids);
	ids = NULL;
	assert_int_equal(store_request_due(f->s, 1200, &ids, &n), 0);
	assert_int_equal(n, 2);
	assert_string_equal(ids[0], "r3");
	assert_string_equal(ids[1], "r4");
	for (i = 0; i < n; i++) {
		free(ids[i]);
	}
	free(ids);

	assert_string_equal(store_state_name(STORE_CANCELLED), "cancelled");
	{
		enum store_state st;

		assert_int_equal(store_state_parse("approved", &st), 0);
		assert_int_equal(st, STORE_APPROVED);
		assert_int_equal(store_state_parse("approve", &st), -EINVAL);
	}
}

static void
test_tokens(void **state)
{
	struct fixture *f = *state;
	struct store_request g;
	char *tok = NULL;

	insert_request(f->s, "t1", "uid:1", "exec", 100);
	/* Not minting yet. */
	assert_int_equal(store_token_put(f->s, "t1", "w1.tok", 200), -ESTALE);
	assert_int_equal(store_token_put(f->s, "zz", "w1.tok", 200), -ENOENT);
	assert_int_equal(store_token_take(f->s, "t1", "uid:1", &tok), -EAGAIN);
	assert_int_equal(store_request_transition(f->s, "t1", STORE_PENDING, STORE_MINTING, NULL,
	    150), 0);
	assert_int_equal(store_token_put(f->s, "t1", "w1.tok", 200), 0);
	assert_int_equal(store_token_put(f->s, "t1", "w1.tok2", 201), -ESTALE);
	assert_int_equal(store_request_get(f->s, "t1", &g), 0);
	assert_int_equal(g.state, STORE_APPROVED);
	assert_true(g.token_ready);
	assert_false(g.picked_up);
	assert_int_equal(g.decided, 200);
	store_request_clear(&g);
	/* Another caller sees nothing. */
	assert_int_equal(store_token_take(f->s, "t1", "uid:2", &tok), -ENOENT);
	assert_null(tok);
	assert_int_equal(store_token_take(f->s, "nope", "uid:1", &tok), -ENOENT);
	assert_int_equal(store_token_take(f->s, "t1", "uid:1", &tok), 0);
	assert_string_equal(tok, "w1.tok");
	explicit_bzero(tok, strlen(tok));
	free(tok);
	tok = NULL;
	assert_int_equal(store_token_take(f->s, "t1", "uid:1", &tok), -EALREADY);
	assert_null(tok);
	assert_int_equal(store_request_get(f->s, "t1", &g), 0);
	assert_false(g.token_ready);
	assert_true(g.picked_up);
	store_request_clear(&g);
	/* The token is gone from the row, not only marked. */
	{
		sqlite3 *db = NULL;
		sqlite3_stmt *st = NULL;

		assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
		assert_int_equal(sqlite3_prepare_v2(db, "SELECT token IS NULL FROM requests"
		    " WHERE id = 't1'", -1, &st, NULL), SQLITE_OK);
		assert_int_equal(sqlite3_step(st), SQLITE_ROW);
		assert_int_equal(sqlite3_column_int(st, 0), 1);
		sqlite3_finalize(st);
		sqlite3_close(db);
	}
}

/* A token nobody picked up is erased once it has expired, and its request
 * becomes expired; a token still good, or already taken, is left alone. */
static void
test_token_purge(void **state)
{
	struct fixture *f = *state;
	struct store_request g;
	char *tok = NULL;
	int64_t n = -1;

	insert_request(f->s, "p1", "uid:1", "exec", 100);
	insert_request(f->s, "p2", "uid:1", "exec", 100);
	assert_int_equal(store_request_get(f->s, "p1", &g), 0);
	assert_true(g.ar.ttl > 0);
	store_request_clear(&g);
	assert_int_equal(store_request_transition(f->s, "p1", STORE_PENDING, STORE_MINTING, NULL,
	    150), 0);
	assert_int_equal(store_token_put(f->s, "p1", "w1.one", 200), 0);
	assert_int_equal(store_request_transition(f->s, "p2", STORE_PENDING, STORE_MINTING, NULL,
	    150), 0);
	assert_int_equal(store_token_put(f->s, "p2", "w1.two", 200), 0);
	assert_int_equal(store_request_get(f->s, "p1", &g), 0);
	/* Still good at decided + ttl. */
	assert_int_equal(store_token_purge(f->s, 200 + g.ar.ttl, &n), 0);
	assert_int_equal(n, 0);
	assert_int_equal(store_token_take(f->s, "p2", "uid:1", &tok), 0);
	explicit_bzero(tok, strlen(tok));
	free(tok);
	tok = NULL;
	assert_int_equal(store_token_purge(f->s, 201 + g.ar.ttl, &n), 0);
	assert_int_equal(n, 1);
	store_request_clear(&g);
	assert_int_equal(store_request_get(f->s, "p1", &g), 0);
	assert_int_equal(g.state, STORE_EXPIRED);
	assert_false(g.token_ready);
	assert_non_null(strstr(g.state_reason, "before it was picked up"));
	store_request_clear(&g);
	assert_int_equal(store_token_take(f->s, "p1", "uid:1", &tok), -EAGAIN);
	assert_null(tok);
	assert_int_equal(store_request_get(f->s, "p2", &g), 0);
	assert_int_equal(g.state, STORE_APPROVED);
	assert_true(g.picked_up);
	store_request_clear(&g);
}

static int
count_decision(const struct store_decision *d, void *arg)
{
	int *n = arg;

	if (*n == 0) {
		assert_string_equal(d->user, "alice");
		assert_true(d->approve);
		assert_string_equal(d->approval_json, "{\"a\":1}");
	} else {
		assert_string_equal(d->user, "bob");
		assert_false(d->approve);
		assert_null(d->approval_json);
		assert_string_equal(d->reason, "nope");
	}
	(*n)++;
	return 0;
}

static void
test_decisions(void **state)
{
	struct fixture *f = *state;
	struct store_request g;
	int64_t a = 0, b = 0;
	int n = 0;

	assert_int_equal(store_user_add(f->s, "alice", STORE_ROLE_APPROVER, "h", 1, &a), 0);
	assert_int_equal(store_user_add(f->s, "bob", STORE_ROLE_APPROVER, "h", 1, &b), 0);
	insert_request(f->s, "d1", "uid:1", "exec", 100);
	assert_int_equal(store_decision_add(f->s, "d1", a, true, "ok", "{\"a\":1}", 200), 0);
	assert_int_equal(store_decision_add(f->s, "d1", a, false, "changed my mind", NULL, 201),
	    -EEXIST);
	assert_int_equal(store_decision_add(f->s, "d1", b, false, "nope", NULL, 202), 0);
	assert_int_equal(store_decision_add(f->s, "zz", b, false, "nope", NULL, 202), -ENOENT);
	assert_int_equal(store_decision_add(f->s, "d1", 999, false, "nope", NULL, 202), -ENOENT);
	assert_int_equal(store_decision_list(f->s, "d1", count_decision, &n), 0);
	assert_int_equal(n, 2);
	assert_int_equal(store_request_get(f->s, "d1", &g), 0);
	assert_int_equal(g.approvals, 1);
	assert_int_equal(g.denials, 1);
	store_request_clear(&g);
}

static int
count_cred(const struct store_credential *c, void *arg)
{
	(void)c;
	(*(int *)arg)++;
	return 0;
}

static void
test_credentials_challenges(void **state)
{
	struct fixture *f = *state;
	struct store_credential c, g;
	uint8_t sid[32], ch[32], out[32];
	int64_t a = 0, b = 0;
	int n = 0;

	assert_int_equal(store_user_add(f->s, "alice", STORE_ROLE_APPROVER, "h", 1, &a), 0);
	assert_int_equal(store_user_add(f->s, "bob", STORE_ROLE_APPROVER, "h", 1, &b), 0);
	memset(&c, 0, sizeof(c));
	c.user_id = a;
	c.cred.id_len = 16;
	memset(c.cred.id, 7, 16);
	c.cred.alg = WEBAUTHN_ALG_ES256;
	c.cred.pk_len = 65;
	memset(c.cred.pk, 4, 65);
	c.cred.sign_count = 5;
	snprintf(c.label, sizeof(c.label), "key1");
	c.created = 10;
	assert_int_equal(store_credential_add(f->s, &c), 0);
	c.user_id = b;
	assert_int_equal(store_credential_add(f->s, &c), -EEXIST);
	c.cred.id[0] = 8;
	assert_int_equal(store_credential_add(f->s, &c), 0);
	c.cred.id_len = 0;
	assert_int_equal(store_credential_add(f->s, &c), -EINVAL);
	c.cred.id[0] = 7;
	assert_int_equal(store_credential_get(f->s, c.cred.id, 16, &g), 0);
	assert_int_equal(g.user_id, a);
	assert_string_equal(g.user, "alice");
	assert_int_equal(g.cred.id_len, 16);
	assert_int_equal(g.cred.alg, WEBAUTHN_ALG_ES256);
	assert_int_equal(g.cred.pk_len, 65);
	assert_memory_equal(g.cred.pk, c.cred.pk, 65);
	assert_int_equal(g.cred.sign_count, 5);
	assert_string_equal(g.label, "key1");
	assert_int_equal(store_credential_get(f->s, c.cred.id, 15, &g), -ENOENT);
	assert_int_equal(store_credential_list(f->s, -1, count_cred, &n), 0);
	assert_int_equal(n, 2);
	n = 0;
	assert_int_equal(store_credential_list(f->s, b, count_cred, &n), 0);
	assert_int_equal(n, 1);

	/* Challenges: once, and not after they expire. */
	memset(sid, 3, 32);
	memset(ch, 9, 32);
	assert_int_equal(store_challenge_put(f->s, sid, ch, 100), 0);
	assert_int_equal(store_challenge_take(f->s, sid, 50, out), 0);
	assert_memory_equal(out, ch, 32);
	assert_int_equal(store_challenge_take(f->s, sid, 50, out), -ENOENT);
	assert_int_equal(store_challenge_put(f->s, sid, ch, 100), 0);
	ch[0] = 1;
	assert_int_equal(store_challenge_put(f->s, sid, ch, 100), 0);   /* replaces */
	assert_int_equal(store_challenge_take(f->s, sid, 99, out), 0);
	assert_int_equal(out[0], 1);
	assert_int_equal(store_challenge_put(f->s, sid, ch, 100), 0);
	assert_int_equal(store_challenge_take(f->s, sid, 100, out), -ENOENT);
	/* The expired one is gone too. */
	assert_int_equal(store_challenge_take(f->s, sid, 0, out), -ENOENT);
}

static void
test_notify_queue(void **state)
{
	struct fixture *f = *state;
	char id[TOKEN_ID_MAX + 1];
	int64_t attempts = -1;

	insert_request(f->s, "n1", "uid:1", "exec", 100);
	insert_request(f->s, "n2", "uid:1", "exec", 101);
	assert_int_equal(store_notify_next(f->s, 1000, id, &attempts), -ENOENT);
	assert_int_equal(store_notify_add(f->s, "n1", 100), 0);
	assert_int_equal(store_notify_add(f->s, "n1", 100), 0);    /* once */
	assert_int_equal(store_notify_add(f->s, "n2", 150), 0);
	assert_int_equal(store_notify_add(f->s, "zz", 150), -ENOENT);
	assert_int_equal(store_notify_next(f->s, 99, id, &attempts), -ENOENT);
	assert_int_equal(store_notify_next(f->s, 200, id, &attempts), 0);
	assert_string_equal(id, "n1");
	assert_int_equal(attempts, 0);
	assert_int_equal(store_notify_retry(f->s, "n1", 300), 0);
	assert_int_equal(store_notify_next(f->s, 200, id, &attempts), 0);
	assert_string_equal(id, "n2");
	assert_int_equal(store_notify_done(f->s, "n2"), 0);
	assert_int_equal(store_notify_done(f->s, "n2"), -ENOENT);
	assert_int_equal(store_notify_next(f->s, 200, id, &attempts), -ENOENT);
	assert_int_equal(store_notify_next(f->s, 300, id, &attempts), 0);
	assert_string_equal(id, "n1");
	assert_int_equal(attempts, 1);
	assert_int_equal(store_notify_retry(f->s, "zz", 1), -ENOENT);
}

struct audit_seen {
	int n;
	int64_t seqs[8];
};

static int
collect_audit(const struct store_audit *a, void *arg)
{
	struct audit_seen *s = arg;

	if (s->n < 8) {
		s->seqs[s->n] = a->seq;
	}
	assert_int_equal(strlen(a->hash), 64);
	s->n++;
	return 0;
}

static void
test_audit_chain(void **state)
{
	struct fixture *f = *state;
	struct audit_seen seen;
	json_t *d;
	char detail[256];
	int64_t n = -1, bad = -1;

	assert_int_equal(store_audit_verify(f->s, &n, &bad, detail, sizeof(detail)), 0);
	assert_int_equal(n, 0);
	d = json_pack("{s:s, s:i}", "role", "admin", "k", 3);
	assert_int_equal(store_audit_append(f->s, "cli:0", "user_add", NULL, d, 100), 0);
	assert_int_equal(store_audit_append(f->s, "alice", "view", "r1", NULL, 101), 0);
	/* Inside the caller's transaction: rolled back with it. */
	assert_int_equal(store_begin(f->s), 0);
	assert_int_equal(store_audit_append(f->s, "alice", "decide", "r1", d, 102), 0);
	store_rollback(f->s);
	assert_int_equal(store_begin(f->s), 0);
	assert_int_equal(store_audit_append(f->s, "bob", "decide", "r1", d, 103), 0);
	assert_int_equal(store_audit_append(f->s, "approver", "mint", "r1", NULL, 104), 0);
	assert_int_equal(store_commit(f->s), 0);
	store_rollback(f->s);          /* harmless with none open */
	/* Bad arguments. */
	assert_int_equal(store_audit_append(f->s, "", "x", NULL, NULL, 1), -EINVAL);
	assert_int_equal(store_audit_append(f->s, "a", "", NULL, NULL, 1), -EINVAL);
	assert_int_equal(store_audit_append(f->s, "a", "this-event-name-is-far-too-long-ok",
	    NULL, NULL, 1), -EINVAL);
	{
		json_t *arr = json_array();

		assert_int_equal(store_audit_append(f->s, "a", "x", NULL, arr, 1), -EINVAL);
		json_decref(arr);
	}
	json_decref(d);

	assert_int_equal(store_audit_verify(f->s, &n, &bad, detail, sizeof(detail)), 0);
	assert_int_equal(n, 4);
	memset(&seen, 0, sizeof(seen));
	assert_int_equal(store_audit_list(f->s, 0, 10, NULL, collect_audit, &seen), 0);
	assert_int_equal(seen.n, 4);
	assert_int_equal(seen.seqs[0], 4);
	assert_int_equal(seen.seqs[3], 1);
	memset(&seen, 0, sizeof(seen));
	assert_int_equal(store_audit_list(f->s, 4, 2, "r1", collect_audit, &seen), 0);
	assert_int_equal(seen.n, 2);
	assert_int_equal(seen.seqs[0], 3);
	assert_int_equal(seen.seqs[1], 2);
	assert_int_equal(store_audit_list(f->s, 0, 0, NULL, collect_audit, &seen), -EINVAL);

	/* The triggers refuse changes through SQL. */
	{
		sqlite3 *db = NULL;

		assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
		assert_int_not_equal(sqlite3_exec(db, "UPDATE audit SET actor = 'x' WHERE seq = 2",
		    NULL, NULL, NULL), SQLITE_OK);
		assert_int_not_equal(sqlite3_exec(db, "DELETE FROM audit WHERE seq = 4",
		    NULL, NULL, NULL), SQLITE_OK);
		sqlite3_close(db);
	}
	assert_int_equal(store_audit_verify(f->s, &n, &bad, detail, sizeof(detail)), 0);
	assert_int_equal(n, 4);
}

static void
tamper(void **state, const char *sql, int64_t want_bad)
{
	struct fixture *f = *state;
	char detail[256] = "";
	int64_t n = -1, bad = -1;
	int i;

	for (i = 0; i < 5; i++) {
		assert_int_equal(store_audit_append(f->s, "alice", "view", "r1", NULL, 100 + i), 0);
	}
	raw_exec(f->path, "DROP TRIGGER audit_no_update; DROP TRIGGER audit_no_delete;");
	raw_exec(f->path, sql);
	assert_int_equal(store_audit_verify(f->s, &n, &bad, detail, sizeof(detail)), -EBADMSG);
	assert_int_equal(bad, want_bad);
	assert_int_equal(n, -1);
	assert_true(strlen(detail) > 0);
}

static void
test_audit_tamper_field(void **state)
{
	tamper(state, "UPDATE audit SET actor = 'mallory' WHERE seq = 3", 3);
}

static void
test_audit_tamper_rehash(void **state)
{
	/* A row rewritten with a fresh hash breaks the next row's prev. */
	tamper(state, "UPDATE audit SET at = 5, hash = '" "1111111111111111111111111111111111111111"
	    "111111111111111111111111' WHERE seq = 2", 2);
}

static void
test_audit_tamper_delete(void **state)
{
	tamper(state, "DELETE FROM audit WHERE seq = 2", 3);
}

static void
test_audit_tamper_detail(void **state)
{
	tamper(state, "UPDATE audit SET detail = '{\"x\":1}' WHERE seq = 5", 5);
}

/* Bytes hidden after a NUL would not change what C code reads, nor the
 * hash recomputed from it: a record holding one is malformed. */
static void
test_audit_tamper_nul(void **state)
{
	tamper(state, "UPDATE audit SET actor = 'alice' || char(0) || 'mallory' WHERE seq = 4", 4);
}

static void
test_audit_tamper_nul_detail(void **state)
{
	tamper(state, "UPDATE audit SET detail = detail || char(0) || 'hidden' WHERE seq = 2", 2);
}

struct racer {
	const char *path;
	int id;
	int ok;            /* takes that succeeded */
	int already;
	int errors;
};

static void *
audit_racer(void *arg)
{
	struct racer *r = arg;
	struct store *s = NULL;
	char actor[16];
	int i;

	if (store_open(r->path, &s) != 0) {
		r->errors++;
		return NULL;
	}
	snprintf(actor, sizeof(actor), "t%d", r->id);
	for (i = 0; i < 50; i++) {
		/* Half inside a transaction of the caller's, half alone. */
		if (i % 2 == 0) {
			if (store_begin(s) != 0 ||
			    store_audit_append(s, actor, "view", "r1", NULL, i) != 0 ||
			    store_commit(s) != 0) {
				store_rollback(s);
				r->errors++;
			}
		} else if (store_audit_append(s, actor, "view", NULL, NULL, i) != 0) {
			r->errors++;
		}
	}
	store_close(s);
	return NULL;
}

static void
test_audit_concurrent_writers(void **state)
{
	struct fixture *f = *state;
	struct racer r[4];
	pthread_t t[4];
	char detail[256];
	int64_t n = 0, bad = 0;
	int i;

	for (i = 0; i < 4; i++) {
		memset(&r[i], 0, sizeof(r[i]));
		r[i].path = f->path;
		r[i].id = i;
		assert_int_equal(pthread_create(&t[i], NULL, audit_racer, &r[i]), 0);
	}
	for (i = 0; i < 4; i++) {
		assert_int_equal(pthread_join(t[i], NULL), 0);
		assert_int_equal(r[i].errors, 0);
	}
	assert_int_equal(store_audit_verify(f->s, &n, &bad, detail, sizeof(detail)), 0);
	assert_int_equal(n, 200);
}

static void *
token_racer(void *arg)
{
	struct racer *r = arg;
	struct store *s = NULL;
	char *tok = NULL;
	int rc;

	if (store_open(r->path, &s) != 0) {
		r->errors++;
		return NULL;
	}
	rc = store_token_take(s, "race", "uid:1", &tok);
	if (rc == 0) {
		r->ok++;
		free(tok);
	} else if (rc == -EALREADY) {
		r->already++;
	} else {
		r->errors++;
	}
	store_close(s);
	return NULL;
}

static void
test_token_take_once_across_handles(void **state)
{
	struct fixture *f = *state;
	struct racer r[8];
	pthread_t t[8];
	int i, ok = 0, already = 0;

	insert_request(f->s, "race", "uid:1", "exec", 100);
	assert_int_equal(store_request_transition(f->s, "race", STORE_PENDING, STORE_MINTING, NULL,
	    101), 0);
	assert_int_equal(store_token_put(f->s, "race", "w1.secret", 102), 0);
	for (i = 0; i < 8; i++) {
		memset(&r[i], 0, sizeof(r[i]));
		r[i].path = f->path;
		assert_int_equal(pthread_create(&t[i], NULL, token_racer, &r[i]), 0);
	}
	for (i = 0; i < 8; i++) {
		assert_int_equal(pthread_join(t[i], NULL), 0);
		assert_int_equal(r[i].errors, 0);
		ok += r[i].ok;
		already += r[i].already;
	}
	assert_int_equal(ok, 1);
	assert_int_equal(already, 7);
}

static int
count_only(const struct store_request *r, void *arg)
{
	(void)r;
	(*(int *)arg)++;
	return 0;
}

/* The pending list is the site's busiest page: 1,000 pending requests,
 * pages of 50 through LIMIT/OFFSET and an index, must stay cheap. */
static void
test_pending_list_is_fast(void **state)
{
	struct fixture *f = *state;
	struct store_filter flt;
	struct timespec a, b;
	char id[32];
	double ms;
	int i, n;

	assert_int_equal(store_begin(f->s), 0);
	for (i = 0; i < 1000; i++) {
		snprintf(id, sizeof(id), "req-%04d", i);
		insert_request(f->s, id, "uid:1", "exec", 1000 + i);
	}
	for (i = 0; i < 1000; i++) {
		snprintf(id, sizeof(id), "done-%04d", i);
		insert_request(f->s, id, "uid:1", "exec", 1000 + i);
		assert_int_equal(store_request_transition(f->s, id, STORE_PENDING, STORE_DENIED, "x",
		    3000), 0);
	}
	assert_int_equal(store_commit(f->s), 0);
	memset(&flt, 0, sizeof(flt));
	flt.state = STORE_PENDING;
	flt.limit = 50;
	clock_gettime(CLOCK_MONOTONIC, &a);
	for (i = 0; i < 200; i++) {
		flt.offset = (i % 20) * 50;
		n = 0;
		assert_int_equal(store_request_list(f->s, &flt, count_only, &n), 0);
		assert_int_equal(n, 50);
	}
	clock_gettime(CLOCK_MONOTONIC, &b);
	ms = (double)(b.tv_sec - a.tv_sec) * 1e3 + (double)(b.tv_nsec - a.tv_nsec) / 1e6;
	/* 200 pages; generous for slow machines and sanitizers (about 1 ms a
	 * page here would already be a regression). */
	if (getenv("STORE_BENCH") != NULL) {
		print_message("200 pages of 50: %.1f ms\n", ms);
	}
	if (ms > 2000.0) {
		fail_msg("200 pages of 50 pending requests took %.0f ms", ms);
	}
}

/* The fcntl locks this process holds, from /proc/locks. */
static int
own_locks(void)
{
	char line[512], pid[32];
	FILE *f;
	int n = 0;

	snprintf(pid, sizeof(pid), " %d ", (int)getpid());
	f = fopen("/proc/locks", "re");
	assert_non_null(f);
	while (fgets(line, sizeof(line), f) != NULL) {
		if (strstr(line, pid) != NULL) {
			n++;
		}
	}
	fclose(f);
	return n;
}

/* Opening a second handle must not drop the first one's locks: closing any
 * descriptor of a file releases all of the process's fcntl locks on it,
 * and another process would then take the database for unused. */
static void
test_open_keeps_other_handles_locks(void **state)
{
	struct fixture *f = *state;
	struct store *s2 = NULL;
	int held;

	assert_int_equal(store_begin(f->s), 0);
	held = own_locks();
	assert_true(held > 0);
	assert_int_equal(store_open(f->path, &s2), 0);
	assert_true(own_locks() >= held);
	store_close(s2);
	assert_true(own_locks() >= held);
	assert_int_equal(store_commit(f->s), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_open_modes_and_pragmas, setup, teardown),
		cmocka_unit_test_setup_teardown(test_open_keeps_other_handles_locks, setup, teardown),
		cmocka_unit_test_setup_teardown(test_users, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sessions_purge_delete, setup, teardown),
		cmocka_unit_test_setup_teardown(test_login_failures, setup, teardown),
		cmocka_unit_test_setup_teardown(test_login_failed_undo, setup, teardown),
		cmocka_unit_test_setup_teardown(test_requests, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tokens, setup, teardown),
		cmocka_unit_test_setup_teardown(test_token_purge, setup, teardown),
		cmocka_unit_test_setup_teardown(test_decisions, setup, teardown),
		cmocka_unit_test_setup_teardown(test_credentials_challenges, setup, teardown),
		cmocka_unit_test_setup_teardown(test_notify_queue, setup, teardown),
		cmocka_unit_test_setup_teardown(test_audit_chain, setup, teardown),
		cmocka_unit_test_setup_teardown(test_audit_tamper_field, setup, teardown),
		cmocka_unit_test_setup_teardown(test_audit_tamper_rehash, setup, teardown),
		cmocka_unit_test_setup_teardown(test_audit_tamper_delete, setup, teardown),
		cmocka_unit_test_setup_teardown(test_audit_tamper_nul, setup, teardown),
		cmocka_unit_test_setup_teardown(test_audit_tamper_nul_detail, setup, teardown),
		cmocka_unit_test_setup_teardown(test_audit_tamper_detail, setup, teardown),
		cmocka_unit_test_setup_teardown(test_audit_concurrent_writers, setup, teardown),
		cmocka_unit_test_setup_teardown(test_token_take_once_across_handles, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pending_list_is_fast, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
