/*
 * test_powercut.c - the power-cut sweep (DESIGN.md guarantee 1), layout v2.
 *
 * For each scenario (full-size images: 380 KiB cm7, 508 KiB cm4): build its
 * start state, run it once uncut and record every flash operation. A power
 * cut leaves nothing but the flash, so the flash after a cut at operation i
 * is the start state with operations 1..i-1 done and operation i done not
 * at all (before), torn (during: by turns ECC-corrupt, miscorrected into
 * wrong data without an ECC error, or weak: reads erased, does not program
 * cleanly) or whole (after). For every operation and
 * every phase that flash is built, a fresh core boots from it, and the
 * invariants are checked:
 *   - the unit runs exactly the old or exactly the new pair, verified, or
 *     (only where no pair existed) stays in the bootloader answering HELLO;
 *   - while the new pair runs on trial, the previous pair is intact;
 *   - a trial left unconfirmed expires into exactly the previous pair, and
 *     a confirmed pair stays;
 *   - the new pair is never confirmed unless the cut came after CONFIRM;
 *   - the uncut run erases no sector outside the slots it stages into (and
 *     the metadata sector);
 * and (on a sample, every cut with --full) a normal update must then work.
 * Stacked cuts: on a sample of cut points the recovery (boot + follow-up
 * update) is recorded and cut again, and on a sample of those a third time.
 *
 * `test_powercut_sweep --full` (or FLASHER_POWERCUT_FULL=1): follow-ups and
 * expiry checks at every cut point and a wider stacked sample.
 * POWERCUT_DEBUG=1 prints why a follow-up update failed.
 */
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../firmware/core/src/core.h"
#include "flboot/trust.h"
#include "harness.h"

#include <sodium.h>

#define CM7 FLBOOT_CORE_CM7
#define CM4 FLBOOT_CORE_CM4
#define NONE ((size_t)-1)

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
	int nw_confirmed_before;    /* the new pair is confirmed in the start state */
	uint32_t may_erase;         /* sectors the scenario may erase */
} scenario;

#define SECTORS(first, n) (((1u << (n)) - 1u) << (first))
#define A_SLOTS (SECTORS(1, 3) | SECTORS(8, 4))
#define B_SLOTS (SECTORS(4, 3) | SECTORS(12, 4))
#define META (1u << FLBOOT_META_SECTOR)

/* The signed run: the unit holds a key and every image carries its
 * signature (docs/signing.md), so each boot of the sweep also checks the
 * slots' signatures. */
static int signed_run;
static uint8_t sign_pk[32], sign_sk[64];

static void image_sign(image *im)
{
	uint8_t msg[FLBOOT_SIG_DOMAIN_LEN + sizeof im->hdr];
	flboot_sigblock sb;

	memset(&sb, 0xFF, sizeof sb);
	sb.magic = FLBOOT_SIGBLOCK_MAGIC;
	sb.count = 1;
	sb.algorithm = FLBOOT_SIG_ED25519;
	sb.rsv = 0;
	flboot_key_id(sign_pk, sb.sig[0].key_id);
	memcpy(msg, FLBOOT_SIG_DOMAIN, FLBOOT_SIG_DOMAIN_LEN);
	memcpy(msg + FLBOOT_SIG_DOMAIN_LEN, &im->hdr, sizeof im->hdr);
	crypto_sign_detached(sb.sig[0].sig, NULL, msg, sizeof msg, sign_sk);
	memcpy(im->area_tail, &sb, sizeof sb);
	im->area_tail_len = sizeof sb;
}

static void images(void)
{
	/* Full-size images, mostly erased words (one programmed word in
	 * 256): every sector of both slots is in use, so every erase,
	 * sector boundary and progress mark is on the path, while the
	 * operation count stays small enough to cut at every one. */
	image_make(&o7, CM7, FLBOOT_VERSION(1, 0, 0), 380 * 1024, 11, 256);
	image_make(&o4, CM4, FLBOOT_VERSION(1, 0, 0), 508 * 1024, 12, 256);
	image_make(&n7, CM7, FLBOOT_VERSION(2, 0, 0), 380 * 1024 - 32, 13, 256);
	image_make(&n4, CM4, FLBOOT_VERSION(2, 0, 0), 508 * 1024 + 5, 14, 256);
	memcpy(n7.hdr.set_id, "SETID002", 8);
	memcpy(n4.hdr.set_id, "SETID002", 8);
	image_seal(&n7);
	image_seal(&n4);
	if (signed_run) {
		cr_assert_eq(sodium_init() >= 0, 1);
		crypto_sign_keypair(sign_pk, sign_sk);
		image_sign(&o7);
		image_sign(&o4);
		image_sign(&n7);
		image_sign(&n4);
	}
}

