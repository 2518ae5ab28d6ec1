/*
 * main — the command line (hrsync(1): docs/man/hrsync.1): global options, then one command.
 * Exit status: 0 in step, 1 records failed or deferred, 2 usage/config/mapping error,
 * 3 could not run or stopped early, 75 another run holds the lock.
 */
#define _GNU_SOURCE
#include <curl/curl.h>
#include <locale.h>
#include <malloc.h>
#include <stdio.h>
#include <sys/prctl.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "config.h"
#include "help.h"
#include "log.h"
#include "sync.h"
#include "version.h"

static void usage(FILE *out)
{
	fprintf(out,
		"usage: hrsync [-c FILE] [-v | -q] [--log-format auto|text|json|journal] COMMAND [ARGS]\n"
		"\n"
		"  run [--dry-run] [--mapping NAME]... [--full] [--force] [--until TIME]\n"
		"                         one sync pass over all enabled mappings, dependencies first\n"
		"  plan [--mapping NAME]... [--format table|json]\n"
		"                         what run would do, record by record, with field diffs; sends nothing\n"
		"  preview MAPPING [--limit N] [--key KEY]\n"
		"                         source rows and the payloads they map to (JSON lines)\n"
		"  check [--online]       validate the config and every mapping file\n"
		"  daemon                 run on the configured schedule; SIGHUP reloads, SIGTERM stops\n"
		"  status [--runs N] [--format table|json]\n"
		"                         recent runs, per-mapping counts, records waiting to be retried\n"
		"  failures [MAPPING] [--format table|json]\n"
		"                         records that failed, with the reason and attempt count\n"
		"  retry [MAPPING [KEY...]]\n"
		"                         make failed records eligible again on the next run\n"
		"  reconcile [--mapping NAME]... [--format table|json] [--repair]\n"
		"                         compare every record on the platforms with the links and the ERP\n"
		"  db migrate             create or upgrade the state schema\n"
		"  db grants              print the SQL for least-privilege database roles (source, state)\n"
		"  version                print the version\n"
		"\n"
		"Config: -c FILE, else $HRSYNC_CONFIG, else /etc/hrsync/hrsync.yaml.\n"
		"Exit status: 0 in step, 1 some records failed or wait, 2 usage or configuration error,\n"
		"3 could not run or stopped early, 75 another run holds the lock.\n");
}

static const struct command {
	const char *name;
	int (*fn)(const struct globals *g, int argc, char **argv);
} commands[] = {
	{"run", cmd_run},
	{"plan", cmd_plan},
	{"preview", cmd_preview},
	{"check", cmd_check},
	{"daemon", cmd_daemon},
	{"status", cmd_status},
	{"failures", cmd_failures},
	{"retry", cmd_retry},
	{"db", cmd_db},
	{"reconcile", cmd_reconcile},
};

int main(int argc, char **argv)
{
	/* Tokens and passwords live in this process's memory: no core dump of it, and no ptrace
	 * or /proc/PID/{mem,environ} access by other processes of the same user (only root). */
	prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
	setlocale(LC_CTYPE, "C.UTF-8");
	/* Each FETCH's result is freed before the next one is read: keep those pages rather than
	 * give them back and fault them in again, batch after batch (a tenth of the client's time
	 * in a no-change run of a million rows went to page faults and heap resizing). */
	mallopt(M_TRIM_THRESHOLD, 8 << 20);
	mallopt(M_TOP_PAD, 1 << 20);
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
	/* help COMMAND, COMMAND --help, COMMAND -h: help.c, before any command parses its arguments. */
	if (streq(cmd, "help") || help_asked(rest, args)) {
		const char *about = cmd;
		if (streq(cmd, "help") && rest == 0) {
			usage(stdout);
			return 0;
		}
		if (streq(cmd, "help") && args[0][0] != '-')
			about = args[0];
		if (help_print(about, stdout))
			return 0;
		fprintf(stderr, "hrsync: unknown command '%s'\n", about);
		usage(stderr);
		return 2;
	}
	if (streq(cmd, "version")) {
		printf("hrsync %s (%s)\n", HRSYNC_VERSION, curl_version());
		return 0;
	}
	int rc = -1;
	for (size_t k = 0; k < ARRAY_LEN(commands); k++)
		if (streq(cmd, commands[k].name))
			rc = commands[k].fn(&g, rest, args);
	if (rc == -1) {
		fprintf(stderr, "hrsync: unknown command '%s'\n", cmd);
		usage(stderr);
		rc = 2;
	}
	curl_global_cleanup(); /* nothing to undo if no command set libcurl up (http_init_once) */
	return rc;
}
