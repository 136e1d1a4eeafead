/* Update policies against a real flasher-devsim, through the real CLI: a
 * downgrade needs --allow-older (exit 29 otherwise), the version already
 * running, confirmed, is a no-op that exits 0 unless --allow-reinstall,
 * --dry-run checks everything and writes nothing, --wait waits for the
 * unit to appear. "Writes nothing" is checked on the unit's flash file
 * itself: byte for byte the same before and after. */
#include <criterion/criterion.h>
#include <cjson/cJSON.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "e2e.h"

static e2e_devsim dev;

static void teardown(void)
{
	e2e_devsim_kill(&dev, SIGTERM);
	e2e_cleanup();
}

TestSuite(e2e_policy, .fini = teardown, .timeout = 300);

static const char *str(const cJSON *o, const char *k)
{
	const char *s = cJSON_GetStringValue(cJSON_GetObjectItem(o, k));
	return s ? s : "(null)";
}

/* The last stdout line of a --json command, parsed. */
static cJSON *last_line(char *out)
{
	cJSON *last = NULL;
	for (char *line = strtok(out, "\n"); line; line = strtok(NULL, "\n")) {
		cJSON *j = cJSON_Parse(line);
		cr_assert_not_null(j, "not a JSON line: '%s'", line);
		cJSON_Delete(last);
		last = j;
	}
	cr_assert_not_null(last, "no output");
	return last;
}

static int update(const char *pkg, const char *const *extra, cJSON **last)
{
	const char *args[16] = {"update", dev.pty, pkg, "--json"};
	int n = 4;
	for (; extra && *extra; extra++)
		args[n++] = *extra;
	args[n] = NULL;
	char *out = NULL;
	int rc = e2e_run_cli(args, &out, 120);
	if (last)
		*last = last_line(out);
	free(out);
	return rc;
}

static void flash_sha(uint8_t out[32])
{
	e2e_file_sha256(dev.flash, out);
}

static const char *running(void)
{
	static char v[16];
	flasher_unit_info info;
	cr_assert_eq(e2e_info(dev.pty, &info), 0, "%s", flasher_error_last());
	flasher_semver_format(info.cm7_version, v, sizeof v);
	return v;
}

Test(e2e_policy, reinstall_is_a_no_op_and_downgrade_needs_allow_older)
{
	e2e_pkg_spec s1 = {.version = "1.0.1", .cm7_size = 40 * 1024, .cm4_size = 20 * 1024, .seed = 31};
	e2e_pkg_spec s0 = {.version = "1.0.0", .cm7_size = 41 * 1024, .cm4_size = 21 * 1024, .seed = 32};
	const char *p1 = e2e_make_pkg("1.0.1.pkg", &s1), *p0 = e2e_make_pkg("1.0.0.pkg", &s0);
	e2e_devsim_start(&dev, e2e_path("unit.flash"), NULL);
	cJSON *j;
	cr_assert_eq(update(p1, NULL, &j), 0);
	cr_assert_str_eq(str(j, "outcome"), "updated");
	cJSON_Delete(j);

	/* The same package again: nothing written, exit 0. */
	uint8_t before[32], after[32];
	flash_sha(before);
	cr_assert_eq(update(p1, NULL, &j), 0);
	cr_assert_str_eq(str(j, "event"), "done");
	cr_assert_str_eq(str(j, "outcome"), "already_running");
	cr_assert_eq(cJSON_GetNumberValue(cJSON_GetObjectItem(j, "sent_bytes")), 0);
	cJSON_Delete(j);
	flash_sha(after);
	cr_assert_arr_eq(before, after, 32, "a reinstall no-op changed the unit's flash");
	/* The human form says so. */
	char *out = NULL;
	cr_assert_eq(e2e_run_cli((const char *const[]){"update", dev.pty, p1, NULL}, &out, 60), 0);
	cr_assert_not_null(strstr(out, "already running 1.0.1"), "%s", out);
	free(out);

	/* --allow-reinstall writes it again. */
	cr_assert_eq(update(p1, (const char *const[]){"--allow-reinstall", NULL}, &j), 0);
	cr_assert_str_eq(str(j, "outcome"), "updated");
	cr_assert_gt(cJSON_GetNumberValue(cJSON_GetObjectItem(j, "sent_bytes")), 0);
	cJSON_Delete(j);
	flash_sha(after);
	cr_assert(memcmp(before, after, 32) != 0, "--allow-reinstall wrote nothing");
	cr_assert_str_eq(running(), "1.0.1");

	/* Downgrade: refused with its own code before any write. */
	flash_sha(before);
	cr_assert_eq(update(p0, NULL, &j), 29);
	cr_assert_str_eq(str(j, "event"), "error");
	cr_assert_str_eq(str(j, "name"), "FLASHER_EDOWNGRADE");
	cr_assert_not_null(strstr(str(j, "message"), "--allow-older"), "%s", str(j, "message"));
	cr_assert_not_null(strstr(str(j, "message"), "1.0.1"), "%s", str(j, "message"));
	cJSON_Delete(j);
	flash_sha(after);
	cr_assert_arr_eq(before, after, 32, "a refused downgrade changed the unit's flash");
	cr_assert_str_eq(running(), "1.0.1");
	cr_assert_eq(update(p0, (const char *const[]){"--allow-older", NULL}, &j), 0);
	cr_assert_str_eq(str(j, "outcome"), "updated");
	cJSON_Delete(j);
	cr_assert_str_eq(running(), "1.0.0");
}

