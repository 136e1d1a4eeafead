/* The bootloader's XChaCha20-Poly1305 opener against libsodium's sealer. */
#include <string.h>

#include <criterion/criterion.h>
#include <sodium.h>

#include "codec_util.h"
#include "flboot/aead.h"

Test(aead, opens_what_libsodium_seals_and_nothing_else)
{
	static uint8_t m[1100], c[1100 + 16], out[1100 + 16], ad[70];
	uint8_t key[32], nonce[24];
	rng r;

	cr_assert(sodium_init() >= 0);
	rng_seed(&r, 20);
	for (int n = 0; n < 1500; n++) {
		size_t len = rng_range(&r, 0, sizeof m), adlen = rng_range(&r, 0, sizeof ad);
		unsigned long long clen;
		size_t bit;

		for (size_t i = 0; i < len; i++)
			m[i] = (uint8_t)rng_u32(&r);
		for (size_t i = 0; i < adlen; i++)
			ad[i] = (uint8_t)rng_u32(&r);
		crypto_aead_xchacha20poly1305_ietf_keygen(key);
		randombytes_buf(nonce, sizeof nonce);
		crypto_aead_xchacha20poly1305_ietf_encrypt(c, &clen, m, len, ad, adlen, NULL, nonce, key);
		cr_assert_eq(clen, len + 16);
		cr_assert_eq(flboot_aead_open(out, c, clen, ad, adlen, nonce, key), 0, "case %d (%zu bytes) refused", n,
		             len);
		cr_assert(memcmp(out, m, len) == 0, "case %d decrypts wrong", n);
		/* in place */
		memcpy(out, c, clen);
		cr_assert_eq(flboot_aead_open(out, out, clen, ad, adlen, nonce, key), 0);
		cr_assert(memcmp(out, m, len) == 0);
		/* one flipped bit anywhere in ciphertext+tag, ad, nonce or key */
		bit = rng_range(&r, 0, clen * 8 - 1);
		c[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		cr_assert_eq(flboot_aead_open(out, c, clen, ad, adlen, nonce, key), -1, "flipped bit %zu opened", bit);
		c[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		if (adlen) {
			ad[0] ^= 0x80;
			cr_assert_eq(flboot_aead_open(out, c, clen, ad, adlen, nonce, key), -1, "changed ad opened");
			ad[0] ^= 0x80;
		}
		nonce[n % 24] ^= 1;
		cr_assert_eq(flboot_aead_open(out, c, clen, ad, adlen, nonce, key), -1, "wrong nonce opened");
		nonce[n % 24] ^= 1;
		key[n % 32] ^= 1;
		cr_assert_eq(flboot_aead_open(out, c, clen, ad, adlen, nonce, key), -1, "wrong key opened");
	}
	cr_assert_eq(flboot_aead_open(out, c, 15, NULL, 0, nonce, key), -1, "shorter than a tag");
}
