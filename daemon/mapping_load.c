/*
 * mapping_load — reads a mapping file into a struct mapping and checks everything that
 * can be checked without a database or a platform. Every problem is reported (never
 * just the first), with the file:line:col of the node at fault and, for misspellings,
 * the closest known word.
 */
#include <errno.h>
#include <unistd.h>
#include <stdlib.h>
#include <string.h>

#include "mapping.h"
#include "sha256.h"

static const char *const top_keys[] = {"name", "description", "connector", "entity", "direction", "depends_on",
				       "source", "terminate", "fields", "filter", "target"};
static const char *const source_keys[] = {"table", "query", "key", "where", "on_missing"};
static const char *const terminate_keys[] = {"when", "fields"};
static const char *const target_keys[] = {"table", "key", "deleted_column"};
static const char *const rule_keys[] = {"from", "value", "template", "ref", "lookup", "transform", "map", "map_file",
					"unmapped", "format", "default", "required", "check", "max_length",
					"omit_null", "ref_mapping", "ref_back"};
static const char *const format_names[] = {"string", "int", "number", "bool", "date", "datetime", "unix"};
static const char *const transform_names[] = {"trim", "lower", "upper", "title", "digits", "nullify_empty",
					      "collapse_spaces"};
static const char *const unmapped_names[] = {"error", "null", "keep"};

struct loader {
	struct mapping *m;
	struct diag *d;
	const char *file;
	char *dir;
	struct sha256 hash;   /* the file's bytes and those of the map files it names */
};

#define ERR(n, ...) diag_error(L->d, L->file, (n) ? (n)->line : 0, (n) ? (n)->col : 0, __VA_ARGS__)
#define WARN(n, ...) diag_warn(L->d, L->file, (n) ? (n)->line : 0, (n) ? (n)->col : 0, __VA_ARGS__)

static bool in_list(const char *w, const char *const *list, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (streq(w, list[i]))
			return true;
	return false;
}

/* " (did you mean 'x'?)" or "" — static buffer, one use per message. */
static const char *did_you_mean(const char *w, const char *const *list, size_t n)
{
	static char buf[128];
	const char *s = diag_suggest(w, list, n);
	if (!s)
		return "";
	snprintf(buf, sizeof buf, " (did you mean '%s'?)", s);
	return buf;
}

static void check_keys(struct loader *L, const struct ynode *map, const char *const *allowed, size_t n,
		       const char *where)
{
	for (size_t i = 0; i < map->n; i++) {
		const char *k = map->keys[i]->str;
		if (!in_list(k, allowed, n))
			ERR(map->keys[i], "%s: unknown key '%s'%s", where, k, did_you_mean(k, allowed, n));
	}
}

/* A scalar string value, or an error saying what was expected. */
static char *want_string(struct loader *L, const struct ynode *n, const char *what)
{
	if (!n)
		return NULL;
	if (n->type != YN_SCALAR || yscalar_kind(n) == YS_NULL) {
		ERR(n, "%s: expected a string, found %s", what, ynode_type_name(n));
		return NULL;
	}
	return xstrdup(n->str);
}

static size_t add_col(struct mapping *m, const char *name)
{
	for (size_t i = 0; i < m->ncols; i++)
		if (streq(m->cols[i], name))
			return i;
	m->cols = xrealloc(m->cols, (m->ncols + 1) * sizeof *m->cols);
	m->cols[m->ncols] = xstrdup(name);
	return m->ncols++;
}

/* A YAML scalar as the JSON value it means (mappings/README.md §2.7: scalars keep their type). */
static struct jv *scalar_jv(const struct ynode *n)
{
	switch (yscalar_kind(n)) {
	case YS_NULL: return jv_null();
	case YS_BOOL: {
		bool b = false;
		yscalar_bool(n, &b);
		return jv_bool(b);
	}
	case YS_INT: {
		long long i;
		if (parse_ll(n->str, &i))
			return jv_int(i);
		return jv_num(n->str);
	}
	case YS_FLOAT: return jv_num(n->str);
	default: return jv_strn(n->str, n->len);
	}
}

static bool parse_tpl(struct loader *L, const struct ynode *n, const char *text, struct tpl *t, bool pull,
		      const char *what)
{
	const char *p = text;
	struct sb lit = {0};
	while (*p) {
		if (*p == '{' && p[1] == '{') {
			sb_putc(&lit, '{');
			p += 2;
			continue;
		}
		if (*p == '}' && p[1] == '}') {
			sb_putc(&lit, '}');
			p += 2;
			continue;
		}
		if (*p == '}') {
			ERR(n, "%s: unmatched '}' in \"%s\" (write '}}' for a literal brace)", what, text);
			sb_free(&lit);
			return false;
		}
		if (*p != '{') {
			sb_putc(&lit, *p++);
			continue;
		}
		const char *end = strchr(p, '}');
		if (!end) {
			ERR(n, "%s: '{' without a closing '}' in \"%s\"", what, text);
			sb_free(&lit);
			return false;
		}
		size_t len = (size_t)(end - p - 1);
		if (len == 0) {
			ERR(n, "%s: empty placeholder '{}' in \"%s\"; write {column}", what, text);
			sb_free(&lit);
			return false;
		}
		if (lit.len) {
			t->parts = xrealloc(t->parts, (t->n + 1) * sizeof *t->parts);
			t->parts[t->n++] = (struct tpl_part){.lit = sb_steal(&lit), .col = -1};
		}
		char *name = xstrndup(p + 1, len);
		char *s = name, *e = name + len;
		while (*s == ' ')
			s++;
		while (e > s && e[-1] == ' ')
			*--e = '\0';
		int col = pull ? -1 : (int)add_col(L->m, s);
		t->parts = xrealloc(t->parts, (t->n + 1) * sizeof *t->parts);
		t->parts[t->n++] = (struct tpl_part){.lit = NULL, .col = col, .path = xstrdup(s)};
		free(name);
		p = end + 1;
	}
	if (lit.len) {
		t->parts = xrealloc(t->parts, (t->n + 1) * sizeof *t->parts);
		t->parts[t->n++] = (struct tpl_part){.lit = sb_steal(&lit), .col = -1};
	}
	sb_free(&lit);
	return true;
}

