/* package_sign.h - signatures inside a package (docs/signing.md): the
 * per-image signature block the unit checks, and the package signature
 * block over the whole file that the host checks. */
#ifndef FLASHER_PACKAGE_SIGN_H
#define FLASHER_PACKAGE_SIGN_H
#include <stddef.h>
#include <stdint.h>

#include "flasher/sign.h"
#include "flboot/trust.h"

#define FLASHER_MAX_SIGNERS FLBOOT_MAX_KEYS
#define FLASHER_PKG_SIG_DOMAIN "flasher package v1"
/* magic, u16 algorithm, u16 count, then count x (key id, signature) */
#define FLASHER_PKG_SIGBLOCK_SIZE(n) (8u + (n) * (FLBOOT_KEY_ID_SIZE + 64u))

/** Fill the signature block of a header area (at least 280 bytes; area[0..128) is the final
 *  image header; the block goes to area + FLBOOT_SIGBLOCK_OFFSET). */
int flasher__sign_header_area(flasher_key *const *keys, size_t n, uint8_t *area);

/** Build the package signature block over the signed bytes of the file
 *  (everything before the block, header signature fields already final),
 *  given as their SHA-256. out must hold FLASHER_PKG_SIGBLOCK_SIZE(n) bytes. */
int flasher__sign_package(flasher_key *const *keys, size_t n, const uint8_t digest[32], uint8_t *out);

/** What a check found, per signature. */
typedef struct flasher__sig_report {
	size_t count;
	uint8_t key_id[FLASHER_MAX_SIGNERS][FLBOOT_KEY_ID_SIZE];
	int valid[FLASHER_MAX_SIGNERS]; /* 1 valid for the given key, 0 not, -1 not checked (other key) */
} flasher__sig_report;

/** Parse a package signature block (len bytes) and, when pub is given,
 *  check the signature by pub over the signed bytes, given as their
 *  SHA-256 (digest; unused without pub). 0, or FLASHER_EFORMAT for a
 *  malformed block (why in the detail). */
int flasher__check_package_sig(const uint8_t *blk, size_t len, const uint8_t *digest, const uint8_t *pub,
                               flasher__sig_report *rep);

/** Parse an image's signature block (area + FLBOOT_SIGBLOCK_OFFSET) and
 *  check the signature by pub (if given) over the header. count = 0 when
 *  the image is unsigned. */
int flasher__check_image_sig(const uint8_t *area, const uint8_t *pub,
                             flasher__sig_report *rep);
#endif
