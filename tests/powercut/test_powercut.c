/*
 * test_powercut.c - the power-cut sweep (DESIGN.md guarantee 1).
 *
 * For each scenario: build its start state, run it once to count its flash
 * operations N, then for every op 1..N and every phase (before, during =
 * torn, after): restore the start state, arm the cut, run the scenario
 * until the cut, power on (the core's RAM is wiped and re-initialised),
 * boot, and check the invariant: the unit runs exactly the old or exactly
 * the new pair, verified, or (only where no pair existed) stays in the
 * bootloader answering HELLO. Then a normal update must succeed and boot
 * the new pair. A sample of cut points also gets a second cut at every
 * operation of the recovery boot (a cut while recovering from a cut).
 *
 * FLASHER_POWERCUT_FULL=1: stacked cuts at 64 points per scenario instead
 * of 4, each followed by a full follow-up update. Sanitizer builds keep
 * every cut point but sample the follow-ups (see SANITIZED).
 * POWERCUT_DEBUG=1 prints why a follow-up update failed.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../firmware/core/src/core.h"
#include "harness.h"

#define CM7 FLBOOT_CORE_CM7
#define CM4 FLBOOT_CORE_CM4

static image o7, o4, n7, n4;

typedef struct pair {
	const image *cm7, *cm4;
} pair;

typedef struct scenario {
	const char *name;
	void (*prepare)(unit *u);
	int (*run)(unit *u);
	pair old, nw;
	const image *send7, *send4; /* what the follow-up update sends */
} scenario;

static void images(void)
{
	/* Sparse payloads keep the operation count small; the CM7 images
	 * span two sectors so sector boundaries, progress marks and erase
	 * ahead are all on the path. */
	image_make(&o7, CM7, FLBOOT_VERSION(1, 0, 0), 128 * 1024 + 64, 11, 1);
	image_make(&o4, CM4, FLBOOT_VERSION(1, 0, 0), 6 * 1024 + 5, 12, 1);
	image_make(&n7, CM7, FLBOOT_VERSION(2, 0, 0), 129 * 1024 + 32, 13, 1);
	image_make(&n4, CM4, FLBOOT_VERSION(2, 0, 0), 9 * 1024, 14, 1);
}

#define CUT(u) (flashsim_cut_happened((u)->fs))
#define STEP(expr)                   \
	do {                         \
		int rc_ = (expr);    \
		if (CUT(u))          \
			return -1;   \
		if (rc_ < 0)         \
			return rc_;  \
	} while (0)

static int boot_expect(unit *u, int want)
{
	int r = unit_boot(u, NULL);
	if (CUT(u))
		return -1;
	return r == want ? 0 : -2;
}

static int update(unit *u, const image *c7, const image *c4)
{
	flboot_boot_target t;
	int r = unit_update(u, c7, c4, &t);
	if (CUT(u))
		return -1;
	return r == FLBOOT_BOOT_APP ? 0 : -3;
}

static int confirm(unit *u)
{
	int r = flboot_app_confirm(&u->port);
	if (CUT(u))
		return -1;
	return r;
}

/* ---- start states ------------------------------------------------------ */

static void prep_empty(unit *u)
{
	(void)u;
}

static void prep_old(unit *u)
{
	cr_assert_eq(unit_boot(u, NULL), FLBOOT_BOOT_STAY);
	cr_assert_eq(update(u, &o7, &o4), 0);
	cr_assert_eq(confirm(u), 0);
}

static void prep_trial(unit *u)
{
	prep_old(u);
	cr_assert_eq(unit_boot(u, NULL), FLBOOT_BOOT_APP);
	cr_assert_eq(update(u, &n7, &n4), 0); /* first trial boot done */
}

static void prep_partial(unit *u)
{
	prep_old(u);
	/* a transfer of n7 cut by a real power cut in its second sector */
	cr_assert_eq(unit_boot(u, NULL), FLBOOT_BOOT_APP);
	u->flags = FLBOOT_BOOTFLAG_STAY;
	cr_assert_eq(unit_boot(u, NULL), FLBOOT_BOOT_STAY);
	flashsim_arm_cut(u->fs, 200, FLASHSIM_CUT_DURING, 99);
	unit_transfer(u, &n7, 4096, 0);
	cr_assert(CUT(u), "prep_partial: the transfer was cut");
	flashsim_power_on(u->fs);
	u->flags = 0;
}

