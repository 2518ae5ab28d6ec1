/*
 * test_mapping — the mapping engine end to end, as mappings/README.md describes it: small
 * mapping files written to a temporary directory, loaded with mapping_load(), evaluated with
 * mapping_eval() on rows built here, references and lookups answered from small tables. Then mapping_load()'s diagnostics:
 * file:line:col, the text, the "did you mean", and every problem reported, not only the first.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <locale.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "mapping.h"
#include "ref.h"
#include "sha256.h"

#define T(name) static void name(void **state __attribute__((unused)))

enum { OID_BOOL = 16, OID_INT4 = 23, OID_TEXT = 25, OID_DATE = 1082, OID_NUMERIC = 1700 };

/*
 * Everything a test allocates is registered here and released by the teardown, which cmocka
 * runs even after a failed assertion: a failing test reports its failure, not a leak.
 */
typedef void (*freer)(void *);
static struct junk {
	freer fn;
	void *p;
} *junk;
static size_t njunk, capjunk;

static void *keep(void *p, freer fn)
{
	grow(&junk, &capjunk, njunk + 1, sizeof *junk);
	junk[njunk].fn = fn;
	junk[njunk].p = p;
	njunk++;
	return p;
}

static char *ks(char *s)
{
	return keep(s, free);
}

static void free_mapping(void *p) { mapping_free(p); }
static void free_mapped(void *p) { mapped_free(p); free(p); }
static void free_diag(void *p) { diag_free(p); free(p); }
static void free_jv(void *p) { jv_free(p); }

static int cleanup(void **state)
{
	(void)state;
	while (njunk) {
		njunk--;
		junk[njunk].fn(junk[njunk].p);
	}
	free(junk);
	junk = NULL;
	capjunk = 0;
	return 0;
}

static struct mapped *new_mapped(void)
{
	return keep(xcalloc(1, sizeof(struct mapped)), free_mapped);
}

/* ------------------------------------------------------------------ files */

static char dir[64];
static int nfiles;

static char *write_file(const char *name, const char *text)
{
	char *path = xasprintf("%s/%s", dir, name);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	return ks(path);
}

static int group_setup(void **state)
{
	(void)state;
	strcpy(dir, "/tmp/hrsync-mapping-XXXXXX");
	return mkdtemp(dir) ? 0 : -1;
}

static int group_teardown(void **state)
{
	(void)state;
	DIR *dp = opendir(dir);
	if (dp) {
		struct dirent *de;
		while ((de = readdir(dp))) {
			if (de->d_name[0] == '.')
				continue;
			char *p = xasprintf("%s/%s", dir, de->d_name);
			unlink(p);
			free(p);
		}
		closedir(dp);
	}
	rmdir(dir);
	return 0;
}

/* ------------------------------------------------------------------ loading */

#define HEAD "connector: pf\nentity: employees\nsource: { table: erp.employees, key: id }\nfields:\n"
/* HEAD has 4 lines: the first field is on line 5. */
#define FIELD_LINE 5

static void dump_diag(const struct diag *d, char *buf, size_t n)
{
	size_t k = 0;
	buf[0] = '\0';
	for (size_t i = 0; i < d->n && k < n; i++)
		k += (size_t)snprintf(buf + k, n - k, "\n  %s:%d:%d: %s", d->msgs[i].file ? d->msgs[i].file : "-",
				      d->msgs[i].line, d->msgs[i].col, d->msgs[i].text);
}

/* Load a mapping file with the given full text; it must load without errors. */
static struct mapping *load_text_ok(const char *text)
{
	char name[32];
	snprintf(name, sizeof name, "ok%d.yaml", ++nfiles);
	char *path = write_file(name, text);
	struct diag *d = keep(xcalloc(1, sizeof *d), free_diag);
	struct mapping *m = keep(mapping_load(path, d), free_mapping);
	if (!m || d->errors) {
		char buf[2048];
		dump_diag(d, buf, sizeof buf);
		fail_msg("mapping did not load:%s", buf);
	}
	return m;
}

/* HEAD plus the given fields. */
static struct mapping *load_ok(const char *fields)
{
	return load_text_ok(ks(xasprintf(HEAD "%s", fields)));
}

/* Load a file expected to have problems: *d gets the diagnostics, *path the file's path. */
static struct mapping *load_bad(const char *text, struct diag **d, char **path)
{
	char name[32];
	snprintf(name, sizeof name, "bad%d.yaml", ++nfiles);
	*path = write_file(name, text);
	*d = keep(xcalloc(1, sizeof **d), free_diag);
	return keep(mapping_load(*path, *d), free_mapping);
}

/* The first message containing text; fails listing every message when there is none. */
static const struct diag_msg *find_msg(const struct diag *d, const char *text)
{
	for (size_t i = 0; i < d->n; i++)
		if (strstr(d->msgs[i].text, text))
			return &d->msgs[i];
	char buf[2048];
	dump_diag(d, buf, sizeof buf);
	fail_msg("no diagnostic containing \"%s\"; got:%s", text, buf);
	return NULL;
}

/* 1-based column of needle in line. */
static int col_of(const char *line, const char *needle)
{
	const char *p = strstr(line, needle);
	assert_non_null(p);
	return (int)(p - line) + 1;
}

static void assert_msg_at(const struct diag *d, const char *file, int line, int col, const char *text)
{
	const struct diag_msg *m = find_msg(d, text);
	assert_non_null(m->file);
	assert_string_equal(m->file, file);
	if (m->line != line || m->col != col)
		fail_msg("\"%s\" at %d:%d, want %d:%d", m->text, m->line, m->col, line, col);
	assert_true(m->is_error);
}

/* ------------------------------------------------------------------ rows */

struct rowb {
	const char *vals[64];
	int lens[64];
	unsigned oids[64];
};

static void row_init(struct rowb *r)
{
	memset(r, 0, sizeof *r);
	for (size_t i = 0; i < 64; i++)
		r->oids[i] = OID_TEXT;
}

static void setc(const struct mapping *m, struct rowb *r, const char *col, const char *val, unsigned oid)
{
	for (size_t i = 0; i < m->ncols; i++)
		if (streq(m->cols[i], col)) {
			r->vals[i] = val;
			r->lens[i] = val ? (int)strlen(val) : 0;
			r->oids[i] = oid;
			return;
		}
	fail_msg("column %s is not read by the mapping", col);
}

/* ------------------------------------------------------------------ env */

/* What the callbacks were asked, for the tests to check. */
static struct ctx {
	int resolve_calls, lookup_calls;
	int last_scheme;
	char last_id[128], last_nir[16], last_name[128], last_resource[64];
} C;

static enum ref_status cb_resolve(void *c, const struct field *f, int scheme, const char *id, const char *nir,
				  struct jv **out, char **why)
{
	(void)c;
	(void)f;
	C.resolve_calls++;
	C.last_scheme = scheme;
	snprintf(C.last_id, sizeof C.last_id, "%s", id);
	snprintf(C.last_nir, sizeof C.last_nir, "%s", scheme == REF_SSN ? nir : "");
	if (scheme == REF_ERP) {
		if (streq(id, "E1")) {
			*out = jv_int(501);
			return REF_RESOLVED;
		}
		if (streq(id, "E9")) {
			*why = xstrdup("employee E9 was refused by the platform");
			return REF_INVALID;
		}
		*why = xasprintf("employee %s is not created yet", id);
		return REF_DEFERRED;
	}
	if (scheme == REF_SSN) {
		if (streq(nir, "185057800608491")) {
			*out = jv_int(777);
			return REF_RESOLVED;
		}
		*why = xstrdup("no employee with this NIR");
		return REF_DEFERRED;
	}
	*out = jv_str(id);
	return REF_RESOLVED;
}

static bool cb_lookup(void *c, const char *resource, const char *match, const char *name, struct jv **out)
{
	(void)c;
	C.lookup_calls++;
	snprintf(C.last_name, sizeof C.last_name, "%s", name);
	snprintf(C.last_resource, sizeof C.last_resource, "%s", resource);
	if (!streq(match, "name"))
		return false;
	if (streq(resource, "departments")) {
		if (streq(name, "Sales")) {
			*out = jv_int(10);
			return true;
		}
		if (streq(name, "Ventes")) {
			*out = jv_int(11);
			return true;
		}
	}
	if (streq(resource, "positions") && streq(name, "Engineer")) {
		*out = jv_int(20);
		return true;
	}
	return false;
}

static bool cb_ref_back(void *c, const char *mapping, const char *platform_id, struct jv **out)
{
	(void)c;
	if (streq(mapping, "employees") && streq(platform_id, "501")) {
		*out = jv_str("E1");
		return true;
	}
	return false;
}

static const struct eval_env ENV = {.ctx = NULL, .resolve = cb_resolve, .lookup = cb_lookup, .ref_back = cb_ref_back};

static int eval(const struct mapping *m, struct rowb *rb, struct mapped *out)
{
	memset(out, 0, sizeof *out);
	memset(&C, 0, sizeof C);
	struct row r = {.n = m->ncols, .vals = rb->vals, .lens = rb->lens, .oids = rb->oids};
	return mapping_eval(m, m->fields, m->nfields, &r, &ENV, out);
}

static void payload_is(const struct mapped *out, const char *want)
{
	assert_non_null(out->payload);
	char *s = ks(jv_dumps(out->payload));
	if (!streq(s, want))
		fail_msg("payload %s, want %s", s, want);
}

/*
 * One field over one column: load HEAD + fields, set col (may be NULL: no column set),
 * evaluate; want is the payload JSON.
 */
static void one(const char *fields, const char *col, const char *val, unsigned oid, const char *want)
{
	struct mapping *m = load_ok(fields);
	struct rowb rb;
	row_init(&rb);
	if (col)
		setc(m, &rb, col, val, oid);
	struct mapped *out = new_mapped();
	int rc = eval(m, &rb, out);
	if (rc != 0)
		fail_msg("mapping_eval returned %d: %s %s: %s (defer: %s)", rc, out->err.path ? out->err.path : "-",
			 out->err.rule ? out->err.rule : "-", out->err.reason ? out->err.reason : "-",
			 out->defer_reason ? out->defer_reason : "-");
	payload_is(out, want);
}

/* Same, but the record must fail on path with rule; reason must contain reason_has (if given). */
static void one_fails(const char *fields, const char *col, const char *val, unsigned oid, const char *path,
		      const char *rule, const char *reason_has)
{
	struct mapping *m = load_ok(fields);
	struct rowb rb;
	row_init(&rb);
	if (col)
		setc(m, &rb, col, val, oid);
	struct mapped *out = new_mapped();
	int rc = eval(m, &rb, out);
	if (rc != 1)
		fail_msg("mapping_eval returned %d (payload %s), want a failure on %s/%s", rc,
			 out->payload ? ks(jv_dumps(out->payload)) : "-", path, rule);
	assert_null(out->payload);
	assert_string_equal(out->err.path, path);
	assert_string_equal(out->err.rule, rule);
	assert_non_null(out->err.reason);
	assert_true(strlen(out->err.reason) > 0);
	if (reason_has && !strstr(out->err.reason, reason_has))
		fail_msg("reason \"%s\" lacks \"%s\"", out->err.reason, reason_has);
	assert_true(out->nerrors >= 1);
}

/* ================================================================== sources */

T(from_text_column)
{
	one("  name: { from: first_name }\n", "first_name", "Jean", OID_TEXT, "{\"name\":\"Jean\"}");
}

T(from_int4_is_json_int)
{
	one("  n: { from: grade }\n", "grade", "42", OID_INT4, "{\"n\":42}");
}

