/* flboot/aead.h - XChaCha20-Poly1305 (IETF construction, as libsodium's
 * crypto_aead_xchacha20poly1305_ietf), decryption only, freestanding: the
 * bootloader opens the encrypted blocks of an image as they arrive, one
 * block in RAM at a time, and programs only what authenticated. Tested
 * against libsodium in tests/codec. */
#ifndef FLBOOT_AEAD_H
#define FLBOOT_AEAD_H
#include <stddef.h>
#include <stdint.h>

#define FLBOOT_AEAD_KEY_SIZE 32u
#define FLBOOT_AEAD_NONCE_SIZE 24u
#define FLBOOT_AEAD_TAG_SIZE 16u

/** Open clen bytes of ciphertext (the last 16 are the tag) into m
 *  (clen - 16 bytes; m may equal c). 0, or -1 when it does not
 *  authenticate (m is then wiped). */
int flboot_aead_open(uint8_t *m, const uint8_t *c, size_t clen, const uint8_t *ad, size_t adlen,
                     const uint8_t nonce[24], const uint8_t key[32]);
#endif
