/* Cable pulled: devsim is killed (SIGKILL) at several points of a transfer
 * and restarted on its flash file; the next update resumes from the unit's
 * durable offset and re-sends at most one window. */
#include <criterion/criterion.h>
#include <signal.h>
#include <criterion/parameterized.h>
#include <stdatomic.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "e2e.h"
#include "flboot/image.h"
#include "flboot/proto.h"

static e2e_devsim dev;

static void teardown(void)
{
	e2e_devsim_kill(&dev, SIGTERM);
	e2e_cleanup();
}

typedef struct kill_ctx {
	int transfer_calls;
	int kill_at;
	int killed;
} kill_ctx;

static int kill_after(const flasher_progress *p, void *payload)
{
	kill_ctx *k = payload;
	if (p->phase == FLASHER_PHASE_TRANSFER && ++k->transfer_calls == k->kill_at && !k->killed) {
		e2e_devsim_kill(&dev, SIGKILL); /* the cable is gone, mid-window */
		k->killed = 1;
	}
	return 0;
}

static uint64_t window_bytes(const flasher_unit_info *u)
{
	uint64_t blk = (u->max_payload - 8) & ~31u;
	if (blk > 4096)
		blk = 4096;
	return u->window * blk;
}

typedef struct resume_case {
	int kills[4]; /* progress callbacks (per call) after which devsim dies; 0 ends */
	int link_rate_none;
} resume_case;

ParameterizedTestParameters(e2e_resume, kill_and_resume)
{
	static resume_case cases[] = {
		{{3, 0}, 0},          /* early in cm7 */
		{{60, 0}, 0},         /* inside cm4 (cm7 is staged) */
		{{17, 29, 11, 0}, 1}, /* repeatedly, fast link */
	};
	return cr_make_param_array(resume_case, cases, sizeof cases / sizeof cases[0]);
}

ParameterizedTest(resume_case *c, e2e_resume, kill_and_resume, .fini = teardown, .timeout = 400)
{
	e2e_pkg_spec spec = {.version = "1.2.3", .cm7_size = 160 * 1024 + 64, .cm4_size = 250 * 1024, .seed = 5};
	const char *pkg = e2e_make_pkg("r.pkg", &spec);
	const char *flash = e2e_path("unit.flash");
	const char *fast[] = {"--link-rate", "none", NULL};
	e2e_devsim_start(&dev, flash, c->link_rate_none ? fast : NULL);
	flasher_unit_info u;
	cr_assert_eq(e2e_info(dev.pty, &u), 0, "%s", flasher_error_last());
	uint64_t window = window_bytes(&u);
	cr_assert_gt(window, 0);

	/* call j: R_j = bytes the unit already had (BEGIN answers), S_j = bytes
	 * sent; the unit kept R_{j+1} - R_j of them, so the waste of the cut is
	 * S_j - (R_{j+1} - R_j), which must be at most one window. */
	uint64_t prev_sent = 0, prev_resumed = 0;
	for (int j = 0;; j++) {
		int kill_at = c->kills[j];
		kill_ctx k = {0, kill_at ? kill_at : -1, 0};
		flasher_update_options uo = FLASHER_UPDATE_OPTIONS_INIT;
		uo.progress = kill_after;
		uo.payload = &k;
		flasher_session_options so = FLASHER_SESSION_OPTIONS_INIT;
		so.reconnect_timeout_ms = 3000;
		flasher_update_result r;
		int err = e2e_update(dev.pty, pkg, &uo, &so, &r);
		if (j > 0) {
			cr_assert_geq(r.resumed_bytes, prev_resumed, "the unit lost durable data");
			uint64_t kept = r.resumed_bytes - prev_resumed;
			cr_assert_gt(kept, 0, "cut %d: nothing resumed", j);
			cr_log_info("cut %d after %d progress calls: sent %llu, unit kept %llu, re-sent %llu (window %llu)", j,
			            c->kills[j - 1], (unsigned long long)prev_sent, (unsigned long long)kept,
			            (unsigned long long)(prev_sent - kept), (unsigned long long)window);
			cr_assert_leq(prev_sent - kept, window,
			              "cut %d: sent %llu, unit kept %llu: re-sent %llu > one window (%llu)", j,
			              (unsigned long long)prev_sent, (unsigned long long)kept,
			              (unsigned long long)(prev_sent - kept), (unsigned long long)window);
		}
		if (!kill_at) {
			cr_assert_eq(err, 0, "final update: %s: %s", flasher_error_name(err), flasher_error_last());
			/* Everything not resumed is sent once; on a loaded machine a late
			 * answer may make the host repeat a few frames, each counted. */
			uint64_t remaining = r.payload_bytes - r.resumed_bytes;
			cr_assert_geq(r.sent_bytes, remaining, "the final call sent %llu of the %llu bytes left",
			              (unsigned long long)r.sent_bytes, (unsigned long long)remaining);
			cr_assert_leq(r.sent_bytes - remaining, (uint64_t)r.retransmits * 4096,
			              "the final call sent %llu bytes more than were left, with %u frames repeated",
			              (unsigned long long)(r.sent_bytes - remaining), r.retransmits);
			cr_assert_eq(r.after.cm7_version, FLBOOT_VERSION(1, 2, 3));
			cr_assert_eq(r.after.cm4_version, FLBOOT_VERSION(1, 2, 3));
			cr_assert_eq(r.after.state, FLASHER_STATE_CONFIRMED);
			break;
		}
		cr_assert(k.killed, "kill point %d never reached (%d progress calls)", kill_at, k.transfer_calls);
		cr_assert(err == FLASHER_EDISCONNECTED || err == FLASHER_ETIMEOUT || err == FLASHER_EIO,
		          "after the cut: %s: %s", flasher_error_name(err), flasher_error_last());
		prev_sent = r.sent_bytes;
		prev_resumed = r.resumed_bytes;
		/* plug the unit back in: same flash file, new pty */
		e2e_devsim_start(&dev, flash, c->link_rate_none ? fast : NULL);
	}
}

