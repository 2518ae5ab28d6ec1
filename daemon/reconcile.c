/*
 * reconcile — `hrsync reconcile`: read every record of the platforms and compare it with
 * hrsync's links and with the ERP, to show what people changed by hand on a platform.
 *
 * For each platform entity that a selected push mapping writes to, and that its connector
 * can list (struct conn_listing, kit.h):
 *   - the ERP's payloads today: the engine's preview over the run's snapshot (sync.c), so a
 *     record maps exactly as `run` maps it;
 *   - the links and the payload each platform record last accepted (the state);
 *   - every record on the platform, paged through the connector, within its rate limit.
 * It classifies: drift (a linked record whose values differ from what hrsync sent, field by
 * field), gone (linked, absent), orphan (not linked: matched to an ERP key by the entity's
 * natural key, or matching nothing) and duplicate (a second platform record for one ERP key).
 * Every mapping that writes to the same entity is compared with it, so that one mapping's
 * records are never taken for another's orphans.
 *
 * --repair marks the state and then runs the normal sync pass over the mappings concerned,
 * so every repair is an ordinary write (logged, counted, guarded, recorded): a drifted
 * link keeps what the platform shows as its last accepted payload and loses its
 * fingerprint (the run sends the ERP's values), a gone record loses its link (the run
 * creates it again, looking for it first), a matching orphan is linked (nothing sent for
 * it). Nothing is ever deleted: unmatched orphans and duplicates are left for a person.
 *
 * Owns everything it allocates; writes to the state only under --repair, under the run lock.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "kit.h"
#include "log.h"
#include "nir.h"
#include "sha256.h"
#include "state.h"
#include "strmap.h"
#include "sync.h"

enum kind { K_DRIFT, K_GONE, K_ORPHAN, K_DUPLICATE, K__N };
static const char *const kind_names[K__N] = {"drift", "gone", "orphan", "duplicate"};

/* A record of the ERP as the preview mapped it. */
struct erp_rec {
	const struct mapping *m;
	char *key;
	struct jv *payload;     /* NULL: the record does not map (failing, waiting) */
};

struct link {
	const struct mapping *m;
	char *key, *id, *status;
	struct jv *sent;        /* the payload the platform last accepted (NULL: not known) */
	bool listed;
};

struct listed {
	char *id;
	struct jv *item;
	bool linked;
};

struct finding {
	enum kind kind;
	const struct mapping *m;
	char *key;              /* the ERP key (NULL: an orphan that matches nothing) */
	char *id;               /* the platform record */
	char *other;            /* duplicate: the record the key is linked to (NULL: none, several orphans) */
	char *detail;           /* orphan: its natural key values; gone: what the ERP says */
	struct jv *fields;      /* drift, adoptable orphan: [{field, sent, platform, erp}] */
	struct jv *seen;        /* drift, adoptable orphan: the payload as the platform holds it */
	bool adoptable;         /* orphan */
	bool repairable;        /* --repair can fix it: the ERP has the record and it maps */
	bool repaired;          /* --repair marked it, and the run did not fail it */
};

/* One platform entity and the mappings that write to it. */
struct group {
	const struct conn_cfg *cc;
	const struct conn_entity *ent;
	const struct mapping **maps;
	size_t nmaps;
	struct strmap write_only;      /* payload fields the platform does not return */
	long long listed, requests;
	char *not_listed;              /* why it was not reconciled */
};

struct rec {
	const struct config *cfg;
	bool json, repair;
	struct group *groups;
	size_t ngroups;
	struct erp_rec *erp;
	size_t nerp, caperp;
	struct strmap erp_ix;          /* "mapping\x1fkey" -> index in erp */
	struct finding *found;
	size_t nfound, capfound;
	long long *conn_requests;      /* per cfg->conns: listing and the ERP's lookup lists */
	long long *conn_listing;
	long totals[K__N];
	long adoptable, repaired, left;
};

/* ---- the ERP's side: the engine's preview ---- */

static void on_preview(void *ud, const struct preview_rec *r)
{
	struct rec *rc = ud;
	const struct mapping *m = config_mapping(rc->cfg, r->mapping);
	grow(&rc->erp, &rc->caperp, rc->nerp + 1, sizeof *rc->erp);
	rc->erp[rc->nerp] = (struct erp_rec){m, xstrdup(r->key), r->payload ? jv_copy(r->payload) : NULL};
	char *k = xasprintf("%s\x1f%s", r->mapping, r->key), idx[32];
	snprintf(idx, sizeof idx, "%zu", rc->nerp++);
	strmap_put(&rc->erp_ix, k, idx);
	free(k);
}

static const struct erp_rec *erp_of(const struct rec *rc, const struct mapping *m, const char *key)
{
	char *k = xasprintf("%s\x1f%s", m->name, key);
	const char *v = NULL;
	bool hit = strmap_get(&rc->erp_ix, k, &v);
	free(k);
	return hit && v ? &rc->erp[atol(v)] : NULL;
}

/* The ERP's payloads for every mapping of the groups; 0, or the run's exit code. */
static int read_erp(struct rec *rc)
{
	char **only = xcalloc(rc->cfg->nmaps + 1, sizeof *only);
	size_t n = 0;
	for (size_t g = 0; g < rc->ngroups; g++)
		for (size_t i = 0; i < rc->groups[g].nmaps && !rc->groups[g].not_listed; i++)
			only[n++] = rc->groups[g].maps[i]->name;
	if (!n) {
		free(only);
		return 0;
	}
	log_info("reconcile: reading the ERP's records as `run` maps them (a dry run: nothing is sent)");
	struct plan_sink sink = {.preview = on_preview, .ud = rc, .preview_limit = 0};
	struct run_opts o = {.dry_run = true, .sink = &sink, .only = only, .nonly = n};
	struct run_result res;
	int code = sync_run((struct config *)rc->cfg, &o, &res);
	for (size_t i = 0; i < res.nmaps; i++)
		for (size_t k = 0; k < rc->cfg->nconns; k++)
			if (streq(rc->cfg->conns[k].name, res.maps[i].connector))
				rc->conn_requests[k] += res.maps[i].counts.requests;
	run_result_free(&res);
	free(only);
	return code == 2 || code == 3 || code == 75 ? code : 0;
}

