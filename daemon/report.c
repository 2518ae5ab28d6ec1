/*
 * report — `hrsync status`, `hrsync failures` and `hrsync retry`: what the state schema
 * (state.c: runs, run_mappings, failures) says, for a sysadmin without the logs and, with
 * --format json, for scripts (one JSON document on stdout).
 *
 * These commands read the state through their own libpq connection, with parameterised
 * SQL and the schema name quoted once. status and failures only read (a read-only
 * session) and never take the run lock, so they work while a run is going on; retry
 * only sets failures.retry. A config whose mapping files have errors still lets them
 * read the state: a broken mapping is no reason to hide what happened.
 *
 * Exit status: status 0; failures 0 when none are listed, 1 when some are; retry 0, or 1
 * when a KEY named has no failure; 2 usage or configuration; 3 database unreachable.
 */
#define _GNU_SOURCE
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "db.h"
#include "json.h"

/* ---- shared: config, connection, queries ---- */

struct report {
	struct config *cfg;
	PGconn *pg;
	char *schema_q;
	bool json;
};

/*
 * The config, enough to reach the state: the database section must be right, the
 * mappings may have errors (one line says so). NULL (exit 2) otherwise.
 */
static struct config *report_config(const struct globals *g, const char *cmd)
{
	struct diag d = {0};
	struct config *cfg = config_load(g->config, &d);
	if (!cfg || !cfg->conninfo || !cfg->state_schema) {
		diag_print(&d, stderr);
		fprintf(stderr, "hrsync %s: the configuration does not say how to reach the database\n", cmd);
		config_free(cfg);
		cfg = NULL;
	} else if (d.errors) {
		fprintf(stderr, "hrsync %s: the configuration %s has %d error(s) (see `hrsync check`); reading the state anyway\n",
			cmd, g->config, d.errors);
	}
	diag_free(&d);
	if (cfg && cfg->timezone) {
		setenv("TZ", cfg->timezone, 1);
		tzset();
	}
	if (cfg)
		log_setup(g->level_set ? g->level : cfg->log_level,
			  g->format_set ? g->format : cfg->log_format_set ? cfg->log_format : LOGF_AUTO);
	return cfg;
}

/* Connect; 0, or the exit status (3) after saying why. */
static int report_open(struct report *r, const char *cmd, bool read_only)
{
	char *err = NULL;
	r->pg = db_connect(r->cfg, cmd, &err);
	if (!r->pg) {
		fprintf(stderr, "hrsync %s: %s\n", cmd, err);
		free(err);
		return 3;
	}
	r->schema_q = db_quote_ident(r->pg, r->cfg->state_schema);
	if (read_only && !db_exec(r->pg, "SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY", &err)) {
		fprintf(stderr, "hrsync %s: %s\n", cmd, err);
		free(err);
		return 3;
	}
	return 0;
}

static void report_close(struct report *r)
{
	PQfinish(r->pg);
	free(r->schema_q);
	config_free(r->cfg);
}

/* Parameterised SQL where %1$s stands for the quoted schema. NULL after printing why. */
static PGresult *query(struct report *r, const char *cmd, const char *sql_fmt, int n, const char *const *params)
{
	char *sql = NULL;
	if (asprintf(&sql, sql_fmt, r->schema_q) < 0)
		return NULL;
	PGresult *res = PQexecParams(r->pg, sql, n, NULL, params, NULL, NULL, 0);
	free(sql);
	ExecStatusType st = PQresultStatus(res);
	if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) {
		char *m = db_error(r->pg, res);
		fprintf(stderr, "hrsync %s: state database: %s\n", cmd, m);
		free(m);
		PQclear(res);
		return NULL;
	}
	return res;
}

/* Does the state schema hold hrsync's tables yet? -1 on error. */
static int schema_ready(struct report *r, const char *cmd)
{
	const char *p[] = {r->cfg->state_schema};
	PGresult *res = query(r, cmd, "SELECT to_regclass(format('%%I.failures', $1::text)) IS NOT NULL", 1, p);
	if (!res)
		return -1;
	int yes = PQgetvalue(res, 0, 0)[0] == 't';
	PQclear(res);
	return yes;
}

