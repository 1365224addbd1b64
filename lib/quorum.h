/* quorum: the section {"default": N, "ops": {OP: N, ...}} that says how
 * many distinct people approve an operation (docs/approvals.md). The
 * approver's settings and attestd's configuration both carry one. */
#ifndef WARRANT_QUORUM_H
#define WARRANT_QUORUM_H

#include <jansson.h>
#include <stddef.h>

#include "token.h"

/* A quorum never asks for more people than a token can name. */
#define QUORUM_MAX TOKEN_MAX_APPROVERS

struct quorum_op {
	char op[TOKEN_OP_MAX + 1];
	unsigned n;                     /* 1..QUORUM_MAX */
};

/* Parse v, the section found at field (e.g. "quorum"; error messages name
 * "field.default", "field.ops.OP"). Strict: only "default" and "ops", each
 * optional; quorums are integers in 1..QUORUM_MAX; ops at most max_ops
 * entries keyed by operation names. On success *ret_default (only when
 * "default" is given), ops[0..*ret_n_ops) and *ret_n_ops. On error
 * -EINVAL, -ERANGE (a quorum out of range) or -E2BIG (too many ops), err
 * naming the field, *ret_default and *ret_n_ops untouched and ops[] in an
 * unspecified state. */
int quorum_parse(const json_t *v, const char *field, struct quorum_op *ops, size_t max_ops,
    unsigned *ret_default, size_t *ret_n_ops, char *err, size_t errsz);

/* op's own quorum among ops[0..n_ops), else def (also for a NULL op). */
unsigned quorum_for(const struct quorum_op *ops, size_t n_ops, unsigned def, const char *op);

#endif
