/* proxyapi: the tool proxies' JSON API (proxyapi.h, docs/approvals.md).
 *
 * The unix socket is created 0666: any local user may submit, because a
 * request only asks people for a decision and the token it may lead to is
 * bound to one VM's launch, one operation and its arguments. Every caller
 * is named by its peer uid (SO_PEERCRED) and sees only the requests it
 * submitted itself. One thread per connection: a long poll holds its
 * thread, and PROXYAPI_MAX_CONNS caps them. */
#include "proxyapi.h"

#include <errno.h>
#include <fcntl.h>
#include <gnutls/gnutls.h>
#include <gnutls/crypto.h>
#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "cjson.h"
#include "clock.h"
#include "fsutil.h"
#include "parse.h"
#include "peer.h"
#include "store.h"

#define CONN_TIMEOUT_S   (PROXYAPI_WAIT_MAX_S + 30)
#define PEM_MAX          (256 * 1024)
#define API_PREFIX       "/api/v1/requests"
#define POOL_KEEP        16      /* idle store handles kept for reuse */

struct proxyapi {
	const struct settings *cfg;
	struct requests *rq;
	struct MHD_Daemon *unix_d;
	struct MHD_Daemon *tls_d;
	char *cert_pem;
	char *key_pem;
	char *ca_pem;
	char db_path[SETTINGS_PATH_MAX + 32];
	/* Store handles are not shared by threads at a time, but are reused
	 * from one request to the next rather than opened per connection. */
	pthread_mutex_t pool_mu;
	struct store *pool[POOL_KEEP];
	size_t n_pool;
};

/* Per connection: who the caller is, its body, and while a request is
 * handled a store handle of its own. */
struct conn {
	bool tls;
	bool caller_known;
	char caller[STORE_CALLER_MAX + 1];
	struct store *st;
	bool too_large;
	char *body;
	size_t len;
};

static int
pool_get(struct proxyapi *p, struct store **ret)
{
	struct store *st = NULL;

	pthread_mutex_lock(&p->pool_mu);
	if (p->n_pool > 0) {
		st = p->pool[--p->n_pool];
	}
	pthread_mutex_unlock(&p->pool_mu);
	if (st != NULL) {
		*ret = st;
		return 0;
	}
	return store_open(p->db_path, ret);
}

static void
pool_put(struct proxyapi *p, struct store *st)
{
	if (st == NULL) {
		return;
	}
	store_rollback(st);
	pthread_mutex_lock(&p->pool_mu);
	if (p->n_pool < POOL_KEEP) {
		p->pool[p->n_pool++] = st;
		st = NULL;
	}
	pthread_mutex_unlock(&p->pool_mu);
	store_close(st);
}

static enum MHD_Result
send_json(struct MHD_Connection *mc, unsigned status, json_t *j, bool secret)
{
	static const char oom[] = "{\"error\":\"internal\",\"detail\":\"out of memory\"}";
	struct MHD_Response *resp;
	enum MHD_Result ret;
	char *text = NULL;
	size_t len = 0;

	if (j == NULL || cjson_dump(j, &text, &len) != 0) {
		status = 500;
		resp = MHD_create_response_from_buffer(sizeof(oom) - 1, (void *)oom,
		    MHD_RESPMEM_PERSISTENT);
	} else {
		resp = MHD_create_response_from_buffer(len, text, MHD_RESPMEM_MUST_COPY);
	}
	if (text != NULL) {
		if (secret) {
			explicit_bzero(text, len);
		}
		free(text);
	}
	if (secret && j != NULL) {
		json_t *t = json_object_get(j, "token");

		if (json_is_string(t)) {
			explicit_bzero((char *)json_string_value(t), json_string_length(t));
		}
	}
	json_decref(j);
	if (resp == NULL) {
		return MHD_NO;
	}
	(void)MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
	(void)MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
	ret = MHD_queue_response(mc, status, resp);
	MHD_destroy_response(resp);
	return ret;
}

static enum MHD_Result
send_error(struct MHD_Connection *mc, unsigned status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static enum MHD_Result
send_error(struct MHD_Connection *mc, unsigned status, const char *code, const char *fmt, ...)
{
	char detail[512];
	va_list ap;

	va_start(ap, fmt);
	(void)vsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);
	return send_json(mc, status, json_pack("{s:s, s:s}", "error", code, "detail", detail),
	    false);
}

