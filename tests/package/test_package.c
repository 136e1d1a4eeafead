/* Packages through the library: round trip, every corruption detected,
 * compression choice, reproducibility, atomic writes. */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "flasher.h"
#include "flboot/image.h"
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

/* Writes a file of n bytes into the temp dir and returns its path. */
static char *input(const char *name, size_t n, int random_bytes, uint32_t seed)
{
	uint8_t *b = malloc(n ? n : 1);
	if (random_bytes)
		fill_random(b, n, seed);
	else
		fill_code_like(b, n, seed);
	char *p = path_in(dir, name);
	write_bytes(p, b, n);
	free(b);
	return p;
}

static uint8_t *pack_small(size_t *len, int compress)
{
	char *cm7 = input("cm7.bin", 700, 0, 1), *cm4 = input("cm4.bin", 300, 1, 2), *out = path_in(dir, "s.pkg");
	const char *hw[] = {"A", "rev-b"};
	flasher_pack_options o = FLASHER_PACK_OPTIONS_INIT;
	o.product = "demo";
	o.fw_version = "1.2.3";
	o.hw_revs = hw;
	o.hw_rev_count = 2;
	o.cm7_file = cm7;
	o.cm4_file = cm4;
	o.compress = compress;
	int err = flasher_package_build(&o, out);
	cr_assert_eq(err, 0, "build: %s", flasher_error_last());
	uint8_t *b = read_bytes(out, len);
	cr_assert_not_null(b);
	free(cm7);
	free(cm4);
	free(out);
	return b;
}

static uint32_t le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void put_le32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

/* After editing the manifest in place (same length), make its CRC and the
 * header CRC right again, so only the deeper checks can catch the edit. */
static void reseal(uint8_t *pkg)
{
	uint32_t mlen = le32(pkg + 24);
	put_le32(pkg + 28, (uint32_t)crc32(0, pkg + 64, mlen));
	put_le32(pkg + 60, (uint32_t)crc32(0, pkg, 60));
}

/* Replace the first occurrence of `from` inside the manifest with `to`
 * (same length). */
static void edit_manifest(uint8_t *pkg, const char *from, const char *to)
{
	cr_assert_eq(strlen(from), strlen(to));
	uint32_t mlen = le32(pkg + 24);
	char *m = (char *)pkg + 64;
	char saved = m[mlen];
	m[mlen] = '\0';
	char *at = strstr(m, from);
	m[mlen] = saved;
	cr_assert_not_null(at, "'%s' not in the manifest", from);
	memcpy(at, to, strlen(to));
	reseal(pkg);
}

TestSuite(package, .init = setup, .fini = teardown);

