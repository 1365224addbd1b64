/* Unit tests for lib/quorum.c: the {"default": N, "ops": {OP: N}} section
 * shared by the approver's settings and attestd's configuration. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "quorum.h"

#define UNTOUCHED 777

struct parsed {
	struct quorum_op ops[4];
	unsigned def;
	size_t n;
	char err[256];
};

/* Parse text at field "quorum" with room for max_ops operations. */
static int
parse(const char *text, size_t max_ops, struct parsed *p)
{
	json_error_t jerr;
	json_t *v = json_loads(text, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &jerr);
	int r;

	assert_non_null(v);
	memset(p, 0, sizeof(*p));
	p->def = 1;
	p->n = UNTOUCHED;
	r = quorum_parse(v, "quorum", p->ops, max_ops, &p->def, &p->n, p->err, sizeof(p->err));
	json_decref(v);
	return r;
}

/* Refused with r and exactly msg; the results are left alone. */
static void
refuse(const char *text, size_t max_ops, int r, const char *msg)
{
	struct parsed p;

	assert_int_equal(parse(text, max_ops, &p), r);
	assert_string_equal(p.err, msg);
	assert_int_equal(p.def, 1);
	assert_int_equal(p.n, UNTOUCHED);
}

static void
test_parse_ok(void **state)
{
	struct parsed p;

	(void)state;
	assert_int_equal(parse("{}", 4, &p), 0);
	assert_int_equal(p.def, 1);     /* absent: the caller's default stays */
	assert_int_equal(p.n, 0);
	assert_int_equal(parse("{\"ops\":{}}", 4, &p), 0);
	assert_int_equal(p.n, 0);
	assert_int_equal(parse("{\"default\":16}", 4, &p), 0);
	assert_int_equal(p.def, 16);
	assert_int_equal(p.n, 0);
	assert_int_equal(parse("{\"default\":2,\"ops\":{\"exec\":3,\"fs/write\":1}}", 4, &p), 0);
	assert_int_equal(p.def, 2);
	assert_int_equal(p.n, 2);
	assert_int_equal(quorum_for(p.ops, p.n, p.def, "exec"), 3);
	assert_int_equal(quorum_for(p.ops, p.n, p.def, "fs/write"), 1);
	assert_int_equal(quorum_for(p.ops, p.n, p.def, "fs"), 2);
	assert_int_equal(quorum_for(p.ops, p.n, p.def, "exec2"), 2);
	assert_int_equal(quorum_for(p.ops, p.n, p.def, ""), 2);
	assert_int_equal(quorum_for(p.ops, p.n, p.def, NULL), 2);
	assert_int_equal(quorum_for(p.ops, 0, 5, "exec"), 5);
	assert_int_equal(quorum_for(NULL, 0, 5, NULL), 5);
	/* Exactly max_ops entries fit. */
	assert_int_equal(parse("{\"ops\":{\"a\":1,\"b\":2}}", 2, &p), 0);
	assert_int_equal(p.n, 2);
	assert_int_equal(quorum_for(p.ops, p.n, p.def, "b"), 2);
}

static void
test_parse_longest_op(void **state)
{
	char text[TOKEN_OP_MAX + 64], op[TOKEN_OP_MAX + 2];
	struct parsed p;

	(void)state;
	memset(op, 'a', TOKEN_OP_MAX);
	op[TOKEN_OP_MAX] = '\0';
	(void)snprintf(text, sizeof(text), "{\"ops\":{\"%s\":7}}", op);
	assert_int_equal(parse(text, 4, &p), 0);
	assert_string_equal(p.ops[0].op, op);
	assert_int_equal(quorum_for(p.ops, p.n, p.def, op), 7);
	/* One more character is not an operation name. */
	op[TOKEN_OP_MAX] = 'a';
	op[TOKEN_OP_MAX + 1] = '\0';
	(void)snprintf(text, sizeof(text), "{\"ops\":{\"%s\":7}}", op);
	assert_int_equal(parse(text, 4, &p), -EINVAL);
	assert_non_null(strstr(p.err, "is not an operation name"));
}

static void
test_parse_shape(void **state)
{
	(void)state;
	refuse("2", 4, -EINVAL, "field 'quorum' must be an object");
	refuse("[]", 4, -EINVAL, "field 'quorum' must be an object");
	refuse("null", 4, -EINVAL, "field 'quorum' must be an object");
	refuse("\"x\"", 4, -EINVAL, "field 'quorum' must be an object");
	refuse("{\"min\":2}", 4, -EINVAL, "unknown field 'quorum.min'");
	refuse("{\"default\":1,\"exec\":2}", 4, -EINVAL, "unknown field 'quorum.exec'");
	refuse("{\"ops\":[]}", 4, -EINVAL,
	    "field 'quorum.ops' must be an object mapping operations to quorums");
	refuse("{\"ops\":null}", 4, -EINVAL,
	    "field 'quorum.ops' must be an object mapping operations to quorums");
	refuse("{\"ops\":{\"a\":1,\"b\":1,\"c\":1}}", 2, -E2BIG,
	    "field 'quorum.ops' lists more than 2 operations");
	refuse("{\"ops\":{\"a\":1}}", 0, -E2BIG, "field 'quorum.ops' lists more than 0 operations");
}

