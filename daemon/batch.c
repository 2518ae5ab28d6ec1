/*
 * batch — creates many to a request (see batch.h). Owns the queue of parked creates and
 * the batch requests in flight; the ops stay the engine's.
 */
#define _GNU_SOURCE
#include "batch.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kit.h"
#include "log.h"
#include "throttle.h"

struct batch_group {
	char *key;                 /* what the group's records share ("" when the entity has no groups) */
	struct op **ops;
	size_t n, cap;
};

struct batch_queue {
	const struct conn_entity *ent;
	struct batch_group *groups;
	size_t ngroups, capgroups;
	size_t waiting;
};

/* One batch request in flight: its records, in the order of the request's items. */
struct batch_req {
	struct connector *conn;
	const struct conn_entity *ent;
	struct op **ops;
	size_t n;
	struct http_call call;
};

static const char *what(const struct conn_entity *e)
{
	return e->what ? e->what : "record";
}

size_t batch_waiting(const struct connector *c)
{
	return c->batchq ? c->batchq->waiting : 0;
}

void batch_free(struct connector *c)
{
	struct batch_queue *q = c->batchq;
	if (!q)
		return;
	for (size_t i = 0; i < q->ngroups; i++) {
		free(q->groups[i].key);
		free(q->groups[i].ops);
	}
	free(q->groups);
	free(q);
	c->batchq = NULL;
}

/* ---- the answer ---- */

static void refind(struct op *op)
{
	if (op->ent->find)
		op->ent->find(op);
	else
		op_finish(op, OPR_TRANSIENT, "creating the %s in a batch: the answer was lost, and there is no way to look for it",
			  what(op->ent));
}

/* The platform may have created it: look for it after a backoff, then only an absent one goes again. */
static void look_again(struct op *op, const struct http_call *call, const char *why)
{
	op->call.timed_out = call->timed_out;
	if (!op_retry_later(op, refind, op->conn->pacer.max_attempts))
		op_finish(op, OPR_TRANSIENT, "creating the %s in a batch: %s", what(op->ent), why);
}

static void one_result(struct batch_req *br, struct op *op, const struct jv *answer, size_t i)
{
	const struct conn_entity *e = br->ent;
	struct batch_result r = {0};
	if (!e->batch->result(answer, i, &r)) {
		look_again(op, &br->call, "the answer says nothing about this record");
		return;
	}
	char *doing = xasprintf("creating the %s in a batch", what(e));
	switch (r.outcome) {
	case BATCH_CREATED:
		if (!r.id) {
			look_again(op, &br->call, "the answer carries no id for this record");
			break;
		}
		if (!op_id_ok(op, e->ids, what(e), doing, r.id))
			break;
		free(op->platform_id);
		op->platform_id = r.id;
		r.id = NULL;
		op->main_done = true;
		if (r.message)
			log_rec(L_WARN, op->key, "create", "%s created with warnings: %s", what(e), r.message);
		kit_written(op);
		break;
	case BATCH_EXISTS:
		if (r.id)
			kit_found(op, r.id);
		else
			look_again(op, &br->call, "the platform says it exists already");
		break;
	case BATCH_REFUSED:
		op_finish(op, OPR_REFUSED, "%s: %s", doing, r.message ? r.message : "refused");
		break;
	case BATCH_AGAIN:
		/* Not its fault (the others' warnings rolled the batch back): in the next batch, a few times. */
		if (++op->attempt < 3 && batch_park(op))
			break;
		op_finish(op, OPR_TRANSIENT, "%s: %s", doing, r.message ? r.message : "not created");
		break;
	}
	free(doing);
	free(r.id);
	free(r.message);
}

