/* Run in place: a package carries each core's build for slot A and slot B.
 * The proof of pack's relocation (issue 9): on the example applications and
 * on a larger newlib-heavy one, all linked for both slots by the cross
 * build with -Wl,--emit-relocs, the image pack derives from one slot's ELF
 * is byte for byte the other slot's real link (its objcopy .bin and its
 * flattened ELF). Plus the refusals, each naming what is wrong. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "elf_load.h"
#include "flasher.h"
#include "flboot/layout.h"
#include "helpers.h"

static char *dir;

static void setup(void)
{
	dir = make_temp_dir();
	setenv("SOURCE_DATE_EPOCH", "1700000000", 1);
}

static void teardown(void)
{
	rm_tree(dir);
	free(dir);
}

TestSuite(reloc, .init = setup, .fini = teardown);

static uint32_t le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static flasher_package *pack(const char *cm7, const char *cm7_b, const char *cm4, const char *cm4_b)
{
	char *out = path_in(dir, "p.fwpkg");
	flasher_pack_options o = FLASHER_PACK_OPTIONS_INIT;
	o.product = "demo";
	o.fw_version = "1.0.0";
	o.cm7_file = cm7;
	o.cm7_b_file = cm7_b;
	o.cm4_file = cm4;
	o.cm4_b_file = cm4_b;
	cr_assert_eq(flasher_package_build(&o, out), 0, "pack: %s", flasher_error_last());
	flasher_package *pkg;
	cr_assert_eq(flasher_package_open(&pkg, out), 0, "open: %s", flasher_error_last());
	free(out);
	return pkg;
}

static int pack_err(const char *cm7, const char *cm7_b, const char *cm4, const char *cm4_b)
{
	char *out = path_in(dir, "e.fwpkg");
	flasher_pack_options o = FLASHER_PACK_OPTIONS_INIT;
	o.product = "demo";
	o.fw_version = "1.0.0";
	o.cm7_file = cm7;
	o.cm7_b_file = cm7_b;
	o.cm4_file = cm4;
	o.cm4_b_file = cm4_b;
	int err = flasher_package_build(&o, out);
	free(out);
	return err;
}

static void expect_detail(const char *const *needles)
{
	for (; *needles; needles++)
		cr_assert_not_null(strstr(flasher_error_last(), *needles), "'%s' does not mention '%s'",
		                   flasher_error_last(), *needles);
}

#ifdef FW_EXAMPLES
/* ---- the proof on real links ------------------------------------------- */

static char *fw(const char *name)
{
	size_t n = strlen(FW_EXAMPLES) + strlen(name) + 2;
	char *p = malloc(n);
	snprintf(p, n, "%s/%s", FW_EXAMPLES, name);
	return p;
}

/* The payload a real link for `slot` gives: its objcopy .bin, and the ELF
 * flattened independently; both must agree with img. */
static void expect_real_link(const flasher_package_image *img, const char *name, int core, uint32_t slot)
{
	char bin_name[80], elf_name[80];
	snprintf(bin_name, sizeof bin_name, "%s.bin", name);
	snprintf(elf_name, sizeof elf_name, "%s.elf", name);
	char *bin_path = fw(bin_name), *elf_path = fw(elf_name);
	size_t bin_len, elf_len, flat_len;
	uint8_t *bin = read_bytes(bin_path, &bin_len), *elf = read_bytes(elf_path, &elf_len), *flat;
	cr_assert_not_null(bin, "%s", bin_path);
	cr_assert_not_null(elf, "%s", elf_path);
	cr_assert_eq(flasher__elf_load(elf, elf_len, elf_path, slot + FLBOOT_HEADER_AREA,
	                               slot + FLBOOT_CORE_SLOT_SIZE((unsigned)core), &flat, &flat_len),
	             0, "%s", flasher_error_last());
	cr_assert_eq(img->slot, slot);
	cr_assert_eq(img->load_address, slot + FLBOOT_HEADER_AREA);
	cr_assert_eq(img->payload_size, bin_len, "%s: %zu bytes, the real link %zu", name, img->payload_size, bin_len);
	cr_assert_eq(flat_len, bin_len);
	for (size_t i = 0; i < bin_len; i++)
		cr_assert_eq(img->payload[i], bin[i], "%s: byte 0x%zx (address 0x%08zx) is 0x%02x, the real link has 0x%02x",
		             name, i, slot + FLBOOT_HEADER_AREA + i, img->payload[i], bin[i]);
	cr_assert_arr_eq(flat, bin, bin_len, "%s: flattened ELF differs from its objcopy .bin", name);
	free(flat);
	free(bin);
	free(elf);
	free(bin_path);
	free(elf_path);
}

