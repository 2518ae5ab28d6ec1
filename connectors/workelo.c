/*
 * workelo — the Workelo API v1 (onboarding, crossboarding and offboarding journeys).
 *
 * Auth: OAuth 2.0 client credentials at `token_url` (default
 * https://api.workelo.eu/oauth/token), the kit's token. Workelo allows 1,000 requests per
 * hour per token: every request this file can save, it saves (indexes read in pages of
 * 100 when that is cheaper than one lookup per new record; lookups read once a run).
 * Answers carry X-RateLimit-* headers, which the engine's pacer reads.
 *
 * Lists: `limit` (at most 100) and `offset` (records) -> {"data": [...], "meta": {"total",
 * "limit", "offset"}}. One record: {"data": {...}}. Errors: 422 {"errors": [{"field",
 * "message"}]}, 404 {"error": "not_found"} (the kit's reading covers both).
 *
 * Entities (the table at the end):
 *   unit_organizations  by external_id; the parent is a reference into the same mapping
 *                       (the engine creates parents before their children). Workelo wants
 *                       the parent to exist first (422 otherwise).
 *   employees           by external_id. Never DELETE /employees/{id}: Workelo documents it
 *                       as irreversible, wiping the data of every journey the person was
 *                       in. Leaving is the archived role (PUT with its user_role_id, read
 *                       from GET /user_roles). Custom identifications (badge, matricule) are
 *                       the nested group `identifications`, one field per identification
 *                       resource named by its technical id, each sent as a sub-resource
 *                       (POST /employees/{id}/identifications, PUT /identifications/{id}).
 *                       An employee's unit must be of the lowest level: Workelo's 422 says so.
 *   tracks              a journey: POST /tracks makes a draft, PUT /tracks/{id}/start
 *                       launches it; one record for hrsync. A draft found for the employee
 *                       and mobility (an interrupted run) is started, never created twice.
 *                       Update moves dates and stakeholders (implications, inline);
 *                       terminate cancels. template_id (one, by lookup) goes as a one-item
 *                       template_ids list.
 * Pull: tracks (status, progression) back to the ERP.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "../daemon/kit.h"
#include "../daemon/log.h"

#define PULL_LOOKBACK_S 3600   /* a pull re-reads what changed this long before the cursor */

struct wk {
	struct nat_index unit_by_ext, emp_by_ext;
	char *archived_role;          /* the id of the role "Archived" (GET /user_roles) */
	struct strmap ident_res;      /* technical_id -> identification_resource_id */
	bool roles_read, idents_read;
};

static struct wk *WK(const struct connector *c)
{
	return c->priv;
}

static const struct pager wk_pages = {.style = PAGE_OFFSET, .param = "offset", .size_param = "limit", .size = 100,
				      .items = "data", .total = "meta.total"};

/* ================= what several entities need ================= */

/*
 * Whether reading the listing at path whole costs fewer requests than one lookup per new
 * record: one GET of its first page, whose meta.total says how many pages it has.
 * 1 yes, 0 no, -1 error.
 */
static int worth_indexing(struct connector *c, const char *path, long pending, long long *pages, char **err)
{
	char *p = url_expand(path, NULL, NULL, QUERY("limit", "100", "offset", "0"));
	struct jv *j = conn_get(c, p, err);
	free(p);
	if (!j)
		return -1;
	const struct jv *t = jv_path(j, "meta.total");
	long long total = t && t->t == JV_INT ? t->u.i : -1;
	jv_free(j);
	*pages = total < 0 ? -1 : (total + 99) / 100;
	return total >= 0 && *pages < pending;
}

static bool index_by_ext(struct connector *c, const struct conn_entity *e, const char *path, long pending,
			 struct nat_index *ix, char **err)
{
	if (pending <= 0 || ix->ready)
		return true;
	long long pages = 0;
	int worth = worth_indexing(c, path, pending, &pages, err);
	if (worth <= 0)
		return worth == 0;
	log_info("indexing %lld page(s) of Workelo %s before %ld creates", pages, e->name, pending);
	return kit_index_all(c, e, path, (struct index_key[]){{ix, "external_id"}, {0}}, err);
}

