/*
 * http — see http.h.
 */
#define _GNU_SOURCE
#include "http.h"

#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "secret.h"
#include "version.h"

#define MAX_BODY (64L * 1024 * 1024)
#define TOO_LARGE "the answer is larger than the 64 MiB hrsync accepts"
/* libcurl 7.88 refuses a header line over CURL_MAX_HTTP_HEADER (100 KB) and says "Out of memory". */
#define HEADER_TOO_LONG "the answer has a header line longer than the 100 KB libcurl accepts (libcurl: out of memory)"

struct http {
	CURLM *multi;
	volatile sig_atomic_t *stop;   /* set by a signal handler: the run is asked to stop */
	struct pacer *pacers;
	int running;
	int active;          /* calls submitted and not yet done */
	int depth;           /* http_run calls on the stack: 1 at most */
	uint64_t rng;
};

double http_jitter(struct http *h)
{
	/* xorshift64*: jitter only, no security role. */
	h->rng ^= h->rng >> 12;
	h->rng ^= h->rng << 25;
	h->rng ^= h->rng >> 27;
	return (double)((h->rng * 2685821657736338717ULL) >> 11) / (double)(1ULL << 53);
}

bool http_init_once(void)
{
	static bool done;
	if (!done)
		done = curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK;
	return done;
}

struct http *http_new(void)
{
	struct http *h = xcalloc(1, sizeof *h);
	h->multi = http_init_once() ? curl_multi_init() : NULL;
	if (!h->multi) {
		fprintf(stderr, "hrsync: cannot initialise libcurl\n");
		abort();
	}
	h->rng = (uint64_t)now_ms() * 0x9E3779B97F4A7C15ULL + (uint64_t)getpid() + 1;
	return h;
}

void http_free(struct http *h)
{
	if (!h)
		return;
	curl_multi_cleanup(h->multi);
	free(h);
}

void pacer_init(struct pacer *p, const char *name, double rate, int max_in_flight, long timeout_ms,
		long max_wait_ms)
{
	memset(p, 0, sizeof *p);
	p->name = xstrdup(name);
	/* Under the platform's limit (PACE_SHARE, the span): requests that leave evenly spaced do
	 * not always arrive so; a platform that bunches them by up to 15 ms still sees no more
	 * than its limit in any second. */
	double limit = rate;
	span_init(&p->span, limit, SPAN_JITTER_MS);
	/* Where the span keeps each second under the limit, the bucket only spaces the requests
	 * and may catch up what a late loop lost; elsewhere it is the limit's guard. */
	rate *= p->span.n && p->span.width_ms == 1000 + SPAN_JITTER_MS ? PACE_SHARE_SPANNED : PACE_SHARE;
	bucket_init(&p->bucket, rate, now_ms());
	/* The loop may take a token some milliseconds after it was earned (it wakes on whole
	 * milliseconds, and a busy machine, a source read or a state commit delays it); a slack of
	 * PACE_SLACK x limit tokens (10 ms; half a token at most, so that two requests never leave
	 * at the same instant, unless 2 ms of tokens are more: the loop's millisecond timers
	 * need those at high rates) keeps that time instead of losing it: on a loaded
	 * 2-core machine 2 ms of slack lost 1.5% of the rate (issue 18). A window of W >= 1 s
	 * still sees at most floor(1 + 0.01 x limit + 0.985 x limit x W) requests, never more
	 * than the platform's limit x W (tests/unit/test_pace.c). */
	if (rate > 0)
		p->bucket.capacity = 1.0 + fmax(limit * 0.002, fmin(limit * PACE_SLACK, 0.5));
	p->base_rate = rate;
	p->max_in_flight = max_in_flight > 0 ? max_in_flight : 4;
	p->timeout_ms = timeout_ms > 0 ? timeout_ms : 30000;
	p->max_wait_ms = max_wait_ms > 0 ? max_wait_ms : PACER_MAX_WAIT_MS;
	p->max_attempts = 5;
	p->max_throttled = 10;
	p->breaker_threshold = 5;
}

void pacer_free(struct pacer *p)
{
	span_free(&p->span);
	free(p->name);
	p->name = NULL;
}

void pacer_stop(struct pacer *p, const char *fmt, ...)
{
	if (p->stopped)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(p->stop_reason, sizeof p->stop_reason, fmt, ap);
	va_end(ap);
	secret_redact(p->stop_reason); /* it may quote the platform */
	p->stopped = true;
	log_error("connector %s stopped for this run: %s", p->name, p->stop_reason);
}

