/*
 * test_kit — the pure parts of the connector kit: paths and queries encoded (url.c),
 * the page to ask for and the reading of a page in every paging style (pager.c), the
 * indexes of what a platform holds and the markers (kit.c), and each connector's error
 * envelope (platform_message).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "kit.h"

#define T(name) static void name(void **state __attribute__((unused)))

static struct jv *J(const char *json)
{
	struct jv *v = jv_parse(json, strlen(json), NULL, 0);
	assert_non_null(v);
	return v;
}

static void assert_path(char *got, const char *want)
{
	assert_non_null(got);
	assert_string_equal(got, want);
	free(got);
}

/* ---- url.c ---- */

T(nested_query_keys_and_values_with_slashes_are_encoded)
{
	/* Troops: filters[tea_id]=T&filters[ref][erp]=8304/06 */
	assert_path(url_expand("/candidates", NULL, NULL, QUERY("filters[tea_id]", "abc", "filters[ref][erp]", "8304/06")),
		    "/candidates?filters%5Btea_id%5D=abc&filters%5Bref%5D%5Berp%5D=8304%2F06");
	/* an e-mail with '+' stays one value (a raw '+' reads as a space) */
	assert_path(url_expand("/employees", NULL, NULL, QUERY("status", "all", "emails[]", "a+b@x.fr")),
		    "/employees?status=all&emails%5B%5D=a%2Bb%40x.fr");
	/* a NULL value leaves its pair out */
	assert_path(url_expand("/leave_requests", NULL, NULL, QUERY("updated_at[gt]", NULL, "page", "2")),
		    "/leave_requests?page=2");
	/* a template that holds a query already goes on with '&' */
	assert_path(url_expand("/employees?status=all", NULL, NULL, QUERY("page", "3")), "/employees?status=all&page=3");
}

T(ids_are_one_path_segment)
{
	/* a flexible reference in a path: ':' stays, '/' does not split it */
	assert_path(url_expand("/candidates/{id}/archive", "erp:8304/06", NULL, NULL), "/candidates/erp:8304%2F06/archive");
	/* an id a hostile platform answered cannot climb the path */
	assert_path(url_expand("/employees/{id}", "../employees/1000", NULL, NULL), "/employees/..%2Femployees%2F1000");
	assert_path(url_expand("/employees/{id}/positions/{sub}", "17", "a b", NULL), "/employees/17/positions/a%20b");
	/* no id: no path, rather than "/employees/" (another resource) */
	assert_null(url_expand("/employees/{id}", NULL, NULL, NULL));
	assert_null(url_expand("/employees/{id}", "", NULL, NULL));
	assert_null(url_expand("/asset_assignments/{sub}", "5", NULL, NULL));
}

