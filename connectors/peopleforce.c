/*
 * peopleforce — the PeopleForce public API v3 (docs/connectors.md walks through this file).
 *
 * Auth: X-API-KEY. Lists are page-numbered with a server-fixed page size; the metadata
 * comes flat ({page, pages, count, items}) or nested under "pagination": both are read.
 * Answers come wrapped in "data" or bare (the vendor's own spec says both): both are read.
 * Ids are integers, except asset and assignment ids which the spec types as strings (the
 * entity table declares each shape: an answer with another is refused).
 *
 * Entities (the table at the end):
 *   employees  found by employee number, then e-mail. Terminate: POST .../terminate (a
 *              state PeopleForce keeps); restore: POST .../activate. Departments and
 *              positions go only through the position sub-resource.
 *   absences   leave requests. PeopleForce cannot edit one (a change replaces it) and keeps
 *              no external id for them: the description carries hrsync's marker. A
 *              cancelled absence is deleted.
 *   assets     found by their code (PeopleForce cannot filter by it: the list is read), and
 *              the assignment sub-resource: assign to an employee, return, hand over.
 * Pull: leave requests asked for on PeopleForce come back to the ERP.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../daemon/kit.h"
#include "../daemon/log.h"

struct pf {
	struct nat_index emp_by_number, emp_by_email, leave_by_key, asset_by_code;
};

static struct pf *PF(const struct connector *c)
{
	return c->priv;
}

static const struct pager pf_pages = {.style = PAGE_NUMBER, .param = "page", .first = 1, .items = "data",
				      .pages = "metadata.pagination.pages|metadata.pages"};

/* ================= employees ================= */

static const char *emp_number(const struct op *op)
{
	const char *n = jv_obj_str(op->payload, "employee_number");
	return n && *n ? n : op->key;
}

static bool emp_prepare(struct connector *c, const struct conn_entity *e, long pending, char **err)
{
	struct pf *pf = PF(c);
	pf->emp_by_email.fold = true;
	return kit_index(c, e, "/employees?status=all", pending,
			 (struct index_key[]){{&pf->emp_by_number, "employee_number"}, {&pf->emp_by_email, "email"}, {0}},
			 err);
}

static void emp_email_listed(struct op *op)
{
	const struct jv *data = jv_obj_get(op->answer, "data");
	size_t n = data && data->t == JV_ARR ? data->u.arr.n : 0;
	if (n == 0) {
		kit_absent(op);
		return;
	}
	const char *other = jv_obj_str(data->u.arr.v[0], "employee_number");
	if (n > 1 || (other && *other && !streq(other, emp_number(op))))
		op_finish(op, OPR_REFUSED,
			  "the email is already used on the platform by employee number %s; fix the ERP or the platform",
			  other && *other ? other : "(none)");
	else
		kit_found_item(op, data->u.arr.v[0]);
}

static const struct step emp_by_email_step = {.doing = "looking for the employee by email", .ok = emp_email_listed,
					      .body = true};

static void emp_by_email(struct op *op)
{
	const char *email = jv_obj_str(op->payload, "email");
	if (email && *email)
		op_get(op, &emp_by_email_step, "/employees", QUERY("status", "all", "emails[]", email));
	else
		kit_absent(op);
}

static void emp_number_listed(struct op *op)
{
	const struct jv *data = jv_obj_get(op->answer, "data");
	size_t n = data && data->t == JV_ARR ? data->u.arr.n : 0;
	if (n == 0) {
		emp_by_email(op);
		return;
	}
	if (n > 1)
		op_finish(op, OPR_REFUSED, "%zu employees have employee number %s on the platform; merge them first", n,
			  emp_number(op));
	else
		kit_found_item(op, data->u.arr.v[0]);
}

static const struct step emp_by_number_step = {.doing = "looking for the employee by employee number",
					       .ok = emp_number_listed, .body = true};

static void emp_find(struct op *op)
{
	struct pf *pf = PF(op->conn);
	const char *id = NULL;
	switch (nat_find(&pf->emp_by_number, op, emp_number(op), &id)) {
	case NAT_ONE:
		kit_found(op, id);
		return;
	case NAT_MANY:
		op_finish(op, OPR_REFUSED, "several employees have employee number %s on the platform", emp_number(op));
		return;
	case NAT_NONE:
		/* Not by number: the email may still match (looked up per record, it is rare). */
		if (nat_find(&pf->emp_by_email, op, jv_obj_str(op->payload, "email"), &id) == NAT_NONE)
			kit_absent(op);
		else
			emp_by_email(op);
		return;
	case NAT_UNKNOWN:
		op_get(op, &emp_by_number_step, "/employees", QUERY("status", "all", "employee_numbers[]", emp_number(op)));
		return;
	}
}

