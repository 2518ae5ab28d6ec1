/*
 * test_jsonapi — JSON:API resource objects (daemon/jsonapi.c): a mapped record wrapped as
 * data.type/attributes/relationships, refused when its relationships group is not one id
 * per known relationship; a listed record flattened with its answer's included[] as pull
 * mappings read it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jsonapi.h"

#define T(name) static void name(void **state __attribute__((unused)))

static struct jv *parse(const char *text)
{
	char err[256] = "";
	struct jv *v = jv_parse(text, strlen(text), err, sizeof err);
	if (!v)
		fail_msg("parse %s: %s", text, err);
	return v;
}

static void is(struct jv *v, const char *want)
{
	char *s = jv_dumps(v);
	jv_free(v);
	if (strcmp(s, want) != 0) {
		char msg[1024];
		snprintf(msg, sizeof msg, "got %s, want %s", s, want);
		free(s);
		fail_msg("%s", msg);
	}
	free(s);
}

static const struct jsonapi_rel user_rels[] = {{"department", "departments"}, {"location", "locations"}, {NULL, NULL}};

T(body_wraps_attributes_and_relationships)
{
	char *why = NULL;
	struct jv *b = jsonapi_body("users", NULL,
				    parse("{\"name\":\"Ann\",\"external-id\":\"FR1\",\"relationships\":"
					  "{\"department\":12,\"location\":\"7\"}}"),
				    "relationships", user_rels, &why);
	assert_null(why);
	is(b, "{\"data\":{\"type\":\"users\",\"attributes\":{\"name\":\"Ann\",\"external-id\":\"FR1\"},"
	      "\"relationships\":{\"department\":{\"data\":{\"type\":\"departments\",\"id\":\"12\"}},"
	      "\"location\":{\"data\":{\"type\":\"locations\",\"id\":\"7\"}}}}}");
}

T(body_of_an_update_names_the_record_and_a_null_relationship_unsets_it)
{
	char *why = NULL;
	struct jv *b = jsonapi_body("users", "1001", parse("{\"role\":\"user\",\"relationships\":{\"department\":null}}"),
				    "relationships", user_rels, &why);
	is(b, "{\"data\":{\"type\":\"users\",\"id\":\"1001\",\"attributes\":{\"role\":\"user\"},"
	      "\"relationships\":{\"department\":{\"data\":null}}}}");
}

T(body_without_relationships_has_none)
{
	char *why = NULL;
	is(jsonapi_body("departments", NULL, parse("{\"name\":\"Sales\"}"), "relationships", NULL, &why),
	   "{\"data\":{\"type\":\"departments\",\"attributes\":{\"name\":\"Sales\"}}}");
	is(jsonapi_body("users", NULL, parse("{\"name\":\"A\",\"relationships\":null}"), "relationships", user_rels, &why),
	   "{\"data\":{\"type\":\"users\",\"attributes\":{\"name\":\"A\"}}}");
}

T(body_refuses_an_unknown_relationship)
{
	char *why = NULL;
	assert_null(jsonapi_body("users", NULL, parse("{\"relationships\":{\"team\":3}}"), "relationships", user_rels, &why));
	assert_string_equal(why, "relationships.team: a users has no such relationship");
	free(why);
}

T(body_refuses_a_relationship_that_is_not_one_id)
{
	char *why = NULL;
	assert_null(jsonapi_body("users", NULL, parse("{\"relationships\":{\"department\":[1,2]}}"), "relationships",
				 user_rels, &why));
	assert_string_equal(why, "relationships.department: a relationship takes one id (a number or a string)");
	free(why);
	why = NULL;
	assert_null(jsonapi_body("users", NULL, parse("{\"relationships\":5}"), "relationships", user_rels, &why));
	assert_string_equal(why, "relationships: expected one id per relationship");
	free(why);
}

static const char *PAGE =
	"{\"data\":[{\"id\":\"9000\",\"type\":\"job-applications\",\"attributes\":{\"changed-stage-at\":\"2026-12-01T10:00:00Z\","
	"\"id\":\"spoof\"},\"relationships\":{\"candidate\":{\"data\":{\"type\":\"candidates\",\"id\":\"5000\"}},"
	"\"job\":{\"data\":{\"type\":\"jobs\",\"id\":\"700\"}},\"stage\":{\"links\":{\"related\":\"x\"}},"
	"\"tags\":{\"data\":[{\"type\":\"tags\",\"id\":\"1\"},{\"type\":\"tags\",\"id\":\"2\"}]}}}],"
	"\"included\":[{\"id\":\"5000\",\"type\":\"candidates\",\"attributes\":{\"first-name\":\"Ann\",\"email\":\"a@x.org\"}},"
	"{\"id\":\"700\",\"type\":\"jobs\",\"attributes\":{\"title\":\"Seller\"},\"relationships\":{\"department\":"
	"{\"data\":{\"type\":\"departments\",\"id\":\"12\"}}}},"
	"{\"id\":\"5000\",\"type\":\"users\",\"attributes\":{\"first-name\":\"Not her\"}}]}";

T(flatten_joins_included_records)
{
	struct jv *page = parse(PAGE);
	const struct jv *item = jv_obj_get(page, "data")->u.arr.v[0];
	is(jsonapi_listed(item, page),
	   "{\"id\":\"9000\",\"changed-stage-at\":\"2026-12-01T10:00:00Z\","
	   "\"candidate\":{\"id\":\"5000\",\"first-name\":\"Ann\",\"email\":\"a@x.org\"},"
	   "\"job\":{\"id\":\"700\",\"title\":\"Seller\",\"department\":{\"id\":\"12\"}},"
	   "\"tags\":[{\"id\":\"1\"},{\"id\":\"2\"}]}");
	jv_free(page);
}

T(flatten_without_included_keeps_ids)
{
	struct jv *page = parse(PAGE);
	const struct jv *item = jv_obj_get(page, "data")->u.arr.v[0];
	struct jv *f = jsonapi_flatten(item, NULL);
	assert_string_equal(jv_obj_str(jv_obj_get(f, "candidate"), "id"), "5000");
	assert_null(jv_obj_get(jv_obj_get(f, "candidate"), "first-name"));
	assert_string_equal(jv_obj_str(jv_path(f, "job"), "id"), "700");
	jv_free(f);
	jv_free(page);
}

T(flatten_stops_at_two_levels_on_a_cycle)
{
	struct jv *page = parse("{\"data\":[{\"id\":\"1\",\"type\":\"a\",\"relationships\":{\"b\":{\"data\":{\"type\":\"b\",\"id\":\"2\"}}}}],"
				"\"included\":[{\"id\":\"2\",\"type\":\"b\",\"relationships\":{\"a\":{\"data\":{\"type\":\"a\",\"id\":\"1\"}}}},"
				"{\"id\":\"1\",\"type\":\"a\",\"relationships\":{\"b\":{\"data\":{\"type\":\"b\",\"id\":\"2\"}}}}]}");
	is(jsonapi_listed(jv_obj_get(page, "data")->u.arr.v[0], page),
	   "{\"id\":\"1\",\"b\":{\"id\":\"2\",\"a\":{\"id\":\"1\",\"b\":{\"id\":\"2\"}}}}");
	jv_free(page);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(body_wraps_attributes_and_relationships),
		cmocka_unit_test(body_of_an_update_names_the_record_and_a_null_relationship_unsets_it),
		cmocka_unit_test(body_without_relationships_has_none),
		cmocka_unit_test(body_refuses_an_unknown_relationship),
		cmocka_unit_test(body_refuses_a_relationship_that_is_not_one_id),
		cmocka_unit_test(flatten_joins_included_records),
		cmocka_unit_test(flatten_without_included_keeps_ids),
		cmocka_unit_test(flatten_stops_at_two_levels_on_a_cycle),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
