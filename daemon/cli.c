/*
 * cli — see cli.h.
 */
#define _GNU_SOURCE
#include "cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "roles.h"
#include "sync.h"

struct config *cli_load_config(const struct globals *g)
{
	struct diag d = {0};
	struct config *cfg = config_load(g->config, &d);
	if (d.n)
		diag_print(&d, stderr);
	if (!cfg || d.errors) {
		fprintf(stderr, "hrsync: %d error(s) in the configuration; nothing was done\n", d.errors ? d.errors : 1);
		diag_free(&d);
		config_free(cfg);
		return NULL;
	}
	diag_free(&d);
	if (cfg->timezone) {
		setenv("TZ", cfg->timezone, 1);
		tzset();
	}
	log_setup(g->level_set ? g->level : cfg->log_level,
		  g->format_set ? g->format : cfg->log_format_set ? cfg->log_format : LOGF_AUTO);
	return cfg;
}

int cmd_db(const struct globals *g, int argc, char **argv)
{
	if (argc != 1 || !(streq(argv[0], "migrate") || streq(argv[0], "grants"))) {
		fprintf(stderr, "usage: hrsync db migrate | hrsync db grants\n");
		return 2;
	}
	struct config *cfg = cli_load_config(g);
	int rc = 2;
	if (cfg && streq(argv[0], "migrate")) {
		rc = sync_migrate(cfg);
	} else if (cfg) {
		roles_print_grants(cfg, stdout);
		rc = fflush(stdout) == 0 ? 0 : 3;
	}
	config_free(cfg);
	return rc;
}

