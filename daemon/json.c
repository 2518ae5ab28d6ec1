/*
 * json — see json.h.
 */
#include "json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yajl/yajl_parse.h>

static struct jv *jv_new(enum jv_type t)
{
	struct jv *v = xcalloc(1, sizeof *v);
	v->t = t;
	return v;
}

struct jv *jv_null(void) { return jv_new(JV_NULL); }

struct jv *jv_bool(bool b)
{
	struct jv *v = jv_new(JV_BOOL);
	v->u.b = b;
	return v;
}

struct jv *jv_int(long long i)
{
	struct jv *v = jv_new(JV_INT);
	v->u.i = i;
	return v;
}

struct jv *jv_num(const char *text)
{
	struct jv *v = jv_new(JV_NUM);
	v->u.str.len = strlen(text);
	v->u.str.s = xstrndup(text, v->u.str.len);
	return v;
}

struct jv *jv_strn(const char *s, size_t n)
{
	struct jv *v = jv_new(JV_STR);
	v->u.str.s = xstrndup(s, n);
	v->u.str.len = n;
	return v;
}

struct jv *jv_str(const char *s) { return jv_strn(s, strlen(s)); }
struct jv *jv_arr(void) { return jv_new(JV_ARR); }
struct jv *jv_obj(void) { return jv_new(JV_OBJ); }

void jv_free(struct jv *v)
{
	if (!v)
		return;
	switch (v->t) {
	case JV_STR:
	case JV_NUM:
		free(v->u.str.s);
		break;
	case JV_ARR:
		for (size_t i = 0; i < v->u.arr.n; i++)
			jv_free(v->u.arr.v[i]);
		free(v->u.arr.v);
		break;
	case JV_OBJ:
		for (size_t i = 0; i < v->u.obj.n; i++) {
			free(v->u.obj.k[i]);
			jv_free(v->u.obj.v[i]);
		}
		free(v->u.obj.k);
		free(v->u.obj.v);
		break;
	default:
		break;
	}
	free(v);
}

struct jv *jv_copy(const struct jv *v)
{
	if (!v)
		return NULL;
	switch (v->t) {
	case JV_NULL: return jv_null();
	case JV_BOOL: return jv_bool(v->u.b);
	case JV_INT: return jv_int(v->u.i);
	case JV_NUM: return jv_num(v->u.str.s);
	case JV_STR: return jv_strn(v->u.str.s, v->u.str.len);
	case JV_ARR: {
		struct jv *a = jv_arr();
		for (size_t i = 0; i < v->u.arr.n; i++)
			jv_arr_push(a, jv_copy(v->u.arr.v[i]));
		return a;
	}
	case JV_OBJ: {
		/* The keys are unique already: appended, not looked up (100,000 of them cost no scan). */
		struct jv *o = jv_obj();
		size_t n = v->u.obj.n;
		o->u.obj.k = xcalloc(n ? n : 1, sizeof *o->u.obj.k);
		o->u.obj.v = xcalloc(n ? n : 1, sizeof *o->u.obj.v);
		o->u.obj.cap = n ? n : 1;
		for (size_t i = 0; i < n; i++) {
			o->u.obj.k[i] = xstrdup(v->u.obj.k[i]);
			o->u.obj.v[i] = jv_copy(v->u.obj.v[i]);
		}
		o->u.obj.n = n;
		return o;
	}
	}
	return NULL;
}

bool jv_equal(const struct jv *a, const struct jv *b)
{
	if (jv_is_null(a) || jv_is_null(b))
		return jv_is_null(a) && jv_is_null(b);
	if (a->t != b->t)
		return false;
	switch (a->t) {
	case JV_BOOL: return a->u.b == b->u.b;
	case JV_INT: return a->u.i == b->u.i;
	case JV_NUM:
	case JV_STR: return a->u.str.len == b->u.str.len && memcmp(a->u.str.s, b->u.str.s, a->u.str.len) == 0;
	case JV_ARR:
		if (a->u.arr.n != b->u.arr.n)
			return false;
		for (size_t i = 0; i < a->u.arr.n; i++)
			if (!jv_equal(a->u.arr.v[i], b->u.arr.v[i]))
				return false;
		return true;
	case JV_OBJ:
		if (a->u.obj.n != b->u.obj.n)
			return false;
		for (size_t i = 0; i < a->u.obj.n; i++) {
			/* Usually in the same order: no lookup then. */
			const struct jv *bv = strcmp(a->u.obj.k[i], b->u.obj.k[i]) == 0 ? b->u.obj.v[i]
					      : jv_obj_get(b, a->u.obj.k[i]);
			if (!bv || !jv_equal(a->u.obj.v[i], bv))
				return false;
		}
		return true;
	default:
		return true;
	}
}

