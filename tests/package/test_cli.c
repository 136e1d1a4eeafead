/* The real flasher binary: pack, inspect --json, verify, exit codes. */
#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "flboot/sha256.h"
#include "helpers.h"

static char *dir, *cm7, *cm4, *pkg;
static uint8_t bin7[30000], bin4[12000];

static void setup(void)
{
	dir = make_temp_dir();
	fill_code_like(bin7, sizeof bin7, 31);
	fill_random(bin4, sizeof bin4, 32);
	cm7 = path_in(dir, "cm7.bin");
	cm4 = path_in(dir, "cm4.bin");
	pkg = path_in(dir, "p.pkg");
	write_bytes(cm7, bin7, sizeof bin7);
	write_bytes(cm4, bin4, sizeof bin4);
}

static void teardown(void)
{
	rm_tree(dir);
	free(dir);
	free(cm7);
	free(cm4);
	free(pkg);
}

TestSuite(cli_package, .init = setup, .fini = teardown);

static void pack_ok(void)
{
	char *err;
	const char *args[] = {"pack", "--product", "demo", "--version", "1.2.3", "--hw", "B", "--build-id=ci-42",
	                      "--cm7", cm7, "--cm4", cm4, "-o", pkg, NULL};
	int rc = run_cli(NULL, &err, args);
	cr_assert_eq(rc, 0, "pack exited %d: %s", rc, err);
	free(err);
}

static const char *jstr(const cJSON *o, const char *k)
{
	const cJSON *it = cJSON_GetObjectItemCaseSensitive(o, k);
	cr_assert(cJSON_IsString(it), "member '%s' missing", k);
	return it->valuestring;
}

Test(cli_package, pack_inspect_json_verify_round_trip)
{
	pack_ok();
	char *out, *err;
	const char *inspect[] = {"inspect", pkg, "--json", NULL};
	cr_assert_eq(run_cli(&out, &err, inspect), 0, "%s", err);
	cJSON *doc = cJSON_Parse(out);
	cr_assert_not_null(doc, "inspect --json is not one JSON document: %s", out);
	cr_assert_str_eq(jstr(doc, "version"), "1.2.3");
	cr_assert_str_eq(jstr(doc, "product"), "demo");
	cr_assert_str_eq(jstr(doc, "build_id"), "ci-42");
	cr_assert_str_eq(cJSON_GetArrayItem(cJSON_GetObjectItem(doc, "hw_revs"), 0)->valuestring, "B");
	const cJSON *imgs = cJSON_GetObjectItem(doc, "images");
	cr_assert_eq(cJSON_GetArraySize(imgs), 2);
	const uint8_t *bins[] = {bin7, bin4};
	size_t lens[] = {sizeof bin7, sizeof bin4};
	const char *cores[] = {"cm7", "cm4"};
	for (int i = 0; i < 2; i++) {
		const cJSON *e = cJSON_GetArrayItem(imgs, i);
		char want[65];
		snprintf(want, sizeof want, "%08x", (unsigned)crc32(0, bins[i], (uInt)lens[i]));
		cr_assert_str_eq(jstr(e, "core"), cores[i]);
		cr_assert_str_eq(jstr(e, "crc32"), want);
		uint8_t sha[32];
		flboot_sha256(bins[i], lens[i], sha);
		for (int k = 0; k < 32; k++)
			sprintf(want + 2 * k, "%02x", sha[k]);
		cr_assert_str_eq(jstr(e, "sha256"), want);
		cr_assert_eq(cJSON_GetObjectItem(e, "payload_size")->valuedouble, (double)lens[i]);
		cr_assert_str_eq(jstr(e, "compression"), i == 0 ? "zlib" : "none");
	}
	cr_assert(cJSON_IsNull(cJSON_GetObjectItem(doc, "signature")));
	cJSON_Delete(doc);
	free(out);
	free(err);

	const char *human[] = {"inspect", pkg, NULL};
	cr_assert_eq(run_cli(&out, NULL, human), 0);
	cr_assert_not_null(strstr(out, "cm7"), "%s", out);
	free(out);

	const char *verify[] = {"verify", pkg, NULL};
	cr_assert_eq(run_cli(&out, NULL, verify), 0);
	cr_assert_not_null(strstr(out, "OK"), "%s", out);
	free(out);
}

