/*
 * mapping_eval — one source row through a mapping's fields, in the order mappings/README.md §2.5 documents:
 * value (from | value | template | ref | lookup) -> transform -> map -> format ->
 * default -> required, check, max_length. Null passes through transform, check and
 * format untouched. The first failing field is the record's reason; every failure is
 * counted so a payroll team sees how much is wrong with one record.
 *
 * Reasons show values only where they are business codes (map, lookup, format);
 * checks on e-mails and NIRs never echo the value, so failures can be logged.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <wctype.h>

#include "mapping.h"
#include "nir.h"
#include "ref.h"

/* PostgreSQL type OIDs we give a JSON type to. */
enum { OID_BOOL = 16, OID_INT8 = 20, OID_INT2 = 21, OID_INT4 = 23, OID_OID = 26, OID_FLOAT4 = 700,
       OID_FLOAT8 = 701, OID_NUMERIC = 1700 };

struct ev {
	const struct mapping *m;
	const struct row *row;
	const struct eval_env *env;
	struct mapped *out;
};

static void fail(struct ev *e, const struct field *f, const char *rule, const char *fmt, ...) PRINTF_LIKE(4, 5);
static void fail(struct ev *e, const struct field *f, const char *rule, const char *fmt, ...)
{
	e->out->nerrors++;
	if (e->out->err.path)
		return;
	struct sb b = {0};
	va_list ap;
	va_start(ap, fmt);
	sb_vprintf(&b, fmt, ap);
	va_end(ap);
	e->out->err.path = xstrdup(f->path);
	e->out->err.rule = xstrdup(rule);
	e->out->err.reason = sb_steal(&b);
}

static struct jv *column_value(const struct row *r, int idx)
{
	if (idx < 0 || (size_t)idx >= r->n || !r->vals[idx])
		return jv_null();
	const char *v = r->vals[idx];
	size_t len = r->lens ? (size_t)r->lens[idx] : strlen(v);
	switch (r->oids ? r->oids[idx] : 0) {
	case OID_BOOL:
		return jv_bool(v[0] == 't');
	case OID_INT2:
	case OID_INT4:
	case OID_INT8:
	case OID_OID: {
		long long i;
		if (parse_ll(v, &i))
			return jv_int(i);
		return jv_strn(v, len);
	}
	case OID_FLOAT4:
	case OID_FLOAT8:
	case OID_NUMERIC:
		if (streq(v, "NaN") || strstr(v, "Infinity"))
			return jv_strn(v, len);
		return jv_num(v);
	default:
		return jv_strn(v, len);
	}
}

/* The text a placeholder stands for; NULL when the value is null. Caller frees. */
static char *placeholder_text(struct ev *e, const struct tpl_part *p)
{
	if (e->row->record) {
		const struct jv *v = jv_path(e->row->record, p->path);
		return jv_scalar_text(v);
	}
	if (p->col < 0 || (size_t)p->col >= e->row->n || !e->row->vals[p->col])
		return NULL;
	return xstrdup(e->row->vals[p->col]);
}

/* Render a template; NULL when any placeholder is null (mappings/README.md, `template`). Caller frees. */
static char *render(struct ev *e, const struct tpl *t)
{
	struct sb b = {0};
	sb_puts(&b, "");
	for (size_t i = 0; i < t->n; i++) {
		if (t->parts[i].lit) {
			sb_puts(&b, t->parts[i].lit);
			continue;
		}
		char *s = placeholder_text(e, &t->parts[i]);
		if (!s) {
			sb_free(&b);
			return NULL;
		}
		sb_puts(&b, s);
		free(s);
	}
	return sb_steal(&b);
}

/* ---- transforms ---- */

