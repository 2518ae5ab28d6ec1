/*
 * check — `hrsync check`: the config and every mapping file, every problem at once.
 */
#include <stdio.h>

#include "cli.h"

int cmd_check(const struct globals *g, int argc, char **argv)
{
	if (argc > 0) {
		fprintf(stderr, "hrsync check: unknown argument '%s'\n", argv[0]);
		return 2;
	}
	struct diag d = {0};
	struct config *cfg = config_load(g->config, &d);
	diag_print(&d, stderr);
	int rc = (!cfg || d.errors) ? 2 : 0;
	if (rc == 0)
		fprintf(stderr, "%s: %zu mapping(s), %zu connector(s): no errors%s\n", g->config, cfg->nmaps,
			cfg->nconns, d.warnings ? " (see the warnings above)" : "");
	else
		fprintf(stderr, "%s: %d error(s), %d warning(s)\n", g->config, d.errors ? d.errors : 1, d.warnings);
	diag_free(&d);
	config_free(cfg);
	return rc;
}
