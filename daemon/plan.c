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

#include "cli.h"
#include "sync.h"

static const char *const action_names[PA__N] = {"create", "update", "terminate", "delete", "restore",
						 "skip", "fail", "defer", "unchanged"};

struct printer {
	bool json;
	long totals[PA__N];
	long listed;
	const char *last_mapping;
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

static void on_record(void *ud, const struct plan_rec *r)
{
	struct printer *p = ud;
	p->totals[r->action]++;
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

static void totals(struct printer *p, FILE *out)
{
	if (p->json) {
		fprintf(out, "%s\n ],\n \"totals\": {", p->listed ? "" : "");
		for (int i = 0; i < PA__N; i++)
			fprintf(out, "%s\"%s\": %ld", i ? ", " : "", action_names[i], p->totals[i]);
		fprintf(out, "}\n}\n");
		return;
	}
	if (!p->totals[PA_CREATE] && !p->totals[PA_UPDATE] && !p->totals[PA_TERMINATE] && !p->totals[PA_DELETE] &&
	    !p->totals[PA_RESTORE])
		fprintf(out, "Nothing would change.\n");
	fprintf(out, "totals: %ld to create, %ld to update, %ld to terminate, %ld to delete, %ld to restore, "
		     "%ld skipped, %ld failing, %ld waiting, %ld unchanged\n",
		p->totals[PA_CREATE], p->totals[PA_UPDATE], p->totals[PA_TERMINATE], p->totals[PA_DELETE],
		p->totals[PA_RESTORE], p->totals[PA_SKIP], p->totals[PA_FAIL], p->totals[PA_DEFER], p->totals[PA_UNCHANGED]);
}

/* Shared by `plan` and `run --dry-run`: returns 0 nothing to change, 1 changes pending, 2/3 errors. */
int plan_run(struct config *cfg, struct run_opts *o, bool json)
{
	struct printer p = {.json = json};
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
		return rc;
	}
	totals(&p, stdout);
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
