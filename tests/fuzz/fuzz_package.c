/* libFuzzer target: package reader and ELF loader on arbitrary bytes.
 * The first input byte picks the mode; the rest is the file:
 *   0: package as is (must be refused or fully valid)
 *   1: package with its header CRC32 and manifest CRC32 recomputed first,
 *      so mutations reach the manifest parser and the image checks
 *   2: ELF loader for the CM7 slot
 * Built by tests/fuzz/run.sh from these lines: */
// fuzz-sources: libflasher/src/package.c libflasher/src/elf.c libflasher/src/errors.c
// fuzz-sources: libflasher/src/version.c firmware/core/src/sha256.c firmware/core/src/crc32.c
// fuzz-sources: libflasher/src/sign.c libflasher/src/package_sign.c firmware/core/src/trust.c
// fuzz-sources: firmware/core/src/sha512.c firmware/core/src/ed25519.c
// fuzz-sources: libflasher/src/fwinput.c libflasher/src/ihex.c libflasher/src/srec.c libflasher/src/memimage.c libflasher/src/vectors.c
// fuzz-libs: -lz -lcjson -lsodium
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "elf_load.h"
#include "flasher/errors.h"
#include "flasher/package.h"
#include "flboot/image.h"
#include "flboot/layout.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint32_t le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void check_package(const uint8_t *buf, size_t len)
{
	flasher_package *pkg = NULL;
	if (flasher_package_open_memory(&pkg, buf, len) != 0) {
		if (pkg)
			abort(); /* failure must not hand out a package */
		return;
	}
	/* Accepted: everything it reports must be consistent. */
	for (size_t i = 0; i < flasher_package_image_count(pkg); i++) {
		flasher_package_image img;
		if (flasher_package_get_image(pkg, i, &img) != 0)
			abort();
		if (img.payload_size == 0 || img.payload_size > FLBOOT_SLOT_SIZE - FLBOOT_IMAGE_HEADER_AREA)
			abort();
		if ((uint32_t)crc32(0, img.payload, (uInt)img.payload_size) != img.payload_crc32)
			abort();
	}
	if (!flasher_package_manifest_json(pkg) || !flasher_package_product(pkg))
		abort();
	flasher_package_free(pkg);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	uint8_t mode = data[0] % 3;
	data++;
	size--;
	if (mode == 0) {
		check_package(data, size);
	} else if (mode == 1) {
		uint8_t *buf = malloc(size ? size : 1);
		memcpy(buf, data, size);
		if (size >= 64) {
			uint32_t mlen = le32(buf + 24);
			if (mlen <= size - 64)
				put32(buf + 28, (uint32_t)crc32(0, buf + 64, mlen));
			put32(buf + 60, (uint32_t)crc32(0, buf, 60));
		}
		check_package(buf, size);
		free(buf);
	} else {
		uint8_t *img = NULL;
		size_t n = 0;
		uint32_t base = FLBOOT_CM7_APP_ADDR;
		uint32_t end = base - FLBOOT_IMAGE_HEADER_AREA + FLBOOT_SLOT_SIZE;
		if (flasher__elf_load(data, size, "fuzz.elf", base, end, &img, &n) == 0) {
			if (!img || n == 0 || n > end - base)
				abort();
			free(img);
		} else if (img) {
			abort();
		}
	}
	return 0;
}
