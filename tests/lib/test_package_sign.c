/* Signature blocks: what the packer writes, the unit's trust check and the
 * host's report read back the same way. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "flasher.h"
#include "flboot/crc32.h"
#include "flboot/proto.h"
#include "flboot/sha256.h"
#include "package_sign.h"

static char dir[64];

static void mk(void)
{
	strcpy(dir, "/tmp/flasher-psig-XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
}

static void rm(void)
{
	char cmd[128];

	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	cr_assert_eq(system(cmd), 0);
}

TestSuite(package_sign, .init = mk, .fini = rm);

static flasher_key *newkey(const char *name, uint8_t pub[32])
{
	char p[128], pp[140];
	flasher_key *k;

	snprintf(p, sizeof p, "%s/%s", dir, name);
	snprintf(pp, sizeof pp, "%s.pub", p);
	cr_assert_eq(flasher_keygen(p), 0, "%s", flasher_error_last());
	cr_assert_eq(flasher_key_load(p, &k), 0, "%s", flasher_error_last());
	cr_assert_eq(flasher_pubkey_load(pp, pub), 0);
	return k;
}

Test(package_sign, an_image_signed_by_the_packer_passes_the_units_check)
{
	uint8_t area[FLBOOT_IMAGE_HEADER_AREA], pa[32], pb[32];
	flasher_key *keys[2];
	flboot_keystore ks;
	flboot_trust t;
	flasher__sig_report rep;
	char why[160];
	flboot_image_header *h = (flboot_image_header *)area;

	keys[0] = newkey("a", pa);
	keys[1] = newkey("b", pb);
	memset(area, 0xFF, sizeof area);
	memset(area, 0, FLBOOT_IMAGE_HEADER_SIZE);
	h->magic = FLBOOT_IMAGE_MAGIC;
	h->version = 7;
	cr_assert_eq(flasher__sign_header_area(keys, 2, area), 0);
	flboot_keystore_build(&ks, (const uint8_t(*)[32])pb, 1, NULL);
	flboot_trust_parse(&t, &ks);
	cr_assert_eq(flboot_trust_check(&t, h, area + FLBOOT_SIGBLOCK_OFFSET, why, sizeof why), FLBOOT_OK, "%s", why);
	cr_assert_eq(flasher__check_image_sig(area, pa, &rep), 0);
	cr_assert_eq(rep.count, 2);
	cr_assert_eq(rep.valid[0], 1);
	cr_assert_eq(rep.valid[1], -1);
	h->version = 8;
	cr_assert_eq(flasher__check_image_sig(area, pa, &rep), 0);
	cr_assert_eq(rep.valid[0], 0, "a changed header still reads as validly signed");
	cr_assert_eq(flboot_trust_check(&t, h, area + FLBOOT_SIGBLOCK_OFFSET, why, sizeof why), FLBOOT_E_SIGNATURE);
	cr_assert_eq(flasher__sign_header_area(keys, 3, area), FLASHER_EINVAL);
	flasher_key_free(keys[0]);
	flasher_key_free(keys[1]);
}

Test(package_sign, package_signatures_name_their_keys_and_catch_any_change)
{
	uint8_t file[5000], blk[FLASHER_PKG_SIGBLOCK_SIZE(2)], pa[32], pb[32], pc[32];
	flasher_key *keys[2], *other;
	flasher__sig_report rep;

	keys[0] = newkey("a", pa);
	keys[1] = newkey("b", pb);
	other = newkey("c", pc);
	for (size_t i = 0; i < sizeof file; i++)
		file[i] = (uint8_t)(i * 31);
	uint8_t digest[32];
	flboot_sha256(file, sizeof file, digest);
	cr_assert_eq(flasher__sign_package(keys, 2, digest, blk), 0);
	cr_assert_eq(flasher__check_package_sig(blk, sizeof blk, digest, pb, &rep), 0);
	cr_assert_eq(rep.count, 2);
	cr_assert(rep.valid[0] == -1 && rep.valid[1] == 1);
	cr_assert_eq(flasher__check_package_sig(blk, sizeof blk, digest, pc, &rep), 0);
	cr_assert(rep.valid[0] == -1 && rep.valid[1] == -1, "another key's signature is reported as checked");
	file[4000] ^= 1;
	flboot_sha256(file, sizeof file, digest);
	cr_assert_eq(flasher__check_package_sig(blk, sizeof blk, digest, pa, &rep), 0);
	cr_assert_eq(rep.valid[0], 0, "a changed byte still verifies");
	cr_assert_eq(flasher__check_package_sig(blk, sizeof blk - 1, digest, pa, &rep), FLASHER_EFORMAT);
	cr_assert(strstr(flasher_error_last(), "cut short"), "%s", flasher_error_last());
	blk[0] = 'X';
	cr_assert_eq(flasher__check_package_sig(blk, sizeof blk, digest, pa, &rep), FLASHER_EFORMAT);
	flasher_key_free(keys[0]);
	flasher_key_free(keys[1]);
	flasher_key_free(other);
}

Test(package_sign, pack_signs_every_image_and_the_reader_hands_out_the_area)
{
	char bin[128], pkgp[128], key[128];
	uint8_t pub[32];
	flasher_key *k = newkey("v", pub);
	flasher_pack_options o = FLASHER_PACK_OPTIONS_INIT;
	const char *keys[1];
	flasher_package *pkg;
	flasher__sig_report rep;
	FILE *f;

	flasher_key_free(k);
	snprintf(bin, sizeof bin, "%s/fw.bin", dir);
	snprintf(pkgp, sizeof pkgp, "%s/fw.pkg", dir);
	snprintf(key, sizeof key, "%s/v", dir);
	f = fopen(bin, "wb");
	for (int i = 0; i < 5000; i++)
		fputc(i * 7 & 0xFF, f);
	fclose(f);
	keys[0] = key;
	o.product = "demo";
	o.fw_version = "1.2.3";
	o.cm7_file = bin;
	o.cm4_file = bin;
	o.sign_keys = keys;
	o.sign_key_count = 1;
	o.security_counter = 4;
	cr_assert_eq(flasher_package_build(&o, pkgp), 0, "%s", flasher_error_last());
	cr_assert_eq(flasher_package_open(&pkg, pkgp), 0, "%s", flasher_error_last());
	cr_assert_eq(flasher_package_image_count(pkg), 2);
	for (size_t i = 0; i < 2; i++) {
		flasher_package_image img;
		flboot_image_header h;

		cr_assert_eq(flasher_package_image(pkg, i, &img), 0);
		cr_assert_eq(img.header_area_size, FLBOOT_SIGBLOCK_OFFSET + sizeof(flboot_sigblock));
		memcpy(&h, img.header_area, sizeof h);
		cr_assert_eq(h.security_counter, 4);
		cr_assert_eq(flasher__check_image_sig(img.header_area, pub, &rep), 0);
		cr_assert(rep.count == 1 && rep.valid[0] == 1, "image %zu is not validly signed", i);
	}
	flasher_package_free(pkg);
	/* a bad key spec fails before anything is written */
	keys[0] = "env:FLASHER_TEST_NO_SUCH_KEY";
	cr_assert_eq(flasher_package_build(&o, pkgp), FLASHER_ENOTFOUND);
	cr_assert(strstr(flasher_error_last(), "signing key 1"), "%s", flasher_error_last());
}

