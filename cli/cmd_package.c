/* flasher pack / inspect / verify: firmware packages without a unit.
 * Human output goes to stdout, errors to stderr; with --json, stdout carries
 * exactly one JSON document (docs/package-format.md, "inspect --json"). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "args.h"
#include "cli.h"
#include "flasher.h"
#include "flboot/image.h"
#include "flboot/layout.h"
#include "signature_report.h"

#define MAX_HW 4
/* pack notes an image that ends at most this far into its last sector. */
#define PACK_SECTOR_NOTE_BYTES 4096u

static void hex(const uint8_t *in, size_t n, char *out)
{
	for (size_t i = 0; i < n; i++)
		sprintf(out + 2 * i, "%02x", in[i]);
	out[2 * n] = '\0';
}

static void print_json(cJSON *doc)
{
	char *s = cJSON_Print(doc);
	if (s) {
		fputs(s, stdout);
		fputc('\n', stdout);
		cJSON_free(s);
	}
}

static double ratio(const flasher_package_image *img)
{
	return img->stored_size > img->header_area_size ? (double)img->payload_size / (double)(img->stored_size - img->header_area_size) : 0.0;
}

/* ---- pack ---------------------------------------------------------------- */

int cmd_pack(int argc, char **argv)
{
	flasher_pack_options o = FLASHER_PACK_OPTIONS_INIT;
	cli_list hw = {0}, keys = {0};
	long counter = 0;
	const char *out = NULL;
	int json = 0, no_compress = 0;
	char cm7_help[96], cm4_help[96];
	char cm7b_help[96], cm4b_help[96];
	snprintf(cm7_help, sizeof cm7_help, "Cortex-M7 firmware (with --cm7-b: the build for\nslot A, 0x%08X)",
	         FLBOOT_CM7_SLOT_A_ADDR + FLBOOT_HEADER_AREA);
	snprintf(cm7b_help, sizeof cm7b_help, "the Cortex-M7 build linked for slot B (0x%08X)",
	         FLBOOT_CM7_SLOT_B_ADDR + FLBOOT_HEADER_AREA);
	snprintf(cm4_help, sizeof cm4_help, "Cortex-M4 firmware (with --cm4-b: the build for\nslot A, 0x%08X)",
	         FLBOOT_CM4_SLOT_A_ADDR + FLBOOT_HEADER_AREA);
	snprintf(cm4b_help, sizeof cm4b_help, "the Cortex-M4 build linked for slot B (0x%08X)",
	         FLBOOT_CM4_SLOT_B_ADDR + FLBOOT_HEADER_AREA);
	const cli_opt opts[] = {
	        CLI_OPT_STRING("product", 0, &o.product, "ID", "product id the units report (1..15 characters, no spaces)"),
	        CLI_OPT_CUSTOM("version", &o.fw_version, "X.Y.Z", cli_parse_semver,
	                       "firmware version (major and minor < 256, patch < 65536)"),
	        CLI_OPT_LIST("hw", &hw, "REV", MAX_HW,
	                     "a compatible hardware revision (1..7 characters); repeat up\n"
	                     "to 4 times; none means any revision"),
	        CLI_OPT_CUSTOM("min-bootloader", &o.min_bootloader, "X.Y.Z", cli_parse_semver,
	                       "refuse units whose bootloader is older (default 0.0.0)"),
	        CLI_OPT_STRING("build-id", 0, &o.build_id, "TEXT", "free text recorded in the manifest (git hash, CI job...)"),
	        CLI_OPT_STRING("cm7", 0, &o.cm7_file, "FILE", cm7_help),
	        CLI_OPT_STRING("cm7-b", 0, &o.cm7_b_file, "FILE", cm7b_help),
	        CLI_OPT_STRING("cm4", 0, &o.cm4_file, "FILE", cm4_help),
	        CLI_OPT_STRING("cm4-b", 0, &o.cm4_b_file, "FILE", cm4b_help),
	        CLI_OPT_LIST("sign", &keys, "KEY", 2,
	                     "sign every image with this private key (flasher keygen); KEY is\n"
	                     "a path, fd:N or env:NAME; twice to sign with two keys (rotation)"),
	        CLI_OPT_INT("security-counter", &counter, "N", 0, 4294967295L,
	                    "downgrade floor: units that confirmed a higher counter refuse\n"
	                    "these images (default 0, none)"),
	        CLI_OPT_FLAG("no-compress", 0, &no_compress, "store the images raw (default: zlib when it is smaller)"),
	        CLI_OPT_STRING("output", 'o', &out, "OUT", "package file to write (replaced atomically)"),
	        CLI_OPT_FLAG("json", 0, &json, "print the summary as one JSON object"),
	        CLI_END,
	};
	char desc[1536];
	snprintf(desc, sizeof desc,
	         "Builds one package file holding the firmware of one or both cores, ready to ship.\n"
	         "FILE is an .elf from STM32CubeIDE / arm-none-eabi-gcc (its loadable segments are\n"
	         "placed at their load addresses, gaps filled with 0xFF), an Intel HEX or S-record\n"
	         "file, or a raw .bin image; the contents decide, not the file name, and any other\n"
	         "text file is refused. Every image's vector table must fit its core and slot\n"
	         "(initial stack pointer in RAM, reset handler inside the image).\n"
	         "Images run in place from either slot of their core, so the package holds a build\n"
	         "for each slot: give both (--cm7 and --cm7-b), or one ELF linked with\n"
	         "-Wl,--emit-relocs (pack relocates it to the other slot), or a .bin that runs\n"
	         "from any address (its vector table points into no slot).\n"
	         "Payload at most %u bytes (CM7) and %u bytes (CM4). Give at least one of --cm7/--cm4.\n"
	         "Set SOURCE_DATE_EPOCH to make the package byte-for-byte reproducible.\n",
	         (unsigned)FLBOOT_CORE_MAX_PAYLOAD(1u), (unsigned)FLBOOT_CORE_MAX_PAYLOAD(2u));
	const cli_spec spec = {"pack", "", 0, 0, "Build a firmware package.", desc, opts,
	                       "Example:\n"
	                       "  flasher pack --product demo --version 1.4.0 --hw B --cm7 app_cm7.elf \\\n"
	                       "               --cm4 app_cm4.elf -o demo-1.4.0.fwpkg\n"};
	const char *pos[1];
	int npos;
	int rc = cli_parse(&spec, argc, argv, pos, &npos);
	if (rc) {
		free(hw.v);
		free(keys.v);
		return rc == CLI_PARSED_HELP ? CLI_EXIT_OK : rc;
	}
	o.compress = !no_compress;
	if (!o.product)
		rc = cli_usage_error("pack", "--product ID is required");
	else if (!o.fw_version)
		rc = cli_usage_error("pack", "--version X.Y.Z is required");
	else if (!o.cm7_file && !o.cm4_file)
		rc = cli_usage_error("pack", "give --cm7 FILE, --cm4 FILE or both");
	else if (!out)
		rc = cli_usage_error("pack", "-o OUT is required");
	if (rc) {
		free(hw.v);
		free(keys.v);
		return rc;
	}
	o.hw_revs = hw.v;
	o.hw_rev_count = (size_t)hw.n;
	o.sign_keys = keys.v;
	o.sign_key_count = (size_t)keys.n;
	o.security_counter = (uint32_t)counter;

	int err = flasher_package_build(&o, out);
	free(hw.v);
	free(keys.v);
	if (err)
		return cli_fail(err, "pack");
	/* Read back what was written: the summary shows the real file and
	 * proves it opens. */
	flasher_package *pkg;
	err = flasher_package_open(&pkg, out);
	if (err)
		return cli_fail(err, "pack: reading back the package");
	char sha[65], vs[16];
	hex(flasher_package_sha256(pkg), 32, sha);
	flasher_semver_format(flasher_package_version(pkg), vs, sizeof vs);
	cJSON *doc = json ? cJSON_CreateObject() : NULL, *arr = NULL;
	if (json) {
		cJSON_AddStringToObject(doc, "file", out);
		cJSON_AddStringToObject(doc, "product", flasher_package_product(pkg));
		cJSON_AddStringToObject(doc, "version", vs);
		cJSON_AddStringToObject(doc, "sha256", sha);
		arr = cJSON_AddArrayToObject(doc, "images");
	} else if (cli_verbosity >= 0) {
		printf("packed %s %s\n", flasher_package_product(pkg), vs);
	}
	/* Every build: per core the one for any slot, or slot A and slot B. */
	for (size_t i = 0; i < 2 * flasher_package_image_count(pkg); i++) {
		flasher_package_image first, img;
		flasher_package_image(pkg, i / 2, &first);
		if (i % 2 && first.slot == 0)
			continue;
		if (i % 2 && flasher_package_image_for(pkg, first.core, FLBOOT_SLOT_ADDR((unsigned)first.core, 1u), &img))
			continue;
		if (!(i % 2))
			img = first;
		const char *core = img.core == FLASHER_CORE_CM7 ? "cm7" : "cm4";
		const char *slot = img.slot == 0 ? "any slot" : i % 2 ? "slot B" : "slot A";
		size_t last;
		unsigned sectors = flasher_package_image_sectors(&img, &last);
		if (json) {
			cJSON *e = cJSON_CreateObject();
			cJSON_AddItemToArray(arr, e);
			cJSON_AddStringToObject(e, "core", core);
			cJSON_AddNumberToObject(e, "slot", img.slot);
			cJSON_AddNumberToObject(e, "payload_size", (double)img.payload_size);
			cJSON_AddNumberToObject(e, "stored_size", (double)img.stored_size);
			cJSON_AddStringToObject(e, "compression", img.compressed ? "zlib" : "none");
			cJSON_AddNumberToObject(e, "ratio", ratio(&img));
			cJSON_AddNumberToObject(e, "sectors", sectors);
		} else if (cli_verbosity >= 0) {
			printf("  %s %-8s %8zu bytes -> %8zu stored  %s", core, slot, img.payload_size, img.stored_size,
			       img.compressed ? "zlib" : "raw ");
			if (img.compressed)
				printf(" (ratio %.2f)", ratio(&img));
			printf("  %u sector%s\n", sectors, sectors == 1 ? "" : "s");
		}
		/* The header area counts: an image a few bytes into one more
		 * sector costs a whole sector erase per update (on stderr, so the
		 * JSON stays one document). */
		if (!(i % 2) && sectors > 1 && last <= PACK_SECTOR_NOTE_BYTES)
			fprintf(stderr,
			        "note: the %s image ends %zu bytes into sector %u of its slot (0x%X header area + %zu "
			        "bytes of payload): %zu bytes less would save one sector erase (~1.1 s) per update\n",
			        core, last, sectors, FLBOOT_HEADER_AREA, img.payload_size, last);
	}
	FILE *f = fopen(out, "rb");
	long size = -1;
	if (f && fseek(f, 0, SEEK_END) == 0)
		size = ftell(f);
	if (f)
		fclose(f);
	if (json) {
		cJSON_AddNumberToObject(doc, "file_size", (double)size);
		print_json(doc);
		cJSON_Delete(doc);
	} else if (cli_verbosity >= 0) {
		printf("wrote %s: %ld bytes, sha256 %s\n", out, size, sha);
	}
	flasher_package_free(pkg);
	return CLI_EXIT_OK;
}

