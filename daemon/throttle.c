/*
 * throttle — see throttle.h.
 */
#define _GNU_SOURCE
#include "throttle.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util.h"

void bucket_init(struct bucket *b, double rate, int64_t now_ms)
{
	b->rate = rate;
	/* No burst: one token at most, so any window of W seconds sees at most rate x W
	 * requests — a platform's sliding window at exactly the configured limit is never
	 * overrun (a burst of even 2.5 requests at 50/s drew 429s in the benchmark). */
	b->capacity = 1;
	b->tokens = b->capacity;
	b->last_ms = now_ms;
}

void bucket_set_rate(struct bucket *b, double rate, int64_t now_ms)
{
	if (now_ms > b->last_ms && b->rate > 0) {
		b->tokens += (double)(now_ms - b->last_ms) * b->rate / 1000.0;
		if (b->tokens > b->capacity)
			b->tokens = b->capacity;
	}
	b->last_ms = now_ms;
	b->rate = rate;
}

double adapt_after_429(double rate, double accepted_last_second, double floor_rate)
{
	/* A 429 says we are at the platform's limit, and what it accepted in the last second is
	 * the best measure of that limit: go straight to 95% of it. A quiet second (lookups,
	 * latency) measures little, so never more than halve in one step, and always slow down. */
	double r = accepted_last_second * 0.95;
	if (r < rate * 0.5)
		r = rate * 0.5;
	if (r > rate * 0.95)
		r = rate * 0.95;
	return r < floor_rate ? floor_rate : r;
}

int64_t header_reset_ms(long long reset, bool epoch, double now_epoch)
{
	if (reset < 0)
		return -1;
	if (epoch || reset > 1000000000LL) {
		double left = (double)reset - now_epoch;
		return left <= 0 ? 0 : (int64_t)(left * 1000.0);
	}
	return reset > 366LL * 86400 ? -1 : (int64_t)reset * 1000;
}

double header_rate(long long remaining, int64_t ms_left, int in_flight)
{
	long long budget = remaining - (in_flight > 0 ? in_flight : 0);
	if (budget <= 0)
		return 0;
	return (double)budget / ((double)(ms_left > 0 ? ms_left : 0) / 1000.0 + 0.5);
}

double adapt_recover(double rate, double base_rate)
{
	double r = rate * 1.02;
	if (r < rate + base_rate * 0.005)
		r = rate + base_rate * 0.005;
	return r > base_rate ? base_rate : r;
}

static void refill(struct bucket *b, int64_t now_ms)
{
	if (now_ms > b->last_ms) {
		b->tokens += (double)(now_ms - b->last_ms) * b->rate / 1000.0;
		if (b->tokens > b->capacity)
			b->tokens = b->capacity;
		b->last_ms = now_ms;
	}
}

bool bucket_take(struct bucket *b, int64_t now_ms)
{
	if (b->rate <= 0)
		return true;
	refill(b, now_ms);
	if (b->tokens >= 1.0) {
		b->tokens -= 1.0;
		return true;
	}
	return false;
}

int64_t bucket_wait_ms(struct bucket *b, int64_t now_ms)
{
	if (b->rate <= 0)
		return 0;
	refill(b, now_ms);
	if (b->tokens >= 1.0)
		return 0;
	/* Round up, but not past a float error: 1.0000000001 ms is 1 ms. */
	double need = (1.0 - b->tokens) * 1000.0 / b->rate;
	return (int64_t)ceil(need - 1e-6);
}

int64_t backoff_ms(int attempt, int64_t base_ms, int64_t cap_ms, double rnd)
{
	if (attempt < 0)
		attempt = 0;
	if (attempt > 30)
		attempt = 30;
	double ceiling = (double)base_ms * (double)(1LL << attempt);
	if (ceiling > (double)cap_ms)
		ceiling = (double)cap_ms;
	if (ceiling < (double)base_ms)
		ceiling = (double)base_ms;
	int64_t v = base_ms + (int64_t)(rnd * (ceiling - (double)base_ms));
	return v < base_ms ? base_ms : v;
}

