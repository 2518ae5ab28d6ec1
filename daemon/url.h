/*
 * url — request paths, query strings and form bodies, every variable part percent-encoded.
 *
 * A connector never pastes an id or a name into a URL by hand: a platform id answered as
 * "../employees/1000" or "8304/06" must stay one path segment, an e-mail with '+' one
 * query value. Paths are templates whose {id} and {sub} placeholders take the record's and
 * the sub-resource's ids; queries are key/value pairs, keys with brackets included
 * ("filters[ref][erp]" -> "filters%5Bref%5D%5Berp%5D"). A segment that is only "." or ".."
 * is encoded too (%2E), or libcurl would resolve it as a step up the path. Ids are
 * checked against their connector's declared shape before they get here (id_valid).
 * Pure functions: no I/O.
 */
#ifndef HRSYNC_URL_H
#define HRSYNC_URL_H

#include <stdbool.h>

#include "util.h"

/* Key/value pairs of a query string, NULL-terminated on a key; a NULL value skips its pair. */
#define QUERY(...) ((const char *const[]){__VA_ARGS__, NULL})

/* Append s percent-encoded: RFC 3986 unreserved characters stay, and ':' and '@' too when segment. */
void url_encode_to(struct sb *b, const char *s, bool segment);
/* s percent-encoded as a query key or value. Caller frees. */
char *url_encode(const char *s);

/*
 * A path from a template: "{id}" becomes id and "{sub}" becomes sub, each encoded as one
 * path segment ("erp:8304/06" -> "erp:8304%2F06"); the rest is copied as it is. Then the
 * query pairs, encoded. Caller frees. NULL when a placeholder's value is NULL or empty:
 * "/employees/" is another resource than "/employees/{id}".
 */
char *url_expand(const char *tpl, const char *id, const char *sub, const char *const *query);
/* Append "k=v" pairs to b, with '?' first unless b already holds one, '&' between. */
void url_query(struct sb *b, const char *const *query);

/* Append k=v to an x-www-form-urlencoded body, both encoded. */
void form_add(struct sb *b, const char *k, const char *v);

/*
 * What a platform's ids look like. A connector declares the shape of each entity's ids
 * (or several, or-ed); an id of another shape in an answer ("../employees/1000", "12 34",
 * 4 KB of anything) is refused where it enters: never stored, never put in a path.
 */
enum id_shape {
	ID_DIGITS = 1,   /* 1 to 20 digits: 1001 */
	ID_UUID = 2,     /* 8-4-4-4-12 hex digits */
	ID_TOKEN = 4,    /* 1 to 128 of [A-Za-z0-9._:-], not "." nor "..": a string id */
};
/* Whether id has one of the shapes (0: ID_TOKEN). NULL is not an id. */
bool id_valid(unsigned shapes, const char *id);
/* The shapes in words, for messages: "digits", "a UUID", "digits or a UUID". Static. */
const char *id_shape_name(unsigned shapes);
/* An id as a message may show it: quoted, at most 40 characters (then "…"), anything but
 * printable ASCII as '?', secrets redacted. Caller frees. */
char *id_shown(const char *id);

#endif
