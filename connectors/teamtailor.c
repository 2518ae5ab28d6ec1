/*
 * teamtailor — the Teamtailor API (JSON:API, https://docs.teamtailor.com), on the kit.
 *
 * The ERP owns the organisation (departments, locations) and the staff who hire (users);
 * Teamtailor owns the candidates. hrsync pushes the first and pulls back the hires (job
 * applications in a Hired stage, with the candidate and the job), which the ERP turns
 * into employees.
 *
 * Every request carries `Authorization: Token token=KEY`, `X-Api-Version` (option
 * api_version) and the JSON:API media type. Bodies are resource objects built by
 * jsonapi_body from the mapped fields (attributes, dashed as Teamtailor spells them) and
 * the nested group `relationships:` (one id per relationship); listings page by
 * `links.next`, 30 records a page (Teamtailor's most: a larger page[size] is refused).
 * A refused or missing version (406) stops the run and says the version Teamtailor
 * calls current; 401 and 403 stop it saying what they mean on Teamtailor.
 *
 * Entities (the table at the end):
 *   departments, locations   no external id: found by name (case and surrounding spaces
 *                            ignored) before a create; PATCHed by id afterwards.
 *   users                    `external-id` is the ERP key: found by it, then by e-mail (a
 *                            user HR invited by hand is adopted, one holding another
 *                            external id refused). Terminate
 *                            is role `no_access`: never DELETE, which is a hard delete.
 * Pull: job_applications in a Hired stage, incrementally by `updated-at`.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../daemon/jsonapi.h"
#include "../daemon/kit.h"
#include "../daemon/log.h"
#include "../daemon/lookups.h"

#define TT_DEFAULT_VERSION "20240904"
#define TT_PAGE_MAX 30                 /* page[size] above this: 400, code 118 */
#define PULL_LOOKBACK_S (10 * 60)      /* a pull re-reads what changed this long before the cursor */

struct tt {
	char version_header[64];        /* "X-Api-Version: 20240904" */
	struct nat_index dep_by_name, loc_by_name, user_by_xid, user_by_email;
};

static struct tt *TT(const struct connector *c)
{
	return c->priv;
}

static const struct pager tt_pages = {.style = PAGE_NEXT_LINK, .size_param = "page[size]", .size = TT_PAGE_MAX,
				      .items = "data", .pages = "meta.page-count", .total = "meta.record-count",
				      .next = "links.next", .item = jsonapi_listed};

/* ================= the envelope ================= */

static const struct jsonapi_rel user_rels[] = {{"department", "departments"}, {"location", "locations"}, {NULL, NULL}};

/* The resource object around the mapped fields: the entity's name is its JSON:API type. */
static struct jv *tt_body(struct op *op, struct jv *fields, bool create, char **why)
{
	/*
	 * No `merge: true` on a user's create: Teamtailor would fold a second ERP person with
	 * the same e-mail into the first, external-id and all. The find by e-mail before the
	 * create is the merge, and it refuses a user who holds another external-id.
	 */
	const struct jsonapi_rel *rels = streq(op->ent->name, "users") ? user_rels : NULL;
	return jsonapi_body(op->ent->name, create ? NULL : op->platform_id, fields, "relationships", rels, why);
}

/* ================= departments and locations: found by name ================= */

/* A name as Teamtailor's departments and locations are matched: trimmed, lower-cased in any
 * script ("  бухгалтерия " is "Бухгалтерия"). Caller frees; NULL for NULL. */
static char *name_key(const struct jv *name)
{
	return name && name->t == JV_STR ? lookups_norm(name->u.str.s) : NULL;
}

static struct nat_index *name_index(struct connector *c, const struct conn_entity *e)
{
	return streq(e->name, "departments") ? &TT(c)->dep_by_name : &TT(c)->loc_by_name;
}

static bool index_name(void *ud, const struct jv *item)
{
	char *k = name_key(kit_field(item, "name")), *id = jv_id_text(kit_field(item, "id"));
	if (k && id)
		nat_add(ud, k, id);
	free(k);
	free(id);
	return true;
}

/* A company has tens of them: the list is read once, rather than searched per record. */
static bool named_prepare(struct connector *c, const struct conn_entity *e, long pending, char **err)
{
	struct nat_index *ix = name_index(c, e);
	if (pending <= 0 || ix->ready)
		return true;
	nat_clear(ix);
	struct list_stats st;
	if (!conn_list(c, NULL, e->path, index_name, ix, &st, err)) {
		nat_clear(ix);
		return false;
	}
	/* A listing that gave fewer records than Teamtailor counted may miss one: not trusted. */
	ix->ready = st.total < 0 || st.seen == st.total;
	if (!ix->ready)
		nat_clear(ix);
	return true;
}

