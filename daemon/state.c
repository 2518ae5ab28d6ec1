/*
 * state — see state.h.
 */
#define _GNU_SOURCE
#include "state.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "db.h"
#include "log.h"
#include "sha256.h"
#include "version.h"

static bool connect_as(struct state *s, const struct config *cfg, const char *purpose, char **err)
{
	memset(s, 0, sizeof *s);
	s->version = -1;
	s->cfg = cfg;
	s->pg = db_connect(cfg, purpose, err);
	if (!s->pg)
		return false;
	s->schema_q = db_quote_ident(s->pg, cfg->state_schema);
	return true;
}

bool state_connect(struct state *s, const struct config *cfg, char **err)
{
	struct db_start st;
	db_connect_begin(&st, cfg, false, "state");
	return state_connect_begun(s, cfg, &st, err);
}

bool state_connect_begun(struct state *s, const struct config *cfg, struct db_start *started, char **err)
{
	memset(s, 0, sizeof *s);
	s->version = -1;
	s->cfg = cfg;
	s->pg = db_connect_end(started, cfg, err);
	if (!s->pg)
		return false;
	s->schema_q = db_quote_ident(s->pg, cfg->state_schema);
	return true;
}

bool state_connect_report(struct state *s, const struct config *cfg, const char *purpose, bool read_only,
			  char **err)
{
	if (!connect_as(s, cfg, purpose, err))
		return false;
	s->quiet = true;
	if (read_only && !db_exec(s->pg, "SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY", err)) {
		state_close(s);
		return false;
	}
	return true;
}

void state_close(struct state *s)
{
	if (s->npend && (s->pg || s->lent))
		state_flush(s);
	sb_free(&s->pend);
	PQfinish(s->pg);
	PQfinish(s->lent);
	free(s->schema_q);
	free(s->err);
	memset(s, 0, sizeof *s);
}

static void set_err(struct state *s, const PGresult *r)
{
	free(s->err);
	s->err = db_error(s->pg, r);
	if (PQstatus(s->pg) != CONNECTION_OK) {
		if (!s->broken && !s->quiet)
			log_error("lost the connection to the state database: %s", s->err);
		s->broken = true;
	} else if (!s->quiet) {
		log_error("state database: %s", s->err);
	}
}

/*
 * A write that records what the platform confirmed (a link, its status, a failure) or the
 * group of them: refused by a database that is still there (a full disk, a lock held past
 * lock_timeout), the state no longer says what the platform holds. The state is then taken
 * as lost, as if the connection were: every later statement is refused and the run stops
 * (exit 3); the next run finds those records on the platform by their natural keys.
 */
static bool recorded(struct state *s, bool ok)
{
	if (!ok && !s->broken) {
		if (!s->quiet)
			log_error("state database: a write the platform confirmed could not be recorded (%s); the run stops",
				  s->err ? s->err : "failed");
		s->broken = true;
	}
	return ok;
}

PGconn *state_lend(struct state *s)
{
	state_flush(s);
	s->lent = s->pg;
	s->pg = NULL;
	return s->lent;
}

void state_return(struct state *s, PGconn *pg)
{
	if (!pg || pg != s->lent || s->pg)
		return; /* a session of its own made meanwhile: the lent one stays, for the lock */
	s->pg = pg;
	s->lent = NULL;
}

PGconn *state_pg(struct state *s)
{
	if (s->pg || s->broken)
		return s->pg;
	char *err = NULL;
	s->pg = db_connect(s->cfg, "state", &err);
	if (!s->pg) {
		free(s->err);
		s->err = err;
		if (!s->quiet)
			log_error("lost the connection to the state database: %s", err);
		s->broken = true;
	}
	return s->pg;
}

/* What was confirmed before goes in first (the next statement may read or change it): false
 * when the connection is lost. */
static bool flush_first(struct state *s)
{
	return state_pg(s) && !s->broken && !(s->npend && !s->flushing && !state_flush(s) && s->broken);
}

PGresult *state_exec(struct state *s, const char *sql, int n, const char *const *params)
{
	if (!flush_first(s))
		return NULL;
	PGresult *r = PQexecParams(s->pg, sql, n, NULL, params, NULL, NULL, 0);
	ExecStatusType st = PQresultStatus(r);
	if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
		set_err(s, r);
		PQclear(r);
		return NULL;
	}
	return r;
}

/* state_exec() of SQL on the state's tables, where "%1$s" stands for the quoted schema. */
static PGresult *q(struct state *s, const char *sql_fmt, int n, const char *const *params)
{
	char *sql = NULL;
	if (asprintf(&sql, sql_fmt, s->schema_q) < 0)
		return NULL;
	PGresult *r = state_exec(s, sql, n, params);
	free(sql);
	return r;
}

static bool q_ok(struct state *s, const char *sql_fmt, int n, const char *const *params)
{
	PGresult *r = q(s, sql_fmt, n, params);
	PQclear(r);
	return r != NULL;
}

/*
 * q() of a run's own record (runs, run_mappings), committed without waiting for the WAL to
 * reach the disk (synchronous_commit off, for this transaction only): a flush less per
 * record, milliseconds a run. A crash of the database's machine may lose the last of these
 * records (the next run then finds its run 'killed'), never a link or a failure: their
 * commits wait for the disk, and flush every record written before them. Inside a
 * transaction the caller opened, the caller's commit decides.
 */
static PGresult *q_record(struct state *s, const char *sql_fmt, int n, const char *const *params)
{
	/* in its own transaction, before this one opens */
	if (!flush_first(s))
		return NULL;
	bool own = PQtransactionStatus(s->pg) == PQTRANS_IDLE;
	if (own) {
		PGresult *b = PQexec(s->pg, "BEGIN; SET LOCAL synchronous_commit = off");
		bool ok = PQresultStatus(b) == PGRES_COMMAND_OK;
		if (!ok)
			set_err(s, b);
		PQclear(b);
		if (!ok) {
			state_rollback(s);
			return NULL;
		}
	}
	PGresult *r = q(s, sql_fmt, n, params);
	if (own && (!r || !q_ok(s, "COMMIT", 0, NULL))) {
		state_rollback(s);
		PQclear(r);
		return NULL;
	}
	return r;
}

static bool q_record_ok(struct state *s, const char *sql_fmt, int n, const char *const *params)
{
	PGresult *r = q_record(s, sql_fmt, n, params);
	PQclear(r);
	return r != NULL;
}

bool state_begin(struct state *s)
{
	return q_ok(s, "BEGIN", 0, NULL);
}

bool state_commit(struct state *s)
{
	return q_ok(s, "COMMIT", 0, NULL);
}

/* (a failed rollback leaves the transaction to end with the connection: nothing to report) */
void state_rollback(struct state *s)
{
	PQclear(PQexec(s->pg, "ROLLBACK"));
}

