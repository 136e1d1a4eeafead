/* The freestanding SHA-512 and ed25519 verifier of the bootloader, against
 * the RFC 8032 / FIPS 180-4 vectors and against libsodium (the host side's
 * signer) on thousands of random messages, keys and corrupted signatures. */
#include <string.h>

#include <criterion/criterion.h>
#include <sodium.h>

#include "codec_util.h"
#include "flboot/ed25519.h"
#include "flboot/sha512.h"

static void unhex(const char *h, uint8_t *out, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned v;

		cr_assert(sscanf(h + 2 * i, "%2x", &v) == 1);
		out[i] = (uint8_t)v;
	}
}

static void sodium_up(void)
{
	cr_assert(sodium_init() >= 0, "libsodium does not initialise");
}

TestSuite(sha512, .init = sodium_up);
TestSuite(ed25519, .init = sodium_up);

Test(sha512, fips_abc_and_empty)
{
	static const struct {
		const char *msg, *want;
	} v[] = {
		{"abc", "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a"
		        "2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f"},
		{"", "cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce"
		     "47d0d13c5d85f2b0ff8318d2877eec2f63b931bd47417a81a538327af927da3e"},
	};
	for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
		flboot_sha512_ctx c;
		uint8_t got[64], want[64];

		unhex(v[i].want, want, 64);
		flboot_sha512_init(&c);
		flboot_sha512_update(&c, v[i].msg, strlen(v[i].msg));
		flboot_sha512_final(&c, got);
		cr_assert(memcmp(got, want, 64) == 0, "SHA-512(\"%s\") differs from FIPS 180-4", v[i].msg);
	}
}

/* Every length around the block and padding boundaries, in random chunks. */
Test(sha512, matches_libsodium_any_length_any_chunking)
{
	static uint8_t buf[1200];
	rng r;

	rng_seed(&r, 512);
	for (size_t i = 0; i < sizeof buf; i++)
		buf[i] = (uint8_t)rng_u32(&r);
	for (size_t len = 0; len <= sizeof buf; len++) {
		flboot_sha512_ctx c;
		uint8_t got[64], want[64];
		size_t off = 0;

		crypto_hash_sha512(want, buf, len);
		flboot_sha512_init(&c);
		while (off < len) {
			size_t n = rng_range(&r, 0, len - off);

			flboot_sha512_update(&c, buf + off, n);
			off += n;
		}
		flboot_sha512_final(&c, got);
		cr_assert(memcmp(got, want, 64) == 0, "SHA-512 of %zu bytes differs from libsodium", len);
	}
}

/* RFC 8032 section 7.1, tests 1-3: keys derived from the seeds by libsodium
 * must match the RFC too, so a typo in a vector cannot pass unnoticed. */
Test(ed25519, rfc8032_vectors)
{
	static const struct {
		const char *seed, *pk, *msg, *sig;
	} v[] = {
		{"9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
		 "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a", "",
		 "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46b"
		 "d25bf5f0595bbe24655141438e7a100b"},
		{"4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
		 "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c", "72",
		 "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c"
		 "387b2eaeb4302aeeb00d291612bb0c00"},
		{"c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7",
		 "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025", "af82",
		 "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18ff9b538d16f290ae67f760984dc659"
		 "4a7c15e9716ed28dc027beceea1ec40a"},
	};
	for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
		uint8_t seed[32], pk[32], sig[64], msg[2], derived_pk[32], sk[64], derived_sig[64];
		size_t mlen = strlen(v[i].msg) / 2;

		unhex(v[i].seed, seed, 32);
		unhex(v[i].pk, pk, 32);
		unhex(v[i].sig, sig, 64);
		unhex(v[i].msg, msg, mlen);
		crypto_sign_seed_keypair(derived_pk, sk, seed);
		crypto_sign_detached(derived_sig, NULL, msg, mlen, sk);
		cr_assert(memcmp(derived_pk, pk, 32) == 0 && memcmp(derived_sig, sig, 64) == 0,
		          "RFC 8032 test %zu: vector typo (libsodium disagrees)", i + 1);
		cr_assert_eq(flboot_ed25519_verify(sig, msg, mlen, pk), 0, "RFC 8032 test %zu refused", i + 1);
		sig[63] ^= 0x10;
		cr_assert_eq(flboot_ed25519_verify(sig, msg, mlen, pk), -1, "RFC 8032 test %zu: bad S accepted", i + 1);
	}
}

/* Random keys and messages: every genuine signature verifies, and every
 * single-bit corruption of signature, message or key is refused exactly when
 * libsodium refuses it. */
