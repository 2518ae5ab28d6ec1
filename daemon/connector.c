/*
 * connector — the registry of connector types and the plumbing every connector
 * shares (see connector.h).
 */
#define _GNU_SOURCE
#include "connector.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "throttle.h"

extern const struct connector_type peopleforce_connector;
extern const struct connector_type personio_connector;

static const struct connector_type *const types[] = {&peopleforce_connector, &personio_connector};

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
	pacer_init(&c->pacer, cfg->name, rate, cfg->max_in_flight, cfg->timeout_ms);
	http_add_pacer(http, &c->pacer);
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
	pacer_free(&c->pacer);
	free(c);
}

const struct secret *conn_secret(const struct connector *c, const char *option)
{
	int i = connector_option_index(c->type, option);
	return i >= 0 ? &c->cfg->secrets[i] : NULL;
}

const char *conn_string(const struct connector *c, const char *option)
{
	int i = connector_option_index(c->type, option);
	return i >= 0 ? c->cfg->strings[i] : NULL;
}

char *url_encode(const char *s)
{
	struct sb b = {0};
	sb_puts(&b, "");
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
		    *p == '-' || *p == '_' || *p == '.' || *p == '~')
			sb_putc(&b, (char)*p);
		else
			sb_printf(&b, "%%%02X", *p);
	}
	return sb_steal(&b);
}

char *platform_message(const char *body, size_t len)
{
	if (!body || !len)
		return NULL;
	struct jv *j = jv_parse(body, len, NULL, 0);
	if (!j) {
		/* Not JSON (an HTML error page): keep a short, single-line excerpt. */
		struct sb b = {0};
		for (size_t i = 0; i < len && b.len < 120; i++)
			sb_putc(&b, body[i] == '\n' || body[i] == '\r' ? ' ' : body[i]);
		if (!utf8_valid(b.s, b.len)) {
			sb_free(&b);
			return xstrdup("(an answer that is not JSON)");
		}
		return sb_steal(&b);
	}
	struct sb b = {0};
	/* PeopleForce: {"errors":[{"field":..,"message":..}]}; Personio v1: {"error":{"message":..}};
	 * Personio v2 / problem+json: {"errors":[{"title","detail"}]}; JSON:API: {"errors":[{"detail"}]};
	 * OAuth: {"error":"..","error_description":".."}; Rails: {"errors":{"field":["msg"]}}. */
	const struct jv *errs = jv_obj_get(j, "errors");
	if (errs && errs->t == JV_ARR) {
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
			sb_printf(&b, "%s%s%s%s", b.len ? "; " : "", field ? field : "", field ? ": " : "", msg);
		}
	} else if (errs && errs->t == JV_OBJ) {
		for (size_t i = 0; i < errs->u.obj.n; i++) {
			const struct jv *v = errs->u.obj.v[i];
			char *t = v->t == JV_ARR && v->u.arr.n ? jv_scalar_text(v->u.arr.v[0]) : jv_scalar_text(v);
			sb_printf(&b, "%s%s: %s", b.len ? "; " : "", errs->u.obj.k[i], t ? t : "");
			free(t);
		}
	}
	const struct jv *e1 = jv_obj_get(j, "error");
	if (!b.len && e1 && e1->t == JV_OBJ) {
		/* Personio v1: "The given data failed to pass validation." with the reasons in
		 * error.error_data (field -> [messages], sometimes as a JSON string) and batch errors
		 * in error.detailed_message[]. */
		const struct jv *data = jv_obj_get(e1, "error_data");
		struct jv *parsed = NULL;
		if (data && data->t == JV_STR)
			data = parsed = jv_parse(data->u.str.s, data->u.str.len, NULL, 0);
		for (size_t i = 0; data && data->t == JV_OBJ && i < data->u.obj.n; i++) {
			const struct jv *v = data->u.obj.v[i];
			char *t = v->t == JV_ARR && v->u.arr.n ? jv_scalar_text(v->u.arr.v[0]) : jv_scalar_text(v);
			sb_printf(&b, "%s%s: %s", b.len ? "; " : "", data->u.obj.k[i], t ? t : "invalid");
			free(t);
		}
		jv_free(parsed);
		const struct jv *dm = jv_obj_get(e1, "detailed_message");
		for (size_t i = 0; dm && dm->t == JV_ARR && i < dm->u.arr.n && i < 5; i++) {
			const char *m = jv_obj_str(dm->u.arr.v[i], "error_msg");
			if (m)
				sb_printf(&b, "%s%s", b.len ? "; " : "", m);
		}
	}
	if (!b.len) {
		const struct jv *e = jv_obj_get(j, "error");
		if (e && e->t == JV_OBJ && jv_obj_str(e, "message"))
			sb_puts(&b, jv_obj_str(e, "message"));
		else if (e && e->t == JV_STR) {
			sb_puts(&b, e->u.str.s);
			if (jv_obj_str(j, "error_description"))
				sb_printf(&b, ": %s", jv_obj_str(j, "error_description"));
		} else if (jv_obj_str(j, "message")) {
			sb_puts(&b, jv_obj_str(j, "message"));
		}
	}
	jv_free(j);
	/* One line: a platform's message must not forge log lines or break a table. */
	for (size_t i = 0; i < b.len; i++)
		if ((unsigned char)b.s[i] < 0x20)
			b.s[i] = ' ';
	return b.len ? sb_steal(&b) : (sb_free(&b), NULL);
}

