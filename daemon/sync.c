/*
 * sync — see sync.h.
 *
 * Concurrency: one thread. Up to max_in_flight connector ops run at once; while the
 * engine waits for a free slot it turns the HTTP loop, and finished ops call back
 * into op_done(), which writes their outcome to the state before anything else.
 *
 * Creates are held back in a small buffer at the start of each mapping: the connector
 * learns how many records are new before the first one goes out, and picks the
 * cheapest way to find what an interrupted run may already have created.
 *
 * Terminations and deletions wait until the whole source has been read: the
 * mass-change guard (README.md, "What hrsync guarantees") counts them first.
 */
#define _GNU_SOURCE
#include "sync.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <wctype.h>

#include "batch.h"
#include "db.h"
#include "log.h"
#include "lookups.h"
#include "nir.h"
#include "notify.h"
#include "pull.h"
#include "ref.h"
#include "sha256.h"
#include "source.h"
#include "state.h"
#include "strmap.h"
#include "version.h"

#define CREATE_BUFFER 64
#define RETRY_PAUSE_MS 5000   /* before the second pass over records that failed transiently */

struct engine {
	struct config *cfg;
	const struct run_opts *opts;
	struct state st;
	struct source src;
	bool share_source;             /* the source reads on the run's session (state_lend) */
	struct http *http;
	struct connector **conns;     /* parallel to cfg->conns */
	long long run_id;

	/* the mapping being run */
	struct mapping *m;
	struct connector *conn;
	struct counts cnt;
	/* Per connector (parallel to conns), its lookup lists (lookups.h): read side by side at the
	 * start (read_lookups); lookup_errs: "connector\x1fresource" -> why one could not be read. */
	struct strmap *lookups;
	struct strmap lookup_errs;
	struct pacer_stats *list_stats; /* per connector: the requests of its lists, not counted yet */
	struct strmap refs;            /* "mapping\x1fkey" -> platform id, "" = not on the platform */
	struct strmap planned;         /* dry run: "mapping\x1fkey" of the records the plan creates */
	bool keep_planned;             /* dry run: a selected mapping references the running one */
	int inflight, max_inflight;
	struct op **creates;           /* held back until prepare() */
	size_t ncreates;
	bool readied, prepared;        /* the entity's prepare ran: before any op, before the creates */
	struct op **again;             /* failed transiently: one more pass before the mapping ends */
	size_t nagain, capagain;
	bool second_pass;
	struct op **terms;             /* terminations, run after the guard */
	size_t nterms, capterms;
	bool mapping_stopped;
	char generation[65];           /* what the payload depends on besides the row (source.h) */
	long planned_terms;            /* dry run: terminations of linked records, for the guard's warning */
	struct sb rehash_keys, rehash_vals;  /* unchanged records whose source hash is new (JSON arrays) */
	long nrehash;

	long waiting;                  /* records failed or deferred, over all mappings */
	bool no_state;                 /* dry run before any run: the state schema does not exist */
	struct run_result *res;
	long commits;                  /* state commits after a platform answer (for the kill hook) */
	long kill_at;
	bool stop;                     /* stop the whole run: exit 3 */
	char *stop_reason;

	/* references into the same mapping (a unit's parent): parents first (run_parents_first) */
	bool self_ref;                 /* the mapping running references itself */
	const char *cur_key;           /* the row being mapped */
	struct strmap self_deferred;   /* keys deferred this pass -> "" */
	struct strmap self_edges;      /* key -> the key of the same mapping it waits for */

	/* the run window (opts->until) and progress (run_window, report_progress) */
	bool window_over;              /* the window ended: nothing new is sent */
	long left;                     /* records the window left for the next run */
	long unrecorded;               /* rows failed without a failure in the state (a NULL key) */
	struct sb not_started;         /* mappings the window ended before */
	struct op **updates;           /* a windowed run: updates wait for creates and terminations */
	size_t nupdates, capupdates;
	long long total_rows;          /* the running mapping's source rows (-1: not known, -2: not counted yet) */
	int64_t mapping_t0, last_progress;
};

static volatile sig_atomic_t g_signalled;

static void on_signal(int sig)
{
	(void)sig;
	g_signalled = 1;
}

static void stop_run(struct engine *e, const char *fmt, ...) PRINTF_LIKE(2, 3);
static void stop_run(struct engine *e, const char *fmt, ...)
{
	if (e->stop)
		return;
	struct sb b = {0};
	va_list ap;
	va_start(ap, fmt);
	sb_vprintf(&b, fmt, ap);
	va_end(ap);
	e->stop = true;
	e->stop_reason = sb_steal(&b);
	log_error("stopping the run: %s", e->stop_reason);
	/* Calls waiting on Retry-After or a backoff end now; requests in flight still finish. */
	for (size_t i = 0; e->conns && i < e->cfg->nconns; i++)
		if (e->conns[i])
			pacer_stop(&e->conns[i]->pacer, "the run is stopping");
}

/* The state database failed (lost, or it refused a write: state.c's recorded): the run ends. */
static void stop_for_state(struct engine *e)
{
	stop_run(e, "the state database failed: %s", e->st.err ? e->st.err : "");
}

static void fingerprint(const struct jv *payload, char out[65])
{
	char *s = jv_dumps(payload);
	sha256_hex(s, strlen(s), out);
	free(s);
}

static const char *action_name(enum op_action a)
{
	switch (a) {
	case ACT_CREATE: return "create";
	case ACT_UPDATE: return "update";
	case ACT_TERMINATE: return "terminate";
	case ACT_RESTORE: return "restore";
	}
	return "?";
}

/* ---- failures ---- */

static void plan_out(struct engine *e, const struct plan_rec *r)
{
	if (e->opts->sink && e->opts->sink->record)
		e->opts->sink->record(e->opts->sink->ud, r);
}

static void record_failure(struct engine *e, const char *key, const char *kind, const char *action,
			   const char *field, const char *rule, const char *reason, long http, const char *fp)
{
	if (e->opts->dry_run) {
		/* A record waiting for one of its own mapping: the plan says so only if it still waits
		 * once the parents are planned (report_cycles). */
		if (e->self_ref && e->cur_key && streq(kind, "deferred"))
			return;
		struct plan_rec r = {.mapping = e->m->name, .key = key, .field = field, .rule = rule, .reason = reason};
		r.action = streq(kind, "deferred") ? PA_DEFER : PA_FAIL;
		plan_out(e, &r);
		return;
	}
	struct failure f = {kind, action, field, rule, reason, http, fp};
	/* Committed with others (state.h, grouped state commits): a record whose failure a killed
	 * run did not commit is tried again by the next, as it would be. */
	if (!state_failure_put_later(&e->st, e->m->name, key, &f, e->run_id) && e->st.broken)
		stop_for_state(e);
	int level = streq(kind, "deferred") ? L_INFO : L_WARN;
	if (field)
		log_rec(level, key, action, "%s: field '%s'%s%s: %s", kind, field, rule ? " " : "", rule ? rule : "", reason);
	else
		log_rec(level, key, action, "%s: %s", kind, reason);
}

static void clear_failure(struct engine *e, const char *key)
{
	if (e->no_state)
		return;
	if (!e->opts->dry_run && !state_failure_clear(&e->st, e->m->name, key) && e->st.broken)
		stop_for_state(e);
}

/* ---- ops ---- */

static void op_free(struct op *op)
{
	free(op->key);
	jv_free(op->payload);
	jv_free(op->old);
	jv_free(op->term);
	free(op->platform_id);
	jv_free(op->extra);
	free(op->message);
	connector_op_release(op);
	free(op->engine_ctx);
	free(op);
}

struct op_ctx {
	char fp[65];
	char nir_hash[65];
	bool has_nir;
	char src_hash[33];
};

/*
 * The platform does not know a record this one refers to yet (a native reference, batch.h
 * and connector.h OPR_DEFERRED): deferred like an unresolved reference, tried again next run.
 */
static void record_deferred_op(struct engine *e, struct op *op)
{
	record_failure(e, op->key, "deferred", action_name(op->action), NULL, "ref",
		       op->message ? op->message : "waits for a record the platform does not know yet", op->http_status, NULL);
	e->cnt.deferred++;
}

/*
 * May this confirmed write's link be committed with others (state_link_put_later)? Only if a
 * run killed before that commit finds it again: an update (the next run sends the same
 * payload again), or a create its connector looks for by natural key before creating. Not a
 * record to terminate next (its status follows at once), a restore, or a termination.
 */
static bool groupable(const struct op *op)
{
	if (op->then_terminate)
		return false;
	return op->action == ACT_UPDATE || (op->action == ACT_CREATE && op->ent && op->ent->find);
}

