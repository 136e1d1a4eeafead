/* Names and JSON form of flasher_unit_info (see unit_json.h). */
#include <stdio.h>

#include "flasher/version.h"
#include "unit_json.h"

const char *flasher_mode_name(flasher_mode mode)
{
	return mode == FLASHER_MODE_APPLICATION ? "application" : mode == FLASHER_MODE_BOOTLOADER ? "bootloader" : "unknown";
}

const char *flasher_boot_state_name(flasher_boot_state state)
{
	static const char *const names[] = {"empty", "confirmed", "pending", "trial", "rolled_back"};
	return (int)state >= 0 && (int)state < (int)(sizeof names / sizeof names[0]) ? names[state] : "unknown";
}

const char *flasher_slot_state_name(flasher_slot_state state)
{
	static const char *const names[] = {"empty", "active", "receiving", "staged", "previous", "invalid"};
	return (int)state >= 0 && (int)state < (int)(sizeof names / sizeof names[0]) ? names[state] : "unknown";
}

const char *flasher_core_name(flasher_core core)
{
	return core == FLASHER_CORE_CM4 ? "cm4" : core == FLASHER_CORE_CM7 ? "cm7" : "unknown";
}

uint32_t flasher__running_version(const flasher_unit_info *u)
{
	return u->cm7_version ? u->cm7_version : u->cm4_version;
}

void flasher__json_add_version(cJSON *obj, const char *key, uint32_t version)
{
	char buf[16];
	if (!version) {
		cJSON_AddNullToObject(obj, key);
		return;
	}
	flasher_semver_format(version, buf, sizeof buf);
	cJSON_AddStringToObject(obj, key, buf);
}

cJSON *flasher__unit_info_json(const flasher_unit_info *u)
{
	cJSON *o = cJSON_CreateObject();
	char hex[16];
	if (!o)
		return NULL;
	cJSON_AddStringToObject(o, "uid", u->uid);
	cJSON_AddStringToObject(o, "serial", u->serial);
	cJSON_AddStringToObject(o, "product", u->product);
	cJSON_AddStringToObject(o, "hw_rev", u->hw_rev);
	flasher__json_add_version(o, "bootloader_version", u->bootloader_version);
	cJSON_AddNumberToObject(o, "protocol_version", u->protocol_version);
	cJSON_AddStringToObject(o, "mode", flasher__mode_name(u->mode));
	cJSON_AddStringToObject(o, "state", flasher__boot_state_name(u->state));
	flasher__json_add_version(o, "version", flasher__running_version(u));
	cJSON *fw = cJSON_AddObjectToObject(o, "firmware");
	flasher__json_add_version(fw, "cm7", u->cm7_version);
	flasher__json_add_version(fw, "cm4", u->cm4_version);
	cJSON_AddNumberToObject(o, "trial_boots", u->trial_boots);
	cJSON_AddNumberToObject(o, "last_boot_error", u->last_boot_error);
	cJSON_AddNumberToObject(o, "max_payload", u->max_payload);
	cJSON_AddNumberToObject(o, "window", u->window);
	cJSON_AddNumberToObject(o, "op_timeout_ms", u->op_timeout_ms);
	cJSON *slots = cJSON_AddArrayToObject(o, "slots");
	for (size_t i = 0; i < u->slot_count && i < sizeof u->slots / sizeof u->slots[0]; i++) {
		const flasher_slot *s = &u->slots[i];
		cJSON *j = cJSON_CreateObject();
		cJSON_AddStringToObject(j, "core", flasher__core_name(s->core));
		cJSON_AddStringToObject(j, "role", s->primary ? "primary" : "secondary");
		cJSON_AddStringToObject(j, "state", flasher__slot_state_name(s->state));
		snprintf(hex, sizeof hex, "0x%08x", (unsigned)s->address);
		cJSON_AddStringToObject(j, "address", hex);
		cJSON_AddNumberToObject(j, "size", s->size);
		flasher__json_add_version(j, "version", s->version);
		snprintf(hex, sizeof hex, "%08x", (unsigned)s->payload_crc32);
		cJSON_AddStringToObject(j, "payload_crc32", hex);
		cJSON_AddItemToArray(slots, j);
	}
	return o;
}