/* ---- inspect --------------------------------------------------------------- */

/* Parses "CMD PKG [--key PUBKEY] [--json]" for inspect and verify. */
static int parse_pkg_args(const char *cmd, int argc, char **argv, const char **path, int *json, const char **key,
                          const char *summary, const char *desc, const char *json_help, const char *key_help)
{
	*json = 0;
	*key = NULL;
	const cli_opt opts[] = {CLI_OPT_STRING("key", 0, key, "PUBKEY", key_help),
	                        CLI_OPT_FLAG("json", 0, json, json_help), CLI_END};
	const cli_spec spec = {cmd, "PKG", 1, 1, summary, desc, opts, NULL};
	int npos;
	return cli_parse(&spec, argc, argv, path, &npos);
}

static const char *jstr(const cJSON *o, const char *k)
{
	const cJSON *it = cJSON_GetObjectItemCaseSensitive(o, k);
	return cJSON_IsString(it) ? it->valuestring : NULL;
}

static double jnum(const cJSON *o, const char *k)
{
	const cJSON *it = cJSON_GetObjectItemCaseSensitive(o, k);
	return cJSON_IsNumber(it) ? it->valuedouble : 0;
}

/* ---- signatures (docs/signing.md; the report and the rule are the daemon's too) ---- */

static const char *signer_state(int valid)
{
	return valid == 1 ? "valid" : valid == 0 ? "INVALID" : "not checked";
}

