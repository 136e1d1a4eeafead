/* Stopping an update: SIGINT, SIGTERM, SIGHUP and SIGPIPE before
 * activation stop it cleanly, send the unit back to its application, keep
 * the staged bytes for a resume, and the CLI's last line says so; after
 * activation a signal does not lie: the unit installs the new firmware and
 * the CLI reports the true outcome. A cancel between two operations does
 * not cancel the next one, and a success leaves no stale error detail. */
#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "e2e.h"
#include "flboot/image.h"
#include "flboot/proto.h"

static e2e_devsim dev;

static void teardown(void)
{
	e2e_devsim_kill(&dev, SIGTERM);
	e2e_cleanup();
}

struct cli {
	pid_t pid;
	int out;          /* its stdout (--json events) */
	char buf[1 << 16];
	size_t len;
};

/* flasher update PORT PKG --json, stderr to err_path. */
static void cli_start(struct cli *c, const char *pkg, const char *err_path)
{
	int p[2];
	cr_assert_eq(pipe(p), 0);
	c->pid = fork();
	cr_assert_neq(c->pid, -1);
	if (c->pid == 0) {
		signal(SIGPIPE, SIG_DFL);
		dup2(p[1], 1);
		int e = open(err_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		dup2(e, 2);
		close(p[0]);
		close(p[1]);
		execl(FLASHER_CLI_PATH, FLASHER_CLI_PATH, "update", dev.pty, pkg, "--json", (char *)NULL);
		_exit(127);
	}
	close(p[1]);
	c->out = p[0];
	c->len = 0;
	c->buf[0] = '\0';
}

/* Read events until one contains both a and b (b may be NULL). */
static void cli_wait_for(struct cli *c, const char *a, const char *b)
{
	for (;;) {
		char *line = c->buf;
		for (char *nl; (nl = strchr(line, '\n')); line = nl + 1) {
			*nl = '\0';
			int hit = strstr(line, a) && (!b || strstr(line, b));
			*nl = '\n';
			if (hit) {
				memmove(c->buf, nl + 1, c->len - (size_t)(nl + 1 - c->buf) + 1);
				c->len -= (size_t)(nl + 1 - c->buf);
				return;
			}
		}
		struct pollfd pfd = {c->out, POLLIN, 0};
		cr_assert_gt(poll(&pfd, 1, 30000), 0, "no event with %s", a);
		ssize_t n = read(c->out, c->buf + c->len, sizeof c->buf - 1 - c->len);
		cr_assert_gt(n, 0, "the CLI ended before %s: %s", a, c->buf);
		c->len += (size_t)n;
		c->buf[c->len] = '\0';
	}
}

static int cli_exit(struct cli *c)
{
	if (c->out >= 0) {
		char junk[4096];
		while (read(c->out, junk, sizeof junk) > 0)
			;
		close(c->out);
	}
	int st;
	waitpid(c->pid, &st, 0);
	cr_assert(WIFEXITED(st), "the CLI died of signal %d", WIFSIGNALED(st) ? WTERMSIG(st) : 0);
	return WEXITSTATUS(st);
}

static void last_line(const char *path, char *out, size_t size)
{
	FILE *f = fopen(path, "r");
	cr_assert_not_null(f);
	char line[2048];
	out[0] = '\0';
	while (fgets(line, sizeof line, f))
		if (line[0] != '\n')
			snprintf(out, size, "%s", line);
	fclose(f);
}

static void unit_v1_in_application(const char *v2_path, const char *v1_path)
{
	(void)v2_path;
	e2e_devsim_start(&dev, e2e_path("unit.flash"), NULL); /* usb-fs rate: the transfer takes a while */
	cr_assert_eq(e2e_update(dev.pty, v1_path, NULL, NULL, NULL), 0, "%s", flasher_error_last());
}

static int stop_sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGPIPE};

ParameterizedTestParameters(e2e_stop, before_activation)
{
	return cr_make_param_array(int, stop_sigs, sizeof stop_sigs / sizeof stop_sigs[0]);
}

