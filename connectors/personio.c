/*
 * personio — the Personio API: v1 for employees and absences, v2 for attendance periods
 * (v1 attendances were retired in Aug 2026) and for the token.
 *
 * Auth: client credentials, POST /v2/auth/token (the kit's token: reused until shortly
 * before it expires, renewed once on 401). Paths start at base_url: /v1/..., /v2/....
 *
 * Entities (the table at the end):
 *   employees    {"employee": {...}} envelope; leaving is status "inactive" (Personio keeps
 *                it), a re-hire status "active". E-mail is the natural key and Personio's
 *                API cannot change it: an ERP e-mail change is refused with a clear message
 *                instead of creating a second person. Department, office and subcompany go
 *                by name; a name Personio does not know is ignored "with a meta error": the
 *                employee is kept, the record refused with that message. custom_attributes
 *                goes inside the envelope (dynamic_NNN fields).
 *   absences     the unit of the time-off type (GET /v1/company/time-off-types, read in
 *                prepare) picks the endpoint: day-unit types are time-offs, hour-unit types
 *                absence periods. Form bodies, booleans as 1/0. Personio can edit neither, so
 *                a change replaces the record; no external id: the comment carries hrsync's
 *                marker.
 *   attendances  v2 attendance periods: create, update (PATCH), delete; the same marker.
 *
 * Lists: `offset` is a record offset on employees and time-off types, but a page number
 * (1-based) on time-offs and absence periods.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "../daemon/kit.h"
#include "../daemon/log.h"

#define PULL_LOOKBACK_DAYS 2   /* a pull re-reads what changed this long before the cursor */

struct pio {
	struct strmap type_unit;       /* time-off type id -> "day" | "hour" */
	bool types_loaded;
	struct nat_index emp_by_email;
	struct strmap emp_claimed;     /* employee id -> ERP key that created or adopted it this run */
	struct nat_index time_offs, periods;   /* markers of absences, by unit */
};

static struct pio *PIO(const struct connector *c)
{
	return c->priv;
}

/* employees: a record offset, 100 a page (the most since Jan 2025) */
static const struct pager employee_pages = {.style = PAGE_OFFSET, .param = "offset", .size_param = "limit",
					    .size = 100, .pages = "metadata.total_pages",
					    .total = "metadata.total_elements"};
static const struct pager type_pages = {.style = PAGE_OFFSET, .param = "offset", .size_param = "limit", .size = 200,
					.pages = "metadata.total_pages", .total = "metadata.total_elements"};
/* time-offs and absence periods: `offset` is a page number */
static const struct pager absence_pages = {.style = PAGE_AS_OFFSET, .param = "offset", .first = 1,
					   .size_param = "limit", .size = 200, .pages = "metadata.total_pages",
					   .total = "metadata.total_elements"};
static const struct pager v2_pages = {.style = PAGE_ONE, .items = "_data|data"};

/* ================= messages ================= */

/*
 * Personio v1: "The given data failed to pass validation." with the reasons in
 * error.error_data (field -> [messages], sometimes as a JSON string) and batch errors in
 * error.detailed_message[]. Other shapes are the kit's.
 */
static char *pio_message(const struct jv *j)
{
	const struct jv *e = jv_obj_get(j, "error");
	if (!e || e->t != JV_OBJ || jv_obj_get(j, "errors"))
		return NULL;
	struct sb b = {0};
	const struct jv *data = jv_obj_get(e, "error_data");
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
	const struct jv *dm = jv_obj_get(e, "detailed_message");
	for (size_t i = 0; dm && dm->t == JV_ARR && i < dm->u.arr.n && i < 5; i++) {
		const char *m = jv_obj_str(dm->u.arr.v[i], "error_msg");
		if (m)
			sb_printf(&b, "%s%s", b.len ? "; " : "", m);
	}
	return b.len ? sb_steal(&b) : NULL;
}

/* ================= lookups ================= */

/* A time-off type's unit (days, hours), kept for the absences: from its attributes. */
static void note_type(struct connector *c, const struct jv *a)
{
	char *id = jv_id_text(jv_obj_get(a, "id"));
	const char *unit = jv_obj_str(a, "unit");
	if (id && unit)
		strmap_put(&PIO(c)->type_unit, id, unit);
	free(id);
}

