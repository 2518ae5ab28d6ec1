/*
 * fuzz_ref — flexible references and NIRs: ref_parse(), nir_check(), nir_key(),
 * nir_mask(), uuid_valid().
 *
 * Input: byte 0 sizes the output buffers (to exercise truncation); the rest is the text.
 *
 * Properties:
 *  - a NIR nir_check() accepts is 15 characters of digits (2A/2B at 5-6), and its key
 *    (characters 13-14) is nir_key() of the first 13; checking it again gives itself;
 *  - nir_mask() output holds at most 5 digits (sex, year, month): the rest is starred;
 *  - ref_parse() success: the id points into the input after the colon; an ssn: id is a
 *    NIR nir_check() accepts with the same normal form; a troops: id is a UUID;
 *  - ref_parse() never echoes the id of an ssn: reference in its reason.
 */
#include "fuzz.h"

#include "nir.h"
#include "ref.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fuzz_setup(false);
	return 0;
}

static void check_nir(const char *s)
{
	char norm[16];
	memset(norm, 'x', sizeof norm);
	enum nir_status st = nir_check(s, norm);
	FUZZ_CHECK(nir_status_text(st) != NULL, "no text for status %d", (int)st);
	if (st != NIR_OK)
		return;
	FUZZ_CHECK(strlen(norm) == 15, "normal form of %zu characters", strlen(norm));
	for (int i = 0; i < 15; i++) {
		bool corsica = i == 6 && norm[5] == '2' && (norm[6] == 'A' || norm[6] == 'B');
		FUZZ_CHECK(corsica || (norm[i] >= '0' && norm[i] <= '9'), "normal form holds '%c' at %d", norm[i], i);
	}
	int key = (norm[13] - '0') * 10 + (norm[14] - '0');
	FUZZ_CHECK(nir_key(norm) == key, "accepted NIR with key %d, nir_key says %d", key, nir_key(norm));
	FUZZ_CHECK(key >= 1 && key <= 97, "accepted key %d", key);
	char again[16];
	FUZZ_CHECK(nir_check(norm, again) == NIR_OK && !memcmp(again, norm, 16), "normal form not stable");
}

static void check_mask(const char *s, unsigned n)
{
	char out[80];
	memset(out, 'Z', sizeof out);
	nir_mask(s, out, n);
	if (n == 0) {
		FUZZ_CHECK(out[0] == 'Z', "nir_mask wrote into a buffer of size 0");
		return;
	}
	size_t len = strnlen(out, n);
	FUZZ_CHECK(len < n, "nir_mask output not terminated within %u bytes", n);
	FUZZ_CHECK(out[n] == 'Z' || n >= sizeof out, "nir_mask wrote past %u bytes", n);
	int digits = 0;
	for (size_t i = 0; i < len; i++)
		digits += out[i] >= '0' && out[i] <= '9';
	FUZZ_CHECK(digits <= 5, "nir_mask output \"%s\" keeps %d digits", out, digits);
}

static void check_ref(const char *s, size_t whylen)
{
	enum ref_scheme scheme = REF_ERP;
	const char *id = NULL;
	char nir[16] = "", why[200];
	memset(why, 'W', sizeof why);
	bool ok = ref_parse(s, &scheme, &id, nir, why, whylen);
	if (ok) {
		const char *colon = strchr(s, ':');
		FUZZ_CHECK(colon && id == colon + 1 && *id, "ref_parse id does not follow the colon");
		FUZZ_CHECK(ref_scheme_name(scheme) != NULL, "no name for scheme %d", (int)scheme);
		if (scheme == REF_SSN) {
			char norm[16];
			FUZZ_CHECK(nir_check(id, norm) == NIR_OK && !memcmp(norm, nir, 16),
				   "ssn: reference accepted with a NIR nir_check() refuses");
		} else if (scheme == REF_TROOPS) {
			FUZZ_CHECK(uuid_valid(id), "troops: reference accepted without a UUID");
		}
		return;
	}
	if (whylen == 0)
		return;
	FUZZ_CHECK(strnlen(why, whylen) < whylen, "reason not terminated within %zu bytes", whylen);
	FUZZ_CHECK(whylen >= sizeof why || why[whylen] == 'W', "reason written past %zu bytes", whylen);
	/* A NIR-like id (5 digits or more: the fixed texts hold none) must not be echoed. */
	size_t digits = 0;
	for (const char *p = s + 4; !strncmp(s, "ssn:", 4) && *p; p++)
		digits += *p >= '0' && *p <= '9';
	if (digits >= 5)
		FUZZ_CHECK(!strstr(why, s + 4), "the reason echoes the NIR");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fz in = {data, size};
	unsigned sizes = fz_u8(&in);
	size_t len;
	char *s = fz_rest(&in, &len);

	check_nir(s);
	check_mask(s, sizes % 40);
	check_mask(s, 64);
	check_ref(s, 1 + sizes % 160);
	check_ref(s, 160);
	char *ssn = xasprintf("ssn:%s", s);
	check_ref(ssn, 160);
	free(ssn);
	(void)uuid_valid(s);
	if (len >= 13) {
		char body[14];
		memcpy(body, s, 13);
		body[13] = '\0';
		int k = nir_key(body);
		FUZZ_CHECK(k == -1 || (k >= 1 && k <= 97), "nir_key gave %d", k);
	}
	free(s);
	return 0;
}
