/* trust.c - key store and image signature checks (flboot/trust.h). */
#include <string.h>

#include "flboot/crc32.h"
#include "flboot/ed25519.h"
#include "flboot/proto.h"
#include "flboot/sha256.h"
#include "flboot/trust.h"

void flboot_key_id(const uint8_t pub[32], uint8_t id[FLBOOT_KEY_ID_SIZE])
{
	uint8_t d[32];

	flboot_sha256(pub, 32, d);
	memcpy(id, d, FLBOOT_KEY_ID_SIZE);
}

void flboot_keystore_build(flboot_keystore *ks, const uint8_t (*keys)[32], uint32_t key_count,
                           const uint8_t *enc_key)
{
	memset(ks, 0xFF, sizeof *ks);
	ks->magic = FLBOOT_KEYSTORE_MAGIC;
	ks->version = FLBOOT_KEYSTORE_VERSION;
	if (key_count > FLBOOT_MAX_KEYS)
		key_count = FLBOOT_MAX_KEYS;
	ks->key_count = (uint16_t)key_count;
	for (uint32_t i = 0; i < key_count; i++)
		memcpy(ks->keys[i], keys[i], 32);
	ks->flags = enc_key ? FLBOOT_KS_ENC_KEY : 0;
	if (enc_key)
		memcpy(ks->enc_key, enc_key, 32);
	ks->crc32 = flboot_crc32(0, ks, offsetof(flboot_keystore, crc32));
}

void flboot_trust_parse(flboot_trust *t, const void *raw)
{
	flboot_keystore ks;
	const uint8_t *b = raw;
	uint32_t i;

	memset(t, 0, sizeof *t);
	memcpy(&ks, raw, sizeof ks);
	for (i = 0; i < sizeof ks && b[i] == 0xFF; i++)
		;
	if (i == sizeof ks)
		return; /* erased: no key store, a unit that runs unsigned images */
	if (ks.magic != FLBOOT_KEYSTORE_MAGIC || ks.version != FLBOOT_KEYSTORE_VERSION ||
	    ks.key_count > FLBOOT_MAX_KEYS || ks.crc32 != flboot_crc32(0, &ks, offsetof(flboot_keystore, crc32))) {
		/* Something was written there and does not read back whole: never
		 * fall back to "no keys", which would let any image run. */
		t->corrupt = true;
		return;
	}
	t->key_count = (uint8_t)ks.key_count;
	for (i = 0; i < t->key_count; i++) {
		memcpy(t->keys[i], ks.keys[i], 32);
		flboot_key_id(t->keys[i], t->key_ids[i]);
	}
	if (ks.flags & FLBOOT_KS_ENC_KEY) {
		t->has_enc_key = true;
		memcpy(t->enc_key, ks.enc_key, 32);
	}
}

/* A tiny bounded string builder for reasons. */
typedef struct {
	char *p;
	uint32_t cap, len;
} reason;

static void put(reason *r, const char *s)
{
	while (*s && r->len + 1 < r->cap)
		r->p[r->len++] = *s++;
	if (r->cap)
		r->p[r->len] = 0;
}

static void put_id(reason *r, const uint8_t id[FLBOOT_KEY_ID_SIZE])
{
	static const char x[] = "0123456789abcdef";
	char s[2 * FLBOOT_KEY_ID_SIZE + 1];

	for (uint32_t i = 0; i < FLBOOT_KEY_ID_SIZE; i++) {
		s[2 * i] = x[id[i] >> 4];
		s[2 * i + 1] = x[id[i] & 15];
	}
	s[2 * FLBOOT_KEY_ID_SIZE] = 0;
	put(r, s);
}

static void put_held(reason *r, const flboot_trust *t)
{
	put(r, "; this unit holds key id ");
	for (uint32_t i = 0; i < t->key_count; i++) {
		if (i)
			put(r, " and ");
		put_id(r, t->key_ids[i]);
	}
}

int flboot_trust_check(const flboot_trust *t, const flboot_image_header *h, const void *sigblock, char *why,
                       uint32_t cap)
{
	flboot_sigblock sb;
	reason r = {why, cap, 0};
	int mismatch = -1;

	put(&r, "");
	if (t->corrupt) {
		put(&r, "the unit's key store does not read back whole; it runs no image until it is provisioned again");
		return FLBOOT_E_SIGNATURE;
	}
	if (t->key_count == 0)
		return FLBOOT_OK;
	memcpy(&sb, sigblock, sizeof sb);
	if (sb.magic != FLBOOT_SIGBLOCK_MAGIC) {
		put(&r, "the image is not signed");
		put_held(&r, t);
		return FLBOOT_E_SIGNATURE;
	}
	if (sb.algorithm != FLBOOT_SIG_ED25519 || sb.count == 0 || sb.count > FLBOOT_MAX_KEYS) {
		put(&r, "the image's signature block is malformed");
		return FLBOOT_E_SIGNATURE;
	}
	for (uint32_t i = 0; i < sb.count; i++) {
		for (uint32_t k = 0; k < t->key_count; k++) {
			if (memcmp(sb.sig[i].key_id, t->key_ids[k], FLBOOT_KEY_ID_SIZE) != 0)
				continue;
			if (flboot_ed25519_verify2(sb.sig[i].sig, FLBOOT_SIG_DOMAIN, FLBOOT_SIG_DOMAIN_LEN, h, sizeof *h,
			                           t->keys[k]) == 0)
				return FLBOOT_OK;
			mismatch = (int)i;
		}
	}
	if (mismatch >= 0) {
		put(&r, "the signature by key id ");
		put_id(&r, sb.sig[mismatch].key_id);
		put(&r, " does not match the image (changed after signing)");
		return FLBOOT_E_SIGNATURE;
	}
	put(&r, "the image is signed by key id ");
	for (uint32_t i = 0; i < sb.count; i++) {
		if (i)
			put(&r, " and ");
		put_id(&r, sb.sig[i].key_id);
	}
	put_held(&r, t);
	return FLBOOT_E_SIGNATURE;
}
