/*
 * fuzz_yaml — the YAML layer under every config and mapping file: ydoc_parse(), then
 * yscalar_kind(), yscalar_bool(), ynode_type_name() and ymap_get() over every node
 * (aliases share nodes, and an anchor may hold itself: each node is visited once).
 *
 * Input: the YAML text.
 *
 * Properties: ydoc_parse() returns NULL only with an error in the diag (it may return a
 * document with errors too: a duplicate key is reported and the file kept); every node has
 * a position (line and column from 1) and a known type; a map's keys are scalars,
 * each found again by ymap_get() (duplicates are refused); a scalar's len is its
 * length; a YS_BOOL scalar reads as a boolean and nothing else does.
 */
#include "fuzz.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fuzz_setup(false);
	return 0;
}

static void visit(const struct ynode *n, struct fuzz_seen *seen)
{
	if (!n || !fuzz_seen_add(seen, n))
		return;
	FUZZ_CHECK(n->line >= 1 && n->col >= 1, "node at %d:%d", n->line, n->col);
	FUZZ_CHECK(n->type == YN_SCALAR || n->type == YN_MAP || n->type == YN_SEQ, "node of type %d", (int)n->type);
	FUZZ_CHECK(ynode_type_name(n) != NULL, "no type name");
	enum yscalar k = yscalar_kind(n);
	bool b;
	FUZZ_CHECK(yscalar_bool(n, &b) == (k == YS_BOOL && n->type == YN_SCALAR), "yscalar_bool disagrees with yscalar_kind");
	if (n->type == YN_SCALAR) {
		FUZZ_CHECK(n->str != NULL, "scalar without text");
		FUZZ_CHECK(n->str[n->len] == '\0', "scalar text not terminated at its length");
		FUZZ_CHECK(n->plain || k == YS_STR, "a quoted scalar of kind %d", (int)k);
		return;
	}
	for (size_t i = 0; i < n->n; i++) {
		if (n->type == YN_MAP) {
			FUZZ_CHECK(n->keys[i] && n->keys[i]->type == YN_SCALAR, "a map key that is not a scalar");
			FUZZ_CHECK(ymap_get(n, n->keys[i]->str) == n->vals[i], "ymap_get(\"%s\") finds another value",
				   n->keys[i]->str);
			visit(n->keys[i], seen);
		}
		FUZZ_CHECK(n->vals[i] != NULL, "a NULL item");
		visit(n->vals[i], seen);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct diag d = {0};
	struct ydoc *doc = ydoc_parse("fuzz.yaml", (const char *)data, size, &d);
	if (!doc) {
		FUZZ_CHECK(d.errors > 0, "ydoc_parse() returned NULL without an error");
	} else {
		struct fuzz_seen seen = {0};
		visit(doc->root, &seen);
		free(seen.v);
		FUZZ_CHECK(ymap_get(doc->root, "") == NULL || (doc->root && doc->root->type == YN_MAP),
			   "ymap_get on a node that is not a map");
	}
	for (size_t i = 0; i < d.n; i++)
		FUZZ_CHECK(d.msgs[i].text && d.msgs[i].text[0], "diagnostic without text");
	ydoc_free(doc);
	diag_free(&d);
	return 0;
}