void jv_arr_push(struct jv *a, struct jv *v)
{
	grow(&a->u.arr.v, &a->u.arr.cap, a->u.arr.n + 1, sizeof *a->u.arr.v);
	a->u.arr.v[a->u.arr.n++] = v;
}

void jv_obj_set(struct jv *o, const char *key, struct jv *v)
{
	for (size_t i = 0; i < o->u.obj.n; i++)
		if (strcmp(o->u.obj.k[i], key) == 0) {
			jv_free(o->u.obj.v[i]);
			o->u.obj.v[i] = v;
			return;
		}
	size_t cap = o->u.obj.cap;
	grow(&o->u.obj.k, &cap, o->u.obj.n + 1, sizeof *o->u.obj.k);
	grow(&o->u.obj.v, &o->u.obj.cap, o->u.obj.n + 1, sizeof *o->u.obj.v);
	o->u.obj.k[o->u.obj.n] = xstrdup(key);
	o->u.obj.v[o->u.obj.n] = v;
	o->u.obj.n++;
}

struct jv *jv_obj_get(const struct jv *o, const char *key)
{
	if (!o || o->t != JV_OBJ)
		return NULL;
	for (size_t i = 0; i < o->u.obj.n; i++)
		if (strcmp(o->u.obj.k[i], key) == 0)
			return o->u.obj.v[i];
	return NULL;
}

struct jv *jv_obj_take(struct jv *o, const char *key)
{
	if (!o || o->t != JV_OBJ)
		return NULL;
	for (size_t i = 0; i < o->u.obj.n; i++)
		if (strcmp(o->u.obj.k[i], key) == 0) {
			struct jv *v = o->u.obj.v[i];
			free(o->u.obj.k[i]);
			memmove(&o->u.obj.k[i], &o->u.obj.k[i + 1], (o->u.obj.n - i - 1) * sizeof(char *));
			memmove(&o->u.obj.v[i], &o->u.obj.v[i + 1], (o->u.obj.n - i - 1) * sizeof(struct jv *));
			o->u.obj.n--;
			return v;
		}
	return NULL;
}

const char *jv_obj_str(const struct jv *o, const char *key)
{
	const struct jv *v = jv_obj_get(o, key);
	return v && v->t == JV_STR ? v->u.str.s : NULL;
}

bool jv_is_null(const struct jv *v)
{
	return !v || v->t == JV_NULL;
}

char *jv_id_text(const struct jv *v)
{
	if (!v)
		return NULL;
	if (v->t == JV_INT)
		return xasprintf("%lld", v->u.i);
	if (v->t == JV_STR && v->u.str.len)
		return xstrdup(v->u.str.s);
	if (v->t == JV_NUM)
		return xstrdup(v->u.str.s);
	return NULL;
}

struct jv *jv_from_id(const char *id)
{
	long long n;
	size_t len = strlen(id);
	if (len > 0 && len < 18 && (id[0] != '0' || len == 1) && strspn(id, "0123456789") == len && parse_ll(id, &n))
		return jv_int(n);
	return jv_str(id);
}

char *jv_scalar_text(const struct jv *v)
{
	if (jv_is_null(v))
		return NULL;
	switch (v->t) {
	case JV_BOOL: return xstrdup(v->u.b ? "true" : "false");
	case JV_INT: return xasprintf("%lld", v->u.i);
	case JV_NUM:
	case JV_STR: return xstrndup(v->u.str.s, v->u.str.len);
	default: return jv_dumps(v);
	}
}

void jv_dump(const struct jv *v, struct sb *b)
{
	if (!v) {
		sb_puts(b, "null");
		return;
	}
	switch (v->t) {
	case JV_NULL: sb_puts(b, "null"); break;
	case JV_BOOL: sb_puts(b, v->u.b ? "true" : "false"); break;
	case JV_INT: sb_printf(b, "%lld", v->u.i); break;
	case JV_NUM: sb_add(b, v->u.str.s, v->u.str.len); break;
	case JV_STR:
		sb_putc(b, '"');
		sb_json_escape(b, v->u.str.s, v->u.str.len);
		sb_putc(b, '"');
		break;
	case JV_ARR:
		sb_putc(b, '[');
		for (size_t i = 0; i < v->u.arr.n; i++) {
			if (i)
				sb_putc(b, ',');
			jv_dump(v->u.arr.v[i], b);
		}
		sb_putc(b, ']');
		break;
	case JV_OBJ:
		sb_putc(b, '{');
		for (size_t i = 0; i < v->u.obj.n; i++) {
			if (i)
				sb_putc(b, ',');
			sb_putc(b, '"');
			sb_json_escape(b, v->u.obj.k[i], strlen(v->u.obj.k[i]));
			sb_puts(b, "\":");
			jv_dump(v->u.obj.v[i], b);
		}
		sb_putc(b, '}');
		break;
	}
}