/* Pack one slot's ELF alone; the other slot's build must be that slot's
 * real link, and the given one unchanged. Both directions. */
static void prove(const char *name, int core)
{
	char a_name[48], b_name[48], a_elf[64], b_elf[64];
	snprintf(a_name, sizeof a_name, "%s", name);
	snprintf(b_name, sizeof b_name, "%s-b", name);
	snprintf(a_elf, sizeof a_elf, "%s.elf", a_name);
	snprintf(b_elf, sizeof b_elf, "%s.elf", b_name);
	uint32_t sa = FLBOOT_SLOT_ADDR((unsigned)core, 0u), sb = FLBOOT_SLOT_ADDR((unsigned)core, 1u);
	for (int from_b = 0; from_b < 2; from_b++) {
		char *src = fw(from_b ? b_elf : a_elf);
		flasher_package *pkg = core == FLASHER_CORE_CM7 ? pack(src, NULL, NULL, NULL) : pack(NULL, NULL, src, NULL);
		flasher_package_image ia, ib;
		cr_assert_eq(flasher_package_image_for(pkg, core, sa, &ia), 0, "%s", flasher_error_last());
		cr_assert_eq(flasher_package_image_for(pkg, core, sb, &ib), 0, "%s", flasher_error_last());
		expect_real_link(&ia, a_name, core, sa);
		expect_real_link(&ib, b_name, core, sb);
		/* Not trivially equal: the move changed bytes (vector table at least). */
		cr_assert_neq(memcmp(ia.payload, ib.payload, ia.payload_size), 0);
		flasher_package_free(pkg);
		free(src);
	}
}

Test(reloc, example_cm7_app_relocates_to_the_exact_other_slot_link)
{
	prove("app-cm7", FLASHER_CORE_CM7);
}

Test(reloc, example_cm4_app_relocates_to_the_exact_other_slot_link)
{
	prove("app-cm4", FLASHER_CORE_CM4);
}

Test(reloc, newlib_heavy_app_relocates_to_the_exact_other_slot_link)
{
	prove("newlib-cm7", FLASHER_CORE_CM7);
}

/* Two builds given: taken as they are, each in its slot. */
Test(reloc, two_bin_builds_per_core_are_taken_as_they_are)
{
	char *a7 = fw("app-cm7.bin"), *b7 = fw("app-cm7-b.bin"), *a4 = fw("app-cm4.bin"), *b4 = fw("app-cm4-b.bin");
	flasher_package *pkg = pack(a7, b7, a4, b4);
	flasher_package_image img;
	cr_assert_eq(flasher_package_image_count(pkg), 2);
	for (int core = 1; core <= 2; core++)
		for (unsigned s = 0; s < 2; s++) {
			uint32_t slot = FLBOOT_SLOT_ADDR((unsigned)core, s);
			cr_assert_eq(flasher_package_image_for(pkg, core, slot, &img), 0, "%s", flasher_error_last());
			expect_real_link(&img, core == 1 ? (s ? "app-cm7-b" : "app-cm7") : (s ? "app-cm4-b" : "app-cm4"), core,
			                 slot);
		}
	flasher_package_free(pkg);
	/* Swapped: the slot B link given as the slot A build. */
	cr_assert_eq(pack_err(b7, a7, NULL, NULL), FLASHER_EFORMAT);
	static const char *const n1[] = {"app-cm7-b.bin", "slot A build", "--cm7", "linked for slot B", NULL};
	expect_detail(n1);
	/* A slot A .bin alone: the error asks for the slot B build. */
	cr_assert_eq(pack_err(NULL, NULL, a4, NULL), FLASHER_EFORMAT);
	static const char *const n2[] = {"app-cm4.bin", "vector table", "slot A", "--cm4-b", NULL};
	expect_detail(n2);
	free(a7);
	free(b7);
	free(a4);
	free(b4);
}

