/*
 * state — hrsync's own tables in the state schema (README, "What hrsync guarantees"): runs and their per-mapping
 * counts, the link between each ERP key and its platform id with the fingerprint of
 * the payload the platform last accepted, failures with reasons and attempts, what the
 * pull direction wrote and its cursors. Created and upgraded by state_migrate(); one run
 * at a time per schema through a session advisory lock (released by PostgreSQL if the
 * process dies).
 *
 * This is the only module with SQL on the state schema: the engine (sync.c), the pull
 * direction (pull.c) and the reports (report.c) call the functions below, and the one
 * query in which the source reads its rows with their links (source.c, on the source
 * connection) takes its state-side fragments from here. No other module names a state
 * table or column.
 *
 * Every write of a run is its own transaction and happens only after the platform
 * confirmed: a run killed at any instant leaves state that is true, if behind. The pull
 * direction groups its inbound row and its `pulled` row in one transaction
 * (state_begin/state_commit). All SQL is parameterised; the schema name is quoted once.
 * One function runs a statement and handles its error: state_exec().
 */
#ifndef HRSYNC_STATE_H
#define HRSYNC_STATE_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>

#include "config.h"
#include "db.h"
#include "json.h"
#include "util.h"

struct state {
	PGconn *pg;       /* NULL while the run's session is lent and none of its own was needed yet */
	/* The run's session while lent to the source's read (state_lend): it holds the run lock;
	 * kept until state_close once the state has had to make a session of its own. */
	PGconn *lent;
	const struct config *cfg;
	char *schema_q;
	char *err;        /* the last error, for messages */
	bool broken;      /* the connection failed: stop writing */
	bool quiet;       /* errors are not logged: the caller prints err (the reports) */
	long link_writes; /* links rows written through this connection (state_vacuum_links) */
	/* links confirmed by the platform, not committed yet (state_link_put_later) */
	struct sb pend;   /* JSON objects, comma-separated */
	long npend;
	long npend_links; /* of them, links (the others failures) */
	int64_t pend_ms;  /* when the first of them was confirmed */
	bool flushing;
	int version;      /* the schema's version as state_lock read it; -1: not read (no schema yet) */
};

struct counts {
	long long rows;
	long created, updated, terminated, unchanged, skipped, failed, deferred;
	long requests, throttled;
	double seconds;
};

struct failure {
	const char *kind;     /* mapping | deferred | refused | transient */
	const char *action;
	const char *field, *rule, *reason;
	long http_status;
	const char *fp_hex;
};

/*
 * The run's session lent to the source's read, which then needs no backend of its own (the
 * same role reads: no source_conninfo). Until it is given back (state_return, once the read's
 * transaction has ended), the state's statements go through a session of its own, made when
 * the first one is sent: a night that only reads makes none. state_pg is the session to send
 * on (made now if need be; NULL when it cannot be: s->broken).
 */
PGconn *state_lend(struct state *s);
void state_return(struct state *s, PGconn *pg);
PGconn *state_pg(struct state *s);

/* The run's connection ("hrsync state"), read-write; its errors are logged. */
bool state_connect(struct state *s, const struct config *cfg, char **err);
/* The same, its session begun by the caller (db_connect_begin, not the source's), made here. */
bool state_connect_begun(struct state *s, const struct config *cfg, struct db_start *started, char **err);
/*
 * A connection for a command beside the runs (status, failures, retry), named "hrsync
 * <purpose>": every transaction read-only when read_only, no lock ever taken (so it works
 * while a run is going on), quiet (the caller prints s->err). false with *err (caller frees).
 */
bool state_connect_report(struct state *s, const struct config *cfg, const char *purpose, bool read_only,
			  char **err);
void state_close(struct state *s);

/*
 * Run one parameterised statement on the state connection (pull.c writes its inbound
 * table through here, in the transaction of its `pulled` rows). Returns the result
 * (caller PQclear()s), or NULL: s->err says why, s->broken is set when the connection is
 * lost, and the error is logged unless s->quiet. Once broken, runs nothing.
 */
