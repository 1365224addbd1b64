/* proxyapi: the JSON API tool proxies use to submit a gated call, wait for
 * its outcome and pick up its token once (docs/approvals.md, "The proxies'
 * API"). On cfg->api_socket the caller is the peer's uid ("uid:N"); on
 * cfg->api_listen (HTTPS, a client certificate required, verified against
 * cfg->api_client_ca) it is "cert:" and the certificate's SHA-256 in hex.
 * A caller sees only its own requests. */
#ifndef WARRANT_APPROVER_PROXYAPI_H
#define WARRANT_APPROVER_PROXYAPI_H

#include <stddef.h>

#include "requests.h"
#include "settings.h"

#define PROXYAPI_BODY_MAX      (128 * 1024)
#define PROXYAPI_WAIT_MAX_S    30
#define PROXYAPI_MAX_CONNS     256

struct proxyapi;

int proxyapi_start(const struct settings *cfg, struct requests *rq, struct proxyapi **ret,
    char *err, size_t errsz);
void proxyapi_stop(struct proxyapi *p);

#endif
