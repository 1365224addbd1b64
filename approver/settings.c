#include "settings.h"

#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cjson.h"
#include "fsutil.h"
#include "parse.h"
#include "text.h"

static const char *const top_keys[] = {
	"listen", "public_url", "rp_id", "tls_cert", "tls_key", "api_socket", "api_listen",
	"api_client_ca", "attestd_socket", "quorum", "request_lifetime_seconds",
	"session_idle_seconds", "session_max_seconds", "login", "max_pending", "notify",
	"threads", NULL,
};
static const char *const login_keys[] = {
	"max_failures_name", "max_failures_addr", "window_seconds", NULL,
};
static const char *const notify_keys[] = { "command", "webhook", "webhook_ca", NULL };

static const char default_text[] =
    "{\n"
    "  \"listen\": \"127.0.0.1:8443\",\n"
    "  \"public_url\": \"https://localhost:8443\",\n"
    "  \"rp_id\": \"localhost\",\n"
    "  \"tls_cert\": \"tls/cert.pem\",\n"
    "  \"tls_key\": \"tls/key.pem\",\n"
    "  \"api_socket\": \"api.sock\",\n"
    "  \"api_listen\": \"\",\n"
    "  \"api_client_ca\": \"\",\n"
    "  \"attestd_socket\": \"/run/warrant/attestd.sock\",\n"
    "  \"quorum\": {\"default\": 1, \"ops\": {}},\n"
    "  \"request_lifetime_seconds\": 900,\n"
    "  \"session_idle_seconds\": 900,\n"
    "  \"session_max_seconds\": 28800,\n"
    "  \"login\": {\"max_failures_name\": 5, \"max_failures_addr\": 50, "
    "\"window_seconds\": 900},\n"
    "  \"max_pending\": 10000,\n"
    "  \"notify\": {\"command\": [], \"webhook\": \"\", \"webhook_ca\": \"\"},\n"
    "  \"threads\": 4\n"
    "}\n";

static int
get_int(const json_t *v, const char *field, int64_t min, int64_t max, int64_t *ret,
    char *err, size_t errsz)
{
	json_int_t i;

	if (!json_is_integer(v) || (i = json_integer_value(v)) < min || i > max) {
		text_printf(err, errsz, "field '%s' must be an integer in %lld..%lld", field,
		    (long long)min, (long long)max);
		return json_is_integer(v) ? -ERANGE : -EINVAL;
	}
	*ret = (int64_t)i;
	return 0;
}

static int
get_uint(const json_t *v, const char *field, int64_t min, int64_t max, unsigned *ret,
    char *err, size_t errsz)
{
	int64_t i = 0;
	int r = get_int(v, field, min, max, &i, err, errsz);

	if (r == 0) {
		*ret = (unsigned)i;
	}
	return r;
}

static bool
printable(const char *s)
{
	for (; *s != '\0'; s++) {
		if ((unsigned char)*s < 0x20 || *s == 0x7f) {
			return false;
		}
	}
	return true;
}

/* A string without NUL or control characters; empty only if allowed. */
static int
get_str(const json_t *v, const char *field, bool allow_empty, char *dst, size_t dstsz,
    char *err, size_t errsz)
{
	const char *s;

	if (!json_is_string(v)) {
		text_printf(err, errsz, "field '%s' must be a string", field);
		return -EINVAL;
	}
	s = json_string_value(v);
	if ((!allow_empty && s[0] == '\0') || strlen(s) != json_string_length(v) ||
	    !printable(s)) {
		text_printf(err, errsz, "field '%s' must be a %sstring without control characters",
		    field, allow_empty ? "" : "non-empty ");
		return -EINVAL;
	}
	if (text_copy(dst, dstsz, s) < 0) {
		text_printf(err, errsz, "field '%s' is longer than %zu bytes", field, dstsz - 1);
		return -ENAMETOOLONG;
	}
	return 0;
}