static enum MHD_Result
send_store_error(struct MHD_Connection *mc, int r)
{
	if (r == -EBUSY) {
		return send_error(mc, 503, "busy", "the database is busy; try again");
	}
	return send_error(mc, 500, "internal", "the database failed (%s)", strerror(-r));
}

/* The state a proxy sees: minting is the approver's business. */
static const char *
public_state(enum store_state s)
{
	return s == STORE_MINTING ? "pending" : store_state_name(s);
}

static json_t *
state_json(const struct store_request *r)
{
	return json_pack("{s:s, s:s, s:s, s:I}", "id", r->ar.request, "state",
	    public_state(r->state), "reason", r->state_reason != NULL ? r->state_reason : "",
	    "expires", (json_int_t)r->expires);
}

/* "cert:" and the SHA-256 of the client certificate's DER, once the peer
 * verified against the configured CA. */
static int
tls_caller(struct MHD_Connection *mc, char ret[STORE_CALLER_MAX + 1])
{
	const union MHD_ConnectionInfo *ci;
	gnutls_session_t s;
	const gnutls_datum_t *peers;
	unsigned int n = 0, status = 0;
	uint8_t h[32];
	char hex[65];

	ci = MHD_get_connection_info(mc, MHD_CONNECTION_INFO_GNUTLS_SESSION);
	if (ci == NULL || ci->tls_session == NULL) {
		return -EACCES;
	}
	s = (gnutls_session_t)ci->tls_session;
	if (gnutls_certificate_verify_peers2(s, &status) != GNUTLS_E_SUCCESS || status != 0) {
		return -EACCES;
	}
	peers = gnutls_certificate_get_peers(s, &n);
	if (peers == NULL || n == 0) {
		return -EACCES;
	}
	if (gnutls_hash_fast(GNUTLS_DIG_SHA256, peers[0].data, peers[0].size, h) != 0) {
		return -EIO;
	}
	format_hex(h, sizeof(h), hex);
	(void)snprintf(ret, STORE_CALLER_MAX + 1, "cert:%s", hex);
	return 0;
}

static void
notify_connection(void *cls, struct MHD_Connection *mc, void **socket_context,
    enum MHD_ConnectionNotificationCode toe)
{
	struct conn *c = *socket_context;
	bool tls = cls != NULL;

