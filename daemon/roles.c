/*
 * roles — see roles.h.
 */
#define _GNU_SOURCE
#include "roles.h"

#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "db.h"

/*
 * The functions any role may call by default that write (large objects) or reach other
 * sessions (pg_notify) even inside a READ ONLY transaction. The server-side lo_import and
 * lo_export are superuser-only already; they are listed so that a grant of them is undone.
 */
static const char *const public_writers[] = {
	"lo_creat(integer)", "lo_create(oid)", "lo_from_bytea(oid, bytea)", "lo_import(text)",
	"lo_import(text, oid)", "lo_export(oid, text)", "lo_put(oid, bigint, bytea)", "lowrite(integer, bytea)",
	"lo_truncate(integer, integer)", "lo_truncate64(integer, bigint)", "lo_unlink(oid)", "pg_notify(text, text)",
};

/* A name as SQL: plain when it is a lower-case SQL name, else double-quoted. Caller frees. */
static char *ident(const char *s)
{
	bool plain = *s && ((*s >= 'a' && *s <= 'z') || *s == '_');
	for (const char *p = s; *p && plain; p++)
		plain = (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_';
	if (plain)
		return xstrdup(s);
	struct sb b = {0};
	sb_putc(&b, '"');
	for (const char *p = s; *p; p++) {
		if (*p == '"')
			sb_putc(&b, '"');
		sb_putc(&b, *p);
	}
	sb_putc(&b, '"');
	return sb_steal(&b);
}

/*
 * The value of key in a conninfo (string or URI), as libpq reads it; for the user, libpq's
 * own default when it is absent ($PGUSER, else the system user). Caller frees; NULL when none.
 */
static char *conninfo_get(const char *conninfo, const char *key)
{
	char *v = NULL;
	PQconninfoOption *opts = conninfo ? PQconninfoParse(conninfo, NULL) : NULL;
	for (PQconninfoOption *o = opts; o && o->keyword; o++)
		if (streq(o->keyword, key) && o->val && *o->val)
			v = xstrdup(o->val);
	PQconninfoFree(opts);
	if (!v && streq(key, "user")) {
		const char *env = getenv("PGUSER");
		struct passwd *pw = env && *env ? NULL : getpwuid(geteuid());
		v = env && *env ? xstrdup(env) : pw ? xstrdup(pw->pw_name) : NULL;
	}
	return v;
}

/* The schemas the push mappings read (their source tables'), each once, in mapping order. */
static size_t mirror_schemas(const struct config *cfg, char **out)
{
	size_t n = 0;
	for (size_t i = 0; i < cfg->nmaps; i++) {
		const struct mapping *m = cfg->maps[i];
		const char *dot = m->dir == DIR_PUSH && m->table ? strchr(m->table, '.') : NULL;
		if (!dot)
			continue;
		char *s = xstrndup(m->table, (size_t)(dot - m->table));
		bool seen = false;
		for (size_t k = 0; k < n; k++)
			seen |= streq(out[k], s);
		if (seen)
			free(s);
		else
			out[n++] = s;
	}
	return n;
}

static void print_state_role(const struct config *cfg, FILE *out, const char *state, const char *schema)
{
	fprintf(out,
		"-- The state role, %s (database.conninfo): owns the state schema and writes the inbound tables.\n"
		"-- A schema made here needs no CREATE on the database: `hrsync db migrate` creates its tables.\n"
		"CREATE SCHEMA IF NOT EXISTS %s AUTHORIZATION %s;\n"
		"ALTER SCHEMA %s OWNER TO %s;\n",
		state, schema, state, schema, state);
	for (size_t i = 0; i < cfg->ninbound; i++) {
		char *in = ident(cfg->inbound_schemas[i]);
		fprintf(out,
			"GRANT USAGE ON SCHEMA %s TO %s;\n"
			"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA %s TO %s;\n",
			in, state, in, state);
		free(in);
	}
}

static void print_source_role(const struct config *cfg, FILE *out, const char *source, const char *state,
			      const char *schema, bool shared)
{
	fprintf(out, "\n-- The source role, %s (%s): reads the mirror, the schemas the push mappings read.\n", source,
		shared ? "the same database.conninfo" : "database.source_conninfo");
	char **schemas = xcalloc(cfg->nmaps + 1, sizeof *schemas);
	size_t ns = mirror_schemas(cfg, schemas);
	for (size_t i = 0; i < ns; i++) {
		char *s = ident(schemas[i]);
		fprintf(out, "GRANT USAGE ON SCHEMA %s TO %s;\nGRANT SELECT ON ALL TABLES IN SCHEMA %s TO %s;\n", s, source,
			s, source);
		free(s);
		free(schemas[i]);
	}
	free(schemas);
	for (size_t i = 0; i < cfg->nmaps; i++)
		if (cfg->maps[i]->dir == DIR_PUSH && !cfg->maps[i]->table)
			fprintf(out, "-- mapping %s reads with a query (%s): grant SELECT on the tables it reads.\n",
				cfg->maps[i]->name, cfg->maps[i]->file);
	/* The source's read joins each row with its link and last failure, and reads the marks (state.c). */
	if (!shared)
		fprintf(out,
			"-- The state's tables, which the source's read uses (links, failures, read_marks), "
			"now and once migrated:\n"
			"GRANT USAGE ON SCHEMA %s TO %s;\n"
			"GRANT SELECT ON ALL TABLES IN SCHEMA %s TO %s;\n"
			"ALTER DEFAULT PRIVILEGES FOR ROLE %s IN SCHEMA %s GRANT SELECT ON TABLES TO %s;\n",
			schema, source, schema, source, state, schema, source);
	fprintf(out, "-- Mirror tables the ERP export creates later need the GRANT SELECT again (or ALTER DEFAULT\n"
		     "-- PRIVILEGES FOR ROLE <the exporting role> IN SCHEMA ... GRANT SELECT ON TABLES TO %s).\n",
		source);
}

void roles_print_grants(const struct config *cfg, FILE *out)
{
	char *state_user = conninfo_get(cfg->conninfo, "user");
	char *source_user = cfg->source_conninfo ? conninfo_get(cfg->source_conninfo, "user") : xstrdup(state_user ? state_user : "");
	char *dbname = conninfo_get(cfg->conninfo, "dbname");
	char *state = ident(state_user ? state_user : "hrsync");
	char *source = ident(source_user && *source_user ? source_user : "hrsync_reader");
	char *schema = ident(cfg->state_schema);
	bool shared = streq(state, source);
	fprintf(out,
		"-- hrsync db grants: the database roles of %s (docs/operations.md, \"Database roles\").\n"
		"-- Read it, then run it as a superuser in database %s: psql -v ON_ERROR_STOP=1 -f FILE\n"
		"-- The roles must exist (CREATE ROLE ... LOGIN); neither needs CREATE on the database.\n",
		cfg->path, dbname ? dbname : "(the conninfo's)");
	if (shared)
		fprintf(out,
			"--\n"
			"-- One role, %s, reads the mirror and keeps the state: the mappings' SQL (where,\n"
			"-- terminate.when, query) then runs as a role that may write the state and the inbound\n"
			"-- tables. The read-only snapshot stops INSERT, UPDATE and DDL there, not every function:\n"
			"-- for a source that can write nothing, set database.source_conninfo to a second role\n"
			"-- and run this again.\n",
			state);
	fputc('\n', out);
	print_state_role(cfg, out, state, schema);
	print_source_role(cfg, out, source, state, schema, shared);
	fprintf(out,
		"\n-- Functions every role may call by default, which store large objects or notify other\n"
		"-- sessions even in a read-only transaction. Revoked from PUBLIC, they are revoked for every\n"
		"-- role of this database: grant them back to the roles (not hrsync's) that need them.\n");
	fprintf(out, "REVOKE EXECUTE ON FUNCTION");
	for (size_t i = 0; i < ARRAY_LEN(public_writers); i++)
		fprintf(out, "%s\n  %s", i ? "," : "", public_writers[i]);
	if (shared)
		fprintf(out, "\n  FROM PUBLIC, %s;\n", source);
	else
		fprintf(out, "\n  FROM PUBLIC, %s, %s;\n", source, state);
	free(state_user);
	free(source_user);
	free(dbname);
	free(state);
	free(source);
	free(schema);
}

char *roles_source_writes(PGconn *pg, char **err)
{
	struct sb fns = {0};
	sb_puts(&fns, "ARRAY[");
	for (size_t i = 0; i < ARRAY_LEN(public_writers); i++)
		sb_printf(&fns, "%s'%s'", i ? ", " : "", public_writers[i]);
	sb_puts(&fns, "]");
	/* Tables and schemas of the catalogues and of other sessions' temporary tables aside. */
	char *sql = xasprintf(
		"SELECT (SELECT rolsuper FROM pg_roles WHERE rolname = current_user), "
		" (SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
		"   WHERE c.relkind IN ('r', 'p', 'v', 'f') AND n.nspname !~ '^pg_' AND n.nspname <> 'information_schema' "
		"   AND (has_table_privilege(c.oid, 'INSERT') OR has_table_privilege(c.oid, 'UPDATE') "
		"        OR has_table_privilege(c.oid, 'DELETE') OR has_table_privilege(c.oid, 'TRUNCATE'))), "
		" (SELECT string_agg(t, ', ') FROM (SELECT format('%%I.%%I', n.nspname, c.relname) AS t "
		"   FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
		"   WHERE c.relkind IN ('r', 'p', 'v', 'f') AND n.nspname !~ '^pg_' AND n.nspname <> 'information_schema' "
		"   AND (has_table_privilege(c.oid, 'INSERT') OR has_table_privilege(c.oid, 'UPDATE') "
		"        OR has_table_privilege(c.oid, 'DELETE') OR has_table_privilege(c.oid, 'TRUNCATE')) "
		"   ORDER BY 1 LIMIT 3) x), "
		" (SELECT string_agg(quote_ident(nspname), ', ' ORDER BY nspname) FROM pg_namespace "
		"   WHERE nspname !~ '^pg_' AND nspname <> 'information_schema' AND has_schema_privilege(oid, 'CREATE')), "
		" (SELECT string_agg(split_part(f, '(', 1), ', ') FROM unnest(%s) AS f "
		"   WHERE has_function_privilege(f, 'EXECUTE')), "
		" current_user",
		sb_str(&fns));
	sb_free(&fns);
	PGresult *r = db_exec1(pg, sql, NULL, err);
	free(sql);
	if (!r)
		return NULL;
	struct sb out = {0};
	sb_puts(&out, "");
	if (PQgetvalue(r, 0, 0)[0] == 't') {
		sb_printf(&out, "%s is a superuser", PQgetvalue(r, 0, 5));
	} else {
		long tables = atol(PQgetvalue(r, 0, 1));
		if (tables)
			sb_printf(&out, "it may insert, update, delete or truncate in %ld table(s) (%s%s)", tables,
				  PQgetvalue(r, 0, 2), tables > 3 ? ", ..." : "");
		if (!PQgetisnull(r, 0, 3))
			sb_printf(&out, "%sit may create objects in schema(s) %s", out.len ? "; " : "", PQgetvalue(r, 0, 3));
		if (!PQgetisnull(r, 0, 4))
			sb_printf(&out, "%sit may call %s", out.len ? "; " : "", PQgetvalue(r, 0, 4));
	}
	PQclear(r);
	return sb_steal(&out);
}
