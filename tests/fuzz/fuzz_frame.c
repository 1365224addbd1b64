/* Fuzz target: frame_reader_feed and frame_reader_next (lib/frame.c), the
 * proxy's decoder of everything a guest sends.
 *
 * Input: byte 0 picks max, byte 1 seeds the chunking, the rest is the
 * stream. The stream is fed in pseudo-random chunks, draining after each
 * feed. Checked:
 *   - every frame taken out is a JSON object that frame_write accepts;
 *   - the incremental reader agrees, frame by frame, with frame_read on the
 *     same bytes (a differential check of the two decoders);
 *   - after -EMSGSIZE nothing more comes out. */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "frame.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct result {
	int code;       /* 1 a frame, else the error */
	char *canon;    /* the canonical dump of a frame */
};

static size_t
pick_max(uint8_t b)
{
	switch (b & 3) {
	case 0:
		return 1 + (size_t)(b >> 2);    /* tiny: 1..64 */
	case 1:
		return 256;
	case 2:
		return 4096;
	case 3:
	default:
		return FRAME_MAX;
	}
}

static char *
canon(const json_t *j)
{
	return json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
}

/* Every accepted frame must be something frame_write sends as is. */
static void
check_writable(const json_t *j)
{
	int fd = memfd_create("fuzz_frame_out", MFD_CLOEXEC);

	if (fd < 0) {
		return;
	}
	if (frame_write(fd, j) != 0) {
		abort();
	}
	close(fd);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct result *inc = NULL, *blk = NULL;
	struct frame_reader *r = NULL;
	const uint8_t *stream;
	size_t max, n, off, ninc = 0, nblk = 0, cap, i;
	uint32_t seed;
	bool broken = false;
	int fd = -1, k;

	if (size < 2) {
		return 0;
	}
	max = pick_max(data[0]);
	seed = 0x9e3779b9u ^ data[1];
	stream = data + 2;
	n = size - 2;
	/* Every frame, even a malformed one, takes at least its 4-byte header. */
	cap = n / 4 + 1;
	inc = calloc(cap, sizeof(*inc));
	blk = calloc(cap, sizeof(*blk));
	if (inc == NULL || blk == NULL) {
		abort();
	}

	r = frame_reader_new(max);
	if (r == NULL) {
		abort();
	}
	for (off = 0; off < n && !broken;) {
		size_t chunk;
		json_t *j = NULL;

		seed ^= seed << 13;
		seed ^= seed >> 17;
		seed ^= seed << 5;
		chunk = 1 + seed % 97;
		if (seed & 0x100000) {
			chunk = n - off;    /* sometimes everything at once */
		}
		if (chunk > n - off) {
			chunk = n - off;
		}
		k = frame_reader_feed(r, stream + off, chunk);
		off += chunk;
		if (k == -EMSGSIZE) {
			broken = true;
		} else if (k != 0) {
			abort();
		}
		while ((k = frame_reader_next(r, &j)) != 0) {
			if (ninc >= cap) {
				abort();
			}
			if (k == 1) {
				if (!json_is_object(j)) {
					abort();
				}
				check_writable(j);
				inc[ninc].canon = canon(j);
				json_decref(j);
				j = NULL;
			} else if (k != -EINVAL) {
				abort();
			}
			inc[ninc++].code = k;
		}
	}
	if (broken) {
		json_t *j = NULL;

		if (frame_reader_feed(r, "\0\0\0\2{}", 6) != -EMSGSIZE ||
		    frame_reader_next(r, &j) != 0) {
			abort();
		}
	}
	frame_reader_free(r);

	/* The blocking reader on the same bytes. */
	fd = memfd_create("fuzz_frame_in", MFD_CLOEXEC);
	if (fd < 0) {
		goto out;
	}
	if (n > 0 && write(fd, stream, n) != (ssize_t)n) {
		goto out;
	}
	lseek(fd, 0, SEEK_SET);
	for (;;) {
		json_t *j = NULL;

		k = frame_read(fd, max, &j);
		if (k == -EPIPE || k == -ECONNRESET) {
			if (broken) {
				abort();    /* the incremental reader saw an oversized header */
			}
			break;
		}
		if (k == -EMSGSIZE) {
			if (!broken) {
				abort();
			}
			break;
		}
		if (nblk >= cap) {
			abort();
		}
		if (k == 0) {
			blk[nblk].canon = canon(j);
			json_decref(j);
			blk[nblk++].code = 1;
		} else if (k == -EINVAL) {
			blk[nblk++].code = -EINVAL;
		} else {
			abort();
		}
	}
	if (nblk != ninc) {
		abort();
	}
	for (i = 0; i < ninc; i++) {
		if (inc[i].code != blk[i].code) {
			abort();
		}
		if (inc[i].code == 1 && (inc[i].canon == NULL || blk[i].canon == NULL ||
		    strcmp(inc[i].canon, blk[i].canon) != 0)) {
			abort();
		}
	}
out:
	for (i = 0; i < ninc; i++) {
		free(inc[i].canon);
		inc[i].canon = NULL;
	}
	for (i = 0; i < nblk; i++) {
		free(blk[i].canon);
		blk[i].canon = NULL;
	}
	free(inc);
	free(blk);
	if (fd >= 0) {
		close(fd);
	}
	return 0;
}