static const char *ext_id(const struct op *op)
{
	const char *x = jv_obj_str(op->payload, "external_id");
	return x && *x ? x : op->key;
}

/* The answer to GET /<coll>?external_id=X: the one with that external id, adopted; none: created. */
static void ext_listed(struct op *op)
{
	const struct jv *data = jv_obj_get(op->answer, "data");
	const struct jv *hit = NULL;
	size_t n = 0;
	/* Compare anyway: a platform that ignored the filter must not make us adopt a stranger. */
	for (size_t i = 0; data && data->t == JV_ARR && i < data->u.arr.n; i++) {
		const char *x = jv_obj_str(data->u.arr.v[i], "external_id");
		if (x && streq(x, ext_id(op)) && n++ == 0)
			hit = data->u.arr.v[i];
	}
	if (n == 0)
		kit_absent(op);
	else if (n > 1)
		op_finish(op, OPR_REFUSED, "%zu %ss on Workelo have external id %s; merge them first", n, op->ent->what,
			  ext_id(op));
	else
		kit_found_item(op, hit);
}

static const struct step ext_lookup = {.doing = "looking for the %s by external id", .ok = ext_listed, .body = true};

static void find_by_ext(struct op *op, struct nat_index *ix)
{
	const char *id = NULL;
	switch (nat_find(ix, op, ext_id(op), &id)) {
	case NAT_ONE:
		kit_found(op, id);
		return;
	case NAT_MANY:
		op_finish(op, OPR_REFUSED, "several %ss on Workelo have external id %s; merge them first", op->ent->what,
			  ext_id(op));
		return;
	case NAT_NONE:
		kit_absent(op);
		return;
	case NAT_UNKNOWN:
		op_get(op, &ext_lookup, op->ent->path, QUERY("external_id", ext_id(op)));
		return;
	}
}

/* ================= unit organisations ================= */

static bool unit_prepare(struct connector *c, const struct conn_entity *e, long pending, char **err)
{
	return index_by_ext(c, e, "/unit_organizations", pending, &WK(c)->unit_by_ext, err);
}

static void unit_find(struct op *op)
{
	find_by_ext(op, &WK(op->conn)->unit_by_ext);
}

/* ================= employees ================= */

/* The archived role among the roles listed (a lookup of the mapping lists them too: read once). */
static void note_roles(struct wk *w, const struct jv *roles)
{
	for (size_t i = 0; i < roles->u.arr.n; i++) {
		const char *name = jv_obj_str(roles->u.arr.v[i], "name");
		char *id = jv_id_text(jv_obj_get(roles->u.arr.v[i], "id"));
		if (name && id && strcasecmp(name, "archived") == 0 && id_valid(ID_DIGITS, id)) {
			free(w->archived_role);
			w->archived_role = id;
			id = NULL;
		}
		free(id);
	}
	w->roles_read = true;
}

static bool read_roles(struct connector *c, char **err)
{
	struct wk *w = WK(c);
	if (w->roles_read)
		return true;
	struct jv *roles = conn_list_all(c, &wk_pages, "/user_roles", err);
	if (!roles)
		return false;
	note_roles(w, roles);
	jv_free(roles);
	return true;
}

static bool read_identifications(struct connector *c, char **err)
{
	struct wk *w = WK(c);
	if (w->idents_read)
		return true;
	struct jv *res = conn_list_all(c, &wk_pages, "/identification_resources", err);
	if (!res)
		return false;
	for (size_t i = 0; i < res->u.arr.n; i++) {
		const char *tid = jv_obj_str(res->u.arr.v[i], "technical_id");
		char *id = jv_id_text(jv_obj_get(res->u.arr.v[i], "id"));
		if (tid && id && id_valid(ID_DIGITS, id))
			strmap_put(&w->ident_res, tid, id);
		free(id);
	}
	jv_free(res);
	w->idents_read = true;
	return true;
}

