/* agent_client: the guest end of the agent channel (docs/agent-protocol.md).
 *
 * The descriptor is non-blocking and every wait is a poll(2) against one
 * monotonic deadline, so no host behaviour (not connected, not reading, not
 * answering) can hold the caller past its timeout. */
#include "agent_client.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/vm_sockets.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "frame.h"

#define VPORT_DIR "/sys/class/virtio-ports"
#define VPORT_SCAN_MAX 256          /* entries looked at in VPORT_DIR */
#define VPORT_NAME_MAX 128
#define HOST_WAIT_MAX_MS 5000       /* for a host end that is not connected */
#define RETRY_MS 50
#define ID_MAX (UINT64_C(1) << 53)
#define READ_CHUNK 16384
#define REQUEST_ID_MAX 256          /* an approval request id in a pending frame */
#define ERROR_CODE_MAX 64

struct agent_client {
	int fd;
	bool is_socket;
	char channel[64];
	uint64_t next_id;
	struct frame_reader *rd;
};

static int64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Milliseconds left until deadline, for poll(2); 0 once it has passed. */
static int
left_ms(int64_t deadline)
{
	int64_t d = deadline - now_ms();

	if (d <= 0) {
		return 0;
	}
	return d > INT32_MAX ? INT32_MAX : (int)d;
}

static void
sleep_ms(int ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000 };

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
		continue;
	}
}

static bool
timeout_ok(int timeout_ms)
{
	return timeout_ms >= 0 && timeout_ms <= AGENT_TIMEOUT_MAX_MS;
}

/* Ids start at a random point so that a process using the port after
 * another one never reuses the ids whose replies may still be on the way. */
static uint64_t
first_id(void)
{
	uint64_t x = 0;

	if (getrandom(&x, sizeof(x), GRND_NONBLOCK) != (ssize_t)sizeof(x)) {
		x = ((uint64_t)now_ms() * 1000003u) ^ ((uint64_t)getpid() << 20);
	}
	return 1 + x % (ID_MAX / 2);
}

static int
client_new(int fd, bool is_socket, const char *channel, struct agent_client **ret)
{
	struct agent_client *c = NULL;
	int r;

	c = calloc(1, sizeof(*c));
	if (c == NULL) {
		r = -ENOMEM;
		goto out;
	}
	c->rd = frame_reader_new(FRAME_MAX);
	if (c->rd == NULL) {
		r = -ENOMEM;
		goto out;
	}
	c->fd = fd;
	c->is_socket = is_socket;
	snprintf(c->channel, sizeof(c->channel), "%s", channel);
	c->next_id = first_id();
	*ret = c;
	c = NULL;
	r = 0;
out:
	if (c != NULL) {
		frame_reader_free(c->rd);
		free(c);
	}
	return r;
}

/* The name of a virtio-ports entry becomes a path under /dev: allow only
 * what the kernel names them (vportNpM). */
static bool
vport_entry_ok(const char *s)
{
	size_t i;

	if (s[0] == '\0') {
		return false;
	}
	for (i = 0; s[i] != '\0'; i++) {
		if (i >= 32) {
			return false;
		}
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9'))) {
			return false;
		}
	}
	return true;
}

/* Read a sysfs attribute of at most VPORT_NAME_MAX bytes, without the
 * trailing newline, and compare. */
static bool
vport_name_is(int dirfd_, const char *entry, const char *want)
{
	char rel[64], buf[VPORT_NAME_MAX + 2];
	ssize_t n;
	int fd;
	bool match = false;

	if ((size_t)snprintf(rel, sizeof(rel), "%s/name", entry) >= sizeof(rel)) {
		return false;
	}
	fd = openat(dirfd_, rel, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0) {
		return false;
	}
	do {
		n = read(fd, buf, sizeof(buf) - 1);
	} while (n < 0 && errno == EINTR);
	if (n > 0 && (size_t)n <= VPORT_NAME_MAX + 1) {
		buf[n] = '\0';
		if (buf[n - 1] == '\n') {
			buf[n - 1] = '\0';
		}
		match = strcmp(buf, want) == 0;
	}
	close(fd);
	return match;
}