static bool name_match(struct op *op, const struct jv *item)
{
	char *a = name_key(kit_field(item, "name")), *b = name_key(jv_obj_get(op->payload, "name"));
	bool same = a && b && streq(a, b);
	free(a);
	free(b);
	return same;
}

static const struct search name_search = {.match = name_match, .found = kit_found_item, .absent = kit_absent,
					  .max_pages = 1000};

static void named_find(struct op *op)
{
	const char *id = NULL;
	char *name = name_key(jv_obj_get(op->payload, "name"));
	switch (nat_find(name_index(op->conn, op->ent), op, name, &id)) {
	case NAT_ONE:
		kit_found(op, id);
		break;
	case NAT_MANY:
		op_finish(op, OPR_REFUSED, "several %ss are named '%s' on Teamtailor; merge them first", op->ent->what,
			  name);
		break;
	case NAT_NONE:
		kit_absent(op);
		break;
	case NAT_UNKNOWN:
		op_search(op, &name_search, url_expand(op->ent->path, NULL, NULL, NULL));
		break;
	}
	free(name);
}

/* ================= users ================= */

static bool user_prepare(struct connector *c, const struct conn_entity *e, long pending, char **err)
{
	struct tt *tt = TT(c);
	tt->user_by_email.fold = true;
	return kit_index(c, e, "/users", pending,
			 (struct index_key[]){{&tt->user_by_xid, "external-id"}, {&tt->user_by_email, "email"}, {0}}, err);
}

static void user_email_listed(struct op *op)
{
	const struct jv *data = jv_obj_get(op->answer, "data");
	size_t n = data && data->t == JV_ARR ? data->u.arr.n : 0;
	if (n == 0) {
		kit_absent(op);
		return;
	}
	const struct jv *x = kit_field(data->u.arr.v[0], "external-id");
	const char *other = x && x->t == JV_STR && *x->u.str.s ? x->u.str.s : NULL;
	if (n > 1 || (other && !streq(other, op->key)))
		op_finish(op, OPR_REFUSED,
			  "the email is already used on Teamtailor by the user with external-id %s; fix the ERP or Teamtailor",
			  other ? other : "(none)");
	else
		kit_found_item(op, data->u.arr.v[0]); /* invited by hand: adopted, and given its external-id */
}

static const struct step user_by_email_step = {.doing = "looking for the user by email", .ok = user_email_listed,
					       .body = true};

static void user_by_email(struct op *op)
{
	const char *email = jv_obj_str(op->payload, "email");
	if (email && *email)
		op_get(op, &user_by_email_step, "/users", QUERY("filter[email]", email));
	else
		kit_absent(op);
}

static void user_xid_listed(struct op *op)
{
	const struct jv *data = jv_obj_get(op->answer, "data");
	size_t n = data && data->t == JV_ARR ? data->u.arr.n : 0;
	if (n == 0)
		user_by_email(op);
	else if (n > 1)
		op_finish(op, OPR_REFUSED, "%zu users have external-id %s on Teamtailor; merge them first", n, op->key);
	else
		kit_found_item(op, data->u.arr.v[0]);
}

static const struct step user_by_xid_step = {.doing = "looking for the user by external-id", .ok = user_xid_listed,
					     .body = true};

static void user_find(struct op *op)
{
	struct tt *tt = TT(op->conn);
	const char *id = NULL;
	switch (nat_find(&tt->user_by_xid, op, op->key, &id)) {
	case NAT_ONE:
		kit_found(op, id);
		return;
	case NAT_MANY:
		op_finish(op, OPR_REFUSED, "several users have external-id %s on Teamtailor; merge them first", op->key);
		return;
	case NAT_NONE:
		if (nat_find(&tt->user_by_email, op, jv_obj_str(op->payload, "email"), &id) == NAT_NONE)
			kit_absent(op);
		else
			user_by_email(op); /* read again: the index does not keep whose external-id it holds */
		return;
	case NAT_UNKNOWN:
		op_get(op, &user_by_xid_step, "/users", QUERY("filter[external-id]", op->key));
		return;
	}
}

static void user_terminate(struct op *op);
/* Setting a role twice changes nothing: a lost answer is sent again. A user deleted on
 * Teamtailor meanwhile has nothing left to terminate. */
static const struct step user_terminated = {.doing = "terminating the user (role no_access)", .gone = kit_done,
					    .lost = user_terminate};

/* Role no_access: the user keeps their history and receives no more mail. Never DELETE. */
static void user_terminate(struct op *op)
{
	struct jv *attrs = op->term && op->term->t == JV_OBJ ? jv_copy(op->term) : jv_obj();
	jv_obj_set(attrs, "role", jv_str("no_access"));
	char *why = NULL;
	struct jv *body = jsonapi_body("users", op->platform_id, attrs, "relationships", user_rels, &why);
	if (!body) {
		op_finish(op, OPR_REFUSED, "terminating the user: %s", why);
		free(why);
		return;
	}
	op_send(op, &user_terminated, "PATCH", "/users/{id}", body);
}

