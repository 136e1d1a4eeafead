/* signature_report.c - one report and one rule for package signatures
 * (signature_report.h). */
#include <stdio.h>
#include <string.h>

#include "flboot/layout.h"
#include "flasher/errors.h"
#include "signature_report.h"

const char *flasher__slot_letter(uint32_t slot)
{
	if (slot == 0)
		return "any";
	return slot == FLBOOT_CM7_SLOT_A_ADDR || slot == FLBOOT_CM4_SLOT_A_ADDR ? "A" : "B";
}

static void merge(flasher_signer *into, const flasher_signer *from, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (from[i].valid >= 0)
			into[i].valid = from[i].valid;
}

int flasher__signatures_check(const flasher_package *pkg, const uint8_t (*keys)[FLASHER_PUBKEY_SIZE], size_t nkeys,
                              flasher_signatures *out)
{
	flasher_signatures one;
	int err = flasher_package_signatures(pkg, NULL, out);

	for (size_t k = 0; !err && k < nkeys; k++) {
		if ((err = flasher_package_signatures(pkg, keys[k], &one)) != 0)
			break;
		merge(out->package, one.package, out->package_count);
		for (size_t i = 0; i < out->image_count; i++)
			merge(out->image[i].signer, one.image[i].signer, out->image[i].count);
	}
	return err;
}

static void hex(const uint8_t *in, size_t n, char *out)
{
	for (size_t i = 0; i < n; i++)
		sprintf(out + 2 * i, "%02x", in[i]);
	out[2 * n] = '\0';
}

static cJSON *signers_json(const flasher_signer *s, size_t n)
{
	cJSON *a = cJSON_CreateArray();
	for (size_t i = 0; a && i < n; i++) {
		char id[2 * FLASHER_KEY_ID_SIZE + 1];
		cJSON *o = cJSON_CreateObject();
		hex(s[i].key_id, FLASHER_KEY_ID_SIZE, id);
		cJSON_AddStringToObject(o, "key_id", id);
		if (s[i].valid < 0)
			cJSON_AddNullToObject(o, "valid");
		else
			cJSON_AddBoolToObject(o, "valid", s[i].valid == 1);
		cJSON_AddItemToArray(a, o);
	}
	return a;
}

cJSON *flasher__signatures_json(const flasher_signatures *sg, const uint8_t (*keys)[FLASHER_PUBKEY_SIZE],
                                size_t nkeys)
{
	cJSON *o = cJSON_CreateObject(), *ids = cJSON_AddArrayToObject(o, "key_ids");
	for (size_t k = 0; k < nkeys; k++) {
		uint8_t id[FLASHER_KEY_ID_SIZE];
		char idh[2 * FLASHER_KEY_ID_SIZE + 1];
		flasher_key_id(keys[k], id);
		hex(id, sizeof id, idh);
		cJSON_AddItemToArray(ids, cJSON_CreateString(idh));
	}
	cJSON_AddItemToObject(o, "package", signers_json(sg->package, sg->package_count));
	cJSON *imgs = cJSON_AddArrayToObject(o, "images");
	for (size_t i = 0; i < sg->image_count; i++) {
		cJSON *e = cJSON_CreateObject();
		cJSON_AddStringToObject(e, "core", sg->image[i].core == FLASHER_CORE_CM7 ? "cm7" : "cm4");
		cJSON_AddStringToObject(e, "slot", flasher__slot_letter(sg->image[i].slot));
		cJSON_AddItemToObject(e, "signers", signers_json(sg->image[i].signer, sg->image[i].count));
		cJSON_AddItemToArray(imgs, e);
	}
	return o;
}

/* The best verdict among a part's signatures: 1 a checked one holds, 0 a
 * checked one fails (and none holds), -1 none was checked. */
static int best_verdict(const flasher_signer *s, size_t n)
{
	int best = -1;
	for (size_t i = 0; i < n; i++)
		if (s[i].valid > best)
			best = s[i].valid;
	return best;
}

static int judge(const char *part, const flasher_signer *s, size_t n, const char *keys_name, char *why,
                 size_t why_size)
{
	int best = best_verdict(s, n);
	if (best == 0) {
		snprintf(why, why_size, "%s carries a signature by %s that does not verify (changed after signing)", part,
		         keys_name);
		return FLASHER_ECORRUPT;
	}
	if (best < 0) {
		snprintf(why, why_size, "%s is %s, not signed by %s", part, n ? "signed by other keys" : "unsigned",
		         keys_name);
		return FLASHER_EPERM;
	}
	return 0;
}

int flasher__signatures_require(const flasher_signatures *sg, const char *keys_name, char *why, size_t why_size)
{
	int err = judge("the package", sg->package, sg->package_count, keys_name, why, why_size);
	for (size_t i = 0; !err && i < sg->image_count; i++) {
		char part[48];
		snprintf(part, sizeof part, "the %s image (slot %s)", sg->image[i].core == FLASHER_CORE_CM7 ? "cm7" : "cm4",
		         flasher__slot_letter(sg->image[i].slot));
		err = judge(part, sg->image[i].signer, sg->image[i].count, keys_name, why, why_size);
	}
	return err;
}
