/*
 * test_ref — flexible references (mappings/README.md, `ref`): erp:, ssn: and troops:, and uuid_valid.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "ref.h"

#define T(name) static void name(void **state __attribute__((unused)))

struct parsed {
	bool ok;
	enum ref_scheme scheme;
	const char *id;
	char nir[16];
	char why[160];
};

static struct parsed parse(const char *s)
{
	struct parsed p;
	memset(&p, 0, sizeof p);
	p.scheme = (enum ref_scheme)-1;
	p.ok = ref_parse(s, &p.scheme, &p.id, p.nir, p.why, sizeof p.why);
	return p;
}

/* No group of the NIR's digits (2 or more) appears in why. */
static void assert_no_nir_digits(const char *why, const char *const *groups, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (strstr(why, groups[i]))
			fail_msg("reason \"%s\" echoes part of the NIR (\"%s\")", why, groups[i]);
}

T(erp_valid)
{
	const char *s = "erp:00123";
	struct parsed p = parse(s);
	assert_true(p.ok);
	assert_int_equal(p.scheme, REF_ERP);
	assert_string_equal(p.id, "00123");
	assert_ptr_equal(p.id, s + 4); /* points into s */
}

T(erp_id_keeps_everything_after_first_colon)
{
	struct parsed p = parse("erp:FR01:42");
	assert_true(p.ok);
	assert_int_equal(p.scheme, REF_ERP);
	assert_string_equal(p.id, "FR01:42");
}

T(erp_empty_id_fails)
{
	struct parsed p = parse("erp:");
	assert_false(p.ok);
	assert_true(strlen(p.why) > 0);
	assert_non_null(strstr(p.why, "no id"));
}

T(ssn_empty_id_fails)
{
	struct parsed p = parse("ssn:");
	assert_false(p.ok);
	assert_non_null(strstr(p.why, "no id"));
}

T(troops_empty_id_fails)
{
	struct parsed p = parse("troops:");
	assert_false(p.ok);
	assert_non_null(strstr(p.why, "no id"));
}

T(ssn_valid_with_spaces)
{
	const char *s = "ssn:1 85 05 78 006 084 91";
	struct parsed p = parse(s);
	assert_true(p.ok);
	assert_int_equal(p.scheme, REF_SSN);
	assert_string_equal(p.nir, "185057800608491");
	assert_ptr_equal(p.id, s + 4);
}

T(ssn_valid_corsica)
{
	struct parsed p = parse("ssn:185052A00608435");
	assert_true(p.ok);
	assert_int_equal(p.scheme, REF_SSN);
	assert_string_equal(p.nir, "185052A00608435");
}

T(ssn_bad_key_fails_without_echoing_nir)
{
	static const char *const groups[] = {"185", "85", "05", "78", "006", "084", "90", "0578", "1850578006084"};
	struct parsed p = parse("ssn:1 85 05 78 006 084 90");
	assert_false(p.ok);
	assert_true(strlen(p.why) > 0);
	assert_non_null(strstr(p.why, "key"));
	assert_no_nir_digits(p.why, groups, sizeof groups / sizeof groups[0]);
}

T(ssn_bad_length_fails_without_echoing_nir)
{
	static const char *const groups[] = {"185", "85", "05", "78", "006", "084", "9"};
	struct parsed p = parse("ssn:1 85 05 78 006 084 9");
	assert_false(p.ok);
	assert_true(strlen(p.why) > 0);
	assert_no_nir_digits(p.why, groups, sizeof groups / sizeof groups[0]);
}

T(ssn_bad_char_fails_without_echoing_nir)
{
	static const char *const groups[] = {"185", "85", "05", "7X", "006", "084", "91"};
	struct parsed p = parse("ssn:1 85 05 7X 006 084 91");
	assert_false(p.ok);
	assert_true(strlen(p.why) > 0);
	assert_no_nir_digits(p.why, groups, sizeof groups / sizeof groups[0]);
}

T(ssn_bad_month_fails_without_echoing_nir)
{
	static const char *const groups[] = {"185", "85", "13", "78", "006", "084"};
	struct parsed p = parse("ssn:1 85 13 78 006 084 91");
	assert_false(p.ok);
	assert_non_null(strstr(p.why, "month"));
	assert_no_nir_digits(p.why, groups, sizeof groups / sizeof groups[0]);
}

T(troops_valid_uuid)
{
	struct parsed p = parse("troops:123e4567-e89b-12d3-a456-426614174000");
	assert_true(p.ok);
	assert_int_equal(p.scheme, REF_TROOPS);
	assert_string_equal(p.id, "123e4567-e89b-12d3-a456-426614174000");
}

T(troops_uppercase_uuid)
{
	struct parsed p = parse("troops:123E4567-E89B-12D3-A456-426614174000");
	assert_true(p.ok);
	assert_int_equal(p.scheme, REF_TROOPS);
}

