/*
 * source — see source.h.
 */
#include "source.h"

#include <stdlib.h>
#include <string.h>

#include "db.h"

#define BATCH 2000
/* Columns after the mapping's own, in this order. */
enum { X_TERM, X_DUP, X_LINK_ID, X_LINK_STATUS, X_LINK_FP, X_LINK_EXTRA, X_FAIL_KIND, X_FAIL_FP, X_FAIL_RETRY,
       X_SRC_HASH, X_SAME, X_N };

/*
 * A reference field the hash can follow: exactly "erp:{column}". Its target mapping's
 * link (as of the snapshot) joins in, so a re-created employee changes its absences'
 * hash. Any other reference makes the mapping unhashable (always evaluated).
 */
static bool simple_ref(const struct field *f)
{
	return f->tpl.n == 2 && f->tpl.parts[0].lit && streq(f->tpl.parts[0].lit, "erp:") && !f->tpl.parts[1].lit;
}

static bool hashable(const struct field *f, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (f[i].nested && !hashable(f[i].kids, f[i].nkids))
			return false;
		if (f[i].src == VS_REF && !simple_ref(&f[i]))
			return false;
	}
	return true;
}

/* Joins and hash inputs for the reference fields (ref targets' platform ids). */
static void ref_joins(PGconn *pg, const struct source *s, const struct mapping *m, const struct field *f, size_t n,
		      int *k, struct sb *joins, struct sb *inputs)
{
	for (size_t i = 0; i < n; i++) {
		if (f[i].nested) {
			ref_joins(pg, s, m, f[i].kids, f[i].nkids, k, joins, inputs);
			continue;
		}
		if (f[i].src != VS_REF)
			continue;
		const struct mapping *t = config_ref_target(s->cfg, m, &f[i]);
		char *tl = db_quote_literal(pg, t ? t->name : "");
		char *col = db_quote_ident(pg, f[i].tpl.parts[1].path);
		sb_printf(joins, " LEFT JOIN %s.links r%d ON r%d.mapping = %s AND r%d.erp_key = src.%s::text", s->state_q, *k,
			  *k, tl, *k, col);
		sb_printf(inputs, ", r%d.platform_id", *k);
		(*k)++;
		free(tl);
		free(col);
	}
}

