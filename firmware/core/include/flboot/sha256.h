/* flboot/sha256.h - SHA-256 (FIPS 180-4), freestanding, shared by the host
 * library and the bootloader. Tested against the NIST vectors. */
#ifndef FLBOOT_SHA256_H
#define FLBOOT_SHA256_H
#include <stddef.h>
#include <stdint.h>
/* The context is `struct flboot_sha256` or `flboot_sha256_ctx`. (A typedef
 * named flboot_sha256 cannot coexist with the one-shot function of that name:
 * C gives typedefs and functions one namespace.) */
typedef struct flboot_sha256 {
	uint32_t state[8];
	uint64_t bytes;
	uint8_t block[64];
	uint32_t fill;
} flboot_sha256_ctx;
#define FLBOOT_SHA256_SIZE 32u
/** Start a hash. */
void flboot_sha256_init(flboot_sha256_ctx *ctx);
/** Add len bytes (any chunking; len may be 0). */
void flboot_sha256_update(flboot_sha256_ctx *ctx, const void *data, size_t len);
/** Write the digest and wipe the context (init again to reuse it). */
void flboot_sha256_final(flboot_sha256_ctx *ctx, uint8_t out[32]);
/** One-shot convenience. */
void flboot_sha256(const void *data, size_t len, uint8_t out[32]);
#endif
