/* launch: the client side of attestd's launch socket (docs/attestd-api.md,
 * "Launch socket").
 *
 * One request per connection on a unix stream socket. The client sends a
 * 4-byte big-endian length L (1..65536) and L bytes of canonical JSON
 *   {"artifacts":["kernel","initrd"(,"rootfs")],"config":<manifest_config>}
 * with SCM_RIGHTS carrying exactly those descriptors, in that order, on
 * the first sendmsg. attestd answers with a 4-byte length (1..1 MiB) and a
 * JSON object, {"status":200,"vm","launch_digest","token","events"} or
 * {"status":4xx|5xx,"error","detail"}, and closes the connection. */
#include "launch.h"

#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "cjson.h"
#include "clock.h"
#include "parse.h"
#include "token.h"

#define LAUNCH_CONNECT_MS    5000
#define LAUNCH_MAX_FDS       3

static int
wait_fd(int fd, short events, int64_t deadline)
{
	for (;;) {
		struct pollfd p = { .fd = fd, .events = events };
		int64_t left = deadline - (int64_t)clock_mono_ms();
		int n;

		if (left <= 0) {
			return -ETIMEDOUT;
		}
		n = poll(&p, 1, left > 60000 ? 60000 : (int)left);
		if (n < 0) {
			if (errno == EINTR) {
				continue;
			}
			return -errno;
		}
		if (n > 0) {
			return 0;
		}
	}
}

static int
connect_socket(const char *path, int64_t deadline, int *ret_fd)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int64_t connect_deadline = (int64_t)clock_mono_ms() + LAUNCH_CONNECT_MS;
	size_t len = strlen(path);
	int fd = -1, r;

	if (len == 0 || len >= sizeof(sa.sun_path)) {
		return -ENAMETOOLONG;
	}
	memcpy(sa.sun_path, path, len + 1);
	if (connect_deadline > deadline) {
		connect_deadline = deadline;
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		return -errno;
	}
	for (;;) {
		struct timespec pause = { .tv_sec = 0, .tv_nsec = 10 * 1000 * 1000 };

		if (connect(fd, (const struct sockaddr *)&sa, sizeof(sa)) == 0) {
			break;
		}
		/* A non-blocking unix connect says EAGAIN while the listener's
		 * backlog is full: wait a little and try again. */
		if (errno != EAGAIN && errno != EINTR) {
			r = -errno;
			goto out;
		}
		if ((int64_t)clock_mono_ms() >= connect_deadline) {
			r = -ETIMEDOUT;
			goto out;
		}
		(void)nanosleep(&pause, NULL);
	}
	*ret_fd = fd;
	fd = -1;
	r = 0;
out:
	if (fd >= 0) {
		(void)close(fd);
	}
	return r;
}

/* Send hdr+body; the descriptors ride on the first sendmsg, which always
 * carries at least the first byte. */
static int
send_request(int fd, const uint8_t *buf, size_t len, const int *fds, size_t nfds,
    int64_t deadline)
{
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(int) * LAUNCH_MAX_FDS)];
	} ctl;
	size_t off = 0;
	bool first = true;
	int r;

	if (nfds == 0 || nfds > LAUNCH_MAX_FDS) {
		return -EINVAL;
	}
	memset(&ctl, 0, sizeof(ctl));
	while (off < len) {
		struct iovec iov = { .iov_base = (void *)(buf + off), .iov_len = len - off };
		struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };
		ssize_t n;

		if (first) {
			struct cmsghdr *c;

			msg.msg_control = ctl.buf;
			msg.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
			c = CMSG_FIRSTHDR(&msg);
			c->cmsg_level = SOL_SOCKET;
			c->cmsg_type = SCM_RIGHTS;
			c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
			memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
		}
		n = sendmsg(fd, &msg, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EINTR) {
				continue;
			}
			if (errno == EAGAIN) {
				r = wait_fd(fd, POLLOUT, deadline);
				if (r < 0) {
					return r;
				}
				continue;
			}
			return -errno;
		}
		first = false;
		off += (size_t)n;
	}
	return 0;
}

static int
recv_exact(int fd, uint8_t *buf, size_t len, int64_t deadline)
{
	size_t off = 0;
	int r;

	while (off < len) {
		ssize_t n = recv(fd, buf + off, len - off, 0);

		if (n < 0) {
			if (errno == EINTR) {
				continue;
			}
			if (errno == EAGAIN) {
				r = wait_fd(fd, POLLIN, deadline);
				if (r < 0) {
					return r;
				}
				continue;
			}
			return -errno;
		}
		if (n == 0) {
			return -ECONNRESET;   /* closed before the whole reply */
		}
		off += (size_t)n;
	}
	return 0;
}

