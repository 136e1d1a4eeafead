/* pack's inputs besides ELF: Intel HEX and S-record files (sparse records,
 * extended addresses, checksums, addresses checked against the slot), the
 * vector table check every build passes, and files that are no firmware at
 * all (text, packages, archives) refused naming the file and why. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "flasher.h"
#include "flboot/layout.h"
#include "helpers.h"
#include "memimage.h"

#define APP7_A (FLBOOT_CM7_SLOT_A_ADDR + FLBOOT_HEADER_AREA)
#define APP7_B (FLBOOT_CM7_SLOT_B_ADDR + FLBOOT_HEADER_AREA)
#define APP4_A (FLBOOT_CM4_SLOT_A_ADDR + FLBOOT_HEADER_AREA)
#define APP4_B (FLBOOT_CM4_SLOT_B_ADDR + FLBOOT_HEADER_AREA)
#define FW_SIZE 6000u
/* Bytes [GAP_AT, GAP_AT + GAP_LEN) are erased flash: the record files
 * leave them out (sparse), the .bin holds 0xFF there. */
#define GAP_AT 0x800u
#define GAP_LEN 0x400u

static char *dir;

static void setup(void)
{
	dir = make_temp_dir();
}

static void teardown(void)
{
	rm_tree(dir);
	free(dir);
}

TestSuite(inputs, .init = setup, .fini = teardown);

/* Firmware as a linker lays it out for app: vector table, code, a gap. */
static void firmware(uint8_t *fw, uint32_t app, uint32_t sp, uint32_t seed)
{
	fill_code_like(fw, FW_SIZE, seed);
	put_vectors(fw, sp, app + 0x1C1u);
	memset(fw + GAP_AT, 0xFF, GAP_LEN);
}

/* ---- writers of the two record formats (as objcopy / srec_cat do) -------- */

/* Intel HEX of fw at addr: rs-byte records, erased runs left out; with
 * `shuffle`, records in reverse order each after its own type 04 record. */
static char *write_ihex(const char *name, const uint8_t *fw, size_t len, uint32_t addr, size_t rs, int shuffle)
{
	size_t nrec = (len + rs - 1) / rs, cap = nrec * 64 + 64, at = 0;
	char *txt = malloc(cap);
	uint32_t upper = 0xFFFFFFFFu;
	for (size_t k = 0; k < nrec; k++) {
		size_t r = shuffle ? nrec - 1 - k : k;
		size_t off = r * rs, n = len - off < rs ? len - off : rs;
		int erased = 1;
		for (size_t i = 0; i < n; i++)
			erased &= fw[off + i] == 0xFF;
		if (erased)
			continue;
		uint32_t a = addr + (uint32_t)off;
		if (shuffle || a >> 16 != upper) {
			upper = a >> 16;
			uint8_t sum = (uint8_t)(2 + 4 + (upper >> 8) + upper);
			at += (size_t)sprintf(txt + at, ":02000004%04X%02X\r\n", upper, (uint8_t)-sum);
		}
		uint8_t sum = (uint8_t)(n + (a >> 8) + a);
		at += (size_t)sprintf(txt + at, ":%02zX%04X00", n, a & 0xFFFFu);
		for (size_t i = 0; i < n; i++) {
			at += (size_t)sprintf(txt + at, "%02X", fw[off + i]);
			sum = (uint8_t)(sum + fw[off + i]);
		}
		at += (size_t)sprintf(txt + at, "%02X\r\n", (uint8_t)-sum);
	}
	uint32_t e = addr + 0x1C1u; /* start linear address: the entry point */
	uint8_t esum = (uint8_t)(4 + 5 + (e >> 24) + (e >> 16) + (e >> 8) + e);
	at += (size_t)sprintf(txt + at, ":04000005%08X%02X\r\n:00000001FF\r\n", e, (uint8_t)-esum);
	char *p = path_in(dir, name);
	write_bytes(p, txt, at);
	free(txt);
	return p;
}

