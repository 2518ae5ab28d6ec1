/*
 * kit — the record flows, markers, indexes and sub-resources (see kit.h); pagination is
 * in pager.c. Everything here runs inside an op's steps: it sends requests, never waits
 * for one.
 */
#define _GNU_SOURCE
#include "kit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "batch.h"
#include "log.h"

static const char *what(const struct op *op)
{
	return op->ent->what ? op->ent->what : "record";
}

/* ---- small things every flow reads ---- */

const struct jv *kit_field(const struct jv *item, const char *name)
{
	const struct jv *v = jv_obj_get(item, name);
	if (!v)
		v = jv_obj_get(jv_obj_get(item, "attributes"), name);
	if (v && v->t == JV_OBJ && jv_obj_get(v, "label"))
		return jv_obj_get(v, "value");
	return v;
}

const struct jv *kit_record(const struct jv *answer)
{
	const struct jv *d = jv_obj_get(answer, "data");
	return d && d->t == JV_OBJ ? d : answer;
}

char *kit_answer_id(const struct jv *answer)
{
	char *id = jv_id_text(jv_obj_get(kit_record(answer), "id"));
	return id ? id : jv_id_text(jv_obj_get(answer, "id"));
}

const char *kit_extra(const struct op *op, const char *k)
{
	/* A sub-resource id stored before ids were checked is as good as none: it is looked for. */
	const char *id = jv_obj_str(op->extra, k);
	return id_valid(ID_TOKEN, id) ? id : NULL;
}

void kit_extra_set(struct op *op, const char *k, const char *id)
{
	if (!op->extra)
		op->extra = jv_obj();
	jv_obj_set(op->extra, k, id ? jv_str(id) : jv_null());
}

const char *kit_item(const struct op *op)
{
	return op->ent->item_of ? op->ent->item_of(op) : op->ent->item;
}

struct jv *kit_main_fields(const struct op *op, const struct jv *payload)
{
	struct jv *o = payload ? jv_copy(payload) : jv_obj();
	for (size_t i = 0; op->ent->subres && op->ent->subres[i]; i++)
		jv_free(jv_obj_take(o, op->ent->subres[i]->name));
	return o;
}

struct jv *kit_body(struct op *op, const struct jv *payload, bool create, char **why)
{
	struct jv *f = kit_main_fields(op, payload);
	const char *m = op->ent->marker;
	if (m) {
		char *t = marker_append(op, jv_obj_str(f, m));
		jv_obj_set(f, m, jv_str(t));
		free(t);
	}
	return op->ent->body ? op->ent->body(op, f, create, why) : f;
}

/* ---- markers ---- */

char *marker_append(const struct op *op, const char *text)
{
	return text && *text ? xasprintf("%s [hrsync:%s#%s]", text, op->key, op->fp)
			     : xasprintf("[hrsync:%s#%s]", op->key, op->fp);
}