Test(package, round_trip_keeps_everything)
{
	uint8_t cm7[5000], cm4[3000];
	fill_code_like(cm7, sizeof cm7, 11);
	fill_code_like(cm4, sizeof cm4, 12);
	char *p7 = path_in(dir, "a.bin"), *p4 = path_in(dir, "b.bin"), *out = path_in(dir, "p.pkg");
	write_bytes(p7, cm7, sizeof cm7);
	write_bytes(p4, cm4, sizeof cm4);
	const char *hw[] = {"B", "C2"};
	flasher_pack_options o = FLASHER_PACK_OPTIONS_INIT;
	o.product = "demo-board";
	o.fw_version = "2.10.300";
	o.min_bootloader = "1.1.0";
	o.build_id = "git 1a2b3c \"quoted\"";
	o.hw_revs = hw;
	o.hw_rev_count = 2;
	o.cm7_file = p7;
	o.cm4_file = p4;
	cr_assert_eq(flasher_package_build(&o, out), 0, "%s", flasher_error_last());

	flasher_package *pkg;
	cr_assert_eq(flasher_package_open(&pkg, out), 0, "%s", flasher_error_last());
	cr_assert_str_eq(flasher_package_product(pkg), "demo-board");
	cr_assert_eq(flasher_package_version(pkg), (2u << 24) | (10u << 16) | 300u);
	cr_assert_eq(flasher_package_min_bootloader(pkg), (1u << 24) | (1u << 16));
	cr_assert_eq(flasher_package_hw_rev_count(pkg), 2);
	cr_assert_str_eq(flasher_package_hw_rev(pkg, 0), "B");
	cr_assert_str_eq(flasher_package_hw_rev(pkg, 1), "C2");
	cr_assert_null(flasher_package_hw_rev(pkg, 2));
	cr_assert_not_null(strstr(flasher_package_manifest_json(pkg), "git 1a2b3c \\\"quoted\\\""));
	cr_assert_eq(flasher_package_image_count(pkg), 2);

	const uint8_t *want[] = {cm7, cm4};
	size_t want_len[] = {sizeof cm7, sizeof cm4};
	uint32_t want_addr[] = {0, 0}; /* .bins that run anywhere */
	for (size_t i = 0; i < 2; i++) {
		flasher_package_image img;
		cr_assert_eq(flasher_package_image(pkg, i, &img), 0);
		cr_assert_eq(img.core, i == 0 ? FLASHER_CORE_CM7 : FLASHER_CORE_CM4);
		cr_assert_eq(img.payload_size, want_len[i]);
		cr_assert_arr_eq(img.payload, want[i], want_len[i]);
		cr_assert_eq(img.payload_crc32, (uint32_t)crc32(0, want[i], (uInt)want_len[i]));
		cr_assert_eq(img.load_address, want_addr[i]);
		cr_assert(img.compressed, "code-like data should be stored compressed");
		cr_assert_lt(img.stored_size, want_len[i]);
		flboot_image_header h;
		memcpy(&h, img.header, sizeof h);
		cr_assert_eq(h.magic, FLBOOT_IMAGE_MAGIC);
		cr_assert_eq(h.core, img.core);
		cr_assert_eq(h.payload_size, want_len[i]);
		cr_assert_eq(h.payload_crc32, img.payload_crc32);
		cr_assert_arr_eq(h.payload_sha256, img.payload_sha256, 32);
		cr_assert_eq(h.version, flasher_package_version(pkg));
		cr_assert_eq(h.load_address, want_addr[i]);
		cr_assert_str_eq(h.product, "demo-board");
		cr_assert_str_eq(h.hw_revs[1], "C2");
		cr_assert_eq(h.header_crc32, (uint32_t)crc32(0, img.header, 124));
	}
	flasher_package_image a, b;
	cr_assert_eq(flasher_package_find(pkg, FLASHER_CORE_CM4, &b), 0);
	cr_assert_eq(flasher_package_find(pkg, FLASHER_CORE_CM7, &a), 0);
	cr_assert_arr_eq(a.header + offsetof(flboot_image_header, set_id),
	                 b.header + offsetof(flboot_image_header, set_id), 8, "set_id differs between the images");
	cr_assert_eq(flasher_package_image(pkg, 2, &a), FLASHER_EINVAL);

	/* SHA-256 of the file is the package's identity. */
	size_t len;
	uint8_t *file = read_bytes(out, &len);
	flasher_package *again;
	cr_assert_eq(flasher_package_open_memory(&again, file, len), 0);
	cr_assert_arr_eq(flasher_package_sha256(again), flasher_package_sha256(pkg), 32);
	flasher_package_free(again);
	free(file);
	flasher_package_free(pkg);
	flasher_package_free(NULL);
	free(p7);
	free(p4);
	free(out);
}

Test(package, single_core_package_has_one_image)
{
	char *p4 = input("cm4.bin", 1000, 0, 3), *out = path_in(dir, "one.pkg");
	flasher_pack_options o = FLASHER_PACK_OPTIONS_INIT;
	o.product = "x";
	o.fw_version = "0.0.1";
	o.cm4_file = p4;
	cr_assert_eq(flasher_package_build(&o, out), 0, "%s", flasher_error_last());
	flasher_package *pkg;
	cr_assert_eq(flasher_package_open(&pkg, out), 0, "%s", flasher_error_last());
	cr_assert_eq(flasher_package_image_count(pkg), 1);
	cr_assert_eq(flasher_package_hw_rev_count(pkg), 0);
	flasher_package_image img;
	cr_assert_eq(flasher_package_find(pkg, FLASHER_CORE_CM7, &img), FLASHER_ENOTFOUND);
	cr_assert_eq(flasher_package_find(pkg, FLASHER_CORE_CM4, &img), 0);
	cr_assert_eq(img.payload_size, 1000);
	flasher_package_free(pkg);
	free(p4);
	free(out);
}

