/*
 * test_util — string buffers, UTF-8 checks, number parsing, edit distance, the string map,
 * SHA-256 (FIPS 180-4 test vectors) and the diagnostics collector.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "diag.h"
#include "sha256.h"
#include "state.h"
#include "strmap.h"
#include "util.h"

#define T(name) static void name(void **state __attribute__((unused)))

/* ---- sb ---- */

T(sb_zero_is_empty)
{
	struct sb b = {0};
	assert_string_equal(sb_str(&b), "");
	assert_int_equal(b.len, 0);
	sb_free(&b);
}

T(sb_add_puts_putc)
{
	struct sb b = {0};
	sb_puts(&b, "ab");
	sb_putc(&b, 'c');
	sb_add(&b, "defXYZ", 3);
	sb_add(&b, NULL, 0);
	assert_string_equal(sb_str(&b), "abcdef");
	assert_int_equal(b.len, 6);
	sb_free(&b);
	assert_null(b.s);
	assert_int_equal(b.len, 0);
}

T(sb_printf_short_and_long)
{
	struct sb b = {0};
	sb_printf(&b, "%d-%s", 42, "x");
	assert_string_equal(sb_str(&b), "42-x");
	char big[1000];
	memset(big, 'q', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	sb_printf(&b, "[%s]", big);
	assert_int_equal(b.len, 4 + 2 + 999);
	assert_int_equal(b.s[5], 'q');
	assert_int_equal(b.s[b.len - 1], ']');
	assert_int_equal(b.s[b.len], '\0');
	sb_free(&b);
}

T(sb_grows_over_many_appends)
{
	struct sb b = {0};
	for (int i = 0; i < 10000; i++)
		sb_putc(&b, (char)('a' + i % 26));
	assert_int_equal(b.len, 10000);
	assert_int_equal(strlen(sb_str(&b)), 10000);
	assert_int_equal(b.s[9999], 'a' + 9999 % 26);
	sb_free(&b);
}

T(sb_reset_keeps_buffer_empties_text)
{
	struct sb b = {0};
	sb_puts(&b, "hello");
	sb_reset(&b);
	assert_string_equal(sb_str(&b), "");
	assert_int_equal(b.len, 0);
	sb_puts(&b, "x");
	assert_string_equal(sb_str(&b), "x");
	sb_free(&b);
	struct sb z = {0};
	sb_reset(&z); /* on an empty buffer too */
	assert_string_equal(sb_str(&z), "");
}

T(sb_steal_hands_over)
{
	struct sb b = {0};
	sb_puts(&b, "mine");
	char *s = sb_steal(&b);
	assert_string_equal(s, "mine");
	assert_null(b.s);
	assert_int_equal(b.len, 0);
	free(s);
	s = sb_steal(&b); /* empty buffer gives "" */
	assert_string_equal(s, "");
	free(s);
}

T(sb_json_escape_body)
{
	struct sb b = {0};
	const char in[] = "q\"b\\n\n\x01\x7f/é";
	sb_json_escape(&b, in, sizeof in - 1);
	assert_string_equal(sb_str(&b), "q\\\"b\\\\n\\n\\u0001\x7f/é");
	sb_free(&b);
}

/* Issue 19 (8): status and failures printed ERP values raw; escape sequences reached the terminal. */
static void printable_is(const char *in, size_t n, const char *want)
{
	struct sb b = {0};
	sb_put_printable(&b, in, n);
	assert_string_equal(sb_str(&b), want);
	sb_free(&b);
}

T(printable_escapes_esc_and_other_c0_controls)
{
	const char in[] = "000\x1b[31mRED\x1b[0m\a\b\x7f\x01";
	printable_is(in, sizeof in - 1, "000\\x1b[31mRED\\x1b[0m\\x07\\x08\\x7f\\x01");
	printable_is("a\nb\rc\td", 7, "a\\nb\\rc\\td");
	const char nul[] = "a\0b";
	printable_is(nul, 3, "a\\x00b");
}

T(printable_escapes_c1_controls)
{
	/* U+009B is CSI on a terminal that reads C1 controls; U+0085 is NEL (a new line). */
	printable_is("x\xc2\x9b" "31my\xc2\x85z\xc2\x80", 12, "x\\u009b31my\\u0085z\\u0080");
	printable_is("\xc2\xa0nbsp", 6, "\xc2\xa0nbsp");   /* U+00A0 is printable */
}

T(printable_escapes_bidi_and_invisible_characters)
{
	printable_is("ab\xe2\x80\xae" "cd", 7, "ab\\u202ecd");               /* RIGHT-TO-LEFT OVERRIDE */
	printable_is("\xe2\x80\xa8|\xe2\x81\xa6|\xef\xbb\xbf", 11, "\\u2028|\\u2066|\\ufeff");
	printable_is("a\xe2\x80\x8b" "b", 5, "a\\u200bb");                    /* ZERO WIDTH SPACE */
	printable_is("\xf3\xa0\x81\x81!", 5, "\\U000e0041!");                 /* TAG LATIN CAPITAL LETTER A */
}

T(printable_keeps_printable_utf8_and_backslashes)
{
	const char *in = "Производсво — Élodie 😀 C:\\x1b";
	printable_is(in, strlen(in), in);
}

T(printable_shows_bytes_that_are_not_utf8)
{
	printable_is("caf\xe9 \xc2", 6, "caf\\xe9 \\xc2");
	printable_is("\xed\xa0\x80", 3, "\\xed\\xa0\\x80");   /* a UTF-16 surrogate is not UTF-8 */
}

T(xasprintf_long)
{
	char big[600];
	memset(big, 'z', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	char *s = xasprintf("<%s>", big);
	assert_int_equal(strlen(s), 601);
	free(s);
}

T(xstrdup_null_stays_null)
{
	assert_null(xstrdup(NULL));
	char *s = xstrndup("abcdef", 3);
	assert_string_equal(s, "abc");
	free(s);
}

T(streq_is_null_safe)
{
	assert_true(streq(NULL, NULL));
	assert_false(streq("a", NULL));
	assert_false(streq(NULL, "a"));
	assert_true(streq("a", "a"));
	assert_false(streq("a", "b"));
}

T(prefix_suffix)
{
	assert_true(str_has_prefix("mappings/x.yaml", "mappings/"));
	assert_true(str_has_prefix("abc", ""));
	assert_false(str_has_prefix("ab", "abc"));
	assert_true(str_has_suffix("x.yaml", ".yaml"));
	assert_false(str_has_suffix("x.yml", ".yaml"));
	assert_false(str_has_suffix("l", ".yaml"));
	assert_true(str_has_suffix("abc", ""));
}

T(path_helpers)
{
	char *s;
	s = path_dirname("mappings/pf/employees.yaml");
	assert_string_equal(s, "mappings/pf");
	free(s);
	s = path_dirname("employees.yaml");
	assert_string_equal(s, ".");
	free(s);
	s = path_dirname("/x");
	assert_string_equal(s, "/");
	free(s);
	s = path_join("mappings", "kinds.csv");
	assert_string_equal(s, "mappings/kinds.csv");
	free(s);
	s = path_join("mappings", "/etc/kinds.csv");
	assert_string_equal(s, "/etc/kinds.csv");
	free(s);
	s = path_join("", "kinds.csv");
	assert_string_equal(s, "kinds.csv");
	free(s);
}

T(format_utc_iso)
{
	char buf[32];
	format_utc(buf, sizeof buf, 1445412480.75);
	assert_string_equal(buf, "2015-10-21T07:28:00Z");
}

T(grow_doubles)
{
	int *a = NULL;
	size_t cap = 0;
	grow(&a, &cap, 1, sizeof *a);
	assert_true(cap >= 1);
	grow(&a, &cap, 100, sizeof *a);
	assert_true(cap >= 100);
	a[99] = 7;
	size_t before = cap;
	grow(&a, &cap, 50, sizeof *a);
	assert_int_equal(cap, before);
	free(a);
}

/* ---- UTF-8 ---- */

static bool valid(const char *s)
{
	return utf8_valid(s, strlen(s));
}

T(utf8_valid_ascii_cyrillic_emoji)
{
	assert_true(valid(""));
	assert_true(valid("plain ascii"));
	assert_true(valid("Привет, Élodie"));
	assert_true(valid("😀"));
	assert_true(valid("\xF4\x8F\xBF\xBF")); /* U+10FFFF, the last code point */
	assert_true(valid("\xEF\xBF\xBD"));     /* U+FFFD */
	assert_true(utf8_valid("a\0b", 3));     /* NUL is ASCII */
}

T(utf8_overlong_refused)
{
	assert_false(valid("\xC0\x80"));
	assert_false(valid("\xC1\xBF"));
	assert_false(valid("\xE0\x80\x80"));
	assert_false(valid("\xE0\x9F\xBF"));
	assert_false(valid("\xF0\x80\x80\x80"));
	assert_false(valid("\xF0\x8F\xBF\xBF"));
}

T(utf8_surrogates_refused)
{
	assert_false(valid("\xED\xA0\x80")); /* U+D800 */
	assert_false(valid("\xED\xBF\xBF")); /* U+DFFF */
	assert_true(valid("\xED\x9F\xBF"));  /* U+D7FF is fine */
}

T(utf8_beyond_10ffff_refused)
{
	assert_false(valid("\xF4\x90\x80\x80"));
	assert_false(valid("\xF5\x80\x80\x80"));
	assert_false(valid("\xF8\x88\x80\x80\x80"));
	assert_false(valid("\xFF"));
}

T(utf8_truncated_refused)
{
	assert_false(valid("\xD0"));
	assert_false(valid("a\xE2\x82"));
	assert_false(valid("\xF0\x9F\x98"));
	/* truncated by the length, even when more bytes follow in memory */
	assert_false(utf8_valid("\xD0\x9F", 1));
	assert_false(utf8_valid("\xF0\x9F\x98\x80", 3));
}

T(utf8_bad_continuation_refused)
{
	assert_false(valid("\x80"));
	assert_false(valid("a\xBF"));
	assert_false(valid("\xD0\x41"));
	assert_false(valid("\xE2\x28\xA1"));
	assert_false(valid("\xF0\x9F\x98\x41"));
}

T(utf8_len_counts_code_points)
{
	assert_int_equal(utf8_len("", 0), 0);
	assert_int_equal(utf8_len("abc", 3), 3);
	assert_int_equal(utf8_len("Привет", strlen("Привет")), 6);
	assert_int_equal(utf8_len("Élodie", strlen("Élodie")), 6);
	assert_int_equal(utf8_len("😀😀", 8), 2);
}

/* ---- numbers ---- */

T(parse_ll_valid)
{
	long long v = 0;
	assert_true(parse_ll("42", &v));
	assert_int_equal(v, 42);
	assert_true(parse_ll("-42", &v));
	assert_true(v == -42);
	assert_true(parse_ll("0", &v));
	assert_int_equal(v, 0);
	assert_true(parse_ll("9223372036854775807", &v));
	assert_true(v == 9223372036854775807LL);
	assert_true(parse_ll("-9223372036854775808", &v));
	assert_true(v == (-9223372036854775807LL - 1));
}

T(parse_ll_invalid)
{
	long long v = 99;
	assert_false(parse_ll(NULL, &v));
	assert_false(parse_ll("", &v));
	assert_false(parse_ll("abc", &v));
	assert_false(parse_ll("12abc", &v));
	assert_false(parse_ll("12 ", &v));
	assert_false(parse_ll("1.5", &v));
	assert_false(parse_ll("-", &v));
	assert_false(parse_ll("9223372036854775808", &v));
	assert_false(parse_ll("-9223372036854775809", &v));
	assert_int_equal(v, 99); /* untouched on failure */
}

T(parse_ll_whole_string_no_leading_space)
{
	/* "strict decimal parse of the whole string" */
	long long v = 99;
	assert_false(parse_ll(" 42", &v));
	assert_false(parse_ll("\t42", &v));
}

T(parse_double_valid)
{
	double d = 0;
	assert_true(parse_double("1.5", &d));
	assert_true(d == 1.5);
	assert_true(parse_double("-0.25", &d));
	assert_true(d == -0.25);
	assert_true(parse_double("1e3", &d));
	assert_true(d == 1000.0);
	assert_true(parse_double("42", &d));
	assert_true(d == 42.0);
}

T(parse_double_invalid)
{
	double d = 7;
	assert_false(parse_double(NULL, &d));
	assert_false(parse_double("", &d));
	assert_false(parse_double("abc", &d));
	assert_false(parse_double("1.5x", &d));
	assert_false(parse_double("1,5", &d));
	assert_false(parse_double("nan", &d));
	assert_false(parse_double("inf", &d));
	assert_false(parse_double("-infinity", &d));
	assert_false(parse_double("1e999", &d));
	assert_true(d == 7);
}

T(parse_double_decimal_only)
{
	/* hexadecimal floats are not what an ERP means by a number */
	double d = 7;
	assert_false(parse_double("0x10", &d));
	assert_false(parse_double("0x1p3", &d));
	assert_false(parse_double(" 1.5", &d));
}

/* ---- edit distance ---- */

T(edit_distance_basics)
{
	assert_int_equal(edit_distance("", ""), 0);
	assert_int_equal(edit_distance("from", "from"), 0);
	assert_int_equal(edit_distance("fromm", "from"), 1);
	assert_int_equal(edit_distance("from", "form"), 2);
	assert_int_equal(edit_distance("kitten", "sitting"), 3);
	assert_int_equal(edit_distance("", "abc"), 3);
	assert_int_equal(edit_distance("abc", ""), 3);
	assert_int_equal(edit_distance("flaw", "lawn"), 2);
}

T(edit_distance_is_symmetric)
{
	assert_int_equal(edit_distance("datetime", "date"), edit_distance("date", "datetime"));
	assert_int_equal(edit_distance("transform", "trasnform"), edit_distance("trasnform", "transform"));
}

T(edit_distance_capped_at_16)
{
	assert_int_equal(edit_distance("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"), 16);
	char long1[100];
	memset(long1, 'a', 99);
	long1[99] = '\0';
	assert_int_equal(edit_distance(long1, long1), 16); /* past 64 characters: no attempt */
}

/* ---- strmap ---- */

T(strmap_empty_get)
{
	struct strmap m = {0};
	const char *v = "untouched";
	assert_false(strmap_get(&m, "x", &v));
	assert_string_equal(v, "untouched");
	strmap_clear(&m);
}

T(strmap_put_get)
{
	struct strmap m = {0};
	strmap_put(&m, "dept\x1fname\x1fsales", "10");
	const char *v = NULL;
	assert_true(strmap_get(&m, "dept\x1fname\x1fsales", &v));
	assert_string_equal(v, "10");
	assert_false(strmap_get(&m, "dept\x1fname\x1fsale", &v));
	assert_true(strmap_get(&m, "dept\x1fname\x1fsales", NULL));
	strmap_clear(&m);
}

T(strmap_copies_key_and_value)
{
	struct strmap m = {0};
	char k[8] = "key", val[8] = "val";
	strmap_put(&m, k, val);
	strcpy(k, "zzz");
	strcpy(val, "zzz");
	const char *v = NULL;
	assert_true(strmap_get(&m, "key", &v));
	assert_string_equal(v, "val");
	strmap_clear(&m);
}

T(strmap_overwrite)
{
	struct strmap m = {0};
	strmap_put(&m, "a", "1");
	strmap_put(&m, "a", "2");
	const char *v = NULL;
	assert_true(strmap_get(&m, "a", &v));
	assert_string_equal(v, "2");
	assert_int_equal(m.n, 1);
	strmap_clear(&m);
}

T(strmap_null_value)
{
	struct strmap m = {0};
	strmap_put(&m, "a", NULL);
	const char *v = "x";
	assert_true(strmap_get(&m, "a", &v));
	assert_null(v);
	strmap_put(&m, "a", "now");
	assert_true(strmap_get(&m, "a", &v));
	assert_string_equal(v, "now");
	strmap_clear(&m);
}

T(strmap_empty_key)
{
	struct strmap m = {0};
	strmap_put(&m, "", "empty");
	const char *v = NULL;
	assert_true(strmap_get(&m, "", &v));
	assert_string_equal(v, "empty");
	strmap_clear(&m);
}

T(strmap_many_keys_rehash)
{
	struct strmap m = {0};
	char k[32], val[32];
	for (int i = 0; i < 5000; i++) {
		snprintf(k, sizeof k, "key-%d", i);
		snprintf(val, sizeof val, "val-%d", i * 7);
		strmap_put(&m, k, val);
	}
	assert_int_equal(m.n, 5000);
	assert_true(m.cap >= 10000); /* kept at most half full */
	assert_int_equal(m.cap & (m.cap - 1), 0);
	for (int i = 0; i < 5000; i++) {
		const char *v = NULL;
		snprintf(k, sizeof k, "key-%d", i);
		snprintf(val, sizeof val, "val-%d", i * 7);
		assert_true(strmap_get(&m, k, &v));
		assert_string_equal(v, val);
	}
	assert_false(strmap_get(&m, "key-5000", NULL));
	strmap_clear(&m);
}

T(strmap_clear_then_reuse)
{
	struct strmap m = {0};
	strmap_put(&m, "a", "1");
	strmap_clear(&m);
	assert_int_equal(m.n, 0);
	assert_int_equal(m.cap, 0);
	assert_false(strmap_get(&m, "a", NULL));
	strmap_put(&m, "b", "2");
	assert_true(strmap_get(&m, "b", NULL));
	strmap_clear(&m);
	strmap_clear(&m); /* twice is harmless */
}

/* ---- sha256 ---- */

static void hex_is(const void *data, size_t n, const char *want)
{
	char out[65];
	sha256_hex(data, n, out);
	assert_string_equal(out, want);
}

T(sha256_abc)
{
	hex_is("abc", 3, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

T(sha256_empty)
{
	hex_is("", 0, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

T(sha256_448_bit_message)
{
	const char *m = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
	assert_int_equal(strlen(m), 56);
	hex_is(m, 56, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

T(sha256_896_bit_message)
{
	const char *m = "abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrs"
			"mnopqrstnopqrstu";
	hex_is(m, strlen(m), "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1");
}

T(sha256_million_a)
{
	struct sha256 c;
	unsigned char chunk[1000], d[32];
	memset(chunk, 'a', sizeof chunk);
	sha256_init(&c);
	for (int i = 0; i < 1000; i++)
		sha256_update(&c, chunk, sizeof chunk);
	sha256_final(&c, d);
	char hex[65];
	for (int i = 0; i < 32; i++)
		snprintf(hex + 2 * i, 3, "%02x", d[i]);
	assert_string_equal(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

T(sha256_block_boundaries)
{
	static const struct {
		size_t n;
		const char *hex;
	} v[] = {
		{55, "9f4390f8d30c2dd92ec9f095b65e2b9ae9b0a925a5258e241c9f1e910f734318"},
		{56, "b35439a4ac6f0948b6d6f9e3c6af0f5f590ce20f1bde7090ef7970686ec6738a"},
		{63, "7d3e74a05d7db15bce4ad9ec0658ea98e3f06eeecf16b4c6fff2da457ddc2f34"},
		{64, "ffe054fe7ae0cb6dc65c3af9b61d5209f439851db43d0ba5997337df154668eb"},
		{65, "635361c48bb9eab14198e76ea8ab7f1a41685d6ad62aa9146d301d4f17eb0ae0"},
		{119, "31eba51c313a5c08226adf18d4a359cfdfd8d2e816b13f4af952f7ea6584dcfb"},
		{120, "2f3d335432c70b580af0e8e1b3674a7c020d683aa5f73aaaedfdc55af904c21c"},
	};
	char buf[128];
	memset(buf, 'a', sizeof buf);
	for (size_t i = 0; i < sizeof v / sizeof v[0]; i++)
		hex_is(buf, v[i].n, v[i].hex);
}

T(sha256_incremental_equals_one_shot)
{
	const char *m = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
	for (size_t split = 0; split <= 56; split += 7) {
		struct sha256 c;
		unsigned char d[32];
		sha256_init(&c);
		sha256_update(&c, m, split);
		sha256_update(&c, m + split, 56 - split);
		sha256_final(&c, d);
		assert_int_equal(d[0], 0x24);
		assert_int_equal(d[31], 0xc1);
	}
}

T(sha256_utf8)
{
	hex_is("Привет", strlen("Привет"), "dd679c0b9fd408a04148aa7d30c9df393f67b7227f65693fffe0ed6d0f0ade59");
}

/* ---- diag ---- */

T(diag_suggest_close_words)
{
	static const char *const rules[] = {"from", "value", "template", "ref", "lookup", "transform", "map",
					    "map_file", "format", "default", "required", "check", "max_length"};
	assert_string_equal(diag_suggest("fromm", rules, sizeof rules / sizeof rules[0]), "from");
	assert_string_equal(diag_suggest("frm", rules, sizeof rules / sizeof rules[0]), "from");
	assert_string_equal(diag_suggest("requird", rules, sizeof rules / sizeof rules[0]), "required");
	assert_string_equal(diag_suggest("tranform", rules, sizeof rules / sizeof rules[0]), "transform");
	assert_string_equal(diag_suggest("max_lenght", rules, sizeof rules / sizeof rules[0]), "max_length");
}

T(diag_suggest_nothing_close)
{
	static const char *const fmts[] = {"string", "int", "number", "bool", "date", "datetime", "unix"};
	assert_null(diag_suggest("banana", fmts, 7));
	assert_null(diag_suggest("xyz", fmts, 7));
	assert_null(diag_suggest("anything", fmts, 0));
}

T(diag_suggest_short_words_need_one_edit)
{
	static const char *const c[] = {"int", "map"};
	assert_string_equal(diag_suggest("itn", c, 2) ? "x" : "none", "none"); /* two edits */
	assert_string_equal(diag_suggest("mop", c, 2), "map");
}

T(diag_suggest_skips_null_candidates)
{
	static const char *const c[] = {NULL, "date", NULL};
	assert_string_equal(diag_suggest("dat", c, 3), "date");
}

T(diag_counts_errors_and_warnings)
{
	struct diag d = {0};
	diag_error(&d, "a.yaml", 1, 2, "bad %s", "thing");
	diag_warn(&d, "a.yaml", 3, 4, "meh");
	diag_error(&d, NULL, 0, 0, "global");
	assert_int_equal(d.errors, 2);
	assert_int_equal(d.warnings, 1);
	assert_int_equal(d.n, 3);
	assert_string_equal(d.msgs[0].text, "bad thing");
	assert_string_equal(d.msgs[0].file, "a.yaml");
	assert_null(d.msgs[2].file);
	diag_free(&d);
	assert_int_equal(d.n, 0);
	assert_int_equal(d.errors, 0);
}

/* hash64: the no-change pass compares it with the one stored at the last accepted push. */
T(hash64_is_stable_and_seeded)
{
	const char *s = "Dupont;2026-01-31;f";
	assert_true(hash64(s, strlen(s), 1) == hash64(s, strlen(s), 1));
	assert_true(hash64(s, strlen(s), 1) != hash64(s, strlen(s), 2));
	/* the empty input still depends on the seed (how a NULL column is told from "") */
	assert_true(hash64(NULL, 0, 7) == hash64("", 0, 7));
	assert_true(hash64(NULL, 0, 7) != hash64(NULL, 0, ~(uint64_t)7));
}

/* hash64 is XXH3_64bits_withSeed since state schema v4: links.src_hash stores it, so another
 * function needs another state upgrade that clears them (state.c migration_v4). The first two
 * are xxHash's published XXH3 values. */
T(hash64_is_xxh3_of_state_v4)
{
	const char *s = "Dupont;2026-01-31;f";
	assert_true(hash64("", 0, 0) == 0x2d06800538d394c2ULL);
	assert_true(hash64("abc", 3, 0) == 0x78af5f94892f3950ULL);
	assert_true(hash64(s, strlen(s), 42) == 0x9fab9beef39f16a4ULL);
	assert_true(STATE_VERSION >= 4);
}

T(hash64_sees_every_byte_and_not_the_alignment)
{
	/* Lengths 0..40 cover the 8-byte blocks and every tail length. */
	char buf[64], moved[64 + 7];
	for (size_t n = 0; n <= 40; n++) {
		for (size_t i = 0; i < n; i++)
			buf[i] = (char)('a' + (i * 7) % 26);
		uint64_t h = hash64(buf, n, 42);
		for (size_t off = 1; off < 8; off++) {
			memcpy(moved + off, buf, n);
			assert_true(hash64(moved + off, n, 42) == h);
		}
		for (size_t i = 0; i < n; i++) {
			buf[i] ^= 1;
			assert_true(hash64(buf, n, 42) != h);
			buf[i] ^= 1;
		}
		/* one byte more (a zero) is another input, not the same one padded */
		buf[n] = '\0';
		assert_true(hash64(buf, n + 1, 42) != h);
	}
}

T(diag_print_sorted_compiler_style)
{
	struct diag d = {0};
	diag_error(&d, "b.yaml", 2, 1, "second file");
	diag_error(&d, "a.yaml", 14, 9, "field 'hired_on': unknown rule 'fromm' (did you mean 'from'?)");
	diag_warn(&d, "a.yaml", 3, 5, "a warning");
	diag_error(&d, "a.yaml", 14, 9, "same place, found later");
	diag_error(&d, "a.yaml", 0, 0, "cannot read");
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	assert_non_null(f);
	diag_print(&d, f);
	fclose(f);
	assert_string_equal(buf, "a.yaml: cannot read\n"
				 "a.yaml:3:5: warning: a warning\n"
				 "a.yaml:14:9: field 'hired_on': unknown rule 'fromm' (did you mean 'from'?)\n"
				 "a.yaml:14:9: same place, found later\n"
				 "b.yaml:2:1: second file\n");
	free(buf);
	diag_free(&d);
}

T(diag_print_without_file)
{
	struct diag d = {0};
	diag_error(&d, NULL, 0, 0, "no config");
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	diag_print(&d, f);
	fclose(f);
	assert_string_equal(buf, "hrsync: no config\n");
	free(buf);
	diag_free(&d);
}

T(diag_long_message)
{
	struct diag d = {0};
	char big[700];
	memset(big, 'm', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	diag_error(&d, "x", 1, 1, "%s", big);
	assert_int_equal(strlen(d.msgs[0].text), 699);
	diag_free(&d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(sb_zero_is_empty),
		cmocka_unit_test(sb_add_puts_putc),
		cmocka_unit_test(sb_printf_short_and_long),
		cmocka_unit_test(sb_grows_over_many_appends),
		cmocka_unit_test(sb_reset_keeps_buffer_empties_text),
		cmocka_unit_test(sb_steal_hands_over),
		cmocka_unit_test(sb_json_escape_body),
		cmocka_unit_test(printable_escapes_esc_and_other_c0_controls),
		cmocka_unit_test(printable_escapes_c1_controls),
		cmocka_unit_test(printable_escapes_bidi_and_invisible_characters),
		cmocka_unit_test(printable_keeps_printable_utf8_and_backslashes),
		cmocka_unit_test(printable_shows_bytes_that_are_not_utf8),
		cmocka_unit_test(xasprintf_long),
		cmocka_unit_test(xstrdup_null_stays_null),
		cmocka_unit_test(streq_is_null_safe),
		cmocka_unit_test(prefix_suffix),
		cmocka_unit_test(path_helpers),
		cmocka_unit_test(format_utc_iso),
		cmocka_unit_test(grow_doubles),
		cmocka_unit_test(utf8_valid_ascii_cyrillic_emoji),
		cmocka_unit_test(utf8_overlong_refused),
		cmocka_unit_test(utf8_surrogates_refused),
		cmocka_unit_test(utf8_beyond_10ffff_refused),
		cmocka_unit_test(utf8_truncated_refused),
		cmocka_unit_test(utf8_bad_continuation_refused),
		cmocka_unit_test(utf8_len_counts_code_points),
		cmocka_unit_test(parse_ll_valid),
		cmocka_unit_test(parse_ll_invalid),
		cmocka_unit_test(parse_ll_whole_string_no_leading_space),
		cmocka_unit_test(parse_double_valid),
		cmocka_unit_test(parse_double_invalid),
		cmocka_unit_test(parse_double_decimal_only),
		cmocka_unit_test(edit_distance_basics),
		cmocka_unit_test(edit_distance_is_symmetric),
		cmocka_unit_test(edit_distance_capped_at_16),
		cmocka_unit_test(strmap_empty_get),
		cmocka_unit_test(strmap_put_get),
		cmocka_unit_test(strmap_copies_key_and_value),
		cmocka_unit_test(strmap_overwrite),
		cmocka_unit_test(strmap_null_value),
		cmocka_unit_test(strmap_empty_key),
		cmocka_unit_test(strmap_many_keys_rehash),
		cmocka_unit_test(strmap_clear_then_reuse),
		cmocka_unit_test(sha256_abc),
		cmocka_unit_test(sha256_empty),
		cmocka_unit_test(sha256_448_bit_message),
		cmocka_unit_test(sha256_896_bit_message),
		cmocka_unit_test(sha256_million_a),
		cmocka_unit_test(sha256_block_boundaries),
		cmocka_unit_test(sha256_incremental_equals_one_shot),
		cmocka_unit_test(sha256_utf8),
		cmocka_unit_test(diag_suggest_close_words),
		cmocka_unit_test(diag_suggest_nothing_close),
		cmocka_unit_test(diag_suggest_short_words_need_one_edit),
		cmocka_unit_test(diag_suggest_skips_null_candidates),
		cmocka_unit_test(diag_counts_errors_and_warnings),
		cmocka_unit_test(hash64_is_stable_and_seeded),
		cmocka_unit_test(hash64_is_xxh3_of_state_v4),
		cmocka_unit_test(hash64_sees_every_byte_and_not_the_alignment),
		cmocka_unit_test(diag_print_sorted_compiler_style),
		cmocka_unit_test(diag_print_without_file),
		cmocka_unit_test(diag_long_message),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
