/*
 * report — `hrsync status`, `hrsync failures` and `hrsync retry`: what the state schema
 * says (runs, their counts per mapping, failures), for a sysadmin without the logs and,
 * with --format json, for scripts (one JSON document on stdout).
 *
 * This module formats (tables, JSON) and sets exit codes; it names no state table:
 * state.c reads and marks the state for it, on a connection of the command's own
 * (state_connect_report). status and failures only read (a read-only session) and never
 * take the run lock, so they work while a run is going on; retry only sets failures.retry.
 * A config whose mapping files have errors still lets them read the state: a broken
 * mapping is no reason to hide what happened.
 *
 * Tables show values from the ERP and the platforms (keys, reasons, messages) through
 * sb_put_printable: an escape sequence in an ERP key is printed as \x1b[31m, never sent to
 * the terminal. --format json gives the exact values.
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
#include "json.h"
#include "state.h"

/* ---- shared: config, connection, reading the state ---- */

struct report {
	struct config *cfg;
	struct state st;
	const char **order;      /* the config's mapping names, the order the reports list mappings in */
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
	if (!state_connect_report(&r->st, r->cfg, cmd, read_only, &err)) {
		fprintf(stderr, "hrsync %s: %s\n", cmd, err);
		free(err);
		return 3;
	}
	r->order = xcalloc(r->cfg->nmaps + 1, sizeof *r->order);
	for (size_t i = 0; i < r->cfg->nmaps; i++)
		r->order[i] = r->cfg->maps[i]->name;
	return 0;
}

static void report_close(struct report *r)
{
	state_close(&r->st);
	free(r->order);
	config_free(r->cfg);
}

/* res, or NULL after saying why the state could not be read (state.c logs nothing for the reports). */
static PGresult *checked(struct report *r, const char *cmd, PGresult *res)
{
	if (!res)
		fprintf(stderr, "hrsync %s: state database: %s\n", cmd, r->st.err ? r->st.err : "unknown error");
	return res;
}

/* The same for an answer of 1 (yes), 0 (no) or -1 (error). */
static int checked_yes_no(struct report *r, const char *cmd, int yes)
{
	if (yes < 0)
		checked(r, cmd, NULL);
	return yes;
}

