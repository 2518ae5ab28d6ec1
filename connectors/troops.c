/*
 * troops — the Troops integrations API (temporary-employment agency groups; the ERP behind
 * `erp:` references is Evolia). docs/connectors.md describes the kit this file is built on;
 * mappings/README.md ("Troops") what payroll teams write.
 *
 * Auth: a Bearer key (a JWT that can expire: a 401 stops the connector). Scope: a group
 * holds several TEAs and flexible references are valid only inside one, so every list
 * carries filters[tea_id] and every body "tea_id" (option tea_id); invitations go out in
 * the name of the agency user `sender_id`. Lists page by cursor (limit <= 100, after,
 * {"data", "next"}); queries are nested (filters[ref][erp]=8304%2F06), encoded by url.h.
 *
 * References are native (connector_type.native_refs): the engine validates them (NIR key
 * with 2A/2B, UUID) and hands them over as they are ("erp:8304/06", "ssn:<NIR>"); Troops
 * resolves them. A record whose candidate Troops does not know in this TEA (404 on the
 * reference) is deferred, not failed: its worker may not be created yet, or may belong to
 * another TEA. Troops quotes references in its messages: NIRs are masked before any message
 * leaves this file.
 *
 * Entities (the table at the end):
 *   candidates             found by reference (an index read once when cheaper); created in
 *                          batches through POST /candidates/import (batch.h), or one by one;
 *                          409 names the existing one; terminate = archive, restore = unarchive
 *   availabilities         an ERP absence: available=false; no external id: the marker in
 *                          `comment`; found per candidate and start; a change replaces it
 *   paychecks              by the ERP's paycheck number (unique per TEA)
 *   bookkeeping_variables  upserted by code (PUT), deleted by code
 *   mission_decisions      an agency user's accept or reject recorded in the ERP: sent once;
 *                          a mission decided already on Troops is refused with Troops' words
 * Pull: missions (proposed and what became of them).
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../daemon/batch.h"
#include "../daemon/kit.h"
#include "../daemon/log.h"
#include "../daemon/nir.h"

#define IMPORT_MAX 100

struct tr {
	struct nat_index cand_by_ref;   /* "erp:8304/06", "ssn:<NIR>" -> candidate UUID */
	struct nat_index pay_by_number; /* paycheck number -> UUID */
	struct nat_index avail_by_key;  /* hrsync's marker in an availability's comment -> "fp id" */
	struct strmap known_refs;       /* references Troops knows in the TEA (this run) */
	struct strmap archived;         /* candidates listed as archived: adopted for an active worker, unarchived */
	const char *tea, *sender, *strategy;
	bool batch;
};

static struct tr *TR(const struct connector *c)
{
	return c->priv;
}

static const struct pager tr_pages = {.style = PAGE_CURSOR, .param = "after", .size_param = "limit", .size = 100,
				      .items = "data", .next = "next"};

static const char *opt(const struct connector *c, const char *name)
{
	int i = connector_option_index(c->type, name);
	return i >= 0 ? c->cfg->strings[i] : NULL;
}

/* ================= messages: NIRs never leave unmasked ================= */

/* Whether s[i] may end a NIR: the end of the text or a character that cannot continue a number. */
static bool nir_ends(const char *s, size_t i)
{
	unsigned char c = (unsigned char)s[i];
	return !c || (!isalnum(c) && !strchr("-/.:,+_", c)) || ((c == '.' || c == ',') && !isdigit((unsigned char)s[i + 1]));
}

/*
 * s with every NIR-like run masked: 13 or 15 characters (digits, a Corsican 2A/2B in the
 * department), single spaces between groups, starting at a 1-8 that no digit, letter or '+'
 * comes before, and ending where a number cannot go on. Caller frees.
 */
static char *mask_nirs(const char *s)
{
	struct sb b = {0};
	for (size_t i = 0; s && s[i];) {
		unsigned char c0 = (unsigned char)s[i];
		bool start = c0 >= '1' && c0 <= '8' && (i == 0 || (!isalnum((unsigned char)s[i - 1]) && s[i - 1] != '+'));
		size_t j = i, sig = 0, end = 0;
		while (start && s[j] && sig < 15) {
			unsigned char c = (unsigned char)s[j];
			bool corsica = (c == 'A' || c == 'B' || c == 'a' || c == 'b') && sig == 6;
			if (isdigit(c) || corsica) {
				sig++;
				if ((sig == 13 || sig == 15) && nir_ends(s, j + 1))
					end = j + 1;
			} else if (!(c == ' ' && j > i && s[j - 1] != ' ')) {
				break;
			}
			j++;
		}
		if (end) {
			char run[40], masked[40];
			snprintf(run, sizeof run, "%.*s", (int)(end - i), s + i);
			nir_mask(run, masked, sizeof masked);
			sb_puts(&b, masked);
			i = end;
			continue;
		}
		sb_putc(&b, s[i]);
		i++;
	}
	return b.s ? sb_steal(&b) : xstrdup("");
}

/* A reference as a message may show it: an ssn: one masked. Caller frees. */
static char *ref_shown(const char *ref)
{
	if (ref && !strncmp(ref, "ssn:", 4)) {
		char m[40];
		nir_mask(ref + 4, m, sizeof m);
		return xasprintf("ssn:%s", m);
	}
	return mask_nirs(ref ? ref : "(none)");
}

