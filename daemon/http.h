/*
 * http — every request to a platform goes through here: one libcurl multi handle for
 * the whole process, and one pacer per connector that enforces its rate limit (token
 * bucket), its max_in_flight, the retry policy (docs/design.md, "Talking to platforms") and its circuit breaker.
 *
 * Retry policy: 429 waits for Retry-After (or backoff) and pauses the whole connector;
 * 5xx, 408 and transport errors are retried with full-jitter backoff, but only for
 * idempotent calls — a POST that may have reached the platform is handed back to its
 * connector, which looks for what it may have created before trying again.
 *
 * A platform's wait is capped: a Retry-After longer than the connector's max_wait stops the
 * connector for the run instead of holding it (a day's Retry-After is a quota spent, or a
 * platform that wants hrsync gone). An answer larger than MAX_BODY, or a header line
 * longer than libcurl takes, fails at once, says so, and is not asked for again.
 *
 * Stop requests: http_set_stop() gives the flag a signal handler sets; a loop that waits for
 * one call (a blocking read) checks it between turns and ends the call as stopped
 * (http_cancel), so SIGTERM is never held up by a slow platform.
 *
 * Ownership: the submitter owns a struct http_call and must keep it alive until its
 * done() callback has run; http_call_reset() frees what a call accumulated.
 * Secrets: headers are never logged; only method, URL path and status are. Curl's error
 * texts and stop reasons go through secret_redact() (they may quote what the platform sent).
 */
#ifndef HRSYNC_HTTP_H
#define HRSYNC_HTTP_H

#include <curl/curl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

#include "throttle.h"
#include "util.h"

enum call_outcome {
	CALL_PENDING,
	CALL_ANSWERED,   /* the platform gave a final answer: look at status (2xx, 4xx...) */
	CALL_TRANSIENT,  /* gave up after retries: 429s, 5xx, timeouts, dropped connections */
	CALL_STOPPED,    /* the connector was stopped (circuit breaker, credentials refused) */
};

struct pacer_stats {
	long requests;       /* attempts sent */
	long throttled;      /* 429 answers */
	long retries;
	long failures;       /* calls that ended CALL_TRANSIENT */
};

struct http_call;

struct pacer {
	char *name;
	struct bucket bucket;
	struct span span;        /* the configured limit's window, with SPAN_JITTER_MS of margin */
	int max_in_flight, in_flight;
	long timeout_ms;
	int max_attempts;        /* attempts for 5xx/408/transport on idempotent calls */
	int max_throttled;       /* 429s one call may absorb before it counts as failed */
	int breaker_threshold;   /* reads failing in a row before the connector stops (writes: 3 more) */
	int64_t max_wait_ms;     /* the longest Retry-After honoured; a longer one stops the connector */
	bool allow_http;         /* curl may speak http besides https: the connector's allow_insecure_http
				  * (accepted by config.c for a base_url on this machine only) */
	int64_t pause_until;     /* a 429 with a long Retry-After (a quota window) pauses the whole connector */
	double base_rate;        /* the configured rate; the bucket's may be lower after 429s */
	int64_t last_429_ms, last_adapt_ms;
	int64_t acc_second;      /* accepted answers: this second's count and the last one's */
	long acc_cur, acc_prev;
	int failed_reads, failed_writes;   /* in a row */
	/* What the platform's rate headers allow until its window ends (follow_rate_headers). */
	double hdr_rate;
	int64_t hdr_until;
	long hdr_paused;         /* times the window was spent and the connector waited for its reset */
	bool stopped;
	char stop_reason[256];
	struct pacer_stats stats;
	struct http_call *head, *tail;   /* waiting calls, FIFO */
	struct pacer *next_pacer;
};

struct http_call {
	struct pacer *pacer;
	const char *method;          /* static string: "GET", "POST", ... */
	char *url;                   /* owned */
	char *body;                  /* owned, may be NULL */
	size_t body_len;
	struct curl_slist *headers;  /* owned */
	const char *body_type;       /* the body's media type (static), kept for a resend */
	unsigned auth_gen;           /* the submitter's: which credentials the headers carry */
	unsigned waited_gen;         /* the submitter's: the credentials this call waited for (0: none) */
	/*
	 * Called just before the request goes out (after pacing, each attempt), to attach
	 * credentials that may have changed while it waited. false: the call is not sent; the
	 * hook took it back (it waits for a token) and will submit it again.
	 */
	bool (*before_send)(struct http_call *call);
	bool idempotent;
	void (*done)(struct http_call *call);
	void *arg;

