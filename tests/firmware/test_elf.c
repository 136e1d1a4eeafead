/* The built firmware ELFs: where things are linked and what the vector
 * tables hold (read with our own ELF reader, elf32.c). */
#include <criterion/criterion.h>
#include <stdint.h>

#include "elf32.h"
#include "flboot/image.h"
#include "flboot/layout.h"

#define ITCM_END 0x00010000u
#define DTCM_BASE 0x20000000u
#define DTCM_END 0x20020000u
#define BOOT_BUDGET 0x10000u

static elf32 load(const char *path)
{
	elf32 e;
	char err[128];
	cr_assert_eq(elf32_open(&e, path, err, sizeof err), 0, "%s: %s", path, err);
	cr_assert_eq(e.machine, 40, "%s is not an ARM ELF (machine %u)", path, e.machine);
	return e;
}

static uint32_t sym(const elf32 *e, const char *name)
{
	uint32_t v = 0;
	cr_assert_eq(elf32_symbol(e, name, &v), 0, "symbol %s missing", name);
	return v;
}

/* Lowest and highest load (flash) address of the file's contents. */
static void load_range(const elf32 *e, uint32_t *lo, uint32_t *hi)
{
	*lo = 0xFFFFFFFFu;
	*hi = 0;
	for (int i = 0; i < e->nseg; i++) {
		if (!e->seg[i].filesz)
			continue;
		if (e->seg[i].paddr < *lo)
			*lo = e->seg[i].paddr;
		if (e->seg[i].paddr + e->seg[i].filesz > *hi)
			*hi = e->seg[i].paddr + e->seg[i].filesz;
	}
}

Test(firmware_elf, bootloader_lives_in_sector_0_within_budget)
{
	elf32 e = load(BOOT_ELF);
	uint32_t lo, hi;
	load_range(&e, &lo, &hi);
	cr_assert_eq(lo, FLBOOT_FLASH_BASE, "loads from 0x%08x", lo);
	cr_assert_leq(hi, FLBOOT_FLASH_BASE + BOOT_BUDGET, "ends at 0x%08x, budget ends 0x%08x", hi,
	              FLBOOT_FLASH_BASE + BOOT_BUDGET);
	for (int i = 0; i < e.nseg; i++)
		if (e.seg[i].filesz)
			cr_assert_lt(e.seg[i].paddr, FLBOOT_SECTOR_ADDR(1), "segment loaded outside sector 0");
	elf32_close(&e);
}

Test(firmware_elf, bootloader_vector_table)
{
	elf32 e = load(BOOT_ELF);
	uint32_t sp = elf32_word(&e, FLBOOT_FLASH_BASE);
	uint32_t reset = elf32_word(&e, FLBOOT_FLASH_BASE + 4);
	cr_assert(sp > DTCM_BASE && sp <= DTCM_END && sp % 8 == 0, "initial SP 0x%08x not at the top of DTCM", sp);
	cr_assert(reset & 1u, "reset vector 0x%08x lacks the Thumb bit", reset);
	cr_assert(reset >= FLBOOT_FLASH_BASE && reset < FLBOOT_SECTOR_ADDR(1), "reset vector 0x%08x outside sector 0",
	          reset);
	cr_assert_eq(reset, sym(&e, "Reset_Handler") | 1u);
	cr_assert_eq(e.entry | 1u, reset);
	/* BusFault handled (ECC errors on reads) and enabled, HardFault present. */
	cr_assert_eq(elf32_word(&e, FLBOOT_FLASH_BASE + 5 * 4), sym(&e, "BusFault_Handler") | 1u);
	cr_assert_neq(elf32_word(&e, FLBOOT_FLASH_BASE + 3 * 4), 0u);
	elf32_close(&e);
}

