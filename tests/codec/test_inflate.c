/* Raw inflate against zlib's deflate (windowBits -15) and against broken
 * streams. Output buffers are malloc'd to their exact capacity so that
 * AddressSanitizer sees any write past out_cap. */
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>
#include <zlib.h>

#include "codec_util.h"
#include "flboot/inflate.h"

static size_t zdeflate(const uint8_t *in, size_t n, uint8_t *out, size_t cap, int level, int strategy)
{
	z_stream z;

	memset(&z, 0, sizeof(z));
	cr_assert_eq(deflateInit2(&z, level, Z_DEFLATED, -15, 8, strategy), Z_OK);
	z.next_in = (Bytef *)in;
	z.avail_in = (uInt)n;
	z.next_out = out;
	z.avail_out = (uInt)cap;
	cr_assert_eq(deflate(&z, Z_FINISH), Z_STREAM_END);
	size_t len = z.total_out;
	deflateEnd(&z);
	return len;
}

/* Data that looks like what is really sent: C source text and Thumb-2
 * machine code (repeating instruction shapes, varying immediates). */
static void make_data(rng *r, uint8_t *p, size_t n, int kind)
{
	static const char *words[] = {"static ", "int ", "return ", "if (", ") {\n", "}\n", "uint32_t ",
	                              "flash_program(", "->", "0x08000000", ";\n", "\t", "for (i = 0; i < n; i++)",
	                              "sector", "(void)", " == ", " + ", "NULL", "/* erase ahead */\n"};
	size_t i = 0;

	switch (kind) {
	case 0: /* random */
		rng_fill(r, p, n);
		break;
	case 1: /* code-like text */
		while (i < n) {
			const char *w = words[rng_u32(r) % (sizeof(words) / sizeof(words[0]))];
			size_t l = strlen(w);
			if (l > n - i)
				l = n - i;
			memcpy(p + i, w, l);
			i += l;
		}
		break;
	case 2: /* machine-code-like */
		while (i < n) {
			static const uint8_t ops[][4] = {{0x2d, 0xe9, 0xf0, 0x41}, {0x00, 0x20, 0x70, 0x47},
			                                 {0x4f, 0xf0, 0x00, 0x00}, {0xd0, 0xf8, 0x00, 0x30}};
			uint8_t ins[4];
			memcpy(ins, ops[rng_u32(r) % 4], 4);
			if (rng_u32(r) % 3 == 0)
				ins[0] = (uint8_t)rng_u32(r);
			size_t l = n - i < 4 ? n - i : 4;
			memcpy(p + i, ins, l);
			i += l;
		}
		break;
	default: /* long runs: stresses overlapping matches */
		while (i < n) {
			size_t l = rng_range(r, 1, 700);
			if (l > n - i)
				l = n - i;
			memset(p + i, (int)(rng_u32(r) % 3), l);
			i += l;
		}
		break;
	}
}

static void check_round_trip(const uint8_t *src, size_t n, int level, int strategy, const char *what)
{
	size_t zcap = n + n / 10 + 64;
	uint8_t *z = malloc(zcap);
	size_t zn = zdeflate(src, n, z, zcap, level, strategy);
	uint8_t *out = malloc(n ? n : 1);

	long got = flboot_inflate(z, zn, out, n);
	cr_assert_eq(got, (long)n, "%s: size %zu level %d strategy %d: got %ld", what, n, level, strategy, got);
	if (n)
		cr_assert_arr_eq(out, src, n, "%s: size %zu level %d", what, n, level);
	/* One byte less room must fail cleanly (and ASan checks it stays inside). */
	if (n) {
		free(out);
		out = malloc(n - 1 ? n - 1 : 1);
		cr_assert_eq(flboot_inflate(z, zn, out, n - 1), FLBOOT_INFLATE_E_OUTPUT, "%s: size %zu level %d",
		             what, n, level);
	}
	free(out);
	free(z);
}