static void finish_now(struct op *op)
{
	op->done(op);
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
	}
	finish_now(op);
}

bool op_ok(const struct op *op)
{
	return op->call.outcome == CALL_ANSWERED && op->call.status >= 200 && op->call.status < 300;
}

static void after_call(struct http_call *call);

#define CT_JSON "Content-Type: application/json"
#define CT_FORM "Content-Type: application/x-www-form-urlencoded"

/* body_text (owned) is sent with content type ct; NULL body: none. */
static bool prepare_call(struct op *op, const char *method, const char *path, char *body_text, const char *ct,
			 void (*next)(struct op *op))
{
	struct connector *c = op->conn;
	http_call_reset(&op->call);
	op->call.pacer = &c->pacer;
	op->call.method = method;
	op->call.url = xasprintf("%s%s", c->cfg->base_url, path);
	op->call.idempotent = strcmp(method, "POST") != 0;
	op->call.headers = http_base_headers();
	op->content_type = body_text ? ct : NULL;
	if (body_text) {
		op->call.body = body_text;
		op->call.body_len = strlen(body_text);
		op->call.headers = curl_slist_append(op->call.headers, ct);
	}
	char *err = NULL;
	if (c->type->auth && !c->type->auth(c, &op->call.headers, &err)) {
		pacer_stop(&c->pacer, "credentials refused: %s", err ? err : "no token");
		op_finish(op, OPR_STOPPED, "credentials refused: %s", err ? err : "no token");
		free(err);
		return false;
	}
	op->call.done = after_call;
	op->call.arg = op;
	op->next = next;
	return true;
}

static void after_call(struct http_call *call)
{
	struct op *op = call->arg;
	struct connector *c = op->conn;
	op->http_status = call->status;
	bool raw = op->step < 0; /* op_send_raw marks the step negative while the call runs */
	if (raw)
		op->step = -op->step - 1;
	if (call->outcome == CALL_ANSWERED && call->status == 401 && c->type->reauth && !op->reauthed &&
	    c->type->reauth(c)) {
		/* A new token: the same request once more, with fresh headers. */
		op->reauthed = true;
		curl_slist_free_all(call->headers);
		call->headers = http_base_headers();
		if (call->body && op->content_type)
			call->headers = curl_slist_append(call->headers, op->content_type);
		char *err = NULL;
		if (c->type->auth(c, &call->headers, &err)) {
			if (raw)
				op->step = -op->step - 1;
			http_call_resubmit(c->http, call);
			return;
		}
		free(err);
	}
	if (call->outcome == CALL_ANSWERED && (call->status == 401 || call->status == 403)) {
		char *m = platform_message(call->resp, call->resp_len);
		pacer_stop(&c->pacer, "credentials refused (HTTP %ld%s%s)", call->status, m ? ": " : "", m ? m : "");
		op_finish(op, OPR_STOPPED, "credentials refused (HTTP %ld)", call->status);
		free(m);
		return;
	}
	/*
	 * A 2xx whose body is not JSON (a proxy's HTML page, a cut-off answer) proves
	 * nothing: the platform may or may not have acted. It is a transient failure, and a
	 * create that meets one looks for the record before sending again.
	 */
	jv_free(op->answer);
	op->answer = NULL;
	if (call->outcome == CALL_ANSWERED && call->status >= 200 && call->status < 300 && call->resp_len) {
		char perr[200];
		op->answer = jv_parse(call->resp, call->resp_len, perr, sizeof perr);
		if (!op->answer) {
			const char *ct = call->content_type ? call->content_type : "no content type";
			snprintf(call->err, sizeof call->err, "HTTP %ld but the answer is not JSON (%s): %s", call->status, ct,
				 perr);
			call->outcome = CALL_TRANSIENT;
		}
	}
	if (!raw && call->outcome == CALL_STOPPED) {
		op_finish(op, OPR_STOPPED, "%s", call->err);
		return;
	}
	if (!raw && call->outcome == CALL_TRANSIENT) {
		op_finish(op, OPR_TRANSIENT, "%s %s: %s", call->method, call->url + strlen(c->cfg->base_url), call->err);
		return;
	}
	op->next(op);
}