/* {"error": {"code", "message", "details": [{"field", "message"}]}}, NIRs masked. */
static char *tr_message(const struct jv *body)
{
	const struct jv *e = jv_obj_get(body, "error");
	const char *code = jv_obj_str(e, "code"), *msg = jv_obj_str(e, "message");
	if (streq(code, "unauthorized"))
		return xstrdup("the Troops API key is invalid or expired; ask Troops for a new one");
	if (!msg)
		return NULL;
	return mask_nirs(msg);
}

/* ================= references ================= */

/* "erp:8304/06" -> the query key "filters[ref][erp]" (into key) and the id. false when not scheme:id. */
static bool ref_query(const char *ref, char *key, size_t n, const char **id)
{
	const char *colon = ref ? strchr(ref, ':') : NULL;
	if (!colon || colon == ref || !colon[1] || colon - ref > 10)
		return false;
	snprintf(key, n, "filters[ref][%.*s]", (int)(colon - ref), ref);
	*id = colon + 1;
	return true;
}

/* The record waits for its candidate (404 on its reference): deferred, tried again next run. */
static void defer_on_ref(struct op *op, const char *ref)
{
	if (op->call.status != 404)
		op->http_status = 0; /* an empty lookup, not a refusal: no status to show */
	char *shown = ref_shown(ref);
	op_finish(op, OPR_DEFERRED,
		  "Troops knows no candidate %s in TEA %s yet (not created yet, failed, or a worker of another TEA); "
		  "tried again next run",
		  shown, TR(op->conn)->tea);
	free(shown);
}

static void known_ref(struct connector *c, const char *ref)
{
	if (ref && *ref)
		strmap_put(&TR(c)->known_refs, ref, "");
}

/* The id in a 409's error.details[0].id (Troops names the record that exists). Caller frees. */
static char *conflict_id(const struct op *op)
{
	struct jv *j = jv_parse(op->call.resp ? op->call.resp : "", op->call.resp_len, NULL, 0);
	const struct jv *d = jv_obj_get(jv_obj_get(j, "error"), "details");
	char *id = d && d->t == JV_ARR && d->u.arr.n ? jv_id_text(jv_obj_get(d->u.arr.v[0], "id")) : NULL;
	jv_free(j);
	return id;
}

/* A body with tea_id first, then the fields. */
static struct jv *scoped(struct op *op, struct jv *fields)
{
	struct jv *b = jv_obj();
	jv_obj_set(b, "tea_id", jv_str(TR(op->conn)->tea));
	for (size_t i = 0; fields && i < fields->u.obj.n; i++)
		if (!streq(fields->u.obj.k[i], "tea_id"))
			jv_obj_set(b, fields->u.obj.k[i], jv_copy(fields->u.obj.v[i]));
	jv_free(fields);
	return b;
}

static struct jv *scoped_body(struct op *op, struct jv *fields, bool create, char **why)
{
	(void)create;
	(void)why;
	return scoped(op, fields);
}

/* ================= candidates ================= */

static const char *cand_ref(const struct op *op)
{
	const char *r = jv_obj_str(op->payload, "ref");
	return r && *r ? r : NULL;
}

/* The mapping's one desired job (a nested group) goes as Troops' one-item list; skills "a, b" as a list. */
static struct jv *cand_body(struct op *op, struct jv *f, bool create, char **why)
{
	if (create && !cand_ref(op)) {
		jv_free(f);
		*why = xstrdup("a candidate needs a reference (field 'ref', e.g. ref: \"erp:{matricule}\"): without one "
			       "hrsync could not find it again on Troops");
		return NULL;
	}
	const char *ref = jv_obj_str(f, "ref");
	if (ref && !strncmp(ref, "troops:", 7))
		jv_free(jv_obj_take(f, "ref")); /* Troops' own id names the candidate; it is not a reference to set */
	struct jv *dj = jv_obj_take(f, "desired_job");
	if (dj && dj->t == JV_OBJ) {
		struct jv *list = jv_arr();
		jv_arr_push(list, dj);
		jv_obj_set(f, "desired_jobs", list);
	} else {
		jv_free(dj);
	}
	const char *skills = jv_obj_str(f, "skills");
	if (skills) {
		struct jv *list = jv_arr();
		char *copy = xstrdup(skills), *save = NULL;
		for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
			while (*t == ' ')
				t++;
			size_t l = strlen(t);
			while (l && t[l - 1] == ' ')
				t[--l] = '\0';
			if (*t)
				jv_arr_push(list, jv_str(t));
		}
		free(copy);
		jv_obj_set(f, "skills", list);
	}
	struct jv *b = scoped(op, f);
	if (create) {
		jv_obj_set(b, "sender_id", jv_str(TR(op->conn)->sender));
	} else {
		jv_free(jv_obj_take(b, "invitation_type")); /* an invitation is sent once */
		jv_free(jv_obj_take(b, "sender_id"));
	}
	return b;
}

/* A listed candidate's references into the index: "erp:…", "ssn:…". */
static void note_archived(struct connector *c, const struct jv *item)
{
	const struct jv *a = jv_obj_get(item, "archived");
	char *id = jv_id_text(jv_obj_get(item, "id"));
	if (id && a && a->t == JV_BOOL && a->u.b)
		strmap_put(&TR(c)->archived, id, "");
	free(id);
}

