/* settings: the approver's configuration, STATE/approver.json
 * (docs/approver.md, "Configuration"). Strict like attestd's: unknown keys,
 * duplicate keys, wrong types and values out of range are errors naming
 * the field. `approver init` writes one with the defaults below. */
#ifndef WARRANT_APPROVER_SETTINGS_H
#define WARRANT_APPROVER_SETTINGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "quorum.h"
#include "token.h"
#include "webauthn.h"

#define SETTINGS_FILE            "approver.json"
#define SETTINGS_DB_FILE         "approver.db"
#define SETTINGS_MAX_BYTES       (64 * 1024)
#define SETTINGS_PATH_MAX        4096
#define SETTINGS_SOCKET_MAX      107
#define SETTINGS_URL_MAX         255
#define SETTINGS_MAX_QUORUM_OPS  64
#define SETTINGS_MAX_ARGV        16
#define SETTINGS_MAX_OWNERS      256

struct settings {
	char state_dir[SETTINGS_PATH_MAX];
	char listen[SETTINGS_URL_MAX + 1];           /* "127.0.0.1:8443" */
	char public_url[SETTINGS_URL_MAX + 1];       /* "https://localhost:8443": the origin, links */
	char rp_id[WEBAUTHN_RP_ID_MAX + 1];          /* "localhost" */
	char tls_cert[SETTINGS_PATH_MAX];            /* PEM; default STATE/tls/cert.pem */
	char tls_key[SETTINGS_PATH_MAX];             /* PEM; default STATE/tls/key.pem */
	char api_socket[SETTINGS_SOCKET_MAX + 1];    /* default STATE/api.sock */
	char api_listen[SETTINGS_URL_MAX + 1];       /* "" (off) or "host:port": HTTPS, client certs */
	char api_client_ca[SETTINGS_PATH_MAX];       /* CA for proxies' client certificates */
	char attestd_socket[SETTINGS_SOCKET_MAX + 1];/* default /run/warrant/attestd.sock */
	unsigned quorum_default;                     /* 1..16, default 1 */
	size_t n_quorum;
	struct quorum_op quorum[SETTINGS_MAX_QUORUM_OPS];
	int64_t request_lifetime_seconds;            /* 10..86400, default 900 */
	int64_t session_idle_seconds;                /* 60..86400, default 900 */
	int64_t session_max_seconds;                 /* 300..604800, default 28800 */
	unsigned login_max_failures_name;            /* 1..100, default 5 */
	unsigned login_max_failures_addr;            /* 1..10000, default 50 */
	int64_t login_window_seconds;                /* 60..86400, default 900 */
	unsigned max_pending;                        /* 1..100000, default 10000 */
	size_t notify_argc;                          /* 0: no command */
	char *notify_argv[SETTINGS_MAX_ARGV + 1];    /* NULL-terminated */
	char notify_webhook[SETTINGS_URL_MAX + 1];   /* "" or https URL */
	char notify_webhook_ca[SETTINGS_PATH_MAX];   /* "" or the webhook's CA (PEM) */
	unsigned threads;                            /* web worker threads, 1..64, default 4 */
};

/* Load STATE/approver.json; relative paths in it are relative to STATE.
 * On error: -errno and err (NUL-terminated) naming the field. */
int settings_load(const char *state_dir, struct settings **ret, char *err, size_t errsz);
/* Parse text (for tests and the fuzzer); state_dir fills the defaults. */
int settings_parse(const char *state_dir, const char *text, size_t len, struct settings **ret,
    char *err, size_t errsz);
void settings_free(struct settings *s);
/* The default file's text for `approver init` (malloc'ed). */
int settings_default_text(char **ret);
/* Quorum for op: its own entry, else quorum_default. */
unsigned settings_quorum_for(const struct settings *s, const char *op);
/* The origin that pages are served from: public_url without a path. */
const char *settings_origin(const struct settings *s);

#endif