Test(ed25519, agrees_with_libsodium_on_random_and_corrupted, .timeout = 240)
{
	rng r;

	rng_seed(&r, 25519);
	for (int n = 0; n < 1200; n++) {
		uint8_t pk[32], sk[64], sig[64], msg[300], bad[64], badpk[32], badmsg[300];
		size_t len = rng_range(&r, 0, sizeof msg);
		size_t bit;

		for (size_t i = 0; i < len; i++)
			msg[i] = (uint8_t)rng_u32(&r);
		crypto_sign_keypair(pk, sk);
		crypto_sign_detached(sig, NULL, msg, len, sk);
		cr_assert_eq(flboot_ed25519_verify(sig, msg, len, pk), 0, "genuine signature %d refused", n);

		memcpy(bad, sig, 64);
		bit = rng_range(&r, 0, 511);
		bad[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		cr_assert_eq(flboot_ed25519_verify(bad, msg, len, pk) == 0,
		             crypto_sign_verify_detached(bad, msg, len, pk) == 0, "signature bit %zu, case %d", bit, n);

		memcpy(badpk, pk, 32);
		bit = rng_range(&r, 0, 255);
		badpk[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		cr_assert_eq(flboot_ed25519_verify(sig, msg, len, badpk) == 0,
		             crypto_sign_verify_detached(sig, msg, len, badpk) == 0, "key bit %zu, case %d", bit, n);

		if (len > 0) {
			memcpy(badmsg, msg, len);
			bit = rng_range(&r, 0, len * 8 - 1);
			badmsg[bit / 8] ^= (uint8_t)(1u << (bit % 8));
			cr_assert_eq(flboot_ed25519_verify(sig, badmsg, len, pk), -1, "message bit %zu accepted", bit);
		}
		/* random garbage as a signature */
		for (int i = 0; i < 64; i++)
			bad[i] = (uint8_t)rng_u32(&r);
		cr_assert_eq(flboot_ed25519_verify(bad, msg, len, pk) == 0,
		             crypto_sign_verify_detached(bad, msg, len, pk) == 0, "random signature, case %d", n);
	}
}

/* The edges libsodium refuses: S >= L (malleability), a non-canonical or
 * small-order public key, a small-order R. */
Test(ed25519, refuses_what_libsodium_refuses)
{
	uint8_t pk[32], sk[64], sig[64], bad[64], key[32];
	static const uint8_t msg[] = "flasher";
	/* L, little-endian */
	static const uint8_t order[32] = {0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7,
	                                  0xa2, 0xde, 0xf9, 0xde, 0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10};

	crypto_sign_keypair(pk, sk);
	crypto_sign_detached(sig, NULL, msg, sizeof msg, sk);
	/* S + L names the same scalar: valid in the plain equation, refused */
	memcpy(bad, sig, 64);
	{
		unsigned carry = 0;
		for (int i = 0; i < 32; i++) {
			unsigned s = bad[32 + i] + order[i] + carry;
			bad[32 + i] = (uint8_t)s;
			carry = s >> 8;
		}
	}
	cr_assert_neq(crypto_sign_verify_detached(bad, msg, sizeof msg, pk), 0);
	cr_assert_eq(flboot_ed25519_verify(bad, msg, sizeof msg, pk), -1, "S + L accepted");
	/* the identity (y = 1) is of small order */
	memset(key, 0, 32);
	key[0] = 1;
	cr_assert_eq(flboot_ed25519_verify(sig, msg, sizeof msg, key), -1, "identity key accepted");
	/* y = p + 1 (non-canonical identity) */
	memset(key, 0xff, 32);
	key[0] = 0xee;
	key[31] = 0x7f;
	cr_assert_eq(flboot_ed25519_verify(sig, msg, sizeof msg, key), -1, "non-canonical key accepted");
	/* R = identity with S = 0 and A of small order would pass the bare equation */
	memset(bad, 0, 64);
	bad[0] = 1;
	cr_assert_eq(flboot_ed25519_verify(bad, msg, sizeof msg, pk), -1, "small-order R accepted");
}

Test(ed25519, two_part_message_is_the_concatenation)
{
	uint8_t pk[32], sk[64], sig[64];
	static const uint8_t msg[] = "header bytes|manifest bytes";

	crypto_sign_keypair(pk, sk);
	crypto_sign_detached(sig, NULL, msg, sizeof msg - 1, sk);
	cr_assert_eq(flboot_ed25519_verify2(sig, msg, 13, msg + 13, sizeof msg - 1 - 13, pk), 0);
	cr_assert_eq(flboot_ed25519_verify2(sig, msg, 12, msg + 13, sizeof msg - 1 - 13, pk), -1);
}
