/*
 * config — see config.h.
 */
#define _GNU_SOURCE
#include "config.h"

#include <arpa/inet.h>
#include <glob.h>
#include <libpq-fe.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ref.h"
#include "schedule.h"
#include "throttle.h"

static const char *const top_keys[] = {"database", "schedule", "timezone", "connectors", "mappings",
				       "guards", "logging", "metrics", "run_until"};
static const char *const db_keys[] = {"conninfo", "password_file", "state_schema", "inbound_schemas",
				      "source_conninfo", "source_password_file", "statement_timeout"};
/* Where pull mappings write when database.inbound_schemas is not set: the shipped mappings' schema. */
static const char *const default_inbound[] = {"erp_inbound"};
#define DEFAULT_STATEMENT_TIMEOUT_MS (10 * 60 * 1000)
static const char *const common_conn_keys[] = {"type", "base_url", "rate_limit", "max_in_flight", "timeout",
					       "max_wait", "allow_insecure_http"};

#define ERR(n, ...) diag_error(d, (n) ? (n)->file : c->path, (n) ? (n)->line : 0, (n) ? (n)->col : 0, __VA_ARGS__)
#define WARN(n, ...) diag_warn(d, (n) ? (n)->file : c->path, (n) ? (n)->line : 0, (n) ? (n)->col : 0, __VA_ARGS__)

static const char *suggest(const char *w, const char *const *list, size_t n)
{
	static char buf[128];
	const char *s = diag_suggest(w, list, n);
	if (!s)
		return "";
	snprintf(buf, sizeof buf, " (did you mean '%s'?)", s);
	return buf;
}

/* A connector option's value of a checked kind: a UUID, or one of its choices. */
static void option_value_check(const struct config *c, struct diag *d, const struct ynode *v, const char *what,
			       const struct conn_option *o, const char *value)
{
	if (!value)
		return;
	if (o->kind == OPT_UUID && !uuid_valid(value))
		ERR(v, "%s: expected a UUID (8-4-4-4-12 hexadecimal digits), e.g. 7d4c1b0e-2f3a-4b5c-8d6e-9f0a1b2c3d4e", what);
	if (o->choices) {
		size_t n = 0;
		bool ok = false;
		while (o->choices[n])
			ok |= streq(o->choices[n++], value);
		if (!ok)
			ERR(v, "%s: unknown value '%s'%s", what, value, suggest(value, o->choices, n));
	}
}

/*
 * A string option. "${NAME}" is replaced by the environment variable NAME (systemd's
 * Environment= and EnvironmentFile= set them); an unset variable is an error.
 */
static char *scalar(struct config *c, struct diag *d, const struct ynode *n, const char *what)
{
	if (!n)
		return NULL;
	if (n->type != YN_SCALAR || yscalar_kind(n) == YS_NULL) {
		ERR(n, "%s: expected a string, found %s", what, ynode_type_name(n));
		return NULL;
	}
	struct sb b = {0};
	sb_puts(&b, "");
	for (const char *p = n->str; *p;) {
		const char *end;
		if (p[0] == '$' && p[1] == '{' && (end = strchr(p + 2, '}'))) {
			char *name = xstrndup(p + 2, (size_t)(end - p - 2));
			const char *v = getenv(name);
			if (!v) {
				ERR(n, "%s: environment variable %s is not set", what, name);
				free(name);
				sb_free(&b);
				return NULL;
			}
			sb_puts(&b, v);
			free(name);
			p = end + 1;
			continue;
		}
		sb_putc(&b, *p++);
	}
	return sb_steal(&b);
}

