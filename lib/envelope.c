/* envelope: the capability lattice a VM runs under (docs/envelope.md).
 *
 * Each known tool has a level (never < ask < allow) and the bounds its
 * table entry lists: a set of path prefixes, a set of argv prefixes, exec's
 * timeout and output cap, and for every tool a call budget. Sets are kept
 * in one normal form (sorted, no entry below another entry, never empty:
 * an empty set makes the tool "never" and it is left out), so equal
 * envelopes are equal structures, the meet is exact set intersection and
 * envelope_leq is a structural walk. A tool at "never" is simply absent.
 *
 * Nothing here widens: the only ways to make an envelope are envelope_parse
 * (fixed at launch, measured with the manifest) and envelope_meet;
 * envelope_charge only lowers a budget. */
#include "envelope.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "text.h"

#define ENV_BUDGET_MAX       1000000000
#define ENV_SET_MAX          64            /* entries in "paths" or "argv" */
#define ENV_PATH_MAX         4096          /* bytes; the proxy's TOOLS_PATH_MAX */
#define ENV_ARGC_MAX         64            /* strings in one argv prefix */
#define ENV_ARG_MAX          4096          /* bytes of one argv string */
#define ENV_TIMEOUT_MIN      1
#define ENV_TIMEOUT_MAX      600000
#define ENV_TIMEOUT_DEFAULT  10000
#define ENV_OUTPUT_MIN       1
#define ENV_OUTPUT_MAX       (16 * 1024 * 1024)
#define ENV_OUTPUT_DEFAULT   (1024 * 1024)
#define ENV_UNLIMITED        UINT64_MAX
#define ENV_RULE_MAX         512
#define ENV_NAME_SHOWN       64            /* characters of a name in a message */

/* The bounds a tool takes besides "level" and "budget". */
enum {
	BOUND_PATHS = 1u << 0,      /* "paths"; the call's "path" argument */
	BOUND_EXEC = 1u << 1,       /* "argv", "timeout_ms", "max_output"; the call's "argv" */
};

struct tool_def {
	const char *name;
	unsigned bounds;
};

/* The known tools, sorted by name. A new tool joins here; a bound of a new
 * kind also needs its parse, meet, leq, check and to_json below. */
static const struct tool_def tool_defs[] = {
	{ "exec", BOUND_EXEC },
	{ "fs.list", BOUND_PATHS },
	{ "fs.read", BOUND_PATHS },
	{ "fs.write", BOUND_PATHS },
};

#define N_TOOLS (sizeof(tool_defs) / sizeof(tool_defs[0]))

/* A set of prefixes: char * paths or struct argv_prefix *. */
struct set {
	void **v;
	size_t n;
};

struct argv_prefix {
	size_t n;
	char *v[];
};

struct set_ops {
	/* Everything x admits, y admits. */
	bool (*subset)(const void *x, const void *y);
	int (*cmp)(const void *x, const void *y);
	void *(*dup)(const void *x);
	void (*free)(void *x);
};

struct tool_env {
	enum envelope_level level;  /* ENVELOPE_NEVER: absent, nothing else set */
	uint64_t budget;            /* calls left, ENV_UNLIMITED when none was given */
	struct set paths;           /* BOUND_PATHS; {"/"} is the whole workspace */
	struct set argv;            /* BOUND_EXEC */
	uint32_t timeout_ms;        /* BOUND_EXEC */
	uint32_t max_output;        /* BOUND_EXEC */
};

struct envelope {
	struct tool_env t[N_TOOLS];
};

/* The rule that refused the last call checked on this thread. */
static _Thread_local char rule_buf[ENV_RULE_MAX];

/* A name from outside, fit for a one-line message: printable ASCII only,
 * at most ENV_NAME_SHOWN characters. */
static const char *
shown(const char *s, char buf[ENV_NAME_SHOWN + 4])
{
	size_t i;

	for (i = 0; s[i] != '\0' && i < ENV_NAME_SHOWN; i++) {
		unsigned char c = (unsigned char)s[i];

		buf[i] = (c >= 0x20 && c < 0x7f && c != '"') ? (char)c : '?';
	}
	if (s[i] != '\0') {
		memcpy(buf + i, "...", 3);
		i += 3;
	}
	buf[i] = '\0';
	return buf;
}

static const struct tool_def *
tool_find(const char *name, size_t *ret_index)
{
	size_t i;

	for (i = 0; i < N_TOOLS; i++) {
		if (strcmp(tool_defs[i].name, name) == 0) {
			*ret_index = i;
			return &tool_defs[i];
		}
	}
	return NULL;
}

const char *
envelope_level_name(enum envelope_level l)
{
	switch (l) {
	case ENVELOPE_NEVER: {
		return "never";
	}
	case ENVELOPE_ASK: {
		return "ask";
	}
	case ENVELOPE_ALLOW: {
		return "allow";
	}
	default: {
		return "never";
	}
	}
}

