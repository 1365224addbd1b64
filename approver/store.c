#include "store.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cjson.h"
#include "parse.h"

#define STORE_SCHEMA_VERSION 1
#define STORE_LIST_MAX       1000
#define STORE_AUDIT_LIST_MAX 100000

/* Every statement the store runs, prepared once per handle on first use. */
enum q {
	Q_BEGIN,
	Q_COMMIT,
	Q_ROLLBACK,
	Q_USER_ADD,
	Q_USER_GET,
	Q_USER_GET_ID,
	Q_USER_DISABLE,
	Q_USER_KILL_SESSIONS,
	Q_USER_LIST,
	Q_FAIL_BY_NAME,
	Q_FAIL_BY_ADDR,
	Q_FAIL_ADD,
	Q_FAIL_FORGET,
	Q_FAIL_UNDO,
	Q_FAIL_RESTAMP,
	Q_FAIL_PURGE,
	Q_FAIL_LAST_NAME,
	Q_FAIL_LAST_ADDR,
	Q_SESSION_ADD,
	Q_SESSION_GET,
	Q_SESSION_TOUCH,
	Q_SESSION_DELETE,
	Q_SESSION_PURGE,
	Q_REQ_INSERT,
	Q_REQ_GET,
	Q_REQ_LIST_STATE,
	Q_REQ_LIST_DECIDED,
	Q_REQ_LIST_ANY,
	Q_REQ_COUNT_STATE,
	Q_REQ_COUNT_DECIDED,
	Q_REQ_COUNT_ANY,
	Q_REQ_TRANSITION,
	Q_REQ_EXISTS,
	Q_REQ_DUE,
	Q_TOKEN_PUT,
	Q_TOKEN_PURGE,
	Q_TOKEN_PEEK,
	Q_TOKEN_TAKE,
	Q_DEC_ADD,
	Q_DEC_LIST,
	Q_CRED_ADD,
	Q_CRED_LIST,
	Q_CRED_GET,
	Q_CHAL_PUT,
	Q_CHAL_TAKE,
	Q_NOTIFY_ADD,
	Q_NOTIFY_NEXT,
	Q_NOTIFY_DONE,
	Q_NOTIFY_RETRY,
	Q_AUDIT_LAST,
	Q_AUDIT_INSERT,
	Q_AUDIT_LIST,
	Q_AUDIT_ALL,
	Q__MAX
};

#define REQ_COLS \
	"r.id, r.aud, r.vm, r.launch_digest, r.op, r.args_sha256, r.ttl, r.caller, r.owner," \
	" r.digest, r.args_json, r.reason, r.created, r.expires, r.decided, r.state," \
	" r.state_reason, r.token IS NOT NULL AND r.picked_up = 0, r.picked_up," \
	" (SELECT count(*) FROM decisions d WHERE d.request_id = r.id AND d.approve = 1)," \
	" (SELECT count(*) FROM decisions d WHERE d.request_id = r.id AND d.approve = 0)"

#define REQ_FILTER \
	" AND (?2 IS NULL OR r.op = ?2) AND (?3 IS NULL OR r.vm = ?3)" \
	" AND (?4 IS NULL OR r.caller = ?4)" \
	" ORDER BY r.created DESC, r.id DESC LIMIT ?5 OFFSET ?6"

static const char *const sql[Q__MAX] = {
	[Q_BEGIN] = "BEGIN IMMEDIATE",
	[Q_COMMIT] = "COMMIT",
	[Q_ROLLBACK] = "ROLLBACK",
	[Q_USER_ADD] = "INSERT INTO users(name, role, disabled, pwhash, created)"
	    " VALUES (?1, ?2, 0, ?3, ?4)",
	[Q_USER_GET] = "SELECT id, name, role, disabled, pwhash, created FROM users WHERE name = ?1",
	[Q_USER_GET_ID] = "SELECT id, name, role, disabled, pwhash, created FROM users WHERE id = ?1",
	[Q_USER_DISABLE] = "UPDATE users SET disabled = ?2 WHERE name = ?1 RETURNING id",
	[Q_USER_KILL_SESSIONS] = "DELETE FROM sessions WHERE user_id = ?1",
	[Q_USER_LIST] = "SELECT id, name, role, disabled, pwhash, created FROM users ORDER BY name",
	[Q_FAIL_BY_NAME] = "SELECT count(*) FROM login_failures WHERE name = ?1 AND at >= ?2",
	[Q_FAIL_BY_ADDR] = "SELECT count(*) FROM login_failures WHERE addr = ?1 AND at >= ?2",
	[Q_FAIL_ADD] = "INSERT INTO login_failures(name, addr, at) VALUES (?1, ?2, ?3)",
	[Q_FAIL_FORGET] = "DELETE FROM login_failures WHERE name = ?1 AND addr = ?2",
	[Q_FAIL_UNDO] = "DELETE FROM login_failures WHERE id = (SELECT max(id) FROM login_failures"
	    " WHERE name = ?1 AND addr = ?2 AND at = ?3)",
	[Q_FAIL_RESTAMP] = "UPDATE login_failures SET at = ?4 WHERE id = (SELECT max(id)"
	    " FROM login_failures WHERE name = ?1 AND addr = ?2 AND at = ?3)",
	[Q_FAIL_PURGE] = "DELETE FROM login_failures WHERE at < ?1",
	[Q_FAIL_LAST_NAME] = "SELECT coalesce(max(at), 0) FROM login_failures"
	    " WHERE name = ?1 AND at >= ?2",
	[Q_FAIL_LAST_ADDR] = "SELECT coalesce(max(at), 0) FROM login_failures"
	    " WHERE addr = ?1 AND at >= ?2",
	[Q_SESSION_ADD] = "INSERT INTO sessions(sid_hash, user_id, csrf_key, created, last_seen)"
	    " VALUES (?1, ?2, ?3, ?4, ?4)",
	[Q_SESSION_GET] = "SELECT s.user_id, u.name, u.role, s.csrf_key, s.created, s.last_seen"
	    " FROM sessions s JOIN users u ON u.id = s.user_id"
	    " WHERE s.sid_hash = ?1 AND u.disabled = 0",
	[Q_SESSION_TOUCH] = "UPDATE sessions SET last_seen = max(last_seen, ?2) WHERE sid_hash = ?1",
	[Q_SESSION_DELETE] = "DELETE FROM sessions WHERE sid_hash = ?1",
	[Q_SESSION_PURGE] = "DELETE FROM sessions WHERE last_seen < ?1 OR created < ?2",
	[Q_REQ_INSERT] = "INSERT INTO requests(id, aud, vm, launch_digest, op, args_sha256, ttl,"
	    " caller, owner, digest, args_json, reason, created, expires, decided, state,"
	    " state_reason, token, picked_up) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10,"
	    " ?11, ?12, ?13, ?14, ?15, ?16, ?17, NULL, 0)",
	[Q_REQ_GET] = "SELECT " REQ_COLS " FROM requests r WHERE r.id = ?1",
	[Q_REQ_LIST_STATE] = "SELECT " REQ_COLS " FROM requests r WHERE r.state = ?1" REQ_FILTER,
	[Q_REQ_LIST_DECIDED] = "SELECT " REQ_COLS " FROM requests r INDEXED BY requests_created"
	    " WHERE r.state <> ?1" REQ_FILTER,
	[Q_REQ_LIST_ANY] = "SELECT " REQ_COLS " FROM requests r INDEXED BY requests_created"
	    " WHERE ?1 = ?1" REQ_FILTER,
	[Q_REQ_COUNT_STATE] = "SELECT count(*) FROM requests WHERE state = ?1",
	[Q_REQ_COUNT_DECIDED] = "SELECT count(*) FROM requests WHERE state <> ?1",
	[Q_REQ_COUNT_ANY] = "SELECT count(*) FROM requests WHERE ?1 = ?1",
	[Q_REQ_TRANSITION] = "UPDATE requests SET state = ?3,"
	    " state_reason = coalesce(?4, state_reason),"
	    " decided = CASE WHEN ?3 IN (0, 1) THEN decided ELSE ?5 END"
	    " WHERE id = ?1 AND state = ?2",
	[Q_REQ_EXISTS] = "SELECT 1 FROM requests WHERE id = ?1",
	[Q_REQ_DUE] = "SELECT id FROM requests WHERE state = 0 AND expires <= ?1"
	    " ORDER BY expires, id",
	[Q_TOKEN_PUT] = "UPDATE requests SET state = 2, token = ?2, decided = ?3"
	    " WHERE id = ?1 AND state = 1",
	[Q_TOKEN_PURGE] = "UPDATE requests SET token = NULL, state = 4, state_reason ="
	    " 'approved, but its token expired before it was picked up'"
	    " WHERE state = 2 AND picked_up = 0 AND token IS NOT NULL AND decided + ttl < ?1",
	[Q_TOKEN_PEEK] = "SELECT state, picked_up, token FROM requests WHERE id = ?1 AND caller = ?2",
	[Q_TOKEN_TAKE] = "UPDATE requests SET token = NULL, picked_up = 1"
	    " WHERE id = ?1 AND caller = ?2 AND state = 2 AND picked_up = 0 AND token IS NOT NULL",
	[Q_DEC_ADD] = "INSERT INTO decisions(request_id, user_id, approve, reason, approval_json, at)"
	    " VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
	[Q_DEC_LIST] = "SELECT d.user_id, u.name, d.approve, d.reason, d.approval_json, d.at"
	    " FROM decisions d JOIN users u ON u.id = d.user_id WHERE d.request_id = ?1"
	    " ORDER BY d.at, d.id",
	[Q_CRED_ADD] = "INSERT INTO credentials(user_id, cred_id, alg, public_key, sign_count, label,"
	    " created) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
	[Q_CRED_LIST] = "SELECT c.user_id, u.name, c.cred_id, c.alg, c.public_key, c.sign_count,"
	    " c.label, c.created FROM credentials c JOIN users u ON u.id = c.user_id"
	    " WHERE ?1 < 0 OR c.user_id = ?1 ORDER BY c.created, c.id",
	[Q_CRED_GET] = "SELECT c.user_id, u.name, c.cred_id, c.alg, c.public_key, c.sign_count,"
	    " c.label, c.created FROM credentials c JOIN users u ON u.id = c.user_id"
	    " WHERE c.cred_id = ?1",
	[Q_CHAL_PUT] = "INSERT OR REPLACE INTO challenges(sid_hash, challenge, expires)"
	    " VALUES (?1, ?2, ?3)",
	[Q_CHAL_TAKE] = "DELETE FROM challenges WHERE sid_hash = ?1 RETURNING challenge, expires",
	[Q_NOTIFY_ADD] = "INSERT OR IGNORE INTO notify_queue(request_id, next_at, attempts)"
	    " VALUES (?1, ?2, 0)",
	[Q_NOTIFY_NEXT] = "SELECT request_id, attempts FROM notify_queue WHERE next_at <= ?1"
	    " ORDER BY next_at, request_id LIMIT 1",
	[Q_NOTIFY_DONE] = "DELETE FROM notify_queue WHERE request_id = ?1",
	[Q_NOTIFY_RETRY] = "UPDATE notify_queue SET attempts = attempts + 1, next_at = ?2"
	    " WHERE request_id = ?1",
	[Q_AUDIT_LAST] = "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1",
	[Q_AUDIT_INSERT] = "INSERT INTO audit(seq, at, actor, event, request, detail, prev, hash)"
	    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
	[Q_AUDIT_LIST] = "SELECT seq, at, actor, event, request, detail, hash FROM audit"
	    " WHERE (?1 <= 0 OR seq < ?1) AND (?3 IS NULL OR request = ?3)"
	    " ORDER BY seq DESC LIMIT ?2",
	[Q_AUDIT_ALL] = "SELECT seq, at, actor, event, request, detail, prev, hash FROM audit"
	    " ORDER BY seq",
};

