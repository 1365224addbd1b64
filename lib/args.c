/* args: the shared command-line parser (see args.h). */
#include <errno.h>
#include <limits.h>
#include <string.h>

#include "args.h"

static int
args_fail(struct args_error *err, int r, const char *pre, const char *arg, size_t len,
    const char *post)
{
	struct args_error e = { pre, arg, len > INT_MAX ? INT_MAX : (int)len, post };

	*err = e;
	return r;
}

static struct args_opt *
args_find(struct args_opt *opts, const char *name, size_t nlen)
{
	struct args_opt *o;

	for (o = opts; o != NULL && o->name != NULL; o++) {
		if (strlen(o->name) == nlen && strncmp(o->name, name, nlen) == 0) {
			return o;
		}
	}
	return NULL;
}

int
args_parse(int argc, char **argv, struct args_opt *opts, size_t max_pos,
    unsigned flags, struct args *ret, struct args_error *err)
{
	struct args a = { 0, { NULL }, false };
	bool only_pos = false;
	int i;

	if (max_pos > ARGS_POS_MAX) {
		max_pos = ARGS_POS_MAX;
	}
	for (i = 0; i < argc; i++) {
		const char *s = argv[i], *eq, *val;
		struct args_opt *o;
		size_t nlen, shown;

		if (only_pos || s[0] != '-' || strcmp(s, "-") == 0) {
			if (a.n_pos == max_pos) {
				return args_fail(err, -E2BIG, "too many arguments at ", s,
				    strlen(s), "");
			}
			a.pos[a.n_pos++] = s;
			continue;
		}
		if (strcmp(s, "--") == 0) {
			only_pos = true;
			continue;
		}
		if (strcmp(s, "--help") == 0 || strcmp(s, "-h") == 0) {
			a.help = true;
			continue;
		}
		if (strncmp(s, "--", 2) != 0) {
			return args_fail(err, -EINVAL, "unknown option ", s, strlen(s), "");
		}
		eq = strchr(s, '=');
		nlen = eq != NULL ? (size_t)(eq - s - 2) : strlen(s + 2);
		o = args_find(opts, s + 2, nlen);
		if (o == NULL) {
			return args_fail(err, -EINVAL, "unknown option ", s, strlen(s), "");
		}
		/* "--name", as the option is named rather than as it was given. */
		shown = nlen + 2;
		if ((flags & ARGS_DUP_BY_NAME) != 0 && o->set) {
			return args_fail(err, -EINVAL, "option ", s, shown, " given twice");
		}
		if (o->flag) {
			if (o->set) {
				return args_fail(err, -EINVAL, "option ", s, strlen(s), " given twice");
			}
			o->set = true;
			if (eq != NULL) {
				return args_fail(err, -EINVAL, "option ", s, shown, " takes no value");
			}
			continue;
		}
		if (eq != NULL) {
			val = eq + 1;
		} else if (i + 1 < argc) {
			val = argv[++i];
		} else {
			return args_fail(err, -EINVAL, "option ", s, shown, " needs a value");
		}
		if (o->set) {
			return args_fail(err, -EINVAL, "option ", s, strlen(s), " given twice");
		}
		o->set = true;
		o->value = val;
		if ((flags & ARGS_NONEMPTY) != 0 && val[0] == '\0') {
			return args_fail(err, -EINVAL, "option ", s, shown, " needs a non-empty value");
		}
	}
	*ret = a;
	return 0;
}
