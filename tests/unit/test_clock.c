/* Unit tests for lib/clock.c: monotonic milliseconds and a sleep that
 * signals do not shorten. Only lower bounds on elapsed time are checked:
 * a loaded machine may always take longer. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <signal.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include "clock.h"

static uint64_t
raw_ms(void)
{
	struct timespec ts;

	assert_int_equal(clock_gettime(CLOCK_MONOTONIC, &ts), 0);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void
test_is_clock_monotonic(void **state)
{
	uint64_t before, t, after;

	(void)state;
	before = raw_ms();
	t = clock_mono_ms();
	after = raw_ms();
	assert_true(before <= t);
	assert_true(t <= after);
}

static void
test_never_goes_back(void **state)
{
	uint64_t prev = clock_mono_ms(), t;
	int i;

	(void)state;
	for (i = 0; i < 100000; i++) {
		t = clock_mono_ms();
		assert_true(t >= prev);
		prev = t;
	}
}

static void
test_sleep_at_least(void **state)
{
	static const uint64_t asks[] = { 1, 5, 30, 1001 };
	uint64_t t0;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(asks) / sizeof(asks[0]); i++) {
		t0 = clock_mono_ms();
		clock_sleep_ms(asks[i]);
		assert_true(clock_mono_ms() - t0 >= asks[i]);
	}
}

static void
test_sleep_zero(void **state)
{
	uint64_t t0 = clock_mono_ms();

	(void)state;
	clock_sleep_ms(0);
	assert_true(clock_mono_ms() >= t0);
}

static volatile sig_atomic_t alarms;

static void
on_alarm(int sig)
{
	(void)sig;
	alarms++;
}

/* Signals every 5 ms without SA_RESTART: each interrupts nanosleep, and
 * the sleep must still last as long as asked. */
static void
test_sleep_survives_signals(void **state)
{
	struct sigaction sa, old;
	struct itimerval it, off;
	uint64_t t0, elapsed;

	(void)state;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_alarm;
	sa.sa_flags = 0;
	(void)sigemptyset(&sa.sa_mask);
	assert_int_equal(sigaction(SIGALRM, &sa, &old), 0);
	memset(&it, 0, sizeof(it));
	it.it_interval.tv_usec = 5000;
	it.it_value.tv_usec = 5000;
	memset(&off, 0, sizeof(off));
	alarms = 0;
	assert_int_equal(setitimer(ITIMER_REAL, &it, NULL), 0);
	t0 = clock_mono_ms();
	clock_sleep_ms(100);
	elapsed = clock_mono_ms() - t0;
	assert_int_equal(setitimer(ITIMER_REAL, &off, NULL), 0);
	assert_int_equal(sigaction(SIGALRM, &old, NULL), 0);
	assert_true(alarms > 0);
	assert_true(elapsed >= 100);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_is_clock_monotonic),
		cmocka_unit_test(test_never_goes_back),
		cmocka_unit_test(test_sleep_at_least),
		cmocka_unit_test(test_sleep_zero),
		cmocka_unit_test(test_sleep_survives_signals),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
