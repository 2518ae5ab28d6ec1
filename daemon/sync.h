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

/* What `plan` and `run --dry-run` report for one record (all pointers borrowed for the call). */
enum plan_action { PA_CREATE, PA_UPDATE, PA_TERMINATE, PA_DELETE, PA_RESTORE, PA_SKIP, PA_FAIL, PA_DEFER,
		   PA_UNCHANGED, PA__N };
struct plan_rec {
	const char *mapping, *key;
	enum plan_action action;
	bool then_terminate;            /* create, then terminate: first seen already gone */
	const struct jv *old;           /* update: what the platform accepted last (may be NULL) */
	const struct jv *payload;       /* create, update, restore */
	const struct jv *term;          /* terminate, delete */
	const char *field, *rule, *reason;
};
/* What `preview` shows for one source row. */
struct preview_rec {
	const char *mapping, *key;
	const struct jv *row;           /* the source row, column: value */
	const struct jv *payload;       /* NULL when it failed or waits */
	const struct jv *term;          /* the terminate payload when terminate.when holds */
	bool deferred;
	const char *field, *rule, *reason;
};
struct plan_sink {
	void (*record)(void *ud, const struct plan_rec *r);
	void (*preview)(void *ud, const struct preview_rec *r);   /* set: preview mode */
	void *ud;
	const char *preview_key;
	long preview_limit;
};

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
	/* dry_run: every decision goes here instead of to the platform; nothing is written anywhere. */
	const struct plan_sink *sink;
	/*
	 * The run window's end (epoch seconds; 0: none; `run --until`, config run_until): from
	 * then on nothing new is sent, what is in flight finishes and is recorded, and the run
	 * exits 1 saying how many records are left for the next run. A windowed run sends
	 * creates and terminations before updates.
	 */
	double until;
	/* What the run is recorded as in the state's runs (`status`); NULL: "run". */
	const char *command;
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

/* Returns the exit status (README.md, "Command line"); fills res when not NULL (free with run_result_free). */
int sync_run(struct config *cfg, const struct run_opts *opts, struct run_result *res);

/* `hrsync db migrate` */
int sync_migrate(struct config *cfg);

#endif
