/*
 * test_rate_headers — pacing by a platform's rate headers (docs/design.md, "Talking to
 * platforms"): X-RateLimit-Reset in epoch seconds (Workelo), X-Rate-Limit-Reset in seconds
 * left (Teamtailor), and the rate that spends what is left of a window until it ends.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>

#include "throttle.h"

#define T(name) static void name(void **state __attribute__((unused)))

#define NOW 1796618000.0

T(reset_epoch_seconds_is_time_left)
{
	assert_int_equal(header_reset_ms(1796618060, true, NOW), 60000);
	assert_int_equal(header_reset_ms(1796618000, true, NOW + 0.25), 0);   /* past: now */
}

T(reset_seconds_left)
{
	assert_int_equal(header_reset_ms(10, false, NOW), 10000);
	assert_int_equal(header_reset_ms(0, false, NOW), 0);
}

T(reset_an_epoch_in_the_seconds_family_is_read_as_epoch)
{
	assert_int_equal(header_reset_ms(1796618030, false, NOW), 30000);
}

T(reset_unusable)
{
	assert_int_equal(header_reset_ms(-1, true, NOW), -1);
	assert_int_equal(header_reset_ms(400LL * 86400, false, NOW), -1);   /* more than a year: garbage */
}

T(rate_spends_what_is_left_until_the_end)
{
	/* 1000 per hour, 500 left, 30 minutes to go: 500 / 1800.5 s */
	assert_true(fabs(header_rate(500, 1800000, 0) - 500.0 / 1800.5) < 1e-9);
	/* another client spent 900 of 1000 with 60 s left: 100 / 60.5 s */
	assert_true(fabs(header_rate(100, 60000, 0) - 100.0 / 60.5) < 1e-9);
}

T(rate_counts_requests_in_flight)
{
	assert_true(fabs(header_rate(10, 9500, 4) - 6.0 / 10.0) < 1e-9);
}

T(rate_nothing_left_is_zero)
{
	assert_true(header_rate(0, 5000, 0) == 0);
	assert_true(header_rate(3, 5000, 3) == 0);
	assert_true(header_rate(3, 5000, 8) == 0);
}

T(rate_at_the_reset_is_the_remaining_per_half_second)
{
	assert_true(fabs(header_rate(50, 0, 0) - 100.0) < 1e-9);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(reset_epoch_seconds_is_time_left),
		cmocka_unit_test(reset_seconds_left),
		cmocka_unit_test(reset_an_epoch_in_the_seconds_family_is_read_as_epoch),
		cmocka_unit_test(reset_unusable),
		cmocka_unit_test(rate_spends_what_is_left_until_the_end),
		cmocka_unit_test(rate_counts_requests_in_flight),
		cmocka_unit_test(rate_nothing_left_is_zero),
		cmocka_unit_test(rate_at_the_reset_is_the_remaining_per_half_second),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
