/* measure: attestd's launch socket (docs/attestd-api.md, "Launch socket").
 *
 * One request per connection: a 4-byte big-endian length, that much
 * canonical JSON {"artifacts":[...],"config":{...}}, and the artifacts'
 * sealed memfds as SCM_RIGHTS. The caller needs the role "launch"
 * (SO_PEERCRED). Each descriptor must carry every seal artifact_seal sets.
 * Hashing runs in a worker thread per request (at most
 * MEASURE_MAX_CONNECTIONS), so a large image never stalls minting; every
 * thing else, the event log, the TPM and the token, stays on the caller's
 * single thread, driven by measure_run from its event loop. */
#ifndef WARRANT_ATTESTD_MEASURE_H
#define WARRANT_ATTESTD_MEASURE_H

#include <stdint.h>

#include "config.h"
#include "keyring.h"
#include "launchlog.h"

#define MEASURE_MAX_CONNECTIONS 4
#define MEASURE_IO_TIMEOUT_MS   10000   /* to send a request, or read the reply */
#define MEASURE_TOKEN_TTL       120     /* seconds; at most max_ttl_seconds */

struct measure;

/* Takes ownership of listen_fd (non-blocking), also on failure. cfg, kr
 * and ll must outlive it. */
int measure_new(int listen_fd, const struct config *cfg, struct keyring *kr,
    struct launchlog *ll, struct measure **ret);
/* Waits for running hash threads, closes every connection. */
void measure_free(struct measure *m);

/* The descriptor to poll for input (an epoll set). */
int measure_fd(const struct measure *m);
/* Milliseconds until measure_run must run even without input; -1: none. */
int64_t measure_timeout_ms(const struct measure *m);
/* Accept, read, finish hashed requests, write replies; never blocks. */
void measure_run(struct measure *m);

#endif
