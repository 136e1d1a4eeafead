/* The public names of modes, states, slot states and cores, and USB ids. */
#include <criterion/criterion.h>
#include <string.h>

#include "flasher.h"
#include "flboot/proto.h"

Test(names, match_the_wire_numbers)
{
	cr_expect_str_eq(flasher_mode_name(FLASHER_MODE_BOOTLOADER), "bootloader");
	cr_expect_str_eq(flasher_mode_name(FLASHER_MODE_APPLICATION), "application");
	cr_expect_str_eq(flasher_mode_name((flasher_mode)9), "unknown");
	const char *states[] = {"empty", "confirmed", "pending", "trial", "rolled_back"};
	for (int i = 0; i < 5; i++)
		cr_expect_str_eq(flasher_boot_state_name((flasher_boot_state)i), states[i]);
	cr_expect_str_eq(flasher_boot_state_name((flasher_boot_state)-1), "unknown");
	const char *slots[] = {"empty", "active", "receiving", "staged", "previous", "invalid"};
	for (int i = 0; i < 6; i++)
		cr_expect_str_eq(flasher_slot_state_name((flasher_slot_state)i), slots[i]);
	cr_expect_str_eq(flasher_slot_state_name((flasher_slot_state)6), "unknown");
	cr_expect_str_eq(flasher_core_name(FLASHER_CORE_CM7), "cm7");
	cr_expect_str_eq(flasher_core_name(FLASHER_CORE_CM4), "cm4");
	/* The public enums are the wire's numbers (the library casts between them). */
	cr_expect_eq((int)FLASHER_SLOT_STAGED, FLBOOT_SLOT_STAGED);
	cr_expect_eq((int)FLASHER_SLOT_INVALID, FLBOOT_SLOT_INVALID);
	cr_expect_eq((int)FLASHER_STATE_ROLLED_BACK, FLBOOT_STATE_ROLLED_BACK);
	cr_expect_eq((int)FLASHER_MODE_APPLICATION, FLBOOT_MODE_APPLICATION);
}

Test(usb_id, parses_hex_pairs)
{
	flasher_usb_id id;
	cr_assert_eq(flasher_usb_id_parse("0483:5740", &id), 0);
	cr_expect_eq(id.vid, 0x0483);
	cr_expect_eq(id.pid, 0x5740);
	cr_assert_eq(flasher_usb_id_parse("1209:ABcd", &id), 0);
	cr_expect_eq(id.pid, 0xabcd);
	const char *bad[] = {"", "0483", "0483:", ":5740", "10483:5740", "0483:57400", "0483:57g0", "0483-5740",
	                     "0483:5740 ", "-483:5740", "0x48:5740"};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		cr_expect_eq(flasher_usb_id_parse(bad[i], &id), FLASHER_EINVAL, "'%s' accepted", bad[i]);
		cr_expect(strstr(flasher_error_last(), "VID:PID"), "%s", flasher_error_last());
	}
}

Test(discovery, refuses_bad_options)
{
	flasher_port_info *list;
	size_t n;
	flasher_discovery_options o = FLASHER_DISCOVERY_OPTIONS_INIT;
	o.version = 99;
	cr_expect_eq(flasher_port_list_with(&o, &list, &n), FLASHER_EINVAL);
	o.version = FLASHER_DISCOVERY_OPTIONS_VERSION;
	o.usb_id_count = FLASHER_MAX_USB_IDS + 1;
	flasher_usb_id ids[FLASHER_MAX_USB_IDS + 1] = {{0, 0}};
	o.usb_ids = ids;
	cr_expect_eq(flasher_port_list_with(&o, &list, &n), FLASHER_EINVAL);
}
