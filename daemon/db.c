/*
 * db — see db.h.
 */
#include "db.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "version.h"

char *db_error(PGconn *pg, const PGresult *res)
{
	const char *m = res ? PQresultErrorMessage(res) : NULL;
	if (!m || !*m)
		m = PQerrorMessage(pg);
	char *s = xstrdup(m && *m ? m : "unknown database error");
	/* libpq messages end with a newline and may span lines: keep the first. */
	char *nl = strchr(s, '\n');
	if (nl)
		*nl = '\0';
	return s;
}

/* Server notices ("already exists, skipping") are for debugging, not for the journal. */
static void on_notice(void *arg, const char *message)
{
	(void)arg;
	size_t n = strlen(message);
	while (n && message[n - 1] == '\n')
		n--;
	log_debug("database: %.*s", (int)n, message);
}

/* The connection parameters: the conninfo (expanded), the password from its secret, an
 * application name, connect_timeout. vals[1] is allocated (free it once connected or started). */
static void conn_params(const struct config *cfg, bool source, const char *purpose, const char *keys[6],
			const char *vals[6])
{
	bool own = source && cfg->source_conninfo;
	const struct secret *password = own ? &cfg->source_password : &cfg->db_password;
	int n = 0;
	keys[n] = "dbname";
	vals[n++] = own ? cfg->source_conninfo : cfg->conninfo;
	keys[n] = "application_name";
	vals[n++] = xasprintf("hrsync %s", purpose);
	keys[n] = "connect_timeout";
	vals[n++] = "10";
	if (secret_present(password)) {
		keys[n] = "password";
		vals[n++] = secret_value(password);
	}
	keys[n] = NULL;
	vals[n] = NULL;
}

/* pg when it is connected; else NULL with *err, pg freed. */
static PGconn *made(PGconn *pg, char **err)
{
	if (pg && PQstatus(pg) == CONNECTION_OK) {
		PQsetNoticeProcessor(pg, on_notice, NULL);
		return pg;
	}
	char *m = !pg ? xstrdup("out of memory")
	      : PQstatus(pg) == CONNECTION_BAD ? db_error(pg, NULL)
					       : xstrdup("the server did not answer within 10 s");
	*err = xasprintf("cannot connect to the database: %s", m);
	free(m);
	PQfinish(pg);
	return NULL;
}

char *db_setup_sql(PGconn *pg, const struct config *cfg, bool source)
{
	const char *tz = cfg->timezone ? cfg->timezone : "UTC";
	char *q = db_quote_literal(pg, tz);
	/* A SQL_ASCII mirror (1C exports in CP1251) holds bytes PostgreSQL cannot convert: take them
	 * as they are, and let the mapping engine report each value that is not UTF-8, field by field. */
	const char *se = PQparameterStatus(pg, "server_encoding");
	struct sb sql = {0};
	sb_printf(&sql, "SET DateStyle = 'ISO, YMD'; SET IntervalStyle = 'iso_8601'; SET TimeZone = %s; "
			"SET client_encoding = '%s'; SET lock_timeout = '30s'",
		  q, se && streq(se, "SQL_ASCII") ? "SQL_ASCII" : "UTF8");
	/*
	 * The source session runs the mapping's SQL: bound each statement, and have the server look
	 * every few seconds whether hrsync is still there (PostgreSQL 14+), so that a query of a
	 * process killed with SIGKILL does not run on for hours.
	 */
	if (source)
		sb_printf(&sql, "; SET statement_timeout = %lld%s", (long long)cfg->statement_timeout_ms,
			  PQserverVersion(pg) >= 140000 ? "; SET client_connection_check_interval = '5s'" : "");
	free(q);
	return sb_steal(&sql);
}

/* The session set up (db_setup_sql); pg is freed and NULL returned on failure. */
static PGconn *set_up(PGconn *pg, const struct config *cfg, bool source, char **err)
{
	if (!pg)
		return NULL;
	char *sql = db_setup_sql(pg, cfg, source);
	bool ok = db_exec(pg, sql, err);
	free(sql);
	if (!ok) {
		PQfinish(pg);
		return NULL;
	}
	return pg;
}

/* Connected (not set up) at once, the blocking way: libpq tries the conninfo's hosts in turn. */
static PGconn *connect_now(const struct config *cfg, bool source, const char *purpose, char **err)
{
	const char *keys[6], *vals[6];
	conn_params(cfg, source, purpose, keys, vals);
	PGconn *pg = PQconnectdbParams(keys, vals, 1);
	free((char *)vals[1]);
	return made(pg, err);
}

PGconn *db_connect(const struct config *cfg, const char *purpose, char **err)
{
	return set_up(connect_now(cfg, false, purpose, err), cfg, false, err);
}

PGconn *db_connect_source(const struct config *cfg, const char *purpose, char **err)
{
	return set_up(connect_now(cfg, true, purpose, err), cfg, true, err);
}

/* Take the connection begun as far as its socket allows within timeout_ms (0: no wait). */
static void connect_step(struct db_start *c, int timeout_ms)
{
	while (c->pg && (c->want == PGRES_POLLING_WRITING || c->want == PGRES_POLLING_READING)) {
		struct pollfd p = {.fd = PQsocket(c->pg), .events = c->want == PGRES_POLLING_WRITING ? POLLOUT : POLLIN};
		if (p.fd < 0)
			return;
		int n = poll(&p, 1, timeout_ms);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return;
		c->want = PQconnectPoll(c->pg);
	}
}