static char *json_body(struct jv *body)
{
	if (!body)
		return NULL;
	char *t = jv_dumps(body);
	jv_free(body);
	return t;
}

void op_send(struct op *op, const char *method, const char *path, struct jv *body, void (*next)(struct op *op))
{
	if (!prepare_call(op, method, path, json_body(body), CT_JSON, next))
		return;
	http_submit(op->conn->http, &op->call, 0);
}

void op_send_raw(struct op *op, const char *method, const char *path, struct jv *body,
		 void (*next)(struct op *op))
{
	if (!prepare_call(op, method, path, json_body(body), CT_JSON, next))
		return;
	op->step = -op->step - 1;
	http_submit(op->conn->http, &op->call, 0);
}

void op_send_form(struct op *op, const char *method, const char *path, char *form, void (*next)(struct op *op))
{
	if (!prepare_call(op, method, path, form, CT_FORM, next))
		return;
	op->step = -op->step - 1;
	http_submit(op->conn->http, &op->call, 0);
}

struct jv *op_json(struct op *op)
{
	struct jv *j = op->answer;
	op->answer = NULL;
	if (!j)
		op_finish(op, OPR_TRANSIENT, "%s %s: empty answer (HTTP %ld)", op->call.method,
			  op->call.url + strlen(op->conn->cfg->base_url), op->call.status);
	return j;
}

void op_fail_answer(struct op *op, const char *doing)
{
	char *m = platform_message(op->call.resp, op->call.resp_len);
	long s = op->call.status;
	enum op_result r = (s >= 400 && s < 500 && s != 408 && s != 429) ? OPR_REFUSED : OPR_TRANSIENT;
	op_finish(op, r, "%s: HTTP %ld%s%s", doing, s, m ? ": " : "", m ? m : "");
	free(m);
}

bool op_created(struct op *op, const char *what, void (*refind)(struct op *op), char *(*id_of)(const struct jv *answer))
{
	if (op->call.outcome != CALL_ANSWERED) {
		/* The platform may have created it before the answer was lost: look again, then send. */
		if (!op_retry_later(op, refind, 4))
			op_finish(op, OPR_TRANSIENT, "%s: %s", what, op->call.err);
		return false;
	}
	if (!op_ok(op)) {
		op_fail_answer(op, what);
		return false;
	}
	if (!op->answer) {
		op_finish(op, OPR_TRANSIENT, "%s: empty answer (HTTP %ld)", what, op->call.status);
		return false;
	}
	free(op->platform_id);
	op->platform_id = id_of(op->answer);
	if (!op->platform_id) {
		op_finish(op, OPR_TRANSIENT, "%s: the answer carries no id", what);
		return false;
	}
	op->main_done = true;
	return true;
}

char *op_marker_key(const char *text, char fp[17])
{
	if (!text)
		return NULL;
	const char *m = strstr(text, "[hrsync:");
	if (!m)
		return NULL;
	const char *start = m + 8;
	const char *end = strrchr(start, ']');
	if (!end)
		return NULL;
	const char *hash = NULL;
	for (const char *p = start; p < end; p++)
		if (*p == '#')
			hash = p; /* the last one: a key may hold '#' */
	if (!hash)
		return NULL;
	size_t fl = (size_t)(end - hash - 1);
	if (fl > 16)
		fl = 16;
	memcpy(fp, hash + 1, fl);
	fp[fl] = '\0';
	return xstrndup(start, (size_t)(hash - start));
}

