/*
 * test_schedule — the daemon's `schedule:` (hrsync.yaml(5)): "HH:MM" and 5-field cron
 * expressions, parsed with clear errors, and the next run time in a time zone, across
 * daylight-saving changes (the ISC cron rule documented in schedule.h). Also the
 * daemon's other self-contained part, the sd_notify datagrams of notify.c.
 *
 * Times are written and compared as local wall-clock strings ("2026-03-29 03:00 CEST")
 * in the zone each test sets, so a failure reads like the schedule it breaks.
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
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "notify.h"
#include "schedule.h"

#define T(name) static void name(void **state __attribute__((unused)))

static bool use_tz(const char *tz)
{
	char path[256];
	snprintf(path, sizeof path, "/usr/share/zoneinfo/%s", tz);
	struct stat st;
	if (strcmp(tz, "UTC") != 0 && stat(path, &st) != 0)
		return false;
	setenv("TZ", tz, 1);
	tzset();
	return true;
}

#define ZONE(tz)                                          \
	do {                                              \
		if (!use_tz(tz)) {                        \
			skip();                           \
			return;                           \
		}                                         \
	} while (0)

/* "2026-03-29 01:59" in the current zone; for an ambiguous time, is_dst picks. */
static time_t local(const char *s, int is_dst)
{
	struct tm tm = {0};
	assert_non_null(strptime(s, "%Y-%m-%d %H:%M", &tm));
	tm.tm_isdst = is_dst;
	time_t t = mktime(&tm);
	assert_true(t != (time_t)-1);
	return t;
}

static const char *show(time_t t, char buf[64])
{
	if (t == (time_t)-1)
		return "never";
	struct tm tm;
	localtime_r(&t, &tm);
	strftime(buf, 64, "%Y-%m-%d %H:%M %Z", &tm);
	return buf;
}

static struct schedule parse_ok(const char *spec)
{
	struct schedule s;
	char err[256] = "";
	if (!schedule_parse(&s, spec, err, sizeof err))
		fail_msg("'%s' did not parse: %s", spec, err);
	return s;
}

/* The next run after `after` (local, -1: standard time preferred) must show as `want`. */
static void next_is(const char *spec, const char *after, const char *want)
{
	struct schedule s = parse_ok(spec);
	char buf[64];
	assert_string_equal(show(schedule_next(&s, local(after, -1)), buf), want);
}

/* The n runs after `after`, joined by ", ". */
static void runs_are(const char *spec, time_t after, int n, const char *want)
{
	struct schedule s = parse_ok(spec);
	char got[1024] = "", buf[64];
	time_t t = after;
	for (int i = 0; i < n; i++) {
		t = schedule_next(&s, t);
		snprintf(got + strlen(got), sizeof got - strlen(got), "%s%s", i ? ", " : "", show(t, buf));
		if (t == (time_t)-1)
			break;
	}
	assert_string_equal(got, want);
}

static void parse_fails(const char *spec, const char *want_in_err)
{
	struct schedule s;
	char err[256] = "";
	if (schedule_parse(&s, spec, err, sizeof err))
		fail_msg("'%s' parsed but should not have", spec);
	if (!strstr(err, want_in_err))
		fail_msg("error for '%s' is '%s', expected it to contain '%s'", spec, err, want_in_err);
}

/* ---- parsing ---- */

T(hhmm_forms)
{
	struct schedule s = parse_ok("02:30");
	assert_true(s.minute == 1ULL << 30 && s.hour == 1U << 2);
	assert_false(s.follows_clock);
	s = parse_ok("2:05");
	assert_true(s.minute == 1ULL << 5 && s.hour == 1U << 2);
	s = parse_ok("  23:59 ");
	assert_true(s.minute == 1ULL << 59 && s.hour == 1U << 23);
	s = parse_ok("00:00");
	assert_true(s.minute == 1 && s.hour == 1);
	assert_string_equal(s.text, "00:00");
}

T(hhmm_errors)
{
	parse_fails("24:00", "expected HH:MM (00:00 to 23:59)");
	parse_fails("12:60", "HH:MM");
	parse_fails("1:2", "HH:MM");
	parse_fails("12:30:00", "HH:MM");
	parse_fails("ab:cd", "HH:MM");
	parse_fails("123:00", "HH:MM");
	parse_fails(":30", "HH:MM");
}

T(cron_field_count)
{
	parse_fails("", "found 0 fields");
	parse_fails("* * * *", "found 4 fields");
	parse_fails("0 0 * * * *", "found 6 fields");
	parse_fails("0 0 * * * 2026", "found 6 fields");
}

