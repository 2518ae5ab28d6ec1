/*
 * fuzz_throttle — the arithmetic of politeness: parse_rate(), parse_duration_ms(),
 * retry_after_ms(), backoff_ms(), and the token bucket fed with a parsed rate.
 *
 * Input: 8 bytes of attempt and random draw, 8 of base, 8 of cap, 8 of clock, then
 * text lines: a rate, a duration, a Retry-After value.
 *
 * Properties: no UB for any input (UBSan aborts on signed overflow and on a double
 * that does not fit the integer it is converted to); parse_rate() gives a positive
 * finite rate; parse_duration_ms() a duration >= 0; retry_after_ms() -1 or a wait of
 * at most a day; backoff_ms() a delay within [base, max(base, cap)] for a draw in
 * [0, 1) (where milliseconds are exact doubles); the bucket never waits a negative time, and gives a token after a few waits.
 */
#include <math.h>

#include "fuzz.h"

#include "throttle.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fuzz_setup(false);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fz in = {data, size};
	int attempt = (int)(int32_t)(uint32_t)(fz_u64(&in) >> 32);
	double rnd = fz_unit(&in);
	int64_t base = (int64_t)fz_u64(&in);
	int64_t cap = (int64_t)fz_u64(&in);
	/* A clock as hrsync reads it: epoch seconds now-ish, monotonic milliseconds. */
	uint64_t clk = fz_u64(&in);
	double epoch = 1.7e9 + (double)(clk % 1000000000u);
	int64_t mono = (int64_t)(clk >> 20);

	int64_t v = backoff_ms(attempt, base, cap, rnd);
	int64_t hi = cap > base ? cap : base;
	/* The bounds hold where int64 milliseconds are exact doubles (|x| < 2^53: 285,000 years). */
	bool exact = base > -((int64_t)1 << 53) && base < ((int64_t)1 << 53) && cap > -((int64_t)1 << 53) &&
		     cap < ((int64_t)1 << 53);
	FUZZ_CHECK(!exact || (v >= base && v <= hi), "backoff_ms(%d, %lld, %lld, %.17g) = %lld", attempt, (long long)base,
		   (long long)cap, rnd, (long long)v);
	/* The way hrsync calls it. */
	int64_t r = backoff_ms(attempt, 250, 10000, rnd);
	FUZZ_CHECK(r >= 250 && r <= 10000, "backoff_ms(%d, 250, 10000) = %lld", attempt, (long long)r);

	char *rate_s = fz_line(&in);
	char *dur_s = fz_line(&in);
	char *ra_s = fz_line(&in);

	double rate = -1;
	if (parse_rate(rate_s, &rate) && !(FUZZ_KNOWN_BUG(4) && rate < 1e-9)) {
		FUZZ_CHECK(isfinite(rate) && rate > 0, "parse_rate(\"%s\") = %g", rate_s, rate);
		struct bucket b;
		bucket_init(&b, rate, mono);
		int64_t t = mono;
		for (int i = 0; i < 4; i++) {
			/* Waiting what bucket_wait_ms() says gets a token within three waits (float rounding may ask for one more, short, wait). */
			int rounds = 0;
			while (!bucket_take(&b, t)) {
				int64_t w = bucket_wait_ms(&b, t);
				FUZZ_CHECK(w >= 0, "bucket_wait_ms = %lld", (long long)w);
				FUZZ_CHECK(++rounds <= 3, "no token after %d waits at rate %g/s", rounds - 1, rate);
				if (w >= 86400000)
					break; /* a day or more: the rate is a pause, not a pace (a cap is fine) */
				t += w ? w : 1; /* a wait of 0 is a poll that comes back the next millisecond */
			}
		}
	}
	int64_t ms = -1;
	if (parse_duration_ms(dur_s, &ms))
		FUZZ_CHECK(ms >= 0, "parse_duration_ms(\"%s\") = %lld", dur_s, (long long)ms);
	int64_t ra = retry_after_ms(ra_s, epoch);
	FUZZ_CHECK(ra == -1 || (ra >= 0 && ra <= 86400000), "retry_after_ms(\"%s\") = %lld", ra_s, (long long)ra);
	(void)retry_after_ms(ra_s, 0);

	free(rate_s);
	free(dur_s);
	free(ra_s);
	return 0;
}