/* /dev/<entry> for the port named AGENT_PORT_NAME; -ENOENT if none. */
static int
find_vport(char *path, size_t pathlen)
{
	struct dirent *de;
	DIR *d = NULL;
	int dfd, scanned = 0, r = -ENOENT;

	dfd = open(VPORT_DIR, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0) {
		goto out;
	}
	d = fdopendir(dfd);
	if (d == NULL) {
		close(dfd);
		goto out;
	}
	while ((de = readdir(d)) != NULL && scanned < VPORT_SCAN_MAX) {
		scanned++;
		if (!vport_entry_ok(de->d_name)) {
			continue;
		}
		if (!vport_name_is(dirfd(d), de->d_name, AGENT_PORT_NAME)) {
			continue;
		}
		if ((size_t)snprintf(path, pathlen, "/dev/%s", de->d_name) >= pathlen) {
			continue;
		}
		r = 0;
		break;
	}
out:
	if (d != NULL) {
		closedir(d);
	}
	return r;
}

/* Open the port; wait for another process to release it (EBUSY) until
 * deadline, and for the host end to connect until host_deadline. */
static int
open_vport(const char *path, int64_t deadline, int64_t host_deadline, int *ret_fd)
{
	struct stat st;
	int fd = -1, r;

	for (;;) {
		fd = open(path, O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC | O_NOFOLLOW);
		if (fd >= 0) {
			break;
		}
		if (errno != EBUSY) {
			r = -errno;
			goto out;
		}
		if (left_ms(deadline) == 0) {
			r = -EBUSY;
			goto out;
		}
		sleep_ms(RETRY_MS);
	}
	if (fstat(fd, &st) != 0 || !S_ISCHR(st.st_mode)) {
		r = -ENODEV;
		goto out;
	}
	/* virtio_console reports POLLHUP while the host end is closed, and
	 * reads then return end of file: wait briefly for the proxy. */
	for (;;) {
		struct pollfd p = { .fd = fd, .events = POLLOUT };

		if (poll(&p, 1, 0) < 0 && errno != EINTR) {
			r = -errno;
			goto out;
		}
		if ((p.revents & POLLHUP) == 0) {
			break;
		}
		if (left_ms(host_deadline) == 0) {
			r = -ENOTCONN;
			goto out;
		}
		sleep_ms(RETRY_MS);
	}
	*ret_fd = fd;
	fd = -1;
	r = 0;
out:
	if (fd >= 0) {
		close(fd);
	}
	return r;
}

static int
open_vsock(int64_t deadline, int64_t host_deadline, int *ret_fd)
{
	struct sockaddr_vm sa;
	int fd = -1, r, err;
	socklen_t len;

	memset(&sa, 0, sizeof(sa));
	sa.svm_family = AF_VSOCK;
	sa.svm_cid = AGENT_VSOCK_CID;
	sa.svm_port = AGENT_VSOCK_PORT;
	for (;;) {
		struct pollfd p;

		fd = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
		if (fd < 0) {
			/* No vsock in this kernel: no channel at all. */
			r = (errno == EAFNOSUPPORT || errno == EINVAL) ? -ENOENT : -errno;
			goto out;
		}
		if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
			break;
		}
		err = errno;
		if (err == EINPROGRESS || err == EINTR) {
			p.fd = fd;
			p.events = POLLOUT;
			p.revents = 0;
			if (poll(&p, 1, left_ms(host_deadline)) <= 0) {
				r = -ENOTCONN;
				goto out;
			}
			len = sizeof(err);
			if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) {
				err = errno;
			}
			if (err == 0) {
				break;
			}
		}
		if (err == ENODEV || err == ENETUNREACH || err == EADDRNOTAVAIL) {
			r = -ENOENT;    /* vsock, but no transport to a host */
			goto out;
		}
		if (err != ECONNREFUSED && err != ECONNRESET && err != ETIMEDOUT) {
			r = -err;
			goto out;
		}
		close(fd);
		fd = -1;
		if (left_ms(host_deadline) == 0 || left_ms(deadline) == 0) {
			r = -ENOTCONN;
			goto out;
		}
		sleep_ms(RETRY_MS);
	}
	*ret_fd = fd;
	fd = -1;
	r = 0;
out:
	if (fd >= 0) {
		close(fd);
	}
	return r;
}

