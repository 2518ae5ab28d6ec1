/*
 * fuzz_json — platform answers: jv_parse(), jv_dumps(), jv_path(), jv_id_text(),
 * platform_message() (connector.h, with each connector's envelope) and page_read() in every
 * paging style (kit.h), on text a platform or a proxy could send.
 *
 * Input: the first line is a path for jv_path() ("data[0].id"); the rest is the body.
 * platform_message() also gets the whole input, as a body that is not JSON.
 *
 * Properties:
 *  - round trip: when jv_parse(x) succeeds, jv_parse(jv_dumps(x)) succeeds and equals x,
 *    and jv_copy(x) dumps to the same bytes;
 *  - jv_parse() rejects invalid UTF-8 (json.h): every string and key it returns is UTF-8;
 *  - jv_from_id(s) and jv_id_text() are inverse for non-empty ids;
 *  - platform_message() returns UTF-8 on one line (it ends up in one log line);
 *  - page_read() gives a list or an error, and follows a next link only as a path under
 *    base_url (the credentials go nowhere else).
 */
#include "fuzz.h"

#include "kit.h"
#include "json.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fuzz_setup(false);
	return 0;
}

static void check_utf8(const struct jv *v)
{
	switch (v->t) {
	case JV_STR:
		if (FUZZ_KNOWN_BUG(1))
			break;
		FUZZ_CHECK(utf8_valid(v->u.str.s, v->u.str.len), "jv_parse accepted a string that is not UTF-8");
		break;
	case JV_ARR:
		for (size_t i = 0; i < v->u.arr.n; i++)
			check_utf8(v->u.arr.v[i]);
		break;
	case JV_OBJ:
		for (size_t i = 0; i < v->u.obj.n; i++) {
			FUZZ_CHECK(FUZZ_KNOWN_BUG(1) || utf8_valid(v->u.obj.k[i], strlen(v->u.obj.k[i])),
				   "jv_parse accepted a key that is not UTF-8");
			check_utf8(v->u.obj.v[i]);
		}
		break;
	default:
		break;
	}
}

/* The kit's reading, then each connector's own envelope. */
static void check_message(const char *body, size_t len)
{
	const char *const *names = connector_type_names();
	for (size_t i = 0; i == 0 || names[i - 1]; i++) {
		const struct connector_type *t = i ? connector_type_find(names[i - 1]) : NULL;
		char *msg = platform_message(t, body, len);
		if (!msg)
			continue;
		FUZZ_CHECK(FUZZ_KNOWN_BUG(1) || utf8_valid(msg, strlen(msg)),
			   "platform_message returned bytes that are not UTF-8");
		FUZZ_CHECK(FUZZ_KNOWN_BUG(6) || !fuzz_has_ctrl_newline(msg), "platform_message returned several lines: \"%s\"",
			   msg);
		free(msg);
	}
}

/*
 * A platform's page read in every paging style, twice (as page 1 and page 2): a list or an
 * error, and a next link followed only as a path under base_url.
 */
static void check_pages(const struct jv *v)
{
	static const struct pager styles[] = {
		{.style = PAGE_NUMBER, .param = "page", .first = 1, .pages = "metadata.pagination.pages|metadata.pages"},
		{.style = PAGE_OFFSET, .param = "offset", .size_param = "limit", .size = 2, .total = "meta.total"},
		{.style = PAGE_AS_OFFSET, .param = "offset", .first = 1, .size_param = "limit", .size = 2},
		{.style = PAGE_CURSOR, .param = "after", .next = "next"},
		{.style = PAGE_NEXT_LINK, .size_param = "page[size]", .size = 30, .items = "data|_data", .next = "links.next"},
		{.style = PAGE_ONE},
	};
	for (size_t i = 0; i < sizeof styles / sizeof styles[0]; i++) {
		struct page_state ps = {.base = "https://api.example.com/v1"};
		for (int n = 0; n < 2; n++) {
			const struct jv *items = NULL;
			bool more = false;
			char *err = NULL;
			bool ok = page_read(&styles[i], &ps, v, &items, &more, &err);
			FUZZ_CHECK(ok ? items && items->t == JV_ARR && !err : err != NULL, "page_read: a list or an error");
			FUZZ_CHECK(!ok || !more || styles[i].style != PAGE_NEXT_LINK || (ps.next && ps.next[0] == '/'),
				   "page_read follows a next link off the base URL: %s", ps.next ? ps.next : "(none)");
			free(page_path(&styles[i], &ps, "/x?y=1"));
			free(err);
			if (!ok || !more)
				break;
		}
		page_state_free(&ps);
	}
}

static void check_id(const struct jv *v)
{
	char *id = jv_id_text(v);
	if (!id)
		return;
	if (*id) {
		struct jv *back = jv_from_id(id);
		char *again = jv_id_text(back);
		FUZZ_CHECK(again && !strcmp(again, id), "jv_id_text(jv_from_id(\"%s\")) gives \"%s\"", id,
			   again ? again : "(null)");
		free(again);
		jv_free(back);
	}
	free(id);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fz in = {data, size};
	char *path = fz_line(&in);
	size_t len;
	char *body = fz_rest(&in, &len);

	char err[256];
	struct jv *v = jv_parse(body, len, err, sizeof err);
	if (v) {
		check_utf8(v);
		char *text = jv_dumps(v);
		struct jv *back = jv_parse(text, strlen(text), err, sizeof err);
		FUZZ_CHECK(back, "jv_dumps output does not parse (%s): %s", err, text);
		FUZZ_CHECK(jv_equal(v, back), "parse(dump(x)) differs from x: %s", text);
		struct jv *copy = jv_copy(v);
		char *text2 = jv_dumps(copy);
		FUZZ_CHECK(!strcmp(text, text2), "a copy dumps differently");
		free(text2);
		jv_free(copy);
		jv_free(back);
		free(text);

		const struct jv *at = jv_path(v, path);
		if (at) {
			check_id(at);
			free(jv_scalar_text(at));
		}
		check_id(v);
		check_pages(v);
		if (v->t == JV_OBJ)
			for (size_t i = 0; i < v->u.obj.n; i++) {
				const struct jv *x = jv_path(v, v->u.obj.k[i]);
				/* A key holding '.' or '[' is not reachable by path; the others are. */
				if (!strpbrk(v->u.obj.k[i], ".[") && v->u.obj.k[i][0])
					FUZZ_CHECK(x == jv_obj_get(v, v->u.obj.k[i]), "jv_path(\"%s\") misses its member",
						   v->u.obj.k[i]);
			}
		jv_free(v);
	} else {
		FUZZ_CHECK(err[0], "jv_parse failed without a reason");
	}
	check_message(body, len);
	check_message((const char *)data, size);

	/* Ids the other way: any text without NUL. */
	if (*path) {
		struct jv *id = jv_from_id(path);
		check_id(id);
		jv_free(id);
	}
	free(body);
	free(path);
	return 0;
}
