/* CRC-32 against zlib and against a bitwise reference. */
#include <criterion/criterion.h>
#include <zlib.h>

#include "codec_util.h"
#include "flboot/crc32.h"

/* Bit-at-a-time CRC straight from the definition (reflected 0xEDB88320). */
static uint32_t crc_bitwise(uint32_t crc, const uint8_t *p, size_t n)
{
	crc = ~crc;
	while (n--) {
		crc ^= *p++;
		for (int k = 0; k < 8; k++)
			crc = (crc & 1u) ? (crc >> 1) ^ 0xEDB88320u : crc >> 1;
	}
	return ~crc;
}

Test(crc32, check_value)
{
	/* The catalogued check value of CRC-32/ISO-HDLC. */
	cr_assert_eq(flboot_crc32(0, "123456789", 9), 0xCBF43926u);
	cr_assert_eq(flboot_crc32(0, "", 0), 0u);
	cr_assert_eq(flboot_crc32(0x12345678u, NULL, 10), 0u, "NULL data returns the initial value, as zlib");
}

Test(crc32, every_single_byte_matches_bitwise)
{
	/* Covers each table entry once. */
	for (unsigned b = 0; b < 256; b++) {
		uint8_t c = (uint8_t)b;
		cr_assert_eq(flboot_crc32(0, &c, 1), crc_bitwise(0, &c, 1), "byte 0x%02x", b);
	}
}

Test(crc32, random_chunked_matches_zlib)
{
	static uint8_t buf[9000];
	rng r;

	for (unsigned seed = 0; seed < 200; seed++) {
		rng_seed(&r, seed);
		size_t n = rng_range(&r, 0, sizeof(buf));
		rng_fill(&r, buf, n);
		uLong want = crc32(0L, buf, (uInt)n);
		uint32_t got = 0;
		size_t off = 0;
		while (off < n) {
			size_t k = rng_range(&r, 0, n - off);
			got = flboot_crc32(got, buf + off, k);
			off += k;
		}
		cr_assert_eq(got, (uint32_t)want, "seed %u len %zu", seed, n);
	}
}
