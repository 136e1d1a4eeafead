/* The real `flasher` binary against a real flasher-devsim: update (both
 * cores, then one), info --json, reboot, confirm, rollback, Ctrl-C. */
#include <criterion/criterion.h>
#include <cjson/cJSON.h>
#include <poll.h>
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

static cJSON *info_json(void)
{
	char *out = NULL;
	int rc = e2e_run_cli((const char *const[]){"info", dev.pty, "--json", NULL}, &out, 30);
	cr_assert_eq(rc, 0, "info exit %d", rc);
	cJSON *j = cJSON_Parse(out);
	cr_assert_not_null(j, "info --json is not one JSON document: %s", out);
	free(out);
	return j;
}

static const char *str(cJSON *o, const char *k)
{
	const char *s = cJSON_GetStringValue(cJSON_GetObjectItem(o, k));
	return s ? s : "(null)";
}

/* Every stdout line of update --json is a JSON object; returns the last. */
static cJSON *last_event(char *out)
{
	cJSON *last = NULL;
	int progress = 0;
	for (char *line = strtok(out, "\n"); line; line = strtok(NULL, "\n")) {
		cJSON *j = cJSON_Parse(line);
		cr_assert_not_null(j, "not a JSON line: '%s'", line);
		if (!strcmp(str(j, "event"), "progress"))
			progress++;
		cJSON_Delete(last);
		last = j;
	}
	cr_assert_not_null(last);
	(void)progress;
	return last;
}

Test(e2e_cli, update_info_reboot_confirm_rollback, .fini = teardown, .timeout = 300)
{
	e2e_pkg_spec a = {.version = "1.0.1", .cm7_size = 120 * 1024, .cm4_size = 90 * 1024, .seed = 21,
	                  .compressible = 1};
	e2e_pkg_spec b = {.version = "1.0.2", .cm4_size = 50 * 1024, .seed = 22};
	const char *pa = e2e_make_pkg("a.pkg", &a);
	const char *pb = e2e_make_pkg("b.pkg", &b);
	e2e_devsim_start(&dev, e2e_path("unit.flash"), NULL);

	cJSON *j = info_json();
	cr_assert_str_eq(str(j, "mode"), "bootloader");
	cr_assert_str_eq(str(j, "state"), "empty");
	cr_assert_str_eq(str(j, "product"), "demo");
	cr_assert_eq(strlen(str(j, "uid")), 24);
	cr_assert(cJSON_IsArray(cJSON_GetObjectItem(j, "slots")));
	cJSON_Delete(j);

	char *out = NULL;
	int rc = e2e_run_cli((const char *const[]){"update", dev.pty, pa, "--json", NULL}, &out, 120);
	cr_assert_eq(rc, 0, "update exit %d: %s", rc, out);
	cr_assert(strstr(out, "\"event\":\"phase\"") && strstr(out, "\"event\":\"progress\""), "%s", out);
	j = last_event(out);
	cr_assert_str_eq(str(j, "event"), "done");
	cr_assert_str_eq(str(j, "version"), "1.0.1");
	cJSON_Delete(j);
	free(out);

	j = info_json();
	cr_assert_str_eq(str(j, "version"), "1.0.1");
	cr_assert_str_eq(str(j, "mode"), "application");
	cr_assert_str_eq(str(j, "state"), "confirmed");
	cr_assert_str_eq(str(cJSON_GetObjectItem(j, "firmware"), "cm4"), "1.0.1");
	cJSON_Delete(j);

	/* one core only, human output */
	rc = e2e_run_cli((const char *const[]){"update", dev.pty, pb, NULL}, &out, 120);
	cr_assert_eq(rc, 0, "update exit %d: %s", rc, out);
	cr_assert(strstr(out, "1.0.2"), "%s", out);
	free(out);
	j = info_json();
	cr_assert_str_eq(str(cJSON_GetObjectItem(j, "firmware"), "cm4"), "1.0.2");
	cr_assert_str_eq(str(cJSON_GetObjectItem(j, "firmware"), "cm7"), "1.0.1");
	cJSON_Delete(j);

	/* reboot into the bootloader and back */
	rc = e2e_run_cli((const char *const[]){"reboot", dev.pty, "--bootloader", NULL}, NULL, 60);
	cr_assert_eq(rc, 0);
	j = info_json();
	cr_assert_str_eq(str(j, "mode"), "bootloader");
	cJSON_Delete(j);
	rc = e2e_run_cli((const char *const[]){"reboot", dev.pty, "--json", NULL}, &out, 60);
	cr_assert_eq(rc, 0);
	free(out);
	j = info_json();
	cr_assert_str_eq(str(j, "mode"), "application");
	cJSON_Delete(j);

	/* confirm on a confirmed unit is harmless; rollback returns to 1.0.1 on cm4 */
	rc = e2e_run_cli((const char *const[]){"confirm", dev.pty, NULL}, NULL, 60);
	cr_assert(rc == 0 || rc == 20, "confirm exit %d", rc);
	rc = e2e_run_cli((const char *const[]){"rollback", dev.pty, "--json", NULL}, &out, 60);
	cr_assert_eq(rc, 0, "rollback exit %d: %s", rc, out);
	free(out);
	j = info_json();
	cr_assert_str_eq(str(cJSON_GetObjectItem(j, "firmware"), "cm4"), "1.0.1", "after rollback");
	cJSON_Delete(j);
}

