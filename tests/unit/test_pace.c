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

#include <math.h>
#include <stdlib.h>

#include "http.h"

#define T(name) static void name(void **state __attribute__((unused)))

/* Send times (ms) of a loop that tries whenever the bucket says, waking up to late_ms late. */
/*
 * The pacer driven as http.c does for span_ms: the loop wakes up to late_ms late; with
 * held_ms, one send in ten leaves up to held_ms after the pacer let it go (the loop busy),
 * noted when it leaves (span_sent). sent[]: when each left.
 */
static size_t simulate(double limit, int late_ms, int held_ms, int64_t span_ms, int64_t *sent, size_t cap,
		       unsigned seed)
{
	struct pacer p;
	pacer_init(&p, "test", limit, 8, 0, 0);
	p.bucket.last_ms = 0;
	p.bucket.tokens = p.bucket.capacity;
	srand(seed);
	size_t n = 0;
	for (int64_t t = 0; t < span_ms && n < cap;) {
		/* as http.c eligible(): the window first, then a token */
		int64_t w = span_wait_ms(&p.span, t);
		if (w == 0 && bucket_take(&p.bucket, t)) {
			int slot = span_note(&p.span, t);
			if (held_ms && rand() % 10 == 0) {
				int64_t out = t + rand() % (held_ms + 1);
				span_sent(&p.span, slot, t, out);
				t = out;
			}
			sent[n++] = t;
			continue;
		}
		if (w == 0)
			w = bucket_wait_ms(&p.bucket, t);
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
		/* the bucket's slack is 10 ms of tokens, half a token at most (5 ms at 100/s) */
		int most_late = limits[k] > 50 ? 3 : 6;
		for (int late = 0; late <= most_late; late += 3) {
			size_t n = simulate(limits[k], late, 0, 600000, sent, 100000, 7 + (unsigned)late);
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
			size_t n = simulate(limits[k], late, 0, 120000, sent, 100000, 11 + (unsigned)late);
			for (int64_t w = 1000; w <= 10000; w *= 10)
				assert_true(most_in_window(sent, n, w) <= (int)(limits[k] * (double)w / 1000.0));
		}
}

static int cmp64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return x < y ? -1 : x > y;
}

T(arrivals_bunched_by_15_ms_still_fit_the_window)
{
	/* The platform sees each request up to SPAN_JITTER_MS later than it left, at random. */
	static int64_t sent[100000];
	const double limits[] = {2, 5, 10, 50, 100, 400, 1000.0 / 60};
	for (size_t k = 0; k < sizeof limits / sizeof *limits; k++) {
		size_t n = simulate(limits[k], 3, 0, 300000, sent, 100000, 23);
		srand(5);
		for (size_t i = 0; i < n; i++)
			sent[i] += rand() % (SPAN_JITTER_MS + 1);
		qsort(sent, n, sizeof *sent, cmp64);
		/* a whole number a second: its second; 1000/min: its minute */
		int64_t w = limits[k] == floor(limits[k]) ? 1000 : 60000;
		assert_true(most_in_window(sent, n, w) <= (int)floor(limits[k] * (double)w / 1000.0 + 1e-6));
	}
}

T(a_request_that_leaves_late_keeps_the_window)
{
	/* The loop is busy now and then (a state commit, a batch of answers: up to 40 ms), and a
	 * request let go just before leaves only after it, with the next one right behind: the
	 * window counts from when each left (span_sent), and the platform, seeing each up to
	 * SPAN_JITTER_MS late at random, never counts more than the limit in a second. */
	static int64_t left[40000];
	const double limits[] = {5, 10, 50, 100};
	for (size_t k = 0; k < sizeof limits / sizeof *limits; k++) {
		size_t n = simulate(limits[k], 0, 40, 200000, left, 40000, 31);
		for (size_t i = 0; i < n; i++)
			left[i] += rand() % (SPAN_JITTER_MS + 1);
		qsort(left, n, sizeof *left, cmp64);
		assert_true(most_in_window(left, n, 1000) <= (int)limits[k]);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(a_known_limit_gets_98_percent_with_late_wakeups),
		cmocka_unit_test(no_window_holds_more_than_the_limit),
		cmocka_unit_test(arrivals_bunched_by_15_ms_still_fit_the_window),
		cmocka_unit_test(a_request_that_leaves_late_keeps_the_window),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