/* The config's mapping names in run order, as a PostgreSQL array literal, for ORDER BY. */
static char *mapping_order(const struct config *cfg)
{
	struct sb b = {0};
	sb_putc(&b, '{');
	for (size_t i = 0; i < cfg->nmaps; i++) {
		sb_puts(&b, i ? ",\"" : "\"");
		for (const char *p = cfg->maps[i]->name; p && *p; p++) {
			if (*p == '"' || *p == '\\')
				sb_putc(&b, '\\');
			sb_putc(&b, *p);
		}
		sb_putc(&b, '"');
	}
	sb_putc(&b, '}');
	return sb_steal(&b);
}

static const char *val(const PGresult *res, int row, int col)
{
	return PQgetisnull(res, row, col) ? NULL : PQgetvalue(res, row, col);
}

/* A column as a JSON value: NULL -> null; kind 'i' integer, 'n' number, 'b' boolean, else string. */
static struct jv *jcol(const PGresult *res, int row, int col, char kind)
{
	const char *v = val(res, row, col);
	long long i;
	if (!v)
		return jv_null();
	switch (kind) {
	case 'i': return parse_ll(v, &i) ? jv_int(i) : jv_str(v);
	case 'n': return jv_num(v);
	case 'b': return jv_bool(v[0] == 't');
	default: return jv_str(v);
	}
}

static void print_json(struct jv *doc)
{
	char *s = jv_dumps(doc);
	printf("%s\n", s);
	free(s);
}

/* ---- tables ---- */

struct table {
	int ncols;
	const char *const *heads;
	const char *right;       /* 'r' per right-aligned column */
	char **cells;            /* row-major */
	size_t nrows;
};

static void table_row(struct table *t, const char *const *vals)
{
	t->cells = xrealloc(t->cells, (t->nrows + 1) * (size_t)t->ncols * sizeof *t->cells);
	for (int c = 0; c < t->ncols; c++)
		t->cells[t->nrows * (size_t)t->ncols + (size_t)c] = xstrdup(vals[c] ? vals[c] : "");
	t->nrows++;
}

static size_t width(const char *s)
{
	return utf8_len(s, strlen(s));
}

/* Columns padded to their widest cell (in characters); the last one is not padded. */
static void table_print(struct table *t, const char *indent)
{
	size_t w[32] = {0};
	for (int c = 0; c < t->ncols && c < 32; c++) {
		w[c] = width(t->heads[c]);
		for (size_t r = 0; r < t->nrows; r++) {
			size_t x = width(t->cells[r * (size_t)t->ncols + (size_t)c]);
			if (x > w[c])
				w[c] = x;
		}
	}
	for (size_t r = 0; r <= t->nrows; r++) {
		struct sb line = {0};
		sb_puts(&line, indent);
		for (int c = 0; c < t->ncols; c++) {
			const char *s = r == 0 ? t->heads[c] : t->cells[(r - 1) * (size_t)t->ncols + (size_t)c];
			size_t pad = w[c] - width(s);
			bool right = t->right && t->right[c] == 'r';
			bool last = c == t->ncols - 1;
			if (c)
				sb_puts(&line, "  ");
			for (size_t k = 0; right && k < pad; k++)
				sb_putc(&line, ' ');
			sb_puts(&line, s);
			for (size_t k = 0; !right && !last && k < pad; k++)
				sb_putc(&line, ' ');
		}
		printf("%s\n", sb_str(&line));
		sb_free(&line);
	}
}

static void table_free(struct table *t)
{
	for (size_t i = 0; i < t->nrows * (size_t)t->ncols; i++)
		free(t->cells[i]);
	free(t->cells);
	t->cells = NULL;
	t->nrows = 0;
}

/* ---- argument parsing ---- */

static bool parse_format(const char *cmd, int argc, char **argv, int *i, bool *json)
{
	const char *v = NULL;
	if (streq(argv[*i], "--format") && *i + 1 < argc)
		v = argv[++*i];
	else if (str_has_prefix(argv[*i], "--format="))
		v = argv[*i] + 9;
	else
		return false;
	if (streq(v, "json"))
		*json = true;
	else if (streq(v, "table"))
		*json = false;
	else {
		fprintf(stderr, "hrsync %s: --format is table or json\n", cmd);
		*json = false;
		*i = -1;
	}
	return true;
}

/* ---- status ---- */

