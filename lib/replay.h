/* replay: a durable store of consumed token ids (SQLite, WAL,
 * synchronous=FULL), so that a single-use token is honoured once even
 * across restarts and between processes sharing the file. */
#ifndef WARRANT_REPLAY_H
#define WARRANT_REPLAY_H

#include <stdint.h>

#define REPLAY_BUSY_TIMEOUT_MS 5000
#define REPLAY_ID_MAX          64

struct replay;

/* Open or create the store at path (created 0600; a symlink is refused).
 * -EIO for a file that is not a usable store. */
int replay_open(const char *path, struct replay **ret);
void replay_close(struct replay *r);

/* Record one use of id, in one transaction: 0 if fewer than max_uses had
 * been recorded before, -EALREADY (nothing recorded) once they are
 * exhausted. exp is when every token with this id has expired; the row is
 * kept at least until then (the later of the stored and the given exp).
 * -EINVAL for an empty or over-long id or max_uses 0; -EBUSY if another
 * writer held the store past the busy timeout; -EIO, -ENOSPC otherwise.
 * Any error means the use was not recorded: the caller must refuse. */
int replay_consume(struct replay *r, const char *id, uint32_t max_uses, int64_t exp);

/* How many uses of id are recorded (0 if none). */
int replay_uses(struct replay *r, const char *id, uint32_t *ret);

/* Drop the ids whose exp is before now; *ret_removed (may be NULL) gets
 * how many. Callers pass now minus whatever clock skew they allow. */
int replay_prune(struct replay *r, int64_t now, uint64_t *ret_removed);

#endif
