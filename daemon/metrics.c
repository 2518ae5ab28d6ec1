/*
 * metrics — the Prometheus textfile (`metrics.textfile`, docs/operations.md "Metrics"), for node_exporter's
 * textfile collector, rewritten after each run (`hrsync run` and the daemon):
 *
 *   hrsync_last_run_timestamp_seconds       gauge: when the last run ended
 *   hrsync_last_run_exit_code               gauge: its exit status (README.md, "Command line")
 *   hrsync_last_success_timestamp_seconds   gauge: when the last run that completed (exit 0
 *                                           or 1) ended; kept across failed runs, 0 if none
 *   hrsync_run_duration_seconds             gauge: the last run's duration
 *   hrsync_records{mapping,outcome}         gauge: records of the last run by outcome
 *   hrsync_source_rows{mapping}             gauge: rows the last run read per mapping
 *   hrsync_requests_total{connector}        counter: requests sent, over all runs
 *   hrsync_throttled_total{connector}       counter: 429 answers, over all runs
 *   hrsync_build_info{version}              gauge: 1
 *   hrsync_drift_records{mapping,kind}      gauge: what the last `hrsync reconcile` found (or left after
 *                                           --repair): drift, gone, orphan, duplicate; carried
 *                                           over by the runs' rewrites
 *
 * The counters carry on from the previous file (a deleted file restarts them at 0,
 * which Prometheus reads as a counter reset). The last success comes from the previous
 * file, else from the state's last completed run.
 *
 * Written atomically: a temp file in the same directory (not ending in .prom, so the
 * collector never reads it half-written), fsync, rename, fsync of the directory.
 * Owns nothing past the call. Never writes for a run that found another one holding the
 * lock (exit 75): the run holding it writes its own.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "state.h"
#include "sync.h"

#define DRIFT_HELP "Records the last hrsync reconcile found (or left after --repair), by mapping and kind."

/* What the previous file said that this one carries on. */
struct previous {
	double last_success;
	char **names;       /* "hrsync_requests_total{connector=\"x\"}" */
	double *values;
	size_t n;
	struct sb drift;    /* the hrsync_drift_records lines, kept as they are */
};

static void previous_free(struct previous *p)
{
	for (size_t i = 0; i < p->n; i++)
		free(p->names[i]);
	free(p->names);
	free(p->values);
	sb_free(&p->drift);
	memset(p, 0, sizeof *p);
}

static void previous_read(const char *path, struct previous *p)
{
	memset(p, 0, sizeof *p);
	p->last_success = -1;
	size_t len;
	char *text = read_file(path, &len);
	if (!text)
		return;
	for (char *line = text, *nl; line && *line; line = nl ? nl + 1 : NULL) {
		nl = strchr(line, '\n');
		if (nl)
			*nl = '\0';
		if (line[0] == '#')
			continue;
		char *sp = strrchr(line, ' ');
		double v;
		if (!sp || !parse_double(sp + 1, &v))
			continue;
		*sp = '\0';
		if (str_has_prefix(line, "hrsync_drift_records{")) {
			sb_printf(&p->drift, "%s %s\n", line, sp + 1);
			continue;
		}
		if (streq(line, "hrsync_last_success_timestamp_seconds")) {
			p->last_success = v;
		} else if (str_has_prefix(line, "hrsync_requests_total{") || str_has_prefix(line, "hrsync_throttled_total{")) {
			p->names = xrealloc(p->names, (p->n + 1) * sizeof *p->names);
			p->values = xrealloc(p->values, (p->n + 1) * sizeof *p->values);
			p->names[p->n] = xstrdup(line);
			p->values[p->n++] = v;
		}
	}
	free(text);
}

static double previous_value(const struct previous *p, const char *name)
{
	for (size_t i = 0; i < p->n; i++)
		if (streq(p->names[i], name))
			return p->values[i];
	return 0;
}