/* -- the position sub-resource -- */

static bool same_start(const struct jv *listed, const struct jv *want)
{
	return jv_equal(jv_obj_get(listed, "effective_from"), jv_obj_get(want, "effective_from"));
}

static const struct subres position = {
	.name = "position", .id_key = "position_id", .what = "the employee's position",
	.create = "/employees/{id}/positions", .item = "/employees/{id}/positions/{sub}", .ids = ID_DIGITS,
	.list = "/employees/{id}/positions", .items = "data", .same = same_start,
};

static void emp_position(struct op *op)
{
	const struct jv *pos = jv_obj_get(op->payload, "position");
	const struct jv *old = jv_obj_get(op->old, "position");
	const char *pid = kit_extra(op, "position_id");
	if (!pos || (op->action == ACT_UPDATE && old && jv_equal(pos, old) && pid))
		op_finish(op, OPR_OK, NULL);
	else if (pid && old && same_start(old, pos))
		sub_put(op, &position, pid, jv_copy(pos));
	else if (pid && old)
		sub_post(op, &position); /* a new effective date is a new entry in the position history */
	else if (op->adopted || op->action != ACT_CREATE)
		sub_find(op, &position);
	else
		sub_post(op, &position);
}

/* -- terminate and restore -- */

static void emp_term_checked(struct op *op)
{
	const struct jv *active = jv_obj_get(kit_record(op->answer), "active");
	if (active && active->t == JV_BOOL && !active->u.b)
		op_finish(op, OPR_OK, NULL); /* terminated already: by an interrupted run, or by HR */
	else
		op_finish(op, OPR_REFUSED, "terminating the employee: HTTP 422: %s", op->message ? op->message : "refused");
}

static const struct step emp_term_check = {.doing = "checking the employee's status", .ok = emp_term_checked,
					   .body = true};

/* A 422: PeopleForce refuses a second termination. Was it terminated already? */
static void emp_term_refused(struct op *op)
{
	if (op->call.status != 422) {
		op_fail_answer(op, "terminating the employee");
		return;
	}
	free(op->message);
	op->message = platform_message(op->conn->type, op->call.resp, op->call.resp_len);
	op_send(op, &emp_term_check, "GET", "/employees/{id}", NULL);
}

static void emp_terminate(struct op *op);
/* A lost answer: sent again; a termination that did happen is answered 422, then found done. */
static const struct step emp_terminated = {.doing = "terminating the employee", .refused = emp_term_refused,
					   .lost = emp_terminate};

static void emp_terminate(struct op *op)
{
	op_send(op, &emp_terminated, "POST", "/employees/{id}/terminate", jv_copy(op->term));
}

static void emp_restore(struct op *op);
/* Activating an active employee changes nothing: a lost answer is sent again. */
static const struct step emp_activated = {.doing = "re-activating the employee", .ok = kit_update, .lost = emp_restore};

static void emp_restore(struct op *op)
{
	op_send(op, &emp_activated, "POST", "/employees/{id}/activate", NULL);
}

static char *pf_find_by_key(struct connector *c, const struct conn_entity *e, const char *key, char **err)
{
	if (!streq(e->name, "employees"))
		return NULL;
	char *path = url_expand("/employees", NULL, NULL, QUERY("status", "all", "employee_numbers[]", key));
	return conn_find_one(c, e, path, NULL, key, err);
}

/* ================= absences (leave requests) ================= */

static bool leave_prepare(struct connector *c, const struct conn_entity *e, long pending, char **err)
{
	struct nat_index *ix = &PF(c)->leave_by_key;
	return kit_index(c, e, "/leave_requests", pending, (struct index_key[]){{ix, "description"}, {0}}, err);
}

/* The employee's leave requests, page after page, for our marker. */
static void leave_find(struct op *op)
{
	char *emp = jv_scalar_text(jv_obj_get(op->payload, "employee_id"));
	kit_marker_find(op, &PF(op->conn)->leave_by_key,
			emp ? url_expand("/leave_requests", NULL, NULL, QUERY("employee_ids[]", emp)) : NULL);
	free(emp);
}

