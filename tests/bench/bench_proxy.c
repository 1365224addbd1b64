/* bench_proxy: what the enforcing proxy adds to an allowed call, on the
 * host side, in the same run.
 *
 *  - direct:  tools_prepare + tools_run of fs.write {"path","data"} (the
 *             tool alone, confined, as the proxy runs it);
 *  - proxied: proxy_handle of the same request frame: strict parse, the
 *             same tool work, envelope check and charge, two audit records
 *             ("allowed" before, "executed" after, each written and
 *             fsynced), the reply and its size check.
 *
 * The two alternate call by call; p50/p99 of each, and the added latency
 * as the difference of the percentiles. Then calls per second through one
 * VM's channel: proxy_serve on a socketpair (in place of QEMU's virtio
 * port socket), one client keeping 8 requests in flight, the rate limit
 * lifted to measure capacity (vmhost's deployed limit is 100 calls/s per
 * VM, bursts of 200: docs/agent-protocol.md).
 *
 * The audit log's fsync dominates on a disk; each run is repeated with the
 * log on every folder given (default: $TMPDIR, and /dev/shm when present,
 * a tmpfs where fsync costs nothing), and says which kind it was.
 *
 *   bench_proxy [CALLS [AUDIT_DIR ...]]     (default 2000 calls)
 *
 * Prints one RESULT line per audit folder; never fails on timing. */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <time.h>
#include <unistd.h>

#include "audit.h"
#include "cjson.h"
#include "envelope.h"
#include "frame.h"
#include "replay.h"
#include "token.h"
#include "verifier.h"
#include "../../vmhost/proxy.h"
#include "../../vmhost/tools.h"

#define VM_ID        "vm-bench"
#define DIGEST       "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
#define ENVELOPE     "{\"fs.write\":\"allow\",\"fs.read\":\"allow\"}"
#define ARGS         "{\"data\":\"hello, bench\\n\",\"path\":\"/bench.txt\"}"
#define REQUEST      "{\"args\":" ARGS ",\"id\":1,\"op\":\"call\",\"tool\":\"fs.write\"}"
#define WARMUP       100
#define IN_FLIGHT    8
#define TMPFS_MAGIC_ 0x01021994

static int
no_key(void *ctx, const char *aud, uint32_t gen, uint64_t epoch, struct verifier_key *ret)
{
	(void)ctx;
	(void)aud;
	(void)gen;
	(void)epoch;
	(void)ret;
	return -ENOKEY;   /* allowed calls never verify a token */
}

static uint64_t
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int
cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static double
pct_us(uint64_t *v, size_t n, double p)
{
	size_t i = (size_t)(p * (double)(n - 1) + 0.5);

	return (double)v[i] / 1000.0;
}

static void
die(const char *what, int r)
{
	fprintf(stderr, "bench_proxy: %s: %s\n", what, strerror(r < 0 ? -r : r));
	exit(1);
}