/*
 * One code: value pair of a map or map_file; the field takes key and val. The array doubles
 * (its room is the power of two at or above nmap), so a table of n codes costs O(n).
 */
static void add_map_entry(struct field *f, char *key, struct jv *val)
{
	if ((f->nmap & (f->nmap - 1)) == 0)   /* 0 or a power of two: full */
		f->map = xrealloc(f->map, (f->nmap ? f->nmap * 2 : 1) * sizeof *f->map);
	f->map[f->nmap++] = (struct map_entry){key, val};
}

/* Load a code table kept in its own file: YAML (a map) or CSV (code,value per line). */
static void load_map_file(struct loader *L, struct field *f, const struct ynode *n)
{
	char *path = path_join(L->dir, n->str);
	const char *what = f->path;
	size_t len;
	struct diag rd = {0};
	char *text = yfile_read(path, &len, &rd);
	int e = errno;
	/* What the reading found (too big, writable by others) is said of the map file, naming the
	 * field that uses it; a file that cannot be read, against the field. */
	if (!text && e != EFBIG)
		ERR(n, "field '%s': map_file %s: %s", what, n->str, strerror(e));
	else
		for (size_t i = 0; i < rd.n; i++)
			diag_error(L->d, rd.msgs[i].file, rd.msgs[i].line, rd.msgs[i].col, "%s (used by field '%s' of %s)",
				   rd.msgs[i].text, what, L->file);
	diag_free(&rd);
	if (!text) {
		free(path);
		return;
	}
	/* A map file's content is part of the mapping: a changed code table changes payloads. */
	sha256_update(&L->hash, text, len);
	if (str_has_suffix(path, ".csv")) {
		int lineno = 0;
		char *line = text;
		/* A spreadsheet's UTF-8 byte order mark is not part of the first code. */
		if (len >= 3 && memcmp(line, "\xEF\xBB\xBF", 3) == 0)
			line += 3;
		while (line && *line) {
			char *nl = strchr(line, '\n');
			if (nl)
				*nl = '\0';
			lineno++;
			size_t ll = strlen(line);
			if (ll && line[ll - 1] == '\r')
				line[--ll] = '\0';
			char *next = nl ? nl + 1 : NULL;
			if (!ll || line[0] == '#') {
				line = next;
				continue;
			}
			if (!utf8_valid(line, strlen(line))) {
				diag_error(L->d, path, lineno, 1,
					   "not UTF-8 (a spreadsheet's CP1251?): save the file as \"CSV UTF-8\" (used by field "
					   "'%s' of %s)",
					   what, L->file);
				line = next;
				continue;
			}
			char *comma = strchr(line, ',');
			if (!comma) {
				diag_error(L->d, path, lineno, 1, "expected code,value (used by field '%s' of %s)", what,
					   L->file);
				line = next;
				continue;
			}
			*comma = '\0';
			const char *val = comma + 1;
			if (lineno == 1 && (streq(line, "code") || streq(line, "key"))) {
				line = next;
				continue; /* a header line */
			}
			long long iv;
			struct jv *jvv;
			if (!*val)
				jvv = jv_null();
			else if (parse_ll(val, &iv) && (val[0] != '0' || val[1] == '\0'))
				jvv = jv_int(iv);
			else
				jvv = jv_str(val);
			add_map_entry(f, xstrdup(line), jvv);
			line = next;
		}
	} else {
		struct ydoc *doc = ydoc_parse(path, text, len, L->d);
		if (doc) {
			const struct ynode *root = doc->root;
			/* Accept a bare map, or one under a top-level "map:" key. */
			if (root && root->type == YN_MAP && ymap_get(root, "map") && root->n == 1)
				root = ymap_get(root, "map");
			if (!root || root->type != YN_MAP) {
				diag_error(L->d, path, root ? root->line : 1, root ? root->col : 1,
					   "a map_file holds a map of code: value (used by field '%s' of %s)", what,
					   L->file);
			} else {
				for (size_t i = 0; i < root->n; i++) {
					if (root->vals[i]->type != YN_SCALAR) {
						diag_error(L->d, path, root->vals[i]->line, root->vals[i]->col,
							   "code '%s': a value must be a single value, not %s",
							   root->keys[i]->str, ynode_type_name(root->vals[i]));
						continue;
					}
					add_map_entry(f, xstrdup(root->keys[i]->str), scalar_jv(root->vals[i]));
				}
			}
			ydoc_free(doc);
		}
	}
	free(text);
	free(path);
}

