/*
 * secret — tokens, client secrets and passwords live only in a struct secret.
 * There is no printer for it: code that logs a config or a request cannot reach the
 * value by accident. secret_value() is called only where the value is put on the wire
 * (an Authorization header, a libpq password). secret_free() wipes the memory.
 *
 * Every value loaded is also remembered, while it lives, in a registry: secret_redact()
 * takes those values, and what looks like a credential (an Authorization or X-API-KEY
 * header, a bearer token), out of text a platform sent before it reaches a log line or
 * the state. A platform that echoes the key it received (a 422 quoting the request's
 * headers) must not write that key into failures.reason.
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
/* A value that did not come from the configuration (a bearer token a platform issued); origin is printable. */
void secret_set(struct secret *s, const char *value, const char *origin);

/*
 * Remove every live secret value from text, in place, and the values of credential
 * patterns: "Authorization: …", "X-API-KEY: …", "api_key=…", "client_secret=…",
 * "access_token": "…", "Bearer …". Each becomes "***"; the text never grows. Values shorter
 * than SECRET_REDACT_MIN are not registered (they would blank ordinary words). NULL is a no-op.
 */
#define SECRET_REDACT_MIN 4
void secret_redact(char *text);

#endif