/* ---- the state's side ---- */

static bool read_links(struct state *st, const struct mapping *m, struct link **links, size_t *n, size_t *cap,
		       char **err)
{
	PGresult *r = state_links_of(st, m->name);
	if (!r) {
		*err = xasprintf("reading the links of mapping %s: %s", m->name, st->err ? st->err : "failed");
		return false;
	}
	for (int i = 0; i < PQntuples(r); i++) {
		grow(links, cap, *n + 1, sizeof **links);
		const char *p = PQgetisnull(r, i, LK_PAYLOAD) ? NULL : PQgetvalue(r, i, LK_PAYLOAD);
		(*links)[(*n)++] = (struct link){m, xstrdup(PQgetvalue(r, i, LK_KEY)), xstrdup(PQgetvalue(r, i, LK_PLATFORM_ID)),
						 xstrdup(PQgetvalue(r, i, LK_STATUS)), p ? jv_parse(p, strlen(p), NULL, 0) : NULL,
						 false};
	}
	PQclear(r);
	return true;
}

/* ---- the platform's side ---- */

struct listing_acc {
	struct listed *v;
	size_t n, cap;
	long long no_id;
};

static bool on_listed(void *ud, const struct jv *item)
{
	struct listing_acc *a = ud;
	char *id = jv_id_text(kit_field(item, "id"));
	if (!id) {
		a->no_id++;
		return true;
	}
	grow(&a->v, &a->cap, a->n + 1, sizeof *a->v);
	a->v[a->n++] = (struct listed){id, jv_copy(item), false};
	return true;
}

static struct jv *listed_field(const struct conn_listing *l, const struct jv *item, const char *path)
{
	return l->field ? l->field(item, path) : kit_listed_field(item, path);
}

/* ---- comparing ---- */

static bool is_write_only(const struct conn_listing *l, const char *path)
{
	for (size_t i = 0; l->write_only && l->write_only[i]; i++)
		if (streq(l->write_only[i], path))
			return true;
	return false;
}

/* Set a dotted path in an object payload (value owned), creating the groups on the way. */
static void payload_set(struct jv *p, const char *path, struct jv *value)
{
	const char *dot = strchr(path, '.');
	if (!dot) {
		jv_obj_set(p, path, value);
		return;
	}
	char *head = xstrndup(path, (size_t)(dot - path));
	struct jv *sub = jv_obj_get(p, head);
	if (!sub || sub->t != JV_OBJ) {
		sub = jv_obj();
		jv_obj_set(p, head, sub);
	}
	payload_set(sub, dot + 1, value);
	free(head);
}

struct compare {
	struct group *g;
	const struct mapping *m;
	bool left;              /* the record left (terminated): what a termination changes is not compared */
	const struct jv *item, *erp;
	struct jv *diffs;       /* [{field, sent, platform, erp}] */
	struct jv *seen;        /* the sent payload with the platform's values where they differ */
};

/* A marked text as the mapping sent it: hrsync's marker taken off (owned in, owned out). */
static struct jv *without_marker(struct jv *v)
{
	const char *m = v->t == JV_STR ? strstr(v->u.str.s, "[hrsync:") : NULL;
	if (!m)
		return v;
	size_t n = (size_t)(m - v->u.str.s);
	while (n > 0 && v->u.str.s[n - 1] == ' ')
		n--;
	struct jv *out = n ? jv_strn(v->u.str.s, n) : jv_null();
	jv_free(v);
	return out;
}

/* The ERP key in a listed record's marker (caller frees; NULL: none, the platform's own record). */
static char *marked_key(const struct conn_entity *e, const struct jv *item)
{
	const struct jv *t = kit_field(item, e->marker);
	char fp[17];
	return marker_key(t && t->t == JV_STR ? t->u.str.s : NULL, fp);
}

/* A field that a termination sets: the connector's, or one of the mapping's terminate fields. */
static bool changed_by_terminate(const struct mapping *m, const struct conn_listing *l, const char *path)
{
	for (size_t i = 0; l->terminated && l->terminated[i]; i++)
		if (streq(l->terminated[i], path))
			return true;
	for (size_t i = 0; i < m->nterm; i++)
		if (streq(m->term_fields[i].name, path))
			return true;
	return false;
}

/* Every leaf of sent against the listed record (arrays compare whole). */
static void compare_leaves(struct compare *c, const struct jv *sent, const char *prefix)
{
	const struct conn_listing *l = c->g->ent->listing;
	for (size_t i = 0; sent && sent->t == JV_OBJ && i < sent->u.obj.n; i++) {
		char *path = prefix ? xasprintf("%s.%s", prefix, sent->u.obj.k[i]) : xstrdup(sent->u.obj.k[i]);
		const struct jv *v = sent->u.obj.v[i];
		if (v->t == JV_OBJ) {
			compare_leaves(c, v, path);
			free(path);
			continue;
		}
		if (c->left && changed_by_terminate(c->m, l, path)) {
			free(path);
			continue;
		}
		struct jv *now = is_write_only(l, path) ? NULL : listed_field(l, c->item, path);
		if (now && l->marked && streq(path, c->g->ent->marker))
			now = without_marker(now);
		if (!now) {
			strmap_put(&c->g->write_only, path, "");
		} else if (!kit_listed_same(v, now)) {
			struct jv *d = jv_obj();
			jv_obj_set(d, "field", jv_str(path));
			jv_obj_set(d, "sent", jv_copy(v));
			jv_obj_set(d, "platform", jv_copy(now));
			const struct jv *e = c->erp ? jv_path(c->erp, path) : NULL;
			jv_obj_set(d, "erp", e ? jv_copy(e) : jv_null());
			if (!c->erp)
				jv_obj_set(d, "erp_absent", jv_bool(true));
			jv_arr_push(c->diffs, d);
			payload_set(c->seen, path, jv_copy(now));
		}
		jv_free(now);
		free(path);
	}
}

