/*
 * check — `hrsync check [--online]`: the config and every mapping file, every problem
 * at once, compiler-style. --online also asks the database and the platforms:
 *   - every table and column a mapping names exists, and its type fits the format asked
 *     (a text column read as a date is a warning, a missing column an error), and the
 *     source's where/terminate SQL compiles;
 *   - each connector answers a harmless read with the configured credentials;
 *   - every id a map, value or default puts in an id field exists on the platform, and
 *     the names the mirror holds for lookups are found (a warning naming the missing ones);
 *   - the source's role (which runs the mappings' SQL) can write nothing: a warning says
 *     what it could write (roles.h).
 * It reads only: one READ ONLY transaction, GET requests.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "db.h"
#include "lookups.h"
#include "roles.h"
#include "source.h"
#include "strmap.h"

enum { OID_BOOL = 16, OID_INT8 = 20, OID_INT2 = 21, OID_INT4 = 23, OID_TEXT = 25, OID_FLOAT4 = 700,
       OID_FLOAT8 = 701, OID_BPCHAR = 1042, OID_VARCHAR = 1043, OID_DATE = 1082, OID_TIMESTAMP = 1114,
       OID_TIMESTAMPTZ = 1184, OID_NUMERIC = 1700 };

static bool textual(unsigned oid)
{
	return oid == OID_TEXT || oid == OID_VARCHAR || oid == OID_BPCHAR;
}

static bool numeric(unsigned oid)
{
	return oid == OID_INT2 || oid == OID_INT4 || oid == OID_INT8 || oid == OID_NUMERIC || oid == OID_FLOAT4 ||
	       oid == OID_FLOAT8;
}

static const char *format_name(enum vfmt f)
{
	static const char *const n[] = {"", "string", "int", "number", "bool", "date", "datetime", "unix"};
	return n[f];
}

/* The field of m that reads column col (for a position to point at); NULL when only the key does. */
static const struct field *field_reading(const struct field *f, size_t n, const char *col)
{
	for (size_t i = 0; i < n; i++) {
		if (f[i].nested) {
			const struct field *k = field_reading(f[i].kids, f[i].nkids, col);
			if (k)
				return k;
			continue;
		}
		if (f[i].from && streq(f[i].from, col))
			return &f[i];
		for (size_t j = 0; j < f[i].tpl.n; j++)
			if (!f[i].tpl.parts[j].lit && streq(f[i].tpl.parts[j].path, col))
				return &f[i];
	}
	return NULL;
}

static const struct ynode *src_node(const struct mapping *m, const char *key)
{
	const struct ynode *s = ymap_get(m->doc->root, "source");
	const struct ynode *n = ymap_get(s, key);
	return n ? n : s ? s : m->doc->root;
}

/* Type fit between a column and the format its field asks for. */
static void check_types(struct diag *d, const struct mapping *m, const struct field *f, size_t n, PGresult *desc)
{
	for (size_t i = 0; i < n; i++) {
		if (f[i].nested) {
			check_types(d, m, f[i].kids, f[i].nkids, desc);
			continue;
		}
		if (!f[i].from || f[i].src == VS_LOOKUP || f[i].fmt == VF_NONE)
			continue;
		int c = PQfnumber(desc, f[i].from);
		if (c < 0) {
			/* PQfnumber folds unquoted names: try the exact one. */
			char *q = xasprintf("\"%s\"", f[i].from);
			c = PQfnumber(desc, q);
			free(q);
		}
		if (c < 0)
			continue;
		unsigned oid = PQftype(desc, c);
		enum vfmt fm = f[i].fmt;
		bool datey = fm == VF_DATE || fm == VF_DATETIME || fm == VF_UNIX;
		if (datey && textual(oid))
			diag_warn(d, m->file, f[i].line, f[i].col,
				  "field '%s': column %s is text, read as a %s: values like 2026-11-25, 25.11.2026 or "
				  "25/11/2026 pass, others fail the record",
				  f[i].path, f[i].from, format_name(fm));
		else if (datey && (numeric(oid) || oid == OID_BOOL) && fm != VF_UNIX)
			diag_error(d, m->file, f[i].line, f[i].col, "field '%s': column %s is %s, it cannot be read as a %s",
				   f[i].path, f[i].from, numeric(oid) ? "a number" : "a boolean", format_name(fm));
		else if ((fm == VF_INT || fm == VF_NUMBER) && textual(oid))
			diag_warn(d, m->file, f[i].line, f[i].col,
				  "field '%s': column %s is text, read as %s: values that are not numbers fail the record",
				  f[i].path, f[i].from, fm == VF_INT ? "an int" : "a number");
		else if (fm == VF_BOOL && textual(oid))
			diag_warn(d, m->file, f[i].line, f[i].col,
				  "field '%s': column %s is text, read as a bool: true/false, yes/no, y/n, on/off, 1/0, t/f, "
				  "oui/non, да/нет pass", f[i].path,
				  f[i].from);
	}
}

