/*
 * test_config — what config_load() says about who may write the files hrsync reads, and
 * about plain http (issue 19, item 12): a config, mapping or code table file writable by
 * others is refused, and so is a mapping folder writable by others; a config writable by its
 * group, or holding a conninfo password while others may read it, is a warning;
 * allow_insecure_http is accepted for a base_url on this machine only.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"

#define T(name) static void name(void **state __attribute__((unused)))

/* ---- config_url_is_loopback ---- */

T(loopback_hosts_accepted)
{
	static const char *const ok[] = {
		"http://127.0.0.1:8080/api/public/v3", "http://127.5.6.7/", "http://localhost:1234", "http://LOCALHOST/x",
		"http://[::1]:9000/x", "http://[::1]", "https://127.0.0.1/api", "http://127.0.0.1?x", "http://localhost#f",
	};
	for (size_t i = 0; i < ARRAY_LEN(ok); i++)
		if (!config_url_is_loopback(ok[i]))
			fail_msg("%s should be loopback", ok[i]);
}

T(other_hosts_and_tricks_refused)
{
	static const char *const bad[] = {
		"http://10.0.0.1/", "http://app.peopleforce.io/api", "http://127.0.0.1.evil.example/",
		"http://localhost.evil.example/", "http://user@127.0.0.1/", "http://evil.example@127.0.0.1/",
		"http://127.0.0.1@evil.example/", "http://127.0.0.1:x@evil.example/", "http://[::2]/",
		"http://[::ffff:127.0.0.1]/", "http://0x7f.0.0.1/", "http://2130706433/", "http://127.1/",
		"http://%31%32%37.0.0.1/", "http://127.0.0.1:80abc/", "http://127.0.0.1:/", "http://[::1]x/",
		"http://", "127.0.0.1", "http://127.0.0.1\\@evil.example/", "",
	};
	for (size_t i = 0; i < ARRAY_LEN(bad); i++)
		if (config_url_is_loopback(bad[i]))
			fail_msg("%s should not be loopback", bad[i]);
}

/* ---- config_load: files, folders, modes ---- */

static char dir[64];

static char *path_of(const char *name)
{
	return xasprintf("%s/%s", dir, name);
}

