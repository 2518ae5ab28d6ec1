/*
 * plan — `hrsync plan` (and `run --dry-run`) and `hrsync preview`: what a run would do,
 * record by record, and what a mapping makes of each source row. Both go through the
 * engine in dry-run mode (sync.c), so they show exactly what `run` would decide; they
 * send no write request and write nothing to the state.
 *
 * plan --format table lists the records that would change, with old -> new values for
 * updates, and a totals line; --format json writes one document for scripts.
 * preview writes JSON lines: the row, and the payload or the reason it fails.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <math.h>

#include "cli.h"
#include "kit.h"
#include "strmap.h"
#include "sync.h"

static const char *const action_names[PA__N] = {"create", "update", "terminate", "delete", "restore",
						 "skip", "fail", "defer", "unchanged"};

struct printer {
	bool json;
	long totals[PA__N];
	long listed;
	const char *last_mapping;
	const struct config *cfg;
	double *requests;       /* per connector (cfg->conns), for the estimate */
};

/* Every field whose value differs, "a.b: old -> new", into out (a JSON array when json). */
static void diff(const struct jv *old, const struct jv *now, const char *prefix, struct sb *out, bool json, int *n)
{
	const struct jv *objs[2] = {old, now};
	for (int side = 0; side < 2; side++) {
		const struct jv *o = objs[side];
		if (!o || o->t != JV_OBJ)
			continue;
		for (size_t i = 0; i < o->u.obj.n; i++) {
			const char *k = o->u.obj.k[i];
			if (side == 1 && jv_obj_get(old, k))
				continue; /* seen from the old side */
			const struct jv *a = jv_obj_get(old, k), *b = jv_obj_get(now, k);
			char *path = prefix ? xasprintf("%s.%s", prefix, k) : xstrdup(k);
			if ((a && a->t == JV_OBJ) || (b && b->t == JV_OBJ)) {
				diff(a && a->t == JV_OBJ ? a : NULL, b && b->t == JV_OBJ ? b : NULL, path, out, json, n);
			} else if (!jv_equal(a, b) || (!a) != (!b)) {
				if (json) {
					sb_printf(out, "%s{\"field\":\"", (*n)++ ? "," : "");
					sb_json_escape(out, path, strlen(path));
					sb_puts(out, "\",\"old\":");
					jv_dump(a, out);
					sb_puts(out, ",\"new\":");
					jv_dump(b, out);
					sb_putc(out, '}');
				} else {
					sb_printf(out, "%s%s: ", (*n)++ ? "\n" : "", path);
					if (a)
						jv_dump(a, out);
					else
						sb_puts(out, "(absent)");
					sb_puts(out, " -> ");
					if (b)
						jv_dump(b, out);
					else
						sb_puts(out, "(absent)");
				}
			}
			free(path);
		}
	}
}

/* s padded with spaces to width characters (not bytes: keys may be Cyrillic). */
static void pad(struct sb *b, const char *s, size_t width)
{
	sb_puts(b, s);
	for (size_t n = utf8_len(s, strlen(s)); n < width; n++)
		sb_putc(b, ' ');
	sb_putc(b, ' ');
}

static void table_row(struct printer *p, const struct plan_rec *r, const char *details)
{
	if (!p->listed++)
		printf("%-14s %-16s %-10s %s\n", "MAPPING", "KEY", "ACTION", "DETAILS");
	const char *d = details;
	bool first = true;
	/* Multi-line details (one changed field a line) are indented under the first. */
	do {
		const char *nl = strchr(d, '\n');
		int len = nl ? (int)(nl - d) : (int)strlen(d);
		struct sb line = {0};
		pad(&line, first ? r->mapping : "", 14);
		pad(&line, first ? r->key : "", 16);
		pad(&line, first ? action_names[r->action] : "", 10);
		printf("%s%.*s\n", sb_str(&line), len, d);
		sb_free(&line);
		first = false;
		d = nl ? nl + 1 : NULL;
	} while (d);
}

