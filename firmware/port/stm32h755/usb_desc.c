/* usb_desc.c - descriptors of the CDC-ACM function (see usb_desc.h). */
#include "usb_desc.h"

#define LO(x) ((uint8_t)((x)&0xFFu))
#define HI(x) ((uint8_t)(((x) >> 8) & 0xFFu))

const uint8_t usb_device_desc[18] = {
	18, 0x01,             /* bLength, DEVICE */
	0x00, 0x02,           /* bcdUSB 2.00 */
	0x02, 0x00, 0x00,     /* class CDC, subclass, protocol: per interface */
	USB_EP0_SIZE,         /* bMaxPacketSize0 */
	LO(USB_VID), HI(USB_VID),
	LO(USB_PID), HI(USB_PID),
	LO(USB_BCD_DEVICE), HI(USB_BCD_DEVICE),
	USB_STR_MANUFACTURER, USB_STR_PRODUCT, USB_STR_SERIAL,
	1,                    /* bNumConfigurations */
};

const uint8_t usb_config_desc[USB_CONFIG_DESC_SIZE] = {
	/* configuration */
	9, 0x02, LO(USB_CONFIG_DESC_SIZE), HI(USB_CONFIG_DESC_SIZE),
	2,    /* bNumInterfaces */
	1,    /* bConfigurationValue */
	0,    /* iConfiguration */
	0x80, /* bus powered */
	50,   /* 100 mA */
	/* interface 0: CDC communication, ACM, AT commands none */
	9, 0x04, 0, 0, 1, 0x02, 0x02, 0x00, 0,
	/* CDC header functional descriptor, CDC 1.10 */
	5, 0x24, 0x00, 0x10, 0x01,
	/* call management: no call management, data on the data interface */
	5, 0x24, 0x01, 0x00, 1,
	/* ACM: SET/GET_LINE_CODING, SET_CONTROL_LINE_STATE */
	4, 0x24, 0x02, 0x02,
	/* union: master 0, slave 1 */
	5, 0x24, 0x06, 0, 1,
	/* notification endpoint, interrupt IN */
	7, 0x05, 0x80 | USB_EP_NOTIFY, 0x03, LO(USB_CDC_NOTIFY_SIZE), HI(USB_CDC_NOTIFY_SIZE), 16,
	/* interface 1: CDC data */
	9, 0x04, 1, 0, 2, 0x0A, 0x00, 0x00, 0,
	/* bulk OUT, bulk IN */
	7, 0x05, USB_EP_DATA, 0x02, LO(USB_CDC_DATA_SIZE), HI(USB_CDC_DATA_SIZE), 0,
	7, 0x05, 0x80 | USB_EP_DATA, 0x02, LO(USB_CDC_DATA_SIZE), HI(USB_CDC_DATA_SIZE), 0,
};

void usb_serial_from_uid(const uint8_t uid[USB_UID_SIZE], char out[USB_SERIAL_CHARS + 1])
{
	static const char hex[] = "0123456789ABCDEF";
	for (unsigned i = 0; i < USB_UID_SIZE; i++) {
		out[2 * i] = hex[uid[i] >> 4];
		out[2 * i + 1] = hex[uid[i] & 0xFu];
	}
	out[USB_SERIAL_CHARS] = 0;
}

static size_t ascii_desc(const char *s, uint8_t *out, size_t cap)
{
	size_t n = 0;
	while (s[n])
		n++;
	size_t len = 2u + 2u * n;
	if (len > 255u || len > cap)
		return 0;
	out[0] = (uint8_t)len;
	out[1] = 0x03; /* STRING */
	for (size_t i = 0; i < n; i++) {
		out[2 + 2 * i] = (uint8_t)s[i];
		out[3 + 2 * i] = 0;
	}
	return len;
}

size_t usb_string_desc(uint8_t index, const uint8_t uid[USB_UID_SIZE], uint8_t *out, size_t cap)
{
	char serial[USB_SERIAL_CHARS + 1];

	switch (index) {
	case USB_STR_LANGID:
		if (cap < 4)
			return 0;
		out[0] = 4;
		out[1] = 0x03;
		out[2] = 0x09; /* English (US) */
		out[3] = 0x04;
		return 4;
	case USB_STR_MANUFACTURER:
		return ascii_desc("flasher", out, cap);
	case USB_STR_PRODUCT:
		return ascii_desc("flasher bootloader STM32H755", out, cap);
	case USB_STR_SERIAL:
		usb_serial_from_uid(uid, serial);
		return ascii_desc(serial, out, cap);
	default:
		return 0;
	}
}