/* ================= assets ================= */

static bool asset_prepare(struct connector *c, const struct conn_entity *e, long pending, char **err)
{
	struct nat_index *ix = &PF(c)->asset_by_code;
	/* PeopleForce cannot filter assets by code: read them all once. */
	return pending <= 0 || ix->ready || kit_index_all(c, e, "/assets", (struct index_key[]){{ix, "code"}, {0}}, err);
}

static bool asset_code_match(struct op *op, const struct jv *item)
{
	return streq(jv_obj_str(item, "code"), jv_obj_str(op->payload, "code"));
}

static const struct search asset_search = {.match = asset_code_match, .found = kit_found_item,
					   .absent = kit_absent, .max_pages = 100000};

static void asset_find(struct op *op)
{
	const char *id = NULL, *code = jv_obj_str(op->payload, "code");
	switch (nat_find(&PF(op->conn)->asset_by_code, op, code, &id)) {
	case NAT_ONE:
		kit_found(op, id);
		return;
	case NAT_MANY:
		op_finish(op, OPR_REFUSED, "several assets have code %s on the platform; merge them first", code);
		return;
	case NAT_NONE:
		kit_absent(op);
		return;
	case NAT_UNKNOWN:
		op_search(op, &asset_search, url_expand("/assets", NULL, NULL, NULL));
		return;
	}
}

/* -- the assignment sub-resource -- */

static bool same_holder(const struct jv *a, const struct jv *b)
{
	char *u1 = jv_scalar_text(jv_obj_get(a, "user_id")), *u2 = jv_scalar_text(jv_obj_get(b, "user_id"));
	bool same = streq(u1, u2) && jv_equal(jv_obj_get(a, "issued_on"), jv_obj_get(b, "issued_on"));
	free(u1);
	free(u2);
	return same;
}

static struct jv *assignment_body(struct op *op, struct jv *group)
{
	jv_obj_set(group, "asset_id", jv_from_id(op->platform_id));
	return group;
}

static const struct subres assignment = {
	.name = "assignment", .id_key = "assignment_id", .what = "the asset's assignment",
	.create = "/asset_assignments", .item = "/asset_assignments/{sub}", .ids = ID_TOKEN, .list = "/assets/{id}",
	.items = "data.asset_assignments|asset_assignments", .same = same_holder, .body = assignment_body,
};

static void assignment_closed(struct op *op)
{
	kit_extra_set(op, "assignment_id", NULL);
	if (jv_obj_get(op->payload, "assignment"))
		sub_post(op, &assignment);
	else
		op_finish(op, OPR_OK, NULL);
}

static const struct step assignment_close = {.doing = "closing the asset's previous assignment",
					     .ok = assignment_closed, .gone = assignment_closed};

/* Close the open assignment aid on the day given (today when NULL). */
static void assignment_end(struct op *op, const char *aid, const struct jv *on)
{
	char today[16];
	time_t t = time(NULL);
	struct tm tm;
	localtime_r(&t, &tm);
	strftime(today, sizeof today, "%Y-%m-%d", &tm);
	struct jv *b = jv_obj();
	jv_obj_set(b, "returned_on", on ? jv_copy(on) : jv_str(today));
	op_send_url(op, &assignment_close, "PUT", url_expand("/asset_assignments/{sub}", NULL, aid, NULL), b);
}

static void asset_assignment(struct op *op)
{
	const struct jv *want = jv_obj_get(op->payload, "assignment");
	const struct jv *had = jv_obj_get(op->old, "assignment");
	const char *aid = kit_extra(op, "assignment_id");
	bool open = had && jv_is_null(jv_obj_get(had, "returned_on"));
	if (op->action == ACT_UPDATE && jv_equal(want, had) && (!want || aid))
		op_finish(op, OPR_OK, NULL);
	else if (!want && aid && open)
		assignment_end(op, aid, NULL); /* no holder any more */
	else if (!want)
		op_finish(op, OPR_OK, NULL);
	else if (aid && had && same_holder(want, had))
		sub_put(op, &assignment, aid, jv_copy(want)); /* a return, or a corrected date */
	else if (aid && open)
		assignment_end(op, aid, jv_obj_get(want, "issued_on")); /* a new holder: close, then assign */
	else if (aid && had)
		sub_post(op, &assignment);
	else if (op->adopted || op->action != ACT_CREATE)
		sub_find(op, &assignment);
	else
		sub_post(op, &assignment);
}