/* ---- requests and time (per connector) ---- */

/* The kit's estimate for a record: a find before a create, the write, each sub-resource group sent. */
static double kit_requests(const struct conn_entity *e, enum op_action a, const struct jv *payload,
			   const struct jv *old)
{
	double n = a == ACT_RESTORE ? 2 : 1;
	if (a == ACT_CREATE && e->find)
		n += 1;
	for (size_t i = 0; a != ACT_TERMINATE && e->subres && e->subres[i]; i++) {
		const struct jv *g = jv_obj_get(payload, e->subres[i]->name);
		if (g && !jv_is_null(g) && (a != ACT_UPDATE || !jv_equal(g, jv_obj_get(old, e->subres[i]->name))))
			n += 1;
	}
	return n;
}

static enum op_action op_of(enum plan_action a)
{
	return a == PA_CREATE ? ACT_CREATE : a == PA_UPDATE ? ACT_UPDATE : a == PA_RESTORE ? ACT_RESTORE : ACT_TERMINATE;
}

static void count_requests(struct printer *p, const struct plan_rec *r)
{
	if (r->action != PA_CREATE && r->action != PA_UPDATE && r->action != PA_RESTORE && r->action != PA_TERMINATE &&
	    r->action != PA_DELETE)
		return;
	const struct mapping *m = config_mapping(p->cfg, r->mapping);
	if (!m || !m->conn || !m->ent)
		return;
	size_t ci = (size_t)(m->conn - p->cfg->conns);
	const struct connector_type *t = m->conn->type;
	double (*est)(const struct conn_entity *, enum op_action, const struct jv *, const struct jv *) =
		t->requests ? t->requests : kit_requests;
	p->requests[ci] += est(m->ent, op_of(r->action), r->payload, r->old);
	if (r->then_terminate)
		p->requests[ci] += est(m->ent, ACT_TERMINATE, r->term, NULL);
}

/* Lookup lists (a request each) and a token per connector that has something to send. */
static void add_overheads(const struct printer *p, const struct run_opts *o, double *req)
{
	const struct config *c = p->cfg;
	for (size_t ci = 0; ci < c->nconns; ci++) {
		if (req[ci] <= 0)
			continue;
		if (c->conns[ci].type->auth.client_id)
			req[ci] += 1;
		struct strmap seen = {0};
		for (size_t i = 0; i < c->nmaps; i++) {
			const struct mapping *m = c->maps[i];
			bool sel = !o->nonly;
			for (size_t k = 0; k < o->nonly; k++)
				sel |= streq(o->only[k], m->name);
			if (!sel || m->conn != &c->conns[ci])
				continue;
			const struct field *lists[] = {m->fields, m->term_fields};
			size_t counts[] = {m->nfields, m->nterm};
			for (int l = 0; l < 2; l++)
				for (size_t f = 0; f < counts[l]; f++) {
					const struct field *x = &lists[l][f];
					for (size_t k = 0; k <= x->nkids; k++) {
						const struct field *y = x->nested ? (k < x->nkids ? &x->kids[k] : NULL) : (k ? NULL : x);
						if (y && y->src == VS_LOOKUP && y->lookup_resource && !strmap_get(&seen, y->lookup_resource, NULL))
							strmap_put(&seen, y->lookup_resource, "");
					}
				}
		}
		req[ci] += (double)seen.n;
		strmap_clear(&seen);
	}
}

/* "about 2 h 10 min", "about 40 min", "about 35 s" */
static void duration_words(char *out, size_t n, double s)
{
	if (s < 90)
		snprintf(out, n, "about %.0f s", s < 1 ? 1 : s);
	else if (s < 5400)
		snprintf(out, n, "about %.0f min", s / 60);
	else
		snprintf(out, n, "about %.0f h %02.0f min", floor(s / 3600), fmod(s, 3600) / 60 >= 59.5 ? 59 : fmod(s, 3600) / 60);
}

