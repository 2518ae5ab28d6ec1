/*
 * test_yaml — the YAML tree behind config and mapping files: positions (1-based line:col),
 * the YAML 1.2 core schema as yscalar_kind resolves it (quoted scalars are strings,
 * 007 stays a string), duplicate keys, syntax errors with positions, aliases; and the
 * limits of issue 19 (a big map in linear memory, file size and node count capped, NUL
 * refused), each refused with its file:line:col.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "yaml.h"

#define T(name) static void name(void **state __attribute__((unused)))

static struct ydoc *parse_ok(const char *text)
{
	struct diag d = {0};
	struct ydoc *doc = ydoc_parse("t.yaml", text, strlen(text), &d);
	if (!doc || d.errors) {
		char msg[256] = "";
		if (d.n)
			snprintf(msg, sizeof msg, "%d:%d: %s", d.msgs[0].line, d.msgs[0].col, d.msgs[0].text);
		diag_free(&d);
		ydoc_free(doc);
		fail_msg("ydoc_parse failed: %s", msg);
	}
	diag_free(&d);
	return doc;
}

/*
 * Parse text that must be reported; d is filled (caller frees). A syntax error loses the
 * document; a duplicate key or a second document is reported and the tree is kept, so
 * that `check` can go on to report every other problem of the file.
 */
static void parse_bad(const char *text, struct diag *d)
{
	struct ydoc *doc = ydoc_parse("t.yaml", text, strlen(text), d);
	ydoc_free(doc);
	if (d->errors == 0)
		fail_msg("ydoc_parse reported nothing for: %s", text);
}

/* The kind of the scalar value under key in a one-line document "key: <text>". */
static enum yscalar kind_of(const char *text)
{
	struct ydoc *doc = parse_ok(text);
	enum yscalar k = yscalar_kind(ymap_get(doc->root, "v"));
	ydoc_free(doc);
	return k;
}

/* ---- positions ---- */

T(positions_are_one_based)
{
	struct ydoc *doc = parse_ok("a: 1\nb:\n  c: x\n");
	const struct ynode *r = doc->root;
	assert_int_equal(r->type, YN_MAP);
	assert_int_equal(r->line, 1);
	assert_int_equal(r->col, 1);
	assert_int_equal(r->n, 2);
	assert_int_equal(r->keys[0]->line, 1);
	assert_int_equal(r->keys[0]->col, 1);
	const struct ynode *one = ymap_get(r, "a");
	assert_int_equal(one->line, 1);
	assert_int_equal(one->col, 4);
	const struct ynode *b = ymap_get(r, "b");
	assert_int_equal(b->type, YN_MAP);
	assert_int_equal(b->line, 3);
	assert_int_equal(b->col, 3);
	assert_int_equal(b->keys[0]->line, 3);
	assert_int_equal(b->keys[0]->col, 3);
	const struct ynode *x = ymap_get(b, "c");
	assert_int_equal(x->line, 3);
	assert_int_equal(x->col, 6);
	assert_string_equal(x->str, "x");
	assert_string_equal(x->file, "t.yaml");
	ydoc_free(doc);
}

T(positions_in_flow_map)
{
	struct ydoc *doc = parse_ok("fields:\n  hired_on: { fromm: hire_date }\n");
	const struct ynode *f = ymap_get(ymap_get(doc->root, "fields"), "hired_on");
	assert_int_equal(f->type, YN_MAP);
	assert_int_equal(f->line, 2);
	assert_int_equal(f->col, 13);
	assert_int_equal(f->keys[0]->line, 2);
	assert_int_equal(f->keys[0]->col, 15);
	assert_string_equal(f->keys[0]->str, "fromm");
	ydoc_free(doc);
}

T(positions_in_sequence)
{
	struct ydoc *doc = parse_ok("list:\n  - one\n  - two\n");
	const struct ynode *l = ymap_get(doc->root, "list");
	assert_int_equal(l->type, YN_SEQ);
	assert_int_equal(l->n, 2);
	assert_null(l->keys);
	assert_string_equal(l->vals[1]->str, "two");
	assert_int_equal(l->vals[1]->line, 3);
	assert_int_equal(l->vals[1]->col, 5);
	ydoc_free(doc);
}