/* Issue #19: a platform id is checked against its connector's declared shape where it enters. */
T(platform_ids_go_into_url_paths_only_of_the_declared_shape)
{
	assert_true(id_valid(ID_DIGITS, "1000"));
	assert_false(id_valid(ID_DIGITS, "../employees/1000"));
	assert_false(id_valid(ID_DIGITS, "12 34"));
	assert_false(id_valid(ID_DIGITS, ""));
	assert_false(id_valid(ID_DIGITS, NULL));
	assert_false(id_valid(ID_DIGITS, "123456789012345678901")); /* 21 digits */
	assert_false(id_valid(ID_DIGITS, "bd242cd1-5116-41a0-99aa-c12af4837c81"));
	assert_true(id_valid(ID_UUID, "bd242cd1-5116-41a0-99aa-c12af4837c81"));
	assert_false(id_valid(ID_UUID, "bd242cd1-5116-41a0-99aa-c12af4837c8/"));
	assert_true(id_valid(ID_DIGITS | ID_UUID, "17"));
	assert_true(id_valid(ID_DIGITS | ID_UUID, "BD242CD1-5116-41A0-99AA-C12AF4837C81"));
	assert_true(id_valid(ID_TOKEN, "asset-7.b:c_d"));
	assert_true(id_valid(0, "asset-7")); /* undeclared: a safe token */
	assert_false(id_valid(ID_TOKEN, ".."));
	assert_false(id_valid(ID_TOKEN, "."));
	assert_false(id_valid(ID_TOKEN, "a/b"));
	assert_false(id_valid(ID_TOKEN, "a%2Fb"));
	assert_false(id_valid(ID_TOKEN, "a b"));
	assert_false(id_valid(ID_TOKEN, "é"));
	char long_id[130];
	memset(long_id, 'a', 129);
	long_id[129] = '\0';
	assert_false(id_valid(ID_TOKEN, long_id));
	long_id[128] = '\0';
	assert_true(id_valid(ID_TOKEN, long_id));
	assert_string_equal(id_shape_name(ID_DIGITS | ID_UUID), "digits or a UUID");
	/* Shown in a message: quoted, short, one line. */
	assert_path(id_shown("../employees/1000"), "'../employees/1000'");
	assert_path(id_shown("a\nb\x01\xc3\xa9z"), "'a?b???z'");
	assert_path(id_shown("0123456789012345678901234567890123456789-and-more"),
		    "'0123456789012345678901234567890123456789…'");
	/* Even so, a segment of dots alone is not a step up the path. */
	assert_path(url_expand("/assets/{id}", "..", NULL, NULL), "/assets/%2E%2E");
	assert_path(url_expand("/assets/{id}/x", ".", NULL, NULL), "/assets/%2E/x");
	assert_path(url_expand("/assets/{id}", "...", NULL, NULL), "/assets/...");
}

static int pulled;

static bool count_pulled(void *ud, const char *platform_id, const struct jv *record)
{
	(void)ud;
	(void)record;
	assert_string_equal(platform_id, "17");
	pulled++;
	return true;
}

T(a_pulled_record_whose_id_is_not_of_the_declared_shape_is_skipped)
{
	struct pull_pass pp = {.cb = count_pulled, .marker = "description", .ids = ID_DIGITS};
	struct jv *good = J("{\"id\": 17}"), *bad = J("{\"id\": \"../leave_requests/1\"}"), *sp = J("{\"id\": \"1 2\"}");
	pulled = 0;
	assert_true(kit_pull_item(&pp, bad));
	assert_true(kit_pull_item(&pp, sp));
	assert_true(kit_pull_item(&pp, good));
	assert_int_equal(pulled, 1);
	assert_int_equal(pp.passed, 1);
	jv_free(good);
	jv_free(bad);
	jv_free(sp);
}

T(form_bodies_are_encoded)
{
	struct sb b = {0};
	form_add(&b, "grant_type", "client_credentials");
	form_add(&b, "comment", "congé [hrsync:A&B#1]");
	assert_string_equal(sb_str(&b), "grant_type=client_credentials&comment=cong%C3%A9%20%5Bhrsync%3AA%26B%231%5D");
	sb_free(&b);
}

/* ---- pager.c ---- */

/* Read the answers one after the other as pages of pg; the paths asked for go into paths[]. */
static int walk(const struct pager *pg, const char *path, const char *const *answers, char **paths, char **err)
{
	struct page_state ps = {.base = "https://api.example.com/v1", .total = -1};
	int n = 0;
	bool more = true;
	*err = NULL;
	while (more && answers[n]) {
		paths[n] = page_path(pg, &ps, path);
		struct jv *j = J(answers[n]);
		const struct jv *items;
		bool ok = page_read(pg, &ps, j, &items, &more, err);
		jv_free(j);
		n++;
		if (!ok)
			break;
	}
	page_state_free(&ps);
	return n;
}

static void free_paths(char **paths, int n)
{
	for (int i = 0; i < n; i++)
		free(paths[i]);
}

