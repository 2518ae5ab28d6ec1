/*
 * plan — `hrsync plan` and `hrsync preview`. (Being built: issue #3.)
 */
#include <stdio.h>

#include "cli.h"

int cmd_plan(const struct globals *g, int argc, char **argv)
{
	(void)g, (void)argc, (void)argv;
	fprintf(stderr, "hrsync plan: not available in this build yet\n");
	return 2;
}

int cmd_preview(const struct globals *g, int argc, char **argv)
{
	(void)g, (void)argc, (void)argv;
	fprintf(stderr, "hrsync preview: not available in this build yet\n");
	return 2;
}