T(cron_errors_name_the_field)
{
	parse_fails("61 * * * *", "schedule '61 * * * *': minute 61 is out of range 0-59");
	parse_fails("0 24 * * *", "hour 24 is out of range 0-23");
	parse_fails("0 0 0 * *", "day-of-month 0 is out of range 1-31");
	parse_fails("0 0 * 13 *", "month 13 is out of range 1-12");
	parse_fails("0 0 * * 8", "day-of-week 8 is out of range 0-7");
	parse_fails("0 5-2 * * *", "hour field '5-2': range 5-2 goes backwards");
	parse_fails("*/0 * * * *", "minute field '*/0': a step is a number from 1 on");
	parse_fails("*/x * * * *", "a step is a number");
	parse_fails("1,,2 * * * *", "minute field '1,,2'");
	parse_fails("0 0 * foo *", "month field 'foo': expected a number or a name");
	parse_fails("0 0 * * mon-", "expected a value after '-'");
	parse_fails("0 0 * * monday", "day-of-week field 'monday'");
	parse_fails("0 0 L * *", "day-of-month field 'L'");
	parse_fails("@reboot", "unknown macro");
	parse_fails("1-5x * * * *", "unexpected 'x'");
}

T(cron_lists_ranges_steps)
{
	struct schedule s = parse_ok("*/15 0-6/2 1,15 jan-mar,Dec mon-fri");
	assert_true(s.minute == (1ULL << 0 | 1ULL << 15 | 1ULL << 30 | 1ULL << 45));
	assert_true(s.hour == (1U << 0 | 1U << 2 | 1U << 4 | 1U << 6));
	assert_true(s.mday == (1U << 1 | 1U << 15));
	assert_true(s.month == (1 << 1 | 1 << 2 | 1 << 3 | 1 << 12));
	assert_true(s.wday == 0x3E);
	assert_true(s.follows_clock);
	assert_false(s.mday_star);
	assert_false(s.wday_star);
	s = parse_ok("5/20 * * * 7");
	assert_true(s.minute == (1ULL << 5 | 1ULL << 25 | 1ULL << 45));
	assert_true(s.wday == 1);   /* 7 is Sunday */
	s = parse_ok("0 0 * * 0,7");
	assert_true(s.wday == 1);
	s = parse_ok("30 2 * * *");
	assert_false(s.follows_clock);
	assert_true(s.mday_star && s.wday_star);
}

T(macros)
{
	use_tz("UTC");
	next_is("@daily", "2026-05-10 13:00", "2026-05-11 00:00 UTC");
	next_is("@hourly", "2026-05-10 13:00", "2026-05-10 14:00 UTC");
	next_is("@weekly", "2026-05-10 13:00", "2026-05-17 00:00 UTC");   /* 2026-05-10 is a Sunday */
	next_is("@monthly", "2026-05-10 13:00", "2026-06-01 00:00 UTC");
	next_is("@yearly", "2026-05-10 13:00", "2027-01-01 00:00 UTC");
	next_is("@Annually", "2026-05-10 13:00", "2027-01-01 00:00 UTC");
}

/* ---- next run, no DST ---- */

T(hhmm_later_today_or_tomorrow)
{
	use_tz("UTC");
	next_is("02:30", "2026-05-10 01:00", "2026-05-10 02:30 UTC");
	next_is("02:30", "2026-05-10 02:30", "2026-05-11 02:30 UTC");   /* strictly after */
	next_is("02:30", "2026-05-10 02:31", "2026-05-11 02:30 UTC");
	next_is("00:00", "2026-12-31 23:59", "2027-01-01 00:00 UTC");
}

T(next_is_strictly_after_within_a_minute)
{
	use_tz("UTC");
	struct schedule s = parse_ok("* * * * *");
	time_t t = local("2026-05-10 10:00", 0);
	assert_int_equal(schedule_next(&s, t), t + 60);
	assert_int_equal(schedule_next(&s, t + 1), t + 60);
	assert_int_equal(schedule_next(&s, t + 59), t + 60);
}

T(cron_every_15_minutes)
{
	use_tz("UTC");
	runs_are("*/15 * * * *", local("2026-05-10 10:07", 0), 4,
		 "2026-05-10 10:15 UTC, 2026-05-10 10:30 UTC, 2026-05-10 10:45 UTC, 2026-05-10 11:00 UTC");
}