static const char *const run_cols =
	"SELECT id, command, to_char(started_at, 'YYYY-MM-DD HH24:MI:SS TZ'), to_json(started_at) #>> '{}', "
	"to_json(finished_at) #>> '{}', round(extract(epoch FROM coalesce(finished_at, now()) - started_at)::numeric, 1), "
	"status, exit_code, dry_run, host, pid, version, message, to_char(finished_at, 'YYYY-MM-DD HH24:MI:SS TZ') ";

enum { R_ID, R_CMD, R_START_TXT, R_START, R_END, R_SECS, R_STATUS, R_EXIT, R_DRY, R_HOST, R_PID, R_VERSION, R_MSG,
       R_END_TXT };

static const char *const count_names[] = {"source_rows", "created", "updated", "terminated", "unchanged",
					  "skipped", "failed", "deferred", "requests", "throttled", "seconds"};

/* What a run's status means, in words. */
static const char *outcome_words(const char *status)
{
	if (streq(status, "ok"))
		return "ok: every record in step";
	if (streq(status, "failures"))
		return "done: some records failed or wait";
	if (streq(status, "stopped"))
		return "stopped early";
	if (streq(status, "killed"))
		return "killed: the process ended mid-run";
	if (streq(status, "running"))
		return "running";
	return status;
}

