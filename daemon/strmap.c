/*
 * strmap — see strmap.h.
 */
#include "strmap.h"

#include <stdlib.h>
#include <string.h>

#include "util.h"

static size_t hash(const char *s)
{
	size_t h = 1469598103934665603ULL;
	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= 1099511628211ULL;
	}
	return h;
}

static void rehash(struct strmap *m, size_t ncap)
{
	char **ok = m->keys, **ov = m->vals;
	size_t ocap = m->cap;
	m->keys = xcalloc(ncap, sizeof *m->keys);
	m->vals = xcalloc(ncap, sizeof *m->vals);
	m->cap = ncap;
	m->n = 0;
	for (size_t i = 0; i < ocap; i++)
		if (ok[i]) {
			size_t j = hash(ok[i]) & (ncap - 1);
			while (m->keys[j])
				j = (j + 1) & (ncap - 1);
			m->keys[j] = ok[i];
			m->vals[j] = ov[i];
			m->n++;
		}
	free(ok);
	free(ov);
}

void strmap_put(struct strmap *m, const char *key, const char *val)
{
	if ((m->n + 1) * 2 > m->cap)
		rehash(m, m->cap ? m->cap * 2 : 64);
	size_t j = hash(key) & (m->cap - 1);
	while (m->keys[j]) {
		if (strcmp(m->keys[j], key) == 0) {
			free(m->vals[j]);
			m->vals[j] = xstrdup(val);
			return;
		}
		j = (j + 1) & (m->cap - 1);
	}
	m->keys[j] = xstrdup(key);
	m->vals[j] = xstrdup(val);
	m->n++;
}

bool strmap_get(const struct strmap *m, const char *key, const char **val)
{
	if (!m->cap)
		return false;
	size_t j = hash(key) & (m->cap - 1);
	while (m->keys[j]) {
		if (strcmp(m->keys[j], key) == 0) {
			if (val)
				*val = m->vals[j];
			return true;
		}
		j = (j + 1) & (m->cap - 1);
	}
	return false;
}

void strmap_clear(struct strmap *m)
{
	for (size_t i = 0; i < m->cap; i++) {
		free(m->keys[i]);
		free(m->vals[i]);
	}
	free(m->keys);
	free(m->vals);
	memset(m, 0, sizeof *m);
}
