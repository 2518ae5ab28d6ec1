/*
 * daemon — `hrsync daemon`: one sync run at each time of the config's `schedule:`
 * (schedule.c, in `timezone:`), under systemd as a Type=notify service.
 *
 * Signals: SIGHUP reloads the config and its mappings; a config with errors is
 * rejected, its errors logged, and the one in use keeps running. SIGTERM/SIGINT stop:
 * between runs at once; during a run no new request goes out, the requests in flight
 * finish, their outcome is committed, and the daemon exits 0 (sync_run's `stop` flag).
 * A second SIGTERM/SIGINT ends the process at once; the state stays consistent, as
 * after kill -9. Signals are blocked outside the waits and the runs, so none is lost
 * between a check and a sleep (pselect unblocks them atomically).
 *
 * systemd: READY=1 once the config is loaded, STATUS= with what it is doing and the
 * next run, RELOADING=1/READY=1 around a reload, STOPPING=1, and WATCHDOG=1 at half
 * of $WATCHDOG_USEC: from this thread while it waits, from notify.c's helper thread
 * while sync_run() holds it.
 *
 * Missed times (a run longer than the gap to the next time, a suspended machine)
 * collapse into one run, started as soon as the daemon sees them.
 *
 * Owns the config in use (freed on reload and exit). Never runs two syncs at once,
 * never exits in the middle of a state commit.
 *
 * Test hook (tests/e2e/test_ops.py; not for production): HRSYNC_TEST_CLOCK=EPOCH or
 * EPOCHxRATE sets the scheduler's clock to EPOCH (seconds since 1970) once the config is
 * loaded, and runs it RATE times faster than real time, so a test sees a night of
 * schedule in seconds.
 * Only the schedule uses it; logs and the state keep real time.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <time.h>

#include "cli.h"
#include "notify.h"
#include "schedule.h"
#include "sync.h"

static volatile sig_atomic_t g_stop, g_reload;

static void on_stop(int sig)
{
	if (g_stop) {
		/* Asked twice: go now. Safe at any instant (docs/design.md, "Nothing lost, nothing duplicated"). */
		signal(sig, SIG_DFL);
		raise(sig);
	}
	g_stop = 1;
}

static void on_hup(int sig)
{
	(void)sig;
	g_reload = 1;
}

struct daemon {
	const struct globals *g;
	struct config *cfg;
	struct schedule sched;
	char *env_tz;            /* TZ as the process started, for a config without timezone */
	double clock_real0, clock_fake0, clock_rate;   /* the test clock; rate 0: real time */
	double next;             /* the next run, on the scheduler's clock; -1: never */
	char last[200];          /* the last run, for STATUS= */
	long runs;
};

/* ---- clock and time formatting ---- */

static double clock_now(const struct daemon *dm)
{
	double real = now_wall();
	if (dm->clock_rate <= 0)
		return real;
	return dm->clock_fake0 + (real - dm->clock_real0) * dm->clock_rate;
}

static void test_clock_setup(struct daemon *dm)
{
	const char *v = getenv("HRSYNC_TEST_CLOCK");
	if (!v || !*v)
		return;
	char *end = NULL;
	double start = strtod(v, &end), rate = 1;
	if (end && *end == 'x')
		rate = strtod(end + 1, &end);
	if (end == v || !end || *end || !isfinite(start) || !isfinite(rate) || rate <= 0) {
		log_warn("HRSYNC_TEST_CLOCK='%s' ignored (expected EPOCH or EPOCHxRATE)", v);
		return;
	}
	dm->clock_real0 = now_wall();
	dm->clock_fake0 = start;
	dm->clock_rate = rate;
	log_warn("test clock: the schedule runs on a clock starting at %.0f, %g times faster than real time", start,
		 rate);
}

static const char *fmt_local(double t, char buf[64])
{
	time_t tt = (time_t)t;
	struct tm tm;
	if (t < 0 || !localtime_r(&tt, &tm) || !strftime(buf, 64, "%Y-%m-%d %H:%M:%S %Z", &tm))
		snprintf(buf, 64, "never");
	return buf;
}

/* ---- systemd ---- */

static void status(const struct daemon *dm, const char *doing, bool show_next)
{
	char nb[64];
	notify_sendf("STATUS=%s%s%s%s%s", doing, show_next ? "; next run at " : "", show_next ? fmt_local(dm->next, nb) : "",
		     dm->last[0] ? "; last: " : "", dm->last);
}

/* ---- configuration ---- */

