#include "launchauth.h"

#include <errno.h>
#include <string.h>

#include "parse.h"
#include "token.h"

int
launchauth_check(struct verifier *v, const char *token, const char *vm_id,
    const char *launch_digest, const json_t *config, int64_t now, const char **ret_reason)
{
	struct token_expect e;
	uint8_t digest[32];
	const char *reason = NULL;
	int r;

	if (v == NULL || token == NULL || config == NULL) {
		return -EINVAL;
	}
	/* NULL expectations are "not checked" to the verifier: never pass
	 * one here, and never one that is not an id or a digest at all. */
	if (vm_id == NULL || launch_digest == NULL || strlen(vm_id) > TOKEN_ID_MAX ||
	    parse_ident(vm_id, TOKEN_ID_MAX) != 0 ||
	    parse_hex(launch_digest, digest, sizeof(digest)) != 0) {
		if (ret_reason != NULL) {
			*ret_reason = "bad_launch_reply";
		}
		return -EINVAL;
	}
	memset(&e, 0, sizeof(e));
	e.aud = LAUNCHAUTH_AUDIENCE;
	e.vm = vm_id;
	e.launch = launch_digest;
	e.op = LAUNCHAUTH_OP;
	e.args = config;
	e.now = now;
	e.skew = LAUNCHAUTH_SKEW;
	r = verifier_verify(v, token, &e, NULL, &reason);
	if (r != 0 && ret_reason != NULL) {
		*ret_reason = reason != NULL ? reason : "refused";
	}
	return r;
}