static double conn_rate(const struct conn_cfg *cc)
{
	double r = cc->rate > 0 ? cc->rate : cc->type->default_rate;
	return r * PACE_SHARE; /* the pacer keeps under the limit */
}

/* Per connector: the requests the run would send and how long they take at its rate. */
static void estimates(struct printer *p, const struct run_opts *o, FILE *out)
{
	const struct config *c = p->cfg;
	add_overheads(p, o, p->requests);
	if (p->json) {
		fprintf(out, ",\n \"connectors\": {");
		for (size_t ci = 0; ci < c->nconns; ci++) {
			double r = conn_rate(&c->conns[ci]);
			fprintf(out, "%s\"%s\": {\"requests\": %.0f, \"seconds\": %.0f, \"rate_per_second\": %.4g}",
				ci ? ", " : "", c->conns[ci].name, ceil(p->requests[ci]),
				r > 0 ? ceil(p->requests[ci]) / r : 0, r);
		}
		fprintf(out, "}");
		return;
	}
	for (size_t ci = 0; ci < c->nconns; ci++) {
		if (p->requests[ci] <= 0)
			continue;
		double r = conn_rate(&c->conns[ci]);
		char d[64];
		duration_words(d, sizeof d, r > 0 ? ceil(p->requests[ci]) / r : 0);
		fprintf(out, "connector %s: about %.0f request(s), %s at %.4g requests/s\n", c->conns[ci].name,
			ceil(p->requests[ci]), d, r);
	}
}

static void on_record(void *ud, const struct plan_rec *r)
{
	struct printer *p = ud;
	p->totals[r->action]++;
	count_requests(p, r);
	if (r->then_terminate)
		p->totals[PA_TERMINATE]++;
	if (r->action == PA_UNCHANGED)
		return;
	struct sb det = {0};
	int n = 0;
	if (p->json) {
		printf("%s\n  {\"mapping\":", p->listed++ ? "," : "");
		struct sb b = {0};
		sb_putc(&b, '"');
		sb_json_escape(&b, r->mapping, strlen(r->mapping));
		sb_puts(&b, "\",\"key\":\"");
		sb_json_escape(&b, r->key, strlen(r->key));
		sb_printf(&b, "\",\"action\":\"%s\"", action_names[r->action]);
		if (r->then_terminate)
			sb_puts(&b, ",\"then_terminate\":true");
		if (r->action == PA_UPDATE || r->action == PA_RESTORE) {
			sb_puts(&b, ",\"changes\":[");
			diff(r->old, r->payload, NULL, &b, true, &n);
			sb_putc(&b, ']');
		}
		if (r->payload && (r->action == PA_CREATE || r->action == PA_UPDATE || r->action == PA_RESTORE)) {
			sb_puts(&b, ",\"payload\":");
			jv_dump(r->payload, &b);
		}
		if (r->term) {
			sb_puts(&b, ",\"terminate\":");
			jv_dump(r->term, &b);
		}
		const char *kv[][2] = {{"field", r->field}, {"rule", r->rule}, {"reason", r->reason}};
		for (size_t i = 0; i < 3; i++)
			if (kv[i][1]) {
				sb_printf(&b, ",\"%s\":\"", kv[i][0]);
				sb_json_escape(&b, kv[i][1], strlen(kv[i][1]));
				sb_putc(&b, '"');
			}
		sb_putc(&b, '}');
		fputs(sb_str(&b), stdout);
		sb_free(&b);
		return;
	}
	switch (r->action) {
	case PA_UPDATE:
	case PA_RESTORE:
		diff(r->old, r->payload, NULL, &det, false, &n);
		if (!n)
			sb_puts(&det, r->action == PA_RESTORE ? "back in scope (re-hired, or un-cancelled): restored, no field changed"
				      : r->old ? "(sub-resource ids only)" : "(the last accepted payload is not known: sent in full)");
		break;
	case PA_CREATE:
		if (r->then_terminate) {
			sb_puts(&det, "then terminate ");
			jv_dump(r->term, &det);
		}
		break;
	case PA_TERMINATE:
	case PA_DELETE:
		if (r->term && r->term->u.obj.n)
			jv_dump(r->term, &det);
		break;
	default:
		if (r->field)
			sb_printf(&det, "field '%s' %s: ", r->field, r->rule ? r->rule : "");
		if (r->reason)
			sb_puts(&det, r->reason);
	}
	table_row(p, r, sb_str(&det));
	sb_free(&det);
}