static void pathf(char *buf, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void
pathf(char *buf, size_t n, const char *fmt, ...)
{
	va_list ap;
	int k;

	va_start(ap, fmt);
	k = vsnprintf(buf, n, fmt, ap);
	va_end(ap);
	if (k < 0 || (size_t)k >= n) {
		die("a path is too long", ENAMETOOLONG);
	}
}

struct rig {
	char root[PATH_MAX];
	char ws[PATH_MAX];
	char audit_path[PATH_MAX];
	char db_path[PATH_MAX];
	struct tools *tools;
	struct audit *audit;
	struct replay *replay;
	struct verifier *v;
	struct proxy *p;
};

static void
rig_open(struct rig *g, const char *audit_dir, const struct proxy_config *extra)
{
	struct verifier_source src = { no_key, NULL, NULL };
	struct tools_config tc = { NULL, 0, 0, 0 };
	struct proxy_config pc;
	struct envelope *e = NULL;
	const char *tmp = getenv("TMPDIR");
	char err[256];
	json_t *j;
	int r;

	memset(g, 0, sizeof(*g));
	pathf(g->root, sizeof(g->root), "%s/bench-proxy.XXXXXX", tmp != NULL ? tmp : "/tmp");
	if (mkdtemp(g->root) == NULL) {
		die("mkdtemp", errno);
	}
	pathf(g->ws, sizeof(g->ws), "%s/ws", g->root);
	if (mkdir(g->ws, 0700) != 0) {
		die("mkdir", errno);
	}
	pathf(g->audit_path, sizeof(g->audit_path), "%s/bench-audit.%d.log", audit_dir,
	    (int)getpid());
	(void)unlink(g->audit_path);
	pathf(g->db_path, sizeof(g->db_path), "%s/used-tokens.db", g->root);
	tc.workspace = g->ws;
	j = json_loads(ENVELOPE, 0, NULL);
	if ((r = tools_new(&tc, &g->tools)) != 0 ||
	    (r = envelope_parse(j, &e, err, sizeof(err))) != 0 ||
	    (r = audit_open(g->audit_path, &g->audit)) != 0 ||
	    (r = replay_open(g->db_path, &g->replay)) != 0 ||
	    (r = verifier_new_with_source(&src, "proxy", &g->v)) != 0) {
		die("setting up", r);
	}
	json_decref(j);
	verifier_set_replay(g->v, g->replay);
	if (extra != NULL) {
		pc = *extra;
	} else {
		memset(&pc, 0, sizeof(pc));
	}
	pc.vm_id = VM_ID;
	pc.launch_digest = DIGEST;
	pc.envelope = e;
	pc.tools = g->tools;
	pc.audit = g->audit;
	pc.verifier = g->v;
	if ((r = proxy_new(&pc, &g->p)) != 0) {
		die("proxy_new", r);
	}
}

static void
rig_close(struct rig *g)
{
	char cmd[PATH_MAX + 16];

	proxy_free(g->p);
	verifier_free(g->v);
	replay_close(g->replay);
	audit_close(g->audit);
	tools_free(g->tools);
	(void)unlink(g->audit_path);
	pathf(cmd, sizeof(cmd), "rm -rf '%s'", g->root);
	if (system(cmd) != 0) {
		fprintf(stderr, "bench_proxy: could not remove %s\n", g->root);
	}
}

/* --- latency -------------------------------------------------------------- */

static uint64_t
one_direct(const struct rig *g, const struct tool *t, const json_t *args)
{
	struct tools_error err;
	json_t *prep = NULL, *res = NULL;
	uint64_t t0 = now_ns(), t1;
	int r;

	r = tools_prepare(t, args, &prep, &err);
	if (r == 0) {
		r = tools_run(g->tools, t, prep, NULL, &res, &err);
	}
	t1 = now_ns();
	if (r != 0) {
		die("the direct call", r);
	}
	json_decref(prep);
	json_decref(res);
	return t1 - t0;
}

static uint64_t
one_proxied(const struct rig *g, const json_t *frame)
{
	json_t *reply = NULL;
	uint64_t t0 = now_ns(), t1;
	int r;

	r = proxy_handle(g->p, frame, NULL, NULL, &reply);
	t1 = now_ns();
	if (r != 0 || !json_is_true(json_object_get(reply, "ok"))) {
		die("the proxied call was not allowed", r != 0 ? r : EPERM);
	}
	json_decref(reply);
	return t1 - t0;
}

/* --- throughput ----------------------------------------------------------- */

struct server {
	struct proxy *p;
	int fd;
	struct proxy_stats st;
};

static void *
serve_main(void *arg)
{
	struct server *s = arg;

	if (proxy_serve(s->p, s->fd, &s->st) != 0) {
		fprintf(stderr, "bench_proxy: proxy_serve failed\n");
	}
	(void)close(s->fd);
	return NULL;
}

static double
channel_rate(const char *audit_dir, size_t calls, size_t *ret_ok)
{
	struct proxy_config pc;
	struct server s;
	struct rig g;
	pthread_t th;
	size_t sent = 0, got = 0, ok = 0;
	uint64_t t0, t1;
	int sv[2];

	memset(&pc, 0, sizeof(pc));
	pc.rate_per_sec = 100000000;
	pc.rate_burst = 100000000;
	rig_open(&g, audit_dir, &pc);
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
		die("socketpair", errno);
	}
	s.p = g.p;
	s.fd = sv[0];
	if (pthread_create(&th, NULL, serve_main, &s) != 0) {
		die("pthread_create", EAGAIN);
	}
	t0 = now_ns();
	while (got < calls) {
		json_t *reply = NULL;

		while (sent < calls && sent - got < IN_FLIGHT) {
			json_t *j = json_loads(REQUEST, 0, NULL);

			(void)json_object_set_new(j, "id", json_integer((json_int_t)(sent + 1)));
			if (frame_write(sv[1], j) != 0) {
				die("frame_write", EPIPE);
			}
			json_decref(j);
			sent++;
		}
		if (frame_read(sv[1], FRAME_MAX, &reply) != 0) {
			die("frame_read", EPIPE);
		}
		if (json_is_true(json_object_get(reply, "ok"))) {
			ok++;
		}
		json_decref(reply);
		got++;
	}
	t1 = now_ns();
	(void)close(sv[1]);
	(void)pthread_join(th, NULL);
	rig_close(&g);
	*ret_ok = ok;
	return (double)calls / ((double)(t1 - t0) / 1e9);
}

/* --- a run ---------------------------------------------------------------- */

static const char *
fs_kind(const char *dir)
{
	struct statfs sf;

	if (statfs(dir, &sf) != 0) {
		return "unknown";
	}
	return sf.f_type == TMPFS_MAGIC_ ? "tmpfs" : "disk";
}