bool source_open(struct source *s, const struct config *cfg, char **err)
{
	memset(s, 0, sizeof *s);
	s->cfg = cfg;
	s->pg = db_connect(cfg, "source", err);
	if (!s->pg)
		return false;
	s->state_q = db_quote_ident(s->pg, cfg->state_schema);
	/* The sort by key of a large mirror joined with its links stays in memory, not on disk;
	 * every row is read, so the cursor is planned for the whole result, not a fast start. */
	if (!db_exec(s->pg, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SET LOCAL work_mem = '64MB'; SET LOCAL cursor_tuple_fraction = 1.0", err)) {
		source_close(s);
		return false;
	}
	return true;
}

void source_close(struct source *s)
{
	if (s->pg) {
		PGresult *r = PQexec(s->pg, "COMMIT");
		PQclear(r);
		PQfinish(s->pg);
	}
	free(s->state_q);
	memset(s, 0, sizeof *s);
}

char *source_sql(struct source *s, const struct mapping *m, const struct src_filter *f, char **err)
{
	static const struct src_filter none = {0};
	if (!f)
		f = &none;
	PGconn *pg = s->pg;
	struct sb q = {0}, cols = {0}, joins = {0}, inputs = {0};
	char *key = db_quote_ident(pg, m->key);
	char *lit = db_quote_literal(pg, m->name);
	if (!key || !lit) {
		*err = xstrdup("cannot quote the source key or mapping name");
		free(key);
		free(lit);
		return NULL;
	}
	bool hash = f->generation && !f->no_state && hashable(m->fields, m->nfields) &&
		    hashable(m->term_fields, m->nterm);
	/* The source's own rows: terminate.when is computed where only its columns are in scope. */
	struct sb from = {0};
	sb_printf(&from, "SELECT s0.*, coalesce((%s), false) AS \"__hrsync_term\" FROM ", m->term_when ? m->term_when : "false");
	if (m->table) {
		char *t = db_quote_qualified(pg, m->table);
		if (!t) {
			*err = xasprintf("source table '%s' is not a valid name (schema.table)", m->table);
			free(key);
			free(lit);
			sb_free(&from);
			return NULL;
		}
		sb_printf(&from, "%s AS s0", t);
		free(t);
	} else {
		sb_printf(&from, "(%s) AS s0", m->query);
	}
	if (m->where)
		sb_printf(&from, " WHERE (%s)", m->where);
	if (f->key) {
		char *kl = db_quote_literal(pg, f->key);
		sb_printf(&from, "%s s0.%s::text = %s", m->where ? " AND" : " WHERE", key, kl);
		free(kl);
	}
	for (size_t i = 0; i < m->ncols; i++) {
		char *c = db_quote_ident(pg, m->cols[i]);
		sb_printf(&cols, "%ssrc.%s AS c%zu", i ? ", " : "", c, i);
		/* As text: the hash covers exactly what the mapping reads (1.0 and 1.00 differ). */
		sb_printf(&inputs, "%ssrc.%s::text", i ? ", " : "", c);
		free(c);
	}
	if (hash) {
		int k = 0;
		ref_joins(pg, s, m, m->fields, m->nfields, &k, &joins, &inputs);
		ref_joins(pg, s, m, m->term_fields, m->nterm, &k, &joins, &inputs);
	}
	/*
	 * Inner query x: the row, what the state knew of it, and its hash. OFFSET 0 keeps
	 * PostgreSQL from folding it into the outer one, so the hash is computed once; the
	 * outer one sends the columns only of rows whose hash changed.
	 */
	sb_printf(&q, "SELECT ");
	for (size_t i = 0; i < m->ncols; i++) {
		if (i == 0 || !hash)
			sb_printf(&q, "x.c%zu, ", i);
		else
			sb_printf(&q, "CASE WHEN x.same THEN NULL ELSE x.c%zu END, ", i);
	}
	if (hash)
		sb_puts(&q, "x.term, x.dup, CASE WHEN x.same THEN NULL ELSE x.platform_id END, "
			    "CASE WHEN x.same THEN NULL ELSE x.status END, "
			    "CASE WHEN x.same THEN NULL ELSE encode(x.fp, 'hex') END, "
			    "CASE WHEN x.same THEN NULL ELSE x.extra::text END, x.kind, x.ffp, x.retry, "
			    "CASE WHEN x.same THEN NULL ELSE x.src_hash END, ");
	else
		sb_puts(&q, "x.term, x.dup, x.platform_id, x.status, encode(x.fp, 'hex'), x.extra::text, x.kind, x.ffp, "
			    "x.retry, x.src_hash, ");
	sb_puts(&q, "coalesce(x.same, false) FROM (SELECT x0.*, x0.clear AND (x0.gone OR (x0.live AND x0.src_hash = x0.old_hash)) "
		    "AS same "
		    "FROM (SELECT ");
	if (f->key_unique)
		sb_printf(&q, "%s, src.\"__hrsync_term\" AS term, 1 AS dup, ", sb_str(&cols));
	else
		sb_printf(&q, "%s, src.\"__hrsync_term\" AS term, count(*) OVER (PARTITION BY src.%s) AS dup, ",
			  sb_str(&cols), key);
	if (f->no_state)
		sb_puts(&q, "NULL::text AS platform_id, NULL::text AS status, NULL::bytea AS fp, NULL::jsonb AS extra, "
			    "NULL::text AS kind, NULL::text AS ffp, NULL::bool AS retry, ");
	else
		sb_puts(&q, "l.platform_id, l.status, l.fingerprint AS fp, l.extra, "
			    "f.kind, encode(f.fingerprint, 'hex') AS ffp, f.retry, ");
	if (hash) {
		if (PQserverVersion(pg) >= 140000) {
			/* 64 bits seeded by the generation: a third of md5(ROW(...)::text)'s cost at a
			 * million rows (no record_out, no md5); a collision would cost one missed change
			 * in 2^64, and a new PostgreSQL hashing differently only one full pass. */
			char head[16] = {0};
			strncpy(head, f->generation, sizeof head - 1);
			long long seed = strtoll(head, NULL, 16);
			sb_printf(&q, "hash_record_extended(ROW(%s, src.\"__hrsync_term\"::text), %lld)::text AS src_hash, ",
				  sb_str(&inputs), seed);
		} else {
			char *gen = db_quote_literal(pg, f->generation);
			sb_printf(&q, "md5(%s || ROW(%s, src.\"__hrsync_term\")::text) AS src_hash, ", gen, sb_str(&inputs));
			free(gen);
		}
		/* "same" (outer query, so the hash is computed once) only where the engine will not need
		 * the columns: the record is active, stays in scope and has no failure waiting; or it is
		 * out of scope and gone from the platform already (nothing to do whatever its columns). */
		sb_printf(&q, "l.src_hash AS old_hash, (l.status <> 'active' AND src.\"__hrsync_term\") AS gone, "
			      "(l.status = 'active' AND NOT src.\"__hrsync_term\") AS live, f.kind IS NULL AS clear ");
	} else {
		sb_puts(&q, "NULL::text AS src_hash, NULL::text AS old_hash, false AS gone, false AS live, false AS clear ");
	}
	sb_printf(&q, "FROM (%s) AS src", sb_str(&from));
	if (!f->no_state)
		sb_printf(&q, " LEFT JOIN %s.links l ON l.mapping = %s AND l.erp_key = src.%s::text "
			      "LEFT JOIN %s.failures f ON f.mapping = %s AND f.erp_key = src.%s::text",
			  s->state_q, lit, key, s->state_q, lit, key);
	sb_puts(&q, sb_str(&joins));
	sb_printf(&q, " ORDER BY src.%s", key);
	if (f->limit > 0)
		sb_printf(&q, " LIMIT %ld", f->limit);
	sb_puts(&q, " OFFSET 0) AS x0) AS x");
	free(key);
	free(lit);
	sb_free(&from);
	sb_free(&cols);
	sb_free(&joins);
	sb_free(&inputs);
	return sb_steal(&q);
}

bool source_key_unique(struct source *s, const struct mapping *m)
{
	if (!m->table)
		return false;
	char *t = db_quote_qualified(s->pg, m->table);
	if (!t)
		return false;
	const char *params[] = {t, m->key};
	/* A table that does not exist is reported by the source query itself, with its own message:
	 * this probe must not abort the snapshot transaction before that (hence to_regclass and the
	 * savepoint, which also covers a name PostgreSQL 15 cannot even parse). */
	PQclear(PQexec(s->pg, "SAVEPOINT hrsync_probe"));
	PGresult *r = PQexecParams(s->pg,
				   "SELECT 1 FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid "
				   "AND a.attnum = i.indkey[0] WHERE i.indrelid = to_regclass($1) AND i.indisunique "
				   "AND i.indnatts = 1 AND i.indpred IS NULL AND a.attname = $2",
				   2, NULL, params, NULL, NULL, 0);
	bool unique = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) > 0;
	PQclear(r);
	if (PQtransactionStatus(s->pg) == PQTRANS_INERROR)
		PQclear(PQexec(s->pg, "ROLLBACK TO SAVEPOINT hrsync_probe"));
	PQclear(PQexec(s->pg, "RELEASE SAVEPOINT hrsync_probe"));
	free(t);
	return unique;
}

