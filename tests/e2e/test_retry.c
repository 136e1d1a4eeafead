/* Retries that finish: an update cut after activation (before the reboot,
 * or while the new pair runs on trial) is finished by the plain retry of
 * the same `flasher update`, which reports it as done. Another package on a
 * unit with a pending or trial pair is refused with FLASHER_ETRIAL (exit
 * 28) and a hint naming the command that resolves it. */
#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
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

/* The last JSON line of out. */
static cJSON *last_event(const char *out)
{
	const char *last = NULL;
	for (const char *l = out; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL)
		if (*l == '{')
			last = l;
	cr_assert_not_null(last, "no JSON on stdout: %s", out);
	char *line = strndup(last, strcspn(last, "\n"));
	cJSON *j = cJSON_Parse(line);
	free(line);
	cr_assert_not_null(j, "%s", out);
	return j;
}

static double num(const cJSON *j, const char *k)
{
	return cJSON_GetNumberValue(cJSON_GetObjectItem(j, k));
}

static const char *str(const cJSON *j, const char *k)
{
	const char *s = cJSON_GetStringValue(cJSON_GetObjectItem(j, k));
	return s ? s : "";
}

static void assert_runs(const char *version)
{
	flasher_unit_info info;
	cr_assert_eq(e2e_info(dev.pty, &info), 0, "%s", flasher_error_last());
	char v[16];
	flasher_semver_format(info.cm7_version, v, sizeof v);
	cr_assert_str_eq(v, version);
	cr_assert_eq(info.state, FLASHER_STATE_CONFIRMED);
}

/* Cut between ACTIVATE and the reboot (here: --no-reboot, then the host
 * went away): the plain retry reboots into the new pair and waits. */
Test(e2e_retry, pending_activation_then_plain_retry, .fini = teardown, .timeout = 120)
{
	e2e_pkg_spec spec = {.version = "5.1.0", .cm7_size = 64 * 1024, .cm4_size = 32 * 1024, .seed = 61};
	const char *pkg = e2e_make_pkg("a.pkg", &spec);
	e2e_devsim_start(&dev, e2e_path("unit.flash"), (const char *const[]){"--link-rate", "none", NULL});
	char *out = NULL;
	int rc = e2e_run_cli((const char *const[]){"update", dev.pty, pkg, "--no-reboot", "--json", NULL}, &out, 60);
	cr_assert_eq(rc, 0, "exit %d: %s", rc, out);
	free(out);
	rc = e2e_run_cli((const char *const[]){"update", dev.pty, pkg, "--json", NULL}, &out, 60);
	cr_assert_eq(rc, 0, "the retry exited %d: %s", rc, out);
	cJSON *j = last_event(out);
	cr_assert_str_eq(str(j, "event"), "done");
	cr_expect_eq(num(j, "sent_bytes"), 0, "the retry sent images again: %s", out);
	cr_expect_eq(num(j, "resumed_bytes"), num(j, "payload_bytes"));
	cJSON_Delete(j);
	free(out);
	assert_runs("5.1.0");
}

/* Cut while the new pair runs on trial: a retry waits for the unit to
 * confirm the pair it runs (not refused, nothing sent); after a power
 * cycle the plain retry finishes with exit 0. */
