/*
 * main — the command line of SPEC §3: global options, then one command.
 * Exit status: 0 in step, 1 records failed or deferred, 2 usage/config/mapping error,
 * 3 could not run or stopped early, 75 another run holds the lock.
 */
#define _GNU_SOURCE
#include <curl/curl.h>
#include <locale.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "config.h"
#include "log.h"
#include "sync.h"
#include "version.h"

static void usage(FILE *out)
{
	fprintf(out,
		"usage: hrsync [-c FILE] [-v | -q] [--log-format auto|text|json|journal] COMMAND [ARGS]\n"
		"\n"
		"  run [--dry-run] [--mapping NAME]... [--full] [--force]\n"
		"                         one sync pass over all enabled mappings, dependencies first\n"
		"  check                  validate the config and every mapping file\n"
		"  db migrate             create or upgrade the state schema\n"
		"  version                print the version\n"
		"\n"
		"Config: -c FILE, else $HRSYNC_CONFIG, else /etc/hrsync/hrsync.yaml.\n"
		"Exit status: 0 in step, 1 some records failed or wait, 2 usage or configuration error,\n"
		"3 could not run or stopped early, 75 another run holds the lock.\n");
}

struct globals {
	const char *config;
	int level;
	bool level_set;
	enum log_format format;
	bool format_set;
};

/* Load and check the config; prints every problem. NULL (exit 2) when there are errors. */
static struct config *load(const struct globals *g, bool quiet_ok)
{
	struct diag d = {0};
	struct config *cfg = config_load(g->config, &d);
	if (d.n)
		diag_print(&d, stderr);
	if (!cfg || d.errors) {
		fprintf(stderr, "hrsync: %d error(s) in the configuration; nothing was done\n", d.errors ? d.errors : 1);
		diag_free(&d);
		config_free(cfg);
		return NULL;
	}
	(void)quiet_ok;
	diag_free(&d);
	if (cfg->timezone) {
		setenv("TZ", cfg->timezone, 1);
		tzset();
	}
	log_setup(g->level_set ? g->level : cfg->log_level,
		  g->format_set ? g->format : cfg->log_format_set ? cfg->log_format : LOGF_AUTO);
	return cfg;
}

static int cmd_run(const struct globals *g, int argc, char **argv)
{
	struct run_opts o = {0};
	o.only = xcalloc((size_t)argc + 1, sizeof *o.only);
	for (int i = 0; i < argc; i++) {
		if (streq(argv[i], "--dry-run"))
			o.dry_run = true;
		else if (streq(argv[i], "--full"))
			o.full = true;
		else if (streq(argv[i], "--force"))
			o.force = true;
		else if (streq(argv[i], "--mapping") && i + 1 < argc)
			o.only[o.nonly++] = argv[++i];
		else if (str_has_prefix(argv[i], "--mapping="))
			o.only[o.nonly++] = argv[i] + 10;
		else {
			fprintf(stderr, "hrsync run: unknown argument '%s'\n", argv[i]);
			free(o.only);
			return 2;
		}
	}
	struct config *cfg = load(g, false);
	if (!cfg) {
		free(o.only);
		return 2;
	}
	int rc = sync_run(cfg, &o);
	config_free(cfg);
	free(o.only);
	return rc;
}

static int cmd_check(const struct globals *g, int argc, char **argv)
{
	(void)argv;
	if (argc > 0) {
		fprintf(stderr, "hrsync check: unknown argument '%s'\n", argv[0]);
		return 2;
	}
	struct diag d = {0};
	struct config *cfg = config_load(g->config, &d);
	diag_print(&d, stderr);
	int rc = (!cfg || d.errors) ? 2 : 0;
	if (rc == 0)
		printf("%s: %zu mapping(s), %zu connector(s): no errors%s\n", g->config, cfg->nmaps, cfg->nconns,
		       d.warnings ? " (see the warnings)" : "");
	else
		printf("%s: %d error(s), %d warning(s)\n", g->config, d.errors ? d.errors : 1, d.warnings);
	diag_free(&d);
	config_free(cfg);
	return rc;
}

int main(int argc, char **argv)
{
	setlocale(LC_CTYPE, "C.UTF-8");
	struct globals g = {0};
	g.level = L_INFO;
	g.format = LOGF_AUTO;
	g.config = getenv("HRSYNC_CONFIG");
	if (!g.config || !*g.config)
		g.config = "/etc/hrsync/hrsync.yaml";
	int i = 1;
	for (; i < argc && argv[i][0] == '-'; i++) {
		const char *a = argv[i];
		if (streq(a, "-c") && i + 1 < argc)
			g.config = argv[++i];
		else if (streq(a, "-v"))
			g.level = L_DEBUG, g.level_set = true;
		else if (streq(a, "-q"))
			g.level = L_WARN, g.level_set = true;
		else if ((streq(a, "--log-format") && i + 1 < argc) || str_has_prefix(a, "--log-format=")) {
			const char *v = a[12] == '=' ? a + 13 : argv[++i];
			if (!log_parse_format(v, &g.format)) {
				fprintf(stderr, "hrsync: --log-format is auto, text, json or journal\n");
				return 2;
			}
			g.format_set = true;
		} else if (streq(a, "-h") || streq(a, "--help")) {
			usage(stdout);
			return 0;
		} else if (streq(a, "--version")) {
			printf("hrsync %s\n", HRSYNC_VERSION);
			return 0;
		} else {
			fprintf(stderr, "hrsync: unknown option '%s'\n", a);
			usage(stderr);
			return 2;
		}
	}
	log_setup(g.level, g.format);
	if (i >= argc) {
		usage(stderr);
		return 2;
	}
	const char *cmd = argv[i++];
	int rest = argc - i;
	char **args = argv + i;
	if (streq(cmd, "version")) {
		printf("hrsync %s (%s)\n", HRSYNC_VERSION, curl_version());
		return 0;
	}
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		fprintf(stderr, "hrsync: cannot initialise libcurl\n");
		return 3;
	}
	int rc;
	if (streq(cmd, "run")) {
		rc = cmd_run(&g, rest, args);
	} else if (streq(cmd, "check")) {
		rc = cmd_check(&g, rest, args);
	} else if (streq(cmd, "db") && rest == 1 && streq(args[0], "migrate")) {
		struct config *cfg = load(&g, false);
		rc = cfg ? sync_migrate(cfg) : 2;
		config_free(cfg);
	} else {
		fprintf(stderr, "hrsync: unknown command '%s'\n", cmd);
		usage(stderr);
		rc = 2;
	}
	curl_global_cleanup();
	return rc;
}
