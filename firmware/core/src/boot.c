/*
 * boot.c - power-on boot decision (layout v2, images run in place): derive
 * the state from the slots, end an expired or broken trial by returning to
 * its way back (only when that verifies), count trial boots, verify the
 * pair to run and start each core in the slot it occupies.
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

static flboot_slotv *lead_of(flboot *bl)
{
	flboot_view *v = &bl->view;
	return &v->slot[v->active.lead_core][v->active.lead_slot];
}

/* Give up the active (unconfirmed) pair for its way back, but only when the
 * way back verifies: a pair is never abandoned for one that cannot run.
 * Returns 0 when reverted, else the reason it was not. */
static int revert_trial(flboot *bl, int16_t reason)
{
	flboot_view *v = &bl->view;
	char rb[FLBOOT_REASON_MAX];
	flboot__str why = { rb, sizeof rb, 0 };
	uint8_t body[2];
	int rc;

	/* Without any way back (a first install) the pair is given up:
	 * the unit waits for an update. A way back that exists but does not
	 * verify keeps the pair (CONFIRM or an update get out). */
	if (v->prev.lead_core >= 0) {
		rc = flboot__verify_pair(bl, &v->prev, &why);
		if (rc)
			return rc;
	}
	body[0] = (uint8_t)reason;
	body[1] = (uint8_t)((uint16_t)reason >> 8);
	return flboot__trailer_append(&bl->store, v, (uint8_t)(v->active.lead_core + 1), (uint8_t)v->active.lead_slot,
	                              FLBOOT_T_REVERT, v->active.seq, body, sizeof body);
}

static int stay(flboot *bl, int err)
{
	bl->boot_error = (int16_t)err;
	return FLBOOT_BOOT_STAY;
}

int flboot_boot(flboot *bl, flboot_boot_target *t)
{
	flboot_view *v = &bl->view;
	char rb[FLBOOT_REASON_MAX];
	flboot__str why = { rb, sizeof rb, 0 };
	uint32_t flags, c, round;
	int rc;

	memset(t, 0, sizeof *t);
	bl->boot_error = 0;
	flboot__log_load(&bl->store, bl->port);
	flboot__derive(&bl->store, v);

	/* A trial that used up its boots returns to its way back. */
	for (round = 0; round < 4u && v->active.lead_core >= 0; round++) {
		flboot_slotv *lead = lead_of(bl);
		if (lead->confirmed || lead->boots < FLBOOT_TRIAL_MAX_BOOTS)
			break;
		if (revert_trial(bl, FLBOOT_E_TRIAL))
			return stay(bl, FLBOOT_E_TRIAL); /* kept: its way back does not verify */
	}

	flags = bl->port->boot_flags_get(bl->port->ctx);
	if (flags & FLBOOT_BOOTFLAG_STAY) {
		bl->port->boot_flags_set(bl->port->ctx, flags & ~FLBOOT_BOOTFLAG_STAY);
		return FLBOOT_BOOT_STAY;
	}
	if (bl->port->enter_pin && bl->port->enter_pin(bl->port->ctx))
		return FLBOOT_BOOT_STAY;

	for (round = 0;; round++) {
		if (v->active.lead_core < 0)
			return stay(bl, 0);
		why.len = 0;
		rc = flboot__verify_pair(bl, &v->active, &why);
		if (!rc)
			break;
		/* A new pair that does not verify is a failed trial; a
		 * confirmed one is left for the host (ROLLBACK, an update). */
		if (lead_of(bl)->confirmed || round >= 3u || revert_trial(bl, (int16_t)rc))
			return stay(bl, rc);
	}
	if (!lead_of(bl)->confirmed) {
		/* Counted before the application runs: a trial that crashes
		 * before confirming still uses up its boot. */
		if (flboot__trailer_append(&bl->store, v, (uint8_t)(v->active.lead_core + 1), (uint8_t)v->active.lead_slot,
		                           FLBOOT_T_BOOT, v->active.seq, NULL, 0))
			return stay(bl, FLBOOT_E_FLASH);
		t->trial = true;
	}
	for (c = 0; c < 2; c++) {
		const flboot_slotv *sv;
		uint32_t entry;
		if (v->active.at[c] < 0)
			continue;
		sv = &v->slot[c][v->active.at[c]];
		entry = flboot__slot_addr((uint8_t)(c + 1u), (uint32_t)v->active.at[c]) + FLBOOT_HEADER_AREA;
		if (c == 0) {
			t->cm7_entry = entry;
			t->cm7_version = sv->hdr.version;
		} else {
			t->cm4_entry = entry;
			t->cm4_version = sv->hdr.version;
		}
	}
	return FLBOOT_BOOT_APP;
}
