/*
 * source — see source.h. The SQL on the mirror is this module's; every name of the
 * state's tables and columns in its queries comes from state.c (state_join_sql and
 * the functions beside it, the contract between the two modules).
 */
#include "source.h"

#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "log.h"
#include "state.h"

#define BATCH SOURCE_MARK_ROWS
/* Columns after the mapping's own: terminate.when, the number of rows with the key, then the
 * state's (SJ_* of state.h, from X_STATE on); then, in a hashed read, the ids of its references.
 * A probe (read marks) has terminate.when alone (X_PROBE_N), then the ids: its key is unique,
 * its rows have no state. */
enum { X_TERM, X_DUP, X_STATE, X_N = X_STATE + SJ_N };
#define X_PROBE_N 1

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
		char *key_text = xasprintf("src.%s::text", col);
		state_ref_join_sql(joins, inputs, (*k)++, s->state_q, tl, key_text);
		free(key_text);
		free(tl);
		free(col);
	}
}

/*
 * Which mappings' tables have a unique index on their key alone (the read marks need one):
 * one query for all, its rows the indexes in cfg->maps of those that do. The names go in as
 * quoted literals of quoted identifiers; to_regclass of a well-formed name and the catalogs
 * every role reads cannot fail, so the query goes in the snapshot's round trip. NULL when
 * no mapping reads a table.
 */
static char *key_probe_sql(PGconn *pg, const struct config *cfg)
{
	struct sb v = {0};
	for (size_t i = 0; i < cfg->nmaps; i++) {
		const struct mapping *m = cfg->maps[i];
		char *t = m->table ? db_quote_qualified(pg, m->table) : NULL;
		char *tl = t ? db_quote_literal(pg, t) : NULL;
		char *kl = tl ? db_quote_literal(pg, m->key) : NULL;
		if (kl)
			sb_printf(&v, "%s(%zu, %s, %s)", v.len ? ", " : "", i, tl, kl);
		free(t);
		free(tl);
		free(kl);
	}
	if (!v.len)
		return NULL;
	char *sql = xasprintf("SELECT x.n FROM (VALUES %s) AS x(n, t, k) WHERE EXISTS (SELECT 1 FROM pg_index i "
			      "JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0] "
			      "WHERE i.indrelid = to_regclass(x.t) AND i.indisunique AND i.indnatts = 1 "
			      "AND i.indpred IS NULL AND a.attname = x.k)",
			      sb_str(&v));
	sb_free(&v);
	return sql;
}

static void prelude_sql(struct source *s, struct sb *q, bool local);

static void init(struct source *s, const struct config *cfg)
{
	s->cfg = cfg;
	s->state_q = db_quote_ident(s->pg, cfg->state_schema);
	s->key_unique = xcalloc(cfg->nmaps + 1, sizeof *s->key_unique);
	s->marks_asked = xcalloc(cfg->nmaps + 1, sizeof *s->marks_asked);
	s->marks = xcalloc(cfg->nmaps + 1, sizeof *s->marks);
	s->failing = xcalloc(cfg->nmaps + 1, sizeof *s->failing);
}

bool source_open_send(struct source *s, const struct config *cfg, struct db_start *started, char **err)
{
	memset(s, 0, sizeof *s);
	s->cfg = cfg;
	struct db_start now;
	if (!started) {
		db_connect_begin(&now, cfg, true, "source");
		started = &now;
	}
	s->pg = db_connect_made(started, cfg, err);
	if (!s->pg)
		return false;
	init(s, cfg);
	/* The session's setup, its planner settings and the key probe: one round trip, answered
	 * while the caller takes its lock (source_snapshot reads it). */
	struct sb q = {0};
	char *setup = db_setup_sql(s->pg, cfg, true);
	sb_puts(&q, setup);
	free(setup);
	sb_putc(&q, ';');
	prelude_sql(s, &q, false);
	s->opening = PQsendQuery(s->pg, sb_str(&q));
	sb_free(&q);
	if (!s->opening) {
		*err = db_error(s->pg, NULL);
		source_close(s);
		return false;
	}
	return true;
}

void source_open_shared(struct source *s, const struct config *cfg, PGconn *pg)
{
	memset(s, 0, sizeof *s);
	s->pg = pg;
	s->shared = true;
	init(s, cfg);
}

/*
 * What a read plans with, and which keys are unique (one result, column "n": the indexes of
 * the mappings whose key is): for the session (source_open_send) or for the snapshot's
 * transaction (local, on a session the source shares).
 */
