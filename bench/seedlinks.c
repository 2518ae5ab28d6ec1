/*
 * seedlinks — the state rows (hrsync.links) a real `hrsync run` would leave for one push
 * mapping, computed with hrsync's own code, as COPY text on stdout. The benchmark uses it
 * to put 1,000,000 employees "in state" without 2,000,000 HTTP requests.
 *
 *   seedlinks -c hrsync.yaml -m employees --columns     the table and the columns the mapping reads
 *   seedlinks -c hrsync.yaml -m employees [--first-id 1000000] [--first-sub-id 5000000]
 *     | psql -c "COPY hrsync.links (mapping, erp_key, platform_id, status, fingerprint,
 *                                  payload, extra, nir_hash) FROM STDIN"
 *
 * Faithful because it runs the daemon's own objects end to end:
 *   - config_load() of the same hrsync.yaml (mapping files, time zone, connector);
 *   - the rows come through source.c's cursor (the very query `run` streams, with the
 *     state join switched off), so values, types and terminate.when are the run's;
 *   - lookup lists are read from the platform (the sandbox) by the connector's own
 *     list(), normalised like sync.c does (trim + lower, ambiguous names refused);
 *   - mapping_eval() of the fields, fingerprint = sha256_hex(jv_dumps(payload)) (sync.c),
 *     nir_hash_hex() (state.c) for the ssn: index.
 * What a run would store for a record first seen already gone (terminate.when holds):
 * "terminated" for entities the platform keeps, nothing (skipped) for deletions.
 * Records that fail their mapping or are deferred get no link (a run gives them a
 * failures row); they are counted on stderr. Platform ids are made up (first-id + n),
 * and each sub-resource the payload carries gets "<name>_id" in extra, as connectors do.
 *
 * bench/run.py checks the output against what a real run stored (fingerprint, payload,
 * status, nir_hash) on a mirror small enough to sync for real, before trusting it at scale.
 */
#define _GNU_SOURCE
#include <curl/curl.h>
#include <locale.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "config.h"
#include "connector.h"
#include "http.h"
#include "log.h"
#include "mapping.h"
#include "sha256.h"
#include "source.h"
#include "state.h"
#include "strmap.h"

#include "benchlib.h"

struct ctx {
	struct connector *conn;
	struct strmap lookups;
};

/* The lists come from the platform through the connector's own list(), as in a run. */
static void load_lookup(struct ctx *x, const char *resource, const char *match)
{
	if (lookups_loaded(&x->lookups, resource, match))
		return;
	char *err = NULL;
	struct jv *items = connector_list(x->conn, resource, &err);
	if (!items) {
		fprintf(stderr, "seedlinks: cannot read %s: %s\n", resource, err ? err : "failed");
		exit(3);
	}
	lookups_add(&x->lookups, resource, match, items);
	jv_free(items);
}

static void preload(struct ctx *x, const struct field *f, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (f[i].nested)
			preload(x, f[i].kids, f[i].nkids);
		if (f[i].src == VS_LOOKUP)
			load_lookup(x, f[i].lookup_resource, f[i].lookup_match);
	}
}

static enum ref_status cb_resolve(void *ctx, const struct field *f, int scheme, const char *id, const char *nir,
				  struct jv **out, char **why)
{
	(void)ctx, (void)f, (void)scheme, (void)id, (void)nir, (void)out;
	*why = xstrdup("seedlinks does not resolve references (seed the mappings they point to first)");
	return REF_DEFERRED;
}

/* COPY text format: backslash, tab, newline and carriage return escaped. */
static void copy_field(FILE *o, const char *s)
{
	if (!s) {
		fputs("\\N", o);
		return;
	}
	for (; *s; s++) {
		switch (*s) {
		case '\\': fputs("\\\\", o); break;
		case '\t': fputs("\\t", o); break;
		case '\n': fputs("\\n", o); break;
		case '\r': fputs("\\r", o); break;
		default: putc(*s, o);
		}
	}
}

