/*
 * help — see help.h. Every command's help is one entry of `helps[]`: its usage line, what
 * it does, its arguments and options each with its explanation, and its exit status. The
 * texts are written once, unwrapped; help_print() wraps them to 79 columns. hrsync(1)
 * (docs/man/hrsync.1) says the same at more length: change both together.
 */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "help.h"
#include "util.h"

#define WIDTH 79
#define ITEM_COL 24 /* where an option's explanation starts */

struct help_item {
	const char *spelling; /* "--mapping NAME", "MAPPING" */
	const char *text;
};

struct help {
	const char *name;
	const char *usage;             /* after "usage: " */
	const char *about;             /* what the command does */
	struct help_item args[4];      /* positional arguments (and db's subcommands) */
	struct help_item opts[8];      /* options, -h/--help excepted (every command has it) */
	const char *exit;              /* its exit status */
};

static const struct help helps[] = {
	{"run",
	 "hrsync run [--dry-run] [--mapping NAME]... [--full] [--force] [--until TIME]",
	 "One sync pass over all enabled mappings, dependencies first: reads the ERP mirror, sends what changed to "
	 "each platform within its rate limit, pulls back what the platforms own, and records everything in the "
	 "state schema. Ends with one summary line per mapping; rewrites the metrics file when metrics.textfile is "
	 "set.",
	 {{0}},
	 {{"--dry-run", "show what would be sent, as `hrsync plan` does, and send nothing"},
	  {"--mapping NAME", "only the mapping NAME; repeat the option for several (--mapping=NAME works too)"},
	  {"--full", "send every record, even those whose payload did not change since it was last sent"},
	  {"--force",
	   "run past the mass-change guard: a run that would terminate or delete more than "
	   "guards.max_terminations of a mapping's records, or that finds a source empty that was not empty "
	   "last time"},
	  {"--until TIME",
	   "stop sending at TIME, a time of day HH:MM (in the configuration's timezone; past it: tomorrow) "
	   "or a duration from now such as +4h or +90m: what is in flight finishes, everything done is "
	   "recorded, what is left waits for the next run, and the exit status is 1. Default: run_until "
	   "in the configuration, if set"}},
	 "0 every record in step, 1 some records failed or wait (see `hrsync failures`), 2 usage or "
	 "configuration error (nothing was touched), 3 could not run or stopped early (everything done is "
	 "recorded), 75 another run holds the lock."},
	{"plan",
	 "hrsync plan [--mapping NAME]... [--format table|json]",
	 "What `hrsync run` would do, record by record (create, update, terminate, delete, restore), with the "
	 "fields that differ. Reads the mirror, the state and the platforms; writes nothing remote.",
	 {{0}},
	 {{"--mapping NAME", "only the mapping NAME; repeat the option for several"},
	  {"--format table|json", "a table for people (the default), or one JSON document for scripts"}},
	 "0 nothing to change, 1 changes pending, 2 usage or configuration error, 3 could not run."},
	{"preview",
	 "hrsync preview MAPPING [--limit N] [--key KEY]",
	 "The source rows of MAPPING and the payloads they map to, one JSON object per line (the row, then its "
	 "payload or the field and rule that keep it from mapping). Sends nothing over the network: try a "
	 "mapping change with it before `hrsync plan` and `hrsync run`.",
	 {{"MAPPING", "a push mapping's name: its `name:` key, else its file name without .yaml"}},
	 {{"--limit N", "at most N rows (default 20; 0: every row)"},
	  {"--key KEY", "only the row whose ERP key is KEY"}},
	 "0 every row maps, 1 some rows fail or wait (or no row has KEY), 2 usage or configuration error, or no "
	 "push mapping MAPPING, 3 could not run."},
	{"check",
	 "hrsync check [--online] [--list-mappings]",
	 "Validate the configuration and every mapping file it names. Every problem in every file is reported "
	 "at once, compiler-style (file:line:column: message). Writes nothing.",
	 {{0}},
	 {{"--online",
	   "also check the database (the tables and columns exist, their types fit) and each connector's "
	   "credentials"},
	  {"--list-mappings",
	   "print only the names of the configuration's mappings, one per line, even when some files have "
	   "errors (for shell completion)"}},
	 "0 no errors (warnings may be printed), 2 the configuration or a mapping has errors; with "
	 "--list-mappings, 2 only when the configuration cannot be read."},
	{"daemon",
	 "hrsync daemon",
	 "Run in the foreground, one sync at each time of the configuration's `schedule` (in its `timezone`), "
	 "until stopped. Under systemd (hrsyncd.service) it reports READY=1, a STATUS= line and watchdog "
	 "keep-alives. SIGHUP re-reads hrsync.yaml and the mappings (a configuration with errors is rejected "
	 "and the running one stays); SIGTERM stops it: no new request, requests in flight finish, the state "
	 "is committed. It takes no argument.",
	 {{0}},
	 {{0}},
	 "0 stopped by a signal, 2 usage error, or the configuration has errors at start."},
	{"status",
	 "hrsync status [--runs N] [--format table|json]",
	 "What the state says: whether a run is in progress, the last completed run, the last N runs with their "
	 "outcome, duration and counts per mapping, and the records waiting to be retried, grouped by mapping, "
	 "kind and field, with an example reason. Works while a run is going on, and when mapping files have "
	 "errors.",
	 {{0}},
	 {{"--runs N", "how many recent runs to show, 1 to 10000 (default 5)"},
	  {"--format table|json", "tables for people (the default), or one JSON document for scripts"}},
	 "0 shown, 2 usage or configuration error, 3 the database cannot be reached."},
	{"failures",
	 "hrsync failures [MAPPING] [--format table|json]",
	 "Each failed record: mapping, ERP key, kind, action, field, rule, HTTP status, attempts, first and last "
	 "seen, and the reason (the platform's message for a refused record). Kinds: mapping (the row does not "
	 "map), deferred (a reference cannot be resolved yet) and transient (timeouts, 5xx, 429 past its "
	 "retries) are tried again on every run; refused (the platform answered 4xx) is sent again only when its "
	 "payload changes, or after `hrsync retry`.",
	 {{"MAPPING", "only the failures of this mapping"}},
	 {{"--format table|json", "a table for people (the default), or one JSON document for scripts"}},
	 "0 no failed record, 1 records listed, 2 usage or configuration error, or no mapping MAPPING, 3 the "
	 "database cannot be reached."},
	{"retry",
	 "hrsync retry [MAPPING [KEY...]]",
	 "Make failed records eligible again on the next run: a refused record is sent again even if its payload "
	 "did not change. Prints how many records were marked.",
	 {{"MAPPING", "only the failed records of this mapping (without it: every failed record)"},
	  {"KEY...", "only the records of MAPPING with these ERP keys"}},
	 {{0}},
	 "0 marked, 1 a KEY named has no failure, 2 usage or configuration error, or no mapping MAPPING, 3 the "
	 "database cannot be reached."},
	{"reconcile",
	 "hrsync reconcile [--mapping NAME]... [--format table|json] [--repair]",
	 "Read every record on the platforms and compare it with hrsync's links and with the ERP, to show what "
	 "people changed there by hand: drift (a linked record whose values differ from what hrsync last sent: "
	 "each field with what was sent, what the platform holds now and what the ERP says today), gone (linked, "
	 "no longer on the platform), orphan (on the platform, not linked: adoptable when it matches an ERP "
	 "record by the entity's natural key, else for a person to look at) and duplicate (a second platform "
	 "record for one ERP key). Fields the platform does not return are listed once, not compared; an entity "
	 "its connector cannot list is named and skipped. Reads the mirror, the state and the platforms (paged, "
	 "within the rate limit; the requests are counted in the summary); writes nothing unless --repair. "
	 "Writes hrsync_drift_records to the metrics file when metrics.textfile is set.",
	 {{0}},
	 {{"--mapping NAME",
	   "only the platform entity that mapping NAME writes to (every mapping writing to the same entity is "
	   "compared with it); repeat the option for several"},
	  {"--format table|json", "a table for people (the default), or one JSON document for scripts"},
	  {"--repair",
	   "then fix what is safe, as a normal run of the mappings concerned (logged, counted, guarded, recorded "
	   "as a `reconcile` run): drift gets the ERP's values, what is gone is created again, a matching orphan "
	   "is linked (nothing sent for it). Nothing is ever deleted: unmatched orphans and duplicates are left "
	   "for a person to decide"}},
	 "0 nothing found, 1 something found (with --repair: something left, or a repair failed), 2 usage or "
	 "configuration error, 3 could not run (database, credentials, a platform kept failing, an incomplete "
	 "listing), 75 (--repair) another run holds the lock."},
	{"db",
	 "hrsync db migrate | hrsync db grants",
	 "The state schema and the database roles.",
	 {{"migrate",
	   "create or upgrade the state schema (idempotent; `hrsync run` does it too). A schema that exists "
	   "already, owned by hrsync's role, is used as it is: the role needs no CREATE on the database"},
	  {"grants",
	   "print, without connecting, the SQL that gives hrsync's roles (state and source) what they need and no "
	   "more, for a superuser to read and run: hrsync db grants > roles.sql; psql -v ON_ERROR_STOP=1 -f "
	   "roles.sql"}},
	 {{0}},
	 "0 done, 2 usage or configuration error, 3 the database cannot be reached."},
	{"version",
	 "hrsync version",
	 "Print hrsync's version and libcurl's (with its TLS library).",
	 {{0}},
	 {{0}},
	 "0."},
	{"help",
	 "hrsync help [COMMAND]",
	 "Without COMMAND: the commands and the global options, as `hrsync --help`. With COMMAND: its usage with "
	 "every option explained, as `hrsync COMMAND --help` and `hrsync COMMAND -h`.",
	 {{"COMMAND", "one of run, plan, preview, check, daemon, status, failures, retry, db, version, help"}},
	 {{0}},
	 "0, or 2 when COMMAND is not a command."},
};

