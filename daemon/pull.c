/*
 * pull — see pull.h. Every statement runs on the state connection (read-write) through
 * state.c: the inbound table's rows here (the mapping's target, in the mirror), the
 * state's own `pulled` and `pull_cursors` rows there, the two written in one transaction.
 * The source connection stays a read-only snapshot. This module names no state table.
 */
#define _GNU_SOURCE
#include "pull.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "log.h"
#include "sha256.h"
#include "strmap.h"

#define FULL_EVERY_SECONDS (20 * 3600)   /* a full listing (deletions) about once a day */

struct puller {
	struct pull_env *pe;
	const struct mapping *m;
	char *table_q;          /* the quoted target table */
	char **cols_q;          /* the quoted column of each field */
	char *deleted_q;        /* the quoted deleted_column; NULL when none */
	struct strmap seen;     /* platform ids listed this run */
	bool stop;
	char *why;
};

/* A statement on the state connection failed (state.c logged it): the pull stops, saying why once. */
static void write_failed(struct puller *p)
{
	const char *e = p->pe->st->err;
	if (!p->why)
		p->why = xasprintf("writing the inbound table %s: %s", p->m->target_table, e ? e : "unknown error");
}

/* A JSON value as the text a column takes: scalars as text, objects as JSON, null as NULL. */
static char *as_param(const struct jv *v)
{
	if (jv_is_null(v))
		return NULL;
	if (v->t == JV_OBJ || v->t == JV_ARR)
		return jv_dumps(v);
	return jv_scalar_text(v);
}

static bool matches_filter(const struct jv *filter, const struct jv *rec)
{
	if (!filter)
		return true;
	for (size_t i = 0; i < filter->u.obj.n; i++) {
		char *want = jv_scalar_text(filter->u.obj.v[i]);
		char *have = jv_scalar_text(jv_path(rec, filter->u.obj.k[i]));
		bool eq = streq(want, have);
		free(want);
		free(have);
		if (!eq)
			return false;
	}
	return true;
}

static bool cb_ref_back(void *ctx, const char *mapping, const char *platform_id, struct jv **out)
{
	struct puller *p = ctx;
	char *key = NULL;
	if (!state_link_by_platform_id(p->pe->st, mapping, platform_id, &key))
		return false;
	*out = jv_str(key);
	free(key);
	return true;
}

static bool cb_lookup(void *ctx, const char *resource, const char *match, const char *name, struct jv **out)
{
	(void)ctx, (void)resource, (void)match, (void)name, (void)out;
	return false; /* lookups are for push mappings */
}

static enum ref_status cb_resolve(void *ctx, const struct field *f, int scheme, const char *id, const char *nir,
				  struct jv **out, char **why)
{
	(void)ctx, (void)f, (void)scheme, (void)id, (void)nir, (void)out;
	*why = xstrdup("ref is for push mappings; a pull mapping uses ref_back");
	return REF_INVALID;
}

/* The WHERE clause on the target's key columns, parameters from $first on; params filled. */
static void key_where(struct puller *p, const struct jv *payload, struct sb *w, const char **params, char **owned,
		      int first)
{
	for (size_t i = 0; i < p->m->ntarget_keys; i++) {
		int fi = -1;
		for (size_t j = 0; j < p->m->nfields; j++)
			if (streq(p->m->fields[j].name, p->m->target_keys[i]))
				fi = (int)j;
		sb_printf(w, "%s%s = $%d", i ? " AND " : "", p->cols_q[fi], first + (int)i);
		owned[i] = as_param(jv_obj_get(payload, p->m->target_keys[i]));
		params[i] = owned[i];
	}
}

/* The record's row in the inbound table: updated where its key is, inserted otherwise. */
static bool inbound_write(struct puller *p, const struct jv *payload)
{
	const struct mapping *m = p->m;
	struct state *st = p->pe->st;
	size_t n = m->nfields, nk = m->ntarget_keys;
	const char **params = xcalloc(n + nk + 2, sizeof *params);
	char **owned = xcalloc(n + nk + 2, sizeof *owned);
	struct sb set = {0}, cols = {0}, vals = {0}, where = {0};
	for (size_t i = 0; i < n; i++) {
		owned[i] = as_param(jv_obj_get(payload, m->fields[i].name));
		params[i] = owned[i];
		sb_printf(&set, "%s%s = $%zu", i ? ", " : "", p->cols_q[i], i + 1);
		sb_printf(&cols, "%s%s", i ? ", " : "", p->cols_q[i]);
		sb_printf(&vals, "%s$%zu", i ? ", " : "", i + 1);
	}
	if (p->deleted_q) {
		sb_printf(&set, ", %s = false", p->deleted_q);
		sb_printf(&cols, ", %s", p->deleted_q);
		sb_puts(&vals, ", false");
	}
	key_where(p, payload, &where, params + n, owned + n, (int)n + 1);
	char *upd = xasprintf("UPDATE %s SET %s WHERE %s", p->table_q, sb_str(&set), sb_str(&where));
	PGresult *r = state_exec(st, upd, (int)(n + nk), params);
	bool ok = r != NULL;
	if (ok && atol(PQcmdTuples(r)) == 0) {
		char *ins = xasprintf("INSERT INTO %s (%s) VALUES (%s)", p->table_q, sb_str(&cols), sb_str(&vals));
		PGresult *ri = state_exec(st, ins, (int)n, params);
		ok = ri != NULL;
		PQclear(ri);
		free(ins);
	}
	PQclear(r);
	free(upd);
	for (size_t i = 0; i < n + nk; i++)
		free(owned[i]);
	free(owned);
	free(params);
	sb_free(&set);
	sb_free(&cols);
	sb_free(&vals);
	sb_free(&where);
	return ok;
}

