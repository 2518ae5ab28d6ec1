/*
 * schedule — see schedule.h.
 *
 * The search runs on the wall clock: a "wall time" is the local date and time written
 * as if it were UTC (seconds since 1970 on a clock that never jumps), so calendar
 * arithmetic is plain integer arithmetic and gmtime_r() gives its fields. Each matching
 * wall time is then mapped back to the instants that show it: none (skipped by a
 * spring-forward jump), one, or two (the repeated hour of a fall-back), and the DST
 * rule of schedule.h picks which of them run.
 */
#define _GNU_SOURCE
#include "schedule.h"
#include "throttle.h"

#include <ctype.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define DAY 86400LL
#define NONE LLONG_MIN
/* Longest DST overlap handled (real ones are 1 h, Lord Howe's 30 min; 2 h in the 1940s). */
#define MAX_SHIFT (3 * 3600LL)
/* How far ahead a schedule is searched: covers Feb 29 on a given weekday. */
#define HORIZON_DAYS (8 * 366)

static const char *const month_names[] = {"jan", "feb", "mar", "apr", "may", "jun",
					  "jul", "aug", "sep", "oct", "nov", "dec"};
static const char *const day_names[] = {"sun", "mon", "tue", "wed", "thu", "fri", "sat"};

struct field_def {
	const char *name;
	int lo, hi;
	const char *const *names;   /* names[i] stands for lo + i */
	int nnames;
};

static const struct field_def fields[5] = {
	{"minute", 0, 59, NULL, 0},
	{"hour", 0, 23, NULL, 0},
	{"day-of-month", 1, 31, NULL, 0},
	{"month", 1, 12, month_names, 12},
	{"day-of-week", 0, 7, day_names, 7},
};

/* A number or a name of field f at *p; advances *p. */
static bool parse_value(const struct field_def *f, const char **p, int *out)
{
	const char *s = *p;
	if (isdigit((unsigned char)*s)) {
		long v = 0;
		while (isdigit((unsigned char)*s) && v < 1000)
			v = v * 10 + (*s++ - '0');
		*out = (int)v;
		*p = s;
		return true;
	}
	for (int i = 0; i < f->nnames; i++)
		if (strncasecmp(s, f->names[i], 3) == 0 && !isalpha((unsigned char)s[3])) {
			*out = f->lo + i;
			*p = s + 3;
			return true;
		}
	return false;
}

/* One field: items separated by ',', each "*", "A", "A-B", with an optional "/STEP". */
static bool parse_field(const struct field_def *f, const char *text, uint64_t *bits, char *why, size_t n)
{
	*bits = 0;
	const char *p = text;
	for (;;) {
		int a, b, step = 1;
		bool star = false;
		if (*p == '*') {
			star = true;
			a = f->lo;
			b = f->hi;
			p++;
		} else if (parse_value(f, &p, &a)) {
			b = a;
			if (*p == '-') {
				p++;
				if (!parse_value(f, &p, &b)) {
					snprintf(why, n, "%s field '%s': expected a value after '-'", f->name, text);
					return false;
				}
			}
		} else {
			snprintf(why, n, "%s field '%s': expected a number%s, '*', a range or a list", f->name, text,
				 f->names ? " or a name" : "");
			return false;
		}
		if (*p == '/') {
			p++;
			int st;
			if (!isdigit((unsigned char)*p) || !parse_value(f, &p, &st) || st == 0) {
				snprintf(why, n, "%s field '%s': a step is a number from 1 on", f->name, text);
				return false;
			}
			step = st;
			if (!star && a == b)
				b = f->hi;   /* "5/15": from 5 to the end, as cronie reads it */
		}
		if (a < f->lo || a > f->hi || b < f->lo || b > f->hi) {
			snprintf(why, n, "%s %d is out of range %d-%d", f->name, a < f->lo || a > f->hi ? a : b, f->lo,
				 f->hi);
			return false;
		}
		if (a > b) {
			snprintf(why, n, "%s field '%s': range %d-%d goes backwards", f->name, text, a, b);
			return false;
		}
		for (int v = a; v <= b; v += step)
			*bits |= 1ULL << v;
		if (*p == ',') {
			p++;
			continue;
		}
		if (*p) {
			snprintf(why, n, "%s field '%s': unexpected '%c'", f->name, text, *p);
			return false;
		}
		return true;
	}
}

