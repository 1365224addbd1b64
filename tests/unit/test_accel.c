/* Unit tests for vmhost/accel.c: the accelerator decision, the mode
 * parser, and the KVM probe's bounds (it must answer within its deadline
 * whatever the device does: absent, not KVM, or a KVM that runs guests
 * too slowly to use). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../vmhost/accel.h"

static void
test_parse_mode(void **state)
{
	enum accel_mode m = (enum accel_mode)99;

	(void)state;
	assert_int_equal(accel_parse_mode("auto", &m), 0);
	assert_int_equal(m, ACCEL_MODE_AUTO);
	assert_int_equal(accel_parse_mode("kvm", &m), 0);
	assert_int_equal(m, ACCEL_MODE_KVM);
	assert_int_equal(accel_parse_mode("tcg", &m), 0);
	assert_int_equal(m, ACCEL_MODE_TCG);
	m = (enum accel_mode)99;
	assert_int_equal(accel_parse_mode("KVM", &m), -EINVAL);
	assert_int_equal(accel_parse_mode("kvm ", &m), -EINVAL);
	assert_int_equal(accel_parse_mode("", &m), -EINVAL);
	assert_int_equal(accel_parse_mode("hvf", &m), -EINVAL);
	assert_int_equal(accel_parse_mode(NULL, &m), -EINVAL);
	assert_int_equal(m, 99);
}

static void
test_decide_forced(void **state)
{
	struct accel_probe bad = { ACCEL_PROBE_TIMEOUT, 0, 2000 };
	struct accel_probe ok = { ACCEL_PROBE_OK, 0, 20 };
	enum accel_kind k;
	const char *why = NULL;

	(void)state;
	/* A forced mode wins over any probe, and needs none. */
	assert_int_equal(accel_decide(ACCEL_MODE_KVM, &bad, &k, &why), 0);
	assert_int_equal(k, ACCEL_KVM);
	assert_string_equal(why, "forced by --accel kvm");
	assert_int_equal(accel_decide(ACCEL_MODE_TCG, &ok, &k, &why), 0);
	assert_int_equal(k, ACCEL_TCG);
	assert_string_equal(why, "forced by --accel tcg");
	assert_int_equal(accel_decide(ACCEL_MODE_KVM, NULL, &k, NULL), 0);
	assert_int_equal(k, ACCEL_KVM);
}

static void
test_decide_auto(void **state)
{
	enum accel_probe_status s;
	enum accel_kind k;
	const char *why;

	(void)state;
	/* Only a probe that ran its guest to completion picks KVM. */
	for (s = ACCEL_PROBE_OK; s <= ACCEL_PROBE_ERROR; s++) {
		struct accel_probe p = { s, 0, 1 };

		why = NULL;
		assert_int_equal(accel_decide(ACCEL_MODE_AUTO, &p, &k, &why), 0);
		assert_int_equal(k, s == ACCEL_PROBE_OK ? ACCEL_KVM : ACCEL_TCG);
		assert_non_null(why);
		assert_true(strlen(why) > 10);
		assert_string_equal(why, accel_probe_describe(s));
	}
}

static void
test_decide_rejects(void **state)
{
	struct accel_probe ok = { ACCEL_PROBE_OK, 0, 1 };
	enum accel_kind k = (enum accel_kind)77;
	const char *why = "untouched";

	(void)state;
	assert_int_equal(accel_decide(ACCEL_MODE_AUTO, NULL, &k, &why), -EINVAL);
	assert_int_equal(accel_decide((enum accel_mode)42, &ok, &k, &why), -EINVAL);
	assert_int_equal(k, 77);
	assert_string_equal(why, "untouched");
}

static void
test_names(void **state)
{
	(void)state;
	assert_string_equal(accel_name(ACCEL_KVM), "kvm");
	assert_string_equal(accel_name(ACCEL_TCG), "tcg");
	assert_string_equal(accel_name((enum accel_kind)0), "unknown");
	assert_string_equal(accel_probe_describe((enum accel_probe_status)1000),
	    "unknown probe result");
}

static void
test_probe_no_device(void **state)
{
	struct accel_probe p;

	(void)state;
	assert_int_equal(accel_probe_kvm("/nonexistent/kvm", 2000, &p), 0);
	assert_int_equal(p.status, ACCEL_PROBE_NO_DEVICE);
	assert_int_equal(p.err, ENOENT);
	assert_true(p.elapsed_ms < 1000);
}

/* Something that opens but is not KVM. */
static void
test_probe_not_kvm(void **state)
{
	struct accel_probe p;

	(void)state;
	assert_int_equal(accel_probe_kvm("/dev/null", 2000, &p), 0);
	assert_int_equal(p.status, ACCEL_PROBE_BAD_API);
	assert_true(p.elapsed_ms < 1000);
}

static void
test_probe_symlink_refused(void **state)
{
	char dir[] = "/tmp/test_accel.XXXXXX", link[64];
	struct accel_probe p;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(link, sizeof(link), "%s/kvm", dir);
	assert_int_equal(symlink("/dev/null", link), 0);
	assert_int_equal(accel_probe_kvm(link, 2000, &p), 0);
	assert_int_equal(p.status, ACCEL_PROBE_NO_ACCESS);
	assert_int_equal(p.err, ELOOP);
	unlink(link);
	rmdir(dir);
}

static void
test_probe_bad_args(void **state)
{
	struct accel_probe p = { ACCEL_PROBE_NOT_RUN, 0, 0 };

	(void)state;
	assert_int_equal(accel_probe_kvm(NULL, 2000, &p), -EINVAL);
	assert_int_equal(accel_probe_kvm(ACCEL_KVM_DEVICE, 0, &p), -EINVAL);
	assert_int_equal(accel_probe_kvm(ACCEL_KVM_DEVICE, 60001, &p), -EINVAL);
	assert_int_equal(accel_probe_kvm(ACCEL_KVM_DEVICE, 2000, NULL), -EINVAL);
	assert_int_equal(p.status, ACCEL_PROBE_NOT_RUN);
}

/* Whatever the real /dev/kvm does, a 100 ms deadline holds (plus the
 * bounded reap). On a host with working KVM the guest may even finish. */
static void
test_probe_deadline_real_device(void **state)
{
	struct accel_probe p;
	struct stat st;

	(void)state;
	if (stat(ACCEL_KVM_DEVICE, &st) != 0) {
		skip();
	}
	assert_int_equal(accel_probe_kvm(ACCEL_KVM_DEVICE, 100, &p), 0);
	assert_true(p.elapsed_ms < 100 + 700);
	assert_true(p.status == ACCEL_PROBE_OK || p.status == ACCEL_PROBE_TIMEOUT ||
	    p.status == ACCEL_PROBE_NO_ACCESS || p.status == ACCEL_PROBE_NO_VM ||
	    p.status == ACCEL_PROBE_RUN_FAILED);
	print_message("/dev/kvm with a 100 ms deadline: %s (%u ms)\n",
	    accel_probe_describe(p.status), p.elapsed_ms);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_mode),
		cmocka_unit_test(test_decide_forced),
		cmocka_unit_test(test_decide_auto),
		cmocka_unit_test(test_decide_rejects),
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_probe_no_device),
		cmocka_unit_test(test_probe_not_kvm),
		cmocka_unit_test(test_probe_symlink_refused),
		cmocka_unit_test(test_probe_bad_args),
		cmocka_unit_test(test_probe_deadline_real_device),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
