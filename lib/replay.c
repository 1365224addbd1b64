#include "replay.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct replay {
	sqlite3 *db;
	sqlite3_stmt *consume;
	sqlite3_stmt *uses;
	sqlite3_stmt *prune;
	/* Prepared statements are not safe to share between threads even on
	 * a serialized connection: bind, step and reset must not interleave. */
	pthread_mutex_t lock;
};

static const char schema[] =
    "CREATE TABLE IF NOT EXISTS used ("
    " id TEXT PRIMARY KEY NOT NULL,"
    " uses INTEGER NOT NULL CHECK (uses >= 1),"
    " exp INTEGER NOT NULL"
    ") WITHOUT ROWID;"
    "CREATE INDEX IF NOT EXISTS used_exp ON used(exp);";

/* One statement, so the check and the increment are one transaction: a
 * row is returned only if a use was recorded. */
static const char sql_consume[] =
    "INSERT INTO used(id, uses, exp) VALUES (?1, 1, ?3)"
    " ON CONFLICT(id) DO UPDATE SET uses = uses + 1, exp = max(exp, excluded.exp)"
    " WHERE uses < ?2"
    " RETURNING uses";
static const char sql_uses[] = "SELECT uses FROM used WHERE id = ?1";
static const char sql_prune[] = "DELETE FROM used WHERE exp < ?1";

static int
map_sqlite(int rc)
{
	switch (rc & 0xff) {
	case SQLITE_OK:
	case SQLITE_DONE:
	case SQLITE_ROW: {
		return 0;
	}
	case SQLITE_BUSY:
	case SQLITE_LOCKED: {
		return -EBUSY;
	}
	case SQLITE_FULL: {
		return -ENOSPC;
	}
	case SQLITE_NOMEM: {
		return -ENOMEM;
	}
	case SQLITE_READONLY: {
		return -EROFS;
	}
	case SQLITE_PERM:
	case SQLITE_AUTH: {
		return -EACCES;
	}
	default: {
		return -EIO;
	}
	}
}

static bool
id_ok(const char *id)
{
	size_t i;

	if (id == NULL || id[0] == '\0') {
		return false;
	}
	for (i = 0; id[i] != '\0'; i++) {
		if (i >= REPLAY_ID_MAX || (unsigned char)id[i] <= 0x20 ||
		    (unsigned char)id[i] >= 0x7f) {
			return false;
		}
	}
	return true;
}

/* Create the file ourselves: SQLite would follow a symlink and use the
 * umask's mode. Its -wal and -shm files copy this file's mode. */
static int
create_file(const char *path)
{
	struct stat st;
	int fd, r = 0;

	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY, 0600);
	if (fd < 0) {
		return -errno;
	}
	if (fstat(fd, &st) != 0) {
		r = -errno;
	} else if (!S_ISREG(st.st_mode)) {
		r = -EINVAL;
	}
	(void)close(fd);
	return r;
}

static int
exec_sql(sqlite3 *db, const char *sql)
{
	return map_sqlite(sqlite3_exec(db, sql, NULL, NULL, NULL));
}

int
replay_open(const char *path, struct replay **ret)
{
	struct replay *rp = NULL;
	sqlite3_stmt *st = NULL;
	bool locked_init = false;
	int r, rc;

	if (path == NULL || path[0] == '\0') {
		return -EINVAL;
	}
	r = create_file(path);
	if (r != 0) {
		goto out;
	}
	rp = calloc(1, sizeof(*rp));
	if (rp == NULL) {
		r = -ENOMEM;
		goto out;
	}
	if (pthread_mutex_init(&rp->lock, NULL) != 0) {
		r = -ENOMEM;
		goto out;
	}
	locked_init = true;
	rc = sqlite3_open_v2(path, &rp->db,
	    SQLITE_OPEN_READWRITE | SQLITE_OPEN_FULLMUTEX | SQLITE_OPEN_NOFOLLOW, NULL);
	if (rc != SQLITE_OK) {
		r = rc == SQLITE_CANTOPEN ? -EACCES : map_sqlite(rc);
		goto out;
	}
	(void)sqlite3_extended_result_codes(rp->db, 1);
	(void)sqlite3_db_config(rp->db, SQLITE_DBCONFIG_DEFENSIVE, 1, NULL);
	(void)sqlite3_db_config(rp->db, SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0, NULL);
	rc = sqlite3_busy_timeout(rp->db, REPLAY_BUSY_TIMEOUT_MS);
	if (rc != SQLITE_OK) {
		r = map_sqlite(rc);
		goto out;
	}
	/* journal_mode answers with the mode in force; anything but "wal"
	 * means the request was not honoured. */
	rc = sqlite3_prepare_v2(rp->db, "PRAGMA journal_mode=WAL", -1, &st, NULL);
	if (rc != SQLITE_OK) {
		r = map_sqlite(rc);
		goto out;
	}
	rc = sqlite3_step(st);
	if (rc != SQLITE_ROW) {
		r = rc == SQLITE_DONE ? -EIO : map_sqlite(rc);
		goto out;
	}
	if (sqlite3_column_text(st, 0) == NULL ||
	    strcmp((const char *)sqlite3_column_text(st, 0), "wal") != 0) {
		r = -EIO;
		goto out;
	}
	r = exec_sql(rp->db, "PRAGMA synchronous=FULL");
	if (r == 0) {
		r = exec_sql(rp->db, schema);
	}
	if (r != 0) {
		goto out;
	}
	rc = sqlite3_prepare_v3(rp->db, sql_consume, -1, SQLITE_PREPARE_PERSISTENT, &rp->consume, NULL);
	if (rc == SQLITE_OK) {
		rc = sqlite3_prepare_v3(rp->db, sql_uses, -1, SQLITE_PREPARE_PERSISTENT, &rp->uses, NULL);
	}
	if (rc == SQLITE_OK) {
		rc = sqlite3_prepare_v3(rp->db, sql_prune, -1, SQLITE_PREPARE_PERSISTENT, &rp->prune, NULL);
	}
	if (rc != SQLITE_OK) {
		/* A file that holds another schema: not ours to use. */
		r = -EIO;
		goto out;
	}
	*ret = rp;
	rp = NULL;
	r = 0;
out:
	(void)sqlite3_finalize(st);
	if (rp != NULL) {
		(void)sqlite3_finalize(rp->consume);
		(void)sqlite3_finalize(rp->uses);
		(void)sqlite3_finalize(rp->prune);
		(void)sqlite3_close(rp->db);
		if (locked_init) {
			(void)pthread_mutex_destroy(&rp->lock);
		}
		free(rp);
	}
	return r;
}

