/*
 * test_secret — where secrets come from (secret.c): { env: NAME } is read once, wiped from
 * the environment (its bytes too, which /proc/PID/environ shows) and kept for the process's
 * later loads, as the daemon's reload needs (issue 19, item 11).
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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(env_secret_wiped_from_the_environment_and_kept_for_a_reload),
		cmocka_unit_test(env_secret_set_again_takes_the_new_value),
		cmocka_unit_test(env_secret_never_set_is_an_error),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
