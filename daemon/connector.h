/*
 * connector — the one interface every platform module fills (one file in connectors/),
 * and the plumbing of a request: authentication, sending on behalf of a sync operation,
 * reading the answer, finishing the operation. The flows built on it (find before a
 * create, markers, sub-resources, pagination) are in kit.h; docs/connectors.md walks
 * through writing a connector.
 *
 * The engine never names a platform. It asks a connector to create, update, terminate
 * or restore one record (a struct op); the kit drives the op through the entity's table
 * (struct conn_entity): each request is sent with op_send() and names a struct step, the
 * functions that continue when the answer is in. An op ends with op_finish(), which
 * hands it back to the engine. A connector never writes state: it reports ids
 * (op->platform_id, op->extra) and the engine commits them.
 *
 * One-way boundaries: blocking reads (conn_get, conn_list) happen in prepare, in lookup
 * lists, find_by_key and pull, never inside an answer's callback (http_run aborts when it
 * is re-entered). Tokens are fetched without blocking and attached when a request goes
 * out (not when it is queued): a request waits for its token.
 */
#ifndef HRSYNC_CONNECTOR_H
#define HRSYNC_CONNECTOR_H

#include <stdbool.h>

#include "diag.h"
#include "http.h"
#include "json.h"
#include "secret.h"
#include "strmap.h"
#include "url.h"
#include "yaml.h"

struct connector;
struct op;
struct pager;
struct subres;
struct batch;
struct batch_queue;
struct conn_listing;
struct lookup_list;

/* What "terminate" means for an entity on its platform. */
enum term_kind {
	TERM_NONE,     /* the platform has no such thing: terminate rules are refused */
	TERM_KEEP,     /* a state the platform keeps (an employee who left) */
	TERM_DELETE,   /* a deletion (a cancelled absence) */
};

enum op_action { ACT_CREATE, ACT_UPDATE, ACT_TERMINATE, ACT_RESTORE };
enum op_result {
	OPR_OK,
	OPR_REFUSED,    /* the platform said no (4xx): sent again only when the payload changes */
	OPR_TRANSIENT,  /* try again next run */
	OPR_STOPPED,    /* the connector stopped (breaker, credentials) */
	OPR_DEFERRED,   /* waits for another record (a reference the platform does not know yet): next run */
};

/* NULL-terminated lists of names in entity tables: NAMES("first_name", "last_name"). */
#define NAMES(...) ((const char *const[]){__VA_ARGS__, NULL})

/* A payload field that holds the id of an item of a reference list (for check --online). */
struct id_field {
	const char *path;        /* "leave_type_id", "position.department_id", "terminate.termination_type_id" */
	const char *resource;    /* "leave_types" */
};

/*
 * What to do with the answer to one request of an op. Only ok is usual; the kit's
 * defaults cover the rest: a 404 or another 4xx refuses the record with the platform's
 * message, a transient failure (429s, 5xx, timeouts spent) finishes it for the next run.
 */
struct step {
	const char *doing;                 /* "updating the %s" (%s: the entity's `what`), for messages */
	void (*ok)(struct op *op);         /* 2xx: op->answer holds the parsed body (NULL: none). NULL: done */
	void (*gone)(struct op *op);       /* 404: kit_recreate (an update), kit_done (a delete); NULL: refused */
	void (*refused)(struct op *op);    /* another 4xx (op->call.status); NULL: refused with the message */
	/*
	 * A request that may have acted (POST) whose answer was lost (5xx, timeout, reset,
	 * an answer that is not JSON): run after a backoff to look for what it may have
	 * made before anything is sent again. NULL: finished as transient.
	 */
	void (*lost)(struct op *op);
	bool creates;                      /* the answer's id (entity's created_id) into op->platform_id, main_done */
	bool body;                         /* ok reads the answer: an empty one is a transient failure */
	bool sub;                          /* a sub-resource's request: %s in doing is its `what` */
};

/*
 * One entity a connector offers (a row of its entity table). The kit's defaults do what
 * most REST platforms want; a hook replaces one step of it:
 *   create     find (NULL: none) -> kit_found(id): adopt, or kit_absent(): POST `path`
 *   update     PUT (or update_method) `item` with the main fields (skipped when they did not
 *              change), 404 -> created again
 *   terminate  TERM_DELETE: DELETE `item`, 404 is done; TERM_KEEP: the terminate hook
 *   restore    the update
 *   then       after the main record: sub-resources (NULL: done)
 */
