/*
 * flboot/trust.h - which images this unit runs: vendor keys and signatures.
 *
 * A unit that holds public keys runs only images signed by one of them; a
 * unit without keys (no key store) runs any image whose hashes match, as
 * before. The key store lives in the last 1 KiB of the write-protected
 * bootloader sector, written at provisioning (docs/bootloader.md, "Trust").
 * The signature block sits in the image's header area right after the
 * 128-byte header; each signature covers FLBOOT_SIG_DOMAIN followed by the
 * header, whose SHA-256 covers the payload and whose fields bind the
 * product, version, security counter, load address and package set id.
 *
 * Pure functions on bytes the caller has read: no flash, no allocation.
 */
#ifndef FLBOOT_TRUST_H
#define FLBOOT_TRUST_H
#include <stdbool.h>
#include <stdint.h>

#include "flboot/image.h"

#define FLBOOT_KEYSTORE_ADDR 0x0801FC00u /* last 1 KiB of sector 0 */
#define FLBOOT_KEYSTORE_MAGIC 0x534B4C46u /* "FLKS" */
#define FLBOOT_KEYSTORE_VERSION 1u
#define FLBOOT_MAX_KEYS 2u /* the vendor's key and its successor (rotation) */

#define FLBOOT_KS_ENC_KEY 0x1u /* flags: enc_key holds the product's decryption key */

typedef struct __attribute__((packed)) flboot_keystore {
	uint32_t magic;                 /* FLBOOT_KEYSTORE_MAGIC; erased flash = no key store */
	uint16_t version;               /* FLBOOT_KEYSTORE_VERSION */
	uint16_t key_count;             /* 0..FLBOOT_MAX_KEYS */
	uint8_t keys[FLBOOT_MAX_KEYS][32]; /* ed25519 public keys */
	uint32_t flags;                 /* FLBOOT_KS_* */
	uint8_t enc_key[32];            /* XChaCha20-Poly1305 key when FLBOOT_KS_ENC_KEY */
	uint32_t crc32;                 /* CRC32 of the bytes before this field */
} flboot_keystore;
_Static_assert(sizeof(flboot_keystore) == 112, "key store size");

#define FLBOOT_SIGBLOCK_OFFSET FLBOOT_IMAGE_HEADER_SIZE /* in the header area */
#define FLBOOT_SIGBLOCK_MAGIC 0x47534C46u               /* "FLSG" */
#define FLBOOT_SIG_ED25519 1u
#define FLBOOT_KEY_ID_SIZE 8u
/* Domain separation: a signature over an image header is never valid for
 * any other message the vendor's key signs (a package manifest, say). */
#define FLBOOT_SIG_DOMAIN "flasher image header v1"
#define FLBOOT_SIG_DOMAIN_LEN 23u

typedef struct __attribute__((packed)) flboot_signature {
	uint8_t key_id[FLBOOT_KEY_ID_SIZE]; /* first 8 bytes of SHA-256(public key) */
	uint8_t sig[64];
} flboot_signature;

typedef struct __attribute__((packed)) flboot_sigblock {
	uint32_t magic;  /* FLBOOT_SIGBLOCK_MAGIC */
	uint8_t count;   /* 1..FLBOOT_MAX_KEYS */
	uint8_t algorithm; /* FLBOOT_SIG_ED25519 */
	uint16_t rsv;    /* 0 */
	flboot_signature sig[FLBOOT_MAX_KEYS];
} flboot_sigblock;
_Static_assert(sizeof(flboot_sigblock) == 152, "signature block size");
_Static_assert(FLBOOT_SIGBLOCK_OFFSET + sizeof(flboot_sigblock) <= FLBOOT_IMAGE_HEADER_AREA, "fits the area");

/** The trust a unit holds, parsed from its key store. */
typedef struct flboot_trust {
	bool corrupt;     /* a key store is there but does not read back whole */
	uint8_t key_count;
	uint8_t keys[FLBOOT_MAX_KEYS][32];
	uint8_t key_ids[FLBOOT_MAX_KEYS][FLBOOT_KEY_ID_SIZE];
	bool has_enc_key;
	uint8_t enc_key[32];
} flboot_trust;

/** Parse the key store's bytes (sizeof(flboot_keystore) of them, as read
 *  from FLBOOT_KEYSTORE_ADDR). Erased flash = a unit without keys. */
void flboot_trust_parse(flboot_trust *t, const void *raw);

/** May the unit run this image? 0, or FLBOOT_E_SIGNATURE with a reason in
 *  why (NUL-terminated, at most cap bytes): not signed, signed by keys the
 *  unit does not hold (ids named), or a signature that does not match.
 *  sigblock is the FLBOOT_SIGBLOCK_SIZE bytes after the header. */
int flboot_trust_check(const flboot_trust *t, const flboot_image_header *h, const void *sigblock, char *why,
                       uint32_t cap);

/** The key id of a public key (as the host's flasher_key_id). */
void flboot_key_id(const uint8_t pub[32], uint8_t id[FLBOOT_KEY_ID_SIZE]);

/** Build a key store image (for provisioning and the simulated unit). */
void flboot_keystore_build(flboot_keystore *ks, const uint8_t (*keys)[32], uint32_t key_count,
                           const uint8_t *enc_key);
#endif