ParameterizedTest(int *sig, e2e_stop, before_activation, .fini = teardown, .timeout = 240)
{
	e2e_pkg_spec v1 = {.version = "1.0.0", .cm7_size = 32 * 1024, .seed = 71};
	e2e_pkg_spec v2 = {.version = "2.0.0", .cm7_size = 380 * 1024, .cm4_size = 200 * 1024, .seed = 72};
	const char *p1 = e2e_make_pkg("v1.pkg", &v1);
	const char *p2 = e2e_make_pkg("v2.pkg", &v2);
	unit_v1_in_application(p2, p1);
	struct cli c;
	cli_start(&c, p2, e2e_path("err.txt"));
	cli_wait_for(&c, "\"bytes_done\"", "\"core\":\"cm4\""); /* cm7 is staged by then */
	if (*sig == SIGPIPE) { /* `| head`: the reader goes away */
		close(c.out);
		c.out = -1;
	} else {
		kill(c.pid, *sig);
	}
	int rc = cli_exit(&c);
	char line[2048];
	last_line(e2e_path("err.txt"), line, sizeof line);
	cr_assert_eq(rc, 22, "exit %d, last line: %s", rc, line);
	cr_expect(strstr(line, "runs its application 1.0.0 again"), "the last line says where the unit is: %s", line);
	cr_expect(strstr(line, "re-running the same update resumes"), "%s", line);
	flasher_unit_info info;
	cr_assert_eq(e2e_info(dev.pty, &info), 0, "%s", flasher_error_last());
	cr_expect_eq(info.mode, FLASHER_MODE_APPLICATION);
	cr_expect_eq(info.cm7_version, FLBOOT_VERSION(1, 0, 0));
	/* the staged bytes were kept: the re-run resumes */
	flasher_update_result r;
	int err = e2e_update(dev.pty, p2, NULL, NULL, &r);
	cr_assert_eq(err, 0, "%s: %s", flasher_error_name(err), flasher_error_last());
	cr_expect_geq(r.resumed_bytes, 380 * 1024, "the staged cm7 image was not kept: resumed %llu",
	              (unsigned long long)r.resumed_bytes);
	cr_expect_eq(r.after.cm7_version, FLBOOT_VERSION(2, 0, 0));
}

/* A signal after activation: the update goes on to the true outcome. */
Test(e2e_stop, after_activation_reports_the_true_outcome, .fini = teardown, .timeout = 240)
{
	e2e_pkg_spec v1 = {.version = "1.0.0", .cm7_size = 32 * 1024, .seed = 73};
	e2e_pkg_spec v2 = {.version = "2.1.0", .cm7_size = 64 * 1024, .seed = 74};
	const char *p1 = e2e_make_pkg("v1.pkg", &v1);
	const char *p2 = e2e_make_pkg("v2.pkg", &v2);
	unit_v1_in_application(p2, p1);
	struct cli c;
	cli_start(&c, p2, e2e_path("err.txt"));
	cli_wait_for(&c, "\"phase\"", "\"activate\"");
	kill(c.pid, SIGINT);
	int rc = cli_exit(&c);
	FILE *f = fopen(e2e_path("err.txt"), "r");
	char all[8192];
	size_t n = fread(all, 1, sizeof all - 1, f);
	all[n] = '\0';
	fclose(f);
	cr_assert_eq(rc, 0, "exit %d: %s", rc, all);
	cr_expect(strstr(all, "installing the new firmware"), "%s", all);
	flasher_unit_info info;
	cr_assert_eq(e2e_info(dev.pty, &info), 0);
	cr_expect_eq(info.cm7_version, FLBOOT_VERSION(2, 1, 0));
	cr_expect_eq(info.state, FLASHER_STATE_CONFIRMED);
}

/* A cancel asked while no operation runs is not the next one's; a success
 * clears the error detail. */
Test(e2e_stop, cancel_is_not_sticky_and_success_clears_the_detail, .fini = teardown, .timeout = 60)
{
	e2e_devsim_start(&dev, e2e_path("unit.flash"), (const char *const[]){"--link-rate", "none", NULL});
	flasher_session *s;
	cr_assert_eq(flasher_session_open(&s, dev.pty, NULL), 0, "%s", flasher_error_last());
	flasher_session_cancel(s);
	flasher_unit_info info;
	cr_expect_eq(flasher_session_info(s, &info), 0, "a cancel between operations cancelled the next: %s",
	             flasher_error_last());
	flasher_session *t = NULL;
	cr_expect_eq(flasher_session_open(&t, "/nonexistent/tty", NULL), FLASHER_ENOTFOUND);
	cr_expect_neq(flasher_error_last()[0], '\0');
	cr_expect_eq(flasher_session_info(s, &info), 0);
	cr_expect_str_eq(flasher_error_last(), "", "stale detail after a success");
	flasher_session_close(s);
}

/* A port where nothing answers: `connecting...` at once, and --timeout ends
 * the wait (exit 17). A pty nobody serves stands for a dead unit. */
Test(e2e_stop, dead_port_connecting_and_total_timeout, .fini = teardown, .timeout = 60)
{
	e2e_devsim_start(&dev, e2e_path("unit.flash"), (const char *const[]){"--link-rate", "none", NULL});
	kill(dev.pid, SIGSTOP); /* the unit hangs: its pty stays, nothing answers */
	char *out = NULL;
	int rc = e2e_run_prog("/bin/sh",
	                      (const char *const[]){"-c", "\"$0\" info \"$1\" --timeout 1500 2>&1", FLASHER_CLI_PATH, dev.pty,
	                                            NULL},
	                      &out, 30);
	kill(dev.pid, SIGCONT);
	cr_expect_eq(rc, 17, "exit %d: %s", rc, out);
	cr_expect(!strncmp(out, "connecting to ", 14), "the first line: %s", out);
	cr_expect(strstr(out, "--timeout"), "%s", out);
	free(out);
}