T(map_keeps_order)
{
	struct ydoc *doc = parse_ok("z: 1\na: 2\nm: 3\n");
	assert_string_equal(doc->root->keys[0]->str, "z");
	assert_string_equal(doc->root->keys[1]->str, "a");
	assert_string_equal(doc->root->keys[2]->str, "m");
	ydoc_free(doc);
}

T(empty_document_has_no_root)
{
	struct ydoc *doc = parse_ok("");
	assert_null(doc->root);
	ydoc_free(doc);
	doc = parse_ok("# only a comment\n");
	assert_null(doc->root);
	ydoc_free(doc);
}

T(scalar_length_and_utf8)
{
	struct ydoc *doc = parse_ok("v: Ивано́в\n");
	const struct ynode *v = ymap_get(doc->root, "v");
	assert_string_equal(v->str, "Ивано́в");
	assert_int_equal(v->len, strlen("Ивано́в"));
	ydoc_free(doc);
}

/* ---- scalar kinds ---- */

T(kind_plain_int)
{
	assert_int_equal(kind_of("v: 101\n"), YS_INT);
	assert_int_equal(kind_of("v: -3\n"), YS_INT);
	assert_int_equal(kind_of("v: 0\n"), YS_INT);
}

T(kind_quoted_int_is_string)
{
	assert_int_equal(kind_of("v: \"101\"\n"), YS_STR);
	assert_int_equal(kind_of("v: '101'\n"), YS_STR);
}

T(kind_leading_zero_stays_string)
{
	assert_int_equal(kind_of("v: 007\n"), YS_STR);
	assert_int_equal(kind_of("v: 00\n"), YS_STR);
}

T(kind_float)
{
	assert_int_equal(kind_of("v: 1.50\n"), YS_FLOAT);
	assert_int_equal(kind_of("v: -2.5e3\n"), YS_FLOAT);
	assert_int_equal(kind_of("v: 1e5\n"), YS_FLOAT);
}

T(kind_bool)
{
	assert_int_equal(kind_of("v: true\n"), YS_BOOL);
	assert_int_equal(kind_of("v: false\n"), YS_BOOL);
	assert_int_equal(kind_of("v: True\n"), YS_BOOL);
	assert_int_equal(kind_of("v: FALSE\n"), YS_BOOL);
}

T(kind_yaml11_booleans_are_strings)
{
	assert_int_equal(kind_of("v: yes\n"), YS_STR);
	assert_int_equal(kind_of("v: no\n"), YS_STR);
	assert_int_equal(kind_of("v: on\n"), YS_STR);
	assert_int_equal(kind_of("v: tRuE\n"), YS_STR);
}

T(kind_null)
{
	assert_int_equal(kind_of("v: null\n"), YS_NULL);
	assert_int_equal(kind_of("v: ~\n"), YS_NULL);
	assert_int_equal(kind_of("v:\n"), YS_NULL);
	assert_int_equal(kind_of("v: NULL\n"), YS_NULL);
}

T(kind_quoted_keywords_are_strings)
{
	assert_int_equal(kind_of("v: \"true\"\n"), YS_STR);
	assert_int_equal(kind_of("v: 'null'\n"), YS_STR);
	assert_int_equal(kind_of("v: \"\"\n"), YS_STR);
	assert_int_equal(kind_of("v: \"~\"\n"), YS_STR);
}

T(kind_tagged_is_string)
{
	assert_int_equal(kind_of("v: !!str 101\n"), YS_STR);
}

T(kind_block_scalar_is_string)
{
	assert_int_equal(kind_of("v: |\n  101\n"), YS_STR);
}

T(kind_words)
{
	assert_int_equal(kind_of("v: hello\n"), YS_STR);
	assert_int_equal(kind_of("v: 12abc\n"), YS_STR);
	assert_int_equal(kind_of("v: 2026-11-25\n"), YS_STR);
}

T(kind_of_non_scalar_is_string)
{
	struct ydoc *doc = parse_ok("v: [1]\n");
	assert_int_equal(yscalar_kind(ymap_get(doc->root, "v")), YS_STR);
	assert_int_equal(yscalar_kind(NULL), YS_STR);
	ydoc_free(doc);
}

T(scalar_bool_values)
{
	struct ydoc *doc = parse_ok("t: true\nf: False\ns: yes\n");
	bool b = false;
	assert_true(yscalar_bool(ymap_get(doc->root, "t"), &b));
	assert_true(b);
	assert_true(yscalar_bool(ymap_get(doc->root, "f"), &b));
	assert_false(b);
	assert_false(yscalar_bool(ymap_get(doc->root, "s"), &b));
	ydoc_free(doc);
}

