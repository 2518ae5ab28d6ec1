/*
 * util — see util.h.
 */
#define _GNU_SOURCE
#include "util.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
/* xxHash from Debian's libxxhash-dev, compiled in (its header-only mode): XXH3 on the short
 * columns of a row is faster than through libxxhash.so's calls (bench/README.md, "Row hash"). */
#define XXH_INLINE_ALL
#include <xxhash.h>

static void oom(size_t n)
{
	fprintf(stderr, "hrsync: out of memory allocating %zu bytes\n", n);
	abort();
}

void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	if (!p)
		oom(n);
	return p;
}

void *xcalloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size ? size : 1);
	if (!p)
		oom(n * size);
	return p;
}

void *xrealloc(void *p, size_t n)
{
	void *q = realloc(p, n ? n : 1);
	if (!q)
		oom(n);
	return q;
}

char *xstrdup(const char *s)
{
	return s ? xstrndup(s, strlen(s)) : NULL;
}

char *xstrndup(const char *s, size_t n)
{
	char *p = xmalloc(n + 1);
	memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

char *xasprintf(const char *fmt, ...)
{
	struct sb b = {0};
	va_list ap;
	va_start(ap, fmt);
	sb_vprintf(&b, fmt, ap);
	va_end(ap);
	return sb_steal(&b);
}

void grow(void *arrp, size_t *cap, size_t need, size_t elsize)
{
	void **arr = arrp;
	if (need <= *cap)
		return;
	size_t ncap = *cap ? *cap * 2 : 8;
	while (ncap < need)
		ncap *= 2;
	*arr = xrealloc(*arr, ncap * elsize);
	*cap = ncap;
}

static void sb_reserve(struct sb *b, size_t extra)
{
	if (b->len + extra + 1 <= b->cap)
		return;
	size_t ncap = b->cap ? b->cap * 2 : 64;
	while (ncap < b->len + extra + 1)
		ncap *= 2;
	b->s = xrealloc(b->s, ncap);
	b->cap = ncap;
}

void sb_add(struct sb *b, const char *s, size_t n)
{
	sb_reserve(b, n);
	if (n)
		memcpy(b->s + b->len, s, n);
	b->len += n;
	b->s[b->len] = '\0';
}

void sb_puts(struct sb *b, const char *s)
{
	sb_add(b, s, strlen(s));
}

void sb_putc(struct sb *b, char c)
{
	sb_add(b, &c, 1);
}

void sb_vprintf(struct sb *b, const char *fmt, va_list ap)
{
	va_list ap2;
	va_copy(ap2, ap);
	char tmp[256];
	int n = vsnprintf(tmp, sizeof tmp, fmt, ap2);
	va_end(ap2);
	if (n < 0)
		return;
	if ((size_t)n < sizeof tmp) {
		sb_add(b, tmp, (size_t)n);
		return;
	}
	sb_reserve(b, (size_t)n);
	vsnprintf(b->s + b->len, (size_t)n + 1, fmt, ap);
	b->len += (size_t)n;
}

void sb_printf(struct sb *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	sb_vprintf(b, fmt, ap);
	va_end(ap);
}

void sb_reset(struct sb *b)
{
	b->len = 0;
	if (b->s)
		b->s[0] = '\0';
}

void sb_free(struct sb *b)
{
	free(b->s);
	b->s = NULL;
	b->len = b->cap = 0;
}

char *sb_steal(struct sb *b)
{
	char *s = b->s ? b->s : xstrdup("");
	b->s = NULL;
	b->len = b->cap = 0;
	return s;
}

const char *sb_str(const struct sb *b)
{
	return b->s ? b->s : "";
}

size_t utf8_seq(const unsigned char *s, size_t n)
{
	if (s[0] < 0x80)
		return 1;
	size_t k = (s[0] & 0xE0) == 0xC0 ? 2 : (s[0] & 0xF0) == 0xE0 ? 3 : (s[0] & 0xF8) == 0xF0 ? 4 : 0;
	return k && k <= n && utf8_valid((const char *)s, k) ? k : 0;
}

void sb_json_escape(struct sb *b, const char *s, size_t n)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t start = 0;
	for (size_t i = 0; i < n;) {
		unsigned char c = u[i];
		const char *esc = NULL;
		char ubuf[8];
		size_t len = 1;
		switch (c) {
		case '"': esc = "\\\""; break;
		case '\\': esc = "\\\\"; break;
		case '\n': esc = "\\n"; break;
		case '\r': esc = "\\r"; break;
		case '\t': esc = "\\t"; break;
		case '\b': esc = "\\b"; break;
		case '\f': esc = "\\f"; break;
		default:
			if (c < 0x20) {
				snprintf(ubuf, sizeof ubuf, "\\u%04x", c);
				esc = ubuf;
			} else if (c >= 0x80) {
				len = utf8_seq(u + i, n - i);
				if (!len) {
					/* Not UTF-8 (a CP1251 byte): JSON cannot carry it; the replacement character can. */
					esc = "\\ufffd";
					len = 1;
				}
			}
		}
		if (esc) {
			sb_add(b, s + start, i - start);
			sb_puts(b, esc);
			start = i + len;
		}
		i += len;
	}
	sb_add(b, s + start, n - start);
}

