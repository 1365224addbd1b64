/* Unit tests for vmhost/approversink.c: the gate sink for the approver
 * service, against a small HTTP server on a unix socket that plays the
 * approver (approve, deny, expire, fail, cancel, time out, a malformed
 * reply, a refused submission) and the constructor's checks. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <gnutls/gnutls.h>
#include <limits.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "cjson.h"
#include "parse.h"
#include "../../vmhost/gate.h"

#define DIGEST "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"

/* What the fake approver does; guarded by mu. */
struct fake {
	pthread_mutex_t mu;
	unsigned submit_status;
	const char *state;          /* after `polls_pending` pending replies */
	const char *reason;
	unsigned polls_pending;     /* UINT32_MAX: pending forever */
	bool malformed;
	unsigned polls;
	unsigned pickups;
	unsigned deletes;
	json_t *submitted;
	char last_get[256];
};

struct fx {
	char root[PATH_MAX];
	char sock[PATH_MAX + 16];
	struct MHD_Daemon *d;
	struct fake fk;
	struct gate *g;
	json_t *args;
	struct gate_request rq;
};

struct body {
	char buf[8192];
	size_t len;
};

static enum MHD_Result
reply(struct MHD_Connection *mc, unsigned status, const char *text)
{
	struct MHD_Response *r = MHD_create_response_from_buffer(strlen(text), (void *)text,
	    MHD_RESPMEM_MUST_COPY);
	enum MHD_Result ret = MHD_queue_response(mc, status, r);

	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result
handler(void *cls, struct MHD_Connection *mc, const char *url, const char *method,
    const char *version, const char *data, size_t *size, void **req)
{
	struct fake *fk = cls;
	struct body *b = *req;
	char out[512];

	(void)version;
	if (b == NULL) {
		b = calloc(1, sizeof(*b));
		*req = b;
		return MHD_YES;
	}
	if (*size > 0) {
		if (b->len + *size < sizeof(b->buf)) {
			memcpy(b->buf + b->len, data, *size);
			b->len += *size;
		}
		*size = 0;
		return MHD_YES;
	}
	pthread_mutex_lock(&fk->mu);
	if (strcmp(method, "POST") == 0 && strcmp(url, "/api/v1/requests") == 0) {
		unsigned st = fk->submit_status;

		json_decref(fk->submitted);
		fk->submitted = json_loadb(b->buf, b->len, 0, NULL);
		pthread_mutex_unlock(&fk->mu);
		return reply(mc, st, st == 201 ? "{\"id\":\"x\",\"state\":\"pending\"}" :
		    "{\"error\":\"conflict\",\"detail\":\"no\"}");
	}
	if (strcmp(method, "GET") == 0) {
		const char *w = MHD_lookup_connection_value(mc, MHD_GET_ARGUMENT_KIND, "wait");
		bool pending;

		(void)snprintf(fk->last_get, sizeof(fk->last_get), "%s?wait=%s", url,
		    w != NULL ? w : "");
		fk->polls++;
		pending = fk->polls <= fk->polls_pending;
		if (fk->malformed) {
			pthread_mutex_unlock(&fk->mu);
			return reply(mc, 200, "{\"state\":");
		}
		(void)snprintf(out, sizeof(out), "{\"id\":\"x\",\"state\":\"%s\",\"reason\":\"%s\"}",
		    pending ? "pending" : fk->state, pending ? "" : fk->reason);
		pthread_mutex_unlock(&fk->mu);
		if (pending) {
			usleep(100 * 1000);   /* a short long poll */
		}
		return reply(mc, 200, out);
	}
	if (strcmp(method, "POST") == 0 && strstr(url, "/token") != NULL) {
		unsigned n = ++fk->pickups;

		pthread_mutex_unlock(&fk->mu);
		return n == 1 ? reply(mc, 200, "{\"token\":\"w1.the-token\"}") :
		    reply(mc, 410, "{\"error\":\"picked_up\",\"detail\":\"\"}");
	}
	if (strcmp(method, "DELETE") == 0) {
		fk->deletes++;
		pthread_mutex_unlock(&fk->mu);
		return reply(mc, 200, "{\"id\":\"x\",\"state\":\"cancelled\",\"reason\":\"\"}");
	}
	pthread_mutex_unlock(&fk->mu);
	return reply(mc, 404, "{\"error\":\"not_found\",\"detail\":\"\"}");
}

static void
completed(void *cls, struct MHD_Connection *mc, void **req, enum MHD_RequestTerminationCode toe)
{
	(void)cls;
	(void)mc;
	(void)toe;
	free(*req);
	*req = NULL;
}

static int
setup(void **state)
{
	const char *tmp = getenv("TMPDIR");
	struct fx *f = calloc(1, sizeof(*f));
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd;

	assert_non_null(f);
	(void)snprintf(f->root, sizeof(f->root), "%s/test-apsink.XXXXXX", tmp != NULL ? tmp : "/tmp");
	assert_non_null(mkdtemp(f->root));
	(void)snprintf(f->sock, sizeof(f->sock), "%s/api.sock", f->root);
	assert_true(strlen(f->sock) < sizeof(sa.sun_path));
	memcpy(sa.sun_path, f->sock, strlen(f->sock) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(fd, 16), 0);
	pthread_mutex_init(&f->fk.mu, NULL);
	f->fk.submit_status = 201;
	f->fk.state = "approved";
	f->fk.reason = "";
	f->fk.polls_pending = 1;
	f->d = MHD_start_daemon(MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD,
	    0, NULL, NULL, handler, &f->fk, MHD_OPTION_LISTEN_SOCKET, fd,
	    MHD_OPTION_NOTIFY_COMPLETED, completed, NULL, MHD_OPTION_END);
	assert_non_null(f->d);
	assert_int_equal(gate_approver_new(f->sock, NULL, NULL, NULL, "proxy", "alice", &f->g), 0);
	f->args = json_pack("{s:s, s:s}", "path", "/notes.txt", "data", "hi");
	assert_int_equal(gate_new_id(f->rq.id), 0);
	f->rq.vm = "vm-1";
	f->rq.launch_digest = DIGEST;
	f->rq.op = "fs.write";
	f->rq.args = f->args;
	memcpy(f->rq.args_sha256, DIGEST, 65);
	f->rq.reason = "save\nthe notes";
	f->rq.requested_ttl = 300;
	f->rq.created = 1768442400;
	f->rq.expires = 1768443000;
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;
	char cmd[PATH_MAX + 16];

	gate_free(f->g);
	MHD_stop_daemon(f->d);
	json_decref(f->args);
	json_decref(f->fk.submitted);
	(void)snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->root);
	assert_int_equal(system(cmd), 0);
	free(f);
	return 0;
}