/* A path: absolute as is, relative to the state folder otherwise. */
static int
get_path(const json_t *v, const char *field, const char *state_dir, bool allow_empty,
    char *dst, size_t dstsz, char *err, size_t errsz)
{
	char tmp[SETTINGS_PATH_MAX];
	int n, r;

	r = get_str(v, field, allow_empty, tmp, sizeof(tmp), err, errsz);
	if (r < 0) {
		return r;
	}
	if (tmp[0] == '\0' || tmp[0] == '/') {
		n = snprintf(dst, dstsz, "%s", tmp);
	} else {
		n = snprintf(dst, dstsz, "%s/%s", state_dir, tmp);
	}
	if (n < 0 || (size_t)n >= dstsz) {
		text_printf(err, errsz, "field '%s': the path is longer than %zu bytes", field,
		    dstsz - 1);
		return -ENAMETOOLONG;
	}
	return 0;
}

/* A DNS name: labels of [a-z0-9-], 1..63 bytes, not starting or ending
 * with '-'. Lower case only, as browsers put it in an origin. */
static bool
dns_name_ok(const char *s, size_t n)
{
	size_t i, label = 0;

	if (n == 0 || n > WEBAUTHN_RP_ID_MAX) {
		return false;
	}
	for (i = 0; i < n; i++) {
		char ch = s[i];

		if (ch == '.') {
			if (label == 0 || s[i - 1] == '-') {
				return false;
			}
			label = 0;
			continue;
		}
		if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-')) {
			return false;
		}
		if (label == 0 && ch == '-') {
			return false;
		}
		if (++label > 63) {
			return false;
		}
	}
	return label > 0 && s[n - 1] != '-';
}

static bool
ipv6_ok(const char *s, size_t n)
{
	size_t i;

	if (n < 2 || n > 45) {
		return false;
	}
	for (i = 0; i < n; i++) {
		char ch = s[i];

		if (!((ch >= 'a' && ch <= 'f') || (ch >= '0' && ch <= '9') || ch == ':' ||
		    ch == '.')) {
			return false;
		}
	}
	return memchr(s, ':', n) != NULL;
}

/* Split "host:port" (host may be "[v6]"). *ret_host points into s. */
static int
split_host_port(const char *s, bool port_required, const char **ret_host, size_t *ret_hlen,
    uint64_t *ret_port, bool *ret_v6)
{
	const char *colon;
	size_t hlen;
	uint64_t port = 0;
	bool v6 = false;

	if (s[0] == '[') {
		const char *end = strchr(s, ']');

		if (end == NULL || !ipv6_ok(s + 1, (size_t)(end - s - 1))) {
			return -EINVAL;
		}
		hlen = (size_t)(end - s) + 1;
		colon = end[1] == ':' ? end + 1 : NULL;
		if (end[1] != '\0' && colon == NULL) {
			return -EINVAL;
		}
		v6 = true;
	} else {
		colon = strchr(s, ':');
		hlen = colon != NULL ? (size_t)(colon - s) : strlen(s);
		if (!dns_name_ok(s, hlen)) {
			return -EINVAL;
		}
	}
	if (colon == NULL) {
		if (port_required) {
			return -EINVAL;
		}
	} else if (parse_u64(colon + 1, 1, 65535, &port) < 0) {
		return -EINVAL;
	}
	*ret_host = s;
	*ret_hlen = hlen;
	*ret_port = port;
	*ret_v6 = v6;
	return 0;
}

static int
check_listen(const char *s)
{
	const char *h;
	size_t hlen;
	uint64_t port;
	bool v6;

	return split_host_port(s, true, &h, &hlen, &port, &v6);
}

/* "https://host[:port]", exactly what a browser sends as the origin: no
 * path (not even "/"), no user info, no default port, lower case. The
 * host (without brackets) goes to ret_host. */
static int
check_https_origin(const char *s, char *ret_host, size_t hostsz)
{
	const char *h;
	size_t hlen;
	uint64_t port;
	bool v6;

	if (strncmp(s, "https://", 8) != 0) {
		return -EINVAL;
	}
	if (split_host_port(s + 8, false, &h, &hlen, &port, &v6) < 0 || port == 443) {
		return -EINVAL;
	}
	if (v6) {
		h++;
		hlen -= 2;
	}
	if (hlen >= hostsz) {
		return -EINVAL;
	}
	memcpy(ret_host, h, hlen);
	ret_host[hlen] = '\0';
	return 0;
}

/* A webhook URL: https, a host and optional port, then any printable
 * path without spaces or a fragment. */
