/**
 * @file flasher/package.h
 * @brief Firmware packages: build, read, verify (docs/package-format.md).
 *
 * A package is one file a vendor builds once and ships: a binary header, a
 * JSON manifest and, per core, the image header the bootloader checks
 * followed by the payload (raw or zlib-compressed in the file).
 *
 * Thread rules: a flasher_package is immutable after open; it may be read
 * from several threads at once.
 */
#ifndef FLASHER_PACKAGE_H
#define FLASHER_PACKAGE_H

#include <stddef.h>
#include <stdint.h>

#include "flasher/common.h"

/** Target cores (same numbers as on the wire). @since 0.1 */
typedef enum flasher_core { FLASHER_CORE_CM7 = 1, FLASHER_CORE_CM4 = 2 } flasher_core;

/** One image of a package, as read (payload decompressed, checked). @since 0.1 */
typedef struct flasher_package_image {
	flasher_core core;
	const uint8_t *header;     /**< the 128-byte flboot_image_header (flboot/image.h) */
	const uint8_t *payload;    /**< firmware bytes as given to pack, decompressed */
	size_t payload_size;
	uint32_t payload_crc32;
	uint8_t payload_sha256[32];
	uint32_t load_address;     /**< where the payload runs (slot + header area) */
	int compressed;            /**< stored compressed in the package */
	size_t stored_size;        /**< bytes it takes in the package file */
} flasher_package_image;

typedef struct flasher_package flasher_package;

/** Open and fully verify a package (every CRC, hash and length). On failure
 *  the detail names the first broken part ("manifest CRC32", "cm4 image
 *  SHA-256", ...). @since 0.1 */
FLASHER_API int flasher_package_open(flasher_package **out, const char *path);
/** Same from memory (the bytes are copied). @since 0.1 */
FLASHER_API int flasher_package_open_memory(flasher_package **out, const void *data, size_t len);
/** Accepts NULL. @since 0.1 */
FLASHER_API void flasher_package_free(flasher_package *pkg);

FLASHER_API const char *flasher_package_product(const flasher_package *pkg);
/** Packed semantic version (major<<24 | minor<<16 | patch). */
FLASHER_API uint32_t flasher_package_version(const flasher_package *pkg);
FLASHER_API uint32_t flasher_package_min_bootloader(const flasher_package *pkg);
/** Compatible hardware revisions; count 0 means any. */
FLASHER_API size_t flasher_package_hw_rev_count(const flasher_package *pkg);
FLASHER_API const char *flasher_package_hw_rev(const flasher_package *pkg, size_t i);
/** SHA-256 of the whole package file (identifies it in history records). */
FLASHER_API const uint8_t *flasher_package_sha256(const flasher_package *pkg);
/** The manifest as JSON text (NUL-terminated). */
FLASHER_API const char *flasher_package_manifest_json(const flasher_package *pkg);

FLASHER_API size_t flasher_package_image_count(const flasher_package *pkg);
/** Image i (0 <= i < count); pointers live as long as pkg.
 *  (C gives typedefs and functions one namespace, so the function cannot be
 *  named like the flasher_package_image type; the macro keeps the call
 *  spelling flasher_package_image(pkg, i, &img) working.) @since 0.1 */
FLASHER_API int flasher_package_get_image(const flasher_package *pkg, size_t i, flasher_package_image *out);
#define flasher_package_image(pkg, i, out) flasher_package_get_image((pkg), (i), (out))
/** The image for a core, or FLASHER_ENOTFOUND. */
FLASHER_API int flasher_package_find(const flasher_package *pkg, flasher_core core, flasher_package_image *out);

/** Options of flasher_package_build. @since 0.1 */
typedef struct flasher_pack_options {
	unsigned version;           /**< FLASHER_PACK_OPTIONS_VERSION */
	const char *product;        /**< required, 1..15 chars */
	const char *fw_version;     /**< required, "X.Y.Z" */
	const char *const *hw_revs; /**< compatible hardware revisions (<= 4), may be NULL */
	size_t hw_rev_count;
	const char *min_bootloader; /**< "X.Y.Z", NULL = "0.0.0" */
	const char *build_id;       /**< free text, NULL = none */
	const char *cm7_file;       /**< .bin or .elf, NULL = no CM7 image */
	const char *cm4_file;       /**< .bin or .elf, NULL = no CM4 image */
	int compress;               /**< 1 (default): zlib when it makes the image smaller */
} flasher_pack_options;
#define FLASHER_PACK_OPTIONS_VERSION 1
#define FLASHER_PACK_OPTIONS_INIT {FLASHER_PACK_OPTIONS_VERSION, NULL, NULL, NULL, 0, NULL, NULL, NULL, NULL, 1}

/** Build a package and write it atomically (temp file + rename) to out_path.
 *  .elf inputs contribute their loadable segments, which must lie inside the
 *  core's slot. @since 0.1 */
FLASHER_API int flasher_package_build(const flasher_pack_options *opts, const char *out_path);

#endif