void http_add_pacer(struct http *h, struct pacer *p)
{
	p->next_pacer = h->pacers;
	h->pacers = p;
}

struct curl_slist *http_base_headers(const char *accept)
{
	struct curl_slist *l = NULL;
	char line[160];
	snprintf(line, sizeof line, "Accept: %s", accept ? accept : "application/json");
	l = curl_slist_append(l, "User-Agent: hrsync/" HRSYNC_VERSION);
	l = curl_slist_append(l, line);
	return l;
}

void http_call_reset(struct http_call *c)
{
	free(c->url);
	free(c->body);
	curl_slist_free_all(c->headers);
	free(c->resp);
	free(c->content_type);
	free(c->retry_after);
	sb_free(&c->rbuf);
	c->url = c->body = c->resp = c->content_type = c->retry_after = NULL;
	c->headers = NULL;
	c->body_type = NULL;
	c->before_send = NULL;
	c->waited_gen = 0;
	c->resp_len = c->body_len = 0;
	c->status = 0;
	c->outcome = CALL_PENDING;
	c->err[0] = '\0';
	c->attempts = c->throttled = 0;
	c->timed_out = false;
}

static void enqueue(struct pacer *p, struct http_call *c)
{
	c->next = NULL;
	if (p->tail)
		p->tail->next = c;
	else
		p->head = c;
	p->tail = c;
}

void http_submit(struct http *h, struct http_call *c, int64_t delay_ms)
{
	c->http = h;
	c->outcome = CALL_PENDING;
	c->span_slot = -1; /* noted when the pacer lets it go */
	c->not_before = now_ms() + (delay_ms > 0 ? delay_ms : 0);
	if (!c->first_ms)
		c->first_ms = now_ms();
	h->active++;
	enqueue(c->pacer, c);
}

bool http_busy(const struct http *h)
{
	return h->active > 0;
}

static void finish(struct http *h, struct http_call *c, enum call_outcome o)
{
	struct pacer *p = c->pacer;
	c->outcome = o;
	c->elapsed_ms = now_ms() - c->first_ms;
	c->first_ms = 0;
	/*
	 * The breaker counts reads and writes apart. A read fails here only after its own
	 * retries, so a few in a row mean the platform is down. A write that may have acted
	 * (a POST) is not retried here but looked for by its connector, and a read in between
	 * must not hide that writes keep failing; one failing now and then (a flaky platform)
	 * must not stop the run either: more of them in a row are needed.
	 */
	int *row = c->idempotent ? &p->failed_reads : &p->failed_writes;
	int limit = c->idempotent ? p->breaker_threshold : p->breaker_threshold + 3;
	if (o == CALL_TRANSIENT) {
		p->stats.failures++;
		if (++*row >= limit)
			pacer_stop(p, "%d requests in a row failed; last: %s %s: %s", *row, c->method, c->url,
				   c->err[0] ? c->err : "no answer");
	} else if (o == CALL_ANSWERED) {
		*row = 0;
	}
	h->active--;
	c->done(c);
}

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *ud)
{
	struct http_call *c = ud;
	size_t n = size * nmemb;
	if (c->rbuf.len + n > MAX_BODY) {
		c->too_large = true; /* libcurl would call it a failure to write to disk */
		return 0;
	}
	sb_add(&c->rbuf, ptr, n);
	return n;
}

/* A rate header's value: digits only (a number in a header is never trusted further). */
static long long header_number(const char *buf, size_t n, size_t name_len)
{
	const char *v = buf + name_len, *end = buf + n;
	while (v < end && (*v == ' ' || *v == '\t'))
		v++;
	long long x = 0;
	int digits = 0;
	for (; v < end && *v >= '0' && *v <= '9' && digits < 18; v++, digits++)
		x = x * 10 + (*v - '0');
	while (v < end && (*v == ' ' || *v == '\r' || *v == '\n'))
		v++;
	return digits && v == end ? x : -1;
}

