/*
 * diag — see diag.h.
 */
#include "diag.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

static void add(struct diag *d, int is_error, const char *file, int line, int col, const char *fmt, va_list ap)
{
	grow(&d->msgs, &d->cap, d->n + 1, sizeof *d->msgs);
	struct diag_msg *m = &d->msgs[d->n++];
	struct sb b = {0};
	sb_vprintf(&b, fmt, ap);
	m->file = xstrdup(file);
	m->line = line;
	m->col = col;
	m->is_error = is_error;
	m->text = sb_steal(&b);
	if (is_error)
		d->errors++;
	else
		d->warnings++;
}

void diag_error(struct diag *d, const char *file, int line, int col, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	add(d, 1, file, line, col, fmt, ap);
	va_end(ap);
}

void diag_warn(struct diag *d, const char *file, int line, int col, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	add(d, 0, file, line, col, fmt, ap);
	va_end(ap);
}

static int cmp(const void *a, const void *b)
{
	const struct diag_msg *x = a, *y = b;
	int c = strcmp(x->file ? x->file : "", y->file ? y->file : "");
	if (c)
		return c;
	if (x->line != y->line)
		return x->line - y->line;
	return x->col - y->col;
}

void diag_print(struct diag *d, FILE *out)
{
	/* A stable sort keeps several messages at one position in the order found. */
	for (size_t i = 1; i < d->n; i++)
		for (size_t j = i; j > 0 && cmp(&d->msgs[j - 1], &d->msgs[j]) > 0; j--) {
			struct diag_msg t = d->msgs[j];
			d->msgs[j] = d->msgs[j - 1];
			d->msgs[j - 1] = t;
		}
	for (size_t i = 0; i < d->n; i++) {
		struct diag_msg *m = &d->msgs[i];
		const char *sev = m->is_error ? "" : "warning: ";
		if (m->file && m->line > 0)
			fprintf(out, "%s:%d:%d: %s%s\n", m->file, m->line, m->col, sev, m->text);
		else if (m->file)
			fprintf(out, "%s: %s%s\n", m->file, sev, m->text);
		else
			fprintf(out, "hrsync: %s%s\n", sev, m->text);
	}
}

void diag_free(struct diag *d)
{
	for (size_t i = 0; i < d->n; i++) {
		free(d->msgs[i].file);
		free(d->msgs[i].text);
	}
	free(d->msgs);
	memset(d, 0, sizeof *d);
}

const char *diag_suggest(const char *word, const char *const *candidates, size_t n)
{
	const char *best = NULL;
	int bestd = 100;
	size_t wl = strlen(word);
	for (size_t i = 0; i < n; i++) {
		if (!candidates[i])
			continue;
		int dist = edit_distance(word, candidates[i]);
		if (dist < bestd) {
			bestd = dist;
			best = candidates[i];
		}
	}
	/* Close enough: one edit for short words, a third of the length for longer ones. */
	int limit = wl <= 4 ? 1 : (int)(wl / 3) + 1;
	if (limit > 3)
		limit = 3;
	return bestd <= limit ? best : NULL;
}