static void op_done(struct op *op)
{
	struct engine *e = op->engine;
	struct op_ctx *x = op->engine_ctx;
	const char *m = e->m->name;
	e->inflight--;
	/*
	 * Test hook (tests/e2e): HRSYNC_TEST_KILL_BEFORE_COMMIT=N kills the process with
	 * SIGKILL after the platform's Nth answer and before its state commit, the worst
	 * instant for a crash. Inert unless the variable is set.
	 */
	if (e->kill_at && ++e->commits == e->kill_at)
		raise(SIGKILL);
	if (op->result == OPR_OK) {
		bool ok = true;
		if (op->action == ACT_TERMINATE) {
			const char *st = op->ent->term == TERM_DELETE ? "deleted" : "terminated";
			ok = state_link_status(&e->st, m, op->key, st, e->run_id);
			e->cnt.terminated++;
			log_rec(L_INFO, op->key, "terminate", "%s on the platform (id %s)", st, op->platform_id);
		} else if (groupable(op)) {
			/* Committed with others (state.h, grouped state commits), its failure cleared with it. */
			ok = state_link_put_later(&e->st, m, op->key, op->platform_id, x->fp, op->payload, op->extra,
						  x->has_nir ? x->nir_hash : NULL, x->src_hash[0] ? x->src_hash : NULL,
						  e->run_id);
			if (op->action == ACT_CREATE)
				e->cnt.created++;
			else
				e->cnt.updated++;
			log_rec(L_INFO, op->key, action_name(op->action), "%s (id %s%s)",
				op->action == ACT_CREATE ? "created" : "updated", op->platform_id,
				op->adopted ? ", found on the platform" : "");
			if (!ok && e->st.broken)
				stop_for_state(e);
			op_free(op);
			return;
		} else {
			ok = state_link_put(&e->st, m, op->key, op->platform_id, "active", x->fp, op->payload, op->extra,
					    x->has_nir ? x->nir_hash : NULL, x->src_hash[0] ? x->src_hash : NULL, e->run_id);
			if (op->action == ACT_CREATE)
				e->cnt.created++;
			else
				e->cnt.updated++;
			log_rec(L_INFO, op->key, action_name(op->action), "%s (id %s%s)",
				op->action == ACT_CREATE ? "created" : op->action == ACT_UPDATE ? "updated" : "restored",
				op->platform_id, op->adopted ? ", found on the platform" : "");
		}
		if (ok)
			ok = state_failure_clear(&e->st, m, op->key);
		if (!ok && e->st.broken)
			stop_for_state(e);
		if (op->then_terminate && ok && !e->stop) {
			/* First seen already gone: created, now terminated (mappings/README.md §2.3, the lifecycle). */
			op->then_terminate = false;
			op->action = ACT_TERMINATE;
			e->inflight++;
			connector_start(op);
			return;
		}
		op_free(op);
		return;
	}
	/* Not accepted. Keep what the platform already holds, so no later run creates it twice. */
	if (op->main_done && op->platform_id && op->action == ACT_CREATE)
		state_link_put(&e->st, m, op->key, op->platform_id, "active", NULL, NULL, op->extra, NULL, NULL, e->run_id);
	if (op->result == OPR_TRANSIENT && !e->second_pass && !e->stop && !op->conn->pacer.stopped) {
		/* A moment's error on the platform: once more before the mapping ends (retry_transients). */
		log_rec(L_INFO, op->key, action_name(op->action), "transient: %s; tried again before the run ends",
			op->message ? op->message : "failed");
		grow(&e->again, &e->capagain, e->nagain + 1, sizeof *e->again);
		e->again[e->nagain++] = op;
		return;
	}
	if (op->result == OPR_DEFERRED) {
		record_deferred_op(e, op);
		op_free(op);
		return;
	}
	const char *kind = op->result == OPR_REFUSED ? "refused" : "transient";
	record_failure(e, op->key, kind, action_name(op->action), NULL, NULL,
		       op->message ? op->message : "failed", op->http_status, x->fp[0] ? x->fp : NULL);
	e->cnt.failed++;
	if (op->result == OPR_STOPPED && !e->mapping_stopped) {
		e->mapping_stopped = true;
		stop_run(e, "connector %s stopped: %s", op->conn->name, op->conn->pacer.stop_reason);
	}
	op_free(op);
}

static bool stop_requested(const struct engine *e)
{
	return e->opts->stop ? *e->opts->stop != 0 : g_signalled != 0;
}

static void pump(struct engine *e, int limit)
{
	while (e->inflight > limit) {
		/* Nothing else to wait for: the creates parked for a batch go now (batch.h). */
		if (!http_busy(e->http) && batch_flush(e->conn))
			continue;
		http_run(e->http, 200);
		if (!state_flush_due(&e->st) && e->st.broken)
			stop_for_state(e);
		if (stop_requested(e) && !e->stop)
			stop_run(e, "asked to stop; finishing the requests in flight");
	}
}

static void prepare_entity(struct engine *e, long pending);

/* ---- the run window (run --until) ---- */

/* Has the window ended? The first time: said once; from then on nothing new is sent. */
static bool run_window_over(struct engine *e)
{
	if (e->window_over)
		return true;
	if (e->opts->until <= 0 || e->opts->dry_run || now_wall() < e->opts->until)
		return false;
	e->window_over = true;
	log_notice("the run window ends now: nothing new is sent; what is in flight finishes and is recorded");
	return true;
}

/* A record the window leaves for the next run: not sent, nothing recorded against it. */
static void leave_for_next_run(struct engine *e, struct op *op)
{
	e->left++;
	log_rec(L_DEBUG, op->key, action_name(op->action), "not sent: the run window ended");
	op_free(op);
}

static void launch(struct engine *e, struct op *op)
{
	if (run_window_over(e)) {
		leave_for_next_run(e, op);
		return;
	}
	prepare_entity(e, 0);
	pump(e, e->max_inflight - 1);
	if (e->stop || e->conn->pacer.stopped) {
		/* Nothing new goes out once the run is stopping; the record is retried next run. */
		op->result = e->conn->pacer.stopped ? OPR_STOPPED : OPR_TRANSIENT;
		free(op->message);
		op->message = xstrdup(e->conn->pacer.stopped ? "connector stopped for this run" : "run stopped before it was sent");
		e->inflight++;
		op_done(op);
		return;
	}
	e->inflight++;
	connector_start(op);
}

/*
 * The connector reads what the mapping's ops need: once before the first op (pending 0),
 * and once before the first create, with how many records are new.
 */
static void prepare_entity(struct engine *e, long pending)
{
	if (pending > 0 ? e->prepared : e->readied)
		return;
	e->readied = true;
	e->prepared |= pending > 0;
	char *err = NULL;
	if (e->m->ent->prepare && !e->opts->dry_run && !e->m->ent->prepare(e->conn, e->m->ent, pending, &err)) {
		stop_run(e, "connector %s cannot read what the platform holds: %s", e->conn->name, err ? err : "failed");
		free(err);
	}
}

static void flush_creates(struct engine *e)
{
	if (!e->ncreates)
		return; /* nothing held back: prepare runs before the first op, if any (launch) */
	prepare_entity(e, (long)e->ncreates);
	for (size_t i = 0; i < e->ncreates; i++)
		launch(e, e->creates[i]);
	e->ncreates = 0;
}

static void submit(struct engine *e, struct op *op)
{
	if (op->action == ACT_CREATE && !e->prepared) {
		e->creates[e->ncreates++] = op;
		if (e->ncreates >= CREATE_BUFFER) {
			prepare_entity(e, 1000000); /* many new records: the connector may index */
			flush_creates(e);
		}
		return;
	}
	if (op->action == ACT_TERMINATE) {
		grow(&e->terms, &e->capterms, e->nterms + 1, sizeof *e->terms);
		e->terms[e->nterms++] = op;
		return;
	}
	if (e->opts->until > 0 && (op->action == ACT_UPDATE || op->action == ACT_RESTORE)) {
		/* A windowed run: new people and leavers first, updates with what time is left. */
		grow(&e->updates, &e->capupdates, e->nupdates + 1, sizeof *e->updates);
		e->updates[e->nupdates++] = op;
		return;
	}
	launch(e, op);
}

/* ---- references and lookups (the mapping engine's callbacks) ---- */

static bool selected(const struct run_opts *o, const struct mapping *m)
{
	if (!o->nonly)
		return true;
	for (size_t i = 0; i < o->nonly; i++)
		if (streq(o->only[i], m->name))
			return true;
	return false;
}

/* The connector started for a configured one (NULL: it could not start). */
static struct connector *conn_of(const struct engine *e, const struct conn_cfg *cc)
{
	for (size_t i = 0; i < e->cfg->nconns; i++)
		if (&e->cfg->conns[i] == cc)
			return e->conns[i];
	return NULL;
}

/* A started connector's index in conns (and in the arrays parallel to it). */
static size_t conn_index(const struct engine *e, const struct connector *c)
{
	size_t i = 0;
	while (i < e->cfg->nconns && e->conns[i] != c)
		i++;
	return i; /* nconns (a spare slot) is not reached: every mapping's connector is one of them */
}

static struct strmap *lookups_of(const struct engine *e, const struct connector *c)
{
	return &e->lookups[conn_index(e, c)];
}

/* A lookup field's list, as read_lookups read it; one it could not read stops the run. */
static bool load_lookup(void *ud, const struct field *f)
{
	struct engine *e = ud;
	if (lookups_loaded(lookups_of(e, e->conn), f->lookup_resource, f->lookup_match))
		return true;
	char *ek = xasprintf("%s\x1f%s", e->conn->name, f->lookup_resource);
	const char *why = "not read";
	strmap_get(&e->lookup_errs, ek, &why);
	free(ek);
	stop_run(e, "connector %s: cannot read %s: %s", e->conn->name, f->lookup_resource, why);
	return false;
}

/* The lookup fields of the run's mappings, each as a list to read (once per connector and resource). */
struct wanted_lists {
	struct lookup_list *ls;
	size_t n, cap;
	struct connector *c;
};

static bool want_list(void *ud, const struct field *f)
{
	struct wanted_lists *w = ud;
	for (size_t k = 0; k < w->n; k++)
		if (w->ls[k].c == w->c && streq(w->ls[k].resource, f->lookup_resource))
			return true;
	grow(&w->ls, &w->cap, w->n + 1, sizeof *w->ls);
	w->ls[w->n++] = (struct lookup_list){.c = w->c, .resource = f->lookup_resource};
	return true;
}

/* A list read, kept for each lookup field on it (each match) of its connector's mappings. */
struct list_in {
	struct engine *e;
	const struct lookup_list *l;
};