/* A key missing because it was misspelt is reported once, as the unknown key with its suggestion. */
static bool misspelt(const struct ynode *map, const char *wanted)
{
	for (size_t i = 0; i < map->n; i++) {
		const char *k = map->keys[i]->str;
		if (!in_list(k, top_keys, ARRAY_LEN(top_keys)) && streq(diag_suggest(k, top_keys, ARRAY_LEN(top_keys)), wanted))
			return true;
	}
	return false;
}

static bool is_rule_map(const struct ynode *n)
{
	for (size_t i = 0; i < n->n; i++)
		if (in_list(n->keys[i]->str, rule_keys, ARRAY_LEN(rule_keys)))
			return true;
	for (size_t i = 0; i < n->n; i++)
		if (n->vals[i]->type != YN_MAP)
			return true;
	return false;
}

static void parse_field(struct loader *L, struct field *f, const struct ynode *key, const struct ynode *n,
			const char *parent, bool pull, int depth);

static void parse_fields(struct loader *L, const struct ynode *n, struct field **out, size_t *nout,
			 const char *parent, bool pull, int depth)
{
	if (!n)
		return;
	if (n->type != YN_MAP) {
		ERR(n, "%s: expected a map of field: rules, found %s", parent ? parent : "fields", ynode_type_name(n));
		return;
	}
	*out = xcalloc(n->n, sizeof **out);
	*nout = n->n;
	for (size_t i = 0; i < n->n; i++)
		parse_field(L, &(*out)[i], n->keys[i], n->vals[i], parent, pull, depth);
}

/* The index of w in names, or n when it is not there. */
static size_t name_index(const char *w, const char *const *names, size_t n)
{
	size_t i;
	for (i = 0; i < n; i++)
		if (streq(w, names[i]))
			break;
	return i;
}

/* What a field's rules add up to, for the checks that need all of them (check_rules). */
struct rule_tally {
	int sources;                   /* value, template, ref and lookup rules; from is counted at the end */
	int unknown;                   /* rules an error already explains: no "no value" on top */
	const struct ynode *first_src; /* the first source rule read: where "several sources" points */
};

static void rule_from(struct loader *L, struct field *f, const struct ynode *v, bool pull)
{
	f->from = want_string(L, v, "from");
	if (f->from && !*f->from)
		ERR(v, "field '%s': 'from' names no column", f->path);
	else if (f->from && !pull)
		f->col_idx = (int)add_col(L->m, f->from);
}

/* value: one constant, typed as YAML types it. False when it is not one value. */
static bool rule_value(struct loader *L, struct field *f, const struct ynode *v, struct rule_tally *t)
{
	if (v->type != YN_SCALAR) {
		ERR(v, "field '%s': 'value' takes one value, found %s", f->path, ynode_type_name(v));
		t->unknown++; /* explained: no "no value" on top */
		return false;
	}
	f->value = scalar_jv(v);
	f->src = VS_VALUE;
	return true;
}

/* A ref names a scheme ref.h knows: erp:, ssn: or troops:. */
static bool ref_scheme_known(const char *text)
{
	const char *c = strchr(text, ':');
	return c && ((c - text == 3 && (!strncmp(text, "erp", 3) || !strncmp(text, "ssn", 3))) ||
		     (c - text == 6 && !strncmp(text, "troops", 6)));
}

/* template or ref (rule r): text with placeholders. False when it is not a string. */
static bool rule_template(struct loader *L, struct field *f, const char *r, const struct ynode *v, bool pull,
			  struct rule_tally *t)
{
	char *text = want_string(L, v, r);
	if (!text)
		return false;
	char what[160];
	snprintf(what, sizeof what, "field '%s': %s", f->path, r);
	if (!parse_tpl(L, v, text, &f->tpl, pull, what)) {
		t->unknown++; /* already explained */
	} else {
		f->src = streq(r, "ref") ? VS_REF : VS_TEMPLATE;
		if (f->src == VS_REF && !ref_scheme_known(text))
			ERR(v, "field '%s': a ref starts with erp:, ssn: or troops: (found \"%s\")", f->path, text);
	}
	free(text);
	return true;
}

/* lookup: { resource, match }. False when it is not a map. */
static bool rule_lookup(struct loader *L, struct field *f, const struct ynode *v, struct rule_tally *t)
{
	static const char *const lk[] = {"resource", "match"};
	if (v->type != YN_MAP) {
		ERR(v, "field '%s': lookup takes { resource: NAME, match: name }", f->path);
		return false;
	}
	char what[160];
	snprintf(what, sizeof what, "field '%s': lookup", f->path);
	check_keys(L, v, lk, 2, what);
	f->lookup_resource = want_string(L, ymap_get(v, "resource"), "lookup resource");
	f->lookup_match = ymap_get(v, "match") ? want_string(L, ymap_get(v, "match"), "lookup match") : xstrdup("name");
	if (!f->lookup_resource)
		ERR(v, "field '%s': lookup needs a resource (e.g. departments)", f->path);
	f->src = VS_LOOKUP;
	t->sources++;
	return true;
}

