/*
 * strmap — a string -> string hash map (open addressing), for per-run caches:
 * lookup lists, resolved references, a connector's index of what the platform holds.
 * The map owns copies of keys and values.
 */
#ifndef HRSYNC_STRMAP_H
#define HRSYNC_STRMAP_H

#include <stdbool.h>
#include <stddef.h>

struct strmap {
	char **keys;
	char **vals;
	size_t cap, n;
};

void strmap_put(struct strmap *m, const char *key, const char *val);  /* val may be NULL */
/* true when present; *val gets the stored value (may be NULL), owned by the map. */
bool strmap_get(const struct strmap *m, const char *key, const char **val);
void strmap_clear(struct strmap *m);

#endif
