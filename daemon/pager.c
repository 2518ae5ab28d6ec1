/*
 * pager — pagination in every style the platforms use (kit.h): the path of the next
 * page, the reading of one page with the guards integrators ask for (a page that
 * replays the last one, a next link that leaves the platform), listings read whole
 * (blocking: prepare, lookups, pull) and searches through pages within an op.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kit.h"
#include "log.h"

#define MAX_PAGES 100000        /* a listing longer than this is a loop */
#define SEARCH_PAGES 50         /* an op looks through this many pages at most */

void page_state_free(struct page_state *ps)
{
	free(ps->next);
	jv_free(ps->first);
	ps->next = NULL;
	ps->first = NULL;
}

char *page_path(const struct pager *pg, const struct page_state *ps, const char *path)
{
	if (pg->style == PAGE_NEXT_LINK && ps->n > 0)
		return xstrdup(ps->next);
	struct sb b = {0};
	sb_puts(&b, path);
	char size[24], at[24];
	snprintf(size, sizeof size, "%ld", pg->size);
	const char *param = NULL;
	switch (pg->style) {
	case PAGE_NUMBER:
	case PAGE_AS_OFFSET:
		snprintf(at, sizeof at, "%lld", pg->first + ps->n);
		param = at;
		break;
	case PAGE_OFFSET:
		snprintf(at, sizeof at, "%lld", ps->n * pg->size);
		param = at;
		break;
	case PAGE_CURSOR:
		param = ps->n > 0 ? ps->next : NULL;
		break;
	case PAGE_NEXT_LINK:
	case PAGE_ONE:
		break;
	}
	if (pg->size_param && pg->size > 0)
		url_query(&b, QUERY(pg->size_param, size));
	if (pg->param)
		url_query(&b, QUERY(pg->param, param));
	return sb_steal(&b);
}

/* A number at one of paths: an integer, or one written as a string; -1 when absent. */
static long long number_at(const struct jv *j, const char *paths)
{
	const struct jv *v = paths ? jv_path_any(j, paths) : NULL;
	long long n;
	if (v && v->t == JV_INT)
		return v->u.i;
	if (v && (v->t == JV_STR || v->t == JV_NUM) && parse_ll(v->u.str.s, &n))
		return n;
	return -1;
}

/* The next page of a cursor or a next link; false + *err when a link leaves base_url. */
static bool read_next(const struct pager *pg, struct page_state *ps, const struct jv *answer, bool *more, char **err)
{
	const struct jv *v = jv_path_any(answer, pg->next);
	const char *next = v && v->t == JV_STR && *v->u.str.s ? v->u.str.s : NULL;
	free(ps->next);
	ps->next = NULL;
	*more = next != NULL;
	if (!next)
		return true;
	if (pg->style == PAGE_CURSOR) {
		ps->next = xstrdup(next);
		return true;
	}
	/* A next link is a URL: followed only under base_url, which the credentials are for. */
	size_t bl = ps->base ? strlen(ps->base) : 0;
	if (bl && strncmp(next, ps->base, bl) == 0 && (next[bl] == '/' || next[bl] == '?')) {
		ps->next = xstrdup(next + bl);
		return true;
	}
	if (next[0] == '/' && next[1] != '/' && !strstr(next, "://")) {
		ps->next = xstrdup(next);
		return true;
	}
	*err = xstrdup("the next page's link leaves the platform's base_url; not followed");
	return false;
}

bool page_read(const struct pager *pg, struct page_state *ps, const struct jv *answer, const struct jv **items,
	       bool *more, char **err)
{
	*more = false;
	*items = jv_path_any(answer, pg->items ? pg->items : "data");
	if (!*items || (*items)->t != JV_ARR) {
		*err = xasprintf("the answer has no '%s' list", pg->items ? pg->items : "data");
		return false;
	}
	if (ps->n == 0) {
		ps->total = number_at(answer, pg->total);
		ps->pages = number_at(answer, pg->pages);
	}
	ps->n++;
	const struct jv *list = *items;
	if (list->u.arr.n == 0)
		return true;
	if (ps->first && jv_equal(ps->first, list->u.arr.v[0])) {
		*err = xasprintf("page %lld repeats the previous one; stopping to avoid a loop", ps->n);
		return false;
	}
	jv_free(ps->first);
	ps->first = jv_copy(list->u.arr.v[0]);
	switch (pg->style) {
	case PAGE_ONE:
		return true;
	case PAGE_CURSOR:
	case PAGE_NEXT_LINK:
		return read_next(pg, ps, answer, more, err);
	default: {
		long long pages = number_at(answer, pg->pages);
		*more = !(pages > 0 && ps->n >= pages) &&
			!(pg->size_param && pg->size > 0 && (long)list->u.arr.n < pg->size);
		return true;
	}
	}
}

static const struct pager *pager_of(const struct connector *c, const struct pager *pg)
{
	static const struct pager one = {.style = PAGE_ONE};
	return pg ? pg : c->type->pager ? c->type->pager : &one;
}