/* transform: one name, or a list of names applied in order. */
static void rule_transform(struct loader *L, struct field *f, const struct ynode *v)
{
	size_t cnt = v->type == YN_SEQ ? v->n : 1;
	f->xf = xcalloc(cnt, sizeof *f->xf);
	for (size_t j = 0; j < cnt; j++) {
		const struct ynode *t = v->type == YN_SEQ ? v->vals[j] : v;
		if (t->type != YN_SCALAR) {
			ERR(t, "field '%s': a transform is a name such as trim, found %s", f->path, ynode_type_name(t));
			continue;
		}
		size_t ti = name_index(t->str, transform_names, ARRAY_LEN(transform_names));
		if (ti == ARRAY_LEN(transform_names)) {
			ERR(t, "field '%s': unknown transform '%s'%s", f->path, t->str,
			    did_you_mean(t->str, transform_names, ARRAY_LEN(transform_names)));
			continue;
		}
		f->xf[f->nxf++] = (enum xform)ti;
	}
}

/* map: code: value pairs written in the mapping file. */
static void rule_map(struct loader *L, struct field *f, const struct ynode *v)
{
	if (v->type != YN_MAP) {
		ERR(v, "field '%s': map takes code: value pairs, found %s", f->path, ynode_type_name(v));
		return;
	}
	f->has_map = true;
	for (size_t j = 0; j < v->n; j++) {
		if (v->vals[j]->type != YN_SCALAR) {
			ERR(v->vals[j], "field '%s': map value for '%s' must be a single value, found %s", f->path,
			    v->keys[j]->str, ynode_type_name(v->vals[j]));
			continue;
		}
		add_map_entry(f, xstrdup(v->keys[j]->str), scalar_jv(v->vals[j]));
	}
}

static void rule_map_file(struct loader *L, struct field *f, const struct ynode *v)
{
	if (v->type != YN_SCALAR) {
		ERR(v, "field '%s': map_file takes a file name", f->path);
		return;
	}
	f->has_map = true;
	load_map_file(L, f, v);
}

static void rule_unmapped(struct loader *L, struct field *f, const struct ynode *v)
{
	const char *u = v->type == YN_SCALAR ? v->str : "";
	if (yscalar_kind(v) == YS_NULL)
		u = "null";
	size_t ui = name_index(u, unmapped_names, ARRAY_LEN(unmapped_names));
	if (ui == ARRAY_LEN(unmapped_names))
		ERR(v, "field '%s': unmapped is error, null or keep, found '%s'%s", f->path, u,
		    did_you_mean(u, unmapped_names, ARRAY_LEN(unmapped_names)));
	else
		f->unmapped = (enum unmapped)ui;
}

static void rule_format(struct loader *L, struct field *f, const struct ynode *v)
{
	const char *s = v->type == YN_SCALAR ? v->str : "";
	size_t fi = name_index(s, format_names, ARRAY_LEN(format_names));
	if (fi == ARRAY_LEN(format_names))
		ERR(v, "field '%s': unknown format '%s'%s; formats: string, int, number, bool, date, datetime, unix",
		    f->path, s, did_you_mean(s, format_names, ARRAY_LEN(format_names)));
	else
		f->fmt = (enum vfmt)(fi + 1);
}

static void rule_default(struct loader *L, struct field *f, const struct ynode *v)
{
	if (v->type != YN_SCALAR) {
		ERR(v, "field '%s': default takes one value, found %s", f->path, ynode_type_name(v));
		return;
	}
	f->def = scalar_jv(v);
}

/* required or omit_null (rule r): true or false. */
static void rule_flag(struct loader *L, struct field *f, const char *r, const struct ynode *v)
{
	bool b;
	if (!yscalar_bool(v, &b)) {
		ERR(v, "field '%s': %s is true or false, found %s", f->path, r, ynode_type_name(v));
		return;
	}
	if (streq(r, "required"))
		f->required = b;
	else
		f->omit_null = b;
}

/* check: email, nir (the mapping then keeps NIR hashes for ssn: references) or { regex }. */
static void rule_check(struct loader *L, struct field *f, const struct ynode *v)
{
	if (v->type == YN_SCALAR && streq(v->str, "email")) {
		f->check = VC_EMAIL;
	} else if (v->type == YN_SCALAR && streq(v->str, "nir")) {
		f->check = VC_NIR;
		L->m->has_ssn_field = true;
	} else if (v->type == YN_MAP && ymap_get(v, "regex") && v->n == 1) {
		const struct ynode *re = ymap_get(v, "regex");
		int rc = re->type == YN_SCALAR ? regcomp(&f->re, re->str, REG_EXTENDED | REG_NOSUB) : -1;
		if (rc != 0) {
			char buf[128] = "not a string";
			if (rc > 0)
				regerror(rc, &f->re, buf, sizeof buf);
			ERR(re, "field '%s': check regex: %s", f->path, buf);
		} else {
			f->check = VC_REGEX;
			f->has_re = true;
		}
	} else if (v->type == YN_MAP && ymap_get(v, "regex")) {
		ERR(v, "field '%s': a check regex takes only regex: (no other keys)", f->path);
	} else {
		static const char *const checks[] = {"email", "nir", "regex"};
		const char *s = v->type == YN_SCALAR ? v->str : "?";
		ERR(v, "field '%s': check is email, nir or { regex: \"...\" }, found '%s'%s", f->path, s,
		    did_you_mean(s, checks, 3));
	}
}

