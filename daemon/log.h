/*
 * log — every line hrsync writes to stderr.
 *
 * Formats (docs/operations.md, "Logs"): text (a terminal), journal (<N> priority prefixes for journald,
 * chosen by `auto` when $JOURNAL_STREAM is set) and json (one object per line).
 * Each line carries the run id, and where known the mapping, record key and action.
 * This module never sees secrets: callers pass only masked or non-sensitive text.
 */
#ifndef HRSYNC_LOG_H
#define HRSYNC_LOG_H

#include <stdbool.h>

#include "util.h"

enum log_level { L_ERR = 3, L_WARN = 4, L_NOTICE = 5, L_INFO = 6, L_DEBUG = 7 };
enum log_format { LOGF_AUTO, LOGF_TEXT, LOGF_JSON, LOGF_JOURNAL };

void log_setup(int level, enum log_format fmt);
int log_level(void);
bool log_parse_format(const char *s, enum log_format *out);
bool log_parse_level(const char *s, int *out);
void log_set_run(long long run_id);           /* 0 clears */
void log_set_mapping(const char *mapping);    /* NULL clears; the string must outlive its use */

void log_rec(int level, const char *key, const char *action, const char *fmt, ...) PRINTF_LIKE(4, 5);
/* A structured line with extra integer fields (for summaries): names[i] = values[i]. */
void log_fields(int level, const char *msg, const char *const *names, const long long *values,
		int n, const char *const *snames, const char *const *svalues, int ns);

#define log_error(...) log_rec(L_ERR, NULL, NULL, __VA_ARGS__)
#define log_warn(...) log_rec(L_WARN, NULL, NULL, __VA_ARGS__)
#define log_notice(...) log_rec(L_NOTICE, NULL, NULL, __VA_ARGS__)
#define log_info(...) log_rec(L_INFO, NULL, NULL, __VA_ARGS__)
#define log_debug(...) log_rec(L_DEBUG, NULL, NULL, __VA_ARGS__)

/*
 * Mask a personal value for a debug line: keeps the first and last character of
 * values longer than 4, stars the rest ("Ivanov" -> "I****v"); emails keep the domain.
 * Writes into buf (always NUL-terminated).
 */
void log_mask(const char *value, char *buf, size_t n);

#endif
