/*
 * url — see url.h.
 */
#include "url.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ref.h"
#include "secret.h"

static bool unreserved(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
	       c == '.' || c == '~';
}

void url_encode_to(struct sb *b, const char *s, bool segment)
{
	static const char hex[] = "0123456789ABCDEF";
	for (const unsigned char *p = (const unsigned char *)s; p && *p; p++) {
		if (unreserved(*p) || (segment && (*p == ':' || *p == '@'))) {
			sb_putc(b, (char)*p);
		} else {
			sb_putc(b, '%');
			sb_putc(b, hex[*p >> 4]);
			sb_putc(b, hex[*p & 15]);
		}
	}
}

char *url_encode(const char *s)
{
	struct sb b = {0};
	sb_puts(&b, "");
	url_encode_to(&b, s, false);
	return sb_steal(&b);
}

void url_query(struct sb *b, const char *const *query)
{
	for (size_t i = 0; query && query[i]; i += 2) {
		if (!query[i + 1])
			continue;
		sb_putc(b, b->s && strchr(b->s, '?') ? '&' : '?');
		url_encode_to(b, query[i], false);
		sb_putc(b, '=');
		url_encode_to(b, query[i + 1], false);
	}
}

char *url_expand(const char *tpl, const char *id, const char *sub, const char *const *query)
{
	struct sb b = {0};
	sb_puts(&b, "");
	for (const char *p = tpl; *p;) {
		size_t skip = str_has_prefix(p, "{id}") ? 4 : str_has_prefix(p, "{sub}") ? 5 : 0;
		if (!skip) {
			sb_putc(&b, *p++);
			continue;
		}
		const char *v = skip == 4 ? id : sub;
		if (!v || !*v) {
			sb_free(&b);
			return NULL; /* an empty segment would name another resource */
		}
		if (streq(v, ".") || streq(v, ".."))
			sb_puts(&b, v[1] ? "%2E%2E" : "%2E"); /* a step up the path, else */
		else
			url_encode_to(&b, v, true);
		p += skip;
	}
	url_query(&b, query);
	return sb_steal(&b);
}

void form_add(struct sb *b, const char *k, const char *v)
{
	if (b->len)
		sb_putc(b, '&');
	url_encode_to(b, k, false);
	sb_putc(b, '=');
	url_encode_to(b, v, false);
}

/* ---- ids ---- */

static bool digits(const char *id)
{
	size_t n = strspn(id, "0123456789");
	return n >= 1 && n <= 20 && !id[n];
}

static bool token(const char *id)
{
	static const char ok[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._:-";
	size_t n = strspn(id, ok);
	return n >= 1 && n <= 128 && !id[n] && !streq(id, ".") && !streq(id, "..");
}

bool id_valid(unsigned shapes, const char *id)
{
	if (!id)
		return false;
	if (!shapes)
		shapes = ID_TOKEN;
	return ((shapes & ID_DIGITS) && digits(id)) || ((shapes & ID_UUID) && uuid_valid(id)) ||
	       ((shapes & ID_TOKEN) && token(id));
}

const char *id_shape_name(unsigned shapes)
{
	switch (shapes) {
	case ID_DIGITS: return "digits";
	case ID_UUID: return "a UUID";
	case ID_DIGITS | ID_UUID: return "digits or a UUID";
	default: return "at most 128 letters, digits and . _ : -";
	}
}

char *id_shown(const char *id)
{
	struct sb b = {0};
	sb_putc(&b, '\'');
	size_t i = 0;
	for (; id && id[i] && i < 40; i++)
		sb_putc(&b, id[i] >= 0x20 && id[i] < 0x7f ? id[i] : '?');
	sb_puts(&b, id && id[i] ? "…'" : "'");
	secret_redact(b.s); /* an "id" may be a key the platform echoed */
	return sb_steal(&b);
}