static size_t utf8_decode(const unsigned char *s, size_t n, wint_t *cp)
{
	if (s[0] < 0x80) {
		*cp = s[0];
		return 1;
	}
	size_t k = (s[0] & 0xE0) == 0xC0 ? 2 : (s[0] & 0xF0) == 0xE0 ? 3 : (s[0] & 0xF8) == 0xF0 ? 4 : 1;
	if (k == 1 || k > n) {
		*cp = s[0];
		return 1;
	}
	wint_t c = s[0] & (0x7F >> k);
	for (size_t i = 1; i < k; i++)
		c = (c << 6) | (s[i] & 0x3F);
	*cp = c;
	return k;
}

static void utf8_encode(struct sb *b, wint_t c)
{
	char buf[4];
	if (c < 0x80) {
		sb_putc(b, (char)c);
	} else if (c < 0x800) {
		buf[0] = (char)(0xC0 | (c >> 6));
		buf[1] = (char)(0x80 | (c & 0x3F));
		sb_add(b, buf, 2);
	} else if (c < 0x10000) {
		buf[0] = (char)(0xE0 | (c >> 12));
		buf[1] = (char)(0x80 | ((c >> 6) & 0x3F));
		buf[2] = (char)(0x80 | (c & 0x3F));
		sb_add(b, buf, 3);
	} else {
		buf[0] = (char)(0xF0 | (c >> 18));
		buf[1] = (char)(0x80 | ((c >> 12) & 0x3F));
		buf[2] = (char)(0x80 | ((c >> 6) & 0x3F));
		buf[3] = (char)(0x80 | (c & 0x3F));
		sb_add(b, buf, 4);
	}
}

static bool is_space_cp(wint_t c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f' || c == 0xA0 ||
	       c == 0x2007 || c == 0x202F || c == 0xFEFF;
}

static bool is_word_sep(wint_t c)
{
	return is_space_cp(c) || c == '-' || c == '\'' || c == 0x2019;
}

struct jv *apply_transform(enum xform t, struct jv *v)
{
	if (jv_is_null(v))
		return v;
	char *text = jv_scalar_text(v);
	jv_free(v);
	const unsigned char *s = (const unsigned char *)text;
	size_t n = strlen(text);
	struct sb b = {0};
	sb_puts(&b, "");
	switch (t) {
	case TR_TRIM: {
		/* Leading and trailing spaces, including the no-break spaces 1C exports carry. */
		size_t st = 0, en = n;
		while (st < en) {
			wint_t c;
			size_t k = utf8_decode(s + st, en - st, &c);
			if (!is_space_cp(c))
				break;
			st += k;
		}
		while (en > st) {
			size_t back = en - 1;
			while (back > st && (s[back] & 0xC0) == 0x80)
				back--;
			wint_t c;
			utf8_decode(s + back, en - back, &c);
			if (!is_space_cp(c))
				break;
			en = back;
		}
		sb_add(&b, (const char *)s + st, en - st);
		break;
	}
	case TR_COLLAPSE_SPACES: {
		/* Every run of spaces becomes one plain space; ends are trimmed. */
		bool pending = false;
		for (size_t i = 0; i < n;) {
			wint_t c;
			size_t k = utf8_decode(s + i, n - i, &c);
			if (is_space_cp(c)) {
				pending = b.len > 0;
			} else {
				if (pending)
					sb_putc(&b, ' ');
				pending = false;
				sb_add(&b, (const char *)s + i, k);
			}
			i += k;
		}
		break;
	}
	case TR_LOWER:
	case TR_UPPER:
	case TR_TITLE: {
		bool word_start = true;
		for (size_t i = 0; i < n;) {
			wint_t c;
			size_t k = utf8_decode(s + i, n - i, &c);
			wint_t o = c;
			if (t == TR_LOWER)
				o = towlower(c);
			else if (t == TR_UPPER)
				o = towupper(c);
			else
				o = word_start ? towupper(c) : towlower(c);
			word_start = is_word_sep(c);
			utf8_encode(&b, o);
			i += k;
		}
		break;
	}
	case TR_DIGITS:
		for (size_t i = 0; i < n; i++)
			if (isdigit(s[i]))
				sb_putc(&b, (char)s[i]);
		break;
	case TR_NULLIFY_EMPTY: {
		bool blank = true;
		for (size_t i = 0; i < n;) {
			wint_t c;
			i += utf8_decode(s + i, n - i, &c);
			if (!is_space_cp(c))
				blank = false;
		}
		struct jv *r = blank ? jv_null() : jv_strn((const char *)s, n);
		free(text);
		sb_free(&b);
		return r;
	}
	}
	free(text);
	struct jv *r = jv_strn(b.s, b.len);
	sb_free(&b);
	return r;
}