static void index_candidate(struct nat_index *ix, const struct jv *item)
{
	char *id = jv_id_text(jv_obj_get(item, "id"));
	const struct jv *refs = jv_obj_get(item, "refs");
	for (size_t i = 0; id && refs && refs->t == JV_OBJ && i < refs->u.obj.n; i++) {
		const struct jv *v = refs->u.obj.v[i];
		if (v->t != JV_STR || !*v->u.str.s || streq(refs->u.obj.k[i], "troops"))
			continue;
		char *k = xasprintf("%s:%s", refs->u.obj.k[i], v->u.str.s);
		nat_add(ix, k, id);
		free(k);
	}
	free(id);
}

/*
 * Before many creates: Troops' lists say no count, so a listing is read into an index while it
 * is short enough to be cheaper than one lookup per new record (a first load reads one page).
 * The index is ready when the listing ended within that; otherwise it is left empty.
 */
static bool index_short_listing(struct connector *c, const struct conn_entity *e, const char *resource, long pending,
				struct nat_index *ix, void (*take)(struct connector *c, struct nat_index *ix,
								   const struct jv *item),
				char **err)
{
	if (pending <= 0 || ix->ready)
		return true;
	long max_pages = pending / tr_pages.size + 1;
	char *path = url_expand(resource, NULL, NULL, QUERY("filters[tea_id]", TR(c)->tea));
	struct page_state ps = {.base = c->cfg->base_url, .total = -1, .pages = -1};
	bool ok = true, more = true;
	nat_clear(ix);
	while (ok && more && ps.n < max_pages) {
		char *p = page_path(&tr_pages, &ps, path);
		struct jv *j = conn_get(c, p, err);
		free(p);
		const struct jv *items = NULL;
		ok = j && page_read(&tr_pages, &ps, j, &items, &more, err);
		for (size_t i = 0; ok && i < items->u.arr.n; i++)
			take(c, ix, items->u.arr.v[i]);
		jv_free(j);
	}
	free(path);
	page_state_free(&ps);
	if (ok && !more) {
		ix->ready = true;
		log_info("indexed %lld page(s) of %s before the creates of %s", ps.n, resource + 1, e->name);
	} else {
		nat_clear(ix); /* longer than the lookups it would save: each is looked up */
	}
	return ok;
}

static void take_candidate(struct connector *c, struct nat_index *ix, const struct jv *item)
{
	index_candidate(ix, item);
	note_archived(c, item);
}

static bool cand_prepare(struct connector *c, const struct conn_entity *e, long pending, char **err)
{
	return index_short_listing(c, e, "/candidates", pending, &TR(c)->cand_by_ref, take_candidate, err);
}

static void cand_listed(struct op *op)
{
	const struct jv *data = jv_obj_get(op->answer, "data");
	size_t n = data && data->t == JV_ARR ? data->u.arr.n : 0;
	if (n == 0) {
		kit_absent(op);
	} else if (n > 1) {
		char *shown = ref_shown(cand_ref(op));
		op_finish(op, OPR_REFUSED, "%zu candidates have reference %s in this TEA on Troops; merge them first", n, shown);
		free(shown);
	} else {
		note_archived(op->conn, data->u.arr.v[0]);
		kit_found_item(op, data->u.arr.v[0]);
	}
}

static const struct step cand_look = {.doing = "looking for the %s by its reference", .ok = cand_listed, .body = true};

static void cand_find(struct op *op)
{
	const char *ref = cand_ref(op), *id = NULL, *rid = NULL;
	char key[48];
	if (!ref || !ref_query(ref, key, sizeof key, &rid)) {
		op_finish(op, OPR_REFUSED, "a candidate needs a reference (field 'ref'): without one hrsync could not "
					   "find it again on Troops");
		return;
	}
	if (!strncmp(ref, "troops:", 7)) {
		kit_found(op, rid); /* Troops' own id: the candidate is there already (a 404 on its update recreates nothing) */
		return;
	}
	switch (nat_find(&TR(op->conn)->cand_by_ref, op, ref, &id)) {
	case NAT_ONE:
		kit_found(op, id);
		return;
	case NAT_MANY: {
		char *shown = ref_shown(ref);
		op_finish(op, OPR_REFUSED, "several candidates have reference %s in this TEA on Troops; merge them first",
			  shown);
		free(shown);
		return;
	}
	case NAT_NONE:
		kit_absent(op);
		return;
	case NAT_UNKNOWN:
		op_get(op, &cand_look, "/candidates", QUERY("filters[tea_id]", TR(op->conn)->tea, key, rid));
		return;
	}
}

static void cand_then(struct op *op)
{
	known_ref(op->conn, cand_ref(op));
	op_finish(op, OPR_OK, NULL);
}

/* PATCH /candidates/{id}?filters[tea_id]=T with the fields. */
static void cand_patch(struct op *op, const struct step *st)
{
	char *why = NULL;
	struct jv *b = kit_body(op, op->payload, false, &why);
	if (!b) {
		op_finish(op, OPR_REFUSED, "%s", why ? why : "the candidate cannot be sent");
		free(why);
		return;
	}
	op_send_url(op, st, "PATCH", url_expand("/candidates/{id}", op->platform_id, NULL,
						QUERY("filters[tea_id]", TR(op->conn)->tea)), b);
}

static const struct step cand_updated = {.doing = "updating the %s", .ok = kit_written, .gone = kit_recreate};

static void readopt_refused(struct op *op)
{
	if (op->call.status == 409) /* not archived any more */
		kit_written(op);
	else
		op_fail_answer(op, "unarchiving the candidate found on Troops");
}