Test(e2e_cli, usage_errors_and_help, .timeout = 30)
{
	char *out = NULL;
	cr_assert_eq(e2e_run_cli((const char *const[]){"update", NULL}, NULL, 10), 2);
	cr_assert_eq(e2e_run_cli((const char *const[]){"info", "/dev/null", "--bogus", NULL}, NULL, 10), 2);
	cr_assert_eq(e2e_run_cli((const char *const[]){"update", "--help", NULL}, &out, 10), 0);
	cr_assert(strstr(out, "--no-compress") && strstr(out, "--record"), "%s", out);
	free(out);
	/* a port that does not exist: 10 + |FLASHER_ENOTFOUND| */
	cr_assert_eq(e2e_run_cli((const char *const[]){"info", "/nonexistent/tty", NULL}, NULL, 10), 14);
}

Test(e2e_cli, ctrl_c_cancels_cleanly, .fini = teardown, .timeout = 120)
{
	e2e_pkg_spec a = {.version = "1.0.0", .cm7_size = 380 * 1024, .cm4_size = 380 * 1024, .seed = 23};
	const char *pa = e2e_make_pkg("a.pkg", &a);
	e2e_devsim_start(&dev, e2e_path("unit.flash"), NULL); /* usb-fs rate: takes a while */
	int p[2];
	cr_assert_eq(pipe(p), 0);
	pid_t pid = fork();
	if (pid == 0) {
		dup2(p[1], 1);
		close(p[0]);
		close(p[1]);
		execl(FLASHER_CLI_PATH, FLASHER_CLI_PATH, "update", dev.pty, pa, "--json", (char *)NULL);
		_exit(127);
	}
	close(p[1]);
	char buf[65536];
	size_t len = 0;
	while (!strstr(buf, "\"event\":\"progress\"") && len < sizeof buf - 1) {
		struct pollfd pfd = {p[0], POLLIN, 0};
		cr_assert_gt(poll(&pfd, 1, 30000), 0, "no progress event");
		ssize_t n = read(p[0], buf + len, sizeof buf - 1 - len);
		cr_assert_gt(n, 0);
		len += (size_t)n;
		buf[len] = '\0';
	}
	kill(pid, SIGINT);
	ssize_t n;
	while ((n = read(p[0], buf + len, sizeof buf - 1 - len)) > 0 && len < sizeof buf - 1)
		len += (size_t)n;
	buf[len] = '\0';
	close(p[0]);
	int st;
	waitpid(pid, &st, 0);
	cr_assert(WIFEXITED(st), "the CLI died of a signal instead of cancelling");
	cr_assert_eq(WEXITSTATUS(st), 22, "exit %d, output: %s", WEXITSTATUS(st), buf);
	cr_assert(strstr(buf, "FLASHER_ECANCELLED"), "%s", buf);
}

/* The host dies (SIGKILL) mid-transfer; a new `flasher update` resumes. */
Test(e2e_cli, host_killed_then_resumes, .fini = teardown, .timeout = 120)
{
	e2e_pkg_spec a = {.version = "1.3.0", .cm7_size = 380 * 1024, .cm4_size = 200 * 1024, .seed = 24};
	const char *pa = e2e_make_pkg("a.pkg", &a);
	e2e_devsim_start(&dev, e2e_path("unit.flash"), NULL); /* usb-fs rate */
	int p[2];
	cr_assert_eq(pipe(p), 0);
	pid_t pid = fork();
	if (pid == 0) {
		dup2(p[1], 1);
		close(p[0]);
		close(p[1]);
		execl(FLASHER_CLI_PATH, FLASHER_CLI_PATH, "update", dev.pty, pa, "--json", (char *)NULL);
		_exit(127);
	}
	close(p[1]);
	/* wait until a good part is acknowledged */
	char buf[1 << 16];
	size_t len = 0;
	buf[0] = '\0';
	while (len < sizeof buf - 1) {
		char *last = strstr(buf, "\"bytes_done\":");
		long done = 0;
		for (char *q = last; q; q = strstr(q + 1, "\"bytes_done\":"))
			done = atol(q + 13);
		if (done > 150 * 1024)
			break;
		struct pollfd pfd = {p[0], POLLIN, 0};
		cr_assert_gt(poll(&pfd, 1, 30000), 0, "no progress");
		ssize_t n = read(p[0], buf + len, sizeof buf - 1 - len);
		cr_assert_gt(n, 0, "the update ended before it was killed");
		len += (size_t)n;
		buf[len] = '\0';
	}
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	close(p[0]);

	char *out = NULL;
	int rc = e2e_run_cli((const char *const[]){"update", dev.pty, pa, "--json", NULL}, &out, 120);
	cr_assert_eq(rc, 0, "exit %d: %s", rc, out);
	cJSON *j = last_event(out);
	cr_assert_str_eq(str(j, "event"), "done");
	double resumed = cJSON_GetNumberValue(cJSON_GetObjectItem(j, "resumed_bytes"));
	cr_assert_geq(resumed, 150 * 1024 - 32 * 1024, "resumed only %.0f bytes", resumed);
	cJSON_Delete(j);
	free(out);
}
