/*
 * source — reading the ERP mirror. One connection, one read-only REPEATABLE READ
 * transaction for the whole run (every mapping sees the same snapshot), rows streamed
 * through a server-side cursor in batches, so memory stays flat whatever the size.
 *
 * Each row also carries what the state knew of that record when the run began (its
 * link and its last failure), joined in the same query: a no-change night costs one
 * pass over the mirror and no per-record round trip. The join is safe because a
 * mapping's own state is written only by this run, after the row has been read.
 * This module owns the SQL on the mirror; the state's side of the join (its tables'
 * and columns' names) comes from state.c, whose state_join_sql() and neighbours are
 * the contract between the two. It never writes.
 *
 * Table and column names from mapping files are quoted as identifiers; `where`,
 * `terminate.when` and `query` are SQL by design and run in the read-only transaction, on
 * the source role's session (database.source_conninfo, else conninfo), each statement bounded
 * by database.statement_timeout and cancelled on the server when the run is asked to stop.
 */
#ifndef HRSYNC_SOURCE_H
#define HRSYNC_SOURCE_H

#include <libpq-fe.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "db.h"
#include "mapping.h"

struct source {
	PGconn *pg;
	const struct config *cfg;
	char *state_q;          /* the quoted state schema, for state.c's fragments */
	volatile sig_atomic_t *stop; /* set (by a signal handler) to cancel the query running; may be NULL */
	bool cancelled;         /* a query was cancelled for stop */
	bool opening;           /* the setup and the key probe sent, their answer not read (source_snapshot) */
	bool snapping;          /* the snapshot and the read marks sent, their answer not read (source_ready) */
	bool shared;            /* on the run's session, lent by the state (source_open_shared) */
	bool *key_unique;       /* per cfg->maps[i]: its table has a unique index on the key alone */
	/* Per cfg->maps[i]: its read marks asked for (source_open_send); its stored marks and its
	 * records failing or waiting, as the snapshot shows them, until its cursor takes them. */
	bool *marks_asked;
	PGresult **marks, **failing;
	char *marks_err;        /* why the marks could not be read (the source role may not read them) */
};

/* What a row says beyond the mapping's columns. Pointers live until the next cursor_next(). */
struct src_extra {
	bool terminate;         /* terminate.when holds */
	long dup;               /* rows in the source with this key */
	const char *link_id;    /* platform id, NULL when not linked */
	const char *link_status;
	const char *link_fp;    /* hex */
	const char *link_extra; /* JSON */
	const char *fail_kind;
	const char *fail_fp;
	bool fail_retry;
	const char *src_hash;   /* hash of the source values and the generation (NULL: not hashable) */
	bool same;              /* in step as stored (hash equal, active, in scope, no failure): other columns not sent */
};

/* Narrowing a read: one key (preview --key), a row limit, and whether the state schema exists. */
struct src_filter {
	const char *key;
	long limit;             /* 0: all */
	bool no_state;          /* the state schema does not exist yet: nothing is linked */
	/*
	 * The generation of everything but the row that the payload depends on (mapping file,
	 * lookup lists, time zone, version): with it, the query hashes each row's source
	 * values and the ids its references resolve to, and flags the rows whose hash is the
	 * one stored with their link. NULL: no hashing.
	 */
	const char *generation;
	bool key_unique;        /* the key column has a unique index: no duplicate keys to look for */
	/*
	 * Read marks (below): use the stored ones and record this read's. Only for a hashed read
	 * of a table whose key is unique, of every row (no key, no limit), in a run (not a plan).
	 * skipped (required with marks): the engine's count of the mapping's rows skipped so far
	 * (read when a mark is recorded).
	 */
	bool marks;
	const long *skipped;
	/* (internal) the rows after this key only, and the read without the state's columns */
	const char *after;
	bool probe;
};

/*
 * Read marks. A run in which every record of a mapping ended in step, or failing or
 * deferred with its failure recorded (state_marks_put, by the engine), leaves marks: after
 * every SOURCE_MARK_ROWS rows in key order, and at the end, the number of rows, the last key,
 * and a digest of the rows' hashes so far (each hash seeded by the generation), with the rows
 * skipped so far. The next night reads the mirror alone first, no join with the links (a
 * probe): a batch whose digest is its mark's holds the same rows as when each was in step or
 * failing, and the links and the set of failing records have not changed since (state.c's
 * triggers forget a mapping's marks when a link is written or a failure recorded for another
 * record or cleared): its rows are in step, but those failing or waiting, which the engine
 * tries again with their link and failure read at the start (at most SOURCE_MARK_MAX_FAILING
 * of them, else no probe). At the first batch that differs, the read goes on from the last
 * mark's key with the links joined, as without marks, and records the marks of the rest. A
 * night with no change is one read of the mirror; a night with changes reads the unchanged
 * stretch before the first one twice at most.
 */
#define SOURCE_MARK_ROWS 500
#define SOURCE_MARK_MAX_FAILING 20000