/* S-record file (S0, S3 data, S5 count, S7) of fw at addr, sparse. */
static char *write_srec(const char *name, const uint8_t *fw, size_t len, uint32_t addr, size_t rs)
{
	size_t nrec = (len + rs - 1) / rs, cap = nrec * 80 + 128, at = 0, ndata = 0;
	char *txt = malloc(cap);
	at += (size_t)sprintf(txt + at, "S00600004844521B\n"); /* "HDR" */
	for (size_t r = 0; r < nrec; r++) {
		size_t off = r * rs, n = len - off < rs ? len - off : rs;
		int erased = 1;
		for (size_t i = 0; i < n; i++)
			erased &= fw[off + i] == 0xFF;
		if (erased)
			continue;
		uint32_t a = addr + (uint32_t)off;
		unsigned sum = (unsigned)(n + 5) + (a >> 24) + ((a >> 16) & 0xFF) + ((a >> 8) & 0xFF) + (a & 0xFF);
		at += (size_t)sprintf(txt + at, "S3%02zX%08X", n + 5, a);
		for (size_t i = 0; i < n; i++) {
			at += (size_t)sprintf(txt + at, "%02X", fw[off + i]);
			sum += fw[off + i];
		}
		at += (size_t)sprintf(txt + at, "%02X\n", (uint8_t)~sum);
		ndata++;
	}
	unsigned sum = 3 + (unsigned)(ndata >> 8) + (unsigned)(ndata & 0xFF);
	at += (size_t)sprintf(txt + at, "S503%04zX%02X\n", ndata, (uint8_t)~sum);
	uint32_t e = addr + 0x1C1u;
	sum = 5 + (e >> 24) + ((e >> 16) & 0xFF) + ((e >> 8) & 0xFF) + (e & 0xFF);
	at += (size_t)sprintf(txt + at, "S705%08X%02X\n", e, (uint8_t)~sum);
	char *p = path_in(dir, name);
	write_bytes(p, txt, at);
	free(txt);
	return p;
}

static char *write_file(const char *name, const void *data, size_t len)
{
	char *p = path_in(dir, name);
	write_bytes(p, data, len);
	return p;
}