static void cand_adopted_ok(struct op *op);
static const struct step cand_adopted = {.doing = "updating the %s found on Troops", .ok = cand_adopted_ok};
static const struct step cand_readopted = {.doing = "unarchiving the %s found on Troops", .ok = kit_written,
					   .refused = readopt_refused};

/* Found archived (by HR, or by a run whose commit was lost) while the worker is in the group: back. */
static void cand_adopted_ok(struct op *op)
{
	if (!op->then_terminate && op->platform_id && strmap_get(&TR(op->conn)->archived, op->platform_id, NULL))
		op_send(op, &cand_readopted, "POST", "/candidates/{id}/unarchive", scoped(op, NULL));
	else
		kit_written(op);
}

static void cand_adopt(struct op *op)
{
	cand_patch(op, &cand_adopted);
}

static void cand_update(struct op *op)
{
	if (op->old) {
		struct jv *now = kit_main_fields(op, op->payload), *was = kit_main_fields(op, op->old);
		bool same = jv_equal(now, was);
		jv_free(now);
		jv_free(was);
		if (same) {
			kit_written(op);
			return;
		}
	}
	cand_patch(op, &cand_updated);
}

/* A 409: Troops names the candidate that has this reference in the TEA: that one is ours. */
static void cand_create_refused(struct op *op)
{
	char *id = op->call.status == 409 ? conflict_id(op) : NULL;
	if (id)
		kit_found(op, id);
	else
		kit_create_refused(op);
	free(id);
}

static void cand_find_live(struct op *op)
{
	cand_find(op);
}

static const struct step cand_created = {.doing = "creating the %s", .ok = kit_written, .refused = cand_create_refused,
					 .lost = cand_find_live, .creates = true};

static void cand_create(struct op *op)
{
	char *why = NULL;
	struct jv *b = kit_body(op, op->payload, true, &why);
	if (!b) {
		op_finish(op, OPR_REFUSED, "%s", why ? why : "the candidate cannot be sent");
		free(why);
		return;
	}
	op_send(op, &cand_created, "POST", "/candidates", b);
}

/* -- terminate = archive, restore = unarchive -- */

static void archive_refused(struct op *op)
{
	if (op->call.status == 409) /* archived already: by an interrupted run, or on Troops */
		op_finish(op, OPR_OK, NULL);
	else
		op_fail_answer(op, "archiving the candidate");
}

static void cand_terminate(struct op *op);
static const struct step cand_archived = {.doing = "archiving the %s", .refused = archive_refused, .gone = kit_done,
					  .lost = cand_terminate};

static void cand_terminate(struct op *op)
{
	op_send(op, &cand_archived, "POST", "/candidates/{id}/archive", scoped(op, NULL));
}

static void unarchive_refused(struct op *op)
{
	if (op->call.status == 409) /* not archived: restored already */
		cand_update(op);
	else
		op_fail_answer(op, "unarchiving the candidate");
}

static void cand_restore(struct op *op);
static const struct step cand_unarchived = {.doing = "unarchiving the %s", .ok = cand_update,
					    .refused = unarchive_refused, .gone = kit_recreate, .lost = cand_restore};

static void cand_restore(struct op *op)
{
	op_send(op, &cand_unarchived, "POST", "/candidates/{id}/unarchive", scoped(op, NULL));
}

/* -- the batch import -- */

static bool import_enabled(struct connector *c)
{
	return TR(c)->batch;
}

static const char *import_group(const struct op *op)
{
	return jv_obj_str(op->payload, "agency_id");
}

/* {tea_id, agency_id, sender_id, strategy, candidates: [the create bodies without those three]}. */
static struct jv *import_body(struct connector *c, const struct op *first, struct jv *items)
{
	struct tr *tr = TR(c);
	for (size_t i = 0; i < items->u.arr.n; i++) {
		struct jv *it = items->u.arr.v[i];
		jv_free(jv_obj_take(it, "tea_id"));
		jv_free(jv_obj_take(it, "agency_id"));
		jv_free(jv_obj_take(it, "sender_id"));
	}
	struct jv *b = jv_obj();
	jv_obj_set(b, "tea_id", jv_str(tr->tea));
	jv_obj_set(b, "agency_id", jv_copy(jv_obj_get(first->payload, "agency_id")));
	jv_obj_set(b, "sender_id", jv_str(tr->sender));
	jv_obj_set(b, "strategy", jv_str(tr->strategy));
	jv_obj_set(b, "candidates", items);
	return b;
}

/* "a; b" of a list of strings (warnings), NIRs masked. Caller frees; NULL when empty. */
static char *joined(const struct jv *list)
{
	struct sb b = {0};
	for (size_t i = 0; list && list->t == JV_ARR && i < list->u.arr.n; i++) {
		char *t = jv_scalar_text(list->u.arr.v[i]);
		if (!t) {
			const char *m = jv_obj_str(list->u.arr.v[i], "message");
			t = m ? xstrdup(m) : NULL;
		}
		if (t)
			sb_printf(&b, "%s%s", b.len ? "; " : "", t);
		free(t);
	}
	if (!b.len)
		return NULL;
	char *m = mask_nirs(b.s);
	sb_free(&b);
	return m;
}