static int
build_request(const struct manifest *m, const struct launch_fds *fds, uint8_t **ret,
    size_t *ret_len, int ret_fds[LAUNCH_MAX_FDS], size_t *ret_nfds)
{
	json_t *req = NULL, *names = NULL, *cfg = NULL;
	char *body = NULL;
	uint8_t *buf = NULL;
	size_t len = 0, nfds = 0;
	bool rootfs = m->rootfs[0] != '\0';
	int r;

	if (fds->kernel < 0 || fds->initrd < 0 || rootfs != (fds->rootfs >= 0)) {
		return -EINVAL;
	}
	names = json_pack("[ss]", "kernel", "initrd");
	cfg = manifest_config(m);
	if (names == NULL || cfg == NULL ||
	    (rootfs && json_array_append_new(names, json_string("rootfs")) != 0)) {
		r = -ENOMEM;
		goto out;
	}
	req = json_pack("{s:O,s:O}", "artifacts", names, "config", cfg);
	if (req == NULL) {
		r = -ENOMEM;
		goto out;
	}
	r = cjson_dump(req, &body, &len);
	if (r < 0) {
		goto out;
	}
	if (len == 0 || len > LAUNCH_REQUEST_MAX) {
		r = -EFBIG;
		goto out;
	}
	buf = malloc(4 + len);
	if (buf == NULL) {
		r = -ENOMEM;
		goto out;
	}
	buf[0] = (uint8_t)(len >> 24);
	buf[1] = (uint8_t)(len >> 16);
	buf[2] = (uint8_t)(len >> 8);
	buf[3] = (uint8_t)len;
	memcpy(buf + 4, body, len);
	ret_fds[nfds++] = fds->kernel;
	ret_fds[nfds++] = fds->initrd;
	if (rootfs) {
		ret_fds[nfds++] = fds->rootfs;
	}
	*ret = buf;
	*ret_len = 4 + len;
	*ret_nfds = nfds;
	buf = NULL;
	r = 0;
out:
	free(buf);
	free(body);
	json_decref(req);
	json_decref(names);
	json_decref(cfg);
	return r;
}

/* Hashing a 16 GiB rootfs takes a while (LAUNCH_TIMEOUT_MS); a stuck
 * attestd must not hang the launcher for ever either. */
int
launch_request(const char *launch_socket, const struct manifest *m, const struct launch_fds *fds,
    json_t **ret_reply)
{
	int64_t deadline = (int64_t)clock_mono_ms() + LAUNCH_TIMEOUT_MS;
	int fdv[LAUNCH_MAX_FDS];
	uint8_t *req = NULL, *rep = NULL, hdr[4];
	size_t req_len = 0, nfds = 0;
	uint32_t rep_len = 0;
	json_t *reply = NULL;
	int sock = -1, r;

	r = build_request(m, fds, &req, &req_len, fdv, &nfds);
	if (r < 0) {
		goto out;
	}
	r = connect_socket(launch_socket, deadline, &sock);
	if (r < 0) {
		goto out;
	}
	r = send_request(sock, req, req_len, fdv, nfds, deadline);
	if (r < 0) {
		goto out;
	}
	/* Nothing more to say: attestd reads exactly L bytes anyway. */
	(void)shutdown(sock, SHUT_WR);
	r = recv_exact(sock, hdr, sizeof(hdr), deadline);
	if (r < 0) {
		goto out;
	}
	rep_len = (uint32_t)hdr[0] << 24 | (uint32_t)hdr[1] << 16 | (uint32_t)hdr[2] << 8 |
	    (uint32_t)hdr[3];
	if (rep_len == 0 || rep_len > LAUNCH_REPLY_MAX) {
		r = -EPROTO;
		goto out;
	}
	rep = malloc(rep_len);
	if (rep == NULL) {
		r = -ENOMEM;
		goto out;
	}
	r = recv_exact(sock, rep, rep_len, deadline);
	if (r < 0) {
		goto out;
	}
	r = cjson_parse((const char *)rep, rep_len, LAUNCH_REPLY_MAX, &reply);
	if (r < 0 || !json_is_object(reply) || !json_is_integer(json_object_get(reply, "status"))) {
		r = -EPROTO;
		goto out;
	}
	*ret_reply = reply;
	reply = NULL;
	r = 0;
out:
	json_decref(reply);
	if (rep != NULL) {
		explicit_bzero(rep, rep_len);   /* it holds the launch token */
		free(rep);
	}
	free(req);
	if (sock >= 0) {
		(void)close(sock);
	}
	return r;
}

