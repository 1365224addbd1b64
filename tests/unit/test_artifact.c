/* Unit tests for lib/artifact.c: sealed memfd copies of boot artifacts. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "artifact.h"

#define ALL_SEALS (F_SEAL_SEAL | F_SEAL_WRITE | F_SEAL_GROW | F_SEAL_SHRINK)

struct fixture {
	char dir[256];
	char path[300];
};

static void
fill(uint8_t *p, size_t n, uint32_t seed)
{
	size_t i;

	for (i = 0; i < n; i++) {
		seed = seed * 1103515245u + 12345u;
		p[i] = (uint8_t)(seed >> 16);
	}
}

static void
write_path(const char *path, const uint8_t *data, size_t n)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	size_t off = 0;

	assert_true(fd >= 0);
	while (off < n) {
		ssize_t w = write(fd, data + off, n - off);

		assert_true(w > 0);
		off += (size_t)w;
	}
	close(fd);
}

static int
setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	const char *tmp = getenv("TMPDIR");

	assert_non_null(f);
	snprintf(f->dir, sizeof(f->dir), "%s/test_artifact.XXXXXX", tmp != NULL ? tmp : "/tmp");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->path, sizeof(f->path), "%s/kernel", f->dir);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;
	char cmd[300];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
	assert_int_equal(system(cmd), 0);
	free(f);
	return 0;
}

static void
read_all(int fd, uint8_t *buf, size_t n)
{
	assert_int_equal(pread(fd, buf, n, 0), (ssize_t)n);
}

static void
test_seal_copies_and_seals(void **state)
{
	struct fixture *f = *state;
	size_t n = 3 * 1024 * 1024 + 17;
	uint8_t *data = malloc(n), *got = malloc(n);
	uint64_t size = 0, size2 = 0;
	int fd = -1, flags;
	void *p;

	assert_non_null(data);
	assert_non_null(got);
	fill(data, n, 1);
	write_path(f->path, data, n);
	assert_int_equal(artifact_seal(f->path, "kernel", n, &fd, &size), 0);
	assert_int_equal(size, n);
	assert_int_equal(fcntl(fd, F_GET_SEALS) & ALL_SEALS, ALL_SEALS);
	flags = fcntl(fd, F_GETFD);
	assert_true(flags >= 0 && (flags & FD_CLOEXEC) != 0);
	assert_int_equal(lseek(fd, 0, SEEK_CUR), 0);
	read_all(fd, got, n);
	assert_memory_equal(got, data, n);

	/* Sealed: no write, no growth, no shrinking, no writable mapping,
	 * no new seals or their removal. */
	assert_int_equal(pwrite(fd, "x", 1, 0), -1);
	assert_int_equal(errno, EPERM);
	assert_int_equal(write(fd, "x", 1), -1);
	assert_int_equal(errno, EPERM);
	assert_int_equal(pwrite(fd, "x", 1, (off_t)n), -1);
	assert_int_equal(errno, EPERM);
	assert_int_equal(ftruncate(fd, (off_t)n + 4096), -1);
	assert_int_equal(errno, EPERM);
	assert_int_equal(ftruncate(fd, 1), -1);
	assert_int_equal(errno, EPERM);
	assert_int_equal(fallocate(fd, 0, 0, (off_t)n + 4096), -1);
	assert_int_equal(errno, EPERM);
	assert_int_equal(fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, 4096), -1);
	assert_int_equal(errno, EPERM);
	p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	assert_true(p == MAP_FAILED);
	assert_int_equal(errno, EPERM);
	assert_int_equal(fcntl(fd, F_ADD_SEALS, F_SEAL_FUTURE_WRITE), -1);
	assert_int_equal(errno, EPERM);
	/* A writable descriptor reopened through /proc is refused the same. */
	{
		char proc[64];
		int w;

		snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
		w = open(proc, O_RDWR | O_CLOEXEC);
		if (w >= 0) {
			assert_int_equal(write(w, "x", 1), -1);
			assert_int_equal(errno, EPERM);
			close(w);
		}
	}
	read_all(fd, got, n);
	assert_memory_equal(got, data, n);
	assert_int_equal(artifact_check_sealed(fd, n, &size2), 0);
	assert_int_equal(size2, n);
	assert_int_equal(artifact_check_sealed(fd, n - 1, &size2), -EFBIG);
	close(fd);
	free(data);
	free(got);
}

