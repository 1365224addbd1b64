#include "accel.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"

/* The test guest runs in 64-bit long mode (where a kernel spends its
 * time), loaded at guest physical 0x1000:
 *       xor eax, eax
 *       mov ecx, 1 << 24
 *   1:  add [0x5000], eax
 *       inc eax
 *       loop 1b
 *       mov eax, [0x5000]
 *       mov dx, 0xe9
 *       out dx, eax
 *       hlt
 * It must really execute 2^24 iterations with a memory write each and
 * report the right sum on port 0xe9 before halting, within the deadline.
 * A healthy KVM does this in tens of milliseconds; the nested KVM of our
 * CI machines starts guests and then runs them about a thousand times
 * slower (about 40 s for this loop; a kernel seems to hang while it
 * decompresses), so "an exit happened" or "a hlt ran" proves nothing. */
static const uint8_t probe_code[] = {
	0x31, 0xc0,
	0xb9, 0x00, 0x00, 0x00, 0x01,
	0x01, 0x04, 0x25, 0x00, 0x50, 0x00, 0x00,
	0xff, 0xc0,
	0xe2, 0xf5,
	0x8b, 0x04, 0x25, 0x00, 0x50, 0x00, 0x00,
	0x66, 0xba, 0xe9, 0x00,
	0xef,
	0xf4,
};

#define PROBE_ITERATIONS (UINT64_C(1) << 24)
#define PROBE_MEM_SIZE   0x200000        /* identity-mapped by one 2 MiB page */
#define PROBE_CODE_GPA   0x1000
#define PROBE_PML4_GPA   0x2000
#define PROBE_PDPT_GPA   0x3000
#define PROBE_PD_GPA     0x4000
#define PROBE_STACK_GPA  0x100000
#define PROBE_PORT       0xe9
#define PROBE_MAX_RUNS   8
#define PROBE_REAP_MS    500

/* sum of 0 .. N-1 modulo 2^32: what the guest must report. */
static uint32_t
probe_expected(void)
{
	return (uint32_t)(PROBE_ITERATIONS * (PROBE_ITERATIONS - 1) / 2);
}

struct probe_report {
	int32_t status;
	int32_t err;
};

int
accel_parse_mode(const char *s, enum accel_mode *ret)
{
	if (s == NULL) {
		return -EINVAL;
	}
	if (strcmp(s, "auto") == 0) {
		*ret = ACCEL_MODE_AUTO;
	} else if (strcmp(s, "kvm") == 0) {
		*ret = ACCEL_MODE_KVM;
	} else if (strcmp(s, "tcg") == 0) {
		*ret = ACCEL_MODE_TCG;
	} else {
		return -EINVAL;
	}
	return 0;
}

const char *
accel_name(enum accel_kind k)
{
	switch (k) {
	case ACCEL_KVM: {
		return "kvm";
	}
	case ACCEL_TCG: {
		return "tcg";
	}
	default: {
		return "unknown";
	}
	}
}

const char *
accel_probe_describe(enum accel_probe_status s)
{
	switch (s) {
	case ACCEL_PROBE_OK: {
		return "a test guest ran under KVM and halted";
	}
	case ACCEL_PROBE_NOT_RUN: {
		return "KVM was not probed";
	}
	case ACCEL_PROBE_NO_DEVICE: {
		return "there is no " ACCEL_KVM_DEVICE;
	}
	case ACCEL_PROBE_NO_ACCESS: {
		return ACCEL_KVM_DEVICE " cannot be opened";
	}
	case ACCEL_PROBE_BAD_API: {
		return "KVM reports an unexpected API version";
	}
	case ACCEL_PROBE_NO_VM: {
		return "KVM refused to create a VM";
	}
	case ACCEL_PROBE_SETUP_FAILED: {
		return "KVM refused to set up a test vCPU";
	}
	case ACCEL_PROBE_RUN_FAILED: {
		return "KVM_RUN failed for a test guest";
	}
	case ACCEL_PROBE_WRONG_EXIT: {
		return "a test guest under KVM did not compute and halt as it should";
	}
	case ACCEL_PROBE_TIMEOUT: {
		return "a test guest under KVM did not halt before the deadline (nested KVM?)";
	}
	case ACCEL_PROBE_ERROR: {
		return "the KVM probe could not be run";
	}
	default: {
		return "unknown probe result";
	}
	}
}

/* Check one KVM_EXIT_IO: an OUT of the expected sum, 4 bytes, to PROBE_PORT. */
static bool
probe_io_ok(const struct kvm_run *run, size_t run_size)
{
	uint32_t v;

	if (run->io.direction != KVM_EXIT_IO_OUT || run->io.size != 4 ||
	    run->io.port != PROBE_PORT || run->io.count != 1 ||
	    run->io.data_offset > run_size - sizeof(v)) {
		return false;
	}
	memcpy(&v, (const uint8_t *)run + run->io.data_offset, sizeof(v));
	return v == probe_expected();
}

