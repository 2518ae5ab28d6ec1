/*
 * personio — the Personio API (SPEC §10; ../shared/vendor-specs/personio, README §2 and §7).
 *
 * Auth: client credentials. POST /v2/auth/token (x-www-form-urlencoded: grant_type,
 * client_id, client_secret) gives a bearer token and its lifetime; it is reused until a
 * minute before it expires (a quarter of its life when that is short), and renewed once
 * when the platform answers 401 (the reauth hook). The token and the client secret live
 * only in struct secret and in request headers and bodies: never in a URL (http.c logs
 * URLs at debug level), never in a message. Paths start at base_url: /v1/..., /v2/....
 *
 * Entities:
 *   employees    v1. Create: POST /v1/company/employees with the {"employee": {...}}
 *                envelope; update: PATCH /v1/company/employees/{id}; leaving: PATCH status
 *                "inactive" (Personio keeps it); re-hire: PATCH status "active". Email is
 *                the natural key and cannot change: Personio's API cannot update it, so an
 *                ERP email change is refused with a clear message instead of creating a
 *                second person. Department, office and subcompany go by name (v1 takes
 *                names); a name Personio does not know is ignored by Personio "with a meta
 *                error": the employee is then kept but the record is refused with that
 *                message, so the payroll team sees it. The nested `custom_attributes`
 *                object goes inside the envelope (dynamic_NNN fields), not as its own request.
 *   absences     v1. The unit of the time-off type (GET /v1/company/time-off-types, read once
 *                per run) picks the endpoint: day-unit types are time-offs
 *                (POST /v1/company/time-offs), hour-unit types are absence periods
 *                (POST /v1/company/absence-periods). Both take x-www-form-urlencoded bodies,
 *                booleans as 1/0. Deleted when the ERP cancels them; Personio cannot edit
 *                either, so a changed absence is deleted and created again. Personio has no
 *                external id for them: the comment carries "[hrsync:KEY#FINGERPRINT]", by
 *                which a later run finds what an interrupted one created.
 *   attendances  v2 attendance periods (v1 attendances were retired in Aug 2026): create,
 *                update (PATCH), delete when the ERP cancels them; the same comment marker.
 *
 * Lists: `offset` is a record offset on employees and time-off types, but a page number
 * (1-based, 0 read as 1) on time-offs and absence periods. Every listing guards against a
 * page that repeats the previous one.
 *
 * Before any create, what an interrupted run may have created is looked for: a filtered
 * GET per record, or — when many records are new — one pass over the platform's list into
 * an index (prepare()). A connector never writes state: it reports ids (op->platform_id,
 * op->extra) and the engine commits them.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "../daemon/connector.h"
#include "../daemon/log.h"
#include "../daemon/strmap.h"

#define TIME_OFF_PAGE 200      /* the largest page time-offs and absence periods give */
#define EMPLOYEE_PAGE 100      /* the largest page GET /company/employees gives since Jan 2025 */
#define PULL_LOOKBACK_DAYS 2   /* a pull re-reads what changed this long before the cursor */

struct pio {
	struct secret token;        /* the bearer token (never printed) */
	int64_t token_renew_ms;     /* monotonic: renew from then on */
	int64_t token_got_ms;
	struct strmap type_unit;    /* time-off type id -> "day" | "hour" */
	bool types_loaded;
	struct strmap emp_by_email; /* lower-case email -> id ("" when several) */
	bool emp_indexed;
	struct strmap emp_claimed;  /* employee id -> ERP key that created or adopted it this run */
	struct strmap abs_by_key;   /* ERP key -> "d|id|fp" (time-off) or "h|id|fp" (absence period) */
	bool abs_indexed;
};

static struct pio *PIO(struct connector *c)
{
	return c->priv;
}

/* ================= small helpers ================= */

static char *lower_dup(const char *s)
{
	char *l = xstrdup(s);
	for (char *p = l; p && *p; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p - 'A' + 'a');
	return l;
}

/* Case-insensitive on ASCII, which is all an email's comparison needs here. */
static bool same_email(const char *a, const char *b)
{
	return a && b && strcasecmp(a, b) == 0;
}

static void extra_set(struct op *op, const char *k, const char *v)
{
	if (!op->extra)
		op->extra = jv_obj();
	jv_obj_set(op->extra, k, v ? jv_str(v) : jv_null());
}

/* A v1 attribute-wrapped value: {"attributes": {"email": {"value": ...}}}. Borrowed. */
static const struct jv *attr_value(const struct jv *item, const char *name)
{
	const struct jv *a = jv_obj_get(jv_obj_get(item, "attributes"), name);
	if (a && a->t == JV_OBJ && jv_obj_get(a, "label"))
		return jv_obj_get(a, "value");
	return a;
}

/* The date part "YYYY-MM-DD" of n days before/after the UTC date d (same format). */
static void date_add(const char *d, int days, char out[16])
{
	struct tm tm = {0};
	if (sscanf(d, "%4d-%2d-%2d", &tm.tm_year, &tm.tm_mon, &tm.tm_mday) != 3) {
		snprintf(out, 16, "%s", d);
		return;
	}
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	tm.tm_hour = 12;
	time_t t = timegm(&tm) + (time_t)days * 86400;
	struct tm o;
	gmtime_r(&t, &o);
	strftime(out, 16, "%Y-%m-%d", &o);
}

static void today_utc(char out[16])
{
	time_t t = time(NULL);
	struct tm o;
	gmtime_r(&t, &o);
	strftime(out, 16, "%Y-%m-%d", &o);
}

/* Append k=v to a form body, both URL-encoded. */
static void form_add(struct sb *b, const char *k, const char *v)
{
	char *ek = url_encode(k), *ev = url_encode(v);
	sb_printf(b, "%s%s=%s", b->len ? "&" : "", ek, ev);
	free(ek);
	free(ev);
}

/* A JSON scalar as a form value: booleans as 1/0 (what Laravel's boolean rule takes). */
static void form_add_jv(struct sb *b, const char *k, const struct jv *v)
{
	if (jv_is_null(v))
		return;
	if (v->t == JV_BOOL) {
		form_add(b, k, v->u.b ? "1" : "0");
		return;
	}
	char *t = v->t == JV_OBJ || v->t == JV_ARR ? jv_dumps(v) : jv_scalar_text(v);
	form_add(b, k, t ? t : "");
	free(t);
}

/* ================= messages ================= */

/* ================= the token ================= */

static void token_drop(struct pio *p)
{
	secret_free(&p->token);
	p->token_renew_ms = 0;
}

static void sync_done(struct http_call *call)
{
	(void)call;
}

