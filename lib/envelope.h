/* envelope: what a VM may ever do (docs/envelope.md). For each tool a level
 * in the lattice never < ask < allow, plus bounds (path prefixes, an argv
 * allowlist, a call budget). Fixed at launch from the manifest and measured
 * with it; at run time it only narrows: the meet of two envelopes is the
 * lower level and the intersection of the bounds, never a join. A tool the
 * envelope does not name is "never". */
#ifndef WARRANT_ENVELOPE_H
#define WARRANT_ENVELOPE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum envelope_level {
	ENVELOPE_NEVER = 0,
	ENVELOPE_ASK = 1,      /* gated: needs an approval token */
	ENVELOPE_ALLOW = 2,
};

struct envelope;

/* Parse the manifest's "envelope" object strictly; err names the tool and
 * field at fault. */
int envelope_parse(const json_t *j, struct envelope **ret, char *err, size_t errlen);
void envelope_free(struct envelope *e);
json_t *envelope_to_json(const struct envelope *e);

/* The meet (greatest lower bound): every level the lower, every bound the
 * intersection, every budget the smaller. */
int envelope_meet(const struct envelope *a, const struct envelope *b, struct envelope **ret);
/* a is at most b: a narrows (or equals) b everywhere. */
bool envelope_leq(const struct envelope *a, const struct envelope *b);

/* Decide a call: the tool's level after its bounds (a call outside a bound
 * is "never", with the rule that refused it in *ret_rule), without
 * consuming budget. args are the call's arguments, paths already resolved
 * to the workspace's view ("/a/b"). */
int envelope_check(const struct envelope *e, const char *tool, const json_t *args,
    enum envelope_level *ret_level, const char **ret_rule);
/* *ret_rule (NULL when the call is allowed or gated) points to storage of
 * this thread that the next envelope_check on it overwrites; copy it to
 * keep it. Malformed args (no "path" string, an "argv" that is not a list
 * of strings) are "never" with a rule, not an error; -EINVAL is only for
 * NULL e, tool or ret_level. The budget is not looked at: a spent budget is
 * envelope_charge's -EDQUOT, a separate answer ("budget") for the guest. */

/* Count one call against the tool's budget; -EDQUOT once it is spent. */
int envelope_charge(struct envelope *e, const char *tool);

/* Added with lib/envelope.c (additive). envelope_charge, envelope_budget
 * and envelope_limits return -ENOENT for a tool that is "never" (absent or
 * unknown). envelope_parse's messages name the tool and the bound, without
 * a prefix (manifest.c adds 'manifest: field "envelope": '). */

/* Calls left; UINT64_MAX when the tool has no budget. */
int envelope_budget(const struct envelope *e, const char *tool, uint64_t *ret_left);
/* exec's "timeout_ms" and "max_output" (defaults applied); 0 and 0 for a
 * tool without such bounds, meaning "the proxy's own default". */
int envelope_limits(const struct envelope *e, const char *tool, uint32_t *ret_timeout_ms,
    size_t *ret_max_output);
/* The same envelope: every level, bound and budget equal. */
bool envelope_equal(const struct envelope *a, const struct envelope *b);

const char *envelope_level_name(enum envelope_level l);

#endif
