#include "secmem.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <unistd.h>

static size_t
round_pages(size_t n)
{
	size_t pg = (size_t)sysconf(_SC_PAGESIZE);

	return (n + pg - 1) / pg * pg;
}

void *
secmem_alloc(size_t n)
{
	size_t len;
	void *p;

	if (n == 0 || n > 1024 * 1024) {
		errno = EINVAL;
		return NULL;
	}
	len = round_pages(n);
	p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED) {
		return NULL;
	}
	if (mlock(p, len) != 0 || madvise(p, len, MADV_DONTDUMP) != 0 ||
	    madvise(p, len, MADV_WIPEONFORK) != 0) {
		int saved = errno;

		(void)munmap(p, len);
		errno = saved;
		return NULL;
	}
	return p;
}

void
secmem_free(void *p, size_t n)
{
	size_t len;

	if (p == NULL) {
		return;
	}
	len = round_pages(n);
	explicit_bzero(p, len);
	(void)munlock(p, len);
	(void)munmap(p, len);
}

int
secmem_harden_process(void)
{
	struct rlimit rl = { 0, 0 };

	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0) {
		return -errno;
	}
	if (setrlimit(RLIMIT_CORE, &rl) != 0) {
		return -errno;
	}
	return 0;
}
