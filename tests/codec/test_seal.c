/* Encrypted images: what the host seals (libsodium + zlib), the unit's
 * opener (flboot/seal.h) opens, at its index only, under its key only. */
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "codec_util.h"
#include "encrypt.h"
#include "flboot/proto.h"
#include "flboot/seal.h"

typedef struct {
	uint8_t *sealed;
	size_t len;
	size_t off[600]; /* start of each block's le16 length */
	size_t count;
} sealed_image;

static void index_blocks(sealed_image *s)
{
	size_t p = 0;

	s->count = 0;
	while (p < s->len) {
		cr_assert(s->count < 600);
		s->off[s->count++] = p;
		p += 2 + (size_t)(s->sealed[p] | s->sealed[p + 1] << 8);
	}
	cr_assert_eq(p, s->len, "block lengths do not add up");
}

static void make_trust(flboot_trust *t, const uint8_t key[32])
{
	flboot_keystore ks;

	flboot_keystore_build(&ks, NULL, 0, key);
	flboot_trust_parse(t, &ks);
	cr_assert(t->has_enc_key && !t->corrupt);
}

Test(seal, round_trip_compressible_and_random_payloads_any_length)
{
	static uint8_t payload[200 * 1024 + 77], out[FLBOOT_SEAL_BLOCK], blk[FLBOOT_SEAL_BLOCK + 64];
	uint8_t key[32], nonce[16];
	flboot_image_header h;
	flboot_encblock e = {FLBOOT_ENCBLOCK_MAGIC, FLBOOT_SEAL_BLOCK, {0}};
	flboot_trust t;
	rng r;

	rng_seed(&r, 7);
	for (size_t i = 0; i < sizeof key; i++)
		key[i] = (uint8_t)rng_u32(&r);
	for (size_t i = 0; i < sizeof nonce; i++)
		e.nonce[i] = nonce[i] = (uint8_t)rng_u32(&r);
	/* half code-like (compressible), half random */
	for (size_t i = 0; i < sizeof payload; i++)
		payload[i] = i < sizeof payload / 2 ? (uint8_t)(i % 7 == 0 ? i : 0x20) : (uint8_t)rng_u32(&r);
	memset(&h, 0, sizeof h);
	h.magic = FLBOOT_IMAGE_MAGIC;
	h.flags = FLBOOT_IMG_ENCRYPTED;
	h.payload_size = sizeof payload;
	make_trust(&t, key);
	for (size_t len = sizeof payload; len + 3000 >= sizeof payload; len -= 1000) {
		sealed_image s;
		size_t total = 0, compressed = 0;

		cr_assert_eq(flasher__seal_payload(key, &h, nonce, payload, len, &s.sealed, &s.len), 0);
		index_blocks(&s);
		cr_assert_eq(s.count, (len + FLBOOT_SEAL_BLOCK - 1) / FLBOOT_SEAL_BLOCK);
		for (size_t i = 0; i < s.count; i++) {
			uint32_t n = (uint32_t)(s.sealed[s.off[i]] | s.sealed[s.off[i] + 1] << 8), got;
			const char *why = "";

			memcpy(blk, s.sealed + s.off[i] + 2, n);
			if (n < FLBOOT_SEAL_BLOCK / 2)
				compressed++;
			cr_assert_eq(flboot_seal_open(&t, &h, &e, (uint32_t)i, blk, n, out, sizeof out, &got, &why), 0,
			             "block %zu: %s", i, why);
			cr_assert(memcmp(out, payload + total, got) == 0, "block %zu opens to other bytes", i);
			total += got;
		}
		cr_assert_eq(total, len);
		cr_assert(compressed > 0, "nothing was compressed before sealing");
		free(s.sealed);
	}
}

Test(seal, refuses_other_index_other_header_other_key_no_key_and_damage)
{
	static uint8_t payload[4096], out[FLBOOT_SEAL_BLOCK], blk[FLBOOT_SEAL_BLOCK + 64];
	uint8_t key[32] = {1, 2, 3}, other[32] = {9}, nonce[16] = {4};
	flboot_image_header h = {.magic = FLBOOT_IMAGE_MAGIC, .flags = FLBOOT_IMG_ENCRYPTED, .payload_size = 4096};
	flboot_encblock e = {FLBOOT_ENCBLOCK_MAGIC, FLBOOT_SEAL_BLOCK, {4}};
	flboot_trust t, wrong, none;
	sealed_image s;
	uint32_t n, got;
	const char *why;
	uint8_t erased[sizeof(flboot_keystore)];

	memset(payload, 0x5A, sizeof payload);
	make_trust(&t, key);
	make_trust(&wrong, other);
	memset(erased, 0xFF, sizeof erased);
	flboot_trust_parse(&none, erased);
	cr_assert_eq(flasher__seal_payload(key, &h, nonce, payload, sizeof payload, &s.sealed, &s.len), 0);
	index_blocks(&s);
	n = (uint32_t)(s.sealed[s.off[1]] | s.sealed[s.off[1] + 1] << 8);

#define TRY(trust, hdr, idx) (memcpy(blk, s.sealed + s.off[1] + 2, n), why = "", \
	flboot_seal_open(trust, hdr, &e, idx, blk, n, out, sizeof out, &got, &why))
	cr_assert_eq(TRY(&t, &h, 1), 0, "%s", why);
	cr_assert_eq(TRY(&t, &h, 2), FLBOOT_E_DECRYPT, "block 1 opened as block 2");
	cr_assert_eq(TRY(&wrong, &h, 1), FLBOOT_E_DECRYPT);
	cr_assert(strstr(why, "does not open"), "%s", why);
	cr_assert_eq(TRY(&none, &h, 1), FLBOOT_E_DECRYPT);
	cr_assert(strstr(why, "no decryption key"), "%s", why);
	h.version = 1; /* another header: the block belongs to another image */
	cr_assert_eq(TRY(&t, &h, 1), FLBOOT_E_DECRYPT);
	h.version = 0;
	memcpy(blk, s.sealed + s.off[1] + 2, n);
	blk[n / 2] ^= 1;
	cr_assert_eq(flboot_seal_open(&t, &h, &e, 1, blk, n, out, sizeof out, &got, &why), FLBOOT_E_DECRYPT);
	free(s.sealed);
}
