/* The bootloader's trust decision (flboot/trust.h) on headers signed with
 * libsodium, as the host's pack --sign does. */
#include <string.h>

#include <criterion/criterion.h>
#include <sodium.h>

#include "flboot/crc32.h"
#include "flboot/proto.h"
#include "flboot/trust.h"

static void sign_header(const flboot_image_header *h, const uint8_t sk[64], const uint8_t pk[32],
                        flboot_signature *out)
{
	uint8_t msg[FLBOOT_SIG_DOMAIN_LEN + sizeof *h];

	memcpy(msg, FLBOOT_SIG_DOMAIN, FLBOOT_SIG_DOMAIN_LEN);
	memcpy(msg + FLBOOT_SIG_DOMAIN_LEN, h, sizeof *h);
	crypto_sign_detached(out->sig, NULL, msg, sizeof msg, sk);
	flboot_key_id(pk, out->key_id);
}

typedef struct {
	uint8_t pk[2][32], sk[2][64];
	flboot_image_header h;
	flboot_sigblock sb;
	flboot_trust t;
	char why[200];
} fixture;

static void setup(fixture *f, uint32_t held)
{
	flboot_keystore ks;

	cr_assert(sodium_init() >= 0);
	for (int i = 0; i < 2; i++)
		crypto_sign_keypair(f->pk[i], f->sk[i]);
	memset(&f->h, 0, sizeof f->h);
	f->h.magic = FLBOOT_IMAGE_MAGIC;
	f->h.version = 0x01020003u;
	f->h.payload_size = 4096;
	memset(&f->sb, 0xFF, sizeof f->sb);
	f->sb.magic = FLBOOT_SIGBLOCK_MAGIC;
	f->sb.count = 1;
	f->sb.algorithm = FLBOOT_SIG_ED25519;
	f->sb.rsv = 0;
	sign_header(&f->h, f->sk[0], f->pk[0], &f->sb.sig[0]);
	flboot_keystore_build(&ks, (const uint8_t(*)[32])f->pk, held, NULL);
	flboot_trust_parse(&f->t, &ks);
}

Test(trust, a_unit_without_a_key_store_runs_unsigned_images)
{
	uint8_t erased[sizeof(flboot_keystore)];
	flboot_trust t;
	flboot_image_header h = {0};
	uint8_t nosig[sizeof(flboot_sigblock)];
	char why[100];

	memset(erased, 0xFF, sizeof erased);
	memset(nosig, 0xFF, sizeof nosig);
	flboot_trust_parse(&t, erased);
	cr_assert(!t.corrupt && t.key_count == 0);
	cr_assert_eq(flboot_trust_check(&t, &h, nosig, why, sizeof why), FLBOOT_OK);
}

Test(trust, a_signed_image_runs_on_a_unit_holding_the_key)
{
	fixture f;

	setup(&f, 1);
	cr_assert_eq(f.t.key_count, 1);
	cr_assert_eq(flboot_trust_check(&f.t, &f.h, &f.sb, f.why, sizeof f.why), FLBOOT_OK, "%s", f.why);
}

Test(trust, unsigned_refused_naming_the_held_key)
{
	fixture f;
	uint8_t nosig[sizeof(flboot_sigblock)];

	setup(&f, 1);
	memset(nosig, 0xFF, sizeof nosig);
	cr_assert_eq(flboot_trust_check(&f.t, &f.h, nosig, f.why, sizeof f.why), FLBOOT_E_SIGNATURE);
	cr_assert(strstr(f.why, "not signed") && strstr(f.why, "holds key id"), "%s", f.why);
}

Test(trust, a_changed_header_or_payload_hash_is_refused)
{
	fixture f;

	setup(&f, 1);
	f.h.payload_sha256[7] ^= 1;
	cr_assert_eq(flboot_trust_check(&f.t, &f.h, &f.sb, f.why, sizeof f.why), FLBOOT_E_SIGNATURE);
	cr_assert(strstr(f.why, "does not match"), "%s", f.why);
	f.h.payload_sha256[7] ^= 1;
	f.h.security_counter = 1;
	cr_assert_eq(flboot_trust_check(&f.t, &f.h, &f.sb, f.why, sizeof f.why), FLBOOT_E_SIGNATURE);
}

Test(trust, another_vendors_key_is_refused_and_named)
{
	fixture f;

	setup(&f, 1);
	sign_header(&f.h, f.sk[1], f.pk[1], &f.sb.sig[0]);
	cr_assert_eq(flboot_trust_check(&f.t, &f.h, &f.sb, f.why, sizeof f.why), FLBOOT_E_SIGNATURE);
	cr_assert(strstr(f.why, "signed by key id"), "%s", f.why);
}

Test(trust, rotation_either_held_key_and_either_signature_slot)
{
	fixture f;

	setup(&f, 2);
	/* signed by the new key only */
	sign_header(&f.h, f.sk[1], f.pk[1], &f.sb.sig[0]);
	cr_assert_eq(flboot_trust_check(&f.t, &f.h, &f.sb, f.why, sizeof f.why), FLBOOT_OK, "%s", f.why);
	/* signed by an unknown key first, the held one second */
	{
		uint8_t pk[32], sk[64];

		crypto_sign_keypair(pk, sk);
		sign_header(&f.h, sk, pk, &f.sb.sig[0]);
		sign_header(&f.h, f.sk[0], f.pk[0], &f.sb.sig[1]);
		f.sb.count = 2;
		cr_assert_eq(flboot_trust_check(&f.t, &f.h, &f.sb, f.why, sizeof f.why), FLBOOT_OK, "%s", f.why);
	}
}

Test(trust, a_damaged_key_store_never_reads_as_no_keys)
{
	fixture f;
	flboot_keystore ks;

	setup(&f, 1);
	flboot_keystore_build(&ks, (const uint8_t(*)[32])f.pk, 1, NULL);
	ks.keys[0][3] ^= 0x40; /* a bit flipped after provisioning */
	flboot_trust_parse(&f.t, &ks);
	cr_assert(f.t.corrupt);
	cr_assert_eq(flboot_trust_check(&f.t, &f.h, &f.sb, f.why, sizeof f.why), FLBOOT_E_SIGNATURE);
	cr_assert(strstr(f.why, "key store"), "%s", f.why);
}

Test(trust, malformed_signature_blocks_are_refused)
{
	fixture f;

	setup(&f, 1);
	f.sb.count = 3;
	cr_assert_eq(flboot_trust_check(&f.t, &f.h, &f.sb, f.why, sizeof f.why), FLBOOT_E_SIGNATURE);
	f.sb.count = 0;
	cr_assert_eq(flboot_trust_check(&f.t, &f.h, &f.sb, f.why, sizeof f.why), FLBOOT_E_SIGNATURE);
	f.sb.count = 1;
	f.sb.algorithm = 2;
	cr_assert_eq(flboot_trust_check(&f.t, &f.h, &f.sb, f.why, sizeof f.why), FLBOOT_E_SIGNATURE);
	cr_assert(strstr(f.why, "malformed"), "%s", f.why);
}