static int
level_parse(const json_t *v, enum envelope_level *ret)
{
	const char *s = json_string_value(v);

	if (s == NULL) {
		return -EINVAL;
	}
	if (strcmp(s, "never") == 0) {
		*ret = ENVELOPE_NEVER;
	} else if (strcmp(s, "ask") == 0) {
		*ret = ENVELOPE_ASK;
	} else if (strcmp(s, "allow") == 0) {
		*ret = ENVELOPE_ALLOW;
	} else {
		return -EINVAL;
	}
	return 0;
}

/* ---- paths ------------------------------------------------------------ */

/* An absolute path in normal form: "/" first, no empty, "." or ".."
 * component, no NUL, at most ENV_PATH_MAX bytes. A trailing "/" is allowed
 * (it makes a bound a folder prefix). */
static bool
path_ok(const char *s, size_t len)
{
	size_t i;

	if (len == 0 || len > ENV_PATH_MAX || s[0] != '/' || memchr(s, '\0', len) != NULL) {
		return false;
	}
	for (i = 0; i < len; i++) {
		const char *c = s + i;
		size_t left = len - i;

		if (c[0] != '/') {
			continue;
		}
		if (left >= 2 && c[1] == '/') {
			return false;
		}
		if (left >= 2 && c[1] == '.' && (left == 2 || c[2] == '/')) {
			return false;
		}
		if (left >= 3 && c[1] == '.' && c[2] == '.' && (left == 3 || c[3] == '/')) {
			return false;
		}
	}
	return true;
}

/* Does bound entry e admit path p? "D/" admits D itself and everything
 * below it; any other entry admits exactly itself. */
static bool
path_admits(const char *e, const char *p)
{
	size_t el = strlen(e);

	if (e[el - 1] != '/') {
		return strcmp(e, p) == 0;
	}
	if (strncmp(p, e, el) == 0) {
		return true;
	}
	return el > 1 && strlen(p) == el - 1 && strncmp(p, e, el - 1) == 0;
}

static bool
path_subset(const void *x, const void *y)
{
	const char *px = x, *py = y;
	size_t xl = strlen(px), yl = strlen(py);

	if (px[xl - 1] != '/') {
		return path_admits(py, px);
	}
	/* A folder is inside only a folder that is a prefix of it. */
	return py[yl - 1] == '/' && yl <= xl && strncmp(px, py, yl) == 0;
}

static int
path_cmp(const void *x, const void *y)
{
	return strcmp(x, y);
}

static void *
path_dup(const void *x)
{
	return strdup(x);
}

static void
path_free(void *x)
{
	free(x);
}

static const struct set_ops path_ops = {
	.subset = path_subset, .cmp = path_cmp, .dup = path_dup, .free = path_free,
};

/* ---- argv prefixes ---------------------------------------------------- */

static bool
argv_subset(const void *x, const void *y)
{
	const struct argv_prefix *ax = x, *ay = y;
	size_t i;

	if (ay->n > ax->n) {
		return false;
	}
	for (i = 0; i < ay->n; i++) {
		if (strcmp(ax->v[i], ay->v[i]) != 0) {
			return false;
		}
	}
	return true;
}

static int
argv_cmp(const void *x, const void *y)
{
	const struct argv_prefix *ax = x, *ay = y;
	size_t i;
	int c;

	for (i = 0; i < ax->n && i < ay->n; i++) {
		c = strcmp(ax->v[i], ay->v[i]);
		if (c != 0) {
			return c;
		}
	}
	return ax->n < ay->n ? -1 : ax->n > ay->n ? 1 : 0;
}

static void
argv_free(void *x)
{
	struct argv_prefix *a = x;
	size_t i;

	if (a == NULL) {
		return;
	}
	for (i = 0; i < a->n; i++) {
		free(a->v[i]);
	}
	free(a);
}

static struct argv_prefix *
argv_new(size_t n)
{
	struct argv_prefix *a;

	a = calloc(1, sizeof(*a) + n * sizeof(a->v[0]));
	if (a == NULL) {
		return NULL;
	}
	return a;
}

static void *
argv_dup(const void *x)
{
	const struct argv_prefix *ax = x;
	struct argv_prefix *a;
	size_t i;

	a = argv_new(ax->n);
	if (a == NULL) {
		return NULL;
	}
	for (i = 0; i < ax->n; i++) {
		a->v[i] = strdup(ax->v[i]);
		if (a->v[i] == NULL) {
			argv_free(a);
			return NULL;
		}
		a->n = i + 1;
	}
	return a;
}

static const struct set_ops argv_ops = {
	.subset = argv_subset, .cmp = argv_cmp, .dup = argv_dup, .free = argv_free,
};

