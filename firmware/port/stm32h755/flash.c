/*
 * flash.c - embedded flash driver for both banks (RM0399 "Embedded flash
 * memory"): unlock, sector erase (blocking, or started on one bank while the
 * other works), 256-bit flash-word programming, error flags, and reads that
 * report double ECC errors instead of faulting.
 *
 * The wait loops run from ITCM (RAMFUNC): while a bank-1 sector is erased
 * (1-2 s) any instruction fetch from bank 1 would stall the CPU, and with
 * it the USB interrupt. From ITCM, with the vector table and stack in DTCM,
 * the USB interrupt keeps recording its events during the erase.
 *
 * Every wait is bounded by SysTick milliseconds (h7_io_ms; SysTick is
 * started before any flash operation): an erase by H7_FLASH_ERASE_MS, a
 * flash word by H7_FLASH_PROGRAM_MS. Registers are touched through RD/WR
 * (h7_io.h) so tests/firmware runs these sequences against a register
 * model on the host.
 *
 * Caches: the bootloader keeps the D-cache off (so reads of freshly written
 * flash never hit stale lines and an ECC bus error is precise for the load
 * that caused it); when an application using this driver has the D-cache
 * on, the written range is invalidated after each operation.
 */
#include "flboot/layout.h"
#include "h7.h"
#include "h7_io.h"
#include "regs.h"

#define BUSY (FLASH_SR_BSY | FLASH_SR_QW | FLASH_SR_WBNE)

/* Per bank: an erase was started and has not been collected yet; the
 * sector; the result of the erase started last (what flash_wait reports). */
static volatile uint8_t erase_pending[2];
static volatile uint32_t erase_sector[2];
static volatile int erase_result[2];

static RAMFUNC void dcache_invalidate(uint32_t addr, uint32_t len)
{
	if (!(RD(SCB_CCR) & SCB_CCR_DC))
		return;
	dsb();
	for (uint32_t a = addr & ~31u; a < addr + len; a += 32u)
		WR(SCB_DCIMVAC, a);
	dsb();
	isb();
}

/* Wait until the bank has no operation and no write buffer in flight, at
 * most timeout_ms. Returns 0 or FLBOOT_E_FLASH (timed out). */
static RAMFUNC int wait_idle(uint32_t bank, uint32_t timeout_ms)
{
	uint32_t t0 = h7_io_ms();
	while (RD(FLASH_SR(bank)) & BUSY) {
		if (h7_io_ms() - t0 > timeout_ms)
			return FLBOOT_E_FLASH;
	}
	return 0;
}

/* The result of the operation that just ended: its error flags, then all
 * flags cleared so the next operation starts clean. */
static RAMFUNC int collect(uint32_t bank)
{
	uint32_t sr = RD(FLASH_SR(bank));
	WR(FLASH_CCR(bank), FLASH_CCR_ALL);
	return (sr & FLASH_SR_ERRORS) ? FLBOOT_E_FLASH : 0;
}

static RAMFUNC void unlock(uint32_t bank)
{
	if (RD(FLASH_CR(bank)) & FLASH_CR_LOCK) {
		WR(FLASH_KEYR(bank), FLASH_KEY1);
		WR(FLASH_KEYR(bank), FLASH_KEY2);
	}
}

static RAMFUNC void lock(uint32_t bank)
{
	SETBITS(FLASH_CR(bank), FLASH_CR_LOCK);
}

/* Before a new operation on the bank: the previous one (an erase started
 * earlier, or anything a debugger left) has ended, and flags that are not
 * ours (a read's ECC flag, an earlier failure already reported) are
 * cleared, so they cannot fail this operation. */
static RAMFUNC int prepare(uint32_t bank)
{
	if (erase_pending[bank])
		(void)h7_flash_wait(bank, true); /* its result stays for flash_wait */
	if (wait_idle(bank, H7_FLASH_ERASE_MS) != 0)
		return FLBOOT_E_FLASH;
	WR(FLASH_CCR(bank), FLASH_CCR_ALL);
	unlock(bank);
	return (RD(FLASH_CR(bank)) & FLASH_CR_LOCK) ? FLBOOT_E_FLASH : 0;
}

RAMFUNC int h7_flash_erase_start(uint32_t sector)
{
	/* The bootloader sector is also write-protected by option bytes; refusing
	 * here keeps a bug from trying. */
	if (sector == FLBOOT_BOOTLOADER_SECTOR || sector >= FLBOOT_SECTOR_COUNT)
		return FLBOOT_E_FLASH;
	uint32_t bank = sector / 8u;
	int rc = prepare(bank);
	if (rc != 0) {
		lock(bank);
		return rc;
	}
	WR(FLASH_CR(bank), FLASH_CR_SER | FLASH_CR_PSIZE_X64 | ((sector % 8u) << FLASH_CR_SNB_SHIFT));
	SETBITS(FLASH_CR(bank), FLASH_CR_START);
	erase_sector[bank] = sector;
	erase_result[bank] = 0;
	erase_pending[bank] = 1;
	return 0;
}

RAMFUNC int h7_flash_wait(uint32_t bank, bool block)
{
	if (bank > 1u)
		return FLBOOT_E_FLASH;
	if (!erase_pending[bank])
		return erase_result[bank];
	if (!block && (RD(FLASH_SR(bank)) & BUSY))
		return 1;
	int rc = wait_idle(bank, H7_FLASH_ERASE_MS);
	if (rc == 0)
		rc = collect(bank);
	else
		WR(FLASH_CCR(bank), FLASH_CCR_ALL);
	CLRBITS(FLASH_CR(bank), FLASH_CR_SER | FLASH_CR_SNB_MASK);
	lock(bank);
	erase_result[bank] = rc;
	erase_pending[bank] = 0;
	dcache_invalidate(FLBOOT_SECTOR_ADDR(erase_sector[bank]), FLBOOT_SECTOR_SIZE);
	return rc;
}