Test(e2e_policy, dry_run_runs_every_check_and_writes_nothing)
{
	e2e_pkg_spec s1 = {.version = "2.0.0", .cm7_size = 30 * 1024, .cm4_size = 10 * 1024, .seed = 41};
	e2e_pkg_spec s2 = {.version = "2.1.0", .cm7_size = 31 * 1024, .cm4_size = 11 * 1024, .seed = 42};
	e2e_pkg_spec other = {.product = "other", .version = "3.0.0", .cm7_size = 4096, .seed = 43};
	e2e_pkg_spec old = {.version = "1.9.0", .cm7_size = 4096, .seed = 44};
	const char *p1 = e2e_make_pkg("a.pkg", &s1), *p2 = e2e_make_pkg("b.pkg", &s2);
	const char *po = e2e_make_pkg("o.pkg", &other), *pd = e2e_make_pkg("d.pkg", &old);
	e2e_devsim_start(&dev, e2e_path("unit.flash"), NULL);
	cr_assert_eq(update(p1, NULL, NULL), 0);
	flasher_unit_info before_info;
	cr_assert_eq(e2e_info(dev.pty, &before_info), 0);

	uint8_t before[32], after[32];
	flash_sha(before);
	cJSON *j;
	cr_assert_eq(update(p2, (const char *const[]){"--dry-run", NULL}, &j), 0);
	cr_assert_str_eq(str(j, "outcome"), "dry_run");
	cr_assert_str_eq(str(j, "version"), "2.1.0");
	cJSON_Delete(j);
	/* Every check still runs: another product, a downgrade. */
	cr_assert_eq(update(po, (const char *const[]){"--dry-run", NULL}, &j), 21);
	cr_assert_str_eq(str(j, "name"), "FLASHER_EINCOMPATIBLE");
	cJSON_Delete(j);
	cr_assert_eq(update(pd, (const char *const[]){"--dry-run", NULL}, &j), 29);
	cJSON_Delete(j);
	char *out = NULL;
	cr_assert_eq(e2e_run_cli((const char *const[]){"update", dev.pty, p2, "--dry-run", NULL}, &out, 60), 0);
	cr_assert_not_null(strstr(out, "dry run"), "%s", out);
	cr_assert_not_null(strstr(out, "nothing written"), "%s", out);
	free(out);
	flash_sha(after);
	cr_assert_arr_eq(before, after, 32, "a dry run changed the unit's flash");
	flasher_unit_info now;
	cr_assert_eq(e2e_info(dev.pty, &now), 0);
	cr_assert_eq(now.mode, before_info.mode, "a dry run must not reboot the unit into another mode");
	cr_assert_eq(now.cm7_version, before_info.cm7_version);
	/* And the real update still works afterwards. */
	cr_assert_eq(update(p2, NULL, &j), 0);
	cr_assert_str_eq(str(j, "outcome"), "updated");
	cJSON_Delete(j);
}