struct conn_entity {
	const char *name;
	enum term_kind term;
	const char *what;                  /* "employee", "leave request": in messages and logs */
	const char *path;                  /* the collection: creates go here */
	const char *item;                  /* one record: "/employees/{id}" */
	/* The shape of its ids (url.h enum id_shape, or-ed; 0: ID_TOKEN). An answer carrying an id
	 * of another shape refuses the record: the id is never stored nor put in a path. */
	unsigned ids;
	const char *update_method;         /* NULL: PUT */
	const char *marker;                /* no natural key: the free-text field carrying "[hrsync:KEY#FP]" */
	const struct pager *pager;         /* how its lists page (NULL: the type's) */
	const char *const *nested;         /* nested groups sent inside the record's own body */
	const struct subres *const *subres;/* nested groups sent by requests of their own (NULL-terminated) */
	const char *const *required;       /* fields the platform requires on create */
	const struct id_field *id_fields;  /* {NULL} ends; may be NULL */
	/*
	 * The fields the platform knows, for "did you mean" (NULL-terminated): main fields,
	 * "sub.field" for nested groups, "terminate.field" for terminate fields. NULL: not
	 * checked. custom_fields: other names are the platform's custom fields, so only a
	 * near miss is reported.
	 */
	const char *const *fields;
	bool custom_fields;

	/* Once per mapping before its first op (pending_creates 0), and again before its first
	 * create with the number of records that have no link yet: read what every op needs,
	 * and index the platform's records when that is cheaper than one lookup per create. */
	bool (*prepare)(struct connector *c, const struct conn_entity *e, long pending_creates, char **err);
	void (*find)(struct op *op);
	void (*create)(struct op *op);
	void (*adopt)(struct op *op);      /* bring the record find found up to date (NULL: the update request) */
	void (*update)(struct op *op);
	void (*terminate)(struct op *op);
	void (*restore)(struct op *op);
	void (*then)(struct op *op);
	/* The wire body around the main fields (owned), e.g. {"employee": fields}; create: the
	 * request creates. NULL + *why refuses the record. NULL hook: the fields as they are. */
	struct jv *(*body)(struct op *op, struct jv *fields, bool create, char **why);
	char *(*created_id)(const struct jv *answer);   /* NULL: data.id, else id */
	const char *(*item_of)(const struct op *op);    /* `item` when it depends on the record */
	/* Creates sent many to a request (batch.h); NULL: one request per create. */
	const struct batch *batch;
	/* How `hrsync reconcile` reads every record of the entity (kit.h, struct conn_listing);
	 * NULL: it cannot be listed yet, and reconcile says so. */
	const struct conn_listing *listing;
};

enum opt_kind { OPT_SECRET, OPT_STRING, OPT_UUID };

struct conn_option {
	const char *name;
	enum opt_kind kind;         /* OPT_UUID: a string that must be a UUID (check says so) */
	bool required;
	const char *help;
	const char *const *choices; /* OPT_STRING: the values it takes (NULL: any) */
};

/*
 * How requests authenticate. A static key: `header` with the key option's value for %s.
 * OAuth 2.0 client credentials (client_id set): a token from token_path (under base_url)
 * or from the URL in option token_url, reused until shortly before it expires, renewed
 * once when the platform answers 401; `header` takes the token.
 */
struct conn_auth {
	const char *header;                /* "X-API-KEY: %s", "Authorization: Bearer %s" */
	const char *key;                   /* the option holding a static key */
	const char *client_id, *client_secret;   /* options, for client credentials */
	const char *token_path;            /* "/v2/auth/token" */
	const char *token_url;             /* an option naming the token URL, when configurable */
	const char *token_default;         /* the token URL when that option is not set (NULL: token_path) */
};