static void print_signers(const char *label, const flasher_signer *s, size_t n)
{
	if (n == 0) {
		printf("%s unsigned\n", label);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		char id[2 * FLASHER_KEY_ID_SIZE + 1];
		hex(s[i].key_id, FLASHER_KEY_ID_SIZE, id);
		printf("%s %s %s (%s)\n", i == 0 ? label : "              ", i == 0 ? "signed by" : "      and", id,
		       signer_state(s[i].valid));
	}
}

static void print_signatures(const flasher_signatures *sg)
{
	print_signers("signature     ", sg->package, sg->package_count);
	for (size_t i = 0; i < sg->image_count; i++) {
		char label[32];
		snprintf(label, sizeof label, "  %s slot %-3s  ", sg->image[i].core == FLASHER_CORE_CM7 ? "cm7" : "cm4",
		         flasher__slot_letter(sg->image[i].slot));
		print_signers(label, sg->image[i].signer, sg->image[i].count);
	}
}

/* Loads --key (if any: *nkeys = 1) and reports the package's signatures. */
static int read_signatures(const flasher_package *pkg, const char *key, uint8_t pub[1][FLASHER_PUBKEY_SIZE],
                           size_t *nkeys, flasher_signatures *sg)
{
	*nkeys = 0;
	if (key) {
		int err = flasher_pubkey_load(key, pub[0]);
		if (err)
			return err;
		*nkeys = 1;
	}
	return flasher__signatures_check(pkg, (const uint8_t(*)[FLASHER_PUBKEY_SIZE])pub, *nkeys, sg);
}

