/* launch: the client side of attestd's launch socket, which takes the
 * sealed artifacts as descriptors (SCM_RIGHTS) with the canonical config,
 * measures them and returns the VM id, launch digest and a launch token
 * for audience "vmhost" (docs/attestd-api.md, "Launch socket"). */
#ifndef WARRANT_LAUNCH_H
#define WARRANT_LAUNCH_H

#include <jansson.h>

#include "manifest.h"

#define LAUNCH_DEFAULT_SOCKET "/run/warrant/attestd-launch.sock"
#define LAUNCH_REQUEST_MAX    65536           /* request JSON, after the length */
#define LAUNCH_REPLY_MAX      (1024 * 1024)   /* reply JSON, after the length */
#define LAUNCH_TIMEOUT_MS     120000          /* the whole exchange */

struct launch_fds {
	int kernel;
	int initrd;
	int rootfs;      /* -1 when the manifest has none */
};

struct launch_result {
	char vm_id[65];
	char launch_digest[65];
	char *token;     /* launch token, audience "vmhost"; free() after wiping */
	json_t *reply;   /* attestd's whole JSON reply (events included) */
};

/* Measure: 0 and *ret filled when attestd answered status 200 with a
 * well-formed reply. Otherwise -EINVAL (attestd's 400), -EACCES (403, or no
 * permission on the socket), -EFBIG (413, or a request over the cap),
 * -EAGAIN (503: TPM or event log unavailable), -EIO (500), -EPROTO (a
 * malformed reply or another status), or the socket's own error (-ENOENT,
 * -ECONNREFUSED, -ETIMEDOUT, -ECONNRESET). */
int launch_measure(const char *launch_socket, const struct manifest *m,
    const struct launch_fds *fds, struct launch_result *ret);
/* launch_measure, saying why attestd refused: when attestd answered with a
 * status other than 200, detail gets its "error" and "detail" as
 * "ERROR: DETAIL" (truncated to fit, bytes outside printable ASCII shown
 * as '?', so that it can go into a log line); in every other case an
 * empty string. detail may be NULL if detail_len is 0. */
int launch_measure_detail(const char *launch_socket, const struct manifest *m,
    const struct launch_fds *fds, struct launch_result *ret, char *detail, size_t detail_len);
/* The exchange alone: 0 whenever attestd sent a well-formed JSON object
 * with an integer "status", whatever it is; for callers that show
 * attestd's answer as it is (attestctl measure). The reply may hold the
 * launch token: wipe it before freeing. */
int launch_request(const char *launch_socket, const struct manifest *m,
    const struct launch_fds *fds, json_t **ret_reply);
void launch_result_clear(struct launch_result *r);

#endif