static bool emp_prepare(struct connector *c, const struct conn_entity *e, long pending, char **err)
{
	return read_roles(c, err) && read_identifications(c, err) &&
	       index_by_ext(c, e, "/employees", pending, &WK(c)->emp_by_ext, err);
}

static void emp_find(struct op *op)
{
	find_by_ext(op, &WK(op->conn)->emp_by_ext);
}

/*
 * -- identifications: one sub-resource per field of the group, in the group's order --
 * Their ids are kept in op->extra as "ident:<technical id>". A lost answer to a POST lists
 * the employee's identifications and takes the one of the same resource.
 */

struct emp_op {
	size_t next;        /* the index in the group of the identification being written */
	bool listed;        /* the employee's identifications were read (after a lost answer, or an adoption) */
};

static struct emp_op *emp_state(struct op *op)
{
	if (!op->cdata)
		op->cdata = xcalloc(1, sizeof(struct emp_op));
	return op->cdata;
}

static void ident_next(struct op *op);

static void ident_written(struct op *op)
{
	struct emp_op *s = emp_state(op);
	const struct jv *group = jv_obj_get(op->payload, "identifications");
	const char *tid = group->u.obj.k[s->next];
	char *id = jv_id_text(jv_obj_get(kit_record(op->answer), "id"));
	if (id && !op_id_ok(op, ID_DIGITS, "identification", "writing the employee's identification", id)) {
		free(id);
		return;
	}
	if (id) {
		char *k = xasprintf("ident:%s", tid);
		kit_extra_set(op, k, id);
		free(k);
	}
	free(id);
	s->next++;
	ident_next(op);
}

static void ident_find(struct op *op);
static const struct step ident_posted = {.doing = "adding the employee's identification", .ok = ident_written,
					 .lost = ident_find};
static void ident_post(struct op *op);
static void ident_gone(struct op *op)
{
	ident_post(op); /* deleted on Workelo meanwhile: added again */
}
static const struct step ident_put = {.doing = "updating the employee's identification", .ok = ident_written,
				      .gone = ident_gone};

static struct jv *ident_body(struct op *op, const char *res_id)
{
	const struct jv *group = jv_obj_get(op->payload, "identifications");
	struct jv *b = jv_obj();
	jv_obj_set(b, "identification_resource_id", jv_from_id(res_id));
	jv_obj_set(b, "value", jv_copy(group->u.obj.v[emp_state(op)->next]));
	return b;
}

static void ident_post(struct op *op)
{
	const struct jv *group = jv_obj_get(op->payload, "identifications");
	const char *res = NULL;
	strmap_get(&WK(op->conn)->ident_res, group->u.obj.k[emp_state(op)->next], &res);
	op_send(op, &ident_posted, "POST", "/employees/{id}/identifications", ident_body(op, res));
}

static void ident_listed(struct op *op)
{
	struct emp_op *s = emp_state(op);
	s->listed = true;
	const struct jv *data = jv_obj_get(op->answer, "data");
	struct wk *w = WK(op->conn);
	const struct jv *group = jv_obj_get(op->payload, "identifications");
	/* Every identification the employee has, by resource: what a lost POST made is there. */
	for (size_t i = 0; data && data->t == JV_ARR && i < data->u.arr.n; i++) {
		char *rid = jv_id_text(jv_obj_get(data->u.arr.v[i], "identification_resource_id"));
		char *id = jv_id_text(jv_obj_get(data->u.arr.v[i], "id"));
		for (size_t g = 0; rid && id && id_valid(ID_DIGITS, id) && g < group->u.obj.n; g++) {
			const char *res = NULL;
			if (strmap_get(&w->ident_res, group->u.obj.k[g], &res) && res && streq(res, rid)) {
				char *k = xasprintf("ident:%s", group->u.obj.k[g]);
				kit_extra_set(op, k, id);
				free(k);
			}
		}
		free(rid);
		free(id);
	}
	ident_next(op);
}