/* X-RateLimit-Remaining/-Reset (Reset: epoch seconds) and X-Rate-Limit-* (Reset: seconds left). */
static void rate_header(struct http_call *c, const char *buf, size_t n)
{
	static const struct {
		const char *name;
		bool reset, epoch;
	} h[] = {{"x-ratelimit-remaining:", false, true}, {"x-ratelimit-reset:", true, true},
		 {"x-rate-limit-remaining:", false, false}, {"x-rate-limit-reset:", true, false}};
	for (size_t i = 0; i < sizeof h / sizeof h[0]; i++) {
		size_t l = strlen(h[i].name);
		if (n <= l || strncasecmp(buf, h[i].name, l) != 0)
			continue;
		long long v = header_number(buf, n, l);
		if (h[i].reset) {
			c->rl_reset = v;
			c->rl_epoch = h[i].epoch;
		} else {
			c->rl_remaining = v;
		}
	}
}

static size_t on_header(char *buf, size_t size, size_t nitems, void *ud)
{
	struct http_call *c = ud;
	size_t n = size * nitems;
	rate_header(c, buf, n);
	static const char ra[] = "retry-after:";
	if (n > sizeof ra - 1 && strncasecmp(buf, ra, sizeof ra - 1) == 0) {
		const char *v = buf + sizeof ra - 1;
		size_t vl = n - (sizeof ra - 1);
		while (vl && (*v == ' ' || *v == '\t')) {
			v++;
			vl--;
		}
		while (vl && (v[vl - 1] == '\r' || v[vl - 1] == '\n' || v[vl - 1] == ' '))
			vl--;
		free(c->retry_after);
		c->retry_after = xstrndup(v, vl);
	}
	return n;
}

/*
 * libcurl calls this right before it sends a request on a connection, new or reused. A second
 * call for the same attempt is libcurl about to send it again by itself: the reused
 * connection died under the first copy, which the platform may have acted on. An idempotent
 * request may go again; any other is stopped here (the attempt fails as a lost answer, and
 * its connector looks on the platform before sending it again), so that POSTs can reuse
 * keep-alive connections without ever going out twice.
 */
static int on_prereq(void *ud, char *remote_ip, char *local_ip, int remote_port, int local_port)
{
	(void)remote_ip;
	(void)local_ip;
	(void)remote_port;
	(void)local_port;
	struct http_call *c = ud;
	if (++c->sends > 1 && !c->idempotent)
		return CURL_PREREQFUNC_ABORT;
	/* The window counts this request from now, when it leaves (span_sent). */
	if (c->sends == 1)
		span_sent(&c->pacer->span, c->span_slot, c->span_noted, now_ms());
	return CURL_PREREQFUNC_OK;
}

static void start(struct http *h, struct http_call *c)
{
	struct pacer *p = c->pacer;
	CURL *e = curl_easy_init();
	if (!e) {
		snprintf(c->err, sizeof c->err, "cannot create a libcurl handle");
		finish(h, c, CALL_TRANSIENT);
		return;
	}
	sb_reset(&c->rbuf);
	free(c->retry_after);
	c->retry_after = NULL;
	c->rl_remaining = c->rl_reset = -1;
	c->err[0] = '\0';
	c->too_large = false;
	c->easy = e;
	c->attempts++;
	c->started_ms = now_ms();
	curl_easy_setopt(e, CURLOPT_URL, c->url);
	curl_easy_setopt(e, CURLOPT_PRIVATE, c);
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, c->headers);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, c);
	curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(e, CURLOPT_HEADERDATA, c);
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, c->err);
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, p->timeout_ms);
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, p->timeout_ms < 10000 ? p->timeout_ms : 10000L);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, p->allow_http ? "http,https" : "https");
	curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "");
	curl_easy_setopt(e, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)MAX_BODY); /* a Content-Length over it: not read */
	if (strcmp(c->method, "GET") != 0)
		curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, c->method);
	/*
	 * libcurl silently sends a request again when a reused connection turns out dead
	 * (curl PR #18417 proposes a switch; 7.88 has none). The platform may have acted on
	 * the first copy: for a POST that is a duplicate. on_prereq sees that second send
	 * coming and stops it, so a non-idempotent call reuses connections like any other
	 * (a fresh connection for each POST cost a TCP and TLS handshake per create, and
	 * halved the requests per second of a full push: issue 18); its connector decides
	 * what to do after the lost answer.
	 */
	c->sends = 0;
	curl_easy_setopt(e, CURLOPT_PREREQFUNCTION, on_prereq);
	curl_easy_setopt(e, CURLOPT_PREREQDATA, c);
	if (c->body) {
		curl_easy_setopt(e, CURLOPT_POSTFIELDS, c->body);
		curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)c->body_len);
	} else if (strcmp(c->method, "POST") == 0 || strcmp(c->method, "PUT") == 0) {
		curl_easy_setopt(e, CURLOPT_POSTFIELDS, "");
		curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, 0L);
	}
	p->in_flight++;
	p->stats.requests++;
	curl_multi_add_handle(h->multi, e);
}