Test(e2e_retry, trial_then_power_cut_then_plain_retry, .fini = teardown, .timeout = 180)
{
	e2e_pkg_spec spec = {.version = "5.2.0", .cm7_size = 64 * 1024, .cm4_size = 32 * 1024, .seed = 62};
	const char *pkg = e2e_make_pkg("a.pkg", &spec);
	/* an application that does not confirm (yet): the unit stays on trial */
	e2e_devsim_start(&dev, e2e_path("unit.flash"),
	                 (const char *const[]){"--link-rate", "none", "--app-no-confirm", "--trial-watchdog-ms", "60000", NULL});
	char *out = NULL;
	int rc = e2e_run_cli((const char *const[]){"update", dev.pty, pkg, "--wait-confirm", "300", "--json", NULL}, &out,
	                     60);
	cr_assert_eq(rc, 17, "exit %d: %s", rc, out);
	free(out);
	flasher_unit_info info;
	cr_assert_eq(e2e_info(dev.pty, &info), 0, "%s", flasher_error_last());
	cr_assert_eq(info.state, FLASHER_STATE_TRIAL);
	/* the retry while the trial runs: it waits for the confirmation */
	rc = e2e_run_cli((const char *const[]){"update", dev.pty, pkg, "--wait-confirm", "300", "--json", NULL}, &out, 60);
	cJSON *j = last_event(out);
	cr_assert_eq(rc, 17, "a retry during the trial exited %d: %s", rc, out);
	cr_expect(strstr(str(j, "message"), "did not confirm itself"), "%s", out);
	cJSON_Delete(j);
	free(out);
	/* power cut during the trial; the unit comes back with an application
	 * that confirms: the plain retry finishes the update */
	e2e_devsim_kill(&dev, SIGKILL);
	e2e_devsim_start(&dev, e2e_path("unit.flash"), (const char *const[]){"--link-rate", "none", NULL});
	rc = e2e_run_cli((const char *const[]){"update", dev.pty, pkg, "--json", NULL}, &out, 60);
	cr_assert_eq(rc, 0, "the retry exited %d: %s", rc, out);
	j = last_event(out);
	cr_assert_str_eq(str(j, "event"), "done");
	cJSON_Delete(j);
	free(out);
	assert_runs("5.2.0");
}

/* Another package while a pair is on trial: refused before anything is
 * sent, exit 28, naming the commands; after 'flasher confirm' it installs. */
Test(e2e_retry, other_package_on_trial_is_refused_with_a_hint, .fini = teardown, .timeout = 180)
{
	e2e_pkg_spec a = {.version = "6.0.0", .cm7_size = 48 * 1024, .seed = 63};
	e2e_pkg_spec b = {.version = "6.1.0", .cm7_size = 48 * 1024, .seed = 64};
	const char *pa = e2e_make_pkg("a.pkg", &a);
	const char *pb = e2e_make_pkg("b.pkg", &b);
	e2e_devsim_start(&dev, e2e_path("unit.flash"),
	                 (const char *const[]){"--link-rate", "none", "--app-no-confirm", "--trial-watchdog-ms", "60000", NULL});
	char *out = NULL;
	int rc = e2e_run_cli((const char *const[]){"update", dev.pty, pa, "--wait-confirm", "300", "--json", NULL}, &out,
	                     60);
	cr_assert_eq(rc, 17, "exit %d: %s", rc, out);
	free(out);
	rc = e2e_run_cli((const char *const[]){"update", dev.pty, pb, "--json", NULL}, &out, 60);
	cr_assert_eq(rc, 28, "exit %d: %s", rc, out);
	cJSON *j = last_event(out);
	cr_expect_str_eq(str(j, "name"), "FLASHER_ETRIAL");
	char hint[400];
	snprintf(hint, sizeof hint, "flasher confirm %s", dev.pty);
	cr_expect(strstr(str(j, "message"), hint), "no hint '%s': %s", hint, out);
	cJSON_Delete(j);
	free(out);
	cr_assert_eq(e2e_run_cli((const char *const[]){"confirm", dev.pty, NULL}, NULL, 60), 0);
	rc = e2e_run_cli((const char *const[]){"update", dev.pty, pb, "--wait-confirm", "300", "--json", NULL}, &out, 60);
	/* the application of this unit never confirms: the new pair runs on trial */
	cr_expect_eq(rc, 17, "after confirm the other package installs: exit %d: %s", rc, out);
	free(out);
	flasher_unit_info info;
	cr_assert_eq(e2e_info(dev.pty, &info), 0);
	cr_expect_eq(info.cm7_version, FLBOOT_VERSION(6, 1, 0));
}