static const char *const migration_v1 =
	"CREATE TABLE IF NOT EXISTS %1$s.runs ("
	"  id bigserial PRIMARY KEY,"
	"  command text NOT NULL,"
	"  started_at timestamptz NOT NULL DEFAULT now(),"
	"  finished_at timestamptz,"
	"  status text NOT NULL DEFAULT 'running',"
	"  exit_code int,"
	"  dry_run boolean NOT NULL DEFAULT false,"
	"  host text, pid int, version text, message text);"
	"CREATE TABLE IF NOT EXISTS %1$s.run_mappings ("
	"  run_id bigint NOT NULL REFERENCES %1$s.runs(id) ON DELETE CASCADE,"
	"  mapping text NOT NULL,"
	"  source_rows bigint, created int, updated int, terminated int, unchanged int,"
	"  failed int, deferred int, requests int, throttled int, seconds double precision,"
	"  mapping_hash text,"
	"  PRIMARY KEY (run_id, mapping));"
	"CREATE TABLE IF NOT EXISTS %1$s.links ("
	"  mapping text NOT NULL,"
	"  erp_key text NOT NULL,"
	"  platform_id text,"
	"  status text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'terminated', 'deleted')),"
	"  fingerprint bytea,"
	"  payload jsonb,"
	"  extra jsonb,"
	"  nir_hash bytea,"
	"  created_at timestamptz NOT NULL DEFAULT now(),"
	"  updated_at timestamptz NOT NULL DEFAULT now(),"
	"  run_id bigint,"
	"  PRIMARY KEY (mapping, erp_key));"
	"CREATE INDEX IF NOT EXISTS links_platform_id ON %1$s.links (mapping, platform_id);"
	"CREATE INDEX IF NOT EXISTS links_nir ON %1$s.links (mapping, nir_hash) WHERE nir_hash IS NOT NULL;"
	"CREATE TABLE IF NOT EXISTS %1$s.failures ("
	"  mapping text NOT NULL,"
	"  erp_key text NOT NULL,"
	"  kind text NOT NULL CHECK (kind IN ('mapping', 'deferred', 'refused', 'transient')),"
	"  action text, field text, rule text,"
	"  reason text NOT NULL,"
	"  http_status int,"
	"  fingerprint bytea,"
	"  attempts int NOT NULL DEFAULT 1,"
	"  first_seen timestamptz NOT NULL DEFAULT now(),"
	"  last_seen timestamptz NOT NULL DEFAULT now(),"
	"  run_id bigint,"
	"  retry boolean NOT NULL DEFAULT false,"
	"  PRIMARY KEY (mapping, erp_key));"
	"CREATE TABLE IF NOT EXISTS %1$s.pull_cursors ("
	"  mapping text PRIMARY KEY, cursor text, updated_at timestamptz NOT NULL DEFAULT now());";

/* v2: the no-change fast path (links.src_hash) and the pull direction's bookkeeping. */
static const char *const migration_v2 =
	"ALTER TABLE %1$s.links ADD COLUMN IF NOT EXISTS src_hash text;"
	/* The no-change pass reads every link: keep the rows narrow (the payload, read only for
	 * updates, goes out of line) and leave room on each page for the src_hash updates. */
	"ALTER TABLE %1$s.links SET (toast_tuple_target = 128, fillfactor = 85);"
	"ALTER TABLE %1$s.run_mappings ADD COLUMN IF NOT EXISTS skipped int;"
	"ALTER TABLE %1$s.pull_cursors ADD COLUMN IF NOT EXISTS last_full timestamptz;"
	"CREATE TABLE IF NOT EXISTS %1$s.pulled ("
	"  mapping text NOT NULL,"
	"  platform_id text NOT NULL,"
	"  target_key jsonb NOT NULL,"
	"  fingerprint bytea,"
	"  deleted boolean NOT NULL DEFAULT false,"
	"  updated_at timestamptz NOT NULL DEFAULT now(),"
	"  run_id bigint,"
	"  PRIMARY KEY (mapping, platform_id));";

/*
 * v3: the no-change pass decides "in step" from the key, the source hash and the status of
 * each link, read in key order from this index alone (an index-only scan: a tenth of the
 * table, which holds the payloads, and no sort).
 */
static const char *const migration_v3 =
	"CREATE INDEX IF NOT EXISTS links_nochange ON %1$s.links (mapping, erp_key) INCLUDE (src_hash, status);";

/*
 * v4: the row hash is xxHash's XXH3 instead of MurmurHash64A (util.c hash64). A stored hash of the old
 * function must never be taken for a new one: clear them all. The next run then maps every
 * record once, sends only what the payload fingerprints (SHA-256, unchanged) say differs,
 * which is nothing when the mirror did not change, and stores the new hashes.
 */
static const char *const migration_v4 = "UPDATE %1$s.links SET src_hash = NULL WHERE src_hash IS NOT NULL;";

/*
 * v5: read marks (source.h, "Read marks"): after a run in which every record of a mapping
 * ended in step, the digest of its rows' hashes every SOURCE_MARK_ROWS rows in key order,
 * so that the next night can tell a stretch of rows unchanged without joining the links.
 * A mark speaks for the links and failures as that run left them: any change to a
 * mapping's links or failures (a run, `retry`, `reconcile --repair`, a hand-made UPDATE)
 * forgets the mapping's marks in the same transaction, by these triggers.
 */
static const char *const migration_v5 =
	"CREATE TABLE IF NOT EXISTS %1$s.read_marks ("
	"  mapping text NOT NULL,"
	"  seq int NOT NULL,"            /* 1, 2, ...: after that many full batches; 0: the end of the read */
	"  rows bigint NOT NULL,"
	"  last_key text,"
	"  digest text NOT NULL,"
	"  skipped bigint NOT NULL DEFAULT 0,"
	"  written_at timestamptz NOT NULL DEFAULT now(),"
	"  PRIMARY KEY (mapping, seq));"
	"CREATE OR REPLACE FUNCTION %1$s.forget_read_marks() RETURNS trigger LANGUAGE plpgsql AS $f$ "
	"BEGIN "
	"  IF TG_OP = 'TRUNCATE' THEN DELETE FROM %1$s.read_marks; "
	"  ELSE DELETE FROM %1$s.read_marks WHERE mapping IN (SELECT DISTINCT c.mapping FROM changed c); "
	"  END IF; "
	"  RETURN NULL; "
	"END $f$;"
	"DROP TRIGGER IF EXISTS links_forget_marks_ins ON %1$s.links;"
	"CREATE TRIGGER links_forget_marks_ins AFTER INSERT ON %1$s.links REFERENCING NEW TABLE AS changed "
	"  FOR EACH STATEMENT EXECUTE FUNCTION %1$s.forget_read_marks();"
	"DROP TRIGGER IF EXISTS links_forget_marks_upd ON %1$s.links;"
	"CREATE TRIGGER links_forget_marks_upd AFTER UPDATE ON %1$s.links REFERENCING NEW TABLE AS changed "
	"  FOR EACH STATEMENT EXECUTE FUNCTION %1$s.forget_read_marks();"
	"DROP TRIGGER IF EXISTS links_forget_marks_del ON %1$s.links;"
	"CREATE TRIGGER links_forget_marks_del AFTER DELETE ON %1$s.links REFERENCING OLD TABLE AS changed "
	"  FOR EACH STATEMENT EXECUTE FUNCTION %1$s.forget_read_marks();"
	"DROP TRIGGER IF EXISTS links_forget_marks_tru ON %1$s.links;"
	"CREATE TRIGGER links_forget_marks_tru AFTER TRUNCATE ON %1$s.links "
	"  FOR EACH STATEMENT EXECUTE FUNCTION %1$s.forget_read_marks();"
	"DROP TRIGGER IF EXISTS failures_forget_marks_ins ON %1$s.failures;"
	"CREATE TRIGGER failures_forget_marks_ins AFTER INSERT ON %1$s.failures REFERENCING NEW TABLE AS changed "
	"  FOR EACH STATEMENT EXECUTE FUNCTION %1$s.forget_read_marks();"
	"DROP TRIGGER IF EXISTS failures_forget_marks_upd ON %1$s.failures;"
	"CREATE TRIGGER failures_forget_marks_upd AFTER UPDATE ON %1$s.failures REFERENCING NEW TABLE AS changed "
	"  FOR EACH STATEMENT EXECUTE FUNCTION %1$s.forget_read_marks();"
	"DROP TRIGGER IF EXISTS failures_forget_marks_del ON %1$s.failures;"
	"CREATE TRIGGER failures_forget_marks_del AFTER DELETE ON %1$s.failures REFERENCING OLD TABLE AS changed "
	"  FOR EACH STATEMENT EXECUTE FUNCTION %1$s.forget_read_marks();"
	"DROP TRIGGER IF EXISTS failures_forget_marks_tru ON %1$s.failures;"
	"CREATE TRIGGER failures_forget_marks_tru AFTER TRUNCATE ON %1$s.failures "
	"  FOR EACH STATEMENT EXECUTE FUNCTION %1$s.forget_read_marks();";