int
agent_open(int timeout_ms, struct agent_client **ret)
{
	char path[64], chan[64];
	int64_t deadline, host_deadline;
	int fd = -1, r;
	bool sock = false;

	if (ret == NULL || !timeout_ok(timeout_ms)) {
		r = -EINVAL;
		goto out;
	}
	deadline = now_ms() + timeout_ms;
	host_deadline = now_ms() + (timeout_ms < HOST_WAIT_MAX_MS ? timeout_ms : HOST_WAIT_MAX_MS);
	r = find_vport(path, sizeof(path));
	if (r == 0) {
		r = open_vport(path, deadline, host_deadline, &fd);
		snprintf(chan, sizeof(chan), "%s", path);
	} else {
		r = open_vsock(deadline, host_deadline, &fd);
		sock = true;
		snprintf(chan, sizeof(chan), "vsock:%u:%u", AGENT_VSOCK_CID, AGENT_VSOCK_PORT);
	}
	if (r != 0) {
		goto out;
	}
	r = client_new(fd, sock, chan, ret);
	if (r == 0) {
		fd = -1;
	}
out:
	if (fd >= 0) {
		close(fd);
	}
	return r;
}

int
agent_open_fd(int fd, struct agent_client **ret)
{
	struct stat st;
	int fl, r;

	if (fd < 0 || ret == NULL) {
		r = -EINVAL;
		goto out;
	}
	fl = fcntl(fd, F_GETFL);
	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0 || fstat(fd, &st) != 0) {
		r = -errno;
		goto out;
	}
	r = client_new(fd, S_ISSOCK(st.st_mode), "fd", ret);
	if (r == 0) {
		fd = -1;
	}
out:
	if (fd >= 0) {
		close(fd);
	}
	return r;
}

void
agent_close(struct agent_client *c)
{
	if (c == NULL) {
		return;
	}
	close(c->fd);
	frame_reader_free(c->rd);
	free(c);
}

const char *
agent_channel(const struct agent_client *c)
{
	return c->channel;
}

void
agent_reply_clear(struct agent_reply *r)
{
	if (r == NULL) {
		return;
	}
	json_decref(r->result);
	free(r->error);
	free(r->detail);
	memset(r, 0, sizeof(*r));
}

bool
agent_tool_name_ok(const char *tool)
{
	size_t i;

	if (tool == NULL || tool[0] == '\0') {
		return false;
	}
	for (i = 0; tool[i] != '\0'; i++) {
		char ch = tool[i];
		bool alnum = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		    (ch >= '0' && ch <= '9');

		if (i >= 128) {
			return false;
		}
		if (alnum) {
			continue;
		}
		if (i == 0 || strchr("._:/-", ch) == NULL) {
			return false;
		}
	}
	return true;
}

int
agent_json_check(const json_t *j, int depth)
{
	const char *key;
	json_t *v;
	size_t i;

	if (j == NULL) {
		return -EINVAL;
	}
	switch (json_typeof(j)) {
	case JSON_OBJECT:
		if (depth > 16) {
			return -EINVAL;
		}
		json_object_foreach((json_t *)j, key, v) {
			if (agent_json_check(v, depth + 1) != 0) {
				return -EINVAL;
			}
		}
		return 0;
	case JSON_ARRAY:
		if (depth > 16) {
			return -EINVAL;
		}
		json_array_foreach(j, i, v) {
			if (agent_json_check(v, depth + 1) != 0) {
				return -EINVAL;
			}
		}
		return 0;
	case JSON_STRING:
	case JSON_INTEGER:
	case JSON_TRUE:
	case JSON_FALSE:
	case JSON_NULL:
		return 0;
	case JSON_REAL:
	default:
		return -EINVAL;
	}
}

/* Write all of buf before deadline. Signals that would end the process are
 * held meanwhile: a frame cut in half would leave the channel out of sync
 * for whoever uses it next. */
