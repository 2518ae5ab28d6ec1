/*
 * test_nir — the French NIR: nir_check, nir_key, nir_mask (mappings/README.md §4.3: key = 97 -
 * number mod 97, Corsica 2A/2B count as 19/18; NIRs never appear unmasked).
 *
 * Worked keys (computed by hand, checked with a calculator):
 *   body 1 85 05 78 006 084 -> 1850578006084 mod 97 = 6  -> key 97 - 6  = 91
 *   body 1 85 05 2A 006 084 -> 2A counts as 19: 1850519006084 mod 97 = 62 -> key 35
 *   body 1 85 05 2B 006 084 -> 2B counts as 18: 1850518006084 mod 97 = 35 -> key 62
 *   body 2 93 02 75 123 456 -> 2930275123456 mod 97 = 29 -> key 68
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "nir.h"

#define T(name) static void name(void **state __attribute__((unused)))

/* A NIR with the correct key for body (13 characters), as "BODY KK". */
static void with_key(const char *body, char out[20])
{
	int k = nir_key(body);
	assert_true(k >= 1 && k <= 97);
	snprintf(out, 20, "%s %02d", body, k);
}

T(key_of_known_body_is_91)
{
	assert_int_equal(nir_key("1850578006084"), 91);
}

T(key_of_second_body_is_68)
{
	assert_int_equal(nir_key("2930275123456"), 68);
}

T(key_corsica_2a_counts_as_19)
{
	assert_int_equal(nir_key("185052A006084"), 35);
}

T(key_corsica_2b_counts_as_18)
{
	assert_int_equal(nir_key("185052B006084"), 62);
}

T(key_of_body_with_letter_is_minus_1)
{
	assert_int_equal(nir_key("18505X8006084"), -1);
	/* A/B only count after a 2 in the department's tens place. */
	assert_int_equal(nir_key("185053A006084"), -1);
	assert_int_equal(nir_key("1850520A06084"), -1);
}

T(key_of_short_body_is_minus_1)
{
	assert_int_equal(nir_key("185057800"), -1);
	assert_int_equal(nir_key(""), -1);
}

T(valid_with_spaces)
{
	char norm[16] = "";
	assert_int_equal(nir_check("1 85 05 78 006 084 91", norm), NIR_OK);
	assert_string_equal(norm, "185057800608491");
}

T(valid_without_spaces)
{
	char norm[16] = "";
	assert_int_equal(nir_check("185057800608491", norm), NIR_OK);
	assert_string_equal(norm, "185057800608491");
}

T(valid_second_example)
{
	char norm[16] = "";
	assert_int_equal(nir_check("2 93 02 75 123 456 68", norm), NIR_OK);
	assert_string_equal(norm, "293027512345668");
}

T(valid_corsica_2a)
{
	char norm[16] = "";
	assert_int_equal(nir_check("1 85 05 2A 006 084 35", norm), NIR_OK);
	assert_string_equal(norm, "185052A00608435");
}

T(valid_corsica_2b)
{
	char norm[16] = "";
	assert_int_equal(nir_check("1 85 05 2B 006 084 62", norm), NIR_OK);
	assert_string_equal(norm, "185052B00608462");
}

T(corsica_2a_with_2b_key_is_bad_key)
{
	char norm[16];
	assert_int_equal(nir_check("1 85 05 2A 006 084 62", norm), NIR_BAD_KEY);
	assert_int_equal(nir_check("1 85 05 2B 006 084 35", norm), NIR_BAD_KEY);
}

T(lowercase_2a_accepted_and_uppercased)
{
	char norm[16] = "";
	assert_int_equal(nir_check("1 85 05 2a 006 084 35", norm), NIR_OK);
	assert_string_equal(norm, "185052A00608435");
	assert_int_equal(nir_check("185052b00608462", norm), NIR_OK);
	assert_string_equal(norm, "185052B00608462");
}

T(wrong_key)
{
	char norm[16];
	assert_int_equal(nir_check("1 85 05 78 006 084 90", norm), NIR_BAD_KEY);
	assert_int_equal(nir_check("1 85 05 78 006 084 92", norm), NIR_BAD_KEY);
	assert_int_equal(nir_check("1 85 05 78 006 084 00", norm), NIR_BAD_KEY);
}

