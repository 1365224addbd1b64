/* notify: the approver's background thread. It expires pending requests at
 * their deadline, purges old sessions and failed logins, and tells people
 * about new requests: it runs cfg->notify_argv (the request's summary as
 * JSON on standard input, a clean environment) and/or POSTs the summary to
 * cfg->notify_webhook. A failure is logged and retried with backoff (the
 * queue is in the store, so it survives a restart); it never holds up a
 * request. */
#ifndef WARRANT_APPROVER_NOTIFY_H
#define WARRANT_APPROVER_NOTIFY_H

#include "requests.h"
#include "settings.h"

#define NOTIFY_MAX_ATTEMPTS   8
#define NOTIFY_TIMEOUT_MS     10000

struct notify;

int notify_start(const struct settings *cfg, struct requests *rq, struct notify **ret);
void notify_stop(struct notify *n);
/* The summary sent for a request: {"id","vm","op","reason","digest",
 * "created","expires","url"}. */
json_t *notify_summary(const struct settings *cfg, const struct store_request *r);

#endif