static int status_body(struct report *r, int nruns)
{
	const char *cmd = "status";
	int rc = 3;
	PGresult *runs = NULL, *maps = NULL, *wait = NULL, *lock = NULL, *last = NULL;
	struct jv *doc = NULL;
	char *order = mapping_order(r->cfg);
	char nbuf[16];
	snprintf(nbuf, sizeof nbuf, "%d", nruns);

	const char *lp[] = {r->schema_q};
	lock = query(r, cmd,
		     "WITH k AS (SELECT hashtext('hrsync:' || $1)::bigint AS k) "
		     "SELECT EXISTS (SELECT 1 FROM pg_locks l, k WHERE l.locktype = 'advisory' AND l.granted "
		     "AND l.objsubid = 1 AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
		     "AND l.classid = ((k.k >> 32) & 4294967295)::oid AND l.objid = (k.k & 4294967295)::oid)",
		     1, lp);
	if (!lock)
		goto out;
	bool running = PQgetvalue(lock, 0, 0)[0] == 't';
	int have = schema_ready(r, cmd);
	if (have < 0)
		goto out;
	if (!have) {
		if (r->json) {
			doc = jv_obj();
			jv_obj_set(doc, "state_schema", jv_str(r->cfg->state_schema));
			jv_obj_set(doc, "running", jv_bool(running));
			jv_obj_set(doc, "runs", jv_arr());
			jv_obj_set(doc, "last_success", jv_null());
			jv_obj_set(doc, "waiting", jv_arr());
			print_json(doc);
		} else {
			printf("No run recorded yet: state schema %s does not exist (`hrsync run` or `hrsync db migrate` "
			       "creates it).\n",
			       r->cfg->state_schema);
		}
		rc = 0;
		goto out;
	}
	const char *p1[] = {nbuf};
	char *sql = xasprintf("%s FROM %%1$s.runs ORDER BY id DESC LIMIT $1", run_cols);
	runs = query(r, cmd, sql, 1, p1);
	free(sql);
	sql = xasprintf("%s FROM %%1$s.runs WHERE status IN ('ok', 'failures') AND NOT dry_run ORDER BY id DESC LIMIT 1",
			run_cols);
	last = runs ? query(r, cmd, sql, 0, NULL) : NULL;
	free(sql);
	const char *p2[] = {nbuf, order};
	maps = last ? query(r, cmd,
			    "SELECT run_id, mapping, source_rows, created, updated, terminated, unchanged, skipped, failed, "
			    "deferred, requests, throttled, round(seconds::numeric, 1) FROM %1$s.run_mappings "
			    "WHERE run_id IN (SELECT id FROM %1$s.runs ORDER BY id DESC LIMIT $1) "
			    "ORDER BY run_id DESC, array_position($2::text[], mapping) NULLS LAST, mapping",
			    2, p2)
		    : NULL;
	const char *p3[] = {order};
	wait = maps ? query(r, cmd,
			    "SELECT mapping, kind, field, rule, count(*), count(*) FILTER (WHERE retry), "
			    "to_char(min(first_seen), 'YYYY-MM-DD HH24:MI'), to_json(min(first_seen)) #>> '{}', "
			    "to_json(max(last_seen)) #>> '{}', max(attempts), "
			    "(array_agg(reason ORDER BY last_seen DESC, erp_key))[1], "
			    "(array_agg(erp_key ORDER BY erp_key))[1] FROM %1$s.failures "
			    "GROUP BY mapping, kind, field, rule "
			    "ORDER BY array_position($1::text[], mapping) NULLS LAST, mapping, "
			    "array_position(ARRAY['mapping', 'refused', 'transient', 'deferred'], kind), count(*) DESC, "
			    "field NULLS LAST, rule NULLS LAST",
			    1, p3)
		    : NULL;
	if (!wait)
		goto out;

	if (r->json) {
		doc = jv_obj();
		jv_obj_set(doc, "state_schema", jv_str(r->cfg->state_schema));
		jv_obj_set(doc, "running", jv_bool(running));
		struct jv *ra = jv_arr();
		for (int i = 0; i < PQntuples(runs); i++) {
			struct jv *o = jv_obj();
			static const struct { const char *k; int col; char kind; } f[] = {
				{"id", R_ID, 'i'}, {"command", R_CMD, 's'}, {"started_at", R_START, 's'},
				{"finished_at", R_END, 's'}, {"seconds", R_SECS, 'n'}, {"status", R_STATUS, 's'},
				{"exit_code", R_EXIT, 'i'}, {"dry_run", R_DRY, 'b'}, {"host", R_HOST, 's'},
				{"pid", R_PID, 'i'}, {"version", R_VERSION, 's'}, {"message", R_MSG, 's'}};
			for (size_t k = 0; k < ARRAY_LEN(f); k++)
				jv_obj_set(o, f[k].k, jcol(runs, i, f[k].col, f[k].kind));
			struct jv *ma = jv_arr();
			for (int m = 0; m < PQntuples(maps); m++) {
				if (!streq(val(maps, m, 0), val(runs, i, R_ID)))
					continue;
				struct jv *mo = jv_obj();
				jv_obj_set(mo, "mapping", jcol(maps, m, 1, 's'));
				for (int k = 0; k < 11; k++)
					jv_obj_set(mo, count_names[k], jcol(maps, m, 2 + k, k == 10 ? 'n' : 'i'));
				jv_arr_push(ma, mo);
			}
			jv_obj_set(o, "mappings", ma);
			jv_arr_push(ra, o);
		}
		jv_obj_set(doc, "runs", ra);
		if (PQntuples(last)) {
			struct jv *lo = jv_obj();
			jv_obj_set(lo, "id", jcol(last, 0, R_ID, 'i'));
			jv_obj_set(lo, "finished_at", jcol(last, 0, R_END, 's'));
			jv_obj_set(lo, "status", jcol(last, 0, R_STATUS, 's'));
			jv_obj_set(doc, "last_success", lo);
		} else {
			jv_obj_set(doc, "last_success", jv_null());
		}
		struct jv *wa = jv_arr();
		static const struct { const char *k; char kind; } wf[] = {
			{"mapping", 's'}, {"kind", 's'}, {"field", 's'}, {"rule", 's'}, {"count", 'i'},
			{"retry_asked", 'i'}, {NULL, 0}, {"first_seen", 's'}, {"last_seen", 's'}, {"max_attempts", 'i'},
			{"example_reason", 's'}, {"example_key", 's'}};
		for (int i = 0; i < PQntuples(wait); i++) {
			struct jv *o = jv_obj();
			for (size_t k = 0; k < ARRAY_LEN(wf); k++)
				if (wf[k].k)
					jv_obj_set(o, wf[k].k, jcol(wait, i, (int)k, wf[k].kind));
			jv_arr_push(wa, o);
		}
		jv_obj_set(doc, "waiting", wa);
		print_json(doc);
		rc = 0;
		goto out;
	}

	/* The table form. */
	if (running)
		printf("A run is in progress now.\n\n");
	if (PQntuples(last))
		printf("Last completed run: %s, finished %s (%s).\n\n", val(last, 0, R_ID), val(last, 0, R_END_TXT),
		       outcome_words(val(last, 0, R_STATUS)));
	else
		printf("No run has completed yet.\n\n");
	if (!PQntuples(runs))
		printf("No run recorded yet.\n\n");
	static const char *const mheads[] = {"MAPPING", "ROWS", "CREATED", "UPDATED", "TERMINATED", "UNCHANGED",
					     "SKIPPED", "FAILED", "DEFERRED", "REQUESTS", "429S", "SECONDS"};
	for (int i = 0; i < PQntuples(runs); i++) {
		const char *st = val(runs, i, R_STATUS);
		if (streq(st, "running") && !running)
			st = "killed";   /* nobody holds the run lock: its process is gone */
		const char *ex = val(runs, i, R_EXIT);
		printf("Run %s  %s  %s  %s s  %s%s%s%s\n", val(runs, i, R_ID), val(runs, i, R_START_TXT),
		       val(runs, i, R_CMD), val(runs, i, R_SECS), outcome_words(st), ex ? " (exit " : "", ex ? ex : "",
		       ex ? ")" : "");
		if (val(runs, i, R_MSG))
			printf("  %s\n", val(runs, i, R_MSG));
		struct table t = {12, mheads, " rrrrrrrrrrr", NULL, 0};
		for (int m = 0; m < PQntuples(maps); m++) {
			if (!streq(val(maps, m, 0), val(runs, i, R_ID)))
				continue;
			const char *row[12];
			for (int k = 0; k < 12; k++)
				row[k] = val(maps, m, 1 + k);
			table_row(&t, row);
		}
		if (t.nrows)
			table_print(&t, "  ");
		table_free(&t);
		printf("\n");
	}
	long total = 0, asked = 0;
	for (int i = 0; i < PQntuples(wait); i++) {
		total += atol(val(wait, i, 4));
		asked += atol(val(wait, i, 5));
	}
	if (!total) {
		printf("Nothing waits to be retried.\n");
	} else {
		printf("Waiting: %ld record(s). Mapping errors, deferred and transient failures are tried again on every\n"
		       "run; refused records only once their data changes, or after `hrsync retry` (asked for %ld).\n",
		       total, asked);
		static const char *const wheads[] = {"MAPPING", "KIND", "FIELD", "RECORDS", "SINCE", "EXAMPLE"};
		struct table t = {6, wheads, "   r  ", NULL, 0};
		for (int i = 0; i < PQntuples(wait); i++) {
			struct sb field = {0}, ex = {0};
			if (val(wait, i, 2))
				sb_printf(&field, "%s%s%s", val(wait, i, 2), val(wait, i, 3) ? " " : "",
					  val(wait, i, 3) ? val(wait, i, 3) : "");
			sb_printf(&ex, "%s: %s", val(wait, i, 11), val(wait, i, 10));
			const char *row[] = {val(wait, i, 0), val(wait, i, 1), sb_str(&field), val(wait, i, 4),
					     val(wait, i, 6), sb_str(&ex)};
			table_row(&t, row);
			sb_free(&field);
			sb_free(&ex);
		}
		table_print(&t, "  ");
		table_free(&t);
		printf("Each record: `hrsync failures [MAPPING]`.\n");
	}
	rc = 0;
out:
	jv_free(doc);
	PQclear(lock);
	PQclear(runs);
	PQclear(last);
	PQclear(maps);
	PQclear(wait);
	free(order);
	return rc;
}