struct cursor {
	struct source *src;
	const struct mapping *m;
	PGresult *res;
	int row, nrows;
	bool done;
	bool pending;           /* the next FETCH is sent, its answer not read */
	bool last_batch;        /* res is the last batch (shorter than a FETCH asks) */
	PGresult *next;         /* the next batch, read early (the connection was needed) */
	long long rows;
	const char **vals;
	int *lens;
	unsigned *oids;
	char *name;
	/* A hashed read (src_filter.generation): per row of the batch, its hash, whether it is in
	 * step, and its row in details (the links of the rows that are not), or -1. */
	bool hashed;
	uint64_t seed;
	char (*hashes)[17];
	bool *same;
	int *detail;
	PGresult *details;
	/* Read marks (src_filter.marks). */
	const struct src_filter *flt; /* the caller's, for a read that goes on after a probe */
	bool recording;         /* marks of this read are recorded (complete once it ends) */
	bool probing;           /* reading the mirror alone: the batch in hand is one its mark trusted
				 * (detail[]: its rows of failing) */
	bool marks_changed;     /* the recorded marks differ from the stored ones */
	bool complete;          /* read to its end, every mark recorded */
	PGresult *marks;        /* the stored marks (MK_* of state.h) */
	PGresult *failing;      /* the records failing or waiting, with their links (FG_*), by key */
	long long retried;      /* rows of trusted batches that were failing or waiting */
	uint64_t digest;
	long long nread;        /* rows of the read before this batch, prefix included */
	int seq;                /* full batches before this one */
	long long settled_skipped; /* of the rows the probe found in step: those skipped last time */
	long skip0;             /* *flt->skipped when the rows counted from settled_skipped on began */
	struct sb newmarks;     /* the JSON array of this read's marks */
	bool mark_open;         /* the batch in hand has a mark to record once its rows are processed */
};

/*
 * Make the source connection free for another query (a count, in a savepoint): the FETCH
 * sent ahead is read now and kept as the next batch. Queries between batches need it.
 */
void cursor_quiet(struct cursor *c);

/*
 * Open the snapshot on the source role's session (db_connect_source: statement_timeout). A
 * query on the mirror waits on its socket, so that *s->stop, once the caller has set that
 * pointer and a signal handler the flag, cancels it on the server: the read then ends with an
 * error saying so. started: the session begun for it (db_connect_begin, source), ended here
 * whatever happens; NULL: connect now.
 *
 * In three steps, so that the server works while the caller does: source_open_send makes the
 * session and sends its setup and which mappings' tables have a unique key
 * (source_key_unique), without waiting for the answer; source_snapshot, once the caller holds
 * its run lock, reads that answer and sends the snapshot with the stored read marks of the
 * mappings marks[i] names (per cfg->maps[i]; NULL: none); source_ready reads that (false with
 * *err if the snapshot could not be taken; marks that could not be read are only not used).
 * Every other function below needs all three. A read with src_filter.marks uses its
 * mapping's marks only if they were asked for. source_open does the three, without marks.
 */
bool source_open_send(struct source *s, const struct config *cfg, struct db_start *started, char **err);
bool source_snapshot(struct source *s, const bool *marks, char **err);
bool source_ready(struct source *s, char **err);
bool source_open(struct source *s, const struct config *cfg, struct db_start *started, char **err);
/*
 * The source on a session it does not own (the run's, lent by the state: state_lend), when
 * the same role reads the mirror (no source_conninfo): no second backend to start. Nothing is
 * sent until source_snapshot, which sends the setup and the key probe with the snapshot, in
 * its transaction (statement_timeout, the planner's settings and the session's name
 * "hrsync source" are the transaction's). source_close then ends that transaction and gives
 * the session back (its return value; NULL for a session of its own, which it ends).
 */
void source_open_shared(struct source *s, const struct config *cfg, PGconn *pg);
PGconn *source_close(struct source *s);
bool cursor_open(struct source *s, const struct mapping *m, const struct src_filter *f, struct cursor *c,
		 char **err);
/* 1: a row (r and x filled); 0: the end; -1: error (*err). */
int cursor_next(struct cursor *c, struct row *r, struct src_extra *x, char **err);
void cursor_close(struct cursor *c);
/*
 * After a read with marks, before cursor_close(): the rows the probe found in step that were
 * skipped when they settled (the engine counts them as skipped, not unchanged), and the
 * marks to store (state_marks_put) if the read went to its end and they changed (NULL
 * otherwise; the caller frees).
 */
long long cursor_settled_skipped(const struct cursor *c);
char *cursor_take_marks(struct cursor *c);
/*
 * Records the platform holds (active links of m, as of the snapshot) whose key is no
 * longer in m's source: for `on_missing: terminate`. Each row: erp_key, platform_id,
 * extra (JSON). Caller PQclear()s; NULL with *err on failure.
 */
PGresult *source_missing(struct source *s, const struct mapping *m, char **err);
/* Does the source's key column carry a unique index (a table source only; read at the open)? */
bool source_key_unique(struct source *s, const struct mapping *m);
/* The SQL a mapping reads with (for messages and tests). Caller frees; NULL with *err. */
char *source_sql(struct source *s, const struct mapping *m, const struct src_filter *f, char **err);

#endif