static void
test_parse_numbers(void **state)
{
	static const char msg_def[] = "field 'quorum.default' must be an integer in 1..16";
	static const char msg_op[] = "field 'quorum.ops.exec' must be an integer in 1..16";

	(void)state;
	refuse("{\"default\":0}", 4, -ERANGE, msg_def);
	refuse("{\"default\":17}", 4, -ERANGE, msg_def);
	refuse("{\"default\":-1}", 4, -ERANGE, msg_def);
	refuse("{\"default\":4294967297}", 4, -ERANGE, msg_def);   /* 1 as a 32-bit unsigned */
	refuse("{\"default\":9223372036854775807}", 4, -ERANGE, msg_def);
	refuse("{\"default\":\"2\"}", 4, -EINVAL, msg_def);
	refuse("{\"default\":2.0}", 4, -EINVAL, msg_def);
	refuse("{\"default\":true}", 4, -EINVAL, msg_def);
	refuse("{\"default\":null}", 4, -EINVAL, msg_def);
	refuse("{\"ops\":{\"exec\":0}}", 4, -ERANGE, msg_op);
	refuse("{\"ops\":{\"exec\":17}}", 4, -ERANGE, msg_op);
	refuse("{\"ops\":{\"exec\":\"1\"}}", 4, -EINVAL, msg_op);
	refuse("{\"ops\":{\"exec\":[1]}}", 4, -EINVAL, msg_op);
	/* A later error undoes an earlier good default and op. */
	refuse("{\"default\":3,\"ops\":{\"exec\":0}}", 4, -ERANGE, msg_op);
}

static void
test_parse_op_names(void **state)
{
	static const char *const bad[] = { "", "bad op", "-x", ".x", "a\"b", "caf\xc3\xa9",
		"a\nb", "a%sb", NULL };
	char msg[256];
	size_t i;

	(void)state;
	for (i = 0; bad[i] != NULL; i++) {
		json_t *v = json_pack("{s:{s:i}}", "ops", bad[i], 1);
		struct quorum_op ops[2];
		unsigned def = 1;
		size_t n = UNTOUCHED;
		char err[256] = "";

		assert_non_null(v);
		assert_int_equal(quorum_parse(v, "quorum", ops, 2, &def, &n, err, sizeof(err)),
		    -EINVAL);
		(void)snprintf(msg, sizeof(msg), "field 'quorum.ops': '%s' is not an operation name",
		    bad[i]);
		assert_string_equal(err, msg);
		assert_int_equal(n, UNTOUCHED);
		json_decref(v);
	}
	/* The name in the message is cut at 128 bytes. */
	{
		char op[300], *p;
		json_t *v;
		struct quorum_op ops[2];
		unsigned def = 1;
		size_t n = 0;
		char err[512] = "";

		memset(op, 'b', sizeof(op) - 1);
		op[sizeof(op) - 1] = '\0';
		v = json_pack("{s:{s:i}}", "ops", op, 1);
		assert_non_null(v);
		assert_int_equal(quorum_parse(v, "quorum", ops, 2, &def, &n, err, sizeof(err)),
		    -EINVAL);
		p = strchr(err, '\'');
		p = strchr(p + 1, '\'');
		p = strchr(p + 1, '\'');
		assert_int_equal(strspn(p + 1, "b"), 128);
		json_decref(v);
	}
}

static void
test_parse_field_prefix(void **state)
{
	json_t *v = json_loads("{\"ops\":{\"exec\":99}}", 0, NULL);
	struct quorum_op ops[2];
	unsigned def = 1;
	size_t n = 0;
	char err[256] = "", small[12];

	(void)state;
	assert_non_null(v);
	assert_int_equal(quorum_parse(v, "approvals.quorum", ops, 2, &def, &n, err, sizeof(err)),
	    -ERANGE);
	assert_string_equal(err, "field 'approvals.quorum.ops.exec' must be an integer in 1..16");
	/* A short buffer gets the start of the message; none at all is fine. */
	assert_int_equal(quorum_parse(v, "approvals.quorum", ops, 2, &def, &n, small,
	    sizeof(small)), -ERANGE);
	assert_string_equal(small, "field 'appr");
	assert_int_equal(quorum_parse(v, "approvals.quorum", ops, 2, &def, &n, NULL, 0), -ERANGE);
	json_decref(v);
	v = json_loads("{\"what\":1}", 0, NULL);
	assert_non_null(v);
	assert_int_equal(quorum_parse(v, "approvals.quorum", ops, 2, &def, &n, err, sizeof(err)),
	    -EINVAL);
	assert_string_equal(err, "unknown field 'approvals.quorum.what'");
	json_decref(v);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_ok),
		cmocka_unit_test(test_parse_longest_op),
		cmocka_unit_test(test_parse_shape),
		cmocka_unit_test(test_parse_numbers),
		cmocka_unit_test(test_parse_op_names),
		cmocka_unit_test(test_parse_field_prefix),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