static void check_source(PGconn *pg, struct source *src, const struct mapping *m, struct diag *d)
{
	/* 1. The table or query, described without reading a row. */
	char *from = NULL;
	if (m->table) {
		char *t = db_quote_qualified(pg, m->table);
		if (!t) {
			const struct ynode *n = src_node(m, "table");
			diag_error(d, m->file, n->line, n->col, "source table: '%s' is not a valid name (schema.table)", m->table);
			return;
		}
		from = t;
	} else {
		from = xasprintf("(%s)", m->query);
	}
	char *sql = xasprintf("SELECT * FROM %s AS s0 LIMIT 0", from);
	free(from);
	PGresult *r = PQprepare(pg, "", sql, 0, NULL);
	free(sql);
	if (PQresultStatus(r) != PGRES_COMMAND_OK) {
		char *e = db_error(pg, r);
		const struct ynode *n = src_node(m, m->table ? "table" : "query");
		diag_error(d, m->file, n->line, n->col, "source %s: %s", m->table ? "table" : "query", e);
		free(e);
		PQclear(r);
		PQclear(PQexec(pg, "ROLLBACK TO SAVEPOINT c"));
		return;
	}
	PQclear(r);
	PGresult *desc = PQdescribePrepared(pg, "");
	int nf = PQnfields(desc);
	const char **names = xcalloc((size_t)nf + 1, sizeof *names);
	for (int i = 0; i < nf; i++)
		names[i] = PQfname(desc, i);
	bool missing = false;
	for (size_t i = 0; i < m->ncols; i++) {
		bool found = false;
		for (int k = 0; k < nf; k++)
			found |= streq(names[k], m->cols[i]);
		if (found)
			continue;
		missing = true;
		const char *sug = diag_suggest(m->cols[i], names, (size_t)nf);
		const struct field *f = field_reading(m->fields, m->nfields, m->cols[i]);
		if (!f)
			f = field_reading(m->term_fields, m->nterm, m->cols[i]);
		char sugbuf[160] = "";
		if (sug)
			snprintf(sugbuf, sizeof sugbuf, " (did you mean '%s'?)", sug);
		if (f)
			diag_error(d, m->file, f->line, f->col, "field '%s': the source has no column '%s'%s", f->path,
				   m->cols[i], sugbuf);
		else {
			const struct ynode *n = src_node(m, "key");
			diag_error(d, m->file, n->line, n->col, "source key: the source has no column '%s'%s", m->cols[i],
				   sugbuf);
		}
	}
	check_types(d, m, m->fields, m->nfields, desc);
	check_types(d, m, m->term_fields, m->nterm, desc);
	free(names);
	PQclear(desc);
	if (missing)
		return;
	/* 2. The whole read, where and terminate.when included, compiled (not run). */
	char *err = NULL;
	struct src_filter flt = {.no_state = true, .limit = 1};
	char *full = source_sql(src, m, &flt, &err);
	if (!full) {
		diag_error(d, m->file, m->line, m->col, "source: %s", err);
		free(err);
		return;
	}
	r = PQprepare(pg, "", full, 0, NULL);
	free(full);
	if (PQresultStatus(r) != PGRES_COMMAND_OK) {
		char *e = db_error(pg, r);
		const struct ynode *tw = ymap_get(ymap_get(m->doc->root, "terminate"), "when");
		const struct ynode *n = m->where ? src_node(m, "where") : tw ? tw : src_node(m, "table");
		diag_error(d, m->file, n->line, n->col, "%s: %s (hrsync puts each condition in parentheses: (%s))",
			   m->where ? "source where (or terminate.when)" : "terminate.when", e,
			   m->where ? m->where : m->term_when ? m->term_when : "");
		free(e);
		PQclear(PQexec(pg, "ROLLBACK TO SAVEPOINT c"));
	}
	PQclear(r);
}

