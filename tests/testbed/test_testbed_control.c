/* Runs inside `flasher-testbed --units 1 --control SOCK`: units come and go
 * and simulators restart while this process runs. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "flasher.h"

static void command(const char *cmd, char *answer, size_t cap)
{
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	snprintf(sa.sun_path, sizeof sa.sun_path, "%s", TESTBED_CONTROL);
	cr_assert_eq(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0, "control socket %s", TESTBED_CONTROL);
	cr_assert_eq(write(fd, cmd, strlen(cmd)), (ssize_t)strlen(cmd));
	size_t len = 0;
	while (len < cap - 1) {
		ssize_t n = read(fd, answer + len, cap - 1 - len);
		cr_assert_gt(n, 0, "no answer to %s", cmd);
		len += (size_t)n;
		if (answer[len - 1] == '\n')
			break;
	}
	answer[len] = '\0';
	close(fd);
}

static size_t count_units(void)
{
	flasher_port_info *ports;
	size_t n;
	cr_assert_eq(flasher_port_list(&ports, &n, 0), 0);
	flasher_port_list_free(ports);
	return n;
}

static void echo_once(const char *port)
{
	flasher_transport *t;
	cr_assert_eq(flasher_transport_open(&t, port), 0, "%s: %s", port, flasher_error_last());
	cr_assert_eq(flasher_transport_write(t, (const uint8_t *)"ping", 4, 2000), 0);
	uint8_t b[4];
	size_t got = 0;
	while (got < 4) {
		int n = flasher_transport_read(t, b + got, 4 - got, 5000);
		cr_assert_gt(n, 0, "no echo from %s: %d %s", port, n, flasher_error_last());
		got += (size_t)n;
	}
	cr_expect_arr_eq(b, "ping", 4);
	flasher_transport_close(t);
}

TestSuite(testbed_control, .timeout = 60);

Test(testbed_control, add_and_remove_units)
{
	char a[256], serial[32], path[32];
	cr_assert_eq(count_units(), 1);
	command("add\n", a, sizeof a);
	int idx;
	cr_assert_eq(sscanf(a, "ok %d %31s %31s", &idx, path, serial), 3, "answer: %s", a);
	cr_expect_str_eq(path, "/dev/ttyACM1");
	cr_expect_eq(count_units(), 2);
	char found[64];
	cr_assert_eq(flasher_port_find(serial, found, sizeof found), 0, "%s", flasher_error_last());
	cr_expect_str_eq(found, path);
	echo_once(path);

	command("remove 1\n", a, sizeof a);
	cr_expect_str_eq(a, "ok removed 1\n");
	cr_expect_eq(count_units(), 1);
	cr_expect_eq(flasher_port_find(serial, found, sizeof found), FLASHER_ENOTFOUND);
	command("remove 7\n", a, sizeof a);
	cr_expect(strncmp(a, "error", 5) == 0, "answer: %s", a);
}

Test(testbed_control, relay_survives_a_simulator_restart)
{
	char a[256];
	echo_once("/dev/ttyACM0");
	command("kill 0\n", a, sizeof a);
	cr_assert_str_eq(a, "ok killed 0\n");
	/* Nobody answers while the unit is down. */
	flasher_transport *t;
	cr_assert_eq(flasher_transport_open(&t, "/dev/ttyACM0"), 0, "%s", flasher_error_last());
	cr_assert_eq(flasher_transport_write(t, (const uint8_t *)"lost", 4, 2000), 0);
	uint8_t b[8];
	cr_expect_eq(flasher_transport_read(t, b, sizeof b, 200), 0);
	flasher_transport_close(t);
	command("restart 0\n", a, sizeof a);
	cr_assert_str_eq(a, "ok restarted 0\n");
	echo_once("/dev/ttyACM0");
}
