/* seal.c - open the sealed DATA blocks of an encrypted image
 * (flboot/seal.h). */
#include <string.h>

#include "flboot/aead.h"
#include "flboot/inflate.h"
#include "flboot/proto.h"
#include "flboot/seal.h"

int flboot_seal_open(const flboot_trust *t, const flboot_image_header *h, const flboot_encblock *e, uint32_t index,
                     uint8_t *in, uint32_t in_len, uint8_t *out, uint32_t out_cap, uint32_t *out_len,
                     const char **why)
{
	uint8_t nonce[24], ad[sizeof *h + 4];
	uint32_t n;
	long got;

	*out_len = 0;
	if (!t->has_enc_key) {
		*why = "the image is encrypted and this unit holds no decryption key";
		return FLBOOT_E_DECRYPT;
	}
	if (e->magic != FLBOOT_ENCBLOCK_MAGIC || e->block_size != FLBOOT_SEAL_BLOCK || out_cap < e->block_size) {
		*why = "the image's encryption block is malformed";
		return FLBOOT_E_DECRYPT;
	}
	if (in_len < FLBOOT_SEAL_OVERHEAD) {
		*why = "a sealed block is shorter than its tag";
		return FLBOOT_E_DECRYPT;
	}
	memcpy(nonce, e->nonce, 16);
	for (int i = 0; i < 8; i++)
		nonce[16 + i] = (uint8_t)((uint64_t)index >> (8 * i));
	memcpy(ad, h, sizeof *h);
	for (int i = 0; i < 4; i++)
		ad[sizeof *h + i] = (uint8_t)(index >> (8 * i));
	if (flboot_aead_open(in, in, in_len, ad, sizeof ad, nonce, t->enc_key) != 0) {
		*why = "a sealed block does not open with this unit's key (another product's key, or damaged)";
		return FLBOOT_E_DECRYPT;
	}
	n = in_len - FLBOOT_AEAD_TAG_SIZE - 1;
	if (in[0] == FLBOOT_SEAL_RAW) {
		if (n > out_cap) {
			*why = "a sealed block is larger than a block";
			return FLBOOT_E_DECRYPT;
		}
		memcpy(out, in + 1, n);
		*out_len = n;
		return FLBOOT_OK;
	}
	if (in[0] != FLBOOT_SEAL_DEFLATE) {
		*why = "a sealed block has an unknown kind";
		return FLBOOT_E_DECRYPT;
	}
	got = flboot_inflate(in + 1, n, out, e->block_size);
	if (got < 0) {
		*why = "a sealed block does not inflate";
		return FLBOOT_E_DECOMPRESS;
	}
	*out_len = (uint32_t)got;
	return FLBOOT_OK;
}
