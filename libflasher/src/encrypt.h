/* encrypt.h - sealing an image's payload for an encrypted package
 * (flboot/seal.h describes the format the unit opens). */
#ifndef FLASHER_ENCRYPT_H
#define FLASHER_ENCRYPT_H
#include <stddef.h>
#include <stdint.h>

#include "flboot/image.h"

/** Seal payload (len bytes) of the image with header h (the final header:
 *  its bytes are bound into every block) under key with nonce base nonce.
 *  Output: for each block, le16 sealed length then the sealed bytes;
 *  malloc'd into *out (caller frees). 0 or a FLASHER_E* code. */
int flasher__seal_payload(const uint8_t key[32], const flboot_image_header *h, const uint8_t nonce[16],
                          const uint8_t *payload, size_t len, uint8_t **out, size_t *out_len);
#endif