void
replay_close(struct replay *r)
{
	if (r == NULL) {
		return;
	}
	(void)sqlite3_finalize(r->consume);
	(void)sqlite3_finalize(r->uses);
	(void)sqlite3_finalize(r->prune);
	(void)sqlite3_close(r->db);
	(void)pthread_mutex_destroy(&r->lock);
	free(r);
}

int
replay_consume(struct replay *rp, const char *id, uint32_t max_uses, int64_t exp)
{
	sqlite3_stmt *st = rp->consume;
	bool recorded = false;
	int r, rc;

	if (!id_ok(id) || max_uses == 0) {
		return -EINVAL;
	}
	(void)pthread_mutex_lock(&rp->lock);
	rc = sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	if (rc == SQLITE_OK) {
		rc = sqlite3_bind_int64(st, 2, (sqlite3_int64)max_uses);
	}
	if (rc == SQLITE_OK) {
		rc = sqlite3_bind_int64(st, 3, (sqlite3_int64)exp);
	}
	if (rc != SQLITE_OK) {
		r = map_sqlite(rc);
		goto out;
	}
	/* The statement commits when it reaches SQLITE_DONE; only then is the
	 * use durable and may the caller act on the token. */
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		recorded = true;
	}
	if (rc != SQLITE_DONE) {
		r = map_sqlite(rc);
		if (r == 0) {
			r = -EIO;
		}
		goto out;
	}
	r = recorded ? 0 : -EALREADY;
out:
	(void)sqlite3_reset(st);
	(void)sqlite3_clear_bindings(st);
	(void)pthread_mutex_unlock(&rp->lock);
	return r;
}

int
replay_uses(struct replay *rp, const char *id, uint32_t *ret)
{
	sqlite3_stmt *st = rp->uses;
	sqlite3_int64 n = 0;
	int r, rc;

	if (!id_ok(id)) {
		return -EINVAL;
	}
	(void)pthread_mutex_lock(&rp->lock);
	rc = sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	if (rc != SQLITE_OK) {
		r = map_sqlite(rc);
		goto out;
	}
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		n = sqlite3_column_int64(st, 0);
	} else if (rc != SQLITE_DONE) {
		r = map_sqlite(rc);
		goto out;
	}
	if (n < 0 || n > UINT32_MAX) {
		r = -EIO;
		goto out;
	}
	*ret = (uint32_t)n;
	r = 0;
out:
	(void)sqlite3_reset(st);
	(void)sqlite3_clear_bindings(st);
	(void)pthread_mutex_unlock(&rp->lock);
	return r;
}

int
replay_prune(struct replay *rp, int64_t now, uint64_t *ret_removed)
{
	sqlite3_stmt *st = rp->prune;
	int r, rc;

	(void)pthread_mutex_lock(&rp->lock);
	rc = sqlite3_bind_int64(st, 1, (sqlite3_int64)now);
	if (rc != SQLITE_OK) {
		r = map_sqlite(rc);
		goto out;
	}
	rc = sqlite3_step(st);
	if (rc != SQLITE_DONE) {
		r = map_sqlite(rc);
		if (r == 0) {
			r = -EIO;
		}
		goto out;
	}
	if (ret_removed != NULL) {
		*ret_removed = (uint64_t)sqlite3_changes64(rp->db);
	}
	r = 0;
out:
	(void)sqlite3_reset(st);
	(void)sqlite3_clear_bindings(st);
	(void)pthread_mutex_unlock(&rp->lock);
	return r;
}
