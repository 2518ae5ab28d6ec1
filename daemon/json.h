/*
 * json — one JSON value type (jv) for everything hrsync builds or reads: mapped payloads,
 * platform answers, state columns. Parsing and generation go through yajl.
 *
 * Ownership: a jv owns its children. jv_obj_set/jv_arr_push take ownership of the value
 * passed in. jv_free(NULL) is a no-op. Numbers keep their text (JV_NUM) so that
 * "12.50" from the ERP reaches the platform unchanged; integers are JV_INT.
 * Objects keep insertion order: jv_dump() output is deterministic, and that is what
 * fingerprints are computed over.
 */
#ifndef HRSYNC_JSON_H
#define HRSYNC_JSON_H

#include <stdbool.h>
#include <stddef.h>

#include "util.h"

enum jv_type { JV_NULL, JV_BOOL, JV_INT, JV_NUM, JV_STR, JV_ARR, JV_OBJ };

struct jv {
	enum jv_type t;
	union {
		bool b;
		long long i;
		struct { char *s; size_t len; } str;   /* JV_STR and JV_NUM (its text) */
		struct { struct jv **v; size_t n, cap; } arr;
		struct { char **k; struct jv **v; size_t n, cap; } obj;
	} u;
};

struct jv *jv_null(void);
struct jv *jv_bool(bool b);
struct jv *jv_int(long long i);
struct jv *jv_num(const char *text);     /* text must be a valid JSON number */
struct jv *jv_str(const char *s);
struct jv *jv_strn(const char *s, size_t n);
struct jv *jv_arr(void);
struct jv *jv_obj(void);
void jv_free(struct jv *v);
struct jv *jv_copy(const struct jv *v);
bool jv_equal(const struct jv *a, const struct jv *b);

void jv_arr_push(struct jv *a, struct jv *v);
void jv_obj_set(struct jv *o, const char *key, struct jv *v);   /* replaces an existing key */
struct jv *jv_obj_get(const struct jv *o, const char *key);    /* NULL when absent */
struct jv *jv_obj_take(struct jv *o, const char *key);         /* removes and returns it */
/* A string from an object member: NULL unless it is a string. */
const char *jv_obj_str(const struct jv *o, const char *key);

bool jv_is_null(const struct jv *v);   /* NULL pointer or JV_NULL */
/* A platform id as text: integers and strings ("17" or 17 both give "17"); NULL otherwise. Caller frees. */
char *jv_id_text(const struct jv *v);
/* The reverse: digits become a JSON integer, anything else a string. */
struct jv *jv_from_id(const char *id);
/* Scalar as text for messages and templates: strings as is, numbers and booleans printed, null -> NULL. Caller frees. */
char *jv_scalar_text(const struct jv *v);

/* Compact JSON, appended to b. */
void jv_dump(const struct jv *v, struct sb *b);
char *jv_dumps(const struct jv *v);     /* caller frees */

/*
 * Parse text as one JSON value. On failure returns NULL and writes a one-line reason
 * into err ("JSON nested deeper than 256 levels", "a string that is not valid UTF-8", or
 * yajl's). Rejects invalid UTF-8 and trailing garbage. A key given twice in an object keeps
 * its first place and takes the last value; n keys cost O(n log n), whatever they are.
 */
struct jv *jv_parse(const char *text, size_t len, char *err, size_t errlen);

/* Follow a dotted path with list indexes ("a.b", "list[0].c"); NULL when absent. */
const struct jv *jv_path(const struct jv *v, const char *path);
/* The first of several paths separated by '|' that is there ("data.items|items"). */
const struct jv *jv_path_any(const struct jv *v, const char *paths);

#endif
