/*
 * fuzz_config — hrsync.yaml and the mapping files it names, through config_load():
 * option parsing, secrets, mapping globs, mapping_load() for every file, and
 * link_mappings() (connectors, entities, references, dependency order).
 *
 * Input: the hrsync.yaml text, then optional files, each after a line "#@NAME"
 * (a mapping, a map_file CSV, a secret file...). All are written into a private
 * scratch directory, so `mappings: [employees.yaml]` finds the mapping of the input.
 *
 * Properties: no memory error, leak or UB; config_load() returns NULL only with an
 * error in the diag; every mapping is listed once, in an order where each mapping
 * comes after those it depends on (unless a cycle was reported); every diagnostic has
 * a text; the config's lookups agree with what it holds.
 */
#include "fuzz.h"

#include "config.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fuzz_setup(true);
	return 0;
}

static void check_order(const struct config *c, const struct diag *d)
{
	bool cycle = false;
	for (size_t i = 0; i < d->n; i++)
		if (strstr(d->msgs[i].text, "cycle"))
			cycle = true;
	for (size_t i = 0; i < c->nmaps; i++) {
		FUZZ_CHECK(c->maps[i] && c->maps[i]->name, "mapping %zu has no name", i);
		for (size_t j = 0; j < c->nmaps; j++)
			FUZZ_CHECK(i == j || c->maps[i] != c->maps[j], "mapping %s listed twice", c->maps[i]->name);
		if (cycle)
			continue;
		const struct mapping *m = c->maps[i];
		for (size_t k = 0; k < m->ndeps; k++) {
			const struct mapping *t = config_mapping(c, m->depends_on[k]);
			if (!t || t == m)
				continue;
			bool before = false;
			for (size_t j = 0; j < i; j++)
				before |= c->maps[j] == t;
			/* Two mappings of one name: config_mapping() finds the first, the order knows both. */
			bool dup_name = false;
			for (size_t j = 0; j < c->nmaps; j++)
				dup_name |= c->maps[j] != t && streq(c->maps[j]->name, t->name);
			FUZZ_CHECK(before || dup_name, "mapping %s comes before %s, which it depends on", m->name, t->name);
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_part parts[FUZZ_MAX_PARTS];
	if (FUZZ_KNOWN_BUG(8) && memmem(data, size, "ssn:", 4))
		return -1;
	if (!fuzz_write_files(data, size, "hrsync.yaml", parts, NULL))
		return -1; /* names a file outside the sandbox: not worth keeping */
	char *path = xasprintf("%s/hrsync.yaml", fuzz_dir_path);
	struct diag d = {0};
	struct config *c = config_load(path, &d);
	if (!c) {
		FUZZ_CHECK(d.errors > 0, "config_load() returned NULL without an error");
	} else {
		check_order(c, &d);
		for (size_t i = 0; i < c->nconns; i++)
			FUZZ_CHECK(config_connector(c, c->conns[i].name) != NULL, "connector %s not found by name",
				   c->conns[i].name);
		for (size_t i = 0; i < c->nmaps; i++) {
			struct mapping *m = c->maps[i];
			FUZZ_CHECK(config_mapping(c, m->name) != NULL, "mapping %s not found by name", m->name);
			for (size_t k = 0; k < m->nfields; k++) {
				const struct field *f = &m->fields[k];
				FUZZ_CHECK(mapping_field(m, f->path) != NULL, "field %s not found by path", f->path);
				if (f->src == VS_REF)
					(void)config_ref_target(c, m, f);
			}
		}
	}
	for (size_t i = 0; i < d.n; i++)
		FUZZ_CHECK(d.msgs[i].text && d.msgs[i].text[0], "diagnostic %zu has no text", i);
	FILE *null = fopen("/dev/null", "w");
	if (null) {
		diag_print(&d, null);
		fclose(null);
	}
	config_free(c);
	diag_free(&d);
	free(path);
	return 0;
}
