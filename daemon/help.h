/*
 * help — each command's usage with every option explained: `hrsync help COMMAND`,
 * `hrsync COMMAND --help`, `hrsync COMMAND -h`. One table in help.c holds every command's
 * text; main() only asks it. The commands' own parsers never see --help.
 */
#ifndef HRSYNC_HELP_H
#define HRSYNC_HELP_H

#include <stdbool.h>
#include <stdio.h>

/* Whether one of the n arguments is -h or --help. */
bool help_asked(int n, char **args);

/* Print COMMAND's help on out; false (nothing printed) when there is no such command. */
bool help_print(const char *command, FILE *out);

/* The commands that have help, in the order of `hrsync --help`, NULL-terminated
 * (for the unit test and for listing them). */
const char *const *help_commands(void);

#endif
