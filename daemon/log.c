/*
 * log — see log.h. Output is assembled in one buffer and written with one write(2),
 * so lines from one process never interleave.
 */
#include "log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int g_level = L_INFO;
static enum log_format g_format = LOGF_TEXT;
static long long g_run;
static const char *g_mapping;

static const char *level_name(int l)
{
	switch (l) {
	case L_ERR: return "error";
	case L_WARN: return "warning";
	case L_NOTICE: return "notice";
	case L_INFO: return "info";
	default: return "debug";
	}
}

void log_setup(int level, enum log_format fmt)
{
	g_level = level;
	if (fmt == LOGF_AUTO) {
		/* systemd's rule: JOURNAL_STREAM names the device and inode of the stream it gave us;
		 * a child whose stderr was redirected elsewhere inherits the variable but not the stream. */
		const char *js = getenv("JOURNAL_STREAM");
		struct stat st;
		unsigned long long dev, ino;
		fmt = LOGF_TEXT;
		if (js && sscanf(js, "%llu:%llu", &dev, &ino) == 2 && fstat(STDERR_FILENO, &st) == 0 &&
		    (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino)
			fmt = LOGF_JOURNAL;
	}
	g_format = fmt;
}

int log_level(void)
{
	return g_level;
}

bool log_parse_format(const char *s, enum log_format *out)
{
	static const struct { const char *n; enum log_format f; } t[] = {
		{"auto", LOGF_AUTO}, {"text", LOGF_TEXT}, {"json", LOGF_JSON}, {"journal", LOGF_JOURNAL}};
	for (size_t i = 0; i < ARRAY_LEN(t); i++)
		if (streq(s, t[i].n)) {
			*out = t[i].f;
			return true;
		}
	return false;
}

bool log_parse_level(const char *s, int *out)
{
	static const struct { const char *n; int l; } t[] = {
		{"error", L_ERR}, {"warning", L_WARN}, {"notice", L_NOTICE}, {"info", L_INFO}, {"debug", L_DEBUG}};
	for (size_t i = 0; i < ARRAY_LEN(t); i++)
		if (streq(s, t[i].n)) {
			*out = t[i].l;
			return true;
		}
	return false;
}

void log_set_run(long long run_id)
{
	g_run = run_id;
}

void log_set_mapping(const char *mapping)
{
	g_mapping = mapping;
}

static void emit(struct sb *b)
{
	sb_putc(b, '\n');
	const char *p = b->s;
	size_t left = b->len;
	while (left) {
		ssize_t w = write(STDERR_FILENO, p, left);
		if (w <= 0)
			break;
		p += w;
		left -= (size_t)w;
	}
}

/*
 * Text and journal lines stay one line: a key or a platform's message cannot forge another,
 * nor drive the terminal (escape sequences, C1 controls, bidi overrides: sb_put_printable).
 */
static void add_oneline(struct sb *b, const char *s, size_t n)
{
	sb_put_printable(b, s, n);
}

static void json_kv(struct sb *b, const char *k, const char *v)
{
	sb_printf(b, ",\"%s\":\"", k);
	sb_json_escape(b, v, strlen(v));
	sb_putc(b, '"');
}

/* A JSON line's start: the time, the level, the run and the mapping when set. */
static void json_head(struct sb *b, int level)
{
	char ts[32];
	format_utc(ts, sizeof ts, now_wall());
	sb_printf(b, "{\"ts\":\"%s\",\"level\":\"%s\"", ts, level_name(level));
	if (g_run)
		sb_printf(b, ",\"run\":%lld", g_run);
	if (g_mapping)
		json_kv(b, "mapping", g_mapping);
}

/* Text and journal lines share one shape: [run=N] [mapping=M] [key=K] [action=A] message */
static void prefix(struct sb *b, int level, const char *key, const char *action)
{
	if (g_format == LOGF_JOURNAL) {
		sb_printf(b, "<%d>", level);
	} else {
		char ts[32];
		format_utc(ts, sizeof ts, now_wall());
		sb_printf(b, "%s %-7s ", ts, level_name(level));
	}
	if (g_run)
		sb_printf(b, "run=%lld ", g_run);
	if (g_mapping)
		sb_printf(b, "mapping=%s ", g_mapping);
	if (key) {
		sb_puts(b, "key=");
		add_oneline(b, key, strlen(key));
		sb_putc(b, ' ');
	}
	if (action)
		sb_printf(b, "action=%s ", action);
}

void log_rec(int level, const char *key, const char *action, const char *fmt, ...)
{
	if (level > g_level)
		return;
	struct sb msg = {0}, b = {0};
	va_list ap;
	va_start(ap, fmt);
	sb_vprintf(&msg, fmt, ap);
	va_end(ap);
	if (g_format == LOGF_JSON) {
		json_head(&b, level);
		if (key)
			json_kv(&b, "key", key);
		if (action)
			json_kv(&b, "action", action);
		json_kv(&b, "msg", sb_str(&msg));
		sb_putc(&b, '}');
	} else {
		prefix(&b, level, key, action);
		add_oneline(&b, msg.s ? msg.s : "", msg.len);
	}
	emit(&b);
	sb_free(&msg);
	sb_free(&b);
}

void log_fields(int level, const char *msg, const char *const *names, const long long *values,
		int n, const char *const *snames, const char *const *svalues, int ns)
{
	if (level > g_level)
		return;
	struct sb b = {0};
	if (g_format == LOGF_JSON) {
		json_head(&b, level);
		json_kv(&b, "msg", msg);
		for (int i = 0; i < n; i++)
			sb_printf(&b, ",\"%s\":%lld", names[i], values[i]);
		for (int i = 0; i < ns; i++) {
			/* A value that is a plain number (seconds) stays a JSON number. */
			char *end;
			strtod(svalues[i], &end);
			if (*svalues[i] && !*end && strspn(svalues[i], "0123456789.-") == strlen(svalues[i]))
				sb_printf(&b, ",\"%s\":%s", snames[i], svalues[i]);
			else
				json_kv(&b, snames[i], svalues[i]);
		}
		sb_putc(&b, '}');
	} else {
		prefix(&b, level, NULL, NULL);
		sb_puts(&b, msg);
		for (int i = 0; i < n; i++)
			sb_printf(&b, " %s=%lld", names[i], values[i]);
		for (int i = 0; i < ns; i++)
			sb_printf(&b, " %s=%s", snames[i], svalues[i]);
	}
	emit(&b);
	sb_free(&b);
}

void log_mask(const char *value, char *buf, size_t n)
{
	if (n == 0)
		return;
	if (!value) {
		snprintf(buf, n, "null");
		return;
	}
	size_t len = strlen(value);
	const char *at = strchr(value, '@');
	size_t keep_tail = at ? len - (size_t)(at - value) : (len > 4 ? 1 : 0);
	size_t o = 0;
	for (size_t i = 0; i < len && o + 1 < n; i++) {
		bool keep = (i == 0 && len > 4) || i >= len - keep_tail;
		/* Never split a UTF-8 sequence: continuation bytes follow their lead. */
		if ((unsigned char)value[i] >= 0x80 && ((unsigned char)value[i] & 0xC0) == 0x80)
			continue;
		if (keep) {
			size_t clen = 1;
			while (i + clen < len && ((unsigned char)value[i + clen] & 0xC0) == 0x80)
				clen++;
			if (o + clen + 1 > n)
				break;
			memcpy(buf + o, value + i, clen);
			o += clen;
		} else {
			buf[o++] = '*';
		}
	}
	buf[o] = '\0';
}