static void unlink_call(struct pacer *p, struct http_call *prev, struct http_call *c)
{
	if (prev)
		prev->next = c->next;
	else
		p->head = c->next;
	if (p->tail == c)
		p->tail = prev;
	c->next = NULL;
}

/*
 * The first call of p that may go now: a due timer, a call to fail (stopped connector),
 * or a request the pacer lets out. NULL when none; *wait gets how long until one might.
 */
static struct http_call *eligible(struct pacer *p, int64_t now, int64_t *wait, struct http_call **prevp)
{
	struct http_call *prev = NULL;
	for (struct http_call *c = p->head; c; prev = c, c = c->next) {
		if (!c->method || p->stopped || c->not_before > now) {
			if (c->not_before > now) {
				if (c->not_before - now < *wait)
					*wait = c->not_before - now;
				continue;
			}
			*prevp = prev;
			return c;
		}
		if (p->in_flight >= p->max_in_flight)
			continue;
		if (now < p->pause_until) {
			if (p->pause_until - now < *wait)
				*wait = p->pause_until - now;
			continue;
		}
		int64_t sw = span_wait_ms(&p->span, now);
		if (sw > 0) {
			if (sw < *wait)
				*wait = sw;
			continue;
		}
		if (!bucket_take(&p->bucket, now)) {
			int64_t w = bucket_wait_ms(&p->bucket, now);
			if (w < *wait)
				*wait = w;
			continue;
		}
		c->span_noted = now;
		c->span_slot = span_note(&p->span, now);
		*prevp = prev;
		return c;
	}
	return NULL;
}

/*
 * Start (or fire, or fail) every queued call that may go now. A callback may queue new
 * calls: no list pointer is kept across one — each call is found, unlinked, then run.
 * Returns ms until the next could start.
 */
static int64_t dispatch(struct http *h)
{
	int64_t wait = 1000;
	for (struct pacer *p = h->pacers; p; p = p->next_pacer) {
		for (;;) {
			int64_t now = now_ms();
			struct http_call *prev = NULL, *c = eligible(p, now, &wait, &prev);
			if (!c)
				break;
			unlink_call(p, prev, c);
			if (!c->method) {
				/* A timer (op_retry_later): no request, no token, no slot. */
				h->active--;
				c->outcome = CALL_ANSWERED;
				c->done(c);
			} else if (p->stopped) {
				snprintf(c->err, sizeof c->err, "connector stopped: %s", p->stop_reason);
				finish(h, c, CALL_STOPPED);
			} else if (c->before_send && !c->before_send(c)) {
				h->active--; /* taken back by its submitter: not ours until submitted again */
			} else {
				start(h, c);
			}
		}
	}
	return wait < 0 ? 0 : wait;
}

/* Answers the platform accepted (not 429), per second: what its real limit lets through. */
static void count_accepted(struct pacer *p, int64_t now)
{
	int64_t sec = now / 1000;
	if (sec != p->acc_second) {
		p->acc_prev = sec == p->acc_second + 1 ? p->acc_cur : 0;
		p->acc_cur = 0;
		p->acc_second = sec;
	}
	p->acc_cur++;
}

static double accepted_last_second(const struct pacer *p, int64_t now)
{
	int64_t sec = now / 1000;
	double frac = (double)(now % 1000) / 1000.0;
	if (sec == p->acc_second)
		return (double)p->acc_prev * (1.0 - frac) + (double)p->acc_cur;
	if (sec == p->acc_second + 1)
		return (double)p->acc_cur * (1.0 - frac);
	return 0;
}

/*
 * The platform says how much of its window is left (a token it shares with other clients
 * may have spent part of it): pace so that what is left lasts until the window ends, never
 * faster than configured; nothing left waits for the reset. Without the headers nothing
 * changes. Every answer carries them, so the pace follows the window as it goes.
 */