static const char schema[] =
    "CREATE TABLE users ("
    " id INTEGER PRIMARY KEY,"
    " name TEXT NOT NULL UNIQUE,"
    " role INTEGER NOT NULL CHECK (role IN (1, 2)),"
    " disabled INTEGER NOT NULL DEFAULT 0,"
    " pwhash TEXT NOT NULL,"
    " created INTEGER NOT NULL);"
    "CREATE TABLE login_failures ("
    " id INTEGER PRIMARY KEY,"
    " name TEXT NOT NULL,"
    " addr TEXT NOT NULL,"
    " at INTEGER NOT NULL);"
    "CREATE INDEX login_failures_name ON login_failures(name, at);"
    "CREATE INDEX login_failures_addr ON login_failures(addr, at);"
    "CREATE INDEX login_failures_at ON login_failures(at);"
    "CREATE TABLE sessions ("
    " sid_hash BLOB PRIMARY KEY NOT NULL,"
    " user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,"
    " csrf_key BLOB NOT NULL,"
    " created INTEGER NOT NULL,"
    " last_seen INTEGER NOT NULL) WITHOUT ROWID;"
    "CREATE INDEX sessions_user ON sessions(user_id);"
    "CREATE TABLE requests ("
    " id TEXT PRIMARY KEY NOT NULL,"
    " aud TEXT NOT NULL,"
    " vm TEXT NOT NULL,"
    " launch_digest TEXT NOT NULL,"
    " op TEXT NOT NULL,"
    " args_sha256 TEXT NOT NULL,"
    " ttl INTEGER NOT NULL,"
    " caller TEXT NOT NULL,"
    " owner TEXT NOT NULL,"
    " digest TEXT NOT NULL,"
    " args_json TEXT NOT NULL,"
    " reason TEXT NOT NULL,"
    " created INTEGER NOT NULL,"
    " expires INTEGER NOT NULL,"
    " decided INTEGER NOT NULL,"
    " state INTEGER NOT NULL CHECK (state BETWEEN 0 AND 6),"
    " state_reason TEXT NOT NULL,"
    " token TEXT,"
    " picked_up INTEGER NOT NULL DEFAULT 0);"
    "CREATE INDEX requests_state_created ON requests(state, created DESC, id DESC);"
    "CREATE INDEX requests_created ON requests(created DESC, id DESC);"
    "CREATE INDEX requests_state_expires ON requests(state, expires);"
    "CREATE TABLE decisions ("
    " id INTEGER PRIMARY KEY,"
    " request_id TEXT NOT NULL REFERENCES requests(id),"
    " user_id INTEGER NOT NULL REFERENCES users(id),"
    " approve INTEGER NOT NULL,"
    " reason TEXT NOT NULL,"
    " approval_json TEXT,"
    " at INTEGER NOT NULL,"
    " UNIQUE (request_id, user_id));"
    "CREATE INDEX decisions_request ON decisions(request_id, approve);"
    "CREATE TABLE credentials ("
    " id INTEGER PRIMARY KEY,"
    " user_id INTEGER NOT NULL REFERENCES users(id),"
    " cred_id BLOB NOT NULL UNIQUE,"
    " alg INTEGER NOT NULL,"
    " public_key BLOB NOT NULL,"
    " sign_count INTEGER NOT NULL,"
    " label TEXT NOT NULL,"
    " created INTEGER NOT NULL);"
    "CREATE INDEX credentials_user ON credentials(user_id);"
    "CREATE TABLE challenges ("
    " sid_hash BLOB PRIMARY KEY NOT NULL,"
    " challenge BLOB NOT NULL,"
    " expires INTEGER NOT NULL) WITHOUT ROWID;"
    "CREATE TABLE notify_queue ("
    " request_id TEXT PRIMARY KEY NOT NULL REFERENCES requests(id),"
    " next_at INTEGER NOT NULL,"
    " attempts INTEGER NOT NULL) WITHOUT ROWID;"
    "CREATE INDEX notify_queue_next ON notify_queue(next_at);"
    "CREATE TABLE audit ("
    " seq INTEGER PRIMARY KEY,"
    " at INTEGER NOT NULL,"
    " actor TEXT NOT NULL,"
    " event TEXT NOT NULL,"
    " request TEXT NOT NULL,"
    " detail TEXT NOT NULL,"
    " prev TEXT NOT NULL,"
    " hash TEXT NOT NULL);"
    "CREATE INDEX audit_request ON audit(request, seq);"
    "CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit"
    " BEGIN SELECT RAISE(ABORT, 'audit records are append-only'); END;"
    "CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit"
    " BEGIN SELECT RAISE(ABORT, 'audit records are append-only'); END;"
    "PRAGMA user_version = 1;";

struct store {
	sqlite3 *db;
	sqlite3_stmt *q[Q__MAX];
};

static int
map_sqlite(int rc)
{
	switch (rc) {
	case SQLITE_OK:
	case SQLITE_DONE:
	case SQLITE_ROW: {
		return 0;
	}
	case SQLITE_CONSTRAINT_UNIQUE:
	case SQLITE_CONSTRAINT_PRIMARYKEY: {
		return -EEXIST;
	}
	case SQLITE_CONSTRAINT_FOREIGNKEY: {
		return -ENOENT;
	}
	case SQLITE_CONSTRAINT_TRIGGER: {
		return -EPERM;
	}
	default: {
		break;
	}
	}
	switch (rc & 0xff) {
	case SQLITE_BUSY:
	case SQLITE_LOCKED: {
		return -EBUSY;
	}
	case SQLITE_NOMEM: {
		return -ENOMEM;
	}
	case SQLITE_CONSTRAINT: {
		return -EINVAL;
	}
	default: {
		return -EIO;
	}
	}
}

/* A reset statement for q, prepared on first use. */
static sqlite3_stmt *
stmt(struct store *s, enum q q)
{
	if (s->q[q] == NULL) {
		if (sqlite3_prepare_v3(s->db, sql[q], -1, SQLITE_PREPARE_PERSISTENT, &s->q[q],
		    NULL) != SQLITE_OK) {
			s->q[q] = NULL;
			return NULL;
		}
	}
	return s->q[q];
}

static void
done(sqlite3_stmt *st)
{
	if (st != NULL) {
		(void)sqlite3_reset(st);
		(void)sqlite3_clear_bindings(st);
	}
}

static int
bind_text(sqlite3_stmt *st, int i, const char *v)
{
	if (v == NULL) {
		return sqlite3_bind_null(st, i);
	}
	return sqlite3_bind_text(st, i, v, -1, SQLITE_STATIC);
}

/* Why the last call on the connection failed, as a negative errno. */
static int
db_error(struct store *s)
{
	return map_sqlite(sqlite3_extended_errcode(s->db));
}

/* Run a statement that returns no row; *ret_changes gets the rows it
 * changed. */
static int
run(struct store *s, sqlite3_stmt *st, int64_t *ret_changes)
{
	int rc, r;

	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		/* RETURNING: drain it so the change completes. */
		while (rc == SQLITE_ROW) {
			rc = sqlite3_step(st);
		}
	}
	r = rc == SQLITE_DONE ? 0 : db_error(s);
	if (r == 0 && ret_changes != NULL) {
		*ret_changes = sqlite3_changes64(s->db);
	}
	done(st);
	return r;
}

static int
step_error(struct store *s, int rc)
{
	if (rc == SQLITE_DONE) {
		return -ENOENT;
	}
	return db_error(s);
}

/* Copy a text column into a fixed buffer; a longer value than the buffer
 * holds is not ours (-EIO), nor is one with a NUL inside: the store never
 * writes one, and bytes after it would be invisible to every C reader
 * (and to the audit chain's hash) while still in the file. */