T(from_numeric_keeps_text)
{
	one("  salary: { from: salary }\n", "salary", "12.50", OID_NUMERIC, "{\"salary\":12.50}");
}

T(from_bool_column)
{
	one("  active: { from: active }\n", "active", "t", OID_BOOL, "{\"active\":true}");
	one("  active: { from: active }\n", "active", "f", OID_BOOL, "{\"active\":false}");
}

T(from_date_column_is_string)
{
	one("  hired_on: { from: hire_date }\n", "hire_date", "2026-11-25", OID_DATE, "{\"hired_on\":\"2026-11-25\"}");
}

T(from_null_column_is_null)
{
	one("  name: { from: first_name }\n", "first_name", NULL, OID_TEXT, "{\"name\":null}");
}

T(from_text_keeps_unicode)
{
	one("  name: { from: first_name }\n", "first_name", "Élodie \"Ива\"", OID_TEXT,
	    "{\"name\":\"Élodie \\\"Ива\\\"\"}");
}

T(value_int_is_json_int)
{
	one("  type_id: { value: 101 }\n", NULL, NULL, 0, "{\"type_id\":101}");
}

T(value_quoted_is_string)
{
	one("  type_id: { value: \"101\" }\n", NULL, NULL, 0, "{\"type_id\":\"101\"}");
}

T(value_true_is_bool)
{
	one("  active: { value: true }\n", NULL, NULL, 0, "{\"active\":true}");
}

T(value_leading_zero_stays_string)
{
	one("  code: { value: 007 }\n", NULL, NULL, 0, "{\"code\":\"007\"}");
}

T(value_float_keeps_text)
{
	one("  rate: { value: 1.50 }\n", NULL, NULL, 0, "{\"rate\":1.50}");
}

T(value_null)
{
	one("  x: { value: null }\n  y: { value: ~ }\n", NULL, NULL, 0, "{\"x\":null,\"y\":null}");
}

T(template_fills_columns)
{
	struct mapping *m = load_ok("  label: { template: \"{first_name} {last_name} ({grade})\" }\n");
	struct rowb rb;
	row_init(&rb);
	setc(m, &rb, "first_name", "Jean", OID_TEXT);
	setc(m, &rb, "last_name", "Dupont", OID_TEXT);
	setc(m, &rb, "grade", "7", OID_INT4);
	struct mapped *out = new_mapped();
	assert_int_equal(eval(m, &rb, out), 0);
	payload_is(out, "{\"label\":\"Jean Dupont (7)\"}");
}

T(template_placeholder_spaces_trimmed)
{
	one("  label: { template: \"<{ first_name }>\" }\n", "first_name", "Jean", OID_TEXT, "{\"label\":\"<Jean>\"}");
}

T(template_null_column_is_null)
{
	struct mapping *m = load_ok("  label: { template: \"{first_name} {last_name}\" }\n");
	struct rowb rb;
	row_init(&rb);
	setc(m, &rb, "first_name", "Jean", OID_TEXT);
	setc(m, &rb, "last_name", NULL, OID_TEXT);
	struct mapped *out = new_mapped();
	assert_int_equal(eval(m, &rb, out), 0);
	payload_is(out, "{\"label\":null}");
}

T(template_literal_braces)
{
	one("  label: { template: \"{{{code}}}\" }\n", "code", "A1", OID_TEXT, "{\"label\":\"{A1}\"}");
}

T(template_without_placeholder)
{
	one("  label: { template: \"fixed\" }\n", NULL, NULL, 0, "{\"label\":\"fixed\"}");
}

/* ---- ref ---- */

T(ref_erp_resolved_through_callback)
{
	one("  manager_id: { ref: \"erp:{manager}\" }\n", "manager", "E1", OID_TEXT, "{\"manager_id\":501}");
	assert_int_equal(C.resolve_calls, 1);
	assert_int_equal(C.last_scheme, REF_ERP);
	assert_string_equal(C.last_id, "E1");
}

T(ref_erp_deferred)
{
	struct mapping *m = load_ok("  name: { from: first_name }\n  manager_id: { ref: \"erp:{manager}\" }\n");
	struct rowb rb;
	row_init(&rb);
	setc(m, &rb, "first_name", "Jean", OID_TEXT);
	setc(m, &rb, "manager", "E2", OID_TEXT);
	struct mapped *out = new_mapped();
	assert_int_equal(eval(m, &rb, out), 2);
	assert_null(out->payload);
	assert_null(out->err.path);
	assert_non_null(out->defer_reason);
	assert_string_equal(out->defer_reason, "employee E2 is not created yet");
	assert_string_equal(out->defer_field, "manager_id");
}

T(ref_over_null_column_is_null)
{
	one("  manager_id: { ref: \"erp:{manager}\" }\n", "manager", NULL, OID_TEXT, "{\"manager_id\":null}");
	assert_int_equal(C.resolve_calls, 0);
}

T(ref_ssn_invalid_nir_fails_rule_ref)
{
	struct mapping *m = load_ok("  person: { ref: \"ssn:{nir}\" }\n");
	struct rowb rb;
	row_init(&rb);
	setc(m, &rb, "nir", "1 85 05 78 006 084 90", OID_TEXT);
	struct mapped *out = new_mapped();
	assert_int_equal(eval(m, &rb, out), 1);
	assert_string_equal(out->err.path, "person");
	assert_string_equal(out->err.rule, "ref");
	assert_null(strstr(out->err.reason, "006"));
	assert_null(strstr(out->err.reason, "084"));
	assert_null(strstr(out->err.reason, "1850578"));
	assert_int_equal(C.resolve_calls, 0); /* never sent anywhere */
}

T(ref_ssn_valid_passes_normalised_nir)
{
	one("  person: { ref: \"ssn:{nir}\" }\n", "nir", "1 85 05 78 006 084 91", OID_TEXT, "{\"person\":777}");
	assert_int_equal(C.last_scheme, REF_SSN);
	assert_string_equal(C.last_nir, "185057800608491");
}

T(ref_troops_valid_uuid)
{
	one("  person: { ref: \"troops:{uuid}\" }\n", "uuid", "123e4567-e89b-12d3-a456-426614174000", OID_TEXT,
	    "{\"person\":\"123e4567-e89b-12d3-a456-426614174000\"}");
	assert_int_equal(C.last_scheme, REF_TROOPS);
}

T(ref_troops_invalid_uuid_fails)
{
	one_fails("  person: { ref: \"troops:{uuid}\" }\n", "uuid", "not-a-uuid", OID_TEXT, "person", "ref", "UUID");
}

T(ref_refused_by_resolver_fails_with_its_reason)
{
	one_fails("  manager_id: { ref: \"erp:{manager}\" }\n", "manager", "E9", OID_TEXT, "manager_id", "ref",
		  "employee E9 was refused");
}

T(ref_ref_mapping_is_kept)
{
	struct mapping *m = load_ok("  holder: { ref: \"erp:{holder}\", ref_mapping: staff }\n");
	const struct field *f = mapping_field(m, "holder");
	assert_non_null(f);
	assert_int_equal(f->src, VS_REF);
	assert_string_equal(f->ref_mapping, "staff");
}

T(failure_wins_over_deferral)
{
	struct mapping *m = load_ok("  manager_id: { ref: \"erp:{manager}\" }\n  name: { from: first_name, required: true }\n");
	struct rowb rb;
	row_init(&rb);
	setc(m, &rb, "manager", "E2", OID_TEXT);
	setc(m, &rb, "first_name", NULL, OID_TEXT);
	struct mapped *out = new_mapped();
	assert_int_equal(eval(m, &rb, out), 1);
	assert_string_equal(out->err.path, "name");
}

/* ---- lookup ---- */

#define LOOKUP_DEPT "  department_id: { lookup: { resource: departments, match: name }, from: dept }\n"

T(lookup_found)
{
	one(LOOKUP_DEPT, "dept", "Sales", OID_TEXT, "{\"department_id\":10}");
	assert_int_equal(C.lookup_calls, 1);
	assert_string_equal(C.last_name, "Sales");
	assert_string_equal(C.last_resource, "departments");
}

T(lookup_not_found_names_field_and_name)
{
	one_fails(LOOKUP_DEPT, "dept", "Nowhere", OID_TEXT, "department_id", "lookup", "'Nowhere'");
	one_fails(LOOKUP_DEPT, "dept", "Nowhere", OID_TEXT, "department_id", "lookup", "departments");
}

T(lookup_null_is_null_without_asking)
{
	one(LOOKUP_DEPT, "dept", NULL, OID_TEXT, "{\"department_id\":null}");
	assert_int_equal(C.lookup_calls, 0);
}

T(lookup_match_defaults_to_name)
{
	struct mapping *m = load_ok("  position_id: { lookup: { resource: positions }, from: job }\n");
	const struct field *f = mapping_field(m, "position_id");
	assert_string_equal(f->lookup_match, "name");
	assert_string_equal(f->lookup_resource, "positions");
	one("  position_id: { lookup: { resource: positions }, from: job }\n", "job", "Engineer", OID_TEXT,
	    "{\"position_id\":20}");
}

/* ================================================================== transforms */

static void tr(const char *list, const char *in, const char *want_json)
{
	char *fields = ks(xasprintf("  v: { from: c, transform: %s }\n", list));
	char *want = ks(xasprintf("{\"v\":%s}", want_json));
	one(fields, "c", in, OID_TEXT, want);
}

T(trim_spaces_tabs_newlines)
{
	tr("[trim]", " \t Jean \r\n", "\"Jean\"");
}

T(trim_no_break_spaces)
{
	tr("[trim]", "\u00a0Jean\u00a0", "\"Jean\"");
	tr("[trim]", " \u00a0 \u202fJean Pierre\u2007\u00a0", "\"Jean Pierre\"");
}

T(trim_keeps_inner_no_break_space)
{
	tr("[trim]", " Jean\u00a0Pierre ", "\"Jean\u00a0Pierre\"");
}

T(trim_blank_gives_empty_string)
{
	tr("[trim]", " \u00a0 ", "\"\"");
}

T(trim_keeps_accents_at_ends)
{
	tr("[trim]", " Élodie é ", "\"Élodie é\"");
}

T(lower_cyrillic_and_french)
{
	tr("[lower]", "ИВАН ÉLODIE ÇA ÀÈÙ", "\"иван élodie ça àèù\"");
}

T(upper_cyrillic_and_french)
{
	tr("[upper]", "иван élodie ça œ", "\"ИВАН ÉLODIE ÇA Œ\"");
}

T(title_names)
{
	tr("[title]", "jean-pierre o'neil", "\"Jean-Pierre O'Neil\"");
	tr("[title]", "ИВАН ПЕТРОВ", "\"Иван Петров\"");
	tr("[title]", "élodie DUPRÉ", "\"Élodie Dupré\"");
	tr("[title]", "anne\u00a0marie", "\"Anne\u00a0Marie\"");
}

T(digits_keeps_only_digits)
{
	tr("[digits]", "+33 (0)6 12-34-56-78", "\"330612345678\"");
	tr("[digits]", "abc", "\"\"");
}

T(nullify_empty)
{
	tr("[nullify_empty]", "", "null");
	tr("[nullify_empty]", "   ", "null");
	tr("[nullify_empty]", "\u00a0\t", "null");
	tr("[nullify_empty]", " x ", "\" x \"");
}

T(collapse_spaces)
{
	tr("[collapse_spaces]", "  Jean \t  Pierre\u00a0\u00a0Dupont  ", "\"Jean Pierre Dupont\"");
	tr("[collapse_spaces]", "one", "\"one\"");
}