static void follow_rate_headers(struct pacer *p, const struct http_call *c, int64_t now)
{
	if (c->rl_remaining < 0 || c->rl_reset < 0)
		return;
	int64_t left = header_reset_ms(c->rl_reset, c->rl_epoch, now_wall());
	if (left < 0)
		return;
	double r = header_rate(c->rl_remaining, left, p->in_flight);
	if (r <= 0) {
		/* Spent: everything waits for the window's end (and a little more for clocks), as
		 * long as max_wait allows, as for a Retry-After; longer stops the connector. */
		if (left + 250 > p->max_wait_ms) {
			pacer_stop(p, "the platform's rate window is spent (%lld requests left) for %lld s more, more than "
				      "max_wait (%lld s): the next run goes on; a longer max_wait lets runs wait for it",
				   c->rl_remaining, (long long)((left + 999) / 1000), (long long)(p->max_wait_ms / 1000));
			return;
		}
		if (now + left + 250 > p->pause_until) {
			p->pause_until = now + left + 250;
			p->hdr_paused++;
			log_debug("connector %s: the platform's window is spent (%lld left); waiting %.1f s for its reset",
				  p->name, c->rl_remaining, (double)(left + 250) / 1000.0);
		}
		return;
	}
	p->hdr_rate = r;
	p->hdr_until = now + left;
	double want = p->base_rate > 0 && p->base_rate < r ? p->base_rate : r;
	if (now - p->last_429_ms < 1000 && want > p->bucket.rate)
		return; /* a fresh 429 knows better */
	if (p->bucket.rate <= 0 || fabs(want - p->bucket.rate) > p->bucket.rate * 0.01) {
		if (want < p->bucket.rate * 0.9 || p->bucket.rate <= 0)
			log_debug("connector %s: the platform says %lld requests are left for %.0f s: pacing at %.2f/s", p->name,
				  c->rl_remaining, (double)left / 1000.0, want);
		bucket_set_rate(&p->bucket, want, now);
	}
}

/* Back toward the configured rate, a step per second without a 429. */
static void recover_rate(struct pacer *p, int64_t now)
{
	if (p->base_rate <= 0 || p->bucket.rate >= p->base_rate)
		return;
	if (now < p->hdr_until && p->bucket.rate >= p->hdr_rate)
		return; /* what the platform's window allows */
	if (now - p->last_429_ms < 1000 || now - p->last_adapt_ms < 1000)
		return;
	bucket_set_rate(&p->bucket, adapt_recover(p->bucket.rate, p->base_rate), now);
	p->last_adapt_ms = now;
}

/* "15m", "90s", "1500ms": a max_wait as hrsync.yaml would write it. */
static const char *duration_text(int64_t ms, char *buf, size_t n)
{
	if (ms % 60000 == 0)
		snprintf(buf, n, "%lldm", (long long)(ms / 60000));
	else if (ms % 1000 == 0)
		snprintf(buf, n, "%llds", (long long)(ms / 1000));
	else
		snprintf(buf, n, "%lldms", (long long)ms);
	return buf;
}

static bool retryable_status(long s)
{
	return s == 408 || s == 500 || s == 502 || s == 503 || s == 504 || (s >= 520 && s <= 599);
}