static void
run(const char *audit_dir, size_t calls)
{
	struct rig g;
	const struct tool *t = tools_find("fs.write");
	json_t *args = json_loads(ARGS, 0, NULL), *frame = json_loads(REQUEST, 0, NULL);
	uint64_t *direct = calloc(calls, sizeof(uint64_t)), *proxied = calloc(calls, sizeof(uint64_t));
	uint64_t *audit_ns = calloc(calls, sizeof(uint64_t));
	size_t i, ok = 0;
	double rate;
	const char *kind = fs_kind(audit_dir);

	if (t == NULL || args == NULL || frame == NULL || direct == NULL || proxied == NULL ||
	    audit_ns == NULL) {
		die("setting up", ENOMEM);
	}
	rig_open(&g, audit_dir, NULL);
	for (i = 0; i < WARMUP; i++) {
		(void)one_direct(&g, t, args);
		(void)one_proxied(&g, frame);
	}
	for (i = 0; i < calls; i++) {
		if (i % 2 == 0) {
			direct[i] = one_direct(&g, t, args);
			proxied[i] = one_proxied(&g, frame);
		} else {
			proxied[i] = one_proxied(&g, frame);
			direct[i] = one_direct(&g, t, args);
		}
	}
	/* The audit append alone (one record), for the breakdown. */
	for (i = 0; i < calls; i++) {
		json_t *rec = json_pack("{s:s, s:s, s:s, s:s}", "event", "allowed", "tool",
		    "fs.write", "args_sha256", DIGEST, "rule", "fs.write: allow");
		uint64_t t0 = now_ns();

		if (audit_append(g.audit, rec) != 0) {
			die("audit_append", EIO);
		}
		audit_ns[i] = now_ns() - t0;
		json_decref(rec);
	}
	rig_close(&g);
	qsort(direct, calls, sizeof(uint64_t), cmp_u64);
	qsort(proxied, calls, sizeof(uint64_t), cmp_u64);
	qsort(audit_ns, calls, sizeof(uint64_t), cmp_u64);
	rate = channel_rate(audit_dir, calls, &ok);

	printf("proxy: audit log in %s (%s); %zu allowed fs.write calls, alternating\n", audit_dir,
	    kind, calls);
	printf("  direct tool call    p50 %8.1f us   p99 %8.1f us\n", pct_us(direct, calls, 0.5),
	    pct_us(direct, calls, 0.99));
	printf("  through the proxy   p50 %8.1f us   p99 %8.1f us\n", pct_us(proxied, calls, 0.5),
	    pct_us(proxied, calls, 0.99));
	printf("  added               p50 %8.1f us   p99 %8.1f us   (target p99 < 100 us)\n",
	    pct_us(proxied, calls, 0.5) - pct_us(direct, calls, 0.5),
	    pct_us(proxied, calls, 0.99) - pct_us(direct, calls, 0.99));
	printf("  one audit record    p50 %8.1f us   p99 %8.1f us   (two per allowed call)\n",
	    pct_us(audit_ns, calls, 0.5), pct_us(audit_ns, calls, 0.99));
	printf("  channel (socketpair, 8 in flight, rate limit lifted): %.0f calls/s (%zu of %zu "
	    "ok)\n", rate, ok, calls);
	printf("RESULT proxy audit=%s calls=%zu direct_p50_us=%.1f direct_p99_us=%.1f "
	    "proxied_p50_us=%.1f proxied_p99_us=%.1f added_p50_us=%.1f added_p99_us=%.1f "
	    "audit_p50_us=%.1f audit_p99_us=%.1f channel_calls_per_s=%.0f\n", kind, calls,
	    pct_us(direct, calls, 0.5), pct_us(direct, calls, 0.99),
	    pct_us(proxied, calls, 0.5), pct_us(proxied, calls, 0.99),
	    pct_us(proxied, calls, 0.5) - pct_us(direct, calls, 0.5),
	    pct_us(proxied, calls, 0.99) - pct_us(direct, calls, 0.99),
	    pct_us(audit_ns, calls, 0.5), pct_us(audit_ns, calls, 0.99), rate);
	(void)fflush(stdout);
	json_decref(args);
	json_decref(frame);
	free(direct);
	free(proxied);
	free(audit_ns);
}

int
main(int argc, char **argv)
{
	size_t calls = 2000;
	const char *tmp = getenv("TMPDIR");
	struct stat st;
	int i;

	if (argc > 1) {
		char *end = NULL;
		unsigned long v = strtoul(argv[1], &end, 10);

		if (end == argv[1] || *end != '\0' || v < 100 || v > 1000000) {
			fprintf(stderr, "usage: bench_proxy [CALLS (100..1000000) [AUDIT_DIR ...]]\n");
			return 2;
		}
		calls = v;
	}
	if (argc > 2) {
		for (i = 2; i < argc; i++) {
			run(argv[i], calls);
		}
		return 0;
	}
	run(tmp != NULL ? tmp : "/tmp", calls);
	if (stat("/dev/shm", &st) == 0 && S_ISDIR(st.st_mode)) {
		run("/dev/shm", calls);
	}
	return 0;
}
