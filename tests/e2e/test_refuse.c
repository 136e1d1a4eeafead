/* Packages that do not fit the unit are refused before any flash operation. */
#include <criterion/criterion.h>
#include <signal.h>
#include <criterion/parameterized.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "e2e.h"
#include "session_internal.h"

static e2e_devsim dev;

static void teardown(void)
{
	e2e_devsim_kill(&dev, SIGTERM);
	e2e_cleanup();
}

static uint32_t flash_ops(const char *port)
{
	flasher_session *s;
	flboot_status st;
	cr_assert_eq(flasher_session_open(&s, port, NULL), 0, "%s", flasher_error_last());
	cr_assert_eq(flasher__session_status(s, &st), 0, "STATUS: %s", flasher_error_last());
	flasher_session_close(s);
	return st.flash_ops;
}

/* Criterion passes parameters to another process image: no pointers in
 * them, so each case is an index into this table. */
static const struct refuse_case {
	const char *name;
	e2e_pkg_spec spec;
	const char *expect; /* in the detail */
} cases[] = {
	{"product", {.product = "other", .version = "1.0.0", .cm7_size = 4096}, "product 'other', unit is 'demo'"},
	{"hw", {.version = "1.0.0", .hw_revs = {"B", "C"}, .cm7_size = 4096}, "unit is 'A'"},
	{"bootloader", {.version = "1.0.0", .min_bootloader = "2.1.0", .cm7_size = 4096}, "2.1.0"},
};

ParameterizedTestParameters(e2e_refuse, before_any_flash_op)
{
	static int idx[] = {0, 1, 2};
	return cr_make_param_array(int, idx, sizeof idx / sizeof idx[0]);
}

ParameterizedTest(int *i, e2e_refuse, before_any_flash_op, .fini = teardown, .timeout = 60)
{
	const struct refuse_case *c = &cases[*i];
	char name[64];
	snprintf(name, sizeof name, "%s.pkg", c->name);
	const char *pkg = e2e_make_pkg(name, &c->spec);
	const char *flash = e2e_path("unit.flash");
	e2e_devsim_start(&dev, flash, NULL);
	uint8_t before[32], after[32];
	uint32_t ops0 = flash_ops(dev.pty);
	e2e_file_sha256(flash, before);

	flasher_update_result r;
	int err = e2e_update(dev.pty, pkg, NULL, NULL, &r);
	cr_assert_eq(err, FLASHER_EINCOMPATIBLE, "%s: got %s: %s", c->name, flasher_error_name(err), flasher_error_last());
	cr_assert(strstr(flasher_error_last(), c->expect), "detail '%s' does not name '%s'", flasher_error_last(),
	          c->expect);
	cr_assert_eq(r.sent_bytes, 0);
	cr_assert_eq(flash_ops(dev.pty), ops0, "the unit did flash operations for a refused package");
	e2e_file_sha256(flash, after);
	cr_assert_eq(memcmp(before, after, 32), 0, "the flash file changed");

	/* the CLI says the same and exits 10 + 11 */
	char *out = NULL;
	int rc = e2e_run_cli((const char *const[]){"update", dev.pty, pkg, "--json", NULL}, &out, 60);
	cr_assert_eq(rc, 21, "exit %d, output %s", rc, out);
	cr_assert(strstr(out, "\"event\":\"error\"") && strstr(out, "FLASHER_EINCOMPATIBLE"), "%s", out);
	free(out);
	cr_assert_eq(flash_ops(dev.pty), ops0);
}

Test(e2e_refuse, truncated_package, .fini = teardown, .timeout = 60)
{
	e2e_pkg_spec spec = {.version = "1.0.0", .cm7_size = 64 * 1024, .cm4_size = 8192, .seed = 3};
	const char *pkg = e2e_make_pkg("t.pkg", &spec);
	FILE *f = fopen(pkg, "r+b");
	cr_assert_not_null(f);
	fseek(f, 0, SEEK_END);
	long len = ftell(f);
	fclose(f);
	cr_assert_eq(truncate(pkg, len - 1000), 0);
	const char *flash = e2e_path("unit.flash");
	e2e_devsim_start(&dev, flash, NULL);
	uint32_t ops0 = flash_ops(dev.pty);
	uint8_t before[32], after[32];
	e2e_file_sha256(flash, before);
	char *out = NULL;
	int rc = e2e_run_cli((const char *const[]){"update", dev.pty, pkg, "--json", NULL}, &out, 60);
	cr_assert(rc == 15 || rc == 16, "truncated package: exit %d (%s)", rc, out);
	cr_assert(strstr(out, "\"event\":\"error\""), "%s", out);
	free(out);
	cr_assert_eq(flash_ops(dev.pty), ops0);
	e2e_file_sha256(flash, after);
	cr_assert_eq(memcmp(before, after, 32), 0, "the flash file changed");
}