static struct finding *add(struct rec *rc, enum kind k, const struct mapping *m, const char *key, const char *id)
{
	grow(&rc->found, &rc->capfound, rc->nfound + 1, sizeof *rc->found);
	struct finding *f = &rc->found[rc->nfound++];
	*f = (struct finding){.kind = k, .m = m, .key = key ? xstrdup(key) : NULL, .id = id ? xstrdup(id) : NULL};
	rc->totals[k]++;
	return f;
}

/* A listed record's natural key values, "employee_number 1042, email a@b.c". Caller frees. */
static char *marked_key(const struct conn_entity *e, const struct jv *item);

static char *natural_keys(const struct conn_entity *e, const struct jv *item)
{
	const struct conn_listing *l = e->listing;
	if (l->marked) {
		char *key = marked_key(e, item);
		char *out = xasprintf("hrsync's marker for %s in its %s", key ? key : "?", e->marker);
		free(key);
		return out;
	}
	struct sb b = {0};
	for (size_t k = 0; k < ARRAY_LEN(l->keys) && l->keys[k].field; k++) {
		struct jv *v = listed_field(l, item, l->keys[k].listed ? l->keys[k].listed : l->keys[k].field);
		char *t = jv_scalar_text(v);
		if (t && *t)
			sb_printf(&b, "%s%s %s", b.len ? ", " : "", l->keys[k].field, t);
		free(t);
		jv_free(v);
	}
	return b.len ? sb_steal(&b) : xstrdup("no natural key");
}

static char *folded(const char *s, bool fold)
{
	char *k = xstrdup(s);
	for (char *p = k; fold && *p; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p - 'A' + 'a');
	return k;
}

static void fingerprint(const struct jv *payload, char out[65])
{
	char *s = jv_dumps(payload);
	sha256_hex(s, strlen(s), out);
	free(s);
}

/* Classify one group: its links, its listing and the ERP's records. */
static void classify(struct rec *rc, struct group *g, struct link *links, size_t nlinks, struct listing_acc *ls)
{
	const struct conn_listing *l = g->ent->listing;
	struct strmap by_id = {0}, link_of = {0};
	char idx[32];
	for (size_t i = 0; i < ls->n; i++) {
		snprintf(idx, sizeof idx, "%zu", i);
		strmap_put(&by_id, ls->v[i].id, idx);
	}
	/* Links: drift and gone. */
	for (size_t i = 0; i < nlinks; i++) {
		struct link *k = &links[i];
		char *mk = xasprintf("%s\x1f%s", k->m->name, k->key);
		snprintf(idx, sizeof idx, "%zu", i);
		strmap_put(&link_of, mk, idx);
		free(mk);
		if (streq(k->status, "deleted"))
			continue; /* deleted by hrsync: absent is in step */
		const char *at = NULL;
		const struct erp_rec *er = erp_of(rc, k->m, k->key);
		if (!strmap_get(&by_id, k->id, &at) || !at) {
			struct finding *f = add(rc, K_GONE, k->m, k->key, k->id);
			f->repairable = er && er->payload;
			f->detail = xstrdup(!er ? "the ERP no longer has it: left alone"
					    : er->payload ? "the ERP still has it"
							  : "the ERP has it, but it does not map now (see `hrsync preview`)");
			continue;
		}
		struct listed *it = &ls->v[atol(at)];
		it->linked = k->listed = true;
		if (!k->sent)
			continue; /* the last accepted payload is not known: nothing to compare */
		struct compare c = {g, k->m, streq(k->status, "terminated"), it->item, er ? er->payload : NULL, jv_arr(),
				    jv_copy(k->sent)};
		compare_leaves(&c, k->sent, NULL);
		if (c.diffs->u.arr.n) {
			struct finding *f = add(rc, K_DRIFT, k->m, k->key, k->id);
			f->fields = c.diffs;
			f->seen = c.seen;
			f->repairable = er && er->payload;
		} else {
			jv_free(c.diffs);
			jv_free(c.seen);
		}
	}
	/* The ERP's natural keys, over every mapping of the group: "k\x1fvalue" -> erp index ("" when several). */
	struct strmap nat = {0};
	for (size_t i = 0; i < rc->nerp; i++) {
		const struct erp_rec *e = &rc->erp[i];
		bool mine = false;
		for (size_t m = 0; m < g->nmaps; m++)
			mine |= e->m == g->maps[m];
		for (size_t k = 0; mine && e->payload && k < ARRAY_LEN(l->keys) && l->keys[k].field; k++) {
			char *t = jv_scalar_text(jv_path(e->payload, l->keys[k].field));
			if (t && *t) {
				char *f = folded(t, l->keys[k].fold), *nk = xasprintf("%zu\x1f%s", k, f);
				const char *had = NULL;
				snprintf(idx, sizeof idx, "%zu", i);
				strmap_put(&nat, nk, strmap_get(&nat, nk, &had) && had && !streq(had, idx) ? "" : idx);
				free(f);
				free(nk);
			}
			free(t);
		}
	}
	/* Orphans: matched by the first natural key that has a value; several for one key are duplicates. */
	long *match = xcalloc(ls->n + 1, sizeof *match);
	struct strmap claims = {0}; /* erp index -> how many orphans match it */
	for (size_t i = 0; i < ls->n; i++) {
		match[i] = -1;
		if (!ls->v[i].linked && l->marked) {
			char *key = marked_key(g->ent, ls->v[i].item);
			const struct erp_rec *e = NULL;
			for (size_t m = 0; key && m < g->nmaps && !e; m++)
				e = erp_of(rc, g->maps[m], key);
			if (!key)
				ls->v[i].linked = true; /* no marker: the platform's own */
			else if (e && e->payload)
				match[i] = (long)(e - rc->erp);
			free(key);
		}
		if (!ls->v[i].linked && l->scope) {
			/* Not the ERP's: the platform's own record (counted as listed, nothing more). */
			struct jv *v = listed_field(l, ls->v[i].item, l->scope);
			char *t = jv_scalar_text(v);
			ls->v[i].linked = !t || !*t;
			free(t);
			jv_free(v);
		}
		if (ls->v[i].linked)
			continue;
		for (size_t k = 0; !l->marked && k < ARRAY_LEN(l->keys) && l->keys[k].field && match[i] < 0; k++) {
			struct jv *v = listed_field(l, ls->v[i].item, l->keys[k].listed ? l->keys[k].listed : l->keys[k].field);
			char *t = jv_scalar_text(v);
			jv_free(v);
			if (t && *t) {
				char *f = folded(t, l->keys[k].fold), *nk = xasprintf("%zu\x1f%s", k, f);
				const char *hit = NULL;
				if (strmap_get(&nat, nk, &hit) && hit && *hit)
					match[i] = atol(hit);
				free(f);
				free(nk);
			}
			free(t);
		}
		if (match[i] >= 0) {
			snprintf(idx, sizeof idx, "%ld", match[i]);
			const char *n = NULL;
			long was = strmap_get(&claims, idx, &n) && n ? atol(n) : 0;
			char cnt[32];
			snprintf(cnt, sizeof cnt, "%ld", was + 1);
			strmap_put(&claims, idx, cnt);
		}
	}
	for (size_t i = 0; i < ls->n; i++) {
		if (ls->v[i].linked)
			continue;
		if (match[i] < 0) {
			struct finding *f = add(rc, K_ORPHAN, g->maps[0], NULL, ls->v[i].id);
			f->detail = natural_keys(g->ent, ls->v[i].item);
			continue;
		}
		const struct erp_rec *e = &rc->erp[match[i]];
		char *mk = xasprintf("%s\x1f%s", e->m->name, e->key);
		const char *li = NULL, *n = NULL;
		bool linked = strmap_get(&link_of, mk, &li) && li;
		free(mk);
		const struct link *k = linked ? &links[atol(li)] : NULL;
		snprintf(idx, sizeof idx, "%ld", match[i]);
		long others = strmap_get(&claims, idx, &n) && n ? atol(n) : 1;
		if ((k && k->listed && !streq(k->status, "deleted")) || others > 1) {
			struct finding *f = add(rc, K_DUPLICATE, e->m, e->key, ls->v[i].id);
			f->other = k && k->listed ? xstrdup(k->id) : NULL;
			f->detail = natural_keys(g->ent, ls->v[i].item);
			continue;
		}
		/* One record for an ERP key that has none on the platform (unlinked, or linked to one that is gone). */
		struct finding *f = add(rc, K_ORPHAN, e->m, e->key, ls->v[i].id);
		f->adoptable = true;
		f->repairable = true;
		rc->adoptable++;
		f->detail = natural_keys(g->ent, ls->v[i].item);
		struct compare c = {g, e->m, false, ls->v[i].item, e->payload, jv_arr(), jv_copy(e->payload)};
		compare_leaves(&c, e->payload, NULL);
		f->fields = c.diffs;
		f->seen = c.seen;
		/* Its gone link is not re-created: this record takes its place. */
		for (size_t x = 0; k && x < rc->nfound; x++)
			if (rc->found[x].kind == K_GONE && rc->found[x].m == e->m && streq(rc->found[x].key, e->key)) {
				rc->found[x].repairable = false;
				free(rc->found[x].detail);
				rc->found[x].detail = xasprintf("record %s matches it by its natural key: adopted in its place",
								ls->v[i].id);
			}
	}
	free(match);
	strmap_clear(&claims);
	strmap_clear(&nat);
	strmap_clear(&by_id);
	strmap_clear(&link_of);
}

