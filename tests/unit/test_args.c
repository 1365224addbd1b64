/* Unit tests for lib/args.c: the shared command-line parser, with the
 * refusals it must keep. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "args.h"

enum { O_AUD, O_VM, O_FG };

/* The error as the programs print it. */
static void
say(const struct args_error *e, char *buf, size_t len)
{
	int n = snprintf(buf, len, "%s'%.*s'%s", e->pre, e->arg_len, e->arg, e->post);

	assert_true(n >= 0 && (size_t)n < len);
}

static int
run(char **argv, int argc, struct args_opt *opts, size_t max_pos, unsigned flags,
    struct args *a, char *msg, size_t len)
{
	struct args_error e;
	int r;

	r = args_parse(argc, argv, opts, max_pos, flags, a, &e);
	if (r != 0) {
		say(&e, msg, len);
	}
	return r;
}

static void
test_positional_and_values(void **state)
{
	struct args_opt opts[] = { ARGS_OPT("aud"), ARGS_OPT("vm"), ARGS_FLAG("fg"), ARGS_END };
	char *argv[] = { "one", "--aud=a", "--vm", "v", "--fg", "two", "-h" };
	struct args a;
	char msg[128];

	(void)state;
	assert_int_equal(run(argv, 7, opts, 2, 0, &a, msg, sizeof(msg)), 0);
	assert_int_equal(a.n_pos, 2);
	assert_string_equal(a.pos[0], "one");
	assert_string_equal(a.pos[1], "two");
	assert_true(a.help);
	assert_string_equal(opts[O_AUD].value, "a");
	assert_string_equal(opts[O_VM].value, "v");
	assert_true(opts[O_VM].set);
	assert_true(opts[O_FG].set);
	assert_null(opts[O_FG].value);
}

static void
test_double_dash(void **state)
{
	struct args_opt opts[] = { ARGS_OPT("aud"), ARGS_END };
	char *argv[] = { "--", "--aud", "--help" };
	struct args a;
	char msg[128];

	(void)state;
	assert_int_equal(run(argv, 3, opts, 4, 0, &a, msg, sizeof(msg)), 0);
	assert_int_equal(a.n_pos, 2);
	assert_string_equal(a.pos[0], "--aud");
	assert_string_equal(a.pos[1], "--help");
	assert_false(a.help);
	assert_false(opts[O_AUD].set);
}

static void
test_dash_is_positional(void **state)
{
	struct args_opt opts[] = { ARGS_END };
	char *argv[] = { "-" };
	struct args a;
	char msg[128];

	(void)state;
	assert_int_equal(run(argv, 1, opts, 1, 0, &a, msg, sizeof(msg)), 0);
	assert_int_equal(a.n_pos, 1);
	assert_string_equal(a.pos[0], "-");
}

static void
test_value_may_start_with_dash(void **state)
{
	struct args_opt opts[] = { ARGS_OPT("aud"), ARGS_END };
	char *argv[] = { "--aud", "--x" };
	struct args a;
	char msg[128];

	(void)state;
	assert_int_equal(run(argv, 2, opts, 0, 0, &a, msg, sizeof(msg)), 0);
	assert_string_equal(opts[O_AUD].value, "--x");
}

static void
test_repeated_refused(void **state)
{
	struct args_opt o1[] = { ARGS_OPT("aud"), ARGS_END };
	struct args_opt o2[] = { ARGS_OPT("aud"), ARGS_END };
	struct args_opt o3[] = { ARGS_OPT("aud"), ARGS_END };
	struct args_opt o4[] = { ARGS_OPT("aud"), ARGS_FLAG("fg"), ARGS_END };
	char *argv[] = { "--aud", "x", "--aud=y" };
	char *tail[] = { "--aud", "x", "--aud" };
	char *flag[] = { "--fg", "--fg" };
	struct args a;
	char msg[128];

	(void)state;
	/* attestctl: named as given, after reading the value. */
	assert_int_equal(run(argv, 3, o1, 0, 0, &a, msg, sizeof(msg)), -EINVAL);
	assert_string_equal(msg, "option '--aud=y' given twice");
	assert_int_equal(run(tail, 3, o3, 0, 0, &a, msg, sizeof(msg)), -EINVAL);
	assert_string_equal(msg, "option '--aud' needs a value");
	/* vmhost: by name, before the value. */
	assert_int_equal(run(argv, 3, o2, 0, ARGS_NONEMPTY | ARGS_DUP_BY_NAME, &a, msg,
	    sizeof(msg)), -EINVAL);
	assert_string_equal(msg, "option '--aud' given twice");
	assert_int_equal(run(flag, 2, o4, 0, ARGS_NONEMPTY | ARGS_DUP_BY_NAME, &a, msg,
	    sizeof(msg)), -EINVAL);
	assert_string_equal(msg, "option '--fg' given twice");
}

