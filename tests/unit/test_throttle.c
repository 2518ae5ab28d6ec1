/*
 * test_throttle — token bucket, full-jitter backoff, Retry-After, rate and duration parsing
 * (hrsync.yaml(5): rate_limit, timeout; docs/design.md: "Talking to platforms"). Times are
 * injected, so every value is exact.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <string.h>

#include "throttle.h"

#define T(name) static void name(void **state __attribute__((unused)))

/* 2015-10-21T07:28:00Z, the example date of RFC 9110. */
#define RFC_DATE "Wed, 21 Oct 2015 07:28:00 GMT"
#define RFC_EPOCH 1445412480.0

/* ---- token bucket ---- */

T(bucket_10_per_s_capacity_is_one)
{
	struct bucket b;
	bucket_init(&b, 10, 1000);
	assert_true(b.capacity == 1.0);
	assert_true(b.tokens == 1.0);
	assert_int_equal(b.last_ms, 1000);
}

T(bucket_100_per_s_has_no_burst)
{
	struct bucket b;
	bucket_init(&b, 100, 0);
	assert_true(b.capacity == 1.0);
}

T(bucket_starts_full_then_empties)
{
	struct bucket b;
	bucket_init(&b, 10, 1000);
	assert_true(bucket_take(&b, 1000));
	assert_false(bucket_take(&b, 1000));
	assert_false(bucket_take(&b, 1000));
}

/* Strict pacing: in any window of one second, at most rate requests (a platform's sliding window). */
T(bucket_never_exceeds_rate_in_any_second)
{
	struct bucket b;
	bucket_init(&b, 50, 0);
	int64_t taken[2000];
	int n = 0;
	/* A loop that polls every 3 ms, sometimes late by up to 40 ms. */
	for (int64_t t = 0; t < 20000 && n < 2000; t += (t % 997 == 0) ? 40 : 3)
		if (bucket_take(&b, t))
			taken[n++] = t;
	for (int i = 0; i < n; i++) {
		int in = 0;
		for (int j = i; j < n && taken[j] < taken[i] + 1000; j++)
			in++;
		assert_true(in <= 50);
	}
	assert_true(n >= 900); /* and close to 50/s over the 20 s */
}

T(bucket_set_rate_keeps_tokens)
{
	struct bucket b;
	bucket_init(&b, 10, 0);
	assert_true(bucket_take(&b, 0));
	bucket_set_rate(&b, 20, 25); /* 25 ms at 10/s earned a quarter token */
	assert_int_equal(bucket_wait_ms(&b, 25), 38); /* 0.75 token at 20/s: 37.5 ms */
}

T(adapt_after_429_slows_to_what_was_accepted)
{
	/* Sending 60/s, the platform took 50 in the last second: 95% of that. */
	assert_true(adapt_after_429(60, 50, 0.1) == 47.5);
	/* Sending 200/s, it took 50: at most halve in one step (the next 429 finishes the job). */
	assert_true(adapt_after_429(200, 50, 0.1) == 100);
	assert_true(adapt_after_429(100, 50, 0.1) == 50);
	/* It took more than the current rate: still slow down, 5%. */
	assert_true(adapt_after_429(40, 50, 0.1) == 38);
	/* Nothing measured yet, or a quiet second: half the current rate; never below the floor. */
	assert_true(adapt_after_429(10, 0, 0.1) == 5);
	assert_true(adapt_after_429(0.1, 0, 0.5) == 0.5);
}

T(adapt_recover_climbs_back_to_the_configured_rate)
{
	assert_true(adapt_recover(50, 200) == 51);      /* 2% up */
	assert_true(adapt_recover(10, 1000) == 15);     /* at least 0.5% of the configured rate */
	assert_true(adapt_recover(199, 200) == 200);    /* never above it */
	double r = 25;
	int s = 0;
	for (; r < 50 && s < 100; s++)
		r = adapt_recover(r, 50);
	assert_in_range(s, 30, 40);                     /* half to full in about 35 quiet seconds */
}

T(bucket_wait_is_zero_when_full)
{
	struct bucket b;
	bucket_init(&b, 10, 1000);
	assert_int_equal(bucket_wait_ms(&b, 1000), 0);
}

T(bucket_wait_after_take_is_100ms_at_10_per_s)
{
	struct bucket b;
	bucket_init(&b, 10, 1000);
	assert_true(bucket_take(&b, 1000));
	assert_int_equal(bucket_wait_ms(&b, 1000), 100);
}

T(bucket_wait_halves_after_50ms)
{
	struct bucket b;
	bucket_init(&b, 10, 1000);
	assert_true(bucket_take(&b, 1000));
	assert_int_equal(bucket_wait_ms(&b, 1050), 50);
	assert_false(bucket_take(&b, 1050));
	assert_int_equal(bucket_wait_ms(&b, 1075), 25);
}