	switch (toe) {
	case MHD_CONNECTION_NOTIFY_STARTED: {
		const union MHD_ConnectionInfo *ci;
		uid_t uid;

		c = calloc(1, sizeof(*c));
		if (c == NULL) {
			break;   /* no context: every request gets a 500 */
		}
		c->tls = tls;
		if (!tls) {
			ci = MHD_get_connection_info(mc, MHD_CONNECTION_INFO_CONNECTION_FD);
			if (ci != NULL && peer_uid(ci->connect_fd, &uid) == 0) {
				c->caller_known = true;
				(void)snprintf(c->caller, sizeof(c->caller), "uid:%u", (unsigned)uid);
			}
		}
		*socket_context = c;
		break;
	}
	case MHD_CONNECTION_NOTIFY_CLOSED: {
		if (c != NULL) {
			if (c->body != NULL) {
				explicit_bzero(c->body, c->len);
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
		if (c->body != NULL) {
			explicit_bzero(c->body, c->len);
		}
		free(c->body);
		c->body = NULL;
		c->len = 0;
		c->too_large = false;
	}
	*req_cls = NULL;
}

static int
append_body(struct conn *c, const char *data, size_t n)
{
	size_t need;
	char *p;

	if (__builtin_add_overflow(c->len, n, &need) || need > PROXYAPI_BODY_MAX) {
		return -EFBIG;
	}
	p = malloc(need + 1);
	if (p == NULL) {
		return -ENOMEM;
	}
	if (c->body != NULL) {
		memcpy(p, c->body, c->len);
		explicit_bzero(c->body, c->len);
		free(c->body);
	}
	memcpy(p + c->len, data, n);
	p[need] = '\0';
	c->body = p;
	c->len = need;
	return 0;
}

/* --- routes ------------------------------------------------------------------ */

static enum MHD_Result
do_submit(struct proxyapi *p, struct conn *c, struct MHD_Connection *mc)
{
	struct requests_submit sub;
	struct store_request r;
	char detail[256] = "";
	bool created = false;
	enum MHD_Result ret;
	int rc;

	memset(&sub, 0, sizeof(sub));
	memset(&r, 0, sizeof(r));
	rc = requests_parse_submit(c->body != NULL ? c->body : "", c->len, &sub, detail,
	    sizeof(detail));
	if (rc != 0) {
		return send_error(mc, 400, "bad_request", "%s", detail);
	}
	rc = requests_submit(p->rq, c->st, c->caller, &sub, (int64_t)time(NULL), &r, &created);
	requests_submit_clear(&sub);
	if (rc == -EEXIST) {
		return send_error(mc, 409, "conflict", "this id was submitted with other content");
	}
	if (rc == -ENOSPC) {
		return send_error(mc, 429, "too_many_pending",
		    "the approver holds %u pending requests already", p->cfg->max_pending);
	}
	if (rc != 0) {
		return send_store_error(mc, rc);
	}
	ret = send_json(mc, created ? 201 : 200, json_pack("{s:s, s:s, s:s, s:I}", "id",
	    r.ar.request, "digest", r.digest, "state", public_state(r.state), "expires",
	    (json_int_t)r.expires), false);
	store_request_clear(&r);
	return ret;
}

/* The request if it is this caller's; -ENOENT otherwise. */
static int
get_own(struct conn *c, const char *id, struct store_request *ret)
{
	struct store_request r;
	int rc;

	memset(&r, 0, sizeof(r));
	rc = store_request_get(c->st, id, &r);
	if (rc == 0 && strcmp(r.caller, c->caller) != 0) {
		store_request_clear(&r);
		return -ENOENT;
	}
	if (rc == 0) {
		*ret = r;
	}
	return rc;
}

static enum MHD_Result
do_get(struct proxyapi *p, struct conn *c, struct MHD_Connection *mc, const char *id)
{
	struct store_request r;
	const char *w;
	uint64_t wait_s = 0;
	int64_t deadline;
	enum MHD_Result ret;
	int rc;

	w = MHD_lookup_connection_value(mc, MHD_GET_ARGUMENT_KIND, "wait");
	if (w != NULL && parse_u64(w, 0, UINT32_MAX, &wait_s) != 0) {
		return send_error(mc, 400, "bad_request", "wait must be a number of seconds");
	}
	if (wait_s > PROXYAPI_WAIT_MAX_S) {
		wait_s = PROXYAPI_WAIT_MAX_S;
	}
	deadline = (int64_t)clock_mono_ms() + (int64_t)wait_s * 1000;
	for (;;) {
		/* The generation first: a change after it wakes the wait below. */
		uint64_t gen = requests_generation(p->rq);

		memset(&r, 0, sizeof(r));
		rc = get_own(c, id, &r);
		if (rc == -ENOENT) {
			return send_error(mc, 404, "not_found", "no such request");
		}
		if (rc != 0) {
			return send_store_error(mc, rc);
		}
		if ((r.state != STORE_PENDING && r.state != STORE_MINTING) ||
		    (int64_t)clock_mono_ms() >= deadline) {
			break;
		}
		store_request_clear(&r);
		/* No handle is held while the poll waits. */
		pool_put(p, c->st);
		c->st = NULL;
		requests_wait_change(p->rq, gen, (uint64_t)deadline);
		rc = pool_get(p, &c->st);
		if (rc != 0) {
			return send_store_error(mc, rc);
		}
	}
	ret = send_json(mc, 200, state_json(&r), false);
	store_request_clear(&r);
	return ret;
}

static enum MHD_Result
do_pickup(struct proxyapi *p, struct conn *c, struct MHD_Connection *mc, const char *id)
{
	struct store_request r;
	char *tok = NULL;
	enum MHD_Result ret;
	json_t *j;
	int rc;

	memset(&r, 0, sizeof(r));
	rc = get_own(c, id, &r);
	if (rc == -ENOENT) {
		return send_error(mc, 404, "not_found", "no such request");
	}
	if (rc != 0) {
		return send_store_error(mc, rc);
	}
	rc = requests_pickup(p->rq, c->st, c->caller, id, (int64_t)time(NULL), &tok);
	if (rc == -ENOENT) {
		ret = send_error(mc, 404, "not_found", "no such request");
	} else if (rc == -EALREADY) {
		ret = send_error(mc, 410, "picked_up", "the token was picked up before");
	} else if (rc == -EAGAIN) {
		ret = send_error(mc, 409, "not_approved", "the request is %s",
		    public_state(r.state));
	} else if (rc != 0) {
		ret = send_store_error(mc, rc);
	} else {
		j = json_pack("{s:s}", "token", tok);
		explicit_bzero(tok, strlen(tok));
		free(tok);
		ret = send_json(mc, 200, j, true);
	}
	store_request_clear(&r);
	return ret;
}

static enum MHD_Result
do_cancel(struct proxyapi *p, struct conn *c, struct MHD_Connection *mc, const char *id)
{
	struct store_request r;
	enum MHD_Result ret;
	int rc;

	rc = requests_cancel(p->rq, c->st, c->caller, id, (int64_t)time(NULL));
	if (rc == -ENOENT) {
		return send_error(mc, 404, "not_found", "no such request");
	}
	if (rc != 0 && rc != -ESTALE) {
		return send_store_error(mc, rc);
	}
	memset(&r, 0, sizeof(r));
	rc = get_own(c, id, &r);
	if (rc != 0) {
		return rc == -ENOENT ? send_error(mc, 404, "not_found", "no such request") :
		    send_store_error(mc, rc);
	}
	/* Cancelling a request that is already final changes nothing: the
	 * reply says what it is. */
	ret = send_json(mc, 200, state_json(&r), false);
	store_request_clear(&r);
	return ret;
}

static enum MHD_Result
route(struct proxyapi *p, struct conn *c, struct MHD_Connection *mc, const char *url,
    const char *method)
{
	char id[TOKEN_ID_MAX + 1];
	const char *rest, *slash;
	size_t n;
	bool is_get = strcmp(method, "GET") == 0, is_post = strcmp(method, "POST") == 0,
	    is_del = strcmp(method, "DELETE") == 0;

	if (strcmp(url, API_PREFIX) == 0) {
		if (!is_post) {
			return send_error(mc, 405, "method_not_allowed", "use POST");
		}
		return do_submit(p, c, mc);
	}
	if (strncmp(url, API_PREFIX "/", sizeof(API_PREFIX)) != 0) {
		return send_error(mc, 404, "not_found", "no such path");
	}
	rest = url + sizeof(API_PREFIX);
	slash = strchr(rest, '/');
	n = slash != NULL ? (size_t)(slash - rest) : strlen(rest);
	if (n == 0 || n > TOKEN_ID_MAX) {
		return send_error(mc, 404, "not_found", "no such request");
	}
	memcpy(id, rest, n);
	id[n] = '\0';
	if (parse_ident(id, TOKEN_ID_MAX) != 0) {
		return send_error(mc, 404, "not_found", "no such request");
	}
	if (slash == NULL) {
		if (is_get) {
			return do_get(p, c, mc, id);
		}
		if (is_del) {
			return do_cancel(p, c, mc, id);
		}
		return send_error(mc, 405, "method_not_allowed", "use GET or DELETE");
	}
	if (strcmp(slash, "/token") == 0) {
		if (!is_post) {
			return send_error(mc, 405, "method_not_allowed", "use POST");
		}
		return do_pickup(p, c, mc, id);
	}
	return send_error(mc, 404, "not_found", "no such path");
}

static enum MHD_Result
access_handler(void *cls, struct MHD_Connection *mc, const char *url, const char *method,
    const char *version, const char *upload_data, size_t *upload_data_size, void **req_cls)
{
	struct proxyapi *p = cls;
	const union MHD_ConnectionInfo *ci;
	enum MHD_Result ret;
	struct conn *c;
	int r;

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
		cl = MHD_lookup_connection_value(mc, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
		if (cl != NULL && parse_u64(cl, 0, PROXYAPI_BODY_MAX, &n) != 0) {
			return send_error(mc, 413, "too_large", "the body is over %d bytes",
			    PROXYAPI_BODY_MAX);
		}
		return MHD_YES;
	}
	c = *req_cls;
	if (*upload_data_size > 0) {
		size_t n = *upload_data_size;

		*upload_data_size = 0;
		if (c->too_large) {
			return MHD_YES;
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
		return send_error(mc, 413, "too_large", "the body is over %d bytes", PROXYAPI_BODY_MAX);
	}
	if (c->tls && !c->caller_known) {
		if (tls_caller(mc, c->caller) != 0) {
			return send_error(mc, 403, "forbidden",
			    "a client certificate signed by the configured CA is required");
		}
		c->caller_known = true;
	}
	if (!c->caller_known) {
		return send_error(mc, 403, "forbidden", "the caller could not be identified");
	}
	r = pool_get(p, &c->st);
	if (r != 0) {
		return send_store_error(mc, r);
	}
	ret = route(p, c, mc, url, method);
	pool_put(p, c->st);
	c->st = NULL;
	return ret;
}

/* The socket is made 0666 (see the top of the file); a
 * stale socket from an earlier run is replaced, a live one is refused. */
static int
listen_unix(const char *path, int *ret_fd)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct stat st;
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
		if (unlink(path) < 0 && errno != ENOENT) {
			return -errno;
		}
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		return -errno;
	}
	/* No umask(2) here: it is the whole process's, and other threads
	 * create files. Until the chmod the socket is narrower, never wider. */
	if (bind(fd, (const struct sockaddr *)&sa, sizeof(sa)) < 0) {
		r = -errno;
		goto out;
	}
	if (lstat(path, &st) < 0 || !S_ISSOCK(st.st_mode)) {
		r = -EPERM;   /* replaced under us: not ours to unlink */
		goto out;
	}
	if (chmod(path, 0666) < 0) {
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

/* "host:port" with a numeric IPv4 or IPv6 ("[::1]:8444") host. */
static int
listen_tcp(const char *hostport, int *ret_fd)
{
	struct sockaddr_storage ss;
	socklen_t sl;
	char host[SETTINGS_URL_MAX + 1];
	const char *colon = strrchr(hostport, ':');
	uint64_t port;
	size_t n;
	int fd, one = 1;

	memset(&ss, 0, sizeof(ss));
	if (colon == NULL || parse_u64(colon + 1, 1, 65535, &port) != 0) {
		return -EINVAL;
	}
	n = (size_t)(colon - hostport);
	if (n == 0 || n >= sizeof(host)) {
		return -EINVAL;
	}
	memcpy(host, hostport, n);
	host[n] = '\0';
	if (host[0] == '[' && n > 2 && host[n - 1] == ']') {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;

		host[n - 1] = '\0';
		if (inet_pton(AF_INET6, host + 1, &s6->sin6_addr) != 1) {
			return -EINVAL;
		}
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)port);
		sl = sizeof(*s6);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;

		if (inet_pton(AF_INET, host, &s4->sin_addr) != 1) {
			return -EINVAL;
		}
		s4->sin_family = AF_INET;
		s4->sin_port = htons((uint16_t)port);
		sl = sizeof(*s4);
	}
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		return -errno;
	}
	(void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (const struct sockaddr *)&ss, sl) < 0 || listen(fd, 128) < 0) {
		int e = -errno;

		(void)close(fd);
		return e;
	}
	*ret_fd = fd;
	return 0;
}