T(one_digit_changed_is_bad_key)
{
	char norm[16];
	assert_int_equal(nir_check("1 85 05 78 006 085 91", norm), NIR_BAD_KEY);
}

T(wrong_length_short)
{
	char norm[16];
	assert_int_equal(nir_check("1 85 05 78 006 084 9", norm), NIR_BAD_LENGTH);
	assert_int_equal(nir_check("1850578006084", norm), NIR_BAD_LENGTH);
}

T(wrong_length_long)
{
	char norm[16];
	assert_int_equal(nir_check("1 85 05 78 006 084 911", norm), NIR_BAD_LENGTH);
	assert_int_equal(nir_check("18505780060849100000000000", norm), NIR_BAD_LENGTH);
}

T(empty_is_bad_length)
{
	char norm[16];
	assert_int_equal(nir_check("", norm), NIR_BAD_LENGTH);
	assert_int_equal(nir_check("   ", norm), NIR_BAD_LENGTH);
}

T(letters_are_bad_char)
{
	char norm[16];
	assert_int_equal(nir_check("1 85 05 7X 006 084 91", norm), NIR_BAD_CHAR);
	assert_int_equal(nir_check("1 85 05 78 0O6 084 91", norm), NIR_BAD_CHAR);
	assert_int_equal(nir_check("A 85 05 78 006 084 91", norm), NIR_BAD_CHAR);
}

T(corsica_letter_elsewhere_is_bad_char)
{
	char norm[16];
	/* A after a 3 in the department, or 2A in the birth month: not Corsica. */
	assert_int_equal(nir_check("1 85 05 3A 006 084 35", norm), NIR_BAD_CHAR);
	assert_int_equal(nir_check("1 85 2A 78 006 084 35", norm), NIR_BAD_CHAR);
	assert_int_equal(nir_check("1 85 05 2C 006 084 35", norm), NIR_BAD_CHAR);
}

T(bad_sex_digit)
{
	char norm[16], nir[20];
	with_key("5850578006084", nir);
	assert_int_equal(nir_check(nir, norm), NIR_BAD_SEX);
	with_key("0850578006084", nir);
	assert_int_equal(nir_check(nir, norm), NIR_BAD_SEX);
	with_key("9850578006084", nir);
	assert_int_equal(nir_check(nir, norm), NIR_BAD_SEX);
}

T(sex_digit_2_accepted)
{
	char norm[16], nir[20];
	with_key("2850578006084", nir);
	assert_int_equal(nir_check(nir, norm), NIR_OK);
}

T(bad_month)
{
	char norm[16], nir[20];
	with_key("1851378006084", nir); /* month 13 */
	assert_int_equal(nir_check(nir, norm), NIR_BAD_MONTH);
	with_key("1850078006084", nir); /* month 00 */
	assert_int_equal(nir_check(nir, norm), NIR_BAD_MONTH);
	with_key("1851978006084", nir); /* month 19 */
	assert_int_equal(nir_check(nir, norm), NIR_BAD_MONTH);
}

T(month_12_accepted)
{
	char norm[16], nir[20];
	with_key("1851278006084", nir);
	assert_int_equal(nir_check(nir, norm), NIR_OK);
}

T(norm_untouched_on_failure)
{
	char norm[16] = "unchanged";
	assert_int_equal(nir_check("1 85 05 78 006 084 90", norm), NIR_BAD_KEY);
	assert_string_equal(norm, "unchanged");
}

T(status_texts_are_non_empty_and_hold_no_nir)
{
	for (int st = NIR_OK; st <= NIR_BAD_KEY; st++) {
		const char *t = nir_status_text((enum nir_status)st);
		assert_non_null(t);
		assert_true(strlen(t) > 0);
	}
	assert_string_equal(nir_status_text(NIR_OK), "valid");
}

/* Digits that appear in s, in order. */
static void digits_of(const char *s, char *out)
{
	size_t k = 0;
	for (; *s; s++)
		if (isdigit((unsigned char)*s))
			out[k++] = *s;
	out[k] = '\0';
}

T(mask_keeps_sex_year_month_only)
{
	char out[64];
	nir_mask("1 85 05 78 006 084 91", out, sizeof out);
	assert_string_equal(out, "1 85 05 ** *** *** **");
}