Test(package, every_single_byte_change_is_detected)
{
	for (int compress = 0; compress <= 1; compress++) {
		size_t len;
		uint8_t *good = pack_small(&len, compress);
		flasher_package *pkg;
		cr_assert_eq(flasher_package_open_memory(&pkg, good, len), 0, "%s", flasher_error_last());
		flasher_package_free(pkg);
		uint8_t *bad = malloc(len);
		static const uint8_t masks[] = {0x01, 0x80, 0xFF, 0x5A};
		size_t tried = 0;
		for (size_t off = 0; off < len; off++) {
			for (size_t k = 0; k < sizeof masks; k++) {
				memcpy(bad, good, len);
				bad[off] ^= masks[k];
				pkg = NULL;
				int err = flasher_package_open_memory(&pkg, bad, len);
				cr_assert_lt(err, 0, "byte %zu ^ 0x%02x (compress %d) not detected", off, masks[k], compress);
				cr_assert_null(pkg);
				cr_assert_neq(flasher_error_last()[0], '\0', "no detail for byte %zu", off);
				tried++;
			}
		}
		cr_assert_eq(tried, 4 * len);
		free(bad);
		free(good);
	}
}

Test(package, truncation_and_trailing_bytes_are_detected)
{
	size_t len;
	uint8_t *good = pack_small(&len, 1);
	flasher_package *pkg;
	for (size_t n = 0; n < len; n++) {
		int err = flasher_package_open_memory(&pkg, good, n);
		cr_assert_lt(err, 0, "truncated to %zu of %zu bytes not detected", n, len);
	}
	uint8_t *longer = malloc(len + 1);
	memcpy(longer, good, len);
	longer[len] = 0;
	cr_assert_eq(flasher_package_open_memory(&pkg, longer, len + 1), FLASHER_EFORMAT);
	cr_assert_not_null(strstr(flasher_error_last(), "trailing"), "%s", flasher_error_last());
	cr_assert_eq(flasher_package_open_memory(&pkg, good, len - 1), FLASHER_EFORMAT);
	cr_assert_not_null(strstr(flasher_error_last(), "truncated"), "%s", flasher_error_last());
	free(longer);
	free(good);
}