static bool type_item(void *ud, const struct jv *item)
{
	note_type(ud, jv_obj_get(item, "attributes"));
	return true;
}

static bool load_types(struct connector *c, char **err)
{
	struct pio *p = PIO(c);
	if (p->types_loaded)
		return true;
	strmap_clear(&p->type_unit);
	p->types_loaded = conn_list(c, &type_pages, "/v1/company/time-off-types", type_item, c, NULL, err);
	return p->types_loaded;
}

/* A department, office or subcompany, from an employee that uses it (l->arg: the attribute). */
static struct jv *org_item(const struct lookup_list *l, const struct jv *employee)
{
	const struct jv *a = jv_obj_get(kit_field(employee, l->arg), "attributes");
	const char *name = jv_obj_str(a, "name");
	if (!name)
		return NULL;
	struct jv *o = jv_obj();
	/* v1 takes departments, offices and subcompanies by name: the name is the "id". */
	jv_obj_set(o, "id", jv_str(name));
	jv_obj_set(o, "name", jv_str(name));
	jv_obj_set(o, "personio_id", jv_copy(jv_obj_get(a, "id")));
	return o;
}

/* A time-off type as the lookup sees it: its attributes {id, name, category, unit, ...}. */
static struct jv *type_attributes(const struct lookup_list *l, const struct jv *item)
{
	(void)l;
	const struct jv *a = jv_obj_get(item, "attributes");
	return a && a->t == JV_OBJ ? jv_copy(a) : NULL;
}

/* The types read for a lookup: their units kept, load_types need not read them again. */
static void note_types(struct connector *c, const struct jv *types)
{
	for (size_t i = 0; i < types->u.arr.n; i++)
		note_type(c, types->u.arr.v[i]);
	PIO(c)->types_loaded = true;
}

/*
 * time_off_types: GET /v1/company/time-off-types, each {id, name, category, unit, ...}.
 * departments, offices, subcompanies: Personio v1 has no list of them; they are read from
 * the employees that use them, and the lookup gives the name as Personio spells it (v1
 * takes these by name). See mappings/personio/README.md.
 */
static bool pio_list(struct connector *c, struct lookup_list *l, char **err)
{
	(void)c;
	if (streq(l->resource, "time_off_types")) {
		l->path = xstrdup("/v1/company/time-off-types");
		l->pager = &type_pages;
		l->item = type_attributes;
		l->loaded = note_types;
		return true;
	}
	const char *attr = streq(l->resource, "departments") ? "department"
			   : streq(l->resource, "offices")   ? "office"
			   : streq(l->resource, "subcompanies") ? "subcompany" : NULL;
	if (!attr) {
		*err = xasprintf("no lookup list '%s'", l->resource);
		return false;
	}
	l->path = url_expand("/v1/company/employees", NULL, NULL, QUERY("attributes[]", attr));
	l->pager = &employee_pages;
	l->item = org_item;
	l->arg = attr;
	l->once = "name";
	return true;
}

/* ================= employees ================= */

static const char *emp_email(const struct op *op)
{
	const char *e = jv_obj_str(op->payload, "email");
	return e && *e ? e : NULL;
}

static bool same_email(const char *a, const char *b)
{
	return a && b && strcasecmp(a, b) == 0; /* ASCII is all an e-mail's comparison needs here */
}

/* {"employee": fields}; without email on an update (Personio cannot change it), status on a re-hire. */
static struct jv *emp_body(struct op *op, struct jv *fields, bool create, char **why)
{
	(void)why;
	if (!create)
		jv_free(jv_obj_take(fields, "email"));
	if (op->action == ACT_RESTORE && !jv_obj_get(fields, "status"))
		jv_obj_set(fields, "status", jv_str("active"));
	if (op->action == ACT_TERMINATE)
		jv_obj_set(fields, "status", jv_str("inactive"));
	struct jv *b = jv_obj();
	jv_obj_set(b, "employee", fields);
	return b;
}

/* Names Personio ignored (departments, offices it does not know): "meta" errors in a 2xx answer. */
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

