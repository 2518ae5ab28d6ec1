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

#include <signal.h>

#include "state.h"

struct run_opts {
	bool dry_run;
	bool full;       /* send every record, changed or not */
	bool force;      /* run past the mass-change guard */
	char **only;     /* --mapping NAME... */
	size_t nonly;
	/*
	 * Set (from a signal handler) to stop: no new request goes out, requests in flight
	 * finish and their outcome is committed, then sync_run returns 3. NULL: sync_run
	 * installs its own SIGTERM/SIGINT handlers for the length of the run.
	 */
	volatile sig_atomic_t *stop;
};

/* What a run did, for metrics and the daemon's status line. */
struct mapping_result {
	const char *mapping;        /* borrowed from the config */
	const char *connector;
	struct counts counts;
};
struct run_result {
	long long run_id;
	int exit_code;
	double started;             /* epoch seconds */
	double seconds;
	struct mapping_result *maps;
	size_t nmaps;
};
void run_result_free(struct run_result *r);

/* Returns the exit status of SPEC §3; fills res when not NULL (free with run_result_free). */
int sync_run(struct config *cfg, const struct run_opts *opts, struct run_result *res);

/* `hrsync db migrate` */
int sync_migrate(struct config *cfg);

#endif
