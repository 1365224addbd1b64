/* artifact: sealed memfd copies of boot artifacts (lib/artifact.h).
 *
 * Why a copy and not the file: a descriptor of the file itself still sees
 * every later write to it, so what attestd hashed and what the VMM reads
 * could differ. A memfd with F_SEAL_WRITE, F_SEAL_GROW and F_SEAL_SHRINK
 * cannot change at all, through any descriptor or mapping, and F_SEAL_SEAL
 * keeps anyone from taking the seals off (they cannot be removed anyway).
 * The receiver checks the seals itself (artifact_check_sealed): it does
 * not have to trust the sender. */
#include "artifact.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <unistd.h>

#define ARTIFACT_SEALS      (F_SEAL_SEAL | F_SEAL_WRITE | F_SEAL_GROW | F_SEAL_SHRINK)
#define ARTIFACT_CHUNK      ((size_t)1 << 30)   /* per copy call */
#define ARTIFACT_BUF        ((size_t)1 << 20)   /* read/write and pread fallbacks */

enum copy_method {
	COPY_RANGE,
	COPY_SENDFILE,
	COPY_READ_WRITE,
};

static int
write_all(int fd, const uint8_t *p, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, p, len);

		if (n < 0) {
			if (errno == EINTR) {
				continue;
			}
			return -errno;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Copy from the current offsets until end of file or limit bytes, with
 * the cheapest method the two file systems support: copy_file_range,
 * then sendfile, then read and write. Returns the bytes copied. */
static int
copy_fd(int in, int out, uint64_t limit, uint64_t *ret_copied)
{
	enum copy_method method = COPY_RANGE;
	uint8_t *buf = NULL;
	uint64_t copied = 0;
	int r;

	while (copied < limit) {
		uint64_t left = limit - copied;
		size_t want = left > ARTIFACT_CHUNK ? ARTIFACT_CHUNK : (size_t)left;
		ssize_t n;

		switch (method) {
		case COPY_RANGE: {
			n = copy_file_range(in, NULL, out, NULL, want, 0);
			/* Nothing copied yet: the offsets are still at 0, so
			 * falling back is safe. */
			if (n < 0 && copied == 0 && (errno == EXDEV || errno == EINVAL ||
			    errno == EOPNOTSUPP || errno == ENOSYS || errno == EBADF)) {
				method = COPY_SENDFILE;
				continue;
			}
			break;
		}
		case COPY_SENDFILE: {
			n = sendfile(out, in, NULL, want);
			if (n < 0 && copied == 0 && (errno == EINVAL || errno == ENOSYS)) {
				method = COPY_READ_WRITE;
				continue;
			}
			break;
		}
		case COPY_READ_WRITE: {
			if (buf == NULL) {
				buf = malloc(ARTIFACT_BUF);
				if (buf == NULL) {
					r = -ENOMEM;
					goto out;
				}
			}
			n = read(in, buf, want > ARTIFACT_BUF ? ARTIFACT_BUF : want);
			if (n > 0) {
				r = write_all(out, buf, (size_t)n);
				if (r < 0) {
					goto out;
				}
			}
			break;
		}
		default: {
			r = -EINVAL;
			goto out;
		}
		}
		if (n < 0) {
			if (errno == EINTR) {
				continue;
			}
			r = -errno;
			goto out;
		}
		if (n == 0) {
			break;
		}
		copied += (uint64_t)n;
	}
	*ret_copied = copied;
	r = 0;
out:
	free(buf);
	return r;
}

int
artifact_seal(const char *path, const char *label, uint64_t max_size, int *ret_fd,
    uint64_t *ret_size)
{
	struct stat st;
	uint64_t size, copied = 0;
	int in = -1, mfd = -1, r;

	/* O_NONBLOCK: a FIFO would otherwise block the open before fstat
	 * could refuse it; it changes nothing for regular files. */
	in = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK);
	if (in < 0) {
		r = -errno;
		goto out;
	}
	if (fstat(in, &st) != 0) {
		r = -errno;
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		r = -EINVAL;
		goto out;
	}
	size = (uint64_t)st.st_size;
	if (size > max_size) {
		r = -EFBIG;
		goto out;
	}
	mfd = memfd_create(label, MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (mfd < 0) {
		r = -errno;
		goto out;
	}
	/* One byte more than fstat said: a file that grows while it is being
	 * copied is noticed, and nothing copies without bound. */
	r = copy_fd(in, mfd, size + 1, &copied);
	if (r < 0) {
		goto out;
	}
	if (copied != size) {
		r = -ESTALE;   /* the file changed size while we copied it */
		goto out;
	}
	if (fcntl(mfd, F_ADD_SEALS, ARTIFACT_SEALS) != 0) {
		r = -errno;
		goto out;
	}
	if (lseek(mfd, 0, SEEK_SET) != 0) {
		r = -errno;
		goto out;
	}
	*ret_fd = mfd;
	mfd = -1;
	if (ret_size != NULL) {
		*ret_size = size;
	}
	r = 0;
out:
	if (mfd >= 0) {
		(void)close(mfd);
	}
	if (in >= 0) {
		(void)close(in);
	}
	return r;
}

int
artifact_check_sealed(int fd, uint64_t max_size, uint64_t *ret_size)
{
	struct stat st;
	int seals;

	seals = fcntl(fd, F_GET_SEALS);
	if (seals < 0) {
		/* EINVAL: not a file that supports sealing (not a memfd). */
		return errno == EINVAL ? -EPERM : -errno;
	}
	if ((seals & ARTIFACT_SEALS) != ARTIFACT_SEALS) {
		return -EPERM;
	}
	if (fstat(fd, &st) != 0) {
		return -errno;
	}
	if (!S_ISREG(st.st_mode)) {
		return -EINVAL;
	}
	if ((uint64_t)st.st_size > max_size) {
		return -EFBIG;
	}
	if (ret_size != NULL) {
		*ret_size = (uint64_t)st.st_size;
	}
	return 0;
}

/* Large preads: measured on these machines, a 1 MiB buffer hashes as fast
 * as `openssl dgst -sha256` (the copy out of the page cache costs less than
 * the page faults of a shared mapping), and pread needs no seal to be safe
 * against a file that shrinks under us. */
static int
hash_read(int fd, EVP_MD_CTX *ctx)
{
	uint8_t *buf;
	uint64_t off = 0;
	int r = 0;

	buf = malloc(ARTIFACT_BUF);
	if (buf == NULL) {
		return -ENOMEM;
	}
	for (;;) {
		ssize_t n = pread(fd, buf, ARTIFACT_BUF, (off_t)off);

		if (n < 0) {
			if (errno == EINTR) {
				continue;
			}
			r = -errno;
			break;
		}
		if (n == 0) {
			break;
		}
		if (EVP_DigestUpdate(ctx, buf, (size_t)n) != 1) {
			r = -EIO;
			break;
		}
		off += (uint64_t)n;
	}
	free(buf);
	return r;
}

int
artifact_sha256(int fd, uint8_t ret[32])
{
	EVP_MD_CTX *ctx = NULL;
	uint8_t md[32];
	unsigned int mdlen = 0;
	int r;

	ctx = EVP_MD_CTX_new();
	if (ctx == NULL) {
		return -ENOMEM;
	}
	if (EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1) {
		r = -EIO;
		goto out;
	}
	r = hash_read(fd, ctx);
	if (r < 0) {
		goto out;
	}
	if (EVP_DigestFinal_ex(ctx, md, &mdlen) != 1 || mdlen != sizeof(md)) {
		r = -EIO;
		goto out;
	}
	memcpy(ret, md, sizeof(md));
	r = 0;
out:
	EVP_MD_CTX_free(ctx);
	return r;
}