static void prep_full_journal(unit *u)
{
	prep_old(u);
	cr_assert_eq(unit_boot(u, NULL), FLBOOT_BOOT_APP);
	flboot_store *s = &u->bl->store;
	while (s->pos + 8 < FLBOOT_SECTOR_SIZE / 32)
		cr_assert_eq(flboot__journal_append(s, FLBOOT_J_NOP, NULL, 0), 0);
}

/* ---- scenarios ----------------------------------------------------------- */

static int run_update_both(unit *u)
{
	STEP(boot_expect(u, FLBOOT_BOOT_APP));
	u->flags = FLBOOT_BOOTFLAG_STAY; /* the app reboots into the bootloader */
	STEP(boot_expect(u, FLBOOT_BOOT_STAY));
	STEP(update(u, &n7, &n4));
	STEP(confirm(u));
	STEP(boot_expect(u, FLBOOT_BOOT_APP));
	return 0;
}

static int run_first_install(unit *u)
{
	STEP(boot_expect(u, FLBOOT_BOOT_STAY));
	STEP(update(u, &n7, &n4));
	STEP(confirm(u));
	STEP(boot_expect(u, FLBOOT_BOOT_APP));
	return 0;
}

static int run_update_cm7(unit *u)
{
	STEP(boot_expect(u, FLBOOT_BOOT_APP));
	u->flags = FLBOOT_BOOTFLAG_STAY;
	STEP(boot_expect(u, FLBOOT_BOOT_STAY));
	STEP(update(u, &n7, NULL));
	STEP(confirm(u));
	STEP(boot_expect(u, FLBOOT_BOOT_APP));
	return 0;
}

static int run_trial_confirm(unit *u)
{
	STEP(boot_expect(u, FLBOOT_BOOT_APP)); /* second trial boot */
	STEP(confirm(u));
	STEP(boot_expect(u, FLBOOT_BOOT_APP));
	return 0;
}

static int run_trial_rollback(unit *u)
{
	unsigned i;
	for (i = 0; i < FLBOOT_TRIAL_MAX_BOOTS + 1u; i++)
		STEP(boot_expect(u, FLBOOT_BOOT_APP)); /* never confirmed: reverts */
	return 0;
}

static const scenario scenarios[] = {
	{ "first_install", prep_empty, run_first_install, { NULL, NULL }, { &n7, &n4 }, &n7, &n4 },
	{ "update_both", prep_old, run_update_both, { &o7, &o4 }, { &n7, &n4 }, &n7, &n4 },
	{ "update_cm7", prep_old, run_update_cm7, { &o7, &o4 }, { &n7, &o4 }, &n7, NULL },
	{ "trial_confirm", prep_trial, run_trial_confirm, { &o7, &o4 }, { &n7, &n4 }, &n7, &n4 },
	{ "trial_rollback", prep_trial, run_trial_rollback, { &o7, &o4 }, { &n7, &n4 }, &n7, &n4 },
	{ "resume_transfer", prep_partial, run_update_both, { &o7, &o4 }, { &n7, &n4 }, &n7, &n4 },
	{ "journal_compaction", prep_full_journal, run_update_both, { &o7, &o4 }, { &n7, &n4 }, &n7, &n4 },
};

/* ---- invariant ------------------------------------------------------------ */

static int runs_pair(unit *u, const flboot_boot_target *t, const pair *p)
{
	if (!p->cm7 || t->cm7_version != p->cm7->hdr.version || !unit_primary_is(u, p->cm7))
		return 0;
	if (p->cm4)
		return t->cm4_entry == FLBOOT_CM4_APP_ADDR && t->cm4_version == p->cm4->hdr.version &&
		       unit_primary_is(u, p->cm4);
	return t->cm4_entry == 0;
}

/* After power returns: boot must run old or new pair, or stay reachable. */
static const char *invariant(unit *u, const scenario *s)
{
	flboot_boot_target t;
	int r;

	flashsim_power_on(u->fs);
	u->flags = 0; /* backup SRAM does not survive a power cut */
	r = unit_boot(u, &t);
	if (r == FLBOOT_BOOT_APP) {
		if (runs_pair(u, &t, &s->old) || runs_pair(u, &t, &s->nw))
			return NULL;
		return "boots a pair that is neither the old nor the new one";
	}
	if (r != FLBOOT_BOOT_STAY)
		return "boot returned neither APP nor STAY";
	if (unit_request(u, FLBOOT_MSG_HELLO, 0, NULL, 0) != 0)
		return "stays in the bootloader but does not answer HELLO";
	if (s->old.cm7)
		return "an old pair existed but the unit stays in the bootloader";
	return NULL;
}