/* ---- the platforms ---- */

struct online {
	struct config *cfg;
	struct diag *d;
	struct http *http;
	struct connector **conns;
	bool *conn_ok;
	struct strmap lists;     /* "connector\x1fresource\x1f" -> "" (loaded); "...\x1fid" -> "" ; "...\x1fn\x1fname" -> id */
};

static int conn_index(const struct online *o, const struct conn_cfg *cc)
{
	for (size_t i = 0; i < o->cfg->nconns; i++)
		if (&o->cfg->conns[i] == cc)
			return (int)i;
	return -1;
}

static char *list_mark(const struct online *o, int ci, const char *resource)
{
	return xasprintf("%s\x1f%s\x1f", o->cfg->conns[ci].name, resource);
}

/* Keep what reading a reference list gave: its ids and names, or why it could not be read. */
static void keep_list(struct online *o, int ci, const char *resource, const char *match, const struct jv *items,
		      const char *err)
{
	char *mark = list_mark(o, ci, resource);
	if (!items) {
		strmap_put(&o->lists, mark, err ? err : "failed");
		free(mark);
		return;
	}
	for (size_t i = 0; i < items->u.arr.n; i++) {
		const struct jv *it = items->u.arr.v[i];
		char *id = jv_id_text(jv_obj_get(it, "id"));
		char *name = jv_scalar_text(jv_obj_get(it, match ? match : "name"));
		if (id) {
			char *k = xasprintf("%s%s", mark, id);
			strmap_put(&o->lists, k, "");
			free(k);
		}
		if (name) {
			char *nt = lookups_norm(name);
			char *k = xasprintf("%sn\x1f%s", mark, nt);
			strmap_put(&o->lists, k, id ? id : "");
			free(k);
			free(nt);
		}
		free(id);
		free(name);
	}
	strmap_put(&o->lists, mark, "");
	free(mark);
}

/* A reference list the checks need, read with the others (read_lists). */
struct wanted {
	int ci;
	const char *resource;
	const char *match;
};

static void want(const struct online *o, struct wanted **w, size_t *n, int ci, const char *resource,
		 const char *match)
{
	char *mark = list_mark(o, ci, resource);
	bool have = strmap_get(&o->lists, mark, NULL);
	free(mark);
	for (size_t i = 0; i < *n && !have; i++)
		have = (*w)[i].ci == ci && streq((*w)[i].resource, resource);
	if (have)
		return;
	*w = xrealloc(*w, (*n + 1) * sizeof **w);
	(*w)[(*n)++] = (struct wanted){ci, resource, match};
}

/* The lists read side by side (connector_lists), each kept (keep_list). */
static void read_lists(struct online *o, struct wanted *w, size_t n)
{
	if (!n)
		return;
	struct lookup_list *ls = xcalloc(n, sizeof *ls);
	for (size_t i = 0; i < n; i++) {
		ls[i].c = o->conns[w[i].ci];
		ls[i].resource = w[i].resource;
	}
	connector_lists(ls, n);
	for (size_t i = 0; i < n; i++) {
		keep_list(o, w[i].ci, w[i].resource, w[i].match, ls[i].items, ls[i].err);
		jv_free(ls[i].items);
		free(ls[i].err);
	}
	free(ls);
}

/* A reference list as read_lists kept it: false when the platform would not give it, *why
 * saying why. */
static bool list_kept(const struct online *o, int ci, const char *resource, const char **why)
{
	char *mark = list_mark(o, ci, resource);
	if (!strmap_get(&o->lists, mark, why))
		*why = "not read";
	free(mark);
	bool ok = !*why || !**why;
	if (ok)
		*why = NULL;
	return ok;
}

static bool id_known(struct online *o, int ci, const char *resource, const struct jv *v)
{
	char *id = jv_id_text(v);
	if (!id)
		return true; /* null or not an id: nothing to check */
	char *k = xasprintf("%s\x1f%s\x1f%s", o->cfg->conns[ci].name, resource, id);
	bool ok = strmap_get(&o->lists, k, NULL);
	free(k);
	free(id);
	return ok;
}

static const struct field *field_at(const struct mapping *m, const char *path)
{
	if (str_has_prefix(path, "terminate.")) {
		for (size_t i = 0; i < m->nterm; i++)
			if (streq(m->term_fields[i].name, path + 10))
				return &m->term_fields[i];
		return NULL;
	}
	return mapping_field(m, path);
}

