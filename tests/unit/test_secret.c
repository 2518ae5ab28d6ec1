/*
 * test_secret — secret_redact (issue #19): a secret the platform echoes never reaches a
 * log line or the state. The registry of live values (every struct secret loaded or set,
 * until freed) and the patterns of credentials hrsync does not hold (an Authorization or
 * X-API-KEY header, a bearer token) are replaced by "***", in place.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "secret.h"

#define T(name) static void name(void **state __attribute__((unused)))

/* secret_redact of text, compared with want. */
static void redacts(const char *text, const char *want)
{
	char *s = xstrdup(text);
	secret_redact(s);
	assert_string_equal(s, want);
	free(s);
}

T(a_loaded_secret_is_redacted_wherever_the_platform_quotes_it)
{
	struct secret key = {0};
	secret_set(&key, "test-api-key-5f2c9e", "test key");
	redacts("Invalid request (received X-API-KEY test-api-key-5f2c9e)", "Invalid request (received X-API-KEY ***)");
	redacts("test-api-key-5f2c9etest-api-key-5f2c9e and again test-api-key-5f2c9e", "****** and again ***");
	redacts("no secret here", "no secret here");
	secret_free(&key);
	/* Freed: no longer live, no longer looked for. */
	redacts("test-api-key-5f2c9e", "test-api-key-5f2c9e");
}

T(a_secret_held_twice_stays_live_until_both_are_freed)
{
	struct secret a = {0}, b = {0};
	secret_set(&a, "shared-value-123", "a");
	secret_set(&b, "shared-value-123", "b");
	secret_free(&a);
	redacts("x shared-value-123 y", "x *** y");
	secret_free(&b);
	redacts("x shared-value-123 y", "x shared-value-123 y");
}

T(a_secret_that_holds_another_is_redacted_whole)
{
	struct secret inner = {0}, outer = {0};
	secret_set(&inner, "abcd1234", "inner");
	secret_set(&outer, "abcd1234-and-more", "outer");
	redacts("[abcd1234-and-more] [abcd1234]", "[***] [***]");
	secret_free(&inner);
	secret_free(&outer);
}

T(values_shorter_than_the_minimum_are_not_registered)
{
	struct secret s = {0};
	secret_set(&s, "abc", "short");
	redacts("abc abcabc", "abc abcabc");
	secret_free(&s);
}

T(credential_headers_and_bearer_tokens_are_redacted_even_unknown)
{
	redacts("received X-API-KEY: 0123456789abcdef, rejected", "received X-API-KEY: ***, rejected");
	redacts("headers: {\"Authorization\": \"Bearer papi-0123456789abcdef\"}", "headers: {\"Authorization\": \"Bearer ***\"}");
	redacts("authorization=Basic dXNlcjpwYXNzd29yZA==", "authorization=Basic ***");
	redacts("token Bearer eyJhbGciOiJIUzI1NiJ9.x.y was refused", "token Bearer *** was refused");
	redacts("grant_type=client_credentials&client_id=x&client_secret=pio-secret-7c1d0b33e5",
		"grant_type=client_credentials&client_id=x&client_secret=***");
	redacts("{\"access_token\":\"papi-abcdef0123456789\",\"expires_in\":60}", "{\"access_token\":\"***\",\"expires_in\":60}");
	/* Words are not credentials: a message about them stays readable. */
	redacts("Unauthorized: no bearer token", "Unauthorized: no bearer token");
	redacts("Authorization: the access token has expired", "Authorization: the access token has expired");
	redacts("the api_key field is required", "the api_key field is required");
	redacts("X-API-KEY: ***", "X-API-KEY: ***");
	secret_redact(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(a_loaded_secret_is_redacted_wherever_the_platform_quotes_it),
		cmocka_unit_test(a_secret_held_twice_stays_live_until_both_are_freed),
		cmocka_unit_test(a_secret_that_holds_another_is_redacted_whole),
		cmocka_unit_test(values_shorter_than_the_minimum_are_not_registered),
		cmocka_unit_test(credential_headers_and_bearer_tokens_are_redacted_even_unknown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