static int
col_copy(sqlite3_stmt *st, int i, char *buf, size_t size)
{
	const unsigned char *t = sqlite3_column_text(st, i);
	int n = sqlite3_column_bytes(st, i);

	if (t == NULL) {
		buf[0] = '\0';
		return 0;
	}
	if (n < 0 || (size_t)n >= size || memchr(t, '\0', (size_t)n) != NULL) {
		return -EIO;
	}
	memcpy(buf, t, (size_t)n);
	buf[n] = '\0';
	return 0;
}

static int
col_dup(sqlite3_stmt *st, int i, char **ret)
{
	const unsigned char *t = sqlite3_column_text(st, i);
	int n = sqlite3_column_bytes(st, i);
	char *p;

	if (t == NULL) {
		if (sqlite3_column_type(st, i) == SQLITE_NULL) {
			*ret = NULL;
			return 0;
		}
		return -ENOMEM;
	}
	if (n < 0 || memchr(t, '\0', (size_t)n) != NULL) {
		return -EIO;
	}
	p = malloc((size_t)n + 1);
	if (p == NULL) {
		return -ENOMEM;
	}
	memcpy(p, t, (size_t)n);
	p[n] = '\0';
	*ret = p;
	return 0;
}

static int
col_blob(sqlite3_stmt *st, int i, uint8_t *buf, size_t size, size_t *ret_len)
{
	const void *b = sqlite3_column_blob(st, i);
	int n = sqlite3_column_bytes(st, i);

	if (n < 0 || (size_t)n > size || (n > 0 && b == NULL)) {
		return -EIO;
	}
	if (ret_len == NULL && (size_t)n != size) {
		return -EIO;
	}
	if (n > 0) {
		memcpy(buf, b, (size_t)n);
	}
	if (ret_len != NULL) {
		*ret_len = (size_t)n;
	}
	return 0;
}

/* A file of the store that exists already (restored from a backup,
 * copied, created by hand) is brought back to 0600: it holds password
 * hashes and tokens not yet picked up. */
static int
tighten_file(int fd)
{
	struct stat sb;

	if (fstat(fd, &sb) != 0) {
		return -errno;
	}
	if (!S_ISREG(sb.st_mode)) {
		return -EINVAL;
	}
	if ((sb.st_mode & 07777) != 0600 && fchmod(fd, 0600) != 0) {
		return -errno;
	}
	return 0;
}

/* A file that exists is checked by path, never opened: closing any
 * descriptor of a file drops every POSIX lock this process holds on it,
 * including the locks of the other threads' SQLite connections (fcntl
 * locks are per process), and SQLite would then let another process
 * recover and delete the WAL under them. */
static int
tighten_path(const char *path, bool must_exist)
{
	struct stat sb;

	if (lstat(path, &sb) != 0) {
		return errno == ENOENT && !must_exist ? 0 : -errno;
	}
	if (S_ISLNK(sb.st_mode)) {
		return -ELOOP;          /* what O_NOFOLLOW would have said */
	}
	if (!S_ISREG(sb.st_mode)) {
		return -EINVAL;
	}
	if ((sb.st_mode & 07777) != 0600 && chmod(path, 0600) != 0) {
		return -errno;
	}
	return 0;
}

/* Create the file ourselves: SQLite would follow a symlink and use the
 * umask's mode. New -wal and -shm files copy this file's mode; ones left
 * from before are checked like it. Only a file that does not exist yet is
 * opened (O_EXCL), before any connection to it exists. */
static int
create_file(const char *path)
{
	static const char *const sfx[] = { "-wal", "-shm" };
	char side[4096];
	size_t i;
	int fd, n, r;

	fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY, 0600);
	if (fd >= 0) {
		r = tighten_file(fd);
		(void)close(fd);
	} else if (errno == EEXIST) {
		r = tighten_path(path, true);
	} else {
		return -errno;
	}
	for (i = 0; r == 0 && i < sizeof(sfx) / sizeof(sfx[0]); i++) {
		n = snprintf(side, sizeof(side), "%s%s", path, sfx[i]);
		if (n < 0 || (size_t)n >= sizeof(side)) {
			return -ENAMETOOLONG;
		}
		r = tighten_path(side, false);
	}
	return r;
}

static int
exec_sql(sqlite3 *db, const char *text)
{
	int rc = sqlite3_exec(db, text, NULL, NULL, NULL);

	return rc == SQLITE_OK ? 0 : map_sqlite(sqlite3_extended_errcode(db));
}

static int
pragma_int(sqlite3 *db, const char *text, int64_t *ret)
{
	sqlite3_stmt *st = NULL;
	int rc, r;

	rc = sqlite3_prepare_v2(db, text, -1, &st, NULL);
	if (rc != SQLITE_OK) {
		r = map_sqlite(rc);
		goto out;
	}
	rc = sqlite3_step(st);
	if (rc != SQLITE_ROW) {
		r = rc == SQLITE_DONE ? -EIO : map_sqlite(sqlite3_extended_errcode(db));
		goto out;
	}
	*ret = sqlite3_column_int64(st, 0);
	r = 0;
out:
	(void)sqlite3_finalize(st);
	return r;
}

static int
set_wal(sqlite3 *db)
{
	sqlite3_stmt *st = NULL;
	const unsigned char *mode;
	int rc, r;

	/* journal_mode answers with the mode in force; anything but "wal"
	 * means the request was not honoured. */
	rc = sqlite3_prepare_v2(db, "PRAGMA journal_mode=WAL", -1, &st, NULL);
	if (rc != SQLITE_OK) {
		r = map_sqlite(rc);
		goto out;
	}
	rc = sqlite3_step(st);
	if (rc != SQLITE_ROW) {
		r = rc == SQLITE_DONE ? -EIO : map_sqlite(sqlite3_extended_errcode(db));
		goto out;
	}
	mode = sqlite3_column_text(st, 0);
	r = mode != NULL && strcmp((const char *)mode, "wal") == 0 ? 0 : -EIO;
out:
	(void)sqlite3_finalize(st);
	return r;
}

static int
ensure_schema(sqlite3 *db)
{
	int64_t v = 0;
	int r;

	r = pragma_int(db, "PRAGMA user_version", &v);
	if (r != 0) {
		return r;
	}
	if (v == STORE_SCHEMA_VERSION) {
		return 0;
	}
	if (v != 0) {
		return -EIO;          /* another program's file, or a newer schema */
	}
	r = exec_sql(db, "BEGIN IMMEDIATE");
	if (r != 0) {
		return r;
	}
	/* Another handle may have created it while we waited for the lock. */
	r = pragma_int(db, "PRAGMA user_version", &v);
	if (r == 0 && v == 0) {
		r = exec_sql(db, schema);
	} else if (r == 0 && v != STORE_SCHEMA_VERSION) {
		r = -EIO;
	}
	if (r == 0) {
		r = exec_sql(db, "COMMIT");
	}
	if (r != 0) {
		(void)sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
	}
	return r;
}

int
store_open(const char *path, struct store **ret)
{
	struct store *s = NULL;
	int64_t fk = 0;
	int r, rc;

	if (path == NULL || path[0] == '\0' || ret == NULL) {
		return -EINVAL;
	}
	r = create_file(path);
	if (r != 0) {
		goto out;
	}
	s = calloc(1, sizeof(*s));
	if (s == NULL) {
		r = -ENOMEM;
		goto out;
	}
	/* One handle per thread: no mutex inside SQLite needed. */
	rc = sqlite3_open_v2(path, &s->db,
	    SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_NOFOLLOW, NULL);
	if (rc != SQLITE_OK) {
		r = rc == SQLITE_CANTOPEN ? -EACCES : map_sqlite(rc);
		goto out;
	}
	(void)sqlite3_extended_result_codes(s->db, 1);
	(void)sqlite3_db_config(s->db, SQLITE_DBCONFIG_DEFENSIVE, 1, NULL);
	(void)sqlite3_db_config(s->db, SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0, NULL);
	rc = sqlite3_busy_timeout(s->db, STORE_BUSY_MS);
	if (rc != SQLITE_OK) {
		r = map_sqlite(rc);
		goto out;
	}
	r = set_wal(s->db);
	if (r == 0) {
		r = exec_sql(s->db, "PRAGMA synchronous=FULL");
	}
	if (r == 0) {
		r = exec_sql(s->db, "PRAGMA foreign_keys=ON");
	}
	if (r == 0) {
		/* Erased tokens and sessions are overwritten, not left in free pages. */
		r = exec_sql(s->db, "PRAGMA secure_delete=ON");
	}
	if (r == 0) {
		r = pragma_int(s->db, "PRAGMA foreign_keys", &fk);
	}
	if (r == 0 && fk != 1) {
		r = -EIO;
	}
	if (r == 0) {
		r = ensure_schema(s->db);
	}
	if (r != 0) {
		goto out;
	}
	*ret = s;
	s = NULL;
	r = 0;
out:
	store_close(s);
	return r;
}

void
store_close(struct store *s)
{
	size_t i;

	if (s == NULL) {
		return;
	}
	for (i = 0; i < Q__MAX; i++) {
		(void)sqlite3_finalize(s->q[i]);
	}
	(void)sqlite3_close(s->db);
	free(s);
}

static int
simple(struct store *s, enum q q)
{
	sqlite3_stmt *st = stmt(s, q);

	if (st == NULL) {
		return -EIO;
	}
	return run(s, st, NULL);
}

int
store_begin(struct store *s)
{
	if (s == NULL) {
		return -EINVAL;
	}
	return simple(s, Q_BEGIN);
}

int
store_commit(struct store *s)
{
	int r;

	if (s == NULL) {
		return -EINVAL;
	}
	r = simple(s, Q_COMMIT);
	if (r != 0) {
		store_rollback(s);
	}
	return r;
}

