/* Identity: a session is bound to the unit it first spoke to. Another unit
 * that turns up on its port (a swapped cable, a reused pty) is never written
 * to and never reported on; the session keeps looking for its own unit and
 * finishes when it comes back, or fails naming both uids.
 *
 * The swap: unit A serves the symlink L (devsim --link); at a chosen update
 * phase the progress callback stops A and starts unit B on L; a helper
 * thread later stops B and brings A back on L (unless the test wants A to
 * stay away). B records its flash work (--stats): it must have none. */
#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "e2e.h"

static e2e_devsim unit_a, unit_b;

static void teardown(void)
{
	e2e_devsim_kill(&unit_b, SIGTERM);
	e2e_devsim_kill(&unit_a, SIGTERM);
	e2e_cleanup();
}

static void start_a(void)
{
	e2e_devsim_start(&unit_a, e2e_path("a.flash"),
	                 (const char *const[]){"--serial", "unit-A", "--link", e2e_path("ttyL"), "--link-rate", "none",
	                                       NULL});
}

static void start_b(void)
{
	e2e_devsim_start(&unit_b, e2e_path("b.flash"),
	                 (const char *const[]){"--serial", "unit-B", "--link", e2e_path("ttyL"), "--link-rate", "none",
	                                       "--stats", e2e_path("b.stats"), NULL});
}

struct swap {
	flasher_phase at;     /* swap at this phase ... */
	int after_activate;   /* ... once ACTIVATE was reported (1) or before it (0) */
	int bring_back;       /* A comes back after B */
	int seen_activate;
	int swapped;
	pthread_t thread;
};

static void *bring_a_back(void *arg)
{
	(void)arg;
	sleep(3); /* the session meets B meanwhile (HELLO every ~200 ms) */
	e2e_devsim_kill(&unit_b, SIGTERM);
	start_a();
	return NULL;
}

static int swap_cb(const flasher_progress *p, void *payload)
{
	struct swap *w = payload;
	if (p->phase == FLASHER_PHASE_ACTIVATE)
		w->seen_activate = 1;
	if (w->swapped || p->phase != w->at || w->seen_activate != w->after_activate)
		return 0;
	w->swapped = 1;
	e2e_devsim_kill(&unit_a, SIGTERM); /* A's cable out ... */
	start_b();                         /* ... B's cable in, on the same port */
	if (w->bring_back)
		cr_assert_eq(pthread_create(&w->thread, NULL, bring_a_back, NULL), 0);
	return 0;
}

/* B's --stats after it stopped: no erase, no program. */
static void assert_b_untouched(void)
{
	e2e_devsim_kill(&unit_b, SIGTERM);
	FILE *f = fopen(e2e_path("b.stats"), "r");
	cr_assert_not_null(f, "unit B wrote no stats");
	char buf[4096];
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = '\0';
	cJSON *j = cJSON_Parse(buf);
	cr_assert_not_null(j, "%s", buf);
	cr_assert_eq(cJSON_GetNumberValue(cJSON_GetObjectItem(j, "word_programs")), 0, "B was written to: %s", buf);
	const cJSON *e;
	cJSON_ArrayForEach(e, cJSON_GetObjectItem(j, "sector_erases"))
		cr_assert_eq(cJSON_GetNumberValue(e), 0, "B was erased: %s", buf);
	cJSON_Delete(j);
}

static void uid_of(const char *port, char uid[25])
{
	flasher_unit_info info;
	int err = e2e_info(port, &info);
	cr_assert_eq(err, 0, "%s: %s", flasher_error_name(err), flasher_error_last());
	memcpy(uid, info.uid, 25);
}

static int update_with_swap(const char *pkg, struct swap *w, int reconnect_ms, flasher_update_result *res)
{
	flasher_update_options uo = FLASHER_UPDATE_OPTIONS_INIT;
	uo.progress = swap_cb;
	uo.payload = w;
	flasher_session_options so = FLASHER_SESSION_OPTIONS_INIT;
	so.reconnect_timeout_ms = reconnect_ms;
	int err = e2e_update(e2e_path("ttyL"), pkg, &uo, &so, res);
	if (w->bring_back && w->swapped)
		pthread_join(w->thread, NULL);
	return err;
}

/* The unit is swapped right after activation, before the reboot: the update
 * waits past B and reports A running the new firmware. */