static bool add_match(void *ud, const struct field *f)
{
	const struct list_in *in = ud;
	struct strmap *lk = lookups_of(in->e, in->l->c);
	if (streq(f->lookup_resource, in->l->resource) && !lookups_loaded(lk, in->l->resource, f->lookup_match))
		lookups_add(lk, in->l->resource, f->lookup_match, in->l->items);
	return true;
}

/*
 * Every lookup list of the run's mappings, read side by side before the first mapping (one
 * after the other, four lists were four round trips to the platform before the read could
 * start). One that cannot be read stops the run when a mapping needs it (load_lookup).
 */
static void read_lookups(struct engine *e)
{
	struct wanted_lists w = {0};
	for (size_t i = 0; i < e->cfg->nmaps; i++) {
		struct mapping *m = e->cfg->maps[i];
		w.c = conn_of(e, m->conn);
		if (!w.c || m->dir != DIR_PUSH || !selected(e->opts, m))
			continue;
		mapping_each_lookup(m, want_list, &w);
	}
	struct pacer_stats *before = xcalloc(e->cfg->nconns + 1, sizeof *before);
	for (size_t i = 0; i < e->cfg->nconns; i++)
		if (e->conns[i])
			before[i] = e->conns[i]->pacer.stats;
	connector_lists(w.ls, w.n);
	for (size_t i = 0; i < e->cfg->nconns; i++)
		if (e->conns[i]) {
			e->list_stats[i].requests = e->conns[i]->pacer.stats.requests - before[i].requests;
			e->list_stats[i].throttled = e->conns[i]->pacer.stats.throttled - before[i].throttled;
		}
	free(before);
	for (size_t k = 0; k < w.n; k++) {
		struct lookup_list *l = &w.ls[k];
		if (!l->items) {
			char *ek = xasprintf("%s\x1f%s", l->c->name, l->resource);
			strmap_put(&e->lookup_errs, ek, l->err ? l->err : "failed");
			free(ek);
		} else {
			log_debug("lookup %s of connector %s: %zu entries", l->resource, l->c->name, l->items->u.arr.n);
			struct list_in in = {e, l};
			for (size_t i = 0; i < e->cfg->nmaps; i++)
				if (e->cfg->maps[i]->conn == l->c->cfg)
					mapping_each_lookup(e->cfg->maps[i], add_match, &in);
		}
		jv_free(l->items);
		free(l->err);
	}
	free(w.ls);
}

/* The connector's lookup reads (read_lookups) count with its first mapping. */
static void count_list_requests(struct engine *e, const struct connector *conn)
{
	struct pacer_stats *st = &e->list_stats[conn_index(e, conn)];
	e->cnt.requests += st->requests;
	e->cnt.throttled += st->throttled;
	memset(st, 0, sizeof *st);
}

static bool cb_lookup(void *ctx, const char *resource, const char *match, const char *name, struct jv **out)
{
	struct engine *e = ctx;
	return lookups_find(lookups_of(e, e->conn), resource, match, name, out);
}

static enum ref_status cb_resolve(void *ctx, const struct field *f, int scheme, const char *id, const char *nir,
				  struct jv **out, char **why)
{
	struct engine *e = ctx;
	if (e->conn->type->native_refs) {
		/* A platform that resolves references itself (native_refs): send the validated one, NIR normalised. */
		char *full = xasprintf("%s:%s", ref_scheme_name((enum ref_scheme)scheme), scheme == REF_SSN ? nir : id);
		*out = jv_str(full);
		free(full);
		return REF_RESOLVED;
	}
	if (scheme == REF_TROOPS) {
		*why = xasprintf("troops: references are Troops ids; connector %s cannot use them", e->conn->name);
		return REF_INVALID;
	}
	struct mapping *t = config_ref_target(e->cfg, e->m, f);
	if (!t) {
		*why = xstrdup("no mapping to resolve the reference against");
		return REF_INVALID;
	}
	if (e->opts->dry_run && scheme == REF_ERP) {
		/* The plan creates it in an earlier mapping: a real run would resolve it by then. */
		char *pk = xasprintf("%s\x1f%s", t->name, id);
		bool planned = strmap_get(&e->planned, pk, NULL);
		free(pk);
		if (planned) {
			*out = jv_str("(new)");
			return REF_RESOLVED;
		}
	}
	if (e->no_state) {
		if (t == e->m && scheme == REF_ERP && e->cur_key)
			strmap_put(&e->self_edges, e->cur_key, id);
		*why = xasprintf("%s record '%s' is not on the platform yet", t->name, scheme == REF_ERP ? id : "(by NIR)");
		return REF_DEFERRED;
	}
	char nh[65] = "";
	if (scheme == REF_SSN)
		nir_hash_hex(nir, nh);
	char *ck = xasprintf("%s\x1f%s\x1f%s", t->name, scheme == REF_SSN ? "ssn" : "erp", scheme == REF_SSN ? nh : id);
	const char *cached = NULL;
	if (strmap_get(&e->refs, ck, &cached)) {
		free(ck);
		if (cached && *cached) {
			*out = jv_from_id(cached);
			return REF_RESOLVED;
		}
		goto deferred;
	}
	char *pid = NULL;
	bool found = scheme == REF_SSN ? state_link_by_nir(&e->st, t->name, nh, &pid)
				       : state_link_find(&e->st, t->name, id, &pid, NULL);
	if (!found && e->st.broken) {
		free(ck);
		*why = xasprintf("the state database failed: %s", e->st.err ? e->st.err : "");
		return REF_DEFERRED;
	}
	if (!found && scheme == REF_ERP && t->ent && e->conn->type->find_by_key) {
		/* Not ours yet: the platform may know it by its natural key (HR created it by hand). */
		struct connector *tc = conn_of(e, t->conn);
		char *err = NULL;
		if (tc && !e->opts->dry_run)
			pid = tc->type->find_by_key(tc, t->ent, id, &err);
		if (err) {
			log_rec(L_WARN, id, "resolve", "looking up %s on the platform: %s", t->name, err);
			free(err);
		}
		found = pid != NULL;
	}
	if (e->refs.n > 200000)
		strmap_clear(&e->refs);
	strmap_put(&e->refs, ck, found ? pid : "");
	free(ck);
	if (found) {
		*out = jv_from_id(pid);
		free(pid);
		return REF_RESOLVED;
	}
deferred:
	if (t == e->m && scheme == REF_ERP && e->cur_key)
		strmap_put(&e->self_edges, e->cur_key, id);
	if (scheme == REF_SSN)
		*why = xasprintf("no record of mapping '%s' with this NIR is on the platform yet", t->name);
	else
		*why = xasprintf("%s record '%s' is not on the platform yet (it failed, or is not in the ERP)", t->name, id);
	return REF_DEFERRED;
}

/* ---- one row ---- */

static struct op *new_op(struct engine *e, enum op_action a, const char *key)
{
	struct op *op = xcalloc(1, sizeof *op);
	op->conn = e->conn;
	op->ent = e->m->ent;
	op->action = a;
	op->mapping = e->m->name;
	op->key = xstrdup(key);
	op->done = op_done;
	op->engine = e;
	op->engine_ctx = xcalloc(1, sizeof(struct op_ctx));
	return op;
}

static void generation_of(struct engine *e, struct sha256 *h, const struct field *f, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (f[i].nested)
			generation_of(e, h, f[i].kids, f[i].nkids);
		if (f[i].src != VS_LOOKUP)
			continue;
		const char *d = lookups_digest(lookups_of(e, e->conn), f[i].lookup_resource, f[i].lookup_match);
		if (d)
			sha256_update(h, d, strlen(d));
	}
}

/*
 * Everything a payload depends on besides its row: this hrsync, the time zone, the
 * mapping file (and the map files it names, through their effect on its hash... see
 * mapping_hash), and the lookup lists the mapping reads.
 */
static void compute_generation(struct engine *e)
{
	struct mapping *m = e->m;
	struct sha256 h;
	unsigned char d[32];
	sha256_init(&h);
	const char *parts[] = {HRSYNC_VERSION, e->cfg->timezone ? e->cfg->timezone : "UTC", m->mapping_hash};
	for (size_t i = 0; i < ARRAY_LEN(parts); i++)
		sha256_update(&h, parts[i], strlen(parts[i]) + 1);
	generation_of(e, &h, m->fields, m->nfields);
	generation_of(e, &h, m->term_fields, m->nterm);
	sha256_final(&h, d);
	for (int i = 0; i < 32; i++)
		snprintf(e->generation + 2 * i, 3, "%02x", d[i]);
}

static void flush_rehash(struct engine *e)
{
	if (!e->nrehash)
		return;
	sb_putc(&e->rehash_keys, ']');
	sb_putc(&e->rehash_vals, ']');
	if (!state_src_hashes(&e->st, e->m->name, e->rehash_keys.s, e->rehash_vals.s) && e->st.broken)
		stop_for_state(e);
	sb_reset(&e->rehash_keys);
	sb_reset(&e->rehash_vals);
	e->nrehash = 0;
}

/* An unchanged record whose source hash is new (first run, or a change that maps the same). */
static void remember_hash(struct engine *e, const char *key, const char *hash)
{
	if (e->opts->dry_run || !hash)
		return;
	sb_putc(&e->rehash_keys, e->nrehash ? ',' : '[');
	sb_putc(&e->rehash_vals, e->nrehash ? ',' : '[');
	sb_json_string(&e->rehash_keys, key, strlen(key));
	sb_printf(&e->rehash_vals, "\"%s\"", hash);
	if (++e->nrehash >= 1000)
		flush_rehash(e);
}