/* ---- sets ------------------------------------------------------------- */

static void
set_clear(struct set *s, const struct set_ops *ops)
{
	size_t i;

	for (i = 0; i < s->n; i++) {
		ops->free(s->v[i]);
	}
	free(s->v);
	s->v = NULL;
	s->n = 0;
}

/* The normal form: drop duplicates and every entry inside another, sort. */
static void
set_normalize(struct set *s, const struct set_ops *ops)
{
	size_t i, j, k = 0;

	for (i = 0; i < s->n; i++) {
		bool drop = false;

		for (j = 0; j < s->n && !drop; j++) {
			if (j == i || s->v[j] == NULL || !ops->subset(s->v[i], s->v[j])) {
				continue;
			}
			/* Of two equal entries the first stays. */
			drop = j < i || !ops->subset(s->v[j], s->v[i]);
		}
		if (drop) {
			ops->free(s->v[i]);
			s->v[i] = NULL;
		}
	}
	for (i = 0; i < s->n; i++) {
		if (s->v[i] != NULL) {
			s->v[k++] = s->v[i];
		}
	}
	s->n = k;
	/* Insertion sort: sets are small, and qsort has no context argument. */
	for (i = 1; i < s->n; i++) {
		void *x = s->v[i];

		for (j = i; j > 0 && ops->cmp(s->v[j - 1], x) > 0; j--) {
			s->v[j] = s->v[j - 1];
		}
		s->v[j] = x;
	}
}

/* The intersection: the entries of either set that lie inside some entry
 * of the other (two entries meet in the smaller of them, or not at all). */
static int
set_meet(const struct set *a, const struct set *b, const struct set_ops *ops, struct set *ret)
{
	struct set s = { NULL, 0 };
	size_t cap, i, j;
	int r;

	if (__builtin_add_overflow(a->n, b->n, &cap)) {
		return -EOVERFLOW;
	}
	if (cap > 0) {
		s.v = calloc(cap, sizeof(s.v[0]));
		if (s.v == NULL) {
			return -ENOMEM;
		}
	}
	for (i = 0; i < a->n + b->n; i++) {
		const void *x = i < a->n ? a->v[i] : b->v[i - a->n];
		const struct set *other = i < a->n ? b : a;

		for (j = 0; j < other->n; j++) {
			if (ops->subset(x, other->v[j])) {
				break;
			}
		}
		if (j == other->n) {
			continue;
		}
		s.v[s.n] = ops->dup(x);
		if (s.v[s.n] == NULL) {
			r = -ENOMEM;
			goto out;
		}
		s.n++;
	}
	set_normalize(&s, ops);
	*ret = s;
	s.v = NULL;
	s.n = 0;
	r = 0;
out:
	set_clear(&s, ops);
	return r;
}

/* Every entry of a lies inside some entry of b. */
static bool
set_leq(const struct set *a, const struct set *b, const struct set_ops *ops)
{
	size_t i, j;

	for (i = 0; i < a->n; i++) {
		for (j = 0; j < b->n; j++) {
			if (ops->subset(a->v[i], b->v[j])) {
				break;
			}
		}
		if (j == b->n) {
			return false;
		}
	}
	return true;
}

static bool
set_equal(const struct set *a, const struct set *b, const struct set_ops *ops)
{
	size_t i;

	if (a->n != b->n) {
		return false;
	}
	for (i = 0; i < a->n; i++) {
		if (ops->cmp(a->v[i], b->v[i]) != 0) {
			return false;
		}
	}
	return true;
}

/* ---- tools ------------------------------------------------------------ */

static void
tool_clear(struct tool_env *t)
{
	set_clear(&t->paths, &path_ops);
	set_clear(&t->argv, &argv_ops);
	memset(t, 0, sizeof(*t));
	t->level = ENVELOPE_NEVER;
}

/* A tool whose bounds admit nothing is "never": absent. */
static void
tool_settle(const struct tool_def *d, struct tool_env *t)
{
	if (t->level == ENVELOPE_NEVER ||
	    ((d->bounds & BOUND_PATHS) != 0 && t->paths.n == 0) ||
	    ((d->bounds & BOUND_EXEC) != 0 && t->argv.n == 0)) {
		tool_clear(t);
	}
}

static bool
tool_is_whole_workspace(const struct tool_env *t)
{
	return t->paths.n == 1 && strcmp(t->paths.v[0], "/") == 0;
}

static int
get_int(const json_t *v, json_int_t min, json_int_t max, uint64_t *ret)
{
	if (!json_is_integer(v)) {
		return -EINVAL;
	}
	if (json_integer_value(v) < min || json_integer_value(v) > max) {
		return -ERANGE;
	}
	*ret = (uint64_t)json_integer_value(v);
	return 0;
}

