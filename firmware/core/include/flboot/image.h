/*
 * flboot/image.h - the image header the bootloader checks on the chip.
 *
 * Every image in a slot starts with this 128-byte header, in a header area of
 * FLBOOT_IMAGE_HEADER_AREA bytes (the rest of the area is reserved for a
 * signature block and reads 0xFF). The application's vector table, i.e. the
 * first byte of the payload, starts at slot + FLBOOT_IMAGE_HEADER_AREA, which
 * keeps it aligned for VTOR. The package format (docs/package-format.md)
 * stores each image as this header followed by its payload.
 */
#ifndef FLBOOT_IMAGE_H
#define FLBOOT_IMAGE_H

#include <stdint.h>

#define FLBOOT_IMAGE_MAGIC 0x4D494C46u /* "FLIM" little-endian */
#define FLBOOT_IMAGE_HEADER_VERSION 1u
#define FLBOOT_IMAGE_HEADER_SIZE 128u
#define FLBOOT_IMAGE_HEADER_AREA 0x400u
#define FLBOOT_IMAGE_MAX_HW_REVS 4u

typedef struct __attribute__((packed)) flboot_image_header {
	uint32_t magic;            /* FLBOOT_IMAGE_MAGIC */
	uint16_t header_version;   /* FLBOOT_IMAGE_HEADER_VERSION */
	uint16_t header_size;      /* FLBOOT_IMAGE_HEADER_SIZE */
	uint8_t core;              /* flboot_core */
	uint8_t flags;             /* 0 */
	uint16_t rsv0;             /* 0 */
	uint32_t payload_size;     /* bytes of firmware after the header area */
	uint32_t payload_crc32;    /* CRC32 (zlib polynomial) of the payload */
	uint8_t payload_sha256[32];/* SHA-256 of the payload */
	uint32_t version;          /* FLBOOT_VERSION of the firmware */
	uint32_t min_bootloader;   /* FLBOOT_VERSION the bootloader must reach */
	char product[16];          /* product id, NUL padded */
	char hw_revs[FLBOOT_IMAGE_MAX_HW_REVS][8]; /* compatible revisions; all empty = any */
	uint8_t set_id[8];         /* same for the images of one package */
	uint32_t load_address;     /* address of the payload (slot + header area) */
	uint32_t security_counter; /* downgrade floor: refused below the confirmed one (0 = none) */
	uint32_t header_crc32;     /* CRC32 of the 124 bytes before this field */
} flboot_image_header;
_Static_assert(sizeof(flboot_image_header) == FLBOOT_IMAGE_HEADER_SIZE, "image header size");

#endif
