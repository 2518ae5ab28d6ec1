/*
 * roles — the database roles hrsync needs, least privilege (docs/operations.md, "Database
 * roles"): `hrsync db grants` prints the SQL that makes them, and `check --online` warns when
 * the source's role could write.
 *
 * The state role (database.conninfo) owns the state schema and writes the inbound tables. The
 * source role (database.source_conninfo, else the same) runs the mappings' SQL (where,
 * terminate.when, query) in the read-only snapshot, which stops INSERT, UPDATE and DDL but not
 * functions that write of their own (large objects, pg_notify): it should only read the
 * mirror and the state's tables its read joins, and those functions are revoked from PUBLIC.
 * This module prints and asks; it never grants anything itself.
 */
#ifndef HRSYNC_ROLES_H
#define HRSYNC_ROLES_H

#include <libpq-fe.h>
#include <stdio.h>

#include "config.h"

/* `hrsync db grants`: the SQL for cfg's roles, to be read and run by a superuser. Reads no database. */
void roles_print_grants(const struct config *cfg, FILE *out);

/*
 * What the role of pg's session could write outside a read-only transaction's reach: "" when
 * nothing, else a sentence listing it (a superuser; tables it may insert into, update, delete
 * or truncate; schemas it may create in; the PUBLIC functions of roles_print_grants it may
 * still call). NULL with *err when the catalogue could not be read. Caller frees.
 */
char *roles_source_writes(PGconn *pg, char **err);

#endif