static uint32_t rd32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void wr32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

/* A signed package's bytes, built by pack with keys a and b. */
static uint8_t *signed_package(size_t *len, uint8_t pa[32], uint8_t pb[32])
{
	char bin[128], pkgp[128], ka[128], kb[128];
	flasher_pack_options o = FLASHER_PACK_OPTIONS_INIT;
	const char *keys[2] = {ka, kb};

	flasher_key_free(newkey("a", pa));
	flasher_key_free(newkey("b", pb));
	snprintf(bin, sizeof bin, "%s/fw.bin", dir);
	snprintf(pkgp, sizeof pkgp, "%s/fw.pkg", dir);
	snprintf(ka, sizeof ka, "%s/a", dir);
	snprintf(kb, sizeof kb, "%s/b", dir);
	FILE *f = fopen(bin, "wb");
	for (int i = 0; i < 3000; i++)
		fputc(i * 13 & 0xFF, f);
	fclose(f);
	o.product = "demo";
	o.fw_version = "2.0.0";
	o.cm7_file = bin;
	o.cm4_file = bin;
	o.sign_keys = keys;
	o.sign_key_count = 2;
	cr_assert_eq(flasher_package_build(&o, pkgp), 0, "%s", flasher_error_last());
	f = fopen(pkgp, "rb");
	cr_assert_not_null(f);
	uint8_t *buf = malloc(1 << 16);
	*len = fread(buf, 1, 1 << 16, f);
	fclose(f);
	return buf;
}