/*
 * v6: marks also after a run that left records failing or deferred (source.h): a night
 * tries those again whatever the marks say, so a failure that is only rewritten (the same
 * record failing again, `retry` asking for another attempt) no longer forgets the marks;
 * a failure recorded for another record, or cleared, still does (INSERT and DELETE, v5).
 */
static const char *const migration_v6 =
	"CREATE OR REPLACE FUNCTION %1$s.forget_read_marks_moved() RETURNS trigger LANGUAGE plpgsql AS $f$ "
	"BEGIN "
	"  DELETE FROM %1$s.read_marks WHERE mapping IN (SELECT x.mapping FROM "
	"    ((SELECT mapping, erp_key FROM gone EXCEPT SELECT mapping, erp_key FROM came) "
	"     UNION (SELECT mapping, erp_key FROM came EXCEPT SELECT mapping, erp_key FROM gone)) x); "
	"  RETURN NULL; "
	"END $f$;"
	"DROP TRIGGER IF EXISTS failures_forget_marks_upd ON %1$s.failures;"
	"CREATE TRIGGER failures_forget_marks_upd AFTER UPDATE ON %1$s.failures "
	"  REFERENCING OLD TABLE AS gone NEW TABLE AS came "
	"  FOR EACH STATEMENT EXECUTE FUNCTION %1$s.forget_read_marks_moved();";

/*
 * v7: the triggers on `failures` inserts and updates fire per row, and only where a mark is
 * concerned. A statement trigger fires with no row too: a night's failing records, written
 * again (INSERT ... ON CONFLICT DO UPDATE: an INSERT and an UPDATE statement), ran two
 * PL/pgSQL functions that had nothing to do, compiled first in the run's new session (most of
 * the 10 ms their group cost on the server). Now a failure inserted for a record that had none
 * forgets its mapping's marks, as before; an update does only when the failure moves to
 * another record (the WHEN clause: the function is not even called otherwise). Deletes and
 * TRUNCATE keep their statement triggers (v5).
 */
static const char *const migration_v7 =
	"CREATE OR REPLACE FUNCTION %1$s.forget_read_marks_row() RETURNS trigger LANGUAGE plpgsql AS $f$ "
	"BEGIN "
	"  IF TG_OP = 'UPDATE' THEN DELETE FROM %1$s.read_marks WHERE mapping IN (NEW.mapping, OLD.mapping); "
	"  ELSE DELETE FROM %1$s.read_marks WHERE mapping = NEW.mapping; "
	"  END IF; "
	"  RETURN NULL; "
	"END $f$;"
	"DROP TRIGGER IF EXISTS failures_forget_marks_ins ON %1$s.failures;"
	"CREATE TRIGGER failures_forget_marks_ins AFTER INSERT ON %1$s.failures "
	"  FOR EACH ROW EXECUTE FUNCTION %1$s.forget_read_marks_row();"
	"DROP TRIGGER IF EXISTS failures_forget_marks_upd ON %1$s.failures;"
	"CREATE TRIGGER failures_forget_marks_upd AFTER UPDATE ON %1$s.failures "
	"  FOR EACH ROW WHEN (OLD.mapping IS DISTINCT FROM NEW.mapping OR OLD.erp_key IS DISTINCT FROM NEW.erp_key) "
	"  EXECUTE FUNCTION %1$s.forget_read_marks_row();"
	"DROP FUNCTION IF EXISTS %1$s.forget_read_marks_moved();";

/*
 * The state schema, created only when it is missing: PostgreSQL checks CREATE on the database
 * before it looks whether the schema exists, so `CREATE SCHEMA IF NOT EXISTS` would fail for
 * a role that owns a schema a DBA made for it (hrsync.yaml(5), "Database roles") but may not
 * create schemas. A schema that exists is used as it is (the tables then need CREATE on it).
 */
static bool ensure_schema(struct state *s, char **err)
{
	PGresult *r = PQexecParams(s->pg, "SELECT to_regnamespace($1) IS NOT NULL", 1, NULL,
				   (const char *const[]){s->schema_q}, NULL, NULL, 0);
	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		*err = db_error(s->pg, r);
		PQclear(r);
		return false;
	}
	bool have = PQgetvalue(r, 0, 0)[0] == 't';
	PQclear(r);
	if (have)
		return true;
	char *sql = xasprintf("CREATE SCHEMA IF NOT EXISTS %s", s->schema_q);
	bool ok = db_exec(s->pg, sql, err);
	free(sql);
	return ok;
}

/* The schema's version (state_lock, schema_version, state_exists); %1$s the quoted schema. */
#define SCHEMA_VERSION_SQL "SELECT coalesce(max(version), 0) FROM %1$s.schema_version"

/* The schema and its version table made if missing; the version they are at (-1 on error). */
static int schema_version(struct state *s, char **err)
{
	if (!ensure_schema(s, err))
		return -1;
	char *sql = xasprintf("CREATE TABLE IF NOT EXISTS %s.schema_version (version int NOT NULL, "
			      "applied_at timestamptz NOT NULL DEFAULT now())",
			      s->schema_q);
	bool ok = db_exec(s->pg, sql, err);
	free(sql);
	if (!ok)
		return -1;
	PGresult *r = q(s, SCHEMA_VERSION_SQL, 0, NULL);
	if (!r) {
		*err = xstrdup(s->err);
		return -1;
	}
	int have = atoi(PQgetvalue(r, 0, 0));
	PQclear(r);
	return have;
}

bool state_migrate(struct state *s, char **err)
{
	/* Read with the lock (state_lock) when the schema was there: most runs send nothing here. */
	int have = s->version >= 0 ? s->version : schema_version(s, err);
	if (have < 0)
		return false;
	if (have > STATE_VERSION) {
		*err = xasprintf("the state schema is at version %d, newer than this hrsync (%d): upgrade hrsync", have,
				 STATE_VERSION);
		return false;
	}
	/* Each step in its own transaction, recorded with its version: a crash mid-way resumes there. */
	static const char *const *steps[] = {&migration_v1, &migration_v2, &migration_v3, &migration_v4,
							     &migration_v5, &migration_v6, &migration_v7};
	for (int v = have + 1; v <= STATE_VERSION; v++) {
		char *body = NULL;
		if (asprintf(&body, *steps[v - 1], s->schema_q) < 0)
			return false;
		char *tx = xasprintf("BEGIN; %s INSERT INTO %s.schema_version (version) VALUES (%d); COMMIT", body,
				     s->schema_q, v);
		free(body);
		bool ok = db_exec(s->pg, tx, err);
		free(tx);
		if (!ok) {
			PQclear(PQexec(s->pg, "ROLLBACK"));
			return false;
		}
		log_info("state schema %s %s (version %d)", s->schema_q, v == 1 ? "created" : "upgraded", v);
	}
	s->version = STATE_VERSION;
	return true;
}

int state_exists(struct state *s, char **err)
{
	const char *p[] = {s->schema_q};
	PGresult *r = PQexecParams(s->pg, "SELECT to_regclass($1 || '.schema_version') IS NOT NULL", 1, NULL, p, NULL,
				   NULL, 0);
	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		*err = db_error(s->pg, r);
		PQclear(r);
		return -1;
	}
	bool have = PQgetvalue(r, 0, 0)[0] == 't';
	PQclear(r);
	if (!have)
		return 0;
	PGresult *v = q(s, SCHEMA_VERSION_SQL, 0, NULL);
	if (!v) {
		*err = xstrdup(s->err);
		return -1;
	}
	int version = atoi(PQgetvalue(v, 0, 0));
	PQclear(v);
	if (version > STATE_VERSION) {
		*err = xasprintf("the state schema is at version %d, newer than this hrsync (%d)", version, STATE_VERSION);
		return -1;
	}
	return version == STATE_VERSION ? 1 : 0;
}

struct lock_answer {
	PGresult *lock, *version;
};