T(type_names)
{
	struct ydoc *doc = parse_ok("m: {}\nl: []\ni: 1\nf: 1.5\nb: true\nn: ~\ns: x\nq: \"1\"\n");
	const struct ynode *r = doc->root;
	assert_string_equal(ynode_type_name(ymap_get(r, "m")), "a map");
	assert_string_equal(ynode_type_name(ymap_get(r, "l")), "a list");
	assert_string_equal(ynode_type_name(ymap_get(r, "i")), "an integer");
	assert_string_equal(ynode_type_name(ymap_get(r, "f")), "a number");
	assert_string_equal(ynode_type_name(ymap_get(r, "b")), "a boolean");
	assert_string_equal(ynode_type_name(ymap_get(r, "n")), "null");
	assert_string_equal(ynode_type_name(ymap_get(r, "s")), "a string");
	assert_string_equal(ynode_type_name(ymap_get(r, "q")), "a string");
	assert_string_equal(ynode_type_name(NULL), "nothing");
	ydoc_free(doc);
}

T(map_get_on_non_map_is_null)
{
	struct ydoc *doc = parse_ok("l: [a]\ns: x\n");
	assert_null(ymap_get(ymap_get(doc->root, "l"), "a"));
	assert_null(ymap_get(ymap_get(doc->root, "s"), "x"));
	assert_null(ymap_get(NULL, "x"));
	assert_null(ymap_get(doc->root, "missing"));
	ydoc_free(doc);
}

/* ---- errors ---- */

T(duplicate_key_reported_at_second)
{
	struct diag d = {0};
	parse_bad("a: 1\nb: 2\na: 3\n", &d);
	assert_int_equal(d.errors, 1);
	assert_string_equal(d.msgs[0].text, "key 'a' appears twice");
	assert_string_equal(d.msgs[0].file, "t.yaml");
	assert_int_equal(d.msgs[0].line, 3);
	assert_int_equal(d.msgs[0].col, 1);
	diag_free(&d);
}

T(every_duplicate_key_reported)
{
	struct diag d = {0};
	parse_bad("a: 1\na: 2\nb: 1\nn:\n  b: 1\n  b: 2\n", &d);
	assert_int_equal(d.errors, 2);
	assert_string_equal(d.msgs[0].text, "key 'a' appears twice");
	assert_int_equal(d.msgs[0].line, 2);
	assert_string_equal(d.msgs[1].text, "key 'b' appears twice");
	assert_int_equal(d.msgs[1].line, 6);
	assert_int_equal(d.msgs[1].col, 3);
	diag_free(&d);
}

T(duplicate_key_in_flow_map)
{
	struct diag d = {0};
	parse_bad("f: { from: a, from: b }\n", &d);
	assert_int_equal(d.errors, 1);
	assert_int_equal(d.msgs[0].line, 1);
	assert_int_equal(d.msgs[0].col, 15);
	diag_free(&d);
}

T(syntax_error_with_position)
{
	struct diag d = {0};
	parse_bad("a: b: c\n", &d);
	assert_int_equal(d.errors, 1);
	assert_int_equal(d.msgs[0].line, 1);
	assert_int_equal(d.msgs[0].col, 5);
	assert_true(strncmp(d.msgs[0].text, "YAML syntax: ", 13) == 0);
	assert_non_null(strstr(d.msgs[0].text, "mapping values are not allowed"));
	diag_free(&d);
}

T(syntax_error_bad_indentation)
{
	struct diag d = {0};
	parse_bad("a: 1\n b: 2\n", &d);
	assert_int_equal(d.msgs[0].line, 2);
	assert_true(strncmp(d.msgs[0].text, "YAML syntax: ", 13) == 0);
	diag_free(&d);
}

T(syntax_error_unclosed_flow)
{
	struct diag d = {0};
	parse_bad("a: [1, 2\nb: 3\n", &d);
	assert_int_equal(d.msgs[0].line, 2);
	assert_true(d.msgs[0].col >= 1);
	assert_non_null(strstr(d.msgs[0].text, "flow sequence"));
	diag_free(&d);
}

T(syntax_error_unterminated_quote)
{
	struct diag d = {0};
	parse_bad("a: 'x\n", &d);
	assert_non_null(strstr(d.msgs[0].text, "quoted scalar"));
	assert_true(d.msgs[0].line >= 1);
	diag_free(&d);
}