T(page_numbers_stop_at_the_announced_count_or_an_empty_page)
{
	/* PeopleForce: the count flat or under "pagination" */
	static const struct pager pf = {.style = PAGE_NUMBER, .param = "page", .first = 1,
					.pages = "metadata.pagination.pages|metadata.pages"};
	const char *a[] = {"{\"data\": [{\"id\": 1}], \"metadata\": {\"pagination\": {\"page\": 1, \"pages\": 2}}}",
			   "{\"data\": [{\"id\": 2}], \"metadata\": {\"pagination\": {\"page\": 2, \"pages\": 2}}}",
			   "{\"data\": [{\"id\": 3}]}", NULL};
	char *p[4], *err;
	int n = walk(&pf, "/employees?status=all", a, p, &err);
	assert_null(err);
	assert_int_equal(n, 2);
	assert_string_equal(p[0], "/employees?status=all&page=1");
	assert_string_equal(p[1], "/employees?status=all&page=2");
	free_paths(p, n);
	const char *b[] = {"{\"data\": [{\"id\": 1}], \"metadata\": {}}", "{\"data\": []}", "{\"data\": [{\"id\": 9}]}", NULL};
	n = walk(&pf, "/x", b, p, &err);
	assert_int_equal(n, 2);
	free_paths(p, n);
}

T(offsets_count_records_or_pages_and_a_short_page_is_the_last)
{
	static const struct pager rec = {.style = PAGE_OFFSET, .param = "offset", .size_param = "limit", .size = 2,
					 .total = "metadata.total_elements"};
	static const struct pager pgs = {.style = PAGE_AS_OFFSET, .param = "offset", .first = 1, .size_param = "limit",
					 .size = 2};
	const char *a[] = {"{\"data\": [{\"id\": 1}, {\"id\": 2}], \"metadata\": {\"total_elements\": 3}}",
			   "{\"data\": [{\"id\": 3}]}", "{\"data\": [{\"id\": 4}]}", NULL};
	char *p[4], *err;
	int n = walk(&rec, "/e", a, p, &err);
	assert_int_equal(n, 2);
	assert_string_equal(p[0], "/e?limit=2&offset=0");
	assert_string_equal(p[1], "/e?limit=2&offset=2");
	free_paths(p, n);
	n = walk(&pgs, "/t", a, p, &err);
	assert_int_equal(n, 2);
	assert_string_equal(p[0], "/t?limit=2&offset=1");
	assert_string_equal(p[1], "/t?limit=2&offset=2");
	free_paths(p, n);
}

T(cursors_and_next_links_are_followed_under_base_url_only)
{
	static const struct pager cur = {.style = PAGE_CURSOR, .param = "after", .size_param = "limit", .size = 100,
					 .next = "next"};
	const char *a[] = {"{\"data\": [{\"id\": 1}], \"next\": \"c/2=\"}", "{\"data\": [{\"id\": 2}], \"next\": null}",
			   "{\"data\": [{\"id\": 3}]}", NULL};
	char *p[4], *err;
	int n = walk(&cur, "/candidates?filters[tea_id]=t", a, p, &err);
	assert_int_equal(n, 2);
	assert_string_equal(p[0], "/candidates?filters[tea_id]=t&limit=100");
	assert_string_equal(p[1], "/candidates?filters[tea_id]=t&limit=100&after=c%2F2%3D");
	free_paths(p, n);

	static const struct pager jsonapi = {.style = PAGE_NEXT_LINK, .size_param = "page[size]", .size = 30,
					     .next = "links.next"};
	const char *b[] = {"{\"data\": [{\"id\": \"1\"}], \"links\": {\"next\": "
			   "\"https://api.example.com/v1/users?page%5Bnumber%5D=2&page%5Bsize%5D=30\"}}",
			   "{\"data\": [{\"id\": \"2\"}], \"links\": {}}", NULL};
	n = walk(&jsonapi, "/users", b, p, &err);
	assert_null(err);
	assert_int_equal(n, 2);
	assert_string_equal(p[0], "/users?page%5Bsize%5D=30");
	assert_string_equal(p[1], "/users?page%5Bnumber%5D=2&page%5Bsize%5D=30");
	free_paths(p, n);
	/* a link to another host would take the credentials along: refused */
	const char *c[] = {"{\"data\": [{\"id\": \"1\"}], \"links\": {\"next\": \"https://evil.example.net/v1/users?p=2\"}}",
			   NULL};
	n = walk(&jsonapi, "/users", c, p, &err);
	assert_non_null(err);
	assert_non_null(strstr(err, "leaves the platform's base_url"));
	free(err);
	free_paths(p, n);
}