static const struct step ident_list = {.doing = "reading the employee's identifications", .ok = ident_listed,
				       .body = true};

static void ident_find(struct op *op)
{
	op_send(op, &ident_list, "GET", "/employees/{id}/identifications", NULL);
}

/* The next identification that needs a request; the op is done after the last. */
static void ident_next(struct op *op)
{
	struct emp_op *s = emp_state(op);
	const struct jv *group = jv_obj_get(op->payload, "identifications");
	const struct jv *old = jv_obj_get(op->old, "identifications");
	struct wk *w = WK(op->conn);
	for (; group && group->t == JV_OBJ && s->next < group->u.obj.n; s->next++) {
		const char *tid = group->u.obj.k[s->next];
		const struct jv *v = group->u.obj.v[s->next];
		char *k = xasprintf("ident:%s", tid);
		const char *have = kit_extra(op, k);
		free(k);
		const char *res = NULL;
		if (!strmap_get(&w->ident_res, tid, &res) || !res) {
			op_finish(op, OPR_REFUSED,
				  "identifications.%s: Workelo has no identification resource with technical id '%s'", tid, tid);
			return;
		}
		bool unchanged = op->action == ACT_UPDATE && old && jv_equal(jv_obj_get(old, tid), v);
		if (have && unchanged)
			continue;
		if (jv_is_null(v) && !have)
			continue; /* nothing to add */
		if (have) {
			op_send_url(op, &ident_put, "PUT", url_expand("/identifications/{sub}", NULL, have, NULL),
				    ident_body(op, res));
			return;
		}
		if ((op->adopted || op->action != ACT_CREATE || op->attempt > 0) && !s->listed) {
			ident_find(op); /* it may be there already: an earlier run, or a lost answer */
			return;
		}
		ident_post(op);
		return;
	}
	op_finish(op, OPR_OK, NULL);
}

static void emp_then(struct op *op)
{
	emp_state(op)->next = 0;
	ident_next(op);
}

static const struct step emp_archived = {.doing = "archiving the employee (the archived role)"};

/* Leaving: the archived role. Never DELETE: Workelo would wipe the journeys' data. */
static void emp_terminate(struct op *op)
{
	struct wk *w = WK(op->conn);
	if (!w->roles_read) {
		op_finish(op, OPR_TRANSIENT, "archiving the employee: the user roles were not read");
		return;
	}
	if (!w->archived_role) {
		op_finish(op, OPR_REFUSED,
			  "archiving the employee: Workelo lists no role named \"Archived\" (GET /user_roles); hrsync never "
			  "deletes an employee, since that wipes the data of their journeys");
		return;
	}
	struct jv *b = op->term && op->term->t == JV_OBJ ? jv_copy(op->term) : jv_obj();
	jv_obj_set(b, "user_role_id", jv_from_id(w->archived_role));
	op_send(op, &emp_archived, "PUT", "/employees/{id}", b);
}

/* The group, for the kit: not in the main fields (ident_next writes it, field by field). */
static const struct subres identifications = {.name = "identifications", .id_key = "ident",
					      .what = "the employee's identifications", .ids = ID_DIGITS};

static char *wk_find_by_key(struct connector *c, const struct conn_entity *e, const char *key, char **err)
{
	if (!streq(e->name, "employees") && !streq(e->name, "unit_organizations"))
		return NULL;
	return conn_find_one(c, e, url_expand(e->path, NULL, NULL, QUERY("external_id", key)), "external_id", key, err);
}

/* ================= tracks (journeys) ================= */

/*
 * The wire body. Create: mobility, dates, employee_id, implications and template_ids (a
 * one-item list of the mapping's template_id). Update: dates and implications, with
 * apply_on_actions (the journey's actions move with its dates).
 */