T(syntax_error_tab_indent)
{
	struct diag d = {0};
	parse_bad("\t- a\n", &d);
	assert_int_equal(d.msgs[0].line, 1);
	assert_int_equal(d.msgs[0].col, 1);
	diag_free(&d);
}

T(second_document_refused)
{
	struct diag d = {0};
	parse_bad("a: 1\n---\nb: 2\n", &d);
	assert_int_equal(d.errors, 1);
	assert_int_equal(d.msgs[0].line, 2);
	assert_non_null(strstr(d.msgs[0].text, "only one YAML document"));
	diag_free(&d);
}

T(complex_key_refused)
{
	struct diag d = {0};
	parse_bad("? [a]\n: 1\n", &d);
	assert_non_null(strstr(d.msgs[0].text, "a key must be a plain word"));
	diag_free(&d);
}

T(too_deep_refused)
{
	char text[256];
	size_t k = 0;
	text[k++] = 'a';
	text[k++] = ':';
	text[k++] = ' ';
	for (int i = 0; i < 80; i++)
		text[k++] = '[';
	for (int i = 0; i < 80; i++)
		text[k++] = ']';
	text[k] = '\0';
	struct diag d = {0};
	parse_bad(text, &d);
	assert_non_null(strstr(d.msgs[0].text, "nesting is too deep"));
	diag_free(&d);
}

T(errors_accumulate_across_parses)
{
	struct diag d = {0};
	parse_bad("a: 1\na: 2\n", &d);
	parse_bad("x: [\n", &d);
	assert_int_equal(d.errors, 2);
	diag_free(&d);
}

T(parse_after_earlier_errors_still_succeeds)
{
	struct diag d = {0};
	parse_bad("a: 1\na: 2\n", &d);
	struct ydoc *doc = ydoc_parse("ok.yaml", "a: 1\n", 5, &d);
	assert_non_null(doc);
	assert_int_equal(d.errors, 1);
	ydoc_free(doc);
	diag_free(&d);
}

/* ---- aliases ---- */

T(alias_shares_anchor_node)
{
	struct ydoc *doc = parse_ok("base: &b { x: 1 }\nother: *b\n");
	const struct ynode *base = ymap_get(doc->root, "base"), *other = ymap_get(doc->root, "other");
	assert_non_null(base);
	assert_ptr_equal(base, other);
	assert_string_equal(ymap_get(other, "x")->str, "1");
	ydoc_free(doc);
}

T(alias_of_scalar)
{
	struct ydoc *doc = parse_ok("a: &v 101\nb: *v\nc: [*v, *v]\n");
	const struct ynode *b = ymap_get(doc->root, "b");
	assert_string_equal(b->str, "101");
	assert_int_equal(yscalar_kind(b), YS_INT);
	assert_ptr_equal(ymap_get(doc->root, "c")->vals[1], ymap_get(doc->root, "a"));
	ydoc_free(doc);
}

T(alias_redefined_anchor_uses_latest)
{
	struct ydoc *doc = parse_ok("a: &x one\nb: &x two\nc: *x\n");
	assert_string_equal(ymap_get(doc->root, "c")->str, "two");
	ydoc_free(doc);
}

T(unknown_alias_reported)
{
	struct diag d = {0};
	parse_bad("a: *nope\n", &d);
	assert_int_equal(d.errors, 1);
	assert_string_equal(d.msgs[0].text, "unknown alias '*nope'");
	assert_int_equal(d.msgs[0].line, 1);
	assert_int_equal(d.msgs[0].col, 4);
	diag_free(&d);
}

/* ---- files ---- */

T(load_missing_file_reports)
{
	struct diag d = {0};
	struct ydoc *doc = ydoc_load("/nonexistent/hrsync-test.yaml", &d);
	assert_null(doc);
	assert_int_equal(d.errors, 1);
	assert_string_equal(d.msgs[0].file, "/nonexistent/hrsync-test.yaml");
	assert_non_null(strstr(d.msgs[0].text, "cannot read"));
	diag_free(&d);
}

T(load_file_names_nodes)
{
	char path[] = "/tmp/hrsync-yaml-XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	const char *text = "k: v\n";
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	struct diag d = {0};
	struct ydoc *doc = ydoc_load(path, &d);
	unlink(path);
	assert_non_null(doc);
	assert_string_equal(ymap_get(doc->root, "k")->file, path);
	ydoc_free(doc);
	diag_free(&d);
}