static int pack_files(const char *cm7, const char *cm7_b, const char *cm4, const char *cm4_b, const char *out_name)
{
	char *out = path_in(dir, out_name);
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

/* The payload each build of a package holds, by core and slot. */
static void expect_payload(const char *pkg_name, flasher_core core, unsigned slot, const uint8_t *want, size_t len)
{
	char *p = path_in(dir, pkg_name);
	flasher_package *pkg;
	cr_assert_eq(flasher_package_open(&pkg, p), 0, "%s", flasher_error_last());
	flasher_package_image img;
	cr_assert_eq(flasher_package_image_for(pkg, core, FLBOOT_SLOT_ADDR((unsigned)core, slot), &img), 0, "%s",
	             flasher_error_last());
	cr_assert_eq(img.payload_size, len);
	cr_assert_arr_eq(img.payload, want, len, "the %s slot %c payload differs from the firmware",
	                 core == FLASHER_CORE_CM7 ? "cm7" : "cm4", 'A' + slot);
	flasher_package_free(pkg);
	free(p);
}

/* ---- Intel HEX and S-record ------------------------------------------------ */

Test(inputs, hex_and_srec_pairs_pack_to_the_same_payload_as_the_bins)
{
	static uint8_t a7[FW_SIZE], b7[FW_SIZE], a4[FW_SIZE], b4[FW_SIZE];
	firmware(a7, APP7_A, 0x20020000u, 1);
	firmware(b7, APP7_B, 0x20020000u, 1);
	firmware(a4, APP4_A, 0x30048000u, 2);
	firmware(b4, APP4_B, 0x30048000u, 2);
	/* HEX for the CM7 (16-byte records, reverse order, a type 04 before
	 * each), S-record for the CM4 (32-byte records). */
	char *h7a = write_ihex("a7.hex", a7, FW_SIZE, APP7_A, 16, 1), *h7b = write_ihex("b7.hex", b7, FW_SIZE, APP7_B, 32, 0);
	char *s4a = write_srec("a4.srec", a4, FW_SIZE, APP4_A, 32), *s4b = write_srec("b4.s19", b4, FW_SIZE, APP4_B, 16);
	cr_assert_eq(pack_files(h7a, h7b, s4a, s4b, "rec.fwpkg"), 0, "%s", flasher_error_last());
	expect_payload("rec.fwpkg", FLASHER_CORE_CM7, 0, a7, FW_SIZE);
	expect_payload("rec.fwpkg", FLASHER_CORE_CM7, 1, b7, FW_SIZE);
	expect_payload("rec.fwpkg", FLASHER_CORE_CM4, 0, a4, FW_SIZE);
	expect_payload("rec.fwpkg", FLASHER_CORE_CM4, 1, b4, FW_SIZE);
	/* The other way round, and mixed with a .bin: the contents decide. */
	char *bin7b = write_file("b7.bin", b7, FW_SIZE);
	char *s7a = write_srec("a7.srec", a7, FW_SIZE, APP7_A, 16);
	cr_assert_eq(pack_files(s7a, bin7b, NULL, NULL, "mixed.fwpkg"), 0, "%s", flasher_error_last());
	expect_payload("mixed.fwpkg", FLASHER_CORE_CM7, 0, a7, FW_SIZE);
	expect_payload("mixed.fwpkg", FLASHER_CORE_CM7, 1, b7, FW_SIZE);
	free(h7a), free(h7b), free(s4a), free(s4b), free(bin7b), free(s7a);
}

Test(inputs, one_record_file_cannot_move_to_the_other_slot)
{
	static uint8_t a7[FW_SIZE];
	firmware(a7, APP7_A, 0x20020000u, 3);
	char *h = write_ihex("app.hex", a7, FW_SIZE, APP7_A, 16, 0);
	cr_assert_eq(pack_files(h, NULL, NULL, NULL, "x.fwpkg"), FLASHER_EFORMAT);
	static const char *const needles[] = {"app.hex", "slot A", "--cm7-b", NULL};
	expect_detail(needles);
	free(h);
}

Test(inputs, ihex_segment_addresses_wrap_inside_their_segment_and_start_records_are_read)
{
	/* Type 02 segment 0x1000 (base 0x10000), a record at offset 0xFFFE
	 * with 4 bytes: two at 0x1FFFE, two wrap to 0x10000. Lower-case hex,
	 * blank lines and LF endings are fine. */
	const char *txt = ":020000021000EC\n"
	                  "\n"
	                  ":04FFFE00a1b2c3d415\n"
	                  ":0400000300001000E9\n"
	                  ":00000001FF\n";
	flasher__memimage m = {0};
	cr_assert_eq(flasher__ihex_parse((const uint8_t *)txt, strlen(txt), "seg.hex", &m), 0, "%s",
	             flasher_error_last());
	uint8_t *flat;
	size_t n;
	cr_assert_eq(flasher__memimage_flatten(&m, "seg.hex", 0x10000u, 0x20000u, &flat, &n), 0, "%s",
	             flasher_error_last());
	cr_assert_eq(n, 0x10000u);
	cr_assert_eq(flat[0xFFFE], 0xA1);
	cr_assert_eq(flat[0xFFFF], 0xB2);
	cr_assert_eq(flat[0], 0xC3);
	cr_assert_eq(flat[1], 0xD4);
	cr_assert_eq(flat[2], 0xFF, "gaps read as erased flash");
	free(flat);
	flasher__memimage_free(&m);
}

/* Change each hex digit of each record to every other digit: the reader
 * refuses every one (a changed nibble changes the byte sum mod 256, a
 * changed count no longer matches the record). */
static void every_digit_change_is_refused(const char *txt, int (*parse)(const uint8_t *, size_t, const char *,
                                                                          flasher__memimage *),
                                          size_t skip_lead)
{
	size_t len = strlen(txt), tried = 0;
	char *copy = malloc(len + 1);
	for (size_t i = 0; i < len; i++) {
		/* Digits only, not the record mark or the S-record type digit. */
		size_t col = 0;
		while (col < i && txt[i - col - 1] != '\n')
			col++;
		if (col < skip_lead || txt[i] == '\n' || txt[i] == '\r')
			continue;
		for (const char *d = "0123456789ABCDEF"; *d; d++) {
			if (*d == txt[i])
				continue;
			memcpy(copy, txt, len + 1);
			copy[i] = *d;
			flasher__memimage m = {0};
			int err = parse((const uint8_t *)copy, len, "f", &m);
			flasher__memimage_free(&m);
			cr_assert(err == FLASHER_ECORRUPT || err == FLASHER_EFORMAT,
			          "changing byte %zu ('%c' to '%c') was accepted (%d)", i, txt[i], *d, err);
			tried++;
		}
	}
	cr_assert_gt(tried, 100);
	free(copy);
}

Test(inputs, every_changed_digit_is_caught_by_the_checksums)
{
	static uint8_t fw[96];
	fill_code_like(fw, sizeof fw, 9);
	char *h = write_ihex("c.hex", fw, sizeof fw, APP7_A, 16, 0);
	char *s = write_srec("c.srec", fw, sizeof fw, APP7_A, 16);
	size_t hl, sl;
	char *ht = (char *)read_bytes(h, &hl), *st = (char *)read_bytes(s, &sl);
	ht = realloc(ht, hl + 1), ht[hl] = '\0';
	st = realloc(st, sl + 1), st[sl] = '\0';
	every_digit_change_is_refused(ht, flasher__ihex_parse, 1);
	every_digit_change_is_refused(st, flasher__srec_parse, 2);
	/* The first checksum failure names the line and the expected value. */
	size_t cs = strlen(":020000040802"); /* line 1's checksum digits */
	ht[cs] = ht[cs] == '0' ? '1' : '0';
	flasher__memimage m = {0};
	cr_assert_eq(flasher__ihex_parse((const uint8_t *)ht, hl, "c.hex", &m), FLASHER_ECORRUPT);
	flasher__memimage_free(&m);
	static const char *const needles[] = {"c.hex", "line 1", "checksum", NULL};
	expect_detail(needles);
	free(ht), free(st), free(h), free(s);
}

Test(inputs, a_file_cut_at_any_line_is_refused)
{
	static uint8_t fw[200];
	fill_code_like(fw, sizeof fw, 4);
	char *paths[2] = {write_ihex("t.hex", fw, sizeof fw, APP7_A, 16, 0), write_srec("t.srec", fw, sizeof fw, APP7_A, 16)};
	for (int k = 0; k < 2; k++) {
		size_t len;
		uint8_t *txt = read_bytes(paths[k], &len);
		size_t cuts = 0;
		for (size_t i = 0; i + 1 < len; i++) {
			if (txt[i] != '\n')
				continue;
			flasher__memimage m = {0};
			int err = k ? flasher__srec_parse(txt, i + 1, "t", &m) : flasher__ihex_parse(txt, i + 1, "t", &m);
			flasher__memimage_free(&m);
			cr_assert_eq(err, FLASHER_EFORMAT, "%s cut after byte %zu accepted", paths[k], i);
			cr_assert(strstr(flasher_error_last(), "truncated") || strstr(flasher_error_last(), "no data"), "%s",
			          flasher_error_last());
			cuts++;
		}
		cr_assert_gt(cuts, 10);
		free(txt);
		free(paths[k]);
	}
}

Test(inputs, srec_count_record_catches_a_lost_line)
{
	static uint8_t fw[128];
	fill_code_like(fw, sizeof fw, 6);
	char *s = write_srec("lost.srec", fw, sizeof fw, APP7_A, 16);
	size_t len;
	char *txt = (char *)read_bytes(s, &len);
	/* Drop the second data record (line 3): its neighbours still parse. */
	char *l3 = txt;
	for (int i = 0; i < 2; i++)
		l3 = strchr(l3, '\n') + 1;
	char *l4 = strchr(l3, '\n') + 1;
	memmove(l3, l4, (size_t)(txt + len - l4));
	len -= (size_t)(l4 - l3);
	flasher__memimage m = {0};
	cr_assert_eq(flasher__srec_parse((const uint8_t *)txt, len, "lost.srec", &m), FLASHER_EFORMAT);
	flasher__memimage_free(&m);
	static const char *const needles[] = {"lost.srec", "S5", "counts 8", "holds 7", NULL};
	expect_detail(needles);
	free(txt);
	free(s);
}

Test(inputs, records_outside_the_slot_or_given_twice_are_refused_naming_the_line)
{
	static uint8_t a7[FW_SIZE], b7[FW_SIZE];
	firmware(a7, APP7_A, 0x20020000u, 7);
	firmware(b7, APP7_B, 0x20020000u, 7);
	char *bb = write_file("b.bin", b7, FW_SIZE);
	/* A HEX that also carries bytes for the bootloader's sector (a merged
	 * bootloader + application file). */
	const char *extra = ":020000040800F2\n:0400000001020304F2\n";
	char *h = write_ihex("app.hex", a7, FW_SIZE, APP7_A, 16, 0);
	size_t len;
	uint8_t *txt = read_bytes(h, &len);
	char *merged = malloc(len + strlen(extra));
	memcpy(merged, extra, strlen(extra));
	memcpy(merged + strlen(extra), txt, len);
	char *m = write_file("merged.hex", merged, len + strlen(extra));
	cr_assert_eq(pack_files(m, bb, NULL, NULL, "x.fwpkg"), FLASHER_EFORMAT);
	static const char *const n1[] = {"merged.hex", "line 2", "0x08000000-0x08000004", "0x08020400-0x08080000", NULL};
	expect_detail(n1);
	/* The same record twice. */
	char *twice = malloc(2 * len);
	memcpy(twice, txt, len - strlen(":00000001FF\r\n"));
	size_t at = len - strlen(":00000001FF\r\n");
	memcpy(twice + at, txt, len);
	char *t = write_file("twice.hex", twice, at + len);
	cr_assert_eq(pack_files(t, bb, NULL, NULL, "x.fwpkg"), FLASHER_EFORMAT);
	static const char *const n2[] = {"twice.hex", "second time", NULL};
	expect_detail(n2);
	free(txt), free(merged), free(twice), free(h), free(m), free(t), free(bb);
}

/* ---- the vector table ------------------------------------------------------- */

static int pack_pair_bin(uint32_t sp_a, uint32_t reset_a, uint32_t sp_b, uint32_t reset_b, flasher_core core)
{
	static uint8_t a[FW_SIZE], b[FW_SIZE];
	fill_code_like(a, FW_SIZE, 8);
	memcpy(b, a, FW_SIZE);
	put_vectors(a, sp_a, reset_a);
	put_vectors(b, sp_b, reset_b);
	char *pa = write_file("a.bin", a, FW_SIZE), *pb = write_file("b.bin", b, FW_SIZE);
	int err = core == FLASHER_CORE_CM7 ? pack_files(pa, pb, NULL, NULL, "v.fwpkg")
	                                   : pack_files(NULL, NULL, pa, pb, "v.fwpkg");
	free(pa), free(pb);
	return err;
}

Test(inputs, every_build_needs_a_stack_in_ram_and_a_thumb_reset_handler_inside_it)
{
	cr_assert_eq(pack_pair_bin(0x20020000u, APP7_A + 0x1C1u, 0x24080000u, APP7_B + 0x1C1u, FLASHER_CORE_CM7), 0,
	             "%s", flasher_error_last());
	/* Stack pointer not in RAM (the slot B build). */
	cr_assert_eq(pack_pair_bin(0x20020000u, APP7_A + 0x1C1u, 0x08000000u, APP7_B + 0x1C1u, FLASHER_CORE_CM7),
	             FLASHER_EFORMAT);
	static const char *const n1[] = {"b.bin", "initial stack pointer 0x08000000", "DTCM", NULL};
	expect_detail(n1);
	/* The CM4 cannot reach the CM7's DTCM. */
	cr_assert_eq(pack_pair_bin(0x20020000u, APP4_A + 0x1C1u, 0x30048000u, APP4_B + 0x1C1u, FLASHER_CORE_CM4),
	             FLASHER_EFORMAT);
	static const char *const n2[] = {"a.bin", "0x20020000", "DTCM", "cannot reach", NULL};
	expect_detail(n2);
	cr_assert_eq(pack_pair_bin(0x30048000u, APP4_A + 0x1C1u, 0x10048000u, APP4_B + 0x1C1u, FLASHER_CORE_CM4), 0,
	             "%s", flasher_error_last());
	/* Thumb bit clear. */
	cr_assert_eq(pack_pair_bin(0x20020000u, APP7_A + 0x1C0u, 0x20020000u, APP7_B + 0x1C1u, FLASHER_CORE_CM7),
	             FLASHER_EFORMAT);
	static const char *const n3[] = {"a.bin", "Thumb", NULL};
	expect_detail(n3);
	/* Reset handler in the slot but past the end of the file. */
	cr_assert_eq(pack_pair_bin(0x20020000u, APP7_A + FW_SIZE + 1u, 0x20020000u, APP7_B + 0x1C1u, FLASHER_CORE_CM7),
	             FLASHER_EFORMAT);
	static const char *const n4[] = {"a.bin", "past the end", NULL};
	expect_detail(n4);
}

Test(inputs, an_elf_whose_vector_table_points_elsewhere_is_refused)
{
	static uint8_t text[512];
	fill_code_like(text, sizeof text, 12);
	put_vectors(text, 0x20020000u, 0x080001C1u); /* reset handler in the bootloader's sector */
	struct elf_seg seg = {1, APP7_A, APP7_A, text, sizeof text, 0};
	size_t len;
	uint8_t *elf = build_elf(&seg, 1, &len);
	char *pa = write_file("a.elf", elf, len);
	free(elf);
	seg.paddr = seg.vaddr = APP7_B;
	elf = build_elf(&seg, 1, &len);
	char *pb = write_file("b.elf", elf, len);
	free(elf);
	cr_assert_eq(pack_files(pa, pb, NULL, NULL, "e.fwpkg"), FLASHER_EFORMAT);
	static const char *const needles[] = {"a.elf", "0x080001C1", "bootloader's sector", NULL};
	expect_detail(needles);
	free(pa), free(pb);
}

Test(inputs, a_run_anywhere_bin_with_a_real_vector_table_must_be_linked_at_0)
{
	static uint8_t fw[FW_SIZE];
	fill_code_like(fw, FW_SIZE, 13);
	/* Linked for 0x08000000 (the usual default): refused, saying where to link. */
	put_vectors(fw, 0x20020000u, 0x080001C1u);
	char *p = write_file("default.bin", fw, FW_SIZE);
	cr_assert_eq(pack_files(p, NULL, NULL, NULL, "r.fwpkg"), FLASHER_EFORMAT);
	static const char *const n1[] = {"default.bin", "bootloader's sector", "0x08020400", "0x08080400", NULL};
	expect_detail(n1);
	free(p);
	/* The CM4's firmware given as the CM7's. */
	put_vectors(fw, 0x30048000u, APP4_A + 0x1C1u);
	p = write_file("m4.bin", fw, FW_SIZE);
	cr_assert_eq(pack_files(p, NULL, NULL, NULL, "r.fwpkg"), FLASHER_EFORMAT);
	static const char *const n2[] = {"cm7 image", "m4.bin", "cm4 slot A", "--cm4", NULL};
	expect_detail(n2);
	free(p);
	/* A RAM build. */
	put_vectors(fw, 0x24080000u, 0x24000201u);
	p = write_file("ram.bin", fw, FW_SIZE);
	cr_assert_eq(pack_files(NULL, NULL, p, NULL, "r.fwpkg"), FLASHER_EFORMAT);
	static const char *const n3[] = {"cm4 image", "ram.bin", "runs from RAM", NULL};
	expect_detail(n3);
	free(p);
	/* Linked at 0 (position independent): one build for either slot. */
	put_vectors(fw, 0x20020000u, 0x000001C1u);
	p = write_file("pic.bin", fw, FW_SIZE);
	cr_assert_eq(pack_files(p, NULL, NULL, NULL, "r.fwpkg"), 0, "%s", flasher_error_last());
	free(p);
}

Test(inputs, random_test_data_still_packs_as_a_run_anywhere_image)
{
	/* What tests and the acceptance checks feed pack: random bytes and
	 * code-like words with no vector table. */
	static uint8_t buf[64 * 1024];
	for (uint32_t seed = 1; seed <= 40; seed++) {
		size_t n = 1000 + seed * 1500;
		if (seed % 2)
			fill_random(buf, n, seed);
		else
			fill_code_like(buf, n, seed);
		char *p = write_file("rnd.bin", buf, n);
		cr_assert_eq(pack_files(p, NULL, p, NULL, "rnd.fwpkg"), 0, "seed %u: %s", seed, flasher_error_last());
		free(p);
	}
}

/* ---- files that are no firmware ------------------------------------------- */

Test(inputs, text_packages_archives_and_foreign_elfs_are_refused_naming_the_file)
{
	static const struct {
		const char *name;
		const char *data;
		size_t len;
		const char *needle;
	} cases[] = {
	    {"README.md", "# Firmware\n\nBuild with make, then flash app.bin.\n", 0, "a text file"},
	    {"notes.txt", "\xef\xbb\xbfVersion 1.2 \xe2\x80\x94 fixes\r\n", 0, "a text file"},
	    {"broken.hex", ":10000000zz\n", 0, "a text file"},
	    {"app.fwpkg", "FLPKG\r\n\x1a\x02\x00", 10, "a flasher package"},
	    {"fw.bin.gz", "\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03", 10, "compressed archive"},
	    {"fw.zip", "PK\x03\x04\x14\x00\x00\x00", 8, "compressed archive"},
	    {"fw.dfu", "DfuSe\x01\x00\x00\x00\x00", 10, "DfuSe"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char *p = write_file(cases[i].name, cases[i].data, cases[i].len ? cases[i].len : strlen(cases[i].data));
		cr_assert_eq(pack_files(p, NULL, NULL, NULL, "n.fwpkg"), FLASHER_EFORMAT, "%s was accepted", cases[i].name);
		const char *const needles[] = {"cm7 image", cases[i].name, cases[i].needle, NULL};
		expect_detail(needles);
		free(p);
	}
	/* An x86-64 ELF (a host program given by mistake). */
	static uint8_t text[64];
	fill_code_like(text, sizeof text, 3);
	struct elf_seg seg = {1, APP7_A, APP7_A, text, sizeof text, 0};
	size_t len;
	uint8_t *elf = build_elf(&seg, 1, &len);
	elf[18] = 62;
	char *p = write_file("host-tool", elf, len);
	free(elf);
	cr_assert_eq(pack_files(p, NULL, NULL, NULL, "n.fwpkg"), FLASHER_EUNSUPPORTED);
	static const char *const n[] = {"cm7 image", "host-tool", "not ARM", NULL};
	expect_detail(n);
	free(p);
}

Test(inputs, the_cli_names_the_refused_file_and_exits_with_the_format_code)
{
	char *txt = write_file("app.txt", "hello\n", 6), *out = path_in(dir, "c.fwpkg"), *err;
	const char *args[] = {"pack", "--product", "demo", "--version", "1.0.0", "--cm7", txt, "-o", out, NULL};
	cr_assert_eq(run_cli(NULL, &err, args), 15, "%s", err);
	cr_assert_not_null(strstr(err, "app.txt"), "%s", err);
	cr_assert_not_null(strstr(err, "text file"), "%s", err);
	free(err);
	/* The checks' usage: random-data .bin files for both cores. */
	static uint8_t r7[200 * 1024], r4[300 * 1024];
	fill_random(r7, sizeof r7, 77);
	fill_random(r4, sizeof r4, 78);
	char *b7 = write_file("cm7.bin", r7, sizeof r7), *b4 = write_file("cm4.bin", r4, sizeof r4);
	const char *ok[] = {"pack", "--product", "demo", "--version", "1.2.3", "--cm7", b7, "--cm4", b4, "-o", out, NULL};
	cr_assert_eq(run_cli(NULL, &err, ok), 0, "%s", err);
	free(err);
	free(txt), free(out), free(b7), free(b4);
}

#ifdef FW_EXAMPLES
/* ---- arm-none-eabi-objcopy's own output ------------------------------------ */

static char *fw(const char *name)
{
	size_t n = strlen(FW_EXAMPLES) + strlen(name) + 2;
	char *p = malloc(n);
	snprintf(p, n, "%s/%s", FW_EXAMPLES, name);
	return p;
}

/* The example applications as objcopy -O ihex / -O srec write them pack to
 * the same builds as their ELF and .bin files. */
Test(inputs, objcopy_hex_and_srec_of_the_example_apps_equal_their_bins)
{
	static const char *const names[] = {"app-cm7.hex", "app-cm7-b.hex", "app-cm4.srec", "app-cm4-b.srec",
	                                    "app-cm7.srec", "app-cm7-b.srec", "app-cm4.hex", "app-cm4-b.hex"};
	static const char *const bins[] = {"app-cm7.bin", "app-cm7-b.bin", "app-cm4.bin", "app-cm4-b.bin"};
	char *p[8], *b[4];
	for (int i = 0; i < 8; i++)
		p[i] = fw(names[i]);
	for (int i = 0; i < 4; i++)
		b[i] = fw(bins[i]);
	for (int round = 0; round < 2; round++) {
		char **q = p + 4 * round;
		cr_assert_eq(pack_files(q[0], q[1], q[2], q[3], "objcopy.fwpkg"), 0, "%s", flasher_error_last());
		for (int i = 0; i < 4; i++) {
			size_t len;
			uint8_t *want = read_bytes(b[i], &len);
			cr_assert_not_null(want, "%s", b[i]);
			expect_payload("objcopy.fwpkg", i < 2 ? FLASHER_CORE_CM7 : FLASHER_CORE_CM4, (unsigned)(i % 2), want, len);
			free(want);
		}
	}
	for (int i = 0; i < 8; i++)
		free(p[i]);
	for (int i = 0; i < 4; i++)
		free(b[i]);
}
#endif