static int
parse_paths(const char *name, const json_t *v, struct set *s, char *err, size_t errlen)
{
	const json_t *p;
	size_t i;

	if (!json_is_array(v)) {
		text_printf(err, errlen, "tool \"%s\": \"paths\" must be a list of absolute paths", name);
		return -EINVAL;
	}
	if (json_array_size(v) > ENV_SET_MAX) {
		text_printf(err, errlen, "tool \"%s\": \"paths\" has more than %d entries", name,
		    ENV_SET_MAX);
		return -E2BIG;
	}
	if (json_array_size(v) > 0) {
		s->v = calloc(json_array_size(v), sizeof(s->v[0]));
		if (s->v == NULL) {
			text_printf(err, errlen, "out of memory");
			return -ENOMEM;
		}
	}
	json_array_foreach(v, i, p) {
		const char *str = json_string_value(p);

		if (str == NULL || !path_ok(str, json_string_length(p))) {
			text_printf(err, errlen, "tool \"%s\": \"paths\"[%zu] must be an absolute path of "
			    "at most %d bytes without \"//\", \".\" or \"..\" components", name, i,
			    ENV_PATH_MAX);
			return -EINVAL;
		}
		s->v[s->n] = strdup(str);
		if (s->v[s->n] == NULL) {
			text_printf(err, errlen, "out of memory");
			return -ENOMEM;
		}
		s->n++;
	}
	set_normalize(s, &path_ops);
	return 0;
}

static int
parse_argv(const char *name, const json_t *v, struct set *s, char *err, size_t errlen)
{
	const json_t *p, *a;
	size_t i, k;

	if (!json_is_array(v)) {
		text_printf(err, errlen, "tool \"%s\": \"argv\" must be a list of argv prefixes, each a "
		    "list of strings", name);
		return -EINVAL;
	}
	if (json_array_size(v) > ENV_SET_MAX) {
		text_printf(err, errlen, "tool \"%s\": \"argv\" has more than %d entries", name,
		    ENV_SET_MAX);
		return -E2BIG;
	}
	if (json_array_size(v) > 0) {
		s->v = calloc(json_array_size(v), sizeof(s->v[0]));
		if (s->v == NULL) {
			text_printf(err, errlen, "out of memory");
			return -ENOMEM;
		}
	}
	json_array_foreach(v, i, p) {
		struct argv_prefix *ap;

		if (!json_is_array(p) || json_array_size(p) == 0 ||
		    json_array_size(p) > ENV_ARGC_MAX) {
			text_printf(err, errlen, "tool \"%s\": \"argv\"[%zu] must be a list of 1..%d "
			    "strings", name, i, ENV_ARGC_MAX);
			return -EINVAL;
		}
		ap = argv_new(json_array_size(p));
		if (ap == NULL) {
			text_printf(err, errlen, "out of memory");
			return -ENOMEM;
		}
		s->v[s->n++] = ap;
		json_array_foreach(p, k, a) {
			const char *str = json_string_value(a);

			if (str == NULL || strlen(str) != json_string_length(a) ||
			    json_string_length(a) > ENV_ARG_MAX || (k == 0 && str[0] == '\0')) {
				text_printf(err, errlen, "tool \"%s\": \"argv\"[%zu][%zu] must be a string "
				    "of %s..%d bytes without NUL", name, i, k, k == 0 ? "1" : "0",
				    ENV_ARG_MAX);
				return -EINVAL;
			}
			ap->v[k] = strdup(str);
			if (ap->v[k] == NULL) {
				text_printf(err, errlen, "out of memory");
				return -ENOMEM;
			}
			ap->n = k + 1;
		}
	}
	set_normalize(s, &argv_ops);
	return 0;
}

/* The bounds a tool accepts, for the message about one it does not. */
static void
bounds_list(const struct tool_def *d, char *buf, size_t len)
{
	(void)snprintf(buf, len, "level, budget%s%s",
	    (d->bounds & BOUND_PATHS) != 0 ? ", paths" : "",
	    (d->bounds & BOUND_EXEC) != 0 ? ", argv, timeout_ms, max_output" : "");
}

static bool
bound_known(const struct tool_def *d, const char *key)
{
	if (strcmp(key, "level") == 0 || strcmp(key, "budget") == 0) {
		return true;
	}
	if ((d->bounds & BOUND_PATHS) != 0 && strcmp(key, "paths") == 0) {
		return true;
	}
	if ((d->bounds & BOUND_EXEC) != 0 && (strcmp(key, "argv") == 0 ||
	    strcmp(key, "timeout_ms") == 0 || strcmp(key, "max_output") == 0)) {
		return true;
	}
	return false;
}

