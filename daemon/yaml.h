/*
 * yaml — a YAML file as a tree of nodes that remember their file:line:col, so that
 * config and mapping errors can point at the exact place (libyaml underneath).
 *
 * A ydoc owns every node and string in it; ydoc_free() releases them all at once.
 * Aliases point at their anchor's node (shared, not copied).
 *
 * Limits: these files are written by people and read by the daemon on every reload, so a
 * file over YAML_MAX_BYTES or holding more than YAML_MAX_NODES nodes (aliases count) is
 * refused with its position, never loaded half-way. A scalar holding a NUL ("\0",
 * "\x00", "\u0000") is refused too: C strings would silently cut it there. Building
 * costs O(nodes): children arrays grow geometrically, duplicate keys are found by hash.
 */
#ifndef HRSYNC_YAML_H
#define HRSYNC_YAML_H

#include <stdbool.h>
#include <stddef.h>

#include "diag.h"

enum ynode_type { YN_SCALAR, YN_MAP, YN_SEQ };

/* What a scalar means under the YAML 1.2 core schema (quoted scalars are always strings). */
enum yscalar { YS_NULL, YS_BOOL, YS_INT, YS_FLOAT, YS_STR };

/* 8 MiB: a mapping file is a few KB, a code table of 100,000 codes about 3 MB. */
#define YAML_MAX_BYTES ((size_t)8 << 20)
/* 500,000 nodes (a map entry is two): about 75 MB of tree, loaded again at each reload. */
#define YAML_MAX_NODES ((size_t)500000)

struct ynode {
	enum ynode_type type;
	const char *file;
	int line, col;          /* 1-based */
	char *str;              /* scalar text, NUL-terminated */
	size_t len;
	bool plain;             /* an unquoted, untagged scalar: its type is resolved */
	size_t n;               /* entries of a map or items of a sequence */
	size_t cap;             /* room in keys/vals (the builder's) */
	struct ynode **keys;    /* map keys (scalars) */
	struct ynode **vals;    /* map values, or sequence items */
};

struct ydoc {
	struct ynode *root;     /* NULL for an empty file */
	char *file;
	void **blocks;
	size_t nblocks, capblocks;
};

/* Parse path. On a syntax error, adds it to d and returns NULL. */
struct ydoc *ydoc_load(const char *path, struct diag *d);
/*
 * Read a whole configuration file (YAML, or a CSV code table) of at most YAML_MAX_BYTES.
 * One writable by others is read but reported as an error: it decides what is sent where.
 * NULL after adding to d why (cannot read, too big: errno says which, EFBIG for too big).
 * *len gets the size. Caller frees.
 */
char *yfile_read(const char *path, size_t *len, struct diag *d);
struct ydoc *ydoc_parse(const char *name, const char *text, size_t len, struct diag *d);
void ydoc_free(struct ydoc *doc);

/* The value under key in a map node, or NULL (also when map is not a map). */
struct ynode *ymap_get(const struct ynode *map, const char *key);
enum yscalar yscalar_kind(const struct ynode *n);
const char *ynode_type_name(const struct ynode *n);   /* "a map", "a list", "a number", ... */
bool yscalar_bool(const struct ynode *n, bool *out);

#endif
