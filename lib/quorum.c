#include "quorum.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cjson.h"
#include "parse.h"
#include "text.h"

static const char *const quorum_keys[] = { "default", "ops", NULL };

/* A quorum at field (and sub, if given): an integer in 1..QUORUM_MAX. */
static int
get_quorum(const json_t *v, const char *field, const char *sub, unsigned *ret, char *err,
    size_t errsz)
{
	json_int_t i;

	if (!json_is_integer(v) || (i = json_integer_value(v)) < 1 || i > QUORUM_MAX) {
		text_printf(err, errsz, "field '%s.%s' must be an integer in 1..%d", field, sub,
		    QUORUM_MAX);
		return json_is_integer(v) ? -ERANGE : -EINVAL;
	}
	*ret = (unsigned)i;
	return 0;
}

int
quorum_parse(const json_t *v, const char *field, struct quorum_op *ops, size_t max_ops,
    unsigned *ret_default, size_t *ret_n_ops, char *err, size_t errsz)
{
	const char *bad = NULL, *op;
	const json_t *o, *q;
	unsigned def = 0;
	size_t n = 0;
	int r;

	if (!json_is_object(v)) {
		text_printf(err, errsz, "field '%s' must be an object", field);
		return -EINVAL;
	}
	if (cjson_only_keys(v, quorum_keys, &bad) < 0) {
		text_printf(err, errsz, "unknown field '%s.%s'", field, bad != NULL ? bad : "?");
		return -EINVAL;
	}
	if ((q = json_object_get(v, "default")) != NULL &&
	    (r = get_quorum(q, field, "default", &def, err, errsz)) < 0) {
		return r;
	}
	o = json_object_get(v, "ops");
	if (o != NULL && !json_is_object(o)) {
		text_printf(err, errsz, "field '%s.ops' must be an object mapping operations to "
		    "quorums", field);
		return -EINVAL;
	}
	if (o != NULL && json_object_size(o) > max_ops) {
		text_printf(err, errsz, "field '%s.ops' lists more than %zu operations", field,
		    max_ops);
		return -E2BIG;
	}
	if (o != NULL) {
		json_object_foreach((json_t *)o, op, q) {
			char sub[TOKEN_OP_MAX + 8];

			if (parse_op(op, TOKEN_OP_MAX) < 0) {
				text_printf(err, errsz, "field '%s.ops': '%.128s' is not an operation "
				    "name", field, op);
				return -EINVAL;
			}
			(void)snprintf(sub, sizeof(sub), "ops.%s", op);
			if ((r = get_quorum(q, field, sub, &ops[n].n, err, errsz)) < 0) {
				return r;
			}
			memcpy(ops[n].op, op, strlen(op) + 1);
			n++;
		}
	}
	if (def != 0) {
		*ret_default = def;
	}
	*ret_n_ops = n;
	return 0;
}

unsigned
quorum_for(const struct quorum_op *ops, size_t n_ops, unsigned def, const char *op)
{
	size_t i;

	if (op == NULL) {
		return def;
	}
	for (i = 0; i < n_ops; i++) {
		if (strcmp(ops[i].op, op) == 0) {
			return ops[i].n;
		}
	}
	return def;
}
