/* args: the command-line parser shared by attestctl and vmhost. Long
 * options only, "--name VALUE", "--name=VALUE" or a bare "--flag", each at
 * most once; no abbreviations, so a typo is an error and never another
 * option. "--" ends the options; "-" is a positional argument; "--help" and
 * "-h" only set a flag. The parser does not print: on failure it describes
 * the error and the caller says it. */
#ifndef WARRANT_ARGS_H
#define WARRANT_ARGS_H

#include <stdbool.h>
#include <stddef.h>

#define ARGS_POS_MAX 8  /* the most positional arguments any caller takes */

/* One entry of a caller's option table, which ends with ARGS_END. */
struct args_opt {
	const char *name;       /* without the leading "--" */
	bool flag;              /* takes no value */
	const char *value;      /* points into argv; NULL if not given */
	bool set;
};

#define ARGS_OPT(n)  { (n), false, NULL, false }
#define ARGS_FLAG(n) { (n), true, NULL, false }
#define ARGS_END     { NULL, false, NULL, false }

/* Refuse "--name=" and "--name ''". */
#define ARGS_NONEMPTY     (1u << 0)
/* Check for a repeated option before reading its value, and name it as
 * "--name" rather than as the argument was given. */
#define ARGS_DUP_BY_NAME  (1u << 1)

struct args {
	size_t n_pos;
	const char *pos[ARGS_POS_MAX];
	bool help;
};

/* What went wrong, to be said as "<pre>'<arg>'<post>" with the first
 * arg_len bytes of arg, e.g. "option '--aud' given twice". */
struct args_error {
	const char *pre;
	const char *arg;
	int arg_len;
	const char *post;
};

/* Parse argv[0..argc) against opts (values and set flags are written into
 * the table), taking at most max_pos (<= ARGS_POS_MAX) positional
 * arguments. 0 and *ret on success; -EINVAL (-E2BIG for too many
 * positional arguments) and *err on failure. */
int args_parse(int argc, char **argv, struct args_opt *opts, size_t max_pos,
    unsigned flags, struct args *ret, struct args_error *err);

#endif
