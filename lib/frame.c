/* frame: length-prefixed JSON frames on the guest channel
 * (docs/agent-protocol.md). Linked into the static guest agent too, so it
 * depends on libc and jansson only.
 *
 * Error codes beyond the header's: frame_read returns -ECONNRESET when the
 * stream ends inside a frame, and passes on read(2)'s errno otherwise
 * (-EAGAIN for a receive timeout or a non-blocking descriptor; the stream
 * is then out of sync). frame_write returns -EINVAL for JSON that the
 * reader would refuse (not an object, reals, too deep) and write(2)'s
 * errno otherwise. */
#include "frame.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define FRAME_HDR 4
#define FRAME_DEPTH 16  /* the outer object is level 1 */
#define FRAME_FLAGS (JSON_COMPACT | JSON_SORT_KEYS)

/* A frame that the reader has decoded but the caller has not taken yet:
 * its JSON, or the error for a malformed frame. */
struct frame_item {
	struct frame_item *next;
	json_t *j;
	int err;
};

struct frame_reader {
	size_t max;
	uint8_t hdr[FRAME_HDR];
	size_t hdr_have;
	bool in_body;
	size_t body_len;
	size_t body_have;
	uint8_t *body;          /* max bytes: the only raw bytes ever held */
	bool broken;            /* a length over max was seen: out of sync */
	/* Decoded frames not taken yet: only those of bytes already fed, so
	 * a caller that drains with frame_reader_next after each feed holds
	 * no more than its own read buffer brought. */
	struct frame_item *head, *tail;
};

/* Integers only; at most FRAME_DEPTH nested objects and arrays (scalars
 * are not a level), so the recursion stops at FRAME_DEPTH + 1. */
static int
check_value(const json_t *j, int depth)
{
	const char *key;
	json_t *v;
	size_t i;

	switch (json_typeof(j)) {
	case JSON_OBJECT:
		if (depth > FRAME_DEPTH) {
			return -EINVAL;
		}
		json_object_foreach((json_t *)j, key, v) {
			if (check_value(v, depth + 1) != 0) {
				return -EINVAL;
			}
		}
		return 0;
	case JSON_ARRAY:
		if (depth > FRAME_DEPTH) {
			return -EINVAL;
		}
		json_array_foreach(j, i, v) {
			if (check_value(v, depth + 1) != 0) {
				return -EINVAL;
			}
		}
		return 0;
	case JSON_STRING:
	case JSON_INTEGER:
	case JSON_TRUE:
	case JSON_FALSE:
	case JSON_NULL:
		return 0;
	case JSON_REAL:
	default:
		return -EINVAL;
	}
}

static int
check_frame_json(const json_t *j)
{
	if (j == NULL || !json_is_object(j)) {
		return -EINVAL;
	}
	return check_value(j, 1);
}

/* One frame's body: exactly one strict JSON object, nothing after it but
 * whitespace (jansson's end-of-input check). */
static int
parse_body(const uint8_t *buf, size_t len, json_t **ret)
{
	json_error_t jerr;
	json_t *j = NULL;
	int r;

	if (len == 0 || memchr(buf, '\0', len) != NULL) {
		r = -EINVAL;
		goto out;
	}
	/* Without JSON_DECODE_ANY jansson takes only an object or an array;
	 * without JSON_ALLOW_NUL it refuses \u0000. */
	j = json_loadb((const char *)buf, len, JSON_REJECT_DUPLICATES, &jerr);
	if (j == NULL) {
		r = -EINVAL;
		goto out;
	}
	r = check_frame_json(j);
	if (r != 0) {
		goto out;
	}
	*ret = j;
	j = NULL;
out:
	json_decref(j);
	return r;
}

static uint32_t
get_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

static void
put_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static size_t
clamp_max(size_t max)
{
	return max > FRAME_MAX ? FRAME_MAX : max;
}

/* Read exactly n bytes. 0, or -EPIPE when the stream ended before the
 * first byte, -ECONNRESET when it ended after some, -errno. */
static int
read_full(int fd, uint8_t *buf, size_t n)
{
	size_t have = 0;

	while (have < n) {
		ssize_t k = read(fd, buf + have, n - have);

		if (k < 0) {
			if (errno == EINTR) {
				continue;
			}
			return -errno;
		}
		if (k == 0) {
			return have == 0 ? -EPIPE : -ECONNRESET;
		}
		have += (size_t)k;
	}
	return 0;
}

static int
write_full(int fd, const uint8_t *buf, size_t n)
{
	size_t done = 0;

	while (done < n) {
		ssize_t k = write(fd, buf + done, n - done);

		if (k < 0) {
			if (errno == EINTR) {
				continue;
			}
			return -errno;
		}
		if (k == 0) {
			return -EIO;
		}
		done += (size_t)k;
	}
	return 0;
}

int
frame_write(int fd, const json_t *j)
{
	char *s = NULL;
	uint8_t *buf = NULL;
	size_t len;
	int r;

	r = check_frame_json(j);
	if (r != 0) {
		goto out;
	}
	s = json_dumps(j, FRAME_FLAGS);
	if (s == NULL) {
		/* jansson fails on allocation, or on a string that is not
		 * UTF-8 (json_stringn_nocheck); neither is ours to send. */
		r = -ENOMEM;
		goto out;
	}
	len = strlen(s);
	if (len == 0 || len > FRAME_MAX) {
		r = -EMSGSIZE;
		goto out;
	}
	/* One buffer, one write where the descriptor allows it: a reader
	 * never sees a header without the start of its body. */
	buf = malloc(FRAME_HDR + len);
	if (buf == NULL) {
		r = -ENOMEM;
		goto out;
	}
	put_be32(buf, (uint32_t)len);
	memcpy(buf + FRAME_HDR, s, len);
	r = write_full(fd, buf, FRAME_HDR + len);
out:
	free(buf);
	free(s);
	return r;
}

