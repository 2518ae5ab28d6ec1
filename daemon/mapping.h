/*
 * mapping — the mapping files payroll teams edit (mappings/README.md): loading and checking them
 * (mapping_load.c), and turning one source row into the platform payload
 * (mapping_eval.c).
 *
 * Loading reports every problem with file:line:col and keeps going, so one `check`
 * lists all of them. Evaluation is pure: references and lookups are answered by the
 * callbacks in struct eval_env, so the engine decides where ids come from and the
 * unit tests can answer them from tables.
 */
#ifndef HRSYNC_MAPPING_H
#define HRSYNC_MAPPING_H

#include <regex.h>
#include <stdbool.h>
#include <stddef.h>

#include "diag.h"
#include "json.h"
#include "yaml.h"

enum vsrc { VS_NONE, VS_FROM, VS_VALUE, VS_TEMPLATE, VS_REF, VS_LOOKUP };
enum vfmt { VF_NONE, VF_STRING, VF_INT, VF_NUMBER, VF_BOOL, VF_DATE, VF_DATETIME, VF_UNIX };
enum unmapped { UNM_ERROR, UNM_NULL, UNM_KEEP };
enum vcheck { VC_NONE, VC_EMAIL, VC_NIR, VC_REGEX };
enum xform { TR_TRIM, TR_LOWER, TR_UPPER, TR_TITLE, TR_DIGITS, TR_NULLIFY_EMPTY, TR_COLLAPSE_SPACES };
enum direction { DIR_PUSH, DIR_PULL };

/* A template: literal text and column placeholders. */
struct tpl_part {
	char *lit;     /* literal text, or NULL for a column */
	int col;       /* index into mapping.cols (push) */
	char *path;    /* the placeholder's name (a column, or a path for pull) */
};
struct tpl {
	struct tpl_part *parts;
	size_t n;
};

struct map_entry {
	char *key;
	struct jv *val;
};

struct field {
	char *name;            /* the JSON key */
	char *path;            /* dotted, for messages: "position.department_id" */
	const char *file;
	int line, col;
	enum vsrc src;
	char *from;            /* column (push) or dotted path (pull) */
	int col_idx;           /* push: index into mapping.cols */
	struct jv *value;
	struct tpl tpl;        /* template and ref */
	char *lookup_resource, *lookup_match;
	enum xform *xf;
	size_t nxf;
	struct map_entry *map;
	size_t nmap;
	bool has_map;
	enum unmapped unmapped;
	enum vfmt fmt;
	struct jv *def;
	bool required, omit_null;
	enum vcheck check;
	regex_t re;
	bool has_re;
	long max_length;       /* 0: none */
	char *ref_mapping;     /* ref: resolve erp: against this mapping (default: employees of the same connector) */
	char *ref_back;        /* pull: platform id -> ERP key of this mapping */
	struct field *kids;    /* a nested object (sub-resource) */
	size_t nkids;
	bool nested;
};

struct mapping {
	char *name;
	char *file;
	struct ydoc *doc;
	int line, col;
	char *connector, *entity;
	enum direction dir;
	char **depends_on;
	size_t ndeps;
	const struct ynode *depends_node;
	/* push source */
	char *table, *query, *key, *where;
	bool on_missing_terminate;
	char *term_when;
	struct field *term_fields;
	size_t nterm;
	struct field *fields;
	size_t nfields;
	char **cols;           /* every column read; cols[0] is the key */
	size_t ncols;
	/* pull */
	struct jv *filter;
	char *target_table, *deleted_column;
	char **target_keys;    /* the target's key columns: field names of this mapping */
	size_t ntarget_keys;
	/* filled in by config when it links mappings to connectors */
	const struct conn_cfg *conn;
	const struct conn_entity *ent;
	bool has_ssn_field;    /* a field checks a NIR: its hash is kept for ssn: references */
	char *mapping_hash;    /* sha256 of the file's bytes, for the record of a run */
};

/* Load and check one mapping file. Problems go to d; returns NULL only when unusable. */
struct mapping *mapping_load(const char *path, struct diag *d);
void mapping_free(struct mapping *m);
/* Find a field by dotted path (for messages and tests). */
const struct field *mapping_field(const struct mapping *m, const char *path);
/* fn on each lookup field of m (nested objects' and terminate's too), in the file's order,
 * until it returns false: false then. */
bool mapping_each_lookup(const struct mapping *m, bool (*fn)(void *ud, const struct field *f), void *ud);

/* ---- evaluation ---- */

/* One source row: text values as PostgreSQL sends them, typed by OID. */
struct row {
	size_t n;
	const char *const *vals;   /* NULL for SQL NULL */
	const int *lens;
	const unsigned *oids;
	const struct jv *record;   /* pull: the platform record instead of columns */
};

enum ref_status { REF_RESOLVED, REF_DEFERRED, REF_INVALID };

struct eval_env {
	void *ctx;
	/* Resolve a validated reference to the platform's id value. */
	enum ref_status (*resolve)(void *ctx, const struct field *f, int scheme, const char *id,
				   const char *nir_norm, struct jv **out, char **why);
	/* Name -> platform id through a connector reference list; false when not found (then
	 * *out may hold a string saying why, e.g. several items share the name). */
	bool (*lookup)(void *ctx, const char *resource, const char *match, const char *name, struct jv **out);
	/* pull: platform id -> ERP key through the links of a mapping; false when unknown. */
	bool (*ref_back)(void *ctx, const char *mapping, const char *platform_id, struct jv **out);
};

struct eval_error {
	char *path;      /* field path */
	char *rule;      /* the rule that failed: required, check, map, format, lookup, ref... */
	char *reason;    /* for people; values shown only where they are business codes */
};

struct mapped {
	struct jv *payload;         /* the object to send, on success */
	struct eval_error err;      /* first error: err.path set when the record failed */
	int nerrors;
	char *defer_reason;         /* set when a reference could not be resolved yet */
	char *defer_field;
	bool has_nir;
	char nir[16];               /* the normalised NIR a `check: nir` field accepted */
};

/*
 * Evaluate fields over row. Returns 0 on success (out->payload set), 1 when the record
 * failed (out->err), 2 when it is deferred (out->defer_reason). out must be zeroed.
 */
int mapping_eval(const struct mapping *m, const struct field *fields, size_t nfields, const struct row *row,
		 const struct eval_env *env, struct mapped *out);
void mapped_free(struct mapped *out);
/* The row's columns as a JSON object (for preview). Caller frees. */
struct jv *row_json(const struct mapping *m, const struct row *row);

/* Exposed for unit tests: one value through transforms, format and check. */
struct jv *apply_transform(enum xform t, struct jv *v);
bool format_value(enum vfmt f, struct jv **v, char **why);
bool check_email(const char *s);

#endif