/* Problems found in the config, through the log so journald sees their priority. */
static void log_diag(struct diag *d)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	if (!f)
		return;
	diag_print(d, f);
	fclose(f);
	for (char *line = text, *nl; line && *line; line = nl ? nl + 1 : NULL) {
		nl = strchr(line, '\n');
		if (nl)
			*nl = '\0';
		log_rec(strstr(line, ": warning: ") ? L_WARN : L_ERR, NULL, NULL, "%s", line);
	}
	free(text);
}

static void apply_env(const struct daemon *dm, const struct config *cfg)
{
	const char *tz = cfg->timezone ? cfg->timezone : dm->env_tz;
	if (tz)
		setenv("TZ", tz, 1);
	else
		unsetenv("TZ");
	tzset();
	const struct globals *g = dm->g;
	log_setup(g->level_set ? g->level : cfg->log_level,
		  g->format_set ? g->format : cfg->log_format_set ? cfg->log_format : LOGF_AUTO);
}

/*
 * Load the config and its schedule, and make them the process's (time zone, log
 * settings). NULL when anything is wrong: every problem is logged and the process's
 * settings are those of `keep` (NULL at start).
 */
static struct config *load(struct daemon *dm, struct schedule *sched, const struct config *keep)
{
	struct diag d = {0};
	struct config *cfg = config_load(dm->g->config, &d);
	int errors = cfg ? d.errors : d.errors ? d.errors : 1;
	log_diag(&d);
	diag_free(&d);
	char err[300];
	if (cfg && !cfg->schedule) {
		log_error("%s: the daemon needs `schedule:` (\"HH:MM\" daily, or a 5-field cron expression)", cfg->path);
		errors++;
	} else if (cfg && !schedule_parse(sched, cfg->schedule, err, sizeof err)) {
		log_error("%s: %s", cfg->path, err);
		errors++;
	}
	if (!errors) {
		apply_env(dm, cfg);
		if (schedule_next(sched, (time_t)clock_now(dm)) == (time_t)-1) {
			log_error("%s: schedule '%s' never comes in the next 8 years", cfg->path, sched->text);
			errors++;
		}
	}
	if (errors) {
		log_error("%d error(s) in the configuration %s", errors, dm->g->config);
		if (keep)
			apply_env(dm, keep);
		config_free(cfg);
		return NULL;
	}
	return cfg;
}

static void reload(struct daemon *dm)
{
	notify_send("RELOADING=1\nSTATUS=reloading the configuration");
	log_notice("reloading the configuration %s (SIGHUP)", dm->g->config);
	struct schedule sched;
	struct config *cfg = load(dm, &sched, dm->cfg);
	if (!cfg) {
		log_error("reload rejected: the configuration in use stays, with schedule '%s'", dm->sched.text);
		notify_send("READY=1");
		status(dm, "idle (the last reload was rejected: see the journal)", true);
		return;
	}
	config_free(dm->cfg);
	dm->cfg = cfg;
	dm->sched = sched;
	double now = clock_now(dm);
	dm->next = (double)schedule_next(&dm->sched, (time_t)now);
	char nb[64];
	log_notice("configuration reloaded: %zu mapping(s), schedule '%s'%s%s, next run at %s", cfg->nmaps,
		   sched.text, cfg->timezone ? " in " : "", cfg->timezone ? cfg->timezone : "",
		   fmt_local(dm->next, nb));
	notify_send("READY=1");
	status(dm, "idle (configuration reloaded)", true);
}

/* ---- one run ---- */

static void run_once(struct daemon *dm, double due)
{
	char sb[64];
	double started = clock_now(dm);
	char doing[128];
	snprintf(doing, sizeof doing, "running the sync scheduled for %s", fmt_local(due, sb));
	status(dm, doing, false);
	notify_watchdog_start();

	struct run_opts o = {0};
	o.stop = &g_stop;
	if (dm->cfg->run_until) {
		char werr[200];
		if (!window_end(dm->cfg->run_until, time(NULL), &o.until, werr, sizeof werr))
			log_warn("run_until: %s; this run has no window", werr);
	}
	struct run_result res;
	sigset_t none, old;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, &old);   /* signals reach the run's flags */
	config_log_insecure(dm->cfg);
	int rc = sync_run(dm->cfg, &o, &res);
	sigprocmask(SIG_SETMASK, &old, NULL);

	notify_watchdog_stop();
	res.exit_code = rc;   /* also when the run could not start (no run id) */
	metrics_write(dm->cfg, &res);   /* it logs why when it cannot */
	static const char *const what[] = {"every record in step", "some records failed or wait",
					   "configuration error", "could not run or stopped early"};
	const char *w = rc >= 0 && rc <= 3 ? what[rc] : rc == 75 ? "another run held the lock" : "unknown";
	if (res.run_id)
		snprintf(dm->last, sizeof dm->last, "run %lld at %s: %s (exit %d) in %.1f s", res.run_id,
			 fmt_local(started, sb), w, rc, res.seconds);
	else
		snprintf(dm->last, sizeof dm->last, "%s: %s (exit %d)", fmt_local(started, sb), w, rc);
	run_result_free(&res);
	dm->runs++;
}

