/*
 * config — hrsync.yaml (hrsync.yaml(5): docs/man/hrsync.yaml.5) and the mapping files it
 * names, loaded, checked and linked: each mapping to its connector and entity,
 * dependencies ordered.
 *
 * Each section's known keys are a list of names in config.c (top_keys, db_keys,
 * common_conn_keys, guards' own), used to report an unknown key with its "did you mean";
 * each option is then read and checked by its own code (load_database, load_connector...).
 * Only a connector type's own keys (token, client_id, client_secret) come from a table: the
 * type's conn_option list (connector.h: name, secret or string, required, help), which
 * decides how each is read, names a missing required one with its help, and joins the
 * known keys. The config owns the connectors' secrets; it never prints them.
 *
 * Who may write what hrsync reads: a config, mapping or code table file writable by others
 * is refused (yfile_read), and so is a mapping folder writable by others; a config writable
 * by its group, or holding a conninfo password while others may read it, is a warning.
 */
#ifndef HRSYNC_CONFIG_H
#define HRSYNC_CONFIG_H

#include <stdint.h>

#include "connector.h"
#include "diag.h"
#include "log.h"
#include "mapping.h"
#include "secret.h"

struct config {
	char *path, *dir;
	struct ydoc *doc;
	char *conninfo;             /* the state role's: state schema, inbound tables */
	struct secret db_password;
	char *source_conninfo;      /* the source role's (reads the mirror); NULL: conninfo */
	struct secret source_password;
	char *state_schema;
	char **inbound_schemas;     /* the schemas pull mappings may write to */
	size_t ninbound;
	bool inbound_default;       /* database.inbound_schemas is not set: the default list */
	int64_t statement_timeout_ms; /* of each statement on the mirror (where, terminate.when, query) */
	char *schedule, *timezone;
	char *run_until;            /* the run window's end for every run (schedule.h window_end); NULL: none */
	struct conn_cfg *conns;
	size_t nconns;
	struct mapping **maps;      /* in dependency order once linked */
	size_t nmaps;
	double max_terminations;    /* a fraction: 0.05 for 5% */
	int log_level;
	enum log_format log_format;
	bool log_level_set, log_format_set;
	char *metrics_textfile;
};

/* Load path and every mapping it names. Problems go to d. NULL when the config cannot be used at all. */
struct config *config_load(const char *path, struct diag *d);
void config_free(struct config *c);
const struct conn_cfg *config_connector(const struct config *c, const char *name);
struct mapping *config_mapping(const struct config *c, const char *name);
/*
 * May a pull mapping write to table ("schema.table")? NULL when it may, else why not (static text
 * or *buf): the table must be in one of database.inbound_schemas, never in the state schema.
 */
const char *config_pull_target_refused(const struct config *c, const char *table, char *buf, size_t len);
/* The mapping an erp: reference of field f in m resolves against (NULL when none). */
struct mapping *config_ref_target(const struct config *c, const struct mapping *m, const struct field *f);
/*
 * Is url's host this machine: localhost, 127.0.0.0/8 or [::1]? The only hosts
 * allow_insecure_http is accepted for (a URL with user info or percent-encoding in its host is not).
 */
bool config_url_is_loopback(const char *url);
/* At each run's start: a warning for each connector allowed plain http. */
void config_log_insecure(const struct config *c);

#endif