/* When the last completed run of the state ended; 0 when none or unreachable. */
static double state_last_success(const struct config *cfg)
{
	struct state st;
	char *err = NULL;
	double t = 0;
	if (state_connect_report(&st, cfg, "metrics", true, &err))
		t = state_last_success_time(&st);
	state_close(&st);
	free(err);
	return t;
}

/* A label value, escaped as the text format asks (backslash, quote, newline). */
static void label(struct sb *b, const char *v)
{
	for (const char *p = v ? v : ""; *p; p++) {
		if (*p == '\\' || *p == '"')
			sb_putc(b, '\\'), sb_putc(b, *p);
		else if (*p == '\n')
			sb_puts(b, "\\n");
		else
			sb_putc(b, *p);
	}
}

static void head(struct sb *b, const char *name, const char *type, const char *help)
{
	sb_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void render(struct sb *b, const struct config *cfg, const struct run_result *res, const struct previous *prev,
		   double ended, double last_success)
{
	int code = res->exit_code;
	head(b, "hrsync_last_run_timestamp_seconds", "gauge", "When the last hrsync run ended (Unix time).");
	sb_printf(b, "hrsync_last_run_timestamp_seconds %.3f\n", ended);
	head(b, "hrsync_last_run_exit_code", "gauge",
	     "Exit status of the last run: 0 in step, 1 records failed or wait, 2 config error, 3 stopped early.");
	sb_printf(b, "hrsync_last_run_exit_code %d\n", code);
	head(b, "hrsync_last_success_timestamp_seconds", "gauge",
	     "When the last run that completed (exit 0 or 1) ended (Unix time); 0 if none yet.");
	sb_printf(b, "hrsync_last_success_timestamp_seconds %.3f\n", last_success);
	head(b, "hrsync_run_duration_seconds", "gauge", "Duration of the last run.");
	sb_printf(b, "hrsync_run_duration_seconds %.3f\n", res->seconds);

	head(b, "hrsync_records", "gauge", "Records of the last run, by mapping and outcome.");
	static const char *const outcomes[] = {"created", "updated", "terminated", "unchanged", "skipped", "failed",
					       "deferred"};
	for (size_t i = 0; i < res->nmaps; i++) {
		const struct counts *c = &res->maps[i].counts;
		const long v[] = {c->created, c->updated, c->terminated, c->unchanged, c->skipped, c->failed, c->deferred};
		for (size_t k = 0; k < ARRAY_LEN(outcomes); k++) {
			sb_puts(b, "hrsync_records{mapping=\"");
			label(b, res->maps[i].mapping);
			sb_printf(b, "\",outcome=\"%s\"} %ld\n", outcomes[k], v[k]);
		}
	}
	head(b, "hrsync_source_rows", "gauge", "Source rows the last run read, by mapping.");
	for (size_t i = 0; i < res->nmaps; i++) {
		sb_puts(b, "hrsync_source_rows{mapping=\"");
		label(b, res->maps[i].mapping);
		sb_printf(b, "\"} %lld\n", res->maps[i].counts.rows);
	}

	/* Per connector, over all runs: every configured connector, so each series exists. */
	static const char *const cnames[] = {"hrsync_requests_total", "hrsync_throttled_total"};
	static const char *const chelp[] = {"Requests sent to the platform, over all runs.",
					    "Requests the platform answered 429 (rate limited), over all runs."};
	for (int which = 0; which < 2; which++) {
		head(b, cnames[which], "counter", chelp[which]);
		for (size_t k = 0; k < cfg->nconns; k++) {
			const char *conn = cfg->conns[k].name;
			long add = 0;
			for (size_t i = 0; i < res->nmaps; i++)
				if (streq(res->maps[i].connector, conn))
					add += which ? res->maps[i].counts.throttled : res->maps[i].counts.requests;
			struct sb series = {0};
			sb_printf(&series, "%s{connector=\"", cnames[which]);
			label(&series, conn);
			sb_puts(&series, "\"}");
			sb_printf(b, "%s %.0f\n", sb_str(&series), previous_value(prev, sb_str(&series)) + (double)add);
			sb_free(&series);
		}
	}
	if (prev->drift.len) {
		head(b, "hrsync_drift_records", "gauge", DRIFT_HELP);
		sb_puts(b, sb_str(&prev->drift));
	}
	head(b, "hrsync_build_info", "gauge", "hrsync version.");
	sb_printf(b, "hrsync_build_info{version=\"%s\"} 1\n", HRSYNC_VERSION);
}

/* Write text to path through a temp file in the same directory; false with errno. */
static bool write_atomic(const char *path, const char *text, size_t len)
{
	char *dir = path_dirname(path);
	const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
	char *tmp = xasprintf("%s/.%s.XXXXXX", dir, base);
	bool ok = false;
	int saved = 0;
	int fd = mkstemp(tmp);
	if (fd < 0) {
		saved = errno;
		goto out;
	}
	size_t off = 0;
	while (off < len) {
		ssize_t w = write(fd, text + off, len - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			break;
		off += (size_t)w;
	}
	/* node_exporter runs as another user: the file is world-readable, as metrics are. */
	if (off != len || fchmod(fd, 0644) != 0 || fsync(fd) != 0) {
		saved = errno ? errno : EIO;
		close(fd);
		unlink(tmp);
		goto out;
	}
	if (close(fd) != 0 || rename(tmp, path) != 0) {
		saved = errno;
		unlink(tmp);
		goto out;
	}
	int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0) {
		fsync(dfd);
		close(dfd);
	}
	ok = true;
out:
	free(tmp);
	free(dir);
	if (!ok)
		errno = saved;
	return ok;
}

bool metrics_write(const struct config *cfg, const struct run_result *res)
{
	if (!cfg->metrics_textfile)
		return true;
	struct run_result r = *res;
	/* A run that never got a run id did not start: sync_run left exit_code 0 (see run.c). */
	if (!r.run_id && r.exit_code == 0)
		r.exit_code = 3;
	if (r.exit_code == 75)
		return true;
	res = &r;
	struct previous prev;
	previous_read(cfg->metrics_textfile, &prev);
	double ended = res->started > 0 ? res->started + res->seconds : now_wall();
	double last_success;
	if (res->exit_code == 0 || res->exit_code == 1)
		last_success = ended;
	else if (prev.last_success >= 0)
		last_success = prev.last_success;
	else
		last_success = state_last_success(cfg);
	struct sb b = {0};
	render(&b, cfg, res, &prev, ended, last_success);
	bool ok = write_atomic(cfg->metrics_textfile, sb_str(&b), b.len);
	if (!ok)
		log_warn("metrics file %s: %s", cfg->metrics_textfile, strerror(errno));
	sb_free(&b);
	previous_free(&prev);
	return ok;
}

bool metrics_write_drift(const struct config *cfg, const char *series)
{
	if (!cfg->metrics_textfile)
		return true;
	size_t len;
	char *text = read_file(cfg->metrics_textfile, &len);
	struct sb b = {0};
	/* The file as the last run wrote it, without its drift series: they are replaced. */
	for (char *line = text, *nl; line && *line; line = nl ? nl + 1 : NULL) {
		nl = strchr(line, '\n');
		size_t n = nl ? (size_t)(nl - line) : strlen(line);
		if (str_has_prefix(line, "hrsync_drift_records{") || str_has_prefix(line, "# HELP hrsync_drift_records ") ||
		    str_has_prefix(line, "# TYPE hrsync_drift_records "))
			continue;
		sb_add(&b, line, n);
		sb_putc(&b, '\n');
	}
	free(text);
	head(&b, "hrsync_drift_records", "gauge", DRIFT_HELP);
	sb_puts(&b, series);
	bool ok = write_atomic(cfg->metrics_textfile, sb_str(&b), b.len);
	if (!ok)
		log_warn("metrics file %s: %s", cfg->metrics_textfile, strerror(errno));
	sb_free(&b);
	return ok;
}
