/*
 * ref — see ref.h.
 */
#include "ref.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "nir.h"

bool uuid_valid(const char *s)
{
	if (strlen(s) != 36)
		return false;
	for (int i = 0; i < 36; i++) {
		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (s[i] != '-')
				return false;
		} else if (!isxdigit((unsigned char)s[i])) {
			return false;
		}
	}
	return true;
}

const char *ref_scheme_name(enum ref_scheme s)
{
	return s == REF_ERP ? "erp" : s == REF_SSN ? "ssn" : "troops";
}

bool ref_parse(const char *s, enum ref_scheme *scheme, const char **id, char nir_norm[16], char *why,
	       size_t whylen)
{
	const char *colon = strchr(s, ':');
	if (!colon) {
		snprintf(why, whylen, "a reference is scheme:id (erp:, ssn: or troops:)");
		return false;
	}
	size_t sl = (size_t)(colon - s);
	const char *v = colon + 1;
	if (!*v) {
		snprintf(why, whylen, "the reference has no id after '%.*s:'", (int)sl, s);
		return false;
	}
	if (sl == 3 && memcmp(s, "erp", 3) == 0) {
		*scheme = REF_ERP;
	} else if (sl == 3 && memcmp(s, "ssn", 3) == 0) {
		enum nir_status st = nir_check(v, nir_norm);
		if (st != NIR_OK) {
			snprintf(why, whylen, "invalid NIR in ssn: reference: %s", nir_status_text(st));
			return false;
		}
		*scheme = REF_SSN;
	} else if (sl == 6 && memcmp(s, "troops", 6) == 0) {
		if (!uuid_valid(v)) {
			snprintf(why, whylen, "a troops: reference takes a UUID");
			return false;
		}
		*scheme = REF_TROOPS;
	} else {
		snprintf(why, whylen, "unknown reference scheme '%.*s' (erp, ssn or troops)", (int)(sl > 20 ? 20 : sl), s);
		return false;
	}
	*id = v;
	return true;
}