static void take_lock_answer(void *ctx, PGresult *r)
{
	struct lock_answer *a = ctx;
	if (!a->lock)
		a->lock = r;
	else if (!a->version)
		a->version = r;
	else
		PQclear(r);
}

/*
 * The lock, and the schema's version read under it, in one string (one round trip). The
 * version's statement fails when there is no schema yet: s->version stays -1 and
 * state_migrate reads what there is. The lock is the session's: the implicit transaction's
 * end (or rollback) does not release it.
 */
int state_lock(struct state *s, char **err)
{
	s->version = -1;
	char *key = db_quote_literal(s->pg, s->schema_q);
	if (!key) {
		*err = db_error(s->pg, NULL);
		return -1;
	}
	char *version = xasprintf(SCHEMA_VERSION_SQL, s->schema_q);
	char *sql = xasprintf("SELECT pg_try_advisory_lock(hashtext('hrsync:' || %s)); %s", key, version);
	free(version);
	free(key);
	struct lock_answer a = {0};
	if (!PQsendQuery(s->pg, sql))
		a.lock = PQmakeEmptyPGresult(s->pg, PGRES_FATAL_ERROR);
	else
		db_wait_each(s->pg, NULL, NULL, take_lock_answer, &a);
	free(sql);
	int got = -1;
	if (PQresultStatus(a.lock) != PGRES_TUPLES_OK)
		*err = db_error(s->pg, a.lock);
	else
		got = PQgetvalue(a.lock, 0, 0)[0] == 't';
	if (got == 1 && PQresultStatus(a.version) == PGRES_TUPLES_OK && PQntuples(a.version) == 1)
		s->version = atoi(PQgetvalue(a.version, 0, 0));
	PQclear(a.lock);
	PQclear(a.version);
	return got;
}

long long state_run_begin(struct state *s, const char *command, bool dry_run)
{
	char host[256] = "";
	gethostname(host, sizeof host - 1);
	char pid[32];
	snprintf(pid, sizeof pid, "%d", (int)getpid());
	const char *p[] = {command, dry_run ? "t" : "f", host, pid, HRSYNC_VERSION};
	/* We hold the lock: a run still marked running was killed (one statement with the record). */
	PGresult *r = q_record(s,
			       "WITH killed AS (UPDATE %1$s.runs SET status = 'killed', finished_at = coalesce(finished_at, "
			       "now()), message = coalesce(message, 'the process ended without finishing the run') "
			       "WHERE status = 'running') "
			       "INSERT INTO %1$s.runs (command, dry_run, host, pid, version) VALUES ($1, $2, $3, $4, $5) "
			       "RETURNING id",
			       5, p);
	if (!r)
		return 0;
	long long id = atoll(PQgetvalue(r, 0, 0));
	PQclear(r);
	return id;
}

bool state_run_end(struct state *s, long long run, int exit_code, const char *message)
{
	char id[32], code[16];
	snprintf(id, sizeof id, "%lld", run);
	snprintf(code, sizeof code, "%d", exit_code);
	const char *status = exit_code == 0 ? "ok" : exit_code == 1 ? "failures" : exit_code == 3 ? "stopped" : "error";
	const char *p[] = {id, status, code, message};
	return q_record_ok(s, "UPDATE %1$s.runs SET finished_at = now(), status = $2, exit_code = $3, message = $4 WHERE id = $1",
		    4, p);
}

bool state_run_progress(struct state *s, long long run, const char *text)
{
	char id[32];
	snprintf(id, sizeof id, "%lld", run);
	const char *p[] = {id, text};
	return q_record_ok(s, "UPDATE %1$s.runs SET message = $2 WHERE id = $1 AND status = 'running'", 2, p);
}

bool state_run_mapping(struct state *s, long long run, const char *mapping, const struct counts *c,
		       const char *mapping_hash)
{
	char v[12][32];
	snprintf(v[0], 32, "%lld", run);
	snprintf(v[1], 32, "%lld", c->rows);
	snprintf(v[2], 32, "%ld", c->created);
	snprintf(v[3], 32, "%ld", c->updated);
	snprintf(v[4], 32, "%ld", c->terminated);
	snprintf(v[5], 32, "%ld", c->unchanged);
	snprintf(v[6], 32, "%ld", c->failed);
	snprintf(v[7], 32, "%ld", c->deferred);
	snprintf(v[8], 32, "%ld", c->requests);
	snprintf(v[9], 32, "%ld", c->throttled);
	snprintf(v[10], 32, "%.3f", c->seconds);
	snprintf(v[11], 32, "%ld", c->skipped);
	const char *p[] = {v[0], mapping, v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8], v[9], v[10], mapping_hash, v[11]};
	return q_record_ok(s,
		    "INSERT INTO %1$s.run_mappings (run_id, mapping, source_rows, created, updated, terminated, "
		    "unchanged, failed, deferred, requests, throttled, seconds, mapping_hash, skipped) "
		    "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) "
		    "ON CONFLICT (run_id, mapping) DO UPDATE SET source_rows = EXCLUDED.source_rows, "
		    "created = EXCLUDED.created, updated = EXCLUDED.updated, terminated = EXCLUDED.terminated, "
		    "unchanged = EXCLUDED.unchanged, failed = EXCLUDED.failed, deferred = EXCLUDED.deferred, "
		    "requests = EXCLUDED.requests, throttled = EXCLUDED.throttled, seconds = EXCLUDED.seconds, "
		    "skipped = EXCLUDED.skipped",
		    14, p);
}

bool state_link_put(struct state *s, const char *mapping, const char *key, const char *platform_id,
		    const char *status, const char *fp_hex, const struct jv *payload, const struct jv *extra,
		    const char *nir_hash_hex, const char *src_hash, long long run)
{
	char *pj = payload ? jv_dumps(payload) : NULL;
	char *ej = extra ? jv_dumps(extra) : NULL;
	char rid[32];
	snprintf(rid, sizeof rid, "%lld", run);
	const char *p[] = {mapping, key, platform_id, status, fp_hex, pj, ej, nir_hash_hex, rid, src_hash};
	bool ok = q_ok(s,
		       "INSERT INTO %1$s.links (mapping, erp_key, platform_id, status, fingerprint, payload, extra, "
		       "nir_hash, run_id, src_hash) VALUES ($1, $2, $3, $4, decode($5, 'hex'), $6::jsonb, $7::jsonb, "
		       "decode($8, 'hex'), $9, $10) "
		       "ON CONFLICT (mapping, erp_key) DO UPDATE SET platform_id = EXCLUDED.platform_id, "
		       "status = EXCLUDED.status, fingerprint = EXCLUDED.fingerprint, payload = EXCLUDED.payload, "
		       "extra = EXCLUDED.extra, nir_hash = coalesce(EXCLUDED.nir_hash, links.nir_hash), "
		       "src_hash = EXCLUDED.src_hash, updated_at = now(), run_id = EXCLUDED.run_id",
		       10, p);
	if (recorded(s, ok))
		s->link_writes++;
	free(pj);
	free(ej);
	return ok;
}

bool state_src_hashes(struct state *s, const char *mapping, const char *keys_json, const char *hashes_json)
{
	const char *p[] = {mapping, keys_json, hashes_json};
	PGresult *r = q(s,
			"UPDATE %1$s.links l SET src_hash = v.h FROM (SELECT json_array_elements_text($2::json) AS k, "
			"json_array_elements_text($3::json) AS h) v WHERE l.mapping = $1 AND l.erp_key = v.k",
			3, p);
	if (r)
		s->link_writes += atol(PQcmdTuples(r));
	PQclear(r);
	return r != NULL;
}

bool state_link_status(struct state *s, const char *mapping, const char *key, const char *status, long long run)
{
	char rid[32];
	snprintf(rid, sizeof rid, "%lld", run);
	const char *p[] = {mapping, key, status, rid};
	bool ok = q_ok(s, "UPDATE %1$s.links SET status = $3, updated_at = now(), run_id = $4 "
			  "WHERE mapping = $1 AND erp_key = $2",
		       4, p);
	if (recorded(s, ok))
		s->link_writes++;
	return ok;
}