/* ---- refusals, on a real ELF with one relocation or all of them changed - */

/* Section headers of an ELF32 LE file. */
static uint8_t *shdr(uint8_t *elf, unsigned i)
{
	return elf + le32(elf + 32) + (size_t)i * (elf[46] | elf[47] << 8);
}

static unsigned shnum(const uint8_t *elf)
{
	return elf[48] | elf[49] << 8;
}

Test(reloc, an_elf_without_relocations_needs_emit_relocs_or_the_other_build)
{
	char *src = fw("app-cm7.elf"), *p = path_in(dir, "norel.elf");
	size_t len;
	uint8_t *elf = read_bytes(src, &len);
	int changed = 0;
	for (unsigned i = 0; i < shnum(elf); i++)
		if (le32(shdr(elf, i) + 4) == 9) { /* SHT_REL -> SHT_NULL */
			memset(shdr(elf, i) + 4, 0, 4);
			changed++;
		}
	cr_assert_gt(changed, 0, "app-cm7.elf has no SHT_REL sections: not linked with --emit-relocs?");
	write_bytes(p, elf, len);
	cr_assert_eq(pack_err(p, NULL, NULL, NULL), FLASHER_EFORMAT);
	static const char *const needles[] = {"norel.elf", "slot A", "--emit-relocs", "--cm7-b", NULL};
	expect_detail(needles);
	free(elf);
	free(src);
	free(p);
}

/* An R_ARM_ABS32 against an address in the slot turned into R_ARM_ABS16
 * (a field that cannot hold the moved address): refused, naming it. */
Test(reloc, a_relocation_that_cannot_move_is_refused_by_name)
{
	char *src = fw("app-cm4.elf"), *p = path_in(dir, "abs16.elf");
	size_t len;
	uint8_t *elf = read_bytes(src, &len);
	int done = 0;
	for (unsigned i = 0; i < shnum(elf) && !done; i++) {
		uint8_t *sh = shdr(elf, i);
		if (le32(sh + 4) != 9)
			continue;
		uint8_t *sym = elf + le32(shdr(elf, le32(sh + 24)) + 16);
		for (uint32_t r = 0; r + 8 <= le32(sh + 20) && !done; r += 8) {
			uint8_t *rel = elf + le32(sh + 16) + r;
			uint32_t info = le32(rel + 4), value = le32(sym + (info >> 8) * 16 + 4);
			if ((info & 0xFF) == 2 && value >= FLBOOT_CM4_SLOT_A_ADDR &&
			    value < FLBOOT_CM4_SLOT_A_ADDR + FLBOOT_CM4_SLOT_SIZE) {
				rel[4] = 5; /* R_ARM_ABS16 */
				done = 1;
			}
		}
	}
	cr_assert(done, "no R_ARM_ABS32 into the slot in app-cm4.elf");
	write_bytes(p, elf, len);
	cr_assert_eq(pack_err(NULL, NULL, p, NULL), FLASHER_EUNSUPPORTED);
	static const char *const needles[] = {"abs16.elf", "R_ARM_ABS16", "0x08180400", NULL};
	expect_detail(needles);
	free(elf);
	free(src);
	free(p);
}
#endif

/* ---- .bin inputs ----------------------------------------------------------- */

static char *bin_with_reset(const char *name, uint32_t reset, size_t n)
{
	uint8_t *b = malloc(n);
	fill_code_like(b, n, 5);
	b[0] = 0x00, b[1] = 0x00, b[2] = 0x02, b[3] = 0x20; /* SP 0x20020000 */
	for (int i = 0; i < 4; i++)
		b[4 + i] = (uint8_t)(reset >> (8 * i));
	char *p = path_in(dir, name);
	write_bytes(p, b, n);
	free(b);
	return p;
}