/* ---- formats ---- */

struct when {
	int y, mo, d, h, mi, s;
	bool has_time, has_tz;
	int tz_min;   /* offset east of UTC, minutes */
};

static bool real_date(int y, int mo, int d)
{
	static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	if (y < 1 || y > 9999 || mo < 1 || mo > 12 || d < 1)
		return false;
	int dm = days[mo - 1];
	if (mo == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
		dm = 29;
	return d <= dm;
}

static bool num(const char **p, int digits, int *out)
{
	int v = 0;
	for (int i = 0; i < digits; i++) {
		if (!isdigit((unsigned char)(*p)[i]))
			return false;
		v = v * 10 + ((*p)[i] - '0');
	}
	*p += digits;
	*out = v;
	return true;
}

/* Dates as ERPs write them: 2026-11-25, 25.11.2026 (1C), 25/11/2026, with an optional time and offset. */
static bool parse_when(const char *s, struct when *w)
{
	memset(w, 0, sizeof *w);
	const char *p = s;
	while (*p == ' ')
		p++;
	if (isdigit((unsigned char)p[0]) && isdigit((unsigned char)p[1]) && (p[2] == '.' || p[2] == '/')) {
		char sep = p[2];
		if (!num(&p, 2, &w->d) || *p++ != sep || !num(&p, 2, &w->mo) || *p++ != sep || !num(&p, 4, &w->y))
			return false;
	} else {
		if (!num(&p, 4, &w->y) || *p++ != '-' || !num(&p, 2, &w->mo) || *p++ != '-' || !num(&p, 2, &w->d))
			return false;
	}
	if (!real_date(w->y, w->mo, w->d))
		return false;
	if (*p == 'T' || *p == ' ') {
		const char *q = p + 1;
		if (isdigit((unsigned char)*q)) {
			p = q;
			if (!num(&p, 2, &w->h) || *p++ != ':' || !num(&p, 2, &w->mi))
				return false;
			if (*p == ':') {
				p++;
				if (!num(&p, 2, &w->s))
					return false;
				if (*p == '.' || *p == ',') {
					p++;
					while (isdigit((unsigned char)*p))
						p++;
				}
			}
			if (w->h > 23 || w->mi > 59 || w->s > 60)
				return false;
			w->has_time = true;
			if (*p == 'Z') {
				w->has_tz = true;
				p++;
			} else if (*p == '+' || *p == '-') {
				int sign = *p == '-' ? -1 : 1, oh = 0, om = 0;
				p++;
				if (!num(&p, 2, &oh))
					return false;
				if (*p == ':')
					p++;
				if (isdigit((unsigned char)*p) && !num(&p, 2, &om))
					return false;
				if (oh > 23 || om > 59)
					return false;
				w->has_tz = true;
				w->tz_min = sign * (oh * 60 + om);
			}
		}
	}
	while (*p == ' ')
		p++;
	return *p == '\0';
}

/* Epoch seconds of w; times without an offset are local time in the configured zone (TZ). */
static long long when_epoch(struct when *w)
{
	struct tm tm = {0};
	tm.tm_year = w->y - 1900;
	tm.tm_mon = w->mo - 1;
	tm.tm_mday = w->d;
	tm.tm_hour = w->h;
	tm.tm_min = w->mi;
	tm.tm_sec = w->s;
	if (w->has_tz)
		return (long long)timegm(&tm) - w->tz_min * 60LL;
	tm.tm_isdst = -1;
	time_t t = mktime(&tm);
	struct tm back;
	localtime_r(&t, &back);
	w->tz_min = (int)(back.tm_gmtoff / 60);
	w->has_tz = true;
	return (long long)t;
}

static bool parse_bool_text(const char *s, bool *b)
{
	static const char *const yes[] = {"true", "t", "yes", "y", "1", "on", "да", "oui"};
	static const char *const no[] = {"false", "f", "no", "n", "0", "off", "нет", "non"};
	for (size_t i = 0; i < ARRAY_LEN(yes); i++)
		if (strcasecmp(s, yes[i]) == 0) {
			*b = true;
			return true;
		}
	for (size_t i = 0; i < ARRAY_LEN(no); i++)
		if (strcasecmp(s, no[i]) == 0) {
			*b = false;
			return true;
		}
	return false;
}

/* JSON's number grammar (RFC 8259): -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)? */
static bool json_number(const char *s)
{
	const char *p = s;
	if (*p == '-')
		p++;
	if (*p == '0')
		p++;
	else if (*p >= '1' && *p <= '9')
		while (isdigit((unsigned char)*p))
			p++;
	else
		return false;
	if (*p == '.') {
		p++;
		if (!isdigit((unsigned char)*p))
			return false;
		while (isdigit((unsigned char)*p))
			p++;
	}
	if (*p == 'e' || *p == 'E') {
		p++;
		if (*p == '+' || *p == '-')
			p++;
		if (!isdigit((unsigned char)*p))
			return false;
		while (isdigit((unsigned char)*p))
			p++;
	}
	return *p == '\0';
}

/* Trim ASCII spaces in place (char(n) columns are padded); returns the start. */
static char *trim_ascii(char *s)
{
	while (*s == ' ' || *s == '\t')
		s++;
	size_t n = strlen(s);
	while (n && (s[n - 1] == ' ' || s[n - 1] == '\t'))
		s[--n] = '\0';
	return s;
}

/* Convert *v in place. On failure returns false and *why (caller frees). */
bool format_value(enum vfmt f, struct jv **v, char **why)
{
	if (f == VF_NONE || jv_is_null(*v))
		return true;
	struct jv *in = *v;
	char *text = jv_scalar_text(in);
	if (!text)
		text = xstrdup("");
	bool ok = true;
	struct jv *out = NULL;
	switch (f) {
	case VF_STRING:
		out = jv_str(text);
		break;
	case VF_INT: {
		long long i;
		double d;
		char *t = trim_ascii(text);
		/* "12", "12.00" (a numeric column): the integer part, read exactly. */
		size_t digits = strspn(t + (t[0] == '-' || t[0] == '+'), "0123456789") + (t[0] == '-' || t[0] == '+');
		const char *rest = t + digits;
		bool zero_frac = *rest == '\0' || (*rest == '.' && strspn(rest + 1, "0") == strlen(rest + 1));
		if (in->t == JV_BOOL) {
			out = jv_int(in->u.b);
		} else if (zero_frac && digits > 0) {
			char *ip = xstrndup(t, digits);
			ok = parse_ll(ip, &i);
			free(ip);
			if (ok)
				out = jv_int(i);
			else
				*why = xasprintf("'%s' is too large for a whole number", text);
		} else if (parse_double(t, &d) && fabs(d) < 9007199254740992.0 && d == floor(d)) {
			out = jv_int((long long)d); /* "1e3": exact below 2^53 */
		} else {
			ok = false;
			*why = xasprintf("'%s' is not a whole number", text);
		}
		break;
	}
	case VF_NUMBER: {
		char *orig = xstrdup(text);
		/* French and Russian ERPs write decimals with a comma. */
		for (char *c = text; *c; c++)
			if (*c == ',')
				*c = '.';
		double d;
		char *t = trim_ascii(text);
		if (in->t == JV_INT || in->t == JV_NUM) {
			out = jv_copy(in);
		} else if (parse_double(t, &d)) {
			/* Keep the ERP's own digits ("12.50") when they are a valid JSON number. */
			long long i;
			if (parse_ll(t, &i) && json_number(t))
				out = jv_int(i);
			else if (json_number(t))
				out = jv_num(t);
			else {
				char buf[64];
				snprintf(buf, sizeof buf, "%.15g", d);
				out = jv_num(buf);
			}
		} else {
			ok = false;
			*why = xasprintf("'%s' is not a number (digits with a . or , for decimals; no spaces or thousands separators)",
					 orig);
		}
		free(orig);
		break;
	}
	case VF_BOOL: {
		bool b;
		if (in->t == JV_BOOL)
			out = jv_bool(in->u.b);
		else if (parse_bool_text(text, &b))
			out = jv_bool(b);
		else {
			ok = false;
			*why = xasprintf("'%s' is not true or false", text);
		}
		break;
	}
	case VF_DATE:
	case VF_DATETIME:
	case VF_UNIX: {
		struct when w;
		if (in->t == JV_INT && f == VF_UNIX) {
			out = jv_int(in->u.i);
			break;
		}
		if (!parse_when(text, &w)) {
			ok = false;
			*why = xasprintf("'%s' is not a real date (expected 2026-11-25, 25.11.2026 or 25/11/2026, optionally with a time)",
					 text);
			break;
		}
		if (f == VF_DATE) {
			char buf[16];
			snprintf(buf, sizeof buf, "%04d-%02d-%02d", w.y, w.mo, w.d);
			out = jv_str(buf);
		} else if (f == VF_UNIX) {
			out = jv_int(when_epoch(&w));
		} else {
			if (!w.has_tz)
				when_epoch(&w);
			char buf[40];
			int off = w.tz_min < 0 ? -w.tz_min : w.tz_min;
			snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d%c%02d:%02d", w.y, w.mo, w.d, w.h, w.mi,
				 w.s, w.tz_min < 0 ? '-' : '+', off / 60, off % 60);
			out = jv_str(buf);
		}
		break;
	}
	case VF_NONE:
		break;
	}
	free(text);
	if (ok) {
		jv_free(in);
		*v = out;
	}
	return ok;
}

