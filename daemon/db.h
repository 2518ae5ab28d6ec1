/*
 * db — connecting to PostgreSQL the way every hrsync connection must: the config's
 * conninfo (the state role's) or source_conninfo (the source role's, bounded by
 * statement_timeout), the password from its redacting secret, an application name, ISO
 * dates in the configured time zone. Quoting helpers keep identifiers from mapping files
 * from ever being read as SQL; db_wait waits for a query so that a stop request cancels it.
 */
#ifndef HRSYNC_DB_H
#define HRSYNC_DB_H

#include <libpq-fe.h>
#include <signal.h>
#include <stdbool.h>

#include "config.h"

/*
 * A connection begun now and made later: db_connect_begin sends the startup message without
 * waiting, so that the server starts the session's backend while the caller does other work
 * (a run begins its source session before the state's). db_connect_made waits for it (NULL
 * with *err; one not made within 10 s, say its first host is down, is made again the blocking
 * way, host after host); its session is not set up yet: the caller sends db_setup_sql() first
 * in what it sends next (one round trip, answered while it does other work; caller frees the
 * SQL). db_connect_end makes it and sets it up as db_connect would, in a round trip of its
 * own. db_connect_drop ends one that is no longer wanted. Every begun one is made, ended or
 * dropped.
 */
struct db_start {
	PGconn *pg;
	PostgresPollingStatusType want; /* what PQconnectPoll waits for next */
	bool source;                    /* the source role's session */
	const char *purpose;            /* the application name's, a string that outlives the start */
};
void db_connect_begin(struct db_start *c, const struct config *cfg, bool source, const char *purpose);
PGconn *db_connect_made(struct db_start *c, const struct config *cfg, char **err);
PGconn *db_connect_end(struct db_start *c, const struct config *cfg, char **err);
char *db_setup_sql(PGconn *pg, const struct config *cfg, bool source);
void db_connect_drop(struct db_start *c);
/* Connect as the state role (conninfo); NULL with *err (caller frees) on failure. */
PGconn *db_connect(const struct config *cfg, const char *purpose, char **err);
/*
 * Connect as the source role (source_conninfo, else conninfo), the session where a mapping's
 * where/query/terminate.when run: every statement bounded by database.statement_timeout, and
 * the server told to notice a client that died. NULL with *err on failure.
 */
PGconn *db_connect_source(const struct config *cfg, const char *purpose, char **err);
/*
 * The result of the query sent on pg (PQsendQuery and the like): the first error, else the
 * last result; never NULL (caller PQclear()s). It waits on the socket rather than inside
 * libpq, so that stop (set by a signal handler; NULL: none) is seen while the server works:
 * the query is then cancelled on the server, and *cancelled set (when not NULL).
 */
PGresult *db_wait(PGconn *pg, volatile sig_atomic_t *stop, bool *cancelled);
/*
 * As db_wait, for a string of several statements whose results all matter: each result, in
 * order, to take(ctx, r), which owns it (an error ends the string: it is the last). None
 * came (the connection gone): take() gets one error result made here.
 */
void db_wait_each(PGconn *pg, volatile sig_atomic_t *stop, bool *cancelled, void (*take)(void *ctx, PGresult *r),
		    void *ctx);
/* "schema"."table" from "schema.table" or "table", quoted. Caller frees; NULL when malformed. */
char *db_quote_qualified(PGconn *pg, const char *name);
char *db_quote_ident(PGconn *pg, const char *name);
char *db_quote_literal(PGconn *pg, const char *s);
/* Run a statement that returns no rows; false with *err on failure. */
bool db_exec(PGconn *pg, const char *sql, char **err);
/*
 * Run exactly one statement through the extended protocol, which refuses a string holding
 * several: SQL that embeds a mapping's where/query/terminate.when must go through here,
 * so that "...; COMMIT; DROP TABLE ..." cannot leave the read-only transaction. A stop
 * request cancels it (db_wait). Returns the result (caller PQclear()s), or NULL with *err.
 */
PGresult *db_exec1(PGconn *pg, const char *sql, volatile sig_atomic_t *stop, char **err);
/* The server's message, one line. Caller frees. */
char *db_error(PGconn *pg, const PGresult *res);

#endif