char *marker_key(const char *text, char fp[17])
{
	const char *m = text ? strstr(text, "[hrsync:") : NULL;
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

/* ---- the record flows ---- */

static void refind(struct op *op)
{
	if (op->ent->find)
		op->ent->find(op);
	else
		op_finish(op, OPR_TRANSIENT, "creating the %s: the answer was lost, and there is no way to look for it", what(op));
}

/*
 * A create refused as a duplicate (409, 422) after an answer was lost: the first request
 * may have been carried out late (a timeout the platform finished after hrsync gave up),
 * so the record may be ours. Look again, a few times, before taking the refusal.
 */
void kit_create_refused(struct op *op)
{
	long s = op->call.status;
	if (op->attempt > 0 && (s == 409 || s == 422) && op_retry_later(op, refind, 6))
		return;
	char *d = xasprintf("creating the %s", what(op));
	op_fail_answer(op, d);
	free(d);
}

static const struct step created = {.doing = "creating the %s", .ok = kit_written, .refused = kit_create_refused,
				    .lost = refind, .creates = true};
static const struct step updated = {.doing = "updating the %s", .ok = kit_written, .gone = kit_recreate};
static const struct step adopted = {.doing = "updating the %s found on the platform", .ok = kit_written};
static const struct step deleted = {.doing = "deleting the %s", .gone = kit_done};

void kit_done(struct op *op)
{
	op_finish(op, OPR_OK, NULL);
}

void kit_written(struct op *op)
{
	op->main_done = true;
	if (op->ent->then)
		op->ent->then(op);
	else
		op_finish(op, OPR_OK, NULL);
}

/* Send body, or refuse the record when the entity's envelope could not be built. */
static bool body_or_refuse(struct op *op, bool create, struct jv **out)
{
	char *why = NULL;
	*out = kit_body(op, op->payload, create, &why);
	if (*out)
		return true;
	op_finish(op, OPR_REFUSED, "%s", why ? why : "the record cannot be sent");
	free(why);
	return false;
}

static const char *update_method(const struct op *op)
{
	return op->ent->update_method ? op->ent->update_method : "PUT";
}

void kit_post_url(struct op *op, char *url)
{
	struct jv *b;
	if (body_or_refuse(op, true, &b))
		op_send_url(op, &created, "POST", url, b);
	else
		free(url);
}

void kit_post(struct op *op)
{
	kit_post_url(op, url_expand(op->ent->path, NULL, NULL, NULL));
}

void kit_absent(struct op *op)
{
	if (batch_park(op))
		return; /* the entity sends its creates in batches: this one waits for its batch */
	if (op->ent->create)
		op->ent->create(op);
	else
		kit_post(op);
}

void kit_found(struct op *op, const char *id)
{
	char *doing = xasprintf("looking for the %s", what(op));
	bool ok = op_id_ok(op, op->ent->ids, what(op), doing, id);
	free(doing);
	if (!ok)
		return;
	char *copy = xstrdup(id);
	free(op->platform_id);
	op->platform_id = copy;
	op->adopted = true;
	log_rec(L_INFO, op->key, "adopt", "%s already on the platform as id %s (an earlier run or HR created it)", what(op),
		copy);
	if (op->ent->adopt)
		op->ent->adopt(op);
	else
		kit_adopt_send(op);
}

void kit_adopt_send(struct op *op)
{
	struct jv *b;
	if (body_or_refuse(op, false, &b))
		op_send(op, &adopted, update_method(op), kit_item(op), b);
}

void kit_found_item(struct op *op, const struct jv *item)
{
	char *id = jv_id_text(kit_field(item, "id"));
	if (id)
		kit_found(op, id);
	else
		op_finish(op, OPR_TRANSIENT, "looking for the %s: a listed item carries no id", what(op));
	free(id);
}

void kit_update_send(struct op *op)
{
	struct jv *b;
	if (body_or_refuse(op, false, &b))
		op_send(op, &updated, update_method(op), kit_item(op), b);
}

void kit_update(struct op *op)
{
	if (op->old) {
		struct jv *now = kit_main_fields(op, op->payload), *was = kit_main_fields(op, op->old);
		bool same = jv_equal(now, was);
		jv_free(now);
		jv_free(was);
		if (same) {
			jv_free(op->answer);
			op->answer = NULL;
			kit_written(op);
			return;
		}
	}
	kit_update_send(op);
}

void kit_recreate(struct op *op)
{
	log_rec(L_WARN, op->key, "update", "%s %s no longer exists on the platform; creating it again", what(op),
		op->platform_id);
	free(op->platform_id);
	op->platform_id = NULL;
	jv_free(op->extra);
	op->extra = NULL;
	jv_free(op->old);
	op->old = NULL;
	op->action = ACT_CREATE;
	op->main_done = false;
	op->kit.live = true; /* an index read before the deletion still holds it */
	kit_start(op);
}

/* The old record is gone: from here on this is a create, and a kill now loses nothing. */
static void replaced(struct op *op)
{
	free(op->kit.gone);
	op->kit.gone = op->platform_id;
	op->platform_id = NULL;
	jv_free(op->extra);
	op->extra = NULL;
	op->main_done = false;
	if (op->ent->find)
		op->ent->find(op);
	else
		kit_absent(op);
}

static const struct step replace_deleted = {.doing = "deleting the %s before creating it again", .ok = replaced,
					     .gone = replaced};

void kit_replace(struct op *op)
{
	op_send(op, &replace_deleted, "DELETE", kit_item(op), NULL);
}

void kit_start(struct op *op)
{
	const struct conn_entity *e = op->ent;
	switch (op->action) {
	case ACT_CREATE:
		if (e->find)
			e->find(op);
		else
			kit_absent(op);
		return;
	case ACT_UPDATE:
		(e->update ? e->update : kit_update)(op);
		return;
	case ACT_RESTORE:
		(e->restore ? e->restore : e->update ? e->update : kit_update)(op);
		return;
	case ACT_TERMINATE:
		if (e->terminate)
			e->terminate(op);
		else if (e->term == TERM_DELETE)
			op_send(op, &deleted, "DELETE", kit_item(op), NULL);
		else
			op_finish(op, OPR_REFUSED, "a %s cannot be terminated on this platform", what(op));
		return;
	}
}

/* ---- records found by their marker ---- */

static const struct step stale_deleted = {.doing = "deleting an outdated copy of the %s", .ok = kit_absent,
					  .gone = kit_absent};

void kit_marker_found(struct op *op, const char *id, const char *fp)
{
	char *doing = xasprintf("looking for the %s by its marker", what(op));
	bool ok = op_id_ok(op, op->ent->ids, what(op), doing, id);
	free(doing);
	if (!ok)
		return;
	if (streq(id, op->kit.gone)) {
		kit_absent(op); /* deleted a moment ago by kit_replace: the listing was older */
		return;
	}
	if (!streq(fp, op->fp)) {
		op_send_url(op, &stale_deleted, "DELETE", url_expand(kit_item(op), id, NULL, NULL), NULL);
		return;
	}
	free(op->platform_id);
	op->platform_id = xstrdup(id);
	op->adopted = true;
	log_rec(L_INFO, op->key, "adopt", "%s already on the platform as id %s", what(op), id);
	kit_written(op);
}

static bool marker_match(struct op *op, const struct jv *item)
{
	const struct jv *t = kit_field(item, op->ent->marker);
	char fp[17];
	char *key = marker_key(t && t->t == JV_STR ? t->u.str.s : NULL, fp);
	bool mine = key && streq(key, op->key);
	free(key);
	return mine;
}

static void marker_hit(struct op *op, const struct jv *item)
{
	const struct jv *t = kit_field(item, op->ent->marker);
	char fp[17];
	free(marker_key(t->u.str.s, fp));
	char *id = jv_id_text(kit_field(item, "id"));
	if (!id) {
		op_finish(op, OPR_TRANSIENT, "looking for the %s: a listed item carries no id", what(op));
		return;
	}
	kit_marker_found(op, id, fp);
	free(id);
}

static const struct search marker_search = {.match = marker_match, .found = marker_hit, .absent = kit_absent};

void kit_marker_search(struct op *op, char *url)
{
	op_search(op, &marker_search, url);
}

void kit_marker_find(struct op *op, const struct nat_index *ix, char *url)
{
	enum nat_hit h = nat_marker(ix, op);
	if (h == NAT_UNKNOWN && url) {
		kit_marker_search(op, url);
		return;
	}
	free(url);
	if (h != NAT_ONE)
		kit_absent(op);
}

/* ---- pull ---- */

bool kit_pull_item(void *ud, const struct jv *item)
{
	struct pull_pass *pp = ud;
	if (pp->each)
		pp->each(pp, item);
	const struct jv *t = pp->marker ? kit_field(item, pp->marker) : NULL;
	char fp[17];
	char *mine = marker_key(t && t->t == JV_STR ? t->u.str.s : NULL, fp);
	char *id = mine ? NULL : jv_id_text(kit_field(item, "id"));
	if (id && !id_valid(pp->ids, id)) {
		/* Never a key in hrsync's tables nor the ERP's: the platform answered garbage. */
		char *shown = id_shown(id);
		log_warn("pull: a listed record's id %s is not an id of this platform (%s); skipped", shown,
			 id_shape_name(pp->ids));
		free(shown);
		free(id);
		id = NULL;
	}
	pp->passed += id != NULL;
	bool go = !id || pp->cb(pp->ud, id, item);
	free(mine);
	free(id);
	return go;
}

/* ---- indexes ---- */

static char *index_key(const struct nat_index *ix, const char *key)
{
	char *k = xstrdup(key);
	for (char *p = k; ix->fold && *p; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p - 'A' + 'a');
	return k;
}

void nat_add(struct nat_index *ix, const char *key, const char *id)
{
	if (!key || !*key || !id)
		return;
	char *k = index_key(ix, key);
	const char *had = NULL;
	bool seen = strmap_get(&ix->map, k, &had) && had;
	strmap_put(&ix->map, k, seen && !streq(had, id) ? "" : id);
	free(k);
}

enum nat_hit nat_find(const struct nat_index *ix, const struct op *op, const char *key, const char **id)
{
	if (!ix->ready || (op && op->kit.live))
		return NAT_UNKNOWN;
	if (!key || !*key)
		return NAT_NONE;
	char *k = index_key(ix, key);
	const char *v = NULL;
	bool hit = strmap_get(&ix->map, k, &v) && v;
	free(k);
	if (!hit)
		return NAT_NONE;
	*id = v;
	return *v ? NAT_ONE : NAT_MANY;
}

void nat_clear(struct nat_index *ix)
{
	strmap_clear(&ix->map);
	ix->ready = false;
}

void nat_clear_all(struct nat_index *const *ixs)
{
	for (size_t i = 0; ixs[i]; i++)
		nat_clear(ixs[i]);
}

void nat_add_marker(struct nat_index *ix, const char *text, const char *id)
{
	char fp[17];
	char *key = marker_key(text, fp);
	if (key && id) {
		char *v = xasprintf("%s %s", fp, id);
		strmap_put(&ix->map, key, v);
		free(v);
	}
	free(key);
}

enum nat_hit nat_marker(const struct nat_index *ix, struct op *op)
{
	const char *v = NULL;
	enum nat_hit h = nat_find(ix, op, op->key, &v);
	if (h != NAT_ONE)
		return h;
	const char *sp = strchr(v, ' ');
	if (!sp)
		return NAT_UNKNOWN;
	char *fp = xstrndup(v, (size_t)(sp - v)), *id = xstrdup(sp + 1);
	kit_marker_found(op, id, fp);
	free(fp);
	free(id);
	return NAT_ONE;
}

/* ---- sub-resources ---- */

/* A sub-resource's id from an answer: of its declared shape, or op is refused. */
static bool sub_id_ok(struct op *op, const struct subres *s, const char *doing, const char *id)
{
	return !id || op_id_ok(op, s->ids, s->what ? s->what : s->name, doing, id);
}

static void sub_written(struct op *op)
{
	char *id = kit_answer_id(op->answer);
	char *doing = xasprintf("writing %s", op->kit.sub->what);
	bool ok = sub_id_ok(op, op->kit.sub, doing, id);
	free(doing);
	if (ok && id)
		kit_extra_set(op, op->kit.sub->id_key, id);
	free(id);
	if (ok)
		op_finish(op, OPR_OK, NULL);
}

static void sub_refind(struct op *op)
{
	sub_find(op, op->kit.sub);
}

static void sub_repost(struct op *op)
{
	sub_post(op, op->kit.sub);
}

static const struct step sub_created = {.doing = "writing %s", .sub = true, .ok = sub_written, .lost = sub_refind,
					.body = true};
static const struct step sub_updated = {.doing = "writing %s", .sub = true, .ok = sub_written, .gone = sub_repost,
					.body = true};

void sub_post(struct op *op, const struct subres *s)
{
	op->kit.sub = s;
	struct jv *g = jv_copy(jv_obj_get(op->payload, s->name));
	if (s->body)
		g = s->body(op, g);
	op_send_url(op, &sub_created, "POST", url_expand(s->create, op->platform_id, NULL, NULL), g);
}

void sub_put(struct op *op, const struct subres *s, const char *sub_id, struct jv *body)
{
	op->kit.sub = s;
	op_send_url(op, &sub_updated, "PUT", url_expand(s->item, op->platform_id, sub_id, NULL), body);
}

static void sub_listed(struct op *op)
{
	const struct subres *s = op->kit.sub;
	const struct jv *want = jv_obj_get(op->payload, s->name);
	const struct jv *list = jv_path_any(op->answer, s->items);
	char *found = NULL;
	for (size_t i = 0; list && list->t == JV_ARR && i < list->u.arr.n && !found; i++)
		if (s->same(list->u.arr.v[i], want))
			found = jv_id_text(jv_obj_get(list->u.arr.v[i], "id"));
	char *doing = xasprintf("looking for %s", s->what);
	bool ok = sub_id_ok(op, s, doing, found);
	free(doing);
	if (ok && found)
		sub_put(op, s, found, jv_copy(want));
	else if (ok)
		sub_post(op, s);
	free(found);
}

static const struct step sub_looked = {.doing = "looking for %s", .sub = true, .ok = sub_listed, .body = true};

void sub_find(struct op *op, const struct subres *s)
{
	op->kit.sub = s;
	op_send_url(op, &sub_looked, "GET", url_expand(s->list, op->platform_id, NULL, NULL), NULL);
}

/* ---- indexes filled in prepare ---- */

struct index_fill {
	const struct conn_entity *e;
	const struct index_key *keys;
};

static bool index_item(void *ud, const struct jv *item)
{
	const struct index_fill *f = ud;
	char *id = jv_id_text(kit_field(item, "id"));
	for (const struct index_key *k = f->keys; k->ix; k++) {
		const struct jv *v = kit_field(item, k->field);
		const char *text = v && v->t == JV_STR ? v->u.str.s : NULL;
		if (streq(k->field, f->e->marker))
			nat_add_marker(k->ix, text, id);
		else
			nat_add(k->ix, text, id);
	}
	free(id);
	return true;
}

bool kit_index_all(struct connector *c, const struct conn_entity *e, const char *path, const struct index_key *keys,
		   char **err)
{
	for (const struct index_key *k = keys; k->ix; k++)
		nat_clear(k->ix);
	struct index_fill f = {e, keys};
	struct list_stats st;
	if (!conn_list(c, e->pager, path, index_item, &f, &st, err))
		return false;
	bool complete = st.total < 0 || st.seen == st.total;
	if (!complete) /* paging did not give every record: an index that may miss one is not trusted */
		log_warn("%s listed %lld of %lld %s; looking each new one up instead", c->name, st.seen, st.total, e->name);
	for (const struct index_key *k = keys; k->ix; k++) {
		if (!complete)
			nat_clear(k->ix);
		k->ix->ready = complete;
	}
	return true;
}

bool kit_index(struct connector *c, const struct conn_entity *e, const char *path, long pending,
	       const struct index_key *keys, char **err)
{
	if (pending <= 0 || keys[0].ix->ready)
		return true;
	long long pages = 0;
	int worth = conn_worth_indexing(c, e->pager, path, pending, &pages, err);
	if (worth <= 0)
		return worth == 0; /* one lookup per new record is cheaper */
	log_info("indexing %lld page(s) of %s before %ld creates", pages, e->name, pending);
	return kit_index_all(c, e, path, keys, err);
}

/* ---- reconcile: reading listed records back as payload fields ---- */

struct jv *kit_listed_field(const struct jv *item, const char *path)
{
	const struct jv *v = item;
	char *copy = xstrdup(path);
	for (char *part = copy, *dot; part && v; part = dot ? dot + 1 : NULL) {
		dot = strchr(part, '.');
		if (dot)
			*dot = '\0';
		v = v->t == JV_OBJ ? kit_field(v, part) : NULL;
	}
	free(copy);
	return v ? jv_copy(v) : NULL;
}

/* "2024-01-31" and "2024-01-31T..." (or "2024-01-31 ...") */
static bool same_day(const char *date, const char *stamp)
{
	size_t n = strlen(date);
	return n == 10 && date[4] == '-' && date[7] == '-' && strncmp(date, stamp, n) == 0 &&
	       (stamp[n] == 'T' || stamp[n] == ' ');
}

bool kit_listed_same(const struct jv *sent, const struct jv *listed)
{
	if (jv_is_null(sent) || jv_is_null(listed))
		return jv_is_null(sent) == jv_is_null(listed) || (jv_is_null(listed) && sent->t == JV_STR && !sent->u.str.len) ||
		       (jv_is_null(sent) && listed->t == JV_STR && !listed->u.str.len);
	if (jv_equal(sent, listed))
		return true;
	if (sent->t == JV_ARR || sent->t == JV_OBJ || listed->t == JV_ARR || listed->t == JV_OBJ)
		return false;
	char *a = jv_scalar_text(sent), *b = jv_scalar_text(listed);
	bool same = a && b && (streq(a, b) || same_day(a, b) || same_day(b, a));
	if (!same && a && b && (sent->t == JV_INT || sent->t == JV_NUM || listed->t == JV_INT || listed->t == JV_NUM)) {
		/* A number the platform answers in its own notation (12.50 sent, 12.5 listed). */
		char *ea, *eb;
		double x = strtod(a, &ea), y = strtod(b, &eb);
		same = *a && *b && !*ea && !*eb && x == y;
	}
	free(a);
	free(b);
	return same;
}
