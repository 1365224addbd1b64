#include "server.h"

#include <errno.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "log.h"
#include "parse.h"
#include "peer.h"

#define CONN_TIMEOUT_S   30
#define CONN_MEMORY      (32 * 1024)
/* A chunked body past the cap is read and dropped so that the client
 * still gets its 413; past this much more the connection is just closed. */
#define DISCARD_MAX      (16 * API_BODY_MAX)
/* libmicrohttpd's messages are mostly about what clients did (closed a
 * connection mid-request, sent garbage): at most this many a minute. */
#define LOG_BURST        10
#define LOG_WINDOW_MS    60000

struct server {
	struct MHD_Daemon *mhd;
	struct api *api;
	int epoll_fd;
	int64_t log_start;
	unsigned log_lines;
	unsigned log_dropped;
};

/* Per connection: the peer's uid (read once) and a body buffer reused by
 * the requests of a keep-alive connection. */
struct conn {
	bool peer_known;
	uid_t uid;
	bool too_large;
	char *body;
	size_t len;
	size_t cap;
	size_t discarded;
};

int
server_listen(const char *path, bool has_gid, gid_t gid, int *ret_fd)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct stat st;
	mode_t old;
	int fd = -1, r;

	if (strlen(path) >= sizeof(sa.sun_path)) {
		return -ENAMETOOLONG;
	}
	memcpy(sa.sun_path, path, strlen(path) + 1);
	if (lstat(path, &st) == 0) {
		int probe, e;

		if (!S_ISSOCK(st.st_mode)) {
			return -EEXIST;
		}
		/* A socket someone still answers on belongs to a running attestd.
		 * Non-blocking: a live one with a full backlog says EAGAIN
		 * rather than hanging this start. Only "refused" means stale. */
		probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
		if (probe < 0) {
			return -errno;
		}
		r = connect(probe, (const struct sockaddr *)&sa, sizeof(sa));
		e = errno;
		(void)close(probe);
		if (r == 0 || e == EAGAIN || e == EINPROGRESS) {
			return -EADDRINUSE;
		}
		if (e != ECONNREFUSED && e != ENOENT) {
			return -e;
		}
		if (unlink(path) < 0 && errno != ENOENT) {
			return -errno;
		}
	} else if (errno != ENOENT) {
		return -errno;
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		return -errno;
	}
	/* Created 0660 by bind itself: no window in which others may connect,
	 * and no chmod(2), which would follow a symlink put in its place. */
	old = umask(0117);
	r = bind(fd, (const struct sockaddr *)&sa, sizeof(sa));
	umask(old);
	if (r < 0) {
		r = -errno;
		goto out;
	}
	/* Nobody can connect before listen(): the group is set first. */
	if ((has_gid && lchown(path, (uid_t)-1, gid) < 0) || lstat(path, &st) < 0) {
		r = -errno;
		(void)unlink(path);
		goto out;
	}
	if (!S_ISSOCK(st.st_mode)) {
		r = -EPERM;   /* replaced under us: not ours to unlink */
		goto out;
	}
	/* A default ACL on the folder overrides the umask. */
	if ((st.st_mode & 07777) != 0660 &&
	    fchmodat(AT_FDCWD, path, 0660, AT_SYMLINK_NOFOLLOW) < 0) {
		r = -errno;
		(void)unlink(path);
		goto out;
	}
	if (listen(fd, 128) < 0) {
		r = -errno;
		(void)unlink(path);
		goto out;
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

static void mhd_log(void *cls, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));

static void
mhd_log(void *cls, const char *fmt, va_list ap)
{
	struct server *s = cls;
	int64_t now = (int64_t)clock_mono_ms();
	char line[512];
	size_t n;

	if (now - s->log_start >= LOG_WINDOW_MS) {
		if (s->log_dropped > 0) {
			log_warn("http: %u more messages suppressed", s->log_dropped);
		}
		s->log_start = now;
		s->log_lines = 0;
		s->log_dropped = 0;
	}
	if (s->log_lines >= LOG_BURST) {
		s->log_dropped++;
		return;
	}
	s->log_lines++;
	(void)vsnprintf(line, sizeof(line), fmt, ap);
	n = strlen(line);
	if (n > 0 && line[n - 1] == '\n') {
		line[n - 1] = '\0';
	}
	log_warn("http: %s", line);
}

static void
notify_connection(void *cls, struct MHD_Connection *mc, void **socket_context,
    enum MHD_ConnectionNotificationCode toe)
{
	struct conn *c = *socket_context;

