#include "measure.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "artifact.h"
#include "cjson.h"
#include "clock.h"
#include "launch.h"
#include "log.h"
#include "manifest.h"
#include "parse.h"

#define MAX_FDS        3
#define EV_LISTEN      0
#define EV_EVENTFD     1
#define EV_CONN        2     /* + slot index */
/* Room for one more descriptor than allowed, so that one too many is seen
 * and refused rather than cut off silently. */
#define CTL_FDS        (MAX_FDS + 1)

enum conn_state {
	C_FREE = 0,
	C_READ,
	C_HASH,
	C_WRITE,
};

/* What the worker thread reads and writes; the loop does not touch it
 * until done is set. */
struct job {
	int fds[MAX_FDS];
	size_t n;
	uint8_t sha256[MAX_FDS][32];
	int r;
	int efd;
	atomic_bool done;
};

struct conn {
	enum conn_state st;
	int fd;
	bool peer_known;
	uid_t uid;
	pid_t pid;
	uint8_t hdr[4];
	size_t hdr_got;
	uint32_t len;
	char *body;
	size_t got;
	int fds[MAX_FDS];
	size_t nfds;
	bool fd_error;                 /* too many, or not SCM_RIGHTS */
	int64_t deadline;              /* monotonic ms; C_READ and C_WRITE */
	size_t nart;
	uint64_t sizes[MAX_FDS];
	json_t *config;
	pthread_t thread;
	bool thread_started;
	struct job job;
	char *out;
	size_t out_len;
	size_t out_off;
};

struct measure {
	int listen_fd;
	int epfd;
	int efd;
	const struct config *cfg;
	struct keyring *kr;
	struct launchlog *ll;
	struct conn conns[MEASURE_MAX_CONNECTIONS];
};

static const char *const artifact_kinds[MAX_FDS] = { "kernel", "initrd", "rootfs" };
static const uint64_t artifact_max[MAX_FDS] = {
	MANIFEST_KERNEL_MAX, MANIFEST_INITRD_MAX, MANIFEST_ROOTFS_MAX,
};

static void
close_fds(struct conn *c)
{
	size_t i;

	for (i = 0; i < c->nfds; i++) {
		(void)close(c->fds[i]);
	}
	c->nfds = 0;
}

static void
conn_close(struct measure *m, struct conn *c)
{
	if (c->st == C_FREE) {
		return;
	}
	(void)epoll_ctl(m->epfd, EPOLL_CTL_DEL, c->fd, NULL);
	(void)close(c->fd);
	close_fds(c);
	if (c->out != NULL) {
		explicit_bzero(c->out, c->out_len);   /* it holds the launch token */
		free(c->out);
	}
	free(c->body);
	json_decref(c->config);
	memset(c, 0, sizeof(*c));
	c->fd = -1;
	c->st = C_FREE;
}

/* A framed reply: 4-byte big-endian length, then the JSON. */
static int
frame(const json_t *j, char **ret, size_t *ret_len)
{
	char *s = json_dumps(j, JSON_COMPACT), *out;
	size_t len;

	if (s == NULL) {
		return -ENOMEM;
	}
	len = strlen(s);
	if (len > LAUNCH_REPLY_MAX) {
		explicit_bzero(s, len);
		free(s);
		return -EFBIG;
	}
	out = malloc(4 + len);
	if (out == NULL) {
		explicit_bzero(s, len);
		free(s);
		return -ENOMEM;
	}
	out[0] = (char)(len >> 24);
	out[1] = (char)(len >> 16);
	out[2] = (char)(len >> 8);
	out[3] = (char)len;
	memcpy(out + 4, s, len);
	explicit_bzero(s, len);
	free(s);
	*ret = out;
	*ret_len = 4 + len;
	return 0;
}

