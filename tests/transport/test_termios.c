/* termios backend over a real pty pair. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <pty.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include "flasher.h"

static int master = -1;
static char slave_path[128];

static void open_pair(void)
{
	int slave;
	struct termios raw;
	cfmakeraw(&raw);
	cr_assert_eq(openpty(&master, &slave, slave_path, &raw, NULL), 0, "openpty: %s", strerror(errno));
	/* Closing our slave fd: the transport opens its own by path. */
	close(slave);
}

static void read_exact(int fd, uint8_t *buf, size_t len)
{
	size_t got = 0;
	while (got < len) {
		ssize_t n = read(fd, buf + got, len - got);
		cr_assert_gt(n, 0, "pty master read: %s", strerror(errno));
		got += (size_t)n;
	}
}

TestSuite(transport_termios, .init = open_pair, .timeout = 20);

Test(transport_termios, round_trip_both_ways_and_counts_bytes)
{
	flasher_transport *t;
	cr_assert_eq(flasher_transport_open(&t, slave_path), 0, "%s", flasher_error_last());
	cr_expect(strncmp(flasher_transport_description(t), "termios:", 8) == 0, "backend %s",
	          flasher_transport_description(t));

	uint8_t out[3000], back[3000];
	for (size_t i = 0; i < sizeof out; i++)
		out[i] = (uint8_t)(i * 31 + 7);
	cr_assert_eq(flasher_transport_write(t, out, sizeof out, 2000), 0, "%s", flasher_error_last());
	read_exact(master, back, sizeof back);
	cr_assert_arr_eq(out, back, sizeof out, "bytes changed on the way to the unit (raw mode?)");

	/* Including 0x00, 0x11/0x13 (XON/XOFF) and \r\n which a cooked tty would eat. */
	const uint8_t special[] = {0x00, 0x11, 0x13, '\r', '\n', 0x03, 0x7f, 0xff};
	cr_assert_eq(write(master, special, sizeof special), (ssize_t)sizeof special);
	uint8_t in[64];
	size_t got = 0;
	while (got < sizeof special) {
		int n = flasher_transport_read(t, in + got, sizeof in - got, 2000);
		cr_assert_gt(n, 0, "read returned %d: %s", n, flasher_error_last());
		got += (size_t)n;
	}
	cr_assert_eq(got, sizeof special);
	cr_assert_arr_eq(in, special, sizeof special);

	uint64_t w, r;
	flasher_transport_counters(t, &w, &r);
	cr_expect_eq(w, sizeof out);
	cr_expect_eq(r, sizeof special);
	flasher_transport_close(t);
}

Test(transport_termios, read_times_out_with_zero_and_returns_early_with_data)
{
	flasher_transport *t;
	cr_assert_eq(flasher_transport_open(&t, slave_path), 0, "%s", flasher_error_last());
	uint8_t b[16];
	cr_expect_eq(flasher_transport_read(t, b, sizeof b, 50), 0, "nothing sent yet, read must time out");
	cr_expect_eq(flasher_transport_read(t, b, sizeof b, 0), 0, "poll read with nothing there");
	cr_assert_eq(write(master, "ab", 2), 2);
	/* A long timeout with bytes already there returns them, not a full buffer. */
	int n = flasher_transport_read(t, b, sizeof b, 10000);
	cr_assert(n >= 1 && n <= 2, "read returned %d", n);
	flasher_transport_close(t);
}

Test(transport_termios, unit_hangup_is_disconnected)
{
	flasher_transport *t;
	cr_assert_eq(flasher_transport_open(&t, slave_path), 0, "%s", flasher_error_last());
	close(master);
	uint8_t b[16];
	int n = flasher_transport_read(t, b, sizeof b, 2000);
	cr_expect_eq(n, FLASHER_EDISCONNECTED, "read after hangup gave %d (%s)", n, flasher_error_last());
	flasher_transport_close(t);
}

Test(transport_termios, symlink_to_pty_opens_with_termios)
{
	char link[64];
	snprintf(link, sizeof link, "/tmp/flasher-test-link-%d", (int)getpid());
	unlink(link);
	cr_assert_eq(symlink(slave_path, link), 0);
	flasher_transport *t;
	int rc = flasher_transport_open(&t, link);
	unlink(link);
	cr_assert_eq(rc, 0, "%s", flasher_error_last());
	cr_expect(strstr(flasher_transport_description(t), "termios:") != NULL);
	cr_assert_eq(flasher_transport_write(t, (const uint8_t *)"x", 1, 1000), 0);
	char c = 0;
	cr_assert_eq(read(master, &c, 1), 1);
	cr_expect_eq(c, 'x');
	flasher_transport_close(t);
}

Test(transport_open, missing_path_is_not_found_and_named)
{
	flasher_transport *t = NULL;
	int rc = flasher_transport_open(&t, "/dev/ttyNOPE42");
	cr_expect_eq(rc, FLASHER_ENOTFOUND);
	cr_expect_null(t);
	cr_expect(strstr(flasher_error_last(), "/dev/ttyNOPE42") != NULL, "detail: %s", flasher_error_last());
}

Test(transport_open, regular_file_is_refused)
{
	char path[] = "/tmp/flasher-test-file-XXXXXX";
	int fd = mkstemp(path);
	cr_assert_geq(fd, 0);
	close(fd);
	flasher_transport *t = NULL;
	int rc = flasher_transport_open(&t, path);
	unlink(path);
	cr_expect_eq(rc, FLASHER_EINVAL, "a plain file is no port: %d %s", rc, flasher_error_last());
}

Test(transport_open, permission_denied_names_path_and_dialout)
{
	open_pair();
	cr_assert_eq(chmod(slave_path, 0), 0);
	/* Root ignores file modes: become nobody (Criterion runs each test in
	 * its own process, so this does not leak). */
	if (geteuid() == 0)
		cr_assert(setgid(65534) == 0 && setuid(65534) == 0, "cannot drop to uid 65534");
	flasher_transport *t = NULL;
	int rc = flasher_transport_open(&t, slave_path);
	cr_expect_eq(rc, FLASHER_EPERM, "rc %d: %s", rc, flasher_error_last());
	cr_expect(strstr(flasher_error_last(), slave_path) != NULL, "detail: %s", flasher_error_last());
	cr_expect(strstr(flasher_error_last(), "dialout") != NULL, "detail: %s", flasher_error_last());
}

Test(transport_open, empty_spec_is_invalid)
{
	flasher_transport *t = NULL;
	cr_expect_eq(flasher_transport_open(&t, ""), FLASHER_EINVAL);
	cr_expect_eq(flasher_transport_open(&t, "tcp:nohostport"), FLASHER_EINVAL);
}
