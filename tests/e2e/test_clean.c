/* A clean line costs no timeout and no retransmission, also where the host
 * buffers a whole window at once (a socket here, a ttyACM on a desk) and the
 * unit takes real flash time: the erase a DATA waits for is in the unit's
 * announced worst case (HELLO.erase_max_ms), not taken for a lost frame. */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>

#include "e2e.h"

static e2e_devsim dev;

static void teardown(void)
{
	e2e_devsim_kill(&dev, SIGTERM);
	e2e_cleanup();
}

Test(e2e_clean, erase_during_data_is_no_timeout, .fini = teardown, .timeout = 240)
{
	/* cm7 ends in its slot's second sector: without background erases the
	 * DATA entering it waits the whole 1.1 s erase (the host's own timeout
	 * is 1 s); the default link model (usb-fs, 2 KiB credit, 1 ms latency,
	 * 1 s re-enumeration after the reboot) */
	e2e_pkg_spec spec = {.version = "1.0.1", .cm7_size = 200 * 1024, .cm4_size = 40 * 1024, .seed = 16};
	const char *pkg = e2e_make_pkg("clean.pkg", &spec);
	char listen[600];
	snprintf(listen, sizeof listen, "unix:%s", e2e_path("unit.sock"));
	e2e_devsim_start(&dev, e2e_path("unit.flash"),
	                 (const char *const[]){"--listen", listen, "--timing", "real", NULL});

	flasher_update_options uo = FLASHER_UPDATE_OPTIONS_INIT;
	uo.compress = 0; /* every byte on the wire: the window is full */
	flasher_update_result res;
	int err = e2e_update(dev.pty, pkg, &uo, NULL, &res);
	cr_assert_eq(err, 0, "update: %s", flasher_error_last());
	cr_expect_eq(res.timeouts, 0, "%u timeouts on a clean line", (unsigned)res.timeouts);
	cr_expect_eq(res.retransmits, 0, "%u DATA frames sent again on a clean line", (unsigned)res.retransmits);
	cr_expect_eq(res.sent_bytes, (uint64_t)(200 + 40) * 1024, "sent %llu payload bytes",
	             (unsigned long long)res.sent_bytes);
}
