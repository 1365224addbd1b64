/* Unit tests for lib/launch.c: the launch socket client, against a fake
 * attestd in a thread that checks the framing and the descriptors and
 * answers as told (good replies, errors, garbage, silence). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "cjson.h"
#include "launch.h"

#define LD_HEX "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

struct server {
	int lfd;
	const char *reply;        /* JSON to send; NULL: close without a reply */
	uint32_t reply_len;       /* 0: strlen(reply); else announced length */
	/* What the server saw. */
	size_t nfds;
	char kinds[3][16];        /* the first bytes of each received descriptor */
	char body[65536 + 1];
	uint32_t body_len;
};

struct fixture {
	char dir[128];
	char path[160];
	struct manifest m;
	struct launch_fds fds;
	struct server srv;
	pthread_t thread;
};

static int
memfd_with(const char *text)
{
	int fd = memfd_create("t", MFD_CLOEXEC | MFD_ALLOW_SEALING);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	return fd;
}

static int
read_full(int fd, void *buf, size_t len, int *fds, size_t *nfds)
{
	size_t off = 0;

	while (off < len) {
		union {
			struct cmsghdr h;
			char buf[CMSG_SPACE(sizeof(int) * 8)];
		} ctl;
		struct iovec iov = { .iov_base = (char *)buf + off, .iov_len = len - off };
		struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.buf,
		    .msg_controllen = sizeof(ctl.buf) };
		struct cmsghdr *c;
		ssize_t n = recvmsg(fd, &msg, MSG_CMSG_CLOEXEC);

		if (n <= 0) {
			return -1;
		}
		for (c = CMSG_FIRSTHDR(&msg); c != NULL; c = CMSG_NXTHDR(&msg, c)) {
			size_t k, cnt = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);

			for (k = 0; k < cnt; k++) {
				memcpy(&fds[*nfds], CMSG_DATA(c) + k * sizeof(int), sizeof(int));
				(*nfds)++;
			}
		}
		off += (size_t)n;
	}
	return 0;
}

static void *
serve(void *arg)
{
	struct server *s = arg;
	uint8_t hdr[4];
	int fds[16], c;
	size_t i;

	c = accept4(s->lfd, NULL, NULL, SOCK_CLOEXEC);
	if (c < 0) {
		return NULL;
	}
	s->nfds = 0;
	if (read_full(c, hdr, 4, fds, &s->nfds) == 0) {
		s->body_len = (uint32_t)hdr[0] << 24 | (uint32_t)hdr[1] << 16 |
		    (uint32_t)hdr[2] << 8 | hdr[3];
		if (s->body_len <= 65536 && read_full(c, s->body, s->body_len, fds, &s->nfds) == 0) {
			s->body[s->body_len] = '\0';
		}
	}
	for (i = 0; i < s->nfds; i++) {
		if (i < 3) {
			ssize_t n = pread(fds[i], s->kinds[i], sizeof(s->kinds[i]) - 1, 0);

			s->kinds[i][n > 0 ? n : 0] = '\0';
		}
		close(fds[i]);
	}
	if (s->reply != NULL) {
		uint32_t len = s->reply_len != 0 ? s->reply_len : (uint32_t)strlen(s->reply);
		uint8_t out[4] = { (uint8_t)(len >> 24), (uint8_t)(len >> 16), (uint8_t)(len >> 8),
		    (uint8_t)len };

		(void)send(c, out, 4, MSG_NOSIGNAL);
		(void)send(c, s->reply, strlen(s->reply), MSG_NOSIGNAL);
	}
	close(c);
	return NULL;
}