char *jv_dumps(const struct jv *v)
{
	struct sb b = {0};
	jv_dump(v, &b);
	return sb_steal(&b);
}

/*
 * ---- parsing: yajl callbacks build the tree on an explicit stack ----
 *
 * An object's members are appended as they come; its duplicate keys are settled once,
 * when it closes, as jv_obj_set would have (the first key's place, the last value): by a
 * sort, O(n log n) for n keys whatever the keys are, where a lookup per key cost O(n^2)
 * (100,000 keys: 25 s). A hash set would be O(n) but open to keys chosen to collide.
 */

#define MAX_DEPTH 256

struct pstate {
	struct jv **stack;
	size_t n, cap;
	char *pending_key;
	struct jv *root;
	const char *why;     /* why a callback stopped the parse (yajl says only "client cancelled parse") */
};

struct member {
	const char *key;
	size_t at;
};

static int by_key_then_place(const void *a, const void *b)
{
	const struct member *x = a, *y = b;
	int c = strcmp(x->key, y->key);
	return c ? c : (x->at > y->at) - (x->at < y->at);
}

/* Keep each key once, at its first place, with its last value. */
static void settle_duplicates(struct jv *o)
{
	size_t n = o->u.obj.n;
	bool dup = false;
	if (n < 16) {
		for (size_t i = 1; i < n && !dup; i++)
			for (size_t j = 0; j < i && !dup; j++)
				dup = strcmp(o->u.obj.k[i], o->u.obj.k[j]) == 0;
		if (!dup)
			return;
	}
	struct member *m = xmalloc(n * sizeof *m);
	for (size_t i = 0; i < n; i++)
		m[i] = (struct member){o->u.obj.k[i], i};
	qsort(m, n, sizeof *m, by_key_then_place);
	for (size_t i = 0; i < n;) {
		size_t end = i + 1;
		while (end < n && strcmp(m[end].key, m[i].key) == 0)
			end++;
		if (end - i > 1) {
			size_t first = m[i].at, last = m[end - 1].at;
			jv_free(o->u.obj.v[first]);
			o->u.obj.v[first] = o->u.obj.v[last];
			o->u.obj.v[last] = NULL;
			for (size_t k = i + 1; k < end; k++) {
				size_t at = m[k].at;
				free(o->u.obj.k[at]);
				jv_free(o->u.obj.v[at]);
				o->u.obj.k[at] = NULL; /* gone: compacted below */
			}
		}
		i = end;
	}
	free(m);
	size_t w = 0;
	for (size_t i = 0; i < n; i++)
		if (o->u.obj.k[i]) {
			o->u.obj.k[w] = o->u.obj.k[i];
			o->u.obj.v[w++] = o->u.obj.v[i];
		}
	o->u.obj.n = w;
}

/* A member taken as it comes: key owned (NULL: ""), duplicates settled when the object closes. */
static void obj_append(struct jv *o, char *key, struct jv *v)
{
	size_t cap = o->u.obj.cap;
	grow(&o->u.obj.k, &cap, o->u.obj.n + 1, sizeof *o->u.obj.k);
	grow(&o->u.obj.v, &o->u.obj.cap, o->u.obj.n + 1, sizeof *o->u.obj.v);
	o->u.obj.k[o->u.obj.n] = key ? key : xstrdup("");
	o->u.obj.v[o->u.obj.n++] = v;
}

static int add_value(struct pstate *p, struct jv *v)
{
	if (p->n == 0) {
		p->root = v;
	} else {
		struct jv *top = p->stack[p->n - 1];
		if (top->t == JV_ARR) {
			jv_arr_push(top, v);
		} else {
			obj_append(top, p->pending_key, v);
			p->pending_key = NULL;
		}
	}
	if (v->t == JV_ARR || v->t == JV_OBJ) {
		if (p->n >= MAX_DEPTH) {
			p->why = "JSON nested deeper than 256 levels";
			return 0;
		}
		grow(&p->stack, &p->cap, p->n + 1, sizeof *p->stack);
		p->stack[p->n++] = v;
	}
	return 1;
}