struct jv *state_link_payload(struct state *s, const char *mapping, const char *key)
{
	const char *p[] = {mapping, key};
	PGresult *r = q(s, "SELECT payload::text FROM %1$s.links WHERE mapping = $1 AND erp_key = $2", 2, p);
	struct jv *j = NULL;
	if (r && PQntuples(r) == 1 && !PQgetisnull(r, 0, 0)) {
		const char *t = PQgetvalue(r, 0, 0);
		j = jv_parse(t, strlen(t), NULL, 0);
	}
	PQclear(r);
	return j;
}

bool state_link_find(struct state *s, const char *mapping, const char *key, char **platform_id, char **status)
{
	const char *p[] = {mapping, key};
	PGresult *r = q(s, "SELECT platform_id, status FROM %1$s.links WHERE mapping = $1 AND erp_key = $2 "
			   "AND platform_id IS NOT NULL",
			2, p);
	bool found = r && PQntuples(r) == 1;
	if (found) {
		*platform_id = xstrdup(PQgetvalue(r, 0, 0));
		if (status)
			*status = xstrdup(PQgetvalue(r, 0, 1));
	}
	PQclear(r);
	return found;
}

bool state_link_by_nir(struct state *s, const char *mapping, const char *nir_hash, char **platform_id)
{
	const char *p[] = {mapping, nir_hash};
	PGresult *r = q(s, "SELECT platform_id FROM %1$s.links WHERE mapping = $1 AND nir_hash = decode($2, 'hex') "
			   "AND platform_id IS NOT NULL",
			2, p);
	bool found = r && PQntuples(r) == 1;
	if (found)
		*platform_id = xstrdup(PQgetvalue(r, 0, 0));
	PQclear(r);
	return found;
}

bool state_link_by_platform_id(struct state *s, const char *mapping, const char *platform_id, char **key)
{
	const char *p[] = {mapping, platform_id};
	PGresult *r = q(s, "SELECT erp_key FROM %1$s.links WHERE mapping = $1 AND platform_id = $2", 2, p);
	bool found = r && PQntuples(r) == 1;
	if (found)
		*key = xstrdup(PQgetvalue(r, 0, 0));
	PQclear(r);
	return found;
}

static long long count1(struct state *s, const char *sql, const char *mapping)
{
	const char *p[] = {mapping};
	PGresult *r = q(s, sql, 1, p);
	long long n = -1;
	if (r && PQntuples(r) == 1 && !PQgetisnull(r, 0, 0))
		n = atoll(PQgetvalue(r, 0, 0));
	PQclear(r);
	return n;
}

long long state_active_links(struct state *s, const char *mapping)
{
	return count1(s, "SELECT count(*) FROM %1$s.links WHERE mapping = $1 AND status = 'active' "
			 "AND platform_id IS NOT NULL",
		      mapping);
}

long long state_last_rows(struct state *s, const char *mapping)
{
	return count1(s, "SELECT rm.source_rows FROM %1$s.run_mappings rm JOIN %1$s.runs r ON r.id = rm.run_id "
			 "WHERE rm.mapping = $1 AND r.status IN ('ok', 'failures') AND NOT r.dry_run "
			 "ORDER BY rm.run_id DESC LIMIT 1",
		      mapping);
}

/* A failure written again: its new reason, one more attempt if from another run, no retry asked. */
#define FAILURE_UPSERT \
	"ON CONFLICT (mapping, erp_key) DO UPDATE SET kind = EXCLUDED.kind, action = EXCLUDED.action, " \
	"field = EXCLUDED.field, rule = EXCLUDED.rule, reason = EXCLUDED.reason, " \
	"http_status = EXCLUDED.http_status, fingerprint = EXCLUDED.fingerprint, " \
	"attempts = failures.attempts + CASE WHEN failures.run_id IS DISTINCT FROM EXCLUDED.run_id " \
	"THEN 1 ELSE 0 END, last_seen = now(), run_id = EXCLUDED.run_id, retry = false"

bool state_failure_put(struct state *s, const char *mapping, const char *key, const struct failure *f, long long run)
{
	char rid[32], hs[16];
	snprintf(rid, sizeof rid, "%lld", run);
	snprintf(hs, sizeof hs, "%ld", f->http_status);
	const char *p[] = {mapping, key, f->kind, f->action, f->field, f->rule, f->reason,
			   f->http_status ? hs : NULL, f->fp_hex, rid};
	return recorded(s, q_ok(s,
				"INSERT INTO %1$s.failures (mapping, erp_key, kind, action, field, rule, reason, "
				"http_status, fingerprint, run_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, "
				"decode($9, 'hex'), $10) " FAILURE_UPSERT,
				10, p));
}

bool state_failure_clear(struct state *s, const char *mapping, const char *key)
{
	const char *p[] = {mapping, key};
	return recorded(s, q_ok(s, "DELETE FROM %1$s.failures WHERE mapping = $1 AND erp_key = $2", 2, p));
}

/* ---- the pull direction ---- */

int state_pulled_get(struct state *s, const char *mapping, const char *platform_id, char **fp_hex, bool *deleted)
{
	const char *p[] = {mapping, platform_id};
	PGresult *r = q(s, "SELECT encode(fingerprint, 'hex'), deleted FROM %1$s.pulled "
			   "WHERE mapping = $1 AND platform_id = $2",
			2, p);
	if (!r)
		return -1;
	int known = PQntuples(r) == 1;
	*fp_hex = known && !PQgetisnull(r, 0, 0) ? xstrdup(PQgetvalue(r, 0, 0)) : NULL;
	*deleted = known && PQgetvalue(r, 0, 1)[0] == 't';
	PQclear(r);
	return known;
}

bool state_pulled_put(struct state *s, const char *mapping, const char *platform_id, const char *target_key_json,
		      const char *fp_hex, long long run)
{
	char rid[32];
	snprintf(rid, sizeof rid, "%lld", run);
	const char *p[] = {mapping, platform_id, target_key_json, fp_hex, rid};
	return q_ok(s,
		    "INSERT INTO %1$s.pulled (mapping, platform_id, target_key, fingerprint, run_id) "
		    "VALUES ($1, $2, $3::jsonb, decode($4, 'hex'), $5) ON CONFLICT (mapping, platform_id) DO UPDATE "
		    "SET target_key = EXCLUDED.target_key, fingerprint = EXCLUDED.fingerprint, deleted = false, "
		    "updated_at = now(), run_id = EXCLUDED.run_id",
		    5, p);
}

bool state_pulled_deleted(struct state *s, const char *mapping, const char *platform_id)
{
	const char *p[] = {mapping, platform_id};
	return q_ok(s, "UPDATE %1$s.pulled SET deleted = true, updated_at = now() WHERE mapping = $1 AND platform_id = $2",
		    2, p);
}

PGresult *state_pulled_live(struct state *s, const char *mapping)
{
	const char *p[] = {mapping};
	return q(s, "SELECT platform_id, target_key::text FROM %1$s.pulled WHERE mapping = $1 AND NOT deleted", 1, p);
}

bool state_pull_cursor_get(struct state *s, const char *mapping, char **cursor, double *since_full)
{
	const char *p[] = {mapping};
	PGresult *r = q(s, "SELECT cursor, coalesce(extract(epoch FROM now() - last_full), 1e12) FROM %1$s.pull_cursors "
			   "WHERE mapping = $1",
			1, p);
	*cursor = NULL;
	*since_full = 1e12;
	if (r && PQntuples(r) == 1) {
		*cursor = PQgetisnull(r, 0, 0) ? NULL : xstrdup(PQgetvalue(r, 0, 0));
		*since_full = atof(PQgetvalue(r, 0, 1));
	}
	PQclear(r);
	return r != NULL;
}