/* A normal update after the cut must work and boot the new pair. */
static const char *follow_up(unit *u, const scenario *s)
{
	flboot_boot_target t;
	flboot_hello h;
	int r;

	u->flags = FLBOOT_BOOTFLAG_STAY;
	if (unit_boot(u, NULL) != FLBOOT_BOOT_STAY)
		return "follow-up: cannot enter the bootloader";
	if (unit_request(u, FLBOOT_MSG_HELLO, 0, NULL, 0) != 0)
		return "follow-up: no HELLO";
	memcpy(&h, u->body, sizeof h);
	if (h.boot_state == FLBOOT_STATE_TRIAL && unit_request(u, FLBOOT_MSG_CONFIRM, 0, NULL, 0) != 0)
		return "follow-up: CONFIRM of the running trial refused";
	r = unit_update(u, s->send7, s->send4, &t);
	if (r != FLBOOT_BOOT_APP) {
		if (getenv("POWERCUT_DEBUG"))
			fprintf(stderr, "follow-up update: %d (%.*s)\n", r, (int)u->body_len, (const char *)u->body);
		return "follow-up: update does not boot";
	}
	if (!t.trial || !runs_pair(u, &t, &s->nw))
		return "follow-up: update does not boot the new pair on trial";
	if (flboot_app_confirm(&u->port) != 0)
		return "follow-up: confirm fails";
	if (unit_boot(u, &t) != FLBOOT_BOOT_APP || t.trial || !runs_pair(u, &t, &s->nw))
		return "follow-up: confirmed new pair does not boot";
	return NULL;
}

/* Under ASan/UBSan the core runs several times slower: keep the sweep of
 * every cut point and its invariant, but run the follow-up update at every
 * third one and stack cuts at one point per scenario. */
#if defined(__SANITIZE_ADDRESS__)
#define SANITIZED 1
#else
#define SANITIZED 0
#endif

static const char *phase_name[] = { "before", "during", "after" };

typedef struct sweep {
	unsigned tried, held, printed;
} sweep;

static void verdict(sweep *w, const scenario *s, const char *what, uint64_t op, int phase, uint64_t op2, int phase2)
{
	w->tried++;
	if (!what) {
		w->held++;
		return;
	}
	if (w->printed++ < 20) {
		if (op2)
			fprintf(stderr, "powercut FAIL %s op %llu %s, then recovery op %llu %s: %s\n", s->name,
			        (unsigned long long)op, phase_name[phase], (unsigned long long)op2, phase_name[phase2], what);
		else
			fprintf(stderr, "powercut FAIL %s op %llu %s: %s\n", s->name, (unsigned long long)op,
			        phase_name[phase], what);
	}
}

static void tally_add(unsigned tried, unsigned held);

