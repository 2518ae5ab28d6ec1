/*
 * test_listing — how `hrsync reconcile` reads a listed record back as payload fields
 * (daemon/kit.c: kit_listed_field, kit_listed_same): values the platform answers in another
 * shape than hrsync sent them are the same value (no false drift); a field the platform does
 * not return is NULL (not compared), a field it returns as null is null (compared).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kit.h"

#define T(name) static void name(void **state __attribute__((unused)))

static struct jv *parse(const char *text)
{
	char err[256] = "";
	struct jv *v = jv_parse(text, strlen(text), err, sizeof err);
	if (!v)
		fail_msg("parse %s: %s", text, err);
	return v;
}

static bool same(const char *sent, const char *listed)
{
	struct jv *a = parse(sent), *b = parse(listed);
	bool s = kit_listed_same(a, b);
	jv_free(a);
	jv_free(b);
	return s;
}

T(test_same_values_in_another_shape)
{
	assert_true(same("\"Ivanova\"", "\"Ivanova\""));
	assert_true(same("206", "\"206\""));                          /* an id as a number or its text */
	assert_true(same("\"2024-01-31\"", "\"2024-01-31T00:00:00+01:00\""));   /* Personio's dates */
	assert_true(same("\"2024-01-31T00:00:00Z\"", "\"2024-01-31\""));
	assert_true(same("null", "null"));
	assert_true(same("null", "\"\""));                            /* an empty text is no value */
	assert_true(same("true", "true"));
	assert_true(same("[1,2]", "[1,2]"));
	assert_true(same("12.50", "12.5"));                           /* a number in the platform's notation */
	assert_true(same("12.50", "\"12.5\""));
}

T(test_different_values)
{
	assert_false(same("\"Ivanova\"", "\"ivanova\""));             /* case is a change */
	assert_false(same("\"2024-01-31\"", "\"2024-02-01T00:00:00+01:00\""));
	assert_false(same("\"2024-01-31\"", "\"2024-01-310\""));
	assert_false(same("206", "207"));
	assert_false(same("null", "\"x\""));
	assert_false(same("\"x\"", "null"));
	assert_false(same("[1,2]", "[2,1]"));
	assert_false(same("{\"a\":1}", "\"1\""));
	assert_false(same("\"12.50\"", "\"12.5\""));                  /* texts are compared as texts */
	assert_false(same("12.5", "\"12.5x\""));
}

T(test_listed_field_paths)
{
	struct jv *item = parse("{\"id\": 7, \"last_name\": \"Roy\", \"position\": {\"department_id\": 206},"
				" \"attributes\": {\"email\": {\"label\": \"Email\", \"value\": \"a@b.c\"}},"
				" \"gone\": null}");
	struct jv *v = kit_listed_field(item, "last_name");
	assert_non_null(v);
	assert_string_equal(v->u.str.s, "Roy");
	jv_free(v);
	v = kit_listed_field(item, "position.department_id");
	assert_non_null(v);
	assert_int_equal(v->u.i, 206);
	jv_free(v);
	v = kit_listed_field(item, "email");       /* under attributes, unwrapped */
	assert_non_null(v);
	assert_string_equal(v->u.str.s, "a@b.c");
	jv_free(v);
	v = kit_listed_field(item, "gone");        /* returned as null: compared */
	assert_non_null(v);
	assert_true(jv_is_null(v));
	jv_free(v);
	assert_null(kit_listed_field(item, "social_security_number"));     /* not returned */
	assert_null(kit_listed_field(item, "position.location_id"));
	assert_null(kit_listed_field(item, "last_name.first"));
	jv_free(item);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_same_values_in_another_shape),
		cmocka_unit_test(test_different_values),
		cmocka_unit_test(test_listed_field_paths),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