static void preview_row(struct engine *e, const struct row *row, const struct src_extra *x, const char *key)
{
	struct mapping *m = e->m;
	struct eval_env env = {.ctx = e, .resolve = cb_resolve, .lookup = cb_lookup};
	struct mapped mp = {0}, tp = {0};
	int rc = mapping_eval(m, m->fields, m->nfields, row, &env, &mp);
	int trc = x->terminate ? mapping_eval(m, m->term_fields, m->nterm, row, &env, &tp) : 0;
	struct jv *rowj = row_json(m, row);
	struct preview_rec pr = {.mapping = m->name, .key = key, .row = rowj};
	const struct mapped *bad = rc ? &mp : trc ? &tp : NULL;
	if (bad && bad->err.path) {
		pr.field = bad->err.path;
		pr.rule = bad->err.rule;
		pr.reason = bad->err.reason;
	} else if (bad) {
		pr.deferred = true;
		pr.field = bad->defer_field;
		pr.rule = "ref";
		pr.reason = bad->defer_reason;
	} else {
		pr.payload = mp.payload;
		pr.term = x->terminate ? tp.payload : NULL;
	}
	e->opts->sink->preview(e->opts->sink->ud, &pr);
	jv_free(rowj);
	mapped_free(&mp);
	mapped_free(&tp);
}

/* A key several source rows share: none of them is sent (preview shows the row, saying why). */
static void refuse_shared_key(struct engine *e, const struct row *row, const char *key, long dup)
{
	struct mapping *m = e->m;
	char reason[160];
	snprintf(reason, sizeof reason, "%ld source rows share this key; none is sent until the ERP has one", dup);
	if (e->opts->sink && e->opts->sink->preview) {
		struct jv *rowj = row_json(m, row);
		struct preview_rec pr = {.mapping = m->name, .key = key, .row = rowj, .field = m->key, .rule = "key",
					 .reason = reason};
		e->opts->sink->preview(e->opts->sink->ud, &pr);
		jv_free(rowj);
		return;
	}
	record_failure(e, key, "mapping", NULL, m->key, "key", reason, 0, NULL);
	e->cnt.failed++;
}

/*
 * terminate.when holds and there is nothing to send: the record is gone from the platform
 * already (unchanged), or was never sent and its termination is a deletion (skipped).
 */
static void settle_gone(struct engine *e, const struct src_extra *x, const char *key, bool linked)
{
	struct plan_rec pr = {.mapping = e->m->name, .key = key, .action = linked ? PA_UNCHANGED : PA_SKIP,
			      .reason = linked ? NULL : "cancelled (terminate.when holds) before it was ever sent: nothing to delete"};
	plan_out(e, &pr);
	if (linked)
		e->cnt.unchanged++;
	else
		e->cnt.skipped++;
	if (x->fail_kind)
		clear_failure(e, key);
}

/*
 * Maps the row: the main fields into mp unless need_main is false (only a termination is due),
 * then, when terminate.when holds, the terminate fields (into tp, or into mp when the main
 * fields were not mapped). Returns mapping_eval's 0, or 1 (failed) / 2 (deferred) once the
 * record is recorded as such.
 */
static int map_row(struct engine *e, const struct row *row, const struct src_extra *x, const char *key,
		   bool need_main, bool linked, struct mapped *mp, struct mapped *tp)
{
	struct mapping *m = e->m;
	struct eval_env env = {.ctx = e, .resolve = cb_resolve, .lookup = cb_lookup};
	int rc = 0;
	bool term_failed = false;
	if (need_main)
		rc = mapping_eval(m, m->fields, m->nfields, row, &env, mp);
	if (rc == 0 && x->terminate) {
		rc = mapping_eval(m, m->term_fields, m->nterm, row, &env, need_main ? tp : mp);
		term_failed = rc != 0;
	}
	/* The result that failed: the terminate fields' only when they were mapped and failed. */
	struct mapped *res = need_main && term_failed ? tp : mp;
	const char *act = x->terminate ? (need_main ? "create" : "terminate") : linked ? "update" : "create";
	if (rc == 1) {
		char reason[600];
		if (res->nerrors > 1)
			snprintf(reason, sizeof reason, "%s (%d other field(s) fail too: fix this one, then `hrsync preview %s --key %s`)",
				 res->err.reason, res->nerrors - 1, m->name, key);
		else
			snprintf(reason, sizeof reason, "%s", res->err.reason);
		record_failure(e, key, "mapping", act, res->err.path, res->err.rule, reason, 0, NULL);
		e->cnt.failed++;
	} else if (rc == 2) {
		record_failure(e, key, "deferred", act, res->defer_field, "ref", res->defer_reason, 0, NULL);
		e->cnt.deferred++;
		if (e->self_ref) {
			/* "field\x1freason": what the plan says of it if it still waits at the end */
			char *why = xasprintf("%s\x1f%s", res->defer_field ? res->defer_field : "", res->defer_reason);
			strmap_put(&e->self_deferred, key, why);
			free(why);
		}
	}
	return rc;
}

/* What a mapped record needs, and the payloads that carry it out (owned by the row's mapped results). */
struct decision {
	enum op_action a;
	bool then_term;        /* create, then terminate: first seen already gone */
	char fp[65];           /* fingerprint of the main payload; "" when only a termination is due */
	struct jv **payload;   /* the main fields' payload, or NULL when they were not mapped */
	struct jv **term;      /* the terminate fields' payload, or NULL when no termination is due */
};

/*
 * Sets d->a (and d->then_term) from the link and the fingerprint: create, terminate, restore
 * or update. False when the record is in step: active, and the same fingerprint (no --full).
 */
static bool choose_action(struct engine *e, const struct src_extra *x, bool linked, bool active, struct decision *d)
{
	if (!linked) {
		d->a = ACT_CREATE;
		d->then_term = x->terminate;
	} else if (x->terminate) {
		d->a = ACT_TERMINATE;
	} else if (!active) {
		/* Back in scope after leaving: re-hired, or an absence un-cancelled. */
		d->a = e->m->ent->term == TERM_DELETE ? ACT_CREATE : ACT_RESTORE;
	} else if (e->opts->full || !x->link_fp || !streq(x->link_fp, d->fp)) {
		d->a = ACT_UPDATE;
	} else {
		return false;
	}
	return true;
}

/* Mapped to the payload the platform last accepted: in step; a new source hash is kept for the fast path. */
static void in_step(struct engine *e, const struct src_extra *x, const char *key)
{
	e->cnt.unchanged++;
	if (x->fail_kind)
		clear_failure(e, key);
	struct plan_rec pr = {.mapping = e->m->name, .key = key, .action = PA_UNCHANGED};
	plan_out(e, &pr);
	log_rec(L_DEBUG, key, "skip", "unchanged");
	if (!x->same && !x->fail_kind)
		remember_hash(e, key, x->src_hash);
}

/* A payload the platform refused is sent again only when it changed, or after `hrsync retry`. */
static bool refused_before(const struct src_extra *x, const struct decision *d)
{
	return x->fail_kind && streq(x->fail_kind, "refused") && x->fail_fp && streq(x->fail_fp, d->fp) &&
	       !x->fail_retry && d->a != ACT_TERMINATE;
}

static void skip_refused(struct engine *e, const char *key, const struct decision *d)
{
	e->cnt.failed++;
	struct plan_rec pr = {.mapping = e->m->name, .key = key, .action = PA_SKIP,
			      .reason = "the platform refused this same payload before; `hrsync retry` sends it again"};
	plan_out(e, &pr);
	log_rec(L_DEBUG, key, action_name(d->a), "refused before with the same payload: not sent again");
}

/* Does a field of from (nested ones included) reference mapping t? */
static bool refs_to(const struct config *cfg, const struct mapping *from, const struct field *f, size_t n,
		    const struct mapping *t)
{
	for (size_t i = 0; i < n; i++) {
		if (f[i].nested && refs_to(cfg, from, f[i].kids, f[i].nkids, t))
			return true;
		if (f[i].src == VS_REF && config_ref_target(cfg, from, &f[i]) == t)
			return true;
	}
	return false;
}

/*
 * Dry run: must the plan remember the records it creates in mapping t? Only when a mapping of
 * this run (t itself included) references t: otherwise no reference asks, and the plan of a
 * million new records keeps no set of a million keys (it streams in flat memory).
 */
static bool referenced_in_run(const struct engine *e, const struct mapping *t)
{
	for (size_t i = 0; i < e->cfg->nmaps; i++) {
		const struct mapping *m = e->cfg->maps[i];
		bool sel = !e->opts->nonly;
		for (size_t k = 0; k < e->opts->nonly && !sel; k++)
			sel = streq(e->opts->only[k], m->name);
		if (sel && (refs_to(e->cfg, m, m->fields, m->nfields, t) || refs_to(e->cfg, m, m->term_fields, m->nterm, t)))
			return true;
	}
	return false;
}

/* Dry run: the decision goes to the plan; a planned create lets later references to it resolve. */
static void plan_decision(struct engine *e, const char *key, const struct decision *d)
{
	struct mapping *m = e->m;
	struct plan_rec pr = {.mapping = m->name, .key = key, .then_terminate = d->then_term,
			      .payload = d->payload ? *d->payload : NULL};
	pr.term = d->term ? *d->term : NULL;
	struct jv *old = NULL;
	switch (d->a) {
	case ACT_CREATE: {
		pr.action = PA_CREATE;
		e->cnt.created++;
		if (e->keep_planned) {
			char *pk = xasprintf("%s\x1f%s", m->name, key);
			strmap_put(&e->planned, pk, "");
			free(pk);
		}
		break;
	}
	case ACT_TERMINATE:
		pr.action = m->ent->term == TERM_DELETE ? PA_DELETE : PA_TERMINATE;
		pr.payload = NULL;
		e->cnt.terminated++;
		e->planned_terms++;
		break;
	case ACT_UPDATE: pr.action = PA_UPDATE; e->cnt.updated++; break;
	case ACT_RESTORE: pr.action = PA_RESTORE; e->cnt.updated++; break;
	}
	if ((d->a == ACT_UPDATE || d->a == ACT_RESTORE) && !e->no_state)
		pr.old = old = state_link_payload(&e->st, m->name, key);
	if (d->then_term)
		e->cnt.terminated++;
	plan_out(e, &pr);
	jv_free(old);
}

