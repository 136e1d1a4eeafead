/* ELF input of pack: segments placed at their load address, clear errors
 * for files that are not an STM32 application for the slot. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "elf_load.h"
#include "flasher.h"
#include "flboot/image.h"
#include "flboot/layout.h"
#include "helpers.h"

#define APP7 (FLBOOT_CM7_SLOT_A_ADDR + FLBOOT_HEADER_AREA)
#define END7 (FLBOOT_CM7_SLOT_A_ADDR + FLBOOT_CM7_SLOT_SIZE)
#define APP7_B (FLBOOT_CM7_SLOT_B_ADDR + FLBOOT_HEADER_AREA)

static uint8_t text[600], data[100];

static void setup(void)
{
	fill_code_like(text, sizeof text, 21);
	fill_code_like(data, sizeof data, 22);
}

TestSuite(elf, .init = setup);

/* .isr_vector+.text at the app address, .data running in RAM but stored
 * (LMA) after a gap in flash, .bss with no file bytes. */
static uint8_t *typical_elf_at(uint32_t app, size_t *len)
{
	put_vectors(text, 0x20020000u, app + 0x101u); /* pack checks the vector table */
	struct elf_seg segs[] = {
	    {1, app, app, text, sizeof text, 0},
	    {1, 0x24000000, app + 0x300, data, sizeof data, 0},
	    {1, 0x24000100, 0x24000100, NULL, 0, 0x400}, /* .bss */
	};
	return build_elf(segs, 3, len);
}

static uint8_t *typical_elf(size_t *len)
{
	return typical_elf_at(APP7, len);
}

Test(elf, data_lands_at_its_load_address_and_gaps_are_erased)
{
	size_t len, size;
	uint8_t *elf = typical_elf(&len), *img;
	cr_assert_eq(flasher__elf_load(elf, len, "app.elf", APP7, END7, &img, &size), 0, "%s", flasher_error_last());
	cr_assert_eq(size, 0x300 + sizeof data);
	cr_assert_arr_eq(img, text, sizeof text);
	for (size_t i = sizeof text; i < 0x300; i++)
		cr_assert_eq(img[i], 0xFF, "gap byte %zu is 0x%02x, erased flash reads 0xFF", i, img[i]);
	cr_assert_arr_eq(img + 0x300, data, sizeof data);
	free(img);
	free(elf);
}

static void expect_fail(const uint8_t *elf, size_t len, int code, const char *const *needles)
{
	uint8_t *img = (uint8_t *)1;
	size_t size = 1;
	int err = flasher__elf_load(elf, len, "app.elf", APP7, END7, &img, &size);
	cr_assert_eq(err, code, "got %s (%s)", flasher_error_name(err), flasher_error_last());
	cr_assert_null(img);
	cr_assert_eq(size, 0);
	for (; *needles; needles++)
		cr_assert_not_null(strstr(flasher_error_last(), *needles), "'%s' does not mention '%s'",
		                   flasher_error_last(), *needles);
}

Test(elf, every_truncation_is_refused)
{
	size_t len;
	uint8_t *elf = typical_elf(&len);
	static const char *const needles[] = {"app.elf", NULL};
	for (size_t n = 4; n < len; n++) {
		uint8_t *copy = malloc(n);
		memcpy(copy, elf, n);
		expect_fail(copy, n, FLASHER_EFORMAT, needles);
		cr_assert_not_null(strstr(flasher_error_last(), "truncated"), "cut at %zu: %s", n, flasher_error_last());
		free(copy);
	}
	free(elf);
}

Test(elf, wrong_class_endianness_machine)
{
	size_t len;
	uint8_t *elf = typical_elf(&len);
	static const char *const n64[] = {"64-bit", NULL}, *const nbe[] = {"big-endian", NULL},
	                         *const narm[] = {"machine 62", "not ARM", NULL};
	elf[4] = 2;
	expect_fail(elf, len, FLASHER_EUNSUPPORTED, n64);
	elf[4] = 1;
	elf[5] = 2;
	expect_fail(elf, len, FLASHER_EUNSUPPORTED, nbe);
	elf[5] = 1;
	elf[18] = 62; /* EM_X86_64 */
	expect_fail(elf, len, FLASHER_EUNSUPPORTED, narm);
	static const char *const nelf[] = {"not an ELF", NULL};
	expect_fail((const uint8_t *)"\x7f" "ELG", 4, FLASHER_EFORMAT, nelf);
	free(elf);
}