int cmd_status(const struct globals *g, int argc, char **argv)
{
	const char *usage = "usage: hrsync status [--runs N] [--format table|json]\n";
	struct report r = {0};
	long long nruns = 5;
	for (int i = 0; i < argc; i++) {
		if (parse_format("status", argc, argv, &i, &r.json)) {
			if (i < 0)
				return 2;
			continue;
		}
		const char *v = NULL;
		if (streq(argv[i], "--runs") && i + 1 < argc)
			v = argv[++i];
		else if (str_has_prefix(argv[i], "--runs="))
			v = argv[i] + 7;
		if (!v) {
			fprintf(stderr, "hrsync status: unknown argument '%s'\n%s", argv[i], usage);
			return 2;
		}
		if (!parse_ll(v, &nruns) || nruns < 1 || nruns > 10000) {
			fprintf(stderr, "hrsync status: --runs takes a number from 1 to 10000\n");
			return 2;
		}
	}
	r.cfg = report_config(g, "status");
	if (!r.cfg)
		return 2;
	int rc = report_open(&r, "status", true);
	if (!rc)
		rc = status_body(&r, (int)nruns);
	report_close(&r);
	return rc;
}

/* ---- failures ---- */

static int failures_body(struct report *r, const char *mapping)
{
	const char *cmd = "failures";
	int rc = 3;
	PGresult *res = NULL;
	struct jv *doc = NULL;
	char *order = mapping_order(r->cfg);
	int have = schema_ready(r, cmd);
	if (have < 0)
		goto out;
	if (have) {
		const char *p[] = {mapping, order};
		res = query(r, cmd,
			    "SELECT mapping, erp_key, kind, action, field, rule, reason, http_status, attempts, "
			    "to_json(first_seen) #>> '{}', to_json(last_seen) #>> '{}', retry, run_id, "
			    "to_char(first_seen, 'YYYY-MM-DD HH24:MI'), to_char(last_seen, 'YYYY-MM-DD HH24:MI') "
			    "FROM %1$s.failures WHERE $1::text IS NULL OR mapping = $1 "
			    "ORDER BY array_position($2::text[], mapping) NULLS LAST, mapping, erp_key",
			    2, p);
		if (!res)
			goto out;
	}
	int n = res ? PQntuples(res) : 0;
	if (r->json) {
		static const struct { const char *k; char kind; } f[] = {
			{"mapping", 's'}, {"key", 's'}, {"kind", 's'}, {"action", 's'}, {"field", 's'},
			{"rule", 's'}, {"reason", 's'}, {"http_status", 'i'}, {"attempts", 'i'}, {"first_seen", 's'},
			{"last_seen", 's'}, {"retry", 'b'}, {"run", 'i'}};
		doc = jv_obj();
		jv_obj_set(doc, "state_schema", jv_str(r->cfg->state_schema));
		jv_obj_set(doc, "mapping", mapping ? jv_str(mapping) : jv_null());
		jv_obj_set(doc, "count", jv_int(n));
		struct jv *a = jv_arr();
		for (int i = 0; i < n; i++) {
			struct jv *o = jv_obj();
			for (size_t k = 0; k < ARRAY_LEN(f); k++)
				jv_obj_set(o, f[k].k, jcol(res, i, (int)k, f[k].kind));
			jv_arr_push(a, o);
		}
		jv_obj_set(doc, "failures", a);
		print_json(doc);
	} else if (!n) {
		printf("No failed record%s%s.\n", mapping ? " in mapping " : "", mapping ? mapping : "");
	} else {
		static const char *const heads[] = {"MAPPING", "KEY", "KIND", "ACTION", "FIELD", "RULE", "HTTP",
						    "ATTEMPTS", "FIRST SEEN", "LAST SEEN", "REASON"};
		struct table t = {11, heads, "      rr   ", NULL, 0};
		for (int i = 0; i < n; i++) {
			char kind[48];
			snprintf(kind, sizeof kind, "%s%s", val(res, i, 2), val(res, i, 11)[0] == 't' ? " (retry)" : "");
			const char *row[] = {val(res, i, 0), val(res, i, 1), kind, val(res, i, 3), val(res, i, 4),
					     val(res, i, 5), val(res, i, 7), val(res, i, 8), val(res, i, 13),
					     val(res, i, 14), val(res, i, 6)};
			table_row(&t, row);
		}
		table_print(&t, "");
		table_free(&t);
		printf("%d failed record(s).\n", n);
	}
	rc = n ? 1 : 0;
out:
	jv_free(doc);
	PQclear(res);
	free(order);
	return rc;
}

