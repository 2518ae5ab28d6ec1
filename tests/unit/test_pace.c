/*
 * test_pace — the pacer a connector sends through (http.c pacer_init: PACE_SHARE, PACE_SLACK),
 * driven at injected times: with a loop that wakes late, it still sends at least 98% of a
 * platform's limit, and no window of one second (or more) ever holds more than the limit.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>

#include "http.h"

#define T(name) static void name(void **state __attribute__((unused)))

/* Send times (ms) of a loop that tries whenever the bucket says, waking up to late_ms late. */
static size_t simulate(double limit, int late_ms, int64_t span_ms, int64_t *sent, size_t cap, unsigned seed)
{
	struct pacer p;
	pacer_init(&p, "test", limit, 8, 0, 0);
	p.bucket.last_ms = 0;
	p.bucket.tokens = p.bucket.capacity;
	srand(seed);
	size_t n = 0;
	for (int64_t t = 0; t < span_ms && n < cap;) {
		if (bucket_take(&p.bucket, t)) {
			sent[n++] = t;
			continue;
		}
		int64_t w = bucket_wait_ms(&p.bucket, t);
		t += (w > 0 ? w : 1) + (late_ms ? rand() % (late_ms + 1) : 0);
	}
	pacer_free(&p);
	return n;
}

static int most_in_window(const int64_t *ts, size_t n, int64_t width_ms)
{
	int best = 0;
	for (size_t i = 0, j = 0; i < n; i++) {
		while (ts[i] - ts[j] >= width_ms)
			j++;
		if ((int)(i - j + 1) > best)
			best = (int)(i - j + 1);
	}
	return best;
}

T(a_known_limit_gets_98_percent_with_late_wakeups)
{
	static int64_t sent[100000];
	const double limits[] = {5, 10, 50, 100};
	for (size_t k = 0; k < sizeof limits / sizeof *limits; k++) {
		for (int late = 0; late <= 8; late += 4) {
			size_t n = simulate(limits[k], late, 600000, sent, 100000, 7 + (unsigned)late);
			double rate = (double)(n - 1) * 1000.0 / (double)(sent[n - 1] - sent[0]);
			assert_true(rate >= 0.98 * limits[k]);
			assert_true(rate <= limits[k]);
		}
	}
}

T(no_window_holds_more_than_the_limit)
{
	static int64_t sent[100000];
	const double limits[] = {1, 5, 10, 50, 100, 400};
	for (size_t k = 0; k < sizeof limits / sizeof *limits; k++)
		for (int late = 0; late <= 30; late += 10) {
			size_t n = simulate(limits[k], late, 120000, sent, 100000, 11 + (unsigned)late);
			for (int64_t w = 1000; w <= 10000; w *= 10)
				assert_true(most_in_window(sent, n, w) <= (int)(limits[k] * (double)w / 1000.0));
		}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(a_known_limit_gets_98_percent_with_late_wakeups),
		cmocka_unit_test(no_window_holds_more_than_the_limit),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
