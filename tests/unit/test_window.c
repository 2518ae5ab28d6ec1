/*
 * test_window — the end of a run window (`run --until`, config run_until; schedule.h
 * window_end): the next HH:MM in the local time zone, or a duration from now.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "schedule.h"

#define T(name) static void name(void **state __attribute__((unused)))

/* 2026-12-07 22:00:00 UTC */
#define NOW ((time_t)1796680800)

static int setup_utc(void **state)
{
	(void)state;
	setenv("TZ", "UTC", 1);
	tzset();
	return 0;
}

T(hhmm_later_today)
{
	double end;
	char err[200];
	assert_true(window_end("23:30", NOW, &end, err, sizeof err));
	assert_true(end == (double)(NOW + 5400));
}

T(hhmm_earlier_is_tomorrow)
{
	double end;
	char err[200];
	assert_true(window_end("06:00", NOW, &end, err, sizeof err));
	assert_true(end == (double)(NOW + 8 * 3600));
}

T(duration_from_now)
{
	double end;
	char err[200];
	assert_true(window_end("+4h", NOW, &end, err, sizeof err));
	assert_true(end == (double)(NOW + 4 * 3600));
	assert_true(window_end("+90m", NOW, &end, err, sizeof err));
	assert_true(end == (double)(NOW + 5400));
	assert_true(window_end("+13s", NOW, &end, err, sizeof err));
	assert_true(end == (double)(NOW + 13));
}

T(malformed_refused_with_a_reason)
{
	double end;
	char err[200];
	const char *bad[] = {"6:00", "25:00", "06:61", "tomorrow", "+", "+0s", "+-1h", "", "0 6 * * *"};
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		err[0] = '\0';
		assert_false(window_end(bad[i], NOW, &end, err, sizeof err));
		assert_true(strlen(err) > 0);
	}
	assert_false(window_end(NULL, NOW, &end, err, sizeof err));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(hhmm_later_today),
		cmocka_unit_test(hhmm_earlier_is_tomorrow),
		cmocka_unit_test(duration_from_now),
		cmocka_unit_test(malformed_refused_with_a_reason),
	};
	return cmocka_run_group_tests(tests, setup_utc, NULL);
}
