/* Firmware packages: build, open and verify (docs/package-format.md).
 *
 * Images run in place from slot A or slot B of their core, so a package
 * holds per core either one build that runs anywhere (load_address 0) or
 * the builds linked for slot A and slot B; flasher_package_image_for picks
 * the one for the slot a unit stages into.
 *
 * File = 64-byte binary header | JSON manifest | images | (signature block,
 * reserved). The header CRC covers the header, the manifest CRC (in the
 * header) covers the manifest, and each image's stored CRC32 (in the
 * manifest) covers its stored bytes, so the three CRCs together cover every
 * byte of the file; open() also checks the exact length, every image header
 * and the payload CRC32 + SHA-256, and that the manifest and the image
 * headers say the same thing. */
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <zlib.h>

#include "elf_load.h"
#include "error_internal.h"
#include "fwinput.h"
#include "memimage.h"
#include "vectors.h"
#include "flasher/package.h"
#include "flasher/sign.h"
#include "flasher/version.h"
#include "flboot/image.h"
#include "flboot/layout.h"
#include "flboot/proto.h"
#include "flboot/sha256.h"
#include "flboot/trust.h"
#include "package_sign.h"

/* ---- binary header (docs/package-format.md, "Binary header") ----------- */
#define PKG_MAGIC "FLPKG\r\n\x1a"
#define PKG_MAGIC_LEN 8u
#define PKG_FORMAT_VERSION 2u /* version 1 (one slot-A build per core) is still read */
#define PKG_HEADER_SIZE 64u
#define PKG_FLAG_SIGNED 0x1u /* a package signature block follows the images */
#define PKG_FORMAT_NAME "flasher-package/2"
#define PKG_FORMAT_NAME_V1 "flasher-package/1"

#define OFF_MAGIC 0
#define OFF_FORMAT_VERSION 8
#define OFF_HEADER_SIZE 10
#define OFF_FLAGS 12
#define OFF_TOTAL_SIZE 16
#define OFF_MANIFEST_OFFSET 20
#define OFF_MANIFEST_LENGTH 24
#define OFF_MANIFEST_CRC 28
#define OFF_DATA_OFFSET 32
#define OFF_DATA_SIZE 36
#define OFF_SIG_OFFSET 40
#define OFF_SIG_SIZE 44
#define OFF_RESERVED 48 /* 12 bytes, zero */
#define OFF_HEADER_CRC 60

/* Byte offset of a field of the image header (flboot/image.h). */
#define HO(field) offsetof(flboot_image_header, field)

#define MAX_MANIFEST (64u * 1024u)
#define MAX_CORES 2u
#define MAX_IMAGES 4u /* builds: per core one for any slot, or slot A + slot B */
/* Stored header area of an image: the 128-byte header, then room for the
 * signature/encryption blocks, below the bootloader's slot trailer. */
#define MAX_HEADER_AREA 0x200u
/* Version-1 packages: the swap layout's 384 KiB slot for both cores, the
 * application at slot A + 0x400. */
#define V1_MAX_PAYLOAD (3u * 128u * 1024u - FLBOOT_HEADER_AREA)
/* Largest possible package: header, manifest, four incompressible builds. */
#define MAX_PACKAGE                                                                                          \
	(PKG_HEADER_SIZE + MAX_MANIFEST +                                                                    \
	 2u * (2u * MAX_HEADER_AREA + FLBOOT_CORE_MAX_PAYLOAD(1u) + FLBOOT_CORE_MAX_PAYLOAD(2u)))
#define MAX_INPUT_FILE (256u * 1024u * 1024u) /* ELF files carry debug info */
#define MAX_BUILD_ID 256u

struct pkg_image {
	flasher_package_image pub;
	uint8_t *inflated; /* owned when the payload was stored compressed */
};

struct flasher_package {
	uint8_t *file;
	size_t file_size;
	uint8_t sha256[32];
	char *manifest;
	char product[16];
	uint32_t version;
	uint32_t min_bootloader;
	size_t hw_rev_count;
	char hw_revs[FLBOOT_IMAGE_MAX_HW_REVS][8];
	size_t image_count; /* builds stored, package order */
	struct pkg_image images[MAX_IMAGES];
	size_t core_count;
	size_t core_first[MAX_CORES]; /* per core (package order): its first build */
	size_t signed_len;            /* bytes the package signature covers; 0 = unsigned */
	const uint8_t *sigblock;      /* the package signature block (in file), or NULL */
	size_t sigblock_size;
};

/* ---- small helpers ------------------------------------------------------ */

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static void put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t crc32_of(const void *data, size_t len)
{
	/* zlib's crc32 takes uInt lengths; our buffers stay far below 4 GiB. */
	return (uint32_t)crc32(0L, (const Bytef *)data, (uInt)len);
}

static const char *core_name(int core)
{
	return core == FLASHER_CORE_CM7 ? "cm7" : core == FLASHER_CORE_CM4 ? "cm4" : "?";
}

static uint32_t slot_a(int core)
{
	return FLBOOT_SLOT_ADDR((unsigned)core, 0u);
}

static uint32_t slot_b(int core)
{
	return FLBOOT_SLOT_ADDR((unsigned)core, 1u);
}

/* 'A', 'B' or '*' (runs anywhere) for messages. */
static char slot_letter(int core, uint32_t slot)
{
	return slot == 0 ? '*' : slot == slot_a(core) ? 'A' : 'B';
}

/* Order of a build among its core's: any-slot or A first, then B. */
static int slot_rank(int core, uint32_t slot)
{
	return slot == slot_b(core) ? 1 : 0;
}

static void hex_encode(const uint8_t *in, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 15];
	}
	out[2 * n] = '\0';
}

static int hex_nibble(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1; /* lowercase only: the manifest is canonical */
}

static int hex_decode(const char *s, uint8_t *out, size_t n)
{
	if (strlen(s) != 2 * n)
		return -1;
	for (size_t i = 0; i < n; i++) {
		int hi = hex_nibble(s[2 * i]), lo = hex_nibble(s[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return -1;
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	return 0;
}

/* Product ids and hardware revisions end up in fixed NUL-padded fields of
 * the image header and in file names and logs: printable ASCII, no spaces. */
static int valid_id(const char *s, size_t max)
{
	size_t n = strlen(s);
	if (n == 0 || n > max)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (s[i] <= 0x20 || s[i] >= 0x7F)
			return 0;
	return 1;
}

/* SHA-256 over each image's payload SHA-256 (package order), the version
 * (u32 LE) and the 16-byte product field; the first 8 bytes. The same bytes
 * in every image of a package tie them into one set on the unit. */
static void compute_set_id(const uint8_t (*sha)[32], size_t n, uint32_t version, const char product[16],
                           uint8_t out[8])
{
	flboot_sha256_ctx ctx;
	uint8_t v[4], digest[32];
	flboot_sha256_init(&ctx);
	for (size_t i = 0; i < n; i++)
		flboot_sha256_update(&ctx, sha[i], 32);
	put32(v, version);
	flboot_sha256_update(&ctx, v, 4);
	flboot_sha256_update(&ctx, product, 16);
	flboot_sha256_final(&ctx, digest);
	memcpy(out, digest, 8);
}

static int errno_code(int e)
{
	switch (e) {
	case ENOENT:
	case ENOTDIR:
		return FLASHER_ENOTFOUND;
	case EACCES:
	case EPERM:
	case EROFS:
		return FLASHER_EPERM;
	case ENOMEM:
		return FLASHER_ENOMEM;
	default:
		return FLASHER_EIO;
	}
}

static int read_file(const char *path, size_t max, uint8_t **out, size_t *out_len)
{
	*out = NULL;
	*out_len = 0;
	FILE *f = fopen(path, "rb");
	if (!f)
		return flasher__error(errno_code(errno), "cannot open '%s': %s", path, strerror(errno));
	struct stat st;
	if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
		fclose(f);
		return flasher__error(FLASHER_EINVAL, "'%s' is not a regular file", path);
	}
	if ((uint64_t)st.st_size > max) {
		fclose(f);
		return flasher__error(FLASHER_EFORMAT, "'%s' is %lld bytes, more than the %zu this can be", path,
		                      (long long)st.st_size, max);
	}
	size_t len = (size_t)st.st_size;
	uint8_t *buf = malloc(len ? len : 1);
	if (!buf) {
		fclose(f);
		return flasher__error(FLASHER_ENOMEM, "out of memory reading '%s'", path);
	}
	if (fread(buf, 1, len, f) != len || ferror(f)) {
		int e = errno;
		free(buf);
		fclose(f);
		return flasher__error(FLASHER_EIO, "reading '%s' failed: %s", path, e ? strerror(e) : "short read");
	}
	fclose(f);
	*out = buf;
	*out_len = len;
	return 0;
}

/* ---- open / verify ------------------------------------------------------ */

static const char *json_str(const cJSON *obj, const char *key)
{
	const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, key);
	return cJSON_IsString(it) ? it->valuestring : NULL;
}

/* A JSON number that is an exact unsigned integer <= max. */
static int json_uint(const cJSON *obj, const char *key, uint32_t max, uint32_t *out)
{
	const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, key);
	if (!cJSON_IsNumber(it))
		return -1;
	double d = it->valuedouble;
	if (!(d >= 0 && d <= (double)max) || d != (double)(uint32_t)d)
		return -1;
	*out = (uint32_t)d;
	return 0;
}