Test(e2e_identity, swapped_after_activation_finds_its_unit_again, .fini = teardown, .timeout = 180)
{
	e2e_pkg_spec spec = {.version = "2.0.0", .cm7_size = 64 * 1024, .cm4_size = 32 * 1024, .seed = 41};
	const char *pkg = e2e_make_pkg("v2.pkg", &spec);
	start_a();
	char uid_a[25];
	uid_of(e2e_path("ttyL"), uid_a);
	struct swap w = {.at = FLASHER_PHASE_REBOOT, .after_activate = 1, .bring_back = 1};
	flasher_update_result res;
	int err = update_with_swap(pkg, &w, 30000, &res);
	cr_assert(w.swapped);
	cr_assert_eq(err, 0, "%s: %s", flasher_error_name(err), flasher_error_last());
	cr_assert_str_eq(res.after.uid, uid_a, "reported unit %s, updated %s", res.after.uid, uid_a);
	cr_assert_eq(res.after.cm7_version, res.new_version);
	flasher_unit_info now;
	cr_assert_eq(e2e_info(e2e_path("ttyL"), &now), 0);
	cr_assert_str_eq(now.uid, uid_a);
	cr_assert_eq(now.cm7_version, res.new_version);
	cr_assert_eq(now.state, FLASHER_STATE_CONFIRMED);
	assert_b_untouched(); /* B saw nothing but HELLOs */
}

/* Swapped while the application is asked into the bootloader, before any
 * image is sent: nothing goes to B, and A gets the images when it is back. */
Test(e2e_identity, swapped_before_transfer_writes_nothing_to_the_other_unit, .fini = teardown, .timeout = 180)
{
	e2e_pkg_spec v1 = {.version = "1.0.0", .cm7_size = 48 * 1024, .cm4_size = 16 * 1024, .seed = 42};
	e2e_pkg_spec v2 = {.version = "1.1.0", .cm7_size = 48 * 1024, .cm4_size = 16 * 1024, .seed = 43};
	const char *p1 = e2e_make_pkg("v1.pkg", &v1);
	const char *p2 = e2e_make_pkg("v2.pkg", &v2);
	start_a();
	char uid_a[25];
	uid_of(e2e_path("ttyL"), uid_a);
	cr_assert_eq(e2e_update(e2e_path("ttyL"), p1, NULL, NULL, NULL), 0, "%s", flasher_error_last());
	/* A runs its application now: the update reboots it into the bootloader first */
	struct swap w = {.at = FLASHER_PHASE_REBOOT, .after_activate = 0, .bring_back = 1};
	flasher_update_result res;
	int err = update_with_swap(p2, &w, 30000, &res);
	cr_assert(w.swapped);
	cr_assert_eq(err, 0, "%s: %s", flasher_error_name(err), flasher_error_last());
	cr_assert_str_eq(res.after.uid, uid_a);
	cr_assert_eq(res.after.cm7_version, res.new_version);
	cr_assert_eq(res.resumed_bytes, 0);
	assert_b_untouched();
}

/* A never comes back: the update fails, naming both units, and never
 * reports B. */
Test(e2e_identity, own_unit_gone_fails_naming_both_uids, .fini = teardown, .timeout = 120)
{
	e2e_pkg_spec spec = {.version = "3.0.0", .cm7_size = 32 * 1024, .seed = 44};
	const char *pkg = e2e_make_pkg("v3.pkg", &spec);
	start_b();
	char uid_b[25];
	uid_of(e2e_path("ttyL"), uid_b);
	e2e_devsim_kill(&unit_b, SIGTERM);
	start_a();
	char uid_a[25];
	uid_of(e2e_path("ttyL"), uid_a);
	cr_assert_str_neq(uid_a, uid_b);
	struct swap w = {.at = FLASHER_PHASE_REBOOT, .after_activate = 1, .bring_back = 0};
	flasher_update_result res;
	int err = update_with_swap(pkg, &w, 3000, &res);
	cr_assert(w.swapped);
	cr_assert_eq(err, FLASHER_ENOTFOUND, "%s: %s", flasher_error_name(err), flasher_error_last());
	const char *msg = flasher_error_last();
	cr_assert(strstr(msg, uid_a) && strstr(msg, uid_b), "the error names both uids: %s", msg);
	assert_b_untouched();
}
