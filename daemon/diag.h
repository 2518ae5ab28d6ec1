/*
 * diag — problems found while reading configuration and mapping files, collected so
 * that one `check` reports every problem in every file, compiler-style:
 *   mappings/peopleforce/employees.yaml:14:9: field 'hired_on': unknown rule 'fromm' (did you mean 'from'?)
 * Messages are kept in the order found; diag_print() writes them sorted by file and position.
 */
#ifndef HRSYNC_DIAG_H
#define HRSYNC_DIAG_H

#include <stdio.h>

#include "util.h"

struct diag_msg {
	char *file;
	int line, col;
	int is_error;
	char *text;
};

struct diag {
	struct diag_msg *msgs;
	size_t n, cap;
	int errors, warnings;
};

void diag_error(struct diag *d, const char *file, int line, int col, const char *fmt, ...) PRINTF_LIKE(5, 6);
void diag_warn(struct diag *d, const char *file, int line, int col, const char *fmt, ...) PRINTF_LIKE(5, 6);
void diag_print(struct diag *d, FILE *out);
void diag_free(struct diag *d);
/* The closest of candidates to word, or NULL when none is close enough for a "did you mean". */
const char *diag_suggest(const char *word, const char *const *candidates, size_t n);

#endif