T(cron_weekdays)
{
	use_tz("UTC");
	/* 2026-05-08 is a Friday. */
	runs_are("30 6 * * mon-fri", local("2026-05-08 07:00", 0), 3,
		 "2026-05-11 06:30 UTC, 2026-05-12 06:30 UTC, 2026-05-13 06:30 UTC");
}

T(cron_day_of_month_or_day_of_week)
{
	use_tz("UTC");
	/* Both restricted: the 13th OR a Friday (cron's rule), not "Friday the 13th". */
	runs_are("0 0 13 * 5", local("2026-05-01 12:00", 0), 4,
		 "2026-05-08 00:00 UTC, 2026-05-13 00:00 UTC, 2026-05-15 00:00 UTC, 2026-05-22 00:00 UTC");
	/* One of them '*': both must match. */
	runs_are("0 0 */2 * 5", local("2026-05-01 12:00", 0), 2, "2026-05-15 00:00 UTC, 2026-05-29 00:00 UTC");
}

T(cron_february_29)
{
	use_tz("UTC");
	next_is("0 0 29 2 *", "2026-03-01 00:00", "2028-02-29 00:00 UTC");
}

T(cron_that_never_fires)
{
	use_tz("UTC");
	struct schedule s = parse_ok("0 0 31 2 *");
	assert_int_equal(schedule_next(&s, local("2026-01-01 00:00", 0)), (time_t)-1);
	s = parse_ok("0 0 30 2 *");
	assert_int_equal(schedule_next(&s, local("2026-01-01 00:00", 0)), (time_t)-1);
}

T(month_end_and_year_end)
{
	use_tz("UTC");
	runs_are("0 12 31 * *", local("2026-01-31 13:00", 0), 3,
		 "2026-03-31 12:00 UTC, 2026-05-31 12:00 UTC, 2026-07-31 12:00 UTC");
}

/* ---- daylight saving: Europe/Paris, 2026-03-29 02:00 CET -> 03:00 CEST; 2026-10-25 03:00 CEST -> 02:00 CET ---- */

T(paris_spring_forward_daily_runs_once_at_three)
{
	ZONE("Europe/Paris");
	next_is("02:30", "2026-03-29 01:59", "2026-03-29 03:00 CEST");
	runs_are("02:30", local("2026-03-27 12:00", -1), 4,
		 "2026-03-28 02:30 CET, 2026-03-29 03:00 CEST, 2026-03-30 02:30 CEST, 2026-03-31 02:30 CEST");
	runs_are("30 2 * * *", local("2026-03-28 12:00", -1), 2, "2026-03-29 03:00 CEST, 2026-03-30 02:30 CEST");
}

T(paris_spring_forward_two_fixed_slots_in_the_gap_run_once)
{
	ZONE("Europe/Paris");
	runs_are("0,30 2 * * *", local("2026-03-28 12:00", -1), 3,
		 "2026-03-29 03:00 CEST, 2026-03-30 02:00 CEST, 2026-03-30 02:30 CEST");
	/* 02:30 maps to 03:00, which is also a slot of its own: one run. */
	runs_are("30 2,3 * * *", local("2026-03-29 00:00", -1), 3,
		 "2026-03-29 03:00 CEST, 2026-03-29 03:30 CEST, 2026-03-30 02:30 CEST");
}

T(paris_spring_forward_wildcard_follows_the_clock)
{
	ZONE("Europe/Paris");
	runs_are("*/30 * * * *", local("2026-03-29 01:00", -1), 3,
		 "2026-03-29 01:30 CET, 2026-03-29 03:00 CEST, 2026-03-29 03:30 CEST");
	/* Every minute of the 2 o'clock hour: there is none that day. */
	next_is("* 2 * * *", "2026-03-29 01:00", "2026-03-30 02:00 CEST");
}

T(paris_fall_back_daily_runs_once)
{
	ZONE("Europe/Paris");
	runs_are("02:30", local("2026-10-24 12:00", -1), 3,
		 "2026-10-25 02:30 CEST, 2026-10-26 02:30 CET, 2026-10-27 02:30 CET");
	/* Asked between the two 02:30s: the second one does not run. */
	struct schedule s = parse_ok("02:30");
	char buf[64];
	assert_string_equal(show(schedule_next(&s, local("2026-10-25 02:45", 1)), buf), "2026-10-26 02:30 CET");
	assert_string_equal(show(schedule_next(&s, local("2026-10-25 02:10", 0)), buf), "2026-10-26 02:30 CET");
}

