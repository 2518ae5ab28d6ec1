/*
 * fuzz_template — values through the mapping rules: apply_transform() for every enum
 * xform, format_value() for every enum vfmt, check_email(), and templates (parsed by
 * mapping_load(), rendered by mapping_eval()).
 *
 * Input: byte 0 picks the value's JSON type (string, integer, number, boolean) and a
 * chain of transforms; then a line with a template; the rest is the value (also the
 * template's column values, split on '|').
 *
 * Properties:
 *  - a transform of a UTF-8 string gives a UTF-8 string (or null for nullify_empty);
 *    trim and collapse_spaces are idempotent and leave no space at either end; digits
 *    keeps only ASCII digits;
 *  - format_value() either succeeds with a value of its format, or fails with a reason
 *    and leaves the value alone; number and int results dump as JSON that parses;
 *    date gives YYYY-MM-DD, datetime an RFC 3339 time with a [+-]HH:MM offset
 *    (HH <= 23, MM <= 59), unix an integer;
 *  - a template renders to UTF-8 when its text and values are UTF-8.
 */
#include "fuzz.h"

#include "mapping.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fuzz_setup(true);
	return 0;
}

static const char *const xform_names[] = {"trim", "lower", "upper", "title", "digits", "nullify_empty",
					  "collapse_spaces"};
static const char *const vfmt_names[] = {"none", "string", "int", "number", "bool", "date", "datetime", "unix"};

static bool is_space_ascii_or_nbsp(const char *s, size_t i, size_t n, bool at_end)
{
	/* The spaces trim knows: ASCII white space, U+00A0, U+2007, U+202F, U+FEFF. */
	const unsigned char *u = (const unsigned char *)s;
	if (!at_end) {
		if (i < n && strchr(" \t\n\r\v\f", u[i]) && u[i])
			return true;
		if (i + 1 < n && u[i] == 0xC2 && u[i + 1] == 0xA0)
			return true;
		if (i + 2 < n && u[i] == 0xE2 && u[i + 1] == 0x80 && (u[i + 2] == 0x87 || u[i + 2] == 0xAF))
			return true;
		if (i + 2 < n && u[i] == 0xEF && u[i + 1] == 0xBB && u[i + 2] == 0xBF)
			return true;
		return false;
	}
	if (n == 0)
		return false;
	if (strchr(" \t\n\r\v\f", u[n - 1]) && u[n - 1])
		return true;
	if (n >= 2 && u[n - 2] == 0xC2 && u[n - 1] == 0xA0)
		return true;
	if (n >= 3 && u[n - 3] == 0xE2 && u[n - 2] == 0x80 && (u[n - 1] == 0x87 || u[n - 1] == 0xAF))
		return true;
	if (n >= 3 && u[n - 3] == 0xEF && u[n - 2] == 0xBB && u[n - 1] == 0xBF)
		return true;
	return false;
}

static void check_transform(enum xform t, const struct jv *in, bool utf8_in)
{
	struct jv *out = apply_transform(t, jv_copy(in));
	const char *name = xform_names[t];
	FUZZ_CHECK(out != NULL, "%s returned NULL", name);
	if (out->t == JV_NULL) {
		FUZZ_CHECK(t == TR_NULLIFY_EMPTY || jv_is_null(in), "%s gave null", name);
		jv_free(out);
		return;
	}
	FUZZ_CHECK(out->t == JV_STR, "%s gave a JSON type %d", name, (int)out->t);
	const char *s = out->u.str.s;
	size_t n = out->u.str.len;
	if (utf8_in)
		FUZZ_CHECK(utf8_valid(s, n), "%s of a UTF-8 value gave bytes that are not UTF-8", name);
	if (t == TR_DIGITS)
		for (size_t i = 0; i < n; i++)
			FUZZ_CHECK(s[i] >= '0' && s[i] <= '9', "digits kept '%c'", s[i]);
	if (utf8_in && (t == TR_TRIM || t == TR_COLLAPSE_SPACES)) {
		FUZZ_CHECK(!is_space_ascii_or_nbsp(s, 0, n, false), "%s left a space at the start", name);
		FUZZ_CHECK(!is_space_ascii_or_nbsp(s, 0, n, true), "%s left a space at the end", name);
		struct jv *again = apply_transform(t, jv_copy(out));
		FUZZ_CHECK(jv_equal(again, out), "%s is not idempotent", name);
		jv_free(again);
	}
	if (utf8_in && t == TR_COLLAPSE_SPACES)
		FUZZ_CHECK(!strstr(s, "  "), "collapse_spaces left two spaces");
	jv_free(out);
}