void
store_rollback(struct store *s)
{
	if (s == NULL || sqlite3_get_autocommit(s->db)) {
		return;
	}
	(void)simple(s, Q_ROLLBACK);
}

/* For the few changes of more than one statement: a transaction of our
 * own unless the caller has one open. */
static int
tx_enter(struct store *s, bool *ret_own)
{
	int r;

	if (!sqlite3_get_autocommit(s->db)) {
		*ret_own = false;
		return 0;
	}
	r = store_begin(s);
	if (r == 0) {
		*ret_own = true;
	}
	return r;
}

static int
tx_leave(struct store *s, bool own, int r)
{
	if (!own) {
		return r;
	}
	if (r == 0) {
		return store_commit(s);
	}
	store_rollback(s);
	return r;
}

/* --- people ------------------------------------------------------------ */

const char *
store_role_name(enum store_role r)
{
	switch (r) {
	case STORE_ROLE_APPROVER: {
		return "approver";
	}
	case STORE_ROLE_ADMIN: {
		return "admin";
	}
	default: {
		return "unknown";
	}
	}
}

int
store_role_parse(const char *s, enum store_role *ret)
{
	if (s == NULL || ret == NULL) {
		return -EINVAL;
	}
	if (strcmp(s, "approver") == 0) {
		*ret = STORE_ROLE_APPROVER;
	} else if (strcmp(s, "admin") == 0) {
		*ret = STORE_ROLE_ADMIN;
	} else {
		return -EINVAL;
	}
	return 0;
}

static bool
role_ok(int64_t r)
{
	return r == STORE_ROLE_APPROVER || r == STORE_ROLE_ADMIN;
}

int
store_user_add(struct store *s, const char *name, enum store_role role, const char *pwhash,
    int64_t now, int64_t *ret_id)
{
	sqlite3_stmt *st;
	int r;

	if (s == NULL || parse_ident(name, STORE_NAME_MAX) != 0 || !role_ok(role) ||
	    pwhash == NULL || pwhash[0] == '\0' || strlen(pwhash) > STORE_PWHASH_MAX) {
		return -EINVAL;
	}
	st = stmt(s, Q_USER_ADD);
	if (st == NULL) {
		return -EIO;
	}
	(void)bind_text(st, 1, name);
	(void)sqlite3_bind_int64(st, 2, role);
	(void)bind_text(st, 3, pwhash);
	(void)sqlite3_bind_int64(st, 4, now);
	r = run(s, st, NULL);
	if (r == 0 && ret_id != NULL) {
		*ret_id = sqlite3_last_insert_rowid(s->db);
	}
	return r;
}

static int
user_row(sqlite3_stmt *st, struct store_user *u)
{
	int64_t role = sqlite3_column_int64(st, 2);
	int r;

	memset(u, 0, sizeof(*u));
	if (!role_ok(role)) {
		return -EIO;
	}
	u->id = sqlite3_column_int64(st, 0);
	u->role = (enum store_role)role;
	u->disabled = sqlite3_column_int64(st, 3) != 0;
	u->created = sqlite3_column_int64(st, 5);
	r = col_copy(st, 1, u->name, sizeof(u->name));
	if (r == 0) {
		r = col_copy(st, 4, u->pwhash, sizeof(u->pwhash));
	}
	return r;
}

static int
user_get(struct store *s, sqlite3_stmt *st, struct store_user *ret)
{
	struct store_user u;
	int rc, r;

	rc = sqlite3_step(st);
	if (rc != SQLITE_ROW) {
		r = step_error(s, rc);
		goto out;
	}
	r = user_row(st, &u);
	if (r == 0) {
		*ret = u;
	}
	explicit_bzero(&u, sizeof(u));
out:
	done(st);
	return r;
}

int
store_user_get(struct store *s, const char *name, struct store_user *ret)
{
	sqlite3_stmt *st;

	if (s == NULL || name == NULL || ret == NULL) {
		return -EINVAL;
	}
	st = stmt(s, Q_USER_GET);
	if (st == NULL) {
		return -EIO;
	}
	(void)bind_text(st, 1, name);
	return user_get(s, st, ret);
}

int
store_user_get_id(struct store *s, int64_t id, struct store_user *ret)
{
	sqlite3_stmt *st;

	if (s == NULL || ret == NULL) {
		return -EINVAL;
	}
	st = stmt(s, Q_USER_GET_ID);
	if (st == NULL) {
		return -EIO;
	}
	(void)sqlite3_bind_int64(st, 1, id);
	return user_get(s, st, ret);
}

int
store_user_set_disabled(struct store *s, const char *name, bool disabled)
{
	sqlite3_stmt *st;
	int64_t id = 0;
	bool own = false;
	int rc, r;

	if (s == NULL || name == NULL) {
		return -EINVAL;
	}
	r = tx_enter(s, &own);
	if (r != 0) {
		return r;
	}
	st = stmt(s, Q_USER_DISABLE);
	if (st == NULL) {
		r = -EIO;
		goto out;
	}
	(void)bind_text(st, 1, name);
	(void)sqlite3_bind_int64(st, 2, disabled ? 1 : 0);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		id = sqlite3_column_int64(st, 0);
		rc = sqlite3_step(st);
	} else if (rc == SQLITE_DONE) {
		done(st);
		r = -ENOENT;
		goto out;
	}
	r = rc == SQLITE_DONE ? 0 : db_error(s);
	done(st);
	if (r != 0 || !disabled) {
		goto out;
	}
	st = stmt(s, Q_USER_KILL_SESSIONS);
	if (st == NULL) {
		r = -EIO;
		goto out;
	}
	(void)sqlite3_bind_int64(st, 1, id);
	r = run(s, st, NULL);
out:
	return tx_leave(s, own, r);
}

int
store_user_list(struct store *s, int (*cb)(const struct store_user *u, void *arg), void *arg)
{
	struct store_user u;
	sqlite3_stmt *st;
	int rc, r = 0;

	if (s == NULL || cb == NULL) {
		return -EINVAL;
	}
	st = stmt(s, Q_USER_LIST);
	if (st == NULL) {
		return -EIO;
	}
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		r = user_row(st, &u);
		if (r == 0) {
			r = cb(&u, arg);
		}
		explicit_bzero(&u, sizeof(u));
		if (r != 0) {
			goto out;
		}
	}
	if (rc != SQLITE_DONE) {
		r = db_error(s);
	}
out:
	done(st);
	return r;
}

/* --- failed logins ----------------------------------------------------- */

static int
count_one(struct store *s, sqlite3_stmt *st, int64_t *ret)
{
	int rc, r = 0;

	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		*ret = sqlite3_column_int64(st, 0);
	} else {
		r = rc == SQLITE_DONE ? -EIO : db_error(s);
	}
	done(st);
	return r;
}

/* The one number q answers for ?1 = key, ?2 = since. */
static int
count_since(struct store *s, enum q q, const char *key, int64_t since, int64_t *ret)
{
	sqlite3_stmt *st = stmt(s, q);

	if (st == NULL) {
		return -EIO;
	}
	(void)bind_text(st, 1, key);
	(void)sqlite3_bind_int64(st, 2, since);
	return count_one(s, st, ret);
}

/* by_name for the account, then by_addr for the address; both results
 * or neither. */
static int
count_name_addr(struct store *s, enum q by_name, enum q by_addr, const char *name,
    const char *addr, int64_t since, int64_t *ret_name, int64_t *ret_addr)
{
	int64_t n_name = 0, n_addr = 0;
	int r;

	if (s == NULL || name == NULL || addr == NULL) {
		return -EINVAL;
	}
	r = count_since(s, by_name, name, since, &n_name);
	if (r != 0) {
		return r;
	}
	r = count_since(s, by_addr, addr, since, &n_addr);
	if (r != 0) {
		return r;
	}
	if (ret_name != NULL) {
		*ret_name = n_name;
	}
	if (ret_addr != NULL) {
		*ret_addr = n_addr;
	}
	return 0;
}

int
store_login_failures(struct store *s, const char *name, const char *addr, int64_t since,
    int64_t *ret_by_name, int64_t *ret_by_addr)
{
	return count_name_addr(s, Q_FAIL_BY_NAME, Q_FAIL_BY_ADDR, name, addr, since, ret_by_name,
	    ret_by_addr);
}

int
store_login_last_failure(struct store *s, const char *name, const char *addr, int64_t since,
    int64_t *ret_name_at, int64_t *ret_addr_at)
{
	return count_name_addr(s, Q_FAIL_LAST_NAME, Q_FAIL_LAST_ADDR, name, addr, since,
	    ret_name_at, ret_addr_at);
}

int
store_login_failed(struct store *s, const char *name, const char *addr, int64_t now)
{
	sqlite3_stmt *st;

	if (s == NULL || name == NULL || addr == NULL) {
		return -EINVAL;
	}
	st = stmt(s, Q_FAIL_ADD);
	if (st == NULL) {
		return -EIO;
	}
	(void)bind_text(st, 1, name);
	(void)bind_text(st, 2, addr);
	(void)sqlite3_bind_int64(st, 3, now);
	return run(s, st, NULL);
}

int
store_login_succeeded(struct store *s, const char *name, const char *addr)
{
	sqlite3_stmt *st;

	if (s == NULL || name == NULL || addr == NULL) {
		return -EINVAL;
	}
	st = stmt(s, Q_FAIL_FORGET);
	if (st == NULL) {
		return -EIO;
	}
	(void)bind_text(st, 1, name);
	(void)bind_text(st, 2, addr);
	return run(s, st, NULL);
}

/* The newest failure recorded with these values: deleted (undo) or given
 * a new time (restamp), in one statement. */