bool check_email(const char *s)
{
	const char *at = strchr(s, '@');
	if (!at || at == s || strchr(at + 1, '@'))
		return false;
	for (const char *p = s; p < at; p++) {
		unsigned char c = (unsigned char)*p;
		if (!(isalnum(c) || strchr("!#$%&'*+/=?^_`{|}~.-", c)))
			return false;
		if (c == '.' && (p == s || p + 1 == at || p[1] == '.'))
			return false;
	}
	const char *dom = at + 1;
	size_t len = strlen(dom);
	if (len < 4 || !strchr(dom, '.'))
		return false;
	const char *label = dom;
	for (const char *p = dom;; p++) {
		if (*p == '.' || *p == '\0') {
			size_t ll = (size_t)(p - label);
			if (ll == 0 || label[0] == '-' || label[ll - 1] == '-')
				return false;
			if (*p == '\0') {
				/* the top-level domain: letters only, at least two */
				if (ll < 2)
					return false;
				for (size_t i = 0; i < ll; i++)
					if (!isalpha((unsigned char)label[i]))
						return false;
				break;
			}
			label = p + 1;
			continue;
		}
		if (!(isalnum((unsigned char)*p) || *p == '-'))
			return false;
	}
	return true;
}

/* ---- one field ---- */

static bool is_blank_string(const struct jv *v)
{
	if (!v || v->t != JV_STR)
		return false;
	for (size_t i = 0; i < v->u.str.len; i++)
		if (!isspace((unsigned char)v->u.str.s[i]))
			return false;
	return true;
}