static void prelude_sql(struct source *s, struct sb *q, bool local)
{
	/* Unless the server's random_page_cost was set (PostgreSQL's default, 4, is for spinning
	 * disks), the read is planned for storage where a random read costs little more than a
	 * sequential one (SSD, or the mirror in cache), as PostgreSQL's documentation advises
	 * there: the key's index gives the order, where 4 has a 10,000-row read hashed and sorted
	 * in twice the time. (pg_settings builds every setting, 4 ms of a new session, answered
	 * while the lock is taken. `WHERE current_setting('random_page_cost') = '4'` instead made
	 * the 200,000-row read that followed 30 to 50 ms slower, same plan and settings, for a
	 * reason not found: kept as it was measured.) */
	sb_printf(q, " SELECT set_config('random_page_cost', '1.1', %s) FROM pg_settings "
		     "WHERE name = 'random_page_cost' AND source = 'default'", local ? "true" : "false");
	char *probe = key_probe_sql(s->pg, s->cfg);
	if (probe)
		sb_printf(q, "; %s", probe);
	free(probe);
}

/* An answer of several statements, result by result (source_snapshot, source_ready). */
struct answer {
	struct source *s;
	PGresult *error;        /* the error that ended it */
	bool in_marks;          /* the read marks' savepoint is set: what follows is theirs */
	size_t next;            /* results of the read marks so far (two per mapping asked) */
};

static void answer_result(void *ctx, PGresult *r)
{
	struct answer *o = ctx;
	struct source *s = o->s;
	ExecStatusType st = PQresultStatus(r);
	if (o->error || st == PGRES_FATAL_ERROR) {
		if (!o->error)
			o->error = r;
		else
			PQclear(r);
		return;
	}
	if (st == PGRES_COMMAND_OK && streq(PQcmdStatus(r), "SAVEPOINT"))
		o->in_marks = true;
	if (st != PGRES_TUPLES_OK) {
		PQclear(r);
		return;
	}
	if (!o->in_marks) {
		/* the key probe's rows: the indexes of the mappings whose key is unique */
		for (int i = 0; streq(PQfname(r, 0), "n") && i < PQntuples(r); i++) {
			size_t n = (size_t)atol(PQgetvalue(r, i, 0));
			if (n < s->cfg->nmaps)
				s->key_unique[n] = true;
		}
		PQclear(r);
		return;
	}
	/* The marks, then the failing records, of each mapping asked for, in cfg->maps order. */
	size_t k = o->next++, i = 0;
	for (size_t seen = 0; i < s->cfg->nmaps; i++)
		if (s->marks_asked[i] && seen++ == k / 2)
			break;
	if (i == s->cfg->nmaps) {
		PQclear(r);
		return;
	}
	if (k % 2 == 0)
		s->marks[i] = r;
	else
		s->failing[i] = r;
}

/* Read the answer sent for; false with *err if it failed before the read marks. */
static bool read_answer(struct source *s, char **err)
{
	s->opening = s->snapping = false;
	struct answer o = {.s = s};
	db_wait_each(s->pg, s->stop, &s->cancelled, answer_result, &o);
	if (!o.error)
		return true;
	if (!o.in_marks || s->cancelled) {
		*err = db_error(s->pg, o.error);
		PQclear(o.error);
		return false;
	}
	/* The read marks alone failed: each mapping asked for reads its links joined, and says why. */
	s->marks_err = db_error(s->pg, o.error);
	PQclear(o.error);
	for (size_t i = 0; i < s->cfg->nmaps; i++) {
		PQclear(s->marks[i]);
		PQclear(s->failing[i]);
		s->marks[i] = s->failing[i] = NULL;
	}
	return db_exec(s->pg, "ROLLBACK TO SAVEPOINT hrsync_marks; RELEASE SAVEPOINT hrsync_marks", err);
}

/*
 * The stored marks and failing records of the mappings asked for, after the snapshot's
 * opening, in a savepoint: a source role that may not read them (state_failing_sql's
 * tables) fails there alone, and the snapshot stands.
 */
static void marks_sql(struct source *s, const bool *asked, struct sb *q)
{
	bool any = false;
	for (size_t i = 0; asked && s->state_q && i < s->cfg->nmaps; i++) {
		if (!asked[i])
			continue;
		char *lit = db_quote_literal(s->pg, s->cfg->maps[i]->name);
		char *mk = lit ? state_marks_sql(s->state_q, lit) : NULL;
		char *fg = lit ? state_failing_sql(s->state_q, lit, SOURCE_MARK_MAX_FAILING) : NULL;
		if (mk && fg) {
			sb_printf(q, "%s; %s; %s", any ? "" : "; SAVEPOINT hrsync_marks", mk, fg);
			s->marks_asked[i] = any = true;
		}
		free(lit);
		free(mk);
		free(fg);
	}
	if (any)
		sb_puts(q, "; RELEASE SAVEPOINT hrsync_marks");
}