T(transforms_apply_in_listed_order)
{
	tr("[digits, nullify_empty]", "abc", "null");
	tr("[nullify_empty, digits]", "abc", "\"\"");
	tr("[trim, upper]", " é ", "\"É\"");
}

T(transform_single_name)
{
	one("  v: { from: c, transform: trim }\n", "c", "  x  ", OID_TEXT, "{\"v\":\"x\"}");
}

T(transform_null_passes_through)
{
	tr("[trim, upper, title, digits, collapse_spaces]", NULL, "null");
}

T(apply_transform_direct)
{
	struct jv *v = keep(apply_transform(TR_UPPER, jv_str("straße")), free_jv);
	assert_int_equal(v->t, JV_STR);
	assert_string_equal(v->u.str.s, "STRAßE");
	assert_null(apply_transform(TR_TRIM, NULL));
}

/* ================================================================== map */

#define GENDER "  gender: { from: sex, map: { M: male, F: female }%s }\n"

static void gender(const char *extra, const char *in, const char *want_json)
{
	char *fields = ks(xasprintf(GENDER, extra));
	char *want = ks(xasprintf("{\"gender\":%s}", want_json));
	one(fields, "sex", in, OID_TEXT, want);
}

T(map_hit)
{
	gender("", "M", "\"male\"");
	gender("", "F", "\"female\"");
}

T(map_unmapped_error_is_default)
{
	char *fields = ks(xasprintf(GENDER, ""));
	one_fails(fields, "sex", "X", OID_TEXT, "gender", "map", "'X'");
}

T(map_unmapped_error_explicit)
{
	char *fields = ks(xasprintf(GENDER, ", unmapped: error"));
	one_fails(fields, "sex", "X", OID_TEXT, "gender", "map", "'X'");
}

T(map_unmapped_null)
{
	gender(", unmapped: null", "X", "null");
}

T(map_unmapped_keep)
{
	gender(", unmapped: keep", "X", "\"X\"");
}

T(map_is_case_sensitive)
{
	gender(", unmapped: keep", "m", "\"m\"");
}

T(map_null_passes_through)
{
	gender("", NULL, "null");
}

T(map_values_keep_yaml_types)
{
	const char *f = "  kind: { from: code, map: { ОТ: 11, Б: \"12\", X: true, N: null } }\n";
	one(f, "code", "ОТ", OID_TEXT, "{\"kind\":11}");
	one(f, "code", "Б", OID_TEXT, "{\"kind\":\"12\"}");
	one(f, "code", "X", OID_TEXT, "{\"kind\":true}");
	one(f, "code", "N", OID_TEXT, "{\"kind\":null}");
}

T(map_on_int_column)
{
	one("  kind: { from: code, map: { 1: one, 2: two } }\n", "code", "2", OID_INT4, "{\"kind\":\"two\"}");
}

T(map_file_csv)
{
	write_file("kinds.csv", "code,value\nCP,1\nRTT,2\nMAL,sick\nZERO,007\nEMPTY,\n# comment\n");
	const char *f = "  kind: { from: code, map_file: kinds.csv }\n";
	one(f, "code", "CP", OID_TEXT, "{\"kind\":1}");
	one(f, "code", "MAL", OID_TEXT, "{\"kind\":\"sick\"}");
	one(f, "code", "ZERO", OID_TEXT, "{\"kind\":\"007\"}");
	one(f, "code", "EMPTY", OID_TEXT, "{\"kind\":null}");
	one_fails(f, "code", "code", OID_TEXT, "kind", "map", NULL); /* the header is no entry */
	one_fails(f, "code", "UNKNOWN", OID_TEXT, "kind", "map", "'UNKNOWN'");
}

T(map_file_csv_crlf)
{
	write_file("kinds_crlf.csv", "CP,1\r\nRTT,2\r\n");
	one("  kind: { from: code, map_file: kinds_crlf.csv }\n", "code", "RTT", OID_TEXT, "{\"kind\":2}");
}

T(map_file_csv_with_utf8_bom)
{
	/* Spreadsheet programs save CSV with a UTF-8 byte order mark before the first code. */
	write_file("kinds_bom.csv", "\xEF\xBB\xBF" "CP,1\nRTT,2\n");
	one("  kind: { from: code, map_file: kinds_bom.csv }\n", "code", "CP", OID_TEXT, "{\"kind\":1}");
}

T(map_file_csv_unmapped_null)
{
	write_file("kinds2.csv", "CP,paid\n");
	one("  kind: { from: code, map_file: kinds2.csv, unmapped: null }\n", "code", "XX", OID_TEXT,
	    "{\"kind\":null}");
}

T(map_file_yaml)
{
	write_file("kinds.yaml", "CP: 1\nRTT: \"2\"\nMAL: sick\n");
	const char *f = "  kind: { from: code, map_file: kinds.yaml }\n";
	one(f, "code", "CP", OID_TEXT, "{\"kind\":1}");
	one(f, "code", "RTT", OID_TEXT, "{\"kind\":\"2\"}");
	one(f, "code", "MAL", OID_TEXT, "{\"kind\":\"sick\"}");
	one_fails(f, "code", "X", OID_TEXT, "kind", "map", "'X'");
}

T(map_file_yaml_under_map_key)
{
	write_file("kinds_wrapped.yaml", "map:\n  CP: paid\n  RTT: rtt\n");
	one("  kind: { from: code, map_file: kinds_wrapped.yaml }\n", "code", "RTT", OID_TEXT, "{\"kind\":\"rtt\"}");
}

/* ================================================================== format */

static void fmt(const char *format, const char *in, unsigned oid, const char *want_json)
{
	char *fields = ks(xasprintf("  v: { from: c, format: %s }\n", format));
	char *want = ks(xasprintf("{\"v\":%s}", want_json));
	one(fields, "c", in, oid, want);
}

static void fmt_fails(const char *format, const char *in, unsigned oid)
{
	char *fields = ks(xasprintf("  v: { from: c, format: %s }\n", format));
	one_fails(fields, "c", in, oid, "v", "format", NULL);
}

T(format_string)
{
	fmt("string", "42", OID_INT4, "\"42\"");
	fmt("string", "12.50", OID_NUMERIC, "\"12.50\"");
	fmt("string", "t", OID_BOOL, "\"true\"");
	fmt("string", "abc", OID_TEXT, "\"abc\"");
}

T(format_int)
{
	fmt("int", "42", OID_TEXT, "42");
	fmt("int", "-7", OID_TEXT, "-7");
	fmt("int", " 42", OID_TEXT, "42");
	fmt("int", "12.0", OID_TEXT, "12");
	fmt("int", "12.00", OID_NUMERIC, "12");
	fmt("int", "t", OID_BOOL, "1");
}

T(format_int_refuses_fraction_and_words)
{
	fmt_fails("int", "12.5", OID_TEXT);
	fmt_fails("int", "abc", OID_TEXT);
	fmt_fails("int", "", OID_TEXT);
	fmt_fails("int", "12,5", OID_TEXT);
	one_fails("  v: { from: c, format: int }\n", "c", "12.5", OID_TEXT, "v", "format", "'12.5'");
}

T(format_int_out_of_range_fails)
{
	/* beyond long long: refused, never clamped (the double -> long long cast is undefined there) */
	fmt_fails("int", "9223372036854775808", OID_TEXT);
	fmt_fails("int", "-9223372036854775809", OID_TEXT);
	fmt_fails("int", "1e19", OID_TEXT);
	fmt("int", "9223372036854775807", OID_TEXT, "9223372036854775807");
}

T(format_int_never_rounds)
{
	/* a numeric(20,2) id: through a double it would come out as ...680 */
	fmt("int", "123456789012345678.00", OID_NUMERIC, "123456789012345678");
}

T(format_int_refuses_hex)
{
	fmt_fails("int", "0x10", OID_TEXT);
}

T(format_int_tolerates_trailing_spaces_like_leading)
{
	/* char(n) columns arrive padded with spaces; leading ones are already accepted */
	fmt("int", "42  ", OID_TEXT, "42");
}

T(format_number_decimal_comma)
{
	fmt("number", "12,5", OID_TEXT, "12.5");
	fmt("number", "-0,75", OID_TEXT, "-0.75");
}

T(format_number_keeps_text)
{
	fmt("number", "12.50", OID_TEXT, "12.50");
	fmt("number", "12.50", OID_NUMERIC, "12.50");
	fmt("number", "1000", OID_TEXT, "1000");
	fmt("number", "1e3", OID_TEXT, "1e3");
	fmt("number", ".5", OID_TEXT, "0.5");
	fmt("number", "-.5", OID_TEXT, "-0.5");
	fmt("number", "+2.5", OID_TEXT, "2.5");
}

T(format_number_refuses_words)
{
	fmt_fails("number", "12abc", OID_TEXT);
	fmt_fails("number", "1,234.5", OID_TEXT);
	fmt_fails("number", "abc", OID_TEXT);
	fmt_fails("number", "NaN", OID_TEXT);
	fmt_fails("number", "0x10", OID_TEXT);
}

T(format_number_output_is_valid_json)
{
	static const char *const in[] = {"5.", "+.5", "007.5", "1.e3", "00012", "12,", "-5."};
	for (size_t i = 0; i < sizeof in / sizeof in[0]; i++) {
		struct jv *v = jv_str(in[i]);
		char *why = NULL;
		if (!format_value(VF_NUMBER, &v, &why)) {
			/* refusing is fine too: only an invalid payload is not */
			free(why);
			jv_free(v);
			continue;
		}
		char *s = ks(jv_dumps(v));
		jv_free(v);
		char err[128];
		struct jv *back = jv_parse(s, strlen(s), err, sizeof err);
		if (!back)
			fail_msg("format number of \"%s\" gives %s, which is not JSON", in[i], s);
		jv_free(back);
	}
}

T(format_bool)
{
	fmt("bool", "yes", OID_TEXT, "true");
	fmt("bool", "oui", OID_TEXT, "true");
	fmt("bool", "non", OID_TEXT, "false");
	fmt("bool", "0", OID_TEXT, "false");
	fmt("bool", "1", OID_INT4, "true");
	fmt("bool", "t", OID_BOOL, "true");
	fmt_fails("bool", "maybe", OID_TEXT);
}

T(format_date_iso)
{
	fmt("date", "2026-11-25", OID_TEXT, "\"2026-11-25\"");
	fmt("date", "2026-11-25", OID_DATE, "\"2026-11-25\"");
}

T(format_date_1c_style)
{
	fmt("date", "25.11.2026", OID_TEXT, "\"2026-11-25\"");
	fmt("date", "25/11/2026", OID_TEXT, "\"2026-11-25\"");
}

T(format_date_from_timestamp)
{
	fmt("date", "2026-11-25 10:00:00+01", OID_TEXT, "\"2026-11-25\"");
	fmt("date", "2026-11-25T10:00:00Z", OID_TEXT, "\"2026-11-25\"");
	fmt("date", "2026-11-25 10:00:00.123456+01", OID_TEXT, "\"2026-11-25\"");
}

T(format_date_impossible_fails)
{
	one_fails("  d: { from: c, format: date }\n", "c", "2026-02-30", OID_TEXT, "d", "format", "2026-02-30");
	fmt_fails("date", "31.04.2026", OID_TEXT);
	fmt_fails("date", "2026-13-01", OID_TEXT);
	fmt_fails("date", "2026-00-10", OID_TEXT);
}

T(format_date_leap_years)
{
	fmt("date", "2024-02-29", OID_TEXT, "\"2024-02-29\"");
	fmt("date", "2000-02-29", OID_TEXT, "\"2000-02-29\"");
	fmt_fails("date", "2026-02-29", OID_TEXT);
	fmt_fails("date", "1900-02-29", OID_TEXT);
}

