/* A recorded update replays against the host code: the field-problem ->
 * regression-test path of docs/recording.md, through the real CLI. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "e2e.h"

static void flip_last_answer_byte(const char *from, const char *to)
{
	/* Change one hex digit in the last unit->host chunk (an ACK or END
	 * answer): the host must notice (CRC of the frame, or a different
	 * answer), never act on it. */
	FILE *f = fopen(from, "r");
	cr_assert_not_null(f);
	char *text = NULL;
	size_t cap = 0, len = 0;
	char buf[65536];
	size_t n;
	while ((n = fread(buf, 1, sizeof buf, f)) > 0) {
		text = realloc(text, cap = len + n + 1);
		memcpy(text + len, buf, n);
		len += n;
	}
	fclose(f);
	text[len] = '\0';
	char *r = NULL;
	for (char *p = strstr(text, " R "); p; p = strstr(p + 1, " R "))
		r = p;
	cr_assert_not_null(r, "recording has no unit->host chunk");
	char *digit = r + 3 + 20; /* inside the frame, past the COBS code bytes */
	*digit = *digit == '0' ? '1' : '0';
	f = fopen(to, "w");
	fwrite(text, 1, len, f);
	fclose(f);
	free(text);
}

Test(replay, recorded_update_replays_and_tampered_answers_fail, .timeout = 300)
{
	e2e_pkg_spec spec = {.version = "1.4.0", .cm7_size = 70000, .cm4_size = 30000, .seed = 5, .compressible = 1};
	const char *pkg = e2e_make_pkg("r.pkg", &spec);
	const char *rec = e2e_path("update.rec");
	e2e_devsim unit;
	char *out = NULL;

	e2e_devsim_start(&unit, e2e_path("unit.flash"), NULL);
	int rc = e2e_run_cli((const char *const[]){"update", unit.pty, pkg, "--no-reboot", "--record", rec, "--json", NULL},
	                     &out, 120);
	e2e_devsim_kill(&unit, 9);
	cr_assert_eq(rc, 0, "recorded update failed: %s", out ? out : "");
	free(out);

	/* The unit is gone; its recorded answers stand in for it. */
	char spec_arg[600];
	snprintf(spec_arg, sizeof spec_arg, "replay:%s", rec);
	rc = e2e_run_cli((const char *const[]){"update", spec_arg, pkg, "--no-reboot", "--json", NULL}, &out, 120);
	cr_assert_eq(rc, 0, "replay of the recorded update failed: %s", out ? out : "");
	cr_assert(strstr(out, "\"event\":\"done\""), "no done event in replay: %s", out);
	free(out);

	/* Another package makes the host send other bytes: replay refuses. */
	e2e_pkg_spec other = spec;
	other.seed = 6;
	const char *pkg2 = e2e_make_pkg("other.pkg", &other);
	rc = e2e_run_cli((const char *const[]){"update", spec_arg, pkg2, "--no-reboot", NULL}, &out, 120);
	free(out);
	cr_assert_neq(rc, 0, "replay accepted bytes the recording does not have");

	/* A corrupted unit answer never passes for a good one. */
	const char *bad = e2e_path("tampered.rec");
	flip_last_answer_byte(rec, bad);
	snprintf(spec_arg, sizeof spec_arg, "replay:%s", bad);
	rc = e2e_run_cli((const char *const[]){"update", spec_arg, pkg, "--no-reboot", NULL}, &out, 120);
	free(out);
	cr_assert_neq(rc, 0, "update succeeded on a tampered recording");
	e2e_cleanup();
}