static void fail_encoding(struct ev *e, const struct field *f)
{
	fail(e, f, "encoding", "the value holds bytes that are not UTF-8 (a CP1251 export?); convert the mirror to UTF-8");
}

/*
 * The steps of one field, in the order of eval_field. Each takes the value in *v (owned) and
 * returns true with the new value there, or false after fail() (or a deferral) with *v freed
 * or never set. The source steps start from *v == NULL, and may leave it NULL (read: null).
 */

/* from: a column of the row (push), or a dotted path in the platform record (pull). */
static bool source_from(struct ev *e, const struct field *f, struct jv **v)
{
	if (e->row->record) {
		const struct jv *x = jv_path(e->row->record, f->from);
		*v = x ? jv_copy(x) : jv_null();
	} else {
		*v = column_value(e->row, f->col_idx);
	}
	return true;
}

static bool source_template(struct ev *e, const struct field *f, struct jv **v)
{
	char *s = render(e, &f->tpl);
	*v = s ? jv_str(s) : jv_null();
	free(s);
	return true;
}

/* ref: render, validate (ref.h), then ask the engine for the platform's id. */
static bool source_ref(struct ev *e, const struct field *f, struct jv **v)
{
	char *s = render(e, &f->tpl);
	const char *colon = s ? strchr(s, ':') : NULL;
	if (!s || (colon && !colon[1 + strspn(colon + 1, " ")])) {
		/* A null column, or an empty one ('' is how many ERPs say "none"): no reference. */
		free(s);
		*v = jv_null();
		return true;
	}
	if (!utf8_valid(s, strlen(s))) {
		fail_encoding(e, f);
		free(s);
		return false;
	}
	enum ref_scheme scheme;
	const char *id;
	char nir[16], why[160];
	if (!ref_parse(s, &scheme, &id, nir, why, sizeof why)) {
		fail(e, f, "ref", "%s", why);
		free(s);
		return false;
	}
	if (e->out->err.path) {
		/* The record already failed: spare the lookup. */
		free(s);
		return false;
	}
	char *reason = NULL;
	enum ref_status st = e->env->resolve(e->env->ctx, f, (int)scheme, id, nir, v, &reason);
	if (st == REF_INVALID) {
		fail(e, f, "ref", "%s", reason ? reason : "unresolvable reference");
		free(reason);
		free(s);
		return false;
	}
	if (st == REF_DEFERRED) {
		if (!e->out->defer_reason) {
			e->out->defer_reason = reason ? reason : xstrdup("reference not resolved yet");
			e->out->defer_field = xstrdup(f->path);
		} else {
			free(reason);
		}
		free(s);
		return false;
	}
	free(reason);
	free(s);
	return true;
}

