/*
 * state — hrsync's own tables in the state schema (SPEC §7): runs and their per-mapping
 * counts, the link between each ERP key and its platform id with the fingerprint of
 * the payload the platform last accepted, failures with reasons and attempts, pull
 * cursors. Created and upgraded by state_migrate(); one run at a time per schema
 * through a session advisory lock (released by PostgreSQL if the process dies).
 *
 * Every write is its own transaction and happens only after the platform confirmed:
 * a run killed at any instant leaves state that is true, if behind.
 * All SQL is parameterised; the schema name is quoted once.
 */
#ifndef HRSYNC_STATE_H
#define HRSYNC_STATE_H

#include <libpq-fe.h>
#include <stdbool.h>

#include "config.h"
#include "json.h"

struct state {
	PGconn *pg;
	char *schema_q;
	char *err;        /* the last error, for messages */
	bool broken;      /* the connection failed: stop writing */
};

struct counts {
	long long rows;
	long created, updated, terminated, unchanged, skipped, failed, deferred;
	long requests, throttled;
	double seconds;
};

struct failure {
	const char *kind;     /* mapping | deferred | refused | transient */
	const char *action;
	const char *field, *rule, *reason;
	long http_status;
	const char *fp_hex;
};

bool state_connect(struct state *s, const struct config *cfg, char **err);
void state_close(struct state *s);
#define STATE_VERSION 3
bool state_migrate(struct state *s, char **err);
/* 1: the state schema is there at this version; 0: not created yet; -1: error (or newer). */
int state_exists(struct state *s, char **err);
/* 1: locked; 0: another run holds it; -1: error. */
int state_lock(struct state *s, char **err);
long long state_run_begin(struct state *s, const char *command, bool dry_run);
bool state_run_end(struct state *s, long long run, int exit_code, const char *message);
bool state_run_mapping(struct state *s, long long run, const char *mapping, const struct counts *c,
		       const char *mapping_hash);

bool state_link_put(struct state *s, const char *mapping, const char *key, const char *platform_id,
		    const char *status, const char *fp_hex, const struct jv *payload, const struct jv *extra,
		    const char *nir_hash_hex, const char *src_hash, long long run);
/* Remember the source hash of records found unchanged (keys and hashes as JSON arrays of text). */
bool state_src_hashes(struct state *s, const char *mapping, const char *keys_json, const char *hashes_json);
bool state_link_status(struct state *s, const char *mapping, const char *key, const char *status, long long run);
/* The last accepted payload of a record (NULL when none). */
struct jv *state_link_payload(struct state *s, const char *mapping, const char *key);
/* platform id and status of an ERP key's link; false when not linked. Caller frees. */
bool state_link_find(struct state *s, const char *mapping, const char *key, char **platform_id, char **status);
bool state_link_by_nir(struct state *s, const char *mapping, const char *nir_hash_hex, char **platform_id);
bool state_link_by_platform_id(struct state *s, const char *mapping, const char *platform_id, char **key);
long long state_active_links(struct state *s, const char *mapping);
/* Rows the mapping's source had in its last completed run; -1 when never run. */
long long state_last_rows(struct state *s, const char *mapping);

bool state_failure_put(struct state *s, const char *mapping, const char *key, const struct failure *f, long long run);
bool state_failure_clear(struct state *s, const char *mapping, const char *key);

/* Hex SHA-256 of a normalised NIR, as kept in links for ssn: references. */
void nir_hash_hex(const char nir[16], char out[65]);

#endif