T(format_date_garbage_fails)
{
	fmt_fails("date", "yesterday", OID_TEXT);
	fmt_fails("date", "2026-11-25T25:00", OID_TEXT);
	fmt_fails("date", "2026-11-25 junk", OID_TEXT);
	fmt_fails("date", "2026-1-5", OID_TEXT);
	fmt_fails("date", "", OID_TEXT);
}

T(format_datetime_with_offset)
{
	fmt("datetime", "2026-11-25 10:00:00+01", OID_TEXT, "\"2026-11-25T10:00:00+01:00\"");
	fmt("datetime", "2026-11-25T10:00:00-05:30", OID_TEXT, "\"2026-11-25T10:00:00-05:30\"");
	fmt("datetime", "2026-11-25T10:00:00Z", OID_TEXT, "\"2026-11-25T10:00:00+00:00\"");
}

T(format_datetime_local_is_tz)
{
	/* main() set TZ=UTC */
	fmt("datetime", "2026-11-25 10:00", OID_TEXT, "\"2026-11-25T10:00:00+00:00\"");
	fmt("datetime", "25.11.2026", OID_TEXT, "\"2026-11-25T00:00:00+00:00\"");
}

T(format_datetime_local_paris)
{
	if (access("/usr/share/zoneinfo/Europe/Paris", R_OK) != 0)
		skip();
	setenv("TZ", "Europe/Paris", 1);
	tzset();
	fmt("datetime", "2026-11-25 10:00", OID_TEXT, "\"2026-11-25T10:00:00+01:00\"");
	fmt("datetime", "2026-07-01 10:00", OID_TEXT, "\"2026-07-01T10:00:00+02:00\"");
	fmt("unix", "2026-11-25", OID_TEXT, "1795561200");
	setenv("TZ", "UTC", 1);
	tzset();
}

T(format_unix)
{
	/* 2026-11-25T00:00:00Z = 1795564800; 10:00Z = 1795600800 */
	fmt("unix", "2026-11-25", OID_TEXT, "1795564800");
	fmt("unix", "2026-11-25T10:00:00Z", OID_TEXT, "1795600800");
	fmt("unix", "2026-11-25T10:00:00+01:00", OID_TEXT, "1795597200");
	fmt("unix", "25.11.2026 10:00", OID_TEXT, "1795600800");
}

T(format_unix_int_column_kept)
{
	fmt("unix", "1795564800", OID_INT4, "1795564800");
}

T(format_null_passes_through)
{
	fmt("date", NULL, OID_TEXT, "null");
	fmt("int", NULL, OID_TEXT, "null");
	fmt("bool", NULL, OID_TEXT, "null");
}

/* ================================================================== default, required */

T(default_when_null)
{
	one("  v: { from: c, default: \"n/a\" }\n", "c", NULL, OID_TEXT, "{\"v\":\"n/a\"}");
	one("  v: { from: c, default: \"n/a\" }\n", "c", "x", OID_TEXT, "{\"v\":\"x\"}");
}

T(default_keeps_yaml_type)
{
	one("  v: { from: c, default: 0 }\n", "c", NULL, OID_TEXT, "{\"v\":0}");
	one("  v: { from: c, default: false }\n", "c", NULL, OID_TEXT, "{\"v\":false}");
}

T(default_without_source)
{
	one("  v: { default: 5 }\n", NULL, NULL, 0, "{\"v\":5}");
}

T(default_after_nullify_empty)
{
	one("  v: { from: c, transform: [nullify_empty], default: none }\n", "c", "  ", OID_TEXT, "{\"v\":\"none\"}");
}

T(required_null_fails)
{
	one_fails("  first_name: { from: c, required: true }\n", "c", NULL, OID_TEXT, "first_name", "required",
		  "missing");
}

T(required_blank_after_trim_fails)
{
	one_fails("  first_name: { from: c, transform: [trim], required: true }\n", "c", " \u00a0 ", OID_TEXT,
		  "first_name", "required", "empty");
}

T(required_empty_string_fails)
{
	one_fails("  first_name: { from: c, required: true }\n", "c", "", OID_TEXT, "first_name", "required", NULL);
}

T(required_satisfied_by_default)
{
	one("  v: { from: c, default: x, required: true }\n", "c", NULL, OID_TEXT, "{\"v\":\"x\"}");
}

T(required_false_allows_null)
{
	one("  v: { from: c, required: false }\n", "c", NULL, OID_TEXT, "{\"v\":null}");
}

T(required_non_string_values_pass)
{
	one("  v: { from: c, required: true }\n", "c", "0", OID_INT4, "{\"v\":0}");
	one("  v: { from: c, required: true }\n", "c", "f", OID_BOOL, "{\"v\":false}");
}

/* ================================================================== check, max_length */

#define EMAIL "  email: { from: c, check: email }\n"

T(check_email_valid)
{
	one(EMAIL, "c", "jean.dupont@example.fr", OID_TEXT, "{\"email\":\"jean.dupont@example.fr\"}");
	one(EMAIL, "c", "a+tag@sub.example.co.uk", OID_TEXT, "{\"email\":\"a+tag@sub.example.co.uk\"}");
}

T(check_email_invalid_without_echo)
{
	static const char *const bad[] = {"jean@@example.fr", "jean@example", "jean", "@example.fr",
					  "jean.@example.fr", "jean@-x.fr", "jean@x.f", "je an@x.fr"};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		struct mapping *m = load_ok(EMAIL);
		struct rowb rb;
		row_init(&rb);
		setc(m, &rb, "c", bad[i], OID_TEXT);
		struct mapped *out = new_mapped();
		int rc = eval(m, &rb, out);
		if (rc != 1)
			fail_msg("e-mail \"%s\" accepted", bad[i]);
		assert_string_equal(out->err.rule, "check");
		assert_string_equal(out->err.path, "email");
		assert_null(strstr(out->err.reason, bad[i]));
	}
}

T(check_email_after_transforms)
{
	one("  email: { from: c, transform: [trim, lower], check: email }\n", "c", " JEAN@EXAMPLE.FR ", OID_TEXT,
	    "{\"email\":\"jean@example.fr\"}");
}

T(check_email_direct)
{
	assert_true(check_email("a@b.fr"));
	assert_false(check_email("a@b.c"));
	assert_false(check_email("a..b@c.fr"));
	assert_false(check_email(""));
}

T(check_nir_valid_keeps_value_and_records_nir)
{
	struct mapping *m = load_ok("  ssn: { from: c, check: nir }\n");
	assert_true(m->has_ssn_field);
	struct rowb rb;
	row_init(&rb);
	setc(m, &rb, "c", "1 85 05 78 006 084 91", OID_TEXT);
	struct mapped *out = new_mapped();
	assert_int_equal(eval(m, &rb, out), 0);
	payload_is(out, "{\"ssn\":\"1 85 05 78 006 084 91\"}");
	assert_true(out->has_nir);
	assert_string_equal(out->nir, "185057800608491");
}

T(check_nir_invalid_without_echo)
{
	struct mapping *m = load_ok("  ssn: { from: c, check: nir }\n");
	struct rowb rb;
	row_init(&rb);
	setc(m, &rb, "c", "1 85 05 78 006 084 90", OID_TEXT);
	struct mapped *out = new_mapped();
	assert_int_equal(eval(m, &rb, out), 1);
	assert_string_equal(out->err.rule, "check");
	assert_string_equal(out->err.path, "ssn");
	assert_non_null(strstr(out->err.reason, "key"));
	assert_null(strstr(out->err.reason, "006"));
	assert_null(strstr(out->err.reason, "084"));
	assert_false(out->has_nir);
}

T(check_regex)
{
	const char *f = "  code: { from: c, check: { regex: \"^[A-Z]{2}[0-9]{3}$\" } }\n";
	one(f, "c", "AB123", OID_TEXT, "{\"code\":\"AB123\"}");
	one_fails(f, "c", "AB12", OID_TEXT, "code", "check", NULL);
	one_fails(f, "c", "ab123", OID_TEXT, "code", "check", NULL);
}

T(check_null_passes)
{
	one(EMAIL, "c", NULL, OID_TEXT, "{\"email\":null}");
	one("  ssn: { from: c, check: nir }\n", "c", NULL, OID_TEXT, "{\"ssn\":null}");
}

T(max_length_counts_characters)
{
	/* "Иванов" is 6 characters in 12 bytes, "Ивано" 5 in 10 */
	const char *f = "  last_name: { from: c, max_length: 5 }\n";
	one(f, "c", "Ивано", OID_TEXT, "{\"last_name\":\"Ивано\"}");
	one_fails(f, "c", "Иванов", OID_TEXT, "last_name", "max_length", "6 characters");
}

T(max_length_exact_limit_and_emoji)
{
	one("  v: { from: c, max_length: 2 }\n", "c", "😀😀", OID_TEXT, "{\"v\":\"😀😀\"}");
	one("  v: { from: c, max_length: 3 }\n", "c", "Éé!", OID_TEXT, "{\"v\":\"Éé!\"}");
}

/* ================================================================== omit_null, nested */

T(omit_null_drops_key)
{
	one("  a: { from: c, omit_null: true }\n  b: { value: 1 }\n", "c", NULL, OID_TEXT, "{\"b\":1}");
}

T(omit_null_keeps_value)
{
	one("  a: { from: c, omit_null: true }\n", "c", "x", OID_TEXT, "{\"a\":\"x\"}");
}

T(null_is_sent_without_omit_null)
{
	one("  a: { from: c }\n  b: { value: 1 }\n", "c", NULL, OID_TEXT, "{\"a\":null,\"b\":1}");
}

#define POSITION                                                                                                   \
	"  first_name: { from: first_name }\n"                                                                     \
	"  position:\n"                                                                                            \
	"    department_id:  { lookup: { resource: departments, match: name }, from: department_name }\n"           \
	"    position_id:    { lookup: { resource: positions, match: name }, from: job_title }\n"                   \
	"    effective_from: { from: hire_date, format: date }\n"

T(nested_object_present)
{
	struct mapping *m = load_ok(POSITION);
	assert_non_null(mapping_field(m, "position.department_id"));
	assert_true(mapping_field(m, "position")->nested);
	struct rowb rb;
	row_init(&rb);
	setc(m, &rb, "first_name", "Jean", OID_TEXT);
	setc(m, &rb, "department_name", "Sales", OID_TEXT);
	setc(m, &rb, "job_title", "Engineer", OID_TEXT);
	setc(m, &rb, "hire_date", "25.11.2026", OID_TEXT);
	struct mapped *out = new_mapped();
	assert_int_equal(eval(m, &rb, out), 0);
	payload_is(out, "{\"first_name\":\"Jean\",\"position\":{\"department_id\":10,\"position_id\":20,"
			 "\"effective_from\":\"2026-11-25\"}}");
}

T(nested_all_null_left_out)
{
	struct mapping *m = load_ok(POSITION);
	struct rowb rb;
	row_init(&rb);
	setc(m, &rb, "first_name", "Jean", OID_TEXT);
	struct mapped *out = new_mapped();
	assert_int_equal(eval(m, &rb, out), 0);
	payload_is(out, "{\"first_name\":\"Jean\"}");
}

T(nested_partly_null_kept)
{
	struct mapping *m = load_ok(POSITION);
	struct rowb rb;
	row_init(&rb);
	setc(m, &rb, "department_name", "Sales", OID_TEXT);
	struct mapped *out = new_mapped();
	assert_int_equal(eval(m, &rb, out), 0);
	payload_is(out, "{\"first_name\":null,\"position\":{\"department_id\":10,\"position_id\":null,"
			 "\"effective_from\":null}}");
}

