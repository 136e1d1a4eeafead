/**
 * @file flasher/package.h
 * @brief Firmware packages: build, read, verify (docs/package-format.md).
 *
 * A package is one file a vendor builds once and ships: a binary header, a
 * JSON manifest and, per core, the image header the bootloader checks
 * followed by the payload (raw or zlib-compressed in the file). Images run
 * in place from slot A or slot B of their core, so a package holds per core
 * the build linked for each slot, or one build that runs from any address;
 * flasher_package_image_for() gives the one for the slot a unit stages into.
 *
 * Thread rules: a flasher_package is immutable after open; it may be read
 * from several threads at once.
 */
#ifndef FLASHER_PACKAGE_H
#define FLASHER_PACKAGE_H

#include <stddef.h>
#include <stdint.h>

#include "flasher/common.h"

#ifdef __cplusplus
extern "C" {
#endif

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
	uint32_t load_address;     /**< where the payload runs (slot + header area), 0 = anywhere */
	int compressed;            /**< stored compressed in the package */
	size_t stored_size;        /**< bytes it takes in the package file */
	uint32_t slot;             /**< slot the build is linked for, 0 = any slot. @since 0.3 */
	const uint8_t *header_area; /**< the stored header area: header first (same as header). @since 0.3 */
	size_t header_area_size;   /**< 128..512 bytes. @since 0.3 */
} flasher_package_image;

/** An opened, verified package (opaque, immutable). @since 0.1 */
typedef struct flasher_package flasher_package;

/** Open and fully verify a package (every CRC, hash and length). On failure
 *  the detail names the first broken part ("manifest CRC32", "cm4 image
 *  SHA-256", ...). The caller owns *out and frees it with
 *  flasher_package_free(). @since 0.1 */
FLASHER_API int flasher_package_open(flasher_package **out, const char *path);
/** Same from memory (the bytes are copied; the caller keeps data). @since 0.1 */
FLASHER_API int flasher_package_open_memory(flasher_package **out, const void *data, size_t len);
/** Free a package and everything pointing into it. Accepts NULL. @since 0.1 */
FLASHER_API void flasher_package_free(flasher_package *pkg);

/** The product the package is for; owned by pkg. @since 0.1 */
FLASHER_API const char *flasher_package_product(const flasher_package *pkg);
/** Packed semantic version (major<<24 | minor<<16 | patch). @since 0.1 */
FLASHER_API uint32_t flasher_package_version(const flasher_package *pkg);
/** Oldest bootloader (packed semver) the package runs on. @since 0.1 */
FLASHER_API uint32_t flasher_package_min_bootloader(const flasher_package *pkg);
/** Compatible hardware revisions; count 0 means any. Strings owned by pkg. @since 0.1 */
FLASHER_API size_t flasher_package_hw_rev_count(const flasher_package *pkg);
/** @copydoc flasher_package_hw_rev_count @since 0.1 */
FLASHER_API const char *flasher_package_hw_rev(const flasher_package *pkg, size_t i);
/** SHA-256 of the whole package file (identifies it in history records);
 *  32 bytes owned by pkg. @since 0.1 */
FLASHER_API const uint8_t *flasher_package_sha256(const flasher_package *pkg);
/** The manifest as JSON text (NUL-terminated), owned by pkg. @since 0.1 */
FLASHER_API const char *flasher_package_manifest_json(const flasher_package *pkg);

/** Number of cores the package has an image for (1 or 2). @since 0.1 */
FLASHER_API size_t flasher_package_image_count(const flasher_package *pkg);
/** Image i (0 <= i < count), CM7 first: the core's slot A build (or its
 *  only one, for any slot); pointers live as long as pkg.
 *  (C gives typedefs and functions one namespace, so the function cannot be
 *  named like the flasher_package_image type; the macro keeps the call
 *  spelling flasher_package_image(pkg, i, &img) working.) @since 0.1 */