PGresult *state_exec(struct state *s, const char *sql, int n, const char *const *params);
/* A transaction around several writes; false (s->err) when it could not begin or commit. */
bool state_begin(struct state *s);
bool state_commit(struct state *s);
void state_rollback(struct state *s);

#define STATE_VERSION 7
/* Creates or upgrades the schema (nothing to do, no statement sent, when state_lock read it at this version). */
bool state_migrate(struct state *s, char **err);
/* 1: the state schema is there at this version; 0: not created yet; -1: error (or newer). */
int state_exists(struct state *s, char **err);
/*
 * 1: locked; 0: another run holds it; -1: error. In the same round trip, the schema's
 * version (s->version), which state_migrate then needs not read again.
 */
int state_lock(struct state *s, char **err);
long long state_run_begin(struct state *s, const char *command, bool dry_run);
bool state_run_end(struct state *s, long long run, int exit_code, const char *message);
bool state_run_mapping(struct state *s, long long run, const char *mapping, const struct counts *c,
		       const char *mapping_hash);

bool state_link_put(struct state *s, const char *mapping, const char *key, const char *platform_id,
		    const char *status, const char *fp_hex, const struct jv *payload, const struct jv *extra,
		    const char *nir_hash_hex, const char *src_hash, long long run);
/* Remember the source hash of records found unchanged (keys and hashes as JSON arrays of text). */
bool state_src_hashes(struct state *s, const char *mapping, const char *keys_json, const char *hashes_json);
bool state_link_status(struct state *s, const char *mapping, const char *key, const char *status, long long run);
/* The last accepted payload of a record (NULL when none). */
struct jv *state_link_payload(struct state *s, const char *mapping, const char *key);
/* platform id and status of an ERP key's link; false when not linked. Caller frees. */
bool state_link_find(struct state *s, const char *mapping, const char *key, char **platform_id, char **status);
bool state_link_by_nir(struct state *s, const char *mapping, const char *nir_hash_hex, char **platform_id);
bool state_link_by_platform_id(struct state *s, const char *mapping, const char *platform_id, char **key);
long long state_active_links(struct state *s, const char *mapping);
/* Rows the mapping's source had in its last completed run; -1 when never run. */
long long state_last_rows(struct state *s, const char *mapping);

bool state_failure_put(struct state *s, const char *mapping, const char *key, const struct failure *f, long long run);
bool state_failure_clear(struct state *s, const char *mapping, const char *key);

/* ---- the pull direction (pull.c): what it wrote, and where its listing resumes ---- */

/*
 * What was last written for a platform record: 1 pulled before (*fp_hex: the fingerprint
 * of what was written, NULL when none, caller frees; *deleted: marked deleted since),
 * 0 never, -1 error (s->err).
 */
int state_pulled_get(struct state *s, const char *mapping, const char *platform_id, char **fp_hex, bool *deleted);
/*
 * Remember that a record was written to the inbound table under target_key_json (its key
 * columns, as a JSON object), with this fingerprint, and is not deleted. Written in the
 * caller's transaction with the inbound row (state_begin .. state_commit).
 */
bool state_pulled_put(struct state *s, const char *mapping, const char *platform_id, const char *target_key_json,
		      const char *fp_hex, long long run);
/* The record is gone from the platform; written in the caller's transaction with the inbound change. */
bool state_pulled_deleted(struct state *s, const char *mapping, const char *platform_id);
/* Columns of state_pulled_live(). */
enum { PULLED_PLATFORM_ID, PULLED_TARGET_KEY };
/* The records of a mapping pulled and not deleted (target key as JSON text). Caller PQclear()s; NULL: s->err. */
PGresult *state_pulled_live(struct state *s, const char *mapping);
/*
 * Where the mapping's listing resumes: *cursor (caller frees; NULL when none) and the
 * seconds since its last full listing (1e12 when never). false on error (s->err).
 */
