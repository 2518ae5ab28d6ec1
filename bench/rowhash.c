/*
 * rowhash — issue 16: the row hash of the no-change pass (daemon/source.c row_hash), measured
 * with MurmurHash64A (daemon/util.c hash64 up to state schema v3, copied below) against
 * xxHash's XXH3 (Debian's libxxhash-dev), over a million rows held in memory, the way
 * row_hash() walks a batch: one call per column, chained through the seed, NULL hashed apart
 * from "" (H(NULL, 0, ~h)).
 *
 *   make bench-rowhash [ROWHASH_ROWS=1000000] [ROWHASH_REPEAT=7]
 *
 * hrsync's hash64 is now xxh3-inline (state schema v4): the fastest on every shape.
 *
 * Three row shapes: "employees" (the 16 columns the shipped employees mapping reads, about
 * 190 bytes of text, Cyrillic names, some NULLs), "absences" (7 short columns) and "wide"
 * (employees plus a 1 KB comment). Three hashes: murmur (the former hash64),
 * xxh3-lib (an out-of-line function calling XXH3_64bits_withSeed in libxxhash.so) and
 * xxh3-inline (hrsync's hash64 in util.o: the same function compiled from xxhash.h with
 * XXH_INLINE_ALL). murmur and xxh3-lib are kept out of line (noinline), as hash64 is in
 * util.o: one call per column for all three. Each
 * figure is the best of ROWHASH_REPEAT passes (the machine is shared: the best pass is the one
 * least disturbed), in ms of CPU time for all the rows and ns a row; the hashes are checked to differ
 * between rows (no collisions among a million rows: a change cannot go unseen for that reason).
 */
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util.h"

/* XXH3 from the shared library (libxxhash.so.0): what hash64 would be linking it, an
 * out-of-line function calling the library's... */
#include <xxhash.h>
__attribute__((noinline)) static uint64_t h_xxh3_lib(const void *p, size_t n, uint64_t seed)
{
	return XXH3_64bits_withSeed(p, n, seed);
}

/* ...and hrsync's hash64 (util.o): the same XXH3 compiled from xxhash.h (XXH_INLINE_ALL). */
static uint64_t h_xxh3_inline(const void *p, size_t n, uint64_t seed)
{
	return hash64(p, n, seed);
}

struct col {
	const char *p; /* NULL: SQL NULL */
	int len;
};

struct rows {
	const char *shape;
	int ncols;
	long n;
	struct col *cols; /* n * ncols */
	char *arena;
};