	(void)cls;
	switch (toe) {
	case MHD_CONNECTION_NOTIFY_STARTED: {
		const union MHD_ConnectionInfo *ci;

		c = calloc(1, sizeof(*c));
		if (c == NULL) {
			break;   /* no context: every request gets a 500 */
		}
		ci = MHD_get_connection_info(mc, MHD_CONNECTION_INFO_CONNECTION_FD);
		if (ci != NULL && peer_uid(ci->connect_fd, &c->uid) == 0) {
			c->peer_known = true;
		}
		*socket_context = c;
		break;
	}
	case MHD_CONNECTION_NOTIFY_CLOSED: {
		if (c != NULL) {
			if (c->body != NULL) {
				explicit_bzero(c->body, c->cap);
			}
			free(c->body);
			free(c);
		}
		*socket_context = NULL;
		break;
	}
	default: {
		break;
	}
	}
}

static void
request_completed(void *cls, struct MHD_Connection *mc, void **req_cls,
    enum MHD_RequestTerminationCode toe)
{
	struct conn *c = *req_cls;

	(void)cls;
	(void)mc;
	(void)toe;
	if (c != NULL) {
		/* A body may hold a token (POST /v1/verify). */
		if (c->body != NULL) {
			explicit_bzero(c->body, c->len);
		}
		c->len = 0;
		c->too_large = false;
		c->discarded = 0;
	}
	*req_cls = NULL;
}

static void
wipe_free(void *p)
{
	char *s = p;

	explicit_bzero(s, strlen(s));
	free(s);
}

static enum MHD_Result
send_response(struct MHD_Connection *mc, struct api_response *rs)
{
	static const char oom[] = "{\"error\":\"internal\",\"detail\":\"out of memory\"}";
	struct MHD_Response *resp;
	enum MHD_Result ret;
	unsigned status = rs->status;

	if (rs->body == NULL) {
		status = 500;
		resp = MHD_create_response_from_buffer(sizeof(oom) - 1, (void *)oom,
		    MHD_RESPMEM_PERSISTENT);
	} else if (rs->secret) {
		/* A key or a token: wiped when libmicrohttpd lets go of it. */
		resp = MHD_create_response_from_buffer_with_free_callback_cls(rs->len, rs->body,
		    wipe_free, rs->body);
	} else {
		resp = MHD_create_response_from_buffer_with_free_callback(rs->len, rs->body, free);
	}
	if (resp == NULL) {
		api_response_clear(rs);
		return MHD_NO;
	}
	rs->body = NULL;   /* the response owns it now */
	(void)MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
	(void)MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
	if (rs->allow != NULL) {
		(void)MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, rs->allow);
	}
	ret = MHD_queue_response(mc, status, resp);
	MHD_destroy_response(resp);
	return ret;
}

static enum MHD_Result
send_error(struct MHD_Connection *mc, unsigned status, const char *code, const char *detail)
{
	struct api_response rs;

	api_error(status, code, detail, &rs);
	return send_response(mc, &rs);
}

static enum MHD_Result
collect_query(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
	struct api_request *rq = cls;

	(void)kind;
	if (rq->n_query >= API_MAX_QUERY) {
		rq->query_overflow = true;
		return MHD_NO;
	}
	rq->query[rq->n_query].key = key;
	rq->query[rq->n_query].value = value;
	rq->n_query++;
	return MHD_YES;
}

static int
append_body(struct conn *c, const char *data, size_t n)
{
	size_t need;

	if (__builtin_add_overflow(c->len, n, &need) || need > API_BODY_MAX) {
		return -EFBIG;
	}
	if (need > c->cap) {
		size_t cap = c->cap == 0 ? 4096 : c->cap;
		char *p;

		while (cap < need) {
			cap *= 2;
		}
		if (cap > API_BODY_MAX) {
			cap = API_BODY_MAX;
		}
		p = malloc(cap);
		if (p == NULL) {
			return -ENOMEM;
		}
		if (c->body != NULL) {
			memcpy(p, c->body, c->len);
			explicit_bzero(c->body, c->cap);
			free(c->body);
		}
		c->body = p;
		c->cap = cap;
	}
	memcpy(c->body + c->len, data, n);
	c->len = need;
	return 0;
}

