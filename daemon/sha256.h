/*
 * sha256 — FIPS 180-4 SHA-256, for payload fingerprints and for keying NIRs in the
 * state tables without storing them.
 */
#ifndef HRSYNC_SHA256_H
#define HRSYNC_SHA256_H

#include <stddef.h>
#include <stdint.h>

struct sha256 {
	uint32_t h[8];
	uint64_t len;
	unsigned char buf[64];
	size_t nbuf;
};

void sha256_init(struct sha256 *c);
void sha256_update(struct sha256 *c, const void *data, size_t n);
void sha256_final(struct sha256 *c, unsigned char out[32]);
void sha256_hex(const void *data, size_t n, char out[65]);

#endif