/* ================= pull: leave requests asked for on the platform ================= */

struct pf_pull {
	struct pull_pass pass;
	long long max_updated;    /* the cursor: the latest updated_at listed */
};

static void note_updated(struct pull_pass *pp, const struct jv *item)
{
	struct pf_pull *pc = (struct pf_pull *)pp;
	struct tm tm = {0};
	const char *up = jv_obj_str(item, "updated_at");
	if (up && strptime(up, "%Y-%m-%dT%H:%M:%S", &tm) && (long long)timegm(&tm) > pc->max_updated)
		pc->max_updated = (long long)timegm(&tm);
}

static bool pf_pull(struct connector *c, const char *entity, const struct jv *filter, const char *cursor,
		    bool (*cb)(void *ud, const char *platform_id, const struct jv *record), void *ud, char **next_cursor,
		    bool *complete, char **err)
{
	(void)filter; /* applied by the engine */
	if (!streq(entity, "absences")) {
		*err = xasprintf("peopleforce pulls absences only, not %s", entity);
		return false;
	}
	struct pf_pull pc = {.pass = {.cb = cb, .ud = ud, .marker = "description", .ids = ID_DIGITS, .each = note_updated}};
	long long since = cursor ? atoll(cursor) : 0;
	char gt[32];
	/* An hour of look-back: clocks differ and updates land late; duplicates are harmless. */
	snprintf(gt, sizeof gt, "%lld", since - 3600);
	char *path = url_expand("/leave_requests", NULL, NULL, QUERY("updated_at[gt]", since > 0 ? gt : NULL));
	*complete = since <= 0;
	bool ok = conn_list(c, NULL, path, kit_pull_item, &pc.pass, NULL, err);
	free(path);
	if (!ok)
		*complete = false;
	long long next = pc.max_updated > since ? pc.max_updated : since;
	*next_cursor = next ? xasprintf("%lld", next) : NULL;
	return ok;
}

/* ================= the connector ================= */

static void pf_destroy(struct connector *c)
{
	struct pf *pf = PF(c);
	nat_clear_all((struct nat_index *const[]){&pf->emp_by_number, &pf->emp_by_email, &pf->leave_by_key,
						  &pf->asset_by_code, NULL});
}

static const struct id_field emp_ids[] = {
	{"position.department_id", "departments"}, {"position.position_id", "positions"},
	{"position.location_id", "locations"},     {"position.division_id", "divisions"},
	{"position.job_level_id", "job_levels"},   {"terminate.termination_type_id", "termination_types"},
	{"terminate.termination_reason_id", "termination_reasons"}, {NULL, NULL},
};
static const struct id_field leave_ids[] = {{"leave_type_id", "leave_types"}, {NULL, NULL}};
static const struct id_field asset_ids[] = {
	{"asset_category_id", "asset_categories"}, {"location_id", "locations"}, {NULL, NULL}};

/* ================= reconcile: how records are listed and read back ================= */

/*
 * An employee as listed: the standard fields at the top, the position sub-resource as the
 * current position (null when none), other names are custom fields (absent: null).
 */
static struct jv *emp_read_back(const struct jv *item, const char *path)
{
	if (str_has_prefix(path, "position.")) {
		const struct jv *pos = jv_obj_get(item, "position");
		if (jv_is_null(pos))
			return jv_null();
		const struct jv *v = jv_obj_get(pos, path + 9);
		return v ? jv_copy(v) : NULL;
	}
	const struct jv *v = jv_obj_get(item, path);
	if (v)
		return jv_copy(v);
	const struct jv *custom = jv_obj_get(item, "custom_fields");
	if (strchr(path, '.') || !custom || custom->t != JV_OBJ)
		return NULL;
	v = jv_obj_get(custom, path);
	return v ? jv_copy(v) : jv_null();
}

static const struct conn_listing emp_listing = {
	.path = "/employees?status=all",
	.keys = {{"employee_number", NULL, false}, {"email", NULL, true}},
	.field = emp_read_back,
};

/* Leave requests keep no external id: hrsync's marker in the description says which are the ERP's. */
static const struct conn_listing leave_listing = {
	.path = "/leave_requests",
	.marked = true,
	.write_only = NAMES("skip_approval"),   /* read as the request's state, not as sent */
};