static int
check_webhook(const char *s)
{
	char hostport[SETTINGS_URL_MAX + 1];
	const char *h, *slash, *p;
	size_t n, hlen;
	uint64_t port;
	bool v6;

	if (strncmp(s, "https://", 8) != 0) {
		return -EINVAL;
	}
	slash = strchr(s + 8, '/');
	n = slash != NULL ? (size_t)(slash - s - 8) : strlen(s + 8);
	if (n == 0 || n >= sizeof(hostport)) {
		return -EINVAL;
	}
	memcpy(hostport, s + 8, n);
	hostport[n] = '\0';
	if (split_host_port(hostport, false, &h, &hlen, &port, &v6) < 0) {
		return -EINVAL;
	}
	for (p = s; *p != '\0'; p++) {
		if ((unsigned char)*p <= 0x20 || *p == 0x7f || *p == '#') {
			return -EINVAL;
		}
	}
	return 0;
}

static bool
is_ip_literal(const char *host)
{
	size_t i;
	bool digits_dots = true;

	if (strchr(host, ':') != NULL) {
		return true;
	}
	for (i = 0; host[i] != '\0'; i++) {
		if (!((host[i] >= '0' && host[i] <= '9') || host[i] == '.')) {
			digits_dots = false;
		}
	}
	return digits_dots;
}

static int
parse_login(const json_t *v, struct settings *s, char *err, size_t errsz)
{
	const char *bad = NULL;
	const json_t *x;
	int r;

	if (!json_is_object(v)) {
		text_printf(err, errsz, "field 'login' must be an object");
		return -EINVAL;
	}
	if (cjson_only_keys(v, login_keys, &bad) < 0) {
		text_printf(err, errsz, "unknown field 'login.%s'", bad != NULL ? bad : "?");
		return -EINVAL;
	}
	if ((x = json_object_get(v, "max_failures_name")) != NULL &&
	    (r = get_uint(x, "login.max_failures_name", 1, 100, &s->login_max_failures_name,
	    err, errsz)) < 0) {
		return r;
	}
	if ((x = json_object_get(v, "max_failures_addr")) != NULL &&
	    (r = get_uint(x, "login.max_failures_addr", 1, 10000, &s->login_max_failures_addr,
	    err, errsz)) < 0) {
		return r;
	}
	if ((x = json_object_get(v, "window_seconds")) != NULL &&
	    (r = get_int(x, "login.window_seconds", 60, 86400, &s->login_window_seconds,
	    err, errsz)) < 0) {
		return r;
	}
	return 0;
}

static int
parse_notify(const json_t *v, struct settings *s, char *err, size_t errsz)
{
	const char *bad = NULL;
	const json_t *cmd, *w, *a;
	size_t i;
	int r;

	if (!json_is_object(v)) {
		text_printf(err, errsz, "field 'notify' must be an object");
		return -EINVAL;
	}
	if (cjson_only_keys(v, notify_keys, &bad) < 0) {
		text_printf(err, errsz, "unknown field 'notify.%s'", bad != NULL ? bad : "?");
		return -EINVAL;
	}
	if ((w = json_object_get(v, "webhook")) != NULL) {
		r = get_str(w, "notify.webhook", true, s->notify_webhook, sizeof(s->notify_webhook),
		    err, errsz);
		if (r < 0) {
			return r;
		}
		if (s->notify_webhook[0] != '\0' && check_webhook(s->notify_webhook) < 0) {
			text_printf(err, errsz, "field 'notify.webhook' must be \"\" or an https:// URL");
			return -EINVAL;
		}
	}
	if ((w = json_object_get(v, "webhook_ca")) != NULL) {
		r = get_path(w, "notify.webhook_ca", s->state_dir, true, s->notify_webhook_ca,
		    sizeof(s->notify_webhook_ca), err, errsz);
		if (r < 0) {
			return r;
		}
		/* A CA with no webhook to trust it for is a mistake, not a no-op. */
		if (s->notify_webhook_ca[0] != '\0' && s->notify_webhook[0] == '\0') {
			text_printf(err, errsz, "field 'notify.webhook_ca' needs 'notify.webhook'");
			return -EINVAL;
		}
	}
	cmd = json_object_get(v, "command");
	if (cmd == NULL) {
		return 0;
	}
	if (!json_is_array(cmd) || json_array_size(cmd) > SETTINGS_MAX_ARGV) {
		text_printf(err, errsz, "field 'notify.command' must be an array of at most %d strings",
		    SETTINGS_MAX_ARGV);
		return -EINVAL;
	}
	json_array_foreach(cmd, i, a) {
		const char *t = json_string_value(a);

		if (t == NULL || strlen(t) != json_string_length(a) || t[0] == '\0' ||
		    strlen(t) > SETTINGS_PATH_MAX || (i == 0 && t[0] != '/')) {
			text_printf(err, errsz, "field 'notify.command[%zu]' must be a non-empty string%s",
			    i, i == 0 ? " holding an absolute path" : "");
			return -EINVAL;
		}
		s->notify_argv[i] = strdup(t);
		if (s->notify_argv[i] == NULL) {
			return -ENOMEM;
		}
		s->notify_argc = i + 1;
	}
	return 0;
}

