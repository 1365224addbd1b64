/* proxy: the enforcing tool proxy for one VM's agent channel
 * (docs/proxy.md; the wire protocol is docs/agent-protocol.md).
 *
 * Every request is parsed strictly; every tool call is resolved (paths to
 * the workspace's view), checked against the VM's current envelope, and
 * then refused (never, or a spent budget), run (allow), or turned into an
 * approval request (ask) that runs only with a token that verifies for
 * this VM, launch digest, tool and canonical arguments, whose id is
 * recorded as used before anything runs. "drop" narrows the envelope by a
 * meet, never widens it. Every decision goes to the hash-chained audit log
 * before the action it allows.
 *
 * proxy_serve runs the channel: an event loop reads frames, enforces the
 * limits (requests in flight, a rate, malformed frames until the channel
 * is cut off, a bounded output queue) and hands each request to one of
 * PROXY_IN_FLIGHT_MAX worker threads, so a call waiting for a human never
 * holds up another. A struct proxy serves one channel once. */
#ifndef WARRANT_PROXY_H
#define WARRANT_PROXY_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "audit.h"
#include "envelope.h"
#include "gate.h"
#include "tools.h"
#include "verifier.h"

#define PROXY_AUDIENCE          "proxy"
#define PROXY_IN_FLIGHT_MAX     8
#define PROXY_RATE_PER_SEC      100
#define PROXY_RATE_BURST        200
#define PROXY_STRIKES_MAX       64          /* malformed frames, then cut off */
#define PROXY_OUTQ_MAX          (1024 * 1024) /* replies queued: reading pauses past it */
#define PROXY_REASON_MAX        1024
#define PROXY_DETAIL_MAX        1024
#define PROXY_ID_MAX            ((uint64_t)1 << 53)
#define PROXY_TTL_DEFAULT       300         /* requested lifetime of an approval */
#define PROXY_SKEW_SECONDS      30
#define PROXY_FLUSH_MS          1000        /* last replies before a cut-off */
#define PROXY_CONTROL_NAME      "control.sock" /* in RUNDIR/NAME/ */
#define PROXY_CONTROL_MAX       4           /* control connections open at once */
#define PROXY_CONTROL_MS        2000        /* a control connection's whole life */

enum proxy_op {
	PROXY_OP_CALL = 1,
	PROXY_OP_DROP,
	PROXY_OP_ENVELOPE,
};

/* A parsed request; every pointer borrows from the frame. */
struct proxy_request {
	uint64_t id;
	enum proxy_op op;
	const char *tool;               /* call */
	const json_t *args;             /* call */
	const char *reason;             /* call; "" when absent */
	const json_t *envelope;         /* drop */
};

/* Parse one frame strictly: 0, or -EINVAL with what is wrong in detail.
 * Does not know the tools (an unknown tool is the caller's unknown_tool). */
int proxy_parse_request(const json_t *frame, struct proxy_request *ret, char *detail,
    size_t detail_len);
/* The frame's id if it has a valid one, else 0: what an error reply to a
 * frame that does not parse is addressed to. */
uint64_t proxy_request_id(const json_t *frame);

/* Called on the event loop after a narrowing by policy, with the new
 * envelope, before the reply: to keep it across a restart of the proxy.
 * 0, or a negative errno (the narrowing stands; the reply says it was not
 * kept). */
typedef int proxy_narrowed_fn(void *ctx, const json_t *envelope);

struct proxy_config {
	const char *vm_id;
	const char *launch_digest;      /* hex */
	struct envelope *envelope;      /* owned by the proxy once proxy_new succeeds */
	struct tools *tools;            /* borrowed */
	struct audit *audit;            /* borrowed; required */
	struct verifier *verifier;      /* borrowed, audience "proxy", replay store set */
	struct gate *gate;              /* borrowed; NULL: gated calls are refused */
	uint32_t approval_timeout_ms;   /* 0: GATE_TIMEOUT_DEFAULT_MS */
	int64_t requested_ttl;          /* 0: PROXY_TTL_DEFAULT */
	unsigned in_flight_max;         /* 0: PROXY_IN_FLIGHT_MAX (and at most it) */
	unsigned rate_per_sec;          /* 0: PROXY_RATE_PER_SEC */
	unsigned rate_burst;            /* 0: PROXY_RATE_BURST */
	unsigned strikes_max;           /* 0: PROXY_STRIKES_MAX */
	proxy_narrowed_fn *on_narrowed; /* NULL: a narrowing lives in memory only */
	void *narrowed_ctx;
};

struct proxy;

int proxy_new(const struct proxy_config *c, struct proxy **ret);
void proxy_free(struct proxy *p);

/* Handle one request frame to its final reply (*ret), synchronously, on
 * the calling thread: what each worker does. interim (may be NULL) gets
 * the "pending" frame of a gated call. Returns -ECANCELED (no reply) when
 * the proxy shuts down during the wait for an approval. */
typedef void proxy_interim_fn(void *ctx, const json_t *frame);
int proxy_handle(struct proxy *p, const json_t *frame, proxy_interim_fn *interim, void *ctx,
    json_t **ret);

/* Why proxy_serve stopped. */
enum proxy_end {
	PROXY_END_EOF = 1,              /* the other end closed (the VM stopped) */
	PROXY_END_CUT_MALFORMED,        /* too many malformed frames */
	PROXY_END_CUT_OVERSIZED,        /* a frame over FRAME_MAX */
	PROXY_END_CUT_AUDIT,            /* the audit log failed: fail closed */
	PROXY_END_ERROR,                /* the channel failed */
};

struct proxy_stats {
	enum proxy_end end;
	int error;                      /* PROXY_END_ERROR: the errno */
	uint64_t frames;                /* frames received */
	uint64_t calls;                 /* requests handed to workers */
	uint64_t malformed;             /* frames answered bad_request or too_large */
	uint64_t busy;                  /* requests answered busy */
};

/* Serve the channel fd (a connected stream; made non-blocking) until the
 * other end closes it or the guest is cut off; fd is not closed. */
int proxy_serve(struct proxy *p, int fd, struct proxy_stats *ret);

/* The control socket (docs/proxy.md, "Narrowing by policy"): vmhost's
 * host side. proxy_control_listen binds path (0600, a stale socket is
 * replaced) and listens; proxy_set_control hands the listener (borrowed,
 * before proxy_serve) to the event loop, which accepts at most
 * PROXY_CONTROL_MAX connections at once from vmhost's uid or root, reads
 * one frame from each within PROXY_CONTROL_MS, answers and closes. */
int proxy_control_listen(const char *path, int *ret_fd);
int proxy_set_control(struct proxy *p, int listen_fd);
/* Whether a peer with uid peer may use the control socket of a proxy
 * running as self. */
bool proxy_control_uid_ok(uid_t peer, uid_t self);
/* One control request: {"op":"narrow","envelope":{...}} narrows the
 * envelope to its meet with the current one (audit event "narrowed"),
 * hands it to on_narrowed, and answers {"ok":true,"envelope":NEW}
 * ({"ok":false,"error":"not_kept",...,"envelope":NEW} if on_narrowed
 * failed); anything else is answered {"ok":false,"error":CODE,"detail":D}
 * and changes nothing. 0 with *ret, or -ENOMEM. */
int proxy_control_handle(struct proxy *p, const json_t *req, json_t **ret);

/* Connect to a unix stream socket, retrying while it does not exist or
 * refuses, until timeout_ms. */
int proxy_connect(const char *path, uint32_t timeout_ms, int *ret_fd);

const char *proxy_end_name(enum proxy_end e);

#endif