#define BAD_MANIFEST(...) flasher__error(FLASHER_EFORMAT, "manifest: " __VA_ARGS__)

static int parse_semver_field(const cJSON *obj, const char *key, uint32_t *out)
{
	const char *s = json_str(obj, key);
	if (!s)
		return BAD_MANIFEST("\"%s\" missing or not a string", key);
	if (flasher_semver_parse(s, out) != 0)
		return flasher__error_wrap(FLASHER_EFORMAT, "manifest: \"%s\"", key);
	return 0;
}

static int parse_manifest_top(flasher_package *pkg, const cJSON *m, unsigned format, uint8_t set_id[8])
{
	const char *s;
	if (!cJSON_IsObject(m))
		return BAD_MANIFEST("not a JSON object");
	s = json_str(m, "format");
	const char *want = format == 1 ? PKG_FORMAT_NAME_V1 : PKG_FORMAT_NAME;
	if (!s || strcmp(s, want) != 0)
		return BAD_MANIFEST("\"format\" is %s%s%s, expected \"%s\"", s ? "\"" : "", s ? s : "missing",
		                    s ? "\"" : "", want);
	s = json_str(m, "product");
	if (!s || !valid_id(s, sizeof pkg->product - 1))
		return BAD_MANIFEST("\"product\" missing or not 1..15 printable characters");
	memset(pkg->product, 0, sizeof pkg->product);
	memcpy(pkg->product, s, strlen(s));
	int err = parse_semver_field(m, "version", &pkg->version);
	if (!err)
		err = parse_semver_field(m, "min_bootloader", &pkg->min_bootloader);
	if (err)
		return err;
	const cJSON *hw = cJSON_GetObjectItemCaseSensitive(m, "hw_revs");
	if (!cJSON_IsArray(hw))
		return BAD_MANIFEST("\"hw_revs\" missing or not an array");
	int nhw = cJSON_GetArraySize(hw);
	if (nhw > (int)FLBOOT_IMAGE_MAX_HW_REVS)
		return BAD_MANIFEST("%d hardware revisions, at most %u", nhw, FLBOOT_IMAGE_MAX_HW_REVS);
	memset(pkg->hw_revs, 0, sizeof pkg->hw_revs);
	pkg->hw_rev_count = 0;
	const cJSON *it;
	cJSON_ArrayForEach(it, hw)
	{
		if (!cJSON_IsString(it) || !valid_id(it->valuestring, 7))
			return BAD_MANIFEST("\"hw_revs\"[%zu] not 1..7 printable characters", pkg->hw_rev_count);
		memcpy(pkg->hw_revs[pkg->hw_rev_count++], it->valuestring, strlen(it->valuestring));
	}
	it = cJSON_GetObjectItemCaseSensitive(m, "build_id");
	if (it && !cJSON_IsNull(it) && !cJSON_IsString(it))
		return BAD_MANIFEST("\"build_id\" is neither a string nor null");
	if (!json_str(m, "created"))
		return BAD_MANIFEST("\"created\" missing or not a string");
	s = json_str(m, "set_id");
	if (!s || hex_decode(s, set_id, 8) != 0)
		return BAD_MANIFEST("\"set_id\" missing or not 16 lowercase hex digits");
	it = cJSON_GetObjectItemCaseSensitive(m, "signature");
	if (!it)
		return BAD_MANIFEST("\"signature\" missing (null when unsigned)");
	if (!cJSON_IsNull(it))
		return flasher__error(FLASHER_EUNSUPPORTED,
		                      "manifest: \"signature\" is set; signed packages need a newer flasher");
	return 0;
}

/* What the manifest says about one image. */
struct image_entry {
	int core;
	uint32_t slot, load_address, header_size, payload_size, crc32, stored_offset, stored_size, stored_crc32;
	uint8_t sha256[32];
	int compressed;
};