bool cursor_open(struct source *s, const struct mapping *m, const struct src_filter *f, struct cursor *c,
		 char **err)
{
	memset(c, 0, sizeof *c);
	c->src = s;
	c->m = m;
	char *sql = source_sql(s, m, f, err);
	if (!sql)
		return false;
	static int seq;
	c->name = xasprintf("hrsync_c%d", ++seq);
	char *decl = xasprintf("DECLARE %s NO SCROLL CURSOR FOR %s", c->name, sql);
	free(sql);
	/* A savepoint lets a mapping whose SQL is wrong fail alone, keeping the snapshot for the others. */
	bool ok = db_exec(s->pg, "SAVEPOINT hrsync_mapping", err);
	PGresult *dr = ok ? db_exec1(s->pg, decl, err) : NULL;
	PQclear(dr);
	free(decl);
	if (!dr) {
		PQclear(PQexec(s->pg, "ROLLBACK TO SAVEPOINT hrsync_mapping"));
		free(c->name);
		c->name = NULL;
		return false;
	}
	size_t n = m->ncols;
	c->vals = xcalloc(n + 1, sizeof *c->vals);
	c->lens = xcalloc(n + 1, sizeof *c->lens);
	c->oids = xcalloc(n + 1, sizeof *c->oids);
	return true;
}

static const char *val(PGresult *r, int row, int col)
{
	return PQgetisnull(r, row, col) ? NULL : PQgetvalue(r, row, col);
}