static int
failure_change(struct store *s, enum q which, const char *name, const char *addr, int64_t at,
    int64_t new_at)
{
	sqlite3_stmt *st;

	if (s == NULL || name == NULL || addr == NULL) {
		return -EINVAL;
	}
	st = stmt(s, which);
	if (st == NULL) {
		return -EIO;
	}
	(void)bind_text(st, 1, name);
	(void)bind_text(st, 2, addr);
	(void)sqlite3_bind_int64(st, 3, at);
	if (which == Q_FAIL_RESTAMP) {
		(void)sqlite3_bind_int64(st, 4, new_at);
	}
	return run(s, st, NULL);
}

int
store_login_failed_undo(struct store *s, const char *name, const char *addr, int64_t at)
{
	return failure_change(s, Q_FAIL_UNDO, name, addr, at, 0);
}

int
store_login_failed_restamp(struct store *s, const char *name, const char *addr, int64_t at,
    int64_t new_at)
{
	return failure_change(s, Q_FAIL_RESTAMP, name, addr, at, new_at);
}

int
store_login_purge(struct store *s, int64_t before)
{
	sqlite3_stmt *st;

	if (s == NULL) {
		return -EINVAL;
	}
	st = stmt(s, Q_FAIL_PURGE);
	if (st == NULL) {
		return -EIO;
	}
	(void)sqlite3_bind_int64(st, 1, before);
	return run(s, st, NULL);
}

/* --- sessions ---------------------------------------------------------- */

int
store_session_create(struct store *s, const uint8_t sid_hash[32], int64_t user_id,
    const uint8_t csrf_key[32], int64_t now)
{
	sqlite3_stmt *st;

	if (s == NULL || sid_hash == NULL || csrf_key == NULL) {
		return -EINVAL;
	}
	st = stmt(s, Q_SESSION_ADD);
	if (st == NULL) {
		return -EIO;
	}
	(void)sqlite3_bind_blob(st, 1, sid_hash, 32, SQLITE_STATIC);
	(void)sqlite3_bind_int64(st, 2, user_id);
	(void)sqlite3_bind_blob(st, 3, csrf_key, 32, SQLITE_STATIC);
	(void)sqlite3_bind_int64(st, 4, now);
	return run(s, st, NULL);
}

int
store_session_get(struct store *s, const uint8_t sid_hash[32], struct store_session *ret)
{
	struct store_session ss;
	sqlite3_stmt *st;
	int64_t role;
	int rc, r;

	if (s == NULL || sid_hash == NULL || ret == NULL) {
		return -EINVAL;
	}
	st = stmt(s, Q_SESSION_GET);
	if (st == NULL) {
		return -EIO;
	}
	memset(&ss, 0, sizeof(ss));
	(void)sqlite3_bind_blob(st, 1, sid_hash, 32, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc != SQLITE_ROW) {
		r = step_error(s, rc);
		goto out;
	}
	role = sqlite3_column_int64(st, 2);
	if (!role_ok(role)) {
		r = -EIO;
		goto out;
	}
	ss.user_id = sqlite3_column_int64(st, 0);
	ss.role = (enum store_role)role;
	ss.created = sqlite3_column_int64(st, 4);
	ss.last_seen = sqlite3_column_int64(st, 5);
	r = col_copy(st, 1, ss.user, sizeof(ss.user));
	if (r == 0) {
		r = col_blob(st, 3, ss.csrf_key, sizeof(ss.csrf_key), NULL);
	}
	if (r == 0) {
		*ret = ss;
	}
out:
	explicit_bzero(&ss, sizeof(ss));
	done(st);
	return r;
}

static int
changed_one(struct store *s, sqlite3_stmt *st)
{
	int64_t n = 0;
	int r = run(s, st, &n);

	if (r == 0 && n == 0) {
		r = -ENOENT;
	}
	return r;
}

int
store_session_touch(struct store *s, const uint8_t sid_hash[32], int64_t now)
{
	sqlite3_stmt *st;

	if (s == NULL || sid_hash == NULL) {
		return -EINVAL;
	}
	st = stmt(s, Q_SESSION_TOUCH);
	if (st == NULL) {
		return -EIO;
	}
	(void)sqlite3_bind_blob(st, 1, sid_hash, 32, SQLITE_STATIC);
	(void)sqlite3_bind_int64(st, 2, now);
	return changed_one(s, st);
}

int
store_session_delete(struct store *s, const uint8_t sid_hash[32])
{
	sqlite3_stmt *st;

	if (s == NULL || sid_hash == NULL) {
		return -EINVAL;
	}
	st = stmt(s, Q_SESSION_DELETE);
	if (st == NULL) {
		return -EIO;
	}
	(void)sqlite3_bind_blob(st, 1, sid_hash, 32, SQLITE_STATIC);
	return changed_one(s, st);
}

int
store_session_purge(struct store *s, int64_t idle_before, int64_t created_before)
{
	sqlite3_stmt *st;

	if (s == NULL) {
		return -EINVAL;
	}
	st = stmt(s, Q_SESSION_PURGE);
	if (st == NULL) {
		return -EIO;
	}
	(void)sqlite3_bind_int64(st, 1, idle_before);
	(void)sqlite3_bind_int64(st, 2, created_before);
	return run(s, st, NULL);
}

/* --- approval requests ------------------------------------------------- */

void
store_request_clear(struct store_request *r)
{
	if (r == NULL) {
		return;
	}
	free(r->args_json);
	free(r->reason);
	free(r->state_reason);
	memset(r, 0, sizeof(*r));
}

static const char *const state_names[] = {
	[STORE_PENDING] = "pending",
	[STORE_MINTING] = "minting",
	[STORE_APPROVED] = "approved",
	[STORE_DENIED] = "denied",
	[STORE_EXPIRED] = "expired",
	[STORE_FAILED] = "failed",
	[STORE_CANCELLED] = "cancelled",
};
#define N_STATES (sizeof(state_names) / sizeof(state_names[0]))

const char *
store_state_name(enum store_state st)
{
	if ((unsigned)st >= N_STATES) {
		return "unknown";
	}
	return state_names[st];
}

int
store_state_parse(const char *s, enum store_state *ret)
{
	size_t i;

	if (s == NULL || ret == NULL) {
		return -EINVAL;
	}
	for (i = 0; i < N_STATES; i++) {
		if (strcmp(s, state_names[i]) == 0) {
			*ret = (enum store_state)i;
			return 0;
		}
	}
	return -EINVAL;
}

int
store_request_insert(struct store *s, const struct store_request *r)
{
	sqlite3_stmt *st;
	const struct approval_request *ar;

	if (s == NULL || r == NULL || r->args_json == NULL ||
	    (unsigned)r->state >= N_STATES) {
		return -EINVAL;
	}
	ar = &r->ar;
	if (approval_check(ar) != 0) {
		return -EINVAL;
	}
	st = stmt(s, Q_REQ_INSERT);
	if (st == NULL) {
		return -EIO;
	}
	(void)bind_text(st, 1, ar->request);
	(void)bind_text(st, 2, ar->aud);
	(void)bind_text(st, 3, ar->vm);
	(void)bind_text(st, 4, ar->launch_digest);
	(void)bind_text(st, 5, ar->op);
	(void)bind_text(st, 6, ar->args_sha256);
	(void)sqlite3_bind_int64(st, 7, ar->ttl);
	(void)bind_text(st, 8, r->caller);
	(void)bind_text(st, 9, r->owner);
	(void)bind_text(st, 10, r->digest);
	(void)bind_text(st, 11, r->args_json);
	(void)bind_text(st, 12, r->reason != NULL ? r->reason : "");
	(void)sqlite3_bind_int64(st, 13, r->created);
	(void)sqlite3_bind_int64(st, 14, r->expires);
	(void)sqlite3_bind_int64(st, 15, r->decided);
	(void)sqlite3_bind_int64(st, 16, r->state);
	(void)bind_text(st, 17, r->state_reason != NULL ? r->state_reason : "");
	return run(s, st, NULL);
}

static int
request_row(sqlite3_stmt *st, struct store_request *ret)
{
	struct store_request q;
	int64_t state;
	int r;

	memset(&q, 0, sizeof(q));
	r = col_copy(st, 0, q.ar.request, sizeof(q.ar.request));
	if (r == 0) {
		r = col_copy(st, 1, q.ar.aud, sizeof(q.ar.aud));
	}
	if (r == 0) {
		r = col_copy(st, 2, q.ar.vm, sizeof(q.ar.vm));
	}
	if (r == 0) {
		r = col_copy(st, 3, q.ar.launch_digest, sizeof(q.ar.launch_digest));
	}
	if (r == 0) {
		r = col_copy(st, 4, q.ar.op, sizeof(q.ar.op));
	}
	if (r == 0) {
		r = col_copy(st, 5, q.ar.args_sha256, sizeof(q.ar.args_sha256));
	}
	q.ar.ttl = sqlite3_column_int64(st, 6);
	if (r == 0) {
		r = col_copy(st, 7, q.caller, sizeof(q.caller));
	}
	if (r == 0) {
		r = col_copy(st, 8, q.owner, sizeof(q.owner));
	}
	if (r == 0) {
		r = col_copy(st, 9, q.digest, sizeof(q.digest));
	}
	if (r == 0) {
		r = col_dup(st, 10, &q.args_json);
	}
	if (r == 0) {
		r = col_dup(st, 11, &q.reason);
	}
	q.created = sqlite3_column_int64(st, 12);
	q.expires = sqlite3_column_int64(st, 13);
	q.decided = sqlite3_column_int64(st, 14);
	state = sqlite3_column_int64(st, 15);
	if (r == 0 && (state < 0 || (uint64_t)state >= N_STATES)) {
		r = -EIO;
	}
	q.state = (enum store_state)state;
	if (r == 0) {
		r = col_dup(st, 16, &q.state_reason);
	}
	q.token_ready = sqlite3_column_int64(st, 17) != 0;
	q.picked_up = sqlite3_column_int64(st, 18) != 0;
	q.approvals = sqlite3_column_int64(st, 19);
	q.denials = sqlite3_column_int64(st, 20);
	if (r == 0 && (q.args_json == NULL || q.reason == NULL || q.state_reason == NULL)) {
		r = -EIO;
	}
	if (r != 0) {
		store_request_clear(&q);
		return r;
	}
	*ret = q;
	return 0;
}