/* A mapping named on the command line must be one of the config or have failures. */
static bool known_mapping(struct report *r, const char *cmd, const char *name, bool *unreachable)
{
	if (config_mapping(r->cfg, name))
		return true;
	const char *p[] = {name};
	PGresult *res = schema_ready(r, cmd) == 1
				? query(r, cmd, "SELECT 1 FROM %1$s.failures WHERE mapping = $1 LIMIT 1", 1, p)
				: NULL;
	bool found = res && PQntuples(res) > 0;
	*unreachable = !res && PQstatus(r->pg) != CONNECTION_OK;
	PQclear(res);
	if (!found && !*unreachable) {
		const char **names = xcalloc(r->cfg->nmaps + 1, sizeof *names);
		for (size_t i = 0; i < r->cfg->nmaps; i++)
			names[i] = r->cfg->maps[i]->name;
		const char *s = diag_suggest(name, names, r->cfg->nmaps);
		fprintf(stderr, "hrsync %s: no mapping named '%s'%s%s%s\n", cmd, name, s ? " (did you mean '" : "",
			s ? s : "", s ? "'?)" : "");
		free(names);
	}
	return found;
}

int cmd_failures(const struct globals *g, int argc, char **argv)
{
	const char *usage = "usage: hrsync failures [MAPPING] [--format table|json]\n";
	struct report r = {0};
	const char *mapping = NULL;
	for (int i = 0; i < argc; i++) {
		if (parse_format("failures", argc, argv, &i, &r.json)) {
			if (i < 0)
				return 2;
		} else if (argv[i][0] == '-' || mapping) {
			fprintf(stderr, "hrsync failures: unexpected argument '%s'\n%s", argv[i], usage);
			return 2;
		} else {
			mapping = argv[i];
		}
	}
	r.cfg = report_config(g, "failures");
	if (!r.cfg)
		return 2;
	int rc = report_open(&r, "failures", true);
	bool down = false;
	if (!rc && mapping && !known_mapping(&r, "failures", mapping, &down))
		rc = down ? 3 : 2;
	if (!rc)
		rc = failures_body(&r, mapping);
	report_close(&r);
	return rc;
}

