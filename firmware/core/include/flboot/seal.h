/*
 * flboot/seal.h - encrypted images: the format of a sealed DATA block.
 *
 * An encrypted image (header flag FLBOOT_IMG_ENCRYPTED) carries, in its
 * header area after the signature block, an encryption block naming the
 * plaintext block size and a random nonce base. Its payload travels as
 * sealed blocks: block i holds plaintext bytes [i * block_size, ...), first
 * compressed (deflate, when that is smaller) and then sealed with
 * XChaCha20-Poly1305 under the product key:
 *
 *   nonce = nonce_base (16 bytes) || le64(i)
 *   ad    = the 128-byte image header || le32(i)
 *   sealed plaintext = 1 byte kind (0 raw, 1 deflate) || content
 *
 * The unit opens each block in RAM and programs only what authenticated,
 * so flash holds plaintext that the header's SHA-256 (and signature) then
 * check; a block never opens at another index, in another image, or under
 * another key. Sealing happens once, at pack time (the host never holds
 * the key), so the sealed blocks are fixed: one DATA frame carries one
 * whole sealed block.
 */
#ifndef FLBOOT_SEAL_H
#define FLBOOT_SEAL_H
#include <stdint.h>

#include "flboot/image.h"
#include "flboot/trust.h"

#define FLBOOT_IMG_ENCRYPTED 0x01u /* image header flags */
#define FLBOOT_ENCBLOCK_OFFSET (FLBOOT_SIGBLOCK_OFFSET + (uint32_t)sizeof(flboot_sigblock))
#define FLBOOT_ENCBLOCK_MAGIC 0x4E454C46u /* "FLEN" */
#define FLBOOT_SEAL_BLOCK 1024u           /* plaintext bytes per sealed block */
#define FLBOOT_SEAL_OVERHEAD 17u          /* kind byte + tag */
#define FLBOOT_SEAL_RAW 0u
#define FLBOOT_SEAL_DEFLATE 1u

typedef struct __attribute__((packed)) flboot_encblock {
	uint32_t magic;      /* FLBOOT_ENCBLOCK_MAGIC */
	uint32_t block_size; /* FLBOOT_SEAL_BLOCK */
	uint8_t nonce[16];   /* random per image */
} flboot_encblock;
_Static_assert(FLBOOT_ENCBLOCK_OFFSET + sizeof(flboot_encblock) <= FLBOOT_IMAGE_HEADER_AREA, "fits the area");

/** Open sealed block `index` (in, in_len bytes; opened in place, so in is
 *  clobbered) into out (out_cap >= block_size). *out_len = plaintext bytes.
 *  0, FLBOOT_E_DECRYPT (no key, or it does not authenticate: why says
 *  which) or FLBOOT_E_DECOMPRESS. */
int flboot_seal_open(const flboot_trust *t, const flboot_image_header *h, const flboot_encblock *e, uint32_t index,
                     uint8_t *in, uint32_t in_len, uint8_t *out, uint32_t out_cap, uint32_t *out_len,
                     const char **why);
#endif
