/*
 * sync — one sync pass (`hrsync run`): for each push mapping, dependencies first,
 * stream the source rows, map them, decide what each record needs (create, update,
 * terminate, restore, nothing), hand the writes to the connector, and record every
 * outcome in the state. Data flows one way:
 *   source row -> mapped record -> decision -> connector op -> platform answer -> state
 */
#ifndef HRSYNC_SYNC_H
#define HRSYNC_SYNC_H

#include <stdbool.h>

#include "config.h"

struct run_opts {
	bool dry_run;
	bool full;       /* send every record, changed or not */
	bool force;      /* run past the mass-change guard */
	char **only;     /* --mapping NAME... */
	size_t nonly;
};

/* Returns the exit status of SPEC §3. */
int sync_run(struct config *cfg, const struct run_opts *opts);

/* `hrsync db migrate` */
int sync_migrate(struct config *cfg);

#endif
