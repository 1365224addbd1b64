/* agent_client: the guest side of the agent channel
 * (docs/agent-protocol.md), for warrant-agent and for agent runtimes that
 * link it. It finds the channel itself, sends one request at a time and
 * waits, with a deadline, for that request's final reply. It holds no
 * secret. Not thread-safe: one client per thread, or a lock around it. */
#ifndef WARRANT_AGENT_CLIENT_H
#define WARRANT_AGENT_CLIENT_H

#include <jansson.h>
#include <stdbool.h>

#define AGENT_PORT_NAME "org.warrant.agent.0"
#define AGENT_VSOCK_CID 2u     /* the host */
#define AGENT_VSOCK_PORT 52u
#define AGENT_REASON_MAX 1024
#define AGENT_DETAIL_MAX 1024
#define AGENT_TIMEOUT_MAX_MS (86400 * 1000)

struct agent_client;

/* The reply to one request. ok: result is the result object. !ok: error
 * is the code ("denied", "budget", ...) and detail the text. */
struct agent_reply {
	bool ok;
	json_t *result;
	char *error;
	char *detail;
};

/* Called once for a gated call's interim frame, with the approval
 * request's id. */
typedef void (*agent_pending_fn)(void *arg, const char *request_id);

/* Find and open the channel: the virtio-serial port named AGENT_PORT_NAME,
 * or else vsock to AGENT_VSOCK_CID:AGENT_VSOCK_PORT. Waits at most
 * timeout_ms for a port another process holds (-EBUSY) or whose host end
 * is not connected yet (-ENOTCONN). -ENOENT: neither channel exists. */
int agent_open(int timeout_ms, struct agent_client **ret);
/* Use a connected stream the caller opened (tests, other transports). The
 * client owns fd from now on, also on failure. */
int agent_open_fd(int fd, struct agent_client **ret);
void agent_close(struct agent_client *c);
/* Where the channel is ("/dev/vport0p1", "vsock:2:52", "fd"). */
const char *agent_channel(const struct agent_client *c);

/* Send a request (an object with "op" and that op's fields; the client
 * adds "id") and wait up to timeout_ms for its final reply. 0 and *ret for
 * any well-formed reply, including a refusal (ret->ok false); negative
 * when the exchange failed: -EINVAL a request this client would not send
 * (the proxy would refuse it), -EMSGSIZE over FRAME_MAX, -ETIMEDOUT,
 * -EPIPE the channel closed, -EBADMSG a malformed reply, -errno. */
int agent_request(struct agent_client *c, const json_t *req, int timeout_ms,
    agent_pending_fn pending, void *arg, struct agent_reply *ret);

/* op "call": tool, its args (an object), an optional reason. */
int agent_call(struct agent_client *c, const char *tool, const json_t *args,
    const char *reason, int timeout_ms, agent_pending_fn pending, void *arg,
    struct agent_reply *ret);
/* op "drop": narrow the VM's envelope to its meet with envelope. */
int agent_drop(struct agent_client *c, const json_t *envelope, int timeout_ms,
    struct agent_reply *ret);
/* op "envelope": the current envelope. */
int agent_envelope(struct agent_client *c, int timeout_ms, struct agent_reply *ret);

void agent_reply_clear(struct agent_reply *r);

/* A tool name as the protocol allows: 1..128 of [A-Za-z0-9._:/-],
 * starting with a letter or digit. */
bool agent_tool_name_ok(const char *tool);
/* JSON the proxy's strict reader accepts inside a request at depth
 * (the request object is depth 1): integers only, nesting within 16. */
int agent_json_check(const json_t *j, int depth);

#endif