/* Item i: {"index": i, "id", "warnings": []} or {"index": i, "error": {"code", "message", "details"}}. */
static bool import_result(const struct jv *answer, size_t i, struct batch_result *r)
{
	const struct jv *data = jv_obj_get(answer, "data");
	const struct jv *item = NULL;
	for (size_t k = 0; data && data->t == JV_ARR && k < data->u.arr.n && !item; k++) {
		const struct jv *ix = jv_obj_get(data->u.arr.v[k], "index");
		if (ix && ix->t == JV_INT && ix->u.i == (long long)i)
			item = data->u.arr.v[k];
	}
	if (!item)
		return false;
	const struct jv *err = jv_obj_get(item, "error");
	if (!err || err->t != JV_OBJ) {
		r->outcome = BATCH_CREATED;
		r->id = jv_id_text(jv_obj_get(item, "id"));
		r->message = joined(jv_obj_get(item, "warnings"));
		return true;
	}
	const char *code = jv_obj_str(err, "code");
	const struct jv *details = jv_obj_get(err, "details");
	if (streq(code, "already_exists")) {
		r->outcome = BATCH_EXISTS;
		if (details && details->t == JV_ARR && details->u.arr.n)
			r->id = jv_id_text(jv_obj_get(details->u.arr.v[0], "id"));
		return true;
	}
	r->outcome = streq(code, "rolled_back") ? BATCH_AGAIN : BATCH_REFUSED;
	const char *m = jv_obj_str(err, "message");
	char *masked = mask_nirs(m ? m : "refused");
	r->message = code ? xasprintf("%s (%s)", masked, code) : xstrdup(masked);
	free(masked);
	return true;
}

static const struct batch cand_import = {
	.path = "/candidates/import", .max = IMPORT_MAX, .enabled = import_enabled, .group = import_group,
	.body = import_body, .result = import_result,
};

/* ================= availabilities (ERP absences) ================= */

static void avail_listed(struct op *op)
{
	const struct jv *data = jv_obj_get(op->answer, "data");
	for (size_t i = 0; data && data->t == JV_ARR && i < data->u.arr.n; i++) {
		const struct jv *item = data->u.arr.v[i];
		const char *comment = jv_obj_str(item, "comment");
		char fp[17];
		char *key = marker_key(comment, fp);
		bool mine = key && streq(key, op->key);
		free(key);
		if (!mine)
			continue;
		char *id = jv_id_text(jv_obj_get(item, "id"));
		if (id)
			kit_marker_found(op, id, fp);
		else
			op_finish(op, OPR_TRANSIENT, "looking for the availability: a listed item carries no id");
		free(id);
		return;
	}
	kit_absent(op);
}

static void avail_unknown(struct op *op)
{
	defer_on_ref(op, jv_obj_str(op->payload, "candidate_ref"));
}

static const struct step avail_look = {.doing = "looking for the %s", .ok = avail_listed, .gone = avail_unknown,
				       .body = true};

static void take_availability(struct connector *c, struct nat_index *ix, const struct jv *item)
{
	(void)c;
	char *id = jv_id_text(jv_obj_get(item, "id"));
	nat_add_marker(ix, jv_obj_str(item, "comment"), id);
	free(id);
}

/* Before many creates: the TEA's availabilities (for markers) and candidates (who Troops knows), when short. */
static bool avail_prepare(struct connector *c, const struct conn_entity *e, long pending, char **err)
{
	return index_short_listing(c, e, "/availabilities", pending, &TR(c)->avail_by_key, take_availability, err) &&
	       index_short_listing(c, e, "/candidates", pending, &TR(c)->cand_by_ref, take_candidate, err);
}

static void create_if_known(struct op *op);

/*
 * The index when it can say (then the candidate must be one Troops knows), else the
 * candidate's availabilities starting at the same instant, for our marker (a 404: no such
 * candidate in the TEA).
 */
static void avail_find(struct op *op)
{
	const char *ref = jv_obj_str(op->payload, "candidate_ref");
	const char *start = jv_obj_str(op->payload, "started_at");
	if (!ref || !start) {
		kit_absent(op); /* Troops says what is missing */
		return;
	}
	switch (nat_marker(&TR(op->conn)->avail_by_key, op)) {
	case NAT_ONE:
		return; /* kit_marker_found took it */
	case NAT_NONE:
		create_if_known(op);
		return;
	default:
		break;
	}
	op_get(op, &avail_look, "/availabilities",
	       QUERY("filters[tea_id]", TR(op->conn)->tea, "filters[candidate_ref]", ref,
		     "filters[started_at_greater_than]", start, "filters[started_at_less_than]", start, "limit", "100"));
}

static const struct step avail_created = {.doing = "creating the %s", .ok = kit_written, .gone = avail_unknown,
					  .refused = kit_create_refused, .lost = avail_find, .creates = true};

static void avail_create(struct op *op)
{
	char *why = NULL;
	struct jv *b = kit_body(op, op->payload, true, &why);
	if (!b) {
		op_finish(op, OPR_REFUSED, "%s", why ? why : "the availability cannot be sent");
		free(why);
		return;
	}
	op_send(op, &avail_created, "POST", "/availabilities", b);
}

/* ================= paychecks ================= */

static void ref_checked(struct op *op)
{
	const struct jv *data = jv_obj_get(op->answer, "data");
	if (!data || data->t != JV_ARR || data->u.arr.n == 0) {
		defer_on_ref(op, jv_obj_str(op->payload, "candidate_ref"));
		return;
	}
	known_ref(op->conn, jv_obj_str(op->payload, "candidate_ref"));
	kit_absent(op);
}

static const struct step ref_check = {.doing = "looking for the candidate of the %s", .ok = ref_checked,
				      .gone = avail_unknown, .body = true};

