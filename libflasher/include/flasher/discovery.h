/**
 * @file flasher/discovery.h
 * @brief Finding units: USB CDC ports by VID/PID and serial number.
 *
 * Thread rules: every function is reentrant; no state is kept between calls.
 * To be told when units come and go, see flasher/watch.h.
 */
#ifndef FLASHER_DISCOVERY_H
#define FLASHER_DISCOVERY_H

#include <stddef.h>
#include <stdint.h>

#include "flasher/common.h"

#ifdef __cplusplus
extern "C" {
#endif

/** The default USB ids of flasher units (ST's CDC VID:PID, used by the
 *  bootloader and by applications with the update agent). A vendor with its
 *  own ids passes them in flasher_discovery_options. @since 0.1 */
#define FLASHER_USB_VID 0x0483
#define FLASHER_USB_PID 0x5740

/** One USB port that may be a unit. @since 0.1 */
typedef struct flasher_port_info {
	char path[256];      /**< "/dev/ttyACM0" */
	uint16_t vid, pid;
	char serial[64];     /**< USB serial number = the unit's uid (24 hex digits) */
	char description[128];
	int bus, address;
} flasher_port_info;

/** A USB vendor and product id. @since 0.4 */
typedef struct flasher_usb_id {
	uint16_t vid, pid;
} flasher_usb_id;

/** Which USB devices are units. The ids are read during the call only
 *  (sessions and watches copy them). @since 0.4 */
typedef struct flasher_discovery_options {
	unsigned version;               /**< FLASHER_DISCOVERY_OPTIONS_VERSION */
	const flasher_usb_id *usb_ids;  /**< NULL or usb_id_count 0: FLASHER_USB_VID:FLASHER_USB_PID */
	size_t usb_id_count;            /**< at most FLASHER_MAX_USB_IDS */
	int all;                        /**< 1: every USB serial port, whatever its ids */
} flasher_discovery_options;
#define FLASHER_DISCOVERY_OPTIONS_VERSION 1
#define FLASHER_DISCOVERY_OPTIONS_INIT {FLASHER_DISCOVERY_OPTIONS_VERSION, NULL, 0, 0}
#define FLASHER_MAX_USB_IDS 8

/** Parse "VVVV:PPPP" (hex, 1..4 digits each, as lsusb prints them).
 *  FLASHER_EINVAL naming the text otherwise. Any thread. @since 0.4 */
FLASHER_API int flasher_usb_id_parse(const char *text, flasher_usb_id *out);

/** List the USB serial ports opts says are units (opts NULL: the default
 *  ids), sorted by path. *out is allocated; the caller frees it with
 *  flasher_port_list_free(). Any thread. @since 0.4 */
FLASHER_API int flasher_port_list_with(const flasher_discovery_options *opts, flasher_port_info **out,
                                       size_t *count);
/** flasher_port_list_with() with the default ids (all USB serial ports when
 *  all != 0). @since 0.1 */
FLASHER_API int flasher_port_list(flasher_port_info **out, size_t *count, int all);
/** Free a list from flasher_port_list*(). Accepts NULL. @since 0.1 */
FLASHER_API void flasher_port_list_free(flasher_port_info *list);

/** Find the port of the unit with this serial number / uid (full match,
 *  never a prefix) among the ports opts says are units (NULL: default ids).
 *  FLASHER_ENOTFOUND if absent, FLASHER_EBUSY if two ports claim it.
 *  @since 0.4 */
FLASHER_API int flasher_port_find_with(const flasher_discovery_options *opts, const char *serial, char *path_out,
                                       size_t path_size);
/** flasher_port_find_with() with the default ids. @since 0.1 */
FLASHER_API int flasher_port_find(const char *serial, char *path_out, size_t path_size);

#ifdef __cplusplus
}
#endif

#endif