static void
test_unknown_refused(void **state)
{
	struct args_opt opts[] = { ARGS_OPT("aud"), ARGS_END };
	char *a1[] = { "--au" }, *a2[] = { "--audx=1" }, *a3[] = { "-x" }, *a4[] = { "---aud" };
	struct args a;
	char msg[128];

	(void)state;
	assert_int_equal(run(a1, 1, opts, 4, 0, &a, msg, sizeof(msg)), -EINVAL);
	assert_string_equal(msg, "unknown option '--au'");
	assert_int_equal(run(a2, 1, opts, 4, 0, &a, msg, sizeof(msg)), -EINVAL);
	assert_string_equal(msg, "unknown option '--audx=1'");
	assert_int_equal(run(a3, 1, opts, 4, 0, &a, msg, sizeof(msg)), -EINVAL);
	assert_string_equal(msg, "unknown option '-x'");
	assert_int_equal(run(a4, 1, opts, 4, 0, &a, msg, sizeof(msg)), -EINVAL);
	assert_string_equal(msg, "unknown option '---aud'");
}

static void
test_missing_and_empty_value(void **state)
{
	struct args_opt o1[] = { ARGS_OPT("aud"), ARGS_END };
	struct args_opt o2[] = { ARGS_OPT("aud"), ARGS_END };
	struct args_opt o3[] = { ARGS_OPT("aud"), ARGS_END };
	struct args_opt o4[] = { ARGS_FLAG("fg"), ARGS_END };
	char *miss[] = { "--aud" }, *empty[] = { "--aud=" }, *flagv[] = { "--fg=1" };
	struct args a;
	char msg[128];

	(void)state;
	assert_int_equal(run(miss, 1, o1, 0, 0, &a, msg, sizeof(msg)), -EINVAL);
	assert_string_equal(msg, "option '--aud' needs a value");
	/* Empty values: accepted by default, refused with ARGS_NONEMPTY. */
	assert_int_equal(run(empty, 1, o2, 0, 0, &a, msg, sizeof(msg)), 0);
	assert_string_equal(o2[0].value, "");
	assert_int_equal(run(empty, 1, o3, 0, ARGS_NONEMPTY | ARGS_DUP_BY_NAME, &a, msg,
	    sizeof(msg)), -EINVAL);
	assert_string_equal(msg, "option '--aud' needs a non-empty value");
	assert_int_equal(run(flagv, 1, o4, 0, ARGS_NONEMPTY | ARGS_DUP_BY_NAME, &a, msg,
	    sizeof(msg)), -EINVAL);
	assert_string_equal(msg, "option '--fg' takes no value");
}

static void
test_too_many_positionals(void **state)
{
	struct args_opt opts[] = { ARGS_END };
	char *argv[] = { "a", "b", "c" };
	struct args a = { 7, { NULL }, true };
	char msg[128];

	(void)state;
	assert_int_equal(run(argv, 3, opts, 2, 0, &a, msg, sizeof(msg)), -E2BIG);
	assert_string_equal(msg, "too many arguments at 'c'");
	/* Not written on failure. */
	assert_int_equal(a.n_pos, 7);
	assert_int_equal(run(argv, 0, opts, 0, 0, &a, msg, sizeof(msg)), 0);
	assert_int_equal(a.n_pos, 0);
	assert_false(a.help);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_positional_and_values),
		cmocka_unit_test(test_double_dash),
		cmocka_unit_test(test_dash_is_positional),
		cmocka_unit_test(test_value_may_start_with_dash),
		cmocka_unit_test(test_repeated_refused),
		cmocka_unit_test(test_unknown_refused),
		cmocka_unit_test(test_missing_and_empty_value),
		cmocka_unit_test(test_too_many_positionals),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