/* lookup: the name in `from` through one of the connector's reference lists. */
static bool source_lookup(struct ev *e, const struct field *f, struct jv **v)
{
	struct jv *name = e->row->record ? jv_copy(jv_path(e->row->record, f->from)) : column_value(e->row, f->col_idx);
	char *text = jv_scalar_text(name);
	jv_free(name);
	if (text && !utf8_valid(text, strlen(text))) {
		fail_encoding(e, f);
		free(text);
		return false;
	}
	if (!text || !text[strspn(text, " \t")]) {
		free(text);
		*v = jv_null();
		return true;
	}
	struct jv *id = NULL;
	if (!e->env->lookup(e->env->ctx, f->lookup_resource, f->lookup_match, text, &id)) {
		/* A callback may explain why in *out (several items share the name). */
		if (id && id->t == JV_STR)
			fail(e, f, "lookup", "%s", id->u.str.s);
		else
			fail(e, f, "lookup", "no %s with %s '%s' on the platform", f->lookup_resource, f->lookup_match,
			     text);
		jv_free(id);
		free(text);
		return false;
	}
	free(text);
	*v = id;
	return true;
}

static bool field_source(struct ev *e, const struct field *f, struct jv **v)
{
	switch (f->src) {
	case VS_NONE:
		*v = jv_null();
		return true;
	case VS_FROM:
		return source_from(e, f, v);
	case VS_VALUE:
		*v = jv_copy(f->value);
		return true;
	case VS_TEMPLATE:
		return source_template(e, f, v);
	case VS_REF:
		return source_ref(e, f, v);
	case VS_LOOKUP:
		return source_lookup(e, f, v);
	}
	return true;
}