/* Queue a reply and wait for the socket to take it. */
static void
respond(struct measure *m, struct conn *c, json_t *j)
{
	struct epoll_event ev = { .events = EPOLLOUT };
	size_t i = (size_t)(c - m->conns);

	close_fds(c);
	if (j == NULL || frame(j, &c->out, &c->out_len) < 0) {
		json_decref(j);
		conn_close(m, c);
		return;
	}
	json_decref(j);
	c->out_off = 0;
	c->st = C_WRITE;
	c->deadline = (int64_t)clock_mono_ms() + MEASURE_IO_TIMEOUT_MS;
	ev.data.u64 = EV_CONN + i;
	if (epoll_ctl(m->epfd, EPOLL_CTL_MOD, c->fd, &ev) < 0) {
		conn_close(m, c);
	}
}

static void
respond_error(struct measure *m, struct conn *c, unsigned status, const char *code,
    const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static void
respond_error(struct measure *m, struct conn *c, unsigned status, const char *code,
    const char *fmt, ...)
{
	char detail[512];
	va_list ap;

	va_start(ap, fmt);
	(void)vsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);
	if (status >= 500 || status == 403) {
		log_warn("launch socket: uid %u: %u %s: %s", (unsigned)c->uid, status, code, detail);
	}
	respond(m, c, json_pack("{s:I,s:s,s:s}", "status", (json_int_t)status, "error", code,
	    "detail", detail));
}

static void
write_some(struct measure *m, struct conn *c)
{
	while (c->out_off < c->out_len) {
		ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off,
		    MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n < 0) {
			if (errno == EINTR) {
				continue;
			}
			if (errno == EAGAIN) {
				return;
			}
			break;
		}
		c->out_off += (size_t)n;
	}
	conn_close(m, c);   /* one request per connection */
}

static void *
hash_main(void *arg)
{
	struct job *j = arg;
	uint64_t one = 1;
	size_t i;
	int r = 0;

	for (i = 0; i < j->n && r == 0; i++) {
		r = artifact_sha256(j->fds[i], j->sha256[i]);
	}
	j->r = r;
	atomic_store(&j->done, true);
	/* An eventfd write only fails when the counter would overflow, and
	 * then the loop has a wakeup pending anyway. */
	if (write(j->efd, &one, sizeof(one)) < 0) {
		return NULL;
	}
	return NULL;
}

static bool
artifacts_ok(const json_t *a, size_t *ret_n)
{
	size_t i, n = json_array_size(a);

	if (!json_is_array(a) || n < 2 || n > MAX_FDS) {
		return false;
	}
	for (i = 0; i < n; i++) {
		const char *s = json_string_value(json_array_get(a, i));

		if (s == NULL || strcmp(s, artifact_kinds[i]) != 0) {
			return false;
		}
	}
	*ret_n = n;
	return true;
}

