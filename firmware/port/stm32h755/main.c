/*
 * main.c - the bootloader on the STM32H755 CM7.
 *
 * Clocks, boot flags; then the core's boot decision; then either start the
 * applications (CM7 jump, CM4 release) or serve the update protocol on USB
 * CDC until the host resets the unit.
 */
#include <string.h>

#include "h7.h"

static flboot bl;

int main(void)
{
	/* SRAM4 keeps the last boot's CM4 entry over a system reset: only an
	 * entry this boot verifies may start the CM4. */
	h7_cm4_mailbox_clear();
	/* A supply, oscillator or PLL that does not get ready is a board or
	 * configuration fault nothing here can work around: reset (visible as
	 * a reset loop, docs/porting.md bring-up step 1). */
	if (!h7_clock_init())
		h7_reset();
	h7_systick_init();
	h7_backup_init();
	__asm__ volatile("cpsie i" ::: "memory");

	flboot_init(&bl, &h7_port);
	flboot_boot_target target;
	memset(&target, 0, sizeof(target));
	if (flboot_boot(&bl, &target) == FLBOOT_BOOT_APP)
		h7_start_app(&target);

	/* Stay: recovery, STAY flag or button. USB only now, so a normal boot
	 * never spends time enumerating. */
	flboot_identity id;
	h7_port.identity(0, &id);
	if (!usb_cdc_init(id.uid))
		h7_reset(); /* USB supply or core reset did not complete */
	for (;;) {
		usb_cdc_poll();
		flboot_poll(&bl);
		/* Harmless when the IWDG is off; needed when the hardware-watchdog
		 * option byte starts it at reset. */
		h7_watchdog_kick();
	}
}