T(nested_failure_has_dotted_path)
{
	struct mapping *m = load_ok(POSITION);
	struct rowb rb;
	row_init(&rb);
	setc(m, &rb, "first_name", "Jean", OID_TEXT);
	setc(m, &rb, "department_name", "Nowhere", OID_TEXT);
	struct mapped *out = new_mapped();
	assert_int_equal(eval(m, &rb, out), 1);
	assert_string_equal(out->err.path, "position.department_id");
	assert_string_equal(out->err.rule, "lookup");
	assert_non_null(strstr(out->err.reason, "Nowhere"));
}

T(nested_deferred_reference)
{
	struct mapping *m = load_ok("  assignment:\n    user_id: { ref: \"erp:{holder}\" }\n    issued_on: { from: issued }\n");
	struct rowb rb;
	row_init(&rb);
	setc(m, &rb, "holder", "E2", OID_TEXT);
	setc(m, &rb, "issued", "2026-11-25", OID_DATE);
	struct mapped *out = new_mapped();
	assert_int_equal(eval(m, &rb, out), 2);
	assert_string_equal(out->defer_field, "assignment.user_id");
}

T(nested_asset_without_holder_has_no_assignment)
{
	struct mapping *m = load_ok("  code: { from: code }\n  assignment:\n    user_id: { ref: \"erp:{holder}\" }\n"
				    "    issued_on: { from: issued, format: date }\n");
	struct rowb rb;
	row_init(&rb);
	setc(m, &rb, "code", "LAPTOP-1", OID_TEXT);
	struct mapped *out = new_mapped();
	assert_int_equal(eval(m, &rb, out), 0);
	payload_is(out, "{\"code\":\"LAPTOP-1\"}");
}

/* ================================================================== evaluation order */

T(order_transform_before_map)
{
	one("  gender: { from: sex, transform: [trim, upper], map: { M: male } }\n", "sex", " m ", OID_TEXT,
	    "{\"gender\":\"male\"}");
}

T(order_map_before_format)
{
	one("  d: { from: code, map: { A: \"25.11.2026\" }, format: date }\n", "code", "A", OID_TEXT,
	    "{\"d\":\"2026-11-25\"}");
}

T(order_format_before_default)
{
	/* the default is not formatted: "none" would fail format int */
	one("  n: { from: c, format: int, default: none }\n", "c", NULL, OID_TEXT, "{\"n\":\"none\"}");
}

T(order_default_before_required)
{
	one("  n: { from: c, transform: [nullify_empty], default: \"-\", required: true }\n", "c", " ", OID_TEXT,
	    "{\"n\":\"-\"}");
}

T(order_default_before_check)
{
	one_fails("  email: { from: c, default: not-an-email, check: email }\n", "c", NULL, OID_TEXT, "email", "check",
		  NULL);
}

T(order_format_before_max_length)
{
	one_fails("  n: { from: c, format: string, max_length: 5 }\n", "c", "123456", OID_INT4, "n", "max_length", NULL);
}

T(order_transform_before_required)
{
	one_fails("  n: { from: c, transform: [digits], required: true }\n", "c", "abc", OID_TEXT, "n", "required",
		  "empty");
}

/* ================================================================== error reporting */

T(first_failing_field_reported_all_counted)
{
	struct mapping *m = load_ok("  a: { from: a, required: true }\n"
				    "  position:\n"
				    "    department_id: { lookup: { resource: departments }, from: dept }\n"
				    "  c: { from: c, format: int }\n"
				    "  ok: { value: 1 }\n");
	struct rowb rb;
	row_init(&rb);
	setc(m, &rb, "dept", "Nowhere", OID_TEXT);
	setc(m, &rb, "c", "abc", OID_TEXT);
	struct mapped *out = new_mapped();
	assert_int_equal(eval(m, &rb, out), 1);
	assert_string_equal(out->err.path, "a");
	assert_string_equal(out->err.rule, "required");
	assert_int_equal(out->nerrors, 3);
	assert_null(out->payload);
}

T(first_failure_nested_path)
{
	struct mapping *m = load_ok("  a: { from: a }\n"
				    "  position:\n"
				    "    department_id: { lookup: { resource: departments }, from: dept }\n"
				    "  c: { from: c, format: int }\n");
	struct rowb rb;
	row_init(&rb);
	setc(m, &rb, "a", "fine", OID_TEXT);
	setc(m, &rb, "dept", "Nowhere", OID_TEXT);
	setc(m, &rb, "c", "abc", OID_TEXT);
	struct mapped *out = new_mapped();
	assert_int_equal(eval(m, &rb, out), 1);
	assert_string_equal(out->err.path, "position.department_id");
	assert_string_equal(out->err.rule, "lookup");
	assert_int_equal(out->nerrors, 2);
}

T(success_has_no_error)
{
	struct mapping *m = load_ok("  a: { value: 1 }\n");
	struct rowb rb;
	row_init(&rb);
	struct mapped *out = new_mapped();
	assert_int_equal(eval(m, &rb, out), 0);
	assert_null(out->err.path);
	assert_int_equal(out->nerrors, 0);
	assert_null(out->defer_reason);
}

/* ================================================================== whole files */

T(example_employee_mapping_of_the_spec)
{
	struct mapping *m = load_text_ok(
		"connector: peopleforce\n"
		"entity: employees\n"
		"direction: push\n"
		"depends_on: [ ]\n"
		"source:\n"
		"  table: erp.employees\n"
		"  key: personnel_number\n"
		"  where: \"company = 'FR01'\"\n"
		"terminate:\n"
		"  when: \"dismissal_date IS NOT NULL\"\n"
		"  fields: { effective_from: { from: dismissal_date, format: date }, termination_type_id: { value: 3 } }\n"
		"fields:\n"
		"  employee_number: { from: personnel_number }\n"
		"  first_name:      { from: first_name, transform: [trim], required: true }\n"
		"  last_name:       { from: last_name, transform: [trim], required: true }\n"
		"  email:           { from: email, transform: [trim, lower], check: email }\n"
		"  hired_on:        { from: hire_date, format: date }\n"
		"  gender:          { from: sex, map: { M: male, F: female }, unmapped: null }\n"
		"  job_title:       { template: \"{job_title} ({grade})\" }\n"
		"  position:\n"
		"    department_id:  { lookup: { resource: departments, match: name }, from: department_name }\n"
		"    position_id:    { lookup: { resource: positions, match: name }, from: job_title }\n"
		"    effective_from: { from: hire_date, format: date }\n");
	assert_string_equal(m->connector, "peopleforce");
	assert_string_equal(m->entity, "employees");
	assert_int_equal(m->dir, DIR_PUSH);
	assert_string_equal(m->key, "personnel_number");
	assert_string_equal(m->cols[0], "personnel_number");
	assert_string_equal(m->term_when, "dismissal_date IS NOT NULL");
	assert_non_null(mapping_field(m, "terminate.effective_from"));
	assert_non_null(mapping_field(m, "position.position_id"));

	struct rowb rb;
	row_init(&rb);
	setc(m, &rb, "personnel_number", "00042", OID_TEXT);
	setc(m, &rb, "first_name", " Élodie\u00a0", OID_TEXT);
	setc(m, &rb, "last_name", "Dupré", OID_TEXT);
	setc(m, &rb, "email", " Elodie.Dupre@Example.FR ", OID_TEXT);
	setc(m, &rb, "hire_date", "2026-11-25", OID_DATE);
	setc(m, &rb, "sex", "F", OID_TEXT);
	setc(m, &rb, "job_title", "Engineer", OID_TEXT);
	setc(m, &rb, "grade", "7", OID_INT4);
	setc(m, &rb, "department_name", "Sales", OID_TEXT);
	setc(m, &rb, "dismissal_date", "2026-12-31", OID_DATE);
	struct mapped *out = new_mapped();
	assert_int_equal(eval(m, &rb, out), 0);
	payload_is(out, "{\"employee_number\":\"00042\",\"first_name\":\"Élodie\",\"last_name\":\"Dupré\","
			 "\"email\":\"elodie.dupre@example.fr\",\"hired_on\":\"2026-11-25\",\"gender\":\"female\","
			 "\"job_title\":\"Engineer (7)\",\"position\":{\"department_id\":10,\"position_id\":20,"
			 "\"effective_from\":\"2026-11-25\"}}");

	struct row r = {.n = m->ncols, .vals = rb.vals, .lens = rb.lens, .oids = rb.oids};
	out = new_mapped();
	assert_int_equal(mapping_eval(m, m->term_fields, m->nterm, &r, &ENV, out), 0);
	payload_is(out, "{\"effective_from\":\"2026-12-31\",\"termination_type_id\":3}");
}

T(name_is_file_name_unless_set)
{
	char *path = write_file("absences.yaml", HEAD "  a: { value: 1 }\n");
	struct diag *d = keep(xcalloc(1, sizeof *d), free_diag);
	struct mapping *m = keep(mapping_load(path, d), free_mapping);
	assert_int_equal(d->errors, 0);
	assert_string_equal(m->name, "absences");
	path = write_file("other.yaml", "name: leaves\n" HEAD "  a: { value: 1 }\n");
	m = keep(mapping_load(path, d), free_mapping);
	assert_int_equal(d->errors, 0);
	assert_string_equal(m->name, "leaves");
}

T(mapping_hash_is_sha256_of_file)
{
	const char *text = HEAD "  a: { value: 1 }\n";
	char *path = write_file("hashme.yaml", text);
	struct diag *d = keep(xcalloc(1, sizeof *d), free_diag);
	struct mapping *m = keep(mapping_load(path, d), free_mapping);
	assert_non_null(m);
	char hex[65];
	sha256_hex(text, strlen(text), hex);
	assert_string_equal(m->mapping_hash, hex);
}

T(pull_mapping_paths_and_ref_back)
{
	write_file("pull_kinds.csv", "Congés payés,CP\n");
	struct mapping *m = load_text_ok("connector: personio\n"
					 "entity: absences\n"
					 "direction: pull\n"
					 "filter: { status: approved }\n"
					 "target: { table: erp_inbound.absences, key: platform_id }\n"
					 "fields:\n"
					 "  platform_id:      { from: id }\n"
					 "  personnel_number: { from: employee.id, ref_back: employees }\n"
					 "  kind:             { from: time_off_type.name, map_file: pull_kinds.csv }\n"
					 "  date_from:        { from: \"periods[0].start\", format: date }\n"
					 "  status:           { from: status }\n");
	assert_int_equal(m->dir, DIR_PULL);
	assert_string_equal(ks(jv_dumps(m->filter)), "{\"status\":\"approved\"}");
	char err[128];
	const char *rec = "{\"id\":9,\"employee\":{\"id\":501},\"time_off_type\":{\"name\":\"Congés payés\"},"
			  "\"periods\":[{\"start\":\"2026-11-25T00:00:00Z\"}],\"status\":\"approved\"}";
	struct jv *record = keep(jv_parse(rec, strlen(rec), err, sizeof err), free_jv);
	assert_non_null(record);
	struct row r = {.record = record};
	struct mapped *out = new_mapped();
	assert_int_equal(mapping_eval(m, m->fields, m->nfields, &r, &ENV, out), 0);
	payload_is(out, "{\"platform_id\":9,\"personnel_number\":\"E1\",\"kind\":\"CP\",\"date_from\":\"2026-11-25\","
			 "\"status\":\"approved\"}");
	jv_free(jv_obj_take(jv_obj_get(record, "employee"), "id"));
	jv_obj_set(jv_obj_get(record, "employee"), "id", jv_int(999));
	out = new_mapped();
	assert_int_equal(mapping_eval(m, m->fields, m->nfields, &r, &ENV, out), 1);
	assert_string_equal(out->err.path, "personnel_number");
	assert_string_equal(out->err.rule, "ref_back");
}