struct connector_type {
	const char *name;
	const char *title;                       /* the platform's name in messages: "PeopleForce" */
	const struct conn_option *options;       /* type-specific config keys, {NULL} ends */
	const struct conn_entity *entities;      /* {NULL} ends */
	const char *const *resources;            /* lookup resources, NULL ends */
	double default_rate;                     /* requests per second when rate_limit is not set */
	bool native_refs;                        /* the platform takes erp:/ssn: references as they are */
	struct conn_auth auth;
	const char *media_type;                  /* Accept and JSON bodies; NULL: application/json */
	const struct pager *pager;               /* how its lists page */
	size_t priv_size;                        /* c->priv: zeroed, freed after destroy */
	bool (*init)(struct connector *c, char **err);
	void (*destroy)(struct connector *c);
	void (*headers)(struct connector *c, struct curl_slist **h);   /* more headers on every request */
	/* The message of an error body in the platform's envelope; NULL: the kit's reading. Caller frees. */
	char *(*message)(const struct jv *body);
	/*
	 * A 4xx answer that stops the connector for the run, said in the platform's words: the
	 * reason for a status after which no request can succeed (an API version refused; what
	 * a 401 or a 403 means on this platform), NULL for any other answer (then the kit's: 401
	 * and 403 stop as "credentials refused"). body: the parsed answer, may be NULL. The
	 * run ends with exit 3. Caller frees.
	 */
	char *(*stops)(const struct connector *c, long status, const struct jv *body);
	/*
	 * How a reference list (departments, leave_types, ...) is read: l->path (owned) and
	 * what else of struct lookup_list the platform needs; false with *err for a list it does
	 * not have. NULL: "/resource", the type's pager, items as listed.
	 */
	bool (*list)(struct connector *c, struct lookup_list *l, char **err);
	/* The platform id of an entity's record found by its ERP key, blocking; NULL + *err NULL when none. */
	char *(*find_by_key)(struct connector *c, const struct conn_entity *e, const char *erp_key, char **err);
	/*
	 * The pull direction (pull mappings), blocking: every record of `entity` the platform
	 * holds that changed since `cursor` (NULL: all of them; otherwise the value this
	 * function returned last time: the connector applies its own small look-back,
	 * duplicates are fine). Each record goes to cb with its platform id, exactly as the
	 * platform returned it (borrowed); cb returns false to stop. *next_cursor gets what to
	 * pass next time (caller frees). `filter` is the mapping's filter (e.g. {"status":
	 * "approved"}): the ENGINE applies it, so that a record leaving the filter (approved,
	 * then withdrawn) still updates the row pulled before; a connector may use it only to
	 * narrow by what never changes for a record. `complete` is set when every record the
	 * platform holds was listed (a full listing, cursor NULL), so the engine may mark what
	 * it did not see as deleted. NULL when the connector pulls nothing.
	 */
	bool (*pull)(struct connector *c, const char *entity, const struct jv *filter, const char *cursor,
		     bool (*cb)(void *ud, const char *platform_id, const struct jv *record), void *ud, char **next_cursor,
		     bool *complete, char **err);
	const char *const *pull_entities;        /* what pull offers, NULL-terminated */
	/*
	 * For `plan`: the requests one record's action is expected to take (a find, the write,
	 * its sub-resources; a find served by an index counts a fraction). NULL: the kit's
	 * estimate (plan.c). old: the payload the platform accepted last (updates).
	 */
	double (*requests)(const struct conn_entity *e, enum op_action a, const struct jv *payload, const struct jv *old);
};

/* A connector's configuration, as hrsync.yaml gives it. */
struct conn_cfg {
	char *name;
	const struct connector_type *type;
	char *base_url;
	double rate;            /* requests per second; 0: the type's default */
	int max_in_flight;
	long timeout_ms;
	long max_wait_ms;       /* the longest Retry-After honoured; longer stops the connector */
	bool allow_insecure_http;
	struct secret *secrets; /* indexed like type->options */
	char **strings;
	const char *file;
	int line, col;
};

/* A client-credentials token and the requests waiting for it (connector.c). */
struct token {
	struct secret value;
	int64_t renew_ms, got_ms;    /* monotonic: renew from then on; when it came */
	unsigned gen;                /* counts tokens: a 401 to an older one needs no new fetch */
	int refused_in_row;          /* fresh tokens refused before any request was accepted */
	bool fetching, after_401;
	struct http_call call;       /* the token request */
	struct http_call **waiting;
	size_t nwaiting, capwaiting;
};

