/* gate: where a gated call's approval request goes, and where its answer
 * comes from (docs/proxy.md, "Gating"). A sink is an interface with
 * submit, wait and done; the proxy does not know which one it talks to.
 *
 *  - the spool sink (here): DIR/requests/<id>.json is written (0600,
 *    atomically); an approver, a script or a human, answers by dropping a
 *    token into DIR/tokens/<id> or a reason into DIR/denied/<id>;
 *  - the approver sink (approversink.c): the approver service's API for
 *    proxies (docs/approvals.md), on a unix socket or over HTTPS with a
 *    client certificate.
 *
 * A sink only carries: the token it returns is verified by the proxy
 * (audience, VM, launch digest, operation, arguments, expiry, single use)
 * before anything runs, so whoever can write into the spool can deny or
 * delay a call but never approve one. Thread-safe: each waiting call polls
 * its own files. */
#ifndef WARRANT_GATE_H
#define WARRANT_GATE_H

#include <jansson.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#define GATE_ID_MAX              64
#define GATE_ID_LEN              32        /* 16 random bytes, hex */
#define GATE_REASON_MAX          1024
#define GATE_TIMEOUT_DEFAULT_MS  600000    /* --approval-timeout default */
#define GATE_POLL_MS             100
/* A token or denial file is used once it has not been modified for this
 * long: a writer that does not rename into place may still be writing. */
#define GATE_SETTLE_MS           200

struct gate_request {
	char id[GATE_ID_MAX + 1];
	const char *vm;                 /* VM id */
	const char *launch_digest;      /* hex */
	const char *op;                 /* the tool */
	const json_t *args;             /* normal form, as verified */
	char args_sha256[65];           /* SHA-256 of the canonical args, hex */
	const char *reason;             /* the agent's, "" if none */
	int64_t requested_ttl;          /* seconds */
	int64_t created;                /* unix seconds */
	int64_t expires;                /* unix seconds: the proxy stops waiting */
};

struct gate_ops {
	int (*submit)(void *ctx, const struct gate_request *r);
	/* Until a decision, deadline_ms (CLOCK_MONOTONIC) or *cancel:
	 * 0 and *ret_token (malloc'ed, NUL-terminated; wipe before free) for
	 * an approval; -EACCES and *ret_reason (malloc'ed) for a denial;
	 * -ETIMEDOUT; -ECANCELED; another negative errno if the sink failed. */
	int (*wait)(void *ctx, const char *id, uint64_t deadline_ms, const atomic_bool *cancel,
	    char **ret_token, char **ret_reason);
	/* The call is over: the sink may forget id (spool: remove its files). */
	void (*done)(void *ctx, const char *id);
	void (*free)(void *ctx);
};

struct gate;

/* A gate over any sink; ctx is owned (ops->free at gate_free). */
int gate_new(const struct gate_ops *ops, void *ctx, struct gate **ret);
/* The spool sink on dir (created 0700 with requests/, tokens/, denied/;
 * a symbolic link is refused). */
int gate_spool_new(const char *dir, struct gate **ret);
/* The approver sink: address is the absolute path of the approver's API
 * socket, or an https:// URL (then cert_file and key_file, PEM, are the
 * client certificate; ca_file, if given, verifies the server). aud is the
 * audience of the tokens it asks for; owner (NULL or "") the account that
 * may not review them. -EINVAL for a bad address or name, -ENOENT for a
 * file that is missing. Nothing is contacted until the first request. */
int gate_approver_new(const char *address, const char *ca_file, const char *cert_file,
    const char *key_file, const char *aud, const char *owner, struct gate **ret);
void gate_free(struct gate *g);

int gate_submit(struct gate *g, const struct gate_request *r);
int gate_wait(struct gate *g, const char *id, uint64_t timeout_ms, char **ret_token,
    char **ret_reason);
void gate_done(struct gate *g, const char *id);
/* Make every current and later gate_wait return -ECANCELED (shutdown). */
void gate_cancel(struct gate *g);

/* A fresh request id: GATE_ID_LEN lower-case hex characters. */
int gate_new_id(char ret[GATE_ID_MAX + 1]);
/* {"id","vm","launch_digest","op","args","args_sha256","reason",
 *  "requested_ttl","created","expires"}: what an approver is shown. */
json_t *gate_request_to_json(const struct gate_request *r);

#endif
