/* Is this a Cortex-M application for this core and slot? Its first two
 * words say: word 0 is loaded into SP at reset, word 1 is where the core
 * starts (bit 0 set: Thumb, the only state a Cortex-M runs). A .hex handed
 * over as a .bin, firmware linked for 0x08000000 (the CubeIDE default,
 * which is the bootloader's sector here), the other core's build or a RAM
 * build all fail here instead of being flashed and never starting. */
#include <stdio.h>

#include "error_internal.h"
#include "flboot/layout.h"
#include "vectors.h"

struct ram {
	uint32_t base, size;
	const char *name;
	unsigned cores; /* bit 0: CM7 reaches it, bit 1: CM4 */
};

/* RM0399 memory map. The CM7's TCMs are private to it; the D2 SRAMs are
 * also seen by the CM4 at 0x10000000. */
static const struct ram rams[] = {
    {0x20000000u, 128u * 1024u, "DTCM", 1u},
    {0x24000000u, 512u * 1024u, "AXI SRAM", 3u},
    {0x10000000u, 288u * 1024u, "SRAM1-3 (CM4 alias)", 2u},
    {0x30000000u, 288u * 1024u, "SRAM1-3", 3u},
    {0x38000000u, 64u * 1024u, "SRAM4", 3u},
    {0x38800000u, 4u * 1024u, "backup SRAM", 3u},
};

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static const char *core_name(unsigned core)
{
	return core == 1u ? "cm7" : "cm4";
}

/* The RAM holding a stack that starts at sp (the top counts: a full
 * descending stack starts one past its end), for the cores in mask. */
static const struct ram *ram_of(uint32_t sp, unsigned mask)
{
	for (size_t i = 0; i < sizeof rams / sizeof rams[0]; i++)
		if ((rams[i].cores & mask) && sp > rams[i].base && sp <= rams[i].base + rams[i].size)
			return &rams[i];
	return NULL;
}

static void ram_list(unsigned core, char *buf, size_t cap)
{
	size_t at = 0;
	buf[0] = '\0';
	for (size_t i = 0; i < sizeof rams / sizeof rams[0] && at < cap; i++)
		if (rams[i].cores & (1u << (core - 1u)))
			at += (size_t)snprintf(buf + at, cap - at, "%s%s 0x%08X-0x%08X", at ? ", " : "", rams[i].name,
			                       rams[i].base, rams[i].base + rams[i].size);
}

/* What lies at addr, for a message that says what the file is linked for. */
static void describe(unsigned core, uint32_t addr, char *buf, size_t cap)
{
	for (unsigned c = 1; c <= 2; c++)
		for (unsigned s = 0; s < 2; s++) {
			uint32_t slot = FLBOOT_SLOT_ADDR(c, s);
			if (addr < slot || addr >= slot + FLBOOT_CORE_SLOT_SIZE(c))
				continue;
			if (c != core)
				snprintf(buf, cap, "inside %s slot %c (0x%08X-0x%08X): is this the %s firmware (--%s)?",
				         core_name(c), 'A' + s, slot, slot + FLBOOT_CORE_SLOT_SIZE(c), core_name(c), core_name(c));
			else if (addr < slot + FLBOOT_HEADER_AREA)
				snprintf(buf, cap,
				         "inside the header area of %s slot %c (0x%08X-0x%08X), which holds the image header; "
				         "link the application at 0x%08X",
				         core_name(c), 'A' + s, slot, slot + FLBOOT_HEADER_AREA, slot + FLBOOT_HEADER_AREA);
			else
				snprintf(buf, cap, "inside %s slot %c (0x%08X-0x%08X), not the slot this build is given for",
				         core_name(c), 'A' + s, slot, slot + FLBOOT_CORE_SLOT_SIZE(c));
			return;
		}
	uint32_t app = FLBOOT_SLOT_ADDR(core, 0u) + FLBOOT_HEADER_AREA;
	uint32_t app_b = FLBOOT_SLOT_ADDR(core, 1u) + FLBOOT_HEADER_AREA;
	if (addr >= FLBOOT_FLASH_BASE && addr < FLBOOT_FLASH_BASE + FLBOOT_SECTOR_SIZE)
		snprintf(buf, cap,
		         "in the bootloader's sector (0x%08X-0x%08X; 0x08000000 is the usual default link address); "
		         "link the %s application at 0x%08X (slot A) or 0x%08X (slot B)",
		         FLBOOT_FLASH_BASE, FLBOOT_FLASH_BASE + FLBOOT_SECTOR_SIZE, core_name(core), app, app_b);
	else if (addr >= FLBOOT_META_ADDR && addr < FLBOOT_META_ADDR + FLBOOT_SECTOR_SIZE)
		snprintf(buf, cap, "in the bootloader's metadata sector (0x%08X-0x%08X); link the %s application at 0x%08X",
		         FLBOOT_META_ADDR, FLBOOT_META_ADDR + FLBOOT_SECTOR_SIZE, core_name(core), app);
	else if (ram_of(addr + 1u, 3u))
		snprintf(buf, cap, "in RAM (%s): a build that runs from RAM, not one that runs in place from flash",
		         ram_of(addr + 1u, 3u)->name);
	else
		snprintf(buf, cap, "outside the STM32H755's flash (0x%08X-0x%08X); link the %s application at 0x%08X",
		         FLBOOT_FLASH_BASE, FLBOOT_FLASH_BASE + FLBOOT_FLASH_SIZE, core_name(core), app);
}

