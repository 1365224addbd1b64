/* bench_measure: attestd's hashing alone, without the socket, the log or
 * the TPM. Seals FILE into a memfd with artifact_seal (what vmhost and
 * attestctl measure do), then hashes that sealed memfd with
 * artifact_sha256, the function attestd's hashing thread runs on every
 * descriptor it receives (attestd/measure.c, hash_main). Prints each
 * round, the best, and the digest so that the caller can check it against
 * `openssl dgst -sha256` of the same file. Never fails on timing.
 *
 *   bench_measure [--rounds N] FILE
 *
 * GB/s are 10^9 bytes per second. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "artifact.h"

#define MAX_ROUNDS 20

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int
usage(void)
{
	fputs("usage: bench_measure [--rounds N] FILE\n", stderr);
	return 2;
}

int
main(int argc, char **argv)
{
	const char *path = NULL;
	uint8_t md[32];
	uint64_t size = 0;
	double t0, seal_s = 0, best = 0;
	long rounds = 3;
	int fd = -1, i, r;

	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--rounds") == 0 && i + 1 < argc) {
			char *end;

			rounds = strtol(argv[++i], &end, 10);
			if (*end != '\0' || rounds < 1 || rounds > MAX_ROUNDS) {
				return usage();
			}
		} else if (argv[i][0] != '-' && path == NULL) {
			path = argv[i];
		} else {
			return usage();
		}
	}
	if (path == NULL) {
		return usage();
	}

	/* Sealing too, round by round: the first copy into fresh memory pays
	 * for faulting it in, which later rounds (and a long-running host)
	 * mostly do not. */
	for (i = 0; i < rounds; i++) {
		double s;

		if (fd >= 0) {
			(void)close(fd);
			fd = -1;
		}
		t0 = now_s();
		r = artifact_seal(path, "rootfs", UINT64_MAX, &fd, &size);
		s = now_s() - t0;
		if (r != 0) {
			fprintf(stderr, "bench_measure: cannot seal %s: %s\n", path, strerror(-r));
			return 1;
		}
		if (size == 0) {
			fprintf(stderr, "bench_measure: %s is empty\n", path);
			(void)close(fd);
			return 1;
		}
		printf("artifact_seal (copy into a sealed memfd), round %d: %.3f s = %.2f GB/s\n",
		    i + 1, s, (double)size / s / 1e9);
		if (i == 0 || s < seal_s) {
			seal_s = s;
		}
	}

	for (i = 0; i < rounds; i++) {
		double s;

		t0 = now_s();
		r = artifact_sha256(fd, md);
		s = now_s() - t0;
		if (r != 0) {
			fprintf(stderr, "bench_measure: artifact_sha256: %s\n", strerror(-r));
			(void)close(fd);
			return 1;
		}
		printf("artifact_sha256 of the sealed memfd, round %d: %.3f s = %.2f GB/s\n", i + 1, s,
		    (double)size / s / 1e9);
		if (i == 0 || s < best) {
			best = s;
		}
	}
	(void)close(fd);

	printf("RESULT measure bytes=%" PRIu64 " rounds=%ld seal_s=%.3f seal_gbps=%.2f hash_s=%.3f "
	    "hash_gbps=%.2f sha256=", size, rounds, seal_s, (double)size / seal_s / 1e9, best,
	    (double)size / best / 1e9);
	for (i = 0; i < 32; i++) {
		printf("%02x", md[i]);
	}
	printf("\n");
	return 0;
}