static void completed(struct http *h, CURL *e, CURLcode rc)
{
	struct http_call *c = NULL;
	curl_easy_getinfo(e, CURLINFO_PRIVATE, (char **)&c);
	struct pacer *p = c->pacer;
	long status = 0;
	curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
	char *ct = NULL;
	curl_easy_getinfo(e, CURLINFO_CONTENT_TYPE, &ct);
	free(c->content_type);
	c->content_type = xstrdup(ct);
	curl_multi_remove_handle(h->multi, e);
	curl_easy_cleanup(e);
	c->easy = NULL;
	p->in_flight--;
	int64_t now = now_ms();

	c->timed_out = rc == CURLE_OPERATION_TIMEDOUT;
	/* Too large is not transient: the same answer would come again. */
	bool oversized = c->too_large || rc == CURLE_FILESIZE_EXCEEDED || rc == CURLE_OUT_OF_MEMORY;
	if (oversized) {
		snprintf(c->err, sizeof c->err, "%s", rc == CURLE_OUT_OF_MEMORY ? HEADER_TOO_LONG : TOO_LARGE);
	} else if (rc == CURLE_ABORTED_BY_CALLBACK && c->sends > 1) {
		snprintf(c->err, sizeof c->err, "the kept-alive connection closed under the request and libcurl would have "
						"sent it again: not sent twice");
	} else if (rc != CURLE_OK) {
		if (!c->err[0])
			snprintf(c->err, sizeof c->err, "%s", curl_easy_strerror(rc));
		else {
			char tmp[2 * sizeof c->err];
			snprintf(tmp, sizeof tmp, "%s: %s", curl_easy_strerror(rc), c->err);
			size_t l = strlen(tmp);
			if (l >= sizeof c->err)
				l = sizeof c->err - 1;
			memcpy(c->err, tmp, l);
			c->err[l] = '\0';
		}
	}
	c->status = rc == CURLE_OK ? status : 0;
	secret_redact(c->err);
	secret_redact(c->content_type);
	if (log_level() >= L_DEBUG) {
		/* Query values may be e-mails or names (lookups by natural key): only their names are shown. */
		struct sb u = {0};
		const char *q = strchr(c->url, '?');
		sb_add(&u, c->url, q ? (size_t)(q - c->url) : strlen(c->url));
		for (const char *qp = q; qp && *qp;) {
			const char *eq = strchr(qp, '='), *amp = strchr(qp + 1, '&');
			if (!eq || (amp && amp < eq)) {
				sb_add(&u, qp, amp ? (size_t)(amp - qp) : strlen(qp));
			} else {
				sb_add(&u, qp, (size_t)(eq - qp));
				sb_puts(&u, "=…");
			}
			qp = amp;
		}
		log_debug("%s %s -> %ld%s%s (%lld ms, attempt %d)", c->method, sb_str(&u), c->status,
			  rc != CURLE_OK ? " " : "", rc != CURLE_OK ? c->err : "", (long long)(now - c->started_ms),
			  c->attempts);
		sb_free(&u);
	}

	/* An untrusted TLS peer does not become trusted by asking again. */
	if (rc == CURLE_PEER_FAILED_VERIFICATION || rc == CURLE_SSL_CERTPROBLEM || rc == CURLE_SSL_CACERT_BADFILE) {
		pacer_stop(p, "the TLS certificate of %s is not trusted: %s", c->url, c->err);
		c->resp_len = c->rbuf.len;
		c->resp = sb_steal(&c->rbuf);
		finish(h, c, CALL_STOPPED);
		return;
	}
	/* A request that surely never reached the platform may always be sent again. */
	bool never_sent = rc == CURLE_COULDNT_CONNECT || rc == CURLE_COULDNT_RESOLVE_HOST;
	int64_t delay = -1;
	if (rc == CURLE_OK && status != 429)
		count_accepted(p, now);
	if (rc == CURLE_OK)
		follow_rate_headers(p, c, now);
	if (rc == CURLE_OK && status == 429) {
		p->stats.throttled++;
		c->throttled++;
		int64_t ra = retry_after_ms(c->retry_after, now_wall());
		if (ra > p->max_wait_ms) {
			char mw[32];
			pacer_stop(p, "the platform asks to wait %lld s (Retry-After), more than max_wait %s",
				   (long long)((ra + 999) / 1000), duration_text(p->max_wait_ms, mw, sizeof mw));
			snprintf(c->err, sizeof c->err, "HTTP 429: the platform asks to wait %lld s (Retry-After)",
				 (long long)((ra + 999) / 1000));
			c->resp_len = c->rbuf.len;
			c->resp = sb_steal(&c->rbuf);
			finish(h, c, CALL_STOPPED);
			return;
		}
		delay = ra >= 0 ? ra : backoff_ms(c->throttled - 1, 1000, 60000, http_jitter(h));
		if (delay > p->max_wait_ms)
			delay = p->max_wait_ms;
		if (delay < 1000 && ra < 0)
			delay = 1000;
		/* Over the limit: slow down to what the platform accepts (once per second: the
		 * 429s of requests already in flight say the same thing). */
		if (p->bucket.rate > 0 && ra != 0 && now - p->last_adapt_ms >= 1000) {
			/* (Retry-After: 0 says "go on", not "slow down".) */
			double r = adapt_after_429(p->bucket.rate, accepted_last_second(p, now), p->base_rate * 0.1);
			if (r < p->bucket.rate) {
				log_debug("connector %s: 429, pacing down from %.1f to %.1f requests/s", p->name,
					  p->bucket.rate, r);
				bucket_set_rate(&p->bucket, r, now);
			}
			p->last_adapt_ms = now;
		}
		p->last_429_ms = now;
		/* The throttled request waits as told; a long wait is a quota window: everything waits. */
		if (delay > 2000 && now + delay > p->pause_until)
			p->pause_until = now + delay;
		if (c->throttled > p->max_throttled) {
			snprintf(c->err, sizeof c->err, "still throttled (429) after %d tries", c->throttled);
			delay = -1;
		}
	} else if ((rc != CURLE_OK || retryable_status(status)) && (c->idempotent || never_sent) && !oversized) {
		if (c->attempts < p->max_attempts)
			delay = backoff_ms(c->attempts - 1, 1000, 30000, http_jitter(h));
		if (rc == CURLE_OK && delay < 0)
			snprintf(c->err, sizeof c->err, "HTTP %ld after %d attempts", status, c->attempts);
	}
	if (delay >= 0 && !p->stopped) {
		p->stats.retries++;
		c->not_before = now + delay;
		enqueue(p, c);
		return;
	}
	if (rc == CURLE_OK && status != 429 && !retryable_status(status)) {
		c->resp_len = c->rbuf.len;
		c->resp = sb_steal(&c->rbuf);
		finish(h, c, CALL_ANSWERED);
		return;
	}
	if (rc == CURLE_OK && !c->err[0])
		snprintf(c->err, sizeof c->err, "HTTP %ld", status);
	c->resp_len = c->rbuf.len;
	c->resp = sb_steal(&c->rbuf);
	finish(h, c, p->stopped ? CALL_STOPPED : CALL_TRANSIENT);
}