Test(inflate, zlib_levels_sizes_and_kinds)
{
	static uint8_t src[8192];
	static const size_t sizes[] = {0, 1, 2, 3, 31, 32, 33, 255, 256, 257, 1000, 4095, 4096, 4097, 8191, 8192};
	static const int levels[] = {0, 1, 6, 9};
	rng r;

	for (int kind = 0; kind < 4; kind++)
		for (size_t si = 0; si < sizeof(sizes) / sizeof(sizes[0]); si++)
			for (size_t li = 0; li < 4; li++) {
				rng_seed(&r, (uint64_t)(kind * 1000 + si));
				make_data(&r, src, sizes[si], kind);
				check_round_trip(src, sizes[si], levels[li], Z_DEFAULT_STRATEGY, "sweep");
			}
}

Test(inflate, zlib_random_sizes)
{
	static uint8_t src[8192];
	rng r;

	for (unsigned seed = 0; seed < 120; seed++) {
		rng_seed(&r, seed);
		size_t n = rng_range(&r, 0, sizeof(src));
		int kind = (int)(seed % 4);
		make_data(&r, src, n, kind);
		check_round_trip(src, n, (int)rng_range(&r, 0, 9), Z_DEFAULT_STRATEGY, "random");
	}
}

Test(inflate, zlib_strategies_cover_fixed_and_rle_blocks)
{
	static uint8_t src[8192];
	static const int strategies[] = {Z_FIXED, Z_HUFFMAN_ONLY, Z_RLE, Z_FILTERED};
	rng r;

	for (size_t s = 0; s < 4; s++)
		for (int kind = 0; kind < 4; kind++) {
			rng_seed(&r, (uint64_t)(s * 10 + (size_t)kind));
			size_t n = rng_range(&r, 1, sizeof(src));
			make_data(&r, src, n, kind);
			check_round_trip(src, n, 6, strategies[s], "strategy");
		}
}

Test(inflate, zlib_multiple_blocks_with_flushes)
{
	/* Stored, fixed and dynamic blocks mixed in one stream. */
	static uint8_t src[6000], z[8000], out[6000];
	z_stream zs;
	rng r;

	rng_seed(&r, 5);
	make_data(&r, src, 2000, 1);
	make_data(&r, src + 2000, 2000, 0);
	make_data(&r, src + 4000, 2000, 3);
	memset(&zs, 0, sizeof(zs));
	cr_assert_eq(deflateInit2(&zs, 6, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY), Z_OK);
	zs.next_out = z;
	zs.avail_out = sizeof(z);
	for (int i = 0; i < 3; i++) {
		zs.next_in = src + 2000 * i;
		zs.avail_in = 2000;
		if (i == 1)
			deflateParams(&zs, 0, Z_DEFAULT_STRATEGY);
		if (i == 2)
			deflateParams(&zs, 9, Z_FIXED);
		cr_assert_neq(deflate(&zs, i == 2 ? Z_FINISH : Z_FULL_FLUSH), Z_STREAM_ERROR);
	}
	size_t zn = zs.total_out;
	deflateEnd(&zs);
	cr_assert_eq(flboot_inflate(z, zn, out, sizeof(out)), (long)sizeof(out));
	cr_assert_arr_eq(out, src, sizeof(src));
}

Test(inflate, truncated_streams_fail_cleanly)
{
	static uint8_t src[4096], z[5000];
	rng r;

	for (int kind = 0; kind < 4; kind++) {
		rng_seed(&r, (uint64_t)kind);
		make_data(&r, src, sizeof(src), kind);
		size_t zn = zdeflate(src, sizeof(src), z, sizeof(z), kind == 0 ? 0 : 6, Z_DEFAULT_STRATEGY);
		for (size_t cut = 0; cut < zn; cut++) {
			uint8_t *in = malloc(cut ? cut : 1); /* exact size: ASan catches over-reads */
			uint8_t *out = malloc(sizeof(src));
			memcpy(in, z, cut);
			long got = flboot_inflate(in, cut, out, sizeof(src));
			/* Only the last byte may hold nothing but padding bits. */
			if (got >= 0) {
				cr_assert_eq(cut, zn - 1, "kind %d: cut at %zu of %zu decoded %ld bytes", kind, cut, zn, got);
				cr_assert_eq(got, (long)sizeof(src));
				cr_assert_arr_eq(out, src, sizeof(src));
			}
			free(in);
			free(out);
		}
	}
}