static int
write_all(struct agent_client *c, const uint8_t *buf, size_t n, int64_t deadline)
{
	sigset_t all, old;
	size_t done = 0;
	int r = 0;

	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	while (done < n) {
		struct pollfd p = { .fd = c->fd, .events = POLLOUT };
		ssize_t k;
		int pr;

		pr = poll(&p, 1, left_ms(deadline));
		if (pr < 0) {
			if (errno == EINTR) {
				continue;
			}
			r = -errno;
			break;
		}
		if (pr == 0) {
			r = -ETIMEDOUT;
			break;
		}
		if ((p.revents & POLLOUT) == 0) {
			/* POLLHUP or POLLERR without room: the host end went. */
			r = -EPIPE;
			break;
		}
		if (c->is_socket) {
			k = send(c->fd, buf + done, n - done, MSG_NOSIGNAL | MSG_DONTWAIT);
		} else {
			k = write(c->fd, buf + done, n - done);
		}
		if (k < 0) {
			if (errno == EINTR || errno == EAGAIN) {
				continue;
			}
			r = errno == ENODEV ? -EPIPE : -errno;
			break;
		}
		done += (size_t)k;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return r;
}

/* The next complete frame, waiting until deadline. */
static int
read_frame(struct agent_client *c, int64_t deadline, json_t **ret)
{
	uint8_t buf[READ_CHUNK];
	int r;

	for (;;) {
		struct pollfd p = { .fd = c->fd, .events = POLLIN };
		ssize_t k;
		int pr;

		r = frame_reader_next(c->rd, ret);
		if (r == 1) {
			return 0;
		}
		if (r < 0) {
			return -EBADMSG;
		}
		pr = poll(&p, 1, left_ms(deadline));
		if (pr < 0) {
			if (errno == EINTR) {
				continue;
			}
			return -errno;
		}
		if (pr == 0) {
			return -ETIMEDOUT;
		}
		k = read(c->fd, buf, sizeof(buf));
		if (k < 0) {
			if (errno == EINTR || errno == EAGAIN) {
				continue;
			}
			return errno == ENODEV || errno == ECONNRESET ? -EPIPE : -errno;
		}
		if (k == 0) {
			return -EPIPE;
		}
		r = frame_reader_feed(c->rd, buf, (size_t)k);
		if (r != 0) {
			return r == -ENOMEM ? r : -EBADMSG;
		}
	}
}

static bool
only_keys(const json_t *o, const char *const *keys)
{
	const char *key;
	json_t *v;
	size_t i;

	json_object_foreach((json_t *)o, key, v) {
		bool found = false;

		(void)v;
		for (i = 0; keys[i] != NULL; i++) {
			if (strcmp(key, keys[i]) == 0) {
				found = true;
				break;
			}
		}
		if (!found) {
			return false;
		}
	}
	return true;
}

static bool
error_code_ok(const char *s)
{
	size_t i;

	if (s[0] == '\0') {
		return false;
	}
	for (i = 0; s[i] != '\0'; i++) {
		if (i >= ERROR_CODE_MAX || !((s[i] >= 'a' && s[i] <= 'z') || s[i] == '_')) {
			return false;
		}
	}
	return true;
}

/* A final reply for our id. -EBADMSG unless it has exactly the fields the
 * protocol gives it. */
static int
take_reply(const json_t *j, struct agent_reply *ret)
{
	static const char *const ok_keys[] = { "id", "ok", "result", NULL };
	static const char *const err_keys[] = { "id", "ok", "error", "detail", NULL };
	struct agent_reply rep = { 0 };
	const json_t *ok = json_object_get(j, "ok");
	const char *code, *detail;
	size_t dlen;
	int r;

	if (!json_is_boolean(ok)) {
		r = -EBADMSG;
		goto out;
	}
	if (json_is_true(ok)) {
		json_t *res = json_object_get(j, "result");

		if (!only_keys(j, ok_keys) || !json_is_object(res)) {
			r = -EBADMSG;
			goto out;
		}
		rep.ok = true;
		rep.result = json_incref(res);
	} else {
		code = json_string_value(json_object_get(j, "error"));
		detail = json_string_value(json_object_get(j, "detail"));
		if (!only_keys(j, err_keys) || code == NULL || detail == NULL ||
		    !error_code_ok(code)) {
			r = -EBADMSG;
			goto out;
		}
		/* The protocol caps detail at AGENT_DETAIL_MAX; a longer one
		 * is still a refusal, shown cut. */
		dlen = strnlen(detail, AGENT_DETAIL_MAX);
		rep.error = strdup(code);
		rep.detail = strndup(detail, dlen);
		if (rep.error == NULL || rep.detail == NULL) {
			r = -ENOMEM;
			goto out;
		}
	}
	*ret = rep;
	memset(&rep, 0, sizeof(rep));
	r = 0;
out:
	agent_reply_clear(&rep);
	return r;
}

/* An interim frame: {"id","pending":true,"request":ID}. */
static int
take_pending(const json_t *j, agent_pending_fn pending, void *arg)
{
	static const char *const keys[] = { "id", "pending", "request", NULL };
	const char *req = json_string_value(json_object_get(j, "request"));

	if (!only_keys(j, keys) || !json_is_true(json_object_get(j, "pending")) ||
	    req == NULL || req[0] == '\0' || strlen(req) > REQUEST_ID_MAX) {
		return -EBADMSG;
	}
	if (pending != NULL) {
		pending(arg, req);
	}
	return 0;
}

int
agent_request(struct agent_client *c, const json_t *req, int timeout_ms,
    agent_pending_fn pending, void *arg, struct agent_reply *ret)
{
	json_t *msg = NULL, *j = NULL;
	uint8_t *buf = NULL;
	char *s = NULL;
	int64_t deadline;
	uint64_t id;
	size_t len;
	int r;

	if (c == NULL || ret == NULL || !json_is_object(req) || !timeout_ok(timeout_ms) ||
	    json_object_get(req, "id") != NULL ||
	    json_string_value(json_object_get(req, "op")) == NULL ||
	    agent_json_check(req, 1) != 0) {
		r = -EINVAL;
		goto out;
	}
	deadline = now_ms() + timeout_ms;
	id = c->next_id;
	c->next_id = id >= ID_MAX ? 1 : id + 1;

	msg = json_copy((json_t *)req);
	if (msg == NULL || json_object_set_new(msg, "id", json_integer((json_int_t)id)) != 0) {
		r = -ENOMEM;
		goto out;
	}
	s = json_dumps(msg, JSON_COMPACT | JSON_SORT_KEYS);
	if (s == NULL) {
		r = -ENOMEM;
		goto out;
	}
	len = strlen(s);
	if (len > FRAME_MAX) {
		r = -EMSGSIZE;
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
	memcpy(buf + 4, s, len);
	r = write_all(c, buf, 4 + len, deadline);
	if (r != 0) {
		goto out;
	}

	for (;;) {
		json_t *jid;

		json_decref(j);
		j = NULL;
		r = read_frame(c, deadline, &j);
		if (r != 0) {
			goto out;
		}
		jid = json_object_get(j, "id");
		if (!json_is_integer(jid) || json_integer_value(jid) < 0) {
			r = -EBADMSG;
			goto out;
		}
		/* Replies to other ids are left over from an earlier user of
		 * the port, or answer frames the proxy could not attribute
		 * (id 0): not ours. */
		if ((uint64_t)json_integer_value(jid) != id) {
			continue;
		}
		if (json_object_get(j, "pending") != NULL) {
			r = take_pending(j, pending, arg);
			if (r != 0) {
				goto out;
			}
			continue;
		}
		r = take_reply(j, ret);
		goto out;
	}
out:
	json_decref(j);
	json_decref(msg);
	free(s);
	free(buf);
	return r;
}

int
agent_call(struct agent_client *c, const char *tool, const json_t *args,
    const char *reason, int timeout_ms, agent_pending_fn pending, void *arg,
    struct agent_reply *ret)
{
	json_t *req = NULL;
	int r;

	if (!agent_tool_name_ok(tool) || !json_is_object(args) ||
	    (reason != NULL && strlen(reason) > AGENT_REASON_MAX)) {
		r = -EINVAL;
		goto out;
	}
	req = json_pack("{s:s, s:s, s:O}", "op", "call", "tool", tool, "args", (json_t *)args);
	if (req == NULL) {
		r = -EINVAL;    /* or out of memory; jansson does not say */
		goto out;
	}
	if (reason != NULL) {
		json_t *rs = json_string(reason);

		if (rs == NULL || json_object_set_new(req, "reason", rs) != 0) {
			r = -EINVAL;    /* not UTF-8 */
			goto out;
		}
	}
	r = agent_request(c, req, timeout_ms, pending, arg, ret);
out:
	json_decref(req);
	return r;
}

int
agent_drop(struct agent_client *c, const json_t *envelope, int timeout_ms,
    struct agent_reply *ret)
{
	json_t *req = NULL;
	int r;

	if (!json_is_object(envelope)) {
		r = -EINVAL;
		goto out;
	}
	req = json_pack("{s:s, s:O}", "op", "drop", "envelope", (json_t *)envelope);
	if (req == NULL) {
		r = -ENOMEM;
		goto out;
	}
	r = agent_request(c, req, timeout_ms, NULL, NULL, ret);
out:
	json_decref(req);
	return r;
}

int
agent_envelope(struct agent_client *c, int timeout_ms, struct agent_reply *ret)
{
	json_t *req = NULL;
	int r;

	req = json_pack("{s:s}", "op", "envelope");
	if (req == NULL) {
		r = -ENOMEM;
		goto out;
	}
	r = agent_request(c, req, timeout_ms, NULL, NULL, ret);
out:
	json_decref(req);
	return r;
}