static struct MHD_Daemon *
start_daemon(struct proxyapi *p, int fd, bool tls)
{
	unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD |
	    MHD_USE_ERROR_LOG;

	if (!tls) {
		return MHD_start_daemon(flags, 0, NULL, NULL, access_handler, p,
		    MHD_OPTION_LISTEN_SOCKET, fd,
		    MHD_OPTION_CONNECTION_LIMIT, (unsigned)PROXYAPI_MAX_CONNS,
		    MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)CONN_TIMEOUT_S,
		    MHD_OPTION_NOTIFY_CONNECTION, notify_connection, NULL,
		    MHD_OPTION_NOTIFY_COMPLETED, request_completed, NULL,
		    MHD_OPTION_END);
	}
	return MHD_start_daemon(flags | MHD_USE_TLS, 0, NULL, NULL, access_handler, p,
	    MHD_OPTION_LISTEN_SOCKET, fd,
	    MHD_OPTION_CONNECTION_LIMIT, (unsigned)PROXYAPI_MAX_CONNS,
	    MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)CONN_TIMEOUT_S,
	    MHD_OPTION_NOTIFY_CONNECTION, notify_connection, (void *)p,
	    MHD_OPTION_NOTIFY_COMPLETED, request_completed, NULL,
	    MHD_OPTION_HTTPS_MEM_CERT, p->cert_pem,
	    MHD_OPTION_HTTPS_MEM_KEY, p->key_pem,
	    MHD_OPTION_HTTPS_MEM_TRUST, p->ca_pem,
	    MHD_OPTION_END);
}