static void flip(const char *path, long off)
{
	FILE *f = fopen(path, "r+b");
	cr_assert_not_null(f);
	fseek(f, off, off < 0 ? SEEK_END : SEEK_SET);
	int c = fgetc(f);
	fseek(f, off, off < 0 ? SEEK_END : SEEK_SET);
	fputc(c ^ 0x5A, f);
	fclose(f);
}

Test(cli_package, verify_names_the_broken_part_and_exits_nonzero)
{
	pack_ok();
	flip(pkg, -1); /* last byte: inside the raw cm4 image */
	char *out, *err;
	const char *verify[] = {"verify", pkg, NULL};
	int rc = run_cli(&out, &err, verify);
	cr_assert_eq(rc, 16, "ECORRUPT should exit 10 + 6, got %d", rc);
	cr_assert_not_null(strstr(err, "cm4 image"), "%s", err);
	cr_assert_not_null(strstr(err, "FLASHER_ECORRUPT"), "%s", err);
	free(out);
	free(err);

	const char *vjson[] = {"verify", "--json", pkg, NULL};
	rc = run_cli(&out, NULL, vjson);
	cr_assert_eq(rc, 16);
	cJSON *doc = cJSON_Parse(out);
	cr_assert_not_null(doc, "%s", out);
	cr_assert(cJSON_IsFalse(cJSON_GetObjectItem(doc, "ok")));
	cr_assert_eq(cJSON_GetObjectItem(doc, "code")->valuedouble, -6);
	cr_assert_not_null(strstr(jstr(doc, "detail"), "stored CRC32"), "%s", out);
	cJSON_Delete(doc);
	free(out);

	const char *inspect[] = {"inspect", pkg, "--json", NULL};
	cr_assert_eq(run_cli(NULL, NULL, inspect), 16, "inspect must refuse a broken package");
}

Test(cli_package, truncated_package_fails_verify)
{
	pack_ok();
	size_t len;
	uint8_t *b = read_bytes(pkg, &len);
	write_bytes(pkg, b, len - 100);
	free(b);
	char *err;
	const char *verify[] = {"verify", pkg, NULL};
	cr_assert_eq(run_cli(NULL, &err, verify), 15, "EFORMAT exits 15: %s", err);
	cr_assert_not_null(strstr(err, "truncated"), "%s", err);
	free(err);
}

Test(cli_package, usage_errors_exit_2_and_help_exits_0)
{
	const char *no_product[] = {"pack", "--version", "1.0.0", "--cm7", cm7, "-o", pkg, NULL};
	const char *no_image[] = {"pack", "--product", "p", "--version", "1.0.0", "-o", pkg, NULL};
	const char *no_value[] = {"pack", "--product", NULL};
	const char *no_pkg[] = {"verify", NULL};
	const char *two_pkgs[] = {"verify", "a", "b", NULL};
	const char *bad_opt[] = {"inspect", "--frobnicate", pkg, NULL};
	const char *const *usage[] = {no_product, no_image, no_value, no_pkg, two_pkgs, bad_opt};
	for (size_t i = 0; i < sizeof usage / sizeof usage[0]; i++) {
		char *err;
		cr_assert_eq(run_cli(NULL, &err, usage[i]), 2, "case %zu: %s", i, err);
		cr_assert_not_null(strstr(err, "--help"), "case %zu should point to --help: %s", i, err);
		free(err);
	}
	const char *cmds[] = {"pack", "inspect", "verify"};
	for (size_t i = 0; i < 3; i++) {
		char *out;
		const char *help[] = {cmds[i], "--help", NULL};
		cr_assert_eq(run_cli(&out, NULL, help), 0);
		char want[40];
		snprintf(want, sizeof want, "Usage: flasher %s", cmds[i]);
		cr_assert_not_null(strstr(out, want), "%s", out);
		free(out);
	}
	/* A bad option value is a usage error naming the flag (issue 13). */
	const char *bad_version[] = {"pack", "--product", "p", "--version", "1.x", "--cm7", cm7, "-o", pkg, NULL};
	char *err;
	cr_assert_eq(run_cli(NULL, &err, bad_version), 2, "a bad --version exits 2: %s", err);
	cr_assert_not_null(strstr(err, "1.x"), "%s", err);
	cr_assert_not_null(strstr(err, "--version"), "%s", err);
	free(err);
}