static bool digits_at(const char *s, int n)
{
	for (int i = 0; i < n; i++)
		if (!(s[i] >= '0' && s[i] <= '9'))
			return false;
	return true;
}

static int two(const char *s)
{
	return (s[0] - '0') * 10 + (s[1] - '0');
}

static void check_format(enum vfmt f, const struct jv *in, bool utf8_in)
{
	struct jv *v = jv_copy(in);
	char *why = NULL;
	const char *name = vfmt_names[f];
	bool ok = format_value(f, &v, &why);
	if (!ok) {
		FUZZ_CHECK(why != NULL, "format %s failed without a reason", name);
		FUZZ_CHECK(jv_equal(v, in), "format %s failed and changed the value", name);
		if (utf8_in)
			FUZZ_CHECK(utf8_valid(why, strlen(why)), "format %s reason is not UTF-8", name);
		free(why);
		jv_free(v);
		return;
	}
	FUZZ_CHECK(why == NULL, "format %s succeeded with a reason", name);
	FUZZ_CHECK(v != NULL, "format %s gave NULL", name);
	if (jv_is_null(in) || f == VF_NONE) {
		FUZZ_CHECK(jv_equal(v, in), "format %s changed a null or unformatted value", name);
		jv_free(v);
		return;
	}
	char *text = jv_dumps(v);
	char err[200];
	struct jv *back = jv_parse(text, strlen(text), err, sizeof err);
	if (f == VF_NUMBER || f == VF_INT || utf8_in)
		FUZZ_CHECK(back != NULL, "format %s output does not dump as JSON (%s): %s", name, err, text);
	jv_free(back);
	switch (f) {
	case VF_INT:
	case VF_UNIX:
		FUZZ_CHECK(v->t == JV_INT, "format %s gave type %d: %s", name, (int)v->t, text);
		break;
	case VF_NUMBER:
		FUZZ_CHECK(v->t == JV_INT || v->t == JV_NUM, "format number gave type %d: %s", (int)v->t, text);
		break;
	case VF_BOOL:
		FUZZ_CHECK(v->t == JV_BOOL, "format bool gave type %d", (int)v->t);
		break;
	case VF_STRING:
		FUZZ_CHECK(v->t == JV_STR, "format string gave type %d", (int)v->t);
		break;
	case VF_DATE: {
		const char *s = v->t == JV_STR ? v->u.str.s : "";
		FUZZ_CHECK(strlen(s) == 10 && digits_at(s, 4) && s[4] == '-' && digits_at(s + 5, 2) && s[7] == '-' &&
				   digits_at(s + 8, 2),
			   "format date gave %s", text);
		break;
	}
	case VF_DATETIME: {
		/* 2026-11-25T14:37:21+01:00 */
		const char *s = v->t == JV_STR ? v->u.str.s : "";
		bool shape = strlen(s) == 25 && digits_at(s, 4) && s[4] == '-' && digits_at(s + 5, 2) && s[7] == '-' &&
			     digits_at(s + 8, 2) && s[10] == 'T' && digits_at(s + 11, 2) && s[13] == ':' &&
			     digits_at(s + 14, 2) && s[16] == ':' && digits_at(s + 17, 2) &&
			     (s[19] == '+' || s[19] == '-') && digits_at(s + 20, 2) && s[22] == ':' && digits_at(s + 23, 2);
		if (FUZZ_KNOWN_BUG(3) && strlen(s) != 25)
			break;
		FUZZ_CHECK(shape, "format datetime gave %s", text);
		FUZZ_CHECK(two(s + 11) <= 23 && two(s + 14) <= 59 && two(s + 17) <= 60, "format datetime gave the time %s",
			   text);
		FUZZ_CHECK(FUZZ_KNOWN_BUG(3) || (two(s + 20) <= 23 && two(s + 23) <= 59), "format datetime gave the offset %s", text);
		break;
	}
	case VF_NONE:
		break;
	}
	free(text);
	jv_free(v);
}

/* A YAML double-quoted scalar holding s. */
static void yaml_quote(struct sb *b, const char *s)
{
	sb_putc(b, '"');
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p == '"' || *p == '\\')
			sb_printf(b, "\\%c", *p);
		else if (*p < 0x20 || *p == 0x7F)
			sb_printf(b, "\\x%02X", *p);
		else
			sb_putc(b, (char)*p);
	}
	sb_putc(b, '"');
}