/* Does the state schema hold hrsync's tables yet? -1 on error. */
static int schema_ready(struct report *r, const char *cmd)
{
	return checked_yes_no(r, cmd, state_created(&r->st));
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

/* A JSON member from a column: its name in the document, its column, its kind (see jcol). */
struct jmember {
	const char *name;
	int col;
	char kind;
};

/* Row row of res as a JSON object of these members. */
static struct jv *jrow(const PGresult *res, int row, const struct jmember *m, size_t n)
{
	struct jv *o = jv_obj();
	for (size_t k = 0; k < n; k++)
		jv_obj_set(o, m[k].name, jcol(res, row, m[k].col, m[k].kind));
	return o;
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

/* s as a table shows it: control and format characters escaped (sb_put_printable). Caller frees. */
static char *shown(const char *s)
{
	struct sb b = {0};
	sb_puts(&b, "");
	if (s)
		sb_put_printable(&b, s, strlen(s));
	return sb_steal(&b);
}

static void table_row(struct table *t, const char *const *vals)
{
	t->cells = xrealloc(t->cells, (t->nrows + 1) * (size_t)t->ncols * sizeof *t->cells);
	for (int c = 0; c < t->ncols; c++)
		t->cells[t->nrows * (size_t)t->ncols + (size_t)c] = shown(vals[c]);
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

/* What status shows, read in one go. */
struct status_data {
	bool running;           /* a run holds the lock now */
	PGresult *runs;         /* the latest runs (RUN_*), newest first */
	PGresult *last;         /* the last completed run (RUN_*): zero or one row */
	PGresult *counts;       /* the latest runs' counts per mapping (RC_*) */
	PGresult *waiting;      /* the failures, grouped (FS_*) */
};

/* 1: read; 0: no state schema yet (only running is known); -1: error, said. */
static int status_read(struct report *r, int nruns, struct status_data *d)
{
	const char *cmd = "status";
	int running = checked_yes_no(r, cmd, state_running(&r->st));
	if (running < 0)
		return -1;
	d->running = running;
	int have = schema_ready(r, cmd);
	if (have <= 0)
		return have;
	size_t n = r->cfg->nmaps;
	d->runs = checked(r, cmd, state_runs_latest(&r->st, nruns));
	d->last = d->runs ? checked(r, cmd, state_run_last_completed(&r->st)) : NULL;
	d->counts = d->last ? checked(r, cmd, state_run_counts(&r->st, nruns, r->order, n)) : NULL;
	d->waiting = d->counts ? checked(r, cmd, state_failures_summary(&r->st, r->order, n)) : NULL;
	return d->waiting ? 1 : -1;
}

static void status_data_free(struct status_data *d)
{
	PQclear(d->runs);
	PQclear(d->last);
	PQclear(d->counts);
	PQclear(d->waiting);
}

/* Before the first run: the state schema does not exist. */
static void status_print_empty(const struct report *r, bool running)
{
	if (!r->json) {
		printf("No run recorded yet: state schema %s does not exist (`hrsync run` or `hrsync db migrate` "
		       "creates it).\n",
		       r->cfg->state_schema);
		return;
	}
	struct jv *doc = jv_obj();
	jv_obj_set(doc, "state_schema", jv_str(r->cfg->state_schema));
	jv_obj_set(doc, "running", jv_bool(running));
	jv_obj_set(doc, "runs", jv_arr());
	jv_obj_set(doc, "last_success", jv_null());
	jv_obj_set(doc, "waiting", jv_arr());
	print_json(doc);
	jv_free(doc);
}

static const char *const count_names[] = {"source_rows", "created", "updated", "terminated", "unchanged",
					  "skipped", "failed", "deferred", "requests", "throttled", "seconds"};

/* Run i of d->runs as JSON, with its counts per mapping. */
static struct jv *run_json(const struct status_data *d, int i)
{
	static const struct jmember f[] = {
		{"id", RUN_ID, 'i'}, {"command", RUN_COMMAND, 's'}, {"started_at", RUN_STARTED, 's'},
		{"finished_at", RUN_FINISHED, 's'}, {"seconds", RUN_SECONDS, 'n'}, {"status", RUN_STATUS, 's'},
		{"exit_code", RUN_EXIT_CODE, 'i'}, {"dry_run", RUN_DRY_RUN, 'b'}, {"host", RUN_HOST, 's'},
		{"pid", RUN_PID, 'i'}, {"version", RUN_VERSION, 's'}, {"message", RUN_MESSAGE, 's'}};
	struct jv *o = jrow(d->runs, i, f, ARRAY_LEN(f));
	struct jv *ma = jv_arr();
	for (int m = 0; m < PQntuples(d->counts); m++) {
		if (!streq(val(d->counts, m, RC_RUN_ID), val(d->runs, i, RUN_ID)))
			continue;
		struct jv *mo = jv_obj();
		jv_obj_set(mo, "mapping", jcol(d->counts, m, RC_MAPPING, 's'));
		for (int k = 0; k < (int)ARRAY_LEN(count_names); k++) {
			int col = RC_SOURCE_ROWS + k;
			jv_obj_set(mo, count_names[k], jcol(d->counts, m, col, col == RC_SECONDS ? 'n' : 'i'));
		}
		jv_arr_push(ma, mo);
	}
	jv_obj_set(o, "mappings", ma);
	return o;
}

static void status_print_json(const struct report *r, const struct status_data *d)
{
	struct jv *doc = jv_obj();
	jv_obj_set(doc, "state_schema", jv_str(r->cfg->state_schema));
	jv_obj_set(doc, "running", jv_bool(d->running));
	struct jv *ra = jv_arr();
	for (int i = 0; i < PQntuples(d->runs); i++)
		jv_arr_push(ra, run_json(d, i));
	jv_obj_set(doc, "runs", ra);
	static const struct jmember lf[] = {
		{"id", RUN_ID, 'i'}, {"finished_at", RUN_FINISHED, 's'}, {"status", RUN_STATUS, 's'}};
	jv_obj_set(doc, "last_success", PQntuples(d->last) ? jrow(d->last, 0, lf, ARRAY_LEN(lf)) : jv_null());
	static const struct jmember wf[] = {
		{"mapping", FS_MAPPING, 's'}, {"kind", FS_KIND, 's'}, {"field", FS_FIELD, 's'}, {"rule", FS_RULE, 's'},
		{"count", FS_COUNT, 'i'}, {"retry_asked", FS_RETRY_ASKED, 'i'}, {"first_seen", FS_FIRST_SEEN, 's'},
		{"last_seen", FS_LAST_SEEN, 's'}, {"max_attempts", FS_MAX_ATTEMPTS, 'i'},
		{"example_reason", FS_EXAMPLE_REASON, 's'}, {"example_key", FS_EXAMPLE_KEY, 's'}};
	struct jv *wa = jv_arr();
	for (int i = 0; i < PQntuples(d->waiting); i++)
		jv_arr_push(wa, jrow(d->waiting, i, wf, ARRAY_LEN(wf)));
	jv_obj_set(doc, "waiting", wa);
	print_json(doc);
	jv_free(doc);
}

/* Run i of d->runs: one line, its message, its counts per mapping as a table. */
static void print_run(const struct status_data *d, int i)
{
	static const char *const heads[] = {"MAPPING", "ROWS", "CREATED", "UPDATED", "TERMINATED", "UNCHANGED",
					    "SKIPPED", "FAILED", "DEFERRED", "REQUESTS", "429S", "SECONDS"};
	const PGresult *runs = d->runs;
	const char *st = val(runs, i, RUN_STATUS);
	if (streq(st, "running") && !d->running)
		st = "killed";   /* nobody holds the run lock: its process is gone */
	const char *ex = val(runs, i, RUN_EXIT_CODE);
	printf("Run %s  %s  %s  %s s  %s%s%s%s\n", val(runs, i, RUN_ID), val(runs, i, RUN_STARTED_TEXT),
	       val(runs, i, RUN_COMMAND), val(runs, i, RUN_SECONDS), outcome_words(st), ex ? " (exit " : "", ex ? ex : "",
	       ex ? ")" : "");
	if (val(runs, i, RUN_MESSAGE)) {
		char *msg = shown(val(runs, i, RUN_MESSAGE));
		printf("  %s\n", msg);
		free(msg);
	}
	struct table t = {12, heads, " rrrrrrrrrrr", NULL, 0};
	for (int m = 0; m < PQntuples(d->counts); m++) {
		if (!streq(val(d->counts, m, RC_RUN_ID), val(runs, i, RUN_ID)))
			continue;
		const char *row[12];
		for (int k = 0; k < 12; k++)
			row[k] = val(d->counts, m, RC_MAPPING + k);
		table_row(&t, row);
	}
	if (t.nrows)
		table_print(&t, "  ");
	table_free(&t);
	printf("\n");
}

/* What waits to be retried: the totals, then one line per mapping, kind, field and rule. */
static void print_waiting(const PGresult *waiting)
{
	long total = 0, asked = 0;
	for (int i = 0; i < PQntuples(waiting); i++) {
		total += atol(val(waiting, i, FS_COUNT));
		asked += atol(val(waiting, i, FS_RETRY_ASKED));
	}
	if (!total) {
		printf("Nothing waits to be retried.\n");
		return;
	}
	printf("Waiting: %ld record(s). Mapping errors, deferred and transient failures are tried again on every\n"
	       "run; refused records only once their data changes, or after `hrsync retry` (asked for %ld).\n",
	       total, asked);
	static const char *const heads[] = {"MAPPING", "KIND", "FIELD", "RECORDS", "SINCE", "EXAMPLE"};
	struct table t = {6, heads, "   r  ", NULL, 0};
	for (int i = 0; i < PQntuples(waiting); i++) {
		const char *field = val(waiting, i, FS_FIELD), *rule = val(waiting, i, FS_RULE);
		struct sb fr = {0}, ex = {0};
		if (field)
			sb_printf(&fr, "%s%s%s", field, rule ? " " : "", rule ? rule : "");
		sb_printf(&ex, "%s: %s", val(waiting, i, FS_EXAMPLE_KEY), val(waiting, i, FS_EXAMPLE_REASON));
		const char *row[] = {val(waiting, i, FS_MAPPING), val(waiting, i, FS_KIND), sb_str(&fr),
				     val(waiting, i, FS_COUNT), val(waiting, i, FS_SINCE_TEXT), sb_str(&ex)};
		table_row(&t, row);
		sb_free(&fr);
		sb_free(&ex);
	}
	table_print(&t, "  ");
	table_free(&t);
	printf("Each record: `hrsync failures [MAPPING]`.\n");
}

static void status_print_table(const struct status_data *d)
{
	if (d->running)
		printf("A run is in progress now.\n\n");
	if (PQntuples(d->last))
		printf("Last completed run: %s, finished %s (%s).\n\n", val(d->last, 0, RUN_ID),
		       val(d->last, 0, RUN_FINISHED_TEXT), outcome_words(val(d->last, 0, RUN_STATUS)));
	else
		printf("No run has completed yet.\n\n");
	if (!PQntuples(d->runs))
		printf("No run recorded yet.\n\n");
	for (int i = 0; i < PQntuples(d->runs); i++)
		print_run(d, i);
	print_waiting(d->waiting);
}

static int status_body(struct report *r, int nruns)
{
	struct status_data d = {0};
	int have = status_read(r, nruns, &d);
	if (have == 0)
		status_print_empty(r, d.running);
	else if (have > 0 && r->json)
		status_print_json(r, &d);
	else if (have > 0)
		status_print_table(&d);
	status_data_free(&d);
	return have < 0 ? 3 : 0;
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

static void failures_print_json(const struct report *r, const char *mapping, const PGresult *res)
{
	static const struct jmember f[] = {
		{"mapping", FL_MAPPING, 's'}, {"key", FL_KEY, 's'}, {"kind", FL_KIND, 's'}, {"action", FL_ACTION, 's'},
		{"field", FL_FIELD, 's'}, {"rule", FL_RULE, 's'}, {"reason", FL_REASON, 's'},
		{"http_status", FL_HTTP_STATUS, 'i'}, {"attempts", FL_ATTEMPTS, 'i'}, {"first_seen", FL_FIRST_SEEN, 's'},
		{"last_seen", FL_LAST_SEEN, 's'}, {"retry", FL_RETRY, 'b'}, {"run", FL_RUN_ID, 'i'}};
	int n = res ? PQntuples(res) : 0;
	struct jv *doc = jv_obj();
	jv_obj_set(doc, "state_schema", jv_str(r->cfg->state_schema));
	jv_obj_set(doc, "mapping", mapping ? jv_str(mapping) : jv_null());
	jv_obj_set(doc, "count", jv_int(n));
	struct jv *a = jv_arr();
	for (int i = 0; i < n; i++)
		jv_arr_push(a, jrow(res, i, f, ARRAY_LEN(f)));
	jv_obj_set(doc, "failures", a);
	print_json(doc);
	jv_free(doc);
}

static void failures_print_table(const char *mapping, const PGresult *res)
{
	int n = res ? PQntuples(res) : 0;
	if (!n) {
		printf("No failed record%s%s.\n", mapping ? " in mapping " : "", mapping ? mapping : "");
		return;
	}
	static const char *const heads[] = {"MAPPING", "KEY", "KIND", "ACTION", "FIELD", "RULE", "HTTP",
					    "ATTEMPTS", "FIRST SEEN", "LAST SEEN", "REASON"};
	struct table t = {11, heads, "      rr   ", NULL, 0};
	for (int i = 0; i < n; i++) {
		char kind[48];
		snprintf(kind, sizeof kind, "%s%s", val(res, i, FL_KIND), val(res, i, FL_RETRY)[0] == 't' ? " (retry)" : "");
		const char *row[] = {val(res, i, FL_MAPPING), val(res, i, FL_KEY), kind, val(res, i, FL_ACTION),
				     val(res, i, FL_FIELD), val(res, i, FL_RULE), val(res, i, FL_HTTP_STATUS),
				     val(res, i, FL_ATTEMPTS), val(res, i, FL_FIRST_SEEN_TEXT), val(res, i, FL_LAST_SEEN_TEXT),
				     val(res, i, FL_REASON)};
		table_row(&t, row);
	}
	table_print(&t, "");
	table_free(&t);
	printf("%d failed record(s).\n", n);
}

static int failures_body(struct report *r, const char *mapping)
{
	const char *cmd = "failures";
	PGresult *res = NULL;
	int have = schema_ready(r, cmd);
	if (have < 0)
		return 3;
	if (have) {
		res = checked(r, cmd, state_failures_list(&r->st, mapping, r->order, r->cfg->nmaps));
		if (!res)
			return 3;
	}
	if (r->json)
		failures_print_json(r, mapping, res);
	else
		failures_print_table(mapping, res);
	int rc = res && PQntuples(res) ? 1 : 0;
	PQclear(res);
	return rc;
}

/* A mapping named on the command line must be one of the config or have failures. */
static bool known_mapping(struct report *r, const char *cmd, const char *name, bool *unreachable)
{
	if (config_mapping(r->cfg, name))
		return true;
	int have = schema_ready(r, cmd);
	bool found = have == 1 && checked_yes_no(r, cmd, state_failures_of(&r->st, name)) == 1;
	*unreachable = r->st.broken;
	if (!found && !*unreachable) {
		const char *s = diag_suggest(name, r->order, r->cfg->nmaps);
		fprintf(stderr, "hrsync %s: no mapping named '%s'%s%s%s\n", cmd, name, s ? " (did you mean '" : "",
			s ? s : "", s ? "'?)" : "");
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

static int retry_body(struct report *r, const char *mapping, char **keys, int nkeys)
{
	const char *cmd = "retry";
	PGresult *res = NULL;
	int have = schema_ready(r, cmd);
	if (have < 0)
		return 3;
	if (have) {
		res = checked(r, cmd, state_failures_retry(&r->st, mapping, (const char *const *)keys, (size_t)nkeys));
		if (!res)
			return 3;
	}
	int n = res ? PQntuples(res) : 0, refused = 0;
	for (int i = 0; i < n; i++)
		refused += streq(PQgetvalue(res, i, FR_KIND), "refused");
	int missing = 0;
	for (int k = 0; k < nkeys; k++) {
		bool found = false;
		for (int i = 0; i < n && !found; i++)
			found = streq(PQgetvalue(res, i, FR_KEY), keys[k]);
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
	PQclear(res);
	return missing ? 1 : 0;
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