static void run_sweep(const scenario *s)
{
	int full = getenv("FLASHER_POWERCUT_FULL") && atoi(getenv("FLASHER_POWERCUT_FULL"));
	unit *u = unit_new();
	void *start, *cut_state;
	size_t start_len, cut_len;
	uint64_t n, op, r, op2;
	sweep w = { 0, 0, 0 };
	int phase, phase2;
	const char *what;

	images();
	s->prepare(u);
	cr_assert_eq(flashsim_snapshot(u->fs, &start, &start_len), 0);
	uint32_t flags0 = u->flags;

	/* count the scenario's operations; it must complete uncut */
	uint64_t ops0 = flashsim_ops(u->fs);
	cr_assert_eq(s->run(u), 0, "%s runs uncut", s->name);
	n = flashsim_ops(u->fs) - ops0;
	if (s->prepare == prep_full_journal)
		cr_assert_neq(u->bl->store.sector, FLBOOT_META_SECTOR_A, "the scenario compacts the journal");
	cr_assert_gt(n, 0);
	/* stacked cuts at a few points spread over the scenario (FULL: 64) */
	uint64_t points = full ? 64u : SANITIZED ? 1u : 4u;
	uint64_t stride = n / points ? n / points : 1u;

	for (op = 1; op <= n; op++) {
		for (phase = 0; phase < 3; phase++) {
			cr_assert_eq(flashsim_restore(u->fs, start, start_len), 0);
			flashsim_power_on(u->fs);
			u->flags = flags0;
			flashsim_arm_cut(u->fs, op, phase, op * 3u + (uint64_t)phase);
			s->run(u);
			if (!CUT(u)) {
				verdict(&w, s, "the armed cut never struck (operation count not deterministic)", op,
				        phase, 0, 0);
				continue;
			}
			flashsim_power_on(u->fs);
			cr_assert_eq(flashsim_snapshot(u->fs, &cut_state, &cut_len), 0);
			what = invariant(u, s);
			if (!what && (full || !SANITIZED || (op + (uint64_t)phase) % 3u == 0))
				what = follow_up(u, s);
			verdict(&w, s, what, op, phase, 0, 0);

			/* stacked: cut again at every operation of the recovery boot */
			if (phase != FLASHSIM_CUT_DURING || op % stride != stride / 2u) {
				free(cut_state);
				continue;
			}
			cr_assert_eq(flashsim_restore(u->fs, cut_state, cut_len), 0);
			u->flags = 0;
			uint64_t b0 = flashsim_ops(u->fs);
			unit_boot(u, NULL);
			r = flashsim_ops(u->fs) - b0;
			for (op2 = 1; op2 <= r; op2++) {
				for (phase2 = 0; phase2 < 3; phase2++) {
					cr_assert_eq(flashsim_restore(u->fs, cut_state, cut_len), 0);
					flashsim_power_on(u->fs);
					u->flags = 0;
					flashsim_arm_cut(u->fs, op2, phase2, op2 * 7u + (uint64_t)phase2);
					unit_boot(u, NULL);
					if (!CUT(u)) {
						verdict(&w, s, "the stacked cut never struck", op, phase, op2, phase2);
						continue;
					}
					what = invariant(u, s);
					if (!what && (full || op2 % (SANITIZED ? 16u : 4u) == 1u))
						what = follow_up(u, s);
					verdict(&w, s, what, op, phase, op2, phase2);
				}
			}
			free(cut_state);
		}
	}
	free(start);
	/* Per scenario "tried/held"; the total line at the end says "cut points". */
	printf("powercut %s: %llu flash operations, %u tried, %u held\n", s->name, (unsigned long long)n, w.tried,
	       w.held);
	fflush(stdout);
	tally_add(w.tried, w.held);
	unit_free(u);
	cr_assert_eq(w.held, w.tried, "%s: %u of %u cut points did not hold", s->name, w.tried - w.held, w.tried);
}

TestSuite(powercut, .timeout = 900);

/* Each Test runs in a child process; they add their counts to a file the
 * runner (their parent) totals after the last one. */
static void tally_path(char *buf, size_t size, long runner_pid)
{
	const char *dir = getenv("TMPDIR");
	snprintf(buf, size, "%s/flasher-powercut-%ld.tally", dir && *dir ? dir : "/tmp", runner_pid);
}

static void tally_add(unsigned tried, unsigned held)
{
	char path[512];
	tally_path(path, sizeof path, (long)getppid());
	FILE *f = fopen(path, "a");
	if (f) {
		fprintf(f, "%u %u\n", tried, held);
		fclose(f);
	}
}

ReportHook(POST_ALL)(struct criterion_global_stats *stats)
{
	char path[512];
	unsigned tried = 0, held = 0, t, h, n_scenarios = 0;
	(void)stats;
	tally_path(path, sizeof path, (long)getpid());
	FILE *f = fopen(path, "r");
	if (!f)
		return;
	while (fscanf(f, "%u %u", &t, &h) == 2) {
		tried += t;
		held += h;
		n_scenarios++;
	}
	fclose(f);
	unlink(path);
	printf("powercut sweep: %u scenarios, %u cut points tried, %u held\n", n_scenarios, tried, held);
	fflush(stdout);
}

Test(powercut, first_install) { run_sweep(&scenarios[0]); }
Test(powercut, update_both) { run_sweep(&scenarios[1]); }
Test(powercut, update_cm7) { run_sweep(&scenarios[2]); }
Test(powercut, trial_confirm) { run_sweep(&scenarios[3]); }
Test(powercut, trial_rollback) { run_sweep(&scenarios[4]); }
Test(powercut, resume_transfer) { run_sweep(&scenarios[5]); }
Test(powercut, journal_compaction) { run_sweep(&scenarios[6]); }