int cursor_next(struct cursor *c, struct row *r, struct src_extra *x, char **err)
{
	if (c->done)
		return 0;
	if (!c->res || c->row >= c->nrows) {
		PQclear(c->res);
		c->res = NULL;
		char *fetch = xasprintf("FETCH FORWARD %d FROM %s", BATCH, c->name);
		c->res = PQexec(c->src->pg, fetch);
		free(fetch);
		if (PQresultStatus(c->res) != PGRES_TUPLES_OK) {
			*err = db_error(c->src->pg, c->res);
			PQclear(c->res);
			c->res = NULL;
			c->done = true;
			return -1;
		}
		c->nrows = PQntuples(c->res);
		c->row = 0;
		if (c->nrows == 0) {
			c->done = true;
			return 0;
		}
		for (size_t i = 0; i < c->m->ncols; i++)
			c->oids[i] = PQftype(c->res, (int)i);
	}
	PGresult *res = c->res;
	int i = c->row++;
	size_t n = c->m->ncols;
	for (size_t k = 0; k < n; k++) {
		c->vals[k] = val(res, i, (int)k);
		c->lens[k] = PQgetlength(res, i, (int)k);
	}
	r->n = n;
	r->vals = c->vals;
	r->lens = c->lens;
	r->oids = c->oids;
	r->record = NULL;
	int b = (int)n;
	const char *t = val(res, i, b + X_TERM);
	x->terminate = t && t[0] == 't';
	const char *d = val(res, i, b + X_DUP);
	x->dup = d ? atol(d) : 1;
	x->link_id = val(res, i, b + X_LINK_ID);
	x->link_status = val(res, i, b + X_LINK_STATUS);
	x->link_fp = val(res, i, b + X_LINK_FP);
	x->link_extra = val(res, i, b + X_LINK_EXTRA);
	x->fail_kind = val(res, i, b + X_FAIL_KIND);
	x->fail_fp = val(res, i, b + X_FAIL_FP);
	const char *fr = val(res, i, b + X_FAIL_RETRY);
	x->fail_retry = fr && fr[0] == 't';
	x->src_hash = val(res, i, b + X_SRC_HASH);
	const char *sm = val(res, i, b + X_SAME);
	x->same = sm && sm[0] == 't';
	c->rows++;
	return 1;
}

void cursor_close(struct cursor *c)
{
	PQclear(c->res);
	c->res = NULL;
	if (c->src && c->src->pg && c->name) {
		if (PQtransactionStatus(c->src->pg) == PQTRANS_INERROR) {
			PQclear(PQexec(c->src->pg, "ROLLBACK TO SAVEPOINT hrsync_mapping"));
		} else {
			char *sql = xasprintf("CLOSE %s", c->name);
			PQclear(PQexec(c->src->pg, sql));
			free(sql);
			PQclear(PQexec(c->src->pg, "RELEASE SAVEPOINT hrsync_mapping"));
		}
	}
	free(c->vals);
	free(c->lens);
	free(c->oids);
	free(c->name);
	memset(c, 0, sizeof *c);
}

PGresult *source_missing(struct source *s, const struct mapping *m, char **err)
{
	PGconn *pg = s->pg;
	char *key = db_quote_ident(pg, m->key);
	char *lit = db_quote_literal(pg, m->name);
	char *from = m->table ? db_quote_qualified(pg, m->table) : xasprintf("(%s)", m->query);
	if (!key || !lit || !from) {
		*err = xstrdup("cannot quote the source");
		free(key);
		free(lit);
		free(from);
		return NULL;
	}
	char *sql = xasprintf("SELECT l.erp_key, l.platform_id, l.extra::text FROM %s.links l WHERE l.mapping = %s "
			      "AND l.status = 'active' AND l.platform_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM %s AS s0 "
			      "WHERE s0.%s::text = l.erp_key%s%s%s) ORDER BY l.erp_key",
			      s->state_q, lit, from, key, m->where ? " AND (" : "", m->where ? m->where : "", m->where ? ")" : "");
	free(key);
	free(lit);
	free(from);
	PQclear(PQexec(pg, "SAVEPOINT hrsync_missing"));
	PGresult *r = db_exec1(pg, sql, err);
	free(sql);
	if (!r) {
		PQclear(PQexec(pg, "ROLLBACK TO SAVEPOINT hrsync_missing"));
		return NULL;
	}
	PQclear(PQexec(pg, "RELEASE SAVEPOINT hrsync_missing"));
	return r;
}
