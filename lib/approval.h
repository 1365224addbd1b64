/* approval: the canonical approval request, the one text every party
 * agrees on (docs/approvals.md).
 *
 * The tool proxy submits a gated call, the approver shows it to people,
 * each approver's passkey signs its digest (the WebAuthn challenge), and
 * attestd recomputes the digest from the fields of the mint request it is
 * given before it checks a single signature. A field that differs anywhere
 * gives another digest, so a signature over one request is worthless for
 * any other.
 *
 * The canonical request is the canonical JSON (lib/cjson) of
 *   {"args_sha256":H,"aud":A,"launch_digest":L,"op":O,"request":ID,
 *    "ttl":N,"v":1,"vm":V}
 * and its digest is SHA-256 over those bytes. */
#ifndef WARRANT_APPROVAL_H
#define WARRANT_APPROVAL_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "token.h"

#define APPROVAL_VERSION   1
#define APPROVAL_TTL_MAX   86400          /* seconds a token may be asked for */
#define APPROVAL_REASON_MAX 1024          /* bytes of the agent's reason */

struct approval_request {
	char request[TOKEN_ID_MAX + 1];      /* request id: [A-Za-z0-9._:-], 1..64 */
	char aud[TOKEN_ID_MAX + 1];          /* the audience that will verify the token */
	char vm[TOKEN_ID_MAX + 1];
	char launch_digest[TOKEN_HEX256_LEN + 1];   /* lower-case hex */
	char op[TOKEN_OP_MAX + 1];
	char args_sha256[TOKEN_HEX256_LEN + 1];     /* lower-case hex */
	int64_t ttl;                         /* seconds, 1..APPROVAL_TTL_MAX */
};

/* Check every field's syntax (the same rules as attestd's /v1/mint):
 * 0 or -EINVAL. */
int approval_check(const struct approval_request *r);
/* The canonical JSON text (malloc'ed, NUL-terminated) and its length. */
int approval_canonical(const struct approval_request *r, char **ret, size_t *ret_len);
/* SHA-256 of the canonical text. -EINVAL if approval_check fails. */
int approval_digest(const struct approval_request *r, uint8_t ret[32]);
/* The same, as 64 lower-case hex characters and a NUL. */
int approval_digest_hex(const struct approval_request *r, char ret[TOKEN_HEX256_LEN + 1]);
/* Fill *ret from a JSON object holding exactly the canonical fields (the
 * "v" member is optional; when present it must be APPROVAL_VERSION).
 * Other members are ignored only if allow_extra; -EINVAL otherwise. */
int approval_from_json(const json_t *obj, int allow_extra, struct approval_request *ret);

#endif
