/*
 * report — `hrsync status`, `failures`, `retry`: what the state schema says. (Being built: issue #5.)
 */
#include <stdio.h>

#include "cli.h"

static int not_yet(const char *what)
{
	fprintf(stderr, "hrsync %s: not available in this build yet\n", what);
	return 2;
}

int cmd_status(const struct globals *g, int argc, char **argv)
{
	(void)g, (void)argc, (void)argv;
	return not_yet("status");
}

int cmd_failures(const struct globals *g, int argc, char **argv)
{
	(void)g, (void)argc, (void)argv;
	return not_yet("failures");
}

int cmd_retry(const struct globals *g, int argc, char **argv)
{
	(void)g, (void)argc, (void)argv;
	return not_yet("retry");
}