static void totals(struct printer *p, const struct run_opts *o, FILE *out)
{
	if (p->json) {
		fprintf(out, "%s\n ],\n \"totals\": {", p->listed ? "" : "");
		for (int i = 0; i < PA__N; i++)
			fprintf(out, "%s\"%s\": %ld", i ? ", " : "", action_names[i], p->totals[i]);
		fprintf(out, "}");
		estimates(p, o, out);
		fprintf(out, "\n}\n");
		return;
	}
	if (!p->totals[PA_CREATE] && !p->totals[PA_UPDATE] && !p->totals[PA_TERMINATE] && !p->totals[PA_DELETE] &&
	    !p->totals[PA_RESTORE])
		fprintf(out, "Nothing would change.\n");
	fprintf(out, "totals: %ld to create, %ld to update, %ld to terminate, %ld to delete, %ld to restore, "
		     "%ld skipped, %ld failing, %ld waiting, %ld unchanged\n",
		p->totals[PA_CREATE], p->totals[PA_UPDATE], p->totals[PA_TERMINATE], p->totals[PA_DELETE],
		p->totals[PA_RESTORE], p->totals[PA_SKIP], p->totals[PA_FAIL], p->totals[PA_DEFER], p->totals[PA_UNCHANGED]);
	estimates(p, o, out);
}

/* Shared by `plan` and `run --dry-run`: returns 0 nothing to change, 1 changes pending, 2/3 errors. */
int plan_run(struct config *cfg, struct run_opts *o, bool json)
{
	struct printer p = {.json = json, .cfg = cfg};
	p.requests = xcalloc(cfg->nconns + 1, sizeof *p.requests);
	struct plan_sink sink = {.record = on_record, .ud = &p};
	o->dry_run = true;
	o->sink = &sink;
	if (json)
		printf("{\n \"records\": [");
	int rc = sync_run(cfg, o, NULL);
	if (rc == 2 || rc == 3 || rc == 75) {
		if (json)
			printf("\n ],\n \"error\": \"the plan could not be made: see the log\"\n}\n");
		else
			printf("The plan could not be made (exit %d): see the errors above.\n", rc);
		fflush(stdout);
		free(p.requests);
		return rc;
	}
	totals(&p, o, stdout);
	free(p.requests);
	fflush(stdout);
	long changes = p.totals[PA_CREATE] + p.totals[PA_UPDATE] + p.totals[PA_TERMINATE] + p.totals[PA_DELETE] +
		       p.totals[PA_RESTORE];
	return changes ? 1 : 0;
}

int cmd_plan(const struct globals *g, int argc, char **argv)
{
	struct run_opts o = {0};
	bool json = false;
	o.only = xcalloc((size_t)argc + 1, sizeof *o.only);
	for (int i = 0; i < argc; i++) {
		if (streq(argv[i], "--mapping") && i + 1 < argc) {
			o.only[o.nonly++] = argv[++i];
		} else if (streq(argv[i], "--format") && i + 1 < argc) {
			if (!streq(argv[i + 1], "json") && !streq(argv[i + 1], "table")) {
				fprintf(stderr, "hrsync plan: --format is table or json, not '%s'\n", argv[i + 1]);
				free(o.only);
				return 2;
			}
			json = streq(argv[++i], "json");
		} else {
			fprintf(stderr, "hrsync plan: unknown argument '%s'\n"
					"usage: hrsync plan [--mapping NAME]... [--format table|json]\n",
				argv[i]);
			free(o.only);
			return 2;
		}
	}
	struct config *cfg = cli_load_config(g);
	int rc = cfg ? plan_run(cfg, &o, json) : 2;
	config_free(cfg);
	free(o.only);
	return rc;
}