/* The field of an id the platform keeps, when it sends constants (map values, value,
 * default) rather than a lookup's: those must be ids of idf->resource. */
static const struct field *id_consts(const struct mapping *m, const struct id_field *idf)
{
	const struct field *f = field_at(m, idf->path);
	if (!f || f->src == VS_LOOKUP || (!f->nmap && !f->value && !f->def))
		return NULL;
	return f;
}

/* A mapping's lookup fields, for mapping_each_lookup: the lists they need, then their names. */
struct lookups_of_mapping {
	struct online *o;
	const struct mapping *m;
	int ci;
	struct wanted **w;
	size_t *n;
	PGconn *pg;
};

static bool want_lookup(void *ud, const struct field *f)
{
	struct lookups_of_mapping *lm = ud;
	want(lm->o, lm->w, lm->n, lm->ci, f->lookup_resource, f->lookup_match);
	return true;
}

/* The lists a mapping's checks read: the ids its constants name, its lookups' (with the database). */
static void want_mapping(struct online *o, struct wanted **w, size_t *n, const struct mapping *m, int ci, bool db)
{
	for (const struct id_field *idf = m->ent ? m->ent->id_fields : NULL; idf && idf->path; idf++)
		if (id_consts(m, idf))
			want(o, w, n, ci, idf->resource, "name");
	struct lookups_of_mapping lm = {.o = o, .m = m, .ci = ci, .w = w, .n = n};
	if (db)
		mapping_each_lookup(m, want_lookup, &lm);
}

/* Every constant a field can produce (map values, value, default) must be an id the platform has. */
static void check_ids(struct online *o, const struct mapping *m, int ci)
{
	const struct id_field *idf = m->ent ? m->ent->id_fields : NULL;
	for (; idf && idf->path; idf++) {
		const struct field *f = id_consts(m, idf);
		if (!f)
			continue;
		const char *why = NULL;
		if (!list_kept(o, ci, idf->resource, &why)) {
			diag_error(o->d, m->file, f->line, f->col, "field '%s': cannot read %s from the platform: %s",
				   f->path, idf->resource, why ? why : "failed");
			continue;
		}
		for (size_t i = 0; i < f->nmap; i++)
			if (!id_known(o, ci, idf->resource, f->map[i].val)) {
				char *t = jv_scalar_text(f->map[i].val);
				diag_error(o->d, m->file, f->line, f->col,
					   "field '%s': map sends %s for '%s', but the platform has no %s with id %s", f->path,
					   t, f->map[i].key, idf->resource, t);
				free(t);
			}
		const struct jv *consts[] = {f->value, f->def};
		for (int k = 0; k < 2; k++)
			if (consts[k] && !id_known(o, ci, idf->resource, consts[k])) {
				char *t = jv_scalar_text(consts[k]);
				diag_error(o->d, m->file, f->line, f->col, "field '%s': %s %s is not an id of %s on the platform",
					   f->path, k ? "default" : "value", t, idf->resource);
				free(t);
			}
	}
}

/* The names the mirror holds for a lookup, against the platform's list: a warning naming the missing. */
static void check_lookup_values(struct online *o, PGconn *pg, const struct mapping *m, const struct field *f, int ci)
{
	const char *why = NULL;
	if (!list_kept(o, ci, f->lookup_resource, &why)) {
		diag_error(o->d, m->file, f->line, f->col, "field '%s': cannot read %s from the platform: %s", f->path,
			   f->lookup_resource, why ? why : "failed");
		return;
	}
	char *col = db_quote_ident(pg, f->from);
	char *from = m->table ? db_quote_qualified(pg, m->table) : xasprintf("(%s)", m->query);
	char *sql = xasprintf("SELECT DISTINCT %s::text FROM %s AS s0 WHERE %s IS NOT NULL LIMIT 2000", col, from, col);
	PQclear(PQexec(pg, "SAVEPOINT l"));
	PGresult *r = db_exec1(pg, sql, NULL, NULL);
	free(sql);
	free(col);
	free(from);
	if (!r) {
		PQclear(PQexec(pg, "ROLLBACK TO SAVEPOINT l"));
		return;
	}
	struct sb missing = {0};
	int nmiss = 0;
	for (int i = 0; i < PQntuples(r); i++) {
		char *nt = lookups_norm(PQgetvalue(r, i, 0));
		if (nt && *nt) {
			char *k = xasprintf("%s\x1f%s\x1fn\x1f%s", o->cfg->conns[ci].name, f->lookup_resource, nt);
			if (!strmap_get(&o->lists, k, NULL)) {
				if (nmiss < 5)
					sb_printf(&missing, "%s'%s'", nmiss ? ", " : "", PQgetvalue(r, i, 0));
				nmiss++;
			}
			free(k);
		}
		free(nt);
	}
	if (nmiss)
		diag_warn(o->d, m->file, f->line, f->col,
			  "field '%s': %d name(s) in column %s have no %s on the platform: %s%s; those records will fail",
			  f->path, nmiss, f->from, f->lookup_resource, sb_str(&missing), nmiss > 5 ? ", ..." : "");
	sb_free(&missing);
	PQclear(r);
}