bool source_snapshot(struct source *s, const bool *marks, char **err)
{
	if (s->opening && !read_answer(s, err))
		return false;
	/* Every row is read: the cursor is planned for the whole result, not a fast start; the
	 * sort by key of a large mirror joined with its links stays in memory, not on disk. The
	 * snapshot is the read marks' (or the first read's, when none are asked for). */
	struct sb q = {0};
	sb_puts(&q, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SET LOCAL work_mem = '64MB'; "
		    "SET LOCAL cursor_tuple_fraction = 1.0");
	if (s->shared) {
		/* What a session of the source's own has (db_setup_sql), for this transaction. */
		sb_printf(&q, "; SET LOCAL statement_timeout = %lld%s; SET LOCAL application_name = 'hrsync source';",
			  (long long)s->cfg->statement_timeout_ms,
			  PQserverVersion(s->pg) >= 140000 ? "; SET LOCAL client_connection_check_interval = '5s'" : "");
		prelude_sql(s, &q, true);
	}
	marks_sql(s, marks, &q);
	s->snapping = PQsendQuery(s->pg, sb_str(&q));
	sb_free(&q);
	if (!s->snapping)
		*err = db_error(s->pg, NULL);
	return s->snapping;
}

bool source_ready(struct source *s, char **err)
{
	return !s->snapping || read_answer(s, err);
}

bool source_open(struct source *s, const struct config *cfg, struct db_start *started, char **err)
{
	if (!source_open_send(s, cfg, started, err))
		return false;
	if (!source_snapshot(s, NULL, err) || !source_ready(s, err)) {
		source_close(s);
		return false;
	}
	return true;
}

PGconn *source_close(struct source *s)
{
	if (s->pg && (s->opening || s->snapping))
		PQclear(db_wait(s->pg, NULL, NULL)); /* the answer sent for, read before anything else */
	/* The snapshot's transaction read only: the session's end (PQfinish tells the server)
	 * ends it, no COMMIT to wait for; a shared session's ends it by a ROLLBACK. */
	PGconn *back = s->shared ? s->pg : NULL;
	if (back && PQtransactionStatus(back) != PQTRANS_IDLE)
		PQclear(PQexec(back, "ROLLBACK"));
	else if (!back)
		PQfinish(s->pg);
	for (size_t i = 0; s->marks && i < s->cfg->nmaps; i++) {
		PQclear(s->marks[i]);
		PQclear(s->failing[i]);
	}
	free(s->marks);
	free(s->failing);
	free(s->marks_asked);
	free(s->marks_err);
	free(s->state_q);
	free(s->key_unique);
	memset(s, 0, sizeof *s);
	return back;
}

