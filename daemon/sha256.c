/*
 * sha256 — see sha256.h. The digest is fetched from libcrypto's default provider once per
 * process (an implicit fetch on every EVP_DigestInit_ex costs a lock and a lookup);
 * sha256_hex() reuses one context. hrsync hashes from one thread only.
 * Failures of libcrypto here are out-of-memory or a broken installation: abort, as xmalloc does.
 */
#include "sha256.h"

#include <stdio.h>
#include <stdlib.h>

static void crypto_fail(const char *what)
{
	fprintf(stderr, "hrsync: libcrypto: %s failed\n", what);
	abort();
}

static const EVP_MD *sha256_md(void)
{
	static EVP_MD *md;
	if (!md && !(md = EVP_MD_fetch(NULL, "SHA256", NULL)))
		crypto_fail("fetching SHA256");
	return md;
}

void sha256_init(struct sha256 *c)
{
	c->ctx = EVP_MD_CTX_new();
	if (!c->ctx || !EVP_DigestInit_ex(c->ctx, sha256_md(), NULL))
		crypto_fail("EVP_DigestInit_ex");
}

void sha256_update(struct sha256 *c, const void *data, size_t n)
{
	if (!EVP_DigestUpdate(c->ctx, data, n))
		crypto_fail("EVP_DigestUpdate");
}

void sha256_final(struct sha256 *c, unsigned char out[32])
{
	if (!EVP_DigestFinal_ex(c->ctx, out, NULL))
		crypto_fail("EVP_DigestFinal_ex");
	EVP_MD_CTX_free(c->ctx);
	c->ctx = NULL;
}

void sha256_hex(const void *data, size_t n, char out[65])
{
	static EVP_MD_CTX *ctx;
	static const char hex[] = "0123456789abcdef";
	unsigned char d[32];
	if (!ctx && !(ctx = EVP_MD_CTX_new()))
		crypto_fail("EVP_MD_CTX_new");
	if (!EVP_DigestInit_ex(ctx, sha256_md(), NULL) || !EVP_DigestUpdate(ctx, data, n) ||
	    !EVP_DigestFinal_ex(ctx, d, NULL))
		crypto_fail("SHA-256");
	for (int i = 0; i < 32; i++) {
		out[2 * i] = hex[d[i] >> 4];
		out[2 * i + 1] = hex[d[i] & 15];
	}
	out[64] = '\0';
}