static bool lookup_values(void *ud, const struct field *f)
{
	struct lookups_of_mapping *lm = ud;
	check_lookup_values(lm->o, lm->pg, lm->m, f, lm->ci);
	return true;
}

/* The source's role runs the mappings' SQL: it should be able to write nothing (roles.h). */
static void check_source_role(struct config *cfg, PGconn *pg, struct diag *d)
{
	const struct ynode *db = ymap_get(cfg->doc->root, "database");
	const struct ynode *n = cfg->source_conninfo ? ymap_get(db, "source_conninfo") : ymap_get(db, "conninfo");
	char *err = NULL;
	char *writes = roles_source_writes(pg, &err);
	if (!writes) {
		diag_warn(d, cfg->path, n ? n->line : 0, n ? n->col : 0,
			  "database: could not read what the source's role may write: %s", err);
		free(err);
		return;
	}
	if (*writes)
		diag_warn(d, cfg->path, n ? n->line : 0, n ? n->col : 0,
			  "database: the mappings' SQL (where, terminate.when, query) runs as a role that can write: %s. "
			  "`hrsync db grants` prints the SQL for a source role that only reads the mirror (%s)",
			  writes, cfg->source_conninfo ? "database.source_conninfo"
						       : "set database.source_conninfo to it");
	free(writes);
}

/* A connection that failed, reported at its key of database: (*err freed). */
static void connect_failed(struct config *cfg, struct diag *d, const char *key, char **err)
{
	const struct ynode *n = ymap_get(ymap_get(cfg->doc->root, "database"), key);
	diag_error(d, cfg->path, n ? n->line : 0, n ? n->col : 0, "database: %s", *err);
	free(*err);
	*err = NULL;
}

/*
 * A reference into the mapping itself (a unit's parent, `ref: "erp:{parent_code}"` with
 * ref_mapping naming the mapping): the records whose references come back to themselves
 * can never be created, whatever the order. Each cycle is an error naming its records.
 */