bool state_pull_cursor_put(struct state *s, const char *mapping, const char *cursor, bool full)
{
	const char *p[] = {mapping, cursor, full ? "t" : "f"};
	return q_ok(s,
		    "INSERT INTO %1$s.pull_cursors (mapping, cursor, last_full) VALUES ($1, $2, CASE WHEN $3 THEN now() END) "
		    "ON CONFLICT (mapping) DO UPDATE SET cursor = EXCLUDED.cursor, updated_at = now(), "
		    "last_full = CASE WHEN $3 THEN now() ELSE pull_cursors.last_full END",
		    3, p);
}

/* ---- the reports ---- */

/* A yes/no query's answer: 1, 0, or -1 on error. */
static int yes_no(struct state *s, const char *sql_fmt, int n, const char *const *params)
{
	PGresult *r = q(s, sql_fmt, n, params);
	if (!r)
		return -1;
	int yes = PQntuples(r) > 0 && PQgetvalue(r, 0, 0)[0] == 't';
	PQclear(r);
	return yes;
}

int state_created(struct state *s)
{
	const char *p[] = {s->schema_q};
	return yes_no(s, "SELECT to_regclass($1 || '.failures') IS NOT NULL", 1, p);
}

int state_running(struct state *s)
{
	const char *p[] = {s->schema_q};
	/* pg_locks shows the key of state_lock() split in two 32-bit halves. */
	return yes_no(s,
		      "WITH k AS (SELECT hashtext('hrsync:' || $1)::bigint AS k) "
		      "SELECT EXISTS (SELECT 1 FROM pg_locks l, k WHERE l.locktype = 'advisory' AND l.granted "
		      "AND l.objsubid = 1 AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
		      "AND l.classid = ((k.k >> 32) & 4294967295)::oid AND l.objid = (k.k & 4294967295)::oid)",
		      1, p);
}

/* The columns RUN_* (state.h); FROM and what follows are the caller's. */
#define RUN_COLS \
	"SELECT id, command, to_char(started_at, 'YYYY-MM-DD HH24:MI:SS TZ'), to_json(started_at) #>> '{}', " \
	"to_json(finished_at) #>> '{}', " \
	"round(extract(epoch FROM coalesce(finished_at, now()) - started_at)::numeric, 1), status, exit_code, " \
	"dry_run, host, pid, version, message, to_char(finished_at, 'YYYY-MM-DD HH24:MI:SS TZ') "
/* A completed run: what "last success" means, for status and the metrics alike. */
#define RUN_COMPLETED "status IN ('ok', 'failures') AND NOT dry_run"

PGresult *state_runs_latest(struct state *s, int n)
{
	char nbuf[16];
	snprintf(nbuf, sizeof nbuf, "%d", n);
	const char *p[] = {nbuf};
	return q(s, RUN_COLS "FROM %1$s.runs ORDER BY id DESC LIMIT $1", 1, p);
}

PGresult *state_run_last_completed(struct state *s)
{
	return q(s, RUN_COLS "FROM %1$s.runs WHERE " RUN_COMPLETED " ORDER BY id DESC LIMIT 1", 0, NULL);
}

double state_last_success_time(struct state *s)
{
	PGresult *r = q(s, "SELECT extract(epoch FROM max(finished_at)) FROM %1$s.runs WHERE " RUN_COMPLETED, 0, NULL);
	double t = 0;
	if (r && PQntuples(r) == 1 && !PQgetisnull(r, 0, 0))
		parse_double(PQgetvalue(r, 0, 0), &t);
	PQclear(r);
	return t;
}

/* names as a PostgreSQL text[] literal: every element quoted, " and \ escaped, NULL as "". Caller frees. */
static char *text_array(const char *const *names, size_t n)
{
	struct sb b = {0};
	sb_putc(&b, '{');
	for (size_t i = 0; i < n; i++) {
		sb_puts(&b, i ? ",\"" : "\"");
		for (const char *c = names[i]; c && *c; c++) {
			if (*c == '"' || *c == '\\')
				sb_putc(&b, '\\');
			sb_putc(&b, *c);
		}
		sb_putc(&b, '"');
	}
	sb_putc(&b, '}');
	return sb_steal(&b);
}

PGresult *state_run_counts(struct state *s, int n, const char *const *order, size_t norder)
{
	char nbuf[16];
	snprintf(nbuf, sizeof nbuf, "%d", n);
	char *arr = text_array(order, norder);
	const char *p[] = {nbuf, arr};
	PGresult *r = q(s,
			"SELECT run_id, mapping, source_rows, created, updated, terminated, unchanged, skipped, failed, "
			"deferred, requests, throttled, round(seconds::numeric, 1) FROM %1$s.run_mappings "
			"WHERE run_id IN (SELECT id FROM %1$s.runs ORDER BY id DESC LIMIT $1) "
			"ORDER BY run_id DESC, array_position($2::text[], mapping) NULLS LAST, mapping",
			2, p);
	free(arr);
	return r;
}

PGresult *state_failures_summary(struct state *s, const char *const *order, size_t norder)
{
	char *arr = text_array(order, norder);
	const char *p[] = {arr};
	PGresult *r = q(s,
			"SELECT mapping, kind, field, rule, count(*), count(*) FILTER (WHERE retry), "
			"to_char(min(first_seen), 'YYYY-MM-DD HH24:MI'), to_json(min(first_seen)) #>> '{}', "
			"to_json(max(last_seen)) #>> '{}', max(attempts), "
			"(array_agg(reason ORDER BY last_seen DESC, erp_key))[1], "
			"(array_agg(erp_key ORDER BY erp_key))[1] FROM %1$s.failures "
			"GROUP BY mapping, kind, field, rule "
			"ORDER BY array_position($1::text[], mapping) NULLS LAST, mapping, "
			"array_position(ARRAY['mapping', 'refused', 'transient', 'deferred'], kind), count(*) DESC, "
			"field NULLS LAST, rule NULLS LAST",
			1, p);
	free(arr);
	return r;
}

PGresult *state_failures_list(struct state *s, const char *mapping, const char *const *order, size_t norder)
{
	char *arr = text_array(order, norder);
	const char *p[] = {mapping, arr};
	PGresult *r = q(s,
			"SELECT mapping, erp_key, kind, action, field, rule, reason, http_status, attempts, "
			"to_json(first_seen) #>> '{}', to_json(last_seen) #>> '{}', retry, run_id, "
			"to_char(first_seen, 'YYYY-MM-DD HH24:MI'), to_char(last_seen, 'YYYY-MM-DD HH24:MI') "
			"FROM %1$s.failures WHERE $1::text IS NULL OR mapping = $1 "
			"ORDER BY array_position($2::text[], mapping) NULLS LAST, mapping, erp_key",
			2, p);
	free(arr);
	return r;
}

int state_failures_of(struct state *s, const char *mapping)
{
	const char *p[] = {mapping};
	return yes_no(s, "SELECT true FROM %1$s.failures WHERE mapping = $1 LIMIT 1", 1, p);
}

PGresult *state_failures_retry(struct state *s, const char *mapping, const char *const *keys, size_t nkeys)
{
	char *arr = nkeys ? text_array(keys, nkeys) : NULL;
	const char *p[] = {mapping, arr};
	PGresult *r = q(s,
			"UPDATE %1$s.failures SET retry = true WHERE ($1::text IS NULL OR mapping = $1) "
			"AND ($2::text[] IS NULL OR erp_key = ANY ($2::text[])) RETURNING mapping, erp_key, kind",
			2, p);
	free(arr);
	return r;
}

/* ---- the no-change fast path: the state's side of source.c's query ---- */

const char *state_join_cols(enum state_join how)
{
	switch (how) {
	case STATE_JOIN_NONE:
		return "NULL::text, NULL::text, NULL::text, NULL::text, NULL::text, NULL::text, NULL::bool, NULL::text";
	case STATE_JOIN_HASHED:
		return "NULL::text, l.status, NULL::text, NULL::text, f.kind, encode(f.fingerprint, 'hex'), f.retry, "
		       "l.src_hash";
	default:
		return "l.platform_id, l.status, encode(l.fingerprint, 'hex'), l.extra::text, f.kind, "
		       "encode(f.fingerprint, 'hex'), f.retry, NULL::text";
	}
}