/* ref_back (pull): a platform id (not null) -> the ERP key of the mapping linked to it. */
static bool follow_ref_back(struct ev *e, const struct field *f, struct jv **v)
{
	char *pid = jv_id_text(*v);
	struct jv *key = NULL;
	bool found = pid && e->env->ref_back && e->env->ref_back(e->env->ctx, f->ref_back, pid, &key);
	if (!found) {
		fail(e, f, "ref_back", "platform id %s is not linked to any record of mapping '%s'", pid ? pid : "?",
		     f->ref_back);
		free(pid);
		jv_free(*v);
		return false;
	}
	free(pid);
	jv_free(*v);
	*v = key;
	return true;
}

/* map / map_file on a value that is not null; a code it does not list follows `unmapped`. */
static bool apply_map(struct ev *e, const struct field *f, struct jv **v)
{
	char *k = jv_scalar_text(*v);
	const struct map_entry *hit = NULL;
	for (size_t i = 0; i < f->nmap; i++)
		if (streq(f->map[i].key, k)) {
			hit = &f->map[i];
			break;
		}
	if (hit) {
		jv_free(*v);
		*v = jv_copy(hit->val);
	} else if (f->unmapped == UNM_ERROR) {
		fail(e, f, "map", "no entry for '%s' in its map (add it, or set unmapped: null or keep)", k);
		free(k);
		jv_free(*v);
		return false;
	} else if (f->unmapped == UNM_NULL) {
		jv_free(*v);
		*v = jv_null();
	}
	free(k);
	return true;
}

/* check: email, nir (the first NIR accepted is kept for ssn: references) or regex, on a value not null. */
static bool passes_check(struct ev *e, const struct field *f, const struct jv *v)
{
	char *t = jv_scalar_text(v);
	bool ok = true;
	if (f->check == VC_EMAIL) {
		ok = check_email(t);
		if (!ok)
			fail(e, f, "check", "not a valid e-mail address");
	} else if (f->check == VC_NIR) {
		char norm[16];
		enum nir_status st = nir_check(t, norm);
		ok = st == NIR_OK;
		if (!ok) {
			fail(e, f, "check", "invalid NIR: %s", nir_status_text(st));
		} else if (!e->out->has_nir) {
			e->out->has_nir = true;
			memcpy(e->out->nir, norm, 16);
		}
	} else if (f->check == VC_REGEX) {
		ok = regexec(&f->re, t, 0, NULL, 0) == 0;
		if (!ok)
			fail(e, f, "check", "does not match the pattern of its check");
	}
	free(t);
	return ok;
}

/* required, check and max_length, in that order: false after fail() on the first that does not hold. */
static bool value_holds(struct ev *e, const struct field *f, const struct jv *v)
{
	if (f->required && (jv_is_null(v) || is_blank_string(v))) {
		fail(e, f, "required", jv_is_null(v) ? "is required but missing (null)" : "is required but empty");
		return false;
	}
	if (!jv_is_null(v) && f->check != VC_NONE && !passes_check(e, f, v))
		return false;
	if (f->max_length && v->t == JV_STR) {
		size_t cps = utf8_len(v->u.str.s, v->u.str.len);
		if (cps > (size_t)f->max_length) {
			fail(e, f, "max_length", "is %zu characters long, more than max_length %ld", cps, f->max_length);
			return false;
		}
	}
	return true;
}