bool state_pull_cursor_get(struct state *s, const char *mapping, char **cursor, double *since_full);
/* The next cursor; full: this listing was complete (its time is kept). */
bool state_pull_cursor_put(struct state *s, const char *mapping, const char *cursor, bool full);

/* ---- the reports (report.c): status, failures, retry ---- */

/* 1: hrsync's tables are in the state schema (at any version); 0: not created yet; -1: error. */
int state_created(struct state *s);
/* 1: a run holds the run lock (state_lock) now; 0: none; -1: error. Never takes the lock. */
int state_running(struct state *s);

/*
 * Columns of state_runs_latest() and state_run_last_completed(). Times as JSON text
 * (RUN_STARTED, RUN_FINISHED) and for people ('YYYY-MM-DD HH24:MI:SS TZ', *_TEXT);
 * RUN_SECONDS to a tenth, up to now for a run not finished.
 */
enum { RUN_ID, RUN_COMMAND, RUN_STARTED_TEXT, RUN_STARTED, RUN_FINISHED, RUN_SECONDS, RUN_STATUS, RUN_EXIT_CODE,
       RUN_DRY_RUN, RUN_HOST, RUN_PID, RUN_VERSION, RUN_MESSAGE, RUN_FINISHED_TEXT };
/* The n latest runs, newest first. Caller PQclear()s; NULL: s->err. */
PGresult *state_runs_latest(struct state *s, int n);
/* The last run that completed (ok or failures, not a dry run): zero or one row. */
PGresult *state_run_last_completed(struct state *s);
/* When the last completed run finished, in seconds since the epoch; 0 when none or on error. */
double state_last_success_time(struct state *s);

/* Columns of state_run_counts(): the run, the mapping, then its counts from RC_SOURCE_ROWS to RC_SECONDS. */
enum { RC_RUN_ID, RC_MAPPING, RC_SOURCE_ROWS, RC_CREATED, RC_UPDATED, RC_TERMINATED, RC_UNCHANGED, RC_SKIPPED,
       RC_FAILED, RC_DEFERRED, RC_REQUESTS, RC_THROTTLED, RC_SECONDS };
/*
 * The per-mapping counts of the n latest runs: newest run first, its mappings in the
 * order of `order` (the config's names), others after by name. SECONDS to a tenth.
 */
PGresult *state_run_counts(struct state *s, int n, const char *const *order, size_t norder);

/* Columns of state_failures_summary(): one row per mapping, kind, field and rule. */
enum { FS_MAPPING, FS_KIND, FS_FIELD, FS_RULE, FS_COUNT, FS_RETRY_ASKED, FS_SINCE_TEXT, FS_FIRST_SEEN,
       FS_LAST_SEEN, FS_MAX_ATTEMPTS, FS_EXAMPLE_REASON, FS_EXAMPLE_KEY };
/*
 * What waits, grouped: mappings in the order of `order`, then kinds (mapping, refused,
 * transient, deferred), most records first. SINCE_TEXT is 'YYYY-MM-DD HH24:MI'; the
 * example is the latest reason and the first key.
 */
PGresult *state_failures_summary(struct state *s, const char *const *order, size_t norder);

/* Columns of state_failures_list(). */
enum { FL_MAPPING, FL_KEY, FL_KIND, FL_ACTION, FL_FIELD, FL_RULE, FL_REASON, FL_HTTP_STATUS, FL_ATTEMPTS,
       FL_FIRST_SEEN, FL_LAST_SEEN, FL_RETRY, FL_RUN_ID, FL_FIRST_SEEN_TEXT, FL_LAST_SEEN_TEXT };
/* Every failed record of mapping (NULL: of all), mappings in the order of `order`, then by key. */
PGresult *state_failures_list(struct state *s, const char *mapping, const char *const *order, size_t norder);
/* 1: mapping has a failure recorded; 0: none; -1: error. */
int state_failures_of(struct state *s, const char *mapping);

/* Columns of state_failures_retry(). */
enum { FR_MAPPING, FR_KEY, FR_KIND };
/*
 * Ask for the failed records of mapping (NULL: all) whose key is one of keys (none: any)
 * to be tried again on the next run (failures.retry). Returns the records marked.
 */