int
frame_read(int fd, size_t max, json_t **ret)
{
	uint8_t hdr[FRAME_HDR];
	uint8_t *body = NULL;
	json_t *j = NULL;
	uint32_t len;
	int r;

	max = clamp_max(max);
	if (max == 0) {
		r = -EINVAL;
		goto out;
	}
	r = read_full(fd, hdr, sizeof(hdr));
	if (r != 0) {
		goto out;
	}
	len = get_be32(hdr);
	if (len > max) {
		r = -EMSGSIZE;
		goto out;
	}
	if (len == 0) {
		/* Consumed and in sync, but not a JSON object. */
		r = -EINVAL;
		goto out;
	}
	body = malloc(len);
	if (body == NULL) {
		r = -ENOMEM;
		goto out;
	}
	r = read_full(fd, body, len);
	if (r == -EPIPE) {
		r = -ECONNRESET;
	}
	if (r != 0) {
		goto out;
	}
	r = parse_body(body, len, &j);
	if (r != 0) {
		goto out;
	}
	*ret = j;
	j = NULL;
out:
	json_decref(j);
	free(body);
	return r;
}

struct frame_reader *
frame_reader_new(size_t max)
{
	struct frame_reader *r;

	max = clamp_max(max);
	if (max == 0) {
		errno = EINVAL;
		return NULL;
	}
	r = calloc(1, sizeof(*r));
	if (r == NULL) {
		return NULL;
	}
	r->body = malloc(max);
	if (r->body == NULL) {
		free(r);
		return NULL;
	}
	r->max = max;
	return r;
}

void
frame_reader_free(struct frame_reader *r)
{
	struct frame_item *it;

	if (r == NULL) {
		return;
	}
	while (r->head != NULL) {
		it = r->head;
		r->head = it->next;
		json_decref(it->j);
		free(it);
	}
	free(r->body);
	free(r);
}

static int
queue_item(struct frame_reader *r, json_t *j, int err)
{
	struct frame_item *it = calloc(1, sizeof(*it));

	if (it == NULL) {
		return -ENOMEM;
	}
	it->j = j;
	it->err = err;
	if (r->tail == NULL) {
		r->head = it;
	} else {
		r->tail->next = it;
	}
	r->tail = it;
	return 0;
}

/* A complete body: decode it now, so that the reader keeps no more than
 * one frame's raw bytes however many frames a single feed brings. */
static int
complete_frame(struct frame_reader *r, const uint8_t *body, size_t len)
{
	json_t *j = NULL;
	int perr, q;

	perr = parse_body(body, len, &j);
	q = queue_item(r, perr == 0 ? j : NULL, perr == 0 ? 0 : -EINVAL);
	if (q != 0) {
		json_decref(j);
	}
	return q;
}

int
frame_reader_feed(struct frame_reader *r, const void *buf, size_t n)
{
	const uint8_t *p = buf;
	int ret = 0;

	if (r == NULL || (buf == NULL && n > 0)) {
		ret = -EINVAL;
		goto out;
	}
	if (r->broken) {
		ret = -EMSGSIZE;
		goto out;
	}
	while (n > 0) {
		size_t take;

		if (!r->in_body) {
			uint32_t len;

			take = FRAME_HDR - r->hdr_have;
			if (take > n) {
				take = n;
			}
			memcpy(r->hdr + r->hdr_have, p, take);
			r->hdr_have += take;
			p += take;
			n -= take;
			if (r->hdr_have < FRAME_HDR) {
				break;
			}
			r->hdr_have = 0;
			len = get_be32(r->hdr);
			if (len > r->max) {
				r->broken = true;
				ret = -EMSGSIZE;
				goto out;
			}
			if (len == 0) {
				ret = queue_item(r, NULL, -EINVAL);
				if (ret != 0) {
					goto out;
				}
				continue;
			}
			r->in_body = true;
			r->body_len = len;
			r->body_have = 0;
			continue;
		}
		/* A whole body in the caller's bytes needs no copy. */
		if (r->body_have == 0 && n >= r->body_len) {
			ret = complete_frame(r, p, r->body_len);
			if (ret != 0) {
				goto out;
			}
			p += r->body_len;
			n -= r->body_len;
			r->in_body = false;
			continue;
		}
		take = r->body_len - r->body_have;
		if (take > n) {
			take = n;
		}
		memcpy(r->body + r->body_have, p, take);
		r->body_have += take;
		p += take;
		n -= take;
		if (r->body_have == r->body_len) {
			ret = complete_frame(r, r->body, r->body_len);
			if (ret != 0) {
				goto out;
			}
			r->in_body = false;
		}
	}
out:
	return ret;
}

int
frame_reader_next(struct frame_reader *r, json_t **ret)
{
	struct frame_item *it;
	int err;

	if (r == NULL) {
		return -EINVAL;
	}
	it = r->head;
	if (it == NULL) {
		return 0;
	}
	r->head = it->next;
	if (r->head == NULL) {
		r->tail = NULL;
	}
	err = it->err;
	if (err == 0) {
		*ret = it->j;
	}
	free(it);
	return err == 0 ? 1 : err;
}