/* Returns the field's final value (never NULL: JV_NULL for null), or NULL when it failed/deferred. */
static struct jv *eval_field(struct ev *e, const struct field *f)
{
	struct jv *v = NULL;
	if (!field_source(e, f, &v))
		return NULL;
	if (!v)
		v = jv_null();
	if (v->t == JV_STR && !utf8_valid(v->u.str.s, v->u.str.len)) {
		/* A SQL_ASCII mirror can hold raw CP1251 bytes from a 1C export. */
		fail_encoding(e, f);
		jv_free(v);
		return NULL;
	}
	if (f->ref_back && !jv_is_null(v) && !follow_ref_back(e, f, &v))
		return NULL;
	for (size_t i = 0; i < f->nxf; i++)
		v = apply_transform(f->xf[i], v);
	if (f->has_map && !jv_is_null(v) && !apply_map(e, f, &v))
		return NULL;
	char *why = NULL;
	if (!format_value(f->fmt, &v, &why)) {
		fail(e, f, "format", "%s", why);
		free(why);
		jv_free(v);
		return NULL;
	}
	if (jv_is_null(v) && f->def) {
		jv_free(v);
		v = jv_copy(f->def);
	}
	if (!value_holds(e, f, v)) {
		jv_free(v);
		return NULL;
	}
	return v;
}

/* Fill obj with fields; returns false when something failed or was deferred. */
static bool eval_into(struct ev *e, const struct field *fields, size_t n, struct jv *obj)
{
	bool ok = true;
	for (size_t i = 0; i < n; i++) {
		const struct field *f = &fields[i];
		if (f->nested) {
			struct jv *sub = jv_obj();
			bool sub_ok = eval_into(e, f->kids, f->nkids, sub);
			ok = ok && sub_ok;
			bool all_null = true;
			for (size_t j = 0; j < sub->u.obj.n; j++)
				if (!jv_is_null(sub->u.obj.v[j]))
					all_null = false;
			/* A sub-resource whose fields are all null is left out (an asset with no holder). */
			if (!sub_ok || all_null)
				jv_free(sub);
			else
				jv_obj_set(obj, f->name, sub);
			continue;
		}
		struct jv *v = eval_field(e, f);
		if (!v) {
			ok = false;
			continue;
		}
		if (jv_is_null(v) && f->omit_null)
			jv_free(v);
		else
			jv_obj_set(obj, f->name, v);
	}
	return ok;
}

int mapping_eval(const struct mapping *m, const struct field *fields, size_t nfields, const struct row *row,
		 const struct eval_env *env, struct mapped *out)
{
	struct ev e = {.m = m, .row = row, .env = env, .out = out};
	struct jv *obj = jv_obj();
	bool ok = eval_into(&e, fields, nfields, obj);
	if (out->err.path) {
		jv_free(obj);
		return 1;
	}
	if (!ok || out->defer_reason) {
		jv_free(obj);
		return 2;
	}
	out->payload = obj;
	return 0;
}

struct jv *row_json(const struct mapping *m, const struct row *row)
{
	struct jv *o = jv_obj();
	for (size_t i = 0; i < m->ncols && i < row->n; i++) {
		struct jv *v = column_value(row, (int)i);
		if (v->t == JV_STR && !utf8_valid(v->u.str.s, v->u.str.len)) {
			jv_free(v);
			v = jv_str("(bytes that are not UTF-8)");
		}
		jv_obj_set(o, m->cols[i], v);
	}
	return o;
}

void mapped_free(struct mapped *out)
{
	jv_free(out->payload);
	free(out->err.path);
	free(out->err.rule);
	free(out->err.reason);
	free(out->defer_reason);
	free(out->defer_field);
	memset(out, 0, sizeof *out);
}