static struct jv *track_body(struct op *op, struct jv *f, bool create, char **why)
{
	(void)op;
	(void)why;
	struct jv *tpl = jv_obj_take(f, "template_id");
	if (create) {
		if (!jv_obj_get(f, "template_ids")) {
			struct jv *l = jv_arr();
			if (!jv_is_null(tpl))
				jv_arr_push(l, jv_copy(tpl));
			jv_obj_set(f, "template_ids", l);
		}
		jv_free(jv_obj_take(f, "apply_on_actions"));
	} else {
		static const char *const fixed[] = {"mobility", "employee_id", "template_ids", "invite_at"};
		for (size_t i = 0; i < ARRAY_LEN(fixed); i++)
			jv_free(jv_obj_take(f, fixed[i]));
		if (!jv_obj_get(f, "apply_on_actions"))
			jv_obj_set(f, "apply_on_actions", jv_bool(true));
	}
	jv_free(jv_obj_take(f, "invite_at"));
	jv_free(tpl);
	return f;
}

static const char *track_status(const struct op *op)
{
	return jv_obj_str(kit_record(op->answer), "status");
}

static void track_started(struct op *op)
{
	op_finish(op, OPR_OK, NULL);
}

static void track_start(struct op *op);
/* Starting a started journey changes nothing: a lost answer is sent again (PUT). */
static const struct step track_start_step = {.doing = "starting the journey", .ok = track_started,
					     .lost = track_start};

static void track_start(struct op *op)
{
	struct jv *b = jv_obj();
	const struct jv *inv = jv_obj_get(op->payload, "invite_at");
	if (!jv_is_null(inv))
		jv_obj_set(b, "invite_at", jv_copy(inv));
	op_send(op, &track_start_step, "PUT", "/tracks/{id}/start", b);
}

/* After the create, the adoption or the update: a journey still a draft is started. */
static void track_then(struct op *op)
{
	const char *st = track_status(op);
	if (op->action == ACT_CREATE && !op->adopted && !op->answer) {
		op_finish(op, OPR_TRANSIENT, "creating the journey: the answer carries no status");
		return;
	}
	if (st && streq(st, "draft"))
		track_start(op);
	else
		op_finish(op, OPR_OK, NULL);
}

static bool same_ids(const struct jv *a, const struct jv *b)
{
	char *x = jv_scalar_text(a), *y = jv_scalar_text(b);
	bool same = x && y && streq(x, y);
	free(x);
	free(y);
	return same;
}

/*
 * The employee's journeys of the same mobility: one not cancelled is ours (a draft that an
 * interrupted run made is started; a started one is brought up to date); none: created.
 */
static void track_listed(struct op *op)
{
	const struct jv *data = jv_obj_get(op->answer, "data");
	const struct jv *want_emp = jv_obj_get(op->payload, "employee_id");
	const char *mob = jv_obj_str(op->payload, "mobility");
	const struct jv *hit = NULL;
	size_t n = 0;
	for (size_t i = 0; data && data->t == JV_ARR && i < data->u.arr.n; i++) {
		const struct jv *t = data->u.arr.v[i];
		const char *st = jv_obj_str(t, "status");
		if (!same_ids(jv_obj_get(t, "employee_id"), want_emp) || !streq(jv_obj_str(t, "mobility"), mob) ||
		    (st && (streq(st, "cancelled") || streq(st, "closed"))))
			continue;
		if (n++ == 0)
			hit = t;
	}
	if (n == 0) {
		kit_absent(op);
		return;
	}
	if (n > 1) {
		op_finish(op, OPR_REFUSED, "%zu open %s journeys on Workelo for this employee; close the extra ones first", n,
			  mob ? mob : "");
		return;
	}
	char *id = jv_id_text(jv_obj_get(hit, "id"));
	const char *st = jv_obj_str(hit, "status");
	if (id && st && streq(st, "draft") && op_id_ok(op, ID_DIGITS, "journey", "looking for the journey", id)) {
		/* Created by a run that stopped before the start: started now, not created again. */
		free(op->platform_id);
		op->platform_id = id;
		op->adopted = true;
		op->main_done = true;
		log_rec(L_INFO, op->key, "adopt", "journey already on Workelo as draft %s (an interrupted run made it): starting it",
			id);
		track_start(op);
		return;
	}
	free(id);
	kit_found_item(op, hit);
}

