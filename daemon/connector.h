/*
 * connector — the one interface every platform module fills (one file in connectors/), and the
 * plumbing they share: sending a request on behalf of a sync operation, reading the
 * answer, finishing the operation, fetching paginated lists.
 *
 * The engine never names a platform. It asks a connector to create, update, terminate
 * or restore one record (a struct op); the connector runs the requests that takes as a
 * small state machine: each step sends one request with op_send() and names the
 * function that continues when the answer is in. An op ends with op_finish(), which
 * hands it back to the engine. A connector must never write state: it reports ids
 * (op->platform_id, op->extra) and the engine commits them.
 */
#ifndef HRSYNC_CONNECTOR_H
#define HRSYNC_CONNECTOR_H

#include <stdbool.h>

#include "diag.h"
#include "http.h"
#include "json.h"
#include "secret.h"
#include "yaml.h"

struct connector;
struct op;

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
};

/* A payload field that holds the id of an item of a reference list (for check --online). */
struct id_field {
	const char *path;        /* "leave_type_id", "position.department_id", "terminate.termination_type_id" */
	const char *resource;    /* "leave_types" */
};

struct conn_entity {
	const char *name;
	enum term_kind term;
	const char *const *nested;     /* sub-resources it takes (NULL-terminated), e.g. "position" */
	const char *const *required;   /* fields the platform requires on create (NULL-terminated) */
	/* Once per run before the first op of a mapping; pending_creates: records with no link. */
	bool (*prepare)(struct connector *c, const struct conn_entity *e, long pending_creates, char **err);
	void (*start)(struct op *op);
	const struct id_field *id_fields;  /* {NULL} ends; may be NULL */
	/*
	 * The fields the platform knows, for "did you mean" (NULL-terminated): main fields,
	 * "sub.field" for sub-resources, "terminate.field" for terminate fields. NULL: not
	 * checked. custom_fields: other names are the platform's custom fields, so only a
	 * near miss is reported.
	 */
	const char *const *fields;
	bool custom_fields;
};

enum opt_kind { OPT_SECRET, OPT_STRING };

struct conn_option {
	const char *name;
	enum opt_kind kind;
	bool required;
	const char *help;
};

struct connector_type {
	const char *name;
	const struct conn_option *options;       /* type-specific config keys, {NULL} ends */
	const struct conn_entity *entities;      /* {NULL} ends */
	const char *const *resources;            /* lookup resources, NULL ends */
	double default_rate;                     /* requests per second when rate_limit is not set */
	bool native_refs;                        /* the platform takes erp:/ssn: references as they are */
	bool (*init)(struct connector *c, char **err);
	void (*destroy)(struct connector *c);
	/* Add authentication headers; may fetch a token (blocking). false: credentials refused. */
	bool (*auth)(struct connector *c, struct curl_slist **headers, char **err);
	/* Every item of a reference list (departments, leave_types, ...), blocking. */
	struct jv *(*list)(struct connector *c, const char *resource, char **err);
	/* The platform id of an entity's record found by its ERP key, blocking; NULL + *err NULL when none. */
	char *(*find_by_key)(struct connector *c, const struct conn_entity *e, const char *erp_key, char **err);
	/*
	 * Called once when the platform answers 401: renew the credentials (a new token)
	 * and return true to have the request sent again; false stops the connector.
	 * NULL: a 401 stops the connector at once.
	 */
	bool (*reauth)(struct connector *c);
	/*
	 * The pull direction (SPEC §5 pull mappings), blocking: every record of `entity`
	 * the platform holds that changed since `cursor` (NULL: all of them; otherwise the
	 * value this function returned last time: the connector applies its own small
	 * look-back, duplicates are fine). Each record goes to cb with its platform id,
	 * exactly as the platform returned it (borrowed); cb returns false to stop. *next_cursor gets what to pass next time
	 * (caller frees). `filter` is the mapping's filter (e.g. {"status": "approved"}):
	 * the ENGINE applies it, so that a record leaving the filter (approved, then
	 * withdrawn) still updates the row pulled before; a connector may use it only to
	 * narrow by what never changes for a record. `complete` is set when every record
	 * the platform holds was listed (a full listing, cursor NULL), so the engine may
	 * mark what it did not see as deleted. NULL when the connector pulls nothing.
	 */
	bool (*pull)(struct connector *c, const char *entity, const struct jv *filter, const char *cursor,
		     bool (*cb)(void *ud, const char *platform_id, const struct jv *record), void *ud, char **next_cursor,
		     bool *complete, char **err);
	const char *const *pull_entities;        /* what pull offers, NULL-terminated */
};