/* Before a create that names a candidate: does Troops know it? (A read, so that a deferred
 * record costs no write on the nights it waits.) */
static void create_if_known(struct op *op)
{
	const char *ref = jv_obj_str(op->payload, "candidate_ref"), *rid = NULL, *cid = NULL;
	char key[48];
	if (!ref || strmap_get(&TR(op->conn)->known_refs, ref, NULL) || !ref_query(ref, key, sizeof key, &rid) ||
	    nat_find(&TR(op->conn)->cand_by_ref, NULL, ref, &cid) == NAT_ONE) {
		kit_absent(op);
		return;
	}
	op_get(op, &ref_check, "/candidates", QUERY("filters[tea_id]", TR(op->conn)->tea, key, rid));
}

static void pay_listed(struct op *op)
{
	const struct jv *data = jv_obj_get(op->answer, "data");
	size_t n = data && data->t == JV_ARR ? data->u.arr.n : 0;
	if (n == 0)
		create_if_known(op);
	else if (n > 1)
		op_finish(op, OPR_REFUSED, "%zu paychecks have number %s on Troops", n, jv_obj_str(op->payload, "number"));
	else
		kit_found_item(op, data->u.arr.v[0]);
}

static const struct step pay_look = {.doing = "looking for the %s by its number", .ok = pay_listed, .body = true};

static const char *pay_number(const struct op *op)
{
	const char *n = jv_obj_str(op->payload, "number");
	return n && *n ? n : op->key;
}

static void take_paycheck(struct connector *c, struct nat_index *ix, const struct jv *item)
{
	(void)c;
	char *id = jv_id_text(jv_obj_get(item, "id"));
	nat_add(ix, jv_obj_str(item, "number"), id);
	free(id);
}

static bool pay_prepare(struct connector *c, const struct conn_entity *e, long pending, char **err)
{
	return index_short_listing(c, e, "/paychecks", pending, &TR(c)->pay_by_number, take_paycheck, err) &&
	       index_short_listing(c, e, "/candidates", pending, &TR(c)->cand_by_ref, take_candidate, err);
}

static void pay_find(struct op *op)
{
	const char *id = NULL;
	switch (nat_find(&TR(op->conn)->pay_by_number, op, pay_number(op), &id)) {
	case NAT_ONE:
		kit_found(op, id);
		return;
	case NAT_MANY:
		op_finish(op, OPR_REFUSED, "several paychecks have number %s on Troops", pay_number(op));
		return;
	case NAT_NONE:
		create_if_known(op);
		return;
	case NAT_UNKNOWN:
		op_get(op, &pay_look, "/paychecks",
		       QUERY("filters[tea_id]", TR(op->conn)->tea, "filters[number]", pay_number(op)));
		return;
	}
}

static void pay_refused(struct op *op)
{
	char *id = op->call.status == 409 ? conflict_id(op) : NULL;
	if (id)
		kit_found(op, id); /* the number exists in the TEA: that paycheck is this one */
	else
		kit_create_refused(op);
	free(id);
}

static const struct step pay_created = {.doing = "creating the %s", .ok = kit_written, .gone = avail_unknown,
					.refused = pay_refused, .lost = pay_find, .creates = true};

static void pay_create(struct op *op)
{
	char *why = NULL;
	struct jv *b = kit_body(op, op->payload, true, &why);
	if (!b) {
		op_finish(op, OPR_REFUSED, "%s", why ? why : "the paycheck cannot be sent");
		free(why);
		return;
	}
	op_send(op, &pay_created, "POST", "/paychecks", b);
}

/* ================= bookkeeping variables (upserted by code) ================= */

static const char *var_code(const struct op *op)
{
	const char *c = jv_obj_str(op->payload, "code");
	return c && *c ? c : op->key;
}

static struct jv *var_body(struct op *op, struct jv *f, bool create, char **why)
{
	(void)create;
	(void)why;
	jv_free(jv_obj_take(f, "code")); /* in the path */
	return scoped(op, f);
}

static void var_put_ok(struct op *op)
{
	if (!op_id_ok(op, ID_TOKEN, "bookkeeping variable", "writing the bookkeeping variable", var_code(op)))
		return;
	free(op->platform_id);
	op->platform_id = xstrdup(var_code(op));
	kit_written(op);
}

static const struct step var_put_step = {.doing = "writing the %s", .ok = var_put_ok};

static void var_put(struct op *op)
{
	if (!id_valid(ID_TOKEN, var_code(op))) {
		char *shown = id_shown(var_code(op));
		op_finish(op, OPR_REFUSED, "the bookkeeping variable code %s is not one Troops takes in a path "
					   "(letters, digits, '.', '_', ':', '-')", shown);
		free(shown);
		return;
	}
	char *why = NULL;
	struct jv *b = kit_body(op, op->payload, true, &why);
	if (!b) {
		op_finish(op, OPR_REFUSED, "%s", why ? why : "the variable cannot be sent");
		free(why);
		return;
	}
	/* PUT is an upsert: a lost answer is sent again as it is (the HTTP layer retries it). */
	op_send_url(op, &var_put_step, "PUT", url_expand("/bookkeeping_variables/{id}", var_code(op), NULL, NULL), b);
}

static void var_update(struct op *op)
{
	if (op->old && jv_equal(op->payload, op->old) && op->platform_id) {
		kit_written(op);
		return;
	}
	var_put(op);
}

static const struct step var_deleted = {.doing = "deleting the %s", .gone = kit_done};