void sb_json_string(struct sb *b, const char *s, size_t n)
{
	sb_putc(b, '"');
	sb_json_escape(b, s, n);
	sb_putc(b, '"');
}

/* Code points that move text or hide it: line/paragraph separators, bidi controls, invisible marks. */
static bool unicode_format_control(uint32_t cp)
{
	return cp == 0x061C || cp == 0x180E || cp == 0x200B || cp == 0x200E || cp == 0x200F ||
	       (cp >= 0x2028 && cp <= 0x202E) || (cp >= 0x2060 && cp <= 0x206F) || cp == 0xFEFF ||
	       (cp >= 0xFFF9 && cp <= 0xFFFB);
}

void sb_put_printable(struct sb *b, const char *s, size_t n)
{
	const unsigned char *u = (const unsigned char *)s;
	for (size_t i = 0; i < n;) {
		unsigned char c = u[i];
		size_t k = 1;
		if (c == '\n')
			sb_puts(b, "\\n");
		else if (c == '\r')
			sb_puts(b, "\\r");
		else if (c == '\t')
			sb_puts(b, "\\t");
		else if (c < 0x20 || c == 0x7f)
			sb_printf(b, "\\x%02x", c);
		else if (c < 0x80)
			sb_putc(b, (char)c);
		else if ((k = utf8_seq(u + i, n - i)) == 0) {
			sb_printf(b, "\\x%02x", c);   /* not UTF-8 (a CP1251 byte): shown as its value */
			k = 1;
		} else {
			uint32_t cp = c & (0x7F >> k);
			for (size_t j = 1; j < k; j++)
				cp = cp << 6 | (u[i + j] & 0x3F);
			if (cp < 0xA0 || unicode_format_control(cp))   /* C1: U+009B is CSI */
				sb_printf(b, "\\u%04x", (unsigned)cp);
			else if (cp >= 0xE0000 && cp <= 0xE007F)       /* tags: invisible ASCII */
				sb_printf(b, "\\U%08x", (unsigned)cp);
			else
				sb_add(b, s + i, k);
		}
		i += k;
	}
}

bool streq(const char *a, const char *b)
{
	if (!a || !b)
		return a == b;
	return strcmp(a, b) == 0;
}

