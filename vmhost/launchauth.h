/* launchauth: the check vmhost makes before it boots anything. attestd's
 * launch socket returns a VM id, a launch digest and a launch token; the
 * token must verify under the "vmhost" audience key and be bound to
 * exactly that VM id, that launch digest, operation "vm.launch" and, as
 * its arguments, the canonical config that was measured.
 * Otherwise the launch is refused: an answer from something that is not
 * attestd (or a token for another launch) cannot start a VM. */
#ifndef WARRANT_LAUNCHAUTH_H
#define WARRANT_LAUNCHAUTH_H

#include <jansson.h>
#include <stdint.h>

#include "verifier.h"

#define LAUNCHAUTH_AUDIENCE  "vmhost"
#define LAUNCHAUTH_OP        "vm.launch"
#define LAUNCHAUTH_SKEW      30          /* seconds an iat may be ahead */

/* 0 if token allows launching vm_id with launch_digest and config (the
 * manifest's canonical config, manifest_config) now (now 0: the current
 * time). Otherwise a negative errno and *ret_reason (may be NULL) names
 * why: a verifier reason, or "bad_launch_reply" when vm_id or
 * launch_digest are not well-formed themselves. */
int launchauth_check(struct verifier *v, const char *token, const char *vm_id,
    const char *launch_digest, const json_t *config, int64_t now, const char **ret_reason);

#endif