T(paris_fall_back_wildcard_runs_both_hours)
{
	ZONE("Europe/Paris");
	runs_are("*/30 * * * *", local("2026-10-25 01:45", -1), 6,
		 "2026-10-25 02:00 CEST, 2026-10-25 02:30 CEST, 2026-10-25 02:00 CET, 2026-10-25 02:30 CET, "
		 "2026-10-25 03:00 CET, 2026-10-25 03:30 CET");
}

T(paris_every_night_for_two_years_once_a_day)
{
	ZONE("Europe/Paris");
	struct schedule s = parse_ok("02:30");
	time_t t = local("2026-01-01 12:00", -1);
	int prev_yday = -1, prev_year = 0, jumps = 0;
	for (int i = 0; i < 730; i++) {
		time_t n = schedule_next(&s, t);
		assert_true(n > t);
		struct tm tm;
		localtime_r(&n, &tm);
		if (prev_yday >= 0)
			assert_true(tm.tm_yday == prev_yday + 1 || (tm.tm_year == prev_year + 1 && tm.tm_yday == 0));
		if (tm.tm_hour == 3)
			jumps++;
		else
			assert_true(tm.tm_hour == 2 && tm.tm_min == 30);
		prev_yday = tm.tm_yday;
		prev_year = tm.tm_year;
		t = n;
	}
	assert_int_equal(jumps, 2);   /* the two spring-forward days, 2026 and 2027 */
}

T(new_york)
{
	ZONE("America/New_York");
	/* 2026-03-08 02:00 EST -> 03:00 EDT; 2026-11-01 02:00 EDT -> 01:00 EST. */
	next_is("02:15", "2026-03-08 00:00", "2026-03-08 03:00 EDT");
	runs_are("01:30", local("2026-11-01 00:00", -1), 2, "2026-11-01 01:30 EDT, 2026-11-02 01:30 EST");
}

T(lord_howe_half_hour_shift)
{
	ZONE("Australia/Lord_Howe");
	/* 2026-10-04 02:00 -> 02:30 (+10:30 -> +11). */
	next_is("02:15", "2026-10-04 00:00", "2026-10-04 02:30 +11");
	next_is("02:45", "2026-10-04 00:00", "2026-10-04 02:45 +11");
}

T(half_hour_zone)
{
	ZONE("Asia/Kolkata");
	next_is("02:30", "2026-05-10 01:00", "2026-05-10 02:30 IST");
}

/* ---- notify.c: sd_notify datagrams ---- */

/* A datagram socket standing in for systemd's; returns its fd, fills path (or abstract name). */
static int listen_dgram(const char *name, bool abstract, char *env_value, size_t n)
{
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	assert_true(fd >= 0);
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	socklen_t len;
	if (abstract) {
		snprintf(sa.sun_path + 1, sizeof sa.sun_path - 1, "%s-%d", name, (int)getpid());
		len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + strlen(sa.sun_path + 1));
		snprintf(env_value, n, "@%s", sa.sun_path + 1);
	} else {
		snprintf(sa.sun_path, sizeof sa.sun_path, "/tmp/%s-%d.sock", name, (int)getpid());
		unlink(sa.sun_path);
		len = (socklen_t)sizeof sa;
		snprintf(env_value, n, "%s", sa.sun_path);
	}
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, len), 0);
	struct timeval tv = {2, 0};
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	return fd;
}

static void recv_is(int fd, const char *want)
{
	char buf[512];
	ssize_t n = recv(fd, buf, sizeof buf - 1, 0);
	assert_true(n >= 0);
	buf[n] = '\0';
	assert_string_equal(buf, want);
}

T(notify_without_socket_is_a_no_op)
{
	unsetenv("NOTIFY_SOCKET");
	assert_int_equal(notify_send("READY=1"), 0);
	setenv("NOTIFY_SOCKET", "relative/path", 1);
	assert_int_equal(notify_send("READY=1"), -1);
	unsetenv("NOTIFY_SOCKET");
}

T(notify_path_socket)
{
	char env[128];
	int fd = listen_dgram("hrsync-notify-test", false, env, sizeof env);
	setenv("NOTIFY_SOCKET", env, 1);
	assert_int_equal(notify_send("READY=1\nSTATUS=idle"), 1);
	recv_is(fd, "READY=1\nSTATUS=idle");
	assert_int_equal(notify_sendf("STATUS=next run at %s", "02:30"), 1);
	recv_is(fd, "STATUS=next run at 02:30");
	unsetenv("NOTIFY_SOCKET");
	close(fd);
	unlink(env);
}