bool help_asked(int n, char **args)
{
	for (int i = 0; i < n; i++)
		if (streq(args[i], "-h") || streq(args[i], "--help"))
			return true;
	return false;
}

const char *const *help_commands(void)
{
	static const char *names[ARRAY_LEN(helps) + 1];
	for (size_t i = 0; i < ARRAY_LEN(helps); i++)
		names[i] = helps[i].name;
	return names;
}

/* The length of the word at p: up to a space outside brackets when whole, else up to a space. */
static size_t word_len(const char *p, bool whole)
{
	size_t w = 0;
	for (int depth = 0; p[w] && (p[w] != ' ' || (whole && depth > 0)); w++)
		depth += (p[w] == '[') - (p[w] == ']');
	return w;
}

/* text, wrapped at WIDTH: the first line goes on from column col, the others start at indent.
 * whole: a bracketed group ("[--mapping NAME]...") is never split. */
static void wrap_text(FILE *out, const char *text, int col, int indent, bool whole)
{
	const char *p = text;
	bool first = true;
	while (*p) {
		while (*p == ' ')
			p++;
		size_t w = word_len(p, whole);
		if (!w)
			break;
		if (!first && col + 1 + (int)w > WIDTH) {
			fprintf(out, "\n%*s", indent, "");
			col = indent;
		} else if (!first) {
			fputc(' ', out);
			col++;
		}
		fwrite(p, 1, w, out);
		col += (int)w;
		p += w;
		first = false;
	}
	fputc('\n', out);
}

