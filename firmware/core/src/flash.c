/*
 * flash.c - the core's only path to flash: counts operations and refuses
 * anything that would touch the bootloader sector, whatever the caller.
 */
#include <string.h>

#include "core.h"

static int addr_ok(uint32_t addr, uint32_t len)
{
	uint32_t lo = FLBOOT_SECTOR_ADDR(FLBOOT_BOOTLOADER_SECTOR + 1u);
	uint32_t hi = FLBOOT_FLASH_BASE + FLBOOT_FLASH_SIZE;
	return addr >= lo && addr <= hi && len <= hi - addr;
}

int flboot__read(flboot_store *s, uint32_t addr, void *buf, uint32_t len)
{
	return s->port->flash_read(s->port->ctx, addr, buf, len);
}

int flboot__erase(flboot_store *s, uint32_t sector)
{
	if (sector == FLBOOT_BOOTLOADER_SECTOR || sector >= FLBOOT_SECTOR_COUNT)
		return FLBOOT_E_PROTECTED;
	s->flash_ops++;
	if (s->port->flash_erase(s->port->ctx, sector) == 0)
		return 0;
	s->erase_failed = (uint8_t)(sector + 1u);
	return FLBOOT_E_FLASH;
}

int flboot__erase_start(flboot_store *s, uint32_t sector)
{
	if (!s->port->flash_erase_start || !s->port->flash_wait)
		return flboot__erase(s, sector);
	if (sector == FLBOOT_BOOTLOADER_SECTOR || sector >= FLBOOT_SECTOR_COUNT)
		return FLBOOT_E_PROTECTED;
	s->flash_ops++;
	s->erase_sector[sector / (FLBOOT_SECTOR_COUNT / 2u)] = (uint8_t)sector;
	if (s->port->flash_erase_start(s->port->ctx, sector) == 0)
		return 0;
	s->erase_failed = (uint8_t)(sector + 1u);
	return FLBOOT_E_FLASH;
}

int flboot__erase_wait(flboot_store *s, uint32_t bank, int block)
{
	int rc;
	if (!s->port->flash_erase_start || !s->port->flash_wait)
		return 0;
	rc = s->port->flash_wait(s->port->ctx, bank, block != 0);
	if (rc > 0)
		return 1;
	if (rc == 0)
		return 0;
	if (bank < 2u)
		s->erase_failed = (uint8_t)(s->erase_sector[bank] + 1u);
	return FLBOOT_E_FLASH;
}

int flboot__program(flboot_store *s, uint32_t addr, const uint8_t word[32])
{
	if (!addr_ok(addr, FLBOOT_FLASH_WORD) || (addr & (FLBOOT_FLASH_WORD - 1u)))
		return FLBOOT_E_PROTECTED;
	s->flash_ops++;
	return s->port->flash_program(s->port->ctx, addr, word) ? FLBOOT_E_FLASH : 0;
}

int flboot__program_check(flboot_store *s, uint32_t addr, const uint8_t word[32])
{
	uint8_t back[FLBOOT_FLASH_WORD];
	int rc = flboot__program(s, addr, word);
	if (rc)
		return rc;
	if (flboot__read(s, addr, back, sizeof back) || memcmp(back, word, sizeof back) != 0)
		return FLBOOT_E_FLASH;
	return 0;
}

int flboot__word_blank(const uint8_t *w)
{
	uint32_t i;
	for (i = 0; i < FLBOOT_FLASH_WORD; i++)
		if (w[i] != 0xFFu)
			return 0;
	return 1;
}
