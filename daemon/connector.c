/*
 * connector — the registry of connector types, and a request's plumbing: headers and
 * credentials (a static key, or a client-credentials token that requests wait for), the
 * answer read and handed to the op's step, blocking GETs for prepare and lookups, and
 * the platform's error message (see connector.h).
 */
#define _GNU_SOURCE
#include "connector.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "batch.h"
#include "kit.h"
#include "log.h"
#include "throttle.h"

/* ---- the registry: adding a connector is one line here ---- */

#define CONNECTORS(X) X(peopleforce) X(personio) X(troops) X(workelo) X(teamtailor)

#define DECLARE(n) extern const struct connector_type n##_connector;
CONNECTORS(DECLARE)
#define ENTRY(n) &n##_connector,
static const struct connector_type *const types[] = {CONNECTORS(ENTRY)};

const struct connector_type *connector_type_find(const char *name)
{
	for (size_t i = 0; i < ARRAY_LEN(types); i++)
		if (streq(types[i]->name, name))
			return types[i];
	return NULL;
}

const char *const *connector_type_names(void)
{
	static const char *names[ARRAY_LEN(types) + 1];
	for (size_t i = 0; i < ARRAY_LEN(types); i++)
		names[i] = types[i]->name;
	return names;
}

const struct conn_entity *connector_entity(const struct connector_type *t, const char *name)
{
	for (const struct conn_entity *e = t->entities; e && e->name; e++)
		if (streq(e->name, name))
			return e;
	return NULL;
}

const char *connector_entity_group(const struct conn_entity *e, size_t i)
{
	size_t n = 0;
	while (e->nested && e->nested[n])
		n++;
	if (i < n)
		return e->nested[i];
	for (size_t k = 0; e->subres && e->subres[k]; k++)
		if (k == i - n)
			return e->subres[k]->name;
	return NULL;
}

bool connector_entity_nested(const struct conn_entity *e, const char *name)
{
	for (size_t i = 0; connector_entity_group(e, i); i++)
		if (streq(connector_entity_group(e, i), name))
			return true;
	return false;
}

int connector_option_index(const struct connector_type *t, const char *name)
{
	for (int i = 0; t->options && t->options[i].name; i++)
		if (streq(t->options[i].name, name))
			return i;
	return -1;
}

struct connector *connector_new(const struct conn_cfg *cfg, struct http *http, char **err)
{
	struct connector *c = xcalloc(1, sizeof *c);
	c->cfg = cfg;
	c->type = cfg->type;
	c->name = cfg->name;
	c->http = http;
	double rate = cfg->rate > 0 ? cfg->rate : cfg->type->default_rate;
	pacer_init(&c->pacer, cfg->name, rate, cfg->max_in_flight, cfg->timeout_ms, cfg->max_wait_ms);
	c->pacer.allow_http = cfg->allow_insecure_http;
	http_add_pacer(http, &c->pacer);
	if (c->type->priv_size)
		c->priv = xcalloc(1, c->type->priv_size);
	if (c->type->init && !c->type->init(c, err)) {
		connector_free(c);
		return NULL;
	}
	return c;
}

void connector_free(struct connector *c)
{
	if (!c)
		return;
	if (c->type->destroy)
		c->type->destroy(c);
	batch_free(c);
	free(c->priv);
	secret_free(&c->token.value);
	http_call_reset(&c->token.call);
	free(c->token.waiting);
	pacer_free(&c->pacer);
	free(c);
}

const struct secret *conn_secret(const struct connector *c, const char *option)
{
	int i = connector_option_index(c->type, option);
	return i >= 0 ? &c->cfg->secrets[i] : NULL;
}

static const char *conn_string(const struct connector *c, const char *option)
{
	int i = connector_option_index(c->type, option);
	return i >= 0 ? c->cfg->strings[i] : NULL;
}

/* ---- headers and credentials ---- */

#define FORM_TYPE "application/x-www-form-urlencoded"

static const char *media_type(const struct connector *c)
{
	return c->type->media_type ? c->type->media_type : "application/json";
}

static void add_header(struct curl_slist **h, const char *fmt, const char *value)
{
	char *line = xasprintf(fmt, value);
	*h = curl_slist_append(*h, line);
	explicit_bzero(line, strlen(line));
	free(line);
}

/* The call's headers, rebuilt (a resend after a new token replaces the old Authorization). */
static void set_headers(struct connector *c, struct http_call *call, const char *credential)
{
	curl_slist_free_all(call->headers);
	call->headers = http_base_headers(media_type(c));
	if (call->body_type) {
		char ct[128];
		snprintf(ct, sizeof ct, "Content-Type: %s", call->body_type);
		call->headers = curl_slist_append(call->headers, ct);
	}
	if (credential && c->type->auth.header)
		add_header(&call->headers, c->type->auth.header, credential);
	if (c->type->headers)
		c->type->headers(c, &call->headers);
}

