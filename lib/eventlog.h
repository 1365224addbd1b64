/* eventlog: the launch event log (docs/event-log.md), CEL-JSON style: one
 * canonical JSON record per line,
 *   {"content":{...},"content_type":"warrant","digests":[{"digest":HEX,
 *    "hashAlg":"sha256"}],"pcr":N,"recnum":N}
 * where digest = SHA-256 of the canonical JSON of content, and each record
 * is extended into the launch PCR in order. A VM's launch is the run of
 * records kernel, initrd, [rootfs], cmdline, config with one "vm" id; its
 * launch digest is SHA-256 over those records' digests, concatenated. */
#ifndef WARRANT_EVENTLOG_H
#define WARRANT_EVENTLOG_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#define EVENTLOG_LINE_MAX   (64 * 1024)
#define EVENTLOG_MAX_BYTES  ((size_t)64 << 20)

struct eventlog_event {
	uint64_t recnum;
	unsigned pcr;
	uint8_t digest[32];
	json_t *content;     /* owned; json_decref when done */
};

/* One record line (no newline) for content; also returns its digest. */
int eventlog_format(uint64_t recnum, unsigned pcr, const json_t *content, char **ret_line,
    size_t *ret_len, uint8_t ret_digest[32]);

/* Parse one line strictly: canonical form, known fields only, digest equal
 * to SHA-256 of the canonical content. */
int eventlog_parse_line(const char *line, size_t len, struct eventlog_event *ret);

/* Called once per complete VM launch found while replaying. */
typedef int (*eventlog_launch_cb)(void *ctx, const char *vm_id,
    const uint8_t launch_digest[32], const json_t *config);

/* Replay a whole log for pcr: records numbered from 0 without gaps, every
 * digest checked, every launch complete and well ordered. Returns the PCR
 * value the log implies (starting from all zeros) in ret_pcr, the number of
 * records in ret_n. -EINVAL names nothing; *ret_reason gets a short reason. */
int eventlog_replay(const char *buf, size_t len, unsigned pcr, uint8_t ret_pcr[32],
    uint64_t *ret_n, eventlog_launch_cb cb, void *ctx, const char **ret_reason);

/* The PCR value after extending each of the first n digests into zero;
 * what attestd compares with the TPM at start to finish an interrupted
 * extend. */
void eventlog_extend(uint8_t pcr[32], const uint8_t digest[32]);

#endif
