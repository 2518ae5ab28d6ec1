/*
 * yaml — see yaml.h. Built on libyaml's event parser.
 */
#include "yaml.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
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
	struct anchor *anchors;          /* open addressing by name, at most half full */
	size_t nanchors, capanchors;
	int depth;
	size_t nodes;   /* built so far, aliases included: at most YAML_MAX_NODES */
	bool fatal;     /* a syntax error or a limit: the tree is unusable (a duplicate key is not) */
};

/* Children arrays double: a map of n entries costs O(n), not O(n^2), to build. The arrays
 * outgrown stay in the document's blocks until ydoc_free (less than the final array). */
static void node_push(struct ydoc *doc, struct ynode *parent, struct ynode *key, struct ynode *val)
{
	if (parent->n == parent->cap) {
		size_t cap = parent->cap ? parent->cap * 2 : 4;
		struct ynode **vals = doc_alloc(doc, cap * sizeof *vals);
		if (parent->n)
			memcpy(vals, parent->vals, parent->n * sizeof *vals);
		parent->vals = vals;
		if (parent->type == YN_MAP) {
			struct ynode **keys = doc_alloc(doc, cap * sizeof *keys);
			if (parent->n)
				memcpy(keys, parent->keys, parent->n * sizeof *keys);
			parent->keys = keys;
		}
		parent->cap = cap;
	}
	parent->vals[parent->n] = val;
	if (parent->type == YN_MAP)
		parent->keys[parent->n] = key;
	parent->n++;
}

/*
 * The keys of the map being built, by hash, so that a duplicate is found in O(1): slot[i]
 * is 1 + the key's index in map->keys, 0 when empty (open addressing, at most half full).
 */
struct keyset {
	size_t *slot;
	size_t cap;
};

static size_t key_hash(const struct ynode *k)
{
	return (size_t)hash64(k->str, k->len, 0x6b657973u);
}

static bool key_same(const struct ynode *a, const struct ynode *b)
{
	return a->len == b->len && memcmp(a->str, b->str, a->len) == 0;
}

/* The slot holding key, or the empty slot where it would go. */
static size_t *keyset_slot(const struct keyset *ks, const struct ynode *map, const struct ynode *key)
{
	size_t i = key_hash(key) & (ks->cap - 1);
	while (ks->slot[i] && !key_same(map->keys[ks->slot[i] - 1], key))
		i = (i + 1) & (ks->cap - 1);
	return &ks->slot[i];
}

/* Is key already one of map's keys? */
static bool keyset_has(const struct keyset *ks, const struct ynode *map, const struct ynode *key)
{
	return ks->cap && *keyset_slot(ks, map, key);
}

