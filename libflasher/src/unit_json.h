/* The names and the JSON form of what a unit says about itself, shared by
 * the CLI (`flasher info --json`) and the daemon (devices.list,
 * device.info), so both speak one format (docs/cli.md). */
#ifndef FLASHER_UNIT_JSON_H
#define FLASHER_UNIT_JSON_H

#include <cjson/cJSON.h>

#include "flasher/session.h"

/* The names are public now (flasher/session.h); the old spellings stay
 * for the code that reads them. */
#define flasher__mode_name(m) flasher_mode_name(m)
#define flasher__boot_state_name(st) flasher_boot_state_name((flasher_boot_state)(st))
#define flasher__slot_state_name(st) flasher_slot_state_name((flasher_slot_state)(st))
#define flasher__core_name(c) flasher_core_name(c)
/* The running firmware version: cm7's, or cm4's if only the cm4 has one. */
uint32_t flasher__running_version(const flasher_unit_info *u);
/* Adds key: "X.Y.Z", or null for version 0 (nothing installed). */
void flasher__json_add_version(cJSON *obj, const char *key, uint32_t version);
/* A new object with every field of u; the caller adds its own (port, ...). */
cJSON *flasher__unit_info_json(const flasher_unit_info *u);

#endif