Test(package, first_broken_part_is_named)
{
	size_t len;
	uint8_t *good = pack_small(&len, 0);
	uint8_t *bad = malloc(len);
	flasher_package *pkg;
	struct {
		size_t off;
		int code;
		const char *detail;
	} cases[] = {
	    {0, FLASHER_EFORMAT, "not a flasher package"},
	    {20, FLASHER_ECORRUPT, "package header CRC32"},
	    {64 + 5, FLASHER_ECORRUPT, "manifest CRC32"},
	    {len - 1, FLASHER_ECORRUPT, "cm4 image: stored CRC32"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		memcpy(bad, good, len);
		bad[cases[i].off] ^= 0x10;
		cr_assert_eq(flasher_package_open_memory(&pkg, bad, len), cases[i].code, "offset %zu: %s", cases[i].off,
		             flasher_error_last());
		cr_assert_not_null(strstr(flasher_error_last(), cases[i].detail), "offset %zu: '%s' lacks '%s'",
		                   cases[i].off, flasher_error_last(), cases[i].detail);
	}
	free(bad);
	free(good);
}

/* Even with every CRC recomputed, a manifest that disagrees with the image
 * headers, or an image whose payload no longer matches its header, is
 * refused: the CRCs are not the only line of defence. */
Test(package, resealed_lies_are_detected)
{
	size_t len;
	uint8_t *good = pack_small(&len, 0);
	uint8_t *bad = malloc(len);
	flasher_package *pkg;

	memcpy(bad, good, len);
	edit_manifest(bad, "\"1.2.3\"", "\"1.2.4\"");
	cr_assert_eq(flasher_package_open_memory(&pkg, bad, len), FLASHER_EFORMAT);
	cr_assert_not_null(strstr(flasher_error_last(), "version"), "%s", flasher_error_last());

	memcpy(bad, good, len);
	edit_manifest(bad, "\"demo\"", "\"dema\"");
	cr_assert_eq(flasher_package_open_memory(&pkg, bad, len), FLASHER_EFORMAT);
	cr_assert_not_null(strstr(flasher_error_last(), "product"), "%s", flasher_error_last());

	memcpy(bad, good, len);
	edit_manifest(bad, "\"rev-b\"", "\"rev-c\"");
	cr_assert_eq(flasher_package_open_memory(&pkg, bad, len), FLASHER_EFORMAT);
	cr_assert_not_null(strstr(flasher_error_last(), "hardware"), "%s", flasher_error_last());

	/* Change the last payload byte of the (raw) cm4 image and fix its stored
	 * CRC32 in the manifest: the payload CRC32 in the image header catches it. */
	flasher_package_image img;
	cr_assert_eq(flasher_package_open_memory(&pkg, good, len), 0);
	cr_assert_eq(flasher_package_find(pkg, FLASHER_CORE_CM4, &img), 0);
	cr_assert_eq(img.compressed, 0);
	size_t stored_at = len - img.stored_size;
	flasher_package_free(pkg);
	memcpy(bad, good, len);
	uint32_t old_crc = (uint32_t)crc32(0, bad + stored_at, (uInt)(len - stored_at));
	bad[len - 1] ^= 0x01;
	uint32_t new_crc = (uint32_t)crc32(0, bad + stored_at, (uInt)(len - stored_at));
	char from[11], to[11];
	snprintf(from, sizeof from, "\"%08x\"", old_crc);
	snprintf(to, sizeof to, "\"%08x\"", new_crc);
	edit_manifest(bad, from, to);
	cr_assert_eq(flasher_package_open_memory(&pkg, bad, len), FLASHER_ECORRUPT);
	cr_assert_not_null(strstr(flasher_error_last(), "cm4 image payload CRC32"), "%s", flasher_error_last());
	free(bad);
	free(good);
}

Test(package, compression_used_only_when_it_helps)
{
	char *code = input("code.bin", 64 * 1024, 0, 5), *rnd = input("rnd.bin", 64 * 1024, 1, 6);
	char *out = path_in(dir, "c.pkg");
	flasher_pack_options o = FLASHER_PACK_OPTIONS_INIT;
	o.product = "demo";
	o.fw_version = "1.0.0";
	o.cm7_file = code;
	o.cm4_file = rnd;
	cr_assert_eq(flasher_package_build(&o, out), 0, "%s", flasher_error_last());
	flasher_package *pkg;
	cr_assert_eq(flasher_package_open(&pkg, out), 0);
	flasher_package_image a, b;
	flasher_package_find(pkg, FLASHER_CORE_CM7, &a);
	flasher_package_find(pkg, FLASHER_CORE_CM4, &b);
	cr_assert_eq(a.compressed, 1);
	cr_assert_lt(a.stored_size, FLBOOT_IMAGE_HEADER_SIZE + a.payload_size * 3 / 4,
	             "code-like data should shrink by a quarter at least (stored %zu of %zu)", a.stored_size,
	             a.payload_size);
	cr_assert_eq(b.compressed, 0, "random data must stay raw");
	cr_assert_eq(b.stored_size, FLBOOT_IMAGE_HEADER_SIZE + b.payload_size);
	flasher_package_free(pkg);

	o.compress = 0;
	cr_assert_eq(flasher_package_build(&o, out), 0);
	cr_assert_eq(flasher_package_open(&pkg, out), 0);
	flasher_package_find(pkg, FLASHER_CORE_CM7, &a);
	cr_assert_eq(a.compressed, 0, "--no-compress stores raw");
	flasher_package_free(pkg);
	free(code);
	free(rnd);
	free(out);
}

Test(package, reproducible_with_source_date_epoch)
{
	size_t l1, l2;
	uint8_t *a = pack_small(&l1, 1);
	uint8_t *b = pack_small(&l2, 1);
	cr_assert_eq(l1, l2);
	cr_assert_arr_eq(a, b, l1, "same inputs and SOURCE_DATE_EPOCH must give the same bytes");
	cr_assert_not_null(memmem(a, l1, "2023-11-14T22:13:20Z", 20), "created time not from SOURCE_DATE_EPOCH");
	free(a);
	free(b);
}

Test(package, bad_options_are_refused_with_a_reason)
{
	char *p7 = input("cm7.bin", 100, 0, 1), *out = path_in(dir, "o.pkg");
	flasher_pack_options o = FLASHER_PACK_OPTIONS_INIT;
	o.product = "demo";
	o.fw_version = "1.2";
	o.cm7_file = p7;
	cr_assert_eq(flasher_package_build(&o, out), FLASHER_EINVAL);
	cr_assert_not_null(strstr(flasher_error_last(), "1.2"), "%s", flasher_error_last());
	o.fw_version = "1.2.3";
	o.product = "a product id that is too long";
	cr_assert_eq(flasher_package_build(&o, out), FLASHER_EINVAL);
	cr_assert_not_null(strstr(flasher_error_last(), "product"), "%s", flasher_error_last());
	o.product = "demo";
	o.cm7_file = NULL;
	cr_assert_eq(flasher_package_build(&o, out), FLASHER_EINVAL);
	cr_assert_not_null(strstr(flasher_error_last(), "no image"), "%s", flasher_error_last());
	o.cm7_file = "/nonexistent/cm7.bin";
	cr_assert_eq(flasher_package_build(&o, out), FLASHER_ENOTFOUND);
	cr_assert_not_null(strstr(flasher_error_last(), "/nonexistent/cm7.bin"), "%s", flasher_error_last());
	/* A .bin bigger than the slot's payload area. */
	char *big = input("big.bin", FLBOOT_CORE_MAX_PAYLOAD(1u) + 1, 0, 9);
	o.cm7_file = big;
	cr_assert_eq(flasher_package_build(&o, out), FLASHER_EFORMAT);
	cr_assert_not_null(strstr(flasher_error_last(), "at most"), "%s", flasher_error_last());
	cr_assert_eq(access(out, F_OK), -1, "no package may appear after a failure");
	free(big);
	free(p7);
	free(out);
}

Test(package, unwritable_destination_leaves_nothing)
{
	char *p7 = input("cm7.bin", 2000, 0, 1);
	flasher_pack_options o = FLASHER_PACK_OPTIONS_INIT;
	o.product = "demo";
	o.fw_version = "1.2.3";
	o.cm7_file = p7;
	char *missing = path_in(dir, "no-such-dir/p.pkg");
	cr_assert_eq(flasher_package_build(&o, missing), FLASHER_ENOTFOUND, "%s", flasher_error_last());
	cr_assert_not_null(strstr(flasher_error_last(), "p.pkg"), "%s", flasher_error_last());

	/* A read-only directory (root ignores the mode bits, so only check the
	 * refusal when not root; the file-size limit below covers root). */
	char *ro = path_in(dir, "ro");
	cr_assert_eq(mkdir(ro, 0555), 0);
	char *inro = path_in(ro, "p.pkg");
	if (geteuid() != 0) {
		cr_assert_eq(flasher_package_build(&o, inro), FLASHER_EPERM, "%s", flasher_error_last());
		cr_assert_eq(count_entries(ro), 0);
	}
	free(inro);
	free(ro);
	free(missing);
	free(p7);
}

Test(package, failed_write_keeps_the_old_file_and_no_temp)
{
	char *sub = path_in(dir, "out");
	cr_assert_eq(mkdir(sub, 0755), 0);
	char *p7 = input("cm7.bin", 20000, 1, 1), *out = path_in(sub, "p.pkg");
	write_bytes(out, "old", 3);
	flasher_pack_options o = FLASHER_PACK_OPTIONS_INIT;
	o.product = "demo";
	o.fw_version = "1.2.3";
	o.cm7_file = p7;
	/* Writing stops with EFBIG after 4 KiB: a disk-full in the middle. */
	signal(SIGXFSZ, SIG_IGN);
	struct rlimit rl = {4096, 4096};
	cr_assert_eq(setrlimit(RLIMIT_FSIZE, &rl), 0);
	cr_assert_eq(flasher_package_build(&o, out), FLASHER_EIO, "%s", flasher_error_last());
	size_t len;
	uint8_t *b = read_bytes(out, &len);
	cr_assert_eq(len, 3);
	cr_assert_arr_eq(b, "old", 3, "the previous package must survive a failed build");
	cr_assert_eq(count_entries(sub), 1, "a temp file was left behind");
	free(b);
	free(out);
	free(p7);
	free(sub);
}

Test(package, open_reports_missing_file)
{
	flasher_package *pkg = (flasher_package *)1;
	char *p = path_in(dir, "none.pkg");
	cr_assert_eq(flasher_package_open(&pkg, p), FLASHER_ENOTFOUND);
	cr_assert_null(pkg);
	cr_assert_not_null(strstr(flasher_error_last(), "none.pkg"));
	free(p);
}
