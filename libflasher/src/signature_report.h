/* What the CLI (`inspect`/`verify --key`) and the daemon (package.inspect,
 * --trusted-key) say about a package's signatures, in one form and by one
 * rule (docs/signing.md). */
#ifndef FLASHER_SIGNATURE_REPORT_H
#define FLASHER_SIGNATURE_REPORT_H
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "flasher/sign.h"

/* The package's signatures checked against each of keys (nkeys may be 0):
 * a signer's `valid` is the verdict of the key with its id, -1 if none. */
int flasher__signatures_check(const flasher_package *pkg, const uint8_t (*keys)[FLASHER_PUBKEY_SIZE], size_t nkeys,
                              flasher_signatures *out);

/* {"key_ids": [ids of keys], "package": [{"key_id", "valid"}...],
 *  "images": [{"core", "slot": "A"|"B"|"any", "signers": [...]}...]};
 * valid: true/false for a checked signature, null otherwise. */
cJSON *flasher__signatures_json(const flasher_signatures *sg, const uint8_t (*keys)[FLASHER_PUBKEY_SIZE],
                                size_t nkeys);

/* The rule a trusting host applies: the package block and every image
 * carry a signature by one of the checked keys, and it verifies. 0, or
 * FLASHER_EPERM (a part unsigned / signed only by other keys) or
 * FLASHER_ECORRUPT (a checked signature does not verify), with why naming
 * the part and `keys_name` (how the caller names its keys). */
int flasher__signatures_require(const flasher_signatures *sg, const char *keys_name, char *why, size_t why_size);

/* "A", "B" or "any" for a build's slot address (0 = any). */
const char *flasher__slot_letter(uint32_t slot);
#endif
