/*
 * benchlib — what bench/seedlinks.c and bench/mapbench.c share: the engine's lookup
 * cache, written exactly as daemon/sync.c's load_lookup() and cb_lookup() (static there),
 * so the per-row cost and the ids match a real run's.
 *
 * Keys: "resource\x1fmatch\x1fname" with the name trimmed and lowered; the value is the
 * id as JSON, "\x01" for a name that is ambiguous; "resource\x1fmatch\x1f" marks a list
 * as loaded.
 */
#ifndef HRSYNC_BENCHLIB_H
#define HRSYNC_BENCHLIB_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "mapping.h"
#include "strmap.h"

static char *lower_trim(const char *s)
{
	struct jv *v = apply_transform(TR_LOWER, apply_transform(TR_TRIM, jv_str(s)));
	char *t = jv_scalar_text(v);
	jv_free(v);
	return t;
}

/* Add one reference list (a JSON array of items) to the cache, as sync.c load_lookup() does. */
static void lookups_add(struct strmap *lk, const char *resource, const char *match, const struct jv *items)
{
	char *mark = xasprintf("%s\x1f%s\x1f", resource, match);
	for (size_t i = 0; items && items->t == JV_ARR && i < items->u.arr.n; i++) {
		const struct jv *it = items->u.arr.v[i];
		char *name = jv_scalar_text(jv_obj_get(it, match));
		const struct jv *id = jv_obj_get(it, "id");
		if (!name || !id) {
			free(name);
			continue;
		}
		char *norm = lower_trim(name);
		char *k = xasprintf("%s%s", mark, norm);
		char *idj = jv_dumps(id);
		strmap_put(lk, k, strmap_get(lk, k, NULL) ? "\x01" : idj);
		free(idj);
		free(k);
		free(norm);
		free(name);
	}
	strmap_put(lk, mark, "");
	free(mark);
}

static bool lookups_loaded(const struct strmap *lk, const char *resource, const char *match)
{
	char *mark = xasprintf("%s\x1f%s\x1f", resource, match);
	bool have = strmap_get(lk, mark, NULL);
	free(mark);
	return have;
}

/* sync.c cb_lookup(): ctx is the struct strmap. */
static bool bench_cb_lookup(void *ctx, const char *resource, const char *match, const char *name, struct jv **out)
{
	struct strmap *lk = ctx;
	char *norm = lower_trim(name);
	char *k = xasprintf("%s\x1f%s\x1f%s", resource, match, norm);
	const char *v = NULL;
	bool found = strmap_get(lk, k, &v) && v && v[0] != '\x01';
	if (found)
		*out = jv_parse(v, strlen(v), NULL, 0);
	free(k);
	free(norm);
	return found && *out;
}

/* The engine's fingerprint (sync.c fingerprint()): SHA-256 of the payload's compact JSON. */
#include "sha256.h"
static void bench_fingerprint(const struct jv *payload, char out[65])
{
	char *s = jv_dumps(payload);
	sha256_hex(s, strlen(s), out);
	free(s);
}

#endif