static void
wipe_str(char *s)
{
	if (s != NULL) {
		explicit_bzero(s, strlen(s));
		free(s);
	}
}

int
proxyapi_start(const struct settings *cfg, struct requests *rq, struct proxyapi **ret,
    char *err, size_t errsz)
{
	struct proxyapi *p;
	size_t len;
	int fd = -1, r;

	p = calloc(1, sizeof(*p));
	if (p == NULL) {
		return -ENOMEM;
	}
	p->cfg = cfg;
	p->rq = rq;
	(void)pthread_mutex_init(&p->pool_mu, NULL);
	(void)snprintf(p->db_path, sizeof(p->db_path), "%s/%s", cfg->state_dir, SETTINGS_DB_FILE);
	r = listen_unix(cfg->api_socket, &fd);
	if (r != 0) {
		(void)snprintf(err, errsz, "cannot listen on %s: %s", cfg->api_socket, strerror(-r));
		goto out;
	}
	p->unix_d = start_daemon(p, fd, false);
	if (p->unix_d == NULL) {
		(void)close(fd);
		(void)unlink(cfg->api_socket);
		(void)snprintf(err, errsz, "cannot start the API on %s", cfg->api_socket);
		r = -EIO;
		goto out;
	}
	fd = -1;
	if (cfg->api_listen[0] != '\0') {
		if (cfg->api_client_ca[0] == '\0') {
			(void)snprintf(err, errsz, "api_listen needs api_client_ca");
			r = -EINVAL;
			goto out;
		}
		if ((r = fs_read_file(cfg->tls_cert, PEM_MAX, &p->cert_pem, &len)) != 0 ||
		    (r = fs_read_file(cfg->tls_key, PEM_MAX, &p->key_pem, &len)) != 0 ||
		    (r = fs_read_file(cfg->api_client_ca, PEM_MAX, &p->ca_pem, &len)) != 0) {
			(void)snprintf(err, errsz, "cannot read the API's TLS files: %s", strerror(-r));
			goto out;
		}
		r = listen_tcp(cfg->api_listen, &fd);
		if (r != 0) {
			(void)snprintf(err, errsz, "cannot listen on %s: %s", cfg->api_listen,
			    strerror(-r));
			goto out;
		}
		p->tls_d = start_daemon(p, fd, true);
		if (p->tls_d == NULL) {
			(void)close(fd);
			(void)snprintf(err, errsz, "cannot start the HTTPS API on %s", cfg->api_listen);
			r = -EIO;
			goto out;
		}
		fd = -1;
	}
	*ret = p;
	p = NULL;
	r = 0;
out:
	proxyapi_stop(p);
	return r;
}

void
proxyapi_stop(struct proxyapi *p)
{
	if (p == NULL) {
		return;
	}
	/* Long polls end now rather than at their deadline. */
	requests_shutdown(p->rq);
	if (p->unix_d != NULL) {
		MHD_stop_daemon(p->unix_d);
		(void)unlink(p->cfg->api_socket);
	}
	if (p->tls_d != NULL) {
		MHD_stop_daemon(p->tls_d);
	}
	while (p->n_pool > 0) {
		store_close(p->pool[--p->n_pool]);
	}
	pthread_mutex_destroy(&p->pool_mu);
	wipe_str(p->key_pem);
	free(p->cert_pem);
	free(p->ca_pem);
	free(p);
}