static void
test_approved(void **state)
{
	struct fx *f = *state;
	char *tok = NULL, *why = NULL;
	json_t *s;

	assert_int_equal(gate_submit(f->g, &f->rq), 0);
	s = f->fk.submitted;
	assert_non_null(s);
	assert_string_equal(cjson_get_str(s, "id"), f->rq.id);
	assert_string_equal(cjson_get_str(s, "aud"), "proxy");
	assert_string_equal(cjson_get_str(s, "owner"), "alice");
	assert_string_equal(cjson_get_str(s, "vm"), "vm-1");
	assert_string_equal(cjson_get_str(s, "args_sha256"), DIGEST);
	/* The reason is shown to people: its control characters are gone. */
	assert_string_equal(cjson_get_str(s, "reason"), "save the notes");
	assert_int_equal(json_integer_value(json_object_get(s, "expires")), 1768443000);
	assert_int_equal(json_integer_value(json_object_get(s, "requested_ttl")), 300);
	assert_true(json_is_object(json_object_get(s, "args")));
	assert_int_equal(gate_wait(f->g, f->rq.id, 10000, &tok, &why), 0);
	assert_string_equal(tok, "w1.the-token");
	assert_int_equal(f->fk.polls, 2);
	assert_int_equal(f->fk.pickups, 1);
	assert_non_null(strstr(f->fk.last_get, f->rq.id));
	assert_non_null(strstr(f->fk.last_get, "?wait=5"));
	free(tok);
	gate_done(f->g, f->rq.id);
	assert_int_equal(f->fk.deletes, 1);
}

