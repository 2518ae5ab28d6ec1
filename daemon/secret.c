/*
 * secret — see secret.h.
 */
#define _GNU_SOURCE
#include "secret.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static void set_value(struct secret *s, const char *v, size_t n)
{
	/* A trailing newline in a secret file is an editor's, not the secret's. */
	while (n && (v[n - 1] == '\n' || v[n - 1] == '\r'))
		n--;
	s->value_ = xstrndup(v, n);
	s->len_ = n;
}

bool secret_load_file(struct secret *s, const char *path, const char *what, struct diag *d,
		      const struct ynode *at)
{
	const char *file = at ? at->file : NULL;
	int line = at ? at->line : 0, col = at ? at->col : 0;
	struct stat st;
	if (stat(path, &st) != 0) {
		diag_error(d, file, line, col, "%s: cannot read secret file %s: %s", what, path, strerror(errno));
		return false;
	}
	if (st.st_mode & (S_IRWXG | S_IRWXO)) {
		diag_error(d, file, line, col,
			   "%s: secret file %s is readable by group or others (mode %03o); run: chmod 600 %s",
			   what, path, (unsigned)(st.st_mode & 0777), path);
		return false;
	}
	size_t len;
	char *text = read_file(path, &len);
	if (!text) {
		diag_error(d, file, line, col, "%s: cannot read secret file %s: %s", what, path, strerror(errno));
		return false;
	}
	set_value(s, text, len);
	explicit_bzero(text, len);
	free(text);
	if (s->len_ == 0) {
		diag_error(d, file, line, col, "%s: secret file %s is empty", what, path);
		secret_free(s);
		return false;
	}
	return true;
}

bool secret_load(struct secret *s, const struct ynode *node, const char *basedir, const char *what,
		 struct diag *d)
{
	memset(s, 0, sizeof *s);
	if (!node)
		return false;
	if (node->type == YN_SCALAR) {
		diag_error(d, node->file, node->line, node->col,
			   "%s: secrets are not written inline; use { credential: NAME }, { file: PATH } or { env: NAME }",
			   what);
		return false;
	}
	if (node->type != YN_MAP || node->n != 1) {
		diag_error(d, node->file, node->line, node->col,
			   "%s: expected one of { credential: NAME }, { file: PATH }, { env: NAME }", what);
		return false;
	}
	const char *kind = node->keys[0]->str;
	const struct ynode *v = node->vals[0];
	if (v->type != YN_SCALAR || !v->len) {
		diag_error(d, v->file, v->line, v->col, "%s: %s needs a name", what, kind);
		return false;
	}
	if (streq(kind, "env")) {
		snprintf(s->origin, sizeof s->origin, "env %s", v->str);
		const char *val = getenv(v->str);
		if (!val || !*val) {
			diag_error(d, v->file, v->line, v->col, "%s: environment variable %s is not set", what, v->str);
			return false;
		}
		set_value(s, val, strlen(val));
		return true;
	}
	if (streq(kind, "credential")) {
		snprintf(s->origin, sizeof s->origin, "credential %s", v->str);
		if (strchr(v->str, '/')) {
			diag_error(d, v->file, v->line, v->col, "%s: a credential name cannot contain '/'", what);
			return false;
		}
		const char *dir = getenv("CREDENTIALS_DIRECTORY");
		if (!dir || !*dir) {
			diag_error(d, v->file, v->line, v->col,
				   "%s: credential '%s' needs $CREDENTIALS_DIRECTORY (set by systemd LoadCredential=)",
				   what, v->str);
			return false;
		}
		char *path = xasprintf("%s/%s", dir, v->str);
		bool ok = secret_load_file(s, path, what, d, v);
		free(path);
		return ok;
	}
	if (streq(kind, "file")) {
		snprintf(s->origin, sizeof s->origin, "file %s", v->str);
		char *path = path_join(basedir, v->str);
		bool ok = secret_load_file(s, path, what, d, v);
		free(path);
		return ok;
	}
	static const char *const kinds[] = {"credential", "file", "env"};
	const char *sug = diag_suggest(kind, kinds, 3);
	diag_error(d, node->keys[0]->file, node->keys[0]->line, node->keys[0]->col,
		   "%s: unknown secret source '%s'%s%s%s", what, kind, sug ? " (did you mean '" : "",
		   sug ? sug : "", sug ? "'?)" : "");
	return false;
}

bool secret_present(const struct secret *s)
{
	return s && s->value_ != NULL;
}

const char *secret_value(const struct secret *s)
{
	return s->value_;
}

void secret_free(struct secret *s)
{
	if (s->value_) {
		explicit_bzero(s->value_, s->len_);
		free(s->value_);
	}
	s->value_ = NULL;
	s->len_ = 0;
}