static int
setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	const char *tmp = getenv("TMPDIR");

	assert_non_null(f);
	snprintf(f->dir, sizeof(f->dir), "%s/test_launch.XXXXXX", tmp != NULL ? tmp : "/tmp");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->path, sizeof(f->path), "%s/l.sock", f->dir);
	memcpy(sa.sun_path, f->path, strlen(f->path) + 1);
	f->srv.lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(f->srv.lfd >= 0);
	assert_int_equal(bind(f->srv.lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(f->srv.lfd, 4), 0);
	snprintf(f->m.name, sizeof(f->m.name), "t1");
	snprintf(f->m.cmdline, sizeof(f->m.cmdline), "console=ttyS0");
	f->m.vcpus = 1;
	f->m.memory_mib = 64;
	f->m.vmm = MANIFEST_VMM_QEMU;
	f->m.envelope = json_pack("{s:s}", "fs.read", "allow");
	f->fds.kernel = memfd_with("kernel");
	f->fds.initrd = memfd_with("initrd");
	f->fds.rootfs = -1;
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;
	char cmd[200];

	close(f->srv.lfd);
	close(f->fds.kernel);
	close(f->fds.initrd);
	if (f->fds.rootfs >= 0) {
		close(f->fds.rootfs);
	}
	json_decref(f->m.envelope);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
	assert_int_equal(system(cmd), 0);
	free(f);
	return 0;
}

/* launch_measure against a server answering reply. */
static int
run(struct fixture *f, const char *reply, uint32_t reply_len, struct launch_result *res)
{
	int r;

	f->srv.reply = reply;
	f->srv.reply_len = reply_len;
	assert_int_equal(pthread_create(&f->thread, NULL, serve, &f->srv), 0);
	r = launch_measure(f->path, &f->m, &f->fds, res);
	pthread_join(f->thread, NULL);
	return r;
}

/* launch_measure_detail against a server answering reply. */
static int
run_detail(struct fixture *f, const char *reply, struct launch_result *res, char *detail,
    size_t detail_len)
{
	int r;

	f->srv.reply = reply;
	f->srv.reply_len = 0;
	assert_int_equal(pthread_create(&f->thread, NULL, serve, &f->srv), 0);
	r = launch_measure_detail(f->path, &f->m, &f->fds, res, detail, detail_len);
	pthread_join(f->thread, NULL);
	return r;
}

static const char good[] = "{\"status\":200,\"vm\":\"vm-0011223344556677\",\"launch_digest\":\""
    LD_HEX "\",\"token\":\"w1.a.b.c\",\"events\":[]}";

static void
test_success(void **state)
{
	struct fixture *f = *state;
	struct launch_result res;
	json_t *req;

	memset(&res, 0, sizeof(res));
	assert_int_equal(run(f, good, 0, &res), 0);
	assert_string_equal(res.vm_id, "vm-0011223344556677");
	assert_string_equal(res.launch_digest, LD_HEX);
	assert_string_equal(res.token, "w1.a.b.c");
	assert_true(json_is_array(json_object_get(res.reply, "events")));
	launch_result_clear(&res);
	assert_null(res.token);
	assert_null(res.reply);

	/* The server got the canonical request and the descriptors in order. */
	assert_int_equal(f->srv.nfds, 2);
	assert_string_equal(f->srv.kinds[0], "kernel");
	assert_string_equal(f->srv.kinds[1], "initrd");
	assert_string_equal(f->srv.body, "{\"artifacts\":[\"kernel\",\"initrd\"],\"config\":"
	    "{\"cmdline\":\"console=ttyS0\",\"envelope\":{\"fs.read\":\"allow\"},\"memory_mib\":64,"
	    "\"name\":\"t1\",\"vcpus\":1,\"vmm\":\"qemu\"}}");
	assert_int_equal(cjson_parse(f->srv.body, f->srv.body_len, 65536, &req), 0);
	json_decref(req);
}

static void
test_rootfs(void **state)
{
	struct fixture *f = *state;
	struct launch_result res;

	memset(&res, 0, sizeof(res));
	snprintf(f->m.rootfs, sizeof(f->m.rootfs), "/x/rootfs");
	f->fds.rootfs = memfd_with("rootfs");
	assert_int_equal(run(f, good, 0, &res), 0);
	launch_result_clear(&res);
	assert_int_equal(f->srv.nfds, 3);
	assert_string_equal(f->srv.kinds[2], "rootfs");
	assert_non_null(strstr(f->srv.body, "[\"kernel\",\"initrd\",\"rootfs\"]"));
}