static void var_delete(struct op *op)
{
	op_send_url(op, &var_deleted, "DELETE",
		    url_expand("/bookkeeping_variables/{id}", op->platform_id, NULL,
			       QUERY("filters[tea_id]", TR(op->conn)->tea)), NULL);
}

/* ================= mission decisions (sent once) ================= */

static const char *md_decision(const struct op *op)
{
	return jv_obj_str(op->payload, "decision");
}

static void md_done(struct op *op)
{
	free(op->platform_id);
	op->platform_id = xstrdup(op->key);
	op->main_done = true;
	op_finish(op, OPR_OK, NULL);
}

/* 409: decided already. Ours only when an earlier send of this op lost its answer and the status is ours. */
static void md_refused(struct op *op)
{
	if (op->call.status == 409 && op->attempt > 0) {
		struct jv *j = jv_parse(op->call.resp ? op->call.resp : "", op->call.resp_len, NULL, 0);
		const struct jv *d = jv_obj_get(jv_obj_get(j, "error"), "details");
		const char *st = d && d->t == JV_ARR && d->u.arr.n ? jv_obj_str(d->u.arr.v[0], "status") : NULL;
		bool ours = st && ((streq(md_decision(op), "accept") && streq(st, "accepted")) ||
				   (streq(md_decision(op), "reject") && streq(st, "rejected")));
		jv_free(j);
		if (ours) {
			md_done(op);
			return;
		}
	}
	op_fail_answer(op, "sending the mission decision");
}

static void md_unknown(struct op *op)
{
	op_finish(op, OPR_REFUSED, "sending the mission decision: Troops knows no mission %s in TEA %s", op->key,
		  TR(op->conn)->tea);
}

static void md_send(struct op *op);
static const struct step md_sent = {.doing = "sending the mission decision", .ok = md_done, .refused = md_refused,
				    .gone = md_unknown, .lost = md_send};

static void md_send(struct op *op)
{
	const char *d = md_decision(op);
	if (!id_valid(ID_UUID, op->key)) {
		char *shown = id_shown(op->key);
		op_finish(op, OPR_REFUSED, "a mission decision's key is the Troops mission id (a UUID), not %s", shown);
		free(shown);
		return;
	}
	if (!streq(d, "accept") && !streq(d, "reject")) {
		op_finish(op, OPR_REFUSED, "field 'decision' must be accept or reject (found %s)", d ? d : "null");
		return;
	}
	struct jv *b = jv_obj();
	const struct jv *reason = jv_obj_get(op->payload, "reason");
	if (reason && !jv_is_null(reason))
		jv_obj_set(b, "reason", jv_copy(reason));
	char *path = xasprintf("/missions/{id}/%s", d);
	op_send_url(op, &md_sent, "POST", url_expand(path, op->key, NULL, NULL), scoped(op, b));
	free(path);
}

/* Sent already: the same decision is done; another one cannot be made on Troops. */
static void md_update(struct op *op)
{
	const char *was = jv_obj_str(op->old, "decision");
	if (op->old && !streq(was, md_decision(op))) {
		op_finish(op, OPR_REFUSED,
			  "the decision on mission %s was sent to Troops already (%s); a mission is decided once, "
			  "change it on Troops",
			  op->key, was ? was : "?");
		return;
	}
	op_finish(op, OPR_OK, NULL); /* a new reason only: Troops keeps the first */
}

/* ================= pull: missions ================= */

struct tr_pull {
	struct pull_pass pass;
	long long max_updated;
};

static void note_updated(struct pull_pass *pp, const struct jv *item)
{
	struct tr_pull *pc = (struct tr_pull *)pp;
	struct tm tm = {0};
	const char *up = jv_obj_str(item, "updated_at");
	if (up && strptime(up, "%Y-%m-%dT%H:%M:%S", &tm) && (long long)timegm(&tm) > pc->max_updated)
		pc->max_updated = (long long)timegm(&tm);
}