/* ---- printing ---- */

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The group's fields not compared, sorted (borrowed from the map; the array is the caller's). */
static const char **write_only_sorted(const struct group *g, size_t *n)
{
	const char **v = xcalloc(g->write_only.n + 1, sizeof *v);
	*n = 0;
	for (size_t i = 0; i < g->write_only.cap; i++)
		if (g->write_only.keys[i])
			v[(*n)++] = g->write_only.keys[i];
	qsort(v, *n, sizeof *v, cmp_str);
	return v;
}

/* A value for people: NIRs masked (a field with `check: nir`). */
static void shown(struct sb *b, const struct mapping *m, const char *path, const struct jv *v)
{
	const struct field *fd = m ? mapping_field(m, path) : NULL;
	if (fd && fd->check == VC_NIR && v && v->t == JV_STR) {
		char masked[64];
		nir_mask(v->u.str.s, masked, sizeof masked);
		sb_json_string(b, masked, strlen(masked));
	} else if (v) {
		jv_dump(v, b);
	} else {
		sb_puts(b, "(absent)");
	}
}

static void details(struct sb *b, const struct finding *f)
{
	switch (f->kind) {
	case K_DRIFT:
		for (size_t i = 0; i < f->fields->u.arr.n; i++) {
			const struct jv *d = f->fields->u.arr.v[i];
			const char *path = jv_obj_str(d, "field");
			sb_printf(b, "%s%s: sent ", i ? "\n" : "", path);
			shown(b, f->m, path, jv_obj_get(d, "sent"));
			sb_puts(b, ", platform ");
			shown(b, f->m, path, jv_obj_get(d, "platform"));
			sb_puts(b, ", ERP ");
			if (jv_obj_get(d, "erp_absent"))
				sb_puts(b, "(no record)");
			else
				shown(b, f->m, path, jv_obj_get(d, "erp"));
		}
		break;
	case K_GONE:
		sb_printf(b, "linked, not on the platform; %s", f->detail);
		break;
	case K_ORPHAN:
		if (!f->adoptable) {
			sb_printf(b, "not linked, matches no ERP record (%s)", f->detail);
			break;
		}
		sb_printf(b, "not linked, matches the ERP record by %s: adoptable", f->detail);
		for (size_t i = 0; f->fields && i < f->fields->u.arr.n; i++) {
			const struct jv *d = f->fields->u.arr.v[i];
			const char *path = jv_obj_str(d, "field");
			sb_printf(b, "\n%s: platform ", path);
			shown(b, f->m, path, jv_obj_get(d, "platform"));
			sb_puts(b, ", ERP ");
			shown(b, f->m, path, jv_obj_get(d, "erp"));
		}
		break;
	case K_DUPLICATE:
		if (f->other)
			sb_printf(b, "a second record for this key (%s), which is linked to %s", f->detail, f->other);
		else
			sb_printf(b, "one of several unlinked records for this key (%s)", f->detail);
		break;
	default:
		break;
	}
	if (f->repaired)
		sb_puts(b, f->kind == K_DRIFT ? "\nrepaired: the ERP's values sent"
			   : f->kind == K_GONE ? "\nrepaired: created again"
					       : "\nrepaired: linked");
}