static bool parse_hhmm(struct schedule *s, const char *t)
{
	int h = 0, m = 0, i = 0;
	if (!isdigit((unsigned char)t[i]))
		return false;
	h = t[i++] - '0';
	if (isdigit((unsigned char)t[i]))
		h = h * 10 + (t[i++] - '0');
	if (t[i++] != ':' || !isdigit((unsigned char)t[i]) || !isdigit((unsigned char)t[i + 1]) || t[i + 2])
		return false;
	m = (t[i] - '0') * 10 + (t[i + 1] - '0');
	if (h > 23 || m > 59)
		return false;
	s->minute = 1ULL << m;
	s->hour = 1U << h;
	s->mday = 0xFFFFFFFEU;   /* 1-31 */
	s->month = 0x1FFE;       /* 1-12 */
	s->wday = 0x7F;
	s->mday_star = s->wday_star = true;
	return true;
}

bool schedule_parse(struct schedule *s, const char *spec, char *err, size_t errlen)
{
	static const struct { const char *name, *expr; } macros[] = {
		{"@yearly", "0 0 1 1 *"}, {"@annually", "0 0 1 1 *"}, {"@monthly", "0 0 1 * *"},
		{"@weekly", "0 0 * * 0"}, {"@daily", "0 0 * * *"},   {"@midnight", "0 0 * * *"},
		{"@hourly", "0 * * * *"},
	};
	memset(s, 0, sizeof *s);
	snprintf(s->text, sizeof s->text, "%s", spec ? spec : "");
	char buf[256], why[200] = "";
	bool ok = false;
	if (!spec || strlen(spec) >= sizeof buf) {
		snprintf(why, sizeof why, "expected HH:MM or a 5-field cron expression");
		goto out;
	}
	/* Trim, and let a macro stand for its expression. */
	while (isspace((unsigned char)*spec))
		spec++;
	snprintf(buf, sizeof buf, "%s", spec);
	size_t len = strlen(buf);
	while (len && isspace((unsigned char)buf[len - 1]))
		buf[--len] = '\0';
	if (strchr(buf, ':')) {
		ok = parse_hhmm(s, buf);
		if (!ok)
			snprintf(why, sizeof why, "expected HH:MM (00:00 to 23:59)");
		goto out;
	}
	if (buf[0] == '@') {
		const char *expr = NULL;
		for (size_t i = 0; i < sizeof macros / sizeof macros[0]; i++)
			if (strcasecmp(buf, macros[i].name) == 0)
				expr = macros[i].expr;
		if (!expr) {
			snprintf(why, sizeof why, "unknown macro (use @hourly, @daily, @weekly, @monthly or @yearly)");
			goto out;
		}
		snprintf(buf, sizeof buf, "%s", expr);
	}
	char *tok[6], *save = NULL;
	int nt = 0;
	for (char *t = strtok_r(buf, " \t", &save); t; t = strtok_r(NULL, " \t", &save))
		if (nt < 6)
			tok[nt++] = t;
		else
			nt++;
	if (nt != 5) {
		snprintf(why, sizeof why,
			 "expected HH:MM or 5 cron fields (minute hour day-of-month month day-of-week), found %d field%s",
			 nt, nt == 1 ? "" : "s");
		goto out;
	}
	uint64_t bits[5];
	for (int i = 0; i < 5; i++)
		if (!parse_field(&fields[i], tok[i], &bits[i], why, sizeof why))
			goto out;
	s->minute = bits[0];
	s->hour = (uint32_t)bits[1];
	s->mday = (uint32_t)bits[2];
	s->month = (uint16_t)bits[3];
	s->wday = (uint8_t)((bits[4] | (bits[4] >> 7)) & 0x7F);   /* 7 is Sunday too */
	s->mday_star = tok[2][0] == '*';
	s->wday_star = tok[4][0] == '*';
	s->follows_clock = tok[0][0] == '*' || tok[1][0] == '*';
	ok = true;
out:
	if (!ok)
		snprintf(err, errlen, "schedule '%s': %s", s->text, why);
	return ok;
}

/* ---- time arithmetic ---- */

static long long floor_div(long long a, long long b)
{
	return a / b - (a % b != 0 && (a < 0) != (b < 0));
}

/* The UTC offset in force at instant t (seconds east of Greenwich). */
static long offset_at(long long t)
{
	time_t tt = (time_t)t;
	struct tm tm;
	if (!localtime_r(&tt, &tm))
		return 0;
	return tm.tm_gmtoff;
}

static long long wall_of(long long t)
{
	return t + offset_at(t);
}