/* The whole request is in: check everything cheap, then hash. */
static void
process(struct measure *m, struct conn *c)
{
	static const char *const keys[] = { "artifacts", "config", NULL };
	const struct config_grant *g;
	const char *bad = NULL, *detail = NULL;
	struct tpm_pcr_sel sel;
	enum launchlog_state st;
	json_t *root = NULL;
	char err[512];
	size_t i, n = 0;
	int r;

	g = c->peer_known ? config_grant_for(m->cfg, c->uid) : NULL;
	if (!config_allows(g, CONFIG_ROLE_LAUNCH, NULL)) {
		respond_error(m, c, 403, "forbidden", "role launch needed");
		return;
	}
	if (cjson_parse(c->body, c->len, LAUNCH_REQUEST_MAX, &root) < 0 || !json_is_object(root)) {
		respond_error(m, c, 400, "bad_request", "the request is not a strict JSON object "
		    "(duplicate keys, real numbers and nesting deeper than %d are refused)",
		    CJSON_MAX_DEPTH);
		goto out;
	}
	if (cjson_only_keys(root, keys, &bad) < 0) {
		respond_error(m, c, 400, "bad_request", "unknown field '%s'", bad != NULL ? bad : "?");
		goto out;
	}
	if (!artifacts_ok(json_object_get(root, "artifacts"), &n)) {
		respond_error(m, c, 400, "bad_request", "field 'artifacts' must be [\"kernel\","
		    "\"initrd\"] or [\"kernel\",\"initrd\",\"rootfs\"]");
		goto out;
	}
	if (c->fd_error || c->nfds != n) {
		respond_error(m, c, 400, "bad_descriptors", "%zu artifacts named, %zu%s descriptors "
		    "received (SCM_RIGHTS, in the order named)", n, c->nfds,
		    c->fd_error ? " or more" : "");
		goto out;
	}
	r = manifest_check_config(json_object_get(root, "config"), err, sizeof(err));
	if (r < 0) {
		respond_error(m, c, 400, "bad_request", "field 'config': %s",
		    json_object_get(root, "config") == NULL ? "is required" : err);
		goto out;
	}
	st = launchlog_state(m->ll, &detail);
	if (st != LAUNCHLOG_OK) {
		respond_error(m, c, 503, st == LAUNCHLOG_INCONSISTENT ? "event_log_inconsistent" :
		    "event_log_unverified", "event log %s: %s", launchlog_state_name(st), detail);
		goto out;
	}
	if (!keyring_minting(m->kr)) {
		respond_error(m, c, 503, "unavailable", "no launch token can be minted now (TPM "
		    "unreachable or its PCR policy violated)");
		goto out;
	}
	/* Checked at start; a keystore reloaded since could have changed. */
	if (keyring_policy_pcrs(m->kr, &sel) < 0 ||
	    (sel.mask & (1u << launchlog_pcr(m->ll))) != 0) {
		respond_error(m, c, 503, "unavailable", "the launch PCR %u is one of the root key's "
		    "policy PCRs: measuring would break the policy", launchlog_pcr(m->ll));
		goto out;
	}
	for (i = 0; i < n; i++) {
		r = artifact_check_sealed(c->fds[i], artifact_max[i], &c->sizes[i]);
		if (r == -EFBIG) {
			respond_error(m, c, 413, "too_large", "the %s is over %" PRIu64 " bytes",
			    artifact_kinds[i], artifact_max[i]);
			goto out;
		}
		if (r < 0) {
			respond_error(m, c, 400, "not_sealed", "the %s descriptor is not a memfd "
			    "sealed with " ARTIFACT_SEALS_REQUIRED_DESC " (%s)", artifact_kinds[i],
			    strerror(-r));
			goto out;
		}
	}
	c->nart = n;
	c->config = json_incref(json_object_get(root, "config"));
	memset(&c->job, 0, sizeof(c->job));
	memcpy(c->job.fds, c->fds, sizeof(c->fds));
	c->job.n = n;
	c->job.efd = m->efd;
	atomic_init(&c->job.done, false);
	/* No input is read while hashing. */
	(void)epoll_ctl(m->epfd, EPOLL_CTL_MOD, c->fd, &(struct epoll_event){
	    .events = 0, .data.u64 = EV_CONN + (uint64_t)(c - m->conns) });
	r = pthread_create(&c->thread, NULL, hash_main, &c->job);
	if (r != 0) {
		respond_error(m, c, 503, "busy", "cannot start a hashing thread: %s", strerror(r));
		goto out;
	}
	c->thread_started = true;
	c->st = C_HASH;
out:
	json_decref(root);
}