/* End a call that never went out (credentials missing or refused): as the pacer would. */
static void refuse_call(struct http_call *call, const char *why)
{
	call->outcome = CALL_STOPPED;
	snprintf(call->err, sizeof call->err, "credentials refused: %s", why);
	call->done(call);
}

static void token_fetch(struct connector *c);

static struct connector *owner(const struct http_call *call)
{
	return (struct connector *)((char *)call->pacer - offsetof(struct connector, pacer));
}

/*
 * Just before a request goes out: the live token, or the request waits for the next one
 * (fetched without blocking, one request through the same pacer). A request that waited
 * in the queue past its token's renewal time goes with the new one; a request that waited
 * for a token goes with that token, however short its life (or tokens would be fetched
 * for ever when each lives less than the queue's wait).
 */
static bool attach_token(struct http_call *call)
{
	struct connector *c = owner(call);
	struct token *t = &c->token;
	/* A token that lives less than the wait for a new one is used for a second anyway. */
	int64_t now = now_ms();
	bool waited_for = call->waited_gen && call->waited_gen == t->gen;
	call->waited_gen = 0;
	if (secret_present(&t->value) && !t->fetching &&
	    (waited_for || now < t->renew_ms || now < t->got_ms + 1000)) {
		set_headers(c, call, secret_value(&t->value));
		call->auth_gen = t->gen;
		return true;
	}
	grow(&t->waiting, &t->capwaiting, t->nwaiting + 1, sizeof *t->waiting);
	t->waiting[t->nwaiting++] = call;
	if (!t->fetching)
		token_fetch(c);
	return false;
}

/* Send a call with the connector's credentials: a static key now, a token when it goes out. */
static void conn_submit(struct connector *c, struct http_call *call, int64_t delay_ms)
{
	const struct conn_auth *a = &c->type->auth;
	if (a->client_id) {
		set_headers(c, call, NULL);
		call->before_send = attach_token;
		http_submit(c->http, call, delay_ms);
		return;
	}
	const struct secret *key = a->key ? conn_secret(c, a->key) : NULL;
	if (a->key && !secret_present(key)) {
		pacer_stop(&c->pacer, "credentials refused: no %s", a->key);
		refuse_call(call, "no API key");
		return;
	}
	set_headers(c, call, key ? secret_value(key) : NULL);
	http_submit(c->http, call, delay_ms);
}

/* Wipe every string of a parsed answer before it is freed (it holds a token). */
static void jv_wipe(struct jv *v)
{
	if (!v)
		return;
	if (v->t == JV_STR || v->t == JV_NUM)
		explicit_bzero(v->u.str.s, v->u.str.len);
	else if (v->t == JV_ARR)
		for (size_t i = 0; i < v->u.arr.n; i++)
			jv_wipe(v->u.arr.v[i]);
	else if (v->t == JV_OBJ)
		for (size_t i = 0; i < v->u.obj.n; i++)
			jv_wipe(v->u.obj.v[i]);
}

static void wipe_call(struct http_call *call)
{
	if (call->body)
		explicit_bzero(call->body, call->body_len);
	if (call->resp)
		explicit_bzero(call->resp, call->resp_len);
	http_call_reset(call);
}

/* The token from a 2xx answer; false + *err when it carries none. */
static bool token_take(struct connector *c, const struct http_call *call, char **err)
{
	struct token *t = &c->token;
	struct jv *j = jv_parse(call->resp ? call->resp : "", call->resp_len, NULL, 0);
	const char *tok = jv_obj_str(j, "access_token");
	const struct jv *ttl = jv_obj_get(j, "expires_in");
	double secs = ttl && ttl->t == JV_INT ? (double)ttl->u.i
		      : ttl && (ttl->t == JV_NUM || ttl->t == JV_STR) ? atof(ttl->u.str.s) : 86400.0;
	bool ok = tok && *tok;
	if (ok) {
		char origin[160];
		snprintf(origin, sizeof origin, "%s access token", c->name);
		secret_set(&t->value, tok, origin); /* redacted from what the platform says from now on */
		/* Renew a minute early; a token that lives less than 4 minutes at 3/4 of its life. */
		double margin = secs > 240 ? 60 : secs / 4;
		t->got_ms = now_ms();
		t->renew_ms = t->got_ms + (int64_t)((secs - margin) * 1000);
		t->gen++;
		log_debug("connector %s: new access token, valid %.0f s", c->name, secs);
	} else {
		*err = xasprintf("POST %s: the answer carries no access_token", c->type->auth.token_path);
	}
	jv_wipe(j);
	jv_free(j);
	return ok;
}