RAMFUNC int h7_flash_erase(uint32_t sector)
{
	int rc = h7_flash_erase_start(sector);
	return rc != 0 ? rc : h7_flash_wait(sector / 8u, true);
}

RAMFUNC int h7_flash_program(uint32_t addr, const uint8_t word[32])
{
	if (addr % FLBOOT_FLASH_WORD || addr < FLBOOT_SECTOR_ADDR(1) ||
	    addr > FLBOOT_FLASH_BASE + FLBOOT_FLASH_SIZE - FLBOOT_FLASH_WORD)
		return FLBOOT_E_FLASH;
	uint32_t bank = (addr - FLBOOT_FLASH_BASE) / FLBOOT_BANK_SIZE;
	uint32_t w[8];
	/* The source may be unaligned; the flash takes 32-bit writes only. */
	for (uint32_t i = 0; i < 8u; i++)
		w[i] = (uint32_t)word[4u * i] | (uint32_t)word[4u * i + 1u] << 8 |
		       (uint32_t)word[4u * i + 2u] << 16 | (uint32_t)word[4u * i + 3u] << 24;
	int rc = prepare(bank);
	if (rc == 0) {
		WR(FLASH_CR(bank), FLASH_CR_PG | FLASH_CR_PSIZE_X64);
		for (uint32_t i = 0; i < 8u; i++)
			h7_io_wr(addr + 4u * i, w[i]);
		dsb(); /* the 8th write fills the buffer and starts the program */
		rc = wait_idle(bank, H7_FLASH_PROGRAM_MS);
		if (rc != 0 && (RD(FLASH_SR(bank)) & FLASH_SR_WBNE)) {
			/* A write of the word never reached the buffer: force the
			 * partial word out (RM0399: FW ends a write-buffer-not-empty
			 * state) so the bank is usable again; the word is lost either
			 * way and the caller sees the failure. */
			SETBITS(FLASH_CR(bank), FLASH_CR_FW);
			(void)wait_idle(bank, H7_FLASH_PROGRAM_MS);
		}
		int err = collect(bank);
		if (rc == 0)
			rc = err;
		CLRBITS(FLASH_CR(bank), FLASH_CR_PG);
	}
	lock(bank);
	dcache_invalidate(addr, FLBOOT_FLASH_WORD);
	return rc;
}

#ifndef H7_HOST_MODEL
/* One 16-bit `ldr`: the bus-fault handler recognises this PC and skips it. */
__attribute__((naked, noinline)) static uint32_t probe_ldr(__attribute__((unused)) uint32_t addr)
{
	__asm__ volatile(".syntax unified\n\t"
	                 "ldr.n r0, [r0]\n\t"
	                 "bx lr\n\t");
}

static volatile uint32_t ecc_fault;

int h7_flash_probe32(uint32_t addr, uint32_t *out)
{
	ecc_fault = 0;
	uint32_t v = probe_ldr(addr);
	if (ecc_fault)
		return FLBOOT_E_ECC;
	*out = v;
	return 0;
}

/* Called by the BusFault handler with the stacked frame. A precise bus
 * error at probe_ldr is a double ECC error in flash (a word torn by power
 * loss): skip the load and flag it. Anything else is a bug: reset. */
void h7_busfault(uint32_t *frame)
{
	uint32_t pc = frame[6];
	if (pc == ((uint32_t)(uintptr_t)probe_ldr & ~1u)) {
		ecc_fault = 1;
		frame[6] = pc + 2u;
		SCB_CFSR = SCB_CFSR_BUSFAULT_MASK;
		FLASH_CCR(0) = FLASH_SR_DBECCERR | FLASH_SR_SNECCERR;
		FLASH_CCR(1) = FLASH_SR_DBECCERR | FLASH_SR_SNECCERR;
		return;
	}
	h7_reset();
}

int h7_flash_read(uint32_t addr, void *buf, uint32_t len)
{
	if (addr < FLBOOT_FLASH_BASE || len > FLBOOT_FLASH_SIZE ||
	    addr - FLBOOT_FLASH_BASE > FLBOOT_FLASH_SIZE - len)
		return FLBOOT_E_RANGE;
	/* A read of a bank being erased would stall on the bus until the
	 * erase ends; wait for it here, bounded, and collect its result. */
	for (uint32_t bank = 0; bank < 2u; bank++) {
		uint32_t lo = FLBOOT_FLASH_BASE + bank * FLBOOT_BANK_SIZE;
		if (len && erase_pending[bank] && addr < lo + FLBOOT_BANK_SIZE && addr + len > lo)
			(void)h7_flash_wait(bank, true);
	}
	uint8_t *dst = buf;
	uint32_t a = addr & ~3u;
	uint32_t end = addr + len;
	while (a < end) {
		uint32_t v;
		if (h7_flash_probe32(a, &v) != 0)
			return FLBOOT_E_ECC;
		for (uint32_t i = 0; i < 4u; i++) {
			uint32_t b = a + i;
			if (b >= addr && b < end)
				dst[b - addr] = (uint8_t)(v >> (8u * i));
		}
		a += 4u;
	}
	/* A DMA-style detection may leave the flag without a fault: check it. */
	uint32_t bank0 = FLASH_SR(0), bank1 = FLASH_SR(1);
	if ((bank0 | bank1) & FLASH_SR_DBECCERR) {
		FLASH_CCR(0) = FLASH_SR_DBECCERR;
		FLASH_CCR(1) = FLASH_SR_DBECCERR;
		return FLBOOT_E_ECC;
	}
	return 0;
}
#endif