/* Are the rows of this read hashed (and the in-step ones told apart)? */
static bool source_hashes(const struct mapping *m, const struct src_filter *f)
{
	return f && f->generation && !f->no_state && m->ncols > 0 && streq(m->cols[0], m->key) &&
	       hashable(m->fields, m->nfields) && hashable(m->term_fields, m->nterm);
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
	bool hash = source_hashes(m, f);
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
	if (f->after) {
		/* An untyped literal: compared as the key column's type, in the order of ORDER BY. */
		char *al = db_quote_literal(pg, f->after);
		sb_printf(&from, "%s s0.%s > %s", m->where || f->key ? " AND" : " WHERE", key, al);
		free(al);
	}
	for (size_t i = 0; i < m->ncols; i++) {
		char *c = db_quote_ident(pg, m->cols[i]);
		sb_printf(&cols, "%ssrc.%s AS c%zu", i ? ", " : "", c, i);
		free(c);
	}
	/* The hash covers the columns as text (1.0 and 1.00 differ), terminate.when and the ids
	 * the references resolve to: those come after the fixed columns. */
	if (hash) {
		int k = 0;
		ref_joins(pg, s, m, m->fields, m->nfields, &k, &joins, &inputs);
		ref_joins(pg, s, m, m->term_fields, m->nterm, &k, &joins, &inputs);
	}
	/*
	 * The row and what the state knew of it, in key order. With a hash (hrsync computes it,
	 * see hash_batch), only the link's status and stored hash come in: they are read in
	 * key order from the narrow index links_nochange, and the link's other details are read
	 * afterwards for the rows that changed. (Hashing in the query, hash_record_extended,
	 * took 0.9 s a million rows of the server's one core, where reading the columns takes
	 * 1.3 s; hrsync hashes on the other core, while the server reads the next batch.)
	 */
	if (f->probe)
		sb_printf(&q, "SELECT %s, src.\"__hrsync_term\" AS term", sb_str(&cols));
	else if (f->key_unique)
		sb_printf(&q, "SELECT %s, src.\"__hrsync_term\" AS term, 1 AS dup, ", sb_str(&cols));
	else
		sb_printf(&q, "SELECT %s, src.\"__hrsync_term\" AS term, count(*) OVER (PARTITION BY src.%s) AS dup, ",
			  sb_str(&cols), key);
	enum state_join how = f->no_state || f->probe ? STATE_JOIN_NONE : hash ? STATE_JOIN_HASHED : STATE_JOIN_FULL;
	if (!f->probe)
		sb_puts(&q, state_join_cols(how));
	sb_puts(&q, sb_str(&inputs));
	sb_printf(&q, " FROM (%s) AS src", sb_str(&from));
	/* What the state knew of each row, joined in key order (state.h says how). */
	char *key_text = xasprintf("src.%s::text", key);
	state_join_sql(&q, how, s->state_q, lit, key_text);
	free(key_text);
	sb_puts(&q, sb_str(&joins));
	sb_printf(&q, " ORDER BY src.%s", key);
	if (f->limit > 0)
		sb_printf(&q, " LIMIT %ld", f->limit);
	free(key);
	free(lit);
	sb_free(&from);
	sb_free(&cols);
	sb_free(&joins);
	sb_free(&inputs);
	return sb_steal(&q);
}

/* m's index in cfg->maps (what the per-mapping arrays are indexed by); nmaps if none. */
static size_t map_index(const struct source *s, const struct mapping *m)
{
	size_t i = 0;
	while (i < s->cfg->nmaps && s->cfg->maps[i] != m)
		i++;
	return i;
}

bool source_key_unique(struct source *s, const struct mapping *m)
{
	if (!s->key_unique)
		return false;
	size_t i = map_index(s, m);
	return i < s->cfg->nmaps && s->key_unique[i];
}

/* Why a statement on the mirror failed, said so that the reader knows what to change. Caller frees. */
static char *read_error(struct source *s, const PGresult *r)
{
	if (s->cancelled)
		return xstrdup("asked to stop: the source query was cancelled on the server");
	char *e = db_error(s->pg, r);
	const char *code = PQresultErrorField(r, PG_DIAG_SQLSTATE);
	if (!code || !streq(code, "57014"))
		return e;
	char *m = xasprintf("%s (a statement on the mirror may run %lld s: database statement_timeout)", e,
			    (long long)(s->cfg->statement_timeout_ms / 1000));
	free(e);
	return m;
}

/* DECLARE the cursor of a read (in the mapping's savepoint), under a new name. */
static bool declare(struct cursor *c, const struct src_filter *f, char **err)
{
	struct source *s = c->src;
	char *sql = source_sql(s, c->m, f, err);
	if (!sql)
		return false;
	static int seq;
	free(c->name);
	c->name = xasprintf("hrsync_c%d", ++seq);
	char *decl = xasprintf("DECLARE %s NO SCROLL CURSOR FOR %s", c->name, sql);
	free(sql);
	PGresult *dr = db_exec1(s->pg, decl, s->stop, err);
	PQclear(dr);
	free(decl);
	if (!dr && s->cancelled) {
		free(*err);
		*err = read_error(s, NULL);
	}
	return dr != NULL;
}

/*
 * The stored marks of the mapping (c->marks) and its failing records (c->failing), as read
 * with the snapshot (source_snapshot); false (and a warning) if they could not be read, or
 * (info) there are too many failing records to hold: no probe.
 */
static bool read_marks(struct cursor *c)
{
	struct source *s = c->src;
	size_t i = map_index(s, c->m);
	if (i == s->cfg->nmaps || !s->marks_asked[i])
		return false;
	if (s->marks_err) {
		log_warn("mapping %s: its read marks could not be read (%s): the links are joined to every row", c->m->name,
			 s->marks_err);
		return false;
	}
	/* the cursor takes them: a mapping read again reads its links joined */
	c->marks = s->marks[i];
	c->failing = s->failing[i];
	s->marks[i] = s->failing[i] = NULL;
	bool ok = c->marks && PQntuples(c->marks) > 0 && c->failing;
	if (ok && PQntuples(c->failing) > SOURCE_MARK_MAX_FAILING) {
		log_info("read marks: mapping %s has more than %d records failing or waiting: the links are joined to "
			 "every row", c->m->name, SOURCE_MARK_MAX_FAILING);
		ok = false;
	}
	if (!ok) {
		PQclear(c->marks);
		PQclear(c->failing);
		c->marks = c->failing = NULL;
	}
	return ok;
}