static int
parse_tool(const struct tool_def *d, const json_t *v, struct tool_env *t, char *err,
    size_t errlen)
{
	const char *name = d->name, *key;
	char sbuf[ENV_NAME_SHOWN + 4], list[96];
	const json_t *b, *val;
	uint64_t u;
	int r;

	t->budget = ENV_UNLIMITED;
	t->timeout_ms = ENV_TIMEOUT_DEFAULT;
	t->max_output = ENV_OUTPUT_DEFAULT;
	if (json_is_string(v)) {
		if (level_parse(v, &t->level) < 0) {
			text_printf(err, errlen, "tool \"%s\": must be \"never\", \"ask\", \"allow\" or an "
			    "object with a \"level\"", name);
			return -EINVAL;
		}
		if ((d->bounds & BOUND_EXEC) != 0 && t->level != ENVELOPE_NEVER) {
			text_printf(err, errlen, "tool \"%s\": \"argv\" is required: %s runs only the "
			    "argv prefixes it lists", name, name);
			return -EINVAL;
		}
		goto bounds_done;
	}
	if (!json_is_object(v)) {
		text_printf(err, errlen, "tool \"%s\": must be \"never\", \"ask\", \"allow\" or an "
		    "object with a \"level\"", name);
		return -EINVAL;
	}
	json_object_foreach((json_t *)v, key, val) {
		if (!bound_known(d, key)) {
			bounds_list(d, list, sizeof(list));
			text_printf(err, errlen, "tool \"%s\": unknown bound \"%s\" (%s takes: %s)", name,
			    shown(key, sbuf), name, list);
			return -EINVAL;
		}
	}
	if (level_parse(json_object_get(v, "level"), &t->level) < 0) {
		text_printf(err, errlen, "tool \"%s\": \"level\" must be \"never\", \"ask\" or "
		    "\"allow\"", name);
		return -EINVAL;
	}
	b = json_object_get(v, "budget");
	if (b != NULL) {
		r = get_int(b, 0, ENV_BUDGET_MAX, &t->budget);
		if (r < 0) {
			text_printf(err, errlen, "tool \"%s\": \"budget\" must be an integer in 0..%d",
			    name, ENV_BUDGET_MAX);
			return r;
		}
	}
	if ((d->bounds & BOUND_PATHS) != 0) {
		b = json_object_get(v, "paths");
		if (b != NULL) {
			r = parse_paths(name, b, &t->paths, err, errlen);
			if (r < 0) {
				return r;
			}
		}
	}
	if ((d->bounds & BOUND_EXEC) != 0) {
		b = json_object_get(v, "argv");
		if (b == NULL && t->level != ENVELOPE_NEVER) {
			text_printf(err, errlen, "tool \"%s\": \"argv\" is required: %s runs only the "
			    "argv prefixes it lists", name, name);
			return -EINVAL;
		}
		if (b != NULL) {
			r = parse_argv(name, b, &t->argv, err, errlen);
			if (r < 0) {
				return r;
			}
		}
		b = json_object_get(v, "timeout_ms");
		if (b != NULL) {
			r = get_int(b, ENV_TIMEOUT_MIN, ENV_TIMEOUT_MAX, &u);
			if (r < 0) {
				text_printf(err, errlen, "tool \"%s\": \"timeout_ms\" must be an integer in "
				    "%d..%d", name, ENV_TIMEOUT_MIN, ENV_TIMEOUT_MAX);
				return r;
			}
			t->timeout_ms = (uint32_t)u;
		}
		b = json_object_get(v, "max_output");
		if (b != NULL) {
			r = get_int(b, ENV_OUTPUT_MIN, ENV_OUTPUT_MAX, &u);
			if (r < 0) {
				text_printf(err, errlen, "tool \"%s\": \"max_output\" must be an integer in "
				    "%d..%d", name, ENV_OUTPUT_MIN, ENV_OUTPUT_MAX);
				return r;
			}
			t->max_output = (uint32_t)u;
		}
	}
bounds_done:
	if ((d->bounds & BOUND_PATHS) != 0 && json_object_get(v, "paths") == NULL) {
		/* No "paths": the whole workspace. */
		t->paths.v = calloc(1, sizeof(t->paths.v[0]));
		if (t->paths.v == NULL) {
			text_printf(err, errlen, "out of memory");
			return -ENOMEM;
		}
		t->paths.v[0] = strdup("/");
		if (t->paths.v[0] == NULL) {
			text_printf(err, errlen, "out of memory");
			return -ENOMEM;
		}
		t->paths.n = 1;
	}
	tool_settle(d, t);
	return 0;
}

void
envelope_free(struct envelope *e)
{
	size_t i;

	if (e == NULL) {
		return;
	}
	for (i = 0; i < N_TOOLS; i++) {
		tool_clear(&e->t[i]);
	}
	free(e);
}