/* ---- issue 19: big maps, limits, NUL ---- */

/* "map:\n" then n lines "  Cnnnnnn: v_nnnnnn", the line of code dup (if any) repeating code 0. Caller frees. */
static char *big_map(size_t n, size_t dup, size_t *len)
{
	struct sb b = {0};
	sb_puts(&b, "map:\n");
	for (size_t i = 0; i < n; i++)
		sb_printf(&b, "  C%06zu: v_%zu\n", i == dup ? 0 : i, i);
	*len = b.len;
	return sb_steal(&b);
}

/* Issue 19 (6): a map of 30,000 codes took 6 GB (each entry copied the arrays). */
T(yaml_map_of_30000_codes_keeps_every_entry_in_order)
{
	size_t len;
	char *text = big_map(30000, (size_t)-1, &len);
	struct diag d = {0};
	struct ydoc *doc = ydoc_parse("codes.yaml", text, len, &d);
	free(text);
	assert_non_null(doc);
	assert_int_equal(d.n, 0);
	const struct ynode *m = ymap_get(doc->root, "map");
	assert_int_equal(m->n, 30000);
	assert_true(m->cap < 2 * 30000);
	for (size_t i = 0; i < m->n; i += 997) {
		char k[32];
		snprintf(k, sizeof k, "C%06zu", i);
		assert_string_equal(m->keys[i]->str, k);
		assert_int_equal(m->keys[i]->line, (int)i + 2);
		assert_ptr_equal(ymap_get(m, k), m->vals[i]);
	}
	ydoc_free(doc);
	diag_free(&d);
}

T(yaml_duplicate_key_among_30000_reported_at_its_line)
{
	size_t len;
	char *text = big_map(30000, 25000, &len);
	struct diag d = {0};
	struct ydoc *doc = ydoc_parse("codes.yaml", text, len, &d);
	free(text);
	assert_non_null(doc);
	assert_int_equal(d.errors, 1);
	assert_string_equal(d.msgs[0].text, "key 'C000000' appears twice");
	assert_int_equal(d.msgs[0].line, 25002);
	assert_int_equal(d.msgs[0].col, 3);
	assert_int_equal(ymap_get(doc->root, "map")->n, 29999);
	ydoc_free(doc);
	diag_free(&d);
}

T(yaml_more_nodes_than_the_cap_refused_where_it_goes_past)
{
	/* A flow list of YAML_MAX_NODES items under a key: the root map, the key and the list
	 * take 3 nodes, so the cap falls on item YAML_MAX_NODES - 3 (0-based), at column 2 + 2i. */
	struct sb b = {0};
	sb_puts(&b, "k: [");
	for (size_t i = 0; i < YAML_MAX_NODES; i++)
		sb_puts(&b, i ? ",1" : "1");
	sb_puts(&b, "]\n");
	struct diag d = {0};
	struct ydoc *doc = ydoc_parse("big.yaml", b.s, b.len, &d);
	sb_free(&b);
	assert_null(doc);
	assert_int_equal(d.errors, 1);
	assert_non_null(strstr(d.msgs[0].text, "more than 500000 values (YAML nodes)"));
	assert_int_equal(d.msgs[0].line, 1);
	assert_int_equal(d.msgs[0].col, 5 + 2 * ((int)YAML_MAX_NODES - 3));
	diag_free(&d);
}

T(yaml_nodes_up_to_the_cap_load)
{
	struct sb b = {0};
	sb_puts(&b, "k: [");
	for (size_t i = 0; i < YAML_MAX_NODES - 3; i++)
		sb_puts(&b, i ? ",1" : "1");
	sb_puts(&b, "]\n");
	struct ydoc *doc = parse_ok(b.s);
	sb_free(&b);
	assert_int_equal(ymap_get(doc->root, "k")->n, YAML_MAX_NODES - 3);
	ydoc_free(doc);
}

T(yaml_aliases_count_as_nodes)
{
	struct sb b = {0};
	sb_puts(&b, "a: &x 1\nk: [");
	for (size_t i = 0; i < YAML_MAX_NODES; i++)
		sb_puts(&b, i ? ",*x" : "*x");
	sb_puts(&b, "]\n");
	struct diag d = {0};
	struct ydoc *doc = ydoc_parse("aliases.yaml", b.s, b.len, &d);
	sb_free(&b);
	assert_null(doc);
	assert_non_null(strstr(d.msgs[0].text, "more than 500000 values"));
	assert_int_equal(d.msgs[0].line, 2);
	diag_free(&d);
}

