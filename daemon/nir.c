/*
 * nir — see nir.h.
 */
#include "nir.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

int nir_key(const char *b)
{
	/* 13 characters: digits, except positions 5-6 (0-based) may be 2A or 2B. */
	unsigned long long num = 0;
	for (int i = 0; i < 13; i++) {
		char c = b[i];
		if (i == 6 && b[5] == '2' && (c == 'A' || c == 'B')) {
			/* 2A -> 19, 2B -> 18: the tens digit changes too. */
			num = num - 2; /* undo the '2' already added in the tens place */
			num = num + 1;
			num = num * 10 + (c == 'A' ? 9 : 8);
			continue;
		}
		if (!isdigit((unsigned char)c))
			return -1;
		num = num * 10 + (unsigned)(c - '0');
	}
	return (int)(97 - num % 97);
}

enum nir_status nir_check(const char *in, char norm[16])
{
	char buf[16];
	size_t n = 0;
	for (const char *p = in; *p; p++) {
		if (*p == ' ' || *p == '\t' || *p == '.' || *p == '-')
			continue;
		if (n >= 15)
			return NIR_BAD_LENGTH;
		buf[n++] = (char)toupper((unsigned char)*p);
	}
	if (n != 15)
		return NIR_BAD_LENGTH;
	buf[15] = '\0';
	for (int i = 0; i < 15; i++) {
		bool corsica = i == 6 && buf[5] == '2' && (buf[6] == 'A' || buf[6] == 'B');
		if (!corsica && !isdigit((unsigned char)buf[i]))
			return NIR_BAD_CHAR;
	}
	/* Sex: 1 or 2; 3/4 and 7/8 are provisional numbers, still valid. */
	if (!strchr("123478", buf[0]))
		return NIR_BAD_SEX;
	int month = (buf[3] - '0') * 10 + (buf[4] - '0');
	if (!((month >= 1 && month <= 12) || (month >= 20 && month <= 42) || (month >= 50 && month <= 99)))
		return NIR_BAD_MONTH;
	int key = (buf[13] - '0') * 10 + (buf[14] - '0');
	if (nir_key(buf) != key)
		return NIR_BAD_KEY;
	memcpy(norm, buf, 16);
	return NIR_OK;
}

const char *nir_status_text(enum nir_status st)
{
	switch (st) {
	case NIR_OK: return "valid";
	case NIR_BAD_LENGTH: return "a NIR has 15 characters (13 + a 2-digit key)";
	case NIR_BAD_CHAR: return "a NIR holds only digits (and 2A/2B for Corsica)";
	case NIR_BAD_SEX: return "a NIR starts with 1 or 2 (3, 4, 7 or 8 for a provisional number)";
	case NIR_BAD_MONTH: return "the birth month in the NIR is impossible";
	case NIR_BAD_KEY: return "the NIR's key does not match (97 - number mod 97)";
	}
	return "invalid";
}

void nir_mask(const char *value, char *out, unsigned n)
{
	char digits[32];
	unsigned k = 0;
	for (const char *p = value; *p && k + 1 < sizeof digits; p++)
		if (*p != ' ' && *p != '\t' && *p != '.' && *p != '-')
			digits[k++] = *p;
	digits[k] = '\0';
	if (k < 5) {
		snprintf(out, n, "***");
		return;
	}
	snprintf(out, n, "%c %c%c %c%c ** *** *** **", digits[0], digits[1], digits[2], digits[3], digits[4]);
}