/* The token request is over (err NULL: a new token): the waiting calls go out, or fail. */
static void token_settled(struct connector *c, const char *err)
{
	struct token *t = &c->token;
	t->fetching = false;
	if (!err && t->after_401)
		log_info("connector %s: the access token was refused (401); renewed it", c->name);
	t->after_401 = false;
	if (err)
		pacer_stop(&c->pacer, "credentials refused: %s", err);
	/* Any waiting call may queue more: take the list first. */
	struct http_call **w = t->waiting;
	size_t n = t->nwaiting;
	t->waiting = NULL;
	t->nwaiting = t->capwaiting = 0;
	for (size_t i = 0; i < n; i++) {
		if (err) {
			refuse_call(w[i], err);
		} else {
			w[i]->waited_gen = t->gen;
			conn_submit(c, w[i], 0);
		}
	}
	free(w);
}

static void token_done(struct http_call *call)
{
	struct connector *c = call->arg;
	const char *where = c->type->auth.token_path ? c->type->auth.token_path : "the token URL";
	char *err = NULL;
	if (call->outcome != CALL_ANSWERED) {
		err = xasprintf("POST %s: %s", where, call->err);
	} else if (call->status < 200 || call->status >= 300) {
		char *m = platform_message(c->type, call->resp, call->resp_len);
		err = xasprintf("POST %s: HTTP %ld%s%s", where, call->status, m ? ": " : "", m ? m : "");
		free(m);
	} else {
		token_take(c, call, &err);
	}
	wipe_call(call);
	token_settled(c, err);
	free(err);
}

static void token_fetch(struct connector *c)
{
	const struct conn_auth *a = &c->type->auth;
	struct token *t = &c->token;
	const struct secret *id = conn_secret(c, a->client_id), *sec = conn_secret(c, a->client_secret);
	const char *url = a->token_url ? conn_string(c, a->token_url) : NULL;
	if (!url || !*url)
		url = a->token_default;
	t->fetching = true;
	http_call_reset(&t->call);
	if (!secret_present(id) || !secret_present(sec)) {
		token_settled(c, "no client_id or client_secret");
		return;
	}
	struct sb body = {0};
	form_add(&body, "grant_type", "client_credentials");
	form_add(&body, "client_id", secret_value(id));
	form_add(&body, "client_secret", secret_value(sec));
	t->call.pacer = &c->pacer;
	t->call.method = "POST";
	/* The credentials travel in the body only: never in a URL, which debug lines show. */
	t->call.url = url ? xstrdup(url) : xasprintf("%s%s", c->cfg->base_url, a->token_path);
	t->call.idempotent = true; /* asking twice only gives a second token */
	t->call.body_type = FORM_TYPE;
	t->call.body_len = body.len;
	t->call.body = sb_steal(&body);
	t->call.done = token_done;
	t->call.arg = c;
	set_headers(c, &t->call, NULL);
	http_submit(c->http, &t->call, 0);
}

/*
 * A 401: the token expired or was revoked. The request goes again with the next token;
 * the first 401 to a token renews it, and the requests that meet the same 401 (they were
 * in flight or queued with it) wait for that one renewal. A token refused before any
 * request was accepted with it, three times in a row, means the platform will not take
 * these credentials: the connector stops. false: not a token's 401 (a static key).
 */
#define FRESH_TOKENS_REFUSED 3

static bool renew_on_401(struct connector *c, struct http_call *call)
{
	struct token *t = &c->token;
	if (!c->type->auth.client_id || call->outcome != CALL_ANSWERED)
		return false;
	if (call->status != 401) {
		if (call->auth_gen == t->gen && secret_present(&t->value))
			t->refused_in_row = 0; /* this token works */
		return false;
	}
	if (call->auth_gen == t->gen && !t->fetching) {
		if (secret_present(&t->value) && ++t->refused_in_row >= FRESH_TOKENS_REFUSED)
			return false;
		secret_free(&t->value);
		t->renew_ms = 0;
		t->after_401 = true;
	}
	free(call->resp);
	call->resp = NULL;
	call->resp_len = 0;
	call->status = 0;
	http_submit(c->http, call, 0);
	return true;
}

void conn_send_call(struct connector *c, struct http_call *call)
{
	conn_submit(c, call, 0);
}

bool conn_resend_on_401(struct connector *c, struct http_call *call)
{
	return renew_on_401(c, call);
}

/* ---- answers that stop the connector in the platform's words (the type's stops) ---- */