static void batch_done(struct http_call *call)
{
	struct batch_req *br = call->arg;
	struct connector *c = br->conn;
	if (conn_resend_on_401(c, call))
		return;
	long s = call->status;
	/* The ops may finish (and the engine start more) while we go through them: take them first. */
	struct op **ops = br->ops;
	size_t n = br->n;
	br->ops = NULL;
	if (call->outcome == CALL_ANSWERED && (s == 401 || s == 403)) {
		char *m = platform_message(c->type, call->resp, call->resp_len);
		pacer_stop(&c->pacer, "credentials refused (HTTP %ld%s%s)", s, m ? ": " : "", m ? m : "");
		free(m);
		for (size_t i = 0; i < n; i++)
			op_finish(ops[i], OPR_STOPPED, "credentials refused (HTTP %ld)", s);
	} else if (call->outcome == CALL_STOPPED) {
		for (size_t i = 0; i < n; i++)
			op_finish(ops[i], OPR_STOPPED, "%s", call->err);
	} else if (call->outcome != CALL_ANSWERED || (s >= 200 && s < 300 && !call->resp_len)) {
		/* Lost: the platform may have created some or all of them. */
		log_warn("POST %s: the answer to a batch of %zu %s creates was lost (%s); looking for each before "
			 "sending it again", br->ent->batch->path, n, what(br->ent), call->err[0] ? call->err : "empty answer");
		for (size_t i = 0; i < n; i++)
			look_again(ops[i], call, call->err[0] ? call->err : "empty answer");
	} else if (s >= 200 && s < 300) {
		char perr[200];
		struct jv *answer = jv_parse(call->resp, call->resp_len, perr, sizeof perr);
		if (!answer) {
			char why[300];
			snprintf(why, sizeof why, "HTTP %ld but the answer is not JSON: %s", s, perr);
			log_warn("POST %s: %s; looking for each of the batch's %zu records", br->ent->batch->path, why, n);
			for (size_t i = 0; i < n; i++)
				look_again(ops[i], call, why);
		} else {
			for (size_t i = 0; i < n; i++)
				one_result(br, ops[i], answer, i);
		}
		jv_free(answer);
	} else {
		/* Refused as a whole (400, 404, 422...): each record alone, to get each its own answer. */
		char *m = platform_message(c->type, call->resp, call->resp_len);
		log_warn("POST %s: HTTP %ld%s%s; sending its %zu %s creates one by one", br->ent->batch->path, s, m ? ": " : "",
			 m ? m : "", n, what(br->ent));
		free(m);
		for (size_t i = 0; i < n; i++) {
			ops[i]->kit.no_batch = true;
			kit_absent(ops[i]);
		}
	}
	free(ops);
	http_call_reset(&br->call);
	free(br);
}

/* ---- sending ---- */

static void send_group(struct connector *c, const struct conn_entity *e, struct batch_group *g)
{
	struct batch_req *br = xcalloc(1, sizeof *br);
	br->conn = c;
	br->ent = e;
	br->ops = xcalloc(g->n ? g->n : 1, sizeof *br->ops);
	struct jv *items = jv_arr();
	const struct op *first = NULL;
	/* Take the group's ops first: a record refused here may finish, and the engine may park more. */
	struct op **ops = g->ops;
	size_t n = g->n;
	g->ops = NULL;
	g->n = g->cap = 0;
	c->batchq->waiting -= n;
	for (size_t i = 0; i < n; i++) {
		struct op *op = ops[i];
		char *why = NULL;
		struct jv *b = kit_body(op, op->payload, true, &why);
		if (!b) {
			op_finish(op, OPR_REFUSED, "%s", why ? why : "the record cannot be sent");
			free(why);
			continue;
		}
		if (!first)
			first = op;
		jv_arr_push(items, b);
		br->ops[br->n++] = op;
	}
	free(ops);
	if (!br->n) {
		jv_free(items);
		free(br->ops);
		free(br);
		return;
	}
	struct jv *body = e->batch->body(c, first, items);
	char *text = jv_dumps(body);
	jv_free(body);
	log_debug("POST %s: a batch of %zu %s creates", e->batch->path, br->n, what(e));
	br->call.pacer = &c->pacer;
	br->call.method = "POST";
	br->call.url = xasprintf("%s%s", c->cfg->base_url, e->batch->path);
	br->call.idempotent = false;
	br->call.body = text;
	br->call.body_len = strlen(text);
	br->call.body_type = c->type->media_type ? c->type->media_type : "application/json";
	br->call.done = batch_done;
	br->call.arg = br;
	conn_send_call(c, &br->call);
}

bool batch_flush(struct connector *c)
{
	struct batch_queue *q = c ? c->batchq : NULL;
	if (!q || !q->waiting)
		return false;
	/* The largest group: it frees the most room, and the others may still fill up meanwhile. */
	size_t best = 0;
	for (size_t i = 1; i < q->ngroups; i++)
		if (q->groups[i].n > q->groups[best].n)
			best = i;
	send_group(c, q->ent, &q->groups[best]);
	return true;
}

bool batch_park(struct op *op)
{
	struct connector *c = op->conn;
	const struct conn_entity *e = op->ent;
	const struct batch *b = e->batch;
	if (!b || op->kit.no_batch || (b->enabled && !b->enabled(c)))
		return false;
	if (!c->batchq)
		c->batchq = xcalloc(1, sizeof *c->batchq);
	struct batch_queue *q = c->batchq;
	if (q->ent != e) {
		while (batch_flush(c)) /* another entity's creates go first */
			;
		q->ent = e;
	}
	const char *key = b->group ? b->group(op) : NULL;
	if (!key)
		key = "";
	struct batch_group *g = NULL;
	for (size_t i = 0; i < q->ngroups && !g; i++)
		if (streq(q->groups[i].key, key))
			g = &q->groups[i];
	if (!g) {
		grow(&q->groups, &q->capgroups, q->ngroups + 1, sizeof *q->groups);
		g = &q->groups[q->ngroups++];
		memset(g, 0, sizeof *g);
		g->key = xstrdup(key);
	}
	grow(&g->ops, &g->cap, g->n + 1, sizeof *g->ops);
	g->ops[g->n++] = op;
	q->waiting++;
	if ((int)g->n >= b->max)
		send_group(c, e, g);
	return true;
}
