/*
 * secret — tokens, client secrets and passwords live only in a struct secret.
 * There is no printer for it: code that logs a config or a request cannot reach the
 * value by accident. secret_value() is called only where the value is put on the wire
 * (an Authorization header, a libpq password). secret_free() wipes the memory.
 *
 * Sources (hrsync.yaml(5), `connectors`): { credential: NAME } reads $CREDENTIALS_DIRECTORY/NAME,
 * { file: PATH } reads a file that must not be readable by group or others,
 * { env: NAME } reads an environment variable, then wipes it from the process's environment
 * (/proc/PID/environ included) and keeps the value for the process's later loads (the
 * daemon's reload). Inline strings are refused.
 */
#ifndef HRSYNC_SECRET_H
#define HRSYNC_SECRET_H

#include <stdbool.h>

#include "diag.h"
#include "yaml.h"

struct secret {
	char *value_;      /* never read this directly: use secret_value() */
	size_t len_;
	char origin[160];  /* "credential peopleforce-token", safe to print */
};

/* Load from a { credential | file | env } map; reports problems against node's position. */
bool secret_load(struct secret *s, const struct ynode *node, const char *basedir, const char *what,
		 struct diag *d);
/* Load from a file path (a password_file); same permission rule. */
bool secret_load_file(struct secret *s, const char *path, const char *what, struct diag *d,
		      const struct ynode *at);
bool secret_present(const struct secret *s);   /* false for NULL */
const char *secret_value(const struct secret *s);
void secret_free(struct secret *s);

#endif