/* The decision as a connector op, which takes the payloads; mp gives the NIR a `check: nir` field accepted. */
static void send_decision(struct engine *e, const struct src_extra *x, const char *key, const struct decision *d,
			  const struct mapped *mp)
{
	struct op *op = new_op(e, d->a, key);
	struct op_ctx *ctx = op->engine_ctx;
	memcpy(ctx->fp, d->fp, sizeof d->fp);
	if (x->src_hash)
		snprintf(ctx->src_hash, sizeof ctx->src_hash, "%s", x->src_hash);
	memcpy(op->fp, d->fp, 16);
	op->fp[16] = '\0';
	if (mp->has_nir) {
		ctx->has_nir = true;
		nir_hash_hex(mp->nir, ctx->nir_hash);
	}
	if (d->payload) {
		op->payload = *d->payload;
		*d->payload = NULL;
	}
	if (d->term) {
		op->term = *d->term;
		*d->term = NULL;
	}
	op->then_terminate = d->then_term;
	if (x->link_id)
		op->platform_id = xstrdup(x->link_id);
	if (x->link_extra)
		op->extra = jv_parse(x->link_extra, strlen(x->link_extra), NULL, 0);
	if (d->a == ACT_UPDATE || d->a == ACT_RESTORE)
		op->old = state_link_payload(&e->st, e->m->name, key);
	submit(e, op);
}

static void process_row(struct engine *e, const struct row *row, const struct src_extra *x)
{
	struct mapping *m = e->m;
	const char *key = row->vals[0];
	if (!key) {
		log_warn("a source row has a NULL key (%s): skipped; give every row a key", m->key);
		e->cnt.failed++;
		e->unrecorded++;
		return;
	}
	if (x->dup > 1) {
		refuse_shared_key(e, row, key, x->dup);
		return;
	}
	const struct plan_sink *sink = e->opts->sink;
	if (sink && sink->preview) {
		preview_row(e, row, x, key);
		return;
	}
	bool linked = x->link_id != NULL;
	bool active = linked && streq(x->link_status, "active");

	/* The row and all it depends on hash as when the platform last accepted it: in step. */
	if (x->same) {
		e->cnt.unchanged++;
		struct plan_rec pr = {.mapping = m->name, .key = key, .action = PA_UNCHANGED};
		plan_out(e, &pr);
		return;
	}

	/* Gone already (unchanged), or never sent and gone before it was (skipped). */
	if (x->terminate && ((linked && !active) || (!linked && m->ent->term == TERM_DELETE))) {
		settle_gone(e, x, key, linked);
		return;
	}
	struct mapped mp = {0}, tp = {0};
	bool need_main = !(x->terminate && active);
	e->cur_key = key;
	int mrc = map_row(e, row, x, key, need_main, linked, &mp, &tp);
	e->cur_key = NULL;
	if (mrc != 0)
		goto out;

	struct decision d = {.payload = need_main ? &mp.payload : NULL,
			     .term = x->terminate ? (need_main ? &tp.payload : &mp.payload) : NULL};
	if (need_main)
		fingerprint(mp.payload, d.fp);
	if (!choose_action(e, x, linked, active, &d))
		in_step(e, x, key);
	else if (refused_before(x, &d))
		skip_refused(e, key, &d);
	else if (e->opts->dry_run)
		plan_decision(e, key, &d);
	else
		send_decision(e, x, key, &d, &mp);
out:
	mapped_free(&mp);
	mapped_free(&tp);
}

/* ---- progress of a long run ---- */

/* "1,234,567" */
static void thousands(char *out, size_t n, long long v)
{
	char d[32];
	snprintf(d, sizeof d, "%lld", v < 0 ? -v : v);
	size_t l = strlen(d), o = 0;
	if (v < 0 && o + 1 < n)
		out[o++] = '-';
	for (size_t i = 0; i < l && o + 1 < n; i++) {
		if (i && (l - i) % 3 == 0 && o + 1 < n)
			out[o++] = ',';
		out[o++] = d[i];
	}
	out[o] = '\0';
}

/* "about 2 h left", "about 35 min left", "less than a minute left" */
static void time_left(char *out, size_t n, double s)
{
	if (s < 60)
		snprintf(out, n, "less than a minute left");
	else if (s < 5400)
		snprintf(out, n, "about %.0f min left", s / 60);
	else
		snprintf(out, n, "about %.0f h left", s / 3600);
}

/*
 * The mapping's source rows (its table or query, its where), for progress: counted once, at
 * the first report (a mapping that ends within 10 s never pays for it); -1 when not known.
 * The query runs in the cursor's transaction, in a savepoint: a failure loses only the count.
 */
static long long count_source(struct engine *e, struct cursor *cur)
{
	cursor_quiet(cur); /* the FETCH sent ahead is read first: one query at a time */
	const struct mapping *m = e->m;
	char *from = m->table ? db_quote_qualified(e->src.pg, m->table) : xasprintf("(%s)", m->query);
	if (!from)
		return -1;
	char *q = xasprintf("SELECT count(*) FROM %s AS s0%s%s%s", from, m->where ? " WHERE (" : "",
			    m->where ? m->where : "", m->where ? ")" : "");
	free(from);
	PQclear(PQexec(e->src.pg, "SAVEPOINT hrsync_count"));
	PGresult *r = PQexec(e->src.pg, q);
	free(q);
	long long n = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1 ? atoll(PQgetvalue(r, 0, 0)) : -1;
	PQclear(r);
	PQclear(PQexec(e->src.pg, n < 0 ? "ROLLBACK TO SAVEPOINT hrsync_count" : "RELEASE SAVEPOINT hrsync_count"));
	return n;
}

/*
 * Every 10 s of a mapping: "workelo_employees 1,200/5,000, about 2 h left" (rows read of
 * the source, the time left at the pace so far) in the log, in the running run's message
 * (`hrsync status`) and in systemd's STATUS=.
 */
static void report_progress(struct engine *e, struct cursor *cur, bool force)
{
	long long rows = cur->rows;
	int64_t now = now_ms();
	if (!force && now - e->last_progress < 10000)
		return;
	e->last_progress = now;
	if (e->total_rows == -2)
		e->total_rows = count_source(e, cur);
	char done[32], total[32], eta[48] = "";
	thousands(done, sizeof done, rows);
	thousands(total, sizeof total, e->total_rows);
	double elapsed = (double)(now - e->mapping_t0) / 1000.0;
	if (e->total_rows > rows && rows > 0 && elapsed > 1)
		time_left(eta, sizeof eta, elapsed * (double)(e->total_rows - rows) / (double)rows);
	char *text = e->total_rows >= 0 ? xasprintf("%s %s/%s%s%s", e->m->name, done, total, *eta ? ", " : "", eta)
					: xasprintf("%s %s rows", e->m->name, done);
	log_info("progress: %s (%ld created, %ld updated, %ld failed)", text, e->cnt.created, e->cnt.updated,
		 e->cnt.failed);
	if (!e->opts->dry_run && e->run_id && !state_run_progress(&e->st, e->run_id, text) && e->st.broken)
		stop_for_state(e);
	notify_sendf("STATUS=%s", text);
	free(text);
}

/* ---- references into the same mapping: parents before children ---- */

static bool refs_itself(const struct config *cfg, const struct mapping *m, const struct field *f, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (f[i].nested && refs_itself(cfg, m, f[i].kids, f[i].nkids))
			return true;
		if (f[i].src == VS_REF && config_ref_target(cfg, m, &f[i]) == m)
			return true;
	}
	return false;
}

/*
 * The rows still deferred on a record of their own mapping: each waits for the key in
 * self_edges. One whose chain comes back to itself is on a reference cycle, which no
 * order can create: its deferral becomes a mapping error naming the records (mapped
 * again after the ERP is fixed). Returns how many were on a cycle.
 */
static long report_cycles(struct engine *e)
{
	long n = 0;
	for (size_t i = 0; i < e->self_deferred.cap; i++) {
		const char *start = e->self_deferred.keys ? e->self_deferred.keys[i] : NULL;
		if (!start)
			continue;
		struct sb chain = {0};
		const char *k = start;
		bool cycle = false;
		sb_puts(&chain, start);
		for (int hop = 0; hop < 1000; hop++) {
			const char *next = NULL;
			if (!strmap_get(&e->self_edges, k, &next) || !next)
				break;
			sb_printf(&chain, " -> %s", next);
			if (streq(next, start)) {
				cycle = true;
				break;
			}
			k = next;
		}
		if (!cycle && e->opts->dry_run) {
			/* Still waiting (a parent that fails): shown as such, once. */
			const char *fr = NULL;
			strmap_get(&e->self_deferred, start, &fr);
			const char *sep = fr ? strchr(fr, '\x1f') : NULL;
			char *field = sep ? xstrndup(fr, (size_t)(sep - fr)) : NULL;
			struct plan_rec pr = {.mapping = e->m->name, .key = start, .action = PA_DEFER,
					      .field = field && *field ? field : NULL, .rule = "ref",
					      .reason = sep ? sep + 1 : "waits for a record of the same mapping"};
			plan_out(e, &pr);
			free(field);
		}
		if (cycle) {
			char *why = xasprintf("reference cycle in mapping %s: %s; none of these records can be created "
					      "before the others: fix the references in the ERP",
					      e->m->name, sb_str(&chain));
			record_failure(e, start, "mapping", "create", NULL, "ref", why, 0, NULL);
			free(why);
			e->cnt.deferred--;
			e->cnt.failed++;
			n++;
		}
		sb_free(&chain);
	}
	return n;
}