/* Code and identity page tables (PML4 -> PDPT -> one 2 MiB page). */
static void
probe_layout(uint8_t *mem)
{
	uint64_t e;

	memcpy(mem + PROBE_CODE_GPA, probe_code, sizeof(probe_code));
	e = PROBE_PDPT_GPA | 0x3;                  /* present, writable */
	memcpy(mem + PROBE_PML4_GPA, &e, sizeof(e));
	e = PROBE_PD_GPA | 0x3;
	memcpy(mem + PROBE_PDPT_GPA, &e, sizeof(e));
	e = 0x0 | 0x83;                            /* present, writable, 2 MiB */
	memcpy(mem + PROBE_PD_GPA, &e, sizeof(e));
}

/* 64-bit mode with paging, flat segments. */
static void
probe_long_mode(struct kvm_sregs *s)
{
	struct kvm_segment seg;

	memset(&seg, 0, sizeof(seg));
	seg.base = 0;
	seg.limit = 0xffffffff;
	seg.g = 1;
	seg.present = 1;
	seg.s = 1;
	seg.dpl = 0;
	seg.selector = 1 << 3;
	seg.type = 11;                              /* code: execute, read, accessed */
	seg.l = 1;
	s->cs = seg;
	seg.selector = 2 << 3;
	seg.type = 3;                               /* data: read, write, accessed */
	seg.l = 0;
	seg.db = 1;
	s->ds = seg;
	s->es = seg;
	s->fs = seg;
	s->gs = seg;
	s->ss = seg;
	s->cr3 = PROBE_PML4_GPA;
	s->cr4 = 1u << 5;                           /* PAE */
	s->cr0 = 0x80050033;                        /* PG, AM, WP, NE, ET, MP, PE */
	s->efer = 0x500;                            /* LME, LMA */
}

/* The probe proper; runs in the child. Returns a status, the errno of the
 * failing step in *ret_err. */
