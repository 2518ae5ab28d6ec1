/*
 * sha256 — SHA-256 from OpenSSL's libcrypto, for payload fingerprints, mapping and lookup
 * digests, and for keying NIRs in the state tables without storing them. libcrypto is on
 * every machine that has libcurl with TLS; its SHA-256 uses the CPU's SHA extensions.
 */
#ifndef HRSYNC_SHA256_H
#define HRSYNC_SHA256_H

#include <openssl/evp.h>
#include <stddef.h>

/* One digest in progress. sha256_init() allocates, sha256_final() frees: every init must
 * reach its final, on every path. */
struct sha256 {
	EVP_MD_CTX *ctx;
};

void sha256_init(struct sha256 *c);
void sha256_update(struct sha256 *c, const void *data, size_t n);
void sha256_final(struct sha256 *c, unsigned char out[32]);
/* The digest of n bytes as 64 lowercase hex digits and a NUL. */
void sha256_hex(const void *data, size_t n, char out[65]);

#endif
