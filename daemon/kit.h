/*
 * kit — what every connector needs beyond one request (connector.h): the record flows its
 * entity table drives, pagination in every style the platforms use, searches through
 * pages, sub-resources whose answer may be lost, indexes of what a platform holds, and
 * the markers by which hrsync finds records on platforms that keep no external id.
 *
 * A connector module includes this file; it is the platform's paths, envelopes and
 * entity table, and these flows do the rest (docs/connectors.md).
 */
#ifndef HRSYNC_KIT_H
#define HRSYNC_KIT_H

#include "connector.h"
#include "strmap.h"

struct nat_index;
struct search;

/* ---- record flows (the defaults of struct conn_entity) ---- */

/* The entity's table, action by action (connector_start's body). */
void kit_start(struct op *op);
/* find found the record an interrupted run (or HR) made: adopt it (entity's adopt, or the update request). */
void kit_found(struct op *op, const char *id);
/* find's usual end with a listed item: its id is the record (kit_found); no id is a transient failure. */
void kit_found_item(struct op *op, const struct jv *item);
/* A create's 409 or 422 after a lost answer: look again (it may be ours, carried out late), else refused. */
void kit_create_refused(struct op *op);
/* Nothing found: create it (entity's create, or POST `path`). */
void kit_absent(struct op *op);
/* The main record is written: the sub-resources (entity's then), or done. */
void kit_written(struct op *op);
/* Finish the op as done (a 404 on delete: it is gone already). */
void kit_done(struct op *op);
/* A 404 on update: deleted on the platform meanwhile; create it again (looking for it first). */
void kit_recreate(struct op *op);
/* The update request of the default flow (PUT/PATCH `item`), sent whether or not the fields changed. */
void kit_update_send(struct op *op);
/* A platform that cannot edit the record: delete it, then create it again (markers say which is ours). */
void kit_replace(struct op *op);
/* The POST of the default create, to the entity's path or to url (owned, url_expand). */
void kit_post(struct op *op);
void kit_post_url(struct op *op, char *url);
/* The update request of an adoption (PUT/PATCH `item`): the record found gets the payload. */
void kit_adopt_send(struct op *op);
/* The default update: the update request, unless the main fields are as the platform accepted them. */
void kit_update(struct op *op);
/* A find for a marker entity: the index when it can say, else a search of url (owned; NULL: create). */
void kit_marker_find(struct op *op, const struct nat_index *ix, char *url);

/* ---- reading and building records ---- */

/* The main fields of the payload: without the groups sent as sub-resources. Caller frees. */
struct jv *kit_main_fields(const struct op *op, const struct jv *payload);
/* The wire body of the main fields (the entity's marker, its envelope); NULL + *why when refused. */
struct jv *kit_body(struct op *op, const struct jv *payload, bool create, char **why);
/* The entity's item path for op (the entity's item, or item_of). */
const char *kit_item(const struct op *op);
/* A field of a listed or answered record: at its top, else under "attributes" (Personio v1,
 * JSON:API), a {"label", "value"} wrapper unwrapped. Borrowed; NULL when absent. */
const struct jv *kit_field(const struct jv *item, const char *name);
/* The record in an answer: its "data" object, or the answer itself. Borrowed. */
const struct jv *kit_record(const struct jv *answer);
/* The id in an answer to a create: data.id, else id. Caller frees. */
char *kit_answer_id(const struct jv *answer);
/* A sub-resource id kept in op->extra (NULL when none); kit_extra_set(NULL) forgets it. */
const char *kit_extra(const struct op *op, const char *k);
void kit_extra_set(struct op *op, const char *k, const char *id);

/* ---- indexes of what a platform holds (filled in prepare) ---- */

struct nat_index {
	struct strmap map;      /* key -> id, "" when several records share the key */
	bool ready;             /* filled from a complete listing */
	bool fold;              /* keys compare without case (e-mails) */
};
enum nat_hit { NAT_UNKNOWN, NAT_NONE, NAT_ONE, NAT_MANY };
void nat_add(struct nat_index *ix, const char *key, const char *id);
/* NAT_UNKNOWN when the index is not ready, or op must look on the platform (a lost answer). */
enum nat_hit nat_find(const struct nat_index *ix, const struct op *op, const char *key, const char **id);
void nat_clear(struct nat_index *ix);
/* nat_clear of several, NULL-terminated (a connector's destroy). */
void nat_clear_all(struct nat_index *const *ixs);
/* A listed record's marker into a marker index (key -> "fp id"). */
void nat_add_marker(struct nat_index *ix, const char *text, const char *id);
/* From a marker index: NAT_ONE when kit_marker_found took the op, NAT_NONE: none, NAT_UNKNOWN: search. */
enum nat_hit nat_marker(const struct nat_index *ix, struct op *op);