static void check_ref_cycles(PGconn *pg, const struct config *cfg, const struct mapping *m, struct diag *d)
{
	/* A platform that takes references natively (Troops) is sent them as they are: a record's
	 * reference to itself (a candidate's own erp: id) is its identity, not a parent. */
	if (m->conn && m->conn->type && m->conn->type->native_refs)
		return;
	for (size_t i = 0; i < m->nfields; i++) {
		const struct field *f = &m->fields[i];
		if (f->src != VS_REF || config_ref_target(cfg, m, f) != m || f->tpl.n != 2 || !f->tpl.parts[0].lit ||
		    !streq(f->tpl.parts[0].lit, "erp:") || f->tpl.parts[1].lit)
			continue;
		char *key = db_quote_ident(pg, m->key), *col = db_quote_ident(pg, f->tpl.parts[1].path);
		char *from = m->table ? db_quote_qualified(pg, m->table) : xasprintf("(%s)", m->query);
		char *sql = key && col && from ? xasprintf("SELECT %s::text, %s::text FROM %s AS s0%s%s%s", key, col, from,
							   m->where ? " WHERE (" : "", m->where ? m->where : "",
							   m->where ? ")" : "")
					       : NULL;
		free(key);
		free(col);
		free(from);
		PQclear(PQexec(pg, "SAVEPOINT c"));
		PGresult *r = sql ? PQexec(pg, sql) : NULL;
		free(sql);
		if (PQresultStatus(r) != PGRES_TUPLES_OK) {
			PQclear(r);
			PQclear(PQexec(pg, "ROLLBACK TO SAVEPOINT c"));
			continue; /* check_source said why */
		}
		struct strmap parent = {0}, color = {0};   /* color: "1" on the walk, "2" done */
		for (int row = 0; row < PQntuples(r); row++)
			if (!PQgetisnull(r, row, 0) && !PQgetisnull(r, row, 1))
				strmap_put(&parent, PQgetvalue(r, row, 0), PQgetvalue(r, row, 1));
		int cycles = 0;
		for (int row = 0; row < PQntuples(r) && cycles < 10; row++) {
			if (PQgetisnull(r, row, 0) || strmap_get(&color, PQgetvalue(r, row, 0), NULL))
				continue;
			const char *k = PQgetvalue(r, row, 0), *p = NULL;
			while (k && !strmap_get(&color, k, NULL)) {
				strmap_put(&color, k, "1");
				k = strmap_get(&parent, k, &p) ? p : NULL;
			}
			const char *c = NULL;
			if (k && strmap_get(&color, k, &c) && streq(c, "1")) {
				struct sb chain = {0};
				const char *x = k;
				sb_puts(&chain, x);
				do {
					strmap_get(&parent, x, &p);
					x = p;
					sb_printf(&chain, " -> %s", x);
				} while (!streq(x, k) && chain.len < 2000);
				diag_error(d, m->file, f->line, f->col,
					   "field '%s': reference cycle in the source of mapping %s: %s; none of these records "
					   "can be created before the others: fix the references in the ERP",
					   f->path, m->name, sb_str(&chain));
				sb_free(&chain);
				cycles++;
			}
			/* this walk is done: mark it so */
			for (const char *y = PQgetvalue(r, row, 0); y;) {
				const char *cy = NULL;
				if (strmap_get(&color, y, &cy) && streq(cy, "2"))
					break;
				strmap_put(&color, y, "2");
				y = strmap_get(&parent, y, &p) ? p : NULL;
			}
		}
		strmap_clear(&parent);
		strmap_clear(&color);
		PQclear(r);
	}
}

static void check_online(struct config *cfg, struct diag *d)
{
	char *err = NULL;
	PGconn *pg = db_connect_source(cfg, "check", &err);
	if (!pg)
		connect_failed(cfg, d, cfg->source_conninfo ? "source_conninfo" : "conninfo", &err);
	struct source src = {.pg = pg, .cfg = cfg};
	if (pg)
		check_source_role(cfg, pg, d);
	if (cfg->source_conninfo) {
		/* The source's session is the one checked below; the state's must connect too. */
		PGconn *st = db_connect(cfg, "check", &err);
		if (!st)
			connect_failed(cfg, d, "conninfo", &err);
		PQfinish(st);
	}
	if (pg) {
		src.state_q = db_quote_ident(pg, cfg->state_schema);
		PQclear(PQexec(pg, "BEGIN READ ONLY"));
		for (size_t i = 0; i < cfg->nmaps; i++) {
			if (cfg->maps[i]->dir != DIR_PUSH)
				continue;
			PQclear(PQexec(pg, "SAVEPOINT c"));
			check_source(pg, &src, cfg->maps[i], d);
			check_ref_cycles(pg, cfg, cfg->maps[i], d);
		}
	}
	struct online o = {.cfg = cfg, .d = d, .http = http_new()};
	o.conns = xcalloc(cfg->nconns + 1, sizeof *o.conns);
	o.conn_ok = xcalloc(cfg->nconns + 1, sizeof *o.conn_ok);
	struct wanted *w = NULL;
	size_t nw = 0;
	for (size_t i = 0; i < cfg->nconns; i++) {
		struct conn_cfg *cc = &cfg->conns[i];
		o.conns[i] = connector_new(cc, o.http, &err);
		if (!o.conns[i]) {
			diag_error(d, cc->file, cc->line, cc->col, "connector '%s': %s", cc->name, err ? err : "cannot start");
			free(err);
			err = NULL;
			continue;
		}
		/* A harmless read: the first reference list the connector offers (every connector's
		 * side by side, below). */
		if (cc->type->resources && cc->type->resources[0])
			want(&o, &w, &nw, (int)i, cc->type->resources[0], "name");
	}
	read_lists(&o, w, nw);
	for (size_t i = 0; i < cfg->nconns; i++) {
		const struct conn_cfg *cc = &cfg->conns[i];
		const char *why = NULL;
		const char *res = cc->type->resources ? cc->type->resources[0] : NULL;
		if (!o.conns[i])
			continue;
		if (res && !list_kept(&o, (int)i, res, &why))
			diag_error(d, cc->file, cc->line, cc->col, "connector '%s': could not read %s from the platform: %s",
				   cc->name, res, why ? why : "failed");
		else
			o.conn_ok[i] = true;
	}
	/* Then every list the mappings' checks read, side by side. */
	nw = 0;
	for (size_t i = 0; i < cfg->nmaps; i++) {
		const struct mapping *m = cfg->maps[i];
		int ci = m->conn ? conn_index(&o, m->conn) : -1;
		if (m->dir == DIR_PUSH && ci >= 0 && o.conn_ok[ci])
			want_mapping(&o, &w, &nw, m, ci, pg != NULL);
	}
	read_lists(&o, w, nw);
	free(w);
	for (size_t i = 0; i < cfg->nmaps; i++) {
		const struct mapping *m = cfg->maps[i];
		int ci = m->conn ? conn_index(&o, m->conn) : -1;
		if (m->dir != DIR_PUSH || ci < 0 || !o.conn_ok[ci])
			continue;
		check_ids(&o, m, ci);
		struct lookups_of_mapping lm = {.o = &o, .m = m, .ci = ci, .pg = pg};
		if (pg)
			mapping_each_lookup(m, lookup_values, &lm);
	}
	for (size_t i = 0; i < cfg->nconns; i++)
		connector_free(o.conns[i]);
	free(o.conns);
	free(o.conn_ok);
	strmap_clear(&o.lists);
	http_free(o.http);
	if (pg) {
		PQclear(PQexec(pg, "ROLLBACK"));
		PQfinish(pg);
	}
	free(src.state_q);
}

