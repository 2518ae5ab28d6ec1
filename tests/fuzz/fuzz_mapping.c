/*
 * fuzz_mapping — one mapping file through mapping_load(), then mapping_eval() of its
 * fields and terminate fields on a row built from the input.
 *
 * Input: the mapping text; optional files after "#@NAME" lines (a map_file, CSV or
 * YAML); then a "#@row" part. For a push mapping each line of the row is one column
 * (in the order of mapping.cols), its first character giving the type:
 *   n  NULL          t  text (25)     i  int4 (23)     d  numeric (1700)
 *   b  bool (16)     D  date (1082)   anything else: text, the whole line
 * For a pull mapping the row part is the platform record, as JSON.
 *
 * The eval_env answers from a hash of what it is asked: resolved, deferred or
 * refused references; found or missing lookups. Deterministic, so crashes replay.
 *
 * Only mappings that load without errors are evaluated: `hrsync run` never evaluates
 * a mapping `hrsync check` refuses. Numeric values are kept to what PostgreSQL sends
 * for numeric and float columns (a JSON number, NaN, Infinity, -Infinity).
 *
 * Properties: mapping_eval() returns 0 with a payload, 1 with an error naming field,
 * rule and reason, or 2 with a deferral reason; a payload dumps to JSON that parses
 * back equal, and every string in it is UTF-8; error reasons are UTF-8; a NIR kept
 * for ssn: references is a valid NIR.
 */
#include "fuzz.h"

#include "mapping.h"
#include "nir.h"
#include "ref.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fuzz_setup(true);
	return 0;
}