/*
 * A mapping that references itself (a unit's parent): a child read before its parent
 * was created is deferred. While a pass creates something, the records it deferred are
 * read again, once their parents' creates are confirmed: one pass per level of the tree,
 * in one run. The same requests as records created in the right order; a child whose
 * parent failed stays deferred, and a cycle is reported as such.
 */
static void run_parents_first(struct engine *e, const struct src_filter *flt)
{
	for (int pass = 2; !e->stop && e->self_deferred.n > 0; pass++) {
		long created = e->cnt.created;
		struct strmap want = e->self_deferred;
		memset(&e->self_deferred, 0, sizeof e->self_deferred);
		strmap_clear(&e->refs); /* what was not on the platform may be now */
		struct cursor cur;
		char *err = NULL;
		if (!cursor_open(&e->src, e->m, flt, &cur, &err)) {
			stop_run(e, "mapping %s: the source query failed: %s", e->m->name, err);
			free(err);
			strmap_clear(&want);
			return;
		}
		log_info("%zu record(s) waited for a record of the same mapping; pass %d", want.n, pass);
		struct row row;
		struct src_extra x;
		int rc = 0;
		while (!e->stop && (rc = cursor_next(&cur, &row, &x, &err)) == 1) {
			if (!row.vals[0] || !strmap_get(&want, row.vals[0], NULL))
				continue;
			e->cnt.deferred--; /* counted again by what this pass makes of it */
			process_row(e, &row, &x);
		}
		if (!e->stop && rc < 0) {
			stop_run(e, "reading the source of mapping %s: %s", e->m->name, err);
			free(err);
		}
		cursor_close(&cur);
		strmap_clear(&want);
		flush_creates(e);
		pump(e, 0);
		if (e->cnt.created == created)
			break; /* nothing new: the rest waits for a failed parent, or a cycle */
	}
	if (!e->stop)
		report_cycles(e);
}

/* ---- one mapping ---- */

static void summary(struct engine *e)
{
	struct counts *c = &e->cnt;
	static const char *const names[] = {"created", "updated", "terminated", "unchanged", "skipped",
					    "failed", "deferred", "requests", "429s"};
	long long vals[] = {c->created, c->updated, c->terminated, c->unchanged, c->skipped, c->failed, c->deferred,
			    c->requests, c->throttled};
	char secs[32];
	snprintf(secs, sizeof secs, "%.1f", c->seconds);
	const char *sn[] = {"seconds"};
	const char *sv[] = {secs};
	log_fields(L_NOTICE, "summary", names, vals, 9, sn, sv, 1);
}

/*
 * source.on_missing: terminate — records linked on the platform whose row left the
 * source. Their terminate fields are read from a row holding only the key (the other
 * columns are null: give such fields a default). They join the terminations, so the
 * mass-change guard counts them.
 */
static void terminate_missing(struct engine *e)
{
	struct mapping *m = e->m;
	char *err = NULL;
	PGresult *r = source_missing(&e->src, m, &err);
	if (!r) {
		stop_run(e, "mapping %s: finding the records gone from the source: %s", m->name, err);
		free(err);
		return;
	}
	const char **vals = xcalloc(m->ncols + 1, sizeof *vals);
	int *lens = xcalloc(m->ncols + 1, sizeof *lens);
	unsigned *oids = xcalloc(m->ncols + 1, sizeof *oids);
	for (int i = 0; i < PQntuples(r); i++) {
		const char *key = PQgetvalue(r, i, 0);
		vals[0] = key;
		lens[0] = (int)strlen(key);
		struct row row = {.n = m->ncols, .vals = vals, .lens = lens, .oids = oids};
		struct eval_env env = {.ctx = e, .resolve = cb_resolve, .lookup = cb_lookup};
		struct mapped tp = {0};
		int rc = mapping_eval(m, m->term_fields, m->nterm, &row, &env, &tp);
		const char *act = m->ent->term == TERM_DELETE ? "delete" : "terminate";
		if (rc != 0) {
			char reason[600];
			snprintf(reason, sizeof reason, "gone from the source, but: %s",
				 rc == 1 ? tp.err.reason : tp.defer_reason);
			record_failure(e, key, "mapping", act, rc == 1 ? tp.err.path : tp.defer_field,
				       rc == 1 ? tp.err.rule : "ref", reason, 0, NULL);
			e->cnt.failed++;
		} else if (e->opts->dry_run) {
			struct plan_rec pr = {.mapping = m->name, .key = key, .term = tp.payload,
					      .action = m->ent->term == TERM_DELETE ? PA_DELETE : PA_TERMINATE,
					      .reason = "gone from the source"};
			plan_out(e, &pr);
			e->cnt.terminated++;
			e->planned_terms++;
		} else {
			struct op *op = new_op(e, ACT_TERMINATE, key);
			op->term = tp.payload;
			tp.payload = NULL;
			op->platform_id = xstrdup(PQgetvalue(r, i, 1));
			if (!PQgetisnull(r, i, 2))
				op->extra = jv_parse(PQgetvalue(r, i, 2), (size_t)PQgetlength(r, i, 2), NULL, 0);
			log_rec(L_INFO, key, act, "gone from the source (on_missing: terminate)");
			submit(e, op);
		}
		mapped_free(&tp);
	}
	free(vals);
	free(lens);
	free(oids);
	PQclear(r);
}

static void run_terminations(struct engine *e)
{
	struct mapping *m = e->m;
	if (!e->nterms)
		return;
	long long active = state_active_links(&e->st, m->name);
	double share = active > 0 ? (double)e->nterms / (double)active : 1.0;
	if (share > e->cfg->max_terminations && !e->opts->force) {
		stop_run(e,
			 "mass-change guard: mapping %s would %s %zu of its %lld records on the platform (%.1f%%, more than "
			 "the %.1f%% allowed by guards.max_terminations); nothing was %s. Check the ERP, then run again "
			 "with --force if this is intended",
			 m->name, m->ent->term == TERM_DELETE ? "delete" : "terminate", e->nterms, active, share * 100,
			 e->cfg->max_terminations * 100, m->ent->term == TERM_DELETE ? "deleted" : "terminated");
		for (size_t i = 0; i < e->nterms; i++) {
			e->cnt.failed++;
			record_failure(e, e->terms[i]->key, "transient", "terminate", NULL, NULL,
				       "held back by the mass-change guard", 0, NULL);
			op_free(e->terms[i]);
		}
		e->nterms = 0;
		return;
	}
	for (size_t i = 0; i < e->nterms; i++)
		launch(e, e->terms[i]);
	e->nterms = 0;
}

/* Let ms pass, turning the HTTP loop (answers still come in); a stop request ends the wait. */
static void wait_ms(struct engine *e, int64_t ms)
{
	int64_t until = now_ms() + ms;
	while (now_ms() < until && !e->stop) {
		if (stop_requested(e)) {
			stop_run(e, "asked to stop; finishing the requests in flight");
			break;
		}
		if (http_busy(e->http))
			http_run(e->http, 100);
		else
			nanosleep(&(struct timespec){0, 50 * 1000 * 1000}, NULL);
	}
}

/*
 * The records of the mapping that failed transiently (a 5xx, a timeout, a lost answer
 * that could not be settled) get one more pass before the mapping ends, after a pause for
 * the platform to recover; the mappings that depend on this one run after it, so records
 * deferred on them come along. What fails again waits for the next run, in failures.
 */
static void retry_transients(struct engine *e)
{
	if (!e->nagain)
		return;
	e->second_pass = true;
	if (!e->stop && !e->conn->pacer.stopped && !run_window_over(e)) {
		log_info("%zu record(s) failed transiently; trying them once more in %d s", e->nagain,
			 RETRY_PAUSE_MS / 1000);
		wait_ms(e, RETRY_PAUSE_MS);
	}
	for (size_t i = 0; i < e->nagain; i++) {
		struct op *op = e->again[i];
		if (e->stop || e->conn->pacer.stopped || run_window_over(e)) {
			e->inflight++;
			op_done(op); /* recorded with its own reason */
			continue;
		}
		op->result = OPR_OK;
		free(op->message);
		op->message = NULL;
		op->kit.live = true; /* what the failed requests made is in no index */
		launch(e, op);
	}
	e->nagain = 0;
	pump(e, 0);
	e->second_pass = false;
}

/*
 * An entity that sends its creates in batches: room for a few full batches of ops at once
 * (records of several groups, e.g. agencies, fill their batches side by side).
 */
static void batch_room(struct engine *e, const struct mapping *m)
{
	const struct batch *b = m->ent ? m->ent->batch : NULL;
	if (b && (!b->enabled || b->enabled(e->conn)) && e->max_inflight < 4 * b->max)
		e->max_inflight = 4 * b->max;
}

/* Whether a mapping after m (NULL: any) in this run reads the source (a push mapping). */
static bool reads_later(const struct engine *e, const struct mapping *m)
{
	bool after = m == NULL;
	for (size_t i = 0; i < e->cfg->nmaps; i++) {
		if (after && e->cfg->maps[i]->dir == DIR_PUSH && selected(e->opts, e->cfg->maps[i]))
			return true;
		after = after || e->cfg->maps[i] == m;
	}
	return false;
}

/* The end of a mapping, push or pull: its requests (and the lookup lists' of its connector,
 * with the first), its summary line, its row in the run's result and in the state. */