/* ---- preview ---- */

struct previewer {
	long rows, failed;
};

static void put_str(struct sb *b, const char *k, const char *v)
{
	sb_printf(b, ",\"%s\":\"", k);
	sb_json_escape(b, v, strlen(v));
	sb_putc(b, '"');
}

static void on_preview(void *ud, const struct preview_rec *r)
{
	struct previewer *pv = ud;
	struct sb b = {0};
	sb_puts(&b, "{\"mapping\":\"");
	sb_json_escape(&b, r->mapping, strlen(r->mapping));
	sb_puts(&b, "\",\"key\":\"");
	sb_json_escape(&b, r->key, strlen(r->key));
	sb_puts(&b, "\",\"row\":");
	jv_dump(r->row, &b);
	if (r->payload) {
		sb_puts(&b, ",\"payload\":");
		jv_dump(r->payload, &b);
		if (r->term) {
			sb_puts(&b, ",\"terminate\":");
			jv_dump(r->term, &b);
		}
	} else {
		sb_printf(&b, ",\"%s\":{\"field\":\"", r->deferred ? "deferred" : "error");
		sb_json_escape(&b, r->field ? r->field : "", r->field ? strlen(r->field) : 0);
		sb_putc(&b, '"');
		if (r->rule)
			put_str(&b, "rule", r->rule);
		if (r->reason)
			put_str(&b, "reason", r->reason);
		sb_putc(&b, '}');
		pv->failed++;
	}
	sb_puts(&b, "}\n");
	fputs(sb_str(&b), stdout);
	sb_free(&b);
	pv->rows++;
}

int cmd_preview(const struct globals *g, int argc, char **argv)
{
	const char *mapping = NULL, *key = NULL;
	long limit = 20;
	for (int i = 0; i < argc; i++) {
		if (streq(argv[i], "--limit") && i + 1 < argc && parse_ll(argv[i + 1], &(long long){0})) {
			limit = atol(argv[++i]);
		} else if (streq(argv[i], "--key") && i + 1 < argc) {
			key = argv[++i];
		} else if (argv[i][0] != '-' && !mapping) {
			mapping = argv[i];
		} else {
			fprintf(stderr, "hrsync preview: unknown argument '%s'\n", argv[i]);
			mapping = NULL;
			break;
		}
	}
	if (!mapping) {
		fprintf(stderr, "usage: hrsync preview MAPPING [--limit N] [--key KEY]   (--limit 0: every row; default 20)\n");
		return 2;
	}
	struct config *cfg = cli_load_config(g);
	if (!cfg)
		return 2;
	struct mapping *m = config_mapping(cfg, mapping);
	if (!m || m->dir != DIR_PUSH) {
		fprintf(stderr, "hrsync preview: no push mapping named '%s'\n", mapping);
		config_free(cfg);
		return 2;
	}
	struct previewer pv = {0};
	struct plan_sink sink = {.preview = on_preview, .ud = &pv, .preview_key = key, .preview_limit = limit};
	char *only[] = {(char *)mapping};
	struct run_opts o = {.dry_run = true, .sink = &sink, .only = only, .nonly = 1};
	int rc = sync_run(cfg, &o, NULL);
	fflush(stdout);
	if (rc == 0 || rc == 1) {
		fprintf(stderr, "preview: %ld row(s), %ld failing or waiting\n", pv.rows, pv.failed);
		rc = pv.failed ? 1 : 0;
		if (key && pv.rows == 0) {
			fprintf(stderr, "preview: no row of %s has key '%s'\n", mapping, key);
			rc = 1;
		}
	}
	config_free(cfg);
	return rc;
}