static int cb_null(void *ctx) { return add_value(ctx, jv_null()); }
static int cb_bool(void *ctx, int b) { return add_value(ctx, jv_bool(b)); }

static int cb_number(void *ctx, const char *s, size_t len)
{
	char *t = xstrndup(s, len);
	long long i;
	struct jv *v = parse_ll(t, &i) ? jv_int(i) : jv_num(t);
	free(t);
	return add_value(ctx, v);
}

/* yajl lets overlong forms, surrogates and a lone "\udc00" through: json.h promises UTF-8. */
static int cb_string(void *ctx, const unsigned char *s, size_t len)
{
	if (!utf8_valid((const char *)s, len)) {
		((struct pstate *)ctx)->why = "a string that is not valid UTF-8";
		return 0;
	}
	return add_value(ctx, jv_strn((const char *)s, len));
}

static int cb_start_map(void *ctx) { return add_value(ctx, jv_obj()); }

static int cb_map_key(void *ctx, const unsigned char *s, size_t len)
{
	struct pstate *p = ctx;
	if (!utf8_valid((const char *)s, len)) {
		p->why = "a key that is not valid UTF-8";
		return 0;
	}
	free(p->pending_key);
	p->pending_key = xstrndup((const char *)s, len);
	return 1;
}

static int cb_end(void *ctx)
{
	struct pstate *p = ctx;
	if (p->n && p->stack[p->n - 1]->t == JV_OBJ)
		settle_duplicates(p->stack[p->n - 1]);
	if (p->n)
		p->n--;
	return 1;
}

static int cb_start_array(void *ctx) { return add_value(ctx, jv_arr()); }

static const yajl_callbacks callbacks = {
	cb_null, cb_bool, NULL, NULL, cb_number, cb_string, cb_start_map, cb_map_key, cb_end, cb_start_array, cb_end,
};

struct jv *jv_parse(const char *text, size_t len, char *err, size_t errlen)
{
	struct pstate p = {0};
	yajl_handle h = yajl_alloc(&callbacks, NULL, &p);
	yajl_status st = yajl_parse(h, (const unsigned char *)text, len);
	if (st == yajl_status_ok)
		st = yajl_complete_parse(h);
	struct jv *result = NULL;
	if (st != yajl_status_ok) {
		if (err && errlen && p.why) {
			snprintf(err, errlen, "%s", p.why);
		} else if (err && errlen) {
			unsigned char *msg = yajl_get_error(h, 0, (const unsigned char *)text, len);
			snprintf(err, errlen, "%s", msg ? (const char *)msg : "invalid JSON");
			/* yajl's message may end with a newline; keep it one line. */
			char *nl = strchr(err, '\n');
			if (nl)
				*nl = '\0';
			if (msg)
				yajl_free_error(h, msg);
		}
		jv_free(p.root);
	} else if (!p.root) {
		if (err && errlen)
			snprintf(err, errlen, "empty document");
	} else {
		result = p.root;
	}
	yajl_free(h);
	free(p.stack);
	free(p.pending_key);
	return result;
}

const struct jv *jv_path(const struct jv *v, const char *path)
{
	const char *p = path;
	while (v && *p) {
		if (*p == '.') {
			p++;
			continue;
		}
		if (*p == '[') {
			char *end;
			long idx = strtol(p + 1, &end, 10);
			if (*end != ']' || v->t != JV_ARR || idx < 0 || (size_t)idx >= v->u.arr.n)
				return NULL;
			v = v->u.arr.v[idx];
			p = end + 1;
			continue;
		}
		size_t n = strcspn(p, ".[");
		if (v->t != JV_OBJ)
			return NULL;
		const struct jv *next = NULL;
		for (size_t i = 0; i < v->u.obj.n; i++)
			if (strlen(v->u.obj.k[i]) == n && memcmp(v->u.obj.k[i], p, n) == 0) {
				next = v->u.obj.v[i];
				break;
			}
		v = next;
		p += n;
	}
	return v;
}

const struct jv *jv_path_any(const struct jv *v, const char *paths)
{
	for (const char *p = paths; p && *p;) {
		size_t n = strcspn(p, "|");
		char *one = xstrndup(p, n);
		const struct jv *r = jv_path(v, one);
		free(one);
		if (r)
			return r;
		p += n + (p[n] == '|');
	}
	return NULL;
}