/* The reply carries the launch token: wipe jansson's copy of it before
 * the reply is freed (if nobody else holds a reference). */
static void
reply_free(json_t *reply)
{
	json_t *t = json_object_get(reply, "token");

	if (reply != NULL && reply->refcount == 1 && json_is_string(t)) {
		explicit_bzero((char *)json_string_value(t), json_string_length(t));
	}
	json_decref(reply);
}

static int
status_error(json_int_t status)
{
	switch (status) {
	case 400: {
		return -EINVAL;
	}
	case 403: {
		return -EACCES;
	}
	case 413: {
		return -EFBIG;
	}
	case 500: {
		return -EIO;
	}
	case 503: {
		return -EAGAIN;
	}
	default: {
		return -EPROTO;
	}
	}
}

/* Append s to dst (of n bytes, holding *off of them), printable ASCII
 * only: attestd's words end up in a log line. */
static void
append_printable(char *dst, size_t n, size_t *off, const char *s)
{
	for (; *s != '\0' && *off + 1 < n; s++) {
		unsigned char c = (unsigned char)*s;

		dst[(*off)++] = c >= 0x20 && c < 0x7f ? (char)c : '?';
	}
	dst[*off] = '\0';
}

/* "ERROR: DETAIL" from an error reply, either part possibly missing. */
static void
error_detail(const json_t *reply, char *dst, size_t n)
{
	const char *code = cjson_get_str(reply, "error");
	const char *text = cjson_get_str(reply, "detail");
	size_t off = 0;

	if (code != NULL) {
		append_printable(dst, n, &off, code);
	}
	if (code != NULL && text != NULL && text[0] != '\0') {
		append_printable(dst, n, &off, ": ");
	}
	if (text != NULL) {
		append_printable(dst, n, &off, text);
	}
}

int
launch_measure(const char *launch_socket, const struct manifest *m,
    const struct launch_fds *fds, struct launch_result *ret)
{
	return launch_measure_detail(launch_socket, m, fds, ret, NULL, 0);
}

int
launch_measure_detail(const char *launch_socket, const struct manifest *m,
    const struct launch_fds *fds, struct launch_result *ret, char *detail, size_t detail_len)
{
	struct launch_result res;
	const char *vm, *digest, *token;
	json_t *reply = NULL;
	json_int_t status;
	uint8_t d[32];
	size_t tlen;
	int r;

	memset(&res, 0, sizeof(res));
	if (detail_len > 0) {
		detail[0] = '\0';
	}
	r = launch_request(launch_socket, m, fds, &reply);
	if (r < 0) {
		goto out;
	}
	status = json_integer_value(json_object_get(reply, "status"));
	if (status != 200) {
		if (detail_len > 0) {
			error_detail(reply, detail, detail_len);
		}
		r = status_error(status);
		goto out;
	}
	vm = json_string_value(json_object_get(reply, "vm"));
	digest = json_string_value(json_object_get(reply, "launch_digest"));
	token = json_string_value(json_object_get(reply, "token"));
	if (vm == NULL || parse_ident(vm, TOKEN_ID_MAX) < 0 || digest == NULL ||
	    parse_hex(digest, d, sizeof(d)) < 0 || token == NULL ||
	    !json_is_array(json_object_get(reply, "events"))) {
		r = -EPROTO;
		goto out;
	}
	tlen = json_string_length(json_object_get(reply, "token"));
	if (tlen == 0 || tlen > TOKEN_MAX_LEN) {
		r = -EPROTO;
		goto out;
	}
	res.token = strndup(token, tlen);
	if (res.token == NULL) {
		r = -ENOMEM;
		goto out;
	}
	memcpy(res.vm_id, vm, strlen(vm) + 1);
	memcpy(res.launch_digest, digest, TOKEN_HEX256_LEN + 1);
	res.reply = reply;
	reply = NULL;
	*ret = res;
	memset(&res, 0, sizeof(res));
	r = 0;
out:
	launch_result_clear(&res);
	reply_free(reply);
	return r;
}

void
launch_result_clear(struct launch_result *r)
{
	if (r == NULL) {
		return;
	}
	if (r->token != NULL) {
		explicit_bzero(r->token, strlen(r->token));
		free(r->token);
	}
	reply_free(r->reply);
	memset(r, 0, sizeof(*r));
}
