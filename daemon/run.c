/*
 * run — `hrsync run [--dry-run] [--mapping NAME]... [--full] [--force] [--until TIME]`.
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "cli.h"
#include "schedule.h"
#include "sync.h"

int cmd_run(const struct globals *g, int argc, char **argv)
{
	struct run_opts o = {0};
	const char *until = NULL;
	o.only = xcalloc((size_t)argc + 1, sizeof *o.only);
	for (int i = 0; i < argc; i++) {
		if (streq(argv[i], "--until") && i + 1 < argc)
			until = argv[++i];
		else if (str_has_prefix(argv[i], "--until="))
			until = argv[i] + 8;
		else if (streq(argv[i], "--dry-run"))
			o.dry_run = true;
		else if (streq(argv[i], "--full"))
			o.full = true;
		else if (streq(argv[i], "--force"))
			o.force = true;
		else if (streq(argv[i], "--mapping") && i + 1 < argc)
			o.only[o.nonly++] = argv[++i];
		else if (str_has_prefix(argv[i], "--mapping="))
			o.only[o.nonly++] = argv[i] + 10;
		else {
			fprintf(stderr, "hrsync run: unknown argument '%s'\n"
					"usage: hrsync run [--dry-run] [--mapping NAME]... [--full] [--force] [--until TIME]\n",
				argv[i]);
			free(o.only);
			return 2;
		}
	}
	struct config *cfg = cli_load_config(g);
	if (!cfg) {
		free(o.only);
		return 2;
	}
	config_log_insecure(cfg);
	/* After the config: HH:MM is read in its time zone. */
	if (!until)
		until = cfg->run_until;
	char werr[200];
	if (until && !window_end(until, time(NULL), &o.until, werr, sizeof werr)) {
		fprintf(stderr, "hrsync run: --until %s\n", werr);
		config_free(cfg);
		free(o.only);
		return 2;
	}
	if (o.dry_run) {
		/* --dry-run is the planner: the same decisions as `hrsync plan`, as a table. */
		int prc = plan_run(cfg, &o, false);
		config_free(cfg);
		free(o.only);
		return prc;
	}
	struct run_result res;
	int rc = sync_run(cfg, &o, &res);
	metrics_write(cfg, &res); /* it logs why when it cannot */
	run_result_free(&res);
	config_free(cfg);
	free(o.only);
	return rc;
}