static void
test_errors(void **state)
{
	static const struct { const char *reply; uint32_t len; int want; } cases[] = {
		{ "{\"status\":400,\"error\":\"bad_request\",\"detail\":\"x\"}", 0, -EINVAL },
		{ "{\"status\":403,\"error\":\"forbidden\",\"detail\":\"x\"}", 0, -EACCES },
		{ "{\"status\":413,\"error\":\"too_large\",\"detail\":\"x\"}", 0, -EFBIG },
		{ "{\"status\":500,\"error\":\"internal\",\"detail\":\"x\"}", 0, -EIO },
		{ "{\"status\":503,\"error\":\"busy\",\"detail\":\"x\"}", 0, -EAGAIN },
		{ "{\"status\":302}", 0, -EPROTO },
		{ "{\"status\":\"200\"}", 0, -EPROTO },
		{ "not json", 0, -EPROTO },
		{ "[1]", 0, -EPROTO },
		{ "{\"status\":200,\"vm\":\"vm-1\",\"launch_digest\":\"" LD_HEX "\",\"events\":[]}", 0,
		  -EPROTO },                                  /* no token */
		{ "{\"status\":200,\"vm\":\"bad id\",\"launch_digest\":\"" LD_HEX "\",\"token\":\"t\","
		  "\"events\":[]}", 0, -EPROTO },
		{ "{\"status\":200,\"vm\":\"vm-1\",\"launch_digest\":\"ABCD\",\"token\":\"t\","
		  "\"events\":[]}", 0, -EPROTO },
		{ "{\"status\":200,\"vm\":\"vm-1\",\"launch_digest\":\"" LD_HEX "\",\"token\":\"t\"}", 0,
		  -EPROTO },                                  /* no events */
		{ "{\"status\":200,\"status\":200}", 0, -EPROTO },
		{ "{}", 0, -EPROTO },
		{ "{}", 1024 * 1024 + 1, -EPROTO },           /* announced over the cap */
		{ "{}", 100, -ECONNRESET },                   /* announced more than sent */
		{ NULL, 0, -ECONNRESET },                     /* closed without a reply */
	};
	struct fixture *f = *state;
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct launch_result res;
		int r;

		memset(&res, 0x5a, sizeof(res));
		r = run(f, cases[i].reply, cases[i].len, &res);
		if (r != cases[i].want) {
			print_error("case %zu: got %d, wanted %d\n", i, r, cases[i].want);
			fail();
		}
		/* Out-parameters are untouched on failure. */
		assert_int_equal(res.vm_id[0], 0x5a);
	}
}

/* Why attestd refused, for the caller's error line. */
static void
test_error_detail(void **state)
{
	struct fixture *f = *state;
	struct launch_result res;
	char detail[128], small[12], nowhere[200];

	memset(&res, 0, sizeof(res));
	memset(detail, 'x', sizeof(detail));
	assert_int_equal(run_detail(f, "{\"status\":503,\"error\":\"event_log_inconsistent\","
	    "\"detail\":\"launch PCR 15 does not match the log\"}", &res, detail,
	    sizeof(detail)), -EAGAIN);
	assert_string_equal(detail, "event_log_inconsistent: launch PCR 15 does not match the log");
	assert_null(res.token);
	/* Only one part given. */
	assert_int_equal(run_detail(f, "{\"status\":400,\"error\":\"bad_request\"}", &res,
	    detail, sizeof(detail)), -EINVAL);
	assert_string_equal(detail, "bad_request");
	assert_int_equal(run_detail(f, "{\"status\":400,\"error\":\"bad_request\",\"detail\":\"\"}",
	    &res, detail, sizeof(detail)), -EINVAL);
	assert_string_equal(detail, "bad_request");
	/* Nothing that could forge or colour a log line. */
	assert_int_equal(run_detail(f, "{\"status\":400,\"error\":\"bad_request\",\"detail\":"
	    "\"a\\nerror: b\\u001b[31m\\u00e9\"}", &res, detail, sizeof(detail)), -EINVAL);
	assert_string_equal(detail, "bad_request: a?error: b?[31m??");
	/* Cut to fit. */
	assert_int_equal(run_detail(f, "{\"status\":503,\"error\":\"busy\",\"detail\":"
	    "\"already 4 launches in progress\"}", &res, small, sizeof(small)), -EAGAIN);
	assert_string_equal(small, "busy: alrea");
	/* No error in the reply, or a status without one: empty. */
	memset(detail, 'x', sizeof(detail));
	assert_int_equal(run_detail(f, "{\"status\":302}", &res, detail, sizeof(detail)), -EPROTO);
	assert_string_equal(detail, "");
	/* Not attestd's words: empty too. */
	memset(detail, 'x', sizeof(detail));
	assert_int_equal(run_detail(f, "not json", &res, detail, sizeof(detail)), -EPROTO);
	assert_string_equal(detail, "");
	memset(detail, 'x', sizeof(detail));
	snprintf(nowhere, sizeof(nowhere), "%s/none.sock", f->dir);
	assert_int_equal(launch_measure_detail(nowhere, &f->m, &f->fds, &res, detail,
	    sizeof(detail)), -ENOENT);
	assert_string_equal(detail, "");
	/* Success: empty, and the result is there. */
	memset(detail, 'x', sizeof(detail));
	assert_int_equal(run_detail(f, good, &res, detail, sizeof(detail)), 0);
	assert_string_equal(detail, "");
	assert_string_equal(res.token, "w1.a.b.c");
	launch_result_clear(&res);
	/* No buffer at all. */
	assert_int_equal(run_detail(f, "{\"status\":403,\"error\":\"forbidden\"}", &res, NULL, 0),
	    -EACCES);
}