Test(package_sign, pack_signs_the_package_and_the_report_names_each_signer)
{
	uint8_t pa[32], pb[32], pz[32] = {1};
	size_t len;
	uint8_t *file = signed_package(&len, pa, pb);
	flasher_package *pkg;
	flasher_signatures sg;

	cr_assert_eq(rd32(file + 12), 1u, "header flags: signed bit not set");
	cr_assert_eq(rd32(file + 40) + rd32(file + 44), len, "the signature block does not end the file");
	cr_assert_eq(rd32(file + 44), FLASHER_PKG_SIGBLOCK_SIZE(2));
	cr_assert_eq(flasher_package_open_memory(&pkg, file, len), 0, "%s", flasher_error_last());
	cr_assert_eq(flasher_package_signatures(pkg, pb, &sg), 0, "%s", flasher_error_last());
	cr_assert_eq(sg.package_count, 2);
	cr_assert(sg.package[0].valid == -1 && sg.package[1].valid == 1, "package: %d %d", sg.package[0].valid,
	          sg.package[1].valid);
	cr_assert_eq(sg.image_count, 2);
	for (size_t i = 0; i < 2; i++)
		cr_assert(sg.image[i].count == 2 && sg.image[i].signer[1].valid == 1, "image %zu", i);
	uint8_t id[8];
	flasher_key_id(pa, id);
	cr_assert_eq(memcmp(sg.package[0].key_id, id, 8), 0, "the first signer is not key a");
	/* no key: nothing is checked, every signer is listed */
	cr_assert_eq(flasher_package_signatures(pkg, NULL, &sg), 0);
	cr_assert(sg.package_count == 2 && sg.package[0].valid == -1 && sg.package[1].valid == -1);
	/* a key that signed nothing */
	cr_assert_eq(flasher_package_signatures(pkg, pz, &sg), 0);
	cr_assert(sg.image[0].signer[0].valid == -1 && sg.image[0].signer[1].valid == -1);
	flasher_package_free(pkg);

	/* a changed signature byte: the file still reads, the signature fails */
	file[len - 3] ^= 0x10;
	cr_assert_eq(flasher_package_open_memory(&pkg, file, len), 0, "%s", flasher_error_last());
	cr_assert_eq(flasher_package_signatures(pkg, pb, &sg), 0);
	cr_assert_eq(sg.package[1].valid, 0, "a changed signature still verifies");
	cr_assert_eq(sg.image[0].signer[1].valid, 1, "the image signatures are not affected");
	flasher_package_free(pkg);
	file[len - 3] ^= 0x10;

	/* the second signature cut off, the header made consistent with that:
	 * the block still counts two, so it is refused as cut short */
	wr32(file + 16, (uint32_t)len - 72);
	wr32(file + 44, rd32(file + 44) - 72);
	wr32(file + 60, flboot_crc32(0, file, 60));
	cr_assert_eq(flasher_package_open_memory(&pkg, file, len - 72), FLASHER_EFORMAT);
	cr_assert(strstr(flasher_error_last(), "cut short"), "%s", flasher_error_last());
	/* a block shorter than one signature */
	wr32(file + 16, (uint32_t)len - 100);
	wr32(file + 44, rd32(file + 44) + 72 - 100);
	wr32(file + 60, flboot_crc32(0, file, 60));
	cr_assert_eq(flasher_package_open_memory(&pkg, file, len - 100), FLASHER_EFORMAT);
	cr_assert(strstr(flasher_error_last(), "signature block"), "%s", flasher_error_last());
	free(file);
}

Test(package_sign, an_unsigned_package_reports_no_signer)
{
	char bin[128], pkgp[128];
	flasher_pack_options o = FLASHER_PACK_OPTIONS_INIT;
	flasher_package *pkg;
	flasher_signatures sg;

	snprintf(bin, sizeof bin, "%s/fw.bin", dir);
	snprintf(pkgp, sizeof pkgp, "%s/fw.pkg", dir);
	FILE *f = fopen(bin, "wb");
	/* binary test data (pack refuses text files as firmware) */
	static const unsigned char data[16] = {0x01, 0x80, 0xfe, 0x00, 0x13, 0x37, 0xc0, 0xde,
	                                       0x9a, 0x00, 0xff, 0x42, 0x7f, 0x11, 0x00, 0xa5};
	fwrite(data, 1, sizeof data, f);
	fclose(f);
	o.product = "demo";
	o.fw_version = "2.0.0";
	o.cm7_file = bin;
	cr_assert_eq(flasher_package_build(&o, pkgp), 0, "%s", flasher_error_last());
	cr_assert_eq(flasher_package_open(&pkg, pkgp), 0, "%s", flasher_error_last());
	cr_assert_eq(flasher_package_signatures(pkg, NULL, &sg), 0);
	cr_assert_eq(sg.package_count, 0);
	cr_assert_eq(sg.image_count, 1);
	cr_assert_eq(sg.image[0].count, 0);
	flasher_package_free(pkg);
}
