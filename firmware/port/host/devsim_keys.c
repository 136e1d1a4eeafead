/* devsim_keys.c - install the key store into a simulated unit's flash. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "devsim_keys.h"
#include "flasher/errors.h"
#include "flasher/sign.h"
#include "flboot/layout.h"
#include "flboot/trust.h"

/* The key store occupies whole flash words at the end of sector 0. */
#define KS_WORDS ((sizeof(flboot_keystore) + FLBOOT_FLASH_WORD - 1) / FLBOOT_FLASH_WORD)

int devsim_keys_install(flashsim *fs, const char *const *pubkey_files, size_t n, const char *enc_key_file, char *err,
                        size_t errcap)
{
	uint8_t keys[FLBOOT_MAX_KEYS][32], enc[32], want[KS_WORDS * FLBOOT_FLASH_WORD], have[sizeof want];
	flboot_keystore ks;
	uint8_t *sector;
	int rc = 0;

	if (n == 0 && !enc_key_file)
		return 0;
	if (n > FLBOOT_MAX_KEYS) {
		snprintf(err, errcap, "--pubkey: a unit holds at most %u keys", FLBOOT_MAX_KEYS);
		return -1;
	}
	for (size_t i = 0; i < n; i++)
		if (flasher_pubkey_load(pubkey_files[i], keys[i]) != 0) {
			snprintf(err, errcap, "--pubkey %s: %s", pubkey_files[i], flasher_error_last());
			return -1;
		}
	if (enc_key_file && flasher_enckey_load(enc_key_file, enc) != 0) {
		snprintf(err, errcap, "--enc-key %s: %s", enc_key_file, flasher_error_last());
		return -1;
	}
	flboot_keystore_build(&ks, (const uint8_t(*)[32])keys, (uint32_t)n, enc_key_file ? enc : NULL);
	memset(want, 0xFF, sizeof want);
	memcpy(want, &ks, sizeof ks);
	if (flashsim_read(fs, FLBOOT_KEYSTORE_ADDR, have, sizeof have) == 0 && memcmp(have, want, sizeof want) == 0)
		return 0; /* already provisioned with these keys */

	/* Rewrite sector 0 as a provisioning tool would: keep every other word
	 * (the bootloader image), replace the key store. */
	sector = malloc(FLBOOT_SECTOR_SIZE);
	if (!sector) {
		snprintf(err, errcap, "out of memory");
		return -1;
	}
	if (flashsim_read(fs, FLBOOT_SECTOR_ADDR(0), sector, FLBOOT_SECTOR_SIZE) != 0)
		memset(sector, 0xFF, FLBOOT_SECTOR_SIZE); /* torn words: the sector is rewritten whole */
	memcpy(sector + (FLBOOT_KEYSTORE_ADDR - FLBOOT_SECTOR_ADDR(0)), want, sizeof want);
	if (flashsim_erase(fs, 0) != 0)
		rc = -1;
	for (uint32_t off = 0; rc == 0 && off < FLBOOT_SECTOR_SIZE; off += FLBOOT_FLASH_WORD) {
		static const uint8_t blank[FLBOOT_FLASH_WORD] = {
			0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
			0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF};

		if (memcmp(sector + off, blank, sizeof blank) != 0 &&
		    flashsim_program(fs, FLBOOT_SECTOR_ADDR(0) + off, sector + off) != 0)
			rc = -1;
	}
	free(sector);
	if (rc)
		snprintf(err, errcap, "cannot write the key store into the bootloader sector");
	return rc;
}