/* ================================================================== load errors */

T(load_unknown_rule_suggests_from)
{
	const char *line = "  hired_on: { fromm: hire_date, format: date }";
	char *text = ks(xasprintf(HEAD "%s\n", line));
	struct diag *d;
	char *path;
	struct mapping *m = load_bad(text, &d, &path);
	assert_non_null(m);
	assert_msg_at(d, path, FIELD_LINE, col_of(line, "fromm"),
		      "field 'hired_on': unknown rule 'fromm' (did you mean 'from'?)");
	assert_string_equal(find_msg(d, "unknown rule")->text,
			    "field 'hired_on': unknown rule 'fromm' (did you mean 'from'?)");
}

T(load_unknown_transform)
{
	const char *line = "  email: { from: email, transform: [trim, lowr] }";
	char *text = ks(xasprintf(HEAD "%s\n", line));
	struct diag *d;
	char *path;
	struct mapping *m = load_bad(text, &d, &path);
	assert_non_null(m);
	assert_int_equal(d->errors, 1);
	assert_msg_at(d, path, FIELD_LINE, col_of(line, "lowr"),
		      "field 'email': unknown transform 'lowr' (did you mean 'lower'?)");
}

T(load_unknown_transform_without_suggestion)
{
	const char *line = "  email: { from: email, transform: [capitalize] }";
	char *text = ks(xasprintf(HEAD "%s\n", line));
	struct diag *d;
	char *path;
	struct mapping *m = load_bad(text, &d, &path);
	assert_non_null(m);
	const struct diag_msg *msg = find_msg(d, "unknown transform 'capitalize'");
	assert_null(strstr(msg->text, "did you mean"));
}

T(load_unknown_format_suggests)
{
	const char *line = "  hired_on: { from: hire_date, format: dat }";
	char *text = ks(xasprintf(HEAD "%s\n", line));
	struct diag *d;
	char *path;
	struct mapping *m = load_bad(text, &d, &path);
	assert_non_null(m);
	assert_int_equal(d->errors, 1);
	assert_msg_at(d, path, FIELD_LINE, col_of(line, "dat }"),
		      "field 'hired_on': unknown format 'dat' (did you mean 'date'?)");
}

T(load_two_value_sources)
{
	const char *line = "  x: { from: a, value: 1 }";
	char *text = ks(xasprintf(HEAD "%s\n", line));
	struct diag *d;
	char *path;
	struct mapping *m = load_bad(text, &d, &path);
	assert_non_null(m);
	assert_int_equal(d->errors, 1);
	assert_msg_at(d, path, FIELD_LINE, col_of(line, "from"),
		      "field 'x': a field takes its value from one of from, value, template, ref or lookup, not several");
}

T(load_template_and_ref_are_two_sources)
{
	const char *line = "  x: { template: \"{a}\", ref: \"erp:{b}\" }";
	char *text = ks(xasprintf(HEAD "%s\n", line));
	struct diag *d;
	char *path;
	struct mapping *m = load_bad(text, &d, &path);
	assert_non_null(m);
	find_msg(d, "field 'x': a field takes its value from one of");
}

T(load_lookup_without_from)
{
	const char *line = "  dep: { lookup: { resource: departments } }";
	char *text = ks(xasprintf(HEAD "%s\n", line));
	struct diag *d;
	char *path;
	struct mapping *m = load_bad(text, &d, &path);
	assert_non_null(m);
	assert_int_equal(d->errors, 1);
	assert_msg_at(d, path, FIELD_LINE, col_of(line, "lookup"),
		      "field 'dep': lookup needs 'from:' to give the name to look up");
}

T(load_lookup_unknown_key_suggests)
{
	const char *line = "  dep: { lookup: { resource: departments, mach: name }, from: d }";
	char *text = ks(xasprintf(HEAD "%s\n", line));
	struct diag *d;
	char *path;
	struct mapping *m = load_bad(text, &d, &path);
	assert_non_null(m);
	assert_msg_at(d, path, FIELD_LINE, col_of(line, "mach"), "unknown key 'mach' (did you mean 'match'?)");
}

T(load_unknown_top_level_key_suggests)
{
	char *text = ks(xasprintf("descriptoin: employees\n" HEAD "  a: { value: 1 }\n"));
	struct diag *d;
	char *path;
	struct mapping *m = load_bad(text, &d, &path);
	assert_non_null(m);
	assert_int_equal(d->errors, 1);
	assert_msg_at(d, path, 1, 1, "mapping: unknown key 'descriptoin' (did you mean 'description'?)");
}

T(load_missing_source_key)
{
	const char *src = "source: { table: erp.employees }";
	char *text = ks(xasprintf("connector: pf\nentity: employees\n%s\nfields:\n  a: { value: 1 }\n", src));
	struct diag *d;
	char *path;
	struct mapping *m = load_bad(text, &d, &path);
	assert_non_null(m);
	assert_int_equal(d->errors, 1);
	assert_msg_at(d, path, 3, col_of(src, "{"), "source: needs 'key:' (the column holding the ERP's own id)");
}

T(load_missing_connector_entity_fields)
{
	struct diag *d;
	char *path;
	struct mapping *m = load_bad("source: { table: t, key: id }\n", &d, &path);
	assert_non_null(m);
	assert_int_equal(d->errors, 3);
	find_msg(d, "missing 'connector:'");
	find_msg(d, "missing 'entity:'");
	find_msg(d, "missing 'fields:'");
}

T(load_bad_regex)
{
	const char *line = "  code: { from: c, check: { regex: \"[a-\" } }";
	char *text = ks(xasprintf(HEAD "%s\n", line));
	struct diag *d;
	char *path;
	struct mapping *m = load_bad(text, &d, &path);
	assert_non_null(m);
	assert_int_equal(d->errors, 1);
	const struct diag_msg *msg = find_msg(d, "field 'code': check regex: ");
	assert_int_equal(msg->line, FIELD_LINE);
	assert_int_equal(msg->col, col_of(line, "\"[a-"));
	assert_true(strlen(msg->text) > strlen("field 'code': check regex: "));
}

T(load_unknown_check_suggests)
{
	const char *line = "  email: { from: e, check: emial }";
	char *text = ks(xasprintf(HEAD "%s\n", line));
	struct diag *d;
	char *path;
	struct mapping *m = load_bad(text, &d, &path);
	assert_non_null(m);
	assert_msg_at(d, path, FIELD_LINE, col_of(line, "emial"), "(did you mean 'email'?)");
}

T(load_map_file_missing_csv)
{
	const char *line = "  kind: { from: code, map_file: nope.csv }";
	char *text = ks(xasprintf(HEAD "%s\n", line));
	struct diag *d;
	char *path;
	struct mapping *m = load_bad(text, &d, &path);
	assert_non_null(m);
	assert_int_equal(d->errors, 1);
	assert_msg_at(d, path, FIELD_LINE, col_of(line, "nope.csv"),
		      "field 'kind': map_file nope.csv: No such file or directory");
}

T(load_map_file_missing_yaml_points_at_mapping)
{
	/* Like the CSV case: the mapping file's line:col, the field, and the file name. */
	const char *line = "  kind: { from: code, map_file: nope.yaml }";
	char *text = ks(xasprintf(HEAD "%s\n", line));
	struct diag *d;
	char *path;
	struct mapping *m = load_bad(text, &d, &path);
	assert_non_null(m);
	assert_int_equal(d->errors, 1);
	assert_msg_at(d, path, FIELD_LINE, col_of(line, "nope.yaml"), "field 'kind'");
	assert_non_null(strstr(d->msgs[0].text, "nope.yaml"));
}

T(load_map_file_csv_bad_line_position)
{
	/* blank lines count: the bad line is line 4 of the CSV file */
	char *csv = write_file("kinds_bad.csv", "CP,1\n\n\nnocomma\n");
	char *text = ks(xasprintf(HEAD "  kind: { from: code, map_file: kinds_bad.csv }\n"));
	struct diag *d;
	char *path;
	struct mapping *m = load_bad(text, &d, &path);
	assert_non_null(m);
	assert_int_equal(d->errors, 1);
	assert_msg_at(d, csv, 4, 1, "expected code,value (used by field 'kind' of");
}

T(load_map_file_yaml_not_a_map)
{
	char *mf = write_file("list.yaml", "- a\n- b\n");
	char *text = ks(xasprintf(HEAD "  kind: { from: code, map_file: list.yaml }\n"));
	struct diag *d;
	char *path;
	struct mapping *m = load_bad(text, &d, &path);
	assert_non_null(m);
	assert_int_equal(d->errors, 1);
	assert_msg_at(d, mf, 1, 1, "a map_file holds a map of code: value");
}

T(load_map_and_map_file_both)
{
	write_file("both.csv", "A,1\n");
	const char *line = "  kind: { from: code, map: { A: 1 }, map_file: both.csv }";
	char *text = ks(xasprintf(HEAD "%s\n", line));
	struct diag *d;
	char *path;
	struct mapping *m = load_bad(text, &d, &path);
	assert_non_null(m);
	assert_msg_at(d, path, FIELD_LINE, col_of(line, "both.csv"), "field 'kind': use map or map_file, not both");
}

T(load_ref_without_scheme)
{
	const char *line = "  manager: { ref: \"{manager}\" }";
	char *text = ks(xasprintf(HEAD "%s\n", line));
	struct diag *d;
	char *path;
	struct mapping *m = load_bad(text, &d, &path);
	assert_non_null(m);
	assert_msg_at(d, path, FIELD_LINE, col_of(line, "\"{"), "field 'manager': a ref starts with erp:, ssn: or troops:");
}

T(load_template_unmatched_braces)
{
	struct diag *d;
	char *path;
	char *text = ks(xasprintf(HEAD "  a: { template: \"x}\" }\n  b: { template: \"{x\" }\n  c: { template: \"{}\" }\n"));
	struct mapping *m = load_bad(text, &d, &path);
	assert_non_null(m);
	find_msg(d, "field 'a': template: unmatched '}'");
	find_msg(d, "field 'b': template: '{' without a closing '}'");
	find_msg(d, "field 'c': template: empty placeholder");
}

T(load_template_error_is_one_error)
{
	/* the field does give a value (a template): a second "no value" error only misleads */
	const char *line = "  a: { template: \"{first_name\" }";
	char *text = ks(xasprintf(HEAD "%s\n", line));
	struct diag *d;
	char *path;
	struct mapping *m = load_bad(text, &d, &path);
	assert_non_null(m);
	assert_msg_at(d, path, FIELD_LINE, col_of(line, "\"{"), "field 'a': template: '{' without a closing '}'");
	if (d->errors != 1) {
		char buf[1024];
		dump_diag(d, buf, sizeof buf);
		fail_msg("one mistake, several errors:%s", buf);
	}
}

T(load_unknown_rule_is_one_error)
{
	/* The example of diag.h and mappings/README.md §5.1: one typo, one message */
	const char *line = "  hired_on: { fromm: hire_date, format: date }";
	char *text = ks(xasprintf(HEAD "%s\n", line));
	struct diag *d;
	char *path;
	struct mapping *m = load_bad(text, &d, &path);
	assert_non_null(m);
	if (d->errors != 1) {
		char buf[1024];
		dump_diag(d, buf, sizeof buf);
		fail_msg("one typo, several errors:%s", buf);
	}
}