static void
test_denied_expired_failed_cancelled(void **state)
{
	static const struct {
		const char *state, *reason, *want;
	} cases[] = {
		{ "denied", "not today", "denied: not today" },
		{ "expired", "", "the approval request expired" },
		{ "failed", "attestd refused", "the approval failed: attestd refused" },
		{ "cancelled", "", "the approval request was cancelled" },
	};
	struct fx *f = *state;
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *tok = NULL, *why = NULL;

		f->fk.polls = 0;
		f->fk.polls_pending = 0;
		f->fk.state = cases[i].state;
		f->fk.reason = cases[i].reason;
		assert_int_equal(gate_wait(f->g, f->rq.id, 10000, &tok, &why), -EACCES);
		assert_null(tok);
		assert_non_null(why);
		assert_string_equal(why, cases[i].want);
		free(why);
	}
	assert_int_equal(f->fk.pickups, 0);
}

static void
test_picked_up_before(void **state)
{
	struct fx *f = *state;
	char *tok = NULL, *why = NULL;

	f->fk.polls_pending = 0;
	f->fk.pickups = 1;
	assert_int_equal(gate_wait(f->g, f->rq.id, 10000, &tok, &why), -EACCES);
	assert_null(tok);
	assert_non_null(strstr(why, "picked up"));
	free(why);
}

static void
test_timeout(void **state)
{
	struct fx *f = *state;
	char *tok = NULL, *why = NULL;
	struct timespec a, b;

	f->fk.polls_pending = UINT32_MAX;
	clock_gettime(CLOCK_MONOTONIC, &a);
	assert_int_equal(gate_wait(f->g, f->rq.id, 1500, &tok, &why), -ETIMEDOUT);
	clock_gettime(CLOCK_MONOTONIC, &b);
	assert_true(b.tv_sec - a.tv_sec < 4);
	assert_true(f->fk.polls >= 2);
}

struct canceller {
	struct gate *g;
};

static void *
cancel_later(void *arg)
{
	struct canceller *c = arg;

	usleep(300 * 1000);
	gate_cancel(c->g);
	return NULL;
}

static void
test_cancel(void **state)
{
	struct fx *f = *state;
	struct canceller c = { f->g };
	char *tok = NULL, *why = NULL;
	struct timespec a, b;
	pthread_t t;

	f->fk.polls_pending = UINT32_MAX;
	clock_gettime(CLOCK_MONOTONIC, &a);
	assert_int_equal(pthread_create(&t, NULL, cancel_later, &c), 0);
	assert_int_equal(gate_wait(f->g, f->rq.id, 60000, &tok, &why), -ECANCELED);
	clock_gettime(CLOCK_MONOTONIC, &b);
	pthread_join(t, NULL);
	/* Seen at the next poll, not at the deadline. */
	assert_true(b.tv_sec - a.tv_sec < 7);
	gate_done(f->g, f->rq.id);
	assert_int_equal(f->fk.deletes, 1);
}

static void
test_malformed_and_refused(void **state)
{
	struct fx *f = *state;
	char *tok = NULL, *why = NULL;

	f->fk.malformed = true;
	assert_int_equal(gate_wait(f->g, f->rq.id, 5000, &tok, &why), -EPROTO);
	assert_null(tok);
	assert_null(why);
	f->fk.submit_status = 409;
	assert_int_equal(gate_submit(f->g, &f->rq), -EEXIST);
	f->fk.submit_status = 400;
	assert_int_equal(gate_submit(f->g, &f->rq), -EINVAL);
}