void state_join_sql(struct sb *q, enum state_join how, const char *schema_q, const char *mapping_lit,
		    const char *key_text)
{
	if (how == STATE_JOIN_NONE)
		return;
	/* OFFSET 0: each subquery planned alone, its rows in key order from an index. */
	sb_printf(q, " LEFT JOIN (SELECT erp_key, %s FROM %s.links WHERE mapping = %s ORDER BY erp_key OFFSET 0) l "
		     "ON l.erp_key = %s "
		     "LEFT JOIN (SELECT erp_key, kind, fingerprint, retry FROM %s.failures WHERE mapping = %s "
		     "ORDER BY erp_key OFFSET 0) f ON f.erp_key = %s",
		  how == STATE_JOIN_HASHED ? "src_hash, status" : "platform_id, status, fingerprint, extra", schema_q,
		  mapping_lit, key_text, schema_q, mapping_lit, key_text);
}

void state_ref_join_sql(struct sb *joins, struct sb *cols, int k, const char *schema_q, const char *target_lit,
			const char *key_text)
{
	sb_printf(joins, " LEFT JOIN %s.links r%d ON r%d.mapping = %s AND r%d.erp_key = %s", schema_q, k, k, target_lit,
		  k, key_text);
	sb_printf(cols, ", r%d.platform_id", k);
}

/* A query on the state's tables on another connection (the source's snapshot), "%1$s" the schema. */
static PGresult *rows_on(PGconn *pg, const char *sql_fmt, const char *schema_q, int n, const char *const *params,
			 char **err)
{
	char *sql = NULL;
	if (asprintf(&sql, sql_fmt, schema_q) < 0) {
		*err = xstrdup("out of memory");
		return NULL;
	}
	PGresult *r = PQexecParams(pg, sql, n, NULL, params, NULL, NULL, 0);
	free(sql);
	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		*err = db_error(pg, r);
		PQclear(r);
		return NULL;
	}
	return r;
}

PGresult *state_link_details(PGconn *pg, const char *schema_q, const char *mapping, const char *keys_json,
			     char **err)
{
	const char *p[] = {mapping, keys_json};
	return rows_on(pg,
		       "SELECT erp_key, platform_id, encode(fingerprint, 'hex'), extra::text FROM %1$s.links "
		       "WHERE mapping = $1 AND erp_key IN (SELECT json_array_elements_text($2::json)) "
		       "ORDER BY erp_key COLLATE \"C\"",
		       schema_q, 2, p, err);
}

char *state_marks_sql(const char *schema_q, const char *mapping_lit)
{
	return xasprintf("SELECT seq, rows, last_key, digest, skipped FROM %s.read_marks WHERE mapping = %s ORDER BY seq",
			 schema_q, mapping_lit);
}

char *state_failing_sql(const char *schema_q, const char *mapping_lit, long max)
{
	return xasprintf("SELECT f.erp_key, l.platform_id, l.status, encode(l.fingerprint, 'hex'), l.extra::text, f.kind, "
			 "encode(f.fingerprint, 'hex'), f.retry FROM %1$s.failures f LEFT JOIN %1$s.links l "
			 "ON l.mapping = f.mapping AND l.erp_key = f.erp_key WHERE f.mapping = %2$s "
			 "AND EXISTS (SELECT 1 FROM %1$s.read_marks WHERE mapping = %2$s) "
			 "ORDER BY f.erp_key COLLATE \"C\" LIMIT %3$ld",
			 schema_q, mapping_lit, max + 1);
}

bool state_marks_put(struct state *s, const char *mapping, const char *marks_json)
{
	const char *p[] = {mapping, marks_json};
	/* One statement: the marks of the read replace the mapping's, none is left over. */
	return q_ok(s,
		    "WITH n AS (SELECT * FROM json_to_recordset($2::json) AS x(seq int, rows bigint, last_key text, "
		    "digest text, skipped bigint)), "
		    "gone AS (DELETE FROM %1$s.read_marks m WHERE m.mapping = $1 AND m.seq NOT IN (SELECT seq FROM n)) "
		    "INSERT INTO %1$s.read_marks (mapping, seq, rows, last_key, digest, skipped) "
		    "SELECT $1, seq, rows, last_key, digest, skipped FROM n "
		    "ON CONFLICT (mapping, seq) DO UPDATE SET rows = EXCLUDED.rows, last_key = EXCLUDED.last_key, "
		    "digest = EXCLUDED.digest, skipped = EXCLUDED.skipped, written_at = now()",
		    2, p);
}

char *state_links_missing_sql(const char *schema_q, const char *mapping_lit, const char *present_keys_sql)
{
	return xasprintf("SELECT l.erp_key, l.platform_id, l.extra::text FROM %s.links l WHERE l.mapping = %s "
			 "AND l.status = 'active' AND l.platform_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM (%s) "
			 "AS present (erp_key) WHERE present.erp_key = l.erp_key) ORDER BY l.erp_key",
			 schema_q, mapping_lit, present_keys_sql);
}

void nir_hash_hex(const char nir[16], char out[65])
{
	char buf[32];
	int n = snprintf(buf, sizeof buf, "hrsync-nir:%s", nir);
	sha256_hex(buf, (size_t)n, out);
}

/* ---- reconcile (reconcile.c): the links as the platform should show them, and repairs ---- */

PGresult *state_links_of(struct state *s, const char *mapping)
{
	const char *p[] = {mapping};
	return q(s, "SELECT erp_key, platform_id, status, payload::text FROM %1$s.links "
		    "WHERE mapping = $1 AND platform_id IS NOT NULL ORDER BY erp_key",
		 1, p);
}

bool state_link_drifted(struct state *s, const char *mapping, const char *key, const char *platform_id,
			const struct jv *seen)
{
	char *pj = jv_dumps(seen);
	const char *p[] = {mapping, key, platform_id, pj};
	bool ok = q_ok(s, "UPDATE %1$s.links SET payload = $4::jsonb, fingerprint = NULL, src_hash = NULL, updated_at = now() "
			  "WHERE mapping = $1 AND erp_key = $2 AND platform_id = $3",
		       4, p);
	free(pj);
	return ok;
}

bool state_link_gone(struct state *s, const char *mapping, const char *key, const char *platform_id)
{
	const char *p[] = {mapping, key, platform_id};
	return q_ok(s, "DELETE FROM %1$s.links WHERE mapping = $1 AND erp_key = $2 AND platform_id = $3", 3, p);
}

bool state_link_adopt(struct state *s, const char *mapping, const char *key, const char *platform_id,
		      const char *fp_hex, const struct jv *payload)
{
	char *pj = jv_dumps(payload);
	const char *p[] = {mapping, key, platform_id, fp_hex, pj};
	bool ok = q_ok(s,
		       "INSERT INTO %1$s.links (mapping, erp_key, platform_id, status, fingerprint, payload) "
		       "VALUES ($1, $2, $3, 'active', decode($4, 'hex'), $5::jsonb) "
		       "ON CONFLICT (mapping, erp_key) DO UPDATE SET platform_id = EXCLUDED.platform_id, status = 'active', "
		       "fingerprint = EXCLUDED.fingerprint, payload = EXCLUDED.payload, extra = NULL, src_hash = NULL, "
		       "updated_at = now()",
		       5, p);
	free(pj);
	return ok;
}

