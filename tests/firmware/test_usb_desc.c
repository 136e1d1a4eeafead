/* The CDC-ACM descriptors of the chip port, parsed as a host would. */
#include <criterion/criterion.h>
#include <string.h>

#include "usb_desc.h"

Test(usb_desc, device_descriptor_carries_flasher_ids)
{
	const uint8_t *d = usb_device_desc;
	cr_assert_eq(d[0], 18);
	cr_assert_eq(d[1], 0x01);
	cr_assert_eq(d[2] | d[3] << 8, 0x0200, "USB 2.0");
	cr_assert_eq(d[4], 0x02, "CDC device class");
	cr_assert_eq(d[7], 64, "EP0 max packet");
	cr_assert_eq(d[8] | d[9] << 8, 0x0483, "VID of flasher/discovery.h");
	cr_assert_eq(d[10] | d[11] << 8, 0x5740, "PID of flasher/discovery.h");
	cr_assert_eq(d[16], USB_STR_SERIAL);
	cr_assert(d[14] && d[15], "manufacturer and product strings");
	cr_assert_eq(d[17], 1);
}

typedef struct parsed {
	int interfaces, endpoints, cdc_functional;
	int comm_class, data_class;
	uint8_t ep_addr[4], ep_type[4];
	uint16_t ep_size[4];
	int union_master, union_slave;
} parsed;

/* Walk the configuration like a host: every descriptor's length must add up. */
static parsed walk_config(void)
{
	parsed p;
	memset(&p, 0, sizeof p);
	p.union_master = p.union_slave = -1;
	const uint8_t *c = usb_config_desc;
	size_t total = (size_t)(c[2] | c[3] << 8);
	cr_assert_eq(total, sizeof(usb_config_desc), "wTotalLength %zu vs table %zu", total, sizeof(usb_config_desc));
	size_t off = 0;
	while (off < total) {
		uint8_t len = c[off], type = c[off + 1];
		cr_assert(len >= 2 && off + len <= total, "descriptor at %zu has length %u", off, len);
		if (type == 0x04) {
			cr_assert_eq(len, 9);
			p.interfaces++;
			if (c[off + 5] == 0x02) {
				p.comm_class = 1;
				cr_assert_eq(c[off + 6], 0x02, "ACM subclass");
			}
			if (c[off + 5] == 0x0A)
				p.data_class = 1;
		} else if (type == 0x05) {
			cr_assert_eq(len, 7);
			cr_assert(p.endpoints < 4);
			p.ep_addr[p.endpoints] = c[off + 2];
			p.ep_type[p.endpoints] = c[off + 3] & 3u;
			p.ep_size[p.endpoints] = (uint16_t)(c[off + 4] | c[off + 5] << 8);
			p.endpoints++;
		} else if (type == 0x24) {
			p.cdc_functional++;
			if (c[off + 2] == 0x06) {
				p.union_master = c[off + 3];
				p.union_slave = c[off + 4];
			}
		}
		off += len;
	}
	cr_assert_eq(off, total);
	return p;
}

Test(usb_desc, configuration_is_a_cdc_acm_function)
{
	parsed p = walk_config();
	cr_assert_eq(usb_config_desc[4], p.interfaces, "bNumInterfaces");
	cr_assert_eq(p.interfaces, 2);
	cr_assert(p.comm_class && p.data_class);
	cr_assert_eq(p.cdc_functional, 4, "header, call management, ACM, union");
	cr_assert_eq(p.union_master, 0);
	cr_assert_eq(p.union_slave, 1);
}

Test(usb_desc, endpoints_have_full_speed_sizes)
{
	parsed p = walk_config();
	cr_assert_eq(p.endpoints, 3);
	int bulk_in = 0, bulk_out = 0, intr = 0;
	for (int i = 0; i < p.endpoints; i++) {
		if (p.ep_type[i] == 2) {
			cr_assert_eq(p.ep_size[i], 64, "bulk endpoint 0x%02x size %u", p.ep_addr[i], p.ep_size[i]);
			if (p.ep_addr[i] & 0x80)
				bulk_in++;
			else
				bulk_out++;
		} else if (p.ep_type[i] == 3) {
			cr_assert(p.ep_addr[i] & 0x80, "notification endpoint is IN");
			cr_assert_leq(p.ep_size[i], 64);
			intr++;
		}
		cr_assert_leq(p.ep_addr[i] & 0x0F, 3, "OTG FS device has endpoints 0..5; we use 0..3");
	}
	cr_assert_eq(bulk_in, 1);
	cr_assert_eq(bulk_out, 1);
	cr_assert_eq(intr, 1);
}

Test(usb_desc, serial_string_is_the_uid_in_hex)
{
	const uint8_t uid[12] = {0x00, 0x1F, 0x00, 0x28, 0x33, 0x30, 0x51, 0x16, 0x37, 0x34, 0xAB, 0xCD};
	uint8_t d[64];
	size_t n = usb_string_desc(USB_STR_SERIAL, uid, d, sizeof d);
	cr_assert_eq(n, 2 + 2 * 24);
	cr_assert_eq(d[0], n);
	cr_assert_eq(d[1], 0x03);
	char got[25];
	for (int i = 0; i < 24; i++) {
		got[i] = (char)d[2 + 2 * i];
		cr_assert_eq(d[3 + 2 * i], 0, "UTF-16LE high byte");
	}
	got[24] = 0;
	cr_assert_str_eq(got, "001F0028333051163734ABCD");
	char text[25];
	usb_serial_from_uid(uid, text);
	cr_assert_str_eq(text, got, "HELLO's serial and USB's serial are the same text");
}

Test(usb_desc, other_strings_and_limits)
{
	const uint8_t uid[12] = {0};
	uint8_t d[64];
	cr_assert_eq(usb_string_desc(USB_STR_LANGID, uid, d, sizeof d), 4);
	cr_assert_eq(d[2] | d[3] << 8, 0x0409);
	size_t n = usb_string_desc(USB_STR_MANUFACTURER, uid, d, sizeof d);
	cr_assert_eq(n, 2 + 2 * strlen("flasher"));
	cr_assert_eq(d[2], 'f');
	cr_assert_eq(usb_string_desc(USB_STR_COUNT, uid, d, sizeof d), 0, "unknown index");
	cr_assert_eq(usb_string_desc(USB_STR_SERIAL, uid, d, 20), 0, "too small a buffer");
	cr_assert(usb_string_desc(USB_STR_PRODUCT, uid, d, sizeof d) <= USB_EP0_SIZE,
	          "fits one EP0 packet");
}