static void
test_unreachable(void **state)
{
	struct fx *f = *state;
	struct gate *g = NULL;
	char path[PATH_MAX + 16], *tok = NULL, *why = NULL;

	(void)snprintf(path, sizeof(path), "%s/nobody.sock", f->root);
	assert_int_equal(gate_approver_new(path, NULL, NULL, NULL, "proxy", NULL, &g), 0);
	assert_true(gate_submit(g, &f->rq) < 0);
	/* Waiting rides out an approver that is away, until the deadline. */
	assert_int_equal(gate_wait(g, f->rq.id, 1200, &tok, &why), -ETIMEDOUT);
	gate_free(g);
}

static void
test_new_checks(void **state)
{
	struct fx *f = *state;
	struct gate *g = NULL;
	char cert[PATH_MAX + 16];
	FILE *fp;

	assert_int_equal(gate_approver_new("relative.sock", NULL, NULL, NULL, "proxy", NULL, &g),
	    -EINVAL);
	assert_int_equal(gate_approver_new("http://host:1", NULL, NULL, NULL, "proxy", NULL, &g),
	    -EINVAL);
	assert_int_equal(gate_approver_new("https://", NULL, NULL, NULL, "proxy", NULL, &g),
	    -EINVAL);
	assert_int_equal(gate_approver_new("https://host:1", NULL, NULL, NULL, "proxy", NULL, &g),
	    -ENOENT);
	assert_int_equal(gate_approver_new(f->sock, NULL, "/c", "/k", "proxy", NULL, &g), -EINVAL);
	assert_int_equal(gate_approver_new(f->sock, NULL, NULL, NULL, "bad aud", NULL, &g), -EINVAL);
	assert_int_equal(gate_approver_new(f->sock, NULL, NULL, NULL, "proxy", "bad owner", &g),
	    -EINVAL);
	(void)snprintf(cert, sizeof(cert), "%s/cert.pem", f->root);
	fp = fopen(cert, "we");
	assert_non_null(fp);
	fclose(fp);
	assert_int_equal(gate_approver_new("https://host:1", "/nonexistent", cert, cert, "proxy",
	    NULL, &g), -ENOENT);
	assert_int_equal(gate_approver_new("https://host:1", NULL, cert, cert, "proxy", NULL, &g), 0);
	gate_free(g);
}

/* --- over HTTPS with a client certificate -------------------------------- */

struct tls_seen {
	unsigned requests;
	unsigned with_verified_cert;
};

static enum MHD_Result
tls_handler(void *cls, struct MHD_Connection *mc, const char *url, const char *method,
    const char *version, const char *data, size_t *size, void **req)
{
	struct tls_seen *seen = cls;
	const union MHD_ConnectionInfo *ci;
	static int marker;
	unsigned status = 1;

	(void)url;
	(void)method;
	(void)version;
	(void)data;
	if (*req == NULL) {
		*req = &marker;
		return MHD_YES;
	}
	if (*size > 0) {
		*size = 0;
		return MHD_YES;
	}
	seen->requests++;
	ci = MHD_get_connection_info(mc, MHD_CONNECTION_INFO_GNUTLS_SESSION);
	if (ci != NULL &&
	    gnutls_certificate_verify_peers2((gnutls_session_t)ci->tls_session, &status) == 0 &&
	    status == 0) {
		seen->with_verified_cert++;
	}
	return reply(mc, 201, "{\"id\":\"x\",\"state\":\"pending\"}");
}

static char *
slurp(const char *path)
{
	FILE *fp = fopen(path, "re");
	char *buf = calloc(1, 65536);
	size_t n;

	assert_non_null(fp);
	assert_non_null(buf);
	n = fread(buf, 1, 65535, fp);
	buf[n] = '\0';
	fclose(fp);
	return buf;
}

