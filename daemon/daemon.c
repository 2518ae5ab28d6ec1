/*
 * daemon — `hrsync daemon`. (Being built: issue #5.)
 */
#include <stdio.h>

#include "cli.h"

int cmd_daemon(const struct globals *g, int argc, char **argv)
{
	(void)g, (void)argc, (void)argv;
	fprintf(stderr, "hrsync daemon: not available in this build yet\n");
	return 2;
}
