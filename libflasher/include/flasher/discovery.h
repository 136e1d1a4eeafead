/**
 * @file flasher/discovery.h
 * @brief Finding units: USB CDC ports by VID/PID and serial number.
 */
#ifndef FLASHER_DISCOVERY_H
#define FLASHER_DISCOVERY_H

#include <stddef.h>
#include <stdint.h>

#include "flasher/common.h"

/** USB ids of flasher units (bootloader and applications using the agent). */
#define FLASHER_USB_VID 0x0483
#define FLASHER_USB_PID 0x5740

typedef struct flasher_port_info {
	char path[256];      /**< "/dev/ttyACM0" */
	uint16_t vid, pid;
	char serial[64];     /**< USB serial number = the unit's uid (24 hex digits) */
	char description[128];
	int bus, address;
} flasher_port_info;

/** List USB serial ports that look like flasher units (all USB serial ports
 *  when all != 0). *out is allocated; free it with flasher_port_list_free.
 *  @since 0.1 */
FLASHER_API int flasher_port_list(flasher_port_info **out, size_t *count, int all);
FLASHER_API void flasher_port_list_free(flasher_port_info *list);

/** Find the port of the unit with this serial number / uid (full match,
 *  never a prefix). FLASHER_ENOTFOUND if absent. @since 0.1 */
FLASHER_API int flasher_port_find(const char *serial, char *path_out, size_t path_size);

#endif
