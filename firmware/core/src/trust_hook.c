/*
 * trust_hook.c - where a slot's image is accepted (BEGIN, END, ACTIVATE,
 * boot), the unit's trust decision (docs/signing.md): signatures by the
 * keys in its key store, and the security-counter floor.
 *
 * The floor is derived, not stored: it is the highest security counter of
 * an image of this core that the unit has confirmed and still holds. A
 * confirmed image is never overwritten before a newer pair is confirmed
 * (staging always goes to the other slot), so the floor never falls; a
 * trial pair is not confirmed, so reverting a failed trial to the previous
 * confirmed pair stays possible, while an explicit rollback below the floor
 * is refused.
 */
#include "core.h"
#include "flboot/trust.h"

static uint32_t counter_floor(const flboot *bl, uint8_t core)
{
	uint32_t floor = 0;

	for (int s = 0; s < 2; s++) {
		const flboot_slotv *v = &bl->view.slot[core - 1][s];

		if (v->hdr_ok && v->confirmed && !v->bad && v->hdr.security_counter > floor)
			floor = v->hdr.security_counter;
	}
	return floor;
}

int flboot__trust_image(flboot *bl, const flboot_image_header *h, const uint8_t *area_after_header,
                        flboot__str *why)
{
	uint8_t raw[sizeof(flboot_keystore)];
	char reason[FLBOOT_REASON_MAX];
	flboot_trust t;
	uint32_t floor;
	int rc;

	if (h->core == FLBOOT_CORE_CM7 || h->core == FLBOOT_CORE_CM4) {
		floor = counter_floor(bl, h->core);
		if (h->security_counter < floor) {
			flboot__s(why, "image security counter ");
			flboot__su(why, h->security_counter);
			flboot__s(why, " is below the ");
			flboot__su(why, floor);
			flboot__s(why, " of the firmware this unit has confirmed (downgrade protection)");
			return FLBOOT_E_COUNTER;
		}
	}
	if (flboot__read(&bl->store, FLBOOT_KEYSTORE_ADDR, raw, sizeof raw) != 0)
		raw[0] = 0; /* unreadable: parsed as a damaged key store, never as none */
	flboot_trust_parse(&t, raw);
	rc = flboot_trust_check(&t, h, area_after_header, reason, sizeof reason);
	if (rc)
		flboot__s(why, reason);
	return rc;
}