static int parse_image_entry(const cJSON *e, size_t i, unsigned format, struct image_entry *out)
{
	char what[32];
	snprintf(what, sizeof what, "images[%zu]", i);
	if (!cJSON_IsObject(e))
		return BAD_MANIFEST("%s is not an object", what);
	const char *s = json_str(e, "core");
	if (s && !strcmp(s, "cm7"))
		out->core = FLASHER_CORE_CM7;
	else if (s && !strcmp(s, "cm4"))
		out->core = FLASHER_CORE_CM4;
	else
		return BAD_MANIFEST("%s.core is not \"cm7\" or \"cm4\"", what);
	static const char *const num_keys[] = {"slot", "load_address", "payload_size", "stored_offset",
	                                       "stored_size"};
	uint32_t *num_out[] = {&out->slot, &out->load_address, &out->payload_size, &out->stored_offset,
	                       &out->stored_size};
	for (size_t k = 0; k < 5; k++)
		if (json_uint(e, num_keys[k], UINT32_MAX, num_out[k]) != 0)
			return BAD_MANIFEST("%s.%s missing or not an unsigned 32-bit integer", what, num_keys[k]);
	out->header_size = FLBOOT_IMAGE_HEADER_SIZE; /* version 1: the header alone */
	if (format >= 2 && (json_uint(e, "header_size", MAX_HEADER_AREA, &out->header_size) != 0 ||
	                    out->header_size < FLBOOT_IMAGE_HEADER_SIZE || out->header_size % 4u))
		return BAD_MANIFEST("%s.header_size missing or not a multiple of 4 in %u..%u", what,
		                    FLBOOT_IMAGE_HEADER_SIZE, MAX_HEADER_AREA);
	static const char *const crc_keys[] = {"crc32", "stored_crc32"};
	uint32_t *crc_out[] = {&out->crc32, &out->stored_crc32};
	for (size_t k = 0; k < 2; k++) {
		uint8_t b[4];
		s = json_str(e, crc_keys[k]);
		if (!s || hex_decode(s, b, 4) != 0)
			return BAD_MANIFEST("%s.%s missing or not 8 lowercase hex digits", what, crc_keys[k]);
		*crc_out[k] = (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
	}
	s = json_str(e, "sha256");
	if (!s || hex_decode(s, out->sha256, 32) != 0)
		return BAD_MANIFEST("%s.sha256 missing or not 64 lowercase hex digits", what);
	s = json_str(e, "compression");
	if (s && !strcmp(s, "none"))
		out->compressed = 0;
	else if (s && !strcmp(s, "zlib"))
		out->compressed = 1;
	else
		return BAD_MANIFEST("%s.compression is not \"none\" or \"zlib\"", what);
	return 0;
}

/* Check one image's stored bytes against its manifest entry and the
 * package-wide fields, and decode its payload. */
static int check_image(flasher_package *pkg, const struct image_entry *e, unsigned format, const uint8_t set_id[8],
                       struct pkg_image *img)
{
	const char *cn = core_name(e->core);
	const uint8_t *stored = pkg->file + e->stored_offset;
	uint32_t crc = crc32_of(stored, e->stored_size);
	if (crc != e->stored_crc32)
		return flasher__error(FLASHER_ECORRUPT,
		                      "%s image: stored CRC32 mismatch (manifest %08x, file bytes %u..%u give %08x)", cn,
		                      e->stored_crc32, e->stored_offset, e->stored_offset + e->stored_size - 1, crc);
	if (e->stored_size < e->header_size + 1)
		return flasher__error(FLASHER_EFORMAT, "%s image: stored size %u leaves no payload after the header", cn,
		                      e->stored_size);
	uint32_t max_payload = format == 1 ? V1_MAX_PAYLOAD : FLBOOT_CORE_MAX_PAYLOAD((unsigned)e->core);

	/* The image header, field by field as the bootloader will check it. */
	flboot_image_header h;
	memcpy(&h, stored, sizeof h);
	const uint8_t *hb = stored;
	if (get32(hb) != FLBOOT_IMAGE_MAGIC)
		return flasher__error(FLASHER_EFORMAT, "%s image header: magic %08x, expected %08x", cn, get32(hb),
		                      FLBOOT_IMAGE_MAGIC);
	uint32_t hcrc = crc32_of(hb, FLBOOT_IMAGE_HEADER_SIZE - 4);
	if (hcrc != get32(hb + HO(header_crc32)))
		return flasher__error(FLASHER_ECORRUPT, "%s image header CRC32: stored %08x, computed %08x", cn,
		                      get32(hb + HO(header_crc32)), hcrc);
	if (get16(hb + HO(header_version)) != FLBOOT_IMAGE_HEADER_VERSION || get16(hb + HO(header_size)) != FLBOOT_IMAGE_HEADER_SIZE)
		return flasher__error(FLASHER_EUNSUPPORTED, "%s image header: version %u size %u, expected %u and %u",
		                      cn, get16(hb + HO(header_version)), get16(hb + HO(header_size)), FLBOOT_IMAGE_HEADER_VERSION,
		                      FLBOOT_IMAGE_HEADER_SIZE);
	uint32_t payload_size = get32(hb + HO(payload_size)), payload_crc = get32(hb + HO(payload_crc32));
	const uint8_t *payload_sha = hb + HO(payload_sha256);
	uint32_t version = get32(hb + HO(version)), min_bl = get32(hb + HO(min_bootloader)), load = get32(hb + HO(load_address));
	if (hb[HO(core)] != e->core)
		return flasher__error(FLASHER_EFORMAT, "%s image header: core %u, manifest says %s", cn, hb[HO(core)], cn);
	if (hb[HO(flags)] != 0 || get16(hb + HO(rsv0)) != 0)
		return flasher__error(FLASHER_EFORMAT, "%s image header: flags/reserved fields not zero", cn);
	if (payload_size == 0 || payload_size > max_payload)
		return flasher__error(FLASHER_EFORMAT, "%s image header: payload size %u not in 1..%u", cn,
		                      payload_size, max_payload);
	if (payload_size != e->payload_size)
		return flasher__error(FLASHER_EFORMAT, "%s image: payload size %u in the header, %u in the manifest", cn,
		                      payload_size, e->payload_size);
	if (payload_crc != e->crc32)
		return flasher__error(FLASHER_EFORMAT, "%s image: payload CRC32 %08x in the header, %08x in the manifest",
		                      cn, payload_crc, e->crc32);
	if (memcmp(payload_sha, e->sha256, 32) != 0)
		return flasher__error(FLASHER_EFORMAT, "%s image: payload SHA-256 differs between header and manifest",
		                      cn);
	if (version != pkg->version || min_bl != pkg->min_bootloader)
		return flasher__error(FLASHER_EFORMAT,
		                      "%s image header: version %08x / min bootloader %08x, manifest %08x / %08x", cn,
		                      version, min_bl, pkg->version, pkg->min_bootloader);
	if (memcmp(hb + HO(product), pkg->product, 16) != 0)
		return flasher__error(FLASHER_EFORMAT, "%s image header: product '%.16s', manifest '%s'", cn,
		                      (const char *)hb + HO(product), pkg->product);
	if (memcmp(hb + HO(hw_revs), pkg->hw_revs, sizeof pkg->hw_revs) != 0)
		return flasher__error(FLASHER_EFORMAT, "%s image header: hardware revisions differ from the manifest",
		                      cn);
	if (memcmp(hb + HO(set_id), set_id, 8) != 0)
		return flasher__error(FLASHER_EFORMAT, "%s image header: set id differs from the manifest", cn);
	/* A build for slot A or B runs at slot + 0x400; one for any slot
	 * (version 2 only) says 0 in both places. */
	int slot_ok = format == 1 ? e->slot == slot_a(e->core)
	                          : e->slot == 0 || e->slot == slot_a(e->core) || e->slot == slot_b(e->core);
	uint32_t want_load = e->slot ? e->slot + FLBOOT_HEADER_AREA : 0;
	if (!slot_ok || load != want_load || e->load_address != load)
		return flasher__error(FLASHER_EFORMAT,
		                      "%s image: load address 0x%08X (header) / 0x%08X (manifest), slot 0x%08X; a %s build "
		                      "runs at slot + 0x%X in slot 0x%08X or 0x%08X%s",
		                      cn, load, e->load_address, e->slot, cn, FLBOOT_HEADER_AREA, slot_a(e->core),
		                      slot_b(e->core), format == 1 ? "" : ", or anywhere (slot and load address 0)");

	/* The payload: inflate exactly payload_size bytes from exactly the
	 * stored bytes, or take the stored bytes as they are. */
	const uint8_t *body = stored + e->header_size;
	size_t body_len = e->stored_size - e->header_size;
	const uint8_t *payload = body;
	if (e->compressed) {
		img->inflated = malloc(payload_size);
		if (!img->inflated)
			return flasher__error(FLASHER_ENOMEM, "%s image: out of memory", cn);
		uLongf out_len = payload_size;
		uLong in_len = body_len;
		int zr = uncompress2(img->inflated, &out_len, body, &in_len);
		if (zr != Z_OK || out_len != payload_size || in_len != body_len)
			return flasher__error(FLASHER_ECORRUPT,
			                      "%s image: zlib data does not inflate to exactly %u bytes (zlib %d, %lu bytes "
			                      "from %lu of %zu)",
			                      cn, payload_size, zr, (unsigned long)out_len, (unsigned long)in_len, body_len);
		payload = img->inflated;
	} else if (body_len != payload_size) {
		return flasher__error(FLASHER_EFORMAT, "%s image: stored uncompressed payload is %zu bytes, header says %u",
		                      cn, body_len, payload_size);
	}
	crc = crc32_of(payload, payload_size);
	if (crc != payload_crc)
		return flasher__error(FLASHER_ECORRUPT, "%s image payload CRC32: header %08x, computed %08x", cn,
		                      payload_crc, crc);
	uint8_t sha[32];
	flboot_sha256(payload, payload_size, sha);
	if (memcmp(sha, payload_sha, 32) != 0)
		return flasher__error(FLASHER_ECORRUPT, "%s image payload SHA-256 does not match its header", cn);

	img->pub.core = (flasher_core)e->core;
	img->pub.slot = e->slot;
	img->pub.header = stored;
	img->pub.header_area = stored;
	img->pub.header_area_size = e->header_size;
	img->pub.payload = payload;
	img->pub.payload_size = payload_size;
	img->pub.payload_crc32 = payload_crc;
	memcpy(img->pub.payload_sha256, sha, 32);
	img->pub.load_address = load;
	img->pub.compressed = e->compressed;
	img->pub.stored_size = e->stored_size;
	return 0;
}

/* The package signature block's place: after the images, to the end of
 * the file. *data_end = where the images end (the signed length). */
static int check_signature_fields(const uint8_t *f, uint32_t flags, uint32_t total, uint32_t *data_end)
{
	uint32_t soff = get32(f + OFF_SIG_OFFSET), ssize = get32(f + OFF_SIG_SIZE);
	if (!(flags & PKG_FLAG_SIGNED)) {
		if (soff || ssize)
			return flasher__error(FLASHER_EFORMAT,
			                      "package header: signature block fields set on an unsigned package");
		*data_end = total;
		return 0;
	}
	if (ssize < FLASHER_PKG_SIGBLOCK_SIZE(1) || ssize > FLASHER_PKG_SIGBLOCK_SIZE(FLASHER_MAX_SIGNERS) ||
	    (uint64_t)soff + ssize != total)
		return flasher__error(FLASHER_EFORMAT,
		                      "package header: signature block at %u, %u bytes; expected 80 or 152 bytes "
		                      "ending the %u-byte file (cut short?)",
		                      soff, ssize, total);
	*data_end = soff;
	return 0;
}

static int check_binary_header(const uint8_t *f, size_t len, uint32_t *manifest_len, uint32_t *data_end)
{
	if (len < PKG_HEADER_SIZE)
		return flasher__error(FLASHER_EFORMAT, "truncated: %zu bytes, the package header alone is %u", len,
		                      PKG_HEADER_SIZE);
	if (memcmp(f + OFF_MAGIC, PKG_MAGIC, PKG_MAGIC_LEN) != 0)
		return flasher__error(FLASHER_EFORMAT, "not a flasher package (header magic wrong)");
	uint32_t crc = crc32_of(f, OFF_HEADER_CRC);
	if (crc != get32(f + OFF_HEADER_CRC))
		return flasher__error(FLASHER_ECORRUPT, "package header CRC32: stored %08x, computed %08x",
		                      get32(f + OFF_HEADER_CRC), crc);
	if (get16(f + OFF_FORMAT_VERSION) < 1 || get16(f + OFF_FORMAT_VERSION) > PKG_FORMAT_VERSION)
		return flasher__error(FLASHER_EUNSUPPORTED, "package format version %u; this flasher reads versions 1..%u",
		                      get16(f + OFF_FORMAT_VERSION), PKG_FORMAT_VERSION);
	if (get16(f + OFF_HEADER_SIZE) != PKG_HEADER_SIZE)
		return flasher__error(FLASHER_EFORMAT, "package header size %u, expected %u", get16(f + OFF_HEADER_SIZE),
		                      PKG_HEADER_SIZE);
	uint32_t flags = get32(f + OFF_FLAGS);
	if (flags & ~PKG_FLAG_SIGNED)
		return flasher__error(FLASHER_EUNSUPPORTED, "package header flags %08x unknown", flags);
	uint32_t total = get32(f + OFF_TOTAL_SIZE);
	if (total != len)
		return flasher__error(FLASHER_EFORMAT, "length: header says %u bytes, file has %zu (%s)", total, len,
		                      len < total ? "truncated" : "trailing bytes");
	for (size_t i = OFF_RESERVED; i < OFF_HEADER_CRC; i++)
		if (f[i])
			return flasher__error(FLASHER_EFORMAT, "package header: reserved byte %zu is not zero", i);
	int err = check_signature_fields(f, flags, total, data_end);
	if (err)
		return err;
	uint32_t moff = get32(f + OFF_MANIFEST_OFFSET), mlen = get32(f + OFF_MANIFEST_LENGTH);
	uint32_t doff = get32(f + OFF_DATA_OFFSET), dsize = get32(f + OFF_DATA_SIZE);
	if (moff != PKG_HEADER_SIZE || mlen == 0 || mlen > MAX_MANIFEST)
		return flasher__error(FLASHER_EFORMAT, "package header: manifest at %u, %u bytes (expected at %u, 1..%u)",
		                      moff, mlen, PKG_HEADER_SIZE, MAX_MANIFEST);
	if (doff != moff + mlen || (uint64_t)doff + dsize != *data_end)
		return flasher__error(FLASHER_EFORMAT,
		                      "package header: images at %u, %u bytes; expected right after the manifest (%u) "
		                      "up to %s (%u)",
		                      doff, dsize, moff + mlen, *data_end == total ? "the end of the file" : "the signature block",
		                      *data_end);
	crc = crc32_of(f + moff, mlen);
	if (crc != get32(f + OFF_MANIFEST_CRC))
		return flasher__error(FLASHER_ECORRUPT, "manifest CRC32: header says %08x, computed %08x",
		                      get32(f + OFF_MANIFEST_CRC), crc);
	*manifest_len = mlen;
	return 0;
}

static int verify_all(flasher_package *pkg)
{
	uint32_t mlen = 0, data_end = 0;
	int err = check_binary_header(pkg->file, pkg->file_size, &mlen, &data_end);
	if (err)
		return err;
	if (data_end != pkg->file_size) {
		flasher__sig_report rep;
		pkg->signed_len = data_end;
		pkg->sigblock = pkg->file + data_end;
		pkg->sigblock_size = pkg->file_size - data_end;
		err = flasher__check_package_sig(pkg->sigblock, pkg->sigblock_size, NULL, NULL, &rep);
		if (err)
			return err;
	}
	unsigned format = get16(pkg->file + OFF_FORMAT_VERSION);
	pkg->manifest = malloc(mlen + 1u);
	if (!pkg->manifest)
		return flasher__error(FLASHER_ENOMEM, "out of memory");
	memcpy(pkg->manifest, pkg->file + PKG_HEADER_SIZE, mlen);
	pkg->manifest[mlen] = '\0';
	if (strlen(pkg->manifest) != mlen)
		return BAD_MANIFEST("contains a NUL byte");

	const char *end = NULL;
	/* Length includes our NUL so cJSON can insist nothing follows the document. */
	cJSON *m = cJSON_ParseWithLengthOpts(pkg->manifest, mlen + 1u, &end, 1);
	if (!m)
		return BAD_MANIFEST("not one valid JSON document (error near byte %td)",
		                    end ? end - pkg->manifest : (ptrdiff_t)-1);
	uint8_t set_id[8];
	err = parse_manifest_top(pkg, m, format, set_id);
	const cJSON *images = cJSON_GetObjectItemCaseSensitive(m, "images");
	int n = cJSON_IsArray(images) ? cJSON_GetArraySize(images) : -1;
	int max_n = format == 1 ? (int)MAX_CORES : (int)MAX_IMAGES;
	if (!err && (n < 1 || n > max_n))
		err = BAD_MANIFEST("\"images\" must be an array of 1 to %d images", max_n);
	struct image_entry ent[MAX_IMAGES];
	for (int i = 0; !err && i < n; i++)
		err = parse_image_entry(cJSON_GetArrayItem(images, i), (size_t)i, format, &ent[i]);
	cJSON_Delete(m);
	if (err)
		return err;

	/* Images tile the data area in order, CM7 before CM4, per core the
	 * any-slot build alone or slot A before slot B, nothing between. */
	uint32_t at = PKG_HEADER_SIZE + mlen;
	for (int i = 0; i < n; i++) {
		if (i > 0 && ent[i].core == ent[i - 1].core &&
		    (ent[i].slot == 0 || ent[i - 1].slot == 0 ||
		     slot_rank(ent[i].core, ent[i].slot) <= slot_rank(ent[i].core, ent[i - 1].slot)))
			return BAD_MANIFEST("%s has builds for slots %c and %c; expected one for any slot, or A then B",
			                    core_name(ent[i].core), slot_letter(ent[i].core, ent[i - 1].slot),
			                    slot_letter(ent[i].core, ent[i].slot));
		if (i > 0 && ent[i].core < ent[i - 1].core)
			return BAD_MANIFEST("images must be cm7 then cm4");
		if (ent[i].stored_offset != at || ent[i].stored_size > data_end - at)
			return BAD_MANIFEST("%s image stored at %u, %u bytes; expected at %u within the %u bytes of images",
			                    core_name(ent[i].core), ent[i].stored_offset, ent[i].stored_size, at, data_end);
		at += ent[i].stored_size;
	}
	if (at != data_end)
		return BAD_MANIFEST("images end at %u, the image data at %u", at, data_end);

	uint8_t shas[MAX_IMAGES][32];
	for (int i = 0; i < n; i++) {
		err = check_image(pkg, &ent[i], format, set_id, &pkg->images[i]);
		pkg->image_count = (size_t)i + 1; /* so free() releases what check_image allocated */
		if (err)
			return err;
		memcpy(shas[i], ent[i].sha256, 32);
		if (i == 0 || ent[i].core != ent[i - 1].core)
			pkg->core_first[pkg->core_count++] = (size_t)i;
	}
	uint8_t want[8];
	compute_set_id((const uint8_t(*)[32])shas, (size_t)n, pkg->version, pkg->product, want);
	if (memcmp(want, set_id, 8) != 0)
		return flasher__error(FLASHER_ECORRUPT, "set id does not match the images and version");
	flboot_sha256(pkg->file, pkg->file_size, pkg->sha256);
	return 0;
}

int flasher_package_open_memory(flasher_package **out, const void *data, size_t len)
{
	if (!out || (!data && len))
		return flasher__error(FLASHER_EINVAL, "package: NULL argument");
	*out = NULL;
	if (len > MAX_PACKAGE)
		return flasher__error(FLASHER_EFORMAT, "package is %zu bytes, larger than any valid package (%u)", len,
		                      (unsigned)MAX_PACKAGE);
	flasher_package *pkg = calloc(1, sizeof *pkg);
	if (!pkg || !(pkg->file = malloc(len ? len : 1))) {
		free(pkg);
		return flasher__error(FLASHER_ENOMEM, "out of memory");
	}
	if (len)
		memcpy(pkg->file, data, len);
	pkg->file_size = len;
	int err = verify_all(pkg);
	if (err) {
		flasher_package_free(pkg);
		return err;
	}
	*out = pkg;
	return 0;
}

int flasher_package_open(flasher_package **out, const char *path)
{
	if (!out || !path)
		return flasher__error(FLASHER_EINVAL, "package: NULL argument");
	*out = NULL;
	uint8_t *data;
	size_t len;
	int err = read_file(path, MAX_PACKAGE, &data, &len);
	if (!err) {
		err = flasher_package_open_memory(out, data, len);
		free(data);
		if (err)
			flasher__error_wrap(err, "package '%s'", path);
	}
	return err;
}

void flasher_package_free(flasher_package *pkg)
{
	if (!pkg)
		return;
	for (size_t i = 0; i < pkg->image_count; i++)
		free(pkg->images[i].inflated);
	free(pkg->manifest);
	free(pkg->file);
	free(pkg);
}

const char *flasher_package_product(const flasher_package *pkg)
{
	return pkg ? pkg->product : NULL;
}

uint32_t flasher_package_version(const flasher_package *pkg)
{
	return pkg ? pkg->version : 0;
}

uint32_t flasher_package_min_bootloader(const flasher_package *pkg)
{
	return pkg ? pkg->min_bootloader : 0;
}

size_t flasher_package_hw_rev_count(const flasher_package *pkg)
{
	return pkg ? pkg->hw_rev_count : 0;
}

const char *flasher_package_hw_rev(const flasher_package *pkg, size_t i)
{
	return pkg && i < pkg->hw_rev_count ? pkg->hw_revs[i] : NULL;
}

const uint8_t *flasher_package_sha256(const flasher_package *pkg)
{
	return pkg ? pkg->sha256 : NULL;
}

const char *flasher_package_manifest_json(const flasher_package *pkg)
{
	return pkg ? pkg->manifest : NULL;
}

size_t flasher_package_image_count(const flasher_package *pkg)
{
	return pkg ? pkg->core_count : 0;
}

int flasher_package_get_image(const flasher_package *pkg, size_t i, flasher_package_image *out)
{
	if (!pkg || !out)
		return flasher__error(FLASHER_EINVAL, "package image: NULL argument");
	if (i >= pkg->core_count)
		return flasher__error(FLASHER_EINVAL, "package image %zu: the package has %zu", i, pkg->core_count);
	*out = pkg->images[pkg->core_first[i]].pub;
	return 0;
}

int flasher_package_find(const flasher_package *pkg, flasher_core core, flasher_package_image *out)
{
	return flasher_package_image_for(pkg, core, 0, out);
}

int flasher_package_image_for(const flasher_package *pkg, flasher_core core, uint32_t slot_addr,
                              flasher_package_image *out)
{
	if (!pkg || !out)
		return flasher__error(FLASHER_EINVAL, "package image: NULL argument");
	if (core != FLASHER_CORE_CM7 && core != FLASHER_CORE_CM4)
		return flasher__error(FLASHER_EINVAL, "package image: core %d is neither cm7 (1) nor cm4 (2)", (int)core);
	if (slot_addr && slot_addr != slot_a(core) && slot_addr != slot_b(core))
		return flasher__error(FLASHER_EINVAL, "0x%08X is not a %s slot (0x%08X or 0x%08X)", slot_addr,
		                      core_name(core), slot_a(core), slot_b(core));
	uint32_t want = slot_addr ? slot_addr : slot_a(core);
	int have = 0;
	for (size_t i = 0; i < pkg->image_count; i++) {
		const flasher_package_image *img = &pkg->images[i].pub;
		if (img->core != core)
			continue;
		have = 1;
		if (img->slot == 0 || img->slot == want) {
			*out = *img;
			return 0;
		}
	}
	if (!have)
		return flasher__error(FLASHER_ENOTFOUND, "the package has no %s image", core_name(core));
	return flasher__error(FLASHER_ENOTFOUND,
	                      "the package has no %s build for slot %c (0x%08X); it was packed for slot A only "
	                      "(repack with this flasher: a build for each slot)",
	                      core_name(core), slot_letter(core, want), want);
}

/* ---- build -------------------------------------------------------------- */

struct build_image {
	int core;
	uint32_t slot; /* slot the build is linked for, 0 = runs anywhere */
	uint8_t *payload;
	size_t payload_size;
	uint8_t *zdata; /* zlib stream when compression pays */
	size_t zsize;
	uint8_t header[MAX_HEADER_AREA]; /* the header area as stored: header, then signatures */
	uint32_t area_size;                    /* 128, or 280 with a signature block */
	uint32_t security_counter;
	uint32_t crc32;
	uint8_t sha256[32];
	uint32_t stored_offset, stored_size, stored_crc32;
};

/* One input file as read, and which slot it is linked for. */
struct input {
	const char *path;
	uint8_t *data;
	size_t len;
	int elf;
	int records;         /* Intel HEX or S-record: flat holds the payload */
	uint8_t *flat;
	size_t flat_len;
	uint32_t slot;       /* 0: a .bin whose vector table points into no slot */
	uint32_t reset;      /* .bin: the reset vector, for messages */
};

static const char *flag_of(int core, int b)
{
	return core == FLASHER_CORE_CM7 ? (b ? "--cm7-b" : "--cm7") : (b ? "--cm4-b" : "--cm4");
}

static int in_slot_app(int core, uint32_t slot, uint32_t addr)
{
	return addr >= slot + FLBOOT_HEADER_AREA && addr < slot + FLBOOT_CORE_SLOT_SIZE((unsigned)core);
}

/* An Intel HEX or S-record file: its records say where every byte goes,
 * so the lowest address decides the slot, and every byte must lie in that
 * slot's application area (one outside both slots gets the message for
 * slot A, as an ELF does). */
static int read_records(int core, flasher__fwinput_kind kind, struct input *in)
{
	flasher__memimage m = {0};
	int err = kind == FLASHER__INPUT_IHEX ? flasher__ihex_parse(in->data, in->len, in->path, &m)
	                                      : flasher__srec_parse(in->data, in->len, in->path, &m);
	uint32_t lo = 0;
	if (!err) {
		in->slot = slot_a(core);
		if (flasher__memimage_lowest(&m, &lo) == 0 && in_slot_app(core, slot_b(core), lo))
			in->slot = slot_b(core);
		err = flasher__memimage_flatten(&m, in->path, in->slot + FLBOOT_HEADER_AREA,
		                                in->slot + FLBOOT_CORE_SLOT_SIZE((unsigned)core), &in->flat, &in->flat_len);
	}
	flasher__memimage_free(&m);
	if (err)
		return flasher__error_wrap(err, "%s image", core_name(core));
	in->records = 1;
	return 0;
}

static int read_input(int core, const char *path, struct input *in)
{
	const char *cn = core_name(core);
	memset(in, 0, sizeof *in);
	in->path = path;
	int err = read_file(path, MAX_INPUT_FILE, &in->data, &in->len);
	if (err)
		return flasher__error_wrap(err, "%s image", cn);
	if (in->len == 0)
		return flasher__error(FLASHER_EFORMAT, "%s image '%s' is empty", cn, path);
	const char *why;
	flasher__fwinput_kind kind = flasher__fwinput_kind_of(in->data, in->len, &why);
	if (kind == FLASHER__INPUT_REFUSED)
		return flasher__error(FLASHER_EFORMAT, "%s image '%s' is %s", cn, path, why);
	if (kind == FLASHER__INPUT_IHEX || kind == FLASHER__INPUT_SREC)
		return read_records(core, kind, in);
	in->elf = kind == FLASHER__INPUT_ELF;
	uint32_t addr = 0;
	if (in->elf) {
		/* An ELF says where it is linked; one outside both slots gets
		 * flasher__elf_load's message for slot A. */
		in->slot = slot_a(core);
		if (flasher__elf_first_lma(in->data, in->len, &addr) == 0 && in_slot_app(core, slot_b(core), addr))
			in->slot = slot_b(core);
	} else if (in->len >= 8) {
		/* A .bin is linked for a slot when its reset vector (word 1 of the
		 * vector table, Thumb bit aside) points into that slot. */
		in->reset = get32(in->data + 4);
		addr = in->reset & ~1u;
		in->slot = in_slot_app(core, slot_a(core), addr) ? slot_a(core)
		           : in_slot_app(core, slot_b(core), addr) ? slot_b(core) : 0;
	}
	return 0;
}

/* The payload of input in for its slot. */
static int flatten(int core, struct input *in, struct build_image *bi)
{
	const char *cn = core_name(core);
	bi->core = core;
	bi->slot = in->slot;
	if (in->elf) {
		uint32_t base = in->slot + FLBOOT_HEADER_AREA, end = in->slot + FLBOOT_CORE_SLOT_SIZE((unsigned)core);
		int err = flasher__elf_load(in->data, in->len, in->path, base, end, &bi->payload, &bi->payload_size);
		if (err)
			return flasher__error_wrap(err, "%s image", cn);
	} else if (in->records) {
		bi->payload = in->flat;
		bi->payload_size = in->flat_len;
		in->flat = NULL;
	} else {
		bi->payload = malloc(in->len);
		if (!bi->payload)
			return flasher__error(FLASHER_ENOMEM, "out of memory");
		memcpy(bi->payload, in->data, in->len);
		bi->payload_size = in->len;
	}
	uint32_t max = FLBOOT_CORE_MAX_PAYLOAD((unsigned)core);
	if (bi->payload_size > max)
		return flasher__error(FLASHER_EFORMAT,
		                      "%s image '%s' is %zu bytes; a %s slot holds at most %u bytes of payload (%u KiB "
		                      "slot, 0x%X header area)",
		                      cn, in->path, bi->payload_size, cn, max, FLBOOT_CORE_SLOT_SIZE((unsigned)core) / 1024u,
		                      FLBOOT_HEADER_AREA);
	return 0;
}

/* The builds of one core: the file(s) given for it become one build for
 * any slot (a .bin that runs anywhere) or the builds for slot A and B (two
 * files, or one ELF relocated to the other slot). Returns the count. */
static int load_core(int core, const char *file, const char *file_b, struct build_image *out, size_t *count)
{
	const char *cn = core_name(core);
	struct input in[2];
	memset(in, 0, sizeof in);
	*count = 0;
	if (!file)
		return flasher__error(FLASHER_EINVAL, "%s: %s FILE (the slot B build) needs %s FILE (the slot A build)",
		                      cn, flag_of(core, 1), flag_of(core, 0));
	int err = read_input(core, file, &in[0]);
	if (!err && file_b)
		err = read_input(core, file_b, &in[1]);
	if (err)
		goto out;
	if (file_b) {
		/* Two builds: each must be the one for its slot. */
		for (int b = 0; b < 2 && !err; b++) {
			uint32_t want = b ? slot_b(core) : slot_a(core);
			if (in[b].slot != want)
				err = flasher__error(FLASHER_EFORMAT,
				                     "%s image '%s' given as the slot %c build (%s) %s; link it for 0x%08X",
				                     cn, in[b].path, b ? 'B' : 'A', flag_of(core, b),
				                     in[b].slot ? (in[b].slot == slot_a(core) ? "is linked for slot A"
				                                                              : "is linked for slot B")
				                                : "shows no link address in a slot (vector table)",
				                     want + FLBOOT_HEADER_AREA);
			else
				err = flatten(core, &in[b], &out[b]);
		}
		if (!err)
			*count = 2;
		goto out;
	}
	if (!in[0].elf && in[0].slot) {
		/* Raw bytes cannot be moved: their vector table pins them. */
		int is_a = in[0].slot == slot_a(core);
		char what[64];
		if (in[0].records)
			snprintf(what, sizeof what, "address records");
		else
			snprintf(what, sizeof what, "vector table (reset handler 0x%08X)", in[0].reset);
		err = flasher__error(FLASHER_EFORMAT,
		                     "%s image '%s': its %s shows it is linked inside slot %c (0x%08X), and %s cannot be "
		                     "moved to the other slot; give the slot %c build too (%s FILE%s), or an ELF linked "
		                     "with -Wl,--emit-relocs",
		                     cn, in[0].path, what, is_a ? 'A' : 'B', in[0].slot,
		                     in[0].records ? "an Intel HEX or S-record file" : "a raw .bin", is_a ? 'B' : 'A',
		                     is_a ? flag_of(core, 1) : flag_of(core, 0),
		                     is_a ? "" : ", this file as the slot B build");
		goto out;
	}
	err = flatten(core, &in[0], &out[0]);
	if (err || !in[0].elf) {
		*count = err ? 0 : 1; /* a .bin that runs anywhere: one build */
		out[0].slot = 0;
		goto out;
	}
	/* One ELF: relocate it to the other slot. */
	uint32_t from = in[0].slot, to = from == slot_a(core) ? slot_b(core) : slot_a(core);
	struct build_image *other = &out[1];
	other->core = core;
	other->slot = to;
	other->payload_size = out[0].payload_size;
	other->payload = malloc(other->payload_size);
	if (!other->payload) {
		err = flasher__error(FLASHER_ENOMEM, "out of memory");
		goto out;
	}
	memcpy(other->payload, out[0].payload, other->payload_size);
	err = flasher__elf_relocate(in[0].data, in[0].len, in[0].path, from, to, FLBOOT_CORE_SLOT_SIZE((unsigned)core),
	                            from + FLBOOT_HEADER_AREA, other->payload, other->payload_size);
	if (err == FLASHER_ENOTFOUND)
		err = flasher__error(FLASHER_EFORMAT,
		                     "%s image '%s' is linked for slot %c (0x%08X) and keeps no relocations, so it cannot "
		                     "run from slot %c: link it with -Wl,--emit-relocs, or give the build linked for "
		                     "0x%08X too (%s FILE)",
		                     cn, in[0].path, slot_letter(core, from), from, slot_letter(core, to),
		                     to + FLBOOT_HEADER_AREA, flag_of(core, 1));
	else if (err)
		flasher__error_wrap(err, "%s image", cn);
	if (!err) {
		if (from == slot_b(core)) { /* package order: A, then B */
			struct build_image t = out[0];
			out[0] = out[1];
			out[1] = t;
		}
		*count = 2;
	}
out:
	/* Every build, the derived one too, must start like an application
	 * for its core and slot. */
	for (size_t i = 0; i < *count && !err; i++)
		err = flasher__vectors_check((unsigned)core, out[i].payload, out[i].payload_size,
		                             out[i].slot ? out[i].slot + FLBOOT_HEADER_AREA : 0,
		                             in[i].path ? in[i].path : in[0].path);
	if (err)
		*count = 0;
	for (int i = 0; i < 2; i++) {
		free(in[i].data);
		free(in[i].flat);
	}
	return err;
}

static int compress_payload(struct build_image *bi)
{
	uLongf cap = compressBound((uLong)bi->payload_size);
	uint8_t *z = malloc(cap);
	if (!z)
		return flasher__error(FLASHER_ENOMEM, "out of memory compressing the %s image", core_name(bi->core));
	if (compress2(z, &cap, bi->payload, (uLong)bi->payload_size, Z_BEST_COMPRESSION) != Z_OK) {
		free(z);
		return flasher__error(FLASHER_EIO, "zlib failed to compress the %s image", core_name(bi->core));
	}
	/* Only when it saves space: random or already packed data stays raw. */
	if (cap < bi->payload_size) {
		bi->zdata = z;
		bi->zsize = cap;
	} else {
		free(z);
	}
	return 0;
}

static void fill_image_header(struct build_image *bi, uint32_t version, uint32_t min_bl, const char product[16],
                              const char hw[FLBOOT_IMAGE_MAX_HW_REVS][8], const uint8_t set_id[8])
{
	uint8_t *h = bi->header;
	memset(h, 0, sizeof bi->header);
	put32(h, FLBOOT_IMAGE_MAGIC);
	put16(h + HO(header_version), FLBOOT_IMAGE_HEADER_VERSION);
	put16(h + HO(header_size), FLBOOT_IMAGE_HEADER_SIZE);
	h[HO(core)] = (uint8_t)bi->core;
	put32(h + HO(payload_size), (uint32_t)bi->payload_size);
	put32(h + HO(payload_crc32), bi->crc32);
	memcpy(h + HO(payload_sha256), bi->sha256, 32);
	put32(h + HO(version), version);
	put32(h + HO(min_bootloader), min_bl);
	memcpy(h + HO(product), product, 16);
	memcpy(h + HO(hw_revs), hw, FLBOOT_IMAGE_MAX_HW_REVS * 8);
	memcpy(h + HO(set_id), set_id, 8);
	put32(h + HO(load_address), bi->slot ? bi->slot + FLBOOT_HEADER_AREA : 0);
	put32(h + HO(security_counter), bi->security_counter);
	put32(h + HO(header_crc32), crc32_of(h, FLBOOT_IMAGE_HEADER_SIZE - 4));
	bi->area_size = FLBOOT_IMAGE_HEADER_SIZE;
}

static int created_time(char *buf, size_t cap)
{
	time_t t = time(NULL);
	const char *sde = getenv("SOURCE_DATE_EPOCH");
	if (sde && *sde) {
		/* Reproducible builds: the same inputs give the same bytes. */
		char *end;
		errno = 0;
		long long v = strtoll(sde, &end, 10);
		if (errno || *end || v < 0)
			return flasher__error(FLASHER_EINVAL, "SOURCE_DATE_EPOCH '%s' is not a number of seconds", sde);
		t = (time_t)v;
	}
	struct tm tm;
	if (!gmtime_r(&t, &tm) || !strftime(buf, cap, "%Y-%m-%dT%H:%M:%SZ", &tm))
		return flasher__error(FLASHER_EINVAL, "cannot format the creation time");
	return 0;
}

static char *build_manifest(const flasher_pack_options *o, uint32_t version, uint32_t min_bl, const char *created,
                            const uint8_t set_id[8], struct build_image *imgs, size_t n)
{
	char buf[80];
	cJSON *m = cJSON_CreateObject();
	if (!m)
		return NULL;
	cJSON_AddStringToObject(m, "format", PKG_FORMAT_NAME);
	cJSON_AddStringToObject(m, "product", o->product);
	cJSON *hw = cJSON_AddArrayToObject(m, "hw_revs");
	for (size_t i = 0; hw && i < o->hw_rev_count; i++)
		cJSON_AddItemToArray(hw, cJSON_CreateString(o->hw_revs[i]));
	flasher_semver_format(version, buf, sizeof buf);
	cJSON_AddStringToObject(m, "version", buf);
	if (o->build_id)
		cJSON_AddStringToObject(m, "build_id", o->build_id);
	else
		cJSON_AddNullToObject(m, "build_id");
	flasher_semver_format(min_bl, buf, sizeof buf);
	cJSON_AddStringToObject(m, "min_bootloader", buf);
	cJSON_AddStringToObject(m, "created", created);
	hex_encode(set_id, 8, buf);
	cJSON_AddStringToObject(m, "set_id", buf);
	cJSON *arr = cJSON_AddArrayToObject(m, "images");
	for (size_t i = 0; arr && i < n; i++) {
		struct build_image *bi = &imgs[i];
		cJSON *e = cJSON_CreateObject();
		cJSON_AddItemToArray(arr, e);
		cJSON_AddStringToObject(e, "core", core_name(bi->core));
		cJSON_AddNumberToObject(e, "slot", bi->slot);
		cJSON_AddNumberToObject(e, "load_address", bi->slot ? bi->slot + FLBOOT_HEADER_AREA : 0);
		cJSON_AddNumberToObject(e, "header_size", bi->area_size);
		cJSON_AddNumberToObject(e, "payload_size", (double)bi->payload_size);
		snprintf(buf, sizeof buf, "%08x", bi->crc32);
		cJSON_AddStringToObject(e, "crc32", buf);
		hex_encode(bi->sha256, 32, buf);
		cJSON_AddStringToObject(e, "sha256", buf);
		cJSON_AddStringToObject(e, "compression", bi->zdata ? "zlib" : "none");
		cJSON_AddNumberToObject(e, "stored_offset", bi->stored_offset);
		cJSON_AddNumberToObject(e, "stored_size", bi->stored_size);
		snprintf(buf, sizeof buf, "%08x", bi->stored_crc32);
		cJSON_AddStringToObject(e, "stored_crc32", buf);
	}
	cJSON_AddNullToObject(m, "signature");
	char *text = cJSON_Print(m);
	cJSON_Delete(m);
	return text;
}

/* Write via a temp file in the same directory, fsync, rename, fsync the
 * directory: readers see the old file or the whole new one, never a part. */
static int write_atomic(const char *path, const uint8_t *const *parts, const size_t *sizes, size_t nparts)
{
	size_t plen = strlen(path);
	char *tmp = malloc(plen + 40);
	char *dir = malloc(plen + 2);
	if (!tmp || !dir) {
		free(tmp);
		free(dir);
		return flasher__error(FLASHER_ENOMEM, "out of memory");
	}
	const char *slash = strrchr(path, '/');
	if (slash) {
		size_t dlen = slash == path ? 1 : (size_t)(slash - path);
		memcpy(dir, path, dlen);
		dir[dlen] = '\0';
	} else {
		strcpy(dir, ".");
	}
	int fd = -1;
	static unsigned counter;
	for (int attempt = 0; attempt < 100 && fd < 0; attempt++) {
		snprintf(tmp, plen + 40, "%s.tmp-%ld-%u", path, (long)getpid(),
		         __atomic_fetch_add(&counter, 1, __ATOMIC_RELAXED));
		fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
		if (fd < 0 && errno != EEXIST)
			break;
	}
	if (fd < 0) {
		int e = errno;
		free(tmp);
		free(dir);
		return flasher__error(errno_code(e), "cannot create a file next to '%s': %s", path, strerror(e));
	}
	int err = 0;
	for (size_t i = 0; i < nparts && !err; i++) {
		size_t done = 0;
		while (done < sizes[i]) {
			ssize_t w = write(fd, parts[i] + done, sizes[i] - done);
			if (w < 0 && errno == EINTR)
				continue;
			if (w <= 0) {
				int e = w < 0 ? errno : ENOSPC;
				err = flasher__error(errno_code(e) == FLASHER_EPERM ? FLASHER_EPERM : FLASHER_EIO,
				                     "writing '%s' failed: %s", tmp, strerror(e));
				break;
			}
			done += (size_t)w;
		}
	}
	if (!err && fsync(fd) != 0)
		err = flasher__error(FLASHER_EIO, "fsync of '%s' failed: %s", tmp, strerror(errno));
	if (close(fd) != 0 && !err)
		err = flasher__error(FLASHER_EIO, "closing '%s' failed: %s", tmp, strerror(errno));
	if (!err && rename(tmp, path) != 0)
		err = flasher__error(errno_code(errno), "renaming '%s' to '%s' failed: %s", tmp, path, strerror(errno));
	if (err) {
		unlink(tmp);
	} else {
		int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (dfd >= 0) {
			fsync(dfd); /* best effort: makes the rename durable */
			close(dfd);
		}
	}
	free(tmp);
	free(dir);
	return err;
}

static int check_options(const flasher_pack_options *o, uint32_t *version, uint32_t *min_bl)
{
	if (o->version < 1 || o->version > FLASHER_PACK_OPTIONS_VERSION)
		return flasher__error(FLASHER_EINVAL, "pack options version %u, this library knows 1..%u", o->version,
		                      FLASHER_PACK_OPTIONS_VERSION);
	if (!o->product || !valid_id(o->product, 15))
		return flasher__error(FLASHER_EINVAL, "product id '%s': 1..15 printable characters, no spaces",
		                      o->product ? o->product : "(none)");
	if (!o->fw_version)
		return flasher__error(FLASHER_EINVAL, "firmware version missing (X.Y.Z)");
	if (flasher_semver_parse(o->fw_version, version) != 0)
		return flasher__error_wrap(FLASHER_EINVAL, "firmware version");
	*min_bl = 0;
	if (o->min_bootloader && flasher_semver_parse(o->min_bootloader, min_bl) != 0)
		return flasher__error_wrap(FLASHER_EINVAL, "minimum bootloader version");
	if (o->hw_rev_count > FLBOOT_IMAGE_MAX_HW_REVS || (o->hw_rev_count && !o->hw_revs))
		return flasher__error(FLASHER_EINVAL, "%zu hardware revisions, at most %u", o->hw_rev_count,
		                      FLBOOT_IMAGE_MAX_HW_REVS);
	for (size_t i = 0; i < o->hw_rev_count; i++) {
		if (!o->hw_revs[i] || !valid_id(o->hw_revs[i], 7))
			return flasher__error(FLASHER_EINVAL, "hardware revision '%s': 1..7 printable characters, no spaces",
			                      o->hw_revs[i] ? o->hw_revs[i] : "(null)");
		for (size_t j = 0; j < i; j++)
			if (!strcmp(o->hw_revs[i], o->hw_revs[j]))
				return flasher__error(FLASHER_EINVAL, "hardware revision '%s' given twice", o->hw_revs[i]);
	}
	if (o->build_id) {
		size_t n = strlen(o->build_id);
		if (n > MAX_BUILD_ID)
			return flasher__error(FLASHER_EINVAL, "build id is %zu bytes, at most %u", n, MAX_BUILD_ID);
		for (size_t i = 0; i < n; i++)
			if ((unsigned char)o->build_id[i] < 0x20 || o->build_id[i] == 0x7F)
				return flasher__error(FLASHER_EINVAL, "build id contains a control character at %zu", i);
	}
	if (!o->cm7_file && !o->cm4_file && (o->version < 2 || (!o->cm7_b_file && !o->cm4_b_file)))
		return flasher__error(FLASHER_EINVAL, "no image: give a CM7 file, a CM4 file or both");
	return 0;
}

int flasher_package_build(const flasher_pack_options *o, const char *out_path)
{
	if (!o || !out_path)
		return flasher__error(FLASHER_EINVAL, "pack: NULL argument");
	uint32_t version, min_bl;
	int err = check_options(o, &version, &min_bl);
	if (err)
		return err;
	char created[32];
	err = created_time(created, sizeof created);
	if (err)
		return err;

	struct build_image imgs[MAX_IMAGES];
	memset(imgs, 0, sizeof imgs);
	size_t n = 0;
	char *manifest = NULL;
	flasher_key *keys[FLASHER_MAX_SIGNERS] = {NULL};
	size_t nkeys = o->version >= 3 ? o->sign_key_count : 0;
	if (nkeys > FLASHER_MAX_SIGNERS || (nkeys && !o->sign_keys))
		return flasher__error(FLASHER_EINVAL, "%zu signing keys, at most %u", nkeys, FLASHER_MAX_SIGNERS);
	/* Keys first: a wrong key spec fails before any image is read. */
	for (size_t k = 0; k < nkeys && !err; k++)
		if ((err = flasher_key_load(o->sign_keys[k], &keys[k])) != 0)
			flasher__error_wrap(err, "signing key %zu", k + 1);
	if (err)
		goto out;
	/* Version-1 options end before the slot B files. */
	const char *files[MAX_CORES] = {o->cm7_file, o->cm4_file};
	const char *files_b[MAX_CORES] = {o->version >= 2 ? o->cm7_b_file : NULL,
	                                  o->version >= 2 ? o->cm4_b_file : NULL};

	char product[16] = {0};
	char hw[FLBOOT_IMAGE_MAX_HW_REVS][8];
	memset(hw, 0, sizeof hw);
	memcpy(product, o->product, strlen(o->product));
	for (size_t i = 0; i < o->hw_rev_count; i++)
		memcpy(hw[i], o->hw_revs[i], strlen(o->hw_revs[i]));

	for (int c = 0; c < (int)MAX_CORES && !err; c++) {
		if (!files[c] && !files_b[c])
			continue;
		size_t got = 0;
		err = load_core(c + 1, files[c], files_b[c], imgs + n, &got);
		n += got;
	}
	uint8_t shas[MAX_IMAGES][32];
	for (size_t i = 0; i < n && !err; i++) {
		struct build_image *bi = &imgs[i];
		if (o->compress)
			err = compress_payload(bi);
		if (!err) {
			bi->crc32 = crc32_of(bi->payload, bi->payload_size);
			flboot_sha256(bi->payload, bi->payload_size, bi->sha256);
			memcpy(shas[i], bi->sha256, 32);
		}
	}
	if (err)
		goto out;
	uint8_t set_id[8];
	compute_set_id((const uint8_t(*)[32])shas, n, version, product, set_id);
	for (size_t i = 0; i < n && !err; i++) {
		struct build_image *bi = &imgs[i];
		bi->security_counter = o->version >= 3 ? o->security_counter : 0;
		fill_image_header(bi, version, min_bl, product, (const char(*)[8])hw, set_id);
		if (nkeys) {
			/* the signature block follows the header in the header area */
			memset(bi->header + FLBOOT_IMAGE_HEADER_SIZE, 0xFF, sizeof bi->header - FLBOOT_IMAGE_HEADER_SIZE);
			err = flasher__sign_header_area(keys, nkeys, bi->header);
			bi->area_size = FLBOOT_SIGBLOCK_OFFSET + (uint32_t)sizeof(flboot_sigblock);
		}
		const uint8_t *body = bi->zdata ? bi->zdata : bi->payload;
		size_t blen = bi->zdata ? bi->zsize : bi->payload_size;
		bi->stored_size = (uint32_t)(bi->area_size + blen);
		uint32_t c = crc32_of(bi->header, bi->area_size);
		bi->stored_crc32 = (uint32_t)crc32(c, body, (uInt)blen);
	}
	if (err)
		goto out;

	/* The manifest holds the images' file offsets, which depend on its own
	 * length: iterate to the fixed point (the length only grows, so this
	 * ends after a few rounds). */
	size_t mlen = 0;
	for (int round = 0; round < 16; round++) {
		uint32_t at = (uint32_t)(PKG_HEADER_SIZE + mlen);
		for (size_t i = 0; i < n; i++) {
			imgs[i].stored_offset = at;
			at += imgs[i].stored_size;
		}
		cJSON_free(manifest);
		manifest = build_manifest(o, version, min_bl, created, set_id, imgs, n);
		if (!manifest) {
			err = flasher__error(FLASHER_ENOMEM, "out of memory building the manifest");
			goto out;
		}
		if (strlen(manifest) == mlen)
			break;
		mlen = strlen(manifest);
	}
	if (strlen(manifest) != mlen || mlen > MAX_MANIFEST) {
		err = flasher__error(FLASHER_EINVAL, "manifest layout did not settle (%zu bytes)", mlen);
		goto out;
	}

	size_t data_size = 0;
	for (size_t i = 0; i < n; i++)
		data_size += imgs[i].stored_size;
	uint8_t hdr[PKG_HEADER_SIZE];
	memset(hdr, 0, sizeof hdr);
	memcpy(hdr + OFF_MAGIC, PKG_MAGIC, PKG_MAGIC_LEN);
	put16(hdr + OFF_FORMAT_VERSION, PKG_FORMAT_VERSION);
	put16(hdr + OFF_HEADER_SIZE, PKG_HEADER_SIZE);
	size_t sig_size = nkeys ? FLASHER_PKG_SIGBLOCK_SIZE(nkeys) : 0;
	size_t signed_len = PKG_HEADER_SIZE + mlen + data_size;
	put32(hdr + OFF_TOTAL_SIZE, (uint32_t)(signed_len + sig_size));
	if (nkeys) {
		put32(hdr + OFF_FLAGS, PKG_FLAG_SIGNED);
		put32(hdr + OFF_SIG_OFFSET, (uint32_t)signed_len);
		put32(hdr + OFF_SIG_SIZE, (uint32_t)sig_size);
	}
	put32(hdr + OFF_MANIFEST_OFFSET, PKG_HEADER_SIZE);
	put32(hdr + OFF_MANIFEST_LENGTH, (uint32_t)mlen);
	put32(hdr + OFF_MANIFEST_CRC, crc32_of(manifest, mlen));
	put32(hdr + OFF_DATA_OFFSET, (uint32_t)(PKG_HEADER_SIZE + mlen));
	put32(hdr + OFF_DATA_SIZE, (uint32_t)data_size);
	put32(hdr + OFF_HEADER_CRC, crc32_of(hdr, OFF_HEADER_CRC));

	const uint8_t *parts[3 + 2 * MAX_IMAGES];
	size_t sizes[3 + 2 * MAX_IMAGES], np = 0;
	uint8_t sigblock[FLASHER_PKG_SIGBLOCK_SIZE(FLASHER_MAX_SIGNERS)];
	parts[np] = hdr;
	sizes[np++] = sizeof hdr;
	parts[np] = (const uint8_t *)manifest;
	sizes[np++] = mlen;
	for (size_t i = 0; i < n; i++) {
		parts[np] = imgs[i].header;
		sizes[np++] = imgs[i].area_size;
		parts[np] = imgs[i].zdata ? imgs[i].zdata : imgs[i].payload;
		sizes[np++] = imgs[i].zdata ? imgs[i].zsize : imgs[i].payload_size;
	}
	if (nkeys) {
		/* The package signature covers every byte before it, the header's
		 * signature fields included. */
		flboot_sha256_ctx sc;
		uint8_t digest[32];
		flboot_sha256_init(&sc);
		for (size_t i = 0; i < np; i++)
			flboot_sha256_update(&sc, parts[i], sizes[i]);
		flboot_sha256_final(&sc, digest);
		if ((err = flasher__sign_package(keys, nkeys, digest, sigblock)) != 0)
			goto out;
		parts[np] = sigblock;
		sizes[np++] = sig_size;
	}
	err = write_atomic(out_path, parts, sizes, np);
	if (err)
		flasher__error_wrap(err, "pack '%s'", out_path);
out:
	for (size_t k = 0; k < FLASHER_MAX_SIGNERS; k++)
		flasher_key_free(keys[k]);
	cJSON_free(manifest);
	for (size_t i = 0; i < MAX_IMAGES; i++) {
		free(imgs[i].payload);
		free(imgs[i].zdata);
	}
	return err;
}

static void copy_report(const flasher__sig_report *rep, size_t *count, flasher_signer *out)
{
	*count = rep->count;
	for (size_t i = 0; i < rep->count; i++) {
		memcpy(out[i].key_id, rep->key_id[i], FLASHER_KEY_ID_SIZE);
		out[i].valid = rep->valid[i];
	}
}

_Static_assert(MAX_IMAGES == sizeof(((flasher_signatures *)0)->image) / sizeof(((flasher_signatures *)0)->image[0]),
               "flasher_signatures holds every build of a package");

int flasher_package_signatures(const flasher_package *pkg, const uint8_t *pub, flasher_signatures *out)
{
	flasher__sig_report rep;
	int err;

	memset(out, 0, sizeof *out);
	if (pkg->sigblock) {
		uint8_t digest[32];
		flboot_sha256(pkg->file, pkg->signed_len, digest);
		if ((err = flasher__check_package_sig(pkg->sigblock, pkg->sigblock_size, digest, pub, &rep)) != 0)
			return err;
		copy_report(&rep, &out->package_count, out->package);
	}
	out->image_count = pkg->image_count;
	for (size_t i = 0; i < pkg->image_count; i++) {
		const flasher_package_image *img = &pkg->images[i].pub;
		out->image[i].core = img->core;
		out->image[i].slot = img->slot;
		if (img->header_area_size < FLBOOT_SIGBLOCK_OFFSET + sizeof(flboot_sigblock))
			continue; /* no room for a signature block: unsigned */
		if ((err = flasher__check_image_sig(img->header_area, pub, &rep)) != 0)
			return flasher__error_wrap(err, "%s image", core_name(img->core));
		copy_report(&rep, &out->image[i].count, out->image[i].signer);
	}
	return 0;
}

size_t flasher_package_size_limit(void)
{
	return MAX_PACKAGE;
}

unsigned flasher_package_image_sectors(const flasher_package_image *img, size_t *last_bytes)
{
	size_t used = img ? FLBOOT_HEADER_AREA + img->payload_size : 0;
	unsigned n = (unsigned)((used + FLBOOT_SECTOR_SIZE - 1) / FLBOOT_SECTOR_SIZE);
	if (last_bytes)
		*last_bytes = n ? used - (size_t)(n - 1) * FLBOOT_SECTOR_SIZE : 0;
	return n;
}
