/*
 * schedule — when `hrsync daemon` runs: the config's `schedule:`, either "HH:MM" (daily)
 * or a 5-field cron expression (minute hour day-of-month month day-of-week, with lists,
 * ranges, steps, month and day names, and @daily/@hourly/@weekly/@monthly/@yearly),
 * read in the process's local time zone (cli_load_config sets TZ from `timezone:`).
 *
 * Daylight-saving changes follow ISC (Vixie) cron, the behaviour sysadmins know:
 *  - a schedule with a fixed minute and hour ("02:30", "30 2 * * *") runs once per day
 *    even when the clock jumps: a time skipped by the spring-forward jump runs at the
 *    first instant after the jump (03:00 in Europe/Paris); a time that occurs twice on
 *    the fall-back day runs at its first occurrence only;
 *  - a schedule whose minute or hour field starts with '*' (every N minutes, every hour)
 *    follows the clock: skipped times do not run, repeated times run twice.
 *
 * Pure computation over time_t: no I/O, no globals besides the C library's time zone.
 * Never uses the non-reentrant localtime()/gmtime().
 */
#ifndef HRSYNC_SCHEDULE_H
#define HRSYNC_SCHEDULE_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

struct schedule {
	uint64_t minute;      /* bit m: minute m (0-59) matches */
	uint32_t hour;        /* bit h: 0-23 */
	uint32_t mday;        /* bit d: 1-31 */
	uint16_t month;       /* bit m: 1-12 */
	uint8_t wday;         /* bit w: 0-6, Sunday = 0 */
	bool mday_star, wday_star;   /* the field started with '*': see cron's day matching */
	bool follows_clock;   /* minute or hour field started with '*' (DST rule above) */
	char text[64];        /* the schedule as written, for messages */
};

/*
 * Parse "HH:MM" or a cron expression. false with a one-line reason in err
 * ("schedule '61 * * * *': minute 61 is out of range 0-59").
 */
bool schedule_parse(struct schedule *s, const char *spec, char *err, size_t errlen);

/*
 * The first run time strictly after `after`, in the local time zone; (time_t)-1 when
 * the schedule never fires within the next 8 years (e.g. "0 0 31 2 *").
 */
time_t schedule_next(const struct schedule *s, time_t after);

/*
 * A run window's end (`run --until`, config run_until): "HH:MM", the next such local time
 * after now (a window opened at 22:00 ending "06:00" ends tomorrow morning), or
 * "+DURATION" ("+4h", "+90m") from now. false with a reason in err.
 */
bool window_end(const char *spec, time_t now, double *end, char *err, size_t errlen);

#endif