/* A caller built against the first 0.4 header passes a result that ends
 * before `outcome`: the library writes nothing past it; version-1 options
 * (no policy fields) get the default policy, so a reinstall is a no-op. */
Test(e2e_policy, an_older_callers_shorter_result_and_v1_options)
{
	e2e_pkg_spec s1 = {.version = "1.0.0", .cm7_size = 8192, .seed = 51};
	const char *p1 = e2e_make_pkg("a.pkg", &s1);
	e2e_devsim_start(&dev, e2e_path("unit.flash"), NULL);
	cr_assert_eq(update(p1, NULL, NULL), 0);
	flasher_update_options uo = FLASHER_UPDATE_OPTIONS_INIT;
	uo.version = 1;
	union {
		flasher_update_result r;
		unsigned char b[sizeof(flasher_update_result)];
	} res;
	memset(&res, 0xAA, sizeof res);
	flasher_package *pkg;
	cr_assert_eq(flasher_package_open(&pkg, p1), 0);
	flasher_session *s;
	cr_assert_eq(flasher_session_open(&s, dev.pty, NULL), 0, "%s", flasher_error_last());
	size_t short_size = offsetof(flasher_update_result, outcome);
	cr_assert_eq(flasher_session_update_sized(s, pkg, &uo, &res.r, short_size), 0, "%s", flasher_error_last());
	flasher_session_close(s);
	flasher_package_free(pkg);
	for (size_t i = short_size; i < sizeof res; i++)
		cr_assert_eq(res.b[i], 0xAA, "byte %zu past the caller's result was written", i);
	cr_assert_eq(res.r.struct_size, short_size);
	cr_assert_eq(res.r.sent_bytes, 0, "the reinstall was not a no-op");
}

Test(e2e_policy, wait_waits_for_the_unit_to_appear)
{
	const char *link = e2e_path("unit-link");
	/* Not there: --wait=1 gives up with "not found" (14). */
	char *out = NULL;
	cr_assert_eq(e2e_run_cli((const char *const[]){"info", link, "--wait=1", NULL}, &out, 30), 14);
	free(out);
	/* Started before the unit exists; the unit appears a moment later. */
	char outfile[512];
	snprintf(outfile, sizeof outfile, "%s", e2e_path("info.json"));
	pid_t pid = fork();
	cr_assert_neq(pid, -1);
	if (pid == 0) {
		int fd = open(outfile, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		dup2(fd, 1);
		execl(FLASHER_CLI_PATH, FLASHER_CLI_PATH, "info", link, "--wait=60", "--json", (char *)NULL);
		_exit(127);
	}
	usleep(700 * 1000);
	e2e_devsim_start(&dev, e2e_path("unit.flash"), NULL);
	cr_assert_eq(symlink(dev.pty, link), 0);
	int st;
	cr_assert_eq(waitpid(pid, &st, 0), pid);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "info --wait exit %d", WEXITSTATUS(st));
	FILE *f = fopen(outfile, "r");
	char line[8192];
	cJSON *first = NULL, *last = NULL;
	while (fgets(line, sizeof line, f)) {
		cJSON *j = cJSON_Parse(line);
		cr_assert_not_null(j, "not JSON: %s", line);
		if (!first)
			first = j;
		else {
			cJSON_Delete(last);
			last = j;
		}
	}
	fclose(f);
	cr_assert_not_null(first);
	cr_assert_str_eq(str(first, "event"), "wait");
	cr_assert_eq(cJSON_GetNumberValue(cJSON_GetObjectItem(first, "timeout_s")), 60);
	cr_assert_not_null(last, "no unit document after the wait");
	cr_assert_str_eq(str(last, "product"), "demo");
	cJSON_Delete(first);
	cJSON_Delete(last);
}