int
store_request_get(struct store *s, const char *id, struct store_request *ret)
{
	sqlite3_stmt *st;
	int rc, r;

	if (s == NULL || id == NULL || ret == NULL) {
		return -EINVAL;
	}
	st = stmt(s, Q_REQ_GET);
	if (st == NULL) {
		return -EIO;
	}
	(void)bind_text(st, 1, id);
	rc = sqlite3_step(st);
	if (rc != SQLITE_ROW) {
		r = step_error(s, rc);
	} else {
		r = request_row(st, ret);
	}
	done(st);
	return r;
}

/* Which statement and which first parameter a state filter uses. */
static int
state_query(int state, enum q list, enum q *ret, int64_t *ret_param)
{
	if (state >= 0 && (unsigned)state < N_STATES) {
		*ret = list;
		*ret_param = state;
	} else if (state == -2) {
		*ret = (enum q)(list + 1);
		*ret_param = STORE_PENDING;
	} else if (state == -1) {
		*ret = (enum q)(list + 2);
		*ret_param = 0;
	} else {
		return -EINVAL;
	}
	return 0;
}

int
store_request_list(struct store *s, const struct store_filter *f,
    int (*cb)(const struct store_request *r, void *arg), void *arg)
{
	struct store_request q;
	sqlite3_stmt *st;
	enum q which;
	int64_t param;
	int rc, r;

	if (s == NULL || f == NULL || cb == NULL || f->limit < 1 || f->limit > STORE_LIST_MAX ||
	    f->offset < 0) {
		return -EINVAL;
	}
	r = state_query(f->state, Q_REQ_LIST_STATE, &which, &param);
	if (r != 0) {
		return r;
	}
	st = stmt(s, which);
	if (st == NULL) {
		return -EIO;
	}
	(void)sqlite3_bind_int64(st, 1, param);
	(void)bind_text(st, 2, f->op);
	(void)bind_text(st, 3, f->vm);
	(void)bind_text(st, 4, f->caller);
	(void)sqlite3_bind_int64(st, 5, f->limit);
	(void)sqlite3_bind_int64(st, 6, f->offset);
	r = 0;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		r = request_row(st, &q);
		if (r == 0) {
			r = cb(&q, arg);
			store_request_clear(&q);
		}
		if (r != 0) {
			goto out;
		}
	}
	if (rc != SQLITE_DONE) {
		r = db_error(s);
	}
out:
	done(st);
	return r;
}

int
store_request_count(struct store *s, int state, int64_t *ret)
{
	sqlite3_stmt *st;
	enum q which;
	int64_t param;
	int r;

	if (s == NULL || ret == NULL) {
		return -EINVAL;
	}
	r = state_query(state, Q_REQ_COUNT_STATE, &which, &param);
	if (r != 0) {
		return r;
	}
	st = stmt(s, which);
	if (st == NULL) {
		return -EIO;
	}
	(void)sqlite3_bind_int64(st, 1, param);
	return count_one(s, st, ret);
}

static int
request_exists(struct store *s, const char *id)
{
	sqlite3_stmt *st = stmt(s, Q_REQ_EXISTS);
	int rc, r;

	if (st == NULL) {
		return -EIO;
	}
	(void)bind_text(st, 1, id);
	rc = sqlite3_step(st);
	r = rc == SQLITE_ROW ? 0 : step_error(s, rc);
	done(st);
	return r;
}

/* Run a change to request id that must match its row: one that matched
 * none means no such request (-ENOENT) or not in the state asked
 * (-ESTALE). */
static int
run_on_request(struct store *s, sqlite3_stmt *st, const char *id)
{
	int64_t n = 0;
	int r = run(s, st, &n);

	if (r == 0 && n == 0) {
		r = request_exists(s, id);
		if (r == 0) {
			r = -ESTALE;
		}
	}
	return r;
}

int
store_request_transition(struct store *s, const char *id, enum store_state from,
    enum store_state to, const char *reason, int64_t now)
{
	sqlite3_stmt *st;

	if (s == NULL || id == NULL || (unsigned)from >= N_STATES || (unsigned)to >= N_STATES) {
		return -EINVAL;
	}
	st = stmt(s, Q_REQ_TRANSITION);
	if (st == NULL) {
		return -EIO;
	}
	(void)bind_text(st, 1, id);
	(void)sqlite3_bind_int64(st, 2, from);
	(void)sqlite3_bind_int64(st, 3, to);
	(void)bind_text(st, 4, reason);
	(void)sqlite3_bind_int64(st, 5, now);
	return run_on_request(s, st, id);
}

static void
free_ids(char **ids, size_t n)
{
	size_t i;

	if (ids == NULL) {
		return;
	}
	for (i = 0; i < n; i++) {
		free(ids[i]);
	}
	free(ids);
}

int
store_request_due(struct store *s, int64_t now, char ***ret_ids, size_t *ret_n)
{
	sqlite3_stmt *st;
	char **ids = NULL, **grown, *id = NULL;
	size_t n = 0, cap = 0;
	int rc, r = 0;

	if (s == NULL || ret_ids == NULL || ret_n == NULL) {
		return -EINVAL;
	}
	st = stmt(s, Q_REQ_DUE);
	if (st == NULL) {
		return -EIO;
	}
	(void)sqlite3_bind_int64(st, 1, now);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (n == cap) {
			cap = cap == 0 ? 16 : cap * 2;
			grown = reallocarray(ids, cap, sizeof(*ids));
			if (grown == NULL) {
				r = -ENOMEM;
				goto out;
			}
			ids = grown;
		}
		r = col_dup(st, 0, &id);
		if (r == 0 && id == NULL) {
			r = -EIO;
		}
		if (r != 0) {
			goto out;
		}
		ids[n++] = id;
		id = NULL;
	}
	if (rc != SQLITE_DONE) {
		r = db_error(s);
		goto out;
	}
	*ret_ids = ids;
	*ret_n = n;
	ids = NULL;
	n = 0;
out:
	done(st);
	free_ids(ids, n);
	return r;
}

int
store_token_put(struct store *s, const char *id, const char *token, int64_t now)
{
	sqlite3_stmt *st;

	if (s == NULL || id == NULL || token == NULL || token[0] == '\0') {
		return -EINVAL;
	}
	st = stmt(s, Q_TOKEN_PUT);
	if (st == NULL) {
		return -EIO;
	}
	(void)bind_text(st, 1, id);
	(void)bind_text(st, 2, token);
	(void)sqlite3_bind_int64(st, 3, now);
	return run_on_request(s, st, id);
}

int
store_token_purge(struct store *s, int64_t now, int64_t *ret_n)
{
	sqlite3_stmt *st;
	int64_t n = 0;
	int r;

	if (s == NULL) {
		return -EINVAL;
	}
	st = stmt(s, Q_TOKEN_PURGE);
	if (st == NULL) {
		return -EIO;
	}
	(void)sqlite3_bind_int64(st, 1, now);
	r = run(s, st, &n);
	if (r == 0 && ret_n != NULL) {
		*ret_n = n;
	}
	return r;
}

static void
wipe_free(char *p)
{
	if (p != NULL) {
		explicit_bzero(p, strlen(p));
		free(p);
	}
}

int
store_token_take(struct store *s, const char *id, const char *caller, char **ret_token)
{
	sqlite3_stmt *st;
	char *token = NULL;
	int64_t state, n = 0;
	bool picked;
	int rc, r;

	if (s == NULL || id == NULL || caller == NULL || ret_token == NULL) {
		return -EINVAL;
	}
	st = stmt(s, Q_TOKEN_PEEK);
	if (st == NULL) {
		return -EIO;
	}
	(void)bind_text(st, 1, id);
	(void)bind_text(st, 2, caller);
	rc = sqlite3_step(st);
	if (rc != SQLITE_ROW) {
		r = step_error(s, rc);
		done(st);
		goto out;
	}
	state = sqlite3_column_int64(st, 0);
	picked = sqlite3_column_int64(st, 1) != 0;
	r = 0;
	if (picked) {
		r = -EALREADY;
	} else if (state != STORE_APPROVED) {
		r = -EAGAIN;
	} else {
		r = col_dup(st, 2, &token);
		if (r == 0 && token == NULL) {
			r = -EIO;           /* approved without a token: cannot happen */
		}
	}
	done(st);
	if (r != 0) {
		goto out;
	}
	/* The erasure is conditional on the token still being there, so of
	 * two concurrent takers exactly one gets it. */
	st = stmt(s, Q_TOKEN_TAKE);
	if (st == NULL) {
		r = -EIO;
		goto out;
	}
	(void)bind_text(st, 1, id);
	(void)bind_text(st, 2, caller);
	r = run(s, st, &n);
	if (r == 0 && n != 1) {
		r = -EALREADY;
	}
	if (r != 0) {
		goto out;
	}
	*ret_token = token;
	token = NULL;
out:
	wipe_free(token);
	return r;
}

/* --- decisions ---------------------------------------------------------- */

void
store_decision_clear(struct store_decision *d)
{
	if (d == NULL) {
		return;
	}
	free(d->reason);
	free(d->approval_json);
	memset(d, 0, sizeof(*d));
}

