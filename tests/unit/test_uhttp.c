/* Unit tests for lib/uhttp.c against a scripted HTTP server on a unix
 * socket in this process, and for the verifier's attestd key source over
 * it (the JSON of GET /v1/keys and POST /v1/verify). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "b64url.h"
#include "cjson.h"
#include "token.h"
#include "uhttp.h"
#include "verifier.h"

#define EPOCH       77
#define NOT_BEFORE  1768442400
#define EPOCH_END   (NOT_BEFORE + 3600)
#define NOT_AFTER   (EPOCH_END + 3600)
#define NOW         (NOT_BEFORE + 100)
#define STRICT_EPOCH (NOT_BEFORE / 3600)   /* the epoch NOT_BEFORE starts */

struct server {
	char dir[64];
	char path[108];
	int lfd;
	pthread_t thread;
	bool stop;
	unsigned accepts;
	unsigned requests;
	unsigned key_requests;
	char last_body[4096];
};

static struct server srv;
static uint8_t the_key[TOKEN_KEY_LEN];

static int
send_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);

		if (w <= 0) {
			return -1;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static int
reply(int fd, int status, const char *extra_headers, const char *body, size_t len)
{
	char head[512];

	snprintf(head, sizeof(head), "HTTP/1.1 %d X\r\nContent-Type: application/json\r\n"
	    "Content-Length: %zu\r\n%s\r\n", status, len, extra_headers);
	if (send_all(fd, head, strlen(head)) != 0) {
		return -1;
	}
	return send_all(fd, body, len);
}

static int
reply_str(int fd, int status, const char *body)
{
	return reply(fd, status, "", body, strlen(body));
}

/* The keys endpoint: "?gen=1&epoch=E" with E deciding the answer. */
static int
serve_key(int fd, const char *path)
{
	char b64[64], body[512];
	unsigned long epoch = 0;

	srv.key_requests++;
	if (sscanf(path, "/v1/keys/proxy?gen=1&epoch=%lu", &epoch) != 1) {
		return reply_str(fd, 404, "{\"error\":\"not_found\",\"detail\":\"x\"}");
	}
	b64url_encode(the_key, sizeof(the_key), b64, sizeof(b64));
	switch (epoch) {
	case EPOCH: {
		snprintf(body, sizeof(body), "{\"aud\":\"proxy\",\"gen\":1,\"epoch\":%d,"
		    "\"key\":\"%s\",\"not_before\":%d,\"epoch_end\":%d,\"not_after\":%d}",
		    EPOCH, b64, NOT_BEFORE, EPOCH_END, NOT_AFTER);
		return reply_str(fd, 200, body);
	}
	case EPOCH + 1: {
		return reply_str(fd, 410, "{\"error\":\"key_expired\",\"detail\":\"x\"}");
	}
	case EPOCH + 2: {
		/* answers for another epoch than asked */
		snprintf(body, sizeof(body), "{\"aud\":\"proxy\",\"gen\":1,\"epoch\":%d,"
		    "\"key\":\"%s\",\"not_before\":%d,\"epoch_end\":%d,\"not_after\":%d}",
		    EPOCH, b64, NOT_BEFORE, EPOCH_END, NOT_AFTER);
		return reply_str(fd, 200, body);
	}
	case EPOCH + 3: {
		/* a short key */
		snprintf(body, sizeof(body), "{\"aud\":\"proxy\",\"gen\":1,\"epoch\":%d,"
		    "\"key\":\"%.42s\",\"not_before\":%d,\"epoch_end\":%d,\"not_after\":%d}",
		    EPOCH + 3, b64, NOT_BEFORE, EPOCH_END, NOT_AFTER);
		return reply_str(fd, 200, body);
	}
	case EPOCH + 4: {
		return reply_str(fd, 503, "{\"error\":\"unavailable\",\"detail\":\"x\"}");
	}
	case EPOCH + 5: {
		/* attestd in strict mode */
		return reply_str(fd, 409, "{\"error\":\"strict_mode\",\"detail\":\"x\"}");
	}
	case EPOCH + 6: {
		/* a 409 this client does not know */
		return reply_str(fd, 409, "{\"error\":\"conflict\",\"detail\":\"x\"}");
	}
	default: {
		return reply_str(fd, 404, "{\"error\":\"not_found\",\"detail\":\"x\"}");
	}
	}
}

static int
serve(int fd, const char *method, const char *path, const char *body, size_t blen)
{
	static char big[UHTTP_MAX_BODY + 16];
	char tmp[4200];

	srv.requests++;
	snprintf(srv.last_body, sizeof(srv.last_body), "%.*s", (int)blen, body);
	if (strcmp(path, "/ok") == 0) {
		return reply_str(fd, 200, "{\"ok\":true}");
	}
	if (strcmp(path, "/echo") == 0) {
		snprintf(tmp, sizeof(tmp), "{\"method\":\"%s\",\"len\":%zu}", method, blen);
		return reply_str(fd, 200, tmp);
	}
	if (strcmp(path, "/close") == 0) {
		reply(fd, 200, "Connection: close\r\n", "{}", 2);
		return -1;
	}
	if (strcmp(path, "/exact") == 0 || strcmp(path, "/big") == 0) {
		size_t n = strcmp(path, "/big") == 0 ? UHTTP_MAX_BODY + 1 : UHTTP_MAX_BODY;

		memset(big, ' ', n);
		big[0] = '{';
		big[n - 1] = '}';
		return reply(fd, 200, "", big, n);
	}
	if (strcmp(path, "/bigchunked") == 0 || strncmp(path, "/chunks/", 8) == 0) {
		/* No Content-Length: the cap must hold while reading. 20 (or N
		 * for /chunks/N) chunks of 64 KiB. */
		const char *head = "HTTP/1.1 200 X\r\nTransfer-Encoding: chunked\r\n\r\n";
		char line[32];
		int i, chunks = path[1] == 'c' ? (int)strtol(path + 8, NULL, 10) : 20;

		if (send_all(fd, head, strlen(head)) != 0) {
			return -1;
		}
		memset(big, 'a', 65536);
		for (i = 0; i < chunks; i++) {
			snprintf(line, sizeof(line), "%x\r\n", 65536);
			if (send_all(fd, line, strlen(line)) != 0 || send_all(fd, big, 65536) != 0 ||
			    send_all(fd, "\r\n", 2) != 0) {
				return -1;
			}
		}
		return send_all(fd, "0\r\n\r\n", 5);
	}
	if (strcmp(path, "/garbage") == 0) {
		send_all(fd, "SSH-2.0-OpenSSH\r\n\r\n", 19);
		return -1;
	}
	if (strcmp(path, "/nothing") == 0) {
		return -1;
	}
	if (strcmp(path, "/notjson") == 0) {
		return reply_str(fd, 200, "hello");
	}
	if (strcmp(path, "/array") == 0) {
		return reply_str(fd, 200, "[1,2]");
	}
	if (strcmp(path, "/dup") == 0) {
		return reply_str(fd, 200, "{\"a\":1,\"a\":2}");
	}
	if (strcmp(path, "/404") == 0) {
		return reply_str(fd, 404, "{\"error\":\"not_found\",\"detail\":\"no\"}");
	}
	if (strcmp(path, "/slow") == 0) {
		usleep(1500 * 1000);
		return reply_str(fd, 200, "{}");
	}
	if (strncmp(path, "/v1/keys/", 9) == 0) {
		return serve_key(fd, path);
	}
	if (strcmp(path, "/v1/verify") == 0) {
		if (strstr(srv.last_body, "\"token\":\"w1.") == NULL) {
			return reply_str(fd, 400, "{\"error\":\"bad_request\",\"detail\":\"x\"}");
		}
		/* The server's verdict is scripted by the test through the tag. */
		if (strstr(srv.last_body, "BADMAA") != NULL) {
			return reply_str(fd, 422, "{\"error\":\"bad_mac\",\"detail\":\"x\"}");
		}
		/* An older attestd's reply, without the key's window. */
		if (strstr(srv.last_body, "NOWINA") != NULL) {
			return reply_str(fd, 200, "{\"mac\":\"ok\"}");
		}
		snprintf(tmp, sizeof(tmp), "{\"mac\":\"ok\",\"not_before\":%d,\"epoch_end\":%d,"
		    "\"not_after\":%d}", NOT_BEFORE, EPOCH_END, NOT_AFTER);
		return reply_str(fd, 200, tmp);
	}
	return reply_str(fd, 404, "{\"error\":\"not_found\",\"detail\":\"x\"}");
}

/* One connection: requests until the client closes. */
static void
connection(int fd)
{
	static char buf[65536];
	size_t have = 0;

	for (;;) {
		char method[16], path[2048], *end, *cl;
		size_t head_len, blen = 0;
		ssize_t n;

		while ((end = memmem(buf, have, "\r\n\r\n", 4)) == NULL) {
			if (have == sizeof(buf)) {
				return;
			}
			n = recv(fd, buf + have, sizeof(buf) - have, 0);
			if (n <= 0) {
				return;
			}
			have += (size_t)n;
		}
		head_len = (size_t)(end - buf) + 4;
		*end = '\0';
		if (sscanf(buf, "%15s %2047s", method, path) != 2) {
			return;
		}
		cl = strcasestr(buf, "\r\ncontent-length:");
		if (cl != NULL) {
			blen = strtoul(cl + 17, NULL, 10);
		}
		if (blen > sizeof(buf) - head_len) {
			return;
		}
		while (have < head_len + blen) {
			n = recv(fd, buf + have, sizeof(buf) - have, 0);
			if (n <= 0) {
				return;
			}
			have += (size_t)n;
		}
		if (serve(fd, method, path, buf + head_len, blen) != 0) {
			return;
		}
		memmove(buf, buf + head_len + blen, have - head_len - blen);
		have -= head_len + blen;
	}
}

static void *
server_main(void *arg)
{
	(void)arg;
	for (;;) {
		int fd = accept(srv.lfd, NULL, NULL);

		if (fd < 0) {
			if (srv.stop) {
				return NULL;
			}
			continue;
		}
		srv.accepts++;
		connection(fd);
		close(fd);
	}
}

static int
group_setup(void **state)
{
	struct sockaddr_un sa;

	(void)state;
	memset(the_key, 0x5a, sizeof(the_key));
	snprintf(srv.dir, sizeof(srv.dir), "/tmp/test_uhttp.XXXXXX");
	if (mkdtemp(srv.dir) == NULL) {
		return -1;
	}
	snprintf(srv.path, sizeof(srv.path), "%s/s.sock", srv.dir);
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	memcpy(sa.sun_path, srv.path, strlen(srv.path) + 1);
	srv.lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (srv.lfd < 0 || bind(srv.lfd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
	    listen(srv.lfd, 8) != 0) {
		return -1;
	}
	return pthread_create(&srv.thread, NULL, server_main, NULL) == 0 ? 0 : -1;
}

static int
group_teardown(void **state)
{
	(void)state;
	srv.stop = true;
	shutdown(srv.lfd, SHUT_RDWR);
	pthread_join(srv.thread, NULL);
	close(srv.lfd);
	unlink(srv.path);
	rmdir(srv.dir);
	return 0;
}

static struct uhttp *
client(void)
{
	struct uhttp *h = NULL;

	assert_int_equal(uhttp_new_unix(srv.path, &h), 0);
	return h;
}

static int
get(struct uhttp *h, const char *path, long *status)
{
	char *body = NULL;
	size_t len = 0;
	int r;

	r = uhttp_request(h, "GET", path, NULL, 0, status, &body, &len);
	if (r == 0) {
		assert_non_null(body);
		assert_int_equal(strlen(body), len);
	}
	free(body);
	return r;
}

static void
test_keepalive(void **state)
{
	struct uhttp *h = client();
	unsigned before = srv.accepts;
	long status = 0;
	int i;

	(void)state;
	for (i = 0; i < 20; i++) {
		assert_int_equal(get(h, "/ok", &status), 0);
		assert_int_equal(status, 200);
	}
	uhttp_free(h);
	/* One connection for all twenty requests. */
	assert_int_equal(srv.accepts - before, 1);
}

static void
test_reconnects_after_close(void **state)
{
	struct uhttp *h = client();
	unsigned before = srv.accepts;
	long status = 0;

	(void)state;
	assert_int_equal(get(h, "/close", &status), 0);
	assert_int_equal(get(h, "/ok", &status), 0);
	assert_int_equal(status, 200);
	uhttp_free(h);
	assert_int_equal(srv.accepts - before, 2);
}

static void
test_methods_and_bodies(void **state)
{
	struct uhttp *h = client();
	json_t *j = NULL, *req;
	char *body = NULL;
	size_t len = 0;
	long status = 0;

	(void)state;
	assert_int_equal(uhttp_request(h, "POST", "/echo", "{\"a\":1}", 7, &status, &body, &len), 0);
	assert_string_equal(body, "{\"method\":\"POST\",\"len\":7}");
	assert_string_equal(srv.last_body, "{\"a\":1}");
	free(body);
	assert_int_equal(uhttp_request(h, "PUT", "/echo", "{}", 2, &status, &body, &len), 0);
	assert_string_equal(body, "{\"method\":\"PUT\",\"len\":2}");
	free(body);
	/* An empty POST. */
	assert_int_equal(uhttp_request(h, "POST", "/echo", NULL, 0, &status, &body, &len), 0);
	assert_string_equal(body, "{\"method\":\"POST\",\"len\":0}");
	free(body);
	/* A GET after a POST on the same handle is a GET again. */
	assert_int_equal(uhttp_request(h, "GET", "/echo", NULL, 0, &status, &body, &len), 0);
	assert_string_equal(body, "{\"method\":\"GET\",\"len\":0}");
	free(body);
	req = json_pack("{s:s}", "x", "y");
	assert_int_equal(uhttp_request_json(h, "POST", "/echo", req, &status, &j), 0);
	assert_string_equal(srv.last_body, "{\"x\":\"y\"}");
	json_decref(req);
	json_decref(j);
	uhttp_free(h);
}

static void
test_status_passthrough(void **state)
{
	struct uhttp *h = client();
	json_t *j = NULL;
	long status = 0;

	(void)state;
	assert_int_equal(uhttp_request_json(h, "GET", "/404", NULL, &status, &j), 0);
	assert_int_equal(status, 404);
	assert_string_equal(cjson_get_str(j, "error"), "not_found");
	json_decref(j);
	uhttp_free(h);
}

static void
test_body_cap(void **state)
{
	struct uhttp *h = client();
	long status = 0;

	(void)state;
	assert_int_equal(get(h, "/exact", &status), 0);
	assert_int_equal(get(h, "/big", &status), -EPROTO);
	assert_int_equal(get(h, "/bigchunked", &status), -EPROTO);
	/* The handle stays usable. */
	assert_int_equal(get(h, "/ok", &status), 0);
	uhttp_free(h);
}

/* A per-handle cap: raised for a reply that is large by design (a quote
 * with its event log), lowered for one that should be small. */
static void
test_max_reply(void **state)
{
	struct uhttp *h = client();
	char *body = NULL;
	size_t len = 0;
	long status = 0;

	(void)state;
	assert_int_equal(uhttp_set_max_reply(h, 0), -EINVAL);
	assert_int_equal(uhttp_set_max_reply(h, UHTTP_MAX_REPLY_LIMIT + 1), -EINVAL);
	/* One byte more than the default. */
	assert_int_equal(uhttp_set_max_reply(h, UHTTP_MAX_BODY + 1), 0);
	assert_int_equal(get(h, "/big", &status), 0);
	assert_int_equal(get(h, "/bigchunked", &status), -EPROTO);   /* 1.25 MiB */
	/* 16 MiB, read through, and the cap still holds just past it. */
	assert_int_equal(uhttp_set_max_reply(h, (size_t)16 << 20), 0);
	assert_int_equal(uhttp_request(h, "GET", "/chunks/256", NULL, 0, &status, &body, &len), 0);
	assert_int_equal(status, 200);
	assert_int_equal(len, (size_t)16 << 20);
	assert_int_equal(strlen(body), len);
	assert_true(body[0] == 'a' && body[len - 1] == 'a');
	free(body);
	assert_int_equal(get(h, "/chunks/257", &status), -EPROTO);
	/* Lower than the default. */
	assert_int_equal(uhttp_set_max_reply(h, 11), 0);
	assert_int_equal(get(h, "/ok", &status), 0);        /* {"ok":true}: 11 bytes */
	assert_int_equal(get(h, "/exact", &status), -EPROTO);
	assert_int_equal(get(h, "/chunks/1", &status), -EPROTO);
	uhttp_free(h);
	/* A cap is the handle's: a new one has the default. (One at a time:
	 * the test server serves one connection after the other.) */
	h = client();
	assert_int_equal(get(h, "/big", &status), -EPROTO);
	assert_int_equal(get(h, "/exact", &status), 0);
	uhttp_free(h);
}

static void
test_bad_replies(void **state)
{
	struct uhttp *h = client();
	json_t *j = NULL;
	long status = 0;

	(void)state;
	assert_int_equal(get(h, "/garbage", &status), -EPROTO);
	assert_int_equal(get(h, "/nothing", &status), -EPROTO);
	assert_int_equal(uhttp_request_json(h, "GET", "/notjson", NULL, &status, &j), -EPROTO);
	assert_int_equal(uhttp_request_json(h, "GET", "/array", NULL, &status, &j), -EPROTO);
	assert_int_equal(uhttp_request_json(h, "GET", "/dup", NULL, &status, &j), -EPROTO);
	assert_null(j);
	uhttp_free(h);
}

static void
test_bad_requests(void **state)
{
	struct uhttp *h = client();
	char *body = NULL;
	size_t len = 0;
	long status = 0;

	(void)state;
	assert_int_equal(uhttp_request(h, "GET", "ok", NULL, 0, &status, &body, &len), -EINVAL);
	assert_int_equal(uhttp_request(h, "GET", "/a b", NULL, 0, &status, &body, &len), -EINVAL);
	assert_int_equal(uhttp_request(h, "GET", "/a\r\nX: y", NULL, 0, &status, &body, &len), -EINVAL);
	assert_int_equal(uhttp_request(h, "BREW", "/ok", NULL, 0, &status, &body, &len), -EINVAL);
	assert_int_equal(uhttp_request(h, NULL, "/ok", NULL, 0, &status, &body, &len), -EINVAL);
	assert_int_equal(uhttp_request(h, "GET", "/ok", "{}", 2, &status, &body, &len), -EINVAL);
	assert_null(body);
	assert_int_equal(uhttp_set_timeouts(h, 0, 10), -EINVAL);
	assert_int_equal(uhttp_set_cafile(h, "/etc/ssl/x.pem"), -EINVAL);
	uhttp_free(h);
	assert_int_equal(uhttp_new_url("ftp://x", &h), -EINVAL);
	assert_int_equal(uhttp_new_unix("", &h), -EINVAL);
	{
		char longpath[200];

		memset(longpath, 'a', sizeof(longpath) - 1);
		longpath[sizeof(longpath) - 1] = '\0';
		assert_int_equal(uhttp_new_unix(longpath, &h), -ENAMETOOLONG);
	}
}

static void
test_timeout(void **state)
{
	struct uhttp *h = client();
	long status = 0;

	(void)state;
	assert_int_equal(uhttp_set_timeouts(h, 500, 300), 0);
	assert_int_equal(get(h, "/slow", &status), -ETIMEDOUT);
	uhttp_free(h);
	/* let the server finish with that connection */
	usleep(1400 * 1000);
}

static void
test_not_there(void **state)
{
	struct sockaddr_un sa;
	struct uhttp *h = NULL;
	char path[128];
	long status = 0;
	int fd;

	(void)state;
	snprintf(path, sizeof(path), "%s/none.sock", srv.dir);
	assert_int_equal(uhttp_new_unix(path, &h), 0);
	assert_int_equal(get(h, "/ok", &status), -ENOENT);
	uhttp_free(h);
	/* A socket file nobody listens on. */
	snprintf(path, sizeof(path), "%s/dead.sock", srv.dir);
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	memcpy(sa.sun_path, path, strlen(path) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	close(fd);
	assert_int_equal(uhttp_new_unix(path, &h), 0);
	assert_int_equal(get(h, "/ok", &status), -ECONNREFUSED);
	uhttp_free(h);
	unlink(path);
}

/* --- the verifier's attestd source --------------------------------------- */

static char *
mint(uint64_t epoch, enum token_mode mode)
{
	struct token_kid k;
	struct token_claims c;
	char *s = NULL;

	memset(&k, 0, sizeof(k));
	memset(&c, 0, sizeof(c));
	k.gen = 1;
	k.epoch = epoch;
	k.mode = mode;
	strcpy(k.aud, "proxy");
	assert_int_equal(token_new_jti(c.jti), 0);
	c.iat = NOW - 10;
	c.exp = NOW + 300;
	strcpy(c.aud, "proxy");
	strcpy(c.vm, "vm-1");
	memset(c.launch, 'a', 64);
	strcpy(c.op, "fs.write");
	memset(c.args, 'b', 64);
	c.uses = 1;
	assert_int_equal(token_encode(&k, &c, the_key, &s), 0);
	return s;
}

static const char *
verify(struct verifier *v, const char *t)
{
	struct token_expect e;
	const char *why = NULL;

	memset(&e, 0, sizeof(e));
	e.now = NOW;
	e.skew = 30;
	if (verifier_verify(v, t, &e, NULL, &why) == 0) {
		return "ok";
	}
	return why;
}

static void
test_verifier_over_http(void **state)
{
	struct verifier *v = NULL;
	unsigned before_keys = srv.key_requests, before_accepts = srv.accepts;
	char *t;
	int i;

	(void)state;
	assert_int_equal(verifier_new(srv.path, "proxy", &v), 0);
	t = mint(EPOCH, TOKEN_MODE_EPOCH);
	for (i = 0; i < 5; i++) {
		assert_string_equal(verify(v, t), "ok");
	}
	free(t);
	assert_int_equal(srv.key_requests - before_keys, 1);
	t = mint(EPOCH + 1, TOKEN_MODE_EPOCH);
	assert_string_equal(verify(v, t), "key_expired");
	free(t);
	t = mint(EPOCH + 2, TOKEN_MODE_EPOCH);
	assert_string_equal(verify(v, t), "attestd_unavailable");
	free(t);
	t = mint(EPOCH + 3, TOKEN_MODE_EPOCH);
	assert_string_equal(verify(v, t), "attestd_unavailable");
	free(t);
	t = mint(EPOCH + 4, TOKEN_MODE_EPOCH);
	assert_string_equal(verify(v, t), "attestd_unavailable");
	free(t);
	t = mint(EPOCH + 9, TOKEN_MODE_EPOCH);
	assert_string_equal(verify(v, t), "unknown_key");
	free(t);
	/* attestd in strict mode has no audience key to give. */
	before_keys = srv.key_requests;
	t = mint(EPOCH + 5, TOKEN_MODE_EPOCH);
	assert_string_equal(verify(v, t), "strict_mode");
	free(t);
	t = mint(EPOCH + 6, TOKEN_MODE_EPOCH);
	assert_string_equal(verify(v, t), "attestd_unavailable");
	free(t);
	assert_int_equal(srv.key_requests - before_keys, 2);
	/* Strict mode: attestd's verdict on the MAC, with the key's window;
	 * no key is asked for. */
	t = mint(STRICT_EPOCH, TOKEN_MODE_STRICT);
	assert_string_equal(verify(v, t), "ok");
	assert_string_equal(verify(v, t), "ok");
	free(t);
	assert_int_equal(srv.key_requests - before_keys, 2);
	/* The window is checked against the token's kid. */
	t = mint(EPOCH, TOKEN_MODE_STRICT);
	assert_string_equal(verify(v, t), "attestd_unavailable");
	free(t);
	{
		char buf[TOKEN_MAX_LEN + 1];

		t = mint(STRICT_EPOCH, TOKEN_MODE_STRICT);
		snprintf(buf, sizeof(buf), "%.*sBADMAA", (int)(strlen(t) - 6), t);
		/* "BADMAA" keeps the tag canonical base64url, but not this tag */
		assert_string_equal(verify(v, buf), "bad_mac");
		/* A verdict without the window is not enough. */
		snprintf(buf, sizeof(buf), "%.*sNOWINA", (int)(strlen(t) - 6), t);
		assert_string_equal(verify(v, buf), "attestd_unavailable");
		free(t);
	}
	verifier_free(v);
	assert_int_equal(srv.accepts - before_accepts, 1);
}

static void
test_verifier_attestd_down(void **state)
{
	struct verifier *v = NULL;
	char path[128];
	char *t;

	(void)state;
	snprintf(path, sizeof(path), "%s/none.sock", srv.dir);
	assert_int_equal(verifier_new(path, "proxy", &v), 0);
	t = mint(EPOCH, TOKEN_MODE_EPOCH);
	assert_string_equal(verify(v, t), "attestd_unavailable");
	free(t);
	verifier_free(v);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_keepalive),
		cmocka_unit_test(test_reconnects_after_close),
		cmocka_unit_test(test_methods_and_bodies),
		cmocka_unit_test(test_status_passthrough),
		cmocka_unit_test(test_body_cap),
		cmocka_unit_test(test_max_reply),
		cmocka_unit_test(test_bad_replies),
		cmocka_unit_test(test_bad_requests),
		cmocka_unit_test(test_timeout),
		cmocka_unit_test(test_not_there),
		cmocka_unit_test(test_verifier_over_http),
		cmocka_unit_test(test_verifier_attestd_down),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
