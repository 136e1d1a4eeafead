/* flboot/sha256.h - SHA-256 (FIPS 180-4), freestanding, shared by the host
 * library and the bootloader. Tested against the NIST vectors. */
#ifndef FLBOOT_SHA256_H
#define FLBOOT_SHA256_H
#include <stddef.h>
#include <stdint.h>
typedef struct flboot_sha256 {
	uint32_t state[8];
	uint64_t bytes;
	uint8_t block[64];
	uint32_t fill;
} flboot_sha256;
void flboot_sha256_init(flboot_sha256 *ctx);
void flboot_sha256_update(flboot_sha256 *ctx, const void *data, size_t len);
void flboot_sha256_final(flboot_sha256 *ctx, uint8_t out[32]);
/** One-shot convenience. */
void flboot_sha256(const void *data, size_t len, uint8_t out[32]);
#endif