T(a_page_that_repeats_the_last_one_stops_the_listing)
{
	static const struct pager pf = {.style = PAGE_NUMBER, .param = "page", .first = 1};
	const char *a[] = {"{\"data\": [{\"id\": 1}, {\"id\": 2}]}", "{\"data\": [{\"id\": 1}, {\"id\": 2}]}", NULL};
	char *p[3], *err;
	int n = walk(&pf, "/x", a, p, &err);
	assert_int_equal(n, 2);
	assert_non_null(err);
	assert_non_null(strstr(err, "page 2 repeats the previous one"));
	free(err);
	free_paths(p, n);
	/* not a listing at all */
	const char *b[] = {"{\"items\": []}", NULL};
	n = walk(&pf, "/x", b, p, &err);
	assert_non_null(err);
	assert_non_null(strstr(err, "no 'data' list"));
	free(err);
	free_paths(p, n);
}

/* ---- kit.c ---- */

T(indexes_fold_case_and_know_a_shared_key)
{
	struct nat_index ix = {.fold = true};
	const char *id = NULL;
	assert_int_equal(nat_find(&ix, NULL, "a@x.fr", &id), NAT_UNKNOWN); /* not read yet */
	nat_add(&ix, "Anna@X.fr", "1");
	nat_add(&ix, "bob@x.fr", "2");
	nat_add(&ix, "BOB@x.fr", "3");
	nat_add(&ix, "anna@x.fr", "1"); /* the same record listed twice (a page shifted) */
	ix.ready = true;
	assert_int_equal(nat_find(&ix, NULL, "ANNA@x.fr", &id), NAT_ONE);
	assert_string_equal(id, "1");
	assert_int_equal(nat_find(&ix, NULL, "bob@x.fr", &id), NAT_MANY);
	assert_int_equal(nat_find(&ix, NULL, "carl@x.fr", &id), NAT_NONE);
	assert_int_equal(nat_find(&ix, NULL, NULL, &id), NAT_NONE);
	nat_clear(&ix);
	assert_int_equal(nat_find(&ix, NULL, "ANNA@x.fr", &id), NAT_UNKNOWN);
}

T(markers_carry_the_key_and_the_fingerprint)
{
	char fp[17];
	char *k = marker_key("Congés d'été [hrsync:ОТП-000#12#0123456789abcdef]", fp);
	assert_string_equal(k, "ОТП-000#12"); /* a key may hold '#' */
	assert_string_equal(fp, "0123456789abcdef");
	free(k);
	assert_null(marker_key("no marker here", fp));
	assert_null(marker_key("[hrsync:cut", fp));
	assert_null(marker_key(NULL, fp));
}

T(fields_are_read_at_the_top_or_under_attributes)
{
	struct jv *v1 = J("{\"type\": \"Employee\", \"attributes\": {\"id\": {\"label\": \"ID\", \"value\": 7}, "
			  "\"comment\": \"x\"}}");
	struct jv *flat = J("{\"id\": 8, \"attributes\": {\"id\": 9}}");
	char *a = jv_id_text(kit_field(v1, "id")), *b = jv_id_text(kit_field(flat, "id"));
	assert_string_equal(a, "7");
	assert_string_equal(b, "8");
	assert_string_equal(kit_field(v1, "comment")->u.str.s, "x");
	assert_null(kit_field(v1, "email"));
	free(a);
	free(b);
	jv_free(v1);
	jv_free(flat);
	struct jv *wrapped = J("{\"data\": {\"id\": 3}}"), *bare = J("{\"id\": \"u-1\"}");
	a = kit_answer_id(wrapped);
	b = kit_answer_id(bare);
	assert_string_equal(a, "3");
	assert_string_equal(b, "u-1");
	free(a);
	free(b);
	jv_free(wrapped);
	jv_free(bare);
}