/* An asset as listed: its latest assignment stands for the assignment group (null when none). */
static struct jv *asset_listed(const struct jv *item, const char *path)
{
	if (!str_has_prefix(path, "assignment."))
		return kit_listed_field(item, path);
	const struct jv *list = jv_path_any(item, "asset_assignments");
	const struct jv *last = NULL;
	for (size_t i = 0; list && list->t == JV_ARR && i < list->u.arr.n; i++) {
		const struct jv *a = list->u.arr.v[i];
		const char *on = jv_obj_str(a, "issued_on"), *best = last ? jv_obj_str(last, "issued_on") : NULL;
		if (!last || (on && (!best || strcmp(on, best) >= 0)))
			last = a;
	}
	if (!last)
		return jv_null();
	const struct jv *v = jv_obj_get(last, path + 11);
	return v ? jv_copy(v) : NULL;
}

static const struct conn_listing asset_listing = {
	.path = "/assets",
	.keys = {{"code", NULL, false}},
	.field = asset_listed,
};

static const struct conn_entity pf_entities[] = {
	{
		.name = "employees", .what = "employee", .term = TERM_KEEP,
		.path = "/employees", .item = "/employees/{id}", .ids = ID_DIGITS,
		.subres = (const struct subres *const[]){&position, NULL},
		.prepare = emp_prepare, .find = emp_find, .then = emp_position,
		.terminate = emp_terminate, .restore = emp_restore,
		.required = NAMES("first_name", "last_name"), .id_fields = emp_ids, .custom_fields = true,
		/* from the vendor's OpenAPI document */
		.fields = NAMES("employee_number", "first_name", "middle_name", "last_name", "email", "personal_email",
				"date_of_birth", "hired_on", "gender", "mobile_number", "work_phone_number",
				"position.effective_from", "position.position_id", "position.location_id",
				"position.division_id", "position.department_id", "position.reporting_to_id",
				"position.job_level_id", "terminate.effective_from", "terminate.termination_type_id",
				"terminate.termination_reason_id", "terminate.eligible_for_rehire", "terminate.comment"),
		.listing = &emp_listing,
	},
	{
		.name = "absences", .what = "leave request", .term = TERM_DELETE,
		.path = "/leave_requests", .item = "/leave_requests/{id}", .ids = ID_DIGITS, .marker = "description",
		.prepare = leave_prepare, .find = leave_find, .update = kit_replace, /* PeopleForce cannot edit one */
		.required = NAMES("employee_id", "leave_type_id", "starts_on", "ends_on"), .id_fields = leave_ids,
		.fields = NAMES("employee_id", "leave_type_id", "starts_on", "ends_on", "description",
				"leave_request_entries", "skip_approval"),

		.listing = &leave_listing,
	},
	{
		.name = "assets", .what = "asset", .term = TERM_NONE,
		.path = "/assets", .item = "/assets/{id}", .ids = ID_TOKEN, /* strings, says the vendor's spec */
		.subres = (const struct subres *const[]){&assignment, NULL},
		.prepare = asset_prepare, .find = asset_find, .then = asset_assignment,
		.required = NAMES("name", "code", "asset_category_id", "location_id"), .id_fields = asset_ids,
		.fields = NAMES("name", "code", "asset_category_id", "location_id", "serial_number", "description",
				"assignment.user_id", "assignment.issued_on", "assignment.returned_on"),
		.listing = &asset_listing,
	},
	{0},
};

const struct connector_type peopleforce_connector = {
	.name = "peopleforce",
	.title = "PeopleForce",
	.options = (const struct conn_option[]){
		{"token", OPT_SECRET, true, "the PeopleForce API key, e.g. { credential: peopleforce-token }"},
		{NULL, OPT_STRING, false, NULL},
	},
	.auth = {.header = "X-API-KEY: %s", .key = "token"},
	.entities = pf_entities,
	.pager = &pf_pages,
	.resources = NAMES("leave_types", "departments", "locations", "positions", "divisions", "job_levels",
			   "asset_categories", "termination_types", "termination_reasons", "employment_types"),
	/* PeopleForce documents a per-minute limit without the number; 60/min is a safe start. */
	.default_rate = 1.0,
	.priv_size = sizeof(struct pf),
	.destroy = pf_destroy,
	.find_by_key = pf_find_by_key,
	.pull = pf_pull,
	.pull_entities = NAMES("absences"),
};
