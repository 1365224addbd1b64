#include "launchlog.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cjson.h"
#include "eventlog.h"
#include "fsutil.h"
#include "log.h"
#include "parse.h"

#define MAX_ARTIFACTS  3
#define MAX_RECORDS    (MAX_ARTIFACTS + 2)   /* + cmdline, config */

struct launchlog {
	char dir[PATH_MAX];
	char path[PATH_MAX];
	unsigned pcr;
	struct keyring *kr;
	enum launchlog_state state;
	char detail[LAUNCHLOG_DETAIL_MAX];
	bool logged;                   /* a first state has been logged */
	enum launchlog_state logged_state;
	char logged_detail[LAUNCHLOG_DETAIL_MAX];
	bool have_rc;
	uint32_t reset_count;
	int fd;
	/* What the file looked like after the last write or verification, and
	 * the PCR value then: a change in either means verifying again. */
	struct stat st;
	bool have_pcr;
	uint8_t seen_pcr[32];
	uint64_t n;                    /* records in the log */
	uint8_t value[32];             /* the PCR value the log implies */
	json_t *vms;                   /* vm -> {"launch_digest": hex, "config": {...}} */
};

static void
set_detail(struct launchlog *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
set_detail(struct launchlog *l, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	(void)vsnprintf(l->detail, sizeof(l->detail), fmt, ap);
	va_end(ap);
}

const char *
launchlog_state_name(enum launchlog_state s)
{
	switch (s) {
	case LAUNCHLOG_OK: {
		return "ok";
	}
	case LAUNCHLOG_INCONSISTENT: {
		return "inconsistent";
	}
	case LAUNCHLOG_UNVERIFIED: {
		return "unverified";
	}
	default: {
		return "?";
	}
	}
}

/* Each change of state (or of its reason) is logged once, never per tick. */
static void
set_state(struct launchlog *l, enum launchlog_state s)
{
	l->state = s;
	if (l->logged && l->logged_state == s && strcmp(l->logged_detail, l->detail) == 0) {
		return;
	}
	l->logged = true;
	l->logged_state = s;
	memcpy(l->logged_detail, l->detail, sizeof(l->detail));
	switch (s) {
	case LAUNCHLOG_OK: {
		log_info("event log %s: ok, %" PRIu64 " records, %zu VMs, PCR %u", l->path, l->n,
		    json_object_size(l->vms), l->pcr);
		break;
	}
	case LAUNCHLOG_INCONSISTENT: {
		log_error("event log %s: inconsistent: %s; measuring refused until the log and "
		    "PCR %u agree", l->path[0] != '\0' ? l->path : l->dir, l->detail, l->pcr);
		break;
	}
	case LAUNCHLOG_UNVERIFIED:
	default: {
		log_warn("event log %s: not verified yet: %s", l->path[0] != '\0' ? l->path : l->dir,
		    l->detail);
		break;
	}
	}
}

int
launchlog_new(const char *dir, unsigned pcr, struct keyring *kr, struct launchlog **ret)
{
	struct launchlog *l;
	size_t len = strlen(dir);

	if (len == 0 || len >= sizeof(l->dir) || dir[0] != '/' || pcr > 23) {
		return -EINVAL;
	}
	l = calloc(1, sizeof(*l));
	if (l == NULL) {
		return -ENOMEM;
	}
	l->vms = json_object();
	if (l->vms == NULL) {
		free(l);
		return -ENOMEM;
	}
	memcpy(l->dir, dir, len + 1);
	l->pcr = pcr;
	l->kr = kr;
	l->fd = -1;
	l->state = LAUNCHLOG_UNVERIFIED;
	set_detail(l, "not checked yet");
	*ret = l;
	return 0;
}

void
launchlog_free(struct launchlog *l)
{
	if (l == NULL) {
		return;
	}
	if (l->fd >= 0) {
		(void)close(l->fd);
	}
	json_decref(l->vms);
	free(l);
}

enum launchlog_state
launchlog_state(const struct launchlog *l, const char **ret_detail)
{
	if (ret_detail != NULL) {
		*ret_detail = l->state == LAUNCHLOG_OK ? "" : l->detail;
	}
	return l->state;
}

unsigned
launchlog_pcr(const struct launchlog *l)
{
	return l->pcr;
}

size_t
launchlog_vm_count(const struct launchlog *l)
{
	return json_object_size(l->vms);
}

uint64_t
launchlog_records(const struct launchlog *l)
{
	return l->n;
}

static int
read_pcr(struct launchlog *l, uint8_t ret[32])
{
	struct tpm_pcr_sel sel = { .bank = 0x000b /* TPM2_ALG_SHA256 */, .mask = 1u << l->pcr };
	uint8_t vals[24][32];
	int r;

	r = keyring_pcr_read(l->kr, &sel, vals);
	if (r < 0) {
		return r;
	}
	memcpy(ret, vals[l->pcr], 32);
	return 0;
}

static int
read_all(int fd, size_t cap, char **ret, size_t *ret_len)
{
	struct stat st;
	char *buf = NULL;
	size_t len = 0;
	int r;

	if (fstat(fd, &st) != 0) {
		return -errno;
	}
	if ((uint64_t)st.st_size > cap) {
		return -EFBIG;
	}
	buf = malloc((size_t)st.st_size + 1);
	if (buf == NULL) {
		return -ENOMEM;
	}
	while (len < (size_t)st.st_size) {
		ssize_t n = pread(fd, buf + len, (size_t)st.st_size - len, (off_t)len);

		if (n < 0) {
			if (errno == EINTR) {
				continue;
			}
			r = -errno;
			goto out;
		}
		if (n == 0) {
			break;   /* shrank meanwhile: the replay judges what is there */
		}
		len += (size_t)n;
	}
	buf[len] = '\0';
	*ret = buf;
	*ret_len = len;
	buf = NULL;
	r = 0;
out:
	free(buf);
	return r;
}

static int
register_vm(json_t *vms, const char *vm, const uint8_t digest[32], const json_t *config)
{
	char hex[65];
	json_t *e;

	format_hex(digest, 32, hex);
	e = json_pack("{s:s,s:O}", "launch_digest", hex, "config", config);
	if (e == NULL) {
		return -ENOMEM;
	}
	return json_object_set_new(vms, vm, e) == 0 ? 0 : -ENOMEM;
}

static int
replay_cb(void *ctx, const char *vm_id, const uint8_t launch_digest[32], const json_t *config)
{
	return register_vm(ctx, vm_id, launch_digest, config);
}

/* The length of the prefix of the log (in records) whose replay is value;
 * -ENOENT if none. The log has replayed cleanly already. */
static int
find_prefix(const char *buf, size_t len, const uint8_t value[32], uint64_t *ret_k,
    uint8_t **ret_digests, uint64_t *ret_n)
{
	uint8_t pcr[32], *digests = NULL;
	uint64_t n = 0, cap = 0, k = UINT64_MAX;
	size_t off = 0;
	int r;

	memset(pcr, 0, sizeof(pcr));
	if (CRYPTO_memcmp(pcr, value, 32) == 0) {
		k = 0;
	}
	while (off < len) {
		const char *nl = memchr(buf + off, '\n', len - off);
		struct eventlog_event ev;
		size_t line_len;

		if (nl == NULL) {
			r = -EINVAL;
			goto out;
		}
		line_len = (size_t)(nl - (buf + off));
		r = eventlog_parse_line(buf + off, line_len, &ev);
		if (r < 0) {
			goto out;
		}
		json_decref(ev.content);
		if (n == cap) {
			uint64_t ncap = cap == 0 ? 64 : cap * 2;
			uint8_t *p = realloc(digests, (size_t)ncap * 32);

			if (p == NULL) {
				r = -ENOMEM;
				goto out;
			}
			digests = p;
			cap = ncap;
		}
		memcpy(digests + n * 32, ev.digest, 32);
		n++;
		eventlog_extend(pcr, ev.digest);
		if (k == UINT64_MAX && CRYPTO_memcmp(pcr, value, 32) == 0) {
			k = n;
		}
		off += line_len + 1;
	}
	if (k == UINT64_MAX) {
		r = -ENOENT;
		goto out;
	}
	*ret_k = k;
	*ret_n = n;
	*ret_digests = digests;
	digests = NULL;
	r = 0;
out:
	free(digests);
	return r;
}

/* Where the last launch starts: the offset of the last "kernel" record and
 * the PCR value the records before it imply. -ENOENT without one. */
static int
last_launch(const char *buf, size_t len, size_t *ret_off, uint8_t ret_pcr[32])
{
	uint8_t pcr[32], before[32];
	size_t off = 0, start = 0;
	bool found = false;

	memset(pcr, 0, sizeof(pcr));
	while (off < len) {
		const char *nl = memchr(buf + off, '\n', len - off);
		struct eventlog_event ev;
		const char *kind;
		size_t line_len;

		if (nl == NULL) {
			return -EINVAL;
		}
		line_len = (size_t)(nl - (buf + off));
		if (eventlog_parse_line(buf + off, line_len, &ev) < 0) {
			return -EINVAL;
		}
		kind = cjson_get_str(ev.content, "event");
		if (kind != NULL && strcmp(kind, "kernel") == 0) {
			found = true;
			start = off;
			memcpy(before, pcr, 32);
		}
		json_decref(ev.content);
		eventlog_extend(pcr, ev.digest);
		off += line_len + 1;
	}
	if (!found) {
		return -ENOENT;
	}
	*ret_off = start;
	memcpy(ret_pcr, before, 32);
	return 0;
}

/* Cut the log back to len bytes, durably. */
static int
cut_log(struct launchlog *l, size_t len)
{
	if (ftruncate(l->fd, (off_t)len) != 0 || fsync(l->fd) != 0) {
		return -errno;
	}
	return fstat(l->fd, &l->st) == 0 ? 0 : -errno;
}

static void
close_log(struct launchlog *l)
{
	if (l->fd >= 0) {
		(void)close(l->fd);
	}
	l->fd = -1;
	l->have_pcr = false;
	memset(&l->st, 0, sizeof(l->st));
}

/* Open (creating) the log file of the current boot. */
static int
open_log(struct launchlog *l)
{
	struct stat st;
	int fd, n, r;

	n = snprintf(l->path, sizeof(l->path), "%s/launch-%" PRIu32 ".jsonl", l->dir,
	    l->reset_count);
	if (n < 0 || (size_t)n >= sizeof(l->path)) {
		l->path[0] = '\0';
		set_detail(l, "the event log's path is too long");
		return -ENAMETOOLONG;
	}
	r = fs_ensure_dir(l->dir, 0750);
	if (r < 0) {
		set_detail(l, "creating the folder %s: %s", l->dir, strerror(-r));
		return r;
	}
	/* Append-only for us; 0600: quotes hand it out to whoever asks. */
	fd = open(l->path, O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY |
	    O_NONBLOCK, 0600);
	if (fd < 0) {
		r = -errno;
		set_detail(l, "opening it: %s", strerror(-r));
		return r;
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		(void)close(fd);
		set_detail(l, "it is not a regular file");
		return -EINVAL;
	}
	close_log(l);
	l->fd = fd;
	return 0;
}

/* Replay the whole log, compare it with the PCR, finish an interrupted
 * extend, and take its registry. Sets the state. */
static void
verify(struct launchlog *l)
{
	const char *reason = NULL;
	uint8_t value[32], tpm[32], *digests = NULL;
	uint64_t n = 0, k = 0, m = 0, i;
	json_t *vms = NULL;
	char *buf = NULL;
	size_t len = 0;
	int r, r_pcr;

	if (l->fd < 0 && open_log(l) < 0) {
		set_state(l, LAUNCHLOG_INCONSISTENT);
		return;
	}
	r = fstat(l->fd, &l->st) == 0 ? 0 : -errno;
	/* The PCR first: a log that does not replay is not looked at again
	 * until it or the PCR changes. */
	r_pcr = read_pcr(l, tpm);
	if (r_pcr == 0) {
		l->have_pcr = true;
		memcpy(l->seen_pcr, tpm, 32);
	}
	if (r == 0) {
		r = read_all(l->fd, EVENTLOG_MAX_BYTES, &buf, &len);
	}
	if (r < 0) {
		set_detail(l, "reading it: %s", r == -EFBIG ? "larger than the replay limit" :
		    strerror(-r));
		set_state(l, LAUNCHLOG_INCONSISTENT);
		goto out;
	}
	vms = json_object();
	if (vms == NULL) {
		goto out;
	}
	/* A torn write (attestd stopped inside the write(2) of a launch) leaves
	 * a last line without its newline. Nothing of it was extended, since
	 * extends follow the fsync: cut it off (docs/event-log.md). */
	if (len > 0 && buf[len - 1] != '\n') {
		const char *nl = memrchr(buf, '\n', len);
		size_t keep = nl != NULL ? (size_t)(nl - buf) + 1 : 0;

		r = cut_log(l, keep);
		if (r < 0) {
			set_detail(l, "cutting off a torn last line: %s", strerror(-r));
			set_state(l, LAUNCHLOG_INCONSISTENT);
			goto out;
		}
		log_warn("event log %s: cut off %zu bytes of a torn last line, never extended",
		    l->path, len - keep);
		len = keep;
	}
	r = eventlog_replay(buf, len, l->pcr, value, &n, replay_cb, vms, &reason);
	if (r < 0 && reason != NULL && strcmp(reason, "incomplete_launch") == 0 && r_pcr == 0) {
		uint8_t before[32];
		size_t start = 0;

		/* Whole lines of a launch whose write was cut short: if the PCR
		 * is the value before that launch, none of it was extended. */
		if (last_launch(buf, len, &start, before) == 0 &&
		    CRYPTO_memcmp(before, tpm, 32) == 0) {
			r = cut_log(l, start);
			if (r < 0) {
				set_detail(l, "cutting off an incomplete last launch: %s", strerror(-r));
				set_state(l, LAUNCHLOG_INCONSISTENT);
				goto out;
			}
			log_warn("event log %s: cut off an incomplete last launch (%zu bytes), never "
			    "extended", l->path, len - start);
			len = start;
			json_object_clear(vms);
			reason = NULL;
			r = eventlog_replay(buf, len, l->pcr, value, &n, replay_cb, vms, &reason);
		}
	}
	if (r < 0) {
		set_detail(l, "the log does not replay: %s", reason != NULL ? reason : strerror(-r));
		set_state(l, LAUNCHLOG_INCONSISTENT);
		goto out;
	}
	if (r_pcr < 0) {
		set_detail(l, "reading PCR %u: %s", l->pcr, strerror(-r_pcr));
		set_state(l, LAUNCHLOG_UNVERIFIED);
		goto out;
	}
	if (CRYPTO_memcmp(tpm, value, 32) != 0) {
		r = find_prefix(buf, len, tpm, &k, &digests, &m);
		if (r < 0 || m != n) {
			set_detail(l, "PCR %u is not the replay of the log or of any prefix of it "
			    "(%" PRIu64 " records)", l->pcr, n);
			set_state(l, LAUNCHLOG_INCONSISTENT);
			goto out;
		}
		/* The records k..n-1 were written and fsynced, and attestd stopped
		 * before extending them: finish that now. */
		for (i = k; i < n; i++) {
			r = keyring_pcr_extend(l->kr, l->pcr, digests + i * 32);
			if (r < 0) {
				set_detail(l, "extending record %" PRIu64 " into PCR %u: %s", i, l->pcr,
				    strerror(-r));
				set_state(l, LAUNCHLOG_UNVERIFIED);
				goto out;
			}
		}
		r = read_pcr(l, tpm);
		if (r < 0 || CRYPTO_memcmp(tpm, value, 32) != 0) {
			set_detail(l, "PCR %u does not match the log after extending the missing "
			    "records", l->pcr);
			set_state(l, r < 0 ? LAUNCHLOG_UNVERIFIED : LAUNCHLOG_INCONSISTENT);
			goto out;
		}
		memcpy(l->seen_pcr, tpm, 32);
		log_warn("event log %s: extended records %" PRIu64 "..%" PRIu64 " into PCR %u, "
		    "which attestd had written but not extended before it stopped", l->path, k,
		    n - 1, l->pcr);
	}
	json_decref(l->vms);
	l->vms = vms;
	vms = NULL;
	l->n = n;
	memcpy(l->value, value, 32);
	set_detail(l, "ok");
	set_state(l, LAUNCHLOG_OK);
out:
	free(digests);
	free(buf);
	json_decref(vms);
}

static bool
same_file(const struct stat *a, const struct stat *b)
{
	return a->st_dev == b->st_dev && a->st_ino == b->st_ino && a->st_size == b->st_size &&
	    a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec;
}

/* Whether the log file or the PCR changed since the last verification.
 * A failed read of the PCR is no change: the TPM is the keyring's worry. */
static bool
changed(struct launchlog *l)
{
	struct stat st;
	uint8_t tpm[32];

	if (l->fd < 0 || lstat(l->path, &st) != 0 || !same_file(&st, &l->st)) {
		return true;
	}
	if (read_pcr(l, tpm) == 0 &&
	    (!l->have_pcr || CRYPTO_memcmp(tpm, l->seen_pcr, 32) != 0)) {
		return true;
	}
	return false;
}

void
launchlog_check(struct launchlog *l)
{
	struct stat st;
	uint32_t rc;
	int r;

	r = keyring_reset_count(l->kr, &rc);
	if (r < 0) {
		/* The TPM cannot be asked now. The keyring reports that; keep the
		 * state: nothing can be measured without the TPM anyway. */
		if (!l->have_rc) {
			set_detail(l, "the TPM's reset count cannot be read yet (%s)", strerror(-r));
			set_state(l, LAUNCHLOG_UNVERIFIED);
		}
		return;
	}
	if (!l->have_rc || rc != l->reset_count) {
		if (l->have_rc) {
			log_warn("the TPM was reset (reset count %" PRIu32 " -> %" PRIu32 "): PCR %u "
			    "starts again, in a new event log; VMs measured before are forgotten",
			    l->reset_count, rc, l->pcr);
		}
		close_log(l);
		json_object_clear(l->vms);
		l->n = 0;
		memset(l->value, 0, sizeof(l->value));
		l->reset_count = rc;
		l->have_rc = true;
		if (open_log(l) < 0) {
			set_state(l, LAUNCHLOG_INCONSISTENT);
			return;
		}
		verify(l);
		return;
	}
	if (changed(l)) {
		/* Keep the registry of a log that was consistent until the new
		 * state is known: it was verified, or written by this process. */
		if (l->state == LAUNCHLOG_OK) {
			log_warn("event log %s or PCR %u changed outside attestd: verifying again",
			    l->path, l->pcr);
		}
		if (l->fd >= 0 && (lstat(l->path, &st) != 0 || st.st_dev != l->st.st_dev ||
		    st.st_ino != l->st.st_ino)) {
			close_log(l);   /* moved aside or replaced: open what is there now */
		}
		verify(l);
	}
}

static int
write_all(int fd, const char *p, size_t len)
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

static int
new_vm_id(const json_t *vms, char ret[LAUNCHLOG_VM_ID_LEN + 1])
{
	uint8_t b[8];
	char hex[17];
	int tries;

	for (tries = 0; tries < 8; tries++) {
		if (getrandom(b, sizeof(b), 0) != (ssize_t)sizeof(b)) {
			return -EIO;
		}
		format_hex(b, sizeof(b), hex);
		(void)snprintf(ret, LAUNCHLOG_VM_ID_LEN + 1, "vm-%s", hex);
		if (json_object_get(vms, ret) == NULL) {
			return 0;
		}
	}
	return -EEXIST;
}

static json_t *
content_for(const char *vm, const struct launchlog_artifact *a, const json_t *config,
    int which)
{
	char hex[65];

	switch (which) {
	case 0: {
		format_hex(a->sha256, 32, hex);
		return json_pack("{s:s,s:s,s:s,s:I}", "event", a->kind, "vm", vm, "sha256", hex,
		    "size", (json_int_t)a->size);
	}
	case 1: {
		return json_pack("{s:s,s:s,s:O}", "event", "cmdline", "vm", vm, "cmdline",
		    json_object_get(config, "cmdline"));
	}
	case 2: {
		return json_pack("{s:s,s:s,s:O}", "event", "config", "vm", vm, "config", config);
	}
	default: {
		return NULL;
	}
	}
}

int
launchlog_record(struct launchlog *l, const struct launchlog_artifact *arts, size_t n,
    const json_t *config, char ret_vm[LAUNCHLOG_VM_ID_LEN + 1], uint8_t ret_digest[32],
    json_t **ret_events, char *detail, size_t detail_len)
{
	char vm[LAUNCHLOG_VM_ID_LEN + 1], *lines[MAX_RECORDS] = { NULL }, *buf = NULL;
	uint8_t digests[MAX_RECORDS][32], launch[32], value[32];
	size_t lens[MAX_RECORDS], total = 0, nrec = n + 2, i, off = 0;
	json_t *events = NULL;
	struct stat st;
	unsigned dlen = 0;
	int r;

	if (detail != NULL && detail_len > 0) {
		detail[0] = '\0';
	}
	if (n < 2 || n > MAX_ARTIFACTS || !json_is_string(json_object_get(config, "cmdline"))) {
		return -EINVAL;
	}
	/* Someone may have touched the file since the last check. */
	if (l->state == LAUNCHLOG_OK && changed(l)) {
		verify(l);
	}
	if (l->state != LAUNCHLOG_OK || l->fd < 0) {
		(void)snprintf(detail, detail_len, "event log %s: %s",
		    launchlog_state_name(l->state), l->detail);
		return -EAGAIN;
	}
	r = new_vm_id(l->vms, vm);
	if (r < 0) {
		(void)snprintf(detail, detail_len, "no fresh VM id: %s", strerror(-r));
		return r;
	}
	events = json_array();
	if (events == NULL) {
		return -ENOMEM;
	}
	for (i = 0; i < nrec; i++) {
		json_t *c = content_for(vm, &arts[i < n ? i : 0], config, i < n ? 0 :
		    (i == n ? 1 : 2));
		json_t *rec = NULL;

		if (c == NULL) {
			r = -ENOMEM;
			goto out;
		}
		r = eventlog_format(l->n + i, l->pcr, c, &lines[i], &lens[i], digests[i]);
		json_decref(c);
		if (r < 0) {
			(void)snprintf(detail, detail_len, "formatting the %s record: %s",
			    i < n ? arts[i].kind : i == n ? "cmdline" : "config", strerror(-r));
			goto out;
		}
		if (cjson_parse(lines[i], lens[i], EVENTLOG_LINE_MAX, &rec) < 0 ||
		    json_array_append_new(events, rec) != 0) {
			r = -ENOMEM;
			goto out;
		}
		total += lens[i] + 1;
	}
	if (fstat(l->fd, &st) != 0) {
		r = -errno;
		goto out;
	}
	if ((uint64_t)st.st_size + total > EVENTLOG_MAX_BYTES) {
		(void)snprintf(detail, detail_len, "the event log would pass %zu bytes: start a new "
		    "one only with a TPM reset (reboot)", EVENTLOG_MAX_BYTES);
		r = -ENOSPC;
		goto out;
	}
	buf = malloc(total);
	if (buf == NULL) {
		r = -ENOMEM;
		goto out;
	}
	for (i = 0; i < nrec; i++) {
		memcpy(buf + off, lines[i], lens[i]);
		buf[off + lens[i]] = '\n';
		off += lens[i] + 1;
	}
	/* One write, then fsync, then the extends: the PCR never holds a
	 * record the log does not. */
	r = write_all(l->fd, buf, total);
	if (r == 0 && fsync(l->fd) != 0) {
		r = -errno;
	}
	if (r < 0) {
		int e = r;

		/* Cut back what may have been written; if even that fails the
		 * log can no longer be trusted to match the PCR. */
		if (ftruncate(l->fd, st.st_size) != 0 || fsync(l->fd) != 0) {
			set_detail(l, "writing the log failed (%s) and it could not be cut back",
			    strerror(-e));
			set_state(l, LAUNCHLOG_INCONSISTENT);
		}
		(void)snprintf(detail, detail_len, "writing the event log: %s", strerror(-e));
		r = -EIO;
		goto out;
	}
	(void)fstat(l->fd, &l->st);
	memcpy(value, l->value, 32);
	for (i = 0; i < nrec; i++) {
		eventlog_extend(value, digests[i]);
	}
	if (EVP_Digest(digests, nrec * 32, launch, &dlen, EVP_sha256(), NULL) != 1 || dlen != 32) {
		r = -ENOMEM;
		goto out;
	}
	/* From here on the log holds the launch: register it whatever the TPM
	 * says, as a replay after a restart would. */
	l->n += nrec;
	memcpy(l->value, value, 32);
	r = register_vm(l->vms, vm, launch, config);
	if (r < 0) {
		goto out;
	}
	for (i = 0; i < nrec; i++) {
		r = keyring_pcr_extend(l->kr, l->pcr, digests[i]);
		if (r < 0) {
			(void)snprintf(detail, detail_len, "extending PCR %u: %s; the next health "
			    "check extends the rest", l->pcr, strerror(-r));
			set_detail(l, "records written but not all extended into PCR %u", l->pcr);
			l->have_pcr = false;   /* forces a verification */
			set_state(l, LAUNCHLOG_UNVERIFIED);
			r = -EAGAIN;
			goto out;
		}
	}
	l->have_pcr = true;
	memcpy(l->seen_pcr, value, 32);
	memcpy(ret_vm, vm, sizeof(vm));
	memcpy(ret_digest, launch, 32);
	*ret_events = events;
	events = NULL;
	r = 0;
out:
	for (i = 0; i < MAX_RECORDS; i++) {
		free(lines[i]);
	}
	free(buf);
	json_decref(events);
	return r;
}

int
launchlog_lookup(const struct launchlog *l, const char *vm, uint8_t ret_digest[32],
    const json_t **ret_config)
{
	const json_t *e = json_object_get(l->vms, vm);
	uint8_t d[32];

	if (e == NULL || parse_hex(cjson_get_str(e, "launch_digest"), d, sizeof(d)) < 0) {
		return -ENOENT;
	}
	memcpy(ret_digest, d, 32);
	if (ret_config != NULL) {
		*ret_config = json_object_get(e, "config");
	}
	return 0;
}

int
launchlog_text(struct launchlog *l, char **ret, size_t *ret_len)
{
	if (l->fd < 0) {
		return -EAGAIN;
	}
	return read_all(l->fd, EVENTLOG_MAX_BYTES, ret, ret_len);
}
