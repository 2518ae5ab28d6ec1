/*
 * pull — the pull direction (mappings/README.md §2.6, docs/design.md "Pull"): platform
 * records into an inbound table of the mirror, so the ERP can book what the platform owns (approved absences, hires).
 *
 * Each run lists what changed since the mapping's cursor — and, about once a day, the
 * whole list, to learn what was deleted on the platform. The mapping's filter decides
 * which records come in; a record already pulled keeps being updated even when it
 * leaves the filter (approved, then withdrawn: its row gets the new status). A row is
 * written only when what the platform says changed (a fingerprint per platform id in
 * the state's `pulled` table). A record that fails its mapping (an unmapped absence
 * type) is parked in `failures`, never guessed. Deleted on the platform: the target's
 * deleted_column is set, or the row is deleted.
 *
 * This module owns the SQL on the inbound table (the mapping's target, in the mirror);
 * the state's bookkeeping (`pulled`, `pull_cursors`) is state.c's. It writes only to a
 * table of database.inbound_schemas, never to the state schema (config_pull_target_refused).
 */
#ifndef HRSYNC_PULL_H
#define HRSYNC_PULL_H

#include "connector.h"
#include "mapping.h"
#include "state.h"
#include "sync.h"

struct pull_env {
	const struct config *cfg;
	const struct run_opts *opts;
	struct state *st;
	long long run_id;
	struct connector *conn;
	struct counts *cnt;
};

/* Pull one mapping. false when the run must stop (*why says why; caller frees). */
bool pull_run(struct pull_env *pe, const struct mapping *m, char **why);

#endif
