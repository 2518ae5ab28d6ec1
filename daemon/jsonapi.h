/*
 * jsonapi — the JSON:API envelope (jsonapi.org) for connectors whose platform speaks it
 * (Teamtailor): a mapped record sent as a resource object, and a listed resource object
 * joined to the records its answer `included`, flattened the way pull mappings read
 * records. The rest of JSON:API needs nothing of its own: the media type is the
 * connector type's `media_type`, `errors[]` (detail, then title) is read by
 * platform_message, `links.next` paging is PAGE_NEXT_LINK (kit.h), a created record's id
 * is `data.id` (kit_answer_id). Pure functions: no I/O.
 */
#ifndef HRSYNC_JSONAPI_H
#define HRSYNC_JSONAPI_H

#include "json.h"

#define JSONAPI_MEDIA_TYPE "application/vnd.api+json"

/* A relationship a resource may hold: its name in the mapping's `relationships:` group and
 * on the wire ("department"), and the type of the records it points at ("departments"). */
struct jsonapi_rel {
	const char *name;
	const char *type;
};

/*
 * The body of a create or an update: {"data": {"type", "id" (when id is set),
 * "attributes": the fields, "relationships": {name: {"data": {"type", "id"}}}}}. fields
 * (owned) are the mapped record; its nested object `group` ("relationships") holds one id
 * per relationship (a number or a string; null sends {"data": null}, which unsets it) and
 * is taken out of the attributes. rels ({NULL} ends) names the relationships the resource
 * has. NULL + *why (caller frees) when the group names another relationship, or holds an
 * id that is not a scalar.
 */
struct jv *jsonapi_body(const char *type, const char *id, struct jv *fields, const char *group,
			const struct jsonapi_rel *rels, char **why);

/*
 * A resource object as a pull mapping reads it: its `id` and its attributes at the top
 * (`changed-stage-at`), and each relationship as an object under the relationship's name
 * holding the related `id` and, when `included` (the answer's included[], may be NULL)
 * has that record, its attributes and its own relationships the same way, two levels
 * deep (`candidate.first-name`, `job.department.id`). A to-many relationship is a list of
 * such objects. An attribute named like `id` or a relationship does not replace them.
 * Caller frees.
 */
struct jv *jsonapi_flatten(const struct jv *record, const struct jv *included);

/* The pager's item hook (kit.h struct pager.item) for JSON:API listings: the item
 * flattened with the page's included[]. Caller frees. */
struct jv *jsonapi_listed(const struct jv *item, const struct jv *page);

#endif