char *op_with_marker(const struct op *op, const char *text)
{
	return text && *text ? xasprintf("%s [hrsync:%s#%s]", text, op->key, op->fp)
			     : xasprintf("[hrsync:%s#%s]", op->key, op->fp);
}

static void retry_timer(struct http_call *call)
{
	struct op *op = call->arg;
	op->next(op);
}

bool op_retry_later(struct op *op, void (*step)(struct op *op), int max_attempts)
{
	if (++op->attempt >= max_attempts)
		return false;
	/* A zero-cost timer: a call that never goes out. The pacer's queue holds it back. */
	http_call_reset(&op->call);
	int64_t delay = backoff_ms(op->attempt - 1, 250, 10000, (double)(now_ms() % 1000) / 1000.0);
	op->next = step;
	op->call.pacer = &op->conn->pacer;
	op->call.done = retry_timer;
	op->call.arg = op;
	op->call.method = NULL; /* marks a timer */
	http_submit(op->conn->http, &op->call, delay);
	return true;
}

static void sync_done(struct http_call *call)
{
	(void)call;
}

struct jv *conn_get_json(struct connector *c, const char *path, long *status, char **err)
{
	struct http_call call = {0};
	struct jv *j = NULL;
	bool reauthed = false, backoff = false, failed = false;
	char perr[200] = "";
	for (int attempt = 0; attempt < 4; attempt++) {
		jv_free(j);
		j = NULL;
		http_call_reset(&call);
		call.pacer = &c->pacer;
		call.method = "GET";
		call.url = xasprintf("%s%s", c->cfg->base_url, path);
		call.idempotent = true;
		call.headers = http_base_headers();
		call.done = sync_done;
		char *aerr = NULL;
		if (c->type->auth && !c->type->auth(c, &call.headers, &aerr)) {
			pacer_stop(&c->pacer, "credentials refused: %s", aerr ? aerr : "no token");
			*err = xasprintf("credentials refused: %s", aerr ? aerr : "no token");
			free(aerr);
			http_call_reset(&call);
			return NULL;
		}
		http_submit(c->http, &call, backoff ? backoff_ms(attempt - 1, 1000, 8000, 0.5) : 0);
		backoff = false;
		while (call.outcome == CALL_PENDING)
			http_run(c->http, 100);
		if (call.outcome == CALL_ANSWERED && call.status == 401 && !reauthed && c->type->reauth &&
		    c->type->reauth(c)) {
			reauthed = true;
			continue; /* renewed: once more */
		}
		/* A 2xx that is not JSON (a proxy's HTML page, a cut answer) proves nothing: a GET may be sent again. */
		if (call.outcome == CALL_ANSWERED && call.status >= 200 && call.status < 300) {
			j = jv_parse(call.resp ? call.resp : "", call.resp_len, perr, sizeof perr);
			if (!j) {
				log_warn("GET %s: the answer is not JSON (%s); trying again", path,
					 call.content_type ? call.content_type : "no content type");
				backoff = true;
				continue;
			}
		}
		break;
	}
	if (status)
		*status = call.status;
	failed = true;
	if (call.outcome != CALL_ANSWERED) {
		*err = xasprintf("GET %s: %s", path, call.err);
	} else if (call.status == 401 || call.status == 403) {
		pacer_stop(&c->pacer, "credentials refused (HTTP %ld)", call.status);
		*err = xasprintf("GET %s: credentials refused (HTTP %ld)", path, call.status);
	} else if (call.status < 200 || call.status >= 300) {
		char *m = platform_message(call.resp, call.resp_len);
		*err = xasprintf("GET %s: HTTP %ld%s%s", path, call.status, m ? ": " : "", m ? m : "");
		free(m);
	} else if (!j) {
		*err = xasprintf("GET %s: the answer is not valid JSON: %s", path, perr);
	} else {
		failed = false;
	}
	if (failed) {
		jv_free(j);
		j = NULL;
	}
	http_call_reset(&call);
	return j;
}
