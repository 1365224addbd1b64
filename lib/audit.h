/* audit: an append-only, hash-chained audit log (one canonical JSON record
 * per line, fsynced). Each record carries seq (from 0), prev (the previous
 * record's hash, 64 zeros for the first) and hash = SHA-256 of the
 * canonical record without "hash". Editing, dropping, reordering or
 * inserting a line breaks the chain, which audit_verify finds. */
#ifndef WARRANT_AUDIT_H
#define WARRANT_AUDIT_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

struct audit;

/* Open (create 0600) or continue a log: the existing chain is verified
 * first, and refused (-EBADMSG) if broken. */
int audit_open(const char *path, struct audit **ret);
void audit_close(struct audit *a);

/* Append one record: fields of rec (an object without seq/prev/hash/time)
 * plus those four; written and fsynced before returning. */
int audit_append(struct audit *a, const json_t *rec);

/* Verify a whole log; on success the number of records, on failure a
 * negative errno with the 0-based line that broke the chain. */
int audit_verify(const char *path, uint64_t *ret_records, uint64_t *ret_bad_line,
    const char **ret_reason);

/* Added with lib/audit.c (additive): */

/* One line, newline included, is at most this many bytes; a longer record
 * is refused by audit_append (-E2BIG) and "malformed" to audit_verify. */
#define AUDIT_LINE_MAX (64 * 1024)

/* audit_verify returns 0 with *ret_records, or: -EBADMSG for a broken
 * chain, -EILSEQ for a torn tail (a last line without its newline: a writer
 * died mid-line), or the errno of open/read/flock ("io_error"). On failure
 * it writes *ret_bad_line and *ret_reason ("hash_mismatch",
 * "prev_mismatch", "seq_gap", "malformed", "torn_tail", "io_error") and not
 * *ret_records. The file is read under a shared flock, as a whole-file
 * snapshot, one line (AUDIT_LINE_MAX) in memory at a time.
 *
 * audit_open and audit_append give the same -EBADMSG and -EILSEQ (and
 * append nothing); audit_append also -EBADMSG when the file became shorter
 * than this handle saw it (truncated), -E2BIG for a record over
 * AUDIT_LINE_MAX, -EINVAL for rec not an object, with a reserved key, a
 * real number or nesting over CJSON_MAX_DEPTH. Appends from any number of
 * processes are serialised by an exclusive flock; each appender verifies
 * the lines others wrote since it last looked before it extends the chain.
 * One handle is for one thread at a time.
 *
 * The chain shows edits, insertions, reordering and deletions inside the
 * log, not the loss of its last records: keep the record count or the last
 * hash elsewhere to detect truncation. */

/* audit_verify on a log held in memory, with the same answers. */
int audit_verify_buf(const char *buf, size_t len, uint64_t *ret_records,
    uint64_t *ret_bad_line, const char **ret_reason);

#endif
