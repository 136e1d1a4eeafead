/* A new image that never confirms: the unit rolls back, the update says
 * FLASHER_EROLLEDBACK and `flasher info` says state "rolled_back". */
#include <criterion/criterion.h>
#include <signal.h>
#include <criterion/parameterized.h>
#include <cjson/cJSON.h>
#include <string.h>

#include "e2e.h"
#include "flboot/image.h"
#include "flboot/proto.h"

static e2e_devsim dev;

static void teardown(void)
{
	e2e_devsim_kill(&dev, SIGTERM);
	e2e_cleanup();
}

ParameterizedTestParameters(e2e_rollback, unconfirmed_image)
{
	static int modes[] = {0, 1};
	return cr_make_param_array(int, modes, 2);
}

ParameterizedTest(int *which, e2e_rollback, unconfirmed_image, .fini = teardown, .timeout = 300)
{
	const char *const modes[] = {"--app-no-confirm", "--app-crash"};
	const char *const *mode = &modes[*which];
	e2e_pkg_spec good = {.version = "1.0.0", .cm7_size = 40 * 1024, .cm4_size = 20 * 1024, .seed = 11};
	e2e_pkg_spec bad = {.version = "1.1.0", .cm7_size = 41 * 1024, .cm4_size = 21 * 1024, .seed = 12};
	const char *pg = e2e_make_pkg("good.pkg", &good);
	const char *pb = e2e_make_pkg("bad.pkg", &bad);
	const char *flash = e2e_path("unit.flash");
	e2e_devsim_start(&dev, flash, (const char *const[]){"--link-rate", "none", NULL});
	flasher_update_result r;
	int err = e2e_update(dev.pty, pg, NULL, NULL, &r);
	cr_assert_eq(err, 0, "first install: %s: %s", flasher_error_name(err), flasher_error_last());

	/* the same unit, now with firmware that never confirms itself */
	e2e_devsim_kill(&dev, SIGTERM);
	e2e_devsim_start(&dev, flash, (const char *const[]){"--link-rate", "none", *mode, NULL});
	flasher_update_options uo = FLASHER_UPDATE_OPTIONS_INIT;
	uo.wait_confirm_ms = 60000;
	flasher_session_options so = FLASHER_SESSION_OPTIONS_INIT;
	so.reconnect_timeout_ms = 60000;
	err = e2e_update(dev.pty, pb, &uo, &so, &r);
	cr_assert_eq(err, FLASHER_EROLLEDBACK, "%s: got %s: %s", *mode, flasher_error_name(err), flasher_error_last());
	cr_assert(strstr(flasher_error_last(), "1.1.0") && strstr(flasher_error_last(), "1.0.0"),
	          "detail names both versions: %s", flasher_error_last());

	char *out = NULL;
	int rc = e2e_run_cli((const char *const[]){"info", dev.pty, "--json", NULL}, &out, 30);
	cr_assert_eq(rc, 0, "info: exit %d", rc);
	cJSON *j = cJSON_Parse(out);
	cr_assert_not_null(j, "not JSON: %s", out);
	cr_assert_str_eq(cJSON_GetStringValue(cJSON_GetObjectItem(j, "state")), "rolled_back", "%s", out);
	cr_assert_str_eq(cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "firmware"), "cm7")), "1.0.0");
	cJSON_Delete(j);
	free(out);
}