T(bucket_wait_one_ms_before_the_token)
{
	struct bucket b;
	bucket_init(&b, 10, 1000);
	assert_true(bucket_take(&b, 1000));
	assert_false(bucket_take(&b, 1099));
	assert_int_equal(bucket_wait_ms(&b, 1099), 1);
}

T(bucket_token_available_exactly_after_wait)
{
	struct bucket b;
	bucket_init(&b, 10, 1000);
	assert_true(bucket_take(&b, 1000));
	int64_t w = bucket_wait_ms(&b, 1000);
	assert_false(bucket_take(&b, 1000 + w - 1));
	assert_true(bucket_take(&b, 1000 + w));
}

T(bucket_wait_rounds_up)
{
	/* 3/s: a token every 333.33 ms, so the wait is 334 (never early) */
	struct bucket b;
	bucket_init(&b, 3, 0);
	assert_true(bucket_take(&b, 0));
	assert_int_equal(bucket_wait_ms(&b, 0), 334);
	assert_false(bucket_take(&b, 333));
	assert_true(bucket_take(&b, 334));
}

T(bucket_idle_does_not_exceed_capacity)
{
	struct bucket b;
	bucket_init(&b, 10, 0);
	assert_true(bucket_take(&b, 0));
	/* an hour idle: still only one token (capacity 1) */
	assert_true(bucket_take(&b, 3600 * 1000));
	assert_false(bucket_take(&b, 3600 * 1000));
}

T(bucket_steady_rate_over_one_second)
{
	struct bucket b;
	bucket_init(&b, 10, 0);
	int taken = 0;
	for (int64_t t = 0; t <= 1000; t++)
		while (bucket_take(&b, t))
			taken++;
	/* the initial token plus one every 100 ms */
	assert_int_equal(taken, 11);
}

T(bucket_clock_going_back_is_harmless)
{
	struct bucket b;
	bucket_init(&b, 10, 1000);
	assert_true(bucket_take(&b, 1000));
	assert_false(bucket_take(&b, 500));
	assert_int_equal(bucket_wait_ms(&b, 500), 100);
}

T(bucket_unlimited_rate_zero)
{
	struct bucket b;
	bucket_init(&b, 0, 0);
	for (int i = 0; i < 1000; i++)
		assert_true(bucket_take(&b, 0));
	assert_int_equal(bucket_wait_ms(&b, 0), 0);
}

T(bucket_unlimited_rate_negative)
{
	struct bucket b;
	bucket_init(&b, -1, 0);
	for (int i = 0; i < 100; i++)
		assert_true(bucket_take(&b, 0));
	assert_int_equal(bucket_wait_ms(&b, 0), 0);
}

T(bucket_slow_rate_one_per_minute)
{
	struct bucket b;
	bucket_init(&b, 1.0 / 60.0, 0);
	assert_true(bucket_take(&b, 0));
	int64_t w = bucket_wait_ms(&b, 0);
	assert_true(w >= 59999 && w <= 60001);
	assert_true(bucket_take(&b, w));
}

/* ---- backoff ---- */

T(backoff_attempt_0_is_base)
{
	assert_int_equal(backoff_ms(0, 1000, 60000, 0.0), 1000);
	assert_int_equal(backoff_ms(0, 1000, 60000, 0.999), 1000);
}

T(backoff_rnd_0_is_base_for_every_attempt)
{
	for (int a = 0; a <= 10; a++)
		assert_int_equal(backoff_ms(a, 1000, 60000, 0.0), 1000);
}

T(backoff_bounds_attempts_0_to_10)
{
	for (int a = 0; a <= 10; a++) {
		int64_t ceiling = 1000LL << a;
		if (ceiling > 60000)
			ceiling = 60000;
		for (double r = 0.0; r < 1.0; r += 0.0625) {
			int64_t v = backoff_ms(a, 1000, 60000, r);
			assert_true(v >= 1000);
			assert_true(v <= ceiling);
		}
		int64_t hi = backoff_ms(a, 1000, 60000, 0.999);
		assert_true(hi <= ceiling);
		assert_true(hi >= 1000 + (int64_t)(0.99 * (double)(ceiling - 1000)));
	}
}

T(backoff_exact_values)
{
	/* attempt 1: [1000, 2000]; 0.5 -> 1500 */
	assert_int_equal(backoff_ms(1, 1000, 60000, 0.5), 1500);
	/* attempt 3: [1000, 8000]; 0.999 -> 1000 + 6993 */
	assert_int_equal(backoff_ms(3, 1000, 60000, 0.999), 7993);
	/* attempt 10: capped at 60000; 0.999 -> 1000 + 58941 */
	assert_int_equal(backoff_ms(10, 1000, 60000, 0.999), 59941);
}