/* An index and the field of a listed record that keys it (its marker when the field is the entity's marker). */
struct index_key {
	struct nat_index *ix;
	const char *field;
};
/* find's work done by prepare: read the listing at path into the indexes ({NULL} ends) when
 * that is cheaper than one lookup per create (conn_worth_indexing). */
bool kit_index(struct connector *c, const struct conn_entity *e, const char *path, long pending,
	       const struct index_key *keys, char **err);
/* The whole listing into the indexes, ready when it was complete (as many records as the
 * platform counted; otherwise left empty and not ready). false + *err when it could not be read. */
bool kit_index_all(struct connector *c, const struct conn_entity *e, const char *path, const struct index_key *keys,
		   char **err);

/* ---- markers: "[hrsync:KEY#FINGERPRINT]" in a free-text field ---- */

/* text with op's marker appended (caller frees). */
char *marker_append(const struct op *op, const char *text);
/* The key in a text (caller frees; NULL when none) and the fingerprint into fp. */
char *marker_key(const char *text, char fp[17]);
/* A record of ours was found by its marker: the same payload is adopted, an outdated one replaced. */
void kit_marker_found(struct op *op, const char *id, const char *fp);
/* Search the listing at url (owned, built with url_expand) for op's marker; then kit_marker_found or kit_absent. */
void kit_marker_search(struct op *op, char *url);

/* ---- pull: what the platform owns, not what hrsync pushed ---- */

struct pull_pass {
	bool (*cb)(void *ud, const char *platform_id, const struct jv *record);   /* the engine's */
	void *ud;
	const char *marker;      /* the field of hrsync's marker: a record that has one came from the ERP (NULL: none) */
	unsigned ids;            /* the shape of the records' ids (url.h): a record with another is skipped */
	void (*each)(struct pull_pass *pp, const struct jv *item);   /* sees every listed item (NULL: none) */
	long long passed;
};
/* conn_list's fn for a pull (ud: a struct pull_pass): the platform's own records go to cb. */
bool kit_pull_item(void *ud, const struct jv *item);

/* ---- sub-resources: nested groups written by requests of their own ---- */

struct subres {
	const char *name;        /* the payload's group: "position" */
	const char *id_key;      /* its id in op->extra: "position_id" */
	const char *what;        /* "the employee's position" */
	const char *create;      /* POST path: "/employees/{id}/positions" */
	const char *item;        /* one of them: "/employees/{id}/positions/{sub}" */
	unsigned ids;            /* the shape of their ids (url.h enum id_shape; 0: ID_TOKEN) */
	const char *list;        /* GET path listing them, to look after a lost answer */
	const char *items;       /* where that answer lists them ("data", "data.asset_assignments|asset_assignments") */
	bool (*same)(const struct jv *item, const struct jv *want);  /* the listed item is the one written */
	struct jv *(*body)(struct op *op, struct jv *group);         /* NULL: the group as it is */
};
/* POST the group; a lost answer looks again (sub_find) after a backoff; the new id into extra. Then done. */
void sub_post(struct op *op, const struct subres *s);
/* PUT body (owned) to the existing sub_id; a 404 posts it again. Then done. */
void sub_put(struct op *op, const struct subres *s, const char *sub_id, struct jv *body);
/* List them: the one written before is updated, else posted. */
void sub_find(struct op *op, const struct subres *s);

/* ---- pagination ---- */

enum paging {
	PAGE_NUMBER,     /* ?page=1,2,... */
	PAGE_OFFSET,     /* ?offset=0,size,2*size,... (records) */
	PAGE_AS_OFFSET,  /* ?offset=1,2,... (a page number in an offset parameter) */
	PAGE_CURSOR,     /* ?after=<the last answer's cursor> */
	PAGE_NEXT_LINK,  /* the answer links the next page (JSON:API links.next) */
	PAGE_ONE,        /* a single answer */
};
struct pager {
	enum paging style;
	const char *param;       /* "page", "offset", "after", "page[number]" */
	const char *size_param;  /* "limit", "page[size]"; NULL: the platform's size */
	long size;
	int first;               /* the first page's number (PAGE_NUMBER, PAGE_AS_OFFSET) */
	/* dotted paths in an answer, alternatives separated by '|' */
	const char *items;       /* "data" */
	const char *pages;       /* the page count, if said */
	const char *total;       /* the record count, if said: a listing that gives fewer is incomplete */
	const char *next;        /* PAGE_CURSOR: the cursor; PAGE_NEXT_LINK: the next page's URL */
	/* A listed item as conn_list hands it on, given its whole page (owned result; JSON:API:
	 * jsonapi_listed joins it to the page's included[]). NULL: the item as listed. */
	struct jv *(*item)(const struct jv *item, const struct jv *page);
};