bool str_has_prefix(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

bool str_has_suffix(const char *s, const char *suffix)
{
	size_t ls = strlen(s), lx = strlen(suffix);
	return ls >= lx && memcmp(s + ls - lx, suffix, lx) == 0;
}

bool utf8_valid(const char *str, size_t n)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t i = 0;
	while (i < n) {
		unsigned char c = s[i];
		size_t k;
		uint32_t cp;
		if (c < 0x80) {
			i++;
			continue;
		} else if ((c & 0xE0) == 0xC0) {
			k = 1;
			cp = c & 0x1F;
		} else if ((c & 0xF0) == 0xE0) {
			k = 2;
			cp = c & 0x0F;
		} else if ((c & 0xF8) == 0xF0) {
			k = 3;
			cp = c & 0x07;
		} else {
			return false;
		}
		if (k >= n - i)
			return false;
		for (size_t j = 1; j <= k; j++) {
			if ((s[i + j] & 0xC0) != 0x80)
				return false;
			cp = (cp << 6) | (s[i + j] & 0x3F);
		}
		if ((k == 1 && cp < 0x80) || (k == 2 && cp < 0x800) || (k == 3 && cp < 0x10000) ||
		    cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
			return false;
		i += k + 1;
	}
	return true;
}

size_t utf8_len(const char *s, size_t n)
{
	size_t count = 0;
	for (size_t i = 0; i < n; i++)
		if (((unsigned char)s[i] & 0xC0) != 0x80)
			count++;
	return count;
}

bool parse_ll(const char *s, long long *out)
{
	/* strtoll would skip leading spaces: the whole string must be the number. */
	if (!s || !*s || !(isdigit((unsigned char)s[0]) || s[0] == '-' || s[0] == '+'))
		return false;
	errno = 0;
	char *end;
	long long v = strtoll(s, &end, 10);
	if (errno || *end || end == s)
		return false;
	*out = v;
	return true;
}

bool parse_double(const char *s, double *out)
{
	/* Decimal only: strtod also takes spaces, hex ("0x10"), "inf" and "nan". */
	if (!s || !*s || strspn(s, "+-0123456789.eE") != strlen(s))
		return false;
	errno = 0;
	char *end;
	double v = strtod(s, &end);
	if (errno || *end || end == s || !isfinite(v))
		return false;
	*out = v;
	return true;
}

int edit_distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	if (la > 64 || lb > 64)
		return 16;
	int prev[65], cur[65];
	for (size_t j = 0; j <= lb; j++)
		prev[j] = (int)j;
	for (size_t i = 1; i <= la; i++) {
		cur[0] = (int)i;
		for (size_t j = 1; j <= lb; j++) {
			int cost = a[i - 1] == b[j - 1] ? 0 : 1;
			int v = prev[j] + 1;
			if (cur[j - 1] + 1 < v)
				v = cur[j - 1] + 1;
			if (prev[j - 1] + cost < v)
				v = prev[j - 1] + cost;
			cur[j] = v;
		}
		memcpy(prev, cur, sizeof(int) * (lb + 1));
	}
	return prev[lb] > 16 ? 16 : prev[lb];
}

uint64_t hash64(const void *p, size_t n, uint64_t seed)
{
	return XXH3_64bits_withSeed(p, n, seed);
}

int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

double now_wall(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

void format_utc(char *buf, size_t n, double epoch)
{
	time_t t = (time_t)epoch;
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(buf, n, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

char *read_file(const char *path, size_t *len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	struct sb b = {0};
	char buf[65536];
	for (;;) {
		ssize_t r = read(fd, buf, sizeof buf);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			int e = errno;
			close(fd);
			sb_free(&b);
			errno = e;
			return NULL;
		}
		if (r == 0)
			break;
		sb_add(&b, buf, (size_t)r);
	}
	close(fd);
	if (len)
		*len = b.len;
	return sb_steal(&b);
}

char *path_dirname(const char *path)
{
	const char *slash = strrchr(path, '/');
	if (!slash)
		return xstrdup(".");
	if (slash == path)
		return xstrdup("/");
	return xstrndup(path, (size_t)(slash - path));
}

char *path_join(const char *base, const char *rel)
{
	if (rel[0] == '/' || !base || !*base)
		return xstrdup(rel);
	return xasprintf("%s/%s", base, rel);
}

char *path_normalize(const char *path)
{
	bool abs = path[0] == '/';
	char *copy = xstrdup(path);
	const char **parts = xcalloc(strlen(path) + 1, sizeof *parts);
	size_t n = 0;
	char *save = NULL;
	for (char *t = strtok_r(copy, "/", &save); t; t = strtok_r(NULL, "/", &save)) {
		if (streq(t, "."))
			continue;
		if (streq(t, "..") && n > 0 && !streq(parts[n - 1], ".."))
			n--;
		else if (!(streq(t, "..") && abs && n == 0))
			parts[n++] = t;
	}
	struct sb b = {0};
	if (abs)
		sb_putc(&b, '/');
	for (size_t i = 0; i < n; i++)
		sb_printf(&b, "%s%s", i ? "/" : "", parts[i]);
	if (!b.len)
		sb_putc(&b, '.');
	free(parts);
	free(copy);
	return sb_steal(&b);
}