/* The end of a write: OK, or refused when Personio ignored part of it. */
static void emp_written(struct op *op)
{
	struct pio *p = PIO(op->conn);
	if (op->action == ACT_CREATE && !op->adopted) {
		strmap_put(&p->emp_claimed, op->platform_id, op->key);
		nat_add(&p->emp_by_email, emp_email(op), op->platform_id);
	}
	char *meta = meta_errors(op->answer);
	if (meta) {
		const char *what = op->adopted ? "found on Personio and updated" : op->action == ACT_CREATE ? "created"
				   : op->action == ACT_RESTORE ? "re-activated" : "updated";
		op_finish(op, OPR_REFUSED,
			  "%s (id %s), but Personio ignored part of it: %s. Fix the name in the ERP or create it in "
			  "Personio, then `hrsync retry`",
			  what, op->platform_id, meta);
		free(meta);
		return;
	}
	op_finish(op, OPR_OK, NULL);
}

/* One Personio employee for one ERP record: an id adopted this run by another key is refused. */
static void emp_adopt(struct op *op)
{
	struct pio *p = PIO(op->conn);
	const char *owner = NULL;
	if (strmap_get(&p->emp_claimed, op->platform_id, &owner) && owner && !streq(owner, op->key)) {
		op_finish(op, OPR_REFUSED,
			  "the email is already used on Personio by employee %s, which ERP record %s holds; Personio "
			  "needs a different email for each person",
			  op->platform_id, owner);
		return;
	}
	strmap_put(&p->emp_claimed, op->platform_id, op->key);
	kit_adopt_send(op);
}

static void emp_listed(struct op *op)
{
	const struct jv *data = jv_obj_get(op->answer, "data");
	size_t n = 0;
	char *id = NULL;
	/* The filter is exact, but compare anyway: a platform that ignored it must not make us adopt a stranger. */
	for (size_t i = 0; data && data->t == JV_ARR && i < data->u.arr.n; i++) {
		const struct jv *em = kit_field(data->u.arr.v[i], "email");
		if (!em || em->t != JV_STR || !same_email(em->u.str.s, emp_email(op)))
			continue;
		if (n++ == 0)
			id = jv_id_text(kit_field(data->u.arr.v[i], "id"));
	}
	if (n == 0)
		kit_absent(op);
	else if (n > 1 || !id)
		op_finish(op, OPR_REFUSED, "%zu employees on Personio have this email; merge them first", n);
	else
		kit_found(op, id);
	free(id);
}

static const struct step emp_by_email = {.doing = "looking for the employee by email", .ok = emp_listed,
					 .body = true};

static void emp_find(struct op *op)
{
	const char *email = emp_email(op), *id = NULL;
	if (!email) {
		op_finish(op, OPR_REFUSED,
			  "no email: Personio requires one on every employee, and it is how hrsync finds the person again");
		return;
	}
	switch (nat_find(&PIO(op->conn)->emp_by_email, op, email, &id)) {
	case NAT_ONE:
		kit_found(op, id);
		return;
	case NAT_MANY:
		op_finish(op, OPR_REFUSED, "several employees on Personio have this email; merge them first");
		return;
	case NAT_NONE:
		kit_absent(op);
		return;
	case NAT_UNKNOWN:
		op_get(op, &emp_by_email, "/v1/company/employees", QUERY("email", email, "attributes[]", "email"));
		return;
	}
}

static bool emp_prepare(struct connector *c, const struct conn_entity *e, long pending, char **err)
{
	struct nat_index *ix = &PIO(c)->emp_by_email;
	ix->fold = true;
	char *path = url_expand("/v1/company/employees", NULL, NULL, QUERY("attributes[]", "email"));
	bool ok = kit_index(c, e, path, pending, (struct index_key[]){{ix, "email"}, {0}}, err);
	free(path);
	return ok;
}

static void emp_email_checked(struct op *op)
{
	const struct jv *em = kit_field(jv_obj_get(op->answer, "data"), "email");
	if (em && em->t == JV_STR && same_email(em->u.str.s, emp_email(op))) {
		kit_update_send(op); /* HR changed it in Personio already: the rest may go through */
		return;
	}
	op_finish(op, OPR_REFUSED,
		  "the ERP changed this employee's email; Personio's API cannot change an email, and email is how "
		  "Personio and hrsync tell people apart, so no second person was created. Change the email in "
		  "Personio by hand, then run `hrsync retry %s %s`",
		  op->mapping, op->key);
}