static void pad(struct sb *b, const char *s, size_t width)
{
	sb_puts(b, s);
	for (size_t n = utf8_len(s, strlen(s)); n < width; n++)
		sb_putc(b, ' ');
	sb_putc(b, ' ');
}

static void print_table(const struct rec *rc)
{
	size_t wm = 7, wk = 3, wi = 11;
	for (size_t i = 0; i < rc->nfound; i++) {
		const struct finding *f = &rc->found[i];
		size_t a = utf8_len(f->m->name, strlen(f->m->name)), k = f->key ? utf8_len(f->key, strlen(f->key)) : 1;
		wm = a > wm ? a : wm;
		wk = k > wk ? k : wk;
		wi = f->id && strlen(f->id) > wi ? strlen(f->id) : wi;
	}
	if (rc->nfound) {
		struct sb h = {0};
		pad(&h, "MAPPING", wm);
		pad(&h, "KEY", wk);
		pad(&h, "KIND", 9);
		pad(&h, "PLATFORM ID", wi);
		printf("%sDETAILS\n", sb_str(&h));
		sb_free(&h);
	}
	for (size_t i = 0; i < rc->nfound; i++) {
		const struct finding *f = &rc->found[i];
		struct sb d = {0};
		details(&d, f);
		const char *p = sb_str(&d);
		bool first = true;
		do {
			const char *nl = strchr(p, '\n');
			int len = nl ? (int)(nl - p) : (int)strlen(p);
			struct sb line = {0};
			pad(&line, first ? f->m->name : "", wm);
			pad(&line, first ? (f->key ? f->key : "-") : "", wk);
			pad(&line, first ? kind_names[f->kind] : "", 9);
			pad(&line, first ? f->id : "", wi);
			printf("%s%.*s\n", sb_str(&line), len, p);
			sb_free(&line);
			first = false;
			p = nl ? nl + 1 : NULL;
		} while (p);
		sb_free(&d);
	}
	for (size_t g = 0; g < rc->ngroups; g++) {
		const struct group *gr = &rc->groups[g];
		if (gr->not_listed) {
			printf("not reconciled: %s\n", gr->not_listed);
			continue;
		}
		if (gr->write_only.n) {
			size_t n;
			const char **names = write_only_sorted(gr, &n);
			printf("not compared (the platform does not return them): %s %s:", gr->cc->name, gr->ent->name);
			for (size_t i = 0; i < n; i++)
				printf("%s %s", i ? "," : "", names[i]);
			printf("\n");
			free(names);
		}
	}
	for (size_t g = 0; g < rc->ngroups; g++)
		if (!rc->groups[g].not_listed)
			printf("listed: %s %s, %lld record(s) in %lld request(s)\n", rc->groups[g].cc->name,
			       rc->groups[g].ent->name, rc->groups[g].listed, rc->groups[g].requests);
	for (size_t c = 0; c < rc->cfg->nconns; c++)
		if (rc->conn_requests[c])
			printf("requests: %s %lld (%lld listing, %lld reading what the ERP's records map to)\n",
			       rc->cfg->conns[c].name, rc->conn_requests[c], rc->conn_listing[c],
			       rc->conn_requests[c] - rc->conn_listing[c]);
	if (!rc->nfound)
		printf("Nothing found: every record on the platforms is as hrsync left it.\n");
	printf("totals: %ld drift, %ld gone, %ld orphan (%ld adoptable), %ld duplicate", rc->totals[K_DRIFT],
	       rc->totals[K_GONE], rc->totals[K_ORPHAN], rc->adoptable, rc->totals[K_DUPLICATE]);
	if (rc->repair)
		printf("; repaired %ld, left %ld", rc->repaired, rc->left);
	printf("\n");
}

static void json_str(struct sb *b, const char *s)
{
	if (s)
		sb_json_string(b, s, strlen(s));
	else
		sb_puts(b, "null");
}