T(mask_without_spaces)
{
	char out[64];
	nir_mask("185057800608491", out, sizeof out);
	assert_string_equal(out, "1 85 05 ** *** *** **");
}

T(mask_corsica_hides_department)
{
	char out[64];
	nir_mask("1 85 05 2A 006 084 35", out, sizeof out);
	assert_string_equal(out, "1 85 05 ** *** *** **");
	assert_null(strchr(out, 'A'));
}

T(mask_never_shows_more_than_five_digits)
{
	static const char *const in[] = {
		"1 85 05 78 006 084 91", "185057800608491", "2 93 02 75 123 456 68", "1-85-05-78-006-084-91",
		"1.85.05.78.006.084.91", "  1 85 05 78 006 084 91  ", "1850578006084911234567890",
		"1\t85\t05\t78\t006\t084\t91",
	};
	for (size_t i = 0; i < sizeof in / sizeof in[0]; i++) {
		char out[64], d[64], all[64];
		nir_mask(in[i], out, sizeof out);
		digits_of(out, d);
		digits_of(in[i], all);
		assert_true(strlen(d) <= 5);
		/* what is shown is a prefix of the NIR's digits: sex, year, month at most */
		assert_int_equal(strncmp(d, all, strlen(d)), 0);
	}
}

T(mask_of_dotted_nir_keeps_sex_year_month)
{
	/* nir_check accepts '.', '-' and tabs as separators, so such a value can reach the mask. */
	char out[64];
	nir_mask("1.85.05.78.006.084.91", out, sizeof out);
	assert_string_equal(out, "1 85 05 ** *** *** **");
	nir_mask("1-85-05-78-006-084-91", out, sizeof out);
	assert_string_equal(out, "1 85 05 ** *** *** **");
}

T(mask_of_short_value_is_stars)
{
	char out[64];
	nir_mask("1 8", out, sizeof out);
	assert_string_equal(out, "***");
	nir_mask("", out, sizeof out);
	assert_string_equal(out, "***");
}

T(mask_respects_buffer_size)
{
	char out[9];
	memset(out, 'Z', sizeof out);
	nir_mask("1 85 05 78 006 084 91", out, 8);
	assert_string_equal(out, "1 85 05");
	assert_int_equal(out[8], 'Z');
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(key_of_known_body_is_91),
		cmocka_unit_test(key_of_second_body_is_68),
		cmocka_unit_test(key_corsica_2a_counts_as_19),
		cmocka_unit_test(key_corsica_2b_counts_as_18),
		cmocka_unit_test(key_of_body_with_letter_is_minus_1),
		cmocka_unit_test(key_of_short_body_is_minus_1),
		cmocka_unit_test(valid_with_spaces),
		cmocka_unit_test(valid_without_spaces),
		cmocka_unit_test(valid_second_example),
		cmocka_unit_test(valid_corsica_2a),
		cmocka_unit_test(valid_corsica_2b),
		cmocka_unit_test(corsica_2a_with_2b_key_is_bad_key),
		cmocka_unit_test(lowercase_2a_accepted_and_uppercased),
		cmocka_unit_test(wrong_key),
		cmocka_unit_test(one_digit_changed_is_bad_key),
		cmocka_unit_test(wrong_length_short),
		cmocka_unit_test(wrong_length_long),
		cmocka_unit_test(empty_is_bad_length),
		cmocka_unit_test(letters_are_bad_char),
		cmocka_unit_test(corsica_letter_elsewhere_is_bad_char),
		cmocka_unit_test(bad_sex_digit),
		cmocka_unit_test(sex_digit_2_accepted),
		cmocka_unit_test(bad_month),
		cmocka_unit_test(month_12_accepted),
		cmocka_unit_test(norm_untouched_on_failure),
		cmocka_unit_test(status_texts_are_non_empty_and_hold_no_nir),
		cmocka_unit_test(mask_keeps_sex_year_month_only),
		cmocka_unit_test(mask_without_spaces),
		cmocka_unit_test(mask_corsica_hides_department),
		cmocka_unit_test(mask_never_shows_more_than_five_digits),
		cmocka_unit_test(mask_of_dotted_nir_keeps_sex_year_month),
		cmocka_unit_test(mask_of_short_value_is_stars),
		cmocka_unit_test(mask_respects_buffer_size),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