int
store_decision_add(struct store *s, const char *id, int64_t user_id, bool approve,
    const char *reason, const char *approval_json, int64_t now)
{
	sqlite3_stmt *st;

	if (s == NULL || id == NULL) {
		return -EINVAL;
	}
	st = stmt(s, Q_DEC_ADD);
	if (st == NULL) {
		return -EIO;
	}
	(void)bind_text(st, 1, id);
	(void)sqlite3_bind_int64(st, 2, user_id);
	(void)sqlite3_bind_int64(st, 3, approve ? 1 : 0);
	(void)bind_text(st, 4, reason != NULL ? reason : "");
	(void)bind_text(st, 5, approval_json);
	(void)sqlite3_bind_int64(st, 6, now);
	return run(s, st, NULL);
}

int
store_decision_list(struct store *s, const char *id,
    int (*cb)(const struct store_decision *d, void *arg), void *arg)
{
	struct store_decision d;
	sqlite3_stmt *st;
	int rc, r = 0;

	if (s == NULL || id == NULL || cb == NULL) {
		return -EINVAL;
	}
	st = stmt(s, Q_DEC_LIST);
	if (st == NULL) {
		return -EIO;
	}
	(void)bind_text(st, 1, id);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		memset(&d, 0, sizeof(d));
		d.user_id = sqlite3_column_int64(st, 0);
		d.approve = sqlite3_column_int64(st, 2) != 0;
		d.at = sqlite3_column_int64(st, 5);
		r = col_copy(st, 1, d.user, sizeof(d.user));
		if (r == 0) {
			r = col_dup(st, 3, &d.reason);
		}
		if (r == 0 && d.reason == NULL) {
			r = -EIO;
		}
		if (r == 0) {
			r = col_dup(st, 4, &d.approval_json);
		}
		if (r == 0) {
			r = cb(&d, arg);
		}
		store_decision_clear(&d);
		if (r != 0) {
			goto out;
		}
	}
	if (rc != SQLITE_DONE) {
		r = db_error(s);
	}
out:
	done(st);
	return r;
}

/* --- passkeys ---------------------------------------------------------- */

int
store_credential_add(struct store *s, const struct store_credential *c)
{
	sqlite3_stmt *st;

	if (s == NULL || c == NULL || c->cred.id_len == 0 ||
	    c->cred.id_len > WEBAUTHN_CRED_ID_MAX || c->cred.pk_len == 0 ||
	    c->cred.pk_len > WEBAUTHN_PK_MAX) {
		return -EINVAL;
	}
	st = stmt(s, Q_CRED_ADD);
	if (st == NULL) {
		return -EIO;
	}
	(void)sqlite3_bind_int64(st, 1, c->user_id);
	(void)sqlite3_bind_blob(st, 2, c->cred.id, (int)c->cred.id_len, SQLITE_STATIC);
	(void)sqlite3_bind_int64(st, 3, c->cred.alg);
	(void)sqlite3_bind_blob(st, 4, c->cred.pk, (int)c->cred.pk_len, SQLITE_STATIC);
	(void)sqlite3_bind_int64(st, 5, c->cred.sign_count);
	(void)bind_text(st, 6, c->label);
	(void)sqlite3_bind_int64(st, 7, c->created);
	return run(s, st, NULL);
}

static int
credential_row(sqlite3_stmt *st, struct store_credential *c)
{
	int64_t alg, count;
	int r;

	memset(c, 0, sizeof(*c));
	c->user_id = sqlite3_column_int64(st, 0);
	alg = sqlite3_column_int64(st, 3);
	count = sqlite3_column_int64(st, 5);
	if (alg < INT32_MIN || alg > INT32_MAX || count < 0 || count > UINT32_MAX) {
		return -EIO;
	}
	c->cred.alg = (int)alg;
	c->cred.sign_count = (uint32_t)count;
	c->created = sqlite3_column_int64(st, 7);
	r = col_copy(st, 1, c->user, sizeof(c->user));
	if (r == 0) {
		r = col_blob(st, 2, c->cred.id, sizeof(c->cred.id), &c->cred.id_len);
	}
	if (r == 0) {
		r = col_blob(st, 4, c->cred.pk, sizeof(c->cred.pk), &c->cred.pk_len);
	}
	if (r == 0) {
		r = col_copy(st, 6, c->label, sizeof(c->label));
	}
	return r;
}

int
store_credential_list(struct store *s, int64_t user_id,
    int (*cb)(const struct store_credential *c, void *arg), void *arg)
{
	struct store_credential *c = NULL;
	sqlite3_stmt *st;
	int rc, r = 0;

	if (s == NULL || cb == NULL) {
		return -EINVAL;
	}
	st = stmt(s, Q_CRED_LIST);
	if (st == NULL) {
		return -EIO;
	}
	/* About 1 KiB each: off the stack. */
	c = malloc(sizeof(*c));
	if (c == NULL) {
		r = -ENOMEM;
		goto out;
	}
	(void)sqlite3_bind_int64(st, 1, user_id);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		r = credential_row(st, c);
		if (r == 0) {
			r = cb(c, arg);
		}
		if (r != 0) {
			goto out;
		}
	}
	if (rc != SQLITE_DONE) {
		r = db_error(s);
	}
out:
	done(st);
	free(c);
	return r;
}

int
store_credential_get(struct store *s, const uint8_t *id, size_t id_len,
    struct store_credential *ret)
{
	sqlite3_stmt *st;
	int rc, r;

	if (s == NULL || id == NULL || id_len == 0 || id_len > WEBAUTHN_CRED_ID_MAX ||
	    ret == NULL) {
		return -EINVAL;
	}
	st = stmt(s, Q_CRED_GET);
	if (st == NULL) {
		return -EIO;
	}
	(void)sqlite3_bind_blob(st, 1, id, (int)id_len, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc != SQLITE_ROW) {
		r = step_error(s, rc);
	} else {
		r = credential_row(st, ret);
	}
	done(st);
	return r;
}

int
store_challenge_put(struct store *s, const uint8_t sid_hash[32], const uint8_t challenge[32],
    int64_t expires)
{
	sqlite3_stmt *st;

	if (s == NULL || sid_hash == NULL || challenge == NULL) {
		return -EINVAL;
	}
	st = stmt(s, Q_CHAL_PUT);
	if (st == NULL) {
		return -EIO;
	}
	(void)sqlite3_bind_blob(st, 1, sid_hash, 32, SQLITE_STATIC);
	(void)sqlite3_bind_blob(st, 2, challenge, 32, SQLITE_STATIC);
	(void)sqlite3_bind_int64(st, 3, expires);
	return run(s, st, NULL);
}

int
store_challenge_take(struct store *s, const uint8_t sid_hash[32], int64_t now, uint8_t ret[32])
{
	sqlite3_stmt *st;
	uint8_t ch[32];
	int64_t expires = 0;
	int rc, r;

	if (s == NULL || sid_hash == NULL || ret == NULL) {
		return -EINVAL;
	}
	st = stmt(s, Q_CHAL_TAKE);
	if (st == NULL) {
		return -EIO;
	}
	(void)sqlite3_bind_blob(st, 1, sid_hash, 32, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc != SQLITE_ROW) {
		r = step_error(s, rc);
		done(st);
		return r;
	}
	r = col_blob(st, 0, ch, sizeof(ch), NULL);
	expires = sqlite3_column_int64(st, 1);
	while (rc == SQLITE_ROW) {
		rc = sqlite3_step(st);
	}
	if (rc != SQLITE_DONE && r == 0) {
		r = db_error(s);
	}
	done(st);
	if (r == 0 && expires <= now) {
		r = -ENOENT;
	}
	if (r == 0) {
		memcpy(ret, ch, sizeof(ch));
	}
	explicit_bzero(ch, sizeof(ch));
	return r;
}

/* --- notifications ------------------------------------------------------ */

int
store_notify_add(struct store *s, const char *id, int64_t now)
{
	sqlite3_stmt *st;

	if (s == NULL || id == NULL) {
		return -EINVAL;
	}
	st = stmt(s, Q_NOTIFY_ADD);
	if (st == NULL) {
		return -EIO;
	}
	(void)bind_text(st, 1, id);
	(void)sqlite3_bind_int64(st, 2, now);
	return run(s, st, NULL);
}

int
store_notify_next(struct store *s, int64_t now, char ret_id[TOKEN_ID_MAX + 1],
    int64_t *ret_attempts)
{
	char id[TOKEN_ID_MAX + 1];
	sqlite3_stmt *st;
	int64_t attempts;
	int rc, r;

	if (s == NULL || ret_id == NULL) {
		return -EINVAL;
	}
	st = stmt(s, Q_NOTIFY_NEXT);
	if (st == NULL) {
		return -EIO;
	}
	(void)sqlite3_bind_int64(st, 1, now);
	rc = sqlite3_step(st);
	if (rc != SQLITE_ROW) {
		r = step_error(s, rc);
		goto out;
	}
	r = col_copy(st, 0, id, sizeof(id));
	attempts = sqlite3_column_int64(st, 1);
	if (r == 0) {
		memcpy(ret_id, id, sizeof(id));
		if (ret_attempts != NULL) {
			*ret_attempts = attempts;
		}
	}
out:
	done(st);
	return r;
}

int
store_notify_done(struct store *s, const char *id)
{
	sqlite3_stmt *st;

	if (s == NULL || id == NULL) {
		return -EINVAL;
	}
	st = stmt(s, Q_NOTIFY_DONE);
	if (st == NULL) {
		return -EIO;
	}
	(void)bind_text(st, 1, id);
	return changed_one(s, st);
}

int
store_notify_retry(struct store *s, const char *id, int64_t next_at)
{
	sqlite3_stmt *st;

	if (s == NULL || id == NULL) {
		return -EINVAL;
	}
	st = stmt(s, Q_NOTIFY_RETRY);
	if (st == NULL) {
		return -EIO;
	}
	(void)bind_text(st, 1, id);
	(void)sqlite3_bind_int64(st, 2, next_at);
	return changed_one(s, st);
}