/* A page of a listing in (conn_lists): its items handed on, and the next page sent, if any. */
static void page_in(struct conn_get *g)
{
	struct list_read *r = g->arg;
	struct jv *j = g->answer;
	g->answer = NULL;
	if (!j) {
		r->ok = false;
		r->err = g->err;
		g->err = NULL;
		return;
	}
	const struct jv *items = NULL;
	char *why = NULL;
	bool more = false;
	r->ok = page_read(r->pg, &r->ps, j, &items, &more, &why);
	if (why)
		r->err = xasprintf("GET %s: %s", r->path, why);
	free(why);
	for (size_t i = 0; r->ok && i < items->u.arr.n; i++) {
		r->st.seen++;
		struct jv *joined = r->pg->item ? r->pg->item(items->u.arr.v[i], j) : NULL;
		bool go = r->fn(r->ud, joined ? joined : items->u.arr.v[i]);
		jv_free(joined);
		if (!go) {
			r->err = xasprintf("GET %s: stopped by the caller", r->path);
			r->ok = false;
		}
	}
	jv_free(j);
	if (r->ok && more && r->ps.n < MAX_PAGES) {
		char *p = page_path(r->pg, &r->ps, r->path);
		conn_get_send(g->c, g, p);
		free(p);
	}
}

bool conn_lists(struct list_read *reads, size_t n)
{
	struct conn_get **gets = xcalloc(n + 1, sizeof *gets);
	for (size_t i = 0; i < n; i++) {
		struct list_read *r = &reads[i];
		r->pg = pager_of(r->c, r->pg);
		r->ps = (struct page_state){.base = r->c->cfg->base_url};
		r->st = (struct list_stats){.total = -1};
		r->ok = true;
		r->err = NULL;
		r->get = (struct conn_get){.done = page_in, .arg = r};
		gets[i] = &r->get;
		char *p = page_path(r->pg, &r->ps, r->path);
		conn_get_send(r->c, &r->get, p);
		free(p);
	}
	conn_get_wait(gets, n);
	bool all = true;
	for (size_t i = 0; i < n; i++) {
		struct list_read *r = &reads[i];
		r->st.pages = r->ps.n;
		r->st.total = r->ps.total;
		page_state_free(&r->ps);
		conn_get_free(&r->get);
		all = all && r->ok;
	}
	free(gets);
	return all;
}

bool conn_list(struct connector *c, const struct pager *pg, const char *path,
	       bool (*fn)(void *ud, const struct jv *item), void *ud, struct list_stats *st, char **err)
{
	struct list_read r = {.c = c, .pg = pg, .path = path, .fn = fn, .ud = ud};
	bool ok = conn_lists(&r, 1);
	if (st)
		*st = r.st;
	if (!ok)
		*err = r.err;
	else
		free(r.err);
	return ok;
}

static bool collect(void *ud, const struct jv *item)
{
	jv_arr_push(ud, jv_copy(item));
	return true;
}

struct jv *conn_list_all(struct connector *c, const struct pager *pg, const char *path, char **err)
{
	struct jv *arr = jv_arr();
	if (conn_list(c, pg, path, collect, arr, NULL, err))
		return arr;
	jv_free(arr);
	return NULL;
}

int conn_worth_indexing(struct connector *c, const struct pager *pg, const char *path, long pending,
			long long *pages, char **err)
{
	pg = pager_of(c, pg);
	struct page_state ps = {.base = c->cfg->base_url};
	char *p = page_path(pg, &ps, path);
	struct jv *j = conn_get(c, p, err);
	free(p);
	if (!j)
		return -1;
	*pages = number_at(j, pg->pages);
	jv_free(j);
	return *pages >= 0 && *pages < pending;
}

/* ---- a search through pages, within an op ---- */

static void search_page(struct op *op);
static const struct step search_step = {.doing = "looking for the %s", .ok = search_page, .body = true};

static void search_next(struct op *op)
{
	const struct pager *pg = pager_of(op->conn, op->ent->pager);
	op_send_url(op, &search_step, "GET", page_path(pg, &op->kit.pages, op->kit.path), NULL);
}

static void search_page(struct op *op)
{
	const struct search *s = op->kit.search;
	const struct pager *pg = pager_of(op->conn, op->ent->pager);
	struct jv *page = op->answer;
	op->answer = NULL;
	const struct jv *items;
	bool more;
	char *err = NULL;
	if (!page_read(pg, &op->kit.pages, page, &items, &more, &err)) {
		op_finish(op, OPR_TRANSIENT, "looking for the %s: %s", op->ent->what ? op->ent->what : "record", err);
		free(err);
		jv_free(page);
		return;
	}
	for (size_t i = 0; i < items->u.arr.n; i++) {
		if (s->match(op, items->u.arr.v[i])) {
			s->found(op, items->u.arr.v[i]); /* may finish (and free) the op */
			jv_free(page);
			return;
		}
	}
	jv_free(page);
	if (more && op->kit.pages.n < (s->max_pages ? s->max_pages : SEARCH_PAGES))
		search_next(op);
	else
		s->absent(op);
}

void op_search(struct op *op, const struct search *s, char *url)
{
	if (!url) {
		op_finish(op, OPR_TRANSIENT, "looking for the %s: no id to look under", op->ent->what ? op->ent->what : "record");
		return;
	}
	op->kit.search = s;
	free(op->kit.path);
	op->kit.path = url;
	page_state_free(&op->kit.pages);
	memset(&op->kit.pages, 0, sizeof op->kit.pages);
	op->kit.pages.base = op->conn->cfg->base_url;
	search_next(op);
}