void db_connect_begin(struct db_start *c, const struct config *cfg, bool source, const char *purpose)
{
	memset(c, 0, sizeof *c);
	c->source = source;
	c->purpose = purpose;
	const char *keys[6], *vals[6];
	conn_params(cfg, source, purpose, keys, vals);
	c->pg = PQconnectStartParams(keys, vals, 1);
	free((char *)vals[1]);
	if (!c->pg || PQstatus(c->pg) == CONNECTION_BAD)
		return;
	/* The socket is writable at once on the local machine: the startup message goes now, and
	 * the server starts the session while the caller goes on. */
	c->want = PGRES_POLLING_WRITING;
	connect_step(c, 0);
}

PGconn *db_connect_made(struct db_start *c, const struct config *cfg, char **err)
{
	/* Each wait bounded as connect_timeout bounds libpq's own. One not made in time is made
	 * again the blocking way, which goes on to the conninfo's next host, if it names several. */
	connect_step(c, 10000);
	PGconn *pg = c->pg;
	c->pg = NULL;
	if (pg && PQstatus(pg) != CONNECTION_OK && PQstatus(pg) != CONNECTION_BAD) {
		PQfinish(pg);
		return connect_now(cfg, c->source, c->purpose, err);
	}
	return made(pg, err);
}

PGconn *db_connect_end(struct db_start *c, const struct config *cfg, char **err)
{
	return set_up(db_connect_made(c, cfg, err), cfg, c->source, err);
}

void db_connect_drop(struct db_start *c)
{
	/* The handshake finished first (it is under way: a server that does not answer is not
	 * waited for long), so that the server sees a session end, not a client gone mid-startup. */
	connect_step(c, 2000);
	PQfinish(c->pg);
	c->pg = NULL;
}

/* Ask the server to cancel what pg is running; a failure to ask is logged, the wait goes on. */
static void cancel_query(PGconn *pg)
{
	char buf[256];
	PGcancel *c = PQgetCancel(pg);
	if (!c || !PQcancel(c, buf, sizeof buf))
		log_warn("database: could not cancel the running query: %s", c ? buf : "no cancel handle");
	PQfreeCancel(c);
}

/* Until the query sent on pg has its whole answer in (or the connection is gone). */
static void wait_answer(PGconn *pg, volatile sig_atomic_t *stop, bool *cancelled)
{
	bool asked = false;
	while (PQisBusy(pg)) {
		if (stop && *stop && !asked) {
			cancel_query(pg);
			asked = true;
			if (cancelled)
				*cancelled = true;
		}
		struct pollfd p = {.fd = PQsocket(pg), .events = POLLIN};
		if (p.fd < 0)
			break;
		if (poll(&p, 1, 200) < 0 && errno != EINTR)
			break;
		if (!PQconsumeInput(pg))
			break; /* the connection is gone: PQgetResult says so */
	}
}

PGresult *db_wait(PGconn *pg, volatile sig_atomic_t *stop, bool *cancelled)
{
	wait_answer(pg, stop, cancelled);
	PGresult *last = NULL, *r;
	while ((r = PQgetResult(pg))) {
		/* the first error, else the last result */
		if (last && PQresultStatus(last) == PGRES_FATAL_ERROR) {
			PQclear(r);
			continue;
		}
		PQclear(last);
		last = r;
	}
	return last ? last : PQmakeEmptyPGresult(pg, PGRES_FATAL_ERROR);
}

void db_wait_each(PGconn *pg, volatile sig_atomic_t *stop, bool *cancelled, void (*take)(void *ctx, PGresult *r),
		    void *ctx)
{
	wait_answer(pg, stop, cancelled);
	bool any = false;
	for (PGresult *r; (r = PQgetResult(pg)); any = true)
		take(ctx, r);
	if (!any)
		take(ctx, PQmakeEmptyPGresult(pg, PGRES_FATAL_ERROR));
}

char *db_quote_ident(PGconn *pg, const char *name)
{
	char *q = PQescapeIdentifier(pg, name, strlen(name));
	if (!q)
		return NULL;
	char *r = xstrdup(q);
	PQfreemem(q);
	return r;
}

char *db_quote_literal(PGconn *pg, const char *s)
{
	char *q = PQescapeLiteral(pg, s, strlen(s));
	if (!q)
		return NULL;
	char *r = xstrdup(q);
	PQfreemem(q);
	return r;
}

char *db_quote_qualified(PGconn *pg, const char *name)
{
	const char *dot = strchr(name, '.');
	if (!*name || (dot && (dot == name || !dot[1] || strchr(dot + 1, '.'))))
		return NULL;
	if (!dot)
		return db_quote_ident(pg, name);
	char *schema = xstrndup(name, (size_t)(dot - name));
	char *qs = db_quote_ident(pg, schema), *qt = db_quote_ident(pg, dot + 1);
	char *r = qs && qt ? xasprintf("%s.%s", qs, qt) : NULL;
	free(schema);
	free(qs);
	free(qt);
	return r;
}

PGresult *db_exec1(PGconn *pg, const char *sql, volatile sig_atomic_t *stop, char **err)
{
	PGresult *r = PQsendQueryParams(pg, sql, 0, NULL, NULL, NULL, NULL, 0) ? db_wait(pg, stop, NULL)
									     : PQmakeEmptyPGresult(pg, PGRES_FATAL_ERROR);
	ExecStatusType st = PQresultStatus(r);
	if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK)
		return r;
	if (err)
		*err = db_error(pg, r);
	PQclear(r);
	return NULL;
}

bool db_exec(PGconn *pg, const char *sql, char **err)
{
	PGresult *r = PQexec(pg, sql);
	ExecStatusType st = PQresultStatus(r);
	bool ok = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;
	if (!ok && err)
		*err = db_error(pg, r);
	PQclear(r);
	return ok;
}