/* Record map's last key (just pushed). */
static void keyset_add_last(struct keyset *ks, const struct ynode *map)
{
	if (map->n * 2 > ks->cap) {
		free(ks->slot);
		ks->cap = ks->cap ? ks->cap * 2 : 16;
		while (map->n * 2 > ks->cap)
			ks->cap *= 2;
		ks->slot = xcalloc(ks->cap, sizeof *ks->slot);
		for (size_t i = 0; i + 1 < map->n; i++)
			*keyset_slot(ks, map, map->keys[i]) = i + 1;
	}
	*keyset_slot(ks, map, map->keys[map->n - 1]) = map->n;
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

/* The slot of anchor name in the builder's table, or the empty slot where it would go. */
static struct anchor *anchor_slot(const struct builder *b, const char *name)
{
	static struct anchor none;
	if (!b->capanchors)
		return &none;
	size_t i = (size_t)hash64(name, strlen(name), 0x616e63u) & (b->capanchors - 1);
	while (b->anchors[i].name && strcmp(b->anchors[i].name, name) != 0)
		i = (i + 1) & (b->capanchors - 1);
	return &b->anchors[i];
}

/* An anchor defined again names its latest node from then on. */
static void remember_anchor(struct builder *b, const unsigned char *anchor, struct ynode *n)
{
	if (!anchor)
		return;
	if ((b->nanchors + 1) * 2 > b->capanchors) {
		struct anchor *old = b->anchors;
		size_t oldcap = b->capanchors;
		b->capanchors = oldcap ? oldcap * 2 : 16;
		b->anchors = xcalloc(b->capanchors, sizeof *b->anchors);
		for (size_t i = 0; i < oldcap; i++)
			if (old[i].name)
				*anchor_slot(b, old[i].name) = old[i];
		free(old);
	}
	struct anchor *a = anchor_slot(b, (const char *)anchor);
	if (!a->name) {
		a->name = xstrdup((const char *)anchor);
		b->nanchors++;
	}
	a->node = n;
}

static bool build_children(struct builder *b, struct ynode *n, struct keyset *ks);

/* Build the node that starts with event ev (already consumed). NULL on error. */
static struct ynode *build(struct builder *b, yaml_event_t *ev)
{
	struct ydoc *doc = b->doc;
	struct ynode *n;
	int line = (int)ev->start_mark.line + 1, col = (int)ev->start_mark.column + 1;
	if (++b->nodes > YAML_MAX_NODES) {
		diag_error(b->d, doc->file, line, col,
			   "this file holds more than %zu values (YAML nodes), the most hrsync reads from one file; "
			   "split it (a code table can go in several map_file files)",
			   YAML_MAX_NODES);
		b->fatal = true;
		return NULL;
	}
	if (++b->depth > 64) {
		diag_error(b->d, doc->file, line, col, "nesting is too deep");
		return NULL;
	}
	switch (ev->type) {
	case YAML_ALIAS_EVENT: {
		struct anchor *a = anchor_slot(b, (const char *)ev->data.alias.anchor);
		if (a->name) {
			b->depth--;
			return a->node;
		}
		diag_error(b->d, doc->file, line, col, "unknown alias '*%s'", ev->data.alias.anchor);
		return NULL;
	}
	case YAML_SCALAR_EVENT:
		n = doc_alloc(doc, sizeof *n);
		n->type = YN_SCALAR;
		n->str = doc_strndup(doc, (const char *)ev->data.scalar.value, ev->data.scalar.length);
		n->len = ev->data.scalar.length;
		n->plain = ev->data.scalar.plain_implicit && ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
		/* Reported, and the tree kept so that check goes on: the config is refused all the same. */
		if (memchr(n->str, '\0', n->len))
			diag_error(b->d, doc->file, line, col,
				   "a value cannot hold a NUL character (\"\\0\", \"\\x00\" or \"\\u0000\"): "
				   "hrsync would read it cut short there");
		break;
	case YAML_SEQUENCE_START_EVENT:
	case YAML_MAPPING_START_EVENT:
		n = doc_alloc(doc, sizeof *n);
		n->type = ev->type == YAML_SEQUENCE_START_EVENT ? YN_SEQ : YN_MAP;
		break;
	default:
		diag_error(b->d, doc->file, line, col, "unexpected YAML event");
		return NULL;
	}
	n->file = doc->file;
	n->line = line;
	n->col = col;
	const unsigned char *anchor = ev->type == YAML_SCALAR_EVENT ? ev->data.scalar.anchor
				    : ev->type == YAML_SEQUENCE_START_EVENT ? ev->data.sequence_start.anchor
				    : ev->data.mapping_start.anchor;
	remember_anchor(b, anchor, n);
	if (n->type == YN_SCALAR) {
		b->depth--;
		return n;
	}
	struct keyset ks = {0};
	bool ok = build_children(b, n, &ks);
	free(ks.slot);
	if (!ok)
		return NULL;
	b->depth--;
	return n;
}

/* The items of the sequence or the entries of the map n, up to its end event. False on error. */
static bool build_children(struct builder *b, struct ynode *n, struct keyset *ks)
{
	struct ydoc *doc = b->doc;
	for (;;) {
		yaml_event_t e;
		if (!yaml_parser_parse(&b->parser, &e)) {
			parse_error(b);
			return false;
		}
		if (e.type == YAML_SEQUENCE_END_EVENT || e.type == YAML_MAPPING_END_EVENT) {
			yaml_event_delete(&e);
			return true;
		}
		struct ynode *first = build(b, &e);
		yaml_event_delete(&e);
		if (!first)
			return false;
		if (n->type == YN_SEQ) {
			node_push(doc, n, NULL, first);
			continue;
		}
		if (first->type != YN_SCALAR) {
			diag_error(b->d, doc->file, first->line, first->col, "a key must be a plain word, not %s",
				   ynode_type_name(first));
			return false;
		}
		yaml_event_t ve;
		if (!yaml_parser_parse(&b->parser, &ve)) {
			parse_error(b);
			return false;
		}
		struct ynode *val = build(b, &ve);
		yaml_event_delete(&ve);
		if (!val)
			return false;
		if (keyset_has(ks, n, first)) {
			diag_error(b->d, doc->file, first->line, first->col, "key '%s' appears twice", first->str);
			continue;
		}
		node_push(doc, n, first, val);
		keyset_add_last(ks, n);
	}
}

/* text (len bytes, more than YAML_MAX_BYTES) is refused where it goes past the limit. */
static void too_big(struct diag *d, const char *name, const char *text, size_t len)
{
	int line = 1, col = 1;
	for (size_t i = 0; i < YAML_MAX_BYTES && i < len; i++) {
		if (text[i] == '\n') {
			line++;
			col = 1;
		} else if (((unsigned char)text[i] & 0xC0) != 0x80) {
			col++;   /* columns count characters, as libyaml's do */
		}
	}
	diag_error(d, name, line, col, "the file goes past %zu MiB here, the most hrsync reads from one file; split it",
		   YAML_MAX_BYTES >> 20);
}

char *yfile_read(const char *path, size_t *len, struct diag *d)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC), e;
	if (fd < 0) {
		e = errno;
		diag_error(d, path, 0, 0, "cannot read: %s", strerror(e));
		errno = e;
		return NULL;
	}
	/* These files say what hrsync sends, and where: others must not be able to change them. */
	struct stat st;
	if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & S_IWOTH))
		diag_error(d, path, 0, 0,
			   "writable by others (mode %04o): anyone on this machine could change what hrsync sends, and "
			   "where; run: chmod o-w %s",
			   (unsigned)(st.st_mode & 07777), path);
	/* One byte more than the limit tells a file at the limit from one past it; never more,
	 * whatever the file is (a FIFO, /dev/zero). */
	size_t cap = YAML_MAX_BYTES + 1, n = 0;
	char *buf = xmalloc(cap + 1);
	while (n < cap) {
		ssize_t r = read(fd, buf + n, cap - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			e = errno;
			diag_error(d, path, 0, 0, "cannot read: %s", strerror(e));
			close(fd);
			free(buf);
			errno = e;
			return NULL;
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
	close(fd);
	if (n > YAML_MAX_BYTES) {
		too_big(d, path, buf, n);
		free(buf);
		errno = EFBIG;
		return NULL;
	}
	buf[n] = '\0';
	*len = n;
	return buf;
}

struct ydoc *ydoc_parse(const char *name, const char *text, size_t len, struct diag *d)
{
	if (len > YAML_MAX_BYTES) {
		too_big(d, name, text, len);
		return NULL;
	}
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
	for (size_t i = 0; i < b.capanchors; i++)
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
	char *text = yfile_read(path, &len, d);
	if (!text)
		return NULL;
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