int64_t retry_after_ms(const char *value, double now_epoch)
{
	if (!value)
		return -1;
	while (*value == ' ')
		value++;
	double secs;
	char *end;
	secs = strtod(value, &end);
	if (end != value) {
		while (*end == ' ' || *end == '\r' || *end == '\n')
			end++;
		if (*end == '\0' && secs >= 0 && secs < 86400)
			return (int64_t)(secs * 1000.0);
		if (*end == '\0')
			return -1;
	}
	struct tm tm;
	memset(&tm, 0, sizeof tm);
	const char *rest = strptime(value, "%a, %d %b %Y %H:%M:%S GMT", &tm);
	if (!rest)
		return -1;
	time_t t = timegm(&tm);
	double delta = (double)t - now_epoch;
	if (delta < 0)
		delta = 0;
	if (delta > 86400)
		return -1;
	return (int64_t)(delta * 1000.0);
}

bool parse_rate(const char *s, double *per_second)
{
	char *end;
	double n = strtod(s, &end);
	if (end == s || !isfinite(n) || n <= 0 || *end != '/')
		return false;
	const char *unit = end + 1;
	double div;
	if (streq(unit, "s") || streq(unit, "sec") || streq(unit, "second"))
		div = 1;
	else if (streq(unit, "min") || streq(unit, "m") || streq(unit, "minute"))
		div = 60;
	else if (streq(unit, "h") || streq(unit, "hour"))
		div = 3600;
	else
		return false;
	/* Below one request an hour, a wait no longer fits the clock's arithmetic: refused. */
	if (n / div < 1.0 / 3600.0 - 1e-12)
		return false;
	*per_second = n / div;
	return true;
}

bool parse_duration_ms(const char *s, int64_t *ms)
{
	char *end;
	double n = strtod(s, &end);
	if (end == s || !isfinite(n) || n < 0 || n > 1e9)
		return false;
	double mult;
	if (*end == '\0' || streq(end, "s"))
		mult = 1000;
	else if (streq(end, "ms"))
		mult = 1;
	else if (streq(end, "m") || streq(end, "min"))
		mult = 60000;
	else if (streq(end, "h"))
		mult = 3600000;
	else
		return false;
	*ms = (int64_t)(n * mult);
	return true;
}

void span_init(struct span *s, double limit_per_s, int64_t jitter_ms)
{
	memset(s, 0, sizeof *s);
	if (!(limit_per_s >= 2) || limit_per_s > 4096)
		return;
	/* A whole number a second: a window of a second. Else a limit given a minute ("1000/min"). */
	bool whole = fabs(limit_per_s - round(limit_per_s)) < 1e-6;
	double width = whole ? 1000.0 : 60000.0;
	s->n = (int)floor(limit_per_s * width / 1000.0 + 1e-6);
	s->width_ms = (int64_t)width + jitter_ms;
	s->sent = calloc((size_t)s->n, sizeof *s->sent);
	if (!s->sent)
		s->n = 0;
}

void span_free(struct span *s)
{
	free(s->sent);
	memset(s, 0, sizeof *s);
}

int64_t span_wait_ms(const struct span *s, int64_t now_ms)
{
	if (s->n == 0 || s->count < s->n)
		return 0;
	/* the oldest of the last n */
	int64_t free_at = s->sent[s->head] + s->width_ms;
	return free_at > now_ms ? free_at - now_ms : 0;
}

int span_note(struct span *s, int64_t now_ms)
{
	if (s->n == 0)
		return -1;
	int slot = s->head;
	s->sent[slot] = now_ms;
	s->head = (s->head + 1) % s->n;
	if (s->count < s->n)
		s->count++;
	return slot;
}

void span_sent(struct span *s, int slot, int64_t noted_ms, int64_t now_ms)
{
	if (slot >= 0 && slot < s->n && s->sent[slot] == noted_ms && now_ms > noted_ms)
		s->sent[slot] = now_ms;
}