static int
defaults(struct settings *s, const char *state_dir, char *err, size_t errsz)
{
	int n;

	if (text_copy(s->state_dir, sizeof(s->state_dir), state_dir) < 0) {
		text_printf(err, errsz, "the state folder's path is too long");
		return -ENAMETOOLONG;
	}
	(void)text_copy(s->listen, sizeof(s->listen), "127.0.0.1:8443");
	(void)text_copy(s->public_url, sizeof(s->public_url), "https://localhost:8443");
	(void)text_copy(s->attestd_socket, sizeof(s->attestd_socket), "/run/warrant/attestd.sock");
	n = snprintf(s->tls_cert, sizeof(s->tls_cert), "%s/tls/cert.pem", state_dir);
	if (n < 0 || (size_t)n >= sizeof(s->tls_cert)) {
		text_printf(err, errsz, "the state folder's path is too long");
		return -ENAMETOOLONG;
	}
	(void)snprintf(s->tls_key, sizeof(s->tls_key), "%s/tls/key.pem", state_dir);
	n = snprintf(s->api_socket, sizeof(s->api_socket), "%s/api.sock", state_dir);
	if (n < 0 || (size_t)n >= sizeof(s->api_socket)) {
		/* Only an error if the file does not name another socket. */
		s->api_socket[0] = '\0';
	}
	s->quorum_default = 1;
	s->request_lifetime_seconds = 900;
	s->session_idle_seconds = 900;
	s->session_max_seconds = 28800;
	s->login_max_failures_name = 5;
	s->login_max_failures_addr = 50;
	s->login_window_seconds = 900;
	s->max_pending = 10000;
	s->threads = 4;
	return 0;
}