static uint64_t rng = 0x9e3779b97f4a7c15ULL;
static uint64_t next(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static const char *const first[] = {"Александр", "Мария", "Дмитрий", "Анна", "Jean", "Élodie", "François", "Ольга",
				    "Сергей", "Camille"};
static const char *const last[] = {"Иванов", "Смирнова", "Кузнецов", "Попова", "Dupont", "Lefèvre", "Moreau",
				   "Васильева", "Петров", "Girard"};
static const char *const depts[] = {"Бухгалтерия", "Отдел продаж", "Logistique", "Ressources humaines", "ИТ"};

/* Append one column to the arena (pos advances), NULL with probability null_pct %. */
static struct col put(char *arena, size_t *pos, int null_pct, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static struct col put(char *arena, size_t *pos, int null_pct, const char *fmt, ...)
{
	if (null_pct && (int)(next() % 100) < null_pct)
		return (struct col){NULL, 0};
	va_list ap;
	va_start(ap, fmt);
	int len = vsnprintf(arena + *pos, 2048, fmt, ap);
	va_end(ap);
	struct col c = {arena + *pos, len};
	*pos += (size_t)len + 1;
	return c;
}

static void make_rows(struct rows *r, const char *shape, long n)
{
	bool emp = strcmp(shape, "absences") != 0, wide = strcmp(shape, "wide") == 0;
	r->shape = shape;
	r->ncols = emp ? 16 + wide : 7;
	r->n = n;
	r->cols = xcalloc((size_t)n * (size_t)r->ncols, sizeof *r->cols);
	r->arena = xmalloc((size_t)n * (wide ? 1400 : 320));
	static char comment[1100];
	for (size_t i = 0; i + 1 < sizeof comment; i++)
		comment[i] = (char)('a' + i % 26);
	size_t pos = 0;
	for (long i = 0; i < n; i++) {
		struct col *c = r->cols + i * r->ncols;
		int k = 0;
		if (emp) {
			const char *f = first[next() % 10], *l = last[next() % 10];
			c[k++] = put(r->arena, &pos, 0, "%06ld", 100000 + i);
			c[k++] = put(r->arena, &pos, 0, "%s", f);
			c[k++] = put(r->arena, &pos, 0, "%s", l);
			c[k++] = put(r->arena, &pos, 30, "%sовна", f);
			c[k++] = put(r->arena, &pos, 2, "e%06ld@example.fr", 100000 + i);
			c[k++] = put(r->arena, &pos, 60, "p%06ld@mail.example", i);
			c[k++] = put(r->arena, &pos, 10, "+7 9%02d %03d-%02d-%02d", (int)(next() % 100), (int)(next() % 1000),
				     (int)(next() % 100), (int)(next() % 100));
			c[k++] = put(r->arena, &pos, 0, "%s", next() % 2 ? "М" : "Ж");
			c[k++] = put(r->arena, &pos, 0, "19%02d-%02d-%02d", (int)(50 + next() % 50), (int)(1 + next() % 12),
				     (int)(1 + next() % 28));
			c[k++] = put(r->arena, &pos, 0, "20%02d-%02d-%02d", (int)(next() % 26), (int)(1 + next() % 12),
				     (int)(1 + next() % 28));
			c[k++] = put(r->arena, &pos, 20, "%013llu", (unsigned long long)(next() % 10000000000000ULL));
			c[k++] = put(r->arena, &pos, 0, "%s", depts[next() % 5]);
			c[k++] = put(r->arena, &pos, 0, "Специалист %d категории", (int)(1 + next() % 3));
			c[k++] = put(r->arena, &pos, 90, "2025-%02d-01", (int)(1 + next() % 12));
			c[k++] = put(r->arena, &pos, 90, "%s", "СЖ");
			if (wide)
				c[k++] = put(r->arena, &pos, 0, "%.*s%ld", 1000, comment, i);
			c[k++] = put(r->arena, &pos, 0, "%s", "f"); /* terminate.when */
		} else {
			c[k++] = put(r->arena, &pos, 0, "A%07ld", i);
			c[k++] = put(r->arena, &pos, 0, "%06ld", 100000 + (long)(next() % 1000000));
			c[k++] = put(r->arena, &pos, 0, "%s", next() % 2 ? "ОТ" : "Б");
			c[k++] = put(r->arena, &pos, 0, "2026-%02d-%02d", (int)(1 + next() % 12), (int)(1 + next() % 28));
			c[k++] = put(r->arena, &pos, 0, "2026-%02d-%02d", (int)(1 + next() % 12), (int)(1 + next() % 28));
			c[k++] = put(r->arena, &pos, 50, "%s", "half day");
			c[k++] = put(r->arena, &pos, 0, "%s", "f");
		}
	}
}

/* MurmurHash64A (Austin Appleby, public domain), as daemon/util.c hash64 was up to state
 * schema v3: kept here as the reference XXH3 replaced. */
__attribute__((noinline)) static uint64_t h_murmur(const void *p, size_t n, uint64_t seed)
{
	const uint64_t m = 0xc6a4a7935bd1e995ULL;
	const int r = 47;
	const unsigned char *b = p;
	uint64_t h = seed ^ (n * m);
	for (size_t i = 0; i + 8 <= n; i += 8) {
		uint64_t k;
		memcpy(&k, b + i, 8);
		k *= m;
		k ^= k >> r;
		k *= m;
		h ^= k;
		h *= m;
	}
	size_t tail = n & 7;
	if (tail) {
		const unsigned char *t = b + (n - tail);
		uint64_t k = 0;
		for (size_t i = tail; i-- > 0;)
			k = (k << 8) | t[i];
		h ^= k;
		h *= m;
	}
	h ^= h >> r;
	h *= m;
	h ^= h >> r;
	return h;
}


/* row_hash() of daemon/source.c, with the hash H: every row's hash into out. */
#define ROW_PASS(H)                                                                                      \
	for (long i = 0; i < r->n; i++) {                                                                \
		const struct col *c = r->cols + i * r->ncols;                                            \
		uint64_t h = seed;                                                                       \
		for (int k = 0; k < r->ncols; k++)                                                       \
			h = c[k].p ? H(c[k].p, (size_t)c[k].len, h) : H(NULL, 0, ~h);                    \
		out[i] = h;                                                                              \
	}

static double now_s(void)
{
	struct timespec t;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t); /* CPU time: another process taking the core does not count */
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static long collisions(const uint64_t *h, long n)
{
	uint64_t *s = xmalloc((size_t)n * sizeof *s);
	memcpy(s, h, (size_t)n * sizeof *s);
	qsort(s, (size_t)n, sizeof *s, cmp_u64);
	long c = 0;
	for (long i = 1; i < n; i++)
		c += s[i] == s[i - 1];
	free(s);
	return c;
}

int main(int argc, char **argv)
{
	long n = argc > 1 ? atol(argv[1]) : 1000000;
	int repeat = argc > 2 ? atoi(argv[2]) : 7;
	const uint64_t seed = 0x5eed5eed5eed5eedULL; /* the generation's 64 bits, in hrsync */
	const char *shapes[] = {"employees", "absences", "wide"};
	const char *names[] = {"murmur", "xxh3-lib", "xxh3-inline"};
	uint64_t *out = xmalloc((size_t)n * sizeof *out);
	printf("rowhash: %ld rows, best of %d passes\n", n, repeat);
	printf("%-10s %5s %7s  %-12s %10s %8s %11s\n", "shape", "cols", "B/row", "hash", "ms", "ns/row", "collisions");
	for (size_t s = 0; s < ARRAY_LEN(shapes); s++) {
		struct rows rr, *r = &rr;
		make_rows(r, shapes[s], n);
		long bytes = 0;
		for (long i = 0; i < n * r->ncols; i++)
			bytes += r->cols[i].len;
		double best[3] = {1e9, 1e9, 1e9};
		uint64_t sum = 0;
		for (int rep = 0; rep < repeat; rep++)
			for (int v = 0; v < 3; v++) { /* interleaved: a disturbance hits every variant alike */
				double t = now_s();
				if (v == 0)
					ROW_PASS(h_murmur)
				else if (v == 1)
					ROW_PASS(h_xxh3_lib)
				else
					ROW_PASS(h_xxh3_inline)
				t = now_s() - t;
				best[v] = t < best[v] ? t : best[v];
				sum += out[n / 2];
			}
		for (int v = 0; v < 3; v++) {
			if (v == 0)
				ROW_PASS(h_murmur)
			else if (v == 1)
				ROW_PASS(h_xxh3_lib)
			else
				ROW_PASS(h_xxh3_inline)
			printf("%-10s %5d %7ld  %-12s %10.1f %8.1f %11ld\n", shapes[s], r->ncols, bytes / n, names[v],
			       best[v] * 1e3, best[v] * 1e9 / (double)n, collisions(out, n));
		}
		fprintf(stderr, "(checksum %llx)\n", (unsigned long long)sum);
		free(r->cols);
		free(r->arena);
	}
	free(out);
	return 0;
}