static void check_template(const char *tpl, const char *values, bool utf8_in)
{
	struct sb y = {0};
	sb_puts(&y, "connector: c\nentity: e\nsource: { table: t, key: k }\nfields:\n  out: { template: ");
	yaml_quote(&y, tpl);
	sb_puts(&y, " }\n");
	char *path = fuzz_dir_write("template.yaml", y.s, y.len);
	sb_free(&y);
	struct diag d = {0};
	struct mapping *m = mapping_load(path, &d);
	free(path);
	if (m && !d.errors) {
		/* Column i gets the i-th '|'-separated piece of values (NULL when there are too few). */
		char **vals = xcalloc(m->ncols + 1, sizeof *vals);
		unsigned *oids = xcalloc(m->ncols + 1, sizeof *oids);
		const char *p = values;
		for (size_t i = 0; i < m->ncols && p; i++) {
			const char *bar = strchr(p, '|');
			vals[i] = bar ? xstrndup(p, (size_t)(bar - p)) : xstrdup(p);
			oids[i] = 25;
			p = bar ? bar + 1 : NULL;
		}
		struct row r = {.n = m->ncols, .vals = (const char *const *)vals, .oids = oids};
		struct eval_env env = {0};
		struct mapped out = {0};
		int rc = mapping_eval(m, m->fields, m->nfields, &r, &env, &out);
		if (rc == 0) {
			const struct jv *o = jv_obj_get(out.payload, "out");
			FUZZ_CHECK(o && (o->t == JV_STR || o->t == JV_NULL), "a template gave no string");
			if (utf8_in && o->t == JV_STR)
				FUZZ_CHECK(utf8_valid(o->u.str.s, o->u.str.len), "a template rendered bytes that are not UTF-8");
		} else {
			FUZZ_CHECK(rc == 1 && out.err.rule, "a template failed with %d and no rule", rc);
		}
		mapped_free(&out);
		for (size_t i = 0; i < m->ncols; i++)
			free(vals[i]);
		free(vals);
		free(oids);
	}
	mapping_free(m);
	diag_free(&d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fz in = {data, size};
	uint8_t sel = fz_u8(&in);
	uint8_t chain = fz_u8(&in);
	char *tpl = fz_line(&in);
	size_t len;
	char *text = fz_rest(&in, &len);
	/* Strings are C strings in the engine (a column value ends at its NUL). */
	len = strlen(text);
	bool utf8_in = utf8_valid(text, len);

	struct jv *v;
	long long iv;
	switch (sel % 5) {
	case 0: v = jv_strn(text, len); break;
	case 1: v = jv_int(parse_ll(text, &iv) ? iv : (long long)len); break;
	case 2: {
		/* A JV_NUM's text must be a JSON number (json.h): keep only such text. */
		double d;
		v = parse_double(text, &d) && text[0] != '+' && text[0] != '.' && strcmp(text, "-") ? jv_num(text)
												 : jv_strn(text, len);
		if (v->t == JV_NUM) {
			char *dump = jv_dumps(v);
			struct jv *ok = jv_parse(dump, strlen(dump), NULL, 0);
			if (!ok) {
				jv_free(v);
				v = jv_strn(text, len);
			}
			jv_free(ok);
			free(dump);
		}
		break;
	}
	case 3: v = jv_bool(sel & 0x80); break;
	default: v = jv_null(); break;
	}

	for (int t = TR_TRIM; t <= TR_COLLAPSE_SPACES; t++)
		check_transform((enum xform)t, v, utf8_in);
	for (int f = VF_NONE; f <= VF_UNIX; f++)
		check_format((enum vfmt)f, v, utf8_in);

	/* A chain, as a field's transform: list applies them. */
	struct jv *c = jv_copy(v);
	for (int i = 0; i < 3; i++)
		c = apply_transform((enum xform)(((chain >> (i * 2)) & 3) + (i == 2 ? 3 : 0)), c);
	for (int f = VF_NONE; f <= VF_UNIX; f++)
		check_format((enum vfmt)f, c, utf8_in);
	jv_free(c);

	(void)check_email(text);
	check_template(tpl, text, utf8_in && utf8_valid(tpl, strlen(tpl)));

	jv_free(v);
	free(text);
	free(tpl);
	return 0;
}