static void rule_max_length(struct loader *L, struct field *f, const struct ynode *v)
{
	long long ml;
	if (yscalar_kind(v) != YS_INT || !parse_ll(v->str, &ml) || ml <= 0) {
		ERR(v, "field '%s': max_length is a positive whole number", f->path);
		return;
	}
	f->max_length = (long)ml;
}

/*
 * One known rule r of a field. Returns false when a source rule could not be read (it is then
 * not the field's first source); the other rules return true, read or reported.
 */
static bool parse_rule(struct loader *L, struct field *f, const char *r, const struct ynode *v, bool pull,
		       struct rule_tally *t)
{
	if (streq(r, "from"))
		rule_from(L, f, v, pull);
	else if (streq(r, "value"))
		return rule_value(L, f, v, t);
	else if (streq(r, "template") || streq(r, "ref"))
		return rule_template(L, f, r, v, pull, t);
	else if (streq(r, "lookup"))
		return rule_lookup(L, f, v, t);
	else if (streq(r, "transform"))
		rule_transform(L, f, v);
	else if (streq(r, "map"))
		rule_map(L, f, v);
	else if (streq(r, "map_file"))
		rule_map_file(L, f, v);
	else if (streq(r, "unmapped"))
		rule_unmapped(L, f, v);
	else if (streq(r, "format"))
		rule_format(L, f, v);
	else if (streq(r, "default"))
		rule_default(L, f, v);
	else if (streq(r, "required") || streq(r, "omit_null"))
		rule_flag(L, f, r, v);
	else if (streq(r, "check"))
		rule_check(L, f, v);
	else if (streq(r, "max_length"))
		rule_max_length(L, f, v);
	else if (streq(r, "ref_mapping"))
		f->ref_mapping = want_string(L, v, "ref_mapping");
	else if (streq(r, "ref_back"))
		f->ref_back = want_string(L, v, "ref_back");
	return true;
}

/* Every rule of the map n, in file order; unknown ones reported with a suggestion. */
static void parse_rules(struct loader *L, struct field *f, const struct ynode *n, bool pull, struct rule_tally *t)
{
	for (size_t i = 0; i < n->n; i++) {
		const struct ynode *k = n->keys[i];
		const char *r = k->str;
		if (!in_list(r, rule_keys, ARRAY_LEN(rule_keys))) {
			ERR(k, "field '%s': unknown rule '%s'%s", f->path, r, did_you_mean(r, rule_keys, ARRAY_LEN(rule_keys)));
			t->unknown++;
			continue;
		}
		bool is_src = streq(r, "from") || streq(r, "value") || streq(r, "template") || streq(r, "ref") ||
			      streq(r, "lookup");
		if (is_src && !streq(r, "lookup") && !streq(r, "from"))
			t->sources++;
		if (parse_rule(L, f, r, n->vals[i], pull, t) && is_src && !t->first_src)
			t->first_src = k;
	}
}

/* What only a field's rules together can tell: one source, and the rules that need another. */
static void check_rules(struct loader *L, struct field *f, const struct ynode *key, const struct ynode *n, bool pull,
			struct rule_tally *t)
{
	const char *P = f->path;
	if (f->from && f->src == VS_NONE)
		f->src = VS_FROM;
	if (f->from && f->src != VS_FROM && f->src != VS_LOOKUP)
		t->sources++;
	if (f->src == VS_LOOKUP && !f->from)
		ERR(t->first_src ? t->first_src : key, "field '%s': lookup needs 'from:' to give the name to look up", P);
	if (t->sources > 1)
		ERR(t->first_src ? t->first_src : key,
		    "field '%s': a field takes its value from one of from, value, template, ref or lookup, not several", P);
	if (f->src == VS_NONE && !f->def && !t->unknown) /* a misspelt rule already explains it */
		ERR(key, "field '%s': no value: give one of from, value, template, ref or lookup", P);
	if (!f->has_map && ymap_get(n, "unmapped"))
		WARN(ymap_get(n, "unmapped"), "field '%s': 'unmapped' does nothing without map or map_file", P);
	if (ymap_get(n, "map") && ymap_get(n, "map_file"))
		ERR(ymap_get(n, "map_file"), "field '%s': use map or map_file, not both", P);
	if (f->ref_mapping && f->src != VS_REF)
		ERR(ymap_get(n, "ref_mapping"), "field '%s': ref_mapping only goes with ref", P);
	if (f->ref_back && !pull)
		ERR(ymap_get(n, "ref_back"), "field '%s': ref_back is for pull mappings", P);
	if (f->has_map && !ymap_get(n, "unmapped")) {
		f->unmapped = UNM_ERROR;
		WARN(ymap_get(n, "map") ? ymap_get(n, "map") : ymap_get(n, "map_file"),
		     "field '%s': no rule for codes the map does not list; add unmapped: error, null or keep (error is assumed)",
		     P);
	}
}