static const struct step emp_email_check = {.doing = "reading the employee's email on Personio",
					    .ok = emp_email_checked, .body = true};

static void emp_update(struct op *op)
{
	const char *was = jv_obj_str(op->old, "email"), *now = emp_email(op);
	if (was && now && !same_email(was, now))
		op_send(op, &emp_email_check, "GET", "/v1/company/employees/{id}", NULL);
	else if (op->old && jv_equal(op->old, op->payload) && op->action == ACT_UPDATE)
		kit_written(op); /* --full with nothing changed */
	else
		kit_update_send(op);
}

static void emp_gone(struct op *op)
{
	log_rec(L_WARN, op->key, "terminate", "employee %s no longer exists on Personio: nothing to terminate",
		op->platform_id);
	op_finish(op, OPR_OK, NULL);
}

static const struct step emp_left = {.doing = "setting the employee inactive", .gone = emp_gone};

/* Leaving is a status Personio keeps; terminate fields (if any) go along. */
static void emp_terminate(struct op *op)
{
	struct jv *fields = op->term ? jv_copy(op->term) : jv_obj();
	op_send(op, &emp_left, "PATCH", "/v1/company/employees/{id}", emp_body(op, fields, false, NULL));
}

/* ================= absences (time-offs and absence periods) ================= */

struct absence_op {
	char unit;   /* 'd' a time-off (days), 'h' an absence period (hours): the endpoint */
};

static const char *abs_path(char unit)
{
	return unit == 'h' ? "/v1/company/absence-periods" : "/v1/company/time-offs";
}

static char op_unit(const struct op *op)
{
	const struct absence_op *a = op->cdata;
	if (a && a->unit)
		return a->unit;
	/* A record from an earlier run: the kind kept in extra, else the id's shape (UUIDs are hours). */
	const char *k = jv_obj_str(op->extra, "kind");
	if (k)
		return streq(k, "absence-period") ? 'h' : 'd';
	for (const char *p = op->platform_id; p && *p; p++)
		if (*p < '0' || *p > '9')
			return 'h';
	return 'd';
}

static void set_unit(struct op *op, char unit)
{
	if (!op->cdata)
		op->cdata = xcalloc(1, sizeof(struct absence_op));
	((struct absence_op *)op->cdata)->unit = unit;
	kit_extra_set(op, "kind", unit == 'h' ? "absence-period" : "time-off");
}

static const char *abs_item(const struct op *op)
{
	return op_unit(op) == 'h' ? "/v1/company/absence-periods/{id}" : "/v1/company/time-offs/{id}";
}

/* The unit of the payload's time-off type (read in prepare); 0 when Personio has no such type. */
static char payload_unit(const struct op *op)
{
	char *tid = jv_scalar_text(jv_obj_get(op->payload, "time_off_type_id"));
	const char *unit = NULL;
	bool known = tid && strmap_get(&PIO(op->conn)->type_unit, tid, &unit) && unit;
	free(tid);
	return known ? (streq(unit, "hour") ? 'h' : 'd') : 0;
}

static bool unit_or_refuse(struct op *op, char *unit)
{
	*unit = payload_unit(op);
	if (*unit)
		return true;
	char *tid = jv_scalar_text(jv_obj_get(op->payload, "time_off_type_id"));
	if (tid)
		op_finish(op, OPR_REFUSED, "time-off type %s does not exist on Personio", tid);
	else
		op_finish(op, OPR_REFUSED, "no time_off_type_id");
	free(tid);
	return false;
}

/* A JSON scalar as a form value: booleans as 1/0 (what Laravel's boolean rule takes). */
static void form_add_jv(struct sb *b, const char *k, const struct jv *v)
{
	if (jv_is_null(v))
		return;
	char *t = v->t == JV_BOOL ? xstrdup(v->u.b ? "1" : "0")
		  : v->t == JV_OBJ || v->t == JV_ARR ? jv_dumps(v) : jv_scalar_text(v);
	form_add(b, k, t ? t : "");
	free(t);
}