/* true when this answer (a 4xx) stopped the connector (its reason is the pacer's stop_reason). */
static bool platform_stops(struct connector *c, const struct http_call *call)
{
	if (!c->type->stops || call->outcome != CALL_ANSWERED || call->status < 400 || call->status >= 500)
		return false;
	struct jv *j = call->resp && call->resp_len ? jv_parse(call->resp, call->resp_len, NULL, 0) : NULL;
	char *why = c->type->stops(c, call->status, j);
	jv_free(j);
	if (!why)
		return false;
	pacer_stop(&c->pacer, "%s", why);
	free(why);
	return true;
}

/* ---- an op's requests ---- */

static void after_call(struct http_call *call);

/* The step's doing with the entity's name for %s ("updating the %s" -> "updating the employee"). Caller frees. */
static char *doing_text(const struct op *op, const char *doing)
{
	const char *at = doing ? strstr(doing, "%s") : NULL;
	if (!doing)
		return xstrdup("writing the record");
	if (!at)
		return xstrdup(doing);
	const char *what = op->kit.sub && op->kit.step && op->kit.step->sub ? op->kit.sub->what
			   : op->ent && op->ent->what ? op->ent->what : "record";
	return xasprintf("%.*s%s%s", (int)(at - doing), doing, what, at + 2);
}

static void send_prepared(struct op *op, const struct step *st, const char *method, char *url, char *body,
			  const char *body_type)
{
	struct connector *c = op->conn;
	http_call_reset(&op->call);
	op->kit.step = st;
	if (!url) {
		free(body);
		char *d = doing_text(op, st->doing);
		op_finish(op, OPR_TRANSIENT, "%s: no platform id to send it to", d);
		free(d);
		return;
	}
	op->call.pacer = &c->pacer;
	op->call.method = method;
	op->call.url = xasprintf("%s%s", c->cfg->base_url, url);
	free(url);
	op->call.idempotent = strcmp(method, "POST") != 0;
	op->call.body = body;
	op->call.body_len = body ? strlen(body) : 0;
	op->call.body_type = body ? body_type : NULL;
	op->call.done = after_call;
	op->call.arg = op;
	conn_submit(c, &op->call, 0);
}

void op_send_url(struct op *op, const struct step *st, const char *method, char *url, struct jv *body)
{
	char *text = body ? jv_dumps(body) : NULL;
	jv_free(body);
	send_prepared(op, st, method, url, text, media_type(op->conn));
}

void op_send(struct op *op, const struct step *st, const char *method, const char *path, struct jv *body)
{
	op_send_url(op, st, method, url_expand(path, op->platform_id, NULL, NULL), body);
}

void op_get(struct op *op, const struct step *st, const char *path, const char *const *query)
{
	op_send_url(op, st, "GET", url_expand(path, op->platform_id, NULL, query), NULL);
}

void op_send_form(struct op *op, const struct step *st, const char *method, const char *path, char *form)
{
	send_prepared(op, st, method, url_expand(path, op->platform_id, NULL, NULL), form, FORM_TYPE);
}

/* What the request was, for a transient failure: "POST /employees: timeout". */
static void finish_transient(struct op *op, const struct step *st)
{
	struct http_call *call = &op->call;
	if (!call->idempotent) {
		char *d = doing_text(op, st->doing);
		op_finish(op, OPR_TRANSIENT, "%s: %s", d, call->err);
		free(d);
		return;
	}
	op_finish(op, OPR_TRANSIENT, "%s %s: %s", call->method, call->url + strlen(op->conn->cfg->base_url), call->err);
}

/*
 * A 2xx whose body is not JSON (a proxy's HTML page, a cut-off answer) proves nothing:
 * the platform may or may not have acted. It is a transient failure, and a create that
 * meets one looks for the record before sending again.
 */
static void parse_answer(struct op *op)
{
	struct http_call *call = &op->call;
	jv_free(op->answer);
	op->answer = NULL;
	if (call->outcome != CALL_ANSWERED || call->status < 200 || call->status >= 300 || !call->resp_len)
		return;
	char perr[200];
	op->answer = jv_parse(call->resp, call->resp_len, perr, sizeof perr);
	if (!op->answer) {
		const char *ct = call->content_type ? call->content_type : "no content type";
		snprintf(call->err, sizeof call->err, "HTTP %ld but the answer is not JSON (%s): %s", call->status, ct,
			 perr);
		call->outcome = CALL_TRANSIENT;
	}
}

bool op_id_ok(struct op *op, unsigned shapes, const char *what, const char *doing, const char *id)
{
	if (id_valid(shapes, id))
		return true;
	char *shown = id_shown(id);
	op_finish(op, OPR_REFUSED,
		  "%s: the platform answered the id %s, which is not a %s %s id (%s); it was neither stored nor used in a request",
		  doing, shown, op->conn->type->name, what, id_shape_name(shapes));
	free(shown);
	return false;
}