static struct envelope *
envelope_new(void)
{
	struct envelope *e = calloc(1, sizeof(*e));
	size_t i;

	if (e == NULL) {
		return NULL;
	}
	for (i = 0; i < N_TOOLS; i++) {
		e->t[i].level = ENVELOPE_NEVER;
	}
	return e;
}

int
envelope_parse(const json_t *j, struct envelope **ret, char *err, size_t errlen)
{
	struct envelope *e = NULL;
	char sbuf[ENV_NAME_SHOWN + 4], known[128];
	const char *key;
	json_t *v;
	size_t i, off = 0;
	int r;

	if (err != NULL && errlen > 0) {
		err[0] = '\0';
	}
	if (ret == NULL || !json_is_object(j)) {
		text_printf(err, errlen, "must be an object of tools");
		r = -EINVAL;
		goto out;
	}
	e = envelope_new();
	if (e == NULL) {
		text_printf(err, errlen, "out of memory");
		r = -ENOMEM;
		goto out;
	}
	json_object_foreach((json_t *)j, key, v) {
		const struct tool_def *d = tool_find(key, &i);

		if (d == NULL) {
			/* A typo must not quietly mean "never". */
			for (i = 0; i < N_TOOLS && off < sizeof(known); i++) {
				int n = snprintf(known + off, sizeof(known) - off, "%s%s",
				    i > 0 ? ", " : "", tool_defs[i].name);

				if (n < 0) {
					break;
				}
				off += (size_t)n;
			}
			text_printf(err, errlen, "tool \"%s\": unknown tool (known: %s)", shown(key, sbuf),
			    known);
			r = -EINVAL;
			goto out;
		}
		r = parse_tool(d, v, &e->t[i], err, errlen);
		if (r < 0) {
			goto out;
		}
	}
	*ret = e;
	e = NULL;
	r = 0;
out:
	envelope_free(e);
	return r;
}

static json_t *
set_to_json(const struct set *s, bool argv)
{
	json_t *arr = json_array(), *inner;
	size_t i, k;

	if (arr == NULL) {
		return NULL;
	}
	for (i = 0; i < s->n; i++) {
		if (!argv) {
			if (json_array_append_new(arr, json_string(s->v[i])) != 0) {
				goto fail;
			}
			continue;
		}
		inner = json_array();
		if (inner == NULL || json_array_append_new(arr, inner) != 0) {
			goto fail;
		}
		for (k = 0; k < ((const struct argv_prefix *)s->v[i])->n; k++) {
			const char *str = ((const struct argv_prefix *)s->v[i])->v[k];

			if (json_array_append_new(inner, json_string(str)) != 0) {
				goto fail;
			}
		}
	}
	return arr;
fail:
	json_decref(arr);
	return NULL;
}

json_t *
envelope_to_json(const struct envelope *e)
{
	json_t *out = NULL, *o = NULL;
	size_t i;

	if (e == NULL) {
		return NULL;
	}
	out = json_object();
	if (out == NULL) {
		return NULL;
	}
	for (i = 0; i < N_TOOLS; i++) {
		const struct tool_env *t = &e->t[i];
		const struct tool_def *d = &tool_defs[i];
		const char *level = envelope_level_name(t->level);

		if (t->level == ENVELOPE_NEVER) {
			continue;
		}
		if (t->budget == ENV_UNLIMITED && (d->bounds & BOUND_EXEC) == 0 &&
		    ((d->bounds & BOUND_PATHS) == 0 || tool_is_whole_workspace(t))) {
			if (json_object_set_new(out, d->name, json_string(level)) != 0) {
				goto fail;
			}
			continue;
		}
		o = json_pack("{s:s}", "level", level);
		if (o == NULL) {
			goto fail;
		}
		if (t->budget != ENV_UNLIMITED &&
		    json_object_set_new(o, "budget", json_integer((json_int_t)t->budget)) != 0) {
			goto fail;
		}
		if ((d->bounds & BOUND_PATHS) != 0 && !tool_is_whole_workspace(t) &&
		    json_object_set_new(o, "paths", set_to_json(&t->paths, false)) != 0) {
			goto fail;
		}
		if ((d->bounds & BOUND_EXEC) != 0 &&
		    (json_object_set_new(o, "argv", set_to_json(&t->argv, true)) != 0 ||
		    json_object_set_new(o, "timeout_ms", json_integer(t->timeout_ms)) != 0 ||
		    json_object_set_new(o, "max_output", json_integer(t->max_output)) != 0)) {
			goto fail;
		}
		if (json_object_set_new(out, d->name, o) != 0) {
			o = NULL;   /* set_new took it */
			goto fail;
		}
		o = NULL;
	}
	return out;
fail:
	json_decref(o);
	json_decref(out);
	return NULL;
}

static uint64_t
min_u64(uint64_t a, uint64_t b)
{
	return a < b ? a : b;
}