static unsigned hash(const char *s)
{
	unsigned h = 2166136261u;
	for (; s && *s; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	return h;
}

static enum ref_status cb_resolve(void *ctx, const struct field *f, int scheme, const char *id, const char *nir,
				  struct jv **out, char **why)
{
	(void)ctx;
	FUZZ_CHECK(f && id && nir, "resolve called without field, id or NIR buffer");
	if (scheme == REF_SSN) {
		char norm[16];
		FUZZ_CHECK(nir_check(nir, norm) == NIR_OK, "resolve got an ssn: reference with an invalid NIR");
	}
	if (scheme == REF_TROOPS)
		FUZZ_CHECK(uuid_valid(id), "resolve got a troops: reference that is not a UUID");
	switch (hash(id) % 5) {
	case 0: *out = jv_from_id(id); return REF_RESOLVED;
	case 1: *out = jv_int((long long)hash(id)); return REF_RESOLVED;
	case 2: *why = xasprintf("employee %s is not created yet", id); return REF_DEFERRED;
	case 3: return REF_DEFERRED;
	default:
		if (hash(id) & 8)
			*why = xstrdup("refused by the platform");
		return REF_INVALID;
	}
}

static bool cb_lookup(void *ctx, const char *resource, const char *match, const char *name, struct jv **out)
{
	(void)ctx;
	FUZZ_CHECK(resource && match && name, "lookup called with a NULL argument");
	switch (hash(name) % 3) {
	case 0: return false;
	case 1: *out = jv_int(hash(name) % 1000); return true;
	default: *out = jv_str(name); return true;
	}
}

static bool cb_ref_back(void *ctx, const char *mapping, const char *platform_id, struct jv **out)
{
	(void)ctx;
	(void)mapping;
	if (hash(platform_id) % 2)
		return false;
	*out = jv_strn(platform_id, strlen(platform_id));
	return true;
}

static const struct eval_env ENV = {.ctx = NULL, .resolve = cb_resolve, .lookup = cb_lookup, .ref_back = cb_ref_back};

/* What PostgreSQL sends for numeric, float4 and float8: a JSON number, NaN or [-]Infinity. */
static bool pg_number(const char *s)
{
	if (!strcmp(s, "NaN") || !strcmp(s, "Infinity") || !strcmp(s, "-Infinity"))
		return true;
	const char *p = s;
	if (*p == '-')
		p++;
	if (*p == '0')
		p++;
	else if (*p >= '1' && *p <= '9')
		while (*p >= '0' && *p <= '9')
			p++;
	else
		return false;
	if (*p == '.') {
		if (!(*++p >= '0' && *p <= '9'))
			return false;
		while (*p >= '0' && *p <= '9')
			p++;
	}
	if (*p == 'e' || *p == 'E') {
		p++;
		if (*p == '+' || *p == '-')
			p++;
		if (!(*p >= '0' && *p <= '9'))
			return false;
		while (*p >= '0' && *p <= '9')
			p++;
	}
	return *p == '\0';
}

/* true when every string and key in v is UTF-8. */
static bool utf8_tree(const struct jv *v)
{
	if (!v)
		return true;
	switch (v->t) {
	case JV_STR:
		return utf8_valid(v->u.str.s, v->u.str.len);
	case JV_ARR:
		for (size_t i = 0; i < v->u.arr.n; i++)
			if (!utf8_tree(v->u.arr.v[i]))
				return false;
		return true;
	case JV_OBJ:
		for (size_t i = 0; i < v->u.obj.n; i++)
			if (!utf8_valid(v->u.obj.k[i], strlen(v->u.obj.k[i])) || !utf8_tree(v->u.obj.v[i]))
				return false;
		return true;
	default:
		return true;
	}
}

static void check_result(int rc, const struct mapped *out)
{
	FUZZ_CHECK(rc >= 0 && rc <= 2, "mapping_eval returned %d", rc);
	if (rc == 0) {
		FUZZ_CHECK(out->payload && out->payload->t == JV_OBJ, "success without an object payload");
		FUZZ_CHECK(!out->err.path, "success with an error set");
		FUZZ_CHECK(utf8_tree(out->payload), "the payload holds a string that is not UTF-8");
		char *text = jv_dumps(out->payload);
		char err[200];
		struct jv *back = jv_parse(text, strlen(text), err, sizeof err);
		FUZZ_CHECK(back, "the payload does not dump as valid JSON (%s): %s", err, text);
		FUZZ_CHECK(jv_equal(back, out->payload), "the payload changes through dump and parse: %s", text);
		jv_free(back);
		free(text);
	} else if (rc == 1) {
		FUZZ_CHECK(!out->payload, "a failed record with a payload");
		FUZZ_CHECK(out->err.path && out->err.rule && out->err.reason, "a failure without path, rule or reason");
		FUZZ_CHECK(out->nerrors >= 1, "a failure counted %d errors", out->nerrors);
		FUZZ_CHECK(utf8_valid(out->err.reason, strlen(out->err.reason)),
			   "the reason for field %s (rule %s) is not UTF-8", out->err.path, out->err.rule);
	} else {
		FUZZ_CHECK(!out->payload, "a deferred record with a payload");
		FUZZ_CHECK(out->defer_reason && out->defer_field, "a deferral without a reason or field");
	}
	if (out->has_nir) {
		char norm[16];
		FUZZ_CHECK(nir_check(out->nir, norm) == NIR_OK, "the NIR kept for ssn: references is not valid");
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_part parts[FUZZ_MAX_PARTS];
	size_t np = fuzz_write_files(data, size, "mapping.yaml", parts, "row");
	if (!np)
		return -1;
	const struct fuzz_part *rowp = NULL;
	for (size_t i = 1; i < np; i++) {
		if (!strcmp(parts[i].name, "row"))
			rowp = &parts[i];
		else if (FUZZ_KNOWN_BUG(7) && !utf8_valid(parts[i].text, parts[i].len))
			return -1;
	}
	char *path = xasprintf("%s/mapping.yaml", fuzz_dir_path);
	struct diag d = {0};
	struct mapping *m = mapping_load(path, &d);
	free(path);
	if (!m) {
		FUZZ_CHECK(d.errors > 0, "mapping_load() returned NULL without an error");
		diag_free(&d);
		return 0;
	}
	for (size_t i = 0; i < m->nfields; i++)
		FUZZ_CHECK(mapping_field(m, m->fields[i].path) != NULL, "field %s not found by path", m->fields[i].path);
	if (m->dir == DIR_PUSH && !d.errors)
		FUZZ_CHECK(m->ncols >= 1 && streq(m->cols[0], m->key), "cols[0] is not the source key");
	if (d.errors) {
		mapping_free(m);
		diag_free(&d);
		return 0;
	}

	/* The row. */
	struct fz in = {(const uint8_t *)(rowp ? rowp->text : ""), rowp ? rowp->len : 0};
	size_t ncols = m->ncols;
	char **vals = xcalloc(ncols + 1, sizeof *vals);
	int *lens = xcalloc(ncols + 1, sizeof *lens);
	unsigned *oids = xcalloc(ncols + 1, sizeof *oids);
	struct jv *record = NULL;
	size_t n = 0;
	if (m->dir == DIR_PULL) {
		size_t len;
		char *text = fz_rest(&in, &len);
		record = jv_parse(text, len, NULL, 0);
		free(text);
		if (record && FUZZ_KNOWN_BUG(1) && !utf8_tree(record)) {
			jv_free(record);
			record = NULL;
		}
		if (!record)
			record = jv_obj();
	} else {
		for (; n < ncols && in.n; n++) {
			char *line = fz_line(&in);
			static const struct { char tag; unsigned oid; } kinds[] = {
				{'t', 25}, {'i', 23}, {'d', 1700}, {'b', 16}, {'D', 1082}};
			unsigned oid = 25;
			size_t skip = 0;
			for (size_t k = 0; k < ARRAY_LEN(kinds); k++)
				if (line[0] == kinds[k].tag) {
					oid = kinds[k].oid;
					skip = 1;
				}
			if (line[0] == 'n') {
				vals[n] = NULL;
				free(line);
				oids[n] = 25;
				continue;
			}
			if (oid == 1700 && !pg_number(line + 1))
				oid = 25;
			vals[n] = xstrdup(line + skip);
			lens[n] = (int)strlen(vals[n]);
			oids[n] = oid;
			free(line);
		}
	}
	struct row r = {.n = n, .vals = (const char *const *)vals, .lens = lens, .oids = oids, .record = record};

	struct mapped out = {0};
	int rc = mapping_eval(m, m->fields, m->nfields, &r, &ENV, &out);
	check_result(rc, &out);
	mapped_free(&out);
	if (m->nterm) {
		rc = mapping_eval(m, m->term_fields, m->nterm, &r, &ENV, &out);
		check_result(rc, &out);
		mapped_free(&out);
	}

	for (size_t i = 0; i < ncols; i++)
		free(vals[i]);
	free(vals);
	free(lens);
	free(oids);
	jv_free(record);
	mapping_free(m);
	diag_free(&d);
	return 0;
}