static char *tt_find_by_key(struct connector *c, const struct conn_entity *e, const char *key, char **err)
{
	if (!streq(e->name, "users"))
		return NULL; /* departments and locations keep no ERP key on Teamtailor */
	return conn_find_one(c, e, url_expand("/users", NULL, NULL, QUERY("filter[external-id]", key)), NULL, key, err);
}

/* ================= pull: hires ================= */

struct tt_pull {
	struct pull_pass pass;
	char max_updated[40];     /* the cursor: the latest updated-at listed (ISO 8601, UTC) */
};

static void note_updated(struct pull_pass *pp, const struct jv *item)
{
	struct tt_pull *pc = (struct tt_pull *)pp;
	const char *up = jv_obj_str(item, "updated-at");
	struct tm tm = {0};
	if (!up || !strptime(up, "%Y-%m-%dT%H:%M:%S", &tm))
		return;
	char norm[40];
	time_t t = timegm(&tm);
	gmtime_r(&t, &tm);
	strftime(norm, sizeof norm, "%Y-%m-%dT%H:%M:%SZ", &tm);
	if (strcmp(norm, pc->max_updated) > 0)
		snprintf(pc->max_updated, sizeof pc->max_updated, "%s", norm);
}

static bool tt_pull(struct connector *c, const char *entity, const struct jv *filter, const char *cursor,
		    bool (*cb)(void *ud, const char *platform_id, const struct jv *record), void *ud, char **next_cursor,
		    bool *complete, char **err)
{
	(void)filter; /* applied by the engine */
	if (!streq(entity, "job_applications")) {
		*err = xasprintf("teamtailor pulls job_applications only, not %s", entity);
		return false;
	}
	struct tt_pull pc = {.pass = {.cb = cb, .ud = ud, .ids = ID_DIGITS, .each = note_updated}};
	char from[40] = "";
	struct tm tm = {0};
	if (cursor && strptime(cursor, "%Y-%m-%dT%H:%M:%S", &tm)) {
		/* Clocks differ and updates land late: look back a little; a record seen twice is harmless. */
		time_t t = timegm(&tm) - PULL_LOOKBACK_S;
		gmtime_r(&t, &tm);
		strftime(from, sizeof from, "%Y-%m-%dT%H:%M:%SZ", &tm);
		snprintf(pc.max_updated, sizeof pc.max_updated, "%s", cursor);
	}
	char *path = url_expand("/job-applications", NULL, NULL,
				QUERY("filter[stage-type]", "Hired", "filter[updated-at][from]", *from ? from : NULL,
				      "include", "candidate,job"));
	*complete = !*from;
	bool ok = conn_list(c, &tt_pages, path, kit_pull_item, &pc.pass, NULL, err);
	free(path);
	if (!ok)
		*complete = false;
	*next_cursor = *pc.max_updated ? xstrdup(pc.max_updated) : NULL;
	return ok;
}

/* ================= answers that stop the run ================= */

/* "… Current version is: 20240904" in a 406's errors[].detail; NULL when not said. Caller frees. */
static char *current_version(const struct jv *body)
{
	const struct jv *errs = jv_obj_get(body, "errors");
	for (size_t i = 0; errs && errs->t == JV_ARR && i < errs->u.arr.n; i++) {
		const char *d = jv_obj_str(errs->u.arr.v[i], "detail");
		const char *at = d ? strstr(d, "Current version is:") : NULL;
		if (!at)
			continue;
		at += strlen("Current version is:");
		at += strspn(at, " ");
		size_t n = strspn(at, "0123456789");
		if (n >= 8 && n <= 10)
			return xstrndup(at, n);
	}
	return NULL;
}

static char *tt_stops(const struct connector *c, long status, const struct jv *body)
{
	const char *sent = c->cfg->strings[connector_option_index(c->type, "api_version")];
	if (status == 406) {
		char *cur = current_version(body);
		char *why = cur ? xasprintf("Teamtailor refused the API version %s (HTTP 406); the current version is %s: "
					    "set api_version: \"%s\" and check the changelog",
					    sent ? sent : TT_DEFAULT_VERSION, cur, cur)
				: xasprintf("Teamtailor refused the API version %s (HTTP 406) without naming the current one",
					    sent ? sent : TT_DEFAULT_VERSION);
		free(cur);
		return why;
	}
	if (status == 401)
		return xasprintf("credentials refused (HTTP 401): bad key, or a key of another region (base_url %s)",
				 c->cfg->base_url);
	if (status == 403)
		return xstrdup("credentials refused (HTTP 403): the key lacks the Admin scope (Teamtailor: Settings > "
			       "API keys; create an Admin key with read and write)");
	return NULL;
}

