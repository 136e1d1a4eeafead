/* Runs inside `flasher-testbed --units 2 --usb-id 1209:0001`: a vendor's
 * units with their own USB ids are found when the ids are given, and only
 * then (the default stays ST's 0483:5740). */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "flasher.h"

TestSuite(vendor, .timeout = 60);

Test(vendor, units_found_by_their_own_ids_only)
{
	flasher_port_info *ports;
	size_t n;
	cr_assert_eq(flasher_port_list(&ports, &n, 0), 0, "%s", flasher_error_last());
	cr_expect_eq(n, 0, "the default ids must not match 1209:0001");
	flasher_port_list_free(ports);

	flasher_usb_id ids[2] = {{0x0483, 0x5740}, {0x1209, 0x0001}};
	flasher_discovery_options o = FLASHER_DISCOVERY_OPTIONS_INIT;
	o.usb_ids = ids;
	o.usb_id_count = 2;
	cr_assert_eq(flasher_port_list_with(&o, &ports, &n), 0, "%s", flasher_error_last());
	cr_assert_eq(n, 2);
	cr_expect_eq(ports[1].vid, 0x1209);
	cr_expect_eq(ports[1].pid, 0x0001);
	char serial[64], path[64];
	snprintf(serial, sizeof serial, "%s", ports[1].serial);
	flasher_port_list_free(ports);

	cr_expect_eq(flasher_port_find(serial, path, sizeof path), FLASHER_ENOTFOUND);
	cr_assert_eq(flasher_port_find_with(&o, serial, path, sizeof path), 0, "%s", flasher_error_last());
	cr_expect_str_eq(path, "/dev/ttyACM1");
}

static int cli_lines(const char *args)
{
	char cmd[512];
	snprintf(cmd, sizeof cmd, "%s list %s 2>/dev/null", FLASHER_CLI_PATH, args);
	FILE *p = popen(cmd, "r");
	cr_assert_not_null(p);
	char line[512];
	int n = 0;
	while (fgets(line, sizeof line, p))
		if (strstr(line, "/dev/ttyACM"))
			n++;
	int st = pclose(p);
	return st == 0 ? n : -1 - WEXITSTATUS(st);
}

Test(vendor, cli_list_usb_option)
{
	cr_expect_eq(cli_lines(""), 0);
	cr_expect_eq(cli_lines("--usb 1209:0001"), 2);
	cr_expect_eq(cli_lines("--usb 0483:5740 --usb 1209:1"), 2);
	cr_expect_eq(cli_lines("--usb 1209"), -1 - 2, "a bad id is a usage error (exit 2)");
}
