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
#include <unistd.h>

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

/*
 * { env: NAME } secrets, read once per process. Once read, the variable is wiped from the
 * environment: its bytes overwritten in place (/proc/PID/environ shows the block the process
 * started with, not environ[]) and then unset, so that neither /proc nor a child process
 * sees it. The value is kept here for the life of the process: the daemon's reload
 * (SIGHUP) reads the config again and finds it. A changed value needs a restart, as any
 * change of a service's environment does.
 */
struct env_secret {
	char *name;
	struct secret value;
};
static struct env_secret *env_secrets;
static size_t nenv_secrets, capenv_secrets;

static struct secret *env_secret_kept(const char *name)
{
	for (size_t i = 0; i < nenv_secrets; i++)
		if (streq(env_secrets[i].name, name))
			return &env_secrets[i].value;
	return NULL;
}

/* Keep the value of NAME, then wipe NAME from the environment (every copy of it). */
static void env_secret_take(const char *name, const char *val)
{
	struct secret *kept = env_secret_kept(name);
	if (!kept) {
		grow(&env_secrets, &capenv_secrets, nenv_secrets + 1, sizeof *env_secrets);
		env_secrets[nenv_secrets].name = xstrdup(name);
		kept = &env_secrets[nenv_secrets++].value;
		memset(kept, 0, sizeof *kept);
	}
	secret_free(kept);
	kept->value_ = xstrdup(val);
	kept->len_ = strlen(val);
	size_t nl = strlen(name);
	for (char **e = environ; e && *e; e++)
		if (strncmp(*e, name, nl) == 0 && (*e)[nl] == '=')
			explicit_bzero(*e + nl + 1, strlen(*e + nl + 1));
	unsetenv(name);
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
		if (val && *val)
			env_secret_take(v->str, val);
		const struct secret *kept = env_secret_kept(v->str);
		if (!kept) {
			diag_error(d, v->file, v->line, v->col, "%s: environment variable %s is not set", what, v->str);
			return false;
		}
		set_value(s, kept->value_, kept->len_);
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