/* The answer to a create: the new id, or a transient failure when it carries none. */
static bool take_created_id(struct op *op, const struct step *st)
{
	char *(*id_of)(const struct jv *) = op->ent->created_id ? op->ent->created_id : kit_answer_id;
	char *id = op->answer ? id_of(op->answer) : NULL;
	char *d = doing_text(op, st->doing);
	if (!id)
		op_finish(op, OPR_TRANSIENT, "%s: %s", d, op->answer ? "the answer carries no id" : "empty answer");
	bool ok = id && op_id_ok(op, op->ent->ids, op->ent->what ? op->ent->what : "record", d, id);
	free(d);
	if (!ok) {
		free(id);
		return false;
	}
	free(op->platform_id);
	op->platform_id = id;
	op->main_done = true;
	return true;
}

static void after_call(struct http_call *call)
{
	struct op *op = call->arg;
	struct connector *c = op->conn;
	const struct step *st = op->kit.step;
	op->http_status = call->status;
	if (renew_on_401(c, call))
		return;
	if (platform_stops(c, call)) {
		op_finish(op, OPR_STOPPED, "%s", c->pacer.stop_reason);
		return;
	}
	if (call->outcome == CALL_ANSWERED && (call->status == 401 || call->status == 403)) {
		char *m = platform_message(c->type, call->resp, call->resp_len);
		pacer_stop(&c->pacer, "credentials refused (HTTP %ld%s%s)", call->status, m ? ": " : "", m ? m : "");
		op_finish(op, OPR_STOPPED, "credentials refused (HTTP %ld)", call->status);
		free(m);
		return;
	}
	parse_answer(op);
	if (call->outcome == CALL_STOPPED) {
		op_finish(op, OPR_STOPPED, "%s", call->err);
		return;
	}
	if (call->outcome == CALL_TRANSIENT) {
		/*
		 * The platform may have acted before the answer was lost: look again, then send;
		 * as many sends as an idempotent request gets.
		 */
		if (!call->idempotent && st->lost) {
			if (!op_retry_later(op, st->lost, op->conn->pacer.max_attempts))
				finish_transient(op, st);
			return;
		}
		finish_transient(op, st);
		return;
	}
	long s = call->status;
	if (s >= 200 && s < 300) {
		if (st->creates && !take_created_id(op, st))
			return;
		if (st->body && !op->answer) {
			char *d = doing_text(op, st->doing);
			op_finish(op, OPR_TRANSIENT, "%s: empty answer (HTTP %ld)", d, s);
			free(d);
			return;
		}
		if (st->ok)
			st->ok(op);
		else
			op_finish(op, OPR_OK, NULL);
		return;
	}
	if (s == 404 && st->gone) {
		st->gone(op);
		return;
	}
	if (s >= 400 && s < 500 && s != 404 && st->refused) {
		st->refused(op);
		return;
	}
	char *d = doing_text(op, st->doing);
	op_fail_answer(op, d);
	free(d);
}

void op_finish(struct op *op, enum op_result r, const char *fmt, ...)
{
	op->result = r;
	free(op->message);
	op->message = NULL;
	if (fmt) {
		struct sb b = {0};
		va_list ap;
		va_start(ap, fmt);
		sb_vprintf(&b, fmt, ap);
		va_end(ap);
		op->message = sb_steal(&b);
		/* Connectors quote the platform (its meta errors, a number it lists): no secret goes to failures. */
		secret_redact(op->message);
	}
	op->done(op);
}

void op_fail_answer(struct op *op, const char *doing)
{
	char *m = platform_message(op->conn->type, op->call.resp, op->call.resp_len);
	long s = op->call.status;
	enum op_result r = (s >= 400 && s < 500 && s != 408 && s != 429) ? OPR_REFUSED : OPR_TRANSIENT;
	op_finish(op, r, "%s: HTTP %ld%s%s", doing, s, m ? ": " : "", m ? m : "");
	free(m);
}

static void retry_timer(struct http_call *call)
{
	struct op *op = call->arg;
	op->kit.live = true; /* what the lost request made is in no index */
	op->kit.timer(op);
}

bool op_retry_later(struct op *op, void (*step)(struct op *op), int max_attempts)
{
	if (++op->attempt >= max_attempts)
		return false;
	/*
	 * A request that ran out of time may still be at work on the platform: looking for
	 * what it made before it is done would find nothing and send it again. The first look
	 * waits one more timeout.
	 */
	/* Each op its own jitter: records that failed together must not come back together. */
	int64_t delay = backoff_ms(op->attempt - 1, 250, 10000, http_jitter(op->conn->http));
	if (op->call.timed_out && delay < op->conn->pacer.timeout_ms)
		delay = op->conn->pacer.timeout_ms;
	/* A zero-cost timer: a call that never goes out. The pacer's queue holds it back. */
	http_call_reset(&op->call);
	op->kit.timer = step;
	op->call.pacer = &op->conn->pacer;
	op->call.done = retry_timer;
	op->call.arg = op;
	op->call.method = NULL; /* marks a timer */
	http_submit(op->conn->http, &op->call, delay);
	return true;
}