/* The path of the next page of path (which may hold a query already). Caller frees. */
char *page_path(const struct pager *pg, const struct page_state *ps, const char *path);
/* One page's answer: *items (borrowed), and *more when another page follows. false + *err
 * when it is not a listing, when it repeats the last page, or when it links elsewhere. */
bool page_read(const struct pager *pg, struct page_state *ps, const struct jv *answer, const struct jv **items,
	       bool *more, char **err);
void page_state_free(struct page_state *ps);

struct list_stats {
	long long seen, pages;
	long long total;         /* the first page's record count; -1: not said */
};
/* Every item of a listing, page after page (blocking). fn returns false to stop (an error). */
bool conn_list(struct connector *c, const struct pager *pg, const char *path,
	       bool (*fn)(void *ud, const struct jv *item), void *ud, struct list_stats *st, char **err);
/*
 * Several listings read side by side (blocking until all are), each page after page as
 * conn_list reads one: the caller fills c, pg, path (borrowed), fn and ud; each ends with ok,
 * and err (the caller frees) when not. true when all are ok.
 */
struct list_read {
	struct connector *c;
	const struct pager *pg;
	const char *path;
	bool (*fn)(void *ud, const struct jv *item);
	void *ud;
	bool ok;
	char *err;
	struct list_stats st;
	/* internal */
	struct page_state ps;
	struct conn_get get;
};
bool conn_lists(struct list_read *reads, size_t n);
/* Every item into a JSON array (lookup lists). NULL + *err on failure. */
struct jv *conn_list_all(struct connector *c, const struct pager *pg, const char *path, char **err);
/*
 * Whether reading a whole listing is cheaper than one lookup per new record: 1 yes (its
 * page count is under `pending`), 0 no (or the count is not said), -1 error. One request.
 */
int conn_worth_indexing(struct connector *c, const struct pager *pg, const char *path, long pending,
			long long *pages, char **err);

/* A search through the pages of a listing, within an op. */
struct search {
	bool (*match)(struct op *op, const struct jv *item);
	void (*found)(struct op *op, const struct jv *item);     /* item borrowed for the call */
	void (*absent)(struct op *op);
	int max_pages;                                            /* 0: 50 */
};
/* Run s over the listing at url (owned, built with url_expand), with the entity's pager. */
void op_search(struct op *op, const struct search *s, char *url);

/* ---- reconcile: every record of an entity, compared with what hrsync sent (daemon/reconcile.c) ---- */

/*
 * An entity declares how its records are listed, and how a listed record reads back as the
 * fields of a mapped payload, so that reconcile can compare them field by field.
 */
struct conn_listing {
	const char *path;                /* the whole listing, every state included: "/employees?status=all" */
	/*
	 * The natural keys, best first, {NULL} ends: a payload field and the listed record's field
	 * that carries the same value (the payload's name when `listed` is NULL). An unlinked listed
	 * record matches the ERP key whose payload has the same value (its first key that has one).
	 */
	struct listing_key {
		const char *field, *listed;
		bool fold;               /* compared without case (e-mails) */
	} keys[3];
	/*
	 * The value a listed record holds for a payload field (dotted: "position.department_id"),
	 * owned by the caller; NULL when the platform does not return that field (write-only).
	 * NULL hook: kit_listed_field.
	 */
	struct jv *(*field)(const struct jv *item, const char *path);
	const char *const *write_only;   /* payload fields the listing never shows, NULL-terminated (may be NULL) */
	/* Payload fields a termination changes on the platform (a role, besides the mapping's own
	 * terminate fields): not compared on a record that left. NULL-terminated (may be NULL). */
	const char *const *terminated;
	/* A listed record with no value in this field is the platform's own, not the ERP's (users
	 * HR invited by hand): neither an orphan nor a duplicate. NULL: every record is the ERP's. */
	const char *scope;
	/*
	 * The records carry hrsync's marker in the entity's `marker` field (no natural key): a
	 * marker names the record's ERP key (orphans and duplicates are found by it), a record
	 * without one is the platform's own (asked for there: none of reconcile's business), and
	 * the marker is not part of the text compared.
	 */
	bool marked;
};
/* The default reading: each part of the path by kit_field (top, "attributes", label/value wrappers). Caller frees. */
struct jv *kit_listed_field(const struct jv *item, const char *path);
/* Whether a value sent and a value listed are the same: numbers and their text alike, a date and
 * a datetime on that day alike (platforms answer "2024-01-31T00:00:00+01:00" for "2024-01-31"). */
bool kit_listed_same(const struct jv *sent, const struct jv *listed);

#endif