static void usage(void)
{
	fprintf(stderr, "usage: seedlinks -c CONFIG -m MAPPING [--columns | [--first-id N] [--first-sub-id N]]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	setlocale(LC_CTYPE, "C.UTF-8"); /* as main.c: towlower/towupper on Cyrillic */
	struct globals g = {.level = L_WARN, .level_set = true, .format = LOGF_TEXT, .format_set = true};
	const char *name = NULL;
	bool columns = false;
	long long first_id = 1000000, first_sub = 5000000;
	for (int i = 1; i < argc; i++) {
		if (streq(argv[i], "-c") && i + 1 < argc)
			g.config = argv[++i];
		else if (streq(argv[i], "-m") && i + 1 < argc)
			name = argv[++i];
		else if (streq(argv[i], "--columns"))
			columns = true;
		else if (streq(argv[i], "--first-id") && i + 1 < argc)
			first_id = atoll(argv[++i]);
		else if (streq(argv[i], "--first-sub-id") && i + 1 < argc)
			first_sub = atoll(argv[++i]);
		else
			usage();
	}
	if (!g.config || !name)
		usage();
	log_setup(g.level, g.format);
	curl_global_init(CURL_GLOBAL_DEFAULT);
	struct config *cfg = cli_load_config(&g);
	if (!cfg)
		return 2;
	struct mapping *m = config_mapping(cfg, name);
	if (!m || m->dir != DIR_PUSH || !m->ent) {
		fprintf(stderr, "seedlinks: no push mapping '%s'\n", name);
		return 2;
	}
	if (columns) {
		/* The columns the mapping reads (the key first), for the COPY the benchmark compares with. */
		printf("%s", m->table ? m->table : "");
		for (size_t i = 0; i < m->ncols; i++)
			printf("%c%s", i ? ',' : '\t', m->cols[i]);
		putchar('\n');
		return 0;
	}
	struct ctx x = {0};
	struct http *http = http_new();
	char *err = NULL;
	for (size_t i = 0; i < cfg->nconns; i++)
		if (&cfg->conns[i] == m->conn)
			x.conn = connector_new(&cfg->conns[i], http, &err);
	if (!x.conn) {
		fprintf(stderr, "seedlinks: connector: %s\n", err ? err : "not found");
		return 3;
	}
	preload(&x, m->fields, m->nfields);
	preload(&x, m->term_fields, m->nterm);

	struct source src;
	if (!source_open(&src, cfg, NULL, &err)) {
		fprintf(stderr, "seedlinks: %s\n", err);
		return 3;
	}
	struct src_filter flt = {.no_state = true};
	struct cursor cur;
	if (!cursor_open(&src, m, &flt, &cur, &err)) {
		fprintf(stderr, "seedlinks: %s\n", err);
		return 3;
	}
	static char obuf[1 << 20];
	setvbuf(stdout, obuf, _IOFBF, sizeof obuf);
	struct eval_env env = {.ctx = &x.lookups, .resolve = cb_resolve, .lookup = lookups_find};
	struct row row;
	struct src_extra ex;
	int rc;
	long long n = 0, linked = 0, failed = 0, skipped = 0, dups = 0, sub = first_sub;
	while ((rc = cursor_next(&cur, &row, &ex, &err)) == 1) {
		n++;
		const char *key = row.vals[0];
		if (!key || ex.dup > 1) {
			dups++;
			continue;
		}
		if (ex.terminate && m->ent->term == TERM_DELETE) {
			skipped++;
			continue;
		}
		struct mapped mp = {0}, tp = {0};
		int r = mapping_eval(m, m->fields, m->nfields, &row, &env, &mp);
		if (r == 0 && ex.terminate)
			r = mapping_eval(m, m->term_fields, m->nterm, &row, &env, &tp);
		if (r != 0) {
			failed++;
			mapped_free(&mp);
			mapped_free(&tp);
			continue;
		}
		char *pj = jv_dumps(mp.payload);
		char fp[65];
		bench_fingerprint(mp.payload, fp);
		struct jv *extra = NULL;
		for (size_t i = 0; i < m->nfields; i++)
			if (m->fields[i].nested && jv_obj_get(mp.payload, m->fields[i].name)) {
				if (!extra)
					extra = jv_obj();
				char id[32], k[128];
				snprintf(id, sizeof id, "%lld", sub++);
				snprintf(k, sizeof k, "%s_id", m->fields[i].name);
				jv_obj_set(extra, k, jv_str(id));
			}
		char *ej = extra ? jv_dumps(extra) : NULL;
		char nh[65], pid[32], fpb[70];
		if (mp.has_nir)
			nir_hash_hex(mp.nir, nh);
		snprintf(pid, sizeof pid, "%lld", first_id + linked);
		snprintf(fpb, sizeof fpb, "\\x%s", fp);
		char nhb[70];
		snprintf(nhb, sizeof nhb, "\\x%s", nh);
		copy_field(stdout, m->name);
		putchar('\t');
		copy_field(stdout, key);
		putchar('\t');
		copy_field(stdout, pid);
		putchar('\t');
		copy_field(stdout, ex.terminate ? "terminated" : "active");
		putchar('\t');
		copy_field(stdout, fpb);
		putchar('\t');
		copy_field(stdout, pj);
		putchar('\t');
		copy_field(stdout, ej);
		putchar('\t');
		copy_field(stdout, mp.has_nir ? nhb : NULL);
		putchar('\n');
		linked++;
		free(pj);
		free(ej);
		jv_free(extra);
		mapped_free(&mp);
		mapped_free(&tp);
	}
	if (rc < 0) {
		fprintf(stderr, "seedlinks: reading the source: %s\n", err);
		return 3;
	}
	fflush(stdout);
	cursor_close(&cur);
	source_close(&src);
	connector_free(x.conn);
	http_free(http);
	strmap_clear(&x.lookups);
	fprintf(stderr, "seedlinks: %s: %lld rows, %lld linked, %lld failed or deferred, %lld skipped, %lld duplicate keys\n",
		m->name, n, linked, failed, skipped, dups);
	config_free(cfg);
	curl_global_cleanup();
	return failed || dups ? 1 : 0;
}