/* An item of a lookup list, as the lookup sees it, kept (once per value of l->once). */
static bool lookup_item(void *ud, const struct jv *listed)
{
	struct lookup_list *l = ud;
	struct jv *it = l->item ? l->item(l, listed) : jv_copy(listed);
	if (!it)
		return true;
	if (l->once) {
		char *v = jv_scalar_text(jv_obj_get(it, l->once));
		bool seen = v && strmap_get(&l->seen, v, NULL);
		if (v && !seen)
			strmap_put(&l->seen, v, "");
		free(v);
		if (seen) {
			jv_free(it);
			return true;
		}
	}
	jv_arr_push(l->items, it);
	return true;
}

void connector_lists(struct lookup_list *ls, size_t n)
{
	struct list_read *reads = xcalloc(n + 1, sizeof *reads);
	size_t nr = 0;
	for (size_t i = 0; i < n; i++) {
		struct lookup_list *l = &ls[i];
		bool known = true;
		if (l->c->type->list)
			known = l->c->type->list(l->c, l, &l->err);
		else
			l->path = xasprintf("/%s", l->resource);
		if (!known)
			continue;
		l->items = jv_arr();
		reads[nr++] = (struct list_read){.c = l->c, .pg = l->pager, .path = l->path, .fn = lookup_item, .ud = l};
	}
	conn_lists(reads, nr);
	for (size_t i = 0; i < nr; i++) {
		struct lookup_list *l = reads[i].ud;
		if (!reads[i].ok) {
			jv_free(l->items);
			l->items = NULL;
			l->err = reads[i].err;
		} else if (l->loaded) {
			l->loaded(l->c, l->items);
		}
		strmap_clear(&l->seen);
		free(l->path);
		l->path = NULL;
	}
	free(reads);
}

struct jv *connector_list(struct connector *c, const char *resource, char **err)
{
	struct lookup_list l = {.c = c, .resource = resource};
	connector_lists(&l, 1);
	*err = l.err;
	return l.items;
}

/*
 * A linked id that is not of the entity's shape (stored before ids were checked, or by
 * hand) is never put in a path. An update looks for the record on the platform instead,
 * as after a 404; a termination or a restore is refused. Either way the connector goes on
 * with the next record: one bad link is not a platform failure.
 */
static bool stored_id_ok(struct op *op)
{
	if (!op->platform_id || id_valid(op->ent->ids, op->platform_id))
		return true;
	const char *what = op->ent->what ? op->ent->what : "record";
	char *shown = id_shown(op->platform_id);
	bool go_on = op->action == ACT_UPDATE;
	if (go_on) {
		log_rec(L_WARN, op->key, "update",
			"the %s id stored for it, %s, is not a %s %s id (%s); looking for the record on the platform instead",
			what, shown, op->conn->type->name, what, id_shape_name(op->ent->ids));
		free(op->platform_id);
		op->platform_id = NULL;
		jv_free(op->extra);
		op->extra = NULL;
		op->action = ACT_CREATE;
		op->kit.live = true;
	} else {
		op_finish(op, OPR_REFUSED,
			  "the %s id stored for it, %s, is not a %s %s id (%s); nothing was sent to it",
			  what, shown, op->conn->type->name, what, id_shape_name(op->ent->ids));
	}
	free(shown);
	return go_on;
}

void connector_start(struct op *op)
{
	op->kit.step = NULL;
	op->attempt = 0;
	if (stored_id_ok(op))
		kit_start(op);
}

void connector_op_release(struct op *op)
{
	free(op->cdata);
	op->cdata = NULL;
	free(op->kit.path);
	op->kit.path = NULL;
	free(op->kit.gone);
	op->kit.gone = NULL;
	page_state_free(&op->kit.pages);
	jv_free(op->answer);
	op->answer = NULL;
	http_call_reset(&op->call);
}

/* ---- blocking reads ---- */

/* A busy GET taken back from wherever it waits (the token's queue, the pacer, in flight). */
static void cancel_get(struct conn_get *g)
{
	struct token *t = &g->c->token;
	for (size_t i = 0; i < t->nwaiting; i++)
		if (t->waiting[i] == &g->call) {
			memmove(&t->waiting[i], &t->waiting[i + 1], (--t->nwaiting - i) * sizeof *t->waiting);
			break;
		}
	http_cancel(g->c->http, &g->call, "asked to stop");
}