T(notify_abstract_socket)
{
	char env[128];
	int fd = listen_dgram("hrsync-notify-test", true, env, sizeof env);
	setenv("NOTIFY_SOCKET", env, 1);
	assert_int_equal(notify_send("STOPPING=1"), 1);
	recv_is(fd, "STOPPING=1");
	unsetenv("NOTIFY_SOCKET");
	close(fd);
}

T(watchdog_interval_from_the_environment)
{
	unsetenv("WATCHDOG_PID");
	unsetenv("WATCHDOG_USEC");
	assert_int_equal(notify_watchdog_usec(), 0);
	setenv("WATCHDOG_USEC", "30000000", 1);
	assert_int_equal(notify_watchdog_usec(), 30000000);
	char pid[32];
	snprintf(pid, sizeof pid, "%d", (int)getpid());
	setenv("WATCHDOG_PID", pid, 1);
	assert_int_equal(notify_watchdog_usec(), 30000000);
	setenv("WATCHDOG_PID", "1", 1);   /* meant for another process */
	assert_int_equal(notify_watchdog_usec(), 0);
	unsetenv("WATCHDOG_PID");
	setenv("WATCHDOG_USEC", "0", 1);
	assert_int_equal(notify_watchdog_usec(), 0);
	setenv("WATCHDOG_USEC", "12x", 1);
	assert_int_equal(notify_watchdog_usec(), 0);
	unsetenv("WATCHDOG_USEC");
}

T(watchdog_thread_keeps_alive_at_half_the_interval)
{
	char env[128];
	int fd = listen_dgram("hrsync-watchdog-test", false, env, sizeof env);
	setenv("NOTIFY_SOCKET", env, 1);
	setenv("WATCHDOG_USEC", "100000", 1);   /* 100 ms: a keep-alive every 50 ms */
	assert_true(notify_watchdog_start());
	struct timespec ts = {0, 280 * 1000 * 1000};
	nanosleep(&ts, NULL);
	notify_watchdog_stop();
	int n = 0;
	struct timeval tv = {0, 100 * 1000};
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	char buf[64];
	ssize_t got;
	while ((got = recv(fd, buf, sizeof buf, 0)) > 0) {
		assert_memory_equal(buf, "WATCHDOG=1", 10);
		n++;
	}
	assert_true(n >= 3 && n <= 6);
	/* Stopped: nothing more comes; a second stop and a restart are fine. */
	notify_watchdog_stop();
	assert_true(notify_watchdog_start());
	notify_watchdog_stop();
	unsetenv("WATCHDOG_USEC");
	unsetenv("NOTIFY_SOCKET");
	close(fd);
	unlink(env);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(hhmm_forms),
		cmocka_unit_test(hhmm_errors),
		cmocka_unit_test(cron_field_count),
		cmocka_unit_test(cron_errors_name_the_field),
		cmocka_unit_test(cron_lists_ranges_steps),
		cmocka_unit_test(macros),
		cmocka_unit_test(hhmm_later_today_or_tomorrow),
		cmocka_unit_test(next_is_strictly_after_within_a_minute),
		cmocka_unit_test(cron_every_15_minutes),
		cmocka_unit_test(cron_weekdays),
		cmocka_unit_test(cron_day_of_month_or_day_of_week),
		cmocka_unit_test(cron_february_29),
		cmocka_unit_test(cron_that_never_fires),
		cmocka_unit_test(month_end_and_year_end),
		cmocka_unit_test(paris_spring_forward_daily_runs_once_at_three),
		cmocka_unit_test(paris_spring_forward_two_fixed_slots_in_the_gap_run_once),
		cmocka_unit_test(paris_spring_forward_wildcard_follows_the_clock),
		cmocka_unit_test(paris_fall_back_daily_runs_once),
		cmocka_unit_test(paris_fall_back_wildcard_runs_both_hours),
		cmocka_unit_test(paris_every_night_for_two_years_once_a_day),
		cmocka_unit_test(new_york),
		cmocka_unit_test(lord_howe_half_hour_shift),
		cmocka_unit_test(half_hour_zone),
		cmocka_unit_test(notify_without_socket_is_a_no_op),
		cmocka_unit_test(notify_path_socket),
		cmocka_unit_test(notify_abstract_socket),
		cmocka_unit_test(watchdog_interval_from_the_environment),
		cmocka_unit_test(watchdog_thread_keeps_alive_at_half_the_interval),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
