/* api: the HTTP API of docs/attestd-api.md, independent of the transport.
 * server.c hands it a request (method, path, query, body, peer uid) and
 * sends back the response it builds: routing, roles, strict field
 * checking and the JSON error bodies all live here. */
#ifndef WARRANT_ATTESTD_API_H
#define WARRANT_ATTESTD_API_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "config.h"
#include "keyring.h"
#include "launchlog.h"
#include "token.h"

#define API_BODY_MAX  (64 * 1024)
#define API_MAX_QUERY 8
#define API_MAX_MINT_USES 1000
#define API_APPROVED_DB   "approved-requests.db"   /* in the state directory */

struct api_query {
	const char *key;
	const char *value;      /* NULL for "?key" without '=' */
};

struct api_request {
	const char *method;
	const char *path;
	bool peer_known;        /* SO_PEERCRED worked */
	uid_t uid;
	size_t n_query;
	bool query_overflow;    /* more than API_MAX_QUERY parameters */
	struct api_query query[API_MAX_QUERY];
	const char *body;
	size_t body_len;
};

struct api_response {
	unsigned status;
	char *body;             /* malloc'd JSON; NULL only when out of memory */
	size_t len;
	bool secret;            /* holds a key or a token: wipe once sent */
	const char *allow;      /* the Allow header of a 405 */
};

/* A parsed POST /v1/mint body. */
struct api_mint {
	struct token_claims claims;   /* aud, vm, launch, op, args, uses, request */
	int64_t ttl;
	size_t n_approvals;           /* items of "approvals"; 0 when absent */
};

struct api;

/* cfg, kr and ll must outlive the api. */
int api_new(const struct config *cfg, struct keyring *kr, struct launchlog *ll,
    struct api **ret);
void api_free(struct api *a);

/* Always fills ret (status 500 with a NULL body if memory ran out). */
void api_handle(struct api *a, const struct api_request *rq, int64_t now,
    struct api_response *ret);

/* A JSON error response {"error":code,"detail":detail}. */
void api_error(unsigned status, const char *code, const char *detail,
    struct api_response *ret);
/* Wipe (if secret) and free a response body. */
void api_response_clear(struct api_response *r);

/* Re-read the state directory (POST /v1/admin/reload and SIGHUP): the
 * keystore and the enrolled approvers. */
int api_reload(struct api *a, int64_t now);

/* Load STATE_DIR/approvers.json (attestd/approvers.h); a missing file is
 * an empty store. On failure the api keeps the store it had and err says
 * why. attestd calls it once at start and stops if it fails. */
int api_load_approvers(struct api *a, char *err, size_t errsz);

/* Parse and check a mint request body: strict JSON, known fields only,
 * identifiers and ranges, and the structure of "approvals" (its
 * signatures are checked by handle_mint, not here). On error returns -EINVAL, -EFBIG or -ERANGE and
 * writes a message naming the field to detail. */
int api_parse_mint(const char *body, size_t len, int64_t default_ttl, int64_t max_ttl,
    struct api_mint *ret, char *detail, size_t detailsz);

#endif