Test(elf, segment_outside_the_slot_is_named)
{
	size_t len;
	/* Linked for the bootloader's sector: segment 1 starts below the slot. */
	struct elf_seg segs[] = {
	    {1, APP7, APP7, text, sizeof text, 0},
	    {1, 0x08000000, 0x08000000, data, sizeof data, 0},
	};
	uint8_t *elf = build_elf(segs, 2, &len);
	static const char *const needles[] = {"segment 1", "0x08000000-0x08000064", "0x08020400-0x08080000", NULL};
	expect_fail(elf, len, FLASHER_EFORMAT, needles);
	free(elf);
	/* Running past the slot end. */
	struct elf_seg over[] = {{1, END7 - 10, END7 - 10, data, sizeof data, 0}};
	elf = build_elf(over, 1, &len);
	static const char *const n2[] = {"segment 0", "0x0807FFF6", NULL};
	expect_fail(elf, len, FLASHER_EFORMAT, n2);
	free(elf);
}

Test(elf, no_loadable_segment_and_overlap)
{
	size_t len;
	struct elf_seg bss_only[] = {{1, 0x24000000, 0x24000000, NULL, 0, 0x100}, {4, 0, 0, data, 8, 0}};
	uint8_t *elf = build_elf(bss_only, 2, &len);
	static const char *const n1[] = {"no loadable segment", NULL};
	expect_fail(elf, len, FLASHER_EFORMAT, n1);
	free(elf);
	struct elf_seg overlap[] = {{1, APP7, APP7, text, sizeof text, 0}, {1, APP7 + 8, APP7 + 8, data, 16, 0}};
	elf = build_elf(overlap, 2, &len);
	static const char *const n2[] = {"overlaps", NULL};
	expect_fail(elf, len, FLASHER_EFORMAT, n2);
	free(elf);
}

/* Through pack: an ELF for the CM4 linked at the CM7 address is refused,
 * the right one packs to the flattened payload. (These ELFs keep no
 * relocations, so the slot B build is given too.) */
Test(elf, pack_takes_elf_by_content_not_name)
{
	char *dir = make_temp_dir();
	size_t len, len_b;
	uint8_t *elf = typical_elf(&len), *elf_b = typical_elf_at(APP7_B, &len_b);
	char *as_bin = path_in(dir, "firmware.bin"), *as_bin_b = path_in(dir, "firmware-b.bin"),
	     *out = path_in(dir, "p.pkg");
	write_bytes(as_bin, elf, len);
	write_bytes(as_bin_b, elf_b, len_b);
	flasher_pack_options o = FLASHER_PACK_OPTIONS_INIT;
	o.product = "demo";
	o.fw_version = "1.0.0";
	o.cm4_file = as_bin;
	cr_assert_eq(flasher_package_build(&o, out), FLASHER_EFORMAT);
	cr_assert_not_null(strstr(flasher_error_last(), "cm4 image"), "%s", flasher_error_last());
	cr_assert_not_null(strstr(flasher_error_last(), "0x08100400"), "%s", flasher_error_last());
	o.cm4_file = NULL;
	o.cm7_file = as_bin;
	cr_assert_eq(flasher_package_build(&o, out), FLASHER_EFORMAT);
	cr_assert_not_null(strstr(flasher_error_last(), "--emit-relocs"), "%s", flasher_error_last());
	o.cm7_b_file = as_bin_b;
	cr_assert_eq(flasher_package_build(&o, out), 0, "%s", flasher_error_last());
	flasher_package *pkg;
	cr_assert_eq(flasher_package_open(&pkg, out), 0);
	flasher_package_image img;
	for (unsigned s = 0; s < 2; s++) {
		cr_assert_eq(flasher_package_image_for(pkg, FLASHER_CORE_CM7, FLBOOT_SLOT_ADDR(1u, s), &img), 0);
		cr_assert_eq(img.load_address, s ? APP7_B : APP7);
		cr_assert_eq(img.payload_size, 0x300 + sizeof data);
		cr_assert_arr_eq(img.payload + 0x300, data, sizeof data);
	}
	flasher_package_free(pkg);
	free(elf);
	free(elf_b);
	free(as_bin);
	free(as_bin_b);
	free(out);
	rm_tree(dir);
	free(dir);
}
