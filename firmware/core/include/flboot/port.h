/*
 * flboot/port.h - everything the bootloader core needs from the hardware.
 *
 * A port fills one flboot_port and hands it to the core; the core never
 * touches hardware or the OS itself, so the same object code runs on the
 * STM32H755, on QEMU's mps2-an500 and in flasher-devsim on a PC. All
 * functions are mandatory unless marked optional (may be NULL).
 */
#ifndef FLBOOT_PORT_H
#define FLBOOT_PORT_H

#include <stdbool.h>
#include <stdint.h>

#include "flboot/proto.h"

/** The unit's identity, fixed for its lifetime. */
typedef struct flboot_identity {
	uint8_t uid[FLBOOT_UID_SIZE]; /**< 96-bit unique id (the chip's UID) */
	char serial[32];              /**< USB serial string (hex of uid on the chip) */
	char product[16];             /**< product id this unit accepts */
	char hw_rev[8];               /**< hardware revision */
	uint32_t bootloader_version;  /**< FLBOOT_VERSION */
} flboot_identity;

/** What the boot decision hands to the port to start the application. */
typedef struct flboot_boot_target {
	/** payload address of the CM7 image (vector table) in its active
	 *  slot, 0 if none */
	uint32_t cm7_entry;
	/** payload address of the CM4 image in its active slot (the slot of
	 *  the same verified pair), 0 = keep the CM4 held */
	uint32_t cm4_entry;
	uint32_t cm7_version;
	uint32_t cm4_version;
	bool trial;         /**< the pair runs on trial: start the watchdog */
} flboot_boot_target;

/* Boot flags survive a reset but not a power cut (backup SRAM on the chip). */
#define FLBOOT_BOOTFLAG_STAY 0x1u /* stay in the bootloader at next boot */

typedef struct flboot_port {
	void *ctx; /**< handed back as the first argument of every call */

	/* ---- flash: absolute addresses, geometry from flboot/layout.h ---- */
	/** Read len bytes. Returns 0, or FLBOOT_E_ECC when any flash word in the
	 *  range has an uncorrectable ECC error (a word torn by a power cut); the
	 *  buffer contents are then unspecified. Must not fault. */
	int (*flash_read)(void *ctx, uint32_t addr, void *buf, uint32_t len);
	/** Erase one sector (0..FLBOOT_SECTOR_COUNT-1); blocks until done.
	 *  Returns 0 or FLBOOT_E_FLASH. */
	int (*flash_erase)(void *ctx, uint32_t sector);
	/** Program one 32-byte flash word at a 32-byte aligned address; blocks
	 *  until done. A word may be programmed once per erase. Returns 0 or
	 *  FLBOOT_E_FLASH. */
	int (*flash_program)(void *ctx, uint32_t addr, const uint8_t word[32]);
	/** Optional (with flash_wait): start erasing one sector and return
	 *  without waiting, so that the two banks (sectors 0-7, 8-15) erase at
	 *  the same time; one operation per bank runs at once. Any later call
	 *  touching a bank with an erase in flight (read, erase, program)
	 *  first waits for it. Returns 0, or FLBOOT_E_FLASH (not started).
	 *  NULL: the core uses the blocking flash_erase. */
	int (*flash_erase_start)(void *ctx, uint32_t sector);
	/** Optional (with flash_erase_start): bank 0 or 1. block: wait until
	 *  the bank is idle. Returns 1 while the bank is busy (only when
	 *  !block), else the result of the erase started last on that bank
	 *  (0 or FLBOOT_E_FLASH; 0 if none). */
	int (*flash_wait)(void *ctx, uint32_t bank, bool block);

	/* ---- transport: a byte pipe to the host ---- */
	/** Non-blocking read: bytes available now (0 if none). */
	uint32_t (*transport_read)(void *ctx, uint8_t *buf, uint32_t cap);
	/** Write all bytes (blocks until queued). */
	void (*transport_write)(void *ctx, const uint8_t *buf, uint32_t len);

	/* ---- time, reset, boot ---- */
	uint32_t (*millis)(void *ctx); /**< monotonic milliseconds, wraps */
	/** Reset the unit. On the chip it does not return; on the host it
	 *  records the request and the caller returns to its main loop, which
	 *  re-initialises the core from nothing. */
	void (*reset)(void *ctx);
	uint32_t (*boot_flags_get)(void *ctx);
	void (*boot_flags_set)(void *ctx, uint32_t flags);
	/** Optional: true while the "enter bootloader" pin is held. */
	bool (*enter_pin)(void *ctx);
	/** Optional: start the independent watchdog for a trial boot. */
	void (*watchdog_start)(void *ctx, uint32_t timeout_ms);
	/** Optional: kick the watchdog. */
	void (*watchdog_kick)(void *ctx);

	void (*identity)(void *ctx, flboot_identity *out);
} flboot_port;

#endif