static enum MHD_Result
access_handler(void *cls, struct MHD_Connection *mc, const char *url, const char *method,
    const char *version, const char *upload_data, size_t *upload_data_size, void **req_cls)
{
	struct server *s = cls;
	const union MHD_ConnectionInfo *ci;
	struct api_request rq;
	struct api_response rs;
	struct conn *c;

	(void)version;
	if (*req_cls == NULL) {
		const char *cl;
		uint64_t n;

		ci = MHD_get_connection_info(mc, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
		c = ci != NULL ? ci->socket_context : NULL;
		if (c == NULL) {
			return send_error(mc, 500, "internal", "out of memory");
		}
		*req_cls = c;
		/* Refuse an announced oversized body before reading any of it. */
		cl = MHD_lookup_connection_value(mc, MHD_HEADER_KIND,
		    MHD_HTTP_HEADER_CONTENT_LENGTH);
		if (cl != NULL && (parse_u64(cl, 0, API_BODY_MAX, &n) < 0)) {
			return send_error(mc, 413, "too_large", "the body is over 65536 bytes");
		}
		return MHD_YES;
	}
	c = *req_cls;
	if (*upload_data_size > 0) {
		size_t n = *upload_data_size;
		int r;

		*upload_data_size = 0;
		if (c->too_large) {
			c->discarded += n;
			return c->discarded > DISCARD_MAX ? MHD_NO : MHD_YES;
		}
		r = append_body(c, upload_data, n);
		if (r == -EFBIG) {
			c->too_large = true;
		} else if (r < 0) {
			return MHD_NO;
		}
		return MHD_YES;
	}
	if (c->too_large) {
		return send_error(mc, 413, "too_large", "the body is over 65536 bytes");
	}
	memset(&rq, 0, sizeof(rq));
	rq.method = method;
	rq.path = url;
	rq.peer_known = c->peer_known;
	rq.uid = c->uid;
	rq.body = c->body != NULL ? c->body : "";
	rq.body_len = c->len;
	(void)MHD_get_connection_values(mc, MHD_GET_ARGUMENT_KIND, collect_query, &rq);
	api_handle(s->api, &rq, (int64_t)time(NULL), &rs);
	return send_response(mc, &rs);
}

int
server_new(int listen_fd, unsigned max_connections, struct api *api, struct server **ret)
{
	struct server *s;
	const union MHD_DaemonInfo *di;

	s = calloc(1, sizeof(*s));
	if (s == NULL) {
		(void)close(listen_fd);
		return -ENOMEM;
	}
	s->api = api;
	/* No thread of its own: attestd's loop polls the epoll descriptor, so
	 * the keyring is only ever touched from one thread. */
	s->mhd = MHD_start_daemon(MHD_USE_EPOLL | MHD_USE_ERROR_LOG | MHD_USE_TURBO, 0,
	    NULL, NULL, access_handler, s,
	    MHD_OPTION_EXTERNAL_LOGGER, mhd_log, s,   /* first, to catch every message */
	    MHD_OPTION_LISTEN_SOCKET, listen_fd,
	    MHD_OPTION_CONNECTION_LIMIT, max_connections,
	    MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)CONN_TIMEOUT_S,
	    MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)CONN_MEMORY,
	    MHD_OPTION_NOTIFY_CONNECTION, notify_connection, NULL,
	    MHD_OPTION_NOTIFY_COMPLETED, request_completed, NULL,
	    MHD_OPTION_END);
	if (s->mhd == NULL) {
		(void)close(listen_fd);
		free(s);
		return -EIO;
	}
	di = MHD_get_daemon_info(s->mhd, MHD_DAEMON_INFO_EPOLL_FD);
	if (di == NULL) {
		MHD_stop_daemon(s->mhd);
		free(s);
		return -EIO;
	}
	s->epoll_fd = di->epoll_fd;
	*ret = s;
	return 0;
}

void
server_free(struct server *s)
{
	if (s == NULL) {
		return;
	}
	MHD_stop_daemon(s->mhd);
	free(s);
}

int
server_fd(const struct server *s)
{
	return s->epoll_fd;
}

int64_t
server_timeout_ms(struct server *s)
{
	MHD_UNSIGNED_LONG_LONG t = 0;

	if (MHD_get_timeout(s->mhd, &t) != MHD_YES) {
		return -1;
	}
	return t > INT64_MAX ? INT64_MAX : (int64_t)t;
}

int
server_run(struct server *s)
{
	return MHD_run(s->mhd) == MHD_YES ? 0 : -EIO;
}
