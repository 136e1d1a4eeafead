/**
 * @file flasher/sign.h
 * @brief Vendor signing keys: generate, load, and sign/check image headers.
 *
 * A vendor signs each image of a package with an ed25519 key (libsodium).
 * The unit holds the public keys (in its write-protected bootloader sector)
 * and refuses an image that no held key signed (docs/package-format.md,
 * "Signing"; docs/bootloader.md, "Trust").
 *
 * Key files are text, one line of tag and one of hex:
 *   private  `flasher-ed25519-secret-key v1` + 64 hex digits (the seed), mode 0600
 *   public   `flasher-ed25519-public-key v1` + 64 hex digits
 * A raw 32-byte file is also accepted as a public key (what a unit stores).
 *
 * Private keys can come from outside the build machine's disk: a spec
 * `fd:N` reads an inherited file descriptor, `env:NAME` an environment
 * variable holding the key file's text (a CI secret), anything else is a
 * path.
 *
 * Thread rules: the functions are reentrant; a flasher_key is not shared
 * between threads without a lock.
 */
#ifndef FLASHER_SIGN_H
#define FLASHER_SIGN_H
#include <stddef.h>
#include <stdint.h>

#include "flasher/common.h"
#include "flasher/package.h"

#ifdef __cplusplus
extern "C" {
#endif

#define FLASHER_KEY_ID_SIZE 8    /**< key id: first 8 bytes of SHA-256(public key) @since 0.4 */
#define FLASHER_PUBKEY_SIZE 32   /**< ed25519 public key @since 0.4 */
#define FLASHER_SIGNATURE_SIZE 64/**< ed25519 signature @since 0.4 */

/** A loaded private key (opaque; memory locked and wiped on free). @since 0.4 */
typedef struct flasher_key flasher_key;

/** Write a new key pair: `path` (private, created 0600, never overwritten)
 *  and `path.pub`. @since 0.4 */
FLASHER_API int flasher_keygen(const char *path);

/** Load a private key from a path, `fd:N` or `env:NAME`. Caller frees it
 *  with flasher_key_free(). @since 0.4 */
FLASHER_API int flasher_key_load(const char *spec, flasher_key **out);

/** Free a key (NULL is fine); the secret is wiped. @since 0.4 */
FLASHER_API void flasher_key_free(flasher_key *key);

/** The public key of a loaded private key. @since 0.4 */
FLASHER_API void flasher_key_public(const flasher_key *key, uint8_t pub[FLASHER_PUBKEY_SIZE]);

/** Read a public key file (the text form, or 32 raw bytes). @since 0.4 */
FLASHER_API int flasher_pubkey_load(const char *path, uint8_t pub[FLASHER_PUBKEY_SIZE]);

/** The key id of a public key. @since 0.4 */
FLASHER_API void flasher_key_id(const uint8_t pub[FLASHER_PUBKEY_SIZE], uint8_t id[FLASHER_KEY_ID_SIZE]);

/** Sign len bytes of msg. @since 0.4 */
FLASHER_API int flasher_key_sign(const flasher_key *key, const void *msg, size_t len,
                                 uint8_t sig[FLASHER_SIGNATURE_SIZE]);

/** 0 when sig is pub's signature of msg, FLASHER_EVERIFY otherwise. @since 0.4 */
FLASHER_API int flasher_signature_check(const uint8_t pub[FLASHER_PUBKEY_SIZE], const void *msg, size_t len,
                                        const uint8_t sig[FLASHER_SIGNATURE_SIZE]);

/** The product's encryption key (XChaCha20-Poly1305, 32 bytes), for
 *  encrypted packages and for provisioning units. Text file:
 *  `flasher-xchacha20poly1305-key v1` + 64 hex digits, mode 0600. @since 0.4 */
#define FLASHER_ENCKEY_SIZE 32
/** Write a new random encryption key to path (0600, never overwritten). @since 0.4 */
FLASHER_API int flasher_enckey_generate(const char *path);
/** Load an encryption key from a path, `fd:N` or `env:NAME`. @since 0.4 */
FLASHER_API int flasher_enckey_load(const char *spec, uint8_t key[FLASHER_ENCKEY_SIZE]);

/** Signatures a package carries at most per block. @since 0.4 */
#define FLASHER_MAX_SIGNATURES 2

/** One signature found in a package. @since 0.4 */
typedef struct flasher_signer {
	uint8_t key_id[FLASHER_KEY_ID_SIZE];
	/** 1: verifies with the key given to flasher_package_signatures();
	 *  0: carries that key's id but does not verify (the signed bytes or the
	 *  signature were changed); -1: not checked (no key given, or another
	 *  key's signature). */
	int valid;
} flasher_signer;

/** Who signed what in a package (docs/signing.md): the package signature
 *  block over the whole file, and each image's signature block, which is
 *  what a unit checks. Plain data; the caller owns it. @since 0.4 */
typedef struct flasher_signatures {
	size_t package_count;                     /**< 0: no package signature block */
	flasher_signer package[FLASHER_MAX_SIGNATURES];
	size_t image_count;                       /**< builds in the package, package order */
	struct flasher_image_signatures {
		flasher_core core;
		uint32_t slot;                        /**< slot the build is linked for, 0 = any */
		size_t count;                         /**< 0: the image is unsigned */
		flasher_signer signer[FLASHER_MAX_SIGNATURES];
	} image[4];
} flasher_signatures;

/** Report the signatures of an opened package; with pub (32 bytes, may be
 *  NULL) also check every signature that carries pub's key id. Returns 0
 *  (the report says what holds), or FLASHER_EFORMAT for a malformed image
 *  signature block. @since 0.4 */
FLASHER_API int flasher_package_signatures(const flasher_package *pkg, const uint8_t *pub, flasher_signatures *out);

#ifdef __cplusplus
}
#endif
#endif
