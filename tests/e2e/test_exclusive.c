/* One owner per unit: while a session holds a unit, a second one (another
 * process, or another session of this one) gets FLASHER_EBUSY at once,
 * naming the holder, and the first is not disturbed. */
#include <criterion/criterion.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
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

/* Start `flasher update PORT PKG --json` and return once it reported
 * transfer progress (it holds the unit then); *fd is its stdout. */
static pid_t start_update(const char *port, const char *pkg, int *fd)
{
	int p[2];
	cr_assert_eq(pipe(p), 0);
	pid_t pid = fork();
	cr_assert_neq(pid, -1);
	if (pid == 0) {
		dup2(p[1], 1);
		close(p[0]);
		close(p[1]);
		execl(FLASHER_CLI_PATH, FLASHER_CLI_PATH, "update", port, pkg, "--json", (char *)NULL);
		_exit(127);
	}
	close(p[1]);
	char buf[8192];
	size_t len = 0;
	buf[0] = '\0';
	while (!strstr(buf, "\"bytes_done\"") && len < sizeof buf - 1) {
		struct pollfd pfd = {p[0], POLLIN, 0};
		cr_assert_gt(poll(&pfd, 1, 30000), 0, "the first update reported no progress");
		ssize_t n = read(p[0], buf + len, sizeof buf - 1 - len);
		cr_assert_gt(n, 0, "the first update ended before it transferred: %s", buf);
		len += (size_t)n;
		buf[len] = '\0';
	}
	*fd = p[0];
	return pid;
}

static int wait_exit(pid_t pid, int fd)
{
	char buf[4096];
	while (read(fd, buf, sizeof buf) > 0)
		;
	close(fd);
	int st = 0;
	waitpid(pid, &st, 0);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

Test(e2e_exclusive, two_updates_from_two_processes, .fini = teardown, .timeout = 240)
{
	e2e_pkg_spec spec = {.version = "4.2.0", .cm7_size = 300 * 1024, .cm4_size = 100 * 1024, .seed = 51};
	const char *pkg = e2e_make_pkg("a.pkg", &spec);
	e2e_devsim_start(&dev, e2e_path("unit.flash"), NULL); /* usb-fs rate: the first update takes a while */
	int fd;
	pid_t first = start_update(dev.pty, pkg, &fd);
	char *out = NULL;
	int rc = e2e_run_cli((const char *const[]){"update", dev.pty, pkg, "--json", NULL}, &out, 60);
	cr_expect_eq(rc, 23, "the second update exited %d: %s", rc, out);
	cr_expect(strstr(out, "FLASHER_EBUSY"), "%s", out);
	char pid_text[32];
	snprintf(pid_text, sizeof pid_text, "pid %ld", (long)first);
	cr_expect(strstr(out, pid_text), "the error names the holder (%s): %s", pid_text, out);
	free(out);
	/* the second one gave up while the first was still at work */
	cr_expect_eq(waitpid(first, NULL, WNOHANG), 0, "the first update had already ended");
	/* the library says the same to another session of any process */
	flasher_session *s = NULL;
	int err = flasher_session_open(&s, dev.pty, NULL);
	cr_expect_eq(err, FLASHER_EBUSY, "%s: %s", flasher_error_name(err), flasher_error_last());
	flasher_session_close(s);
	cr_assert_eq(wait_exit(first, fd), 0, "the first update did not finish");
	flasher_unit_info info;
	cr_assert_eq(e2e_info(dev.pty, &info), 0, "%s", flasher_error_last());
	char v[16];
	flasher_semver_format(info.cm7_version, v, sizeof v);
	cr_expect_str_eq(v, "4.2.0");
	cr_expect_eq(info.state, FLASHER_STATE_CONFIRMED);
}

/* A unit on a socket has no tty to lock: the claim is keyed by its uid. */
Test(e2e_exclusive, socket_unit_claimed_by_uid, .fini = teardown, .timeout = 60)
{
	char listen[600];
	snprintf(listen, sizeof listen, "unix:%s", e2e_path("unit.sock"));
	e2e_devsim_start(&dev, e2e_path("unit.flash"), (const char *const[]){"--listen", listen, NULL});
	const char *port = dev.pty; /* "unix:PATH" */
	flasher_session *a = NULL, *b = NULL;
	cr_assert_eq(flasher_session_open(&a, port, NULL), 0, "%s", flasher_error_last());
	int err = flasher_session_open(&b, port, NULL);
	cr_expect_eq(err, FLASHER_EBUSY, "%s: %s", flasher_error_name(err), flasher_error_last());
	flasher_unit_info info;
	cr_expect_eq(flasher_session_info(a, &info), 0, "the first session was disturbed: %s", flasher_error_last());
	flasher_session_close(b);
	flasher_session_close(a);
	/* released with the session */
	cr_expect_eq(flasher_session_open(&b, port, NULL), 0, "%s", flasher_error_last());
	flasher_session_close(b);
}