int
envelope_meet(const struct envelope *a, const struct envelope *b, struct envelope **ret)
{
	struct envelope *e = NULL;
	size_t i;
	int r;

	if (a == NULL || b == NULL || ret == NULL) {
		return -EINVAL;
	}
	e = envelope_new();
	if (e == NULL) {
		r = -ENOMEM;
		goto out;
	}
	for (i = 0; i < N_TOOLS; i++) {
		const struct tool_env *x = &a->t[i], *y = &b->t[i];
		struct tool_env *t = &e->t[i];

		if (x->level == ENVELOPE_NEVER || y->level == ENVELOPE_NEVER) {
			continue;
		}
		t->level = x->level < y->level ? x->level : y->level;
		t->budget = min_u64(x->budget, y->budget);
		t->timeout_ms = (uint32_t)min_u64(x->timeout_ms, y->timeout_ms);
		t->max_output = (uint32_t)min_u64(x->max_output, y->max_output);
		if ((tool_defs[i].bounds & BOUND_PATHS) != 0) {
			r = set_meet(&x->paths, &y->paths, &path_ops, &t->paths);
			if (r < 0) {
				goto out;
			}
		}
		if ((tool_defs[i].bounds & BOUND_EXEC) != 0) {
			r = set_meet(&x->argv, &y->argv, &argv_ops, &t->argv);
			if (r < 0) {
				goto out;
			}
		}
		tool_settle(&tool_defs[i], t);
	}
	*ret = e;
	e = NULL;
	r = 0;
out:
	envelope_free(e);
	return r;
}

bool
envelope_leq(const struct envelope *a, const struct envelope *b)
{
	size_t i;

	if (a == NULL || b == NULL) {
		return false;
	}
	for (i = 0; i < N_TOOLS; i++) {
		const struct tool_env *x = &a->t[i], *y = &b->t[i];

		if (x->level == ENVELOPE_NEVER) {
			continue;
		}
		if (x->level > y->level || x->budget > y->budget ||
		    x->timeout_ms > y->timeout_ms || x->max_output > y->max_output ||
		    !set_leq(&x->paths, &y->paths, &path_ops) ||
		    !set_leq(&x->argv, &y->argv, &argv_ops)) {
			return false;
		}
	}
	return true;
}

bool
envelope_equal(const struct envelope *a, const struct envelope *b)
{
	size_t i;

	if (a == NULL || b == NULL) {
		return false;
	}
	for (i = 0; i < N_TOOLS; i++) {
		const struct tool_env *x = &a->t[i], *y = &b->t[i];

		if (x->level != y->level || x->budget != y->budget ||
		    x->timeout_ms != y->timeout_ms || x->max_output != y->max_output ||
		    !set_equal(&x->paths, &y->paths, &path_ops) ||
		    !set_equal(&x->argv, &y->argv, &argv_ops)) {
			return false;
		}
	}
	return true;
}

/* ---- deciding calls --------------------------------------------------- */

struct rbuf {
	char *s;
	size_t cap;     /* at least 8 */
	size_t len;     /* len + 4 <= cap: room for "..." and the NUL */
	bool full;
};

/* Append s, printable ASCII kept and the rest shown as '?', at most max
 * bytes of it; what is cut becomes "...". */
static void
rb_put(struct rbuf *b, const char *s, size_t max)
{
	size_t i;

	if (b->full) {
		return;
	}
	for (i = 0; s[i] != '\0'; i++) {
		unsigned char c = (unsigned char)s[i];

		if (b->len + 1 + 4 > b->cap || (i == max && b->len + 3 + 4 > b->cap)) {
			memcpy(b->s + b->len, "...", 3);
			b->len += 3;
			b->full = true;
			break;
		}
		if (i == max) {
			memcpy(b->s + b->len, "...", 3);
			b->len += 3;
			break;
		}
		b->s[b->len++] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
	}
	b->s[b->len] = '\0';
}

static void
refuse(const char *tool, const char *what, enum envelope_level *ret_level,
    const char **ret_rule)
{
	struct rbuf b = { rule_buf, sizeof(rule_buf), 0, false };

	rb_put(&b, tool, ENV_NAME_SHOWN);
	rb_put(&b, ": ", SIZE_MAX);
	rb_put(&b, what, SIZE_MAX);
	*ret_level = ENVELOPE_NEVER;
	if (ret_rule != NULL) {
		*ret_rule = rule_buf;
	}
}

static void
refuse_path(const char *tool, const char *path, const struct set *s,
    enum envelope_level *ret_level, const char **ret_rule)
{
	struct rbuf b = { rule_buf, sizeof(rule_buf), 0, false };
	size_t i;