Test(inflate, bit_flips_never_overrun)
{
	static uint8_t src[3000], z[4000];
	rng r;
	int failed = 0, decoded = 0;

	for (unsigned seed = 0; seed < 3000; seed++) {
		rng_seed(&r, seed);
		int kind = (int)(seed % 4);
		make_data(&r, src, sizeof(src), kind);
		size_t zn = zdeflate(src, sizeof(src), z, sizeof(z), (int)rng_range(&r, 1, 9), Z_DEFAULT_STRATEGY);
		uint8_t *in = malloc(zn);
		memcpy(in, z, zn);
		for (int k = (int)rng_range(&r, 1, 4); k > 0; k--)
			in[rng_range(&r, 0, zn - 1)] ^= (uint8_t)(1u << (rng_u32(&r) % 8));
		size_t cap = rng_range(&r, 1, sizeof(src) + 100);
		uint8_t *out = malloc(cap);
		long got = flboot_inflate(in, zn, out, cap);
		cr_assert(got < 0 || (size_t)got <= cap, "seed %u: %ld bytes into %zu", seed, got, cap);
		if (got < 0) {
			cr_assert(got >= FLBOOT_INFLATE_E_OUTPUT, "unknown error %ld", got);
			failed++;
		} else {
			decoded++;
		}
		free(in);
		free(out);
	}
	/* Most corrupted streams must be refused; this catches a decoder that
	 * ignores its own error checks. */
	cr_assert_gt(failed, 1500, "only %d of 3000 corrupted streams failed", failed);
	cr_log_info("bit flips: %d refused, %d decoded to something", failed, decoded);
}

Test(inflate, hand_made_bad_streams)
{
	uint8_t out[64];

	/* empty input */
	cr_assert_eq(flboot_inflate((const uint8_t *)"", 0, out, sizeof(out)), FLBOOT_INFLATE_E_TRUNCATED);
	/* block type 3 is reserved: BFINAL=1, BTYPE=11 */
	const uint8_t reserved[] = {0x07};
	cr_assert_eq(flboot_inflate(reserved, 1, out, sizeof(out)), FLBOOT_INFLATE_E_DATA);
	/* stored block whose NLEN is not ~LEN */
	const uint8_t stored_bad[] = {0x01, 0x03, 0x00, 0x00, 0x00, 'a', 'b', 'c'};
	cr_assert_eq(flboot_inflate(stored_bad, sizeof(stored_bad), out, sizeof(out)), FLBOOT_INFLATE_E_DATA);
	/* good stored block "abc" */
	const uint8_t stored_ok[] = {0x01, 0x03, 0x00, 0xFC, 0xFF, 'a', 'b', 'c'};
	cr_assert_eq(flboot_inflate(stored_ok, sizeof(stored_ok), out, sizeof(out)), 3);
	cr_assert_arr_eq(out, "abc", 3);
	/* stored block claiming more bytes than there are */
	const uint8_t stored_short[] = {0x01, 0x05, 0x00, 0xFA, 0xFF, 'a'};
	cr_assert_eq(flboot_inflate(stored_short, sizeof(stored_short), out, sizeof(out)), FLBOOT_INFLATE_E_TRUNCATED);
	/* fixed block starting with a match (length 3, distance 1): nothing
	 * to copy from yet. BFINAL=1 BTYPE=01, len code 257 = 0000001 (7 bits),
	 * dist code 0 = 00000 (5 bits), then end of block 0000000. */
	const uint8_t far[] = {0x03, 0x02, 0x00, 0x00};
	cr_assert_eq(flboot_inflate(far, sizeof(far), out, sizeof(out)), FLBOOT_INFLATE_E_DISTANCE);
	/* NULL buffers with a length */
	cr_assert_lt(flboot_inflate(NULL, 5, out, sizeof(out)), 0);
	cr_assert_lt(flboot_inflate(stored_ok, sizeof(stored_ok), NULL, 10), 0);
}

Test(inflate, output_is_the_window_only)
{
	/* Zero capacity: only an empty stream fits. */
	static uint8_t src[100], z[200];
	size_t zn = zdeflate(src, 0, z, sizeof(z), 6, Z_DEFAULT_STRATEGY);
	cr_assert_eq(flboot_inflate(z, zn, NULL, 0), 0);
	zn = zdeflate(src, sizeof(src), z, sizeof(z), 6, Z_DEFAULT_STRATEGY);
	cr_assert_eq(flboot_inflate(z, zn, NULL, 0), FLBOOT_INFLATE_E_OUTPUT);
}
