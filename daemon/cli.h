/*
 * cli — what every command shares: the global options, loading the config with every
 * problem printed, and the command functions main() dispatches to. One module per
 * family of commands: run.c (run), plan.c (plan, preview), check.c (check),
 * report.c (status, failures, retry), daemon.c (daemon).
 */
#ifndef HRSYNC_CLI_H
#define HRSYNC_CLI_H

#include <stdbool.h>

#include "config.h"
#include "log.h"

struct globals {
	const char *config;
	int level;
	bool level_set;
	enum log_format format;
	bool format_set;
};

/* Load and check the config, print every problem; NULL (exit 2) when it has errors. */
struct config *cli_load_config(const struct globals *g);

int cmd_run(const struct globals *g, int argc, char **argv);
int cmd_plan(const struct globals *g, int argc, char **argv);
int cmd_preview(const struct globals *g, int argc, char **argv);
int cmd_check(const struct globals *g, int argc, char **argv);
int cmd_daemon(const struct globals *g, int argc, char **argv);
int cmd_status(const struct globals *g, int argc, char **argv);
int cmd_failures(const struct globals *g, int argc, char **argv);
int cmd_retry(const struct globals *g, int argc, char **argv);
int cmd_db(const struct globals *g, int argc, char **argv);
int cmd_reconcile(const struct globals *g, int argc, char **argv);

/* plan.c: the planner shared by `plan` and `run --dry-run` (0 nothing to change, 1 changes pending). */
struct run_opts;
int plan_run(struct config *cfg, struct run_opts *o, bool json);

/* After a run (hrsync run and the daemon): the Prometheus textfile, when configured (metrics.c). */
struct run_result;
bool metrics_write(const struct config *cfg, const struct run_result *res);
/* After `hrsync reconcile`: the series of hrsync_drift_records (lines, each ending in a newline)
 * replace those of the textfile; the rest of it is kept (metrics.c). */
bool metrics_write_drift(const struct config *cfg, const char *series);

#endif