/* ---- retry ---- */

/* keys as a PostgreSQL text[] literal: every element quoted, " and \ escaped. */
static char *text_array(char **keys, int n)
{
	struct sb b = {0};
	sb_putc(&b, '{');
	for (int i = 0; i < n; i++) {
		sb_puts(&b, i ? ",\"" : "\"");
		for (const char *p = keys[i]; *p; p++) {
			if (*p == '"' || *p == '\\')
				sb_putc(&b, '\\');
			sb_putc(&b, *p);
		}
		sb_putc(&b, '"');
	}
	sb_putc(&b, '}');
	return sb_steal(&b);
}

static int retry_body(struct report *r, const char *mapping, char **keys, int nkeys)
{
	const char *cmd = "retry";
	int rc = 3;
	PGresult *res = NULL;
	char *arr = nkeys ? text_array(keys, nkeys) : NULL;
	int have = schema_ready(r, cmd);
	if (have < 0)
		goto out;
	if (have) {
		const char *p[] = {mapping, arr};
		res = query(r, cmd,
			    "UPDATE %1$s.failures SET retry = true WHERE ($1::text IS NULL OR mapping = $1) "
			    "AND ($2::text[] IS NULL OR erp_key = ANY ($2::text[])) RETURNING mapping, erp_key, kind",
			    2, p);
		if (!res)
			goto out;
	}
	int n = res ? PQntuples(res) : 0, refused = 0;
	for (int i = 0; i < n; i++)
		refused += streq(PQgetvalue(res, i, 2), "refused");
	int missing = 0;
	for (int k = 0; k < nkeys; k++) {
		bool found = false;
		for (int i = 0; i < n && !found; i++)
			found = streq(PQgetvalue(res, i, 1), keys[k]);
		if (!found) {
			fprintf(stderr, "hrsync retry: %s %s has no failure recorded: nothing to retry\n", mapping, keys[k]);
			missing++;
		}
	}
	if (!n)
		printf("No failed record to retry%s%s.\n", mapping ? " in mapping " : "", mapping ? mapping : "");
	else
		printf("%d failed record(s) will be tried again on the next run: %d refused by the platform (sent again "
		       "even if unchanged), %d others (tried on every run anyway).\n",
		       n, refused, n - refused);
	rc = missing ? 1 : 0;
out:
	PQclear(res);
	free(arr);
	return rc;
}

int cmd_retry(const struct globals *g, int argc, char **argv)
{
	for (int i = 0; i < argc; i++)
		if (argv[i][0] == '-') {
			fprintf(stderr, "hrsync retry: unknown option '%s'\nusage: hrsync retry [MAPPING [KEY...]]\n",
				argv[i]);
			return 2;
		}
	struct report r = {0};
	r.cfg = report_config(g, "retry");
	if (!r.cfg)
		return 2;
	const char *mapping = argc > 0 ? argv[0] : NULL;
	int rc = report_open(&r, "retry", false);
	bool down = false;
	if (!rc && mapping && !known_mapping(&r, "retry", mapping, &down))
		rc = down ? 3 : 2;
	if (!rc)
		rc = retry_body(&r, mapping, argv + 1, argc > 1 ? argc - 1 : 0);
	report_close(&r);
	return rc;
}
