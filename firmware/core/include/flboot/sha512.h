/* flboot/sha512.h - SHA-512 (FIPS 180-4), freestanding; the hash inside
 * ed25519 (RFC 8032). Tested against hashlib/libsodium in tests/codec. */
#ifndef FLBOOT_SHA512_H
#define FLBOOT_SHA512_H
#include <stddef.h>
#include <stdint.h>

#define FLBOOT_SHA512_SIZE 64u

typedef struct flboot_sha512 {
	uint64_t state[8];
	uint64_t bytes; /* 2^64 bytes is far beyond any flash; the length's high word stays 0 */
	uint8_t block[128];
	uint32_t fill;
} flboot_sha512_ctx;

/** Start a hash. */
void flboot_sha512_init(flboot_sha512_ctx *ctx);
/** Add len bytes (any chunking; len may be 0). */
void flboot_sha512_update(flboot_sha512_ctx *ctx, const void *data, size_t len);
/** Write the digest and wipe the context. */
void flboot_sha512_final(flboot_sha512_ctx *ctx, uint8_t out[64]);
#endif