static void end_mapping(struct engine *e, const struct mapping *m, const struct connector *conn,
			const struct pacer_stats *before, int64_t t0)
{
	/* A state that failed on the way (a write it refused, even one no caller was waiting on:
	 * the read marks', a group's flush) ends the run here. */
	if (e->st.broken)
		stop_for_state(e);
	e->cnt.requests = conn->pacer.stats.requests - before->requests;
	e->cnt.throttled = conn->pacer.stats.throttled - before->throttled;
	count_list_requests(e, conn);
	e->cnt.seconds = (double)(now_ms() - t0) / 1000.0;
	if (!e->opts->dry_run)
		summary(e);
	e->waiting += e->cnt.failed + e->cnt.deferred;
	if (e->res) {
		e->res->maps = xrealloc(e->res->maps, (e->res->nmaps + 1) * sizeof *e->res->maps);
		e->res->maps[e->res->nmaps++] = (struct mapping_result){m->name, conn->name, e->cnt};
	}
	if (!e->opts->dry_run)
		state_run_mapping(&e->st, e->run_id, m->name, &e->cnt, m->mapping_hash);
	log_set_mapping(NULL);
}

/* Read marks (source.h) are a run's, not a plan's, and need a state: asked for with the
 * snapshot (marks_wanted), used by the read (run_mapping, not for a mapping that references
 * itself: one read once). */
static bool run_reads_marks(const struct engine *e)
{
	return !e->opts->dry_run && !e->opts->sink && !e->no_state;
}

static void run_mapping(struct engine *e, struct mapping *m, struct connector *conn)
{
	e->m = m;
	e->conn = conn;
	memset(&e->cnt, 0, sizeof e->cnt);
	e->readied = e->prepared = false;
	e->ncreates = 0;
	e->planned_terms = 0;
	e->mapping_stopped = false;
	long left0 = e->left, unrecorded0 = e->unrecorded;
	char *marks = NULL; /* this read's marks, stored if every record ends in step or recorded failing */
	/* Native references (Troops) are sent as they are: no parent to create first. */
	e->self_ref = !e->conn->type->native_refs && refs_itself(e->cfg, m, m->fields, m->nfields);
	e->keep_planned = e->opts->dry_run && referenced_in_run(e, m);
	/* More operations than requests in flight: an op waiting out a 429's Retry-After must not
	 * starve the pipeline; the pacer still lets only max_in_flight requests out at once. */
	e->max_inflight = conn->pacer.max_in_flight * 4;
	batch_room(e, m);
	log_set_mapping(m->name);
	int64_t t0 = now_ms();
	struct pacer_stats before = conn->pacer.stats;

	/* A list that could not be read (it may have stopped the connector) stops the run, as
	 * when each mapping read its own. */
	if (!mapping_each_lookup(m, load_lookup, e))
		goto out;
	if (conn->pacer.stopped) {
		log_error("skipped: connector %s is stopped for this run", conn->name);
		goto out;
	}
	struct cursor cur;
	char *err = NULL;
	if (!source_ready(&e->src, &err)) {
		stop_run(e, "%s", err);
		free(err);
		goto out;
	}
	compute_generation(e);
	/* --full sends everything: no row may be skipped for its hash. */
	struct src_filter flt = {.no_state = e->no_state, .generation = e->opts->full ? NULL : e->generation,
				 .key_unique = source_key_unique(&e->src, m),
				 .marks = run_reads_marks(e) && !e->self_ref,
				 .skipped = &e->cnt.skipped};
	if (e->opts->sink && e->opts->sink->preview) {
		flt.key = e->opts->sink->preview_key;
		flt.limit = e->opts->sink->preview_limit;
	}
	if (!cursor_open(&e->src, m, &flt, &cur, &err)) {
		log_error("cannot read the source of mapping %s (%s): %s", m->name, m->file, err);
		stop_run(e, "mapping %s: the source query failed", m->name);
		free(err);
		goto out;
	}
	struct row row;
	struct src_extra x;
	int rc;
	e->mapping_t0 = e->last_progress = now_ms();
	e->total_rows = e->opts->sink ? -1 : -2; /* -2: counted at the first progress report */
	while (!e->stop && (rc = cursor_next(&cur, &row, &x, &err)) == 1) {
		if (stop_requested(e)) {
			stop_run(e, "asked to stop; finishing the requests in flight");
			break;
		}
		if (run_window_over(e)) {
			e->left += !x.same; /* read, not sent: what the next run will find to do */
			continue;
		}
		process_row(e, &row, &x);
		report_progress(e, &cur, false);
	}
	if (!e->stop && rc < 0) {
		stop_run(e, "reading the source of mapping %s: %s", m->name, err);
		free(err);
	}
	e->cnt.rows = cur.rows;
	/* Rows the probe found in step that were skipped when they settled: skipped again, as a
	 * read joined with the links would say. */
	long long settled_skipped = cursor_settled_skipped(&cur);
	if (settled_skipped > e->cnt.unchanged)
		settled_skipped = e->cnt.unchanged; /* a run stopped, or its window over, before all were counted */
	e->cnt.unchanged -= (long)settled_skipped;
	e->cnt.skipped += (long)settled_skipped;
	if (!e->stop)
		marks = cursor_take_marks(&cur);
	cursor_close(&cur);
	flush_rehash(e);
	if (!e->stop && e->cnt.rows == 0 && !e->opts->force && !e->no_state) {
		long long last = state_last_rows(&e->st, m->name);
		if (last > 0)
			stop_run(e, "mass-change guard: the source of mapping %s is empty but had %lld rows last time; "
				    "check the ERP export, or run with --force",
				 m->name, last);
	}
	if (!e->stop && m->on_missing_terminate && !e->no_state)
		terminate_missing(e);
	flush_creates(e);
	pump(e, 0);
	if (e->self_ref && !run_window_over(e))
		run_parents_first(e, &flt);
	if (e->share_source && !reads_later(e, m))
		state_return(&e->st, source_close(&e->src)); /* read for the last time: the session back */
	if (e->opts->dry_run && e->planned_terms && !e->no_state && !e->opts->force) {
		long long active = state_active_links(&e->st, m->name);
		double share = active > 0 ? (double)e->planned_terms / (double)active : 1.0;
		if (share > e->cfg->max_terminations)
			log_warn("a run would stop here: the mass-change guard allows %.1f%% of mapping %s's %lld records to be "
				 "terminated or deleted, this plan has %ld (%.1f%%); `run --force` if that is intended",
				 e->cfg->max_terminations * 100, m->name, active, e->planned_terms, share * 100);
	}
	if (!e->stop)
		run_terminations(e);
	else
		for (size_t i = 0; i < e->nterms; i++) {
			e->cnt.failed++;
			op_free(e->terms[i]);
		}
	e->nterms = 0;
	for (size_t i = 0; i < e->nupdates; i++) {
		if (e->stop)
			e->cnt.failed++, op_free(e->updates[i]);
		else
			launch(e, e->updates[i]);
	}
	e->nupdates = 0;
	pump(e, 0);
	retry_transients(e);
	/* Every record in step, or failing or deferred with its failure recorded (the next night
	 * tries those again whatever the marks say), none left for the next run: the marks of this
	 * read speak for the links and failures as they are now (state_exec writes what waits first). */
	if (marks && !e->stop && !e->mapping_stopped && !conn->pacer.stopped && e->unrecorded == unrecorded0 &&
	    e->left == left0 && !state_marks_put(&e->st, m->name, marks))
		log_warn("mapping %s: its read marks were not stored (%s): the next run joins the links to every row",
			 m->name, e->st.err ? e->st.err : "state error");
out:
	free(marks);
	end_mapping(e, m, conn, &before, t0);
	strmap_clear(&e->refs);
	strmap_clear(&e->self_deferred);
	strmap_clear(&e->self_edges);
}

/* A pull mapping: platform records into the mirror's inbound table (pull.c). */
static void run_pull(struct engine *e, struct mapping *m, struct connector *conn)
{
	e->m = m;
	e->conn = conn;
	memset(&e->cnt, 0, sizeof e->cnt);
	log_set_mapping(m->name);
	int64_t t0 = now_ms();
	struct pacer_stats before = conn->pacer.stats;
	if (conn->pacer.stopped) {
		log_error("skipped: connector %s is stopped for this run", conn->name);
	} else if (e->no_state) {
		log_notice("pull skipped in a dry run before the first run");
	} else {
		struct pull_env pe = {.cfg = e->cfg, .opts = e->opts, .st = &e->st, .run_id = e->run_id, .conn = conn,
				      .cnt = &e->cnt};
		char *why = NULL;
		if (!pull_run(&pe, m, &why)) {
			stop_run(e, "pull %s: %s", m->name, why ? why : "failed");
			free(why);
		}
	}
	end_mapping(e, m, conn, &before, t0);
}


/*
 * Connect to the state. With the source (source): both sessions begun at once, so that the
 * server starts their backends side by side, and the source's setup sent as soon as its
 * session is made (source_open_send), answered while the lock is taken; if it cannot be,
 * *src_err says why (the run is recorded, then stops with it).
 */
static int connect_state(struct engine *e, bool source, char **src_err)
{
	struct db_start src = {0}, st;
	char *err = NULL;
	/* A run whose source role is the state's: one session, lent to the read (sync_run). */
	e->share_source = source && !e->cfg->source_conninfo && !e->opts->dry_run;
	if (e->share_source)
		source = false;
	if (source)
		db_connect_begin(&src, e->cfg, true, "source");
	db_connect_begin(&st, e->cfg, false, "state");
	if (source)
		http_init_once(); /* while the server starts the backends (http_new says if it failed) */
	if (source && !source_open_send(&e->src, e->cfg, &src, src_err) && !*src_err)
		*src_err = xstrdup("cannot open the source session");
	if (!state_connect_begun(&e->st, e->cfg, &st, &err)) {
		log_error("%s", err);
		free(err);
		return 3;
	}
	return 0;
}

