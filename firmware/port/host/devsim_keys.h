/* devsim_keys.h - the simulated unit's key store (flboot/trust.h): what
 * provisioning writes into the write-protected bootloader sector on the
 * chip, written here into the flash file before the unit starts. */
#ifndef DEVSIM_KEYS_H
#define DEVSIM_KEYS_H
#include <stddef.h>

#include "flashsim.h"

/** Make the flash's key store hold these public keys (files in
 *  flasher keygen's format or 32 raw bytes; up to FLBOOT_MAX_KEYS) and the
 *  encryption key (NULL = none). n = 0 and no enc key: leave the flash as
 *  it is. Rewrites sector 0 only when the store differs. Call before the
 *  sector is write-protected. 0, or -1 with a message in err. */
int devsim_keys_install(flashsim *fs, const char *const *pubkey_files, size_t n, const char *enc_key_file, char *err,
                        size_t errcap);
#endif