static cJSON *inspect_doc(const flasher_package *pkg, const char *path)
{
	cJSON *m = cJSON_Parse(flasher_package_manifest_json(pkg));
	cJSON *doc = cJSON_CreateObject();
	if (!m || !doc) {
		cJSON_Delete(m);
		cJSON_Delete(doc);
		return NULL;
	}
	char sha[65];
	hex(flasher_package_sha256(pkg), 32, sha);
	cJSON_AddStringToObject(doc, "file", path);
	size_t size = 0;
	FILE *f = fopen(path, "rb");
	if (f && fseek(f, 0, SEEK_END) == 0)
		size = (size_t)ftell(f);
	if (f)
		fclose(f);
	cJSON_AddNumberToObject(doc, "file_size", (double)size);
	cJSON_AddStringToObject(doc, "sha256", sha);
	/* Then the manifest's members, in their order. */
	while (m->child) {
		cJSON *it = cJSON_DetachItemViaPointer(m, m->child);
		cJSON_AddItemToObject(doc, it->string, it);
	}
	cJSON_Delete(m);
	cJSON *e;
	cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(doc, "images"))
	{
		flasher_package_image img;
		const char *core = jstr(e, "core");
		flasher_core c = core && !strcmp(core, "cm7") ? FLASHER_CORE_CM7 : FLASHER_CORE_CM4;
		if (flasher_package_image_for(pkg, c, (uint32_t)jnum(e, "slot"), &img) != 0)
			continue;
		const uint8_t *h = img.header + 124;
		char crc[9];
		snprintf(crc, sizeof crc, "%08x",
		         (unsigned)(h[0] | h[1] << 8 | h[2] << 16 | (uint32_t)h[3] << 24));
		cJSON_AddStringToObject(e, "header_crc32", crc);
	}
	return doc;
}