/* Cancel from another thread mid-transfer: FLASHER_ECANCELLED, and the
 * next update resumes. */
static flasher_session *cancel_target;
static void *cancel_thread(void *arg)
{
	flasher_session_cancel(arg);
	return NULL;
}
static int cancel_at_10(const flasher_progress *p, void *payload)
{
	int *n = payload;
	if (p->phase == FLASHER_PHASE_TRANSFER && ++*n == 10) {
		pthread_t th;
		pthread_create(&th, NULL, cancel_thread, cancel_target);
		pthread_join(th, NULL);
	}
	return 0;
}

Test(e2e_resume, cancel_then_resume, .fini = teardown, .timeout = 200)
{
	e2e_pkg_spec spec = {.version = "3.0.0", .cm7_size = 200 * 1024, .cm4_size = 64 * 1024, .seed = 8};
	const char *pkg_path = e2e_make_pkg("c.pkg", &spec);
	e2e_devsim_start(&dev, e2e_path("unit.flash"), NULL);
	flasher_package *pkg;
	cr_assert_eq(flasher_package_open(&pkg, pkg_path), 0);
	flasher_session *s;
	cr_assert_eq(flasher_session_open(&s, dev.pty, NULL), 0, "%s", flasher_error_last());
	cancel_target = s;
	int n = 0;
	flasher_update_options uo = FLASHER_UPDATE_OPTIONS_INIT;
	uo.progress = cancel_at_10;
	uo.payload = &n;
	flasher_update_result r1, r2;
	int err = flasher_session_update(s, pkg, &uo, &r1);
	cr_assert_eq(err, FLASHER_ECANCELLED, "%s: %s", flasher_error_name(err), flasher_error_last());
	/* same session, next call: resumes */
	err = flasher_session_update(s, pkg, NULL, &r2);
	cr_assert_eq(err, 0, "%s: %s", flasher_error_name(err), flasher_error_last());
	cr_assert_gt(r2.resumed_bytes, 0);
	cr_assert_lt(r2.sent_bytes, r2.payload_bytes);
	flasher_session_close(s);
	flasher_package_free(pkg);
}

/* Power cut at a flash operation (devsim --exit-after-ops N tears op N and
 * exits): the unit comes back on the same flash file and the update
 * finishes with exactly the package's images. (A torn word makes the core
 * re-erase its sector, so the re-sent bound here is one sector, not one
 * window: docs/protocol.md.) */
ParameterizedTestParameters(e2e_resume, power_cut_then_resume)
{
	static int ops[] = {5, 40, 200, 2000, 7000};
	return cr_make_param_array(int, ops, sizeof ops / sizeof ops[0]);
}

ParameterizedTest(int *op, e2e_resume, power_cut_then_resume, .fini = teardown, .timeout = 300)
{
	e2e_pkg_spec spec = {.version = "2.0.0", .cm7_size = 130 * 1024, .cm4_size = 100 * 1024, .seed = 13};
	const char *pkg = e2e_make_pkg("p.pkg", &spec);
	const char *flash = e2e_path("unit.flash");
	char n[16];
	snprintf(n, sizeof n, "%d", *op);
	e2e_devsim_start(&dev, flash, (const char *const[]){"--link-rate", "none", "--exit-after-ops", n, NULL});
	flasher_session_options so = FLASHER_SESSION_OPTIONS_INIT;
	so.reconnect_timeout_ms = 2000;
	flasher_update_result r1, r2;
	int err = e2e_update(dev.pty, pkg, NULL, &so, &r1);
	cr_assert_neq(err, 0, "power cut at op %d went unnoticed", *op);
	e2e_devsim_kill(&dev, SIGKILL); /* already exited (3): reap */
	e2e_devsim_start(&dev, flash, (const char *const[]){"--link-rate", "none", NULL});
	err = e2e_update(dev.pty, pkg, NULL, NULL, &r2);
	cr_assert_eq(err, 0, "after the cut at op %d: %s: %s", *op, flasher_error_name(err), flasher_error_last());
	cr_log_info("cut at flash op %d: first call sent %llu, second resumed %llu and sent %llu", *op,
	            (unsigned long long)r1.sent_bytes, (unsigned long long)r2.resumed_bytes,
	            (unsigned long long)r2.sent_bytes);
	cr_assert_leq(r1.sent_bytes - (r2.resumed_bytes < r1.sent_bytes ? r2.resumed_bytes : r1.sent_bytes),
	              128 * 1024 + 32 * 1024, "re-sent more than one sector + one window");
	cr_assert_eq(r2.after.cm7_version, FLBOOT_VERSION(2, 0, 0));
	cr_assert_eq(r2.after.cm4_version, FLBOOT_VERSION(2, 0, 0));
	cr_assert_eq(r2.after.state, FLASHER_STATE_CONFIRMED);
}