/* ---- platform_message ---- */

T(error_envelopes_are_read_per_connector)
{
	const char *v1 = "{\"success\": false, \"error\": {\"code\": 422, \"message\": \"The given data failed to pass "
			 "validation.\", \"error_data\": {\"email\": [\"has already been taken\"]}}}";
	char *m = platform_message(connector_type_find("personio"), v1, strlen(v1));
	assert_string_equal(m, "email: has already been taken");
	free(m);
	m = platform_message(NULL, v1, strlen(v1)); /* without Personio's reading: the message */
	assert_string_equal(m, "The given data failed to pass validation.");
	free(m);
	const char *pf = "{\"errors\": [{\"field\": \"email\", \"message\": \"is invalid\"}, {\"detail\": \"x\\ny\"}]}";
	m = platform_message(connector_type_find("peopleforce"), pf, strlen(pf));
	assert_string_equal(m, "email: is invalid; x y"); /* one line */
	free(m);
	const char *html = "<html>\r\n<h1>502 Bad Gateway</h1></html>";
	m = platform_message(NULL, html, strlen(html));
	assert_string_equal(m, "<html>  <h1>502 Bad Gateway</h1></html>");
	free(m);
}

/* Issue #19: a 422 quoting the request's headers put the key into logs and failures.reason. */
T(a_secret_the_platform_echoes_is_not_in_its_message)
{
	struct secret key = {0};
	secret_set(&key, "test-api-key-5f2c9e", "test");
	const char *pf = "{\"errors\": [{\"message\": \"Invalid request; received X-API-KEY: test-api-key-5f2c9e\"}]}";
	char *m = platform_message(connector_type_find("peopleforce"), pf, strlen(pf));
	assert_string_equal(m, "Invalid request; received X-API-KEY: ***");
	free(m);
	const char *oauth = "{\"error\": \"invalid_request\", \"error_description\": \"Authorization: Bearer "
			    "papi-0f1e2d3c4b5a69788796a5b4c3d2e1f0 refused\"}";
	m = platform_message(connector_type_find("personio"), oauth, strlen(oauth));
	assert_string_equal(m, "invalid_request: Authorization: Bearer *** refused");
	free(m);
	const char *html = "<p>key test-api-key-5f2c9e</p>";
	m = platform_message(NULL, html, strlen(html));
	assert_string_equal(m, "<p>key ***</p>");
	free(m);
	secret_free(&key);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(nested_query_keys_and_values_with_slashes_are_encoded),
		cmocka_unit_test(ids_are_one_path_segment),
		cmocka_unit_test(platform_ids_go_into_url_paths_only_of_the_declared_shape),
		cmocka_unit_test(a_pulled_record_whose_id_is_not_of_the_declared_shape_is_skipped),
		cmocka_unit_test(form_bodies_are_encoded),
		cmocka_unit_test(page_numbers_stop_at_the_announced_count_or_an_empty_page),
		cmocka_unit_test(offsets_count_records_or_pages_and_a_short_page_is_the_last),
		cmocka_unit_test(cursors_and_next_links_are_followed_under_base_url_only),
		cmocka_unit_test(a_page_that_repeats_the_last_one_stops_the_listing),
		cmocka_unit_test(indexes_fold_case_and_know_a_shared_key),
		cmocka_unit_test(markers_carry_the_key_and_the_fingerprint),
		cmocka_unit_test(fields_are_read_at_the_top_or_under_attributes),
		cmocka_unit_test(error_envelopes_are_read_per_connector),
		cmocka_unit_test(a_secret_the_platform_echoes_is_not_in_its_message),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