bool state_vacuum_links(struct state *s)
{
	state_flush(s);
	if (s->broken || s->link_writes < STATE_VACUUM_WRITES || !state_pg(s))
		return false;
	int64_t t0 = now_ms();
	char *sql = xasprintf("VACUUM (ANALYZE) %s.links", s->schema_q);
	PGresult *r = PQexec(s->pg, sql);
	free(sql);
	bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
	if (ok)
		log_info("state: %ld link row(s) written: links vacuumed and analysed in %.2f s (the next run reads them "
			 "from the index alone)", s->link_writes, (double)(now_ms() - t0) / 1000.0);
	else
		log_warn("state: VACUUM of the links table failed (%s); the next no-change run may be slower until "
			 "autovacuum passes", PQresultErrorMessage(r));
	PQclear(r);
	s->link_writes = 0;
	return ok;
}

static void json_field(struct sb *b, const char *name, const char *v)
{
	sb_printf(b, ",\"%s\":", name);
	if (v)
		sb_json_string(b, v, strlen(v));
	else
		sb_puts(b, "null");
}

/* A pending entry (state_flush): its type ("f", a failure; NULL, a link), mapping and key. */
static struct sb *pend_open(struct state *s, const char *type, const char *mapping, const char *key)
{
	struct sb *b = &s->pend;
	sb_puts(b, s->npend ? ",{" : "[{");
	if (type)
		sb_printf(b, "\"t\":\"%s\",", type);
	else
		s->npend_links++;
	sb_puts(b, "\"m\":");
	sb_json_string(b, mapping, strlen(mapping));
	json_field(b, "k", key);
	return b;
}

/* The entry ends with its run; the group goes once full or once its oldest has waited
 * (false only if a flush failed). */
static bool pend_close(struct state *s, long long run)
{
	sb_printf(&s->pend, ",\"r\":%lld}", run);
	if (!s->npend++)
		s->pend_ms = now_ms();
	return s->npend < STATE_GROUP_MAX ? state_flush_due(s) : state_flush(s);
}

bool state_flush_due(struct state *s)
{
	return !s->npend || now_ms() - s->pend_ms < STATE_GROUP_MS || state_flush(s);
}

/* JSON carries it exactly (sb_json_escape): a NULL, or UTF-8. */
static bool json_exact(const char *v)
{
	return !v || utf8_valid(v, strlen(v));
}

bool state_link_put_later(struct state *s, const char *mapping, const char *key, const char *platform_id,
			  const char *fp_hex, const struct jv *payload, const struct jv *extra, const char *nir_hash_hex,
			  const char *src_hash, long long run)
{
	if (s->broken)
		return false;
	/* A key (or id) that is not UTF-8 (a CP1251 key of a SQL_ASCII mirror, kept out of the
	 * payload) goes as it is, alone, after what waits, as state_failure_put_later's does: the
	 * group's JSON would carry U+FFFD instead, and the next run would not find the link. */
	if (!json_exact(mapping) || !json_exact(key) || !json_exact(platform_id) || !json_exact(src_hash))
		return state_link_put(s, mapping, key, platform_id, "active", fp_hex, payload, extra, nir_hash_hex,
				      src_hash, run) &&
		       state_failure_clear(s, mapping, key);
	struct sb *b = pend_open(s, NULL, mapping, key);
	json_field(b, "id", platform_id);
	json_field(b, "fp", fp_hex);
	sb_puts(b, ",\"p\":");
	if (payload)
		jv_dump(payload, b);
	else
		sb_puts(b, "null");
	sb_puts(b, ",\"x\":");
	if (extra)
		jv_dump(extra, b);
	else
		sb_puts(b, "null");
	json_field(b, "nir", nir_hash_hex);
	json_field(b, "h", src_hash);
	return pend_close(s, run);
}

bool state_failure_put_later(struct state *s, const char *mapping, const char *key, const struct failure *f,
			     long long run)
{
	if (s->broken)
		return false;
	/* Bytes that are not UTF-8 (a CP1251 key or value in the reason) go as they are, alone,
	 * after what waits (state_failure_put flushes it first). */
	if (!json_exact(mapping) || !json_exact(key) || !json_exact(f->reason) || !json_exact(f->field) ||
	    !json_exact(f->rule))
		return state_failure_put(s, mapping, key, f, run);
	struct sb *b = pend_open(s, "f", mapping, key);
	json_field(b, "kind", f->kind);
	json_field(b, "action", f->action);
	json_field(b, "field", f->field);
	json_field(b, "rule", f->rule);
	json_field(b, "reason", f->reason);
	json_field(b, "fp", f->fp_hex);
	if (f->http_status)
		sb_printf(b, ",\"http\":%ld", f->http_status);
	return pend_close(s, run);
}

bool state_flush(struct state *s)
{
	if (!s->npend)
		return !s->broken;
	sb_putc(&s->pend, ']');
	s->flushing = true;
	/*
	 * One statement, one commit, with the effect of the entries one by one in order: the links
	 * (the last of a key wins), as state_link_put does; per key, its failure cleared if the
	 * key's last entry is a link, or written as state_failure_put does if it is a failure
	 * (the last one; the two sets of keys are apart, so neither statement sees the other's).
	 */
	/*
	 * Only the parts with entries: a statement-level trigger fires for a part that changes no
	 * row too (forget_read_marks, each a PL/pgSQL call), and a group of failures alone (a
	 * night's failing records) or of links alone is the common case.
	 */
	bool links = s->npend_links > 0, fails = s->npend_links < s->npend;
	struct sb sql = {0};
	sb_puts(&sql, "WITH e AS (SELECT e.j, e.i FROM json_array_elements($1::json) WITH ORDINALITY AS e(j, i)), "
		      "last AS (SELECT DISTINCT ON (j->>'m', j->>'k') j FROM e ORDER BY j->>'m', j->>'k', i DESC)");
	if (links)
		sb_puts(&sql,
			", v AS (SELECT DISTINCT ON (j->>'m', j->>'k') j FROM e WHERE j->>'t' IS NULL "
			"ORDER BY j->>'m', j->>'k', i DESC), "
			"l AS (INSERT INTO %1$s.links (mapping, erp_key, platform_id, status, fingerprint, payload, extra, "
			"nir_hash, run_id, src_hash) SELECT j->>'m', j->>'k', j->>'id', 'active', decode(j->>'fp', 'hex'), "
			"(j->'p')::jsonb, (j->'x')::jsonb, decode(j->>'nir', 'hex'), (j->>'r')::bigint, j->>'h' FROM v "
			"ON CONFLICT (mapping, erp_key) DO UPDATE SET platform_id = EXCLUDED.platform_id, "
			"status = EXCLUDED.status, fingerprint = EXCLUDED.fingerprint, payload = EXCLUDED.payload, "
			"extra = EXCLUDED.extra, nir_hash = coalesce(EXCLUDED.nir_hash, links.nir_hash), "
			"src_hash = EXCLUDED.src_hash, updated_at = now(), run_id = EXCLUDED.run_id RETURNING 1), "
			"fd AS (DELETE FROM %1$s.failures f USING last WHERE last.j->>'t' IS NULL "
			"AND f.mapping = last.j->>'m' AND f.erp_key = last.j->>'k')");
	if (fails)
		sb_puts(&sql,
			", fi AS (INSERT INTO %1$s.failures (mapping, erp_key, kind, action, field, rule, reason, "
			"http_status, fingerprint, run_id) SELECT j->>'m', j->>'k', j->>'kind', j->>'action', j->>'field', "
			"j->>'rule', j->>'reason', (j->>'http')::int, decode(j->>'fp', 'hex'), (j->>'r')::bigint FROM last "
			"WHERE j->>'t' = 'f' " FAILURE_UPSERT ")");
	sb_puts(&sql, links ? " SELECT count(*) FROM l" : " SELECT 0");
	const char *p[] = {sb_str(&s->pend)};
	PGresult *r = q(s, sb_str(&sql), 1, p);
	sb_free(&sql);
	s->flushing = false;
	sb_reset(&s->pend);
	s->npend = s->npend_links = 0;
	if (!recorded(s, r != NULL))
		return false;
	s->link_writes += atol(PQgetvalue(r, 0, 0));
	PQclear(r);
	return true;
}