static void print_json(const struct rec *rc)
{
	struct sb b = {0};
	sb_puts(&b, "{\n \"findings\": [");
	for (size_t i = 0; i < rc->nfound; i++) {
		const struct finding *f = &rc->found[i];
		sb_printf(&b, "%s\n  {\"mapping\": ", i ? "," : "");
		json_str(&b, f->m->name);
		sb_puts(&b, ", \"key\": ");
		json_str(&b, f->key);
		sb_printf(&b, ", \"kind\": \"%s\", \"platform_id\": ", kind_names[f->kind]);
		json_str(&b, f->id);
		if (f->kind == K_ORPHAN)
			sb_printf(&b, ", \"adoptable\": %s", f->adoptable ? "true" : "false");
		if (f->other) {
			sb_puts(&b, ", \"linked_id\": ");
			json_str(&b, f->other);
		}
		if (f->detail) {
			sb_puts(&b, ", \"detail\": ");
			json_str(&b, f->detail);
		}
		if (f->fields) {
			sb_puts(&b, ", \"fields\": [");
			for (size_t k = 0; k < f->fields->u.arr.n; k++) {
				const struct jv *d = f->fields->u.arr.v[k];
				const char *path = jv_obj_str(d, "field");
				sb_printf(&b, "%s{\"field\": ", k ? ", " : "");
				json_str(&b, path);
				static const char *const sides[] = {"sent", "platform", "erp"};
				for (int s = 0; s < 3; s++) {
					sb_printf(&b, ", \"%s\": ", sides[s]);
					if (s == 0 && f->kind == K_ORPHAN)
						sb_puts(&b, "null");
					else
						shown(&b, f->m, path, jv_obj_get(d, sides[s]));
				}
				sb_putc(&b, '}');
			}
			sb_putc(&b, ']');
		}
		if (rc->repair)
			sb_printf(&b, ", \"repaired\": %s", f->repaired ? "true" : "false");
		sb_putc(&b, '}');
	}
	sb_puts(&b, "\n ],\n \"write_only\": {");
	size_t n = 0;
	for (size_t g = 0; g < rc->ngroups; g++) {
		const struct group *gr = &rc->groups[g];
		if (gr->not_listed)
			continue;
		for (size_t m = 0; m < gr->nmaps; m++) {
			sb_printf(&b, "%s", n++ ? ", " : "");
			json_str(&b, gr->maps[m]->name);
			sb_puts(&b, ": [");
			size_t nw;
			const char **names = write_only_sorted(gr, &nw);
			for (size_t i = 0; i < nw; i++) {
				sb_puts(&b, i ? ", " : "");
				json_str(&b, names[i]);
			}
			free(names);
			sb_putc(&b, ']');
		}
	}
	sb_puts(&b, "},\n \"not_listed\": [");
	n = 0;
	for (size_t g = 0; g < rc->ngroups; g++)
		if (rc->groups[g].not_listed) {
			sb_puts(&b, n++ ? ", " : "");
			json_str(&b, rc->groups[g].not_listed);
		}
	sb_puts(&b, "],\n \"listed\": {");
	n = 0;
	for (size_t g = 0; g < rc->ngroups; g++)
		for (size_t m = 0; !rc->groups[g].not_listed && m < rc->groups[g].nmaps; m++) {
			sb_puts(&b, n++ ? ", " : "");
			json_str(&b, rc->groups[g].maps[m]->name);
			sb_printf(&b, ": %lld", rc->groups[g].listed);
		}
	sb_puts(&b, "},\n \"requests\": {");
	n = 0;
	for (size_t c = 0; c < rc->cfg->nconns; c++)
		if (rc->conn_requests[c]) {
			sb_puts(&b, n++ ? ", " : "");
			json_str(&b, rc->cfg->conns[c].name);
			sb_printf(&b, ": {\"total\": %lld, \"listing\": %lld}", rc->conn_requests[c], rc->conn_listing[c]);
		}
	sb_puts(&b, "},\n \"totals\": {");
	for (int k = 0; k < K__N; k++)
		sb_printf(&b, "%s\"%s\": %ld", k ? ", " : "", kind_names[k], rc->totals[k]);
	sb_printf(&b, ", \"adoptable\": %ld", rc->adoptable);
	if (rc->repair)
		sb_printf(&b, ", \"repaired\": %ld, \"left\": %ld", rc->repaired, rc->left);
	sb_puts(&b, "}\n}\n");
	fputs(sb_str(&b), stdout);
	sb_free(&b);
}

/* ---- metrics: hrsync_drift_records{mapping,kind} ---- */

static void write_metrics(const struct rec *rc)
{
	struct sb s = {0};
	for (size_t g = 0; g < rc->ngroups; g++)
		for (size_t m = 0; !rc->groups[g].not_listed && m < rc->groups[g].nmaps; m++) {
			const struct mapping *mp = rc->groups[g].maps[m];
			for (int k = 0; k < K__N; k++) {
				long n = 0;
				for (size_t i = 0; i < rc->nfound; i++)
					n += rc->found[i].m == mp && (int)rc->found[i].kind == k && !rc->found[i].repaired;
				sb_printf(&s, "hrsync_drift_records{mapping=\"%s\",kind=\"%s\"} %ld\n", mp->name, kind_names[k], n);
			}
		}
	metrics_write_drift(rc->cfg, sb_str(&s));
	sb_free(&s);
}

/* ---- repair ---- */

/* Mark the state for what --repair fixes; the names of the mappings concerned into only. */
static int mark_repairs(struct rec *rc, char **only, size_t *nonly)
{
	struct state st;
	char *err = NULL;
	if (!state_connect(&st, rc->cfg, &err)) {
		log_error("%s", err);
		free(err);
		return 3;
	}
	int got = state_lock(&st, &err);
	if (got <= 0) {
		if (got < 0)
			log_error("cannot take the run lock: %s", err);
		else
			log_notice("another hrsync run holds the lock on state schema %s; nothing repaired", rc->cfg->state_schema);
		free(err);
		state_close(&st);
		return got < 0 ? 3 : 75;
	}
	if (!state_migrate(&st, &err)) {
		log_error("cannot create or upgrade the state schema %s: %s", rc->cfg->state_schema, err);
		free(err);
		state_close(&st);
		return 3;
	}
	for (size_t i = 0; i < rc->nfound; i++) {
		struct finding *f = &rc->found[i];
		if (!f->repairable)
			continue;
		bool ok = false;
		const struct erp_rec *er = erp_of(rc, f->m, f->key);
		switch (f->kind) {
		case K_DRIFT:
			ok = state_link_drifted(&st, f->m->name, f->key, f->id, f->seen);
			log_rec(L_INFO, f->key, "reconcile", "%s: %zu field(s) differ on the platform (id %s); the ERP's values go out",
				f->m->name, f->fields->u.arr.n, f->id);
			break;
		case K_GONE:
			ok = state_link_gone(&st, f->m->name, f->key, f->id);
			log_rec(L_INFO, f->key, "reconcile", "%s: record %s is gone from the platform; created again", f->m->name,
				f->id);
			break;
		case K_ORPHAN: {
			char fp[65];
			bool same = !f->fields || !f->fields->u.arr.n;
			if (same)
				fingerprint(er->payload, fp);
			ok = state_link_adopt(&st, f->m->name, f->key, f->id, same ? fp : NULL, same ? er->payload : f->seen);
			log_rec(L_INFO, f->key, "adopt", "%s: record %s on the platform linked%s", f->m->name, f->id,
				same ? "" : "; the fields that differ get the ERP's values");
			break;
		}
		default:
			break;
		}
		if (!ok) {
			log_error("reconcile: cannot mark %s %s for repair: %s", f->m->name, f->key, st.err ? st.err : "");
			state_close(&st);
			return 3;
		}
		f->repaired = true;
		bool have = false;
		for (size_t k = 0; k < *nonly; k++)
			have |= streq(only[k], f->m->name);
		if (!have)
			only[(*nonly)++] = f->m->name;
	}
	state_close(&st);
	return 0;
}