	rb_put(&b, tool, ENV_NAME_SHOWN);
	rb_put(&b, ": path ", SIZE_MAX);
	rb_put(&b, path, 128);
	rb_put(&b, " is outside ", SIZE_MAX);
	for (i = 0; i < s->n; i++) {
		if (i > 0) {
			rb_put(&b, ", ", SIZE_MAX);
		}
		rb_put(&b, s->v[i], 128);
	}
	*ret_level = ENVELOPE_NEVER;
	if (ret_rule != NULL) {
		*ret_rule = rule_buf;
	}
}

static bool
argv_admitted(const struct set *s, const json_t *argv)
{
	size_t i, k;

	for (i = 0; i < s->n; i++) {
		const struct argv_prefix *p = s->v[i];

		if (p->n > json_array_size(argv)) {
			continue;
		}
		for (k = 0; k < p->n; k++) {
			if (strcmp(json_string_value(json_array_get(argv, k)), p->v[k]) != 0) {
				break;
			}
		}
		if (k == p->n) {
			return true;
		}
	}
	return false;
}

int
envelope_check(const struct envelope *e, const char *tool, const json_t *args,
    enum envelope_level *ret_level, const char **ret_rule)
{
	const struct tool_def *d;
	const struct tool_env *t;
	size_t idx, i;

	if (e == NULL || tool == NULL || ret_level == NULL) {
		return -EINVAL;
	}
	d = tool_find(tool, &idx);
	if (d == NULL) {
		refuse(tool, "unknown tool", ret_level, ret_rule);
		return 0;
	}
	t = &e->t[idx];
	if (t->level == ENVELOPE_NEVER) {
		refuse(tool, "never in this envelope", ret_level, ret_rule);
		return 0;
	}
	if ((d->bounds & BOUND_PATHS) != 0) {
		const json_t *p = json_object_get(args, "path");
		const char *path = json_string_value(p);

		/* The proxy resolved the path already; refuse any other form
		 * anyway, so that a bug there cannot slip past a prefix. */
		if (path == NULL || !path_ok(path, json_string_length(p))) {
			refuse(tool, "path is not an absolute path in normal form", ret_level,
			    ret_rule);
			return 0;
		}
		for (i = 0; i < t->paths.n; i++) {
			if (path_admits(t->paths.v[i], path)) {
				break;
			}
		}
		if (i == t->paths.n) {
			refuse_path(tool, path, &t->paths, ret_level, ret_rule);
			return 0;
		}
	}
	if ((d->bounds & BOUND_EXEC) != 0) {
		const json_t *argv = json_object_get(args, "argv"), *a;

		if (!json_is_array(argv) || json_array_size(argv) == 0) {
			refuse(tool, "argv not allowed", ret_level, ret_rule);
			return 0;
		}
		json_array_foreach(argv, i, a) {
			if (!json_is_string(a) ||
			    strlen(json_string_value(a)) != json_string_length(a)) {
				refuse(tool, "argv not allowed", ret_level, ret_rule);
				return 0;
			}
		}
		if (!argv_admitted(&t->argv, argv)) {
			refuse(tool, "argv not allowed", ret_level, ret_rule);
			return 0;
		}
	}
	*ret_level = t->level;
	if (ret_rule != NULL) {
		*ret_rule = NULL;
	}
	return 0;
}

int
envelope_charge(struct envelope *e, const char *tool)
{
	size_t idx;

	if (e == NULL || tool == NULL) {
		return -EINVAL;
	}
	if (tool_find(tool, &idx) == NULL || e->t[idx].level == ENVELOPE_NEVER) {
		return -ENOENT;
	}
	if (e->t[idx].budget == ENV_UNLIMITED) {
		return 0;
	}
	if (e->t[idx].budget == 0) {
		return -EDQUOT;
	}
	e->t[idx].budget--;
	return 0;
}

int
envelope_budget(const struct envelope *e, const char *tool, uint64_t *ret_left)
{
	size_t idx;

	if (e == NULL || tool == NULL || ret_left == NULL) {
		return -EINVAL;
	}
	if (tool_find(tool, &idx) == NULL || e->t[idx].level == ENVELOPE_NEVER) {
		return -ENOENT;
	}
	*ret_left = e->t[idx].budget;
	return 0;
}

int
envelope_limits(const struct envelope *e, const char *tool, uint32_t *ret_timeout_ms,
    size_t *ret_max_output)
{
	size_t idx;

	if (e == NULL || tool == NULL || ret_timeout_ms == NULL || ret_max_output == NULL) {
		return -EINVAL;
	}
	if (tool_find(tool, &idx) == NULL || e->t[idx].level == ENVELOPE_NEVER) {
		return -ENOENT;
	}
	if ((tool_defs[idx].bounds & BOUND_EXEC) != 0) {
		*ret_timeout_ms = e->t[idx].timeout_ms;
		*ret_max_output = e->t[idx].max_output;
	} else {
		*ret_timeout_ms = 0;
		*ret_max_output = 0;
	}
	return 0;
}
