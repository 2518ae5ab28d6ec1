/*
 * test_secret — secrets in secret.c. Where they come from: { env: NAME } is read once, wiped
 * from the environment (its bytes too, which /proc/PID/environ shows) and kept for the
 * process's later loads, as the daemon's reload needs. Where they must never go
 * (secret_redact): a secret the platform echoes never reaches a log line or the state. The
 * registry of live values (every struct secret loaded or set, until freed) and the patterns
 * of credentials hrsync does not hold (an Authorization or X-API-KEY header, a bearer token)
 * are replaced by "***", in place.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "secret.h"

#define T(name) static void name(void **state __attribute__((unused)))

/* Load "token: { env: NAME }" into s; the number of errors reported. */
static int load_env(struct secret *s, const char *name)
{
	char *text = xasprintf("token: { env: %s }\n", name);
	struct diag d = {0};
	struct ydoc *doc = ydoc_parse("hrsync.yaml", text, strlen(text), &d);
	assert_non_null(doc);
	secret_load(s, ymap_get(doc->root, "token"), ".", "connector 'pf': token", &d);
	int errors = d.errors;
	diag_free(&d);
	ydoc_free(doc);
	free(text);
	return errors;
}

/* The environment entry NAME=... as it is in memory (environ[]), or NULL. */
static char *env_entry(const char *name)
{
	size_t nl = strlen(name);
	for (char **e = environ; *e; e++)
		if (strncmp(*e, name, nl) == 0 && (*e)[nl] == '=')
			return *e;
	return NULL;
}

T(env_secret_wiped_from_the_environment_and_kept_for_a_reload)
{
	assert_int_equal(setenv("HRSYNC_TEST_TOKEN", "tok-3f9a-secret", 1), 0);
	char *entry = env_entry("HRSYNC_TEST_TOKEN");
	assert_non_null(entry);
	struct secret s;
	assert_int_equal(load_env(&s, "HRSYNC_TEST_TOKEN"), 0);
	assert_string_equal(secret_value(&s), "tok-3f9a-secret");
	/* Gone from the environment, and the bytes it was in no longer hold it. */
	assert_null(getenv("HRSYNC_TEST_TOKEN"));
	assert_null(env_entry("HRSYNC_TEST_TOKEN"));
	assert_memory_equal(entry, "HRSYNC_TEST_TOKEN=\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0", 33);
	/* The daemon's reload loads the config again: the value is still there. */
	struct secret again;
	assert_int_equal(load_env(&again, "HRSYNC_TEST_TOKEN"), 0);
	assert_string_equal(secret_value(&again), "tok-3f9a-secret");
	assert_string_equal(again.origin, "env HRSYNC_TEST_TOKEN");
	secret_free(&s);
	secret_free(&again);
}

T(env_secret_set_again_takes_the_new_value)
{
	assert_int_equal(setenv("HRSYNC_TEST_TOKEN2", "first", 1), 0);
	struct secret s;
	assert_int_equal(load_env(&s, "HRSYNC_TEST_TOKEN2"), 0);
	secret_free(&s);
	assert_int_equal(setenv("HRSYNC_TEST_TOKEN2", "second", 1), 0);
	assert_int_equal(load_env(&s, "HRSYNC_TEST_TOKEN2"), 0);
	assert_string_equal(secret_value(&s), "second");
	assert_null(getenv("HRSYNC_TEST_TOKEN2"));
	secret_free(&s);
}

T(env_secret_never_set_is_an_error)
{
	unsetenv("HRSYNC_TEST_NEVER_SET");
	struct secret s;
	assert_int_equal(load_env(&s, "HRSYNC_TEST_NEVER_SET"), 1);
	assert_false(secret_present(&s));
}

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
		cmocka_unit_test(env_secret_wiped_from_the_environment_and_kept_for_a_reload),
		cmocka_unit_test(env_secret_set_again_takes_the_new_value),
		cmocka_unit_test(env_secret_never_set_is_an_error),
		cmocka_unit_test(a_loaded_secret_is_redacted_wherever_the_platform_quotes_it),
		cmocka_unit_test(a_secret_held_twice_stays_live_until_both_are_freed),
		cmocka_unit_test(a_secret_that_holds_another_is_redacted_whole),
		cmocka_unit_test(values_shorter_than_the_minimum_are_not_registered),
		cmocka_unit_test(credential_headers_and_bearer_tokens_are_redacted_even_unknown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