bool cursor_open(struct source *s, const struct mapping *m, const struct src_filter *f, struct cursor *c,
		 char **err)
{
	static const struct src_filter none = {0};
	memset(c, 0, sizeof *c);
	c->src = s;
	c->m = m;
	c->flt = f ? f : &none;
	c->hashed = source_hashes(m, c->flt);
	c->recording = c->hashed && c->flt->marks && c->flt->key_unique;
	/* A savepoint lets a mapping whose SQL is wrong fail alone, keeping the snapshot for the others. */
	if (!db_exec(s->pg, "SAVEPOINT hrsync_mapping", err))
		return false;
	if (c->recording) {
		c->probing = read_marks(c);
		c->marks_changed = !c->probing;
		c->skip0 = *c->flt->skipped;
		sb_putc(&c->newmarks, '[');
	}
	struct src_filter pf = *c->flt;
	pf.probe = c->probing;
	if (!declare(c, &pf, err)) {
		PQclear(PQexec(s->pg, "ROLLBACK TO SAVEPOINT hrsync_mapping"));
		PQclear(c->marks);
		PQclear(c->failing);
		sb_free(&c->newmarks);
		free(c->name);
		memset(c, 0, sizeof *c);
		return false;
	}
	size_t n = m->ncols;
	c->vals = xcalloc(n + 1, sizeof *c->vals);
	c->lens = xcalloc(n + 1, sizeof *c->lens);
	c->oids = xcalloc(n + 1, sizeof *c->oids);
	if (c->hashed) {
		char head[17] = {0};
		memcpy(head, c->flt->generation, strnlen(c->flt->generation, 16));
		c->seed = strtoull(head, NULL, 16);
		c->digest = c->seed;
		c->hashes = xcalloc(BATCH, sizeof *c->hashes);
		c->same = xcalloc(BATCH, sizeof *c->same);
		c->detail = xcalloc(BATCH, sizeof *c->detail);
	}
	return true;
}

static const char *val(PGresult *r, int row, int col)
{
	return PQgetisnull(r, row, col) ? NULL : PQgetvalue(r, row, col);
}

/* A value and its length (NULL: SQL NULL); PQgetisnull asked only of empty values. */
static const char *val_len(PGresult *r, int row, int col, int *len)
{
	*len = PQgetlength(r, row, col);
	if (*len == 0 && PQgetisnull(r, row, col))
		return NULL;
	return PQgetvalue(r, row, col);
}

static void hex64(char out[17], uint64_t h)
{
	static const char digits[] = "0123456789abcdef";
	for (int i = 15; i >= 0; i--, h >>= 4)
		out[i] = digits[h & 15];
	out[16] = '\0';
}

/*
 * The hash of row i of the batch: its columns as text, terminate.when and the ids of its
 * references, seeded by the generation (what else its payload depends on). NULL and ""
 * hash apart.
 */
static uint64_t row_hash(const struct cursor *c, int i)
{
	int n = (int)c->m->ncols, xn = c->probing ? X_PROBE_N : X_N;
	uint64_t h = c->seed;
	for (int k = 0; k < PQnfields(c->res); k++) {
		if (k >= n && k < n + xn && k != n + X_TERM)
			continue;
		int len;
		const char *v = val_len(c->res, i, k, &len);
		h = v ? hash64(v, (size_t)len, h) : hash64(NULL, 0, ~h);
	}
	return h;
}