static int
apply(const json_t *root, struct settings *s, char *err, size_t errsz)
{
	char host[WEBAUTHN_RP_ID_MAX + 1];
	const char *bad = NULL;
	const json_t *v;
	bool have_rp = false;
	size_t hl, rl;
	int r;

	if (!json_is_object(root)) {
		text_printf(err, errsz, "the configuration must be a JSON object");
		return -EINVAL;
	}
	if (cjson_only_keys(root, top_keys, &bad) < 0) {
		text_printf(err, errsz, "unknown field '%s'", bad != NULL ? bad : "?");
		return -EINVAL;
	}
	if ((v = json_object_get(root, "listen")) != NULL) {
		r = get_str(v, "listen", false, s->listen, sizeof(s->listen), err, errsz);
		if (r < 0) {
			return r;
		}
	}
	if (check_listen(s->listen) < 0) {
		text_printf(err, errsz, "field 'listen' must be \"host:port\"");
		return -EINVAL;
	}
	if ((v = json_object_get(root, "public_url")) != NULL) {
		r = get_str(v, "public_url", false, s->public_url, sizeof(s->public_url), err,
		    errsz);
		if (r < 0) {
			return r;
		}
	}
	if (check_https_origin(s->public_url, host, sizeof(host)) < 0) {
		text_printf(err, errsz, "field 'public_url' must be \"https://host[:port]\": lower "
		    "case, no path (not even '/'), no :443");
		return -EINVAL;
	}
	if ((v = json_object_get(root, "rp_id")) != NULL) {
		r = get_str(v, "rp_id", false, s->rp_id, sizeof(s->rp_id), err, errsz);
		if (r < 0) {
			return r;
		}
		have_rp = true;
	} else {
		(void)text_copy(s->rp_id, sizeof(s->rp_id), host);
	}
	rl = strlen(s->rp_id);
	hl = strlen(host);
	if (have_rp && !dns_name_ok(s->rp_id, rl)) {
		text_printf(err, errsz, "field 'rp_id' must be a lower-case host name");
		return -EINVAL;
	}
	/* WebAuthn: the rp id is the origin's host or a suffix of it. */
	if (is_ip_literal(host) || !dns_name_ok(s->rp_id, rl) ||
	    !(strcmp(s->rp_id, host) == 0 || (hl > rl + 1 && host[hl - rl - 1] == '.' &&
	    strcmp(host + hl - rl, s->rp_id) == 0))) {
		text_printf(err, errsz, "field 'rp_id' must be the host of 'public_url' (a name, not "
		    "an address) or a parent domain of it");
		return -EINVAL;
	}
	if ((v = json_object_get(root, "tls_cert")) != NULL &&
	    (r = get_path(v, "tls_cert", s->state_dir, false, s->tls_cert, sizeof(s->tls_cert),
	    err, errsz)) < 0) {
		return r;
	}
	if ((v = json_object_get(root, "tls_key")) != NULL &&
	    (r = get_path(v, "tls_key", s->state_dir, false, s->tls_key, sizeof(s->tls_key),
	    err, errsz)) < 0) {
		return r;
	}
	if ((v = json_object_get(root, "api_socket")) != NULL &&
	    (r = get_path(v, "api_socket", s->state_dir, false, s->api_socket,
	    sizeof(s->api_socket), err, errsz)) < 0) {
		return r;
	}
	if (s->api_socket[0] == '\0') {
		text_printf(err, errsz, "field 'api_socket': STATE/api.sock is longer than %d bytes; "
		    "name a shorter path", SETTINGS_SOCKET_MAX);
		return -ENAMETOOLONG;
	}
	if ((v = json_object_get(root, "api_listen")) != NULL) {
		r = get_str(v, "api_listen", true, s->api_listen, sizeof(s->api_listen), err, errsz);
		if (r < 0) {
			return r;
		}
		if (s->api_listen[0] != '\0' && check_listen(s->api_listen) < 0) {
			text_printf(err, errsz, "field 'api_listen' must be \"\" or \"host:port\"");
			return -EINVAL;
		}
	}
	if ((v = json_object_get(root, "api_client_ca")) != NULL &&
	    (r = get_path(v, "api_client_ca", s->state_dir, true, s->api_client_ca,
	    sizeof(s->api_client_ca), err, errsz)) < 0) {
		return r;
	}
	if (s->api_listen[0] != '\0' && s->api_client_ca[0] == '\0') {
		text_printf(err, errsz, "field 'api_client_ca' is required with 'api_listen'");
		return -EINVAL;
	}
	if ((v = json_object_get(root, "attestd_socket")) != NULL &&
	    (r = get_path(v, "attestd_socket", s->state_dir, false, s->attestd_socket,
	    sizeof(s->attestd_socket), err, errsz)) < 0) {
		return r;
	}
	if ((v = json_object_get(root, "quorum")) != NULL &&
	    (r = quorum_parse(v, "quorum", s->quorum, SETTINGS_MAX_QUORUM_OPS, &s->quorum_default,
	    &s->n_quorum, err, errsz)) < 0) {
		return r;
	}
	if ((v = json_object_get(root, "request_lifetime_seconds")) != NULL &&
	    (r = get_int(v, "request_lifetime_seconds", 10, 86400, &s->request_lifetime_seconds,
	    err, errsz)) < 0) {
		return r;
	}
	if ((v = json_object_get(root, "session_idle_seconds")) != NULL &&
	    (r = get_int(v, "session_idle_seconds", 60, 86400, &s->session_idle_seconds,
	    err, errsz)) < 0) {
		return r;
	}
	if ((v = json_object_get(root, "session_max_seconds")) != NULL &&
	    (r = get_int(v, "session_max_seconds", 300, 604800, &s->session_max_seconds,
	    err, errsz)) < 0) {
		return r;
	}
	if (s->session_max_seconds < s->session_idle_seconds) {
		text_printf(err, errsz, "field 'session_max_seconds' must be at least "
		    "'session_idle_seconds'");
		return -EINVAL;
	}
	if ((v = json_object_get(root, "login")) != NULL &&
	    (r = parse_login(v, s, err, errsz)) < 0) {
		return r;
	}
	if ((v = json_object_get(root, "max_pending")) != NULL &&
	    (r = get_uint(v, "max_pending", 1, 100000, &s->max_pending, err, errsz)) < 0) {
		return r;
	}
	if ((v = json_object_get(root, "notify")) != NULL &&
	    (r = parse_notify(v, s, err, errsz)) < 0) {
		return r;
	}
	if ((v = json_object_get(root, "threads")) != NULL &&
	    (r = get_uint(v, "threads", 1, 64, &s->threads, err, errsz)) < 0) {
		return r;
	}
	return 0;
}