T(backoff_grows_with_attempt)
{
	int64_t prev = 0;
	for (int a = 0; a <= 6; a++) {
		int64_t v = backoff_ms(a, 1000, 1000000, 0.999);
		assert_true(v >= prev);
		prev = v;
	}
}

T(backoff_cap_holds_for_huge_attempts)
{
	assert_true(backoff_ms(40, 1000, 30000, 0.999) <= 30000);
	assert_true(backoff_ms(1000, 1000, 30000, 0.999) <= 30000);
	assert_true(backoff_ms(62, 1000, 30000, 0.5) >= 1000);
}

T(backoff_negative_attempt_is_attempt_0)
{
	assert_int_equal(backoff_ms(-3, 1000, 60000, 0.999), 1000);
}

T(backoff_cap_below_base_gives_base)
{
	assert_int_equal(backoff_ms(5, 1000, 500, 0.999), 1000);
	assert_int_equal(backoff_ms(5, 1000, 500, 0.0), 1000);
}

/* ---- Retry-After ---- */

T(retry_after_delta_seconds)
{
	assert_int_equal(retry_after_ms("120", 0), 120000);
	assert_int_equal(retry_after_ms("0", 0), 0);
	assert_int_equal(retry_after_ms("1", 1e9), 1000);
}

T(retry_after_delta_with_spaces_and_crlf)
{
	assert_int_equal(retry_after_ms("  30", 0), 30000);
	assert_int_equal(retry_after_ms("30 \r\n", 0), 30000);
}

T(retry_after_http_date_in_future)
{
	assert_int_equal(retry_after_ms(RFC_DATE, RFC_EPOCH - 120), 120000);
	assert_int_equal(retry_after_ms(RFC_DATE, RFC_EPOCH - 1), 1000);
}

T(retry_after_http_date_fraction_of_now)
{
	assert_int_equal(retry_after_ms(RFC_DATE, RFC_EPOCH - 2.5), 2500);
}

T(retry_after_http_date_now_or_past_is_zero)
{
	assert_int_equal(retry_after_ms(RFC_DATE, RFC_EPOCH), 0);
	assert_int_equal(retry_after_ms(RFC_DATE, RFC_EPOCH + 3600), 0);
}

T(retry_after_http_date_more_than_a_day_is_unusable)
{
	assert_int_equal(retry_after_ms(RFC_DATE, RFC_EPOCH - 2 * 86400), -1);
}

T(retry_after_garbage_is_minus_1)
{
	assert_int_equal(retry_after_ms("soon", 0), -1);
	assert_int_equal(retry_after_ms("", 0), -1);
	assert_int_equal(retry_after_ms("120abc", 0), -1);
	assert_int_equal(retry_after_ms("Wed, 32 Oct 2015 07:28:00 GMT", RFC_EPOCH), -1);
	assert_int_equal(retry_after_ms(NULL, 0), -1);
}

T(retry_after_negative_is_minus_1)
{
	assert_int_equal(retry_after_ms("-5", 0), -1);
}

T(retry_after_huge_is_minus_1)
{
	assert_int_equal(retry_after_ms("86400", 0), -1);
	assert_int_equal(retry_after_ms("99999999999", 0), -1);
	assert_int_equal(retry_after_ms("1e300", 0), -1);
}

T(retry_after_inf_and_nan_are_minus_1)
{
	assert_int_equal(retry_after_ms("inf", 0), -1);
	assert_int_equal(retry_after_ms("nan", 0), -1);
}

/* ---- parse_rate ---- */

static void rate_is(const char *s, double want)
{
	double r = -1;
	if (!parse_rate(s, &r))
		fail_msg("parse_rate(\"%s\") refused", s);
	if (fabs(r - want) > 1e-12)
		fail_msg("parse_rate(\"%s\") = %g, want %g", s, r, want);
}

static void rate_bad(const char *s)
{
	double r = 12345;
	if (parse_rate(s, &r))
		fail_msg("parse_rate(\"%s\") accepted (%g)", s, r);
}

T(rate_per_minute)
{
	rate_is("60/min", 1.0);
	rate_is("300/min", 5.0);
	rate_is("30/m", 0.5);
}

T(rate_per_second)
{
	rate_is("5/s", 5.0);
	rate_is("2.5/s", 2.5);
}

T(rate_per_hour)
{
	rate_is("1000/h", 1000.0 / 3600.0);
	rate_is("3600/h", 1.0);
}

T(rate_malformed)
{
	rate_bad("");
	rate_bad("60");
	rate_bad("60/");
	rate_bad("/s");
	rate_bad("abc/s");
	rate_bad("60/day");
	rate_bad("60/ min");
	rate_bad("60 /min");
	rate_bad("60/min ");
	rate_bad("60/mins");
}

T(rate_zero_or_negative_refused)
{
	rate_bad("0/s");
	rate_bad("-5/s");
}