/* A repair the run failed (its key is in failures) is not repaired. */
static void check_repairs(struct rec *rc)
{
	struct state st;
	char *err = NULL;
	if (!state_connect_report(&st, rc->cfg, "reconcile", true, &err)) {
		log_warn("reconcile: cannot read the failures after the repair: %s", err);
		free(err);
		return;
	}
	struct strmap failed = {0}; /* "mapping\x1fkey" of every failure of the mappings repaired */
	struct strmap read = {0};   /* the mappings read */
	for (size_t i = 0; i < rc->nfound; i++) {
		struct finding *f = &rc->found[i];
		if (!f->repaired)
			continue;
		if (!strmap_get(&read, f->m->name, NULL)) {
			strmap_put(&read, f->m->name, "");
			PGresult *r = state_failures_list(&st, f->m->name, NULL, 0);
			for (int k = 0; r && k < PQntuples(r); k++) {
				char *mk = xasprintf("%s\x1f%s", f->m->name, PQgetvalue(r, k, FL_KEY));
				strmap_put(&failed, mk, "");
				free(mk);
			}
			PQclear(r);
		}
		char *mk = xasprintf("%s\x1f%s", f->m->name, f->key);
		if (strmap_get(&failed, mk, NULL))
			f->repaired = false;
		free(mk);
	}
	strmap_clear(&failed);
	strmap_clear(&read);
	state_close(&st);
}

/* ---- the command ---- */

static void rec_free(struct rec *rc)
{
	for (size_t i = 0; i < rc->nerp; i++) {
		free(rc->erp[i].key);
		jv_free(rc->erp[i].payload);
	}
	free(rc->erp);
	strmap_clear(&rc->erp_ix);
	for (size_t i = 0; i < rc->nfound; i++) {
		struct finding *f = &rc->found[i];
		free(f->key);
		free(f->id);
		free(f->other);
		free(f->detail);
		jv_free(f->fields);
		jv_free(f->seen);
	}
	free(rc->found);
	for (size_t g = 0; g < rc->ngroups; g++) {
		free(rc->groups[g].maps);
		strmap_clear(&rc->groups[g].write_only);
		free(rc->groups[g].not_listed);
	}
	free(rc->groups);
	free(rc->conn_requests);
	free(rc->conn_listing);
}

/* The groups: each platform entity a selected push mapping writes to, with every mapping that writes to it. */
static void make_groups(struct rec *rc, char **only, size_t nonly)
{
	const struct config *cfg = rc->cfg;
	rc->groups = xcalloc(cfg->nmaps + 1, sizeof *rc->groups);
	for (size_t i = 0; i < cfg->nmaps; i++) {
		const struct mapping *m = cfg->maps[i];
		bool sel = !nonly;
		for (size_t k = 0; k < nonly; k++)
			sel |= streq(only[k], m->name);
		if (!sel || m->dir != DIR_PUSH || !m->conn || !m->ent)
			continue;
		bool have = false;
		for (size_t g = 0; g < rc->ngroups; g++)
			have |= rc->groups[g].cc == m->conn && rc->groups[g].ent == m->ent;
		if (have)
			continue;
		struct group *g = &rc->groups[rc->ngroups++];
		g->cc = m->conn;
		g->ent = m->ent;
		g->maps = xcalloc(cfg->nmaps + 1, sizeof *g->maps);
		for (size_t k = 0; k < cfg->nmaps; k++)
			if (cfg->maps[k]->dir == DIR_PUSH && cfg->maps[k]->conn == m->conn && cfg->maps[k]->ent == m->ent)
				g->maps[g->nmaps++] = cfg->maps[k];
		if (!m->ent->listing)
			g->not_listed = xasprintf("%s (%s %s): the connector cannot list its %s yet", m->name, m->conn->name,
						  m->ent->name, m->ent->name);
	}
}