T(yaml_many_anchors_each_alias_finds_its_own)
{
	struct sb b = {0};
	for (int i = 0; i < 5000; i++)
		sb_printf(&b, "a%d: &n%d v%d\n", i, i, i);
	for (int i = 0; i < 5000; i += 7)
		sb_printf(&b, "b%d: *n%d\n", i, i);
	struct ydoc *doc = parse_ok(b.s);
	sb_free(&b);
	assert_string_equal(ymap_get(doc->root, "b4998")->str, "v4998");
	assert_ptr_equal(ymap_get(doc->root, "b7"), ymap_get(doc->root, "a7"));
	ydoc_free(doc);
}

/* k: v lines past YAML_MAX_BYTES; the line at which the limit falls, 1-based. */
static char *past_the_size_limit(size_t *len, int *limit_line, int *limit_col)
{
	struct sb b = {0};
	while (b.len <= YAML_MAX_BYTES)
		sb_printf(&b, "key%09zu: value\n", b.len);   /* 20 bytes a line */
	assert_int_equal(b.len % 20, 0);
	*len = b.len;
	*limit_line = (int)(YAML_MAX_BYTES / 20) + 1;
	*limit_col = (int)(YAML_MAX_BYTES % 20) + 1;
	return sb_steal(&b);
}

T(yaml_text_past_the_size_limit_refused_where_it_goes_past)
{
	size_t len;
	int line, col;
	char *text = past_the_size_limit(&len, &line, &col);
	struct diag d = {0};
	assert_null(ydoc_parse("huge.yaml", text, len, &d));
	free(text);
	assert_int_equal(d.errors, 1);
	assert_string_equal(d.msgs[0].file, "huge.yaml");
	assert_int_equal(d.msgs[0].line, line);
	assert_int_equal(d.msgs[0].col, col);
	assert_string_equal(d.msgs[0].text, "the file goes past 8 MiB here, the most hrsync reads from one file; split it");
	diag_free(&d);
}

T(yaml_file_past_the_size_limit_refused_by_load)
{
	size_t len;
	int line, col;
	char *text = past_the_size_limit(&len, &line, &col);
	char path[] = "/tmp/hrsync-yaml-XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, len), (ssize_t)len);
	close(fd);
	free(text);
	struct diag d = {0};
	assert_null(ydoc_load(path, &d));
	unlink(path);
	assert_int_equal(d.errors, 1);
	assert_string_equal(d.msgs[0].file, path);
	assert_int_equal(d.msgs[0].line, line);
	assert_non_null(strstr(d.msgs[0].text, "goes past 8 MiB"));
	diag_free(&d);
}

T(yaml_endless_file_read_no_further_than_the_limit)
{
	struct diag d = {0};
	size_t len = 0;
	assert_null(yfile_read("/dev/zero", &len, &d));
	assert_int_equal(d.errors, 1);
	assert_non_null(strstr(d.msgs[0].text, "goes past 8 MiB"));
	diag_free(&d);
}

T(yaml_file_at_the_size_limit_reads)
{
	char path[] = "/tmp/hrsync-yaml-XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, (off_t)YAML_MAX_BYTES), 0);
	close(fd);
	struct diag d = {0};
	size_t len = 0;
	char *text = yfile_read(path, &len, &d);
	unlink(path);
	assert_non_null(text);
	assert_int_equal(len, YAML_MAX_BYTES);
	assert_int_equal(d.n, 0);
	free(text);
}

/* Issue 19 (10): a "\0" escape silently cut table: or where: short. */
T(yaml_nul_escape_in_a_value_refused_with_its_position)
{
	static const char *const texts[] = {
		"source:\n  table: \"erp.employees\\0; DROP\"\n",
		"source:\n  table: \"erp.employees\\x00x\"\n",
		"source:\n  table: \"erp.employees\\u0000x\"\n",
	};
	for (size_t i = 0; i < ARRAY_LEN(texts); i++) {
		struct diag d = {0};
		struct ydoc *doc = ydoc_parse("m.yaml", texts[i], strlen(texts[i]), &d);
		assert_int_equal(d.errors, 1);
		assert_int_equal(d.msgs[0].line, 2);
		assert_int_equal(d.msgs[0].col, 10);
		assert_non_null(strstr(d.msgs[0].text, "cannot hold a NUL character"));
		ydoc_free(doc);
		diag_free(&d);
	}
}