T(load_unmapped_typo_suggests)
{
	const char *line = "  g: { from: s, map: { M: male }, unmapped: nul }";
	char *text = ks(xasprintf(HEAD "%s\n", line));
	struct diag *d;
	char *path;
	struct mapping *m = load_bad(text, &d, &path);
	assert_non_null(m);
	assert_msg_at(d, path, FIELD_LINE, col_of(line, "nul }"), "(did you mean 'null'?)");
}

T(load_unmapped_without_map_warns)
{
	const char *line = "  g: { from: s, unmapped: keep }";
	char *text = ks(xasprintf(HEAD "%s\n", line));
	struct diag *d;
	char *path;
	struct mapping *m = load_bad(text, &d, &path);
	assert_non_null(m);
	assert_int_equal(d->errors, 0);
	assert_int_equal(d->warnings, 1);
	const struct diag_msg *msg = find_msg(d, "'unmapped' does nothing without map or map_file");
	assert_false(msg->is_error);
}

T(load_required_must_be_boolean)
{
	const char *line = "  a: { from: a, required: yes }";
	char *text = ks(xasprintf(HEAD "%s\n", line));
	struct diag *d;
	char *path;
	struct mapping *m = load_bad(text, &d, &path);
	assert_non_null(m);
	assert_msg_at(d, path, FIELD_LINE, col_of(line, "yes"), "field 'a': required is true or false, found a string");
}

T(load_max_length_must_be_positive)
{
	char *text = ks(xasprintf(HEAD "  a: { from: a, max_length: 0 }\n  b: { from: b, max_length: \"5\" }\n"));
	struct diag *d;
	char *path;
	struct mapping *m = load_bad(text, &d, &path);
	assert_non_null(m);
	assert_int_equal(d->errors, 2);
	find_msg(d, "field 'a': max_length is a positive whole number");
	find_msg(d, "field 'b': max_length is a positive whole number");
}

T(load_field_without_value)
{
	const char *line = "  a: { required: true }";
	char *text = ks(xasprintf(HEAD "%s\n", line));
	struct diag *d;
	char *path;
	struct mapping *m = load_bad(text, &d, &path);
	assert_non_null(m);
	assert_msg_at(d, path, FIELD_LINE, 3, "field 'a': no value: give one of from, value, template, ref or lookup");
}

T(load_nested_two_levels_refused)
{
	char *text = ks(xasprintf(HEAD "  a:\n    b:\n      c: { value: 1 }\n"));
	struct diag *d;
	char *path;
	struct mapping *m = load_bad(text, &d, &path);
	assert_non_null(m);
	assert_msg_at(d, path, FIELD_LINE + 1, 5, "field 'a.b': nested objects go one level deep");
}

T(load_yaml_syntax_error)
{
	struct diag *d;
	char *path;
	char *text = ks(xasprintf(HEAD "  a: { from: a\n"));
	struct mapping *m = load_bad(text, &d, &path);
	assert_null(m);
	assert_int_equal(d->errors, 1);
	assert_string_equal(d->msgs[0].file, path);
	assert_true(d->msgs[0].line >= FIELD_LINE);
	assert_non_null(strstr(d->msgs[0].text, "YAML syntax"));
}

T(load_missing_file)
{
	struct diag *d = keep(xcalloc(1, sizeof *d), free_diag);
	struct mapping *m = mapping_load("/nonexistent/hrsync/x.yaml", d);
	assert_null(m);
	assert_int_equal(d->errors, 1);
}

T(load_three_problems_three_errors)
{
	const char *l1 = "  email: { from: email, transform: [trim, lowr] }";
	const char *l2 = "  hired_on: { from: hire_date, format: dat }";
	char *text = ks(xasprintf("descriptoin: x\n" HEAD "%s\n%s\n", l1, l2));
	struct diag *d;
	char *path;
	struct mapping *m = load_bad(text, &d, &path);
	assert_non_null(m);
	assert_int_equal(d->errors, 3);
	assert_msg_at(d, path, 1, 1, "unknown key 'descriptoin'");
	assert_msg_at(d, path, FIELD_LINE + 1, col_of(l1, "lowr"), "unknown transform 'lowr'");
	assert_msg_at(d, path, FIELD_LINE + 2, col_of(l2, "dat }"), "unknown format 'dat'");
}

T(load_problems_in_every_field_reported)
{
	const char *text = HEAD "  a: { fromm: x }\n  b: { from: b, format: nope }\n  c: { from: c, transform: [zap] }\n"
			   "  d: { from: d, check: { regex: \"(\" } }\n";
	struct diag *d;
	char *path;
	struct mapping *m = load_bad(text, &d, &path);
	assert_non_null(m);
	find_msg(d, "field 'a': unknown rule 'fromm'");
	find_msg(d, "field 'b': unknown format 'nope'");
	find_msg(d, "field 'c': unknown transform 'zap'");
	find_msg(d, "field 'd': check regex");
	assert_true(d->errors >= 4);
}

/* ---- issue 19 (9): a mapping name: with a newline forged journal lines ---- */

T(load_mapping_name_with_a_newline_refused_and_shown_escaped)
{
	const char *text = "name: \"emp\\nrun=1 mapping=x summary created=0\"\nconnector: pf\nentity: employees\n"
			   "source: { table: erp.employees, key: id }\nfields:\n  a: { from: a }\n";
	struct diag *d;
	char *path;
	load_bad(text, &d, &path);
	assert_int_equal(d->errors, 1);
	assert_msg_at(d, path, 1, 7, "name: 'emp\\nrun=1 mapping=x summary created=0' has a character other than a-z, 0-9, _ and -");
	assert_null(strchr(d->msgs[0].text, '\n'));
}

T(load_mapping_name_upper_case_or_too_long_refused)
{
	struct diag *d;
	char *path;
	load_bad("name: Employees\nconnector: pf\nentity: employees\nsource: { table: t, key: id }\nfields:\n  a: { from: a }\n",
		 &d, &path);
	assert_msg_at(d, path, 1, 7, "name: 'Employees' has a character other than a-z, 0-9, _ and -; a mapping name is 1 to 63 "
				     "of a-z, 0-9, _ and - (e.g. employees)");
	char *text = ks(xasprintf("name: %064d\nconnector: pf\nentity: employees\nsource: { table: t, key: id }\n"
				  "fields:\n  a: { from: a }\n", 0));
	load_bad(text, &d, &path);
	find_msg(d, "is longer than 63 characters");
}

T(load_mapping_name_of_the_allowed_characters_kept)
{
	struct mapping *m = load_text_ok("name: abs-2_x9\nconnector: pf\nentity: employees\nsource: { table: t, key: id }\n"
					 "fields:\n  a: { from: a }\n");
	assert_string_equal(m->name, "abs-2_x9");
}

T(load_file_name_that_is_no_mapping_name_asks_for_name)
{
	char *path = write_file("Employees 2.yaml", HEAD "  a: { from: a }\n");
	struct diag *d = keep(xcalloc(1, sizeof *d), free_diag);
	keep(mapping_load(path, d), free_mapping);
	assert_int_equal(d->errors, 1);
	assert_msg_at(d, path, 1, 1, "the file name gives the mapping name 'Employees 2', which has a character other than "
				     "a-z, 0-9, _ and -; add a name of those (e.g. name: employees_2) at the top of the file");
	/* With a name: of its own, the file's name does not matter. */
	path = write_file("Employees 3.yaml", "name: employees3\n" HEAD "  a: { from: a }\n");
	struct diag *d2 = keep(xcalloc(1, sizeof *d2), free_diag);
	struct mapping *m = keep(mapping_load(path, d2), free_mapping);
	assert_int_equal(d2->errors, 0);
	assert_string_equal(m->name, "employees3");
}

/* ---- issue 19 (6): big code tables ---- */

T(load_map_of_10000_codes_keeps_every_code_in_order)
{
	struct sb b = {0};
	sb_puts(&b, HEAD "  kind:\n    from: code\n    unmapped: null\n    map:\n");
	for (int i = 0; i < 10000; i++)
		sb_printf(&b, "      K%05d: %d\n", i, i);
	struct mapping *m = load_text_ok(ks(sb_steal(&b)));
	const struct field *f = mapping_field(m, "kind");
	assert_int_equal(f->nmap, 10000);
	for (size_t i = 0; i < f->nmap; i += 1111) {
		char k[16];
		snprintf(k, sizeof k, "K%05d", (int)i % 100000);
		assert_string_equal(f->map[i].key, k);
	}
}

T(load_map_file_past_the_size_limit_refused_where_it_goes_past)
{
	char *csv = ks(xasprintf("%s/huge.csv", dir));
	FILE *fp = fopen(csv, "w");
	assert_non_null(fp);
	size_t n = 0;
	while (n <= YAML_MAX_BYTES)
		n += (size_t)fprintf(fp, "%015zu,1\n", n);   /* 18 bytes a line */
	fclose(fp);
	char *text = ks(xasprintf(HEAD "  kind: { from: code, map_file: huge.csv, unmapped: null }\n"));
	struct diag *d;
	char *path;
	load_bad(text, &d, &path);
	assert_int_equal(d->errors, 1);
	assert_msg_at(d, csv, (int)(YAML_MAX_BYTES / 18) + 1, (int)(YAML_MAX_BYTES % 18) + 1,
		      "the file goes past 8 MiB here, the most hrsync reads from one file; split it (used by field 'kind' of");
}