FLASHER_API int flasher_package_get_image(const flasher_package *pkg, size_t i, flasher_package_image *out);
#define flasher_package_image(pkg, i, out) flasher_package_get_image((pkg), (i), (out))
/** The image for a core (its slot A build, or the one for any slot), or
 *  FLASHER_ENOTFOUND. Pointers live as long as pkg. @since 0.1 */
FLASHER_API int flasher_package_find(const flasher_package *pkg, flasher_core core, flasher_package_image *out);
/** The build of core's image to stage into the slot starting at slot_addr
 *  (a unit announces it in HELLO, stage_addr): the build linked for that
 *  slot (load_address = slot_addr + 0x400), or the core's one build that
 *  runs from any slot (load_address 0). slot_addr 0 (not announced) means
 *  slot A. FLASHER_ENOTFOUND: no image for the core, or no build for that
 *  slot (a format-1 package holds slot A builds only); FLASHER_EINVAL:
 *  slot_addr is not one of the core's slots. @since 0.3 */
FLASHER_API int flasher_package_image_for(const flasher_package *pkg, flasher_core core, uint32_t slot_addr,
                                          flasher_package_image *out);
/** Flash sectors (128 KiB) the build takes in its slot, header area
 *  included; *last_bytes (may be NULL) = how many of its bytes lie in the
 *  last of them. @since 0.3 */
FLASHER_API unsigned flasher_package_image_sectors(const flasher_package_image *img, size_t *last_bytes);

/** The largest file that can be a valid package (header, the largest
 *  manifest and every build at its slot's size, ~2.2 MiB): a reader may
 *  refuse a larger file before reading it. @since 0.4 */
FLASHER_API size_t flasher_package_size_limit(void);

/** Options of flasher_package_build. @since 0.1 */
typedef struct flasher_pack_options {
	unsigned version;           /**< FLASHER_PACK_OPTIONS_VERSION */
	const char *product;        /**< required, 1..15 chars */
	const char *fw_version;     /**< required, "X.Y.Z" */
	const char *const *hw_revs; /**< compatible hardware revisions (<= 4), may be NULL */
	size_t hw_rev_count;
	const char *min_bootloader; /**< "X.Y.Z", NULL = "0.0.0" */
	const char *build_id;       /**< free text, NULL = none */
	const char *cm7_file;       /**< .bin or .elf, NULL = no CM7 image; with cm7_b_file: the slot A build */
	const char *cm4_file;       /**< .bin or .elf, NULL = no CM4 image; with cm4_b_file: the slot A build */
	int compress;               /**< 1 (default): zlib when it makes the image smaller */
	const char *cm7_b_file;     /**< the CM7 build linked for slot B, NULL = derive it. @since 0.3 (version 2) */
	const char *cm4_b_file;     /**< the CM4 build linked for slot B, NULL = derive it. @since 0.3 (version 2) */
	const char *const *sign_keys; /**< private keys to sign every image with (path, fd:N or env:NAME;
	                                   flasher/sign.h), 0..2 of them. @since 0.4 (version 3) */
	size_t sign_key_count;
	uint32_t security_counter;  /**< downgrade floor written into every image (0 = none). @since 0.4 (version 3) */
} flasher_pack_options;
#define FLASHER_PACK_OPTIONS_VERSION 3
#define FLASHER_PACK_OPTIONS_INIT {FLASHER_PACK_OPTIONS_VERSION, NULL, NULL, NULL, 0, NULL, NULL, NULL, NULL, 1, NULL, NULL, NULL, 0, 0}

/** Build a package and write it atomically (temp file + rename) to out_path.
 *  .elf inputs contribute their loadable segments, which must lie inside one
 *  slot of the core. Per core: one ELF linked with -Wl,--emit-relocs is
 *  relocated to the other slot; two files (cmX_file for slot A, cmX_b_file
 *  for slot B) are taken as they are; one .bin whose vector table points
 *  into no slot runs anywhere, one that points into a slot needs the other
 *  slot's build (docs/package-format.md, "Input files"). @since 0.1 */
FLASHER_API int flasher_package_build(const flasher_pack_options *opts, const char *out_path);

#ifdef __cplusplus
}
#endif

#endif