int flasher__vectors_check(unsigned core, const uint8_t *payload, size_t len, uint32_t load, const char *name)
{
	const char *cn = core_name(core);
	char where[256], list[256];
	if (load == 0) {
		/* A raw .bin that points into no slot. Without a stack pointer in
		 * RAM it is no vector table at all (test data that runs anywhere);
		 * with one, it is firmware, and it must have been linked at 0. */
		if (len < 8)
			return 0;
		uint32_t sp = get32(payload), reset = get32(payload + 4);
		if ((sp & 3u) || !ram_of(sp, 3u))
			return 0;
		if ((reset & 1u) && (reset & ~1u) < len)
			return 0;
		describe(core, reset & ~1u, where, sizeof where);
		return flasher__error(FLASHER_EFORMAT,
		                      "%s image '%s': its vector table (initial stack pointer 0x%08X, reset handler "
		                      "0x%08X) shows firmware linked %s",
		                      cn, name, sp, reset, where);
	}
	if (len < 8)
		return flasher__error(FLASHER_EFORMAT,
		                      "%s image '%s': %zu bytes cannot hold a vector table (initial stack pointer and "
		                      "reset handler, 8 bytes at 0x%08X)",
		                      cn, name, len, load);
	uint32_t sp = get32(payload), reset = get32(payload + 4);
	if (!ram_of(sp, 1u << (core - 1u))) {
		ram_list(core, list, sizeof list);
		if (core == 2u && ram_of(sp, 1u))
			return flasher__error(FLASHER_EFORMAT,
			                      "%s image '%s': its initial stack pointer 0x%08X is in the CM7's %s, which the "
			                      "CM4 cannot reach; put the CM4's stack in %s",
			                      cn, name, sp, ram_of(sp, 1u)->name, list);
		return flasher__error(FLASHER_EFORMAT,
		                      "%s image '%s': its vector table's initial stack pointer 0x%08X (the word at 0x%08X) "
		                      "is not in RAM the %s reaches (%s): not a %s application linked for 0x%08X",
		                      cn, name, sp, load, cn, list, cn, load);
	}
	if (!(reset & 1u))
		return flasher__error(FLASHER_EFORMAT,
		                      "%s image '%s': its reset handler 0x%08X (the word at 0x%08X) has the Thumb bit "
		                      "clear; a Cortex-M runs Thumb code only, so this is no vector table",
		                      cn, name, reset, load + 4u);
	uint32_t entry = reset & ~1u;
	if (entry < load || entry - load >= len) {
		if (entry >= load && entry < load - FLBOOT_HEADER_AREA + FLBOOT_CORE_SLOT_SIZE(core))
			snprintf(where, sizeof where, "past the end of the file's %zu bytes: a truncated file?", len);
		else
			describe(core, entry, where, sizeof where);
		return flasher__error(FLASHER_EFORMAT,
		                      "%s image '%s': its reset handler 0x%08X lies outside the image (0x%08X-0x%08zX), %s",
		                      cn, name, reset, load, (size_t)load + len, where);
	}
	return 0;
}