Test(firmware_elf, flash_and_usb_interrupt_paths_run_from_itcm)
{
	elf32 e = load(BOOT_ELF);
	const char *names[] = {"h7_flash_erase", "h7_flash_program", "usb_otg_irq", "OTG_FS_IRQHandler",
	                       "SysTick_Handler"};
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
		uint32_t a = sym(&e, names[i]) & ~1u;
		cr_assert_lt(a, ITCM_END, "%s at 0x%08x is not in ITCM", names[i], a);
	}
	/* The flash copy of the vector table sends OTG_FS (IRQ 101) and SysTick to ITCM. */
	uint32_t otg = elf32_word(&e, FLBOOT_FLASH_BASE + (16 + 101) * 4);
	cr_assert_eq(otg, sym(&e, "OTG_FS_IRQHandler") | 1u);
	cr_assert_lt(elf32_word(&e, FLBOOT_FLASH_BASE + 15 * 4), ITCM_END);
	/* The ITCM code is loaded from sector 0 (copied at startup). */
	int found = 0;
	for (int i = 0; i < e.nseg; i++) {
		if (e.seg[i].vaddr < ITCM_END && e.seg[i].filesz) {
			found = 1;
			cr_assert(e.seg[i].paddr >= FLBOOT_FLASH_BASE && e.seg[i].paddr < FLBOOT_SECTOR_ADDR(1));
		}
	}
	cr_assert(found, "no ITCM segment");
	/* The vector table used at run time lives in DTCM. */
	uint32_t vt = sym(&e, "_vtable_ram");
	cr_assert(vt >= DTCM_BASE && vt < DTCM_END && vt % 1024 == 0, "RAM vector table at 0x%08x", vt);
	elf32_close(&e);
}

/* An application image linked to run in place from one slot: it starts
 * right after the slot's header area and ends inside the slot. */
static void check_app(const char *path, uint32_t slot, uint32_t slot_size, uint32_t ram_lo, uint32_t ram_hi)
{
	elf32 e = load(path);
	uint32_t payload = slot + FLBOOT_IMAGE_HEADER_AREA;
	uint32_t lo, hi;
	load_range(&e, &lo, &hi);
	cr_assert_eq(lo, payload, "%s: first byte at 0x%08x, the payload starts at 0x%08x (header area before)",
	             path, lo, payload);
	cr_assert_leq(hi, slot + slot_size, "%s: ends at 0x%08x beyond the slot", path, hi);
	uint32_t sp = elf32_word(&e, payload), reset = elf32_word(&e, payload + 4);
	cr_assert(sp > ram_lo && sp <= ram_hi, "%s: initial SP 0x%08x", path, sp);
	cr_assert(reset & 1u, "%s: reset vector 0x%08x lacks the Thumb bit", path, reset);
	cr_assert(reset > payload && reset < slot + slot_size, "%s: reset vector 0x%08x outside the slot",
	          path, reset);
	elf32_close(&e);
}

Test(firmware_elf, cm7_app_linked_for_each_slot_after_its_header_area)
{
	cr_assert_eq(FLBOOT_CM7_SLOT_A_ADDR, 0x08020000u);
	cr_assert_eq(FLBOOT_CM7_SLOT_B_ADDR, 0x08080000u);
	check_app(APP_CM7_ELF, FLBOOT_CM7_SLOT_A_ADDR, FLBOOT_CM7_SLOT_SIZE, DTCM_BASE, DTCM_END);
	check_app(APP_CM7_B_ELF, FLBOOT_CM7_SLOT_B_ADDR, FLBOOT_CM7_SLOT_SIZE, DTCM_BASE, DTCM_END);
}

Test(firmware_elf, cm4_app_linked_for_each_slot_after_its_header_area)
{
	cr_assert_eq(FLBOOT_CM4_SLOT_A_ADDR, 0x08100000u);
	cr_assert_eq(FLBOOT_CM4_SLOT_B_ADDR, 0x08180000u);
	cr_assert_eq(FLBOOT_CM4_SLOT_SIZE, 512u * 1024u);
	check_app(APP_CM4_ELF, FLBOOT_CM4_SLOT_A_ADDR, FLBOOT_CM4_SLOT_SIZE, 0x30000000u, 0x30048000u);
	check_app(APP_CM4_B_ELF, FLBOOT_CM4_SLOT_B_ADDR, FLBOOT_CM4_SLOT_SIZE, 0x30000000u, 0x30048000u);
}

Test(firmware_elf, qemu_image_boots_on_mps2)
{
	elf32 e = load(QEMU_ELF);
	uint32_t sp = elf32_word(&e, 0), reset = elf32_word(&e, 4);
	cr_assert(sp > 0x20000000u && sp <= 0x20400000u, "initial SP 0x%08x", sp);
	cr_assert(reset & 1u);
	cr_assert_lt(reset, 0x00400000u);
	/* The flash model (2 MiB) sits in RAM the program does not use. */
	uint32_t model = sym(&e, "flash_mem");
	cr_assert(model >= 0x20200000u && model + FLBOOT_FLASH_SIZE <= 0x20400000u, "flash model at 0x%08x", model);
	elf32_close(&e);
}