/*
 * Turn the loop until no GET of gets is busy. A stop request (SIGTERM) ends them at once as
 * stopped, wherever they wait: in the pacer's queue (a Retry-After, a backoff), in flight
 * (a platform that answers slowly), or for a token.
 */
void conn_get_wait(struct conn_get *const *gets, size_t n)
{
	for (;;) {
		struct http *h = NULL;
		for (size_t i = 0; i < n && !h; i++)
			if (gets[i]->busy)
				h = gets[i]->c->http;
		if (!h)
			return;
		if (http_stop_requested(h)) {
			for (size_t i = 0; i < n; i++)
				if (gets[i]->busy)
					cancel_get(gets[i]);
			continue;
		}
		http_run(h, 100);
	}
}

/* The failure of a finished GET as a message; NULL when it succeeded. */
static char *get_error(struct connector *c, const struct http_call *call, const char *path, bool parsed,
		       const char *perr)
{
	if (call->outcome != CALL_ANSWERED)
		return xasprintf("GET %s: %s", path, call->err);
	if (platform_stops(c, call))
		return xasprintf("GET %s: %s", path, c->pacer.stop_reason);
	if (call->status == 401 || call->status == 403) {
		/* The platform's own words, when it has some ("the API key is invalid or expired"). */
		char *m = platform_message(c->type, call->resp, call->resp_len);
		pacer_stop(&c->pacer, "credentials refused (HTTP %ld%s%s)", call->status, m ? ": " : "", m ? m : "");
		free(m);
		return xasprintf("GET %s: %s", path, c->pacer.stop_reason);
	}
	if (call->status < 200 || call->status >= 300) {
		char *m = platform_message(c->type, call->resp, call->resp_len);
		char *e = xasprintf("GET %s: HTTP %ld%s%s", path, call->status, m ? ": " : "", m ? m : "");
		free(m);
		return e;
	}
	return parsed ? NULL : xasprintf("GET %s: the answer is not valid JSON: %s", path, perr);
}

static void get_answered(struct http_call *call);

static void get_attempt(struct conn_get *g, int64_t delay)
{
	http_call_reset(&g->call);
	g->call.pacer = &g->c->pacer;
	g->call.method = "GET";
	g->call.url = xasprintf("%s%s", g->c->cfg->base_url, g->path);
	g->call.idempotent = true;
	g->call.done = get_answered;
	g->call.arg = g;
	conn_submit(g->c, &g->call, delay);
}

static void get_answered(struct http_call *call)
{
	struct conn_get *g = call->arg;
	if (renew_on_401(g->c, call))
		return; /* sent again with a new token */
	struct jv *j = NULL;
	char perr[200] = "";
	if (call->outcome == CALL_ANSWERED && call->status >= 200 && call->status < 300) {
		/* A 2xx that is not JSON (a proxy's HTML page, a cut answer) proves nothing: a GET may go again. */
		j = jv_parse(call->resp ? call->resp : "", call->resp_len, perr, sizeof perr);
		if (!j && g->attempt < 3) {
			log_warn("GET %s: the answer is not JSON (%s); trying again", g->path,
				 call->content_type ? call->content_type : "no content type");
			get_attempt(g, backoff_ms(g->attempt++, 1000, 8000, 0.5));
			return;
		}
	}
	g->err = get_error(g->c, call, g->path, j != NULL, perr);
	if (g->err) {
		jv_free(j);
		j = NULL;
	}
	g->answer = j;
	g->busy = false;
	http_call_reset(call);
	if (g->done)
		g->done(g);
}

void conn_get_send(struct connector *c, struct conn_get *g, const char *path)
{
	char *p = xstrdup(path); /* path may be g's own */
	free(g->path);
	g->path = p;
	g->c = c;
	g->attempt = 0;
	jv_free(g->answer);
	free(g->err);
	g->answer = NULL;
	g->err = NULL;
	g->busy = true;
	get_attempt(g, 0);
}

void conn_get_free(struct conn_get *g)
{
	http_call_reset(&g->call);
	jv_free(g->answer);
	free(g->err);
	free(g->path);
	g->answer = NULL;
	g->err = g->path = NULL;
}

struct jv *conn_get(struct connector *c, const char *path, char **err)
{
	struct conn_get g = {0}, *one = &g;
	conn_get_send(c, &g, path);
	conn_get_wait(&one, 1);
	struct jv *j = g.answer;
	*err = g.err;
	g.answer = NULL;
	g.err = NULL;
	conn_get_free(&g);
	return j;
}