static const struct step track_lookup = {.doing = "looking for the journey", .ok = track_listed, .body = true};

static void track_find(struct op *op)
{
	char *emp = jv_scalar_text(jv_obj_get(op->payload, "employee_id"));
	const char *mob = jv_obj_str(op->payload, "mobility");
	if (!emp || !mob) {
		free(emp);
		kit_absent(op); /* Workelo will say what is missing */
		return;
	}
	op_get(op, &track_lookup, "/tracks", QUERY("employee_id", emp, "mobility", mob));
	free(emp);
}

static void track_cancel_checked(struct op *op)
{
	const char *st = track_status(op);
	if (st && streq(st, "cancelled"))
		op_finish(op, OPR_OK, NULL); /* cancelled already: by an interrupted run, or by HR */
	else
		op_finish(op, OPR_REFUSED, "cancelling the journey: HTTP 422: %s (status %s)",
			  op->message ? op->message : "refused", st ? st : "unknown");
}

static const struct step track_cancel_check = {.doing = "reading the journey's status", .ok = track_cancel_checked,
					       .body = true};

static void track_cancel_refused(struct op *op)
{
	if (op->call.status != 422) {
		op_fail_answer(op, "cancelling the journey");
		return;
	}
	free(op->message);
	op->message = platform_message(op->conn->type, op->call.resp, op->call.resp_len);
	op_send(op, &track_cancel_check, "GET", "/tracks/{id}", NULL);
}

static void track_gone(struct op *op)
{
	log_rec(L_WARN, op->key, "terminate", "journey %s no longer exists on Workelo: nothing to cancel", op->platform_id);
	op_finish(op, OPR_OK, NULL);
}

static void track_terminate(struct op *op);
static const struct step track_cancelled = {.doing = "cancelling the journey", .refused = track_cancel_refused,
					    .gone = track_gone, .lost = track_terminate};

static void track_terminate(struct op *op)
{
	op_send(op, &track_cancelled, "PUT", "/tracks/{id}/cancel", NULL);
}

/* ================= pull: journeys' status and progression ================= */

struct wk_pull {
	bool (*cb)(void *ud, const char *platform_id, const struct jv *record);
	void *ud;
	long long passed;
	char latest[32];   /* the latest updated_at listed: the cursor */
};

static bool pull_item(void *ud, const struct jv *item)
{
	struct wk_pull *p = ud;
	const char *up = jv_obj_str(item, "updated_at");
	if (up && strlen(up) < sizeof p->latest && strcmp(up, p->latest) > 0)
		snprintf(p->latest, sizeof p->latest, "%s", up);
	char *id = jv_id_text(jv_obj_get(item, "id"));
	if (!id || !id_valid(ID_DIGITS, id)) {
		char *shown = id ? id_shown(id) : xstrdup("(none)");
		log_warn("pull: a listed journey's id %s is not a Workelo id (digits); skipped", shown);
		free(shown);
		free(id);
		return true;
	}
	p->passed++;
	bool go = p->cb(p->ud, id, item);
	free(id);
	return go;
}

/* An ISO date-time (UTC, "…Z") s seconds before cursor. */
static bool before_iso(const char *cursor, long s, char out[32])
{
	struct tm tm = {0};
	const char *end = strptime(cursor, "%Y-%m-%dT%H:%M:%S", &tm);
	if (!end)
		return false;
	time_t t = timegm(&tm) - s;
	struct tm o;
	gmtime_r(&t, &o);
	strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &o);
	return true;
}

