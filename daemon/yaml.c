/*
 * yaml — see yaml.h. Built on libyaml's event parser.
 */
#include "yaml.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

static void *doc_alloc(struct ydoc *doc, size_t n)
{
	grow(&doc->blocks, &doc->capblocks, doc->nblocks + 1, sizeof(void *));
	void *p = xcalloc(1, n);
	doc->blocks[doc->nblocks++] = p;
	return p;
}

static char *doc_strndup(struct ydoc *doc, const char *s, size_t n)
{
	char *p = doc_alloc(doc, n + 1);
	memcpy(p, s, n);
	return p;
}

struct anchor {
	char *name;
	struct ynode *node;
};

struct builder {
	struct ydoc *doc;
	struct diag *d;
	yaml_parser_t parser;
	struct anchor *anchors;
	size_t nanchors, capanchors;
	int depth;
	bool fatal;     /* a syntax error: the tree is unusable (a duplicate key is not) */
};

static void node_push(struct ydoc *doc, struct ynode *parent, struct ynode *key, struct ynode *val)
{
	size_t n = parent->n + 1;
	struct ynode **vals = doc_alloc(doc, n * sizeof *vals);
	if (parent->n)
		memcpy(vals, parent->vals, parent->n * sizeof *vals);
	vals[parent->n] = val;
	parent->vals = vals;
	if (parent->type == YN_MAP) {
		struct ynode **keys = doc_alloc(doc, n * sizeof *keys);
		if (parent->n)
			memcpy(keys, parent->keys, parent->n * sizeof *keys);
		keys[parent->n] = key;
		parent->keys = keys;
	}
	parent->n = n;
}

static void parse_error(struct builder *b)
{
	b->fatal = true;
	yaml_parser_t *p = &b->parser;
	int line = (int)p->problem_mark.line + 1, col = (int)p->problem_mark.column + 1;
	if (p->context)
		diag_error(b->d, b->doc->file, line, col, "YAML syntax: %s %s", p->problem ? p->problem : "error",
			   p->context);
	else
		diag_error(b->d, b->doc->file, line, col, "YAML syntax: %s", p->problem ? p->problem : "error");
}

static void remember_anchor(struct builder *b, const unsigned char *anchor, struct ynode *n)
{
	if (!anchor)
		return;
	grow(&b->anchors, &b->capanchors, b->nanchors + 1, sizeof *b->anchors);
	b->anchors[b->nanchors].name = xstrdup((const char *)anchor);
	b->anchors[b->nanchors].node = n;
	b->nanchors++;
}

/* Build the node that starts with event ev (already consumed). NULL on error. */
static struct ynode *build(struct builder *b, yaml_event_t *ev)
{
	struct ydoc *doc = b->doc;
	struct ynode *n;
	if (++b->depth > 64) {
		diag_error(b->d, doc->file, (int)ev->start_mark.line + 1, (int)ev->start_mark.column + 1,
			   "nesting is too deep");
		return NULL;
	}
	switch (ev->type) {
	case YAML_ALIAS_EVENT:
		for (size_t i = b->nanchors; i-- > 0;)
			if (strcmp(b->anchors[i].name, (const char *)ev->data.alias.anchor) == 0) {
				b->depth--;
				return b->anchors[i].node;
			}
		diag_error(b->d, doc->file, (int)ev->start_mark.line + 1, (int)ev->start_mark.column + 1,
			   "unknown alias '*%s'", ev->data.alias.anchor);
		return NULL;
	case YAML_SCALAR_EVENT:
		n = doc_alloc(doc, sizeof *n);
		n->type = YN_SCALAR;
		n->str = doc_strndup(doc, (const char *)ev->data.scalar.value, ev->data.scalar.length);
		n->len = ev->data.scalar.length;
		n->plain = ev->data.scalar.plain_implicit && ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
		break;
	case YAML_SEQUENCE_START_EVENT:
	case YAML_MAPPING_START_EVENT:
		n = doc_alloc(doc, sizeof *n);
		n->type = ev->type == YAML_SEQUENCE_START_EVENT ? YN_SEQ : YN_MAP;
		break;
	default:
		diag_error(b->d, doc->file, (int)ev->start_mark.line + 1, (int)ev->start_mark.column + 1,
			   "unexpected YAML event");
		return NULL;
	}
	n->file = doc->file;
	n->line = (int)ev->start_mark.line + 1;
	n->col = (int)ev->start_mark.column + 1;
	const unsigned char *anchor = ev->type == YAML_SCALAR_EVENT ? ev->data.scalar.anchor
				    : ev->type == YAML_SEQUENCE_START_EVENT ? ev->data.sequence_start.anchor
				    : ev->data.mapping_start.anchor;
	remember_anchor(b, anchor, n);
	if (n->type == YN_SCALAR) {
		b->depth--;
		return n;
	}
	for (;;) {
		yaml_event_t e;
		if (!yaml_parser_parse(&b->parser, &e)) {
			parse_error(b);
			return NULL;
		}
		if (e.type == YAML_SEQUENCE_END_EVENT || e.type == YAML_MAPPING_END_EVENT) {
			yaml_event_delete(&e);
			break;
		}
		struct ynode *first = build(b, &e);
		yaml_event_delete(&e);
		if (!first)
			return NULL;
		if (n->type == YN_SEQ) {
			node_push(doc, n, NULL, first);
			continue;
		}
		if (first->type != YN_SCALAR) {
			diag_error(b->d, doc->file, first->line, first->col, "a key must be a plain word, not %s",
				   ynode_type_name(first));
			return NULL;
		}
		yaml_event_t ve;
		if (!yaml_parser_parse(&b->parser, &ve)) {
			parse_error(b);
			return NULL;
		}
		struct ynode *val = build(b, &ve);
		yaml_event_delete(&ve);
		if (!val)
			return NULL;
		if (ymap_get(n, first->str)) {
			diag_error(b->d, doc->file, first->line, first->col, "key '%s' appears twice", first->str);
			continue;
		}
		node_push(doc, n, first, val);
	}
	b->depth--;
	return n;
}