Test(cli_package, pack_json_summary_and_elf_input)
{
	uint8_t code[256], code_b[256];
	fill_code_like(code, sizeof code, 33);
	put_vectors(code, 0x30048000u, 0x08100481u); /* each build's vector table points into its slot */
	memcpy(code_b, code, sizeof code);
	put_vectors(code_b, 0x30048000u, 0x08180481u);
	struct elf_seg seg = {1, 0x08100400, 0x08100400, code, sizeof code, 0};
	struct elf_seg seg_b = {1, 0x08180400, 0x08180400, code_b, sizeof code, 0};
	size_t len;
	uint8_t *elf = build_elf(&seg, 1, &len);
	char *elfp = path_in(dir, "m4.elf"), *elfp_b = path_in(dir, "m4-b.elf");
	write_bytes(elfp, elf, len);
	free(elf);
	elf = build_elf(&seg_b, 1, &len);
	write_bytes(elfp_b, elf, len);
	char *out, *err;
	const char *args[] = {"pack", "--product", "demo", "--version", "0.1.0", "--cm4", elfp, "--cm4-b", elfp_b,
	                      "--no-compress", "-o", pkg, "--json", NULL};
	cr_assert_eq(run_cli(&out, &err, args), 0, "%s", err);
	cJSON *doc = cJSON_Parse(out);
	cr_assert_not_null(doc, "pack --json: %s", out);
	const cJSON *imgs = cJSON_GetObjectItem(doc, "images");
	cr_assert_eq(cJSON_GetArraySize(imgs), 2, "one entry per build: %s", out);
	for (int i = 0; i < 2; i++) {
		const cJSON *img = cJSON_GetArrayItem(imgs, i);
		cr_assert_str_eq(jstr(img, "core"), "cm4");
		cr_assert_eq(cJSON_GetObjectItem(img, "slot")->valuedouble, i ? 0x08180000 : 0x08100000);
		cr_assert_eq(cJSON_GetObjectItem(img, "payload_size")->valuedouble, sizeof code);
		cr_assert_eq(cJSON_GetObjectItem(img, "sectors")->valuedouble, 1);
		cr_assert_str_eq(jstr(img, "compression"), "none");
	}
	cJSON_Delete(doc);
	free(out);
	free(err);

	/* The same ELF as a CM7 image lies outside the CM7 slot. */
	const char *wrong[] = {"pack", "--product", "demo", "--version", "0.1.0", "--cm7", elfp, "-o", pkg, NULL};
	cr_assert_eq(run_cli(NULL, &err, wrong), 15, "%s", err);
	cr_assert_not_null(strstr(err, "segment 0"), "%s", err);
	free(err);
	free(elfp);
	free(elfp_b);
	free(elf);
}

/* Issue 16: the 1 KiB header area pushes a 128 KiB image into a second
 * sector; pack says so (on stderr), and not for one that fits. */
Test(cli_package, pack_notes_an_image_just_over_a_sector_boundary)
{
	static uint8_t b[128 * 1024];
	fill_random(b, sizeof b, 77);
	b[4] = 0x01, b[5] = 0x01, b[6] = 0, b[7] = 0; /* reset vector in no slot */
	char *over = path_in(dir, "over.bin"), *fits = path_in(dir, "fits.bin"), *out, *err;
	write_bytes(over, b, sizeof b);
	write_bytes(fits, b, sizeof b - 1024);
	const char *a1[] = {"pack", "--product", "demo", "--version", "1.0.0", "--cm4", over, "-o", pkg, NULL};
	cr_assert_eq(run_cli(&out, &err, a1), 0, "%s", err);
	cr_assert_not_null(strstr(err, "note: the cm4 image ends 1024 bytes into sector 2"), "%s", err);
	cr_assert_not_null(strstr(err, "1024 bytes less would save one sector erase"), "%s", err);
	cr_assert_not_null(strstr(out, "2 sectors"), "%s", out);
	free(out);
	free(err);
	const char *a2[] = {"pack", "--product", "demo", "--version", "1.0.0", "--cm4", fits, "-o", pkg, NULL};
	cr_assert_eq(run_cli(&out, &err, a2), 0, "%s", err);
	cr_assert_null(strstr(err, "note:"), "%s", err);
	cr_assert_not_null(strstr(out, "1 sector"), "%s", out);
	free(out);
	free(err);
	free(over);
	free(fits);
}

Test(cli_package, pack_into_missing_directory_fails)
{
	char *bad = path_in(dir, "nope/p.pkg"), *err;
	const char *args[] = {"pack", "--product", "demo", "--version", "1.0.0", "--cm7", cm7, "-o", bad, NULL};
	cr_assert_eq(run_cli(NULL, &err, args), 14, "ENOTFOUND exits 14: %s", err);
	free(err);
	free(bad);
}