T(yaml_nul_escape_in_a_key_refused)
{
	struct diag d = {0};
	parse_bad("\"wh\\0ere\": x\n", &d);
	assert_int_equal(d.errors, 1);
	assert_int_equal(d.msgs[0].line, 1);
	assert_int_equal(d.msgs[0].col, 1);
	diag_free(&d);
}

T(yaml_other_escapes_still_read)
{
	struct ydoc *doc = parse_ok("a: \"tab\\there \\u00e9 \\x41\"\n");
	assert_string_equal(ymap_get(doc->root, "a")->str, "tab\there \xc3\xa9 A");
	ydoc_free(doc);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(positions_are_one_based),
		cmocka_unit_test(positions_in_flow_map),
		cmocka_unit_test(positions_in_sequence),
		cmocka_unit_test(map_keeps_order),
		cmocka_unit_test(empty_document_has_no_root),
		cmocka_unit_test(scalar_length_and_utf8),
		cmocka_unit_test(kind_plain_int),
		cmocka_unit_test(kind_quoted_int_is_string),
		cmocka_unit_test(kind_leading_zero_stays_string),
		cmocka_unit_test(kind_float),
		cmocka_unit_test(kind_bool),
		cmocka_unit_test(kind_yaml11_booleans_are_strings),
		cmocka_unit_test(kind_null),
		cmocka_unit_test(kind_quoted_keywords_are_strings),
		cmocka_unit_test(kind_tagged_is_string),
		cmocka_unit_test(kind_block_scalar_is_string),
		cmocka_unit_test(kind_words),
		cmocka_unit_test(kind_of_non_scalar_is_string),
		cmocka_unit_test(scalar_bool_values),
		cmocka_unit_test(type_names),
		cmocka_unit_test(map_get_on_non_map_is_null),
		cmocka_unit_test(duplicate_key_reported_at_second),
		cmocka_unit_test(every_duplicate_key_reported),
		cmocka_unit_test(duplicate_key_in_flow_map),
		cmocka_unit_test(syntax_error_with_position),
		cmocka_unit_test(syntax_error_bad_indentation),
		cmocka_unit_test(syntax_error_unclosed_flow),
		cmocka_unit_test(syntax_error_unterminated_quote),
		cmocka_unit_test(syntax_error_tab_indent),
		cmocka_unit_test(second_document_refused),
		cmocka_unit_test(complex_key_refused),
		cmocka_unit_test(too_deep_refused),
		cmocka_unit_test(errors_accumulate_across_parses),
		cmocka_unit_test(parse_after_earlier_errors_still_succeeds),
		cmocka_unit_test(alias_shares_anchor_node),
		cmocka_unit_test(alias_of_scalar),
		cmocka_unit_test(alias_redefined_anchor_uses_latest),
		cmocka_unit_test(unknown_alias_reported),
		cmocka_unit_test(load_missing_file_reports),
		cmocka_unit_test(load_file_names_nodes),
		cmocka_unit_test(yaml_map_of_30000_codes_keeps_every_entry_in_order),
		cmocka_unit_test(yaml_duplicate_key_among_30000_reported_at_its_line),
		cmocka_unit_test(yaml_more_nodes_than_the_cap_refused_where_it_goes_past),
		cmocka_unit_test(yaml_nodes_up_to_the_cap_load),
		cmocka_unit_test(yaml_aliases_count_as_nodes),
		cmocka_unit_test(yaml_many_anchors_each_alias_finds_its_own),
		cmocka_unit_test(yaml_text_past_the_size_limit_refused_where_it_goes_past),
		cmocka_unit_test(yaml_file_past_the_size_limit_refused_by_load),
		cmocka_unit_test(yaml_endless_file_read_no_further_than_the_limit),
		cmocka_unit_test(yaml_file_at_the_size_limit_reads),
		cmocka_unit_test(yaml_nul_escape_in_a_value_refused_with_its_position),
		cmocka_unit_test(yaml_nul_escape_in_a_key_refused),
		cmocka_unit_test(yaml_other_escapes_still_read),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