static void
test_disk_changes_do_not_reach_the_memfd(void **state)
{
	struct fixture *f = *state;
	size_t n = 1 << 20;
	uint8_t *data = malloc(n), *other = malloc(n), *got = malloc(n);
	uint8_t d1[32], d2[32], want[32];
	uint64_t size;
	int fd = -1, wfd;

	assert_non_null(data);
	assert_non_null(other);
	assert_non_null(got);
	fill(data, n, 2);
	fill(other, n, 3);
	write_path(f->path, data, n);
	assert_int_equal(artifact_seal(f->path, "kernel", n, &fd, &size), 0);
	assert_int_equal(artifact_sha256(fd, d1), 0);

	/* Rewrite in place (same inode), then grow, then shrink, then replace
	 * the file by another one. */
	wfd = open(f->path, O_WRONLY | O_CLOEXEC);
	assert_true(wfd >= 0);
	assert_int_equal(pwrite(wfd, other, n, 0), (ssize_t)n);
	assert_int_equal(pwrite(wfd, other, 100, (off_t)n), 100);
	assert_int_equal(ftruncate(wfd, 10), 0);
	close(wfd);
	assert_int_equal(unlink(f->path), 0);
	write_path(f->path, other, n);

	read_all(fd, got, n);
	assert_memory_equal(got, data, n);
	assert_int_equal(artifact_sha256(fd, d2), 0);
	assert_memory_equal(d1, d2, 32);
	SHA256(data, n, want);
	assert_memory_equal(d2, want, 32);
	close(fd);
	free(data);
	free(other);
	free(got);
}

static void
test_sha256_matches_openssl(void **state)
{
	struct fixture *f = *state;
	static const size_t sizes[] = {
		0, 1, 55, 56, 64, 4095, 4096, (1 << 20) - 1, 1 << 20, (1 << 20) + 1,
		(5 << 20) + 12345,
	};
	uint8_t *data = malloc((5 << 20) + 12345);
	uint8_t got[32], want[32];
	size_t i;

	assert_non_null(data);
	for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		uint64_t size;
		int fd = -1, rfd;

		fill(data, sizes[i], (uint32_t)i + 10);
		write_path(f->path, data, sizes[i]);
		SHA256(data, sizes[i], want);
		assert_int_equal(artifact_seal(f->path, "initrd", sizes[i], &fd, &size), 0);
		assert_int_equal(size, sizes[i]);
		assert_int_equal(artifact_sha256(fd, got), 0);
		assert_memory_equal(got, want, 32);
		/* The offset does not matter: the hash starts at 0. */
		(void)lseek(fd, 17, SEEK_SET);
		assert_int_equal(artifact_sha256(fd, got), 0);
		assert_memory_equal(got, want, 32);
		close(fd);
		/* Any readable regular file hashes the same. */
		rfd = open(f->path, O_RDONLY | O_CLOEXEC);
		assert_true(rfd >= 0);
		assert_int_equal(artifact_sha256(rfd, got), 0);
		assert_memory_equal(got, want, 32);
		close(rfd);
	}
	/* Known answer: SHA-256("abc"). */
	write_path(f->path, (const uint8_t *)"abc", 3);
	{
		static const uint8_t abc[32] = {
			0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf, 0xea, 0x41, 0x41, 0x40, 0xde,
			0x5d, 0xae, 0x22, 0x23, 0xb0, 0x03, 0x61, 0xa3, 0x96, 0x17, 0x7a, 0x9c,
			0xb4, 0x10, 0xff, 0x61, 0xf2, 0x00, 0x15, 0xad,
		};
		uint64_t size;
		int fd = -1;

		assert_int_equal(artifact_seal(f->path, "x", 3, &fd, &size), 0);
		assert_int_equal(artifact_sha256(fd, got), 0);
		assert_memory_equal(got, abc, 32);
		close(fd);
	}
	free(data);
}

