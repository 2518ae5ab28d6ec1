/*
 * test_lookups — the per-run cache of reference lists behind `lookup:` fields (mappings/README.md:
 * names match exactly after trimming, ignoring case; a name two items share is refused).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "lookups.h"

#define T(name) static void name(void **state __attribute__((unused)))

static struct jv *list(const char *json)
{
	struct jv *v = jv_parse(json, strlen(json), NULL, 0);
	assert_non_null(v);
	return v;
}

static const char *const DEPTS = "[{\"id\": 11, \"name\": \"Paie \"}, {\"id\": 12, \"name\": \"Logistique\"},"
				 " {\"id\": 13, \"name\": \"logistique\"}, {\"name\": \"no id\"}, {\"id\": 14}]";

T(names_match_trimmed_and_ignoring_case)
{
	struct strmap lk = {0};
	struct jv *items = list(DEPTS);
	assert_false(lookups_loaded(&lk, "departments", "name"));
	lookups_add(&lk, "departments", "name", items);
	assert_true(lookups_loaded(&lk, "departments", "name"));
	assert_false(lookups_loaded(&lk, "positions", "name"));
	struct jv *out = NULL;
	assert_true(lookups_find(&lk, "departments", "name", "  PAIE", &out));
	char *s = jv_dumps(out);
	assert_string_equal(s, "11");
	free(s);
	jv_free(out);
	/* unknown: false, nothing said */
	assert_false(lookups_find(&lk, "departments", "name", "Ventes", &out));
	assert_null(out);
	/* the same name in another list (or matched on another field) is not found */
	assert_false(lookups_find(&lk, "departments", "code", "paie", &out));
	assert_null(out);
	jv_free(items);
	strmap_clear(&lk);
}

T(a_shared_name_is_refused_with_the_reason)
{
	struct strmap lk = {0};
	struct jv *items = list(DEPTS);
	lookups_add(&lk, "departments", "name", items);
	struct jv *out = NULL;
	assert_false(lookups_find(&lk, "departments", "name", "Logistique", &out));
	assert_non_null(out);
	char *why = jv_scalar_text(out);
	assert_non_null(strstr(why, "several departments have name 'Logistique'"));
	free(why);
	jv_free(out);
	jv_free(items);
	strmap_clear(&lk);
}

T(the_digest_follows_the_list)
{
	struct strmap a = {0}, b = {0};
	struct jv *x = list(DEPTS), *y = list("[{\"id\": 11, \"name\": \"Paie et RH\"}]");
	assert_null(lookups_digest(&a, "departments", "name"));
	lookups_add(&a, "departments", "name", x);
	lookups_add(&b, "departments", "name", y);
	const char *da = lookups_digest(&a, "departments", "name"), *db = lookups_digest(&b, "departments", "name");
	assert_non_null(da);
	assert_non_null(db);
	assert_int_equal(strlen(da), 64);
	assert_string_not_equal(da, db);
	/* a missing list (NULL) is loaded as empty, not a crash */
	lookups_add(&a, "positions", "name", NULL);
	assert_true(lookups_loaded(&a, "positions", "name"));
	jv_free(x);
	jv_free(y);
	strmap_clear(&a);
	strmap_clear(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(names_match_trimmed_and_ignoring_case),
		cmocka_unit_test(a_shared_name_is_refused_with_the_reason),
		cmocka_unit_test(the_digest_follows_the_list),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