static void
test_request_refused_locally(void **state)
{
	struct fixture *f = *state;
	struct launch_result res;
	json_t *reply = NULL;
	char nowhere[200];

	memset(&res, 0, sizeof(res));
	/* A manifest with a rootfs and no descriptor for it, and the reverse. */
	snprintf(f->m.rootfs, sizeof(f->m.rootfs), "/x/rootfs");
	assert_int_equal(launch_measure(f->path, &f->m, &f->fds, &res), -EINVAL);
	f->m.rootfs[0] = '\0';
	f->fds.rootfs = memfd_with("rootfs");
	assert_int_equal(launch_measure(f->path, &f->m, &f->fds, &res), -EINVAL);
	close(f->fds.rootfs);
	f->fds.rootfs = -1;
	/* No socket there. */
	snprintf(nowhere, sizeof(nowhere), "%s/none.sock", f->dir);
	assert_int_equal(launch_measure(nowhere, &f->m, &f->fds, &res), -ENOENT);
	assert_int_equal(launch_request(nowhere, &f->m, &f->fds, &reply), -ENOENT);
	assert_null(reply);
	/* A request over 65536 bytes is never sent. */
	{
		char big[200];
		int i;

		for (i = 0; i < 600; i++) {
			snprintf(big, sizeof(big), "op%d.%0100d", i, 0);
			json_object_set_new(f->m.envelope, big, json_string("allow"));
		}
	}
	assert_int_equal(launch_measure(f->path, &f->m, &f->fds, &res), -EFBIG);
	assert_null(res.token);
}

static void
test_request_returns_any_status(void **state)
{
	struct fixture *f = *state;
	json_t *reply = NULL;

	f->srv.reply = "{\"status\":403,\"error\":\"forbidden\",\"detail\":\"role launch needed\"}";
	f->srv.reply_len = 0;
	assert_int_equal(pthread_create(&f->thread, NULL, serve, &f->srv), 0);
	assert_int_equal(launch_request(f->path, &f->m, &f->fds, &reply), 0);
	pthread_join(f->thread, NULL);
	assert_int_equal(json_integer_value(json_object_get(reply, "status")), 403);
	assert_string_equal(json_string_value(json_object_get(reply, "error")), "forbidden");
	json_decref(reply);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_success, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rootfs, setup, teardown),
		cmocka_unit_test_setup_teardown(test_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_error_detail, setup, teardown),
		cmocka_unit_test_setup_teardown(test_request_refused_locally, setup, teardown),
		cmocka_unit_test_setup_teardown(test_request_returns_any_status, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