static void
read_some(struct measure *m, struct conn *c)
{
	for (;;) {
		union {
			struct cmsghdr h;
			char buf[CMSG_SPACE(sizeof(int) * CTL_FDS)];
		} ctl;
		struct iovec iov;
		struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };
		struct cmsghdr *cm;
		ssize_t n;

		if (c->hdr_got < sizeof(c->hdr)) {
			iov.iov_base = c->hdr + c->hdr_got;
			iov.iov_len = sizeof(c->hdr) - c->hdr_got;
		} else {
			iov.iov_base = c->body + c->got;
			iov.iov_len = c->len - c->got;
		}
		msg.msg_control = ctl.buf;
		msg.msg_controllen = sizeof(ctl.buf);
		n = recvmsg(c->fd, &msg, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
		if (n < 0) {
			if (errno == EINTR) {
				continue;
			}
			if (errno != EAGAIN) {
				conn_close(m, c);
			}
			return;
		}
		for (cm = CMSG_FIRSTHDR(&msg); cm != NULL; cm = CMSG_NXTHDR(&msg, cm)) {
			size_t k, cnt;

			if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS) {
				c->fd_error = true;
				continue;
			}
			cnt = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
			for (k = 0; k < cnt; k++) {
				int fd;

				memcpy(&fd, CMSG_DATA(cm) + k * sizeof(int), sizeof(fd));
				if (c->nfds < MAX_FDS) {
					c->fds[c->nfds++] = fd;
				} else {
					(void)close(fd);
					c->fd_error = true;
				}
			}
		}
		if ((msg.msg_flags & MSG_CTRUNC) != 0) {
			c->fd_error = true;   /* the kernel dropped what did not fit */
		}
		if (n == 0) {
			conn_close(m, c);     /* gone before a whole request */
			return;
		}
		if (c->hdr_got < sizeof(c->hdr)) {
			c->hdr_got += (size_t)n;
			if (c->hdr_got < sizeof(c->hdr)) {
				continue;
			}
			c->len = (uint32_t)c->hdr[0] << 24 | (uint32_t)c->hdr[1] << 16 |
			    (uint32_t)c->hdr[2] << 8 | (uint32_t)c->hdr[3];
			if (c->len == 0 || c->len > LAUNCH_REQUEST_MAX) {
				respond_error(m, c, 413, "too_large", "the request must be 1..%d bytes",
				    LAUNCH_REQUEST_MAX);
				return;
			}
			c->body = malloc(c->len);
			if (c->body == NULL) {
				conn_close(m, c);
				return;
			}
			continue;
		}
		c->got += (size_t)n;
		if (c->got == c->len) {
			process(m, c);
			return;
		}
	}
}

