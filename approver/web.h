/* web: the pages people use, served over HTTPS by libmicrohttpd
 * (docs/approver.md, "Pages" and "Web security"). Sessions, CSRF tokens,
 * the Origin check and the security headers live here; the rules live in
 * requests.c. */
#ifndef WARRANT_APPROVER_WEB_H
#define WARRANT_APPROVER_WEB_H

#include <stddef.h>

#include "requests.h"
#include "settings.h"

struct web;

/* Listen on `listen` ("host:port"; NULL: cfg->listen) with cfg's
 * certificate and key, cfg->threads worker threads. */
int web_start(const struct settings *cfg, struct requests *rq, struct requests_attestd *attestd,
    const char *listen, struct web **ret, char *err, size_t errsz);
void web_stop(struct web *w);

#endif
