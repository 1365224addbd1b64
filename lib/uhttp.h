/* uhttp: a small HTTP/1.1 client on libcurl, for attestd's unix socket
 * (and later HTTPS URLs). One handle is one keep-alive connection: reuse it
 * for every request and give each thread its own handle.
 *
 * Error codes:
 *   -ENOENT        the unix socket does not exist (attestd is not there)
 *   -ECONNREFUSED  nothing accepts on it, or a TCP connect failed
 *   -EACCES        no permission on the socket, or TLS peer verification
 *                  failed
 *   -ECONNRESET    the connection broke mid-request
 *   -EHOSTUNREACH  the host name does not resolve
 *   -ETIMEDOUT     the connect or request timeout passed
 *   -EPROTO        a bad reply: not HTTP, cut short, over the handle's
 *                  reply cap (UHTTP_MAX_BODY unless uhttp_set_max_reply
 *                  changed it), or (uhttp_request_json) not a JSON object
 *   -EINVAL        a bad method or path; -ENOMEM; -EIO for anything else */
#ifndef WARRANT_UHTTP_H
#define WARRANT_UHTTP_H

#include <jansson.h>
#include <stddef.h>

#define UHTTP_MAX_BODY            (1024 * 1024)           /* default reply cap */
#define UHTTP_MAX_REPLY_LIMIT     ((size_t)1 << 30)       /* highest settable cap */
#define UHTTP_CONNECT_TIMEOUT_MS  2000
#define UHTTP_TIMEOUT_MS          10000

struct uhttp;

/* A client for the HTTP server on a unix socket; request paths are
 * "/v1/...". The socket is not touched until the first request. */
int uhttp_new_unix(const char *socket_path, struct uhttp **ret);
/* A client for base_url ("https://host:port"); request paths are appended.
 * Only http and https are allowed, redirects are not followed, TLS peers
 * are verified against the system store, or against uhttp_set_cafile's
 * file alone when one is set. */
int uhttp_new_url(const char *base_url, struct uhttp **ret);
void uhttp_free(struct uhttp *h);

/* Timeouts in milliseconds, both > 0. */
int uhttp_set_timeouts(struct uhttp *h, long connect_ms, long total_ms);
int uhttp_set_cafile(struct uhttp *h, const char *path);
/* A client certificate and its key (PEM files) for HTTPS servers that
 * require one; not for unix sockets (-EINVAL). */
int uhttp_set_client_cert(struct uhttp *h, const char *cert_file, const char *key_file);
/* The largest reply body this handle accepts, 1..UHTTP_MAX_REPLY_LIMIT
 * bytes (default UHTTP_MAX_BODY); a longer reply is -EPROTO. Raise it only
 * for a reply that is large by design (attestd's quote carries the event
 * log); the whole body is held in memory. */
int uhttp_set_max_reply(struct uhttp *h, size_t max);

/* Send one request; body may be NULL (no body). Any HTTP status is a
 * success: *ret_status gets it and *ret_body the reply's body,
 * NUL-terminated (not counted in *ret_len), to be freed with free(). */
int uhttp_request(struct uhttp *h, const char *method, const char *path,
    const char *body, size_t body_len,
    long *ret_status, char **ret_body, size_t *ret_len);

/* The same with JSON on both sides: body (may be NULL) is sent compact; the
 * reply must be a JSON object without duplicate keys, whatever its status. */
int uhttp_request_json(struct uhttp *h, const char *method, const char *path,
    const json_t *body, long *ret_status, json_t **ret);

#endif