static enum accel_probe_status
probe_run(const char *device, int *ret_err)
{
	struct kvm_userspace_memory_region region;
	struct kvm_sregs sregs;
	struct kvm_regs regs;
	struct kvm_run *run = MAP_FAILED;
	void *mem = MAP_FAILED;
	enum accel_probe_status st;
	bool seen_io = false;
	int kvm = -1, vm = -1, vcpu = -1, r, i;
	long run_size = 0;

	*ret_err = 0;
	kvm = open(device, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
	if (kvm < 0) {
		*ret_err = errno;
		st = errno == ENOENT ? ACCEL_PROBE_NO_DEVICE : ACCEL_PROBE_NO_ACCESS;
		goto out;
	}
	r = ioctl(kvm, KVM_GET_API_VERSION, 0);
	if (r != KVM_API_VERSION) {
		*ret_err = r < 0 ? errno : 0;
		st = ACCEL_PROBE_BAD_API;
		goto out;
	}
	vm = ioctl(kvm, KVM_CREATE_VM, 0UL);
	if (vm < 0) {
		*ret_err = errno;
		st = ACCEL_PROBE_NO_VM;
		goto out;
	}
	st = ACCEL_PROBE_SETUP_FAILED;
	mem = mmap(NULL, PROBE_MEM_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS |
	    MAP_NORESERVE, -1, 0);
	if (mem == MAP_FAILED) {
		*ret_err = errno;
		goto out;
	}
	probe_layout(mem);
	memset(&region, 0, sizeof(region));
	region.slot = 0;
	region.guest_phys_addr = 0;
	region.memory_size = PROBE_MEM_SIZE;
	region.userspace_addr = (uint64_t)(uintptr_t)mem;
	if (ioctl(vm, KVM_SET_USER_MEMORY_REGION, &region) < 0) {
		*ret_err = errno;
		goto out;
	}
	vcpu = ioctl(vm, KVM_CREATE_VCPU, 0UL);
	if (vcpu < 0) {
		*ret_err = errno;
		goto out;
	}
	run_size = ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (run_size < (long)sizeof(*run)) {
		*ret_err = run_size < 0 ? errno : EINVAL;
		goto out;
	}
	run = mmap(NULL, (size_t)run_size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu, 0);
	if (run == MAP_FAILED) {
		*ret_err = errno;
		goto out;
	}
	if (ioctl(vcpu, KVM_GET_SREGS, &sregs) < 0) {
		*ret_err = errno;
		goto out;
	}
	probe_long_mode(&sregs);
	if (ioctl(vcpu, KVM_SET_SREGS, &sregs) < 0) {
		*ret_err = errno;
		goto out;
	}
	memset(&regs, 0, sizeof(regs));
	regs.rip = PROBE_CODE_GPA;
	regs.rsp = PROBE_STACK_GPA;
	regs.rflags = 0x2;
	if (ioctl(vcpu, KVM_SET_REGS, &regs) < 0) {
		*ret_err = errno;
		goto out;
	}

	st = ACCEL_PROBE_WRONG_EXIT;
	for (i = 0; i < PROBE_MAX_RUNS; i++) {
		if (ioctl(vcpu, KVM_RUN, 0) < 0) {
			if (errno == EINTR) {
				continue;
			}
			*ret_err = errno;
			st = ACCEL_PROBE_RUN_FAILED;
			goto out;
		}
		switch (run->exit_reason) {
		case KVM_EXIT_IO: {
			if (seen_io || !probe_io_ok(run, (size_t)run_size)) {
				goto out;
			}
			seen_io = true;
			break;
		}
		case KVM_EXIT_HLT: {
			st = seen_io ? ACCEL_PROBE_OK : ACCEL_PROBE_WRONG_EXIT;
			goto out;
		}
		default: {
			goto out;
		}
		}
	}
out:
	if (run != MAP_FAILED) {
		(void)munmap(run, (size_t)run_size);
	}
	if (mem != MAP_FAILED) {
		(void)munmap(mem, PROBE_MEM_SIZE);
	}
	if (vcpu >= 0) {
		(void)close(vcpu);
	}
	if (vm >= 0) {
		(void)close(vm);
	}
	if (kvm >= 0) {
		(void)close(kvm);
	}
	return st;
}

/* Reap the probe child, waiting at most PROBE_REAP_MS: a child stuck in
 * the kernel must not hang the launcher. Returns true once reaped. */
static bool
reap_bounded(pid_t pid)
{
	uint64_t deadline = clock_mono_ms() + PROBE_REAP_MS;
	struct timespec nap = { 0, 5 * 1000 * 1000 };
	pid_t w;

	for (;;) {
		w = waitpid(pid, NULL, WNOHANG);
		if (w == pid || (w < 0 && errno != EINTR)) {
			return true;
		}
		if (clock_mono_ms() >= deadline) {
			return false;
		}
		(void)nanosleep(&nap, NULL);
	}
}

int
accel_probe_kvm(const char *device, uint32_t timeout_ms, struct accel_probe *ret)
{
	struct accel_probe res = { ACCEL_PROBE_ERROR, 0, 0 };
	struct probe_report rep;
	uint64_t start, deadline;
	int p[2] = { -1, -1 };
	pid_t pid = -1;
	bool got = false;

	if (device == NULL || timeout_ms == 0 || timeout_ms > 60000 || ret == NULL) {
		return -EINVAL;
	}
	start = clock_mono_ms();
	deadline = start + timeout_ms;
	if (pipe2(p, O_CLOEXEC) != 0) {
		res.err = errno;
		goto out;
	}
	pid = fork();
	if (pid < 0) {
		res.err = errno;
		goto out;
	}
	if (pid == 0) {
		int err = 0;

		(void)close(p[0]);
		rep.status = (int32_t)probe_run(device, &err);
		rep.err = err;
		(void)!write(p[1], &rep, sizeof(rep));
		_exit(0);
	}
	(void)close(p[1]);
	p[1] = -1;
	for (;;) {
		struct pollfd pfd = { p[0], POLLIN, 0 };
		uint64_t now = clock_mono_ms();
		ssize_t n;
		int pr;

		if (now >= deadline) {
			break;
		}
		pr = poll(&pfd, 1, (int)(deadline - now));
		if (pr < 0 && errno == EINTR) {
			continue;
		}
		if (pr <= 0) {
			break;
		}
		n = read(p[0], &rep, sizeof(rep));
		if (n < 0 && errno == EINTR) {
			continue;
		}
		got = n == (ssize_t)sizeof(rep);
		break;
	}
	if (got) {
		res.status = (enum accel_probe_status)rep.status;
		res.err = rep.err;
		if (res.status > ACCEL_PROBE_ERROR || res.status < ACCEL_PROBE_OK) {
			res.status = ACCEL_PROBE_ERROR;
		}
	} else if (clock_mono_ms() >= deadline) {
		res.status = ACCEL_PROBE_TIMEOUT;
	} else {
		res.status = ACCEL_PROBE_ERROR;  /* the child died without a word */
	}
out:
	if (pid > 0) {
		if (!got) {
			(void)kill(pid, SIGKILL);
		}
		(void)reap_bounded(pid);
	}
	if (p[0] >= 0) {
		(void)close(p[0]);
	}
	if (p[1] >= 0) {
		(void)close(p[1]);
	}
	res.elapsed_ms = (uint32_t)(clock_mono_ms() - start);
	*ret = res;
	return 0;
}

int
accel_decide(enum accel_mode mode, const struct accel_probe *probe, enum accel_kind *ret,
    const char **ret_why)
{
	enum accel_kind k;
	const char *why;

	switch (mode) {
	case ACCEL_MODE_KVM: {
		k = ACCEL_KVM;
		why = "forced by --accel kvm";
		break;
	}
	case ACCEL_MODE_TCG: {
		k = ACCEL_TCG;
		why = "forced by --accel tcg";
		break;
	}
	case ACCEL_MODE_AUTO: {
		if (probe == NULL) {
			return -EINVAL;
		}
		k = probe->status == ACCEL_PROBE_OK ? ACCEL_KVM : ACCEL_TCG;
		why = accel_probe_describe(probe->status);
		break;
	}
	default: {
		return -EINVAL;
	}
	}
	*ret = k;
	if (ret_why != NULL) {
		*ret_why = why;
	}
	return 0;
}