static void print_inspect(const cJSON *d)
{
	printf("package        %s (%.0f bytes)\n", jstr(d, "file"), jnum(d, "file_size"));
	printf("sha256         %s\n", jstr(d, "sha256"));
	printf("format         %s\n", jstr(d, "format"));
	printf("product        %s\n", jstr(d, "product"));
	printf("version        %s\n", jstr(d, "version"));
	printf("hardware       ");
	const cJSON *hw = cJSON_GetObjectItemCaseSensitive(d, "hw_revs"), *it;
	if (cJSON_GetArraySize(hw) == 0)
		printf("any revision");
	int first = 1;
	cJSON_ArrayForEach(it, hw)
	{
		printf("%s%s", first ? "" : ", ", it->valuestring);
		first = 0;
	}
	printf("\n");
	printf("min bootloader %s\n", jstr(d, "min_bootloader"));
	printf("build id       %s\n", jstr(d, "build_id") ? jstr(d, "build_id") : "-");
	printf("created        %s\n", jstr(d, "created"));
	printf("set id         %s\n", jstr(d, "set_id"));
	cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(d, "images"))
	{
		double payload = jnum(it, "payload_size"), stored = jnum(it, "stored_size");
		uint32_t slot = (uint32_t)jnum(it, "slot");
		printf("image %s, %s\n", jstr(it, "core"),
		       slot == 0 ? "any slot" : slot == FLBOOT_CM7_SLOT_A_ADDR || slot == FLBOOT_CM4_SLOT_A_ADDR ? "slot A" : "slot B");
		printf("  slot         0x%08X, load address 0x%08X\n", (unsigned)jnum(it, "slot"),
		       (unsigned)jnum(it, "load_address"));
		printf("  payload      %.0f bytes, crc32 %s\n", payload, jstr(it, "crc32"));
		printf("  sha256       %s\n", jstr(it, "sha256"));
		printf("  header crc32 %s\n", jstr(it, "header_crc32"));
		printf("  stored       %.0f bytes at offset %.0f, %s", stored, jnum(it, "stored_offset"),
		       jstr(it, "compression"));
		double hsize = cJSON_GetObjectItemCaseSensitive(it, "header_size") ? jnum(it, "header_size") : 128;
		if (!strcmp(jstr(it, "compression"), "zlib") && stored > hsize)
			printf(" (ratio %.2f)", payload / (stored - hsize));
		printf(", crc32 %s\n", jstr(it, "stored_crc32"));
	}
}

static const char KEY_HELP_INSPECT[] =
	"a public key file (KEY.pub from 'flasher keygen', or the 32 raw bytes a unit\n"
	"stores): check every signature made by it; others are listed as not checked";

int cmd_inspect(int argc, char **argv)
{
	const char *path, *key;
	int json;
	int r = parse_pkg_args("inspect", argc, argv, &path, &json, &key, "Print everything in a package.",
	                       "Checks a package completely (as 'flasher verify' does) and prints everything in it:\n"
	                       "product, version, compatible hardware, minimum bootloader, build id, creation time,\n"
	                       "who signed the package and each image (key ids; with --key, whether each signature\n"
	                       "by that key verifies), and per core image its slot, load address, payload size,\n"
	                       "CRC32, SHA-256 and how it is stored. A package that fails any check is not printed;\n"
	                       "the error names the first broken part. To require a key, use 'flasher verify --key'.\n",
	                       "print one JSON object (a stable interface, docs/package-format.md):\n"
	                       "the manifest's fields plus file, file_size, sha256, signatures and\n"
	                       "per image header_crc32. crc32/sha256 are of the firmware bytes as given\n"
	                       "to pack.",
	                       KEY_HELP_INSPECT);
	if (r)
		return r == CLI_PARSED_HELP ? CLI_EXIT_OK : r;
	flasher_package *pkg;
	int err = flasher_package_open(&pkg, path);
	if (err)
		return cli_fail(err, "inspect");
	uint8_t pub[1][FLASHER_PUBKEY_SIZE];
	size_t nkeys;
	flasher_signatures sg;
	if ((err = read_signatures(pkg, key, pub, &nkeys, &sg)) != 0) {
		flasher_package_free(pkg);
		return cli_fail(err, key ? "inspect --key" : "inspect");
	}
	cJSON *doc = inspect_doc(pkg, path);
	flasher_package_free(pkg);
	if (!doc)
		return cli_fail(FLASHER_ENOMEM, "inspect");
	if (json) {
		cJSON_AddItemToObject(doc, "signatures",
		                      flasher__signatures_json(&sg, (const uint8_t(*)[FLASHER_PUBKEY_SIZE])pub, nkeys));
		print_json(doc);
	} else {
		print_inspect(doc);
		print_signatures(&sg);
	}
	cJSON_Delete(doc);
	return CLI_EXIT_OK;
}