T(troops_invalid_uuid_fails)
{
	static const char *const bad[] = {
		"troops:123e4567e89b12d3a456426614174000",     /* no hyphens */
		"troops:123e4567-e89b-12d3-a456-42661417400",  /* one short */
		"troops:123e4567-e89b-12d3-a456-4266141740000", /* one long */
		"troops:123e4567-e89b-12d3-a456-42661417400g", /* not hex */
		"troops:123e456-7e89b-12d3-a456-426614174000", /* hyphen misplaced */
		"troops:E42",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		struct parsed p = parse(bad[i]);
		assert_false(p.ok);
		assert_non_null(strstr(p.why, "UUID"));
	}
}

T(unknown_scheme_fails)
{
	struct parsed p = parse("hr:123");
	assert_false(p.ok);
	assert_non_null(strstr(p.why, "unknown reference scheme 'hr'"));
}

T(scheme_is_case_sensitive)
{
	struct parsed p = parse("ERP:123");
	assert_false(p.ok);
	assert_non_null(strstr(p.why, "unknown reference scheme"));
}

T(prefix_of_scheme_is_unknown)
{
	assert_false(parse("er:1").ok);
	assert_false(parse("erpx:1").ok);
	assert_false(parse("troop:123e4567-e89b-12d3-a456-426614174000").ok);
}

T(no_colon_fails)
{
	struct parsed p = parse("12345");
	assert_false(p.ok);
	assert_non_null(strstr(p.why, "scheme:id"));
}

T(no_colon_with_nir_does_not_echo_it)
{
	static const char *const groups[] = {"185", "006", "084", "91"};
	struct parsed p = parse("1 85 05 78 006 084 91");
	assert_false(p.ok);
	assert_no_nir_digits(p.why, groups, sizeof groups / sizeof groups[0]);
}

T(empty_string_fails)
{
	struct parsed p = parse("");
	assert_false(p.ok);
	assert_true(strlen(p.why) > 0);
}

T(why_is_truncated_to_its_buffer)
{
	enum ref_scheme sc;
	const char *id;
	char nir[16], why[8];
	memset(why, 'Z', sizeof why);
	assert_false(ref_parse("hr:1", &sc, &id, nir, why, sizeof why));
	assert_int_equal(strlen(why), sizeof why - 1);
}

T(uuid_valid_accepts_canonical)
{
	assert_true(uuid_valid("00000000-0000-0000-0000-000000000000"));
	assert_true(uuid_valid("ffffffff-ffff-ffff-ffff-ffffffffffff"));
	assert_true(uuid_valid("123e4567-e89b-12d3-a456-426614174000"));
}

T(uuid_valid_rejects_malformed)
{
	assert_false(uuid_valid(""));
	assert_false(uuid_valid("123e4567-e89b-12d3-a456-42661417400"));
	assert_false(uuid_valid("{123e4567-e89b-12d3-a456-426614174000}"));
	assert_false(uuid_valid("123e4567-e89b-12d3-a456_426614174000"));
	assert_false(uuid_valid("123e4567-e89b-12d3-a456-4266141740z0"));
	assert_false(uuid_valid(" 123e4567-e89b-12d3-a456-42661417400"));
	assert_false(uuid_valid("------------------------------------"));
}

T(scheme_names)
{
	assert_string_equal(ref_scheme_name(REF_ERP), "erp");
	assert_string_equal(ref_scheme_name(REF_SSN), "ssn");
	assert_string_equal(ref_scheme_name(REF_TROOPS), "troops");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(erp_valid),
		cmocka_unit_test(erp_id_keeps_everything_after_first_colon),
		cmocka_unit_test(erp_empty_id_fails),
		cmocka_unit_test(ssn_empty_id_fails),
		cmocka_unit_test(troops_empty_id_fails),
		cmocka_unit_test(ssn_valid_with_spaces),
		cmocka_unit_test(ssn_valid_corsica),
		cmocka_unit_test(ssn_bad_key_fails_without_echoing_nir),
		cmocka_unit_test(ssn_bad_length_fails_without_echoing_nir),
		cmocka_unit_test(ssn_bad_char_fails_without_echoing_nir),
		cmocka_unit_test(ssn_bad_month_fails_without_echoing_nir),
		cmocka_unit_test(troops_valid_uuid),
		cmocka_unit_test(troops_uppercase_uuid),
		cmocka_unit_test(troops_invalid_uuid_fails),
		cmocka_unit_test(unknown_scheme_fails),
		cmocka_unit_test(scheme_is_case_sensitive),
		cmocka_unit_test(prefix_of_scheme_is_unknown),
		cmocka_unit_test(no_colon_fails),
		cmocka_unit_test(no_colon_with_nir_does_not_echo_it),
		cmocka_unit_test(empty_string_fails),
		cmocka_unit_test(why_is_truncated_to_its_buffer),
		cmocka_unit_test(uuid_valid_accepts_canonical),
		cmocka_unit_test(uuid_valid_rejects_malformed),
		cmocka_unit_test(scheme_names),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
