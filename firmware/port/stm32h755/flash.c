/*
 * flash.c - embedded flash driver for both banks (RM0399 "Embedded flash
 * memory"): unlock, sector erase, 256-bit flash-word programming, error
 * flags, and reads that report double ECC errors instead of faulting.
 *
 * The wait loops run from ITCM (RAMFUNC): while a bank-1 sector is erased
 * (1-2 s) any instruction fetch from bank 1 would stall the CPU, and with
 * it the USB interrupt. From ITCM, with the vector table and stack in DTCM,
 * the USB interrupt keeps draining its FIFO during the erase.
 *
 * Caches: the bootloader keeps the D-cache off (so reads of freshly written
 * flash never hit stale lines and an ECC bus error is precise for the load
 * that caused it); when an application using this driver has the D-cache
 * on, the written range is invalidated after each operation.
 */
#include <string.h>

#include "flboot/layout.h"
#include "h7.h"
#include "regs.h"

static RAMFUNC void dcache_invalidate(uint32_t addr, uint32_t len)
{
	if (!(SCB_CCR & SCB_CCR_DC))
		return;
	dsb();
	for (uint32_t a = addr & ~31u; a < addr + len; a += 32u)
		SCB_DCIMVAC = a;
	dsb();
	isb();
}

/* Wait for the bank to finish, then report and clear its error flags. */
static RAMFUNC int wait_bank(uint32_t bank)
{
	while (FLASH_SR(bank) & (FLASH_SR_BSY | FLASH_SR_QW | FLASH_SR_WBNE))
		;
	uint32_t sr = FLASH_SR(bank);
	FLASH_CCR(bank) = FLASH_CCR_ALL;
	return (sr & FLASH_SR_ERRORS) ? FLBOOT_E_FLASH : 0;
}

static RAMFUNC void unlock(uint32_t bank)
{
	if (FLASH_CR(bank) & FLASH_CR_LOCK) {
		FLASH_KEYR(bank) = FLASH_KEY1;
		FLASH_KEYR(bank) = FLASH_KEY2;
	}
}

static RAMFUNC void lock(uint32_t bank)
{
	FLASH_CR(bank) |= FLASH_CR_LOCK;
}

RAMFUNC int h7_flash_erase(uint32_t sector)
{
	/* The bootloader sector is also write-protected by option bytes; refusing
	 * here keeps a bug from trying. */
	if (sector == FLBOOT_BOOTLOADER_SECTOR || sector >= FLBOOT_SECTOR_COUNT)
		return FLBOOT_E_FLASH;
	uint32_t bank = sector / 8u;
	unlock(bank);
	int rc = wait_bank(bank);
	if (rc == 0) {
		FLASH_CR(bank) = FLASH_CR_SER | FLASH_CR_PSIZE_X64 | ((sector % 8u) << FLASH_CR_SNB_SHIFT);
		FLASH_CR(bank) |= FLASH_CR_START;
		rc = wait_bank(bank);
		FLASH_CR(bank) &= ~(FLASH_CR_SER | (7u << FLASH_CR_SNB_SHIFT));
	}
	lock(bank);
	dcache_invalidate(FLBOOT_SECTOR_ADDR(sector), FLBOOT_SECTOR_SIZE);
	return rc;
}

RAMFUNC int h7_flash_program(uint32_t addr, const uint8_t word[32])
{
	if (addr % FLBOOT_FLASH_WORD || addr < FLBOOT_SECTOR_ADDR(1) ||
	    addr > FLBOOT_FLASH_BASE + FLBOOT_FLASH_SIZE - FLBOOT_FLASH_WORD)
		return FLBOOT_E_FLASH;
	uint32_t bank = (addr - FLBOOT_FLASH_BASE) / FLBOOT_BANK_SIZE;
	uint32_t w[8];
	/* The source may be unaligned; the flash takes 32-bit writes only. */
	for (uint32_t i = 0; i < 32u; i++)
		((uint8_t *)w)[i] = word[i];
	unlock(bank);
	int rc = wait_bank(bank);
	if (rc == 0) {
		FLASH_CR(bank) = FLASH_CR_PG | FLASH_CR_PSIZE_X64;
		volatile uint32_t *dst = (volatile uint32_t *)addr;
		for (uint32_t i = 0; i < 8u; i++)
			dst[i] = w[i];
		dsb(); /* the 8th write fills the buffer and starts the program */
		rc = wait_bank(bank);
		FLASH_CR(bank) &= ~FLASH_CR_PG;
	}
	lock(bank);
	dcache_invalidate(addr, FLBOOT_FLASH_WORD);
	return rc;
}

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
