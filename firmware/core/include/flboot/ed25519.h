/* flboot/ed25519.h - ed25519 signature verification (RFC 8032), freestanding,
 * for the bootloader: it holds only public keys, so there is no signing and
 * nothing secret in this code, and variable time is fine. Verification
 * follows libsodium's rules (crypto_sign_verify_detached): S must be below
 * the group order, the public key must be a canonical encoding of a point
 * that is not of small order, and R must not be of small order; the
 * equation checked is the cofactorless [S]B = R + [k]A. Tested against the
 * RFC 8032 vectors and cross-checked against libsodium in tests/codec. */
#ifndef FLBOOT_ED25519_H
#define FLBOOT_ED25519_H
#include <stddef.h>
#include <stdint.h>

#define FLBOOT_ED25519_PUBKEY_SIZE 32u
#define FLBOOT_ED25519_SIG_SIZE 64u

/** 0 when sig is a valid signature of msg by pubkey, -1 otherwise. */
int flboot_ed25519_verify(const uint8_t sig[64], const void *msg, size_t len, const uint8_t pubkey[32]);

/** The same, for a message given as a prefix and a body (the bootloader signs
 *  a header it holds in RAM plus nothing else, but the package side signs a
 *  manifest in two parts): verifies sig over prefix || body. */
int flboot_ed25519_verify2(const uint8_t sig[64], const void *prefix, size_t prefix_len, const void *body,
                           size_t body_len, const uint8_t pubkey[32]);
#endif
