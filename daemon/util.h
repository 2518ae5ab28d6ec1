/*
 * util — allocation that never returns NULL, a growable string buffer, and small
 * string and time helpers shared by every module.
 *
 * Allocation failure is not recoverable for a sync daemon: x*alloc() log and abort.
 * A struct sb owns its buffer; sb_steal() hands ownership to the caller.
 */
#ifndef HRSYNC_UTIL_H
#define HRSYNC_UTIL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

#if defined(__GNUC__)
#define PRINTF_LIKE(f, a) __attribute__((format(printf, f, a)))
#else
#define PRINTF_LIKE(f, a)
#endif

void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);            /* NULL stays NULL */
char *xstrndup(const char *s, size_t n);
char *xasprintf(const char *fmt, ...) PRINTF_LIKE(1, 2);

/* Grow *arr (of *cap elements of size elsize) so it holds at least need elements. */
void grow(void *arrp, size_t *cap, size_t need, size_t elsize);

/* A growable, always NUL-terminated string buffer. Zero-initialised is valid and empty. */
struct sb {
	char *s;
	size_t len, cap;
};
void sb_add(struct sb *b, const char *s, size_t n);
void sb_puts(struct sb *b, const char *s);
void sb_putc(struct sb *b, char c);
void sb_printf(struct sb *b, const char *fmt, ...) PRINTF_LIKE(2, 3);
void sb_vprintf(struct sb *b, const char *fmt, va_list ap);
void sb_reset(struct sb *b);
void sb_free(struct sb *b);
char *sb_steal(struct sb *b);            /* caller frees; b becomes empty */
const char *sb_str(const struct sb *b);  /* "" when empty */
/* Append s as the body of a JSON string (without quotes), escaping as RFC 8259 asks. */
void sb_json_escape(struct sb *b, const char *s, size_t n);
/* s as a JSON string, quotes included. */
void sb_json_string(struct sb *b, const char *s, size_t n);
/*
 * Append s for a terminal (tables people read): nothing in it can move the cursor, change
 * colours, reorder or hide text. C0 controls and DEL are escaped as \n, \r, \t or \x1b; C1
 * controls, the line and paragraph separators and the bidirectional and invisible format
 * characters as \u009b, \u202e...; a byte that is not UTF-8 as \xe9. Printable UTF-8
 * (backslashes included) is copied as it is: --format json is there for exact values.
 */
void sb_put_printable(struct sb *b, const char *s, size_t n);

bool streq(const char *a, const char *b);          /* NULL-safe */
bool str_has_prefix(const char *s, const char *prefix);
bool str_has_suffix(const char *s, const char *suffix);
bool utf8_valid(const char *s, size_t n);
/* Length of the valid UTF-8 sequence at s (1..4), or 0 when the bytes there are not one. */
size_t utf8_seq(const unsigned char *s, size_t n);
/* Number of code points in a valid UTF-8 string. */
size_t utf8_len(const char *s, size_t n);
/* Strict decimal parse of the whole string; false when not a number or out of range. */
bool parse_ll(const char *s, long long *out);
bool parse_double(const char *s, double *out);
/*
 * 64 bits of n bytes, chained through seed: xxHash's XXH3_64bits_withSeed (compiled from
 * libxxhash-dev's header), faster than the MurmurHash64A of state schema v3 and before
 * (bench/README.md, "Row hash").
 * For change detection, not security: hash64(NULL, 0, seed) is valid. The no-change pass
 * stores it (links.src_hash): changing the hash needs a state upgrade that clears them (v4).
 */
uint64_t hash64(const void *p, size_t n, uint64_t seed);
/* Levenshtein distance, for "did you mean"; capped at 16. */
int edit_distance(const char *a, const char *b);

/* Milliseconds on the monotonic clock. */
int64_t now_ms(void);
/* Seconds since the epoch, with fraction. */
double now_wall(void);
/* Fill buf (>= 21 bytes) with the UTC time as 2026-11-25T14:37:21Z. */
void format_utc(char *buf, size_t n, double epoch);

/* Read a whole file; NULL with errno set on failure. *len gets the size. Caller frees. */
char *read_file(const char *path, size_t *len);
/* Directory part of path ("." when none); caller frees. */
char *path_dirname(const char *path);
/* Collapse "./" and "dir/../" lexically ("config/../mappings/a.yaml" -> "mappings/a.yaml"). Caller frees. */
char *path_normalize(const char *path);
/* base joined with rel unless rel is absolute; caller frees. */
char *path_join(const char *base, const char *rel);

#endif