static int reconcile(struct rec *rc, char **only, size_t nonly)
{
	const struct config *cfg = rc->cfg;
	rc->conn_requests = xcalloc(cfg->nconns + 1, sizeof *rc->conn_requests);
	rc->conn_listing = xcalloc(cfg->nconns + 1, sizeof *rc->conn_listing);
	make_groups(rc, only, nonly);
	for (size_t g = 0; g < rc->ngroups; g++)
		if (rc->groups[g].not_listed)
			log_warn("not reconciled: %s", rc->groups[g].not_listed);
	int code = read_erp(rc);
	if (code)
		return code;

	struct state st;
	char *err = NULL;
	if (!state_connect_report(&st, cfg, "reconcile", true, &err)) {
		log_error("%s", err);
		free(err);
		return 3;
	}
	int created = state_created(&st);
	if (created < 0) {
		log_error("cannot read the state schema %s: %s", cfg->state_schema, st.err ? st.err : "");
		state_close(&st);
		return 3;
	}
	struct http *http = http_new();
	struct connector **conns = xcalloc(cfg->nconns + 1, sizeof *conns);
	int rc_code = 0;
	for (size_t g = 0; g < rc->ngroups && !rc_code; g++) {
		struct group *gr = &rc->groups[g];
		if (gr->not_listed)
			continue;
		size_t ci = (size_t)(gr->cc - cfg->conns);
		if (!conns[ci] && !(conns[ci] = connector_new(gr->cc, http, &err))) {
			log_error("connector %s: %s", gr->cc->name, err ? err : "cannot start");
			free(err);
			rc_code = 3;
			break;
		}
		struct link *links = NULL;
		size_t nlinks = 0, cap = 0;
		for (size_t m = 0; created == 1 && m < gr->nmaps && !rc_code; m++)
			if (!read_links(&st, gr->maps[m], &links, &nlinks, &cap, &err)) {
				log_error("%s", err);
				free(err);
				rc_code = 3;
			}
		struct listing_acc acc = {0};
		struct list_stats ls = {0};
		long before = conns[ci]->pacer.stats.requests;
		bool ok = !rc_code && conn_list(conns[ci], gr->ent->pager, gr->ent->listing->path, on_listed, &acc, &ls, &err);
		gr->requests = conns[ci]->pacer.stats.requests - before;
		rc->conn_requests[ci] += gr->requests;
		rc->conn_listing[ci] += gr->requests;
		gr->listed = (long long)acc.n;
		if (!rc_code && !ok) {
			log_error("listing %s %s: %s", gr->cc->name, gr->ent->name, err ? err : "failed");
			free(err);
			err = NULL;
			rc_code = 3;
		} else if (!rc_code && ls.total >= 0 && ls.seen != ls.total) {
			log_error("%s listed %lld of the %lld %s it counts: an incomplete listing cannot tell what is gone; "
				  "try again later",
				  gr->cc->name, ls.seen, ls.total, gr->ent->name);
			rc_code = 3;
		} else if (!rc_code) {
			if (acc.no_id)
				log_warn("%s %s: %lld listed record(s) carry no id; not compared", gr->cc->name, gr->ent->name,
					 acc.no_id);
			log_info("%s %s: %lld record(s) listed in %lld request(s), %zu link(s)", gr->cc->name, gr->ent->name,
				 gr->listed, gr->requests, nlinks);
			classify(rc, gr, links, nlinks, &acc);
		}
		for (size_t i = 0; i < acc.n; i++) {
			free(acc.v[i].id);
			jv_free(acc.v[i].item);
		}
		free(acc.v);
		for (size_t i = 0; i < nlinks; i++) {
			free(links[i].key);
			free(links[i].id);
			free(links[i].status);
			jv_free(links[i].sent);
		}
		free(links);
	}
	for (size_t i = 0; i < cfg->nconns; i++)
		connector_free(conns[i]);
	free(conns);
	http_free(http);
	state_close(&st);
	return rc_code;
}

int cmd_reconcile(const struct globals *g, int argc, char **argv)
{
	struct rec rc = {0};
	char **only = xcalloc((size_t)argc + 1, sizeof *only);
	size_t nonly = 0;
	for (int i = 0; i < argc; i++) {
		if (streq(argv[i], "--mapping") && i + 1 < argc) {
			only[nonly++] = argv[++i];
		} else if (streq(argv[i], "--format") && i + 1 < argc &&
			   (streq(argv[i + 1], "json") || streq(argv[i + 1], "table"))) {
			rc.json = streq(argv[++i], "json");
		} else if (streq(argv[i], "--repair")) {
			rc.repair = true;
		} else {
			fprintf(stderr, "hrsync reconcile: %s '%s'\n"
					"usage: hrsync reconcile [--mapping NAME]... [--format table|json] [--repair]\n",
				streq(argv[i], "--format") ? "--format is table or json, not" : "unknown argument",
				streq(argv[i], "--format") && i + 1 < argc ? argv[i + 1] : argv[i]);
			free(only);
			return 2;
		}
	}
	struct config *cfg = cli_load_config(g);
	if (!cfg) {
		free(only);
		return 2;
	}
	rc.cfg = cfg;
	int code = 0;
	for (size_t i = 0; i < nonly && !code; i++) {
		const struct mapping *m = config_mapping(cfg, only[i]);
		if (!m || m->dir != DIR_PUSH) {
			fprintf(stderr, "hrsync reconcile: --mapping %s: no push mapping has that name\n", only[i]);
			code = 2;
		}
	}
	if (!code)
		code = reconcile(&rc, only, nonly);
	if (code) {
		if (rc.json)
			printf("{\"error\": \"the reconcile could not be made (exit %d): see the log\"}\n", code);
		else
			printf("The reconcile could not be made (exit %d): see the errors above.\n", code);
		goto out;
	}
	long found = rc.totals[K_DRIFT] + rc.totals[K_GONE] + rc.totals[K_ORPHAN] + rc.totals[K_DUPLICATE];
	if (rc.repair && found) {
		char **maps = xcalloc(cfg->nmaps + 1, sizeof *maps);
		size_t nmaps = 0;
		code = mark_repairs(&rc, maps, &nmaps);
		if (!code && nmaps) {
			/* The normal sync pass over the mappings repaired: logged, counted, guarded, recorded. */
			struct run_opts o = {.only = maps, .nonly = nmaps, .command = "reconcile"};
			struct run_result res;
			int run = sync_run(cfg, &o, &res);
			metrics_write(cfg, &res);
			run_result_free(&res);
			if (run == 2 || run == 3 || run == 75)
				code = run;
			check_repairs(&rc);
		}
		free(maps);
	}
	for (size_t i = 0; i < rc.nfound; i++)
		rc.repaired += rc.found[i].repaired;
	rc.left = found - rc.repaired;
	if (rc.json)
		print_json(&rc);
	else
		print_table(&rc);
	fflush(stdout);
	write_metrics(&rc);
	if (!code)
		code = rc.left ? 1 : 0;
out:
	rec_free(&rc);
	config_free(cfg);
	free(only);
	return code;
}
