#include "uhttp.h"

#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

struct uhttp {
	CURL *curl;
	char *unix_path;        /* NULL for base URLs */
	char *base;             /* "http://localhost" for unix sockets */
	char *cafile;
	char *cert;             /* client certificate and key, PEM */
	char *key;
	long connect_ms;
	long total_ms;
	size_t max_reply;
};

struct sink {
	char *buf;
	size_t len;
	size_t cap;
	size_t max;             /* the handle's reply cap */
	bool too_big;
};

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static CURLcode global_rc = CURLE_FAILED_INIT;

static void
global_init(void)
{
	global_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

static int
ensure_global(void)
{
	if (pthread_once(&global_once, global_init) != 0) {
		return -EIO;
	}
	return global_rc == CURLE_OK ? 0 : -ENOMEM;
}

static int
new_common(struct uhttp **ret_h)
{
	struct uhttp *h;
	int r;

	r = ensure_global();
	if (r != 0) {
		return r;
	}
	h = calloc(1, sizeof(*h));
	if (h == NULL) {
		return -ENOMEM;
	}
	h->curl = curl_easy_init();
	if (h->curl == NULL) {
		free(h);
		return -ENOMEM;
	}
	h->connect_ms = UHTTP_CONNECT_TIMEOUT_MS;
	h->total_ms = UHTTP_TIMEOUT_MS;
	h->max_reply = UHTTP_MAX_BODY;
	*ret_h = h;
	return 0;
}

int
uhttp_new_unix(const char *socket_path, struct uhttp **ret)
{
	struct sockaddr_un sun;
	struct uhttp *h = NULL;
	int r;

	if (socket_path == NULL || socket_path[0] == '\0') {
		return -EINVAL;
	}
	if (strlen(socket_path) >= sizeof(sun.sun_path)) {
		return -ENAMETOOLONG;
	}
	r = new_common(&h);
	if (r != 0) {
		goto out;
	}
	h->unix_path = strdup(socket_path);
	h->base = strdup("http://localhost");
	if (h->unix_path == NULL || h->base == NULL) {
		r = -ENOMEM;
		goto out;
	}
	*ret = h;
	h = NULL;
	r = 0;
out:
	uhttp_free(h);
	return r;
}

int
uhttp_new_url(const char *base_url, struct uhttp **ret)
{
	struct uhttp *h = NULL;
	size_t n;
	int r;

	if (base_url == NULL ||
	    (strncmp(base_url, "http://", 7) != 0 && strncmp(base_url, "https://", 8) != 0)) {
		return -EINVAL;
	}
	r = new_common(&h);
	if (r != 0) {
		goto out;
	}
	h->base = strdup(base_url);
	if (h->base == NULL) {
		r = -ENOMEM;
		goto out;
	}
	/* Paths always start with '/': keep exactly one. */
	n = strlen(h->base);
	while (n > 0 && h->base[n - 1] == '/') {
		h->base[--n] = '\0';
	}
	*ret = h;
	h = NULL;
	r = 0;
out:
	uhttp_free(h);
	return r;
}

void
uhttp_free(struct uhttp *h)
{
	if (h == NULL) {
		return;
	}
	if (h->curl != NULL) {
		curl_easy_cleanup(h->curl);
	}
	free(h->unix_path);
	free(h->base);
	free(h->cafile);
	free(h->cert);
	free(h->key);
	free(h);
}

int
uhttp_set_timeouts(struct uhttp *h, long connect_ms, long total_ms)
{
	if (connect_ms <= 0 || total_ms <= 0) {
		return -EINVAL;
	}
	h->connect_ms = connect_ms;
	h->total_ms = total_ms;
	return 0;
}

int
uhttp_set_cafile(struct uhttp *h, const char *path)
{
	char *p;

	if (path == NULL || h->unix_path != NULL) {
		return -EINVAL;
	}
	p = strdup(path);
	if (p == NULL) {
		return -ENOMEM;
	}
	free(h->cafile);
	h->cafile = p;
	return 0;
}

int
uhttp_set_client_cert(struct uhttp *h, const char *cert_file, const char *key_file)
{
	char *c = NULL, *k = NULL;

	if (cert_file == NULL || key_file == NULL || h->unix_path != NULL) {
		return -EINVAL;
	}
	c = strdup(cert_file);
	k = strdup(key_file);
	if (c == NULL || k == NULL) {
		free(c);
		free(k);
		return -ENOMEM;
	}
	free(h->cert);
	free(h->key);
	h->cert = c;
	h->key = k;
	return 0;
}

int
uhttp_set_max_reply(struct uhttp *h, size_t max)
{
	if (max == 0 || max > UHTTP_MAX_REPLY_LIMIT) {
		return -EINVAL;
	}
	h->max_reply = max;
	return 0;
}

static size_t
on_data(char *data, size_t size, size_t nmemb, void *userdata)
{
	struct sink *s = userdata;
	size_t n = size * nmemb;   /* size is always 1 */

	/* s->len <= s->max always; the cap keeps cap * 2 below SIZE_MAX. */
	if (n > s->max - s->len) {
		s->too_big = true;
		return 0;   /* anything but n aborts the transfer */
	}
	if (s->len + n + 1 > s->cap) {
		size_t cap = s->cap == 0 ? 4096 : s->cap;
		char *p;

		while (cap < s->len + n + 1) {
			cap *= 2;
		}
		if (cap > s->max + 1) {
			cap = s->max + 1;   /* no more than the cap can ever need */
		}
		/* Not realloc: the old block may hold key material and must be
		 * wiped before it goes back to the allocator. */
		p = malloc(cap);
		if (p == NULL) {
			return 0;
		}
		if (s->buf != NULL) {
			memcpy(p, s->buf, s->len);
			explicit_bzero(s->buf, s->cap);
			free(s->buf);
		}
		s->buf = p;
		s->cap = cap;
	}
	memcpy(s->buf + s->len, data, n);
	s->len += n;
	return n;
}

/* Printable ASCII without spaces: nothing that could end the request line
 * or smuggle a header. */
static bool
path_ok(const char *path)
{
	size_t i;

	if (path == NULL || path[0] != '/') {
		return false;
	}
	for (i = 0; path[i] != '\0'; i++) {
		if ((unsigned char)path[i] <= 0x20 || (unsigned char)path[i] >= 0x7f) {
			return false;
		}
		if (i >= 4096) {
			return false;
		}
	}
	return true;
}

static int
map_error(CURL *c, CURLcode cc, const struct sink *s)
{
	long oserr = 0;

	if (s->too_big) {
		return -EPROTO;
	}
	switch (cc) {
	case CURLE_OK: {
		return 0;
	}
	case CURLE_COULDNT_CONNECT: {
		(void)curl_easy_getinfo(c, CURLINFO_OS_ERRNO, &oserr);
		if (oserr == ENOENT || oserr == EACCES || oserr == ENOTDIR) {
			return oserr == ENOTDIR ? -ENOENT : -(int)oserr;
		}
		return -ECONNREFUSED;
	}
	case CURLE_COULDNT_RESOLVE_HOST: {
		return -EHOSTUNREACH;
	}
	case CURLE_OPERATION_TIMEDOUT: {
		return -ETIMEDOUT;
	}
	case CURLE_OUT_OF_MEMORY: {
		return -ENOMEM;
	}
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_CONNECT_ERROR: {
		return -EACCES;
	}
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR: {
		return -ECONNRESET;
	}
	case CURLE_WRITE_ERROR: {
		/* on_data refuses only past the cap or when out of memory */
		return -ENOMEM;
	}
	case CURLE_FILESIZE_EXCEEDED:
	case CURLE_GOT_NOTHING:
	case CURLE_PARTIAL_FILE:
	case CURLE_WEIRD_SERVER_REPLY:
	case CURLE_BAD_CONTENT_ENCODING:
	case CURLE_UNSUPPORTED_PROTOCOL: {
		return -EPROTO;
	}
	default: {
		return -EIO;
	}
	}
}

/* Options are set afresh for every request: curl_easy_reset clears them
 * but keeps the live connection, which is what keep-alive needs. */
static int
setup(struct uhttp *h, const char *method, const char *url, const char *body,
    size_t body_len, struct curl_slist *hdrs, struct sink *s)
{
	CURL *c = h->curl;
	bool ok = true;

	curl_easy_reset(c);
	ok = ok && curl_easy_setopt(c, CURLOPT_URL, url) == CURLE_OK;
	if (h->unix_path != NULL) {
		ok = ok && curl_easy_setopt(c, CURLOPT_UNIX_SOCKET_PATH, h->unix_path) == CURLE_OK;
		ok = ok && curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http") == CURLE_OK;
	} else {
		ok = ok && curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https") == CURLE_OK;
	}
	if (h->cafile != NULL) {
		/* Only this CA: not also the system's certificate folder. */
		ok = ok && curl_easy_setopt(c, CURLOPT_CAINFO, h->cafile) == CURLE_OK;
		ok = ok && curl_easy_setopt(c, CURLOPT_CAPATH, NULL) == CURLE_OK;
	}
	if (h->cert != NULL) {
		ok = ok && curl_easy_setopt(c, CURLOPT_SSLCERT, h->cert) == CURLE_OK;
		ok = ok && curl_easy_setopt(c, CURLOPT_SSLCERTTYPE, "PEM") == CURLE_OK;
		ok = ok && curl_easy_setopt(c, CURLOPT_SSLKEY, h->key) == CURLE_OK;
		ok = ok && curl_easy_setopt(c, CURLOPT_SSLKEYTYPE, "PEM") == CURLE_OK;
	}
	ok = ok && curl_easy_setopt(c, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1) == CURLE_OK;
	ok = ok && curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L) == CURLE_OK;
	ok = ok && curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L) == CURLE_OK;
	ok = ok && curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, h->connect_ms) == CURLE_OK;
	ok = ok && curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, h->total_ms) == CURLE_OK;
	ok = ok && curl_easy_setopt(c, CURLOPT_MAXFILESIZE_LARGE,
	    (curl_off_t)h->max_reply) == CURLE_OK;
	ok = ok && curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data) == CURLE_OK;
	ok = ok && curl_easy_setopt(c, CURLOPT_WRITEDATA, s) == CURLE_OK;
	ok = ok && curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs) == CURLE_OK;
	if (strcmp(method, "GET") == 0) {
		ok = ok && curl_easy_setopt(c, CURLOPT_HTTPGET, 1L) == CURLE_OK;
	} else {
		/* POSTFIELDS with a size sends the bytes as they are; "" makes an
		 * empty body with Content-Length: 0. */
		ok = ok && curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE,
		    (curl_off_t)(body != NULL ? body_len : 0)) == CURLE_OK;
		ok = ok && curl_easy_setopt(c, CURLOPT_POSTFIELDS,
		    body != NULL ? body : "") == CURLE_OK;
		if (strcmp(method, "POST") != 0) {
			ok = ok && curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method) == CURLE_OK;
		}
	}
	return ok ? 0 : -EIO;
}