struct ydoc *ydoc_parse(const char *name, const char *text, size_t len, struct diag *d)
{
	struct ydoc *doc = xcalloc(1, sizeof *doc);
	doc->file = xstrdup(name);
	struct builder b = {.doc = doc, .d = d};
	int errors_before = d->errors;
	if (!yaml_parser_initialize(&b.parser)) {
		diag_error(d, name, 0, 0, "cannot initialise the YAML parser");
		ydoc_free(doc);
		return NULL;
	}
	yaml_parser_set_input_string(&b.parser, (const unsigned char *)text, len);
	yaml_parser_set_encoding(&b.parser, YAML_UTF8_ENCODING);
	bool in_doc = false, done = false;
	while (!done) {
		yaml_event_t ev;
		if (!yaml_parser_parse(&b.parser, &ev)) {
			parse_error(&b);
			break;
		}
		switch (ev.type) {
		case YAML_STREAM_END_EVENT:
			done = true;
			break;
		case YAML_DOCUMENT_START_EVENT:
			if (doc->root || in_doc) {
				diag_error(d, name, (int)ev.start_mark.line + 1, 1,
					   "only one YAML document per file (found a second '---')");
				done = true;
			}
			in_doc = true;
			break;
		case YAML_DOCUMENT_END_EVENT:
		case YAML_STREAM_START_EVENT:
			break;
		default:
			doc->root = build(&b, &ev);
			if (!doc->root)
				done = true;
		}
		yaml_event_delete(&ev);
	}
	yaml_parser_delete(&b.parser);
	for (size_t i = 0; i < b.nanchors; i++)
		free(b.anchors[i].name);
	free(b.anchors);
	if (b.fatal || (d->errors > errors_before && !doc->root)) {
		ydoc_free(doc);
		return NULL;
	}
	return doc;
}

struct ydoc *ydoc_load(const char *path, struct diag *d)
{
	size_t len;
	char *text = read_file(path, &len);
	if (!text) {
		diag_error(d, path, 0, 0, "cannot read: %s", strerror(errno));
		return NULL;
	}
	struct ydoc *doc = ydoc_parse(path, text, len, d);
	free(text);
	return doc;
}

void ydoc_free(struct ydoc *doc)
{
	if (!doc)
		return;
	for (size_t i = 0; i < doc->nblocks; i++)
		free(doc->blocks[i]);
	free(doc->blocks);
	free(doc->file);
	free(doc);
}

struct ynode *ymap_get(const struct ynode *map, const char *key)
{
	if (!map || map->type != YN_MAP)
		return NULL;
	for (size_t i = 0; i < map->n; i++)
		if (strcmp(map->keys[i]->str, key) == 0)
			return map->vals[i];
	return NULL;
}

/* [-+]?(0|[1-9][0-9]*): the end of the digits, or NULL. */
static const char *int_part(const char *s)
{
	if (*s == '-' || *s == '+')
		s++;
	if (*s == '0')
		return s + 1;
	if (*s < '1' || *s > '9')
		return NULL;
	while (*s >= '0' && *s <= '9')
		s++;
	return s;
}

/* The integer and float forms of the core schema, leading zeros excepted (see below). */
static bool is_int(const char *s)
{
	const char *e = int_part(s);
	return e && !*e;
}

static bool is_float(const char *s)
{
	const char *e = int_part(s);
	if (!e)
		return false;
	if (*e == '.') {
		e++;
		if (*e < '0' || *e > '9')
			return false;
		while (*e >= '0' && *e <= '9')
			e++;
	}
	if (*e == 'e' || *e == 'E') {
		e++;
		if (*e == '+' || *e == '-')
			e++;
		if (*e < '0' || *e > '9')
			return false;
		while (*e >= '0' && *e <= '9')
			e++;
	}
	return !*e;
}

enum yscalar yscalar_kind(const struct ynode *n)
{
	if (!n || n->type != YN_SCALAR)
		return YS_STR;
	if (!n->plain)
		return YS_STR;
	const char *s = n->str;
	if (!*s || streq(s, "~") || streq(s, "null") || streq(s, "Null") || streq(s, "NULL"))
		return YS_NULL;
	if (streq(s, "true") || streq(s, "True") || streq(s, "TRUE") || streq(s, "false") ||
	    streq(s, "False") || streq(s, "FALSE"))
		return YS_BOOL;
	/* Integers with leading zeros ("007") stay strings: in an ERP they are codes, not numbers. */
	if (is_int(s))
		return YS_INT;
	if (is_float(s))
		return YS_FLOAT;
	return YS_STR;
}

bool yscalar_bool(const struct ynode *n, bool *out)
{
	if (yscalar_kind(n) != YS_BOOL)
		return false;
	*out = n->str[0] == 't' || n->str[0] == 'T';
	return true;
}

const char *ynode_type_name(const struct ynode *n)
{
	if (!n)
		return "nothing";
	if (n->type == YN_MAP)
		return "a map";
	if (n->type == YN_SEQ)
		return "a list";
	switch (yscalar_kind(n)) {
	case YS_NULL: return "null";
	case YS_BOOL: return "a boolean";
	case YS_INT: return "an integer";
	case YS_FLOAT: return "a number";
	default: return "a string";
	}
}
