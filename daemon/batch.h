/*
 * batch — creates sent many to a request, for entities whose platform has a batch endpoint
 * (Troops' POST /candidates/import). An engine capability any connector may declare: the
 * entity's table names a struct batch, and the kit does the rest.
 *
 * A create runs as usual up to the moment it would be sent (kit_absent: after find looked
 * for what an interrupted run made). There it parks in the connector's queue, grouped by
 * what the batch request carries once for all its records (a Troops agency). A group that
 * reaches `max` records goes at once; the engine sends what is left when it has nothing
 * else to wait for (batch_flush, the largest group first). The answer's per-item results become per-record
 * outcomes: created (then the entity's sub-resources, as for a single create), existing
 * (adopted), refused with the platform's message, or parked again (rolled back for the
 * others' sake).
 *
 * A batch whose answer was lost (5xx, timeout, reset, an answer that is not JSON) is never
 * sent again blind: each of its records is looked for on the platform by its natural key
 * (the entity's find) after a backoff, and only those still absent park again for a new
 * batch. A batch the platform refuses as a whole (a 4xx) is sent record by record, so that
 * each record gets its own answer.
 *
 * Never blocks: everything here runs inside answers' callbacks or the engine's loop.
 */
#ifndef HRSYNC_BATCH_H
#define HRSYNC_BATCH_H

#include <stdbool.h>
#include <stddef.h>

#include "connector.h"

enum batch_outcome {
	BATCH_CREATED,   /* id: the new record's; message: warnings the platform gave (may be NULL) */
	BATCH_EXISTS,    /* the record is on the platform already: id (may be NULL: looked for) */
	BATCH_REFUSED,   /* message: why (the platform's words) */
	BATCH_AGAIN,     /* not created through no fault of its own (the batch rolled back): sent again */
};

struct batch_result {
	enum batch_outcome outcome;
	char *id;        /* owned by the result */
	char *message;   /* owned by the result */
};

struct batch {
	const char *path;        /* POST here: "/candidates/import" */
	int max;                 /* records per request */
	/* Whether batches are used for this connector's configuration (NULL: always). */
	bool (*enabled)(struct connector *c);
	/* What the request carries once for all its records (records of different groups go
	 * in different requests). Borrowed from op->payload; NULL: one group. */
	const char *(*group)(const struct op *op);
	/* The request's body around the records' create bodies (items: a JSON array, owned);
	 * first: the first record's op (for what the group shares). */
	struct jv *(*body)(struct connector *c, const struct op *first, struct jv *items);
	/* The result for the batch's ith record in the answer (r zeroed); false when the answer
	 * says nothing about it (it is then looked for, as after a lost answer). */
	bool (*result)(const struct jv *answer, size_t i, struct batch_result *r);
};

/* kit_absent: true when op's create waits for a batch (the entity has one, enabled). */
bool batch_park(struct op *op);
/* Send the largest group waiting; false when none waited. The engine calls it when it has
 * nothing else to wait for, again and again until it has room (or nothing waits). */
bool batch_flush(struct connector *c);
/* Records waiting in c's queue. */
size_t batch_waiting(const struct connector *c);
/* The connector's queue freed (connector_free); its ops must have been flushed. */
void batch_free(struct connector *c);

#endif