static void parse_field(struct loader *L, struct field *f, const struct ynode *key, const struct ynode *n,
			const char *parent, bool pull, int depth)
{
	f->name = xstrdup(key->str);
	f->path = parent ? xasprintf("%s.%s", parent, key->str) : xstrdup(key->str);
	f->file = L->file;
	f->line = key->line;
	f->col = key->col;
	f->col_idx = -1;
	const char *P = f->path;

	if (n->type == YN_SCALAR) {
		ERR(n, "field '%s': expected rules such as { from: column }, found %s '%s'", P, ynode_type_name(n),
		    n->str);
		return;
	}
	if (n->type != YN_MAP) {
		ERR(n, "field '%s': expected rules such as { from: column }, found %s", P, ynode_type_name(n));
		return;
	}
	if (!is_rule_map(n)) {
		if (depth >= 1) {
			ERR(key, parent && streq(parent, "terminate") ? "field '%s': terminate fields take no nested objects"
								      : "field '%s': nested objects go one level deep",
			    P);
			return;
		}
		f->nested = true;
		parse_fields(L, n, &f->kids, &f->nkids, f->path, pull, depth + 1);
		return;
	}
	struct rule_tally t = {0};
	parse_rules(L, f, n, pull, &t);
	check_rules(L, f, key, n, pull, &t);
}

static void parse_deps(struct loader *L, const struct ynode *n)
{
	struct mapping *m = L->m;
	m->depends_node = n;
	if (n->type == YN_SCALAR && yscalar_kind(n) != YS_NULL) {
		m->depends_on = xcalloc(1, sizeof(char *));
		m->depends_on[0] = xstrdup(n->str);
		m->ndeps = 1;
		return;
	}
	if (n->type != YN_SEQ) {
		if (yscalar_kind(n) != YS_NULL)
			ERR(n, "depends_on: expected a list of mapping names, found %s", ynode_type_name(n));
		return;
	}
	m->depends_on = xcalloc(n->n ? n->n : 1, sizeof(char *));
	for (size_t i = 0; i < n->n; i++) {
		char *s = want_string(L, n->vals[i], "depends_on");
		if (s)
			m->depends_on[m->ndeps++] = s;
	}
}

/*
 * A mapping name is 1 to 63 of a-z, 0-9, _ and -: it goes into every log line (a newline in
 * it would forge journal lines), the state's keys and command lines. from_file: the name
 * was the file's, which then needs a name: of its own. The name shown is escaped.
 */
static void check_name(struct loader *L, const struct ynode *at, const char *name, const char *from_file)
{
	size_t len = strlen(name), bad = strspn(name, "abcdefghijklmnopqrstuvwxyz0123456789_-");
	if (len && len <= 63 && bad == len)
		return;
	struct sb shown = {0}, fix = {0};
	sb_puts(&shown, "");
	sb_put_printable(&shown, name, len);
	for (const char *p = name; *p && fix.len < 63; p++) {
		char c = *p >= 'A' && *p <= 'Z' ? (char)(*p - 'A' + 'a') : *p;
		if (strchr("abcdefghijklmnopqrstuvwxyz0123456789_-", c))
			sb_putc(&fix, c);
		else if (fix.len && fix.s[fix.len - 1] != '_')
			sb_putc(&fix, '_');
	}
	while (fix.len && fix.s[fix.len - 1] == '_')
		fix.s[--fix.len] = '\0';
	if (!fix.len)
		sb_puts(&fix, "employees");
	const char *why = !len ? "is empty"
			  : bad != len ? "has a character other than a-z, 0-9, _ and -"
				       : "is longer than 63 characters";
	if (from_file)
		ERR(at, "the file name gives the mapping name '%s', which %s; add a name of those (e.g. name: %s) at the top of the file",
		    sb_str(&shown), why, sb_str(&fix));
	else
		ERR(at, "name: '%s' %s; a mapping name is 1 to 63 of a-z, 0-9, _ and - (e.g. %s)", sb_str(&shown), why,
		    sb_str(&fix));
	sb_free(&shown);
	sb_free(&fix);
}

static char *base_name(const char *path)
{
	const char *slash = strrchr(path, '/');
	const char *b = slash ? slash + 1 : path;
	size_t len = strlen(b);
	if (str_has_suffix(b, ".yaml"))
		len -= 5;
	else if (str_has_suffix(b, ".yml"))
		len -= 4;
	return xstrndup(b, len);
}

struct mapping *mapping_load(const char *path, struct diag *d)
{
	struct ydoc *doc = ydoc_load(path, d);
	if (!doc)
		return NULL;
	struct mapping *m = xcalloc(1, sizeof *m);
	m->file = xstrdup(path);
	m->doc = doc;
	struct loader Ls = {.m = m, .d = d, .file = m->file, .dir = path_dirname(path)}, *L = &Ls;
	const struct ynode *root = doc->root;
	if (!root || root->type != YN_MAP) {
		diag_error(d, path, root ? root->line : 1, root ? root->col : 1,
			   "a mapping file is a map with connector, entity, source and fields");
		m->name = base_name(path);
		m->mapping_hash = xstrdup("");
		free(Ls.dir);
		return m;
	}
	/* From here every path reaches sha256_final() below. */
	sha256_init(&Ls.hash);
	{
		size_t len;
		char *bytes = read_file(path, &len);
		if (bytes)
			sha256_update(&Ls.hash, bytes, len);
		free(bytes);
	}
	m->line = root->line;
	m->col = root->col;
	check_keys(L, root, top_keys, ARRAY_LEN(top_keys), "mapping");