static void
test_https_client_cert(void **state)
{
	struct fx *f = *state;
	struct sockaddr_in sin = { .sin_family = AF_INET };
	socklen_t sl = sizeof(sin);
	struct tls_seen seen = { 0, 0 };
	struct MHD_Daemon *d;
	struct gate *g = NULL, *nocert = NULL;
	char cmd[4 * PATH_MAX], url[64], p[6][PATH_MAX + 32];
	char *srv_cert, *srv_key, *ca;
	int fd;

	if (system("command -v openssl >/dev/null 2>&1") != 0) {
		skip();
	}
	(void)snprintf(p[0], sizeof(p[0]), "%s/ca.pem", f->root);
	(void)snprintf(p[1], sizeof(p[1]), "%s/ca.key", f->root);
	(void)snprintf(p[2], sizeof(p[2]), "%s/srv.pem", f->root);
	(void)snprintf(p[3], sizeof(p[3]), "%s/srv.key", f->root);
	(void)snprintf(p[4], sizeof(p[4]), "%s/cli.pem", f->root);
	(void)snprintf(p[5], sizeof(p[5]), "%s/cli.key", f->root);
	(void)snprintf(cmd, sizeof(cmd),
	    "(cd '%s' && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
	    "-days 2 -subj /CN=ca -keyout ca.key -out ca.pem && "
	    "openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=localhost "
	    "-keyout srv.key -out srv.csr && printf 'subjectAltName=DNS:localhost\\n' >srv.ext && "
	    "openssl x509 -req -in srv.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 "
	    "-extfile srv.ext -out srv.pem && "
	    "openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=proxy "
	    "-keyout cli.key -out cli.csr && "
	    "openssl x509 -req -in cli.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 "
	    "-out cli.pem) >/dev/null 2>&1", f->root);
	assert_int_equal(system(cmd), 0);
	srv_cert = slurp(p[2]);
	srv_key = slurp(p[3]);
	ca = slurp(p[0]);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &sl), 0);
	assert_int_equal(listen(fd, 8), 0);
	d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_TLS, 0, NULL, NULL,
	    tls_handler, &seen, MHD_OPTION_LISTEN_SOCKET, fd,
	    MHD_OPTION_HTTPS_MEM_CERT, srv_cert, MHD_OPTION_HTTPS_MEM_KEY, srv_key,
	    MHD_OPTION_HTTPS_MEM_TRUST, ca, MHD_OPTION_END);
	assert_non_null(d);
	(void)snprintf(url, sizeof(url), "https://localhost:%u", (unsigned)ntohs(sin.sin_port));
	assert_int_equal(gate_approver_new(url, p[0], p[4], p[5], "proxy", NULL, &g), 0);
	assert_int_equal(gate_submit(g, &f->rq), 0);
	assert_int_equal(seen.requests, 1);
	assert_int_equal(seen.with_verified_cert, 1);
	/* The server's certificate is checked against --approver-ca: the
	 * client's own certificate is no CA for it. */
	assert_int_equal(gate_approver_new(url, p[4], p[4], p[5], "proxy", NULL, &nocert), 0);
	assert_int_equal(gate_submit(nocert, &f->rq), -EACCES);
	assert_int_equal(seen.requests, 1);
	gate_free(nocert);
	gate_free(g);
	MHD_stop_daemon(d);
	free(srv_cert);
	free(srv_key);
	free(ca);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_approved, setup, teardown),
		cmocka_unit_test_setup_teardown(test_denied_expired_failed_cancelled, setup, teardown),
		cmocka_unit_test_setup_teardown(test_picked_up_before, setup, teardown),
		cmocka_unit_test_setup_teardown(test_timeout, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cancel, setup, teardown),
		cmocka_unit_test_setup_teardown(test_malformed_and_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unreachable, setup, teardown),
		cmocka_unit_test_setup_teardown(test_new_checks, setup, teardown),
		cmocka_unit_test_setup_teardown(test_https_client_cert, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
