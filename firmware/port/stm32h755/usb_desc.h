/*
 * usb_desc.h - USB descriptors of the bootloader's CDC-ACM function.
 *
 * Pure data and pure functions, no hardware: the host tests compile
 * usb_desc.c with the host compiler and parse the tables
 * (tests/firmware/test_usb_desc.c).
 */
#ifndef H7_USB_DESC_H
#define H7_USB_DESC_H

#include <stddef.h>
#include <stdint.h>

/* libflasher/include/flasher/discovery.h finds units by these. */
#define USB_VID 0x0483u
#define USB_PID 0x5740u
#define USB_BCD_DEVICE 0x0100u

#define USB_EP0_SIZE 64u
#define USB_CDC_DATA_SIZE 64u  /* bulk endpoints, full speed maximum */
#define USB_CDC_NOTIFY_SIZE 8u

/* Endpoint numbers (without the direction bit). */
#define USB_EP_DATA 1u   /* 0x01 bulk OUT, 0x81 bulk IN */
#define USB_EP_NOTIFY 2u /* 0x82 interrupt IN */

#define USB_STR_LANGID 0u
#define USB_STR_MANUFACTURER 1u
#define USB_STR_PRODUCT 2u
#define USB_STR_SERIAL 3u
#define USB_STR_COUNT 4u

#define USB_UID_SIZE 12u
#define USB_SERIAL_CHARS (2u * USB_UID_SIZE)

#define USB_CONFIG_DESC_SIZE 67u

extern const uint8_t usb_device_desc[18];
extern const uint8_t usb_config_desc[USB_CONFIG_DESC_SIZE];

/** Serial number text: the 96-bit UID as 24 upper-case hex digits, byte 0
 *  first (the same text HELLO reports). out gets a terminating NUL. */
void usb_serial_from_uid(const uint8_t uid[USB_UID_SIZE], char out[USB_SERIAL_CHARS + 1]);

/** Build string descriptor `index` (UTF-16LE) into out. Returns its length,
 *  or 0 if the index is unknown or cap is too small. */
size_t usb_string_desc(uint8_t index, const uint8_t uid[USB_UID_SIZE], uint8_t *out, size_t cap);

#endif