int
settings_parse(const char *state_dir, const char *text, size_t len, struct settings **ret,
    char *err, size_t errsz)
{
	struct settings *s = NULL;
	json_t *root = NULL;
	int r;

	if (err != NULL && errsz > 0) {
		err[0] = '\0';
	}
	if (state_dir == NULL || state_dir[0] == '\0' || text == NULL || ret == NULL) {
		text_printf(err, errsz, "no state folder or no text");
		return -EINVAL;
	}
	r = cjson_parse(text, len, SETTINGS_MAX_BYTES, &root);
	if (r < 0) {
		if (r == -EFBIG) {
			text_printf(err, errsz, "the configuration is larger than %d bytes",
			    SETTINGS_MAX_BYTES);
		} else {
			text_printf(err, errsz, "the configuration is not strict JSON (duplicate keys, "
			    "real numbers, nesting deeper than %d and trailing data are refused)",
			    CJSON_MAX_DEPTH);
		}
		goto out;
	}
	s = calloc(1, sizeof(*s));
	if (s == NULL) {
		r = -ENOMEM;
		goto out;
	}
	r = defaults(s, state_dir, err, errsz);
	if (r == 0) {
		r = apply(root, s, err, errsz);
	}
	if (r < 0) {
		goto out;
	}
	*ret = s;
	s = NULL;
out:
	json_decref(root);
	settings_free(s);
	return r;
}

int
settings_load(const char *state_dir, struct settings **ret, char *err, size_t errsz)
{
	char path[SETTINGS_PATH_MAX];
	char *buf = NULL;
	size_t len = 0;
	int n, r;

	if (state_dir == NULL || ret == NULL) {
		return -EINVAL;
	}
	n = snprintf(path, sizeof(path), "%s/%s", state_dir, SETTINGS_FILE);
	if (n < 0 || (size_t)n >= sizeof(path)) {
		text_printf(err, errsz, "the state folder's path is too long");
		return -ENAMETOOLONG;
	}
	r = fs_read_file(path, SETTINGS_MAX_BYTES, &buf, &len);
	if (r < 0) {
		text_printf(err, errsz, "%s: %s", path, strerror(-r));
		return r;
	}
	r = settings_parse(state_dir, buf, len, ret, err, errsz);
	if (r < 0 && err != NULL && errsz > 0) {
		char tmp[512];

		(void)snprintf(tmp, sizeof(tmp), "%s", err);
		text_printf(err, errsz, "%s: %s", path, tmp);
	}
	free(buf);
	return r;
}

void
settings_free(struct settings *s)
{
	size_t i;

	if (s == NULL) {
		return;
	}
	for (i = 0; i < SETTINGS_MAX_ARGV; i++) {
		free(s->notify_argv[i]);
	}
	free(s);
}

int
settings_default_text(char **ret)
{
	char *p;

	if (ret == NULL) {
		return -EINVAL;
	}
	p = strdup(default_text);
	if (p == NULL) {
		return -ENOMEM;
	}
	*ret = p;
	return 0;
}

unsigned
settings_quorum_for(const struct settings *s, const char *op)
{
	return quorum_for(s->quorum, s->n_quorum, s->quorum_default, op);
}

const char *
settings_origin(const struct settings *s)
{
	return s->public_url;
}
