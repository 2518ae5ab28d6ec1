/*
 * lookups — see lookups.h.
 */
#include "lookups.h"

#include <stdlib.h>
#include <string.h>

#include "mapping.h"
#include "sha256.h"
#include "util.h"

char *lookups_norm(const char *s)
{
	if (!s)
		return NULL;
	struct jv *v = apply_transform(TR_LOWER, apply_transform(TR_TRIM, jv_str(s)));
	char *t = jv_scalar_text(v);
	jv_free(v);
	return t;
}

bool lookups_loaded(const struct strmap *lk, const char *resource, const char *match)
{
	char *mark = xasprintf("%s\x1f%s\x1f", resource, match);
	bool have = strmap_get(lk, mark, NULL);
	free(mark);
	return have;
}

void lookups_add(struct strmap *lk, const char *resource, const char *match, const struct jv *items)
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
		char *norm = lookups_norm(name);
		char *k = xasprintf("%s%s", mark, norm);
		char *idj = jv_dumps(id);
		strmap_put(lk, k, strmap_get(lk, k, NULL) ? "\x01" : idj);
		free(idj);
		free(k);
		free(norm);
		free(name);
	}
	char *dump = items ? jv_dumps(items) : xstrdup("null"), digest[65];
	sha256_hex(dump, strlen(dump), digest);
	free(dump);
	char *dk = xasprintf("digest\x1f%s", mark);
	strmap_put(lk, dk, digest);
	free(dk);
	strmap_put(lk, mark, "");
	free(mark);
}

const char *lookups_digest(const struct strmap *lk, const char *resource, const char *match)
{
	char *dk = xasprintf("digest\x1f%s\x1f%s\x1f", resource, match);
	const char *d = NULL;
	bool have = strmap_get(lk, dk, &d);
	free(dk);
	return have ? d : NULL;
}

bool lookups_find(void *ctx, const char *resource, const char *match, const char *name, struct jv **out)
{
	const struct strmap *lk = ctx;
	char *norm = lookups_norm(name);
	char *k = xasprintf("%s\x1f%s\x1f%s", resource, match, norm);
	const char *v = NULL;
	bool known = strmap_get(lk, k, &v) && v;
	bool found = known && v[0] != '\x01';
	*out = NULL;
	if (found)
		*out = jv_parse(v, strlen(v), NULL, 0);
	else if (known) {
		char *why = xasprintf("several %s have %s '%s' on the platform; rename one of them there", resource, match,
				      name);
		*out = jv_str(why);
		free(why);
	}
	free(k);
	free(norm);
	return found && *out;
}