	const struct ynode *n;
	m->name = (n = ymap_get(root, "name")) ? want_string(L, n, "name") : NULL;
	if (m->name)
		check_name(L, n, m->name, NULL);
	if (!m->name) {
		m->name = base_name(path);
		check_name(L, root, m->name, path);
	}
	if ((n = ymap_get(root, "direction"))) {
		if (n->type == YN_SCALAR && streq(n->str, "pull"))
			m->dir = DIR_PULL;
		else if (!(n->type == YN_SCALAR && streq(n->str, "push"))) {
			static const char *const dirs[] = {"push", "pull"};
			ERR(n, "direction is push or pull, found '%s'%s", n->type == YN_SCALAR ? n->str : "?",
			    n->type == YN_SCALAR ? did_you_mean(n->str, dirs, 2) : "");
		}
	}
	bool pull = m->dir == DIR_PULL;
	if (!(m->connector = want_string(L, ymap_get(root, "connector"), "connector")))
		if (!ymap_get(root, "connector") && !misspelt(root, "connector"))
			ERR(root, "missing 'connector:' (the connector instance's name from hrsync.yaml)");
	if (!(m->entity = want_string(L, ymap_get(root, "entity"), "entity")))
		if (!ymap_get(root, "entity") && !misspelt(root, "entity"))
			ERR(root, "missing 'entity:' (employees, absences, assets, ...)");
	if ((n = ymap_get(root, "depends_on")))
		parse_deps(L, n);

	const struct ynode *src = ymap_get(root, "source");
	if (!pull) {
		if (!src && misspelt(root, "source")) {
			/* reported as an unknown key with its suggestion */
		} else if (!src) {
			ERR(root, "missing 'source:' (a table or a query, and the key column)");
		} else if (src->type != YN_MAP) {
			ERR(src, "source: expected a map with table or query, and key; found %s", ynode_type_name(src));
		} else {
			check_keys(L, src, source_keys, ARRAY_LEN(source_keys), "source");
			m->table = want_string(L, ymap_get(src, "table"), "source table");
			m->query = want_string(L, ymap_get(src, "query"), "source query");
			m->where = want_string(L, ymap_get(src, "where"), "source where");
			m->key = want_string(L, ymap_get(src, "key"), "source key");
			if (m->table && m->query)
				ERR(ymap_get(src, "query"), "source: give a table or a query, not both");
			if (m->table) {
				const char *dot = strchr(m->table, '.');
				if (!*m->table || (dot && (dot == m->table || !dot[1] || strchr(dot + 1, '.'))))
					ERR(ymap_get(src, "table"), "source table: '%s' is not a valid name (schema.table, or table)",
					    m->table);
			}
			if (!m->table && !m->query)
				ERR(src, "source: needs 'table:' or 'query:'");
			if (!m->key)
				ERR(src, "source: needs 'key:' (the column holding the ERP's own id)");
			else
				add_col(m, m->key);
			if ((n = ymap_get(src, "on_missing"))) {
				if (n->type == YN_SCALAR && streq(n->str, "terminate"))
					m->on_missing_terminate = true;
				else if (!(n->type == YN_SCALAR && streq(n->str, "keep")))
					ERR(n, "source: on_missing is keep (the default) or terminate");
			}
		}
	} else {
		if (src)
			ERR(src, "a pull mapping has no source: the platform is the source; it writes to 'target:'");
		const struct ynode *t = ymap_get(root, "target");
		if (!t || t->type != YN_MAP) {
			ERR(t ? t : root, "a pull mapping needs target: { table: schema.table, key: column }");
		} else {
			check_keys(L, t, target_keys, ARRAY_LEN(target_keys), "target");
			m->target_table = want_string(L, ymap_get(t, "table"), "target table");
			m->deleted_column = want_string(L, ymap_get(t, "deleted_column"), "target deleted_column");
			const struct ynode *k = ymap_get(t, "key");
			size_t nk = k && k->type == YN_SEQ ? k->n : k ? 1 : 0;
			m->target_keys = xcalloc(nk + 1, sizeof *m->target_keys);
			for (size_t i = 0; i < nk; i++) {
				char *kn = want_string(L, k->type == YN_SEQ ? k->vals[i] : k, "target key");
				if (kn)
					m->target_keys[m->ntarget_keys++] = kn;
			}
			if (!m->target_table || !m->ntarget_keys)
				ERR(t, "target: needs table and key (a column, or a list of columns such as [platform, platform_id])");
		}
		if ((n = ymap_get(root, "filter"))) {
			if (n->type != YN_MAP)
				ERR(n, "filter: expected a map such as { status: approved }");
			else {
				m->filter = jv_obj();
				for (size_t i = 0; i < n->n; i++)
					if (n->vals[i]->type == YN_SCALAR)
						jv_obj_set(m->filter, n->keys[i]->str, scalar_jv(n->vals[i]));
					else
						ERR(n->vals[i], "filter '%s': expected one value", n->keys[i]->str);
			}
		}
	}
	if (!pull && ymap_get(root, "target"))
		ERR(ymap_get(root, "target"), "target: is for pull mappings (direction: pull)");

