/*
 * test_troops — the pure parts of the Troops connector, through its public type: Troops'
 * error envelope read into one line with every NIR masked (Troops quotes the reference it
 * refused), and the per-item results of a batch import turned into per-record outcomes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "batch.h"
#include "kit.h"

#define T(name) static void name(void **state __attribute__((unused)))

static const struct connector_type *troops(void)
{
	const struct connector_type *t = connector_type_find("troops");
	assert_non_null(t);
	return t;
}

static char *msg(const char *body)
{
	return platform_message(troops(), body, strlen(body));
}

static void assert_msg(const char *body, const char *want)
{
	char *m = msg(body);
	assert_non_null(m);
	assert_string_equal(m, want);
	free(m);
}

T(the_error_envelope_is_read_into_one_line)
{
	assert_msg("{\"error\": {\"code\": \"validation_failed\", \"message\": \"email has already been taken in this TEA\","
		   " \"details\": [{\"field\": \"email\", \"message\": \"has already been taken in this TEA\"}]}}",
		   "email has already been taken in this TEA");
	assert_msg("{\"error\": {\"code\": \"unauthorized\", \"message\": \"authentication is lacking, invalid or expired\"}}",
		   "the Troops API key is invalid or expired; ask Troops for a new one");
}

T(nirs_quoted_by_troops_are_masked)
{
	/* Compact, spaced, Corsican: sex, year and month kept, the rest starred. */
	assert_msg("{\"error\": {\"code\": \"already_exists\", \"message\": \"a candidate with reference ssn:185057800608436 "
		   "already exists in this TEA\"}}",
		   "a candidate with reference ssn:1 85 05 ** *** *** ** already exists in this TEA");
	assert_msg("{\"error\": {\"message\": \"ssn:1 85 05 78 006 084 36 is not a valid NIR (bad key)\"}}",
		   "ssn:1 85 05 ** *** *** ** is not a valid NIR (bad key)");
	assert_msg("{\"error\": {\"message\": \"ref ssn:290072A00401595 is given twice\"}}",
		   "ref ssn:2 90 07 ** *** *** ** is given twice");
	/* What is not a NIR stays: Evolia ids, phones, dates, amounts, UUIDs. */
	const char *keep = "{\"error\": {\"message\": \"erp:8304/06 +33612345678 2026-11-25T08:00:00+01:00 1234567.89 "
			   "e2000000-0000-4000-8000-000000000001\"}}";
	assert_msg(keep, "erp:8304/06 +33612345678 2026-11-25T08:00:00+01:00 1234567.89 "
			 "e2000000-0000-4000-8000-000000000001");
}

static const struct batch *import_batch(void)
{
	const struct conn_entity *e = connector_entity(troops(), "candidates");
	assert_non_null(e);
	assert_non_null(e->batch);
	assert_string_equal(e->batch->path, "/candidates/import");
	assert_int_equal(e->batch->max, 100);
	return e->batch;
}

T(import_items_become_per_record_outcomes)
{
	const struct batch *b = import_batch();
	const char *text =
		"{\"data\": ["
		"{\"index\": 2, \"error\": {\"code\": \"validation_failed\", \"message\": \"email is invalid\"}},"
		"{\"index\": 0, \"id\": \"e1000000-0000-4000-8000-000000000001\", \"warnings\": []},"
		"{\"index\": 1, \"id\": \"e1000000-0000-4000-8000-000000000002\", \"warnings\": [\"phone is not in "
		"international format\", \"no desired job\"]},"
		"{\"index\": 3, \"error\": {\"code\": \"already_exists\", \"message\": \"exists\", \"details\": [{\"id\": "
		"\"e1000000-0000-4000-8000-000000000009\"}]}},"
		"{\"index\": 4, \"error\": {\"code\": \"rolled_back\", \"message\": \"not imported: rolled back\"}},"
		"{\"index\": 5, \"error\": {\"code\": \"skipped_with_warnings\", \"message\": \"not imported: ssn:185057800608436 "
		"twice\"}}"
		"]}";
	struct jv *answer = jv_parse(text, strlen(text), NULL, 0);
	assert_non_null(answer);
	struct batch_result r;

	memset(&r, 0, sizeof r);
	assert_true(b->result(answer, 0, &r)); /* found by its index, not its place */
	assert_int_equal(r.outcome, BATCH_CREATED);
	assert_string_equal(r.id, "e1000000-0000-4000-8000-000000000001");
	assert_null(r.message);
	free(r.id);

	memset(&r, 0, sizeof r);
	assert_true(b->result(answer, 1, &r));
	assert_int_equal(r.outcome, BATCH_CREATED);
	assert_string_equal(r.message, "phone is not in international format; no desired job");
	free(r.id);
	free(r.message);

	memset(&r, 0, sizeof r);
	assert_true(b->result(answer, 2, &r));
	assert_int_equal(r.outcome, BATCH_REFUSED);
	assert_string_equal(r.message, "email is invalid (validation_failed)");
	free(r.message);

	memset(&r, 0, sizeof r);
	assert_true(b->result(answer, 3, &r));
	assert_int_equal(r.outcome, BATCH_EXISTS);
	assert_string_equal(r.id, "e1000000-0000-4000-8000-000000000009");
	free(r.id);
	free(r.message);

	memset(&r, 0, sizeof r);
	assert_true(b->result(answer, 4, &r));
	assert_int_equal(r.outcome, BATCH_AGAIN);
	free(r.message);

	memset(&r, 0, sizeof r);
	assert_true(b->result(answer, 5, &r));
	assert_int_equal(r.outcome, BATCH_REFUSED);
	assert_string_equal(r.message, "not imported: ssn:1 85 05 ** *** *** ** twice (skipped_with_warnings)");
	free(r.message);

	memset(&r, 0, sizeof r);
	assert_false(b->result(answer, 6, &r)); /* the answer says nothing of it: looked for */
	jv_free(answer);
}

T(options_are_declared_for_check)
{
	const struct connector_type *t = troops();
	assert_true(t->native_refs);
	int tea = connector_option_index(t, "tea_id"), sender = connector_option_index(t, "sender_id");
	int strategy = connector_option_index(t, "import_strategy");
	assert_true(tea >= 0 && sender >= 0 && strategy >= 0);
	assert_int_equal(t->options[tea].kind, OPT_UUID);
	assert_true(t->options[tea].required && t->options[sender].required);
	assert_string_equal(t->options[strategy].choices[2], "rollback_on_warnings");
	assert_null(t->options[strategy].choices[3]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(the_error_envelope_is_read_into_one_line),
		cmocka_unit_test(nirs_quoted_by_troops_are_masked),
		cmocka_unit_test(import_items_become_per_record_outcomes),
		cmocka_unit_test(options_are_declared_for_check),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