static void free_images(void)
{
	image_free(&o7);
	image_free(&o4);
	image_free(&n7);
	image_free(&n4);
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

static size_t confirm_at; /* operation index of the run's CONFIRM, NONE if none */

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
	int r;
	if (u->recording && confirm_at == NONE)
		confirm_at = u->ops_len;
	r = flboot_app_confirm(&u->port);
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

static void prep_new_confirmed(unit *u)
{
	prep_trial(u);
	cr_assert_eq(confirm(u), 0);
}

static void prep_partial(unit *u)
{
	prep_old(u);
	/* a transfer of n7 cut by a real power cut in its second sector */
	cr_assert_eq(unit_boot(u, NULL), FLBOOT_BOOT_APP);
	u->flags = FLBOOT_BOOTFLAG_STAY;
	cr_assert_eq(unit_boot(u, NULL), FLBOOT_BOOT_STAY);
	flashsim_arm_cut(u->fs, 30, FLASHSIM_CUT_DURING, 99);
	unit_transfer(u, &n7, 4096, 0);
	cr_assert(CUT(u), "prep_partial: the transfer was cut");
	flashsim_power_on(u->fs);
	u->flags = 0;
}

static void prep_full_log(unit *u)
{
	prep_old(u);
	cr_assert_eq(unit_boot(u, NULL), FLBOOT_BOOT_APP);
	flboot_store *s = &u->bl->store;
	while (s->log_pos + 40 < FLBOOT_LOG_WORDS)
		cr_assert_eq(flboot__log_append(s, FLBOOT_L_NOP, CM7, 0, 0), 0);
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

static int run_trial_revert(unit *u)
{
	unsigned i;
	for (i = 0; i < FLBOOT_TRIAL_MAX_BOOTS + 1u; i++)
		STEP(boot_expect(u, FLBOOT_BOOT_APP)); /* never confirmed: reverts */
	return 0;
}

static int run_rollback(unit *u)
{
	flboot_reboot_req r = { FLBOOT_REBOOT_NORMAL };
	STEP(boot_expect(u, FLBOOT_BOOT_APP));
	u->flags = FLBOOT_BOOTFLAG_STAY;
	STEP(boot_expect(u, FLBOOT_BOOT_STAY));
	STEP(unit_request(u, FLBOOT_MSG_ROLLBACK, 0, NULL, 0));
	STEP(unit_request(u, FLBOOT_MSG_REBOOT, 0, &r, sizeof r));
	STEP(boot_expect(u, FLBOOT_BOOT_APP));
	return 0;
}

static const scenario scenarios[] = {
	{ "first_install", prep_empty, run_first_install, { NULL, NULL }, { &n7, &n4 }, &n7, &n4, 0, A_SLOTS | META },
	{ "update_both", prep_old, run_update_both, { &o7, &o4 }, { &n7, &n4 }, &n7, &n4, 0, B_SLOTS | META },
	{ "update_cm7", prep_old, run_update_cm7, { &o7, &o4 }, { &n7, &o4 }, &n7, NULL, 0, SECTORS(4, 3) | META },
	{ "trial_confirm", prep_trial, run_trial_confirm, { &o7, &o4 }, { &n7, &n4 }, &n7, &n4, 0, 0 },
	{ "trial_revert", prep_trial, run_trial_revert, { &o7, &o4 }, { &n7, &n4 }, &n7, &n4, 0, 0 },
	{ "rollback", prep_new_confirmed, run_rollback, { &o7, &o4 }, { &n7, &n4 }, &n7, &n4, 1, 0 },
	{ "resume", prep_partial, run_update_both, { &o7, &o4 }, { &n7, &n4 }, &n7, &n4, 0, B_SLOTS | META },
	{ "log_compaction", prep_full_log, run_update_both, { &o7, &o4 }, { &n7, &n4 }, &n7, &n4, 0,
	  B_SLOTS | META },
};

/* ---- invariants ------------------------------------------------------------ */

static int runs_pair(unit *u, const flboot_boot_target *t, const pair *p)
{
	if (!p->cm7 || !unit_runs(u, t, p->cm7))
		return 0;
	if (p->cm4)
		return unit_runs(u, t, p->cm4);
	return t->cm4_entry == 0;
}

typedef struct check {
	int level;       /* 1: first cut, 2, 3: stacked */
	int confirmed_ok;/* the cut came after the run's CONFIRM */
	int expiry;      /* also let a trial expire */
} check;

/* After power returns: a fresh core boots; see the file comment. */
static const char *invariant(unit *u, const scenario *s, const check *c)
{
	flboot_boot_target t;
	int r, on_new, i;

	flashsim_power_on(u->fs);
	u->flags = 0; /* backup SRAM does not survive a power cut */
	r = unit_boot(u, &t);
	if (r == FLBOOT_BOOT_STAY) {
		if (unit_request(u, FLBOOT_MSG_HELLO, 0, NULL, 0) != 0)
			return "stays in the bootloader but does not answer HELLO";
		if (s->old.cm7)
			return "an old pair existed but the unit stays in the bootloader";
		return NULL;
	}
	if (r != FLBOOT_BOOT_APP)
		return "boot returned neither APP nor STAY";
	on_new = runs_pair(u, &t, &s->nw);
	if (!on_new && !runs_pair(u, &t, &s->old))
		return "boots a pair that is neither the old nor the new one";
	if (!on_new || (s->old.cm7 && runs_pair(u, &t, &s->old)))
		return NULL; /* the old pair (or old == new for one core) */
	if (t.trial && c->level == 1 && s->old.cm7 &&
	    !(unit_holds(u, FLBOOT_CM7_SLOT_A_ADDR, s->old.cm7) && unit_holds(u, FLBOOT_CM4_SLOT_A_ADDR, s->old.cm4)))
		return "the new pair runs on trial but the previous pair is not intact";
	if (!t.trial && c->level == 1 && !s->nw_confirmed_before && !c->confirmed_ok)
		return "the new pair is confirmed although the cut came before CONFIRM";
	if (!c->expiry)
		return NULL;
	/* no CONFIRM from here: a trial expires into exactly the previous
	 * pair (where there is one), a confirmed pair stays */
	int trial = t.trial;
	for (i = 0; i < (int)FLBOOT_TRIAL_MAX_BOOTS; i++) {
		r = unit_boot(u, &t);
		if (r != FLBOOT_BOOT_APP) {
			if (trial && !s->old.cm7)
				return NULL; /* a first install has no way back */
			return "an unconfirmed boot sequence ends in the bootloader";
		}
	}
	if (trial && s->old.cm7 && c->level == 1 && !(runs_pair(u, &t, &s->old) && !t.trial))
		return "an expired trial does not return exactly to the previous pair";
	if (!trial && !runs_pair(u, &t, &s->nw))
		return "a confirmed pair did not stay";
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
	if (CUT(u))
		return NULL;
	if (unit_request(u, FLBOOT_MSG_HELLO, 0, NULL, 0) != 0)
		return CUT(u) ? NULL : "follow-up: no HELLO";
	memcpy(&h, u->body, sizeof h);
	if (h.boot_state == FLBOOT_STATE_TRIAL && unit_request(u, FLBOOT_MSG_CONFIRM, 0, NULL, 0) != 0)
		return CUT(u) ? NULL : "follow-up: CONFIRM of the running trial refused";
	r = unit_update(u, s->send7, s->send4, &t);
	if (CUT(u))
		return NULL;
	if (r != FLBOOT_BOOT_APP) {
		if (getenv("POWERCUT_DEBUG"))
			fprintf(stderr, "follow-up update: %d (%.*s)\n", r, (int)u->body_len, (const char *)u->body);
		return "follow-up: update does not boot";
	}
	if (!t.trial || !runs_pair(u, &t, &s->nw))
		return "follow-up: update does not boot the new pair on trial";
	if (flboot_app_confirm(&u->port) != 0)
		return CUT(u) ? NULL : "follow-up: confirm fails";
	if (unit_boot(u, &t) != FLBOOT_BOOT_APP || t.trial || !runs_pair(u, &t, &s->nw))
		return CUT(u) ? NULL : "follow-up: confirmed new pair does not boot";
	return NULL;
}

static const char *phase_name[] = { "before", "during", "after" };

typedef struct sweep {
	unsigned tried, held, printed;
	int full;
} sweep;

static void verdict(sweep *w, const scenario *s, const char *what, const char *where)
{
	w->tried++;
	if (!what) {
		w->held++;
		return;
	}
	if (w->printed++ < 20)
		fprintf(stderr, "powercut FAIL %s %s: %s\n", s->name, where, what);
}

/* Record what a fresh core does from the flash in snap: boot, then the
 * follow-up update. */
static void record_recovery(unit *u, const scenario *s, const void *snap, size_t len)
{
	cr_assert_eq(flashsim_restore(u->fs, snap, len), 0);
	flashsim_power_on(u->fs);
	u->flags = 0;
	u->ops_len = 0;
	u->recording = 1;
	unit_boot(u, NULL);
	follow_up(u, s);
	u->recording = 0;
}

/* The flash a cut at ops[i] in phase leaves, from snap = the flash before
 * ops[i]; into u's flash. A torn operation leaves, by turns, ECC errors,
 * miscorrected words that read wrong without one, and weak words that read
 * erased but do not program cleanly (flashsim_torn). */
static void cut_flash(unit *u, const void *snap, size_t len, const unit_op *op, int phase, uint64_t seed, int torn)
{
	cr_assert_eq(flashsim_restore(u->fs, snap, len), 0);
	flashsim_power_on(u->fs);
	flashsim_arm_cut_torn(u->fs, 1, phase, seed, torn);
	unit_apply_op(u->fs, op);
	cr_assert(CUT(u));
	flashsim_power_on(u->fs);
}

/* Cut at a spread sample of n of the recorded operations of u (recorded
 * from snap), check, and recurse to depth. */
static void stack(unit *u, flashsim *work, const scenario *s, sweep *w, const void *snap, size_t len, int level,
                  unsigned n, const char *where)
{
	unit_op *ops;
	size_t nops, i, k, stride;
	void *before, *after_cut;
	size_t blen, alen;
	char at[160];
	const char *what;
	check c = { level, 1, 1 };

	record_recovery(u, s, snap, len);
	nops = u->ops_len;
	if (!nops)
		return;
	ops = malloc(nops * sizeof *ops);
	memcpy(ops, u->ops, nops * sizeof *ops);
	stride = nops / n ? nops / n : 1;
	cr_assert_eq(flashsim_restore(work, snap, len), 0);
	flashsim_power_on(work);
	for (i = 0, k = 0; i < nops; i++) {
		if (i % stride == stride / 2) {
			int phase = (int)(k++ % 3u);
			cr_assert_eq(flashsim_snapshot(work, &before, &blen), 0);
			cut_flash(u, before, blen, &ops[i], phase, i * 7u + (uint64_t)level, (int)((i + (size_t)level) % 3u));
			snprintf(at, sizeof at, "%s, recovery op %zu %s", where, i + 1, phase_name[phase]);
			cr_assert_eq(flashsim_snapshot(u->fs, &after_cut, &alen), 0);
			what = invariant(u, s, &c);
			if (!what && level == 3)
				what = follow_up(u, s);
			verdict(w, s, what, at);
			if (!what && level < 3 && k % 4u == 1u)
				stack(u, work, s, w, after_cut, alen, level + 1, 4, at);
			/* the recursion reused work: bring it back to before op i */
			cr_assert_eq(flashsim_restore(work, before, blen), 0);
			flashsim_power_on(work);
			free(before);
			free(after_cut);
		}
		unit_apply_op(work, &ops[i]);
	}
	free(ops);
}

static void tally_add(unsigned tried, unsigned held);

static void run_sweep(const scenario *s)
{
	int full = getenv("FLASHER_POWERCUT_FULL") && atoi(getenv("FLASHER_POWERCUT_FULL"));
	unit *u = unit_new();
	flashsim *work;
	unit_op *ops;
	void *start, *before, *after_cut;
	size_t start_len, blen, alen, n, i;
	sweep w = { 0, 0, 0, full };
	int phase;
	const char *what;
	char at[96];

	images();
	cr_assert_eq(flashsim_open(&work, NULL), 0);
	if (signed_run) {
		/* the key is in force: an unsigned copy of the image is refused */
		unit *v = unit_new();
		image bare = n7;
		bare.area_tail_len = 0;
		unit_install_keys(v, (const uint8_t(*)[32])sign_pk, 1);
		cr_assert_eq(unit_boot(v, NULL), FLBOOT_BOOT_STAY);
		cr_assert_eq(unit_transfer(v, &bare, 4096, 0), FLBOOT_E_SIGNATURE, "an unsigned image is not refused");
		unit_free(v);
		unit_install_keys(u, (const uint8_t(*)[32])sign_pk, 1);
	}
	s->prepare(u);
	cr_assert_eq(flashsim_snapshot(u->fs, &start, &start_len), 0);
	uint32_t flags0 = u->flags;

	/* the uncut run, recorded; it must complete */
	confirm_at = NONE;
	u->ops_len = 0;
	u->recording = 1;
	cr_assert_eq(s->run(u), 0, "%s runs uncut", s->name);
	u->recording = 0;
	n = u->ops_len;
	cr_assert_gt(n, 0);
	ops = malloc(n * sizeof *ops);
	memcpy(ops, u->ops, n * sizeof *ops);
	for (i = 0; i < n; i++)
		if (ops[i].kind == UNIT_OP_ERASE)
			cr_assert(s->may_erase & (1u << ops[i].where), "%s erases sector %u, outside the staged slots",
			          s->name, ops[i].where);
	if (s->prepare == prep_full_log)
		cr_assert_lt(u->bl->store.log_pos, 1024u, "the scenario compacts the log");

	/* stacked cuts at a few points spread over the scenario */
	size_t points = full ? 24u : 3u, stride = n / points ? n / points : 1u;

	cr_assert_eq(flashsim_restore(work, start, start_len), 0);
	for (i = 0; i < n; i++) {
		cr_assert_eq(flashsim_snapshot(work, &before, &blen), 0);
		for (phase = 0; phase < 3; phase++) {
			check c = { 1, 0, 0 };
			c.confirmed_ok = confirm_at != NONE && (i > confirm_at || (i == confirm_at && phase == FLASHSIM_CUT_AFTER));
			c.expiry = full || (i + (size_t)phase) % 4u == 0;
			cut_flash(u, before, blen, &ops[i], phase, i * 3u + (uint64_t)phase, (int)(i % 3u));
			u->flags = flags0;
			cr_assert_eq(flashsim_snapshot(u->fs, &after_cut, &alen), 0);
			snprintf(at, sizeof at, "op %zu %s", i + 1, phase_name[phase]);
			what = invariant(u, s, &c);
			if (!what && (full || (i + (size_t)phase) % 4u == 2u))
				what = follow_up(u, s);
			verdict(&w, s, what, at);
			if (!what && phase == FLASHSIM_CUT_DURING && i % stride == stride / 2u)
				stack(u, work, s, &w, after_cut, alen, 2, full ? 16u : 6u, at);
			free(after_cut);
		}
		cr_assert_eq(flashsim_restore(work, before, blen), 0);
		flashsim_power_on(work);
		unit_apply_op(work, &ops[i]);
		free(before);
	}
	free(ops);
	free(start);
	/* Per scenario "tried/held"; the total line at the end says "cut points". */
	printf("powercut %s%s: %zu flash operations, %u tried, %u held\n", s->name, signed_run ? " (signed)" : "", n,
	       w.tried, w.held);
	fflush(stdout);
	tally_add(w.tried, w.held);
	flashsim_close(work);
	unit_free(u);
	free_images();
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
Test(powercut, trial_revert) { run_sweep(&scenarios[4]); }
Test(powercut, rollback) { run_sweep(&scenarios[5]); }
Test(powercut, resume) { run_sweep(&scenarios[6]); }
Test(powercut, log_compaction) { run_sweep(&scenarios[7]); }
/* The same update with signatures on: the unit holds a key, so every boot
 * after every cut checks the signatures of the pair it starts. */
Test(powercut, update_both_signed)
{
	signed_run = 1;
	run_sweep(&scenarios[1]);
}

/* --full: the wide sweep (same as FLASHER_POWERCUT_FULL=1). */
int main(int argc, char *argv[])
{
	struct criterion_test_set *tests = criterion_initialize();
	int keep = 1, result = 0;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--full") == 0)
			setenv("FLASHER_POWERCUT_FULL", "1", 1);
		else
			argv[keep++] = argv[i];
	}
	argv[keep] = NULL;
	if (criterion_handle_args(keep, argv, true))
		result = !criterion_run_all_tests(tests);
	criterion_finalize(tests);
	return result;
}