static bool tr_pull(struct connector *c, const char *entity, const struct jv *filter, const char *cursor,
		    bool (*cb)(void *ud, const char *platform_id, const struct jv *record), void *ud, char **next_cursor,
		    bool *complete, char **err)
{
	(void)filter; /* applied by the engine: a mission leaving `proposed` still updates its row */
	if (!streq(entity, "missions")) {
		*err = xasprintf("troops pulls missions only, not %s", entity);
		return false;
	}
	struct tr_pull pc = {.pass = {.cb = cb, .ud = ud, .marker = "comment", .ids = ID_UUID, .each = note_updated}};
	long long since = cursor ? atoll(cursor) : 0;
	char gt[40] = "";
	if (since > 0) {
		/* An hour of look-back: clocks differ and updates land late; duplicates are harmless. */
		time_t t = (time_t)(since - 3600);
		struct tm tm;
		gmtime_r(&t, &tm);
		strftime(gt, sizeof gt, "%Y-%m-%dT%H:%M:%SZ", &tm);
	}
	char *path = url_expand("/missions", NULL, NULL,
				QUERY("filters[tea_id]", TR(c)->tea, "filters[updated_at_greater_than]", *gt ? gt : NULL));
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

/* Reference lists are per TEA too. */
static bool tr_list(struct connector *c, struct lookup_list *l, char **err)
{
	(void)err;
	char *base = xasprintf("/%s", l->resource);
	l->path = url_expand(base, NULL, NULL, QUERY("filters[tea_id]", TR(c)->tea));
	free(base);
	return true;
}

static bool tr_init(struct connector *c, char **err)
{
	struct tr *tr = TR(c);
	tr->tea = opt(c, "tea_id");
	tr->sender = opt(c, "sender_id");
	tr->strategy = opt(c, "import_strategy") ? opt(c, "import_strategy") : "allow_warnings";
	tr->batch = !streq(opt(c, "batch_import"), "false");
	if (!tr->tea || !tr->sender) {
		*err = xstrdup("needs tea_id and sender_id");
		return false;
	}
	return true;
}

static void tr_destroy(struct connector *c)
{
	nat_clear(&TR(c)->cand_by_ref);
	nat_clear(&TR(c)->pay_by_number);
	nat_clear(&TR(c)->avail_by_key);
	strmap_clear(&TR(c)->known_refs);
	strmap_clear(&TR(c)->archived);
}

static const struct id_field cand_ids[] = {
	{"agency_id", "agencies"}, {"desired_job.job_id", "jobs"},
	{"desired_job.business_sector_id", "business_sectors"}, {NULL, NULL},
};

static const struct conn_entity tr_entities[] = {
	{
		.name = "candidates", .what = "candidate", .term = TERM_KEEP,
		.path = "/candidates", .item = "/candidates/{id}", .ids = ID_UUID, .update_method = "PATCH",
		.nested = NAMES("address", "desired_job"),
		.prepare = cand_prepare, .find = cand_find, .create = cand_create, .adopt = cand_adopt,
		.update = cand_update, .terminate = cand_terminate, .restore = cand_restore, .then = cand_then,
		.body = cand_body, .batch = &cand_import,
		.required = NAMES("agency_id", "invitation_type", "first_name", "last_name", "email", "phone", "address",
				  "ref"),
		.id_fields = cand_ids,
		.fields = NAMES("agency_id", "invitation_type", "first_name", "last_name", "email", "phone", "ref",
				"skills", "mobility_radius_km", "address.street", "address.zip_code", "address.city",
				"address.country", "desired_job.job_id", "desired_job.business_sector_id"),
	},
	{
		.name = "availabilities", .what = "availability", .term = TERM_DELETE,
		.path = "/availabilities", .item = "/availabilities/{id}", .ids = ID_UUID, .marker = "comment",
		.prepare = avail_prepare, .find = avail_find, .create = avail_create,
		.update = kit_replace, /* no edit in the contract */
		.body = scoped_body,
		.required = NAMES("candidate_ref", "started_at", "ended_at", "available"),
		.fields = NAMES("candidate_ref", "started_at", "ended_at", "available", "comment"),
	},
	{
		.name = "paychecks", .what = "paycheck", .term = TERM_DELETE,
		.path = "/paychecks", .item = "/paychecks/{id}", .ids = ID_UUID, .update_method = "PATCH",
		.prepare = pay_prepare, .find = pay_find, .create = pay_create, .body = scoped_body,
		.required = NAMES("candidate_ref", "number", "period", "issued_on", "gross_amount", "net_amount", "currency"),
		.fields = NAMES("candidate_ref", "number", "period", "issued_on", "gross_amount", "net_amount", "currency",
				"document"),
	},
	{
		.name = "bookkeeping_variables", .what = "bookkeeping variable", .term = TERM_DELETE,
		.path = "/bookkeeping_variables", .item = "/bookkeeping_variables/{id}", .ids = ID_TOKEN,
		.create = var_put, .update = var_update, .terminate = var_delete, .body = var_body,
		.required = NAMES("label", "kind", "value"),
		.fields = NAMES("code", "label", "kind", "value"),
	},
	{
		.name = "mission_decisions", .what = "mission decision", .term = TERM_NONE,
		.path = "/missions", .item = "/missions/{id}", .ids = ID_UUID,
		.create = md_send, .update = md_update,
		.required = NAMES("decision"),
		.fields = NAMES("decision", "reason"),
	},
	{0},
};

const struct connector_type troops_connector = {
	.name = "troops",
	.title = "Troops",
	.options = (const struct conn_option[]){
		{"token", OPT_SECRET, true, "the Troops API key (a Bearer JWT), e.g. { credential: troops-token }", NULL},
		{"tea_id", OPT_UUID, true, "the TEA (temporary-employment agency) this instance serves, a UUID", NULL},
		{"sender_id", OPT_UUID, true, "the agency user in whose name invitations are sent, a UUID", NULL},
		{"import_strategy", OPT_STRING, false,
		 "what a batch import does with a candidate Troops warns about: allow_warnings (default), "
		 "skip_candidates_with_warnings or rollback_on_warnings",
		 NAMES("allow_warnings", "skip_candidates_with_warnings", "rollback_on_warnings")},
		{"batch_import", OPT_STRING, false, "true (default): new candidates go 100 to a request; false: one by one",
		 NAMES("true", "false")},
		{NULL, OPT_STRING, false, NULL, NULL},
	},
	.auth = {.header = "Authorization: Bearer %s", .key = "token"},
	.native_refs = true,
	.entities = tr_entities,
	.pager = &tr_pages,
	.resources = NAMES("agencies", "agency_users", "jobs", "business_sectors"),
	.default_rate = 5.0, /* no limit is documented */
	.priv_size = sizeof(struct tr),
	.init = tr_init,
	.destroy = tr_destroy,
	.message = tr_message,
	.list = tr_list,
	.pull = tr_pull,
	.pull_entities = NAMES("missions"),
};