static bool wk_pull(struct connector *c, const char *entity, const struct jv *filter, const char *cursor,
		    bool (*cb)(void *ud, const char *platform_id, const struct jv *record), void *ud, char **next_cursor,
		    bool *complete, char **err)
{
	(void)filter; /* applied by the engine */
	if (!streq(entity, "tracks")) {
		*err = xasprintf("workelo pulls tracks only, not %s", entity);
		return false;
	}
	char since[32];
	bool incremental = cursor && before_iso(cursor, PULL_LOOKBACK_S, since);
	char *path = url_expand("/tracks", NULL, NULL, QUERY("updated_since", incremental ? since : NULL));
	struct wk_pull p = {.cb = cb, .ud = ud};
	if (cursor && strlen(cursor) < sizeof p.latest)
		snprintf(p.latest, sizeof p.latest, "%s", cursor);
	struct list_stats st;
	bool ok = conn_list(c, &wk_pages, path, pull_item, &p, &st, err);
	free(path);
	*complete = false;
	if (!ok)
		return false;
	if (st.total >= 0 && st.seen != st.total) {
		*err = xasprintf("Workelo listed %lld of %lld journeys; the pull is not complete and will be tried again",
				 st.seen, st.total);
		return false;
	}
	*complete = !incremental;
	*next_cursor = p.latest[0] ? xstrdup(p.latest) : NULL;
	log_info("pulled %lld Workelo journeys (%lld listed%s)", p.passed, st.seen,
		 incremental ? ", changed lately" : ", all of them");
	return true;
}

/* ================= the connector ================= */

/* Templates: GET /templates, every mobility and unit (a mapping picks one by name). */
static void roles_loaded(struct connector *c, const struct jv *roles)
{
	note_roles(WK(c), roles);
}

static bool wk_list(struct connector *c, struct lookup_list *l, char **err)
{
	(void)c;
	(void)err;
	l->path = xasprintf("/%s", l->resource);
	l->pager = &wk_pages;
	if (streq(l->resource, "user_roles"))
		l->loaded = roles_loaded;
	return true;
}

/* The identifications a record writes: each field of the group that is new or changed. */
static double ident_requests(const struct jv *payload, const struct jv *old)
{
	const struct jv *g = jv_obj_get(payload, "identifications"), *was = jv_obj_get(old, "identifications");
	double n = 0;
	for (size_t i = 0; g && g->t == JV_OBJ && i < g->u.obj.n; i++)
		if (!jv_is_null(g->u.obj.v[i]) && !jv_equal(g->u.obj.v[i], jv_obj_get(was, g->u.obj.k[i])))
			n += 1;
	return n;
}

/*
 * For `plan`: a unit or an employee is found through an index read once (a page of 100
 * records costs a hundredth of a request each); a journey is looked for by itself, posted
 * as a draft and started; an employee writes its identifications one by one.
 */
static double wk_requests(const struct conn_entity *e, enum op_action a, const struct jv *payload,
			  const struct jv *old)
{
	bool emp = streq(e->name, "employees"), track = streq(e->name, "tracks");
	switch (a) {
	case ACT_CREATE:
		return track ? 3 : 1.01 + (emp ? ident_requests(payload, NULL) : 0);
	case ACT_UPDATE:
	case ACT_RESTORE: {
		struct jv *now = jv_copy(payload), *was = jv_copy(old);
		jv_free(jv_obj_take(now, "identifications"));
		jv_free(jv_obj_take(was, "identifications"));
		double n = (!old || !jv_equal(now, was) || a == ACT_RESTORE ? 1 : 0) + (emp ? ident_requests(payload, old) : 0);
		jv_free(now);
		jv_free(was);
		return n;
	}
	case ACT_TERMINATE:
		return 1;
	}
	return 1;
}

static void wk_destroy(struct connector *c)
{
	struct wk *w = WK(c);
	nat_clear_all((struct nat_index *const[]){&w->unit_by_ext, &w->emp_by_ext, NULL});
	strmap_clear(&w->ident_res);
	free(w->archived_role);
}