/*
 * The form body of a create. Day-unit types take both half-day flags (false when the
 * mapping leaves them out); hour-unit types take start_time/end_time on a single day and the
 * half-day flags only on several days, as Personio documents. NULL + *why.
 */
static char *abs_form(struct op *op, char unit, char **why)
{
	const struct jv *pl = op->payload;
	const char *sd = jv_obj_str(pl, "start_date"), *ed = jv_obj_str(pl, "end_date");
	bool one = sd && ed && streq(sd, ed);
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
	char *c = marker_append(op, jv_obj_str(pl, "comment"));
	form_add(&b, "comment", c);
	free(c);
	return sb_steal(&b);
}

static void abs_find(struct op *op);

static const struct step abs_created = {.doing = "creating the %s", .ok = kit_written, .lost = abs_find,
					.refused = kit_create_refused, .creates = true};

static void abs_post(struct op *op)
{
	char unit, *why = NULL;
	if (!unit_or_refuse(op, &unit))
		return;
	char *form = abs_form(op, unit, &why);
	if (!form) {
		op_finish(op, OPR_REFUSED, "%s", why);
		free(why);
		return;
	}
	set_unit(op, unit);
	op_send_form(op, &abs_created, "POST", abs_path(unit), form);
}

/* {"data": {"attributes": {"id": ...}}}, or a list of one (the absence-period example shows that). */
static char *abs_created_id(const struct jv *answer)
{
	const struct jv *d = jv_obj_get(answer, "data");
	if (d && d->t == JV_ARR)
		d = d->u.arr.n ? d->u.arr.v[0] : NULL;
	char *id = jv_id_text(kit_field(d, "id"));
	return id;
}

static void abs_find(struct op *op)
{
	struct pio *p = PIO(op->conn);
	char unit;
	if (!unit_or_refuse(op, &unit))
		return;
	/* Ours may sit in either list: an absence whose type changed unit is replaced. */
	set_unit(op, 'h');
	enum nat_hit h = nat_marker(&p->periods, op);
	if (h == NAT_ONE)
		return;
	set_unit(op, 'd');
	if (h == NAT_NONE && nat_marker(&p->time_offs, op) == NAT_ONE)
		return;
	set_unit(op, unit);
	if (h == NAT_NONE || jv_is_null(jv_obj_get(op->payload, "employee_id"))) {
		kit_absent(op); /* none in the index; or no employee, and Personio will say what is missing */
		return;
	}
	char *emp = jv_scalar_text(jv_obj_get(op->payload, "employee_id"));
	kit_marker_search(op, url_expand(abs_path(unit), NULL, NULL,
					 QUERY("employees[]", emp, "start_date", jv_obj_str(op->payload, "start_date"),
					       "end_date", jv_obj_str(op->payload, "end_date"))));
	free(emp);
}

