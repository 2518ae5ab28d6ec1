/*
 * throttle — the pure arithmetic of talking politely to a platform: a token bucket
 * for the request rate, full-jitter exponential backoff, and Retry-After parsing.
 * No I/O and no clock reads: callers pass the time in, so the unit tests are exact.
 */
#ifndef HRSYNC_THROTTLE_H
#define HRSYNC_THROTTLE_H

#include <stdbool.h>
#include <stdint.h>

struct bucket {
	double rate;       /* tokens per second; <= 0 means unlimited */
	double capacity;   /* the largest burst */
	double tokens;
	int64_t last_ms;
};

void bucket_init(struct bucket *b, double rate, int64_t now_ms);
/* Change the rate, keeping the tokens earned so far. */
void bucket_set_rate(struct bucket *b, double rate, int64_t now_ms);
/*
 * The rate to slow to after a 429 when the platform's limit is lower than configured:
 * 95% of what it accepted in the last second, but at least half and at most 95% of the
 * current rate; never below floor_rate (multiplicative decrease, toward the measured limit).
 */
double adapt_after_429(double rate, double accepted_last_second, double floor_rate);
/* The rate after a second without a 429: 2% up (at least 0.5% of base_rate), at most base_rate. */
double adapt_recover(double rate, double base_rate);
/* Take one token if there is one; true when taken. */
bool bucket_take(struct bucket *b, int64_t now_ms);
/* Milliseconds until a token is available (0 when one is). */
int64_t bucket_wait_ms(struct bucket *b, int64_t now_ms);

/*
 * The spacing a platform's sliding window needs (issue 18): at most n requests in any
 * window of width + jitter_ms of send times, so that no window of `width` of arrival times
 * holds more than n even when the network or the platform bunches arrivals by up to
 * jitter_ms. A limit that is a whole number a second: n = the limit, width 1 s; any other
 * (a limit given a minute, "1000/min"): n = the limit x 60, width 60 s. Under 2 requests a
 * second (or over 4,096) the bucket alone paces (n = 0: no check). Unlike the bucket, it
 * forgets nothing when a send leaves late: the next may leave sooner.
 */
struct span {
	int64_t *sent;     /* ring of the last n send times */
	int n, count, head;
	int64_t width_ms;  /* the window plus the jitter allowed */
};

#define SPAN_JITTER_MS 15
void span_init(struct span *s, double limit_per_s, int64_t jitter_ms);
void span_free(struct span *s);
/* Milliseconds until one more request may leave (0: now). */
int64_t span_wait_ms(const struct span *s, int64_t now_ms);
/* A request let go at now_ms: its slot in the ring (-1: no check), for span_sent. */
int span_note(struct span *s, int64_t now_ms);
/*
 * The request noted at noted_ms in slot left only at now_ms (the loop was busy: a state
 * commit, a batch of answers): the window counts from when it left, so that the requests let
 * go after it keep their distance from it, not from when it was let go. Nothing when the slot
 * holds another request by now.
 */
void span_sent(struct span *s, int slot, int64_t noted_ms, int64_t now_ms);

/*
 * Full-jitter backoff (AWS architecture blog): a uniform draw in [base, min(cap, base * 2^attempt)],
 * never below base. attempt counts from 0. rnd is a uniform draw in [0, 1).
 */
int64_t backoff_ms(int attempt, int64_t base_ms, int64_t cap_ms, double rnd);

/*
 * Retry-After: delta-seconds ("120") or an HTTP date ("Wed, 21 Oct 2015 07:28:00 GMT").
 * Returns milliseconds to wait from now_epoch (seconds), or -1 when the value is unusable.
 */
int64_t retry_after_ms(const char *value, double now_epoch);

/*
 * A platform's rate headers (X-RateLimit-Remaining/-Reset, Teamtailor's X-Rate-Limit-*):
 * the milliseconds left of its window from the Reset value, which is epoch seconds (the
 * X-RateLimit family, and any value past 10^9) or seconds left (X-Rate-Limit). -1: unusable.
 */
int64_t header_reset_ms(long long reset, bool epoch, double now_epoch);
/*
 * The rate that spends what the platform says is left evenly until its window ends: the
 * remaining requests less those in flight (sent, not counted yet in that answer), over the
 * time left (plus half a second of margin for clocks). 0: nothing left, wait for the reset.
 */
double header_rate(long long remaining, int64_t ms_left, int in_flight);

/*
 * "60/min", "5/s", "1000/h", "2.5/s" -> requests per second. false when malformed.
 */
bool parse_rate(const char *s, double *per_second);
/* "30s", "500ms", "2m", "1h", or bare seconds -> milliseconds. */
bool parse_duration_ms(const char *s, int64_t *ms);

#endif