/* A live connector for one run. */
struct connector {
	const struct conn_cfg *cfg;
	const struct connector_type *type;
	const char *name;
	struct http *http;
	struct pacer pacer;
	struct token token;
	struct batch_queue *batchq;   /* creates waiting to go in a batch (batch.c) */
	void *priv;             /* the connector module's (type->priv_size bytes) */
};

/* A paged listing's position (kit.h: pagination). */
struct page_state {
	long long n;            /* pages read */
	char *next;             /* a cursor or the next page's path */
	struct jv *first;       /* the last page's first item: a page that repeats it is refused */
	long long total, pages; /* what the first page announced (-1: not said) */
	const char *base;       /* the connector's base_url (next links must stay under it) */
};

/* The kit's own per-operation state. */
struct op_kit {
	const struct step *step;        /* where the answer in flight goes */
	void (*timer)(struct op *op);   /* op_retry_later's step */
	bool live;                      /* find on the platform, not in an index (the index may be stale) */
	const struct subres *sub;       /* the sub-resource being written */
	char *gone;                     /* the id kit_replace deleted: found again, it is not there */
	const struct search *search;    /* a paged search in progress */
	bool no_batch;                  /* its create goes alone (the batch request was refused) */
	char *path;                     /* its listing, without the page */
	struct page_state pages;
};

struct op {
	struct connector *conn;
	const struct conn_entity *ent;
	enum op_action action;
	const char *mapping;
	char *key;              /* the ERP key */
	struct jv *payload;     /* create, update, restore: what to send */
	struct jv *old;         /* update: the payload the platform accepted last (may be NULL) */
	struct jv *term;        /* terminate: the terminate fields */
	char *platform_id;      /* in: the linked id; out: the id created or found */
	struct jv *extra;       /* sub-resource ids, in and out (an object) */
	char fp[17];            /* the payload fingerprint's first 16 hex digits, for markers */
	bool then_terminate;    /* engine: after a create, terminate (first seen already gone) */

	enum op_result result;
	long http_status;
	char *message;          /* what went wrong, for failures */
	bool adopted;           /* a create found a record an earlier run had made */
	bool main_done;         /* platform_id is valid even if a later step failed */

	int attempt;            /* lost answers looked for so far (op_retry_later) */
	struct jv *answer;      /* the parsed body of the last 2xx answer */
	struct http_call call;
	void *cdata;            /* the connector's own per-operation state; the engine free()s it */
	struct op_kit kit;

	void (*done)(struct op *op);    /* the engine's */
	void *engine, *engine_ctx;
};

const struct connector_type *connector_type_find(const char *name);
/* All type names, NULL-terminated (config messages, "did you mean"). */
const char *const *connector_type_names(void);
const struct conn_entity *connector_entity(const struct connector_type *t, const char *name);
/* The entity's nested groups, inline and sub-resources: the ith name, NULL past the last. */
const char *connector_entity_group(const struct conn_entity *e, size_t i);
bool connector_entity_nested(const struct conn_entity *e, const char *name);
int connector_option_index(const struct connector_type *t, const char *name);

struct connector *connector_new(const struct conn_cfg *cfg, struct http *http, char **err);
void connector_free(struct connector *c);
const struct secret *conn_secret(const struct connector *c, const char *option);
/*
 * A lookup list as a platform serves it (the type's list hook fills the how), and what
 * reading it gave (connector_lists).
 */
struct lookup_list {
	struct connector *c;
	const char *resource;
	/* how */
	char *path;                      /* the first page, with its query (owned) */
	const struct pager *pager;       /* NULL: the type's */
	/* An item as the lookup sees it (a new value; NULL: left out). NULL: the item itself. */
	struct jv *(*item)(const struct lookup_list *l, const struct jv *listed);
	const char *arg;                 /* the item hook's */
	/* Only the first item of each value of this field (a list read from records that share them). */
	const char *once;
	/* Once the whole list is in: the connector's own use of it. */
	void (*loaded)(struct connector *c, const struct jv *items);
	/* what reading it gave */
	struct jv *items;                /* NULL on failure (the caller frees) */
	char *err;                       /* (the caller frees) */
	struct strmap seen;              /* (internal: once) */
};
/* Lookup lists read side by side (blocking until all are in); each with items or err. */
void connector_lists(struct lookup_list *ls, size_t n);
/* Every item of one lookup list (blocking): the type's list, or "/resource" read whole. */
struct jv *connector_list(struct connector *c, const char *resource, char **err);
/* Run op (the engine's entry point): through its entity's table, from the start. An op run
 * again (op->kit.live set) looks for its record on the platform, not in an index. */
