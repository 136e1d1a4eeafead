/* encrypt.c - seal image payloads with libsodium (encrypt.h). */
#include <stdlib.h>
#include <string.h>

#include <sodium.h>
#include <zlib.h>

#include "encrypt.h"
#include "error_internal.h"
#include "flboot/seal.h"

/* Raw deflate of one block; 0 when it does not get smaller. */
static size_t deflate_block(const uint8_t *in, size_t len, uint8_t *out, size_t cap)
{
	z_stream z;
	size_t n = 0;

	memset(&z, 0, sizeof z);
	if (deflateInit2(&z, 9, Z_DEFLATED, -15, 9, Z_DEFAULT_STRATEGY) != Z_OK)
		return 0;
	z.next_in = (Bytef *)in;
	z.avail_in = (uInt)len;
	z.next_out = out;
	z.avail_out = (uInt)cap;
	if (deflate(&z, Z_FINISH) == Z_STREAM_END)
		n = cap - z.avail_out;
	deflateEnd(&z);
	return n && n < len ? n : 0;
}

int flasher__seal_payload(const uint8_t key[32], const flboot_image_header *h, const uint8_t nonce[16],
                          const uint8_t *payload, size_t len, uint8_t **out, size_t *out_len)
{
	size_t blocks = (len + FLBOOT_SEAL_BLOCK - 1) / FLBOOT_SEAL_BLOCK;
	size_t cap = blocks * (2 + FLBOOT_SEAL_BLOCK + FLBOOT_SEAL_OVERHEAD), pos = 0;
	uint8_t *buf, inner[1 + FLBOOT_SEAL_BLOCK], packed[FLBOOT_SEAL_BLOCK];

	if (sodium_init() < 0)
		return flasher__error(FLASHER_EIO, "libsodium does not initialise");
	buf = malloc(cap ? cap : 1);
	if (!buf)
		return flasher__error(FLASHER_ENOMEM, "out of memory sealing %zu bytes", len);
	for (size_t i = 0; i < blocks; i++) {
		size_t off = i * FLBOOT_SEAL_BLOCK, n = len - off < FLBOOT_SEAL_BLOCK ? len - off : FLBOOT_SEAL_BLOCK;
		size_t z = deflate_block(payload + off, n, packed, sizeof packed), inner_len;
		uint8_t nonce24[24], ad[sizeof *h + 4];
		unsigned long long sealed;

		if (z) {
			inner[0] = FLBOOT_SEAL_DEFLATE;
			memcpy(inner + 1, packed, z);
			inner_len = 1 + z;
		} else {
			inner[0] = FLBOOT_SEAL_RAW;
			memcpy(inner + 1, payload + off, n);
			inner_len = 1 + n;
		}
		memcpy(nonce24, nonce, 16);
		for (int b = 0; b < 8; b++)
			nonce24[16 + b] = (uint8_t)((uint64_t)i >> (8 * b));
		memcpy(ad, h, sizeof *h);
		for (int b = 0; b < 4; b++)
			ad[sizeof *h + b] = (uint8_t)((uint32_t)i >> (8 * b));
		crypto_aead_xchacha20poly1305_ietf_encrypt(buf + pos + 2, &sealed, inner, inner_len, ad, sizeof ad, NULL,
		                                           nonce24, key);
		buf[pos] = (uint8_t)sealed;
		buf[pos + 1] = (uint8_t)(sealed >> 8);
		pos += 2 + (size_t)sealed;
	}
	sodium_memzero(inner, sizeof inner);
	sodium_memzero(packed, sizeof packed);
	*out = buf;
	*out_len = pos;
	return 0;
}
