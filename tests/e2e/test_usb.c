/* Through a USB CDC port: flasher-testbed presents devsim as /dev/ttyACM0
 * (umockdev, VID:PID 0483:5740, serial = uid) and the CLI, run inside it,
 * opens the unit by its serial number through discovery and libserialport. */
#include <criterion/criterion.h>
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "e2e.h"

static void teardown(void)
{
	e2e_cleanup();
}

Test(e2e_usb, update_by_serial_number, .fini = teardown, .timeout = 300)
{
	e2e_pkg_spec a = {.version = "6.0.1", .cm7_size = 100 * 1024, .cm4_size = 60 * 1024, .seed = 31,
	                  .compressible = 1};
	const char *pkg = e2e_make_pkg("u.pkg", &a);
	setenv("FLASHER_DEVSIM", FLASHER_DEVSIM_PATH, 1);
	char script[2048];
	/* update by serial, then info by serial; the last stdout line is info's JSON */
	snprintf(script, sizeof script,
	         "S=${FLASHER_TESTBED_SERIALS%%%%,*}; \"%s\" update \"$S\" \"%s\" --json >/dev/null || exit $?; "
	         "\"%s\" info \"$S\" --json",
	         FLASHER_CLI_PATH, pkg, FLASHER_CLI_PATH);
	char *out = NULL;
	int rc = e2e_run_prog(FLASHER_TESTBED_PATH,
	                      (const char *const[]){"--units", "1", "--flash-dir", e2e_tmpdir(), "--devsim-arg",
	                                            "--link-rate", "--devsim-arg", "none", "--", "/bin/sh", "-c", script,
	                                            NULL},
	                      &out, 240);
	cr_assert_eq(rc, 0, "exit %d: %s", rc, out);
	char *last = strrchr(out, '{');
	while (last && last > out && last[-1] != '\n')
		last = memrchr(out, '{', (size_t)(last - out));
	cJSON *j = cJSON_Parse(last);
	cr_assert_not_null(j, "no JSON: %s", out);
	cr_assert(strstr(cJSON_GetStringValue(cJSON_GetObjectItem(j, "port")), "/dev/ttyACM"), "%s", out);
	cr_assert_str_eq(cJSON_GetStringValue(cJSON_GetObjectItem(j, "version")), "6.0.1");
	cr_assert_str_eq(cJSON_GetStringValue(cJSON_GetObjectItem(j, "state")), "confirmed");
	cJSON_Delete(j);
	free(out);
}