Test(reloc, a_bin_linked_in_slot_b_alone_is_refused_naming_both_flags)
{
	char *p = bin_with_reset("b.bin", FLBOOT_CM7_SLOT_B_ADDR + 0x400 + 0x199, 4096);
	cr_assert_eq(pack_err(p, NULL, NULL, NULL), FLASHER_EFORMAT);
	static const char *const needles[] = {"b.bin", "slot B", "0x08080599", "--cm7", NULL};
	expect_detail(needles);
	free(p);
}

Test(reloc, a_slot_b_build_needs_the_slot_a_build)
{
	char *p = bin_with_reset("b.bin", FLBOOT_CM4_SLOT_B_ADDR + 0x401, 4096);
	cr_assert_eq(pack_err(NULL, NULL, NULL, p), FLASHER_EINVAL);
	static const char *const needles[] = {"--cm4-b", "needs --cm4", NULL};
	expect_detail(needles);
	free(p);
}

Test(reloc, the_lookup_refuses_addresses_that_are_not_a_slot)
{
	char *p = bin_with_reset("any.bin", 0x00000101, 4096);
	flasher_package *pkg = pack(p, NULL, NULL, NULL);
	flasher_package_image img;
	cr_assert_eq(flasher_package_image_for(pkg, FLASHER_CORE_CM7, 0x08020400, &img), FLASHER_EINVAL);
	cr_assert_eq(flasher_package_image_for(pkg, FLASHER_CORE_CM7, FLBOOT_CM4_SLOT_A_ADDR, &img), FLASHER_EINVAL);
	cr_assert_eq(flasher_package_image_for(pkg, FLASHER_CORE_CM4, 0, &img), FLASHER_ENOTFOUND);
	cr_assert_eq(flasher_package_image_for(pkg, FLASHER_CORE_CM7, 0, &img), 0);
	flasher_package_free(pkg);
	free(p);
}

/* ---- format 1 packages (before run in place) still open ------------------ */

static void put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

/* A format-1 package as the previous flasher wrote it: one slot A build per
 * core, no header_size member. Made from a format-2 one by blanking
 * header_size (JSON whitespace keeps every offset) and resealing. */
Test(reloc, a_format_1_package_cannot_carry_images_that_run_anywhere)
{
	char *p7 = bin_with_reset("a.bin", 0x101, 3000), *p4 = bin_with_reset("b.bin", 0x101, 2000);
	flasher_package *pkg = pack(p7, NULL, p4, NULL);
	flasher_package_free(pkg);
	char *path = path_in(dir, "p.fwpkg");
	size_t len;
	uint8_t *f = read_bytes(path, &len);
	uint32_t mlen = le32(f + 24);
	char *m = (char *)f + 64;
	char *fmt = memmem(m, mlen, "flasher-package/2", 17);
	cr_assert_not_null(fmt);
	fmt[16] = '1';
	int blanked = 0;
	for (char *h; (h = memmem(m, mlen, "\"header_size\":\t128,", 19)); blanked++)
		memset(h, ' ', 19);
	cr_assert_eq(blanked, 2);
	f[8] = 1; /* format_version */
	put32(f + 28, (uint32_t)crc32(0, (const Bytef *)m, mlen));
	put32(f + 60, (uint32_t)crc32(0, f, 60));
	/* These .bins run anywhere (load address 0), which format 1 cannot
	 * say (it held slot A builds only): refused by name. */
	cr_assert_eq(flasher_package_open_memory(&pkg, f, len), FLASHER_EFORMAT);
	static const char *const needles[] = {"load address 0x00000000", "0x08020000", NULL};
	expect_detail(needles);
	/* A format-1 file with a format-2 manifest is refused. */
	fmt[16] = '2';
	put32(f + 28, (uint32_t)crc32(0, (const Bytef *)m, mlen));
	put32(f + 60, (uint32_t)crc32(0, f, 60));
	cr_assert_eq(flasher_package_open_memory(&pkg, f, len), FLASHER_EFORMAT);
	free(f);
	free(path);
	free(p7);
	free(p4);
}