/* A connector's configuration, as hrsync.yaml gives it. */
struct conn_cfg {
	char *name;
	const struct connector_type *type;
	char *base_url;
	double rate;            /* requests per second; 0: the type's default */
	int max_in_flight;
	long timeout_ms;
	bool allow_insecure_http;
	struct secret *secrets; /* indexed like type->options */
	char **strings;
	const char *file;
	int line, col;
};

/* A live connector for one run. */
struct connector {
	const struct conn_cfg *cfg;
	const struct connector_type *type;
	const char *name;
	struct http *http;
	struct pacer pacer;
	void *priv;
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
	bool reauthed;          /* credentials were renewed once for this op */
	const char *content_type; /* of the request body in flight (kept when the call is resent) */
	bool main_done;         /* platform_id is valid even if a later step failed */

	int step, attempt;
	struct jv *answer;      /* the parsed body of the last 2xx answer (op_json takes it) */
	void (*next)(struct op *op);
	void *priv;
	struct http_call call;

	void (*done)(struct op *op);
	void *engine;
	struct op *link;        /* the engine's list */
};

const struct connector_type *connector_type_find(const char *name);
/* All type names, NULL-terminated (for "did you mean"). */
const char *const *connector_type_names(void);
const struct conn_entity *connector_entity(const struct connector_type *t, const char *name);
int connector_option_index(const struct connector_type *t, const char *name);

struct connector *connector_new(const struct conn_cfg *cfg, struct http *http, char **err);
void connector_free(struct connector *c);
const struct secret *conn_secret(const struct connector *c, const char *option);
const char *conn_string(const struct connector *c, const char *option);

/* ---- for connector modules ---- */

/*
 * Send one request for op; body (owned, may be NULL) is sent as JSON. When the platform
 * answers, next(op) runs with op->call holding the answer. Transient failures and a
 * stopped connector finish the op, unless the step set op->on_fail... (see op_retry).
 * path is appended to base_url; query strings must already be encoded.
 */
void op_send(struct op *op, const char *method, const char *path, struct jv *body, void (*next)(struct op *op));
/* An x-www-form-urlencoded body (owned, already encoded); like op_send_raw. */
void op_send_form(struct op *op, const char *method, const char *path, char *form, void (*next)(struct op *op));
/* Like op_send, but a transient failure calls next too (op->call.outcome tells). */
void op_send_raw(struct op *op, const char *method, const char *path, struct jv *body, void (*next)(struct op *op));
void op_finish(struct op *op, enum op_result r, const char *fmt, ...) PRINTF_LIKE(3, 4);
/* Finish from a non-2xx answer: 4xx -> refused with the platform's message (via msg_of). */
void op_fail_answer(struct op *op, const char *doing);
/* The answer's JSON; on malformed JSON finishes the op as transient and returns NULL. Caller frees. */
struct jv *op_json(struct op *op);
bool op_ok(const struct op *op);   /* 2xx */
/*
 * The answer to a create. true: op->platform_id is set (id_of reads it from the parsed
 * answer) and op->main_done. false: the op is already finished (refused, transient) or,
 * when the answer was lost, sent to refind() after a backoff so that what the platform
 * may have created is found before anything is sent again; the caller just returns.
 */
bool op_created(struct op *op, const char *what, void (*refind)(struct op *op), char *(*id_of)(const struct jv *answer));
/*
 * Where a platform has no external id (leave requests, time-offs), hrsync writes
 * "[hrsync:KEY#FINGERPRINT]" in a free-text field and finds its records by it.
 * op_with_marker: text with op's marker appended (caller frees). op_marker_key: the key
 * in a text (caller frees; NULL when none) and the fingerprint into fp.
 */
char *op_with_marker(const struct op *op, const char *text);
char *op_marker_key(const char *text, char fp[17]);
/* Run step again after a backoff delay (op->attempt counts). false when attempts are spent. */
bool op_retry_later(struct op *op, void (*step)(struct op *op), int max_attempts);

/* A blocking GET returning parsed JSON (NULL with *err on failure). */
struct jv *conn_get_json(struct connector *c, const char *path, long *status, char **err);
/* URL-encode s for a query string. Caller frees. */
char *url_encode(const char *s);
/* The platform's error message from an error body (several shapes understood). Caller frees. */
char *platform_message(const char *body, size_t len);

#endif