static int
add_header(struct curl_slist **list, const char *line)
{
	struct curl_slist *l = curl_slist_append(*list, line);

	if (l == NULL) {
		return -ENOMEM;
	}
	*list = l;
	return 0;
}

int
uhttp_request(struct uhttp *h, const char *method, const char *path,
    const char *body, size_t body_len,
    long *ret_status, char **ret_body, size_t *ret_len)
{
	static const char *const methods[] = { "GET", "POST", "PUT", "DELETE", "PATCH", NULL };
	struct curl_slist *hdrs = NULL;
	struct sink s = { NULL, 0, 0, h->max_reply, false };
	char *url = NULL;
	size_t i, ulen;
	long status = 0;
	CURLcode cc;
	bool known = false;
	int r;

	for (i = 0; method != NULL && methods[i] != NULL; i++) {
		if (strcmp(method, methods[i]) == 0) {
			known = true;
		}
	}
	if (!known || !path_ok(path) || (body != NULL && strcmp(method, "GET") == 0)) {
		r = -EINVAL;
		goto out;
	}
	if (__builtin_add_overflow(strlen(h->base), strlen(path), &ulen) ||
	    __builtin_add_overflow(ulen, (size_t)1, &ulen)) {
		r = -EINVAL;
		goto out;
	}
	url = malloc(ulen);
	if (url == NULL) {
		r = -ENOMEM;
		goto out;
	}
	memcpy(url, h->base, strlen(h->base));
	memcpy(url + strlen(h->base), path, strlen(path) + 1);

	/* "Expect:" turns off curl's 100-continue round trip for bodies. */
	r = add_header(&hdrs, "Expect:");
	if (r == 0) {
		r = add_header(&hdrs, "Accept: application/json");
	}
	if (r == 0 && body != NULL) {
		r = add_header(&hdrs, "Content-Type: application/json");
	}
	if (r != 0) {
		goto out;
	}
	r = setup(h, method, url, body, body_len, hdrs, &s);
	if (r != 0) {
		goto out;
	}
	cc = curl_easy_perform(h->curl);
	r = map_error(h->curl, cc, &s);
	if (r != 0) {
		goto out;
	}
	if (curl_easy_getinfo(h->curl, CURLINFO_RESPONSE_CODE, &status) != CURLE_OK ||
	    status < 100 || status > 599) {
		r = -EPROTO;
		goto out;
	}
	if (s.buf == NULL) {
		s.buf = malloc(1);
		if (s.buf == NULL) {
			r = -ENOMEM;
			goto out;
		}
	}
	s.buf[s.len] = '\0';
	*ret_status = status;
	*ret_body = s.buf;
	*ret_len = s.len;
	s.buf = NULL;
	r = 0;
out:
	/* Replies can carry keys (GET /v1/keys): wipe what is not handed over. */
	if (s.buf != NULL) {
		explicit_bzero(s.buf, s.cap);
		free(s.buf);
	}
	curl_slist_free_all(hdrs);
	free(url);
	return r;
}

int
uhttp_request_json(struct uhttp *h, const char *method, const char *path,
    const json_t *body, long *ret_status, json_t **ret)
{
	json_error_t err;
	json_t *j = NULL;
	char *req = NULL, *rep = NULL;
	size_t rep_len = 0;
	long status = 0;
	int r;

	if (body != NULL) {
		req = json_dumps(body, JSON_COMPACT);
		if (req == NULL) {
			r = -EINVAL;
			goto out;
		}
	}
	r = uhttp_request(h, method, path, req, req != NULL ? strlen(req) : 0,
	    &status, &rep, &rep_len);
	if (r != 0) {
		goto out;
	}
	j = json_loadb(rep, rep_len, JSON_REJECT_DUPLICATES, &err);
	if (j == NULL || !json_is_object(j)) {
		r = -EPROTO;
		goto out;
	}
	*ret_status = status;
	*ret = j;
	j = NULL;
	r = 0;
out:
	json_decref(j);
	if (req != NULL) {
		explicit_bzero(req, strlen(req));
		free(req);
	}
	if (rep != NULL) {
		explicit_bzero(rep, rep_len);
		free(rep);
	}
	return r;
}
