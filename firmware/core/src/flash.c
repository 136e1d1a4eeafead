/*
 * flash.c - the core's only path to flash: counts operations and refuses
 * anything that would touch the bootloader sector, whatever the caller.
 */
#include <string.h>

#include "core.h"

#define CHUNK 512u

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
	return s->port->flash_erase(s->port->ctx, sector) ? FLBOOT_E_FLASH : 0;
}

int flboot__program(flboot_store *s, uint32_t addr, const uint8_t word[32])
{
	if (!addr_ok(addr, FLBOOT_FLASH_WORD) || (addr & (FLBOOT_FLASH_WORD - 1u)))
		return FLBOOT_E_PROTECTED;
	s->flash_ops++;
	return s->port->flash_program(s->port->ctx, addr, word) ? FLBOOT_E_FLASH : 0;
}

static int word_blank(const uint8_t *w)
{
	uint32_t i;
	for (i = 0; i < FLBOOT_FLASH_WORD; i++)
		if (w[i] != 0xFFu)
			return 0;
	return 1;
}

int flboot__is_blank(flboot_store *s, uint32_t addr, uint32_t len)
{
	uint8_t buf[CHUNK];
	uint32_t off, i, n;

	for (off = 0; off < len; off += n) {
		n = len - off < CHUNK ? len - off : CHUNK;
		if (flboot__read(s, addr + off, buf, n))
			return 0;
		for (i = 0; i < n; i++)
			if (buf[i] != 0xFFu)
				return 0;
	}
	return 1;
}

int flboot__copy_sector(flboot_store *s, uint32_t dst, uint32_t src)
{
	uint8_t buf[CHUNK];
	uint32_t base_d = FLBOOT_SECTOR_ADDR(dst), base_s = FLBOOT_SECTOR_ADDR(src);
	uint32_t off, w;
	int rc, ecc;

	rc = flboot__erase(s, dst);
	if (rc)
		return rc;
	for (off = 0; off < FLBOOT_SECTOR_SIZE; off += CHUNK) {
		/* Read in chunks; only a chunk holding a torn word is re-read
		 * word by word, so that one bad word costs only itself. */
		ecc = flboot__read(s, base_s + off, buf, CHUNK) != 0;
		for (w = 0; w < CHUNK; w += FLBOOT_FLASH_WORD) {
			if (ecc && flboot__read(s, base_s + off + w, buf + w, FLBOOT_FLASH_WORD))
				continue; /* torn source word: leave it erased */
			if (word_blank(buf + w))
				continue;
			rc = flboot__program(s, base_d + off + w, buf + w);
			if (rc)
				return rc;
		}
	}
	return 0;
}
