/*
 * flboot/layout.h - the flash layout of the STM32H755ZI (docs/bootloader.md).
 *
 * 2 MiB in two banks of eight 128 KiB sectors; sectors are numbered 0..15
 * across both banks. Each core has a primary slot (the image that runs, at a
 * fixed address the application is linked for) and a secondary slot (staging
 * for the next image, afterwards the previous image kept for rollback).
 * Activation swaps primary and secondary sector by sector through the scratch
 * sector; the metadata journal lives in two sectors of its own so that it is
 * never erased together with anything it describes.
 *
 *   bank 1 0x08000000  s0      bootloader (write-protected)
 *          0x08020000  s1-s3   CM7 primary   (384 KiB)
 *          0x08080000  s4-s6   CM7 secondary (384 KiB)
 *          0x080E0000  s7      swap scratch
 *   bank 2 0x08100000  s8-s10  CM4 primary   (384 KiB)
 *          0x08160000  s11-s13 CM4 secondary (384 KiB)
 *          0x081C0000  s14-s15 metadata journal, two sectors (ping-pong)
 */
#ifndef FLBOOT_LAYOUT_H
#define FLBOOT_LAYOUT_H

#define FLBOOT_FLASH_BASE 0x08000000u
#define FLBOOT_FLASH_SIZE 0x00200000u
#define FLBOOT_BANK_SIZE 0x00100000u
#define FLBOOT_SECTOR_SIZE 0x00020000u
#define FLBOOT_SECTOR_COUNT 16u
#define FLBOOT_FLASH_WORD 32u

#define FLBOOT_SECTOR_ADDR(s) (FLBOOT_FLASH_BASE + (uint32_t)(s) * FLBOOT_SECTOR_SIZE)

#define FLBOOT_BOOTLOADER_SECTOR 0u
#define FLBOOT_CM7_PRIMARY_SECTOR 1u
#define FLBOOT_CM7_SECONDARY_SECTOR 4u
#define FLBOOT_SCRATCH_SECTOR 7u
#define FLBOOT_CM4_PRIMARY_SECTOR 8u
#define FLBOOT_CM4_SECONDARY_SECTOR 11u
#define FLBOOT_META_SECTOR_A 14u
#define FLBOOT_META_SECTOR_B 15u
#define FLBOOT_SLOT_SECTORS 3u
#define FLBOOT_SLOT_SIZE (FLBOOT_SLOT_SECTORS * FLBOOT_SECTOR_SIZE)

/*
 * Layout v2 (issue 9, run in place): each core runs from whichever of its two
 * slots holds the active pair; activation, confirm and rollback are word
 * writes in the metadata sector. No scratch, no swap, no copy.
 *
 *   bank 1 0x08000000  s0      bootloader (write-protected)
 *          0x08020000  s1-s3   CM7 slot A (384 KiB)
 *          0x08080000  s4-s6   CM7 slot B (384 KiB)
 *          0x080E0000  s7      metadata
 *   bank 2 0x08100000  s8-s11  CM4 slot A (512 KiB)
 *          0x08180000  s12-s15 CM4 slot B (512 KiB)
 *
 * An image header sits at the slot's start; the application (its vector
 * table) is linked for slot + FLBOOT_HEADER_AREA.
 */
#define FLBOOT_CM7_SLOT_A_ADDR 0x08020000u
#define FLBOOT_CM7_SLOT_B_ADDR 0x08080000u
#define FLBOOT_META_ADDR 0x080E0000u
#define FLBOOT_CM4_SLOT_A_ADDR 0x08100000u
#define FLBOOT_CM4_SLOT_B_ADDR 0x08180000u
#define FLBOOT_CM7_SLOT_SIZE 0x00060000u /* 384 KiB, 3 sectors */
#define FLBOOT_CM4_SLOT_SIZE 0x00080000u /* 512 KiB, 4 sectors */
#define FLBOOT_HEADER_AREA 0x400u
#define FLBOOT_META_SECTOR 7u

/* Slot of a core (1 cm7, 2 cm4), slot index 0 (A) or 1 (B). */
#define FLBOOT_SLOT_ADDR(core, slot)                                                            \
	((core) == 1u ? ((slot) ? FLBOOT_CM7_SLOT_B_ADDR : FLBOOT_CM7_SLOT_A_ADDR)               \
	              : ((slot) ? FLBOOT_CM4_SLOT_B_ADDR : FLBOOT_CM4_SLOT_A_ADDR))
#define FLBOOT_CORE_SLOT_SIZE(core) ((core) == 1u ? FLBOOT_CM7_SLOT_SIZE : FLBOOT_CM4_SLOT_SIZE)
/* Largest payload an image for a core may have (slot minus header area). */
#define FLBOOT_CORE_MAX_PAYLOAD(core) (FLBOOT_CORE_SLOT_SIZE(core) - FLBOOT_HEADER_AREA)

/* Layout v1 (the landed swap design), removed with the v2 core: */
/* Where applications are linked: the payload starts after the header area. */
#define FLBOOT_CM7_APP_ADDR (FLBOOT_SECTOR_ADDR(FLBOOT_CM7_PRIMARY_SECTOR) + 0x400u)
#define FLBOOT_CM4_APP_ADDR (FLBOOT_SECTOR_ADDR(FLBOOT_CM4_PRIMARY_SECTOR) + 0x400u)

#endif
