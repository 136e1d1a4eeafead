/*
 * flasher_app.h - what a vendor's CM7 application adds to work with the
 * flasher bootloader:
 *
 *   #include "flasher_app.h"
 *   int main(void) {
 *       ...your init...
 *       flasher_app_start();          // USB CDC + the update agent
 *       for (;;) {
 *           flasher_app_poll();       // answers the host (HELLO, STATUS,
 *                                     // CONFIRM, REBOOT to the bootloader)
 *           if (!confirmed && self_test_passed()) {
 *               flasher_app_confirm(); // end the trial: keep this firmware
 *               confirmed = 1;
 *           }
 *           ...your work...
 *       }
 *   }
 *
 * Link: flasher_app (this folder) = the core's app agent (flboot_app_*) +
 * the port's flash driver (ITCM code: copy .ramfunc at startup, see
 * app_cm7.ld) + the USB CDC device (OTG_FS interrupt vector 101 ->
 * usb_otg_irq). A trial boot runs under the IWDG started by the
 * bootloader: until the app confirms, it must call flasher_app_poll()
 * (which kicks the watchdog) at least every few seconds.
 */
#ifndef FLASHER_APP_H
#define FLASHER_APP_H

/** Bring up USB CDC (VID 0x0483, PID 0x5740, serial = chip UID) and the
 *  app-side agent. Needs SysTick running (h7_systick_init). */
void flasher_app_start(void);

/** One non-blocking step; call it from the main loop. May reset the unit
 *  (host asked to reboot into the bootloader). */
void flasher_app_poll(void);

/** Make this (trial) firmware permanent. Returns 0 or a negative flboot_err. */
int flasher_app_confirm(void);

#endif
