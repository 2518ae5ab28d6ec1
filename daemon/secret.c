/*
 * secret — see secret.h.
 */
#define _GNU_SOURCE
#include "secret.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- the registry of live values ---- */

/* One value, however many struct secrets hold it; longest first, so that a secret holding
 * another is removed whole. */
struct live {
	char *v;
	size_t len;
	int refs;
};
static struct live *live;
static size_t nlive, caplive;

static void remember(const char *v, size_t n)
{
	if (n < SECRET_REDACT_MIN)
		return;
	size_t at = 0;
	for (; at < nlive && live[at].len >= n; at++)
		if (live[at].len == n && memcmp(live[at].v, v, n) == 0) {
			live[at].refs++;
			return;
		}
	grow(&live, &caplive, nlive + 1, sizeof *live);
	memmove(&live[at + 1], &live[at], (nlive - at) * sizeof *live);
	live[at] = (struct live){xstrndup(v, n), n, 1};
	nlive++;
}

static void forget(const char *v, size_t n)
{
	for (size_t i = 0; i < nlive; i++) {
		if (live[i].len != n || memcmp(live[i].v, v, n) != 0)
			continue;
		if (--live[i].refs > 0)
			return;
		explicit_bzero(live[i].v, n);
		free(live[i].v);
		memmove(&live[i], &live[i + 1], (nlive - i - 1) * sizeof *live);
		if (--nlive == 0) {
			free(live);
			live = NULL;
			caplive = 0;
		}
		return;
	}
}

static void set_value(struct secret *s, const char *v, size_t n)
{
	/* A trailing newline in a secret file is an editor's, not the secret's. */
	while (n && (v[n - 1] == '\n' || v[n - 1] == '\r'))
		n--;
	s->value_ = xstrndup(v, n);
	s->len_ = n;
	remember(s->value_, n);
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

void secret_set(struct secret *s, const char *value, const char *origin)
{
	secret_free(s);
	set_value(s, value, strlen(value));
	snprintf(s->origin, sizeof s->origin, "%s", origin);
}

void secret_free(struct secret *s)
{
	if (s->value_) {
		forget(s->value_, s->len_);
		explicit_bzero(s->value_, s->len_);
		free(s->value_);
	}
	s->value_ = NULL;
	s->len_ = 0;
}

/* ---- redaction ---- */

#define MASK "***"
#define PATTERN_MIN 8   /* a credential pattern's value shorter than this is a word, not a key */

/* Replace n bytes at text + at with "***" (n >= 3) or n stars: the text never grows. */
static size_t mask(char *text, size_t at, size_t n)
{
	size_t m = n < 3 ? n : 3;
	memset(text + at, '*', m);
	memmove(text + at + m, text + at + n, strlen(text + at + n) + 1);
	return m;
}

static bool word_char(char c)
{
	return isalnum((unsigned char)c) || c == '-' || c == '_';
}

static bool value_char(char c)
{
	return c && !isspace((unsigned char)c) && !strchr("\"',;&<>()[]{}\\", c);
}

static size_t skip_blanks(const char *p)
{
	size_t n = 0;
	while (p[n] == ' ' || p[n] == '\t')
		n++;
	return n;
}

/* The length of the name of a credential at p (a case-insensitive match), 0 when none. */
static size_t credential_name(const char *p)
{
	static const char *const names[] = {"authorization", "x-api-key", "api-key", "api_key", "apikey",
					    "client_secret", "access_token", "refresh_token", "bearer"};
	for (size_t i = 0; i < ARRAY_LEN(names); i++) {
		size_t n = strlen(names[i]);
		if (strncasecmp(p, names[i], n) == 0 && !word_char(p[n]))
			return n;
	}
	return 0;
}

/*
 * After a credential's name at text + at: the start of its value. "name: v", "name=v",
 * "\"name\": \"v\"", and an auth scheme before the value ("Authorization: Bearer v");
 * "Bearer v" alone. 0 when no value follows.
 */
static size_t value_start(const char *text, size_t at, size_t name)
{
	const char *p = text + at;
	size_t i = name;
	bool bearer = name == 6 && strncasecmp(p, "bearer", 6) == 0;
	if (!bearer) {
		if (p[i] == '"' || p[i] == '\'')
			i++;
		i += skip_blanks(p + i);
		if (p[i] != ':' && p[i] != '=')
			return 0;
		i++;
		i += skip_blanks(p + i);
		if (p[i] == '"' || p[i] == '\'')
			i++;
		static const char *const schemes[] = {"bearer ", "basic ", "token ", "digest "};
		for (size_t k = 0; k < ARRAY_LEN(schemes); k++)
			if (strncasecmp(p + i, schemes[k], strlen(schemes[k])) == 0) {
				i += strlen(schemes[k]);
				break;
			}
	} else if (p[i] != ' ' && p[i] != '\t') {
		return 0;
	}
	i += skip_blanks(p + i);
	return at + i;
}

void secret_redact(char *text)
{
	if (!text)
		return;
	for (size_t k = 0; k < nlive; k++)
		for (char *hit = strstr(text, live[k].v); hit; hit = strstr(hit, live[k].v))
			hit += mask(text, (size_t)(hit - text), live[k].len);
	for (size_t i = 0; text[i]; i++) {
		if (i > 0 && word_char(text[i - 1]))
			continue;
		size_t name = credential_name(text + i);
		size_t v = name ? value_start(text, i, name) : 0;
		if (!v)
			continue;
		size_t n = 0;
		while (value_char(text[v + n]))
			n++;
		if (n >= PATTERN_MIN && strncmp(text + v, MASK, n) != 0)
			mask(text, v, n);
		i = v;
	}
}