	/* the outcome, valid in done() */
	enum call_outcome outcome;
	long status;
	char *resp;                  /* NUL-terminated body */
	size_t resp_len;
	char *content_type;
	char err[CURL_ERROR_SIZE + 64];
	int attempts, throttled;
	bool timed_out;              /* the last attempt ran out of time: the platform may still be at it */
	int64_t elapsed_ms;

	/* internal */
	bool too_large;              /* the body passed MAX_BODY: not asked for again */
	int sends;                   /* times libcurl was about to send this attempt (on_prereq) */
	int span_slot;               /* where the pacer's window noted this attempt (span_note) */
	int64_t span_noted;
	int64_t not_before, started_ms, first_ms;
	CURL *easy;
	struct sb rbuf;
	char *retry_after;
	long long rl_remaining, rl_reset;   /* the answer's rate headers (-1: none) */
	bool rl_epoch;                      /* rl_reset is epoch seconds (X-RateLimit-Reset) */
	struct http_call *next;
	struct http *http;
};

/*
 * The share of a connector's rate_limit its pacer sends at. A limit that is a whole number a
 * second is guarded by the span (throttle.h: at most the limit in any 1 s + 15 ms of send
 * times, 98.5% of it, whatever the loop's delays) and the bucket only spaces the requests, at
 * 99.5%; any other limit by the bucket alone, 1.5% under it (issue 18: 97% before).
 */
#define PACE_SHARE 0.985
#define PACE_SHARE_SPANNED 0.995  /* the bucket's share where a 1-second span guards the limit */
#define PACE_SLACK 0.01     /* the bucket holds 1 + PACE_SLACK x limit tokens, 1.5 at most (http.c pacer_init) */

struct http;

/*
 * libcurl's process-wide setup (OpenSSL's with it, 3 to 4 ms), done once: by the first
 * http_new, or earlier by a caller with time to spare (a run, while the server starts its
 * database sessions). false if it failed.
 */
bool http_init_once(void);
struct http *http_new(void);
void http_free(struct http *h);
void http_add_pacer(struct http *h, struct pacer *p);
/* max_wait_ms <= 0: PACER_MAX_WAIT_MS. */
#define PACER_MAX_WAIT_MS (5 * 60 * 1000L)
void pacer_init(struct pacer *p, const char *name, double rate, int max_in_flight, long timeout_ms,
		long max_wait_ms);
void pacer_free(struct pacer *p);
void pacer_stop(struct pacer *p, const char *fmt, ...) PRINTF_LIKE(2, 3);

/* Queue a call (delay_ms > 0 holds it back that long). done() runs from http_run(). */
void http_submit(struct http *h, struct http_call *call, int64_t delay_ms);
/*
 * One turn of the loop: start what may start, wait at most max_wait_ms, finish what
 * finished. Never from a done() callback: a blocking read inside an answer's callback
 * would run answers out of order; http_run aborts when it is re-entered.
 */
void http_run(struct http *h, int max_wait_ms);

/* A number in [0, 1) for backoff jitter (not for anything secret). */
double http_jitter(struct http *h);
/* Submit and run the loop until this call is done (other calls progress meanwhile), or a
 * stop is requested: then it ends CALL_STOPPED. */
void http_call_sync(struct http *h, struct http_call *call);
/* The flag a signal handler sets to stop the run (NULL: none). */
void http_set_stop(struct http *h, volatile sig_atomic_t *flag);
bool http_stop_requested(const struct http *h);
/*
 * End a pending call now as CALL_STOPPED with why in err (done() runs): taken out of its
 * queue, or aborted in flight. A call its submitter took back (before_send) is only marked:
 * the submitter must have forgotten it first.
 */
void http_cancel(struct http *h, struct http_call *call, const char *why);
bool http_busy(const struct http *h);
/* Free the call's request and answer buffers; the struct itself stays the caller's. */
void http_call_reset(struct http_call *call);
/* The headers every request carries: User-Agent, and Accept with the media type given. */
struct curl_slist *http_base_headers(const char *accept);

#endif