/* The row of details (sorted by key, bytewise) whose key is key, or -1. */
static int find_detail(PGresult *details, const char *key)
{
	int lo = 0, hi = PQntuples(details);
	while (lo < hi) {
		int mid = lo + (hi - lo) / 2;
		int r = strcmp(PQgetvalue(details, mid, LD_KEY), key);
		if (r == 0)
			return mid;
		if (r < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -1;
}

static void fetch_send(struct cursor *c)
{
	char *fetch = xasprintf("FETCH FORWARD %d FROM %s", BATCH, c->name);
	/* (a failure to send shows as the error result fetch_recv returns) */
	PQsendQuery(c->src->pg, fetch);
	free(fetch);
	c->pending = true;
}

/* The answer to the FETCH sent: never NULL (an error result if it failed, or was cancelled). */
static PGresult *fetch_recv(struct cursor *c)
{
	c->pending = false;
	return db_wait(c->src->pg, c->src->stop, &c->src->cancelled);
}

void cursor_quiet(struct cursor *c)
{
	if (c->pending && !c->next)
		c->next = fetch_recv(c);
}

/* Each row's hash of the batch (c->hashes), and the digest d folded over them, in order. */
static uint64_t hash_rows(struct cursor *c, uint64_t d)
{
	for (int i = 0; i < c->nrows; i++) {
		uint64_t h = row_hash(c, i);
		hex64(c->hashes[i], h);
		d = hash64(&h, sizeof h, d);
	}
	return d;
}

/*
 * For a new batch of a hashed read: each row's hash and whether it is in step, then, in one
 * query, the link details (platform id, fingerprint, extra) of the linked rows that are not.
 */
static bool hash_batch(struct cursor *c, char **err)
{
	int n = (int)c->m->ncols, sj = n + X_STATE;
	struct sb keys = {0};
	int need = 0;
	uint64_t d = hash_rows(c, c->digest);
	if (c->recording)
		c->digest = d;
	for (int i = 0; i < c->nrows; i++) {
		const char *status = val(c->res, i, sj + SJ_LINK_STATUS);
		const char *t = val(c->res, i, n + X_TERM);
		bool term = t && t[0] == 't';
		bool clear = PQgetisnull(c->res, i, sj + SJ_FAIL_KIND);
		/* In step, so the engine need not map it: active, in scope, hash as stored, no failure
		 * waiting; or out of scope and gone from the platform already. */
		bool gone = status && !streq(status, "active") && term;
		bool live = status && streq(status, "active") && !term;
		c->same[i] = clear && (gone || (live && streq(val(c->res, i, sj + SJ_SRC_HASH), c->hashes[i])));
		c->detail[i] = -1;
		if (status && !c->same[i]) {
			sb_putc(&keys, need++ ? ',' : '[');
			sb_json_string(&keys, PQgetvalue(c->res, i, 0), (size_t)PQgetlength(c->res, i, 0));
		}
	}
	PQclear(c->details);
	c->details = NULL;
	if (!need) {
		sb_free(&keys);
		return true;
	}
	sb_putc(&keys, ']');
	if (c->pending)
		c->next = fetch_recv(c);
	c->details = state_link_details(c->src->pg, c->src->state_q, c->m->name, sb_str(&keys), err);
	sb_free(&keys);
	if (!c->details)
		return false;
	for (int i = 0; i < c->nrows; i++) {
		if (c->same[i] || PQgetisnull(c->res, i, sj + SJ_LINK_STATUS))
			continue;
		c->detail[i] = find_detail(c->details, PQgetvalue(c->res, i, 0));
		/* Same snapshot, same key: never. But a linked record taken for a new one would be
		 * created twice, so the read stops rather than guess. */
		if (c->detail[i] < 0) {
			*err = xasprintf("the link of record %s is in the state but its details could not be read back",
					 PQgetvalue(c->res, i, 0));
			return false;
		}
	}
	return true;
}

/* The batches in hand and on their way are let go (the FETCH sent is read first). */
static void drop_batches(struct cursor *c)
{
	PQclear(c->res);
	c->res = NULL;
	if (c->pending)
		PQclear(fetch_recv(c));
	PQclear(c->next);
	c->next = NULL;
}

/* The row of the stored marks with this seq, or -1. */
static int find_mark(PGresult *marks, int seq)
{
	/* Stored from 0 to the last, none missing (state_marks_put), read by seq: row seq. A gap
	 * (a row deleted by hand) is a batch without its mark: the read joins from there. */
	if (marks && seq < PQntuples(marks) && atoi(PQgetvalue(marks, seq, MK_SEQ)) == seq)
		return seq;
	return -1;
}

/* The batch read is in the read's marks: its mark opens (recorded once its rows are processed). */
static void open_mark(struct cursor *c)
{
	c->nread += c->nrows;
	if (c->nrows == BATCH)
		c->seq++;
	c->mark_open = c->recording;
}

/*
 * The rows of the batch in hand (c->res, still) are processed: its mark is recorded, with the
 * rows, digest and seq as open_mark() left them and the skipped so far.
 */
static void close_mark(struct cursor *c)
{
	if (!c->mark_open)
		return;
	char hex[17];
	hex64(hex, c->digest);
	long long skipped = c->settled_skipped + (*c->flt->skipped - c->skip0);
	sb_printf(&c->newmarks, "%s{\"seq\":%d,\"rows\":%lld,\"digest\":\"%s\",\"skipped\":%lld,\"last_key\":",
		  c->newmarks.len > 1 ? "," : "", c->nrows == BATCH ? c->seq : 0, c->nread, hex, skipped);
	if (c->nrows)
		sb_json_string(&c->newmarks, PQgetvalue(c->res, c->nrows - 1, 0),
			       (size_t)PQgetlength(c->res, c->nrows - 1, 0));
	else
		sb_puts(&c->newmarks, "null");
	sb_putc(&c->newmarks, '}');
	c->mark_open = false;
}

/*
 * The probe found a batch that differs from its mark: the read goes on after the last mark
 * that held (from the start if none did), with the links joined and the marks recorded.
 */
static bool resume(struct cursor *c, char **err)
{
	drop_batches(c);
	char *sql = xasprintf("CLOSE %s", c->name);
	bool ok = db_exec(c->src->pg, sql, err);
	free(sql);
	if (!ok)
		return false;
	c->probing = false;
	c->marks_changed = true;
	c->last_batch = false;
	int k = c->seq > 0 ? find_mark(c->marks, c->seq) : -1;
	struct src_filter f = *c->flt;
	f.after = k >= 0 ? PQgetvalue(c->marks, k, MK_LAST_KEY) : NULL;
	log_info("read marks: the first %lld rows in step as the last run left them; the rest is read with the links",
		 c->nread);
	return declare(c, &f, err);
}

/*
 * A batch of the probe: its rows' hashes, and whether the digest after it is the mark's.
 * 1: it is (its rows are in step, but those failing or waiting, which the engine tries
 * again with their state from c->failing); 0: it is not, the read goes on joined (read the
 * batch again); -1: error.
 */
static int probe_batch(struct cursor *c, char **err)
{
	uint64_t d = hash_rows(c, c->digest);
	int k = find_mark(c->marks, c->nrows == BATCH ? c->seq + 1 : 0);
	if (k >= 0 && atoll(PQgetvalue(c->marks, k, MK_ROWS)) == c->nread + c->nrows &&
	    strtoull(PQgetvalue(c->marks, k, MK_DIGEST), NULL, 16) == d) {
		c->digest = d;
		c->settled_skipped = atoll(PQgetvalue(c->marks, k, MK_SKIPPED));
		bool any = PQntuples(c->failing) > 0;
		for (int i = 0; i < c->nrows; i++) {
			c->detail[i] = any ? find_detail(c->failing, PQgetvalue(c->res, i, 0)) : -1;
			c->same[i] = c->detail[i] < 0;
			c->retried += !c->same[i];
		}
		return 1;
	}
	return resume(c, err) ? 0 : -1;
}

/* The next batch into c->res: 1, 0 at the end of the read, -1 on error (*err). */
static int next_batch(struct cursor *c, char **err)
{
	for (;;) {
		close_mark(c);
		PQclear(c->res);
		c->res = NULL;
		if (c->last_batch)
			break;
		if (c->next) {
			c->res = c->next;
			c->next = NULL;
		} else {
			if (!c->pending)
				fetch_send(c);
			c->res = fetch_recv(c);
		}
		if (PQresultStatus(c->res) != PGRES_TUPLES_OK) {
			*err = read_error(c->src, c->res);
			PQclear(c->res);
			c->res = NULL;
			return -1;
		}
		c->nrows = PQntuples(c->res);
		c->row = 0;
		for (size_t i = 0; i < c->m->ncols; i++)
			c->oids[i] = PQftype(c->res, (int)i);
		/* The server reads the next batch while this one is hashed and synced. */
		if (c->nrows < BATCH)
			c->last_batch = true;
		else
			fetch_send(c);
		if (c->probing) {
			int r = probe_batch(c, err);
			if (r < 0)
				return -1;
			if (r == 0)
				continue;
		} else if (c->hashed && !hash_batch(c, err)) {
			return -1;
		}
		open_mark(c);
		if (c->nrows > 0)
			return 1;
	}
	close_mark(c);
	c->complete = true;
	if (c->probing && c->retried)
		log_info("read marks: all %lld rows as the last run left them (the links were not read); its %lld record(s) "
			 "failing or waiting tried again", c->nread, c->retried);
	else if (c->probing)
		log_info("read marks: all %lld rows in step as the last run left them (the links were not read)", c->nread);
	return 0;
}

/* What the state knew of a record: the SJ_* columns of r's row, from column col on. */
static void state_of(PGresult *r, int row, int col, struct src_extra *x)
{
	x->link_id = val(r, row, col + SJ_LINK_ID);
	x->link_status = val(r, row, col + SJ_LINK_STATUS);
	x->link_fp = val(r, row, col + SJ_LINK_FP);
	x->link_extra = val(r, row, col + SJ_LINK_EXTRA);
	x->fail_kind = val(r, row, col + SJ_FAIL_KIND);
	x->fail_fp = val(r, row, col + SJ_FAIL_FP);
	const char *fr = val(r, row, col + SJ_FAIL_RETRY);
	x->fail_retry = fr && fr[0] == 't';
}

int cursor_next(struct cursor *c, struct row *r, struct src_extra *x, char **err)
{
	if (c->done)
		return 0;
	if (!c->res || c->row >= c->nrows) {
		int b = next_batch(c, err);
		if (b <= 0) {
			c->done = true;
			return b;
		}
	}
	PGresult *res = c->res;
	int i = c->row++;
	size_t n = c->m->ncols;
	for (size_t k = 0; k < n; k++)
		c->vals[k] = val_len(res, i, (int)k, &c->lens[k]);
	r->n = n;
	r->vals = c->vals;
	r->lens = c->lens;
	r->oids = c->oids;
	r->record = NULL;
	int b = (int)n, sj = b + X_STATE;
	const char *t = val(res, i, b + X_TERM);
	x->terminate = t && t[0] == 't';
	if (c->probing) {
		/* A row of a batch the probe trusted (X_PROBE_N): a unique key, no state but for a
		 * record failing or waiting, whose state is read as the join gives it. */
		*x = (struct src_extra){.terminate = x->terminate, .dup = 1};
		if (c->detail[i] >= 0)
			state_of(c->failing, c->detail[i], FG_STATE, x);
	} else {
		const char *d = val(res, i, b + X_DUP);
		x->dup = d ? atol(d) : 1;
		state_of(res, i, sj, x);
	}
	x->src_hash = c->hashed ? c->hashes[i] : NULL;
	x->same = c->hashed && c->same[i];
	if (!c->probing && c->hashed && c->detail[i] >= 0) {
		x->link_id = val(c->details, c->detail[i], LD_PLATFORM_ID);
		x->link_fp = val(c->details, c->detail[i], LD_FP);
		x->link_extra = val(c->details, c->detail[i], LD_EXTRA);
	}
	c->rows++;
	return 1;
}

void cursor_close(struct cursor *c)
{
	drop_batches(c);
	if (c->src && c->src->pg && c->name) {
		if (PQtransactionStatus(c->src->pg) == PQTRANS_INERROR) {
			PQclear(PQexec(c->src->pg, "ROLLBACK TO SAVEPOINT hrsync_mapping"));
		} else {
			char *sql = xasprintf("CLOSE %s; RELEASE SAVEPOINT hrsync_mapping", c->name);
			PQclear(PQexec(c->src->pg, sql));
			free(sql);
		}
	}
	free(c->vals);
	free(c->lens);
	free(c->oids);
	PQclear(c->details);
	PQclear(c->marks);
	PQclear(c->failing);
	sb_free(&c->newmarks);
	free(c->hashes);
	free(c->same);
	free(c->detail);
	free(c->name);
	memset(c, 0, sizeof *c);
}

long long cursor_settled_skipped(const struct cursor *c)
{
	return c->settled_skipped;
}

char *cursor_take_marks(struct cursor *c)
{
	if (!c->recording || !c->complete || !c->marks_changed)
		return NULL;
	sb_putc(&c->newmarks, ']');
	return sb_steal(&c->newmarks);
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
	/* The keys the source has now; state.c turns them into the links they leave out. */
	char *present = xasprintf("SELECT s0.%s::text FROM %s AS s0%s%s%s", key, from, m->where ? " WHERE (" : "",
				  m->where ? m->where : "", m->where ? ")" : "");
	char *sql = state_links_missing_sql(s->state_q, lit, present);
	free(present);
	free(key);
	free(lit);
	free(from);
	PQclear(PQexec(pg, "SAVEPOINT hrsync_missing"));
	PGresult *r = db_exec1(pg, sql, s->stop, err);
	free(sql);
	if (!r) {
		if (s->cancelled) {
			free(*err);
			*err = read_error(s, NULL);
		}
		PQclear(PQexec(pg, "ROLLBACK TO SAVEPOINT hrsync_missing"));
		return NULL;
	}
	PQclear(PQexec(pg, "RELEASE SAVEPOINT hrsync_missing"));
	return r;
}