/* ================= the connector ================= */

static bool tt_init(struct connector *c, char **err)
{
	const char *v = c->cfg->strings[connector_option_index(c->type, "api_version")];
	if (!v)
		v = TT_DEFAULT_VERSION;
	if (strlen(v) != 8 || strspn(v, "0123456789") != 8) {
		*err = xasprintf("connector %s: api_version '%s' is not a Teamtailor version (YYYYMMDD, e.g. %s)", c->name,
				 v, TT_DEFAULT_VERSION);
		return false;
	}
	snprintf(TT(c)->version_header, sizeof TT(c)->version_header, "X-Api-Version: %s", v);
	return true;
}

static void tt_headers(struct connector *c, struct curl_slist **h)
{
	*h = curl_slist_append(*h, TT(c)->version_header);
}

static void tt_destroy(struct connector *c)
{
	struct tt *tt = TT(c);
	nat_clear_all(
		(struct nat_index *const[]){&tt->dep_by_name, &tt->loc_by_name, &tt->user_by_xid, &tt->user_by_email, NULL});
}

/* ================= reconcile: how records are listed ================= */

/* Departments and locations keep no ERP key on Teamtailor: their name is how hrsync finds them. */
static const struct conn_listing dep_listing = {.path = "/departments", .keys = {{"name", NULL, true}}};
static const struct conn_listing loc_listing = {.path = "/locations", .keys = {{"name", NULL, true}}};
static const struct conn_listing user_listing = {
	.path = "/users",
	.keys = {{"external-id", NULL, false}, {"email", NULL, true}},
	/* A listing names no related record without include=, which /users does not promise. */
	.write_only = NAMES("relationships.department", "relationships.location"),
	.terminated = NAMES("role"),   /* a leaver gets role no_access */
	.scope = "external-id",        /* users HR invited by hand (no external id) are Teamtailor's own */
};

static const struct conn_entity tt_entities[] = {
	{
		.name = "departments", .what = "department", .term = TERM_NONE,
		.path = "/departments", .item = "/departments/{id}", .ids = ID_DIGITS, .update_method = "PATCH",
		.prepare = named_prepare, .find = named_find, .body = tt_body,
		.required = NAMES("name"), .fields = NAMES("name"),

		.listing = &dep_listing,
	},
	{
		.name = "locations", .what = "location", .term = TERM_NONE,
		.path = "/locations", .item = "/locations/{id}", .ids = ID_DIGITS, .update_method = "PATCH",
		.prepare = named_prepare, .find = named_find, .body = tt_body,
		.required = NAMES("name"),
		.fields = NAMES("name", "city", "country", "address", "zip", "email", "phone", "headquarters", "lat",
				"long"),

		.listing = &loc_listing,
	},
	{
		.name = "users", .what = "user", .term = TERM_KEEP,
		.path = "/users", .item = "/users/{id}", .ids = ID_DIGITS, .update_method = "PATCH",
		.nested = NAMES("relationships"),
		.prepare = user_prepare, .find = user_find, .terminate = user_terminate, .body = tt_body,
		.required = NAMES("name", "email", "external-id"),
		.fields = NAMES("name", "email", "role", "title", "external-id", "signature", "locale", "time-zone",
				"hide-email", "relationships.department", "relationships.location", "terminate.title"),

		.listing = &user_listing,
	},
	{0},
};

const struct connector_type teamtailor_connector = {
	.name = "teamtailor",
	.title = "Teamtailor",
	.options = (const struct conn_option[]){
		{"token", OPT_SECRET, true, "the Teamtailor API key (Admin scope, read-write), e.g. { credential: teamtailor-token }"},
		{"api_version", OPT_STRING, false, "the X-Api-Version sent, YYYYMMDD (default " TT_DEFAULT_VERSION ")"},
		{NULL, OPT_STRING, false, NULL},
	},
	.auth = {.header = "Authorization: Token token=%s", .key = "token"},
	.media_type = JSONAPI_MEDIA_TYPE,
	.entities = tt_entities,
	.pager = &tt_pages,
	/* Lookup lists (`lookup: { resource: departments }`); `check --online` reads the first. */
	.resources = NAMES("departments", "locations"),
	/* 50 requests per 10 s per key: 5/s keeps a run inside the window. */
	.default_rate = 5.0,
	.priv_size = sizeof(struct tt),
	.init = tt_init,
	.destroy = tt_destroy,
	.headers = tt_headers,
	.stops = tt_stops,
	.find_by_key = tt_find_by_key,
	.pull = tt_pull,
	.pull_entities = NAMES("job_applications"),
};