PGresult *state_failures_retry(struct state *s, const char *mapping, const char *const *keys, size_t nkeys);

/* ---- the no-change fast path: the contract with source.c ---- */

/*
 * source.c reads a mapping's rows and what the state knew of each in ONE query on the
 * source connection: one snapshot, one pass in key order, no round trip per record (the
 * benchmarked fast path). The source owns the query; the state's part of its text comes
 * from here:
 *
 *   SELECT <the row's columns>, ..., <state_join_cols(how)>, <ref columns>
 *   FROM (<the source rows>) AS src <state_join_sql(...)> <state_ref_join_sql(...)>...
 *   ORDER BY <the key>
 *
 * key_text is the row's key as text, e.g. src."id"::text; mapping_lit the mapping's name
 * as a quoted literal; schema_q the quoted state schema. The joins read the links and
 * failures of the mapping as subqueries ordered by key, so the index links_nochange (a
 * hashed read) or the primary keys give them in the source's order without a sort.
 */
enum state_join {
	STATE_JOIN_NONE,      /* no state schema yet: nothing is linked, the state columns are NULL */
	STATE_JOIN_HASHED,    /* status, stored source hash and failure only; details from state_link_details() */
	STATE_JOIN_FULL,      /* everything the engine needs of the link and the failure */
};
/* The state columns of that query, in this order (SJ_N of them). */
enum { SJ_LINK_ID, SJ_LINK_STATUS, SJ_LINK_FP, SJ_LINK_EXTRA, SJ_FAIL_KIND, SJ_FAIL_FP, SJ_FAIL_RETRY, SJ_SRC_HASH,
       SJ_N };
/* The select list of the state columns (a static string). */
const char *state_join_cols(enum state_join how);
/* Append to q the joins that state_join_cols() reads from (nothing for STATE_JOIN_NONE). */
void state_join_sql(struct sb *q, enum state_join how, const char *schema_q, const char *mapping_lit,
		    const char *key_text);
/*
 * A reference followed by the hash: append to joins the link of key_text in the target
 * mapping (alias r<k>, k unique in the query) and to cols ", " and its platform id.
 */
void state_ref_join_sql(struct sb *joins, struct sb *cols, int k, const char *schema_q, const char *target_lit,
			const char *key_text);
/* Columns of state_link_details(). */
enum { LD_KEY, LD_PLATFORM_ID, LD_FP, LD_EXTRA };
/*
 * For a hashed read: the links of the keys (a JSON array of text) that were not in step,
 * read on the caller's connection pg (the source's snapshot), sorted bytewise by key
 * (COLLATE "C"). Caller PQclear()s; NULL with *err (caller frees).
 */
PGresult *state_link_details(PGconn *pg, const char *schema_q, const char *mapping, const char *keys_json,
			     char **err);
/*
 * For `on_missing: terminate`: SQL for the active links of the mapping whose key is not
 * among the keys present_keys_sql returns (one text column), by key. Rows: erp_key,
 * platform_id, extra (JSON). Caller frees.
 */
char *state_links_missing_sql(const char *schema_q, const char *mapping_lit, const char *present_keys_sql);

/*
 * Read marks (source.h), read on the source's connection (its snapshot), the mapping's name
 * given as a quoted literal; callers free the SQL.
 * state_marks_sql: the mapping's marks, columns MK_*, by seq (0, the end of the read, first).
 * state_failing_sql: if it has marks, its records that failed or wait (a night tries them
 * again whatever the marks say), with their links, at most max + 1 rows (more than max: too
 * many to hold), sorted bytewise by key (COLLATE "C"); columns: the key (FG_KEY), then from
 * FG_STATE the state's columns in SJ_* order (no SJ_SRC_HASH).
 */