/* Plain http is accepted for a sandbox on this machine only (config.c); check says so too. */
static void warn_insecure_http(const struct config *cfg, struct diag *d)
{
	for (size_t i = 0; i < cfg->nconns; i++) {
		const struct conn_cfg *cc = &cfg->conns[i];
		if (cc->allow_insecure_http)
			diag_warn(d, cc->file, cc->line, cc->col,
				  "connector '%s': allow_insecure_http: requests may go over plain http, credentials included "
				  "(for a sandbox on this machine only)",
				  cc->name);
	}
}

int cmd_check(const struct globals *g, int argc, char **argv)
{
	bool online = false, list = false;
	for (int i = 0; i < argc; i++) {
		if (streq(argv[i], "--online")) {
			online = true;
		} else if (streq(argv[i], "--list-mappings")) {
			list = true;
		} else {
			fprintf(stderr,
				"hrsync check: unknown argument '%s'\nusage: hrsync check [--online] [--list-mappings]\n",
				argv[i]);
			return 2;
		}
	}
	struct diag d = {0};
	struct config *cfg = config_load(g->config, &d);
	if (list) {
		/* For shell completion: the names alone, even when some files have errors; the
		 * problems only when there is no configuration to list. */
		if (!cfg)
			diag_print(&d, stderr);
		for (size_t i = 0; cfg && i < cfg->nmaps; i++)
			if (cfg->maps[i]->name && *cfg->maps[i]->name)
				printf("%s\n", cfg->maps[i]->name);
		diag_free(&d);
		int lrc = cfg ? 0 : 2;
		config_free(cfg);
		return lrc;
	}
	if (cfg)
		warn_insecure_http(cfg, &d);
	if (cfg && !d.errors && online) {
		if (cfg->timezone) {
			setenv("TZ", cfg->timezone, 1);
			tzset();
		}
		log_setup(g->level_set ? g->level : L_WARN, g->format_set ? g->format : LOGF_AUTO);
		check_online(cfg, &d);
	}
	diag_print(&d, stderr);
	int rc = (!cfg || d.errors) ? 2 : 0;
	if (rc == 0)
		fprintf(stderr, "%s: %zu mapping(s), %zu connector(s): no errors%s%s\n", g->config, cfg->nmaps,
			cfg->nconns, d.warnings ? ", warnings above" : "", online ? " (database and platforms checked)" : "");
	else
		fprintf(stderr, "%s: %d error(s), %d warning(s)%s\n", g->config, d.errors ? d.errors : 1, d.warnings,
			online && cfg && d.errors ? "" : "");
	diag_free(&d);
	config_free(cfg);
	return rc;
}
