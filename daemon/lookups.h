/*
 * lookups — the per-run cache of a connector's reference lists (departments, positions,
 * leave types, ...) that `lookup:` fields resolve names against (mappings/README.md, `lookup`:
 * exact match after trimming, ignoring case; cached per run).
 *
 * In a strmap: "resource\x1fmatch\x1fname" -> the item's id as JSON, or "\x01" when several
 * items share the name; "resource\x1fmatch\x1f" marks the list as loaded, and
 * "digest\x1fresource\x1fmatch\x1f" holds the SHA-256 of the list (part of the generation:
 * a renamed department changes the payloads).
 */
#ifndef HRSYNC_LOOKUPS_H
#define HRSYNC_LOOKUPS_H

#include <stdbool.h>

#include "json.h"
#include "strmap.h"

/* A name as lookups compare it: trimmed, lower-cased (caller frees; NULL for NULL). */
char *lookups_norm(const char *name);
bool lookups_loaded(const struct strmap *lk, const char *resource, const char *match);
/* Adds one list (a JSON array of items with "id" and the match field). */
void lookups_add(struct strmap *lk, const char *resource, const char *match, const struct jv *items);
/* The list's digest (hex), NULL when not loaded. */
const char *lookups_digest(const struct strmap *lk, const char *resource, const char *match);
/*
 * A mapping engine lookup callback (eval_env.lookup) over the strmap in ctx: true with the id
 * in *out; false with *out NULL (unknown name) or a string saying why (ambiguous name).
 */
bool lookups_find(void *ctx, const char *resource, const char *match, const char *name, struct jv **out);

#endif
