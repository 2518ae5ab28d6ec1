/*
 * jsonapi — resource objects out and in (see jsonapi.h).
 */
#include "jsonapi.h"

#include <stdlib.h>
#include <string.h>

static const struct jsonapi_rel *rel_named(const struct jsonapi_rel *rels, const char *name)
{
	for (const struct jsonapi_rel *r = rels; r && r->name; r++)
		if (streq(r->name, name))
			return r;
	return NULL;
}

/* {"data": {"type", "id"}} for one related id, {"data": null} for none; NULL when id is not a scalar id. */
static struct jv *linkage(const char *type, const struct jv *id)
{
	struct jv *o = jv_obj();
	if (jv_is_null(id)) {
		jv_obj_set(o, "data", jv_null());
		return o;
	}
	char *text = jv_id_text(id);
	if (!text || !*text) {
		free(text);
		jv_free(o);
		return NULL;
	}
	struct jv *d = jv_obj();
	jv_obj_set(d, "type", jv_str(type));
	jv_obj_set(d, "id", jv_str(text)); /* JSON:API ids are strings */
	jv_obj_set(o, "data", d);
	free(text);
	return o;
}

struct jv *jsonapi_body(const char *type, const char *id, struct jv *fields, const char *group,
			const struct jsonapi_rel *rels, char **why)
{
	struct jv *g = group ? jv_obj_take(fields, group) : NULL;
	struct jv *relationships = NULL;
	if (g && g->t == JV_OBJ) {
		relationships = jv_obj();
		for (size_t i = 0; i < g->u.obj.n; i++) {
			const char *name = g->u.obj.k[i];
			const struct jsonapi_rel *r = rel_named(rels, name);
			struct jv *l = r ? linkage(r->type, g->u.obj.v[i]) : NULL;
			if (!l) {
				*why = r ? xasprintf("%s.%s: a relationship takes one id (a number or a string)", group, name)
					 : xasprintf("%s.%s: a %s has no such relationship", group, name, type);
				jv_free(relationships);
				jv_free(g);
				jv_free(fields);
				return NULL;
			}
			jv_obj_set(relationships, name, l);
		}
	} else if (g && !jv_is_null(g)) {
		*why = xasprintf("%s: expected one id per relationship", group);
		jv_free(g);
		jv_free(fields);
		return NULL;
	}
	jv_free(g);
	struct jv *data = jv_obj();
	jv_obj_set(data, "type", jv_str(type));
	if (id)
		jv_obj_set(data, "id", jv_str(id));
	jv_obj_set(data, "attributes", fields);
	if (relationships && relationships->u.obj.n)
		jv_obj_set(data, "relationships", relationships);
	else
		jv_free(relationships);
	struct jv *body = jv_obj();
	jv_obj_set(body, "data", data);
	return body;
}

/* The included record of this type and id; NULL when the answer did not include it. */
static const struct jv *included_one(const struct jv *included, const char *type, const char *id)
{
	if (!included || included->t != JV_ARR || !type || !id)
		return NULL;
	for (size_t i = 0; i < included->u.arr.n; i++) {
		const struct jv *r = included->u.arr.v[i];
		char *rid = jv_id_text(jv_obj_get(r, "id"));
		bool same = streq(jv_obj_str(r, "type"), type) && streq(rid, id);
		free(rid);
		if (same)
			return r;
	}
	return NULL;
}

static struct jv *flatten(const struct jv *record, const struct jv *included, int depth);

/* One resource identifier {"type", "id"} as its record: the included one flattened, else {id}. */
static struct jv *related(const struct jv *ident, const struct jv *included, int depth)
{
	if (!ident || ident->t != JV_OBJ)
		return jv_null();
	char *id = jv_id_text(jv_obj_get(ident, "id"));
	const struct jv *full = depth > 0 ? included_one(included, jv_obj_str(ident, "type"), id) : NULL;
	struct jv *o;
	if (full) {
		o = flatten(full, included, depth - 1);
	} else {
		o = jv_obj();
		jv_obj_set(o, "id", id ? jv_str(id) : jv_null());
	}
	free(id);
	return o;
}

static struct jv *flatten(const struct jv *record, const struct jv *included, int depth)
{
	struct jv *o = jv_obj();
	char *id = jv_id_text(jv_obj_get(record, "id"));
	jv_obj_set(o, "id", id ? jv_str(id) : jv_null());
	free(id);
	const struct jv *attrs = jv_obj_get(record, "attributes");
	for (size_t i = 0; attrs && attrs->t == JV_OBJ && i < attrs->u.obj.n; i++)
		if (!streq(attrs->u.obj.k[i], "id"))
			jv_obj_set(o, attrs->u.obj.k[i], jv_copy(attrs->u.obj.v[i]));
	const struct jv *rels = jv_obj_get(record, "relationships");
	for (size_t i = 0; rels && rels->t == JV_OBJ && i < rels->u.obj.n; i++) {
		const char *name = rels->u.obj.k[i];
		const struct jv *data = jv_obj_get(rels->u.obj.v[i], "data");
		if (!data || streq(name, "id"))
			continue; /* not included: the platform sends only links */
		struct jv *v;
		if (data->t == JV_ARR) {
			v = jv_arr();
			for (size_t k = 0; k < data->u.arr.n; k++)
				jv_arr_push(v, related(data->u.arr.v[k], included, depth));
		} else {
			v = related(data, included, depth);
		}
		jv_obj_set(o, name, v);
	}
	return o;
}

struct jv *jsonapi_flatten(const struct jv *record, const struct jv *included)
{
	return flatten(record, included, 2);
}

struct jv *jsonapi_listed(const struct jv *item, const struct jv *page)
{
	return jsonapi_flatten(item, jv_obj_get(page, "included"));
}
