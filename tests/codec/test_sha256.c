/* SHA-256 against the FIPS 180-4 / NIST example vectors. */
#include <string.h>

#include <criterion/criterion.h>

#include "codec_util.h"
#include "flboot/sha256.h"

static void hex(const uint8_t d[32], char out[65])
{
	static const char x[] = "0123456789abcdef";
	for (int i = 0; i < 32; i++) {
		out[2 * i] = x[d[i] >> 4];
		out[2 * i + 1] = x[d[i] & 15];
	}
	out[64] = 0;
}

static void check_oneshot(const char *msg, const char *want)
{
	uint8_t d[32];
	char h[65];

	flboot_sha256(msg, strlen(msg), d);
	hex(d, h);
	cr_assert_str_eq(h, want, "message \"%.20s...\"", msg);
}

Test(sha256, nist_abc)
{
	check_oneshot("abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

Test(sha256, nist_empty)
{
	check_oneshot("", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

Test(sha256, nist_448_bits)
{
	check_oneshot("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
	              "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

Test(sha256, nist_896_bits)
{
	check_oneshot("abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmn"
	              "hijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu",
	              "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1");
}

Test(sha256, nist_million_a)
{
	static uint8_t a[1000];
	flboot_sha256_ctx ctx;
	uint8_t d[32];
	char h[65];

	memset(a, 'a', sizeof(a));
	flboot_sha256_init(&ctx);
	for (int i = 0; i < 1000; i++)
		flboot_sha256_update(&ctx, a, sizeof(a));
	flboot_sha256_final(&ctx, d);
	hex(d, h);
	cr_assert_str_eq(h, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

/* Lengths around the padding boundaries (55, 56, 63, 64, ...) fed in random
 * pieces must give the one-shot digest; together with the NIST vectors this
 * pins the buffering logic. */
Test(sha256, chunking_does_not_matter)
{
	static uint8_t buf[300];
	rng r;

	for (size_t n = 0; n < sizeof(buf); n++) {
		uint8_t want[32], got[32];
		flboot_sha256_ctx ctx;

		rng_seed(&r, n);
		rng_fill(&r, buf, n);
		flboot_sha256(buf, n, want);
		flboot_sha256_init(&ctx);
		size_t off = 0;
		while (off < n) {
			size_t k = rng_range(&r, 0, n - off < 70 ? n - off : 70);
			flboot_sha256_update(&ctx, buf + off, k);
			off += k;
		}
		flboot_sha256_final(&ctx, got);
		cr_assert_arr_eq(got, want, 32, "length %zu", n);
	}
}

Test(sha256, different_inputs_differ)
{
	uint8_t a[32], b[32];

	flboot_sha256("abd", 3, a);
	flboot_sha256("abc", 3, b);
	cr_assert_arr_neq(a, b, 32);
}