int main(void)
{
	setlocale(LC_CTYPE, "C.UTF-8");
	setenv("TZ", "UTC", 1);
	tzset();
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(from_text_column, cleanup),
		cmocka_unit_test_teardown(from_int4_is_json_int, cleanup),
		cmocka_unit_test_teardown(from_numeric_keeps_text, cleanup),
		cmocka_unit_test_teardown(from_bool_column, cleanup),
		cmocka_unit_test_teardown(from_date_column_is_string, cleanup),
		cmocka_unit_test_teardown(from_null_column_is_null, cleanup),
		cmocka_unit_test_teardown(from_text_keeps_unicode, cleanup),
		cmocka_unit_test_teardown(value_int_is_json_int, cleanup),
		cmocka_unit_test_teardown(value_quoted_is_string, cleanup),
		cmocka_unit_test_teardown(value_true_is_bool, cleanup),
		cmocka_unit_test_teardown(value_leading_zero_stays_string, cleanup),
		cmocka_unit_test_teardown(value_float_keeps_text, cleanup),
		cmocka_unit_test_teardown(value_null, cleanup),
		cmocka_unit_test_teardown(template_fills_columns, cleanup),
		cmocka_unit_test_teardown(template_placeholder_spaces_trimmed, cleanup),
		cmocka_unit_test_teardown(template_null_column_is_null, cleanup),
		cmocka_unit_test_teardown(template_literal_braces, cleanup),
		cmocka_unit_test_teardown(template_without_placeholder, cleanup),
		cmocka_unit_test_teardown(ref_erp_resolved_through_callback, cleanup),
		cmocka_unit_test_teardown(ref_erp_deferred, cleanup),
		cmocka_unit_test_teardown(ref_over_null_column_is_null, cleanup),
		cmocka_unit_test_teardown(ref_ssn_invalid_nir_fails_rule_ref, cleanup),
		cmocka_unit_test_teardown(ref_ssn_valid_passes_normalised_nir, cleanup),
		cmocka_unit_test_teardown(ref_troops_valid_uuid, cleanup),
		cmocka_unit_test_teardown(ref_troops_invalid_uuid_fails, cleanup),
		cmocka_unit_test_teardown(ref_refused_by_resolver_fails_with_its_reason, cleanup),
		cmocka_unit_test_teardown(ref_ref_mapping_is_kept, cleanup),
		cmocka_unit_test_teardown(failure_wins_over_deferral, cleanup),
		cmocka_unit_test_teardown(lookup_found, cleanup),
		cmocka_unit_test_teardown(lookup_not_found_names_field_and_name, cleanup),
		cmocka_unit_test_teardown(lookup_null_is_null_without_asking, cleanup),
		cmocka_unit_test_teardown(lookup_match_defaults_to_name, cleanup),
		cmocka_unit_test_teardown(trim_spaces_tabs_newlines, cleanup),
		cmocka_unit_test_teardown(trim_no_break_spaces, cleanup),
		cmocka_unit_test_teardown(trim_keeps_inner_no_break_space, cleanup),
		cmocka_unit_test_teardown(trim_blank_gives_empty_string, cleanup),
		cmocka_unit_test_teardown(trim_keeps_accents_at_ends, cleanup),
		cmocka_unit_test_teardown(lower_cyrillic_and_french, cleanup),
		cmocka_unit_test_teardown(upper_cyrillic_and_french, cleanup),
		cmocka_unit_test_teardown(title_names, cleanup),
		cmocka_unit_test_teardown(digits_keeps_only_digits, cleanup),
		cmocka_unit_test_teardown(nullify_empty, cleanup),
		cmocka_unit_test_teardown(collapse_spaces, cleanup),
		cmocka_unit_test_teardown(transforms_apply_in_listed_order, cleanup),
		cmocka_unit_test_teardown(transform_single_name, cleanup),
		cmocka_unit_test_teardown(transform_null_passes_through, cleanup),
		cmocka_unit_test_teardown(apply_transform_direct, cleanup),
		cmocka_unit_test_teardown(map_hit, cleanup),
		cmocka_unit_test_teardown(map_unmapped_error_is_default, cleanup),
		cmocka_unit_test_teardown(map_unmapped_error_explicit, cleanup),
		cmocka_unit_test_teardown(map_unmapped_null, cleanup),
		cmocka_unit_test_teardown(map_unmapped_keep, cleanup),
		cmocka_unit_test_teardown(map_is_case_sensitive, cleanup),
		cmocka_unit_test_teardown(map_null_passes_through, cleanup),
		cmocka_unit_test_teardown(map_values_keep_yaml_types, cleanup),
		cmocka_unit_test_teardown(map_on_int_column, cleanup),
		cmocka_unit_test_teardown(map_file_csv, cleanup),
		cmocka_unit_test_teardown(map_file_csv_crlf, cleanup),
		cmocka_unit_test_teardown(map_file_csv_with_utf8_bom, cleanup),
		cmocka_unit_test_teardown(map_file_csv_unmapped_null, cleanup),
		cmocka_unit_test_teardown(map_file_yaml, cleanup),
		cmocka_unit_test_teardown(map_file_yaml_under_map_key, cleanup),
		cmocka_unit_test_teardown(format_string, cleanup),
		cmocka_unit_test_teardown(format_int, cleanup),
		cmocka_unit_test_teardown(format_int_refuses_fraction_and_words, cleanup),
		cmocka_unit_test_teardown(format_int_out_of_range_fails, cleanup),
		cmocka_unit_test_teardown(format_int_never_rounds, cleanup),
		cmocka_unit_test_teardown(format_int_refuses_hex, cleanup),
		cmocka_unit_test_teardown(format_int_tolerates_trailing_spaces_like_leading, cleanup),
		cmocka_unit_test_teardown(format_number_decimal_comma, cleanup),
		cmocka_unit_test_teardown(format_number_keeps_text, cleanup),
		cmocka_unit_test_teardown(format_number_refuses_words, cleanup),
		cmocka_unit_test_teardown(format_number_output_is_valid_json, cleanup),
		cmocka_unit_test_teardown(format_bool, cleanup),
		cmocka_unit_test_teardown(format_date_iso, cleanup),
		cmocka_unit_test_teardown(format_date_1c_style, cleanup),
		cmocka_unit_test_teardown(format_date_from_timestamp, cleanup),
		cmocka_unit_test_teardown(format_date_impossible_fails, cleanup),
		cmocka_unit_test_teardown(format_date_leap_years, cleanup),
		cmocka_unit_test_teardown(format_date_garbage_fails, cleanup),
		cmocka_unit_test_teardown(format_datetime_with_offset, cleanup),
		cmocka_unit_test_teardown(format_datetime_local_is_tz, cleanup),
		cmocka_unit_test_teardown(format_datetime_local_paris, cleanup),
		cmocka_unit_test_teardown(format_unix, cleanup),
		cmocka_unit_test_teardown(format_unix_int_column_kept, cleanup),
		cmocka_unit_test_teardown(format_null_passes_through, cleanup),
		cmocka_unit_test_teardown(default_when_null, cleanup),
		cmocka_unit_test_teardown(default_keeps_yaml_type, cleanup),
		cmocka_unit_test_teardown(default_without_source, cleanup),
		cmocka_unit_test_teardown(default_after_nullify_empty, cleanup),
		cmocka_unit_test_teardown(required_null_fails, cleanup),
		cmocka_unit_test_teardown(required_blank_after_trim_fails, cleanup),
		cmocka_unit_test_teardown(required_empty_string_fails, cleanup),
		cmocka_unit_test_teardown(required_satisfied_by_default, cleanup),
		cmocka_unit_test_teardown(required_false_allows_null, cleanup),
		cmocka_unit_test_teardown(required_non_string_values_pass, cleanup),
		cmocka_unit_test_teardown(check_email_valid, cleanup),
		cmocka_unit_test_teardown(check_email_invalid_without_echo, cleanup),
		cmocka_unit_test_teardown(check_email_after_transforms, cleanup),
		cmocka_unit_test_teardown(check_email_direct, cleanup),
		cmocka_unit_test_teardown(check_nir_valid_keeps_value_and_records_nir, cleanup),
		cmocka_unit_test_teardown(check_nir_invalid_without_echo, cleanup),
		cmocka_unit_test_teardown(check_regex, cleanup),
		cmocka_unit_test_teardown(check_null_passes, cleanup),
		cmocka_unit_test_teardown(max_length_counts_characters, cleanup),
		cmocka_unit_test_teardown(max_length_exact_limit_and_emoji, cleanup),
		cmocka_unit_test_teardown(omit_null_drops_key, cleanup),
		cmocka_unit_test_teardown(omit_null_keeps_value, cleanup),
		cmocka_unit_test_teardown(null_is_sent_without_omit_null, cleanup),
		cmocka_unit_test_teardown(nested_object_present, cleanup),
		cmocka_unit_test_teardown(nested_all_null_left_out, cleanup),
		cmocka_unit_test_teardown(nested_partly_null_kept, cleanup),
		cmocka_unit_test_teardown(nested_failure_has_dotted_path, cleanup),
		cmocka_unit_test_teardown(nested_deferred_reference, cleanup),
		cmocka_unit_test_teardown(nested_asset_without_holder_has_no_assignment, cleanup),
		cmocka_unit_test_teardown(order_transform_before_map, cleanup),
		cmocka_unit_test_teardown(order_map_before_format, cleanup),
		cmocka_unit_test_teardown(order_format_before_default, cleanup),
		cmocka_unit_test_teardown(order_default_before_required, cleanup),
		cmocka_unit_test_teardown(order_default_before_check, cleanup),
		cmocka_unit_test_teardown(order_format_before_max_length, cleanup),
		cmocka_unit_test_teardown(order_transform_before_required, cleanup),
		cmocka_unit_test_teardown(first_failing_field_reported_all_counted, cleanup),
		cmocka_unit_test_teardown(first_failure_nested_path, cleanup),
		cmocka_unit_test_teardown(success_has_no_error, cleanup),
		cmocka_unit_test_teardown(example_employee_mapping_of_the_spec, cleanup),
		cmocka_unit_test_teardown(name_is_file_name_unless_set, cleanup),
		cmocka_unit_test_teardown(mapping_hash_is_sha256_of_file, cleanup),
		cmocka_unit_test_teardown(pull_mapping_paths_and_ref_back, cleanup),
		cmocka_unit_test_teardown(load_unknown_rule_suggests_from, cleanup),
		cmocka_unit_test_teardown(load_unknown_transform, cleanup),
		cmocka_unit_test_teardown(load_unknown_transform_without_suggestion, cleanup),
		cmocka_unit_test_teardown(load_unknown_format_suggests, cleanup),
		cmocka_unit_test_teardown(load_two_value_sources, cleanup),
		cmocka_unit_test_teardown(load_template_and_ref_are_two_sources, cleanup),
		cmocka_unit_test_teardown(load_lookup_without_from, cleanup),
		cmocka_unit_test_teardown(load_lookup_unknown_key_suggests, cleanup),
		cmocka_unit_test_teardown(load_unknown_top_level_key_suggests, cleanup),
		cmocka_unit_test_teardown(load_missing_source_key, cleanup),
		cmocka_unit_test_teardown(load_missing_connector_entity_fields, cleanup),
		cmocka_unit_test_teardown(load_bad_regex, cleanup),
		cmocka_unit_test_teardown(load_unknown_check_suggests, cleanup),
		cmocka_unit_test_teardown(load_map_file_missing_csv, cleanup),
		cmocka_unit_test_teardown(load_map_file_missing_yaml_points_at_mapping, cleanup),
		cmocka_unit_test_teardown(load_map_file_csv_bad_line_position, cleanup),
		cmocka_unit_test_teardown(load_map_file_yaml_not_a_map, cleanup),
		cmocka_unit_test_teardown(load_map_and_map_file_both, cleanup),
		cmocka_unit_test_teardown(load_ref_without_scheme, cleanup),
		cmocka_unit_test_teardown(load_template_unmatched_braces, cleanup),
		cmocka_unit_test_teardown(load_template_error_is_one_error, cleanup),
		cmocka_unit_test_teardown(load_unknown_rule_is_one_error, cleanup),
		cmocka_unit_test_teardown(load_unmapped_typo_suggests, cleanup),
		cmocka_unit_test_teardown(load_unmapped_without_map_warns, cleanup),
		cmocka_unit_test_teardown(load_required_must_be_boolean, cleanup),
		cmocka_unit_test_teardown(load_max_length_must_be_positive, cleanup),
		cmocka_unit_test_teardown(load_field_without_value, cleanup),
		cmocka_unit_test_teardown(load_nested_two_levels_refused, cleanup),
		cmocka_unit_test_teardown(load_yaml_syntax_error, cleanup),
		cmocka_unit_test_teardown(load_missing_file, cleanup),
		cmocka_unit_test_teardown(load_three_problems_three_errors, cleanup),
		cmocka_unit_test_teardown(load_problems_in_every_field_reported, cleanup),
		cmocka_unit_test_teardown(load_mapping_name_with_a_newline_refused_and_shown_escaped, cleanup),
		cmocka_unit_test_teardown(load_mapping_name_upper_case_or_too_long_refused, cleanup),
		cmocka_unit_test_teardown(load_mapping_name_of_the_allowed_characters_kept, cleanup),
		cmocka_unit_test_teardown(load_file_name_that_is_no_mapping_name_asks_for_name, cleanup),
		cmocka_unit_test_teardown(load_map_of_10000_codes_keeps_every_code_in_order, cleanup),
		cmocka_unit_test_teardown(load_map_file_past_the_size_limit_refused_where_it_goes_past, cleanup),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