/* The record's key columns as a JSON object, as `pulled` keeps them. Caller frees. */
static char *target_key_json(const struct mapping *m, const struct jv *payload)
{
	struct jv *k = jv_obj();
	for (size_t i = 0; i < m->ntarget_keys; i++)
		jv_obj_set(k, m->target_keys[i], jv_copy(jv_obj_get(payload, m->target_keys[i])));
	char *kj = jv_dumps(k);
	jv_free(k);
	return kj;
}

/* The inbound row and the state's `pulled` row, in one transaction: both are written or neither. */
static bool upsert(struct puller *p, const char *pid, const struct jv *payload, const char *fp)
{
	struct state *st = p->pe->st;
	bool ok = state_begin(st) && inbound_write(p, payload);
	if (ok) {
		char *kj = target_key_json(p->m, payload);
		ok = state_pulled_put(st, p->m->name, pid, kj, fp, p->pe->run_id);
		free(kj);
	}
	if (ok)
		ok = state_commit(st);
	else
		state_rollback(st);
	if (!ok)
		write_failed(p);
	return ok;
}

static bool on_record(void *ud, const char *pid, const struct jv *rec)
{
	struct puller *p = ud;
	const struct mapping *m = p->m;
	struct counts *c = p->pe->cnt;
	if (!pid)
		return true;
	strmap_put(&p->seen, pid, "");
	c->rows++;
	char *old_fp = NULL;
	bool was_deleted = false;
	int known = state_pulled_get(p->pe->st, m->name, pid, &old_fp, &was_deleted);
	if (known < 0) {
		write_failed(p);
		p->stop = true;
		return false;
	}
	/* The filter admits new records; records pulled before keep being updated. */
	if (!known && !matches_filter(m->filter, rec)) {
		free(old_fp);
		c->rows--;
		return true;
	}
	struct eval_env env = {.ctx = p, .resolve = cb_resolve, .lookup = cb_lookup, .ref_back = cb_ref_back};
	struct row row = {.record = rec};
	struct mapped mp = {0};
	int rc = mapping_eval(m, m->fields, m->nfields, &row, &env, &mp);
	if (rc != 0) {
		struct failure f = {.kind = "mapping", .action = "pull", .field = rc == 1 ? mp.err.path : mp.defer_field,
				    .rule = rc == 1 ? mp.err.rule : "ref", .reason = rc == 1 ? mp.err.reason : mp.defer_reason};
		if (!p->pe->opts->dry_run)
			state_failure_put(p->pe->st, m->name, pid, &f, p->pe->run_id);
		log_rec(L_WARN, pid, "pull", "parked: field '%s' %s: %s", f.field ? f.field : "?", f.rule ? f.rule : "",
			f.reason ? f.reason : "");
		c->failed++;
		mapped_free(&mp);
		free(old_fp);
		return true;
	}
	char fp[65];
	char *text = jv_dumps(mp.payload);
	sha256_hex(text, strlen(text), fp);
	free(text);
	if (old_fp && streq(old_fp, fp) && !was_deleted) {
		c->unchanged++;
	} else if (p->pe->opts->dry_run) {
		if (known)
			c->updated++;
		else
			c->created++;
	} else if (upsert(p, pid, mp.payload, fp)) {
		state_failure_clear(p->pe->st, m->name, pid);
		if (known && !was_deleted)
			c->updated++;
		else
			c->created++;
		log_rec(L_INFO, pid, "pull", "%s in %s", known && !was_deleted ? "updated" : "added", m->target_table);
	} else {
		p->stop = true;
	}
	free(old_fp);
	mapped_free(&mp);
	return !p->stop;
}