enum { MK_SEQ, MK_ROWS, MK_LAST_KEY, MK_DIGEST, MK_SKIPPED };
enum { FG_KEY, FG_STATE };
char *state_marks_sql(const char *schema_q, const char *mapping_lit);
char *state_failing_sql(const char *schema_q, const char *mapping_lit, long max);
/*
 * The marks of a read (a JSON array of {seq, rows, last_key, digest, skipped}) replace the
 * mapping's. Only after a run in which every record of the mapping ended in step or with its
 * failure recorded, and after its last write to links or failures (a link written, a failure
 * recorded for another record or cleared forget the mapping's marks).
 */
bool state_marks_put(struct state *s, const char *mapping, const char *marks_json);

/* Hex SHA-256 of a normalised NIR, as kept in links for ssn: references. */
void nir_hash_hex(const char nir[16], char out[65]);

/*
 * Grouped state commits (issue 18). state_link_put_later() keeps the link of a write the
 * platform confirmed, with the clearing of its failure, for one statement that commits
 * up to STATE_GROUP_MAX of them at once: state_flush(), which every other statement on this
 * state runs first (so reads and writes see them, in order), and which the engine calls when
 * the oldest has waited STATE_GROUP_MS. Only for writes that a run killed before the commit
 * finds again: a create its connector looks for by natural key before creating, an update
 * (sent again, the same payload, by the next run). Returns false if the state is broken.
 * state_failure_put_later() does the same for a failure (as state_failure_put): one the run
 * killed before the commit loses is found again by the next run, which tries the record
 * again (nothing was written to the platform for it, or what was is found as above).
 * An entry whose key, id, mapping name or failure text is not UTF-8 (JSON cannot carry it)
 * is written alone at once, after the group, with the same effect.
 * Each flushes the group once full or once its oldest has waited STATE_GROUP_MS;
 * state_flush_due() does the latter alone, for a caller that waits on other things (false
 * only if that flush failed).
 */
#define STATE_GROUP_MAX 64
#define STATE_GROUP_MS 200
bool state_link_put_later(struct state *s, const char *mapping, const char *key, const char *platform_id,
			  const char *fp_hex, const struct jv *payload, const struct jv *extra, const char *nir_hash_hex,
			  const char *src_hash, long long run);
bool state_failure_put_later(struct state *s, const char *mapping, const char *key, const struct failure *f,
			     long long run);
bool state_flush(struct state *s);
bool state_flush_due(struct state *s);

/*
 * After a run that wrote many links (at least STATE_VACUUM_WRITES rows): VACUUM (ANALYZE) of
 * the links table, so that the next run's index-only read of links_nochange finds its pages
 * all-visible instead of visiting the heap for each row (issue 18). Outside any transaction;
 * a failure (not the table's owner, a timeout) is logged as a warning and changes nothing.
 * Returns whether it ran.
 */
#define STATE_VACUUM_WRITES 100
bool state_vacuum_links(struct state *s);

/* A running run's progress as its message (`hrsync status` shows it); replaced at the end. */
bool state_run_progress(struct state *s, long long run, const char *text);

/* ---- reconcile (reconcile.c) ---- */

/* Columns of state_links_of(): every link of a mapping that names a platform record, by key. */
enum { LK_KEY, LK_PLATFORM_ID, LK_STATUS, LK_PAYLOAD };
PGresult *state_links_of(struct state *s, const char *mapping);
/*
 * A record that drifted on the platform: its link keeps what the platform holds now as the
 * payload last accepted, without a fingerprint, so the next run sends the ERP's values
 * (an update whose old side is what the platform shows).
 */
bool state_link_drifted(struct state *s, const char *mapping, const char *key, const char *platform_id,
			const struct jv *seen);
/* A linked record gone from the platform: the link goes, so the next run creates it again. */
bool state_link_gone(struct state *s, const char *mapping, const char *key, const char *platform_id);
/* A platform record adopted for an ERP key: linked, nothing sent (fp_hex: the payload's fingerprint, or NULL). */
bool state_link_adopt(struct state *s, const char *mapping, const char *key, const char *platform_id,
		      const char *fp_hex, const struct jv *payload);

#endif