static bool valid_ident(const char *s)
{
	if (!s || !*s || strlen(s) > 63)
		return false;
	if (!(s[0] == '_' || (s[0] >= 'a' && s[0] <= 'z')))
		return false;
	for (const char *p = s; *p; p++)
		if (!(*p == '_' || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9')))
			return false;
	return true;
}

static void load_password(struct config *c, struct diag *d, const struct ynode *pf, struct secret *out,
			  const char *what)
{
	if (!pf)
		return;
	char *p = scalar(c, d, pf, what);
	if (p) {
		char *full = path_join(c->dir, p);
		secret_load_file(out, full, what, d, pf);
		free(full);
		free(p);
	}
}

/*
 * database.inbound_schemas: the only schemas a pull mapping may write to. Absent, the shipped
 * mappings' erp_inbound, so that a configuration written before the key keeps working; a pull
 * target elsewhere is then refused with the key to add (config_pull_target_refused).
 */
static void load_inbound_schemas(struct config *c, struct diag *d, const struct ynode *n)
{
	if (!n) {
		c->inbound_default = true;
		c->ninbound = ARRAY_LEN(default_inbound);
		c->inbound_schemas = xcalloc(c->ninbound + 1, sizeof *c->inbound_schemas);
		for (size_t i = 0; i < c->ninbound; i++)
			c->inbound_schemas[i] = xstrdup(default_inbound[i]);
		return;
	}
	if (n->type != YN_SEQ) {
		ERR(n, "database inbound_schemas: expected a list of schema names, such as [erp_inbound]");
		return;
	}
	c->inbound_schemas = xcalloc(n->n + 1, sizeof *c->inbound_schemas);
	for (size_t i = 0; i < n->n; i++) {
		const struct ynode *v = n->vals[i];
		char *s = scalar(c, d, v, "database inbound_schemas");
		if (!s)
			continue;
		if (!*s || strlen(s) > 63 || strchr(s, '.') || strchr(s, '"')) {
			ERR(v, "database inbound_schemas: '%s' is not a schema name", s);
			free(s);
		} else if (c->state_schema && streq(s, c->state_schema)) {
			ERR(v, "database inbound_schemas: '%s' is the state schema; hrsync's own tables cannot be a pull target", s);
			free(s);
		} else {
			c->inbound_schemas[c->ninbound++] = s;
		}
	}
}

static void load_database(struct config *c, struct diag *d, const struct ynode *n)
{
	if (!n) {
		ERR(c->doc->root, "missing 'database:' (conninfo and state_schema)");
		return;
	}
	if (n->type != YN_MAP) {
		ERR(n, "database: expected a map, found %s", ynode_type_name(n));
		return;
	}
	for (size_t i = 0; i < n->n; i++) {
		const char *k = n->keys[i]->str;
		bool known = false;
		for (size_t j = 0; j < ARRAY_LEN(db_keys); j++)
			known |= streq(k, db_keys[j]);
		if (!known)
			ERR(n->keys[i], "database: unknown key '%s'%s", k, suggest(k, db_keys, ARRAY_LEN(db_keys)));
	}
	c->conninfo = scalar(c, d, ymap_get(n, "conninfo"), "database conninfo");
	if (!ymap_get(n, "conninfo"))
		ERR(n, "database: needs conninfo (a libpq connection string or URI)");
	load_password(c, d, ymap_get(n, "password_file"), &c->db_password, "database password_file");
	const struct ynode *sc = ymap_get(n, "source_conninfo");
	c->source_conninfo = sc ? scalar(c, d, sc, "database source_conninfo") : NULL;
	const struct ynode *spf = ymap_get(n, "source_password_file");
	if (spf && !sc)
		ERR(spf, "database source_password_file: is the password of source_conninfo, which is not set");
	load_password(c, d, spf, &c->source_password, "database source_password_file");
	const struct ynode *ss = ymap_get(n, "state_schema");
	c->state_schema = ss ? scalar(c, d, ss, "database state_schema") : xstrdup("hrsync");
	if (c->state_schema && !valid_ident(c->state_schema))
		ERR(ss, "database state_schema: '%s' must be a lower-case SQL name (letters, digits, _)",
		    c->state_schema);
	load_inbound_schemas(c, d, ymap_get(n, "inbound_schemas"));
	c->statement_timeout_ms = DEFAULT_STATEMENT_TIMEOUT_MS;
	const struct ynode *st = ymap_get(n, "statement_timeout");
	int64_t ms;
	if (st && (st->type != YN_SCALAR || !parse_duration_ms(st->str, &ms) || ms < 1000))
		ERR(st, "database statement_timeout: expected a duration such as 10min, 2h or 90s (at least 1s)");
	else if (st)
		c->statement_timeout_ms = ms;
}

/* ---- issue 19: plain http only to this machine; who may write the files hrsync reads ---- */

bool config_url_is_loopback(const char *url)
{
	const char *p = strstr(url, "://");
	if (!p)
		return false;
	p += 3;
	char *host = xstrndup(p, strcspn(p, "/?#"));
	bool ok = false;
	/* User info, percent-encoding or a backslash: hosts spelt in ways parsers disagree on. */
	if (strpbrk(host, "@%\\")) {
		ok = false;
	} else if (host[0] == '[') {
		char *end = strchr(host, ']');
		struct in6_addr a6;
		if (end && (!end[1] || (end[1] == ':' && end[2] && strspn(end + 2, "0123456789") == strlen(end + 2)))) {
			*end = '\0';
			ok = inet_pton(AF_INET6, host + 1, &a6) == 1 && IN6_IS_ADDR_LOOPBACK(&a6);
		}
	} else {
		char *colon = strchr(host, ':');
		struct in_addr a4;
		if (colon && (!colon[1] || strspn(colon + 1, "0123456789") != strlen(colon + 1)))
			goto out;
		if (colon)
			*colon = '\0';
		if (strcasecmp(host, "localhost") == 0)
			ok = true;
		else if (inet_pton(AF_INET, host, &a4) == 1)
			ok = (ntohl(a4.s_addr) >> 24) == 127;
	}
out:
	free(host);
	return ok;
}

/*
 * allow_insecure_http lets a connector talk plain http, credentials included: only to a
 * sandbox on this machine. Elsewhere it is an error, whatever the base_url's scheme (curl's
 * allowed protocols follow it: http,https with it, https alone without).
 */
static void check_insecure_http(struct config *c, struct diag *d, const struct conn_cfg *cc, const struct ynode *n)
{
	if (!cc->allow_insecure_http || !cc->base_url)
		return;
	if (!str_has_prefix(cc->base_url, "http://") && !str_has_prefix(cc->base_url, "https://"))
		return;   /* refused already for its scheme */
	if (!config_url_is_loopback(cc->base_url))
		ERR(ymap_get(n, "allow_insecure_http"),
		    "connector '%s': allow_insecure_http is only for a sandbox on this machine (a base_url on localhost, "
		    "127.0.0.0/8 or [::1]); remove it and use https://",
		    cc->name);
}

void config_log_insecure(const struct config *c)
{
	for (size_t i = 0; i < c->nconns; i++)
		if (c->conns[i].allow_insecure_http)
			log_warn("connector '%s': allow_insecure_http: requests to %s may go over plain http, credentials "
				 "included (for a sandbox on this machine only)",
				 c->conns[i].name, c->conns[i].base_url ? c->conns[i].base_url : "?");
}

/* The octal mode the messages show (0666, 1777). */
static unsigned shown_mode(mode_t m)
{
	return (unsigned)(m & 07777);
}

/*
 * Does the conninfo written in the file (before ${NAME} expansion) hold a password? A
 * password given as ${NAME} comes from the environment, not from the file.
 */
static bool conninfo_has_password(const char *raw)
{
	char *err = NULL;
	PQconninfoOption *opts = PQconninfoParse(raw, &err);
	PQfreemem(err);
	bool found = false;
	for (PQconninfoOption *o = opts; o && o->keyword; o++)
		if (streq(o->keyword, "password") && o->val && *o->val && !strstr(o->val, "${"))
			found = true;
	PQconninfoFree(opts);
	return found;
}

/*
 * The config file: writable by others is refused (yfile_read), by its group a warning; a
 * password inline in conninfo, in a file others may read, a warning naming password_file.
 */
static void check_config_file(struct config *c, struct diag *d)
{
	struct stat st;
	if (stat(c->path, &st) != 0)
		return;
	if ((st.st_mode & S_IWGRP) && !(st.st_mode & S_IWOTH))
		diag_warn(d, c->path, 0, 0,
			  "writable by its group (mode %04o): whoever is in it can change what hrsync sends, and where; "
			  "run: chmod g-w %s",
			  shown_mode(st.st_mode), c->path);
	const struct ynode *ci = ymap_get(ymap_get(c->doc->root, "database"), "conninfo");
	if (ci && ci->type == YN_SCALAR && (st.st_mode & S_IROTH) && conninfo_has_password(ci->str))
		WARN(ci,
		     "database conninfo: holds a password, in a file others may read (mode %04o); move it to a file of "
		     "its own named by password_file: (mode 0600, or systemd's LoadCredential=), or run: chmod o-r %s",
		     shown_mode(st.st_mode), c->path);
}

/*
 * A folder others may write to lets them add or replace the files hrsync reads there:
 * mapping folders are refused (a glob would pick up their files); the config's folder is
 * refused unless sticky (others may then add files but not replace the config).
 */
static void check_folder(struct diag *d, const char *dir, bool mappings)
{
	struct stat st;
	if (stat(dir, &st) != 0 || !(st.st_mode & S_IWOTH) || (!mappings && (st.st_mode & S_ISVTX)))
		return;
	diag_error(d, dir, 0, 0,
		   "this folder is writable by others (mode %04o): anyone on this machine could add or replace the %s "
		   "hrsync reads there; run: chmod o-w %s",
		   shown_mode(st.st_mode), mappings ? "mapping files" : "configuration", dir);
}

static void check_file_modes(struct config *c, struct diag *d)
{
	check_config_file(c, d);
	check_folder(d, c->dir, false);
	char **seen = xcalloc(c->nmaps + 1, sizeof *seen);
	size_t nseen = 0;
	for (size_t i = 0; i < c->nmaps; i++) {
		char *dir = path_dirname(c->maps[i]->file);
		bool again = false;
		for (size_t k = 0; k < nseen; k++)
			again |= streq(seen[k], dir);
		if (again) {
			free(dir);
			continue;
		}
		check_folder(d, dir, true);
		seen[nseen++] = dir;
	}
	for (size_t k = 0; k < nseen; k++)
		free(seen[k]);
	free(seen);
}

static void load_connector(struct config *c, struct diag *d, struct conn_cfg *cc, const struct ynode *key,
			   const struct ynode *n)
{
	cc->name = xstrdup(key->str);
	cc->file = key->file;
	cc->line = key->line;
	cc->col = key->col;
	cc->max_in_flight = 4;
	cc->timeout_ms = 30000;
	if (n->type != YN_MAP) {
		ERR(n, "connector '%s': expected a map with type and base_url, found %s", cc->name, ynode_type_name(n));
		return;
	}
	const struct ynode *t = ymap_get(n, "type");
	if (!t) {
		struct sb known = {0};
		for (const char *const *tn = connector_type_names(); *tn; tn++)
			sb_printf(&known, "%s%s", known.len ? ", " : "", *tn);
		ERR(key, "connector '%s': needs 'type:' (%s)", cc->name, sb_str(&known));
		sb_free(&known);
		return;
	}
	cc->type = t->type == YN_SCALAR ? connector_type_find(t->str) : NULL;
	if (!cc->type) {
		const char *const *names = connector_type_names();
		size_t nn = 0;
		while (names[nn])
			nn++;
		ERR(t, "connector '%s': unknown type '%s'%s", cc->name, t->type == YN_SCALAR ? t->str : "?",
		    t->type == YN_SCALAR ? suggest(t->str, names, nn) : "");
		return;
	}
	const struct connector_type *ty = cc->type;
	size_t nopt = 0;
	while (ty->options && ty->options[nopt].name)
		nopt++;
	cc->secrets = xcalloc(nopt + 1, sizeof *cc->secrets);
	cc->strings = xcalloc(nopt + 1, sizeof *cc->strings);
	/* Known keys: the common ones and the type's own. */
	const char **known = xcalloc(ARRAY_LEN(common_conn_keys) + nopt + 1, sizeof *known);
	size_t nk = 0;
	for (size_t i = 0; i < ARRAY_LEN(common_conn_keys); i++)
		known[nk++] = common_conn_keys[i];
	for (size_t i = 0; i < nopt; i++)
		known[nk++] = ty->options[i].name;
	char what[128];
	for (size_t i = 0; i < n->n; i++) {
		const char *k = n->keys[i]->str;
		const struct ynode *v = n->vals[i];
		snprintf(what, sizeof what, "connector '%s': %s", cc->name, k);
		int oi = connector_option_index(ty, k);
		if (oi >= 0) {
			if (ty->options[oi].kind == OPT_SECRET)
				secret_load(&cc->secrets[oi], v, c->dir, what, d);
			else
				cc->strings[oi] = scalar(c, d, v, what);
			option_value_check(c, d, v, what, &ty->options[oi], cc->strings[oi]);
			continue;
		}
		if (streq(k, "type"))
			continue;
		if (streq(k, "base_url")) {
			cc->base_url = scalar(c, d, v, what);
		} else if (streq(k, "rate_limit")) {
			if (v->type != YN_SCALAR || !parse_rate(v->str, &cc->rate))
				ERR(v, "%s: expected N/s, N/min or N/h (e.g. 60/min)", what);
		} else if (streq(k, "max_in_flight")) {
			long long m;
			if (yscalar_kind(v) != YS_INT || !parse_ll(v->str, &m) || m < 1 || m > 64)
				ERR(v, "%s: expected a whole number from 1 to 64", what);
			else
				cc->max_in_flight = (int)m;
		} else if (streq(k, "timeout")) {
			int64_t ms;
			if (v->type != YN_SCALAR || !parse_duration_ms(v->str, &ms) || ms < 100)
				ERR(v, "%s: expected a duration such as 30s or 500ms (at least 100ms)", what);
			else
				cc->timeout_ms = (long)ms;
		} else if (streq(k, "max_wait")) {
			int64_t ms;
			if (v->type != YN_SCALAR || !parse_duration_ms(v->str, &ms) || ms < 1000 || ms > 86400000)
				ERR(v, "%s: expected a duration such as 15m or 90s (from 1s to 24h)", what);
			else
				cc->max_wait_ms = (long)ms;
		} else if (streq(k, "allow_insecure_http")) {
			if (!yscalar_bool(v, &cc->allow_insecure_http))
				ERR(v, "%s: expected true or false", what);
		} else {
			ERR(n->keys[i], "connector '%s': unknown key '%s'%s", cc->name, k, suggest(k, known, nk));
		}
	}
	free(known);
	for (size_t i = 0; i < nopt; i++)
		if (ty->options[i].required && !ymap_get(n, ty->options[i].name))
			ERR(key, "connector '%s': needs '%s:' (%s)", cc->name, ty->options[i].name, ty->options[i].help);
	if (!cc->base_url) {
		if (!ymap_get(n, "base_url"))
			ERR(key, "connector '%s': needs 'base_url:'", cc->name);
	} else if (str_has_prefix(cc->base_url, "http://")) {
		if (!cc->allow_insecure_http)
			ERR(ymap_get(n, "base_url"),
			    "connector '%s': base_url uses http://, which would send credentials in clear; use https:// or set allow_insecure_http: true (sandboxes only)",
			    cc->name);
	} else if (!str_has_prefix(cc->base_url, "https://")) {
		ERR(ymap_get(n, "base_url"), "connector '%s': base_url must start with https://", cc->name);
	}
	if (cc->base_url) {
		size_t l = strlen(cc->base_url);
		while (l > 0 && cc->base_url[l - 1] == '/')
			cc->base_url[--l] = '\0';
	}
	check_insecure_http(c, d, cc, n);
}

static void add_mapping_file(struct config *c, struct diag *d, const char *path)
{
	for (size_t i = 0; i < c->nmaps; i++)
		if (streq(c->maps[i]->file, path))
			return;
	struct mapping *m = mapping_load(path, d);
	if (!m)
		return;
	c->maps = xrealloc(c->maps, (c->nmaps + 1) * sizeof *c->maps);
	c->maps[c->nmaps++] = m;
}

static void load_mappings(struct config *c, struct diag *d, const struct ynode *n)
{
	if (!n) {
		ERR(c->doc->root, "missing 'mappings:' (files or globs of mapping files)");
		return;
	}
	size_t cnt = n->type == YN_SEQ ? n->n : 1;
	for (size_t i = 0; i < cnt; i++) {
		const struct ynode *e = n->type == YN_SEQ ? n->vals[i] : n;
		if (e->type != YN_SCALAR) {
			ERR(e, "mappings: expected file names or globs, found %s", ynode_type_name(e));
			continue;
		}
		char *pattern = path_join(c->dir, e->str);
		glob_t g;
		int rc = glob(pattern, GLOB_ERR, NULL, &g);
		if (rc == GLOB_NOMATCH || (rc == 0 && g.gl_pathc == 0)) {
			if (strpbrk(e->str, "*?["))
				WARN(e, "mappings: '%s' matches no file", e->str);
			else
				ERR(e, "mappings: no such file '%s'", e->str);
		} else if (rc != 0) {
			char *dir = path_dirname(pattern);
			struct stat st;
			if (stat(dir, &st) != 0)
				ERR(e, "mappings: no folder '%s'", dir);
			else
				ERR(e, "mappings: cannot read '%s'", e->str);
			free(dir);
		} else {
			for (size_t j = 0; j < g.gl_pathc; j++) {
				char *norm = path_normalize(g.gl_pathv[j]);
				add_mapping_file(c, d, norm);
				free(norm);
			}
		}
		if (rc == 0 || rc == GLOB_NOMATCH)
			globfree(&g);
		free(pattern);
	}
}

const struct conn_cfg *config_connector(const struct config *c, const char *name)
{
	for (size_t i = 0; i < c->nconns; i++)
		if (streq(c->conns[i].name, name))
			return &c->conns[i];
	return NULL;
}

struct mapping *config_mapping(const struct config *c, const char *name)
{
	for (size_t i = 0; i < c->nmaps; i++)
		if (streq(c->maps[i]->name, name))
			return c->maps[i];
	return NULL;
}

struct mapping *config_ref_target(const struct config *c, const struct mapping *m, const struct field *f)
{
	if (f->ref_mapping)
		return config_mapping(c, f->ref_mapping);
	for (size_t i = 0; i < c->nmaps; i++)
		if (c->maps[i]->dir == DIR_PUSH && streq(c->maps[i]->entity, "employees") &&
		    streq(c->maps[i]->connector, m->connector))
			return c->maps[i];
	return NULL;
}

/* Field names against what the platform knows: a near miss is a typo; others, custom fields or errors. */
static void check_field_names(struct diag *d, const struct mapping *m, const struct field *f, size_t n, const char *prefix)
{
	const struct conn_entity *ent = m->ent;
	size_t nk = 0;
	while (ent->fields[nk])
		nk++;
	for (size_t i = 0; i < n; i++) {
		char *path = prefix ? xasprintf("%s.%s", prefix, f[i].name) : xstrdup(f[i].name);
		if (f[i].nested) {
			check_field_names(d, m, f[i].kids, f[i].nkids, path);
			free(path);
			continue;
		}
		bool known = false;
		for (size_t k = 0; k < nk; k++) {
			/* "group.*": the group's fields are the platform's to name (Workelo identifications) */
			size_t fl = strlen(ent->fields[k]);
			bool any = fl > 2 && streq(ent->fields[k] + fl - 2, ".*") && prefix &&
				   strlen(prefix) == fl - 2 && !strncmp(prefix, ent->fields[k], fl - 2);
			known |= any || streq(ent->fields[k], path);
		}
		if (!known) {
			const char *sug = diag_suggest(path, ent->fields, nk);
			bool custom_ok = ent->custom_fields && !prefix;
			if (sug)
				(custom_ok ? diag_warn : diag_error)(
					d, m->file, f[i].line, f[i].col, "field '%s': %s %s have no field '%s' (did you mean '%s'?)%s",
					path, m->conn->type->name, m->entity, path, sug,
					custom_ok ? "; if it is a custom field, ignore this" : "");
			else if (!custom_ok)
				diag_error(d, m->file, f[i].line, f[i].col, "field '%s': %s %s have no field '%s'", path,
					   m->conn->type->name, m->entity, path);
		}
		free(path);
	}
}

static void check_field_links(struct config *c, struct diag *d, struct mapping *m, const struct field *f, size_t n,
			      const struct conn_entity *nesting, const struct connector_type *ty)
{
	for (size_t i = 0; i < n; i++) {
		const struct field *x = &f[i];
		if (x->nested) {
			const char *takes = nesting && connector_entity_group(nesting, 0) ? connector_entity_group(nesting, 0) : "";
			if (!nesting || !connector_entity_nested(nesting, x->name))
				diag_error(d, m->file, x->line, x->col,
					   "field '%s': %s %s take no sub-resource '%s'%s%s", x->path, ty->name,
					   m->entity, x->name, *takes ? "; it takes: " : "", takes);
			check_field_links(c, d, m, x->kids, x->nkids, NULL, ty);
			continue;
		}
		if (x->src == VS_LOOKUP && x->lookup_resource) {
			size_t nr = 0;
			bool ok = false;
			for (; ty->resources && ty->resources[nr]; nr++)
				ok |= streq(ty->resources[nr], x->lookup_resource);
			if (!ok)
				diag_error(d, m->file, x->line, x->col, "field '%s': %s has no lookup resource '%s'%s",
					   x->path, ty->name, x->lookup_resource, suggest(x->lookup_resource, ty->resources, nr));
		}
		if (x->src == VS_REF) {
			bool erp = x->tpl.n && x->tpl.parts[0].lit && str_has_prefix(x->tpl.parts[0].lit, "erp:");
			bool ssn = x->tpl.n && x->tpl.parts[0].lit && str_has_prefix(x->tpl.parts[0].lit, "ssn:");
			if ((erp || ssn) && ty->native_refs) {
				/* The platform resolves the reference itself (Troops): a ref_mapping only orders the runs. */
				if (x->ref_mapping && !config_mapping(c, x->ref_mapping))
					diag_error(d, m->file, x->line, x->col, "field '%s': ref_mapping '%s' names no mapping",
						   x->path, x->ref_mapping);
			} else if (erp || ssn) {
				struct mapping *t = config_ref_target(c, m, x);
				if (!t && x->ref_mapping) {
					const char **names = xcalloc(c->nmaps + 1, sizeof *names);
					for (size_t q = 0; q < c->nmaps; q++)
						names[q] = c->maps[q]->name;
					diag_error(d, m->file, x->line, x->col, "field '%s': ref_mapping '%s' names no mapping%s",
						   x->path, x->ref_mapping, suggest(x->ref_mapping, names, c->nmaps));
					free(names);
				} else if (!t) {
					diag_error(d, m->file, x->line, x->col,
						   "field '%s': %s: references need an employees mapping of connector '%s' (or ref_mapping:)",
						   x->path, ssn ? "ssn" : "erp", m->connector);
				}
				else if (t == m && !x->ref_mapping)
					diag_error(d, m->file, x->line, x->col,
						   "field '%s': a reference into the same mapping names it: ref_mapping: %s",
						   x->path, m->name);
				else if (ssn && !t->has_ssn_field)
					diag_error(d, m->file, x->line, x->col,
						   "field '%s': ssn: references resolve through a field with 'check: nir' in mapping '%s', which has none",
						   x->path, t->name);
			}
		}
		if (x->ref_back && !config_mapping(c, x->ref_back))
			diag_error(d, m->file, x->line, x->col, "field '%s': ref_back '%s' names no mapping", x->path,
				   x->ref_back);
	}
}

const char *config_pull_target_refused(const struct config *c, const char *table, char *buf, size_t len)
{
	const char *dot = table ? strchr(table, '.') : NULL;
	size_t sl = dot ? (size_t)(dot - table) : 0;
	if (dot && c->state_schema && strlen(c->state_schema) == sl && !strncmp(table, c->state_schema, sl)) {
		snprintf(buf, len, "%s is hrsync's state schema: a pull mapping never writes hrsync's own tables",
			 c->state_schema);
		return buf;
	}
	struct sb list = {0};
	for (size_t i = 0; i < c->ninbound; i++) {
		if (dot && sl && strlen(c->inbound_schemas[i]) == sl && !strncmp(table, c->inbound_schemas[i], sl)) {
			sb_free(&list);
			return NULL;
		}
		sb_printf(&list, "%s%s", i ? ", " : "", c->inbound_schemas[i]);
	}
	bool set = !c->inbound_default;
	if (!dot || !sl)
		snprintf(buf, len, "name its schema (schema.table): pull mappings write only to database inbound_schemas "
				   "([%s]%s)", sb_str(&list), set ? "" : ", the default");
	else
		snprintf(buf, len, "schema %.*s is not an inbound schema (database inbound_schemas: [%s]%s); "
				   "add it there if hrsync may write to it", (int)sl, table, sb_str(&list),
			 set ? "" : ", the default");
	sb_free(&list);
	return buf;
}

/* A pull mapping writes only to an inbound schema of the mirror, never to the state (config.h). */
static void check_pull_target(struct config *c, struct diag *d, const struct mapping *m)
{
	if (!m->target_table)
		return;
	char why[512];
	if (!config_pull_target_refused(c, m->target_table, why, sizeof why))
		return;
	const struct ynode *t = ymap_get(m->doc->root, "target");
	const struct ynode *tn = ymap_get(t, "table");
	const struct ynode *at = tn ? tn : t ? t : m->doc->root;
	diag_error(d, m->file, at->line, at->col, "target table '%s': %s", m->target_table, why);
}

/* The mappings a mapping must come after: depends_on and the targets of its references. */
static void deps_of(struct config *c, struct mapping *m, struct mapping **out, size_t *n)
{
	*n = 0;
	for (size_t i = 0; i < m->ndeps; i++) {
		struct mapping *t = config_mapping(c, m->depends_on[i]);
		if (t && *n < c->nmaps)
			out[(*n)++] = t;
	}
	for (size_t i = 0; i < m->nfields; i++)
		if (m->fields[i].ref_back) {
			struct mapping *t = config_mapping(c, m->fields[i].ref_back);
			if (t && t != m && *n < c->nmaps)
				out[(*n)++] = t;
		}
	const struct field *lists[] = {m->fields, m->term_fields};
	size_t counts[] = {m->nfields, m->nterm};
	for (int l = 0; l < 2; l++)
		for (size_t i = 0; i < counts[l]; i++) {
			const struct field *f = &lists[l][i];
			for (size_t k = 0; k <= f->nkids; k++) {
				const struct field *x = f->nested ? (k < f->nkids ? &f->kids[k] : NULL) : (k == 0 ? f : NULL);
				if (!x || x->src != VS_REF)
					continue;
				struct mapping *t = config_ref_target(c, m, x);
				if (t && t != m && *n < c->nmaps)
					out[(*n)++] = t;
			}
		}
}

/* Does mapping i reach itself through the dependencies of the unplaced mappings? */
static bool on_cycle(struct config *c, size_t start, const bool *placed, struct mapping **scratch)
{
	size_t n = c->nmaps;
	bool *seen = xcalloc(n + 1, sizeof *seen);
	size_t *stack = xcalloc(n * 4 + 8, sizeof *stack), top = 0;
	bool found = false;
	stack[top++] = start;
	while (top && !found) {
		size_t cur = stack[--top];
		size_t nd;
		deps_of(c, c->maps[cur], scratch, &nd);
		for (size_t k = 0; k < nd && !found; k++)
			for (size_t j = 0; j < n; j++)
				if (c->maps[j] == scratch[k] && !placed[j]) {
					if (j == start)
						found = true;
					else if (!seen[j] && top < n * 4 + 8) {
						seen[j] = true;
						stack[top++] = j;
					}
				}
	}
	free(seen);
	free(stack);
	return found;
}

static void link_mappings(struct config *c, struct diag *d)
{
	for (size_t i = 0; i < c->nmaps; i++) {
		struct mapping *m = c->maps[i];
		for (size_t j = 0; j < i; j++)
			if (streq(c->maps[j]->name, m->name))
				diag_error(d, m->file, m->line, m->col, "mapping name '%s' is already used by %s", m->name,
					   c->maps[j]->file);
		for (size_t k = 0; k < m->ndeps; k++)
			if (!config_mapping(c, m->depends_on[k])) {
				const char **names = xcalloc(c->nmaps + 1, sizeof *names);
				for (size_t q = 0; q < c->nmaps; q++)
					names[q] = c->maps[q]->name;
				const struct ynode *dn = m->depends_node;
				diag_error(d, m->file, dn ? dn->line : 0, dn ? dn->col : 0,
					   "depends_on: no mapping named '%s'%s", m->depends_on[k],
					   suggest(m->depends_on[k], names, c->nmaps));
				free(names);
			}
		if (!m->connector)
			continue;
		m->conn = config_connector(c, m->connector);
		if (!m->conn) {
			const char **names = xcalloc(c->nconns + 1, sizeof *names);
			for (size_t k = 0; k < c->nconns; k++)
				names[k] = c->conns[k].name;
			const struct ynode *cn = ymap_get(m->doc->root, "connector");
			diag_error(d, m->file, cn ? cn->line : 0, cn ? cn->col : 0,
				   "connector '%s' is not configured in %s%s", m->connector, c->path,
				   suggest(m->connector, names, c->nconns));
			free(names);
			continue;
		}
		if (!m->conn->type || !m->entity)
			continue;
		const struct connector_type *ty = m->conn->type;
		const struct ynode *en = ymap_get(m->doc->root, "entity");
		if (m->dir == DIR_PULL) {
			size_t np = 0;
			bool ok = false;
			for (; ty->pull_entities && ty->pull_entities[np]; np++)
				ok |= streq(ty->pull_entities[np], m->entity);
			if (!ok)
				diag_error(d, m->file, en ? en->line : 0, en ? en->col : 0,
					   np ? "entity '%s': connector %s pulls only %s%s" : "entity '%s': connector %s pulls nothing",
					   m->entity, ty->name, np ? ty->pull_entities[0] : "", np > 1 ? " and others" : "");
			m->ent = connector_entity(ty, m->entity);
			check_pull_target(c, d, m);
			for (size_t k = 0; k < m->nfields; k++)
				if (m->fields[k].ref_back && !config_mapping(c, m->fields[k].ref_back))
					diag_error(d, m->file, m->fields[k].line, m->fields[k].col,
						   "field '%s': ref_back '%s' names no mapping", m->fields[k].path,
						   m->fields[k].ref_back);
			continue;
		}
		m->ent = connector_entity(ty, m->entity);
		if (!m->ent) {
			const char *names[32];
			size_t nn = 0;
			for (; ty->entities[nn].name && nn < 31; nn++)
				names[nn] = ty->entities[nn].name;
			struct sb list = {0};
			for (size_t k = 0; k < nn; k++)
				sb_printf(&list, "%s%s", k ? ", " : "", names[k]);
			diag_error(d, m->file, en ? en->line : 0, en ? en->col : 0,
				   "entity '%s': connector %s offers %s%s", m->entity, ty->name, sb_str(&list),
				   suggest(m->entity, names, nn));
			sb_free(&list);
			continue;
		}
		if (m->term_when && m->ent->term == TERM_NONE) {
			const struct ynode *tn = ymap_get(m->doc->root, "terminate");
			diag_error(d, m->file, tn ? tn->line : 0, tn ? tn->col : 0,
				   "terminate: %s %s cannot be terminated on the platform", ty->name, m->entity);
		}
		if (m->on_missing_terminate && m->ent->term == TERM_NONE) {
			const struct ynode *om = ymap_get(ymap_get(m->doc->root, "source"), "on_missing");
			diag_error(d, m->file, om ? om->line : m->line, om ? om->col : m->col,
				   "source on_missing: terminate: %s %s cannot be terminated", ty->name, m->entity);
		}
		check_field_links(c, d, m, m->fields, m->nfields, m->ent, ty);
		check_field_links(c, d, m, m->term_fields, m->nterm, NULL, ty);
		if (m->ent->fields) {
			check_field_names(d, m, m->fields, m->nfields, NULL);
			check_field_names(d, m, m->term_fields, m->nterm, "terminate");
		}
		for (size_t k = 0; m->ent->required && m->ent->required[k]; k++) {
			bool have = false;
			for (size_t q = 0; q < m->nfields; q++)
				have |= streq(m->fields[q].name, m->ent->required[k]);
			if (!have) {
				const struct ynode *fn = ymap_get(m->doc->root, "fields");
				diag_error(d, m->file, fn ? fn->line : m->line, fn ? fn->col : m->col,
					   "fields: %s needs '%s' to create %s; map it", ty->name, m->ent->required[k], m->entity);
			}
		}
	}
	/* Order: dependencies first (Kahn), keeping file order among equals; a cycle is an error. */
	size_t n = c->nmaps;
	struct mapping **order = xcalloc(n + 1, sizeof *order);
	bool *placed = xcalloc(n + 1, sizeof *placed);
	struct mapping **deps = xcalloc(n * 4 + 8, sizeof *deps);
	size_t done = 0;
	while (done < n) {
		bool progress = false;
		for (size_t i = 0; i < n; i++) {
			if (placed[i])
				continue;
			size_t nd;
			deps_of(c, c->maps[i], deps, &nd);
			bool ready = true;
			for (size_t k = 0; k < nd; k++)
				for (size_t j = 0; j < n; j++)
					if (c->maps[j] == deps[k] && !placed[j])
						ready = false;
			if (ready) {
				placed[i] = true;
				order[done++] = c->maps[i];
				progress = true;
			}
		}
		if (!progress) {
			/* Name only the mappings on a cycle, not those merely waiting behind one. */
			struct sb cyc = {0};
			const struct mapping *first = NULL;
			for (size_t i = 0; i < n; i++)
				if (!placed[i] && on_cycle(c, i, placed, deps)) {
					sb_printf(&cyc, "%s%s", cyc.len ? ", " : "", c->maps[i]->name);
					if (!first)
						first = c->maps[i];
				}
			for (size_t i = 0; i < n; i++)
				if (!placed[i]) {
					order[done++] = c->maps[i];
					placed[i] = true;
				}
			const struct ynode *at = first && first->depends_node ? first->depends_node : NULL;
			if (first)
				diag_error(d, first->file, at ? at->line : first->line, at ? at->col : first->col,
					   "depends_on: these mappings depend on each other in a cycle: %s", sb_str(&cyc));
			sb_free(&cyc);
		}
	}
	if (n)
		memcpy(c->maps, order, n * sizeof *order);
	free(order);
	free(placed);
	free(deps);
}

struct config *config_load(const char *path, struct diag *d)
{
	struct ydoc *doc = ydoc_load(path, d);
	if (!doc)
		return NULL;
	struct config *c = xcalloc(1, sizeof *c);
	c->path = xstrdup(path);
	c->dir = path_dirname(path);
	c->doc = doc;
	c->max_terminations = 0.05;
	c->log_level = L_INFO;
	c->log_format = LOGF_AUTO;
	const struct ynode *root = doc->root;
	if (!root || root->type != YN_MAP) {
		diag_error(d, path, 1, 1, "hrsync.yaml must be a map with database, connectors and mappings");
		return c;
	}
	for (size_t i = 0; i < root->n; i++) {
		const char *k = root->keys[i]->str;
		bool known = false;
		for (size_t j = 0; j < ARRAY_LEN(top_keys); j++)
			known |= streq(k, top_keys[j]);
		if (!known)
			ERR(root->keys[i], "unknown key '%s'%s", k, suggest(k, top_keys, ARRAY_LEN(top_keys)));
	}
	load_database(c, d, ymap_get(root, "database"));
	c->schedule = scalar(c, d, ymap_get(root, "schedule"), "schedule");
	if (c->schedule) {
		struct schedule sch;
		char serr[200];
		if (!schedule_parse(&sch, c->schedule, serr, sizeof serr))
			ERR(ymap_get(root, "schedule"), "schedule: %s", serr);
	}
	c->run_until = scalar(c, d, ymap_get(root, "run_until"), "run_until");
	if (c->run_until) {
		double end;
		char werr[200];
		if (!window_end(c->run_until, time(NULL), &end, werr, sizeof werr))
			ERR(ymap_get(root, "run_until"), "run_until: %s", werr);
	}
	const struct ynode *tz = ymap_get(root, "timezone");
	c->timezone = tz ? scalar(c, d, tz, "timezone") : NULL;
	if (c->timezone) {
		char *zf = xasprintf("/usr/share/zoneinfo/%s", c->timezone);
		struct stat st;
		if (strstr(c->timezone, "..") || stat(zf, &st) != 0 || !S_ISREG(st.st_mode))
			ERR(tz, "timezone: unknown time zone '%s' (expected a name such as Europe/Paris)", c->timezone);
		free(zf);
	}
	const struct ynode *conns = ymap_get(root, "connectors");
	if (!conns) {
		ERR(root, "missing 'connectors:'");
	} else if (conns->type != YN_MAP) {
		ERR(conns, "connectors: expected a map of name: { type: ..., base_url: ... }");
	} else {
		c->conns = xcalloc(conns->n + 1, sizeof *c->conns);
		c->nconns = conns->n;
		for (size_t i = 0; i < conns->n; i++)
			load_connector(c, d, &c->conns[i], conns->keys[i], conns->vals[i]);
	}
	const struct ynode *g = ymap_get(root, "guards");
	if (g) {
		const struct ynode *mt = ymap_get(g, "max_terminations");
		static const char *const gk[] = {"max_terminations"};
		if (g->type != YN_MAP)
			ERR(g, "guards: expected a map");
		else
			for (size_t i = 0; i < g->n; i++)
				if (!streq(g->keys[i]->str, "max_terminations"))
					ERR(g->keys[i], "guards: unknown key '%s'%s", g->keys[i]->str, suggest(g->keys[i]->str, gk, 1));
		if (mt) {
			char *end = NULL;
			double v = mt->type == YN_SCALAR ? strtod(mt->str, &end) : -1;
			if (!end || end == mt->str || !streq(end, "%") || v < 0 || v > 100)
				ERR(mt, "guards max_terminations: expected a percentage such as 5%%");
			else
				c->max_terminations = v / 100.0;
		}
	}
	const struct ynode *lg = ymap_get(root, "logging");
	if (lg) {
		const struct ynode *lv = ymap_get(lg, "level"), *lf = ymap_get(lg, "format");
		if (lv && !(lv->type == YN_SCALAR && log_parse_level(lv->str, &c->log_level)))
			ERR(lv, "logging level: expected error, warning, notice, info or debug");
		else if (lv)
			c->log_level_set = true;
		if (lf && !(lf->type == YN_SCALAR && log_parse_format(lf->str, &c->log_format)))
			ERR(lf, "logging format: expected auto, text, json or journal");
		else if (lf)
			c->log_format_set = true;
	}
	const struct ynode *mx = ymap_get(root, "metrics");
	if (mx)
		c->metrics_textfile = scalar(c, d, ymap_get(mx, "textfile"), "metrics textfile");
	load_mappings(c, d, ymap_get(root, "mappings"));
	link_mappings(c, d);
	check_file_modes(c, d);
	return c;
}

void config_free(struct config *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->nconns; i++) {
		struct conn_cfg *cc = &c->conns[i];
		size_t nopt = 0;
		while (cc->type && cc->type->options && cc->type->options[nopt].name)
			nopt++;
		for (size_t j = 0; j < nopt; j++) {
			if (cc->secrets)
				secret_free(&cc->secrets[j]);
			if (cc->strings)
				free(cc->strings[j]);
		}
		free(cc->secrets);
		free(cc->strings);
		free(cc->name);
		free(cc->base_url);
	}
	free(c->conns);
	for (size_t i = 0; i < c->nmaps; i++)
		mapping_free(c->maps[i]);
	free(c->maps);
	secret_free(&c->db_password);
	secret_free(&c->source_password);
	free(c->conninfo);
	free(c->source_conninfo);
	for (size_t i = 0; i < c->ninbound; i++)
		free(c->inbound_schemas[i]);
	free(c->inbound_schemas);
	free(c->state_schema);
	free(c->schedule);
	free(c->run_until);
	free(c->timezone);
	free(c->metrics_textfile);
	free(c->path);
	free(c->dir);
	ydoc_free(c->doc);
	free(c);
}
