/*
 * flboot/layout.h - the flash layout of the STM32H755ZI (docs/bootloader.md).
 *
 * 2 MiB in two banks of eight 128 KiB sectors; sectors are numbered 0..15
 * across both banks. Layout v2: images run in place. Each core has two
 * slots, A and B; it runs from whichever holds the active pair, and the
 * other one receives the next image (and afterwards keeps the previous one
 * for rollback). Activation, trial boots, confirm and rollback are one-word
 * records in the slots' header areas; the metadata sector holds only the
 * staging log (what is erased, how far a transfer got).
 */
#ifndef FLBOOT_LAYOUT_H
#define FLBOOT_LAYOUT_H

#define FLBOOT_FLASH_BASE 0x08000000u
#define FLBOOT_FLASH_SIZE 0x00200000u
#define FLBOOT_BANK_SIZE 0x00100000u
#define FLBOOT_SECTOR_SIZE 0x00020000u
#define FLBOOT_SECTOR_COUNT 16u
#define FLBOOT_FLASH_WORD 32u
/* Longest a 128 KiB sector erase takes (twice the 1.1 s typical of DS12919
 * at x32): what HELLO announces for the host's DATA timeouts. */
#define FLBOOT_ERASE_MAX_MS 2200u

#define FLBOOT_SECTOR_ADDR(s) (FLBOOT_FLASH_BASE + (uint32_t)(s) * FLBOOT_SECTOR_SIZE)

#define FLBOOT_BOOTLOADER_SECTOR 0u

/*
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

/* Names host code still uses (to move to the ones above): the slot A
 * builds' link addresses and the CM7 slot size. */
#define FLBOOT_CM7_APP_ADDR (FLBOOT_CM7_SLOT_A_ADDR + FLBOOT_HEADER_AREA)
#define FLBOOT_CM4_APP_ADDR (FLBOOT_CM4_SLOT_A_ADDR + FLBOOT_HEADER_AREA)
#define FLBOOT_SLOT_SIZE FLBOOT_CM7_SLOT_SIZE
#define FLBOOT_CM7_PRIMARY_SECTOR 1u   /* CM7 slot A */
#define FLBOOT_CM7_SECONDARY_SECTOR 4u /* CM7 slot B */
#define FLBOOT_CM4_PRIMARY_SECTOR 8u   /* CM4 slot A */

#endif