char *conn_find_one(struct connector *c, const struct conn_entity *e, char *path, const char *field,
		    const char *key, char **err)
{
	struct jv *j = conn_get(c, path, err);
	free(path);
	const struct jv *data = jv_obj_get(j, "data");
	const struct jv *hit = NULL;
	size_t n = data && data->t == JV_ARR ? data->u.arr.n : 0;
	for (size_t i = 0; i < n && !hit; i++)
		if (field ? streq(jv_obj_str(data->u.arr.v[i], field), key) : n == 1)
			hit = data->u.arr.v[i];
	char *id = hit ? jv_id_text(jv_obj_get(hit, "id")) : NULL;
	jv_free(j);
	if (id && !id_valid(e->ids, id)) {
		char *shown = id_shown(id);
		const char *what = e->what && e->what[0] ? e->what : "record";
		*err = xasprintf("%s answered the id %s, which is not a%s %s id (%s); not used",
				 c->type->title ? c->type->title : c->type->name, shown,
				 strchr("aeiou", what[0]) ? "n" : "", what, id_shape_name(e->ids));
		free(shown);
		free(id);
		id = NULL;
	}
	return id;
}

/* ---- the platform's error message ---- */

/* "a; b": the messages of an errors[] list (field: message, or JSON:API detail/title). */
static void errors_list(struct sb *b, const struct jv *errs)
{
	for (size_t i = 0; i < errs->u.arr.n && i < 5; i++) {
		const struct jv *e = errs->u.arr.v[i];
		const char *field = jv_obj_str(e, "field");
		const char *msg = jv_obj_str(e, "message");
		if (!msg)
			msg = jv_obj_str(e, "detail");
		if (!msg)
			msg = jv_obj_str(e, "title");
		if (!msg && e->t == JV_STR)
			msg = e->u.str.s;
		if (!msg)
			continue;
		sb_printf(b, "%s%s%s%s", b->len ? "; " : "", field ? field : "", field ? ": " : "", msg);
	}
}

/*
 * The usual shapes: {"errors": [{"field", "message"} | {"title", "detail"}]}, Rails'
 * {"errors": {"field": ["msg"]}}, {"error": {"message"}}, OAuth's {"error",
 * "error_description"}, {"message"}.
 */
static void usual_message(struct sb *b, const struct jv *j)
{
	const struct jv *errs = jv_obj_get(j, "errors");
	if (errs && errs->t == JV_ARR) {
		errors_list(b, errs);
	} else if (errs && errs->t == JV_OBJ) {
		for (size_t i = 0; i < errs->u.obj.n; i++) {
			const struct jv *v = errs->u.obj.v[i];
			char *t = v->t == JV_ARR && v->u.arr.n ? jv_scalar_text(v->u.arr.v[0]) : jv_scalar_text(v);
			sb_printf(b, "%s%s: %s", b->len ? "; " : "", errs->u.obj.k[i], t ? t : "");
			free(t);
		}
	}
	if (b->len)
		return;
	const struct jv *e = jv_obj_get(j, "error");
	if (e && e->t == JV_OBJ && jv_obj_str(e, "message")) {
		sb_puts(b, jv_obj_str(e, "message"));
	} else if (e && e->t == JV_STR) {
		sb_puts(b, e->u.str.s);
		if (jv_obj_str(j, "error_description"))
			sb_printf(b, ": %s", jv_obj_str(j, "error_description"));
	} else if (jv_obj_str(j, "message")) {
		sb_puts(b, jv_obj_str(j, "message"));
	}
}

char *platform_message(const struct connector_type *t, const char *body, size_t len)
{
	if (!body || !len)
		return NULL;
	struct jv *j = jv_parse(body, len, NULL, 0);
	struct sb b = {0};
	if (!j) {
		/* Not JSON (an HTML error page): keep a short, single-line excerpt. */
		for (size_t i = 0; i < len && b.len < 120; i++)
			sb_putc(&b, body[i]);
		if (!utf8_valid(b.s, b.len)) {
			sb_free(&b);
			return xstrdup("(an answer that is not JSON)");
		}
	} else {
		char *own = t && t->message ? t->message(j) : NULL;
		if (own && *own)
			sb_puts(&b, own);
		else
			usual_message(&b, j);
		free(own);
		jv_free(j);
	}
	/* One line: a platform's message must not forge log lines or break a table. */
	for (size_t i = 0; i < b.len; i++)
		if ((unsigned char)b.s[i] < 0x20)
			b.s[i] = ' ';
	/* Nor show a key it echoes ("X-API-KEY: …" quoted back in a 422). */
	secret_redact(b.s);
	b.len = b.s ? strlen(b.s) : 0;
	return b.len ? sb_steal(&b) : (sb_free(&b), NULL);
}