static void
test_seal_refuses(void **state)
{
	struct fixture *f = *state;
	char link[320], fifo[320], sparse[320];
	uint64_t size = 77;
	int fd = -12345, sfd;

	write_path(f->path, (const uint8_t *)"kernel", 6);
	snprintf(link, sizeof(link), "%s/link", f->dir);
	assert_int_equal(symlink("kernel", link), 0);
	assert_int_equal(artifact_seal(link, "k", 100, &fd, &size), -ELOOP);
	assert_int_equal(fd, -12345);
	assert_int_equal(size, 77);
	/* A dangling symlink is refused the same way. */
	assert_int_equal(unlink(link), 0);
	assert_int_equal(symlink("nowhere", link), 0);
	assert_int_equal(artifact_seal(link, "k", 100, &fd, &size), -ELOOP);
	assert_int_equal(artifact_seal(f->dir, "k", 100, &fd, &size), -EINVAL);
	snprintf(fifo, sizeof(fifo), "%s/fifo", f->dir);
	assert_int_equal(mkfifo(fifo, 0600), 0);
	assert_int_equal(artifact_seal(fifo, "k", 100, &fd, &size), -EINVAL);   /* no hang */
	assert_int_equal(artifact_seal("/dev/null", "k", 100, &fd, &size), -EINVAL);
	assert_int_equal(artifact_seal(f->path, "k", 5, &fd, &size), -EFBIG);
	snprintf(sparse, sizeof(sparse), "%s/sparse", f->dir);
	sfd = open(sparse, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	assert_true(sfd >= 0);
	assert_int_equal(ftruncate(sfd, (off_t)1 << 40), 0);
	close(sfd);
	assert_int_equal(artifact_seal(sparse, "k", (uint64_t)1 << 30, &fd, &size), -EFBIG);
	assert_int_equal(artifact_seal("/nonexistent/kernel", "k", 100, &fd, &size), -ENOENT);
	assert_int_equal(fd, -12345);
	assert_int_equal(size, 77);
}

static void
test_check_sealed_refuses(void **state)
{
	struct fixture *f = *state;
	uint64_t size = 77;
	int fd, pfd[2];

	/* An unsealed memfd. */
	fd = memfd_create("t", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "abc", 3), 3);
	assert_int_equal(artifact_check_sealed(fd, 100, &size), -EPERM);
	/* Partly sealed: still writable in place. */
	assert_int_equal(fcntl(fd, F_ADD_SEALS, F_SEAL_GROW | F_SEAL_SHRINK), 0);
	assert_int_equal(artifact_check_sealed(fd, 100, &size), -EPERM);
	/* Every seal but F_SEAL_SEAL: someone may still add one; refused. */
	assert_int_equal(fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE), 0);
	assert_int_equal(artifact_check_sealed(fd, 100, &size), -EPERM);
	assert_int_equal(fcntl(fd, F_ADD_SEALS, F_SEAL_SEAL), 0);
	assert_int_equal(artifact_check_sealed(fd, 2, &size), -EFBIG);
	assert_int_equal(size, 77);
	assert_int_equal(artifact_check_sealed(fd, 3, &size), 0);
	assert_int_equal(size, 3);
	close(fd);

	/* A memfd that does not allow sealing. */
	fd = memfd_create("t", MFD_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(artifact_check_sealed(fd, 100, &size), -EPERM);
	close(fd);

	/* A regular file, read-only or not. */
	write_path(f->path, (const uint8_t *)"abc", 3);
	fd = open(f->path, O_RDONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(artifact_check_sealed(fd, 100, &size), -EPERM);
	close(fd);

	/* A pipe, a closed descriptor. */
	assert_int_equal(pipe2(pfd, O_CLOEXEC), 0);
	assert_int_equal(artifact_check_sealed(pfd[0], 100, &size), -EPERM);
	close(pfd[0]);
	close(pfd[1]);
	assert_int_equal(artifact_check_sealed(pfd[0], 100, &size), -EBADF);
	assert_int_equal(size, 3);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_seal_copies_and_seals, setup, teardown),
		cmocka_unit_test_setup_teardown(test_disk_changes_do_not_reach_the_memfd, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_sha256_matches_openssl, setup, teardown),
		cmocka_unit_test_setup_teardown(test_seal_refuses, setup, teardown),
		cmocka_unit_test_setup_teardown(test_check_sealed_refuses, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
