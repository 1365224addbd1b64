/* frame: the guest channel's framing (docs/agent-protocol.md): a 4-byte
 * big-endian length, then that many bytes of one JSON object. Shared by the
 * proxy in vmhost and by the guest agent; no allocation beyond the frame. */
#ifndef WARRANT_FRAME_H
#define WARRANT_FRAME_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#define FRAME_MAX (64 * 1024)   /* hard cap on one frame's JSON */

/* Blocking write of one frame (canonical JSON). -EMSGSIZE over FRAME_MAX. */
int frame_write(int fd, const json_t *j);

/* Blocking read of one frame. -EPIPE at a clean end of stream, -EMSGSIZE
 * for a length over max (the stream is then unusable), -EINVAL for bytes
 * that are not one JSON object (strict: duplicates, reals, depth). */
int frame_read(int fd, size_t max, json_t **ret);

/* Incremental decoding for an event loop: feed bytes as they arrive and
 * take complete frames out. */
struct frame_reader;
struct frame_reader *frame_reader_new(size_t max);
void frame_reader_free(struct frame_reader *r);
/* Append n bytes; -EMSGSIZE if a frame announces more than max. */
int frame_reader_feed(struct frame_reader *r, const void *buf, size_t n);
/* 1 and *ret when a complete frame is available, 0 when more bytes are
 * needed, negative on a frame that is not valid JSON (the frame is dropped,
 * the stream stays in sync). */
int frame_reader_next(struct frame_reader *r, json_t **ret);

#endif