static void run_turn(struct http *h, int max_wait_ms);

void http_run(struct http *h, int max_wait_ms)
{
	if (h->depth) {
		/* A blocking read from inside an answer's callback: a connector bug, never a platform's. */
		fprintf(stderr, "hrsync: http_run re-entered from a callback (a blocking read in an answer's callback)\n");
		abort();
	}
	h->depth++;
	run_turn(h, max_wait_ms);
	h->depth--;
}

static void run_turn(struct http *h, int max_wait_ms)
{
	for (struct pacer *p = h->pacers; p; p = p->next_pacer)
		recover_rate(p, now_ms());
	int64_t wait = dispatch(h);
	curl_multi_perform(h->multi, &h->running);
	CURLMsg *m;
	int left;
	bool any = false;
	while ((m = curl_multi_info_read(h->multi, &left))) {
		if (m->msg == CURLMSG_DONE) {
			completed(h, m->easy_handle, m->data.result);
			any = true;
		}
	}
	if (any)
		return;  /* callbacks may have queued work: dispatch again before sleeping */
	if (wait > max_wait_ms)
		wait = max_wait_ms;
	if (!http_busy(h))
		return;
	int numfds;
	curl_multi_poll(h->multi, NULL, 0, (int)(wait < 1 ? 1 : wait), &numfds);
	curl_multi_perform(h->multi, &h->running);
	while ((m = curl_multi_info_read(h->multi, &left)))
		if (m->msg == CURLMSG_DONE)
			completed(h, m->easy_handle, m->data.result);
}

void http_call_sync(struct http *h, struct http_call *c)
{
	http_submit(h, c, 0);
	while (c->outcome == CALL_PENDING) {
		if (http_stop_requested(h)) {
			http_cancel(h, c, "asked to stop");
			return;
		}
		http_run(h, 100);
	}
}

void http_set_stop(struct http *h, volatile sig_atomic_t *flag)
{
	h->stop = flag;
}

bool http_stop_requested(const struct http *h)
{
	return h->stop && *h->stop;
}

void http_cancel(struct http *h, struct http_call *c, const char *why)
{
	if (c->outcome != CALL_PENDING)
		return;
	struct pacer *p = c->pacer;
	struct http_call *prev = NULL, *q = p->head;
	while (q && q != c) {
		prev = q;
		q = q->next;
	}
	snprintf(c->err, sizeof c->err, "%s", why);
	if (q) {
		unlink_call(p, prev, c);
	} else if (c->easy) {
		/* An answer that would come after the stop is not waited for (a read; a write's is
		 * looked for by the next run, as after a timeout). */
		curl_multi_remove_handle(h->multi, c->easy);
		curl_easy_cleanup(c->easy);
		c->easy = NULL;
		p->in_flight--;
	} else {
		c->outcome = CALL_STOPPED; /* taken back by its submitter (before_send): not counted as active */
		c->done(c);
		return;
	}
	finish(h, c, CALL_STOPPED);
}