	const struct ynode *term = ymap_get(root, "terminate");
	if (term) {
		if (pull) {
			ERR(term, "terminate: is for push mappings");
		} else if (term->type != YN_MAP) {
			ERR(term, "terminate: expected { when: \"SQL condition\", fields: {...} }");
		} else {
			check_keys(L, term, terminate_keys, ARRAY_LEN(terminate_keys), "terminate");
			m->term_when = want_string(L, ymap_get(term, "when"), "terminate when");
			if (!m->term_when)
				ERR(term, "terminate: needs 'when:' (an SQL condition on the source row, e.g. dismissal_date IS NOT NULL)");
			parse_fields(L, ymap_get(term, "fields"), &m->term_fields, &m->nterm, "terminate", false, 1);
		}
	}
	const struct ynode *fields = ymap_get(root, "fields");
	if (!fields && !misspelt(root, "fields"))
		ERR(root, "missing 'fields:' (what to send, one entry per platform field)");
	else
		parse_fields(L, fields, &m->fields, &m->nfields, NULL, pull, 0);
	for (size_t i = 0; pull && i < m->ntarget_keys; i++) {
		bool found = false;
		for (size_t j = 0; j < m->nfields; j++)
			found |= streq(m->fields[j].name, m->target_keys[i]) && !m->fields[j].nested;
		if (!found)
			ERR(ymap_get(ymap_get(root, "target"), "key"),
			    "target key '%s' is not one of this mapping's fields (the fields are the target's columns)",
			    m->target_keys[i]);
	}
	unsigned char dg[32];
	sha256_final(&Ls.hash, dg);
	char hex[65];
	for (int i = 0; i < 32; i++)
		snprintf(hex + 2 * i, 3, "%02x", dg[i]);
	m->mapping_hash = xstrdup(hex);
	free(Ls.dir);
	return m;
}

static void free_fields(struct field *f, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(f[i].name);
		free(f[i].path);
		free(f[i].from);
		jv_free(f[i].value);
		for (size_t j = 0; j < f[i].tpl.n; j++) {
			free(f[i].tpl.parts[j].lit);
			free(f[i].tpl.parts[j].path);
		}
		free(f[i].tpl.parts);
		free(f[i].lookup_resource);
		free(f[i].lookup_match);
		free(f[i].xf);
		for (size_t j = 0; j < f[i].nmap; j++) {
			free(f[i].map[j].key);
			jv_free(f[i].map[j].val);
		}
		free(f[i].map);
		jv_free(f[i].def);
		if (f[i].has_re)
			regfree(&f[i].re);
		free(f[i].ref_mapping);
		free(f[i].ref_back);
		free_fields(f[i].kids, f[i].nkids);
	}
	free(f);
}

void mapping_free(struct mapping *m)
{
	if (!m)
		return;
	free(m->name);
	free(m->file);
	ydoc_free(m->doc);
	free(m->connector);
	free(m->entity);
	for (size_t i = 0; i < m->ndeps; i++)
		free(m->depends_on[i]);
	free(m->depends_on);
	free(m->table);
	free(m->query);
	free(m->key);
	free(m->where);
	free(m->term_when);
	free_fields(m->term_fields, m->nterm);
	free_fields(m->fields, m->nfields);
	for (size_t i = 0; i < m->ncols; i++)
		free(m->cols[i]);
	free(m->cols);
	jv_free(m->filter);
	free(m->target_table);
	for (size_t i = 0; i < m->ntarget_keys; i++)
		free(m->target_keys[i]);
	free(m->target_keys);
	free(m->deleted_column);
	free(m->mapping_hash);
	free(m);
}

static const struct field *find_in(const struct field *f, size_t n, const char *path)
{
	for (size_t i = 0; i < n; i++) {
		if (streq(f[i].path, path))
			return &f[i];
		const struct field *k = find_in(f[i].kids, f[i].nkids, path);
		if (k)
			return k;
	}
	return NULL;
}

const struct field *mapping_field(const struct mapping *m, const char *path)
{
	const struct field *f = find_in(m->fields, m->nfields, path);
	return f ? f : find_in(m->term_fields, m->nterm, path);
}

static bool each_lookup(const struct field *f, size_t n, bool (*fn)(void *ud, const struct field *f), void *ud)
{
	for (size_t i = 0; i < n; i++) {
		if (f[i].nested && !each_lookup(f[i].kids, f[i].nkids, fn, ud))
			return false;
		if (f[i].src == VS_LOOKUP && f[i].from && !fn(ud, &f[i]))
			return false;
	}
	return true;
}

bool mapping_each_lookup(const struct mapping *m, bool (*fn)(void *ud, const struct field *f), void *ud)
{
	return each_lookup(m->fields, m->nfields, fn, ud) && each_lookup(m->term_fields, m->nterm, fn, ud);
}