/* reconcile: records are listed whole, fields at the top; identifications are not listed with them. */
static const struct conn_listing unit_listing = {
	.path = "/unit_organizations",
	.keys = {{"external_id", NULL, false}},
};

static const struct conn_listing emp_listing = {
	.path = "/employees",
	.keys = {{"external_id", NULL, false}, {"email", NULL, true}},
	.terminated = NAMES("user_role_id"),   /* a leaver gets the "Archived" role */
};

static const struct conn_entity wk_entities[] = {
	{
		.name = "unit_organizations", .what = "unit organization", .term = TERM_NONE,
		.path = "/unit_organizations", .item = "/unit_organizations/{id}", .ids = ID_DIGITS,
		.prepare = unit_prepare, .find = unit_find,
		.required = NAMES("external_id", "name", "level_organization_id"),
		.id_fields = (const struct id_field[]){{"level_organization_id", "level_organizations"}, {NULL, NULL}},
		.fields = NAMES("external_id", "name", "level_organization_id", "parent_id", "language"),

		.listing = &unit_listing,
	},
	{
		.name = "employees", .what = "employee", .term = TERM_KEEP,
		.path = "/employees", .item = "/employees/{id}", .ids = ID_DIGITS,
		.subres = (const struct subres *const[]){&identifications, NULL},
		/* A re-hire is always sent: the payload is the same as before the leave, the role on Workelo is not. */
		.prepare = emp_prepare, .find = emp_find, .then = emp_then, .terminate = emp_terminate,
		.restore = kit_update_send,
		.required = NAMES("first_name", "last_name", "email", "external_id", "unit_organization_id"),
		.id_fields = (const struct id_field[]){{"user_role_id", "user_roles"}, {NULL, NULL}},
		.fields = NAMES("first_name", "last_name", "email", "job_position", "external_id", "unit_organization_id",
				"user_role_id", "language", "identifications.*"),
		.custom_fields = false,

		.listing = &emp_listing,
	},
	{
		/* TERM_DELETE: a journey cancelled before it was ever sent is not sent; one back in scope is a new journey */
		.name = "tracks", .what = "journey", .term = TERM_DELETE,
		.path = "/tracks", .item = "/tracks/{id}", .ids = ID_DIGITS,
		.nested = NAMES("implications"), .body = track_body,
		.find = track_find, .then = track_then, .terminate = track_terminate,
		.required = NAMES("mobility", "start_date", "employee_id"),
		.id_fields = (const struct id_field[]){{"template_id", "templates"}, {NULL, NULL}},
		.fields = NAMES("mobility", "start_date", "end_date", "employee_id", "template_id", "invite_at",
				"apply_on_actions", "implications.hr_id", "implications.manager_id", "implications.buddy_id"),
	},
	{0},
};

const struct connector_type workelo_connector = {
	.name = "workelo",
	.title = "Workelo",
	.options = (const struct conn_option[]){
		{"client_id", OPT_SECRET, true, "the Workelo API client id, e.g. { env: WORKELO_CLIENT_ID }"},
		{"client_secret", OPT_SECRET, true, "the Workelo API client secret, e.g. { credential: workelo-secret }"},
		{"token_url", OPT_STRING, false, "the OAuth token URL (default https://api.workelo.eu/oauth/token)"},
		{NULL, OPT_STRING, false, NULL},
	},
	.auth = {.header = "Authorization: Bearer %s", .client_id = "client_id", .client_secret = "client_secret",
		 .token_url = "token_url", .token_default = "https://api.workelo.eu/oauth/token"},
	.entities = wk_entities,
	.pager = &wk_pages,
	.resources = NAMES("user_roles", "level_organizations", "identification_resources", "templates"),
	.default_rate = 1000.0 / 3600.0,   /* 1000 requests per hour per token */
	.priv_size = sizeof(struct wk),
	.destroy = wk_destroy,
	.list = wk_list,
	.find_by_key = wk_find_by_key,
	.pull = wk_pull,
	.pull_entities = NAMES("tracks"),
	.requests = wk_requests,
};