static bool abs_prepare(struct connector *c, const struct conn_entity *e, long pending, char **err)
{
	struct pio *p = PIO(c);
	if (!load_types(c, err))
		return false;
	if (pending <= 0 || p->time_offs.ready)
		return true;
	long long a = 0, b = 0;
	int wa = conn_worth_indexing(c, e->pager, abs_path('d'), pending, &a, err);
	int wb = wa < 0 ? -1 : conn_worth_indexing(c, e->pager, abs_path('h'), pending, &b, err);
	if (wa < 0 || wb < 0)
		return false;
	if (a < 0 || b < 0 || a + b >= pending)
		return true; /* one search per new record is cheaper */
	log_info("indexing %lld page(s) of Personio time-offs and absence periods before %ld creates", a + b, pending);
	if (!kit_index_all(c, e, abs_path('d'), (struct index_key[]){{&p->time_offs, "comment"}, {0}}, err) ||
	    !kit_index_all(c, e, abs_path('h'), (struct index_key[]){{&p->periods, "comment"}, {0}}, err))
		return false;
	if (!p->time_offs.ready || !p->periods.ready) {
		nat_clear(&p->time_offs);
		nat_clear(&p->periods);
	}
	return true;
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

/* {"id": v} */
static struct jv *ref_obj(const struct jv *v)
{
	char *t = jv_scalar_text(v);
	struct jv *o = jv_obj();
	jv_obj_set(o, "id", t ? jv_str(t) : jv_null());
	free(t);
	return o;
}

/* The v2 body: person (on create) and project as {"id"}, start and end as {"date_time"}. */
static struct jv *att_body(struct op *op, struct jv *f, bool create, char **why)
{
	(void)op;
	struct jv *b = jv_obj();
	for (size_t i = 0; i < f->u.obj.n; i++) {
		const char *k = f->u.obj.k[i];
		const struct jv *v = f->u.obj.v[i];
		if (streq(k, "person_id")) {
			if (create)
				jv_obj_set(b, "person", ref_obj(v));
		} else if (streq(k, "project_id")) {
			if (!jv_is_null(v))
				jv_obj_set(b, "project", ref_obj(v));
		} else if ((streq(k, "start") || streq(k, "end")) && v->t == JV_STR) {
			char *t = local_dt(v->u.str.s, k, why);
			if (!t) {
				jv_free(b);
				jv_free(f);
				return NULL;
			}
			struct jv *o = jv_obj();
			jv_obj_set(o, "date_time", jv_str(t));
			jv_obj_set(b, k, o);
			free(t);
		} else if (streq(k, "start") || streq(k, "end")) {
			jv_obj_set(b, k, jv_null());
		} else if (!streq(k, "skip_approval")) {
			jv_obj_set(b, k, jv_copy(v));
		}
	}
	if (!jv_obj_get(b, "type"))
		jv_obj_set(b, "type", jv_str("WORK"));
	jv_free(f);
	return b;
}

static void att_post(struct op *op)
{
	const struct jv *skip = jv_obj_get(op->payload, "skip_approval");
	bool no_skip = skip && skip->t == JV_BOOL && !skip->u.b;
	kit_post_url(op, url_expand("/v2/attendance-periods", NULL, NULL,
				    QUERY("skip_approval", no_skip ? "false" : "true")));
}

/* One person's periods that start on the same day (a day holds far fewer than a page). */
static void att_find(struct op *op)
{
	char *pid = jv_scalar_text(jv_obj_get(op->payload, "person_id"));
	const char *start = jv_obj_str(op->payload, "start");
	if (!pid || !start || strlen(start) < 10) {
		free(pid);
		kit_absent(op); /* Personio will say what is missing */
		return;
	}
	char from[32], to[32];
	snprintf(from, sizeof from, "%.10sT00:00:00", start);
	snprintf(to, sizeof to, "%.10sT23:59:59", start);
	kit_marker_search(op, url_expand("/v2/attendance-periods", NULL, NULL,
					 QUERY("person.id", pid, "start.date_time.gte", from, "start.date_time.lte", to,
					       "limit", "200")));
	free(pid);
}

/* ================= pull: absences asked for on Personio, back to the ERP ================= */

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
	char today[16], day[16], from[32];
	time_t now = time(NULL);
	struct tm tm;
	gmtime_r(&now, &tm);
	strftime(today, sizeof today, "%Y-%m-%d", &tm);
	bool incremental = cursor && strlen(cursor) >= 10 && cursor[4] == '-' && cursor[7] == '-';
	if (incremental) {
		date_add(cursor, -PULL_LOOKBACK_DAYS, day);
		snprintf(from, sizeof from, "%s%s", day, hours ? "T00:00:00" : "");
	}
	char *path = url_expand(abs_path(hours ? 'h' : 'd'), NULL, NULL,
				QUERY("updated_from", incremental ? from : NULL));
	struct pull_pass pp = {.cb = cb, .ud = ud, .marker = "comment", .ids = hours ? ID_UUID : ID_DIGITS};
	struct list_stats st;
	bool ok = conn_list(c, &absence_pages, path, kit_pull_item, &pp, &st, err);
	free(path);
	*complete = false;
	if (!ok)
		return false;
	if (st.total >= 0 && st.seen != st.total) {
		*err = xasprintf("Personio listed %lld of %lld %s; the pull is not complete and will be tried again",
				 st.seen, st.total, hours ? "absence periods" : "time-offs");
		return false;
	}
	*complete = !incremental;
	*next_cursor = xstrdup(today);
	log_info("pulled %lld Personio %s (%lld listed%s)", pp.passed, hours ? "absence periods" : "time-offs", st.seen,
		 incremental ? ", changed lately" : ", all of them");
	return true;
}