static void wipe_call(struct http_call *call)
{
	if (call->body)
		explicit_bzero(call->body, call->body_len);
	if (call->resp)
		explicit_bzero(call->resp, call->resp_len);
	http_call_reset(call);
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

/*
 * POST /v2/auth/token, blocking. The credentials travel in the form body only. A refusal
 * (400/401) is final for the run; 5xx and transport errors were already retried by http.c.
 */
static bool fetch_token(struct connector *c, char **err)
{
	struct pio *p = PIO(c);
	const struct secret *id = conn_secret(c, "client_id"), *sec = conn_secret(c, "client_secret");
	if (!id || !secret_present(id) || !sec || !secret_present(sec)) {
		*err = xstrdup("no client_id or client_secret");
		return false;
	}
	struct sb body = {0};
	form_add(&body, "grant_type", "client_credentials");
	form_add(&body, "client_id", secret_value(id));
	form_add(&body, "client_secret", secret_value(sec));
	struct http_call call = {0};
	call.pacer = &c->pacer;
	call.method = "POST";
	call.url = xasprintf("%s/v2/auth/token", c->cfg->base_url);
	call.idempotent = true; /* asking twice only gives a second token */
	call.headers = http_base_headers();
	call.headers = curl_slist_append(call.headers, "Content-Type: application/x-www-form-urlencoded");
	call.body_len = body.len;
	call.body = sb_steal(&body);
	call.done = sync_done;
	http_call_sync(c->http, &call);
	bool ok = false;
	if (call.outcome != CALL_ANSWERED) {
		*err = xasprintf("POST /v2/auth/token: %s", call.err);
	} else if (call.status < 200 || call.status >= 300) {
		char *m = platform_message(call.resp, call.resp_len);
		*err = xasprintf("POST /v2/auth/token: HTTP %ld%s%s", call.status, m ? ": " : "", m ? m : "");
		free(m);
	} else {
		struct jv *j = jv_parse(call.resp ? call.resp : "", call.resp_len, NULL, 0);
		const char *tok = jv_obj_str(j, "access_token");
		const struct jv *ttl = jv_obj_get(j, "expires_in");
		double secs = ttl && ttl->t == JV_INT ? (double)ttl->u.i
			      : ttl && (ttl->t == JV_NUM || ttl->t == JV_STR) ? atof(ttl->u.str.s) : 86400.0;
		if (!tok || !*tok) {
			*err = xstrdup("POST /v2/auth/token: the answer carries no access_token");
		} else {
			token_drop(p);
			p->token.len_ = strlen(tok);
			p->token.value_ = xstrdup(tok);
			snprintf(p->token.origin, sizeof p->token.origin, "Personio access token");
			/* Renew a minute early; a token that lives less than 4 minutes at 3/4 of its life. */
			double margin = secs > 240 ? 60 : secs / 4;
			p->token_got_ms = now_ms();
			p->token_renew_ms = p->token_got_ms + (int64_t)((secs - margin) * 1000);
			log_debug("connector %s: new Personio token, valid %.0f s", c->name, secs);
			ok = true;
		}
		jv_wipe(j);
		jv_free(j);
	}
	wipe_call(&call);
	return ok;
}

static bool pio_auth(struct connector *c, struct curl_slist **h, char **err)
{
	struct pio *p = PIO(c);
	if (!secret_present(&p->token) || now_ms() >= p->token_renew_ms) {
		if (!fetch_token(c, err))
			return false;
	}
	char *line = xasprintf("Authorization: Bearer %s", secret_value(&p->token));
	*h = curl_slist_append(*h, line);
	explicit_bzero(line, strlen(line));
	free(line);
	return true;
}

/*
 * A 401: the token expired or was revoked. The requests in flight when it expired meet
 * the same 401 within moments: a token obtained in the last second is taken as their
 * renewal and reused. A 401 later than that fetches another token, which costs one
 * request of a 150/min quota; a token refused right after it was issued stops the
 * connector (op->reauthed: once per operation).
 */
static bool pio_reauth(struct connector *c)
{
	struct pio *p = PIO(c);
	/* Always a new token: one issued a moment ago may be the one refused (it can die young). */
	token_drop(p);
	char *err = NULL;
	bool ok = fetch_token(c, &err);
	if (!ok) {
		log_error("connector %s: cannot renew the Personio token: %s", c->name, err ? err : "failed");
		free(err);
	} else {
		log_info("connector %s: the Personio token was refused (401); renewed it", c->name);
	}
	return ok;
}

/* ================= listing (blocking) ================= */

typedef bool (*item_cb)(struct connector *c, const struct jv *item, void *ud);

/*
 * Every item of a v1 list. page_offset: `offset` is a 1-based page number (time-offs,
 * absence periods); otherwise a record offset (employees). *total gets metadata's
 * total_elements of the first page (-1 when absent). Stops early when cb returns false.
 */
static bool v1_list(struct connector *c, const char *path, long limit, bool page_offset, item_cb cb, void *ud,
		    long long *total, char **err)
{
	char *prev_first = NULL;
	bool ok = true;
	if (total)
		*total = -1;
	for (long long n = 0; n < 100000; n++) {
		long long offset = page_offset ? n + 1 : n * limit;
		char *p = xasprintf("%s%climit=%ld&offset=%lld", path, strchr(path, '?') ? '&' : '?', limit, offset);
		struct jv *j = conn_get_json(c, p, NULL, err);
		free(p);
		if (!j) {
			ok = false;
			break;
		}
		const struct jv *data = jv_obj_get(j, "data");
		if (!data || data->t != JV_ARR) {
			*err = xasprintf("GET %s: the answer has no 'data' list", path);
			jv_free(j);
			ok = false;
			break;
		}
		const struct jv *meta = jv_obj_get(j, "metadata");
		const struct jv *te = jv_obj_get(meta, "total_elements"), *tp = jv_obj_get(meta, "total_pages");
		if (n == 0 && total && te && te->t == JV_INT)
			*total = te->u.i;
		if (data->u.arr.n == 0) {
			jv_free(j);
			break;
		}
		const struct jv *f0 = jv_obj_get(jv_obj_get(data->u.arr.v[0], "attributes"), "id");
		char *first = jv_id_text(f0 && f0->t == JV_OBJ ? jv_obj_get(f0, "value") : f0);
		if (prev_first && first && streq(prev_first, first)) {
			*err = xasprintf("GET %s: page %lld repeats the previous one; stopping to avoid a loop", path, n + 1);
			free(first);
			jv_free(j);
			ok = false;
			break;
		}
		free(prev_first);
		prev_first = first;
		bool go = true;
		for (size_t i = 0; i < data->u.arr.n && go; i++)
			go = cb(c, data->u.arr.v[i], ud);
		bool last = (size_t)data->u.arr.n < (size_t)limit || (tp && tp->t == JV_INT && n + 1 >= tp->u.i);
		jv_free(j);
		if (!go) {
			ok = false;
			*err = xstrdup("stopped by the caller");
			break;
		}
		if (last)
			break;
	}
	free(prev_first);
	return ok;
}

/* Total pages of a list, from its first page; -1 with *err when it cannot be read. */
static long long count_pages(struct connector *c, const char *path, long limit, bool page_offset, char **err)
{
	char *p = xasprintf("%s%climit=%ld&offset=%d", path, strchr(path, '?') ? '&' : '?', limit, page_offset ? 1 : 0);
	struct jv *j = conn_get_json(c, p, NULL, err);
	free(p);
	if (!j)
		return -1;
	const struct jv *tp = jv_obj_get(jv_obj_get(j, "metadata"), "total_pages");
	long long pages = tp && tp->t == JV_INT ? tp->u.i : 1000000; /* no count: do not index */
	jv_free(j);
	return pages;
}

/* ---- time-off types ---- */

static bool type_item(struct connector *c, const struct jv *item, void *ud)
{
	struct jv *arr = ud;
	const struct jv *a = jv_obj_get(item, "attributes");
	char *id = jv_id_text(jv_obj_get(a, "id"));
	const char *unit = jv_obj_str(a, "unit");
	if (id && unit)
		strmap_put(&PIO(c)->type_unit, id, unit);
	if (arr && a && a->t == JV_OBJ)
		jv_arr_push(arr, jv_copy(a));
	free(id);
	return true;
}

static bool load_types(struct connector *c, struct jv *out, char **err)
{
	struct pio *p = PIO(c);
	if (p->types_loaded && !out)
		return true;
	strmap_clear(&p->type_unit);
	/* The types' `offset` is a record offset, as the OpenAPI entry describes it. */
	if (!v1_list(c, "/v1/company/time-off-types", TIME_OFF_PAGE, false, type_item, out, NULL, err))
		return false;
	p->types_loaded = true;
	return true;
}

/* ---- the lookup lists ---- */

struct org_collect {
	const char *attr;
	struct strmap seen;
	struct jv *arr;
};

static bool org_item(struct connector *c, const struct jv *item, void *ud)
{
	(void)c;
	struct org_collect *oc = ud;
	const struct jv *v = attr_value(item, oc->attr);
	const struct jv *a = jv_obj_get(v, "attributes");
	const char *name = jv_obj_str(a, "name");
	if (name && !strmap_get(&oc->seen, name, NULL)) {
		strmap_put(&oc->seen, name, "");
		struct jv *o = jv_obj();
		/* v1 takes departments, offices and subcompanies by name: the name is the "id". */
		jv_obj_set(o, "id", jv_str(name));
		jv_obj_set(o, "name", jv_str(name));
		jv_obj_set(o, "personio_id", jv_copy(jv_obj_get(a, "id")));
		jv_arr_push(oc->arr, o);
	}
	return true;
}

/*
 * time_off_types: GET /v1/company/time-off-types, each {id, name, category, unit, ...}.
 * departments, offices, subcompanies: Personio v1 has no list of them; they are read from
 * the employees that use them, and the lookup gives the name as Personio spells it (v1
 * takes these by name). See mappings/personio/README.md.
 */
static struct jv *pio_list(struct connector *c, const char *resource, char **err)
{
	if (streq(resource, "time_off_types")) {
		struct jv *arr = jv_arr();
		if (!load_types(c, arr, err)) {
			jv_free(arr);
			return NULL;
		}
		return arr;
	}
	const char *attr = streq(resource, "departments") ? "department"
			   : streq(resource, "offices")   ? "office"
			   : streq(resource, "subcompanies") ? "subcompany" : NULL;
	if (!attr) {
		*err = xasprintf("no lookup list '%s'", resource);
		return NULL;
	}
	struct org_collect oc = {attr, {0}, jv_arr()};
	char *path = xasprintf("/v1/company/employees?attributes%%5B%%5D=%s", attr);
	bool ok = v1_list(c, path, EMPLOYEE_PAGE, false, org_item, &oc, NULL, err);
	free(path);
	strmap_clear(&oc.seen);
	if (!ok) {
		jv_free(oc.arr);
		return NULL;
	}
	return oc.arr;
}

/* ================= employees ================= */

static const char *emp_email(const struct op *op)
{
	const char *e = jv_obj_str(op->payload, "email");
	return e && *e ? e : NULL;
}

/* {"employee": payload}; without email on PATCH (Personio cannot change it). */
static struct jv *emp_body(const struct jv *payload, bool with_email, const char *status)
{
	struct jv *e = payload ? jv_copy(payload) : jv_obj();
	if (!with_email)
		jv_free(jv_obj_take(e, "email"));
	if (status)
		jv_obj_set(e, "status", jv_str(status));
	struct jv *b = jv_obj();
	jv_obj_set(b, "employee", e);
	return b;
}

/*
 * What Personio ignored: names of departments, offices or subcompanies it does not know
 * come back as "meta" errors in a 2xx answer. NULL when none. Caller frees.
 */
static char *meta_errors(const struct jv *j)
{
	const struct jv *m = jv_obj_get(j, "meta");
	if (m && m->t == JV_OBJ)
		m = jv_obj_get(m, "errors");
	if (!m || m->t != JV_ARR || !m->u.arr.n)
		return NULL;
	struct sb b = {0};
	for (size_t i = 0; i < m->u.arr.n && i < 5; i++) {
		const struct jv *x = m->u.arr.v[i];
		const char *s = x->t == JV_STR ? x->u.str.s : jv_obj_str(x, "message");
		char *t = s ? xstrdup(s) : jv_dumps(x);
		sb_printf(&b, "%s%s", b.len ? "; " : "", t);
		free(t);
	}
	return sb_steal(&b);
}

static void emp_claim(struct op *op)
{
	strmap_put(&PIO(op->conn)->emp_claimed, op->platform_id, op->key);
}

/* The end of a write: OK, or refused when Personio ignored part of it. */
static void emp_written(struct op *op, const char *what)
{
	struct jv *j = op->answer;
	op->answer = NULL;
	char *meta = meta_errors(j);
	jv_free(j);
	if (meta) {
		op_finish(op, OPR_REFUSED,
			  "%s (id %s), but Personio ignored part of it: %s. Fix the name in the ERP or create it in "
			  "Personio, then `hrsync retry`",
			  what, op->platform_id, meta);
		free(meta);
		return;
	}
	op_finish(op, OPR_OK, NULL);
}

static void emp_find(struct op *op);

/* {"success": true, "data": {"id": N, "message": "success"}} */
static char *emp_created_id(const struct jv *answer)
{
	return jv_id_text(jv_obj_get(jv_obj_get(answer, "data"), "id"));
}

static void emp_posted(struct op *op)
{
	struct pio *p = PIO(op->conn);
	/* A lost answer: look again by email (not in the index, which cannot know) before resending. */
	if (!op_created(op, "creating the employee", emp_find, emp_created_id))
		return;
	emp_claim(op);
	if (p->emp_indexed) {
		char *l = lower_dup(emp_email(op));
		strmap_put(&p->emp_by_email, l, op->platform_id);
		free(l);
	}
	emp_written(op, "created");
}

static void emp_post(struct op *op)
{
	op_send_raw(op, "POST", "/v1/company/employees", emp_body(op->payload, true, NULL), emp_posted);
}

static void emp_adopted(struct op *op)
{
	if (!op_ok(op)) {
		op_fail_answer(op, "updating the employee found on Personio");
		return;
	}
	op->main_done = true;
	emp_written(op, "found on Personio and updated");
}

static void emp_adopt(struct op *op, const char *id)
{
	struct pio *p = PIO(op->conn);
	const char *owner = NULL;
	if (strmap_get(&p->emp_claimed, id, &owner) && owner && !streq(owner, op->key)) {
		op_finish(op, OPR_REFUSED,
			  "the email is already used on Personio by employee %s, which ERP record %s holds; Personio "
			  "needs a different email for each person",
			  id, owner);
		return;
	}
	free(op->platform_id);
	op->platform_id = xstrdup(id);
	op->adopted = true;
	emp_claim(op);
	log_rec(L_INFO, op->key, "adopt", "employee already on Personio as id %s (an earlier run or HR created it)", id);
	char *path = xasprintf("/v1/company/employees/%s", id);
	op_send(op, "PATCH", path, emp_body(op->payload, false, NULL), emp_adopted);
	free(path);
}

static void emp_found(struct op *op)
{
	if (!op_ok(op)) {
		op_fail_answer(op, "looking for the employee by email");
		return;
	}
	struct jv *j = op_json(op);
	if (!j)
		return;
	const struct jv *data = jv_obj_get(j, "data");
	size_t n = 0;
	char *id = NULL;
	/* The filter is exact, but compare anyway: a platform that ignored it must not make us adopt a stranger. */
	for (size_t i = 0; data && data->t == JV_ARR && i < data->u.arr.n; i++) {
		const struct jv *it = data->u.arr.v[i];
		const struct jv *em = attr_value(it, "email");
		if (!em || em->t != JV_STR || !same_email(em->u.str.s, emp_email(op)))
			continue;
		if (n++ == 0)
			id = jv_id_text(attr_value(it, "id"));
	}
	jv_free(j);
	if (n == 0) {
		free(id);
		emp_post(op);
		return;
	}
	if (n > 1 || !id) {
		free(id);
		op_finish(op, OPR_REFUSED, "%zu employees on Personio have this email; merge them first", n);
		return;
	}
	emp_adopt(op, id);
	free(id);
}

static void emp_find(struct op *op)
{
	struct pio *p = PIO(op->conn);
	const char *email = emp_email(op);
	if (!email) {
		op_finish(op, OPR_REFUSED,
			  "no email: Personio requires one on every employee, and it is how hrsync finds the person again");
		return;
	}
	if (p->emp_indexed && op->attempt == 0) {
		char *l = lower_dup(email);
		const char *id = NULL;
		bool hit = strmap_get(&p->emp_by_email, l, &id);
		free(l);
		if (!hit) {
			emp_post(op);
		} else if (!id || !*id) {
			op_finish(op, OPR_REFUSED, "several employees on Personio have this email; merge them first");
		} else {
			char *copy = xstrdup(id);
			emp_adopt(op, copy);
			free(copy);
		}
		return;
	}
	char *enc = url_encode(email);
	char *path = xasprintf("/v1/company/employees?email=%s&attributes%%5B%%5D=email", enc);
	op_send(op, "GET", path, NULL, emp_found);
	free(path);
	free(enc);
}

static bool emp_index_item(struct connector *c, const struct jv *item, void *ud)
{
	long long *n = ud;
	struct pio *p = PIO(c);
	const struct jv *em = attr_value(item, "email");
	char *id = jv_id_text(attr_value(item, "id"));
	(*n)++;
	if (id && em && em->t == JV_STR && *em->u.str.s) {
		char *l = lower_dup(em->u.str.s);
		strmap_put(&p->emp_by_email, l, strmap_get(&p->emp_by_email, l, NULL) ? "" : id);
		free(l);
	}
	free(id);
	return true;
}

static bool emp_prepare(struct connector *c, const struct conn_entity *e, long pending, char **err)
{
	(void)e;
	struct pio *p = PIO(c);
	if (pending <= 0 || p->emp_indexed)
		return true;
	long long pages = count_pages(c, "/v1/company/employees?attributes%5B%5D=email", EMPLOYEE_PAGE, false, err);
	if (pages < 0)
		return false;
	if (pages >= pending)
		return true; /* one filtered GET per new record is cheaper */
	log_info("indexing %lld page(s) of Personio employees before %ld creates", pages, pending);
	strmap_clear(&p->emp_by_email);
	long long seen = 0, total = -1;
	if (!v1_list(c, "/v1/company/employees?attributes%5B%5D=email", EMPLOYEE_PAGE, false, emp_index_item, &seen,
		     &total, err))
		return false;
	if (total >= 0 && seen != total) {
		/* Paging did not give every employee: do not trust an index that may miss one. */
		log_warn("Personio listed %lld of %lld employees; looking each new one up by email instead", seen, total);
		strmap_clear(&p->emp_by_email);
		return true;
	}
	p->emp_indexed = true;
	return true;
}

static void emp_patched(struct op *op)
{
	if (op->call.status == 404) {
		/* Deleted on Personio: create it again (after looking for it by email). */
		log_rec(L_WARN, op->key, "update", "employee %s no longer exists on Personio; creating it again",
			op->platform_id);
		free(op->platform_id);
		op->platform_id = NULL;
		jv_free(op->old);
		op->old = NULL;
		op->action = ACT_CREATE;
		emp_find(op);
		return;
	}
	if (!op_ok(op)) {
		op_fail_answer(op, op->action == ACT_RESTORE ? "re-activating the employee" : "updating the employee");
		return;
	}
	op->main_done = true;
	emp_written(op, op->action == ACT_RESTORE ? "re-activated" : "updated");
}

static void emp_patch(struct op *op)
{
	const char *status = NULL;
	if (op->action == ACT_RESTORE && !jv_obj_get(op->payload, "status"))
		status = "active";
	char *path = xasprintf("/v1/company/employees/%s", op->platform_id);
	op_send(op, "PATCH", path, emp_body(op->payload, false, status), emp_patched);
	free(path);
}

static void emp_email_checked(struct op *op)
{
	if (!op_ok(op)) {
		op_fail_answer(op, "reading the employee's email on Personio");
		return;
	}
	struct jv *j = op_json(op);
	if (!j)
		return;
	const struct jv *em = attr_value(jv_obj_get(j, "data"), "email");
	bool done_by_hand = em && em->t == JV_STR && same_email(em->u.str.s, emp_email(op));
	jv_free(j);
	if (!done_by_hand) {
		op_finish(op, OPR_REFUSED,
			  "the ERP changed this employee's email; Personio's API cannot change an email, and email is how "
			  "Personio and hrsync tell people apart, so no second person was created. Change the email in "
			  "Personio by hand, then run `hrsync retry %s %s`",
			  op->mapping, op->key);
		return;
	}
	emp_patch(op);
}

static void emp_update(struct op *op)
{
	const char *was = jv_obj_str(op->old, "email"), *now = emp_email(op);
	if (was && now && !same_email(was, now)) {
		/* Perhaps HR already changed it in Personio: then the rest may go through. */
		char *path = xasprintf("/v1/company/employees/%s", op->platform_id);
		op_send(op, "GET", path, NULL, emp_email_checked);
		free(path);
		return;
	}
	if (op->old && jv_equal(op->old, op->payload) && op->action == ACT_UPDATE) {
		op->main_done = true; /* --full with nothing changed */
		op_finish(op, OPR_OK, NULL);
		return;
	}
	emp_patch(op);
}

static void emp_terminated(struct op *op)
{
	if (op->call.status == 404) {
		log_rec(L_WARN, op->key, "terminate", "employee %s no longer exists on Personio: nothing to terminate",
			op->platform_id);
		op_finish(op, OPR_OK, NULL);
		return;
	}
	if (!op_ok(op)) {
		op_fail_answer(op, "setting the employee inactive");
		return;
	}
	op_finish(op, OPR_OK, NULL);
}

static void emp_start(struct op *op)
{
	switch (op->action) {
	case ACT_CREATE:
		emp_find(op);
		break;
	case ACT_UPDATE:
	case ACT_RESTORE:
		emp_update(op);
		break;
	case ACT_TERMINATE: {
		/* Leaving is a status Personio keeps; terminate fields (if any) go along. */
		char *path = xasprintf("/v1/company/employees/%s", op->platform_id);
		op_send(op, "PATCH", path, emp_body(op->term, false, "inactive"), emp_terminated);
		free(path);
		break;
	}
	}
}

/* ================= absences (time-offs and absence periods) ================= */

/*
 * 'd' (time-off, days) or 'h' (absence period, hours) for the payload's type. Otherwise 0
 * and *why; *refused tells a type Personio does not have from a list that could not be read.
 */
static char abs_unit(struct op *op, char **why, bool *refused)
{
	struct pio *p = PIO(op->conn);
	char *err = NULL;
	*refused = false;
	if (!load_types(op->conn, NULL, &err)) {
		*why = xasprintf("reading Personio's time-off types: %s", err ? err : "failed");
		free(err);
		return 0;
	}
	char *tid = jv_scalar_text(jv_obj_get(op->payload, "time_off_type_id"));
	const char *unit = NULL;
	if (!tid || !strmap_get(&p->type_unit, tid, &unit) || !unit) {
		*why = tid ? xasprintf("time-off type %s does not exist on Personio", tid)
			   : xstrdup("no time_off_type_id");
		*refused = true;
		free(tid);
		return 0;
	}
	free(tid);
	return streq(unit, "hour") ? 'h' : 'd';
}

static bool single_day(const struct jv *payload)
{
	const char *s = jv_obj_str(payload, "start_date"), *e = jv_obj_str(payload, "end_date");
	return s && e && streq(s, e);
}

/*
 * The form body of a create. Day-unit types take both half-day flags (false when the
 * mapping leaves them out); hour-unit types take start_time/end_time on a single day and the
 * half-day flags only on several days, as Personio documents. Caller frees; NULL + *why.
 */
static char *abs_form(struct op *op, char unit, char **why)
{
	const struct jv *pl = op->payload;
	bool one = single_day(pl);
	if (unit == 'h' && one && (jv_is_null(jv_obj_get(pl, "start_time")) || jv_is_null(jv_obj_get(pl, "end_time")))) {
		*why = xstrdup("an absence of an hour-based type on a single day needs start_time and end_time (HH:MM)");
		return NULL;
	}
	struct sb b = {0};
	for (size_t i = 0; pl && pl->t == JV_OBJ && i < pl->u.obj.n; i++) {
		const char *k = pl->u.obj.k[i];
		bool times = streq(k, "start_time") || streq(k, "end_time");
		bool halves = streq(k, "half_day_start") || streq(k, "half_day_end");
		if (streq(k, "comment") || (times && (unit == 'd' || !one)) || (halves && (unit == 'd' || one)))
			continue;
		form_add_jv(&b, k, pl->u.obj.v[i]);
	}
	if (unit == 'd') {
		const struct jv *hs = jv_obj_get(pl, "half_day_start"), *he = jv_obj_get(pl, "half_day_end");
		form_add(&b, "half_day_start", hs && hs->t == JV_BOOL && hs->u.b ? "1" : "0");
		form_add(&b, "half_day_end", he && he->t == JV_BOOL && he->u.b ? "1" : "0");
	}
	char *c = op_with_marker(op, jv_obj_str(pl, "comment"));
	form_add(&b, "comment", c);
	free(c);
	return sb_steal(&b);
}

static const char *abs_path(char unit)
{
	return unit == 'h' ? "/v1/company/absence-periods" : "/v1/company/time-offs";
}

/* The kind of an existing record: from op->extra, else from the id's shape (UUIDs are hours). */
static char abs_kind_of(const struct op *op)
{
	const char *k = jv_obj_str(op->extra, "kind");
	if (k)
		return streq(k, "absence-period") ? 'h' : 'd';
	for (const char *p = op->platform_id; p && *p; p++)
		if (*p < '0' || *p > '9')
			return 'h';
	return 'd';
}

static void abs_find(struct op *op);

/* {"data": {"attributes": {"id": ...}}}, or a list of one (the absence-period example shows that). */
static char *abs_created_id(const struct jv *answer)
{
	const struct jv *d = jv_obj_get(answer, "data");
	if (d && d->t == JV_ARR)
		d = d->u.arr.n ? d->u.arr.v[0] : NULL;
	const struct jv *id = jv_obj_get(jv_obj_get(d, "attributes"), "id");
	return jv_id_text(id ? id : jv_obj_get(d, "id"));
}

static void abs_posted(struct op *op)
{
	char unit = op->step == 'h' ? 'h' : 'd';
	/* A lost answer: look for it on Personio (not in the index, which cannot know) first. */
	if (!op_created(op, unit == 'h' ? "creating the absence period" : "creating the time-off", abs_find,
			abs_created_id))
		return;
	extra_set(op, "kind", unit == 'h' ? "absence-period" : "time-off");
	op_finish(op, OPR_OK, NULL);
}

static void abs_post(struct op *op)
{
	char *why = NULL;
	bool refused;
	char unit = abs_unit(op, &why, &refused);
	if (!unit) {
		op_finish(op, refused ? OPR_REFUSED : op->conn->pacer.stopped ? OPR_STOPPED : OPR_TRANSIENT, "%s", why);
		free(why);
		return;
	}
	char *form = abs_form(op, unit, &why);
	if (!form) {
		op_finish(op, OPR_REFUSED, "%s", why);
		free(why);
		return;
	}
	op->step = unit; /* which endpoint, for abs_posted (op->step is the connector's while an op runs) */
	op_send_form(op, "POST", abs_path(unit), form, abs_posted);
}

static void abs_stale_deleted(struct op *op)
{
	if (!op_ok(op) && op->call.status != 404) {
		op_fail_answer(op, "deleting an outdated copy of the absence");
		return;
	}
	abs_post(op);
}

/* Found one of ours: the same payload is adopted; an outdated one is replaced. */
static void abs_found(struct op *op, char unit, const char *id, const char *fp)
{
	if (streq(fp, op->fp)) {
		free(op->platform_id);
		op->platform_id = xstrdup(id);
		extra_set(op, "kind", unit == 'h' ? "absence-period" : "time-off");
		op->adopted = true;
		op->main_done = true;
		log_rec(L_INFO, op->key, "adopt", "absence already on Personio as id %s", id);
		op_finish(op, OPR_OK, NULL);
		return;
	}
	char *path = xasprintf("%s/%s", abs_path(unit), id);
	op_send(op, "DELETE", path, NULL, abs_stale_deleted);
	free(path);
}

static char *abs_search_path(struct op *op, char unit, long long page)
{
	char *emp = jv_scalar_text(jv_obj_get(op->payload, "employee_id"));
	char *e = url_encode(emp ? emp : "0");
	const char *sd = jv_obj_str(op->payload, "start_date"), *ed = jv_obj_str(op->payload, "end_date");
	char *s = url_encode(sd ? sd : ""), *t = url_encode(ed ? ed : "");
	char *path = xasprintf("%s?employees%%5B%%5D=%s%s%s%s%s&limit=%d&offset=%lld", abs_path(unit), e,
			       sd ? "&start_date=" : "", sd ? s : "", ed ? "&end_date=" : "", ed ? t : "", TIME_OFF_PAGE,
			       page);
	free(emp);
	free(e);
	free(s);
	free(t);
	return path;
}

static void abs_listed(struct op *op)
{
	if (!op_ok(op)) {
		op_fail_answer(op, "looking for the absence on Personio");
		return;
	}
	struct jv *j = op_json(op);
	if (!j)
		return;
	char unit = (char)(op->step >> 16);
	long long page = op->step & 0xffff;
	const struct jv *data = jv_obj_get(j, "data");
	for (size_t i = 0; data && data->t == JV_ARR && i < data->u.arr.n; i++) {
		const struct jv *a = jv_obj_get(data->u.arr.v[i], "attributes");
		char fp[17];
		char *key = op_marker_key(jv_obj_str(a, "comment"), fp);
		if (key && streq(key, op->key)) {
			char *id = jv_id_text(jv_obj_get(a, "id"));
			free(key);
			jv_free(j);
			if (!id) {
				op_finish(op, OPR_TRANSIENT, "looking for the absence: an item carries no id");
				return;
			}
			abs_found(op, unit, id, fp);
			free(id);
			return;
		}
		free(key);
	}
	const struct jv *tp = jv_obj_get(jv_obj_get(j, "metadata"), "total_pages");
	bool more = tp && tp->t == JV_INT && page < tp->u.i && data && data->t == JV_ARR && data->u.arr.n > 0;
	jv_free(j);
	if (more && page < 50) {
		/* `offset` is a page number here: the next page is offset + 1. */
		op->step = (unit << 16) | (int)(page + 1);
		char *path = abs_search_path(op, unit, page + 1);
		op_send(op, "GET", path, NULL, abs_listed);
		free(path);
		return;
	}
	abs_post(op);
}

static void abs_find(struct op *op)
{
	struct pio *p = PIO(op->conn);
	char *why = NULL;
	bool refused;
	char unit = abs_unit(op, &why, &refused);
	if (!unit) {
		op_finish(op, refused ? OPR_REFUSED : op->conn->pacer.stopped ? OPR_STOPPED : OPR_TRANSIENT, "%s", why);
		free(why);
		return;
	}
	if (p->abs_indexed && op->attempt == 0) {
		const char *v = NULL;
		if (strmap_get(&p->abs_by_key, op->key, &v) && v && v[0] && v[1] == '|') {
			const char *bar = strchr(v + 2, '|');
			char *id = xstrndup(v + 2, bar ? (size_t)(bar - v - 2) : strlen(v + 2));
			abs_found(op, v[0], id, bar ? bar + 1 : "");
			free(id);
			return;
		}
		abs_post(op);
		return;
	}
	if (jv_is_null(jv_obj_get(op->payload, "employee_id"))) {
		abs_post(op); /* Personio will say what is missing */
		return;
	}
	op->step = (unit << 16) | 1;
	char *path = abs_search_path(op, unit, 1);
	op_send(op, "GET", path, NULL, abs_listed);
	free(path);
}

struct abs_index {
	char unit;
	long long seen;
};

static bool abs_index_item(struct connector *c, const struct jv *item, void *ud)
{
	struct abs_index *ai = ud;
	const struct jv *a = jv_obj_get(item, "attributes");
	char fp[17];
	char *key = op_marker_key(jv_obj_str(a, "comment"), fp);
	char *id = jv_id_text(jv_obj_get(a, "id"));
	ai->seen++;
	if (key && id) {
		char *v = xasprintf("%c|%s|%s", ai->unit, id, fp);
		strmap_put(&PIO(c)->abs_by_key, key, v);
		free(v);
	}
	free(key);
	free(id);
	return true;
}

static bool abs_prepare(struct connector *c, const struct conn_entity *e, long pending, char **err)
{
	(void)e;
	struct pio *p = PIO(c);
	if (!load_types(c, NULL, err))
		return false;
	if (pending <= 0 || p->abs_indexed)
		return true;
	long long a = count_pages(c, "/v1/company/time-offs", TIME_OFF_PAGE, true, err);
	long long b = a < 0 ? -1 : count_pages(c, "/v1/company/absence-periods", TIME_OFF_PAGE, true, err);
	if (a < 0 || b < 0)
		return false;
	if (a + b >= pending)
		return true;
	log_info("indexing %lld page(s) of Personio time-offs and absence periods before %ld creates", a + b, pending);
	strmap_clear(&p->abs_by_key);
	static const char units[] = {'d', 'h'};
	for (int i = 0; i < 2; i++) {
		struct abs_index ai = {units[i], 0};
		long long total = -1;
		if (!v1_list(c, abs_path(units[i]), TIME_OFF_PAGE, true, abs_index_item, &ai, &total, err))
			return false;
		if (total >= 0 && ai.seen != total) {
			log_warn("Personio listed %lld of %lld %s; looking each new absence up instead", ai.seen, total,
				 units[i] == 'h' ? "absence periods" : "time-offs");
			strmap_clear(&p->abs_by_key);
			return true;
		}
	}
	p->abs_indexed = true;
	return true;
}

static void abs_old_deleted(struct op *op)
{
	if (!op_ok(op) && op->call.status != 404) {
		op_fail_answer(op, "deleting the absence before creating it again");
		return;
	}
	/* The old one is gone: from here on this is a create, and a kill now loses nothing. */
	if (PIO(op->conn)->abs_indexed)
		strmap_put(&PIO(op->conn)->abs_by_key, op->key, NULL);
	free(op->platform_id);
	op->platform_id = NULL;
	jv_free(op->extra);
	op->extra = NULL;
	op->main_done = false;
	abs_find(op);
}

static void abs_deleted(struct op *op)
{
	if (!op_ok(op) && op->call.status != 404) {
		op_fail_answer(op, "deleting the absence");
		return;
	}
	op_finish(op, OPR_OK, NULL);
}

static void abs_start(struct op *op)
{
	if (op->action == ACT_CREATE) {
		abs_find(op);
		return;
	}
	char *path = xasprintf("%s/%s", abs_path(abs_kind_of(op)), op->platform_id);
	/* Personio cannot edit a time-off or an absence period: a change replaces it. */
	op_send(op, "DELETE", path, NULL, op->action == ACT_TERMINATE ? abs_deleted : abs_old_deleted);
	free(path);
}

/* ================= attendances (v2 attendance periods) ================= */

/* A local date-time as v2 wants it: "YYYY-MM-DDTHH:MM:SS", no offset. NULL + *why when it cannot be. */
static char *local_dt(const char *v, const char *field, char **why)
{
	size_t n = strlen(v);
	if (n >= 1 && v[n - 1] == 'Z') {
		*why = xasprintf("%s: Personio takes local times without offset; '%s' is UTC (format it as local time)",
				 field, v);
		return NULL;
	}
	/* A numeric offset (what `format: datetime` adds) is the local zone's: the wall-clock time stays. */
	if (n > 19 && (v[19] == '+' || v[19] == '-'))
		n = 19;
	if (n == 16)
		return xasprintf("%.*s:00", 16, v);
	if (n < 19 || v[10] != 'T') {
		*why = xasprintf("%s: '%s' is not a date-time such as 2026-11-02T09:00:00", field, v);
		return NULL;
	}
	return xstrndup(v, 19);
}

static struct jv *att_body(struct op *op, bool with_person, char **why)
{
	const struct jv *pl = op->payload;
	struct jv *b = jv_obj();
	for (size_t i = 0; pl && pl->t == JV_OBJ && i < pl->u.obj.n; i++) {
		const char *k = pl->u.obj.k[i];
		const struct jv *v = pl->u.obj.v[i];
		if (streq(k, "person_id")) {
			if (with_person) {
				char *pid = jv_scalar_text(v);
				struct jv *p = jv_obj();
				jv_obj_set(p, "id", pid ? jv_str(pid) : jv_null());
				jv_obj_set(b, "person", p);
				free(pid);
			}
		} else if (streq(k, "start") || streq(k, "end")) {
			if (jv_is_null(v) || v->t != JV_STR) {
				jv_obj_set(b, k, jv_null());
				continue;
			}
			char *t = local_dt(v->u.str.s, k, why);
			if (!t) {
				jv_free(b);
				return NULL;
			}
			struct jv *o = jv_obj();
			jv_obj_set(o, "date_time", jv_str(t));
			jv_obj_set(b, k, o);
			free(t);
		} else if (streq(k, "project_id")) {
			if (!jv_is_null(v)) {
				struct jv *o = jv_obj();
				char *t = jv_scalar_text(v);
				jv_obj_set(o, "id", jv_str(t));
				jv_obj_set(b, "project", o);
				free(t);
			}
		} else if (!streq(k, "comment") && !streq(k, "skip_approval")) {
			jv_obj_set(b, k, jv_copy(v));
		}
	}
	if (!jv_obj_get(b, "type"))
		jv_obj_set(b, "type", jv_str("WORK"));
	char *c = op_with_marker(op, jv_obj_str(pl, "comment"));
	jv_obj_set(b, "comment", jv_str(c));
	free(c);
	return b;
}

static void att_find(struct op *op);

/* v2: {"id": "uuid"} or {"data": {"id": ...}} */
static char *att_created_id(const struct jv *answer)
{
	char *id = jv_id_text(jv_obj_get(answer, "id"));
	return id ? id : jv_id_text(jv_obj_get(jv_obj_get(answer, "data"), "id"));
}

static void att_posted(struct op *op)
{
	if (op_created(op, "creating the attendance period", att_find, att_created_id))
		op_finish(op, OPR_OK, NULL);
}

static void att_post(struct op *op)
{
	char *why = NULL;
	struct jv *b = att_body(op, true, &why);
	if (!b) {
		op_finish(op, OPR_REFUSED, "%s", why);
		free(why);
		return;
	}
	const struct jv *skip = jv_obj_get(op->payload, "skip_approval");
	bool no_skip = skip && skip->t == JV_BOOL && !skip->u.b;
	op_send_raw(op, "POST", no_skip ? "/v2/attendance-periods?skip_approval=false"
					: "/v2/attendance-periods?skip_approval=true",
		    b, att_posted);
}

static void att_stale_deleted(struct op *op)
{
	if (!op_ok(op) && op->call.status != 404) {
		op_fail_answer(op, "deleting an outdated copy of the attendance period");
		return;
	}
	att_post(op);
}

static void att_listed(struct op *op)
{
	if (!op_ok(op)) {
		op_fail_answer(op, "looking for the attendance period on Personio");
		return;
	}
	struct jv *j = op_json(op);
	if (!j)
		return;
	const struct jv *data = jv_obj_get(j, "_data");
	if (!data)
		data = jv_obj_get(j, "data");
	for (size_t i = 0; data && data->t == JV_ARR && i < data->u.arr.n; i++) {
		char fp[17];
		char *key = op_marker_key(jv_obj_str(data->u.arr.v[i], "comment"), fp);
		if (!key || !streq(key, op->key)) {
			free(key);
			continue;
		}
		free(key);
		char *id = jv_id_text(jv_obj_get(data->u.arr.v[i], "id"));
		jv_free(j);
		if (!id) {
			op_finish(op, OPR_TRANSIENT, "looking for the attendance period: an item carries no id");
			return;
		}
		free(op->platform_id);
		op->platform_id = id;
		if (streq(fp, op->fp)) {
			op->adopted = true;
			op->main_done = true;
			log_rec(L_INFO, op->key, "adopt", "attendance period already on Personio as id %s", id);
			op_finish(op, OPR_OK, NULL);
			return;
		}
		char *path = xasprintf("/v2/attendance-periods/%s", id);
		free(op->platform_id);
		op->platform_id = NULL;
		op_send(op, "DELETE", path, NULL, att_stale_deleted);
		free(path);
		return;
	}
	jv_free(j);
	att_post(op);
}

/* One person's periods that start on the same day (a day holds far fewer than a page). */
static void att_find(struct op *op)
{
	char *pid = jv_scalar_text(jv_obj_get(op->payload, "person_id"));
	const char *start = jv_obj_str(op->payload, "start");
	if (!pid || !start || strlen(start) < 10) {
		free(pid);
		att_post(op); /* Personio will say what is missing */
		return;
	}
	char *p = url_encode(pid);
	char *path = xasprintf("/v2/attendance-periods?person.id=%s&start.date_time.gte=%.10sT00:00:00"
			       "&start.date_time.lte=%.10sT23:59:59&limit=200",
			       p, start, start);
	op_send(op, "GET", path, NULL, att_listed);
	free(path);
	free(p);
	free(pid);
}

static void att_patched(struct op *op)
{
	if (op->call.status == 404) {
		log_rec(L_WARN, op->key, "update", "attendance period %s no longer exists on Personio; creating it again",
			op->platform_id);
		free(op->platform_id);
		op->platform_id = NULL;
		op->action = ACT_CREATE;
		att_find(op);
		return;
	}
	if (!op_ok(op)) {
		op_fail_answer(op, "updating the attendance period");
		return;
	}
	op->main_done = true;
	op_finish(op, OPR_OK, NULL);
}

static void att_deleted(struct op *op)
{
	if (!op_ok(op) && op->call.status != 404) {
		op_fail_answer(op, "deleting the attendance period");
		return;
	}
	op_finish(op, OPR_OK, NULL);
}

static void att_start(struct op *op)
{
	if (op->action == ACT_CREATE) {
		att_find(op);
		return;
	}
	char *path = xasprintf("/v2/attendance-periods/%s", op->platform_id);
	if (op->action == ACT_TERMINATE) {
		op_send(op, "DELETE", path, NULL, att_deleted);
	} else {
		char *why = NULL;
		struct jv *b = att_body(op, false, &why);
		if (b) {
			op_send(op, "PATCH", path, b, att_patched);
		} else {
			op_finish(op, OPR_REFUSED, "%s", why);
			free(why);
		}
	}
	free(path);
}

/* ================= pull: absences asked for on Personio, back to the ERP ================= */

struct pull_ctx {
	bool (*cb)(void *ud, const char *platform_id, const struct jv *record);
	void *ud;
	long long seen, passed;
	bool stopped;
};

static bool pull_item(struct connector *c, const struct jv *item, void *ud)
{
	(void)c;
	struct pull_ctx *pc = ud;
	pc->seen++;
	const struct jv *a = jv_obj_get(item, "attributes");
	/* What hrsync pushed from the ERP is the ERP's already: only what Personio owns comes back. */
	char fp[17];
	char *mine = op_marker_key(jv_obj_str(a, "comment"), fp);
	bool ours = mine != NULL;
	free(mine);
	if (ours)
		return true;
	char *id = jv_id_text(jv_obj_get(a, "id"));
	bool go = true;
	if (id) {
		pc->passed++;
		go = pc->cb(pc->ud, id, item);
	}
	free(id);
	if (!go)
		pc->stopped = true;
	return go;
}

/*
 * absences: time-offs (day-unit types); absence_periods: absence periods (hour-unit types),
 * two entities because their records differ in shape (start_date vs start, time_off_type vs
 * absence_type). Each record goes to cb exactly as Personio returned it ({"type",
 * "attributes": {...}}); the engine applies the mapping's filter. With a cursor (ours: the
 * UTC day of the last listing) only what changed since that day minus a small look-back is
 * listed (updated_from: a date on time-offs, a date-time on absence periods); without one,
 * everything, and *complete is set.
 */
static bool pio_pull(struct connector *c, const char *entity, const struct jv *filter, const char *cursor,
		     bool (*cb)(void *ud, const char *platform_id, const struct jv *record), void *ud, char **next_cursor,
		     bool *complete, char **err)
{
	(void)filter; /* applied by the engine: Personio cannot filter by status anyway */
	bool hours = streq(entity, "absence_periods");
	if (!hours && !streq(entity, "absences")) {
		*err = xasprintf("connector %s pulls absences and absence_periods, not %s", c->name, entity);
		return false;
	}
	char today[16], from[16];
	today_utc(today);
	bool incremental = cursor && strlen(cursor) >= 10 && cursor[4] == '-' && cursor[7] == '-';
	char *path;
	if (incremental) {
		date_add(cursor, -PULL_LOOKBACK_DAYS, from);
		path = hours ? xasprintf("%s?updated_from=%sT00:00:00", abs_path('h'), from)
			     : xasprintf("%s?updated_from=%s", abs_path('d'), from);
	} else {
		path = xstrdup(abs_path(hours ? 'h' : 'd'));
	}
	struct pull_ctx pc = {cb, ud, 0, 0, false};
	long long total = -1;
	bool ok = v1_list(c, path, TIME_OFF_PAGE, true, pull_item, &pc, &total, err);
	free(path);
	*complete = false;
	if (!ok)
		return false;
	if (total >= 0 && pc.seen != total) {
		*err = xasprintf("Personio listed %lld of %lld %s; the pull is not complete and will be tried again",
				 pc.seen, total, hours ? "absence periods" : "time-offs");
		return false;
	}
	*complete = !incremental;
	*next_cursor = xstrdup(today);
	log_info("pulled %lld Personio %s (%lld listed%s)", pc.passed, hours ? "absence periods" : "time-offs", pc.seen,
		 incremental ? ", changed lately" : ", all of them");
	return true;
}

/* ================= the connector ================= */

static bool pio_init(struct connector *c, char **err)
{
	(void)err;
	c->priv = xcalloc(1, sizeof(struct pio));
	return true;
}

static void pio_destroy(struct connector *c)
{
	struct pio *p = PIO(c);
	if (!p)
		return;
	token_drop(p);
	strmap_clear(&p->type_unit);
	strmap_clear(&p->emp_by_email);
	strmap_clear(&p->emp_claimed);
	strmap_clear(&p->abs_by_key);
	free(p);
	c->priv = NULL;
}

static const char *const emp_nested[] = {"custom_attributes", NULL};
static const char *const emp_required[] = {"email", "first_name", "last_name", NULL};
static const char *const abs_required[] = {"employee_id", "time_off_type_id", "start_date", "end_date", NULL};
static const char *const att_required[] = {"person_id", "start", NULL};

static const struct id_field abs_ids[] = {{"time_off_type_id", "time_off_types"}, {NULL, NULL}};

static const struct conn_entity pio_entities[] = {
	{"employees", TERM_KEEP, emp_nested, emp_required, emp_prepare, emp_start, NULL},
	{"absences", TERM_DELETE, NULL, abs_required, abs_prepare, abs_start, abs_ids},
	{"attendances", TERM_DELETE, NULL, att_required, NULL, att_start, NULL},
	{NULL, TERM_NONE, NULL, NULL, NULL, NULL, NULL},
};

static const char *const pio_resources[] = {"time_off_types", "departments", "offices", "subcompanies", NULL};
static const char *const pio_pull_entities[] = {"absences", "absence_periods", NULL};

static const struct conn_option pio_options[] = {
	{"client_id", OPT_SECRET, true, "the Personio API client id, e.g. { env: PERSONIO_CLIENT_ID }"},
	{"client_secret", OPT_SECRET, true, "the Personio API client secret, e.g. { credential: personio-secret }"},
	{NULL, OPT_STRING, false, NULL},
};

const struct connector_type personio_connector = {
	.name = "personio",
	.options = pio_options,
	.entities = pio_entities,
	.resources = pio_resources,
	/*
	 * The tightest documented limit on the requests this connector makes: 150/min on
	 * POST /v2/auth/token (GET /v1/company/employees: 300/min, all of v1: 2000/min).
	 */
	.default_rate = 150.0 / 60.0,
	.native_refs = false,
	.init = pio_init,
	.destroy = pio_destroy,
	.auth = pio_auth,
	.list = pio_list,
	/* No find_by_key: Personio keeps no ERP key, and an employee is found only by email. */
	.reauth = pio_reauth,
	.pull = pio_pull,
	.pull_entities = pio_pull_entities,
};