void connector_start(struct op *op);
/* Free what the connector and the kit keep for op (the op itself stays the engine's). */
void connector_op_release(struct op *op);

/* ---- for connector modules: requests of an op ---- */

/*
 * Send one request for op; when the platform answers, st decides what runs. path is a
 * template (url.h) whose {id} is op->platform_id; body (owned, may be NULL) goes as JSON
 * in the connector's media type.
 */
void op_send(struct op *op, const struct step *st, const char *method, const char *path, struct jv *body);
/* A GET of path (template, as op_send) with query key/value pairs (QUERY(...), may be NULL). */
void op_get(struct op *op, const struct step *st, const char *path, const char *const *query);
/* The same with a URL path built by the caller (owned: url_expand). NULL (a placeholder had no
 * value) finishes the op: nothing is sent to a path that names another resource. */
void op_send_url(struct op *op, const struct step *st, const char *method, char *url, struct jv *body);
/* An x-www-form-urlencoded body (owned, already encoded: url.h form_add). */
void op_send_form(struct op *op, const struct step *st, const char *method, const char *path, char *form);
void op_finish(struct op *op, enum op_result r, const char *fmt, ...) PRINTF_LIKE(3, 4);
/* Finish from a non-2xx answer: a 4xx refuses the record with the platform's message, doing says what failed. */
void op_fail_answer(struct op *op, const char *doing);
/*
 * An id the platform answered (created, listed, found): true when it has the shape the
 * connector declares (url.h id_valid); otherwise op is refused ("doing: the platform answered
 * the id '../x', which is not a NAME what id (shape)") and the id goes nowhere.
 */
bool op_id_ok(struct op *op, unsigned shapes, const char *what, const char *doing, const char *id);
/* Run step again after a backoff delay (op->attempt counts). false when attempts are spent. */
bool op_retry_later(struct op *op, void (*step)(struct op *op), int max_attempts);

/* Send a call built by the caller with the connector's credentials (batch.c); done() gets the answer. */
void conn_send_call(struct connector *c, struct http_call *call);
/* A 401 to a client-credentials token: the call goes again with a new one (true); false otherwise. */
bool conn_resend_on_401(struct connector *c, struct http_call *call);

/* ---- for connector modules: blocking reads (prepare, lookups, find_by_key, pull) ---- */

/* A GET returning parsed JSON (NULL with *err on failure); path as built by url_expand. */
struct jv *conn_get(struct connector *c, const char *path, char **err);
/*
 * The same GET sent without waiting, so that several go side by side (listings read at
 * once: conn_lists): conn_get_send sends it, conn_get_wait turns the loop until none of
 * gets is busy (a stop request ends the busy ones as stopped). Its tries are conn_get's (a
 * 2xx that is not JSON goes again, a 401 renews a token); then done(g), with g->answer
 * (the receiver takes it) or g->err (likewise), and done may send g again.
 */
struct conn_get {
	struct connector *c;
	void (*done)(struct conn_get *g);
	void *arg;
	bool busy;               /* sent, done not called yet */
	struct jv *answer;
	char *err;
	/* internal */
	struct http_call call;
	char *path;
	int attempt;
};
void conn_get_send(struct connector *c, struct conn_get *g, const char *path);
void conn_get_wait(struct conn_get *const *gets, size_t n);
/* What a conn_get holds (its last answer and error, if not taken), freed. */
void conn_get_free(struct conn_get *g);
/*
 * find_by_key through a filtered list: the platform id of the one record that GET path
 * (consumed) lists under "data". With field, the first item whose field equals key (a
 * platform that ignores a filter lists more); without, the list must hold exactly one item.
 * An id not of the entity's shape is not used (*err says so). NULL, *err NULL: none.
 */
char *conn_find_one(struct connector *c, const struct conn_entity *e, char *path, const char *field,
		    const char *key, char **err);
/* The platform's error message from an error body: t's envelope (t may be NULL), then the usual
 * shapes; a short excerpt of a body that is not JSON. One line. Caller frees. */
char *platform_message(const struct connector_type *t, const char *body, size_t len);

#endif
