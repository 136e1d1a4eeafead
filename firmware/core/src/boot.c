/*
 * boot.c - power-on boot decision: finish journaled transitions (the
 * activation swap, a revert), count trial boots, verify the pair to run.
 * docs/bootloader.md explains why every step survives a cut.
 */
#include <string.h>

#include "core.h"

void flboot_init(flboot *bl, const flboot_port *port)
{
	memset(bl, 0, sizeof *bl);
	bl->port = port;
	bl->store.port = port;
	port->identity(port->ctx, &bl->id);
	flboot__engine_start(bl, FLBOOT_MODE_BOOTLOADER);
}

/* The swap walks (core, sector, step) in one fixed order; st.swap_done
 * counts the steps already journaled as done, so after a reset exactly the
 * interrupted step is redone. Each step only erases a sector whose content
 * also exists elsewhere at that moment:
 *   step 1: scratch <- P[i]   (P[i], S[i] intact)
 *   step 2: P[i] <- S[i]      (old P[i] is in scratch, S[i] intact)
 *   step 3: S[i] <- scratch   (old P[i] in scratch, new P[i] done)
 * The swap is its own inverse, which is what a revert runs. */
static int run_swap(flboot *bl, uint8_t cores, int revert)
{
	flboot_store *s = &bl->store;
	flboot_jstate *st = &s->st;
	uint32_t ci, sec, step, n, m, p, q;
	uint8_t idx;
	int rc;

	for (ci = 0; ci < 2; ci++) {
		if (!(cores & (1u << ci)))
			continue;
		n = flboot__img_sectors(&st->active[ci]);
		m = flboot__img_sectors(revert ? &st->previous[ci] : &st->staged[ci]);
		if (m > n)
			n = m;
		if (n > FLBOOT_SLOT_SECTORS)
			n = FLBOOT_SLOT_SECTORS;
		for (sec = 0; sec < n; sec++) {
			p = flboot__primary_sector((uint8_t)(ci + 1u)) + sec;
			q = flboot__secondary_sector((uint8_t)(ci + 1u)) + sec;
			for (step = 0; step < 3; step++) {
				idx = (uint8_t)((ci * FLBOOT_SLOT_SECTORS + sec) * 3u + step + 1u);
				if (idx <= st->swap_done)
					continue;
				if (step == 0)
					rc = flboot__copy_sector(s, FLBOOT_SCRATCH_SECTOR, p);
				else if (step == 1)
					rc = flboot__copy_sector(s, p, q);
				else
					rc = flboot__copy_sector(s, q, FLBOOT_SCRATCH_SECTOR);
				if (!rc)
					rc = flboot__journal_append(s, FLBOOT_J_SWAP, &idx, 1);
				if (rc)
					return rc;
			}
		}
	}
	return flboot__journal_append(s, FLBOOT_J_COMMIT, NULL, 0);
}

static int finish_transitions(flboot *bl)
{
	flboot_jstate *st = &bl->store.st;

	if (st->revert)
		return run_swap(bl, st->revert, 1);
	if (st->pending)
		return run_swap(bl, st->pending, 0);
	return 0;
}

static int revert_trial(flboot *bl, int16_t reason)
{
	uint8_t body[3];

	body[0] = bl->store.st.prev_mask;
	memcpy(body + 1, &reason, 2);
	if (flboot__journal_append(&bl->store, FLBOOT_J_REVERT, body, sizeof body))
		return FLBOOT_E_FLASH;
	return finish_transitions(bl);
}

/* Verify every core of the committed pair in its primary slot. Returns 0
 * with t filled, 1 when there is no pair to run, or an error. */
static int verify_pair(flboot *bl, flboot_boot_target *t)
{
	flboot_jstate *st = &bl->store.st;
	char rb[FLBOOT_REASON_MAX];
	flboot__str why = { rb, sizeof rb, 0 };
	uint32_t ci;
	int rc;

	if (!st->active[0].present)
		return 1; /* the CM7 starts everything: without it, recovery */
	for (ci = 0; ci < 2; ci++) {
		if (!st->active[ci].present)
			continue;
		rc = flboot__verify_slot(&bl->store, (uint8_t)(ci + 1u), flboot__primary_sector((uint8_t)(ci + 1u)),
		                         &st->active[ci], bl->block, sizeof bl->block, &why);
		if (rc)
			return rc;
	}
	memset(t, 0, sizeof *t);
	t->cm7_entry = flboot__app_addr(FLBOOT_CORE_CM7);
	t->cm7_version = st->active[0].version;
	if (st->active[1].present) {
		t->cm4_entry = flboot__app_addr(FLBOOT_CORE_CM4);
		t->cm4_version = st->active[1].version;
	}
	return 0;
}

int flboot_boot(flboot *bl, flboot_boot_target *t)
{
	flboot_store *s = &bl->store;
	flboot_jstate *st = &s->st;
	uint32_t flags;
	int rc;

	memset(t, 0, sizeof *t);
	bl->boot_error = 0;
	flboot__journal_load(s, bl->port);

	rc = finish_transitions(bl);
	if (!rc && st->boot_state == FLBOOT_STATE_TRIAL && st->trial_boots >= FLBOOT_TRIAL_MAX_BOOTS)
		rc = revert_trial(bl, FLBOOT_E_TRIAL);
	if (rc) {
		bl->boot_error = (int16_t)rc;
		return FLBOOT_BOOT_STAY;
	}

	flags = bl->port->boot_flags_get(bl->port->ctx);
	if (flags & FLBOOT_BOOTFLAG_STAY) {
		bl->port->boot_flags_set(bl->port->ctx, flags & ~FLBOOT_BOOTFLAG_STAY);
		return FLBOOT_BOOT_STAY;
	}
	if (bl->port->enter_pin && bl->port->enter_pin(bl->port->ctx))
		return FLBOOT_BOOT_STAY;

	rc = verify_pair(bl, t);
	if (rc < 0 && st->boot_state == FLBOOT_STATE_TRIAL) {
		/* A trial pair that does not verify is a failed trial. */
		rc = revert_trial(bl, (int16_t)rc);
		if (!rc)
			rc = verify_pair(bl, t);
	}
	if (rc) {
		bl->boot_error = rc < 0 ? (int16_t)rc : 0;
		memset(t, 0, sizeof *t);
		return FLBOOT_BOOT_STAY;
	}
	if (st->boot_state == FLBOOT_STATE_TRIAL) {
		/* Counted before the application runs: a trial that crashes
		 * before confirming still uses up its boot. */
		if (flboot__journal_append(s, FLBOOT_J_TRIAL_BOOT, NULL, 0)) {
			bl->boot_error = FLBOOT_E_FLASH;
			memset(t, 0, sizeof *t);
			return FLBOOT_BOOT_STAY;
		}
		t->trial = true;
	}
	return FLBOOT_BOOT_APP;
}
