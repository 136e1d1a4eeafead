/* package_sign.c - signature blocks of packages and images (package_sign.h). */
#include <string.h>

#include "error_internal.h"
#include "package_sign.h"

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static int check_signers(size_t n)
{
	if (n == 0 || n > FLASHER_MAX_SIGNERS)
		return flasher__error(FLASHER_EINVAL, "a package carries 1 to %u signatures, not %zu",
		                      FLASHER_MAX_SIGNERS, n);
	return 0;
}

int flasher__sign_header_area(flasher_key *const *keys, size_t n, uint8_t *area)
{
	uint8_t msg[FLBOOT_SIG_DOMAIN_LEN + FLBOOT_IMAGE_HEADER_SIZE];
	flboot_sigblock sb;
	int rc;

	if ((rc = check_signers(n)) != 0)
		return rc;
	memset(&sb, 0xFF, sizeof sb);
	sb.magic = FLBOOT_SIGBLOCK_MAGIC;
	sb.count = (uint8_t)n;
	sb.algorithm = FLBOOT_SIG_ED25519;
	sb.rsv = 0;
	memcpy(msg, FLBOOT_SIG_DOMAIN, FLBOOT_SIG_DOMAIN_LEN);
	memcpy(msg + FLBOOT_SIG_DOMAIN_LEN, area, FLBOOT_IMAGE_HEADER_SIZE);
	for (size_t i = 0; i < n; i++) {
		uint8_t pub[32];

		flasher_key_public(keys[i], pub);
		flasher_key_id(pub, sb.sig[i].key_id);
		if ((rc = flasher_key_sign(keys[i], msg, sizeof msg, sb.sig[i].sig)) != 0)
			return rc;
	}
	memcpy(area + FLBOOT_SIGBLOCK_OFFSET, &sb, sizeof sb);
	return 0;
}

/* The signed message: the domain tag, then the SHA-256 of the signed bytes
 * (so a writer can hash the file as it streams it out). */
static void package_message(const uint8_t digest[32], uint8_t msg[sizeof FLASHER_PKG_SIG_DOMAIN - 1 + 32])
{
	memcpy(msg, FLASHER_PKG_SIG_DOMAIN, sizeof FLASHER_PKG_SIG_DOMAIN - 1);
	memcpy(msg + sizeof FLASHER_PKG_SIG_DOMAIN - 1, digest, 32);
}

int flasher__sign_package(flasher_key *const *keys, size_t n, const uint8_t digest[32], uint8_t *out)
{
	uint8_t msg[sizeof FLASHER_PKG_SIG_DOMAIN - 1 + 32];
	int rc;

	if ((rc = check_signers(n)) != 0)
		return rc;
	package_message(digest, msg);
	memcpy(out, "FLSG", 4);
	put16(out + 4, FLBOOT_SIG_ED25519);
	put16(out + 6, (uint16_t)n);
	for (size_t i = 0; i < n; i++) {
		uint8_t pub[32], *e = out + 8 + i * (FLBOOT_KEY_ID_SIZE + 64);

		flasher_key_public(keys[i], pub);
		flasher_key_id(pub, e);
		if ((rc = flasher_key_sign(keys[i], msg, sizeof msg, e + FLBOOT_KEY_ID_SIZE)) != 0)
			return rc;
	}
	return 0;
}

int flasher__check_package_sig(const uint8_t *blk, size_t len, const uint8_t *digest, const uint8_t *pub,
                               flasher__sig_report *rep)
{
	uint8_t msg[sizeof FLASHER_PKG_SIG_DOMAIN - 1 + 32], id[FLBOOT_KEY_ID_SIZE];
	size_t n;

	memset(rep, 0, sizeof *rep);
	if (len < 8 || memcmp(blk, "FLSG", 4) != 0)
		return flasher__error(FLASHER_EFORMAT, "package signature block: bad magic");
	if (get16(blk + 4) != FLBOOT_SIG_ED25519)
		return flasher__error(FLASHER_EFORMAT, "package signature block: unknown algorithm %u", get16(blk + 4));
	n = get16(blk + 6);
	if (n == 0 || n > FLASHER_MAX_SIGNERS || len != FLASHER_PKG_SIGBLOCK_SIZE(n))
		return flasher__error(FLASHER_EFORMAT, "package signature block: %zu signatures in %zu bytes (cut short?)",
		                      n, len);
	if (pub) {
		flasher_key_id(pub, id);
		package_message(digest, msg);
	}
	rep->count = n;
	for (size_t i = 0; i < n; i++) {
		const uint8_t *e = blk + 8 + i * (FLBOOT_KEY_ID_SIZE + 64);

		memcpy(rep->key_id[i], e, FLBOOT_KEY_ID_SIZE);
		rep->valid[i] = -1;
		if (pub && memcmp(e, id, FLBOOT_KEY_ID_SIZE) == 0)
			rep->valid[i] = flasher_signature_check(pub, msg, sizeof msg, e + FLBOOT_KEY_ID_SIZE) == 0;
	}
	flasher_error_clear();
	return 0;
}

int flasher__check_image_sig(const uint8_t *area, const uint8_t *pub,
                             flasher__sig_report *rep)
{
	uint8_t msg[FLBOOT_SIG_DOMAIN_LEN + FLBOOT_IMAGE_HEADER_SIZE], id[FLBOOT_KEY_ID_SIZE];
	flboot_sigblock sb;

	memset(rep, 0, sizeof *rep);
	memcpy(&sb, area + FLBOOT_SIGBLOCK_OFFSET, sizeof sb);
	if (sb.magic != FLBOOT_SIGBLOCK_MAGIC)
		return 0; /* unsigned */
	if (sb.algorithm != FLBOOT_SIG_ED25519 || sb.count == 0 || sb.count > FLBOOT_MAX_KEYS)
		return flasher__error(FLASHER_EFORMAT, "image signature block malformed (algorithm %u, %u signatures)",
		                      sb.algorithm, sb.count);
	memcpy(msg, FLBOOT_SIG_DOMAIN, FLBOOT_SIG_DOMAIN_LEN);
	memcpy(msg + FLBOOT_SIG_DOMAIN_LEN, area, FLBOOT_IMAGE_HEADER_SIZE);
	if (pub)
		flasher_key_id(pub, id);
	rep->count = sb.count;
	for (size_t i = 0; i < sb.count; i++) {
		memcpy(rep->key_id[i], sb.sig[i].key_id, FLBOOT_KEY_ID_SIZE);
		rep->valid[i] = -1;
		if (pub && memcmp(sb.sig[i].key_id, id, FLBOOT_KEY_ID_SIZE) == 0)
			rep->valid[i] = flasher_signature_check(pub, msg, sizeof msg, sb.sig[i].sig) == 0;
	}
	flasher_error_clear();
	return 0;
}