/* ---- verify ------------------------------------------------------------------ */

int cmd_verify(int argc, char **argv)
{
	const char *path, *key;
	int json;
	int r = parse_pkg_args("verify", argc, argv, &path, &json, &key, "Check every CRC, hash and signature of a package.",
	                       "Checks a package without a unit: the header and manifest CRC32s, the exact file\n"
	                       "length, every image header (as the bootloader checks it), the CRC32 and SHA-256\n"
	                       "of every payload, and that the manifest and the image headers agree. Any single\n"
	                       "changed byte is found. With --key, also that the package and every image carry a\n"
	                       "signature by that key and that each verifies (what a unit holding the key checks).\n\n"
	                       "Exit status 0 only for an intact package; otherwise 10 + |error code| (see\n"
	                       "'flasher --help'), and the message names the first broken part: 16 (ECORRUPT) for\n"
	                       "a signature by the key that does not verify, 25 (EPERM) when a part is not signed\n"
	                       "by the key.\n",
	                       "print {\"file\", \"ok\", \"sha256\", \"images\", \"signatures\"} or {\"file\",\n"
	                       "\"ok\": false, \"error\", \"code\", \"detail\"} as one JSON object",
	                       "require signatures by this public key (KEY.pub) on the package and on\n"
	                       "every image");
	if (r)
		return r == CLI_PARSED_HELP ? CLI_EXIT_OK : r;
	flasher_package *pkg = NULL;
	uint8_t pub[1][FLASHER_PUBKEY_SIZE];
	size_t nkeys = 0;
	flasher_signatures sg;
	char why[256] = "";
	int err = flasher_package_open(&pkg, path);
	if (!err)
		err = read_signatures(pkg, key, pub, &nkeys, &sg);
	if (!err && key && (err = flasher__signatures_require(&sg, key, why, sizeof why)) == 0)
		why[0] = '\0';
	const char *detail = why[0] ? why : flasher_error_last();
	if (!json) {
		if (err) {
			flasher_package_free(pkg);
			fprintf(stderr, "flasher: verify: %s%s%s [%s]\n", flasher_strerror(err), *detail ? ": " : "", detail,
			        flasher_error_name(err));
			return cli_exit_code(err);
		}
		char sha[65];
		hex(flasher_package_sha256(pkg), 32, sha);
		if (cli_verbosity >= 0)
			printf("%s: OK (%zu image%s, sha256 %s%s%s)\n", path, flasher_package_image_count(pkg),
			       flasher_package_image_count(pkg) == 1 ? "" : "s", sha, key ? ", signed by " : "",
			       key ? key : "");
		flasher_package_free(pkg);
		return CLI_EXIT_OK;
	}
	cJSON *doc = cJSON_CreateObject();
	cJSON_AddStringToObject(doc, "file", path);
	cJSON_AddBoolToObject(doc, "ok", err == 0);
	if (err) {
		cJSON_AddStringToObject(doc, "error", flasher_error_name(err));
		cJSON_AddNumberToObject(doc, "code", err);
		cJSON_AddStringToObject(doc, "detail", detail);
	} else {
		char sha[65];
		hex(flasher_package_sha256(pkg), 32, sha);
		cJSON_AddStringToObject(doc, "sha256", sha);
		cJSON_AddNumberToObject(doc, "images", (double)flasher_package_image_count(pkg));
		cJSON_AddItemToObject(doc, "signatures",
		                      flasher__signatures_json(&sg, (const uint8_t(*)[FLASHER_PUBKEY_SIZE])pub, nkeys));
	}
	print_json(doc);
	cJSON_Delete(doc);
	flasher_package_free(pkg);
	return cli_exit_code(err);
}