T(rate_not_a_number_refused)
{
	/* NaN would pass "n <= 0" and give the bucket a NaN rate: it never yields a token. */
	rate_bad("nan/s");
	rate_bad("inf/s");
}

/* ---- parse_duration_ms ---- */

static void dur_is(const char *s, int64_t want)
{
	int64_t ms = -1;
	if (!parse_duration_ms(s, &ms))
		fail_msg("parse_duration_ms(\"%s\") refused", s);
	if (ms != want)
		fail_msg("parse_duration_ms(\"%s\") = %lld, want %lld", s, (long long)ms, (long long)want);
}

static void dur_bad(const char *s)
{
	int64_t ms = 12345;
	if (parse_duration_ms(s, &ms))
		fail_msg("parse_duration_ms(\"%s\") accepted (%lld)", s, (long long)ms);
}

T(duration_units)
{
	dur_is("30s", 30000);
	dur_is("500ms", 500);
	dur_is("2m", 120000);
	dur_is("2min", 120000);
	dur_is("1h", 3600000);
	dur_is("1.5s", 1500);
}

T(duration_bare_seconds)
{
	dur_is("15", 15000);
	dur_is("0", 0);
}

T(duration_malformed)
{
	dur_bad("");
	dur_bad("s");
	dur_bad("5d");
	dur_bad("5 s");
	dur_bad("-1s");
	dur_bad("thirty");
}

T(duration_not_finite_refused)
{
	/* (int64_t) of NaN, infinity or 1e30 ms is undefined behaviour in C */
	dur_bad("nan");
	dur_bad("inf");
	dur_bad("1e30s");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(bucket_10_per_s_capacity_is_one),
		cmocka_unit_test(bucket_100_per_s_has_no_burst),
		cmocka_unit_test(bucket_starts_full_then_empties),
		cmocka_unit_test(bucket_never_exceeds_rate_in_any_second),
		cmocka_unit_test(bucket_set_rate_keeps_tokens),
		cmocka_unit_test(adapt_after_429_slows_to_what_was_accepted),
		cmocka_unit_test(adapt_recover_climbs_back_to_the_configured_rate),
		cmocka_unit_test(bucket_wait_is_zero_when_full),
		cmocka_unit_test(bucket_wait_after_take_is_100ms_at_10_per_s),
		cmocka_unit_test(bucket_wait_halves_after_50ms),
		cmocka_unit_test(bucket_wait_one_ms_before_the_token),
		cmocka_unit_test(bucket_token_available_exactly_after_wait),
		cmocka_unit_test(bucket_wait_rounds_up),
		cmocka_unit_test(bucket_idle_does_not_exceed_capacity),
		cmocka_unit_test(bucket_steady_rate_over_one_second),
		cmocka_unit_test(bucket_clock_going_back_is_harmless),
		cmocka_unit_test(bucket_unlimited_rate_zero),
		cmocka_unit_test(bucket_unlimited_rate_negative),
		cmocka_unit_test(bucket_slow_rate_one_per_minute),
		cmocka_unit_test(backoff_attempt_0_is_base),
		cmocka_unit_test(backoff_rnd_0_is_base_for_every_attempt),
		cmocka_unit_test(backoff_bounds_attempts_0_to_10),
		cmocka_unit_test(backoff_exact_values),
		cmocka_unit_test(backoff_grows_with_attempt),
		cmocka_unit_test(backoff_cap_holds_for_huge_attempts),
		cmocka_unit_test(backoff_negative_attempt_is_attempt_0),
		cmocka_unit_test(backoff_cap_below_base_gives_base),
		cmocka_unit_test(retry_after_delta_seconds),
		cmocka_unit_test(retry_after_delta_with_spaces_and_crlf),
		cmocka_unit_test(retry_after_http_date_in_future),
		cmocka_unit_test(retry_after_http_date_fraction_of_now),
		cmocka_unit_test(retry_after_http_date_now_or_past_is_zero),
		cmocka_unit_test(retry_after_http_date_more_than_a_day_is_unusable),
		cmocka_unit_test(retry_after_garbage_is_minus_1),
		cmocka_unit_test(retry_after_negative_is_minus_1),
		cmocka_unit_test(retry_after_huge_is_minus_1),
		cmocka_unit_test(retry_after_inf_and_nan_are_minus_1),
		cmocka_unit_test(rate_per_minute),
		cmocka_unit_test(rate_per_second),
		cmocka_unit_test(rate_per_hour),
		cmocka_unit_test(rate_malformed),
		cmocka_unit_test(rate_zero_or_negative_refused),
		cmocka_unit_test(rate_not_a_number_refused),
		cmocka_unit_test(duration_units),
		cmocka_unit_test(duration_bare_seconds),
		cmocka_unit_test(duration_malformed),
		cmocka_unit_test(duration_not_finite_refused),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