static void
accept_all(struct measure *m)
{
	for (;;) {
		struct epoll_event ev = { .events = EPOLLIN };
		struct ucred uc;
		socklen_t len = sizeof(uc);
		struct conn *c = NULL;
		size_t i;
		int fd;

		fd = accept4(m->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
		if (fd < 0) {
			if (errno == EINTR) {
				continue;
			}
			return;   /* EAGAIN, or a transient error such as EMFILE */
		}
		for (i = 0; i < MEASURE_MAX_CONNECTIONS; i++) {
			if (m->conns[i].st == C_FREE) {
				c = &m->conns[i];
				break;
			}
		}
		if (c == NULL) {
			static const char busy[] = "{\"status\":503,\"error\":\"busy\",\"detail\":"
			    "\"too many launches at once; try again\"}";
			char out[4 + sizeof(busy)];

			out[0] = 0;
			out[1] = 0;
			out[2] = (char)((sizeof(busy) - 1) >> 8);
			out[3] = (char)(sizeof(busy) - 1);
			memcpy(out + 4, busy, sizeof(busy) - 1);
			(void)send(fd, out, 4 + sizeof(busy) - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
			(void)close(fd);
			continue;
		}
		memset(c, 0, sizeof(*c));
		c->fd = fd;
		if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &uc, &len) == 0 && len == sizeof(uc)) {
			c->peer_known = true;
			c->uid = uc.uid;
			c->pid = uc.pid;
		}
		c->st = C_READ;
		c->deadline = (int64_t)clock_mono_ms() + MEASURE_IO_TIMEOUT_MS;
		ev.data.u64 = EV_CONN + i;
		if (epoll_ctl(m->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
			(void)close(fd);
			memset(c, 0, sizeof(*c));
			c->fd = -1;
		}
	}
}

/* The hashes are in: record, extend, mint, reply. */
static void
finish(struct measure *m, struct conn *c)
{
	struct launchlog_artifact arts[MAX_FDS];
	struct token_claims claims;
	char vm[LAUNCHLOG_VM_ID_LEN + 1], hex[65], detail[512];
	uint8_t digest[32], args[32];
	json_t *events = NULL, *reply;
	int64_t now = (int64_t)time(NULL), ttl = MEASURE_TOKEN_TTL;
	char *tok = NULL;
	size_t i;
	int r;

	(void)pthread_join(c->thread, NULL);
	c->thread_started = false;
	if (c->job.r < 0) {
		respond_error(m, c, 500, "internal", "hashing the artifacts: %s",
		    strerror(-c->job.r));
		return;
	}
	if (!keyring_minting(m->kr)) {
		respond_error(m, c, 503, "unavailable", "no launch token can be minted now (TPM "
		    "unreachable or its PCR policy violated)");
		return;
	}
	for (i = 0; i < c->nart; i++) {
		arts[i].kind = artifact_kinds[i];
		memcpy(arts[i].sha256, c->job.sha256[i], 32);
		arts[i].size = c->sizes[i];
	}
	r = launchlog_record(m->ll, arts, c->nart, c->config, vm, digest, &events, detail,
	    sizeof(detail));
	if (r < 0) {
		switch (r) {
		case -EAGAIN: {
			respond_error(m, c, 503, launchlog_state(m->ll, NULL) ==
			    LAUNCHLOG_INCONSISTENT ? "event_log_inconsistent" : "unavailable", "%s",
			    detail);
			break;
		}
		case -ENOSPC: {
			respond_error(m, c, 503, "event_log_full", "%s", detail);
			break;
		}
		case -E2BIG: {
			respond_error(m, c, 413, "too_large", "%s", detail);
			break;
		}
		default: {
			respond_error(m, c, 500, "internal", "%s", detail[0] != '\0' ? detail :
			    strerror(-r));
			break;
		}
		}
		return;
	}
	format_hex(digest, sizeof(digest), hex);
	if (cjson_sha256(c->config, args) < 0) {
		respond_error(m, c, 500, "internal", "the config has no canonical form");
		goto out;
	}
	memset(&claims, 0, sizeof(claims));
	if (ttl > m->cfg->max_ttl_seconds) {
		ttl = m->cfg->max_ttl_seconds;
	}
	r = token_new_jti(claims.jti);
	if (r < 0) {
		respond_error(m, c, 500, "internal", "a token id: %s", strerror(-r));
		goto out;
	}
	claims.iat = now;
	claims.exp = now + ttl;
	memcpy(claims.aud, "vmhost", sizeof("vmhost"));
	memcpy(claims.vm, vm, sizeof(vm));
	memcpy(claims.launch, hex, sizeof(hex));
	memcpy(claims.op, "vm.launch", sizeof("vm.launch"));
	format_hex(args, sizeof(args), claims.args);
	claims.uses = 1;
	r = keyring_mint(m->kr, now, &claims, &tok);
	if (r < 0) {
		respond_error(m, c, 503, "unavailable", "vm %s was measured (launch digest %s) but "
		    "its launch token could not be minted: %s", vm, hex, strerror(-r));
		goto out;
	}
	log_info("measured %s for uid %u as %s: launch digest %s",
	    cjson_get_str(c->config, "name"), (unsigned)c->uid, vm, hex);
	reply = json_pack("{s:i,s:s,s:s,s:s,s:O}", "status", 200, "vm", vm, "launch_digest", hex,
	    "token", tok, "events", events);
	if (reply != NULL) {
		json_t *t = json_object_get(reply, "token");

		respond(m, c, json_incref(reply));
		/* jansson's copy of the token, before the reply is freed. */
		explicit_bzero((char *)json_string_value(t), json_string_length(t));
		json_decref(reply);
	} else {
		conn_close(m, c);
	}
out:
	keyring_free_token(tok);
	json_decref(events);
}

static void
finish_done(struct measure *m)
{
	uint64_t cnt;
	size_t i;

	/* Nothing to read (EAGAIN) only means another pass took it. */
	if (read(m->efd, &cnt, sizeof(cnt)) < 0) {
		cnt = 0;
	}
	for (i = 0; i < MEASURE_MAX_CONNECTIONS; i++) {
		struct conn *c = &m->conns[i];

		if (c->st == C_HASH && atomic_load(&c->job.done)) {
			finish(m, c);
		}
	}
}

int
measure_new(int listen_fd, const struct config *cfg, struct keyring *kr,
    struct launchlog *ll, struct measure **ret)
{
	struct epoll_event ev = { .events = EPOLLIN };
	struct measure *m;
	size_t i;
	int r;

	m = calloc(1, sizeof(*m));
	if (m == NULL) {
		(void)close(listen_fd);
		return -ENOMEM;
	}
	m->listen_fd = listen_fd;
	m->cfg = cfg;
	m->kr = kr;
	m->ll = ll;
	m->efd = -1;
	for (i = 0; i < MEASURE_MAX_CONNECTIONS; i++) {
		m->conns[i].fd = -1;
	}
	m->epfd = epoll_create1(EPOLL_CLOEXEC);
	m->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (m->epfd < 0 || m->efd < 0) {
		r = -errno;
		goto fail;
	}
	ev.data.u64 = EV_LISTEN;
	if (epoll_ctl(m->epfd, EPOLL_CTL_ADD, listen_fd, &ev) < 0) {
		r = -errno;
		goto fail;
	}
	ev.data.u64 = EV_EVENTFD;
	if (epoll_ctl(m->epfd, EPOLL_CTL_ADD, m->efd, &ev) < 0) {
		r = -errno;
		goto fail;
	}
	*ret = m;
	return 0;
fail:
	measure_free(m);
	return r;
}

void
measure_free(struct measure *m)
{
	size_t i;

	if (m == NULL) {
		return;
	}
	for (i = 0; i < MEASURE_MAX_CONNECTIONS; i++) {
		struct conn *c = &m->conns[i];

		if (c->thread_started) {
			(void)pthread_join(c->thread, NULL);
			c->thread_started = false;
		}
		conn_close(m, c);
	}
	if (m->listen_fd >= 0) {
		(void)close(m->listen_fd);
	}
	if (m->efd >= 0) {
		(void)close(m->efd);
	}
	if (m->epfd >= 0) {
		(void)close(m->epfd);
	}
	free(m);
}

int
measure_fd(const struct measure *m)
{
	return m->epfd;
}

int64_t
measure_timeout_ms(const struct measure *m)
{
	int64_t now = (int64_t)clock_mono_ms(), best = -1;
	size_t i;

	for (i = 0; i < MEASURE_MAX_CONNECTIONS; i++) {
		const struct conn *c = &m->conns[i];
		int64_t t;

		if (c->st != C_READ && c->st != C_WRITE) {
			continue;
		}
		t = c->deadline > now ? c->deadline - now : 0;
		if (best < 0 || t < best) {
			best = t;
		}
	}
	return best;
}

void
measure_run(struct measure *m)
{
	struct epoll_event evs[MEASURE_MAX_CONNECTIONS + 2];
	int64_t now;
	int n, i;

	n = epoll_wait(m->epfd, evs, (int)(sizeof(evs) / sizeof(evs[0])), 0);
	for (i = 0; i < n; i++) {
		uint64_t id = evs[i].data.u64;
		struct conn *c;

		if (id == EV_LISTEN) {
			accept_all(m);
			continue;
		}
		if (id == EV_EVENTFD) {
			finish_done(m);
			continue;
		}
		if (id < EV_CONN || id - EV_CONN >= MEASURE_MAX_CONNECTIONS) {
			continue;
		}
		c = &m->conns[id - EV_CONN];
		switch (c->st) {
		case C_READ: {
			read_some(m, c);
			break;
		}
		case C_WRITE: {
			write_some(m, c);
			break;
		}
		case C_HASH:
		case C_FREE:
		default: {
			break;
		}
		}
	}
	now = (int64_t)clock_mono_ms();
	for (i = 0; i < MEASURE_MAX_CONNECTIONS; i++) {
		struct conn *c = &m->conns[i];

		if ((c->st == C_READ || c->st == C_WRITE) && now >= c->deadline) {
			conn_close(m, c);
		}
	}
}