/* ---- waiting ---- */

/* The latest scheduled time at or before now, starting from slot (itself due). */
static double latest_slot(const struct daemon *dm, double slot, double now)
{
	double later;
	for (int i = 0; i < 100000 && (later = (double)schedule_next(&dm->sched, (time_t)slot)) >= 0 && later <= now;
	     i++)
		slot = later;
	return slot;
}

/* Sleep until the next run is due, a signal arrives, or the watchdog wants a keep-alive. */
static void wait_a_while(struct daemon *dm, const sigset_t *open_mask)
{
	double left = dm->next - clock_now(dm);
	if (dm->clock_rate > 0)
		left /= dm->clock_rate;
	/* Re-read the clock at least every minute: it may be set, or the machine suspended. */
	if (left > 60)
		left = 60;
	uint64_t wd = notify_watchdog_usec();
	if (wd && left > (double)wd / 2e6)
		left = (double)wd / 2e6;
	if (left < 0.001)
		left = 0.001;
	struct timespec ts = {(time_t)left, (long)((left - floor(left)) * 1e9)};
	if (pselect(0, NULL, NULL, NULL, &ts, open_mask) < 0 && errno != EINTR)
		log_warn("waiting for the next run: %s", strerror(errno));
	if (wd)
		notify_send("WATCHDOG=1");
}

int cmd_daemon(const struct globals *g, int argc, char **argv)
{
	if (argc > 0) {
		fprintf(stderr, "hrsync daemon: unexpected argument '%s'\nusage: hrsync daemon\n", argv[0]);
		return 2;
	}
	struct daemon dm = {.g = g, .next = -1};
	dm.env_tz = xstrdup(getenv("TZ"));
	int rc = 0;
	dm.cfg = load(&dm, &dm.sched, NULL);
	if (!dm.cfg) {
		rc = 2;
		goto out;
	}
	test_clock_setup(&dm);   /* the test clock starts when the daemon is ready */

	/* Handlers first, then block: a signal from now on waits for a pselect or a run. */
	struct sigaction sa = {0};
	sa.sa_flags = SA_RESTART;
	sigemptyset(&sa.sa_mask);
	sa.sa_handler = on_stop;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sa.sa_handler = on_hup;
	sigaction(SIGHUP, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	sigset_t block, open_mask;
	sigemptyset(&block);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGHUP);
	sigprocmask(SIG_BLOCK, &block, &open_mask);
	sigdelset(&open_mask, SIGTERM);
	sigdelset(&open_mask, SIGINT);
	sigdelset(&open_mask, SIGHUP);

	dm.next = (double)schedule_next(&dm.sched, (time_t)clock_now(&dm));
	char nb[64];
	log_notice("daemon started: %zu mapping(s), schedule '%s'%s%s, next run at %s%s", dm.cfg->nmaps,
		   dm.sched.text, dm.cfg->timezone ? " in " : "", dm.cfg->timezone ? dm.cfg->timezone : "",
		   fmt_local(dm.next, nb), notify_watchdog_usec() ? " (systemd watchdog on)" : "");
	notify_send("READY=1");
	status(&dm, "idle", true);

	while (!g_stop) {
		if (g_reload) {
			g_reload = 0;
			reload(&dm);
			continue;
		}
		double now = clock_now(&dm);
		if (dm.next < 0 || now < dm.next) {
			wait_a_while(&dm, &open_mask);
			continue;
		}
		/* Times missed (a suspend, a run that outlasted them) collapse into one run: the latest. */
		double due = latest_slot(&dm, dm.next, now);
		char nb2[64];
		if (due > dm.next)
			log_notice("missed the run of %s: running now, for %s", fmt_local(dm.next, nb),
				   fmt_local(due, nb2));
		run_once(&dm, due);
		if (g_stop)
			break;
		double after = (double)schedule_next(&dm.sched, (time_t)due);
		if (after >= 0 && after <= clock_now(&dm))
			log_notice("the run outlasted the next scheduled time (%s): running again now", fmt_local(after, nb));
		dm.next = after;
		status(&dm, "idle", true);
	}
	notify_send("STOPPING=1\nSTATUS=stopping");
	log_notice("daemon stopped (%ld run(s))", dm.runs);
out:
	config_free(dm.cfg);
	free(dm.env_tz);
	return rc;
}