/* Connect (connect_state) and take the run lock. */
static int lock_state(struct engine *e, bool source, char **src_err)
{
	int rc = connect_state(e, source, src_err);
	if (rc)
		return rc;
	char *err = NULL;
	int got = state_lock(&e->st, &err);
	if (got < 0) {
		log_error("cannot take the run lock: %s", err);
		free(err);
		return 3;
	}
	if (got == 0) {
		log_notice("another hrsync run holds the lock on state schema %s; not starting", e->cfg->state_schema);
		return 75;
	}
	return 0;
}

static int migrate_state(struct engine *e)
{
	char *err = NULL;
	if (!state_migrate(&e->st, &err)) {
		log_error("cannot create or upgrade the state schema %s: %s", e->cfg->state_schema, err);
		free(err);
		return 3;
	}
	return 0;
}

static int open_state(struct engine *e)
{
	int rc = lock_state(e, false, NULL);
	return rc ? rc : migrate_state(e);
}

/*
 * The mappings whose read may use read marks (run_reads_marks): the run's push mappings.
 * Their marks are read with the snapshot; those of a mapping that turns out not to use them
 * (its key not unique, a reference to itself) are not used.
 */
static bool *marks_wanted(const struct engine *e)
{
	bool *want = xcalloc(e->cfg->nmaps + 1, sizeof *want);
	for (size_t i = 0; i < e->cfg->nmaps; i++)
		want[i] = run_reads_marks(e) && e->cfg->maps[i]->dir == DIR_PUSH && selected(e->opts, e->cfg->maps[i]);
	return want;
}

/* A dry run reads the state as it is: no lock, no migration, no run recorded. */
static int open_state_readonly(struct engine *e, char **src_err)
{
	int rc = connect_state(e, true, src_err);
	if (rc)
		return rc;
	char *err = NULL;
	int have = state_exists(&e->st, &err);
	if (have < 0) {
		log_error("cannot read the state schema %s: %s", e->cfg->state_schema, err);
		free(err);
		return 3;
	}
	e->no_state = have == 0;
	return 0;
}

/* What the window left, for the log and the run's message; NULL when it did not end the run. */
static char *window_summary(struct engine *e)
{
	if (!e->window_over || e->stop)
		return NULL;
	char n[32];
	thousands(n, sizeof n, e->left);
	return xasprintf("the run window ended: %s record(s) left for the next run%s%s", n,
			 e->not_started.len ? "; not started: " : "", sb_str(&e->not_started));
}

int sync_migrate(struct config *cfg)
{
	struct engine e = {.cfg = cfg};
	int rc = open_state(&e);
	if (rc == 0)
		log_info("state schema %s is at version %d", cfg->state_schema, STATE_VERSION);
	state_close(&e.st);
	return rc;
}

void run_result_free(struct run_result *r)
{
	free(r->maps);
	memset(r, 0, sizeof *r);
}

/* The snapshot and the read marks sent (their answer read by source_ready); *src_err if not. */
static void take_snapshot(struct engine *e, char **src_err)
{
	e->src.stop = e->opts->stop ? e->opts->stop : &g_signalled;
	bool *marks = marks_wanted(e);
	if (!source_snapshot(&e->src, marks, src_err) && !*src_err)
		*src_err = xstrdup("cannot take the source's snapshot");
	free(marks);
}

int sync_run(struct config *cfg, const struct run_opts *opts, struct run_result *res)
{
	struct engine e = {.cfg = cfg, .opts = opts, .res = res};
	if (res) {
		memset(res, 0, sizeof *res);
		res->started = now_wall();
	}
	const char *ka = getenv("HRSYNC_TEST_KILL_BEFORE_COMMIT");
	e.kill_at = ka ? atol(ka) : 0;
	for (size_t i = 0; i < opts->nonly; i++)
		if (!config_mapping(cfg, opts->only[i])) {
			log_error("--mapping %s: no such mapping", opts->only[i]);
			if (res)
				res->exit_code = 2;
			return 2;
		}
	char *src_err = NULL; /* why the source session could not be opened */
	int rc = opts->dry_run ? open_state_readonly(&e, &src_err) : lock_state(&e, true, &src_err);
	if (!rc && !opts->dry_run)
		rc = migrate_state(&e);
	if (rc) {
		source_close(&e.src);
		free(src_err);
		state_close(&e.st);
		if (res)
			res->exit_code = rc;
		return rc;
	}
	/* The snapshot, now that the lock is held and the schema as this version needs it: its
	 * answer is read once the first mapping's lookups are in (source_ready), the server at
	 * work meanwhile (the run's record, the lookups). A stop request cancels the source's
	 * query. If it cannot be taken, the run is recorded, then stops. */
	if (!src_err && !e.share_source)
		take_snapshot(&e, &src_err);
	struct sigaction sa = {0}, old_term, old_int;
	sa.sa_handler = on_signal;
	g_signalled = 0;
	if (!opts->stop) {
		sigaction(SIGTERM, &sa, &old_term);
		sigaction(SIGINT, &sa, &old_int);
	}

	e.run_id = opts->dry_run ? 0 : state_run_begin(&e.st, opts->command ? opts->command : "run", false);
	if (!src_err && e.share_source && reads_later(&e, NULL)) {
		/* The run recorded, its session goes to the read until the last mapping has read. */
		source_open_shared(&e.src, cfg, state_lend(&e.st));
		take_snapshot(&e, &src_err);
	}
	log_set_run(e.run_id);
	int64_t t0 = now_ms();
	size_t nsel = 0;
	for (size_t i = 0; i < cfg->nmaps; i++)
		nsel += selected(opts, cfg->maps[i]);
	log_notice("run started: %zu mapping(s)%s", nsel, opts->dry_run ? " (dry run: nothing is sent)" : "");
	e.http = http_new();
	http_set_stop(e.http, opts->stop ? opts->stop : &g_signalled); /* blocking reads end on SIGTERM too */
	e.conns = xcalloc(cfg->nconns + 1, sizeof *e.conns);
	e.lookups = xcalloc(cfg->nconns + 1, sizeof *e.lookups);
	e.list_stats = xcalloc(cfg->nconns + 1, sizeof *e.list_stats);
	e.creates = xcalloc(CREATE_BUFFER, sizeof *e.creates);
	if (src_err) {
		stop_run(&e, "%s", src_err);
		free(src_err);
		goto done;
	}
	char *err = NULL;
	for (size_t i = 0; i < cfg->nconns; i++) {
		e.conns[i] = connector_new(&cfg->conns[i], e.http, &err);
		if (!e.conns[i]) {
			stop_run(&e, "connector %s: %s", cfg->conns[i].name, err ? err : "cannot start");
			free(err);
			err = NULL;
		}
	}
	if (!e.stop)
		read_lookups(&e);
	for (size_t i = 0; i < cfg->nmaps && !e.stop; i++) {
		struct mapping *m = cfg->maps[i];
		if (!selected(opts, m) || (opts->sink && opts->sink->preview && m->dir == DIR_PULL))
			continue;
		struct connector *c = conn_of(&e, m->conn);
		if (!c)
			continue;
		if (run_window_over(&e)) {
			sb_printf(&e.not_started, "%s%s", e.not_started.len ? ", " : "", m->name);
			continue;
		}
		if (m->dir == DIR_PUSH)
			run_mapping(&e, m, c);
		else
			run_pull(&e, m, c);
	}
done:
	if (e.src.pg)
		state_return(&e.st, source_close(&e.src));
	if (e.st.broken)
		stop_for_state(&e);
	char *window_msg = window_summary(&e);
	int code = e.stop ? 3 : e.waiting > 0 || window_msg ? 1 : 0;
	double secs = (double)(now_ms() - t0) / 1000.0;
	if (e.stop && e.st.broken)
		log_error("run stopped after %.1f s: %s. The state database failed: what the platform confirmed "
			  "since then is not recorded yet; the next run finds those records on the platform and links them",
			  secs, e.stop_reason);
	else if (e.stop)
		log_error("run stopped after %.1f s: %s. Everything done so far is recorded; the next run goes on from there",
			  secs, e.stop_reason);
	else if (window_msg)
		log_notice("run stopped by its window after %.1f s: %s", secs, window_msg);
	else if (opts->dry_run)
		log_notice("dry run finished in %.1f s: nothing was sent", secs);
	else
		log_notice("run finished in %.1f s: %s", secs,
			   code == 0 ? "every record is in step" : "some records failed or wait (see `hrsync failures`)");
	if (!e.st.broken && !opts->dry_run)
		state_run_end(&e.st, e.run_id, code, e.stop ? e.stop_reason : window_msg);
	/* A run that wrote many links leaves their pages all-visible for the next one (a stopped or
	 * windowed run leaves that to autovacuum: it is to end now). */
	if (!e.st.broken && !opts->dry_run && !e.stop && !window_msg)
		state_vacuum_links(&e.st);
	if (!opts->stop) {
		sigaction(SIGTERM, &old_term, NULL);
		sigaction(SIGINT, &old_int, NULL);
	}
	if (res) {
		res->run_id = e.run_id;
		res->exit_code = code;
		res->seconds = secs;
	}
	for (size_t i = 0; i < cfg->nconns; i++)
		connector_free(e.conns[i]);
	free(e.conns);
	free(e.creates);
	free(e.again);
	free(e.terms);
	http_free(e.http);
	for (size_t i = 0; i <= cfg->nconns; i++)
		strmap_clear(&e.lookups[i]);
	free(e.lookups);
	free(e.list_stats);
	strmap_clear(&e.lookup_errs);
	strmap_clear(&e.refs);
	strmap_clear(&e.planned);
	sb_free(&e.rehash_keys);
	sb_free(&e.rehash_vals);
	free(e.stop_reason);
	free(window_msg);
	free(e.updates);
	sb_free(&e.not_started);
	state_close(&e.st);
	log_set_run(0);
	return code;
}