static bool day_matches(const struct schedule *s, long long day)
{
	time_t tt = (time_t)day;
	struct tm tm;
	if (!gmtime_r(&tt, &tm))
		return false;
	if (!(s->month >> (tm.tm_mon + 1) & 1))
		return false;
	bool dom = s->mday >> tm.tm_mday & 1, dow = s->wday >> tm.tm_wday & 1;
	/* cron: when both day fields are restricted, either may match. */
	return s->mday_star || s->wday_star ? dom && dow : dom || dow;
}

/* The first matching wall time strictly after wall time w; NONE within the horizon. */
static long long next_wall_slot(const struct schedule *s, long long w)
{
	long long m = floor_div(w, 60) * 60 + 60;
	long long day0 = floor_div(m, DAY) * DAY;
	int from = (int)((m - day0) / 60);   /* minute of the first day to start from */
	for (int i = 0; i <= HORIZON_DAYS; i++, from = 0) {
		long long day = day0 + i * DAY;
		if (!day_matches(s, day))
			continue;
		for (int h = from / 60; h < 24; h++) {
			if (!(s->hour >> h & 1))
				continue;
			for (int mi = h == from / 60 ? from % 60 : 0; mi < 60; mi++)
				if (s->minute >> mi & 1)
					return day + h * 3600LL + mi * 60LL;
		}
	}
	return NONE;
}

/* The instants (0, 1 or 2, ascending) whose wall time is w. */
static int instants_of(long long w, long long out[2])
{
	long cand[3] = {offset_at(w - DAY), offset_at(w), offset_at(w + DAY)};
	int n = 0;
	for (int i = 0; i < 3; i++) {
		long long t = w - cand[i];
		if (wall_of(t) != w)
			continue;
		bool dup = false;
		for (int k = 0; k < n; k++)
			dup |= out[k] == t;
		if (!dup && n < 2)
			out[n++] = t;
	}
	if (n == 2 && out[0] > out[1]) {
		long long t = out[0];
		out[0] = out[1];
		out[1] = t;
	}
	return n;
}

/* For a wall time w skipped by a jump forward: the first instant after the jump. */
static long long end_of_gap(long long w)
{
	long before = offset_at(w - DAY), after = offset_at(w + DAY);
	if (after <= before)
		return NONE;
	long long lo = w - after, hi = w - before;   /* wall(lo) < w < wall(hi) */
	while (hi - lo > 1) {
		long long mid = lo + (hi - lo) / 2;
		if (wall_of(mid) > w)
			hi = mid;
		else
			lo = mid;
	}
	return hi;
}

bool window_end(const char *spec, time_t now, double *end, char *err, size_t errlen)
{
	if (spec && spec[0] == '+') {
		int64_t ms;
		if (!parse_duration_ms(spec + 1, &ms) || ms <= 0) {
			snprintf(err, errlen, "'%s' is not a duration such as +4h or +90m", spec);
			return false;
		}
		*end = (double)now + (double)ms / 1000.0;
		return true;
	}
	struct schedule s;
	char why[160];
	bool hhmm = spec && strlen(spec) == 5 && spec[2] == ':';
	if (!hhmm || !schedule_parse(&s, spec, why, sizeof why)) {
		snprintf(err, errlen, "'%s' is not a time of day (HH:MM) nor a duration (+4h)", spec ? spec : "");
		return false;
	}
	time_t t = schedule_next(&s, now);
	if (t == (time_t)-1) {
		snprintf(err, errlen, "'%s': no such time in the next days", spec);
		return false;
	}
	*end = (double)t;
	return true;
}

time_t schedule_next(const struct schedule *s, time_t after)
{
	long long best = NONE;
	/* Start early enough to see the second occurrence of a repeated hour. */
	long long w = wall_of((long long)after) - MAX_SHIFT - 60;
	for (int guard = 0; guard < 100000; guard++) {
		long long slot = next_wall_slot(s, w);
		if (slot == NONE || (best != NONE && slot > wall_of(best) + MAX_SHIFT))
			break;
		long long at[2];
		int n = instants_of(slot, at);
		if (n == 0 && !s->follows_clock) {
			at[0] = end_of_gap(slot);
			n = at[0] != NONE;
		} else if (n == 2 && !s->follows_clock) {
			n = 1;   /* a repeated time runs at its first occurrence only */
		}
		for (int i = 0; i < n; i++)
			if (at[i] > (long long)after && (best == NONE || at[i] < best))
				best = at[i];
		w = slot;
	}
	return best == NONE ? (time_t)-1 : (time_t)best;
}
