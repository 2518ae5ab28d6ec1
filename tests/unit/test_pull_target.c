/*
 * test_pull_target — where a pull mapping may write (hrsync.yaml(5), inbound_schemas):
 * config_pull_target_refused on a configuration built by hand.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "config.h"

#define T(name) static void name(void **state __attribute__((unused)))

static char *inbound[] = {"erp_inbound", "payroll_in"};

static const char *refused(const char *table, bool by_default, char *buf, size_t len)
{
	struct config c;
	memset(&c, 0, sizeof c);
	c.state_schema = "hrsync";
	c.inbound_schemas = inbound;
	c.ninbound = by_default ? 1 : 2;
	c.inbound_default = by_default;
	return config_pull_target_refused(&c, table, buf, len);
}

T(inbound_table_is_accepted)
{
	char buf[512];
	assert_null(refused("erp_inbound.absences", true, buf, sizeof buf));
	assert_null(refused("payroll_in.hires", false, buf, sizeof buf));
}

T(state_schema_is_refused)
{
	char buf[512];
	const char *why = refused("hrsync.links", false, buf, sizeof buf);
	assert_non_null(why);
	assert_non_null(strstr(why, "hrsync is hrsync's state schema"));
}

T(other_schema_is_refused_naming_the_key)
{
	char buf[512];
	const char *why = refused("erp.employees", true, buf, sizeof buf);
	assert_non_null(why);
	assert_string_equal(why, "schema erp is not an inbound schema (database inbound_schemas: [erp_inbound], the "
				 "default); add it there if hrsync may write to it");
	why = refused("erp.employees", false, buf, sizeof buf);
	assert_non_null(strstr(why, "[erp_inbound, payroll_in])"));
}

T(prefix_of_an_inbound_schema_is_not_one)
{
	char buf[512];
	assert_non_null(refused("erp_in.absences", true, buf, sizeof buf));
	assert_non_null(refused("erp_inbound_x.absences", true, buf, sizeof buf));
	assert_non_null(refused("hrsyncx.links", true, buf, sizeof buf));
}

T(table_without_schema_is_refused)
{
	char buf[512];
	assert_non_null(strstr(refused("absences", true, buf, sizeof buf), "name its schema"));
	assert_non_null(strstr(refused(".absences", true, buf, sizeof buf), "name its schema"));
	assert_non_null(refused(NULL, true, buf, sizeof buf));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(inbound_table_is_accepted),
		cmocka_unit_test(state_schema_is_refused),
		cmocka_unit_test(other_schema_is_refused_naming_the_key),
		cmocka_unit_test(prefix_of_an_inbound_schema_is_not_one),
		cmocka_unit_test(table_without_schema_is_refused),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