/* --- audit -------------------------------------------------------------- */

void
store_audit_clear(struct store_audit *a)
{
	if (a == NULL) {
		return;
	}
	free(a->detail);
	memset(a, 0, sizeof(*a));
}

static const char zero_hash[TOKEN_HEX256_LEN + 1] =
    "0000000000000000000000000000000000000000000000000000000000000000";

/* hash = SHA-256(prev || canonical JSON of the record), in hex. */
static int
audit_hash(const char *prev, int64_t seq, int64_t at, const char *actor, const char *event,
    const char *request, const json_t *detail, char ret[TOKEN_HEX256_LEN + 1])
{
	json_t *rec = NULL, *d = NULL;
	char *text = NULL;
	size_t len = 0;
	uint8_t md[32];
	unsigned mdlen = 0;
	int r;

	d = detail != NULL ? json_incref((json_t *)detail) : json_object();
	if (d == NULL || !json_is_object(d)) {
		r = d == NULL ? -ENOMEM : -EINVAL;
		goto out;
	}
	rec = json_pack("{s:s, s:I, s:O, s:s, s:s, s:I}", "actor", actor, "at", (json_int_t)at,
	    "detail", d, "event", event, "request", request, "seq", (json_int_t)seq);
	if (rec == NULL) {
		r = -EINVAL;           /* not UTF-8, or out of memory */
		goto out;
	}
	r = cjson_dump(rec, &text, &len);
	if (r != 0) {
		goto out;
	}
	{
		EVP_MD_CTX *ctx = EVP_MD_CTX_new();

		if (ctx == NULL || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1 ||
		    EVP_DigestUpdate(ctx, prev, TOKEN_HEX256_LEN) != 1 ||
		    EVP_DigestUpdate(ctx, text, len) != 1 ||
		    EVP_DigestFinal_ex(ctx, md, &mdlen) != 1 || mdlen != sizeof(md)) {
			r = -EIO;
		}
		EVP_MD_CTX_free(ctx);
	}
	if (r == 0) {
		format_hex(md, sizeof(md), ret);
	}
out:
	free(text);
	json_decref(rec);
	json_decref(d);
	return r;
}

static bool
audit_text_ok(const char *s, size_t max)
{
	return s != NULL && strlen(s) <= max;
}

int
store_audit_append(struct store *s, const char *actor, const char *event,
    const char *request, const json_t *detail, int64_t now)
{
	char prev[TOKEN_HEX256_LEN + 1], hash[TOKEN_HEX256_LEN + 1];
	char *dtext = NULL;
	json_t *empty = NULL;
	const json_t *d = detail;
	sqlite3_stmt *st;
	int64_t seq = 1;
	size_t dlen = 0;
	bool own = false;
	int rc, r;

	if (request == NULL) {
		request = "";
	}
	if (s == NULL || !audit_text_ok(actor, STORE_CALLER_MAX) || actor[0] == '\0' ||
	    !audit_text_ok(event, 31) || event[0] == '\0' ||
	    !audit_text_ok(request, TOKEN_ID_MAX) || (d != NULL && !json_is_object(d))) {
		return -EINVAL;
	}
	if (d == NULL) {
		empty = json_object();
		if (empty == NULL) {
			return -ENOMEM;
		}
		d = empty;
	}
	r = cjson_dump(d, &dtext, &dlen);
	if (r != 0) {
		goto out_free;
	}
	/* Reading the last hash and appending must not interleave with
	 * another writer: inside the caller's transaction, or our own. */
	r = tx_enter(s, &own);
	if (r != 0) {
		goto out_free;
	}
	st = stmt(s, Q_AUDIT_LAST);
	if (st == NULL) {
		r = -EIO;
		goto out;
	}
	memcpy(prev, zero_hash, sizeof(prev));
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		seq = sqlite3_column_int64(st, 0) + 1;
		r = col_copy(st, 1, prev, sizeof(prev));
		if (r == 0 && strlen(prev) != TOKEN_HEX256_LEN) {
			r = -EIO;
		}
	} else if (rc != SQLITE_DONE) {
		r = db_error(s);
	}
	done(st);
	if (r != 0) {
		goto out;
	}
	r = audit_hash(prev, seq, now, actor, event, request, d, hash);
	if (r != 0) {
		goto out;
	}
	st = stmt(s, Q_AUDIT_INSERT);
	if (st == NULL) {
		r = -EIO;
		goto out;
	}
	(void)sqlite3_bind_int64(st, 1, seq);
	(void)sqlite3_bind_int64(st, 2, now);
	(void)bind_text(st, 3, actor);
	(void)bind_text(st, 4, event);
	(void)bind_text(st, 5, request);
	(void)bind_text(st, 6, dtext);
	(void)bind_text(st, 7, prev);
	(void)bind_text(st, 8, hash);
	r = run(s, st, NULL);
out:
	r = tx_leave(s, own, r);
out_free:
	free(dtext);
	json_decref(empty);
	return r;
}

static int
audit_row(sqlite3_stmt *st, struct store_audit *a)
{
	int r;

	memset(a, 0, sizeof(*a));
	a->seq = sqlite3_column_int64(st, 0);
	a->at = sqlite3_column_int64(st, 1);
	r = col_copy(st, 2, a->actor, sizeof(a->actor));
	if (r == 0) {
		r = col_copy(st, 3, a->event, sizeof(a->event));
	}
	if (r == 0) {
		r = col_copy(st, 4, a->request, sizeof(a->request));
	}
	if (r == 0) {
		r = col_dup(st, 5, &a->detail);
	}
	if (r == 0 && a->detail == NULL) {
		r = -EIO;
	}
	if (r != 0) {
		store_audit_clear(a);
	}
	return r;
}

int
store_audit_list(struct store *s, int64_t before, int64_t limit, const char *request,
    int (*cb)(const struct store_audit *a, void *arg), void *arg)
{
	struct store_audit a;
	sqlite3_stmt *st;
	int rc, r = 0;

	if (s == NULL || cb == NULL || limit < 1 || limit > STORE_AUDIT_LIST_MAX) {
		return -EINVAL;
	}
	st = stmt(s, Q_AUDIT_LIST);
	if (st == NULL) {
		return -EIO;
	}
	(void)sqlite3_bind_int64(st, 1, before);
	(void)sqlite3_bind_int64(st, 2, limit);
	(void)bind_text(st, 3, request);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		r = audit_row(st, &a);
		if (r == 0) {
			r = col_copy(st, 6, a.hash, sizeof(a.hash));
			if (r == 0) {
				r = cb(&a, arg);
			}
			store_audit_clear(&a);
		}
		if (r != 0) {
			goto out;
		}
	}
	if (rc != SQLITE_DONE) {
		r = db_error(s);
	}
out:
	done(st);
	return r;
}

int
store_audit_verify(struct store *s, int64_t *ret_records, int64_t *ret_bad_seq,
    char *detail, size_t detailsz)
{
	char prev[TOKEN_HEX256_LEN + 1], row_prev[TOKEN_HEX256_LEN + 1];
	char row_hash[TOKEN_HEX256_LEN + 1], want[TOKEN_HEX256_LEN + 1];
	char why[128] = "";
	struct store_audit a;
	json_t *d = NULL;
	sqlite3_stmt *st;
	int64_t n = 0, bad = 0;
	int rc, r = 0;

	if (s == NULL) {
		return -EINVAL;
	}
	st = stmt(s, Q_AUDIT_ALL);
	if (st == NULL) {
		return -EIO;
	}
	/* One read transaction: a consistent snapshot while writers go on. */
	memcpy(prev, zero_hash, sizeof(prev));
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		int64_t seq = sqlite3_column_int64(st, 0);

		if (audit_row(st, &a) != 0 || col_copy(st, 6, row_prev, sizeof(row_prev)) != 0 ||
		    col_copy(st, 7, row_hash, sizeof(row_hash)) != 0) {
			store_audit_clear(&a);
			bad = seq;
			snprintf(why, sizeof(why), "record %lld: a field is malformed", (long long)seq);
			break;
		}
		if (seq != n + 1) {
			bad = seq;
			snprintf(why, sizeof(why), "record %lld: expected seq %lld (a record is missing)",
			    (long long)seq, (long long)(n + 1));
		} else if (strcmp(row_prev, prev) != 0) {
			bad = seq;
			snprintf(why, sizeof(why), "record %lld: prev does not match record %lld's hash",
			    (long long)seq, (long long)n);
		} else if (cjson_parse(a.detail, strlen(a.detail), 1024 * 1024, &d) != 0 ||
		    !json_is_object(d)) {
			bad = seq;
			snprintf(why, sizeof(why), "record %lld: detail is not a JSON object",
			    (long long)seq);
		} else if (audit_hash(prev, seq, a.at, a.actor, a.event, a.request, d, want) != 0 ||
		    strcmp(want, row_hash) != 0) {
			bad = seq;
			snprintf(why, sizeof(why), "record %lld: hash does not match its content",
			    (long long)seq);
		}
		json_decref(d);
		d = NULL;
		store_audit_clear(&a);
		if (bad != 0) {
			break;
		}
		memcpy(prev, row_hash, sizeof(prev));
		n++;
	}
	if (bad == 0 && rc != SQLITE_DONE) {
		r = db_error(s);
	}
	done(st);
	if (r != 0) {
		return r;
	}
	if (bad != 0) {
		if (ret_bad_seq != NULL) {
			*ret_bad_seq = bad;
		}
		if (detail != NULL && detailsz > 0) {
			snprintf(detail, detailsz, "%s", why);
		}
		return -EBADMSG;
	}
	if (ret_records != NULL) {
		*ret_records = n;
	}
	if (detail != NULL && detailsz > 0) {
		detail[0] = '\0';
	}
	return 0;
}