static void write_mode(const char *name, const char *text, mode_t mode)
{
	char *p = path_of(name);
	FILE *f = fopen(p, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	assert_int_equal(chmod(p, mode), 0);
	free(p);
}

static const char *const MAPPING = "connector: pf\nentity: employees\nsource: { table: erp.employees, key: id }\n"
				   "fields:\n  employee_number: { from: id }\n  first_name: { from: first_name }\n"
				   "  last_name: { from: last_name }\n  email: { from: email }\n";

/* A config in dir (mode mode) with this database section and base_url; mappings in dir/maps. */
static void write_config(const char *database, const char *base_url, const char *extra_conn, mode_t mode)
{
	char *text = xasprintf("database:\n%s\nconnectors:\n  pf:\n    type: peopleforce\n    base_url: %s\n"
			       "    token: { env: HRSYNC_TEST_PF }\n%s\nmappings: [ maps/*.yaml ]\n",
			       database, base_url, extra_conn);
	write_mode("hrsync.yaml", text, mode);
	free(text);
}

static int setup(void **state)
{
	(void)state;
	strcpy(dir, "/tmp/hrsync-config-XXXXXX");
	if (!mkdtemp(dir))
		return -1;
	char *maps = path_of("maps");
	int rc = mkdir(maps, 0755);
	free(maps);
	setenv("HRSYNC_TEST_PF", "tok", 1);
	write_mode("maps/employees.yaml", MAPPING, 0644);
	write_config("  conninfo: \"dbname=erp\"", "https://app.peopleforce.io/api", "", 0644);
	return rc;
}

static int teardown(void **state)
{
	(void)state;
	char *cmd = xasprintf("rm -rf '%s'", dir);
	int rc = system(cmd);
	free(cmd);
	return rc == 0 ? 0 : -1;
}

/* Load dir/hrsync.yaml; d gets the diagnostics (caller frees). */
static void load(struct diag *d)
{
	char *p = path_of("hrsync.yaml");
	struct config *c = config_load(p, d);
	assert_non_null(c);
	config_free(c);
	free(p);
}

static const struct diag_msg *find(const struct diag *d, const char *text)
{
	for (size_t i = 0; i < d->n; i++)
		if (strstr(d->msgs[i].text, text))
			return &d->msgs[i];
	struct sb all = {0};
	for (size_t i = 0; i < d->n; i++)
		sb_printf(&all, "\n  %s:%d:%d: %s", d->msgs[i].file, d->msgs[i].line, d->msgs[i].col, d->msgs[i].text);
	fail_msg("no diagnostic containing \"%s\"; got:%s", text, sb_str(&all));
	return NULL;
}

T(clean_config_loads_without_a_word)
{
	struct diag d = {0};
	load(&d);
	assert_int_equal(d.n, 0);
	diag_free(&d);
}

T(config_writable_by_others_refused)
{
	char *p = path_of("hrsync.yaml");
	assert_int_equal(chmod(p, 0666), 0);
	struct diag d = {0};
	load(&d);
	assert_int_equal(d.errors, 1);
	const struct diag_msg *m = find(&d, "writable by others (mode 0666)");
	assert_string_equal(m->file, p);
	assert_true(m->is_error);
	assert_non_null(strstr(m->text, "run: chmod o-w"));
	diag_free(&d);
	free(p);
}

T(config_writable_by_its_group_warned)
{
	char *p = path_of("hrsync.yaml");
	assert_int_equal(chmod(p, 0664), 0);
	struct diag d = {0};
	load(&d);
	assert_int_equal(d.errors, 0);
	assert_int_equal(d.warnings, 1);
	assert_false(find(&d, "writable by its group (mode 0664)")->is_error);
	diag_free(&d);
	free(p);
}

T(conninfo_password_in_a_config_others_read_warned)
{
	write_config("  conninfo: \"host=db dbname=erp password=s3cret\"", "https://app.peopleforce.io/api", "", 0644);
	struct diag d = {0};
	load(&d);
	assert_int_equal(d.errors, 0);
	const struct diag_msg *m = find(&d, "database conninfo: holds a password, in a file others may read (mode 0644)");
	assert_int_equal(m->line, 2);
	assert_int_equal(m->col, 13);
	assert_non_null(strstr(m->text, "password_file"));
	assert_null(strstr(m->text, "s3cret"));
	diag_free(&d);
	/* A URI's password too. */
	write_config("  conninfo: \"postgresql://hrsync:s3cret@db/erp\"", "https://app.peopleforce.io/api", "", 0644);
	load(&d);
	find(&d, "holds a password");
	diag_free(&d);
}

T(conninfo_password_not_warned_when_others_cannot_read_or_from_env)
{
	write_config("  conninfo: \"host=db dbname=erp password=s3cret\"", "https://app.peopleforce.io/api", "", 0640);
	struct diag d = {0};
	load(&d);
	assert_int_equal(d.n, 0);
	setenv("HRSYNC_TEST_DBPW", "x", 1);
	write_config("  conninfo: \"host=db dbname=erp password=${HRSYNC_TEST_DBPW}\"", "https://app.peopleforce.io/api",
		     "", 0644);
	load(&d);
	assert_int_equal(d.n, 0);
	diag_free(&d);
}

T(mapping_file_writable_by_others_refused)
{
	char *p = path_of("maps/employees.yaml");
	assert_int_equal(chmod(p, 0646), 0);
	struct diag d = {0};
	load(&d);
	assert_int_equal(d.errors, 1);
	assert_string_equal(find(&d, "writable by others (mode 0646)")->file, p);
	diag_free(&d);
	/* Its group (the payroll team) may write it. */
	assert_int_equal(chmod(p, 0664), 0);
	load(&d);
	assert_int_equal(d.n, 0);
	diag_free(&d);
	free(p);
}

T(mapping_folder_writable_by_others_refused_even_sticky)
{
	char *maps = path_of("maps");
	static const mode_t modes[] = {0777, 01777, 0757};
	for (size_t i = 0; i < ARRAY_LEN(modes); i++) {
		assert_int_equal(chmod(maps, modes[i]), 0);
		struct diag d = {0};
		load(&d);
		assert_int_equal(d.errors, 1);
		const struct diag_msg *m = find(&d, "this folder is writable by others");
		assert_string_equal(m->file, maps);
		assert_non_null(strstr(m->text, "add or replace the mapping files"));
		diag_free(&d);
	}
	assert_int_equal(chmod(maps, 0775), 0);
	struct diag d = {0};
	load(&d);
	assert_int_equal(d.n, 0);
	diag_free(&d);
	free(maps);
}

T(config_folder_writable_by_others_refused_unless_sticky)
{
	assert_int_equal(chmod(dir, 0777), 0);
	struct diag d = {0};
	load(&d);
	assert_int_equal(d.errors, 1);
	assert_non_null(strstr(find(&d, "this folder is writable by others (mode 0777)")->text, "configuration"));
	diag_free(&d);
	assert_int_equal(chmod(dir, 01777), 0);
	load(&d);
	assert_int_equal(d.n, 0);
	diag_free(&d);
	assert_int_equal(chmod(dir, 0700), 0);
}

T(map_file_writable_by_others_refused)
{
	write_mode("maps/kinds.csv", "A,1\n", 0666);
	char *m = xasprintf("%s  gender: { from: sex, map_file: kinds.csv, unmapped: null }\n", MAPPING);
	write_mode("maps/employees.yaml", m, 0644);
	free(m);
	struct diag d = {0};
	load(&d);
	assert_int_equal(d.errors, 1);
	char *csv = path_of("maps/kinds.csv");
	assert_string_equal(find(&d, "writable by others (mode 0666)")->file, csv);
	free(csv);
	diag_free(&d);
}

T(insecure_http_accepted_on_this_machine_only)
{
	write_config("  conninfo: \"dbname=erp\"", "http://127.0.0.1:8080/api", "    allow_insecure_http: true", 0644);
	struct diag d = {0};
	load(&d);
	assert_int_equal(d.n, 0);
	diag_free(&d);
	static const char *const elsewhere[] = {"http://10.1.2.3/api", "https://app.peopleforce.io/api",
						"http://127.0.0.1@evil.example/api"};
	for (size_t i = 0; i < ARRAY_LEN(elsewhere); i++) {
		write_config("  conninfo: \"dbname=erp\"", elsewhere[i], "    allow_insecure_http: true", 0644);
		load(&d);
		assert_int_equal(d.errors, 1);
		const struct diag_msg *m = find(&d, "allow_insecure_http is only for a sandbox on this machine");
		assert_int_equal(m->line, 8);
		assert_int_equal(m->col, 26);
		diag_free(&d);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(loopback_hosts_accepted),
		cmocka_unit_test(other_hosts_and_tricks_refused),
		cmocka_unit_test_setup_teardown(clean_config_loads_without_a_word, setup, teardown),
		cmocka_unit_test_setup_teardown(config_writable_by_others_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(config_writable_by_its_group_warned, setup, teardown),
		cmocka_unit_test_setup_teardown(conninfo_password_in_a_config_others_read_warned, setup, teardown),
		cmocka_unit_test_setup_teardown(conninfo_password_not_warned_when_others_cannot_read_or_from_env, setup,
						teardown),
		cmocka_unit_test_setup_teardown(mapping_file_writable_by_others_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(mapping_folder_writable_by_others_refused_even_sticky, setup, teardown),
		cmocka_unit_test_setup_teardown(config_folder_writable_by_others_refused_unless_sticky, setup, teardown),
		cmocka_unit_test_setup_teardown(map_file_writable_by_others_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(insecure_http_accepted_on_this_machine_only, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