/* ================= the connector ================= */

static void pio_destroy(struct connector *c)
{
	struct pio *p = PIO(c);
	strmap_clear(&p->type_unit);
	strmap_clear(&p->emp_claimed);
	nat_clear_all((struct nat_index *const[]){&p->emp_by_email, &p->time_offs, &p->periods, NULL});
}

/* ================= reconcile: how employees are listed and read back ================= */

/*
 * An employee as listed by v1: each attribute wrapped ({"label", "value"}, kit_field unwraps),
 * custom attributes at the top by their dynamic_NNN name, department, office and subcompany
 * as objects whose name is what a mapping sends.
 */
static struct jv *emp_read_back(const struct jv *item, const char *path)
{
	if (str_has_prefix(path, "custom_attributes."))
		path += 18;
	const struct jv *v = kit_field(item, path);
	if (v && v->t == JV_OBJ && (streq(path, "department") || streq(path, "office") || streq(path, "subcompany"))) {
		const struct jv *name = kit_field(v, "name");
		return name ? jv_copy(name) : jv_null();
	}
	return v ? jv_copy(v) : NULL;
}

static const struct conn_listing emp_listing = {
	.path = "/v1/company/employees",
	.keys = {{"email", NULL, true}},
	.field = emp_read_back,
};

static const struct conn_entity pio_entities[] = {
	{
		.name = "employees", .what = "employee", .term = TERM_KEEP,
		.path = "/v1/company/employees", .item = "/v1/company/employees/{id}", .ids = ID_DIGITS,
		.update_method = "PATCH",
		.pager = &employee_pages, .nested = NAMES("custom_attributes"), .body = emp_body,
		.prepare = emp_prepare, .find = emp_find, .adopt = emp_adopt, .update = emp_update,
		.terminate = emp_terminate, .then = emp_written,
		.required = NAMES("email", "first_name", "last_name"),

		.listing = &emp_listing,
	},
	{
		.name = "absences", .what = "absence", .term = TERM_DELETE, .item_of = abs_item,
		.ids = ID_DIGITS | ID_UUID, /* time-offs, absence periods */
		.marker = "comment", .pager = &absence_pages, .created_id = abs_created_id,
		.prepare = abs_prepare, .find = abs_find, .create = abs_post, .update = kit_replace,
		.required = NAMES("employee_id", "time_off_type_id", "start_date", "end_date"),
		.id_fields = (const struct id_field[]){{"time_off_type_id", "time_off_types"}, {NULL, NULL}},
	},
	{
		.name = "attendances", .what = "attendance period", .term = TERM_DELETE,
		.item = "/v2/attendance-periods/{id}", .ids = ID_UUID, .update_method = "PATCH", .marker = "comment",
		.pager = &v2_pages, .body = att_body, .find = att_find, .create = att_post,
		.required = NAMES("person_id", "start"),
	},
	{0},
};

const struct connector_type personio_connector = {
	.name = "personio",
	.title = "Personio",
	.options = (const struct conn_option[]){
		{"client_id", OPT_SECRET, true, "the Personio API client id, e.g. { env: PERSONIO_CLIENT_ID }"},
		{"client_secret", OPT_SECRET, true, "the Personio API client secret, e.g. { credential: personio-secret }"},
		{NULL, OPT_STRING, false, NULL},
	},
	.auth = {.header = "Authorization: Bearer %s", .client_id = "client_id", .client_secret = "client_secret",
		 .token_path = "/v2/auth/token"},
	.entities = pio_entities,
	.pager = &employee_pages,
	.resources = NAMES("time_off_types", "departments", "offices", "subcompanies"),
	/*
	 * The tightest documented limit on the requests this connector makes: 150/min on
	 * POST /v2/auth/token (GET /v1/company/employees: 300/min, all of v1: 2000/min).
	 */
	.default_rate = 150.0 / 60.0,
	.priv_size = sizeof(struct pio),
	.destroy = pio_destroy,
	.message = pio_message,
	.list = pio_list,
	/* No find_by_key: Personio keeps no ERP key, and an employee is found only by email. */
	.pull = pio_pull,
	.pull_entities = NAMES("absences", "absence_periods"),
};