static void wrap(FILE *out, const char *text, int col, int indent)
{
	wrap_text(out, text, col, indent, false);
}

static void items(FILE *out, const char *title, const struct help_item *it, size_t n, bool help_opt)
{
	if (!it[0].spelling && !help_opt)
		return;
	fprintf(out, "\n%s:\n", title);
	for (size_t i = 0; i < n && it[i].spelling; i++) {
		int col = fprintf(out, "  %s", it[i].spelling);
		if (col + 2 > ITEM_COL) {
			fprintf(out, "\n%*s", ITEM_COL, "");
		} else {
			fprintf(out, "%*s", ITEM_COL - col, "");
		}
		wrap(out, it[i].text, ITEM_COL, ITEM_COL);
	}
	if (help_opt)
		fprintf(out, "  %-*s%s\n", ITEM_COL - 2, "-h, --help", "print this help and exit");
}

bool help_print(const char *command, FILE *out)
{
	const struct help *h = NULL;
	for (size_t i = 0; i < ARRAY_LEN(helps) && !h; i++)
		if (streq(helps[i].name, command))
			h = &helps[i];
	if (!h)
		return false;
	/* The usage's continuation lines start under the command's first argument. */
	int col = fprintf(out, "usage: ");
	wrap_text(out, h->usage, col, col + (int)strlen("hrsync ") + (int)strlen(h->name) + 1, true);
	fputc('\n', out);
	wrap(out, h->about, 0, 0);
	items(out, streq(h->name, "db") ? "Commands" : "Arguments", h->args, ARRAY_LEN(h->args), false);
	items(out, "Options", h->opts, ARRAY_LEN(h->opts), true);
	fputc('\n', out);
	wrap(out, "Global options go before COMMAND: -c FILE (else $HRSYNC_CONFIG, else /etc/hrsync/hrsync.yaml), "
		  "-v or -q, --log-format auto|text|json|journal; see `hrsync --help` and hrsync(1).",
	     0, 0);
	fputc('\n', out);
	col = fprintf(out, "Exit status: ");
	wrap(out, h->exit, col, 2);
	return true;
}