/* A record deleted on the platform: its inbound row marked (deleted_column) or deleted. */
static bool inbound_remove(struct puller *p, const struct jv *key)
{
	const struct mapping *m = p->m;
	struct state *st = p->pe->st;
	size_t nk = m->ntarget_keys;
	const char **kp = xcalloc(nk + 1, sizeof *kp);
	char **owned = xcalloc(nk + 1, sizeof *owned);
	struct sb where = {0};
	key_where(p, key, &where, kp, owned, 1);
	char *sql = p->deleted_q ? xasprintf("UPDATE %s SET %s = true WHERE %s", p->table_q, p->deleted_q, sb_str(&where))
				 : xasprintf("DELETE FROM %s WHERE %s", p->table_q, sb_str(&where));
	PGresult *r = state_exec(st, sql, (int)nk, kp);
	bool ok = r != NULL;
	PQclear(r);
	free(sql);
	for (size_t k = 0; k < nk; k++)
		free(owned[k]);
	free(owned);
	free(kp);
	sb_free(&where);
	return ok;
}

/* After a full listing: what was pulled before and is gone from the platform. */
static void mark_deleted(struct puller *p)
{
	const struct mapping *m = p->m;
	struct state *st = p->pe->st;
	PGresult *r = state_pulled_live(st, m->name);
	if (!r) {
		write_failed(p);
		return;
	}
	for (int i = 0; i < PQntuples(r) && !p->stop; i++) {
		const char *pid = PQgetvalue(r, i, PULLED_PLATFORM_ID);
		if (strmap_get(&p->seen, pid, NULL))
			continue;
		if (p->pe->opts->dry_run) {
			p->pe->cnt->terminated++;
			continue;
		}
		const char *kt = PQgetvalue(r, i, PULLED_TARGET_KEY);
		struct jv *key = jv_parse(kt, strlen(kt), NULL, 0);
		/* The inbound change and the `pulled` mark, in one transaction. */
		bool ok = state_begin(st) && inbound_remove(p, key) && state_pulled_deleted(st, m->name, pid);
		if (ok && state_commit(st)) {
			p->pe->cnt->terminated++;
			log_rec(L_INFO, pid, "pull", "deleted on the platform: %s in %s", m->deleted_column ? "marked" : "removed",
				m->target_table);
		} else {
			state_rollback(st);
			write_failed(p);
			p->stop = true;
		}
		jv_free(key);
	}
	PQclear(r);
}

bool pull_run(struct pull_env *pe, const struct mapping *m, char **why)
{
	struct connector *c = pe->conn;
	if (!c->type->pull) {
		*why = xasprintf("connector %s pulls nothing", c->name);
		return false;
	}
	/* config_load refused such a mapping already; this keeps the rule next to the writes. */
	char refused[512];
	if (config_pull_target_refused(pe->cfg, m->target_table, refused, sizeof refused)) {
		*why = xasprintf("target table '%s': %s", m->target_table, refused);
		return false;
	}
	struct puller p = {.pe = pe, .m = m};
	PGconn *pg = state_pg(pe->st);
	if (!pg) {
		*why = xstrdup("the state database is unreachable");
		return false;
	}
	p.table_q = db_quote_qualified(pg, m->target_table);
	if (!p.table_q) {
		*why = xasprintf("target table '%s' is not a valid name (schema.table)", m->target_table);
		return false;
	}
	p.cols_q = xcalloc(m->nfields + 1, sizeof *p.cols_q);
	for (size_t i = 0; i < m->nfields; i++)
		p.cols_q[i] = db_quote_ident(pg, m->fields[i].name);
	p.deleted_q = m->deleted_column ? db_quote_ident(pg, m->deleted_column) : NULL;

	char *cursor = NULL;
	double since_full;
	if (!state_pull_cursor_get(pe->st, m->name, &cursor, &since_full))
		write_failed(&p);
	bool full = !cursor || since_full > FULL_EVERY_SECONDS;
	char *next = NULL, *err = NULL;
	bool complete = false;
	bool ok = c->type->pull(c, m->entity, m->filter, full ? NULL : cursor, on_record, &p, &next, &complete, &err);
	if (!ok && !p.why)
		p.why = xasprintf("connector %s: %s", c->name, err ? err : "pull failed");
	if (ok && !p.stop && complete)
		mark_deleted(&p);
	if (ok && !p.stop && !pe->opts->dry_run && !state_pull_cursor_put(pe->st, m->name, next, complete))
		write_failed(&p);
	free(err);
	free(next);
	free(cursor);
	for (size_t i = 0; i < m->nfields; i++)
		free(p.cols_q[i]);
	free(p.cols_q);
	free(p.deleted_q);
	free(p.table_q);
	strmap_clear(&p.seen);
	if (p.why) {
		*why = p.why;
		return false;
	}
	return ok && !p.stop;
}
